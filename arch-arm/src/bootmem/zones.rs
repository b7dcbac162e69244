//! Step 5, `bootmem_init`: `find_limits`, `early_memtest`, `zone_sizes_init` with
//! 4.x's `arm_adjust_dma_zone`, the `Zone ranges:` block and `free_area_init_node`.

use super::*;

/// `zone_size[]` and `zhole_size[]` as handed to `free_area_init_node`, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneSizes {
    /// Pages spanned by each zone (indexed by [`ZoneType`]).
    pub zone_size: [u64; MAX_NR_ZONES],
    /// Pages of each zone not backed by memory.
    pub zhole_size: [u64; MAX_NR_ZONES],
}

impl ZoneSizes {
    /// `[start, end)` PFNs of each zone, laid out from `node_start`.
    pub fn zone_ranges(&self, node_start: Pfn) -> [(Pfn, Pfn); MAX_NR_ZONES] {
        let mut out = [(0, 0); MAX_NR_ZONES];
        let mut start = node_start;
        for (i, range) in out.iter_mut().enumerate() {
            *range = (start, start + self.zone_size[i]);
            start += self.zone_size[i];
        }
        out
    }
}

/// `arm_adjust_dma_zone`: when the board's DMA zone is smaller than the lowmem zone,
/// split it: ZONE_DMA keeps the first `dma_pages`, ZONE_NORMAL takes the rest and the
/// lowmem zone's holes.
pub fn arm_adjust_dma_zone(sizes: &mut ZoneSizes, dma_pages: u64) {
    let dma = ZoneType::Dma as usize;
    let normal = ZoneType::Normal as usize;
    if sizes.zone_size[dma] <= dma_pages {
        return;
    }
    sizes.zone_size[normal] = sizes.zone_size[dma] - dma_pages;
    sizes.zone_size[dma] = dma_pages;
    sizes.zhole_size[normal] = sizes.zhole_size[dma];
    sizes.zhole_size[dma] = 0;
}

/// `zone_sizes_init`: lowmem `[min, max_low)` is one zone (ZONE_DMA when the board has
/// a DMA zone size, else ZONE_NORMAL), highmem `[max_low, max_high)` the other; holes
/// start equal to the sizes and every memory bank subtracts its overlap.
///
/// The banks must not overlap (memblock.memory never does): overlapping ones would
/// be subtracted twice, so they are refused with [`BootError::OverlappingBanks`].
pub fn zone_sizes_init(
    limits: &PfnLimits,
    memory: &[MemRange],
    dma_zone_size: Option<u64>,
) -> Result<ZoneSizes, BootError> {
    for (i, first) in memory.iter().enumerate() {
        if let Some(second) = memory[i + 1..]
            .iter()
            .find(|b| !first.is_empty() && !b.is_empty() && first.overlaps(b))
        {
            return Err(BootError::OverlappingBanks {
                first: *first,
                second: *second,
            });
        }
    }
    let low = if dma_zone_size.is_some() {
        ZoneType::Dma as usize
    } else {
        ZoneType::Normal as usize
    };
    let high = ZoneType::HighMem as usize;
    let mut s = ZoneSizes::default();
    s.zone_size[low] = limits.max_low.saturating_sub(limits.min);
    s.zone_size[high] = limits.max_high.saturating_sub(limits.max_low);
    s.zhole_size = s.zone_size;
    for bank in memory {
        let (start, end) = (pfn_up(bank.base), pfn_down(bank.end()));
        if start >= end {
            continue;
        }
        if start < limits.max_low {
            let low_start = start.max(limits.min);
            let low_end = end.min(limits.max_low);
            s.zhole_size[low] -= low_end.saturating_sub(low_start);
        }
        if end > limits.max_low {
            let high_start = start.max(limits.max_low);
            s.zhole_size[high] -= end.min(limits.max_high).saturating_sub(high_start);
        }
    }
    if let Some(dma) = dma_zone_size {
        arm_adjust_dma_zone(&mut s, dma >> zonekit_core::PAGE_SHIFT);
    }
    Ok(s)
}

