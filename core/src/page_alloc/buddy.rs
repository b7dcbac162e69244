//! The buddy free lists of a zone (Linux 6.1 `mm/page_alloc.c`): `__free_one_page`,
//! `expand`, `__rmqueue_smallest`, `__rmqueue_fallback` with `steal_suitable_fallback`,
//! `move_freepages_block`.
//!
//! Free lists are doubly linked through the page descriptors (`Page::next` /
//! `Page::prev` hold `mem_map` indices): the list head in `FreeArea::free_list[mt]`
//! names the first page, the first page's `prev` names the last one (so adding at the
//! tail is O(1)) and the last page's `next` is [`Page::NIL`]. A free block's head has
//! `PG_buddy`, its order and the migrate type of the list it is on; the other pages of
//! the block are plain (`_refcount` 0, no flags).
//!
//! These functions work on a zone and the node's `mem_map` slice; the caller holds the
//! zone lock (`&mut`). They keep the caller's [`FreeCounters`] (`NR_FREE_PAGES`,
//! `NR_FREE_CMA_PAGES`) in step.

use crate::addr::Pfn;
use crate::mmtypes::{MigrateType, MIGRATE_TYPES};
use crate::page::Page;
use crate::storage::PageStorage;
use crate::zone::{FreeArea, Zone, MAX_ORDER_LIMIT};
use core::sync::atomic::{AtomicU8, Ordering};

const NIL: u32 = Page::NIL;
const UNMOVABLE: usize = MigrateType::Unmovable as usize;
const MOVABLE: usize = MigrateType::Movable as usize;
const RECLAIMABLE: usize = MigrateType::Reclaimable as usize;
const HIGHATOMIC: usize = MigrateType::HighAtomic as usize;
const CMA: usize = MigrateType::Cma as usize;
/// `MIGRATE_PCPTYPES`.
pub const MIGRATE_PCPTYPES: usize = 3;

/// Linux 6.1's `fallbacks[]`: where an allocation of each PCP type may steal from, in
/// order.
pub const FALLBACKS: [[usize; 2]; MIGRATE_PCPTYPES] = [
    [RECLAIMABLE, MOVABLE],   // UNMOVABLE
    [RECLAIMABLE, UNMOVABLE], // MOVABLE
    [UNMOVABLE, MOVABLE],     // RECLAIMABLE
];

/// The zone's free-page counters (`NR_FREE_PAGES`, `NR_FREE_CMA_PAGES`), in the
/// native word like Linux's `atomic_long_t` vmstat counters: a 32-bit core
/// updates and compares them in one register (a zone has fewer than 2^32 pages),
/// where a u64 takes two on every buddy operation and in the allocation fast
/// path's watermark test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeCounters {
    /// Pages on the buddy free lists.
    pub free: usize,
    /// Of those, pages on `MIGRATE_CMA` lists.
    pub free_cma: usize,
}

impl FreeCounters {
    #[inline]
    fn add(&mut self, nr: usize, mt: usize) {
        self.free += nr;
        if mt == CMA {
            self.free_cma += nr;
        }
    }

    #[inline]
    fn sub(&mut self, nr: usize, mt: usize) {
        self.free -= nr;
        if mt == CMA {
            self.free_cma -= nr;
        }
    }
}

/// The pieces of a zone the buddy needs, borrowed apart from the `mem_map`.
pub(crate) struct ZoneView<'a> {
    pub map: &'a [Page],
    pub map_start: Pfn,
    pub start: Pfn,
    pub end: Pfn,
    pub nr_orders: u32,
    pub pageblock_order: u32,
    pub free_area: &'a mut [FreeArea; MAX_ORDER_LIMIT],
    pub free_orders: &'a mut crate::zone::FreeOrders,
    pub usemap: &'a [AtomicU8],
    pub usemap_base: Pfn,
    /// The allocator's pageblock table, kept in step with the usemap.
    pub blocks: super::blocks::BlockTableView<'a>,
    /// The zone and node links of the zone's pages (`allocated_flags(.., 0)`).
    pub links: u32,
}

