//! Host tests of the MMU paging layer: the table builder, the paging_init plan, pkmap.

use std::collections::HashMap;
use zonekit_arch_arm::mmu::plan::{
    DEVICE_WINDOW_BASE, LOWMEM_MAX_SIZE, PKMAP_SIZE, VMALLOC_END, VMALLOC_MIN,
};
use zonekit_arch_arm::mmu::table::{L1_TABLE_SIZE, L2_CHUNK_SIZE};
use zonekit_arch_arm::mmu::*;

const MIB: u32 = 1 << 20;

/// Table memory for tests: `words` words starting at physical 0x6800_0000.
fn arena(words: usize) -> Vec<u32> {
    vec![0xDEAD_BEEF; words]
}

const ARENA_PHYS: u64 = 0x6800_0000;

#[test]
fn sections_for_aligned_runs_pages_for_the_tail() {
    let mut mem = arena(64 * 1024);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    assert_eq!(pt.l1_phys() as u64, ARENA_PHYS);
    pt.create_mapping(
        0xC000_0000,
        0x6000_0000,
        0x30_5000,
        MemType::Memory,
        Access::KernelRw,
        false,
    )
    .unwrap();
    for i in 0..3 {
        let e = pt.l1_entry(0xC000_0000 + i * MIB);
        assert_eq!(
            e.decode(),
            L1Kind::Section {
                base: 0x6000_0000 + i * MIB,
                attrs: Attrs::new(MemType::Memory, Access::KernelRw, false)
            }
        );
        assert_eq!(
            e,
            L1Entry::section(
                0x6000_0000 + i * MIB,
                MemType::Memory,
                Access::KernelRw,
                false
            )
        );
    }
    // The tail is five small pages in one second-level table.
    let tail = pt.l1_entry(0xC030_0000);
    let L1Kind::PageTable {
        base, domain: 0, ..
    } = tail.decode()
    else {
        panic!("{tail:?}")
    };
    assert_eq!(base as u64, ARENA_PHYS + L1_TABLE_SIZE as u64);
    assert_eq!(pt.l2_table_count(), 1);
    for i in 0..5 {
        let e = pt.l2_entry(0xC030_0000 + i * 0x1000).unwrap();
        assert_eq!(
            e,
            L2Entry::small_page(
                0x6030_0000 + i * 0x1000,
                MemType::Memory,
                Access::KernelRw,
                false
            )
        );
    }
    assert_eq!(pt.l2_entry(0xC030_5000), Some(L2Entry::FAULT));
    assert_eq!(pt.walk(0xC030_5000), None);
    // Walk back every page, at two offsets.
    for off in (0..0x30_5000u32).step_by(0x1000) {
        for o in [0, 0xFFC] {
            let t = pt.walk(0xC000_0000 + off + o).unwrap();
            assert_eq!(t.phys, 0x6000_0000 + (off + o) as u64);
            assert_eq!(t.mem, Some(MemType::Memory));
            assert_eq!(t.access, Some(Access::KernelRw));
            assert!(!t.exec);
            let want = if off < 3 * MIB {
                LeafKind::Section
            } else {
                LeafKind::SmallPage
            };
            assert_eq!(t.kind, want);
        }
    }
    assert_eq!(pt.walk(0xBFFF_FFFF), None);
    let runs: Vec<Mapping> = pt.mappings().collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].virt, runs[0].phys, runs[0].size),
        (0xC000_0000, 0x6000_0000, 0x30_5000)
    );
    assert_eq!(runs[0].mem(), Some(MemType::Memory));
}

#[test]
fn misaligned_phys_or_virt_uses_pages() {
    let mut mem = arena(64 * 1024);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    // virt MiB aligned, phys not: 2 MiB of small pages, two L2 tables.
    pt.create_mapping(
        0xC000_0000,
        0x6008_0000,
        2 * MIB,
        MemType::Memory,
        Access::KernelRw,
        true,
    )
    .unwrap();
    assert!(matches!(
        pt.l1_entry(0xC000_0000).decode(),
        L1Kind::PageTable { .. }
    ));
    assert!(matches!(
        pt.l1_entry(0xC010_0000).decode(),
        L1Kind::PageTable { .. }
    ));
    assert_eq!(pt.l2_table_count(), 2);
    // virt not MiB aligned, phys aligned.
    pt.create_mapping(
        0xD008_0000,
        0x7000_0000,
        MIB,
        MemType::Device,
        Access::KernelRw,
        false,
    )
    .unwrap();
    assert_eq!(pt.l2_table_count(), 4);
    let t = pt.walk(0xD017_FFFF).unwrap();
    assert_eq!(t.phys, 0x700F_FFFF);
    assert_eq!(t.kind, LeafKind::SmallPage);
    assert_eq!(t.mem, Some(MemType::Device));
    // 0x400 words per chunk: the fifth table needs a second 4 KiB chunk.
    pt.create_mapping(
        0xE000_0000,
        0x7100_0000,
        0x1000,
        MemType::Memory,
        Access::UserRo,
        false,
    )
    .unwrap();
    assert_eq!(pt.l2_table_count(), 5);
    let used = pt.allocator().used_bytes();
    assert_eq!(used, L1_TABLE_SIZE + 2 * L2_CHUNK_SIZE);
    let runs: Vec<_> = pt.mappings().map(|m| (m.virt, m.phys, m.size)).collect();
    assert_eq!(
        runs,
        vec![
            (0xC000_0000, 0x6008_0000, 2 << 20),
            (0xD008_0000, 0x7000_0000, 1 << 20),
            (0xE000_0000, 0x7100_0000, 0x1000)
        ]
    );
}

#[test]
fn sections_inside_an_existing_l2_range_use_pages() {
    let mut mem = arena(64 * 1024);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    pt.prealloc_l2(0xBFE0_0000, PKMAP_SIZE).unwrap();
    assert_eq!(pt.l2_table_count(), 2);
    assert_eq!(pt.mappings().count(), 0);
    pt.create_mapping(
        0xBFE0_0000,
        0x6000_0000,
        MIB,
        MemType::Memory,
        Access::KernelRw,
        false,
    )
    .unwrap();
    assert_eq!(pt.walk(0xBFE0_0000).unwrap().kind, LeafKind::SmallPage);
    assert_eq!(pt.l2_table_count(), 2);
}

