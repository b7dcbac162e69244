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
use core::sync::atomic::{AtomicUsize, Ordering};

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

// SAFETY: interrupts are masked on every CPU; `acquire` takes the logger for one
// CPU (OWNER) and refuses a second frame while one is open, and each logger entry
// point takes its references and drops them before returning, so no two `&mut` to
// one cell are alive at once, on one CPU or across CPUs.
unsafe impl<T> Sync for Cell<T> {}

/// The CPU (its number + 1) with a frame open; 0 when the logger is free.
static OWNER: AtomicUsize = AtomicUsize::new(0);
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

// SAFETY: `acquire` takes the logger for this CPU and panics on reentry (a log call
// from inside formatting); interrupts are masked, so there is no other context on a
// CPU. `write`/`flush`/`release` are only called between acquire and release. While
// the boot CPU is alone, plain loads and stores are used, no exclusive-access
// instructions, which need not work on strongly-ordered memory with the MMU off;
// once secondaries run (the MMU on), a compare-exchange takes the logger.
unsafe impl defmt::Logger for SemihostingLogger {
    fn acquire() {
        let me = super::smp::this_cpu() + 1;
        if super::console::shared() {
            loop {
                match OWNER.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => break,
                    Err(owner) if owner == me => panic!("defmt logger taken reentrantly"),
                    Err(_) => core::hint::spin_loop(),
                }
            }
        } else {
            if OWNER.load(Ordering::Relaxed) != 0 {
                panic!("defmt logger taken reentrantly");
            }
            OWNER.store(me, Ordering::Relaxed);
        }
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
        OWNER.store(0, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: called from the logger; the closure does not log.
        unsafe { with(|enc, out| enc.write(bytes, |b| out.push(b))) }
    }
}
