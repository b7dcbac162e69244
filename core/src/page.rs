//! The page descriptor: zonekit's `struct page`.
//!
//! One [`Page`] exists for every page frame a node spans (the `mem_map` array).
//! Linux's ARM32 `struct page` takes 32 to 36 bytes; zonekit packs what the boot
//! flow and the buddy allocator need into **16 bytes** (checked at compile time):
//!
//! | word | contents |
//! |---|---|
//! | `flags` | bits 0-7 page flags (`PG_reserved`, `PG_buddy`, `PG_pcp`), bits 8-12 order, bits 16-18 free-list migrate type, bits 24-25 zone index, bits 26-31 node id |
//! | `refcount` | `_refcount` |
//! | `next`, `prev` | free-list links: `mem_map` indices of the neighbours (or [`Page::NIL`]) |
//!
//! Linux counterpart: `struct page` (`include/linux/mm_types.h`) and its `page->flags` zone/node bits.

use crate::mmtypes::ZoneType;

/// Size of zonekit's page descriptor in bytes.
pub const PAGE_DESCRIPTOR_SIZE: usize = core::mem::size_of::<Page>();

const _: () = assert!(
    PAGE_DESCRIPTOR_SIZE <= 16,
    "the page descriptor budget is 16 bytes"
);

/// Page-flag bits (`enum pageflags`, the subset zonekit uses).
pub mod flags {
    /// `PG_reserved`: not managed by the page allocator.
    pub const PG_RESERVED: u32 = 1 << 0;
    /// `PG_buddy`: free, the head of a block on a buddy free list.
    pub const PG_BUDDY: u32 = 1 << 1;
    /// zonekit's marker for a free page parked on a per-CPU list (Linux keeps such
    /// pages with `_refcount` 0 and `page->pcp_list` linked; zonekit needs the bit to
    /// tell them from allocated pages when checking a free).
    pub const PG_PCP: u32 = 1 << 2;
    /// Shift of the free-list migrate type (bits 16-18): the list a free block or a
    /// per-CPU page is on (Linux's `get_pcppage_migratetype` / the list head).
    pub const MT_SHIFT: u32 = 16;
    /// Mask of the free-list migrate type (after shifting).
    pub const MT_MASK: u32 = 0x7;
    /// Mask of the page-flag bits.
    pub const PG_MASK: u32 = 0xff;
    /// Shift of the buddy order field.
    pub const ORDER_SHIFT: u32 = 8;
    /// Mask of the buddy order field (after shifting).
    pub const ORDER_MASK: u32 = 0x1f;
    /// Shift of the zone index field (`ZONES_PGSHIFT`).
    pub const ZONE_SHIFT: u32 = 24;
    /// Mask of the zone index field (after shifting).
    pub const ZONE_MASK: u32 = 0x3;
    /// Shift of the node id field (`NODES_PGSHIFT`).
    pub const NODE_SHIFT: u32 = 26;
    /// Mask of the node id field (after shifting).
    pub const NODE_MASK: u32 = 0x3f;
}

/// Most nodes the descriptor can name.
pub const MAX_NUMNODES: usize = (flags::NODE_MASK + 1) as usize;

/// A page descriptor (`struct page`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    flags: u32,
    refcount: i32,
    next: u32,
    prev: u32,
}

impl Default for Page {
    fn default() -> Self {
        Self::ZEROED
    }
}

impl Page {
    /// "No page" in a free-list link.
    pub const NIL: u32 = u32::MAX;

    /// A zeroed descriptor, as memblock hands out raw memory.
    pub const ZEROED: Page = Page {
        flags: 0,
        refcount: 0,
        next: Page::NIL,
        prev: Page::NIL,
    };

    /// `__init_single_page`: reset the descriptor, link it to its zone and node, set the
    /// reference count to 1. The caller then marks it reserved (`__SetPageReserved`).
    #[inline]
    pub fn init_single_page(&mut self, zone: ZoneType, nid: usize) {
        *self = Page::ZEROED;
        self.set_page_links(zone, nid);
        self.refcount = 1;
    }

