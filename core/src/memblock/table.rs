//! The region tables and every change to them (Linux `mm/memblock.c`:
//! `memblock_add_range`, `memblock_isolate_range`, `memblock_remove_range`,
//! `memblock_merge_regions`, `memblock_setclr_flag`, `memblock_double_array`, and the
//! public `memblock_add`/`memblock_remove`/`memblock_reserve`/`memblock_phys_free`,
//! flag markers, `memblock_set_node` and the `mem=` limits).
//!
//! Every change is atomic with respect to [`MemblockError::TableFull`]: the room
//! needed is counted (and, once resizing is allowed, made by doubling the table, whose
//! new array is found through the free-range search and reserved in memblock itself)
//! before anything is inserted.

use core::panic::Location;

use super::debug::Caller;
use super::{
    internal_caller, Memblock, MemblockError, Region, RegionFlags, RegionTable, TableKind,
};
use crate::addr::{page_align, MemRange, PhysAddr, PAGE_SIZE};

impl<const N: usize> RegionTable<N> {
    /// `memblock_insert_region`. The caller has checked the capacity.
    fn insert_region(&mut self, idx: usize, r: Region) {
        if self.regions.insert(idx, r).is_ok() {
            self.total_size += r.size;
        }
    }

    /// `memblock_remove_region`.
    pub(super) fn remove_region(&mut self, idx: usize) {
        if idx < self.regions.len() {
            let r = self.regions.remove(idx);
            self.total_size -= r.size;
        }
    }

    /// `memblock_merge_regions`.
    fn merge(&mut self) {
        let mut i = 0;
        while i + 1 < self.regions.len() {
            let this = self.regions[i];
            let next = self.regions[i + 1];
            if this.end() != next.base || this.nid != next.nid || this.flags != next.flags {
                i += 1;
                continue;
            }
            self.regions[i].size += next.size;
            self.regions.remove(i + 1);
        }
    }
}

impl<const N: usize> Memblock<N> {
    /// Count how many new regions inserting `[base, end)` needs (the counting pass of
    /// `memblock_add_range`).
    fn count_new(t: &RegionTable<N>, base: PhysAddr, end: PhysAddr) -> usize {
        let mut b = base;
        let mut nr_new = 0;
        for r in t.regions() {
            if r.base >= end {
                break;
            }
            if r.end() <= b {
                continue;
            }
            if r.base > b {
                nr_new += 1;
            }
            b = core::cmp::min(r.end(), end);
        }
        if b < end {
            nr_new += 1;
        }
        nr_new
    }

    /// `memblock_add_range`.
    pub(super) fn add_range(
        &mut self,
        kind: TableKind,
        base: PhysAddr,
        size: u64,
        nid: i32,
        flags: RegionFlags,
    ) -> Result<(), MemblockError> {
        if size == 0 {
            return Ok(());
        }
        if base > self.phys_addr_max {
            zk_warn!(
                "memblock: {} region at {:#x} is above PHYS_ADDR_MAX {}, ignored",
                kind.name(),
                base,
                self.pa(self.phys_addr_max)
            );
            return Ok(());
        }
        let size = self.cap_size(base, size);
        if size == 0 {
            return Ok(());
        }
        let end = base + size;
        loop {
            let t = self.table(kind);
            if t.regions.is_empty() {
                if t.max >= 1 {
                    self.table_mut(kind).insert_region(
                        0,
                        Region {
                            base,
                            size,
                            flags,
                            nid,
                        },
                    );
                    return Ok(());
                }
            } else {
                let nr_new = Self::count_new(t, base, end);
                if nr_new == 0 {
                    return Ok(());
                }
                if t.regions.len() + nr_new <= t.max {
                    break;
                }
            }
            // Doubling may change the reserved table: recount afterwards.
            self.double_array(kind, base, size)?;
        }

        let t = self.table_mut(kind);
        let mut b = base;
        let mut idx = 0;
        while idx < t.regions.len() {
            let r = t.regions[idx];
            if r.base >= end {
                break;
            }
            if r.end() <= b {
                idx += 1;
                continue;
            }
            if r.base > b {
                t.insert_region(
                    idx,
                    Region {
                        base: b,
                        size: r.base - b,
                        flags,
                        nid,
                    },
                );
                idx += 1;
            }
            b = core::cmp::min(r.end(), end);
            idx += 1;
        }
        if b < end {
            t.insert_region(
                idx,
                Region {
                    base: b,
                    size: end - b,
                    flags,
                    nid,
                },
            );
        }
        t.merge();
        Ok(())
    }

