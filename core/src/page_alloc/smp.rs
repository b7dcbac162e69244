//! The page allocator for several CPUs at once: Linux's per-CPU pagesets with their
//! own locks (`pcp->lock`, `zone->lock`, `drain_all_pages`, per-CPU vmstat).
//!
//! * Each CPU's lists sit behind **its own** lock, which only that CPU takes on its
//!   fast paths (Linux: `pcp_spin_trylock` with preemption off): an order ≤ 3
//!   allocation pops its list head and a free pushes onto it without touching any
//!   shared lock. The fast path reads the zone's free count from vmstat's global
//!   value (`zone_page_state`), its watermark inputs (republished whenever the zone
//!   lock is released) and, for a free,
//!   the page's descriptor and pageblock type: all atomics.
//! * The **zone lock** ([`PageAllocator`] behind a mutex) is taken only to refill a
//!   list, drain one above `high`, for higher orders and for everything unusual: the
//!   CPU's lists are lent to the locked allocator (swapped into its slot for that CPU)
//!   for the duration, so the slow paths are [`PageAllocator`]'s own code. Lock order:
//!   a pageset lock, then the zone lock; never two pageset locks at once except in
//!   [`SmpPageAllocator::with_all`], which takes them in CPU order.
//! * A CPU is named by its [`CpuToken`], not by a number, so no caller can use
//!   another CPU's lists by mistake; another CPU's lists are only ever drained
//!   ([`SmpPageAllocator::drain_all_pages`], also run when an allocation would fail).
//! * Free-page counts change only under the zone lock; the changing CPU adds them to
//!   its vmstat difference, folded into the zone's global count past the zone's
//!   `stat_threshold` ([`vmstat`]). Reads that must be exact sum the differences.

pub mod lock;
pub mod vmstat;

use self::lock::{Lock, Locking, SpinLocking};
use self::vmstat::{CpuVmStat, VmEvent, ZoneStatItem, ZoneVmStat};
use super::buddy::FreeCounters;
use super::gfp::Gfp;
use super::pcp::{order_to_pindex, PAGE_ALLOC_COSTLY_ORDER};
use super::{fast, AllocError, FreeError, PageAllocator, PageBlock, PerCpuPages, MOVABLE, NIL};
use crate::addr::Pfn;
use crate::mmtypes::{ZoneType, MAX_NR_ZONES};
use crate::percpu::CpuToken;
use crate::storage::PageStorage;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering::Relaxed};

/// What the fast paths know about a zone without its lock.
struct ZoneFast {
    params: ZoneParams,
    /// [`crate::page::allocated_flags`] of the zone at order 0 (the same as the
    /// routes' `allocated[z]`, kept here next to what the allocation fast path
    /// reads anyway: measured one instruction fewer per ARMv7 pair).
    allocated: u32,
    /// `[highest zone of an allocation][movable]`: [`fast::fast_orders`] of this
    /// zone from vmstat's global free counts (`zone_page_state`), the allocator's
    /// low mark for `highest` and the zone's free lists: the orders whose fast-path
    /// allocation passes `zone_watermark_fast` here. All of those change only under
    /// the zone lock, which republishes this before it is released
    /// ([`ZoneFast::publish_fast_orders`]).
    fast_orders: [[AtomicU8; 2]; MAX_NR_ZONES],
    vm: ZoneVmStat,
}

impl ZoneFast {
    /// Recompute [`ZoneFast::fast_orders`] of zone `z` (the zone lock held), for
    /// the allocations whose first populated zone it is (the others never read it).
    fn publish_fast_orders<S: PageStorage, const NCPU: usize>(
        &self,
        a: &PageAllocator<S, NCPU>,
        z: usize,
    ) {
        for highest in a.zonelist_heads_at(z) {
            for (m, slot) in self.fast_orders[highest].iter().enumerate() {
                slot.store(self.fast_orders_now(a, z, highest, m == 1), Relaxed);
            }
        }
    }

