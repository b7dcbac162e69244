//! The page allocator: `memblock_free_all`, the buddy with per-CPU lists, watermarks
//! and the allocation API (Linux 6.1 `mm/page_alloc.c`, `mm/memblock.c`).
//!
//! * [`memblock_free_all`] retires memblock: every whole free page enters its zone's
//!   free lists in max-aligned blocks, and the zones' managed pages become what was
//!   freed.
//! * [`PageAllocator`] owns the node (and its `mem_map`) after that, computes the
//!   watermarks, protection and per-CPU list sizes as `init_per_zone_wmark_min`
//!   does, and serves [`PageAllocator::alloc_pages`] / [`PageAllocator::free_pages`].
//!   All methods take `&mut self`: the caller's lock is the zone lock. For several
//!   CPUs, [`LockedPageAllocator`] puts it behind a `spin::Mutex`; each CPU names its
//!   own per-CPU lists with an explicit `cpu` id.
//!
//! Per-CPU lists exist for order 0 only (Linux 6.1 also keeps orders 1-3 and THP
//! there); higher orders go straight to the buddy lists.

use crate::addr::{pfn_down, pfn_phys, pfn_up, Pfn, PhysAddr, PAGE_SIZE};
use crate::cma::{CmaArea, CmaAreas, MAX_CMA_AREAS};
use crate::memblock::{Memblock, RegionFlags, NUMA_NO_NODE};
use crate::mmtypes::{MigrateType, ZoneType, MAX_NR_ZONES};
use crate::page::Page;
use crate::storage::{PageStorage, StorageError};
use crate::zone::PgData;
use buddy::MIGRATE_PCPTYPES;
use buddy::{list_add, list_add_tail, list_del, list_tail, FreeCounters, ZoneView};
use watermark::Watermarks;

pub mod buddy;
pub mod watermark;

const NIL: u32 = Page::NIL;
const MOVABLE: usize = MigrateType::Movable as usize;
const CMA: usize = MigrateType::Cma as usize;
const HIGHATOMIC: usize = MigrateType::HighAtomic as usize;
const ISOLATE: usize = MigrateType::Isolate as usize;

/// Most CPUs a board may declare.
pub const MAX_CPUS: usize = 4;

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

#[inline]
fn zone_view<S: PageStorage>(node: &mut PgData<S>, z: usize) -> Option<ZoneView<'_>> {
    let PgData {
        mem_map,
        zones,
        mem_map_start_pfn,
        ..
    } = node;
    ZoneView::new(mem_map.as_deref_mut()?, *mem_map_start_pfn, &mut zones[z])
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
        let Some(mut v) = zone_view(node, z) else {
            continue;
        };
        let mut c = FreeCounters::default();
        // __free_pages_core's per-page part, over the whole range at once:
        // __ClearPageReserved and set_page_count(0).
        let (lo, hi) = ((a - v.map_start) as usize, (b - v.map_start) as usize);
        for page in &mut v.map[lo..hi] {
            page.clear_reserved();
            page.set_refcount(0);
        }
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

/// GFP flags (`gfp_t`, the subset zonekit acts on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Gfp(pub u32);

impl Gfp {
    /// `__GFP_DMA`: only ZONE_DMA.
    pub const DMA: Gfp = Gfp(0x01);
    /// `__GFP_HIGHMEM`: HighMem allowed.
    pub const HIGHMEM: Gfp = Gfp(0x02);
    /// `__GFP_MOVABLE`: movable pages (MIGRATE_MOVABLE, may use CMA; with HIGHMEM,
    /// ZONE_MOVABLE allowed).
    pub const MOVABLE: Gfp = Gfp(0x08);
    /// `__GFP_RECLAIMABLE`: MIGRATE_RECLAIMABLE.
    pub const RECLAIMABLE: Gfp = Gfp(0x10);
    /// `__GFP_HIGH`: may use half of the min reserve.
    pub const HIGH: Gfp = Gfp(0x20);
    /// `__GFP_ZERO`: zero the pages.
    pub const ZERO: Gfp = Gfp(0x100);
    /// Non-blocking (`GFP_ATOMIC`'s lack of `__GFP_DIRECT_RECLAIM`): a further quarter
    /// of the min reserve and the high-atomic reserve.
    pub const ATOMIC: Gfp = Gfp(0x800);
    /// `__GFP_MEMALLOC`: ignore the watermarks (`ALLOC_NO_WATERMARKS`).
    pub const MEMALLOC: Gfp = Gfp(0x20000);
    /// `GFP_KERNEL`.
    pub const KERNEL: Gfp = Gfp(0);
    /// `GFP_HIGHUSER_MOVABLE`.
    pub const HIGHUSER_MOVABLE: Gfp = Gfp(0x02 | 0x08);
    /// `GFP_ATOMIC`.
    pub const GFP_ATOMIC: Gfp = Gfp(0x20 | 0x800);
    /// Flags the order-0 per-CPU fast path handles (zone and migrate type only).
    const FAST_PATH_OK: u32 = 0x01 | 0x02 | 0x08 | 0x10;

