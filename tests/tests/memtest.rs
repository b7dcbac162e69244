//! `early_memtest` (`memtest=`) on simulated RAM with stuck bits: the bad words are
//! found by the patterns Linux would find them with, logged in Linux's format,
//! reserved in memblock, and the pages holding them never reach the buddy allocator.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Once;

use zonekit_arch_arm::bootmem::{boot, BootError, BootParams, RunningMemory};
use zonekit_arch_arm::hooks::NoHooks;
use zonekit_core::addr::{pfn_down, MemRange, Pfn, PhysAddr};
use zonekit_core::arch::MmConfig;
use zonekit_core::memblock::{Memblock, MemblockError, TableKind, PHYS_ADDR_MAX_32};
use zonekit_core::memtest::{early_memtest, memtest_patterns, MemtestError, MEMTEST_PATTERNS};
use zonekit_core::source::StaticMemoryMap;
use zonekit_core::storage::{PageStorage, StorageError, VecPageStorage};

// ------------------------------------------------------------------ log capture

thread_local! {
    static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        if r.target() == "zonekit" && r.level() == log::Level::Info {
            LINES.with(|l| l.borrow_mut().push(format!("{}", r.args())));
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

fn capture_start() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).expect("logger");
        log::set_max_level(log::LevelFilter::Trace);
    });
    LINES.with(|l| l.borrow_mut().clear());
}

fn capture_take() -> Vec<String> {
    LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

// ------------------------------------------------------- fault-injecting storage

/// One 64-bit word whose bits do not hold what is written.
#[derive(Clone, Copy, Debug, Default)]
struct StuckBits {
    /// Physical address of the word (8-byte aligned).
    addr: PhysAddr,
    /// Bits that always read 1.
    ones: u64,
    /// Bits that always read 0.
    zeros: u64,
}

impl StuckBits {
    fn apply(&self, w: u64) -> u64 {
        (w | self.ones) & !self.zeros
    }

    /// Whether `pattern` reads back wrong from this word.
    fn fails(&self, pattern: u64) -> bool {
        self.apply(pattern) != pattern
    }
}

/// [`VecPageStorage`] whose word reads pass through stuck bits.
#[derive(Default)]
struct FaultyStorage {
    inner: VecPageStorage,
    faults: Vec<StuckBits>,
    /// Words read back, for checking what memtest touched.
    words_read: u64,
}

impl PageStorage for FaultyStorage {
    type MemMap = <VecPageStorage as PageStorage>::MemMap;
    type Bitmap = <VecPageStorage as PageStorage>::Bitmap;
    fn mem_map(&mut self, base: PhysAddr, nr: usize) -> Result<Self::MemMap, StorageError> {
        self.inner.mem_map(base, nr)
    }
    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        self.inner.bitmap(base, bytes)
    }
    fn zero(&mut self, base: PhysAddr, size: u64) -> Result<(), StorageError> {
        self.inner.zero(base, size)
    }
    fn write_words(
        &mut self,
        base: PhysAddr,
        words: u64,
        pattern: u64,
    ) -> Result<(), StorageError> {
        self.inner.write_words(base, words, pattern)
    }
    fn read_words(&mut self, base: PhysAddr, out: &mut [u64]) -> Result<(), StorageError> {
        self.inner.read_words(base, out)?;
        self.words_read += out.len() as u64;
        let end = base + 8 * out.len() as u64;
        for f in self
            .faults
            .iter()
            .filter(|f| f.addr >= base && f.addr < end)
        {
            let i = ((f.addr - base) / 8) as usize;
            out[i] = f.apply(out[i]);
        }
        Ok(())
    }
}

/// A storage with no word access (the trait's defaults).
#[derive(Default)]
struct NoWords(VecPageStorage);