    /// [`fast::fast_orders`] of zone `z` as it stands (the zone lock held).
    fn fast_orders_now<S: PageStorage, const NCPU: usize>(
        &self,
        a: &PageAllocator<S, NCPU>,
        z: usize,
        highest: usize,
        movable: bool,
    ) -> u8 {
        let free = self.vm.global(ZoneStatItem::NrFreePages);
        let cma = self.vm.global(ZoneStatItem::NrFreeCmaPages);
        // The mark as a 32-bit page count, saturated like the counts.
        let mark = sat32(a.low_marks[z][highest] as u64) as usize;
        fast::fast_orders(free, cma, mark, &a.node.zones[z].free_orders, movable)
    }

    /// True when [`ZoneFast::fast_orders`] of zone `z` is as it should be now.
    fn fast_orders_fresh<S: PageStorage, const NCPU: usize>(
        &self,
        a: &PageAllocator<S, NCPU>,
        z: usize,
    ) -> bool {
        a.node.zones[z].managed_pages == 0
            || a.zonelist_heads_at(z).all(|h| {
                (0..2).all(|m| {
                    self.fast_orders[h][m].load(Relaxed) == self.fast_orders_now(a, z, h, m == 1)
                })
            })
    }
}

/// A zone's parameters as the paths outside the zone lock read them: republished
/// whenever the zone lock is released ([`SmpPageAllocator::with_all`] may recompute
/// them). Page counts fit 32 bits (40-bit physical addresses are 2^28 pages);
/// larger values saturate.
struct ZoneParams {
    managed: AtomicU32,
    stat_threshold: AtomicU32,
}

fn sat32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl ZoneParams {
    fn of<S: PageStorage, const NCPU: usize>(a: &PageAllocator<S, NCPU>, z: usize) -> Self {
        let p = ZoneParams {
            managed: AtomicU32::new(0),
            stat_threshold: AtomicU32::new(0),
        };
        p.publish(a, z);
        p
    }

    /// Store zone `z`'s current values (the zone lock held).
    fn publish<S: PageStorage, const NCPU: usize>(&self, a: &PageAllocator<S, NCPU>, z: usize) {
        self.managed
            .store(sat32(a.node.zones[z].managed_pages), Relaxed);
        self.stat_threshold
            .store(a.zones[z].stat_threshold, Relaxed);
    }
}

/// One CPU: its pagesets and its vmstat, on a cache line of their own.
#[repr(align(64))]
struct CpuSlot<L: Locking> {
    pcp: L::Mutex<[PerCpuPages; MAX_NR_ZONES]>,
    vm: CpuVmStat,
}

/// A [`PageAllocator`] shared by `NCPU` CPUs for as long as it is borrowed. See the
/// [module documentation](self). Dropping it gives every CPU's lists back to the
/// allocator (nothing is lost); a kernel that shares its allocator for good
/// borrows it for `'static`.
pub struct SmpPageAllocator<'a, S: PageStorage, const NCPU: usize, L: Locking = SpinLocking> {
    routes: fast::FreeRoutes<S::MemMap, S::Bitmap>,
    zones: [ZoneFast; MAX_NR_ZONES],
    zone_lock: L::Mutex<&'a mut PageAllocator<S, NCPU>>,
    cpus: [CpuSlot<L>; NCPU],
}

impl<S: PageStorage, const NCPU: usize, L: Locking> Drop for SmpPageAllocator<'_, S, NCPU, L> {
    fn drop(&mut self) {
        let a: &mut PageAllocator<S, NCPU> = self.zone_lock.get_mut();
        for (c, slot) in self.cpus.iter_mut().enumerate() {
            core::mem::swap(&mut a.pcp[c], slot.pcp.get_mut());
        }
    }
}

fn counters<S: PageStorage, const NCPU: usize>(
    a: &PageAllocator<S, NCPU>,
) -> [FreeCounters; MAX_NR_ZONES] {
    core::array::from_fn(|z| a.zones[z].counters)
}

