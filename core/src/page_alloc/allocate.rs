//! Allocating pages (Linux `mm/page_alloc.c`: `alloc_pages`, `get_page_from_freelist`,
//! `rmqueue`, `rmqueue_bulk`, `__rmqueue`), and the watermark checks the allocation
//! path makes (`__zone_watermark_unusable_free`, `__zone_watermark_ok`,
//! `zone_watermark_ok`, `zone_watermark_fast`).
//!
//! The zonelist runs from the highest zone the GFP flags allow down to DMA, first
//! above the low watermark, then (slow path, no reclaim) above the min watermark with
//! the `__GFP_HIGH` / atomic reserves, after draining the per-CPU lists once. A fast
//! path for orders up to `PAGE_ALLOC_COSTLY_ORDER` (3) pops a per-CPU list head
//! when nothing else can decide.

use super::buddy::{FreeCounters, ZoneView};
use super::fast;
use super::gfp::Gfp;
use super::pcp::{order_to_pindex, PAGE_ALLOC_COSTLY_ORDER};
use super::{
    zone_view, PageAllocator, PageBlock, ALLOC_CMA, ALLOC_HIGHATOMIC, ALLOC_MIN_RESERVE,
    ALLOC_NON_BLOCK, ALLOC_NO_WATERMARKS, ALLOC_RESERVES, ALLOC_WMARK_LOW, ALLOC_WMARK_MASK,
    ALLOC_WMARK_MIN, CMA, HIGHATOMIC, MOVABLE, NIL,
};
use crate::addr::{pfn_phys, Pfn, PAGE_SIZE};
use crate::mmtypes::ZoneType;
use crate::storage::{PageStorage, StorageError};

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// No zone allowed by the GFP flags has a free block above its watermark.
    NoMemory,
    /// `order` is not below `MAX_ORDER`.
    InvalidOrder(u32),
    /// The CPU id is not below the allocator's CPU count.
    BadCpu(usize),
    /// `__GFP_ZERO` could not zero the pages.
    Zero(StorageError),
}

impl<S: PageStorage, const NCPU: usize> PageAllocator<S, NCPU> {
    /// `__zone_watermark_unusable_free`.
    #[inline]
    fn unusable_free(&self, z: usize, order: u32, flags: u32) -> i64 {
        let zs = &self.zones[z];
        let mut u = (1i64 << order) - 1;
        if flags & ALLOC_RESERVES == 0 {
            u += zs.nr_reserved_highatomic as i64;
        }
        if flags & ALLOC_CMA == 0 {
            u += zs.counters.free_cma as i64;
        }
        u
    }

    /// `__zone_watermark_ok`.
    pub fn zone_watermark_ok_flags(
        &self,
        zone: ZoneType,
        order: u32,
        mark: u64,
        highest: ZoneType,
        flags: u32,
    ) -> bool {
        let z = zone as usize;
        // No block of an order the zone does not have can be free.
        if order as usize >= self.node.zones[z].nr_orders {
            return false;
        }
        let free = self.zones[z].counters.free as i64 - self.unusable_free(z, order, flags);
        let mut min = i64::try_from(mark).unwrap_or(i64::MAX);
        if flags & ALLOC_MIN_RESERVE != 0 {
            min -= min / 2;
            if flags & ALLOC_NON_BLOCK != 0 {
                min -= min / 4;
            }
        }
        if free <= min.saturating_add(self.zones[z].lowmem_reserve[highest as usize] as i64) {
            return false;
        }
        if order == 0 {
            return true;
        }
        // A block of `order` or more on a list this allocation may use.
        let usable = fast::usable_orders(
            &self.node.zones[z].free_orders,
            flags & ALLOC_CMA != 0,
            flags & ALLOC_HIGHATOMIC != 0,
        );
        fast::usable_at_or_above(usable, order)
    }

    /// `zone_watermark_ok` (no reserves, CMA not usable).
    pub fn zone_watermark_ok(
        &self,
        zone: ZoneType,
        order: u32,
        mark: u64,
        highest: ZoneType,
    ) -> bool {
        self.zone_watermark_ok_flags(zone, order, mark, highest, 0)
    }

    /// `zone_watermark_fast`.
    #[inline]
    fn watermark_fast(&self, z: usize, order: u32, mark: u64, highest: usize, flags: u32) -> bool {
        if order == 0 {
            let free = self.zones[z].counters.free as i64;
            let reserved = self.unusable_free(z, 0, flags);
            let usable = free - free.min(reserved);
            if usable > (mark + self.zones[z].lowmem_reserve[highest]) as i64 {
                return true;
            }
        }
        self.zone_watermark_ok_flags(
            ZoneType::from_index(z),
            order,
            mark,
            ZoneType::from_index(highest),
            flags,
        )
    }

