//! The CP15 side of the MMU switch and of later table changes (target only).
//!
//! [`install_and_enable`] is Linux's `__v7_setup` + `__enable_mmu` for the
//! short-descriptor format: ACTLR.SMP (FW on A9) before the D-cache, the L1 data
//! cache invalidated by set/way (`v7_invalidate_l1`; contents are unknown after
//! reset) or, if a bootloader left it on, cleaned and invalidated to the point of
//! coherency so the tables written through it reach the walker; TLBIALL, ICIALLU,
//! BPIALL; PRRR/NMRR, DACR, TTBCR, TTBR0; DSB + ISB; then SCTLR (M, TRE, and C/I/Z
//! with the caches on) and ISB. [`install_and_enable_long`] is the same for LPAE
//! (`proc-v7-3level.S`: MAIR0/MAIR1, TTBCR.EAE, the 64-bit TTBR0). The values come
//! from [`super::regs`], where the host tests check them.
//!
//! A table word written with the MMU on ([`sync_table_write`]) is cleaned to the
//! point of coherency (DCCMVAC, Linux's `flush_pte` on UP cores; harmless where the
//! walker snoops the L1 as on SMP A9/A15) and followed by DSB + ISB; a removed entry
//! is then invalidated ([`tlb_flush`]: TLBIMVA(IS) / TLBIALL(IS), BPIALL(IS), DSB,
//! ISB; the IS forms on SMP, as Linux's `tlb_op` picks them). QEMU models neither
//! caches nor TLB maintenance side effects, real silicon needs all of it.
//!
//! Register access goes through the `aarch32-cpu` crate; the few registers it lacks
//! (TTBCR, PRRR/MAIR0, NMRR/MAIR1, the 64-bit TTBR0, TLBIMVA(IS), TLBIALLIS,
//! BPIALLIS) are declared in [`cp15`]
//! with its traits.
//!
//! Linux counterpart: `__v7_setup` (`arch/arm/mm/proc-v7.S`, `proc-v7-2level.S`), `__enable_mmu`/`__turn_mmu_on` (`arch/arm/kernel/head.S`), `cpu_v7_set_pte_ext`, `local_flush_tlb_kernel_page`.

pub mod cp15;

use super::arm_table::ArmPageTable;
use super::hooks::{MappingHooks, MappingTable};
use super::regs::{
    actlr_smp_value, sctlr_mmu_on, ttbr0_long_value, ttbr0_value, FaultStatus, DACR_DOMAIN0_CLIENT,
    MAIR0, MAIR1, NMRR, PRRR, SCTLR_C, TTBCR_LONG_TTBR0_ONLY, TTBCR_SHORT_TTBR0_ONLY,
};
use super::table::{TableAllocator, TableMemory};
use super::MmuError;
use aarch32_cpu::register::{
    Actlr, BpIAll, Ccsidr, Clidr, Csselr, Ctr, Dacr, Dccimvac, Dccisw, Dccmvac, Dcisw, Dfar, Dfsr,
    Iciallu, Ifar, Ifsr, Midr, Mpidr, Sctlr, SysRegRead, SysRegRead64, SysRegWrite, SysRegWrite64,
    TlbIAll, Ttbr0,
};
use zonekit_core::PhysAddr;

/// `DSB SY`.
#[inline(always)]
pub fn dsb() {
    aarch32_cpu::asm::dsb();
}

/// `ISB SY`.
#[inline(always)]
pub fn isb() {
    aarch32_cpu::asm::isb();
}

/// No instruction, but the compiler may not move memory accesses across it.
/// `aarch32-cpu`'s CP15 writes are `nomem` asm, which the compiler may reorder with
/// loads and stores: a cache clean by address starts with this so that the stores
/// before it are in the cache when it runs.
#[inline(always)]
fn compiler_barrier() {
    // SAFETY: an empty asm block; without `nomem` it only stands for "any memory may
    // be read or written here".
    unsafe { core::arch::asm!("", options(nostack, preserves_flags)) };
}

