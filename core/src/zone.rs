//! The node and zone types: `struct zone`, `pg_data_t` and `struct free_area` (Linux
//! `include/linux/mmzone.h`), with the pageblock-flags accessors
//! (`get_pageblock_migratetype` / `set_pageblock_migratetype`, `mm/page_alloc.c`).
//!
//! Plain data: this module builds nothing. [`crate::mm_init`] fills a [`PgData`]
//! from memblock at boot, [`crate::page_alloc`] runs the buddy allocator over it. It
//! depends only on the layers below it (addresses, page descriptors, page storage and
//! memblock's error type), never on the code that initialises or allocates.

use crate::addr::{align_down, Pfn, PhysAddr};
use crate::memblock::MemblockError;
use crate::mmtypes::{MigrateType, ZoneType, MAX_NR_ZONES, MIGRATE_TYPES};
use crate::page::{Page, MAX_NUMNODES};
use crate::storage::{PageStorage, StorageError};
use core::sync::atomic::Ordering;

/// Capacity of [`Zone::free_area`]: the largest `MmConfig::max_order` supported.
pub const MAX_ORDER_LIMIT: usize = 16;

// Every order has a bit in `FreeOrders`.
const _: () = assert!(MAX_ORDER_LIMIT <= u16::BITS as usize);

/// `NR_PAGEBLOCK_BITS`: usemap bits per pageblock (3 migrate-type bits + skip bit).
pub const NR_PAGEBLOCK_BITS: u64 = 4;

/// Mask of the migrate-type bits of a pageblock's flags (`MIGRATETYPE_MASK`).
const MIGRATETYPE_MASK: u8 = 0x7;

/// Which orders of a zone's free lists hold a block: per migrate type, bit `o` set
/// when `free_area[o].free_list[mt]` is not empty, and the same bits for the PCP
/// types (UNMOVABLE, MOVABLE, RECLAIMABLE) together. Linux has no such field: it
/// is the lists' emptiness kept next to them (by the buddy's list add and delete,
/// checked by `check_invariants`), so that `__rmqueue_smallest` and the
/// watermark's free-area test (`__zone_watermark_ok`, on every allocation of order
/// 1 to 3) find the first usable order with one bit scan instead of a walk over
/// every order. Code that edits the lists by hand must keep these bits in step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeOrders {
    by_type: [u16; MIGRATE_TYPES],
    pcp_types: u16,
}

impl FreeOrders {
    /// Every list empty.
    pub const EMPTY: FreeOrders = FreeOrders {
        by_type: [0; MIGRATE_TYPES],
        pcp_types: 0,
    };

    /// The bits of migrate type `mt` (none for a type that does not exist).
    #[inline]
    pub fn of(&self, mt: usize) -> u16 {
        self.by_type.get(mt).copied().unwrap_or(0)
    }

    /// The bits of the PCP types together.
    #[inline]
    pub fn pcp_types(&self) -> u16 {
        self.pcp_types
    }

    /// Every type's bits.
    pub fn by_type(&self) -> &[u16; MIGRATE_TYPES] {
        &self.by_type
    }

    /// The list of `order` / `mt` holds a block.
    #[inline]
    pub fn set(&mut self, mt: usize, order: u32) {
        let bit = 1u16.checked_shl(order).unwrap_or(0);
        if let Some(m) = self.by_type.get_mut(mt) {
            *m |= bit;
            if mt < MigrateType::HighAtomic as usize {
                self.pcp_types |= bit;
            }
        }
    }

    /// The list of `order` / `mt` is empty.
    #[inline]
    pub fn clear(&mut self, mt: usize, order: u32) {
        let bit = 1u16.checked_shl(order).unwrap_or(0);
        if let Some(m) = self.by_type.get_mut(mt) {
            *m &= !bit;
            if mt < MigrateType::HighAtomic as usize {
                let [u, m, r, ..] = self.by_type;
                self.pcp_types = u | m | r;
            }
        }
    }

    /// The PCP types' bits agree with the types' own.
    pub fn pcp_types_in_step(&self) -> bool {
        let [u, m, r, ..] = self.by_type;
        self.pcp_types == u | m | r
    }
}

// The PCP types are the first three: the ones `FreeOrders::pcp_types` joins.
const _: () = assert!(
    MigrateType::Unmovable as usize == 0
        && MigrateType::Movable as usize == 1
        && MigrateType::Reclaimable as usize == 2
        && MigrateType::HighAtomic as usize == 3
);

/// `struct free_area`: one buddy order's free lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeArea {
    /// Head of the free list of each migrate type, as a `mem_map` index of the node, or
    /// [`Page::NIL`] when the list is empty. Pages are linked through
    /// [`Page::next`] / [`Page::prev`].
    pub free_list: [u32; MIGRATE_TYPES],
    /// Number of free blocks of this order.
    pub nr_free: u64,
}

