//! Node, zones and page frames (Linux `include/linux/mmzone.h`, `mm/mm_init.c`).
//!
//! [`free_area_init_node`] reproduces Linux's `free_area_init_node` for one node of a
//! FLATMEM ARM32 kernel, in Linux's order:
//!
//! 1. `calculate_node_totalpages`: spanned and present pages per zone and node;
//! 2. `alloc_node_mem_map`: the `struct page` array for the MAX_ORDER-aligned node
//!    range, from memblock (`memblock_alloc_try_nid_raw`, the first allocation);
//! 3. `free_area_init_core`: per zone, the memmap charge, `dma_reserve`, managed
//!    pages, the per-cpu batch, the pageblock-flags usemap (one zeroing memblock
//!    allocation per spanned zone, in zone order), empty free lists and
//!    `memmap_init` (every page linked to its zone and node, count 1, reserved; each
//!    pageblock start marked MOVABLE).
//!
//! The boot-log lines are printed with Linux's exact text through `zk_debug!` /
//! `zk_info!` / `zk_warn!` so that a zonekit log can be diffed against `dmesg`.

use crate::addr::{
    align_down, align_up, page_align, pfn_down, Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE,
};
use crate::arch::MmConfig;
use crate::memblock::{Memblock, MemblockError, Region, MEMBLOCK_ALLOC_ACCESSIBLE};
pub use crate::mmtypes::{MigrateType, ZoneType, MAX_NR_ZONES, MIGRATE_TYPES};
use crate::page::{Page, MAX_NUMNODES};
use crate::storage::{PageStorage, StorageError};

/// Capacity of [`Zone::free_area`]: the largest `MmConfig::max_order` supported.
pub const MAX_ORDER_LIMIT: usize = 16;

/// `NR_PAGEBLOCK_BITS`: usemap bits per pageblock (3 migrate-type bits + skip bit).
pub const NR_PAGEBLOCK_BITS: u64 = 4;

/// Mask of the migrate-type bits of a pageblock's flags (`MIGRATETYPE_MASK`).
const MIGRATETYPE_MASK: u8 = 0x7;

