//! Steps 2 and 3: `arm_memblock_init` (the image, the boot data, the source's
//! reservations, `/reserved-memory`, CMA) and `adjust_lowmem_bounds` (where lowmem
//! ends).

use super::*;

/// What `arm_memblock_init` set aside besides the fixed reservations.
#[derive(Clone, Debug, Default)]
pub struct MemblockInit {
    /// The CMA areas (still reserved in memblock until the allocator activates them).
    pub cma: CmaAreas,
    /// Where the source's dynamic reservations were placed, in request order.
    pub dynamic: heapless::Vec<MemRange, MAX_RESERVATION_REQUESTS>,
}

/// Step 2, `arm_memblock_init`: reserve the image, the boot data and the source's
/// reserved ranges, mark its `no-map` ranges NOMAP, place its dynamic reservations
/// (`early_init_fdt_scan_reserved_mem`), set up its CMA pools (`rmem_cma_setup`) and
/// the global CMA area (`dma_contiguous_reserve(arm_dma_limit)`), and dump memblock
/// under `memblock=debug`. `highmem_start` is `arm_lowmem_limit` as the first
/// `adjust_lowmem_bounds` left it. Returns the CMA areas, which stay reserved until
/// the page allocator activates them.
pub fn arm_memblock_init(
    mb: &mut BootMemblock,
    params: &BootParams<'_>,
    cmdline: &Cmdline,
    highmem_start: PhysAddr,
) -> Result<MemblockInit, BootError> {
    mb.reserve(params.kernel_image.base, params.kernel_image.size)?;
    for r in params.boot_data {
        mb.reserve(r.base, r.size)?;
    }
    let source = checked_reservations(params.source)?;
    for_each_of_kind(source, RegionKind::Reserved, &mut |r| reserve_region(mb, r))?;
    for_each_of_kind(source, RegionKind::NoMap, &mut |r| {
        if let Region::NoMap(r) = r {
            mb.mark_nomap(r.base, r.size)?;
            zk_info!("OF: reserved mem: {} no-map", mem_line(r.base, r.end()));
        }
        Ok(())
    })?;
    let cma_align = params.mm.pageblock_nr_pages() * PAGE_SIZE;
    let mut cma = CmaAreas::new();
    let mut dynamic = heapless::Vec::new();
    let mut cma_default = cma_pools(mb, source, &mut cma, cma_align)?;
    // The requests are placed after every fixed reservation, in the source's order.
    for req in reservation_requests(source)? {
        let base = reserve_dynamic(mb, &req, cma_align)?;
        // As many placements as requests, which are at most MAX_RESERVATION_REQUESTS.
        let _ = dynamic.push(MemRange::new(base, req.size));
        zk_info!(
            "OF: reserved mem: allocated {} {}{}",
            req.name,
            MemRange::new(base, req.size),
            if req.no_map { " no-map" } else { "" }
        );
        if req.cma {
            let range = MemRange::new(base, req.size);
            cma_default |= rmem_cma_setup(mb, &mut cma, range, req.cma_default, cma_align);
        }
    }
    let dma_limit = match cmdline.dma_zone_size.or(params.dma_zone_size) {
        Some(size) => mb.start_of_dram().saturating_add(size).saturating_sub(1),
        None => u64::from(u32::MAX),
    };
    let placement = CmaPlacement {
        phys_addr_64bit: params.mm.phys_addr_max > u64::from(u32::MAX),
        linux_61_highmem_leak: false,
    };
    // A failure is logged by dma_contiguous_reserve and leaves memblock unchanged:
    // Linux boots on without the area, and so does zonekit.
    let _ = dma_contiguous_reserve(
        mb,
        &mut cma,
        cmdline.cma,
        0,
        dma_limit,
        highmem_start,
        cma_align,
        placement,
        cma_default,
    );
    if cmdline.memblock_debug {
        let mut out = LogLines::new();
        // Writing to the log cannot fail.
        let _ = mb.dump(&mut out);
    }
    Ok(MemblockInit { cma, dynamic })
}

/// `rmem_cma_setup`: a reserved-memory CMA pool becomes a CMA area if it is a whole
/// number of pageblocks; otherwise it stays plain reserved memory, as in Linux.
/// Returns whether it became the default area.
pub(super) fn rmem_cma_setup(
    mb: &BootMemblock,
    cma: &mut CmaAreas,
    range: MemRange,
    default: bool,
    align: u64,
) -> bool {
    match cma.init_reserved_mem(range.base, range.size, align) {
        Ok(_) => {
            zk_info!(
                "Reserved memory: created CMA memory pool at {}, size {} MiB",
                mb.pa(range.base),
                range.size >> 20
            );
            default
        }
        Err(CmaError::Misaligned { .. }) => {
            zk_warn!("Reserved memory: incorrect alignment of CMA region");
            false
        }
        Err(e) => {
            zk_warn!(
                "Reserved memory: CMA pool at {} not set up: {}",
                mb.pa(range.base),
                e
            );
            false
        }
    }
}

