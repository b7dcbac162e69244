//! zonekit's build and test driver (`cargo xtask ...`, see matklad's cargo-xtask).
//!
//! * `cargo xtask qemu [--board B] [--mem SIZE] [--cmdline STR] [--release] [--timeout SECS]`
//!   builds one board image for ARM, converts it to a raw image and boots it in QEMU,
//!   exiting with the guest's status.
//! * `cargo xtask test` runs the host test suites and a QEMU boot matrix, checking each
//!   boot log against lines computed here, independently of the guest code.

mod dtb;
mod image;
mod memmap;
mod oracle;
mod sim;
mod toolchain;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use zonekit_arch_arm::board::{BoardDesc, BOARDS};

const MIB: u64 = 1 << 20;

fn usage() -> &'static str {
    "usage:\n  cargo xtask qemu [--board B] [--mem SIZE] [--cmdline STR] [--dtb auto|auto-nomap|none|PATH] [--release] [--timeout SECS]\n  cargo xtask sim [--board B] [--mem SIZE] [--cmdline STR] [--dtb auto|auto-nomap|none|PATH] [--release]\n  cargo xtask memmap [sim options] -o FILE.svg\n  cargo xtask test\n  cargo xtask oracle [DIR...]\n\nboards: vexpress-a9 (default), vexpress-a15, sabrelite, mcimx6ul-evk"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("qemu") => cmd_qemu(&args[1..]),
        Some("test") => cmd_test(&args[1..]),
        Some("oracle") => cmd_oracle(&args[1..]),
        Some("sim") => sim::cmd_sim(&args[1..]),
        Some("memmap") => memmap::cmd_memmap(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{}", usage());
            Ok(0)
        }
        _ => Err(format!("unknown or missing command\n{}", usage())),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

fn find_board(name: &str) -> Result<&'static BoardDesc, String> {
    BOARDS
        .iter()
        .copied()
        .find(|b| b.name == name)
        .ok_or_else(|| {
            let names: Vec<_> = BOARDS.iter().map(|b| b.name).collect();
            format!("unknown board {name:?} (known: {})", names.join(", "))
        })
}

/// QEMU's `-m` syntax: a number with an optional K/M/G/T suffix, MiB when bare.
fn parse_mem(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("bad memory size {s:?}")),
            };
            (&s[..i], m)
        }
        _ => (s, MIB),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("bad memory size {s:?}"))
}

/// Human form of a size for case names (`512M`, `1G`).
fn size_name(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{}G", bytes >> 30)
    } else {
        format!("{}M", bytes >> 20)
    }
}

/// Options of one QEMU boot.
#[derive(Clone, Debug)]
struct BootOptions {
    board: &'static BoardDesc,
    mem: u64,
    cmdline: Option<String>,
    release: bool,
    timeout_secs: u64,
    dtb: dtb::DtbMode,
}

fn cmd_qemu(args: &[String]) -> Result<u8, String> {
    let mut opts = BootOptions {
        board: find_board("vexpress-a9")?,
        mem: 512 * MIB,
        cmdline: None,
        release: false,
        timeout_secs: 60,
        dtb: dtb::DtbMode::Auto,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--board" => opts.board = find_board(&value("--board")?)?,
            "--mem" => opts.mem = parse_mem(&value("--mem")?)?,
            "--cmdline" => opts.cmdline = Some(value("--cmdline")?),
            "--release" => opts.release = true,
            "--dtb" => opts.dtb = dtb::DtbMode::parse(&value("--dtb")?),
            "--timeout" => {
                opts.timeout_secs = value("--timeout")?
                    .parse()
                    .map_err(|_| "--timeout needs a number of seconds".to_string())?
            }
            other => return Err(format!("unknown option {other:?}\n{}", usage())),
        }
    }
    if opts.mem > opts.board.max_ram {
        return Err(format!(
            "{} supports at most {} of RAM here",
            opts.board.name,
            size_name(opts.board.max_ram)
        ));
    }
    let tc = toolchain::ArmToolchain::find_or_install()?;
    toolchain::ensure_qemu()?;
    let started = std::time::Instant::now();
    let image = build_image(&tc, opts.board, opts.release)?;
    eprintln!(
        "xtask: built {} in {:.1} s",
        image.display(),
        started.elapsed().as_secs_f64()
    );
    let run = run_qemu(&opts, &image, true)?;
    if run.timed_out {
        eprintln!(
            "xtask: QEMU timed out after {} s (is the guest stuck?)",
            opts.timeout_secs
        );
        return Ok(124);
    }
    Ok(run.status)
}

