//! The per-CPU page lists (Linux `mm/page_alloc.c`: `struct per_cpu_pages`,
//! `free_pcppages_bulk`, `nr_pcp_free`, `drain_local_pages`, `drain_all_pages`).
//!
//! Orders 0 to `PAGE_ALLOC_COSTLY_ORDER` (3), as Linux since 5.13 (no THP list: 32-bit
//! ARM has no PMD-sized THP order here): one list per (order, PCP migrate type),
//! `pcp->lists[NR_PCP_LISTS]` indexed by `order_to_pindex`, filled a batch at a time
//! by the allocation path (the batch scaled down by the order) and drained back to
//! the buddy above `high`; `count`, `batch` and `high` are in pages and shared by all
//! the lists.
//!
//! The lists are linked through the page descriptors like the buddy lists
//! (`next` towards the tail, `prev` towards the head), but each list's tail is
//! kept in [`PerCpuPages::tails`] instead of in its head's `prev` (the buddy
//! lists' circular link): taking the head, which every per-CPU allocation does,
//! then writes no other descriptor. A head's `prev` is never read.

use super::buddy::{FreeCounters, ZoneView, MIGRATE_PCPTYPES};
use super::{zone_view, PageAllocator, NIL};
use crate::mmtypes::MAX_NR_ZONES;
use crate::page::Page;
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

/// `struct per_cpu_pages`. Equal when the counts and lists are: the tail of an
/// empty list is not compared (it is stale).
#[derive(Clone, Copy, Debug, Eq)]
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
    /// List tails, meaningful only while the list's head is not [`Page::NIL`].
    pub tails: [u32; NR_PCP_LISTS],
}

impl PartialEq for PerCpuPages {
    fn eq(&self, other: &Self) -> bool {
        (
            self.count,
            self.high,
            self.batch,
            self.free_factor,
            self.lists,
        ) == (
            other.count,
            other.high,
            other.batch,
            other.free_factor,
            other.lists,
        ) && (0..NR_PCP_LISTS).all(|p| self.lists[p] == NIL || self.tails[p] == other.tails[p])
    }
}

impl PerCpuPages {
    pub(super) const EMPTY: PerCpuPages = PerCpuPages {
        count: 0,
        high: 0,
        batch: 1,
        free_factor: 0,
        lists: [NIL; NR_PCP_LISTS],
        tails: [NIL; NR_PCP_LISTS],
    };

    /// `list_add`: put page `i` at the head of list `p`.
    #[inline]
    pub(super) fn add_head(&mut self, map: &[Page], p: usize, i: u32) {
        let h = self.lists[p];
        let linked = self.link_head(map, p, i);
        debug_assert_eq!(linked, Some(h), "pcp list head names no page");
        map[i as usize].set_links(NIL, h);
        self.lists[p] = i;
    }

    /// The neighbour side of [`Self::add_head`]: link page `i` in front of list
    /// `p`'s head (the head's `prev`, or the tail of an empty list) and return that
    /// head, which `i`'s `next` must name; `i`'s own links and `lists[p]` are the
    /// caller's to write (the free fast path writes the whole descriptor at once).
    /// `None`, nothing changed, when the head names no page.
    #[inline(always)]
    pub(super) fn link_head(&mut self, map: &[Page], p: usize, i: u32) -> Option<u32> {
        let h = self.lists[p];
        // The bounds check first: NIL is never an index (a map has at most
        // u32::MAX entries), so a list with a head pays one comparison.
        match map.get(h as usize) {
            Some(head) => head.set_prev(i),
            None if h == NIL => self.tails[p] = i,
            None => return None,
        }
        Some(h)
    }

    /// `rmqueue_bulk`'s `list_add_tail`, for `k` blocks of `order` that follow each
    /// other in the `mem_map` from index `first`: each parked on list `p` with
    /// migrate type `mt` ([`Page::make_pcp_flags`]) and linked to its neighbours in
    /// one pass, counted in [`PerCpuPages::count`]. The same lists and descriptors
    /// as `k` `list_add_tail`s one by one. Nothing changes for an empty run; a run
    /// outside the map or a list that does not exist (no caller passes one) is a
    /// debug assertion, and in a release build changes nothing.
    #[inline(always)]
    pub(super) fn add_run_tail(
        &mut self,
        map: &[Page],
        p: usize,
        (first, k): (u32, u32),
        order: u32,
        mt: usize,
    ) {
        if k == 0 {
            return;
        }
        let step = 1usize << order;
        let start = first as usize;
        let (Some(run), Some(p_tail)) = (
            map.get(start..start + (k as usize) * step),
            self.tails.get_mut(p),
        ) else {
            debug_assert!(false, "a per-CPU run outside the mem_map or the lists");
            return;
        };
        let mut prev = if self.lists[p] == NIL {
            self.lists[p] = first;
            NIL
        } else {
            map[*p_tail as usize].set_next(first);
            *p_tail
        };
        let mut i = first;
        for block in run.chunks_exact(step) {
            let next = i + step as u32;
            block[0].make_pcp_flags(order, mt);
            block[0].set_links(prev, next);
            prev = i;
            i = next;
        }
        map[prev as usize].set_next(NIL);
        *p_tail = prev;
        self.count += k << order;
    }

    /// Unlink the head of list `p` (`list_first_entry` + `list_del`), `None` when
    /// the list is empty. Only the list head changes: the new head's `prev` is
    /// left as it was (never read).
    #[inline]
    pub(super) fn take_head(&mut self, map: &[Page], p: usize) -> Option<u32> {
        let i = self.lists[p];
        let page = map.get(i as usize)?;
        self.lists[p] = page.next();
        page.set_links(NIL, NIL);
        Some(i)
    }

