//! ARMv7-A short-descriptor translation table entries (ARM ARM B3.5.1).
//!
//! [`L1Entry`] and [`L2Entry`] are distinct `u32` newtypes: the level of a table is in
//! the type, so a first-level descriptor can never be decoded with the second-level
//! rules or written into a second-level table.
//!
//! Memory attributes are TEX remap indices (SCTLR.TRE = 1, TEX\[0\]:C:B into Linux's
//! PRRR/NMRR, [`super::regs::PRRR`]): Linux's `mem_types[]` with TEX remap on ARMv7
//! (`build_mem_type_table`). TRE is on with and without `zonekit.nocache`, so a
//! descriptor means one thing whatever SCTLR.C says. Access permissions are
//! AP\[2:0\] with SCTLR.AFE = 0. [`super::regs`] programs both.
//!
//! Builders never panic: address bits that a descriptor cannot hold are masked off
//! (the page-table builder validates alignment before it builds an entry).
//!
//! The level is part of the type; this does not compile:
//!
//! ```compile_fail
//! use zonekit_arch_arm::mmu::{L1Entry, L2Entry};
//! let e: L1Entry = L2Entry::FAULT;
//! ```
//!
//! ```compile_fail
//! use zonekit_arch_arm::mmu::{L1Kind, L2Entry};
//! let k: L1Kind = L2Entry::FAULT.decode();
//! ```
//!
//! Linux counterpart: the `PMD_SECT_*`/`PTE_EXT_*` bits of `arch/arm/include/asm/pgtable-2level-hwdef.h`.

/// Memory type of a mapping, as Linux's `mem_types[]` chooses them on ARMv7 with TEX
/// remap: each is a remap index n = TEX\[0\]:C:B ([`super::regs::tex_remap`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemType {
    /// Normal memory, inner and outer write-back write-allocate (n = 7, TEX=001 C=1
    /// B=1, Linux's `L_PTE_MT_WRITEALLOC`), shareable (S=1) as Linux sets it on SMP
    /// (`MT_MEMORY_RW`).
    Memory,
    /// Normal memory, non-cacheable (n = 1, TEX=000 C=0 B=1, `L_PTE_MT_BUFFERABLE`),
    /// shareable (Linux's write-combining `MT_DEVICE_WC`/`MT_MEMORY_RW_DMA_READY`).
    MemoryNonCacheable,
    /// Shared device memory (n = 4, TEX=001 C=0 B=0, `L_PTE_MT_DEV_SHARED`), S=1 as
    /// Linux's `MT_DEVICE`.
    Device,
    /// Strongly-ordered memory (n = 0, TEX=000 C=0 B=0, `L_PTE_MT_UNCACHED`), S=0 as
    /// Linux's `MT_UNCACHED`.
    StronglyOrdered,
}

impl MemType {
    /// The (TEX, C, B, S) bits for this type.
    pub const fn tex_c_b_s(self) -> (u8, bool, bool, bool) {
        match self {
            MemType::Memory => (0b001, true, true, true),
            MemType::MemoryNonCacheable => (0b000, false, true, true),
            MemType::Device => (0b001, false, false, true),
            MemType::StronglyOrdered => (0b000, false, false, false),
        }
    }

    /// Decode TEX/C/B (the S bit does not change the type; TEX\[2:1\] are ignored
    /// under TEX remap). `None` for indices zonekit never writes (write-through,
    /// write-back without allocate, the reserved ones).
    pub const fn from_tex_c_b(tex: u8, c: bool, b: bool) -> Option<MemType> {
        match (tex & 1, c, b) {
            (1, true, true) => Some(MemType::Memory),
            (0, false, true) => Some(MemType::MemoryNonCacheable),
            (1, false, false) => Some(MemType::Device),
            (0, false, false) => Some(MemType::StronglyOrdered),
            _ => None,
        }
    }
}

/// Access permissions (AP\[2:0\] with SCTLR.AFE = 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// PL1 read/write, PL0 no access (AP=0b001).
    KernelRw,
    /// PL1 read-only, PL0 no access (AP=0b101).
    KernelRo,
    /// PL1 and PL0 read/write (AP=0b011).
    UserRw,
    /// PL1 and PL0 read-only (AP=0b111).
    UserRo,
}

