//! Host tests for `zonekit_core::memblock`, shaped after Linux's
//! `tools/testing/memblock` (every allocation test runs top-down and bottom-up on a
//! fresh state) and U-Boot's `test/lib/lmb.c`.

use std::cell::RefCell;
use std::sync::Once;

use zonekit_core::memblock::*;
use zonekit_core::storage::{PageStorage, StorageError, VecPageStorage};
use zonekit_core::PhysAddr;

const SZ_4K: u64 = 0x1000;
const SZ_64K: u64 = 0x1_0000;
const SZ_1M: u64 = 0x10_0000;
const SZ_256M: u64 = 0x1000_0000;
const SZ_512M: u64 = 0x2000_0000;

fn mb() -> Memblock {
    Memblock::new(PHYS_ADDR_MAX_32)
}

fn mb_dir(bottom_up: bool) -> Memblock {
    let mut m = mb();
    m.set_bottom_up(bottom_up);
    m
}

/// Run a test body on a fresh state in both directions.
fn both(f: impl Fn(bool)) {
    f(false);
    f(true);
}

fn regs<const N: usize>(t: &RegionTable<N>) -> Vec<(PhysAddr, u64)> {
    t.regions().iter().map(|r| (r.base, r.size)).collect()
}

fn raw(m: &mut Memblock, size: u64, align: u64) -> Option<PhysAddr> {
    m.alloc_try_nid_raw(size, align, 0, MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE)
        .ok()
}

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

/// Storage that records zeroing requests.
#[derive(Default)]
struct ZeroLog {
    inner: VecPageStorage,
    zeroed: Vec<(PhysAddr, u64)>,
}

impl PageStorage for ZeroLog {
    type MemMap = <VecPageStorage as PageStorage>::MemMap;
    type Bitmap = <VecPageStorage as PageStorage>::Bitmap;
    fn mem_map(&mut self, base: PhysAddr, nr: usize) -> Result<Self::MemMap, StorageError> {
        self.inner.mem_map(base, nr)
    }
    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        self.inner.bitmap(base, bytes)
    }
    fn zero(&mut self, base: PhysAddr, size: u64) -> Result<(), StorageError> {
        self.zeroed.push((base, size));
        Ok(())
    }
}

// ------------------------------------------------------------------ basic tables

#[test]
fn new_is_empty_and_top_down() {
    let m = mb();
    assert!(!m.bottom_up());
    assert_eq!(m.current_limit(), MEMBLOCK_ALLOC_ANYWHERE);
    assert_eq!(m.memory.cnt(), 0);
    assert_eq!(m.memory.max(), INIT_MEMBLOCK_REGIONS);
    assert_eq!(m.memory.name(), "memory");
    assert_eq!(m.reserved.name(), "reserved");
    assert_eq!(m.start_of_dram(), 0);
    assert_eq!(m.end_of_dram(), 0);
    let small: Memblock<4> = Memblock::new(PHYS_ADDR_MAX_32);
    assert_eq!(small.reserved.max(), 4);
}

#[test]
fn add_simple() {
    let mut m = mb();
    m.add(0x6000_0000, SZ_512M).unwrap();
    assert_eq!(regs(&m.memory), [(0x6000_0000, SZ_512M)]);
    assert_eq!(m.phys_mem_size(), SZ_512M);
    assert_eq!(m.start_of_dram(), 0x6000_0000);
    assert_eq!(m.end_of_dram(), 0x8000_0000);
    assert!(m.is_memory(0x6000_0000));
    assert!(m.is_memory(0x7fff_ffff));
    assert!(!m.is_memory(0x8000_0000));
    assert!(m.is_map_memory(0x6000_0000));
    assert!(m.is_region_memory(0x6000_0000, SZ_512M));
    assert!(!m.is_region_memory(0x6000_0000, SZ_512M + 1));
    // size 0 is a no-op
    m.add(0x1000, 0).unwrap();
    assert_eq!(m.memory.cnt(), 1);
    let r = m.memory.regions()[0];
    assert_eq!(r.flags, RegionFlags::NONE);
    assert_eq!(r.nid, 0);
}

#[test]
fn add_fully_inside_is_noop() {
    let mut m = mb();
    m.add(0x1000_0000, SZ_256M).unwrap();
    m.add(0x1800_0000, SZ_1M).unwrap();
    assert_eq!(regs(&m.memory), [(0x1000_0000, SZ_256M)]);
    assert_eq!(m.phys_mem_size(), SZ_256M);
}

#[test]
fn add_overlapping_top_and_bottom() {
    let mut m = mb();
    m.add(0x1000_0000, SZ_256M).unwrap();
    // overlaps the top
    m.add(0x1f00_0000, 0x0200_0000).unwrap();
    assert_eq!(regs(&m.memory), [(0x1000_0000, 0x1100_0000)]);
    // overlaps the bottom
    m.add(0x0f00_0000, 0x0200_0000).unwrap();
    assert_eq!(regs(&m.memory), [(0x0f00_0000, 0x1200_0000)]);
    assert_eq!(m.phys_mem_size(), 0x1200_0000);
}