    /// Unlink the tail of list `p` (`list_last_entry` + `list_del`): its `mem_map`
    /// index and descriptor, `None` when the list is empty.
    #[inline]
    pub(super) fn take_tail<'m>(&mut self, map: &'m [Page], p: usize) -> Option<(u32, &'m Page)> {
        if self.lists[p] == NIL {
            return None;
        }
        let t = self.tails[p];
        let page = &map[t as usize];
        if t == self.lists[p] {
            self.lists[p] = NIL;
        } else {
            let prev = page.prev();
            map[prev as usize].set_next(NIL);
            self.tails[p] = prev;
        }
        page.set_links(NIL, NIL);
        Some((t, page))
    }
}

impl<S: PageStorage, const NCPU: usize> PageAllocator<S, NCPU> {
    /// `drain_local_pages` for `cpu`: every per-CPU page back to the buddy lists.
    pub fn drain_pages(&mut self, cpu: usize) {
        if cpu >= NCPU {
            return;
        }
        for z in 0..MAX_NR_ZONES {
            let PageAllocator {
                node,
                zones,
                pcp,
                routes,
                ..
            } = self;
            let pcp = &mut pcp[cpu][z];
            if pcp.count == 0 {
                continue;
            }
            let c = &mut zones[z].counters;
            if let Some(mut v) = zone_view(node, z, routes.block_view(z)) {
                let n = pcp.count;
                free_pcppages_bulk(&mut v, pcp, n, 0, c);
            }
            self.refresh_fast_orders(z);
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
        // Tails first (the oldest pages), until the count is reached or the list
        // is empty.
        while let Some((i, page)) = pcp.take_tail(v.map, p) {
            count -= nr_pages as i64;
            pcp.count -= nr_pages;
            let mt = page.take_off_pcp();
            let pfn = v.map_start + i as u64;
            v.free_one_page_inline(pfn, order, mt, false, c);
            if count <= 0 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list from head to tail along `next`, checking each `prev` but the head's.
    fn contents(map: &[Page], pcp: &PerCpuPages, p: usize) -> alloc::vec::Vec<u32> {
        let mut v = alloc::vec::Vec::new();
        let mut i = pcp.lists[p];
        while i != NIL {
            if let Some(&last) = v.last() {
                assert_eq!(map[i as usize].prev(), last, "prev of {i}");
            }
            v.push(i);
            i = map[i as usize].next();
        }
        if let Some(&last) = v.last() {
            assert_eq!(pcp.tails[p], last, "tail");
        }
        v
    }

    #[test]
    fn lists_keep_order_with_the_tail_apart() {
        let map = alloc::vec![Page::ZEROED; 8];
        let mut pcp = PerCpuPages::EMPTY;
        pcp.add_head(&map, 2, 3);
        pcp.add_run_tail(&map, 2, (5, 1), 0, 0);
        pcp.add_head(&map, 2, 1);
        pcp.add_run_tail(&map, 2, (6, 1), 0, 0);
        assert_eq!(contents(&map, &pcp, 2), [1, 3, 5, 6]);
        // Other lists are untouched.
        assert!((0..NR_PCP_LISTS)
            .filter(|&p| p != 2)
            .all(|p| pcp.lists[p] == NIL));
        assert_eq!(pcp.take_tail(&map, 2).map(|t| t.0), Some(6));
        assert_eq!(pcp.take_head(&map, 2), Some(1));
        assert_eq!(contents(&map, &pcp, 2), [3, 5]);
        // Taken pages leave unlinked.
        assert_eq!((map[1].prev(), map[1].next()), (NIL, NIL));
        assert_eq!((map[6].prev(), map[6].next()), (NIL, NIL));
        // A list emptied from either end takes new pages at both ends again.
        assert_eq!(pcp.take_head(&map, 2), Some(3));
        assert_eq!(pcp.take_tail(&map, 2).map(|t| t.0), Some(5));
        assert_eq!(
            (pcp.take_head(&map, 2), pcp.take_tail(&map, 2).map(|t| t.0)),
            (None, None)
        );
        pcp.add_run_tail(&map, 2, (4, 1), 0, 0);
        pcp.add_head(&map, 2, 7);
        assert_eq!(contents(&map, &pcp, 2), [7, 4]);
        // A run of blocks joins the tail in address order, one block per 2^order
        // pages, each parked with its order and type.
        let mut runs = PerCpuPages::EMPTY;
        let big = alloc::vec![Page::ZEROED; 32];
        runs.add_run_tail(&big, 5, (8, 3), 2, 1);
        runs.add_run_tail(&big, 5, (24, 1), 2, 1);
        assert_eq!(contents(&big, &runs, 5), [8, 12, 16, 24]);
        assert_eq!(runs.count, 16);
        assert!([8, 12, 16, 24]
            .iter()
            .all(|&i| big[i].is_pcp() && big[i].list_mt() == 1));
        assert_eq!(big[9], Page::ZEROED);
        assert_eq!(pcp.take_tail(&map, 2).map(|t| t.0), Some(4));
        assert_eq!(pcp.take_tail(&map, 2).map(|t| t.0), Some(7));
        assert_eq!(pcp.lists[2], NIL);
        // An emptied list equals a fresh one, whatever its stale tail says.
        assert_ne!(pcp.tails[2], NIL);
        // The runs added counted their pages; taking pages leaves the count to
        // the caller.
        assert_eq!(pcp.count, 3);
        pcp.count = 0;
        assert_eq!(pcp, PerCpuPages::EMPTY);
        pcp.add_head(&map, 2, 7);
        let mut other = pcp;
        other.tails[2] = 3;
        assert_ne!(pcp, other);
    }
}
