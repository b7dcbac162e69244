//! The translation-table builder: a 16 KiB first-level table plus the second-level
//! tables it needs, in memory handed out by a [`TableAllocator`].
//!
//! The builder works in physical addresses only. Table memory is reached through
//! [`TableMemory`], so the same code runs over a slice on the host
//! ([`SliceTableAllocator`]), over RAM identity-mapped with the MMU off, or through
//! the linear map once it is on (the target-only implementation in `hw.rs`).
//!
//! Second-level tables (1 KiB, 256 entries) are carved four at a time out of 4 KiB,
//! 4 KiB-aligned allocations ([`L2_CHUNK_SIZE`]), so the backing allocator only ever
//! sees page-sized requests (memblock, the buddy allocator). Second-level tables are
//! never freed: [`PageTable::unmap`] leaves an empty table installed, as Linux keeps
//! its PTE tables.
//!
//! Linux counterpart: `create_mapping` → `alloc_init_pmd`/`alloc_init_pte`/`early_pte_alloc` (`arch/arm/mm/mmu.c`).

use super::desc::{Access, Attrs, L1Entry, L1Kind, L2Entry, L2Kind, MemType};
use super::plan::{MappingKind, MappingRequest};
pub use super::table_memory::{AllocFn, SliceTableAllocator, TableAllocator, TableMemory};
use super::MmuError;
use zonekit_core::PhysAddr;

/// Entries in the first-level table.
pub const L1_ENTRIES: usize = 4096;
/// Bytes (and alignment) of the first-level table.
pub const L1_TABLE_SIZE: usize = 16 * 1024;
/// Entries in a second-level table.
pub const L2_ENTRIES: usize = 256;
/// Bytes (and alignment) of a second-level table.
pub const L2_TABLE_SIZE: usize = 1024;
/// Bytes (and alignment) of one allocation for second-level tables (four tables).
pub const L2_CHUNK_SIZE: usize = 4096;
/// A section: what one first-level entry maps.
pub const SECTION_SIZE: u32 = 1 << 20;
/// A small page: what one second-level entry maps.
pub const SMALL_PAGE_SIZE: u32 = 4096;

const SECTION: u64 = SECTION_SIZE as u64;
const SMALL: u64 = SMALL_PAGE_SIZE as u64;
const VA_END: u64 = 1 << 32;

/// The descriptor that maps an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeafKind {
    /// A 1 MiB section.
    Section,
    /// A 16 MiB supersection.
    Supersection,
    /// A 64 KiB large page.
    LargePage,
    /// A 4 KiB small page.
    SmallPage,
}

/// The result of [`PageTable::walk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address of the byte.
    pub phys: u64,
    /// The memory type, if it is one zonekit writes.
    pub mem: Option<MemType>,
    /// The access permissions, if one of [`Access`].
    pub access: Option<Access>,
    /// Executable (XN clear).
    pub exec: bool,
    /// Which descriptor maps it.
    pub kind: LeafKind,
    /// All attribute bits.
    pub attrs: Attrs,
}

/// A maximal run of virtually and physically contiguous memory with identical
/// attributes, as yielded by [`PageTable::mappings`]. Sections and pages are merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First virtual address.
    pub virt: u32,
    /// First physical address.
    pub phys: u64,
    /// Length in bytes (up to 4 GiB).
    pub size: u64,
    /// Attribute bits.
    pub attrs: Attrs,
}

impl Mapping {
    /// The memory type.
    pub fn mem(&self) -> Option<MemType> {
        self.attrs.mem_type()
    }

    /// The access permissions.
    pub fn access(&self) -> Option<Access> {
        self.attrs.access()
    }

    /// Executable (XN clear).
    pub fn exec(&self) -> bool {
        self.attrs.exec()
    }

    /// One past the last virtual address (as u64: a run may end at 4 GiB).
    pub fn virt_end(&self) -> u64 {
        self.virt as u64 + self.size
    }
}

/// Which TLB maintenance a change needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlbFlush {
    /// Nothing was removed.
    None,
    /// One page (`TLBIMVA va`).
    Page(u32),
    /// A virtual range `[start, end)`; `end` may be 4 GiB.
    Range {
        /// First virtual address.
        start: u32,
        /// One past the last virtual address.
        end: u64,
    },
}