/// Bits in an `unsigned long` of the ARM32 kernel (the usemap's rounding unit).
const BITS_PER_LONG: u64 = 32;

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
            nr_orders: 0,
        }
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
        let b = map.get(byte).ok_or(InitError::PfnOutsideZone { pfn })?;
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
        let map = self.usemap.as_mut().ok_or(InitError::NoUsemap)?;
        let b = map.get_mut(byte).ok_or(InitError::PfnOutsideZone { pfn })?;
        *b = (*b & !(MIGRATETYPE_MASK << shift)) | ((mt as u8) << shift);
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

    /// `pfn_to_page`, mutable.
    pub fn pfn_to_page_mut(&mut self, pfn: Pfn) -> Option<&mut Page> {
        let idx = self.pfn_to_index(pfn)?;
        self.mem_map.as_mut()?.get_mut(idx)
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

    /// Verify the state `free_area_init_node` leaves (the in-guest self-check):
    /// every page of every zone is reserved, has reference count 1 and is linked to
    /// its zone and node; the zones add up to the node; the `mem_map` allocation lies
    /// inside `memblock.memory` and inside `memblock.reserved`.
    pub fn check_boot_state<const N: usize>(
        &self,
        memblock: &Memblock<N>,
    ) -> Result<NodeCheck, CheckFailure> {
        let spanned: u64 = self.zones.iter().map(|z| z.spanned_pages).sum();
        if spanned != self.node_spanned_pages {
            return Err(CheckFailure::SpannedMismatch {
                zones: spanned,
                node: self.node_spanned_pages,
            });
        }
        let present: u64 = self.zones.iter().map(|z| z.present_pages).sum();
        if present != self.node_present_pages {
            return Err(CheckFailure::PresentMismatch {
                zones: present,
                node: self.node_present_pages,
            });
        }
        let mut result = NodeCheck {
            node_id: self.node_id,
            zones_checked: 0,
            pages_checked: 0,
            spanned_pages: spanned,
            present_pages: present,
            mem_map_phys: self.mem_map_phys,
            mem_map_bytes: self.mem_map_bytes,
        };
        if self.node_spanned_pages == 0 {
            return Ok(result);
        }
        if self.mem_map.is_none() {
            return Err(CheckFailure::NoMemMap);
        }
        let mm_end = self.mem_map_phys.saturating_add(self.mem_map_bytes);
        if !covered(memblock.memory.regions(), self.mem_map_phys, mm_end) {
            return Err(CheckFailure::MemMapNotInMemory {
                base: self.mem_map_phys,
                size: self.mem_map_bytes,
            });
        }
        if !covered(memblock.reserved.regions(), self.mem_map_phys, mm_end) {
            return Err(CheckFailure::MemMapNotReserved {
                base: self.mem_map_phys,
                size: self.mem_map_bytes,
            });
        }
        for zone in self.zones.iter().filter(|z| z.spanned_pages > 0) {
            for pfn in zone.zone_start_pfn..zone.zone_end_pfn() {
                let page = self
                    .pfn_to_page(pfn)
                    .ok_or(CheckFailure::PfnOutsideMemMap { pfn })?;
                if !page.is_reserved() {
                    return Err(CheckFailure::PageNotReserved { pfn });
                }
                if page.refcount() != 1 {
                    return Err(CheckFailure::BadRefcount {
                        pfn,
                        refcount: page.refcount(),
                    });
                }
                if page.zone_type() != zone.zone_type {
                    return Err(CheckFailure::WrongZone {
                        pfn,
                        expected: zone.zone_type,
                        found: page.zone_type(),
                    });
                }
                if page.nid() != self.node_id {
                    return Err(CheckFailure::WrongNode {
                        pfn,
                        expected: self.node_id,
                        found: page.nid(),
                    });
                }
                result.pages_checked += 1;
            }
            result.zones_checked += 1;
        }
        Ok(result)
    }
}

/// True when `[base, end)` is covered by the union of the sorted `regions`.
fn covered(regions: &[Region], base: PhysAddr, end: PhysAddr) -> bool {
    let mut cur = base;
    for r in regions {
        if cur >= end {
            break;
        }
        let r_end = r.base.saturating_add(r.size);
        if r.base <= cur && r_end > cur {
            cur = r_end;
        }
    }
    cur >= end
}

/// What [`PgData::check_boot_state`] verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeCheck {
    /// The node.
    pub node_id: usize,
    /// Zones with spanned pages whose pages were checked.
    pub zones_checked: usize,
    /// Page descriptors checked (the node's spanned pages).
    pub pages_checked: u64,
    /// Sum of the zones' spanned pages (= the node's).
    pub spanned_pages: u64,
    /// Sum of the zones' present pages (= the node's).
    pub present_pages: u64,
    /// Physical address of the `mem_map`.
    pub mem_map_phys: PhysAddr,
    /// Size of the `mem_map` allocation in bytes.
    pub mem_map_bytes: u64,
}