/// Read SCTLR.
#[inline]
pub fn read_sctlr() -> u32 {
    Sctlr::read().raw_value()
}

/// Read TTBCR.
#[inline]
pub fn read_ttbcr() -> u32 {
    <cp15::Ttbcr as SysRegRead>::read_raw()
}

/// True when SCTLR.M is set.
pub fn mmu_enabled() -> bool {
    read_sctlr() & super::regs::SCTLR_M != 0
}

/// Read DFAR (the faulting data address).
#[inline]
pub fn read_dfar() -> u32 {
    <Dfar as SysRegRead>::read_raw()
}

/// Read DFSR (the data fault status).
#[inline]
pub fn read_dfsr() -> u32 {
    <Dfsr as SysRegRead>::read_raw()
}

/// Read IFAR (the faulting instruction address).
#[inline]
pub fn read_ifar() -> u32 {
    <Ifar as SysRegRead>::read_raw()
}

/// Read IFSR (the prefetch fault status).
#[inline]
pub fn read_ifsr() -> u32 {
    <Ifsr as SysRegRead>::read_raw()
}

/// The last data abort: (DFAR, decoded DFSR).
pub fn data_abort() -> (u32, FaultStatus) {
    (read_dfar(), FaultStatus::from_dfsr(read_dfsr()))
}

/// True on a multiprocessor system (MPIDR\[31\] set, U clear): TLB and branch
/// predictor maintenance is broadcast (the IS forms), as Linux's `is_smp`.
fn is_smp() -> bool {
    Mpidr::read().0 & (0b11 << 30) == 1 << 31
}

/// The smallest data cache line in bytes (CTR.DminLine).
fn dcache_line_bytes() -> u32 {
    4 << ((Ctr::read().0 >> 16) & 0xF)
}

/// Apply a by-address data cache operation to every line of virtual `[start, end)`,
/// then DSB.
///
/// # Safety
///
/// `R` must be an operation that writes dirty lines back before anything else
/// (DCCMVAC, DCCIMVAC): memory then holds every value Rust code wrote.
unsafe fn dcache_by_mva<R: SysRegWrite>(start: u32, end: u32) {
    compiler_barrier();
    let line = dcache_line_bytes();
    let mut va = start & !(line - 1);
    while va < end {
        // SAFETY: the caller's contract for `R`.
        unsafe { R::write_raw(va) };
        va = match va.checked_add(line) {
            Some(v) => v,
            None => break,
        };
    }
    dsb();
}

/// Clean the data cache lines of virtual `[start, end)` to the point of coherency
/// (DCCMVAC per line), then DSB.
pub fn clean_dcache_range(start: u32, end: u32) {
    // SAFETY: cleaning writes dirty lines back and keeps them valid: memory and
    // cache then agree, nothing observable by Rust code changes.
    unsafe { dcache_by_mva::<Dccmvac>(start, end) }
}

/// Apply a set/way operation to every line of the data caches of levels
/// `0..levels` (`v7_flush_dcache_all` / `v7_invalidate_l1`).
///
/// # Safety
///
/// `R` must be DCISW or DCCISW. DCISW discards dirty lines: only sound while no
/// cache holds data newer than memory (the data cache has been off since reset).
unsafe fn dcache_by_set_way<R: SysRegWrite>(levels: u32) {
    let clidr = Clidr::read().0;
    for level in 0..levels.min(7) {
        if (clidr >> (3 * level)) & 0b111 < 2 {
            continue; // no data or unified cache at this level
        }
        // SAFETY: selecting the cache level to describe has no other effect.
        unsafe { <Csselr as SysRegWrite>::write_raw(level << 1) };
        isb();
        let ccsidr = <Ccsidr as SysRegRead>::read_raw();
        let line_shift = (ccsidr & 0b111) + 4;
        let ways = ((ccsidr >> 3) & 0x3FF) + 1;
        let sets = ((ccsidr >> 13) & 0x7FFF) + 1;
        let way_shift = (ways - 1).leading_zeros() % 32;
        for way in 0..ways {
            for set in 0..sets {
                let sw = (way << way_shift) | (set << line_shift) | (level << 1);
                // SAFETY: the caller's contract for `R`.
                unsafe { R::write_raw(sw) };
            }
        }
    }
    dsb();
}