    /// `alloc_pages` on `cpu`: a block of `2^order` pages from the highest zone `gfp`
    /// allows down to DMA (the zonelist), first above the low watermark, then (slow
    /// path, no reclaim) above the min watermark with `__GFP_HIGH`/atomic reserves.
    // Always inlined, like the other fast-path entry points (`alloc_pcp_fast`,
    // `free_pages_raw`, `free_pcp_fast`, SmpPageAllocator's): the per-CPU path lands
    // in the caller whatever the codegen-unit split, the general path stays out of
    // line. With `#[inline]` and one codegen unit, an ARMv7 order-0 pair took 244
    // instructions instead of 188 (calls, and the `Result` through memory).
    #[inline(always)]
    pub fn alloc_pages(
        &mut self,
        cpu: usize,
        gfp: Gfp,
        order: u32,
    ) -> Result<PageBlock, AllocError> {
        if order <= PAGE_ALLOC_COSTLY_ORDER && gfp.0 & !Gfp::FAST_PATH_OK == 0 {
            if let Some(block) = self.alloc_pcp_fast(cpu, gfp, order) {
                return Ok(block);
            }
        }
        self.alloc_pages_slow(cpu, gfp, order)
    }

    /// The per-CPU fast path (orders up to `PAGE_ALLOC_COSTLY_ORDER`): the first zone
    /// of the zonelist that has pages, above its low watermark
    /// (`zone_watermark_fast`: the order-0 test, or `__zone_watermark_ok`'s count and
    /// free-area walk for higher orders), with a block on this CPU's list of that
    /// order and type: pop the head, O(1). Anything else (a zone to skip, a list to
    /// refill, a flag that changes the rules) returns `None` before changing anything,
    /// and the general path decides; when this path succeeds, it took the block the
    /// general path would have taken.
    #[inline(always)]
    fn alloc_pcp_fast(&mut self, cpu: usize, gfp: Gfp, order: u32) -> Option<PageBlock> {
        let highest = gfp.zone() as usize;
        let mt = gfp.migratetype() as usize;
        let movable = mt == MOVABLE;
        let zone = self.first_zones[highest];
        debug_assert_eq!(zone, self.first_zone(highest), "first_zones is stale");
        let z = zone as usize;
        // zone_watermark_fast, ALLOC_WMARK_LOW (ALLOC_CMA for MOVABLE): computed
        // when the buddy last changed (an order the zone does not have never
        // passes: the general path says so).
        let passing = self.fast_orders[highest][usize::from(movable)];
        if cfg!(debug_assertions) {
            let mark = self.low_marks[z][highest];
            let zs = &self.zones[z];
            debug_assert_eq!(mark, zs.fast_low_mark(highest), "low_marks is stale");
            let now = self.fast_orders_now(highest, movable);
            debug_assert_eq!(passing, now, "fast_orders is stale");
        }
        if u32::from(passing) >> order & 1 == 0 {
            return None;
        }
        let pcp = &mut self.pcp.get_mut(cpu)?[z];
        let routes = &self.routes;
        let map = &*routes.map;
        let allocated = fast::with_order(routes.allocated[z], order);
        let i = fast::pcp_pop(map, pcp, order_to_pindex(mt, order), order, allocated)?;
        Some(PageBlock {
            pfn: routes.map_start + u64::from(i),
            order,
            zone,
        })
    }

    /// The general allocation path (every order, every flag, refills, fallbacks).
    #[cold]
    #[inline(never)]
    fn alloc_pages_slow(
        &mut self,
        cpu: usize,
        gfp: Gfp,
        order: u32,
    ) -> Result<PageBlock, AllocError> {
        if cpu >= NCPU {
            return Err(AllocError::BadCpu(cpu));
        }
        let max = self
            .node
            .zones
            .iter()
            .map(|z| z.nr_orders)
            .max()
            .unwrap_or(0) as u32;
        if order >= max {
            return Err(AllocError::InvalidOrder(order));
        }
        let highest = gfp.zone() as usize;
        let mt = gfp.migratetype() as usize;
        let cma = if mt == MOVABLE { ALLOC_CMA } else { 0 };
        let nowm = if gfp.contains(Gfp::MEMALLOC) {
            ALLOC_NO_WATERMARKS
        } else {
            0
        };
        let mut got =
            self.get_page_from_freelist(cpu, order, highest, mt, ALLOC_WMARK_LOW | cma | nowm);
        if got.is_none() && nowm == 0 {
            let mut flags = ALLOC_WMARK_MIN | cma;
            if gfp.contains(Gfp::HIGH) {
                flags |= ALLOC_MIN_RESERVE;
            }
            if gfp.contains(Gfp::ATOMIC) {
                flags |= ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK | ALLOC_HIGHATOMIC;
            }
            got = self.get_page_from_freelist(cpu, order, highest, mt, flags);
            if got.is_none() && self.nr_pcp_pages() > 0 {
                // No reclaim here, but like the slow path after direct reclaim:
                // drain the per-CPU lists and retry once.
                self.drain_all_pages();
                got = self.get_page_from_freelist(cpu, order, highest, mt, flags);
            }
        }
        if got.is_none() && nowm != 0 && self.nr_pcp_pages() > 0 {
            self.drain_all_pages();
            got =
                self.get_page_from_freelist(cpu, order, highest, mt, ALLOC_WMARK_LOW | cma | nowm);
        }
        let Some((z, pfn)) = got else {
            return Err(AllocError::NoMemory);
        };
        if let Some(p) = self.node.pfn_to_page(pfn) {
            p.set_refcount(1);
            p.set_order(order);
            p.set_list_mt(0);
        }
        let block = PageBlock {
            pfn,
            order,
            zone: ZoneType::from_index(z),
        };
        if gfp.contains(Gfp::ZERO) {
            if let Err(e) = self.storage.zero(pfn_phys(pfn), PAGE_SIZE << order) {
                let _ = self.free_pages(cpu, block);
                return Err(AllocError::Zero(e));
            }
        }
        Ok(block)
    }

