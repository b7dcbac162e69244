//! Linux's `paging_init` in the guest, and the MMU self-tests that run after it.
//!
//! [`ArmPaging::paging_init`] is what the runtime's boot hooks run for
//! [`crate::hooks::BootHooks::paging_init`]. Between `adjust_lowmem_bounds` and
//! `bootmem_init` it:
//!
//! 1. plans the kernel mappings ([`plan_kernel_mappings`](crate::mmu::plan_kernel_mappings), in [`crate::mmu::early`]): lowmem at `PAGE_OFFSET`
//!    in sections, the identity map of the image, the board's MMIO regions
//!    ([`BoardDesc::mmio`]) in the device window, the PKMAP window;
//! 2. builds the tables with memory from memblock, as Linux's `early_alloc`
//!    (`memblock_alloc_try_nid(size, align, 0, MEMBLOCK_ALLOC_ACCESSIBLE,
//!    NUMA_NO_NODE)`, zeroed): the 16 KiB first-level table, then 4 KiB chunks of
//!    second-level tables (the PKMAP one); they show up in the `memblock=debug` trace;
//! 3. runs the OS hooks ([`MappingHooks::before_mmu_on`]), switches the MMU on
//!    ([`hw::install_and_enable`], caches left off: QEMU does not model them, and
//!    leaving C/I clear spares the ACTLR.SMP dance on the A9/A15 cores), moves the
//!    console to its device-window address, and turns every later access to
//!    memblock memory (page tables, `mem_map`, zeroing) to the linear map;
//! 4. runs [`MappingHooks::after_mmu_on`] and prints the MMU line and Linux's
//!    `Virtual kernel memory layout:` block.
//!
//! Afterwards [`KernelMmu`] offers `phys_to_virt`/`virt_to_phys` for lowmem and
//! `kmap`/`kunmap` for any page (highmem in particular), invalidating the TLB entry
//! of a slot when it is freed.

use super::entry;
use super::storage::PhysPageStorage;
use crate::board::{BoardDesc, Console, MonotonicCounter};
use crate::bootmem::{BootError, PagingContext};
use crate::mmu::hw::{self, DirectTableMemory};
use crate::mmu::regs::{ttbr0_value, FaultStatus};
use crate::mmu::{
    device_virt, early, print_virtual_layout, LinearMap, MappingHooks, MappingRequest, MmuError,
    PageTable, Pkmap, TableAllocator, TableMemory, VirtualLayout, PAGE_OFFSET,
};
use core::sync::atomic::{AtomicU32, Ordering};
use zonekit_core::addr::{pfn_phys, Pfn, PhysAddr};
use zonekit_core::fmt::LogLines;
use zonekit_core::page_alloc::{Gfp, PageAllocator};
use zonekit_core::{zk_info, PageStorage};

/// Page-table memory during boot: memblock's `early_alloc`
/// ([`crate::mmu::early::EarlyTables`]), reached through [`DirectTableMemory`]
/// (identity before the switch, the linear map after).
pub type EarlyTables<'a> = early::EarlyTables<'a, PhysPageStorage, DirectTableMemory>;

/// Page-table memory once memblock is retired: the existing tables through the
/// linear map. New tables are refused (the PKMAP table was allocated up front by
/// `kmap_init`, so `kmap` never needs one).
#[derive(Debug)]
pub struct KernelTables {
    mem: DirectTableMemory,
}

impl TableMemory for KernelTables {
    fn words(&self, phys: PhysAddr, count: usize) -> Option<&[u32]> {
        self.mem.words(phys, count)
    }

    fn words_mut(&mut self, phys: PhysAddr, count: usize) -> Option<&mut [u32]> {
        self.mem.words_mut(phys, count)
    }
}

impl TableAllocator for KernelTables {
    fn alloc_table(&mut self, bytes: usize, align: usize) -> Result<PhysAddr, MmuError> {
        Err(MmuError::OutOfTableMemory { bytes, align })
    }
}

/// The live kernel page table with its PKMAP slots and linear map.
#[derive(Debug)]
pub struct KernelMmu {
    pt: PageTable<KernelTables>,
    pkmap: Pkmap,
    linear: LinearMap,
    layout: VirtualLayout,
    plan: heapless::Vec<MappingRequest, 32>,
}

