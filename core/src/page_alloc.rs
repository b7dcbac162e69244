//! The page allocator: `memblock_free_all`, the buddy with per-CPU lists, watermarks
//! and the allocation API (Linux 6.1 `mm/page_alloc.c`, `mm/memblock.c`).
//!
//! * [`memblock_free_all`] retires memblock: every whole free page enters its zone's
//!   free lists in max-aligned blocks, and the zones' managed pages become what was
//!   freed.
//! * [`PageAllocator`] owns the node (and its `mem_map`) after that, computes the
//!   watermarks, protection and per-CPU list sizes as `init_per_zone_wmark_min`
//!   does, and serves [`PageAllocator::alloc_pages`] / [`PageAllocator::free_pages`].
//!   All methods take `&mut self`: the caller's lock is the zone lock.
//!   [`LockedPageAllocator`] puts all of it behind one `spin::Mutex` (enough for one
//!   CPU); [`SmpPageAllocator`] shares it between CPUs the way Linux does, each
//!   CPU's lists behind their own lock and named by the CPU's
//!   [`CpuToken`](crate::percpu::CpuToken), the zone lock taken once per batch ([`smp`]).
//!
//! Per-CPU lists hold orders 0 to `PAGE_ALLOC_COSTLY_ORDER` (3), one list per order
//! and PCP migrate type, as in Linux since 5.13 (no THP list); higher orders go
//! straight to the buddy lists.
//!
//! The code follows `mm/page_alloc.c` in files, each using only the ones listed
//! before it (and this file, which holds the allocator's state and accessors):
//!
//! * [`buddy`]: the free lists of a zone (`__free_one_page`, `expand`,
//!   `__rmqueue_smallest`, `__rmqueue_fallback`);
//! * [`watermark`]: Linux 6.1's formulas (`calculate_min_free_kbytes`,
//!   `__setup_per_zone_wmarks`, `setup_per_zone_lowmem_reserve`, the pcp sizes);
//! * `gfp`: the GFP flags and what they select (`gfp_zone`, `gfp_migratetype`);
//! * `free_all`: `memblock_free_all` and ARM's `free_highpages`, and the `Memory:`
//!   boot line (`mem_init_print_info`);
//! * `cma_activate`: `cma_init_reserved_areas` / `init_cma_reserved_pageblock`;
//! * `pcp`: the per-CPU lists (`free_pcppages_bulk`, `nr_pcp_free`,
//!   `drain_local_pages`);
//! * `fast`: the per-CPU fast paths' steps, shared with [`smp`] (the watermark
//!   test computed ahead for the orders they serve, pop, push, the checks of a
//!   page to free, the pageblock types they read);
//! * `free`: `free_pages` / `free_unref_page` with the `free_page_is_bad` checks;
//! * `allocate`: `alloc_pages` (`get_page_from_freelist`, `rmqueue`, `__rmqueue`) and
//!   the watermark checks it makes (`__zone_watermark_ok`, `zone_watermark_fast`);
//! * `check`: the invariant checker ([`PageAllocator::check_invariants`]);
//! * [`smp`]: [`SmpPageAllocator`], the allocator shared by several CPUs;
//! * `pairs`: the alloc+free pair loops that the guest's `zonekit.bench` times;
//! * `host` (feature `alloc`): a one-zone allocator on simulated storage in one
//!   call, for host tests and tools.

use crate::addr::{pfn_phys, Pfn, PhysAddr};
use crate::cma::{CmaArea, CmaAreas, MAX_CMA_AREAS};
use crate::mmtypes::{MigrateType, ZoneType, MAX_NR_ZONES};
use crate::page::Page;
use crate::storage::PageStorage;
use crate::zone::PgData;
use buddy::{FreeCounters, ZoneView};
use watermark::Watermarks;

pub mod buddy;
pub mod watermark;

mod allocate;
mod blocks;
mod check;
mod cma_activate;
mod fast;
mod free;
mod free_all;
mod gfp;
#[cfg(any(test, feature = "alloc"))]
pub mod host;
mod pairs;
mod pcp;
pub mod smp;