impl<'a> ZoneView<'a> {
    /// Borrow zone `zone` and the `mem_map` apart.
    #[inline]
    pub fn new<S: PageStorage>(
        map: &'a [Page],
        map_start: Pfn,
        zone: &'a mut Zone<S>,
        blocks: super::blocks::BlockTableView<'a>,
    ) -> Option<Self> {
        let start = zone.zone_start_pfn;
        let end = zone.zone_end_pfn();
        let pb = zone.pageblock_order;
        let usemap: &'a [AtomicU8] = zone.usemap.as_deref()?;
        Some(ZoneView {
            map,
            map_start,
            start,
            end,
            nr_orders: zone.nr_orders as u32,
            pageblock_order: pb,
            free_area: &mut zone.free_area,
            free_orders: &mut zone.free_orders,
            usemap,
            usemap_base: crate::addr::align_down(start, 1 << pb),
            blocks,
            links: crate::page::allocated_flags(zone.zone_type, zone.node, 0),
        })
    }

    #[inline]
    pub fn idx(&self, pfn: Pfn) -> u32 {
        (pfn - self.map_start) as u32
    }

    /// The `mem_map` index and descriptor of `pfn`, `None` outside the map.
    #[inline]
    fn page_at(&self, pfn: Pfn) -> Option<(u32, &'a Page)> {
        let map: &'a [Page] = self.map;
        let i = usize::try_from(pfn.wrapping_sub(self.map_start)).ok()?;
        // A map has at most u32::MAX entries (its links are u32).
        Some((i as u32, map.get(i)?))
    }

    #[inline]
    pub fn page(&self, pfn: Pfn) -> &Page {
        &self.map[(pfn - self.map_start) as usize]
    }

    #[inline]
    pub fn contains(&self, pfn: Pfn) -> bool {
        pfn >= self.start && pfn < self.end
    }

    /// `get_pageblock_migratetype`.
    #[inline]
    pub fn pageblock_mt(&self, pfn: Pfn) -> usize {
        let bit = ((pfn - self.usemap_base) >> self.pageblock_order) * 4;
        let b = self.usemap[(bit / 8) as usize].load(Ordering::Relaxed);
        let mt = ((b >> (bit % 8)) & 7) as usize;
        if mt < MIGRATE_TYPES {
            mt
        } else {
            MOVABLE
        }
    }

    /// `set_pageblock_migratetype`.
    pub fn set_pageblock_mt(&mut self, pfn: Pfn, mt: usize) {
        let bit = ((pfn - self.usemap_base) >> self.pageblock_order) * 4;
        let b = &self.usemap[(bit / 8) as usize];
        let shift = bit % 8;
        let old = b.load(Ordering::Relaxed);
        b.store(
            (old & !(7 << shift)) | ((mt as u8) << shift),
            Ordering::Relaxed,
        );
        self.blocks.set(pfn - self.map_start, mt as u8);
    }
}

/// Insert `i` at the head of the list.
#[inline(always)]
fn list_add(map: &[Page], head: &mut u32, i: u32) {
    let h = *head;
    if h == NIL {
        map[i as usize].set_links(i, NIL);
    } else {
        let tail = map[h as usize].prev();
        map[i as usize].set_links(tail, h);
        map[h as usize].set_prev(i);
    }
    *head = i;
}

/// Insert `i` at the tail of the list.
#[inline]
fn list_add_tail(map: &[Page], head: &mut u32, i: u32) {
    let h = *head;
    if h == NIL {
        map[i as usize].set_links(i, NIL);
        *head = i;
    } else {
        let tail = map[h as usize].prev();
        map[tail as usize].set_next(i);
        map[i as usize].set_links(tail, NIL);
        map[h as usize].set_prev(i);
    }
}

/// Unlink `i`, whose descriptor is `page`, from the list.
#[inline(always)]
fn list_del_page(map: &[Page], head: &mut u32, i: u32, page: &Page) {
    let (p, n) = (page.prev(), page.next());
    if *head == i {
        *head = n;
        if n != NIL {
            map[n as usize].set_prev(p);
        }
    } else {
        map[p as usize].set_next(n);
        if n != NIL {
            map[n as usize].set_prev(p);
        } else {
            let h = *head;
            map[h as usize].set_prev(p);
        }
    }
    page.set_links(NIL, NIL);
}

/// A free buddy [`ZoneView::free_buddy`] found: its pfn, `mem_map` index and
/// descriptor.
#[derive(Clone, Copy)]
struct FreeBuddy<'a> {
    pfn: Pfn,
    index: u32,
    page: &'a Page,
}

/// `migratetype_is_mergeable`.
#[inline]
fn mergeable(mt: usize) -> bool {
    mt < MIGRATE_PCPTYPES
}

