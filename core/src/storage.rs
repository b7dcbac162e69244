//! Where page descriptors live: the boundary between physical addresses and memory.
//!
//! The boot flow only ever deals in physical addresses; it asks a [`PageStorage`] to
//! turn a memblock allocation into a usable `mem_map` slice, a usemap bitmap, or to
//! zero it. `early_memtest` also writes and reads back free memory through it, one
//! 64-bit word at a time. On the target the arch crate does this with a pointer cast
//! (the one `unsafe` step, with the MMU off or through the linear map); on the host,
//! `VecPageStorage` (feature `alloc`) simulates RAM with ordinary allocations.
//!
//! Linux counterpart: the `mem_map` array and `pfn_to_page`/`page_to_pfn` (`FLATMEM`), with `__va` turning the physical address memblock returned into a pointer.

use crate::addr::PhysAddr;
use crate::page::Page;
use core::ops::Deref;
use core::sync::atomic::AtomicU8;

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
    /// This storage cannot do what was asked (a storage without word access asked
    /// for `early_memtest`'s writes and reads).
    Unsupported {
        /// The operation asked for.
        what: &'static str,
    },
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
            StorageError::Unsupported { what } => {
                write!(f, "this page storage does not support {what}")
            }
        }
    }
}

/// Turns physical allocations into memory the boot flow can use.
pub trait PageStorage {
    /// The `mem_map` array as handed out: a shared handle (a `&'static [Page]` on
    /// the target, an `Arc<[Page]>` on the host) whose clones name the same
    /// descriptors, so that every CPU can reach them ([`Page`]'s words are atomics).
    /// Its `Default` is an empty map (`&[]`, an empty `Arc`): what the page
    /// allocator's fast paths hold for a node without one, so that they test a
    /// length they read anyway instead of an `Option`.
    type MemMap: Deref<Target = [Page]> + Clone + Default;
    /// A byte bitmap (the pageblock-flags usemap), shared like [`Self::MemMap`]:
    /// the free path reads a pageblock's migrate type without the zone lock. Its
    /// `Default` is an empty bitmap, like [`Self::MemMap`]'s.
    type Bitmap: Deref<Target = [AtomicU8]> + Clone + Default;

    /// View `nr_pages` descriptors starting at physical `base`, which memblock has just
    /// reserved for them. The memory is initialised to [`Page::ZEROED`].
    fn mem_map(&mut self, base: PhysAddr, nr_pages: usize) -> Result<Self::MemMap, StorageError>;

    /// [`PageStorage::mem_map`] with the descriptors' first values given, so that
    /// each is written once (`memmap_init`'s reserved templates instead of a zero
    /// fill that they overwrite): `runs` in order, `(count, value)`, then
    /// [`Page::ZEROED`] for the rest (runs past `nr_pages` are cut). The default
    /// fills with [`Page::ZEROED`] first and writes the runs over it.
    fn mem_map_init(
        &mut self,
        base: PhysAddr,
        nr_pages: usize,
        runs: &[(usize, Page)],
    ) -> Result<Self::MemMap, StorageError> {
        let map = self.mem_map(base, nr_pages)?;
        for (first, count, page) in mem_map_runs(map.len(), runs) {
            map[first..first + count].iter().for_each(|p| p.store(page));
        }
        Ok(map)
    }

    /// View `bytes` bytes at physical `base` as a zeroed bitmap.
    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError>;

    /// Fill `size` bytes at physical `base` with zeroes (`memset` of
    /// `memblock_alloc_try_nid`).
    fn zero(&mut self, base: PhysAddr, size: u64) -> Result<(), StorageError>;

    /// `bytes` zeroed bytes for the page allocator's own table (one byte per
    /// pageblock, which the free fast path reads instead of the usemap), from memory
    /// outside what memblock and the buddy manage: the kernel image's `.bss` on the
    /// target, an ordinary allocation on the host. It is not Linux's (Linux reads
    /// the usemap), so it must not change what memblock hands out. The page
    /// allocator asks once; an error (the default: [`StorageError::Unsupported`])
    /// leaves it without the table, and every free then takes the checked path.
    fn allocator_table(&mut self, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        let _ = bytes;
        Err(StorageError::Unsupported {
            what: "allocator tables",
        })
    }

    /// Write `pattern` to each of the `words` 64-bit words from physical `base`
    /// (8-byte aligned), as `early_memtest` does with `WRITE_ONCE`. The memory is free
    /// in memblock: nothing else uses it. The default has no word access and returns
    /// [`StorageError::Unsupported`].
    fn write_words(
        &mut self,
        base: PhysAddr,
        words: u64,
        pattern: u64,
    ) -> Result<(), StorageError> {
        let _ = (base, words, pattern);
        Err(StorageError::Unsupported {
            what: "word writes",
        })
    }

