//! The guest's `zonekit.bench` alloc+free pair lines (`timed_pairs` on CPU 0 after
//! memory init): `zonekit-bench: order<k> alloc+free pair n=N ticks=T hz=F` for
//! `PageAllocator`, `smp-order<k>` for `SmpPageAllocator`, turned into instructions
//! per pair under `-icount shift=0` (one instruction per ns of virtual time), for
//! `cargo xtask bench`'s guest table and `cargo xtask qemu --icount`'s closing
//! lines.

use std::fmt::Write as _;

/// One pair line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairCount {
    /// Through `SmpPageAllocator` (else `PageAllocator`).
    pub smp: bool,
    /// The block order.
    pub order: u32,
    /// Pairs timed.
    pub n: u64,
    /// Counter ticks over them.
    pub ticks: u64,
    /// Counter rate.
    pub hz: u64,
}

impl PairCount {
    /// Instructions per pair, the loop included.
    pub fn per_pair(&self) -> f64 {
        self.ticks as f64 * 1e9 / self.hz as f64 / self.n as f64
    }
}

/// Every well-formed pair line of a boot's output (lines with n or hz 0 are left
/// out: they give no figure).
pub fn parse(stdout: &str) -> Vec<PairCount> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("zonekit-bench: ")?;
            let (smp, rest) = match rest.strip_prefix("smp-") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let rest = rest.strip_prefix("order")?;
            let (order, rest) = rest.split_once(' ')?;
            let rest = rest.strip_prefix("alloc+free pair ")?;
            let field = |key: &str| -> Option<u64> {
                rest.split_ascii_whitespace()
                    .find_map(|w| w.strip_prefix(key))?
                    .parse()
                    .ok()
            };
            let p = PairCount {
                smp,
                order: order.parse().ok()?,
                n: field("n=")?,
                ticks: field("ticks=")?,
                hz: field("hz=")?,
            };
            (p.n != 0 && p.hz != 0).then_some(p)
        })
        .collect()
}

/// `cargo xtask qemu --icount`'s line per pair figure.
pub fn summary_lines(stdout: &str) -> Vec<String> {
    parse(stdout)
        .iter()
        .map(|p| {
            format!(
                "xtask: {}order-{} alloc+free pair under -icount shift=0: {:.1} instructions \
                 ({} pairs, loop included)",
                if p.smp { "SmpPageAllocator " } else { "" },
                p.order,
                p.per_pair(),
                p.n
            )
        })
        .collect()
}

/// The columns: (through `SmpPageAllocator`, order), in table order.
pub const COLUMNS: [(bool, u32); 4] = [(false, 0), (false, 3), (true, 0), (true, 3)];

/// The guest pair table: a row per board, a column per entry of [`COLUMNS`], then
/// the host harness's release-profile figures for the `PageAllocator` workloads.
pub fn render(s: &mut String, rows: &[(&str, u64, Vec<PairCount>)], host: Option<[f64; 2]>) {
    let _ = writeln!(
        s,
        "## Guest: alloc+free pairs (QEMU `-icount shift=0,sleep=off`)\n"
    );
    let n = rows
        .iter()
        .flat_map(|r| r.2.iter())
        .map(|p| p.n)
        .max()
        .unwrap_or(0);
    let host_arch = std::env::consts::ARCH;
    let _ = writeln!(
        s,
        "The same boots, after memory init: CPU 0 allocates a `GFP_KERNEL` block and frees \
         it again {n} times untimed (filling the per-CPU lists), then {n} times between two \
         counter reads (`PageAllocator::timed_pairs`); then the same through \
         `SmpPageAllocator` (what a kernel shares between its CPUs: the CPU's pageset \
         lock, vmstat), still on CPU 0 alone. Instructions per pair, the loop \
         included, on the target (ARMv7, 32-bit: a `u64` pfn or counter takes two registers). \
         The host row is the harness's figure for the same workload ({host_arch}, release \
         profile), for scale only: another instruction set.\n"
    );
    let _ = writeln!(
        s,
        "| board | RAM MiB | order-0 pair | order-3 pair | order-0 pair, `SmpPageAllocator` \
         | order-3 pair, `SmpPageAllocator` |\n|---|---|---|---|---|---|"
    );
    for (board, mib, pairs) in rows {
        let _ = write!(s, "| {board} | {mib} |");
        for (smp, o) in COLUMNS {
            match pairs.iter().find(|p| p.smp == smp && p.order == o) {
                Some(p) => {
                    let _ = write!(s, " {:.1} |", p.per_pair());
                }
                None => s.push_str(" – |"),
            }
        }
        let _ = writeln!(s);
    }
    if let Some([o0, o3]) = host {
        let _ = writeln!(
            s,
            "| host harness ({host_arch}) | – | {o0:.1} | {o3:.1} | – | – |"
        );
    }
    let _ = writeln!(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pair_lines() {
        let out = "zonekit-bench: free_area_init_core+memblock_free_all ticks=1 hz=2 pages=3\n\
                   zonekit-bench: order0 alloc+free pair n=10000 ticks=287006 hz=100000000\n\
                   zonekit-bench: order3 alloc+free pair n=0 ticks=5 hz=100000000\n\
                   zonekit-bench: orderx alloc+free pair n=1 ticks=5 hz=1\n\
                   zonekit-bench: smp-order3 alloc+free pair n=100 ticks=300 hz=1000000000\n";
        let p = parse(out);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].smp, p[0].order, p[0].n, p[0].ticks),
            (false, 0, 10000, 287006)
        );
        assert!((p[0].per_pair() - 287.006).abs() < 1e-9);
        assert_eq!((p[1].smp, p[1].order, p[1].per_pair()), (true, 3, 3.0));
        let lines = summary_lines(out);
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].contains("order-0 alloc+free pair under -icount shift=0: 287.0 instructions")
        );
        assert!(lines[1].contains("SmpPageAllocator order-3"));
        let mut s = String::new();
        render(&mut s, &[("vexpress-a9", 1024, p)], Some([198.0, 210.0]));
        assert!(
            s.contains("| vexpress-a9 | 1024 | 287.0 | – | – | 3.0 |"),
            "{s}"
        );
        assert!(s.contains("| 198.0 | 210.0 | – | – |"), "{s}");
    }
}