#[test]
fn add_spanning_several_regions() {
    let mut m = mb();
    m.add(0x1000, 0x1000).unwrap();
    m.add(0x4000, 0x1000).unwrap();
    m.add(0x8000, 0x1000).unwrap();
    assert_eq!(m.memory.cnt(), 3);
    m.add(0x1800, 0x7000).unwrap();
    assert_eq!(regs(&m.memory), [(0x1000, 0x8000)]);
    assert_eq!(m.phys_mem_size(), 0x8000);
}

#[test]
fn adjacent_same_flags_merge() {
    let mut m = mb();
    m.reserve(0x2000, 0x1000).unwrap();
    m.reserve(0x1000, 0x1000).unwrap();
    m.reserve(0x3000, 0x1000).unwrap();
    assert_eq!(regs(&m.reserved), [(0x1000, 0x3000)]);
    assert_eq!(m.reserved_size(), 0x3000);
}

#[test]
fn adjacent_different_flags_or_nid_do_not_merge() {
    let mut m = mb();
    m.add(0x1000_0000, SZ_1M).unwrap();
    m.add_node(0x1010_0000, SZ_1M, 0, RegionFlags::HOTPLUG)
        .unwrap();
    m.add_node(0x1020_0000, SZ_1M, 1, RegionFlags::NONE)
        .unwrap();
    assert_eq!(m.memory.cnt(), 3);
    assert_eq!(m.memory.regions()[1].flags, RegionFlags::HOTPLUG);
    assert_eq!(m.memory.regions()[2].nid, 1);
    // clearing the flag makes the first two mergeable
    m.clear_hotplug(0x1010_0000, SZ_1M).unwrap();
    assert_eq!(
        regs(&m.memory),
        [(0x1000_0000, 2 * SZ_1M), (0x1020_0000, SZ_1M)]
    );
    // moving the last one to node 0 merges everything
    m.set_node(0x1020_0000, SZ_1M, TableKind::Memory, 0)
        .unwrap();
    assert_eq!(regs(&m.memory), [(0x1000_0000, 3 * SZ_1M)]);
}

#[test]
fn mark_flags_split_and_merge_back() {
    let mut m = mb();
    m.add(0x1000_0000, SZ_1M).unwrap();
    m.mark_hotplug(0x1004_0000, SZ_64K).unwrap();
    assert_eq!(
        regs(&m.memory),
        [
            (0x1000_0000, 0x4_0000),
            (0x1004_0000, SZ_64K),
            (0x1005_0000, 0xb_0000)
        ]
    );
    assert_eq!(m.memory.regions()[1].flags, RegionFlags::HOTPLUG);
    m.clear_hotplug(0x1004_0000, SZ_64K).unwrap();
    assert_eq!(regs(&m.memory), [(0x1000_0000, SZ_1M)]);
    assert_eq!(m.phys_mem_size(), SZ_1M);
}

#[test]
fn remove_splits_region_in_two() {
    let mut m = mb();
    m.add(0x1000_0000, SZ_1M).unwrap();
    m.remove(0x1004_0000, SZ_64K).unwrap();
    assert_eq!(
        regs(&m.memory),
        [(0x1000_0000, 0x4_0000), (0x1005_0000, 0xb_0000)]
    );
    assert_eq!(m.phys_mem_size(), SZ_1M - SZ_64K);
}

#[test]
fn remove_edges_and_whole() {
    let mut m = mb();
    m.add(0x1000_0000, SZ_1M).unwrap();
    m.add(0x2000_0000, SZ_1M).unwrap();
    // top of the first bank and beyond
    m.remove(0x100f_0000, 0x20_0000).unwrap();
    // bottom of the second bank, from below
    m.remove(0x1ff0_0000, 0x11_0000).unwrap();
    assert_eq!(
        regs(&m.memory),
        [(0x1000_0000, 0xf_0000), (0x2001_0000, 0xf_0000)]
    );
    // a removal spanning everything empties the table
    m.remove(0, 0x4000_0000).unwrap();
    assert_eq!(m.memory.cnt(), 0);
    assert_eq!(m.phys_mem_size(), 0);
    // removing from an empty table is fine
    m.remove(0x1000, 0x1000).unwrap();
}