/// Why [`PgData::check_boot_state`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFailure {
    /// The zones' spanned pages do not add up to the node's.
    SpannedMismatch {
        /// Sum over the zones.
        zones: u64,
        /// The node's.
        node: u64,
    },
    /// The zones' present pages do not add up to the node's.
    PresentMismatch {
        /// Sum over the zones.
        zones: u64,
        /// The node's.
        node: u64,
    },
    /// A non-empty node has no `mem_map`.
    NoMemMap,
    /// The `mem_map` allocation is not inside `memblock.memory`.
    MemMapNotInMemory {
        /// Base of the allocation.
        base: PhysAddr,
        /// Size in bytes.
        size: u64,
    },
    /// The `mem_map` allocation is not inside `memblock.reserved`.
    MemMapNotReserved {
        /// Base of the allocation.
        base: PhysAddr,
        /// Size in bytes.
        size: u64,
    },
    /// A zone pfn has no descriptor.
    PfnOutsideMemMap {
        /// The pfn.
        pfn: Pfn,
    },
    /// A page is not `PG_reserved`.
    PageNotReserved {
        /// The pfn.
        pfn: Pfn,
    },
    /// A page's reference count is not 1.
    BadRefcount {
        /// The pfn.
        pfn: Pfn,
        /// Its reference count.
        refcount: i32,
    },
    /// A page is linked to the wrong zone.
    WrongZone {
        /// The pfn.
        pfn: Pfn,
        /// The zone spanning it.
        expected: ZoneType,
        /// The zone in its descriptor.
        found: ZoneType,
    },
    /// A page is linked to the wrong node.
    WrongNode {
        /// The pfn.
        pfn: Pfn,
        /// The node.
        expected: usize,
        /// The node in its descriptor.
        found: usize,
    },
}

impl core::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CheckFailure::SpannedMismatch { zones, node } => {
                write!(f, "zones span {zones} pages but the node spans {node}")
            }
            CheckFailure::PresentMismatch { zones, node } => write!(
                f,
                "zones have {zones} present pages but the node has {node}"
            ),
            CheckFailure::NoMemMap => write!(f, "non-empty node has no mem_map"),
            CheckFailure::MemMapNotInMemory { base, size } => {
                write!(f, "mem_map {base:#x}+{size:#x} is not in memblock.memory")
            }
            CheckFailure::MemMapNotReserved { base, size } => {
                write!(f, "mem_map {base:#x}+{size:#x} is not in memblock.reserved")
            }
            CheckFailure::PfnOutsideMemMap { pfn } => {
                write!(f, "pfn {pfn:#x} has no page descriptor")
            }
            CheckFailure::PageNotReserved { pfn } => write!(f, "pfn {pfn:#x} is not reserved"),
            CheckFailure::BadRefcount { pfn, refcount } => {
                write!(f, "pfn {pfn:#x} has refcount {refcount}, expected 1")
            }
            CheckFailure::WrongZone {
                pfn,
                expected,
                found,
            } => write!(
                f,
                "pfn {pfn:#x} is linked to zone {}, expected {}",
                found.name(),
                expected.name()
            ),
            CheckFailure::WrongNode {
                pfn,
                expected,
                found,
            } => write!(
                f,
                "pfn {pfn:#x} is linked to node {found}, expected {expected}"
            ),
        }
    }
}

/// `zone_batchsize` (MMU build): the per-cpu list batch for a zone of
/// `managed_pages`: about a quarter of 1/1024 of the zone, at most 512 KiB / 4, at
/// least 1, rounded to `2^n - 1`. 130048 pages give 31.
pub fn zone_batchsize(managed_pages: u64) -> u32 {
    let max = (512 * 1024) >> PAGE_SHIFT;
    let mut batch = core::cmp::min(managed_pages / 1024, max);
    batch /= 4;
    if batch < 1 {
        batch = 1;
    }
    let x = batch + batch / 2;
    // rounddown_pow_of_two(x), x >= 1
    let pow = 1u64 << (63 - x.leading_zeros());
    (pow - 1) as u32
}

/// `usemap_size`: bytes of the pageblock-flags bitmap of a zone starting at
/// `zone_start_pfn` and spanning `spanned` pages (4 bits per pageblock, rounded up to
/// whole 32-bit longs).
pub fn usemap_size(zone_start_pfn: Pfn, spanned: u64, pageblock_order: u32) -> u64 {
    let pageblock_order = pageblock_order.min(62);
    let pb = 1u64 << pageblock_order;
    let pages = spanned.saturating_add(zone_start_pfn & (pb - 1));
    let blocks = align_up(pages, pb) >> pageblock_order;
    align_up(blocks * NR_PAGEBLOCK_BITS, BITS_PER_LONG) / 8
}

