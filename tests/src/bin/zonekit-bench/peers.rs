//! The allocators the harness compares, behind one small trait: zonekit's page
//! allocator, `buddy_system_allocator`'s `FrameAllocator`, `bitmap-allocator`'s
//! segment-tree bitmap and a bare stack per order (the floor). Each holds the same
//! free frames: the pfn ranges zonekit's `memblock_free_all` freed.

use bitmap_allocator::{BitAlloc, BitAlloc1M};
use buddy_system_allocator::FrameAllocator;
use std::ops::Range;
use zonekit_arch_arm::bootmem::{boot, BootParams, BootedMemory};
use zonekit_arch_arm::hooks::NoHooks;
use zonekit_core::addr::{pfn_down, pfn_up, MemRange};
use zonekit_core::memblock::{RegionFlags, NUMA_NO_NODE};
use zonekit_core::page_alloc::{memblock_free_all, AllocConfig, Gfp, PageAllocator};
use zonekit_core::source::StaticMemoryMap;
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MmConfig;

const BASE: u64 = 0x6000_0000;
/// RAM of the zonekit node (all lowmem): 512 MiB.
const RAM: u64 = 512 << 20;
/// Base of the bitmap's bit numbers: the node's first pfn, aligned to 4096 frames
/// (so that relative and absolute alignment agree for every order used).
const BITMAP_BASE: usize = (BASE >> 12) as usize;

/// One frame allocator: blocks of `2^order` frames, identified by their first frame.
///
/// Every implementation marks `alloc` and `free` `#[inline(always)]`, so that each
/// allocator's entry points land in the workload loop the way a kernel's call site
/// gets an `#[inline]` fast path (left to LLVM, whether a wrapper stays a call, its
/// prologue and `Option` return counted, depends on the wrapper's size).
pub trait Frames {
    /// Name in the tables.
    const NAME: &'static str;
    /// Highest order the allocator hands out.
    const MAX_ORDER: u32;
    /// A block of `2^order` frames, aligned to its size.
    fn alloc(&mut self, order: u32) -> Option<usize>;
    /// Give a block back. Panics when the allocator refuses it.
    fn free(&mut self, frame: usize, order: u32);
    /// Frames free (for zonekit: buddy plus per-CPU lists).
    fn free_frames(&self) -> usize;
    /// Allocate like [`Frames::alloc`], ignoring watermarks where the allocator has
    /// them (the fragmentation count asks what is left, not what is allowed).
    fn alloc_all_in(&mut self, order: u32) -> Option<usize> {
        self.alloc(order)
    }
    /// Free frames that cannot merge where they are (zonekit: its per-CPU lists).
    fn parked_frames(&self) -> usize {
        0
    }
}

/// zonekit's `PageAllocator` on a 512 MiB node after `memblock_free_all`, CPU 0.
pub struct Zonekit(PageAllocator<VecPageStorage, 1>);

fn booted() -> BootedMemory<VecPageStorage> {
    let source = StaticMemoryMap::single_bank(BASE, RAM);
    let params = BootParams {
        source: &source,
        kernel_image: MemRange::new(BASE + 0x8000, 0x80_0000),
        boot_data: &[MemRange::new(BASE + 0x100, 0x1000)],
        mm: MmConfig::ZONEKIT,
        cmdline: "",
        dma_zone_size: None,
    };
    let mut storage = VecPageStorage::default();
    boot(&params, &mut storage, &mut NoHooks).expect("boot")
}

/// The pfn ranges zonekit's `memblock_free_all` frees on that node (what the peers
/// are given, so that every allocator starts from the same free frames).
pub fn free_ranges() -> Vec<Range<usize>> {
    let b = booted();
    b.memblock
        .free_ranges(NUMA_NO_NODE, RegionFlags::NONE)
        .map(|(s, e, _)| pfn_up(s) as usize..pfn_down(e).min(b.limits.max_low) as usize)
        .filter(|r| !r.is_empty())
        .collect()
}

/// The 512 MiB node after `memblock_free_all`, as an allocator with lists for
/// `NCPU` CPUs (all online).
pub fn zonekit_allocator<const NCPU: usize>() -> PageAllocator<VecPageStorage, NCPU> {
    let BootedMemory {
        memblock,
        mut node,
        limits,
        ..
    } = booted();
    memblock_free_all(&mut node, &memblock, limits.max_low);
    PageAllocator::new(
        node,
        VecPageStorage::default(),
        AllocConfig::new(limits.max_low, BASE),
    )
}

impl Zonekit {
    /// Boot the node and build the allocator.
    pub fn new() -> Zonekit {
        Zonekit(zonekit_allocator())
    }
}

