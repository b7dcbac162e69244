//! `zonekit-bench`: the host harness of `cargo xtask bench`.
//!
//! * `zonekit-bench count <allocator> <workload> <n>`: set up, then run `n`
//!   iterations inside `measure_region` (run it under
//!   `valgrind --tool=callgrind --toggle-collect='*measure_region*'`, twice with
//!   `n` and `2n`: the difference over `n` is the exact cost of one iteration).
//! * `zonekit-bench time <rounds>`: every workload on every allocator in this one
//!   process, interleaved round by round (the order rotates), CPU time of this
//!   thread per chunk; prints the median ns per operation.
//! * `zonekit-bench frag`: the fragmentation run on every allocator.
//! * `zonekit-bench smp <rounds>`: zonekit on two CPUs (see the `smp` module).
//!
//! Every run checks that the free frames return to the start after each workload.

mod peers;
mod smp;
mod workloads;

use peers::{Bitmap, Bsa, Floor, Frames, Zonekit};
use std::process::ExitCode;
use workloads::{fragmentation, measure_region, State, Workload};

/// Allocator names on the command line, in table order.
const ALLOCATORS: [&str; 4] = ["zonekit", "bsa", "bitmap", "floor"];

fn count<A: Frames>(mut a: A, w: Workload, n: u64) -> Result<(), String> {
    let start = a.free_frames();
    let mut s = State::new(w, &mut a);
    measure_region(&mut a, &mut s, n);
    s.finish(&mut a);
    check(&a, start, w.name())?;
    println!("count {} {} n={n} frames={start}", A::NAME, w.name());
    Ok(())
}

fn check<A: Frames>(a: &A, start: usize, what: &str) -> Result<(), String> {
    if a.free_frames() != start {
        return Err(format!(
            "{}: {what}: {} free frames after, {start} before",
            A::NAME,
            a.free_frames()
        ));
    }
    Ok(())
}

/// CPU time of the calling thread, in ns.
fn thread_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Iterations per timed chunk (about a millisecond or more each).
fn chunk(w: Workload) -> u64 {
    match w {
        Workload::Order0Batch => 16,
        _ => 16384,
    }
}

fn timed<A: Frames>(a: &mut A, s: &mut State, w: Workload) -> f64 {
    let n = chunk(w);
    let t0 = thread_ns();
    measure_region(a, s, n);
    let t1 = thread_ns();
    (t1 - t0) as f64 / (n * w.ops()) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time(rounds: usize) -> Result<(), String> {
    let mut z = Zonekit::new();
    let frames = z.free_frames();
    let ranges = peers::free_ranges();
    let same: usize = ranges.iter().map(|r| r.len()).sum();
    if same != frames {
        return Err(format!(
            "zonekit has {frames} free frames, its free ranges {same}"
        ));
    }
    let mut b = Bsa::new(&ranges);
    let mut m = Bitmap::new(&ranges);
    let mut f = Floor::new(&ranges);
    for w in Workload::ALL {
        let mut st = [
            State::new(w, &mut z),
            State::new(w, &mut b),
            State::new(w, &mut m),
            State::new(w, &mut f),
        ];
        let mut ns: [Vec<f64>; 4] = Default::default();
        // One warm-up round, not recorded.
        for r in 0..=rounds {
            for k in 0..4 {
                let i = (k + r) % 4;
                let t = match i {
                    0 => timed(&mut z, &mut st[0], w),
                    1 => timed(&mut b, &mut st[1], w),
                    2 => timed(&mut m, &mut st[2], w),
                    _ => timed(&mut f, &mut st[3], w),
                };
                if r > 0 {
                    ns[i].push(t);
                }
            }
        }
        let [s0, s1, s2, s3] = st;
        s0.finish(&mut z);
        s1.finish(&mut b);
        s2.finish(&mut m);
        s3.finish(&mut f);
        check(&z, frames, w.name())?;
        check(&b, frames, w.name())?;
        check(&m, frames, w.name())?;
        check(&f, frames, w.name())?;
        for (i, v) in ns.iter_mut().enumerate() {
            println!("time {} {} {:.3}", w.name(), ALLOCATORS[i], median(v));
        }
    }
    Ok(())
}

fn frag_one<A: Frames>(key: &str, mut a: A) -> Result<(), String> {
    let r = fragmentation(&mut a);
    if !r.restored {
        return Err(format!(
            "{}: fragmentation: free frames not restored",
            A::NAME
        ));
    }
    println!(
        "frag {key} used={} free={} parked={} order3={} order9={}",
        r.used, r.free, r.parked, r.order3, r.order9
    );
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let usage = "usage: zonekit-bench count <zonekit|bsa|bitmap|floor> <workload> <n> | time <rounds> | frag | smp <rounds>";
    match args.first().map(String::as_str) {
        Some("count") => {
            let [_, alloc, w, n] = args else {
                return Err(usage.into());
            };
            let w = Workload::parse(w).ok_or_else(|| format!("unknown workload {w}"))?;
            let n: u64 = n.parse().map_err(|e| format!("n: {e}"))?;
            match alloc.as_str() {
                "zonekit" => count(Zonekit::new(), w, n),
                "bsa" => count(Bsa::new(&peers::free_ranges()), w, n),
                "bitmap" => count(Bitmap::new(&peers::free_ranges()), w, n),
                "floor" => count(Floor::new(&peers::free_ranges()), w, n),
                other => Err(format!("unknown allocator {other}")),
            }
        }
        Some("time") => {
            let rounds = args
                .get(1)
                .map_or(Ok(31), |s| s.parse())
                .map_err(|e| format!("rounds: {e}"))?;
            time(rounds)
        }
        Some("frag") => {
            let r = peers::free_ranges();
            frag_one(ALLOCATORS[0], Zonekit::new())?;
            frag_one(ALLOCATORS[1], Bsa::new(&r))?;
            frag_one(ALLOCATORS[2], Bitmap::new(&r))?;
            frag_one(ALLOCATORS[3], Floor::new(&r))
        }
        Some("smp") => {
            let rounds = args
                .get(1)
                .map_or(Ok(9), |s| s.parse())
                .map_err(|e| format!("rounds: {e}"))?;
            smp::run(rounds)
        }
        _ => Err(usage.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zonekit-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
