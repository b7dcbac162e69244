//! `memblock_alloc_exact_nid_raw`: an allocation that must come from one node.
//!
//! The other `memblock_alloc_*` calls treat the node as a preference and fall back to
//! any node; memory whose placement is the point (Linux's sparse `mem_map` sections,
//! `vmemmap` of each node) must fail rather than land on another node. Everything
//! else is as [`Memblock::alloc_try_nid_raw`]: the current limit caps `max_addr`, and
//! when nothing fits above `min_addr` the search is retried from 0, still on `nid`.

use core::panic::Location;

use super::{Memblock, MemblockError};
use crate::addr::PhysAddr;

impl<const N: usize> Memblock<N> {
    /// `memblock_alloc_exact_nid_raw`: reserve `size` bytes aligned to `align` inside
    /// `[min_addr, max_addr)` on node `nid` only ([`NUMA_NO_NODE`](super::NUMA_NO_NODE)
    /// means any node), without zeroing. [`MemblockError::NoSpace`] when the node has
    /// no room; never falls back to another node.
    #[track_caller]
    pub fn alloc_exact_nid_raw(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Result<PhysAddr, MemblockError> {
        self.dbg_alloc(
            "memblock_alloc_exact_nid_raw",
            size,
            align,
            min_addr,
            max_addr,
            nid,
            Location::caller(),
        );
        Self::check_align(align)?;
        self.alloc_internal(size, align, min_addr, max_addr, nid, true)
    }
}
