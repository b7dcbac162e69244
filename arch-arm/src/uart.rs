//! What a UART console driver writes, and what it gets for it.
//!
//! A board's UART driver implements [`Uart`]: send one byte, wait until every byte
//! has gone, and name its register block. It then is a [`Console`] (text with `\n`
//! → `\r\n`, moved into the device window when the MMU comes on), and one
//! [`uart_io!`](crate::uart_io) line makes it a [`core::fmt::Write`] and an
//! [`embedded_io::Write`] (raw bytes). A porter writes the device's own sequence and
//! nothing else.
//!
//! Linux counterpart: an early console's `putc` (`earlycon` drivers, e.g.
//! `pl011_putc`) and the `uart_console_write` wrapper around it.

use crate::board::Console;
use crate::mmio::RegisterIo;

#[doc(hidden)]
pub use embedded_io as __embedded_io;

/// A UART used for output: the part a driver writes.
pub trait Uart: Sync {
    /// The register block type (memory-mapped on a board, fake in host tests).
    type Regs: RegisterIo;

    /// The driver's registers.
    fn regs(&self) -> &Self::Regs;

    /// Wait until the device accepts a byte, then send `byte`.
    fn write_byte(&self, byte: u8);

    /// Wait until every byte has left the device.
    fn flush(&self);
}

impl<U: Uart> Console for U {
    fn putc(&self, byte: u8) {
        self.write_byte(byte);
    }

    #[allow(unsafe_code)] // a driver interface: moving an MMIO block is unsafe
    unsafe fn remap(&self, base: usize) {
        // SAFETY: the caller's contract (the UART is mapped at `base`) is the
        // register block's.
        unsafe { self.regs().remap(base) };
    }
}

/// `core::fmt::Write` (text through [`Console::puts`]) and `embedded_io::Write`
/// (raw bytes) for a [`Uart`] driver type generic over its registers,
/// `Driver<R>`: `zonekit_arch_arm::uart_io!(Pl011);`.
#[macro_export]
macro_rules! uart_io {
    ($driver:ident) => {
        impl<R: $crate::mmio::RegisterIo> ::core::fmt::Write for $driver<R>
        where
            $driver<R>: $crate::uart::Uart,
        {
            fn write_str(&mut self, s: &str) -> ::core::fmt::Result {
                $crate::board::Console::puts(self, s);
                Ok(())
            }
        }

        impl<R> $crate::uart::__embedded_io::ErrorType for $driver<R> {
            type Error = ::core::convert::Infallible;
        }

        impl<R: $crate::mmio::RegisterIo> $crate::uart::__embedded_io::Write for $driver<R>
        where
            $driver<R>: $crate::uart::Uart,
        {
            fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
                for &b in buf {
                    $crate::uart::Uart::write_byte(self, b);
                }
                Ok(buf.len())
            }

            fn flush(&mut self) -> Result<(), Self::Error> {
                $crate::uart::Uart::flush(self);
                Ok(())
            }
        }
    };
}
