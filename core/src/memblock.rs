//! memblock: the early boot allocator (Linux `mm/memblock.c`, as of 6.1).
//!
//! Two sorted, non-overlapping region tables describe the machine: `memory` (every DRAM
//! bank handed in by the board) and `reserved` (everything already in use: the kernel
//! image, the device tree, the initrd, page tables, and every memblock allocation).
//! Allocations search the free ranges (`memory` minus `reserved`) top-down by default,
//! exactly as Linux does, so that a zonekit boot places every allocation at the same
//! physical address as a Linux 6.1 ARM32 kernel with the same memory map.
//!
//! The implementation is written from the documented semantics of Linux's memblock;
//! the behaviour that matters for address fidelity is reproduced:
//!
//! * regions are merged only when contiguous and of the same node and flags;
//! * sizes are capped at [`Memblock::phys_addr_max`] (`memblock_cap_size`), so a bank
//!   ending at 4 GiB on a 32-bit `phys_addr_t` loses its last byte;
//! * the first page is never handed out, top-down search rounds down from the end of
//!   the highest free range that fits, bottom-up rounds up from the lowest;
//! * allocation falls back from a node to any node, from mirrored to any memory, and
//!   (in [`Memblock::alloc_try_nid`]) from `min_addr` to 0;
//! * tables are fixed-size (`heapless`, no allocation). Until
//!   [`Memblock::allow_resize`] a table holds at most `min(INIT_MEMBLOCK_REGIONS, N)`
//!   regions; afterwards it doubles, and, like `memblock_double_array`, the memory for
//!   the (notional) new array is found and reserved through memblock itself, so later
//!   allocations land where Linux's would.
//!
//! All table mutations are atomic with respect to [`MemblockError::TableFull`]: either
//! the whole change is applied or the table is left as it was (a counting pass runs
//! before anything is inserted, as in `memblock_add_range`).
//!
//! With [`Memblock::set_debug`] on (`memblock=debug`), every mutator logs Linux's
//! `memblock_dbg` line via [`zk_info!`](crate::zk_info), with the caller printed as
//! `file:line` of the call site (all public mutators are `#[track_caller]`).
//!
//! The code follows `mm/memblock.c` in layers, each file using only those above it
//! in this list (and this file, which holds the types and the simple accessors):
//!
//! * `debug`: the `memblock_dbg` trace lines, [`Pa`] (`%pa`) and the caller, and
//!   `__memblock_dump_all`;
//! * `iter`: the free ranges (`__next_mem_range`, `__next_mem_range_rev`) and the
//!   search over them (`memblock_find_in_range_node`);
//! * `table`: adding, removing, isolating and merging regions, table doubling
//!   (`memblock_add_range`, `memblock_isolate_range`, `memblock_double_array`) and the
//!   public mutators built on them (`memblock_add`, `memblock_reserve`,
//!   `memblock_enforce_memory_limit`, ...);
//! * `allocate`: find and reserve (`memblock_alloc_range_nid`, `memblock_alloc_try_nid*`,
//!   `memblock_phys_alloc*`), with `exact_nid` (`memblock_alloc_exact_nid_raw`) on top;
//! * `trim`: `memblock_trim_memory`.

use core::fmt;
use core::panic::Location;

use crate::addr::{MemRange, PhysAddr};
use crate::storage::StorageError;

mod allocate;
mod debug;
mod exact_nid;
mod iter;
mod table;
mod trim;

pub use debug::Pa;
pub use iter::{FreeRange, FreeRanges};

/// The location of this very line: used as the "caller" of memblock's internal
/// `memblock_reserve`/`memblock_phys_free` calls, as Linux prints its own function.
/// It stays in this file so that the trace names `memblock.rs`.
fn internal_caller() -> &'static Location<'static> {
    Location::caller()
}