/// `calc_memmap_size` (FLATMEM): pages of memmap charged to a zone, computed on its
/// spanned pages.
pub fn calc_memmap_size(spanned: u64, struct_page_size: u64) -> u64 {
    page_align(spanned.saturating_mul(struct_page_size)) >> PAGE_SHIFT
}

fn check_config(cfg: &MmConfig) -> Result<(), InitError> {
    if cfg.max_order == 0 || cfg.max_order as usize > MAX_ORDER_LIMIT {
        return Err(InitError::MaxOrderTooLarge {
            max_order: cfg.max_order,
        });
    }
    if cfg.pageblock_order > cfg.max_order - 1 {
        return Err(InitError::BadPageblockOrder {
            pageblock_order: cfg.pageblock_order,
            max_order: cfg.max_order,
        });
    }
    let descriptor = core::mem::size_of::<Page>() as u64;
    if cfg.struct_page_size < descriptor {
        return Err(InitError::DescriptorTooLarge {
            descriptor,
            struct_page_size: cfg.struct_page_size,
        });
    }
    Ok(())
}

/// `calculate_node_totalpages`.
fn calculate_node_totalpages<S: PageStorage>(
    pgdat: &mut PgData<S>,
    zones_size: &[u64; MAX_NR_ZONES],
    zholes_size: &[u64; MAX_NR_ZONES],
) -> Result<(), InitError> {
    let mut start = pgdat.node_start_pfn;
    let mut spanned_total = 0u64;
    let mut present_total = 0u64;
    for (i, zone) in pgdat.zones.iter_mut().enumerate() {
        let size = zones_size[i];
        let hole = zholes_size[i];
        let present = size
            .checked_sub(hole)
            .ok_or(InitError::HoleLargerThanZone {
                zone: zone.zone_type,
                size,
                hole,
            })?;
        zone.zone_start_pfn = start;
        zone.spanned_pages = size;
        zone.present_pages = present;
        start = start.checked_add(size).ok_or(InitError::Overflow)?;
        spanned_total += size;
        present_total += present;
    }
    // Every pfn must stay a representable physical address.
    if start > (u64::MAX >> PAGE_SHIFT) {
        return Err(InitError::Overflow);
    }
    pgdat.node_spanned_pages = spanned_total;
    pgdat.node_present_pages = present_total;
    zk_debug!(
        "On node {} totalpages: {}",
        pgdat.node_id,
        pgdat.node_present_pages
    );
    Ok(())
}

/// `alloc_node_mem_map` (FLATMEM).
fn alloc_node_mem_map<S: PageStorage, const N: usize>(
    pgdat: &mut PgData<S>,
    memblock: &mut Memblock<N>,
    storage: &mut S,
    cfg: &MmConfig,
) -> Result<(), InitError> {
    if pgdat.node_spanned_pages == 0 {
        return Ok(());
    }
    let align = cfg.max_order_nr_pages();
    let start = align_down(pgdat.node_start_pfn, align);
    let end = align_up(pgdat.node_end_pfn(), align);
    let nr_pages = end - start;
    let size = nr_pages
        .checked_mul(cfg.struct_page_size)
        .ok_or(InitError::Overflow)?;
    let count = usize::try_from(nr_pages).map_err(|_| InitError::Overflow)?;
    let base = memblock.alloc_try_nid_raw(
        size,
        cfg.smp_cache_bytes,
        0,
        MEMBLOCK_ALLOC_ACCESSIBLE,
        pgdat.node_id as i32,
    )?;
    let map = storage.mem_map(base, count)?;
    pgdat.mem_map = Some(map);
    pgdat.mem_map_phys = base;
    pgdat.mem_map_bytes = size;
    pgdat.mem_map_start_pfn = start;
    pgdat.node_mem_map_offset = pgdat.node_start_pfn - start;
    let node_mem_map = pgdat.page_phys(pgdat.node_start_pfn).unwrap_or(base);
    zk_debug!(
        "free_area_init_node: node {}, pgdat {:08x}, node_mem_map {:08x}",
        pgdat.node_id,
        pgdat.node_id,
        node_mem_map
    );
    Ok(())
}

