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
use zonekit_core::source::{SourceError, MAX_RESERVATION_REQUESTS};
use zonekit_core::{zk_debug, zk_info, zk_warn, MemorySource, PageStorage};

use crate::hooks::{BootHooks, BootStep};
use crate::limits::{early_vmalloc, find_limits, Arm32, PfnLimits, VmallocAdjust, PMD_SIZE};

/// The memblock used during boot: Linux's 128 regions per table, doubling after
/// `memblock_allow_resize` up to this many.
pub type BootMemblock = Memblock<{ 2 * INIT_MEMBLOCK_REGIONS }>;

/// What the boot code knows when it hands over to the memory flow.
pub struct BootParams<'a> {
    /// RAM banks, reservations, DMA zone size and command line.
    pub source: &'a dyn MemorySource,
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
    fn from(e: SourceError) -> Self {
        BootError::Source(e)
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

/// `zone_size[]` and `zhole_size[]` as handed to `free_area_init_node`, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneSizes {
    /// Pages spanned by each zone (indexed by [`ZoneType`]).
    pub zone_size: [u64; MAX_NR_ZONES],
    /// Pages of each zone not backed by memory.
    pub zhole_size: [u64; MAX_NR_ZONES],
}

impl ZoneSizes {
    /// `[start, end)` PFNs of each zone, laid out from `node_start`.
    pub fn zone_ranges(&self, node_start: Pfn) -> [(Pfn, Pfn); MAX_NR_ZONES] {
        let mut out = [(0, 0); MAX_NR_ZONES];
        let mut start = node_start;
        for (i, range) in out.iter_mut().enumerate() {
            *range = (start, start + self.zone_size[i]);
            start += self.zone_size[i];
        }
        out
    }
}

/// `arm_adjust_dma_zone`: when the board's DMA zone is smaller than the lowmem zone,
/// split it: ZONE_DMA keeps the first `dma_pages`, ZONE_NORMAL takes the rest and the
/// lowmem zone's holes.
pub fn arm_adjust_dma_zone(sizes: &mut ZoneSizes, dma_pages: u64) {
    let dma = ZoneType::Dma as usize;
    let normal = ZoneType::Normal as usize;
    if sizes.zone_size[dma] <= dma_pages {
        return;
    }
    sizes.zone_size[normal] = sizes.zone_size[dma] - dma_pages;
    sizes.zone_size[dma] = dma_pages;
    sizes.zhole_size[normal] = sizes.zhole_size[dma];
    sizes.zhole_size[dma] = 0;
}

/// `zone_sizes_init`: lowmem `[min, max_low)` is one zone (ZONE_DMA when the board has
/// a DMA zone size, else ZONE_NORMAL), highmem `[max_low, max_high)` the other; holes
/// start equal to the sizes and every memory bank subtracts its overlap.
///
/// The banks must not overlap (memblock.memory never does): overlapping ones would
/// be subtracted twice, so they are refused with [`BootError::OverlappingBanks`].
pub fn zone_sizes_init(
    limits: &PfnLimits,
    memory: &[MemRange],
    dma_zone_size: Option<u64>,
) -> Result<ZoneSizes, BootError> {
    for (i, first) in memory.iter().enumerate() {
        if let Some(second) = memory[i + 1..]
            .iter()
            .find(|b| !first.is_empty() && !b.is_empty() && first.overlaps(b))
        {
            return Err(BootError::OverlappingBanks {
                first: *first,
                second: *second,
            });
        }
    }
    let low = if dma_zone_size.is_some() {
        ZoneType::Dma as usize
    } else {
        ZoneType::Normal as usize
    };
    let high = ZoneType::HighMem as usize;
    let mut s = ZoneSizes::default();
    s.zone_size[low] = limits.max_low.saturating_sub(limits.min);
    s.zone_size[high] = limits.max_high.saturating_sub(limits.max_low);
    s.zhole_size = s.zone_size;
    for bank in memory {
        let (start, end) = (pfn_up(bank.base), pfn_down(bank.end()));
        if start >= end {
            continue;
        }
        if start < limits.max_low {
            let low_start = start.max(limits.min);
            let low_end = end.min(limits.max_low);
            s.zhole_size[low] -= low_end.saturating_sub(low_start);
        }
        if end > limits.max_low {
            let high_start = start.max(limits.max_low);
            s.zhole_size[high] -= end.min(limits.max_high).saturating_sub(high_start);
        }
    }
    if let Some(dma) = dma_zone_size {
        arm_adjust_dma_zone(&mut s, dma >> zonekit_core::PAGE_SHIFT);
    }
    Ok(s)
}

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

