//! The CP15 values the MMU switch programs, computed here so the host can test them.
//! `hw.rs` writes them on the target.
//!
//! The values are Linux's ARMv7 short-descriptor setup (`__v7_setup` in
//! `arch/arm/mm/proc-v7.S`, `proc-v7-2level.S`): TEX remap on (SCTLR.TRE, with
//! Linux's [`PRRR`]/[`NMRR`]), the access flag off (AFE), domain 0 client, TTBR0 walks
//! inner/outer write-back write-allocate and shareable, and SCTLR.C/I/Z with the
//! caches on. ACTLR.SMP (with FW on Cortex-A5/A9) is set before the D-cache on SMP
//! cores, as `__v7_ca9mp_setup`/`__v7_ca15mp_setup` do ([`actlr_smp_value`]).
//!
//! Linux counterpart: the TTBR/TTBCR/DACR/SCTLR values `__v7_setup` and `__enable_mmu` program.

/// DACR: domain 0 client (accesses checked against the descriptors' AP bits), all
/// other domains no access. zonekit puts every mapping in domain 0.
pub const DACR_DOMAIN0_CLIENT: u32 = 0b01;

/// TTBCR = 0: short descriptors (EAE = 0), N = 0 (TTBR0 translates everything),
/// walks through TTBR0 and TTBR1 enabled.
pub const TTBCR_SHORT_TTBR0_ONLY: u32 = 0;

/// TTBR0 table-walk attributes with the Multiprocessing Extensions (Cortex-A7/A9/A15),
/// Linux's `TTB_FLAGS_SMP`: inner WBWA (IRGN = 01: bit 6 set, bit 0 clear), outer
/// WBWA (RGN = 01, bit 3), shareable (S, bit 1), inner shareable (NOS, bit 5).
pub const TTBR_WALK_ATTRS_SMP: u32 = (1 << 6) | (1 << 5) | (1 << 3) | (1 << 1);

/// PRRR (Primary Region Remap Register) as Linux's `proc-v7-2level.S`: with
/// SCTLR.TRE, the descriptor's TEX\[0\]:C:B is an index n of 0..7 and PRRR\[2n+1:2n\]
/// the memory type. zonekit uses n = 0 strongly-ordered (`UNCACHED`), 1 normal
/// (`BUFFERABLE`: non-cacheable), 4 device (`DEV_SHARED`), 7 normal (`WRITEALLOC`);
/// DS1 = NS1 = 1 (S = 1 means shareable for device and normal memory), NOS = 1 for
/// all (inner shareable).
pub const PRRR: u32 = 0xff0a_81a8;

/// NMRR (Normal Memory Remap Register) as Linux's `proc-v7-2level.S`: inner
/// (bits\[2n+1:2n\]) and outer (bits\[2n+17:2n+16\]) cache policy of each normal
/// index: 1 non-cacheable, 2 write-through, 3 write-back, 7 write-back write-allocate.
pub const NMRR: u32 = 0x40e0_40e0;

/// PRRR memory type of a remap index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemapType {
    /// TR = 00.
    StronglyOrdered,
    /// TR = 01.
    Device,
    /// TR = 10, with the inner and outer cache policy from NMRR (0 non-cacheable,
    /// 1 write-back write-allocate, 2 write-through, 3 write-back no write-allocate).
    Normal {
        /// Inner policy (IRn).
        inner: u8,
        /// Outer policy (ORn).
        outer: u8,
    },
}

/// What TEX\[0\]:C:B (`tex0`, `c`, `b`) selects with SCTLR.TRE set and the given
/// PRRR/NMRR: the ARM ARM's B3.8.3 lookup, for host tests of the descriptors.
pub const fn tex_remap(prrr: u32, nmrr: u32, tex0: bool, c: bool, b: bool) -> RemapType {
    let n = ((tex0 as u32) << 2) | ((c as u32) << 1) | (b as u32);
    match (prrr >> (2 * n)) & 0b11 {
        0b00 => RemapType::StronglyOrdered,
        0b01 => RemapType::Device,
        _ => RemapType::Normal {
            inner: ((nmrr >> (2 * n)) & 0b11) as u8,
            outer: ((nmrr >> (2 * n + 16)) & 0b11) as u8,
        },
    }
}

