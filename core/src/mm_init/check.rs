//! The boot-state self-check of a node: what `free_area_init_node` must leave behind
//! ([`PgData::check_boot_state`], run by the guest and by host tests).
//!
//! Linux has no such function: this is the `CONFIG_DEBUG_VM`-style verification of
//! `mm/mm_init.c`'s result (every page of every zone reserved, count 1, linked to its
//! zone and node; the `mem_map` inside memblock.memory and memblock.reserved). It
//! reads a [`PgData`] and memblock and changes nothing, so it is kept apart from the
//! initialisation itself.

use crate::addr::{Pfn, PhysAddr};
use crate::memblock::{Memblock, Region};
use crate::mmtypes::ZoneType;
use crate::storage::PageStorage;
use crate::zone::PgData;

impl<S: PageStorage> PgData<S> {
    /// Verify the state `free_area_init_node` leaves (the in-guest self-check):
    /// every page of every zone is reserved, has reference count 1 and is linked to
    /// its zone and node; the zones add up to the node; the `mem_map` allocation lies
    /// inside `memblock.memory` and inside `memblock.reserved`.
    pub fn check_boot_state<const N: usize>(
        &self,
        memblock: &Memblock<N>,
    ) -> Result<NodeCheck, CheckFailure> {
        let spanned: u64 = self.zones.iter().map(|z| z.spanned_pages).sum();
        if spanned != self.node_spanned_pages {
            return Err(CheckFailure::SpannedMismatch {
                zones: spanned,
                node: self.node_spanned_pages,
            });
        }
        let present: u64 = self.zones.iter().map(|z| z.present_pages).sum();
        if present != self.node_present_pages {
            return Err(CheckFailure::PresentMismatch {
                zones: present,
                node: self.node_present_pages,
            });
        }
        let mut result = NodeCheck {
            node_id: self.node_id,
            zones_checked: 0,
            pages_checked: 0,
            spanned_pages: spanned,
            present_pages: present,
            mem_map_phys: self.mem_map_phys,
            mem_map_bytes: self.mem_map_bytes,
        };
        if self.node_spanned_pages == 0 {
            return Ok(result);
        }
        if self.mem_map.is_none() {
            return Err(CheckFailure::NoMemMap);
        }
        let mm_end = self.mem_map_phys.saturating_add(self.mem_map_bytes);
        if !covered(memblock.memory.regions(), self.mem_map_phys, mm_end) {
            return Err(CheckFailure::MemMapNotInMemory {
                base: self.mem_map_phys,
                size: self.mem_map_bytes,
            });
        }
        if !covered(memblock.reserved.regions(), self.mem_map_phys, mm_end) {
            return Err(CheckFailure::MemMapNotReserved {
                base: self.mem_map_phys,
                size: self.mem_map_bytes,
            });
        }
        for zone in self.zones.iter().filter(|z| z.spanned_pages > 0) {
            for pfn in zone.zone_start_pfn..zone.zone_end_pfn() {
                let page = self
                    .pfn_to_page(pfn)
                    .ok_or(CheckFailure::PfnOutsideMemMap { pfn })?;
                if !page.is_reserved() {
                    return Err(CheckFailure::PageNotReserved { pfn });
                }
                if page.refcount() != 1 {
                    return Err(CheckFailure::BadRefcount {
                        pfn,
                        refcount: page.refcount(),
                    });
                }
                if page.zone_type() != zone.zone_type {
                    return Err(CheckFailure::WrongZone {
                        pfn,
                        expected: zone.zone_type,
                        found: page.zone_type(),
                    });
                }
                if page.nid() != self.node_id {
                    return Err(CheckFailure::WrongNode {
                        pfn,
                        expected: self.node_id,
                        found: page.nid(),
                    });
                }
                result.pages_checked += 1;
            }
            result.zones_checked += 1;
        }
        Ok(result)
    }
}

/// True when `[base, end)` is covered by the union of the sorted `regions`.
fn covered(regions: &[Region], base: PhysAddr, end: PhysAddr) -> bool {
    let mut cur = base;
    for r in regions {
        if cur >= end {
            break;
        }
        let r_end = r.base.saturating_add(r.size);
        if r.base <= cur && r_end > cur {
            cur = r_end;
        }
    }
    cur >= end
}