/// `__reserved_mem_alloc_size`: place one dynamic reservation top-down, inside its
/// `alloc-ranges` when it has them, anywhere in memory otherwise. A CMA pool is
/// aligned to at least `cma_align` (`CMA_MIN_ALIGNMENT_BYTES`).
pub(super) fn reserve_dynamic(
    mb: &mut BootMemblock,
    req: &ReservationRequest<'_>,
    cma_align: u64,
) -> Result<PhysAddr, BootError> {
    let mut align = req.align.unwrap_or(zonekit_core::memblock::SMP_CACHE_BYTES);
    if req.cma {
        align = align.max(cma_align);
    }
    let found = if req.alloc_ranges.is_empty() {
        mb.phys_alloc_range(req.size, align, 0, MEMBLOCK_ALLOC_ANYWHERE)
    } else {
        req.alloc_ranges
            .iter()
            .find_map(|r| mb.phys_alloc_range(req.size, align, r.base, r.end()))
    };
    let base = found.ok_or(BootError::Reservation {
        size: req.size,
        align,
    })?;
    if req.no_map {
        if let Err(e) = mb.mark_nomap(base, req.size) {
            mb.phys_free(base, req.size)?;
            return Err(e.into());
        }
    }
    Ok(base)
}

/// Step 3, `adjust_lowmem_bounds`: compute `arm_lowmem_limit`, drop memory above it
/// when there is no highmem, and set the early memblock limit.
pub fn adjust_lowmem_bounds(mb: &mut BootMemblock, arch: &Arm32) -> Result<PhysAddr, BootError> {
    // `for_each_mem_range`: memory regions, NOMAP ones skipped.
    let mut banks: heapless::Vec<MemRange, { 2 * INIT_MEMBLOCK_REGIONS }> = heapless::Vec::new();
    for r in mb.memory.regions() {
        if !r.flags.contains(RegionFlags::NOMAP) {
            // memblock.memory never holds more regions than this vector.
            let _ = banks.push(MemRange::new(r.base, r.size));
        }
    }
    // A first bank that does not start on a section boundary cannot be mapped with
    // sections; Linux takes its head out of the linear map.
    if let Some(first) = banks.first() {
        if first.base % PMD_SIZE != 0 {
            let len = (first.base.next_multiple_of(PMD_SIZE) - first.base).min(first.size);
            mb.mark_nomap(first.base, len)?;
        }
    }
    let bounds = arch.lowmem_bounds(&banks);
    if bounds.lowmem_limit == 0 {
        return Err(BootError::NoLowmem);
    }
    let mut memblock_limit = bounds.memblock_limit;
    if !arch.has_highmem() && mb.end_of_dram() > bounds.lowmem_limit {
        let end = mb.end_of_dram();
        zk_warn!(
            "Ignoring RAM at {:#010x}-{:#010x}",
            bounds.lowmem_limit,
            end - 1
        );
        mb.remove(bounds.lowmem_limit, end - bounds.lowmem_limit)?;
        memblock_limit = memblock_limit.min(bounds.lowmem_limit);
    }
    mb.set_current_limit(memblock_limit);
    Ok(bounds.lowmem_limit)
}

/// The source's fixed reservations checked before any is used: every
/// [`Region::Reserved`] and [`Region::NoMap`] range valid ([`validate_range`]).
fn checked_reservations(source: &dyn MemorySource) -> Result<&dyn MemorySource, SourceError> {
    for kind in [RegionKind::Reserved, RegionKind::NoMap] {
        for_each_of_kind(source, kind, &mut |r| {
            r.range().map_or(Ok(()), validate_range)
        })?;
    }
    Ok(source)
}

/// `memblock_reserve` of a [`Region::Reserved`]; the memblock=debug trace names the
/// caller's line, as for the other reservations.
#[track_caller]
fn reserve_region(mb: &mut BootMemblock, r: Region<'_>) -> Result<(), SourceError> {
    if let Region::Reserved(r) = r {
        mb.reserve(r.base, r.size)?;
    }
    Ok(())
}

/// `rmem_cma_setup` for every [`Region::Cma`] of the source; whether one became the
/// default area.
fn cma_pools(
    mb: &BootMemblock,
    source: &dyn MemorySource,
    cma: &mut CmaAreas,
    align: u64,
) -> Result<bool, SourceError> {
    let mut default = false;
    for_each_of_kind(source, RegionKind::Cma, &mut |r| {
        if let Region::Cma(c) = r {
            default |= rmem_cma_setup(mb, cma, c.range, c.default, align);
        }
        Ok(())
    })?;
    Ok(default)
}

/// The source's dynamic reservations, in its order, up to Linux's bound.
fn reservation_requests(
    source: &dyn MemorySource,
) -> Result<heapless::Vec<ReservationRequest<'_>, MAX_RESERVATION_REQUESTS>, SourceError> {
    let mut requests = heapless::Vec::new();
    for_each_of_kind(source, RegionKind::Request, &mut |r| match r {
        // memblock aligns by masking: any other alignment would place the region
        // off its own alignment (or nowhere), so it is refused by name.
        Region::Request(req) if req.align.is_some_and(|a| !a.is_power_of_two()) => Err(
            SourceError::Malformed("a /reserved-memory alignment is not a power of two"),
        ),
        Region::Request(req) => requests.push(req).map_err(|_| SourceError::TooMany {
            what: "dynamic reservations",
            max: MAX_RESERVATION_REQUESTS,
        }),
        _ => Ok(()),
    })?;
    Ok(requests)
}
