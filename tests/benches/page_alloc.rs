//! Host benchmarks of zonekit's page allocator against `buddy_system_allocator`'s
//! `FrameAllocator`, run by `cargo xtask bench` (which reads criterion's estimates and
//! writes BENCHMARKS.md). Same workloads, same number of free frames, same run.
//!
//! * `order0/*`: allocate one page and free it again (the per-CPU fast path).
//! * `order0_batch/*`: allocate 1024 single pages, then free them all (one iteration
//!   = 1024 pairs; criterion's time is divided by 1024 in BENCHMARKS.md).
//! * `order3/*`: the same with 8-page blocks.
//! * `mixed/*`: a xorshift-driven mix of allocations of orders 0-3 and frees of
//!   random live blocks (at most 4096 live), one operation per iteration.
//! * `free_all_1g/zonekit`: `memblock_free_all` of a freshly booted 1 GiB node.
// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use buddy_system_allocator::FrameAllocator;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use zonekit_arch_arm::bootmem::{boot, BootParams, BootedMemory};
use zonekit_arch_arm::hooks::NoHooks;
use zonekit_core::addr::MemRange;
use zonekit_core::page_alloc::{memblock_free_all, AllocConfig, Gfp, PageAllocator, PageBlock};
use zonekit_core::source::StaticMemoryMap;
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MmConfig;

const BASE: u64 = 0x6000_0000;
const MIB: u64 = 1 << 20;
/// RAM of the node the alloc/free workloads run on (all lowmem).
const ALLOC_RAM: u64 = 512 * MIB;
/// Live blocks the mixed workload keeps at most.
const MIXED_LIVE: usize = 4096;

fn booted(ram: u64) -> BootedMemory<VecPageStorage> {
    let source = StaticMemoryMap::single_bank(BASE, ram);
    let params = BootParams {
        source: &source,
        cmdline: "",
        dma_zone_size: None,
        kernel_image: MemRange::new(BASE + 0x8000, 0x80_0000),
        boot_data: &[MemRange::new(BASE + 0x100, 0x1000)],
        mm: MmConfig::ZONEKIT,
    };
    let mut storage = VecPageStorage::default();
    boot(&params, &mut storage, &mut NoHooks).expect("boot")
}

fn zonekit_allocator(ram: u64) -> PageAllocator<VecPageStorage, 1> {
    let BootedMemory {
        memblock,
        mut node,
        limits,
        ..
    } = booted(ram);
    memblock_free_all(&mut node, &memblock, limits.max_low);
    PageAllocator::new(
        node,
        VecPageStorage::default(),
        AllocConfig::new(limits.max_low, BASE),
    )
}

/// A `FrameAllocator` holding as many frames as zonekit has free, at the same PFNs
/// (one contiguous range from the first free PFN).
fn bsa_allocator(frames: usize) -> FrameAllocator {
    let mut f = FrameAllocator::<32>::new();
    let start = ((BASE >> 12) + 0x1000) as usize;
    f.add_frame(start, start + frames);
    f
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn bench_pairs(c: &mut Criterion, order: u32, group: &str) {
    let mut g = c.benchmark_group(group);
    let mut z = zonekit_allocator(ALLOC_RAM);
    let frames = z.nr_free_pages() as usize;
    g.bench_function("zonekit", |b| {
        b.iter(|| {
            let blk = z.alloc_pages(0, Gfp::KERNEL, black_box(order)).unwrap();
            z.free_pages(0, black_box(blk)).unwrap();
        })
    });
    let mut f = bsa_allocator(frames);
    let count = 1usize << order;
    g.bench_function("buddy_system_allocator", |b| {
        b.iter(|| {
            let at = f.alloc(black_box(count)).unwrap();
            f.dealloc(black_box(at), count);
        })
    });
    g.finish();
}

fn order0(c: &mut Criterion) {
    bench_pairs(c, 0, "order0");
}

/// Pages held at once by the batch workload.
pub const BATCH: usize = 1024;

fn order0_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("order0_batch");
    let mut z = zonekit_allocator(ALLOC_RAM);
    let frames = z.nr_free_pages() as usize;
    let mut held: Vec<PageBlock> = Vec::with_capacity(BATCH);
    g.bench_function("zonekit", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                held.push(z.alloc_pages(0, Gfp::KERNEL, 0).unwrap());
            }
            for blk in held.drain(..) {
                z.free_pages(0, blk).unwrap();
            }
        })
    });
    let mut f = bsa_allocator(frames);
    let mut held: Vec<usize> = Vec::with_capacity(BATCH);
    g.bench_function("buddy_system_allocator", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                held.push(f.alloc(1).unwrap());
            }
            for at in held.drain(..) {
                f.dealloc(at, 1);
            }
        })
    });
    g.finish();
}

fn order3(c: &mut Criterion) {
    bench_pairs(c, 3, "order3");
}

fn mixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixed");
    let mut z = zonekit_allocator(ALLOC_RAM);
    let frames = z.nr_free_pages() as usize;
    let mut live: Vec<PageBlock> = Vec::with_capacity(MIXED_LIVE);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    g.bench_function("zonekit", |b| {
        b.iter(|| {
            let r = rng.next();
            if live.len() == MIXED_LIVE || (r & 1 == 1 && !live.is_empty()) {
                let i = (r >> 8) as usize % live.len();
                z.free_pages(0, live.swap_remove(i)).unwrap();
            } else {
                let order = ((r >> 1) & 3) as u32;
                live.push(z.alloc_pages(0, Gfp::KERNEL, order).unwrap());
            }
        })
    });
    let mut f = bsa_allocator(frames);
    let mut live: Vec<(usize, usize)> = Vec::with_capacity(MIXED_LIVE);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    g.bench_function("buddy_system_allocator", |b| {
        b.iter(|| {
            let r = rng.next();
            if live.len() == MIXED_LIVE || (r & 1 == 1 && !live.is_empty()) {
                let i = (r >> 8) as usize % live.len();
                let (at, n) = live.swap_remove(i);
                f.dealloc(at, n);
            } else {
                let n = 1usize << ((r >> 1) & 3);
                live.push((f.alloc(n).unwrap(), n));
            }
        })
    });
    g.finish();
}

fn free_all_1g(c: &mut Criterion) {
    let mut g = c.benchmark_group("free_all_1g");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("zonekit", |b| {
        b.iter_batched(
            || booted(1 << 30),
            |bm| {
                let BootedMemory {
                    memblock,
                    mut node,
                    limits,
                    ..
                } = bm;
                let stats = memblock_free_all(&mut node, &memblock, limits.max_low);
                black_box(stats);
                node
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, order0, order0_batch, order3, mixed, free_all_1g);
criterion_main!(benches);
