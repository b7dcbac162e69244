//! # zonekit-heap
//!
//! `alloc` (`Box`, `Vec`, `BTreeMap`) for a kernel as soon as zonekit's page
//! allocator runs: a [`PageHeap`] is a `#[global_allocator]` that runs
//! [talc](https://crates.io/crates/talc) behind a spin lock and, whenever talc is out
//! of memory, grows by whole pages from a [`PageSource`]: the buddy allocator
//! ([`BuddyPages`]) on a zonekit kernel, anything that hands out mapped pages in tests.
//!
//! Pages go one way: what the heap took stays the heap's (as with Linux's early
//! `memblock`-backed allocations, a heap that gives pages back is later work); the
//! growth is at least [`MIN_GROWTH_PAGES`] pages and a power of two, so a kernel's
//! many small allocations cost few page-allocator calls.
//!
//! A global allocator is an `unsafe` boundary by nature (`GlobalAlloc`, talc's
//! `claim`, the pages a [`PageSource`] vouches for): this crate is one of the places
//! where zonekit's `unsafe` lives, each block with its `// SAFETY:` reason.
//!
//! ```no_run
//! # use zonekit_heap::*;
//! # struct MyPages;
//! # unsafe impl PageSource for MyPages {
//! #     fn alloc_pages(&mut self, _order: u32) -> Option<core::ptr::NonNull<u8>> { None }
//! # }
//! #[global_allocator]
//! static HEAP: PageHeap<MyPages> = PageHeap::new();
//!
//! // Once pages exist (after `mem_init`):
//! HEAP.init(MyPages);
//! ```
#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use talc::{OomHandler, Span, Talc, Talck};
use zonekit_core::page_alloc::{Gfp, LockedPageAllocator};
use zonekit_core::{PageStorage, PhysAddr};

/// Bytes of a page.
pub const PAGE_SIZE: usize = 4096;

/// The smallest growth, in pages (a power of two).
pub const MIN_GROWTH_PAGES: usize = 16;

/// Where the heap gets memory: contiguous, mapped, read/write pages that become the
/// heap's for good.
///
/// # Safety
///
/// Every `Some(p)` that [`PageSource::alloc_pages`] returns must be the first byte of
/// `2^order * PAGE_SIZE` bytes that are mapped read/write at `p`, aligned to
/// `PAGE_SIZE`, and used by nothing else from then on: the heap hands them out as
/// allocations without checking.
pub unsafe trait PageSource: Send {
    /// 2^`order` contiguous pages: the address of the first byte, or `None` when
    /// none are free.
    fn alloc_pages(&mut self, order: u32) -> Option<NonNull<u8>>;
}

/// What the heap took so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Pages taken from the source.
    pub pages: usize,
    /// Times the heap grew.
    pub growths: usize,
    /// Allocations refused: no source yet, or the source had no pages left.
    pub refused: usize,
}

/// talc's out-of-memory handler: take pages from the source and give them to talc.
pub struct PageGrower<P> {
    source: Option<P>,
    stats: HeapStats,
}

/// Room talc needs around an allocation (its chunk tags) and for a new heap span.
const SLACK: usize = 128;

impl<P: PageSource> OomHandler for PageGrower<P> {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let grower = &mut talc.oom_handler;
        let Some(source) = grower.source.as_mut() else {
            grower.stats.refused += 1;
            return Err(());
        };
        let bytes = layout
            .size()
            .checked_add(layout.align())
            .and_then(|b| b.checked_add(SLACK))
            .ok_or(())?;
        let pages = bytes
            .div_ceil(PAGE_SIZE)
            .max(MIN_GROWTH_PAGES)
            .checked_next_power_of_two()
            .ok_or(())?;
        let order = pages.trailing_zeros();
        let Some(base) = source.alloc_pages(order) else {
            grower.stats.refused += 1;
            return Err(());
        };
        grower.stats.pages += pages;
        grower.stats.growths += 1;
        let span = Span::from_base_size(base.as_ptr(), pages * PAGE_SIZE);
        // SAFETY: the source handed these pages to the heap for good: mapped,
        // read/write, used by nothing else (the `PageSource` contract), and talc
        // never had them before.
        unsafe { talc.claim(span) }.map(|_| ())
    }
}

/// A `#[global_allocator]`: talc behind a spin lock, growing by pages from its
/// [`PageSource`] (see the crate documentation). Every allocation fails until
/// [`PageHeap::init`].
pub struct PageHeap<P: PageSource> {
    talc: Talck<spin::Mutex<()>, PageGrower<P>>,
}

impl<P: PageSource> PageHeap<P> {
    /// An empty heap without a page source.
    pub const fn new() -> Self {
        Self {
            talc: Talck::new(Talc::new(PageGrower {
                source: None,
                stats: HeapStats {
                    pages: 0,
                    growths: 0,
                    refused: 0,
                },
            })),
        }
    }

    /// Give the heap its page source (replacing any earlier one; pages already
    /// taken stay the heap's).
    pub fn init(&self, source: P) {
        self.talc.lock().oom_handler.source = Some(source);
    }

    /// What the heap took so far.
    pub fn stats(&self) -> HeapStats {
        self.talc.lock().oom_handler.stats
    }
}

impl<P: PageSource> Default for PageHeap<P> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every method forwards to talc's `Talck`, a correct `GlobalAlloc` over the
// memory it was given, which is only ever pages a `PageSource` handed over for good.
unsafe impl<P: PageSource> GlobalAlloc for PageHeap<P> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller (a non-zero-sized layout).
        unsafe { self.talc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller (`ptr` came from this heap with `layout`).
        unsafe { self.talc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { self.talc.realloc(ptr, layout, new_size) }
    }
}

/// Pages from zonekit's buddy allocator (`GFP_KERNEL`, so lowmem: always in the
/// linear map), reached through `map`.
pub struct BuddyPages<S: PageStorage + 'static, const N: usize, M> {
    buddy: &'static LockedPageAllocator<S, N>,
    map: M,
}

impl<S, const N: usize, M> BuddyPages<S, N, M>
where
    S: PageStorage + 'static,
    M: Fn(PhysAddr) -> Option<NonNull<u8>>,
{
    /// Pages from `buddy`, the block at physical `p` reached at `map(p)`
    /// (on a zonekit kernel: the linear map, `p - PHYS_OFFSET + PAGE_OFFSET`).
    ///
    /// # Safety
    ///
    /// For every block the buddy allocator hands out with `GFP_KERNEL`, `map` must
    /// return where its bytes are mapped read/write, and nothing else may use those
    /// bytes while the heap owns the block (forever).
    pub unsafe fn new(buddy: &'static LockedPageAllocator<S, N>, map: M) -> Self {
        Self { buddy, map }
    }
}

// SAFETY: the blocks come from the buddy allocator (each handed out once, never
// freed by the heap), and `new`'s contract says `map` returns where they are mapped
// read/write and that nothing else uses them.
unsafe impl<S, const N: usize, M> PageSource for BuddyPages<S, N, M>
where
    S: PageStorage + 'static,
    LockedPageAllocator<S, N>: Sync,
    M: Fn(PhysAddr) -> Option<NonNull<u8>> + Send,
{
    fn alloc_pages(&mut self, order: u32) -> Option<NonNull<u8>> {
        let block = self.buddy.alloc_pages(Gfp::KERNEL, order).ok()?;
        match (self.map)(block.phys()) {
            Some(p) => Some(p),
            None => {
                // Not reachable: give it back rather than lose it.
                let _ = self.buddy.free_pages(block);
                None
            }
        }
    }
}