/// `INIT_MEMBLOCK_REGIONS`: regions per table before `memblock_allow_resize`.
pub const INIT_MEMBLOCK_REGIONS: usize = 128;
/// `MEMBLOCK_ALLOC_ACCESSIBLE`: "up to the current limit" as an end address.
pub const MEMBLOCK_ALLOC_ACCESSIBLE: PhysAddr = 0;
/// `MEMBLOCK_ALLOC_ANYWHERE`: no upper limit.
pub const MEMBLOCK_ALLOC_ANYWHERE: PhysAddr = u64::MAX;
/// `MEMBLOCK_LOW_LIMIT`: the default lower bound of an allocation.
pub const MEMBLOCK_LOW_LIMIT: PhysAddr = 0;
/// `NUMA_NO_NODE`.
pub const NUMA_NO_NODE: i32 = -1;
/// `SMP_CACHE_BYTES` on ARMv7 (`1 << CONFIG_ARM_L1_CACHE_SHIFT`): the alignment used
/// when an allocation asks for alignment 0.
pub const SMP_CACHE_BYTES: u64 = 64;
/// `PHYS_ADDR_MAX` for a 32-bit `phys_addr_t` (classic ARM32).
pub const PHYS_ADDR_MAX_32: PhysAddr = 0xffff_ffff;
/// The largest physical address of an LPAE build (40-bit physical address space).
pub const PHYS_ADDR_MAX_LPAE: PhysAddr = (1 << 40) - 1;
/// Linux's `sizeof(struct memblock_region)` with a 64-bit `phys_addr_t` (LPAE):
/// base (8) + size (8) + flags (4), rounded up to the 8-byte alignment of the struct.
/// Used to size the array taken from memblock when a table doubles.
pub const REGION_BYTES: u64 = 24;
/// Linux's `sizeof(struct memblock_region)` with a 32-bit `phys_addr_t`:
/// base (4) + size (4) + flags (4). Used instead of [`REGION_BYTES`] when
/// [`Memblock::phys_addr_max`] fits in 32 bits.
pub const REGION_BYTES_32: u64 = 12;

/// `enum memblock_flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct RegionFlags(pub u32);

impl RegionFlags {
    /// `MEMBLOCK_NONE`: no special request.
    pub const NONE: RegionFlags = RegionFlags(0);
    /// `MEMBLOCK_HOTPLUG`: hotpluggable region.
    pub const HOTPLUG: RegionFlags = RegionFlags(0x1);
    /// `MEMBLOCK_MIRROR`: mirrored region.
    pub const MIRROR: RegionFlags = RegionFlags(0x2);
    /// `MEMBLOCK_NOMAP`: don't add to the kernel direct mapping.
    pub const NOMAP: RegionFlags = RegionFlags(0x4);
    /// `MEMBLOCK_DRIVER_MANAGED`: memory managed by a driver, not in the firmware map.
    pub const DRIVER_MANAGED: RegionFlags = RegionFlags(0x8);

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: RegionFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any bit of `other` is set in `self`.
    pub const fn intersects(self, other: RegionFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// `self | other`.
    pub const fn union(self, other: RegionFlags) -> RegionFlags {
        RegionFlags(self.0 | other.0)
    }

    /// `self & !other`.
    pub const fn without(self, other: RegionFlags) -> RegionFlags {
        RegionFlags(self.0 & !other.0)
    }
}

/// `struct memblock_region`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: PhysAddr,
    /// Length in bytes.
    pub size: u64,
    /// `enum memblock_flags` of the region.
    pub flags: RegionFlags,
    /// Node id (0 unless set with [`Memblock::set_node`] or [`Memblock::add_node`]).
    pub nid: i32,
}

impl Region {
    /// One past the last byte.
    pub const fn end(&self) -> PhysAddr {
        self.base.saturating_add(self.size)
    }

    /// The region as a [`MemRange`].
    pub const fn range(&self) -> MemRange {
        MemRange::new(self.base, self.size)
    }

    /// True when `addr` lies inside the region.
    pub const fn contains(&self, addr: PhysAddr) -> bool {
        addr >= self.base && addr < self.end()
    }
}

/// Which table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// `memblock.memory`: the physical memory banks.
    Memory,
    /// `memblock.reserved`: memory in use.
    Reserved,
}

impl TableKind {
    /// Linux's name of the table (`"memory"` / `"reserved"`).
    pub const fn name(self) -> &'static str {
        match self {
            TableKind::Memory => "memory",
            TableKind::Reserved => "reserved",
        }
    }
}

/// Errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemblockError {
    /// The table cannot hold the result and could not be doubled (resizing not yet
    /// allowed, already at its compile-time size `N`, or no memory for a new array).
    /// The table was left unchanged.
    TableFull {
        /// The table that is full.
        table: TableKind,
        /// Its capacity (`max`) at the time of the failure.
        capacity: usize,
    },
    /// No free range satisfies the allocation.
    NoSpace {
        /// Requested size in bytes.
        size: u64,
        /// Requested alignment.
        align: u64,
        /// Requested lower bound.
        min_addr: PhysAddr,
        /// Requested upper bound (as passed in).
        max_addr: PhysAddr,
        /// Requested node.
        nid: i32,
    },
    /// The alignment is neither 0 nor a power of two.
    BadAlign {
        /// The alignment given.
        align: u64,
    },
    /// The allocation succeeded (and stays reserved) but zeroing it failed.
    Storage(StorageError),
}

