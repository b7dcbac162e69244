//! # zonekit-bsp-vexpress
//!
//! Arm Versatile Express boards as QEMU models them: `vexpress-a9` (CoreTile A9x4) and
//! `vexpress-a15` (CoreTile A15x2, "RS1" memory map), with their PL011 console. The
//! board descriptions are the `zonekit_arch_arm::board` constants (one table for all
//! tools), re-exported here.
#![no_std]
#![warn(missing_docs)]

use core::sync::atomic::{AtomicUsize, Ordering};

use zonekit_arch_arm::board::BoardDesc;
pub use zonekit_arch_arm::board::{VEXPRESS_A15, VEXPRESS_A9};
pub use zonekit_arch_arm::timer::{A9GlobalTimer, GenericTimer};

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
    base: AtomicUsize,
}

impl Pl011 {
    /// A driver for the PL011 at physical address `base` (MMU off).
    pub const fn new(base: usize) -> Self {
        Self {
            base: AtomicUsize::new(base),
        }
    }

    /// The register block's address.
    pub fn base(&self) -> usize {
        self.base.load(Ordering::Relaxed)
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl zonekit_arch_arm::board::Console for Pl011 {
    fn remap(&self, base: usize) {
        self.base.store(base, Ordering::Relaxed);
    }

    fn putc(&self, byte: u8) {
        let base = self.base();
        let fr = (base + UARTFR) as *const u32;
        let dr = (base + UARTDR) as *mut u32;
        // SAFETY: `base` is the board's PL011 (a BoardDesc constant), reached through
        // identity addressing with the MMU off, or at the device-window address
        // `remap` installed once the MMU is on; FR and DR are 32-bit MMIO registers.
        unsafe {
            while core::ptr::read_volatile(fr) & UARTFR_TXFF != 0 {}
            core::ptr::write_volatile(dr, u32::from(byte));
        }
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl embedded_io::ErrorType for Pl011 {
    type Error = core::convert::Infallible;
}

/// Raw bytes, no newline translation; blocks until the FIFO takes each byte.
#[cfg(all(target_arch = "arm", target_os = "none"))]
impl embedded_io::Write for Pl011 {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            zonekit_arch_arm::board::Console::putc(self, b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
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
        // build.rs writes one script per board of this package from the shared
        // board table, linked at the board's load address.
        let build_rs = include_str!("../build.rs");
        assert!(build_rs.contains("emit_linker_scripts()"));
        for b in BOARDS {
            assert_eq!(b.package, env!("CARGO_PKG_NAME"), "{}", b.name);
            let mut script = std::string::String::new();
            zonekit_arch_arm::link::write_linker_script(&mut script, b.load_address()).unwrap();
            let at = std::format!("{:#x}", b.load_address());
            assert!(script.contains(&at), "{}: script lacks {at}", b.name);
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
