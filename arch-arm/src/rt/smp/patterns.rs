//! Where the concurrent page allocator test writes its patterns on the target: into
//! the pages themselves, through the linear map (its `GFP_KERNEL` blocks are
//! lowmem; with `zonekit.nommu` the map is the identity). Three words of each page
//! (first, middle, last): enough to see a page handed to two CPUs, cheap under TCG.

use zonekit_core::page_alloc::PageAllocator;
use zonekit_core::selftest::smp::PagePatterns;
use zonekit_core::storage::PageStorage;
use zonekit_core::Pfn;

/// Byte offsets of the words written in each page.
const WORDS: [usize; 3] = [0, 2048, 4092];

/// The pages, reached at `pfn * 4096 - phys_offset + page_offset`.
pub struct LinearPatterns {
    phys_offset: u64,
    page_offset: u64,
    max_low_pfn: Pfn,
}

impl LinearPatterns {
    /// The linear map of `allocator`'s configuration.
    ///
    /// # Safety
    ///
    /// The linear map (or, with the MMU off, the identity) must be live for every
    /// lowmem page, and every block passed to [`PagePatterns::fill`] and
    /// [`PagePatterns::holds`] must be one the caller holds from that allocator (so
    /// nothing else uses its memory).
    pub unsafe fn new<S: PageStorage, const N: usize>(allocator: &PageAllocator<S, N>) -> Self {
        let cfg = allocator.config();
        LinearPatterns {
            phys_offset: cfg.phys_offset,
            page_offset: cfg.page_offset,
            max_low_pfn: cfg.max_low_pfn,
        }
    }

    /// The words of the lowmem pages of the block (none for highmem).
    fn words(&self, pfn: Pfn, order: u32) -> impl Iterator<Item = *mut u32> + '_ {
        (pfn..pfn + (1 << order))
            .filter(|&p| p < self.max_low_pfn)
            .flat_map(move |p| {
                let va = (p << 12)
                    .wrapping_sub(self.phys_offset)
                    .wrapping_add(self.page_offset);
                WORDS.iter().map(move |&o| (va as usize + o) as *mut u32)
            })
    }
}

impl PagePatterns for LinearPatterns {
    fn fill(&self, pfn: Pfn, order: u32, pattern: u32) {
        for w in self.words(pfn, order) {
            // SAFETY: `new`'s contract: the block is the caller's, mapped read/write
            // at this linear address; the word is aligned and inside its page.
            unsafe { w.write_volatile(pattern) };
        }
    }

    fn holds(&self, pfn: Pfn, order: u32, pattern: u32) -> bool {
        // SAFETY: as in `fill`.
        self.words(pfn, order)
            .all(|w| unsafe { w.read_volatile() } == pattern)
    }
}
