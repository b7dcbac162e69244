//! The long-descriptor (LPAE) translation-table builder: a first-level table of four
//! 1 GiB entries (TTBCR.T0SZ = 0) and the 4 KiB second- and third-level tables it
//! needs, in memory handed out by a [`TableAllocator`], as Linux's
//! `CONFIG_ARM_LPAE` `create_mapping` builds them.
//!
//! As [`super::table`] it works in physical addresses only and reaches table memory
//! through [`TableMemory`](super::TableMemory) (a 64-bit entry is two words, low word
//! first). Mappings use 2 MiB blocks where virtual and physical addresses and the
//! size allow, 4 KiB pages elsewhere (Linux's `alloc_init_pmd`/`__map_init_section` with
//! `SECTION_SIZE` 2 MiB; it never maps 1 GiB blocks on ARM32). Output addresses are
//! 40-bit, so pages above 4 GiB can be mapped (kmap of LPAE highmem).
//!
//! An LPAE board ([`crate::board::BoardDesc::lpae`]) boots with it
//! ([`super::arm_table::ArmPageTable::Long`]).
//!
//! Linux counterpart: `create_mapping` → `alloc_init_pud`/`alloc_init_pmd`/`alloc_init_pte` (`arch/arm/mm/mmu.c`, LPAE).

use super::desc::{Access, MemType};
use super::desc_long::{LongAttrs, LongKind, LongL1Entry, LongL2Entry, LongL3Entry, LongPageKind};
use super::table_memory::TableAllocator;
use super::MmuError;
use zonekit_core::PhysAddr;

/// Bytes (and alignment) of every table the builder allocates: a 4 KiB page (the
/// first-level table uses 32 bytes of it).
pub const LONG_TABLE_SIZE: usize = 4096;
/// Entries of a second- or third-level table.
pub const LONG_ENTRIES: usize = 512;
/// Entries of the first-level table with T0SZ = 0.
pub const LONG_L1_ENTRIES: usize = 4;
/// What a second-level block maps.
pub const LONG_BLOCK_SIZE: u64 = 1 << 21;
/// Largest output address + 1 (40 bits).
pub const LONG_PA_END: u64 = 1 << 40;

const PAGE: u64 = 4096;
const VA_END: u64 = 1 << 32;

/// The result of [`LongPageTable::walk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongTranslation {
    /// The physical address of the byte.
    pub phys: u64,
    /// The attributes of the leaf.
    pub attrs: LongAttrs,
    /// True for a 2 MiB (or 1 GiB) block, false for a 4 KiB page.
    pub block: bool,
}

/// A long-descriptor translation table under construction (or live, once installed).
pub struct LongPageTable<A: TableAllocator> {
    alloc: A,
    l1: PhysAddr,
    tables: usize,
}

impl<A: TableAllocator> core::fmt::Debug for LongPageTable<A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LongPageTable")
            .field("l1", &format_args!("{:#x}", self.l1))
            .field("tables", &self.tables)
            .finish()
    }
}

impl<A: TableAllocator> LongPageTable<A> {
    /// Allocate and zero the first-level table (one 4 KiB page, below 1 TiB).
    pub fn new(mut alloc: A) -> Result<Self, MmuError> {
        let l1 = Self::alloc_zeroed(&mut alloc)?;
        Ok(Self {
            alloc,
            l1,
            tables: 0,
        })
    }

    fn alloc_zeroed(alloc: &mut A) -> Result<PhysAddr, MmuError> {
        let phys = alloc.alloc_table(LONG_TABLE_SIZE, LONG_TABLE_SIZE)?;
        if !phys.is_multiple_of(LONG_TABLE_SIZE as u64) || phys >= LONG_PA_END {
            return Err(MmuError::BadTableAddress { phys });
        }
        alloc
            .words_mut(phys, LONG_TABLE_SIZE / 4)
            .ok_or(MmuError::TableUnreachable { phys })?
            .fill(0);
        Ok(phys)
    }

    /// Physical address of the first-level table (for the 64-bit TTBR0).
    pub fn l1_phys(&self) -> PhysAddr {
        self.l1
    }

    /// Second- and third-level tables allocated.
    pub fn table_count(&self) -> usize {
        self.tables
    }

    /// The allocator.
    pub fn allocator(&self) -> &A {
        &self.alloc
    }