pub use allocate::AllocError;
pub use check::{InvariantError, InvariantReport};
pub use cma_activate::CmaActivateError;
pub use free::FreeError;
pub use free_all::{memblock_free_all, FreeAllStats, MemoryLine};
pub use gfp::Gfp;
pub use pairs::PairError;
pub use pcp::{PerCpuPages, NR_PCP_LISTS, PAGE_ALLOC_COSTLY_ORDER};
pub use smp::SmpPageAllocator;

const NIL: u32 = Page::NIL;
const MOVABLE: usize = MigrateType::Movable as usize;
const CMA: usize = MigrateType::Cma as usize;
const HIGHATOMIC: usize = MigrateType::HighAtomic as usize;
const ISOLATE: usize = MigrateType::Isolate as usize;

/// Most CPUs a board may declare.
pub const MAX_CPUS: usize = 4;

/// Tunables and inputs of the allocator (Linux's sysctls and boot parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocConfig {
    /// `vm.watermark_scale_factor` (default 10).
    pub watermark_scale_factor: u64,
    /// `vm.lowmem_reserve_ratio` (default `[256, 32, 0, 0]`).
    pub lowmem_reserve_ratio: [u64; MAX_NR_ZONES],
    /// `vm.percpu_pagelist_high_fraction` (default 0).
    pub percpu_pagelist_high_fraction: u64,
    /// A fixed `min_free_kbytes` instead of the computed one.
    pub min_free_kbytes: Option<u64>,
    /// Apply khugepaged's `set_recommended_min_free_kbytes` (THP=always kernels).
    pub thp: bool,
    /// `max_low_pfn`: the end of lowmem.
    pub max_low_pfn: Pfn,
    /// `PHYS_OFFSET`: physical start of the linear map.
    pub phys_offset: PhysAddr,
    /// `PAGE_OFFSET`: virtual address of `PHYS_OFFSET` (equal to it for an identity
    /// map, which is what `page_address` returns by default).
    pub page_offset: u64,
    /// The CMA areas, pageblock aligned and still reserved in memblock: freed as
    /// MIGRATE_CMA before the watermarks (`cma_init_reserved_areas`). An area that
    /// fails [`PageAllocator::check_cma_area`] is not activated (see
    /// [`PageAllocator::cma_failures`]) and its pages are left as they were.
    pub cma: CmaAreas,
    /// CPUs online (`num_online_cpus()`, for the per-CPU `high` and the vmstat
    /// threshold); `None` means every CPU the allocator has lists for.
    pub online_cpus: Option<u32>,
}

impl AllocConfig {
    /// Linux 6.1's defaults for a node whose lowmem ends at `max_low_pfn`.
    pub fn new(max_low_pfn: Pfn, phys_offset: PhysAddr) -> Self {
        AllocConfig {
            watermark_scale_factor: watermark::DEFAULT_WATERMARK_SCALE_FACTOR,
            lowmem_reserve_ratio: watermark::DEFAULT_LOWMEM_RESERVE_RATIO,
            percpu_pagelist_high_fraction: 0,
            min_free_kbytes: None,
            thp: false,
            max_low_pfn,
            phys_offset,
            page_offset: phys_offset,
            cma: CmaAreas::new(),
            online_cpus: None,
        }
    }
}

/// Per-zone allocator state that `struct zone` has and [`crate::zone::Zone`] lacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneState {
    /// `NR_FREE_PAGES` / `NR_FREE_CMA_PAGES`.
    pub counters: FreeCounters,
    /// The watermarks.
    pub wmark: Watermarks,
    /// `watermark_boost` (always 0: zonekit has no kswapd).
    pub boost: u64,
    /// `lowmem_reserve[]` (the `protection:` line).
    pub lowmem_reserve: [u64; MAX_NR_ZONES],
    /// `cma_pages`.
    pub cma_pages: u64,
    /// `nr_reserved_highatomic`.
    pub nr_reserved_highatomic: u64,
    /// The per-CPU stat threshold (`vm stats threshold`).
    pub stat_threshold: u32,
}