#[test]
fn phys_free_part_of_reservation() {
    let mut m = mb();
    m.add(0x1000_0000, SZ_256M).unwrap();
    m.reserve(0x1000_0000, 0x4000).unwrap();
    m.phys_free(0x1000_1000, 0x1000).unwrap();
    assert_eq!(
        regs(&m.reserved),
        [(0x1000_0000, 0x1000), (0x1000_2000, 0x2000)]
    );
    assert_eq!(m.reserved_size(), 0x3000);
    assert!(m.is_reserved(0x1000_0fff));
    assert!(!m.is_reserved(0x1000_1000));
    assert!(m.is_region_reserved(0x1000_1000, 0x1001));
    assert!(!m.is_region_reserved(0x1000_1000, 0x1000));
    // free the tail
    m.phys_free(0x1000_3000, 0x1000).unwrap();
    assert_eq!(
        regs(&m.reserved),
        [(0x1000_0000, 0x1000), (0x1000_2000, 0x1000)]
    );
}

#[test]
fn reserve_overlapping_and_independent_of_memory() {
    let mut m = mb();
    m.reserve(0x1000, 0x2000).unwrap();
    m.reserve(0x2000, 0x2000).unwrap();
    assert_eq!(regs(&m.reserved), [(0x1000, 0x3000)]);
    // reserved does not need memory behind it
    assert_eq!(m.memory.cnt(), 0);
}

#[test]
fn cap_32bit() {
    let mut m = mb();
    m.add(0x8000_0000, 0x8000_0000).unwrap();
    assert_eq!(regs(&m.memory), [(0x8000_0000, 0x7fff_ffff)]);
    assert_eq!(m.end_of_dram(), 0xffff_ffff);
    // entirely above PHYS_ADDR_MAX: ignored
    m.add(0x1_0000_0000, SZ_1M).unwrap();
    assert_eq!(m.memory.cnt(), 1);
    // LPAE keeps the full bank
    let mut l: Memblock = Memblock::new(PHYS_ADDR_MAX_LPAE);
    l.add(0x8000_0000, 0x8000_0000).unwrap();
    assert_eq!(regs(&l.memory), [(0x8000_0000, 0x8000_0000)]);
}

// ------------------------------------------------------------------ allocation

#[test]
fn alloc_simple_both_directions() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, SZ_1M).unwrap();
        let a = raw(&mut m, 0x1000, 0x1000).unwrap();
        let want = if bu { 0x1000_0000 } else { 0x100f_f000 };
        assert_eq!(a, want);
        assert_eq!(regs(&m.reserved), [(want, 0x1000)]);
        // the next one is contiguous and merges
        let b = raw(&mut m, 0x1000, 0x1000).unwrap();
        let want_b = if bu { 0x1000_1000 } else { 0x100f_e000 };
        assert_eq!(b, want_b);
        assert_eq!(m.reserved.cnt(), 1);
        assert_eq!(m.reserved_size(), 0x2000);
    });
}

#[test]
fn alloc_exact_fit() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, SZ_1M).unwrap();
        m.reserve(0x1000_0000, 0x8_0000).unwrap();
        m.reserve(0x1008_2000, SZ_1M - 0x8_2000).unwrap();
        let a = raw(&mut m, 0x2000, 0x1000).unwrap();
        assert_eq!(a, 0x1008_0000);
        assert_eq!(regs(&m.reserved), [(0x1000_0000, SZ_1M)]);
        assert!(raw(&mut m, 1, 1).is_none());
    });
}

#[test]
fn alloc_with_alignment() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, SZ_1M).unwrap();
        m.reserve(0x1000_0000, 0x100).unwrap();
        m.reserve(0x100f_ff00, 0x100).unwrap();
        let a = raw(&mut m, 0x1000, SZ_64K).unwrap();
        let want = if bu { 0x1001_0000 } else { 0x100f_0000 };
        assert_eq!(a, want);
        assert_eq!(a % SZ_64K, 0);
        // small alignment packs right against the reservations
        let b = raw(&mut m, 0x10, 4).unwrap();
        let want_b = if bu { 0x1000_0100 } else { 0x100f_fef0 };
        assert_eq!(b, want_b);
    });
}

#[test]
fn alloc_align_zero_uses_cache_line_and_bad_align_rejected() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, SZ_1M).unwrap();
        m.reserve(0x1000_0000, 0x4).unwrap();
        m.reserve(0x100f_fffc, 0x4).unwrap();
        let a = raw(&mut m, 0x10, 0).unwrap();
        assert_eq!(a % SMP_CACHE_BYTES, 0);
        let want = if bu { 0x1000_0040 } else { 0x100f_ffc0 };
        assert_eq!(a, want);
        assert_eq!(
            m.alloc_try_nid_raw(0x10, 3, 0, 0, NUMA_NO_NODE),
            Err(MemblockError::BadAlign { align: 3 })
        );
    });
}

