//! The shared allocator ([`SmpPageAllocator`]) under real threads: each thread is a
//! CPU with its own token, allocating and freeing orders 0-3 at random while an
//! ownership table catches any page handed out twice; at the end the invariant check
//! finds every page accounted for and the free counts equal the start. Also the
//! zone-lock count of the order-0 fast path (about one per batch).

use std::sync::atomic::{AtomicU32, Ordering};

use zonekit_core::mmzone::ZoneType;
use zonekit_core::page_alloc::smp::vmstat::{VmEvent, ZoneStatItem};
use zonekit_core::page_alloc::{AllocError, FreeError, Gfp, PageAllocator, SmpPageAllocator};
use zonekit_core::percpu::CpuTokens;
use zonekit_core::selftest::smp::{
    smp_selftest_cpu, smp_selftest_start, smp_selftest_verdict, CpuRun, PagePatterns,
};
use zonekit_core::storage::VecPageStorage;

const BASE_PFN: u64 = 0x60000;

/// `mib` MiB at 0x60000000 in one zone, 1 MiB reserved at +1 MiB.
fn allocator<const N: usize>(mib: u64) -> PageAllocator<VecPageStorage, N> {
    let reserved = ((BASE_PFN << 12) + (1 << 20), 1 << 20);
    zonekit_tests::one_zone_allocator(BASE_PFN, mib << 8, Some(reserved))
}

/// One pattern word per page (the host has no page memory to write).
struct Patterns(Vec<AtomicU32>);

impl PagePatterns for Patterns {
    fn fill(&self, pfn: u64, order: u32, pattern: u32) {
        for p in pfn..pfn + (1 << order) {
            self.0[(p - BASE_PFN) as usize].store(pattern, Ordering::Relaxed);
        }
    }
    fn holds(&self, pfn: u64, order: u32, pattern: u32) -> bool {
        (pfn..pfn + (1 << order))
            .all(|p| self.0[(p - BASE_PFN) as usize].load(Ordering::Relaxed) == pattern)
    }
}

/// The concurrent self-test on `threads` CPUs at once; the failed allocations.
fn stress<const N: usize>(threads: usize, mib: u64, steps: u64, max_held: usize) -> u64 {
    let mut owned = allocator::<N>(mib);
    let managed = owned.managed(ZoneType::Dma);
    let a = SmpPageAllocator::<_, N>::new(&mut owned);
    let free0 = smp_selftest_start(&a);
    let tokens: CpuTokens<N> = CpuTokens::new();
    let mem = Patterns((0..mib << 8).map(|_| AtomicU32::new(0)).collect());
    let runs: Vec<CpuRun> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|t| {
                let mut cpu = tokens.claim(t).unwrap();
                let (a, mem) = (&a, &mem);
                s.spawn(move || {
                    smp_selftest_cpu(a, &mut cpu, mem, Gfp::KERNEL, 0x9e37_79b9, steps, max_held)
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap().expect("cpu run"))
            .collect()
    });
    assert!(runs.iter().all(|r| r.blocks > 0));
    smp_selftest_verdict(&a, free0).expect("verdict");
    assert_eq!(a.vm_events(VmEvent::PgAlloc), a.vm_events(VmEvent::PgFree));
    drop(a);
    assert_eq!(owned.nr_free_pages(), free0, "the lists came back on drop");
    assert_eq!(owned.allocated(ZoneType::Dma), 0);
    assert_eq!(owned.managed(ZoneType::Dma), managed);
    runs.iter().map(|r| r.no_memory).sum()
}

#[test]
fn four_threads_share_the_allocator_and_nothing_is_lost() {
    assert_eq!(stress::<4>(4, 64, 100_000, 64), 0);
}

#[test]
fn two_threads_exhaust_memory_and_drain_each_other() {
    // Small memory, many blocks held: allocations fail, drain_all_pages runs across
    // the CPUs, and everything still comes back.
    assert!(stress::<2>(2, 1, 20_000, 64) > 0, "memory never ran out");
}

