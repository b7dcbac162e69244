//! Where translation tables live: [`TableMemory`] (how the builder reaches table
//! words by physical address) and [`TableAllocator`] (where new tables come from),
//! with the two host-side implementations: a slice ([`SliceTableAllocator`]) and
//! memory plus an allocation function ([`AllocFn`]).
//!
//! The builder ([`super::table`]) works in physical addresses only; these traits are
//! what lets the same code run over a slice on the host, over RAM identity-mapped with
//! the MMU off, through the linear map once it is on (`hw.rs`), or over the
//! simulator's chunks.

use super::MmuError;
use zonekit_core::PhysAddr;

/// Physical memory that holds translation tables, as `u32` words.
pub trait TableMemory {
    /// `count` words at `phys`, or `None` when the range is not table memory this
    /// implementation can reach.
    fn words(&self, phys: PhysAddr, count: usize) -> Option<&[u32]>;
    /// Mutable view of `count` words at `phys`.
    fn words_mut(&mut self, phys: PhysAddr, count: usize) -> Option<&mut [u32]>;
    /// `[phys, phys + bytes)` was just allocated as a table ([`TableAllocator`]
    /// calls this): memory reached by raw pointer records it and reaches nothing
    /// else, so no `words` view can cover memory the tables do not own. The default
    /// (memory that is the tables' already, a slice) does nothing.
    fn claim(&mut self, phys: PhysAddr, bytes: usize) -> Result<(), MmuError> {
        let _ = (phys, bytes);
        Ok(())
    }
}

/// Where translation tables come from: memblock during boot, the buddy allocator
/// later, a slice on the host. The builder zeroes what it gets.
pub trait TableAllocator: TableMemory {
    /// Allocate `bytes` bytes aligned to `align` (a power of two) and return their
    /// physical address. The memory must stay reachable through [`TableMemory`].
    fn alloc_table(&mut self, bytes: usize, align: usize) -> Result<PhysAddr, MmuError>;
}

/// A bump allocator over a word slice that stands for physical memory starting at
/// `phys_base`. Host tests use it over a `Vec`; a target can use it over a static
/// buffer whose physical address it knows.
#[derive(Debug)]
pub struct SliceTableAllocator<'a> {
    phys_base: PhysAddr,
    mem: &'a mut [u32],
    next: usize,
}

impl<'a> SliceTableAllocator<'a> {
    /// Table memory `mem`, whose first word is at physical `phys_base`.
    pub fn new(phys_base: PhysAddr, mem: &'a mut [u32]) -> Self {
        Self {
            phys_base,
            mem,
            next: 0,
        }
    }

    /// Bytes handed out so far (including alignment padding).
    pub fn used_bytes(&self) -> usize {
        self.next * 4
    }

    fn index(&self, phys: PhysAddr, count: usize) -> Option<usize> {
        let off = phys.checked_sub(self.phys_base)?;
        if off & 3 != 0 {
            return None;
        }
        let idx = usize::try_from(off / 4).ok()?;
        let end = idx.checked_add(count)?;
        (end <= self.mem.len()).then_some(idx)
    }
}

impl TableMemory for SliceTableAllocator<'_> {
    fn words(&self, phys: PhysAddr, count: usize) -> Option<&[u32]> {
        let i = self.index(phys, count)?;
        self.mem.get(i..i + count)
    }

    fn words_mut(&mut self, phys: PhysAddr, count: usize) -> Option<&mut [u32]> {
        let i = self.index(phys, count)?;
        self.mem.get_mut(i..i + count)
    }
}

impl TableAllocator for SliceTableAllocator<'_> {
    fn alloc_table(&mut self, bytes: usize, align: usize) -> Result<PhysAddr, MmuError> {
        let err = MmuError::OutOfTableMemory { bytes, align };
        if !align.is_power_of_two() {
            return Err(err);
        }
        let cur = self
            .phys_base
            .checked_add(self.next as u64 * 4)
            .ok_or(err)?;
        let a = align as u64;
        let start = cur.checked_add(a - 1).ok_or(err)? & !(a - 1);
        let end = start.checked_add(bytes as u64).ok_or(err)?;
        let limit = self
            .phys_base
            .saturating_add((self.mem.len() as u64).saturating_mul(4));
        if end > limit || (end - self.phys_base) & 3 != 0 {
            return Err(err);
        }
        self.next = ((end - self.phys_base) / 4) as usize;
        Ok(start)
    }
}

/// A [`TableAllocator`] made of table memory and an allocation function, e.g.
/// `|bytes, align| memblock.alloc_try_nid_raw(bytes as u64, align as u64, 0, limit, NUMA_NO_NODE).map_err(..)`.
#[derive(Debug)]
pub struct AllocFn<M, F> {
    /// How tables are reached.
    pub memory: M,
    /// How tables are allocated: `(bytes, align) -> phys`.
    pub alloc: F,
}

impl<M: TableMemory, F> TableMemory for AllocFn<M, F> {
    fn words(&self, phys: PhysAddr, count: usize) -> Option<&[u32]> {
        self.memory.words(phys, count)
    }

    fn words_mut(&mut self, phys: PhysAddr, count: usize) -> Option<&mut [u32]> {
        self.memory.words_mut(phys, count)
    }

    fn claim(&mut self, phys: PhysAddr, bytes: usize) -> Result<(), MmuError> {
        self.memory.claim(phys, bytes)
    }
}

impl<M: TableMemory, F: FnMut(usize, usize) -> Result<PhysAddr, MmuError>> TableAllocator
    for AllocFn<M, F>
{
    fn alloc_table(&mut self, bytes: usize, align: usize) -> Result<PhysAddr, MmuError> {
        let phys = (self.alloc)(bytes, align)?;
        self.memory.claim(phys, bytes)?;
        Ok(phys)
    }
}
