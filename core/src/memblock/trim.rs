//! `memblock_trim_memory`: drop the parts of every memory bank that do not fill a
//! whole `align` block.
//!
//! Firmware memory maps may describe banks that start or end inside a page (x86's
//! `e820__memblock_setup` trims to `PAGE_SIZE` "to throw away partial pages") or
//! inside the block an architecture manages memory in (s390 trims to the largest
//! buddy order). Trimming memblock.memory before anything is allocated keeps every
//! partial block away from the allocators; a bank smaller than one aligned block
//! disappears. Unlike Linux, `total_size` stays equal to the sum of the regions
//! (Linux leaves it stale for regions it trims but keeps).

use super::{Memblock, MemblockError};
use crate::addr::{align_down, checked_align_up};

impl<const N: usize> Memblock<N> {
    /// `memblock_trim_memory(align)`: round every memory region's start up and end
    /// down to `align` (a power of two), removing regions left empty. Reserved
    /// regions are untouched. [`MemblockError::BadAlign`] for an alignment that is 0
    /// or not a power of two (memory unchanged).
    pub fn trim_memory(&mut self, align: u64) -> Result<(), MemblockError> {
        if !align.is_power_of_two() {
            return Err(MemblockError::BadAlign { align });
        }
        let t = &mut self.memory;
        let mut i = 0;
        while i < t.regions.len() {
            let r = t.regions[i];
            let end = align_down(r.end(), align);
            match checked_align_up(r.base, align) {
                Some(start) if start < end => {
                    t.total_size -= r.size - (end - start);
                    t.regions[i].base = start;
                    t.regions[i].size = end - start;
                    i += 1;
                }
                _ => t.remove_region(i),
            }
        }
        Ok(())
    }
}
