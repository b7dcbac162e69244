//! The per-CPU page lists (Linux `mm/page_alloc.c`: `struct per_cpu_pages`,
//! `free_pcppages_bulk`, `nr_pcp_free`, `drain_local_pages`, `drain_all_pages`).
//!
//! Orders 0 to `PAGE_ALLOC_COSTLY_ORDER` (3), as Linux since 5.13 (no THP list: 32-bit
//! ARM has no PMD-sized THP order here): one list per (order, PCP migrate type),
//! `pcp->lists[NR_PCP_LISTS]` indexed by `order_to_pindex`, filled a batch at a time
//! by the allocation path (the batch scaled down by the order) and drained back to
//! the buddy above `high`; `count`, `batch` and `high` are in pages and shared by all
//! the lists.

use super::buddy::{list_del, list_tail, FreeCounters, ZoneView, MIGRATE_PCPTYPES};
use super::{zone_view, PageAllocator, NIL};
use crate::mmtypes::MAX_NR_ZONES;
use crate::storage::PageStorage;

/// `PAGE_ALLOC_COSTLY_ORDER`: the highest order kept on the per-CPU lists.
pub const PAGE_ALLOC_COSTLY_ORDER: u32 = 3;
/// `NR_PCP_LISTS` (no THP list).
pub const NR_PCP_LISTS: usize = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER as usize + 1);

/// `order_to_pindex`.
#[inline]
pub(super) const fn order_to_pindex(mt: usize, order: u32) -> usize {
    order as usize * MIGRATE_PCPTYPES + mt
}

/// `pindex_to_order`.
#[inline]
pub(super) const fn pindex_to_order(pindex: usize) -> u32 {
    (pindex / MIGRATE_PCPTYPES) as u32
}

/// `struct per_cpu_pages`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerCpuPages {
    /// Pages on the lists (a block of order `o` counts `2^o`).
    pub count: u32,
    /// Drain above this.
    pub high: u32,
    /// Refill/drain chunk.
    pub batch: u32,
    /// `free_factor`: doubles the drain while frees run without allocations.
    pub free_factor: u32,
    /// List heads (mem_map indices), indexed by `order * MIGRATE_PCPTYPES + mt`.
    pub lists: [u32; NR_PCP_LISTS],
}

impl PerCpuPages {
    pub(super) const EMPTY: PerCpuPages = PerCpuPages {
        count: 0,
        high: 0,
        batch: 1,
        free_factor: 0,
        lists: [NIL; NR_PCP_LISTS],
    };
}

impl<S: PageStorage, const NCPU: usize> PageAllocator<S, NCPU> {
    /// `drain_local_pages` for `cpu`: every per-CPU page back to the buddy lists.
    pub fn drain_pages(&mut self, cpu: usize) {
        if cpu >= NCPU {
            return;
        }
        for z in 0..MAX_NR_ZONES {
            let PageAllocator {
                node, zones, pcp, ..
            } = self;
            let pcp = &mut pcp[cpu][z];
            if pcp.count == 0 {
                continue;
            }
            let c = &mut zones[z].counters;
            if let Some(mut v) = zone_view(node, z) {
                let n = pcp.count;
                free_pcppages_bulk(&mut v, pcp, n, 0, c);
            }
        }
    }

    /// `drain_all_pages`.
    pub fn drain_all_pages(&mut self) {
        for cpu in 0..NCPU {
            self.drain_pages(cpu);
        }
    }
}

/// `nr_pcp_free`.
pub(super) fn nr_pcp_free(pcp: &mut PerCpuPages, high: u32, free_high: bool) -> u32 {
    // Free everything if batch freeing high-order pages.
    if free_high {
        return pcp.count;
    }
    let batch = pcp.batch;
    if high < batch {
        return 1;
    }
    let min_nr = batch;
    let max_nr = high - batch;
    let b = batch.checked_shl(pcp.free_factor).unwrap_or(u32::MAX);
    if b < max_nr {
        pcp.free_factor += 1;
    }
    b.min(max_nr).max(min_nr)
}

/// `free_pcppages_bulk`: `count` pages from the tails of the lists, round robin
/// starting with `pindex`, back to the buddy.
pub(super) fn free_pcppages_bulk(
    v: &mut ZoneView<'_>,
    pcp: &mut PerCpuPages,
    count: u32,
    pindex: usize,
    c: &mut FreeCounters,
) {
    let mut count = count.min(pcp.count) as i64;
    // Round robin over the non-empty lists, the requested pindex first (Linux also
    // narrows [min_pindex, max_pindex] past empty lists at the ends: the lists
    // visited, and their order, are the same).
    let mut p = (pindex + NR_PCP_LISTS - 1) % NR_PCP_LISTS;
    while count > 0 {
        loop {
            p = (p + 1) % NR_PCP_LISTS;
            if pcp.lists[p] != NIL {
                break;
            }
        }
        let order = pindex_to_order(p);
        let nr_pages = 1u32 << order;
        loop {
            let i = list_tail(v.map, pcp.lists[p]);
            list_del(v.map, &mut pcp.lists[p], i);
            count -= nr_pages as i64;
            pcp.count -= nr_pages;
            let mt = v.map[i as usize].take_off_pcp();
            let pfn = v.map_start + i as u64;
            v.free_one_page_inline(pfn, order, mt, false, c);
            if count <= 0 || pcp.lists[p] == NIL {
                break;
            }
        }
    }
}
