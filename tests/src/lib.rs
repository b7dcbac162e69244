//! Host integration tests live in tests/tests/; this library holds what several of
//! them build the same way.

use zonekit_arch_arm::bootmem::{boot, BootParams, BootedMemory};
use zonekit_arch_arm::hooks::NoHooks;
use zonekit_core::addr::MemRange;
use zonekit_core::page_alloc::host;
use zonekit_core::page_alloc::{memblock_free_all, AllocConfig, FreeAllStats, PageAllocator};
use zonekit_core::source::StaticMemoryMap;
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MmConfig;

/// Where [`booted`]'s RAM starts.
pub const BOOT_BASE: u64 = 0x6000_0000;

/// The host boot of one bank of `ram` bytes at [`BOOT_BASE`] (an 8 MiB kernel image
/// at +32 KiB and a boot-data page reserved; all lowmem is ZONE_DMA, as Linux 6.1
/// armmp has it), which the tests expect to succeed.
pub fn booted(ram: u64, mm: MmConfig) -> BootedMemory<VecPageStorage> {
    let source = StaticMemoryMap::single_bank(BOOT_BASE, ram);
    let params = BootParams {
        source: &source,
        cmdline: "",
        dma_zone_size: Some(1 << 32),
        kernel_image: MemRange::new(BOOT_BASE + 0x8000, 0x80_0000),
        boot_data: &[MemRange::new(BOOT_BASE + 0x100, 0x1000)],
        mm,
    };
    let mut storage = VecPageStorage::default();
    boot(&params, &mut storage, &mut NoHooks).expect("boot")
}

/// [`host::one_zone_allocator`], which the tests expect to succeed.
pub fn one_zone_allocator<const N: usize>(
    base_pfn: u64,
    pages: u64,
    reserved: Option<(u64, u64)>,
) -> PageAllocator<VecPageStorage, N> {
    host::one_zone_allocator(base_pfn, pages, reserved).expect("a one-zone node")
}

/// The CMA area of the CMA tests: 16 MiB at 0x7e00_0000 (8 MiB aligned).
pub const CMA_AREA: (u64, u64) = (0x7e00_0000, 16 << 20);

/// [`booted`] with `reserved` reserved in memblock, after `memblock_free_all`, as an
/// allocator for `N` CPUs asked to activate the CMA area `area` (aligned to
/// `align`; whether it did is `cma_failures`); also `memblock_free_all`'s
/// statistics.
pub fn allocator_with_cma<const N: usize>(
    ram: u64,
    mm: MmConfig,
    reserved: (u64, u64),
    area: (u64, u64),
    align: u64,
) -> (PageAllocator<VecPageStorage, N>, FreeAllStats) {
    let mut b = booted(ram, mm);
    b.memblock
        .reserve(reserved.0, reserved.1)
        .expect("reserve the CMA area");
    let BootedMemory {
        memblock,
        mut node,
        limits,
        ..
    } = b;
    let stats = memblock_free_all(&mut node, &memblock, limits.max_low);
    let mut cfg = AllocConfig::new(limits.max_low, BOOT_BASE);
    cfg.cma
        .init_reserved_mem(area.0, area.1, align)
        .expect("a CMA area");
    (
        PageAllocator::new(node, VecPageStorage::default(), cfg),
        stats,
    )
}

/// [`allocator_with_cma`] with [`CMA_AREA`] reserved in memblock until the allocator
/// activates it (`cma_init_reserved_areas`), which it must.
pub fn cma_allocator<const N: usize>(
    ram: u64,
    mm: MmConfig,
) -> (PageAllocator<VecPageStorage, N>, FreeAllStats) {
    let (a, stats) = allocator_with_cma(ram, mm, CMA_AREA, CMA_AREA, 8 << 20);
    assert!(a.cma_failures().is_empty(), "the CMA area activates");
    (a, stats)
}
