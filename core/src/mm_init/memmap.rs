//! `memmap_init` for one zone (Linux `mm/mm_init.c`: `memmap_init_range`,
//! `init_unavailable_range`, `__init_single_page`): every page descriptor of the zone
//! is initialised and reserved, holes included, and each pageblock start among the
//! memory ranges marks its block MOVABLE.
//!
//! Every descriptor of a zone gets the same value (`__init_single_page` for the zone
//! and node, then `__SetPageReserved`), so the values are stored once, as the
//! `mem_map` is handed out (`alloc_node_mem_map` gives the runs to
//! [`PageStorage::mem_map_init`](crate::storage::PageStorage::mem_map_init)): no zero
//! fill that a template pass then overwrites. `memmap_init_zone` keeps the rest of
//! the work: the pageblock migrate types and the count of unavailable pages.

use crate::addr::{align_up, pfn_down, PAGE_SIZE};
use crate::memblock::Memblock;
use crate::mmtypes::{MigrateType, ZoneType};
use crate::page::Page;
use crate::storage::PageStorage;
use crate::zone::{InitError, Zone};

/// `__init_single_page` + `__SetPageReserved`: the value of every descriptor of a
/// zone of type `zone` on node `nid`.
pub(super) fn reserved_template(zone: ZoneType, nid: usize) -> Page {
    let template = Page::ZEROED;
    template.init_single_page(zone, nid);
    template.set_reserved();
    template
}

/// `memmap_init` for one zone (MEMINIT_EARLY): the pages of every memblock.memory
/// range inside the zone are initialised and reserved (already, as the map was
/// handed out), and each pageblock start among them marks its block MOVABLE
/// (`memmap_init_range`); the zone's holes are initialised and reserved too
/// (`init_unavailable_range`) and counted (the node's `mem_map` covers every zone,
/// so every pfn of the zone has its descriptor).
pub(super) fn memmap_init_zone<S: PageStorage, const N: usize>(
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
            holes += start - hole_pfn;
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
        holes += zend - hole_pfn;
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
