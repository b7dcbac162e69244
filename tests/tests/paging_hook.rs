//! The `paging_init` hook of the boot flow: where it runs (after
//! `adjust_lowmem_bounds`/`arm_memblock_init`, before `bootmem_init`), page tables
//! built from memblock inside it as Linux's `early_alloc` does, and the linear map it
//! reports reaching `page_address` after `mem_init`.

use zonekit_arch_arm::bootmem::{boot, BootError, BootParams, PagingContext};
use zonekit_arch_arm::hooks::{BootHooks, NoHooks};
use zonekit_arch_arm::mmu::*;
use zonekit_core::addr::{pfn_phys, MemRange};
use zonekit_core::memblock::{MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE};
use zonekit_core::page_alloc::Gfp;
use zonekit_core::source::StaticMemoryMap;
use zonekit_core::storage::VecPageStorage;
use zonekit_core::{MmConfig, PageStorage, PhysAddr};

const BASE: u64 = 0x6000_0000;
const IMAGE: MemRange = MemRange {
    base: BASE + 0x1_0000,
    size: 0x80_0000,
};

/// A `paging_init` that records where it ran and builds the kernel table with
/// memblock allocations (16 KiB-aligned L1 table, 4 KiB L2 chunks).
#[derive(Default)]
struct RecordingPaging {
    ran: bool,
    limit_at_entry: u64,
    lowmem_limit: u64,
    reserved_before: u64,
    allocations: Vec<(PhysAddr, usize, usize)>,
    l1: u32,
    mappings: Vec<Mapping>,
    linear: bool,
}

struct MemblockTables<'a> {
    mem: Vec<u32>,
    base: PhysAddr,
    ctx_mb: &'a mut zonekit_arch_arm::bootmem::BootMemblock,
    log: &'a mut Vec<(PhysAddr, usize, usize)>,
}

impl TableMemory for MemblockTables<'_> {
    fn words(&self, phys: PhysAddr, count: usize) -> Option<&[u32]> {
        let i = usize::try_from(phys.checked_sub(self.base)? / 4).ok()?;
        self.mem.get(i..i + count)
    }

    fn words_mut(&mut self, phys: PhysAddr, count: usize) -> Option<&mut [u32]> {
        let i = usize::try_from(phys.checked_sub(self.base)? / 4).ok()?;
        self.mem.get_mut(i..i + count)
    }
}

impl TableAllocator for MemblockTables<'_> {
    fn alloc_table(&mut self, bytes: usize, align: usize) -> Result<PhysAddr, MmuError> {
        let mut storage = VecPageStorage::default();
        let phys = self
            .ctx_mb
            .alloc_try_nid(
                &mut storage,
                bytes as u64,
                align as u64,
                0,
                MEMBLOCK_ALLOC_ACCESSIBLE,
                NUMA_NO_NODE,
            )
            .map_err(|_| MmuError::OutOfTableMemory { bytes, align })?;
        self.log.push((phys, bytes, align));
        Ok(phys)
    }
}

impl<S: PageStorage> BootHooks<S> for RecordingPaging {
    fn paging_init(&mut self, ctx: PagingContext<'_, S>) -> Result<Option<u64>, BootError> {
        self.ran = true;
        self.limit_at_entry = ctx.memblock.current_limit();
        self.lowmem_limit = ctx.lowmem_limit;
        self.reserved_before = ctx.memblock.reserved_ranges().map(|r| r.size).sum();
        let po = ctx.arch.phys_offset;
        let plan = plan_kernel_mappings(
            (po, ctx.lowmem_limit),
            po,
            (ctx.kernel_image.base, ctx.kernel_image.end()),
            zonekit_bsp_vexpress::VEXPRESS_A9.mmio,
        )?;
        // Table memory: the top 1 MiB of lowmem, where memblock's top-down
        // allocations land.
        let base = ctx.lowmem_limit - (1 << 20);
        let alloc = MemblockTables {
            mem: vec![0xDEAD_BEEF; 1 << 18],
            base,
            ctx_mb: ctx.memblock,
            log: &mut self.allocations,
        };
        let pt = build_page_table(alloc, false, &plan, &mut NoMappingHooks)?
            .into_short()
            .ok_or(MmuError::Hook("a short-descriptor table was asked for"))?;
        self.l1 = pt.l1_phys();
        self.mappings = pt.mappings().collect();
        Ok(self.linear.then_some(u64::from(PAGE_OFFSET)))
    }
}

fn params(source: &StaticMemoryMap) -> BootParams<'_> {
    BootParams {
        source,
        cmdline: "",
        dma_zone_size: None,
        kernel_image: IMAGE,
        boot_data: &[],
        mm: MmConfig::ZONEKIT,
    }
}