impl ZoneState {
    /// The allocation fast path's mark for allocations whose highest zone is
    /// `highest`: the low watermark, the boost, the lowmem reserve and the
    /// highatomic reserve added up, saturated to the word the free counters are kept
    /// in ([`PageAllocator`]'s `low_marks` holds it for every `highest`).
    fn fast_low_mark(&self, highest: usize) -> usize {
        let mark = self
            .wmark
            .low
            .saturating_add(self.boost)
            .saturating_add(self.lowmem_reserve[highest])
            .saturating_add(self.nr_reserved_highatomic);
        usize::try_from(mark).unwrap_or(usize::MAX)
    }
}

// alloc_flags
const ALLOC_WMARK_MIN: u32 = 0;
const ALLOC_WMARK_LOW: u32 = 1;
const ALLOC_WMARK_MASK: u32 = 3;
const ALLOC_NO_WATERMARKS: u32 = 4;
const ALLOC_MIN_RESERVE: u32 = 0x08;
const ALLOC_NON_BLOCK: u32 = 0x10;
const ALLOC_HIGHATOMIC: u32 = 0x200;
const ALLOC_CMA: u32 = 0x80;
const ALLOC_RESERVES: u32 = ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK | ALLOC_HIGHATOMIC;

/// The buddy page allocator of one node with `NCPU` CPUs (1 ≤ NCPU ≤ [`MAX_CPUS`]).
pub struct PageAllocator<S: PageStorage, const NCPU: usize = 1> {
    node: PgData<S>,
    storage: S,
    cfg: AllocConfig,
    min_free_kbytes: u64,
    zones: [ZoneState; MAX_NR_ZONES],
    pcp: [[PerCpuPages; MAX_NR_ZONES]; NCPU],
    /// The node's map, its pageblock table and its zones' allocated-head flags, for
    /// the fast paths.
    routes: fast::FreeRoutes<S::MemMap, S::Bitmap>,
    /// `[zone][highest zone of the allocation]`: the low watermark, the boost, the
    /// lowmem reserve and the highatomic reserve added up, the allocation fast
    /// path's mark in one load. Set with the watermarks, the only time any of these
    /// changes (zonekit has no kswapd boost and takes no highatomic reserve; code
    /// that adds either must refresh this: the fast path checks it in debug
    /// builds).
    low_marks: [[usize; MAX_NR_ZONES]; MAX_NR_ZONES],
    /// `[highest zone of an allocation]`: the first zone of its zonelist, the
    /// highest populated one at or below it, as Linux's zonelists hold only
    /// populated zones; DMA when there is none (DMA is then empty, so
    /// `fast_orders` says no for every order). A [`ZoneType`], so that the fast
    /// path indexes the per-zone arrays with it without a bounds check. Set with
    /// the watermarks: no zone's managed pages change once the allocator is set up.
    first_zones: [ZoneType; MAX_NR_ZONES],
    /// `[highest zone of the allocation][movable]`: [`fast::fast_orders`] of the
    /// first zone of its zonelist, the orders whose fast-path allocation passes
    /// `zone_watermark_fast` there. Its inputs change only with the buddy: every
    /// path that frees to or takes from the buddy refreshes it
    /// ([`PageAllocator::refresh_fast_orders`]); the fast path checks it in debug
    /// builds.
    fast_orders: [[u8; 2]; MAX_NR_ZONES],
    cma_failures: heapless::Vec<(CmaArea, CmaActivateError), MAX_CMA_AREAS>,
}

/// An allocated block of `2^order` pages. Owned: it is not `Copy` or `Clone`, so the
/// type system stops a second [`PageAllocator::free_pages`] of the same block.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a PageBlock that is dropped is leaked; free it with free_pages"]
pub struct PageBlock {
    pfn: Pfn,
    order: u32,
    zone: ZoneType,
}

impl PageBlock {
    /// First pfn.
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }
    /// Order.
    pub fn order(&self) -> u32 {
        self.order
    }
    /// Zone it came from.
    pub fn zone(&self) -> ZoneType {
        self.zone
    }
    /// Physical address of the first page.
    pub fn phys(&self) -> PhysAddr {
        pfn_phys(self.pfn)
    }
    /// Number of pages.
    pub fn nr_pages(&self) -> u64 {
        1 << self.order
    }
    /// Give up ownership: `(pfn, order)` for [`PageAllocator::free_pages_raw`].
    pub fn into_raw(self) -> (Pfn, u32) {
        (self.pfn, self.order)
    }
}

