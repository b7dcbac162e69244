//! Node, zones and page frames (Linux `include/linux/mmzone.h`, `mm/mm_init.c`).
//!
//! CONTRACT STUB: the public API below is fixed; bodies are being implemented.
#![allow(unused_variables, missing_docs, dead_code)]

use crate::addr::{Pfn, PhysAddr};
use crate::arch::MmConfig;
use crate::memblock::{Memblock, MemblockError};
use crate::storage::{PageStorage, StorageError};

/// Zone indices (`enum zone_type`), with ZONE_DMA always present as index 0 (it is
/// simply empty on boards without a DMA limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ZoneType {
    Dma = 0,
    Normal = 1,
    HighMem = 2,
    Movable = 3,
}

/// `MAX_NR_ZONES`.
pub const MAX_NR_ZONES: usize = 4;

impl ZoneType {
    pub const ALL: [ZoneType; MAX_NR_ZONES] =
        [ZoneType::Dma, ZoneType::Normal, ZoneType::HighMem, ZoneType::Movable];

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

/// Errors of node/zone initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    Memblock(MemblockError),
    Storage(StorageError),
}

pub struct Zone<S: PageStorage> {
    pub zone_type: ZoneType,
    pub zone_start_pfn: Pfn,
    pub spanned_pages: u64,
    pub present_pages: u64,
    pub managed_pages: u64,
    pub usemap: Option<S::Bitmap>,
}

pub struct PgData<S: PageStorage> {
    pub node_id: usize,
    pub node_start_pfn: Pfn,
    pub node_spanned_pages: u64,
    pub node_present_pages: u64,
    pub zones: [Zone<S>; MAX_NR_ZONES],
    pub mem_map: Option<S::MemMap>,
    pub mem_map_phys: PhysAddr,
}

pub fn free_area_init_node<S: PageStorage, const N: usize>(
    memblock: &mut Memblock<N>,
    storage: &mut S,
    cfg: &MmConfig,
    nid: usize,
    zones_size: &[u64; MAX_NR_ZONES],
    node_start_pfn: Pfn,
    zholes_size: &[u64; MAX_NR_ZONES],
    dma_reserve: u64,
) -> Result<PgData<S>, InitError> {
    unimplemented!()
}