impl Access {
    /// AP\[2:0\] as a 3-bit value (AP\[2\] in bit 2).
    pub const fn ap(self) -> u8 {
        match self {
            Access::KernelRw => 0b001,
            Access::KernelRo => 0b101,
            Access::UserRw => 0b011,
            Access::UserRo => 0b111,
        }
    }

    /// Decode AP\[2:0\]. `None` for no-access (000), PL0-read-only (010) and the
    /// reserved 100; the deprecated 110 decodes as [`Access::UserRo`].
    pub const fn from_ap(ap: u8) -> Option<Access> {
        match ap & 0b111 {
            0b001 => Some(Access::KernelRw),
            0b101 => Some(Access::KernelRo),
            0b011 => Some(Access::UserRw),
            0b111 | 0b110 => Some(Access::UserRo),
            _ => None,
        }
    }

    /// True for the PL0-accessible permissions (mapped not-global, as Linux does).
    pub const fn is_user(self) -> bool {
        matches!(self, Access::UserRw | Access::UserRo)
    }
}

/// The attribute bits shared by sections, supersections, large and small pages.
///
/// `domain`, `ns` and `pxn` only exist in first-level descriptors; second-level
/// decoders report them as 0/false and second-level builders ignore them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Attrs {
    /// TEX\[2:0\].
    pub tex: u8,
    /// C (cacheable).
    pub c: bool,
    /// B (bufferable).
    pub b: bool,
    /// AP\[2:0\] (AP\[2\] in bit 2).
    pub ap: u8,
    /// Execute-never.
    pub xn: bool,
    /// Privileged execute-never (only on implementations with the LPAE/PXN
    /// extension; zonekit's builders never set it).
    pub pxn: bool,
    /// Shareable.
    pub s: bool,
    /// Not-global (ASID-tagged).
    pub ng: bool,
    /// Domain (sections and page-table pointers; 0 for supersections).
    pub domain: u8,
    /// Non-secure.
    pub ns: bool,
}

impl Attrs {
    /// The attributes zonekit uses for `mem`/`access`/`exec`: domain 0, global for
    /// kernel permissions, not-global for user ones, XN unless `exec`.
    pub const fn new(mem: MemType, access: Access, exec: bool) -> Attrs {
        let (tex, c, b, s) = mem.tex_c_b_s();
        Attrs {
            tex,
            c,
            b,
            ap: access.ap(),
            xn: !exec,
            pxn: false,
            s,
            ng: access.is_user(),
            domain: 0,
            ns: false,
        }
    }

    /// The memory type, if it is one zonekit writes.
    pub const fn mem_type(&self) -> Option<MemType> {
        MemType::from_tex_c_b(self.tex, self.c, self.b)
    }

    /// The access permissions, if they are one of [`Access`].
    pub const fn access(&self) -> Option<Access> {
        Access::from_ap(self.ap)
    }

    /// True unless execute-never.
    pub const fn exec(&self) -> bool {
        !self.xn
    }
}

const fn bit(v: bool, n: u32) -> u32 {
    (v as u32) << n
}

const fn is_set(v: u32, n: u32) -> bool {
    v & (1 << n) != 0
}

/// Bits common to sections and supersections: B, C, XN, AP, TEX, AP\[2\], S, nG, NS, PXN.
const fn section_attr_bits(a: &Attrs) -> u32 {
    bit(a.pxn, 0)
        | bit(a.b, 2)
        | bit(a.c, 3)
        | bit(a.xn, 4)
        | (((a.ap & 0b11) as u32) << 10)
        | (((a.tex & 0b111) as u32) << 12)
        | bit(a.ap & 0b100 != 0, 15)
        | bit(a.s, 16)
        | bit(a.ng, 17)
        | bit(a.ns, 19)
}

const fn section_attrs(v: u32, domain: u8) -> Attrs {
    Attrs {
        tex: ((v >> 12) & 0b111) as u8,
        c: is_set(v, 3),
        b: is_set(v, 2),
        ap: (((v >> 10) & 0b11) | (((v >> 15) & 1) << 2)) as u8,
        xn: is_set(v, 4),
        pxn: is_set(v, 0),
        s: is_set(v, 16),
        ng: is_set(v, 17),
        domain,
        ns: is_set(v, 19),
    }
}

