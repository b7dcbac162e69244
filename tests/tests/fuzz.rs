//! Bounded fuzzing on stable (issue 9): proptest-generated inputs, a fixed budget per
//! run (`ZONEKIT_FUZZ_CASES`, default below), run by `cargo test` and so by CI.
//!
//! * `fuzz_dtb_parse_and_host_boot`: device trees built from random banks,
//!   reservations, `/memreserve/` entries and command lines (with random bytes), half
//!   of them then corrupted byte by byte, go through `FdtMemory::parse_at` and, when
//!   accepted, the whole host boot (`bootmem::boot`, the self-check, `mem_init`, the
//!   allocator's invariants). Nothing may panic or hang; every page must be
//!   accounted for.
//! * `fuzz_memblock_ops_against_model`: random `add`/`remove`/`reserve`/`phys_free`/
//!   allocations on memblock, checked after every step against a plain interval-set
//!   model (coverage of both tables, allocations inside free memory and aligned,
//!   an allocation failing only when the model has no room either).
//!
//! Buddy operation sequences against a model are fuzzed in `buddy.rs`
//! (`model_random_sequences`).

use proptest::prelude::*;
use vm_fdt::{FdtReserveEntry, FdtWriter};
use zonekit_arch_arm::bootmem::{boot, count_free_pages, BootParams};
use zonekit_arch_arm::fdt::FdtMemory;
use zonekit_arch_arm::hooks::NoHooks;
use zonekit_core::addr::MemRange;
use zonekit_core::arch::MmConfig;
use zonekit_core::memblock::{Memblock, MEMBLOCK_ALLOC_ANYWHERE};
use zonekit_core::mmzone::ZoneType;
use zonekit_core::storage::VecPageStorage;

fn cases(default: u32) -> u32 {
    std::env::var("ZONEKIT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------------ DTB + boot

#[derive(Clone, Debug)]
struct TreeSpec {
    cells: (u32, u32),
    banks: Vec<(u64, u64)>,
    memreserve: Vec<(u64, u64)>,
    static_rm: Vec<(u64, u64, bool, bool)>,
    dynamic_rm: Vec<(u64, bool, bool)>,
    bootargs: Vec<u8>,
    /// Byte corruptions applied to the finished blob: (position seed, xor value).
    corrupt: Vec<(usize, u8)>,
    /// Where the blob claims to live (its own reservation).
    blob_at: u64,
}

fn base_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0x6000_0000u64),
        Just(0x8000_0000),
        Just(0x1000_0000),
        Just(0),
        (0x6000_0000u64..0x7000_0000).prop_map(|b| b & !0xfff),
        any::<u32>().prop_map(u64::from),
        Just(0xffff_f000),
        any::<u64>(),
    ]
}

fn size_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => prop_oneof![Just(1u64 << 20), Just(16 << 20), Just(64 << 20), Just(128 << 20)],
        2 => 1u64..(256 << 20),
        1 => Just(0u64),
        1 => Just(0x1000u64),
        1 => Just(0xffff_ffffu64),
        1 => any::<u64>(),
    ]
}

/// Banks a board could have: 1-4 page-aligned, disjoint chunks from a RAM base.
fn sane_banks() -> impl Strategy<Value = Vec<(u64, u64)>> {
    (
        prop_oneof![Just(0x6000_0000u64), Just(0x8000_0000), Just(0x1000_0000)],
        proptest::collection::vec((0u64..64, 1u64..128), 1..5),
    )
        .prop_map(|(base, chunks)| {
            let mut at = base;
            chunks
                .into_iter()
                .map(|(gap, mib)| {
                    let b = at + (gap << 20);
                    at = b + (mib << 20);
                    (b, mib << 20)
                })
                .collect()
        })
}

