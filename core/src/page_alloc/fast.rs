//! The per-CPU fast paths' steps, shared by [`PageAllocator`](super::PageAllocator)
//! (one owner, `&mut`) and [`SmpPageAllocator`](super::SmpPageAllocator) (each CPU
//! under its own pageset lock, the zone lock not taken): the low-watermark test of
//! `zone_watermark_fast` ([`fast_orders`], computed whenever the buddy changes and
//! read as one bit), popping a per-CPU list head (`__rmqueue_pcplist`), the
//! `free_page_is_bad` test of a page to free, its pageblock's migrate type
//! (the pageblock table of [`FreeRoutes`], `get_pfnblock_migratetype`) and pushing it on a per-CPU list
//! (`free_unref_page_commit` below `high`).
//!
//! Each step either does its whole job or returns `None`/`false` having changed
//! nothing, so that the caller can fall back to the general path.
//!
//! The target has 32-bit registers: after one subtraction a free works in `mem_map`
//! indices ([`map_index`]; spans, usemap offsets and list links are u32) and the
//! zone counters are native words, so that no step pays for a u64 in two registers.
//!
//! The free steps are ordered for a modern out-of-order core, where a free's time
//! goes mostly into waiting for loads rather than into instructions: the zone comes
//! from the page's `mem_map` index ([`map_index`], [`FreeRoutes::route`]) and the
//! list from a predicted branch
//! ([`pcp_push_list`]), so the usemap and list reads start at once instead of after
//! the descriptor's load and the usemap byte's. For the same reason a head page's
//! flags are written from what the path knows ([`crate::page::allocated_flags`] of
//! its zone, node and order), never from the word just loaded: the free only
//! compares that word, the allocation does not read it, so the stores of one pair
//! do not wait on the loads of the last.

use super::blocks::{self, BlockGeometry, BlockTableView};
use super::pcp::PerCpuPages;
use super::{CMA, MOVABLE};
use crate::addr::Pfn;
use crate::mmtypes::{MigrateType, MAX_NR_ZONES};
use crate::page::flags::{ORDER_MASK, ORDER_SHIFT, ZONE_MASK};
use crate::page::Page;
use crate::storage::{PageStorage, StorageError};
use crate::zone::{FreeOrders, PgData};
use core::ops::Deref;
use core::sync::atomic::{AtomicU8, Ordering};

const UNMOVABLE: usize = MigrateType::Unmovable as usize;
const RECLAIMABLE: usize = MigrateType::Reclaimable as usize;
const HIGHATOMIC: usize = MigrateType::HighAtomic as usize;

// The zone index fits the descriptor's zone field (free_candidate's comparison).
const _: () = assert!(crate::mmtypes::MAX_NR_ZONES <= ZONE_MASK as usize + 1);

/// `__zone_watermark_ok`'s free-area test, for every order at once: bit `o` set when
/// order `o` has a block on a list this allocation may use (a PCP type, CMA for a
/// movable one, HIGHATOMIC with `ALLOC_HIGHATOMIC`), from the zone's
/// [`free_orders`](crate::zone::Zone::free_orders).
#[inline]
pub(super) fn usable_orders(free_orders: &FreeOrders, cma: bool, highatomic: bool) -> u16 {
    let mut m = free_orders.pcp_types();
    if cma {
        m |= free_orders.of(CMA);
    }
    if highatomic {
        m |= free_orders.of(HIGHATOMIC);
    }
    m
}

/// True when `usable` ([`usable_orders`]) has a bit at `order` or above.
#[inline]
pub(super) fn usable_at_or_above(usable: u16, order: u32) -> bool {
    usable.checked_shr(order).is_some_and(|m| m != 0)
}

