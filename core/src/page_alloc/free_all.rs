//! `memblock_free_all` and ARM's `free_highpages` (Linux `mm/memblock.c`,
//! `arch/arm/mm/init.c`): memblock is retired and every whole free page enters the
//! buddy lists of its zone; and the values of the `Memory:` boot line
//! (`mem_init_print_info`, `mm/page_alloc.c`).
//!
//! This runs on the node before [`PageAllocator::new`] takes it over, through the
//! same buddy code the allocator uses.
//!
//! [`PageAllocator::new`]: super::PageAllocator::new

use super::blocks::BlockTableView;
use super::buddy::FreeCounters;
use super::zone_view;
use crate::addr::{pfn_down, pfn_up, Pfn};
use crate::memblock::{Memblock, RegionFlags, NUMA_NO_NODE};
use crate::mmtypes::MAX_NR_ZONES;
use crate::storage::PageStorage;
use crate::zone::PgData;

/// What [`memblock_free_all`] freed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeAllStats {
    /// Pages freed below `max_low_pfn`.
    pub lowmem_pages: u64,
    /// Pages freed at or above `max_low_pfn` (ARM's `free_highpages`).
    pub highmem_pages: u64,
    /// Pages freed per zone (the zones' new managed pages).
    pub per_zone: [u64; MAX_NR_ZONES],
    /// Present pages of the node (`get_num_physpages`).
    pub present_pages: u64,
}

impl FreeAllStats {
    /// `totalram_pages` after the call.
    pub fn totalram(&self) -> u64 {
        self.lowmem_pages + self.highmem_pages
    }
}

/// Free `[s, e)` into the zones it covers: in max-aligned blocks with `FPI_TO_TAIL`
/// (`__free_pages_memory`) or page by page (`free_highpages`).
fn free_pfn_range<S: PageStorage>(
    node: &mut PgData<S>,
    s: Pfn,
    e: Pfn,
    blocks: bool,
    stats: &mut FreeAllStats,
) {
    for z in 0..MAX_NR_ZONES {
        let zone = &node.zones[z];
        let (a, b) = (s.max(zone.zone_start_pfn), e.min(zone.zone_end_pfn()));
        if a >= b || zone.nr_orders == 0 {
            continue;
        }
        let max = zone.nr_orders as u32 - 1;
        let Some(mut v) = zone_view(node, z, BlockTableView::NONE) else {
            continue;
        };
        let mut c = FreeCounters::default();
        // __free_pages_core's per-page part, over the whole range at once:
        // __ClearPageReserved and set_page_count(0). Every descriptor of the range
        // still holds the value memmap_init gave the zone (nothing touches a free
        // page's descriptor before this), so the result is one value, stored whole.
        let (lo, hi) = ((a - v.map_start) as usize, (b - v.map_start) as usize);
        // (tests/tests/buddy.rs checks that value on every free page before the
        // call: `free_pages_hold_their_zone_value_before_free_all`.)
        let reserved = v.map[lo].clone();
        crate::page::Page::release_reserved(&v.map[lo..hi], &reserved);
        let mut pfn = a;
        while pfn < b {
            let mut order = if blocks {
                max.min(pfn.trailing_zeros())
            } else {
                0
            };
            while pfn + (1 << order) > b {
                order -= 1;
            }
            let mt = v.pageblock_mt(pfn);
            v.free_one_page(pfn, order, mt, blocks, &mut c);
            pfn += 1 << order;
        }
        let freed = b - a;
        node.zones[z].managed_pages += freed;
        stats.per_zone[z] += freed;
    }
}