impl Frames for Zonekit {
    const NAME: &'static str = "zonekit";
    const MAX_ORDER: u32 = 10;
    #[inline(always)]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        match self.0.alloc_pages(0, Gfp::KERNEL, order) {
            Ok(b) => Some(b.pfn() as usize),
            Err(_) => None,
        }
    }
    #[inline(always)]
    fn free(&mut self, frame: usize, order: u32) {
        if self.0.free_pages_raw(0, frame as u64, order).is_err() {
            panic!("zonekit refused a free");
        }
    }
    fn free_frames(&self) -> usize {
        (self.0.nr_free_pages() + self.0.nr_pcp_pages()) as usize
    }
    fn parked_frames(&self) -> usize {
        self.0.nr_pcp_pages() as usize
    }
    fn alloc_all_in(&mut self, order: u32) -> Option<usize> {
        self.0
            .alloc_pages(0, Gfp::MEMALLOC, order)
            .ok()
            .map(|b| b.pfn() as usize)
    }
}

/// `buddy_system_allocator::FrameAllocator::<32>`.
pub struct Bsa(FrameAllocator<32>, usize);

impl Bsa {
    /// The frames of `ranges`.
    pub fn new(ranges: &[Range<usize>]) -> Bsa {
        let mut f = FrameAllocator::<32>::new();
        for r in ranges {
            f.add_frame(r.start, r.end);
        }
        Bsa(f, ranges.iter().map(|r| r.len()).sum())
    }
}

impl Frames for Bsa {
    const NAME: &'static str = "buddy_system_allocator";
    const MAX_ORDER: u32 = 31;
    #[inline(always)]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        let f = self.0.alloc(1 << order)?;
        self.1 -= 1 << order;
        Some(f)
    }
    #[inline(always)]
    fn free(&mut self, frame: usize, order: u32) {
        self.0.dealloc(frame, 1 << order);
        self.1 += 1 << order;
    }
    fn free_frames(&self) -> usize {
        self.1
    }
}

/// `bitmap_allocator::BitAlloc1M` (frame = `BITMAP_BASE` + bit).
pub struct Bitmap(Box<BitAlloc1M>, usize);

impl Bitmap {
    /// The frames of `ranges`.
    pub fn new(ranges: &[Range<usize>]) -> Bitmap {
        let mut b: Box<BitAlloc1M> = Box::default();
        for r in ranges {
            b.insert(r.start - BITMAP_BASE..r.end - BITMAP_BASE);
        }
        Bitmap(b, ranges.iter().map(|r| r.len()).sum())
    }
}

impl Frames for Bitmap {
    const NAME: &'static str = "bitmap-allocator";
    const MAX_ORDER: u32 = 19;
    #[inline(always)]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        let bit = if order == 0 {
            self.0.alloc()?
        } else {
            self.0.alloc_contiguous(None, 1 << order, order as usize)?
        };
        self.1 -= 1 << order;
        Some(BITMAP_BASE + bit)
    }
    #[inline(always)]
    fn free(&mut self, frame: usize, order: u32) {
        let bit = frame - BITMAP_BASE;
        let ok = if order == 0 {
            self.0.dealloc(bit)
        } else {
            self.0.dealloc_contiguous(bit, 1 << order)
        };
        if !ok {
            panic!("bitmap-allocator refused a free");
        }
        self.1 += 1 << order;
    }
    fn free_frames(&self) -> usize {
        self.1
    }
}

/// Orders the floor keeps stacks for (0..=3).
const FLOOR_ORDERS: usize = 4;

/// The floor: a `Vec` stack of free blocks per order 0-3, split on demand, never
/// merged (so no block above order 3 ever exists).
pub struct Floor([Vec<usize>; FLOOR_ORDERS], usize);

impl Floor {
    /// The frames of `ranges`, as the largest aligned blocks up to order 3.
    pub fn new(ranges: &[Range<usize>]) -> Floor {
        let frames: usize = ranges.iter().map(|r| r.len()).sum();
        let mut s: [Vec<usize>; FLOOR_ORDERS] = Default::default();
        for v in &mut s {
            v.reserve(frames);
        }
        for r in ranges.iter().rev() {
            let mut f = r.end;
            while f > r.start {
                // The largest aligned block ending at `f`.
                let o = (0..FLOOR_ORDERS)
                    .rev()
                    .find(|&o| f % (1 << o) == 0 && f - (1 << o) >= r.start)
                    .unwrap_or(0);
                f -= 1 << o;
                s[o].push(f);
            }
        }
        Floor(s, frames)
    }
}

impl Frames for Floor {
    const NAME: &'static str = "free-list stack (floor)";
    const MAX_ORDER: u32 = 3;
    #[inline(always)]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        let o = order as usize;
        let f = match self.0.get_mut(o)?.pop() {
            Some(f) => f,
            None => {
                let j = (o + 1..FLOOR_ORDERS).find(|&j| !self.0[j].is_empty())?;
                let f = self.0[j].pop()?;
                for k in (o..j).rev() {
                    self.0[k].push(f + (1 << k));
                }
                f
            }
        };
        self.1 -= 1 << order;
        Some(f)
    }
    #[inline(always)]
    fn free(&mut self, frame: usize, order: u32) {
        self.0[order as usize].push(frame);
        self.1 += 1 << order;
    }
    fn free_frames(&self) -> usize {
        self.1
    }
}
