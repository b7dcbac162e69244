//! The zone part of `free_area_init_node` (Linux `mm/mm_init.c`):
//! `free_area_init_core` (per zone: the memmap charge `calc_memmap_size`,
//! `dma_reserve`, managed pages, the per-cpu batch `zone_batchsize`, the pageblock
//! usemap `setup_usemap` / `usemap_size`, empty free lists, then `memmap_init`).

use super::memmap::memmap_init_zone;
use crate::addr::{align_up, page_align, Pfn, PAGE_SHIFT};
use crate::arch::MmConfig;
use crate::memblock::Memblock;
use crate::mmtypes::MAX_NR_ZONES;
use crate::storage::PageStorage;
use crate::zone::{InitError, PgData, NR_PAGEBLOCK_BITS};

/// Bits in an `unsigned long` of the ARM32 kernel (the usemap's rounding unit).
const BITS_PER_LONG: u64 = 32;

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
    align_up(blocks.saturating_mul(NR_PAGEBLOCK_BITS), BITS_PER_LONG) / 8
}

/// `calc_memmap_size` (FLATMEM): pages of memmap charged to a zone, computed on its
/// spanned pages.
pub fn calc_memmap_size(spanned: u64, struct_page_size: u64) -> u64 {
    page_align(spanned.saturating_mul(struct_page_size)) >> PAGE_SHIFT
}

/// `free_area_init_core`.
pub(super) fn free_area_init_core<S: PageStorage, const N: usize>(
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
        zone.init_free_lists();
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
        pgdat.mem_map.as_deref().ok_or(InitError::Overflow)?;
        memmap_init_zone(&mut pgdat.zones[j], memblock)?;
    }
    pgdat.nr_kernel_pages = nr_kernel_pages;
    pgdat.nr_all_pages = nr_all_pages;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmtypes::{MigrateType, ZoneType};
    use crate::zone::Zone;
    use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

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
        z.usemap = Some(
            (0..usemap_size(0x80100, 0x1ff00, 10))
                .map(|_| AtomicU8::new(0))
                .collect(),
        );
        let byte = |z: &Zone<crate::storage::VecPageStorage>, i: usize| {
            z.usemap.as_ref().unwrap()[i].load(Relaxed)
        };
        z.set_pageblock_migratetype(0x80100, MigrateType::Reclaimable)
            .unwrap();
        z.set_pageblock_migratetype(0x80400, MigrateType::Movable)
            .unwrap();
        z.set_pageblock_migratetype(0x9ffff, MigrateType::Isolate)
            .unwrap();
        assert_eq!(byte(&z, 0), 0x12);
        assert_eq!(byte(&z, 63), 0x50);
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
        z.usemap.as_ref().unwrap()[1].store(0x08, Relaxed);
        z.set_pageblock_migratetype(0x80800, MigrateType::Cma)
            .unwrap();
        assert_eq!(byte(&z, 1), 0x0c);
    }
}
