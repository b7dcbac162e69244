//! # zonekit-arch-arm
//!
//! The ARM32 (ARMv7-A) side of zonekit: how lowmem is bounded
//! (`adjust_lowmem_bounds`, `find_limits`), how RAM is split into zones
//! (`zone_sizes_init`, `arm_adjust_dma_zone`), the `bootmem_init` flow that ties them
//! to zonekit-core, ATAGS and device-tree ([`fdt`]) parsing, and, on the target only,
//! the boot entry, exception vectors, semihosting and the physical page storage.
//!
//! ## One boot, one entry per layer
//!
//! | layer | entry | what it runs |
//! |---|---|---|
//! | memory flow | [`bootmem::boot`] | memblock from a `MemorySource`, `arm_memblock_init`, `adjust_lowmem_bounds`, the hooks' `paging_init`, `bootmem_init` |
//! | pipeline | [`flow::boot`] (to a running allocator), [`flow::run`] (plus self-tests and the verdict) | the memory source chosen from r2, [`bootmem::boot`], the self-check, `mem_init` |
//! | target runtime | `rt::boot_memory` (for a kernel: memory from the boot registers or its own `MemorySource`; allocator and MMU back), `rt::boot_main` (the board binaries: self-tested boot, semihosting exit) | [`flow`] with the guest's [`hooks::BootHooks`] (MMU switch, timing, MMU self-tests) |
//!
//! The guest, `cargo xtask sim`, the host tests and the examples all run this one
//! pipeline; what differs is the `PageStorage` and the [`hooks::BootHooks`].
#![no_std]
// `unsafe` is allowed only in the runtime (`rt`), the drivers (`mmio`, `timer`) and
// the MMU's hardware module (`mmu::hw`), on every target.
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[cfg(any(test, feature = "build"))]
extern crate std;

pub mod atags;
pub mod board;
pub mod bootmem;
pub mod fdt;
pub mod flow;
pub mod hooks;
pub mod limits;
pub mod link;
#[allow(unsafe_code)]
pub mod mmio;
pub mod mmu;
#[cfg(feature = "build")]
pub mod profile;
pub mod smp;
#[allow(unsafe_code)]
pub mod timer;
pub mod uart;

#[cfg(all(target_arch = "arm", target_os = "none"))]
#[allow(unsafe_code)]
pub mod rt;
