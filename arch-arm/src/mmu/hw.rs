//! The CP15 side of the MMU switch (target only).
//!
//! [`enable_mmu`] follows the ARM ARM order (B3.10, "Enabling the MMU"): invalidate
//! the TLBs (TLBIALL), the instruction cache and branch predictor, program DACR,
//! TTBCR and TTBR0, DSB + ISB, then set SCTLR.M (and optionally C, I, Z) and ISB.
//! The register values come from [`super::regs`], where the host tests check them.
//!
//! Cache maintenance: the tables are written with the data cache off (it is off from
//! reset until this switch), so they are in memory when the walker reads them. A
//! caller that writes tables with the D-cache on must clean them to the point of
//! coherency first (DCCMVAC); QEMU does not model caches, real hardware does.
//!
//! Linux counterpart: `__v7_setup` (`arch/arm/mm/proc-v7.S`) and `__enable_mmu`/`__turn_mmu_on` (`arch/arm/kernel/head.S`).

use super::hooks::MappingHooks;
use super::regs::{
    sctlr_mmu_on, ttbr0_value, FaultStatus, DACR_DOMAIN0_CLIENT, TTBCR_SHORT_TTBR0_ONLY,
};
use super::table::{PageTable, TableAllocator, TableMemory};
use super::MmuError;
use core::arch::asm;
use zonekit_core::PhysAddr;

/// `DSB SY`.
#[inline(always)]
pub fn dsb() {
    // SAFETY: a barrier has no effect on memory safety.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) }
}

/// `ISB SY`.
#[inline(always)]
pub fn isb() {
    // SAFETY: a barrier has no effect on memory safety.
    unsafe { asm!("isb sy", options(nostack, preserves_flags)) }
}

/// Read SCTLR.
#[inline]
pub fn read_sctlr() -> u32 {
    let v: u32;
    // SAFETY: reading SCTLR has no side effects.
    unsafe {
        asm!("mrc p15, 0, {}, c1, c0, 0", out(reg) v, options(nomem, nostack, preserves_flags))
    }
    v
}

/// True when SCTLR.M is set.
pub fn mmu_enabled() -> bool {
    read_sctlr() & super::regs::SCTLR_M != 0
}

/// Read DFAR (the faulting data address).
#[inline]
pub fn read_dfar() -> u32 {
    let v: u32;
    // SAFETY: reading DFAR has no side effects.
    unsafe {
        asm!("mrc p15, 0, {}, c6, c0, 0", out(reg) v, options(nomem, nostack, preserves_flags))
    }
    v
}

/// Read DFSR (the data fault status).
#[inline]
pub fn read_dfsr() -> u32 {
    let v: u32;
    // SAFETY: reading DFSR has no side effects.
    unsafe {
        asm!("mrc p15, 0, {}, c5, c0, 0", out(reg) v, options(nomem, nostack, preserves_flags))
    }
    v
}

/// Read IFAR (the faulting instruction address).
#[inline]
pub fn read_ifar() -> u32 {
    let v: u32;
    // SAFETY: reading IFAR has no side effects.
    unsafe {
        asm!("mrc p15, 0, {}, c6, c0, 2", out(reg) v, options(nomem, nostack, preserves_flags))
    }
    v
}

/// Read IFSR (the prefetch fault status).
#[inline]
pub fn read_ifsr() -> u32 {
    let v: u32;
    // SAFETY: reading IFSR has no side effects.
    unsafe {
        asm!("mrc p15, 0, {}, c5, c0, 1", out(reg) v, options(nomem, nostack, preserves_flags))
    }
    v
}

/// The last data abort: (DFAR, decoded DFSR).
pub fn data_abort() -> (u32, FaultStatus) {
    (read_dfar(), FaultStatus::from_dfsr(read_dfsr()))
}

/// Invalidate the unified TLB entry for `va` (TLBIMVA, ASID 0; global entries are
/// invalidated whatever their ASID), then DSB + ISB.
pub fn tlb_invalidate_page(va: u32) {
    let mva = va & !0xFFF;
    // SAFETY: TLB maintenance only drops cached translations; it cannot make any
    // memory access unsafe (the next access walks the tables again).
    unsafe { asm!("mcr p15, 0, {}, c8, c7, 1", in(reg) mva, options(nostack, preserves_flags)) }
    dsb();
    isb();
}

/// Invalidate the whole unified TLB (TLBIALL), then DSB + ISB.
pub fn tlb_invalidate_all() {
    // SAFETY: as in `tlb_invalidate_page`.
    unsafe { asm!("mcr p15, 0, {}, c8, c7, 0", in(reg) 0u32, options(nostack, preserves_flags)) }
    dsb();
    isb();
}

/// Carry out a [`super::TlbFlush`].
pub fn tlb_flush(f: super::TlbFlush) {
    match f {
        super::TlbFlush::None => {}
        super::TlbFlush::Page(va) => tlb_invalidate_page(va),
        super::TlbFlush::Range { start, end } => {
            let pages = (end.saturating_sub(start as u64)) / 4096;
            if pages > 64 {
                tlb_invalidate_all();
            } else {
                for i in 0..pages {
                    tlb_invalidate_page(start.wrapping_add((i * 4096) as u32));
                }
            }
        }
    }
}

