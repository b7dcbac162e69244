//! memblock allocations: find a free range and reserve it (Linux `mm/memblock.c`:
//! `memblock_alloc_range_nid`, `memblock_alloc_internal`, `memblock_alloc_try_nid`,
//! `memblock_alloc_try_nid_raw`, `memblock_phys_alloc_range`, `memblock_phys_alloc`,
//! `memblock_phys_alloc_try_nid`, `memblock_alloc`).
//!
//! The fallbacks are Linux's: from the requested node to any node (unless the node
//! is exact), from mirrored to any memory, and, in the `alloc_try_nid` family, from
//! `min_addr` down to 0. Zeroing goes through the [`PageStorage`].

use core::panic::Location;

use super::debug::Caller;
use super::{
    internal_caller, Memblock, MemblockError, RegionFlags, TableKind, MEMBLOCK_ALLOC_ACCESSIBLE,
    MEMBLOCK_LOW_LIMIT, NUMA_NO_NODE, SMP_CACHE_BYTES,
};
use crate::addr::PhysAddr;
use crate::storage::PageStorage;

impl<const N: usize> Memblock<N> {
    /// `memblock_alloc_range_nid`: find and reserve `size` bytes in `[start, end)`.
    /// `align` 0 means [`SMP_CACHE_BYTES`] (with a warning). Falls back to any node
    /// unless `exact_nid`, and from mirrored to any memory. `None` on any failure (no
    /// room, or a reserved table that cannot take one more region).
    #[track_caller]
    pub fn alloc_range_nid(
        &mut self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
        nid: i32,
        exact_nid: bool,
    ) -> Option<PhysAddr> {
        self.try_alloc_range_nid(size, align, start, end, nid, exact_nid)
            .ok()
            .flatten()
    }

    /// [`alloc_range_nid`](Self::alloc_range_nid) telling the two failures apart:
    /// `Ok(None)` when no free range fits, `Err` when one was found but reserving it
    /// failed (memblock.reserved full and not resizable: [`MemblockError::TableFull`]).
    /// A found range is free, so any other range would fail the same way: there is
    /// no fallback after a failed reservation.
    fn try_alloc_range_nid(
        &mut self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
        nid: i32,
        exact_nid: bool,
    ) -> Result<Option<PhysAddr>, MemblockError> {
        let mut flags = self.choose_flags();
        let align = if align == 0 {
            zk_warn!(
                "memblock: allocation of {size} bytes with alignment 0, using SMP_CACHE_BYTES"
            );
            SMP_CACHE_BYTES
        } else {
            align
        };
        if !align.is_power_of_two() {
            return Ok(None);
        }
        let here = internal_caller();
        loop {
            if let Some(found) = self.find_in_range_node(size, align, start, end, nid, flags) {
                self.reserve_at(found, size, here)?;
                return Ok(Some(found));
            }
            if nid != NUMA_NO_NODE && !exact_nid {
                if let Some(found) =
                    self.find_in_range_node(size, align, start, end, NUMA_NO_NODE, flags)
                {
                    self.reserve_at(found, size, here)?;
                    return Ok(Some(found));
                }
            }
            if flags.contains(RegionFlags::MIRROR) {
                flags = flags.without(RegionFlags::MIRROR);
                zk_warn!(
                    "Could not allocate {} bytes of mirrored memory",
                    self.pa(size)
                );
                continue;
            }
            return Ok(None);
        }
    }

    fn reserve_at(
        &mut self,
        base: PhysAddr,
        size: u64,
        loc: &'static Location<'static>,
    ) -> Result<(), MemblockError> {
        self.dbg_range("memblock_reserve", base, size, loc);
        self.add_range(TableKind::Reserved, base, size, 0, RegionFlags::NONE)
    }

    /// `memblock_alloc_internal`: clamp `max_addr` to the current limit, try
    /// `[min_addr, max_addr)`, then `[0, max_addr)`. [`MemblockError::NoSpace`] when
    /// nothing fits, [`MemblockError::TableFull`] when memblock.reserved cannot
    /// record the allocation.
    pub(super) fn alloc_internal(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
        exact_nid: bool,
    ) -> Result<PhysAddr, MemblockError> {
        let no_space = MemblockError::NoSpace {
            size,
            align,
            min_addr,
            max_addr,
            nid,
        };
        let max_addr = core::cmp::min(max_addr, self.current_limit);
        let mut found =
            self.try_alloc_range_nid(size, align, min_addr, max_addr, nid, exact_nid)?;
        if found.is_none() && min_addr != 0 {
            found = self.try_alloc_range_nid(size, align, 0, max_addr, nid, exact_nid)?;
        }
        found.ok_or(no_space)
    }

