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
//! | `next`, `prev` | free-list links: `mem_map` indices of the neighbours (or [`Page::NIL`]); a per-CPU list's head has a stale `prev`, and a block the per-CPU fast path hands out (`pcp_pop`) keeps its stale links; neither is read |
//!
//! Linux counterpart: `struct page` (`include/linux/mm_types.h`) and its `page->flags` zone/node bits.

use crate::mmtypes::ZoneType;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

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
///
/// The four words are atomics accessed with `Relaxed` ordering (a plain load or
/// store on ARMv7): a descriptor is only ever changed by the holder of the lock that
/// owns the page at that moment (the zone lock for buddy pages, the CPU's pageset
/// lock for per-CPU pages, the owner for allocated ones), and those locks order the
/// accesses. Only the buddy check of `__free_one_page` reads another owner's
/// descriptor (as Linux's `page_is_buddy` does); being atomic, that read is a race
/// on a value, never undefined behaviour. Single-threaded code pays nothing.
#[repr(C)]
pub struct Page {
    flags: AtomicU32,
    refcount: AtomicI32,
    next: AtomicU32,
    prev: AtomicU32,
}

impl Default for Page {
    fn default() -> Self {
        Self::ZEROED
    }
}

impl Clone for Page {
    fn clone(&self) -> Self {
        Page::from_words(self.to_words())
    }
}

impl PartialEq for Page {
    fn eq(&self, other: &Self) -> bool {
        self.to_words() == other.to_words()
    }
}

impl Eq for Page {}

impl core::fmt::Debug for Page {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Page")
            .field("flags", &format_args!("{:#x}", self.raw_flags()))
            .field("refcount", &self.refcount())
            .field("next", &self.next())
            .field("prev", &self.prev())
            .finish()
    }
}

const R: Ordering = Ordering::Relaxed;

impl Page {
    /// "No page" in a free-list link.
    pub const NIL: u32 = u32::MAX;

    /// A zeroed descriptor, as memblock hands out raw memory (a template: each use is
    /// a fresh value).
    #[allow(clippy::declare_interior_mutable_const)]
    pub const ZEROED: Page = Page::from_words([0, 0, Page::NIL, Page::NIL]);

    /// A descriptor from its four words in memory order (flags, refcount, next, prev).
    #[inline]
    pub const fn from_words(w: [u32; 4]) -> Page {
        Page {
            flags: AtomicU32::new(w[0]),
            refcount: AtomicI32::new(w[1] as i32),
            next: AtomicU32::new(w[2]),
            prev: AtomicU32::new(w[3]),
        }
    }

    /// Overwrite this descriptor with `other`'s words.
    #[inline]
    pub fn store(&self, other: &Page) {
        self.store_words(other.to_words());
    }

    #[inline]
    fn store_words(&self, w: [u32; 4]) {
        self.flags.store(w[0], R);
        self.refcount.store(w[1] as i32, R);
        self.next.store(w[2], R);
        self.prev.store(w[3], R);
    }

    #[inline]
    fn flags(&self) -> u32 {
        self.flags.load(R)
    }

    #[inline]
    fn set_flags(&self, f: u32) {
        self.flags.store(f, R);
    }

    /// `__init_single_page`: reset the descriptor, link it to its zone and node, set the
    /// reference count to 1. The caller then marks it reserved (`__SetPageReserved`).
    #[inline]
    pub fn init_single_page(&self, zone: ZoneType, nid: usize) {
        self.store_words([links(zone, nid), 1, Page::NIL, Page::NIL]);
    }

    /// `set_page_links`: record the zone and node in the flags word.
    #[inline]
    pub fn set_page_links(&self, zone: ZoneType, nid: usize) {
        let keep = self.flags()
            & !((flags::ZONE_MASK << flags::ZONE_SHIFT) | (flags::NODE_MASK << flags::NODE_SHIFT));
        self.set_flags(keep | links(zone, nid));
    }

    /// `page_zonenum`.
    #[inline]
    pub fn zone_type(&self) -> ZoneType {
        ZoneType::from_index(self.zone_idx())
    }

