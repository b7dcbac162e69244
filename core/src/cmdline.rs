//! Kernel command-line parameters zonekit understands (`mem=`, `vmalloc=`,
//! `memblock=debug`, `maxcpus=`, `nosmp`, `zonekit.*`), parsed with Linux's `memparse` rules.
//!
//! Unknown words are ignored, as Linux ignores parameters meant for someone else. A
//! malformed value of a known parameter (`mem=lots`, a bare `mem` or `vmalloc`, a value
//! given to a flag such as `zonekit.report=1`) is reported in [`Cmdline::errors`] and
//! ignored; every such error is kept, up to [`MAX_CMDLINE_ERRORS`], and the rest are
//! counted in [`Cmdline::errors_lost`], so none goes unreported.
//!
//! Every `mem=SIZE[@START]` is kept, in order, in [`Cmdline::mem`]: Linux ARM's
//! `early_mem` adds one bank per `mem=` (the first one forgets the discovered banks).
//! Whether a bank can exist (START + SIZE overflowing, outside RAM) is decided where it
//! is added (`zonekit_arch_arm::bootmem::add_memory`), not here.
//!
//! Linux counterpart: the `early_param` handlers run by `parse_early_param` (`early_mem`, `early_vmalloc`, `early_memblock`), and `maxcpus=`/`nosmp` (`init/main.c`).

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
        write!(f, "{}: {}", self.param, self.reason)
    }
}

/// Most rejected values [`Cmdline::errors`] keeps; later ones are counted in
/// [`Cmdline::errors_lost`].
pub const MAX_CMDLINE_ERRORS: usize = 32;

/// Most `mem=` parameters kept; later ones are reported as errors.
pub const MAX_MEM_PARAMS: usize = 16;
// The error text for one `mem=` too many names this number.
const _: () = assert!(MAX_MEM_PARAMS == 16);

/// One `mem=SIZE[@START]`, as written (not yet rounded or checked against RAM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemParam {
    /// SIZE in bytes (never 0).
    pub size: u64,
    /// START, when given; `PHYS_OFFSET` (the start of RAM) otherwise.
    pub start: Option<u64>,
}

