//! The Contiguous Memory Allocator's boot side (`mm/cma.c`, `kernel/dma/contiguous.c`).
//!
//! CMA sets memory aside during boot (a `cma=` command-line area, or a `linux,cma`
//! reusable `shared-dma-pool` in the device tree) without losing it: the area stays
//! reserved in memblock, so `memblock_free_all` skips it, and is then handed to the
//! buddy allocator pageblock by pageblock as `MIGRATE_CMA`
//! (`cma_init_reserved_areas`), where only movable allocations may use it. This
//! module places the areas (`cma_declare_contiguous_nid`), validates the ones the
//! device tree placed (`cma_init_reserved_mem`) and keeps the list that
//! [`crate::page_alloc::PageAllocator`] activates.

use core::fmt;

use crate::addr::{MemRange, PhysAddr, PAGE_SIZE};
use crate::memblock::{Memblock, NUMA_NO_NODE};

/// `MAX_CMA_AREAS`: the global area plus `CONFIG_CMA_AREAS` (7) others.
pub const MAX_CMA_AREAS: usize = 8;

/// Linux 6.1 armmp's `CONFIG_CMA_SIZE_MBYTES`: the global area's size without `cma=`.
/// zonekit's own boards default to no area (see [`CmaRequest::resolve`]).
pub const LINUX_61_CMA_SIZE: u64 = 16 << 20;

/// One reserved contiguous area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaArea {
    /// First byte (pageblock aligned).
    pub base: PhysAddr,
    /// Bytes (a whole number of pageblocks).
    pub size: u64,
}

impl CmaArea {
    /// The area as a range.
    pub fn range(&self) -> MemRange {
        MemRange::new(self.base, self.size)
    }
}

/// Why an area could not be declared. Linux logs these and boots without the area;
/// zonekit's boot does the same (a warning), while the API reports them typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmaError {
    /// A size of zero was asked for where an area was required.
    ZeroSize,
    /// The alignment is not a power of two.
    BadAlignment(u64),
    /// A fixed base is not aligned to the CMA minimum alignment.
    Misaligned {
        /// The base asked for.
        base: PhysAddr,
        /// The alignment it needs.
        align: u64,
    },
    /// A fixed area crosses the lowmem/highmem boundary.
    CrossesHighmem {
        /// The base asked for.
        base: PhysAddr,
        /// Its size.
        size: u64,
    },
    /// The area ends above its limit (`Size ... exceeds limit`).
    ExceedsLimit {
        /// The base.
        base: PhysAddr,
        /// The size.
        size: u64,
        /// The limit.
        limit: PhysAddr,
    },
    /// A fixed area is already (partly) reserved, or is not memory (`-EBUSY`).
    Busy {
        /// The base asked for.
        base: PhysAddr,
    },
    /// memblock found no room (`-ENOMEM`).
    NoSpace {
        /// Bytes asked for.
        size: u64,
        /// Alignment used.
        align: u64,
    },
    /// Every one of [`MAX_CMA_AREAS`] slots is used (`-ENOSPC`).
    TooManyAreas,
    /// The area overlaps one declared before.
    Overlaps(CmaArea),
}

impl fmt::Display for CmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CmaError::ZeroSize => write!(f, "zero-sized area"),
            CmaError::BadAlignment(a) => write!(f, "alignment {a:#x} is not a power of two"),
            CmaError::Misaligned { base, align } => {
                write!(f, "Region at {base:#x} must be aligned to {align:#x} bytes")
            }
            CmaError::CrossesHighmem { base, size } => write!(
                f,
                "Region at {base:#x} (size {size:#x}) defined on low/high memory boundary"
            ),
            CmaError::ExceedsLimit { base, size, limit } => write!(
                f,
                "Size ({size:#x}) of region at {base:#x} exceeds limit ({limit:#x})"
            ),
            CmaError::Busy { base } => {
                write!(f, "region at {base:#x} is reserved already or not memory")
            }
            CmaError::NoSpace { size, align } => {
                write!(f, "no room for {size:#x} bytes aligned to {align:#x}")
            }
            CmaError::TooManyAreas => write!(f, "more than {MAX_CMA_AREAS} CMA areas"),
            CmaError::Overlaps(a) => write!(f, "overlaps the CMA area at {:#x}", a.base),
        }
    }
}

/// The declared areas, in declaration order (a plain array, so that the allocator's
/// configuration that carries it stays `Copy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaAreas {
    areas: [CmaArea; MAX_CMA_AREAS],
    len: usize,
}