#[test]
fn errors_leave_the_table_unchanged() {
    let mut mem = arena(64 * 1024);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    let m = MemType::Memory;
    let a = Access::KernelRw;
    pt.create_mapping(0xC000_0000, 0x6000_0000, 2 * MIB, m, a, false)
        .unwrap();
    pt.create_mapping(0xC020_3000, 0x6020_3000, 0x1000, m, a, false)
        .unwrap();
    let before: Vec<_> = pt.mappings().collect();

    assert_eq!(
        pt.create_mapping(0xC100_0000, 0, 0, m, a, false),
        Err(MmuError::ZeroSize)
    );
    for (v, p, s) in [
        (0xC100_0800, 0x6000_0000, 0x1000),
        (0xC100_0000, 0x6000_0004, 0x1000),
        (0xC100_0000, 0x6000_0000, 0x1001),
    ] {
        assert_eq!(
            pt.create_mapping(v, p, s, m, a, false),
            Err(MmuError::Misaligned {
                virt: v,
                phys: p,
                size: s
            })
        );
    }
    assert_eq!(
        pt.create_mapping(0xFFFF_F000, 0x6000_0000, 0x2000, m, a, false),
        Err(MmuError::WrapAround {
            virt: 0xFFFF_F000,
            size: 0x2000
        })
    );
    // The very last page is fine.
    pt.create_mapping(0xFFFF_F000, 0x6000_0000, 0x1000, m, a, false)
        .unwrap();
    pt.unmap(0xFFFF_F000, 0x1000).unwrap();
    assert_eq!(
        pt.create_mapping(0x1000_0000, 0x1_0000_0000, MIB, m, a, false),
        Err(MmuError::PhysTooHigh {
            phys: 0x1_0000_0000
        })
    );
    assert_eq!(
        pt.create_mapping(0x1000_0000, 0xFFFF_F000, 0x2000, m, a, false),
        Err(MmuError::PhysTooHigh { phys: 0xFFFF_F000 })
    );
    // Overlaps: a section, and a page in the middle of a request.
    assert_eq!(
        pt.create_mapping(0xBFF0_0000, 0x5000_0000, 2 * MIB, m, a, false),
        Err(MmuError::Overlap { virt: 0xC000_0000 })
    );
    assert_eq!(
        pt.create_mapping(0xC020_0000, 0x5000_0000, MIB, m, a, false),
        Err(MmuError::Overlap { virt: 0xC020_3000 })
    );
    assert_eq!(
        pt.create_mapping(0xC010_0000, 0x5000_0000, 0x1000, m, a, false),
        Err(MmuError::Overlap { virt: 0xC010_0000 })
    );
    let after: Vec<_> = pt.mappings().collect();
    assert_eq!(before, after);
}

#[test]
fn out_of_table_memory_rolls_back() {
    // Room for the L1 table and one L2 chunk (four tables) only.
    let mut mem = arena((L1_TABLE_SIZE + L2_CHUNK_SIZE) / 4);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    // Six MiB of pages (phys and virt never both MiB aligned) need seven tables.
    let r = pt.create_mapping(
        0xC000_1000,
        0x6000_2000,
        6 * MIB,
        MemType::Memory,
        Access::KernelRw,
        false,
    );
    assert_eq!(
        r,
        Err(MmuError::OutOfTableMemory {
            bytes: L2_CHUNK_SIZE,
            align: L2_CHUNK_SIZE
        })
    );
    assert_eq!(pt.mappings().count(), 0);
    // The tables it did install are reused.
    pt.create_mapping(
        0xC000_1000,
        0x6000_2000,
        0x1000,
        MemType::Memory,
        Access::KernelRw,
        false,
    )
    .unwrap();
    assert_eq!(pt.l2_table_count(), 4);
    // Too little memory for the L1 table itself.
    let mut small = arena(100);
    assert!(matches!(
        PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut small)),
        Err(MmuError::OutOfTableMemory { .. })
    ));
}

#[test]
fn unmap_pages_and_sections() {
    let mut mem = arena(64 * 1024);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    pt.create_mapping(
        0xC000_0000,
        0x6000_0000,
        0x30_5000,
        MemType::Memory,
        Access::KernelRw,
        false,
    )
    .unwrap();
    // One page.
    let u = pt.unmap(0xC030_2000, 0x1000).unwrap();
    assert_eq!((u.small_pages, u.sections, u.bytes), (1, 0, 0x1000));
    assert_eq!(u.flush, TlbFlush::Page(0xC030_2000));
    assert_eq!(pt.walk(0xC030_2000), None);
    assert!(pt.walk(0xC030_1FFF).is_some());
    assert!(pt.walk(0xC030_3000).is_some());
    // Again: nothing there.
    let u = pt.unmap(0xC030_2000, 0x1000).unwrap();
    assert_eq!(u.flush, TlbFlush::None);
    assert_eq!(u.bytes, 0);
    // Cutting a section is refused and changes nothing.
    assert_eq!(
        pt.unmap(0xC010_0000, 0x1000),
        Err(MmuError::SplitSection { virt: 0xC010_0000 })
    );
    assert_eq!(
        pt.unmap(0xC018_0000, MIB),
        Err(MmuError::SplitSection { virt: 0xC010_0000 })
    );
    assert!(pt.walk(0xC010_0000).is_some());
    // A whole section plus the remaining tail pages, with holes.
    let u = pt.unmap(0xC020_0000, 0x20_0000).unwrap();
    assert_eq!(
        (u.small_pages, u.sections, u.bytes),
        (4, 1, MIB as u64 + 0x4000)
    );
    assert_eq!(
        u.flush,
        TlbFlush::Range {
            start: 0xC020_0000,
            end: 0xC030_5000
        }
    );
    let runs: Vec<_> = pt.mappings().map(|m| (m.virt, m.size)).collect();
    assert_eq!(runs, vec![(0xC000_0000, 2 << 20)]);
    // The L2 table stays; remapping reuses it.
    pt.create_mapping(
        0xC030_0000,
        0x7000_0000,
        0x1000,
        MemType::Device,
        Access::KernelRw,
        false,
    )
    .unwrap();
    assert_eq!(pt.l2_table_count(), 1);
    assert_eq!(pt.unmap(0xC000_0000, 0), Err(MmuError::ZeroSize));
    assert!(matches!(
        pt.unmap(0xC000_0800, 0x1000),
        Err(MmuError::Misaligned { .. })
    ));
    assert!(matches!(
        pt.unmap(0xFFFF_F000, 0x2000),
        Err(MmuError::WrapAround { .. })
    ));
}