/// MAIR0 of the long-descriptor format, Linux's `proc-v7-3level.S` (written to the
/// PRRR encoding): attribute 0 `0x00` strongly-ordered (`UNCACHED`), 1 `0x44`
/// normal non-cacheable (`BUFFERABLE`), 2 `0xaa` write-through, 3 `0xee` write-back.
pub const MAIR0: u32 = 0xeeaa_4400;

/// MAIR1 (the NMRR encoding): attribute 4 `0x04` device (`DEV_SHARED`), 7 `0xff`
/// normal write-back write-allocate (`WRITEALLOC`).
pub const MAIR1: u32 = 0xff00_0004;

/// TTBCR for the long-descriptor format: EAE (bit 31), T0SZ = T1SZ = 0 (TTBR0
/// translates the whole 4 GiB), TTBR0 walks inner WBWA (IRGN0 = 01), outer WBWA
/// (ORGN0 = 01), inner shareable (SH0 = 11), Linux's `TTB_FLAGS_SMP` for LPAE.
pub const TTBCR_LONG_TTBR0_ONLY: u32 = (1 << 31) | (0b11 << 12) | (0b01 << 10) | (0b01 << 8);

/// The 64-bit TTBR0 of the long-descriptor format for a first-level table at
/// `pgd_phys` (40-bit, 32-byte aligned: the 4-entry table of T0SZ = 0), ASID 0.
pub const fn ttbr0_long_value(pgd_phys: u64) -> u64 {
    pgd_phys & 0x0000_00FF_FFFF_FFE0
}

/// Attribute `index` (0..7) of MAIR0/MAIR1.
pub const fn mair_attr(mair0: u32, mair1: u32, index: u8) -> u8 {
    let i = (index & 0b111) as u32;
    let reg = if i < 4 { mair0 } else { mair1 };
    ((reg >> (8 * (i % 4))) & 0xFF) as u8
}

/// SCTLR.M: MMU enable.
pub const SCTLR_M: u32 = 1 << 0;
/// SCTLR.A: alignment checking.
pub const SCTLR_A: u32 = 1 << 1;
/// SCTLR.C: data and unified caches.
pub const SCTLR_C: u32 = 1 << 2;
/// SCTLR.Z: branch prediction.
pub const SCTLR_Z: u32 = 1 << 11;
/// SCTLR.I: instruction cache.
pub const SCTLR_I: u32 = 1 << 12;
/// SCTLR.V: high vectors.
pub const SCTLR_V: u32 = 1 << 13;
/// SCTLR.TRE: TEX remap (set: descriptors index [`PRRR`]/[`NMRR`]).
pub const SCTLR_TRE: u32 = 1 << 28;
/// SCTLR.AFE: access flag enable (must be clear: AP\[0\] is a permission bit).
pub const SCTLR_AFE: u32 = 1 << 29;

/// ACTLR.SMP (Cortex-A5/A7/A9/A15): take part in coherency; must be set before the
/// D-cache and MMU are on in an SMP system.
pub const ACTLR_SMP: u32 = 1 << 6;
/// ACTLR.FW (Cortex-A5/A9): broadcast cache and TLB maintenance.
pub const ACTLR_FW: u32 = 1 << 0;

/// TTBR0 for a first-level table at `l1_phys` (16 KiB aligned; low bits masked).
pub const fn ttbr0_value(l1_phys: u32) -> u32 {
    (l1_phys & !0x3FFF) | TTBR_WALK_ATTRS_SMP
}

/// SCTLR with the MMU on: M and TRE set, AFE cleared, and with `caches` also C, I
/// and Z set (Linux's `v7_crval` without high vectors and SWP).
pub const fn sctlr_mmu_on(old: u32, caches: bool) -> u32 {
    let v = (old & !SCTLR_AFE) | SCTLR_TRE | SCTLR_M;
    if caches {
        v | SCTLR_C | SCTLR_I | SCTLR_Z
    } else {
        v
    }
}

