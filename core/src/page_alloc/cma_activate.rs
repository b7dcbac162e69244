//! Activating the CMA areas when the allocator takes over the node (Linux
//! `mm/cma.c`: `cma_init_reserved_areas` / `cma_activate_area`, `mm/page_alloc.c`:
//! `init_cma_reserved_pageblock`).
//!
//! An area reserved in memblock at boot becomes MIGRATE_CMA pageblocks on the free
//! lists of its zone, after checks a caller-supplied area needs before its pages
//! are touched; an area that fails them is left as it was and reported.

use super::{zone_view, PageAllocator, CMA};
use crate::addr::{pfn_down, Pfn, PAGE_SIZE};
use crate::cma::CmaArea;
use crate::storage::PageStorage;

/// Why a CMA area could not be activated (`cma_activate_area`'s checks, and the
/// ones a caller-supplied area needs before its pages are touched).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmaActivateError {
    /// The area is empty, or its base or size is not a whole number of pageblocks.
    Misaligned,
    /// The area reaches past the end of the address space.
    Overflow,
    /// Some page of the area lies outside every zone, or the area spans two zones.
    NotInOneZone,
    /// Some page of the area is not a reserved page (free already, in use, or part
    /// of another area): handing it to the buddy would corrupt the free lists.
    NotReserved(Pfn),
}

impl core::fmt::Display for CmaActivateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CmaActivateError::Misaligned => write!(f, "not a whole number of pageblocks"),
            CmaActivateError::Overflow => write!(f, "reaches past the address space"),
            CmaActivateError::NotInOneZone => write!(f, "not within one zone"),
            CmaActivateError::NotReserved(pfn) => write!(f, "pfn {pfn:#x} is not reserved"),
        }
    }
}

impl<S: PageStorage, const NCPU: usize> PageAllocator<S, NCPU> {
    /// The CMA areas of [`AllocConfig::cma`](super::AllocConfig::cma) that
    /// [`PageAllocator::new`] refused, and why; their pages were left untouched.
    pub fn cma_failures(&self) -> &[(CmaArea, CmaActivateError)] {
        &self.cma_failures
    }

    /// Whether `area` can become MIGRATE_CMA: whole pageblocks, inside one zone, and
    /// every page still reserved (so no page is on a free list or in use). Returns the
    /// zone index.
    pub fn check_cma_area(&self, area: &CmaArea) -> Result<usize, CmaActivateError> {
        let base = pfn_down(area.base);
        let pages = area.size / PAGE_SIZE;
        let end = area
            .base
            .checked_add(area.size)
            .ok_or(CmaActivateError::Overflow)?;
        let zone = self
            .zone_index(base)
            .ok_or(CmaActivateError::NotInOneZone)?;
        let nr = 1u64 << self.node.zones[zone].pageblock_order;
        let whole = |x: u64, unit: u64| x.is_multiple_of(unit);
        if pages == 0
            || !whole(area.base, PAGE_SIZE)
            || !whole(area.size, PAGE_SIZE)
            || !whole(base, nr)
            || !whole(pages, nr)
        {
            return Err(CmaActivateError::Misaligned);
        }
        if !self.node.zones[zone].contains_pfn(pfn_down(end) - 1) {
            return Err(CmaActivateError::NotInOneZone);
        }
        for pfn in base..base + pages {
            let page = self
                .node
                .pfn_to_page(pfn)
                .ok_or(CmaActivateError::NotInOneZone)?;
            if !page.is_reserved() || page.is_buddy() || page.is_pcp() {
                return Err(CmaActivateError::NotReserved(pfn));
            }
        }
        Ok(zone)
    }

    /// `init_cma_reserved_pageblock` for every pageblock of an area that passed
    /// [`PageAllocator::check_cma_area`].
    pub(super) fn init_cma_reserved_area(&mut self, zi: usize, area: &CmaArea) {
        let base = pfn_down(area.base);
        let pages = area.size / PAGE_SIZE;
        let pb_order = self.node.zones[zi].pageblock_order;
        let nr = 1u64 << pb_order;
        let mut c = self.zones[zi].counters;
        let mut freed = 0;
        if let Some(mut v) = zone_view(&mut self.node, zi, self.routes.block_view(zi)) {
            let mut pfn = base;
            while pfn < base + pages {
                v.set_pageblock_mt(pfn, CMA);
                for p in pfn..pfn + nr {
                    let page = v.page(p);
                    page.clear_reserved();
                    page.set_refcount(0);
                }
                let max = v.nr_orders - 1;
                let order = pb_order.min(max);
                let mut p = pfn;
                while p < pfn + nr {
                    v.free_one_page(p, order, CMA, false, &mut c);
                    p += 1 << order;
                }
                freed += nr;
                pfn += nr;
            }
        }
        self.zones[zi].counters = c;
        self.zones[zi].cma_pages += freed;
        self.node.zones[zi].managed_pages += freed;
    }
}