fn word_strategy() -> impl Strategy<Value = Vec<u8>> {
    let size = prop_oneof![
        Just("1M".to_string()),
        Just("64M".to_string()),
        Just("300M".to_string()),
        Just("8G".to_string()),
        Just("4096".to_string()),
        Just("0".to_string()),
        Just("0xffffffffffffffff".to_string()),
        any::<u32>().prop_map(|n| format!("{n:#x}")),
        Just("lots".to_string()),
    ];
    let key = prop_oneof![
        Just("mem"),
        Just("cma"),
        Just("vmalloc"),
        Just("zonekit.dma_zone"),
        Just("memblock"),
    ];
    prop_oneof![
        4 => (key, size.clone(), proptest::option::of(size)).prop_map(|(k, s, at)| match at {
            Some(a) => format!("{k}={s}@{a}").into_bytes(),
            None => format!("{k}={s}").into_bytes(),
        }),
        1 => Just(b"memblock=debug".to_vec()),
        1 => Just(b"mem".to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..12),
        1 => Just(vec![b'c', 0xe9, b'=', b'1']),
    ]
}

fn tree_strategy() -> impl Strategy<Value = TreeSpec> {
    (
        (1u32..=2, 1u32..=2),
        prop_oneof![3 => sane_banks(), 1 => proptest::collection::vec((base_strategy(), size_strategy()), 0..20)],
        proptest::collection::vec((base_strategy(), size_strategy()), 0..3),
        proptest::collection::vec(
            (base_strategy(), size_strategy(), any::<bool>(), any::<bool>()),
            0..4,
        ),
        proptest::collection::vec((size_strategy(), any::<bool>(), any::<bool>()), 0..4),
        proptest::collection::vec(word_strategy(), 0..6),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => proptest::collection::vec((any::<usize>(), 1u8..=255), 1..6)
        ],
        base_strategy(),
    )
        .prop_map(
            |(cells, banks, memreserve, static_rm, dynamic_rm, words, corrupt, blob_at)| {
                let mut bootargs = Vec::new();
                for w in words {
                    if !bootargs.is_empty() {
                        bootargs.push(b' ');
                    }
                    bootargs.extend(w.into_iter().filter(|&b| b != 0));
                }
                TreeSpec {
                    cells,
                    banks,
                    memreserve,
                    static_rm,
                    dynamic_rm,
                    bootargs,
                    corrupt,
                    blob_at,
                }
            },
        )
}

fn cells(v: u64, n: u32, out: &mut Vec<u32>) {
    if n == 2 {
        out.push((v >> 32) as u32);
    }
    out.push(v as u32);
}

fn reg(entries: &[(u64, u64)], (ac, sc): (u32, u32)) -> Vec<u32> {
    let mut out = Vec::new();
    for &(b, s) in entries {
        cells(b, ac, &mut out);
        cells(s, sc, &mut out);
    }
    out
}

/// The spec as a blob; `None` when vm-fdt itself refuses it (e.g. /memreserve/
/// entries that overflow).
fn build(spec: &TreeSpec) -> Option<Vec<u8>> {
    let rsv: Vec<FdtReserveEntry> = spec
        .memreserve
        .iter()
        .map(|&(a, s)| FdtReserveEntry::new(a, s))
        .collect::<Result<_, _>>()
        .ok()?;
    let mut w = FdtWriter::new_with_mem_reserv(&rsv).ok()?;
    let root = w.begin_node("").ok()?;
    w.property_u32("#address-cells", spec.cells.0).ok()?;
    w.property_u32("#size-cells", spec.cells.1).ok()?;
    let c = w.begin_node("chosen").ok()?;
    let mut args = spec.bootargs.clone();
    args.push(0);
    w.property("bootargs", &args).ok()?;
    w.end_node(c).ok()?;
    for (i, bank) in spec.banks.iter().enumerate() {
        let n = w.begin_node(&format!("memory@{i:x}")).ok()?;
        w.property_string("device_type", "memory").ok()?;
        w.property_array_u32("reg", &reg(&[*bank], spec.cells))
            .ok()?;
        w.end_node(n).ok()?;
    }
    let rm = w.begin_node("reserved-memory").ok()?;
    w.property_u32("#address-cells", spec.cells.0).ok()?;
    w.property_u32("#size-cells", spec.cells.1).ok()?;
    w.property_null("ranges").ok()?;
    for (i, &(b, s, nomap, cma)) in spec.static_rm.iter().enumerate() {
        let n = w.begin_node(&format!("static@{i:x}")).ok()?;
        w.property_array_u32("reg", &reg(&[(b, s)], spec.cells))
            .ok()?;
        if nomap {
            w.property_null("no-map").ok()?;
        }
        if cma {
            w.property_string("compatible", "shared-dma-pool").ok()?;
            w.property_null("reusable").ok()?;
        }
        w.end_node(n).ok()?;
    }
    for (i, &(s, nomap, cma)) in spec.dynamic_rm.iter().enumerate() {
        let n = w.begin_node(&format!("dynamic{i}")).ok()?;
        let mut size = Vec::new();
        cells(s, spec.cells.1, &mut size);
        w.property_array_u32("size", &size).ok()?;
        if nomap {
            w.property_null("no-map").ok()?;
        }
        if cma {
            w.property_string("compatible", "shared-dma-pool").ok()?;
            w.property_null("reusable").ok()?;
        }
        w.end_node(n).ok()?;
    }
    w.end_node(rm).ok()?;
    w.end_node(root).ok()?;
    let mut blob = w.finish().ok()?;
    for &(at, x) in &spec.corrupt {
        let i = at % blob.len();
        blob[i] ^= x;
    }
    Some(blob)
}

