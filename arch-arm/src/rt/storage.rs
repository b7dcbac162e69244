//! [`PhysPageStorage`]: page descriptors in physical memory, reached with the MMU off
//! or, once `paging_init` switched it on, through the lowmem linear map.
//!
//! Linux counterpart: `mem_map` reached through `__va` in the linear map.

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use zonekit_core::addr::PhysAddr;
use zonekit_core::page::Page;
use zonekit_core::storage::mem_map_runs;
use zonekit_core::{PageStorage, StorageError};

/// Hands out memblock allocations as slices, using physical addresses as pointers
/// while the MMU is off (physical == virtual) and linear-map addresses once the
/// runtime's `paging_init` has switched the MMU on and the storage to the linear map.
///
/// Its safe [`PageStorage`] methods write whatever physical range they are given,
/// so only the runtime can create one (`new` is crate-private): the one instance
/// of a boot (a second `boot_main`/`boot_memory` call stops before making another)
/// goes to the boot flow, which passes it nothing but ranges memblock has
/// just reserved (or, for `early_memtest`, reports free), and then lives inside the
/// page allocator, which zeroes only pages it hands out. A kernel names the type
/// (`RunningMemory<PhysPageStorage, _>`) but never holds a `&mut` to it; a kernel
/// with its own view of memory implements [`PageStorage`] itself.
#[derive(Debug)]
pub struct PhysPageStorage {
    /// `(PHYS_OFFSET, lowmem end, PAGE_OFFSET)` once the linear map is live.
    linear: Option<(PhysAddr, PhysAddr, u32)>,
}

impl PhysPageStorage {
    /// # Safety
    ///
    /// The MMU must be off (identity addressing) for as long as the storage and the
    /// slices it returns are used, and every range passed to it must be RAM that
    /// memblock has reserved for the caller and that nothing else references: the
    /// slices are `'static` and exclusive. The ranges of `write_words`/`read_words`
    /// (`early_memtest`) are RAM that memblock reports free, which nothing
    /// references either.
    pub(crate) const unsafe fn new() -> Self {
        Self { linear: None }
    }

    /// From now on reach `[phys_offset, lowmem_end)` at `page_offset + (pa -
    /// phys_offset)`, and nothing else (highmem has no permanent mapping).
    ///
    /// # Safety
    ///
    /// The MMU must be on with that linear map installed (normal memory, kernel
    /// read/write) for as long as the storage and the slices it returned are used;
    /// slices handed out before the switch must no longer be used.
    pub(crate) unsafe fn use_linear_map(
        &mut self,
        phys_offset: PhysAddr,
        lowmem_end: PhysAddr,
        page_offset: u32,
    ) {
        self.linear = Some((phys_offset, lowmem_end, page_offset));
    }

    /// Turn `[base, base + bytes)` into a non-null pointer aligned for `T`.
    fn pointer<T>(&self, base: PhysAddr, bytes: u64) -> Result<*mut T, StorageError> {
        let out = StorageError::OutOfReach { base, size: bytes };
        let end = base.checked_add(bytes).ok_or(out)?;
        let addr = match self.linear {
            None if base != 0 && end <= 1 << 32 => base,
            None => return Err(out),
            Some((lo, hi, po)) if base >= lo && end <= hi => u64::from(po) + (base - lo),
            Some(_) => return Err(out),
        };
        if addr >= 1 << 32 || base % core::mem::align_of::<T>() as u64 != 0 {
            return Err(if addr >= 1 << 32 {
                out
            } else {
                StorageError::Misaligned { base }
            });
        }
        Ok(addr as usize as *mut T)
    }
}

/// Store `page` into the `n` descriptors from `ptr`, one 16-byte `stm` each with
/// the four words held in r2-r5 (two descriptors per loop iteration). The compiler,
/// left alone, reloads the value or splits the store per descriptor: this loop is
/// the floor of `memmap_init`'s one store per page.
///
/// # Safety
///
/// `[ptr, ptr + n)` must be valid for writes and aligned for [`Page`].
#[inline(never)]
unsafe fn fill_pages(ptr: *mut Page, n: usize, page: &Page) {
    // `Page` is `repr(C)`, four `u32`s (16 bytes): the same layout as `[u32; 4]`,
    // flags first, so `stm` of the words in order writes the descriptor.
    const _: () = assert!(core::mem::size_of::<Page>() == 16);
    let w = page.to_words();
    let pairs = n / 2;
    let mut p = ptr.cast::<u32>();
    if pairs > 0 {
        // SAFETY: the caller's contract covers the `2 * pairs <= n` descriptors the
        // loop stores (16 bytes each, ascending from `ptr`); it touches no other
        // memory, no stack, and leaves `p` just past them.
        unsafe {
            core::arch::asm!(
                "2:",
                "stm {p}!, {{r2, r3, r4, r5}}",
                "stm {p}!, {{r2, r3, r4, r5}}",
                "subs {k}, {k}, #1",
                "bne 2b",
                p = inout(reg) p,
                k = inout(reg) pairs => _,
                in("r2") w[0],
                in("r3") w[1],
                in("r4") w[2],
                in("r5") w[3],
                options(nostack),
            );
        }
    }
    if n % 2 == 1 {
        // SAFETY: the last descriptor, `ptr + n - 1`, is where `p` points now.
        unsafe { p.cast::<[u32; 4]>().write(w) };
    }
}

