//! The buddy page allocator on a booted node: `memblock_free_all` against an
//! independent count, allocate-everything / free-everything round trips, `bad_page`
//! detection, the Linux 6.1 /proc oracle (watermarks, protection, pcp), the report
//! formats, and model-based random sequences checked after every step.

use std::collections::BTreeMap;

use proptest::prelude::*;
use zonekit_arch_arm::bootmem::{boot, BootParams, BootedMemory};
use zonekit_arch_arm::hooks::NoHooks;
use zonekit_core::addr::{pfn_down, pfn_up, MemRange};
use zonekit_core::memblock::RegionFlags;
use zonekit_core::mmzone::{ZoneType, MAX_NR_ZONES};
use zonekit_core::page_alloc::{
    memblock_free_all, AllocConfig, AllocError, FreeAllStats, FreeError, Gfp, MemoryLine,
    PageAllocator, PageBlock, NR_PCP_LISTS, PAGE_ALLOC_COSTLY_ORDER,
};
use zonekit_core::report;
use zonekit_core::source::StaticMemoryMap;
use zonekit_core::storage::VecPageStorage;
use zonekit_core::watermark::{init_per_zone_wmark_min, WmarkInput};
use zonekit_core::MmConfig;

use zonekit_tests::booted;

const BASE: u64 = zonekit_tests::BOOT_BASE;

type Alloc<const N: usize> = PageAllocator<VecPageStorage, N>;

fn allocator<const N: usize>(b: BootedMemory<VecPageStorage>) -> (Alloc<N>, FreeAllStats, u64) {
    let BootedMemory {
        memblock,
        mut node,
        limits,
        ..
    } = b;
    let expected = independent_free_pages(&memblock);
    let stats = memblock_free_all(&mut node, &memblock, limits.max_low);
    let a = PageAllocator::new(
        node,
        VecPageStorage::default(),
        AllocConfig::new(limits.max_low, BASE),
    );
    (a, stats, expected)
}

/// Pages of memblock.memory (NOMAP excluded) that no reserved byte touches, counted
/// page by page.
fn independent_free_pages<const N: usize>(mb: &zonekit_core::memblock::Memblock<N>) -> u64 {
    let reserved: Vec<(u64, u64)> = mb
        .reserved
        .regions()
        .iter()
        .map(|r| (r.base, r.end()))
        .collect();
    let mut n = 0;
    for m in mb.memory.regions() {
        if m.flags.contains(RegionFlags::NOMAP) {
            continue;
        }
        for pfn in pfn_up(m.base)..pfn_down(m.end()) {
            let (s, e) = (pfn << 12, (pfn + 1) << 12);
            // first reserved region ending after s
            let i = reserved.partition_point(|&(_, re)| re <= s);
            let touched = i < reserved.len() && reserved[i].0 < e;
            if !touched {
                n += 1;
            }
        }
    }
    n
}

fn buddyinfo<const N: usize>(a: &Alloc<N>) -> String {
    let mut s = String::new();
    report::buddyinfo(a, &mut s).unwrap();
    s
}

#[test]
fn free_all_matches_independent_count() {
    for (ram, mm) in [
        (512 << 20, MmConfig::LINUX_61_ARMMP),
        (1 << 30, MmConfig::LINUX_61_ARMMP),
        (1 << 30, MmConfig::ZONEKIT),
        (128 << 20, MmConfig::ZONEKIT),
    ] {
        let b = booted(ram, mm);
        let max_low = b.limits.max_low;
        let max_high = b.limits.max_high;
        let (a, stats, expected) = allocator::<1>(b);
        assert_eq!(stats.totalram(), expected, "ram {ram:#x}");
        assert_eq!(a.nr_free_pages(), expected);
        assert_eq!(a.totalram_pages(), expected);
        if max_high > max_low {
            assert!(stats.highmem_pages > 0);
            assert_eq!(
                a.managed(ZoneType::HighMem),
                stats.per_zone[ZoneType::HighMem as usize]
            );
        } else {
            assert_eq!(stats.highmem_pages, 0);
        }
        let r = a.check_invariants().expect("invariants");
        assert_eq!(r.free, expected);
        let line = MemoryLine::new(a.node(), &stats, 0).to_string();
        assert!(
            line.starts_with(&format!(
                "Memory: {}K/{}K available (",
                expected * 4,
                a.node().node_present_pages * 4
            )),
            "{line}"
        );
        assert!(line.ends_with(&format!(
            "K reserved, {}K highmem)",
            stats.highmem_pages * 4
        )));
    }
}

