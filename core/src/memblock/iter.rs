//! Walking memblock's free ranges, and finding room in them (Linux `mm/memblock.c`:
//! `__next_mem_range`, `__next_mem_range_rev`, `should_skip_region`,
//! `memblock_find_in_range_node`, `memblock_find_in_range`).
//!
//! The free ranges are `memory` minus `reserved`, merged on the fly by two indices
//! into the sorted tables, ascending or descending. The search clamps them to the
//! requested window and picks the top-most (or, bottom-up, the lowest) fit; it only
//! reads the tables, so table doubling can use it while a table is being changed.

use super::{Memblock, Region, RegionFlags, MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE};
use crate::addr::{align_down, checked_align_up, MemRange, PhysAddr, PAGE_SIZE};

/// One free range: `(base, end, nid)` with `end` exclusive.
pub type FreeRange = (PhysAddr, PhysAddr, i32);

/// Iterator over the free ranges (`memory` minus `reserved`), in ascending order
/// (`__next_mem_range`) or descending order (`__next_mem_range_rev`).
#[derive(Clone, Debug)]
pub struct FreeRanges<'a, const N: usize> {
    mb: &'a Memblock<N>,
    nid: i32,
    flags: RegionFlags,
    rev: bool,
    idx_a: isize,
    idx_b: isize,
}

impl<const N: usize> Iterator for FreeRanges<'_, N> {
    type Item = FreeRange;

    fn next(&mut self) -> Option<FreeRange> {
        if self.rev {
            self.next_rev()
        } else {
            self.next_fwd()
        }
    }
}

impl<const N: usize> FreeRanges<'_, N> {
    /// Start and end of the gap before reserved region `idx_b` (the last gap ends at
    /// the top of the address space).
    fn gap(&self, idx_b: usize) -> (PhysAddr, PhysAddr) {
        let res = self.mb.reserved.regions();
        let start = if idx_b > 0 { res[idx_b - 1].end() } else { 0 };
        let end = if idx_b < res.len() {
            res[idx_b].base
        } else {
            u64::MAX
        };
        (start, end)
    }

    fn next_fwd(&mut self) -> Option<FreeRange> {
        let mem = self.mb.memory.regions();
        let nres = self.mb.reserved.regions().len() as isize;
        while (self.idx_a as usize) < mem.len() {
            let m = mem[self.idx_a as usize];
            if self.mb.should_skip_region(&m, self.nid, self.flags) {
                self.idx_a += 1;
                continue;
            }
            let (m_start, m_end) = (m.base, m.end());
            while self.idx_b < nres + 1 {
                let (r_start, r_end) = self.gap(self.idx_b as usize);
                if r_start >= m_end {
                    break;
                }
                if m_start < r_end {
                    let out = (
                        core::cmp::max(m_start, r_start),
                        core::cmp::min(m_end, r_end),
                        m.nid,
                    );
                    if m_end <= r_end {
                        self.idx_a += 1;
                    } else {
                        self.idx_b += 1;
                    }
                    return Some(out);
                }
                self.idx_b += 1;
            }
            self.idx_a += 1;
        }
        None
    }

    fn next_rev(&mut self) -> Option<FreeRange> {
        let mem = self.mb.memory.regions();
        while self.idx_a >= 0 {
            let m = mem[self.idx_a as usize];
            if self.mb.should_skip_region(&m, self.nid, self.flags) {
                self.idx_a -= 1;
                continue;
            }
            let (m_start, m_end) = (m.base, m.end());
            while self.idx_b >= 0 {
                let (r_start, r_end) = self.gap(self.idx_b as usize);
                if r_end <= m_start {
                    break;
                }
                if m_end > r_start {
                    let out = (
                        core::cmp::max(m_start, r_start),
                        core::cmp::min(m_end, r_end),
                        m.nid,
                    );
                    if m_start >= r_start {
                        self.idx_a -= 1;
                    } else {
                        self.idx_b -= 1;
                    }
                    return Some(out);
                }
                self.idx_b -= 1;
            }
            self.idx_a -= 1;
        }
        None
    }
}

impl<const N: usize> Memblock<N> {
    /// `should_skip_region` for `memory`.
    fn should_skip_region(&self, m: &Region, nid: i32, flags: RegionFlags) -> bool {
        if nid != NUMA_NO_NODE && nid != m.nid {
            return true;
        }
        if self.movable_node
            && m.flags.contains(RegionFlags::HOTPLUG)
            && !flags.contains(RegionFlags::HOTPLUG)
        {
            return true;
        }
        if flags.contains(RegionFlags::MIRROR) && !m.flags.contains(RegionFlags::MIRROR) {
            return true;
        }
        if !flags.contains(RegionFlags::NOMAP) && m.flags.contains(RegionFlags::NOMAP) {
            return true;
        }
        if !flags.contains(RegionFlags::DRIVER_MANAGED)
            && m.flags.contains(RegionFlags::DRIVER_MANAGED)
        {
            return true;
        }
        false
    }

