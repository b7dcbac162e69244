//! `memmap_init` for one zone (Linux `mm/mm_init.c`: `memmap_init_range`,
//! `init_unavailable_range`, `__init_single_page`): every page descriptor of the zone
//! is initialised and reserved, holes included, and each pageblock start among the
//! memory ranges marks its block MOVABLE.

use crate::addr::{align_up, pfn_down, Pfn, PAGE_SIZE};
use crate::memblock::Memblock;
use crate::mmtypes::{MigrateType, ZoneType};
use crate::page::Page;
use crate::storage::PageStorage;
use crate::zone::{InitError, Zone};

/// `__init_single_page` + `__SetPageReserved` for `[start, end)`: every descriptor of
/// the range gets the same value, so one template is computed and stored into each
/// (pfns the map does not describe are skipped). Returns the pages initialised.
fn init_reserved_range(
    map: &mut [Page],
    map_start: Pfn,
    start: Pfn,
    end: Pfn,
    zone: ZoneType,
    nid: usize,
) -> u64 {
    let mut template = Page::ZEROED;
    template.init_single_page(zone, nid);
    template.set_reserved();
    let len = map.len() as u64;
    let lo = start.saturating_sub(map_start).min(len);
    let hi = end.saturating_sub(map_start).min(len);
    if lo >= hi {
        return 0;
    }
    map[lo as usize..hi as usize].fill(template);
    hi - lo
}

/// `memmap_init` for one zone (MEMINIT_EARLY): the pages of every memblock.memory
/// range inside the zone are initialised and reserved, and each pageblock start
/// among them marks its block MOVABLE (`memmap_init_range`); the zone's holes are
/// initialised and reserved too (`init_unavailable_range`) and counted.
pub(super) fn memmap_init_zone<S: PageStorage, const N: usize>(
    map: &mut [Page],
    map_start: Pfn,
    zone: &mut Zone<S>,
    memblock: &Memblock<N>,
) -> Result<(), InitError> {
    let zstart = zone.zone_start_pfn;
    let zend = zone.zone_end_pfn();
    let pb_mask = (1u64 << zone.pageblock_order) - 1;
    let (zt, nid) = (zone.zone_type, zone.node);
    let mut hole_pfn = zstart;
    let mut holes = 0u64;
    for r in memblock.memory_ranges() {
        let start = pfn_down(r.base.saturating_add(PAGE_SIZE - 1)).clamp(zstart, zend);
        let end = pfn_down(r.end()).clamp(zstart, zend);
        if start >= end {
            continue;
        }
        if hole_pfn < start {
            holes += init_reserved_range(map, map_start, hole_pfn, start, zt, nid);
        }
        init_reserved_range(map, map_start, start, end, zt, nid);
        let first_block = align_up(start, pb_mask + 1);
        let mut pfn = first_block;
        while pfn < end {
            zone.set_pageblock_migratetype(pfn, MigrateType::Movable)?;
            pfn += pb_mask + 1;
        }
        hole_pfn = hole_pfn.max(end);
    }
    if hole_pfn < zend {
        holes += init_reserved_range(map, map_start, hole_pfn, zend, zt, nid);
    }
    if holes > 0 {
        zk_info!(
            "On node {}, zone {}: {} pages in unavailable ranges",
            nid,
            zt.name(),
            holes
        );
    }
    Ok(())
}