/// The orders (bit `o` for order `o`, 0 to `PAGE_ALLOC_COSTLY_ORDER`) whose
/// fast-path allocation passes `zone_watermark_fast` on a zone with these counts:
/// the count test (`free` pages, less what this allocation may not use, above
/// `mark`: the low watermark plus boost, lowmem reserve and highatomic reserve,
/// saturated) and, above order 0, [`usable_at_or_above`] of [`usable_orders`],
/// computed for all four orders at once. The counts and the free
/// lists change only when the buddy does (a per-CPU pop or push touches neither),
/// so the allocators compute this after each buddy operation and an allocation
/// tests one bit.
#[inline]
pub(super) fn fast_orders(
    free: usize,
    free_cma: usize,
    mark: usize,
    free_orders: &FreeOrders,
    movable: bool,
) -> u8 {
    // The count test of order `o`: free > mark + unusable + 2^o - 1, that is
    // 2^o <= room, the pages above the mark (saturated sums).
    let base = mark.saturating_add(if movable { 0 } else { free_cma });
    let room = free.saturating_sub(base);
    // Orders 0..=k with 2^k <= room: k = log2(room), at most 3.
    let counted = match room {
        0 => 0,
        r => (2u8 << r.min(8).ilog2()) - 1,
    };
    // Above order 0, a usable block of at least that order: every order up to the
    // highest usable one.
    let usable = usable_orders(free_orders, movable, false);
    let listed = match usable {
        0 => 1,
        u => ((2u32 << u.ilog2().min(3)) - 1) as u8 | 1,
    };
    counted & listed
}

/// Pop the head of per-CPU list `pindex` (of `order`) as an allocated block whose
/// head's flags become `allocated` ([`crate::page::allocated_flags`]): its
/// `mem_map` index, or `None` when the list is empty or names no page.
#[inline]
pub(super) fn pcp_pop(
    map: &[Page],
    pcp: &mut PerCpuPages,
    pindex: usize,
    order: u32,
    allocated: u32,
) -> Option<u32> {
    let i = pcp.lists[pindex];
    let page = map.get(i as usize)?;
    pcp.free_factor >>= 1;
    // list_del of the head: the next page becomes the head, its `prev` left as it
    // is (a head's is never read); the popped page's own links are left stale
    // (Page::make_allocated): two stores to its descriptor.
    pcp.lists[pindex] = page.next();
    pcp.count -= 1 << order;
    page.make_allocated(allocated);
    Some(i)
}

/// A page that passed [`free_candidate`]'s checks (`Copy`: passed by value it stays
/// in registers, where a reference would make the hot path store it to the stack).
#[derive(Clone, Copy)]
pub(super) struct FreeCandidate<'m> {
    /// Its descriptor.
    pub page: &'m Page,
    /// Its `mem_map` index.
    pub index: u32,
    /// Its flags when checked (equal to what the check expected; the value comes
    /// from the expectation, so that stores computed from it do not wait for the
    /// descriptor's load).
    pub flags: u32,
}

/// The `mem_map` index of `pfn` when the map has a descriptor for it: one
/// subtraction and one comparison. From here on the free fast paths work in
/// 32-bit indices (a `mem_map` never has more than `u32::MAX` entries: its links
/// are u32), which a 32-bit core handles in single registers where a u64 pfn takes
/// two; the index is kept as a `usize` known to be below the map's length, so
/// that indexing the map with it again costs no second bounds check.
#[inline(always)]
pub(super) fn map_index(map: &[Page], map_start: Pfn, pfn: Pfn) -> Option<usize> {
    let i = usize::try_from(pfn.wrapping_sub(map_start)).ok()?;
    (i < map.len()).then_some(i)
}

/// The page at `mem_map` index `index` ([`map_index`]), in the zone whose allocated
/// heads of `order` have the flags `allocated` ([`crate::page::allocated_flags`]),
/// when it may be freed at `order` without further checks, or `None` (outside the
/// map, reserved, free, a tail, another order or another zone, any other bit: the
/// checked path says which).
#[inline(always)]
pub(super) fn free_candidate(
    map: &[Page],
    index: usize,
    allocated: u32,
) -> Option<FreeCandidate<'_>> {
    let page = map.get(index)?;
    // An allocated head is inside its zone (memmap_init links every descriptor to
    // the zone it lies in; the map's pages outside the zones are zeroed, with a
    // refcount of 0, and never handed out): one comparison
    // of the whole word checks the state, the order and that the descriptor names
    // the zone the caller found from the index.
    if page.raw_flags() != allocated || page.refcount() != 1 {
        return None;
    }
    Some(FreeCandidate {
        page,
        index: index as u32,
        flags: allocated,
    })
}