#[inline]
fn zone_view<'a, S: PageStorage>(
    node: &'a mut PgData<S>,
    z: usize,
    blocks: blocks::BlockTableView<'a>,
) -> Option<ZoneView<'a>> {
    let PgData {
        mem_map,
        zones,
        mem_map_start_pfn,
        ..
    } = node;
    ZoneView::new(
        mem_map.as_deref()?,
        *mem_map_start_pfn,
        &mut zones[z],
        blocks,
    )
}

impl<S: PageStorage, const NCPU: usize> PageAllocator<S, NCPU> {
    const CPUS_OK: () = assert!(NCPU >= 1 && NCPU <= MAX_CPUS, "1..=MAX_CPUS CPUs");

    /// Take over a node after [`memblock_free_all`]: free the CMA area if one is
    /// configured, then `init_per_zone_wmark_min` (min_free_kbytes, watermarks,
    /// per-CPU batch/high, stat thresholds, lowmem reserves).
    pub fn new(node: PgData<S>, storage: S, cfg: AllocConfig) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CPUS_OK;
        let routes = fast::FreeRoutes::new(&node);
        let mut a = PageAllocator {
            routes,
            node,
            storage,
            cfg,
            min_free_kbytes: 0,
            zones: [ZoneState::default(); MAX_NR_ZONES],
            low_marks: [[0; MAX_NR_ZONES]; MAX_NR_ZONES],
            first_zones: [ZoneType::Dma; MAX_NR_ZONES],
            fast_orders: [[0; 2]; MAX_NR_ZONES],
            pcp: [[PerCpuPages::EMPTY; MAX_NR_ZONES]; NCPU],
            cma_failures: heapless::Vec::new(),
        };
        for z in 0..MAX_NR_ZONES {
            a.zones[z].counters = a.count_free(z);
        }
        for area in cfg.cma.areas() {
            match a.check_cma_area(area) {
                Ok(zone) => a.init_cma_reserved_area(zone, area),
                Err(e) => {
                    zk_warn!(
                        "cma: CMA area at {:#x} could not be activated: {}",
                        area.base,
                        e
                    );
                    // At most MAX_CMA_AREAS areas exist, so this cannot be full.
                    let _ = a.cma_failures.push((*area, e));
                }
            }
        }
        a.init_per_zone_wmark_min();
        if let Err(e) = a.routes.attach_table(&a.node, &mut a.storage) {
            zk_warn!(
                "page allocator: no pageblock table ({}): every free takes the checked path",
                e
            );
        }
        a
    }

    /// Recount a zone's free pages from its lists.
    fn count_free(&self, z: usize) -> FreeCounters {
        let zone = &self.node.zones[z];
        let mut c = FreeCounters::default();
        let Some(map) = self.node.mem_map.as_deref() else {
            return c;
        };
        for (o, area) in zone.free_area[..zone.nr_orders].iter().enumerate() {
            c.free += (area.nr_free << o) as usize;
            let mut i = area.free_list[CMA];
            while i != NIL {
                c.free_cma += 1 << o;
                i = map[i as usize].next();
            }
        }
        c
    }

    fn managed_all(&self) -> [u64; MAX_NR_ZONES] {
        core::array::from_fn(|i| self.node.zones[i].managed_pages)
    }

    /// `init_per_zone_wmark_min` (+ khugepaged's recommendation when `cfg.thp`):
    /// see [`watermark::init_per_zone_wmark_min`].
    pub fn init_per_zone_wmark_min(&mut self) {
        let inp = watermark::WmarkInput {
            managed: self.managed_all(),
            populated: core::array::from_fn(|i| self.node.zones[i].is_populated()),
            nr_cpus: self.online_cpus(),
            thp: self.cfg.thp,
            pageblock_nr_pages: 1
                << self
                    .node
                    .zones
                    .iter()
                    .map(|z| z.pageblock_order)
                    .max()
                    .unwrap_or(0),
            lowmem_reserve_ratio: self.cfg.lowmem_reserve_ratio,
            watermark_scale_factor: self.cfg.watermark_scale_factor,
            percpu_pagelist_high_fraction: self.cfg.percpu_pagelist_high_fraction,
            min_free_kbytes: self.cfg.min_free_kbytes,
        };
        let t = watermark::init_per_zone_wmark_min(&inp);
        self.min_free_kbytes = t.min_free_kbytes;
        for z in 0..MAX_NR_ZONES {
            self.zones[z].wmark = t.wmark[z];
            self.zones[z].lowmem_reserve = t.lowmem_reserve[z];
            self.zones[z].stat_threshold = t.stat_threshold[z];
            for cpu in 0..NCPU {
                self.pcp[cpu][z].batch = t.pcp_batch[z];
                self.pcp[cpu][z].high = t.pcp_high[z];
            }
            let st = &self.zones[z];
            self.low_marks[z] = core::array::from_fn(|highest| st.fast_low_mark(highest));
        }
        self.first_zones = core::array::from_fn(|highest| self.first_zone(highest));
        for z in 0..MAX_NR_ZONES {
            self.refresh_fast_orders(z);
        }
    }

    /// [`fast::fast_orders`] as zone `z`'s counts, free lists and marks stand now,
    /// for every allocation whose zonelist starts at `z`: to run after anything
    /// that changed zone `z`'s buddy.
    #[inline]
    fn refresh_fast_orders(&mut self, z: usize) {
        for highest in self.zonelist_heads_at(z) {
            self.fast_orders[highest] = self.fast_orders_for(highest);
        }
    }

    /// The highest zones of the allocations whose zonelist starts at zone `z`.
    fn zonelist_heads_at(&self, z: usize) -> impl Iterator<Item = usize> + use<S, NCPU> {
        let first = self.first_zones;
        (0..MAX_NR_ZONES).filter(move |&h| first[h] as usize == z)
    }

    /// [`Self::fast_orders_now`] for allocations up to zone `highest`, not movable
    /// and movable: what `fast_orders[highest]` must hold.
    fn fast_orders_for(&self, highest: usize) -> [u8; 2] {
        [false, true].map(|m| self.fast_orders_now(highest, m))
    }

    /// [`fast::fast_orders`] for allocations up to zone `highest`, movable or not,
    /// from their zonelist's first zone (none when there is no such zone).
    fn fast_orders_now(&self, highest: usize, movable: bool) -> u8 {
        let z = self.first_zones[highest] as usize;
        let (zs, zone) = (&self.zones[z], &self.node.zones[z]);
        let c = zs.counters;
        let mark = self.low_marks[z][highest];
        fast::fast_orders(c.free, c.free_cma, mark, &zone.free_orders, movable)
    }

    /// The highest populated zone at or below `highest` (DMA when there is none,
    /// an empty zone then).
    fn first_zone(&self, highest: usize) -> ZoneType {
        let z = (0..=highest)
            .rev()
            .find(|&z| self.node.zones[z].managed_pages != 0)
            .unwrap_or(0);
        ZoneType::from_index(z)
    }

    /// `page_alloc_cpu_online` / `zone_pcp_update` after CPUs came up or went away:
    /// `n` CPUs online (1 to `NCPU`), the per-CPU `high`, `batch` and the vmstat
    /// thresholds recomputed (the watermarks do not depend on it).
    pub fn set_online_cpus(&mut self, n: u32) {
        self.cfg.online_cpus = Some(n);
        self.init_per_zone_wmark_min();
    }

    /// `num_online_cpus()`: [`AllocConfig::online_cpus`], 1 to `NCPU`.
    pub fn online_cpus(&self) -> u32 {
        self.cfg
            .online_cpus
            .unwrap_or(NCPU as u32)
            .clamp(1, NCPU as u32)
    }

    /// `min_free_kbytes`.
    pub fn min_free_kbytes(&self) -> u64 {
        self.min_free_kbytes
    }

    /// The node (zones, `mem_map`).
    pub fn node(&self) -> &PgData<S> {
        &self.node
    }

    /// The configuration.
    pub fn config(&self) -> &AllocConfig {
        &self.cfg
    }

    /// Per-zone allocator state.
    pub fn zone_state(&self, zone: ZoneType) -> &ZoneState {
        &self.zones[zone as usize]
    }

    /// The per-CPU lists of `cpu` for `zone`.
    pub fn pcp(&self, cpu: usize, zone: ZoneType) -> Option<&PerCpuPages> {
        self.pcp.get(cpu).map(|p| &p[zone as usize])
    }

    /// `nr_free_pages()`: pages on the buddy lists of all zones (per-CPU lists not
    /// included, as in Linux).
    pub fn nr_free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.counters.free as u64).sum()
    }

    /// Pages parked on per-CPU lists.
    pub fn nr_pcp_pages(&self) -> u64 {
        self.pcp.iter().flatten().map(|p| p.count as u64).sum()
    }

    /// `zone_managed_pages`.
    pub fn managed(&self, zone: ZoneType) -> u64 {
        self.node.zones[zone as usize].managed_pages
    }

    /// `NR_FREE_PAGES` of a zone.
    pub fn free(&self, zone: ZoneType) -> u64 {
        self.zones[zone as usize].counters.free as u64
    }

    /// Pages of a zone handed out and not freed.
    pub fn allocated(&self, zone: ZoneType) -> u64 {
        // Derived, not counted on the hot paths: every managed page is free, on a
        // per-CPU list or allocated (check_invariants verifies it against a scan).
        let z = zone as usize;
        let mut pcp = 0u64;
        for p in &self.pcp {
            pcp += p[z].count as u64;
        }
        self.node.zones[z]
            .managed_pages
            .saturating_sub(self.zones[z].counters.free as u64 + pcp)
    }

    /// `totalram_pages`.
    pub fn totalram_pages(&self) -> u64 {
        self.managed_all().iter().sum()
    }

    /// `page_address` for lowmem: the linear-map address of `pfn`
    /// (`pfn_phys - PHYS_OFFSET + PAGE_OFFSET`), or `None` for highmem (which needs
    /// `kmap`, the arch's business) and pfns outside the node.
    pub fn page_address(&self, pfn: Pfn) -> Option<u64> {
        if pfn >= self.cfg.max_low_pfn || self.node.pfn_to_index(pfn).is_none() {
            return None;
        }
        Some(
            pfn_phys(pfn)
                .wrapping_sub(self.cfg.phys_offset)
                .wrapping_add(self.cfg.page_offset),
        )
    }

    #[inline]
    fn zone_index(&self, pfn: Pfn) -> Option<usize> {
        let z = self.node.pfn_to_page(pfn)?.zone_type() as usize;
        self.node.zones[z].contains_pfn(pfn).then_some(z)
    }
}

