//! `cargo xtask bench`: instructions per operation (callgrind) and interleaved
//! CPU-time ratios of zonekit's page allocator against its peers on the host
//! ([`crate::bench_host`]), the fragmentation run, and the guest's instructions per
//! page for memory init under `-icount shift=0,sleep=off`; everything goes to
//! BENCHMARKS.md with a targets table (issue 11). Targets are reported as met / not
//! met, never asserted in tests.

use std::fmt::Write as _;
use std::process::Command;

use crate::bench_host::{
    HostFigures, Spread, ALIGN_RUSTFLAGS, ALLOCATOR_TITLES, TIMING_PROCESSES, WORKLOADS,
};
use crate::boards::Board;
use crate::{build_image, run_qemu, workspace_root, BootOptions, MIB};

/// The guest runs the targets name: (board, RAM). `cargo xtask bench` boots every
/// board whose profile has `qemu.bench = true` at its `max_ram` (these two).
const GUESTS: [(&str, u64); 2] = [("vexpress-a9", 1024 * MIB), ("sabrelite", 3840 * MIB)];

/// Instruction targets (release profile), per workload of [`WORKLOADS`]
/// (`None`: no target).
const INSN_TARGETS: [Option<f64>; 5] = [Some(60.0), Some(70.0), Some(120.0), None, Some(150.0)];
/// Target: guest instructions per page of memory init.
const TARGET_INSNS_PER_PAGE: f64 = 8.0;

/// The guest's `zonekit.bench` line: timer ticks over memory init, the timer's rate
/// and the node's present pages.
#[derive(Clone, Copy, Debug, PartialEq)]
struct InitCount {
    ticks: u64,
    hz: u64,
    pages: u64,
}

impl InitCount {
    /// Parse `zonekit-bench: free_area_init_core+memblock_free_all ticks=N hz=F
    /// pages=P` out of a boot's output; an error says what is missing or zero.
    fn parse(stdout: &str) -> Result<InitCount, String> {
        let (ticks, hz, pages) =
            parse_bench_line(stdout).ok_or("no zonekit-bench line in the output")?;
        if hz == 0 || pages == 0 {
            return Err(format!("bench line with hz={hz} pages={pages}"));
        }
        Ok(InitCount { ticks, hz, pages })
    }

    /// Under `-icount shift=0` one instruction takes 1 ns: instructions = ticks / hz s.
    fn instructions(&self) -> f64 {
        self.ticks as f64 * 1e9 / self.hz as f64
    }

    fn per_page(&self) -> f64 {
        self.instructions() / self.pages as f64
    }
}

/// What one guest run reported.
#[derive(Clone, Debug)]
struct GuestFigure {
    board: &'static str,
    mem_mib: u64,
    count: InitCount,
    init_us: Option<u64>,
    pairs: Vec<crate::bench_pairs::PairCount>,
}

/// The line `cargo xtask qemu --icount` prints after a `zonekit.bench` boot: the
/// guest's bench line turned into instructions per page (`None`: no usable bench
/// line).
pub(crate) fn icount_summary(stdout: &str) -> Option<String> {
    let c = InitCount::parse(stdout).ok()?;
    Some(format!(
        "xtask: memory init under -icount shift=0: {:.0} instructions (ticks × 10⁹ / hz) for \
         {} pages = {:.2} instructions per page",
        c.instructions(),
        c.pages,
        c.per_page()
    ))
}

/// The three numbers of the `zonekit-bench:` line.
fn parse_bench_line(stdout: &str) -> Option<(u64, u64, u64)> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("zonekit-bench: free_area_init_core+memblock_free_all"))?;
    let field = |key: &str| -> Option<u64> {
        line.split_ascii_whitespace()
            .find_map(|w| w.strip_prefix(key))?
            .parse()
            .ok()
    };
    Some((field("ticks=")?, field("hz=")?, field("pages=")?))
}

/// Parse `zonekit: memory init took N us`.
fn parse_init_us(stdout: &str) -> Option<u64> {
    stdout.lines().find_map(|l| {
        l.strip_prefix("zonekit: memory init took ")?
            .strip_suffix(" us")?
            .parse()
            .ok()
    })
}