const fn l2_attrs(v: u32, tex: u8, xn: bool) -> Attrs {
    Attrs {
        tex,
        c: is_set(v, 3),
        b: is_set(v, 2),
        ap: (((v >> 4) & 0b11) | (((v >> 9) & 1) << 2)) as u8,
        xn,
        pxn: false,
        s: is_set(v, 10),
        ng: is_set(v, 11),
        domain: 0,
        ns: false,
    }
}

/// A first-level (L1) descriptor: one entry of the 4096-entry, 16 KiB table, each
/// covering 1 MiB of virtual space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct L1Entry(u32);

/// What an [`L1Entry`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L1Kind {
    /// Translation fault (bits\[1:0\] = 00).
    Fault,
    /// Pointer to a second-level table (bits\[1:0\] = 01).
    PageTable {
        /// Physical base of the 1 KiB second-level table (bits\[31:10\]).
        base: u32,
        /// Domain (bits\[8:5\]).
        domain: u8,
        /// Non-secure (bit 3).
        ns: bool,
        /// Privileged execute-never for the whole table (bit 2).
        pxn: bool,
    },
    /// A 1 MiB section (bits\[1\] = 1, bit 18 = 0).
    Section {
        /// Physical base (bits\[31:20\]).
        base: u32,
        /// Attributes.
        attrs: Attrs,
    },
    /// A 16 MiB supersection (bits\[1\] = 1, bit 18 = 1), replicated in 16 entries.
    Supersection {
        /// Physical base, up to 40 bits (PA\[31:24\] in bits\[31:24\], PA\[35:32\] in
        /// bits\[23:20\], PA\[39:36\] in bits\[8:5\]).
        base: u64,
        /// Attributes (domain is always 0).
        attrs: Attrs,
    },
}

impl L1Entry {
    /// The fault entry (all zero).
    pub const FAULT: L1Entry = L1Entry(0);

