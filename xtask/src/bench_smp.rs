//! The several-CPU part of `cargo xtask bench`: `zonekit-bench smp` (release
//! profile) counts zone-lock acquisitions per 1000 order-0 operations on each of two
//! CPUs (host threads; deterministic) and times 1 and 2 threads on
//! `SmpPageAllocator` against the same allocator behind one `spin::Mutex`.

use std::fmt::Write;

/// What `zonekit-bench smp` printed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SmpFigures {
    /// `pcp->batch` of the node's zone.
    pub batch: u32,
    /// (workload, zone-lock acquisitions per 1000 operations on CPU 0, on CPU 1).
    pub locks: Vec<(String, f64, f64)>,
    /// (threads, ns per operation per thread with per-CPU pagesets, behind one mutex).
    pub times: Vec<(u32, f64, f64)>,
}

/// Read a `key=value` field of a harness line.
fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// Parse the harness output.
pub fn parse(out: &str) -> Result<SmpFigures, String> {
    let mut f = SmpFigures::default();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["smp", "batch", b] => f.batch = b.parse().map_err(|e| format!("{line}: {e}"))?,
            ["smp", "locks", name, ..] => f.locks.push((
                (*name).to_string(),
                field(line, "cpu0").ok_or_else(|| format!("no cpu0 in {line}"))?,
                field(line, "cpu1").ok_or_else(|| format!("no cpu1 in {line}"))?,
            )),
            ["smp", "time", ..] => f.times.push((
                field(line, "threads").ok_or_else(|| format!("no threads in {line}"))? as u32,
                field(line, "smp").ok_or_else(|| format!("no smp in {line}"))?,
                field(line, "mutex").ok_or_else(|| format!("no mutex in {line}"))?,
            )),
            _ => {}
        }
    }
    if f.locks.len() != 3 || f.times.len() != 2 || f.batch == 0 {
        return Err(format!(
            "expected 3 `smp locks`, 2 `smp time` and a batch line in\n{out}"
        ));
    }
    Ok(f)
}

/// The BENCHMARKS.md section.
pub fn render(s: &mut String, f: &SmpFigures) {
    let _ = writeln!(
        s,
        "## Host: several CPUs (per-CPU pagesets, release profile)\n"
    );
    let _ = writeln!(
        s,
        "`SmpPageAllocator` on the same 512 MiB node, two CPUs as two host threads \
         (`zonekit-bench smp`). Zone-lock acquisitions are the allocator's own per-CPU \
         vmstat event, per 1000 order-0 operations (allocations and frees) on each CPU: \
         deterministic, since memory never runs out and no CPU drains another. The \
         zone's `batch` is {}: a run of allocations refills once per batch (1000/{} = \
         {:.1} per 1000 allocations), frees drain a growing chunk (`free_factor`) once \
         above `high`, and bursts that stay below `high` live on the CPU's lists.\n",
        f.batch,
        f.batch,
        1000.0 / f64::from(f.batch)
    );
    let _ = writeln!(s, "| workload | CPU 0 | CPU 1 |\n|---|---|---|");
    for (name, c0, c1) in &f.locks {
        let what = match name.as_str() {
            "pairs" => "alloc+free pairs".to_string(),
            b => format!(
                "{} allocations, then as many frees",
                b.trim_start_matches("burst")
            ),
        };
        let _ = writeln!(s, "| {what} | {c0:.2} | {c1:.2} |");
    }
    let _ = writeln!(
        s,
        "\nThroughput: each thread runs bursts of 64 order-0 allocations then their frees \
         (200 000 operations), on `SmpPageAllocator` and on the same `PageAllocator` behind \
         one `spin::Mutex` (every operation takes it), alternating round by round; median \
         wall-clock ns per operation per thread (lower is better). On this shared 2-core \
         machine the absolute values move a lot from run to run; the ratio is the point.\n"
    );
    let _ = writeln!(
        s,
        "| threads | per-CPU pagesets | one mutex | mutex / per-CPU |\n|---|---|---|---|"
    );
    for (t, smp, mutex) in &f.times {
        let _ = writeln!(
            s,
            "| {t} | {smp:.1} ns | {mutex:.1} ns | {:.2}× |",
            mutex / smp
        );
    }
    let _ = writeln!(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let out = "smp locks pairs cpu0=0.01 cpu1=0.01\nsmp locks burst512 cpu0=5.02 cpu1=5.02\n\
                   smp locks burst4096 cpu0=16.51 cpu1=16.51\nsmp batch 31\n\
                   smp time threads=1 smp=38.04 mutex=39.59\nsmp time threads=2 smp=49.30 mutex=72.92\n";
        let f = parse(out).unwrap();
        assert_eq!(f.batch, 31);
        assert_eq!(f.locks[2], ("burst4096".into(), 16.51, 16.51));
        assert_eq!(f.times[1], (2, 49.30, 72.92));
        let mut s = String::new();
        render(&mut s, &f);
        assert!(s.contains("| 4096 allocations, then as many frees | 16.51 | 16.51 |"));
        assert!(s.contains("| 2 | 49.3 ns | 72.9 ns | 1.48× |"));
        assert!(parse("smp batch 31\n").is_err());
    }
}