/// Step 1, `setup_machine_*` + `early_mem`: add every bank, apply `mem=`.
///
/// Banks of a source that asks for it ([`MemorySource::banks_via_arm_add_memory`]:
/// ATAGS, board maps) go through [`arm_add_memory`]; a DTB's are added as given (its
/// parser made Linux's `early_init_dt_add_memory_arch` checks).
///
/// With `mem=` on the command line this is ARM's `early_mem`, once per `mem=`: the
/// first forgets every discovered bank, each adds its own bank (START defaults to
/// `PHYS_OFFSET`, the start of the discovered RAM) through [`arm_add_memory`]. Unlike
/// Linux, zonekit then keeps only the part of each `mem=` bank that lies in the RAM the
/// source discovered, and warns about the rest: Linux believes `mem=8G` on a 512 MiB
/// board and hangs touching memory that is not there. A `mem=` whose START + SIZE
/// overflows is [`BootError::MemOverflow`]; `mem=` that leaves no memory at all is
/// [`BootError::MemOutsideRam`].
pub fn add_memory(
    mb: &mut BootMemblock,
    source: &dyn MemorySource,
    cmdline: &Cmdline,
) -> Result<(), BootError> {
    let banks = source.memory_banks()?;
    if banks.is_empty() {
        return Err(SourceError::NoMemory.into());
    }
    let checked = source.banks_via_arm_add_memory();
    for bank in &banks {
        if !checked {
            mb.add(bank.base, bank.size)?;
            continue;
        }
        // No PHYS_OFFSET check: it is defined by these banks.
        match arm_add_memory(bank.base, bank.size, 0, mb.phys_addr_max()) {
            Ok(Some(r)) => mb.add(r.base, r.size)?,
            Ok(None) => {}
            Err(_) => {
                return Err(SourceError::Overflow {
                    base: bank.base,
                    size: bank.size,
                }
                .into())
            }
        }
    }
    if mb.memory.is_empty() {
        return Err(SourceError::NoMemory.into());
    }
    if !cmdline.mem.is_empty() {
        early_mem(mb, source.name(), &cmdline.mem)?;
    }
    Ok(())
}

/// ARM's `early_mem` for every `mem=` in order, each bank then clipped to `ram`, the
/// memory the source discovered.
fn early_mem(
    mb: &mut BootMemblock,
    source_name: &str,
    mem: &[zonekit_core::cmdline::MemParam],
) -> Result<(), BootError> {
    let phys_offset = mb.start_of_dram();
    let ram = memblock_banks(mb);
    // The first mem= blows away the discovered banks.
    mb.remove(phys_offset, mb.end_of_dram() - phys_offset)?;
    for m in mem {
        let start = m.start.unwrap_or(phys_offset);
        let Some(bank) =
            arm_add_memory(start, m.size, phys_offset, mb.phys_addr_max()).map_err(|_| {
                BootError::MemOverflow {
                    size: m.size,
                    start,
                }
            })?
        else {
            continue;
        };
        // memblock.memory is sorted and its regions do not touch.
        let mut cursor = bank.base;
        for r in ram.iter().filter(|r| r.overlaps(&bank)) {
            if r.base > cursor {
                warn_not_ram(MemRange::new(cursor, r.base - cursor), source_name);
            }
            let (s, e) = (cursor.max(r.base), bank.end().min(r.end()));
            mb.add(s, e - s)?;
            cursor = e;
        }
        if cursor < bank.end() {
            warn_not_ram(MemRange::new(cursor, bank.end() - cursor), source_name);
        }
    }
    if mb.memory.is_empty() {
        return Err(BootError::MemOutsideRam);
    }
    Ok(())
}