    /// `for_each_free_mem_range`: free ranges (memory not reserved) in ascending
    /// order, as `(base, end, nid)`. Memory regions of another node (unless `nid` is
    /// [`NUMA_NO_NODE`]), non-mirrored ones when `flags` has MIRROR, NOMAP and
    /// DRIVER_MANAGED ones unless `flags` asks for them are skipped.
    #[doc(alias = "for_each_free_mem_range")]
    #[doc(alias = "for_each_free_range")]
    pub fn free_ranges(&self, nid: i32, flags: RegionFlags) -> FreeRanges<'_, N> {
        FreeRanges {
            mb: self,
            nid,
            flags,
            rev: false,
            idx_a: 0,
            idx_b: 0,
        }
    }

    /// `for_each_free_mem_range_reverse`: like [`free_ranges`](Self::free_ranges) in
    /// descending order.
    #[doc(alias = "for_each_free_mem_range_reverse")]
    pub fn free_ranges_rev(&self, nid: i32, flags: RegionFlags) -> FreeRanges<'_, N> {
        FreeRanges {
            mb: self,
            nid,
            flags,
            rev: true,
            idx_a: self.memory.regions.len() as isize - 1,
            idx_b: self.reserved.regions.len() as isize,
        }
    }

    /// `choose_memblock_flags`.
    pub(super) fn choose_flags(&self) -> RegionFlags {
        if self.has_some_mirror {
            RegionFlags::MIRROR
        } else {
            RegionFlags::NONE
        }
    }

    /// `memblock_find_in_range_node`: find (without reserving) `size` bytes aligned to
    /// `align` inside `[start, end)`. `end == MEMBLOCK_ALLOC_ACCESSIBLE` means the
    /// current limit; the first page is never returned. Direction follows
    /// [`bottom_up`](Self::bottom_up). `align` 0 is treated as 1; a non-power-of-two
    /// alignment finds nothing.
    pub fn find_in_range_node(
        &self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
        nid: i32,
        flags: RegionFlags,
    ) -> Option<PhysAddr> {
        let align = if align == 0 { 1 } else { align };
        if !align.is_power_of_two() {
            return None;
        }
        let end = if end == MEMBLOCK_ALLOC_ACCESSIBLE {
            self.current_limit
        } else {
            end
        };
        let start = core::cmp::max(start, PAGE_SIZE);
        let end = core::cmp::max(start, end);
        let clamp = |x: PhysAddr| x.clamp(start, end);
        if self.bottom_up {
            for (s, e, _) in self.free_ranges(nid, flags) {
                let (s, e) = (clamp(s), clamp(e));
                // Rounding up past the top of the address space leaves no candidate
                // (a saturated round-up would lie below `s`, outside the range).
                let Some(cand) = checked_align_up(s, align) else {
                    continue;
                };
                if cand < e && e - cand >= size {
                    return Some(cand);
                }
            }
        } else {
            for (s, e, _) in self.free_ranges_rev(nid, flags) {
                let (s, e) = (clamp(s), clamp(e));
                if e < size {
                    continue;
                }
                let cand = align_down(e - size, align);
                if cand >= s {
                    return Some(cand);
                }
            }
        }
        None
    }

    /// `memblock_find_in_range`: any node, preferring mirrored memory if there is
    /// some, falling back to any memory.
    pub fn find_in_range(
        &self,
        start: PhysAddr,
        end: PhysAddr,
        size: u64,
        align: u64,
    ) -> Option<PhysAddr> {
        let mut flags = self.choose_flags();
        loop {
            let r = self.find_in_range_node(size, align, start, end, NUMA_NO_NODE, flags);
            if r.is_none() && flags.contains(RegionFlags::MIRROR) {
                zk_warn!(
                    "Could not allocate {} bytes of mirrored memory",
                    self.pa(size)
                );
                flags = flags.without(RegionFlags::MIRROR);
                continue;
            }
            return r;
        }
    }

    /// The memory regions as ranges.
    pub fn memory_ranges(&self) -> impl Iterator<Item = MemRange> + '_ {
        self.memory
            .regions()
            .iter()
            .map(|r| MemRange::new(r.base, r.size))
    }

    /// The reserved regions as ranges.
    pub fn reserved_ranges(&self) -> impl Iterator<Item = MemRange> + '_ {
        self.reserved
            .regions()
            .iter()
            .map(|r| MemRange::new(r.base, r.size))
    }
}

#[cfg(test)]
mod tests {
    use crate::memblock::{FreeRange, Memblock, RegionFlags, NUMA_NO_NODE, PHYS_ADDR_MAX_32};

    type Mb = Memblock<16>;

    #[test]
    fn free_ranges_both_directions() {
        let mut m = Mb::new(PHYS_ADDR_MAX_32);
        m.add(0x1000, 0x4000).unwrap();
        m.add(0x10000, 0x4000).unwrap();
        m.reserve(0x2000, 0x1000).unwrap();
        let f: heapless::Vec<FreeRange, 8> =
            m.free_ranges(NUMA_NO_NODE, RegionFlags::NONE).collect();
        assert_eq!(
            &f[..],
            &[
                (0x1000, 0x2000, 0),
                (0x3000, 0x5000, 0),
                (0x10000, 0x14000, 0)
            ]
        );
        let r: heapless::Vec<FreeRange, 8> =
            m.free_ranges_rev(NUMA_NO_NODE, RegionFlags::NONE).collect();
        assert_eq!(
            &r[..],
            &[
                (0x10000, 0x14000, 0),
                (0x3000, 0x5000, 0),
                (0x1000, 0x2000, 0)
            ]
        );
    }
}