#[test]
fn mappings_walk_back_to_the_requests() {
    let mut mem = arena(64 * 1024);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    let reqs = [
        (
            0x0010_0000u32,
            0x6010_0000u64,
            0x12_3000u32,
            MemType::Memory,
            Access::KernelRw,
            true,
        ),
        (
            0x6000_0000,
            0x6000_0000,
            3 * MIB,
            MemType::Memory,
            Access::KernelRw,
            true,
        ),
        (
            0xC000_0000,
            0x6000_0000,
            16 * MIB,
            MemType::Memory,
            Access::KernelRw,
            false,
        ),
        (
            0xC100_0000,
            0x6100_0000,
            4 * MIB,
            MemType::Memory,
            Access::KernelRo,
            false,
        ),
        (
            0xD000_0000,
            0x6000_0000,
            0x1000,
            MemType::MemoryNonCacheable,
            Access::UserRw,
            false,
        ),
        (
            0xF800_0000,
            0x1000_0000,
            2 * MIB,
            MemType::Device,
            Access::KernelRw,
            false,
        ),
        (
            0xF820_0000,
            0x1E00_0000,
            MIB,
            MemType::StronglyOrdered,
            Access::KernelRw,
            false,
        ),
        (
            0xFFFF_0000,
            0x6FFF_0000,
            0x1_0000,
            MemType::Memory,
            Access::UserRo,
            true,
        ),
    ];
    for &(v, p, s, m, a, x) in &reqs {
        pt.create_mapping(v, p, s, m, a, x).unwrap();
    }
    let runs: Vec<_> = pt.mappings().collect();
    assert_eq!(runs.len(), reqs.len());
    for (run, &(v, p, s, m, a, x)) in runs.iter().zip(&reqs) {
        assert_eq!((run.virt, run.phys, run.size), (v, p, s as u64));
        assert_eq!((run.mem(), run.access(), run.exec()), (Some(m), Some(a), x));
        assert_eq!(run.attrs.ng, a == Access::UserRw || a == Access::UserRo);
        // Every byte's page translates.
        for off in (0..s).step_by(0x1000) {
            let t = pt.walk(v + off + 0x123).unwrap();
            assert_eq!(t.phys, p + off as u64 + 0x123);
            assert_eq!((t.mem, t.access, t.exec), (Some(m), Some(a), x));
        }
    }
    // Unmapped neighbours.
    for va in [
        0x000F_F000,
        0x0022_3000,
        0x5FFF_F000,
        0x6030_0000,
        0xC150_0000,
        0xD000_1000,
        0xF830_0000,
        0xFFFE_F000,
    ] {
        assert_eq!(pt.walk(va), None, "{va:#x}");
    }
}

const VEXPRESS_DEVICES: [DeviceRegion; 4] = [
    DeviceRegion {
        name: "sysregs",
        phys: 0x1000_0000,
        size: 0x1000,
    },
    DeviceRegion {
        name: "uart0",
        phys: 0x1000_9000,
        size: 0x1000,
    },
    DeviceRegion {
        name: "gic",
        phys: 0x1E00_0000,
        size: 0x2000,
    },
    DeviceRegion {
        name: "big",
        phys: 0x4000_0000,
        size: 0x30_0001,
    },
];