    /// `set_page_links`: record the zone and node in the flags word.
    #[inline]
    pub fn set_page_links(&mut self, zone: ZoneType, nid: usize) {
        let links = ((zone as u32 & flags::ZONE_MASK) << flags::ZONE_SHIFT)
            | ((nid as u32 & flags::NODE_MASK) << flags::NODE_SHIFT);
        let keep = self.flags
            & !((flags::ZONE_MASK << flags::ZONE_SHIFT) | (flags::NODE_MASK << flags::NODE_SHIFT));
        self.flags = keep | links;
    }

    /// `page_zonenum`.
    #[inline]
    pub fn zone_type(&self) -> ZoneType {
        ZoneType::from_index(((self.flags >> flags::ZONE_SHIFT) & flags::ZONE_MASK) as usize)
    }

    /// `page_to_nid`.
    #[inline]
    pub fn nid(&self) -> usize {
        ((self.flags >> flags::NODE_SHIFT) & flags::NODE_MASK) as usize
    }

    /// `PageReserved`.
    #[inline]
    pub fn is_reserved(&self) -> bool {
        self.flags & flags::PG_RESERVED != 0
    }

    /// `__SetPageReserved`.
    #[inline]
    pub fn set_reserved(&mut self) {
        self.flags |= flags::PG_RESERVED;
    }

    /// `__ClearPageReserved`.
    #[inline]
    pub fn clear_reserved(&mut self) {
        self.flags &= !flags::PG_RESERVED;
    }

    /// `PageBuddy`: the page heads a free block.
    #[inline]
    pub fn is_buddy(&self) -> bool {
        self.flags & flags::PG_BUDDY != 0
    }

    /// Mark the page as the head of a free block of `order` (`__SetPageBuddy` +
    /// `set_buddy_order`).
    #[inline]
    pub fn set_buddy(&mut self, order: u32) {
        self.flags &= !(flags::ORDER_MASK << flags::ORDER_SHIFT);
        self.flags |= flags::PG_BUDDY | ((order & flags::ORDER_MASK) << flags::ORDER_SHIFT);
    }

    /// Clear the free-block marking (`__ClearPageBuddy`).
    #[inline]
    pub fn clear_buddy(&mut self) {
        self.flags &= !(flags::PG_BUDDY | (flags::ORDER_MASK << flags::ORDER_SHIFT));
    }

    /// `buddy_order`: the order of the free block this page heads.
    #[inline]
    pub fn buddy_order(&self) -> u32 {
        (self.flags >> flags::ORDER_SHIFT) & flags::ORDER_MASK
    }

    /// Set the order field alone (the head of an allocated block records its order so
    /// that a free with the wrong order is detected).
    #[inline]
    pub fn set_order(&mut self, order: u32) {
        self.flags &= !(flags::ORDER_MASK << flags::ORDER_SHIFT);
        self.flags |= (order & flags::ORDER_MASK) << flags::ORDER_SHIFT;
    }

    /// `PG_pcp`: the page is free on a per-CPU list.
    #[inline]
    pub fn is_pcp(&self) -> bool {
        self.flags & flags::PG_PCP != 0
    }

    /// Mark the page as parked on a per-CPU list.
    #[inline]
    pub fn set_pcp(&mut self) {
        self.flags |= flags::PG_PCP;
    }

    /// Clear the per-CPU marker.
    #[inline]
    pub fn clear_pcp(&mut self) {
        self.flags &= !flags::PG_PCP;
    }

    /// The migrate type recorded for the free list (or per-CPU list) the page is on.
    #[inline]
    pub fn list_mt(&self) -> usize {
        ((self.flags >> flags::MT_SHIFT) & flags::MT_MASK) as usize
    }

    /// Record the migrate type of the list the page is put on.
    #[inline]
    pub fn set_list_mt(&mut self, mt: usize) {
        self.flags &= !(flags::MT_MASK << flags::MT_SHIFT);
        self.flags |= ((mt as u32) & flags::MT_MASK) << flags::MT_SHIFT;
    }

    /// `page_ref_count`.
    #[inline]
    pub fn refcount(&self) -> i32 {
        self.refcount
    }

    /// `set_page_count`.
    #[inline]
    pub fn set_refcount(&mut self, count: i32) {
        self.refcount = count;
    }