impl KernelMmu {
    /// The page table.
    pub fn page_table(&self) -> &PageTable<KernelTables> {
        &self.pt
    }

    /// The planned mappings it was built from.
    pub fn plan(&self) -> &[MappingRequest] {
        &self.plan
    }

    /// The virtual layout.
    pub fn layout(&self) -> &VirtualLayout {
        &self.layout
    }

    /// The lowmem linear map.
    pub fn linear(&self) -> &LinearMap {
        &self.linear
    }

    /// `__va` for lowmem.
    pub fn phys_to_virt(&self, phys: PhysAddr) -> Option<u32> {
        self.linear.phys_to_virt(phys)
    }

    /// `__pa` for lowmem.
    pub fn virt_to_phys(&self, virt: u32) -> Option<PhysAddr> {
        self.linear.virt_to_phys(virt)
    }

    /// Where a board device's physical address is mapped.
    pub fn device_virt(&self, phys: u64) -> Option<u32> {
        device_virt(&self.plan, phys)
    }

    /// `kmap`: map `pfn` in a PKMAP slot (or take another reference to its slot).
    pub fn kmap(&mut self, pfn: Pfn) -> Result<u32, MmuError> {
        self.pkmap.kmap(&mut self.pt, pfn)
    }

    /// `kunmap`: drop a reference; when the slot becomes free its entry is cleared
    /// and its TLB entry invalidated (TLBIMVA).
    pub fn kunmap(&mut self, virt: u32) -> Result<(), MmuError> {
        let flush = self.pkmap.kunmap(&mut self.pt, virt)?;
        hw::dsb();
        hw::tlb_flush(flush);
        Ok(())
    }

    /// PKMAP slots in use.
    pub fn kmaps_in_use(&self) -> usize {
        self.pkmap.in_use()
    }
}

/// The guest's `paging_init` (see the module documentation).
pub struct ArmPaging<H> {
    board: &'static BoardDesc,
    console: &'static dyn Console,
    counter: Option<&'static dyn MonotonicCounter>,
    hooks: H,
    mmu: Option<KernelMmu>,
}

impl<H> ArmPaging<H> {
    /// `paging_init` for `board`, whose console is `console`, with the OS's hooks.
    pub fn new(board: &'static BoardDesc, console: &'static dyn Console, hooks: H) -> Self {
        Self {
            board,
            console,
            counter: None,
            hooks,
            mmu: None,
        }
    }

    /// Also move the board's timer to its device-window address when the MMU goes on
    /// (a memory-mapped counter read during boot would fault at its physical address).
    pub fn with_counter(mut self, counter: &'static dyn MonotonicCounter) -> Self {
        self.counter = Some(counter);
        self
    }

    /// The live MMU state, once `paging_init` has run.
    pub fn take_mmu(&mut self) -> Option<KernelMmu> {
        self.mmu.take()
    }
}

