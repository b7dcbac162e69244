//! memblock: the early boot allocator (Linux `mm/memblock.c`).
//!
//! CONTRACT STUB: the public API below is fixed; bodies are being implemented.
#![allow(unused_variables, missing_docs, dead_code)]

use crate::addr::{MemRange, PhysAddr};
use crate::storage::PageStorage;

/// `INIT_MEMBLOCK_REGIONS`: regions per table before `memblock_allow_resize`.
pub const INIT_MEMBLOCK_REGIONS: usize = 128;
/// `MEMBLOCK_ALLOC_ACCESSIBLE`: "up to the current limit" as an end address.
pub const MEMBLOCK_ALLOC_ACCESSIBLE: PhysAddr = 0;
/// `MEMBLOCK_ALLOC_ANYWHERE`: no upper limit.
pub const MEMBLOCK_ALLOC_ANYWHERE: PhysAddr = u64::MAX;
/// `NUMA_NO_NODE`.
pub const NUMA_NO_NODE: i32 = -1;

/// `enum memblock_flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct RegionFlags(pub u32);

impl RegionFlags {
    pub const NONE: RegionFlags = RegionFlags(0);
    pub const HOTPLUG: RegionFlags = RegionFlags(0x1);
    pub const MIRROR: RegionFlags = RegionFlags(0x2);
    pub const NOMAP: RegionFlags = RegionFlags(0x4);
    pub const DRIVER_MANAGED: RegionFlags = RegionFlags(0x8);
    pub const fn contains(self, other: RegionFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// `struct memblock_region`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub base: PhysAddr,
    pub size: u64,
    pub flags: RegionFlags,
    pub nid: i32,
}

/// Which table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    Memory,
    Reserved,
}

/// Errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemblockError {
    TableFull {
        table: TableKind,
        capacity: usize,
    },
    NoSpace {
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    },
    BadAlign {
        align: u64,
    },
}

/// `struct memblock_type`.
#[derive(Clone, Debug)]
pub struct RegionTable<const N: usize> {
    regions: heapless::Vec<Region, N>,
}

impl<const N: usize> RegionTable<N> {
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }
    pub fn total_size(&self) -> u64 {
        unimplemented!()
    }
}

/// `struct memblock`.
#[derive(Clone, Debug)]
pub struct Memblock<const N: usize = INIT_MEMBLOCK_REGIONS> {
    pub memory: RegionTable<N>,
    pub reserved: RegionTable<N>,
}

impl<const N: usize> Memblock<N> {
    pub fn new(phys_addr_max: PhysAddr) -> Self {
        unimplemented!()
    }
    pub fn set_debug(&mut self, on: bool) {}
    pub fn add(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        unimplemented!()
    }
    pub fn remove(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        unimplemented!()
    }
    pub fn reserve(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        unimplemented!()
    }
    pub fn phys_free(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        unimplemented!()
    }
    pub fn mark_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        unimplemented!()
    }
    pub fn current_limit(&self) -> PhysAddr {
        unimplemented!()
    }
    pub fn set_current_limit(&mut self, limit: PhysAddr) {}
    pub fn allow_resize(&mut self) {}
    pub fn start_of_dram(&self) -> PhysAddr {
        unimplemented!()
    }
    pub fn end_of_dram(&self) -> PhysAddr {
        unimplemented!()
    }
    pub fn alloc_try_nid_raw(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Result<PhysAddr, MemblockError> {
        unimplemented!()
    }
    pub fn alloc_try_nid<S: PageStorage>(
        &mut self,
        storage: &mut S,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Result<PhysAddr, MemblockError> {
        unimplemented!()
    }
    pub fn enforce_memory_limit(&mut self, limit: u64) -> Result<(), MemblockError> {
        unimplemented!()
    }
    pub fn dump(&self, w: &mut dyn core::fmt::Write) -> core::fmt::Result {
        unimplemented!()
    }
    pub fn memory_ranges(&self) -> impl Iterator<Item = MemRange> + '_ {
        self.memory
            .regions()
            .iter()
            .map(|r| MemRange::new(r.base, r.size))
    }
}