/// `__init_single_page` + `__SetPageReserved` for `[start, end)`: every descriptor of
/// the range gets the same value, so one template is computed and stored into each
/// (pfns the map does not describe are skipped). Returns the pages initialised.
fn init_reserved_range(
    map: &mut [Page],
    map_start: Pfn,
    start: Pfn,
    end: Pfn,
    zone: ZoneType,
    nid: usize,
) -> u64 {
    let mut template = Page::ZEROED;
    template.init_single_page(zone, nid);
    template.set_reserved();
    let len = map.len() as u64;
    let lo = start.saturating_sub(map_start).min(len);
    let hi = end.saturating_sub(map_start).min(len);
    if lo >= hi {
        return 0;
    }
    map[lo as usize..hi as usize].fill(template);
    hi - lo
}

/// `memmap_init` for one zone (MEMINIT_EARLY): the pages of every memblock.memory
/// range inside the zone are initialised and reserved, and each pageblock start
/// among them marks its block MOVABLE (`memmap_init_range`); the zone's holes are
/// initialised and reserved too (`init_unavailable_range`) and counted.
fn memmap_init_zone<S: PageStorage, const N: usize>(
    map: &mut [Page],
    map_start: Pfn,
    zone: &mut Zone<S>,
    memblock: &Memblock<N>,
) -> Result<(), InitError> {
    let zstart = zone.zone_start_pfn;
    let zend = zone.zone_end_pfn();
    let pb_mask = (1u64 << zone.pageblock_order) - 1;
    let (zt, nid) = (zone.zone_type, zone.node);
    let mut hole_pfn = zstart;
    let mut holes = 0u64;
    for r in memblock.memory_ranges() {
        let start = pfn_down(r.base.saturating_add(PAGE_SIZE - 1)).clamp(zstart, zend);
        let end = pfn_down(r.end()).clamp(zstart, zend);
        if start >= end {
            continue;
        }
        if hole_pfn < start {
            holes += init_reserved_range(map, map_start, hole_pfn, start, zt, nid);
        }
        init_reserved_range(map, map_start, start, end, zt, nid);
        let first_block = align_up(start, pb_mask + 1);
        let mut pfn = first_block;
        while pfn < end {
            zone.set_pageblock_migratetype(pfn, MigrateType::Movable)?;
            pfn += pb_mask + 1;
        }
        hole_pfn = hole_pfn.max(end);
    }
    if hole_pfn < zend {
        holes += init_reserved_range(map, map_start, hole_pfn, zend, zt, nid);
    }
    if holes > 0 {
        zk_info!(
            "On node {}, zone {}: {} pages in unavailable ranges",
            nid,
            zt.name(),
            holes
        );
    }
    Ok(())
}

