//! OS hooks around the MMU switch, and building the table a plan describes.
//!
//! Linux counterpart: the `paging_init` steps around `create_mapping` and the switch in `__enable_mmu`/`__turn_mmu_on` (`arch/arm/kernel/head.S`).

use super::plan::MappingRequest;
use super::table::{PageTable, TableAllocator};
use super::MmuError;

/// What an OS may do around the MMU switch: add its own mappings to the table
/// before it is installed, and move to virtual addresses afterwards (switch its
/// console to the device window, drop the identity map, ...). Both default to
/// doing nothing. They take a short-descriptor [`PageTable`]: on an LPAE board
/// (long descriptors) they are not run yet.
pub trait MappingHooks<A: TableAllocator> {
    /// Called with the complete table, before it is installed.
    fn before_mmu_on(&mut self, pt: &mut PageTable<A>) -> Result<(), MmuError> {
        let _ = pt;
        Ok(())
    }

    /// Called right after the MMU is on, still running from the identity map.
    fn after_mmu_on(&mut self, pt: &mut PageTable<A>) -> Result<(), MmuError> {
        let _ = pt;
        Ok(())
    }
}

/// Hooks that do nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMappingHooks;

impl<A: TableAllocator> MappingHooks<A> for NoMappingHooks {}

/// Allocate a table from `alloc`, apply every request of `plan` in order, then
/// run `hooks.before_mmu_on`. The table is ready for `hw::enable_mmu`.
pub fn build_page_table<A: TableAllocator, H: MappingHooks<A>>(
    alloc: A,
    plan: &[MappingRequest],
    hooks: &mut H,
) -> Result<PageTable<A>, MmuError> {
    let mut pt = PageTable::new(alloc)?;
    for r in plan {
        pt.apply(r)?;
    }
    hooks.before_mmu_on(&mut pt)?;
    Ok(pt)
}