impl<'a> ZoneView<'a> {
    /// Put the block at `pfn` on the free list of `order`/`mt` (head or tail).
    #[inline(always)]
    fn add_free(&mut self, pfn: Pfn, order: u32, mt: usize, tail: bool, c: &mut FreeCounters) {
        let i = self.idx(pfn);
        let p = &self.map[i as usize];
        p.make_buddy_in(self.links, order, mt);
        let area = &mut self.free_area[order as usize];
        if tail {
            list_add_tail(self.map, &mut area.free_list[mt], i);
        } else {
            list_add(self.map, &mut area.free_list[mt], i);
        }
        area.nr_free += 1;
        self.free_orders.set(mt, order);
        c.add(1 << order, mt);
    }

    /// Take the free block at `pfn` (a `PageBuddy` head of `order`) off its list.
    #[inline(always)]
    fn del_free(&mut self, pfn: Pfn, order: u32, c: &mut FreeCounters) {
        let i = self.idx(pfn);
        let map = self.map;
        self.del_free_page(i, &map[i as usize], order, c);
    }

    /// [`Self::del_free`] of `page`, the descriptor of `mem_map` index `i`.
    #[inline(always)]
    fn del_free_page(&mut self, i: u32, page: &Page, order: u32, c: &mut FreeCounters) {
        let mt = page.take_off_buddy();
        let area = &mut self.free_area[order as usize];
        list_del_page(self.map, &mut area.free_list[mt], i, page);
        if area.free_list[mt] == NIL {
            self.free_orders.clear(mt, order);
        }
        area.nr_free -= 1;
        c.sub(1 << order, mt);
    }

    /// `move_to_free_list`: move a free block to the list of `mt` (at the tail).
    fn move_free(&mut self, pfn: Pfn, order: u32, mt: usize, c: &mut FreeCounters) {
        self.del_free(pfn, order, c);
        self.add_free(pfn, order, mt, true, c);
    }