/// What [`PageTable::unmap`] removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// Small pages cleared.
    pub small_pages: u32,
    /// Large-page entries cleared (16 per large page).
    pub large_page_entries: u32,
    /// Section entries cleared (including the 16 entries of each supersection).
    pub sections: u32,
    /// Bytes no longer mapped.
    pub bytes: u64,
    /// The TLB maintenance the caller must do.
    pub flush: TlbFlush,
}

/// Validate a `[virt, virt+size)` page-granular request; returns the end as u64.
fn check_virt(virt: u32, size: u32) -> Result<u64, MmuError> {
    if size == 0 {
        return Err(MmuError::ZeroSize);
    }
    if !aligned(virt as u64, SMALL) || !aligned(size as u64, SMALL) {
        return Err(MmuError::Misaligned {
            virt,
            phys: 0,
            size,
        });
    }
    let end = virt as u64 + size as u64;
    if end > VA_END {
        return Err(MmuError::WrapAround { virt, size });
    }
    Ok(end)
}

/// `x` is a multiple of the power of two `a`.
fn aligned(x: u64, a: u64) -> bool {
    x & (a - 1) == 0
}

fn next_section(va: u64) -> u64 {
    (va & !(SECTION - 1)) + SECTION
}

/// A short-descriptor translation table under construction (or live, once installed).
pub struct PageTable<A: TableAllocator> {
    alloc: A,
    l1: u32,
    chunk_next: u32,
    chunk_left: u32,
    l2_tables: usize,
}

impl<A: TableAllocator> core::fmt::Debug for PageTable<A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PageTable")
            .field("l1", &format_args!("{:#010x}", self.l1))
            .field("l2_tables", &self.l2_tables)
            .finish()
    }
}

impl<A: TableAllocator> PageTable<A> {
    /// Allocate and zero the 16 KiB first-level table (16 KiB aligned, below 4 GiB).
    pub fn new(mut alloc: A) -> Result<Self, MmuError> {
        let phys = alloc.alloc_table(L1_TABLE_SIZE, L1_TABLE_SIZE)?;
        let l1 = table_base(phys, L1_TABLE_SIZE)?;
        alloc
            .words_mut(phys, L1_ENTRIES)
            .ok_or(MmuError::TableUnreachable { phys })?
            .fill(0);
        Ok(Self {
            alloc,
            l1,
            chunk_next: 0,
            chunk_left: 0,
            l2_tables: 0,
        })
    }

    /// Physical address of the first-level table (for TTBR0).
    pub fn l1_phys(&self) -> u32 {
        self.l1
    }

    /// Number of second-level tables allocated.
    pub fn l2_table_count(&self) -> usize {
        self.l2_tables
    }

    /// The allocator.
    pub fn allocator(&self) -> &A {
        &self.alloc
    }