    /// `page_to_nid`.
    #[inline]
    pub fn nid(&self) -> usize {
        ((self.flags() >> flags::NODE_SHIFT) & flags::NODE_MASK) as usize
    }

    /// `PageReserved`.
    #[inline]
    pub fn is_reserved(&self) -> bool {
        self.flags() & flags::PG_RESERVED != 0
    }

    /// `__SetPageReserved`.
    #[inline]
    pub fn set_reserved(&self) {
        self.set_flags(self.flags() | flags::PG_RESERVED);
    }

    /// `__ClearPageReserved`.
    #[inline]
    pub fn clear_reserved(&self) {
        self.set_flags(self.flags() & !flags::PG_RESERVED);
    }

    /// `PageBuddy`: the page heads a free block.
    #[inline]
    pub fn is_buddy(&self) -> bool {
        self.flags() & flags::PG_BUDDY != 0
    }

    /// Mark the page as the head of a free block of `order` (`__SetPageBuddy` +
    /// `set_buddy_order`).
    #[inline]
    pub fn set_buddy(&self, order: u32) {
        let f = self.flags() & !(flags::ORDER_MASK << flags::ORDER_SHIFT);
        self.set_flags(f | flags::PG_BUDDY | ((order & flags::ORDER_MASK) << flags::ORDER_SHIFT));
    }

    /// Clear the free-block marking (`__ClearPageBuddy`).
    #[inline]
    pub fn clear_buddy(&self) {
        self.set_flags(
            self.flags() & !(flags::PG_BUDDY | (flags::ORDER_MASK << flags::ORDER_SHIFT)),
        );
    }

    /// `buddy_order`: the order of the free block this page heads.
    #[inline]
    pub fn buddy_order(&self) -> u32 {
        (self.flags() >> flags::ORDER_SHIFT) & flags::ORDER_MASK
    }

    /// Set the order field alone (the head of an allocated block records its order so
    /// that a free with the wrong order is detected).
    #[inline]
    pub fn set_order(&self, order: u32) {
        let f = self.flags() & !(flags::ORDER_MASK << flags::ORDER_SHIFT);
        self.set_flags(f | ((order & flags::ORDER_MASK) << flags::ORDER_SHIFT));
    }

    /// `PageBuddy(page) && buddy_order(page) == order`, and the page's zone and
    /// node links are `links` (those of [`Self::links`] on the page it would merge
    /// with: `page_is_buddy`'s zone test), in one read and comparison of the flags
    /// (a page outside the zones is never a buddy).
    #[inline]
    pub fn is_buddy_of_order_in(&self, order: u32, links: u32) -> bool {
        let m = flags::PG_BUDDY | (flags::ORDER_MASK << flags::ORDER_SHIFT) | LINK_FIELDS;
        self.flags() & m
            == flags::PG_BUDDY | ((order & flags::ORDER_MASK) << flags::ORDER_SHIFT) | links
    }

    /// The zone and node fields of the flags (`page_zone_id`), in place.
    #[inline]
    pub fn links(&self) -> u32 {
        self.flags() & LINK_FIELDS
    }

    /// Make the page, of the zone and node whose fields are `links` ([`Self::links`]),
    /// the head of a free block of `order` on the `mt` list, in one store of the
    /// whole flags word: the links, `PG_buddy`, the order and the list's migrate
    /// type (`__SetPageBuddy` + `set_buddy_order` + the list it goes on), no other
    /// bit. Written from what the caller knows, not from the word in memory, so
    /// the store waits for no load.
    #[inline]
    pub fn make_buddy_in(&self, links: u32, order: u32, mt: usize) {
        self.set_flags(
            (links & LINK_FIELDS)
                | flags::PG_BUDDY
                | ((order & flags::ORDER_MASK) << flags::ORDER_SHIFT)
                | (((mt as u32) & flags::MT_MASK) << flags::MT_SHIFT),
        );
    }

    /// One store of the flags for a free page: `set` on, `clear` off, the order
    /// and migrate-type fields written.
    #[inline]
    fn set_free_state(&self, set: u32, clear: u32, order: u32, mt: usize) {
        let f = self.flags() & !(clear | STATE_FIELDS);
        self.set_flags(
            f | set
                | ((order & flags::ORDER_MASK) << flags::ORDER_SHIFT)
                | (((mt as u32) & flags::MT_MASK) << flags::MT_SHIFT),
        );
    }

