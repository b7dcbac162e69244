//! The node part of `free_area_init_node` (Linux `mm/mm_init.c`):
//! `calculate_node_totalpages` (spanned and present pages per zone and node) and
//! `alloc_node_mem_map` (the FLATMEM `struct page` array of the MAX_ORDER-aligned
//! node range, the node's first memblock allocation).

use crate::addr::{align_down, align_up, PAGE_SHIFT};
use crate::arch::MmConfig;
use crate::memblock::{Memblock, MEMBLOCK_ALLOC_ACCESSIBLE};
use crate::mmtypes::MAX_NR_ZONES;
use crate::storage::PageStorage;
use crate::zone::{InitError, PgData};

/// `calculate_node_totalpages`.
pub(super) fn calculate_node_totalpages<S: PageStorage>(
    pgdat: &mut PgData<S>,
    zones_size: &[u64; MAX_NR_ZONES],
    zholes_size: &[u64; MAX_NR_ZONES],
) -> Result<(), InitError> {
    let mut start = pgdat.node_start_pfn;
    let mut spanned_total = 0u64;
    let mut present_total = 0u64;
    for (i, zone) in pgdat.zones.iter_mut().enumerate() {
        let size = zones_size[i];
        let hole = zholes_size[i];
        let present = size
            .checked_sub(hole)
            .ok_or(InitError::HoleLargerThanZone {
                zone: zone.zone_type,
                size,
                hole,
            })?;
        zone.zone_start_pfn = start;
        zone.spanned_pages = size;
        zone.present_pages = present;
        start = start.checked_add(size).ok_or(InitError::Overflow)?;
        spanned_total += size;
        present_total += present;
    }
    // Every pfn must stay a representable physical address.
    if start > (u64::MAX >> PAGE_SHIFT) {
        return Err(InitError::Overflow);
    }
    pgdat.node_spanned_pages = spanned_total;
    pgdat.node_present_pages = present_total;
    zk_debug!(
        "On node {} totalpages: {}",
        pgdat.node_id,
        pgdat.node_present_pages
    );
    Ok(())
}

/// `alloc_node_mem_map` (FLATMEM).
pub(super) fn alloc_node_mem_map<S: PageStorage, const N: usize>(
    pgdat: &mut PgData<S>,
    memblock: &mut Memblock<N>,
    storage: &mut S,
    cfg: &MmConfig,
) -> Result<(), InitError> {
    if pgdat.node_spanned_pages == 0 {
        return Ok(());
    }
    let align = cfg.max_order_nr_pages();
    let start = align_down(pgdat.node_start_pfn, align);
    let end = align_up(pgdat.node_end_pfn(), align);
    let nr_pages = end - start;
    let size = nr_pages
        .checked_mul(cfg.struct_page_size)
        .ok_or(InitError::Overflow)?;
    let count = map_entries(nr_pages)?;
    let base = memblock.alloc_try_nid_raw(
        size,
        cfg.smp_cache_bytes,
        0,
        MEMBLOCK_ALLOC_ACCESSIBLE,
        pgdat.node_id as i32,
    )?;
    // memmap_init's values, written as the map is handed out (one store each): the
    // zones are contiguous from the node's start, each zone's span gets its
    // reserved template, what the aligned map has before the node stays
    // Page::ZEROED (and so does what follows it: the storage fills the rest).
    let mut runs: [(usize, crate::page::Page); 1 + MAX_NR_ZONES] =
        core::array::from_fn(|_| (0, crate::page::Page::ZEROED));
    runs[0].0 = (pgdat.node_start_pfn - start) as usize;
    for (r, z) in runs[1..].iter_mut().zip(&pgdat.zones) {
        *r = (
            z.spanned_pages as usize,
            super::memmap::reserved_template(z.zone_type, pgdat.node_id),
        );
    }
    let map = storage.mem_map_init(base, count, &runs)?;
    pgdat.mem_map = Some(map);
    pgdat.mem_map_phys = base;
    pgdat.mem_map_bytes = size;
    pgdat.mem_map_start_pfn = start;
    pgdat.node_mem_map_offset = pgdat.node_start_pfn - start;
    let node_mem_map = pgdat.page_phys(pgdat.node_start_pfn).unwrap_or(base);
    zk_debug!(
        "free_area_init_node: node {}, pgdat {:08x}, node_mem_map {:08x}",
        pgdat.node_id,
        pgdat.node_id,
        node_mem_map
    );
    Ok(())
}

/// The number of descriptors of a map of `nr_pages`: the lists link descriptors by
/// u32 index, `u32::MAX` meaning none, so a map has fewer entries (the allocator's
/// fast paths rely on it).
fn map_entries(nr_pages: u64) -> Result<usize, InitError> {
    match u32::try_from(nr_pages) {
        Ok(n) if n < u32::MAX => Ok(n as usize),
        _ => Err(InitError::Overflow),
    }
}