/// A [`PageAllocator`] behind one `spin::Mutex`: every operation takes the lock, so
/// every caller shares one set of per-CPU lists (CPU 0's), whichever CPU it runs
/// on. For one CPU, or where simplicity beats scaling; for several CPUs see
/// [`SmpPageAllocator`].
pub struct LockedPageAllocator<S: PageStorage, const NCPU: usize = 1>(
    spin::Mutex<PageAllocator<S, NCPU>>,
);

impl<S: PageStorage, const NCPU: usize> LockedPageAllocator<S, NCPU> {
    /// Wrap an allocator.
    pub const fn new(a: PageAllocator<S, NCPU>) -> Self {
        Self(spin::Mutex::new(a))
    }

    /// `alloc_pages` (the shared lists).
    pub fn alloc_pages(&self, gfp: Gfp, order: u32) -> Result<PageBlock, AllocError> {
        self.0.lock().alloc_pages(0, gfp, order)
    }

    /// `free_pages` (the shared lists).
    pub fn free_pages(&self, block: PageBlock) -> Result<(), FreeError> {
        self.0.lock().free_pages(0, block)
    }

    /// Lock for anything else (reports, counters, checks).
    pub fn lock(&self) -> spin::MutexGuard<'_, PageAllocator<S, NCPU>> {
        self.0.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::VecPageStorage;
    use crate::MmConfig;