    /// Take a free block's head off its buddy list (`__ClearPageBuddy`, order
    /// cleared) in one read and one store of the flags; returns the migrate type of
    /// the list it was on.
    #[inline]
    pub fn take_off_buddy(&self) -> usize {
        let f = self.flags();
        self.set_flags(f & !(flags::PG_BUDDY | (flags::ORDER_MASK << flags::ORDER_SHIFT)));
        ((f >> flags::MT_SHIFT) & flags::MT_MASK) as usize
    }

    /// Take a page off a per-CPU list on its way back to the buddy (`PG_pcp` and the
    /// order cleared) in one read and one store; returns the migrate type recorded
    /// when it went on the list (`get_pcppage_migratetype`).
    #[inline]
    pub fn take_off_pcp(&self) -> usize {
        let f = self.flags();
        self.set_flags(f & !(flags::PG_PCP | (flags::ORDER_MASK << flags::ORDER_SHIFT)));
        ((f >> flags::MT_SHIFT) & flags::MT_MASK) as usize
    }

    /// Park a page on a per-CPU list as a block of `order` whose pageblock type is
    /// `mt` (`PG_pcp`, the order, `set_pcppage_migratetype`), in one store of the
    /// flags; `PG_buddy` cleared.
    #[inline]
    pub fn make_pcp_flags(&self, order: u32, mt: usize) {
        self.set_free_state(flags::PG_PCP, flags::PG_BUDDY, order, mt);
    }

    /// `PG_pcp`: the page is free on a per-CPU list.
    #[inline]
    pub fn is_pcp(&self) -> bool {
        self.flags() & flags::PG_PCP != 0
    }

    /// Mark the page as parked on a per-CPU list.
    #[inline]
    pub fn set_pcp(&self) {
        self.set_flags(self.flags() | flags::PG_PCP);
    }

    /// Clear the per-CPU marker.
    #[inline]
    pub fn clear_pcp(&self) {
        self.set_flags(self.flags() & !flags::PG_PCP);
    }

    /// The migrate type recorded for the free list (or per-CPU list) the page is on.
    #[inline]
    pub fn list_mt(&self) -> usize {
        ((self.flags() >> flags::MT_SHIFT) & flags::MT_MASK) as usize
    }

    /// Record the migrate type of the list the page is put on.
    #[inline]
    pub fn set_list_mt(&self, mt: usize) {
        let f = self.flags() & !(flags::MT_MASK << flags::MT_SHIFT);
        self.set_flags(f | (((mt as u32) & flags::MT_MASK) << flags::MT_SHIFT));
    }

    /// `page_ref_count`.
    #[inline]
    pub fn refcount(&self) -> i32 {
        self.refcount.load(R)
    }

    /// `set_page_count`.
    #[inline]
    pub fn set_refcount(&self, count: i32) {
        self.refcount.store(count, R);
    }

    /// The raw flags word (for reports and checks).
    #[inline]
    pub fn raw_flags(&self) -> u32 {
        self.flags()
    }

    /// Next page (as a `mem_map` index) on the free list, or [`Page::NIL`] (stale on
    /// an allocated page).
    #[inline]
    pub fn next(&self) -> u32 {
        self.next.load(R)
    }

    /// Previous page (as a `mem_map` index) on the free list, or [`Page::NIL`] (stale
    /// at the head of a per-CPU list, whose tail is kept apart, and on an allocated
    /// page).
    #[inline]
    pub fn prev(&self) -> u32 {
        self.prev.load(R)
    }

    /// Set both free-list links.
    #[inline]
    pub fn set_links(&self, prev: u32, next: u32) {
        self.prev.store(prev, R);
        self.next.store(next, R);
    }

    /// Set the next link.
    #[inline]
    pub fn set_next(&self, next: u32) {
        self.next.store(next, R);
    }

    /// Set the previous link.
    #[inline]
    pub fn set_prev(&self, prev: u32) {
        self.prev.store(prev, R);
    }

