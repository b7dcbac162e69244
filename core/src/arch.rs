//! What the architecture decides: the Kconfig-like constants of the memory model
//! ([`MmConfig`]) and how lowmem and highmem are bounded ([`ArchLimits`]).
//!
//! Linux takes `sizeof(struct page)`, `MAX_ORDER` and `pageblock_order` from the build
//! configuration. zonekit takes them from an [`ArchLimits`] implementation, so the same
//! generic code can run with zonekit's own 16-byte descriptor or reproduce a given Linux
//! build's accounting exactly (see [`MmConfig::LINUX_61_ARMMP`]).

use crate::addr::{MemRange, PhysAddr};

/// Build-time constants of the memory model (Linux's Kconfig choices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmConfig {
    /// Bytes charged per page frame for the memmap (`sizeof(struct page)`).
    pub struct_page_size: u64,
    /// Number of buddy orders (`MAX_ORDER` with Linux ≤ 6.3 semantics: the largest block
    /// has order `max_order - 1`, so `MAX_ORDER_NR_PAGES = 1 << (max_order - 1)`).
    pub max_order: u32,
    /// log2 of the pages in a pageblock (`pageblock_order`).
    pub pageblock_order: u32,
    /// Highest physical address a `phys_addr_t` can hold (`u32::MAX` without LPAE).
    pub phys_addr_max: PhysAddr,
    /// `SMP_CACHE_BYTES`: the alignment of node-local boot allocations.
    pub smp_cache_bytes: u64,
}

impl MmConfig {
    /// zonekit's own profile: 16-byte page descriptor, orders 0..=10 (4 MiB blocks),
    /// 4 MiB pageblocks, 32-bit physical addresses.
    pub const ZONEKIT: MmConfig = MmConfig {
        struct_page_size: crate::page::PAGE_DESCRIPTOR_SIZE as u64,
        max_order: 11,
        pageblock_order: 10,
        phys_addr_max: u32::MAX as u64,
        smp_cache_bytes: 64,
    };

    /// zonekit's own profile with LPAE: 40-bit physical addresses.
    pub const ZONEKIT_LPAE: MmConfig = MmConfig {
        phys_addr_max: (1 << 40) - 1,
        ..Self::ZONEKIT
    };

    /// The Linux 4.x ARM32 build the seed articles describe: 32-byte `struct page`,
    /// `MAX_ORDER` 11 (1024-page mem_map alignment), pageblock order 10.
    pub const LINUX_4X_ARM: MmConfig = MmConfig {
        struct_page_size: 32,
        max_order: 11,
        pageblock_order: 10,
        phys_addr_max: u32::MAX as u64,
        smp_cache_bytes: 64,
    };

    /// Debian's Linux 6.1 `armmp` kernel (the oracle fixtures): 36-byte `struct page`
    /// (CONFIG_MEMCG), `MAX_ORDER` 12 (2048-page alignment), pageblock order 11.
    pub const LINUX_61_ARMMP: MmConfig = MmConfig {
        struct_page_size: 36,
        max_order: 12,
        pageblock_order: 11,
        phys_addr_max: u32::MAX as u64,
        smp_cache_bytes: 64,
    };

    /// Debian's Linux 6.1 `armmp-lpae` kernel: as `armmp`, but pageblock order 9
    /// (HUGETLB_PAGE_ORDER) and a 64-bit `phys_addr_t` (40 usable bits).
    pub const LINUX_61_ARMMP_LPAE: MmConfig = MmConfig {
        pageblock_order: 9,
        phys_addr_max: (1 << 40) - 1,
        ..Self::LINUX_61_ARMMP
    };

    /// `MAX_ORDER_NR_PAGES`.
    pub const fn max_order_nr_pages(&self) -> u64 {
        1 << (self.max_order - 1)
    }

    /// `pageblock_nr_pages`.
    pub const fn pageblock_nr_pages(&self) -> u64 {
        1 << self.pageblock_order
    }
}

/// Where lowmem ends, as decided by the arch from the memory map
/// (Linux's `adjust_lowmem_bounds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowmemBounds {
    /// `arm_lowmem_limit`: one past the last byte of directly mapped memory.
    pub lowmem_limit: PhysAddr,
    /// The memblock allocation limit to use until lowmem is mapped (PMD-rounded).
    pub memblock_limit: PhysAddr,
}

/// The architecture's side of the memory model.
pub trait ArchLimits {
    /// The build constants (`sizeof(struct page)`, `MAX_ORDER`, pageblock order, ...).
    fn mm_config(&self) -> MmConfig;

    /// Base page size in bytes. zonekit-core supports 4096 only; other values are
    /// rejected by the boot flow with a typed error.
    fn page_size(&self) -> u64 {
        crate::addr::PAGE_SIZE
    }

    /// How lowmem is bounded: given the memblock.memory regions (sorted), return
    /// `arm_lowmem_limit` and the early memblock limit. Memory above the lowmem limit
    /// is highmem.
    fn lowmem_bounds(&self, memory: &[MemRange]) -> LowmemBounds;

    /// Whether memory above the lowmem limit is kept as a HIGHMEM zone
    /// (CONFIG_HIGHMEM); without it, such memory is removed from memblock.
    fn has_highmem(&self) -> bool {
        true
    }
}