impl fmt::Display for MemblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemblockError::TableFull { table, capacity } => write!(
                f,
                "memblock.{} is full ({} regions) and cannot be resized",
                table.name(),
                capacity
            ),
            MemblockError::NoSpace {
                size,
                align,
                min_addr,
                max_addr,
                nid,
            } => write!(
                f,
                "memblock: failed to allocate {size} bytes align={align:#x} nid={nid} \
                 from={min_addr:#x} max_addr={max_addr:#x}"
            ),
            MemblockError::BadAlign { align } => {
                write!(f, "memblock: alignment {align:#x} is not a power of two")
            }
            MemblockError::Storage(e) => write!(f, "memblock: cannot zero allocation: {e}"),
        }
    }
}

impl From<StorageError> for MemblockError {
    fn from(e: StorageError) -> Self {
        MemblockError::Storage(e)
    }
}

/// `struct memblock_type`.
#[derive(Clone, Debug)]
pub struct RegionTable<const N: usize> {
    regions: heapless::Vec<Region, N>,
    kind: TableKind,
    total_size: u64,
    max: usize,
    array: Option<MemRange>,
}

impl<const N: usize> RegionTable<N> {
    /// An empty table with capacity `min(INIT_MEMBLOCK_REGIONS, N)`.
    pub const fn new(kind: TableKind) -> Self {
        Self {
            regions: heapless::Vec::new(),
            kind,
            total_size: 0,
            max: if N < INIT_MEMBLOCK_REGIONS {
                N
            } else {
                INIT_MEMBLOCK_REGIONS
            },
            array: None,
        }
    }

    /// The regions, sorted by base.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Number of regions. (Linux keeps one zero-sized dummy region in an empty table
    /// and reports `cnt == 1`; this returns 0 for an empty table, while
    /// [`Memblock::dump`] reproduces Linux's output.)
    pub fn cnt(&self) -> usize {
        self.regions.len()
    }

    /// Sum of the region sizes.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Current capacity (Linux's `type->max`).
    pub fn max(&self) -> usize {
        self.max
    }

    /// `"memory"` or `"reserved"`.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Which table this is.
    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// Where the table's array lives once it has been doubled: the page-aligned range
    /// reserved for it in memblock. `None` while the static initial array is in use.
    pub fn array(&self) -> Option<MemRange> {
        self.array
    }

    /// True when the table has no regions.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// `memblock_search`: index of the region containing `addr`.
    pub fn search(&self, addr: PhysAddr) -> Option<usize> {
        let mut lo = 0usize;
        let mut hi = self.regions.len();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = &self.regions[mid];
            if addr < r.base {
                hi = mid;
            } else if addr >= r.end() {
                lo = mid + 1;
            } else {
                return Some(mid);
            }
        }
        None
    }

    /// Linux's `cnt`, counting the dummy region of an empty table.
    fn linux_cnt(&self) -> usize {
        core::cmp::max(1, self.regions.len())
    }

    /// `memblock_overlaps_region` (size already capped).
    fn overlaps(&self, base: PhysAddr, size: u64) -> bool {
        let end = base.saturating_add(size);
        self.regions.iter().any(|r| base < r.end() && r.base < end)
    }
}

/// `struct memblock`.
#[derive(Clone, Debug)]
pub struct Memblock<const N: usize = INIT_MEMBLOCK_REGIONS> {
    /// `memblock.memory`.
    pub memory: RegionTable<N>,
    /// `memblock.reserved`.
    pub reserved: RegionTable<N>,
    bottom_up: bool,
    current_limit: PhysAddr,
    phys_addr_max: PhysAddr,
    debug: bool,
    can_resize: bool,
    has_some_mirror: bool,
    movable_node: bool,
}

impl<const N: usize> Memblock<N> {
    /// Empty tables, top-down, no limit, resizing not allowed, debug off.
    /// `phys_addr_max` is `PHYS_ADDR_MAX` of the build: [`PHYS_ADDR_MAX_32`] for a
    /// 32-bit `phys_addr_t`, [`PHYS_ADDR_MAX_LPAE`] for LPAE.
    pub const fn new(phys_addr_max: PhysAddr) -> Self {
        Self {
            memory: RegionTable::new(TableKind::Memory),
            reserved: RegionTable::new(TableKind::Reserved),
            bottom_up: false,
            current_limit: MEMBLOCK_ALLOC_ANYWHERE,
            phys_addr_max,
            debug: false,
            can_resize: false,
            has_some_mirror: false,
            movable_node: false,
        }
    }

    // ----------------------------------------------------------------- settings

    /// `memblock=debug`: log every operation like `memblock_dbg`.
    pub fn set_debug(&mut self, on: bool) {
        self.debug = on;
    }

    /// Whether debug tracing is on.
    pub fn debug(&self) -> bool {
        self.debug
    }

