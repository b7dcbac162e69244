//! The allocators the harness compares, behind one small trait: zonekit's page
//! allocator, `buddy_system_allocator`'s `FrameAllocator`, `bitmap-allocator`'s
//! segment-tree bitmap and a bare stack per order (the floor). Each holds the same
//! number of free frames.

use bitmap_allocator::{BitAlloc, BitAlloc1M};
use buddy_system_allocator::FrameAllocator;
use zonekit_arch_arm::bootmem::{boot, BootParams, BootedMemory};
use zonekit_arch_arm::hooks::NoHooks;
use zonekit_core::addr::MemRange;
use zonekit_core::page_alloc::{memblock_free_all, AllocConfig, Gfp, PageAllocator};
use zonekit_core::source::StaticMemoryMap;
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MmConfig;

const BASE: u64 = 0x6000_0000;
/// RAM of the zonekit node (all lowmem): 512 MiB.
const RAM: u64 = 512 << 20;
/// First frame the peers hand out (aligned to 4096 frames, so that relative and
/// absolute alignment agree for every order used).
pub const PEER_START: usize = ((BASE >> 12) + 0x1000) as usize;

/// One frame allocator: blocks of `2^order` frames, identified by their first frame.
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
}

/// zonekit's `PageAllocator` on a 512 MiB node after `memblock_free_all`, CPU 0.
pub struct Zonekit(PageAllocator<VecPageStorage, 1>);

impl Zonekit {
    /// Boot the node and build the allocator.
    pub fn new() -> Zonekit {
        let source = StaticMemoryMap::single_bank(BASE, RAM);
        let params = BootParams {
            source: &source,
            kernel_image: MemRange::new(BASE + 0x8000, 0x80_0000),
            boot_data: &[MemRange::new(BASE + 0x100, 0x1000)],
            mm: MmConfig::ZONEKIT,
        };
        let mut storage = VecPageStorage::default();
        let BootedMemory {
            memblock,
            mut node,
            limits,
            ..
        } = boot(&params, &mut storage, &mut NoHooks).expect("boot");
        memblock_free_all(&mut node, &memblock, limits.max_low);
        Zonekit(PageAllocator::new(
            node,
            VecPageStorage::default(),
            AllocConfig::new(limits.max_low, BASE),
        ))
    }
}

impl Frames for Zonekit {
    const NAME: &'static str = "zonekit";
    const MAX_ORDER: u32 = 10;
    #[inline]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        match self.0.alloc_pages(0, Gfp::KERNEL, order) {
            Ok(b) => Some(b.pfn() as usize),
            Err(_) => None,
        }
    }
    #[inline]
    fn free(&mut self, frame: usize, order: u32) {
        if self.0.free_pages_raw(0, frame as u64, order).is_err() {
            panic!("zonekit refused a free");
        }
    }
    fn free_frames(&self) -> usize {
        (self.0.nr_free_pages() + self.0.nr_pcp_pages()) as usize
    }
    fn alloc_all_in(&mut self, order: u32) -> Option<usize> {
        self.0
            .alloc_pages(0, Gfp::MEMALLOC, order)
            .ok()
            .map(|b| b.pfn() as usize)
    }
}

/// `buddy_system_allocator::FrameAllocator::<32>` with one range of frames.
pub struct Bsa(FrameAllocator<32>, usize);

impl Bsa {
    /// `frames` frames from [`PEER_START`].
    pub fn new(frames: usize) -> Bsa {
        let mut f = FrameAllocator::<32>::new();
        f.add_frame(PEER_START, PEER_START + frames);
        Bsa(f, frames)
    }
}

impl Frames for Bsa {
    const NAME: &'static str = "buddy_system_allocator";
    const MAX_ORDER: u32 = 31;
    #[inline]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        let f = self.0.alloc(1 << order)?;
        self.1 -= 1 << order;
        Some(f)
    }
    #[inline]
    fn free(&mut self, frame: usize, order: u32) {
        self.0.dealloc(frame, 1 << order);
        self.1 += 1 << order;
    }
    fn free_frames(&self) -> usize {
        self.1
    }
}

/// `bitmap_allocator::BitAlloc1M` (frame = [`PEER_START`] + bit).
pub struct Bitmap(Box<BitAlloc1M>, usize);

impl Bitmap {
    /// `frames` frames from [`PEER_START`].
    pub fn new(frames: usize) -> Bitmap {
        let mut b: Box<BitAlloc1M> = Box::default();
        b.insert(0..frames);
        Bitmap(b, frames)
    }
}

impl Frames for Bitmap {
    const NAME: &'static str = "bitmap-allocator";
    const MAX_ORDER: u32 = 19;
    #[inline]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        let bit = if order == 0 {
            self.0.alloc()?
        } else {
            self.0.alloc_contiguous(None, 1 << order, order as usize)?
        };
        self.1 -= 1 << order;
        Some(PEER_START + bit)
    }
    #[inline]
    fn free(&mut self, frame: usize, order: u32) {
        let bit = frame - PEER_START;
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
    /// `frames` frames from [`PEER_START`], as order-3 blocks and a tail of order 0.
    pub fn new(frames: usize) -> Floor {
        let mut s: [Vec<usize>; FLOOR_ORDERS] = Default::default();
        for v in &mut s {
            v.reserve(frames);
        }
        let blocks = frames >> 3;
        s[3].extend((0..blocks).rev().map(|b| PEER_START + (b << 3)));
        s[0].extend((blocks << 3..frames).rev().map(|f| PEER_START + f));
        Floor(s, frames)
    }
}

impl Frames for Floor {
    const NAME: &'static str = "free-list stack (floor)";
    const MAX_ORDER: u32 = 3;
    #[inline]
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
    #[inline]
    fn free(&mut self, frame: usize, order: u32) {
        self.0[order as usize].push(frame);
        self.1 += 1 << order;
    }
    fn free_frames(&self) -> usize {
        self.1
    }
}
