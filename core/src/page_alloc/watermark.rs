//! Watermarks, lowmem reserves and per-CPU list sizes, as Linux 6.1 computes them
//! (`mm/page_alloc.c`: `calculate_min_free_kbytes`, `__setup_per_zone_wmarks`,
//! `setup_per_zone_lowmem_reserve`, `zone_batchsize`, `zone_highsize`;
//! `mm/khugepaged.c`: `set_recommended_min_free_kbytes`; `mm/vmstat.c`:
//! `calculate_normal_threshold`).
//!
//! Every function here is pure: it takes the zones' managed pages (the value at the
//! moment Linux runs `init_per_zone_wmark_min`, i.e. what `memblock_free_all` freed
//! plus the CMA pages) and returns what `/proc/zoneinfo` prints. The formulas were
//! checked against the 6.1 oracle fixtures (`tests/fixtures/linux-6.1-proc`).

use crate::mmtypes::{ZoneType, MAX_NR_ZONES};

/// `SWAP_CLUSTER_MAX`.
pub const SWAP_CLUSTER_MAX: u64 = 32;
/// Default `vm.watermark_scale_factor`.
pub const DEFAULT_WATERMARK_SCALE_FACTOR: u64 = 10;
/// Default `vm.lowmem_reserve_ratio` of Linux 6.1 (DMA, Normal, HighMem, Movable).
pub const DEFAULT_LOWMEM_RESERVE_RATIO: [u64; MAX_NR_ZONES] = [256, 32, 0, 0];
/// `MIGRATE_PCPTYPES`.
pub const MIGRATE_PCPTYPES: u64 = 3;

/// `int_sqrt`: the floor of the square root.
pub fn int_sqrt(x: u64) -> u64 {
    if x < 2 {
        return x;
    }
    // Newton's iteration on integers, started above the root.
    let mut r = 1u64 << (64 - x.leading_zeros()).div_ceil(2);
    loop {
        let next = (r + x / r) / 2;
        if next >= r {
            return r;
        }
        r = next;
    }
}

/// `calculate_min_free_kbytes`: `clamp(int_sqrt(lowmem_kbytes * 16), 128, 262144)`,
/// where `lowmem_kbytes = nr_free_buffer_pages() * 4`.
pub fn calculate_min_free_kbytes(lowmem_kbytes: u64) -> u64 {
    int_sqrt(lowmem_kbytes.saturating_mul(16)).clamp(128, 262_144)
}

/// `is_highmem(zone)` as `__setup_per_zone_wmarks` sees it: HighMem, and Movable when
/// the movable zone's pages come from highmem (whenever HighMem is populated;
/// `find_usable_zone_for_movable` picks the highest populated arch zone).
pub fn zone_is_highmem(zone: ZoneType, managed: &[u64; MAX_NR_ZONES]) -> bool {
    match zone {
        ZoneType::HighMem => true,
        ZoneType::Movable => managed[ZoneType::HighMem as usize] > 0,
        _ => false,
    }
}

/// `nr_free_buffer_pages`: Σ over DMA and Normal of `managed - high_wmark` (0 if
/// negative).
pub fn nr_free_buffer_pages(managed: &[u64; MAX_NR_ZONES], high: &[u64; MAX_NR_ZONES]) -> u64 {
    (0..=ZoneType::Normal as usize)
        .map(|i| managed[i].saturating_sub(high[i]))
        .sum()
}

/// One zone's watermarks (`_watermark[]`, without boost).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watermarks {
    /// `WMARK_MIN`.
    pub min: u64,
    /// `WMARK_LOW`.
    pub low: u64,
    /// `WMARK_HIGH`.
    pub high: u64,
    /// `WMARK_PROMO` (high + delta; not shown in /proc).
    pub promo: u64,
}

/// `__setup_per_zone_wmarks`: the watermarks of every zone from `min_free_kbytes`, the
/// zones' managed pages and `watermark_scale_factor`.
pub fn setup_per_zone_wmarks(
    min_free_kbytes: u64,
    managed: &[u64; MAX_NR_ZONES],
    watermark_scale_factor: u64,
) -> [Watermarks; MAX_NR_ZONES] {
    let pages_min = min_free_kbytes >> 2;
    let is_high: [bool; MAX_NR_ZONES] =
        core::array::from_fn(|i| zone_is_highmem(ZoneType::from_index(i), managed));
    let lowmem_pages: u64 = (0..MAX_NR_ZONES)
        .filter(|&i| !is_high[i])
        .map(|i| managed[i])
        .sum();
    core::array::from_fn(|i| {
        let m = managed[i];
        let tmp = if lowmem_pages == 0 {
            0
        } else {
            ((pages_min as u128 * m as u128) / lowmem_pages as u128) as u64
        };
        let min = if is_high[i] {
            (m / 1024).clamp(SWAP_CLUSTER_MAX, 128)
        } else {
            tmp
        };
        // mult_frac(managed, watermark_scale_factor, 10000), in u128: Linux bounds
        // the sysctl to 1..=3000, a hand-made AllocConfig need not (saturates).
        let wsf = u128::from(watermark_scale_factor);
        let scaled = (u128::from(m / 10000) * wsf + u128::from(m % 10000) * wsf / 10000)
            .try_into()
            .unwrap_or(u64::MAX);
        let delta = core::cmp::max(tmp >> 2, scaled);
        Watermarks {
            min,
            low: min.saturating_add(delta),
            high: min.saturating_add(delta.saturating_mul(2)),
            promo: min.saturating_add(delta.saturating_mul(3)),
        }
    })
}