    /// 16 MiB at 0x60000000, zonekit profile (orders 0..=10), 1 MiB reserved at
    /// 0x60100000.
    fn small() -> PageAllocator<VecPageStorage, 1> {
        let a = host::one_zone_allocator(0x60000, 4096, Some((0x6010_0000, 1 << 20))).unwrap();
        assert_eq!(a.managed(ZoneType::Dma), a.nr_free_pages());
        a
    }

    #[test]
    fn free_all_splits_around_reservations_and_merges() {
        let mut a = small();
        let r = a.check_invariants().unwrap();
        assert_eq!(r.free + r.reserved_present, 4096);
        // The reservations cut the first 4 MiB block; the rest are order-10 blocks.
        assert!(a.node().zones[0].free_area[10].nr_free >= 2);
        let before = a.node().zones[0].free_area;
        let b = a.alloc_pages(0, Gfp::KERNEL, 5).unwrap();
        assert_eq!(b.pfn() & 31, 0);
        a.check_invariants().unwrap();
        a.free_pages(0, b).unwrap();
        a.check_invariants().unwrap();
        assert_eq!(
            a.node().zones[0].free_area.map(|f| f.nr_free),
            before.map(|f| f.nr_free)
        );
    }

    /// A zone with fewer orders than the per-CPU lists: an order it does not
    /// have is a typed error on the fast path too, and the watermark checks say no.
    #[test]
    fn orders_beyond_the_zone_are_errors_not_panics() {
        let mm = MmConfig {
            max_order: 2,
            pageblock_order: 1,
            ..MmConfig::ZONEKIT
        };
        let mut a = host::one_zone_allocator_with::<1>(&mm, 0x60000, 4096, None).unwrap();
        for order in [2, 3, 4, 63, 64, u32::MAX] {
            assert_eq!(
                a.alloc_pages(0, Gfp::KERNEL, order),
                Err(AllocError::InvalidOrder(order))
            );
            assert!(!a.zone_watermark_ok(ZoneType::Dma, order, 0, ZoneType::Dma));
        }
        assert!(!a.zone_watermark_ok(ZoneType::Dma, 1, u64::MAX / 2, ZoneType::Dma));
        let b = a.alloc_pages(0, Gfp::KERNEL, 1).unwrap();
        a.free_pages(0, b).unwrap();
        a.check_invariants().unwrap();
    }