fn warn_not_ram(r: MemRange, source_name: &str) {
    zk_warn!(
        "mem=: ignoring {} outside the RAM reported by the {}",
        r,
        source_name
    );
}

/// `START + SIZE` (or START rounded up to a page) overflows the 64-bit address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankOverflow;

/// Linux's `arm_add_memory` (`arch/arm/kernel/setup.c`) without the `memblock_add`:
/// round `start` up and `size` down to whole pages; ignore a bank that starts past
/// `phys_addr_max` and truncate one that ends past it (Linux checks this only without
/// LPAE, against 32 bits; zonekit checks against the build's `phys_addr_max`, so LPAE
/// banks past 2^40 are reported too, as "40-bit"); drop what lies below
/// `phys_offset`. Returns the range to add, or `None` when nothing is left. Prints
/// Linux's messages as warnings (Linux uses `pr_crit` and `pr_info`), and a warning of
/// its own for a bank smaller than a page (Linux drops that silently).
pub fn arm_add_memory(
    start: PhysAddr,
    size: u64,
    phys_offset: PhysAddr,
    phys_addr_max: PhysAddr,
) -> Result<Option<MemRange>, BankOverflow> {
    let end = start.checked_add(size).ok_or(BankOverflow)?;
    let aligned_start = start
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(BankOverflow)?;
    let mut size = end.saturating_sub(aligned_start);
    let bits = 64 - phys_addr_max.leading_zeros();
    if aligned_start > phys_addr_max {
        zk_warn!(
            "Ignoring memory at {:#010x} outside {}-bit physical address space",
            start,
            bits
        );
        return Ok(None);
    }
    if aligned_start + size > phys_addr_max {
        zk_warn!(
            "Truncating memory at {:#010x} to fit in {}-bit physical address space",
            start,
            bits
        );
        // As Linux: the end stays representable, so the last page is lost.
        size = phys_addr_max - aligned_start;
    }
    let mut base = aligned_start;
    if base < phys_offset {
        if base + size <= phys_offset {
            zk_warn!(
                "Ignoring memory below PHYS_OFFSET: {:#010x}-{:#010x}",
                base,
                base + size
            );
            return Ok(None);
        }
        zk_warn!(
            "Ignoring memory below PHYS_OFFSET: {:#010x}-{:#010x}",
            base,
            phys_offset
        );
        size -= phys_offset - base;
        base = phys_offset;
    }
    let size = size & !(PAGE_SIZE - 1);
    if size == 0 {
        zk_warn!("Ignoring memory at {:#010x}: less than a whole page", start);
        return Ok(None);
    }
    Ok(Some(MemRange::new(base, size)))
}

/// The running image must lie in memory: Linux maps it with lowmem (`map_lowmem`), so
/// an image outside memblock.memory is never mapped.
fn check_kernel_in_memory(mb: &BootMemblock, image: MemRange) -> Result<(), BootError> {
    if image.is_empty() || mb.is_region_memory(image.base, image.size) {
        return Ok(());
    }
    let (start, end) = (mb.start_of_dram(), mb.end_of_dram());
    Err(BootError::KernelOutsideMemory {
        image,
        memory: MemRange::new(start, end - start),
    })
}

/// What `arm_memblock_init` set aside besides the fixed reservations.
#[derive(Clone, Debug, Default)]
pub struct MemblockInit {
    /// The CMA areas (still reserved in memblock until the allocator activates them).
    pub cma: CmaAreas,
    /// Where the source's dynamic reservations were placed, in request order.
    pub dynamic: heapless::Vec<MemRange, MAX_RESERVATION_REQUESTS>,
}

