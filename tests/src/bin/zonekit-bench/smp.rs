//! `zonekit-bench smp`: zonekit on several CPUs (host threads).
//!
//! * Zone-lock acquisitions per 1000 order-0 operations on each CPU, from the
//!   allocator's own per-CPU vmstat event (deterministic: memory never runs out, so
//!   no CPU drains another's lists), for back-to-back pairs and for runs of 512
//!   and of 4096 allocations then as many frees (the first fits below the lists'
//!   `high`, the second refills and drains a batch at a time).
//! * Throughput with 1 and 2 threads: [`SmpPageAllocator`] (per-CPU pagesets, zone
//!   lock for batches) against the same [`PageAllocator`] behind one `spin::Mutex`
//!   (every operation takes the lock), wall-clock ns per operation per thread,
//!   interleaved round by round, medians.

use crate::peers::zonekit_allocator;
use std::time::Instant;
use zonekit_core::page_alloc::smp::vmstat::VmEvent;
use zonekit_core::page_alloc::{Gfp, PageAllocator, SmpPageAllocator};
use zonekit_core::percpu::{CpuToken, CpuTokens};
use zonekit_core::storage::VecPageStorage;

type Smp<'a> = SmpPageAllocator<'a, VecPageStorage, 2>;
type Locked = spin::Mutex<PageAllocator<VecPageStorage, 2>>;

/// One thread's work: `runs` times, `burst` order-0 allocations then their frees.
fn bursts(mut alloc: impl FnMut() -> u64, mut free: impl FnMut(u64), runs: usize, burst: usize) {
    let mut held = Vec::with_capacity(burst);
    for _ in 0..runs {
        held.extend((0..burst).map(|_| alloc()));
        for pfn in held.drain(..) {
            free(pfn);
        }
    }
}

fn on_smp(a: &Smp<'_>, cpu: &mut CpuToken, runs: usize, burst: usize) {
    let cpu = core::cell::RefCell::new(cpu);
    bursts(
        || {
            a.alloc_pages(&mut cpu.borrow_mut(), Gfp::KERNEL, 0)
                .expect("alloc")
                .pfn()
        },
        |pfn| {
            a.free_pages_raw(&mut cpu.borrow_mut(), pfn, 0)
                .expect("free")
        },
        runs,
        burst,
    );
}

fn on_locked(a: &Locked, cpu: usize, runs: usize, burst: usize) {
    bursts(
        || {
            a.lock()
                .alloc_pages(cpu, Gfp::KERNEL, 0)
                .expect("alloc")
                .pfn()
        },
        |pfn| a.lock().free_pages_raw(cpu, pfn, 0).expect("free"),
        runs,
        burst,
    );
}

/// Zone-lock acquisitions per 1000 operations on each of 2 CPUs, `burst` at a time.
fn lock_counts(burst: usize) -> Result<[f64; 2], String> {
    let mut owned = zonekit_allocator::<2>();
    let start = owned.nr_free_pages() + owned.nr_pcp_pages();
    let a: Smp<'_> = SmpPageAllocator::new(&mut owned);
    let tokens = CpuTokens::<2>::new();
    let ops = 100_000usize;
    let runs = ops / (2 * burst);
    std::thread::scope(|s| {
        for c in 0..2 {
            let mut t = tokens.claim(c).expect("token");
            let a = &a;
            s.spawn(move || on_smp(a, &mut t, runs, burst));
        }
    });
    let per =
        |c: usize| a.cpu_events(c, VmEvent::ZoneLock) as f64 * 1000.0 / (runs * 2 * burst) as f64;
    let r = [per(0), per(1)];
    drop(a);
    if owned.nr_free_pages() + owned.nr_pcp_pages() != start {
        return Err("smp: free pages not restored".into());
    }
    Ok(r)
}

/// Wall-clock ns per operation per thread for `threads` threads.
fn throughput(threads: usize, smp: bool, runs: usize, burst: usize) -> f64 {
    let ops = (threads * runs * 2 * burst) as f64;
    let t0;
    if smp {
        let mut owned = zonekit_allocator::<2>();
        let a: Smp<'_> = SmpPageAllocator::new(&mut owned);
        let tokens = CpuTokens::<2>::new();
        t0 = Instant::now();
        std::thread::scope(|s| {
            for c in 0..threads {
                let mut t = tokens.claim(c).expect("token");
                let a = &a;
                s.spawn(move || on_smp(a, &mut t, runs, burst));
            }
        });
    } else {
        let a: Locked = spin::Mutex::new(zonekit_allocator::<2>());
        t0 = Instant::now();
        std::thread::scope(|s| {
            for c in 0..threads {
                let a = &a;
                s.spawn(move || on_locked(a, c, runs, burst));
            }
        });
    }
    t0.elapsed().as_nanos() as f64 * threads as f64 / ops
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Print the `smp ...` lines `cargo xtask bench` reads.
pub fn run(rounds: usize) -> Result<(), String> {
    for (name, burst) in [("pairs", 1), ("burst512", 512), ("burst4096", 4096)] {
        let [c0, c1] = lock_counts(burst)?;
        println!("smp locks {name} cpu0={c0:.2} cpu1={c1:.2}");
    }
    let batch = zonekit_allocator::<2>()
        .pcp(0, zonekit_core::mmzone::ZoneType::Normal)
        .map_or(0, |p| p.batch);
    println!("smp batch {batch}");
    for threads in [1, 2] {
        let (mut s, mut m) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            // Alternate which goes first; 64-page bursts, 200 000 operations a run.
            let order = if r % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for smp in order {
                let ns = throughput(threads, smp, 1562, 64);
                if smp {
                    s.push(ns)
                } else {
                    m.push(ns)
                }
            }
        }
        println!(
            "smp time threads={threads} smp={:.2} mutex={:.2}",
            median(&mut s),
            median(&mut m)
        );
    }
    Ok(())
}
