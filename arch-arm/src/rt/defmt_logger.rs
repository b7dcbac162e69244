//! The `defmt` global logger (feature `defmt`): rzCOBS-encoded frames written with
//! semihosting `SYS_WRITE` to a host file, so the text console is left alone.
//!
//! On the first frame the logger opens [`FRAME_FILE`] with `SYS_OPEN` (mode `"wb"`);
//! QEMU (`-semihosting`, target native) creates it in its working directory, which
//! `cargo xtask qemu --defmt` sets to a scratch directory and then decodes the file
//! with `defmt-decoder` against the image's ELF. Each frame is collected in a small
//! buffer and written with one call when it ends (longer frames in several), so a
//! boot costs one semihosting trap per log line. When the file cannot be opened (no
//! semihosting file access) frames are dropped.
//!
//! `defmt-semihosting` is not used: it depends on `cortex-m-semihosting`, whose
//! `svc`/`bkpt` sequences are for M-profile (Thumb) cores, not ARMv7-A in A32.
//!
//! No timestamp is defined (`defmt.x` provides the empty default), and defmt's panic
//! hook is not used: zonekit's own panic handler stays in charge.

use core::cell::UnsafeCell;

use super::semihosting;

/// Name of the host file the frames go to, NUL-terminated for `SYS_OPEN`.
pub const FRAME_FILE: &[u8] = b"zonekit.defmt\0";

/// Bytes of a frame collected before a `SYS_WRITE`.
const BUF_LEN: usize = 256;

/// The host file: not yet opened, unusable, or open with a handle.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Handle {
    Unopened,
    Failed,
    Open(u32),
}

/// Encoded bytes on their way to the host file.
struct Output {
    handle: Handle,
    buf: [u8; BUF_LEN],
    len: usize,
}

impl Output {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == BUF_LEN {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn flush(&mut self) {
        if let Handle::Open(h) = self.handle {
            if !semihosting::write(h, &self.buf[..self.len]) {
                self.handle = Handle::Failed;
            }
        }
        self.len = 0;
    }
}

/// A static only the logger touches.
struct Cell<T>(UnsafeCell<T>);

// SAFETY: zonekit runs on one CPU with interrupts masked; `acquire` refuses a second
// frame while one is open, and each logger entry point takes its references and
// drops them before returning, so no two `&mut` to one cell are alive at once.
unsafe impl<T> Sync for Cell<T> {}

static TAKEN: Cell<bool> = Cell(UnsafeCell::new(false));
static ENCODER: Cell<defmt::Encoder> = Cell(UnsafeCell::new(defmt::Encoder::new()));
static OUTPUT: Cell<Output> = Cell(UnsafeCell::new(Output {
    handle: Handle::Unopened,
    buf: [0; BUF_LEN],
    len: 0,
}));

/// Run `f` on the encoder and the output.
///
/// # Safety
/// Only from the logger's entry points (see [`Cell`]); `f` must not log.
unsafe fn with<R>(f: impl FnOnce(&mut defmt::Encoder, &mut Output) -> R) -> R {
    // SAFETY: see the function's contract and `Cell`'s `Sync`.
    unsafe { f(&mut *ENCODER.0.get(), &mut *OUTPUT.0.get()) }
}

#[defmt::global_logger]
struct SemihostingLogger;

// SAFETY: `acquire` marks the logger taken and panics on reentry (a log call from
// inside formatting); single CPU with interrupts masked, so there is no other
// context. `write`/`flush`/`release` are only called between acquire and release.
// Plain loads and stores are used, no exclusive-access instructions, which need
// not work on strongly-ordered memory with the MMU off.
unsafe impl defmt::Logger for SemihostingLogger {
    fn acquire() {
        // SAFETY: one CPU, no interrupts; only the logger touches TAKEN.
        let taken = unsafe { &mut *TAKEN.0.get() };
        if *taken {
            panic!("defmt logger taken reentrantly");
        }
        *taken = true;
        // SAFETY: called from the logger; the closure does not log.
        unsafe {
            with(|enc, out| {
                if out.handle == Handle::Unopened {
                    out.handle = semihosting::open(FRAME_FILE, semihosting::OPEN_WRITE_BINARY)
                        .map_or(Handle::Failed, Handle::Open);
                }
                enc.start_frame(|b| out.push(b));
            })
        }
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: called from the logger; the closure does not log.
        unsafe {
            with(|enc, out| {
                enc.end_frame(|b| out.push(b));
                out.flush();
            })
        }
        // SAFETY: one CPU, no interrupts; only the logger touches TAKEN.
        unsafe { *TAKEN.0.get() = false };
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: called from the logger; the closure does not log.
        unsafe { with(|enc, out| enc.write(bytes, |b| out.push(b))) }
    }
}