    /// `memblock_isolate_range`: split regions so that `[base, base + size)` is made of
    /// whole regions; returns their index range.
    fn isolate_range(
        &mut self,
        kind: TableKind,
        base: PhysAddr,
        size: u64,
    ) -> Result<(usize, usize), MemblockError> {
        if size == 0 || base > self.phys_addr_max {
            return Ok((0, 0));
        }
        let size = self.cap_size(base, size);
        let end = base + size;
        // At most two more regions are created.
        while self.table(kind).linux_cnt() + 2 > self.table(kind).max {
            self.double_array(kind, base, size)?;
        }
        let t = self.table_mut(kind);
        let (mut start_rgn, mut end_rgn) = (0, 0);
        let mut idx = 0;
        while idx < t.regions.len() {
            let r = t.regions[idx];
            let (rbase, rend) = (r.base, r.end());
            if rbase >= end {
                break;
            }
            if rend <= base {
                idx += 1;
                continue;
            }
            if rbase < base {
                // Intersects from below: split, then look at the top half.
                t.regions[idx].base = base;
                t.regions[idx].size -= base - rbase;
                t.total_size -= base - rbase;
                t.insert_region(
                    idx,
                    Region {
                        base: rbase,
                        size: base - rbase,
                        ..r
                    },
                );
                idx += 1;
            } else if rend > end {
                // Intersects from above: split, then redo the bottom half.
                t.regions[idx].base = end;
                t.regions[idx].size -= end - rbase;
                t.total_size -= end - rbase;
                t.insert_region(
                    idx,
                    Region {
                        base: rbase,
                        size: end - rbase,
                        ..r
                    },
                );
            } else {
                if end_rgn == 0 {
                    start_rgn = idx;
                }
                end_rgn = idx + 1;
                idx += 1;
            }
        }
        Ok((start_rgn, end_rgn))
    }

    /// `memblock_remove_range`.
    fn remove_range(
        &mut self,
        kind: TableKind,
        base: PhysAddr,
        size: u64,
    ) -> Result<(), MemblockError> {
        let (s, e) = self.isolate_range(kind, base, size)?;
        let t = self.table_mut(kind);
        for i in (s..e).rev() {
            t.remove_region(i);
        }
        Ok(())
    }

    /// `memblock_setclr_flag` on `memory`.
    fn setclr_flag(
        &mut self,
        base: PhysAddr,
        size: u64,
        set: bool,
        flag: RegionFlags,
    ) -> Result<(), MemblockError> {
        let (s, e) = self.isolate_range(TableKind::Memory, base, size)?;
        let t = &mut self.memory;
        for r in &mut t.regions[s..e] {
            r.flags = if set {
                r.flags.union(flag)
            } else {
                r.flags.without(flag)
            };
        }
        t.merge();
        Ok(())
    }

    /// `memblock_double_array`: grow a full table, finding and reserving memory for
    /// the new array (page aligned, `new_max * region_bytes()` bytes). For the reserved
    /// table the range being added (`area_base`, `area_size`) is avoided: the search
    /// runs above it, then below it. The previous dynamically placed array (if any) is
    /// freed.
    ///
    /// Atomic: everything that can fail (finding the array, room in memblock.reserved
    /// to free the old array and reserve the new one) is settled before either table
    /// changes, so an error leaves both as they were (Linux `BUG_ON`s instead). When
    /// memblock.memory doubles while memblock.reserved is full too, reserved is grown
    /// first, its own new array kept clear of memory's (Linux grows it later, while
    /// freeing memory's old array).
    fn double_array(
        &mut self,
        kind: TableKind,
        area_base: PhysAddr,
        area_size: u64,
    ) -> Result<(), MemblockError> {
        let t = self.table(kind);
        let old_max = t.max;
        let full = MemblockError::TableFull {
            table: kind,
            capacity: old_max,
        };
        if !self.can_resize || old_max >= N {
            return Err(full);
        }
        let new_max = core::cmp::min(core::cmp::max(old_max * 2, 1), N);
        let new_size = new_max as u64 * self.region_bytes();
        let new_alloc_size = page_align(new_size);
        let (area_base, area_size) = if kind == TableKind::Reserved {
            (area_base, area_size)
        } else {
            (0, 0)
        };
        let limit = self.current_limit;
        let mut addr = self.find_in_range(
            area_base.saturating_add(area_size),
            limit,
            new_alloc_size,
            PAGE_SIZE,
        );
        if addr.is_none() && area_size != 0 {
            addr = self.find_in_range(
                0,
                core::cmp::min(area_base, limit),
                new_alloc_size,
                PAGE_SIZE,
            );
        }
        let Some(addr) = addr else {
            zk_error!(
                "memblock: Failed to double {} array from {} to {} entries !",
                kind.name(),
                old_max,
                new_max
            );
            return Err(full);
        };
        let old_array = t.array;
        // Room in memblock.reserved: freeing the old array may split a region (the
        // isolation step wants two spare slots), the new array is free memory (one
        // new region).
        let spare = if old_array.is_some() { 2 } else { 1 };
        if kind == TableKind::Reserved {
            if self.reserved.linux_cnt() + spare > new_max {
                return Err(full);
            }
        } else {
            while self.reserved.linux_cnt() + spare > self.reserved.max {
                self.double_array(TableKind::Reserved, addr, new_alloc_size)?;
            }
        }
        self.dbg(format_args!(
            "memblock: {} is doubled to {} at [{}-{}]",
            kind.name(),
            new_max,
            self.pa(addr),
            self.pa(addr + new_size - 1)
        ));
        let t = self.table_mut(kind);
        t.max = new_max;
        t.array = Some(MemRange::new(addr, new_alloc_size));
        let here = internal_caller();
        if let Some(old) = old_array {
            self.dbg_range("memblock_phys_free", old.base, old.size, here);
            self.remove_range(TableKind::Reserved, old.base, old.size)?;
        }
        self.dbg_range("memblock_reserve", addr, new_alloc_size, here);
        self.add_range(
            TableKind::Reserved,
            addr,
            new_alloc_size,
            0,
            RegionFlags::NONE,
        )
    }

