//! The ARM boot-memory flow, in Linux's order (`setup_arch` → `arm_memblock_init` →
//! `adjust_lowmem_bounds` → `paging_init` → `bootmem_init`).
//!
//! [`boot`] takes what the boot code discovered (a [`MemorySource`], the image, the
//! boot data it placed in RAM) and produces the node with its zones and `mem_map`,
//! printing the same boot-log lines Linux prints, so the two can be diffed. Each step
//! is also public on its own ([`zone_sizes_init`], [`arm_adjust_dma_zone`], ...) so
//! hosts, simulators and tests can run any part of it.

use core::fmt;

use zonekit_core::addr::{pfn_down, pfn_phys, pfn_up, MemRange, Pfn, PhysAddr, PAGE_SIZE};
use zonekit_core::arch::{ArchLimits, MmConfig};
use zonekit_core::cma::{dma_contiguous_reserve, CmaAreas, CmaError, CmaPlacement};
use zonekit_core::cmdline::Cmdline;
use zonekit_core::fmt::LogLines;
use zonekit_core::memblock::{
    Memblock, MemblockError, RegionFlags, INIT_MEMBLOCK_REGIONS, MEMBLOCK_ALLOC_ANYWHERE,
    NUMA_NO_NODE,
};
use zonekit_core::memtest::early_memtest;
use zonekit_core::mmzone::{free_area_init_node, InitError, PgData, ZoneType, MAX_NR_ZONES};
use zonekit_core::page::PAGE_DESCRIPTOR_SIZE;
use zonekit_core::page_alloc::{
    memblock_free_all, AllocConfig, FreeAllStats, MemoryLine, PageAllocator,
};
use zonekit_core::selftest::{page_alloc_selftest, SelfTestError, SelfTestReport};
use zonekit_core::source::{
    for_each_of_kind, validate_range, Region, RegionKind, ReservationRequest, SourceError,
    MAX_RESERVATION_REQUESTS,
};
use zonekit_core::{zk_debug, zk_info, zk_warn, MemorySource, PageStorage};

use crate::hooks::{BootHooks, BootStep};
use crate::limits::{early_vmalloc, find_limits, Arm32, PfnLimits, VmallocAdjust, PMD_SIZE};

/// The memblock used during boot: Linux's 128 regions per table, doubling after
/// `memblock_allow_resize` up to this many.
pub type BootMemblock = Memblock<{ 2 * INIT_MEMBLOCK_REGIONS }>;

/// What the boot code knows when it hands over to the memory flow.
pub struct BootParams<'a> {
    /// RAM banks and reservations.
    pub source: &'a dyn MemorySource,
    /// The kernel command line (ATAGS `ATAG_CMDLINE`, DTB `/chosen/bootargs`; may be
    /// empty).
    pub cmdline: &'a str,
    /// Size of the DMA zone from the start of RAM (`arm_dma_zone_size`, the board's
    /// `machine_desc.dma_zone_size`), or `None` for no ZONE_DMA;
    /// `zonekit.dma_zone=` on the command line overrides it.
    pub dma_zone_size: Option<u64>,
    /// The running image from its first byte to the end of its stack and .bss.
    pub kernel_image: MemRange,
    /// Other things the boot code placed in RAM (the boot stub and ATAGS page, a DTB).
    pub boot_data: &'a [MemRange],
    /// Page-descriptor and order constants.
    pub mm: MmConfig,
}