/// How far one generated tree got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Outcome {
    NotBuilt,
    Rejected,
    NoBoot,
    Booted,
}

/// Parse and, when accepted, boot on the host; panics only on a zonekit bug.
fn parse_and_boot(spec: &TreeSpec) -> Outcome {
    let Some(blob) = build(spec) else {
        return Outcome::NotBuilt;
    };
    let mut buf = vec![0u8; blob.len() + 8];
    let off = buf.as_ptr().align_offset(8);
    buf[off..off + blob.len()].copy_from_slice(&blob);
    let bytes = &buf[off..off + blob.len()];
    let Ok(source) = FdtMemory::parse_at(bytes, u32::MAX as u64, Some(spec.blob_at)) else {
        return Outcome::Rejected;
    };
    let banks: Vec<MemRange> = source.banks().collect();
    if banks.is_empty() {
        return Outcome::Rejected; // SourceError::NoMemory
    }
    // Keep the host's simulated RAM modest: skip trees with more than 4 GiB of banks.
    let total: u128 = banks.iter().map(|b| u128::from(b.size)).sum();
    if banks.is_empty() || total > 1 << 32 {
        return Outcome::NoBoot;
    }
    let first = banks.iter().map(|b| b.base).min().unwrap_or(0);
    let image = MemRange::new(first.saturating_add(0x8000), 0x10_0000);
    let params = BootParams {
        source: &source,
        cmdline: source.cmdline(),
        dma_zone_size: None,
        kernel_image: image,
        boot_data: &[],
        mm: MmConfig::ZONEKIT,
    };
    let mut storage = VecPageStorage::default();
    let Ok(booted) = boot(&params, &mut storage, &mut NoHooks) else {
        return Outcome::NoBoot; // a typed error is a fine answer to a strange tree
    };
    booted
        .self_check()
        .expect("boot passed but the self-check failed");
    let memblock_free = count_free_pages(&booted.memblock);
    let mut running = booted.mem_init::<1>(storage, &mut NoHooks);
    if running.allocator.totalram_pages() <= 16384 {
        running.self_test(7, 300).expect("page allocator self-test");
    }
    let a = &running.allocator;
    let cma: u64 = ZoneType::ALL
        .iter()
        .map(|&z| a.zone_state(z).cma_pages)
        .sum();
    assert_eq!(
        a.nr_free_pages(),
        memblock_free + cma,
        "pages lost between memblock and the buddy"
    );
    a.check_invariants().expect("allocator invariants");
    Outcome::Booted
}

