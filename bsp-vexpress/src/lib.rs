//! # zonekit-bsp-vexpress
//!
//! Arm Versatile Express boards as QEMU models them: `vexpress-a9` (CoreTile A9x4) and
//! `vexpress-a15` (CoreTile A15x2, "RS1" memory map), with their PL011 console. The
//! board descriptions are the `zonekit_arch_arm::board` constants (one table for all
//! tools), re-exported here.
#![no_std]
#![warn(missing_docs)]

use zonekit_arch_arm::board::BoardDesc;
pub use zonekit_arch_arm::board::{VEXPRESS_A15, VEXPRESS_A9};

/// Every board of this BSP.
pub const BOARDS: [&BoardDesc; 2] = [&VEXPRESS_A9, &VEXPRESS_A15];

/// PL011 UART data register offset.
pub const UARTDR: usize = 0x00;
/// PL011 flag register offset.
pub const UARTFR: usize = 0x18;
/// `UARTFR.TXFF`: transmit FIFO full.
pub const UARTFR_TXFF: u32 = 1 << 5;

/// An Arm PL011 UART used for output only.
#[derive(Debug)]
pub struct Pl011 {
    base: usize,
}

impl Pl011 {
    /// A driver for the PL011 at physical address `base` (MMU off).
    pub const fn new(base: usize) -> Self {
        Self { base }
    }

    /// The register block's address.
    pub const fn base(&self) -> usize {
        self.base
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl zonekit_arch_arm::board::Console for Pl011 {
    fn putc(&self, byte: u8) {
        let fr = (self.base + UARTFR) as *const u32;
        let dr = (self.base + UARTDR) as *mut u32;
        // SAFETY: `base` is the board's PL011 (a BoardDesc constant), reached through
        // identity addressing with the MMU off; FR and DR are 32-bit MMIO registers.
        unsafe {
            while core::ptr::read_volatile(fr) & UARTFR_TXFF != 0 {}
            core::ptr::write_volatile(dr, u32::from(byte));
        }
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl core::fmt::Write for Pl011 {
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
            assert_eq!(b.package, "zonekit-bsp-vexpress", "{}", b.name);
        }
    }

    #[test]
    fn boards_are_consistent() {
        for b in BOARDS {
            assert_eq!(b.load_address(), b.ram_base + 0x1_0000);
            assert!(b.ram_base + b.max_ram <= 1 << 32);
            assert!(b.default_ram <= b.max_ram);
            assert_eq!(b.uart_kind, UartKind::Pl011);
        }
        assert_eq!(Pl011::new(0x1000_9000).base(), 0x1000_9000);
    }
}