/// Why the boot flow stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The memory source could not be read.
    Source(SourceError),
    /// A memblock operation failed (full table, no space).
    Memblock(MemblockError),
    /// Node/zone initialisation failed.
    Init(InitError),
    /// No memory is left below the lowmem limit.
    NoLowmem,
    /// The arch reports a base page size other than 4 KiB.
    UnsupportedPageSize(u64),
    /// The self-check found an inconsistency; the text says which.
    SelfCheck(&'static str),
    /// The page allocator self-test failed.
    PageAllocSelfTest(SelfTestError),
    /// `paging_init` failed (a page-table allocation or mapping).
    Paging(crate::mmu::MmuError),
    /// A dynamic reservation (`/reserved-memory` with `size`) found no room.
    Reservation {
        /// Bytes requested.
        size: u64,
        /// Alignment requested.
        align: u64,
    },
    /// A `mem=SIZE@START` whose range cannot exist: START + SIZE (or START rounded up
    /// to a page) overflows the 64-bit address space.
    MemOverflow {
        /// SIZE.
        size: u64,
        /// START (`PHYS_OFFSET` when `@START` was not given).
        start: u64,
    },
    /// Every `mem=` bank was ignored (outside RAM, below `PHYS_OFFSET`, past the top of
    /// the physical address space): no memory is left to boot with.
    MemOutsideRam,
    /// The memory memblock describes does not hold the running kernel image (`mem=`
    /// too small or misplaced, or a memory map that leaves the image out).
    KernelOutsideMemory {
        /// The image, `__image_start..__image_end`.
        image: MemRange,
        /// The memory: start of DRAM to end of DRAM.
        memory: MemRange,
    },
    /// `zone_sizes_init` was given memory banks that overlap (memblock.memory never
    /// does; the holes would be counted twice).
    OverlappingBanks {
        /// One bank.
        first: MemRange,
        /// A bank sharing bytes with it.
        second: MemRange,
    },
    /// `early_memtest` could not reach the memory it tests, or could not reserve a bad
    /// range.
    Memtest(zonekit_core::memtest::MemtestError),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Source(e) => write!(f, "memory source: {e}"),
            BootError::Memblock(e) => write!(f, "memblock: {e}"),
            BootError::Init(e) => write!(f, "node init: {e}"),
            BootError::NoLowmem => write!(f, "no memory below the lowmem limit"),
            BootError::UnsupportedPageSize(s) => write!(f, "unsupported page size {s}"),
            BootError::SelfCheck(why) => write!(f, "self-check failed: {why}"),
            BootError::PageAllocSelfTest(e) => write!(f, "page allocator self-test: {e}"),
            BootError::Paging(e) => write!(f, "paging_init: {e}"),
            BootError::Reservation { size, align } => write!(
                f,
                "no room for a {size:#x}-byte reserved-memory region (align {align:#x})"
            ),
            BootError::MemOverflow { size, start } => write!(
                f,
                "mem={size:#x}@{start:#x}: START + SIZE overflows the 64-bit physical address space"
            ),
            BootError::MemOutsideRam => write!(
                f,
                "mem=: no memory left, every mem= bank was ignored (see the warnings above)"
            ),
            BootError::KernelOutsideMemory { image, memory } => write!(
                f,
                "memory {memory} does not hold the kernel image {image}: too little memory \
                 for the kernel (mem= too small or misplaced?)"
            ),
            BootError::OverlappingBanks { first, second } => {
                write!(f, "memory banks {first} and {second} overlap")
            }
            BootError::Memtest(e) => write!(f, "early_memtest: {e}"),
        }
    }
}

impl From<SourceError> for BootError {
    /// A memblock error met while adding the source's regions stays a memblock error.
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Memblock(e) => BootError::Memblock(e),
            e => BootError::Source(e),
        }
    }
}

impl From<MemblockError> for BootError {
    fn from(e: MemblockError) -> Self {
        BootError::Memblock(e)
    }
}

impl From<crate::mmu::MmuError> for BootError {
    fn from(e: crate::mmu::MmuError) -> Self {
        BootError::Paging(e)
    }
}

impl From<InitError> for BootError {
    fn from(e: InitError) -> Self {
        BootError::Init(e)
    }
}

mod memory;
mod reserve;
mod zones;

pub use memory::{add_memory, arm_add_memory, BankOverflow};
pub use reserve::{adjust_lowmem_bounds, arm_memblock_init, MemblockInit};
pub use zones::{arm_adjust_dma_zone, bootmem_init, zone_sizes_init, ZoneSizes};
#[allow(unused_imports)] // the crate-private helpers, for the submodules and tests
use {memory::*, reserve::*, zones::*};