#[test]
fn alloc_in_range() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, SZ_256M).unwrap();
        let (min, max) = (0x1400_0000, 0x1800_0000);
        let a = m
            .alloc_try_nid_raw(SZ_1M, SZ_4K, min, max, NUMA_NO_NODE)
            .unwrap();
        let want = if bu { min } else { max - SZ_1M };
        assert_eq!(a, want);
        // phys_alloc_range has the same placement
        let b = m.phys_alloc_range(SZ_1M, SZ_4K, min, max).unwrap();
        let want_b = if bu { min + SZ_1M } else { max - 2 * SZ_1M };
        assert_eq!(b, want_b);
        // a range that is too small fails for phys_alloc_range (no fallback)
        assert!(m
            .phys_alloc_range(SZ_1M, SZ_4K, min, min + SZ_64K)
            .is_none());
    });
}

#[test]
fn alloc_min_addr_falls_back_to_zero() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, SZ_1M).unwrap();
        // nothing fits above min_addr: retried from 0
        let a = m
            .alloc_try_nid_raw(SZ_4K, SZ_4K, 0x2000_0000, 0, NUMA_NO_NODE)
            .unwrap();
        let want = if bu { 0x1000_0000 } else { 0x100f_f000 };
        assert_eq!(a, want);
        // a min_addr inside memory but with too little room above it
        m.reserve(0x1008_0000, 0x7_f000).unwrap();
        let b = m
            .alloc_try_nid_raw(0x2000, SZ_4K, 0x1008_0000, 0, NUMA_NO_NODE)
            .unwrap();
        let want_b = if bu { 0x1000_1000 } else { 0x1007_e000 };
        assert_eq!(b, want_b);
    });
}

#[test]
fn alloc_nid_fallback() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, SZ_1M).unwrap();
        m.add(0x2000_0000, SZ_1M).unwrap();
        m.set_node(0x2000_0000, SZ_1M, TableKind::Memory, 1)
            .unwrap();
        // nid 0 is the low bank even top-down
        let a = m.alloc_try_nid_raw(SZ_4K, SZ_4K, 0, 0, 0).unwrap();
        let want = if bu { 0x1000_0000 } else { 0x100f_f000 };
        assert_eq!(a, want);
        // nid 1 is the high bank even bottom-up
        let b = m.alloc_try_nid_raw(SZ_4K, SZ_4K, 0, 0, 1).unwrap();
        let want_b = if bu { 0x2000_0000 } else { 0x200f_f000 };
        assert_eq!(b, want_b);
        // nid 1 full: falls back to any node
        m.reserve(0x2000_0000, SZ_1M).unwrap();
        let c = m.alloc_try_nid_raw(SZ_4K, SZ_4K, 0, 0, 1).unwrap();
        assert!((0x1000_0000..0x1010_0000).contains(&c));
        // ... unless the node is exact
        assert!(m.alloc_range_nid(SZ_4K, SZ_4K, 0, 0, 1, true).is_none());
        // an unknown node falls back too
        assert!(m.phys_alloc_try_nid(SZ_4K, SZ_4K, 7).is_some());
    });
}

#[test]
fn alloc_never_returns_page_zero() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0, SZ_4K).unwrap();
        assert!(raw(&mut m, 0x100, 1).is_none());
        assert_eq!(m.reserved.cnt(), 0);
        // with a second page, that page is used
        m.add(SZ_4K, SZ_4K).unwrap();
        assert_eq!(raw(&mut m, SZ_4K, SZ_4K), Some(SZ_4K));
        assert!(raw(&mut m, 1, 1).is_none());
    });
}

#[test]
fn alloc_two_banks_with_gap() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, SZ_1M).unwrap();
        m.add(0x3000_0000, 2 * SZ_1M).unwrap();
        // fits in either bank
        let a = raw(&mut m, SZ_64K, SZ_4K).unwrap();
        let want = if bu { 0x1000_0000 } else { 0x301f_0000 };
        assert_eq!(a, want);
        // only fits in the big bank
        let b = raw(&mut m, SZ_1M + SZ_4K, SZ_4K).unwrap();
        let want_b = if bu { 0x3000_0000 } else { 0x300e_f000 };
        assert_eq!(b, want_b);
        // never straddles the gap
        assert!(raw(&mut m, 2 * SZ_1M, SZ_4K).is_none());
        assert!(!m.is_region_reserved(0x1010_0000, 0x1ff0_0000));
    });
}

#[test]
fn alloc_sizes_that_do_not_divide() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, 0x1_0000).unwrap();
        let mut got = Vec::new();
        while let Some(a) = raw(&mut m, 0x3000, SZ_4K) {
            got.push(a - 0x1000_0000);
        }
        if bu {
            assert_eq!(got, [0x0, 0x3000, 0x6000, 0x9000, 0xc000]);
        } else {
            assert_eq!(got, [0xd000, 0xa000, 0x7000, 0x4000, 0x1000]);
        }
        assert_eq!(m.reserved_size(), 0xf000);
        // the remaining page still serves a small request
        let last = raw(&mut m, 0x800, 8).unwrap();
        let want = if bu { 0xf000 } else { 0x800 };
        assert_eq!(last - 0x1000_0000, want);
    });
}

