//! Freeing pages (Linux `mm/page_alloc.c`: `__free_pages`, `free_unref_page`,
//! `free_unref_page_commit`, `free_page_is_bad`): orders up to
//! `PAGE_ALLOC_COSTLY_ORDER` through the per-CPU lists of the freeing CPU, larger
//! blocks straight to the buddy. A free that Linux would report as `Bad page state`
//! is refused with a [`FreeError`] and changes nothing.

use super::buddy::MIGRATE_PCPTYPES;
use super::fast;
use super::pcp::{free_pcppages_bulk, nr_pcp_free, order_to_pindex, PAGE_ALLOC_COSTLY_ORDER};
use super::{zone_view, PageAllocator, PageBlock, ISOLATE, MOVABLE};
use crate::addr::Pfn;
use crate::storage::PageStorage;

/// Why a free was refused (Linux's `bad_page` checks). The lists are never touched
/// when a free is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The pfn has no page descriptor in this node or lies in no zone.
    OutsideNode(Pfn),
    /// The order is not below `MAX_ORDER`, or the pfn is not aligned to it.
    InvalidOrder {
        /// The pfn.
        pfn: Pfn,
        /// The order given.
        order: u32,
    },
    /// The page is `PG_reserved` (never given to the buddy allocator).
    Reserved(Pfn),
    /// The page is already free (on a buddy or per-CPU list, or inside a free block).
    AlreadyFree(Pfn),
    /// The page is not the head of an allocated block (a tail page).
    NotHead(Pfn),
    /// The block was allocated with another order.
    WrongOrder {
        /// The pfn.
        pfn: Pfn,
        /// Order recorded at allocation.
        allocated: u32,
        /// Order given to the free.
        given: u32,
    },
    /// The CPU id is not below the allocator's CPU count.
    BadCpu(usize),
}

impl core::fmt::Display for FreeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FreeError::OutsideNode(p) => write!(f, "BUG: Bad page state: pfn:{p:#x} outside node"),
            FreeError::InvalidOrder { pfn, order } => {
                write!(f, "BUG: Bad page state: pfn:{pfn:#x} bad order {order}")
            }
            FreeError::Reserved(p) => {
                write!(f, "BUG: Bad page state: pfn:{p:#x} PAGE_FLAGS_CHECK_AT_FREE flag(s) set (reserved)")
            }
            FreeError::AlreadyFree(p) => {
                write!(f, "BUG: Bad page state: pfn:{p:#x} nonzero _refcount expected (already free)")
            }
            FreeError::NotHead(p) => write!(f, "BUG: Bad page state: pfn:{p:#x} is a tail page"),
            FreeError::WrongOrder {
                pfn,
                allocated,
                given,
            } => write!(
                f,
                "BUG: Bad page state: pfn:{pfn:#x} freed with order {given}, allocated with {allocated}"
            ),
            FreeError::BadCpu(c) => write!(f, "cpu {c} out of range"),
        }
    }
}

impl<S: PageStorage, const NCPU: usize> PageAllocator<S, NCPU> {
    /// `free_pages(block)`: give an allocated block back (orders up to 3 through the
    /// per-CPU lists of `cpu`).
    #[inline(always)]
    pub fn free_pages(&mut self, cpu: usize, block: PageBlock) -> Result<(), FreeError> {
        self.free_pages_raw(cpu, block.pfn, block.order)
    }

    /// The fast path of `free_unref_page` (order `order` ≤ 3): an allocated,
    /// unreserved head page with refcount 1 that recorded `order`, in a pageblock that
    /// is not isolated, whose per-CPU lists stay below `high` without a high-order
    /// drain: push it on the head of its list, O(1). Anything else returns `false`
    /// before changing anything, and the checked path runs.
    #[inline(always)]
    fn free_pcp_fast(&mut self, cpu: usize, pfn: Pfn, order: u32) -> bool {
        let Some(pcps) = self.pcp.get_mut(cpu) else {
            return false;
        };
        let Some(t) = self.routes.free_target(pfn, order) else {
            return false;
        };
        if !fast::pcp_room(&pcps[t.zone], order) {
            return false;
        }
        // `&mut self` owns every descriptor, so free_candidate's refcount test
        // stands (SmpPageAllocator, whose CPUs free without this lock, claims the
        // page first).
        fast::pcp_push_list(t.map, &mut pcps[t.zone], &t.candidate, t.raw, order)
    }

