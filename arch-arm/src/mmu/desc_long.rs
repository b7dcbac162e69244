//! ARMv7-A long-descriptor (LPAE) translation table entries (ARM ARM B3.6), the
//! format of Linux's `CONFIG_ARM_LPAE` (`pgtable-3level-hwdef.h`).
//!
//! Three levels, 64-bit entries, 40-bit physical addresses: a first-level entry
//! covers 1 GiB ([`LongL1Entry`]: block or table), a second-level one 2 MiB
//! ([`LongL2Entry`]: block or table), a third-level one 4 KiB ([`LongL3Entry`]: page).
//! As with the short descriptors ([`super::desc`]) the level is in the type, so an
//! entry cannot be decoded with another level's rules.
//!
//! Memory types are MAIR indices (AttrIndx\[2:0\], Linux's `L_PTE_MT_*` with
//! [`super::regs::MAIR0`]/[`super::regs::MAIR1`] as `proc-v7-3level.S`), the access
//! flag is always set (the long format has no AFE = 0 mode: AF = 0 faults), normal
//! and device memory are inner shareable (SH = 11) as Linux sets `L_PTE_SHARED` on
//! SMP, access permissions are AP\[2:1\].
//!
//! ```compile_fail
//! use zonekit_arch_arm::mmu::desc_long::{LongL1Entry, LongL3Entry};
//! let e: LongL1Entry = LongL3Entry::FAULT;
//! ```
//!
//! Linux counterpart: `arch/arm/include/asm/pgtable-3level-hwdef.h`, `pgtable-3level.h`.

use super::desc::{Access, MemType};

/// Output address bits \[39:12\] of a long descriptor.
const OA_MASK: u64 = 0x0000_00FF_FFFF_F000;

/// Shareability (SH\[1:0\], bits\[9:8\]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shareability {
    /// SH = 00.
    NonShareable,
    /// SH = 10.
    OuterShareable,
    /// SH = 11 (Linux's `L_PTE_SHARED` / `PMD_SECT_S`).
    InnerShareable,
}

impl Shareability {
    const fn bits(self) -> u64 {
        match self {
            Shareability::NonShareable => 0b00,
            Shareability::OuterShareable => 0b10,
            Shareability::InnerShareable => 0b11,
        }
    }

    /// Decode SH (the reserved 01 reads as non-shareable).
    const fn from_bits(sh: u64) -> Shareability {
        match sh & 0b11 {
            0b10 => Shareability::OuterShareable,
            0b11 => Shareability::InnerShareable,
            _ => Shareability::NonShareable,
        }
    }
}

impl MemType {
    /// The MAIR index (AttrIndx) of this type, Linux's LPAE `L_PTE_MT_*`:
    /// `UNCACHED` 0, `BUFFERABLE` 1, `DEV_SHARED` 4, `WRITEALLOC` 7.
    pub const fn attr_index(self) -> u8 {
        match self {
            MemType::StronglyOrdered => 0,
            MemType::MemoryNonCacheable => 1,
            MemType::Device => 4,
            MemType::Memory => 7,
        }
    }

    /// The type of a MAIR index zonekit writes (`None` for 2, 3, 5, 6).
    pub const fn from_attr_index(index: u8) -> Option<MemType> {
        match index & 0b111 {
            0 => Some(MemType::StronglyOrdered),
            1 => Some(MemType::MemoryNonCacheable),
            4 => Some(MemType::Device),
            7 => Some(MemType::Memory),
            _ => None,
        }
    }

    /// Linux's shareability for this type on SMP: inner shareable except
    /// strongly-ordered (`MT_UNCACHED` has no `L_PTE_SHARED`).
    pub const fn long_shareability(self) -> Shareability {
        match self {
            MemType::StronglyOrdered => Shareability::NonShareable,
            _ => Shareability::InnerShareable,
        }
    }
}

impl Access {
    /// AP\[2:1\] of the long format (AP\[2\] read-only in bit 1, AP\[1\] PL0 access in
    /// bit 0).
    pub const fn ap_long(self) -> u8 {
        match self {
            Access::KernelRw => 0b00,
            Access::UserRw => 0b01,
            Access::KernelRo => 0b10,
            Access::UserRo => 0b11,
        }
    }

