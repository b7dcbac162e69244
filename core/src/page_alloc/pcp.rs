//! The per-CPU page lists (Linux `mm/page_alloc.c`: `struct per_cpu_pages`,
//! `free_pcppages_bulk`, `nr_pcp_free`, `drain_local_pages`, `drain_all_pages`).
//!
//! Order-0 pages only (Linux 6.1 also keeps orders 1-3 and THP there): one list per
//! PCP migrate type, filled a batch at a time by the allocation path and drained
//! back to the buddy above `high`.

use super::buddy::{list_del, list_tail, FreeCounters, ZoneView, MIGRATE_PCPTYPES};
use super::{zone_view, PageAllocator, NIL};
use crate::mmtypes::MAX_NR_ZONES;
use crate::storage::PageStorage;

/// `struct per_cpu_pages` (order-0 lists only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerCpuPages {
    /// Pages on the lists.
    pub count: u32,
    /// Drain above this.
    pub high: u32,
    /// Refill/drain chunk.
    pub batch: u32,
    /// `free_factor`: doubles the drain while frees run without allocations.
    pub free_factor: u32,
    /// List heads per PCP migrate type (mem_map indices).
    pub lists: [u32; MIGRATE_PCPTYPES],
}

impl PerCpuPages {
    pub(super) const EMPTY: PerCpuPages = PerCpuPages {
        count: 0,
        high: 0,
        batch: 1,
        free_factor: 0,
        lists: [NIL; MIGRATE_PCPTYPES],
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
pub(super) fn nr_pcp_free(pcp: &mut PerCpuPages) -> u32 {
    let (high, batch) = (pcp.high, pcp.batch);
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
    let mut count = count.min(pcp.count);
    let mut pindex = pindex + MIGRATE_PCPTYPES - 1;
    while count > 0 {
        loop {
            pindex = (pindex + 1) % MIGRATE_PCPTYPES;
            if pcp.lists[pindex] != NIL {
                break;
            }
        }
        loop {
            let i = list_tail(v.map, pcp.lists[pindex]);
            list_del(v.map, &mut pcp.lists[pindex], i);
            count -= 1;
            pcp.count -= 1;
            let page = &mut v.map[i as usize];
            page.clear_pcp();
            let mt = page.list_mt();
            let pfn = v.map_start + i as u64;
            v.free_one_page(pfn, 0, mt, false, c);
            if count == 0 || pcp.lists[pindex] == NIL {
                break;
            }
        }
    }
}