#[test]
fn paging_init_runs_between_lowmem_bounds_and_bootmem_init() {
    let source = StaticMemoryMap::single_bank(BASE, 1 << 30);
    let mut storage = VecPageStorage::default();
    let mut paging = RecordingPaging::default();
    let booted = boot(&params(&source), &mut storage, &mut paging).unwrap();
    assert!(paging.ran);
    // After adjust_lowmem_bounds: the limit is arm_lowmem_limit (768 MiB of lowmem).
    assert_eq!(paging.lowmem_limit, BASE + (768 << 20));
    assert_eq!(paging.limit_at_entry, paging.lowmem_limit);
    assert_eq!(booted.lowmem_limit, paging.lowmem_limit);
    // Before bootmem_init: only the image was reserved then (no mem_map yet).
    assert_eq!(paging.reserved_before, IMAGE.size);
    // early_alloc: the 16 KiB-aligned L1 table first, then a 4 KiB chunk of L2
    // tables (the PKMAP one), top-down at the end of lowmem.
    assert_eq!(paging.allocations.len(), 2);
    let (l1, l1_size, l1_align) = paging.allocations[0];
    assert_eq!((l1_size, l1_align), (16 * 1024, 16 * 1024));
    assert_eq!(l1, paging.lowmem_limit - 16 * 1024);
    assert_eq!(u64::from(paging.l1), l1);
    let (l2, l2_size, l2_align) = paging.allocations[1];
    assert_eq!((l2_size, l2_align), (4096, 4096));
    assert_eq!(l2, l1 - 4096);
    // Both stay reserved, and mem_map went below them.
    for (phys, size, _) in &paging.allocations {
        assert!(booted.memblock.is_reserved(*phys));
        assert!(booted.memblock.is_reserved(*phys + *size as u64 - 1));
    }
    assert!(booted.node.mem_map_phys < l2);
    // The table maps lowmem at PAGE_OFFSET, the image 1:1 and the UART.
    let lin = |pa: u64| PAGE_OFFSET + (pa - BASE) as u32;
    assert!(paging
        .mappings
        .iter()
        .any(|m| m.virt == PAGE_OFFSET && m.phys == BASE));
    assert!(paging
        .mappings
        .iter()
        .any(|m| m.virt as u64 == BASE && m.phys == BASE && m.exec()));
    assert!(paging
        .mappings
        .iter()
        .any(|m| m.phys == 0x1000_0000 && m.mem() == Some(MemType::Device)));
    let end: u64 = paging
        .mappings
        .iter()
        .filter(|m| m.virt >= PAGE_OFFSET && m.mem() == Some(MemType::Memory))
        .map(|m| m.virt as u64 + m.size)
        .max()
        .unwrap();
    assert_eq!(end, lin(paging.lowmem_limit) as u64);
    // No linear map reported: page_address stays the identity.
    assert_eq!(booted.page_offset, BASE);
}

#[test]
fn the_linear_map_reaches_page_address() {
    let source = StaticMemoryMap::single_bank(BASE, 1 << 30);
    let mut storage = VecPageStorage::default();
    let mut paging = RecordingPaging {
        linear: true,
        ..Default::default()
    };
    let booted = boot(&params(&source), &mut storage, &mut paging).unwrap();
    assert_eq!(booted.page_offset, u64::from(PAGE_OFFSET));
    let mut running = booted.mem_init::<1>(storage, &mut NoHooks);
    let lowmem = running.allocator.alloc_pages(0, Gfp::KERNEL, 0).unwrap();
    let va = running.allocator.page_address(lowmem.pfn()).unwrap();
    assert_eq!(va, u64::from(PAGE_OFFSET) + (pfn_phys(lowmem.pfn()) - BASE));
    assert_eq!(
        phys_to_virt(pfn_phys(lowmem.pfn()), BASE).map(u64::from),
        Some(va)
    );
    let high = running
        .allocator
        .alloc_pages(0, Gfp::HIGHUSER_MOVABLE, 0)
        .unwrap();
    assert!(high.pfn() >= running.limits.max_low);
    assert_eq!(running.allocator.page_address(high.pfn()), None);
}

#[test]
fn no_paging_is_the_plain_boot() {
    let source = StaticMemoryMap::single_bank(BASE, 512 << 20);
    let mut s1 = VecPageStorage::default();
    let mut s2 = VecPageStorage::default();
    let a = boot(&params(&source), &mut s1, &mut NoHooks).unwrap();
    let b = boot(&params(&source), &mut s2, &mut NoHooks).unwrap();
    assert_eq!(a.node.mem_map_phys, b.node.mem_map_phys);
    assert_eq!(a.page_offset, BASE);
    assert_eq!(s1.handed_out, s2.handed_out);
    let ra: Vec<_> = a.memblock.reserved_ranges().collect();
    let rb: Vec<_> = b.memblock.reserved_ranges().collect();
    assert_eq!(ra, rb);
}

#[test]
fn paging_errors_stop_the_boot() {
    struct Failing;
    impl<S: PageStorage> BootHooks<S> for Failing {
        fn paging_init(&mut self, _: PagingContext<'_, S>) -> Result<Option<u64>, BootError> {
            Err(MmuError::PkmapFull.into())
        }
    }
    let source = StaticMemoryMap::single_bank(BASE, 512 << 20);
    let mut storage = VecPageStorage::default();
    let e = boot(&params(&source), &mut storage, &mut Failing)
        .err()
        .unwrap();
    assert_eq!(e, BootError::Paging(MmuError::PkmapFull));
    assert!(e.to_string().contains("paging_init"));
}

#[test]
fn boards_list_their_console_for_the_device_window() {
    // `BoardDesc::check` runs the same plan on every board at its BSP's build.
    for b in zonekit_bsp_vexpress::BOARDS
        .into_iter()
        .chain(zonekit_bsp_imx6::BOARDS)
    {
        let po = b.ram_base;
        let plan = plan_kernel_mappings(
            (po, po + (256 << 20)),
            po,
            (po + 0x1_0000, po + 0x90_0000),
            b.mmio,
        )
        .unwrap();
        let v = device_virt(&plan, b.uart_base).unwrap();
        assert!(v >= 0xF800_0000, "{}", b.name);
    }
}