#[test]
fn plan_512m_at_0x60000000() {
    let plan = plan_kernel_mappings(
        (0x6000_0000, 0x8000_0000),
        0x6000_0000,
        (0x6000_8000, 0x6075_0000),
        &VEXPRESS_DEVICES,
    )
    .unwrap();
    let summary: Vec<_> = plan
        .iter()
        .map(|r| (r.name, r.kind, r.virt, r.phys, r.size, r.exec))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "kernel",
                MappingKind::Lowmem,
                0xC000_0000,
                0x6000_0000,
                8 * MIB,
                true
            ),
            (
                "lowmem",
                MappingKind::Lowmem,
                0xC080_0000,
                0x6080_0000,
                504 * MIB,
                false
            ),
            (
                "identity",
                MappingKind::Identity,
                0x6000_0000,
                0x6000_0000,
                8 * MIB,
                true
            ),
            (
                "sysregs",
                MappingKind::Device,
                0xF800_0000,
                0x1000_0000,
                MIB,
                false
            ),
            (
                "gic",
                MappingKind::Device,
                0xF810_0000,
                0x1E00_0000,
                MIB,
                false
            ),
            (
                "big",
                MappingKind::Device,
                0xF820_0000,
                0x4000_0000,
                4 * MIB,
                false
            ),
            ("pkmap", MappingKind::Pkmap, 0xBFE0_0000, 0, 2 * MIB, false),
        ]
    );
    assert_eq!(device_virt(&plan, 0x1000_9000), Some(0xF800_9000));
    assert_eq!(device_virt(&plan, 0x1E00_1000), Some(0xF810_1000));
    assert_eq!(device_virt(&plan, 0x2000_0000), None);

    let mut mem = arena(64 * 1024);
    let pt = build_page_table(
        SliceTableAllocator::new(0x7F00_0000, &mut mem),
        false,
        &plan,
        &mut NoMappingHooks,
    )
    .unwrap()
    .into_short()
    .unwrap();
    // 0xC0000000-0xE0000000: 512 sections.
    for i in 0..512u32 {
        let va = 0xC000_0000 + i * MIB;
        let L1Kind::Section { base, attrs } = pt.l1_entry(va).decode() else {
            panic!("{va:#x}")
        };
        assert_eq!(base, 0x6000_0000 + i * MIB);
        assert_eq!(attrs.mem_type(), Some(MemType::Memory));
        assert_eq!(attrs.access(), Some(Access::KernelRw));
        assert_eq!(attrs.exec(), i < 8);
        assert!(attrs.s && !attrs.ng);
    }
    assert_eq!(pt.walk(0xE000_0000), None);
    let uart = pt.walk(0xF800_9000).unwrap();
    assert_eq!(
        (uart.phys, uart.mem, uart.exec, uart.kind),
        (0x1000_9000, Some(MemType::Device), false, LeafKind::Section)
    );
    // The identity map of the running image.
    let t = pt.walk(0x6000_8000).unwrap();
    assert_eq!((t.phys, t.exec), (0x6000_8000, true));
    // The PKMAP window: one (1 KiB) table per MiB, all faults.
    assert_eq!(pt.l2_table_count(), 2);
    assert!(pt.l2_entry(0xBFE0_0000).unwrap().is_fault());
    assert!(pt.l2_entry(0xBFFF_F000).unwrap().is_fault());
    // Walk back: the mappings are the plan's (lowmem kernel/rest split, identity,
    // three device windows).
    let runs: Vec<_> = pt.mappings().map(|m| (m.virt, m.phys, m.size)).collect();
    assert_eq!(
        runs,
        vec![
            (0x6000_0000, 0x6000_0000, 8 << 20),
            (0xC000_0000, 0x6000_0000, 8 << 20),
            (0xC080_0000, 0x6080_0000, 504 << 20),
            (0xF800_0000, 0x1000_0000, 1 << 20),
            (0xF810_0000, 0x1E00_0000, 1 << 20),
            (0xF820_0000, 0x4000_0000, 4 << 20),
        ]
    );

    let mut s = String::new();
    print_virtual_layout(&mut s, &VirtualLayout::of_plan(&plan)).unwrap();
    assert!(
        s.contains("    lowmem  : 0xc0000000 - 0xe0000000   ( 512 MB)\n"),
        "{s}"
    );
    assert!(
        s.contains("    vmalloc : 0xe0800000 - 0xff800000   ( 496 MB)\n"),
        "{s}"
    );
}

#[test]
fn plan_1g_caps_lowmem_at_768m() {
    let plan = plan_kernel_mappings(
        (0x6000_0000, 0xA000_0000),
        0x6000_0000,
        (0x6000_8000, 0x6075_0000),
        &[],
    )
    .unwrap();
    let lowmem: Vec<_> = plan
        .iter()
        .filter(|r| r.kind == MappingKind::Lowmem)
        .collect();
    assert_eq!(lowmem.first().unwrap().virt, 0xC000_0000);
    assert_eq!(lowmem.last().unwrap().virt_end(), 0xF000_0000);
    assert_eq!(lowmem.last().unwrap().phys_end(), 0x9000_0000);
    assert_eq!(LOWMEM_MAX_SIZE, 768 * MIB);
    assert_eq!(VMALLOC_MIN, 0xF000_0000);
    let mut mem = arena(64 * 1024);
    let pt = build_page_table(
        SliceTableAllocator::new(0x6100_0000, &mut mem),
        false,
        &plan,
        &mut NoMappingHooks,
    )
    .unwrap()
    .into_short()
    .unwrap();
    for va in (0xC000_0000u32..0xF000_0000).step_by(MIB as usize) {
        assert!(
            matches!(pt.l1_entry(va).decode(), L1Kind::Section { .. }),
            "{va:#x}"
        );
    }
    assert_eq!(pt.walk(0xF000_0000), None);
    assert_eq!(pt.walk(0xEFFF_FFFF).unwrap().phys, 0x8FFF_FFFF);

    let mut s = String::new();
    print_virtual_layout(&mut s, &VirtualLayout::of_plan(&plan)).unwrap();
    assert_eq!(
        s,
        "Virtual kernel memory layout:\n\
         \x20   vector  : 0xffff0000 - 0xffff1000   (   4 kB)\n\
         \x20   fixmap  : 0xffc00000 - 0xfff00000   (3072 kB)\n\
         \x20   vmalloc : 0xf0800000 - 0xff800000   ( 240 MB)\n\
         \x20   lowmem  : 0xc0000000 - 0xf0000000   ( 768 MB)\n\
         \x20   pkmap   : 0xbfe00000 - 0xc0000000   (   2 MB)\n\
         \x20   modules : 0xbf000000 - 0xbfe00000   (  14 MB)\n"
    );
    let layout = VirtualLayout::of_plan(&plan);
    assert!(layout.vmalloc.0 <= DEVICE_WINDOW_BASE && layout.devices.1 == VMALLOC_END);
}

#[test]
fn plan_unaligned_lowmem_and_identity_special_cases() {
    // RAM not MiB aligned at either end: builder uses pages there.
    let plan = plan_kernel_mappings(
        (0x1000_4000, 0x1FF0_3000),
        0x1000_0000,
        (0x1010_0000, 0x1020_0000),
        &[],
    )
    .unwrap();
    let mut mem = arena(64 * 1024);
    let pt = build_page_table(
        SliceTableAllocator::new(0x1F00_0000, &mut mem),
        false,
        &plan,
        &mut NoMappingHooks,
    )
    .unwrap()
    .into_short()
    .unwrap();
    assert_eq!(pt.walk(0xC000_3000), None);
    assert_eq!(pt.walk(0xC000_4000).unwrap().kind, LeafKind::SmallPage);
    assert_eq!(pt.walk(0xC010_0000).unwrap().kind, LeafKind::Section);
    assert_eq!(pt.walk(0xCFF0_2000).unwrap().phys, 0x1FF0_2000);
    assert_eq!(pt.walk(0xCFF0_3000), None);
    // PHYS_OFFSET == PAGE_OFFSET: the linear map is the identity map.
    let plan = plan_kernel_mappings(
        (0xC000_0000, 0xC800_0000),
        0xC000_0000,
        (0xC000_8000, 0xC040_0000),
        &[],
    )
    .unwrap();
    assert!(plan.iter().all(|r| r.kind != MappingKind::Identity));
    let mut mem = arena(64 * 1024);
    build_page_table(
        SliceTableAllocator::new(0xC700_0000, &mut mem),
        false,
        &plan,
        &mut NoMappingHooks,
    )
    .unwrap();
}

