//! Every allocated head page carries exactly `allocated_flags(zone, node, order)`,
//! whatever path allocated it (per-CPU lists, buddy, CMA, fallback, reserves,
//! `__GFP_ZERO`): the free fast path compares the whole flags word with it, so a
//! path that left another bit would quietly send every free of its pages the slow
//! way. And `check_invariants` refuses a per-CPU page with a bit beyond its state
//! (the allocation fast path overwrites the flags without reading them).
use zonekit_arch_arm::bootmem::BootedMemory;
use zonekit_core::memblock::Memblock;
use zonekit_core::mm_init::free_area_init_node;
use zonekit_core::page::allocated_flags;
use zonekit_core::page_alloc::{
    memblock_free_all, AllocConfig, AllocError, Gfp, PageAllocator, PageBlock,
};
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MmConfig;

use zonekit_tests::booted;

const BASE: u64 = zonekit_tests::BOOT_BASE;
type A<const N: usize> = PageAllocator<VecPageStorage, N>;

/// A 16 MiB node after `memblock_free_all`, for `N` CPUs.
fn small_allocator<const N: usize>() -> A<N> {
    let BootedMemory {
        memblock,
        mut node,
        limits,
        ..
    } = booted(16 << 20, MmConfig::ZONEKIT);
    memblock_free_all(&mut node, &memblock, limits.max_low);
    PageAllocator::new(
        node,
        VecPageStorage::default(),
        AllocConfig::new(limits.max_low, BASE),
    )
}

fn check<const N: usize>(a: &A<N>, b: &PageBlock, what: &str) {
    let p = a.node().pfn_to_page(b.pfn()).unwrap();
    let want = allocated_flags(b.zone(), a.node().node_id, b.order());
    assert_eq!(
        p.raw_flags(),
        want,
        "{what}: pfn {:#x} order {} zone {:?} flags {:#x} want {:#x}",
        b.pfn(),
        b.order(),
        b.zone(),
        p.raw_flags(),
        want
    );
    assert_eq!(p.refcount(), 1);
}

fn gfps() -> Vec<(Gfp, &'static str)> {
    vec![
        (Gfp::KERNEL, "kernel"),
        (Gfp::HIGHUSER_MOVABLE, "highuser_movable"),
        (Gfp::MOVABLE, "movable"),
        (Gfp::RECLAIMABLE, "reclaimable"),
        (Gfp::DMA | Gfp::ZERO, "dma|zero"),
        (Gfp::KERNEL | Gfp::ZERO, "zero"),
        (Gfp::GFP_ATOMIC, "atomic"),
        (Gfp::HIGH, "high"),
        (Gfp::GFP_ATOMIC | Gfp::MEMALLOC, "atomic|memalloc"),
        (Gfp::HIGHUSER_MOVABLE | Gfp::MEMALLOC, "movable|memalloc"),
    ]
}

fn exercise<const N: usize>(a: &mut A<N>) {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let g = gfps();
    let mut held: Vec<PageBlock> = Vec::new();
    let mut fails = 0u64;
    for step in 0..60_000u32 {
        let r = rnd();
        if r % 5 < 3 || held.is_empty() {
            let (gfp, what) = g[(r >> 8) as usize % g.len()];
            let order = match (r >> 16) % 10 {
                0..=4 => 0,
                5 => 1,
                6 => 2,
                7 => 3,
                _ => ((r >> 24) % 11) as u32,
            };
            let cpu = ((r >> 32) % N as u64) as usize;
            match a.alloc_pages(cpu, gfp, order) {
                Ok(b) => {
                    check(a, &b, what);
                    held.push(b);
                }
                Err(AllocError::NoMemory) => fails += 1,
                Err(AllocError::InvalidOrder(_)) => {}
                Err(e) => panic!("{e:?}"),
            }
        } else {
            let i = (r >> 8) as usize % held.len();
            let b = held.swap_remove(i);
            let cpu = ((r >> 32) % N as u64) as usize;
            a.free_pages(cpu, b).unwrap();
        }
        if step % 10_000 == 0 {
            a.check_invariants().unwrap();
        }
    }
    assert!(fails < 60_000, "some allocations succeed");
    for b in held {
        a.free_pages(0, b).unwrap();
    }
    a.check_invariants().unwrap();
}

#[test]
fn highmem_cma_all_paths() {
    let (mut a, _) = zonekit_tests::cma_allocator::<2>(1536 << 20, MmConfig::LINUX_61_ARMMP);
    exercise(&mut a);
}

#[test]
fn small_node_exhaustion() {
    let mut a = small_allocator::<2>();
    exercise(&mut a);
}

#[test]
fn node_id_5() {
    let base_pfn = 0x60000u64;
    let pages = 8192u64;
    let mut mb: Memblock = Memblock::new(u32::MAX as u64);
    mb.add(base_pfn << 12, pages << 12).unwrap();
    mb.set_current_limit((base_pfn + pages) << 12);
    let mut storage = VecPageStorage::default();
    let mut node = free_area_init_node(
        &mut mb,
        &mut storage,
        &MmConfig::ZONEKIT,
        5,
        &[pages, 0, 0, 0],
        base_pfn,
        &[0; 4],
        0,
    )
    .unwrap();
    memblock_free_all(&mut node, &mb, base_pfn + pages);
    let mut a: A<1> = PageAllocator::new(
        node,
        VecPageStorage::default(),
        AllocConfig::new(base_pfn + pages, base_pfn << 12),
    );
    assert_eq!(a.node().node_id, 5);
    exercise(&mut a);
}

#[test]
fn check_invariants_refuses_a_stray_bit_on_a_pcp_page() {
    let mut a = small_allocator::<1>();
    let block = a.alloc_pages(0, Gfp::KERNEL, 0).unwrap();
    let pfn = block.pfn();
    a.free_pages(0, block).unwrap();
    a.check_invariants().unwrap();
    // The page now sits on CPU 0's list; a bit no state has makes it inconsistent.
    a.node().pfn_to_page(pfn).unwrap().set_reserved();
    let e = a.check_invariants().unwrap_err();
    assert_eq!(e.what, "pcp page has flags beyond its state", "{e:?}");
}