/// `free_area_init_core`.
fn free_area_init_core<S: PageStorage, const N: usize>(
    pgdat: &mut PgData<S>,
    memblock: &mut Memblock<N>,
    storage: &mut S,
    cfg: &MmConfig,
    dma_reserve: u64,
) -> Result<(), InitError> {
    let nid = pgdat.node_id;
    // Linux charges dma_reserve to zone index 0. zonekit always has ZONE_DMA at
    // index 0, even where Linux has no ZONE_DMA (4.x boards, where index 0 is
    // Normal), so the rule is applied to the first populated non-highmem zone:
    // DMA when it has pages, otherwise Normal.
    let reserve_zone = pgdat
        .zones
        .iter()
        .position(|z| z.is_populated() && !z.zone_type.is_highmem());
    let mut nr_kernel_pages = 0u64;
    let mut nr_all_pages = 0u64;
    for j in 0..MAX_NR_ZONES {
        let zone = &mut pgdat.zones[j];
        let zt = zone.zone_type;
        let size = zone.spanned_pages;
        let mut freesize = zone.present_pages;
        let memmap_pages = calc_memmap_size(size, cfg.struct_page_size);
        zone.memmap_pages = memmap_pages;
        if !zt.is_highmem() {
            if freesize >= memmap_pages {
                freesize -= memmap_pages;
                if memmap_pages > 0 {
                    zk_debug!(
                        "  {} zone: {} pages used for memmap",
                        zt.name(),
                        memmap_pages
                    );
                }
            } else {
                zk_warn!(
                    "  {} zone: {} pages exceeds freesize {}",
                    zt.name(),
                    memmap_pages,
                    freesize
                );
            }
        }
        if reserve_zone == Some(j) && freesize > dma_reserve {
            freesize -= dma_reserve;
            zk_debug!("  {} zone: {} pages reserved", zt.name(), dma_reserve);
        }
        if !zt.is_highmem() {
            nr_kernel_pages += freesize;
        } else if nr_kernel_pages > memmap_pages.saturating_mul(2) {
            // Charge for the highmem memmap if there are enough kernel pages.
            nr_kernel_pages -= memmap_pages;
        }
        nr_all_pages += freesize;
        zone.managed_pages = if zt.is_highmem() {
            zone.present_pages
        } else {
            freesize
        };
        zone.node = nid;
        zone.pageblock_order = cfg.pageblock_order;
        // zone_pcp_init
        zone.batch = zone_batchsize(zone.managed_pages);
        if zone.is_populated() {
            zk_debug!(
                "  {} zone: {} pages, LIFO batch:{}",
                zt.name(),
                zone.present_pages,
                zone.batch
            );
        }
        // zone_init_free_lists (init_currently_empty_zone)
        zone.nr_orders = cfg.max_order as usize;
        zone.free_area = [FreeArea::EMPTY; MAX_ORDER_LIMIT];
        if size == 0 {
            continue;
        }
        // setup_usemap
        let usemapsize = usemap_size(zone.zone_start_pfn, size, cfg.pageblock_order);
        if usemapsize > 0 {
            let bytes = usize::try_from(usemapsize).map_err(|_| InitError::Overflow)?;
            let base = memblock.alloc_try_nid(
                storage,
                usemapsize,
                cfg.smp_cache_bytes,
                0,
                0,
                nid as i32,
            )?;
            zone.usemap = Some(storage.bitmap(base, bytes)?);
            zone.usemap_phys = base;
            zone.usemap_bytes = usemapsize;
        }
        let map_start = pgdat.mem_map_start_pfn;
        let map = pgdat.mem_map.as_deref_mut().ok_or(InitError::Overflow)?;
        memmap_init_zone(map, map_start, &mut pgdat.zones[j], memblock)?;
    }
    pgdat.nr_kernel_pages = nr_kernel_pages;
    pgdat.nr_all_pages = nr_all_pages;
    Ok(())
}

