//! `/proc/zoneinfo`, `/proc/buddyinfo` and `/proc/pagetypeinfo` in Linux 6.1's text
//! formats (`mm/vmstat.c`), written to any `core::fmt::Write`.
//!
//! zoneinfo prints, per zone, what the Linux fixtures capture: the free pages, boost,
//! watermarks, spanned/present/managed/cma pages, the protection array and, for
//! populated zones, the zone stat items (`nr_free_pages`, `nr_free_cma`; the LRU,
//! mlock, bounce and zspages items are always 0 in zonekit), the pagesets with
//! count/high/batch and the stat threshold, `node_unreclaimable` and `start_pfn`.
//! The per-node stat block Linux prints before the first zone is left out (zonekit
//! has no page cache or LRU).

use core::fmt::{Result, Write};

use crate::mmtypes::{MigrateType, ZoneType, MIGRATE_TYPES};
use crate::page::Page;
use crate::page_alloc::PageAllocator;
use crate::storage::PageStorage;

/// `/proc/zoneinfo`.
pub fn zoneinfo<S: PageStorage, const NCPU: usize, W: Write>(
    a: &PageAllocator<S, NCPU>,
    w: &mut W,
) -> Result {
    let node = a.node();
    for zone in node.zones.iter() {
        let zt = zone.zone_type;
        let st = a.zone_state(zt);
        write!(w, "Node {}, zone {:>8}", node.node_id, zone.name())?;
        write!(
            w,
            "\n  pages free     {}\n        boost    {}\n        min      {}\n        low      {}\n        high     {}\n        spanned  {}\n        present  {}\n        managed  {}\n        cma      {}",
            st.counters.free,
            st.boost,
            st.wmark.min + st.boost,
            st.wmark.low + st.boost,
            st.wmark.high + st.boost,
            zone.spanned_pages,
            zone.present_pages,
            zone.managed_pages,
            st.cma_pages
        )?;
        write!(w, "\n        protection: ({}", st.lowmem_reserve[0])?;
        for r in &st.lowmem_reserve[1..] {
            write!(w, ", {r}")?;
        }
        w.write_char(')')?;
        if !zone.is_populated() {
            w.write_char('\n')?;
            continue;
        }
        let stats: [(&str, u64); 11] = [
            ("nr_free_pages", st.counters.free as u64),
            ("nr_zone_inactive_anon", 0),
            ("nr_zone_active_anon", 0),
            ("nr_zone_inactive_file", 0),
            ("nr_zone_active_file", 0),
            ("nr_zone_unevictable", 0),
            ("nr_zone_write_pending", 0),
            ("nr_mlock", 0),
            ("nr_bounce", 0),
            ("nr_zspages", 0),
            ("nr_free_cma", st.counters.free_cma as u64),
        ];
        for (name, v) in stats {
            write!(w, "\n      {name:<12} {v}")?;
        }
        write!(w, "\n  pagesets")?;
        for cpu in 0..a.online_cpus() as usize {
            if let Some(p) = a.pcp(cpu, zt) {
                write!(
                    w,
                    "\n    cpu: {cpu}\n              count: {}\n              high:  {}\n              batch: {}\n  vm stats threshold: {}",
                    p.count, p.high, p.batch, st.stat_threshold
                )?;
            }
        }
        write!(
            w,
            "\n  node_unreclaimable:  0\n  start_pfn:           {}\n",
            zone.zone_start_pfn
        )?;
    }
    Ok(())
}

/// `/proc/buddyinfo`: free blocks per order of every populated zone.
pub fn buddyinfo<S: PageStorage, const NCPU: usize, W: Write>(
    a: &PageAllocator<S, NCPU>,
    w: &mut W,
) -> Result {
    let node = a.node();
    for zone in node.zones.iter().filter(|z| z.is_populated()) {
        write!(w, "Node {}, zone {:>8} ", node.node_id, zone.name())?;
        for area in &zone.free_area[..zone.nr_orders] {
            write!(w, "{:>6} ", area.nr_free)?;
        }
        w.write_char('\n')?;
    }
    Ok(())
}

