//! `early_memtest`: Linux's boot-time RAM pattern test (`mm/memtest.c`, as of 6.1).
//!
//! With `memtest=N` on the command line, `bootmem_init` tests lowmem before the zones
//! are sized: every pattern is written over each free memblock range and read back,
//! and each run of words that did not keep it is reserved in memblock, so the pages
//! holding it never reach the page allocator. Linux runs `N` passes over its 17
//! patterns from the `N - 1`th down to the first (indices taken modulo 17): pattern 0
//! comes last, leaving the tested memory zeroed.
//!
//! Memory is reached through [`PageStorage::write_words`] and
//! [`PageStorage::read_words`], so the same code runs on the target and, with injected
//! faults, in host tests. Two details differ from Linux, neither visible on a working
//! board: each pass tests the free ranges as they were when it began (Linux's
//! iterator runs on while `reserve_bad_mem` changes the table under it), and a bad
//! word at physical address 0 or 8 is reported like any other (Linux uses 0 as "no
//! bad run yet").

use core::fmt;

use crate::addr::{checked_align_up, PhysAddr};
use crate::memblock::{Memblock, MemblockError, RegionFlags, NUMA_NO_NODE};
use crate::storage::{PageStorage, StorageError};

/// Linux's `patterns[]`, in its order. The first has to be 0 to leave memtest with
/// zeroed memory (it runs last).
pub const MEMTEST_PATTERNS: [u64; 17] = [
    0,
    0xffff_ffff_ffff_ffff,
    0x5555_5555_5555_5555,
    0xaaaa_aaaa_aaaa_aaaa,
    0x1111_1111_1111_1111,
    0x2222_2222_2222_2222,
    0x4444_4444_4444_4444,
    0x8888_8888_8888_8888,
    0x3333_3333_3333_3333,
    0x6666_6666_6666_6666,
    0x9999_9999_9999_9999,
    0xcccc_cccc_cccc_cccc,
    0x7777_7777_7777_7777,
    0xbbbb_bbbb_bbbb_bbbb,
    0xdddd_dddd_dddd_dddd,
    0xeeee_eeee_eeee_eeee,
    0x7a6c_7258_554e_494c, // "LINUXrlz" in memory
];

/// Bytes per tested word (`sizeof(u64)`).
const WORD: u64 = 8;
/// Words read back per [`PageStorage::read_words`] call.
const CHUNK_WORDS: usize = 128;

/// The patterns `memtest=nr_tests` writes, in the order Linux writes them.
pub fn memtest_patterns(nr_tests: u32) -> impl Iterator<Item = u64> {
    (0..nr_tests)
        .rev()
        .map(|i| MEMTEST_PATTERNS[i as usize % MEMTEST_PATTERNS.len()])
}

/// Why `early_memtest` stopped before testing everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemtestError {
    /// The memory under test could not be written or read.
    Storage(StorageError),
    /// A bad range was found but memblock could not reserve it.
    Reserve {
        /// The bad range, `[start, end)`.
        start: PhysAddr,
        /// One past its last byte.
        end: PhysAddr,
        /// Why memblock refused.
        error: MemblockError,
    },
}

impl fmt::Display for MemtestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemtestError::Storage(e) => write!(f, "cannot test memory: {e}"),
            MemtestError::Reserve { start, end, error } => {
                write!(f, "cannot reserve bad memory {start:#x}-{end:#x}: {error}")
            }
        }
    }
}

impl From<StorageError> for MemtestError {
    fn from(e: StorageError) -> Self {
        MemtestError::Storage(e)
    }
}

/// What `early_memtest` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemtestReport {
    /// Passes run (`memtest_pattern`), one pattern each.
    pub passes: u32,
    /// Bytes tested, summed over the passes.
    pub bytes_tested: u64,
    /// Bad ranges reserved (one per pattern that found the range bad).
    pub bad_ranges: u64,
    /// Bytes in those ranges.
    pub bad_bytes: u64,
}

/// `early_memtest(start, end)`: run `nr_tests` passes (0: none, the default) over the
/// free memory of `mb` inside `[start, end)`, logging Linux's lines and reserving
/// every bad range in `mb`.
pub fn early_memtest<const N: usize, S: PageStorage>(
    mb: &mut Memblock<N>,
    storage: &mut S,
    start: PhysAddr,
    end: PhysAddr,
    nr_tests: u32,
) -> Result<MemtestReport, MemtestError> {
    let mut report = MemtestReport::default();
    if nr_tests == 0 {
        return Ok(report);
    }
    zk_info!("early_memtest: # of tests: {}", nr_tests);
    for pattern in memtest_patterns(nr_tests) {
        do_one_pass(mb, storage, pattern, start, end, &mut report)?;
        report.passes += 1;
    }
    Ok(report)
}

