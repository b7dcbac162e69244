//! Host integration tests live in tests/tests/; this library holds what several of
//! them build the same way.

use zonekit_core::page_alloc::host;
use zonekit_core::page_alloc::PageAllocator;
use zonekit_core::storage::VecPageStorage;

/// [`host::one_zone_allocator`], which the tests expect to succeed.
pub fn one_zone_allocator<const N: usize>(
    base_pfn: u64,
    pages: u64,
    reserved: Option<(u64, u64)>,
) -> PageAllocator<VecPageStorage, N> {
    host::one_zone_allocator(base_pfn, pages, reserved).expect("a one-zone node")
}