#[test]
fn alloc_respects_current_limit() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x6000_0000, SZ_512M).unwrap();
        m.set_current_limit(0x6800_0000);
        let a = raw(&mut m, SZ_1M, SZ_1M).unwrap();
        let want = if bu { 0x6000_0000 } else { 0x67f0_0000 };
        assert_eq!(a, want);
        // an explicit max_addr above the limit is clamped
        let b = m
            .alloc_try_nid_raw(SZ_1M, SZ_1M, 0x6000_0000, 0x7000_0000, NUMA_NO_NODE)
            .unwrap();
        assert!(b + SZ_1M <= 0x6800_0000);
        // nothing above the limit is handed out even when the low part is full
        m.reserve(0x6000_0000, 0x0800_0000).unwrap();
        assert!(raw(&mut m, SZ_4K, SZ_4K).is_none());
        m.set_current_limit(MEMBLOCK_ALLOC_ANYWHERE);
        assert!(raw(&mut m, SZ_4K, SZ_4K).is_some());
    });
}

#[test]
fn nomap_is_skipped_by_allocation() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, 0x4000).unwrap();
        let nomap = if bu { 0x1000_0000 } else { 0x1000_3000 };
        m.mark_nomap(nomap, SZ_4K).unwrap();
        assert_eq!(m.memory.cnt(), 2);
        assert!(!m.is_map_memory(nomap));
        assert!(m.is_memory(nomap));
        let a = raw(&mut m, SZ_4K, SZ_4K).unwrap();
        let want = if bu { 0x1000_1000 } else { 0x1000_2000 };
        assert_eq!(a, want);
        raw(&mut m, 0x2000, SZ_4K).unwrap();
        assert!(raw(&mut m, SZ_4K, SZ_4K).is_none());
        // free ranges include NOMAP memory only when asked
        let n: Vec<_> = m.free_ranges(NUMA_NO_NODE, RegionFlags::NOMAP).collect();
        assert_eq!(n, [(nomap, nomap + SZ_4K, 0)]);
        m.clear_nomap(nomap, SZ_4K).unwrap();
        assert_eq!(m.memory.cnt(), 1);
        assert_eq!(raw(&mut m, SZ_4K, SZ_4K), Some(nomap));
    });
}

#[test]
fn mirror_preferred_then_fallback() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, SZ_64K).unwrap();
        m.add(0x2000_0000, SZ_64K).unwrap();
        // mirror the bank the direction would NOT pick first
        let mirrored = if bu { 0x2000_0000 } else { 0x1000_0000 };
        m.mark_mirror(mirrored, SZ_64K).unwrap();
        assert_eq!(
            m.memory
                .regions()
                .iter()
                .filter(|r| r.flags == RegionFlags::MIRROR)
                .count(),
            1
        );
        let a = raw(&mut m, 0x8000, SZ_4K).unwrap();
        assert!((mirrored..mirrored + SZ_64K).contains(&a));
        raw(&mut m, 0x8000, SZ_4K).unwrap();
        // mirrored memory exhausted: falls back to the other bank
        let other = if bu { 0x1000_0000 } else { 0x2000_0000 };
        let c = raw(&mut m, 0x8000, SZ_4K).unwrap();
        assert!((other..other + SZ_64K).contains(&c));
    });
}

#[test]
fn free_ranges_iterators() {
    let mut m = mb();
    m.add(0x1000_0000, SZ_1M).unwrap();
    m.add(0x2000_0000, SZ_1M).unwrap();
    m.set_node(0x2000_0000, SZ_1M, TableKind::Memory, 1)
        .unwrap();
    m.reserve(0x1001_0000, SZ_64K).unwrap();
    m.reserve(0x100f_0000, 0x0ff2_0000).unwrap(); // spans the gap
    let fwd: Vec<_> = m.free_ranges(NUMA_NO_NODE, RegionFlags::NONE).collect();
    assert_eq!(
        fwd,
        [
            (0x1000_0000, 0x1001_0000, 0),
            (0x1002_0000, 0x100f_0000, 0),
            (0x2001_0000, 0x2010_0000, 1)
        ]
    );
    let mut rev: Vec<_> = m.free_ranges_rev(NUMA_NO_NODE, RegionFlags::NONE).collect();
    rev.reverse();
    assert_eq!(rev, fwd);
    let n1: Vec<_> = m.free_ranges(1, RegionFlags::NONE).collect();
    assert_eq!(n1, [(0x2001_0000, 0x2010_0000, 1)]);
    assert_eq!(
        m.find_in_range_node(SZ_4K, SZ_4K, 0, 0, 0, RegionFlags::NONE),
        Some(0x100e_f000)
    );
}

