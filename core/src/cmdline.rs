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
    /// `cma=SIZE[@BASE[-LIMIT]]`: the global CMA area (`cma=0` turns it off).
    pub cma: Option<crate::cma::CmaRequest>,
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

/// `early_cma`: `SIZE[@BASE[-LIMIT]]`; with a base and no limit, the area is fixed
/// at the base (its limit is `BASE + SIZE`).
fn parse_cma(v: &str) -> Option<crate::cma::CmaRequest> {
    let (size, rest) = match v.split_once('@') {
        Some((s, r)) => (s, Some(r)),
        None => (v, None),
    };
    let size = memparse(size)?;
    let (base, limit) = match rest {
        None => (0, 0),
        Some(r) => match r.split_once('-') {
            Some((b, l)) => (memparse(b)?, memparse(l)?),
            None => {
                let base = memparse(r)?;
                (base, base.checked_add(size)?)
            }
        },
    };
    Some(crate::cma::CmaRequest { size, base, limit })
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
                ("cma", Some(v)) => match parse_cma(v) {
                    Some(r) => c.cma = Some(r),
                    None => c.error("cma", "not a size[@base[-limit]]"),
                },
                ("memblock", Some("debug")) => c.memblock_debug = true,
                ("memblock", _) => c.error("memblock", "only memblock=debug is known"),
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
    fn cma_parameter_forms() {
        use crate::cma::CmaRequest;
        let c = Cmdline::parse("cma=64M");
        assert_eq!(
            c.cma,
            Some(CmaRequest {
                size: 64 << 20,
                base: 0,
                limit: 0
            })
        );
        let c = Cmdline::parse("cma=16M@0x70000000");
        assert_eq!(c.cma.unwrap().limit, 0x7100_0000);
        let c = Cmdline::parse("cma=16M@0x70000000-0x78000000");
        assert_eq!(c.cma.unwrap().limit, 0x7800_0000);
        assert_eq!(Cmdline::parse("cma=0").cma.unwrap().size, 0);
        let bad = Cmdline::parse("cma=lots cma=1M@0xffffffffffffffff");
        assert_eq!(bad.cma, None);
        assert_eq!(bad.errors.len(), 2);
    }

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
    fn malformed_values_are_reported() {
        let c = Cmdline::parse("mem=lots vmalloc= mem=0 mem=1M@x memblock=verbose");
        assert_eq!(c.mem_limit, None);
        assert_eq!(c.vmalloc_size, None);
        assert_eq!(c.errors.len(), 5);
    }
}
