//! # zonekit-arch-arm
//!
//! The ARM32 (ARMv7-A) side of zonekit: how lowmem is bounded
//! (`adjust_lowmem_bounds`, `find_limits`), how RAM is split into zones
//! (`zone_sizes_init`, `arm_adjust_dma_zone`), the `bootmem_init` flow that ties them
//! to zonekit-core, ATAGS and device-tree ([`fdt`]) parsing, and, on the target only,
//! the boot entry, exception vectors, semihosting and the physical page storage.
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
#[allow(unsafe_code)]
pub mod timer;

#[cfg(all(target_arch = "arm", target_os = "none"))]
#[allow(unsafe_code)]
pub mod rt;