    /// Mutable access to the allocator (e.g. to switch its view to the linear map
    /// once the MMU is on).
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.alloc
    }

    /// Give the allocator back.
    pub fn into_allocator(self) -> A {
        self.alloc
    }

    /// The same tables with another allocator, e.g. once memblock is retired and
    /// later tables come from the buddy allocator. `f` gets the old allocator and
    /// must return one that reaches the same table memory.
    pub fn map_allocator<B: TableAllocator>(self, f: impl FnOnce(A) -> B) -> PageTable<B> {
        PageTable {
            alloc: f(self.alloc),
            l1: self.l1,
            chunk_next: self.chunk_next,
            chunk_left: self.chunk_left,
            l2_tables: self.l2_tables,
        }
    }

    fn l1_words(&self) -> Result<&[u32], MmuError> {
        self.alloc
            .words(self.l1 as u64, L1_ENTRIES)
            .ok_or(MmuError::TableUnreachable {
                phys: self.l1 as u64,
            })
    }

    fn l1_get(&self, idx: usize) -> Result<L1Entry, MmuError> {
        let w = self.l1_words()?;
        Ok(L1Entry::from_bits(w.get(idx).copied().unwrap_or(0)))
    }

    fn l1_set(&mut self, idx: usize, e: L1Entry) -> Result<(), MmuError> {
        let phys = self.l1 as u64;
        let w = self
            .alloc
            .words_mut(phys, L1_ENTRIES)
            .ok_or(MmuError::TableUnreachable { phys })?;
        if let Some(slot) = w.get_mut(idx) {
            *slot = e.bits();
        }
        Ok(())
    }

    fn l2_words(&self, base: u32) -> Result<&[u32], MmuError> {
        self.alloc
            .words(base as u64, L2_ENTRIES)
            .ok_or(MmuError::TableUnreachable { phys: base as u64 })
    }

    fn l2_get(&self, base: u32, idx: usize) -> Result<L2Entry, MmuError> {
        let w = self.l2_words(base)?;
        Ok(L2Entry::from_bits(w.get(idx).copied().unwrap_or(0)))
    }

    fn l2_set(&mut self, base: u32, idx: usize, e: L2Entry) -> Result<(), MmuError> {
        let w = self
            .alloc
            .words_mut(base as u64, L2_ENTRIES)
            .ok_or(MmuError::TableUnreachable { phys: base as u64 })?;
        if let Some(slot) = w.get_mut(idx) {
            *slot = e.bits();
        }
        Ok(())
    }

    fn alloc_l2(&mut self) -> Result<u32, MmuError> {
        if self.chunk_left == 0 {
            let phys = self.alloc.alloc_table(L2_CHUNK_SIZE, L2_CHUNK_SIZE)?;
            let base = table_base(phys, L2_CHUNK_SIZE)?;
            self.alloc
                .words_mut(phys, L2_CHUNK_SIZE / 4)
                .ok_or(MmuError::TableUnreachable { phys })?
                .fill(0);
            self.chunk_next = base;
            self.chunk_left = (L2_CHUNK_SIZE / L2_TABLE_SIZE) as u32;
        }
        let t = self.chunk_next;
        self.chunk_next = self.chunk_next.wrapping_add(L2_TABLE_SIZE as u32);
        self.chunk_left -= 1;
        self.l2_tables += 1;
        Ok(t)
    }

    /// The second-level table for L1 slot `idx`, allocated and installed if the
    /// slot is a fault; a section there is an overlap.
    fn ensure_l2(&mut self, idx: usize) -> Result<u32, MmuError> {
        match self.l1_get(idx)?.decode() {
            L1Kind::PageTable { base, .. } => Ok(base),
            L1Kind::Fault => {
                let base = self.alloc_l2()?;
                self.l1_set(idx, L1Entry::page_table(base, 0))?;
                Ok(base)
            }
            L1Kind::Section { .. } | L1Kind::Supersection { .. } => Err(MmuError::Overlap {
                virt: (idx as u32) << 20,
            }),
        }
    }

    /// The first-level entry covering `virt`.
    pub fn l1_entry(&self, virt: u32) -> L1Entry {
        self.l1_get((virt >> 20) as usize).unwrap_or(L1Entry::FAULT)
    }

    /// The second-level entry covering `virt`, if its first-level entry points to a
    /// second-level table.
    pub fn l2_entry(&self, virt: u32) -> Option<L2Entry> {
        match self.l1_entry(virt).decode() {
            L1Kind::PageTable { base, .. } => {
                self.l2_get(base, ((virt >> 12) & 0xFF) as usize).ok()
            }
            _ => None,
        }
    }

    /// Physical address of the second-level entry for `virt`, where a second-level
    /// table covers it (what cache maintenance after [`Self::set_l2_entry`] cleans).
    pub fn l2_entry_phys(&self, virt: u32) -> Option<PhysAddr> {
        match self.l1_entry(virt).decode() {
            L1Kind::PageTable { base, .. } => {
                Some(u64::from(base) + 4 * u64::from((virt >> 12) & 0xFF))
            }
            _ => None,
        }
    }

    /// Replace the second-level entry for `virt` (which must be covered by a
    /// second-level table already, e.g. one from [`Self::prealloc_l2`]); returns
    /// the old entry. The caller does the TLB maintenance.
    pub fn set_l2_entry(&mut self, virt: u32, entry: L2Entry) -> Result<L2Entry, MmuError> {
        match self.l1_entry(virt).decode() {
            L1Kind::PageTable { base, .. } => {
                let idx = ((virt >> 12) & 0xFF) as usize;
                let old = self.l2_get(base, idx)?;
                self.l2_set(base, idx, entry)?;
                Ok(old)
            }
            _ => Err(MmuError::NoL2Table { virt }),
        }
    }

    /// Install (fault-filled) second-level tables for every MiB of
    /// `[virt, virt+size)` (Linux's `kmap_init` / `early_pte_alloc`). Existing
    /// second-level tables are kept; a section in the range is an overlap.
    pub fn prealloc_l2(&mut self, virt: u32, size: u32) -> Result<(), MmuError> {
        let end = check_virt(virt, size)?;
        let mut va = virt as u64;
        while va < end {
            self.ensure_l2((va >> 20) as usize)?;
            va = next_section(va);
        }
        Ok(())
    }

    /// The first mapped address in `[start, end)`, if any.
    fn first_mapped(&self, start: u64, end: u64) -> Result<Option<u32>, MmuError> {
        let mut va = start;
        while va < end {
            let idx = (va >> 20) as usize;
            let stop = next_section(va).min(end);
            match self.l1_get(idx)?.decode() {
                L1Kind::Fault => {}
                L1Kind::Section { .. } | L1Kind::Supersection { .. } => return Ok(Some(va as u32)),
                L1Kind::PageTable { base, .. } => {
                    let t = self.l2_words(base)?;
                    let mut p = va;
                    while p < stop {
                        let e = t.get(((p >> 12) & 0xFF) as usize).copied().unwrap_or(0);
                        if !L2Entry::from_bits(e).is_fault() {
                            return Ok(Some(p as u32));
                        }
                        p += SMALL;
                    }
                }
            }
            va = stop;
        }
        Ok(None)
    }

    /// Map `[virt, virt+size)` to `[phys, phys+size)`: 1 MiB sections wherever
    /// virt, phys and the remaining size are 1 MiB aligned and the first-level slot
    /// is empty, 4 KiB small pages otherwise (also inside MiBs that already have a
    /// second-level table). Nothing is changed on error: the whole range is checked
    /// for overlaps first, and a failed table allocation undoes what was mapped.
    pub fn create_mapping(
        &mut self,
        virt: u32,
        phys: u64,
        size: u32,
        mem: MemType,
        access: Access,
        exec: bool,
    ) -> Result<(), MmuError> {
        if size == 0 {
            return Err(MmuError::ZeroSize);
        }
        if !aligned(virt as u64, SMALL) || !aligned(phys, SMALL) || !aligned(size as u64, SMALL) {
            return Err(MmuError::Misaligned { virt, phys, size });
        }
        let end = check_virt(virt, size)?;
        match phys.checked_add(size as u64) {
            Some(pend) if pend <= VA_END => {}
            _ => return Err(MmuError::PhysTooHigh { phys }),
        }
        if let Some(v) = self.first_mapped(virt as u64, end)? {
            return Err(MmuError::Overlap { virt: v });
        }
        let attrs = Attrs::new(mem, access, exec);
        let mut va = virt as u64;
        let mut pa = phys;
        while va < end {
            match self.map_step(va, pa, end, &attrs) {
                Ok(next) => {
                    pa += next - va;
                    va = next;
                }
                Err(e) => {
                    if va > virt as u64 {
                        // Only what this call mapped is in [virt, va): undo it.
                        let _ = self.unmap(virt, (va - virt as u64) as u32);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Map from `va` up to the end of its MiB (or `end`); returns where it stopped.
    fn map_step(&mut self, va: u64, pa: u64, end: u64, attrs: &Attrs) -> Result<u64, MmuError> {
        let idx = (va >> 20) as usize;
        let whole = aligned(va, SECTION) && aligned(pa, SECTION) && end - va >= SECTION;
        if whole && self.l1_get(idx)?.is_fault() {
            self.l1_set(idx, L1Entry::section_with(pa as u32, attrs))?;
            return Ok(va + SECTION);
        }
        let base = self.ensure_l2(idx)?;
        let stop = next_section(va).min(end);
        let phys = base as u64;
        let t = self
            .alloc
            .words_mut(phys, L2_ENTRIES)
            .ok_or(MmuError::TableUnreachable { phys })?;
        let mut v = va;
        let mut p = pa;
        while v < stop {
            if let Some(slot) = t.get_mut(((v >> 12) & 0xFF) as usize) {
                *slot = L2Entry::small_page_with(p as u32, attrs).bits();
            }
            v += SMALL;
            p += SMALL;
        }
        Ok(stop)
    }

    /// Apply one request of a [`super::plan_kernel_mappings`] plan.
    pub fn apply(&mut self, req: &MappingRequest) -> Result<(), MmuError> {
        match req.kind {
            MappingKind::Pkmap => self.prealloc_l2(req.virt, req.size),
            _ => self.create_mapping(req.virt, req.phys, req.size, req.mem, req.access, req.exec),
        }
    }

    /// Remove every mapping in `[virt, virt+size)` (holes are fine). Sections,
    /// supersections and large pages must be covered whole, otherwise nothing is
    /// changed and [`MmuError::SplitSection`] names the first one cut. Second-level
    /// tables stay installed. Returns what was removed and the TLB flush it needs.
    pub fn unmap(&mut self, virt: u32, size: u32) -> Result<Unmapped, MmuError> {
        let end = check_virt(virt, size)?;
        let start = virt as u64;
        // Pass 1: refuse to split a block.
        let mut va = start;
        while va < end {
            let idx = (va >> 20) as usize;
            let stop = next_section(va).min(end);
            match self.l1_get(idx)?.decode() {
                L1Kind::Fault => {}
                L1Kind::Section { .. } => {
                    if !aligned(va, SECTION) || stop - va < SECTION {
                        return Err(MmuError::SplitSection {
                            virt: (va & !(SECTION - 1)) as u32,
                        });
                    }
                }
                L1Kind::Supersection { .. } => {
                    let s = va & !(16 * SECTION - 1);
                    if s < start || s + 16 * SECTION > end {
                        return Err(MmuError::SplitSection { virt: s as u32 });
                    }
                }
                L1Kind::PageTable { base, .. } => {
                    let t = self.l2_words(base)?;
                    let mut p = va;
                    while p < stop {
                        let e = t.get(((p >> 12) & 0xFF) as usize).copied().unwrap_or(0);
                        if let L2Kind::LargePage { .. } = L2Entry::from_bits(e).decode() {
                            let s = p & !0xFFFF;
                            if s < start || s + 0x10000 > end {
                                return Err(MmuError::SplitSection { virt: s as u32 });
                            }
                        }
                        p += SMALL;
                    }
                }
            }
            va = stop;
        }
        // Pass 2: clear.
        let mut out = Unmapped {
            small_pages: 0,
            large_page_entries: 0,
            sections: 0,
            bytes: 0,
            flush: TlbFlush::None,
        };
        let mut lo = u64::MAX;
        let mut hi = 0u64;
        let mut va = start;
        while va < end {
            let idx = (va >> 20) as usize;
            let stop = next_section(va).min(end);
            match self.l1_get(idx)?.decode() {
                L1Kind::Fault => {}
                L1Kind::Section { .. } | L1Kind::Supersection { .. } => {
                    self.l1_set(idx, L1Entry::FAULT)?;
                    out.sections += 1;
                    out.bytes += SECTION;
                    lo = lo.min(va);
                    hi = hi.max(stop);
                }
                L1Kind::PageTable { base, .. } => {
                    let phys = base as u64;
                    let t = self
                        .alloc
                        .words_mut(phys, L2_ENTRIES)
                        .ok_or(MmuError::TableUnreachable { phys })?;
                    let mut p = va;
                    while p < stop {
                        if let Some(slot) = t.get_mut(((p >> 12) & 0xFF) as usize) {
                            match L2Entry::from_bits(*slot).decode() {
                                L2Kind::Fault => {}
                                L2Kind::SmallPage { .. } => out.small_pages += 1,
                                L2Kind::LargePage { .. } => out.large_page_entries += 1,
                            }
                            if *slot & 0b11 != 0 {
                                *slot = 0;
                                out.bytes += SMALL;
                                lo = lo.min(p);
                                hi = hi.max(p + SMALL);
                            }
                        }
                        p += SMALL;
                    }
                }
            }
            va = stop;
        }
        out.flush = if out.bytes == 0 {
            TlbFlush::None
        } else if out.bytes == SMALL {
            TlbFlush::Page(lo as u32)
        } else {
            TlbFlush::Range {
                start: lo as u32,
                end: hi,
            }
        };
        Ok(out)
    }

    /// Translate `virt` the way the MMU would.
    pub fn walk(&self, virt: u32) -> Option<Translation> {
        let (phys, attrs, kind) = match self.l1_entry(virt).decode() {
            L1Kind::Fault => return None,
            L1Kind::Section { base, attrs } => (
                base as u64 + (virt & 0xF_FFFF) as u64,
                attrs,
                LeafKind::Section,
            ),
            L1Kind::Supersection { base, attrs } => (
                base + (virt & 0xFF_FFFF) as u64,
                attrs,
                LeafKind::Supersection,
            ),
            L1Kind::PageTable { .. } => match self.l2_entry(virt)?.decode() {
                L2Kind::Fault => return None,
                L2Kind::SmallPage { base, attrs } => (
                    base as u64 + (virt & 0xFFF) as u64,
                    attrs,
                    LeafKind::SmallPage,
                ),
                L2Kind::LargePage { base, attrs } => (
                    base as u64 + (virt & 0xFFFF) as u64,
                    attrs,
                    LeafKind::LargePage,
                ),
            },
        };
        Some(Translation {
            phys,
            mem: attrs.mem_type(),
            access: attrs.access(),
            exec: attrs.exec(),
            kind,
            attrs,
        })
    }

    /// The piece of the address space starting at `va` (a piece boundary): its
    /// length and, if mapped, its physical address and attributes.
    fn piece(&self, va: u64) -> (u64, Option<(u64, Attrs)>) {
        let v = va as u32;
        match self.l1_entry(v).decode() {
            L1Kind::Fault => (next_section(va) - va, None),
            L1Kind::Section { base, attrs } => (
                next_section(va) - va,
                Some((base as u64 + (v & 0xF_FFFF) as u64, attrs)),
            ),
            L1Kind::Supersection { base, attrs } => (
                next_section(va) - va,
                Some((base + (v & 0xFF_FFFF) as u64, attrs)),
            ),
            L1Kind::PageTable { .. } => {
                let len = SMALL - (va % SMALL);
                match self.l2_entry(v).map(L2Entry::decode) {
                    Some(L2Kind::SmallPage { base, attrs }) => {
                        (len, Some((base as u64 + (v & 0xFFF) as u64, attrs)))
                    }
                    Some(L2Kind::LargePage { base, attrs }) => {
                        (len, Some((base as u64 + (v & 0xFFFF) as u64, attrs)))
                    }
                    _ => (len, None),
                }
            }
        }
    }

    /// Every mapping in the table, as maximal runs (contiguous in virtual and
    /// physical space with identical attributes), in virtual address order.
    pub fn mappings(&self) -> Mappings<'_, A> {
        Mappings { pt: self, cur: 0 }
    }
}

fn table_base(phys: PhysAddr, size: usize) -> Result<u32, MmuError> {
    let ok = aligned(phys, size as u64)
        && phys
            .checked_add(size as u64)
            .is_some_and(|end| end <= VA_END);
    if ok {
        Ok(phys as u32)
    } else {
        Err(MmuError::BadTableAddress { phys })
    }
}

/// Iterator returned by [`PageTable::mappings`].
pub struct Mappings<'a, A: TableAllocator> {
    pt: &'a PageTable<A>,
    cur: u64,
}

impl<A: TableAllocator> Iterator for Mappings<'_, A> {
    type Item = Mapping;

    fn next(&mut self) -> Option<Mapping> {
        while self.cur < VA_END {
            let (len, m) = self.pt.piece(self.cur);
            let start = self.cur;
            self.cur += len;
            let Some((phys, attrs)) = m else { continue };
            let mut run = Mapping {
                virt: start as u32,
                phys,
                size: len,
                attrs,
            };
            while self.cur < VA_END {
                let (len, m) = self.pt.piece(self.cur);
                match m {
                    Some((p, a)) if p == run.phys + run.size && a == run.attrs => {
                        run.size += len;
                        self.cur += len;
                    }
                    _ => break,
                }
            }
            return Some(run);
        }
        None
    }
}