impl Default for CmaAreas {
    fn default() -> Self {
        Self::new()
    }
}

impl CmaAreas {
    /// No area.
    pub const fn new() -> Self {
        CmaAreas {
            areas: [CmaArea { base: 0, size: 0 }; MAX_CMA_AREAS],
            len: 0,
        }
    }

    /// The areas.
    pub fn areas(&self) -> &[CmaArea] {
        &self.areas[..self.len]
    }

    /// `totalcma_pages` in bytes: what the `Memory:` line prints as `cma-reserved`.
    pub fn total_bytes(&self) -> u64 {
        self.areas().iter().map(|a| a.size).sum()
    }

    /// `cma_init_reserved_mem`: record an area memblock already reserved. It must be
    /// a whole number of `min_align` blocks (`CMA_MIN_ALIGNMENT_BYTES`: one pageblock)
    /// and overlap no other area.
    pub fn init_reserved_mem(
        &mut self,
        base: PhysAddr,
        size: u64,
        min_align: u64,
    ) -> Result<CmaArea, CmaError> {
        if size == 0 {
            return Err(CmaError::ZeroSize);
        }
        if !min_align.is_power_of_two() {
            return Err(CmaError::BadAlignment(min_align));
        }
        if (base | size) & (min_align - 1) != 0 {
            return Err(CmaError::Misaligned {
                base,
                align: min_align,
            });
        }
        if base.checked_add(size).is_none() {
            return Err(CmaError::ExceedsLimit {
                base,
                size,
                limit: PhysAddr::MAX,
            });
        }
        let area = CmaArea { base, size };
        if let Some(other) = self
            .areas()
            .iter()
            .find(|a| a.range().overlaps(&area.range()))
        {
            return Err(CmaError::Overlaps(*other));
        }
        if self.len == MAX_CMA_AREAS {
            return Err(CmaError::TooManyAreas);
        }
        self.areas[self.len] = area;
        self.len += 1;
        Ok(area)
    }
}

/// `cma=SIZE[@BASE[-LIMIT]]` (`early_cma`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaRequest {
    /// Bytes (0 turns the global area off).
    pub size: u64,
    /// Where it must start (`@BASE`), 0 for anywhere.
    pub base: PhysAddr,
    /// The highest end it may have (`-LIMIT`, or `BASE + SIZE` when only a base is
    /// given), 0 for none.
    pub limit: PhysAddr,
}

impl CmaRequest {
    /// `dma_contiguous_reserve`'s choice of the global area: the command line's
    /// request if any, else `default_size` anywhere below `dma_limit`. `None` when
    /// the size is 0. Returns `(size, base, limit, fixed)`.
    pub fn resolve(
        cmdline: Option<CmaRequest>,
        default_size: u64,
        dma_limit: PhysAddr,
    ) -> Option<(u64, PhysAddr, PhysAddr, bool)> {
        let (size, base, limit, fixed) = match cmdline {
            Some(r) => {
                let limit = if r.limit == 0 {
                    dma_limit
                } else {
                    r.limit.min(dma_limit)
                };
                let fixed = r.base != 0 && r.base.checked_add(r.size) == Some(r.limit);
                (r.size, r.base, limit, fixed)
            }
            None => (default_size, 0, dma_limit, false),
        };
        (size != 0).then_some((size, base, limit, fixed))
    }
}

/// How `cma_declare_contiguous_nid` behaves where Linux versions differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaPlacement {
    /// `CONFIG_PHYS_ADDR_T_64BIT` (LPAE): try bottom-up above 4 GiB first when memory
    /// reaches that far.
    pub phys_addr_64bit: bool,
    /// Linux 6.1's bug (fixed later with `if (!addr && ...)`): the above-4 GiB attempt
    /// runs even after the highmem attempt succeeded, overwriting its address, so the
    /// highmem area stays reserved for good and a third attempt places the real one.
    /// Only the oracle turns this on, to reproduce the fixtures.
    pub linux_61_highmem_leak: bool,
}