    pub(super) fn check_align(align: u64) -> Result<(), MemblockError> {
        if align == 0 || align.is_power_of_two() {
            Ok(())
        } else {
            Err(MemblockError::BadAlign { align })
        }
    }

    /// `memblock_alloc_try_nid_raw`: allocate without zeroing. `max_addr` of
    /// [`MEMBLOCK_ALLOC_ACCESSIBLE`] means the current limit; if nothing fits above
    /// `min_addr`, the allocation is retried from 0.
    #[track_caller]
    pub fn alloc_try_nid_raw(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Result<PhysAddr, MemblockError> {
        self.dbg_alloc(
            "memblock_alloc_try_nid_raw",
            size,
            align,
            min_addr,
            max_addr,
            nid,
            Location::caller(),
        );
        Self::check_align(align)?;
        self.alloc_internal(size, align, min_addr, max_addr, nid, false)
    }

    /// `memblock_alloc_try_nid`: like [`alloc_try_nid_raw`](Self::alloc_try_nid_raw),
    /// then zero the memory through `storage`. If zeroing fails the memory stays
    /// reserved and [`MemblockError::Storage`] is returned.
    #[track_caller]
    pub fn alloc_try_nid<S: PageStorage>(
        &mut self,
        storage: &mut S,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Result<PhysAddr, MemblockError> {
        self.dbg_alloc(
            "memblock_alloc_try_nid",
            size,
            align,
            min_addr,
            max_addr,
            nid,
            Location::caller(),
        );
        Self::check_align(align)?;
        let base = self.alloc_internal(size, align, min_addr, max_addr, nid, false)?;
        storage.zero(base, size)?;
        Ok(base)
    }

    /// [`alloc_try_nid`](Self::alloc_try_nid) returning `None` on any failure (the
    /// old `memblock_alloc_try_nid_nopanic`).
    #[track_caller]
    pub fn alloc_try_nid_nopanic<S: PageStorage>(
        &mut self,
        storage: &mut S,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
    ) -> Option<PhysAddr> {
        self.alloc_try_nid(storage, size, align, min_addr, max_addr, nid)
            .ok()
    }

    /// `memblock_alloc`: zeroed, anywhere below the current limit, any node.
    #[track_caller]
    pub fn alloc<S: PageStorage>(
        &mut self,
        storage: &mut S,
        size: u64,
        align: u64,
    ) -> Result<PhysAddr, MemblockError> {
        self.alloc_try_nid(
            storage,
            size,
            align,
            MEMBLOCK_LOW_LIMIT,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            NUMA_NO_NODE,
        )
    }

    /// `memblock_alloc_raw`: not zeroed, anywhere below the current limit.
    #[track_caller]
    pub fn alloc_raw(&mut self, size: u64, align: u64) -> Result<PhysAddr, MemblockError> {
        self.alloc_try_nid_raw(
            size,
            align,
            MEMBLOCK_LOW_LIMIT,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            NUMA_NO_NODE,
        )
    }

    /// `memblock_phys_alloc_range`: reserve `size` bytes in `[start, end)` (no
    /// fallback below `start`, no zeroing).
    #[track_caller]
    pub fn phys_alloc_range(
        &mut self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
    ) -> Option<PhysAddr> {
        if self.debug {
            zk_info!(
                "memblock_phys_alloc_range: {} bytes align={:#x} from={} max_addr={} {}",
                size,
                align,
                self.pa(start),
                self.pa(end),
                Caller(Location::caller())
            );
        }
        self.alloc_range_nid(size, align, start, end, NUMA_NO_NODE, false)
    }

    /// `memblock_phys_alloc`: anywhere below the current limit.
    #[track_caller]
    pub fn phys_alloc(&mut self, size: u64, align: u64) -> Option<PhysAddr> {
        self.phys_alloc_range(size, align, 0, MEMBLOCK_ALLOC_ACCESSIBLE)
    }

    /// `memblock_phys_alloc_try_nid`: below the current limit, preferring `nid`.
    #[track_caller]
    pub fn phys_alloc_try_nid(&mut self, size: u64, align: u64, nid: i32) -> Option<PhysAddr> {
        self.alloc_range_nid(size, align, 0, MEMBLOCK_ALLOC_ACCESSIBLE, nid, false)
    }
}