impl<'a, S: PageStorage, const NCPU: usize, L: Locking> SmpPageAllocator<'a, S, NCPU, L> {
    /// Share an allocator between its CPUs. The lists each CPU already has become
    /// that CPU's.
    pub fn new(a: &'a mut PageAllocator<S, NCPU>) -> Self {
        let zones = core::array::from_fn(|z| {
            let zone = &a.node.zones[z];
            let st = &a.zones[z];
            let zf = ZoneFast {
                params: ZoneParams::of(a, z),
                allocated: crate::page::allocated_flags(zone.zone_type, zone.node, 0),
                fast_orders: Default::default(),
                vm: ZoneVmStat::new([st.counters.free, st.counters.free_cma]),
            };
            zf.publish_fast_orders(a, z);
            zf
        });
        let cpus = core::array::from_fn(|c| {
            let parked = a.pcp[c].map(|p| PerCpuPages {
                count: 0,
                lists: [NIL; super::NR_PCP_LISTS],
                ..p
            });
            CpuSlot {
                pcp: L::Mutex::new(core::mem::replace(&mut a.pcp[c], parked)),
                vm: CpuVmStat::default(),
            }
        });
        SmpPageAllocator {
            // The same routes as the allocator's (its node's zones do not move).
            routes: a.routes.clone(),
            zones,
            zone_lock: L::Mutex::new(a),
            cpus,
        }
    }

    /// `alloc_pages` on the token's CPU: orders up to 3 from its own lists without a
    /// shared lock when they have a block and the zone is above its low watermark;
    /// everything else under the zone lock, draining every CPU's lists once before
    /// giving up.
    #[inline(always)]
    pub fn alloc_pages(
        &self,
        cpu: &mut CpuToken,
        gfp: Gfp,
        order: u32,
    ) -> Result<PageBlock, AllocError> {
        let c = cpu.id();
        if c >= NCPU {
            return Err(AllocError::BadCpu(c));
        }
        if order <= PAGE_ALLOC_COSTLY_ORDER && gfp.0 & !Gfp::FAST_PATH_OK == 0 {
            if let Some(b) = self.alloc_fast(c, gfp, order) {
                return Ok(b);
            }
        }
        self.alloc_slow(c, gfp, order)
    }

    #[inline(always)]
    fn alloc_fast(&self, c: usize, gfp: Gfp, order: u32) -> Option<PageBlock> {
        let highest = gfp.zone() as usize;
        let mt = gfp.migratetype() as usize;
        let z = (0..=highest)
            .rev()
            .find(|&z| self.zones[z].params.managed.load(Relaxed) != 0)?;
        let zf = &self.zones[z];
        // zone_watermark_fast, ALLOC_WMARK_LOW (ALLOC_CMA for MOVABLE), as published
        // when the zone lock was last released.
        let passing = zf.fast_orders.get(highest)?[usize::from(mt == MOVABLE)].load(Relaxed);
        if u32::from(passing) >> order & 1 == 0 {
            return None;
        }
        let routes = &self.routes;
        let map = &*routes.map;
        let slot = &self.cpus[c];
        // A drain from another CPU holds the lock for a moment: take the slow path.
        let mut pcp = slot.pcp.try_lock()?;
        let allocated = fast::with_order(zf.allocated, order);
        let i = fast::pcp_pop(
            map,
            &mut pcp[z],
            order_to_pindex(mt, order),
            order,
            allocated,
        )?;
        slot.vm.count(VmEvent::PgAlloc, 1 << order);
        Some(PageBlock {
            pfn: routes.map_start + u64::from(i),
            order,
            zone: ZoneType::from_index(z),
        })
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, c: usize, gfp: Gfp, order: u32) -> Result<PageBlock, AllocError> {
        // The event is counted under the pageset lock, as its other writers do.
        let alloc = |a: &mut PageAllocator<S, NCPU>| {
            let r = a.alloc_pages(c, gfp, order);
            if let Ok(b) = &r {
                self.cpus[c]
                    .vm
                    .count(VmEvent::PgAlloc, b.nr_pages() as usize);
            }
            r
        };
        match self.locked(c, alloc) {
            Err(AllocError::NoMemory) if self.others_hold_pages(c) => {
                // __alloc_pages_direct_reclaim's drain_all_pages, then retry.
                self.drain_all_pages();
                self.locked(c, alloc)
            }
            r => r,
        }
    }

