//! Logging shim, declared first so every module can use it.
//!
//! All zonekit output goes through these macros. They forward to the `log` crate
//! today; a `defmt` backend can be switched in here without touching call sites.
//! Boot-log lines are printed verbatim (no level prefix) so that a zonekit log can be
//! diffed against a Linux `dmesg`.
//!
//! Linux counterpart: `printk`/`pr_info`/`memblock_dbg` on the early console.
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
