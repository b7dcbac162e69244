//! The kernel page table in either of Linux's ARM32 formats: short descriptors
//! ([`PageTable`], classic) or long descriptors ([`LongPageTable`],
//! `CONFIG_ARM_LPAE`), chosen per board ([`crate::board::BoardDesc::lpae`]).
//!
//! [`ArmPageTable`] offers what the boot and the MMU self-tests need of either: the
//! plan applied, a walk, kmap entries, and the fault a missing translation raises, so
//! [`super::KernelMmu`], the guest and the simulator do not depend on the format.
//! The choice is at run time rather than by a cargo feature because the simulator
//! (one host build) boots every board, LPAE or not, with the same code.

use zonekit_core::{Pfn, PhysAddr};

use super::desc::{Access, L1Kind, L2Entry, MemType};
use super::desc_long::LongL3Entry;
use super::table_long::{LongPageTable, LONG_PA_END};
use super::{MappingRequest, MmuError, PageTable, TableAllocator};

/// A kernel page table of either format.
#[derive(Debug)]
pub enum ArmPageTable<A: TableAllocator> {
    /// Short descriptors (32-bit physical addresses).
    Short(PageTable<A>),
    /// Long descriptors (LPAE, 40-bit physical addresses).
    Long(LongPageTable<A>),
}

/// Where a virtual address translates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArmTranslation {
    /// The physical address of the byte.
    pub phys: u64,
    /// The memory type, if it is one zonekit writes.
    pub mem: Option<MemType>,
}

impl<A: TableAllocator> ArmPageTable<A> {
    /// An empty table of the chosen format (`lpae`: long descriptors).
    pub fn new(alloc: A, lpae: bool) -> Result<Self, MmuError> {
        Ok(if lpae {
            ArmPageTable::Long(LongPageTable::new(alloc)?)
        } else {
            ArmPageTable::Short(PageTable::new(alloc)?)
        })
    }

    /// The short-descriptor table, if that is the format.
    pub fn into_short(self) -> Option<PageTable<A>> {
        match self {
            ArmPageTable::Short(pt) => Some(pt),
            ArmPageTable::Long(_) => None,
        }
    }

    /// The long-descriptor table, if that is the format.
    pub fn into_long(self) -> Option<LongPageTable<A>> {
        match self {
            ArmPageTable::Long(pt) => Some(pt),
            ArmPageTable::Short(_) => None,
        }
    }

    /// True for the long-descriptor format.
    pub fn is_long(&self) -> bool {
        matches!(self, ArmPageTable::Long(_))
    }

