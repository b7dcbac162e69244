//! Where memory comes from: the board's DRAM map, reservations and command line.
//!
//! In Linux this is `setup_machine_fdt` / ATAGS parsing calling `memblock_add` per
//! bank. A [`MemorySource`] is anything that can list DRAM banks and reserved ranges:
//! a board's static map, the ATAGS QEMU passes in r2, or (later) a device tree.

use crate::addr::{MemRange, PhysAddr};
use crate::cma::MAX_CMA_AREAS;

/// Most DRAM banks or reserved ranges one source reports.
pub const MAX_SOURCE_RANGES: usize = 16;

/// A fixed-capacity list of physical ranges, usable before any heap exists.
pub type RangeList = heapless::Vec<MemRange, MAX_SOURCE_RANGES>;

/// Why a memory source could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceError {
    /// The source reports more ranges than [`MAX_SOURCE_RANGES`].
    TooManyRanges,
    /// A bank or range has size zero.
    ZeroSized {
        /// Base of the offending range.
        base: PhysAddr,
    },
    /// `base + size` overflows the physical address space.
    Overflow {
        /// Base of the offending range.
        base: PhysAddr,
        /// Size of the offending range.
        size: u64,
    },
    /// The boot information (ATAGS, DTB) is malformed; the text says how.
    Malformed(&'static str),
    /// The source has no memory bank at all.
    NoMemory,
}

impl core::fmt::Display for SourceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SourceError::TooManyRanges => {
                write!(f, "more than {MAX_SOURCE_RANGES} memory ranges reported")
            }
            SourceError::ZeroSized { base } => write!(f, "zero-sized range at {base:#x}"),
            SourceError::Overflow { base, size } => {
                write!(f, "range {base:#x}+{size:#x} overflows the address space")
            }
            SourceError::Malformed(why) => write!(f, "malformed boot information: {why}"),
            SourceError::NoMemory => write!(f, "no memory bank reported"),
        }
    }
}

/// Most dynamic reservations one source may request.
pub const MAX_RESERVATION_REQUESTS: usize = 8;

/// A reservation whose place memblock chooses (a `/reserved-memory` child with `size`
/// instead of `reg`; Linux's `__reserved_mem_alloc_size`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationRequest<'a> {
    /// The node name, for the boot log.
    pub name: &'a str,
    /// Bytes to reserve.
    pub size: u64,
    /// Required alignment (`SMP_CACHE_BYTES` when `None`).
    pub align: Option<u64>,
    /// Where it may go (`alloc-ranges`); anywhere in memory when empty.
    pub alloc_ranges: heapless::Vec<MemRange, 4>,
    /// `no-map`: take the range out of the linear map instead of just reserving it.
    pub no_map: bool,
    /// A CMA pool (`shared-dma-pool`, `reusable`): placed at pageblock alignment and
    /// handed to the buddy allocator as MIGRATE_CMA after `mem_init`.
    pub cma: bool,
    /// `linux,cma-default`: the pool is the global CMA area.
    pub cma_default: bool,
}

/// A reserved range the source marks as a CMA pool (a `/reserved-memory` child with
/// `reg`, `shared-dma-pool` and `reusable`). It is also one of
/// [`MemorySource::reserved_ranges`] or the source's static reservations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaRegion {
    /// The range.
    pub range: MemRange,
    /// `linux,cma-default`.
    pub default: bool,
}

/// A provider of the physical memory map.
pub trait MemorySource {
    /// A short name for the boot log ("ATAGS", "board map", "DTB").
    fn name(&self) -> &str;

    /// The DRAM banks, in any order. Each becomes a `memblock_add`.
    fn memory_banks(&self) -> Result<RangeList, SourceError>;

    /// Whether the boot flow adds each bank as Linux's `arm_add_memory` does (start
    /// rounded up and size down to whole pages, a bank past the top of the physical
    /// address space ignored or truncated, with Linux's messages): true for ATAGS
    /// (`parse_tag_mem32`) and board maps. A source that makes those checks itself
    /// answers false: a device tree, whose banks Linux adds through
    /// `early_init_dt_add_memory_arch` instead.
    fn banks_via_arm_add_memory(&self) -> bool {
        true
    }

    /// Ranges that must never be allocated (firmware, boot data). Each becomes a
    /// `memblock_reserve`.
    fn reserved_ranges(&self) -> Result<RangeList, SourceError> {
        Ok(RangeList::new())
    }

    /// Ranges that are memory but must stay out of the kernel's linear map
    /// (`/reserved-memory` with `no-map`). Each becomes `memblock_mark_nomap`.
    fn nomap_ranges(&self) -> Result<RangeList, SourceError> {
        Ok(RangeList::new())
    }

    /// Reservations memblock must place (allocated during `arm_memblock_init`).
    fn reservation_requests(
        &self,
    ) -> heapless::Vec<ReservationRequest<'_>, MAX_RESERVATION_REQUESTS> {
        heapless::Vec::new()
    }

    /// Reserved ranges that are CMA pools (see [`CmaRegion`]).
    fn cma_ranges(&self) -> heapless::Vec<CmaRegion, MAX_CMA_AREAS> {
        heapless::Vec::new()
    }

    /// Size of the DMA zone from the start of RAM (`arm_dma_zone_size`), or `None` when
    /// the board has no DMA limit and so no ZONE_DMA.
    fn dma_zone_size(&self) -> Option<u64> {
        None
    }

    /// The kernel command line (may be empty).
    fn cmdline(&self) -> &str {
        ""
    }
}

/// Checks a range list: no zero sizes, no overflow. Shared by sources.
pub fn validate_ranges(ranges: &[MemRange]) -> Result<(), SourceError> {
    for r in ranges {
        if r.size == 0 {
            return Err(SourceError::ZeroSized { base: r.base });
        }
        if r.base.checked_add(r.size).is_none() {
            return Err(SourceError::Overflow {
                base: r.base,
                size: r.size,
            });
        }
    }
    Ok(())
}

/// A fixed memory map, such as a board's static DRAM description.
#[derive(Clone, Debug, Default)]
pub struct StaticMemoryMap {
    /// DRAM banks.
    pub banks: RangeList,
    /// Reserved ranges.
    pub reserved: RangeList,
    /// DMA zone size, if the board has one.
    pub dma_zone_size: Option<u64>,
}

impl StaticMemoryMap {
    /// A map with a single DRAM bank.
    pub fn single_bank(base: PhysAddr, size: u64) -> Self {
        let mut banks = RangeList::new();
        // A fresh list has room for one entry.
        let _ = banks.push(MemRange::new(base, size));
        Self {
            banks,
            reserved: RangeList::new(),
            dma_zone_size: None,
        }
    }
}

impl MemorySource for StaticMemoryMap {
    fn name(&self) -> &str {
        "board map"
    }

    fn memory_banks(&self) -> Result<RangeList, SourceError> {
        validate_ranges(&self.banks)?;
        if self.banks.is_empty() {
            return Err(SourceError::NoMemory);
        }
        Ok(self.banks.clone())
    }

    fn reserved_ranges(&self) -> Result<RangeList, SourceError> {
        validate_ranges(&self.reserved)?;
        Ok(self.reserved.clone())
    }

    fn dma_zone_size(&self) -> Option<u64> {
        self.dma_zone_size
    }
}