/// Build the board's binary for ARM and convert it to a raw image; returns its path.
fn build_image(
    tc: &toolchain::ArmToolchain,
    board: &BoardDesc,
    release: bool,
) -> Result<PathBuf, String> {
    let root = workspace_root();
    let target_dir = root.join("target/arm");
    let elf = tc.build(&root, &target_dir, board.package, board.name, release)?;
    let bin = elf.with_extension("bin");
    image::elf_to_raw(&elf, &bin, board.load_address())?;
    Ok(bin)
}

/// How a QEMU run ended.
struct QemuRun {
    status: u8,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

fn qemu_command(opts: &BootOptions, image: &Path) -> Result<Command, String> {
    let dtb = dtb::dtb_for(
        &opts.dtb,
        opts.board,
        opts.mem,
        opts.cmdline.as_deref().unwrap_or(""),
        &workspace_root().join("target/arm/dtb"),
    )?;
    let mut cmd = Command::new("timeout");
    cmd.arg("-k")
        .arg("5")
        .arg(opts.timeout_secs.to_string())
        .arg("qemu-system-arm")
        .arg("-M")
        .arg(opts.board.qemu_machine)
        .arg("-m")
        .arg(format!("{}M", opts.mem >> 20))
        .arg("-kernel")
        .arg(image)
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .arg("-semihosting");
    if let Some(c) = &opts.cmdline {
        cmd.arg("-append").arg(c);
    }
    if let Some(path) = dtb {
        cmd.arg("-dtb").arg(path);
    }
    if opts.board.qemu_machine.starts_with("vexpress") {
        cmd.args(["-audiodev", "none,id=n", "-global", "pl041.audiodev=n"]);
    }
    Ok(cmd)
}

/// Boot the image; with `stream` the console goes to our stdout as it arrives.
fn run_qemu(opts: &BootOptions, image: &Path, stream: bool) -> Result<QemuRun, String> {
    let mut cmd = qemu_command(opts, image)?;
    if stream {
        eprintln!("xtask: running {}", describe(&cmd));
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run timeout/qemu-system-arm: {e}"))?;
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    let reader = BufReader::new(child.stdout.take().expect("stdout is piped"));
    for line in reader.split(b'\n') {
        let line = line.map_err(|e| format!("reading QEMU output: {e}"))?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\r');
        if stream {
            println!("{text}");
        }
        stdout.push_str(text);
        stdout.push('\n');
    }
    let status = child.wait().map_err(|e| format!("waiting for QEMU: {e}"))?;
    let stderr = err_thread.join().unwrap_or_default();
    if stream && !stderr.is_empty() {
        eprint!("{stderr}");
    }
    let code = status.code().unwrap_or(255);
    Ok(QemuRun {
        status: code as u8,
        timed_out: code == 124 || code == 137,
        stdout,
        stderr,
    })
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') || a.is_empty() {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Linux 6.1's ARM `vmalloc_size` default (240 MiB).
const DEFAULT_VMALLOC: u64 = 240 * MIB;
/// `VMALLOC_END - PAGE_OFFSET` for the 3G/1G split: 0xff800000 - 0xc0000000.
const VMALLOC_END_OFFSET: u64 = 0xff80_0000 - 0xc000_0000;
/// `VMALLOC_OFFSET`: the 8 MiB gap below the vmalloc area.
const VMALLOC_OFFSET: u64 = 8 * MIB;

/// The boot-log lines a correct boot prints for one RAM bank, computed from Linux's
/// rules (6.1 `adjust_lowmem_bounds`): lowmem ends `vmalloc_size + VMALLOC_OFFSET`
/// below `VMALLOC_END`, 768 MiB above the RAM base by default.
fn expected_lines(
    board: &BoardDesc,
    mem: u64,
    cmdline: Option<&str>,
    nomap: Option<(u64, u64)>,
) -> Vec<String> {
    let words: Vec<&str> = cmdline
        .into_iter()
        .flat_map(str::split_ascii_whitespace)
        .collect();
    let last_size = |key: &str| {
        words
            .iter()
            .filter_map(|w| w.strip_prefix(key))
            .filter_map(zonekit_core::cmdline::memparse)
            .next_back()
    };
    let vmalloc = last_size("vmalloc=").unwrap_or(DEFAULT_VMALLOC);
    // ARM's `mem=SIZE`: RAM becomes SIZE bytes from the start of RAM.
    let mem = last_size("mem=").map_or(mem, |limit| limit.min(mem) & !0xfff);
    let lowmem_size = VMALLOC_END_OFFSET - vmalloc - VMALLOC_OFFSET;
    let start = board.ram_base;
    let end = start + mem;
    let lowmem_end = end.min(start + lowmem_size);
    let mut lines = vec![format!(
        "  {:<8} [mem {:#018x}-{:#018x}]",
        "Normal",
        start,
        lowmem_end - 1
    )];
    if end > lowmem_end {
        lines.push(format!(
            "  {:<8} [mem {:#018x}-{:#018x}]",
            "HighMem",
            lowmem_end,
            end - 1
        ));
    } else {
        lines.push(format!("  {:<8} empty", "HighMem"));
    }
    // A no-map region splits memblock.memory (different flags never merge).
    let mut cuts = vec![start];
    if let Some((b, e)) = nomap {
        cuts.extend([b, e]);
    }
    cuts.push(end);
    for w in cuts.windows(2) {
        lines.push(format!(
            "  node {:>3}: [mem {:#018x}-{:#018x}]",
            0,
            w[0],
            w[1] - 1
        ));
    }
    lines.push(format!("On node 0 totalpages: {}", mem / 4096));
    lines
}

/// One boot of the test matrix.
struct BootCase {
    board: &'static str,
    mem: u64,
    cmdline: Option<&'static str>,
    dtb: dtb::DtbMode,
    /// Lines (prefixes) the log must also contain.
    also: &'static [&'static str],
}

impl BootCase {
    fn name(&self) -> String {
        let mut s = format!("{} {}", self.board, size_name(self.mem));
        s.push_str(match self.dtb {
            dtb::DtbMode::Auto => " dtb",
            dtb::DtbMode::AutoNomap => " dtb-nomap",
            dtb::DtbMode::None => " atags",
            dtb::DtbMode::File(_) => " dtb-file",
        });
        if let Some(c) = self.cmdline {
            s.push_str(&format!(" {c}"));
        }
        s
    }
}

/// The QEMU boot matrix of `cargo xtask test`: every board from a generated DTB and
/// from ATAGS, highmem on vexpress-a9 1G and sabrelite 2G, `vmalloc=`, `mem=`, a
/// `no-map` hole and the `memblock=debug` trace.
fn boot_matrix() -> Vec<BootCase> {
    use dtb::DtbMode::{Auto, AutoNomap, None as Atags};
    const FROM_DTB: &[&str] = &["zonekit: memory from DTB"];
    const FROM_ATAGS: &[&str] = &["zonekit: memory from ATAGS"];
    let case = |board, mem_mib: u64, cmdline, dtb, also| BootCase {
        board,
        mem: mem_mib * MIB,
        cmdline,
        dtb,
        also,
    };
    vec![
        case("vexpress-a9", 128, None, Auto, FROM_DTB),
        case("vexpress-a9", 512, None, Auto, FROM_DTB),
        case("vexpress-a9", 512, None, Atags, FROM_ATAGS),
        case("vexpress-a9", 1024, None, Auto, FROM_DTB),
        case("vexpress-a9", 512, Some("vmalloc=600M"), Auto, FROM_DTB),
        case("vexpress-a9", 512, Some("mem=300M"), Auto, FROM_DTB),
        case(
            "vexpress-a9",
            512,
            None,
            AutoNomap,
            &["OF: reserved mem: [mem 0x0000000062000000-0x00000000620fffff] no-map"],
        ),
        case(
            "vexpress-a9",
            1024,
            Some("memblock=debug"),
            Auto,
            &[
                "MEMBLOCK configuration:",
                " memory.cnt  = 0x1",
                "memblock_alloc_try_nid_raw: 4194304 bytes align=0x40 nid=0 from=0x00000000 max_addr=0x00000000 ",
                "memblock_reserve: [",
            ],
        ),
        case("vexpress-a15", 512, None, Auto, FROM_DTB),
        case("vexpress-a15", 1024, None, Atags, FROM_ATAGS),
        case("sabrelite", 512, None, Atags, FROM_ATAGS),
        case("sabrelite", 2048, None, Auto, FROM_DTB),
        case("mcimx6ul-evk", 256, None, Atags, FROM_ATAGS),
        case("mcimx6ul-evk", 512, None, Auto, FROM_DTB),
    ]
}

/// An extra check of `cargo xtask test` that is neither a host suite nor a boot.
struct ExtraStep {
    name: &'static str,
    run: fn() -> Result<(), String>,
}

/// Extra steps run after the boot matrix. The Linux `oracle` comparison step will be
/// added here.
fn extra_steps() -> Vec<ExtraStep> {
    Vec::new()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    | {l}\n"))
        .collect()
}

/// Boot one matrix case in QEMU and check its log; returns the log.
fn check_boot(case: &BootCase, image: &Path) -> Result<String, String> {
    let board = find_board(case.board)?;
    let opts = BootOptions {
        board,
        mem: case.mem,
        cmdline: case.cmdline.map(str::to_string),
        release: false,
        timeout_secs: 60,
        dtb: case.dtb.clone(),
    };
    let run = run_qemu(&opts, image, false)?;
    let log = &run.stdout;
    let fail = |why: String| {
        let mut s = format!("{why}\n  guest log tail:\n{}", tail(log, 15));
        if !run.stderr.trim().is_empty() {
            s.push_str(&format!("  QEMU stderr:\n{}", tail(&run.stderr, 5)));
        }
        Err(s)
    };
    if run.timed_out {
        return fail(format!("timed out after {} s", opts.timeout_secs));
    }
    if run.status != 0 {
        return fail(format!("exit status {}", run.status));
    }
    if !log.lines().any(|l| l == "zonekit: self-check passed") {
        return fail("no `zonekit: self-check passed`".into());
    }
    let nomap = (case.dtb == dtb::DtbMode::AutoNomap).then(|| {
        let b = board.ram_base + dtb::NOMAP_OFFSET;
        (b, b + dtb::NOMAP_SIZE)
    });
    for want in expected_lines(board, case.mem, case.cmdline, nomap) {
        if !log.lines().any(|l| l == want) {
            return fail(format!("missing line {want:?}"));
        }
    }
    for want in case.also {
        if !log.lines().any(|l| l.starts_with(want)) {
            return fail(format!("missing line starting {want:?}"));
        }
    }
    Ok(run.stdout.clone())
}

/// Matrix cases whose QEMU log `cargo xtask sim` must reproduce (zone, node, memmap,
/// `Memory:` and MEMBLOCK dump lines).
fn sim_compared(case: &BootCase) -> bool {
    let mib = case.mem >> 20;
    matches!(
        (case.board, mib, case.cmdline, &case.dtb),
        ("vexpress-a9", 512, None, dtb::DtbMode::Auto)
            | ("vexpress-a9", 1024, None, dtb::DtbMode::Auto)
            | (
                "vexpress-a9",
                1024,
                Some("memblock=debug"),
                dtb::DtbMode::Auto
            )
            | ("vexpress-a9", 512, None, dtb::DtbMode::None)
            | ("sabrelite", 2048, None, dtb::DtbMode::Auto)
    )
}

/// Run the same case in the simulator and compare with the QEMU log.
fn check_sim(case: &BootCase, qemu_log: &str) -> Result<(), String> {
    let opts = sim::SimOptions {
        board: find_board(case.board)?,
        mem: case.mem,
        cmdline: case.cmdline.map(str::to_string),
        dtb: case.dtb.clone(),
        release: false,
    };
    let run = sim::run(&opts, false)?;
    if run.outcome.exit_code() != 0 {
        return Err(format!("sim: {}", run.outcome));
    }
    sim::compare_logs(qemu_log, &run.lines)
}

/// `cargo xtask oracle [DIR...]`: replay Linux fixtures (default: the copied ones).
fn cmd_oracle(args: &[String]) -> Result<u8, String> {
    let dirs: Vec<PathBuf> = if args.is_empty() {
        oracle::default_dirs(&workspace_root())
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    let (passed, failed) = oracle::run(&dirs);
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 && passed > 0 { 0 } else { 1 })
}

fn cmd_test(args: &[String]) -> Result<u8, String> {
    if let Some(a) = args.first() {
        return Err(format!("`test` takes no options (got {a:?})"));
    }
    let root = workspace_root();
    let mut passed = 0u32;
    let mut failed = 0u32;
    let mut report = |name: &str, result: Result<(), String>| match result {
        Ok(()) => {
            passed += 1;
            println!("PASS {name}");
        }
        Err(why) => {
            failed += 1;
            println!("FAIL {name} ({why})");
        }
    };

    // Host suites, with the cargo that runs xtask.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: {cargo} test --workspace");
    let host = Command::new(&cargo)
        .args(["test", "--workspace"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    report(
        "host cargo test",
        if host.success() {
            Ok(())
        } else {
            Err(format!("cargo test exited with {host}"))
        },
    );

    // The Linux 6.1 oracle: one result per fixture.
    for outcome in oracle::run_all(&oracle::default_dirs(&root)) {
        report(&format!("oracle {}", outcome.name), outcome.result());
    }

    // QEMU boot matrix: build each board once.
    let cases = boot_matrix();
    let setup = toolchain::ArmToolchain::find_or_install().and_then(|tc| {
        toolchain::ensure_qemu()?;
        Ok(tc)
    });
    match setup {
        Err(e) => {
            for case in &cases {
                report(&case.name(), Err(format!("no ARM toolchain or QEMU: {e}")));
            }
        }
        Ok(tc) => {
            let mut images: Vec<(&str, Result<PathBuf, String>)> = Vec::new();
            for case in &cases {
                if !images.iter().any(|(b, _)| *b == case.board) {
                    let started = std::time::Instant::now();
                    let built = find_board(case.board).and_then(|b| build_image(&tc, b, false));
                    eprintln!(
                        "xtask: built {} in {:.1} s",
                        case.board,
                        started.elapsed().as_secs_f64()
                    );
                    images.push((case.board, built));
                }
                let image = images
                    .iter()
                    .find(|(b, _)| *b == case.board)
                    .map(|(_, i)| i.clone())
                    .expect("just built");
                let result = image
                    .map_err(|e| format!("build failed: {e}"))
                    .and_then(|img| check_boot(case, &img));
                let log = result.as_ref().ok().cloned();
                report(&case.name(), result.map(|_| ()));
                if sim_compared(case) {
                    let agrees = match log {
                        Some(log) => check_sim(case, &log),
                        None => Err("the QEMU boot failed".into()),
                    };
                    report(&format!("sim = qemu: {}", case.name()), agrees);
                }
            }
        }
    }

    for step in extra_steps() {
        report(step.name, (step.run)());
    }

    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_sizes() {
        assert_eq!(parse_mem("512M"), Ok(512 * MIB));
        assert_eq!(parse_mem("1G"), Ok(1 << 30));
        assert_eq!(parse_mem("128"), Ok(128 * MIB));
        assert!(parse_mem("lots").is_err());
        assert!(parse_mem("0").is_err());
        assert_eq!(size_name(1 << 30), "1G");
        assert_eq!(size_name(512 * MIB), "512M");
    }

    #[test]
    fn expected_lines_follow_linux() {
        let a9 = find_board("vexpress-a9").unwrap();
        assert_eq!(
            expected_lines(a9, 512 * MIB, None, None),
            vec![
                "  Normal   [mem 0x0000000060000000-0x000000007fffffff]",
                "  HighMem  empty",
                "  node   0: [mem 0x0000000060000000-0x000000007fffffff]",
                "On node 0 totalpages: 131072",
            ]
        );
        let l = expected_lines(a9, 1 << 30, None, None);
        assert_eq!(
            l[0],
            "  Normal   [mem 0x0000000060000000-0x000000008fffffff]"
        );
        assert_eq!(
            l[1],
            "  HighMem  [mem 0x0000000090000000-0x000000009fffffff]"
        );
        let l = expected_lines(a9, 512 * MIB, Some("mem=300M"), None);
        assert_eq!(
            l[2],
            "  node   0: [mem 0x0000000060000000-0x0000000072bfffff]"
        );
        assert_eq!(l[3], "On node 0 totalpages: 76800");
        let hole = Some((0x6200_0000, 0x6210_0000));
        let l = expected_lines(a9, 512 * MIB, None, hole);
        assert_eq!(
            l[3],
            "  node   0: [mem 0x0000000062000000-0x00000000620fffff]"
        );
        let l = expected_lines(a9, 512 * MIB, Some("vmalloc=600M"), None);
        // 408 MiB of lowmem.
        assert_eq!(
            l[0],
            "  Normal   [mem 0x0000000060000000-0x00000000797fffff]"
        );
        assert_eq!(
            l[1],
            "  HighMem  [mem 0x0000000079800000-0x000000007fffffff]"
        );
    }

    #[test]
    fn sim_comparisons_are_in_the_matrix() {
        assert_eq!(boot_matrix().iter().filter(|c| sim_compared(c)).count(), 5);
    }

    #[test]
    fn matrix_boards_exist_and_fit() {
        for c in boot_matrix() {
            let b = find_board(c.board).unwrap();
            assert!(c.mem <= b.max_ram, "{}", c.name());
        }
        assert!(find_board("nope").is_err());
    }
}