impl<H: for<'a> MappingHooks<EarlyTables<'a>>> ArmPaging<H> {
    /// Linux's `paging_init` (see the module documentation).
    pub fn paging_init(
        &mut self,
        ctx: PagingContext<'_, PhysPageStorage>,
    ) -> Result<Option<u64>, BootError> {
        if hw::mmu_enabled() {
            return Err(BootError::SelfCheck("paging_init: the MMU is already on"));
        }
        let phys_offset = ctx.arch.phys_offset;
        let lowmem_end = ctx.lowmem_limit;
        // SAFETY: the MMU is off (checked above), so physical addresses are the
        // pointers; the table allocator only hands out memblock allocations inside
        // [phys_offset, lowmem_end), which is RAM reserved for the tables and used by
        // nothing else.
        let mem = unsafe { DirectTableMemory::new(phys_offset, lowmem_end, 0) };
        let early::EarlyPaging {
            mut pt,
            plan,
            uart_virt,
        } = early::build_kernel_tables(ctx, self.board, mem, &mut self.hooks)?;
        let l1 = pt.l1_phys();
        hw::dsb();
        // SAFETY: the plan identity-maps the whole image (code, statics, the boot and
        // exception stacks: `kernel_image` runs to the end of .bss and the stacks) as
        // normal, executable, kernel read/write memory, so execution continues at the
        // same addresses; the tables were written with the data cache off, so the
        // walker sees them; the MMU is off. Nothing but the console (remapped right
        // below, before any print) and memblock memory (reached through the linear
        // map from then on) is accessed outside the image afterwards.
        unsafe { hw::install_and_enable(l1, false) };
        // SAFETY: the plan mapped the UART's block at `uart_virt` as device memory
        // and the MMU is now on with that plan.
        unsafe { self.console.remap(uart_virt as usize) };
        if let (Some(counter), base @ 1..) = (self.counter, self.board.timer.base) {
            if let Some(v) = device_virt(&plan, base) {
                // SAFETY: as for the console: `v` is the timer block's device mapping.
                unsafe { counter.remap(v as usize) };
            }
        }
        let virt_offset = PAGE_OFFSET.wrapping_sub(phys_offset as u32);
        {
            let a = pt.allocator_mut();
            // SAFETY: the MMU is on with the lowmem linear map, which covers
            // [phys_offset, lowmem_end) (every table and every memblock allocation
            // below the current limit) as normal read/write memory at
            // phys + virt_offset; no slice from the identity view outlives this
            // switch (the builder borrows table memory only inside its calls, and
            // nothing was allocated through the storage yet but zeroed tables).
            unsafe {
                a.memory_mut().set_virt_offset(virt_offset);
                a.storage_mut()
                    .use_linear_map(phys_offset, lowmem_end, PAGE_OFFSET);
            }
        }
        zk_info!(
            "zonekit: MMU on (TTBR0 {:#010x}, SCTLR {:#010x}, caches off), {} second-level tables, console at {:#010x}",
            ttbr0_value(l1),
            hw::read_sctlr(),
            pt.l2_table_count(),
            uart_virt
        );
        self.hooks.after_mmu_on(&mut pt)?;
        let layout = VirtualLayout::of_plan(&plan);
        let mut out = LogLines::new();
        // Writing to the log cannot fail.
        let _ = print_virtual_layout(&mut out, &layout);
        let pt = pt.map_allocator(|a| KernelTables {
            mem: a.into_memory(),
        });
        self.mmu = Some(KernelMmu {
            pt,
            pkmap: Pkmap::new(),
            linear: LinearMap {
                phys_offset,
                lowmem_end,
            },
            layout,
            plan,
        });
        Ok(Some(u64::from(PAGE_OFFSET)))
    }
}

/// Why an MMU self-test failed.
pub type MmuTestError = &'static str;

/// A buffer in the image: reachable at its identity address and through the linear
/// map.
static PROBE: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];

fn pattern(seed: u32, i: usize) -> u32 {
    seed.wrapping_mul(0x9E37_79B9).wrapping_add(i as u32) ^ 0xA5A5_0000
}

/// Read `words` words at `virt` and compare them with `pattern(seed, i)`.
///
/// # Safety
///
/// `[virt, virt + 4 * words)` must be mapped readable memory.
unsafe fn check_words(virt: u32, words: usize, seed: u32) -> bool {
    let p = virt as usize as *const u32;
    // SAFETY: forwarded to the caller.
    (0..words).all(|i| unsafe { core::ptr::read_volatile(p.add(i)) } == pattern(seed, i))
}

/// Write `pattern(seed, i)` to `words` words at `virt`.
///
/// # Safety
///
/// `[virt, virt + 4 * words)` must be mapped writable memory that nothing else uses.
unsafe fn fill_words(virt: u32, words: usize, seed: u32) {
    let p = virt as usize as *mut u32;
    for i in 0..words {
        // SAFETY: forwarded to the caller.
        unsafe { core::ptr::write_volatile(p.add(i), pattern(seed, i)) };
    }
}

const PAGE_WORDS: usize = 1024;

