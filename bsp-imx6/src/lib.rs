//! # zonekit-bsp-imx6
//!
//! NXP i.MX6 boards as QEMU models them: `sabrelite` (i.MX6Quad) and `mcimx6ul-evk`
//! (i.MX6UltraLite), with the i.MX UART console. The board descriptions are the
//! `zonekit_arch_arm::board` constants (one table for all tools), re-exported here.
#![no_std]
#![warn(missing_docs)]

use zonekit_arch_arm::board::BoardDesc;
pub use zonekit_arch_arm::board::{MCIMX6UL_EVK, SABRELITE};

/// Every board of this BSP.
pub const BOARDS: [&BoardDesc; 2] = [&SABRELITE, &MCIMX6UL_EVK];

/// `UTXD`: transmitter register offset.
pub const UTXD: usize = 0x40;
/// `UCR2`: control register 2 offset.
pub const UCR2: usize = 0x84;
/// `UCR2.SRST`: software reset, active low (writing 0 resets the UART).
pub const UCR2_SRST: u32 = 1 << 0;
/// `UCR2.TXEN`: transmitter enable.
pub const UCR2_TXEN: u32 = 1 << 2;
/// `UTS`: test register offset.
pub const UTS: usize = 0xB4;
/// `UTS.TXFULL`: transmit FIFO full.
pub const UTS_TXFULL: u32 = 1 << 4;

/// An i.MX UART used for output only.
#[derive(Debug)]
pub struct ImxUart {
    base: usize,
}

impl ImxUart {
    /// A driver for the i.MX UART at physical address `base` (MMU off).
    pub const fn new(base: usize) -> Self {
        Self { base }
    }

    /// The register block's address.
    pub const fn base(&self) -> usize {
        self.base
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl zonekit_arch_arm::board::Console for ImxUart {
    fn putc(&self, byte: u8) {
        let ucr2 = (self.base + UCR2) as *mut u32;
        let uts = (self.base + UTS) as *const u32;
        let utxd = (self.base + UTXD) as *mut u32;
        // SAFETY: `base` is the board's UART (a BoardDesc constant), reached through
        // identity addressing with the MMU off; all registers are 32-bit MMIO.
        unsafe {
            let ctrl = core::ptr::read_volatile(ucr2);
            if ctrl & UCR2_TXEN == 0 {
                // Keep SRST set: writing it clear would reset the UART.
                core::ptr::write_volatile(ucr2, ctrl | UCR2_TXEN | UCR2_SRST);
            }
            while core::ptr::read_volatile(uts) & UTS_TXFULL != 0 {}
            core::ptr::write_volatile(utxd, u32::from(byte));
        }
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl core::fmt::Write for ImxUart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        zonekit_arch_arm::board::Console::puts(self, s);
        Ok(())
    }
}

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests {
    use super::*;
    use zonekit_arch_arm::board::UartKind;

    #[test]
    fn build_script_uses_the_same_ram_bases() {
        // The linker scripts come from the shared generator, which links each board
        // of this package at `BoardDesc::load_address()` of the same BOARDS table.
        let build_rs = include_str!("../build.rs");
        assert!(build_rs.contains("zonekit_arch_arm::link::emit_linker_scripts()"));
        for b in BOARDS {
            assert_eq!(b.package, "zonekit-bsp-imx6", "{}", b.name);
        }
    }

    #[test]
    fn boards_are_consistent() {
        for b in BOARDS {
            assert_eq!(b.load_address(), b.ram_base + 0x1_0000);
            assert!(b.ram_base + b.max_ram <= 1 << 32);
            assert!(b.default_ram <= b.max_ram);
            assert_eq!(b.uart_kind, UartKind::Imx);
        }
        const { assert!(MCIMX6UL_EVK.starts_in_hyp) };
        assert_eq!(ImxUart::new(0x0202_0000).base(), 0x0202_0000);
    }
}