    /// Wrap raw bits.
    pub const fn from_bits(bits: u32) -> L1Entry {
        L1Entry(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// A page-table pointer to the second-level table at `l2_phys` (bits\[9:0\]
    /// masked off) in `domain` (masked to 4 bits).
    pub const fn page_table(l2_phys: u32, domain: u8) -> L1Entry {
        L1Entry((l2_phys & 0xFFFF_FC00) | (((domain & 0xF) as u32) << 5) | 0b01)
    }

    /// A 1 MiB section mapping `phys` (bits\[19:0\] masked off) with zonekit's
    /// attributes for `mem`, `access`, `exec` (domain 0).
    pub const fn section(phys: u32, mem: MemType, access: Access, exec: bool) -> L1Entry {
        Self::section_with(phys, &Attrs::new(mem, access, exec))
    }

    /// A 1 MiB section with explicit attributes.
    pub const fn section_with(phys: u32, attrs: &Attrs) -> L1Entry {
        L1Entry(
            (phys & 0xFFF0_0000)
                | section_attr_bits(attrs)
                | (((attrs.domain & 0xF) as u32) << 5)
                | 0b10,
        )
    }

    /// A 16 MiB supersection mapping the 40-bit `phys` (bits\[23:0\] masked off).
    /// The entry must be written to 16 consecutive, 16-aligned L1 slots.
    pub const fn supersection(phys: u64, mem: MemType, access: Access, exec: bool) -> L1Entry {
        Self::supersection_with(phys, &Attrs::new(mem, access, exec))
    }

    /// A 16 MiB supersection with explicit attributes (`attrs.domain` is ignored).
    pub const fn supersection_with(phys: u64, attrs: &Attrs) -> L1Entry {
        let lo = (phys as u32) & 0xFF00_0000;
        let pa_35_32 = ((phys >> 32) & 0xF) as u32;
        let pa_39_36 = ((phys >> 36) & 0xF) as u32;
        L1Entry(
            lo | (pa_35_32 << 20) | (pa_39_36 << 5) | section_attr_bits(attrs) | (1 << 18) | 0b10,
        )
    }

    /// Decode.
    pub const fn decode(self) -> L1Kind {
        let v = self.0;
        match v & 0b11 {
            0b00 => L1Kind::Fault,
            0b01 => L1Kind::PageTable {
                base: v & 0xFFFF_FC00,
                domain: ((v >> 5) & 0xF) as u8,
                ns: is_set(v, 3),
                pxn: is_set(v, 2),
            },
            _ => {
                if is_set(v, 18) {
                    let base = ((v & 0xFF00_0000) as u64)
                        | ((((v >> 20) & 0xF) as u64) << 32)
                        | ((((v >> 5) & 0xF) as u64) << 36);
                    L1Kind::Supersection {
                        base,
                        attrs: section_attrs(v, 0),
                    }
                } else {
                    L1Kind::Section {
                        base: v & 0xFFF0_0000,
                        attrs: section_attrs(v, ((v >> 5) & 0xF) as u8),
                    }
                }
            }
        }
    }

    /// True for the fault entry (bits\[1:0\] = 00).
    pub const fn is_fault(self) -> bool {
        self.0 & 0b11 == 0
    }

    /// Set or clear nG (sections and supersections only; other kinds unchanged).
    pub const fn with_ng(self, ng: bool) -> L1Entry {
        self.with_leaf_bit(17, ng)
    }

    /// Set or clear S (sections and supersections only).
    pub const fn with_shareable(self, s: bool) -> L1Entry {
        self.with_leaf_bit(16, s)
    }

    /// Set or clear NS (bit 19 for sections, bit 3 for page-table pointers).
    pub const fn with_ns(self, ns: bool) -> L1Entry {
        match self.0 & 0b11 {
            0b00 => self,
            0b01 => L1Entry((self.0 & !(1 << 3)) | bit(ns, 3)),
            _ => L1Entry((self.0 & !(1 << 19)) | bit(ns, 19)),
        }
    }

    /// Set or clear PXN (bit 0 for sections, bit 2 for page-table pointers). Only
    /// valid on implementations that have PXN (Cortex-A7/A15, not Cortex-A9).
    pub const fn with_pxn(self, pxn: bool) -> L1Entry {
        match self.0 & 0b11 {
            0b00 => self,
            0b01 => L1Entry((self.0 & !(1 << 2)) | bit(pxn, 2)),
            _ => L1Entry((self.0 & !1) | bit(pxn, 0)),
        }
    }

    /// Set the domain (sections and page-table pointers; not supersections).
    pub const fn with_domain(self, domain: u8) -> L1Entry {
        let is_super = self.0 & 0b10 != 0 && is_set(self.0, 18);
        if self.is_fault() || is_super {
            self
        } else {
            L1Entry((self.0 & !(0xF << 5)) | (((domain & 0xF) as u32) << 5))
        }
    }

    const fn with_leaf_bit(self, n: u32, v: bool) -> L1Entry {
        if self.0 & 0b10 != 0 {
            L1Entry((self.0 & !(1 << n)) | bit(v, n))
        } else {
            self
        }
    }
}

impl core::fmt::Debug for L1Entry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "L1Entry({:#010x}: {:?})", self.0, self.decode())
    }
}

/// A second-level (L2) descriptor: one entry of a 256-entry, 1 KiB table, each
/// covering 4 KiB of virtual space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct L2Entry(u32);

/// What an [`L2Entry`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L2Kind {
    /// Translation fault (bits\[1:0\] = 00).
    Fault,
    /// A 64 KiB large page (bits\[1:0\] = 01), replicated in 16 entries.
    LargePage {
        /// Physical base (bits\[31:16\]).
        base: u32,
        /// Attributes (no domain, NS or PXN at this level).
        attrs: Attrs,
    },
    /// A 4 KiB small page (bit 1 = 1, XN in bit 0).
    SmallPage {
        /// Physical base (bits\[31:12\]).
        base: u32,
        /// Attributes (no domain, NS or PXN at this level).
        attrs: Attrs,
    },
}

impl L2Entry {
    /// The fault entry (all zero).
    pub const FAULT: L2Entry = L2Entry(0);