    /// The largest representable physical address (`PHYS_ADDR_MAX`).
    pub fn phys_addr_max(&self) -> PhysAddr {
        self.phys_addr_max
    }

    /// `memblock_get_current_limit`.
    pub fn current_limit(&self) -> PhysAddr {
        self.current_limit
    }

    /// `memblock_set_current_limit`.
    pub fn set_current_limit(&mut self, limit: PhysAddr) {
        self.current_limit = limit;
    }

    /// `memblock_bottom_up`.
    pub fn bottom_up(&self) -> bool {
        self.bottom_up
    }

    /// `memblock_set_bottom_up`.
    pub fn set_bottom_up(&mut self, enable: bool) {
        self.bottom_up = enable;
    }

    /// `movable_node` on the command line: allocations then skip HOTPLUG regions
    /// unless asked for them.
    pub fn set_movable_node(&mut self, enable: bool) {
        self.movable_node = enable;
    }

    /// `memblock_allow_resize`: from now on a full table doubles (up to `N`), taking
    /// the memory for its new array from memblock.
    pub fn allow_resize(&mut self) {
        self.can_resize = true;
    }

    /// Whether [`allow_resize`](Self::allow_resize) was called.
    pub fn can_resize(&self) -> bool {
        self.can_resize
    }

    /// `sizeof(struct memblock_region)` for this build: [`REGION_BYTES`] or
    /// [`REGION_BYTES_32`].
    pub fn region_bytes(&self) -> u64 {
        if self.phys_addr_max > PHYS_ADDR_MAX_32 {
            REGION_BYTES
        } else {
            REGION_BYTES_32
        }
    }

    /// A table by kind.
    pub fn table(&self, kind: TableKind) -> &RegionTable<N> {
        match kind {
            TableKind::Memory => &self.memory,
            TableKind::Reserved => &self.reserved,
        }
    }

    fn table_mut(&mut self, kind: TableKind) -> &mut RegionTable<N> {
        match kind {
            TableKind::Memory => &mut self.memory,
            TableKind::Reserved => &mut self.reserved,
        }
    }

    /// `memblock_cap_size`: `min(size, PHYS_ADDR_MAX - base)` (base <= max).
    fn cap_size(&self, base: PhysAddr, size: u64) -> u64 {
        core::cmp::min(size, self.phys_addr_max - base)
    }

    // -------------------------------------------------------------------- queries

    /// `memblock_start_of_DRAM`: base of the first memory region (0 if none).
    pub fn start_of_dram(&self) -> PhysAddr {
        self.memory.regions.first().map_or(0, |r| r.base)
    }

    /// `memblock_end_of_DRAM`: end (exclusive) of the last memory region (0 if none).
    pub fn end_of_dram(&self) -> PhysAddr {
        self.memory.regions.last().map_or(0, |r| r.end())
    }

    /// `memblock_phys_mem_size`.
    pub fn phys_mem_size(&self) -> u64 {
        self.memory.total_size
    }

    /// `memblock_reserved_size`.
    pub fn reserved_size(&self) -> u64 {
        self.reserved.total_size
    }

    /// `memblock_is_reserved`.
    pub fn is_reserved(&self, addr: PhysAddr) -> bool {
        self.reserved.search(addr).is_some()
    }

    /// `memblock_is_memory`.
    pub fn is_memory(&self, addr: PhysAddr) -> bool {
        self.memory.search(addr).is_some()
    }

    /// `memblock_is_map_memory`: memory and not NOMAP.
    pub fn is_map_memory(&self, addr: PhysAddr) -> bool {
        self.memory
            .search(addr)
            .is_some_and(|i| !self.memory.regions[i].flags.contains(RegionFlags::NOMAP))
    }

    /// `memblock_is_region_memory`: `[base, base + size)` lies inside one memory
    /// region.
    pub fn is_region_memory(&self, base: PhysAddr, size: u64) -> bool {
        if base > self.phys_addr_max {
            return false;
        }
        let size = self.cap_size(base, size);
        self.memory
            .search(base)
            .is_some_and(|i| base + size <= self.memory.regions[i].end())
    }

    /// `memblock_is_region_reserved`: `[base, base + size)` overlaps a reservation.
    pub fn is_region_reserved(&self, base: PhysAddr, size: u64) -> bool {
        if base > self.phys_addr_max {
            return false;
        }
        self.reserved.overlaps(base, self.cap_size(base, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display() {
        let e = MemblockError::TableFull {
            table: TableKind::Reserved,
            capacity: 4,
        };
        assert_eq!(
            alloc::format!("{e}"),
            "memblock.reserved is full (4 regions) and cannot be resized"
        );
    }
}