/// The `(level, LoC)` of CLIDR: levels of cache to the point of coherency.
fn levels_to_poc() -> u32 {
    (Clidr::read().0 >> 24) & 0b111
}

/// Make a table word the CPU just wrote at virtual `va` visible to the table walker:
/// clean its line to the point of coherency, DSB, ISB.
pub fn sync_table_write(va: u32) {
    clean_dcache_range(va, va.wrapping_add(4));
    isb();
}

/// Invalidate the unified TLB entry for `va` (TLBIMVA, or TLBIMVAIS on SMP; ASID 0,
/// global entries are invalidated whatever their ASID) and the branch predictors,
/// then DSB + ISB.
pub fn tlb_invalidate_page(va: u32) {
    let mva = va & !0xFFF;
    dsb();
    // SAFETY: TLB and branch-predictor maintenance only drops cached translations
    // and predictions; the next access walks the tables again.
    unsafe {
        if is_smp() {
            <cp15::TlbiMvaIs as SysRegWrite>::write_raw(mva);
            <cp15::BpiAllIs as SysRegWrite>::write_raw(0);
        } else {
            <cp15::TlbiMva as SysRegWrite>::write_raw(mva);
            <BpIAll as SysRegWrite>::write_raw(0);
        }
    }
    dsb();
    isb();
}

/// Invalidate the whole unified TLB (TLBIALL, or TLBIALLIS on SMP) and the branch
/// predictors, then DSB + ISB.
pub fn tlb_invalidate_all() {
    dsb();
    // SAFETY: as in `tlb_invalidate_page`.
    unsafe {
        if is_smp() {
            <cp15::TlbiAllIs as SysRegWrite>::write_raw(0);
            <cp15::BpiAllIs as SysRegWrite>::write_raw(0);
        } else {
            <TlbIAll as SysRegWrite>::write_raw(0);
            <BpIAll as SysRegWrite>::write_raw(0);
        }
    }
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

/// Clean and invalidate the data cache lines of virtual `[start, end)` to the point
/// of coherency (DCCIMVAC per line), then DSB: memory holds the data, and no cache
/// of this CPU keeps a copy that could later be written back over what another
/// observer (a CPU with its MMU and caches still off) writes there.
pub fn clean_inval_dcache_range(start: u32, end: u32) {
    // SAFETY: clean-and-invalidate writes dirty lines back before dropping them:
    // memory then holds every value Rust code wrote, nothing is lost.
    unsafe { dcache_by_mva::<Dccimvac>(start, end) }
}

/// The translation and control registers of a CPU whose MMU is on: what a secondary
/// CPU writes to run on the same kernel tables, with the same attributes and caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmuRegs {
    /// TTBR0 (the 64-bit form when [`Self::ttbcr`] has EAE set).
    pub ttbr0: u64,
    /// TTBCR.
    pub ttbcr: u32,
    /// DACR.
    pub dacr: u32,
    /// PRRR (MAIR0 under LPAE).
    pub prrr: u32,
    /// NMRR (MAIR1 under LPAE).
    pub nmrr: u32,
    /// SCTLR (M, TRE, and the caches as this CPU has them).
    pub sctlr: u32,
}

/// TTBCR.EAE: the long-descriptor format.
const TTBCR_EAE: u32 = 1 << 31;