#[test]
fn plan_errors() {
    let img = (0x6000_8000, 0x6075_0000);
    let r = plan_kernel_mappings(
        (0x6000_0000, 0x8000_0000),
        0x6000_0000,
        img,
        &[DeviceRegion {
            name: "ram",
            phys: 0x7000_0000,
            size: 0x1000,
        }],
    );
    assert_eq!(r, Err(MmuError::DeviceInvalid { name: "ram" }));
    let r = plan_kernel_mappings(
        (0x6000_0000, 0x8000_0000),
        0x6000_0000,
        img,
        &[DeviceRegion {
            name: "empty",
            phys: 0x1000_0000,
            size: 0,
        }],
    );
    assert_eq!(r, Err(MmuError::DeviceInvalid { name: "empty" }));
    let r = plan_kernel_mappings(
        (0x6000_0000, 0x8000_0000),
        0x6000_0000,
        img,
        &[DeviceRegion {
            name: "huge",
            phys: 0x1000_0000,
            size: 0x1000_0000,
        }],
    );
    assert_eq!(r, Err(MmuError::DeviceWindowFull { name: "huge" }));
    let r = plan_kernel_mappings(
        (0x6000_0000, 0x8000_0000),
        0x6000_0000,
        img,
        &[DeviceRegion {
            name: "hi",
            phys: 0xFFFF_F000,
            size: 0x2000,
        }],
    );
    assert_eq!(r, Err(MmuError::PhysTooHigh { phys: 0xFFFF_F000 }));
    let r = plan_kernel_mappings((0x5000_0000, 0x8000_0000), 0x6000_0000, img, &[]);
    assert!(matches!(r, Err(MmuError::LowmemInvalid { .. })));
    let r = plan_kernel_mappings((0x6000_0000, 0x6000_0000), 0x6000_0000, img, &[]);
    assert!(matches!(r, Err(MmuError::LowmemInvalid { .. })));
    let r = plan_kernel_mappings(
        (0x6000_0000, 0x8000_0000),
        0x6000_0000,
        (0x6000_8000, 0x6000_8000),
        &[],
    );
    assert!(matches!(r, Err(MmuError::ImageInvalid { .. })));
    // RAM at 0xB0000000 with PHYS_OFFSET 0xA0000000: the identity map of the image
    // would cover the modules / pkmap area.
    let r = plan_kernel_mappings(
        (0xA000_0000, 0xC000_0000),
        0xA000_0000,
        (0xBFD0_0000, 0xBFF0_0000),
        &[],
    );
    assert!(matches!(r, Err(MmuError::IdentityClash { .. })), "{r:?}");
    // 40 distinct devices do not fit in 32 requests.
    let many: Vec<_> = (0..40u64)
        .map(|i| DeviceRegion {
            name: "d",
            phys: 0x1000_0000 + i * 0x10_0000,
            size: 0x1000,
        })
        .collect();
    let r = plan_kernel_mappings((0x6000_0000, 0x8000_0000), 0x6000_0000, img, &many);
    assert_eq!(r, Err(MmuError::TooManyMappings));
}

#[test]
fn linear_map_helpers() {
    assert_eq!(phys_to_virt(0x6000_0000, 0x6000_0000), Some(0xC000_0000));
    assert_eq!(phys_to_virt(0x8FFF_FFFF, 0x6000_0000), Some(0xEFFF_FFFF));
    assert_eq!(phys_to_virt(0x9000_0000, 0x6000_0000), None);
    assert_eq!(phys_to_virt(0x5FFF_FFFF, 0x6000_0000), None);
    assert_eq!(virt_to_phys(0xC123_4567, 0x6000_0000), Some(0x6123_4567));
    assert_eq!(virt_to_phys(0xBFFF_FFFF, 0x6000_0000), None);
    assert_eq!(virt_to_phys(0xF000_0000, 0x6000_0000), None);
    let lm = LinearMap {
        phys_offset: 0x6000_0000,
        lowmem_end: 0x8000_0000,
    };
    assert_eq!(lm.high_memory(), 0xE000_0000);
    assert_eq!(lm.phys_to_virt(0x8000_0000), None);
    assert_eq!(lm.virt_to_phys(0xE000_0000), None);
    assert_eq!(lm.virt_to_phys(0xDFFF_FFFF), Some(0x7FFF_FFFF));
    for pa in (0x6000_0000u64..0x8000_0000).step_by(0x123_4567) {
        assert_eq!(lm.virt_to_phys(lm.phys_to_virt(pa).unwrap()), Some(pa));
    }
}

