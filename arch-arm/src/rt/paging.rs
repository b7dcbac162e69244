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
//!    ([`hw::install_and_enable`]: ACTLR.SMP, TEX remap, caches and branch
//!    prediction on as Linux's `__v7_setup`, unless `zonekit.nocache`), moves the
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
use crate::mmu::kernel::{log_mmu_on, ttbr0_of};
use crate::mmu::selftest::{self, Fault, MmuTestError, VirtualMemory, PROBE_WORDS};
use crate::mmu::{
    device_virt, early, print_virtual_layout, KernelTableMemory, LinearMap, MappingHooks,
    MappingTable, TlbFlush, VirtualLayout, PAGE_OFFSET,
};
use core::sync::atomic::AtomicU32;
use zonekit_core::fmt::LogLines;
use zonekit_core::page_alloc::PageAllocator;
use zonekit_core::{PageStorage, PhysAddr};

/// Page-table memory during boot: memblock's `early_alloc`
/// ([`crate::mmu::early::EarlyTables`]), reached through [`DirectTableMemory`]
/// (identity before the switch, the linear map after).
pub type EarlyTables<'a> = early::EarlyTables<'a, PhysPageStorage, DirectTableMemory>;

impl KernelTableMemory for DirectTableMemory {
    fn sync_table_word(&mut self, phys: PhysAddr) {
        if let Some(va) = self.virt(phys) {
            hw::sync_table_write(va);
        }
    }

    fn flush_tlb(&mut self, flush: TlbFlush) {
        hw::dsb();
        hw::tlb_flush(flush);
    }
}

/// The live kernel tables, reached through the linear map.
pub type KernelMmu = crate::mmu::KernelMmu<DirectTableMemory>;

/// The guest's `paging_init` (see the module documentation).
pub struct ArmPaging<H> {
    board: &'static BoardDesc,
    console: &'static dyn Console,
    counter: Option<&'static dyn MonotonicCounter>,
    hooks: H,
    caches: bool,
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
            caches: true,
            mmu: None,
        }
    }

    /// Whether the MMU switch turns the caches on (the default; `false` for
    /// `zonekit.nocache`).
    pub fn set_caches(&mut self, caches: bool) {
        self.caches = caches;
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
        // pointers; only the ranges the table allocator claims are reached: memblock
        // allocations inside [phys_offset, lowmem_end), RAM reserved for the tables
        // and used by nothing else.
        let mem = unsafe { DirectTableMemory::new(phys_offset, lowmem_end, 0) };
        let mut built = early::build_kernel_tables(ctx, self.board, mem, &mut self.hooks)?;
        let l1 = built.pt.l1_phys();
        let long = built.pt.is_long();
        hw::dsb();
        // SAFETY: the plan identity-maps the whole image (code, statics, the boot and
        // exception stacks: `kernel_image` runs to the end of .bss and the stacks) as
        // normal, executable, kernel read/write memory, so execution continues at the
        // same addresses; the switch makes the tables visible to the walker (the data
        // cache was off since reset, or it is cleaned first); the MMU is off; the
        // format the function expects is the table's. Nothing but the console
        // (remapped right below, before any print) and memblock memory (reached
        // through the linear map from then on) is accessed outside the image
        // afterwards.
        unsafe {
            if long {
                hw::install_and_enable_long(l1, self.caches);
            } else {
                hw::install_and_enable(l1 as u32, self.caches);
            }
        }
        // SAFETY: the plan mapped the UART's block at `uart_virt` as device memory
        // and the MMU is now on with that plan.
        unsafe { self.console.remap(built.uart_virt as usize) };
        if let (Some(counter), base @ 1..) = (self.counter, self.board.timer.base) {
            if let Some(v) = device_virt(&built.plan, base) {
                // SAFETY: as for the console: `v` is the timer block's device mapping.
                unsafe { counter.remap(v as usize) };
            }
        }
        let virt_offset = PAGE_OFFSET.wrapping_sub(phys_offset as u32);
        {
            let a = built.pt.allocator_mut();
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
        log_mmu_on(
            long,
            ttbr0_of(&built.pt),
            hw::read_ttbcr(),
            hw::read_sctlr(),
            built.pt.table_count(),
            built.uart_virt,
        );
        self.hooks
            .after_mmu_on(&mut MappingTable::new(&mut built.pt))?;
        let mut out = LogLines::new();
        // Writing to the log cannot fail.
        let _ = print_virtual_layout(&mut out, &VirtualLayout::of_plan(&built.plan));
        let linear = LinearMap {
            phys_offset,
            lowmem_end,
        };
        self.mmu = Some(KernelMmu::from_early(built, linear));
        Ok(Some(u64::from(PAGE_OFFSET)))
    }
}

/// The image's probe buffer for the linear-map test: reachable at its identity
/// address and through the linear map. Exported so that the simulator finds its
/// address in the ELF and runs the same test on the same address.
#[export_name = "zonekit_mmu_probe"]
static PROBE: [AtomicU32; PROBE_WORDS] = [const { AtomicU32::new(0) }; PROBE_WORDS];

/// The guest's [`VirtualMemory`]: plain loads and stores, translated by the MMU.
struct GuestMemory(());

impl VirtualMemory<DirectTableMemory> for GuestMemory {
    fn read(&mut self, _mmu: &KernelMmu, va: u32) -> Result<u32, Fault> {
        // SAFETY: `mmu_self_test` reads only memory it owns that its tables map
        // (PROBE at its identity address or linear alias, pages it allocated at
        // their linear or PKMAP address; see [`VirtualMemory`]); a mistake in the
        // tables is a data abort, which is fatal, not undefined behaviour.
        Ok(unsafe { core::ptr::read_volatile(va as usize as *const u32) })
    }

    fn write(&mut self, _mmu: &KernelMmu, va: u32, value: u32) -> Result<(), Fault> {
        // SAFETY: as in `read`: the test writes only memory it owns (PROBE is atomic
        // words used by nothing else; the pages were allocated for the test).
        unsafe { core::ptr::write_volatile(va as usize as *mut u32, value) };
        Ok(())
    }

    fn probe_read(&mut self, _mmu: &KernelMmu, va: u32) -> Option<Fault> {
        entry::probe_read(va).map(|(dfar, dfsr)| Fault { dfar, dfsr })
    }

    fn barrier(&mut self) {
        hw::dsb();
    }
}

/// The MMU self-tests ([`selftest::mmu_self_test`]) on the live tables, through the
/// MMU itself, with the image's probe buffer.
pub(crate) fn mmu_self_test<S: PageStorage, const N: usize>(
    mmu: &mut KernelMmu,
    alloc: &mut PageAllocator<S, N>,
    highmem_pages: usize,
    test_abort: bool,
) -> Result<(), MmuTestError> {
    let probe = PROBE.as_ptr() as usize as u32;
    selftest::mmu_self_test(
        mmu,
        &mut GuestMemory(()),
        alloc,
        probe,
        highmem_pages,
        test_abort,
    )
}
