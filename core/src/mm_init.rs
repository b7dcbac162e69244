//! Node, zone and page-frame initialisation at boot (Linux `mm/mm_init.c`, as of 6.1).
//!
//! [`free_area_init_node`] reproduces Linux's `free_area_init_node` for one node of a
//! FLATMEM ARM32 kernel, in Linux's order:
//!
//! 1. `calculate_node_totalpages`: spanned and present pages per zone and node
//!    (`node`);
//! 2. `alloc_node_mem_map`: the `struct page` array for the MAX_ORDER-aligned node
//!    range, from memblock (`memblock_alloc_try_nid_raw`, the first allocation)
//!    (`node`);
//! 3. `free_area_init_core`: per zone, the memmap charge, `dma_reserve`, managed
//!    pages, the per-cpu batch, the pageblock-flags usemap (one zeroing memblock
//!    allocation per spanned zone, in zone order), empty free lists (`zone`) and
//!    `memmap_init` (every page linked to its zone and node, count 1, reserved; each
//!    pageblock start marked MOVABLE) (`memmap`).
//!
//! [`PgData::check_boot_state`] verifies the result (`check`). The types it fills
//! are in [`crate::zone`] and [`crate::mmtypes`]; within this directory `zone` uses
//! `memmap`, and nothing here is used by the layers below.
//!
//! The boot-log lines are printed with Linux's exact text through `zk_debug!` /
//! `zk_info!` / `zk_warn!` so that a zonekit log can be diffed against `dmesg`.
//!
//! [`PgData::check_boot_state`]: crate::zone::PgData::check_boot_state

use crate::addr::Pfn;
use crate::arch::MmConfig;
use crate::memblock::Memblock;
use crate::mmtypes::MAX_NR_ZONES;
use crate::page::{Page, MAX_NUMNODES};
use crate::storage::PageStorage;
use crate::zone::{InitError, PgData, MAX_ORDER_LIMIT};

mod check;
mod memmap;
mod node;
mod zone;

pub use check::{CheckFailure, NodeCheck};
pub use zone::{calc_memmap_size, usemap_size, zone_batchsize};

use node::{alloc_node_mem_map, calculate_node_totalpages};
use zone::free_area_init_core;

fn check_config(cfg: &MmConfig) -> Result<(), InitError> {
    if cfg.max_order == 0 || cfg.max_order as usize > MAX_ORDER_LIMIT {
        return Err(InitError::MaxOrderTooLarge {
            max_order: cfg.max_order,
        });
    }
    if cfg.pageblock_order > cfg.max_order - 1 {
        return Err(InitError::BadPageblockOrder {
            pageblock_order: cfg.pageblock_order,
            max_order: cfg.max_order,
        });
    }
    let descriptor = core::mem::size_of::<Page>() as u64;
    if cfg.struct_page_size < descriptor {
        return Err(InitError::DescriptorTooLarge {
            descriptor,
            struct_page_size: cfg.struct_page_size,
        });
    }
    Ok(())
}

/// `free_area_init_node`: set up node `nid` with the zone sizes and holes (in pages)
/// the arch computed (`zone_sizes_init`), allocating its `mem_map` and usemaps from
/// `memblock` and viewing them through `storage`.
///
/// `dma_reserve` pages are charged by Linux to zone index 0. zonekit always keeps
/// ZONE_DMA at index 0, also for boards where Linux has no ZONE_DMA (the 4.x seed
/// kernels, whose index 0 is Normal), so the rule is applied to the **first populated
/// non-highmem zone**: DMA when it has pages, else Normal. On a Linux 6.1 `armmp`
/// layout (all lowmem in DMA) and a 4.x layout (DMA empty) this is exactly Linux's
/// zone 0. Its "pages reserved" line names that zone.
///
/// Holes inside a zone (spanned but not in `memblock.memory`) get their descriptors
/// initialised and reserved like Linux 6.1's `init_unavailable_range`, attributed to
/// the zone that spans them, and are counted in an `On node N, zone Z: n pages in
/// unavailable ranges` line. Descriptors of the MAX_ORDER padding outside the node
/// stay as the storage handed them out.
///
/// On error, allocations already made from `memblock` stay reserved (Linux panics
/// at that point).
#[allow(clippy::too_many_arguments)]
pub fn free_area_init_node<S: PageStorage, const N: usize>(
    memblock: &mut Memblock<N>,
    storage: &mut S,
    cfg: &MmConfig,
    nid: usize,
    zones_size: &[u64; MAX_NR_ZONES],
    node_start_pfn: Pfn,
    zholes_size: &[u64; MAX_NR_ZONES],
    dma_reserve: u64,
) -> Result<PgData<S>, InitError> {
    check_config(cfg)?;
    if nid >= MAX_NUMNODES {
        return Err(InitError::BadNode { nid });
    }
    let mut pgdat = PgData::new(nid);
    pgdat.node_start_pfn = node_start_pfn;
    calculate_node_totalpages(&mut pgdat, zones_size, zholes_size)?;
    alloc_node_mem_map(&mut pgdat, memblock, storage, cfg)?;
    free_area_init_core(&mut pgdat, memblock, storage, cfg, dma_reserve)?;
    Ok(pgdat)
}