/// This CPU's [`MmuRegs`].
pub fn read_mmu_regs() -> MmuRegs {
    let ttbcr = read_ttbcr();
    let ttbr0 = if ttbcr & TTBCR_EAE != 0 {
        <cp15::Ttbr0Long as SysRegRead64>::read_raw()
    } else {
        u64::from(<Ttbr0 as SysRegRead>::read_raw())
    };
    MmuRegs {
        ttbr0,
        ttbcr,
        dacr: <Dacr as SysRegRead>::read_raw(),
        prrr: <cp15::Prrr as SysRegRead>::read_raw(),
        nmrr: <cp15::Nmrr as SysRegRead>::read_raw(),
        sctlr: read_sctlr(),
    }
}

/// PRRR/NMRR (or MAIR0/MAIR1), DACR, TTBCR, TTBR0 of `r` (TTBCR before TTBR0, whose
/// width it selects).
///
/// # Safety
///
/// The MMU is off, and `r` describes complete tables (see [`install_and_enable`]).
unsafe fn write_translation_regs(r: &MmuRegs) {
    // SAFETY: (whole block) the caller's contract; with the MMU off none of these
    // writes changes how the instructions between them are fetched or how memory is
    // addressed until SCTLR.M.
    unsafe {
        <cp15::Prrr as SysRegWrite>::write_raw(r.prrr);
        <cp15::Nmrr as SysRegWrite>::write_raw(r.nmrr);
        <Dacr as SysRegWrite>::write_raw(r.dacr);
        <cp15::Ttbcr as SysRegWrite>::write_raw(r.ttbcr);
        if r.ttbcr & TTBCR_EAE != 0 {
            <cp15::Ttbr0Long as SysRegWrite64>::write_raw(r.ttbr0);
        } else {
            <Ttbr0 as SysRegWrite>::write_raw(r.ttbr0 as u32);
        }
    }
}

/// Switch the MMU on as another CPU has it ([`read_mmu_regs`] there): `__v7_setup`
/// (ACTLR.SMP, this CPU's L1 invalidated, TLBs and branch predictors), the same
/// translation registers, then the same SCTLR. Linux's `secondary_startup`.
///
/// # Safety
///
/// As [`install_and_enable`] for the tables `regs` points at: they map the code
/// executing this function and its stack at their current addresses; the MMU is
/// off and the data cache has been off since reset.
pub unsafe fn enable_like(regs: &MmuRegs) {
    // SAFETY: forwarded (see above).
    unsafe {
        v7_setup();
        write_translation_regs(regs);
    }
    dsb();
    isb();
    // The identity map keeps the next instructions where they are.
    Sctlr::write(Sctlr::new_with_raw_value(regs.sctlr));
    isb();
}

/// Join the other CPUs' coherency domain without the MMU (a `zonekit.nommu` boot's
/// secondary): ACTLR.SMP as `__v7_setup` sets it.
pub fn join_coherency() {
    if let Some(actlr) = actlr_smp_value(Midr::read().raw_value(), Mpidr::read().0, Actlr::read().0)
    {
        // SAFETY: ACTLR.SMP/FW only make this core take part in coherency and
        // broadcast maintenance.
        unsafe { Actlr::write(Actlr(actlr)) };
    }
}

/// Install the first-level table at `l1_phys` and switch the MMU on, with the
/// caches if `caches`; returns the SCTLR written.
///
/// # Safety
///
/// `l1_phys` must be a complete, 16 KiB-aligned first-level table (with its
/// second-level tables) that maps, at their current addresses and as normal
/// executable/writable memory, the code executing this function, its stack, and
/// everything accessed until the caller switches to other addresses: after the
/// final ISB every access is translated. The MMU must currently be off. If the data
/// cache is off, no cache may hold data newer than memory (it is invalidated).
pub unsafe fn install_and_enable(l1_phys: u32, caches: bool) -> u32 {
    // SAFETY: forwarded (see above).
    unsafe { v7_setup() };
    let regs = MmuRegs {
        ttbr0: u64::from(ttbr0_value(l1_phys)),
        ttbcr: TTBCR_SHORT_TTBR0_ONLY,
        dacr: DACR_DOMAIN0_CLIENT,
        prrr: PRRR,
        nmrr: NMRR,
        sctlr: 0,
    };
    // SAFETY: the caller guarantees the tables and the identity map; the MMU is off.
    unsafe { write_translation_regs(&regs) };
    turn_mmu_on(caches)
}

