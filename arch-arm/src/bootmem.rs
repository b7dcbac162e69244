//! The ARM boot-memory flow. CONTRACT STUB: API fixed, bodies being implemented.
#![allow(unused_variables, missing_docs, dead_code)]

use zonekit_core::addr::MemRange;
use zonekit_core::arch::MmConfig;
use zonekit_core::mmzone::PgData;
use zonekit_core::{MemorySource, PageStorage};

/// What the boot code knows when it hands over to the memory flow.
pub struct BootParams<'a> {
    /// RAM banks, reservations, DMA zone size and command line.
    pub source: &'a dyn MemorySource,
    /// The running image from its first byte to the end of its stack and .bss.
    pub kernel_image: MemRange,
    /// Other things the boot code placed in RAM (the boot stub and ATAGS page, a DTB).
    pub boot_data: &'a [MemRange],
    /// Page-descriptor and order constants.
    pub mm: MmConfig,
}

/// Why the boot flow stopped.
#[derive(Debug)]
pub enum BootError {
    Todo,
}

/// The result of `bootmem_init`: the node with its zones and mem_map.
pub struct BootedMemory<S: PageStorage> {
    pub node: PgData<S>,
}

/// Run `arm_memblock_init`, `adjust_lowmem_bounds` and `bootmem_init`, printing the
/// Linux-format boot log.
pub fn boot<S: PageStorage>(params: &BootParams<'_>, storage: &mut S) -> Result<BootedMemory<S>, BootError> {
    unimplemented!()
}

impl<S: PageStorage> BootedMemory<S> {
    /// The in-guest self-check: every page reserved and linked, mem_map in RAM and
    /// reserved, totals consistent. Prints what it checked.
    pub fn self_check(&self) -> Result<(), BootError> {
        unimplemented!()
    }
}
