//! CMA through the whole host boot (issue 9, item 5): `cma=` on the command line and
//! `linux,cma` reusable `shared-dma-pool` nodes are reserved by memblock during
//! `arm_memblock_init`, counted as `cma-reserved` in the `Memory:` line, and handed to
//! the buddy allocator as MIGRATE_CMA pageblocks after `mem_init`.

use vm_fdt::FdtWriter;
use zonekit_arch_arm::bootmem::{boot, BootParams, RunningMemory};
use zonekit_arch_arm::fdt::FdtMemory;
use zonekit_arch_arm::hooks::NoHooks;
use zonekit_core::addr::MemRange;
use zonekit_core::arch::MmConfig;
use zonekit_core::cma::CmaArea;
use zonekit_core::mmzone::ZoneType;
use zonekit_core::page_alloc::Gfp;
use zonekit_core::storage::VecPageStorage;

const BASE: u64 = 0x6000_0000;

/// A vexpress-a9 style DTB: one bank, `bootargs`, and optional reserved-memory
/// children written by `rm`.
fn dtb(ram: u64, bootargs: &str, rm: impl FnOnce(&mut FdtWriter)) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let c = w.begin_node("chosen").unwrap();
    w.property_string("bootargs", bootargs).unwrap();
    w.end_node(c).unwrap();
    let m = w.begin_node("memory@60000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u32("reg", &[BASE as u32, ram as u32])
        .unwrap();
    w.end_node(m).unwrap();
    let r = w.begin_node("reserved-memory").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_null("ranges").unwrap();
    rm(&mut w);
    w.end_node(r).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

fn cma_pool(w: &mut FdtWriter, name: &str, reg: Option<(u32, u32)>, size: u32, default: bool) {
    let n = w.begin_node(name).unwrap();
    w.property_string("compatible", "shared-dma-pool").unwrap();
    w.property_null("reusable").unwrap();
    match reg {
        Some((b, s)) => w.property_array_u32("reg", &[b, s]).unwrap(),
        None => w.property_u32("size", size).unwrap(),
    }
    if default {
        w.property_null("linux,cma-default").unwrap();
    }
    w.end_node(n).unwrap();
}

/// Boot the DTB on the host to a running allocator (self-test included).
fn boot_dtb(blob: &[u8]) -> (Vec<CmaArea>, RunningMemory<VecPageStorage, 1>) {
    // fdt-rs needs the blob 4-byte aligned, as boot loaders place it.
    let mut buf = vec![0u8; blob.len() + 8];
    let off = buf.as_ptr().align_offset(8);
    buf[off..off + blob.len()].copy_from_slice(blob);
    let source = FdtMemory::parse(&buf[off..off + blob.len()], u32::MAX as u64).expect("DTB");
    let boot_data = [MemRange::new(BASE, 0x1000)];
    let params = BootParams {
        source: &source,
        cmdline: source.cmdline(),
        dma_zone_size: None,
        kernel_image: MemRange::new(BASE + 0x1_0000, 0x10_0000),
        boot_data: &boot_data,
        mm: MmConfig::ZONEKIT,
    };
    let mut storage = VecPageStorage::default();
    let booted = boot(&params, &mut storage, &mut NoHooks).expect("boot");
    booted.self_check().expect("self-check");
    let areas = booted.cma.areas().to_vec();
    let mut running = booted.mem_init::<1>(storage, &mut NoHooks);
    assert!(running.allocator.cma_failures().is_empty());
    running.self_test(7, 2000).expect("self-test");
    (areas, running)
}

fn cma_pages(r: &RunningMemory<VecPageStorage, 1>) -> u64 {
    ZoneType::ALL
        .iter()
        .map(|&z| r.allocator.zone_state(z).cma_pages)
        .sum()
}

#[test]
fn cma_cmdline_64m_is_reserved_and_given_to_buddy_as_migrate_cma() {
    let (areas, running) = boot_dtb(&dtb(512 << 20, "cma=64M", |_| {}));
    // Top-down below the end of RAM, 4 MiB (one zonekit pageblock) aligned.
    assert_eq!(
        areas,
        vec![CmaArea {
            base: 0x7c00_0000,
            size: 64 << 20
        }]
    );
    assert_eq!(running.memory_line.cma_k, 65536);
    assert!(
        running
            .memory_line
            .to_string()
            .contains(", 65536K cma-reserved, 0K highmem)"),
        "{}",
        running.memory_line
    );
    assert_eq!(cma_pages(&running), 16384);
    // Not lost: the CMA pages are free in the buddy, on top of what memblock freed.
    assert_eq!(
        running.allocator.nr_free_pages(),
        running.free_all.totalram() + 16384
    );
}

#[test]
fn cma_cmdline_area_goes_to_highmem_when_highmem_exists() {
    let (areas, running) = boot_dtb(&dtb(1 << 30, "cma=64M", |_| {}));
    assert_eq!(areas[0].base, 0x9c00_0000);
    assert_eq!(
        running.allocator.zone_state(ZoneType::HighMem).cma_pages,
        16384
    );
}

#[test]
fn cma_cmdline_zero_and_impossible_sizes_boot_without_cma() {
    let (areas, running) = boot_dtb(&dtb(512 << 20, "cma=0", |_| {}));
    assert!(areas.is_empty());
    assert_eq!(running.memory_line.cma_k, 0);
    // Larger than RAM: Linux logs "Failed to reserve" and boots on without it.
    let (areas, running) = boot_dtb(&dtb(512 << 20, "cma=1G", |_| {}));
    assert!(areas.is_empty());
    assert_eq!(cma_pages(&running), 0);
}

#[test]
fn cma_dtb_linux_cma_pool_is_given_to_buddy_and_replaces_the_cmdline_area() {
    let blob = dtb(512 << 20, "cma=32M", |w| {
        cma_pool(w, "linux,cma", None, 64 << 20, true);
    });
    let (areas, running) = boot_dtb(&blob);
    // The default pool serves as the global area: no second one for cma=32M.
    assert_eq!(areas.len(), 1);
    assert_eq!(areas[0].size, 64 << 20);
    assert_eq!(areas[0].base % (4 << 20), 0);
    assert_eq!(running.memory_line.cma_k, 65536);
    assert_eq!(cma_pages(&running), 16384);
}

#[test]
fn cma_dtb_static_pool_and_a_misaligned_one() {
    let blob = dtb(512 << 20, "", |w| {
        cma_pool(w, "pool@70000000", Some((0x7000_0000, 0x80_0000)), 0, false);
        // Not a whole pageblock: stays plain reserved memory, as in Linux.
        cma_pool(w, "odd@71000000", Some((0x7100_0000, 0x10_0000)), 0, false);
    });
    let (areas, running) = boot_dtb(&blob);
    assert_eq!(
        areas,
        vec![CmaArea {
            base: 0x7000_0000,
            size: 0x80_0000
        }]
    );
    assert_eq!(cma_pages(&running), 2048);
    assert!(running.memblock.is_region_reserved(0x7100_0000, 0x10_0000));
}

#[test]
fn cma_pages_serve_movable_but_not_unmovable_allocations() {
    let (areas, mut running) = boot_dtb(&dtb(64 << 20, "cma=16M", |_| {}));
    let r = areas[0].range();
    let cma = (r.base >> 12)..(r.end() >> 12);
    let a = &mut running.allocator;
    let mut held = Vec::new();
    while let Ok(b) = a.alloc_pages(0, Gfp::KERNEL, 0) {
        assert!(!cma.contains(&b.pfn()), "unmovable page from CMA");
        held.push(b);
    }
    let m = a.alloc_pages(0, Gfp::HIGHUSER_MOVABLE, 0).unwrap();
    assert!(cma.contains(&m.pfn()));
    held.push(m);
    for b in held {
        a.free_pages(0, b).unwrap();
    }
    a.drain_all_pages();
    a.check_invariants().unwrap();
}
