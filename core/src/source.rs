//! Where memory comes from: the board's DRAM map and its reservations.
//!
//! In Linux this is `setup_machine_fdt` / ATAGS parsing calling `memblock_add` per
//! bank and `memblock_reserve` per reservation. A [`MemorySource`] is anything that
//! can report those: a board's static map, the ATAGS QEMU passes in r2, a device tree.
//!
//! # No list, no cap
//!
//! A source does not hand back a list: it reports each [`Region`] to a sink the boot
//! flow supplies ([`MemorySource::for_each_region`]), so a source with any number of
//! banks needs no storage before memblock. The only limit left is memblock's own
//! table (`INIT_MEMBLOCK_REGIONS`, as in Linux): banks memblock merges cost one
//! region, and a table that overflows is a typed `TableFull` error, never a silent
//! truncation. Dynamic reservations and CMA pools keep Linux's small bounds
//! ([`MAX_RESERVATION_REQUESTS`], [`MAX_CMA_AREAS`](crate::cma::MAX_CMA_AREAS)).
//!
//! The command line and the DMA zone size are not part of a memory source: the boot
//! flow reads them from the boot information and the board (`BootParams`).

use crate::addr::{MemRange, PhysAddr};
use crate::memblock::MemblockError;

/// Why a memory source could not be read, or its regions not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceError {
    /// More entries of a bounded kind than Linux keeps (dynamic reservations, CMA
    /// pools, `alloc-ranges`). Nothing is dropped silently.
    TooMany {
        /// Which kind.
        what: &'static str,
        /// The bound.
        max: usize,
    },
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
    /// memblock refused a reported region (its table is full): the sink's error.
    Memblock(MemblockError),
}

impl core::fmt::Display for SourceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SourceError::TooMany { what, max } => {
                write!(f, "more than {max} {what} reported")
            }
            SourceError::ZeroSized { base } => write!(f, "zero-sized range at {base:#x}"),
            SourceError::Overflow { base, size } => {
                write!(f, "range {base:#x}+{size:#x} overflows the address space")
            }
            SourceError::Malformed(why) => write!(f, "malformed boot information: {why}"),
            SourceError::NoMemory => write!(f, "no memory bank reported"),
            SourceError::Memblock(e) => write!(f, "{e}"),
        }
    }
}

impl From<MemblockError> for SourceError {
    fn from(e: MemblockError) -> Self {
        SourceError::Memblock(e)
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
/// `reg`, `shared-dma-pool` and `reusable`). The source reports the range as a
/// [`Region::Reserved`] too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaRegion {
    /// The range.
    pub range: MemRange,
    /// `linux,cma-default`.
    pub default: bool,
}

/// One thing a source says about memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Region<'a> {
    /// A DRAM bank: a `memblock_add`.
    Memory(MemRange),
    /// A range that must never be allocated (firmware, boot data): a
    /// `memblock_reserve`.
    Reserved(MemRange),
    /// Memory that must stay out of the kernel's linear map (`/reserved-memory` with
    /// `no-map`): a `memblock_mark_nomap`.
    NoMap(MemRange),
    /// A reserved range that is a CMA pool (see [`CmaRegion`]).
    Cma(CmaRegion),
    /// A reservation memblock must place (during `arm_memblock_init`).
    Request(ReservationRequest<'a>),
}

/// The kinds of [`Region`], in the order the boot flow uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// [`Region::Memory`].
    Memory,
    /// [`Region::Reserved`].
    Reserved,
    /// [`Region::NoMap`].
    NoMap,
    /// [`Region::Cma`].
    Cma,
    /// [`Region::Request`].
    Request,
}

impl Region<'_> {
    /// Its kind.
    pub fn kind(&self) -> RegionKind {
        match self {
            Region::Memory(_) => RegionKind::Memory,
            Region::Reserved(_) => RegionKind::Reserved,
            Region::NoMap(_) => RegionKind::NoMap,
            Region::Cma(_) => RegionKind::Cma,
            Region::Request(_) => RegionKind::Request,
        }
    }

    /// The fixed range of a `Memory`, `Reserved` or `NoMap` region.
    pub fn range(&self) -> Option<MemRange> {
        match self {
            Region::Memory(r) | Region::Reserved(r) | Region::NoMap(r) => Some(*r),
            Region::Cma(c) => Some(c.range),
            Region::Request(_) => None,
        }
    }
}

