//! The kernel's mappings once `paging_init` is done: the page table, the PKMAP slots,
//! the lowmem linear map and the virtual layout, as one [`KernelMmu`].
//!
//! It is generic over where the table words live ([`KernelTableMemory`]): physical
//! memory through the linear map in the guest (`rt::paging`), a map of chunks in the
//! simulator. The guest and the simulator build it from the same
//! [`EarlyPaging`] and run the same
//! [`self-tests`](super::selftest) on it, so they print the same lines.

use heapless::Vec;
use zonekit_core::addr::{Pfn, PhysAddr};
use zonekit_core::{zk_info, PageStorage};

use super::early::{EarlyPaging, EarlyTables};
use super::{
    device_virt, ArmPageTable, LinearMap, MappingRequest, MmuError, Pkmap, TableAllocator,
    TableMemory, TlbFlush, VirtualLayout,
};

/// Table memory of the live kernel tables: [`TableMemory`] plus the maintenance a
/// table write needs with the MMU on: the written word made visible to the walker
/// (clean to PoC, DSB, ISB on the target) and, for a removed entry, the TLB
/// invalidated (TLBIMVA / TLBIALL); nothing where no cache or TLB exists.
pub trait KernelTableMemory: TableMemory {
    /// The table word at physical `phys` was just written: make it visible to the
    /// table walker.
    fn sync_table_word(&mut self, phys: PhysAddr);
    /// Carry out `flush` after the tables changed (DSB first on the target).
    fn flush_tlb(&mut self, flush: TlbFlush);
}

/// Page-table memory once memblock is retired: the existing tables. New tables are
/// refused (the PKMAP table was allocated up front by `kmap_init`, so `kmap` never
/// needs one).
#[derive(Debug)]
pub struct KernelTables<M> {
    mem: M,
}

impl<M: TableMemory> TableMemory for KernelTables<M> {
    fn words(&self, phys: PhysAddr, count: usize) -> Option<&[u32]> {
        self.mem.words(phys, count)
    }

    fn words_mut(&mut self, phys: PhysAddr, count: usize) -> Option<&mut [u32]> {
        self.mem.words_mut(phys, count)
    }
}

impl<M: TableMemory> TableAllocator for KernelTables<M> {
    fn alloc_table(&mut self, bytes: usize, align: usize) -> Result<PhysAddr, MmuError> {
        Err(MmuError::OutOfTableMemory { bytes, align })
    }
}

/// The live kernel page table with its PKMAP slots and linear map.
#[derive(Debug)]
pub struct KernelMmu<M: TableMemory> {
    pt: ArmPageTable<KernelTables<M>>,
    pkmap: Pkmap,
    linear: LinearMap,
    layout: VirtualLayout,
    plan: Vec<MappingRequest, 32>,
}

impl<M: KernelTableMemory> KernelMmu<M> {
    /// The tables `paging_init` built, memblock given up, for lowmem `linear`.
    pub fn from_early<S: PageStorage>(
        early: EarlyPaging<EarlyTables<'_, S, M>>,
        linear: LinearMap,
    ) -> Self {
        let layout = VirtualLayout::of_plan(&early.plan);
        Self {
            pt: early.pt.map_allocator(|a| KernelTables {
                mem: a.into_memory(),
            }),
            pkmap: Pkmap::new(),
            linear,
            layout,
            plan: early.plan,
        }
    }

    /// The page table.
    pub fn page_table(&self) -> &ArmPageTable<KernelTables<M>> {
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
        let fresh = self.pkmap.lookup(pfn).is_none();
        let virt = self.pkmap.map(pfn)?;
        if fresh {
            if let Err(e) = self.pt.set_kmap_entry(virt, pfn) {
                let _ = self.pkmap.unmap(virt);
                return Err(e);
            }
            self.sync_entry(virt);
        }
        Ok(virt)
    }

    /// Cache maintenance for the second-level entry of `virt`, just written.
    fn sync_entry(&mut self, virt: u32) {
        if let Some(phys) = self.pt.leaf_entry_phys(virt) {
            self.pt.allocator_mut().mem.sync_table_word(phys);
        }
    }

    /// `kunmap`: drop a reference; when the slot becomes free its entry is cleared
    /// and its TLB entry invalidated.
    pub fn kunmap(&mut self, virt: u32) -> Result<(), MmuError> {
        let flush = self.pkmap.unmap(virt)?;
        if let TlbFlush::Page(va) = flush {
            self.pt.clear_kmap_entry(va)?;
            self.sync_entry(va);
        }
        self.pt.allocator_mut().mem.flush_tlb(flush);
        Ok(())
    }

    /// PKMAP slots in use.
    pub fn kmaps_in_use(&self) -> usize {
        self.pkmap.in_use()
    }
}

/// The `zonekit.*` words of the command line that shape the MMU bring-up, read the
/// same way by the guest and the simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuOptions {
    /// `zonekit.nommu`: no `paging_init`, the MMU stays off.
    pub nommu: bool,
    /// `zonekit.nocache`: the MMU on with the caches off.
    pub nocache: bool,
    /// `zonekit.test_abort`: the MMU self-tests add two deliberate data aborts.
    pub test_abort: bool,
}

impl MmuOptions {
    /// The options `cmdline` sets.
    pub fn parse(cmdline: &str) -> Self {
        let mut o = Self::default();
        for word in cmdline.split_ascii_whitespace() {
            o.nommu |= word == "zonekit.nommu";
            o.nocache |= word == "zonekit.nocache";
            o.test_abort |= word == "zonekit.test_abort";
        }
        o
    }
}

/// The line a `zonekit.nommu` boot prints.
pub const NOMMU_LINE: &str = "zonekit: zonekit.nommu: no paging_init, the MMU stays off";

/// TTBR0 for the kernel table `pt`: its first-level table with the walk attributes
/// (short descriptors), or the 64-bit TTBR0 of its first-level table (LPAE).
pub fn ttbr0_of<A: TableAllocator>(pt: &super::ArmPageTable<A>) -> u64 {
    let l1 = pt.l1_phys();
    if pt.is_long() {
        super::regs::ttbr0_long_value(l1)
    } else {
        u64::from(super::regs::ttbr0_value(l1 as u32))
    }
}

/// The boot-log line of the MMU switch: the table format, TTBR0 (64-bit with long
/// descriptors), TTBCR and SCTLR as programmed (caches on when SCTLR.C and .I are set),
/// the number of tables below the first level, where the console went.
pub fn log_mmu_on(
    long: bool,
    ttbr0: u64,
    ttbcr: u32,
    sctlr: u32,
    tables: usize,
    console_virt: u32,
) {
    let caches = if super::regs::caches_on(sctlr) {
        "on"
    } else {
        "off"
    };
    if long {
        zk_info!(
            "zonekit: MMU on (LPAE long descriptors, TTBR0 {:#018x}, TTBCR {:#010x}, SCTLR {:#010x}, caches {}), {} second/third-level tables, console at {:#010x}",
            ttbr0,
            ttbcr,
            sctlr,
            caches,
            tables,
            console_virt
        );
    } else {
        zk_info!(
            "zonekit: MMU on (TTBR0 {:#010x}, TTBCR {:#010x}, SCTLR {:#010x}, caches {}), {} second-level tables, console at {:#010x}",
            ttbr0,
            ttbcr,
            sctlr,
            caches,
            tables,
            console_virt
        );
    }
}