    /// `find_buddy_page_pfn`: the buddy of `pfn` at `order` if it is a free block of
    /// that order in this zone.
    #[inline]
    fn free_buddy(&self, pfn: Pfn, order: u32) -> Option<FreeBuddy<'a>> {
        self.free_buddy_of(pfn, order, self.links)
    }

    /// [`Self::free_buddy`] for a page whose zone and node links are `links`: the
    /// buddy is inside the map and a free head of `order` with the same links
    /// (only a zone's own pages are ever put on its lists).
    #[inline]
    fn free_buddy_of(&self, pfn: Pfn, order: u32, links: u32) -> Option<FreeBuddy<'a>> {
        let pfn = pfn ^ (1 << order);
        let (index, page) = self.page_at(pfn)?;
        page.is_buddy_of_order_in(order, links)
            .then_some(FreeBuddy { pfn, index, page })
    }

    /// `__free_one_page`: free the block `pfn`/`order` with migrate type `mt`, merging
    /// with free buddies; `to_tail` is `FPI_TO_TAIL`.
    pub fn free_one_page(
        &mut self,
        pfn: Pfn,
        order: u32,
        mt: usize,
        to_tail: bool,
        c: &mut FreeCounters,
    ) {
        self.free_one_page_inline(pfn, order, mt, to_tail, c);
    }

    /// [`ZoneView::free_one_page`] inlined into a caller's loop (`free_pcppages_bulk`),
    /// so that the view's fields stay in registers from one page to the next.
    #[inline(always)]
    pub fn free_one_page_inline(
        &mut self,
        mut pfn: Pfn,
        mut order: u32,
        mt: usize,
        to_tail: bool,
        c: &mut FreeCounters,
    ) {
        // Known below MAX_ORDER_LIMIT, the merged order indexes the free areas and
        // fills the order field without a check.
        let max = (self.nr_orders - 1).min(MAX_ORDER_LIMIT as u32 - 1);
        while order < max {
            let Some(buddy) = self.free_buddy(pfn, order) else {
                break;
            };
            if order >= self.pageblock_order {
                let bmt = self.pageblock_mt(buddy.pfn);
                if mt != bmt && (!mergeable(mt) || !mergeable(bmt)) {
                    break;
                }
            }
            self.del_free_page(buddy.index, buddy.page, order, c);
            pfn &= buddy.pfn;
            order += 1;
        }
        let tail = to_tail
            || (order + 2 < self.nr_orders && {
                // buddy_merge_likely: the block one order up could merge next.
                // Its first page may be the buddy that did not merge, in the next
                // zone: page_is_buddy compares with that page's own zone.
                let higher = pfn & !(1 << order);
                self.page_at(higher)
                    .and_then(|(_, p)| self.free_buddy_of(higher, order + 1, p.links()))
                    .is_some()
            });
        self.add_free(pfn, order, mt, tail, c);
    }

    /// `expand`: split the block `pfn`/`high` down to `low`, freeing the upper halves.
    #[inline(always)]
    fn expand(&mut self, pfn: Pfn, low: u32, mut high: u32, mt: usize, c: &mut FreeCounters) {
        while high > low {
            high -= 1;
            self.add_free(pfn + (1 << high), high, mt, false, c);
        }
    }

    /// The lowest order at or above `order` whose list of `mt` has a block.
    #[inline]
    fn smallest_order(&self, order: u32, mt: usize) -> Option<u32> {
        let above = self.free_orders.by_type().get(mt)?.checked_shr(order)?;
        (above != 0).then(|| order + above.trailing_zeros())
    }

    /// `__rmqueue_smallest`: the smallest free block of `mt` at or above `order`, split
    /// down to `order`.
    pub fn rmqueue_smallest(&mut self, order: u32, mt: usize, c: &mut FreeCounters) -> Option<Pfn> {
        let cur = self.smallest_order(order, mt)?;
        let head = self.free_area[cur as usize].free_list[mt];
        let pfn = self.map_start + head as u64;
        self.del_free(pfn, cur, c);
        self.expand(pfn, order, cur, mt, c);
        Some(pfn)
    }

    /// `__rmqueue_smallest` for blocks of `order` and `mt`, up to `n` times in a row,
    /// a run at a time (`rmqueue_bulk`'s loop): `run(first, k)` gets `k` blocks of
    /// `order` that follow each other from `mem_map` index `first`, in the order the
    /// `n` calls would have returned them, and the free lists end as those calls
    /// would have left them. Returns how many blocks were taken (fewer than `n` when
    /// no block of `mt` at or above `order` is left).
    ///
    /// Why that is the same: the block found, of order `cur`, is the smallest of
    /// `mt`, so the lists of `mt` from `order` to `cur - 1` are empty. Each call then
    /// splits the lowest piece left of that block, so the calls return its blocks
    /// of `order` from its start upwards, and after `k` of them the rest of it lies
    /// in aligned pieces, one per set bit of `2^(cur - order) - k`, each alone on its
    /// list. The blocks taken were free heads only on their way out (the caller
    /// rewrites their flags and links); the pages inside the pieces left were
    /// never touched. One list removal per block found, instead of one per block
    /// handed out plus a split.
    #[inline(always)]
    pub fn rmqueue_smallest_bulk(
        &mut self,
        order: u32,
        mt: usize,
        n: u32,
        c: &mut FreeCounters,
        mut run: impl FnMut(u32, u32),
    ) -> u32 {
        let mut taken = 0;
        while taken < n {
            let Some(cur) = self.smallest_order(order, mt) else {
                break;
            };
            let head = self.free_area[cur as usize].free_list[mt];
            self.del_free(self.map_start + u64::from(head), cur, c);
            let blocks = 1u32 << (cur - order);
            let k = blocks.min(n - taken);
            run(head, k);
            // What is left, from the lowest piece up: a piece's order is the lowest
            // set bit of the blocks left, which is also where it is aligned.
            let mut rest = blocks - k;
            let mut at = head + (k << order);
            while rest != 0 {
                let j = order + rest.trailing_zeros();
                self.add_free(self.map_start + u64::from(at), j, mt, false, c);
                at += 1 << j;
                rest &= rest - 1;
            }
            taken += k;
        }
        taken
    }

    /// `can_steal_fallback`.
    fn can_steal(&self, order: u32, start_mt: usize) -> bool {
        order >= self.pageblock_order
            || order >= self.pageblock_order / 2
            || start_mt == RECLAIMABLE
            || start_mt == UNMOVABLE
    }

    /// `__rmqueue_fallback`: steal a block of another type for `start_mt`. Returns
    /// whether a block was moved (the caller retries `__rmqueue_smallest`).
    ///
    /// `find_suitable_fallback` over the orders from the top down: the highest
    /// order with a block on one of `start_mt`'s fallback lists, or, for a MOVABLE
    /// allocation that could not steal that block's pageblock, the lowest
    /// (`find_smallest`); the list is the first fallback type with a block there.
    pub fn rmqueue_fallback(&mut self, order: u32, start_mt: usize, c: &mut FreeCounters) -> bool {
        let Some(fallbacks) = FALLBACKS.get(start_mt) else {
            return false;
        };
        let at_or_above = u16::MAX.checked_shl(order).unwrap_or(0);
        let usable = fallbacks.iter().fold(0, |m, &f| m | self.free_orders.of(f)) & at_or_above;
        if usable == 0 {
            return false;
        }
        let top = u16::BITS - 1 - usable.leading_zeros();
        let cur = if !self.can_steal(top, start_mt) && start_mt == MOVABLE && top > order {
            usable.trailing_zeros()
        } else {
            top
        };
        // Some fallback list has a block at `cur` (its bit is in `usable`).
        let Some(&f) = fallbacks
            .iter()
            .find(|&&f| self.free_orders.of(f) & 1 << cur != 0)
        else {
            return false;
        };
        let whole = self.can_steal(cur, start_mt);
        let head = self.free_area[cur as usize].free_list[f];
        let pfn = self.map_start + head as u64;
        self.steal_suitable_fallback(pfn, cur, start_mt, whole, c);
        true
    }

    /// `steal_suitable_fallback` (no watermark boost: zonekit has no kswapd to undo it,
    /// and no LRU, so no in-use page counts as movable).
    fn steal_suitable_fallback(
        &mut self,
        pfn: Pfn,
        order: u32,
        start_mt: usize,
        whole_block: bool,
        c: &mut FreeCounters,
    ) {
        let old = self.pageblock_mt(pfn);
        if old == HIGHATOMIC {
            self.move_free(pfn, order, start_mt, c);
            return;
        }
        if order >= self.pageblock_order {
            // change_pageblock_range
            let nr = 1u64 << (order - self.pageblock_order);
            for k in 0..nr {
                self.set_pageblock_mt(pfn + (k << self.pageblock_order), start_mt);
            }
            self.move_free(pfn, order, start_mt, c);
            return;
        }
        if !whole_block {
            self.move_free(pfn, order, start_mt, c);
            return;
        }
        let free_pages = self.move_freepages_block(pfn, start_mt, c);
        if free_pages == 0 {
            // The pageblock reaches past the zone's end, so the whole block cannot
            // move; Linux then moves just the free block found (`goto single_page`),
            // which is what lets the caller's retry of `__rmqueue_smallest` succeed.
            self.move_free(pfn, order, start_mt, c);
            return;
        }
        let nr = 1u64 << self.pageblock_order;
        let alike = if start_mt == MOVABLE {
            0
        } else if old == MOVABLE {
            nr - free_pages
        } else {
            0
        };
        if free_pages + alike >= nr / 2 {
            self.set_pageblock_mt(pfn, start_mt);
        }
    }

    /// `move_freepages_block`: move every free block of the pageblock holding `pfn` to
    /// the lists of `mt`, returning the pages moved (0 when the pageblock's end is
    /// outside the zone, as in Linux).
    fn move_freepages_block(&mut self, pfn: Pfn, mt: usize, c: &mut FreeCounters) -> u64 {
        let nr = 1u64 << self.pageblock_order;
        let mut start = pfn & !(nr - 1);
        let end = start + nr - 1;
        if !self.contains(start) {
            start = pfn;
        }
        if !self.contains(end) {
            return 0;
        }
        let mut p = start;
        let mut moved = 0;
        while p <= end {
            let page = self.page(p);
            if !page.is_buddy() {
                p += 1;
                continue;
            }
            let order = page.buddy_order();
            self.move_free(p, order, mt, c);
            p += 1 << order;
            moved += 1 << order;
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last element of a list: its head's `prev`.
    fn list_tail(map: &[Page], head: u32) -> u32 {
        map[head as usize].prev()
    }

    #[test]
    fn list_ops_are_o1_and_consistent() {
        let map = alloc::vec![Page::ZEROED; 8];
        let mut head = NIL;
        list_add(&map, &mut head, 3);
        list_add_tail(&map, &mut head, 5);
        list_add(&map, &mut head, 1);
        // 1 3 5
        assert_eq!(head, 1);
        assert_eq!(list_tail(&map, head), 5);
        list_del_page(&map, &mut head, 5, &map[5]);
        assert_eq!(list_tail(&map, head), 3);
        list_del_page(&map, &mut head, 1, &map[1]);
        assert_eq!((head, list_tail(&map, head)), (3, 3));
        list_del_page(&map, &mut head, 3, &map[3]);
        assert_eq!(head, NIL);
    }
}