impl PageStorage for NoWords {
    type MemMap = <VecPageStorage as PageStorage>::MemMap;
    type Bitmap = <VecPageStorage as PageStorage>::Bitmap;
    fn mem_map(&mut self, base: PhysAddr, nr: usize) -> Result<Self::MemMap, StorageError> {
        self.0.mem_map(base, nr)
    }
    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        self.0.bitmap(base, bytes)
    }
    fn zero(&mut self, base: PhysAddr, size: u64) -> Result<(), StorageError> {
        self.0.zero(base, size)
    }
}

// ------------------------------------------------------------------ the boot

const RAM: u64 = 0x6000_0000;
const RAM_SIZE: u64 = 64 << 20;
/// The image: reserved, never tested.
const IMAGE: MemRange = MemRange::new(RAM + 0x1_0000, 0x10_0000);

fn boot_to_buddy<S: PageStorage + Default>(
    cmdline: &'static str,
    storage: S,
) -> Result<(RunningMemory<S, 1>, S), BootError> {
    let board = StaticMemoryMap::single_bank(RAM, RAM_SIZE);
    let boot_data = [MemRange::new(RAM, 0x1000)];
    let params = BootParams {
        source: &board,
        cmdline,
        dma_zone_size: None,
        kernel_image: IMAGE,
        boot_data: &boot_data,
        mm: MmConfig::ZONEKIT,
    };
    let mut storage = storage;
    let booted = boot(&params, &mut storage, &mut NoHooks)?;
    booted.self_check()?;
    Ok((booted.mem_init::<1>(S::default(), &mut NoHooks), storage))
}

/// PFNs of the node that reached the page allocator (no longer PG_reserved).
fn freed_pfns<S: PageStorage>(running: &RunningMemory<S, 1>) -> BTreeSet<Pfn> {
    let node = running.allocator.node();
    (node.node_start_pfn..node.node_end_pfn())
        .filter(|&pfn| node.pfn_to_page(pfn).is_some_and(|p| !p.is_reserved()))
        .collect()
}

/// Faults in free lowmem, away from the top of RAM where the boot allocations go,
/// plus one inside the image (reserved, so never tested).
fn faults() -> Vec<StuckBits> {
    vec![
        // bit 3 stuck at 1: patterns whose low nibble has bit 3 clear see it
        StuckBits {
            addr: 0x6100_0008,
            ones: 0x8,
            zeros: 0,
        },
        // two adjacent words across a page boundary, bit 63 stuck at 0: one run
        StuckBits {
            addr: 0x6200_0ff8,
            ones: 0,
            zeros: 1 << 63,
        },
        StuckBits {
            addr: 0x6200_1000,
            ones: 0,
            zeros: 1 << 63,
        },
        // a word that always reads 0x0f0f...: no pattern survives it
        StuckBits {
            addr: 0x6280_0400,
            ones: 0x0f0f_0f0f_0f0f_0f0f,
            zeros: 0xf0f0_f0f0_f0f0_f0f0,
        },
        // in the image: never written, never read, never reported
        StuckBits {
            addr: IMAGE.base + 0x100,
            ones: u64::MAX,
            zeros: 0,
        },
    ]
}

fn faulty() -> FaultyStorage {
    FaultyStorage {
        faults: faults(),
        ..Default::default()
    }
}

