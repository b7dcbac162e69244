//! Kernel command-line parameters zonekit understands (`mem=`, `vmalloc=`,
//! `memblock=debug`), parsed with Linux's `memparse` rules.
//!
//! Unknown words are ignored, as Linux ignores parameters meant for someone else. A
//! malformed value of a known parameter is reported in [`Cmdline::errors`] and ignored.
//!
//! Linux counterpart: the `early_param` handlers run by `parse_early_param` (`early_mem`, `early_vmalloc`, `early_memblock`).

/// Why a known parameter's value was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdlineError {
    /// The parameter name (`"mem"`, `"vmalloc"`, ...).
    pub param: &'static str,
    /// What was wrong.
    pub reason: &'static str,
}

impl core::fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}=: {}", self.param, self.reason)
    }
}

/// The parameters zonekit acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// `mem=SIZE[@START]`: the usable memory size in bytes.
    pub mem_limit: Option<u64>,
    /// The `@START` part of `mem=`: where that memory begins (default: start of RAM).
    pub mem_start: Option<u64>,
    /// `zonekit.dma_zone=SIZE`: override the board's DMA zone size (`arm_dma_zone_size`).
    pub dma_zone_size: Option<u64>,
    /// `vmalloc=`: requested vmalloc area size in bytes.
    pub vmalloc_size: Option<u64>,
    /// `memblock=debug`.
    pub memblock_debug: bool,
    /// `zonekit.report`: print allocator reports at the end of boot.
    pub report: bool,
    /// `zonekit.bench`: print machine-readable `zonekit-bench:` timing lines.
    pub bench: bool,
    /// `memtest=N`: Linux's `memtest_pattern`, the number of `early_memtest` passes
    /// (0, the default, is off; `memtest` alone runs all 17 patterns).
    pub memtest_pattern: u32,
    /// Values of known parameters that were rejected (at most 8 kept).
    pub errors: heapless::Vec<CmdlineError, 8>,
}