/// `free_area_init_node`: set up node `nid` with the zone sizes and holes (in pages)
/// the arch computed (`zone_sizes_init`), allocating its `mem_map` and usemaps from
/// `memblock` and viewing them through `storage`.
///
/// `dma_reserve` pages are charged by Linux to zone index 0. zonekit always keeps
/// ZONE_DMA at index 0, also for boards where Linux has no ZONE_DMA (the 4.x seed
/// kernels, whose index 0 is Normal), so the rule is applied to the **first populated
/// non-highmem zone**: DMA when it has pages, else Normal. On a Linux 6.1 `armmp`
/// layout (all lowmem in DMA) and a 4.x layout (DMA empty) this is exactly Linux's
/// zone 0. Its "pages reserved" line names that zone.
///
/// Holes inside a zone (spanned but not in `memblock.memory`) get their descriptors
/// initialised and reserved like Linux 6.1's `init_unavailable_range`, attributed to
/// the zone that spans them, and are counted in an `On node N, zone Z: n pages in
/// unavailable ranges` line. Descriptors of the MAX_ORDER padding outside the node
/// stay as the storage handed them out.
///
/// On error, allocations already made from `memblock` stay reserved (Linux panics
/// at that point).
#[allow(clippy::too_many_arguments)]
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
    check_config(cfg)?;
    if nid >= MAX_NUMNODES {
        return Err(InitError::BadNode { nid });
    }
    let mut pgdat = PgData::new(nid);
    pgdat.node_start_pfn = node_start_pfn;
    calculate_node_totalpages(&mut pgdat, zones_size, zholes_size)?;
    alloc_node_mem_map(&mut pgdat, memblock, storage, cfg)?;
    free_area_init_core(&mut pgdat, memblock, storage, cfg, dma_reserve)?;
    Ok(pgdat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batchsize() {
        assert_eq!(zone_batchsize(130048), 31);
        assert_eq!(zone_batchsize(0), 0); // rounddown(1 + 0) - 1
        assert_eq!(zone_batchsize(4096), 0);
        assert_eq!(zone_batchsize(8192), 1);
        assert_eq!(zone_batchsize(1 << 20), 31);
        assert_eq!(zone_batchsize(u64::MAX), 31);
    }

    #[test]
    fn usemap_sizes() {
        assert_eq!(usemap_size(0x60000, 131072, 11), 32);
        assert_eq!(usemap_size(0x60000, 196608, 11), 48);
        assert_eq!(usemap_size(0x90000, 65536, 11), 16);
        assert_eq!(usemap_size(0, 1, 10), 4);
        // A start inside a pageblock adds a block.
        assert_eq!(usemap_size(0x80001, 1024, 10), 4);
        assert_eq!(usemap_size(0x80001, 8 * 1024, 10), 8);
        assert_eq!(usemap_size(0, 0, 10), 0);
    }

    #[test]
    fn memmap_charge() {
        assert_eq!(calc_memmap_size(131072, 32), 1024);
        assert_eq!(calc_memmap_size(131072, 36), 1152);
        assert_eq!(calc_memmap_size(196608, 36), 1728);
        assert_eq!(calc_memmap_size(76800, 36), 675);
        assert_eq!(calc_memmap_size(131072, 16), 512);
    }

    #[test]
    fn pageblock_nibbles() {
        use crate::storage::VecPageStorage;
        let mut z: Zone<VecPageStorage> = Zone::new(ZoneType::Normal, 0);
        // Zone starting inside a pageblock: indices count from the rounded-down start.
        z.zone_start_pfn = 0x80100;
        z.spanned_pages = 0x1ff00;
        z.pageblock_order = 10;
        assert_eq!(
            z.get_pageblock_migratetype(0x80100),
            Err(InitError::NoUsemap)
        );
        z.usemap = Some(alloc::vec![0; usemap_size(0x80100, 0x1ff00, 10) as usize]);
        z.set_pageblock_migratetype(0x80100, MigrateType::Reclaimable)
            .unwrap();
        z.set_pageblock_migratetype(0x80400, MigrateType::Movable)
            .unwrap();
        z.set_pageblock_migratetype(0x9ffff, MigrateType::Isolate)
            .unwrap();
        let map = z.usemap.as_ref().unwrap();
        assert_eq!(map[0], 0x12);
        assert_eq!(map[63], 0x50);
        assert_eq!(
            z.get_pageblock_migratetype(0x803ff).unwrap(),
            MigrateType::Reclaimable
        );
        assert_eq!(
            z.get_pageblock_migratetype(0x80400).unwrap(),
            MigrateType::Movable
        );
        assert_eq!(
            z.get_pageblock_migratetype(0x9fc00).unwrap(),
            MigrateType::Isolate
        );
        assert_eq!(
            z.get_pageblock_migratetype(0xa0000),
            Err(InitError::PfnOutsideZone { pfn: 0xa0000 })
        );
        // The skip bit (bit 3) survives a migrate-type update.
        z.usemap.as_mut().unwrap()[1] = 0x08;
        z.set_pageblock_migratetype(0x80800, MigrateType::Cma)
            .unwrap();
        assert_eq!(z.usemap.as_ref().unwrap()[1], 0x0c);
    }
}