    /// Read the 64-bit words from physical `base` (8-byte aligned) into `out`, one
    /// `READ_ONCE` each, as `early_memtest` checks what [`write_words`] wrote. The
    /// default returns [`StorageError::Unsupported`].
    ///
    /// [`write_words`]: PageStorage::write_words
    fn read_words(&mut self, base: PhysAddr, out: &mut [u64]) -> Result<(), StorageError> {
        let _ = (base, out);
        Err(StorageError::Unsupported { what: "word reads" })
    }
}

/// The zeroed descriptor as a place to point at ([`mem_map_runs`]'s tail).
static ZEROED_PAGE: Page = Page::ZEROED;

/// What [`PageStorage::mem_map_init`] writes, as `(first, count, value)` pieces that
/// cover `[0, nr_pages)` in order: each of `runs` (cut at `nr_pages`), then
/// [`Page::ZEROED`] for the rest. Every storage writes the same pieces its own way.
pub fn mem_map_runs(
    nr_pages: usize,
    runs: &[(usize, Page)],
) -> impl Iterator<Item = (usize, usize, &Page)> {
    let mut at = 0usize;
    runs.iter()
        .map(|(n, page)| (*n, page))
        .chain(core::iter::once((usize::MAX, &ZEROED_PAGE)))
        .map(move |(n, page)| {
            let first = at;
            let count = n.min(nr_pages - at);
            at += count;
            (first, count, page)
        })
        .filter(|&(_, count, _)| count != 0)
}

/// A storage lent to the boot: the caller keeps it and gets it back when the borrow
/// ends (the host path needs no leaked buffer).
impl<S: PageStorage + ?Sized> PageStorage for &mut S {
    type MemMap = S::MemMap;
    type Bitmap = S::Bitmap;

    fn mem_map(&mut self, base: PhysAddr, nr_pages: usize) -> Result<Self::MemMap, StorageError> {
        (**self).mem_map(base, nr_pages)
    }

    fn allocator_table(&mut self, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        (**self).allocator_table(bytes)
    }

    fn mem_map_init(
        &mut self,
        base: PhysAddr,
        nr_pages: usize,
        runs: &[(usize, Page)],
    ) -> Result<Self::MemMap, StorageError> {
        (**self).mem_map_init(base, nr_pages, runs)
    }

    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        (**self).bitmap(base, bytes)
    }

    fn zero(&mut self, base: PhysAddr, size: u64) -> Result<(), StorageError> {
        (**self).zero(base, size)
    }

    fn write_words(
        &mut self,
        base: PhysAddr,
        words: u64,
        pattern: u64,
    ) -> Result<(), StorageError> {
        (**self).write_words(base, words, pattern)
    }

    fn read_words(&mut self, base: PhysAddr, out: &mut [u64]) -> Result<(), StorageError> {
        (**self).read_words(base, out)
    }
}

/// `[base, base + 8 * words)` as a checked byte range for the word accessors.
#[cfg(any(test, feature = "alloc"))]
fn word_range(base: PhysAddr, words: u64) -> Result<(PhysAddr, PhysAddr), StorageError> {
    if base & 7 != 0 {
        return Err(StorageError::Misaligned { base });
    }
    let out = StorageError::OutOfReach {
        base,
        size: words.saturating_mul(8),
    };
    let end = words
        .checked_mul(8)
        .and_then(|b| base.checked_add(b))
        .ok_or(out)?;
    Ok((base, end))
}

/// Host-side storage: every request is backed by a fresh heap allocation. The physical
/// addresses are recorded, not dereferenced, so any memory map can be simulated.
///
/// Word writes ([`PageStorage::write_words`]) are kept as fills (a range and the
/// pattern written over it), so reading them back costs no memory per word; a word
/// never written reads as 0.
#[cfg(any(test, feature = "alloc"))]
#[derive(Debug, Default)]
pub struct VecPageStorage {
    /// Every (base, bytes) handed out, in order.
    pub handed_out: alloc::vec::Vec<(PhysAddr, u64)>,
    /// Word fills `(base, end, pattern)`, the latest last.
    fills: alloc::vec::Vec<(PhysAddr, PhysAddr, u64)>,
}

