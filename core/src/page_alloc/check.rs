//! The page allocator's invariant checker ([`PageAllocator::check_invariants`]),
//! used by the tests and the in-guest self-test.
//!
//! Linux has no single counterpart: it plays the role of `CONFIG_DEBUG_VM`'s checks
//! over a whole zone. It only reads the allocator: the free and per-CPU lists, the
//! `mem_map` flags and the counters must tell the same story.

use super::{PageAllocator, CMA, NIL};
use crate::addr::Pfn;
use crate::mmtypes::ZoneType;
use crate::page::flags::{MT_MASK, MT_SHIFT, PG_PCP};
use crate::page::{allocated_flags, Page};
use crate::storage::PageStorage;

impl<S: PageStorage, const NCPU: usize> PageAllocator<S, NCPU> {
    /// The invariant checker (tests and the in-guest self-test). Per zone:
    /// free + per-CPU + allocated = managed and managed + reserved = present (holes
    /// are reserved too: reserved pages in the span = spanned - managed); the lists
    /// are well linked, every free block is aligned, inside its zone, marked with its
    /// order and list, `nr_free` matches the lists, free blocks do not overlap, and
    /// the counters match.
    pub fn check_invariants(&self) -> Result<InvariantReport, InvariantError> {
        let mut report = InvariantReport::default();
        let Some(map) = self.node.mem_map.as_deref() else {
            return Ok(report);
        };
        let base = self.node.mem_map_start_pfn;
        if let Some((k, _, _)) = self.routes.stale_block(&self.node) {
            return Err(InvariantError {
                zone: ZoneType::Dma,
                pfn: self.routes.block_start(k),
                what: "the pageblock table differs from the usemaps",
            });
        }
        for (z, zone) in self.node.zones.iter().enumerate() {
            if zone.spanned_pages == 0 {
                continue;
            }
            let zt = zone.zone_type;
            let err = |pfn, what| InvariantError {
                zone: zt,
                pfn,
                what,
            };
            let limit = zone.spanned_pages + 1;
            // 1. the free lists
            let mut list_free = 0u64;
            let mut list_cma = 0u64;
            let mut list_blocks = 0u64;
            if !zone.free_orders.pcp_types_in_step() {
                return Err(err(
                    zone.zone_start_pfn,
                    "free_orders' PCP types do not match the types' own",
                ));
            }
            if zone
                .free_orders
                .by_type()
                .iter()
                .any(|&m| m.checked_shr(zone.nr_orders as u32).is_some_and(|m| m != 0))
            {
                return Err(err(
                    zone.zone_start_pfn,
                    "free_orders names an order past the last",
                ));
            }
            for (o, area) in zone.free_area[..zone.nr_orders].iter().enumerate() {
                let mut n = 0u64;
                for (mt, &head) in area.free_list.iter().enumerate() {
                    let pfns = walk(map, head, buddy_tail(map, head), limit)
                        .map_err(|w| err(base + w as u64, "broken free list link"))?;
                    let mut i = head;
                    for _ in 0..pfns {
                        let pfn = base + i as u64;
                        let p = &map[i as usize];
                        if !zone.contains_pfn(pfn) || pfn + (1 << o) > zone.zone_end_pfn() {
                            return Err(err(pfn, "free block outside its zone"));
                        }
                        if pfn & ((1 << o) - 1) != 0 {
                            return Err(err(pfn, "free block not aligned to its order"));
                        }
                        if !p.is_buddy() || p.buddy_order() as usize != o || p.list_mt() != mt {
                            return Err(err(pfn, "free block head not marked PG_buddy/order/list"));
                        }
                        i = p.next();
                    }
                    n += pfns;
                    if mt == CMA {
                        list_cma += pfns << o;
                    }
                }
                if n != area.nr_free {
                    return Err(err(zone.zone_start_pfn, "nr_free does not match the lists"));
                }
                let orders_match =
                    area.free_list.iter().enumerate().all(|(mt, &head)| {
                        (zone.free_orders.of(mt) >> o & 1 != 0) == (head != NIL)
                    });
                if !orders_match {
                    return Err(err(
                        zone.zone_start_pfn,
                        "free_orders does not match the lists",
                    ));
                }
                list_free += n << o;
                list_blocks += n;
            }
            // 2. the per-CPU lists
            let mut pcp_pages = 0u64;
            for cpu in 0..NCPU {
                let pcp = &self.pcp[cpu][z];
                let mut n = 0;
                for (pindex, &head) in pcp.lists.iter().enumerate() {
                    let order = super::pcp::pindex_to_order(pindex);
                    let k = walk(map, head, pcp.tails[pindex], limit)
                        .map_err(|w| err(base + w as u64, "broken pcp list link"))?;
                    let mut i = head;
                    for _ in 0..k {
                        let pfn = base + i as u64;
                        let p = &map[i as usize];
                        if !zone.contains_pfn(pfn) || !p.is_pcp() || p.buddy_order() != order {
                            return Err(err(pfn, "pcp page not marked or outside zone"));
                        }
                        // The allocation fast path writes an allocated head's flags
                        // without reading them: nothing but these may be set.
                        let mt = (p.raw_flags() >> MT_SHIFT) & MT_MASK;
                        let pcp_flags =
                            allocated_flags(zt, zone.node, order) | PG_PCP | mt << MT_SHIFT;
                        if p.raw_flags() != pcp_flags {
                            return Err(err(pfn, "pcp page has flags beyond its state"));
                        }
                        i = p.next();
                    }
                    n += k << order;
                }
                if n != pcp.count as u64 {
                    return Err(err(
                        zone.zone_start_pfn,
                        "pcp count does not match its lists",
                    ));
                }
                pcp_pages += n;
            }
            // 3. a scan of the span: blocks do not overlap, states add up.
            let (mut free, mut blocks, mut pcp_seen, mut alloc, mut reserved) =
                (0u64, 0u64, 0u64, 0u64, 0u64);
            let end = zone.zone_end_pfn();
            // The pages of the block at `pfn` after its head must be plain.
            let tails_plain = |pfn: Pfn, n: u64| {
                (pfn + 1..(pfn + n).min(end)).find(|&q| {
                    let t = &map[(q - base) as usize];
                    t.is_buddy() || t.is_pcp() || t.is_reserved() || t.refcount() != 0
                })
            };
            let mut pfn = zone.zone_start_pfn;
            while pfn < end {
                let p = &map[(pfn - base) as usize];
                if p.is_reserved() {
                    reserved += 1;
                    pfn += 1;
                    continue;
                }
                let n = 1u64 << p.buddy_order();
                let (count, what) = if p.is_buddy() {
                    blocks += 1;
                    (&mut free, "page inside a free block is in use or overlaps")
                } else if p.is_pcp() {
                    (
                        &mut pcp_seen,
                        "page inside a per-CPU block is in use or overlaps",
                    )
                } else if p.refcount() == 1 {
                    (&mut alloc, "allocated block overlaps another state")
                } else {
                    return Err(err(
                        pfn,
                        "page is neither reserved, free, per-CPU nor allocated",
                    ));
                };
                if let Some(q) = tails_plain(pfn, n) {
                    return Err(err(q, what));
                }
                *count += n;
                pfn += n;
            }
            let zs = &self.zones[z];
            if blocks != list_blocks || free != list_free {
                return Err(err(
                    zone.zone_start_pfn,
                    "free blocks in mem_map differ from the lists",
                ));
            }
            if pcp_seen != pcp_pages {
                return Err(err(
                    zone.zone_start_pfn,
                    "pcp pages in mem_map differ from the lists",
                ));
            }
            if zs.counters.free as u64 != free || zs.counters.free_cma as u64 != list_cma {
                return Err(err(
                    zone.zone_start_pfn,
                    "NR_FREE_PAGES does not match the lists",
                ));
            }
            let stale = self
                .zonelist_heads_at(z)
                .any(|h| self.fast_orders[h] != self.fast_orders_for(h));
            if stale {
                return Err(err(
                    zone.zone_start_pfn,
                    "the fast path's watermark orders are stale",
                ));
            }
            if self.allocated(ZoneType::from_index(z)) != alloc {
                return Err(err(
                    zone.zone_start_pfn,
                    "allocated pages do not match the counter",
                ));
            }
            if free + pcp_pages + alloc != zone.managed_pages
                || reserved != zone.spanned_pages - zone.managed_pages
            {
                return Err(err(
                    zone.zone_start_pfn,
                    "free + pcp + allocated + reserved != present",
                ));
            }
            report.free += free;
            report.pcp += pcp_pages;
            report.allocated += alloc;
            // Linux 4.x's arm_adjust_dma_zone charges every lowmem hole to ZONE_NORMAL,
            // so with holes below the DMA limit Normal's present_pages undercounts and
            // managed can exceed it: no reserved pages then, not an underflow.
            report.reserved_present += zone.present_pages.saturating_sub(zone.managed_pages);
            report.zones += 1;
        }
        Ok(report)
    }
}

