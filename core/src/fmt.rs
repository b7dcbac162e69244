//! Logging shim, declared first so every module can use it.
//!
//! All zonekit output goes through these macros. Boot-log lines are printed verbatim
//! (no level prefix) so that a zonekit log can be diffed against a Linux `dmesg`.
//!
//! # Backends
//!
//! * **`log`** (default): the macros forward to the `log` crate with target
//!   `"zonekit"`; the ARM runtime's logger prints each record as a console line.
//! * **`defmt`** (cargo feature `defmt`, bare-metal targets only): the macros forward
//!   to `defmt::{debug,info,warn,error}!`. The frames carry the level and the index
//!   of an interned log statement whose DWARF location is the *call site* of the
//!   `zk_*!` macro (file:line); the ARM runtime's `#[defmt::global_logger]` writes
//!   them over semihosting to a host file that `cargo xtask qemu --defmt` decodes.
//!
//! ## Why the message is formatted on the target
//!
//! defmt's own format strings are not `core::fmt`'s (`{=u64:#x}`, no `{:<8}`, no
//! `Display`), so forwarding the call-site format string unchanged is impossible.
//! Instead every call is sent as `defmt::info!("{}", Display2Format(&format_args!(..)))`:
//! the message is rendered with `core::fmt` on the target and streamed into the
//! frame (defmt's `Display` hint: UTF-8 bytes ended by 0xff, no fixed buffer, so no
//! truncation). Call sites stay as they are, `Display`-only types keep working, and
//! the boot-log text is identical to the `log` backend's, so decoded logs diff
//! against Linux's just as well. The cost is what defmt normally saves: the
//! formatting code runs on the target and the message text travels in full (a few
//! tens of bytes per line) instead of only the arguments. For a boot log of a few
//! hundred lines over semihosting that is irrelevant; converting the ~100 call sites
//! to defmt syntax would save it at the price of two dialects of every message.
//!
//! ## Host builds
//!
//! The `defmt` backend is compiled only for `target_os = "none"`. On the host the
//! feature still builds the `defmt` crate (so `cargo build --workspace --features
//! zonekit-core/defmt` type-checks and links), but the macros keep using `log`: a
//! defmt host binary would need its own `#[defmt::global_logger]` and the `defmt.x`
//! linker script, which test binaries do not have. The target side is exercised by
//! `cargo xtask qemu --defmt` and the `--defmt` case of `cargo xtask test`.
//!
//! The location is the `zk_*!` call site also inside zonekit-core because the macros
//! are `#[collapse_debuginfo(yes)]` (without it, calls from the defining crate would
//! point into this file). Lines printed through [`LogLines`] (multi-line reports)
//! are located at its `emit`.
//!
//! The macros are chosen here, where they are defined, so a crate that calls them
//! needs neither a `defmt` dependency nor a feature of its own.
//!
//! Linux counterpart: `printk`/`pr_info`/`memblock_dbg` on the early console.
#![allow(unused_macros)]

/// `true` when the zonekit log macros go through `defmt` (feature `defmt` on a
/// bare-metal target), `false` when they go through `log`.
pub const DEFMT_BACKEND: bool = cfg!(all(feature = "defmt", target_os = "none"));

/// Log at info level (Linux `pr_info`).
#[cfg(not(all(feature = "defmt", target_os = "none")))]
#[macro_export]
macro_rules! zk_info {
    ($($arg:tt)*) => { ::log::info!(target: "zonekit", $($arg)*) };
}

/// Log at debug level (Linux `pr_debug` / `KERN_DEBUG`).
#[cfg(not(all(feature = "defmt", target_os = "none")))]
#[macro_export]
macro_rules! zk_debug {
    ($($arg:tt)*) => { ::log::debug!(target: "zonekit", $($arg)*) };
}

/// Log at warning level (Linux `pr_warn`).
#[cfg(not(all(feature = "defmt", target_os = "none")))]
#[macro_export]
macro_rules! zk_warn {
    ($($arg:tt)*) => { ::log::warn!(target: "zonekit", $($arg)*) };
}

/// Log at error level (Linux `pr_err`).
#[cfg(not(all(feature = "defmt", target_os = "none")))]
#[macro_export]
macro_rules! zk_error {
    ($($arg:tt)*) => { ::log::error!(target: "zonekit", $($arg)*) };
}

/// Forward one zonekit log call to a `defmt` level macro (implementation detail of
/// the `zk_*!` macros with the `defmt` backend). The `use` makes the `defmt::...`
/// paths the defmt macros expand to resolve through zonekit-core's re-export, so the
/// calling crate needs no `defmt` dependency.
#[cfg(all(feature = "defmt", target_os = "none"))]
#[collapse_debuginfo(yes)]
#[doc(hidden)]
#[macro_export]
macro_rules! __zk_defmt {
    ($level:ident, $($arg:tt)*) => {{
        use $crate::__defmt as defmt;
        defmt::$level!("{}", defmt::Display2Format(&format_args!($($arg)*)))
    }};
}

/// Log at info level (Linux `pr_info`).
#[cfg(all(feature = "defmt", target_os = "none"))]
#[collapse_debuginfo(yes)]
#[macro_export]
macro_rules! zk_info {
    ($($arg:tt)*) => { $crate::__zk_defmt!(info, $($arg)*) };
}

/// Log at debug level (Linux `pr_debug` / `KERN_DEBUG`).
#[cfg(all(feature = "defmt", target_os = "none"))]
#[collapse_debuginfo(yes)]
#[macro_export]
macro_rules! zk_debug {
    ($($arg:tt)*) => { $crate::__zk_defmt!(debug, $($arg)*) };
}

/// Log at warning level (Linux `pr_warn`).
#[cfg(all(feature = "defmt", target_os = "none"))]
#[collapse_debuginfo(yes)]
#[macro_export]
macro_rules! zk_warn {
    ($($arg:tt)*) => { $crate::__zk_defmt!(warn, $($arg)*) };
}

/// Log at error level (Linux `pr_err`).
#[cfg(all(feature = "defmt", target_os = "none"))]
#[collapse_debuginfo(yes)]
#[macro_export]
macro_rules! zk_error {
    ($($arg:tt)*) => { $crate::__zk_defmt!(error, $($arg)*) };
}

/// A `core::fmt::Write` that turns text into log lines: it buffers up to a newline and
/// then emits the line through [`zk_info!`]. Used to print multi-line reports (the
/// `MEMBLOCK configuration` dump) through the one logging path.
pub struct LogLines {
    line: heapless::String<256>,
}

impl LogLines {
    /// An empty line buffer.
    pub const fn new() -> Self {
        Self {
            line: heapless::String::new(),
        }
    }

    fn emit(&mut self) {
        zk_info!("{}", self.line.as_str());
        self.line.clear();
    }

    /// Emit whatever is buffered without a trailing newline.
    pub fn flush(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}

impl Default for LogLines {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Write for LogLines {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            if c == '\n' {
                self.emit();
            } else if self.line.push(c).is_err() {
                // An over-long line is split rather than truncated.
                self.emit();
                let _ = self.line.push(c);
            }
        }
        Ok(())
    }
}

impl Drop for LogLines {
    fn drop(&mut self) {
        self.flush();
    }
}