/// Step 2, `arm_memblock_init`: reserve the image, the boot data and the source's
/// reserved ranges, mark its `no-map` ranges NOMAP, place its dynamic reservations
/// (`early_init_fdt_scan_reserved_mem`), set up its CMA pools (`rmem_cma_setup`) and
/// the global CMA area (`dma_contiguous_reserve(arm_dma_limit)`), and dump memblock
/// under `memblock=debug`. `highmem_start` is `arm_lowmem_limit` as the first
/// `adjust_lowmem_bounds` left it. Returns the CMA areas, which stay reserved until
/// the page allocator activates them.
pub fn arm_memblock_init(
    mb: &mut BootMemblock,
    params: &BootParams<'_>,
    cmdline: &Cmdline,
    highmem_start: PhysAddr,
) -> Result<MemblockInit, BootError> {
    mb.reserve(params.kernel_image.base, params.kernel_image.size)?;
    for r in params.boot_data {
        mb.reserve(r.base, r.size)?;
    }
    for r in &params.source.reserved_ranges()? {
        mb.reserve(r.base, r.size)?;
    }
    for r in &params.source.nomap_ranges()? {
        mb.mark_nomap(r.base, r.size)?;
        zk_info!("OF: reserved mem: {} no-map", mem_line(r.base, r.end()));
    }
    let cma_align = params.mm.pageblock_nr_pages() * PAGE_SIZE;
    let mut cma = CmaAreas::new();
    let mut dynamic = heapless::Vec::new();
    let mut cma_default = false;
    for region in params.source.cma_ranges() {
        cma_default |= rmem_cma_setup(mb, &mut cma, region.range, region.default, cma_align);
    }
    for req in params.source.reservation_requests() {
        let base = reserve_dynamic(mb, &req, cma_align)?;
        // As many placements as requests, which are at most MAX_RESERVATION_REQUESTS.
        let _ = dynamic.push(MemRange::new(base, req.size));
        zk_info!(
            "OF: reserved mem: allocated {} {}{}",
            req.name,
            MemRange::new(base, req.size),
            if req.no_map { " no-map" } else { "" }
        );
        if req.cma {
            let range = MemRange::new(base, req.size);
            cma_default |= rmem_cma_setup(mb, &mut cma, range, req.cma_default, cma_align);
        }
    }
    let dma_limit = match cmdline.dma_zone_size.or(params.source.dma_zone_size()) {
        Some(size) => mb.start_of_dram().saturating_add(size).saturating_sub(1),
        None => u64::from(u32::MAX),
    };
    let placement = CmaPlacement {
        phys_addr_64bit: params.mm.phys_addr_max > u64::from(u32::MAX),
        linux_61_highmem_leak: false,
    };
    // A failure is logged by dma_contiguous_reserve and leaves memblock unchanged:
    // Linux boots on without the area, and so does zonekit.
    let _ = dma_contiguous_reserve(
        mb,
        &mut cma,
        cmdline.cma,
        0,
        dma_limit,
        highmem_start,
        cma_align,
        placement,
        cma_default,
    );
    if cmdline.memblock_debug {
        let mut out = LogLines::new();
        // Writing to the log cannot fail.
        let _ = mb.dump(&mut out);
    }
    Ok(MemblockInit { cma, dynamic })
}

