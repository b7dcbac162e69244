//! The CP15 values the MMU switch programs, computed here so the host can test them.
//! `hw.rs` writes them on the target.
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
/// SCTLR.TRE: TEX remap (must be clear: descriptors use plain TEX/C/B).
pub const SCTLR_TRE: u32 = 1 << 28;
/// SCTLR.AFE: access flag enable (must be clear: AP\[0\] is a permission bit).
pub const SCTLR_AFE: u32 = 1 << 29;

/// TTBR0 for a first-level table at `l1_phys` (16 KiB aligned; low bits masked).
pub const fn ttbr0_value(l1_phys: u32) -> u32 {
    (l1_phys & !0x3FFF) | TTBR_WALK_ATTRS_SMP
}

/// SCTLR with the MMU on: M set, TRE and AFE cleared, and with `caches` also C, I
/// and Z set.
pub const fn sctlr_mmu_on(old: u32, caches: bool) -> u32 {
    let v = (old & !(SCTLR_TRE | SCTLR_AFE)) | SCTLR_M;
    if caches {
        v | SCTLR_C | SCTLR_I | SCTLR_Z
    } else {
        v
    }
}

/// A decoded DFSR/IFSR (short-descriptor format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultStatus {
    /// FS\[4:0\] (FS\[4\] is bit 10).
    pub fs: u8,
    /// WnR: the abort was on a write (DFSR only).
    pub write: bool,
    /// Domain of the faulting descriptor (bits\[7:4\]).
    pub domain: u8,
}

impl FaultStatus {
    /// Decode a DFSR value.
    pub const fn from_dfsr(dfsr: u32) -> Self {
        Self {
            fs: ((dfsr & 0xF) | (((dfsr >> 10) & 1) << 4)) as u8,
            write: dfsr & (1 << 11) != 0,
            domain: ((dfsr >> 4) & 0xF) as u8,
        }
    }

    /// What FS means (ARM ARM table B3-23).
    pub const fn description(&self) -> &'static str {
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
            0x00C5_0079
        );
        assert_eq!(sctlr_mmu_on(0x00C5_0078, true), 0x00C5_187D);
        assert_eq!(DACR_DOMAIN0_CLIENT, 1);
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
    }
}