    /// `__free_pages(pfn_to_page(pfn), order)` without the ownership guarantee: the
    /// page is checked first (`free_page_is_bad`): outside the node, reserved, already
    /// free, a tail page or the wrong order is refused with a [`FreeError`] and
    /// nothing changes.
    #[inline(always)]
    pub fn free_pages_raw(&mut self, cpu: usize, pfn: Pfn, order: u32) -> Result<(), FreeError> {
        if order <= PAGE_ALLOC_COSTLY_ORDER && self.free_pcp_fast(cpu, pfn, order) {
            return Ok(());
        }
        self.free_pages_checked(cpu, pfn, order)
    }

    /// The general free path, with every `free_page_is_bad` check; the page is
    /// claimed from its owner atomically, so it is safe against a concurrent free
    /// of the same page that does not hold this allocator's lock.
    #[cold]
    #[inline(never)]
    pub(super) fn free_pages_checked(
        &mut self,
        cpu: usize,
        pfn: Pfn,
        order: u32,
    ) -> Result<(), FreeError> {
        if cpu >= NCPU {
            return Err(FreeError::BadCpu(cpu));
        }
        let idx = self
            .node
            .pfn_to_index(pfn)
            .ok_or(FreeError::OutsideNode(pfn))?;
        let Some(map) = self.node.mem_map.as_deref() else {
            return Err(FreeError::OutsideNode(pfn));
        };
        let page = &map[idx];
        let z = page.zone_type() as usize;
        let zone = &self.node.zones[z];
        if !zone.contains_pfn(pfn) {
            return Err(FreeError::OutsideNode(pfn));
        }
        let nr_orders = zone.nr_orders as u32;
        if order >= nr_orders
            || pfn & ((1 << order) - 1) != 0
            || pfn + (1 << order) > zone.zone_end_pfn()
        {
            return Err(FreeError::InvalidOrder { pfn, order });
        }
        if page.is_reserved() {
            return Err(FreeError::Reserved(pfn));
        }
        if page.is_buddy() || page.is_pcp() {
            return Err(FreeError::AlreadyFree(pfn));
        }
        if page.refcount() != 1 {
            if self.inside_free_block(z, pfn) {
                return Err(FreeError::AlreadyFree(pfn));
            }
            return Err(FreeError::NotHead(pfn));
        }
        if page.buddy_order() != order {
            return Err(FreeError::WrongOrder {
                pfn,
                allocated: page.buddy_order(),
                given: order,
            });
        }
        if !page.claim_free() {
            // Another CPU freed it between the checks and here.
            return Err(FreeError::AlreadyFree(pfn));
        }
        page.set_order(0);

        let PageAllocator {
            node,
            zones,
            pcp,
            routes,
            ..
        } = self;
        let c = &mut zones[z].counters;
        let Some(mut v) = zone_view(node, z, routes.block_view(z)) else {
            return Err(FreeError::OutsideNode(pfn));
        };
        let pmt = v.pageblock_mt(pfn);
        if order > PAGE_ALLOC_COSTLY_ORDER || pmt == ISOLATE {
            v.free_one_page(pfn, order, pmt, false, c);
            self.refresh_fast_orders(z);
            return Ok(());
        }
        // free_unref_page / free_unref_page_commit
        let list = if pmt >= MIGRATE_PCPTYPES {
            MOVABLE
        } else {
            pmt
        };
        let pcp = &mut pcp[cpu][z];
        let pindex = order_to_pindex(list, order);
        let i = v.idx(pfn);
        let page = &v.map[i as usize];
        page.make_pcp_flags(order, pmt);
        pcp.add_head(v.map, pindex, i);
        pcp.count += 1 << order;
        // High-order pages freed while nothing is allocated go back at once.
        let free_high = pcp.free_factor != 0 && order > 0;
        let high = if free_high { 0 } else { pcp.high };
        if pcp.count >= high {
            let n = nr_pcp_free(pcp, high, free_high);
            free_pcppages_bulk(&mut v, pcp, n, pindex, c);
            self.refresh_fast_orders(z);
        }
        Ok(())
    }

    /// True when `pfn` lies inside a free block (not at its head), on a buddy or a
    /// per-CPU list.
    fn inside_free_block(&self, z: usize, pfn: Pfn) -> bool {
        let zone = &self.node.zones[z];
        for o in 1..zone.nr_orders as u32 {
            let head = pfn & !((1u64 << o) - 1);
            if !zone.contains_pfn(head) {
                break;
            }
            if let Some(p) = self.node.pfn_to_page(head) {
                if (p.is_buddy() || p.is_pcp()) && p.buddy_order() >= o {
                    return true;
                }
            }
        }
        false
    }
}