#[test]
fn alloc_try_nid_zeroes_and_reports_no_space() {
    both(|bu| {
        let mut m = mb_dir(bu);
        let mut st = ZeroLog::default();
        m.add(0x1000_0000, SZ_64K).unwrap();
        let a = m.alloc(&mut st, 0x100, 8).unwrap();
        assert_eq!(st.zeroed, [(a, 0x100)]);
        let err = m
            .alloc_try_nid(&mut st, SZ_1M, SZ_4K, 0, 0, NUMA_NO_NODE)
            .unwrap_err();
        assert_eq!(
            err,
            MemblockError::NoSpace {
                size: SZ_1M,
                align: SZ_4K,
                min_addr: 0,
                max_addr: 0,
                nid: NUMA_NO_NODE
            }
        );
        assert!(err.to_string().contains("1048576 bytes"));
        assert!(m
            .alloc_try_nid_nopanic(&mut st, SZ_1M, SZ_4K, 0, 0, NUMA_NO_NODE)
            .is_none());
        assert_eq!(st.zeroed.len(), 1);
        assert!(m.alloc_raw(0x100, 8).is_ok());
        assert!(m.phys_alloc(0x100, 8).is_some());
    });
}

// ------------------------------------------------------------------ table capacity

#[test]
fn table_full_before_allow_resize() {
    let mut m: Memblock<4> = Memblock::new(PHYS_ADDR_MAX_32);
    for i in 0..4u64 {
        m.add(0x1000_0000 + i * SZ_1M, SZ_4K).unwrap();
    }
    let before = regs(&m.memory);
    let total = m.phys_mem_size();
    assert_eq!(
        m.add(0x2000_0000, SZ_4K),
        Err(MemblockError::TableFull {
            table: TableKind::Memory,
            capacity: 4
        })
    );
    assert_eq!(regs(&m.memory), before);
    assert_eq!(m.phys_mem_size(), total);
    // an add spanning two gaps would need 2 more regions: also refused atomically
    let wide = m.add(0x1000_0000, 3 * SZ_1M);
    assert!(matches!(wide, Err(MemblockError::TableFull { .. })));
    assert_eq!(regs(&m.memory), before);
    // an add that only touches existing regions (no new region) still works
    m.add(0x1000_0000, SZ_4K).unwrap();
    // splitting (remove in the middle) needs room for two more: refused
    assert!(m.remove(0x1000_0800, 0x100).is_err());
    assert_eq!(regs(&m.memory), before);
    // the same on reserved, and allow_resize cannot go past N
    for i in 0..4u64 {
        m.reserve(0x1000_0000 + i * 0x2000, 0x1000).unwrap();
    }
    m.allow_resize();
    assert_eq!(
        m.reserve(0x1010_0000, 0x1000),
        Err(MemblockError::TableFull {
            table: TableKind::Reserved,
            capacity: 4
        })
    );
    assert_eq!(m.reserved.cnt(), 4);
    assert!(MemblockError::TableFull {
        table: TableKind::Reserved,
        capacity: 4
    }
    .to_string()
    .contains("reserved"));
}

#[test]
fn resize_after_allow_resize_reserves_new_array() {
    for lpae in [false, true] {
        let max = if lpae {
            PHYS_ADDR_MAX_LPAE
        } else {
            PHYS_ADDR_MAX_32
        };
        let mut m: Memblock<256> = Memblock::new(max);
        m.add(0x6000_0000, SZ_512M).unwrap();
        assert_eq!(m.reserved.max(), 128);
        for i in 0..128u64 {
            m.reserve(0x6000_0000 + i * 0x2000, 0x1000).unwrap();
        }
        assert_eq!(m.reserved.cnt(), 128);
        // full and not resizable
        assert!(m.reserve(0x6100_0000, 0x1000).is_err());
        assert_eq!(m.reserved.cnt(), 128);
        m.allow_resize();
        m.reserve(0x6100_0000, 0x1000).unwrap();
        assert_eq!(m.reserved.max(), 256);
        // 256 regions * sizeof(struct memblock_region), page aligned, top-down
        let bytes = if lpae { 0x2000 } else { 0x1000 };
        let arr = m.reserved.array().unwrap();
        assert_eq!((arr.base, arr.size), (0x8000_0000 - bytes, bytes));
        assert!(m.is_region_reserved(arr.base, arr.size));
        assert_eq!(m.reserved.cnt(), 130);
        assert_eq!(m.reserved_size(), 129 * 0x1000 + bytes);
        // the next allocation lands below the new array
        assert_eq!(raw_n(&mut m, SZ_4K), 0x8000_0000 - bytes - SZ_4K);
        // up to N regions, then TableFull
        let mut i = 0u64;
        let err = loop {
            if let Err(e) = m.reserve(0x6200_0000 + i * 0x2000, 0x1000) {
                break e;
            }
            i += 1;
        };
        assert_eq!(
            err,
            MemblockError::TableFull {
                table: TableKind::Reserved,
                capacity: 256
            }
        );
        assert_eq!(m.reserved.cnt(), 256);
    }
}

