//! Replays the Linux 6.1 oracle fixtures (`shared/oracle/cases/*.json`, transcribed
//! below): from each case's `MEMBLOCK configuration` dump and the paging_init
//! allocations it logged, `free_area_init_node` must put the mem_map and the usemaps
//! exactly where Linux did (relations 4 and 7), and the zones' managed pages must add
//! up to Linux's "Total pages" (relations 5 and 6).
//!
//! Only inputs and printed values are used (`memblock_initial`, `ops`,
//! `zones_printed`, `total_pages`), never the fixtures' `derived`/`checks`.

use zonekit_core::memblock::Memblock;
use zonekit_core::mmzone::{free_area_init_node, ZoneType};
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MmConfig;

struct Case {
    name: &'static str,
    lpae: bool,
    memory: &'static [(u64, u64)],
    reserved: &'static [(u64, u64)],
    /// (bytes, align, nid, base) of every allocation between the dump and
    /// free_area_init.
    paging_init: &'static [(u64, u64, i32, u64)],
    /// DMA zone [start, end) pfns (all lowmem).
    dma: (u64, u64),
    /// HighMem zone [start, end) pfns (empty when start == end).
    highmem: (u64, u64),
    /// (bytes, base) of the mem_map.
    mem_map: (u64, u64),
    /// (bytes, base) of each usemap, in allocation order.
    usemaps: &'static [(u64, u64)],
    /// "Built 1 zonelists ... Total pages".
    total_pages: u64,
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case {
        name: "imx6ul-512m",
        lpae: false,
        memory: &[(0x80000000, 0x20000000)],
        reserved: &[(0x80204000, 0x4000), (0x80300000, 0x1307588), (0x88000000, 0x145e6), (0x9f000000, 0x1000000)],
        paging_init: &[(40, 0x4, -1, 0x9effffd8), (4096, 0x1000, -1, 0x9effe000), (4096, 0x1000, -1, 0x9effd000), (4096, 0x1000, -1, 0x9effc000), (4096, 0x1000, -1, 0x9effb000), (4096, 0x1000, -1, 0x9effa000), (4096, 0x1000, -1, 0x9eff9000), (4096, 0x1000, -1, 0x9eff8000), (4096, 0x1000, -1, 0x9eff7000), (8192, 0x2000, -1, 0x9eff4000), (4096, 0x1000, -1, 0x9eff6000), (40, 0x4, -1, 0x9effffb0), (4096, 0x1000, -1, 0x9eff3000), (4096, 0x1000, -1, 0x9eff2000), (4096, 0x1000, -1, 0x9eff1000)],
        dma: (0x80000, 0xa0000),
        highmem: (0xa0000, 0xa0000),
        mem_map: (4718592, 0x9eb71000),
        usemaps: &[(32, 0x9effff80)],
        total_pages: 129920,
    },
    Case {
        name: "sabrelite-1g",
        lpae: false,
        memory: &[(0x10000000, 0x40000000)],
        reserved: &[(0x10204000, 0x4000), (0x10300000, 0x1307588), (0x18000000, 0x19bde), (0x4f000000, 0x1000000)],
        paging_init: &[(8192, 0x2000, -1, 0x3fffe000), (4096, 0x1000, -1, 0x3fffd000), (40, 0x4, -1, 0x3fffcfd8), (4096, 0x1000, -1, 0x3fffb000), (40, 0x4, -1, 0x3fffcfb0), (4096, 0x1000, -1, 0x3fffa000), (4096, 0x1000, -1, 0x3fff9000), (4096, 0x1000, -1, 0x3fff8000)],
        dma: (0x10000, 0x40000),
        highmem: (0x40000, 0x50000),
        mem_map: (9437184, 0x3f6f8000),
        usemaps: &[(48, 0x3fffcf80), (16, 0x3fffcf40)],
        total_pages: 260416,
    },
    Case {
        name: "va15lpae-2g",
        lpae: true,
        memory: &[(0x80000000, 0x80000000)],
        reserved: &[(0x80203000, 0x5000), (0x80400000, 0x140d288), (0x88000000, 0xb3e0), (0xfee00000, 0x1000000)],
        paging_init: &[(8192, 0x2000, -1, 0xafffe000), (4096, 0x1000, -1, 0xafffd000), (48, 0x8, -1, 0xafffcfd0), (4096, 0x1000, -1, 0xafffb000), (4096, 0x1000, -1, 0xafffa000), (4096, 0x1000, -1, 0xafff9000)],
        dma: (0x80000, 0xb0000),
        highmem: (0xb0000, 0x100000),
        mem_map: (18874368, 0xaedf9000),
        usemaps: &[(192, 0xafffcf00), (320, 0xafffcdc0)],
        total_pages: 522560,
    },
    Case {
        name: "va9-128m",
        lpae: false,
        memory: &[(0x60000000, 0x8000000)],
        reserved: &[(0x60204000, 0x4000), (0x60300000, 0x1307588), (0x64000000, 0xbc22), (0x67000000, 0x1000000)],
        paging_init: &[(40, 0x4, -1, 0x66ffffd8), (4096, 0x1000, -1, 0x66ffe000), (4096, 0x1000, -1, 0x66ffd000), (4096, 0x1000, -1, 0x66ffc000), (4096, 0x1000, -1, 0x66ffb000), (4096, 0x1000, -1, 0x66ffa000), (4096, 0x1000, -1, 0x66ff9000), (4096, 0x1000, -1, 0x66ff8000), (4096, 0x1000, -1, 0x66ff7000), (8192, 0x2000, -1, 0x66ff4000), (4096, 0x1000, -1, 0x66ff6000), (40, 0x4, -1, 0x66ffffb0), (4096, 0x1000, -1, 0x66ff3000), (4096, 0x1000, -1, 0x66ff2000), (4096, 0x1000, -1, 0x66ff1000)],
        dma: (0x60000, 0x68000),
        highmem: (0x68000, 0x68000),
        mem_map: (1179648, 0x66ed1000),
        usemaps: &[(8, 0x66ffff80)],
        total_pages: 32480,
    },
    Case {
        name: "va9-1g",
        lpae: false,
        memory: &[(0x60000000, 0x40000000)],
        reserved: &[(0x60204000, 0x4000), (0x60300000, 0x1307588), (0x68000000, 0xbc22), (0x9f000000, 0x1000000)],
        paging_init: &[(8192, 0x2000, -1, 0x8fffe000), (4096, 0x1000, -1, 0x8fffd000), (40, 0x4, -1, 0x8fffcfd8), (4096, 0x1000, -1, 0x8fffb000), (4096, 0x1000, -1, 0x8fffa000), (4096, 0x1000, -1, 0x8fff9000)],
        dma: (0x60000, 0x90000),
        highmem: (0x90000, 0xa0000),
        mem_map: (9437184, 0x8f6f9000),
        usemaps: &[(48, 0x8fffcf80), (16, 0x8fffcfc0)],
        total_pages: 260416,
    },
    Case {
        name: "va9-512m-cma0",
        lpae: false,
        memory: &[(0x60000000, 0x20000000)],
        reserved: &[(0x60204000, 0x4000), (0x60300000, 0x1307588), (0x68000000, 0xbc22)],
        paging_init: &[(8192, 0x2000, -1, 0x7fffe000), (4096, 0x1000, -1, 0x7fffd000), (40, 0x4, -1, 0x7fffcfd8), (4096, 0x1000, -1, 0x7fffb000), (4096, 0x1000, -1, 0x7fffa000), (4096, 0x1000, -1, 0x7fff9000)],
        dma: (0x60000, 0x80000),
        highmem: (0x80000, 0x80000),
        mem_map: (4718592, 0x7fb79000),
        usemaps: &[(32, 0x7fffcf80)],
        total_pages: 129920,
    },
    Case {
        name: "va9-512m-mem300m",
        lpae: false,
        memory: &[(0x60000000, 0x12c00000)],
        reserved: &[(0x60204000, 0x4000), (0x60300000, 0x1307588), (0x68000000, 0xbc22), (0x71800000, 0x1000000)],
        paging_init: &[(40, 0x4, -1, 0x72bfffd8), (4096, 0x1000, -1, 0x72bfe000), (4096, 0x1000, -1, 0x72bfd000), (4096, 0x1000, -1, 0x72bfc000), (4096, 0x1000, -1, 0x72bfb000), (4096, 0x1000, -1, 0x72bfa000), (4096, 0x1000, -1, 0x72bf9000), (4096, 0x1000, -1, 0x72bf8000), (4096, 0x1000, -1, 0x72bf7000), (8192, 0x2000, -1, 0x72bf4000), (4096, 0x1000, -1, 0x72bf6000), (40, 0x4, -1, 0x72bfffb0), (4096, 0x1000, -1, 0x72bf3000), (4096, 0x1000, -1, 0x72bf2000), (4096, 0x1000, -1, 0x72bf1000)],
        dma: (0x60000, 0x72c00),
        highmem: (0x72c00, 0x72c00),
        mem_map: (2801664, 0x72945000),
        usemaps: &[(20, 0x72bfff80)],
        total_pages: 76125,
    },
    Case {
        name: "va9-512m-vmalloc600m",
        lpae: false,
        memory: &[(0x60000000, 0x20000000)],
        reserved: &[(0x60204000, 0x4000), (0x60300000, 0x1307588), (0x68000000, 0xbc22), (0x7f000000, 0x1000000)],
        paging_init: &[(8192, 0x2000, -1, 0x797fe000), (4096, 0x1000, -1, 0x797fd000), (40, 0x4, -1, 0x797fcfd8), (4096, 0x1000, -1, 0x797fb000), (4096, 0x1000, -1, 0x797fa000), (4096, 0x1000, -1, 0x797f9000)],
        dma: (0x60000, 0x79800),
        highmem: (0x79800, 0x80000),
        mem_map: (4718592, 0x79379000),
        usemaps: &[(28, 0x797fcf80), (8, 0x797fcfc0)],
        total_pages: 130154,
    },
    Case {
        name: "va9-512m",
        lpae: false,
        memory: &[(0x60000000, 0x20000000)],
        reserved: &[(0x60204000, 0x4000), (0x60300000, 0x1307588), (0x68000000, 0xbc22), (0x7f000000, 0x1000000)],
        paging_init: &[(40, 0x4, -1, 0x7effffd8), (4096, 0x1000, -1, 0x7effe000), (4096, 0x1000, -1, 0x7effd000), (4096, 0x1000, -1, 0x7effc000), (4096, 0x1000, -1, 0x7effb000), (4096, 0x1000, -1, 0x7effa000), (4096, 0x1000, -1, 0x7eff9000), (4096, 0x1000, -1, 0x7eff8000), (4096, 0x1000, -1, 0x7eff7000), (8192, 0x2000, -1, 0x7eff4000), (4096, 0x1000, -1, 0x7eff6000), (40, 0x4, -1, 0x7effffb0), (4096, 0x1000, -1, 0x7eff3000), (4096, 0x1000, -1, 0x7eff2000), (4096, 0x1000, -1, 0x7eff1000)],
        dma: (0x60000, 0x80000),
        highmem: (0x80000, 0x80000),
        mem_map: (4718592, 0x7eb71000),
        usemaps: &[(32, 0x7effff80)],
        total_pages: 129920,
    },
];

