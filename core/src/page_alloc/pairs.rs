//! The alloc+free pair loop that the guest's `zonekit.bench` times on the board
//! counter: the per-CPU fast paths as a kernel meets them, measured on the target
//! itself (under QEMU's `-icount shift=0` a tick count is an instruction count),
//! next to the host harness's figures for the same workloads.

use super::smp::lock::Locking;
use super::{AllocError, FreeError, Gfp, PageAllocator, SmpPageAllocator};
use crate::percpu::CpuToken;
use crate::storage::PageStorage;

/// Why a timed pair loop stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairError {
    /// An allocation failed.
    Alloc(AllocError),
    /// A free was refused.
    Free(FreeError),
}

impl core::fmt::Display for PairError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PairError::Alloc(e) => write!(f, "an allocation failed: {e:?}"),
            PairError::Free(e) => write!(f, "a free was refused: {e}"),
        }
    }
}

/// `pairs` (which runs its `n` pairs) once untimed, filling the per-CPU lists, then
/// once between two readings of `clock`: what the clock advanced. The loop is
/// inside `pairs` (a loop around a call of a pair closure measured 22 more
/// instructions per pair on ARMv7: the fast paths were not inlined into it).
#[inline(always)]
fn time_pairs(
    mut clock: impl FnMut() -> u64,
    mut pairs: impl FnMut() -> Result<(), PairError>,
) -> Result<u64, PairError> {
    pairs()?;
    let start = clock();
    pairs()?;
    Ok(clock().wrapping_sub(start))
}

/// `n` `GFP_KERNEL` alloc+free pairs through either allocator's API.
macro_rules! pairs {
    ($a:expr, $cpu:expr, $order:expr, $n:expr) => {{
        for _ in 0..$n {
            let block = $a
                .alloc_pages($cpu, Gfp::KERNEL, $order)
                .map_err(PairError::Alloc)?;
            $a.free_pages($cpu, block).map_err(PairError::Free)?;
        }
        Ok(())
    }};
}

impl<S: PageStorage, const NCPU: usize> PageAllocator<S, NCPU> {
    /// Allocate a `GFP_KERNEL` block of `order` on `cpu` and free it again, `n`
    /// times after as many untimed ones (which fill the per-CPU lists), and return
    /// what `clock` advanced over the timed ones. The free pages are the same before
    /// and after.
    pub fn timed_pairs(
        &mut self,
        cpu: usize,
        order: u32,
        n: u32,
        clock: impl FnMut() -> u64,
    ) -> Result<u64, PairError> {
        time_pairs(clock, || pairs!(self, cpu, order, n))
    }
}

impl<S: PageStorage, const NCPU: usize, L: Locking> SmpPageAllocator<'_, S, NCPU, L> {
    /// [`PageAllocator::timed_pairs`] through the shared allocator, on the CPU of
    /// `cpu` (its own pageset lock on each fast path, vmstat counted).
    pub fn timed_pairs(
        &self,
        cpu: &mut CpuToken,
        order: u32,
        n: u32,
        clock: impl FnMut() -> u64,
    ) -> Result<u64, PairError> {
        time_pairs(clock, || pairs!(self, &mut *cpu, order, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_alloc::host;

    #[test]
    fn times_the_second_round_and_loses_nothing() {
        let mut a = host::one_zone_allocator::<1>(0x60000, 4096, None).unwrap();
        let before = a.nr_free_pages() + a.nr_pcp_pages();
        let mut t = 0;
        let ticks = a
            .timed_pairs(0, 3, 100, || {
                t += 7;
                t
            })
            .unwrap();
        assert_eq!(ticks, 7);
        assert_eq!(a.nr_free_pages() + a.nr_pcp_pages(), before);
        a.check_invariants().unwrap();
        assert_eq!(
            a.timed_pairs(1, 0, 1, || 0),
            Err(PairError::Alloc(AllocError::BadCpu(1)))
        );
    }

    #[test]
    fn smp_pairs_lose_nothing() {
        let mut a = host::one_zone_allocator::<2>(0x60000, 4096, None).unwrap();
        let before = a.nr_free_pages() + a.nr_pcp_pages();
        let tokens = crate::percpu::CpuTokens::<2>::new();
        let mut cpu1 = tokens.claim(1).unwrap();
        {
            let s: SmpPageAllocator<'_, _, 2> = SmpPageAllocator::new(&mut a);
            let mut t = 0;
            let ticks = s
                .timed_pairs(&mut cpu1, 0, 100, || {
                    t += 3;
                    t
                })
                .unwrap();
            assert_eq!(ticks, 3);
        }
        tokens.release(cpu1);
        assert_eq!(a.nr_free_pages() + a.nr_pcp_pages(), before);
        a.check_invariants().unwrap();
    }
}
