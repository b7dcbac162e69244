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

use core::fmt;
use core::panic::Location;

use crate::addr::{align_down, checked_align_up, page_align, MemRange, PhysAddr, PAGE_SIZE};
use crate::storage::{PageStorage, StorageError};

mod exact_nid;
mod trim;

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

/// A physical address printed like Linux's `%pa`: `0x` and zero-padded hex, 8 digits
/// for a 32-bit `phys_addr_t`, 16 for a 64-bit one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pa {
    /// The value.
    pub addr: PhysAddr,
    /// True for a 64-bit `phys_addr_t` (16 digits).
    pub wide: bool,
}

impl fmt::Display for Pa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wide {
            write!(f, "{:#018x}", self.addr)
        } else {
            write!(f, "{:#010x}", self.addr & 0xffff_ffff)
        }
    }
}

/// A caller location printed as `file:line` (stands in for Linux's `%pS` of
/// `_RET_IP_`).
struct Caller(&'static Location<'static>);

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0.file(), self.0.line())
    }
}

/// The location of this very line: used as the "caller" of memblock's internal
/// `memblock_reserve`/`memblock_phys_free` calls, as Linux prints its own function.
fn internal_caller() -> &'static Location<'static> {
    Location::caller()
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

    /// `memblock_insert_region`. The caller has checked the capacity.
    fn insert_region(&mut self, idx: usize, r: Region) {
        if self.regions.insert(idx, r).is_ok() {
            self.total_size += r.size;
        }
    }

    /// `memblock_remove_region`.
    fn remove_region(&mut self, idx: usize) {
        if idx < self.regions.len() {
            let r = self.regions.remove(idx);
            self.total_size -= r.size;
        }
    }

    /// `memblock_merge_regions`.
    fn merge(&mut self) {
        let mut i = 0;
        while i + 1 < self.regions.len() {
            let this = self.regions[i];
            let next = self.regions[i + 1];
            if this.end() != next.base || this.nid != next.nid || this.flags != next.flags {
                i += 1;
                continue;
            }
            self.regions[i].size += next.size;
            self.regions.remove(i + 1);
        }
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

/// One free range: `(base, end, nid)` with `end` exclusive.
pub type FreeRange = (PhysAddr, PhysAddr, i32);

/// Iterator over the free ranges (`memory` minus `reserved`), in ascending order
/// (`__next_mem_range`) or descending order (`__next_mem_range_rev`).
#[derive(Clone, Debug)]
pub struct FreeRanges<'a, const N: usize> {
    mb: &'a Memblock<N>,
    nid: i32,
    flags: RegionFlags,
    rev: bool,
    idx_a: isize,
    idx_b: isize,
}

impl<const N: usize> Iterator for FreeRanges<'_, N> {
    type Item = FreeRange;

    fn next(&mut self) -> Option<FreeRange> {
        if self.rev {
            self.next_rev()
        } else {
            self.next_fwd()
        }
    }
}

impl<const N: usize> FreeRanges<'_, N> {
    /// Start and end of the gap before reserved region `idx_b` (the last gap ends at
    /// the top of the address space).
    fn gap(&self, idx_b: usize) -> (PhysAddr, PhysAddr) {
        let res = self.mb.reserved.regions();
        let start = if idx_b > 0 { res[idx_b - 1].end() } else { 0 };
        let end = if idx_b < res.len() {
            res[idx_b].base
        } else {
            u64::MAX
        };
        (start, end)
    }

    fn next_fwd(&mut self) -> Option<FreeRange> {
        let mem = self.mb.memory.regions();
        let nres = self.mb.reserved.regions().len() as isize;
        while (self.idx_a as usize) < mem.len() {
            let m = mem[self.idx_a as usize];
            if self.mb.should_skip_region(&m, self.nid, self.flags) {
                self.idx_a += 1;
                continue;
            }
            let (m_start, m_end) = (m.base, m.end());
            while self.idx_b < nres + 1 {
                let (r_start, r_end) = self.gap(self.idx_b as usize);
                if r_start >= m_end {
                    break;
                }
                if m_start < r_end {
                    let out = (
                        core::cmp::max(m_start, r_start),
                        core::cmp::min(m_end, r_end),
                        m.nid,
                    );
                    if m_end <= r_end {
                        self.idx_a += 1;
                    } else {
                        self.idx_b += 1;
                    }
                    return Some(out);
                }
                self.idx_b += 1;
            }
            self.idx_a += 1;
        }
        None
    }

    fn next_rev(&mut self) -> Option<FreeRange> {
        let mem = self.mb.memory.regions();
        while self.idx_a >= 0 {
            let m = mem[self.idx_a as usize];
            if self.mb.should_skip_region(&m, self.nid, self.flags) {
                self.idx_a -= 1;
                continue;
            }
            let (m_start, m_end) = (m.base, m.end());
            while self.idx_b >= 0 {
                let (r_start, r_end) = self.gap(self.idx_b as usize);
                if r_end <= m_start {
                    break;
                }
                if m_end > r_start {
                    let out = (
                        core::cmp::max(m_start, r_start),
                        core::cmp::min(m_end, r_end),
                        m.nid,
                    );
                    if m_start >= r_start {
                        self.idx_a -= 1;
                    } else {
                        self.idx_b -= 1;
                    }
                    return Some(out);
                }
                self.idx_b -= 1;
            }
            self.idx_a -= 1;
        }
        None
    }
}