    #[inline]
    fn get_page_from_freelist(
        &mut self,
        cpu: usize,
        order: u32,
        highest: usize,
        mt: usize,
        flags: u32,
    ) -> Option<(usize, Pfn)> {
        for z in (0..=highest).rev() {
            if self.node.zones[z].managed_pages == 0 {
                continue;
            }
            if flags & ALLOC_NO_WATERMARKS == 0 {
                let w = &self.zones[z].wmark;
                let mark = if flags & ALLOC_WMARK_MASK == ALLOC_WMARK_LOW {
                    w.low
                } else {
                    w.min
                } + self.zones[z].boost;
                if !self.watermark_fast(z, order, mark, highest, flags) {
                    continue;
                }
            }
            let got = self.rmqueue(cpu, z, order, mt, flags);
            // rmqueue may have taken from the buddy (a refill, a block).
            self.refresh_fast_orders(z);
            if let Some(pfn) = got {
                return Some((z, pfn));
            }
        }
        None
    }

    /// `rmqueue`: orders up to `PAGE_ALLOC_COSTLY_ORDER` through the per-CPU lists
    /// (`rmqueue_pcplist`), larger orders, and whatever the lists cannot give, from
    /// the buddy (`rmqueue_buddy`).
    #[inline]
    fn rmqueue(&mut self, cpu: usize, z: usize, order: u32, mt: usize, flags: u32) -> Option<Pfn> {
        let PageAllocator {
            node,
            zones,
            pcp,
            routes,
            ..
        } = self;
        let c = &mut zones[z].counters;
        let mut v = zone_view(node, z, routes.block_view(z))?;
        if order <= PAGE_ALLOC_COSTLY_ORDER && (flags & ALLOC_CMA != 0 || mt != MOVABLE) {
            let pcp = &mut pcp[cpu][z];
            let pindex = order_to_pindex(mt, order);
            pcp.free_factor >>= 1;
            if pcp.lists[pindex] == NIL {
                // rmqueue_bulk, the batch scaled down by the order.
                let mut batch = pcp.batch;
                if batch > 1 {
                    batch = (batch >> order).max(2);
                }
                let map = v.map;
                let mut got = 0;
                loop {
                    // __rmqueue's common case (no CMA to balance first), a run of
                    // blocks at a time; when it finds nothing it changed nothing,
                    // and __rmqueue runs for one block (CMA, or stealing, after
                    // which the runs go on from what was stolen).
                    if flags & ALLOC_CMA == 0 {
                        got += v.rmqueue_smallest_bulk(order, mt, batch - got, c, |first, k| {
                            pcp.add_run_tail(map, pindex, (first, k), order, mt);
                        });
                    }
                    if got >= batch {
                        break;
                    }
                    let Some((pfn, taken)) = rmqueue_one(&mut v, order, mt, flags, c) else {
                        break;
                    };
                    pcp.add_run_tail(map, pindex, (v.idx(pfn), 1), order, taken);
                    got += 1;
                }
            }
            if let Some(i) = pcp.take_head(v.map, pindex) {
                pcp.count -= 1 << order;
                v.map[i as usize].clear_pcp();
                return Some(v.map_start + i as u64);
            }
        }
        if flags & ALLOC_HIGHATOMIC != 0 && order > 0 {
            if let Some(p) = v.rmqueue_smallest(order, HIGHATOMIC, c) {
                return Some(p);
            }
        }
        rmqueue_one(&mut v, order, mt, flags, c).map(|(p, _)| p)
    }
}

/// `__rmqueue`: CMA balancing, the smallest block of `mt`, CMA, then stealing.
/// Returns the pfn and the migrate type of the list it came from.
#[inline]
fn rmqueue_one(
    v: &mut ZoneView<'_>,
    order: u32,
    mt: usize,
    flags: u32,
    c: &mut FreeCounters,
) -> Option<(Pfn, usize)> {
    if flags & ALLOC_CMA != 0 && c.free_cma > c.free / 2 {
        if let Some(p) = v.rmqueue_smallest(order, CMA, c) {
            return Some((p, CMA));
        }
    }
    loop {
        if let Some(p) = v.rmqueue_smallest(order, mt, c) {
            return Some((p, mt));
        }
        if flags & ALLOC_CMA != 0 {
            if let Some(p) = v.rmqueue_smallest(order, CMA, c) {
                return Some((p, CMA));
            }
        }
        if !v.rmqueue_fallback(order, mt, c) {
            return None;
        }
    }
}