    /// The name the boot log gives the format.
    pub fn format_name(&self) -> &'static str {
        match self {
            ArmPageTable::Short(_) => "short descriptors",
            ArmPageTable::Long(_) => "LPAE long descriptors",
        }
    }

    /// Apply one request of a [`super::plan_kernel_mappings`] plan.
    pub fn apply(&mut self, req: &MappingRequest) -> Result<(), MmuError> {
        match self {
            ArmPageTable::Short(pt) => pt.apply(req),
            ArmPageTable::Long(pt) => pt.apply(req),
        }
    }

    /// Physical address of the first-level table.
    pub fn l1_phys(&self) -> PhysAddr {
        match self {
            ArmPageTable::Short(pt) => u64::from(pt.l1_phys()),
            ArmPageTable::Long(pt) => pt.l1_phys(),
        }
    }

    /// Tables allocated below the first level.
    pub fn table_count(&self) -> usize {
        match self {
            ArmPageTable::Short(pt) => pt.l2_table_count(),
            ArmPageTable::Long(pt) => pt.table_count(),
        }
    }

    /// The allocator.
    pub fn allocator(&self) -> &A {
        match self {
            ArmPageTable::Short(pt) => pt.allocator(),
            ArmPageTable::Long(pt) => pt.allocator(),
        }
    }

    /// Mutable access to the allocator.
    pub fn allocator_mut(&mut self) -> &mut A {
        match self {
            ArmPageTable::Short(pt) => pt.allocator_mut(),
            ArmPageTable::Long(pt) => pt.allocator_mut(),
        }
    }

    /// The same tables with another allocator reaching the same table memory.
    pub fn map_allocator<B: TableAllocator>(self, f: impl FnOnce(A) -> B) -> ArmPageTable<B> {
        match self {
            ArmPageTable::Short(pt) => ArmPageTable::Short(pt.map_allocator(f)),
            ArmPageTable::Long(pt) => ArmPageTable::Long(pt.map_allocator(f)),
        }
    }

    /// Translate `virt` as the MMU would (`None`: a translation fault).
    pub fn walk(&self, virt: u32) -> Option<ArmTranslation> {
        match self {
            ArmPageTable::Short(pt) => pt.walk(virt).map(|t| ArmTranslation {
                phys: t.phys,
                mem: t.mem,
            }),
            ArmPageTable::Long(pt) => pt.walk(virt).map(|t| ArmTranslation {
                phys: t.phys,
                mem: t.attrs.mem_type(),
            }),
        }
    }

    /// The DFSR a data access to unmapped `virt` reports: the short format's FS
    /// (translation fault, section 0b00101 or page 0b00111), or with long
    /// descriptors the LPAE bit (9) and STATUS 0b0001LL (translation fault at level
    /// LL); WnR (bit 11) for a write. `None` when `virt` is mapped.
    pub fn translation_fault_status(&self, virt: u32, write: bool) -> Option<u32> {
        let wnr = if write { 1 << 11 } else { 0 };
        match self {
            ArmPageTable::Short(pt) => {
                if pt.walk(virt).is_some() {
                    return None;
                }
                let fs = match pt.l1_entry(virt).decode() {
                    L1Kind::PageTable { .. } => 0b00111,
                    _ => 0b00101,
                };
                Some(fs | wnr)
            }
            ArmPageTable::Long(pt) => pt
                .fault_level(virt)
                .map(|level| (1 << 9) | 0b000100 | u32::from(level) | wnr),
        }
    }

    /// Map `pfn` at the PKMAP address `virt` (normal memory, kernel read/write,
    /// execute-never), whose last-level table exists (`kmap_init`).
    pub fn set_kmap_entry(&mut self, virt: u32, pfn: Pfn) -> Result<(), MmuError> {
        let phys = pfn.checked_mul(4096);
        match self {
            ArmPageTable::Short(pt) => {
                let phys = phys.filter(|p| *p < 1 << 32).ok_or(MmuError::PhysTooHigh {
                    phys: pfn.saturating_mul(4096),
                })?;
                let pte =
                    L2Entry::small_page(phys as u32, MemType::Memory, Access::KernelRw, false);
                pt.set_l2_entry(virt, pte).map(|_| ())
            }
            ArmPageTable::Long(pt) => {
                let phys = phys
                    .filter(|p| *p < LONG_PA_END)
                    .ok_or(MmuError::PhysTooHigh {
                        phys: pfn.saturating_mul(4096),
                    })?;
                let pte = LongL3Entry::page(phys, MemType::Memory, Access::KernelRw, false);
                pt.set_l3_entry(virt, pte).map(|_| ())
            }
        }
    }

    /// Clear the PKMAP entry at `virt`.
    pub fn clear_kmap_entry(&mut self, virt: u32) -> Result<(), MmuError> {
        match self {
            ArmPageTable::Short(pt) => pt.set_l2_entry(virt, L2Entry::FAULT).map(|_| ()),
            ArmPageTable::Long(pt) => pt.set_l3_entry(virt, LongL3Entry::FAULT).map(|_| ()),
        }
    }

    /// Physical address of the last-level entry for `virt` (what cache maintenance
    /// after a kmap entry write cleans).
    pub fn leaf_entry_phys(&self, virt: u32) -> Option<PhysAddr> {
        match self {
            ArmPageTable::Short(pt) => pt.l2_entry_phys(virt),
            ArmPageTable::Long(pt) => pt.l3_entry_phys(virt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmu::{plan_kernel_mappings, DeviceRegion, SliceTableAllocator};

    /// The same plan in both formats translates the same way; kmap above 4 GiB works
    /// only with long descriptors; faults are reported in each format's DFSR.
    #[test]
    fn both_formats_follow_the_plan() {
        let uart = DeviceRegion {
            name: "uart0",
            phys: 0x1C09_0000,
            size: 0x1000,
        };
        let plan = plan_kernel_mappings(
            (0x8000_0000, 0xB000_0000),
            0x8000_0000,
            (0x8000_8000, 0x8040_0000),
            &[uart],
        )
        .unwrap();
        for lpae in [false, true] {
            let mut ram = [0u32; 32 * 1024];
            let alloc = SliceTableAllocator::new(0xAF00_0000, &mut ram);
            let mut pt = ArmPageTable::new(alloc, lpae).unwrap();
            for r in &plan {
                pt.apply(r).unwrap();
            }
            assert_eq!(pt.is_long(), lpae);
            let t = pt.walk(0xC123_4568).unwrap();
            assert_eq!((t.phys, t.mem), (0x8123_4568, Some(MemType::Memory)));
            let dev = crate::mmu::device_virt(&plan, 0x1C09_0000).unwrap();
            assert_eq!(pt.walk(dev).unwrap().mem, Some(MemType::Device));
            let slot = crate::mmu::PKMAP_BASE + 0x1000;
            assert_eq!(pt.walk(slot), None);
            let above_4g: Pfn = 0x27_FFFF;
            assert_eq!(pt.set_kmap_entry(slot, above_4g).is_ok(), lpae);
            pt.set_kmap_entry(slot, 0x8_0000).unwrap();
            assert_eq!(pt.walk(slot).unwrap().phys, 0x8000_0000);
            assert!(pt.leaf_entry_phys(slot).is_some());
            pt.clear_kmap_entry(slot).unwrap();
            let want = if lpae { 0x200 | 0b0111 } else { 0b00111 };
            assert_eq!(pt.translation_fault_status(slot, false), Some(want));
            let want = if lpae {
                0x200 | 0b0101 | 0x800
            } else {
                0b00101 | 0x800
            };
            assert_eq!(pt.translation_fault_status(0x1000_0000, true), Some(want));
            assert_eq!(pt.translation_fault_status(0xC000_0000, true), None);
        }
    }
}