fn raw_n<const N: usize>(m: &mut Memblock<N>, size: u64) -> PhysAddr {
    m.alloc_try_nid_raw(size, SZ_4K, 0, 0, NUMA_NO_NODE)
        .unwrap()
}

#[test]
fn resize_memory_table() {
    let mut m: Memblock<256> = Memblock::new(PHYS_ADDR_MAX_32);
    m.allow_resize();
    for i in 0..129u64 {
        m.add(0x1000_0000 + i * 0x2000, 0x1000).unwrap();
    }
    assert_eq!(m.memory.cnt(), 129);
    assert_eq!(m.memory.max(), 256);
    // the array came from the highest free page of memory
    let arr = m.memory.array().unwrap();
    assert_eq!(arr.base, 0x1000_0000 + 127 * 0x2000);
    assert_eq!(regs(&m.reserved), [(arr.base, 0x1000)]);
}

// ------------------------------------------------------------------ mem= and limits

#[test]
fn enforce_memory_limit_truncates_memory_and_reserved() {
    let mut m = mb();
    m.add(0x6000_0000, SZ_512M).unwrap();
    m.reserve(0x6020_4000, 0x4000).unwrap();
    m.reserve(0x7f00_0000, 0x0100_0000).unwrap();
    m.enforce_memory_limit(300 * SZ_1M).unwrap();
    assert_eq!(regs(&m.memory), [(0x6000_0000, 0x12c0_0000)]);
    assert_eq!(m.end_of_dram(), 0x72c0_0000);
    assert_eq!(regs(&m.reserved), [(0x6020_4000, 0x4000)]);
    // limit 0 and a limit beyond the memory size are no-ops
    m.enforce_memory_limit(0).unwrap();
    m.enforce_memory_limit(SZ_512M).unwrap();
    assert_eq!(regs(&m.memory), [(0x6000_0000, 0x12c0_0000)]);
}

#[test]
fn enforce_memory_limit_two_banks() {
    let mut m = mb();
    m.add(0x1000_0000, SZ_256M).unwrap();
    m.add(0x4000_0000, SZ_256M).unwrap();
    m.enforce_memory_limit(SZ_256M + SZ_1M).unwrap();
    assert_eq!(
        regs(&m.memory),
        [(0x1000_0000, SZ_256M), (0x4000_0000, SZ_1M)]
    );
}

#[test]
fn mem_limit_remove_map_keeps_nomap() {
    let mut m = mb();
    m.add(0x6000_0000, SZ_512M).unwrap();
    m.mark_nomap(0x7000_0000, SZ_1M).unwrap();
    m.reserve(0x6000_1000, 0x1000).unwrap();
    m.mem_limit_remove_map(SZ_256M).unwrap();
    assert_eq!(
        regs(&m.memory),
        [(0x6000_0000, SZ_256M), (0x7000_0000, SZ_1M)]
    );
    assert_eq!(regs(&m.reserved), [(0x6000_1000, 0x1000)]);
    m.cap_memory_range(0x6000_0000, SZ_1M).unwrap();
    assert_eq!(
        regs(&m.memory),
        [(0x6000_0000, SZ_1M), (0x7000_0000, SZ_1M)]
    );
}

// ------------------------------------------------------------------ Linux replay

fn vexpress_state() -> Memblock {
    let mut m = mb();
    m.add(0x6000_0000, 0x2000_0000).unwrap();
    m.reserve(0x6020_4000, 0x4000).unwrap();
    m.reserve(0x6030_0000, 0x0130_7588).unwrap();
    m.reserve(0x6800_0000, 0xbc22).unwrap();
    m.reserve(0x7f00_0000, 0x0100_0000).unwrap();
    m.set_current_limit(0x8000_0000);
    m
}

#[test]
fn replay_linux_vexpress_boot() {
    let mut m = vexpress_state();
    let mut st = VecPageStorage::default();
    let a = m.alloc_try_nid(&mut st, 40, 4, 0, 0, NUMA_NO_NODE).unwrap();
    assert_eq!(a, 0x7eff_ffd8);
    let b = m.alloc(&mut st, 4096, 0x1000).unwrap();
    assert_eq!(b, 0x7eff_e000);
}