impl FreeArea {
    /// An order with every list empty.
    pub const EMPTY: FreeArea = FreeArea {
        free_list: [Page::NIL; MIGRATE_TYPES],
        nr_free: 0,
    };
}

impl Default for FreeArea {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// Errors of node/zone initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// A memblock allocation failed.
    Memblock(MemblockError),
    /// The page storage could not provide the memory memblock handed out.
    Storage(StorageError),
    /// A zone's hole is larger than the zone.
    HoleLargerThanZone {
        /// The zone.
        zone: ZoneType,
        /// Its size in pages.
        size: u64,
        /// Its hole in pages.
        hole: u64,
    },
    /// `MmConfig::struct_page_size` is smaller than zonekit's page descriptor, so the
    /// memblock allocation could not hold the `mem_map`.
    DescriptorTooLarge {
        /// `size_of::<Page>()`.
        descriptor: u64,
        /// The configured `struct_page_size`.
        struct_page_size: u64,
    },
    /// `MmConfig::max_order` is 0 or larger than [`MAX_ORDER_LIMIT`].
    MaxOrderTooLarge {
        /// The configured `max_order`.
        max_order: u32,
    },
    /// `MmConfig::pageblock_order` is larger than the largest buddy order.
    BadPageblockOrder {
        /// The configured `pageblock_order`.
        pageblock_order: u32,
        /// The configured `max_order`.
        max_order: u32,
    },
    /// The node id does not fit in a page descriptor.
    BadNode {
        /// The node id.
        nid: usize,
    },
    /// The node's pfn range (or its `mem_map` size) overflows.
    Overflow,
    /// A pfn is outside the zone it was used with.
    PfnOutsideZone {
        /// The pfn.
        pfn: Pfn,
    },
    /// The zone has no usemap.
    NoUsemap,
}

impl From<MemblockError> for InitError {
    fn from(e: MemblockError) -> Self {
        InitError::Memblock(e)
    }
}

impl From<StorageError> for InitError {
    fn from(e: StorageError) -> Self {
        InitError::Storage(e)
    }
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::Memblock(e) => write!(f, "memblock allocation failed: {e}"),
            InitError::Storage(e) => write!(f, "page storage: {e}"),
            InitError::HoleLargerThanZone { zone, size, hole } => write!(
                f,
                "zone {}: hole of {hole} pages exceeds its size of {size} pages",
                zone.name()
            ),
            InitError::DescriptorTooLarge {
                descriptor,
                struct_page_size,
            } => write!(
                f,
                "struct_page_size {struct_page_size} is smaller than the {descriptor}-byte page descriptor"
            ),
            InitError::MaxOrderTooLarge { max_order } => write!(
                f,
                "max_order {max_order} is outside 1..={MAX_ORDER_LIMIT}"
            ),
            InitError::BadPageblockOrder {
                pageblock_order,
                max_order,
            } => write!(
                f,
                "pageblock_order {pageblock_order} exceeds the largest order of max_order {max_order}"
            ),
            InitError::BadNode { nid } => {
                write!(f, "node id {nid} is not below {MAX_NUMNODES}")
            }
            InitError::Overflow => write!(f, "node pfn range overflows"),
            InitError::PfnOutsideZone { pfn } => write!(f, "pfn {pfn:#x} is outside the zone"),
            InitError::NoUsemap => write!(f, "zone has no pageblock usemap"),
        }
    }
}

/// `struct zone`: the boot-time state of one zone.
pub struct Zone<S: PageStorage> {
    /// Which zone this is (its index in the node).
    pub zone_type: ZoneType,
    /// The node the zone belongs to.
    pub node: usize,
    /// First pfn of the zone.
    pub zone_start_pfn: Pfn,
    /// Pages from the zone's start to its end, holes included.
    pub spanned_pages: u64,
    /// Pages that exist (spanned minus holes).
    pub present_pages: u64,
    /// Pages the buddy allocator will manage (an estimate until `memblock_free_all`).
    pub managed_pages: u64,
    /// This zone's memmap size in pages (`calc_memmap_size` on the spanned pages).
    /// It is subtracted from the managed pages of lowmem zones only: a HighMem zone
    /// records it but is not charged.
    pub memmap_pages: u64,
    /// `pageblock_order`.
    pub pageblock_order: u32,
    /// The per-cpu list batch (`zone_batchsize`).
    pub batch: u32,
    /// The pageblock-flags bitmap (`pageblock_flags`), 4 bits per pageblock.
    pub usemap: Option<S::Bitmap>,
    /// Physical address of the usemap (0 when there is none).
    pub usemap_phys: PhysAddr,
    /// Size of the usemap in bytes (`usemap_size`).
    pub usemap_bytes: u64,
    /// The buddy free areas; only the first [`Zone::nr_orders`] are in use.
    pub free_area: [FreeArea; MAX_ORDER_LIMIT],
    /// Which orders' free lists hold a block ([`FreeOrders`]).
    pub free_orders: FreeOrders,
    /// Number of buddy orders (`MAX_ORDER`).
    pub nr_orders: usize,
}