/// The flags of an allocated head page of `order` in the zone whose order-0 heads
/// have the flags `allocated` ([`crate::page::allocated_flags`]).
#[inline(always)]
pub(super) fn with_order(allocated: u32, order: u32) -> u32 {
    allocated | (order & ORDER_MASK) << ORDER_SHIFT
}

/// What the fast paths read of a node without a lock: its `mem_map`, where it
/// starts, its pageblock table ([`super::blocks`]: a pageblock's zone and migrate
/// type in one byte) and each zone's allocated-head flags. A free finds its page's
/// zone and list from the table, so the per-CPU list reads that depend on them
/// need not wait for the page descriptor's load (on a modern core that wait, not
/// the instruction count, is most of a free's time); [`free_candidate`] then checks
/// that the descriptor names the same zone. Taken once when the allocator is set up:
/// the map never moves (the allocators own their node and never lend it mutably),
/// and the table's contents change under the zone lock. A node without a `mem_map`
/// gets an empty one, a node without a table an empty table (every index is then
/// out of bounds: every free takes the general path).
pub(super) struct FreeRoutes<M, B> {
    /// The node's `mem_map` (a clone of its handle).
    pub map: M,
    /// The pfn of `map[0]`.
    pub map_start: Pfn,
    /// The pageblock table (a clone of its handle: the SMP allocator's CPUs read
    /// what the zone-locked allocator writes).
    blocks: B,
    geometry: BlockGeometry,
    /// Each zone's [`crate::page::allocated_flags`] at order 0 (for the
    /// allocation fast paths too).
    pub allocated: [u32; MAX_NR_ZONES],
}

impl<M: Clone, B: Clone> Clone for FreeRoutes<M, B> {
    fn clone(&self) -> Self {
        FreeRoutes {
            map: self.map.clone(),
            map_start: self.map_start,
            blocks: self.blocks.clone(),
            geometry: self.geometry,
            allocated: self.allocated,
        }
    }
}

impl<M: Deref<Target = [Page]>, B: Deref<Target = [AtomicU8]>> FreeRoutes<M, B> {
    /// The free fast paths' common steps for `pfn` freed at `order`: its `mem_map`
    /// index ([`map_index`]), its pageblock's entry in the table (its zone and
    /// migrate type) and the [`free_candidate`] checks. `None` when any step says no
    /// (nothing read has been changed): the checked path judges the page.
    #[inline(always)]
    pub(super) fn free_target(&self, pfn: Pfn, order: u32) -> Option<FreeTarget<'_>> {
        let map = &*self.map;
        let i = map_index(map, self.map_start, pfn)?;
        let entry = self
            .blocks
            .get(self.geometry.block(i as u32))?
            .load(Ordering::Relaxed);
        if entry & blocks::SLOW != 0 {
            return None;
        }
        // Two bits: indexing the per-zone arrays with it needs no bounds check.
        let zone = usize::from(entry >> blocks::ZONE_SHIFT) & 3;
        let candidate = free_candidate(map, i, with_order(self.allocated[zone], order))?;
        Some(FreeTarget {
            map,
            candidate,
            zone,
            raw: usize::from(entry & 7),
        })
    }

    /// Zone `zone`'s window on the table, for the buddy's pageblock-type writes.
    pub(super) fn block_view(&self, zone: usize) -> BlockTableView<'_> {
        BlockTableView::new(&self.blocks, self.geometry, zone)
    }

    /// The first pfn of table entry `k`'s pageblock.
    pub(super) fn block_start(&self, k: usize) -> Pfn {
        self.geometry.start(self.map_start, k)
    }

    /// The first table entry that differs from the usemaps of `node`, as
    /// `(index, entry, expected)`.
    pub(super) fn stale_block<S: PageStorage>(&self, node: &PgData<S>) -> Option<(usize, u8, u8)> {
        self.blocks.iter().enumerate().find_map(|(k, e)| {
            let (e, want) = (e.load(Ordering::Relaxed), self.geometry.expected(node, k));
            (e != want).then_some((k, e, want))
        })
    }
}

