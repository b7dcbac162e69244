//! Host tests of `free_area_init_node` against the seed-article vectors and the Linux
//! 6.1 oracle relations.

use zonekit_core::memblock::Memblock;
use zonekit_core::mmzone::{
    free_area_init_node, CheckFailure, InitError, MigrateType, PgData, ZoneType, MAX_NR_ZONES,
};
use zonekit_core::page::Page;
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MmConfig;

type Node = PgData<VecPageStorage>;

fn memblock(banks: &[(u64, u64)], reserved: &[(u64, u64)], limit: u64) -> Memblock {
    let mut mb: Memblock = Memblock::new(u32::MAX as u64);
    for &(b, s) in banks {
        mb.add(b, s).unwrap();
    }
    for &(b, s) in reserved {
        mb.reserve(b, s).unwrap();
    }
    mb.set_current_limit(limit);
    mb
}

fn init(
    mb: &mut Memblock,
    cfg: &MmConfig,
    zones: [u64; MAX_NR_ZONES],
    start: u64,
    holes: [u64; MAX_NR_ZONES],
    dma_reserve: u64,
) -> Result<(Node, VecPageStorage), InitError> {
    let mut storage = VecPageStorage::default();
    let node = free_area_init_node(mb, &mut storage, cfg, 0, &zones, start, &holes, dma_reserve)?;
    Ok((node, storage))
}

fn assert_every_page_reserved(node: &Node) {
    for z in node.zones.iter() {
        for pfn in z.zone_start_pfn..z.zone_end_pfn() {
            let p = node.pfn_to_page(pfn).expect("descriptor");
            assert!(p.is_reserved(), "pfn {pfn:#x}");
            assert_eq!(p.refcount(), 1, "pfn {pfn:#x}");
            assert_eq!(p.zone_type(), z.zone_type, "pfn {pfn:#x}");
            assert_eq!(p.nid(), 0);
        }
    }
}

fn assert_free_lists_empty(node: &Node, cfg: &MmConfig) {
    for z in node.zones.iter().filter(|z| z.spanned_pages > 0) {
        assert_eq!(z.nr_orders, cfg.max_order as usize);
        for fa in &z.free_area[..z.nr_orders] {
            assert_eq!(fa.nr_free, 0);
            assert!(fa.free_list.iter().all(|&h| h == Page::NIL));
        }
    }
}

/// The seed articles: i.MX6UL, 512 MiB at 0x80000000, Linux 4.x (no ZONE_DMA, so the
/// lowmem zone is Normal).
#[test]
fn seed_imx6ul_linux4x() {
    let cfg = MmConfig::LINUX_4X_ARM;
    let mut mb = memblock(
        &[(0x8000_0000, 0x2000_0000)],
        &[(0x8000_4000, 0x4000), (0x8010_0000, 0x0100_0000)],
        0xa000_0000,
    );
    let (node, _) = init(&mut mb, &cfg, [0, 0x20000, 0, 0], 0x80000, [0; 4], 0).unwrap();
    assert_eq!(node.node_start_pfn, 0x80000);
    assert_eq!(node.node_end_pfn(), 0xa0000);
    assert_eq!(node.totalpages(), 131072);
    assert_eq!(node.node_spanned_pages, 131072);
    assert_eq!(node.mem_map_start_pfn, 0x80000);
    assert_eq!(node.node_mem_map_offset, 0);
    assert_eq!(
        node.mem_map_start_pfn + node.mem_map.as_ref().unwrap().len() as u64,
        0xa0000
    );
    assert_eq!(node.mem_map_bytes, 131072 * 32);
    let normal = &node.zones[ZoneType::Normal as usize];
    assert_eq!(normal.zone_start_pfn, 0x80000);
    assert_eq!(normal.memmap_pages, 1024);
    assert_eq!(normal.managed_pages, 130048);
    assert_eq!(normal.batch, 31);
    assert_eq!(node.nr_kernel_pages, 130048);
    assert_eq!(node.nr_all_pages, 130048);
    assert_eq!(node.total_managed(), 130048);
    assert!(!node.zones[ZoneType::Dma as usize].is_populated());
    assert!(node.zones[ZoneType::Dma as usize].usemap.is_none());
    // 128 pageblocks of 1024 pages, 4 bits each.
    assert_eq!(normal.usemap_bytes, 64);
    // The mem_map is in reserved memory.
    let check = node.check_boot_state(&mb).unwrap();
    assert_eq!(check.pages_checked, 131072);
    assert_eq!(check.zones_checked, 1);
    assert_every_page_reserved(&node);
    assert_free_lists_empty(&node, &cfg);
    for pfn in (0x80000..0xa0000).step_by(1024) {
        assert_eq!(
            normal.get_pageblock_migratetype(pfn).unwrap(),
            MigrateType::Movable
        );
    }
}

