//! The host part of `cargo xtask bench`: the harness `zonekit-bench` (tests crate,
//! `src/bin/zonekit-bench`) is built at the workspace release profile and at
//! `bench-o3` (opt-level 3), then
//!
//! * counted under `valgrind --tool=callgrind --toggle-collect='*measure_region*'`:
//!   each workload on each allocator runs `n` and `2n` iterations in two processes,
//!   and (Ir(2n) - Ir(n)) / n is the exact cost of one iteration (set-up, tear-down
//!   and the call into the region cancel);
//! * timed: every workload on every allocator in one process, interleaved round by
//!   round, thread CPU time, medians; in [`TIMING_PROCESSES`] processes, whose
//!   medians and peer-over-zonekit ratios are medians again;
//! * the fragmentation run (release profile);
//! * two CPUs: zone-lock counts and 1/2-thread throughput ([`crate::bench_smp`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Allocators, as the harness names them on its command line and in its output.
pub const ALLOCATORS: [&str; 4] = ["zonekit", "bsa", "bitmap", "floor"];
/// Their names in the tables.
pub const ALLOCATOR_TITLES: [&str; 4] = [
    "zonekit",
    "`buddy_system_allocator` 0.13 FrameAllocator",
    "`bitmap-allocator` 0.4 BitAlloc1M",
    "bare `Vec` stack per order (floor)",
];

/// (harness name, description, iterations `n` of the shorter counted run).
pub const WORKLOADS: [(&str, &str, u64); 5] = [
    ("order0", "order-0 alloc+free pair", 2000),
    (
        "order0_batch",
        "order-0, 1024 allocs then 1024 frees, per pair",
        4,
    ),
    ("order3", "order-3 alloc+free pair", 2000),
    (
        "order3_held",
        "order-3 pair, another order-3 block held",
        2000,
    ),
    ("mixed", "mixed orders 0-3 random, per op", 4000),
];

/// Operations per iteration of a workload (the batch is 1024 pairs).
pub fn ops(workload: &str) -> u64 {
    if workload == "order0_batch" {
        1024
    } else {
        1
    }
}

/// (cargo profile, target directory, description).
pub const PROFILES: [(&str, &str, &str); 2] = [
    (
        "release",
        "release",
        "workspace release profile (`opt-level = \"s\"`), one codegen unit",
    ),
    (
        "bench-o3",
        "bench-o3",
        "`[profile.bench-o3]`: release with `opt-level = 3`, one codegen unit",
    ),
];

/// Rounds of the interleaved timing.
const ROUNDS: &str = "31";

/// Processes the timing runs in. Each process has its own memory placement (ASLR,
/// heap pages), and a ratio can sit at one of two values for a whole process (the
/// order-0 batch against bitmap-allocator: 0.94× in most processes, 1.48× in some),
/// so one process is one sample; the tables take the median over these.
pub const TIMING_PROCESSES: usize = 9;

/// Code alignment for the harness build: every function at 64 bytes, every jump
/// target that is not a fall-through at 32. Without it, unrelated code moving shifts
/// the hot loops against the CPU's fetch windows: two builds of the same allocator
/// source measured 2.80× and 2.97× against FrameAllocator on the order-0 pair. The
/// padding is never executed, so the instruction counts are the same either way.
pub const ALIGN_RUSTFLAGS: &str =
    "-C llvm-args=-align-all-functions=6 -C llvm-args=-align-all-nofallthru-blocks=5";

/// The harness is built in one codegen unit (`CARGO_PROFILE_<PROFILE>_CODEGEN_UNITS`,
/// set for these builds only). With the profiles' default 16, what rustc puts in
/// which unit, and so what LLVM may inline into what, depends on the whole crate:
/// a change in zonekit alone moved FrameAllocator's B-tree code into another unit
/// of the harness and doubled FrameAllocator's order-0 time (27 ns against 15 ns,
/// the same instruction count), which made a 1.7× ratio read as 3.1×. In one unit
/// every allocator's code is inlined on its own merits.
pub const CODEGEN_UNITS: &str = "1";

/// Where the aligned harness is built (apart from `target/`'s own profiles, so that
/// the other builds keep their cache).
pub const TARGET_DIR: &str = "target/bench-aligned";

