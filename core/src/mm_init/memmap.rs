//! `memmap_init` for one zone (Linux `mm/mm_init.c`: `memmap_init_range`,
//! `init_unavailable_range`, `__init_single_page`): every page descriptor of the zone
//! is initialised and reserved, holes included, and each pageblock start among the
//! memory ranges marks its block MOVABLE.
//!
//! Every descriptor of a zone gets the same value (`__init_single_page` for the zone
//! and node, then `__SetPageReserved`), so the values are stored once, as the
//! `mem_map` is handed out ([`mem_map_runs`] for
//! [`PageStorage::mem_map_init`](crate::storage::PageStorage::mem_map_init)): no zero
//! fill that a template pass then overwrites. `memmap_init_zone` keeps the rest of
//! the work: the pageblock migrate types and the count of unavailable pages.

use crate::addr::{align_up, pfn_down, Pfn, PAGE_SIZE};
use crate::memblock::Memblock;
use crate::mmtypes::{MigrateType, ZoneType};
use crate::page::Page;
use crate::storage::PageStorage;
use crate::zone::{InitError, Zone};

/// `__init_single_page` + `__SetPageReserved`: the value of every descriptor of a
/// zone of type `zone` on node `nid`.
pub(super) fn reserved_template(zone: ZoneType, nid: usize) -> Page {
    let mut template = Page::ZEROED;
    template.init_single_page(zone, nid);
    template.set_reserved();
    template
}

/// The first values of the `mem_map` of `[map_start, map_start + map_len)`: each
/// zone's span (`(start, pages, type)`, in pfn order) gets the zone's
/// [`reserved_template`], what lies outside every zone [`Page::ZEROED`]. As
/// `(count, value)` runs; the storage writes [`Page::ZEROED`] after the last.
pub(super) fn mem_map_runs(
    map_start: Pfn,
    map_len: u64,
    zones: impl Iterator<Item = (Pfn, u64, ZoneType)>,
    nid: usize,
) -> heapless::Vec<(usize, Page), { 2 * crate::mmtypes::MAX_NR_ZONES }> {
    let mut runs = heapless::Vec::new();
    let mut at = 0u64;
    for (start, pages, zt) in zones {
        let lo = start.saturating_sub(map_start).clamp(at, map_len);
        let hi = start
            .saturating_add(pages)
            .saturating_sub(map_start)
            .min(map_len);
        if lo >= hi {
            continue;
        }
        // At most two runs per zone: the capacity cannot be exceeded.
        if lo > at {
            let _ = runs.push(((lo - at) as usize, Page::ZEROED));
        }
        let _ = runs.push(((hi - lo) as usize, reserved_template(zt, nid)));
        at = hi;
    }
    runs
}

/// Descriptors of `[start, end)` that the map describes (the pages `memmap_init`
/// initialises there).
fn described(map_len: u64, map_start: Pfn, start: Pfn, end: Pfn) -> u64 {
    let lo = start.saturating_sub(map_start).min(map_len);
    let hi = end.saturating_sub(map_start).min(map_len);
    hi.saturating_sub(lo)
}

/// `memmap_init` for one zone (MEMINIT_EARLY): the pages of every memblock.memory
/// range inside the zone are initialised and reserved (already, by
/// [`mem_map_runs`]), and each pageblock start among them marks its block MOVABLE
/// (`memmap_init_range`); the zone's holes are initialised and reserved too
/// (`init_unavailable_range`) and counted.
pub(super) fn memmap_init_zone<S: PageStorage, const N: usize>(
    map_len: u64,
    map_start: Pfn,
    zone: &mut Zone<S>,
    memblock: &Memblock<N>,
) -> Result<(), InitError> {
    let zstart = zone.zone_start_pfn;
    let zend = zone.zone_end_pfn();
    let pb_mask = (1u64 << zone.pageblock_order) - 1;
    let (zt, nid) = (zone.zone_type, zone.node);
    let map = map_len;
    let mut hole_pfn = zstart;
    let mut holes = 0u64;
    for r in memblock.memory_ranges() {
        let start = pfn_down(r.base.saturating_add(PAGE_SIZE - 1)).clamp(zstart, zend);
        let end = pfn_down(r.end()).clamp(zstart, zend);
        if start >= end {
            continue;
        }
        if hole_pfn < start {
            holes += described(map, map_start, hole_pfn, start);
        }
        let first_block = align_up(start, pb_mask + 1);
        let mut pfn = first_block;
        while pfn < end {
            zone.set_pageblock_migratetype(pfn, MigrateType::Movable)?;
            pfn += pb_mask + 1;
        }
        hole_pfn = hole_pfn.max(end);
    }
    if hole_pfn < zend {
        holes += described(map, map_start, hole_pfn, zend);
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