/// The va9-512m fixture's memblock at the `MEMBLOCK configuration` dump, followed by
/// the paging_init allocations it logged (iotable, early page tables,
/// vm_reserve_area_early) that come before `free_area_init`.
fn va9_512m() -> Memblock {
    let mut mb = memblock(
        &[(0x6000_0000, 0x2000_0000)],
        &[
            (0x6020_4000, 0x4000),
            (0x6030_0000, 0x0130_7588),
            (0x6800_0000, 0xbc22),
            (0x7f00_0000, 0x0100_0000),
        ],
        0x8000_0000,
    );
    let paging_init: [(u64, u64, u64); 15] = [
        (40, 0x4, 0x7eff_ffd8),
        (4096, 0x1000, 0x7eff_e000),
        (4096, 0x1000, 0x7eff_d000),
        (4096, 0x1000, 0x7eff_c000),
        (4096, 0x1000, 0x7eff_b000),
        (4096, 0x1000, 0x7eff_a000),
        (4096, 0x1000, 0x7eff_9000),
        (4096, 0x1000, 0x7eff_8000),
        (4096, 0x1000, 0x7eff_7000),
        (8192, 0x2000, 0x7eff_4000),
        (4096, 0x1000, 0x7eff_6000),
        (40, 0x4, 0x7eff_ffb0),
        (4096, 0x1000, 0x7eff_3000),
        (4096, 0x1000, 0x7eff_2000),
        (4096, 0x1000, 0x7eff_1000),
    ];
    for (bytes, align, base) in paging_init {
        assert_eq!(mb.alloc_try_nid_raw(bytes, align, 0, 0, -1).unwrap(), base);
    }
    mb
}

/// Linux 6.1 armmp on vexpress-a9 with 512 MiB: the oracle's mem_map placement and
/// usemap size (relations 4-7).
#[test]
fn oracle_va9_512m_linux61() {
    let cfg = MmConfig::LINUX_61_ARMMP;
    let mut mb = va9_512m();
    let (node, storage) = init(&mut mb, &cfg, [0x20000, 0, 0, 0], 0x60000, [0; 4], 0).unwrap();
    assert_eq!(node.mem_map_bytes, 4718592);
    assert_eq!(node.mem_map_phys, 0x7eb7_1000);
    assert_eq!(node.mem_map_start_pfn, 0x60000);
    assert_eq!(node.node_mem_map_offset, 0);
    let dma = &node.zones[ZoneType::Dma as usize];
    assert_eq!(dma.memmap_pages, 1152);
    assert_eq!(dma.managed_pages, 129920);
    assert_eq!(dma.usemap_bytes, 32);
    // The usemap is the next allocation (the fixture's op 19).
    assert_eq!(dma.usemap_phys, 0x7eff_ff80);
    assert_eq!(storage.handed_out.len(), 2);
    assert_eq!(storage.handed_out[0].0, 0x7eb7_1000);
    assert_eq!(storage.handed_out[1], (0x7eff_ff80, 32));
    assert_eq!(node.total_managed(), 129920);
    node.check_boot_state(&mb).unwrap();
}