#[test]
fn pkmap_slots_reuse_and_exhaustion() {
    let mut mem = arena(64 * 1024);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    pt.prealloc_l2(PKMAP_BASE, PKMAP_SIZE).unwrap();
    let mut pk = Pkmap::new();
    let first_pfn = 0x9_0000u64; // highmem at 0x90000000
    let mut vas = Vec::new();
    for i in 0..LAST_PKMAP as u64 {
        let va = pk.kmap(&mut pt, first_pfn + i).unwrap();
        assert!((PKMAP_BASE..PAGE_OFFSET).contains(&va));
        assert_eq!(
            pt.walk(va + 0x10).unwrap().phys,
            ((first_pfn + i) << 12) + 0x10
        );
        vas.push(va);
    }
    let mut sorted = vas.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), LAST_PKMAP);
    assert_eq!(pk.in_use(), LAST_PKMAP);
    // Full: a new page gets a typed error, a mapped one another reference.
    assert_eq!(pk.kmap(&mut pt, 0xA_0000), Err(MmuError::PkmapFull));
    assert_eq!(pk.kmap(&mut pt, first_pfn + 7), Ok(vas[7]));
    assert_eq!(pk.count(vas[7]), 2);
    assert_eq!(pk.kunmap(&mut pt, vas[7]), Ok(TlbFlush::None));
    assert!(pt.walk(vas[7]).is_some());
    // Free one slot: it is reported for invalidation, unmapped, and reused.
    assert_eq!(
        pk.kunmap(&mut pt, vas[100] + 0x123),
        Ok(TlbFlush::Page(vas[100]))
    );
    assert_eq!(pt.walk(vas[100]), None);
    assert_eq!(pk.lookup(first_pfn + 100), None);
    assert_eq!(pk.kmap(&mut pt, 0xA_0000), Ok(vas[100]));
    assert_eq!(pk.lookup(0xA_0000), Some(vas[100]));
    assert_eq!(pt.walk(vas[100]).unwrap().phys, 0xA000_0000);
    // Errors.
    assert_eq!(
        pk.unmap(0xC000_0000),
        Err(MmuError::NotPkmap { virt: 0xC000_0000 })
    );
    assert_eq!(
        pk.unmap(PKMAP_BASE - 1),
        Err(MmuError::NotPkmap {
            virt: PKMAP_BASE - 1
        })
    );
    for va in &vas {
        if *va != vas[100] {
            pk.kunmap(&mut pt, *va).unwrap();
        }
    }
    pk.kunmap(&mut pt, vas[100]).unwrap();
    assert_eq!(pk.in_use(), 0);
    assert_eq!(
        pk.kunmap(&mut pt, vas[3]),
        Err(MmuError::NotMapped { virt: vas[3] })
    );
    assert_eq!(pt.mappings().count(), 0);
    assert_eq!(
        pk.kmap(&mut pt, 0x10_0000),
        Err(MmuError::PhysTooHigh {
            phys: 0x1_0000_0000
        })
    );
    assert_eq!(pk.in_use(), 0);
    // Without the PKMAP table, kmap fails cleanly.
    let mut mem2 = arena(64 * 1024);
    let mut bare = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem2)).unwrap();
    assert!(matches!(
        pk.kmap(&mut bare, 1),
        Err(MmuError::NoL2Table { .. })
    ));
    assert_eq!(pk.in_use(), 0);
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_requests_never_panic() {
    let mut mem = arena(40 * 1024);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mems = [
        MemType::Memory,
        MemType::MemoryNonCacheable,
        MemType::Device,
        MemType::StronglyOrdered,
    ];
    let accs = [
        Access::KernelRw,
        Access::KernelRo,
        Access::UserRw,
        Access::UserRo,
    ];
    for _ in 0..5000 {
        let r = rng.next();
        let virt = match r % 4 {
            0 => rng.next() as u32,
            1 => (rng.next() as u32) & !0xFFF,
            2 => (rng.next() as u32) & !0xF_FFFF,
            _ => 0xFFFF_F000,
        };
        let phys = match (r >> 8) % 3 {
            0 => rng.next(),
            1 => rng.next() & 0xFFFF_F000,
            _ => rng.next() & 0xFFF0_0000,
        };
        let size = match (r >> 16) % 4 {
            0 => rng.next() as u32,
            1 => (rng.below(64) as u32) << 12,
            2 => (rng.below(8) as u32) << 20,
            _ => 0xFFFF_F000,
        };
        if (r >> 24) % 3 == 1 {
            let _ = pt.unmap(virt, size);
        } else {
            let _ = pt.create_mapping(
                virt,
                phys,
                size,
                mems[(r >> 32) as usize % 4],
                accs[(r >> 40) as usize % 4],
                r & (1 << 50) != 0,
            );
        }
        let _ = pt.walk(rng.next() as u32);
        let _ = pt.prealloc_l2(virt, size);
        let _ = pt.set_l2_entry(virt, L2Entry::from_bits(rng.next() as u32 & !0b11));
    }
    // Everything it reports is consistent with walk().
    for m in pt.mappings().take(200) {
        let t = pt.walk(m.virt).unwrap();
        assert_eq!((t.phys, t.attrs), (m.phys, m.attrs));
    }
}