/// The first free range, clamped to `[start, end)`, that begins at or above `from`.
fn next_free_range<const N: usize>(
    mb: &Memblock<N>,
    from: PhysAddr,
    start: PhysAddr,
    end: PhysAddr,
) -> Option<(PhysAddr, PhysAddr)> {
    mb.free_ranges(NUMA_NO_NODE, RegionFlags::NONE)
        .map(|(s, e, _)| (s.clamp(start, end), e.clamp(start, end)))
        .find(|&(s, e)| s >= from && s < e)
}

/// `do_one_pass`: test `pattern` on every free range inside `[start, end)`.
fn do_one_pass<const N: usize, S: PageStorage>(
    mb: &mut Memblock<N>,
    storage: &mut S,
    pattern: u64,
    start: PhysAddr,
    end: PhysAddr,
    report: &mut MemtestReport,
) -> Result<(), MemtestError> {
    // Free ranges only shrink while the pass runs (bad runs are reserved), so
    // resuming the walk at the end of the last tested range visits each once.
    let mut from = start;
    while let Some((this_start, this_end)) = next_free_range(mb, from, start, end) {
        // cpu_to_be64: Linux prints the pattern's bytes in memory order (ARM is
        // little-endian), "LINUXrlz" as 4c494e5558726c7a.
        zk_info!(
            "  {} - {} pattern {:016x}",
            mb.pa(this_start),
            mb.pa(this_end),
            pattern.to_be()
        );
        memtest(
            mb,
            storage,
            pattern,
            this_start,
            this_end - this_start,
            report,
        )?;
        report.bytes_tested += this_end - this_start;
        from = this_end;
    }
    Ok(())
}

/// `memtest`: write `pattern` over the whole words of `[start_phys, start_phys +
/// size)`, read them back and reserve each run of words that differ.
fn memtest<const N: usize, S: PageStorage>(
    mb: &mut Memblock<N>,
    storage: &mut S,
    pattern: u64,
    start_phys: PhysAddr,
    size: u64,
    report: &mut MemtestReport,
) -> Result<(), MemtestError> {
    let Some(aligned) = checked_align_up(start_phys, WORD) else {
        return Ok(());
    };
    let words = size.saturating_sub(aligned - start_phys) / WORD;
    storage.write_words(aligned, words, pattern)?;

    // The current run of bad words: (first, last).
    let mut bad: Option<(PhysAddr, PhysAddr)> = None;
    let mut buf = [0u64; CHUNK_WORDS];
    let mut done = 0u64;
    while done < words {
        let n = (words - done).min(CHUNK_WORDS as u64) as usize;
        let chunk = aligned + done * WORD;
        storage.read_words(chunk, &mut buf[..n])?;
        for (i, &w) in buf[..n].iter().enumerate() {
            if w == pattern {
                continue;
            }
            let addr = chunk + i as u64 * WORD;
            bad = match bad {
                Some((first, last)) if addr == last + WORD => Some((first, addr)),
                Some((first, last)) => {
                    reserve_bad_mem(mb, pattern, first, last + WORD, report)?;
                    Some((addr, addr))
                }
                None => Some((addr, addr)),
            };
        }
        done += n as u64;
    }
    if let Some((first, last)) = bad {
        reserve_bad_mem(mb, pattern, first, last + WORD, report)?;
    }
    Ok(())
}

/// `reserve_bad_mem`: log the bad range and reserve it.
fn reserve_bad_mem<const N: usize>(
    mb: &mut Memblock<N>,
    pattern: u64,
    start_bad: PhysAddr,
    end_bad: PhysAddr,
    report: &mut MemtestReport,
) -> Result<(), MemtestError> {
    zk_info!(
        "  {:016x} bad mem addr {} - {} reserved",
        pattern.to_be(),
        mb.pa(start_bad),
        mb.pa(end_bad)
    );
    mb.reserve(start_bad, end_bad - start_bad)
        .map_err(|error| MemtestError::Reserve {
            start: start_bad,
            end: end_bad,
            error,
        })?;
    report.bad_ranges += 1;
    report.bad_bytes += end_bad - start_bad;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_run_from_the_last_down_to_zero() {
        let all: heapless::Vec<u64, 17> = memtest_patterns(17).collect();
        assert_eq!(all[0], 0x7a6c_7258_554e_494c);
        assert_eq!(all[16], 0);
        let three: heapless::Vec<u64, 3> = memtest_patterns(3).collect();
        assert_eq!(&three[..], &[0x5555_5555_5555_5555, u64::MAX, 0]);
        // More tests than patterns wrap around (index modulo 17).
        let many: heapless::Vec<u64, 19> = memtest_patterns(19).collect();
        assert_eq!(&many[..3], &[u64::MAX, 0, 0x7a6c_7258_554e_494c]);
        assert_eq!(memtest_patterns(0).count(), 0);
    }
}