/// Linux 6.1 on vexpress-a9 with 1 GiB: DMA = lowmem, HighMem above 0x90000000.
#[test]
fn oracle_va9_1g_highmem() {
    let cfg = MmConfig::LINUX_61_ARMMP;
    let mut mb = memblock(
        &[(0x6000_0000, 0x4000_0000)],
        &[(0x6030_0000, 0x0130_7588), (0x9f00_0000, 0x0100_0000)],
        0x9000_0000,
    );
    let (node, storage) = init(&mut mb, &cfg, [196608, 0, 65536, 0], 0x60000, [0; 4], 0).unwrap();
    assert_eq!(node.mem_map_bytes, 9437184);
    assert!(node.mem_map_phys + node.mem_map_bytes <= 0x9000_0000);
    let dma = &node.zones[ZoneType::Dma as usize];
    let high = &node.zones[ZoneType::HighMem as usize];
    assert_eq!(dma.usemap_bytes, 48);
    assert_eq!(high.usemap_bytes, 16);
    // Allocation order: mem_map, then the usemaps in zone order.
    assert_eq!(
        storage.handed_out,
        vec![
            (
                node.mem_map_phys,
                node.mem_map.as_ref().unwrap().len() as u64 * 16
            ),
            (dma.usemap_phys, 48),
            (high.usemap_phys, 16),
        ]
    );
    assert_eq!(high.zone_start_pfn, 0x90000);
    assert_eq!(dma.managed_pages, 196608 - 1728);
    // The HighMem memmap is not charged.
    assert_eq!(high.memmap_pages, 576);
    assert_eq!(high.managed_pages, 65536);
    assert_eq!(node.total_managed(), 260416);
    assert_eq!(node.nr_all_pages, 260416);
    // Linux charges the highmem memmap to nr_kernel_pages when there is room.
    assert_eq!(node.nr_kernel_pages, 194880 - 576);
    assert_every_page_reserved(&node);
    assert_eq!(
        high.get_pageblock_migratetype(0x90000).unwrap(),
        MigrateType::Movable
    );
    node.check_boot_state(&mb).unwrap();
}

/// Two banks with a gap: the zone spans the gap, the gap is a hole whose pages are
/// initialised and reserved (init_unavailable_range) but get no MOVABLE pageblocks.
#[test]
fn holes_between_banks() {
    let cfg = MmConfig::ZONEKIT;
    let mut mb = memblock(
        &[(0x8000_0000, 0x0800_0000), (0x9000_0000, 0x0800_0000)],
        &[(0x8010_0000, 0x0080_0000)],
        0x9800_0000,
    );
    let (node, _) = init(
        &mut mb,
        &cfg,
        [0, 0x18000, 0, 0],
        0x80000,
        [0, 0x8000, 0, 0],
        0,
    )
    .unwrap();
    let normal = &node.zones[ZoneType::Normal as usize];
    assert_eq!(normal.spanned_pages, 0x18000);
    assert_eq!(normal.present_pages, 0x10000);
    assert_eq!(node.totalpages(), 0x10000);
    // memmap charged on spanned pages: 0x18000 * 16 / 4096
    assert_eq!(normal.memmap_pages, 384);
    assert_eq!(normal.managed_pages, 0x10000 - 384);
    assert_every_page_reserved(&node);
    assert_eq!(
        normal.get_pageblock_migratetype(0x80000).unwrap(),
        MigrateType::Movable
    );
    assert_eq!(
        normal.get_pageblock_migratetype(0x88000).unwrap(),
        MigrateType::Unmovable
    );
    assert_eq!(
        normal.get_pageblock_migratetype(0x90400).unwrap(),
        MigrateType::Movable
    );
    node.check_boot_state(&mb).unwrap();
}

/// A board DMA zone splits lowmem; dma_reserve is charged to the DMA zone only.
#[test]
fn dma_zone_split_and_reserve() {
    let cfg = MmConfig::ZONEKIT;
    let mut mb = memblock(&[(0x8000_0000, 0x2000_0000)], &[], 0xa000_0000);
    let (node, _) = init(
        &mut mb,
        &cfg,
        [0x10000, 0x10000, 0, 0],
        0x80000,
        [0; 4],
        100,
    )
    .unwrap();
    let dma = &node.zones[ZoneType::Dma as usize];
    let normal = &node.zones[ZoneType::Normal as usize];
    assert_eq!(dma.zone_start_pfn, 0x80000);
    assert_eq!(normal.zone_start_pfn, 0x90000);
    assert_eq!(dma.memmap_pages, 256);
    assert_eq!(dma.managed_pages, 65536 - 256 - 100);
    assert_eq!(normal.managed_pages, 65536 - 256);
    assert_eq!(node.nr_kernel_pages, 2 * 65536 - 512 - 100);
    assert_every_page_reserved(&node);
    assert_eq!(
        node.pfn_to_page(0x8ffff).unwrap().zone_type(),
        ZoneType::Dma
    );
    assert_eq!(
        node.pfn_to_page(0x90000).unwrap().zone_type(),
        ZoneType::Normal
    );
    node.check_boot_state(&mb).unwrap();
}

