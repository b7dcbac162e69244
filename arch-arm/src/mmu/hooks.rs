//! OS hooks around the MMU switch, and building the table a plan describes.
//!
//! The hooks see the kernel table through [`MappingTable`], in the board's format
//! (short descriptors, or long ones on an LPAE board): they add mappings and walk
//! it the same way on either. They cannot change what is mapped already (a new
//! mapping may not overlap one), reach the table's memory or allocator, or swap the
//! table for another: the boot's own mappings (the code running, its stack, the
//! tables) stay as the plan made them.
//!
//! Linux counterpart: the `paging_init` steps around `create_mapping` and the switch in `__enable_mmu`/`__turn_mmu_on` (`arch/arm/kernel/head.S`).

use super::arm_table::{ArmPageTable, ArmTranslation};
use super::desc::{Access, MemType};
use super::plan::MappingRequest;
use super::table::TableAllocator;
use super::MmuError;

/// The kernel page table as [`MappingHooks`] see it.
#[derive(Debug)]
pub struct MappingTable<'t, A: TableAllocator>(&'t mut ArmPageTable<A>);

impl<'t, A: TableAllocator> MappingTable<'t, A> {
    /// The hooks' view of `pt`.
    pub fn new(pt: &'t mut ArmPageTable<A>) -> Self {
        MappingTable(pt)
    }

    /// True on an LPAE board (long descriptors).
    pub fn is_long(&self) -> bool {
        self.0.is_long()
    }

    /// `create_mapping`: map `[virt, virt + size)` to `phys` in the table's format
    /// (sections or blocks where alignment allows, pages elsewhere); nothing in the
    /// range may be mapped already.
    pub fn create_mapping(
        &mut self,
        virt: u32,
        phys: u64,
        size: u32,
        mem: MemType,
        access: Access,
        exec: bool,
    ) -> Result<(), MmuError> {
        match self.0 {
            ArmPageTable::Short(pt) => pt.create_mapping(virt, phys, size, mem, access, exec),
            ArmPageTable::Long(pt) => {
                pt.create_mapping(virt, phys, u64::from(size), mem, access, exec)
            }
        }
    }

    /// Apply one mapping request.
    pub fn apply(&mut self, req: &MappingRequest) -> Result<(), MmuError> {
        self.0.apply(req)
    }

    /// Translate `virt` as the MMU would (`None`: a translation fault).
    pub fn walk(&self, virt: u32) -> Option<ArmTranslation> {
        self.0.walk(virt)
    }
}

/// What an OS may do around the MMU switch: add its own mappings to the table
/// before it is installed, and move to virtual addresses afterwards (switch its
/// console to the device window, drop the identity map, ...). Both default to
/// doing nothing; both run on every board, whatever its table format.
pub trait MappingHooks<A: TableAllocator> {
    /// Called with the complete table, before it is installed.
    fn before_mmu_on(&mut self, pt: &mut MappingTable<'_, A>) -> Result<(), MmuError> {
        let _ = pt;
        Ok(())
    }

    /// Called right after the MMU is on, still running from the identity map.
    fn after_mmu_on(&mut self, pt: &mut MappingTable<'_, A>) -> Result<(), MmuError> {
        let _ = pt;
        Ok(())
    }
}

/// Hooks that do nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMappingHooks;

impl<A: TableAllocator> MappingHooks<A> for NoMappingHooks {}

/// Allocate a table of the chosen format from `alloc` (`lpae`: long
/// descriptors), apply every request of `plan` in order, then run
/// `hooks.before_mmu_on`. A table for `hw::enable_mmu`, which runs the hooks
/// itself, is built with [`NoMappingHooks`].
pub fn build_page_table<A: TableAllocator, H: MappingHooks<A>>(
    alloc: A,
    lpae: bool,
    plan: &[MappingRequest],
    hooks: &mut H,
) -> Result<ArmPageTable<A>, MmuError> {
    let mut pt = ArmPageTable::new(alloc, lpae)?;
    for r in plan {
        pt.apply(r)?;
    }
    hooks.before_mmu_on(&mut MappingTable::new(&mut pt))?;
    Ok(pt)
}
