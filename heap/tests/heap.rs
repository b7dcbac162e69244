//! The heap on the host: grown by pages from an arena and from zonekit's buddy
//! allocator (simulated storage, its pages mapped into an arena), driven through
//! `GlobalAlloc` as `Box`/`Vec` would drive it.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::ptr::NonNull;

use zonekit_core::page_alloc::LockedPageAllocator;
use zonekit_core::storage::VecPageStorage;
use zonekit_heap::{HeapStats, PageHeap, PageSource, MIN_GROWTH_PAGES, PAGE_SIZE};

/// A page-aligned arena leaked for the test's lifetime.
fn arena(pages: usize) -> NonNull<u8> {
    let layout = Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).unwrap();
    // SAFETY: a non-zero size; the memory is leaked, so it outlives every use.
    NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).unwrap()
}

/// Hands out an arena's pages in order, then none.
struct Bump {
    next: usize,
    pages: usize,
    base: usize,
    calls: usize,
}

// SAFETY: the arena is the test's, mapped read/write, and each page is handed out
// once.
unsafe impl PageSource for Bump {
    fn alloc_pages(&mut self, order: u32) -> Option<NonNull<u8>> {
        self.calls += 1;
        let n = 1usize << order;
        // Blocks are aligned to their size, as the buddy allocator's are.
        let first = self.next.next_multiple_of(n);
        if first + n > self.pages {
            return None;
        }
        self.next = first + n;
        NonNull::new((self.base + first * PAGE_SIZE) as *mut u8)
    }
}

fn bump(pages: usize) -> Bump {
    Bump {
        next: 0,
        pages,
        base: arena(pages).as_ptr() as usize,
        calls: 0,
    }
}

fn fill(p: *mut u8, len: usize, seed: u8) {
    for i in 0..len {
        // SAFETY: `p` is a live allocation of at least `len` bytes.
        unsafe { p.add(i).write(seed.wrapping_add(i as u8)) };
    }
}

fn holds(p: *mut u8, len: usize, seed: u8) -> bool {
    // SAFETY: as in `fill`.
    (0..len).all(|i| unsafe { p.add(i).read() } == seed.wrapping_add(i as u8))
}

#[test]
fn nothing_before_init_then_growth_by_pages() {
    let heap: PageHeap<Bump> = PageHeap::new();
    let l = Layout::from_size_align(64, 8).unwrap();
    // SAFETY: a valid layout; a null result is checked.
    assert!(unsafe { heap.alloc(l) }.is_null(), "no source yet");
    assert_eq!(heap.stats().refused, 1);
    heap.init(bump(256));
    let mut live = Vec::new();
    for i in 0..1000usize {
        let l = Layout::from_size_align(8 + i % 200, 1 << (i % 5)).unwrap();
        // SAFETY: as above.
        let p = unsafe { heap.alloc(l) };
        assert!(!p.is_null(), "allocation {i}");
        assert_eq!(p as usize % l.align(), 0);
        fill(p, l.size(), i as u8);
        live.push((p, l, i as u8));
    }
    let s = heap.stats();
    assert!(s.pages >= MIN_GROWTH_PAGES && s.pages.is_power_of_two() || s.growths > 1);
    assert!(s.growths <= 8, "grew {} times for ~100 KiB", s.growths);
    for (p, l, seed) in &live {
        assert!(holds(*p, l.size(), *seed), "an allocation was overwritten");
    }
    for (p, l, _) in live.drain(..).step_by(2) {
        // SAFETY: allocated above with `l`, freed once.
        unsafe { heap.dealloc(p, l) };
    }
    // Freed memory is reused before the heap grows again.
    let before = heap.stats().pages;
    for _ in 0..200 {
        let l = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: as above (leaked: the heap is dropped with the test).
        assert!(!unsafe { heap.alloc(l) }.is_null());
    }
    assert_eq!(heap.stats().pages, before);
}

#[test]
fn exhausted_source_is_a_null_not_a_panic() {
    let heap: PageHeap<Bump> = PageHeap::new();
    heap.init(bump(32));
    let big = Layout::from_size_align(64 * PAGE_SIZE, PAGE_SIZE).unwrap();
    // SAFETY: a valid layout.
    assert!(unsafe { heap.alloc(big) }.is_null());
    let small = Layout::from_size_align(100, 4).unwrap();
    // SAFETY: a valid layout.
    let p = unsafe { heap.alloc(small) };
    assert!(!p.is_null(), "what fits still works");
    let s: HeapStats = heap.stats();
    assert!(s.refused >= 1 && s.pages <= 32);
    // realloc keeps the contents.
    fill(p, 100, 7);
    // SAFETY: `p` came from `heap` with `small`.
    let q = unsafe { heap.realloc(p, small, 3000) };
    assert!(!q.is_null() && holds(q, 100, 7));
}

/// zonekit's buddy allocator over simulated storage: 16 MiB at 0x60000000, its pages
/// mapped into a host arena.
fn buddy() -> (&'static LockedPageAllocator<VecPageStorage, 1>, usize) {
    let a = zonekit_core::page_alloc::host::one_zone_allocator(
        0x60000,
        4096,
        Some((0x6000_0000, 1 << 20)),
    )
    .unwrap();
    let arena = arena(4096).as_ptr() as usize;
    (Box::leak(Box::new(LockedPageAllocator::new(a))), arena)
}

#[test]
fn buddy_pages_feed_a_vec_and_a_btreemap() {
    let (buddy, arena) = buddy();
    let free = || {
        let b = buddy.lock();
        b.nr_free_pages() + b.nr_pcp_pages()
    };
    let free_before = free();
    let map = move |phys: u64| NonNull::new((arena + (phys - 0x6000_0000) as usize) as *mut u8);
    // SAFETY: the arena covers the node's 16 MiB one to one and is used by nothing
    // but the heap.
    let pages = unsafe { zonekit_heap::BuddyPages::new(buddy, map) };
    let heap = PageHeap::new();
    heap.init(pages);
    // A Vec's and a BTreeMap's worth of allocations, through the heap.
    let mut blocks = BTreeMap::new();
    for i in 0..500u32 {
        let l = Layout::from_size_align(16 + (i as usize * 37) % 900, 8).unwrap();
        // SAFETY: a valid layout.
        let p = unsafe { heap.alloc(l) };
        assert!(!p.is_null());
        fill(p, l.size(), i as u8);
        blocks.insert(i, (p, l));
    }
    let taken = heap.stats().pages;
    let free_after = free();
    assert_eq!(
        free_before - free_after,
        taken as u64,
        "every page the heap took is accounted"
    );
    buddy.lock().check_invariants().unwrap();
    for (i, (p, l)) in &blocks {
        assert!(holds(*p, l.size(), *i as u8));
    }
}
