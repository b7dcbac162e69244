//! The MMU paging layer: ARMv7-A translation tables in both of Linux's formats
//! (short descriptors, and LPAE long descriptors) and Linux's `paging_init` plan
//! (`map_lowmem`, `devicemaps_init`, `kmap_init`).
//!
//! * [`desc`]: level-typed descriptors ([`L1Entry`], [`L2Entry`]) with bit-exact
//!   encoders and decoders (ARM ARM B3.5.1), memory types and access permissions;
//! * [`desc_long`]: the LPAE long-descriptor entries ([`desc_long::LongL1Entry`] 1 GiB,
//!   [`desc_long::LongL2Entry`] 2 MiB, [`desc_long::LongL3Entry`] 4 KiB);
//! * [`table`]: the [`PageTable`] builder over a [`TableAllocator`];
//! * [`table_long`]: the LPAE builder ([`table_long::LongPageTable`]);
//! * [`arm_table`]: the kernel table in either format ([`ArmPageTable`]), chosen per board;
//! * [`table_memory`]: where tables live ([`TableMemory`], [`TableAllocator`]);
//! * [`plan`]: the kernel virtual layout ([`plan_kernel_mappings`],
//!   [`print_virtual_layout`], linear-map helpers);
//! * [`pkmap`]: `kmap`/`kunmap` over the PKMAP window ([`Pkmap`]);
//! * [`hooks`]: OS hooks around the MMU switch ([`MappingHooks`], which see the table
//!   as a [`MappingTable`]) and [`build_page_table`];
//! * [`early`]: building the kernel tables from memblock at boot, the same for the
//!   guest and the simulator;
//! * [`kernel`]: the live tables after `paging_init` ([`KernelMmu`]: linear map, kmap);
//! * [`selftest`]: the MMU self-tests the guest and the simulator both run;
//! * [`regs`]: the CP15 register values the switch programs (host-testable);
//! * `hw` (target only): the CP15 writes themselves.
//!
//! Everything except `hw` is safe Rust and runs in `cargo test` on the host. No
//! function here panics on any input: every error is an [`MmuError`].
//!
//! ```
//! use zonekit_arch_arm::mmu::*;
//!
//! // 512 MiB of RAM at 0x60000000, the image at its start, one UART.
//! let uart = DeviceRegion { name: "uart0", phys: 0x1000_9000, size: 0x1000 };
//! let plan = plan_kernel_mappings(
//!     (0x6000_0000, 0x8000_0000), 0x6000_0000, (0x6000_8000, 0x6040_0000), &[uart],
//! )?;
//! // On the host, table memory is a Vec standing for physical 0x7f000000.
//! let mut ram = vec![0u32; 16 * 1024];
//! let alloc = SliceTableAllocator::new(0x7F00_0000, &mut ram);
//! // Short descriptors (`true`: LPAE long descriptors).
//! let pt = build_page_table(alloc, false, &plan, &mut NoMappingHooks)?;
//! assert_eq!(pt.walk(0xC000_1234).map(|t| t.phys), Some(0x6000_1234));
//! assert_eq!(device_virt(&plan, 0x1000_9000), Some(0xF800_9000));
//! let short = pt.into_short().expect("short descriptors");
//! assert!(matches!(short.l1_entry(0xC000_0000).decode(), L1Kind::Section { .. }));
//! let _: L2Entry = L2Entry::FAULT;
//! # Ok::<(), MmuError>(())
//! ```

pub mod arm_table;
pub mod desc;
pub mod desc_long;
pub mod early;
pub mod hooks;
pub mod kernel;
pub mod pkmap;
pub mod plan;
pub mod regs;
pub mod selftest;
pub mod table;
pub mod table_long;
pub mod table_memory;

#[cfg(all(target_arch = "arm", target_os = "none"))]
#[allow(unsafe_code)]
pub mod hw;

pub use arm_table::{ArmPageTable, ArmTranslation};
pub use desc::{Access, Attrs, L1Entry, L1Kind, L2Entry, L2Kind, MemType};
pub use hooks::{build_page_table, MappingHooks, MappingTable, NoMappingHooks};
pub use kernel::{KernelMmu, KernelTableMemory, KernelTables};
pub use pkmap::Pkmap;
pub use plan::{
    device_virt, phys_to_virt, plan_kernel_mappings, print_virtual_layout, virt_to_phys,
    DeviceRegion, LinearMap, MappingKind, MappingRequest, VirtualLayout, LAST_PKMAP, PAGE_OFFSET,
    PKMAP_BASE,
};
pub use table::{
    AllocFn, LeafKind, Mapping, Mappings, PageTable, SliceTableAllocator, TableAllocator,
    TableMemory, TlbFlush, Translation, Unmapped,
};

use zonekit_core::PhysAddr;