/// The result of `bootmem_init`: memblock, the node with its zones and `mem_map`, and
/// the limits that shaped them.
pub struct BootedMemory<S: PageStorage> {
    /// memblock as left by the boot flow (mem_map and usemaps reserved).
    pub memblock: BootMemblock,
    /// Node 0.
    pub node: PgData<S>,
    /// The arch description used (with the final vmalloc size).
    pub arch: Arm32,
    /// `arm_lowmem_limit`.
    pub lowmem_limit: PhysAddr,
    /// `min_low_pfn`, `max_low_pfn`, `max_pfn`.
    pub limits: PfnLimits,
    /// The zone sizes and holes given to `free_area_init_node`.
    pub zone_sizes: ZoneSizes,
    /// The parsed command line.
    pub cmdline: Cmdline,
    /// Whether the board declared a DMA zone (so ZONE_DMA is configured).
    pub has_dma_zone: bool,
    /// `PAGE_OFFSET` as far as `page_address` is concerned: the virtual address of
    /// `arch.phys_offset`. Equal to it (identity) unless `paging_init` switched to the
    /// linear map.
    pub page_offset: u64,
    /// The CMA areas `arm_memblock_init` set aside (still reserved in memblock).
    pub cma: CmaAreas,
    /// Where `arm_memblock_init` placed the source's dynamic reservations.
    pub dynamic_reservations: heapless::Vec<MemRange, MAX_RESERVATION_REQUESTS>,
}

fn mem_line(start: PhysAddr, end: PhysAddr) -> MemRange {
    MemRange::new(start, end - start)
}

/// What `paging_init` gets: memblock after `adjust_lowmem_bounds` (its current limit
/// at `arm_lowmem_limit`), the page storage, and the limits it must map.
pub struct PagingContext<'a, S: PageStorage> {
    /// memblock, for `early_alloc` of page tables.
    pub memblock: &'a mut BootMemblock,
    /// The storage `bootmem_init` will use next (for zeroing, and to switch to the
    /// linear map once the MMU is on).
    pub storage: &'a mut S,
    /// The arch description (`phys_offset` = PHYS_OFFSET).
    pub arch: &'a Arm32,
    /// `arm_lowmem_limit`: lowmem is `[phys_offset, lowmem_limit)`.
    pub lowmem_limit: PhysAddr,
    /// The running image.
    pub kernel_image: MemRange,
}