    #[test]
    fn pcp_refills_a_batch_and_drains_above_high() {
        let mut a = small();
        let batch = a.pcp(0, ZoneType::Dma).unwrap().batch;
        let high = a.pcp(0, ZoneType::Dma).unwrap().high;
        let b = a.alloc_pages(0, Gfp::MOVABLE, 0).unwrap();
        assert_eq!(a.nr_pcp_pages(), batch as u64 - 1);
        let mut v = alloc::vec![b];
        for _ in 0..high + batch {
            v.push(a.alloc_pages(0, Gfp::MOVABLE, 0).unwrap());
        }
        for b in v {
            a.free_pages(0, b).unwrap();
            assert!(a.nr_pcp_pages() < high as u64);
        }
        a.check_invariants().unwrap();
        a.drain_all_pages();
        assert_eq!(a.nr_pcp_pages(), 0);
        a.check_invariants().unwrap();
    }

    /// A 16 MiB zone cut up by a seeded run of allocations and frees of orders
    /// 0-5 (the per-CPU lists drained: every free page on a buddy list).
    fn fragmented(seed: u64) -> PageAllocator<VecPageStorage, 1> {
        let mut a = host::one_zone_allocator(0x60000, 4096, Some((0x6010_0000, 1 << 20))).unwrap();
        let mut x = seed | 1;
        let mut live = alloc::vec::Vec::new();
        for _ in 0..600 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(3) && !live.is_empty() {
                let b = live.swap_remove((x >> 8) as usize % live.len());
                a.free_pages(0, b).unwrap();
            } else if let Ok(b) = a.alloc_pages(0, Gfp::KERNEL, ((x >> 4) % 6) as u32) {
                live.push(b);
            }
        }
        a.drain_all_pages();
        a
    }

    /// `rmqueue_smallest_bulk` hands out the blocks that as many calls of
    /// `rmqueue_smallest` would, in the same order, and leaves the same free lists,
    /// counters and descriptors (but those of the blocks taken, which its callers
    /// rewrite), from every order and count on fragmented zones.
    #[test]
    fn bulk_takes_what_the_calls_one_by_one_take() {
        // Cases that left pieces of a split block, and calls that took two runs
        // or more: the cases below must have both.
        let (mut split, mut several) = (0, 0);
        for seed in [1, 7, 12345] {
            for order in 0..=3 {
                for n in [1, 2, 3, 5, 31, 63, 200, 5000] {
                    let mut one = fragmented(seed);
                    let mut bulk = fragmented(seed);
                    let mut want = alloc::vec::Vec::new();
                    let mut c1 = one.zones[0].counters;
                    let mut v = zone_view(&mut one.node, 0, one.routes.block_view(0)).unwrap();
                    while want.len() < n {
                        let Some(pfn) =
                            v.rmqueue_smallest(order, MigrateType::Unmovable as usize, &mut c1)
                        else {
                            break;
                        };
                        want.push(v.idx(pfn));
                    }
                    let mut got = alloc::vec::Vec::new();
                    let mut runs = 0;
                    let before = bulk.node.zones[0].free_area.map(|f| f.nr_free);
                    let mut c2 = bulk.zones[0].counters;
                    let mut v = zone_view(&mut bulk.node, 0, bulk.routes.block_view(0)).unwrap();
                    let taken = v.rmqueue_smallest_bulk(
                        order,
                        MigrateType::Unmovable as usize,
                        n as u32,
                        &mut c2,
                        |f, k| {
                            got.extend((0..k).map(|j| f + (j << order)));
                            runs += 1;
                        },
                    );
                    let case = (seed, order, n);
                    assert!(!want.is_empty(), "{case:?}");
                    let after = bulk.node.zones[0].free_area.map(|f| f.nr_free);
                    split += usize::from(before.iter().zip(&after).any(|(b, a)| a > b));
                    several += usize::from(runs > 1);
                    assert_eq!(taken as usize, got.len(), "{case:?}");
                    assert_eq!(got, want, "{case:?}");
                    assert_eq!(c1, c2, "{case:?}");
                    let (z1, z2) = (&one.node.zones[0], &bulk.node.zones[0]);
                    assert_eq!(z1.free_area, z2.free_area, "{case:?}");
                    assert_eq!(z1.free_orders, z2.free_orders, "{case:?}");
                    let (m1, m2) = (
                        one.node.mem_map.as_deref().unwrap(),
                        bulk.node.mem_map.as_deref().unwrap(),
                    );
                    for (i, (p1, p2)) in m1.iter().zip(m2).enumerate() {
                        if !got.contains(&(i as u32)) {
                            assert_eq!(p1, p2, "{case:?}: page {i}");
                        }
                    }
                }
            }
        }
        assert!(split > 0 && several > 0, "{split} {several}");
    }

    /// Zones that meet inside a max-order block: every block stays in its zone
    /// (the buddy's zone test reads the flags) through allocating everything, one
    /// page and then mixed orders, and freeing it back, and the zones end whole.
    #[test]
    fn blocks_never_merge_across_an_unaligned_zone_boundary() {
        // DMA ends 1000 pages in (not a multiple of 8), Normal after it.
        let mut a =
            host::zoned_allocator::<1>(&MmConfig::ZONEKIT, 0x60000, [1000, 3096, 0, 0], None)
                .unwrap();
        let before = a
            .node()
            .zones
            .each_ref()
            .map(|z| z.free_area.map(|f| f.nr_free));
        for orders in [&[0u32][..], &[3, 0, 5, 1, 2, 0]] {
            let mut held = alloc::vec::Vec::new();
            for &o in orders.iter().cycle() {
                match a.alloc_pages(0, Gfp::MEMALLOC, o) {
                    Ok(b) => held.push(b),
                    Err(_) if o == 0 => break,
                    Err(_) => {}
                }
            }
            a.check_invariants().unwrap();
            for b in held.into_iter().rev() {
                a.free_pages(0, b).unwrap();
            }
            a.drain_all_pages();
            a.check_invariants().unwrap();
        }
        let after = a
            .node()
            .zones
            .each_ref()
            .map(|z| z.free_area.map(|f| f.nr_free));
        assert_eq!(before, after);
    }
}