    /// Decode AP\[2:1\].
    pub const fn from_ap_long(ap: u8) -> Access {
        match ap & 0b11 {
            0b00 => Access::KernelRw,
            0b01 => Access::UserRw,
            0b10 => Access::KernelRo,
            _ => Access::UserRo,
        }
    }
}

/// The lower and upper attributes of a long-descriptor block or page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LongAttrs {
    /// AttrIndx\[2:0\]: the MAIR index.
    pub attr_index: u8,
    /// Non-secure (bit 5).
    pub ns: bool,
    /// AP\[2:1\] (bits\[7:6\]).
    pub ap: u8,
    /// SH\[1:0\] (bits\[9:8\]).
    pub sh: Shareability,
    /// Access flag (bit 10).
    pub af: bool,
    /// Not-global (bit 11).
    pub ng: bool,
    /// Contiguous hint (bit 52).
    pub contiguous: bool,
    /// Privileged execute-never (bit 53).
    pub pxn: bool,
    /// Execute-never (bit 54).
    pub xn: bool,
}

impl LongAttrs {
    /// zonekit's attributes for `mem`/`access`/`exec`: the type's MAIR index and
    /// shareability, AF set, global for kernel permissions, XN unless `exec`.
    pub const fn new(mem: MemType, access: Access, exec: bool) -> LongAttrs {
        LongAttrs {
            attr_index: mem.attr_index(),
            ns: false,
            ap: access.ap_long(),
            sh: mem.long_shareability(),
            af: true,
            ng: access.is_user(),
            contiguous: false,
            pxn: false,
            xn: !exec,
        }
    }

    /// The memory type, if the index is one zonekit writes.
    pub const fn mem_type(&self) -> Option<MemType> {
        MemType::from_attr_index(self.attr_index)
    }

    /// The access permissions.
    pub const fn access(&self) -> Access {
        Access::from_ap_long(self.ap)
    }

    /// True unless execute-never.
    pub const fn exec(&self) -> bool {
        !self.xn
    }

    const fn bits(&self) -> u64 {
        (((self.attr_index & 0b111) as u64) << 2)
            | ((self.ns as u64) << 5)
            | (((self.ap & 0b11) as u64) << 6)
            | (self.sh.bits() << 8)
            | ((self.af as u64) << 10)
            | ((self.ng as u64) << 11)
            | ((self.contiguous as u64) << 52)
            | ((self.pxn as u64) << 53)
            | ((self.xn as u64) << 54)
    }

    const fn from_bits(v: u64) -> LongAttrs {
        LongAttrs {
            attr_index: ((v >> 2) & 0b111) as u8,
            ns: v & (1 << 5) != 0,
            ap: ((v >> 6) & 0b11) as u8,
            sh: Shareability::from_bits(v >> 8),
            af: v & (1 << 10) != 0,
            ng: v & (1 << 11) != 0,
            contiguous: v & (1 << 52) != 0,
            pxn: v & (1 << 53) != 0,
            xn: v & (1 << 54) != 0,
        }
    }
}

/// What a first- or second-level long descriptor describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LongKind {
    /// Invalid (bit 0 clear).
    Fault,
    /// A pointer to the next-level table (bits\[1:0\] = 11).
    Table {
        /// Physical base of the 4 KiB next-level table (bits\[39:12\]).
        base: u64,
    },
    /// A 1 GiB (first level) or 2 MiB (second level) block (bits\[1:0\] = 01).
    Block {
        /// Physical base of the block.
        base: u64,
        /// Attributes.
        attrs: LongAttrs,
    },
}

/// What a third-level long descriptor describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LongPageKind {
    /// Invalid (bits\[1:0\] other than 11: 01 is reserved at this level and faults).
    Fault,
    /// A 4 KiB page (bits\[1:0\] = 11).
    Page {
        /// Physical base (bits\[39:12\]).
        base: u64,
        /// Attributes.
        attrs: LongAttrs,
    },
}