/// [`install_and_enable`] for long descriptors (LPAE, `proc-v7-3level.S`): the
/// first-level table at the 40-bit `pgd_phys`, Linux's MAIR0/MAIR1 (in the
/// PRRR/NMRR encodings), TTBCR with EAE, the 64-bit TTBR0; returns the SCTLR written.
///
/// # Safety
///
/// As [`install_and_enable`], for a long-descriptor table
/// ([`super::table_long::LongPageTable`]).
pub unsafe fn install_and_enable_long(pgd_phys: u64, caches: bool) -> u32 {
    // SAFETY: forwarded (see above).
    unsafe { v7_setup() };
    let regs = MmuRegs {
        ttbr0: ttbr0_long_value(pgd_phys),
        ttbcr: TTBCR_LONG_TTBR0_ONLY,
        dacr: DACR_DOMAIN0_CLIENT,
        prrr: MAIR0,
        nmrr: MAIR1,
        sctlr: 0,
    };
    // SAFETY: as in `install_and_enable`; TTBCR.EAE switches the walker to the long
    // format, whose table TTBR0 (written right after, before any walk: the MMU is
    // off) points to.
    unsafe { write_translation_regs(&regs) };
    turn_mmu_on(caches)
}

/// The part of `__v7_setup` both formats share: the data cache made safe to turn on,
/// ACTLR.SMP, TLBIALL, ICIALLU, BPIALL.
///
/// # Safety
///
/// The MMU is off; if the data cache is off, no cache holds data newer than memory.
unsafe fn v7_setup() {
    let old = read_sctlr();
    if old & SCTLR_C != 0 {
        // SAFETY: DCCISW writes dirty lines back before dropping them: nothing is lost.
        unsafe { dcache_by_set_way::<Dccisw>(levels_to_poc()) };
    } else {
        // SAFETY: the data cache is off (the caller's contract: nothing in it is
        // newer than memory), so dropping its lines loses nothing.
        unsafe { dcache_by_set_way::<Dcisw>(1) };
    }
    if let Some(actlr) = actlr_smp_value(Midr::read().raw_value(), Mpidr::read().0, Actlr::read().0)
    {
        // SAFETY: ACTLR.SMP/FW only make this core take part in coherency and
        // broadcast maintenance, which is required before its D-cache is on.
        unsafe { Actlr::write(Actlr(actlr)) };
    }
    // SAFETY: invalidating TLBs, the I-cache and branch predictors with the MMU off
    // only drops cached state.
    unsafe {
        <TlbIAll as SysRegWrite>::write_raw(0);
        <Iciallu as SysRegWrite>::write_raw(0);
        <BpIAll as SysRegWrite>::write_raw(0);
    }
}

/// DSB, ISB, then SCTLR with M (and the caches if `caches`), ISB; returns it.
fn turn_mmu_on(caches: bool) -> u32 {
    dsb();
    isb();
    let sctlr = sctlr_mmu_on(read_sctlr(), caches);
    // The identity map keeps the next instructions where they are.
    Sctlr::write(Sctlr::new_with_raw_value(sctlr));
    isb();
    sctlr
}

