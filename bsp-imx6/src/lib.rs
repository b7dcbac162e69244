//! # zonekit-bsp-imx6
//!
//! NXP i.MX6 boards as QEMU models them: `sabrelite` (i.MX6Quad) and `mcimx6ul-evk`
//! (i.MX6UltraLite), with the i.MX UART console. The board descriptions are the
//! `zonekit_arch_arm::board` constants (one table for all tools), re-exported here.
#![no_std]
#![deny(missing_docs)]

use zonekit_arch_arm::board::BoardDesc;
pub use zonekit_arch_arm::board::{MCIMX6UL_EVK, SABRELITE};
use zonekit_arch_arm::mmio::{Mmio, RegisterIo};
pub use zonekit_arch_arm::timer::{A9GlobalTimer, GenericTimer};

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

/// `UTS.TXEMPTY`: transmit buffer empty (everything sent).
pub const UTS_TXEMPTY: u32 = 1 << 6;

/// An i.MX UART used for output only (Linux: `drivers/tty/serial/imx.c`,
/// `imx_uart_console_putchar`). Generic over its registers so that it can be tested
/// on the host; boards use [`ImxUart::new`] (memory-mapped registers).
///
/// It is a [`Console`](zonekit_arch_arm::board::Console) (text, `\n` → `\r\n`), a
/// [`core::fmt::Write`] and an [`embedded_io::Write`] (raw bytes).
#[derive(Debug)]
pub struct ImxUart<R = Mmio> {
    regs: R,
}

impl ImxUart<Mmio> {
    /// A driver for the i.MX UART at physical address `base` (MMU off).
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

impl<R: RegisterIo> ImxUart<R> {
    /// A driver on any register block (a fake one in host tests).
    pub const fn with_registers(regs: R) -> Self {
        Self { regs }
    }

    /// The driver's registers.
    pub fn registers(&self) -> &R {
        &self.regs
    }

    /// Enable the transmitter if it is off, wait until the FIFO has room, then send
    /// `byte`.
    pub fn write_byte(&self, byte: u8) {
        let ctrl = self.regs.read32(UCR2);
        if ctrl & UCR2_TXEN == 0 {
            // Keep SRST set: writing it clear would reset the UART.
            self.regs.write32(UCR2, ctrl | UCR2_TXEN | UCR2_SRST);
        }
        while self.regs.read32(UTS) & UTS_TXFULL != 0 {}
        self.regs.write32(UTXD, u32::from(byte));
    }

    /// Wait until every byte has left the UART.
    pub fn flush(&self) {
        while self.regs.read32(UTS) & UTS_TXEMPTY == 0 {}
    }
}

impl<R: RegisterIo> zonekit_arch_arm::board::Console for ImxUart<R> {
    fn putc(&self, byte: u8) {
        self.write_byte(byte);
    }

    unsafe fn remap(&self, base: usize) {
        // SAFETY: the caller's contract (the UART is mapped at `base`) is the
        // register block's.
        unsafe { self.regs.remap(base) };
    }
}

impl<R: RegisterIo> core::fmt::Write for ImxUart<R> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        zonekit_arch_arm::board::Console::puts(self, s);
        Ok(())
    }
}

impl<R> embedded_io::ErrorType for ImxUart<R> {
    type Error = core::convert::Infallible;
}

impl<R: RegisterIo> embedded_io::Write for ImxUart<R> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        buf.iter().for_each(|&b| self.write_byte(b));
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        ImxUart::flush(self);
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
            assert_eq!(b.uart_kind, UartKind::Imx);
        }
        const { assert!(MCIMX6UL_EVK.starts_in_hyp) };
        // SAFETY: the handle is never used to reach a register on the host.
        assert_eq!(unsafe { ImxUart::new(0x0202_0000) }.base(), 0x0202_0000);
    }

    #[test]
    fn imx_uart_enables_tx_keeps_srst_and_writes_bytes() {
        use core::fmt::Write as _;
        use zonekit_arch_arm::mmio::fake::FakeRegisters;
        let regs = FakeRegisters::new();
        regs.set(UCR2, 0); // transmitter off
        regs.set(UTS, 0x60); // QEMU's preset: TXEMPTY | RXEMPTY
        regs.read_as(UTS, UTS_TXFULL, 2);
        let mut uart = ImxUart::with_registers(&regs);
        embedded_io::Write::write_all(&mut uart, b"ok").unwrap();
        embedded_io::Write::flush(&mut uart).unwrap();
        uart.write_str("\n").unwrap();
        assert_eq!(regs.written_to(UCR2), [UCR2_TXEN | UCR2_SRST]);
        assert_eq!(
            regs.written_to(UTXD),
            [b'o', b'k', b'\r', b'\n'].map(u32::from)
        );
    }
}
