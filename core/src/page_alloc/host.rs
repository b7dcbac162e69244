//! A page allocator on simulated storage in one call, for host tests and tools
//! (feature `alloc`): one node, one zone, after `memblock_free_all`.

use super::{memblock_free_all, AllocConfig, PageAllocator};
use crate::memblock::{Memblock, MemblockError};
use crate::mm_init::free_area_init_node;
use crate::storage::VecPageStorage;
use crate::zone::InitError;
use crate::MmConfig;

/// Why [`one_zone_allocator`] could not build the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OneZoneError {
    /// memblock refused the memory or the reservation.
    Memblock(MemblockError),
    /// `free_area_init_node` failed.
    Init(InitError),
}

/// `pages` pages from `base_pfn` in one zone (zonekit profile, every page in zone
/// 0), `reserved` (physical base, size) kept out, after `memblock_free_all`: an
/// allocator with lists for `N` CPUs, all online.
pub fn one_zone_allocator<const N: usize>(
    base_pfn: u64,
    pages: u64,
    reserved: Option<(u64, u64)>,
) -> Result<PageAllocator<VecPageStorage, N>, OneZoneError> {
    one_zone_allocator_with(&MmConfig::ZONEKIT, base_pfn, pages, reserved)
}

/// [`one_zone_allocator`] with another memory-model configuration (orders,
/// pageblock size).
pub fn one_zone_allocator_with<const N: usize>(
    mm: &MmConfig,
    base_pfn: u64,
    pages: u64,
    reserved: Option<(u64, u64)>,
) -> Result<PageAllocator<VecPageStorage, N>, OneZoneError> {
    zoned_allocator(mm, base_pfn, [pages, 0, 0, 0], reserved)
}

/// [`one_zone_allocator_with`] with the node cut into zones: `zone_pages[z]` pages
/// of zone `z`, one after the other from `base_pfn` (boundaries anywhere, aligned
/// or not).
pub fn zoned_allocator<const N: usize>(
    mm: &MmConfig,
    base_pfn: u64,
    zone_pages: [u64; 4],
    reserved: Option<(u64, u64)>,
) -> Result<PageAllocator<VecPageStorage, N>, OneZoneError> {
    let pages: u64 = zone_pages.iter().sum();
    let mut mb: Memblock = Memblock::new(u32::MAX as u64);
    mb.add(base_pfn << 12, pages << 12)
        .map_err(OneZoneError::Memblock)?;
    if let Some((base, size)) = reserved {
        mb.reserve(base, size).map_err(OneZoneError::Memblock)?;
    }
    mb.set_current_limit((base_pfn + pages) << 12);
    let mut storage = VecPageStorage::default();
    let mut node = free_area_init_node(
        &mut mb,
        &mut storage,
        mm,
        0,
        &zone_pages,
        base_pfn,
        &[0; 4],
        0,
    )
    .map_err(OneZoneError::Init)?;
    memblock_free_all(&mut node, &mb, base_pfn + pages);
    Ok(PageAllocator::new(
        node,
        VecPageStorage::default(),
        AllocConfig::new(base_pfn + pages, base_pfn << 12),
    ))
}