/// Switch the MMU on with `pt`: `hooks.before_mmu_on`, [`install_and_enable`] (or
/// [`install_and_enable_long`] for a long-descriptor table), `hooks.after_mmu_on`.
///
/// # Safety
///
/// As [`install_and_enable`]: `pt` must identity-map the running code, its stack
/// and the table memory as the allocator reaches it (or the allocator must be
/// switched to the linear map in `after_mmu_on` before the table is touched), and
/// every address the caller and the hooks use after the switch.
pub unsafe fn enable_mmu<A: TableAllocator, H: MappingHooks<A>>(
    pt: &mut ArmPageTable<A>,
    hooks: &mut H,
    caches: bool,
) -> Result<(), MmuError> {
    hooks.before_mmu_on(&mut MappingTable::new(pt))?;
    dsb();
    match pt {
        // SAFETY: forwarded to the caller (see above).
        ArmPageTable::Short(t) => unsafe { install_and_enable(t.l1_phys(), caches) },
        // SAFETY: forwarded to the caller (see above).
        ArmPageTable::Long(t) => unsafe { install_and_enable_long(t.l1_phys(), caches) },
    };
    hooks.after_mmu_on(&mut MappingTable::new(pt))
}

/// Table memory reached by pointer: physical address + `virt_offset` (0 with the
/// MMU off, `PAGE_OFFSET - PHYS_OFFSET` through the linear map). It reaches only the
/// tables allocated through it ([`TableMemory::claim`]), inside `[lo, hi)`: a view
/// of any other memory (the image, a stack, `mem_map`) is refused.
#[derive(Debug)]
pub struct DirectTableMemory {
    virt_offset: u32,
    lo: PhysAddr,
    hi: PhysAddr,
    /// The tables, as merged `[start, end)` ranges.
    tables: heapless::Vec<(PhysAddr, PhysAddr), MAX_TABLE_RANGES>,
}

/// Separate ranges of table memory [`DirectTableMemory`] keeps (memblock places
/// tables top-down next to each other, so they merge: a boot uses a few).
pub const MAX_TABLE_RANGES: usize = 32;

impl DirectTableMemory {
    /// Table memory for tables allocated in physical `[lo, hi)`; it reaches nothing
    /// until tables are claimed ([`TableMemory::claim`]).
    ///
    /// # Safety
    ///
    /// Every address in `[lo, hi)` + `virt_offset` must be mapped (or the MMU off),
    /// readable and writable, and every range claimed through it must be memory
    /// allocated for the tables and used by nothing but this object's users for as
    /// long as it lives: the page-table builder writes through it.
    pub const unsafe fn new(lo: PhysAddr, hi: PhysAddr, virt_offset: u32) -> Self {
        Self {
            virt_offset,
            lo,
            hi,
            tables: heapless::Vec::new(),
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

    /// The virtual address of table memory at `phys`, if it is in range.
    pub fn virt(&self, phys: PhysAddr) -> Option<u32> {
        self.ptr(phys, 1).map(|p| p as usize as u32)
    }

    fn ptr(&self, phys: PhysAddr, count: usize) -> Option<*mut u32> {
        let end = phys.checked_add((count as u64).checked_mul(4)?)?;
        if phys < self.lo || end > self.hi || phys & 3 != 0 {
            return None;
        }
        if !self.tables.iter().any(|&(s, e)| s <= phys && end <= e) {
            return None;
        }
        Some((phys as u32).wrapping_add(self.virt_offset) as *mut u32)
    }
}

impl TableMemory for DirectTableMemory {
    fn claim(&mut self, phys: PhysAddr, bytes: usize) -> Result<(), MmuError> {
        let end = phys
            .checked_add(bytes as u64)
            .filter(|&e| phys >= self.lo && e <= self.hi);
        let Some(end) = end else {
            return Err(MmuError::OutOfTableMemory { bytes, align: 4 });
        };
        if let Some(r) = self.tables.iter_mut().find(|r| r.0 == end || r.1 == phys) {
            *r = (r.0.min(phys), r.1.max(end));
            return Ok(());
        }
        self.tables
            .push((phys, end))
            .map_err(|_| MmuError::OutOfTableMemory { bytes, align: 4 })
    }

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
