//! `kmap`/`kunmap` over the PKMAP window (`mm/highmem.c`).
//!
//! [`Pkmap`] keeps the 512 slots of the window at [`PKMAP_BASE`]: which page frame
//! each holds and how many users it has. [`Pkmap::map`]/[`Pkmap::unmap`] are the
//! bookkeeping alone; [`Pkmap::kmap`]/[`Pkmap::kunmap`] also write and clear the
//! second-level entries in a [`PageTable`] whose PKMAP table was allocated up front
//! (`kmap_init`).
//!
//! Differences from Linux: a slot is freed as soon as its count drops to zero and
//! the caller is told to invalidate that one page ([`TlbFlush::Page`]), where Linux
//! leaves it at count 1 and flushes all such slots at once when the search wraps
//! (`flush_all_zero_pkmaps`); when no slot is free the caller gets
//! [`MmuError::PkmapFull`] where Linux would sleep. Free slots are found next-fit
//! from the last one handed out, as Linux's `last_pkmap_nr`.

use super::desc::{Access, L2Entry, MemType};
use super::plan::{LAST_PKMAP, PKMAP_BASE};
use super::table::{PageTable, TableAllocator, TlbFlush};
use super::MmuError;
use zonekit_core::Pfn;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    pfn: Pfn,
    count: u32,
}

/// The PKMAP slots.
#[derive(Clone, Debug)]
pub struct Pkmap {
    slots: [Slot; LAST_PKMAP],
    last: usize,
    used: usize,
}

impl Default for Pkmap {
    fn default() -> Self {
        Self::new()
    }
}

impl Pkmap {
    /// All slots free.
    pub const fn new() -> Self {
        Self {
            slots: [Slot { pfn: 0, count: 0 }; LAST_PKMAP],
            last: 0,
            used: 0,
        }
    }

    /// `PKMAP_ADDR(nr)`.
    pub const fn slot_virt(slot: usize) -> u32 {
        PKMAP_BASE + ((slot % LAST_PKMAP) as u32) * 4096
    }

    /// `PKMAP_NR(virt)`, `None` outside the window.
    pub const fn virt_slot(virt: u32) -> Option<usize> {
        if virt < PKMAP_BASE {
            return None;
        }
        let nr = ((virt - PKMAP_BASE) / 4096) as usize;
        if nr < LAST_PKMAP {
            Some(nr)
        } else {
            None
        }
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.used
    }

    /// Where `pfn` is mapped (`page_address` for a highmem page), if it is.
    pub fn lookup(&self, pfn: Pfn) -> Option<u32> {
        self.slots
            .iter()
            .position(|s| s.count > 0 && s.pfn == pfn)
            .map(Self::slot_virt)
    }

    /// Users of the slot at `virt` (0 when free or outside the window).
    pub fn count(&self, virt: u32) -> u32 {
        Self::virt_slot(virt)
            .and_then(|i| self.slots.get(i))
            .map_or(0, |s| s.count)
    }

    /// Bookkeeping of `kmap`: the address of `pfn`'s slot, taking another reference
    /// if it is mapped already, otherwise a free slot (next-fit).
    pub fn map(&mut self, pfn: Pfn) -> Result<u32, MmuError> {
        if let Some(i) = self.slots.iter().position(|s| s.count > 0 && s.pfn == pfn) {
            let s = &mut self.slots[i];
            s.count = s.count.saturating_add(1);
            return Ok(Self::slot_virt(i));
        }
        for k in 1..=LAST_PKMAP {
            let i = (self.last + k) % LAST_PKMAP;
            if self.slots[i].count == 0 {
                self.slots[i] = Slot { pfn, count: 1 };
                self.last = i;
                self.used += 1;
                return Ok(Self::slot_virt(i));
            }
        }
        Err(MmuError::PkmapFull)
    }

    /// Bookkeeping of `kunmap`: drop one reference to the slot at `virt` (any
    /// address inside the page). When the last one goes the slot is free and the
    /// page's translation must be invalidated: [`TlbFlush::Page`].
    pub fn unmap(&mut self, virt: u32) -> Result<TlbFlush, MmuError> {
        let i = Self::virt_slot(virt).ok_or(MmuError::NotPkmap { virt })?;
        let s = &mut self.slots[i];
        if s.count == 0 {
            return Err(MmuError::NotMapped { virt });
        }
        s.count -= 1;
        if s.count > 0 {
            return Ok(TlbFlush::None);
        }
        self.used -= 1;
        Ok(TlbFlush::Page(Self::slot_virt(i)))
    }

    /// `kmap`: [`Self::map`] plus the second-level entry (normal memory, kernel RW,
    /// execute-never) in `pt`, whose PKMAP table must exist.
    pub fn kmap<A: TableAllocator>(
        &mut self,
        pt: &mut PageTable<A>,
        pfn: Pfn,
    ) -> Result<u32, MmuError> {
        let phys =
            pfn.checked_mul(4096)
                .filter(|p| *p < (1 << 32))
                .ok_or(MmuError::PhysTooHigh {
                    phys: pfn.saturating_mul(4096),
                })?;
        let fresh = self.lookup(pfn).is_none();
        let virt = self.map(pfn)?;
        if fresh {
            let pte = L2Entry::small_page(phys as u32, MemType::Memory, Access::KernelRw, false);
            if let Err(e) = pt.set_l2_entry(virt, pte) {
                let _ = self.unmap(virt);
                return Err(e);
            }
        }
        Ok(virt)
    }

    /// `kunmap`: [`Self::unmap`] plus clearing the second-level entry when the slot
    /// becomes free. The caller invalidates the returned page.
    pub fn kunmap<A: TableAllocator>(
        &mut self,
        pt: &mut PageTable<A>,
        virt: u32,
    ) -> Result<TlbFlush, MmuError> {
        let flush = self.unmap(virt)?;
        if let TlbFlush::Page(va) = flush {
            pt.set_l2_entry(va, L2Entry::FAULT)?;
        }
        Ok(flush)
    }
}