/// What [`PgData::check_boot_state`] verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeCheck {
    /// The node.
    pub node_id: usize,
    /// Zones with spanned pages whose pages were checked.
    pub zones_checked: usize,
    /// Page descriptors checked (the node's spanned pages).
    pub pages_checked: u64,
    /// Sum of the zones' spanned pages (= the node's).
    pub spanned_pages: u64,
    /// Sum of the zones' present pages (= the node's).
    pub present_pages: u64,
    /// Physical address of the `mem_map`.
    pub mem_map_phys: PhysAddr,
    /// Size of the `mem_map` allocation in bytes.
    pub mem_map_bytes: u64,
}

/// Why [`PgData::check_boot_state`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFailure {
    /// The zones' spanned pages do not add up to the node's.
    SpannedMismatch {
        /// Sum over the zones.
        zones: u64,
        /// The node's.
        node: u64,
    },
    /// The zones' present pages do not add up to the node's.
    PresentMismatch {
        /// Sum over the zones.
        zones: u64,
        /// The node's.
        node: u64,
    },
    /// A non-empty node has no `mem_map`.
    NoMemMap,
    /// The `mem_map` allocation is not inside `memblock.memory`.
    MemMapNotInMemory {
        /// Base of the allocation.
        base: PhysAddr,
        /// Size in bytes.
        size: u64,
    },
    /// The `mem_map` allocation is not inside `memblock.reserved`.
    MemMapNotReserved {
        /// Base of the allocation.
        base: PhysAddr,
        /// Size in bytes.
        size: u64,
    },
    /// A zone pfn has no descriptor.
    PfnOutsideMemMap {
        /// The pfn.
        pfn: Pfn,
    },
    /// A page is not `PG_reserved`.
    PageNotReserved {
        /// The pfn.
        pfn: Pfn,
    },
    /// A page's reference count is not 1.
    BadRefcount {
        /// The pfn.
        pfn: Pfn,
        /// Its reference count.
        refcount: i32,
    },
    /// A page is linked to the wrong zone.
    WrongZone {
        /// The pfn.
        pfn: Pfn,
        /// The zone spanning it.
        expected: ZoneType,
        /// The zone in its descriptor.
        found: ZoneType,
    },
    /// A page is linked to the wrong node.
    WrongNode {
        /// The pfn.
        pfn: Pfn,
        /// The node.
        expected: usize,
        /// The node in its descriptor.
        found: usize,
    },
}

impl core::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CheckFailure::SpannedMismatch { zones, node } => {
                write!(f, "zones span {zones} pages but the node spans {node}")
            }
            CheckFailure::PresentMismatch { zones, node } => write!(
                f,
                "zones have {zones} present pages but the node has {node}"
            ),
            CheckFailure::NoMemMap => write!(f, "non-empty node has no mem_map"),
            CheckFailure::MemMapNotInMemory { base, size } => {
                write!(f, "mem_map {base:#x}+{size:#x} is not in memblock.memory")
            }
            CheckFailure::MemMapNotReserved { base, size } => {
                write!(f, "mem_map {base:#x}+{size:#x} is not in memblock.reserved")
            }
            CheckFailure::PfnOutsideMemMap { pfn } => {
                write!(f, "pfn {pfn:#x} has no page descriptor")
            }
            CheckFailure::PageNotReserved { pfn } => write!(f, "pfn {pfn:#x} is not reserved"),
            CheckFailure::BadRefcount { pfn, refcount } => {
                write!(f, "pfn {pfn:#x} has refcount {refcount}, expected 1")
            }
            CheckFailure::WrongZone {
                pfn,
                expected,
                found,
            } => write!(
                f,
                "pfn {pfn:#x} is linked to zone {}, expected {}",
                found.name(),
                expected.name()
            ),
            CheckFailure::WrongNode {
                pfn,
                expected,
                found,
            } => write!(
                f,
                "pfn {pfn:#x} is linked to node {found}, expected {expected}"
            ),
        }
    }
}