/// True when `sctlr` has the data and instruction caches on (C and I).
pub const fn caches_on(sctlr: u32) -> bool {
    sctlr & (SCTLR_C | SCTLR_I) == SCTLR_C | SCTLR_I
}

/// The ACTLR to write before the D-cache goes on, as `__v7_setup` does for the core
/// in `midr` with `mpidr` (`None`: leave ACTLR alone). Only for ARM's SMP-capable
/// cores (A5, A9: SMP and FW; A7, A12, A15, A17: SMP) on a multiprocessor system
/// (MPIDR\[31\] set, U = MPIDR\[30\] clear, Linux's `is_smp`), and only when SMP is
/// still clear (the write traps in the non-secure world on some boards, so Linux
/// skips it when a bootloader already set it).
pub const fn actlr_smp_value(midr: u32, mpidr: u32, actlr: u32) -> Option<u32> {
    let arm = midr >> 24 == 0x41;
    let extra = match (midr >> 4) & 0xFFF {
        0xC05 | 0xC09 => ACTLR_FW,
        0xC07 | 0xC0D | 0xC0E | 0xC0F => 0,
        _ => return None,
    };
    let smp = mpidr & (0b11 << 30) == 1 << 31;
    if !arm || !smp || actlr & ACTLR_SMP != 0 {
        return None;
    }
    Some(actlr | ACTLR_SMP | extra)
}

/// A decoded DFSR/IFSR, in the short-descriptor format or (bit 9, LPAE, set) the
/// long-descriptor one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultStatus {
    /// Short format: FS\[4:0\] (FS\[4\] is bit 10). Long format: STATUS\[5:0\].
    pub fs: u8,
    /// WnR: the abort was on a write (DFSR only).
    pub write: bool,
    /// Domain of the faulting descriptor (bits\[7:4\]; 0 in the long format).
    pub domain: u8,
    /// The long-descriptor format (TTBCR.EAE set: DFSR bit 9).
    pub long: bool,
}

impl FaultStatus {
    /// Decode a DFSR value.
    pub const fn from_dfsr(dfsr: u32) -> Self {
        if dfsr & (1 << 9) != 0 {
            return Self {
                fs: (dfsr & 0x3F) as u8,
                write: dfsr & (1 << 11) != 0,
                domain: 0,
                long: true,
            };
        }
        Self {
            fs: ((dfsr & 0xF) | (((dfsr >> 10) & 1) << 4)) as u8,
            write: dfsr & (1 << 11) != 0,
            domain: ((dfsr >> 4) & 0xF) as u8,
            long: false,
        }
    }