#[test]
fn dump_format() {
    let m = vexpress_state();
    let mut s = String::new();
    m.dump(&mut s).unwrap();
    let want = "MEMBLOCK configuration:\n\
                \x20memory size = 0x20000000 reserved size = 0x023171aa\n\
                \x20memory.cnt  = 0x1\n\
                \x20memory[0x0]\t[0x60000000-0x7fffffff], 0x20000000 bytes flags: 0x0\n\
                \x20reserved.cnt  = 0x4\n\
                \x20reserved[0x0]\t[0x60204000-0x60207fff], 0x00004000 bytes flags: 0x0\n\
                \x20reserved[0x1]\t[0x60300000-0x61607587], 0x01307588 bytes flags: 0x0\n\
                \x20reserved[0x2]\t[0x68000000-0x6800bc21], 0x0000bc22 bytes flags: 0x0\n\
                \x20reserved[0x3]\t[0x7f000000-0x7fffffff], 0x01000000 bytes flags: 0x0\n";
    assert_eq!(s, want);
}

#[test]
fn dump_format_lpae_and_flags() {
    let mut m: Memblock = Memblock::new(PHYS_ADDR_MAX_LPAE);
    m.add(0x8000_0000, 0x1_0000_0000).unwrap();
    m.mark_nomap(0x8000_0000, SZ_1M).unwrap();
    let mut s = String::new();
    m.dump(&mut s).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines[1],
        " memory size = 0x0000000100000000 reserved size = 0x0000000000000000"
    );
    assert_eq!(lines[2], " memory.cnt  = 0x2");
    assert_eq!(
        lines[3],
        " memory[0x0]\t[0x0000000080000000-0x00000000800fffff], 0x0000000000100000 bytes flags: 0x4"
    );
    assert_eq!(
        lines[4],
        " memory[0x1]\t[0x0000000080100000-0x000000017fffffff], 0x00000000fff00000 bytes flags: 0x0"
    );
    assert_eq!(lines[5], " reserved.cnt  = 0x1");
}

#[test]
fn debug_trace_format() {
    capture_start();
    let mut m = vexpress_state();
    assert!(capture_take().is_empty(), "no trace without debug");
    m.set_debug(true);
    let mut st = VecPageStorage::default();
    let file = file!();
    let line = line!() + 1;
    let a = m.alloc_try_nid(&mut st, 40, 4, 0, 0, NUMA_NO_NODE).unwrap();
    assert_eq!(a, 0x7eff_ffd8);
    let got = capture_take();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        format!(
            "memblock_alloc_try_nid: 40 bytes align=0x4 nid=-1 from=0x00000000 max_addr=0x00000000 {file}:{line}"
        )
    );
    // the reservation is reported from inside memblock, as Linux reports
    // memblock_alloc_range_nid
    assert!(
        got[1].starts_with("memblock_reserve: [0x7effffd8-0x7effffff] "),
        "{}",
        got[1]
    );
    assert!(got[1].contains("memblock.rs:"), "{}", got[1]);

    let line = line!() + 1;
    m.alloc_try_nid_raw(16, 8, 0x1000, 0x7000_0000, 0).unwrap();
    let got = capture_take();
    assert_eq!(
        got[0],
        format!(
            "memblock_alloc_try_nid_raw: 16 bytes align=0x8 nid=0 from=0x00001000 max_addr=0x70000000 {file}:{line}"
        )
    );

    let line = line!() + 1;
    m.reserve(0x6000_0000, 0x1000).unwrap();
    let l2 = line!() + 1;
    m.add(0x9000_0000, 0x1000).unwrap();
    let l3 = line!() + 1;
    m.remove(0x9000_0000, 0x1000).unwrap();
    let l4 = line!() + 1;
    m.phys_free(0x6000_0000, 0x800).unwrap();
    assert_eq!(
        capture_take(),
        [
            format!("memblock_reserve: [0x60000000-0x60000fff] {file}:{line}"),
            format!("memblock_add: [0x90000000-0x90000fff] {file}:{l2}"),
            format!("memblock_remove: [0x90000000-0x90000fff] {file}:{l3}"),
            format!("memblock_phys_free: [0x60000000-0x600007ff] {file}:{l4}"),
        ]
    );

    // dump_all logs the dump line by line
    m.dump_all();
    let got = capture_take();
    assert_eq!(got[0], "MEMBLOCK configuration:");
    assert_eq!(got[2], " memory.cnt  = 0x1");
}

#[test]
fn debug_trace_of_doubling() {
    capture_start();
    let mut m: Memblock<256> = Memblock::new(PHYS_ADDR_MAX_32);
    m.add(0x6000_0000, SZ_512M).unwrap();
    for i in 0..128u64 {
        m.reserve(0x6000_0000 + i * 0x2000, 0x1000).unwrap();
    }
    m.allow_resize();
    m.set_debug(true);
    m.reserve(0x6100_0000, 0x1000).unwrap();
    let got = capture_take();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].starts_with("memblock_reserve: [0x61000000-0x61000fff] "));
    assert_eq!(
        got[1],
        "memblock: reserved is doubled to 256 at [0x7ffff000-0x7ffffbff]"
    );
    assert!(got[2].starts_with("memblock_reserve: [0x7ffff000-0x7fffffff] "));
}