impl<S: PageStorage> Zone<S> {
    /// An empty zone of `zone_type` on node `nid`.
    pub fn new(zone_type: ZoneType, nid: usize) -> Self {
        Zone {
            zone_type,
            node: nid,
            zone_start_pfn: 0,
            spanned_pages: 0,
            present_pages: 0,
            managed_pages: 0,
            memmap_pages: 0,
            pageblock_order: 0,
            batch: 0,
            usemap: None,
            usemap_phys: 0,
            usemap_bytes: 0,
            free_area: [FreeArea::EMPTY; MAX_ORDER_LIMIT],
            free_orders: FreeOrders::EMPTY,
            nr_orders: 0,
        }
    }

    /// `zone_init_free_lists`: every free list empty.
    pub fn init_free_lists(&mut self) {
        self.free_area = [FreeArea::EMPTY; MAX_ORDER_LIMIT];
        self.free_orders = FreeOrders::EMPTY;
    }

    /// `zone_end_pfn`: one past the zone's last pfn.
    pub fn zone_end_pfn(&self) -> Pfn {
        self.zone_start_pfn.saturating_add(self.spanned_pages)
    }

    /// `populated_zone`: the zone has present pages.
    pub fn is_populated(&self) -> bool {
        self.present_pages > 0
    }

    /// The zone's name (`zone->name`).
    pub fn name(&self) -> &'static str {
        self.zone_type.name()
    }

    /// True when `pfn` lies in `[zone_start_pfn, zone_end_pfn)`.
    pub fn contains_pfn(&self, pfn: Pfn) -> bool {
        pfn >= self.zone_start_pfn && pfn < self.zone_end_pfn()
    }

    /// `pfn_to_bitidx`: byte index and shift of the pageblock's 4-bit field.
    fn usemap_slot(&self, pfn: Pfn) -> Result<(usize, u32), InitError> {
        if !self.contains_pfn(pfn) {
            return Err(InitError::PfnOutsideZone { pfn });
        }
        if self.pageblock_order >= 63 {
            return Err(InitError::PfnOutsideZone { pfn });
        }
        let pb = 1u64 << self.pageblock_order;
        let bitidx = ((pfn - align_down(self.zone_start_pfn, pb)) >> self.pageblock_order)
            * NR_PAGEBLOCK_BITS;
        let byte = usize::try_from(bitidx / 8).map_err(|_| InitError::Overflow)?;
        Ok((byte, (bitidx % 8) as u32))
    }

    /// `get_pageblock_migratetype`: the migrate type of the pageblock holding `pfn`.
    pub fn get_pageblock_migratetype(&self, pfn: Pfn) -> Result<MigrateType, InitError> {
        let (byte, shift) = self.usemap_slot(pfn)?;
        let map = self.usemap.as_ref().ok_or(InitError::NoUsemap)?;
        let b = map
            .get(byte)
            .ok_or(InitError::PfnOutsideZone { pfn })?
            .load(Ordering::Relaxed);
        // Three bits can encode 6 and 7, which name no type; Linux never writes them.
        MigrateType::from_index(((b >> shift) & MIGRATETYPE_MASK) as usize)
            .ok_or(InitError::PfnOutsideZone { pfn })
    }

    /// `set_pageblock_migratetype`: set the migrate type of the pageblock holding `pfn`
    /// (the pageblock's skip bit is kept).
    pub fn set_pageblock_migratetype(
        &mut self,
        pfn: Pfn,
        mt: MigrateType,
    ) -> Result<(), InitError> {
        let (byte, shift) = self.usemap_slot(pfn)?;
        let map = self.usemap.as_ref().ok_or(InitError::NoUsemap)?;
        let b = map.get(byte).ok_or(InitError::PfnOutsideZone { pfn })?;
        let old = b.load(Ordering::Relaxed);
        b.store(
            (old & !(MIGRATETYPE_MASK << shift)) | ((mt as u8) << shift),
            Ordering::Relaxed,
        );
        Ok(())
    }
}