/// Without a DMA zone the reserve goes to Normal (Linux 4.x's zone 0).
#[test]
fn dma_reserve_without_dma_zone() {
    let cfg = MmConfig::LINUX_4X_ARM;
    let mut mb = memblock(&[(0x8000_0000, 0x2000_0000)], &[], 0xa000_0000);
    let (node, _) = init(&mut mb, &cfg, [0, 0x20000, 0, 0], 0x80000, [0; 4], 48).unwrap();
    assert_eq!(
        node.zones[ZoneType::Normal as usize].managed_pages,
        130048 - 48
    );
}

/// A node start that is not MAX_ORDER aligned: the mem_map starts lower and the node's
/// first page sits at an offset.
#[test]
fn unaligned_node_start() {
    let cfg = MmConfig::LINUX_4X_ARM;
    let mut mb = memblock(&[(0x8010_0000, 0x1ff0_0000)], &[], 0xa000_0000);
    let (node, _) = init(&mut mb, &cfg, [0, 0x1ff00, 0, 0], 0x80100, [0; 4], 0).unwrap();
    assert_eq!(node.mem_map_start_pfn, 0x80000);
    assert_eq!(node.node_mem_map_offset, 0x100);
    assert_eq!(node.mem_map.as_ref().unwrap().len(), 0x20000);
    assert_eq!(node.mem_map_bytes, 0x20000 * 32);
    assert_eq!(node.pfn_to_index(0x80100), Some(0x100));
    assert_eq!(node.page_to_pfn(0x100), 0x80100);
    assert!(node.pfn_to_page(0x7ffff).is_none());
    assert!(node.pfn_to_page(0xa0000).is_none());
    // The padding before the node is not initialised.
    assert!(!node.pfn_to_page(0x800ff).unwrap().is_reserved());
    let normal = &node.zones[ZoneType::Normal as usize];
    assert_eq!(normal.usemap_bytes, 64);
    // The partial first pageblock is not marked (memmap_init marks aligned pfns).
    assert_eq!(
        normal.get_pageblock_migratetype(0x80100).unwrap(),
        MigrateType::Unmovable
    );
    assert_eq!(
        normal.get_pageblock_migratetype(0x80400).unwrap(),
        MigrateType::Movable
    );
    assert!(normal.get_pageblock_migratetype(0x800ff).is_err());
    assert_every_page_reserved(&node);
    node.check_boot_state(&mb).unwrap();
}

/// zonekit's own 16-byte descriptor charges 512 pages for 512 MiB.
#[test]
fn zonekit_profile_memmap() {
    let cfg = MmConfig::ZONEKIT;
    let mut mb = memblock(&[(0x8000_0000, 0x2000_0000)], &[], 0xa000_0000);
    let (node, _) = init(&mut mb, &cfg, [0, 0x20000, 0, 0], 0x80000, [0; 4], 0).unwrap();
    let normal = &node.zones[ZoneType::Normal as usize];
    assert_eq!(normal.memmap_pages, 512);
    assert_eq!(normal.managed_pages, 131072 - 512);
    assert_eq!(node.mem_map_bytes, 131072 * 16);
}

#[test]
fn migratetype_round_trip() {
    let cfg = MmConfig::ZONEKIT;
    let mut mb = memblock(&[(0x8000_0000, 0x2000_0000)], &[], 0xa000_0000);
    let (mut node, _) = init(&mut mb, &cfg, [0, 0x20000, 0, 0], 0x80000, [0; 4], 0).unwrap();
    let z = &mut node.zones[ZoneType::Normal as usize];
    z.set_pageblock_migratetype(0x80400, MigrateType::Cma)
        .unwrap();
    z.set_pageblock_migratetype(0x80800, MigrateType::Isolate)
        .unwrap();
    assert_eq!(
        z.get_pageblock_migratetype(0x80000).unwrap(),
        MigrateType::Movable
    );
    assert_eq!(
        z.get_pageblock_migratetype(0x807ff).unwrap(),
        MigrateType::Cma
    );
    assert_eq!(
        z.get_pageblock_migratetype(0x80800).unwrap(),
        MigrateType::Isolate
    );
    assert_eq!(
        z.get_pageblock_migratetype(0x80c00).unwrap(),
        MigrateType::Movable
    );
    assert_eq!(
        z.set_pageblock_migratetype(0xa0000, MigrateType::Movable),
        Err(InitError::PfnOutsideZone { pfn: 0xa0000 })
    );
}

