//! The concurrent page allocator test of a boot with several CPUs: the allocator,
//! told how many CPUs came up (`zone_pcp_update`), is shared as an
//! [`SmpPageAllocator`] and every CPU runs `zonekit_core::selftest::smp` at once,
//! writing its pattern into what it holds and checking it before each free. Then,
//! all CPUs joined, the invariants and the free count are checked.
//!
//! The CPUs come from an [`EachCpu`]: the target runtime's `rt::smp::Smp`, or host
//! threads in the tests, so the same driver runs in both.

use zonekit_core::page_alloc::{Gfp, PageAllocator, SmpPageAllocator, MAX_CPUS};
use zonekit_core::percpu::CpuToken;
use zonekit_core::selftest::smp::{
    smp_selftest_cpu, smp_selftest_start, smp_selftest_verdict, CpuRun, PagePatterns, SmpTestError,
};
use zonekit_core::storage::PageStorage;
use zonekit_core::zk_info;

/// Exit code when an SMP test of the self-tested boot failed: the smoke test (not
/// every online CPU ran the `on_each_cpu` work once) or the concurrent page
/// allocator test.
pub const EXIT_SMP_TEST: u32 = 6;

/// Seed of the boot's concurrent test (fixed: the golden logs are deterministic
/// while memory does not run out, and the simulator's threads repeat the guest's
/// CPUs exactly).
pub const SMP_TEST_SEED: u64 = 0x5eed_c0de;

/// Random operations each CPU runs.
pub const SMP_TEST_STEPS: u64 = 4000;
/// Blocks each CPU holds at most (orders 0-3: at most 8 pages each).
pub const SMP_TEST_HELD: usize = 32;

/// Something that runs work on every online CPU at once and waits for all of them.
pub trait EachCpu {
    /// CPUs online.
    fn online(&self) -> usize;
    /// Run `work` on every online CPU (each with its own token), return when all
    /// finished.
    fn on_each_cpu(&mut self, work: &(dyn Fn(&mut CpuToken) + Sync));
}

/// Host threads as CPUs (the simulator and the host tests): one thread per id set
/// in `mask`, each with that id's token, all at once.
#[cfg(any(test, feature = "build"))]
#[derive(Clone, Copy, Debug)]
pub struct ThreadCpus {
    /// CPU ids online, bit n for CPU n.
    pub mask: u32,
}

#[cfg(any(test, feature = "build"))]
impl EachCpu for ThreadCpus {
    fn online(&self) -> usize {
        self.mask.count_ones() as usize
    }

    fn on_each_cpu(&mut self, work: &(dyn Fn(&mut CpuToken) + Sync)) {
        let tokens = zonekit_core::percpu::CpuTokens::<MAX_CPUS>::new();
        std::thread::scope(|s| {
            for c in (0..MAX_CPUS).filter(|c| self.mask & (1 << c) != 0) {
                if let Some(mut t) = tokens.claim(c) {
                    s.spawn(move || work(&mut t));
                }
            }
        });
    }
}

/// What the test found on each CPU (by CPU id; `None` for an id that was not
/// online) and the free count before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmpTestReport {
    /// Each CPU's run.
    pub cpus: [Option<CpuRun>; MAX_CPUS],
    /// CPUs that ran it.
    pub online: usize,
    /// Free pages before (lists drained) and, equally, after.
    pub free: u64,
}

/// Run the concurrent test on every CPU of `cpus`, `seed` choosing the sequences.
/// Prints a line per CPU and the verdict; the error is the first thing that failed.
pub fn concurrent_page_alloc_test<S>(
    allocator: &mut PageAllocator<S, MAX_CPUS>,
    cpus: &mut dyn EachCpu,
    mem: &dyn PagePatterns,
    seed: u64,
) -> Result<SmpTestReport, SmpTestError>
where
    S::MemMap: Sync + Send,
    S::Bitmap: Sync + Send,
    S: PageStorage + Send,
{
    let online = cpus.online();
    allocator.set_online_cpus(online as u32);
    let a: SmpPageAllocator<'_, S, MAX_CPUS> = SmpPageAllocator::new(allocator);
    let free = smp_selftest_start(&a);
    let results: [spin::Mutex<Option<Result<CpuRun, SmpTestError>>>; MAX_CPUS] = Default::default();
    cpus.on_each_cpu(&|cpu| {
        let r = smp_selftest_cpu(
            &a,
            cpu,
            mem,
            Gfp::KERNEL,
            seed,
            SMP_TEST_STEPS,
            SMP_TEST_HELD,
        );
        if let Some(slot) = results.get(cpu.id()) {
            *slot.lock() = Some(r);
        }
    });
    let mut report = SmpTestReport {
        cpus: [None; MAX_CPUS],
        online,
        free,
    };
    for (c, slot) in results.iter().enumerate() {
        match slot.lock().take() {
            Some(Ok(run)) => {
                zk_info!(
                    "zonekit: smp: CPU{}: {} blocks ({} pages) allocated, written, checked and freed",
                    c,
                    run.blocks,
                    run.pages
                );
                report.cpus[c] = Some(run);
            }
            Some(Err(e)) => {
                zk_info!("zonekit: smp: CPU{}: {}", c, e);
                return Err(e);
            }
            None => {}
        }
    }
    smp_selftest_verdict(&a, free)?;
    zk_info!(
        "zonekit: smp: {} CPUs ran the concurrent page allocator test at once, nothing lost ({} pages free before and after)",
        online,
        free
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
    use std::vec::Vec;

    struct Words(Vec<AtomicU32>);

    impl PagePatterns for Words {
        fn fill(&self, pfn: u64, order: u32, pattern: u32) {
            for p in pfn..pfn + (1 << order) {
                self.0[(p - 0x60000) as usize].store(pattern, Relaxed);
            }
        }
        fn holds(&self, pfn: u64, order: u32, pattern: u32) -> bool {
            (pfn..pfn + (1 << order))
                .all(|p| self.0[(p - 0x60000) as usize].load(Relaxed) == pattern)
        }
    }

    #[test]
    fn four_cpus_run_it_and_the_counts_come_back() {
        let mut a =
            zonekit_core::page_alloc::host::one_zone_allocator::<MAX_CPUS>(0x60000, 16384, None)
                .unwrap();
        let before = a.nr_free_pages() + a.nr_pcp_pages();
        let mem = Words((0..16384).map(|_| AtomicU32::new(0)).collect());
        let r =
            concurrent_page_alloc_test(&mut a, &mut ThreadCpus { mask: 0b1111 }, &mem, 7).unwrap();
        assert_eq!(r.online, 4);
        assert!(r
            .cpus
            .iter()
            .all(|c| c.is_some_and(|c| c.blocks > 0 && c.no_memory == 0)));
        assert_eq!(a.online_cpus(), 4);
        assert_eq!(a.nr_free_pages() + a.nr_pcp_pages(), before);
        a.check_invariants().unwrap();
    }
}
