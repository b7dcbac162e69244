//! Logging shim, declared first so every module can use it.
//!
//! All zonekit output goes through these macros. They forward to the `log` crate
//! today; a `defmt` backend can be switched in here without touching call sites.
//! Boot-log lines are printed verbatim (no level prefix) so that a zonekit log can be
//! diffed against a Linux `dmesg`.
#![allow(unused_macros)]

/// Log at info level (Linux `pr_info`).
#[macro_export]
macro_rules! zk_info {
    ($($arg:tt)*) => { ::log::info!(target: "zonekit", $($arg)*) };
}

/// Log at debug level (Linux `pr_debug` / `KERN_DEBUG`).
#[macro_export]
macro_rules! zk_debug {
    ($($arg:tt)*) => { ::log::debug!(target: "zonekit", $($arg)*) };
}

/// Log at warning level (Linux `pr_warn`).
#[macro_export]
macro_rules! zk_warn {
    ($($arg:tt)*) => { ::log::warn!(target: "zonekit", $($arg)*) };
}

/// Log at error level (Linux `pr_err`).
#[macro_export]
macro_rules! zk_error {
    ($($arg:tt)*) => { ::log::error!(target: "zonekit", $($arg)*) };
}