    // ------------------------------------------------------------- public mutators

    /// `memblock_add`: add `[base, base + size)` to `memory`.
    #[track_caller]
    pub fn add(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.dbg_range("memblock_add", base, size, Location::caller());
        self.add_range(TableKind::Memory, base, size, 0, RegionFlags::NONE)
    }

    /// `memblock_add_node`: add memory with a node id and flags.
    #[track_caller]
    pub fn add_node(
        &mut self,
        base: PhysAddr,
        size: u64,
        nid: i32,
        flags: RegionFlags,
    ) -> Result<(), MemblockError> {
        if self.debug {
            let end = base.wrapping_add(size).wrapping_sub(1);
            zk_info!(
                "memblock_add_node: [{}-{}] nid={} flags={:x} {}",
                self.pa(base),
                self.pa(end),
                nid,
                flags.0,
                Caller(Location::caller())
            );
        }
        self.add_range(TableKind::Memory, base, size, nid, flags)
    }

    /// `memblock_remove`: remove `[base, base + size)` from `memory`.
    #[track_caller]
    pub fn remove(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.dbg_range("memblock_remove", base, size, Location::caller());
        self.remove_range(TableKind::Memory, base, size)
    }

    /// `memblock_reserve`: add `[base, base + size)` to `reserved`.
    #[track_caller]
    pub fn reserve(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.dbg_range("memblock_reserve", base, size, Location::caller());
        self.add_range(TableKind::Reserved, base, size, 0, RegionFlags::NONE)
    }

    /// `memblock_phys_free`: remove `[base, base + size)` from `reserved`.
    #[track_caller]
    pub fn phys_free(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.dbg_range("memblock_phys_free", base, size, Location::caller());
        self.remove_range(TableKind::Reserved, base, size)
    }