/// memblock_free_all stores one value over each free range (the zone's reserved
/// template with PG_reserved cleared and refcount 0): it relies on every free
/// page's descriptor still holding the value memmap_init gave its zone. Checked
/// here on nodes with lowmem, highmem, holes and a kernel image.
#[test]
fn free_pages_hold_their_zone_value_before_free_all() {
    for (ram, mm) in [
        (128 << 20, MmConfig::LINUX_61_ARMMP),
        (1 << 30, MmConfig::ZONEKIT),
        (1536 << 20, MmConfig::LINUX_61_ARMMP),
    ] {
        let b = booted(ram, mm);
        let node = &b.node;
        for z in &node.zones {
            let template = zonekit_core::page::Page::ZEROED;
            template.init_single_page(z.zone_type, z.node);
            template.set_reserved();
            for (start, end, _) in b.memblock.free_ranges(-1, RegionFlags::NONE) {
                let lo = pfn_up(start).max(z.zone_start_pfn);
                let hi = pfn_down(end).min(z.zone_end_pfn());
                for pfn in lo..hi {
                    assert_eq!(node.pfn_to_page(pfn), Some(&template), "pfn {pfn:#x}");
                }
            }
        }
        // And the values memblock_free_all leaves are what the page-by-page
        // __ClearPageReserved + set_page_count(0) would leave.
        let BootedMemory {
            memblock,
            mut node,
            limits,
            ..
        } = b;
        memblock_free_all(&mut node, &memblock, limits.max_low);
        for (start, end, _) in memblock.free_ranges(-1, RegionFlags::NONE) {
            for pfn in pfn_up(start)..pfn_down(end) {
                let p = node.pfn_to_page(pfn).unwrap();
                assert!(!p.is_reserved() && p.nid() == 0, "pfn {pfn:#x}");
            }
        }
    }
}

#[test]
fn free_all_blocks_are_max_aligned() {
    let (a, _, _) = allocator::<1>(booted(512 << 20, MmConfig::LINUX_61_ARMMP));
    let z = &a.node().zones[ZoneType::Dma as usize];
    // 512 MiB (64 order-11 blocks) with an 8 MiB image: most of the zone is order-11
    // blocks.
    assert!(z.free_area[11].nr_free >= 58, "{}", z.free_area[11].nr_free);
    let pt = {
        let mut s = String::new();
        report::pagetypeinfo(&a, &mut s).unwrap();
        s
    };
    println!("{pt}");
    assert!(pt.starts_with("Page block order: 11\nPages per block:  2048\n\nFree pages count per migrate type at order       0      1"));
    assert!(pt.contains("Node    0, zone      DMA, type      Movable "));
    assert!(pt.contains("\nNumber of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate \nNode 0, zone      DMA            0           64            0            0            0            0 \n"), "{pt}");
}