/// The free blocks per order of every populated zone (buddyinfo's numbers).
pub fn buddyinfo_counts<S: PageStorage, const NCPU: usize>(
    a: &PageAllocator<S, NCPU>,
    zone: ZoneType,
) -> [u64; crate::zone::MAX_ORDER_LIMIT] {
    let z = &a.node().zones[zone as usize];
    core::array::from_fn(|o| {
        if o < z.nr_orders {
            z.free_area[o].nr_free
        } else {
            0
        }
    })
}

/// Blocks on the list of `mt` at `order` (capped at 100000 as Linux does).
fn list_len<S: PageStorage, const NCPU: usize>(
    a: &PageAllocator<S, NCPU>,
    head: u32,
) -> (u64, bool) {
    let Some(map) = a.node().mem_map.as_deref() else {
        return (0, false);
    };
    let mut n = 0;
    let mut i = head;
    while i != Page::NIL {
        n += 1;
        if n >= 100_000 {
            return (n, true);
        }
        i = map[i as usize].next();
    }
    (n, false)
}

/// `/proc/pagetypeinfo`: free blocks per order and migrate type, then pageblocks per
/// migrate type.
pub fn pagetypeinfo<S: PageStorage, const NCPU: usize, W: Write>(
    a: &PageAllocator<S, NCPU>,
    w: &mut W,
) -> Result {
    let node = a.node();
    let Some(first) = node.zones.iter().find(|z| z.nr_orders > 0) else {
        return Ok(());
    };
    let pbo = first.pageblock_order;
    writeln!(w, "Page block order: {pbo}")?;
    writeln!(w, "Pages per block:  {}", 1u64 << pbo)?;
    w.write_char('\n')?;
    write!(w, "{:<43} ", "Free pages count per migrate type at order")?;
    for o in 0..first.nr_orders {
        write!(w, "{o:>6} ")?;
    }
    w.write_char('\n')?;
    for zone in node.zones.iter().filter(|z| z.is_populated()) {
        for mt in MigrateType::ALL {
            write!(
                w,
                "Node {:>4}, zone {:>8}, type {:>12} ",
                node.node_id,
                zone.name(),
                mt.name()
            )?;
            for area in &zone.free_area[..zone.nr_orders] {
                let (n, over) = list_len(a, area.free_list[mt as usize]);
                write!(w, "{}{:>6} ", if over { ">" } else { "" }, n)?;
            }
            w.write_char('\n')?;
        }
    }
    write!(w, "\n{:<23}", "Number of blocks type ")?;
    for mt in MigrateType::ALL {
        write!(w, "{:>12} ", mt.name())?;
    }
    w.write_char('\n')?;
    for zone in node.zones.iter().filter(|z| z.is_populated()) {
        let counts = pageblock_counts(zone);
        write!(w, "Node {}, zone {:>8} ", node.node_id, zone.name())?;
        for c in counts {
            write!(w, "{c:>12} ")?;
        }
        w.write_char('\n')?;
    }
    Ok(())
}

/// Pageblocks of each migrate type in a zone (`pagetypeinfo_showblockcount_print`:
/// every pageblock start in the span that has a valid page).
pub fn pageblock_counts<S: PageStorage>(zone: &crate::zone::Zone<S>) -> [u64; MIGRATE_TYPES] {
    let mut counts = [0u64; MIGRATE_TYPES];
    let nr = 1u64 << zone.pageblock_order;
    let mut pfn = zone.zone_start_pfn;
    while pfn < zone.zone_end_pfn() {
        if let Ok(mt) = zone.get_pageblock_migratetype(pfn) {
            counts[mt as usize] += 1;
        }
        pfn = (pfn & !(nr - 1)) + nr;
    }
    counts
}