/// The MMU self-tests, after `mem_init`:
///
/// 1. a buffer of the image written at its identity address reads back through its
///    linear-map alias, and the other way round;
/// 2. a lowmem page from the buddy allocator written at its `page_address` (linear
///    map) reads back through a PKMAP alias, and the other way round;
/// 3. with highmem, `highmem_pages` pages allocated with `__GFP_HIGHMEM`: `kmap`,
///    write a pattern, `kunmap`, `kmap` again (a different slot), read back;
/// 4. with `test_abort`, reads of an unmapped vmalloc address and of a just-freed
///    PKMAP slot are caught by the data-abort handler (which prints DFAR/DFSR) and
///    execution resumes.
pub fn mmu_self_test<S: PageStorage, const N: usize>(
    mmu: &mut KernelMmu,
    alloc: &mut PageAllocator<S, N>,
    highmem_pages: usize,
    test_abort: bool,
) -> Result<(), MmuTestError> {
    // 1. Identity vs linear alias of the image.
    let id = PROBE.as_ptr() as usize as u32;
    let lin = mmu
        .phys_to_virt(u64::from(id))
        .ok_or("the image is not in the linear map")?;
    let walked = mmu.page_table().walk(lin).map(|t| t.phys);
    if walked != Some(u64::from(id)) {
        return Err("the linear alias of the image does not walk to it");
    }
    for (i, w) in PROBE.iter().enumerate() {
        w.store(pattern(1, i), Ordering::Relaxed);
    }
    hw::dsb();
    // SAFETY: `lin` is the linear-map alias of PROBE (checked by the walk above),
    // normal read/write memory; PROBE is only used here.
    if !unsafe { check_words(lin, PROBE.len(), 1) } {
        return Err("identity writes do not read back through the linear map");
    }
    // SAFETY: as above.
    unsafe { fill_words(lin, PROBE.len(), 2) };
    hw::dsb();
    if !PROBE
        .iter()
        .enumerate()
        .all(|(i, w)| w.load(Ordering::Relaxed) == pattern(2, i))
    {
        return Err("linear-map writes do not read back at the identity address");
    }
    zk_info!(
        "zonekit: linear map test: {} words at {:#010x} (identity) = {:#010x} (linear) both ways",
        PROBE.len(),
        id,
        lin
    );

    // 2. A lowmem page: linear map vs a PKMAP alias.
    let block = alloc
        .alloc_pages(0, Gfp::KERNEL, 0)
        .map_err(|_| "no lowmem page")?;
    let pfn = block.pfn();
    let va = alloc
        .page_address(pfn)
        .ok_or("page_address of a lowmem page")?;
    if va != mmu.phys_to_virt(pfn_phys(pfn)).map_or(0, u64::from) || va < u64::from(PAGE_OFFSET) {
        let _ = alloc.free_pages(0, block);
        return Err("page_address is not the linear-map address");
    }
    let va = va as u32;
    // SAFETY: the page was just allocated (ours alone) and is lowmem, mapped RW by
    // the linear map at `va`.
    unsafe { fill_words(va, PAGE_WORDS, pfn as u32) };
    let alias = mmu.kmap(pfn).map_err(|_| "kmap of a lowmem page")?;
    // SAFETY: kmap just mapped the page RW at `alias`.
    let ok = unsafe { check_words(alias, PAGE_WORDS, pfn as u32) };
    // SAFETY: as above; then read back through the linear map.
    unsafe { fill_words(alias, PAGE_WORDS, !(pfn as u32)) };
    // SAFETY: `va` as above.
    let ok = ok && unsafe { check_words(va, PAGE_WORDS, !(pfn as u32)) };
    mmu.kunmap(alias).map_err(|_| "kunmap")?;
    let _ = alloc.free_pages(0, block);
    if !ok {
        return Err("a lowmem page reads differently through the linear map and kmap");
    }
    zk_info!(
        "zonekit: linear map test: page pfn {:#x} at {:#010x} (linear) = {:#010x} (kmap) both ways",
        pfn,
        va,
        alias
    );

    // 3. Highmem pages.
    let max_low = alloc.config().max_low_pfn;
    let has_highmem = alloc.managed(zonekit_core::mmzone::ZoneType::HighMem) > 0;
    if has_highmem && highmem_pages > 0 {
        let mut pages: heapless::Vec<(zonekit_core::page_alloc::PageBlock, u32), 16> =
            heapless::Vec::new();
        let mut result = Ok(());
        for _ in 0..highmem_pages.min(16) {
            let Ok(b) = alloc.alloc_pages(0, Gfp::HIGHUSER_MOVABLE, 0) else {
                result = Err("no highmem page");
                break;
            };
            let pfn = b.pfn();
            if pfn < max_low || alloc.page_address(pfn).is_some() {
                let _ = pages.push((b, 0));
                result = Err("__GFP_HIGHMEM returned a lowmem page");
                break;
            }
            let v = match mmu.kmap(pfn) {
                Ok(v) => v,
                Err(_) => {
                    let _ = pages.push((b, 0));
                    result = Err("kmap of a highmem page");
                    break;
                }
            };
            // SAFETY: kmap just mapped the (freshly allocated, ours alone) page RW at v.
            unsafe { fill_words(v, PAGE_WORDS, pfn as u32 ^ 0x5A5A) };
            let _ = pages.push((b, v));
            if mmu.kunmap(v).is_err() || mmu.page_table().walk(v).is_some() {
                result = Err("kunmap left the slot mapped");
                break;
            }
        }
        let mut remapped = (0u32, 0u32);
        if result.is_ok() {
            for (b, first) in &pages {
                let pfn = b.pfn();
                let Ok(v) = mmu.kmap(pfn) else {
                    result = Err("second kmap of a highmem page");
                    break;
                };
                if remapped.0 == 0 {
                    remapped = (*first, v);
                }
                // SAFETY: kmap just mapped the page RW at v.
                let same = unsafe { check_words(v, PAGE_WORDS, pfn as u32 ^ 0x5A5A) };
                let walked = mmu.page_table().walk(v).map(|t| t.phys);
                let _ = mmu.kunmap(v);
                if v == *first {
                    result = Err("the second kmap reused the same slot");
                    break;
                }
                if !same || walked != Some(pfn_phys(pfn)) {
                    result = Err("a highmem page lost its pattern between two kmaps");
                    break;
                }
            }
        }
        let n = pages.len();
        let first_pfn = pages.first().map_or(0, |(b, _)| b.pfn());
        for (b, _) in pages {
            let _ = alloc.free_pages(0, b);
        }
        result?;
        if mmu.kmaps_in_use() != 0 {
            return Err("kmap slots leaked");
        }
        zk_info!(
            "zonekit: kmap test: {} highmem pages from pfn {:#x} (above max_low_pfn {:#x}): written at {:#010x}, kunmap, read back at {:#010x}",
            n,
            first_pfn,
            max_low,
            remapped.0,
            remapped.1
        );
    } else {
        zk_info!("zonekit: kmap test: no highmem on this boot, skipped");
    }

    // 4. Deliberate faults (test mode only).
    if test_abort {
        let unmapped = mmu.layout().vmalloc.0 + 0x1000;
        if mmu.page_table().walk(unmapped).is_some() {
            return Err("the probe address is mapped");
        }
        let (dfar, dfsr) =
            entry::probe_read(unmapped).ok_or("no data abort at an unmapped address")?;
        if dfar != unmapped {
            return Err("DFAR is not the probed address");
        }
        let fs = FaultStatus::from_dfsr(dfsr);
        zk_info!(
            "zonekit: test_abort: unmapped read caught: DFAR={:#010x} DFSR={:#010x} ({})",
            dfar,
            dfsr,
            fs.description()
        );
        // A PKMAP slot after kunmap: the TLB entry must be gone.
        let pfn = pfn_phys(alloc.config().max_low_pfn.saturating_sub(1)) >> 12;
        let v = mmu.kmap(pfn).map_err(|_| "kmap for the stale-slot probe")?;
        // SAFETY: kmap just mapped the page at v; reading it fills the TLB.
        let _ = unsafe { core::ptr::read_volatile(v as usize as *const u32) };
        mmu.kunmap(v).map_err(|_| "kunmap")?;
        let (dfar, dfsr) = entry::probe_read(v).ok_or("a freed kmap slot is still reachable")?;
        zk_info!(
            "zonekit: test_abort: freed kmap slot caught: DFAR={:#010x} DFSR={:#010x} ({})",
            dfar,
            dfsr,
            FaultStatus::from_dfsr(dfsr).description()
        );
    }
    Ok(())
}