    /// What FS/STATUS means (ARM ARM tables B3-23 and B3-24).
    pub const fn description(&self) -> &'static str {
        if self.long {
            return match self.fs {
                0b000101 => "translation fault, first level",
                0b000110 => "translation fault, second level",
                0b000111 => "translation fault, third level",
                0b001001 => "access flag fault, first level",
                0b001010 => "access flag fault, second level",
                0b001011 => "access flag fault, third level",
                0b001101 => "permission fault, first level",
                0b001110 => "permission fault, second level",
                0b001111 => "permission fault, third level",
                0b010000 => "synchronous external abort",
                0b010001 => "asynchronous external abort",
                0b100001 => "alignment fault",
                0b100010 => "debug event",
                _ => "unknown fault",
            };
        }
        match self.fs {
            0b00001 => "alignment fault",
            0b00100 => "instruction cache maintenance fault",
            0b01100 => "synchronous external abort on translation table walk, first level",
            0b01110 => "synchronous external abort on translation table walk, second level",
            0b00101 => "translation fault, section",
            0b00111 => "translation fault, page",
            0b00011 => "access flag fault, section",
            0b00110 => "access flag fault, page",
            0b01001 => "domain fault, section",
            0b01011 => "domain fault, page",
            0b01101 => "permission fault, section",
            0b01111 => "permission fault, page",
            0b00010 => "debug event",
            0b01000 => "synchronous external abort",
            0b10110 => "asynchronous external abort",
            _ => "unknown fault",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_values() {
        assert_eq!(TTBR_WALK_ATTRS_SMP, 0x6A);
        assert_eq!(ttbr0_value(0x6000_4000), 0x6000_406A);
        assert_eq!(ttbr0_value(0x6000_7FFF), 0x6000_406A);
        assert_eq!(
            sctlr_mmu_on(0x00C5_0078 | SCTLR_TRE | SCTLR_AFE, false),
            0x10C5_0079
        );
        assert_eq!(sctlr_mmu_on(0x00C5_0078, true), 0x10C5_187D);
        assert!(caches_on(0x10C5_187D));
        assert!(!caches_on(0x10C5_0079));
        assert_eq!(DACR_DOMAIN0_CLIENT, 1);
    }

    #[test]
    fn tex_remap_indices() {
        use RemapType::*;
        let r = |n: u32| tex_remap(PRRR, NMRR, n & 4 != 0, n & 2 != 0, n & 1 != 0);
        assert_eq!(r(0), StronglyOrdered);
        assert_eq!(r(1), Normal { inner: 0, outer: 0 });
        assert_eq!(r(2), Normal { inner: 2, outer: 2 });
        assert_eq!(r(3), Normal { inner: 3, outer: 3 });
        assert_eq!(r(4), Device);
        assert_eq!(r(7), Normal { inner: 1, outer: 1 });
        // DS1 and NS1: S = 1 is shareable for device and normal memory; NOS all set.
        assert_eq!((PRRR >> 16) & 0xF, 0b1010);
        assert_eq!(PRRR >> 24, 0xFF);
    }

    #[test]
    fn long_descriptor_registers() {
        let attrs: [u8; 8] = core::array::from_fn(|i| mair_attr(MAIR0, MAIR1, i as u8));
        assert_eq!(attrs, [0x00, 0x44, 0xaa, 0xee, 0x04, 0x00, 0x00, 0xff]);
        assert_eq!(TTBCR_LONG_TTBR0_ONLY, 0x8000_3500);
        assert_eq!(ttbr0_long_value(0x2_7FFF_F03F), 0x2_7FFF_F020);
        assert_eq!(ttbr0_long_value(u64::MAX) >> 40, 0);
    }

    #[test]
    fn actlr_smp() {
        // Cortex-A9 r0p0 in an MP cluster: SMP and FW.
        assert_eq!(actlr_smp_value(0x410F_C090, 0x8000_0000, 0), Some(0x41));
        // Cortex-A15: SMP only; already set: left alone.
        assert_eq!(actlr_smp_value(0x412F_C0F1, 0x8000_0000, 0), Some(0x40));
        assert_eq!(actlr_smp_value(0x412F_C0F1, 0x8000_0000, 0x40), None);
        // Uniprocessor (U set), no MP extensions, or not an ARM core.
        assert_eq!(actlr_smp_value(0x410F_C070, 0xC000_0000, 0), None);
        assert_eq!(actlr_smp_value(0x410F_C070, 0, 0), None);
        assert_eq!(actlr_smp_value(0x510F_C0F0, 0x8000_0000, 0), None);
        assert_eq!(actlr_smp_value(0x410F_C080, 0x8000_0000, 0), None);
    }

    #[test]
    fn dfsr_decode() {
        let f = FaultStatus::from_dfsr(0x805);
        assert_eq!(f.fs, 5);
        assert!(f.write);
        assert_eq!(f.description(), "translation fault, section");
        assert_eq!(FaultStatus::from_dfsr(0x40F).fs, 0x1F);
        assert_eq!(
            FaultStatus::from_dfsr(0x17).description(),
            "translation fault, page"
        );
        assert_eq!(FaultStatus::from_dfsr(0x17).domain, 1);
        // Long format (LPAE bit 9): STATUS 0b000110, a second-level translation fault.
        let f = FaultStatus::from_dfsr(0x206);
        assert!(f.long && !f.write);
        assert_eq!(f.description(), "translation fault, second level");
        assert_eq!(
            FaultStatus::from_dfsr(0xA07).description(),
            "translation fault, third level"
        );
    }
}