/// What [`FreeRoutes::free_target`] found (`Copy`, so it stays in registers).
#[derive(Clone, Copy)]
pub(super) struct FreeTarget<'m> {
    /// The node's `mem_map`.
    pub map: &'m [Page],
    /// The page, checked.
    pub candidate: FreeCandidate<'m>,
    /// Its zone's index.
    pub zone: usize,
    /// Its pageblock's migrate type as stored ([`pcp_push_list`]'s `raw`).
    pub raw: usize,
}

impl<M: Clone + Default, B: Default> FreeRoutes<M, B> {
    /// The routes of `node`, without a table yet ([`Self::attach_table`]).
    pub(super) fn new<S: PageStorage<MemMap = M, Bitmap = B>>(node: &PgData<S>) -> Self {
        FreeRoutes {
            map: node.mem_map.clone().unwrap_or_default(),
            map_start: node.mem_map_start_pfn,
            blocks: B::default(),
            geometry: BlockGeometry::default(),
            allocated: node
                .zones
                .each_ref()
                .map(|z| crate::page::allocated_flags(z.zone_type, z.node, 0)),
        }
    }
}

impl<M, B: Deref<Target = [AtomicU8]>> FreeRoutes<M, B> {
    /// Ask `storage` for `node`'s pageblock table and fill it from the usemaps. A
    /// node that cannot have one, or a storage that cannot give it, keeps the empty
    /// table (its frees all take the checked path): the error says why.
    pub(super) fn attach_table<S: PageStorage<Bitmap = B>>(
        &mut self,
        node: &PgData<S>,
        storage: &mut S,
    ) -> Result<(), StorageError> {
        let (geometry, entries) = BlockGeometry::of(node).ok_or(StorageError::Unsupported {
            what: "a pageblock table for this node",
        })?;
        let table = storage.allocator_table(entries)?;
        geometry.fill(node, &table);
        self.geometry = geometry;
        self.blocks = table;
        Ok(())
    }
}

/// True when pushing a block of `order` keeps the per-CPU lists below `high`
/// without a high-order drain; otherwise the general path must drain.
#[inline(always)]
pub(super) fn pcp_room(pcp: &PerCpuPages, order: u32) -> bool {
    // free_unref_page_commit drains everything (free_high) or down from `high`.
    !((order > 0 && pcp.free_factor != 0) || pcp.count + (1 << order) >= pcp.high)
}

/// `free_unref_page_commit` below `high` for a page whose pageblock reads `raw`
/// ([`FreeRoutes::free_target`]): [`pcp_push`] with the migrate type it records
/// (`set_pcppage_migratetype`; unknown values read as MOVABLE) and the PCP list it
/// goes on (HIGHATOMIC, CMA and unknown ones on MOVABLE's). Each arm names both as
/// constants: the push's addresses and the descriptor's new flags then come from
/// the branch predictor rather than from the usemap byte just read, so neither the
/// push nor the next allocation from that list waits for that load (measured: a
/// fifth of an order-0 pair's time on the bench machine).
#[inline(always)]
pub(super) fn pcp_push_list(
    map: &[Page],
    pcp: &mut PerCpuPages,
    c: &FreeCandidate<'_>,
    raw: usize,
    order: u32,
) -> bool {
    let pindex = super::pcp::order_to_pindex;
    // The two common types first, each one predicted comparison (the jump table
    // a match becomes costs eight instructions); the others out of line.
    if raw == UNMOVABLE {
        return pcp_push(map, pcp, c, UNMOVABLE, pindex(UNMOVABLE, order), order);
    }
    if raw == MOVABLE {
        return pcp_push(map, pcp, c, MOVABLE, pindex(MOVABLE, order), order);
    }
    pcp_push_other(map, pcp, *c, raw, order)
}