/// Install the first-level table at `l1_phys` and switch the MMU on.
///
/// # Safety
///
/// `l1_phys` must be a complete, 16 KiB-aligned first-level table (with its
/// second-level tables) that maps, at their current addresses and as normal
/// executable/writable memory, the code executing this function, its stack, and
/// everything accessed until the caller switches to other addresses: after the
/// final ISB every access is translated. The MMU must currently be off and the
/// tables must be visible to the walker (see the module note on caches).
pub unsafe fn install_and_enable(l1_phys: u32, caches: bool) {
    // SAFETY: (whole block) the caller guarantees the tables and the identity map;
    // each CP15 write below is the architected step of the ARM ARM sequence, and the
    // barriers order them. With the MMU off, none of these writes changes how the
    // instructions between them are fetched or how memory is addressed until SCTLR.M.
    unsafe {
        // TLBIALL, ICIALLU, BPIALL.
        asm!(
            "mcr p15, 0, {z}, c8, c7, 0",
            "mcr p15, 0, {z}, c7, c5, 0",
            "mcr p15, 0, {z}, c7, c5, 6",
            z = in(reg) 0u32,
            options(nostack, preserves_flags)
        );
        // DACR, TTBCR, TTBR0.
        asm!("mcr p15, 0, {}, c3, c0, 0", in(reg) DACR_DOMAIN0_CLIENT, options(nostack, preserves_flags));
        asm!("mcr p15, 0, {}, c2, c0, 2", in(reg) TTBCR_SHORT_TTBR0_ONLY, options(nostack, preserves_flags));
        asm!("mcr p15, 0, {}, c2, c0, 0", in(reg) ttbr0_value(l1_phys), options(nostack, preserves_flags));
        asm!("dsb sy", "isb sy", options(nostack, preserves_flags));
        let sctlr = sctlr_mmu_on(read_sctlr(), caches);
        asm!(
            "mcr p15, 0, {}, c1, c0, 0",
            "isb sy",
            in(reg) sctlr,
            options(nostack, preserves_flags)
        );
    }
}

/// Switch the MMU on with `pt`: `hooks.before_mmu_on`, [`install_and_enable`],
/// `hooks.after_mmu_on`.
///
/// # Safety
///
/// As [`install_and_enable`]: `pt` must identity-map the running code, its stack
/// and the table memory as the allocator reaches it (or the allocator must be
/// switched to the linear map in `after_mmu_on` before the table is touched), and
/// every address the caller and the hooks use after the switch.
pub unsafe fn enable_mmu<A: TableAllocator, H: MappingHooks<A>>(
    pt: &mut PageTable<A>,
    hooks: &mut H,
    caches: bool,
) -> Result<(), MmuError> {
    hooks.before_mmu_on(pt)?;
    dsb();
    // SAFETY: forwarded to the caller (see above).
    unsafe { install_and_enable(pt.l1_phys(), caches) };
    hooks.after_mmu_on(pt)
}

/// Table memory reached by pointer: physical address + `virt_offset` (0 with the
/// MMU off, `PAGE_OFFSET - PHYS_OFFSET` through the linear map).
#[derive(Debug)]
pub struct DirectTableMemory {
    virt_offset: u32,
    lo: PhysAddr,
    hi: PhysAddr,
}

impl DirectTableMemory {
    /// Table memory for physical `[lo, hi)`.
    ///
    /// # Safety
    ///
    /// Every address in `[lo, hi)` + `virt_offset` must be mapped (or the MMU off),
    /// readable and writable, and used by nothing but this object's users for as
    /// long as it lives: the page-table builder writes through it.
    pub const unsafe fn new(lo: PhysAddr, hi: PhysAddr, virt_offset: u32) -> Self {
        Self {
            virt_offset,
            lo,
            hi,
        }
    }

    /// Switch to another view of the same memory (e.g. the linear map).
    ///
    /// # Safety
    ///
    /// As [`Self::new`] for the new offset.
    pub unsafe fn set_virt_offset(&mut self, virt_offset: u32) {
        self.virt_offset = virt_offset;
    }

    fn ptr(&self, phys: PhysAddr, count: usize) -> Option<*mut u32> {
        let end = phys.checked_add((count as u64).checked_mul(4)?)?;
        if phys < self.lo || end > self.hi || phys & 3 != 0 {
            return None;
        }
        Some((phys as u32).wrapping_add(self.virt_offset) as *mut u32)
    }
}

impl TableMemory for DirectTableMemory {
    fn words(&self, phys: PhysAddr, count: usize) -> Option<&[u32]> {
        let p = self.ptr(phys, count)?;
        // SAFETY: `new`'s contract: the range is mapped, aligned (checked) and owned
        // by this object; the shared borrow of `self` excludes `words_mut`.
        Some(unsafe { core::slice::from_raw_parts(p, count) })
    }

    fn words_mut(&mut self, phys: PhysAddr, count: usize) -> Option<&mut [u32]> {
        let p = self.ptr(phys, count)?;
        // SAFETY: as in `words`; the exclusive borrow of `self` makes this the only
        // live view.
        Some(unsafe { core::slice::from_raw_parts_mut(p, count) })
    }
}