    /// `free_pages(block)` on the token's CPU.
    #[inline(always)]
    pub fn free_pages(&self, cpu: &mut CpuToken, block: PageBlock) -> Result<(), FreeError> {
        self.free_pages_raw(cpu, block.pfn, block.order)
    }

    /// `__free_pages(pfn_to_page(pfn), order)` on the token's CPU, with every
    /// `free_page_is_bad` check ([`PageAllocator::free_pages_raw`]): orders up to 3
    /// onto its own lists without a shared lock while they stay below `high`.
    #[inline(always)]
    pub fn free_pages_raw(
        &self,
        cpu: &mut CpuToken,
        pfn: Pfn,
        order: u32,
    ) -> Result<(), FreeError> {
        let c = cpu.id();
        if c >= NCPU {
            return Err(FreeError::BadCpu(c));
        }
        if order <= PAGE_ALLOC_COSTLY_ORDER && self.free_fast(c, pfn, order) {
            return Ok(());
        }
        // Not PageAllocator::free_pages_raw: its fast path trusts `&mut self` to own
        // every descriptor, and here other CPUs' fast paths free without the zone
        // lock. The checked path claims the page (refcount 1 -> 0) atomically.
        self.locked(c, |a| {
            let r = a.free_pages_checked(c, pfn, order);
            if r.is_ok() {
                self.cpus[c].vm.count(VmEvent::PgFree, 1 << order);
            }
            r
        })
    }

    #[inline(always)]
    fn free_fast(&self, c: usize, pfn: Pfn, order: u32) -> bool {
        let Some(fast::FreeTarget {
            map,
            candidate: cand,
            zone: z,
            raw,
        }) = self.routes.free_target(pfn, order)
        else {
            return false;
        };
        let slot = &self.cpus[c];
        let Some(mut pcp) = slot.pcp.try_lock() else {
            return false;
        };
        if !fast::pcp_room(&pcp[z], order) {
            return false;
        }
        // Another CPU may be freeing the same page right now: one of the two wins.
        if !cand.page.claim_free() {
            return false;
        }
        // Freed and reallocated (another order, say) between the check and the
        // claim: let the checked path judge the page as it is now.
        if cand.page.raw_flags() != cand.flags {
            cand.page.set_refcount(1);
            return false;
        }
        if !fast::pcp_push_list(map, &mut pcp[z], &cand, raw, order) {
            cand.page.set_refcount(1);
            return false;
        }
        slot.vm.count(VmEvent::PgFree, 1 << order);
        true
    }

    /// Run `f` on the zone-locked allocator with CPU `c`'s lists lent to it (its
    /// pageset lock, then the zone lock), then publish what changed: the free counts
    /// into `c`'s vmstat differences, the free-area summary for the fast path.
    fn locked<R>(&self, c: usize, f: impl FnOnce(&mut PageAllocator<S, NCPU>) -> R) -> R {
        let slot = &self.cpus[c];
        let mut pcp = slot.pcp.lock();
        let mut a = self.zone_lock.lock();
        slot.vm.count(VmEvent::ZoneLock, 1);
        let before = counters(&a);
        core::mem::swap(&mut a.pcp[c], &mut *pcp);
        let r = f(&mut a);
        core::mem::swap(&mut a.pcp[c], &mut *pcp);
        for (z, (b, now)) in before.iter().zip(counters(&a)).enumerate() {
            let zf = &self.zones[z];
            zf.params.publish(&a, z);
            let t = zf.params.stat_threshold.load(Relaxed);
            let d_free = now.free as i64 - b.free as i64;
            let d_cma = now.free_cma as i64 - b.free_cma as i64;
            slot.vm
                .mod_state(z, ZoneStatItem::NrFreePages, d_free, t, &zf.vm);
            slot.vm
                .mod_state(z, ZoneStatItem::NrFreeCmaPages, d_cma, t, &zf.vm);
            // Blocks can also move between lists without the count changing
            // (pageblock steals, highatomic reserves): always republish.
            if a.node.zones[z].managed_pages != 0 {
                zf.publish_fast_orders(&a, z);
            }
        }
        r
    }

