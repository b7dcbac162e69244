//! The host part of `cargo xtask bench`: the harness `zonekit-bench` (tests crate,
//! `src/bin/zonekit-bench`) is built at the workspace release profile and at
//! `bench-o3` (opt-level 3), then
//!
//! * counted under `valgrind --tool=callgrind --toggle-collect='*measure_region*'`:
//!   each workload on each allocator runs `n` and `2n` iterations in two processes,
//!   and (Ir(2n) - Ir(n)) / n is the exact cost of one iteration (set-up, tear-down
//!   and the call into the region cancel);
//! * timed: every workload on every allocator in one process, interleaved round by
//!   round, thread CPU time, medians;
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
    "`buddy_system_allocator` 0.11 FrameAllocator",
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
        "workspace release profile (`opt-level = \"s\"`)",
    ),
    (
        "bench-o3",
        "bench-o3",
        "`[profile.bench-o3]`: release with `opt-level = 3`",
    ),
];

/// Rounds of the interleaved timing.
const ROUNDS: &str = "31";

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
    /// Median CPU ns per operation.
    pub ns: Vec<[f64; 4]>,
}

/// One allocator's fragmentation result.
#[derive(Clone, Debug)]
pub struct FragRow {
    /// Frames in use when the random phase stopped.
    pub used: u64,
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
    root.join("target").join(dir).join("zonekit-bench")
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
    ];
    eprintln!("xtask: {cargo} {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| HostError::Build(format!("cannot run {cargo}: {e}")))?;
    if !status.success() {
        return Err(HostError::Build(format!("cargo build failed ({status})")));
    }
    Ok(())
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

/// `frag <allocator> used=U order3=A order9=B` lines, in [`ALLOCATORS`] order.
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
        eprintln!("xtask: bench: timing ({profile}, {ROUNDS} interleaved rounds)");
        let ns = parse_times(&harness_output(&bin, &["time", ROUNDS])?)?;
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
        });
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_harness_output() {
        assert_eq!(
            parse_collected("==1== Events    : Ir\n==1== Collected : 1,234\n"),
            Some(1234)
        );
        let frag = "frag zonekit used=10 order3=2 order9=1\nfrag bsa used=10 order3=3 order9=0\n\
                    frag bitmap used=10 order3=3 order9=0\nfrag floor used=10 order3=3 order9=0\n";
        let rows = parse_frag(frag).unwrap();
        assert_eq!((rows[0].order3, rows[1].order3, rows[0].order9), (2, 3, 1));
        let mut t = String::new();
        for (w, _, _) in WORKLOADS {
            for a in ALLOCATORS {
                t.push_str(&format!("time {w} {a} 1.5\n"));
            }
        }
        assert_eq!(parse_times(&t).unwrap()[4][3], 1.5);
        assert!(parse_times("time order0 zonekit 1\n").is_err());
    }
}