/// [`pcp_push_list`] for the pageblock types other than UNMOVABLE and MOVABLE.
#[cold]
#[inline(never)]
fn pcp_push_other(
    map: &[Page],
    pcp: &mut PerCpuPages,
    c: FreeCandidate<'_>,
    raw: usize,
    order: u32,
) -> bool {
    let c = &c;
    let pindex = super::pcp::order_to_pindex;
    match raw {
        RECLAIMABLE => pcp_push(map, pcp, c, RECLAIMABLE, pindex(RECLAIMABLE, order), order),
        HIGHATOMIC => pcp_push(map, pcp, c, HIGHATOMIC, pindex(MOVABLE, order), order),
        CMA => pcp_push(map, pcp, c, CMA, pindex(MOVABLE, order), order),
        // ISOLATE never comes here (its table entry is SLOW): the rest is unknown.
        _ => pcp_push(map, pcp, c, MOVABLE, pindex(MOVABLE, order), order),
    }
}

/// Push a page that passed [`free_candidate`], already claimed from its owner and
/// of pageblock type `pmt`, on the head of per-CPU list `pindex` (after
/// [`pcp_room`]). `false` (nothing changed) when the list head names no page.
#[inline(always)]
fn pcp_push(
    map: &[Page],
    pcp: &mut PerCpuPages,
    c: &FreeCandidate<'_>,
    pmt: usize,
    pindex: usize,
    order: u32,
) -> bool {
    // list_add at the head, the descriptor written once.
    let Some(h) = pcp.link_head(map, pindex, c.index) else {
        return false;
    };
    c.page.make_pcp_head(c.flags, pmt, h);
    pcp.lists[pindex] = c.index;
    pcp.count += 1 << order;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `zone_watermark_fast`'s count test with `ALLOC_WMARK_LOW` (and `ALLOC_CMA` for a
    /// movable allocation): `free` pages, less what this allocation may not use, above
    /// the low watermark plus boost and the lowmem reserve. `mark` is that sum plus the
    /// highatomic reserve (unusable for these allocations), saturated.
    fn above_low_mark(
        free: usize,
        free_cma: usize,
        mark: usize,
        order: u32,
        movable: bool,
    ) -> bool {
        // The fast paths' orders are at most PAGE_ALLOC_COSTLY_ORDER: a 32-bit shift
        // (one instruction on a 32-bit core, where a u64 shift by a variable is six).
        let unusable = ((1u32 << (order & 31)) - 1) as usize + if movable { 0 } else { free_cma };
        // `free - min(free, unusable + highatomic) > low mark`, in one comparison: when
        // free < unusable both sides are false (mark + unusable ≥ unusable > free).
        free > mark.saturating_add(unusable)
    }

    /// The closed form of [`fast_orders`] against its definition, order by order.
    #[test]
    fn fast_orders_agrees_with_the_watermark_test_of_each_order() {
        let mut areas = [FreeOrders::EMPTY; 4];
        areas[1].set(UNMOVABLE, 1);
        areas[2].set(CMA, 3);
        areas[2].set(MOVABLE, 0);
        areas[3].set(RECLAIMABLE, 10);
        let values = [
            0,
            1,
            2,
            3,
            4,
            7,
            8,
            9,
            15,
            16,
            100,
            usize::MAX - 1,
            usize::MAX,
        ];
        for fo in &areas {
            for &free in &values {
                for &cma in &[0, 1, 5, 100] {
                    for &mark in &values {
                        for movable in [false, true] {
                            let want = (0..=3).fold(0u8, |m, o| {
                                let ok = above_low_mark(free, cma, mark, o, movable)
                                    && (o == 0
                                        || usable_at_or_above(
                                            usable_orders(fo, movable, false),
                                            o,
                                        ));
                                m | u8::from(ok) << o
                            });
                            assert_eq!(
                                fast_orders(free, cma, mark, fo, movable),
                                want,
                                "free {free} cma {cma} mark {mark} movable {movable} {fo:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
