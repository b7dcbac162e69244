//! The whole host-side boot: `bootmem::boot` on simulated RAM, the self-check,
//! `mem_init` (memblock_free_all + page allocator) and the page allocator self-test,
//! as the guest runs them.

use zonekit_arch_arm::bootmem::{boot, count_free_pages, BootParams};
use zonekit_arch_arm::hooks::NoHooks;
use zonekit_core::addr::MemRange;
use zonekit_core::arch::MmConfig;
use zonekit_core::mmzone::ZoneType;
use zonekit_core::source::StaticMemoryMap;
use zonekit_core::storage::VecPageStorage;

fn run(base: u64, size: u64, cmdline_dma: Option<u64>, random_ops: u64) -> (u64, u64) {
    let map = StaticMemoryMap::single_bank(base, size);
    let boot_data = [MemRange::new(base, 0x1000)];
    let params = BootParams {
        source: &map,
        cmdline: "",
        dma_zone_size: cmdline_dma,
        kernel_image: MemRange::new(base + 0x1_0000, 0x10_0000),
        boot_data: &boot_data,
        mm: MmConfig::ZONEKIT,
    };
    let mut storage = VecPageStorage::default();
    let booted = boot(&params, &mut storage, &mut NoHooks).expect("boot");
    booted.self_check().expect("self-check");
    let expected_free = count_free_pages(&booted.memblock);
    let mut running = booted.mem_init::<1>(storage, &mut NoHooks);
    assert_eq!(running.allocator.nr_free_pages(), expected_free);
    assert_eq!(running.free_all.totalram(), expected_free);
    running
        .self_test(0x5eed, random_ops)
        .expect("page allocator self-test");
    (
        running.allocator.nr_free_pages(),
        running.allocator.free(ZoneType::HighMem),
    )
}

#[test]
fn vexpress_a9_512m_boot_to_buddy() {
    let (free, high) = run(0x6000_0000, 512 << 20, None, 5000);
    assert!(free > 120_000, "{free}");
    assert_eq!(high, 0);
}

#[test]
fn vexpress_a9_1g_highmem_boot_to_buddy() {
    let (_, high) = run(0x6000_0000, 1 << 30, None, 5000);
    // 256 MiB of highmem, all free (nothing is allocated there at boot).
    assert_eq!(high, 65536);
}

#[test]
fn board_with_a_dma_zone_boots_to_buddy() {
    run(0x1000_0000, 512 << 20, Some(64 << 20), 2000);
}

#[test]
fn memory_line_counts_what_memblock_leaves() {
    let map = StaticMemoryMap::single_bank(0x8000_0000, 512 << 20);
    let boot_data = [MemRange::new(0x8000_0000, 0x1000)];
    let params = BootParams {
        source: &map,
        cmdline: "",
        dma_zone_size: None,
        kernel_image: MemRange::new(0x8001_0000, 0x10_0000),
        boot_data: &boot_data,
        mm: MmConfig::ZONEKIT,
    };
    let mut storage = VecPageStorage::default();
    let booted = boot(&params, &mut storage, &mut NoHooks).unwrap();
    let running = booted.mem_init::<1>(storage, &mut NoHooks);
    let line = running.memory_line.to_string();
    assert!(line.starts_with("Memory: "), "{line}");
    assert!(line.contains("K/524288K available"), "{line}");
    assert_eq!(running.memory_line.total_k, 524288);
    assert_eq!(
        running.memory_line.available_k,
        4 * running.free_all.totalram()
    );
}

/// The host path borrows its storage (issue 10): `PageStorage` for `&mut S`, so the
/// caller keeps the storage and gets it back after the allocator is dropped.
#[test]
fn borrowed_storage_is_given_back() {
    let map = StaticMemoryMap::single_bank(0x6000_0000, 64 << 20);
    let boot_data = [MemRange::new(0x6000_0000, 0x1000)];
    let params = BootParams {
        source: &map,
        cmdline: "",
        dma_zone_size: None,
        kernel_image: MemRange::new(0x6001_0000, 0x10_0000),
        boot_data: &boot_data,
        mm: MmConfig::ZONEKIT,
    };
    let mut storage = VecPageStorage::default();
    {
        let mut lent = &mut storage;
        let booted = boot(&params, &mut lent, &mut NoHooks).expect("boot");
        let running = booted.mem_init::<1>(lent, &mut NoHooks);
        assert!(running.allocator.nr_free_pages() > 0);
    }
    // mem_map and the usemap were handed out of the caller's own storage.
    assert!(storage.handed_out.len() >= 2, "{:?}", storage.handed_out);
}

/// An ATAGS list with one `ATAG_MEM` per bank (QEMU's layout, built by hand: more tags
/// than `AtagsBuilder` holds).
fn atags_with_banks(banks: &[(u32, u32)], cmdline: &str) -> Vec<u8> {
    use zonekit_arch_arm::atags::{ATAG_CMDLINE, ATAG_CORE, ATAG_MEM, ATAG_NONE};
    let mut w = vec![5, ATAG_CORE, 1, 4096, 0];
    for &(start, size) in banks {
        w.extend([4, ATAG_MEM, size, start]);
    }
    let mut text = cmdline.as_bytes().to_vec();
    text.resize(text.len() / 4 * 4 + 4, 0);
    w.extend([2 + text.len() as u32 / 4, ATAG_CMDLINE]);
    w.extend(
        text.chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
    w.extend([0, ATAG_NONE]);
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// ATAGS, too, have no bank cap of their own: 200 adjacent `ATAG_MEM` banks are one
/// memblock region, 200 separate ones fill memblock.memory (a typed error).
#[test]
fn atags_with_200_banks_are_memblocks_to_judge() {
    use zonekit_arch_arm::atags::Atags;
    use zonekit_arch_arm::bootmem::BootError;
    use zonekit_core::memblock::{MemblockError, TableKind, INIT_MEMBLOCK_REGIONS};
    let boot_200 = |stride: u32, size: u32| {
        let banks: Vec<(u32, u32)> = (0..200).map(|i| (0x6000_0000 + i * stride, size)).collect();
        let buf = atags_with_banks(&banks, "vmalloc=256M");
        let atags = Atags::parse(&buf).expect("valid ATAGS");
        assert_eq!(atags.banks().count(), 200);
        let boot_data = [MemRange::new(0x6000_0000, 0x1000)];
        let params = BootParams {
            source: &atags,
            cmdline: atags.cmdline(),
            dma_zone_size: None,
            kernel_image: MemRange::new(0x6001_0000, 0x10_0000),
            boot_data: &boot_data,
            mm: MmConfig::ZONEKIT,
        };
        let mut storage = VecPageStorage::default();
        boot(&params, &mut storage, &mut NoHooks).map(|b| {
            let memory: Vec<MemRange> = b.memblock.memory_ranges().collect();
            (memory, b.node.node_present_pages)
        })
    };
    let (memory, present) = boot_200(1 << 20, 1 << 20).expect("boot");
    assert_eq!(memory, [MemRange::new(0x6000_0000, 200 << 20)]);
    assert_eq!(present, (200 << 20) / 4096);
    assert_eq!(
        boot_200(2 << 20, 1 << 20).map(|_| ()),
        Err(BootError::Memblock(MemblockError::TableFull {
            table: TableKind::Memory,
            capacity: INIT_MEMBLOCK_REGIONS,
        }))
    );
}