/// Pages of `[start, end)` (pfns) covered by the memory banks (whole pages only).
fn present_in(memory: &[(u64, u64)], start: u64, end: u64) -> u64 {
    memory
        .iter()
        .map(|&(b, s)| {
            let lo = ((b + 0xfff) >> 12).max(start);
            let hi = ((b + s) >> 12).min(end);
            hi.saturating_sub(lo)
        })
        .sum()
}

#[test]
fn oracle_fixtures_replay() {
    for case in CASES {
        let cfg = if case.lpae {
            MmConfig::LINUX_61_ARMMP_LPAE
        } else {
            MmConfig::LINUX_61_ARMMP
        };
        let mut mb: Memblock = Memblock::new(cfg.phys_addr_max);
        for &(b, s) in case.memory {
            mb.add(b, s).unwrap();
        }
        for &(b, s) in case.reserved {
            mb.reserve(b, s).unwrap();
        }
        // After map_lowmem the limit is arm_lowmem_limit, the end of the DMA zone.
        mb.set_current_limit(case.dma.1 << 12);
        for &(bytes, align, nid, base) in case.paging_init {
            let got = mb.alloc_try_nid_raw(bytes, align, 0, 0, nid).unwrap();
            assert_eq!(got, base, "{}: paging_init allocation", case.name);
        }

        let dma_size = case.dma.1 - case.dma.0;
        let high_size = case.highmem.1 - case.highmem.0;
        let zones = [dma_size, 0, high_size, 0];
        let holes = [
            dma_size - present_in(case.memory, case.dma.0, case.dma.1),
            0,
            high_size - present_in(case.memory, case.highmem.0, case.highmem.1),
            0,
        ];
        let mut storage = VecPageStorage::default();
        let node = free_area_init_node(
            &mut mb,
            &mut storage,
            &cfg,
            0,
            &zones,
            case.dma.0,
            &holes,
            0,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));

        assert_eq!(
            (node.mem_map_bytes, node.mem_map_phys),
            case.mem_map,
            "{}: mem_map",
            case.name
        );
        let usemaps: Vec<(u64, u64)> = storage.handed_out[1..]
            .iter()
            .map(|&(b, s)| (s, b))
            .collect();
        assert_eq!(usemaps, case.usemaps, "{}: usemaps", case.name);
        let populated: Vec<(u64, u64)> = node
            .zones
            .iter()
            .filter(|z| z.usemap.is_some())
            .map(|z| (z.usemap_bytes, z.usemap_phys))
            .collect();
        assert_eq!(populated, case.usemaps, "{}: zone usemaps", case.name);
        assert_eq!(node.total_managed(), case.total_pages, "{}", case.name);
        assert_eq!(node.nr_all_pages, case.total_pages, "{}", case.name);
        assert_eq!(
            node.zones[ZoneType::Normal as usize].spanned_pages,
            0,
            "{}",
            case.name
        );
        node.check_boot_state(&mb)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
}
