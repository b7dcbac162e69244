//! The plain enums of the memory model: `enum zone_type` and `enum migratetype`
//! (Linux `include/linux/mmzone.h`), with their counts.
//!
//! Every layer names them: a page descriptor records its zone ([`crate::page`]), the
//! zones and the pageblock bitmap are indexed by them ([`crate::zone`]), the buddy
//! lists and the reports too. They depend on nothing, so that `page` (and `storage`
//! above it) no longer needs the node/zone code: this module is a leaf of core's
//! import graph.

/// Zone indices (`enum zone_type`), with ZONE_DMA always present as index 0 (it is
/// simply empty on boards without a DMA limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ZoneType {
    /// `ZONE_DMA`: memory reachable by DMA-limited devices (all lowmem on Linux 6.1
    /// `armmp`, empty on boards without a DMA limit).
    Dma = 0,
    /// `ZONE_NORMAL`: directly mapped memory.
    Normal = 1,
    /// `ZONE_HIGHMEM`: memory above the lowmem limit, not permanently mapped.
    HighMem = 2,
    /// `ZONE_MOVABLE`: memory only for movable allocations (always empty here).
    Movable = 3,
}

/// `MAX_NR_ZONES`.
pub const MAX_NR_ZONES: usize = 4;

impl ZoneType {
    /// Every zone type, in index order.
    pub const ALL: [ZoneType; MAX_NR_ZONES] = [
        ZoneType::Dma,
        ZoneType::Normal,
        ZoneType::HighMem,
        ZoneType::Movable,
    ];

    /// The zone type with index `i` (taken modulo [`MAX_NR_ZONES`]).
    pub fn from_index(i: usize) -> ZoneType {
        Self::ALL[i & 3]
    }

    /// Linux's `zone_names[]`.
    pub fn name(self) -> &'static str {
        match self {
            ZoneType::Dma => "DMA",
            ZoneType::Normal => "Normal",
            ZoneType::HighMem => "HighMem",
            ZoneType::Movable => "Movable",
        }
    }

    /// `is_highmem_idx`.
    pub fn is_highmem(self) -> bool {
        self == ZoneType::HighMem
    }
}

/// `MIGRATE_TYPES`: the number of migrate types (Linux 6.1 with CMA and isolation).
pub const MIGRATE_TYPES: usize = 6;

/// Migrate types (`enum migratetype`, Linux 6.1 order with CONFIG_CMA and
/// CONFIG_MEMORY_ISOLATION).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MigrateType {
    /// `MIGRATE_UNMOVABLE`.
    Unmovable = 0,
    /// `MIGRATE_MOVABLE`.
    Movable = 1,
    /// `MIGRATE_RECLAIMABLE`.
    Reclaimable = 2,
    /// `MIGRATE_HIGHATOMIC` (= `MIGRATE_PCPTYPES`).
    HighAtomic = 3,
    /// `MIGRATE_CMA`.
    Cma = 4,
    /// `MIGRATE_ISOLATE`.
    Isolate = 5,
}

impl MigrateType {
    /// Every migrate type, in index order.
    pub const ALL: [MigrateType; MIGRATE_TYPES] = [
        MigrateType::Unmovable,
        MigrateType::Movable,
        MigrateType::Reclaimable,
        MigrateType::HighAtomic,
        MigrateType::Cma,
        MigrateType::Isolate,
    ];

    /// The migrate type with index `i`, if there is one.
    pub fn from_index(i: usize) -> Option<MigrateType> {
        Self::ALL.get(i).copied()
    }

    /// Linux's `migratetype_names[]`.
    pub fn name(self) -> &'static str {
        match self {
            MigrateType::Unmovable => "Unmovable",
            MigrateType::Movable => "Movable",
            MigrateType::Reclaimable => "Reclaimable",
            MigrateType::HighAtomic => "HighAtomic",
            MigrateType::Cma => "CMA",
            MigrateType::Isolate => "Isolate",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_types() {
        assert_eq!(MigrateType::ALL.len(), MIGRATE_TYPES);
        assert_eq!(MigrateType::Movable as u8, 1);
        assert_eq!(MigrateType::Cma.name(), "CMA");
        assert_eq!(MigrateType::from_index(6), None);
    }
}