/// Run `check` over `cases` generated inputs (proptest shrinks a failure to a minimal
/// input); returns how often each outcome occurred, so a test can insist that the
/// generator reaches the interesting paths at all.
fn fuzz<T: std::fmt::Debug, O: Copy + Eq + std::hash::Hash + 'static>(
    strategy: impl Strategy<Value = T>,
    cases: u32,
    check: impl Fn(&T) -> O,
) -> std::collections::HashMap<O, u32> {
    use std::sync::Mutex;
    let seen = Mutex::new(std::collections::HashMap::new());
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&strategy, |input| {
        let o = check(&input);
        *seen.lock().unwrap().entry(o).or_insert(0) += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    seen.into_inner().unwrap()
}

#[test]
fn fuzz_dtb_parse_and_host_boot() {
    let seen = fuzz(tree_strategy(), cases(300), parse_and_boot);
    eprintln!("fuzz_dtb_parse_and_host_boot: {seen:?}");
    // Both ends must be reached for the run to mean anything.
    assert!(
        seen.get(&Outcome::Booted).copied().unwrap_or(0) >= 10,
        "{seen:?}"
    );
    assert!(
        seen.get(&Outcome::Rejected).copied().unwrap_or(0) >= 10,
        "{seen:?}"
    );
}

// ------------------------------------------------------------------ memblock model

/// A set of byte ranges, kept sorted and merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    fn add(&mut self, b: u64, e: u64) {
        if b >= e {
            return;
        }
        self.0.push((b, e));
        self.0.sort();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for &(s, t) in &self.0 {
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(t),
                _ => out.push((s, t)),
            }
        }
        self.0 = out;
    }

    fn remove(&mut self, b: u64, e: u64) {
        let mut out = Vec::new();
        for &(s, t) in &self.0 {
            if t <= b || s >= e {
                out.push((s, t));
                continue;
            }
            if s < b {
                out.push((s, b));
            }
            if t > e {
                out.push((e, t));
            }
        }
        self.0 = out;
    }

    fn intersect(&self, other: &Ranges) -> Ranges {
        let mut r = Ranges::default();
        for &(s, t) in &self.0 {
            for &(u, v) in &other.0 {
                r.add(s.max(u), t.min(v));
            }
        }
        r
    }

    fn covers(&self, b: u64, e: u64) -> bool {
        self.0.iter().any(|&(s, t)| s <= b && e <= t)
    }

    fn touches(&self, b: u64, e: u64) -> bool {
        self.0.iter().any(|&(s, t)| s < e && b < t)
    }

    /// Whether some `align`-aligned `size` bytes of `self` minus `minus` fit in
    /// `[lo, hi)`.
    fn has_room(&self, minus: &Ranges, size: u64, align: u64, lo: u64, hi: u64) -> bool {
        let mut free = self.clone();
        for &(s, t) in &minus.0 {
            free.remove(s, t);
        }
        free.0.iter().any(|&(s, t)| {
            let (s, t) = (s.max(lo), t.min(hi));
            let Some(start) = s.checked_next_multiple_of(align) else {
                return false;
            };
            start.checked_add(size).is_some_and(|end| end <= t)
        })
    }
}

#[derive(Clone, Debug)]
enum MbOp {
    Add(u64, u64),
    Remove(u64, u64),
    Reserve(u64, u64),
    Free(u64, u64),
    Alloc {
        size: u64,
        align_shift: u32,
        lo: u64,
        hi: u64,
        bottom_up: bool,
    },
}

fn mb_op() -> impl Strategy<Value = MbOp> {
    // Addresses in a 64 MiB window (page-granular and odd), so operations collide.
    let addr = prop_oneof![
        (0u64..0x4000).prop_map(|p| 0x6000_0000 + (p << 12)),
        (0u64..0x400_0000).prop_map(|b| 0x6000_0000 + b),
    ];
    let len = prop_oneof![
        (1u64..64).prop_map(|p| p << 12),
        (1u64..0x10_0000),
        (1u64..16).prop_map(|m| m << 20),
    ];
    prop_oneof![
        3 => (addr.clone(), len.clone()).prop_map(|(b, s)| MbOp::Add(b, s)),
        1 => (addr.clone(), len.clone()).prop_map(|(b, s)| MbOp::Remove(b, s)),
        3 => (addr.clone(), len.clone()).prop_map(|(b, s)| MbOp::Reserve(b, s)),
        2 => (addr.clone(), len.clone()).prop_map(|(b, s)| MbOp::Free(b, s)),
        4 => (len, 0u32..23, addr.clone(), addr, any::<bool>()).prop_map(
            |(size, align_shift, a, b, bottom_up)| MbOp::Alloc {
                size,
                align_shift,
                lo: a.min(b),
                hi: if a == b { MEMBLOCK_ALLOC_ANYWHERE } else { a.max(b) },
                bottom_up,
            }
        ),
    ]
}