#[test]
fn memtest_stuck_bits_never_reach_buddy() {
    let (clean, _) = boot_to_buddy("memtest=17", VecPageStorage::default()).unwrap();
    let (bad, storage) = boot_to_buddy("memtest=17", faulty()).unwrap();
    let clean_free = freed_pfns(&clean);
    let bad_free = freed_pfns(&bad);
    let bad_pages: BTreeSet<Pfn> = [0x6100_0008u64, 0x6200_0ff8, 0x6200_1000, 0x6280_0400]
        .iter()
        .map(|&a| pfn_down(a))
        .collect();
    assert_eq!(bad_pages.len(), 4);
    // exactly the pages with bad words are withheld, nothing else moves
    let withheld: BTreeSet<Pfn> = clean_free.difference(&bad_free).copied().collect();
    assert_eq!(withheld, bad_pages);
    assert!(bad_free.is_subset(&clean_free));
    assert_eq!(
        bad.allocator.nr_free_pages() + bad.allocator.nr_pcp_pages() + 4,
        clean.allocator.nr_free_pages() + clean.allocator.nr_pcp_pages()
    );
    // memblock keeps the bad words reserved, 8 bytes at a time
    for f in &faults()[..4] {
        assert!(bad.memblock.is_region_reserved(f.addr, 8), "{:#x}", f.addr);
    }
    // and without memtest the clean boot frees the same pages
    let (off, _) = boot_to_buddy("", VecPageStorage::default()).unwrap();
    assert_eq!(freed_pfns(&off), clean_free);
    // the image was not touched: every read was of free memory
    assert!(storage.words_read > 0);
    // Allocate everything: no block contains a bad page.
    let mut running = bad;
    let gfp = zonekit_core::page_alloc::Gfp::KERNEL;
    while let Ok(block) = running.allocator.alloc_pages(0, gfp, 0) {
        assert!(!bad_pages.contains(&block.pfn()), "{:#x}", block.pfn());
    }
}

#[test]
fn memtest_17_patterns_in_linux_order() {
    capture_start();
    let (_, _) = boot_to_buddy("memtest", faulty()).unwrap();
    let lines = capture_take();
    assert!(lines.iter().any(|l| l == "early_memtest: # of tests: 17"));
    // The first free range (between the boot page and the image) once per pattern,
    // in Linux's order: patterns[16] down to patterns[0], printed cpu_to_be64.
    let first: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("  0x60001000 - 0x60010000 pattern "))
        .collect();
    let want = [
        "4c494e5558726c7a",
        "eeeeeeeeeeeeeeee",
        "dddddddddddddddd",
        "bbbbbbbbbbbbbbbb",
        "7777777777777777",
        "cccccccccccccccc",
        "9999999999999999",
        "6666666666666666",
        "3333333333333333",
        "8888888888888888",
        "4444444444444444",
        "2222222222222222",
        "1111111111111111",
        "aaaaaaaaaaaaaaaa",
        "5555555555555555",
        "ffffffffffffffff",
        "0000000000000000",
    ];
    assert_eq!(first, want);
    let order: Vec<String> = memtest_patterns(17)
        .map(|p| format!("{:016x}", p.to_be()))
        .collect();
    assert_eq!(order, want);
    // The first pass tests the big range whole; each bad word is reported by the
    // first pattern (in that order) it breaks, then stays reserved.
    assert_eq!(
        lines[lines
            .iter()
            .position(|l| l.starts_with("early_memtest"))
            .unwrap()
            + 2],
        "  0x60110000 - 0x64000000 pattern 4c494e5558726c7a"
    );
    let bad: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" bad mem addr "))
        .collect();
    assert_eq!(
        bad,
        [
            // 0x4c has bit 3 set, so do 0xee, 0xdd and 0xbb: 0x77 is the first
            // without it; 0x0f0f.. breaks everything at once
            "  4c494e5558726c7a bad mem addr 0x62800400 - 0x62800408 reserved",
            // bit 63 of 0x7a6c7258554e494c is 0: 0xeeee.. is the first with it set
            "  eeeeeeeeeeeeeeee bad mem addr 0x62000ff8 - 0x62001008 reserved",
            "  7777777777777777 bad mem addr 0x61000008 - 0x61000010 reserved",
        ]
    );
    // ... as the stuck bits say
    let first_failing = |addr: PhysAddr| {
        let f = faults().into_iter().find(|f| f.addr == addr).unwrap();
        memtest_patterns(17).find(|&p| f.fails(p))
    };
    assert_eq!(first_failing(0x6100_0008), Some(0x7777_7777_7777_7777));
    assert_eq!(first_failing(0x6200_0ff8), Some(0xeeee_eeee_eeee_eeee));
    assert_eq!(first_failing(0x6280_0400), Some(MEMTEST_PATTERNS[16]));
    // after the bad words were reserved, later passes test around them
    let last: Vec<&String> = lines
        .iter()
        .filter(|l| l.ends_with(" pattern 0000000000000000"))
        .collect();
    assert_eq!(
        last,
        [
            "  0x60001000 - 0x60010000 pattern 0000000000000000",
            "  0x60110000 - 0x61000008 pattern 0000000000000000",
            "  0x61000010 - 0x62000ff8 pattern 0000000000000000",
            "  0x62001008 - 0x62800400 pattern 0000000000000000",
            "  0x62800408 - 0x64000000 pattern 0000000000000000",
        ]
    );
}