macro_rules! table_level {
    ($(#[$doc:meta])* $name:ident, $block_bytes:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            /// The invalid entry (all zero).
            pub const FAULT: $name = $name(0);
            /// Bytes a block entry of this level maps.
            pub const BLOCK_BYTES: u64 = $block_bytes;

            /// Wrap raw bits.
            pub const fn from_bits(bits: u64) -> $name {
                $name(bits)
            }

            /// The raw bits.
            pub const fn bits(self) -> u64 {
                self.0
            }

            /// A pointer to the next-level table at `phys` (bits outside \[39:12\]
            /// masked off).
            pub const fn table(phys: u64) -> $name {
                $name((phys & OA_MASK) | 0b11)
            }

            /// A block mapping `phys` (bits below the block size and above 40
            /// masked off) with zonekit's attributes for `mem`, `access`, `exec`.
            pub const fn block(phys: u64, mem: MemType, access: Access, exec: bool) -> $name {
                Self::block_with(phys, &LongAttrs::new(mem, access, exec))
            }

            /// A block with explicit attributes.
            pub const fn block_with(phys: u64, attrs: &LongAttrs) -> $name {
                $name((phys & OA_MASK & !($block_bytes - 1)) | attrs.bits() | 0b01)
            }

            /// True for an invalid entry.
            pub const fn is_fault(self) -> bool {
                self.0 & 1 == 0
            }

            /// Decode.
            pub const fn decode(self) -> LongKind {
                match self.0 & 0b11 {
                    0b11 => LongKind::Table {
                        base: self.0 & OA_MASK,
                    },
                    0b01 => LongKind::Block {
                        base: self.0 & OA_MASK & !($block_bytes - 1),
                        attrs: LongAttrs::from_bits(self.0),
                    },
                    _ => LongKind::Fault,
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}({:#018x}: {:?})", stringify!($name), self.0, self.decode())
            }
        }
    };
}

table_level!(
    /// A first-level long descriptor (Linux's `pgd`/`pud`): one of the 4 entries
    /// covering 1 GiB each of the 4 GiB input range (TTBCR.T0SZ = 0).
    LongL1Entry,
    1 << 30
);

table_level!(
    /// A second-level long descriptor (Linux's `pmd`): one of 512 entries of a 4 KiB
    /// table, covering 2 MiB each.
    LongL2Entry,
    1 << 21
);

/// A third-level long descriptor (Linux's `pte`): one of 512 entries of a 4 KiB
/// table, mapping 4 KiB each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct LongL3Entry(u64);

impl LongL3Entry {
    /// The invalid entry (all zero).
    pub const FAULT: LongL3Entry = LongL3Entry(0);

    /// Wrap raw bits.
    pub const fn from_bits(bits: u64) -> LongL3Entry {
        LongL3Entry(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// A 4 KiB page mapping the 40-bit `phys` with zonekit's attributes.
    pub const fn page(phys: u64, mem: MemType, access: Access, exec: bool) -> LongL3Entry {
        Self::page_with(phys, &LongAttrs::new(mem, access, exec))
    }

    /// A 4 KiB page with explicit attributes.
    pub const fn page_with(phys: u64, attrs: &LongAttrs) -> LongL3Entry {
        LongL3Entry((phys & OA_MASK) | attrs.bits() | 0b11)
    }

    /// True unless a page (bits\[1:0\] = 11).
    pub const fn is_fault(self) -> bool {
        self.0 & 0b11 != 0b11
    }

    /// Decode.
    pub const fn decode(self) -> LongPageKind {
        if self.is_fault() {
            LongPageKind::Fault
        } else {
            LongPageKind::Page {
                base: self.0 & OA_MASK,
                attrs: LongAttrs::from_bits(self.0),
            }
        }
    }
}

impl core::fmt::Debug for LongL3Entry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "LongL3Entry({:#018x}: {:?})", self.0, self.decode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmu::regs::{mair_attr, MAIR0, MAIR1};

    const TYPES: [MemType; 4] = [
        MemType::Memory,
        MemType::MemoryNonCacheable,
        MemType::Device,
        MemType::StronglyOrdered,
    ];
    const ACCESS: [Access; 4] = [
        Access::KernelRw,
        Access::KernelRo,
        Access::UserRw,
        Access::UserRo,
    ];

    #[test]
    fn block_and_page_bits() {
        // Normal WBWA (index 7), kernel RW, XN, inner shareable, AF, global.
        let want_attrs = (7 << 2) | (0b11 << 8) | (1 << 10) | (1 << 54);
        let e = LongL2Entry::block(0x2_8020_0000, MemType::Memory, Access::KernelRw, false);
        assert_eq!(e.bits(), 0x2_8020_0000 | want_attrs | 0b01);
        let e = LongL1Entry::block(0x1_4000_0000, MemType::Memory, Access::KernelRw, false);
        assert_eq!(e.bits(), 0x1_4000_0000 | want_attrs | 0b01);
        let p = LongL3Entry::page(0xFF_FFFF_F000, MemType::Memory, Access::KernelRw, false);
        assert_eq!(p.bits(), 0xFF_FFFF_F000 | want_attrs | 0b11);
        // Device (index 4), user RO (AP[2:1] = 11), nG, executable.
        let p = LongL3Entry::page(0x1C09_0000, MemType::Device, Access::UserRo, true);
        assert_eq!(
            p.bits(),
            0x1C09_0000 | (4 << 2) | (0b11 << 6) | (0b11 << 8) | (1 << 10) | (1 << 11) | 0b11
        );
        // Strongly ordered: index 0, non-shareable.
        let e = LongL2Entry::block(0, MemType::StronglyOrdered, Access::KernelRo, false);
        assert_eq!(e.bits(), (0b10 << 6) | (1 << 10) | (1 << 54) | 0b01);
        // Address bits below the block and above 40 are masked off.
        let e = LongL2Entry::block(!0, MemType::Memory, Access::KernelRw, true);
        assert_eq!(e.bits() & 0xFFFF_FF00_001F_F000, 0);
        let e = LongL1Entry::block(0xFF_FFFF_FFFF, MemType::Memory, Access::KernelRw, true);
        assert_eq!(e.bits() & OA_MASK, 0xFF_C000_0000);
    }

    #[test]
    fn table_pointers_and_faults() {
        let t = LongL1Entry::table(0x8000_5000);
        assert_eq!(t.bits(), 0x8000_5003);
        assert_eq!(t.decode(), LongKind::Table { base: 0x8000_5000 });
        assert_eq!(LongL2Entry::table(0x3_0000_1fff).bits(), 0x3_0000_1003);
        assert_eq!(LongL1Entry::FAULT.decode(), LongKind::Fault);
        assert_eq!(LongL2Entry::from_bits(0b10).decode(), LongKind::Fault);
        // At the third level 01 is reserved: it faults.
        assert_eq!(
            LongL3Entry::from_bits(0x1000 | 0b01).decode(),
            LongPageKind::Fault
        );
        assert!(LongL3Entry::FAULT.is_fault());
    }

    /// Every mapping kind (1 GiB block, 2 MiB block, 4 KiB page) of every memory type
    /// and permission round-trips, and its index selects in Linux's MAIR what the
    /// type promises.
    #[test]
    fn attributes_of_every_kind() {
        let want_mair = |m: MemType| match m {
            MemType::Memory => 0xFF,             // inner/outer WBWA
            MemType::MemoryNonCacheable => 0x44, // inner/outer non-cacheable
            MemType::Device => 0x04,             // Device (nGnRE)
            MemType::StronglyOrdered => 0x00,    // Strongly-ordered
        };
        for mem in TYPES {
            for access in ACCESS {
                for exec in [false, true] {
                    let want = LongAttrs::new(mem, access, exec);
                    let l1 = LongL1Entry::block(0x1_4000_0000, mem, access, exec).decode();
                    assert_eq!(
                        l1,
                        LongKind::Block {
                            base: 0x1_4000_0000,
                            attrs: want
                        }
                    );
                    let l2 = LongL2Entry::block(0x2_8020_0000, mem, access, exec).decode();
                    assert_eq!(
                        l2,
                        LongKind::Block {
                            base: 0x2_8020_0000,
                            attrs: want
                        }
                    );
                    let l3 = LongL3Entry::page(0x2_7FFF_F000, mem, access, exec).decode();
                    assert_eq!(
                        l3,
                        LongPageKind::Page {
                            base: 0x2_7FFF_F000,
                            attrs: want
                        }
                    );
                    assert_eq!(want.mem_type(), Some(mem));
                    assert_eq!(want.access(), access);
                    assert_eq!(want.exec(), exec);
                    assert!(want.af);
                    assert_eq!(mair_attr(MAIR0, MAIR1, want.attr_index), want_mair(mem));
                    let shared = mem != MemType::StronglyOrdered;
                    assert_eq!(want.sh == Shareability::InnerShareable, shared);
                }
            }
        }
        assert_eq!(MemType::from_attr_index(2), None);
        assert_eq!(MemType::from_attr_index(5), None);
    }
}