    /// Mutable access to the allocator.
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.alloc
    }

    /// The same tables with another allocator reaching the same table memory.
    pub fn map_allocator<B: TableAllocator>(self, f: impl FnOnce(A) -> B) -> LongPageTable<B> {
        LongPageTable {
            alloc: f(self.alloc),
            l1: self.l1,
            tables: self.tables,
        }
    }

    /// Apply one request of a [`super::plan_kernel_mappings`] plan.
    pub fn apply(&mut self, req: &super::MappingRequest) -> Result<(), MmuError> {
        match req.kind {
            super::MappingKind::Pkmap => self.prealloc_l3(req.virt, req.size),
            _ => self.create_mapping(
                req.virt,
                req.phys,
                u64::from(req.size),
                req.mem,
                req.access,
                req.exec,
            ),
        }
    }

    /// The level (1, 2 or 3) at which a walk of `virt` stops on an invalid entry,
    /// `None` when `virt` is mapped.
    pub fn fault_level(&self, virt: u32) -> Option<u8> {
        let v = virt as u64;
        let Ok(e1) = self.get(self.l1, Self::l1_idx(v)) else {
            return Some(1);
        };
        let l2 = match LongL1Entry::from_bits(e1).decode() {
            LongKind::Table { base } => base,
            LongKind::Block { .. } => return None,
            LongKind::Fault => return Some(1),
        };
        let l3 = match self
            .get(l2, Self::l2_idx(v))
            .map(|e| LongL2Entry::from_bits(e).decode())
        {
            Ok(LongKind::Table { base }) => base,
            Ok(LongKind::Block { .. }) => return None,
            _ => return Some(2),
        };
        match self
            .get(l3, Self::l3_idx(v))
            .map(|e| LongL3Entry::from_bits(e).decode())
        {
            Ok(LongPageKind::Page { .. }) => None,
            _ => Some(3),
        }
    }

    fn get(&self, table: PhysAddr, idx: usize) -> Result<u64, MmuError> {
        let phys = table + 8 * idx as u64;
        let w = self
            .alloc
            .words(phys, 2)
            .ok_or(MmuError::TableUnreachable { phys })?;
        Ok(u64::from(w[0]) | (u64::from(w[1]) << 32))
    }

    fn set(&mut self, table: PhysAddr, idx: usize, v: u64) -> Result<(), MmuError> {
        let phys = table + 8 * idx as u64;
        let w = self
            .alloc
            .words_mut(phys, 2)
            .ok_or(MmuError::TableUnreachable { phys })?;
        w[0] = v as u32;
        w[1] = (v >> 32) as u32;
        Ok(())
    }

    fn l1_idx(virt: u64) -> usize {
        ((virt >> 30) & 0b11) as usize
    }

    fn l2_idx(virt: u64) -> usize {
        ((virt >> 21) & 0x1FF) as usize
    }

    fn l3_idx(virt: u64) -> usize {
        ((virt >> 12) & 0x1FF) as usize
    }

    /// The second-level table covering `virt`, allocated if `create`.
    fn l2_table(&mut self, virt: u64, create: bool) -> Result<Option<PhysAddr>, MmuError> {
        let idx = Self::l1_idx(virt);
        match LongL1Entry::from_bits(self.get(self.l1, idx)?).decode() {
            LongKind::Table { base } => Ok(Some(base)),
            LongKind::Block { .. } => Err(MmuError::Overlap { virt: virt as u32 }),
            LongKind::Fault if create => {
                let t = Self::alloc_zeroed(&mut self.alloc)?;
                self.tables += 1;
                self.set(self.l1, idx, LongL1Entry::table(t).bits())?;
                Ok(Some(t))
            }
            LongKind::Fault => Ok(None),
        }
    }

    /// The third-level table covering `virt`, allocated (with its second-level
    /// table) if `create`; a block there is an overlap.
    fn l3_table(&mut self, virt: u64, create: bool) -> Result<Option<PhysAddr>, MmuError> {
        let Some(l2) = self.l2_table(virt, create)? else {
            return Ok(None);
        };
        let idx = Self::l2_idx(virt);
        match LongL2Entry::from_bits(self.get(l2, idx)?).decode() {
            LongKind::Table { base } => Ok(Some(base)),
            LongKind::Block { .. } => Err(MmuError::Overlap { virt: virt as u32 }),
            LongKind::Fault if create => {
                let t = Self::alloc_zeroed(&mut self.alloc)?;
                self.tables += 1;
                self.set(l2, idx, LongL2Entry::table(t).bits())?;
                Ok(Some(t))
            }
            LongKind::Fault => Ok(None),
        }
    }

    /// Map virtual `[virt, virt+size)` to physical `phys` (40-bit) as `mem` with
    /// `access`, executable if `exec`: 2 MiB blocks where aligned, 4 KiB pages
    /// elsewhere. Nothing in the range may be mapped already.
    pub fn create_mapping(
        &mut self,
        virt: u32,
        phys: u64,
        size: u64,
        mem: MemType,
        access: Access,
        exec: bool,
    ) -> Result<(), MmuError> {
        let misaligned = MmuError::Misaligned {
            virt,
            phys,
            size: size as u32,
        };
        if size == 0 {
            return Err(MmuError::ZeroSize);
        }
        if !(virt as u64 | phys | size).is_multiple_of(PAGE) {
            return Err(misaligned);
        }
        let end = (virt as u64).saturating_add(size);
        if end > VA_END {
            return Err(MmuError::WrapAround {
                virt,
                size: size as u32,
            });
        }
        if phys.checked_add(size).is_none_or(|e| e > LONG_PA_END) {
            return Err(MmuError::PhysTooHigh { phys });
        }
        let attrs = LongAttrs::new(mem, access, exec);
        let (mut va, mut pa) = (virt as u64, phys);
        while va < end {
            let block = (va | pa) % LONG_BLOCK_SIZE == 0 && end - va >= LONG_BLOCK_SIZE;
            if block {
                let l2 = self.l2_table(va, true)?.ok_or(misaligned)?;
                let idx = Self::l2_idx(va);
                if !LongL2Entry::from_bits(self.get(l2, idx)?).is_fault() {
                    return Err(MmuError::Overlap { virt: va as u32 });
                }
                self.set(l2, idx, LongL2Entry::block_with(pa, &attrs).bits())?;
                va += LONG_BLOCK_SIZE;
                pa += LONG_BLOCK_SIZE;
            } else {
                let l3 = self.l3_table(va, true)?.ok_or(misaligned)?;
                let idx = Self::l3_idx(va);
                if !LongL3Entry::from_bits(self.get(l3, idx)?).is_fault() {
                    return Err(MmuError::Overlap { virt: va as u32 });
                }
                self.set(l3, idx, LongL3Entry::page_with(pa, &attrs).bits())?;
                va += PAGE;
                pa += PAGE;
            }
        }
        Ok(())
    }

    /// Install (empty) third-level tables for every 2 MiB of `[virt, virt+size)`
    /// (Linux's `kmap_init` / `early_pte_alloc`).
    pub fn prealloc_l3(&mut self, virt: u32, size: u32) -> Result<(), MmuError> {
        let end = virt as u64 + size as u64;
        if size == 0 || end > VA_END {
            return Err(MmuError::WrapAround { virt, size });
        }
        let mut va = virt as u64 & !(LONG_BLOCK_SIZE - 1);
        while va < end {
            self.l3_table(va, true)?;
            va += LONG_BLOCK_SIZE;
        }
        Ok(())
    }

    /// Physical address of the third-level entry for `virt`, where a third-level
    /// table covers it.
    pub fn l3_entry_phys(&self, virt: u32) -> Option<PhysAddr> {
        let v = virt as u64;
        let l2 = match LongL1Entry::from_bits(self.get(self.l1, Self::l1_idx(v)).ok()?).decode() {
            LongKind::Table { base } => base,
            _ => return None,
        };
        match LongL2Entry::from_bits(self.get(l2, Self::l2_idx(v)).ok()?).decode() {
            LongKind::Table { base } => Some(base + 8 * Self::l3_idx(v) as u64),
            _ => None,
        }
    }

    /// Replace the third-level entry for `virt` (covered by a table already, e.g.
    /// from [`Self::prealloc_l3`]); returns the old one. The caller does the cache
    /// and TLB maintenance.
    pub fn set_l3_entry(&mut self, virt: u32, e: LongL3Entry) -> Result<LongL3Entry, MmuError> {
        let phys = self
            .l3_entry_phys(virt)
            .ok_or(MmuError::NoL2Table { virt })?;
        let old = self.get(phys, 0)?;
        self.set(phys, 0, e.bits())?;
        Ok(LongL3Entry::from_bits(old))
    }

    /// Translate `virt` as the MMU would: `None` for a translation fault.
    pub fn walk(&self, virt: u32) -> Option<LongTranslation> {
        let v = virt as u64;
        let l2 = match LongL1Entry::from_bits(self.get(self.l1, Self::l1_idx(v)).ok()?).decode() {
            LongKind::Table { base } => base,
            LongKind::Block { base, attrs } => {
                return Some(LongTranslation {
                    phys: base | (v & ((1 << 30) - 1)),
                    attrs,
                    block: true,
                })
            }
            LongKind::Fault => return None,
        };
        let l3 = match LongL2Entry::from_bits(self.get(l2, Self::l2_idx(v)).ok()?).decode() {
            LongKind::Table { base } => base,
            LongKind::Block { base, attrs } => {
                return Some(LongTranslation {
                    phys: base | (v & (LONG_BLOCK_SIZE - 1)),
                    attrs,
                    block: true,
                })
            }
            LongKind::Fault => return None,
        };
        match LongL3Entry::from_bits(self.get(l3, Self::l3_idx(v)).ok()?).decode() {
            LongPageKind::Page { base, attrs } => Some(LongTranslation {
                phys: base | (v & (PAGE - 1)),
                attrs,
                block: false,
            }),
            LongPageKind::Fault => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmu::SliceTableAllocator;

    fn with_table(f: impl FnOnce(&mut LongPageTable<SliceTableAllocator<'_>>)) {
        let mut ram = [0u32; 16 * 1024];
        let alloc = SliceTableAllocator::new(0x8F00_0000, &mut ram);
        let mut pt = LongPageTable::new(alloc).unwrap();
        f(&mut pt);
    }

    #[test]
    fn lowmem_in_blocks_devices_in_pages() {
        with_table(|pt| {
            // Lowmem of vexpress-a15 LPAE: 768 MiB at 0x80000000 -> 0xC0000000.
            pt.create_mapping(
                0xC000_0000,
                0x8000_0000,
                0x3000_0000,
                MemType::Memory,
                Access::KernelRw,
                true,
            )
            .unwrap();
            let t = pt.walk(0xC123_4567).unwrap();
            assert_eq!(t.phys, 0x8123_4567);
            assert!(t.block);
            assert_eq!(t.attrs.mem_type(), Some(MemType::Memory));
            // One second-level table for the 0xC0000000 GiB, no third-level one.
            assert_eq!(pt.table_count(), 1);
            // A UART page in the device window.
            pt.create_mapping(
                0xF800_0000,
                0x1C09_0000,
                0x1000,
                MemType::Device,
                Access::KernelRw,
                false,
            )
            .unwrap();
            let t = pt.walk(0xF800_0010).unwrap();
            assert_eq!((t.phys, t.block), (0x1C09_0010, false));
            assert_eq!(t.attrs.mem_type(), Some(MemType::Device));
            assert!(!t.attrs.exec());
            assert_eq!(pt.table_count(), 2);
            assert_eq!(pt.walk(0xF800_1000), None);
            assert_eq!(pt.walk(0x1000_0000), None);
            // Overlaps are refused.
            assert_eq!(
                pt.create_mapping(
                    0xC020_0000,
                    0,
                    0x1000,
                    MemType::Memory,
                    Access::KernelRw,
                    false
                ),
                Err(MmuError::Overlap { virt: 0xC020_0000 })
            );
        });
    }

    #[test]
    fn kmap_a_page_above_4g() {
        with_table(|pt| {
            // PKMAP window: 2 MiB at 0xBFE00000.
            pt.prealloc_l3(0xBFE0_0000, 0x20_0000).unwrap();
            assert_eq!(pt.walk(0xBFE0_0000), None);
            let pte = LongL3Entry::page(0x2_7FFF_F000, MemType::Memory, Access::KernelRw, false);
            let old = pt.set_l3_entry(0xBFE0_1000, pte).unwrap();
            assert!(old.is_fault());
            let t = pt.walk(0xBFE0_1ABC).unwrap();
            assert_eq!(t.phys, 0x2_7FFF_FABC);
            assert!(!t.block);
            let e = pt.l3_entry_phys(0xBFE0_1000).unwrap();
            assert_eq!(e % 4096, 8);
            pt.set_l3_entry(0xBFE0_1000, LongL3Entry::FAULT).unwrap();
            assert_eq!(pt.walk(0xBFE0_1ABC), None);
            // Outside a third-level table there is nothing to set.
            assert_eq!(
                pt.set_l3_entry(0x4000_0000, pte),
                Err(MmuError::NoL2Table { virt: 0x4000_0000 })
            );
        });
    }

    #[test]
    fn bad_requests_are_errors() {
        with_table(|pt| {
            let m = |pt: &mut LongPageTable<_>, v, p, s| {
                pt.create_mapping(v, p, s, MemType::Memory, Access::KernelRw, false)
            };
            assert_eq!(m(pt, 0, 0, 0), Err(MmuError::ZeroSize));
            assert!(matches!(
                m(pt, 0x10, 0, 0x1000),
                Err(MmuError::Misaligned { .. })
            ));
            assert!(matches!(
                m(pt, 0xFFFF_F000, 0, 0x2000),
                Err(MmuError::WrapAround { .. })
            ));
            assert!(matches!(
                m(pt, 0x1000, 0, 0xFFFF_FFFF_FFFF_F000),
                Err(MmuError::WrapAround { .. })
            ));
            assert!(matches!(
                m(pt, 0, 0xFF_FFFF_F000, 0x2000),
                Err(MmuError::PhysTooHigh { .. })
            ));
        });
    }
}