/// Why a paging operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmuError {
    /// A zero-length request.
    ZeroSize,
    /// Virtual address, physical address or size not 4 KiB aligned.
    Misaligned {
        /// Requested virtual address.
        virt: u32,
        /// Requested physical address (0 where the operation has none).
        phys: u64,
        /// Requested size.
        size: u32,
    },
    /// `virt + size` is beyond 4 GiB.
    WrapAround {
        /// Requested virtual address.
        virt: u32,
        /// Requested size.
        size: u32,
    },
    /// The physical range reaches above 4 GiB (supersections are not used).
    PhysTooHigh {
        /// Requested physical address.
        phys: u64,
    },
    /// The virtual address is already mapped.
    Overlap {
        /// First already-mapped virtual address in the request.
        virt: u32,
    },
    /// An unmap would cut a section, supersection or large page.
    SplitSection {
        /// Start of the block.
        virt: u32,
    },
    /// No second-level table covers the address.
    NoL2Table {
        /// The address.
        virt: u32,
    },
    /// The table allocator could not satisfy a request.
    OutOfTableMemory {
        /// Requested bytes.
        bytes: usize,
        /// Requested alignment.
        align: usize,
    },
    /// The allocator returned memory that is misaligned or above 4 GiB.
    BadTableAddress {
        /// What it returned.
        phys: PhysAddr,
    },
    /// Table memory at this address cannot be reached through the allocator.
    TableUnreachable {
        /// The table's physical address.
        phys: PhysAddr,
    },
    /// All PKMAP slots are in use.
    PkmapFull,
    /// The address is not in the PKMAP window.
    NotPkmap {
        /// The address.
        virt: u32,
    },
    /// Nothing is mapped at the address.
    NotMapped {
        /// The address.
        virt: u32,
    },
    /// The plan has more requests than it can hold.
    TooManyMappings,
    /// The lowmem range is empty, below PHYS_OFFSET or beyond the linear map.
    LowmemInvalid {
        /// Lowmem start.
        start: u64,
        /// Lowmem end.
        end: u64,
    },
    /// The kernel image range is empty or not mappable.
    ImageInvalid {
        /// Image start.
        start: u64,
        /// Image end.
        end: u64,
    },
    /// The identity map of the image collides with another kernel mapping.
    IdentityClash {
        /// First colliding virtual address.
        virt: u32,
    },
    /// A device region is empty or overlaps RAM.
    DeviceInvalid {
        /// The region's name.
        name: &'static str,
    },
    /// The device window has no room left.
    DeviceWindowFull {
        /// The region that did not fit.
        name: &'static str,
    },
    /// An OS hook refused.
    Hook(&'static str),
}

impl core::fmt::Display for MmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            MmuError::ZeroSize => write!(f, "zero-sized mapping"),
            MmuError::Misaligned { virt, phys, size } => write!(
                f,
                "mapping virt {virt:#010x} phys {phys:#x} size {size:#x} is not page aligned"
            ),
            MmuError::WrapAround { virt, size } => {
                write!(f, "mapping virt {virt:#010x} size {size:#x} wraps around")
            }
            MmuError::PhysTooHigh { phys } => {
                write!(f, "physical address {phys:#x} reaches above 4 GiB")
            }
            MmuError::Overlap { virt } => write!(f, "virtual address {virt:#010x} already mapped"),
            MmuError::SplitSection { virt } => {
                write!(f, "unmap would split the block at {virt:#010x}")
            }
            MmuError::NoL2Table { virt } => {
                write!(f, "no second-level table covers {virt:#010x}")
            }
            MmuError::OutOfTableMemory { bytes, align } => {
                write!(
                    f,
                    "cannot allocate {bytes:#x} bytes (align {align:#x}) for tables"
                )
            }
            MmuError::BadTableAddress { phys } => {
                write!(f, "table memory at {phys:#x} is misaligned or above 4 GiB")
            }
            MmuError::TableUnreachable { phys } => {
                write!(f, "table memory at {phys:#x} is not reachable")
            }
            MmuError::PkmapFull => write!(f, "no free pkmap slot"),
            MmuError::NotPkmap { virt } => write!(f, "{virt:#010x} is not a pkmap address"),
            MmuError::NotMapped { virt } => write!(f, "{virt:#010x} is not mapped"),
            MmuError::TooManyMappings => write!(f, "too many mapping requests"),
            MmuError::LowmemInvalid { start, end } => {
                write!(f, "lowmem {start:#x}-{end:#x} cannot be linearly mapped")
            }
            MmuError::ImageInvalid { start, end } => {
                write!(
                    f,
                    "kernel image {start:#x}-{end:#x} cannot be identity mapped"
                )
            }
            MmuError::IdentityClash { virt } => {
                write!(
                    f,
                    "identity map collides with a kernel mapping at {virt:#010x}"
                )
            }
            MmuError::DeviceInvalid { name } => write!(f, "device region {name} is invalid"),
            MmuError::DeviceWindowFull { name } => {
                write!(f, "no room in the device window for {name}")
            }
            MmuError::Hook(why) => write!(f, "mapping hook failed: {why}"),
        }
    }
}