#[test]
fn random_requests_match_a_model() {
    // A 32 MiB window with mixed alignments; the table must always agree with a
    // page-by-page model of what succeeded.
    const BASE: u32 = 0xC000_0000;
    const WINDOW: u32 = 32 << 20;
    let mut mem = arena(40 * 1024);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    let mut model: HashMap<u32, (u64, MemType, Access, bool)> = HashMap::new();
    let mut rng = Rng(0xDEAD_BEEF_F00D_CAFE);
    let mems = [MemType::Memory, MemType::Device];
    let accs = [Access::KernelRw, Access::UserRo];
    let mut ok = (0, 0);
    for step in 0..3000 {
        let mib_aligned = rng.below(2) == 0;
        let virt = BASE
            + if mib_aligned {
                (rng.below(32) as u32) << 20
            } else {
                (rng.below(8192) as u32) << 12
            };
        let size = if rng.below(2) == 0 {
            (1 + rng.below(3) as u32) << 20
        } else {
            (1 + rng.below(300) as u32) << 12
        };
        if rng.below(3) == 0 {
            let before: Vec<_> = pt.mappings().collect();
            match pt.unmap(virt, size) {
                Ok(u) => {
                    ok.1 += 1;
                    let mut removed = 0u64;
                    for va in (virt as u64..virt as u64 + size as u64).step_by(4096) {
                        if model.remove(&(va as u32)).is_some() {
                            removed += 4096;
                        }
                    }
                    assert_eq!(u.bytes, removed);
                }
                Err(MmuError::SplitSection { .. }) => {
                    assert_eq!(before, pt.mappings().collect::<Vec<_>>())
                }
                Err(e) => panic!("{e:?}"),
            }
        } else {
            let phys = 0x6000_0000u64
                + if rng.below(2) == 0 {
                    rng.below(64) << 20
                } else {
                    rng.below(16384) << 12
                };
            let (m, a, x) = (
                mems[rng.below(2) as usize],
                accs[rng.below(2) as usize],
                rng.below(2) == 0,
            );
            let overlap = (virt..virt + size)
                .step_by(4096)
                .any(|va| model.contains_key(&va));
            match pt.create_mapping(virt, phys, size, m, a, x) {
                Ok(()) => {
                    ok.0 += 1;
                    assert!(!overlap);
                    for off in (0..size).step_by(4096) {
                        model.insert(virt + off, (phys + off as u64, m, a, x));
                    }
                }
                Err(MmuError::Overlap { virt: v }) => {
                    assert!(overlap);
                    assert!(model.contains_key(&v));
                    assert!((virt..virt + size)
                        .step_by(4096)
                        .take_while(|&p| p < v)
                        .all(|p| !model.contains_key(&p)));
                }
                Err(MmuError::OutOfTableMemory { .. }) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        if step % 100 == 99 || step < 20 {
            for va in (BASE..BASE + WINDOW + (1 << 20)).step_by(4096) {
                let got = pt
                    .walk(va + 0x7)
                    .map(|t| (t.phys - 7, t.mem.unwrap(), t.access.unwrap(), t.exec));
                assert_eq!(got, model.get(&va).copied(), "step {step} va {va:#x}");
            }
            let total: u64 = pt.mappings().map(|m| m.size).sum();
            assert_eq!(total, model.len() as u64 * 4096);
        }
    }
    assert!(ok.0 > 100 && ok.1 > 100, "{ok:?}");
}

/// Hooks that add the high vector page and record the calls.
struct VectorHook {
    called: u32,
    fail: bool,
}

impl<A: TableAllocator> MappingHooks<A> for VectorHook {
    fn before_mmu_on(&mut self, pt: &mut MappingTable<'_, A>) -> Result<(), MmuError> {
        self.called += 1;
        if self.fail {
            return Err(MmuError::Hook("refused"));
        }
        pt.create_mapping(
            0xFFFF_0000,
            0x6000_0000,
            0x1000,
            MemType::Memory,
            Access::UserRo,
            true,
        )
    }
}

#[test]
fn hooks_run_before_the_switch() {
    let plan = plan_kernel_mappings(
        (0x6000_0000, 0x8000_0000),
        0x6000_0000,
        (0x6000_8000, 0x6010_0000),
        &[],
    )
    .unwrap();
    let mut mem = arena(64 * 1024);
    let mut hook = VectorHook {
        called: 0,
        fail: false,
    };
    let pt = build_page_table(
        SliceTableAllocator::new(ARENA_PHYS, &mut mem),
        false,
        &plan,
        &mut hook,
    )
    .unwrap()
    .into_short()
    .unwrap();
    assert_eq!(hook.called, 1);
    let t = pt.walk(0xFFFF_0004).unwrap();
    assert_eq!(
        (t.phys, t.access, t.exec, t.attrs.ng),
        (0x6000_0004, Some(Access::UserRo), true, true)
    );
    let mut mem = arena(64 * 1024);
    let mut hook = VectorHook {
        called: 0,
        fail: true,
    };
    let r = build_page_table(
        SliceTableAllocator::new(ARENA_PHYS, &mut mem),
        false,
        &plan,
        &mut hook,
    );
    assert_eq!(r.err(), Some(MmuError::Hook("refused")));
    // The default hooks do nothing.
    let mut mem = arena(64 * 1024);
    let mut pt = build_page_table(
        SliceTableAllocator::new(ARENA_PHYS, &mut mem),
        false,
        &plan,
        &mut NoMappingHooks,
    )
    .unwrap();
    MappingHooks::after_mmu_on(&mut NoMappingHooks, &mut MappingTable::new(&mut pt)).unwrap();
}

/// The hooks run on an LPAE board's long-descriptor table too, and see its format.
#[test]
fn hooks_run_on_long_descriptor_tables() {
    let plan = plan_kernel_mappings(
        (0x8000_0000, 0xB000_0000),
        0x8000_0000,
        (0x8000_8000, 0x8040_0000),
        &[],
    )
    .unwrap();
    struct LongHook(u32);
    impl<A: TableAllocator> MappingHooks<A> for LongHook {
        fn before_mmu_on(&mut self, pt: &mut MappingTable<'_, A>) -> Result<(), MmuError> {
            assert!(pt.is_long());
            self.0 += 1;
            pt.create_mapping(
                0xFFFF_0000,
                0x8000_0000,
                0x1000,
                MemType::Memory,
                Access::UserRo,
                true,
            )
        }
        fn after_mmu_on(&mut self, pt: &mut MappingTable<'_, A>) -> Result<(), MmuError> {
            self.0 += 1;
            assert_eq!(pt.walk(0xFFFF_0010).map(|t| t.phys), Some(0x8000_0010));
            Ok(())
        }
    }
    let mut mem = arena(64 * 1024);
    let mut hook = LongHook(0);
    let mut pt = build_page_table(
        SliceTableAllocator::new(0xAF00_0000, &mut mem),
        true,
        &plan,
        &mut hook,
    )
    .unwrap();
    assert!(pt.is_long());
    let t = pt.walk(0xFFFF_0004).unwrap();
    assert_eq!((t.phys, t.mem), (0x8000_0004, Some(MemType::Memory)));
    hook.after_mmu_on(&mut MappingTable::new(&mut pt)).unwrap();
    assert_eq!(hook.0, 2);
    let long = pt.into_long().unwrap();
    assert_eq!(long.walk(0xFFFF_0000).map(|t| t.phys), Some(0x8000_0000));
}

#[test]
fn memblock_style_allocation_function() {
    // Tables come from a top-down allocator (as memblock_alloc places them: the
    // highest free, aligned address below the limit); memory is a slice.
    const LO: u64 = 0x7FF0_0000;
    let mut mem = arena(0x10_0000 / 4);
    let mut top = 0x8000_0000u64;
    let mut log = Vec::new();
    let alloc = AllocFn {
        memory: SliceTableAllocator::new(LO, &mut mem),
        alloc: |bytes: usize, align: usize| {
            let base = (top - bytes as u64) & !(align as u64 - 1);
            if base < LO {
                return Err(MmuError::OutOfTableMemory { bytes, align });
            }
            top = base;
            log.push((base, bytes));
            Ok(base)
        },
    };
    let mut pt = PageTable::new(alloc).unwrap();
    assert_eq!(pt.l1_phys(), 0x7FFF_C000);
    pt.create_mapping(
        0xC000_0000,
        0x6000_0000,
        0x5000,
        MemType::Memory,
        Access::KernelRw,
        false,
    )
    .unwrap();
    let L1Kind::PageTable { base, .. } = pt.l1_entry(0xC000_0000).decode() else {
        panic!()
    };
    assert_eq!(base, 0x7FFF_B000);
    let _ = pt.into_allocator();
    assert_eq!(log, vec![(0x7FFF_C000, 0x4000), (0x7FFF_B000, 0x1000)]);

    // An allocator handing out bad addresses gets typed errors, not panics.
    let mut mem = arena(0x10_0000 / 4);
    let bad = AllocFn {
        memory: SliceTableAllocator::new(LO, &mut mem),
        alloc: |_, _| Ok(0x7FF0_1000),
    };
    assert_eq!(
        PageTable::new(bad).err(),
        Some(MmuError::BadTableAddress { phys: 0x7FF0_1000 })
    );
    let mut mem = arena(0x10_0000 / 4);
    let far = AllocFn {
        memory: SliceTableAllocator::new(LO, &mut mem),
        alloc: |_, _| Ok(0x1000_0000),
    };
    assert_eq!(
        PageTable::new(far).err(),
        Some(MmuError::TableUnreachable { phys: 0x1000_0000 })
    );
    let mut mem = arena(0x10_0000 / 4);
    let high = AllocFn {
        memory: SliceTableAllocator::new(LO, &mut mem),
        alloc: |_, _| Ok(0x1_0000_0000),
    };
    assert_eq!(
        PageTable::new(high).err(),
        Some(MmuError::BadTableAddress {
            phys: 0x1_0000_0000
        })
    );
}

#[test]
fn wild_inputs_are_errors_not_panics() {
    // Table memory at the very top of the physical address space.
    let mut mem = arena(64 * 1024);
    let mut top = SliceTableAllocator::new(u64::MAX - 0xFFFF, &mut mem);
    assert_eq!(top.alloc_table(0x4000, 0x4000), Ok(u64::MAX - 0xFFFF));
    assert!(top.alloc_table(0x10_0000, 0x1000).is_err());
    assert!(top.alloc_table(usize::MAX, 1 << 63).is_err());
    assert!(top.alloc_table(0x1000, 3).is_err());
    assert_eq!(
        PageTable::new(SliceTableAllocator::new(u64::MAX - 0xFFFF, &mut mem)).err(),
        Some(MmuError::BadTableAddress {
            phys: u64::MAX - 0xFFFF
        })
    );
    // Arbitrary requests through apply().
    let mut mem = arena(64 * 1024);
    let mut pt = PageTable::new(SliceTableAllocator::new(ARENA_PHYS, &mut mem)).unwrap();
    let mut rng = Rng(42);
    for i in 0..2000u32 {
        let req = MappingRequest {
            name: "wild",
            kind: [
                MappingKind::Lowmem,
                MappingKind::Identity,
                MappingKind::Device,
                MappingKind::Pkmap,
            ][i as usize % 4],
            virt: rng.next() as u32 & !0xFFF,
            phys: if i % 2 == 0 {
                rng.next()
            } else {
                rng.next() & 0xFFFF_F000
            },
            size: (rng.next() as u32) & if i % 3 == 0 { 0x00FF_F000 } else { u32::MAX },
            mem: MemType::Device,
            access: Access::KernelRo,
            exec: false,
        };
        let _ = pt.apply(&req);
        let _ = req.phys_end();
        let _ = device_virt(&[req], rng.next());
        let _ = plan_kernel_mappings(
            (rng.next() >> (i % 64), rng.next() >> (i % 61)),
            rng.next() >> (i % 59),
            (rng.next() >> (i % 57), rng.next() >> (i % 33)),
            &[DeviceRegion {
                name: "x",
                phys: rng.next() >> (i % 40),
                size: rng.next() >> (i % 50),
            }],
        );
        let _ = phys_to_virt(rng.next(), rng.next());
        let _ = virt_to_phys(rng.next() as u32, rng.next());
        let lm = LinearMap {
            phys_offset: rng.next(),
            lowmem_end: rng.next(),
        };
        let _ = (
            lm.high_memory(),
            lm.phys_to_virt(rng.next()),
            lm.virt_to_phys(rng.next() as u32),
        );
        let _ = VirtualLayout::new(rng.next() as u32);
        let _ = L1Entry::from_bits(rng.next() as u32).decode();
        let _ = L2Entry::from_bits(rng.next() as u32).decode();
    }
    let mut pk = Pkmap::new();
    for _ in 0..2000 {
        let _ = pk.kmap(&mut pt, rng.next() >> (rng.next() % 64));
        let _ = pk.kunmap(&mut pt, rng.next() as u32);
        let _ = pk.unmap(PKMAP_BASE + (rng.next() as u32 % 0x20_0000));
    }
    for m in pt.mappings() {
        assert!(m.size > 0);
    }
}

/// Address arithmetic on extreme inputs answers `None` instead of overflowing.
#[test]
fn address_helpers_do_not_overflow() {
    assert_eq!(virt_to_phys(0xC000_1000, u64::MAX), None);
    assert_eq!(virt_to_phys(0xC000_1000, 0x6000_0000), Some(0x6000_1000));
    let dev = MappingRequest {
        name: "edge",
        kind: MappingKind::Device,
        virt: 0xFFFF_F000,
        phys: 0x1000_0000,
        size: 0x2000,
        mem: MemType::Device,
        access: Access::KernelRw,
        exec: false,
    };
    assert_eq!(device_virt(&[dev], 0x1000_0000), Some(0xFFFF_F000));
    assert_eq!(device_virt(&[dev], 0x1000_1000), None);
}