/// `rmem_cma_setup`: a reserved-memory CMA pool becomes a CMA area if it is a whole
/// number of pageblocks; otherwise it stays plain reserved memory, as in Linux.
/// Returns whether it became the default area.
fn rmem_cma_setup(
    mb: &BootMemblock,
    cma: &mut CmaAreas,
    range: MemRange,
    default: bool,
    align: u64,
) -> bool {
    match cma.init_reserved_mem(range.base, range.size, align) {
        Ok(_) => {
            zk_info!(
                "Reserved memory: created CMA memory pool at {}, size {} MiB",
                mb.pa(range.base),
                range.size >> 20
            );
            default
        }
        Err(CmaError::Misaligned { .. }) => {
            zk_warn!("Reserved memory: incorrect alignment of CMA region");
            false
        }
        Err(e) => {
            zk_warn!(
                "Reserved memory: CMA pool at {} not set up: {}",
                mb.pa(range.base),
                e
            );
            false
        }
    }
}

/// `__reserved_mem_alloc_size`: place one dynamic reservation top-down, inside its
/// `alloc-ranges` when it has them, anywhere in memory otherwise. A CMA pool is
/// aligned to at least `cma_align` (`CMA_MIN_ALIGNMENT_BYTES`).
fn reserve_dynamic(
    mb: &mut BootMemblock,
    req: &zonekit_core::source::ReservationRequest<'_>,
    cma_align: u64,
) -> Result<PhysAddr, BootError> {
    let mut align = req.align.unwrap_or(zonekit_core::memblock::SMP_CACHE_BYTES);
    if req.cma {
        align = align.max(cma_align);
    }
    let found = if req.alloc_ranges.is_empty() {
        mb.phys_alloc_range(req.size, align, 0, MEMBLOCK_ALLOC_ANYWHERE)
    } else {
        req.alloc_ranges
            .iter()
            .find_map(|r| mb.phys_alloc_range(req.size, align, r.base, r.end()))
    };
    let base = found.ok_or(BootError::Reservation {
        size: req.size,
        align,
    })?;
    if req.no_map {
        if let Err(e) = mb.mark_nomap(base, req.size) {
            mb.phys_free(base, req.size)?;
            return Err(e.into());
        }
    }
    Ok(base)
}

/// Step 3, `adjust_lowmem_bounds`: compute `arm_lowmem_limit`, drop memory above it
/// when there is no highmem, and set the early memblock limit.
pub fn adjust_lowmem_bounds(mb: &mut BootMemblock, arch: &Arm32) -> Result<PhysAddr, BootError> {
    // `for_each_mem_range`: memory regions, NOMAP ones skipped.
    let mut banks: heapless::Vec<MemRange, { 2 * INIT_MEMBLOCK_REGIONS }> = heapless::Vec::new();
    for r in mb.memory.regions() {
        if !r.flags.contains(RegionFlags::NOMAP) {
            // memblock.memory never holds more regions than this vector.
            let _ = banks.push(MemRange::new(r.base, r.size));
        }
    }
    // A first bank that does not start on a section boundary cannot be mapped with
    // sections; Linux takes its head out of the linear map.
    if let Some(first) = banks.first() {
        if first.base % PMD_SIZE != 0 {
            let len = (first.base.next_multiple_of(PMD_SIZE) - first.base).min(first.size);
            mb.mark_nomap(first.base, len)?;
        }
    }
    let bounds = arch.lowmem_bounds(&banks);
    if bounds.lowmem_limit == 0 {
        return Err(BootError::NoLowmem);
    }
    let mut memblock_limit = bounds.memblock_limit;
    if !arch.has_highmem() && mb.end_of_dram() > bounds.lowmem_limit {
        let end = mb.end_of_dram();
        zk_warn!(
            "Ignoring RAM at {:#010x}-{:#010x}",
            bounds.lowmem_limit,
            end - 1
        );
        mb.remove(bounds.lowmem_limit, end - bounds.lowmem_limit)?;
        memblock_limit = memblock_limit.min(bounds.lowmem_limit);
    }
    mb.set_current_limit(memblock_limit);
    Ok(bounds.lowmem_limit)
}

