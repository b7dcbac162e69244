//! The per-CPU fast paths' steps, shared by [`PageAllocator`](super::PageAllocator)
//! (one owner, `&mut`) and [`SmpPageAllocator`](super::SmpPageAllocator) (each CPU
//! under its own pageset lock, the zone lock not taken): the low-watermark test of
//! `zone_watermark_fast`, popping a per-CPU list head (`__rmqueue_pcplist`), the
//! `free_page_is_bad` test of a page to free, its pageblock's migrate type
//! (`get_pfnblock_migratetype`) and pushing it on a per-CPU list
//! (`free_unref_page_commit` below `high`).
//!
//! Each step either does its whole job or returns `None`/`false` having changed
//! nothing, so that the caller can fall back to the general path.

use super::buddy::MIGRATE_PCPTYPES;
use super::pcp::PerCpuPages;
use super::{CMA, ISOLATE, MOVABLE, NIL};
use crate::addr::Pfn;
use crate::mmtypes::MIGRATE_TYPES;
use crate::page::flags::{ORDER_MASK, ORDER_SHIFT, PG_BUDDY, PG_PCP, PG_RESERVED};
use crate::page::Page;
use crate::zone::FreeArea;
use core::sync::atomic::{AtomicU8, Ordering};

/// The flag bits a page to free must show: none of these but its order.
const FREE_STATE: u32 = PG_RESERVED | PG_BUDDY | PG_PCP | (ORDER_MASK << ORDER_SHIFT);

/// `zone_watermark_fast`'s count test with `ALLOC_WMARK_LOW` (and `ALLOC_CMA` for a
/// movable allocation): `free` pages, less what this allocation may not use, above
/// `mark` (the low watermark plus boost and the lowmem reserve).
#[inline]
pub(super) fn above_low_mark(
    free: u64,
    free_cma: u64,
    highatomic: u64,
    mark: u64,
    order: u32,
    movable: bool,
) -> bool {
    let mut unusable = highatomic + (1 << order) - 1;
    if !movable {
        unusable += free_cma;
    }
    free - free.min(unusable) > mark
}

/// `__zone_watermark_ok`'s free-area test for one order: a block on a list this
/// allocation may use (a PCP type, or CMA for a movable one).
#[inline]
pub(super) fn area_usable(area: &FreeArea, cma: bool) -> bool {
    area.nr_free != 0
        && (area.free_list[..MIGRATE_PCPTYPES].iter().any(|&h| h != NIL)
            || (cma && area.free_list[CMA] != NIL))
}

/// Pop the head of per-CPU list `pindex` (of `order`) as an allocated block:
/// its `mem_map` index, or `None` when the list is empty or names no page.
#[inline]
pub(super) fn pcp_pop(
    map: &[Page],
    pcp: &mut PerCpuPages,
    pindex: usize,
    order: u32,
) -> Option<u32> {
    let i = pcp.lists[pindex];
    let page = map.get(i as usize)?;
    pcp.free_factor >>= 1;
    // list_del of the head, the descriptor written once.
    let next = page.next();
    if next != NIL {
        map.get(next as usize)?.set_prev(page.prev());
    }
    pcp.lists[pindex] = next;
    pcp.count -= 1 << order;
    page.make_allocated(order);
    Some(i)
}

/// A page that may be freed at `order` without further checks: its `mem_map`
/// index, its flags and its zone, or `None` (outside the map, reserved, free, a
/// tail or another order: the checked path says which).
#[inline]
pub(super) fn free_candidate(
    map: &[Page],
    map_start: Pfn,
    pfn: Pfn,
    order: u32,
) -> Option<(u32, u32, usize)> {
    let i = pfn
        .checked_sub(map_start)
        .filter(|&i| i < map.len() as u64)?;
    let page = &map[i as usize];
    let f = page.raw_flags();
    if f & FREE_STATE != order << ORDER_SHIFT || page.refcount() != 1 {
        return None;
    }
    // An unreserved page is inside its zone (memmap_init links every descriptor to
    // the zone it lies in; pages outside the zones stay reserved), so the zone comes
    // from the descriptor alone.
    Some((i as u32, f, page.zone_idx()))
}

/// `get_pfnblock_migratetype`: 4 bits per pageblock from `usemap_base`; an
/// unknown value reads as MOVABLE. `None` when the pageblock is not in the usemap.
#[inline]
pub(super) fn pageblock_mt(
    usemap: &[AtomicU8],
    usemap_base: Pfn,
    pageblock_order: u32,
    pfn: Pfn,
) -> Option<usize> {
    let block = (pfn - usemap_base) >> pageblock_order;
    let byte = usemap.get((block >> 1) as usize)?.load(Ordering::Relaxed);
    let mt = ((byte >> ((block & 1) << 2)) & 7) as usize;
    Some(if mt >= MIGRATE_TYPES { MOVABLE } else { mt })
}

/// Push page `i` (flags `f`, pageblock type `pmt`) on the head of its per-CPU list
/// if that keeps the lists below `high` without a high-order drain; `false`
/// (nothing changed) for an isolated pageblock or when the general path must drain.
#[inline]
pub(super) fn pcp_push(
    map: &[Page],
    pcp: &mut PerCpuPages,
    i: u32,
    f: u32,
    pmt: usize,
    order: u32,
) -> bool {
    if pmt == ISOLATE {
        return false;
    }
    // free_unref_page_commit drains everything (free_high) or down from `high`.
    if (order > 0 && pcp.free_factor != 0) || pcp.count + (1 << order) >= pcp.high {
        return false;
    }
    if !map[i as usize].claim_free() {
        return false;
    }
    let list = if pmt >= MIGRATE_PCPTYPES {
        MOVABLE
    } else {
        pmt
    };
    // list_add at the head, the descriptor written once.
    let head = &mut pcp.lists[super::pcp::order_to_pindex(list, order)];
    let h = *head;
    let (prev, next) = if h == NIL {
        (i, NIL)
    } else {
        let first = &map[h as usize];
        let tail = first.prev();
        first.set_prev(i);
        (tail, h)
    };
    map[i as usize].make_pcp(f, pmt, prev, next);
    *head = i;
    pcp.count += 1 << order;
    true
}