/// `setup_per_zone_lowmem_reserve`: `protection[i][j]` = pages zone `i` keeps back from
/// an allocation that could also use zones up to `j`.
pub fn setup_per_zone_lowmem_reserve(
    managed: &[u64; MAX_NR_ZONES],
    ratio: &[u64; MAX_NR_ZONES],
) -> [[u64; MAX_NR_ZONES]; MAX_NR_ZONES] {
    let mut out = [[0u64; MAX_NR_ZONES]; MAX_NR_ZONES];
    for i in 0..MAX_NR_ZONES {
        let mut managed_sum = 0u64;
        let clear = ratio[i] == 0 || managed[i] == 0;
        for j in i + 1..MAX_NR_ZONES {
            managed_sum += managed[j];
            out[i][j] = if clear { 0 } else { managed_sum / ratio[i] };
        }
    }
    out
}

/// Linux 6.1's `zone_batchsize` (1 MiB cap: `SZ_1M / PAGE_SIZE` = 256 pages) as
/// `zone_set_pageset_high_and_batch` uses it (`max(1, ...)`).
pub fn pcp_batch(managed: u64) -> u32 {
    let mut batch = core::cmp::min(managed >> 10, 256) / 4;
    if batch < 1 {
        batch = 1;
    }
    let x = batch + batch / 2;
    let pow = 1u64 << (63 - x.leading_zeros());
    core::cmp::max(1, (pow - 1) as u32)
}

/// `zone_highsize` with `percpu_pagelist_high_fraction` (0 = default: the low
/// watermark split among the node's CPUs), floored at `4 * batch`.
pub fn pcp_high(low_wmark: u64, managed: u64, batch: u32, nr_cpus: u32, high_fraction: u64) -> u32 {
    // percpu_pagelist_high_fraction 0 means: split the low watermark.
    let total = managed.checked_div(high_fraction).unwrap_or(low_wmark);
    let high = total / core::cmp::max(1, nr_cpus) as u64;
    core::cmp::max(high, (batch as u64) << 2).min(i32::MAX as u64) as u32
}

/// `set_recommended_min_free_kbytes` (THP): the `min_free_kbytes` khugepaged asks
/// for, or `current` when that is larger.
pub fn recommended_min_free_kbytes(
    current: u64,
    pageblock_nr_pages: u64,
    nr_lowmem_zones_populated: u64,
    nr_free_buffer_pages: u64,
) -> u64 {
    let mut rec = pageblock_nr_pages * nr_lowmem_zones_populated * 2;
    rec += pageblock_nr_pages * nr_lowmem_zones_populated * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES;
    rec = rec.min(nr_free_buffer_pages / 20);
    rec <<= 2;
    core::cmp::max(rec, current)
}