/// Print Linux's `Zone ranges:` / `Early memory node ranges` / `Initmem setup` block.
fn print_zone_ranges(mb: &BootMemblock, sizes: &ZoneSizes, limits: &PfnLimits, has_dma_zone: bool) {
    zk_info!("Zone ranges:");
    let ranges = sizes.zone_ranges(limits.min);
    for zt in [ZoneType::Dma, ZoneType::Normal, ZoneType::HighMem] {
        if zt == ZoneType::Dma && !has_dma_zone {
            continue;
        }
        let (start, end) = ranges[zt as usize];
        if start == end {
            zk_info!("  {:<8} empty", zt.name());
        } else {
            zk_info!(
                "  {:<8} {}",
                zt.name(),
                mem_line(pfn_phys(start), pfn_phys(end))
            );
        }
    }
    zk_info!("Movable zone start for each node");
    zk_info!("Early memory node ranges");
    for r in mb.memory.regions() {
        let (start, end) = (pfn_up(r.base), pfn_down(r.base + r.size));
        if start < end {
            zk_info!(
                "  node {:>3}: {}",
                r.nid.max(0),
                mem_line(pfn_phys(start), pfn_phys(end))
            );
        }
    }
    zk_info!(
        "Initmem setup node 0 {}",
        mem_line(pfn_phys(limits.min), pfn_phys(limits.max_high))
    );
}

/// Step 5, `bootmem_init`: `memblock_allow_resize`, `find_limits`, `early_memtest`
/// (with `memtest=`), `zone_sizes_init` and `free_area_init_node` (the hooks see
/// [`BootStep::FreeAreaInitStart`] and [`BootStep::FreeAreaInitEnd`] around it).
pub fn bootmem_init<S: PageStorage>(
    mut memblock: BootMemblock,
    storage: &mut S,
    arch: Arm32,
    lowmem_limit: PhysAddr,
    dma_zone_size: Option<u64>,
    cmdline: Cmdline,
    hooks: &mut dyn BootHooks<S>,
) -> Result<BootedMemory<S>, BootError> {
    memblock.allow_resize();
    let limits = find_limits(
        memblock.start_of_dram(),
        memblock.end_of_dram(),
        lowmem_limit,
    );
    if limits.max_low <= limits.min {
        return Err(BootError::NoLowmem);
    }
    // Off unless `memtest=` asked for it: bad lowmem is reserved before the zones
    // and mem_map are laid out.
    early_memtest(
        &mut memblock,
        storage,
        pfn_phys(limits.min),
        pfn_phys(limits.max_low),
        cmdline.memtest_pattern,
    )
    .map_err(BootError::Memtest)?;
    let banks = memblock_banks(&memblock);
    let zone_sizes = zone_sizes_init(&limits, &banks, dma_zone_size)?;
    print_zone_ranges(&memblock, &zone_sizes, &limits, dma_zone_size.is_some());
    hooks.step(BootStep::FreeAreaInitStart);
    let node = free_area_init_node(
        &mut memblock,
        storage,
        &arch.mm,
        0,
        &zone_sizes.zone_size,
        limits.min,
        &zone_sizes.zhole_size,
        0,
    )?;
    hooks.step(BootStep::FreeAreaInitEnd);
    Ok(BootedMemory {
        memblock,
        node,
        arch,
        lowmem_limit,
        limits,
        zone_sizes,
        cmdline,
        has_dma_zone: dma_zone_size.is_some(),
        page_offset: arch.phys_offset,
        cma: CmaAreas::new(),
        dynamic_reservations: heapless::Vec::new(),
    })
}

fn memblock_banks(mb: &BootMemblock) -> heapless::Vec<MemRange, { 2 * INIT_MEMBLOCK_REGIONS }> {
    let mut banks = heapless::Vec::new();
    for r in mb.memory_ranges() {
        // memblock.memory never holds more regions than this vector.
        let _ = banks.push(r);
    }
    banks
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
    let cmdline = Cmdline::parse(params.source.cmdline());
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
    let dma_zone_size = cmdline.dma_zone_size.or(params.source.dma_zone_size());
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
