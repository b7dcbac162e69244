//! The global console, the `log` backend and the panic handler.
//!
//! Linux counterpart: the early console (`earlycon`/`early_printk`) behind `printk`, and `panic`.

use crate::board::{Console, ConsoleWriter};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// Holds the console chosen by the board binary.
struct ConsoleCell(UnsafeCell<Option<&'static dyn Console>>);

// SAFETY: the cell is written once in `init`, on the boot CPU with interrupts
// masked, before any reader and before any secondary CPU is started.
unsafe impl Sync for ConsoleCell {}

static CONSOLE: ConsoleCell = ConsoleCell(UnsafeCell::new(None));

/// Install `console` as the output of [`print_fmt`], the logger and the panic handler,
/// and install the logger (max level Debug).
pub(crate) fn init(console: &'static dyn Console) {
    // SAFETY: called once, by the first boot entry (`flow_input` refuses a second):
    // single CPU, no interrupts, nothing printed yet, so no reference to the cell's
    // contents is alive while it is written.
    unsafe { *CONSOLE.0.get() = Some(console) };
    // SAFETY: `set_logger_racy` requires that no other thread calls it concurrently;
    // only the boot CPU runs. It avoids the exclusive-access instructions of
    // `set_logger`, which need not work on strongly-ordered memory with the MMU off.
    let _ = unsafe { log::set_logger_racy(&LOGGER) };
    // SAFETY: as above, no concurrent logger configuration.
    unsafe { log::set_max_level_racy(log::LevelFilter::Debug) };
}

fn console() -> Option<&'static dyn Console> {
    // SAFETY: the cell is only written in `init`, before any call here.
    unsafe { *CONSOLE.0.get() }
}

/// Set once secondary CPUs may print: from then on each print holds [`LOCK`].
static SHARED: AtomicBool = AtomicBool::new(false);
/// The console lock (one print, one CPU), taken only once [`SHARED`] is set: before,
/// the boot CPU is alone and may run with the MMU off, where exclusive accesses to
/// strongly-ordered memory need not work.
static LOCK: AtomicBool = AtomicBool::new(false);
/// Tries before a print goes ahead without the lock (a CPU stopped holding it by an
/// exception or a panic inside a print must not silence the report of it).
const LOCK_TRIES: u32 = 1 << 20;

/// From now on, prints take the console lock (the SMP bring-up calls this before it
/// starts the first secondary, with the MMU on on every CPU that prints).
pub(crate) fn set_shared() {
    SHARED.store(true, Ordering::Release);
}

/// Whether other CPUs may be running (and logging) now.
#[cfg(feature = "defmt")]
pub(crate) fn shared() -> bool {
    SHARED.load(Ordering::Acquire)
}

/// Holds the console lock while alive (or nothing, when it was not taken).
struct Held(bool);

impl Drop for Held {
    fn drop(&mut self) {
        if self.0 {
            LOCK.store(false, Ordering::Release);
        }
    }
}

fn lock() -> Held {
    if !SHARED.load(Ordering::Acquire) {
        return Held(false);
    }
    for _ in 0..LOCK_TRIES {
        if LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Held(true);
        }
        core::hint::spin_loop();
    }
    Held(false)
}

/// Print formatted text on the console (dropped when none is installed yet); one
/// call's text is not interleaved with another CPU's.
pub fn print_fmt(args: core::fmt::Arguments<'_>) {
    if let Some(c) = console() {
        let _held = lock();
        let _ = core::fmt::write(&mut ConsoleWriter(c), args);
    }
}

/// Print a line on the console.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::rt::console::print_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// The `log` backend: each record's message and a newline, without prefix, so that
/// boot-log lines read like Linux's `dmesg`; warnings and errors are marked.
struct Logger;

static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Debug
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let prefix = match record.level() {
            log::Level::Error => "zonekit: error: ",
            log::Level::Warn => "zonekit: warning: ",
            _ => "",
        };
        print_fmt(format_args!("{prefix}{}\n", record.args()));
    }

    fn flush(&self) {}
}

/// Exit code after a panic.
pub const EXIT_PANIC: u32 = 101;

/// zonekit's panic report: the message and location on the console (once, even if
/// printing panics again), then a semihosting exit with [`EXIT_PANIC`]. A kernel that
/// wants it installs it with [`crate::panic_handler!`]; one with its own
/// `#[panic_handler]` may call it from there.
pub fn report_panic(info: &core::panic::PanicInfo<'_>) -> ! {
    static PANICKING: AtomicBool = AtomicBool::new(false);
    if !PANICKING.swap(true, Ordering::Relaxed) {
        let cpu = super::smp::CpuPrefix::this();
        match info.location() {
            Some(loc) => print_fmt(format_args!(
                "zonekit: {cpu}panic at {}:{}:{}: {}\n",
                loc.file(),
                loc.line(),
                loc.column(),
                info.message()
            )),
            None => print_fmt(format_args!("zonekit: {cpu}panic: {}\n", info.message())),
        }
    }
    super::semihosting::exit(EXIT_PANIC)
}

/// Install zonekit's panic handler ([`rt::console::report_panic`](crate::rt::console::report_panic))
/// in the calling binary. Opt-in, so that a kernel can bring its own
/// `#[panic_handler]` instead:
///
/// ```ignore
/// zonekit_arch_arm::panic_handler!();
/// ```
#[macro_export]
macro_rules! panic_handler {
    () => {
        #[panic_handler]
        fn zonekit_panic(info: &core::panic::PanicInfo<'_>) -> ! {
            $crate::rt::console::report_panic(info)
        }
    };
}