    /// The raw flags word (for reports and checks).
    #[inline]
    pub fn raw_flags(&self) -> u32 {
        self.flags
    }

    /// Next page (as a `mem_map` index) on the free list, or [`Page::NIL`].
    #[inline]
    pub fn next(&self) -> u32 {
        self.next
    }

    /// Previous page (as a `mem_map` index) on the free list, or [`Page::NIL`].
    #[inline]
    pub fn prev(&self) -> u32 {
        self.prev
    }

    /// Set both free-list links.
    #[inline]
    pub fn set_links(&mut self, prev: u32, next: u32) {
        self.prev = prev;
        self.next = next;
    }

    /// Set the next link.
    #[inline]
    pub fn set_next(&mut self, next: u32) {
        self.next = next;
    }

    /// `__ClearPageReserved` + `set_page_count(0)` over `pages`, whose descriptors
    /// all hold `reserved` (one zone's `memmap_init` value): the two words that
    /// change are stored, the links (already [`Page::NIL`]) are not rewritten.
    #[inline]
    pub fn release_reserved(pages: &mut [Page], reserved: Page) {
        let flags = reserved.flags & !flags::PG_RESERVED;
        for p in pages {
            p.flags = flags;
            p.refcount = 0;
        }
    }

    /// The descriptor as its four words in memory order (flags, refcount, next,
    /// prev), for a storage that writes descriptors into raw memory.
    #[inline]
    pub fn to_words(self) -> [u32; 4] {
        [self.flags, self.refcount as u32, self.next, self.prev]
    }

    /// `page_zonenum` as an index (no round trip through [`ZoneType`]).
    #[inline]
    pub fn zone_idx(&self) -> usize {
        ((self.flags >> flags::ZONE_SHIFT) & flags::ZONE_MASK) as usize
    }

    /// The descriptor of an allocated page as it goes onto a per-CPU list (one
    /// store): `PG_pcp`, the list's migrate type `mt`, the order kept, refcount 0,
    /// the links given.
    #[inline]
    pub fn to_pcp(self, mt: usize, prev: u32, next: u32) -> Page {
        Page {
            flags: (self.flags & !(flags::MT_MASK << flags::MT_SHIFT))
                | flags::PG_PCP
                | (((mt as u32) & flags::MT_MASK) << flags::MT_SHIFT),
            refcount: 0,
            next,
            prev,
        }
    }

    /// The descriptor of a page taken off a per-CPU list as the allocated head of
    /// a block of `order` (one store): no `PG_pcp`, the order recorded, migrate type
    /// 0, refcount 1, unlinked.
    #[inline]
    pub fn to_allocated(self, order: u32) -> Page {
        Page {
            flags: (self.flags
                & !(flags::PG_PCP
                    | flags::PG_BUDDY
                    | (flags::MT_MASK << flags::MT_SHIFT)
                    | (flags::ORDER_MASK << flags::ORDER_SHIFT)))
                | ((order & flags::ORDER_MASK) << flags::ORDER_SHIFT),
            refcount: 1,
            next: Page::NIL,
            prev: Page::NIL,
        }
    }

    /// Set the previous link.
    #[inline]
    pub fn set_prev(&mut self, prev: u32) {
        self.prev = prev;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_is_16_bytes() {
        assert_eq!(PAGE_DESCRIPTOR_SIZE, 16);
    }

    #[test]
    fn links_round_trip() {
        let mut p = Page::ZEROED;
        p.init_single_page(ZoneType::HighMem, 5);
        p.set_reserved();
        assert_eq!(p.zone_type(), ZoneType::HighMem);
        assert_eq!(p.nid(), 5);
        assert!(p.is_reserved());
        assert_eq!(p.refcount(), 1);
        p.set_buddy(10);
        assert!(p.is_buddy());
        assert_eq!(p.buddy_order(), 10);
        assert_eq!(p.zone_type(), ZoneType::HighMem);
        p.clear_buddy();
        assert!(!p.is_buddy());
        p.clear_reserved();
        assert!(!p.is_reserved());
        assert_eq!(p.nid(), 5);
    }
}
