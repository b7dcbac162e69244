//! Where a caller takes part in the boot: one trait, every method with a default.
//!
//! The boot runs the same code everywhere ([`crate::flow`] over
//! [`crate::bootmem::boot`]): on the target, in `cargo xtask sim` and in host tests.
//! What differs is the [`PageStorage`] and these hooks. The guest's `paging_init`
//! (page tables from memblock, the MMU switch), its timings, fault injection, stack
//! check and MMU self-tests are hooks; the simulator's checks of what the guest
//! would touch are hooks; a test passes [`NoHooks`].
//!
//! Linux has no such trait: these are the points where `setup_arch`, `mm_init` and
//! the arch's `paging_init` differ between machines and configurations.

use zonekit_core::page_alloc::MAX_CPUS;
use zonekit_core::PageStorage;

use crate::bootmem::{BootError, BootParams, BootedMemory, PagingContext, RunningMemory};

/// Points of the boot flow a caller can time or act at ([`BootHooks::step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootStep {
    /// The memory source is chosen; `bootmem::boot` starts.
    MemoryInitStart,
    /// Just before `free_area_init_node` (mem_map allocation, `free_area_init_core`,
    /// `memmap_init`).
    FreeAreaInitStart,
    /// Just after `free_area_init_node`.
    FreeAreaInitEnd,
    /// Just before `memblock_free_all`.
    FreeAllStart,
    /// Just after `memblock_free_all`.
    FreeAllEnd,
    /// `mem_init` is done: the page allocator owns every free page.
    MemoryInitEnd,
}

/// A hook's reason to stop the boot, with the guest's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookStop {
    /// What failed (`"MMU self-test"`).
    pub what: &'static str,
    /// Why.
    pub why: &'static str,
    /// The guest's exit status for it.
    pub exit_code: u32,
}

impl core::fmt::Display for HookStop {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} failed: {}", self.what, self.why)
    }
}

/// The caller's part in the boot. Every method has an empty default, so a caller
/// implements only what it does.
pub trait BootHooks<S: PageStorage> {
    /// The command line is known (the memory source is chosen): the caller reads the
    /// words meant for it (`zonekit.fault=`, `zonekit.nommu`, ...).
    fn cmdline(&mut self, _cmdline: &str) {}

    /// Linux's `paging_init`, between `adjust_lowmem_bounds`/`arm_memblock_init` and
    /// `bootmem_init`, so that its page tables come from memblock like Linux's
    /// `early_alloc`. Returns the virtual address of `phys_offset` (`PAGE_OFFSET`)
    /// when it switched to a linear map, `None` when addressing stays the identity.
    /// The default builds no tables.
    fn paging_init(&mut self, _ctx: PagingContext<'_, S>) -> Result<Option<u64>, BootError> {
        Ok(None)
    }

    /// The flow reached `step` (for timing).
    fn step(&mut self, _step: BootStep) {}

    /// `bootmem_init` is done: the node, zones and memblock as Linux has them then.
    fn booted(&mut self, _params: &BootParams<'_>, _booted: &BootedMemory<S>) {}

    /// `mem_init` is done, before any report or self-test.
    fn mem_init_done(&mut self, _running: &RunningMemory<S, MAX_CPUS>) {}

    /// The page allocator self-test passed; the caller's own tests run here (the
    /// guest's MMU self-tests). An error stops the boot with its exit status.
    fn running(&mut self, _running: &mut RunningMemory<S, MAX_CPUS>) -> Result<(), HookStop> {
        Ok(())
    }

    /// Just before the verdict line, on every path (the guest reports its stack use).
    fn before_verdict(&mut self) {}
}

/// Hooks that do nothing: identity addressing, no timing, no extra tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl<S: PageStorage> BootHooks<S> for NoHooks {}
