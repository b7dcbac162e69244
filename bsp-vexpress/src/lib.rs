//! # zonekit-bsp-vexpress
//!
//! Arm Versatile Express boards as QEMU models them: `vexpress-a9` (CoreTile A9x4) and
//! `vexpress-a15` (CoreTile A15x2, "RS1" memory map), with their PL011 console. The
//! board descriptions are the `zonekit_arch_arm::board` constants (one table for all
//! tools), re-exported here.
#![no_std]
#![deny(missing_docs)]

use zonekit_arch_arm::board::BoardDesc;
pub use zonekit_arch_arm::board::{VEXPRESS_A15, VEXPRESS_A9};
use zonekit_arch_arm::mmio::{Mmio, RegisterIo};
pub use zonekit_arch_arm::timer::{A9GlobalTimer, GenericTimer};

/// Every board of this BSP.
pub const BOARDS: [&BoardDesc; 2] = [&VEXPRESS_A9, &VEXPRESS_A15];

/// PL011 UART data register offset.
pub const UARTDR: usize = 0x00;
/// PL011 flag register offset.
pub const UARTFR: usize = 0x18;
/// `UARTFR.TXFF`: transmit FIFO full.
pub const UARTFR_TXFF: u32 = 1 << 5;

/// `UARTFR.BUSY`: the UART is still sending.
pub const UARTFR_BUSY: u32 = 1 << 3;

/// An Arm PL011 UART used for output only (Linux: `drivers/tty/serial/amba-pl011.c`,
/// `pl011_putc` of its early console). Generic over its registers so that it can be
/// tested on the host; boards use [`Pl011::new`] (memory-mapped registers).
///
/// It is a [`Console`](zonekit_arch_arm::board::Console) (text, `\n` → `\r\n`), a
/// [`core::fmt::Write`] and an [`embedded_io::Write`] (raw bytes).
#[derive(Debug)]
pub struct Pl011<R = Mmio> {
    regs: R,
}

impl Pl011<Mmio> {
    /// A driver for the PL011 at physical address `base` (MMU off).
    ///
    /// # Safety
    ///
    /// `base` must be this UART's register block on the running board, reachable at
    /// that address with the MMU off, and no other driver may use the same UART.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            // SAFETY: the caller's contract is `Mmio::new`'s.
            regs: unsafe { Mmio::new(base) },
        }
    }

    /// The register block's address.
    pub fn base(&self) -> usize {
        self.regs.base()
    }
}

impl<R: RegisterIo> Pl011<R> {
    /// A driver on any register block (a fake one in host tests).
    pub const fn with_registers(regs: R) -> Self {
        Self { regs }
    }

    /// The driver's registers.
    pub fn registers(&self) -> &R {
        &self.regs
    }

    /// Wait until the transmit FIFO has room, then send `byte`.
    pub fn write_byte(&self, byte: u8) {
        while self.regs.read32(UARTFR) & UARTFR_TXFF != 0 {}
        self.regs.write32(UARTDR, u32::from(byte));
    }

    /// Wait until every byte has left the UART.
    pub fn flush(&self) {
        while self.regs.read32(UARTFR) & UARTFR_BUSY != 0 {}
    }
}

impl<R: RegisterIo> zonekit_arch_arm::board::Console for Pl011<R> {
    fn putc(&self, byte: u8) {
        self.write_byte(byte);
    }

    unsafe fn remap(&self, base: usize) {
        // SAFETY: the caller's contract (the UART is mapped at `base`) is the
        // register block's.
        unsafe { self.regs.remap(base) };
    }
}

impl<R: RegisterIo> core::fmt::Write for Pl011<R> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        zonekit_arch_arm::board::Console::puts(self, s);
        Ok(())
    }
}

impl<R> embedded_io::ErrorType for Pl011<R> {
    type Error = core::convert::Infallible;
}

impl<R: RegisterIo> embedded_io::Write for Pl011<R> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        buf.iter().for_each(|&b| self.write_byte(b));
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Pl011::flush(self);
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
    fn build_script_links_every_board_of_this_package() {
        // build.rs writes one script per board whose `package` is this crate.
        assert!(include_str!("../build.rs").contains("emit_linker_scripts()"));
        for b in BOARDS {
            assert_eq!(b.package, env!("CARGO_PKG_NAME"), "{}", b.name);
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
        // SAFETY: the handle is never used to reach a register on the host.
        assert_eq!(unsafe { Pl011::new(0x1000_9000) }.base(), 0x1000_9000);
    }

    #[test]
    fn pl011_waits_for_room_and_writes_bytes() {
        use core::fmt::Write as _;
        use zonekit_arch_arm::mmio::fake::FakeRegisters;
        let regs = FakeRegisters::new();
        regs.set(UARTFR, 0x90); // QEMU's reset value: TX and RX FIFOs empty.
        regs.read_as(UARTFR, UARTFR_TXFF, 3); // full for three polls
        let mut uart = Pl011::with_registers(&regs);
        embedded_io::Write::write_all(&mut uart, b"hi\n").unwrap();
        embedded_io::Write::flush(&mut uart).unwrap();
        write!(uart, "a\nb").unwrap();
        assert_eq!(
            regs.written_to(UARTDR),
            [b'h', b'i', b'\n', b'a', b'\r', b'\n', b'b'].map(u32::from)
        );
        assert_eq!(regs.writes().len(), 7, "only DR is written");
        // 3 polls while full, one per byte, one for flush.
        assert_eq!(regs.reads(), 3 + 7 + 1);
    }
}
