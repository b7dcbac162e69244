//! The page allocator's self-test, run in the guest at the end of boot and in host
//! tests on simulated RAM.
//!
//! It drains the allocator completely, gives everything back, and checks that the buddy
//! lists return to the state they had after `memblock_free_all`; then it runs a random
//! allocate/free sequence with the invariant checker
//! ([`PageAllocator::check_invariants`]) between steps. It needs no heap: blocks it
//! holds live in fixed-capacity tables, and the "allocate everything" phase finds its
//! pages again through the page descriptors.
//!
//! Linux has no single counterpart: this plays the role of the page allocator's `CONFIG_DEBUG_VM` checks (`check_new_pages`, `free_pages_check`) run over every free page.

pub mod smp;

use crate::addr::Pfn;
use crate::mmtypes::{ZoneType, MAX_NR_ZONES};
use crate::page_alloc::{AllocError, FreeError, Gfp, InvariantError, PageAllocator};
use crate::report::buddyinfo_counts;
use crate::storage::PageStorage;

/// Blocks held at once by the mixed-order and random phases.
pub const MAX_HELD_BLOCKS: usize = 1024;

/// What the self-test found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTestError {
    /// An allocation failed while free pages were left.
    Alloc(AllocError),
    /// Freeing a block the test owned was refused.
    Free(FreeError),
    /// The allocator's invariants broke.
    Invariant(InvariantError),
    /// After allocating everything, this many pages were still free.
    LeftFree(u64),
    /// The free page count after giving everything back differs from the start.
    FreeCountChanged {
        /// Before.
        before: u64,
        /// After.
        after: u64,
    },
    /// buddyinfo of a zone differs from its state after boot.
    BuddyinfoChanged(ZoneType),
}

impl core::fmt::Display for SelfTestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SelfTestError::Alloc(e) => write!(f, "allocation failed: {e:?}"),
            SelfTestError::Free(e) => write!(f, "free refused: {e}"),
            SelfTestError::Invariant(e) => write!(f, "invariant broken: {e:?}"),
            SelfTestError::LeftFree(n) => write!(f, "{n} pages still free after allocating all"),
            SelfTestError::FreeCountChanged { before, after } => {
                write!(f, "free pages {before} before, {after} after")
            }
            SelfTestError::BuddyinfoChanged(z) => {
                write!(
                    f,
                    "buddyinfo of zone {} did not return to its boot state",
                    z.name()
                )
            }
        }
    }
}

/// What the self-test did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SelfTestReport {
    /// Pages allocated one by one in the "allocate everything" phase.
    pub order0_pages: u64,
    /// Blocks allocated in the mixed-order phase.
    pub mixed_blocks: u64,
    /// Operations of the random phase.
    pub random_ops: u64,
    /// Invariant checks that passed.
    pub invariant_checks: u64,
}

/// A tiny xorshift generator: deterministic, no dependencies.
#[derive(Clone, Copy, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a non-zero seed.
    pub const fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Every zone's free blocks per order.
fn snapshot<S: PageStorage, const NCPU: usize>(
    a: &PageAllocator<S, NCPU>,
) -> [[u64; 16]; MAX_NR_ZONES] {
    let mut s = [[0; 16]; MAX_NR_ZONES];
    for zt in ZoneType::ALL {
        s[zt as usize] = buddyinfo_counts(a, zt);
    }
    s
}

fn check<S: PageStorage, const NCPU: usize>(
    a: &PageAllocator<S, NCPU>,
    report: &mut SelfTestReport,
) -> Result<(), SelfTestError> {
    a.check_invariants().map_err(SelfTestError::Invariant)?;
    report.invariant_checks += 1;
    Ok(())
}

/// Any zone, no watermarks: the test wants every last page.
const ALL_ZONES: Gfp = Gfp(Gfp::HIGHUSER_MOVABLE.0 | Gfp::MEMALLOC.0);