/// Boot `board` with `mem` under `-icount` and read its memory-init figure; also
/// the release ELF it booted (for the size table).
fn guest_run(
    tc: &crate::toolchain::ArmToolchain,
    board: &'static Board,
    mem: u64,
) -> Result<(GuestFigure, std::path::PathBuf), String> {
    let image = build_image(tc, &board.package, &board.profile.bin, board, true, false)?;
    let opts = BootOptions {
        board,
        mem,
        cmdline: Some("zonekit.bench".into()),
        release: true,
        timeout_secs: 600,
        dtb: crate::dtb::DtbMode::Auto,
        icount: true,
        workdir: None,
        gdb: None,
        smp: 1,
    };
    eprintln!(
        "xtask: bench: {} {} MiB under -icount",
        board.name,
        mem >> 20
    );
    let run = run_qemu(&opts, &image.bin, false)?;
    if run.timed_out || run.status != 0 {
        return Err(format!(
            "{} exited with {} (timed out: {})\n{}{}",
            board.name, run.status, run.timed_out, run.stdout, run.stderr
        ));
    }
    let count = InitCount::parse(&run.stdout)
        .map_err(|e| format!("{}: {e}\n{}", board.name, run.stdout))?;
    let figure = GuestFigure {
        board: board.name,
        mem_mib: mem >> 20,
        count,
        init_us: parse_init_us(&run.stdout),
        pairs: crate::bench_pairs::parse(&run.stdout),
    };
    Ok((figure, image.elf))
}

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn machine_info() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().take(3).collect();
            (f.len() == 3).then(|| f.join(" "))
        })
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "unknown".into());
    vec![
        ("nproc".into(), nproc),
        ("CPU".into(), model),
        ("load average when the run started".into(), load),
        ("rustc".into(), shell("rustc", &["--version"])),
        (
            "QEMU".into(),
            shell("qemu-system-arm", &["--version"])
                .lines()
                .next()
                .unwrap_or("unknown")
                .to_string(),
        ),
        (
            "commit".into(),
            format!(
                "{}{}",
                shell("git", &["rev-parse", "--short", "HEAD"]),
                // BENCHMARKS.md itself (rewritten by this command) does not count.
                if shell(
                    "git",
                    &[
                        "status",
                        "--porcelain",
                        "--untracked-files=no",
                        "--",
                        ".",
                        ":!BENCHMARKS.md",
                    ],
                )
                .is_empty()
                {
                    ""
                } else {
                    " (with uncommitted changes)"
                }
            ),
        ),
    ]
}

fn met(ok: bool) -> &'static str {
    if ok {
        "**met**"
    } else {
        "**not met**"
    }
}

