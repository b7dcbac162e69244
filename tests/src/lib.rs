//! Host integration tests live in tests/tests/; this library holds what several of
//! them build the same way.

use zonekit_core::memblock::Memblock;
use zonekit_core::mm_init::free_area_init_node;
use zonekit_core::page_alloc::{memblock_free_all, AllocConfig, PageAllocator};
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MmConfig;

/// A node of `pages` pages from `base_pfn` in one zone (zonekit profile), `reserved`
/// (physical base, size) kept out, after `memblock_free_all`: an allocator with
/// lists for `N` CPUs.
pub fn one_zone_allocator<const N: usize>(
    base_pfn: u64,
    pages: u64,
    reserved: Option<(u64, u64)>,
) -> PageAllocator<VecPageStorage, N> {
    let mut mb: Memblock = Memblock::new(u32::MAX as u64);
    mb.add(base_pfn << 12, pages << 12).expect("memory");
    if let Some((base, size)) = reserved {
        mb.reserve(base, size).expect("reservation");
    }
    mb.set_current_limit((base_pfn + pages) << 12);
    let mut storage = VecPageStorage::default();
    let mut node = free_area_init_node(
        &mut mb,
        &mut storage,
        &MmConfig::ZONEKIT,
        0,
        &[pages, 0, 0, 0],
        base_pfn,
        &[0; 4],
        0,
    )
    .expect("node");
    memblock_free_all(&mut node, &mb, base_pfn + pages);
    PageAllocator::new(
        node,
        VecPageStorage::default(),
        AllocConfig::new(base_pfn + pages, base_pfn << 12),
    )
}