/// The sink a source reports its regions to; an error stops the walk and is returned.
pub type RegionSink<'s, 'f> = dyn FnMut(Region<'s>) -> Result<(), SourceError> + 'f;

/// A provider of the physical memory map.
pub trait MemorySource {
    /// A short name for the boot log ("ATAGS", "board map", "DTB").
    fn name(&self) -> &str;

    /// Report every region to `sink`, in the source's order, and stop at the first
    /// error (the sink's or the source's). A walk must report the same regions each
    /// time: the boot flow walks once per [`RegionKind`], in Linux's order (every
    /// bank is `memblock_add`ed before the first reservation), keeping the source's
    /// order within a kind. Ranges are reported as the source has them; the flow
    /// checks each kind with [`validate_range`] before it uses any of it, and reports
    /// [`SourceError::NoMemory`] when there is no bank.
    fn for_each_region<'s>(&'s self, sink: &mut RegionSink<'s, '_>) -> Result<(), SourceError>;

    /// Whether the boot flow adds each bank as Linux's `arm_add_memory` does (start
    /// rounded up and size down to whole pages, a bank past the top of the physical
    /// address space ignored or truncated, with Linux's messages): true for ATAGS
    /// (`parse_tag_mem32`) and board maps. A source that makes those checks itself
    /// answers false: a device tree, whose banks Linux adds through
    /// `early_init_dt_add_memory_arch` instead.
    fn banks_via_arm_add_memory(&self) -> bool {
        true
    }
}

/// Walk `source`'s regions of one `kind` only.
pub fn for_each_of_kind<'s>(
    source: &'s dyn MemorySource,
    kind: RegionKind,
    f: &mut RegionSink<'s, '_>,
) -> Result<(), SourceError> {
    source.for_each_region(&mut |r| if r.kind() == kind { f(r) } else { Ok(()) })
}

/// Check one fixed range: no zero size, no overflow. Shared by sources and the flow.
pub fn validate_range(r: MemRange) -> Result<(), SourceError> {
    if r.size == 0 {
        return Err(SourceError::ZeroSized { base: r.base });
    }
    if r.base.checked_add(r.size).is_none() {
        return Err(SourceError::Overflow {
            base: r.base,
            size: r.size,
        });
    }
    Ok(())
}

/// Checks a range list: no zero sizes, no overflow.
pub fn validate_ranges(ranges: &[MemRange]) -> Result<(), SourceError> {
    ranges.iter().try_for_each(|r| validate_range(*r))
}

/// Most banks or reserved ranges a [`StaticMemoryMap`] stores (its own storage; the
/// [`MemorySource`] interface has no cap).
pub const MAX_STATIC_RANGES: usize = crate::memblock::INIT_MEMBLOCK_REGIONS;

/// A fixed-capacity list of physical ranges, usable before any heap exists.
pub type RangeList = heapless::Vec<MemRange, MAX_STATIC_RANGES>;

/// A fixed memory map, such as a board's static DRAM description.
#[derive(Clone, Debug, Default)]
pub struct StaticMemoryMap {
    /// DRAM banks.
    pub banks: RangeList,
    /// Reserved ranges.
    pub reserved: RangeList,
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
        }
    }
}

impl MemorySource for StaticMemoryMap {
    fn name(&self) -> &str {
        "board map"
    }

    fn for_each_region<'s>(&'s self, sink: &mut RegionSink<'s, '_>) -> Result<(), SourceError> {
        let banks = self.banks.iter().map(|r| Region::Memory(*r));
        let reserved = self.reserved.iter().map(|r| Region::Reserved(*r));
        banks.chain(reserved).try_for_each(sink)
    }
}

/// Every region of `source`, in its order (for hosts and tests; the boot flow walks
/// without storage).
#[cfg(any(test, feature = "alloc"))]
pub fn collect_regions(
    source: &dyn MemorySource,
) -> Result<alloc::vec::Vec<Region<'_>>, SourceError> {
    let mut out = alloc::vec::Vec::new();
    source.for_each_region(&mut |r| {
        out.push(r);
        Ok(())
    })?;
    Ok(out)
}

/// The fixed ranges of one `kind` of `source` (for hosts and tests).
#[cfg(any(test, feature = "alloc"))]
pub fn collect_ranges(
    source: &dyn MemorySource,
    kind: RegionKind,
) -> Result<alloc::vec::Vec<MemRange>, SourceError> {
    Ok(collect_regions(source)?
        .iter()
        .filter(|r| r.kind() == kind)
        .filter_map(Region::range)
        .collect())
}

/// The dynamic reservations of `source` (for hosts and tests).
#[cfg(any(test, feature = "alloc"))]
pub fn collect_requests(
    source: &dyn MemorySource,
) -> Result<alloc::vec::Vec<ReservationRequest<'_>>, SourceError> {
    Ok(collect_regions(source)?
        .into_iter()
        .filter_map(|r| match r {
            Region::Request(q) => Some(q),
            _ => None,
        })
        .collect())
}