/// Run the boot-memory part of `setup_arch`, in Linux's order: memblock setup from the
/// source and `mem=`, `adjust_lowmem_bounds`, `arm_memblock_init`,
/// `adjust_lowmem_bounds`, the hooks' `paging_init` (the default builds no tables:
/// identity addressing) and `bootmem_init`, printing the Linux-format boot log on the
/// way. The one entry of this layer; [`crate::flow`] runs it with the memory source
/// chosen and `mem_init` after it.
pub fn boot<S: PageStorage>(
    params: &BootParams<'_>,
    storage: &mut S,
    hooks: &mut dyn BootHooks<S>,
) -> Result<BootedMemory<S>, BootError> {
    let cmdline = Cmdline::parse(params.cmdline);
    for e in &cmdline.errors {
        zk_warn!("ignoring malformed parameter {}", e);
    }
    if cmdline.errors_lost > 0 {
        zk_warn!(
            "ignoring {} more malformed parameters (not listed)",
            cmdline.errors_lost
        );
    }
    let mut arch = Arm32::new(params.mm, 0);
    if arch.page_size() != PAGE_SIZE {
        return Err(BootError::UnsupportedPageSize(arch.page_size()));
    }
    if let Some(req) = cmdline.vmalloc_size {
        let (size, adjust) = early_vmalloc(req);
        match adjust {
            VmallocAdjust::AsRequested => {}
            VmallocAdjust::RaisedTo(s) => {
                zk_warn!("vmalloc area is too small, limiting to {}MiB", s >> 20)
            }
            VmallocAdjust::LoweredTo(s) => {
                zk_warn!("vmalloc area is too big, limiting to {}MiB", s >> 20)
            }
        }
        arch.vmalloc_size = size;
    }

    let mut memblock = BootMemblock::new(params.mm.phys_addr_max);
    memblock.set_debug(cmdline.memblock_debug);
    add_memory(&mut memblock, params.source, &cmdline)?;
    check_kernel_in_memory(&memblock, params.kernel_image)?;
    arch.phys_offset = memblock.start_of_dram();
    zk_info!("zonekit: page descriptor {} bytes", PAGE_DESCRIPTOR_SIZE);

    // setup_arch: adjust_lowmem_bounds, arm_memblock_init, adjust_lowmem_bounds.
    let highmem_start = adjust_lowmem_bounds(&mut memblock, &arch)?;
    let reserved = arm_memblock_init(&mut memblock, params, &cmdline, highmem_start)?;
    let lowmem_limit = adjust_lowmem_bounds(&mut memblock, &arch)?;
    zk_debug!("zonekit: arm_lowmem_limit {:#x}", lowmem_limit);
    // paging_init: once lowmem is mapped, allocations may use all of it.
    memblock.set_current_limit(lowmem_limit);
    // Everything bootmem_init needs from the source is read before paging_init: the
    // source (a DTB, ATAGS) may not be mapped afterwards.
    let dma_zone_size = cmdline.dma_zone_size.or(params.dma_zone_size);
    let page_offset = hooks.paging_init(PagingContext {
        memblock: &mut memblock,
        storage,
        arch: &arch,
        lowmem_limit,
        kernel_image: params.kernel_image,
    })?;

    let mut booted = bootmem_init(
        memblock,
        storage,
        arch,
        lowmem_limit,
        dma_zone_size,
        cmdline,
        hooks,
    )?;
    if let Some(po) = page_offset {
        booted.page_offset = po;
    }
    booted.cma = reserved.cma;
    booted.dynamic_reservations = reserved.dynamic;
    Ok(booted)
}

impl<S: PageStorage> BootedMemory<S> {
    /// The in-guest self-check: every page of every zone reserved and linked to its zone
    /// and node, the mem_map inside RAM and reserved in memblock, totals consistent
    /// with the limits. Prints what it checked.
    pub fn self_check(&self) -> Result<(), BootError> {
        let check = self
            .node
            .check_boot_state(&self.memblock)
            .map_err(|_| BootError::SelfCheck("page descriptors or mem_map inconsistent"))?;
        let spanned: u64 = self.zone_sizes.zone_size.iter().sum();
        if spanned != self.limits.max_high - self.limits.min
            || self.node.node_spanned_pages != spanned
        {
            return Err(BootError::SelfCheck("zones do not span the node"));
        }
        let holes: u64 = self.zone_sizes.zhole_size.iter().sum();
        if self.node.node_present_pages != spanned - holes {
            return Err(BootError::SelfCheck(
                "present pages disagree with the holes",
            ));
        }
        let ranges = self.zone_sizes.zone_ranges(self.limits.min);
        let highmem = ranges[ZoneType::HighMem as usize];
        if highmem.1 > highmem.0 && highmem.0 != self.limits.max_low {
            return Err(BootError::SelfCheck(
                "highmem does not start at max_low_pfn",
            ));
        }
        zk_info!(
            "zonekit: self-check: {} pages reserved and linked in {} zones, mem_map reserved at {:#x}",
            check.pages_checked,
            check.zones_checked,
            self.node.mem_map_phys
        );
        Ok(())
    }
}

/// Memory after `mem_init`: the page allocator owns every free page.
pub struct RunningMemory<S: PageStorage, const NCPU: usize> {
    /// The buddy allocator with the node, its zones and mem_map.
    pub allocator: PageAllocator<S, NCPU>,
    /// memblock as retired (kept for reports and checks).
    pub memblock: BootMemblock,
    /// What `memblock_free_all` released.
    pub free_all: FreeAllStats,
    /// The `Memory:` line.
    pub memory_line: MemoryLine,
    /// `min_low_pfn`, `max_low_pfn`, `max_pfn`.
    pub limits: PfnLimits,
    /// The parsed command line.
    pub cmdline: Cmdline,
}