/// `memparse`: a number (decimal, `0x` hex or `0` octal) with an optional K/M/G/T/P/E
/// suffix. Returns `None` on a malformed number, trailing garbage or overflow.
pub fn memparse(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (hex, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let value = u64::from_str_radix(&digits[..end], radix).ok()?;
    let shift = match &digits[end..] {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return None,
    };
    value.checked_mul(1u64 << shift)
}

/// `kstrtouint(s, 0, ..)`: an unsigned 32-bit number, `0x` hex, `0` octal or decimal,
/// with an optional leading `+` and trailing newline and nothing else. `None` on
/// anything else or overflow.
pub fn kstrtouint(s: &str) -> Option<u32> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    let s = s.strip_prefix('+').unwrap_or(s);
    let (digits, radix) = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (hex, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

impl Cmdline {
    /// Parse a command line. Later occurrences of a parameter override earlier ones.
    pub fn parse(line: &str) -> Cmdline {
        let mut c = Cmdline::default();
        for word in line.split_ascii_whitespace() {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (word, None),
            };
            match (key, value) {
                ("mem", Some(v)) => {
                    let (size, start) = match v.split_once('@') {
                        Some((s, at)) => (s, Some(at)),
                        None => (v, None),
                    };
                    match (memparse(size), start.map(memparse)) {
                        (Some(0), _) => c.error("mem", "a zero memory limit is impossible"),
                        (None, _) | (_, Some(None)) => c.error("mem", "not a size[@start]"),
                        (Some(n), at) => {
                            c.mem_limit = Some(n);
                            c.mem_start = at.flatten();
                        }
                    }
                }
                ("zonekit.dma_zone", Some(v)) => match memparse(v) {
                    Some(n) => c.dma_zone_size = Some(n),
                    None => c.error("zonekit.dma_zone", "not a size"),
                },
                ("vmalloc", Some(v)) => match memparse(v) {
                    Some(n) => c.vmalloc_size = Some(n),
                    None => c.error("vmalloc", "not a size"),
                },
                ("memblock", Some("debug")) => c.memblock_debug = true,
                ("memblock", _) => c.error("memblock", "only memblock=debug is known"),
                // `parse_memtest`: no value means every pattern.
                ("memtest", None) => {
                    c.memtest_pattern = crate::memtest::MEMTEST_PATTERNS.len() as u32
                }
                ("memtest", Some(v)) => match kstrtouint(v) {
                    Some(n) => c.memtest_pattern = n,
                    None => c.error("memtest", "not a number of tests"),
                },
                ("zonekit.report", None) => c.report = true,
                ("zonekit.bench", None) => c.bench = true,
                _ => {}
            }
        }
        c
    }

    fn error(&mut self, param: &'static str, reason: &'static str) {
        // Keep the first eight; later ones are counted by their absence of effect.
        let _ = self.errors.push(CmdlineError { param, reason });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memparse_like_linux() {
        assert_eq!(memparse("300M"), Some(300 << 20));
        assert_eq!(memparse("1G"), Some(1 << 30));
        assert_eq!(memparse("0x1000"), Some(0x1000));
        assert_eq!(memparse("4096"), Some(4096));
        assert_eq!(memparse("16k"), Some(16 << 10));
        assert_eq!(memparse("010"), Some(8));
        assert_eq!(memparse("M"), None);
        assert_eq!(memparse("12Q"), None);
        assert_eq!(memparse("99999999999E"), None);
    }

    #[test]
    fn parse_known_and_unknown() {
        let c = Cmdline::parse("console=ttyAMA0 mem=300M vmalloc=600M memblock=debug foo");
        assert_eq!(c.mem_limit, Some(300 << 20));
        assert_eq!(c.vmalloc_size, Some(600 << 20));
        assert!(c.memblock_debug);
        assert!(c.errors.is_empty());
        let c =
            Cmdline::parse("mem=64M@0x70000000 zonekit.dma_zone=16M zonekit.report zonekit.bench");
        assert_eq!(
            (c.mem_limit, c.mem_start),
            (Some(64 << 20), Some(0x7000_0000))
        );
        assert_eq!(c.dma_zone_size, Some(16 << 20));
        assert!(c.report);
        assert!(c.bench);
    }

    #[test]
    fn memtest_like_parse_memtest() {
        assert_eq!(Cmdline::parse("console=ttyAMA0").memtest_pattern, 0);
        assert_eq!(Cmdline::parse("memtest").memtest_pattern, 17);
        assert_eq!(Cmdline::parse("memtest=4").memtest_pattern, 4);
        assert_eq!(Cmdline::parse("memtest=0x11").memtest_pattern, 17);
        assert_eq!(Cmdline::parse("memtest=010").memtest_pattern, 8);
        assert_eq!(Cmdline::parse("memtest=40").memtest_pattern, 40);
        assert_eq!(Cmdline::parse("memtest=3 memtest=0").memtest_pattern, 0);
        for bad in [
            "memtest=",
            "memtest=-1",
            "memtest=4k",
            "memtest=99999999999",
            "memtest=08",
        ] {
            let c = Cmdline::parse(bad);
            assert_eq!(c.memtest_pattern, 0, "{bad}");
            assert_eq!(c.errors.len(), 1, "{bad}");
            assert_eq!(c.errors[0].param, "memtest");
        }
        assert_eq!(kstrtouint("+7\n"), Some(7));
        assert_eq!(kstrtouint("0"), Some(0));
        assert_eq!(kstrtouint("4294967295"), Some(u32::MAX));
        assert_eq!(kstrtouint("4294967296"), None);
    }

    #[test]
    fn malformed_values_are_reported() {
        let c = Cmdline::parse("mem=lots vmalloc= mem=0 mem=1M@x memblock=verbose");
        assert_eq!(c.mem_limit, None);
        assert_eq!(c.vmalloc_size, None);
        assert_eq!(c.errors.len(), 5);
    }
}
