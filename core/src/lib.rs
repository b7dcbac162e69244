//! # zonekit-core
//!
//! Linux's ARM32 boot-memory model as a `no_std`, heap-free library:
//!
//! * [`memblock`]: the early region allocator (`mm/memblock.c`), which places every
//!   allocation exactly where Linux would;
//! * [`memtest`]: `early_memtest`, the `memtest=` pattern test of free memory;
//! * [`mmtypes`]: the plain `enum zone_type` and `enum migratetype`;
//! * [`zone`]: node and zones (`struct zone`, `pg_data_t`, `struct free_area`);
//! * [`mm_init`]: their boot initialisation (`free_area_init_node`,
//!   `calculate_node_totalpages`, `alloc_node_mem_map`, `free_area_init_core`,
//!   `memmap_init`); [`mmzone`] re-exports the three under one name;
//! * [`page_alloc`], [`buddy`], [`watermark`], [`report`]: `memblock_free_all` and the
//!   buddy page allocator with per-CPU lists, Linux 6.1 watermarks and `/proc` reports;
//! * the traits through which an architecture ([`ArchLimits`]), a board
//!   ([`MemorySource`]) and the page-descriptor memory ([`PageStorage`]) plug in.
//!
//! Everything here is plain safe Rust and runs in `cargo test` on the host; the
//! only place where a physical address becomes a pointer is an implementation of
//! [`PageStorage`], which lives in the arch crate (or, on the host, is a `Vec`).
#![no_std]
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

#[macro_use]
pub mod fmt;

/// The `defmt` crate, for the `zk_*!` macros' `defmt` backend.
#[cfg(feature = "defmt")]
#[doc(hidden)]
pub use defmt as __defmt;

pub mod addr;
pub mod arch;
pub mod cma;
pub mod cmdline;
pub mod memblock;
pub mod memtest;
pub mod mm_init;
pub mod mmtypes;
pub mod mmzone;
pub mod page;
pub mod page_alloc;
pub mod percpu;
pub mod report;
pub mod selftest;
pub mod source;
pub mod storage;
pub mod zone;

/// The buddy lists and the watermark formulas live under [`page_alloc`]; their old
/// paths `zonekit_core::buddy` and `zonekit_core::watermark` keep working.
pub use page_alloc::{buddy, watermark};

pub use addr::{MemRange, Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
pub use arch::{ArchLimits, MmConfig};
pub use source::{MemorySource, SourceError};
pub use storage::{PageStorage, StorageError};
