//! GFP flags (Linux `include/linux/gfp.h`, `gfp_types.h`): the subset zonekit acts on,
//! and what they select: the highest zone (`gfp_zone`) and the migrate type
//! (`gfp_migratetype`) of an allocation.

use crate::mmtypes::{MigrateType, ZoneType};

/// GFP flags (`gfp_t`, the subset zonekit acts on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Gfp(pub u32);

impl Gfp {
    /// `__GFP_DMA`: only ZONE_DMA.
    pub const DMA: Gfp = Gfp(0x01);
    /// `__GFP_HIGHMEM`: HighMem allowed.
    pub const HIGHMEM: Gfp = Gfp(0x02);
    /// `__GFP_MOVABLE`: movable pages (MIGRATE_MOVABLE, may use CMA; with HIGHMEM,
    /// ZONE_MOVABLE allowed).
    pub const MOVABLE: Gfp = Gfp(0x08);
    /// `__GFP_RECLAIMABLE`: MIGRATE_RECLAIMABLE.
    pub const RECLAIMABLE: Gfp = Gfp(0x10);
    /// `__GFP_HIGH`: may use half of the min reserve.
    pub const HIGH: Gfp = Gfp(0x20);
    /// `__GFP_ZERO`: zero the pages.
    pub const ZERO: Gfp = Gfp(0x100);
    /// Non-blocking (`GFP_ATOMIC`'s lack of `__GFP_DIRECT_RECLAIM`): a further quarter
    /// of the min reserve and the high-atomic reserve.
    pub const ATOMIC: Gfp = Gfp(0x800);
    /// `__GFP_MEMALLOC`: ignore the watermarks (`ALLOC_NO_WATERMARKS`).
    pub const MEMALLOC: Gfp = Gfp(0x20000);
    /// `GFP_KERNEL`.
    pub const KERNEL: Gfp = Gfp(0);
    /// `GFP_HIGHUSER_MOVABLE`.
    pub const HIGHUSER_MOVABLE: Gfp = Gfp(0x02 | 0x08);
    /// `GFP_ATOMIC`.
    pub const GFP_ATOMIC: Gfp = Gfp(0x20 | 0x800);
    /// Flags the per-CPU fast path handles (zone and migrate type only).
    pub(super) const FAST_PATH_OK: u32 = 0x01 | 0x02 | 0x08 | 0x10;

    /// True when every bit of `other` is set.
    #[inline]
    pub const fn contains(self, other: Gfp) -> bool {
        self.0 & other.0 == other.0
    }

    /// `gfp_zone`: the highest zone the allocation may use.
    #[inline]
    pub fn zone(self) -> ZoneType {
        if self.contains(Gfp::DMA) {
            ZoneType::Dma
        } else if self.contains(Gfp::HIGHMEM) {
            if self.contains(Gfp::MOVABLE) {
                ZoneType::Movable
            } else {
                ZoneType::HighMem
            }
        } else {
            ZoneType::Normal
        }
    }

    /// `gfp_migratetype`.
    #[inline]
    pub fn migratetype(self) -> MigrateType {
        if self.contains(Gfp::MOVABLE) {
            MigrateType::Movable
        } else if self.contains(Gfp::RECLAIMABLE) {
            MigrateType::Reclaimable
        } else {
            MigrateType::Unmovable
        }
    }
}

impl core::ops::BitOr for Gfp {
    type Output = Gfp;
    fn bitor(self, rhs: Gfp) -> Gfp {
        Gfp(self.0 | rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gfp_zone_and_type() {
        assert_eq!(Gfp::KERNEL.zone(), ZoneType::Normal);
        assert_eq!(Gfp::DMA.zone(), ZoneType::Dma);
        assert_eq!(Gfp::HIGHMEM.zone(), ZoneType::HighMem);
        assert_eq!(Gfp::HIGHUSER_MOVABLE.zone(), ZoneType::Movable);
        assert_eq!(Gfp::MOVABLE.zone(), ZoneType::Normal);
        assert_eq!(Gfp::RECLAIMABLE.migratetype(), MigrateType::Reclaimable);
        assert_eq!(Gfp::HIGHUSER_MOVABLE.migratetype(), MigrateType::Movable);
    }
}