/// `memblock_free_all` followed by ARM's `free_highpages`: every free memblock range
/// (`memory` minus `reserved`, NOMAP excluded), whole pages
/// `[PFN_UP(start), PFN_DOWN(end))` only, loses `PG_reserved` and enters the free
/// lists of its zone. Lowmem (below `max_low_pfn`) goes first in the largest naturally
/// aligned blocks (`__free_pages_memory`); highmem follows, also in blocks (Linux frees
/// it page by page, which merges to the same blocks). Managed pages are reset to 0 and count what was freed
/// (`reset_all_zones_managed_pages` + `adjust_managed_page_count`).
pub fn memblock_free_all<S: PageStorage, const N: usize>(
    node: &mut PgData<S>,
    memblock: &Memblock<N>,
    max_low_pfn: Pfn,
) -> FreeAllStats {
    for z in node.zones.iter_mut() {
        z.managed_pages = 0;
    }
    let mut stats = FreeAllStats {
        present_pages: node.node_present_pages,
        ..Default::default()
    };
    for (start, end, _) in memblock.free_ranges(NUMA_NO_NODE, RegionFlags::NONE) {
        let (s, e) = (pfn_up(start), pfn_down(end).min(max_low_pfn));
        if s < e {
            let before: u64 = stats.per_zone.iter().sum();
            free_pfn_range(node, s, e, true, &mut stats);
            stats.lowmem_pages += stats.per_zone.iter().sum::<u64>() - before;
        }
    }
    for (start, end, _) in memblock.free_ranges(NUMA_NO_NODE, RegionFlags::NONE) {
        let (s, e) = (pfn_up(start).max(max_low_pfn), pfn_down(end));
        if s < e {
            let before: u64 = stats.per_zone.iter().sum();
            // ARM's free_highpages frees page by page; freeing the same range in
            // maximal aligned blocks ends in the same free blocks (page-by-page frees
            // of a contiguous range merge into exactly them), without the per-page
            // merge walks. Only the order within the free lists differs.
            free_pfn_range(node, s, e, true, &mut stats);
            stats.highmem_pages += stats.per_zone.iter().sum::<u64>() - before;
        }
    }
    stats
}

/// The values of Linux's `Memory:` boot line (`mem_init_print_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLine {
    /// `nr_free_pages()` in KiB (= totalram right after `memblock_free_all`).
    pub available_k: u64,
    /// Present pages in KiB.
    pub total_k: u64,
    /// `total - available - cma`.
    pub reserved_k: u64,
    /// The CMA area in KiB (0 without CMA).
    pub cma_k: u64,
    /// Highmem pages freed, in KiB.
    pub highmem_k: u64,
    /// zonekit's own boot allocations: the `mem_map` and the usemaps, in KiB (part of
    /// `reserved`). zonekit has no kernel text/data sections to list.
    pub memmap_k: u64,
}

impl MemoryLine {
    /// The line's values from what `memblock_free_all` freed and the CMA area size.
    pub fn new<S: PageStorage>(node: &PgData<S>, stats: &FreeAllStats, cma_bytes: u64) -> Self {
        let total_k = stats.present_pages * 4;
        let available_k = stats.totalram() * 4;
        let cma_k = cma_bytes >> 10;
        let usemaps: u64 = node.zones.iter().map(|z| z.usemap_bytes).sum();
        MemoryLine {
            available_k,
            total_k,
            reserved_k: total_k.saturating_sub(available_k + cma_k),
            cma_k,
            highmem_k: stats.highmem_pages * 4,
            memmap_k: (node.mem_map_bytes + usemaps).div_ceil(1024),
        }
    }
}

impl core::fmt::Display for MemoryLine {
    /// `Memory: <avail>K/<total>K available (<m>K mem_map, <r>K reserved[, <c>K
    /// cma-reserved], <h>K highmem)`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Memory: {}K/{}K available ({}K mem_map, {}K reserved",
            self.available_k, self.total_k, self.memmap_k, self.reserved_k
        )?;
        if self.cma_k > 0 {
            write!(f, ", {}K cma-reserved", self.cma_k)?;
        }
        write!(f, ", {}K highmem)", self.highmem_k)
    }
}