/// Bytes of the page allocator's pageblock table in the image's `.bss`
/// ([`PageStorage::allocator_table`]): one per pageblock, 16 GiB of 2 MiB (LPAE)
/// pageblocks, 32 GiB of 4 MiB ones.
const ALLOCATOR_TABLE_BYTES: usize = 8192;

/// The table itself, zeroed with the rest of `.bss`.
static ALLOCATOR_TABLE: [AtomicU8; ALLOCATOR_TABLE_BYTES] =
    [const { AtomicU8::new(0) }; ALLOCATOR_TABLE_BYTES];

/// Set once the table is handed out: a boot has one page allocator.
static ALLOCATOR_TABLE_TAKEN: AtomicBool = AtomicBool::new(false);

impl PageStorage for PhysPageStorage {
    type MemMap = &'static [Page];
    type Bitmap = &'static [AtomicU8];

    fn mem_map(&mut self, base: PhysAddr, nr_pages: usize) -> Result<Self::MemMap, StorageError> {
        self.mem_map_init(base, nr_pages, &[])
    }

    fn mem_map_init(
        &mut self,
        base: PhysAddr,
        nr_pages: usize,
        runs: &[(usize, Page)],
    ) -> Result<Self::MemMap, StorageError> {
        // At most 2^32 descriptors of 16 bytes: the product fits in u64.
        let bytes = nr_pages as u64 * core::mem::size_of::<Page>() as u64;
        let ptr = self.pointer::<Page>(base, bytes)?;
        // Each descriptor is written once: the runs in order, then Page::ZEROED.
        for (first, count, page) in mem_map_runs(nr_pages, runs) {
            // SAFETY: `new`'s contract: the range is reserved RAM owned by the caller;
            // `pointer` checked it is non-null, aligned and inside the 32-bit space
            // (or inside the linear map, per `use_linear_map`'s contract), and
            // `[first, first + count)` lies inside its `nr_pages` descriptors.
            unsafe { fill_pages(ptr.add(first), count, page) };
        }
        // SAFETY: all `nr_pages` elements were just initialised; the memory is ours
        // for 'static (see `new`) and is only ever reached through this shared
        // slice, whose elements are atomics.
        Ok(unsafe { core::slice::from_raw_parts(ptr, nr_pages) })
    }

    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        let ptr = self.pointer::<u8>(base, bytes as u64)?;
        // SAFETY: as in `mem_map`: reserved, exclusive, checked RAM, zeroed before
        // it is viewed as shared atomics (same size and alignment as u8).
        unsafe {
            ptr.write_bytes(0, bytes);
            Ok(core::slice::from_raw_parts(ptr.cast::<AtomicU8>(), bytes))
        }
    }

    fn allocator_table(&mut self, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        if bytes > ALLOCATOR_TABLE_BYTES {
            return Err(StorageError::Unsupported {
                what: "an allocator table larger than its .bss space",
            });
        }
        if ALLOCATOR_TABLE_TAKEN.swap(true, Ordering::Relaxed) {
            return Err(StorageError::Unsupported {
                what: "a second allocator table",
            });
        }
        Ok(&ALLOCATOR_TABLE[..bytes])
    }

    fn zero(&mut self, base: PhysAddr, size: u64) -> Result<(), StorageError> {
        let ptr = self.pointer::<u8>(base, size)?;
        // SAFETY: as in `mem_map`; `pointer` checked that `size` fits in the 32-bit
        // address space, so the `usize` conversion is lossless.
        unsafe { ptr.write_bytes(0, size as usize) };
        Ok(())
    }

    fn write_words(
        &mut self,
        base: PhysAddr,
        words: u64,
        pattern: u64,
    ) -> Result<(), StorageError> {
        let bytes = words.checked_mul(8).ok_or(StorageError::OutOfReach {
            base,
            size: u64::MAX,
        })?;
        let ptr = self.pointer::<u64>(base, bytes)?;
        for i in 0..words as usize {
            // SAFETY: `new`'s contract: free RAM nothing else references; `pointer`
            // checked it is non-null, 8-byte aligned and reachable for all `words`
            // words (which therefore fit in `usize`). Volatile, as Linux's
            // WRITE_ONCE: every word must really be stored.
            unsafe { ptr.add(i).write_volatile(pattern) };
        }
        Ok(())
    }

    fn read_words(&mut self, base: PhysAddr, out: &mut [u64]) -> Result<(), StorageError> {
        let ptr = self.pointer::<u64>(base, out.len() as u64 * 8)?;
        for (i, w) in out.iter_mut().enumerate() {
            // SAFETY: as in `write_words`; READ_ONCE: the value must come from
            // memory, not from what the compiler knows was written.
            *w = unsafe { ptr.add(i).read_volatile() };
        }
        Ok(())
    }
}