/// `cma_declare_contiguous_nid`: reserve a `size`-byte area in `[base, limit)` aligned
/// to `alignment` (at least `min_align`, one pageblock), exactly at `base` when
/// `fixed`. Without a fixed base it goes top-down in highmem when the range straddles
/// `highmem_start` (all pages of an area must come from one zone), else top-down
/// below `limit`. The caller records the result with [`CmaAreas::init_reserved_mem`].
#[allow(clippy::too_many_arguments)]
pub fn cma_declare_contiguous<const N: usize>(
    mb: &mut Memblock<N>,
    size: u64,
    base: PhysAddr,
    limit: PhysAddr,
    alignment: u64,
    min_align: u64,
    fixed: bool,
    highmem_start: PhysAddr,
    how: CmaPlacement,
) -> Result<CmaArea, CmaError> {
    if size == 0 {
        return Err(CmaError::ZeroSize);
    }
    if alignment != 0 && !alignment.is_power_of_two() {
        return Err(CmaError::BadAlignment(alignment));
    }
    if !min_align.is_power_of_two() || min_align < PAGE_SIZE {
        return Err(CmaError::BadAlignment(min_align));
    }
    let alignment = alignment.max(min_align);
    if fixed && base & (alignment - 1) != 0 {
        return Err(CmaError::Misaligned {
            base,
            align: alignment,
        });
    }
    let too_big = CmaError::NoSpace {
        size,
        align: alignment,
    };
    let base = base.checked_next_multiple_of(alignment).ok_or(too_big)?;
    let size = size.checked_next_multiple_of(alignment).ok_or(too_big)?;
    let mut limit = limit & !(alignment - 1);
    let fixed = fixed && base != 0;
    if fixed && base < highmem_start && base.saturating_add(size) > highmem_start {
        return Err(CmaError::CrossesHighmem { base, size });
    }
    let memblock_end = mb.end_of_dram();
    if limit == 0 || limit > memblock_end {
        limit = memblock_end;
    }
    if base.checked_add(size).is_none_or(|end| end > limit) {
        return Err(CmaError::ExceedsLimit { base, size, limit });
    }
    if fixed {
        if mb.is_region_reserved(base, size) || !mb.is_region_memory(base, size) {
            return Err(CmaError::Busy { base });
        }
        mb.reserve(base, size)
            .map_err(|_| CmaError::Busy { base })?;
        return Ok(CmaArea { base, size });
    }
    let mut addr = None;
    if base < highmem_start && limit > highmem_start {
        addr = mb.alloc_range_nid(size, alignment, highmem_start, limit, NUMA_NO_NODE, true);
        limit = highmem_start;
    }
    const SZ_4G: u64 = 1 << 32;
    let try_above_4g = how.linux_61_highmem_leak || addr.is_none();
    if how.phys_addr_64bit && try_above_4g && !mb.bottom_up() && memblock_end >= SZ_4G + size {
        mb.set_bottom_up(true);
        addr = mb.alloc_range_nid(size, alignment, SZ_4G, limit, NUMA_NO_NODE, true);
        mb.set_bottom_up(false);
    }
    let addr = match addr {
        Some(a) => a,
        None => mb
            .alloc_range_nid(size, alignment, base, limit, NUMA_NO_NODE, true)
            .ok_or(too_big)?,
    };
    Ok(CmaArea { base: addr, size })
}