/// Why the host part failed.
#[derive(Debug)]
pub enum HostError {
    /// `valgrind` is not on the PATH.
    ValgrindMissing,
    /// Building the harness failed.
    Build(String),
    /// A harness or valgrind run failed.
    Run(String),
    /// Output without the expected line.
    Parse(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::ValgrindMissing => write!(
                f,
                "valgrind not found: the instruction counts need callgrind; install it \
                 (Debian/Ubuntu: `sudo apt-get install valgrind`) or run `cargo xtask bench --no-host`"
            ),
            HostError::Build(e) => write!(f, "building the bench harness: {e}"),
            HostError::Run(e) => write!(f, "bench harness run: {e}"),
            HostError::Parse(e) => write!(f, "bench harness output: {e}"),
        }
    }
}

/// Per profile: instructions and median ns per operation, `[workload][allocator]`.
#[derive(Clone, Debug, Default)]
pub struct ProfileFigures {
    /// Cargo profile.
    pub profile: &'static str,
    /// What it is.
    pub what: &'static str,
    /// Instructions per operation.
    pub insns: Vec<[f64; 4]>,
    /// Median CPU ns per operation (the median over processes of each process's
    /// median).
    pub ns: Vec<[f64; 4]>,
    /// Each allocator's time over zonekit's in the same process, over the processes.
    pub ratios: Vec<[Spread; 4]>,
}

/// A figure over the timing processes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// The median, smallest and largest of `xs` (not empty).
    fn of(mut xs: Vec<f64>) -> Spread {
        xs.sort_by(f64::total_cmp);
        Spread {
            median: xs[xs.len() / 2],
            min: xs[0],
            max: xs[xs.len() - 1],
        }
    }
}

/// Per-process `[workload][allocator]` medians (at least one process) into the
/// median of each cell and each allocator's ratio over zonekit.
fn over_processes(runs: &[Vec<[f64; 4]>]) -> (Vec<[f64; 4]>, Vec<[Spread; 4]>) {
    let cells = |f: &dyn Fn(&[f64; 4], usize) -> f64| -> Vec<[Spread; 4]> {
        (0..WORKLOADS.len())
            .map(|w| {
                core::array::from_fn(|a| Spread::of(runs.iter().map(|r| f(&r[w], a)).collect()))
            })
            .collect()
    };
    let ns = cells(&|row, a| row[a])
        .iter()
        .map(|row| row.map(|c| c.median))
        .collect();
    (ns, cells(&|row, a| row[a] / row[0]))
}

/// One allocator's fragmentation result.
#[derive(Clone, Debug)]
pub struct FragRow {
    /// Frames in use when the random phase stopped.
    pub used: u64,
    /// Frames free then.
    pub free: u64,
    /// Of those, frames on per-CPU lists (zonekit's; 0 for the peers).
    pub parked: u64,
    /// Order-3 blocks still allocatable.
    pub order3: u64,
    /// Order-9 blocks still allocatable.
    pub order9: u64,
}

/// Everything the host part measured.
#[derive(Clone, Debug, Default)]
pub struct HostFigures {
    /// One entry per profile.
    pub profiles: Vec<ProfileFigures>,
    /// Per allocator, release profile.
    pub frag: Vec<FragRow>,
    /// Several CPUs (release profile).
    pub smp: Option<crate::bench_smp::SmpFigures>,
    /// zonekit's order-0 workloads by source file (release profile), when
    /// `callgrind_annotate` is there.
    pub breakdown: Option<Vec<crate::bench_breakdown::Breakdown>>,
}

fn harness(root: &Path, dir: &str) -> PathBuf {
    root.join(TARGET_DIR).join(dir).join("zonekit-bench")
}

fn build(root: &Path, profile: &str) -> Result<(), HostError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = [
        "build",
        "-p",
        "zonekit-tests",
        "--bin",
        "zonekit-bench",
        "--profile",
        profile,
        "--target-dir",
        TARGET_DIR,
    ];
    // Added to the caller's flags: CARGO_ENCODED_RUSTFLAGS (0x1f between flags)
    // takes precedence over RUSTFLAGS in cargo, so whichever is set is extended.
    let (var, flags) = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(f) if !f.is_empty() => (
            "CARGO_ENCODED_RUSTFLAGS",
            format!("{f}\x1f{}", ALIGN_RUSTFLAGS.replace(' ', "\x1f")),
        ),
        _ => match std::env::var("RUSTFLAGS") {
            Ok(f) if !f.trim().is_empty() => ("RUSTFLAGS", format!("{f} {ALIGN_RUSTFLAGS}")),
            _ => ("RUSTFLAGS", ALIGN_RUSTFLAGS.to_string()),
        },
    };
    let units = codegen_units_var(profile);
    eprintln!(
        "xtask: {units}={CODEGEN_UNITS} {var}={flags:?} {cargo} {}",
        args.join(" ")
    );
    let status = Command::new(&cargo)
        .args(args)
        .env(var, flags)
        .env(&units, CODEGEN_UNITS)
        .current_dir(root)
        .status()
        .map_err(|e| HostError::Build(format!("cannot run {cargo}: {e}")))?;
    if !status.success() {
        return Err(HostError::Build(format!("cargo build failed ({status})")));
    }
    Ok(())
}

