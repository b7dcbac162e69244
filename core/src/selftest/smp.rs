//! The concurrent page allocator test: every CPU at once runs a bounded random
//! sequence of order 0-3 allocations and frees on a [`SmpPageAllocator`], writes a
//! pattern of its own into each block it gets and checks it is still there before
//! freeing the block. A page handed to two CPUs at once shows up as an overwritten
//! pattern (or, on the host, as a second owner); everything the test allocates it
//! frees. After all CPUs have joined, [`smp_selftest_verdict`] checks the invariants
//! and that the free count is back at the start.

use super::XorShift;
use crate::addr::Pfn;
use crate::page_alloc::{AllocError, FreeError, Gfp, InvariantError, SmpPageAllocator};
use crate::percpu::CpuToken;
use crate::storage::PageStorage;

/// Blocks one CPU holds at most.
pub const SMP_MAX_HELD: usize = 64;

/// Where the test writes its patterns: the memory of the pages themselves on the
/// target (through the linear map), an ownership table on the host.
pub trait PagePatterns: Sync {
    /// Write `pattern` into the block (some words of each page).
    fn fill(&self, pfn: Pfn, order: u32, pattern: u32);
    /// True when every word [`PagePatterns::fill`] wrote still holds `pattern`.
    fn holds(&self, pfn: Pfn, order: u32, pattern: u32) -> bool;
}

/// What went wrong on one CPU or at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpTestError {
    /// An allocation failed for another reason than lack of memory.
    Alloc(AllocError),
    /// A free of a block the CPU held was refused.
    Free(FreeError),
    /// A block's pattern was overwritten while the CPU held it: the pages were
    /// handed out twice.
    Overwritten {
        /// The CPU that held the block.
        cpu: usize,
        /// Its first pfn.
        pfn: Pfn,
    },
    /// The invariants broke.
    Invariant(InvariantError),
    /// The free count differs from the start once everything was given back.
    Lost {
        /// Free pages before.
        before: u64,
        /// Free pages after.
        after: u64,
    },
}

impl core::fmt::Display for SmpTestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SmpTestError::Alloc(e) => write!(f, "allocation failed: {e:?}"),
            SmpTestError::Free(e) => write!(f, "free refused: {e}"),
            SmpTestError::Overwritten { cpu, pfn } => write!(
                f,
                "CPU{cpu}: the block at pfn {pfn:#x} was overwritten while held (handed out twice)"
            ),
            SmpTestError::Invariant(e) => write!(f, "invariant broken: {e:?}"),
            SmpTestError::Lost { before, after } => {
                write!(f, "{before} pages free before, {after} after")
            }
        }
    }
}

/// What one CPU did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuRun {
    /// Blocks allocated, written and checked.
    pub blocks: u64,
    /// Pages in them.
    pub pages: u64,
    /// Allocations that found no memory (fine: the others hold it).
    pub no_memory: u64,
}

/// One CPU's part: `steps` random operations holding at most `max_held` blocks
/// (≤ [`SMP_MAX_HELD`]), `gfp` for every allocation, everything freed at the end.
pub fn smp_selftest_cpu<S: PageStorage, const NCPU: usize>(
    a: &SmpPageAllocator<'_, S, NCPU>,
    cpu: &mut CpuToken,
    mem: &dyn PagePatterns,
    gfp: Gfp,
    seed: u64,
    steps: u64,
    max_held: usize,
) -> Result<CpuRun, SmpTestError> {
    let id = cpu.id();
    let mut rng = XorShift::new(seed ^ ((id as u64 + 1) << 32));
    let mut held: heapless::Vec<(Pfn, u32, u32), SMP_MAX_HELD> = heapless::Vec::new();
    let max_held = max_held.min(SMP_MAX_HELD);
    let mut run = CpuRun::default();
    let mut result = Ok(());
    for step in 0..steps {
        let r = rng.next_u64();
        if held.len() < max_held && !r.is_multiple_of(3) {
            let order = ((r >> 8) % 4) as u32;
            match a.alloc_pages(cpu, gfp, order) {
                Ok(b) => {
                    let (pfn, order) = b.into_raw();
                    let pattern = ((id as u32) << 28) | (step as u32 & 0x0fff_ffff);
                    mem.fill(pfn, order, pattern);
                    run.blocks += 1;
                    run.pages += 1 << order;
                    // Capacity checked above.
                    let _ = held.push((pfn, order, pattern));
                }
                Err(AllocError::NoMemory) => run.no_memory += 1,
                Err(e) => {
                    result = Err(SmpTestError::Alloc(e));
                    break;
                }
            }
        } else if !held.is_empty() {
            let (pfn, order, pattern) = held.swap_remove((r >> 8) as usize % held.len());
            if let Err(e) = give_back(a, cpu, mem, pfn, order, pattern) {
                result = Err(e);
                break;
            }
        }
    }
    // Whatever happened, nothing the CPU holds stays allocated.
    for (pfn, order, pattern) in held {
        let r = give_back(a, cpu, mem, pfn, order, pattern);
        if result.is_ok() {
            result = r;
        }
    }
    result.map(|()| run)
}

fn give_back<S: PageStorage, const NCPU: usize>(
    a: &SmpPageAllocator<'_, S, NCPU>,
    cpu: &mut CpuToken,
    mem: &dyn PagePatterns,
    pfn: Pfn,
    order: u32,
    pattern: u32,
) -> Result<(), SmpTestError> {
    let intact = mem.holds(pfn, order, pattern);
    a.free_pages_raw(cpu, pfn, order)
        .map_err(SmpTestError::Free)?;
    if intact {
        Ok(())
    } else {
        Err(SmpTestError::Overwritten { cpu: cpu.id(), pfn })
    }
}

/// Before the run: every CPU's lists drained, the free count [`smp_selftest_verdict`]
/// compares with.
pub fn smp_selftest_start<S: PageStorage, const NCPU: usize>(
    a: &SmpPageAllocator<'_, S, NCPU>,
) -> u64 {
    a.drain_all_pages();
    a.nr_free_pages()
}

/// After every CPU ran [`smp_selftest_cpu`] and joined: the invariants hold with
/// every CPU's lists in view, and after `drain_all_pages` the free count (vmstat,
/// folded when read) equals `free_before` ([`smp_selftest_start`]).
pub fn smp_selftest_verdict<S: PageStorage, const NCPU: usize>(
    a: &SmpPageAllocator<'_, S, NCPU>,
    free_before: u64,
) -> Result<(), SmpTestError> {
    a.with_all(|a| a.check_invariants())
        .map_err(SmpTestError::Invariant)?;
    a.drain_all_pages();
    let after = a.nr_free_pages();
    if after != free_before {
        return Err(SmpTestError::Lost {
            before: free_before,
            after,
        });
    }
    Ok(())
}