    /// Wrap raw bits.
    pub const fn from_bits(bits: u32) -> L2Entry {
        L2Entry(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// A 4 KiB small page mapping `phys` (bits\[11:0\] masked off).
    pub const fn small_page(phys: u32, mem: MemType, access: Access, exec: bool) -> L2Entry {
        Self::small_page_with(phys, &Attrs::new(mem, access, exec))
    }

    /// A 4 KiB small page with explicit attributes.
    pub const fn small_page_with(phys: u32, a: &Attrs) -> L2Entry {
        L2Entry(
            (phys & 0xFFFF_F000)
                | bit(a.xn, 0)
                | 0b10
                | bit(a.b, 2)
                | bit(a.c, 3)
                | (((a.ap & 0b11) as u32) << 4)
                | (((a.tex & 0b111) as u32) << 6)
                | bit(a.ap & 0b100 != 0, 9)
                | bit(a.s, 10)
                | bit(a.ng, 11),
        )
    }

    /// A 64 KiB large page mapping `phys` (bits\[15:0\] masked off). The entry must
    /// be written to 16 consecutive, 16-aligned L2 slots.
    pub const fn large_page(phys: u32, mem: MemType, access: Access, exec: bool) -> L2Entry {
        Self::large_page_with(phys, &Attrs::new(mem, access, exec))
    }

    /// A 64 KiB large page with explicit attributes.
    pub const fn large_page_with(phys: u32, a: &Attrs) -> L2Entry {
        L2Entry(
            (phys & 0xFFFF_0000)
                | 0b01
                | bit(a.b, 2)
                | bit(a.c, 3)
                | (((a.ap & 0b11) as u32) << 4)
                | bit(a.ap & 0b100 != 0, 9)
                | bit(a.s, 10)
                | bit(a.ng, 11)
                | (((a.tex & 0b111) as u32) << 12)
                | bit(a.xn, 15),
        )
    }

    /// True for the fault entry (bits\[1:0\] = 00).
    pub const fn is_fault(self) -> bool {
        self.0 & 0b11 == 0
    }

    /// Decode.
    pub const fn decode(self) -> L2Kind {
        let v = self.0;
        match v & 0b11 {
            0b00 => L2Kind::Fault,
            0b01 => L2Kind::LargePage {
                base: v & 0xFFFF_0000,
                attrs: l2_attrs(v, ((v >> 12) & 0b111) as u8, is_set(v, 15)),
            },
            _ => L2Kind::SmallPage {
                base: v & 0xFFFF_F000,
                attrs: l2_attrs(v, ((v >> 6) & 0b111) as u8, is_set(v, 0)),
            },
        }
    }

    /// Set or clear nG (not for fault entries).
    pub const fn with_ng(self, ng: bool) -> L2Entry {
        self.with_bit(11, ng)
    }

    /// Set or clear S (not for fault entries).
    pub const fn with_shareable(self, s: bool) -> L2Entry {
        self.with_bit(10, s)
    }

    const fn with_bit(self, n: u32, v: bool) -> L2Entry {
        if self.is_fault() {
            self
        } else {
            L2Entry((self.0 & !(1 << n)) | bit(v, n))
        }
    }
}

impl core::fmt::Debug for L2Entry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "L2Entry({:#010x}: {:?})", self.0, self.decode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_bits() {
        // Normal WBWA, kernel RW, XN, shareable, global, domain 0.
        let e = L1Entry::section(0x6010_0000, MemType::Memory, Access::KernelRw, false);
        let want = 0x6010_0000
            | (1 << 16)
            | (0b001 << 12)
            | (0b01 << 10)
            | (1 << 4)
            | (1 << 3)
            | (1 << 2)
            | 0b10;
        assert_eq!(e.bits(), want);
        assert_eq!(e.bits() & 0b11, 0b10);
        assert_eq!(e.bits() & (1 << 18), 0);
        // Executable, user RO: AP[2]=1 (bit 15), AP[1:0]=11, nG.
        let e = L1Entry::section(0x8000_0000, MemType::Memory, Access::UserRo, true);
        assert_eq!(e.bits() & (1 << 4), 0);
        assert_eq!((e.bits() >> 10) & 0b11, 0b11);
        assert_ne!(e.bits() & (1 << 15), 0);
        assert_ne!(e.bits() & (1 << 17), 0);
        // Device: TEX=001 C=0 B=0 (remap index 4), S=1.
        let e = L1Entry::section(0x1000_0000, MemType::Device, Access::KernelRw, false);
        assert_eq!(
            e.bits(),
            0x1000_0000 | (1 << 16) | (0b001 << 12) | (0b01 << 10) | (1 << 4) | 0b10
        );
        // Strongly ordered: TEX=000 C=0 B=0, S=0.
        let e = L1Entry::section(
            0x1000_0000,
            MemType::StronglyOrdered,
            Access::KernelRo,
            false,
        );
        assert_eq!(
            e.bits(),
            0x1000_0000 | (1 << 15) | (0b01 << 10) | (1 << 4) | 0b10
        );
        // Non-cacheable normal: TEX=000 C=0 B=1 (remap index 1), S=1.
        let e = L1Entry::section(0, MemType::MemoryNonCacheable, Access::KernelRw, true);
        assert_eq!(e.bits(), (1 << 16) | (0b01 << 10) | (1 << 2) | 0b10);
        // Domain bits[8:5], NS bit 19, PXN bit 0; low address bits are masked.
        let e = L1Entry::section(0x123f_ffff, MemType::Memory, Access::KernelRw, true)
            .with_domain(0xF)
            .with_ns(true)
            .with_pxn(true)
            .with_ng(true)
            .with_shareable(false);
        assert_eq!(e.bits() & 0xFFF0_0000, 0x1230_0000);
        assert_eq!((e.bits() >> 5) & 0xF, 0xF);
        assert_ne!(e.bits() & (1 << 19), 0);
        assert_eq!(e.bits() & 0b11, 0b11);
        assert_ne!(e.bits() & (1 << 17), 0);
        assert_eq!(e.bits() & (1 << 16), 0);
    }

    #[test]
    fn section_decode_roundtrip() {
        for mem in [
            MemType::Memory,
            MemType::MemoryNonCacheable,
            MemType::Device,
            MemType::StronglyOrdered,
        ] {
            for access in [
                Access::KernelRw,
                Access::KernelRo,
                Access::UserRw,
                Access::UserRo,
            ] {
                for exec in [false, true] {
                    let e = L1Entry::section(0xABC0_0000, mem, access, exec);
                    match e.decode() {
                        L1Kind::Section { base, attrs } => {
                            assert_eq!(base, 0xABC0_0000);
                            assert_eq!(attrs, Attrs::new(mem, access, exec));
                            assert_eq!(attrs.mem_type(), Some(mem));
                            assert_eq!(attrs.access(), Some(access));
                            assert_eq!(attrs.exec(), exec);
                        }
                        k => panic!("{k:?}"),
                    }
                    let p = L2Entry::small_page(0xABCD_E000, mem, access, exec);
                    match p.decode() {
                        L2Kind::SmallPage { base, attrs } => {
                            assert_eq!(base, 0xABCD_E000);
                            assert_eq!(attrs, Attrs::new(mem, access, exec));
                        }
                        k => panic!("{k:?}"),
                    }
                    let l = L2Entry::large_page(0xABCD_0000, mem, access, exec);
                    match l.decode() {
                        L2Kind::LargePage { base, attrs } => {
                            assert_eq!(base, 0xABCD_0000);
                            assert_eq!(attrs, Attrs::new(mem, access, exec));
                        }
                        k => panic!("{k:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn supersection_bits() {
        let e = L1Entry::supersection(0xA_B500_0000, MemType::Memory, Access::KernelRw, true);
        assert_eq!(e.bits() & 0b11, 0b10);
        assert_ne!(e.bits() & (1 << 18), 0);
        assert_eq!(e.bits() >> 24, 0xB5);
        assert_eq!((e.bits() >> 20) & 0xF, 0xA); // PA[35:32]
        assert_eq!((e.bits() >> 5) & 0xF, 0x0); // PA[39:36]
        let e = L1Entry::supersection(0xFF_0100_0000, MemType::Device, Access::KernelRw, false);
        assert_eq!((e.bits() >> 5) & 0xF, 0xF);
        match e.decode() {
            L1Kind::Supersection { base, attrs } => {
                assert_eq!(base, 0xFF_0100_0000);
                assert_eq!(attrs.mem_type(), Some(MemType::Device));
                assert!(!attrs.exec());
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn page_table_pointer_bits() {
        let e = L1Entry::page_table(0x6000_4c00, 3);
        assert_eq!(e.bits(), 0x6000_4c00 | (3 << 5) | 0b01);
        assert_eq!(
            e.decode(),
            L1Kind::PageTable {
                base: 0x6000_4c00,
                domain: 3,
                ns: false,
                pxn: false
            }
        );
        let e = e.with_ns(true).with_pxn(true);
        assert_eq!(e.bits() & 0b1100, 0b1100);
        assert_eq!(L1Entry::page_table(0x6000_4fff, 0).bits(), 0x6000_4c01);
        assert_eq!(L1Entry::FAULT.decode(), L1Kind::Fault);
        assert_eq!(L1Entry::from_bits(0xFFFF_FFFC).decode(), L1Kind::Fault);
    }

    #[test]
    fn small_page_bits() {
        let p = L2Entry::small_page(0x6000_1000, MemType::Memory, Access::KernelRw, false);
        // XN=bit0, bit1=1, B=2, C=3, AP[1:0]=5:4, TEX=8:6, AP2=9, S=10, nG=11.
        let want =
            0x6000_1000 | (1 << 10) | (0b001 << 6) | (0b01 << 4) | (1 << 3) | (1 << 2) | 0b10 | 1;
        assert_eq!(p.bits(), want);
        let p = L2Entry::small_page(0x1000_9000, MemType::Device, Access::UserRo, true);
        assert_eq!(
            p.bits(),
            0x1000_9000 | (1 << 11) | (1 << 10) | (1 << 9) | (0b001 << 6) | (0b11 << 4) | 0b10
        );
        assert_eq!(L2Entry::FAULT.decode(), L2Kind::Fault);
        // bits[1:0] = 11 is a small page with XN.
        assert!(matches!(
            L2Entry::from_bits(0x3).decode(),
            L2Kind::SmallPage {
                attrs: Attrs { xn: true, .. },
                ..
            }
        ));
    }

    #[test]
    fn large_page_bits() {
        let p = L2Entry::large_page(0x6001_0000, MemType::Memory, Access::KernelRw, false);
        // bits[1:0]=01, B=2, C=3, AP[1:0]=5:4, AP2=9, S=10, nG=11, TEX=14:12, XN=15.
        let want = 0x6001_0000
            | (1 << 15)
            | (0b001 << 12)
            | (1 << 10)
            | (0b01 << 4)
            | (1 << 3)
            | (1 << 2)
            | 0b01;
        assert_eq!(p.bits(), want);
        assert_eq!(p.bits() & 0b11, 0b01);
    }

    /// Every mapping kind (section, supersection, large and small page) of every
    /// memory type selects, through Linux's PRRR/NMRR, what the type promises.
    #[test]
    fn remapped_attributes_of_every_kind() {
        use crate::mmu::regs::{tex_remap, RemapType, NMRR, PRRR};
        let want = |m: MemType| match m {
            MemType::Memory => RemapType::Normal { inner: 1, outer: 1 },
            MemType::MemoryNonCacheable => RemapType::Normal { inner: 0, outer: 0 },
            MemType::Device => RemapType::Device,
            MemType::StronglyOrdered => RemapType::StronglyOrdered,
        };
        for mem in [
            MemType::Memory,
            MemType::MemoryNonCacheable,
            MemType::Device,
            MemType::StronglyOrdered,
        ] {
            let kinds = [
                match L1Entry::section(0x6000_0000, mem, Access::KernelRw, false).decode() {
                    L1Kind::Section { attrs, .. } => attrs,
                    k => panic!("{k:?}"),
                },
                match L1Entry::supersection(0x6000_0000, mem, Access::KernelRw, false).decode() {
                    L1Kind::Supersection { attrs, .. } => attrs,
                    k => panic!("{k:?}"),
                },
                match L2Entry::large_page(0x6000_0000, mem, Access::KernelRw, false).decode() {
                    L2Kind::LargePage { attrs, .. } => attrs,
                    k => panic!("{k:?}"),
                },
                match L2Entry::small_page(0x6000_0000, mem, Access::KernelRw, false).decode() {
                    L2Kind::SmallPage { attrs, .. } => attrs,
                    k => panic!("{k:?}"),
                },
            ];
            for a in kinds {
                assert_eq!(tex_remap(PRRR, NMRR, a.tex & 1 != 0, a.c, a.b), want(mem));
                // Normal memory and device memory shareable (PRRR NS1/DS1), SO not.
                assert_eq!(a.s, mem != MemType::StronglyOrdered, "{mem:?}");
                assert_eq!(a.mem_type(), Some(mem));
            }
        }
    }

    #[test]
    fn unknown_encodings_decode_to_none() {
        assert_eq!(MemType::from_tex_c_b(0b010, true, false), None);
        assert_eq!(Access::from_ap(0b000), None);
        assert_eq!(Access::from_ap(0b100), None);
        assert_eq!(Access::from_ap(0b010), None);
        assert_eq!(Access::from_ap(0b110), Some(Access::UserRo));
    }
}
