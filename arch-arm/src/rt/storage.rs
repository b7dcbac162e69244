//! [`PhysPageStorage`]: page descriptors in physical memory, reached with the MMU off.
//!
//! Linux counterpart: `mem_map` reached through `__va` in the linear map; with the MMU off the physical address is the pointer.

use zonekit_core::addr::PhysAddr;
use zonekit_core::page::Page;
use zonekit_core::{PageStorage, StorageError};

/// Hands out memblock allocations as slices, using physical addresses as pointers
/// (valid while the MMU is off: physical == virtual).
#[derive(Debug)]
pub struct PhysPageStorage {
    _private: (),
}

impl PhysPageStorage {
    /// # Safety
    ///
    /// The MMU must be off (identity addressing) for as long as the storage and the
    /// slices it returns are used, and every range passed to it must be RAM that
    /// memblock has reserved for the caller and that nothing else references: the
    /// slices are `'static` and exclusive.
    pub const unsafe fn new() -> Self {
        Self { _private: () }
    }

    /// Turn `[base, base + bytes)` into a non-null pointer aligned for `T`.
    fn pointer<T>(base: PhysAddr, bytes: u64) -> Result<*mut T, StorageError> {
        let in_reach = match base.checked_add(bytes) {
            Some(end) => base != 0 && end <= 1 << 32,
            None => false,
        };
        if !in_reach {
            return Err(StorageError::OutOfReach { base, size: bytes });
        }
        if base % core::mem::align_of::<T>() as u64 != 0 {
            return Err(StorageError::Misaligned { base });
        }
        Ok(base as usize as *mut T)
    }
}

impl PageStorage for PhysPageStorage {
    type MemMap = &'static mut [Page];
    type Bitmap = &'static mut [u8];

    fn mem_map(&mut self, base: PhysAddr, nr_pages: usize) -> Result<Self::MemMap, StorageError> {
        let bytes = (nr_pages as u64)
            .checked_mul(core::mem::size_of::<Page>() as u64)
            .ok_or(StorageError::OutOfReach {
                base,
                size: u64::MAX,
            })?;
        let ptr = Self::pointer::<Page>(base, bytes)?;
        for i in 0..nr_pages {
            // SAFETY: `new`'s contract: the range is reserved RAM owned by the caller;
            // `pointer` checked it is non-null, aligned and inside the 32-bit space.
            unsafe { ptr.add(i).write(Page::ZEROED) };
        }
        // SAFETY: all `nr_pages` elements were just initialised; the memory is
        // exclusively ours for 'static (see `new`).
        Ok(unsafe { core::slice::from_raw_parts_mut(ptr, nr_pages) })
    }

    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        let ptr = Self::pointer::<u8>(base, bytes as u64)?;
        // SAFETY: as in `mem_map`: reserved, exclusive, checked RAM.
        unsafe {
            ptr.write_bytes(0, bytes);
            Ok(core::slice::from_raw_parts_mut(ptr, bytes))
        }
    }

    fn zero(&mut self, base: PhysAddr, size: u64) -> Result<(), StorageError> {
        let ptr = Self::pointer::<u8>(base, size)?;
        // SAFETY: as in `mem_map`; `pointer` checked that `size` fits in the 32-bit
        // address space, so the `usize` conversion is lossless.
        unsafe { ptr.write_bytes(0, size as usize) };
        Ok(())
    }
}