/// Buffers text and logs it line by line with `zk_info!` (for [`Memblock::dump_all`]).
struct LineLogger {
    line: heapless::String<160>,
}

impl fmt::Write for LineLogger {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '\n' {
                zk_info!("{}", self.line);
                self.line.clear();
            } else {
                // An over-long line is truncated rather than failing the dump.
                let _ = self.line.push(c);
            }
        }
        Ok(())
    }
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

    /// Format an address like `%pa` for this build's `phys_addr_t`.
    pub fn pa(&self, addr: PhysAddr) -> Pa {
        Pa {
            addr,
            wide: self.phys_addr_max > PHYS_ADDR_MAX_32,
        }
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

    fn dbg(&self, args: fmt::Arguments<'_>) {
        if self.debug {
            zk_info!("{}", args);
        }
    }

    fn dbg_range(&self, func: &str, base: PhysAddr, size: u64, loc: &'static Location<'static>) {
        if self.debug {
            let end = base.wrapping_add(size).wrapping_sub(1);
            zk_info!(
                "{}: [{}-{}] {}",
                func,
                self.pa(base),
                self.pa(end),
                Caller(loc)
            );
        }
    }

    /// `memblock_cap_size`: `min(size, PHYS_ADDR_MAX - base)` (base <= max).
    fn cap_size(&self, base: PhysAddr, size: u64) -> u64 {
        core::cmp::min(size, self.phys_addr_max - base)
    }

    // ------------------------------------------------------------ table primitives

    /// Count how many new regions inserting `[base, end)` needs (the counting pass of
    /// `memblock_add_range`).
    fn count_new(t: &RegionTable<N>, base: PhysAddr, end: PhysAddr) -> usize {
        let mut b = base;
        let mut nr_new = 0;
        for r in t.regions() {
            if r.base >= end {
                break;
            }
            if r.end() <= b {
                continue;
            }
            if r.base > b {
                nr_new += 1;
            }
            b = core::cmp::min(r.end(), end);
        }
        if b < end {
            nr_new += 1;
        }
        nr_new
    }

    /// `memblock_add_range`.
    fn add_range(
        &mut self,
        kind: TableKind,
        base: PhysAddr,
        size: u64,
        nid: i32,
        flags: RegionFlags,
    ) -> Result<(), MemblockError> {
        if size == 0 {
            return Ok(());
        }
        if base > self.phys_addr_max {
            zk_warn!(
                "memblock: {} region at {:#x} is above PHYS_ADDR_MAX {}, ignored",
                kind.name(),
                base,
                self.pa(self.phys_addr_max)
            );
            return Ok(());
        }
        let size = self.cap_size(base, size);
        if size == 0 {
            return Ok(());
        }
        let end = base + size;
        loop {
            let t = self.table(kind);
            if t.regions.is_empty() {
                if t.max >= 1 {
                    self.table_mut(kind).insert_region(
                        0,
                        Region {
                            base,
                            size,
                            flags,
                            nid,
                        },
                    );
                    return Ok(());
                }
            } else {
                let nr_new = Self::count_new(t, base, end);
                if nr_new == 0 {
                    return Ok(());
                }
                if t.regions.len() + nr_new <= t.max {
                    break;
                }
            }
            // Doubling may change the reserved table: recount afterwards.
            self.double_array(kind, base, size)?;
        }

        let t = self.table_mut(kind);
        let mut b = base;
        let mut idx = 0;
        while idx < t.regions.len() {
            let r = t.regions[idx];
            if r.base >= end {
                break;
            }
            if r.end() <= b {
                idx += 1;
                continue;
            }
            if r.base > b {
                t.insert_region(
                    idx,
                    Region {
                        base: b,
                        size: r.base - b,
                        flags,
                        nid,
                    },
                );
                idx += 1;
            }
            b = core::cmp::min(r.end(), end);
            idx += 1;
        }
        if b < end {
            t.insert_region(
                idx,
                Region {
                    base: b,
                    size: end - b,
                    flags,
                    nid,
                },
            );
        }
        t.merge();
        Ok(())
    }

    /// `memblock_isolate_range`: split regions so that `[base, base + size)` is made of
    /// whole regions; returns their index range.
    fn isolate_range(
        &mut self,
        kind: TableKind,
        base: PhysAddr,
        size: u64,
    ) -> Result<(usize, usize), MemblockError> {
        if size == 0 || base > self.phys_addr_max {
            return Ok((0, 0));
        }
        let size = self.cap_size(base, size);
        let end = base + size;
        // At most two more regions are created.
        while self.table(kind).linux_cnt() + 2 > self.table(kind).max {
            self.double_array(kind, base, size)?;
        }
        let t = self.table_mut(kind);
        let (mut start_rgn, mut end_rgn) = (0, 0);
        let mut idx = 0;
        while idx < t.regions.len() {
            let r = t.regions[idx];
            let (rbase, rend) = (r.base, r.end());
            if rbase >= end {
                break;
            }
            if rend <= base {
                idx += 1;
                continue;
            }
            if rbase < base {
                // Intersects from below: split, then look at the top half.
                t.regions[idx].base = base;
                t.regions[idx].size -= base - rbase;
                t.total_size -= base - rbase;
                t.insert_region(
                    idx,
                    Region {
                        base: rbase,
                        size: base - rbase,
                        ..r
                    },
                );
                idx += 1;
            } else if rend > end {
                // Intersects from above: split, then redo the bottom half.
                t.regions[idx].base = end;
                t.regions[idx].size -= end - rbase;
                t.total_size -= end - rbase;
                t.insert_region(
                    idx,
                    Region {
                        base: rbase,
                        size: end - rbase,
                        ..r
                    },
                );
            } else {
                if end_rgn == 0 {
                    start_rgn = idx;
                }
                end_rgn = idx + 1;
                idx += 1;
            }
        }
        Ok((start_rgn, end_rgn))
    }

    /// `memblock_remove_range`.
    fn remove_range(
        &mut self,
        kind: TableKind,
        base: PhysAddr,
        size: u64,
    ) -> Result<(), MemblockError> {
        let (s, e) = self.isolate_range(kind, base, size)?;
        let t = self.table_mut(kind);
        for i in (s..e).rev() {
            t.remove_region(i);
        }
        Ok(())
    }

    /// `memblock_setclr_flag` on `memory`.
    fn setclr_flag(
        &mut self,
        base: PhysAddr,
        size: u64,
        set: bool,
        flag: RegionFlags,
    ) -> Result<(), MemblockError> {
        let (s, e) = self.isolate_range(TableKind::Memory, base, size)?;
        let t = &mut self.memory;
        for r in &mut t.regions[s..e] {
            r.flags = if set {
                r.flags.union(flag)
            } else {
                r.flags.without(flag)
            };
        }
        t.merge();
        Ok(())
    }

    /// `memblock_double_array`: grow a full table, finding and reserving memory for
    /// the new array (page aligned, `new_max * region_bytes()` bytes). For the reserved
    /// table the range being added (`area_base`, `area_size`) is avoided: the search
    /// runs above it, then below it. The previous dynamically placed array (if any) is
    /// freed.
    ///
    /// Atomic: everything that can fail (finding the array, room in memblock.reserved
    /// to free the old array and reserve the new one) is settled before either table
    /// changes, so an error leaves both as they were (Linux `BUG_ON`s instead). When
    /// memblock.memory doubles while memblock.reserved is full too, reserved is grown
    /// first, its own new array kept clear of memory's (Linux grows it later, while
    /// freeing memory's old array).
    fn double_array(
        &mut self,
        kind: TableKind,
        area_base: PhysAddr,
        area_size: u64,
    ) -> Result<(), MemblockError> {
        let t = self.table(kind);
        let old_max = t.max;
        let full = MemblockError::TableFull {
            table: kind,
            capacity: old_max,
        };
        if !self.can_resize || old_max >= N {
            return Err(full);
        }
        let new_max = core::cmp::min(core::cmp::max(old_max * 2, 1), N);
        let new_size = new_max as u64 * self.region_bytes();
        let new_alloc_size = page_align(new_size);
        let (area_base, area_size) = if kind == TableKind::Reserved {
            (area_base, area_size)
        } else {
            (0, 0)
        };
        let limit = self.current_limit;
        let mut addr = self.find_in_range(
            area_base.saturating_add(area_size),
            limit,
            new_alloc_size,
            PAGE_SIZE,
        );
        if addr.is_none() && area_size != 0 {
            addr = self.find_in_range(
                0,
                core::cmp::min(area_base, limit),
                new_alloc_size,
                PAGE_SIZE,
            );
        }
        let Some(addr) = addr else {
            zk_error!(
                "memblock: Failed to double {} array from {} to {} entries !",
                kind.name(),
                old_max,
                new_max
            );
            return Err(full);
        };
        let old_array = t.array;
        // Room in memblock.reserved: freeing the old array may split a region (the
        // isolation step wants two spare slots), the new array is free memory (one
        // new region).
        let spare = if old_array.is_some() { 2 } else { 1 };
        if kind == TableKind::Reserved {
            if self.reserved.linux_cnt() + spare > new_max {
                return Err(full);
            }
        } else {
            while self.reserved.linux_cnt() + spare > self.reserved.max {
                self.double_array(TableKind::Reserved, addr, new_alloc_size)?;
            }
        }
        self.dbg(format_args!(
            "memblock: {} is doubled to {} at [{}-{}]",
            kind.name(),
            new_max,
            self.pa(addr),
            self.pa(addr + new_size - 1)
        ));
        let t = self.table_mut(kind);
        t.max = new_max;
        t.array = Some(MemRange::new(addr, new_alloc_size));
        let here = internal_caller();
        if let Some(old) = old_array {
            self.dbg_range("memblock_phys_free", old.base, old.size, here);
            self.remove_range(TableKind::Reserved, old.base, old.size)?;
        }
        self.dbg_range("memblock_reserve", addr, new_alloc_size, here);
        self.add_range(
            TableKind::Reserved,
            addr,
            new_alloc_size,
            0,
            RegionFlags::NONE,
        )
    }

    // ------------------------------------------------------------- public mutators

    /// `memblock_add`: add `[base, base + size)` to `memory`.
    #[track_caller]
    pub fn add(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.dbg_range("memblock_add", base, size, Location::caller());
        self.add_range(TableKind::Memory, base, size, 0, RegionFlags::NONE)
    }

    /// `memblock_add_node`: add memory with a node id and flags.
    #[track_caller]
    pub fn add_node(
        &mut self,
        base: PhysAddr,
        size: u64,
        nid: i32,
        flags: RegionFlags,
    ) -> Result<(), MemblockError> {
        if self.debug {
            let end = base.wrapping_add(size).wrapping_sub(1);
            zk_info!(
                "memblock_add_node: [{}-{}] nid={} flags={:x} {}",
                self.pa(base),
                self.pa(end),
                nid,
                flags.0,
                Caller(Location::caller())
            );
        }
        self.add_range(TableKind::Memory, base, size, nid, flags)
    }

    /// `memblock_remove`: remove `[base, base + size)` from `memory`.
    #[track_caller]
    pub fn remove(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.dbg_range("memblock_remove", base, size, Location::caller());
        self.remove_range(TableKind::Memory, base, size)
    }

    /// `memblock_reserve`: add `[base, base + size)` to `reserved`.
    #[track_caller]
    pub fn reserve(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.dbg_range("memblock_reserve", base, size, Location::caller());
        self.add_range(TableKind::Reserved, base, size, 0, RegionFlags::NONE)
    }

    /// `memblock_phys_free`: remove `[base, base + size)` from `reserved`.
    #[track_caller]
    pub fn phys_free(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.dbg_range("memblock_phys_free", base, size, Location::caller());
        self.remove_range(TableKind::Reserved, base, size)
    }

    /// `memblock_mark_nomap`: exclude the range from the direct mapping and from
    /// allocation.
    #[track_caller]
    pub fn mark_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, true, RegionFlags::NOMAP)
    }

    /// `memblock_clear_nomap`.
    #[track_caller]
    pub fn clear_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, false, RegionFlags::NOMAP)
    }

    /// `memblock_mark_mirror`. From then on allocations prefer mirrored memory
    /// (`system_has_some_mirror`, sticky as in Linux). Unlike Linux this does not
    /// depend on `kernelcore=mirror`.
    #[track_caller]
    pub fn mark_mirror(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.has_some_mirror = true;
        self.setclr_flag(base, size, true, RegionFlags::MIRROR)
    }

    /// `memblock_mark_hotplug`.
    #[track_caller]
    pub fn mark_hotplug(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, true, RegionFlags::HOTPLUG)
    }

    /// `memblock_clear_hotplug`.
    #[track_caller]
    pub fn clear_hotplug(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, false, RegionFlags::HOTPLUG)
    }

    /// `memblock_set_node`: give the regions of table `kind` inside
    /// `[base, base + size)` node `nid` (NUMA semantics: the range is isolated, its
    /// regions get `nid`, then regions are merged again). Linux's x86 and arm64 NUMA
    /// code calls it on `memory` and on `reserved`.
    #[track_caller]
    pub fn set_node(
        &mut self,
        base: PhysAddr,
        size: u64,
        kind: TableKind,
        nid: i32,
    ) -> Result<(), MemblockError> {
        let (s, e) = self.isolate_range(kind, base, size)?;
        let t = self.table_mut(kind);
        for r in &mut t.regions[s..e] {
            r.nid = nid;
        }
        t.merge();
        Ok(())
    }

    /// `memblock_enforce_memory_limit` (`mem=`): keep only the first `limit` bytes of
    /// memory; everything above the resulting address is removed from `memory` and
    /// from `reserved`. `limit == 0`, or a limit at least the memory size, is a no-op.
    #[track_caller]
    pub fn enforce_memory_limit(&mut self, limit: u64) -> Result<(), MemblockError> {
        if limit == 0 {
            return Ok(());
        }
        let Some(max_addr) = self.find_max_addr(limit) else {
            return Ok(());
        };
        let pmax = self.phys_addr_max;
        self.remove_range(TableKind::Memory, max_addr, pmax)?;
        self.remove_range(TableKind::Reserved, max_addr, pmax)
    }

    /// `memblock_mem_limit_remove_map`: like [`enforce_memory_limit`](Self::enforce_memory_limit)
    /// but NOMAP memory regions are kept (via [`cap_memory_range`](Self::cap_memory_range)).
    #[track_caller]
    pub fn mem_limit_remove_map(&mut self, limit: u64) -> Result<(), MemblockError> {
        if limit == 0 {
            return Ok(());
        }
        let Some(max_addr) = self.find_max_addr(limit) else {
            return Ok(());
        };
        self.cap_memory_range(0, max_addr)
    }

    /// `memblock_cap_memory_range`: drop every non-NOMAP memory region outside
    /// `[base, base + size)`, and truncate `reserved` to that range (as Linux does).
    #[track_caller]
    pub fn cap_memory_range(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        if size == 0 {
            return Ok(());
        }
        if self.memory.total_size == 0 {
            zk_warn!("memblock_cap_memory_range: No memory registered yet");
            return Ok(());
        }
        let (s, e) = self.isolate_range(TableKind::Memory, base, size)?;
        let t = &mut self.memory;
        let mut i = t.regions.len();
        while i > e {
            i -= 1;
            if !t.regions[i].flags.contains(RegionFlags::NOMAP) {
                t.remove_region(i);
            }
        }
        let mut i = s;
        while i > 0 {
            i -= 1;
            if !t.regions[i].flags.contains(RegionFlags::NOMAP) {
                t.remove_region(i);
            }
        }
        let pmax = self.phys_addr_max;
        self.remove_range(TableKind::Reserved, 0, base)?;
        self.remove_range(TableKind::Reserved, base.saturating_add(size), pmax)
    }

    /// `__find_max_addr`: the address below which memory totals `limit` bytes, or
    /// `None` when there is less memory than that.
    fn find_max_addr(&self, mut limit: u64) -> Option<PhysAddr> {
        for r in self.memory.regions() {
            if limit <= r.size {
                return Some(r.base + limit);
            }
            limit -= r.size;
        }
        None
    }

    // ------------------------------------------------------------------- searching

    /// `should_skip_region` for `memory`.
    fn should_skip_region(&self, m: &Region, nid: i32, flags: RegionFlags) -> bool {
        if nid != NUMA_NO_NODE && nid != m.nid {
            return true;
        }
        if self.movable_node
            && m.flags.contains(RegionFlags::HOTPLUG)
            && !flags.contains(RegionFlags::HOTPLUG)
        {
            return true;
        }
        if flags.contains(RegionFlags::MIRROR) && !m.flags.contains(RegionFlags::MIRROR) {
            return true;
        }
        if !flags.contains(RegionFlags::NOMAP) && m.flags.contains(RegionFlags::NOMAP) {
            return true;
        }
        if !flags.contains(RegionFlags::DRIVER_MANAGED)
            && m.flags.contains(RegionFlags::DRIVER_MANAGED)
        {
            return true;
        }
        false
    }

    /// `for_each_free_mem_range`: free ranges (memory not reserved) in ascending
    /// order, as `(base, end, nid)`. Memory regions of another node (unless `nid` is
    /// [`NUMA_NO_NODE`]), non-mirrored ones when `flags` has MIRROR, NOMAP and
    /// DRIVER_MANAGED ones unless `flags` asks for them are skipped.
    #[doc(alias = "for_each_free_mem_range")]
    #[doc(alias = "for_each_free_range")]
    pub fn free_ranges(&self, nid: i32, flags: RegionFlags) -> FreeRanges<'_, N> {
        FreeRanges {
            mb: self,
            nid,
            flags,
            rev: false,
            idx_a: 0,
            idx_b: 0,
        }
    }

    /// `for_each_free_mem_range_reverse`: like [`free_ranges`](Self::free_ranges) in
    /// descending order.
    #[doc(alias = "for_each_free_mem_range_reverse")]
    pub fn free_ranges_rev(&self, nid: i32, flags: RegionFlags) -> FreeRanges<'_, N> {
        FreeRanges {
            mb: self,
            nid,
            flags,
            rev: true,
            idx_a: self.memory.regions.len() as isize - 1,
            idx_b: self.reserved.regions.len() as isize,
        }
    }

    /// `choose_memblock_flags`.
    fn choose_flags(&self) -> RegionFlags {
        if self.has_some_mirror {
            RegionFlags::MIRROR
        } else {
            RegionFlags::NONE
        }
    }

    /// `memblock_find_in_range_node`: find (without reserving) `size` bytes aligned to
    /// `align` inside `[start, end)`. `end == MEMBLOCK_ALLOC_ACCESSIBLE` means the
    /// current limit; the first page is never returned. Direction follows
    /// [`bottom_up`](Self::bottom_up). `align` 0 is treated as 1; a non-power-of-two
    /// alignment finds nothing.
    pub fn find_in_range_node(
        &self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
        nid: i32,
        flags: RegionFlags,
    ) -> Option<PhysAddr> {
        let align = if align == 0 { 1 } else { align };
        if !align.is_power_of_two() {
            return None;
        }
        let end = if end == MEMBLOCK_ALLOC_ACCESSIBLE {
            self.current_limit
        } else {
            end
        };
        let start = core::cmp::max(start, PAGE_SIZE);
        let end = core::cmp::max(start, end);
        let clamp = |x: PhysAddr| x.clamp(start, end);
        if self.bottom_up {
            for (s, e, _) in self.free_ranges(nid, flags) {
                let (s, e) = (clamp(s), clamp(e));
                // Rounding up past the top of the address space leaves no candidate
                // (a saturated round-up would lie below `s`, outside the range).
                let Some(cand) = checked_align_up(s, align) else {
                    continue;
                };
                if cand < e && e - cand >= size {
                    return Some(cand);
                }
            }
        } else {
            for (s, e, _) in self.free_ranges_rev(nid, flags) {
                let (s, e) = (clamp(s), clamp(e));
                if e < size {
                    continue;
                }
                let cand = align_down(e - size, align);
                if cand >= s {
                    return Some(cand);
                }
            }
        }
        None
    }

    /// `memblock_find_in_range`: any node, preferring mirrored memory if there is
    /// some, falling back to any memory.
    pub fn find_in_range(
        &self,
        start: PhysAddr,
        end: PhysAddr,
        size: u64,
        align: u64,
    ) -> Option<PhysAddr> {
        let mut flags = self.choose_flags();
        loop {
            let r = self.find_in_range_node(size, align, start, end, NUMA_NO_NODE, flags);
            if r.is_none() && flags.contains(RegionFlags::MIRROR) {
                zk_warn!(
                    "Could not allocate {} bytes of mirrored memory",
                    self.pa(size)
                );
                flags = flags.without(RegionFlags::MIRROR);
                continue;
            }
            return r;
        }
    }

    // ------------------------------------------------------------------ allocation

    /// `memblock_alloc_range_nid`: find and reserve `size` bytes in `[start, end)`.
    /// `align` 0 means [`SMP_CACHE_BYTES`] (with a warning). Falls back to any node
    /// unless `exact_nid`, and from mirrored to any memory. `None` on any failure (no
    /// room, or a reserved table that cannot take one more region).
    #[track_caller]
    pub fn alloc_range_nid(
        &mut self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
        nid: i32,
        exact_nid: bool,
    ) -> Option<PhysAddr> {
        self.try_alloc_range_nid(size, align, start, end, nid, exact_nid)
            .ok()
            .flatten()
    }

    /// [`alloc_range_nid`](Self::alloc_range_nid) telling the two failures apart:
    /// `Ok(None)` when no free range fits, `Err` when one was found but reserving it
    /// failed (memblock.reserved full and not resizable: [`MemblockError::TableFull`]).
    /// A found range is free, so any other range would fail the same way: there is
    /// no fallback after a failed reservation.
    fn try_alloc_range_nid(
        &mut self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
        nid: i32,
        exact_nid: bool,
    ) -> Result<Option<PhysAddr>, MemblockError> {
        let mut flags = self.choose_flags();
        let align = if align == 0 {
            zk_warn!(
                "memblock: allocation of {size} bytes with alignment 0, using SMP_CACHE_BYTES"
            );
            SMP_CACHE_BYTES
        } else {
            align
        };
        if !align.is_power_of_two() {
            return Ok(None);
        }
        let here = internal_caller();
        loop {
            if let Some(found) = self.find_in_range_node(size, align, start, end, nid, flags) {
                self.reserve_at(found, size, here)?;
                return Ok(Some(found));
            }
            if nid != NUMA_NO_NODE && !exact_nid {
                if let Some(found) =
                    self.find_in_range_node(size, align, start, end, NUMA_NO_NODE, flags)
                {
                    self.reserve_at(found, size, here)?;
                    return Ok(Some(found));
                }
            }
            if flags.contains(RegionFlags::MIRROR) {
                flags = flags.without(RegionFlags::MIRROR);
                zk_warn!(
                    "Could not allocate {} bytes of mirrored memory",
                    self.pa(size)
                );
                continue;
            }
            return Ok(None);
        }
    }

    fn reserve_at(
        &mut self,
        base: PhysAddr,
        size: u64,
        loc: &'static Location<'static>,
    ) -> Result<(), MemblockError> {
        self.dbg_range("memblock_reserve", base, size, loc);
        self.add_range(TableKind::Reserved, base, size, 0, RegionFlags::NONE)
    }

    /// `memblock_alloc_internal`: clamp `max_addr` to the current limit, try
    /// `[min_addr, max_addr)`, then `[0, max_addr)`. [`MemblockError::NoSpace`] when
    /// nothing fits, [`MemblockError::TableFull`] when memblock.reserved cannot
    /// record the allocation.
    fn alloc_internal(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
        exact_nid: bool,
    ) -> Result<PhysAddr, MemblockError> {
        let no_space = MemblockError::NoSpace {
            size,
            align,
            min_addr,
            max_addr,
            nid,
        };
        let max_addr = core::cmp::min(max_addr, self.current_limit);
        let mut found =
            self.try_alloc_range_nid(size, align, min_addr, max_addr, nid, exact_nid)?;
        if found.is_none() && min_addr != 0 {
            found = self.try_alloc_range_nid(size, align, 0, max_addr, nid, exact_nid)?;
        }
        found.ok_or(no_space)
    }

    #[allow(clippy::too_many_arguments)]
    fn dbg_alloc(
        &self,
        func: &str,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
        loc: &'static Location<'static>,
    ) {
        if self.debug {
            zk_info!(
                "{}: {} bytes align={:#x} nid={} from={} max_addr={} {}",
                func,
                size,
                align,
                nid,
                self.pa(min_addr),
                self.pa(max_addr),
                Caller(loc)
            );
        }
    }

    fn check_align(align: u64) -> Result<(), MemblockError> {
        if align == 0 || align.is_power_of_two() {
            Ok(())
        } else {
            Err(MemblockError::BadAlign { align })
        }
    }

    /// `memblock_alloc_try_nid_raw`: allocate without zeroing. `max_addr` of
    /// [`MEMBLOCK_ALLOC_ACCESSIBLE`] means the current limit; if nothing fits above
    /// `min_addr`, the allocation is retried from 0.
    #[track_caller]
    pub fn alloc_try_nid_raw(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Result<PhysAddr, MemblockError> {
        self.dbg_alloc(
            "memblock_alloc_try_nid_raw",
            size,
            align,
            min_addr,
            max_addr,
            nid,
            Location::caller(),
        );
        Self::check_align(align)?;
        self.alloc_internal(size, align, min_addr, max_addr, nid, false)
    }

    /// `memblock_alloc_try_nid`: like [`alloc_try_nid_raw`](Self::alloc_try_nid_raw),
    /// then zero the memory through `storage`. If zeroing fails the memory stays
    /// reserved and [`MemblockError::Storage`] is returned.
    #[track_caller]
    pub fn alloc_try_nid<S: PageStorage>(
        &mut self,
        storage: &mut S,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Result<PhysAddr, MemblockError> {
        self.dbg_alloc(
            "memblock_alloc_try_nid",
            size,
            align,
            min_addr,
            max_addr,
            nid,
            Location::caller(),
        );
        Self::check_align(align)?;
        let base = self.alloc_internal(size, align, min_addr, max_addr, nid, false)?;
        storage.zero(base, size)?;
        Ok(base)
    }

    /// [`alloc_try_nid`](Self::alloc_try_nid) returning `None` on any failure (the
    /// old `memblock_alloc_try_nid_nopanic`).
    #[track_caller]
    pub fn alloc_try_nid_nopanic<S: PageStorage>(
        &mut self,
        storage: &mut S,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Option<PhysAddr> {
        self.alloc_try_nid(storage, size, align, min_addr, max_addr, nid)
            .ok()
    }

    /// `memblock_alloc`: zeroed, anywhere below the current limit, any node.
    #[track_caller]
    pub fn alloc<S: PageStorage>(
        &mut self,
        storage: &mut S,
        size: u64,
        align: u64,
    ) -> Result<PhysAddr, MemblockError> {
        self.alloc_try_nid(
            storage,
            size,
            align,
            MEMBLOCK_LOW_LIMIT,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            NUMA_NO_NODE,
        )
    }

    /// `memblock_alloc_raw`: not zeroed, anywhere below the current limit.
    #[track_caller]
    pub fn alloc_raw(&mut self, size: u64, align: u64) -> Result<PhysAddr, MemblockError> {
        self.alloc_try_nid_raw(
            size,
            align,
            MEMBLOCK_LOW_LIMIT,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            NUMA_NO_NODE,
        )
    }

    /// `memblock_phys_alloc_range`: reserve `size` bytes in `[start, end)` (no
    /// fallback below `start`, no zeroing).
    #[track_caller]
    pub fn phys_alloc_range(
        &mut self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
    ) -> Option<PhysAddr> {
        if self.debug {
            zk_info!(
                "memblock_phys_alloc_range: {} bytes align={:#x} from={} max_addr={} {}",
                size,
                align,
                self.pa(start),
                self.pa(end),
                Caller(Location::caller())
            );
        }
        self.alloc_range_nid(size, align, start, end, NUMA_NO_NODE, false)
    }

    /// `memblock_phys_alloc`: anywhere below the current limit.
    #[track_caller]
    pub fn phys_alloc(&mut self, size: u64, align: u64) -> Option<PhysAddr> {
        self.phys_alloc_range(size, align, 0, MEMBLOCK_ALLOC_ACCESSIBLE)
    }

    /// `memblock_phys_alloc_try_nid`: below the current limit, preferring `nid`.
    #[track_caller]
    pub fn phys_alloc_try_nid(&mut self, size: u64, align: u64, nid: i32) -> Option<PhysAddr> {
        self.alloc_range_nid(size, align, 0, MEMBLOCK_ALLOC_ACCESSIBLE, nid, false)
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

    /// The memory regions as ranges.
    pub fn memory_ranges(&self) -> impl Iterator<Item = MemRange> + '_ {
        self.memory
            .regions()
            .iter()
            .map(|r| MemRange::new(r.base, r.size))
    }

    /// The reserved regions as ranges.
    pub fn reserved_ranges(&self) -> impl Iterator<Item = MemRange> + '_ {
        self.reserved
            .regions()
            .iter()
            .map(|r| MemRange::new(r.base, r.size))
    }

    // ----------------------------------------------------------------------- dump

    fn dump_table(&self, t: &RegionTable<N>, w: &mut dyn fmt::Write) -> fmt::Result {
        let name = t.name();
        writeln!(w, " {}.cnt  = {:#x}", name, t.linux_cnt())?;
        // Linux keeps a zero-sized dummy region in an empty table.
        let dummy = [Region {
            base: 0,
            size: 0,
            flags: RegionFlags::NONE,
            nid: 0,
        }];
        let regions: &[Region] = if t.regions.is_empty() {
            &dummy
        } else {
            &t.regions
        };
        for (i, r) in regions.iter().enumerate() {
            let end = r.base.wrapping_add(r.size).wrapping_sub(1);
            writeln!(
                w,
                " {}[{:#x}]\t[{}-{}], {} bytes flags: {:#x}",
                name,
                i,
                self.pa(r.base),
                self.pa(end),
                self.pa(r.size),
                r.flags.0
            )?;
        }
        Ok(())
    }

    /// `__memblock_dump_all`, written to `w` (every line newline-terminated).
    pub fn dump(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(w, "MEMBLOCK configuration:")?;
        writeln!(
            w,
            " memory size = {} reserved size = {}",
            self.pa(self.memory.total_size),
            self.pa(self.reserved.total_size)
        )?;
        self.dump_table(&self.memory, w)?;
        self.dump_table(&self.reserved, w)
    }

    /// `memblock_dump_all`: when debug is on, log [`dump`](Self::dump) line by line
    /// with `zk_info!`.
    pub fn dump_all(&self) {
        if self.debug {
            let mut l = LineLogger {
                line: heapless::String::new(),
            };
            let _ = self.dump(&mut l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    type Mb = Memblock<16>;

    #[test]
    fn add_merges_and_caps() {
        let mut m = Mb::new(PHYS_ADDR_MAX_32);
        m.add(0x1000_0000, 0x1000).unwrap();
        m.add(0x1000_1000, 0x1000).unwrap();
        assert_eq!(m.memory.cnt(), 1);
        assert_eq!(m.memory.regions()[0].size, 0x2000);
        m.add(0x8000_0000, 0x8000_0000).unwrap();
        assert_eq!(m.memory.regions()[1].size, 0x7fff_ffff);
        assert_eq!(m.phys_mem_size(), 0x2000 + 0x7fff_ffff);
        // above PHYS_ADDR_MAX: ignored
        m.add(0x1_0000_0000, 0x1000).unwrap();
        assert_eq!(m.memory.cnt(), 2);
    }

    #[test]
    fn isolate_splits() {
        let mut m = Mb::new(PHYS_ADDR_MAX_32);
        m.add(0x1000, 0x10000).unwrap();
        let (s, e) = m.isolate_range(TableKind::Memory, 0x3000, 0x2000).unwrap();
        assert_eq!((s, e), (1, 2));
        assert_eq!(m.memory.cnt(), 3);
        assert_eq!(m.phys_mem_size(), 0x10000);
    }

    #[test]
    fn free_ranges_both_directions() {
        let mut m = Mb::new(PHYS_ADDR_MAX_32);
        m.add(0x1000, 0x4000).unwrap();
        m.add(0x10000, 0x4000).unwrap();
        m.reserve(0x2000, 0x1000).unwrap();
        let f: heapless::Vec<FreeRange, 8> =
            m.free_ranges(NUMA_NO_NODE, RegionFlags::NONE).collect();
        assert_eq!(
            &f[..],
            &[
                (0x1000, 0x2000, 0),
                (0x3000, 0x5000, 0),
                (0x10000, 0x14000, 0)
            ]
        );
        let r: heapless::Vec<FreeRange, 8> =
            m.free_ranges_rev(NUMA_NO_NODE, RegionFlags::NONE).collect();
        assert_eq!(
            &r[..],
            &[
                (0x10000, 0x14000, 0),
                (0x3000, 0x5000, 0),
                (0x1000, 0x2000, 0)
            ]
        );
    }

    #[test]
    fn dump_empty_is_linux_like() {
        let m = Mb::new(PHYS_ADDR_MAX_32);
        let mut s = String::new();
        m.dump(&mut s).unwrap();
        assert_eq!(
            s,
            "MEMBLOCK configuration:\n memory size = 0x00000000 reserved size = 0x00000000\n \
             memory.cnt  = 0x1\n memory[0x0]\t[0x00000000-0xffffffff], 0x00000000 bytes flags: 0x0\n \
             reserved.cnt  = 0x1\n reserved[0x0]\t[0x00000000-0xffffffff], 0x00000000 bytes flags: 0x0\n"
        );
    }

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