impl<S: PageStorage> BootedMemory<S> {
    /// Linux's `mem_init`: `memblock_free_all` hands every free page to the buddy
    /// allocator, the `Memory:` line is printed, and watermarks, lowmem reserves and
    /// per-CPU lists are set up (`init_per_zone_wmark_min`). `storage` is what the
    /// allocator uses for `__GFP_ZERO`.
    pub fn mem_init<const NCPU: usize>(
        self,
        storage: S,
        hooks: &mut dyn BootHooks<S>,
    ) -> RunningMemory<S, NCPU> {
        let BootedMemory {
            memblock,
            mut node,
            limits,
            cmdline,
            arch,
            page_offset,
            cma,
            ..
        } = self;
        hooks.step(BootStep::FreeAllStart);
        let free_all = memblock_free_all(&mut node, &memblock, limits.max_low);
        hooks.step(BootStep::FreeAllEnd);
        let memory_line = MemoryLine::new(&node, &free_all, cma.total_bytes());
        zk_info!("{}", memory_line);
        // page_address: the linear map when paging_init built one, else the identity.
        let mut cfg = AllocConfig::new(limits.max_low, arch.phys_offset);
        cfg.page_offset = page_offset;
        // cma_init_reserved_areas: the areas become MIGRATE_CMA pageblocks.
        cfg.cma = cma;
        // Only the boot CPU runs yet; `set_online_cpus` follows the secondaries.
        cfg.online_cpus = Some(1);
        let allocator = PageAllocator::new(node, storage, cfg);
        zk_info!(
            "zonekit: page allocator ready: {} pages free, min_free_kbytes {}",
            allocator.nr_free_pages(),
            allocator.min_free_kbytes()
        );
        RunningMemory {
            allocator,
            memblock,
            free_all,
            memory_line,
            limits,
            cmdline,
        }
    }
}

impl<S: PageStorage, const NCPU: usize> RunningMemory<S, NCPU> {
    /// Print `/proc/zoneinfo`, `/proc/buddyinfo` and `/proc/pagetypeinfo` through the log
    /// (what `zonekit.report` on the command line asks for).
    pub fn print_reports(&self) {
        let mut out = LogLines::new();
        // Writing to the log cannot fail.
        let _ = zonekit_core::report::zoneinfo(&self.allocator, &mut out);
        let _ = zonekit_core::report::buddyinfo(&self.allocator, &mut out);
        let _ = zonekit_core::report::pagetypeinfo(&self.allocator, &mut out);
    }

    /// The page allocator self-test (see [`zonekit_core::selftest`]), then a check that
    /// the free pages equal what memblock's free ranges say, counted independently.
    pub fn self_test(&mut self, seed: u64, random_ops: u64) -> Result<SelfTestReport, BootError> {
        // CMA areas are reserved in memblock but were handed to the buddy as CMA.
        let cma: u64 = ZoneType::ALL
            .iter()
            .map(|&z| self.allocator.zone_state(z).cma_pages)
            .sum();
        let expected = count_free_pages(&self.memblock) + cma;
        if expected != self.allocator.nr_free_pages() + self.allocator.nr_pcp_pages() {
            return Err(BootError::SelfCheck(
                "free pages differ from memblock's free ranges",
            ));
        }
        let report = page_alloc_selftest(&mut self.allocator, 0, seed, random_ops)
            .map_err(BootError::PageAllocSelfTest)?;
        zk_info!(
            "zonekit: page allocator self-test: {} pages one by one, {} mixed blocks, {} random ops, {} invariant checks",
            report.order0_pages,
            report.mixed_blocks,
            report.random_ops,
            report.invariant_checks
        );
        Ok(report)
    }
}