#[test]
fn a_token_names_its_cpu_and_foreign_or_double_frees_are_refused() {
    let mut owned = allocator::<2>(64);
    let a = SmpPageAllocator::<_, 2>::new(&mut owned);
    let tokens: CpuTokens<2> = CpuTokens::new();
    let mut c0 = tokens.claim(0).unwrap();
    let mut c1 = tokens.claim(1).unwrap();
    let b = a.alloc_pages(&mut c0, Gfp::KERNEL, 0).unwrap();
    let pfn = b.pfn();
    assert!(a.cpu_pcp_pages(0) > 0 && a.cpu_pcp_pages(1) == 0);
    // Freed on the other CPU: it lands on that CPU's lists.
    a.free_pages(&mut c1, b).unwrap();
    assert_eq!(
        a.free_pages_raw(&mut c0, pfn, 0),
        Err(FreeError::AlreadyFree(pfn))
    );
    assert_eq!(
        a.free_pages_raw(&mut c0, 0x1000, 0),
        Err(FreeError::OutsideNode(0x1000))
    );
    // A token from another, larger set names a CPU this allocator does not have.
    let other: CpuTokens<4> = CpuTokens::new();
    let mut c3 = other.claim(3).unwrap();
    assert_eq!(
        a.alloc_pages(&mut c3, Gfp::KERNEL, 0),
        Err(AllocError::BadCpu(3))
    );
    a.with_all(|a| a.check_invariants()).unwrap();
}

#[test]
fn order0_fast_path_takes_the_zone_lock_once_per_batch() {
    let mut owned = allocator::<1>(64);
    let a = SmpPageAllocator::<_, 1>::new(&mut owned);
    let batch = a.with_all(|a| a.pcp(0, ZoneType::Dma).unwrap().batch) as usize;
    let mut cpu = CpuTokens::<1>::new().claim(0).unwrap();
    let mut held = Vec::new();
    let locks0 = a.cpu_events(0, VmEvent::ZoneLock);
    for _ in 0..10 {
        for _ in 0..50 {
            held.push(a.alloc_pages(&mut cpu, Gfp::KERNEL, 0).unwrap());
        }
        for b in held.drain(..) {
            a.free_pages(&mut cpu, b).unwrap();
        }
    }
    let locks = a.cpu_events(0, VmEvent::ZoneLock) - locks0;
    // 1000 operations: refills of `batch` pages and drains above `high`.
    assert!(
        locks <= 2 * 1000 / batch + 2,
        "{locks} zone-lock acquisitions, batch {batch}"
    );
    assert!(locks >= 1);
    let parked = a.cpu_pcp_pages(0);
    assert!(parked > 0);
    let before = a.zone_page_state_snapshot(ZoneType::Dma, ZoneStatItem::NrFreePages);
    a.drain_all_pages();
    let after = a.zone_page_state_snapshot(ZoneType::Dma, ZoneStatItem::NrFreePages);
    assert_eq!((after - before, a.cpu_pcp_pages(0)), (parked, 0));
}