    /// True when a CPU other than `c` has pages on its lists.
    fn others_hold_pages(&self, c: usize) -> bool {
        self.cpus
            .iter()
            .enumerate()
            .any(|(o, slot)| o != c && slot.pcp.lock().iter().any(|p| p.count != 0))
    }

    /// `drain_all_pages`: every CPU's lists back to the buddy, each under its own
    /// pageset lock and the zone lock (Linux 6.1 drains remote CPUs the same way).
    pub fn drain_all_pages(&self) {
        for c in 0..NCPU {
            self.locked(c, |a| a.drain_pages(c));
        }
    }

    /// Everything stopped: every pageset lock (in CPU order), then the zone lock,
    /// all the lists lent to the allocator, for checks and reports that need one
    /// consistent view ([`PageAllocator::check_invariants`], the `/proc` reports).
    /// The vmstat differences are folded first, so that the global counts are exact.
    pub fn with_all<R>(&self, f: impl FnOnce(&mut PageAllocator<S, NCPU>) -> R) -> R {
        let mut pcps: [_; NCPU] = core::array::from_fn(|c| self.cpus[c].pcp.lock());
        let mut a = self.zone_lock.lock();
        debug_assert!(
            (0..MAX_NR_ZONES).all(|z| self.zones[z].fast_orders_fresh(&a, z)),
            "fast_orders is stale"
        );
        let zones: [&ZoneVmStat; MAX_NR_ZONES] = core::array::from_fn(|z| &self.zones[z].vm);
        for slot in &self.cpus {
            slot.vm.fold(&zones);
        }
        let before = counters(&a);
        for (c, p) in pcps.iter_mut().enumerate() {
            core::mem::swap(&mut a.pcp[c], &mut **p);
        }
        let r = f(&mut a);
        for (c, p) in pcps.iter_mut().enumerate() {
            core::mem::swap(&mut a.pcp[c], &mut **p);
        }
        for (z, (b, now)) in before.iter().zip(counters(&a)).enumerate() {
            let zf = &self.zones[z];
            let d_free = now.free as isize - b.free as isize;
            zf.vm.add_global(ZoneStatItem::NrFreePages, d_free);
            let d_cma = now.free_cma as isize - b.free_cma as isize;
            zf.vm.add_global(ZoneStatItem::NrFreeCmaPages, d_cma);
            zf.params.publish(&a, z);
            zf.publish_fast_orders(&a, z);
        }
        r
    }

    /// `zone_page_state_snapshot`: the zone's global count plus every CPU's
    /// difference, without any lock (exact when no CPU is changing it).
    pub fn zone_page_state_snapshot(&self, zone: ZoneType, item: ZoneStatItem) -> u64 {
        let z = zone as usize;
        let mut v = self.zones[z].vm.global(item) as i64;
        for slot in &self.cpus {
            v += slot.vm.diff(z, item);
        }
        v.max(0) as u64
    }

    /// `zone_page_state`: the global count alone (what the fast path reads).
    pub fn zone_page_state(&self, zone: ZoneType, item: ZoneStatItem) -> u64 {
        self.zones[zone as usize].vm.global(item) as u64
    }

    /// `nr_free_pages()` from vmstat, folded when read.
    pub fn nr_free_pages(&self) -> u64 {
        (0..MAX_NR_ZONES)
            .map(|z| {
                self.zone_page_state_snapshot(ZoneType::from_index(z), ZoneStatItem::NrFreePages)
            })
            .sum()
    }

    /// `all_vm_events`' count of `ev` on CPU `cpu` (events are per CPU).
    pub fn cpu_events(&self, cpu: usize, ev: VmEvent) -> usize {
        self.cpus.get(cpu).map_or(0, |s| s.vm.events(ev))
    }

    /// `all_vm_events`: `ev` summed over the CPUs.
    pub fn vm_events(&self, ev: VmEvent) -> usize {
        self.cpus.iter().map(|s| s.vm.events(ev)).sum()
    }

    /// Pages on `cpu`'s lists (taking its pageset lock for the moment).
    pub fn cpu_pcp_pages(&self, cpu: usize) -> u64 {
        self.cpus
            .get(cpu)
            .map_or(0, |s| s.pcp.lock().iter().map(|p| u64::from(p.count)).sum())
    }
}
