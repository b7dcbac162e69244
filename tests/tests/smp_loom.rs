//! Model checking of the pageset-lock / zone-lock protocol with `loom`: the same
//! [`SmpPageAllocator`] code, its locks replaced by `loom::sync::Mutex`, run by two
//! CPUs whose every interleaving of lock operations (up to a preemption bound)
//! loom explores. Each interleaving must end without a deadlock, with no page
//! handed out twice, every page accounted for and the counts back at the start.

use loom::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use zonekit_core::page_alloc::smp::lock::{Lock, Locking};
use zonekit_core::page_alloc::{Gfp, PageAllocator, PageBlock, SmpPageAllocator};
use zonekit_core::percpu::{CpuToken, CpuTokens};
use zonekit_core::storage::VecPageStorage;

/// `loom::sync::Mutex` as an allocator lock.
struct LoomMutex<T>(loom::sync::Mutex<T>);

struct LoomLocking;

impl Locking for LoomLocking {
    type Mutex<T> = LoomMutex<T>;
}

impl<T> Lock<T> for LoomMutex<T> {
    type Guard<'a>
        = loom::sync::MutexGuard<'a, T>
    where
        T: 'a;
    fn new(value: T) -> Self {
        LoomMutex(loom::sync::Mutex::new(value))
    }
    fn lock(&self) -> Self::Guard<'_> {
        self.0.lock().unwrap()
    }
    fn try_lock(&self) -> Option<Self::Guard<'_>> {
        self.0.try_lock().ok()
    }
    fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap()
    }
}

type Shared = SmpPageAllocator<'static, VecPageStorage, 2, LoomLocking>;

const BASE_PFN: u64 = 0x60000;
const PAGES: u64 = 1024;

/// 4 MiB in one zone (`batch` 1, `high` small: every few operations refill or
/// drain under the zone lock).
fn allocator() -> PageAllocator<VecPageStorage, 2> {
    zonekit_tests::one_zone_allocator(BASE_PFN, PAGES, None)
}

/// Who holds each page (0: nobody, else CPU id + 1). Plain atomics: loom runs one
/// model thread at a time, so they see every take and give in order.
struct Owners(Vec<AtomicU32>);

impl Owners {
    fn take(&self, b: &PageBlock, who: u32) {
        for p in b.pfn()..b.pfn() + b.nr_pages() {
            let prev = self.0[(p - BASE_PFN) as usize].swap(who, Relaxed);
            assert_eq!(prev, 0, "pfn {p:#x} handed out twice");
        }
    }
    fn give(&self, b: &PageBlock) {
        for p in b.pfn()..b.pfn() + b.nr_pages() {
            self.0[(p - BASE_PFN) as usize].store(0, Relaxed);
        }
    }
}

fn alloc(a: &Shared, cpu: &mut CpuToken, o: &Owners, order: u32) -> PageBlock {
    let b = a.alloc_pages(cpu, Gfp::KERNEL, order).unwrap();
    o.take(&b, cpu.id() as u32 + 1);
    b
}

fn free(a: &Shared, cpu: &mut CpuToken, o: &Owners, b: PageBlock) {
    o.give(&b);
    a.free_pages(cpu, b).unwrap();
}

fn cpu0(a: &Shared, cpu: &mut CpuToken, o: &Owners) {
    let x = alloc(a, cpu, o, 0);
    let y = alloc(a, cpu, o, 3);
    free(a, cpu, o, x);
    free(a, cpu, o, y);
}

fn cpu1(a: &Shared, cpu: &mut CpuToken, o: &Owners) {
    let x = alloc(a, cpu, o, 0);
    let y = alloc(a, cpu, o, 1);
    free(a, cpu, o, x);
    free(a, cpu, o, y);
    // Drain both CPUs' lists while CPU 0 may be using its own.
    a.drain_all_pages();
}

#[test]
fn two_cpus_and_a_remote_drain_in_every_interleaving() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(4);
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    model.check(|| {
        RUNS.fetch_add(1, Relaxed);
        // Everything runs on model threads with room for the allocator's frames
        // (loom's default coroutine stacks are small).
        let big = || loom::thread::Builder::new().stack_size(4 << 20);
        let main = big().spawn(move || {
            // Leaked (a few KiB per interleaving): loom threads need 'static data.
            let owned: &'static mut _ = Box::leak(Box::new(allocator()));
            let free0 = owned.nr_free_pages();
            let a: Arc<Shared> = Arc::new(SmpPageAllocator::new(owned));
            let tokens = CpuTokens::<2>::new();
            let mut c0 = tokens.claim(0).unwrap();
            let mut c1 = tokens.claim(1).unwrap();
            let owners =
                std::sync::Arc::new(Owners((0..PAGES).map(|_| AtomicU32::new(0)).collect()));
            let (a1, o1) = (a.clone(), owners.clone());
            let t = big().spawn(move || cpu1(&a1, &mut c1, &o1)).unwrap();
            cpu0(&a, &mut c0, &owners);
            t.join().unwrap();
            let r = a.with_all(|a| a.check_invariants()).expect("invariants");
            assert_eq!(r.allocated, 0);
            a.drain_all_pages();
            assert_eq!(a.nr_free_pages(), free0);
        });
        main.unwrap().join().unwrap();
    });
    let runs = RUNS.load(Relaxed);
    eprintln!("loom explored {runs} interleavings");
    // The protocol has real choices: the lock orders of two CPUs and a remote drain.
    assert!(runs > 10, "only {runs} interleavings explored");
}