    /// True when every bit of `other` is set.
    #[inline]
    pub const fn contains(self, other: Gfp) -> bool {
        self.0 & other.0 == other.0
    }

    /// `gfp_zone`: the highest zone the allocation may use.
    #[inline]
    pub fn zone(self) -> ZoneType {
        if self.contains(Gfp::DMA) {
            ZoneType::Dma
        } else if self.contains(Gfp::HIGHMEM) {
            if self.contains(Gfp::MOVABLE) {
                ZoneType::Movable
            } else {
                ZoneType::HighMem
            }
        } else {
            ZoneType::Normal
        }
    }

    /// `gfp_migratetype`.
    #[inline]
    pub fn migratetype(self) -> MigrateType {
        if self.contains(Gfp::MOVABLE) {
            MigrateType::Movable
        } else if self.contains(Gfp::RECLAIMABLE) {
            MigrateType::Reclaimable
        } else {
            MigrateType::Unmovable
        }
    }
}

impl core::ops::BitOr for Gfp {
    type Output = Gfp;
    fn bitor(self, rhs: Gfp) -> Gfp {
        Gfp(self.0 | rhs.0)
    }
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
        }
    }
}

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
    const EMPTY: PerCpuPages = PerCpuPages {
        count: 0,
        high: 0,
        batch: 1,
        free_factor: 0,
        lists: [NIL; MIGRATE_PCPTYPES],
    };
}

/// Per-zone allocator state that `struct zone` has and [`crate::zone::Zone`] lacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneState {
    /// `NR_FREE_PAGES` / `NR_FREE_CMA_PAGES`.
    pub counters: FreeCounters,
    /// Pages handed out and not yet freed.
    pub allocated: u64,
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
    cma_failures: heapless::Vec<(CmaArea, CmaActivateError), MAX_CMA_AREAS>,
}

/// Why a CMA area could not be activated (`cma_activate_area`'s checks, and the
/// ones a caller-supplied area needs before its pages are touched).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmaActivateError {
    /// The area is empty, or its base or size is not a whole number of pageblocks.
    Misaligned,
    /// The area reaches past the end of the address space.
    Overflow,
    /// Some page of the area lies outside every zone, or the area spans two zones.
    NotInOneZone,
    /// Some page of the area is not a reserved page (free already, in use, or part
    /// of another area): handing it to the buddy would corrupt the free lists.
    NotReserved(Pfn),
}

impl core::fmt::Display for CmaActivateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CmaActivateError::Misaligned => write!(f, "not a whole number of pageblocks"),
            CmaActivateError::Overflow => write!(f, "reaches past the address space"),
            CmaActivateError::NotInOneZone => write!(f, "not within one zone"),
            CmaActivateError::NotReserved(pfn) => write!(f, "pfn {pfn:#x} is not reserved"),
        }
    }
}

impl<S: PageStorage, const NCPU: usize> PageAllocator<S, NCPU> {
    const CPUS_OK: () = assert!(NCPU >= 1 && NCPU <= MAX_CPUS, "1..=MAX_CPUS CPUs");