/// A buddy list's tail: its head's `prev` (the per-CPU lists keep theirs apart).
fn buddy_tail(map: &[Page], head: u32) -> u32 {
    map.get(head as usize).map_or(NIL, |p| p.prev())
}

/// Length of a list that should end at `tail` (bounded by `limit`), or the index
/// where a link is inconsistent. The head's `prev` is not checked.
fn walk(map: &[Page], head: u32, tail: u32, limit: u64) -> Result<u64, u32> {
    if head == NIL {
        return Ok(0);
    }
    let mut n = 0u64;
    let mut prev = NIL;
    let mut i = head;
    while i != NIL {
        let p = map.get(i as usize).ok_or(i)?;
        if n > 0 && p.prev() != prev {
            return Err(i);
        }
        prev = i;
        i = p.next();
        n += 1;
        if n > limit {
            return Err(head);
        }
    }
    if prev != tail {
        return Err(head);
    }
    Ok(n)
}

/// What [`PageAllocator::check_invariants`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InvariantReport {
    /// Zones checked.
    pub zones: usize,
    /// Pages on buddy lists.
    pub free: u64,
    /// Pages on per-CPU lists.
    pub pcp: u64,
    /// Pages allocated.
    pub allocated: u64,
    /// Present pages never given to the allocator.
    pub reserved_present: u64,
}

/// A broken invariant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvariantError {
    /// The zone.
    pub zone: ZoneType,
    /// The pfn where it was found.
    pub pfn: Pfn,
    /// What is wrong.
    pub what: &'static str,
}

impl core::fmt::Display for InvariantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "zone {} pfn {:#x}: {}",
            self.zone.name(),
            self.pfn,
            self.what
        )
    }
}