/// `pg_data_t`: one memory node.
pub struct PgData<S: PageStorage> {
    /// `node_id`.
    pub node_id: usize,
    /// First pfn of the node.
    pub node_start_pfn: Pfn,
    /// Pages from the node's start to its end, holes included.
    pub node_spanned_pages: u64,
    /// Pages that exist.
    pub node_present_pages: u64,
    /// The zones, indexed by [`ZoneType`].
    pub zones: [Zone<S>; MAX_NR_ZONES],
    /// The page descriptors of `[mem_map_start_pfn, mem_map_start_pfn + len)` (the
    /// MAX_ORDER-aligned node range); `None` for an empty node.
    pub mem_map: Option<S::MemMap>,
    /// Physical address of the `mem_map` allocation.
    pub mem_map_phys: PhysAddr,
    /// Bytes requested from memblock for the `mem_map` (pages × `struct_page_size`).
    pub mem_map_bytes: u64,
    /// First pfn described by `mem_map` (node start rounded down to MAX_ORDER_NR_PAGES).
    pub mem_map_start_pfn: Pfn,
    /// `node_start_pfn - mem_map_start_pfn`: index of the node's first page in
    /// `mem_map` (Linux's `node_mem_map = map + offset`).
    pub node_mem_map_offset: u64,
    /// `nr_kernel_pages`: lowmem pages left after the memmap and `dma_reserve`.
    pub nr_kernel_pages: u64,
    /// `nr_all_pages`: all pages left after the memmap and `dma_reserve`.
    pub nr_all_pages: u64,
}

impl<S: PageStorage> PgData<S> {
    /// An empty node `nid`.
    pub fn new(nid: usize) -> Self {
        PgData {
            node_id: nid,
            node_start_pfn: 0,
            node_spanned_pages: 0,
            node_present_pages: 0,
            zones: core::array::from_fn(|i| Zone::new(ZoneType::from_index(i), nid)),
            mem_map: None,
            mem_map_phys: 0,
            mem_map_bytes: 0,
            mem_map_start_pfn: 0,
            node_mem_map_offset: 0,
            nr_kernel_pages: 0,
            nr_all_pages: 0,
        }
    }

    /// `pgdat_end_pfn`: one past the node's last pfn.
    pub fn node_end_pfn(&self) -> Pfn {
        self.node_start_pfn.saturating_add(self.node_spanned_pages)
    }

    /// The `mem_map` index of `pfn`, if the `mem_map` describes it.
    pub fn pfn_to_index(&self, pfn: Pfn) -> Option<usize> {
        let map = self.mem_map.as_ref()?;
        let idx = usize::try_from(pfn.checked_sub(self.mem_map_start_pfn)?).ok()?;
        (idx < map.len()).then_some(idx)
    }

    /// `pfn_to_page`: the descriptor of `pfn`, if the `mem_map` describes it.
    pub fn pfn_to_page(&self, pfn: Pfn) -> Option<&Page> {
        let idx = self.pfn_to_index(pfn)?;
        self.mem_map.as_ref()?.get(idx)
    }

    /// `page_to_pfn`: the pfn described by `mem_map[index]`.
    pub fn page_to_pfn(&self, index: usize) -> Pfn {
        self.mem_map_start_pfn.wrapping_add(index as u64)
    }

    /// Physical address of the descriptor of `pfn` in zonekit's `mem_map` (`None` when
    /// the `mem_map` does not describe it).
    pub fn page_phys(&self, pfn: Pfn) -> Option<PhysAddr> {
        let idx = self.pfn_to_index(pfn)? as u64;
        Some(self.mem_map_phys + idx * core::mem::size_of::<Page>() as u64)
    }

    /// `pgdat->node_present_pages`, Linux's `totalpages` of the node.
    pub fn totalpages(&self) -> u64 {
        self.node_present_pages
    }

    /// Sum of the zones' managed pages.
    pub fn total_managed(&self) -> u64 {
        self.zones.iter().map(|z| z.managed_pages).sum()
    }

    /// The zone holding `pfn`, if any.
    pub fn zone_of_pfn(&self, pfn: Pfn) -> Option<&Zone<S>> {
        self.zones.iter().find(|z| z.contains_pfn(pfn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_orders_keep_the_pcp_types_in_step() {
        let mut f = FreeOrders::EMPTY;
        f.set(MigrateType::Movable as usize, 3);
        f.set(MigrateType::Unmovable as usize, 3);
        f.set(MigrateType::Cma as usize, 5);
        f.set(MigrateType::HighAtomic as usize, 6);
        assert_eq!(
            f.pcp_types(),
            1 << 3,
            "CMA and HIGHATOMIC are not PCP types"
        );
        assert_eq!(f.of(MigrateType::Cma as usize), 1 << 5);
        // Order 3 stays while another PCP type still has a block there.
        f.clear(MigrateType::Movable as usize, 3);
        assert_eq!(f.pcp_types(), 1 << 3);
        f.clear(MigrateType::Unmovable as usize, 3);
        assert_eq!(f.pcp_types(), 0);
        assert!(f.pcp_types_in_step());
        // A type or an order that does not exist changes nothing.
        f.set(MIGRATE_TYPES, 1);
        f.set(MigrateType::Movable as usize, 16);
        assert_eq!(f.pcp_types(), 0);
        assert_eq!(f.of(MIGRATE_TYPES), 0);
    }
}