    /// Take over a node after [`memblock_free_all`]: free the CMA area if one is
    /// configured, then `init_per_zone_wmark_min` (min_free_kbytes, watermarks,
    /// per-CPU batch/high, stat thresholds, lowmem reserves).
    pub fn new(node: PgData<S>, storage: S, cfg: AllocConfig) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CPUS_OK;
        let mut a = PageAllocator {
            node,
            storage,
            cfg,
            min_free_kbytes: 0,
            zones: [ZoneState::default(); MAX_NR_ZONES],
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
            c.free += area.nr_free << o;
            let mut i = area.free_list[CMA];
            while i != NIL {
                c.free_cma += 1 << o;
                i = map[i as usize].next();
            }
        }
        c
    }

    /// The CMA areas of [`AllocConfig::cma`] that [`PageAllocator::new`] refused, and
    /// why; their pages were left untouched.
    pub fn cma_failures(&self) -> &[(CmaArea, CmaActivateError)] {
        &self.cma_failures
    }

    /// Whether `area` can become MIGRATE_CMA: whole pageblocks, inside one zone, and
    /// every page still reserved (so no page is on a free list or in use). Returns the
    /// zone index.
    pub fn check_cma_area(&self, area: &CmaArea) -> Result<usize, CmaActivateError> {
        let base = pfn_down(area.base);
        let pages = area.size / PAGE_SIZE;
        let end = area
            .base
            .checked_add(area.size)
            .ok_or(CmaActivateError::Overflow)?;
        let zone = self
            .zone_index(base)
            .ok_or(CmaActivateError::NotInOneZone)?;
        let nr = 1u64 << self.node.zones[zone].pageblock_order;
        let whole = |x: u64, unit: u64| x.is_multiple_of(unit);
        if pages == 0
            || !whole(area.base, PAGE_SIZE)
            || !whole(area.size, PAGE_SIZE)
            || !whole(base, nr)
            || !whole(pages, nr)
        {
            return Err(CmaActivateError::Misaligned);
        }
        if !self.node.zones[zone].contains_pfn(pfn_down(end) - 1) {
            return Err(CmaActivateError::NotInOneZone);
        }
        for pfn in base..base + pages {
            let page = self
                .node
                .pfn_to_page(pfn)
                .ok_or(CmaActivateError::NotInOneZone)?;
            if !page.is_reserved() || page.is_buddy() || page.is_pcp() {
                return Err(CmaActivateError::NotReserved(pfn));
            }
        }
        Ok(zone)
    }

    /// `init_cma_reserved_pageblock` for every pageblock of an area that passed
    /// [`PageAllocator::check_cma_area`].
    fn init_cma_reserved_area(&mut self, zi: usize, area: &CmaArea) {
        let base = pfn_down(area.base);
        let pages = area.size / PAGE_SIZE;
        let pb_order = self.node.zones[zi].pageblock_order;
        let nr = 1u64 << pb_order;
        let mut c = self.zones[zi].counters;
        let mut freed = 0;
        if let Some(mut v) = zone_view(&mut self.node, zi) {
            let mut pfn = base;
            while pfn < base + pages {
                v.set_pageblock_mt(pfn, CMA);
                for p in pfn..pfn + nr {
                    let page = v.page_mut(p);
                    page.clear_reserved();
                    page.set_refcount(0);
                }
                let max = v.nr_orders - 1;
                let order = pb_order.min(max);
                let mut p = pfn;
                while p < pfn + nr {
                    v.free_one_page(p, order, CMA, false, &mut c);
                    p += 1 << order;
                }
                freed += nr;
                pfn += nr;
            }
        }
        self.zones[zi].counters = c;
        self.zones[zi].cma_pages += freed;
        self.node.zones[zi].managed_pages += freed;
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
            nr_cpus: NCPU as u32,
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
        }
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

    /// Give the node and the storage back.
    pub fn into_parts(self) -> (PgData<S>, S) {
        (self.node, self.storage)
    }

    /// `nr_free_pages()`: pages on the buddy lists of all zones (per-CPU lists not
    /// included, as in Linux).
    pub fn nr_free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.counters.free).sum()
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
        self.zones[zone as usize].counters.free
    }

    /// Pages of a zone handed out and not freed.
    pub fn allocated(&self, zone: ZoneType) -> u64 {
        self.zones[zone as usize].allocated
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
        let free = self.zones[z].counters.free as i64 - self.unusable_free(z, order, flags);
        let mut min = mark as i64;
        if flags & ALLOC_MIN_RESERVE != 0 {
            min -= min / 2;
            if flags & ALLOC_NON_BLOCK != 0 {
                min -= min / 4;
            }
        }
        if free <= min + self.zones[z].lowmem_reserve[highest as usize] as i64 {
            return false;
        }
        if order == 0 {
            return true;
        }
        let zone = &self.node.zones[z];
        for area in &zone.free_area[order as usize..zone.nr_orders] {
            if area.nr_free == 0 {
                continue;
            }
            if area.free_list[..MIGRATE_PCPTYPES].iter().any(|&h| h != NIL) {
                return true;
            }
            if flags & ALLOC_CMA != 0 && area.free_list[CMA] != NIL {
                return true;
            }
            if flags & ALLOC_HIGHATOMIC != 0 && area.free_list[HIGHATOMIC] != NIL {
                return true;
            }
        }
        false
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
    #[inline]
    pub fn alloc_pages(
        &mut self,
        cpu: usize,
        gfp: Gfp,
        order: u32,
    ) -> Result<PageBlock, AllocError> {
        if order == 0 && gfp.0 & !Gfp::FAST_PATH_OK == 0 {
            if let Some(block) = self.alloc_pcp_fast(cpu, gfp) {
                return Ok(block);
            }
        }
        self.alloc_pages_slow(cpu, gfp, order)
    }

    /// The order-0 fast path: the first zone of the zonelist that has pages, above its
    /// low watermark (`zone_watermark_fast`'s order-0 test), with a page on this CPU's
    /// list: pop the head, O(1). Anything else (a zone to skip, a list to refill, a
    /// flag that changes the rules) returns `None` before changing anything, and the
    /// general path decides; when this path succeeds, it took the page the general
    /// path would have taken.
    #[inline]
    fn alloc_pcp_fast(&mut self, cpu: usize, gfp: Gfp) -> Option<PageBlock> {
        let highest = gfp.zone() as usize;
        let mt = gfp.migratetype() as usize;
        let z = (0..=highest)
            .rev()
            .find(|&z| self.node.zones[z].managed_pages != 0)?;
        let zs = &self.zones[z];
        // zone_watermark_fast, order 0, ALLOC_WMARK_LOW (ALLOC_CMA for MOVABLE).
        let mut unusable = zs.nr_reserved_highatomic;
        if mt != MOVABLE {
            unusable += zs.counters.free_cma;
        }
        let free = zs.counters.free;
        let usable = free - free.min(unusable);
        if usable <= zs.wmark.low + zs.boost + zs.lowmem_reserve[highest] {
            return None;
        }
        let pcp = self.pcp.get_mut(cpu)?.get_mut(z)?;
        let i = pcp.lists[mt];
        if i == NIL {
            return None;
        }
        let map = self.node.mem_map.as_deref_mut()?;
        if i as usize >= map.len() {
            return None;
        }
        pcp.free_factor >>= 1;
        list_del(map, &mut pcp.lists[mt], i);
        pcp.count -= 1;
        let page = &mut map[i as usize];
        page.clear_pcp();
        page.set_refcount(1);
        page.set_order(0);
        page.set_list_mt(0);
        self.zones[z].allocated += 1;
        Some(PageBlock {
            pfn: self.node.mem_map_start_pfn + u64::from(i),
            order: 0,
            zone: ZoneType::from_index(z),
        })
    }

    /// The general allocation path (every order, every flag, refills, fallbacks).
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
        self.zones[z].allocated += 1 << order;
        if let Some(p) = self.node.pfn_to_page_mut(pfn) {
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
            if let Some(pfn) = self.rmqueue(cpu, z, order, mt, flags) {
                return Some((z, pfn));
            }
        }
        None
    }

    /// `rmqueue`: order 0 through the per-CPU lists, larger orders from the buddy.
    #[inline]
    fn rmqueue(&mut self, cpu: usize, z: usize, order: u32, mt: usize, flags: u32) -> Option<Pfn> {
        let PageAllocator {
            node, zones, pcp, ..
        } = self;
        let c = &mut zones[z].counters;
        let mut v = zone_view(node, z)?;
        if order == 0 && (flags & ALLOC_CMA != 0 || mt != MOVABLE) {
            let pcp = &mut pcp[cpu][z];
            pcp.free_factor >>= 1;
            if pcp.lists[mt] == NIL {
                // rmqueue_bulk
                for _ in 0..pcp.batch {
                    let Some((pfn, taken)) = rmqueue_one(&mut v, 0, mt, flags, c) else {
                        break;
                    };
                    let i = v.idx(pfn);
                    let page = &mut v.map[i as usize];
                    page.set_pcp();
                    page.set_list_mt(taken);
                    list_add_tail(v.map, &mut pcp.lists[mt], i);
                    pcp.count += 1;
                }
            }
            let i = pcp.lists[mt];
            if i == NIL {
                return None;
            }
            list_del(v.map, &mut pcp.lists[mt], i);
            pcp.count -= 1;
            v.map[i as usize].clear_pcp();
            return Some(v.map_start + i as u64);
        }
        if flags & ALLOC_HIGHATOMIC != 0 && order > 0 {
            if let Some(p) = v.rmqueue_smallest(order, HIGHATOMIC, c) {
                return Some(p);
            }
        }
        rmqueue_one(&mut v, order, mt, flags, c).map(|(p, _)| p)
    }

    /// `free_pages(block)`: give an allocated block back (order 0 through the per-CPU
    /// list of `cpu`).
    #[inline]
    pub fn free_pages(&mut self, cpu: usize, block: PageBlock) -> Result<(), FreeError> {
        self.free_pages_raw(cpu, block.pfn, block.order)
    }

    /// The order-0 fast path of `free_unref_page`: an allocated, unreserved head page
    /// with refcount 1 and order 0, in a pageblock that is not isolated, whose per-CPU
    /// list stays below `high`: push it on the head of the list, O(1). Anything else
    /// returns `false` before changing anything, and the checked path runs.
    #[inline]
    fn free_pcp_fast(&mut self, cpu: usize, pfn: Pfn) -> bool {
        use crate::page::flags::{ORDER_MASK, ORDER_SHIFT, PG_BUDDY, PG_PCP, PG_RESERVED};
        const NOT_PLAIN: u32 = PG_RESERVED | PG_BUDDY | PG_PCP | (ORDER_MASK << ORDER_SHIFT);
        let Some(pcps) = self.pcp.get_mut(cpu) else {
            return false;
        };
        let Some(map) = self.node.mem_map.as_deref_mut() else {
            return false;
        };
        let Some(i) = pfn
            .checked_sub(self.node.mem_map_start_pfn)
            .filter(|&i| i < map.len() as u64)
        else {
            return false;
        };
        let page = map[i as usize];
        if page.raw_flags() & NOT_PLAIN != 0 || page.refcount() != 1 {
            return false;
        }
        let z = page.zone_type() as usize;
        let zone = &self.node.zones[z];
        if !zone.contains_pfn(pfn) || zone.nr_orders == 0 {
            return false;
        }
        let Some(usemap) = zone.usemap.as_deref() else {
            return false;
        };
        let pb = zone.pageblock_order;
        let bit = ((pfn - crate::addr::align_down(zone.zone_start_pfn, 1 << pb)) >> pb) * 4;
        let Some(&byte) = usemap.get((bit / 8) as usize) else {
            return false;
        };
        let mut pmt = ((byte >> (bit % 8)) & 7) as usize;
        if pmt >= crate::mmtypes::MIGRATE_TYPES {
            pmt = MOVABLE;
        }
        if pmt == ISOLATE {
            return false;
        }
        let pcp = &mut pcps[z];
        if pcp.count + 1 >= pcp.high {
            return false;
        }
        let list = if pmt >= MIGRATE_PCPTYPES {
            MOVABLE
        } else {
            pmt
        };
        let page = &mut map[i as usize];
        page.set_refcount(0);
        page.set_pcp();
        page.set_list_mt(pmt);
        list_add(map, &mut pcp.lists[list], i as u32);
        pcp.count += 1;
        self.zones[z].allocated -= 1;
        true
    }

    /// `__free_pages(pfn_to_page(pfn), order)` without the ownership guarantee: the
    /// page is checked first (`free_page_is_bad`): outside the node, reserved, already
    /// free, a tail page or the wrong order is refused with a [`FreeError`] and
    /// nothing changes.
    #[inline]
    pub fn free_pages_raw(&mut self, cpu: usize, pfn: Pfn, order: u32) -> Result<(), FreeError> {
        if order == 0 && self.free_pcp_fast(cpu, pfn) {
            return Ok(());
        }
        self.free_pages_checked(cpu, pfn, order)
    }

    /// The general free path, with every `free_page_is_bad` check.
    fn free_pages_checked(&mut self, cpu: usize, pfn: Pfn, order: u32) -> Result<(), FreeError> {
        if cpu >= NCPU {
            return Err(FreeError::BadCpu(cpu));
        }
        let idx = self
            .node
            .pfn_to_index(pfn)
            .ok_or(FreeError::OutsideNode(pfn))?;
        let Some(map) = self.node.mem_map.as_deref_mut() else {
            return Err(FreeError::OutsideNode(pfn));
        };
        let page = map[idx];
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
        let page = &mut map[idx];
        page.set_refcount(0);
        page.set_order(0);
        self.zones[z].allocated -= 1 << order;

        let PageAllocator {
            node, zones, pcp, ..
        } = self;
        let c = &mut zones[z].counters;
        let Some(mut v) = zone_view(node, z) else {
            return Err(FreeError::OutsideNode(pfn));
        };
        let pmt = v.pageblock_mt(pfn);
        if order > 0 || pmt == ISOLATE {
            v.free_one_page(pfn, order, pmt, false, c);
            return Ok(());
        }
        // free_unref_page
        let list = if pmt >= MIGRATE_PCPTYPES {
            MOVABLE
        } else {
            pmt
        };
        let pcp = &mut pcp[cpu][z];
        let i = v.idx(pfn);
        let page = &mut v.map[i as usize];
        page.set_pcp();
        page.set_list_mt(pmt);
        list_add(v.map, &mut pcp.lists[list], i);
        pcp.count += 1;
        if pcp.count >= pcp.high {
            let n = nr_pcp_free(pcp);
            free_pcppages_bulk(&mut v, pcp, n, list, c);
        }
        Ok(())
    }

    /// True when `pfn` lies inside a free buddy block (not at its head).
    fn inside_free_block(&self, z: usize, pfn: Pfn) -> bool {
        let zone = &self.node.zones[z];
        for o in 1..zone.nr_orders as u32 {
            let head = pfn & !((1u64 << o) - 1);
            if !zone.contains_pfn(head) {
                break;
            }
            if let Some(p) = self.node.pfn_to_page(head) {
                if p.is_buddy() && p.buddy_order() >= o {
                    return true;
                }
            }
        }
        false
    }

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

    /// The invariant checker (tests and the in-guest self-test). Per zone:
    /// free + per-CPU + allocated = managed and managed + reserved = present (holes
    /// are reserved too: reserved pages in the span = spanned - managed); the lists
    /// are well linked, every free block is aligned, inside its zone, marked with its
    /// order and list, `nr_free` matches the lists, free blocks do not overlap, and
    /// the counters match.
    pub fn check_invariants(&self) -> Result<InvariantReport, InvariantError> {
        let mut report = InvariantReport::default();
        let Some(map) = self.node.mem_map.as_deref() else {
            return Ok(report);
        };
        let base = self.node.mem_map_start_pfn;
        for (z, zone) in self.node.zones.iter().enumerate() {
            if zone.spanned_pages == 0 {
                continue;
            }
            let zt = zone.zone_type;
            let err = |pfn, what| InvariantError {
                zone: zt,
                pfn,
                what,
            };
            let limit = zone.spanned_pages + 1;
            // 1. the free lists
            let mut list_free = 0u64;
            let mut list_cma = 0u64;
            let mut list_blocks = 0u64;
            for (o, area) in zone.free_area[..zone.nr_orders].iter().enumerate() {
                let mut n = 0u64;
                for (mt, &head) in area.free_list.iter().enumerate() {
                    let pfns = walk(map, head, limit)
                        .map_err(|w| err(base + w as u64, "broken free list link"))?;
                    let mut i = head;
                    for _ in 0..pfns {
                        let pfn = base + i as u64;
                        let p = &map[i as usize];
                        if !zone.contains_pfn(pfn) || pfn + (1 << o) > zone.zone_end_pfn() {
                            return Err(err(pfn, "free block outside its zone"));
                        }
                        if pfn & ((1 << o) - 1) != 0 {
                            return Err(err(pfn, "free block not aligned to its order"));
                        }
                        if !p.is_buddy() || p.buddy_order() as usize != o || p.list_mt() != mt {
                            return Err(err(pfn, "free block head not marked PG_buddy/order/list"));
                        }
                        i = p.next();
                    }
                    n += pfns;
                    if mt == CMA {
                        list_cma += pfns << o;
                    }
                }
                if n != area.nr_free {
                    return Err(err(zone.zone_start_pfn, "nr_free does not match the lists"));
                }
                list_free += n << o;
                list_blocks += n;
            }
            // 2. the per-CPU lists
            let mut pcp_pages = 0u64;
            for cpu in 0..NCPU {
                let pcp = &self.pcp[cpu][z];
                let mut n = 0;
                for &head in &pcp.lists {
                    let k = walk(map, head, limit)
                        .map_err(|w| err(base + w as u64, "broken pcp list link"))?;
                    let mut i = head;
                    for _ in 0..k {
                        let pfn = base + i as u64;
                        if !zone.contains_pfn(pfn) || !map[i as usize].is_pcp() {
                            return Err(err(pfn, "pcp page not marked or outside zone"));
                        }
                        i = map[i as usize].next();
                    }
                    n += k;
                }
                if n != pcp.count as u64 {
                    return Err(err(
                        zone.zone_start_pfn,
                        "pcp count does not match its lists",
                    ));
                }
                pcp_pages += n;
            }
            // 3. a scan of the span: blocks do not overlap, states add up.
            let (mut free, mut blocks, mut pcp_seen, mut alloc, mut reserved) =
                (0u64, 0u64, 0u64, 0u64, 0u64);
            let mut pfn = zone.zone_start_pfn;
            while pfn < zone.zone_end_pfn() {
                let p = &map[(pfn - base) as usize];
                if p.is_reserved() {
                    reserved += 1;
                    pfn += 1;
                } else if p.is_buddy() {
                    let n = 1u64 << p.buddy_order();
                    for q in pfn + 1..(pfn + n).min(zone.zone_end_pfn()) {
                        let t = &map[(q - base) as usize];
                        if t.is_buddy() || t.is_pcp() || t.is_reserved() || t.refcount() != 0 {
                            return Err(err(q, "page inside a free block is in use or overlaps"));
                        }
                    }
                    free += n;
                    blocks += 1;
                    pfn += n;
                } else if p.is_pcp() {
                    pcp_seen += 1;
                    pfn += 1;
                } else if p.refcount() == 1 {
                    let n = 1u64 << p.buddy_order();
                    for q in pfn + 1..(pfn + n).min(zone.zone_end_pfn()) {
                        let t = &map[(q - base) as usize];
                        if t.is_buddy() || t.is_pcp() || t.is_reserved() || t.refcount() != 0 {
                            return Err(err(q, "allocated block overlaps another state"));
                        }
                    }
                    alloc += n;
                    pfn += n;
                } else {
                    return Err(err(
                        pfn,
                        "page is neither reserved, free, per-CPU nor allocated",
                    ));
                }
            }
            let zs = &self.zones[z];
            if blocks != list_blocks || free != list_free {
                return Err(err(
                    zone.zone_start_pfn,
                    "free blocks in mem_map differ from the lists",
                ));
            }
            if pcp_seen != pcp_pages {
                return Err(err(
                    zone.zone_start_pfn,
                    "pcp pages in mem_map differ from the lists",
                ));
            }
            if zs.counters.free != free || zs.counters.free_cma != list_cma {
                return Err(err(
                    zone.zone_start_pfn,
                    "NR_FREE_PAGES does not match the lists",
                ));
            }
            if zs.allocated != alloc {
                return Err(err(
                    zone.zone_start_pfn,
                    "allocated pages do not match the counter",
                ));
            }
            if free + pcp_pages + alloc != zone.managed_pages
                || reserved != zone.spanned_pages - zone.managed_pages
            {
                return Err(err(
                    zone.zone_start_pfn,
                    "free + pcp + allocated + reserved != present",
                ));
            }
            report.free += free;
            report.pcp += pcp_pages;
            report.allocated += alloc;
            // Linux 4.x's arm_adjust_dma_zone charges every lowmem hole to ZONE_NORMAL,
            // so with holes below the DMA limit Normal's present_pages undercounts and
            // managed can exceed it: no reserved pages then, not an underflow.
            report.reserved_present += zone.present_pages.saturating_sub(zone.managed_pages);
            report.zones += 1;
        }
        Ok(report)
    }
}

