//! Linux's `paging_init` table building (`map_lowmem`, `devicemaps_init`, `kmap_init`
//! with `early_alloc`), shared by the guest runtime and the simulator.
//!
//! Both plan the same kernel mappings and take every table from memblock the way
//! Linux's `early_alloc` does (`memblock_alloc_try_nid(size, align, 0,
//! MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE)`, zeroed through the page storage), so the
//! `memblock=debug` trace, `mem_map`'s address and the `Memory:` line agree. What
//! differs is where the table words live ([`TableMemory`]: physical memory in the
//! guest, a map of chunks in the simulator) and what happens next: only the guest
//! switches the MMU on (`rt::paging`).

use heapless::Vec;
use zonekit_core::addr::PhysAddr;
use zonekit_core::memblock::{MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE};
use zonekit_core::{zk_debug, PageStorage};

use super::{
    build_page_table, device_virt, plan_kernel_mappings, ArmPageTable, MappingHooks,
    MappingRequest, MmuError, TableAllocator, TableMemory,
};
use crate::board::BoardDesc;
use crate::bootmem::{BootError, BootMemblock, PagingContext};

/// Page-table memory during boot: `early_alloc` from memblock, the words reached
/// through `M`.
pub struct EarlyTables<'a, S: PageStorage, M> {
    mem: M,
    memblock: &'a mut BootMemblock,
    storage: &'a mut S,
}

impl<S: PageStorage, M> core::fmt::Debug for EarlyTables<'_, S, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EarlyTables").finish_non_exhaustive()
    }
}

impl<'a, S: PageStorage, M> EarlyTables<'a, S, M> {
    /// How the table words are reached.
    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.mem
    }

    /// The page storage the tables are zeroed through.
    pub fn storage_mut(&mut self) -> &mut S {
        self.storage
    }

    /// Give up memblock (it is retired after `mem_init`), keeping the table memory.
    pub fn into_memory(self) -> M {
        self.mem
    }
}

impl<S: PageStorage, M: TableMemory> TableMemory for EarlyTables<'_, S, M> {
    fn words(&self, phys: PhysAddr, count: usize) -> Option<&[u32]> {
        self.mem.words(phys, count)
    }

    fn words_mut(&mut self, phys: PhysAddr, count: usize) -> Option<&mut [u32]> {
        self.mem.words_mut(phys, count)
    }

    fn claim(&mut self, phys: PhysAddr, bytes: usize) -> Result<(), MmuError> {
        self.mem.claim(phys, bytes)
    }
}

impl<S: PageStorage, M: TableMemory> TableAllocator for EarlyTables<'_, S, M> {
    /// `early_alloc`: `memblock_alloc(size, align)`, zeroed through the page storage.
    fn alloc_table(&mut self, bytes: usize, align: usize) -> Result<PhysAddr, MmuError> {
        let phys = self
            .memblock
            .alloc_try_nid(
                self.storage,
                bytes as u64,
                align as u64,
                0,
                MEMBLOCK_ALLOC_ACCESSIBLE,
                NUMA_NO_NODE,
            )
            .map_err(|_| MmuError::OutOfTableMemory { bytes, align })?;
        self.mem.claim(phys, bytes)?;
        Ok(phys)
    }
}

/// The kernel page table as `paging_init` built it, before any MMU switch.
pub struct EarlyPaging<A: TableAllocator> {
    /// The table (long descriptors on an LPAE board).
    pub pt: ArmPageTable<A>,
    /// The mappings it holds.
    pub plan: Vec<MappingRequest, 32>,
    /// Where the console UART is mapped (the device window).
    pub uart_virt: u32,
}

/// Plan the kernel mappings of `board` for lowmem `[phys_offset, lowmem_limit)` and
/// the image, log them (`zonekit: map ...` at debug level), and build the table from
/// memblock into `mem` in the board's format, running the OS's `before_mmu_on` hook on
/// it.
pub fn build_kernel_tables<'a, S, M, H>(
    ctx: PagingContext<'a, S>,
    board: &BoardDesc,
    mem: M,
    hooks: &mut H,
) -> Result<EarlyPaging<EarlyTables<'a, S, M>>, BootError>
where
    S: PageStorage,
    M: TableMemory,
    H: MappingHooks<EarlyTables<'a, S, M>>,
{
    let phys_offset = ctx.arch.phys_offset;
    let plan = plan_kernel_mappings(
        (phys_offset, ctx.lowmem_limit),
        phys_offset,
        (ctx.kernel_image.base, ctx.kernel_image.end()),
        board.mmio,
    )?;
    let uart_virt = device_virt(&plan, board.uart_base).ok_or(MmuError::DeviceInvalid {
        name: "console uart",
    })?;
    for r in &plan {
        zk_debug!(
            "zonekit: map {:<8} {:#010x}-{:#010x} -> {:#010x} {:?}{}",
            r.name,
            r.virt,
            r.virt_end() - 1,
            r.phys,
            r.mem,
            if r.exec { " exec" } else { "" }
        );
    }
    let alloc = EarlyTables {
        mem,
        memblock: ctx.memblock,
        storage: ctx.storage,
    };
    let pt = build_page_table(alloc, board.lpae, &plan, hooks)?;
    Ok(EarlyPaging {
        pt,
        plan,
        uart_virt,
    })
}