#[test]
fn memtest_leaves_tested_memory_zeroed() {
    let (running, mut storage) = boot_to_buddy("memtest=3", VecPageStorage::default()).unwrap();
    let mut words = [u64::MAX; 16];
    storage.read_words(0x6200_0000, &mut words).unwrap();
    assert_eq!(words, [0; 16]);
    drop(running);
}

#[test]
fn memtest_is_off_by_default() {
    capture_start();
    let (running, storage) = boot_to_buddy("", faulty()).unwrap();
    let lines = capture_take();
    assert!(!lines.iter().any(|l| l.starts_with("early_memtest")));
    assert_eq!(storage.words_read, 0);
    // nothing reserved for bad memory: the faulty pages are freed
    let free = freed_pfns(&running);
    assert!(free.contains(&pfn_down(0x6100_0008)));
    // memtest=0 is off too
    capture_start();
    boot_to_buddy("memtest=0", faulty()).unwrap();
    assert!(!capture_take()
        .iter()
        .any(|l| l.starts_with("early_memtest")));
}

#[test]
fn memtest_without_word_access_is_a_boot_error() {
    let e = boot_to_buddy("memtest=1", NoWords::default()).err();
    assert!(
        matches!(
            e,
            Some(BootError::Memtest(MemtestError::Storage(
                StorageError::Unsupported { .. }
            )))
        ),
        "{e:?}"
    );
    assert!(e
        .unwrap()
        .to_string()
        .starts_with("early_memtest: cannot test memory"));
    // without memtest the same storage boots
    assert!(boot_to_buddy("", NoWords::default()).is_ok());
}

// ------------------------------------------------------------- early_memtest alone