/// Length of a list (bounded by `limit`), or the index where a link is inconsistent.
fn walk(map: &[Page], head: u32, limit: u64) -> Result<u64, u32> {
    if head == NIL {
        return Ok(0);
    }
    let mut n = 0u64;
    let mut prev = map[head as usize].prev();
    let tail = prev;
    let mut i = head;
    while i != NIL {
        let p = map.get(i as usize).ok_or(i)?;
        if n > 0 && p.prev() != prev {
            return Err(i);
        }
        prev = i;
        i = p.next();
        n += 1;
        if n > limit {
            return Err(head);
        }
    }
    if prev != tail {
        return Err(head);
    }
    Ok(n)
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

/// `nr_pcp_free`.
fn nr_pcp_free(pcp: &mut PerCpuPages) -> u32 {
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
fn free_pcppages_bulk(
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

/// What [`PageAllocator::check_invariants`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InvariantReport {
    /// Zones checked.
    pub zones: usize,
    /// Pages on buddy lists.
    pub free: u64,
    /// Pages on per-CPU lists.
    pub pcp: u64,
    /// Pages allocated.
    pub allocated: u64,
    /// Present pages never given to the allocator.
    pub reserved_present: u64,
}

/// A broken invariant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvariantError {
    /// The zone.
    pub zone: ZoneType,
    /// The pfn where it was found.
    pub pfn: Pfn,
    /// What is wrong.
    pub what: &'static str,
}

impl core::fmt::Display for InvariantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "zone {} pfn {:#x}: {}",
            self.zone.name(),
            self.pfn,
            self.what
        )
    }
}