/// Cargo's variable for `profile`'s codegen units (`bench-o3` →
/// `CARGO_PROFILE_BENCH_O3_CODEGEN_UNITS`).
fn codegen_units_var(profile: &str) -> String {
    format!(
        "CARGO_PROFILE_{}_CODEGEN_UNITS",
        profile.to_ascii_uppercase().replace('-', "_")
    )
}

fn valgrind_present() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `Collected : N` from callgrind's stderr.
fn parse_collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        let (_, rest) = l.split_once("Collected :")?;
        rest.trim().replace(',', "").parse().ok()
    })
}

pub fn callgrind(bin: &Path, out: &Path, args: &[&str]) -> Result<u64, HostError> {
    let o = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--toggle-collect=*measure_region*")
        .arg(bin)
        .args(args)
        .output()
        .map_err(|e| HostError::Run(format!("valgrind: {e}")))?;
    let stderr = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        return Err(HostError::Run(format!(
            "valgrind {} {}: {}\n{stderr}",
            bin.display(),
            args.join(" "),
            o.status
        )));
    }
    parse_collected(&stderr).ok_or_else(|| {
        HostError::Parse(format!(
            "no `Collected :` line for {}:\n{stderr}",
            args.join(" ")
        ))
    })
}

fn count(root: &Path, bin: &Path) -> Result<Vec<[f64; 4]>, HostError> {
    let out = root.join("target/bench-callgrind.out");
    let mut rows = Vec::new();
    for (w, _, n) in WORKLOADS {
        let mut row = [0.0; 4];
        for (i, a) in ALLOCATORS.iter().enumerate() {
            let once = callgrind(bin, &out, &["count", a, w, &n.to_string()])?;
            let twice = callgrind(bin, &out, &["count", a, w, &(2 * n).to_string()])?;
            row[i] = twice.saturating_sub(once) as f64 / (n * ops(w)) as f64;
            eprintln!("xtask: bench: {w} {a}: {:.1} instructions per op", row[i]);
        }
        rows.push(row);
    }
    let _ = std::fs::remove_file(out);
    Ok(rows)
}