/// Run the self-test on CPU `cpu` with a random `seed`; `random_ops` operations in the
/// random phase.
pub fn page_alloc_selftest<S: PageStorage, const NCPU: usize>(
    a: &mut PageAllocator<S, NCPU>,
    cpu: usize,
    seed: u64,
    random_ops: u64,
) -> Result<SelfTestReport, SelfTestError> {
    let mut report = SelfTestReport::default();
    a.drain_all_pages();
    check(a, &mut report)?;
    let before_free = a.nr_free_pages();
    let before = snapshot(a);

    // 1. Allocate every free page at order 0, then find them again through the
    //    descriptors and free them.
    loop {
        match a.alloc_pages(cpu, ALL_ZONES, 0) {
            Ok(block) => {
                let _ = block.into_raw();
                report.order0_pages += 1;
            }
            Err(AllocError::NoMemory) => break,
            Err(e) => return Err(SelfTestError::Alloc(e)),
        }
    }
    a.drain_all_pages();
    if a.nr_free_pages() != 0 {
        return Err(SelfTestError::LeftFree(a.nr_free_pages()));
    }
    check(a, &mut report)?;
    let mut owned: heapless::Vec<Pfn, 64> = heapless::Vec::new();
    let (start, end) = (a.node().node_start_pfn, a.node().node_end_pfn());
    let mut pfn = start;
    while pfn < end {
        // Collect a batch first: freeing needs `a` mutably.
        owned.clear();
        while pfn < end && !owned.is_full() {
            if let Some(page) = a.node().pfn_to_page(pfn) {
                if !page.is_reserved() && !page.is_buddy() && page.refcount() == 1 {
                    // The batch has room (checked by the loop condition).
                    let _ = owned.push(pfn);
                }
            }
            pfn += 1;
        }
        for &p in &owned {
            a.free_pages_raw(cpu, p, 0).map_err(SelfTestError::Free)?;
        }
    }
    a.drain_all_pages();
    check(a, &mut report)?;
    if a.nr_free_pages() != before_free {
        return Err(SelfTestError::FreeCountChanged {
            before: before_free,
            after: a.nr_free_pages(),
        });
    }

    // 2. Mixed orders until the table is full or memory runs out, freed in reverse.
    let mut held: heapless::Vec<(Pfn, u32), MAX_HELD_BLOCKS> = heapless::Vec::new();
    let mut order = 0u32;
    while !held.is_full() {
        match a.alloc_pages(cpu, ALL_ZONES, order) {
            Ok(block) => {
                // Not full (loop condition).
                let _ = held.push(block.into_raw());
                report.mixed_blocks += 1;
            }
            Err(AllocError::NoMemory) => break,
            Err(e) => return Err(SelfTestError::Alloc(e)),
        }
        order = (order + 1) % 4;
    }
    check(a, &mut report)?;
    while let Some((p, o)) = held.pop() {
        a.free_pages_raw(cpu, p, o).map_err(SelfTestError::Free)?;
    }
    a.drain_all_pages();
    check(a, &mut report)?;

    // 3. Random allocate/free with the invariant checker between bursts.
    let mut rng = XorShift::new(seed);
    for i in 0..random_ops {
        let r = rng.next_u64();
        if held.is_empty() || (r & 1 == 0 && !held.is_full()) {
            let order = ((r >> 8) % 4) as u32;
            let gfp = match (r >> 16) % 3 {
                0 => Gfp::KERNEL,
                1 => Gfp::HIGHUSER_MOVABLE,
                _ => Gfp::RECLAIMABLE,
            };
            match a.alloc_pages(cpu, gfp, order) {
                Ok(block) => {
                    let _ = held.push(block.into_raw());
                }
                Err(AllocError::NoMemory) => {}
                Err(e) => return Err(SelfTestError::Alloc(e)),
            }
        } else {
            // In u64 before the cast: `as usize` first would keep 32 bits on the target
            // and 64 on the host, and the simulator would pick other blocks.
            let k = ((r >> 24) % held.len() as u64) as usize;
            let (p, o) = held.swap_remove(k);
            a.free_pages_raw(cpu, p, o).map_err(SelfTestError::Free)?;
        }
        report.random_ops += 1;
        if i % 2048 == 2047 {
            check(a, &mut report)?;
        }
    }
    while let Some((p, o)) = held.pop() {
        a.free_pages_raw(cpu, p, o).map_err(SelfTestError::Free)?;
    }
    a.drain_all_pages();
    check(a, &mut report)?;

    if a.nr_free_pages() != before_free {
        return Err(SelfTestError::FreeCountChanged {
            before: before_free,
            after: a.nr_free_pages(),
        });
    }
    let after = snapshot(a);
    for zt in ZoneType::ALL {
        if after[zt as usize] != before[zt as usize] {
            return Err(SelfTestError::BuddyinfoChanged(zt));
        }
    }
    Ok(report)
}