/// A [`PageAllocator`] behind a `spin::Mutex` (the zone lock), for several CPUs.
pub struct LockedPageAllocator<S: PageStorage, const NCPU: usize = 1>(
    spin::Mutex<PageAllocator<S, NCPU>>,
);

impl<S: PageStorage, const NCPU: usize> LockedPageAllocator<S, NCPU> {
    /// Wrap an allocator.
    pub const fn new(a: PageAllocator<S, NCPU>) -> Self {
        Self(spin::Mutex::new(a))
    }

    /// `alloc_pages` on `cpu`.
    pub fn alloc_pages(&self, cpu: usize, gfp: Gfp, order: u32) -> Result<PageBlock, AllocError> {
        self.0.lock().alloc_pages(cpu, gfp, order)
    }

    /// `free_pages` on `cpu`.
    pub fn free_pages(&self, cpu: usize, block: PageBlock) -> Result<(), FreeError> {
        self.0.lock().free_pages(cpu, block)
    }

    /// Lock for anything else (reports, counters, checks).
    pub fn lock(&self) -> spin::MutexGuard<'_, PageAllocator<S, NCPU>> {
        self.0.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::buddy::{list_add, list_add_tail, list_del, list_tail};
    use super::*;
    use crate::memblock::Memblock;
    use crate::mm_init::free_area_init_node;
    use crate::storage::VecPageStorage;
    use crate::MmConfig;