/// `dma_contiguous_reserve`: place the global area (`cma=`, else `default_size`)
/// below `dma_limit` and record it in `areas`, logging Linux's `cma: Reserved ...`
/// line, unless the device tree already gave a default area (`has_default`). A
/// failure is logged (`cma: Failed to reserve ...`) and returned; memblock is left
/// as it was.
#[allow(clippy::too_many_arguments)]
pub fn dma_contiguous_reserve<const N: usize>(
    mb: &mut Memblock<N>,
    areas: &mut CmaAreas,
    cmdline: Option<CmaRequest>,
    default_size: u64,
    dma_limit: PhysAddr,
    highmem_start: PhysAddr,
    min_align: u64,
    how: CmaPlacement,
    has_default: bool,
) -> Result<Option<CmaArea>, CmaError> {
    let Some((size, base, limit, fixed)) = CmaRequest::resolve(cmdline, default_size, dma_limit)
    else {
        return Ok(None);
    };
    if has_default {
        return Ok(None);
    }
    let placed = cma_declare_contiguous(
        mb,
        size,
        base,
        limit,
        0,
        min_align,
        fixed,
        highmem_start,
        how,
    )
    .and_then(
        |area| match areas.init_reserved_mem(area.base, area.size, min_align) {
            Ok(a) => Ok(a),
            Err(e) => {
                // Keep memblock as it was: the area never became CMA.
                let _ = mb.phys_free(area.base, area.size);
                Err(e)
            }
        },
    );
    match placed {
        Ok(area) => {
            zk_info!(
                "cma: Reserved {} MiB at {} on node -1",
                area.size >> 20,
                mb.pa(area.base)
            );
            Ok(Some(area))
        }
        Err(e) => {
            zk_warn!(
                "cma: Failed to reserve {} MiB on node -1: {}",
                size >> 20,
                e
            );
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Mb = Memblock<128>;
    const PB: u64 = 4 << 20;

    fn mb(base: u64, size: u64) -> Mb {
        let mut m = Mb::new(u32::MAX as u64);
        m.add(base, size).unwrap();
        m
    }

    const LINUX: CmaPlacement = CmaPlacement {
        phys_addr_64bit: false,
        linux_61_highmem_leak: false,
    };

    #[test]
    fn cma_global_area_goes_top_down_below_limit() {
        let mut m = mb(0x6000_0000, 512 << 20);
        let a = cma_declare_contiguous(
            &mut m,
            16 << 20,
            0,
            0xffff_ffff,
            0,
            8 << 20,
            false,
            0x8000_0000,
            LINUX,
        )
        .unwrap();
        assert_eq!(a.base, 0x7f00_0000);
        assert!(m.is_region_reserved(a.base, a.size));
    }

    #[test]
    fn cma_goes_to_highmem_when_the_range_straddles_it() {
        let mut m = mb(0x6000_0000, 1 << 30);
        let a = cma_declare_contiguous(
            &mut m,
            16 << 20,
            0,
            0xffff_ffff,
            0,
            8 << 20,
            false,
            0x9000_0000,
            LINUX,
        )
        .unwrap();
        assert_eq!(a.base, 0x9f00_0000);
    }

    #[test]
    fn cma_fixed_base_is_checked() {
        let mut m = mb(0x6000_0000, 512 << 20);
        let unaligned = cma_declare_contiguous(
            &mut m,
            PB,
            0x6010_0000,
            0x6050_0000,
            0,
            PB,
            true,
            0x8000_0000,
            LINUX,
        );
        assert!(matches!(unaligned, Err(CmaError::Misaligned { .. })));
        m.reserve(0x6040_0000, 0x1000).unwrap();
        let busy = cma_declare_contiguous(
            &mut m,
            PB,
            0x6040_0000,
            0x6080_0000,
            0,
            PB,
            true,
            0x8000_0000,
            LINUX,
        );
        assert_eq!(busy, Err(CmaError::Busy { base: 0x6040_0000 }));
        let over = cma_declare_contiguous(
            &mut m,
            512 << 20,
            0x7000_0000,
            0,
            0,
            PB,
            false,
            0x8000_0000,
            LINUX,
        );
        assert!(matches!(over, Err(CmaError::ExceedsLimit { .. })));
        let huge = cma_declare_contiguous(&mut m, u64::MAX, 0, 0, 0, PB, false, 0x8000_0000, LINUX);
        assert!(matches!(huge, Err(CmaError::NoSpace { .. })));
    }

    #[test]
    fn cma_init_reserved_mem_refuses_misaligned_and_overlapping() {
        let mut areas = CmaAreas::new();
        assert!(areas.init_reserved_mem(0x6000_1000, PB, PB).is_err());
        assert!(areas.init_reserved_mem(0x6040_0000, PB, PB).is_ok());
        assert!(matches!(
            areas.init_reserved_mem(0x6040_0000, 2 * PB, PB),
            Err(CmaError::Overlaps(_))
        ));
        for i in 1..MAX_CMA_AREAS as u64 {
            areas
                .init_reserved_mem(0x7000_0000 + i * PB, PB, PB)
                .unwrap();
        }
        assert_eq!(
            areas.init_reserved_mem(0x6000_0000, PB, PB),
            Err(CmaError::TooManyAreas)
        );
        assert_eq!(areas.total_bytes(), MAX_CMA_AREAS as u64 * PB);
    }

    #[test]
    fn cma_request_resolution() {
        assert_eq!(CmaRequest::resolve(None, 0, 0xffff_ffff), None);
        assert_eq!(
            CmaRequest::resolve(None, 16 << 20, 0xffff_ffff),
            Some((16 << 20, 0, 0xffff_ffff, false))
        );
        let off = CmaRequest {
            size: 0,
            base: 0,
            limit: 0,
        };
        assert_eq!(CmaRequest::resolve(Some(off), 16 << 20, 0xffff_ffff), None);
        let at = CmaRequest {
            size: 64 << 20,
            base: 0x7000_0000,
            limit: 0x7400_0000,
        };
        assert_eq!(
            CmaRequest::resolve(Some(at), 0, 0xffff_ffff),
            Some((64 << 20, 0x7000_0000, 0x7400_0000, true))
        );
    }
}