fn alloc_everything<const N: usize>(a: &mut Alloc<N>, orders: &[u32]) -> Vec<PageBlock> {
    let kinds = [
        Gfp::HIGHUSER_MOVABLE,
        Gfp::KERNEL,
        Gfp::RECLAIMABLE,
        Gfp::HIGHMEM,
        Gfp::DMA,
    ];
    let mut blocks = Vec::new();
    let mut k = 0usize;
    for &order in orders {
        loop {
            let gfp = kinds[k % kinds.len()] | Gfp::MEMALLOC;
            k += 1;
            match a.alloc_pages(k % N, gfp, order) {
                Ok(b) => blocks.push(b),
                Err(AllocError::NoMemory) => {
                    // another zone type may still have room
                    match a.alloc_pages(0, Gfp::HIGHUSER_MOVABLE | Gfp::MEMALLOC, order) {
                        Ok(b) => blocks.push(b),
                        Err(AllocError::NoMemory) => break,
                        Err(e) => panic!("{e:?}"),
                    }
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    blocks
}

#[test]
fn alloc_all_order0_then_free_restores_buddyinfo() {
    let (mut a, stats, _) = allocator::<1>(booted(1 << 30, MmConfig::LINUX_61_ARMMP));
    let before = buddyinfo(&a);
    let blocks = alloc_everything(&mut a, &[0]);
    assert_eq!(blocks.len() as u64, stats.totalram());
    assert_eq!(a.nr_free_pages(), 0);
    a.check_invariants().unwrap();
    for b in blocks {
        a.free_pages(0, b).unwrap();
    }
    a.drain_all_pages();
    a.check_invariants().unwrap();
    assert_eq!(a.nr_free_pages(), stats.totalram());
    assert_eq!(buddyinfo(&a), before);
}

#[test]
fn alloc_all_mixed_orders_then_free_restores_buddyinfo() {
    let (mut a, stats, _) = allocator::<2>(booted(512 << 20, MmConfig::LINUX_61_ARMMP));
    let before = buddyinfo(&a);
    let blocks = alloc_everything(&mut a, &[11, 7, 3, 5, 1, 2, 0]);
    let pages: u64 = blocks.iter().map(|b| b.nr_pages()).sum();
    assert_eq!(pages, stats.totalram());
    a.check_invariants().unwrap();
    // free in an interleaved order, on both CPUs
    let (even, odd): (Vec<_>, Vec<_>) = blocks
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    for (i, b) in odd.into_iter().rev().chain(even) {
        a.free_pages(i % 2, b).unwrap();
    }
    a.drain_all_pages();
    a.check_invariants().unwrap();
    assert_eq!(a.nr_free_pages(), stats.totalram());
    assert_eq!(buddyinfo(&a), before);
}

#[test]
fn bad_frees_are_detected_and_harmless() {
    let (mut a, _, _) = allocator::<1>(booted(128 << 20, MmConfig::LINUX_61_ARMMP));
    let snapshot = |a: &Alloc<1>| (buddyinfo(a), a.nr_free_pages(), a.nr_pcp_pages());

    let b = a.alloc_pages(0, Gfp::KERNEL, 0).unwrap();
    let (pfn, order) = b.into_raw();
    a.free_pages_raw(0, pfn, order).unwrap();
    let s = snapshot(&a);
    assert_eq!(
        a.free_pages_raw(0, pfn, 0),
        Err(FreeError::AlreadyFree(pfn))
    );
    assert_eq!(snapshot(&a), s);

    let b = a.alloc_pages(0, Gfp::KERNEL, 3).unwrap();
    let (pfn, order) = b.into_raw();
    let s = snapshot(&a);
    assert_eq!(
        a.free_pages_raw(0, pfn, 2),
        Err(FreeError::WrongOrder {
            pfn,
            allocated: 3,
            given: 2
        })
    );
    assert_eq!(
        a.free_pages_raw(0, pfn + 1, 0),
        Err(FreeError::NotHead(pfn + 1))
    );
    assert_eq!(
        a.free_pages_raw(0, pfn, 20),
        Err(FreeError::InvalidOrder { pfn, order: 20 })
    );
    assert_eq!(snapshot(&a), s);
    a.free_pages_raw(0, pfn, order).unwrap();
    // freed order-3 block: its pages are inside a free block now
    assert_eq!(
        a.free_pages_raw(0, pfn + 1, 0),
        Err(FreeError::AlreadyFree(pfn + 1))
    );
    assert_eq!(
        a.free_pages_raw(0, pfn, 3),
        Err(FreeError::AlreadyFree(pfn))
    );

    // the kernel image is reserved
    let kpfn = (BASE + 0x10_0000) >> 12;
    assert_eq!(a.free_pages_raw(0, kpfn, 0), Err(FreeError::Reserved(kpfn)));
    // outside the node
    assert_eq!(
        a.free_pages_raw(0, 0x1000, 0),
        Err(FreeError::OutsideNode(0x1000))
    );
    assert_eq!(a.free_pages_raw(5, pfn, 0), Err(FreeError::BadCpu(5)));
    a.check_invariants().unwrap();
}

#[test]
fn watermarks_stop_normal_allocations_and_zonelist_falls_back() {
    let (mut a, _, _) = allocator::<1>(booted(1 << 30, MmConfig::LINUX_61_ARMMP));
    // HighMem first for a highmem request
    let b = a.alloc_pages(0, Gfp::HIGHUSER_MOVABLE, 0).unwrap();
    assert_eq!(b.zone(), ZoneType::HighMem);
    assert_eq!(a.page_address(b.pfn()), None);
    a.free_pages(0, b).unwrap();
    // GFP_KERNEL never gets highmem
    let b = a.alloc_pages(0, Gfp::KERNEL | Gfp::ZERO, 0).unwrap();
    assert_eq!(b.zone(), ZoneType::Dma);
    assert_eq!(a.page_address(b.pfn()), Some(b.phys()));
    a.free_pages(0, b).unwrap();
    // exhaust HighMem without MEMALLOC: the rest comes from DMA, and DMA stops at
    // its watermark + protection
    let mut blocks = Vec::new();
    while let Ok(b) = a.alloc_pages(0, Gfp::HIGHUSER_MOVABLE, 0) {
        blocks.push(b);
    }
    let dma = a.zone_state(ZoneType::Dma);
    let hi = a.zone_state(ZoneType::HighMem);
    assert!(blocks.iter().any(|b| b.zone() == ZoneType::Dma));
    assert!(a.free(ZoneType::HighMem) <= hi.wmark.min + 1);
    let dma_floor = dma.wmark.min + dma.lowmem_reserve[ZoneType::Movable as usize];
    assert!(
        a.free(ZoneType::Dma) <= dma_floor + 1,
        "{} {}",
        a.free(ZoneType::Dma),
        dma_floor
    );
    assert!(a.free(ZoneType::Dma) + 64 >= dma_floor);
    // GFP_ATOMIC dips below the min watermark
    let atomic = a.alloc_pages(0, Gfp::GFP_ATOMIC, 0).unwrap();
    a.check_invariants().unwrap();
    a.free_pages(0, atomic).unwrap();
    for b in blocks {
        a.free_pages(0, b).unwrap();
    }
    a.check_invariants().unwrap();
}

#[test]
fn fallback_steals_pageblocks() {
    let (mut a, _, _) = allocator::<1>(booted(128 << 20, MmConfig::LINUX_61_ARMMP));
    let b = a.alloc_pages(0, Gfp::KERNEL, 0).unwrap();
    let r = a.alloc_pages(0, Gfp::RECLAIMABLE, 0).unwrap();
    let counts = report::pageblock_counts(&a.node().zones[ZoneType::Dma as usize]);
    assert_eq!(counts[0], 1, "one Unmovable pageblock");
    assert_eq!(counts[2], 1, "one Reclaimable pageblock");
    // Unmovable steals the largest block (Linux's __rmqueue_fallback)
    let z = &a.node().zones[ZoneType::Dma as usize];
    assert!(z.free_area[10].free_list[0] != zonekit_core::page::Page::NIL);
    a.check_invariants().unwrap();
    a.free_pages(0, b).unwrap();
    a.free_pages(0, r).unwrap();
    a.check_invariants().unwrap();
}

#[test]
fn zoneinfo_format() {
    let (a, _, _) = allocator::<2>(booted(1 << 30, MmConfig::LINUX_61_ARMMP));
    let mut s = String::new();
    report::zoneinfo(&a, &mut s).unwrap();
    let dma = a.zone_state(ZoneType::Dma);
    assert!(s.starts_with(&format!(
        "Node 0, zone      DMA\n  pages free     {}\n        boost    0\n        min      {}\n        low      {}\n        high     {}\n        spanned  ",
        a.free(ZoneType::Dma), dma.wmark.min, dma.wmark.low, dma.wmark.high
    )), "{s}");
    assert!(s.contains("\n        protection: (0, 0, "));
    assert!(s.contains("\n      nr_free_pages "));
    assert!(s.contains("\n  pagesets\n    cpu: 0\n              count: 0\n              high:  "));
    assert!(s.contains("\n    cpu: 1\n"));
    assert!(s.contains("\nNode 0, zone   Normal\n  pages free     0\n"));
    assert!(s.contains("\nNode 0, zone  Movable\n"));
    assert!(s.contains("\n  start_pfn:           393216\n"));
    let bi = buddyinfo(&a);
    assert!(bi.starts_with("Node 0, zone      DMA "));
    assert_eq!(bi.lines().count(), 2);
    assert_eq!(
        bi.lines().next().unwrap().len(),
        "Node 0, zone      DMA ".len() + 12 * 7
    );
}

// ---- The Linux 6.1 /proc oracle ----

fn fixtures() -> Vec<(String, serde_json::Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/linux-6.1-proc");
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for p in paths {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        out.push((p.file_name().unwrap().to_string_lossy().into_owned(), v));
    }
    out
}

#[test]
fn proc_oracle_watermarks_protection_pcp() {
    let cases = fixtures();
    assert!(cases.len() >= 5);
    for (name, v) in cases {
        let zone_names = ["DMA", "Normal", "HighMem", "Movable"];
        let managed: [u64; MAX_NR_ZONES] = core::array::from_fn(|i| {
            v["model"]["managed"][zone_names[i]]["at_watermark_setup"]
                .as_u64()
                .unwrap()
        });
        let zi = v["zoneinfo"].as_array().unwrap();
        let ratio: Vec<u64> = v["lowmem_reserve_ratio"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        let inp = WmarkInput {
            managed,
            populated: core::array::from_fn(|i| zi[i]["populated"].as_bool().unwrap()),
            nr_cpus: v["cpus_online"].as_u64().unwrap() as u32,
            thp: v["thp_enabled"]
                .as_str()
                .is_some_and(|s| s.contains("[always]")),
            pageblock_nr_pages: v["pagetypeinfo"]["pages_per_block"].as_u64().unwrap(),
            lowmem_reserve_ratio: [ratio[0], ratio[1], ratio[2], ratio[3]],
            watermark_scale_factor: v["watermark_scale_factor"].as_u64().unwrap(),
            percpu_pagelist_high_fraction: v["percpu_pagelist_high_fraction"].as_u64().unwrap(),
            min_free_kbytes: None,
        };
        let t = init_per_zone_wmark_min(&inp);
        assert_eq!(
            t.min_free_kbytes,
            v["min_free_kbytes"].as_u64().unwrap(),
            "{name}"
        );
        for (i, z) in zi.iter().enumerate() {
            let zn = z["name"].as_str().unwrap();
            assert_eq!(zn, zone_names[i]);
            let w = t.wmark[i];
            assert_eq!(
                (w.min, w.low, w.high),
                (
                    z["min"].as_u64().unwrap(),
                    z["low"].as_u64().unwrap(),
                    z["high"].as_u64().unwrap()
                ),
                "{name} {zn} watermarks"
            );
            let prot: Vec<u64> = z["protection"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            assert_eq!(t.lowmem_reserve[i].to_vec(), prot, "{name} {zn} protection");
            for ps in z["pagesets"].as_array().unwrap() {
                assert_eq!(
                    t.pcp_batch[i] as u64,
                    ps["batch"].as_u64().unwrap(),
                    "{name} {zn} batch"
                );
                assert_eq!(
                    t.pcp_high[i] as u64,
                    ps["high"].as_u64().unwrap(),
                    "{name} {zn} high"
                );
                assert_eq!(
                    t.stat_threshold[i] as u64,
                    ps["stat_threshold"].as_u64().unwrap(),
                    "{name} {zn} stat threshold"
                );
            }
        }
    }
}

/// Orders 1..=PAGE_ALLOC_COSTLY_ORDER go through per-CPU lists as in Linux 5.13+: a
/// freed block waits on `lists[order * MIGRATE_PCPTYPES + mt]` of the freeing CPU
/// (counted in pages), the next allocation of that order and type on that CPU takes
/// it back (LIFO) without touching the buddy, a refill takes `max(batch >> order, 2)`
/// blocks, higher orders bypass the lists, and a drain gives everything back.
#[test]
fn per_order_pcp_lists() {
    let (mut a, _, _) = allocator::<2>(booted(128 << 20, MmConfig::LINUX_61_ARMMP));
    assert_eq!(NR_PCP_LISTS, 12);
    let zone = ZoneType::Dma;
    let before = (buddyinfo(&a), a.nr_free_pages());
    let batch = a.pcp(0, zone).unwrap().batch;
    for order in 1..=PAGE_ALLOC_COSTLY_ORDER {
        let free0 = a.nr_free_pages();
        let pcp0 = a.pcp(0, zone).unwrap().count as u64;
        let b = a.alloc_pages(0, Gfp::KERNEL, order).unwrap();
        let (pfn, o) = b.into_raw();
        let refill = (batch >> order).max(2) as u64;
        // rmqueue_bulk took a scaled batch; one block left for the caller.
        assert_eq!(a.nr_free_pages(), free0 - (refill << order));
        let pcp = a.pcp(0, zone).unwrap();
        assert_eq!(pcp.count as u64, pcp0 + ((refill - 1) << order));
        let pindex = order as usize * 3; // MIGRATE_UNMOVABLE
        assert_ne!(pcp.lists[pindex], u32::MAX);
        // A tail page of a block waiting on a pcp list is inside a free block.
        a.free_pages_raw(0, pfn, o).unwrap();
        assert_eq!(
            a.pcp(0, zone).unwrap().count as u64,
            pcp0 + (refill << order)
        );
        assert_eq!(
            a.free_pages_raw(0, pfn + 1, 0),
            Err(FreeError::AlreadyFree(pfn + 1))
        );
        assert_eq!(
            a.free_pages_raw(0, pfn, order),
            Err(FreeError::AlreadyFree(pfn))
        );
        // LIFO: the same block comes back, the buddy is not touched.
        let free1 = a.nr_free_pages();
        let again = a.alloc_pages(0, Gfp::KERNEL, order).unwrap();
        assert_eq!(again.pfn(), pfn);
        assert_eq!(a.nr_free_pages(), free1);
        // Another CPU has its own lists.
        let other = a.alloc_pages(1, Gfp::KERNEL, order).unwrap();
        assert_ne!(other.pfn(), pfn);
        a.free_pages(1, other).unwrap();
        a.free_pages(0, again).unwrap();
        a.check_invariants().unwrap();
    }
    // Above PAGE_ALLOC_COSTLY_ORDER: straight to and from the buddy.
    let pcp_before = a.nr_pcp_pages();
    let b = a
        .alloc_pages(0, Gfp::KERNEL, PAGE_ALLOC_COSTLY_ORDER + 1)
        .unwrap();
    a.free_pages(0, b).unwrap();
    assert_eq!(a.nr_pcp_pages(), pcp_before);
    a.drain_all_pages();
    assert_eq!(a.nr_pcp_pages(), 0);
    a.check_invariants().unwrap();
    assert_eq!((buddyinfo(&a), a.nr_free_pages()), before);
}

/// free_unref_page_commit's `free_high`: a high-order free while frees run without
/// allocations (`free_factor` > 0) drains the whole list set.
#[test]
fn high_order_frees_without_allocations_drain_everything() {
    let (mut a, _, _) = allocator::<1>(booted(128 << 20, MmConfig::LINUX_61_ARMMP));
    let high = a.pcp(0, ZoneType::Dma).unwrap().high as usize;
    // Enough order-0 pages to cross `high` when they come back, which raises
    // free_factor, then an order-1 free drains everything.
    let pages: Vec<PageBlock> = (0..high + 8)
        .map(|_| a.alloc_pages(0, Gfp::KERNEL, 0).unwrap())
        .collect();
    let pair = a.alloc_pages(0, Gfp::KERNEL, 1).unwrap();
    for p in pages {
        a.free_pages(0, p).unwrap();
    }
    assert!(a.pcp(0, ZoneType::Dma).unwrap().free_factor > 0);
    a.free_pages(0, pair).unwrap();
    assert_eq!(a.nr_pcp_pages(), 0);
    a.check_invariants().unwrap();
}

// ---- Model-based random sequences ----

#[derive(Clone, Debug)]
enum Op {
    Alloc { cpu: usize, kind: u8, order: u32 },
    Free { pick: usize, cpu: usize },
    FreeTwice { pick: usize },
    Drain { cpu: usize },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..2usize, 0..5u8, prop_oneof![6 => Just(0u32), 3 => 1..4u32, 1 => 4..11u32])
            .prop_map(|(cpu, kind, order)| Op::Alloc { cpu, kind, order }),
        4 => (any::<usize>(), 0..2usize).prop_map(|(pick, cpu)| Op::Free { pick, cpu }),
        1 => any::<usize>().prop_map(|pick| Op::FreeTwice { pick }),
        1 => (0..2usize).prop_map(|cpu| Op::Drain { cpu }),
    ]
}

fn gfp_of(kind: u8) -> Gfp {
    match kind {
        0 => Gfp::KERNEL,
        1 => Gfp::HIGHUSER_MOVABLE,
        2 => Gfp::RECLAIMABLE,
        3 => Gfp::DMA | Gfp::ZERO,
        _ => Gfp::GFP_ATOMIC | Gfp::MEMALLOC,
    }
}

/// The reference model: allocated ranges by start pfn.
struct Model {
    blocks: BTreeMap<u64, (u32, PageBlock)>,
    freed: Vec<(u64, u32)>,
}

impl Model {
    fn overlaps(&self, pfn: u64, order: u32) -> bool {
        let end = pfn + (1 << order);
        if let Some((&s, (o, _))) = self.blocks.range(..end).next_back() {
            return s + (1u64 << o) > pfn;
        }
        false
    }
}

fn run_ops(a: &mut Alloc<2>, ops: &[Op]) {
    let total = a.totalram_pages();
    let mut m = Model {
        blocks: BTreeMap::new(),
        freed: Vec::new(),
    };
    for op in ops {
        match *op {
            Op::Alloc { cpu, kind, order } => match a.alloc_pages(cpu, gfp_of(kind), order) {
                Ok(b) => {
                    assert_eq!(b.pfn() & ((1 << order) - 1), 0);
                    assert!(!m.overlaps(b.pfn(), order), "overlapping allocation {b:?}");
                    if kind == 3 {
                        assert_eq!(b.zone(), ZoneType::Dma);
                    }
                    m.blocks.insert(b.pfn(), (order, b));
                }
                Err(AllocError::NoMemory) => {}
                Err(e) => panic!("{e:?}"),
            },
            Op::Free { pick, cpu } => {
                if m.blocks.is_empty() {
                    continue;
                }
                let key = *m.blocks.keys().nth(pick % m.blocks.len()).unwrap();
                let (order, b) = m.blocks.remove(&key).unwrap();
                a.free_pages(cpu, b).unwrap();
                m.freed.push((key, order));
            }
            Op::FreeTwice { pick } => {
                if m.freed.is_empty() {
                    continue;
                }
                let (pfn, order) = m.freed[pick % m.freed.len()];
                if m.overlaps(pfn, order) {
                    continue; // reallocated since
                }
                assert!(
                    a.free_pages_raw(0, pfn, order).is_err(),
                    "double free accepted"
                );
            }
            Op::Drain { cpu } => a.drain_pages(cpu),
        }
        let r = a
            .check_invariants()
            .unwrap_or_else(|e| panic!("{e} after {op:?}"));
        let model_alloc: u64 = m.blocks.values().map(|(o, _)| 1u64 << o).sum();
        assert_eq!(r.allocated, model_alloc);
        assert_eq!(r.free + r.pcp + r.allocated, total);
    }
    let before = a.nr_free_pages() + a.nr_pcp_pages();
    let _ = before;
    for (_, (_, b)) in std::mem::take(&mut m.blocks) {
        a.free_pages(0, b).unwrap();
    }
    a.drain_all_pages();
    a.check_invariants().unwrap();
    assert_eq!(a.nr_free_pages(), total);
}

fn small_allocator() -> Alloc<2> {
    allocator::<2>(booted(16 << 20, MmConfig::ZONEKIT)).0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn model_random_sequences(ops in proptest::collection::vec(op_strategy(), 1..200)) {
        let mut a = small_allocator();
        let before = buddyinfo(&a);
        run_ops(&mut a, &ops);
        prop_assert_eq!(buddyinfo(&a), before);
    }
}

/// A long xorshift-driven sequence (thousands of steps) on one allocator.
#[test]
fn model_long_xorshift_sequence() {
    let mut a = small_allocator();
    let before = buddyinfo(&a);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ops = Vec::new();
    for _ in 0..4000 {
        let r = next();
        let op = match r % 11 {
            0..=4 => Op::Alloc {
                cpu: (r >> 8) as usize % 2,
                kind: ((r >> 16) % 5) as u8,
                order: [0, 0, 0, 0, 1, 2, 3, 5, 8, 10][((r >> 24) % 10) as usize],
            },
            5..=8 => Op::Free {
                pick: (r >> 32) as usize,
                cpu: (r >> 8) as usize % 2,
            },
            9 => Op::FreeTwice {
                pick: (r >> 32) as usize,
            },
            _ => Op::Drain {
                cpu: (r >> 8) as usize % 2,
            },
        };
        ops.push(op);
    }
    run_ops(&mut a, &ops);
    assert_eq!(buddyinfo(&a), before);
}

#[test]
fn cma_area_is_freed_as_migrate_cma() {
    // A 16 MiB CMA area, reserved in memblock until cma_init_reserved_areas.
    let (mut a, stats) = zonekit_tests::cma_allocator::<1>(512 << 20, MmConfig::LINUX_61_ARMMP);
    let cma_base = zonekit_tests::CMA_AREA.0;
    let st = a.zone_state(ZoneType::Dma);
    assert_eq!(st.cma_pages, 4096);
    assert_eq!(st.counters.free_cma, 4096);
    assert_eq!(a.managed(ZoneType::Dma), stats.totalram() + 4096);
    // min_free_kbytes includes the CMA pages (README relation 2)
    assert_eq!(
        a.min_free_kbytes(),
        zonekit_core::watermark::calculate_min_free_kbytes((stats.totalram() + 4096) * 4)
    );
    let counts = report::pageblock_counts(&a.node().zones[ZoneType::Dma as usize]);
    assert_eq!(counts[zonekit_core::mmzone::MigrateType::Cma as usize], 2);
    let line = MemoryLine::new(a.node(), &stats, 16 << 20).to_string();
    assert!(
        line.contains(", 16384K cma-reserved, 0K highmem)"),
        "{line}"
    );
    a.check_invariants().unwrap();
    // Unmovable allocations never get CMA pages; movable ones may.
    let cma_range = (cma_base >> 12)..(cma_base >> 12) + 4096;
    let mut blocks = Vec::new();
    while let Ok(b) = a.alloc_pages(0, Gfp::KERNEL, 0) {
        assert!(!cma_range.contains(&b.pfn()));
        blocks.push(b);
    }
    let m = a
        .alloc_pages(0, Gfp::HIGHUSER_MOVABLE | Gfp::MEMALLOC, 0)
        .unwrap();
    assert!(cma_range.contains(&m.pfn()));
    blocks.push(m);
    a.check_invariants().unwrap();
    for b in blocks {
        a.free_pages(0, b).unwrap();
    }
    a.drain_all_pages();
    a.check_invariants().unwrap();
    assert_eq!(a.zone_state(ZoneType::Dma).counters.free_cma, 4096);
}

/// Rough order-0 alloc+free throughput (run with `--release -- --ignored`).
#[test]
#[ignore]
fn order0_throughput() {
    let (mut a, _, _) = allocator::<1>(booted(1 << 30, MmConfig::LINUX_61_ARMMP));
    let n = 2_000_000u32;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let b = a.alloc_pages(0, Gfp::KERNEL, 0).unwrap();
        a.free_pages(0, b).unwrap();
    }
    let dt = t.elapsed();
    let mut held = Vec::with_capacity(100_000);
    let t2 = std::time::Instant::now();
    for _ in 0..100_000 {
        held.push(a.alloc_pages(0, Gfp::KERNEL, 0).unwrap());
    }
    for b in held {
        a.free_pages(0, b).unwrap();
    }
    println!(
        "order-0 alloc+free: {:.1} ns/pair (hot), {:.1} ns/pair (100k held)",
        dt.as_nanos() as f64 / n as f64,
        t2.elapsed().as_nanos() as f64 / 100_000.0
    );
    a.check_invariants().unwrap();
}

/// Regression (issue 9, item 1): on a node whose last pageblock reaches past the zone's
/// end, a fallback steal moved nothing and `alloc_pages` retried forever. Exhausting
/// every small node, with every allocation kind, must end in `NoMemory`; each run gets
/// a deadline so that a hang fails the test instead of stalling it.
#[test]
fn alloc_pages_exhaustion_returns_no_memory_on_small_nodes() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for ram in (2..=40u64).map(|half_mib| half_mib << 19) {
            for mm in [MmConfig::ZONEKIT, MmConfig::LINUX_61_ARMMP] {
                for gfp in [
                    Gfp::KERNEL,
                    Gfp::GFP_ATOMIC | Gfp::MEMALLOC,
                    Gfp::RECLAIMABLE,
                ] {
                    let source = StaticMemoryMap::single_bank(BASE, ram);
                    let params = BootParams {
                        source: &source,
                        cmdline: "",
                        dma_zone_size: Some(1 << 32),
                        kernel_image: MemRange::new(BASE + 0x8000, 0x1_0000),
                        boot_data: &[],
                        mm,
                    };
                    let mut storage = VecPageStorage::default();
                    let Ok(b) = boot(&params, &mut storage, &mut NoHooks) else {
                        continue; // too small to boot at all: a typed error, not a hang
                    };
                    let (mut a, stats, _) = allocator::<1>(b);
                    let mut held = Vec::new();
                    loop {
                        match a.alloc_pages(0, gfp, 0) {
                            Ok(b) => held.push(b),
                            Err(AllocError::NoMemory) => break,
                            Err(e) => panic!("{ram:#x} {gfp:?}: {e:?}"),
                        }
                        assert!(held.len() as u64 <= stats.totalram(), "{ram:#x}: too many");
                    }
                    for b in held {
                        a.free_pages(0, b).unwrap();
                    }
                    a.drain_all_pages();
                    a.check_invariants().unwrap();
                    assert_eq!(a.nr_free_pages(), stats.totalram(), "{ram:#x} {gfp:?}");
                }
            }
        }
        tx.send(()).unwrap();
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("exhausting a small node hung (or panicked)");
}

/// Regression (issue 9, item 6): a CMA area in `AllocConfig` that lies over free pages,
/// is not pageblock aligned, spans past the node or has an absurd size used to corrupt
/// the free lists or panic; now it is refused with a typed reason and nothing changes.
#[test]
fn alloc_config_cma_bad_areas_are_refused_without_corruption() {
    use zonekit_core::cma::CmaArea;
    use zonekit_core::page_alloc::CmaActivateError;
    type Expect = fn(&CmaActivateError) -> bool;
    let cases: [(CmaArea, Expect); 5] = [
        // over free pages (nothing reserved there)
        (
            CmaArea {
                base: 0x7000_0000,
                size: 8 << 20,
            },
            |e| matches!(e, CmaActivateError::NotReserved(_)),
        ),
        // not pageblock aligned
        (
            CmaArea {
                base: 0x7e10_0000,
                size: 8 << 20,
            },
            |e| matches!(e, CmaActivateError::Misaligned),
        ),
        // nearly u64::MAX bytes (pageblock multiple, no overflow)
        (
            CmaArea {
                base: 0x7e00_0000,
                size: (u64::MAX - 0x7e00_0000) & !((8 << 20) - 1),
            },
            |e| matches!(e, CmaActivateError::NotInOneZone),
        ),
        // past the end of the node
        (
            CmaArea {
                base: 0x7f80_0000,
                size: 16 << 20,
            },
            |e| matches!(e, CmaActivateError::NotInOneZone),
        ),
        // outside every zone
        (
            CmaArea {
                base: 0x1000_0000,
                size: 8 << 20,
            },
            |e| matches!(e, CmaActivateError::NotInOneZone),
        ),
    ];
    assert!(zonekit_core::cma::CmaAreas::new()
        .init_reserved_mem(0x7e00_0000, !0xfff, 1 << 12)
        .is_err());
    for (area, want) in cases {
        // Only page alignment is asked of the list here: the allocator must check the
        // areas against the node itself.
        let (a, stats) = zonekit_tests::allocator_with_cma::<1>(
            512 << 20,
            MmConfig::LINUX_61_ARMMP,
            (0x7e00_0000, 8 << 20),
            (area.base, area.size),
            1 << 12,
        );
        let failures = a.cma_failures();
        assert_eq!(failures.len(), 1, "{area:x?}");
        assert!(want(&failures[0].1), "{area:x?}: {:?}", failures[0].1);
        assert_eq!(a.zone_state(ZoneType::Dma).cma_pages, 0);
        assert_eq!(a.nr_free_pages(), stats.totalram());
        a.check_invariants().unwrap();
    }
}

#[test]
fn fast_frees_find_each_zone_of_a_two_zone_node() {
    use zonekit_core::page_alloc::smp::vmstat::VmEvent;
    use zonekit_core::page_alloc::SmpPageAllocator;
    use zonekit_core::percpu::CpuTokens;
    // 2 GiB: 768 MiB of DMA, 1.25 GiB of HighMem. Through the shared allocator,
    // whose checked free path takes the zone lock: a free that found its zone on
    // the fast path takes none.
    let (mut owned, _, _) = allocator::<1>(booted(2 << 30, MmConfig::LINUX_61_ARMMP));
    let a = SmpPageAllocator::<_, 1>::new(&mut owned);
    let mut cpu = CpuTokens::<1>::new().claim(0).unwrap();
    for (gfp, zone) in [
        (Gfp::KERNEL, ZoneType::Dma),
        (Gfp::HIGHUSER_MOVABLE, ZoneType::HighMem),
    ] {
        for order in 0..=3 {
            // The first allocation of each order refills the list under the lock.
            let b = a.alloc_pages(&mut cpu, gfp, order).unwrap();
            assert_eq!(b.zone(), zone);
            a.free_pages(&mut cpu, b).unwrap();
            let b = a.alloc_pages(&mut cpu, gfp, order).unwrap();
            let locks = a.cpu_events(0, VmEvent::ZoneLock);
            let before = a.with_all(|a| a.pcp(0, zone).unwrap().count);
            a.free_pages(&mut cpu, b).unwrap();
            assert_eq!(
                a.cpu_events(0, VmEvent::ZoneLock),
                locks,
                "{zone:?} order {order}"
            );
            // Back on its own zone's per-CPU list.
            let after = a.with_all(|a| a.pcp(0, zone).unwrap().count);
            assert_eq!(after, before + (1 << order));
        }
    }
    a.with_all(|a| a.check_invariants()).unwrap();
}