/// `fls`: one-based index of the highest set bit (0 for 0).
fn fls(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// `calculate_normal_threshold`: the vm stat threshold of a zone.
pub fn stat_threshold(managed: u64, nr_cpus: u32) -> u32 {
    let mem = managed >> 15;
    let t = 2 * fls(nr_cpus as u64) * (1 + fls(mem));
    t.min(125)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqrt() {
        for x in 0..10_000u64 {
            let r = int_sqrt(x);
            assert!(r * r <= x && (r + 1) * (r + 1) > x, "{x}");
        }
        assert_eq!(int_sqrt(7_969_472), 2823);
        assert_eq!(int_sqrt(u64::MAX), u32::MAX as u64);
    }

    /// Linux bounds `watermark_scale_factor` to 1..=3000; beyond that the marks
    /// saturate instead of overflowing.
    #[test]
    fn huge_scale_factor_saturates() {
        let managed = [188_819, 0, 65_536, 0];
        let w = setup_per_zone_wmarks(3476, &managed, u64::MAX);
        assert_eq!((w[0].min, w[0].low, w[0].high), (869, u64::MAX, u64::MAX));
    }

    #[test]
    fn va9_1g() {
        // README examples: DMA 188819 managed, HighMem 65536, Movable 0.
        let managed = [188_819, 0, 65_536, 0];
        let mfk = calculate_min_free_kbytes(managed[0] * 4);
        assert_eq!(mfk, 3476);
        let w = setup_per_zone_wmarks(mfk, &managed, 10);
        assert_eq!((w[0].min, w[0].low, w[0].high), (869, 1086, 1303));
        assert_eq!((w[2].min, w[2].low, w[2].high), (64, 139, 214));
        assert_eq!((w[3].min, w[3].low, w[3].high), (32, 32, 32));
        let p = setup_per_zone_lowmem_reserve(&managed, &DEFAULT_LOWMEM_RESERVE_RATIO);
        assert_eq!(p[0], [0, 0, 256, 256]);
        assert_eq!(pcp_batch(managed[0]), 63);
        assert_eq!(pcp_high(w[0].low, managed[0], 63, 1, 0), 1086);
        assert_eq!(pcp_high(w[2].low, managed[2], 15, 4, 0), 60);
        assert_eq!(stat_threshold(managed[0], 1), 8);
        assert_eq!(stat_threshold(managed[2], 4), 18);
        assert_eq!(pcp_batch(327_680), 63);
        assert_eq!(pcp_batch(0), 1);
    }
}

/// Inputs of [`init_per_zone_wmark_min`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WmarkInput {
    /// Managed pages per zone when the watermarks are computed (freed by
    /// `memblock_free_all` plus CMA).
    pub managed: [u64; MAX_NR_ZONES],
    /// `populated_zone` per zone (present pages > 0).
    pub populated: [bool; MAX_NR_ZONES],
    /// Online CPUs.
    pub nr_cpus: u32,
    /// THP=always: apply `set_recommended_min_free_kbytes`.
    pub thp: bool,
    /// `pageblock_nr_pages`.
    pub pageblock_nr_pages: u64,
    /// `vm.lowmem_reserve_ratio`.
    pub lowmem_reserve_ratio: [u64; MAX_NR_ZONES],
    /// `vm.watermark_scale_factor`.
    pub watermark_scale_factor: u64,
    /// `vm.percpu_pagelist_high_fraction`.
    pub percpu_pagelist_high_fraction: u64,
    /// A fixed `min_free_kbytes` (instead of the computed one).
    pub min_free_kbytes: Option<u64>,
}

/// Everything `init_per_zone_wmark_min` (and khugepaged) leave in the zones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneTunables {
    /// `min_free_kbytes`.
    pub min_free_kbytes: u64,
    /// Watermarks per zone.
    pub wmark: [Watermarks; MAX_NR_ZONES],
    /// `lowmem_reserve[]` per zone.
    pub lowmem_reserve: [[u64; MAX_NR_ZONES]; MAX_NR_ZONES],
    /// Per-CPU batch per zone.
    pub pcp_batch: [u32; MAX_NR_ZONES],
    /// Per-CPU high per zone.
    pub pcp_high: [u32; MAX_NR_ZONES],
    /// vm stat threshold per zone.
    pub stat_threshold: [u32; MAX_NR_ZONES],
}

/// `init_per_zone_wmark_min` at postcore time, then khugepaged's
/// `set_recommended_min_free_kbytes` when `thp` (which recomputes the watermarks and
/// the per-CPU lists but not the lowmem reserves).
#[allow(clippy::needless_range_loop)]
pub fn init_per_zone_wmark_min(inp: &WmarkInput) -> ZoneTunables {
    let managed = &inp.managed;
    let mut t = ZoneTunables {
        min_free_kbytes: inp.min_free_kbytes.unwrap_or_else(|| {
            calculate_min_free_kbytes(nr_free_buffer_pages(managed, &[0; MAX_NR_ZONES]) * 4)
        }),
        wmark: [Watermarks::default(); MAX_NR_ZONES],
        lowmem_reserve: setup_per_zone_lowmem_reserve(managed, &inp.lowmem_reserve_ratio),
        pcp_batch: [0; MAX_NR_ZONES],
        pcp_high: [0; MAX_NR_ZONES],
        stat_threshold: core::array::from_fn(|i| stat_threshold(managed[i], inp.nr_cpus)),
    };
    let apply = |t: &mut ZoneTunables| {
        t.wmark = setup_per_zone_wmarks(t.min_free_kbytes, managed, inp.watermark_scale_factor);
        for z in 0..MAX_NR_ZONES {
            t.pcp_batch[z] = pcp_batch(managed[z]);
            t.pcp_high[z] = pcp_high(
                t.wmark[z].low,
                managed[z],
                t.pcp_batch[z],
                inp.nr_cpus,
                inp.percpu_pagelist_high_fraction,
            );
        }
    };
    apply(&mut t);
    if inp.thp {
        let high: [u64; MAX_NR_ZONES] = core::array::from_fn(|i| t.wmark[i].high);
        let nr_zones = inp.populated[..=ZoneType::Normal as usize]
            .iter()
            .filter(|&&p| p)
            .count() as u64;
        let rec = recommended_min_free_kbytes(
            t.min_free_kbytes,
            inp.pageblock_nr_pages,
            nr_zones,
            nr_free_buffer_pages(managed, &high),
        );
        if rec > t.min_free_kbytes {
            t.min_free_kbytes = rec;
            apply(&mut t);
        }
    }
    t
}