#[test]
fn check_detects_corruption() {
    let cfg = MmConfig::ZONEKIT;
    let mut mb = memblock(&[(0x8000_0000, 0x2000_0000)], &[], 0xa000_0000);
    let (mut node, _) = init(&mut mb, &cfg, [0, 0x20000, 0, 0], 0x80000, [0; 4], 0).unwrap();
    node.check_boot_state(&mb).unwrap();

    node.pfn_to_page(0x81234).unwrap().clear_reserved();
    assert_eq!(
        node.check_boot_state(&mb),
        Err(CheckFailure::PageNotReserved { pfn: 0x81234 })
    );
    node.pfn_to_page(0x81234).unwrap().set_reserved();

    node.pfn_to_page(0x90000).unwrap().set_refcount(2);
    assert_eq!(
        node.check_boot_state(&mb),
        Err(CheckFailure::BadRefcount {
            pfn: 0x90000,
            refcount: 2
        })
    );
    node.pfn_to_page(0x90000).unwrap().set_refcount(1);

    node.pfn_to_page(0x9ffff)
        .unwrap()
        .set_page_links(ZoneType::HighMem, 0);
    assert!(matches!(
        node.check_boot_state(&mb),
        Err(CheckFailure::WrongZone { pfn: 0x9ffff, .. })
    ));
    node.pfn_to_page(0x9ffff)
        .unwrap()
        .set_page_links(ZoneType::Normal, 3);
    assert!(matches!(
        node.check_boot_state(&mb),
        Err(CheckFailure::WrongNode { pfn: 0x9ffff, .. })
    ));
    node.pfn_to_page(0x9ffff)
        .unwrap()
        .set_page_links(ZoneType::Normal, 0);
    node.check_boot_state(&mb).unwrap();

    node.node_present_pages += 1;
    assert!(matches!(
        node.check_boot_state(&mb),
        Err(CheckFailure::PresentMismatch { .. })
    ));
    node.node_present_pages -= 1;

    // Freeing the mem_map in memblock is detected.
    mb.phys_free(node.mem_map_phys, node.mem_map_bytes).unwrap();
    assert!(matches!(
        node.check_boot_state(&mb),
        Err(CheckFailure::MemMapNotReserved { .. })
    ));
}

#[test]
fn typed_errors() {
    let mut mb = memblock(&[(0x8000_0000, 0x2000_0000)], &[], 0xa000_0000);
    assert_eq!(
        init(
            &mut mb,
            &MmConfig::ZONEKIT,
            [0, 10, 0, 0],
            0x80000,
            [0, 11, 0, 0],
            0
        )
        .err(),
        Some(InitError::HoleLargerThanZone {
            zone: ZoneType::Normal,
            size: 10,
            hole: 11
        })
    );
    let small = MmConfig {
        struct_page_size: 8,
        ..MmConfig::ZONEKIT
    };
    assert!(matches!(
        init(&mut mb, &small, [0, 10, 0, 0], 0x80000, [0; 4], 0),
        Err(InitError::DescriptorTooLarge { .. })
    ));
    let big = MmConfig {
        max_order: 17,
        ..MmConfig::ZONEKIT
    };
    assert_eq!(
        init(&mut mb, &big, [0, 10, 0, 0], 0x80000, [0; 4], 0).err(),
        Some(InitError::MaxOrderTooLarge { max_order: 17 })
    );
    // Nothing was allocated by the failed calls.
    assert_eq!(mb.reserved.regions().len(), 0);
    // A node with more pages than u32 links can name is refused as such...
    assert_eq!(
        init(
            &mut mb,
            &MmConfig::ZONEKIT,
            [0, 1 << 40, 0, 0],
            0x80000,
            [0; 4],
            0
        )
        .err(),
        Some(InitError::Overflow)
    );
    // ...and one too big for memory fails with a memblock error, not a panic.
    assert!(matches!(
        init(
            &mut mb,
            &MmConfig::ZONEKIT,
            [0, 1 << 31, 0, 0],
            0x80000,
            [0; 4],
            0
        ),
        Err(InitError::Memblock(_))
    ));
}

#[test]
fn empty_node() {
    let mut mb = memblock(&[(0x8000_0000, 0x2000_0000)], &[], 0xa000_0000);
    let (node, storage) = init(&mut mb, &MmConfig::ZONEKIT, [0; 4], 0x80000, [0; 4], 0).unwrap();
    assert!(node.mem_map.is_none());
    assert!(storage.handed_out.is_empty());
    assert_eq!(node.check_boot_state(&mb).unwrap().pages_checked, 0);
}