/// The parameters zonekit acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// Every well-formed `mem=SIZE[@START]`, in command-line order.
    pub mem: heapless::Vec<MemParam, MAX_MEM_PARAMS>,
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
    /// `cma=SIZE[@BASE[-LIMIT]]`: the global CMA area (`cma=0` turns it off).
    pub cma: Option<crate::cma::CmaRequest>,
    /// `maxcpus=N`: bring up at most N CPUs (`setup_max_cpus`; 0 and 1 both mean the
    /// boot CPU alone).
    pub maxcpus: Option<u32>,
    /// `nosmp`: the boot CPU alone (`setup_max_cpus = 0`).
    pub nosmp: bool,
    /// Values of known parameters that were rejected, in command-line order (at most
    /// [`MAX_CMDLINE_ERRORS`]).
    pub errors: heapless::Vec<CmdlineError, MAX_CMDLINE_ERRORS>,
    /// Rejected values beyond [`MAX_CMDLINE_ERRORS`]: counted, not kept.
    pub errors_lost: usize,
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
    /// Parse a command line. Each `mem=` adds a bank; for the other parameters a later
    /// occurrence overrides an earlier one.
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
                        (Some(0), _) => c.error("mem", "a zero memory size is impossible"),
                        (None, _) | (_, Some(None)) => c.error("mem", "not a SIZE[@START]"),
                        (Some(size), start) => {
                            let m = MemParam {
                                size,
                                start: start.flatten(),
                            };
                            if c.mem.push(m).is_err() {
                                c.error("mem", "more than 16 mem= banks; this one is ignored");
                            }
                        }
                    }
                }
                ("mem", None) => c.error("mem", "needs a value: mem=SIZE[@START]"),
                ("zonekit.dma_zone", Some(v)) => match memparse(v) {
                    Some(n) => c.dma_zone_size = Some(n),
                    None => c.error("zonekit.dma_zone", "not a size"),
                },
                ("zonekit.dma_zone", None) => {
                    c.error("zonekit.dma_zone", "needs a value: zonekit.dma_zone=SIZE")
                }
                ("vmalloc", Some(v)) => match memparse(v) {
                    Some(n) => c.vmalloc_size = Some(n),
                    None => c.error("vmalloc", "not a size"),
                },
                ("vmalloc", None) => c.error("vmalloc", "needs a value: vmalloc=SIZE"),
                ("cma", Some(v)) => match parse_cma(v) {
                    Some(r) => c.cma = Some(r),
                    None => c.error("cma", "not a size[@base[-limit]]"),
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
                ("zonekit.report", Some(_)) => {
                    c.error("zonekit.report", "takes no value (write zonekit.report)")
                }
                ("maxcpus", Some(v)) => match kstrtouint(v) {
                    Some(n) => c.maxcpus = Some(n),
                    None => c.error("maxcpus", "not a number of CPUs"),
                },
                ("maxcpus", None) => c.error("maxcpus", "needs a value: maxcpus=N"),
                ("nosmp", None) => c.nosmp = true,
                ("nosmp", Some(_)) => c.error("nosmp", "takes no value (write nosmp)"),
                ("zonekit.bench", None) => c.bench = true,
                ("zonekit.bench", Some(_)) => {
                    c.error("zonekit.bench", "takes no value (write zonekit.bench)")
                }
                _ => {}
            }
        }
        c
    }

    fn error(&mut self, param: &'static str, reason: &'static str) {
        if self.errors.push(CmdlineError { param, reason }).is_err() {
            self.errors_lost += 1;
        }
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
    fn maxcpus_and_nosmp() {
        let c = Cmdline::parse("console=ttyAMA0");
        assert_eq!((c.maxcpus, c.nosmp), (None, false));
        assert_eq!(Cmdline::parse("maxcpus=2").maxcpus, Some(2));
        assert_eq!(Cmdline::parse("maxcpus=0").maxcpus, Some(0));
        assert_eq!(Cmdline::parse("maxcpus=0x3 maxcpus=1").maxcpus, Some(1));
        assert!(Cmdline::parse("nosmp").nosmp);
        for (bad, reason) in [
            ("maxcpus=two", "not a number of CPUs"),
            ("maxcpus=-1", "not a number of CPUs"),
            ("maxcpus=", "not a number of CPUs"),
            ("maxcpus", "needs a value: maxcpus=N"),
            ("nosmp=1", "takes no value (write nosmp)"),
        ] {
            let c = Cmdline::parse(bad);
            assert_eq!((c.maxcpus, c.nosmp), (None, false), "{bad}");
            assert_eq!(c.errors.len(), 1, "{bad}");
            assert_eq!(c.errors[0].reason, reason, "{bad}");
        }
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
        assert_eq!(
            c.mem.as_slice(),
            &[MemParam {
                size: 300 << 20,
                start: None
            }]
        );
        assert_eq!(c.vmalloc_size, Some(600 << 20));
        assert!(c.memblock_debug);
        assert!(c.errors.is_empty());
        let c =
            Cmdline::parse("mem=64M@0x70000000 zonekit.dma_zone=16M zonekit.report zonekit.bench");
        assert_eq!(
            c.mem.as_slice(),
            &[MemParam {
                size: 64 << 20,
                start: Some(0x7000_0000)
            }]
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
        assert!(c.mem.is_empty());
        assert_eq!(c.vmalloc_size, None);
        assert_eq!(c.errors.len(), 5);
        assert_eq!(c.errors_lost, 0);
    }

    #[test]
    fn repeated_mem_adds_banks() {
        let c = Cmdline::parse("mem=64M mem=32M@0x70000000 vmalloc=300M vmalloc=400M");
        assert_eq!(
            c.mem.as_slice(),
            &[
                MemParam {
                    size: 64 << 20,
                    start: None
                },
                MemParam {
                    size: 32 << 20,
                    start: Some(0x7000_0000)
                },
            ]
        );
        // Other parameters: the last one wins.
        assert_eq!(c.vmalloc_size, Some(400 << 20));
    }

    #[test]
    fn mem_at_start_near_u64_max_is_kept_for_the_boot_to_refuse() {
        // memparse takes the full 64-bit START; whether START + SIZE exists is the
        // boot flow's check (a typed BootError), not a parse error.
        let c = Cmdline::parse("mem=64M@0xffffffffffffffff");
        assert!(c.errors.is_empty());
        assert_eq!(c.mem[0].start, Some(u64::MAX));
    }

    #[test]
    fn bare_mem_and_vmalloc_warn() {
        let c = Cmdline::parse("mem vmalloc zonekit.dma_zone zonekit.report=1 zonekit.bench=yes");
        let params: alloc::vec::Vec<&str> = c.errors.iter().map(|e| e.param).collect();
        assert_eq!(
            params,
            [
                "mem",
                "vmalloc",
                "zonekit.dma_zone",
                "zonekit.report",
                "zonekit.bench"
            ]
        );
        assert!(c.mem.is_empty());
        assert_eq!(c.vmalloc_size, None);
        assert!(!c.report && !c.bench);
        assert_eq!(
            alloc::format!("{}", c.errors[0]),
            "mem: needs a value: mem=SIZE[@START]"
        );
        assert_eq!(
            alloc::format!("{}", c.errors[3]),
            "zonekit.report: takes no value (write zonekit.report)"
        );
    }

    #[test]
    fn cmdline_keeps_all_errors() {
        // Twenty malformed parameters: all twenty are kept, in order.
        let line: alloc::string::String = (0..20)
            .map(|i| if i % 2 == 0 { "mem=x " } else { "vmalloc=y " })
            .collect();
        let c = Cmdline::parse(&line);
        assert_eq!(c.errors.len(), 20);
        assert_eq!(c.errors_lost, 0);
        assert_eq!(c.errors[19].param, "vmalloc");
        // Beyond the list's capacity, the rest are counted.
        let line = "mem=x ".repeat(MAX_CMDLINE_ERRORS + 7);
        let c = Cmdline::parse(&line);
        assert_eq!(c.errors.len(), MAX_CMDLINE_ERRORS);
        assert_eq!(c.errors_lost, 7);
    }

    #[test]
    fn mem_banks_beyond_capacity_are_errors() {
        let line = "mem=1M@0x60000000 ".repeat(MAX_MEM_PARAMS + 2);
        let c = Cmdline::parse(&line);
        assert_eq!(c.mem.len(), MAX_MEM_PARAMS);
        assert_eq!(c.errors.len(), 2);
        assert_eq!(c.errors[0].param, "mem");
    }
}