    /// `put_page_testzero` of a page held once: drop the reference count from 1 to 0
    /// atomically. Exactly one of several racing frees of the same page gets `true`
    /// and goes on to free it; the others see a free page.
    #[inline]
    pub fn claim_free(&self) -> bool {
        self.refcount.compare_exchange(1, 0, R, R).is_ok()
    }

    /// `__ClearPageReserved` + `set_page_count(0)` over `pages`, whose descriptors
    /// all hold `reserved` (one zone's `memmap_init` value): the two words that
    /// change are stored, the links (already [`Page::NIL`]) are not rewritten.
    #[inline]
    pub fn release_reserved(pages: &[Page], reserved: &Page) {
        let flags = reserved.flags() & !flags::PG_RESERVED;
        for p in pages {
            p.set_flags(flags);
            p.set_refcount(0);
        }
    }

    /// The descriptor as its four words in memory order (flags, refcount, next,
    /// prev), for a storage that writes descriptors into raw memory.
    #[inline]
    pub fn to_words(&self) -> [u32; 4] {
        [
            self.flags(),
            self.refcount() as u32,
            self.next(),
            self.prev(),
        ]
    }

    /// `page_zonenum` as an index (no round trip through [`ZoneType`]).
    #[inline]
    pub fn zone_idx(&self) -> usize {
        ((self.flags() >> flags::ZONE_SHIFT) & flags::ZONE_MASK) as usize
    }

    /// Put an allocated page at the head of a per-CPU list, given its current flags
    /// `f`, those of an allocated head ([`allocated_flags`]: its migrate-type field
    /// is 0, so it is not masked), in one pass of stores: `PG_pcp`, the list's
    /// migrate type `mt`, the order kept, refcount 0, `next` the old head. Its
    /// `prev` is left as it was: a head's is never read, and the page pushed in
    /// front of it writes it.
    #[inline]
    pub fn make_pcp_head(&self, f: u32, mt: usize, next: u32) {
        debug_assert_eq!(
            f & flags::MT_MASK << flags::MT_SHIFT,
            0,
            "not an allocated head"
        );
        let flags = f | flags::PG_PCP | (((mt as u32) & flags::MT_MASK) << flags::MT_SHIFT);
        self.flags.store(flags, R);
        self.refcount.store(0, R);
        self.next.store(next, R);
    }

    /// Take a page off a per-CPU list as the allocated head of a block (one pass of
    /// stores): the flags `allocated` ([`allocated_flags`] of its zone, node and
    /// order: no `PG_pcp`, migrate type 0), refcount 1; the links are left as they
    /// were (only a free page's are read, and every path that frees a page writes
    /// them), so an allocation stores two words. The old flags are not read: a page
    /// on a per-CPU list has no other bits, so the store does not wait for the last
    /// free's.
    #[inline]
    pub fn make_allocated(&self, allocated: u32) {
        self.flags.store(allocated, R);
        self.refcount.store(1, R);
    }
}

/// The zone and node fields.
const LINK_FIELDS: u32 =
    (flags::ZONE_MASK << flags::ZONE_SHIFT) | (flags::NODE_MASK << flags::NODE_SHIFT);

/// The order and migrate-type fields.
const STATE_FIELDS: u32 =
    (flags::ORDER_MASK << flags::ORDER_SHIFT) | (flags::MT_MASK << flags::MT_SHIFT);

#[inline]
fn links(zone: ZoneType, nid: usize) -> u32 {
    ((zone as u32 & flags::ZONE_MASK) << flags::ZONE_SHIFT)
        | ((nid as u32 & flags::NODE_MASK) << flags::NODE_SHIFT)
}

/// The whole flags word of an allocated block's head page in zone `zone` of node
/// `nid`, recording `order`: the zone and node links and the order, nothing else
/// (what the allocation paths leave and the free fast paths expect).
#[inline]
pub fn allocated_flags(zone: ZoneType, nid: usize, order: u32) -> u32 {
    links(zone, nid) | ((order & flags::ORDER_MASK) << flags::ORDER_SHIFT)
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
        let p = Page::ZEROED;
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