/// Print Linux's `Zone ranges:` / `Early memory node ranges` / `Initmem setup` block.
pub(super) fn print_zone_ranges(
    mb: &BootMemblock,
    sizes: &ZoneSizes,
    limits: &PfnLimits,
    has_dma_zone: bool,
) {
    zk_info!("Zone ranges:");
    let ranges = sizes.zone_ranges(limits.min);
    for zt in [ZoneType::Dma, ZoneType::Normal, ZoneType::HighMem] {
        if zt == ZoneType::Dma && !has_dma_zone {
            continue;
        }
        let (start, end) = ranges[zt as usize];
        if start == end {
            zk_info!("  {:<8} empty", zt.name());
        } else {
            zk_info!(
                "  {:<8} {}",
                zt.name(),
                mem_line(pfn_phys(start), pfn_phys(end))
            );
        }
    }
    zk_info!("Movable zone start for each node");
    zk_info!("Early memory node ranges");
    for r in mb.memory.regions() {
        let (start, end) = (pfn_up(r.base), pfn_down(r.base + r.size));
        if start < end {
            zk_info!(
                "  node {:>3}: {}",
                r.nid.max(0),
                mem_line(pfn_phys(start), pfn_phys(end))
            );
        }
    }
    zk_info!(
        "Initmem setup node 0 {}",
        mem_line(pfn_phys(limits.min), pfn_phys(limits.max_high))
    );
}

/// Step 5, `bootmem_init`: `memblock_allow_resize`, `find_limits`, `early_memtest`
/// (with `memtest=`), `zone_sizes_init` and `free_area_init_node` (the hooks see
/// [`BootStep::FreeAreaInitStart`] and [`BootStep::FreeAreaInitEnd`] around it).
pub fn bootmem_init<S: PageStorage>(
    mut memblock: BootMemblock,
    storage: &mut S,
    arch: Arm32,
    lowmem_limit: PhysAddr,
    dma_zone_size: Option<u64>,
    cmdline: Cmdline,
    hooks: &mut dyn BootHooks<S>,
) -> Result<BootedMemory<S>, BootError> {
    memblock.allow_resize();
    let limits = find_limits(
        memblock.start_of_dram(),
        memblock.end_of_dram(),
        lowmem_limit,
    );
    if limits.max_low <= limits.min {
        return Err(BootError::NoLowmem);
    }
    // Off unless `memtest=` asked for it: bad lowmem is reserved before the zones
    // and mem_map are laid out.
    early_memtest(
        &mut memblock,
        storage,
        pfn_phys(limits.min),
        pfn_phys(limits.max_low),
        cmdline.memtest_pattern,
    )
    .map_err(BootError::Memtest)?;
    let banks = memblock_banks(&memblock);
    let zone_sizes = zone_sizes_init(&limits, &banks, dma_zone_size)?;
    print_zone_ranges(&memblock, &zone_sizes, &limits, dma_zone_size.is_some());
    hooks.step(BootStep::FreeAreaInitStart);
    let node = free_area_init_node(
        &mut memblock,
        storage,
        &arch.mm,
        0,
        &zone_sizes.zone_size,
        limits.min,
        &zone_sizes.zhole_size,
        0,
    )?;
    hooks.step(BootStep::FreeAreaInitEnd);
    Ok(BootedMemory {
        memblock,
        node,
        arch,
        lowmem_limit,
        limits,
        zone_sizes,
        cmdline,
        has_dma_zone: dma_zone_size.is_some(),
        page_offset: arch.phys_offset,
        cma: CmaAreas::new(),
        dynamic_reservations: heapless::Vec::new(),
    })
}

pub(super) fn memblock_banks(
    mb: &BootMemblock,
) -> heapless::Vec<MemRange, { 2 * INIT_MEMBLOCK_REGIONS }> {
    let mut banks = heapless::Vec::new();
    for r in mb.memory_ranges() {
        // memblock.memory never holds more regions than this vector.
        let _ = banks.push(r);
    }
    banks
}