/// `cargo xtask bench [--no-host] [--no-guest] [--output FILE]`.
pub fn cmd_bench(args: &crate::cli::BenchArgs) -> Result<u8, String> {
    let (host, guest) = (!args.no_host, !args.no_guest);
    let root = workspace_root();
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| root.join("BENCHMARKS.md"));
    let machine = machine_info();
    let figures = if host {
        Some(crate::bench_host::run(&root).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mut guests = Vec::new();
    let mut sizes = Vec::new();
    if guest {
        let tc = crate::toolchain::ArmToolchain::find_or_install()?;
        crate::toolchain::ensure_qemu()?;
        for board in crate::boards::all()?
            .iter()
            .filter(|b| b.profile.qemu.bench)
        {
            let (figure, plain_elf) = guest_run(&tc, board, board.max_ram)?;
            guests.push(figure);
            let defmt_elf =
                build_image(&tc, &board.package, &board.profile.bin, board, true, true)?.elf;
            for (defmt, elf) in [(false, plain_elf), (true, defmt_elf)] {
                sizes.push(crate::bench_size::ImageSize {
                    board: board.name,
                    defmt,
                    sizes: crate::bench_size::of_file(&elf)?,
                });
            }
        }
    }
    let md = render(&machine, figures.as_ref(), &guests, &sizes);
    std::fs::write(&output, &md).map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    print!("{md}");
    eprintln!("xtask: wrote {}", output.display());
    Ok(0)
}

fn ratio_cell(r: &Spread) -> String {
    format!("{:.2}×", r.median)
}

/// The targets table's rows: (target, measured, met).
fn targets(h: Option<&HostFigures>, guests: &[GuestFigure]) -> Vec<(String, String, Option<bool>)> {
    let mut rows = Vec::new();
    let descriptor = zonekit_core::page::PAGE_DESCRIPTOR_SIZE;
    rows.push((
        "page descriptor ≤ 16 bytes".into(),
        format!("`size_of::<Page>()` = {descriptor}"),
        Some(descriptor <= 16),
    ));
    let release = h.and_then(|h| h.profiles.first());
    for (i, (_, what, _)) in WORKLOADS.iter().enumerate() {
        let Some(t) = INSN_TARGETS[i] else { continue };
        let target = format!("{what}: ≤ {t} instructions (release profile)");
        rows.push(match release {
            Some(p) => (
                target,
                format!("{:.1}", p.insns[i][0]),
                Some(p.insns[i][0] <= t),
            ),
            None => (target, "not run (`--no-host`)".into(), None),
        });
    }
    let o3 = h.and_then(|h| h.profiles.get(1));
    // (workload index, peer index, factor)
    let speed: [(usize, usize, f64); 4] = [(0, 1, 3.0), (0, 2, 1.5), (4, 1, 2.0), (4, 2, 2.0)];
    for (w, p, k) in speed {
        let target = format!(
            "{}: CPU time ≥ {k}× faster than {} (opt-level 3, interleaved)",
            WORKLOADS[w].1, ALLOCATOR_TITLES[p]
        );
        rows.push(match o3 {
            Some(o) => {
                let r = o.ratios[w][p];
                let measured = format!(
                    "{:.2}× (median of {TIMING_PROCESSES} processes; {:.2}–{:.2}×)",
                    r.median, r.min, r.max
                );
                (target, measured, Some(r.median >= k))
            }
            None => (target, "not run (`--no-host`)".into(), None),
        });
    }
    let target = "fragmentation: free order-3 blocks after the 90% run ≥ every peer's".to_string();
    rows.push(match h.filter(|h| !h.frag.is_empty()) {
        Some(h) => {
            let z = h.frag[0].order3;
            let best = h.frag[1..].iter().map(|r| r.order3).max().unwrap_or(0);
            (target, format!("{z} (best peer {best})"), Some(z >= best))
        }
        None => (target, "not run (`--no-host`)".into(), None),
    });
    for (name, mem) in GUESTS {
        let target = format!(
            "guest init ≤ {TARGET_INSNS_PER_PAGE} instructions per page, {name} {} MiB",
            mem >> 20
        );
        rows.push(
            match guests
                .iter()
                .find(|g| g.board == name && g.mem_mib == mem >> 20)
            {
                Some(g) => (
                    target,
                    format!("{:.2}", g.count.per_page()),
                    Some(g.count.per_page() <= TARGET_INSNS_PER_PAGE),
                ),
                None => (target, "not run (`--no-guest`)".into(), None),
            },
        );
    }
    rows
}

fn render_host(s: &mut String, h: &HostFigures) {
    let header = |s: &mut String, first: &str| {
        let _ = write!(s, "| {first} |");
        for t in ALLOCATOR_TITLES {
            let _ = write!(s, " {t} |");
        }
        let _ = writeln!(s, "\n|---|---|---|---|---|");
    };
    let _ = writeln!(s, "## Host: the peers\n");
    let _ = writeln!(
        s,
        "`buddy_system_allocator` 0.13's `FrameAllocator` (rCore's buddy: a `BTreeSet` of \
         free blocks per order), `bitmap-allocator` 0.4's `BitAlloc1M` (rcore-os: a \
         16-ary tree of bitmaps) and a `Vec` stack of free blocks per order 0-3 that \
         splits on demand and never merges (the floor: what a pop and a push cost). Looked at and left \
         out: `osdk-frame-allocator` 0.19 (Asterinas' buddy with per-CPU caches) needs \
         `ostd`, which is nightly-only kernel code (`#![feature(..)]`) and does not build \
         on the host on stable; `axallocator` 0.2's `BitmapPageAllocator` is \
         `bitmap-allocator` (0.2) underneath, the same algorithm as the bitmap peer; \
         `buddy-alloc`, `talc` and `embedded-alloc` are heap allocators that keep their \
         lists inside the memory they manage, not frame allocators.\n"
    );
    let _ = writeln!(s, "## Host: instructions per operation (callgrind)\n");
    let _ = writeln!(
        s,
        "Every allocator holds the same free frames: the pfn ranges `memblock_free_all` \
         frees on a 512 MiB zonekit node (the peers are given exactly those ranges). \
         `valgrind --tool=callgrind --toggle-collect='*measure_region*'` runs each workload \
         `n` and `2n` times in two processes; the table is (Ir(2n) − Ir(n)) / (n × ops per \
         iteration): exact, repeatable, loop and harness included (the same code for every \
         allocator). Each allocator's alloc and free are inlined into the workload loop \
         (`#[inline(always)]` on the harness's wrappers, for every allocator alike), as \
         a kernel's call site gets an `#[inline]` fast path. Harness: `tests/src/bin/zonekit-bench`. Mixed: a seeded xorshift \
         sequence, the same for all, at most {} live blocks.\n",
        4096
    );
    for p in &h.profiles {
        let _ = writeln!(s, "### {} ({})\n", p.profile, p.what);
        header(s, "workload");
        for (i, (_, what, _)) in WORKLOADS.iter().enumerate() {
            let _ = write!(s, "| {what} |");
            for x in p.insns[i] {
                let _ = write!(s, " {x:.1} |");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Host: CPU time, interleaved in each process\n");
    let _ = writeln!(
        s,
        "A harness process holds all four allocators and alternates them round by round \
         (31 rounds plus a warm-up, the order rotating), timing each chunk with the \
         thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`); it reports each allocator's median. \
         {TIMING_PROCESSES} such processes run one after the other, because a process's \
         memory placement can hold a ratio at another value for the whole process. Cells: \
         the median over the processes of the ns per operation, and of the peer's time over \
         zonekit's in the same process (above 1×: zonekit is faster); the targets table \
         also gives the smallest and largest ratio. The harness is built with `RUSTFLAGS=\"{ALIGN_RUSTFLAGS}\"` \
         (functions at 64 bytes, jump targets at 32, for every allocator alike), so that \
         code moving elsewhere in the binary does not move these figures; the padding is \
         never executed and the instruction counts are those of the plain build. It is \
         also built in one codegen unit, so that what is inlined into each allocator's \
         code does not depend on how the rest of the harness was split into units (with \
         16 units, a change in zonekit alone once doubled FrameAllocator's order-0 time). On a \
         loaded shared machine the ratios still move by a few percent from run to run; the \
         instruction counts above do not move at all.\n"
    );
    for p in &h.profiles {
        let _ = writeln!(s, "### {} ({})\n", p.profile, p.what);
        header(s, "workload");
        for (i, (_, what, _)) in WORKLOADS.iter().enumerate() {
            let z = p.ns[i][0];
            let _ = write!(s, "| {what} | {z:.1} ns |");
            for (x, r) in p.ns[i][1..].iter().zip(&p.ratios[i][1..]) {
                let _ = write!(s, " {x:.1} ns ({}) |", ratio_cell(r));
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    if !h.frag.is_empty() {
        let _ = writeln!(s, "## Host: fragmentation (release profile)\n");
        let _ = writeln!(
            s,
            "Seeded random allocations and frees of orders 0-3 (two allocations per free) \
             until 90% of the frames are in use; then as many order-3 blocks as the allocator \
             still hands out are allocated and counted (and given back), then the same for \
             order 9. zonekit allocates these with `__GFP_MEMALLOC` (no watermarks: the \
             question is what is left, not what the watermarks allow). The floor never \
             merges and has no order 9. Free frames return to the start afterwards (checked). \
             zonekit's pages on per-CPU lists (Linux's pcp) do not merge while they wait \
             there, so allocations meanwhile split other blocks; the count's first failure \
             drains the lists (the slow path's `drain_all_pages`), and what stays free in \
             pieces below order 3 is the last but one column.\n"
        );
        let _ = writeln!(
            s,
            "| allocator | frames in use | frames free | of them on per-CPU lists | \
             order-3 blocks | frames free outside them | order-9 blocks |\n\
             |---|---|---|---|---|---|---|"
        );
        for (i, r) in h.frag.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                ALLOCATOR_TITLES[i],
                r.used,
                r.free,
                r.parked,
                r.order3,
                r.free.saturating_sub(8 * r.order3),
                r.order9
            );
        }
        let _ = writeln!(s);
    }
    if let Some(b) = &h.breakdown {
        crate::bench_breakdown::render(s, b);
    }
    if let Some(smp) = &h.smp {
        crate::bench_smp::render(s, smp);
    }
}

fn render(
    machine: &[(String, String)],
    host: Option<&HostFigures>,
    guests: &[GuestFigure],
    sizes: &[crate::bench_size::ImageSize],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Written by `cargo xtask bench` (do not edit by hand; rerun it). Targets from issue 11 \
         are reported here, never asserted in tests.\n"
    );
    let _ = writeln!(s, "## Commands\n");
    let _ = writeln!(s, "```sh");
    let _ = writeln!(
        s,
        "cargo xtask bench            # everything below, rewrites this file (needs valgrind)"
    );
    let _ = writeln!(s, "cargo xtask bench --no-guest # host part only");
    let _ = writeln!(
        s,
        "CARGO_PROFILE_BENCH_O3_CODEGEN_UNITS=1 RUSTFLAGS=\"{ALIGN_RUSTFLAGS}\" cargo run \
         --target-dir target/bench-aligned -p zonekit-tests --profile bench-o3 --bin \
         zonekit-bench -- time 31   # one timing process"
    );
    let _ = writeln!(
        s,
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 RUSTFLAGS=\"{ALIGN_RUSTFLAGS}\" cargo build \
         --target-dir target/bench-aligned -p zonekit-tests --release --bin zonekit-bench"
    );
    let _ = writeln!(s, "valgrind --tool=callgrind --toggle-collect='*measure_region*' target/bench-aligned/release/zonekit-bench count zonekit order0 2000");
    let _ = writeln!(
        s,
        "cargo xtask qemu --board sabrelite --mem 3840M --release --icount --cmdline zonekit.bench"
    );
    let _ = writeln!(s, "```\n");
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "| what | value |\n|---|---|");
    for (k, v) in machine {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(s, "| target | measured | |\n|---|---|---|");
    for (t, m, ok) in targets(host, guests) {
        let _ = writeln!(s, "| {t} | {m} | {} |", ok.map_or("", met));
    }
    let _ = writeln!(s);
    if let Some(h) = host {
        render_host(&mut s, h);
    }
    if !guests.is_empty() {
        let _ = writeln!(
            s,
            "## Guest: instructions per page (QEMU `-icount shift=0,sleep=off`)\n"
        );
        let _ = writeln!(
            s,
            "Release image, `-append zonekit.bench`. The guest reads its board counter around \
             `free_area_init_node` (mem_map allocation, `free_area_init_core`, `memmap_init`) \
             and around `memblock_free_all`, and prints the sum of both spans in ticks. Under \
             `-icount shift=0` each instruction takes 1 ns of virtual time, so instructions = \
             ticks × 10⁹ / hz (to within one tick: 10 instructions on the A9 global timer). \
             Pages = the node's present pages.\n"
        );
        let _ = writeln!(
            s,
            "| board | RAM MiB | timer ticks | hz | instructions | pages | instructions per page | memory init (guest µs) |\n|---|---|---|---|---|---|---|---|"
        );
        for g in guests {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.0} | {} | {:.2} | {} |",
                g.board,
                g.mem_mib,
                g.count.ticks,
                g.count.hz,
                g.count.instructions(),
                g.count.pages,
                g.count.per_page(),
                g.init_us.map_or("–".into(), |u| u.to_string())
            );
        }
        let _ = writeln!(s);
        let rows: Vec<_> = guests
            .iter()
            .map(|g| (g.board, g.mem_mib, g.pairs.clone()))
            .collect();
        // The host harness's order-0 and order-3 pair workloads, release profile.
        let host_pairs = host
            .and_then(|h| h.profiles.first())
            .map(|p| [p.insns[0][0], p.insns[2][0]]);
        crate::bench_pairs::render(&mut s, &rows, host_pairs);
    }
    crate::bench_size::render(&mut s, sizes);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_host::{FragRow, ProfileFigures};

    #[test]
    fn icount_summary_gives_instructions_per_page() {
        let out = "x\nzonekit-bench: free_area_init_core+memblock_free_all ticks=473631 hz=66000000 pages=983039\n";
        let line = icount_summary(out).expect("a bench line");
        assert!(
            line.ends_with("for 983039 pages = 7.30 instructions per page"),
            "{line}"
        );
        assert!(line.contains(" 7176227 instructions"), "{line}");
        assert_eq!(icount_summary("no bench line here"), None);
        let zero = "zonekit-bench: free_area_init_core+memblock_free_all ticks=1 hz=0 pages=1";
        assert_eq!(icount_summary(zero), None);
    }

    #[test]
    fn parses_the_guest_lines() {
        let out = "zonekit: memory init took 1234 us\n\
                   zonekit-bench: free_area_init_core+memblock_free_all ticks=1000 hz=100000000 pages=262144\n";
        assert_eq!(parse_bench_line(out), Some((1000, 100_000_000, 262_144)));
        assert_eq!(parse_init_us(out), Some(1234));
        let c = InitCount {
            ticks: 125,
            hz: 62_500_000,
            pages: 2,
        };
        assert_eq!(c.instructions(), 2000.0);
        assert_eq!(c.per_page(), 1000.0);
        assert_eq!(parse_bench_line("nothing"), None);
        assert!(InitCount::parse("nothing")
            .unwrap_err()
            .contains("no zonekit-bench line"));
        let zero = "zonekit-bench: free_area_init_core+memblock_free_all ticks=1 hz=0 pages=1";
        assert!(InitCount::parse(zero).unwrap_err().contains("hz=0"));
    }

    #[test]
    fn renders_targets() {
        let p = |insns: f64, ns: f64| ProfileFigures {
            profile: "p",
            what: "w",
            insns: vec![[insns, 400.0, 150.0, 24.0]; 5],
            ns: vec![[ns, 60.0, 60.0, 5.0]; 5],
            ratios: vec![
                [ns, 60.0, 60.0, 5.0].map(|x| Spread {
                    median: x / ns,
                    min: x / ns,
                    max: x / ns
                });
                5
            ],
        };
        let frag = |n| FragRow {
            used: 1,
            free: 40,
            parked: 0,
            order3: n,
            order9: 0,
        };
        let h = HostFigures {
            profiles: vec![p(50.0, 30.0), p(50.0, 10.0)],
            frag: vec![frag(5), frag(5), frag(4), frag(0)],
            smp: None,
            breakdown: Some(vec![crate::bench_breakdown::Breakdown {
                title: "order-0 alloc+free pair",
                rows: vec![
                    ("core/src/page_alloc/fast.rs".into(), 40.0),
                    ("other".into(), 10.0),
                ],
            }]),
        };
        let md = render(&[], Some(&h), &[], &[]);
        assert!(md.contains("6.00×"), "{md}");
        assert!(
            md.contains("### order-0 alloc+free pair (50.0 in all)"),
            "{md}"
        );
        assert!(
            md.contains("| `core/src/page_alloc/fast.rs` | 40.0 |"),
            "{md}"
        );
        assert!(!md.contains("**not met**"), "{md}");
        // 40 free frames, 4 order-3 blocks: 8 frames free outside them.
        assert!(md.contains(" | 1 | 40 | 0 | 4 | 8 | 0 |"), "{md}");
        assert_eq!(crate::bench_host::ALLOCATORS.len(), ALLOCATOR_TITLES.len());
        let h = HostFigures {
            profiles: vec![p(61.0, 30.0), p(50.0, 30.0)],
            frag: vec![frag(4), frag(5), frag(4), frag(0)],
            smp: None,
            breakdown: None,
        };
        let md = render(&[], Some(&h), &[], &[]);
        assert!(md.contains("**not met**"), "{md}");
    }
}
