//! The pageblock table: one byte per pageblock of a node's `mem_map` holding the
//! zone the pageblock lies in and the migrate type its zone's usemap records, so
//! that a free finds both with one load where Linux finds the zone, then reads the
//! usemap's nibble (`page_zone`, `get_pfnblock_migratetype`).
//!
//! The usemaps stay the truth: the table is filled from them when the allocator is
//! set up, and every pageblock-type write after that (`set_pageblock_migratetype`,
//! under the zone lock) writes both ([`BlockTableView::set`]); `check_invariants`
//! compares them. (A usemap is reachable read-only through
//! [`PageAllocator::node`](super::PageAllocator::node), but its words are atomics: a
//! store through it would bypass the table. Nothing in zonekit does that.) A pageblock that does not lie in exactly one zone with a usemap,
//! and an isolated one, has an entry with [`SLOW`] set: its frees take the checked
//! path. The memory comes from [`PageStorage::allocator_table`], outside memblock
//! and the buddy, so that what Linux hands out is unchanged.

use crate::addr::{align_down, Pfn};
use crate::mmtypes::MAX_NR_ZONES;
use crate::storage::PageStorage;
use crate::zone::PgData;
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// Entry bit: frees in this pageblock take the checked path.
pub(super) const SLOW: u8 = 0x80;
/// The entry of a pageblock outside every zone, across two, or in a zone without a
/// usemap: [`SLOW`] for good (pageblock-type writes leave it).
const NEVER: u8 = 0xff;
/// Where an entry keeps the zone index (bits 4-5; the migrate type is bits 0-2).
pub(super) const ZONE_SHIFT: u32 = 4;

// Zone indices fit the two zone bits.
const _: () = assert!(MAX_NR_ZONES <= 4);

/// The entry of a pageblock of zone `zone` whose usemap nibble holds `raw` (its
/// three type bits, unknown values included; ISOLATE is [`SLOW`]).
fn entry(zone: u8, raw: u8) -> u8 {
    let slow = if raw as usize == super::ISOLATE {
        SLOW
    } else {
        0
    };
    slow | zone << ZONE_SHIFT | raw & 7
}

/// Where a node's pageblocks sit in its table: entry `k` is the pageblock from
/// `mem_map` index `k << order` (the map starts on a pageblock boundary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct BlockGeometry {
    /// The pageblock order (every zone's).
    order: u32,
}

impl BlockGeometry {
    /// The table index of the pageblock holding `mem_map` index `index`.
    #[inline(always)]
    pub(super) fn block(&self, index: u32) -> usize {
        // `of` checked that the order is below 32: the shift's own masking (free
        // on x86, where a 64-bit shift masks its count to 6 bits).
        (index as usize).wrapping_shr(self.order)
    }

    /// The geometry of `node`'s table and its number of entries, or `None` when the
    /// node cannot have one (no `mem_map`, no zone, zones with different pageblock
    /// orders, a map too large for 32-bit indices, a map that does not start on a
    /// pageblock boundary: `alloc_node_mem_map` aligns it to `MAX_ORDER`, and the
    /// pageblock order is below that wherever Linux's is).
    pub(super) fn of<S: PageStorage>(node: &PgData<S>) -> Option<(Self, usize)> {
        let map_len = node.mem_map.as_deref()?.len();
        let mut zones = node.zones.iter().filter(|z| z.spanned_pages != 0);
        let order = zones.next()?.pageblock_order;
        if order >= 32 || zones.any(|z| z.pageblock_order != order) {
            return None;
        }
        if node.mem_map_start_pfn & ((1 << order) - 1) != 0 {
            return None;
        }
        let end = u32::try_from(map_len).ok()?;
        let entries = end.div_ceil(1 << order) as usize;
        Some((BlockGeometry { order }, entries))
    }

    /// The first pfn of pageblock `k` of a map that starts at `map_start`.
    pub(super) fn start(&self, map_start: Pfn, k: usize) -> Pfn {
        map_start + ((k as u64) << self.order)
    }

    /// What the entry of pageblock `k` must hold, from `node`'s zones and usemaps.
    pub(super) fn expected<S: PageStorage>(&self, node: &PgData<S>, k: usize) -> u8 {
        let lo = self.start(node.mem_map_start_pfn, k);
        let hi = lo + (1u64 << self.order);
        let mut inside = node.zones.iter().enumerate().filter(|(_, z)| {
            z.spanned_pages != 0 && z.zone_start_pfn < hi && z.zone_end_pfn() > lo
        });
        let (Some((zi, zone)), None) = (inside.next(), inside.next()) else {
            return NEVER;
        };
        let Some(usemap) = zone.usemap.as_deref() else {
            return NEVER;
        };
        let pfn = lo.max(zone.zone_start_pfn);
        let bit = ((pfn - align_down(zone.zone_start_pfn, 1 << self.order)) >> self.order) * 4;
        match usemap.get((bit / 8) as usize) {
            Some(b) => entry(zi as u8, (b.load(Relaxed) >> (bit % 8)) & 7),
            None => NEVER,
        }
    }