fn faulty_at(addrs: &[PhysAddr]) -> FaultyStorage {
    FaultyStorage {
        faults: addrs
            .iter()
            .map(|&addr| StuckBits {
                addr,
                zeros: u64::MAX,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn memtest_runs_of_bad_words_coalesce() {
    let mut m: Memblock = Memblock::new(PHYS_ADDR_MAX_32);
    m.add(0x1000_0000, 0x1_0000).unwrap();
    // words 0x10, 0x18, 0x20 form one run; 0x30 another; the last word of the range
    let mut s = faulty_at(&[
        0x1000_0010,
        0x1000_0018,
        0x1000_0020,
        0x1000_0030,
        0x1000_fff8,
    ]);
    capture_start();
    // pattern 0 never fails with stuck-at-0 bits: one pass of 0xffff..
    let r = early_memtest(&mut m, &mut s, 0x1000_0000, 0x1001_0000, 2).unwrap();
    let lines = capture_take();
    assert_eq!(r.passes, 2);
    assert_eq!(r.bad_ranges, 3);
    assert_eq!(r.bad_bytes, 24 + 8 + 8);
    assert_eq!(
        lines,
        [
            "early_memtest: # of tests: 2",
            "  0x10000000 - 0x10010000 pattern ffffffffffffffff",
            "  ffffffffffffffff bad mem addr 0x10000010 - 0x10000028 reserved",
            "  ffffffffffffffff bad mem addr 0x10000030 - 0x10000038 reserved",
            "  ffffffffffffffff bad mem addr 0x1000fff8 - 0x10010000 reserved",
            "  0x10000000 - 0x10000010 pattern 0000000000000000",
            "  0x10000028 - 0x10000030 pattern 0000000000000000",
            "  0x10000038 - 0x1000fff8 pattern 0000000000000000",
        ]
    );
    let res: Vec<(u64, u64)> = m
        .reserved
        .regions()
        .iter()
        .map(|r| (r.base, r.size))
        .collect();
    assert_eq!(res, [(0x1000_0010, 24), (0x1000_0030, 8), (0x1000_fff8, 8)]);
}

#[test]
fn memtest_clamps_to_its_range_and_skips_reserved_and_nomap() {
    let mut m: Memblock = Memblock::new(PHYS_ADDR_MAX_32);
    m.add(0x1000_0000, 0x10_0000).unwrap();
    m.reserve(0x1000_4000, 0x1000).unwrap();
    m.mark_nomap(0x1008_0000, 0x1_0000).unwrap();
    // an unaligned free start: tested from the next whole word
    m.reserve(0x1000_0000, 3).unwrap();
    // faults in reserved, NOMAP and out-of-range memory are never seen
    let mut s = faulty_at(&[0x1000_4000, 0x1008_0000, 0x100f_0000, 0x1000_0000]);
    capture_start();
    let r = early_memtest(&mut m, &mut s, 0x1000_0000, 0x100e_0000, 1).unwrap();
    let lines = capture_take();
    assert_eq!(r.bad_ranges, 0);
    assert_eq!(
        lines,
        [
            "early_memtest: # of tests: 1",
            "  0x10000003 - 0x10004000 pattern 0000000000000000",
            "  0x10005000 - 0x10080000 pattern 0000000000000000",
            "  0x10090000 - 0x100e0000 pattern 0000000000000000",
        ]
    );
    // (0x4000 - 8) / 8 words in the first range
    assert_eq!(
        s.words_read,
        (0x4000 - 8) / 8 + (0x8_0000 - 0x5000) / 8 + (0xe_0000 - 0x9_0000) / 8
    );
    // memtest=0: nothing at all
    let r = early_memtest(&mut m, &mut s, 0x1000_0000, 0x100e_0000, 0).unwrap();
    assert_eq!(r.passes, 0);
}

#[test]
fn memtest_wraps_past_17_patterns() {
    let mut m: Memblock = Memblock::new(PHYS_ADDR_MAX_32);
    m.add(0x1000_0000, 0x1000).unwrap();
    let mut s = FaultyStorage::default();
    capture_start();
    early_memtest(&mut m, &mut s, 0, u64::MAX, 19).unwrap();
    let lines = capture_take();
    let patterns: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("  0x10000000 - 0x10001000 pattern "))
        .collect();
    assert_eq!(patterns.len(), 19);
    // i = 18, 17 -> patterns[1], patterns[0], then patterns[16] .. patterns[0]
    assert_eq!(
        &patterns[..3],
        &["ffffffffffffffff", "0000000000000000", "4c494e5558726c7a"]
    );
    assert_eq!(MEMTEST_PATTERNS[16].to_be(), 0x4c49_4e55_5872_6c7a);
}

#[test]
fn memtest_full_reserved_table_is_an_error() {
    let mut m: Memblock<4> = Memblock::new(PHYS_ADDR_MAX_32);
    m.add(0x1000_0000, 0x1_0000).unwrap();
    for i in 0..4u64 {
        m.reserve(0x2000_0000 + i * 0x100, 8).unwrap();
    }
    let mut s = faulty_at(&[0x1000_0100]);
    assert_eq!(
        early_memtest(&mut m, &mut s, 0x1000_0000, 0x1001_0000, 2),
        Err(MemtestError::Reserve {
            start: 0x1000_0100,
            end: 0x1000_0108,
            error: MemblockError::TableFull {
                table: TableKind::Reserved,
                capacity: 4
            }
        })
    );
}