/// Whole pages in memblock.memory outside memblock.reserved (NOMAP excluded), counted
/// straight from the tables: what `memblock_free_all` must release.
pub fn count_free_pages(mb: &BootMemblock) -> u64 {
    mb.free_ranges(NUMA_NO_NODE, RegionFlags::NONE)
        .map(|(start, end, _)| pfn_down(end).saturating_sub(pfn_up(start)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(min: Pfn, max_low: Pfn, max_high: Pfn) -> PfnLimits {
        PfnLimits {
            min,
            max_low,
            max_high,
        }
    }

    #[test]
    fn seed_zone_sizes() {
        let l = limits(0x80000, 0xa0000, 0xa0000);
        let s = zone_sizes_init(&l, &[MemRange::new(0x8000_0000, 0x2000_0000)], None).unwrap();
        assert_eq!(s.zone_size, [0, 0x20000, 0, 0]);
        assert_eq!(s.zhole_size, [0; 4]);
    }

    #[test]
    fn holes_between_two_banks() {
        // 256 MiB + gap of 128 MiB + 128 MiB, all below the lowmem limit.
        let banks = [
            MemRange::new(0x6000_0000, 0x1000_0000),
            MemRange::new(0x7800_0000, 0x0800_0000),
        ];
        let l = limits(0x60000, 0x80000, 0x80000);
        let s = zone_sizes_init(&l, &banks, None).unwrap();
        assert_eq!(s.zone_size[1], 0x20000);
        assert_eq!(s.zhole_size[1], 0x8000);
    }

    #[test]
    fn highmem_split_at_768m() {
        let l = limits(0x60000, 0x90000, 0xa0000);
        let s = zone_sizes_init(&l, &[MemRange::new(0x6000_0000, 0x4000_0000)], None).unwrap();
        assert_eq!(s.zone_size, [0, 0x30000, 0x10000, 0]);
        assert_eq!(s.zhole_size, [0; 4]);
        let r = s.zone_ranges(0x60000);
        assert_eq!(r[2], (0x90000, 0xa0000));
    }

    #[test]
    fn dma_zone_split_inherits_holes() {
        let banks = [
            MemRange::new(0x6000_0000, 0x1000_0000),
            MemRange::new(0x7800_0000, 0x0800_0000),
        ];
        let l = limits(0x60000, 0x80000, 0x80000);
        let s = zone_sizes_init(&l, &banks, Some(64 << 20)).unwrap();
        assert_eq!(s.zone_size[0], 0x4000);
        assert_eq!(s.zone_size[1], 0x20000 - 0x4000);
        assert_eq!(s.zhole_size[0], 0);
        assert_eq!(s.zhole_size[1], 0x8000);
    }

    #[test]
    fn dma_zone_larger_than_lowmem_keeps_everything_dma() {
        let l = limits(0x60000, 0x80000, 0x80000);
        let s = zone_sizes_init(
            &l,
            &[MemRange::new(0x6000_0000, 0x2000_0000)],
            Some(1 << 32),
        )
        .unwrap();
        assert_eq!(s.zone_size, [0x20000, 0, 0, 0]);
    }

    #[test]
    fn zone_sizes_init_overlapping_banks_is_an_error() {
        let l = limits(0x60000, 0x80000, 0x80000);
        let banks = [
            MemRange::new(0x6000_0000, 0x1800_0000),
            MemRange::new(0x7000_0000, 0x1000_0000),
        ];
        assert_eq!(
            zone_sizes_init(&l, &banks, None),
            Err(BootError::OverlappingBanks {
                first: banks[0],
                second: banks[1],
            })
        );
        // The same bank twice, unsorted, and in highmem.
        let l = limits(0x60000, 0x70000, 0xa0000);
        let banks = [
            MemRange::new(0x9000_0000, 0x1000_0000),
            MemRange::new(0x6000_0000, 0x1000_0000),
            MemRange::new(0x9000_0000, 0x1000_0000),
        ];
        assert!(matches!(
            zone_sizes_init(&l, &banks, None),
            Err(BootError::OverlappingBanks { .. })
        ));
        // Touching banks and empty ones are fine.
        let banks = [
            MemRange::new(0x6000_0000, 0x1000_0000),
            MemRange::new(0x7000_0000, 0),
            MemRange::new(0x7000_0000, 0x3000_0000),
        ];
        let s = zone_sizes_init(&l, &banks, None).unwrap();
        assert_eq!(s.zhole_size, [0; 4]);
    }
}
