//! Where zonekit's instructions go, for `cargo xtask bench`: the counted order-0
//! workloads (release profile) are profiled `n` and `2n` times, as in the main
//! count, and `callgrind_annotate --inclusive=no` gives each run's self cost per
//! source line's file; the difference per operation, file by file, adds up to the
//! table's figure. Inlined code counts in the file it is written in, so the rows say
//! which step of the allocator (fast path, checks, buddy lists, harness) costs what.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::bench_host::{callgrind, ops, HostError};

/// The workloads broken down: (harness name, title, `n`).
const BROKEN_DOWN: [(&str, &str, u64); 2] = [
    ("order0", "order-0 alloc+free pair", 2000),
    (
        "order0_batch",
        "order-0, 1024 allocs then 1024 frees, per pair",
        4,
    ),
];

/// Rows below this many instructions per operation are summed into "other".
const SMALL: f64 = 1.0;

/// One workload's cost by source file, per operation, largest first.
#[derive(Debug, Clone)]
pub struct Breakdown {
    /// The workload's title.
    pub title: &'static str,
    /// (file, instructions per operation).
    pub rows: Vec<(String, f64)>,
}

/// `callgrind_annotate` is there (it comes with valgrind, but is a script of its own;
/// its `--version` exits with 255, so only starting it is checked).
fn annotate_present() -> bool {
    Command::new("callgrind_annotate")
        .arg("--version")
        .output()
        .is_ok()
}

/// Self cost per file of a callgrind profile.
fn per_file(root: &Path, profile: &Path) -> Result<BTreeMap<String, u64>, HostError> {
    let o = Command::new("callgrind_annotate")
        .args(["--inclusive=no", "--threshold=100", "--auto=no"])
        .arg(profile)
        .output()
        .map_err(|e| HostError::Run(format!("callgrind_annotate: {e}")))?;
    if !o.status.success() {
        return Err(HostError::Run(format!(
            "callgrind_annotate {}: {}",
            profile.display(),
            o.status
        )));
    }
    Ok(parse_annotate(&String::from_utf8_lossy(&o.stdout), root))
}

/// `Ir (pct)  file:function` lines into costs per file (paths below `root` made
/// relative; the Rust library's inlined code, `/rustc/...`, is one row).
fn parse_annotate(text: &str, root: &Path) -> BTreeMap<String, u64> {
    let root = format!("{}/", root.display());
    let mut files = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(ir), Some(pct), Some(place)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let (Ok(ir), true) = (ir.replace(',', "").parse::<u64>(), pct.starts_with('(')) else {
            continue;
        };
        // `(100.0%)` may be split from its number by a space: the place is then next.
        let place = if place.ends_with("%)") {
            match words.next() {
                Some(p) => p,
                None => continue,
            }
        } else {
            place
        };
        if place == "PROGRAM" {
            continue;
        }
        let file = place.split_once(':').map_or(place, |(f, _)| f);
        let file = if file.starts_with("/rustc/") {
            "Rust library (inlined)".to_string()
        } else {
            file.strip_prefix(&root).unwrap_or(file).to_string()
        };
        *files.entry(file).or_insert(0) += ir;
    }
    files
}

/// Profile the broken-down workloads with the release harness `bin`.
pub fn run(root: &Path, bin: &Path) -> Result<Option<Vec<Breakdown>>, HostError> {
    if !annotate_present() {
        eprintln!("xtask: bench: callgrind_annotate not found: no breakdown by file");
        return Ok(None);
    }
    let (a, b) = (
        root.join("target/bench-breakdown-1.out"),
        root.join("target/bench-breakdown-2.out"),
    );
    let mut all = Vec::new();
    for (w, title, n) in BROKEN_DOWN {
        callgrind(bin, &a, &["count", "zonekit", w, &n.to_string()])?;
        callgrind(bin, &b, &["count", "zonekit", w, &(2 * n).to_string()])?;
        let (once, twice) = (per_file(root, &a)?, per_file(root, &b)?);
        let per_op = (n * ops(w)) as f64;
        let mut rows: Vec<(String, f64)> = twice
            .iter()
            .map(|(f, &t)| {
                let o = once.get(f).copied().unwrap_or(0);
                (f.clone(), t.saturating_sub(o) as f64 / per_op)
            })
            .collect();
        let small: f64 = rows.iter().filter(|r| r.1 < SMALL).map(|r| r.1).sum();
        rows.retain(|r| r.1 >= SMALL);
        rows.sort_by(|x, y| y.1.total_cmp(&x.1));
        if small > 0.0 {
            rows.push(("other (rows under 1 each)".into(), small));
        }
        all.push(Breakdown { title, rows });
    }
    let _ = std::fs::remove_file(a);
    let _ = std::fs::remove_file(b);
    Ok(Some(all))
}

/// The breakdown tables.
pub fn render(s: &mut String, all: &[Breakdown]) {
    let _ = writeln!(
        s,
        "## Host: where zonekit's instructions go (release profile)\n"
    );
    let _ = writeln!(
        s,
        "The same `n` / `2n` callgrind runs as above, zonekit only, split by the source \
         file each instruction was compiled from (`callgrind_annotate --inclusive=no`; \
         inlined code counts where it is written): instructions per operation. The rows \
         add up to the table's figure.\n"
    );
    for b in all {
        let total: f64 = b.rows.iter().map(|r| r.1).sum();
        let _ = writeln!(s, "### {} ({total:.1} in all)\n", b.title);
        let _ = writeln!(s, "| source file | instructions per op |\n|---|---|");
        for (f, x) in &b.rows {
            let _ = writeln!(s, "| `{f}` | {x:.1} |");
        }
        let _ = writeln!(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotate_lines_sum_per_file() {
        let text = "\
--------------------------------------------------------------------------------
848,104 (100.0%)  PROGRAM TOTALS
--------------------------------------------------------------------------------
264,000 (31.13%)  /work/main/core/src/page_alloc/fast.rs:<a as b>::free
 88,001 (10.38%)  /work/main/core/src/page_alloc/allocate.rs:<a as b>::alloc
 83,990 ( 9.90%)  /work/main/core/src/page_alloc/fast.rs:<a as b>::alloc
 48,000 ( 5.66%)  /rustc/5980/library/core/src/sync/atomic.rs:<a as b>::free
 20,024 ( 2.36%)  /work/main/tests/src/bin/zonekit-bench/workloads.rs:measure_region [/x]
";
        let m = parse_annotate(text, Path::new("/work/main"));
        assert_eq!(m["core/src/page_alloc/fast.rs"], 347_990);
        assert_eq!(m["core/src/page_alloc/allocate.rs"], 88_001);
        assert_eq!(m["Rust library (inlined)"], 48_000);
        assert_eq!(m["tests/src/bin/zonekit-bench/workloads.rs"], 20_024);
        assert_eq!(m.len(), 4);
    }
}
