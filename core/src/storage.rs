//! Where page descriptors live: the boundary between physical addresses and memory.
//!
//! The boot flow only ever deals in physical addresses; it asks a [`PageStorage`] to
//! turn a memblock allocation into a usable `mem_map` slice, a usemap bitmap, or to
//! zero it. On the target the arch crate does this with a pointer cast (the one
//! `unsafe` step, with the MMU off or through the linear map); on the host,
//! [`VecPageStorage`] simulates RAM with ordinary allocations.
//!
//! Linux counterpart: the `mem_map` array and `pfn_to_page`/`page_to_pfn` (`FLATMEM`), with `__va` turning the physical address memblock returned into a pointer.

use crate::addr::PhysAddr;
use crate::page::Page;
use core::ops::DerefMut;

/// Why physical memory could not be handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// The address is not inside memory this storage can reach.
    OutOfReach {
        /// Start of the request.
        base: PhysAddr,
        /// Length of the request in bytes.
        size: u64,
    },
    /// The address is not suitably aligned for the requested type.
    Misaligned {
        /// Start of the request.
        base: PhysAddr,
    },
    /// The host simulation could not allocate.
    Exhausted,
}

impl core::fmt::Display for StorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StorageError::OutOfReach { base, size } => {
                write!(f, "physical range {base:#x}+{size:#x} is not reachable")
            }
            StorageError::Misaligned { base } => {
                write!(f, "physical address {base:#x} is misaligned")
            }
            StorageError::Exhausted => write!(f, "simulated RAM exhausted"),
        }
    }
}

/// Turns physical allocations into memory the boot flow can use.
pub trait PageStorage {
    /// The `mem_map` array as handed out (a `&'static mut [Page]` on the target).
    type MemMap: DerefMut<Target = [Page]>;
    /// A byte bitmap (the pageblock-flags usemap).
    type Bitmap: DerefMut<Target = [u8]>;

    /// View `nr_pages` descriptors starting at physical `base`, which memblock has just
    /// reserved for them. The memory is initialised to [`Page::ZEROED`].
    fn mem_map(&mut self, base: PhysAddr, nr_pages: usize) -> Result<Self::MemMap, StorageError>;

    /// View `bytes` bytes at physical `base` as a zeroed bitmap.
    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError>;

    /// Fill `size` bytes at physical `base` with zeroes (`memset` of
    /// `memblock_alloc_try_nid`).
    fn zero(&mut self, base: PhysAddr, size: u64) -> Result<(), StorageError>;
}

/// Host-side storage: every request is backed by a fresh heap allocation. The physical
/// addresses are recorded, not dereferenced, so any memory map can be simulated.
#[cfg(any(test, feature = "alloc"))]
#[derive(Debug, Default)]
pub struct VecPageStorage {
    /// Every (base, bytes) handed out, in order.
    pub handed_out: alloc::vec::Vec<(PhysAddr, u64)>,
}

#[cfg(any(test, feature = "alloc"))]
impl PageStorage for VecPageStorage {
    type MemMap = alloc::vec::Vec<Page>;
    type Bitmap = alloc::vec::Vec<u8>;

    fn mem_map(&mut self, base: PhysAddr, nr_pages: usize) -> Result<Self::MemMap, StorageError> {
        self.handed_out
            .push((base, (nr_pages * core::mem::size_of::<Page>()) as u64));
        let mut v = alloc::vec::Vec::new();
        v.try_reserve_exact(nr_pages)
            .map_err(|_| StorageError::Exhausted)?;
        v.resize(nr_pages, Page::ZEROED);
        Ok(v)
    }

    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        self.handed_out.push((base, bytes as u64));
        Ok(alloc::vec![0u8; bytes])
    }

    fn zero(&mut self, _base: PhysAddr, _size: u64) -> Result<(), StorageError> {
        Ok(())
    }
}