fn harness_output(bin: &Path, args: &[&str]) -> Result<String, HostError> {
    let o = Command::new(bin)
        .args(args)
        .output()
        .map_err(|e| HostError::Run(format!("{}: {e}", bin.display())))?;
    if !o.status.success() {
        return Err(HostError::Run(format!(
            "{} {}: {}\n{}",
            bin.display(),
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `time <workload> <allocator> <ns>` lines into `[workload][allocator]`.
fn parse_times(out: &str) -> Result<Vec<[f64; 4]>, HostError> {
    let mut rows = vec![[f64::NAN; 4]; WORKLOADS.len()];
    for l in out.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let ["time", w, a, ns] = f[..] {
            let wi = WORKLOADS.iter().position(|x| x.0 == w);
            let ai = ALLOCATORS.iter().position(|x| *x == a);
            if let (Some(wi), Some(ai), Ok(ns)) = (wi, ai, ns.parse()) {
                rows[wi][ai] = ns;
            }
        }
    }
    if rows.iter().flatten().any(|x| x.is_nan()) {
        return Err(HostError::Parse(format!("missing `time` lines in\n{out}")));
    }
    Ok(rows)
}

/// `frag <allocator> used=U free=F parked=P order3=A order9=B` lines, in [`ALLOCATORS`] order.
fn parse_frag(out: &str) -> Result<Vec<FragRow>, HostError> {
    let field = |l: &str, k: &str| -> Option<u64> {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(k))?
            .parse()
            .ok()
    };
    let rows: Vec<FragRow> = out
        .lines()
        .filter(|l| l.starts_with("frag "))
        .filter_map(|l| {
            Some(FragRow {
                used: field(l, "used=")?,
                free: field(l, "free=")?,
                parked: field(l, "parked=")?,
                order3: field(l, "order3=")?,
                order9: field(l, "order9=")?,
            })
        })
        .collect();
    if rows.len() != ALLOCATORS.len() {
        return Err(HostError::Parse(format!(
            "expected 4 `frag` lines in\n{out}"
        )));
    }
    Ok(rows)
}

/// Build, count, time and run the fragmentation workload.
pub fn run(root: &Path) -> Result<HostFigures, HostError> {
    if !valgrind_present() {
        return Err(HostError::ValgrindMissing);
    }
    let mut figures = HostFigures::default();
    for (profile, dir, what) in PROFILES {
        build(root, profile)?;
        let bin = harness(root, dir);
        let insns = count(root, &bin)?;
        eprintln!(
            "xtask: bench: timing ({profile}, {TIMING_PROCESSES} processes of {ROUNDS} \
             interleaved rounds)"
        );
        let runs = (0..TIMING_PROCESSES)
            .map(|_| parse_times(&harness_output(&bin, &["time", ROUNDS])?))
            .collect::<Result<Vec<_>, _>>()?;
        let (ns, ratios) = over_processes(&runs);
        if profile == "release" {
            figures.frag = parse_frag(&harness_output(&bin, &["frag"])?)?;
            eprintln!("xtask: bench: zonekit's order-0 cost by source file (release)");
            figures.breakdown = crate::bench_breakdown::run(root, &bin)?;
            eprintln!("xtask: bench: several CPUs (release)");
            let out = harness_output(&bin, &["smp", "9"])?;
            figures.smp = Some(crate::bench_smp::parse(&out).map_err(HostError::Parse)?);
        }
        figures.profiles.push(ProfileFigures {
            profile,
            what,
            insns,
            ns,
            ratios,
        });
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_profiles_codegen_units_variable() {
        assert_eq!(
            codegen_units_var("release"),
            "CARGO_PROFILE_RELEASE_CODEGEN_UNITS"
        );
        assert_eq!(
            codegen_units_var("bench-o3"),
            "CARGO_PROFILE_BENCH_O3_CODEGEN_UNITS"
        );
    }

    #[test]
    fn parses_harness_output() {
        assert_eq!(
            parse_collected("==1== Events    : Ir\n==1== Collected : 1,234\n"),
            Some(1234)
        );
        let frag = "frag zonekit used=10 free=30 parked=7 order3=2 order9=1\n\
                    frag bsa used=10 free=30 parked=0 order3=3 order9=0\n\
                    frag bitmap used=10 free=30 parked=0 order3=3 order9=0\n\
                    frag floor used=10 free=30 parked=0 order3=3 order9=0\n";
        let rows = parse_frag(frag).unwrap();
        assert_eq!((rows[0].order3, rows[1].order3, rows[0].order9), (2, 3, 1));
        assert_eq!((rows[0].free, rows[0].parked, rows[1].parked), (30, 7, 0));
        // A line without the new fields is refused, not read as zeros.
        assert!(parse_frag(&frag.replace(" parked=7", "")).is_err());
        let mut t = String::new();
        for (w, _, _) in WORKLOADS {
            for a in ALLOCATORS {
                t.push_str(&format!("time {w} {a} 1.5\n"));
            }
        }
        assert_eq!(parse_times(&t).unwrap()[4][3], 1.5);
        assert!(parse_times("time order0 zonekit 1\n").is_err());
    }

    #[test]
    fn takes_medians_over_processes() {
        let run = |z: f64, peer: f64| vec![[z, peer, peer, 1.0]; WORKLOADS.len()];
        let runs = [run(10.0, 30.0), run(10.0, 20.0), run(20.0, 90.0)];
        let (ns, ratios) = over_processes(&runs);
        assert_eq!(ns[0][..2], [10.0, 30.0]);
        // 3×, 2×, 4.5×: the ratio is taken in each process, then the median.
        assert_eq!(
            ratios[4][1],
            Spread {
                median: 3.0,
                min: 2.0,
                max: 4.5
            }
        );
        assert_eq!(ratios[0][0].median, 1.0);
    }
}
