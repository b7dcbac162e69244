//! Per-CPU vmstat (Linux `mm/vmstat.c`): zone counters kept as a global value plus
//! a small per-CPU difference that is folded into the global one only when it
//! passes the zone's `stat_threshold` (`__mod_zone_page_state`), and event counters
//! kept per CPU and summed when read (`all_vm_events`).
//!
//! A CPU writes only its own differences and events, while it holds its pageset
//! lock; readers sum them without any lock (`zone_page_state_snapshot`), so every
//! value is an atomic read and written with `Relaxed` ordering.

use crate::mmtypes::MAX_NR_ZONES;
use core::sync::atomic::{AtomicI32, AtomicIsize, AtomicUsize, Ordering::Relaxed};

/// The zone counters zonekit keeps (`enum zone_stat_item`, the free-page part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneStatItem {
    /// `NR_FREE_PAGES`: pages on the buddy lists.
    NrFreePages = 0,
    /// `NR_FREE_CMA_PAGES`: of those, on MIGRATE_CMA lists.
    NrFreeCmaPages = 1,
}

/// Number of [`ZoneStatItem`]s.
pub const NR_ZONE_STAT_ITEMS: usize = 2;

/// The per-CPU events zonekit counts (`enum vm_event_item`, the allocator part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmEvent {
    /// `PGALLOC_*`: pages allocated (all zones).
    PgAlloc = 0,
    /// `PGFREE`: pages freed.
    PgFree = 1,
    /// zonekit's own: zone-lock acquisitions (refills, drains, slow paths).
    ZoneLock = 2,
}

/// Number of [`VmEvent`]s.
pub const NR_VM_EVENTS: usize = 3;

/// A zone's global counters (`zone->vm_stat`).
#[derive(Debug, Default)]
pub(crate) struct ZoneVmStat {
    global: [AtomicIsize; NR_ZONE_STAT_ITEMS],
}

impl ZoneVmStat {
    pub(crate) fn new(values: [usize; NR_ZONE_STAT_ITEMS]) -> Self {
        ZoneVmStat {
            global: values.map(|v| AtomicIsize::new(v as isize)),
        }
    }

    /// `zone_page_state`: the global value alone (may lag by the CPUs' differences).
    #[inline]
    pub(crate) fn global(&self, item: ZoneStatItem) -> usize {
        self.global[item as usize].load(Relaxed).max(0) as usize
    }

    pub(crate) fn add_global(&self, item: ZoneStatItem, delta: isize) {
        self.global[item as usize].fetch_add(delta, Relaxed);
    }
}

/// One CPU's differences and events (`struct per_cpu_zonestat`, `vm_event_states`).
#[derive(Debug, Default)]
pub(crate) struct CpuVmStat {
    diff: [[AtomicI32; NR_ZONE_STAT_ITEMS]; MAX_NR_ZONES],
    events: [AtomicUsize; NR_VM_EVENTS],
}

impl CpuVmStat {
    /// `__mod_zone_page_state` on this CPU (its pageset lock held): add `delta` to
    /// the difference, folding it into `zone` once it passes `threshold`.
    pub(crate) fn mod_state(
        &self,
        z: usize,
        item: ZoneStatItem,
        delta: i64,
        threshold: u32,
        zone: &ZoneVmStat,
    ) {
        if delta == 0 {
            return;
        }
        let d = &self.diff[z][item as usize];
        let x = d.load(Relaxed) as i64 + delta;
        if x.unsigned_abs() > u64::from(threshold) {
            zone.add_global(item, x as isize);
            d.store(0, Relaxed);
        } else {
            d.store(x as i32, Relaxed);
        }
    }

    /// This CPU's difference for `item` of zone `z`.
    #[inline]
    pub(crate) fn diff(&self, z: usize, item: ZoneStatItem) -> i64 {
        self.diff[z][item as usize].load(Relaxed) as i64
    }

    /// Fold every difference into the zones (`cpu_vm_stats_fold`), this CPU's
    /// pageset lock held.
    pub(crate) fn fold(&self, zones: &[&ZoneVmStat; MAX_NR_ZONES]) {
        for (z, zone) in zones.iter().enumerate() {
            for (i, d) in self.diff[z].iter().enumerate() {
                let x = d.swap(0, Relaxed);
                if x != 0 {
                    zone.global[i].fetch_add(x as isize, Relaxed);
                }
            }
        }
    }

    /// `__count_vm_events` on this CPU (its pageset lock held).
    #[inline]
    pub(crate) fn count(&self, ev: VmEvent, n: usize) {
        let e = &self.events[ev as usize];
        e.store(e.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// This CPU's count of `ev`.
    #[inline]
    pub(crate) fn events(&self, ev: VmEvent) -> usize {
        self.events[ev as usize].load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_fold_past_the_threshold() {
        let zone = ZoneVmStat::new([100, 0]);
        let cpu = CpuVmStat::default();
        cpu.mod_state(0, ZoneStatItem::NrFreePages, -4, 4, &zone);
        assert_eq!(
            (
                zone.global(ZoneStatItem::NrFreePages),
                cpu.diff(0, ZoneStatItem::NrFreePages)
            ),
            (100, -4)
        );
        cpu.mod_state(0, ZoneStatItem::NrFreePages, -1, 4, &zone);
        assert_eq!(
            (
                zone.global(ZoneStatItem::NrFreePages),
                cpu.diff(0, ZoneStatItem::NrFreePages)
            ),
            (95, 0)
        );
        cpu.mod_state(0, ZoneStatItem::NrFreePages, 3, 4, &zone);
        cpu.fold(&[&zone, &zone, &zone, &zone]);
        assert_eq!(
            (
                zone.global(ZoneStatItem::NrFreePages),
                cpu.diff(0, ZoneStatItem::NrFreePages)
            ),
            (98, 0)
        );
        cpu.count(VmEvent::PgAlloc, 8);
        assert_eq!(cpu.events(VmEvent::PgAlloc), 8);
    }
}