#[cfg(any(test, feature = "alloc"))]
impl VecPageStorage {
    /// What the latest fill wrote at `addr` (0 if none covers it).
    fn word_at(&self, addr: PhysAddr) -> u64 {
        self.fills
            .iter()
            .rev()
            .find(|&&(b, e, _)| addr >= b && addr < e)
            .map_or(0, |&(_, _, p)| p)
    }
}

#[cfg(any(test, feature = "alloc"))]
impl PageStorage for VecPageStorage {
    type MemMap = alloc::sync::Arc<[Page]>;
    type Bitmap = alloc::sync::Arc<[AtomicU8]>;

    fn mem_map(&mut self, base: PhysAddr, nr_pages: usize) -> Result<Self::MemMap, StorageError> {
        self.handed_out
            .push((base, (nr_pages * core::mem::size_of::<Page>()) as u64));
        let mut v = alloc::vec::Vec::new();
        v.try_reserve_exact(nr_pages)
            .map_err(|_| StorageError::Exhausted)?;
        v.resize(nr_pages, Page::ZEROED);
        Ok(v.into())
    }

    fn allocator_table(&mut self, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        let mut v = alloc::vec::Vec::new();
        v.try_reserve_exact(bytes)
            .map_err(|_| StorageError::Exhausted)?;
        v.resize_with(bytes, || AtomicU8::new(0));
        Ok(v.into())
    }

    fn mem_map_init(
        &mut self,
        base: PhysAddr,
        nr_pages: usize,
        runs: &[(usize, Page)],
    ) -> Result<Self::MemMap, StorageError> {
        self.handed_out
            .push((base, (nr_pages * core::mem::size_of::<Page>()) as u64));
        let mut v = alloc::vec::Vec::new();
        v.try_reserve_exact(nr_pages)
            .map_err(|_| StorageError::Exhausted)?;
        for (_, count, page) in mem_map_runs(nr_pages, runs) {
            v.extend(core::iter::repeat_n(page, count).cloned());
        }
        Ok(v.into())
    }

    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        self.handed_out.push((base, bytes as u64));
        Ok((0..bytes).map(|_| AtomicU8::new(0)).collect())
    }

    fn zero(&mut self, _base: PhysAddr, _size: u64) -> Result<(), StorageError> {
        Ok(())
    }

    fn write_words(
        &mut self,
        base: PhysAddr,
        words: u64,
        pattern: u64,
    ) -> Result<(), StorageError> {
        let (base, end) = word_range(base, words)?;
        if base == end {
            return Ok(());
        }
        // Fills the new one hides for good are dropped, so repeated passes over the
        // same ranges keep the list short.
        self.fills.retain(|&(b, e, _)| b < base || e > end);
        self.fills
            .try_reserve(1)
            .map_err(|_| StorageError::Exhausted)?;
        self.fills.push((base, end, pattern));
        Ok(())
    }

    fn read_words(&mut self, base: PhysAddr, out: &mut [u64]) -> Result<(), StorageError> {
        let (base, end) = word_range(base, out.len() as u64)?;
        // The latest fill covering the whole request answers it at once.
        let latest = self
            .fills
            .iter()
            .rev()
            .find(|&&(b, e, _)| b < end && base < e);
        match latest {
            Some(&(b, e, p)) if b <= base && end <= e => out.fill(p),
            Some(_) => {
                for (i, w) in out.iter_mut().enumerate() {
                    *w = self.word_at(base + 8 * i as u64);
                }
            }
            None => out.fill(0),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_storage_reads_back_the_latest_fill() {
        let mut s = VecPageStorage::default();
        let mut out = [1u64; 4];
        s.read_words(0x1000, &mut out).unwrap();
        assert_eq!(out, [0; 4]);
        s.write_words(0x1000, 4, 0x5555).unwrap();
        s.write_words(0x1008, 1, 0xaaaa).unwrap();
        s.read_words(0x1000, &mut out).unwrap();
        assert_eq!(out, [0x5555, 0xaaaa, 0x5555, 0x5555]);
        // A covering fill hides (and drops) what it covers.
        s.write_words(0x1000, 4, 7).unwrap();
        s.read_words(0x0ff8, &mut out).unwrap();
        assert_eq!(out, [0, 7, 7, 7]);
        assert_eq!(s.fills.len(), 1);
        assert_eq!(
            s.write_words(0x1004, 1, 0),
            Err(StorageError::Misaligned { base: 0x1004 })
        );
        assert!(matches!(
            s.write_words(u64::MAX - 7, 2, 0),
            Err(StorageError::OutOfReach { .. })
        ));
    }
}