fn coverage<const N: usize>(t: &zonekit_core::memblock::RegionTable<N>) -> Ranges {
    let mut r = Ranges::default();
    let mut last_end = 0;
    for reg in t.regions() {
        assert!(reg.size > 0, "empty region in {}", t.name());
        assert!(reg.base >= last_end, "{} not sorted/disjoint", t.name());
        last_end = reg.base + reg.size;
        r.add(reg.base, reg.base + reg.size);
    }
    r
}

fn run_memblock(ops: &[MbOp]) -> (bool, bool) {
    let (mut some_alloc, mut some_fail) = (false, false);
    let mut mb: Memblock<256> = Memblock::new(u32::MAX as u64);
    let (mut memory, mut reserved) = (Ranges::default(), Ranges::default());
    for op in ops {
        match *op {
            MbOp::Add(b, s) => {
                if mb.add(b, s).is_ok() {
                    memory.add(b, b + s);
                }
            }
            MbOp::Remove(b, s) => {
                if mb.remove(b, s).is_ok() {
                    memory.remove(b, b + s);
                }
            }
            MbOp::Reserve(b, s) => {
                if mb.reserve(b, s).is_ok() {
                    reserved.add(b, b + s);
                }
            }
            MbOp::Free(b, s) => {
                if mb.phys_free(b, s).is_ok() {
                    reserved.remove(b, b + s);
                }
            }
            MbOp::Alloc {
                size,
                align_shift,
                lo,
                hi,
                bottom_up,
            } => {
                let align = 1u64 << align_shift;
                mb.set_bottom_up(bottom_up);
                let end = if hi == MEMBLOCK_ALLOC_ANYWHERE {
                    u64::MAX
                } else {
                    hi
                };
                let room = memory.has_room(&reserved, size, align, lo, end);
                match mb.phys_alloc_range(size, align, lo, hi) {
                    Some(a) => {
                        assert_eq!(a % align, 0, "{op:?}: {a:#x} misaligned");
                        assert!(a >= lo && a + size <= end, "{op:?}: {a:#x} outside range");
                        assert!(memory.covers(a, a + size), "{op:?}: {a:#x} not memory");
                        assert!(!reserved.touches(a, a + size), "{op:?}: {a:#x} reserved");
                        reserved.add(a, a + size);
                        some_alloc = true;
                    }
                    None => {
                        assert!(!room, "{op:?}: failed though the model has room");
                        some_fail = true;
                    }
                }
            }
        }
        assert_eq!(coverage(&mb.memory), memory, "memory after {op:?}");
        assert_eq!(coverage(&mb.reserved), reserved, "reserved after {op:?}");
        // Reserved bytes outside memory are allowed (Linux allows them); the totals
        // must still agree with the tables.
        let _ = memory.intersect(&reserved);
    }
    (some_alloc, some_fail)
}

#[test]
fn fuzz_memblock_ops_against_model() {
    let seen = fuzz(
        proptest::collection::vec(mb_op(), 1..80),
        cases(300),
        |ops| run_memblock(ops),
    );
    eprintln!("fuzz_memblock_ops_against_model: {seen:?}");
    let allocs: u32 = seen.iter().filter(|(k, _)| k.0).map(|(_, n)| n).sum();
    let fails: u32 = seen.iter().filter(|(k, _)| k.1).map(|(_, n)| n).sum();
    assert!(allocs >= 50 && fails >= 10, "{seen:?}");
}