    /// `memblock_mark_nomap`: exclude the range from the direct mapping and from
    /// allocation.
    #[track_caller]
    pub fn mark_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, true, RegionFlags::NOMAP)
    }

    /// `memblock_clear_nomap`.
    #[track_caller]
    pub fn clear_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, false, RegionFlags::NOMAP)
    }

    /// `memblock_mark_mirror`. From then on allocations prefer mirrored memory
    /// (`system_has_some_mirror`, sticky as in Linux). Unlike Linux this does not
    /// depend on `kernelcore=mirror`.
    #[track_caller]
    pub fn mark_mirror(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.has_some_mirror = true;
        self.setclr_flag(base, size, true, RegionFlags::MIRROR)
    }

    /// `memblock_mark_hotplug`.
    #[track_caller]
    pub fn mark_hotplug(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, true, RegionFlags::HOTPLUG)
    }

    /// `memblock_clear_hotplug`.
    #[track_caller]
    pub fn clear_hotplug(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.setclr_flag(base, size, false, RegionFlags::HOTPLUG)
    }

    /// `memblock_set_node`: give the regions of table `kind` inside
    /// `[base, base + size)` node `nid` (NUMA semantics: the range is isolated, its
    /// regions get `nid`, then regions are merged again). Linux's x86 and arm64 NUMA
    /// code calls it on `memory` and on `reserved`.
    #[track_caller]
    pub fn set_node(
        &mut self,
        base: PhysAddr,
        size: u64,
        kind: TableKind,
        nid: i32,
    ) -> Result<(), MemblockError> {
        let (s, e) = self.isolate_range(kind, base, size)?;
        let t = self.table_mut(kind);
        for r in &mut t.regions[s..e] {
            r.nid = nid;
        }
        t.merge();
        Ok(())
    }

    /// `memblock_enforce_memory_limit` (`mem=`): keep only the first `limit` bytes of
    /// memory; everything above the resulting address is removed from `memory` and
    /// from `reserved`. `limit == 0`, or a limit at least the memory size, is a no-op.
    #[track_caller]
    pub fn enforce_memory_limit(&mut self, limit: u64) -> Result<(), MemblockError> {
        if limit == 0 {
            return Ok(());
        }
        let Some(max_addr) = self.find_max_addr(limit) else {
            return Ok(());
        };
        let pmax = self.phys_addr_max;
        self.remove_range(TableKind::Memory, max_addr, pmax)?;
        self.remove_range(TableKind::Reserved, max_addr, pmax)
    }

    /// `memblock_mem_limit_remove_map`: like [`enforce_memory_limit`](Self::enforce_memory_limit)
    /// but NOMAP memory regions are kept (via [`cap_memory_range`](Self::cap_memory_range)).
    #[track_caller]
    pub fn mem_limit_remove_map(&mut self, limit: u64) -> Result<(), MemblockError> {
        if limit == 0 {
            return Ok(());
        }
        let Some(max_addr) = self.find_max_addr(limit) else {
            return Ok(());
        };
        self.cap_memory_range(0, max_addr)
    }

    /// `memblock_cap_memory_range`: drop every non-NOMAP memory region outside
    /// `[base, base + size)`, and truncate `reserved` to that range (as Linux does).
    #[track_caller]
    pub fn cap_memory_range(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        if size == 0 {
            return Ok(());
        }
        if self.memory.total_size == 0 {
            zk_warn!("memblock_cap_memory_range: No memory registered yet");
            return Ok(());
        }
        let (s, e) = self.isolate_range(TableKind::Memory, base, size)?;
        let t = &mut self.memory;
        let mut i = t.regions.len();
        while i > e {
            i -= 1;
            if !t.regions[i].flags.contains(RegionFlags::NOMAP) {
                t.remove_region(i);
            }
        }
        let mut i = s;
        while i > 0 {
            i -= 1;
            if !t.regions[i].flags.contains(RegionFlags::NOMAP) {
                t.remove_region(i);
            }
        }
        let pmax = self.phys_addr_max;
        self.remove_range(TableKind::Reserved, 0, base)?;
        self.remove_range(TableKind::Reserved, base.saturating_add(size), pmax)
    }

    /// `__find_max_addr`: the address below which memory totals `limit` bytes, or
    /// `None` when there is less memory than that.
    fn find_max_addr(&self, mut limit: u64) -> Option<PhysAddr> {
        for r in self.memory.regions() {
            if limit <= r.size {
                return Some(r.base + limit);
            }
            limit -= r.size;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::memblock::{Memblock, TableKind, PHYS_ADDR_MAX_32};

    type Mb = Memblock<16>;

    #[test]
    fn add_merges_and_caps() {
        let mut m = Mb::new(PHYS_ADDR_MAX_32);
        m.add(0x1000_0000, 0x1000).unwrap();
        m.add(0x1000_1000, 0x1000).unwrap();
        assert_eq!(m.memory.cnt(), 1);
        assert_eq!(m.memory.regions()[0].size, 0x2000);
        m.add(0x8000_0000, 0x8000_0000).unwrap();
        assert_eq!(m.memory.regions()[1].size, 0x7fff_ffff);
        assert_eq!(m.phys_mem_size(), 0x2000 + 0x7fff_ffff);
        // above PHYS_ADDR_MAX: ignored
        m.add(0x1_0000_0000, 0x1000).unwrap();
        assert_eq!(m.memory.cnt(), 2);
    }

    #[test]
    fn isolate_splits() {
        let mut m = Mb::new(PHYS_ADDR_MAX_32);
        m.add(0x1000, 0x10000).unwrap();
        let (s, e) = m.isolate_range(TableKind::Memory, 0x3000, 0x2000).unwrap();
        assert_eq!((s, e), (1, 2));
        assert_eq!(m.memory.cnt(), 3);
        assert_eq!(m.phys_mem_size(), 0x10000);
    }
}
