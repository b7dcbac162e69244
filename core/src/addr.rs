//! Physical addresses, page frame numbers and ranges.
//!
//! Physical addresses are 64-bit everywhere (Linux's `phys_addr_t` with LPAE), so the
//! same code serves classic 32-bit ARM and LPAE boards with RAM above 4 GiB. Whether an
//! address is representable on a given build is the arch's business
//! ([`crate::arch::MmConfig::phys_addr_max`]).
//!
//! Linux counterpart: `phys_addr_t`, `PFN_UP`/`PFN_DOWN`/`PFN_PHYS` (`include/linux/pfn.h`).

/// A physical address (`phys_addr_t`).
pub type PhysAddr = u64;
/// A page frame number: a physical address shifted right by [`PAGE_SHIFT`].
pub type Pfn = u64;

/// log2 of the base page size. zonekit supports 4 KiB base pages, as ARM32 Linux does.
pub const PAGE_SHIFT: u32 = 12;
/// The base page size in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// `PFN_UP`: the first whole page at or above `addr`. Exact for every `addr`: the
/// last page of the 64-bit space rounds up to `1 << (64 - PAGE_SHIFT)` instead of
/// overflowing (Linux's `(x + PAGE_SIZE - 1) >> PAGE_SHIFT` would wrap to 0).
#[inline]
pub const fn pfn_up(addr: PhysAddr) -> Pfn {
    (addr >> PAGE_SHIFT) + (addr & (PAGE_SIZE - 1) != 0) as u64
}

/// `PFN_DOWN`: the page containing `addr`.
#[inline]
pub const fn pfn_down(addr: PhysAddr) -> Pfn {
    addr >> PAGE_SHIFT
}

/// `PFN_PHYS`: the physical address of the first byte of page `pfn`.
#[inline]
pub const fn pfn_phys(pfn: Pfn) -> PhysAddr {
    pfn << PAGE_SHIFT
}

/// `round_down(x, a)` for a power-of-two `a`.
#[inline]
pub const fn align_down(x: u64, a: u64) -> u64 {
    x & !(a - 1)
}

/// `round_up(x, a)` / `ALIGN(x, a)` for a power-of-two `a` (saturating at the top).
#[inline]
pub const fn align_up(x: u64, a: u64) -> u64 {
    match x.checked_add(a - 1) {
        Some(v) => v & !(a - 1),
        None => !(a - 1),
    }
}

/// `round_up(x, a)` for a power-of-two `a`, or `None` when the result does not fit in
/// 64 bits. Searches use this: a saturated [`align_up`] would be a different, lower
/// address than the one asked for.
#[inline]
pub const fn checked_align_up(x: u64, a: u64) -> Option<u64> {
    match x.checked_add(a - 1) {
        Some(v) => Some(v & !(a - 1)),
        None => None,
    }
}

/// `PAGE_ALIGN`.
#[inline]
pub const fn page_align(x: u64) -> u64 {
    align_up(x, PAGE_SIZE)
}

/// A half-open physical range `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MemRange {
    /// First byte.
    pub base: PhysAddr,
    /// Length in bytes.
    pub size: u64,
}

impl MemRange {
    /// A range from base and size.
    pub const fn new(base: PhysAddr, size: u64) -> Self {
        Self { base, size }
    }

    /// One past the last byte (saturating).
    pub const fn end(&self) -> PhysAddr {
        self.base.saturating_add(self.size)
    }

    /// True when the range has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// True when the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &MemRange) -> bool {
        self.base < other.end() && other.base < self.end()
    }

    /// True when `addr` lies inside the range.
    pub const fn contains(&self, addr: PhysAddr) -> bool {
        addr >= self.base && addr < self.end()
    }
}

impl core::fmt::Display for MemRange {
    /// Linux's `[mem 0x...-0x...]` notation with an inclusive end.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "[mem {:#018x}-{:#018x}]",
            self.base,
            self.end().wrapping_sub(1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfn_helpers() {
        assert_eq!(pfn_up(0x8000_0001), 0x80001);
        assert_eq!(pfn_down(0x8000_0fff), 0x80000);
        assert_eq!(pfn_phys(0xa0000), 0xa000_0000);
        assert_eq!(align_up(0x1001, 0x1000), 0x2000);
        assert_eq!(align_down(0x1fff, 0x1000), 0x1000);
        assert_eq!(align_up(u64::MAX - 3, 0x1000), !0xfff_u64);
        assert_eq!(checked_align_up(0x1001, 0x1000), Some(0x2000));
        assert_eq!(checked_align_up(u64::MAX - 3, 0x1000), None);
        assert_eq!(checked_align_up(!0xfff_u64, 0x1000), Some(!0xfff_u64));
    }

    #[test]
    fn pfn_up_near_u64_max_does_not_overflow() {
        assert_eq!(pfn_up(u64::MAX), 1 << (64 - PAGE_SHIFT));
        assert_eq!(
            pfn_up(u64::MAX - PAGE_SIZE + 1),
            (1 << (64 - PAGE_SHIFT)) - 1
        );
        assert_eq!(pfn_up(0), 0);
        assert_eq!(pfn_up(1), 1);
        assert_eq!(pfn_up(PAGE_SIZE), 1);
    }

    #[test]
    fn display_is_linux_format() {
        let r = MemRange::new(0x6000_0000, 0x2000_0000);
        assert_eq!(
            alloc::format!("{r}"),
            "[mem 0x0000000060000000-0x000000007fffffff]"
        );
    }
}