    #[test]
    fn list_ops_are_o1_and_consistent() {
        let mut map = alloc::vec![Page::ZEROED; 8];
        let mut head = NIL;
        list_add(&mut map, &mut head, 3);
        list_add_tail(&mut map, &mut head, 5);
        list_add(&mut map, &mut head, 1);
        // 1 3 5
        assert_eq!(head, 1);
        assert_eq!(list_tail(&map, head), 5);
        list_del(&mut map, &mut head, 5);
        assert_eq!(list_tail(&map, head), 3);
        list_del(&mut map, &mut head, 1);
        assert_eq!((head, list_tail(&map, head)), (3, 3));
        list_del(&mut map, &mut head, 3);
        assert_eq!(head, NIL);
    }

    /// 16 MiB at 0x60000000, zonekit profile (orders 0..=10), 1 MiB reserved at
    /// 0x60100000.
    fn small() -> PageAllocator<VecPageStorage, 1> {
        let cfg = MmConfig::ZONEKIT;
        let mut mb: Memblock = Memblock::new(u32::MAX as u64);
        mb.add(0x6000_0000, 16 << 20).unwrap();
        mb.reserve(0x6010_0000, 1 << 20).unwrap();
        mb.set_current_limit(0x6100_0000);
        let mut storage = VecPageStorage::default();
        let mut node = free_area_init_node(
            &mut mb,
            &mut storage,
            &cfg,
            0,
            &[4096, 0, 0, 0],
            0x60000,
            &[0; 4],
            0,
        )
        .unwrap();
        let stats = memblock_free_all(&mut node, &mb, 0x61000);
        assert_eq!(stats.lowmem_pages, node.zones[0].managed_pages);
        PageAllocator::new(
            node,
            VecPageStorage::default(),
            AllocConfig::new(0x61000, 0x6000_0000),
        )
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

    #[test]
    fn gfp_zone_and_type() {
        assert_eq!(Gfp::KERNEL.zone(), ZoneType::Normal);
        assert_eq!(Gfp::DMA.zone(), ZoneType::Dma);
        assert_eq!(Gfp::HIGHMEM.zone(), ZoneType::HighMem);
        assert_eq!(Gfp::HIGHUSER_MOVABLE.zone(), ZoneType::Movable);
        assert_eq!(Gfp::MOVABLE.zone(), ZoneType::Normal);
        assert_eq!(Gfp::RECLAIMABLE.migratetype(), MigrateType::Reclaimable);
        assert_eq!(Gfp::HIGHUSER_MOVABLE.migratetype(), MigrateType::Movable);
    }
}