/// Two CPUs free the same block at once, round after round, while a third keeps
/// draining everyone's lists (so the frees also meet busy pageset locks and take
/// the zone-locked path): exactly one free of each round succeeds, and at the end
/// no page is on two lists and the free count is the start's. A page on two lists
/// can also hang a later drain, so the run has a deadline (a hang detector, not a
/// speed test: it finishes in well under a second).
#[test]
fn concurrent_double_frees_have_exactly_one_winner() {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::{Barrier, Mutex};
    const ROUNDS: u32 = 20_000;
    type Smp = SmpPageAllocator<'static, VecPageStorage, 3>;
    let owned = Box::leak(Box::new(allocator::<3>(16)));
    let a: &'static Smp = Box::leak(Box::new(SmpPageAllocator::new(owned)));
    let tokens: &'static CpuTokens<3> = Box::leak(Box::new(CpuTokens::new()));
    let run = move || -> Vec<String> {
        let free0 = smp_selftest_start(a);
        let (block, wins, stop) = (AtomicU64::new(0), AtomicU32::new(0), AtomicBool::new(false));
        let (barrier, errors) = (Barrier::new(2), Mutex::new(Vec::new()));
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    a.drain_all_pages();
                }
            });
            let freers: Vec<_> = (0..2)
                .map(|t| {
                    let mut cpu = tokens.claim(t).unwrap();
                    let (block, wins, barrier, errors) = (&block, &wins, &barrier, &errors);
                    s.spawn(move || {
                        for round in 0..ROUNDS {
                            let order = round % 4;
                            if t == 0 {
                                let pfn = match a.alloc_pages(&mut cpu, Gfp::KERNEL, order) {
                                    Ok(b) => b.into_raw().0,
                                    Err(e) => {
                                        errors
                                            .lock()
                                            .unwrap()
                                            .push(format!("round {round}: {e:?}"));
                                        u64::MAX
                                    }
                                };
                                block.store(pfn, Ordering::Relaxed);
                            }
                            barrier.wait();
                            let pfn = block.load(Ordering::Relaxed);
                            // Sweep the two frees across each other, round by round.
                            let d = round.wrapping_mul(2_654_435_761) >> 27;
                            let delay = if t == 0 { d } else { 31 - d };
                            for _ in 0..delay {
                                std::hint::spin_loop();
                            }
                            match a.free_pages_raw(&mut cpu, pfn, order) {
                                Ok(()) => {
                                    wins.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(FreeError::AlreadyFree(_) | FreeError::NotHead(_)) => {}
                                Err(e) => {
                                    errors.lock().unwrap().push(format!("round {round}: {e}"))
                                }
                            }
                            barrier.wait();
                            let n = if t == 0 {
                                wins.swap(0, Ordering::Relaxed)
                            } else {
                                1
                            };
                            if n != 1 {
                                errors
                                    .lock()
                                    .unwrap()
                                    .push(format!("round {round}: {n} frees won"));
                            }
                        }
                    })
                })
                .collect();
            for f in freers {
                let _ = f.join();
            }
            stop.store(true, Ordering::Relaxed);
        });
        let mut errors = errors.into_inner().unwrap();
        if let Err(e) = a.with_all(|a| a.check_invariants()) {
            errors.push(format!("invariants: {e:?}"));
        }
        if smp_selftest_start(a) != free0 {
            errors.push("free pages differ from the start".into());
        }
        errors
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(run()));
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(errors) => assert!(
            errors.is_empty(),
            "{} errors: {:?}",
            errors.len(),
            &errors[..errors.len().min(5)]
        ),
        Err(_) => panic!("the allocator hung under concurrent double frees"),
    }
}

/// What the fast path reads of the zone's watermark (published under the zone
/// lock) stays fresh from a full zone to exhaustion and back: `with_all` checks it
/// in debug builds at every step, and the invariant check each time.
#[test]
fn the_fast_paths_watermark_orders_follow_the_zone_to_exhaustion_and_back() {
    let mut owned = allocator::<1>(8);
    let free0 = owned.nr_free_pages();
    let a = SmpPageAllocator::<_, 1>::new(&mut owned);
    let tokens: CpuTokens<1> = CpuTokens::new();
    let mut cpu = tokens.claim(0).unwrap();
    let mut held = Vec::new();
    loop {
        let order = (held.len() % 4) as u32;
        match a.alloc_pages(&mut cpu, Gfp::KERNEL, order) {
            Ok(b) => held.push(b),
            Err(AllocError::NoMemory) => break,
            Err(e) => panic!("order {order}: {e:?}"),
        }
        a.with_all(|p| p.check_invariants().map(drop)).unwrap();
    }
    assert!(held.len() > 100, "only {} blocks", held.len());
    while let Some(b) = held.pop() {
        a.free_pages(&mut cpu, b).unwrap();
        a.with_all(|p| p.check_invariants().map(drop)).unwrap();
    }
    drop(a);
    owned.drain_all_pages();
    assert_eq!(owned.nr_free_pages(), free0);
}