    /// Fill `table` (of [`Self::of`]'s length) from `node`'s usemaps.
    pub(super) fn fill<S: PageStorage>(&self, node: &PgData<S>, table: &[AtomicU8]) {
        for (k, e) in table.iter().enumerate() {
            e.store(self.expected(node, k), Relaxed);
        }
    }
}

/// One zone's window on the table, for the buddy's pageblock-type writes.
#[derive(Clone, Copy)]
pub(crate) struct BlockTableView<'a> {
    table: &'a [AtomicU8],
    geometry: BlockGeometry,
    zone: u8,
}

impl<'a> BlockTableView<'a> {
    /// No table (before the allocator exists: `memblock_free_all`).
    pub(crate) const NONE: BlockTableView<'static> = BlockTableView {
        table: &[],
        geometry: BlockGeometry { order: 0 },
        zone: 0,
    };

    /// Zone `zone`'s view of `table`.
    pub(super) fn new(table: &'a [AtomicU8], geometry: BlockGeometry, zone: usize) -> Self {
        BlockTableView {
            table,
            geometry,
            zone: zone as u8,
        }
    }

    /// The pageblock holding `mem_map` index `index` now has type bits `raw` in this
    /// zone's usemap (`set_pageblock_migratetype`'s second write).
    pub(crate) fn set(&self, index: u64, raw: u8) {
        let Ok(index) = u32::try_from(index) else {
            return;
        };
        if let Some(e) = self.table.get(self.geometry.block(index)) {
            if e.load(Relaxed) != NEVER {
                e.store(entry(self.zone, raw), Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::Page;
    use crate::storage::VecPageStorage;

    /// A map from pfn 0x1000 in 4-page pageblocks: zone 1 over `[0x1001, 0x100a)`
    /// with a usemap, zone 2 over `[0x100a, 0x1014)` without one.
    fn node() -> PgData<VecPageStorage> {
        let mut node = PgData::new(0);
        node.mem_map_start_pfn = 0x1000;
        node.mem_map = Some(alloc::vec![Page::ZEROED; 24].into());
        for z in &mut node.zones {
            z.pageblock_order = 2;
        }
        (node.zones[1].zone_start_pfn, node.zones[1].spanned_pages) = (0x1001, 9);
        // Nibbles: block 0x1000 RECLAIMABLE, 0x1004 MOVABLE, 0x1008 ISOLATE.
        node.zones[1].usemap = Some(alloc::vec![AtomicU8::new(0x12), AtomicU8::new(0x05)].into());
        (node.zones[2].zone_start_pfn, node.zones[2].spanned_pages) = (0x100a, 10);
        node
    }

    #[test]
    fn entries_name_the_one_zone_and_its_type_or_send_frees_to_the_checked_path() {
        let mut node = node();
        let (geo, entries) = BlockGeometry::of(&node).unwrap();
        assert_eq!(geo, BlockGeometry { order: 2 });
        assert_eq!(entries, 6);
        assert_eq!(geo.block(3), 0);
        assert_eq!(geo.block(4), 1);
        assert_eq!(geo.start(0x1000, 1), 0x1004);
        let e: alloc::vec::Vec<u8> = (0..entries).map(|k| geo.expected(&node, k)).collect();
        // Zone 1's two whole blocks, then one across both zones, then zone 2's
        // (no usemap), then none.
        assert_eq!(e, [0x12, 0x11, NEVER, NEVER, NEVER, NEVER]);
        // Alone in zone 1, the isolated block is SLOW but keeps its zone and type.
        node.zones[1].spanned_pages = 11;
        node.zones[2].zone_start_pfn = 0x100c;
        assert_eq!(geo.expected(&node, 2), SLOW | 0x15);
        // A map that starts inside a pageblock, zones of two pageblock orders, or a
        // pageblock order of 32 bits, have none.
        node.mem_map_start_pfn = 0x1001;
        assert_eq!(BlockGeometry::of(&node), None);
        node.mem_map_start_pfn = 0x1000;
        node.zones[2].pageblock_order = 3;
        assert_eq!(BlockGeometry::of(&node), None);
        node.zones.iter_mut().for_each(|z| z.pageblock_order = 32);
        assert_eq!(BlockGeometry::of(&node), None);
    }

    #[test]
    fn pageblock_type_writes_follow_the_usemap_and_leave_never_entries() {
        let node = node();
        let (geo, entries) = BlockGeometry::of(&node).unwrap();
        let table: alloc::vec::Vec<AtomicU8> = (0..entries).map(|_| AtomicU8::new(0)).collect();
        geo.fill(&node, &table);
        let view = BlockTableView::new(&table, geo, 1);
        view.set(4, super::super::ISOLATE as u8);
        assert_eq!(table[1].load(Relaxed), SLOW | 0x15);
        view.set(5, 0);
        assert_eq!(table[1].load(Relaxed), 0x10);
        // A block across two zones stays SLOW; an index past the table is ignored.
        view.set(8, 0);
        assert_eq!(table[2].load(Relaxed), NEVER);
        view.set(1 << 40, 0);
        BlockTableView::NONE.set(0, 0);
    }
}
