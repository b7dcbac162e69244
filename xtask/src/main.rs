//! zonekit's build and test driver (`cargo xtask ...`, see matklad's cargo-xtask).
//!
//! * `cargo xtask qemu [--board B] [--mem SIZE] [--cmdline STR] [--release] [--timeout SECS]`
//!   builds one board image for ARM, converts it to a raw image and boots it in QEMU,
//!   exiting with the guest's status.
//! * `cargo xtask bench` runs the criterion benchmarks (zonekit against
//!   `buddy_system_allocator`) and the guest's instruction count per page under
//!   `-icount`, and writes BENCHMARKS.md.
//! * `cargo xtask qemu --example minimal-os` does the same for the reuse example
//!   (`examples/minimal-os`, a kernel of its own on vexpress-a9).
//!   With `--defmt` the image is built with the `defmt` feature: zonekit's log lines
//!   leave the guest as defmt frames over semihosting, and are decoded here against
//!   the image's ELF and printed with level and `file:line` after the console output.
//! * `cargo xtask test` runs the host test suites and a QEMU boot matrix, checking each
//!   boot log against lines computed here, independently of the guest code, and boots
//!   the reuse example.

mod bench;
mod boards;
mod defmt;
mod doc;
mod dtb;
mod golden;
mod image;
mod memmap;
mod oracle;
mod sim;
mod toolchain;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use boards::{Board, Example};
use zonekit_arch_arm::board::BoardDesc;
use zonekit_arch_arm::profile::DtbSource;

const MIB: u64 = 1 << 20;

/// How long a boot may take. Debug images at 1 GiB need about 30 s of CPU for the page
/// allocator self-test, and far longer on a loaded machine.
const DEFAULT_TIMEOUT_SECS: u64 = 300;

fn usage() -> String {
    let examples: Vec<_> = boards::declared()
        .map(|d| d.examples.iter().map(|e| e.profile.bin.as_str()).collect())
        .unwrap_or_default();
    format!(
        "usage:\n  cargo xtask qemu [--board B | --example E] [--mem SIZE] [--cmdline STR] [--dtb auto|auto-nomap|none|test:NAME|PATH] [--release] [--icount] [--defmt] [--timeout SECS]\n  cargo xtask sim [--board B] [--mem SIZE] [--cmdline STR] [--dtb auto|auto-nomap|none|test:NAME|PATH] [--release]\n  cargo xtask memmap [sim options] -o FILE.svg\n  cargo xtask test\n  cargo xtask bench [--no-host] [--no-guest] [--output FILE]\n  cargo xtask oracle [DIR...]\n  cargo xtask doc [--open]   (API docs for the ARM target, runtime included)\n  cargo xtask bless          (rewrite tests/golden/ from QEMU and sim boots)\n\nboards (from each BSP's [package.metadata.zonekit.boards]): {} (default vexpress-a9)\nexamples: {}\n--dtb auto on a board whose device tree QEMU generates (dtb = \"qemu\") means QEMU's own tree\n--dtb test:NAME: a test tree of the boot matrix ({})",
        boards::names(),
        examples.join(", "),
        dtb::TestTree::ALL.map(|t| t.name()).join(", ")
    )
}

fn find_example(name: &str) -> Result<&'static Example, String> {
    boards::find_example(name)
}

/// The arguments as UTF-8 strings; an argument that is not UTF-8 is an error naming
/// it (`std::env::args` would panic).
fn utf8_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Vec<String>, String> {
    args.into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not valid UTF-8"))
        })
        .collect()
}

fn main() -> ExitCode {
    let args = match utf8_args(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("qemu") => cmd_qemu(&args[1..]),
        Some("test") => cmd_test(&args[1..]),
        Some("oracle") => cmd_oracle(&args[1..]),
        Some("bench") => bench::cmd_bench(&args[1..]),
        Some("sim") => sim::cmd_sim(&args[1..]),
        Some("memmap") => memmap::cmd_memmap(&args[1..]),
        Some("doc") => doc::cmd_doc(&args[1..]),
        Some("bless") => cmd_bless(&args[1..]),
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

/// The board called `name`, from the BSPs' tables (an error lists every board).
fn find_board(name: &str) -> Result<&'static Board, String> {
    boards::find(name)
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

/// Human form of a size for case names and QEMU's `-m` (`512M`, `1G`, `64K`; QEMU
/// reads a bare number as MiB, so an odd size gets a `B`).
fn size_name(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) && bytes != 0 {
        format!("{}G", bytes >> 30)
    } else if bytes.is_multiple_of(1 << 20) {
        format!("{}M", bytes >> 20)
    } else if bytes.is_multiple_of(1 << 10) {
        format!("{}K", bytes >> 10)
    } else {
        format!("{bytes}B")
    }
}

/// Options of one QEMU boot.
#[derive(Clone, Debug)]
struct BootOptions {
    board: &'static Board,
    mem: u64,
    cmdline: Option<String>,
    release: bool,
    timeout_secs: u64,
    dtb: dtb::DtbMode,
    /// `-icount shift=0,sleep=off`: one guest instruction per virtual nanosecond, so
    /// the board timers count instructions deterministically.
    icount: bool,
    /// Run QEMU in this directory (where the guest's defmt frame file lands).
    workdir: Option<PathBuf>,
}

fn cmd_qemu(args: &[String]) -> Result<u8, String> {
    let mut opts = BootOptions {
        board: find_board("vexpress-a9")?,
        mem: 512 * MIB,
        cmdline: None,
        release: false,
        timeout_secs: 600,
        dtb: dtb::DtbMode::Auto,
        icount: false,
        workdir: None,
    };
    let mut example = None;
    let mut defmt = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--board" => opts.board = find_board(&value("--board")?)?,
            "--example" => example = Some(find_example(&value("--example")?)?),
            "--mem" => opts.mem = parse_mem(&value("--mem")?)?,
            "--cmdline" => opts.cmdline = Some(value("--cmdline")?),
            "--release" => opts.release = true,
            "--icount" => opts.icount = true,
            "--defmt" => defmt = true,
            "--dtb" => opts.dtb = dtb::DtbMode::parse(&value("--dtb")?)?,
            "--timeout" => {
                opts.timeout_secs = value("--timeout")?
                    .parse()
                    .map_err(|_| "--timeout needs a number of seconds".to_string())?
            }
            other => return Err(format!("unknown option {other:?}\n{}", usage())),
        }
    }
    if let Some(e) = example {
        opts.board = find_board(&e.profile.board)?;
    }
    // Before building: a board that cannot boot this way says why now.
    boards::effective_dtb(opts.board, &opts.dtb)?;
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
    let built = match example {
        Some(e) => build_example_image(&tc, e, opts.board, opts.release)?,
        None => build_image(
            &tc,
            &opts.board.package,
            &opts.board.profile.bin,
            opts.board,
            opts.release,
            defmt,
        )?,
    };
    eprintln!(
        "xtask: built {} in {:.1} s",
        built.bin.display(),
        started.elapsed().as_secs_f64()
    );
    if defmt {
        opts.workdir = Some(defmt_workdir(opts.board.name)?);
    }
    let run = run_qemu(&opts, &built.bin, true)?;
    if run.timed_out {
        eprintln!(
            "xtask: QEMU timed out after {} s (is the guest stuck?)",
            opts.timeout_secs
        );
        return Ok(124);
    }
    if let Some(dir) = &opts.workdir {
        let lines = read_defmt(dir, &built.elf)?;
        eprintln!(
            "xtask: {} defmt frames from {}, decoded against {}:",
            lines.len(),
            dir.join(defmt::FRAME_FILE).display(),
            built.elf.display()
        );
        for l in &lines {
            println!("{l}");
        }
        if lines.is_empty() && run.status == 0 {
            eprintln!("xtask: error: the guest sent no defmt frames");
            return Ok(1);
        }
    }
    Ok(run.status)
}

/// A fresh directory for one defmt run: QEMU runs there, the guest's frame file
/// lands there.
fn defmt_workdir(board: &str) -> Result<PathBuf, String> {
    let dir = workspace_root().join("target/arm/defmt").join(board);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let frames = dir.join(defmt::FRAME_FILE);
    match std::fs::remove_file(&frames) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing {}: {e}", frames.display()))
        }
        _ => Ok(dir),
    }
}

/// Read the guest's frame file in `dir` and decode it against `elf`.
fn read_defmt(dir: &Path, elf: &Path) -> Result<Vec<defmt::Line>, String> {
    let path = dir.join(defmt::FRAME_FILE);
    let frames = match std::fs::read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    defmt::decode(elf, &frames, &workspace_root())
}

/// A built board image.
#[derive(Clone, Debug)]
struct Built {
    /// The linked ELF (with `defmt`, under `target/arm-defmt/`, so the two
    /// builds of a board do not overwrite each other's).
    elf: PathBuf,
    /// The raw image QEMU loads.
    bin: PathBuf,
}

/// Build the board's binary for ARM (with the `defmt` feature when asked) and convert
/// it to a raw image.
/// Build binary `bin` of `package` (a board's own binary, or a kernel built on
/// zonekit) for ARM and convert it to a raw image for `board`; returns its path.
fn build_image(
    tc: &toolchain::ArmToolchain,
    package: &str,
    bin: &str,
    board: &BoardDesc,
    release: bool,
    defmt: bool,
) -> Result<Built, String> {
    let root = workspace_root();
    // The defmt build of a board has its own target directory: built into the same
    // one, its ELF would replace the plain build's, whose image range the simulator
    // reads.
    let target_dir = root.join(if defmt {
        "target/arm-defmt"
    } else {
        "target/arm"
    });
    let elf = tc.build(&root, &target_dir, package, bin, release, defmt)?;
    let bin = elf.with_extension("bin");
    image::elf_to_raw(&elf, &bin, board.load_address())?;
    Ok(Built { elf, bin })
}

/// Build a reuse example from its own workspace (as a kernel outside this one is
/// built) and convert it to a raw image for `board`.
fn build_example_image(
    tc: &toolchain::ArmToolchain,
    example: &Example,
    board: &BoardDesc,
    release: bool,
) -> Result<Built, String> {
    let root = workspace_root();
    let target_dir = root.join("target/arm-examples");
    let elf = tc.build_in(
        &root,
        Some(&example.manifest),
        &target_dir,
        &example.package,
        &example.profile.bin,
        release,
        false,
    )?;
    let bin = elf.with_extension("bin");
    image::elf_to_raw(&elf, &bin, board.load_address())?;
    Ok(Built { elf, bin })
}

/// How a QEMU run ended.
struct QemuRun {
    status: u8,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

/// QEMU's `-icount` setting for deterministic guest timing: 1 instruction = 1 ns of
/// virtual time, no sleeping while idle.
const ICOUNT: &str = "shift=0,sleep=off";
/// The `-dtb` mode a boot really uses ([`boards::effective_dtb`]).
fn effective_dtb(opts: &BootOptions) -> Result<dtb::DtbMode, String> {
    boards::effective_dtb(opts.board, &opts.dtb)
}

fn qemu_command(opts: &BootOptions, image: &Path) -> Result<Command, String> {
    let dtb = dtb::dtb_for(
        &effective_dtb(opts)?,
        opts.board,
        opts.mem,
        opts.cmdline.as_deref().unwrap_or(""),
        &workspace_root().join("target/arm/dtb"),
    )?;
    let qemu = &opts.board.profile.qemu;
    let mut cmd = Command::new("timeout");
    cmd.arg("-k")
        .arg("5")
        .arg(opts.timeout_secs.to_string())
        .arg("qemu-system-arm")
        .arg("-M")
        .arg(&qemu.machine)
        .args(qemu.cpu.iter().flat_map(|c| ["-cpu", c.as_str()]))
        .arg("-m")
        .arg(size_name(opts.mem))
        .arg("-kernel")
        .arg(image)
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .arg("-semihosting");
    if opts.icount {
        cmd.args(["-icount", ICOUNT]);
    }
    if let Some(c) = &opts.cmdline {
        cmd.arg("-append").arg(c);
    }
    if let Some(path) = dtb {
        // Absolute, as QEMU may run in another directory (`--defmt`).
        let path = std::path::absolute(&path).unwrap_or(path);
        cmd.arg("-dtb").arg(path);
    }
    // The board's own arguments (its profile's `args`).
    cmd.args(&qemu.args);
    if let Some(dir) = &opts.workdir {
        cmd.current_dir(dir);
    }
    Ok(cmd)
}

/// Boot the image; with `stream` the console goes to our stdout as it arrives.
fn run_qemu(opts: &BootOptions, image: &Path, stream: bool) -> Result<QemuRun, String> {
    let mut cmd = qemu_command(opts, image)?;
    if stream {
        match cmd.get_current_dir() {
            Some(dir) => eprintln!("xtask: running {} (in {})", describe(&cmd), dir.display()),
            None => eprintln!("xtask: running {}", describe(&cmd)),
        }
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
    /// The guest's expected exit status: 0 for a boot that must pass all the usual
    /// checks; otherwise only this status and `also` are checked.
    exit: u8,
    /// Built with the `defmt` feature: the zonekit log lines are checked in the
    /// decoded defmt frames (messages), and each must carry a `file:line`.
    defmt: bool,
}

impl BootCase {
    fn name(&self) -> String {
        let mut s = format!("{} {}", self.board, size_name(self.mem));
        let qemu_dtb = find_board(self.board).is_ok_and(|b| b.profile.qemu.dtb == DtbSource::Qemu);
        s.push_str(match self.dtb {
            dtb::DtbMode::Auto if qemu_dtb => " qemu-dtb",
            dtb::DtbMode::Auto => " dtb",
            dtb::DtbMode::AutoNomap => " dtb-nomap",
            dtb::DtbMode::None => " atags",
            dtb::DtbMode::File(_) => " dtb-file",
            dtb::DtbMode::Test(t) => match t {
                dtb::TestTree::Latin1 => " dtb-test:latin1",
                dtb::TestTree::Quirks => " dtb-test:quirks",
                dtb::TestTree::Overlap => " dtb-test:overlap",
            },
        });
        if let Some(c) = self.cmdline {
            s.push_str(&format!(" {c}"));
        }
        if self.defmt {
            s.push_str(" defmt");
        }
        s
    }
}

/// The QEMU boot matrix of `cargo xtask test`: every board at the sizes its profile
/// lists (`matrix`, default device tree), then boots of particular boards from ATAGS,
/// highmem on vexpress-a9 1G and sabrelite 2G, `vmalloc=`, `mem=`, a `no-map` hole,
/// the `memblock=debug` trace and `memtest=17`.
fn boot_matrix() -> Vec<BootCase> {
    use dtb::DtbMode::{Auto, AutoNomap, None as Atags, Test};
    use dtb::TestTree;
    const FROM_DTB: &[&str] = &["zonekit: memory from DTB"];
    const FROM_ATAGS: &[&str] = &["zonekit: memory from ATAGS"];
    const REPORT: &[&str] = &[
        "Node 0, zone   Normal",
        "  pages free     ",
        "        protection: (",
        "Page block order: 10",
        "Free pages count per migrate type at order ",
        "Node    0, zone   Normal, type      Movable ",
        "Number of blocks type ",
    ];
    let case = |board, mem_mib: u64, cmdline, dtb, also| BootCase {
        board,
        mem: mem_mib * MIB,
        cmdline,
        dtb,
        also,
        exit: 0,
        defmt: false,
    };
    let defmt_case = |board, mem_mib: u64, dtb| BootCase {
        defmt: true,
        ..case(board, mem_mib, None, dtb, FROM_DTB)
    };
    // A boot that must stop with EXIT_BOOT_ERROR, printing `also`.
    let boot_error = |board, mem_mib: u64, cmdline, dtb, also| BootCase {
        exit: zonekit_arch_arm::flow::EXIT_BOOT_ERROR as u8,
        ..case(board, mem_mib, Some(cmdline), dtb, also)
    };
    let profiled = boards::all().unwrap_or_default().iter().flat_map(|b| {
        let name = b.profile.name.as_str();
        b.profile.qemu.matrix.iter().map(move |&mem| BootCase {
            mem,
            ..case(name, 0, None, Auto, FROM_DTB)
        })
    });
    profiled.chain([
        case("vexpress-a9", 512, None, Atags, FROM_ATAGS),
        case("vexpress-a9", 1024, None, Auto, &[
            "zonekit: memory from DTB",
            "    lowmem  : 0xc0000000 - 0xf0000000   ( 768 MB)",
            "zonekit: kmap test: 8 highmem pages from pfn ",
        ]),
        case("vexpress-a9", 512, Some("vmalloc=600M"), Auto, FROM_DTB),
        case("vexpress-a9", 512, Some("mem=300M"), Auto, FROM_DTB),
        // mem= larger than RAM: Linux's truncation at 4 GiB, then clipped to the RAM
        // the DTB reports, with warnings; boots with 512 MiB.
        case("vexpress-a9", 512, Some("mem=8G"), Auto, &[
            "zonekit: warning: Truncating memory at 0x60000000 to fit in 32-bit physical address space",
            "zonekit: warning: mem=: ignoring [mem 0x0000000080000000-0x00000000ffffefff] outside the RAM reported by the DTB",
        ]),
        boot_error("vexpress-a9", 512, "mem=64M@0xffffffffffffffff", Auto, &[
            "zonekit: boot failed: mem=0x4000000@0xffffffffffffffff: START + SIZE overflows the 64-bit physical address space",
        ]),
        // vexpress-a9's flash, not RAM: refused instead of a hang.
        boot_error("vexpress-a9", 512, "mem=64M@0x40000000", Atags, &[
            "zonekit: warning: Ignoring memory below PHYS_OFFSET: 0x40000000-0x44000000",
            "zonekit: boot failed: mem=: no memory left, every mem= bank was ignored",
        ]),
        boot_error("vexpress-a9", 512, "mem=4096", Auto, &[
            "zonekit: boot failed: memory [mem 0x0000000060000000-0x0000000060000fff] does not hold the kernel image [mem 0x0000000060010000-",
        ]),
        // Small RAM: the fallback steal that used to loop forever (issue 9, item 1).
        case("vexpress-a9", 6, None, Atags, FROM_ATAGS),
        case("mcimx6ul-evk", 2, None, Atags, FROM_ATAGS),
        case(
            "vexpress-a9",
            512,
            Some("cma=64M"),
            Auto,
            &["cma: Reserved 64 MiB at 0x7bc00000 on node -1"],
        ),
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
                // paging_init's early_alloc: the L1 table, then the PKMAP L2 chunk.
                "memblock_alloc_try_nid: 16384 bytes align=0x4000 nid=-1 from=0x00000000 max_addr=0x00000000 ",
                "memblock_alloc_try_nid: 4096 bytes align=0x1000 nid=-1 from=0x00000000 max_addr=0x00000000 ",
                "memblock_alloc_try_nid_raw: 4194304 bytes align=0x40 nid=0 from=0x00000000 max_addr=0x00000000 ",
                "memblock_reserve: [",
            ],
        ),
        // Every memtest pattern over ~120 MiB of free lowmem (about 10 s under TCG).
        case(
            "vexpress-a9",
            128,
            Some("memtest=17"),
            Auto,
            &["early_memtest: # of tests: 17"],
        ),
        case("vexpress-a9", 1024, Some("zonekit.report"), Auto, REPORT),
        case("vexpress-a15", 512, Some("zonekit.report"), Auto, REPORT),
        case("sabrelite", 512, Some("zonekit.report"), Auto, REPORT),
        case("mcimx6ul-evk", 512, Some("zonekit.report"), Auto, REPORT),
        case("vexpress-a15", 1024, None, Atags, FROM_ATAGS),
        case("sabrelite", 512, None, Atags, FROM_ATAGS),
        case("sabrelite", 2048, None, Auto, &[
            "zonekit: memory from DTB",
            "    lowmem  : 0xc0000000 - 0xf0000000   ( 768 MB)",
            "zonekit: kmap test: 8 highmem pages from pfn ",
        ]),
        case(
            "vexpress-a9",
            512,
            Some("zonekit.test_abort"),
            Auto,
            &[
                "zonekit: data abort at pc=0x",
                "zonekit: test_abort: unmapped read caught: DFAR=0xe0801000 DFSR=0x00000005 (translation fault, section)",
                "zonekit: test_abort: freed kmap slot caught: DFAR=0xbfe0",
                "zonekit: kmap test: no highmem on this boot, skipped",
            ],
        ),
        case("mcimx6ul-evk", 256, None, Atags, FROM_ATAGS),
        case("mcimx6ul-evk", 1536, None, Auto, KMAP_LINES),
        case("virt", 1024, Some("memblock=debug"), Auto, FROM_DTB),
        defmt_case("vexpress-a9", 512, Auto),
        defmt_case("sabrelite", 512, Auto),
        // Device trees Linux accepts: a Latin-1 byte in bootargs must not cost the
        // tree's memory (256 MiB, not the 128 MiB board map), its reservations or the
        // command line (memblock=debug after the byte).
        case("vexpress-a9", 256, None, Test(TestTree::Latin1), &[
            "zonekit: memory from DTB",
            "Kernel command line: console=ttyAMA0 caf\u{fffd} memblock=debug",
            "zonekit: warning: OF: fdt: bootargs are not UTF-8",
            // memblock=debug's dump: the tree's 256 MiB, its static reservation and
            // the blob's own; the /reserved-memory pool.
            " memory[0x0]\t[0x60000000-0x6fffffff], 0x10000000 bytes",
            " reserved[0x2]\t[0x61000000-0x6100ffff], 0x00010000 bytes",
            " reserved[0x3]\t[0x68000000-",
            "OF: reserved mem: allocated zonekit-pool [mem 0x000000006ff00000-0x000000006fffffff]",
        ]),
        // Long and non-UTF-8 node names, a non-UTF-8 status, /chosen then /chosen@1,
        // on 64 MiB (less than the board map: a fallback would hang).
        case("vexpress-a9", 64, None, Test(TestTree::Quirks), &[
            "zonekit: memory from DTB",
            "zonekit: warning: OF: fdt: /chosen@1: ignored, an earlier node of that name is used",
        ]),
        // An unusable tree stops the boot with the cause ...
        BootCase {
            exit: 1,
            ..case("vexpress-a9", 128, None, Test(TestTree::Overlap), &[
                "zonekit: DTB at 0x64000000 rejected: memory banks overlap: ",
                "zonekit: the DTB is the memory description; add zonekit.fallback=board",
                "zonekit: boot failed: DTB at 0x64000000 rejected: memory banks overlap: ",
            ])
        },
        // ... unless the command line asks for the board map.
        case("vexpress-a9", 128, Some("zonekit.fallback=board"), Test(TestTree::Overlap), &[
            "zonekit: DTB at 0x64000000 rejected: memory banks overlap: ",
            "zonekit: zonekit.fallback=board: the DTB's memory and reservations are ignored",
            "zonekit: memory from board map",
        ]),
    ])
    .collect()
}

/// Lines (prefixes) every boot prints once `paging_init` has switched the MMU on.
const MMU_ON_LINES: &[&str] = &[
    "zonekit: MMU on (TTBR0 0x",
    "zonekit: linear map test: 64 words at ",
    "zonekit: linear map test: page pfn ",
];

/// Linux's `Virtual kernel memory layout:` block (fixed lines of the 3G/1G split).
const LAYOUT_LINES: &[&str] = &[
    "Virtual kernel memory layout:",
    "    vector  : 0xffff0000 - 0xffff1000   (   4 kB)",
    "    fixmap  : 0xffc00000 - 0xfff00000   (3072 kB)",
    "    vmalloc : 0x",
    "    lowmem  : 0xc0000000 - 0x",
    "    pkmap   : 0xbfe00000 - 0xc0000000   (   2 MB)",
    "    modules : 0xbf000000 - 0xbfe00000   (  14 MB)",
];

/// The highmem kmap test.
const KMAP_LINES: &[&str] = &["zonekit: kmap test: 8 highmem pages from pfn "];

/// QEMU boots `cargo xtask test` runs at once: `ZONEKIT_QEMU_JOBS`, else the
/// available parallelism (at most 4).
fn boot_jobs() -> usize {
    std::env::var("ZONEKIT_QEMU_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4)
        })
}

/// `f` over `items` on `jobs` threads; the results in the order of `items`.
fn run_parallel<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                out.lock().expect("no panics while holding the lock")[i] = Some(r);
            });
        }
    });
    out.into_inner()
        .expect("no panics while holding the lock")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
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

/// The defmt line a `--defmt` boot must show: the node's page total, logged from
/// zonekit-core with its source location.
fn check_defmt_location(lines: &[defmt::Line]) -> Result<(), String> {
    let line = lines
        .iter()
        .find(|l| l.message.starts_with("On node 0 totalpages"))
        .ok_or("no decoded `On node 0 totalpages` frame")?;
    let ok = line.location.starts_with("core/src/")
        && line
            .location
            .split_once(".rs:")
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "decoded line without a core/src/*.rs:N location: {line}"
        ))
    }
}

/// Time limit of one matrix boot: debug images at 1-2 GiB take about a minute on a
/// loaded two-CPU machine (the page-allocator self-test touches every page).
const MATRIX_TIMEOUT_SECS: u64 = 180;

/// Boot one matrix case in QEMU and check its log; returns the log.
fn check_boot(case: &BootCase, built: &Built) -> Result<String, String> {
    let board = find_board(case.board)?;
    let mut opts = BootOptions {
        board,
        mem: case.mem,
        cmdline: case.cmdline.map(str::to_string),
        release: false,
        timeout_secs: MATRIX_TIMEOUT_SECS,
        dtb: case.dtb.clone(),
        workdir: None,
        icount: false,
    };
    if case.defmt {
        opts.workdir = Some(defmt_workdir(&case.name().replace(' ', "_"))?);
    }
    let run = run_qemu(&opts, &built.bin, false)?;
    // With defmt the zonekit log lines are in the frames, the rest on the console.
    let decoded = opts.workdir.as_ref().map(|dir| read_defmt(dir, &built.elf));
    let mut log = run.stdout.clone();
    if let Some(Ok(lines)) = &decoded {
        for l in lines {
            log.push_str(&l.message);
            log.push('\n');
        }
    }
    let log = &log;
    let mmu_lines = MMU_ON_LINES.iter().chain(LAYOUT_LINES);
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
    if case.exit != 0 {
        if run.status != case.exit {
            return fail(format!(
                "exit status {} (expected {})",
                run.status, case.exit
            ));
        }
        return match missing_line(log.lines(), case.also) {
            Some(want) => fail(format!("missing line starting {want:?}")),
            None => Ok(log.clone()),
        };
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
    // Every boot turns the MMU on, retires memblock into the buddy allocator and
    // self-tests it.
    for want in ["Memory: ", "zonekit: page allocator self-test: "]
        .iter()
        .chain(mmu_lines)
        .chain(case.also)
    {
        if !log.lines().any(|l| l.starts_with(want)) {
            return fail(format!("missing line starting {want:?}"));
        }
    }
    // A CMA area on the command line shows in the Memory: line (Linux's totalcma_pages).
    let cma_asked = case.cmdline.is_some_and(|c| {
        c.split_whitespace()
            .any(|w| w.starts_with("cma=") && w != "cma=0")
    });
    if cma_asked
        && !log
            .lines()
            .any(|l| l.starts_with("Memory: ") && l.contains("K cma-reserved, "))
    {
        return fail("no `cma-reserved` in the Memory: line".into());
    }
    match decoded {
        None => Ok(log.clone()),
        Some(Err(e)) => fail(format!("defmt decoding failed: {e}")),
        Some(Ok(lines)) => match check_defmt_location(&lines) {
            Ok(()) => Ok(log.clone()),
            Err(e) => fail(e),
        },
    }
}

/// The first of `wanted` (prefixes) that no line of `lines` starts with.
fn missing_line<'a, 'b>(
    lines: impl Iterator<Item = &'a str> + Clone,
    wanted: &[&'b str],
) -> Option<&'b str> {
    wanted
        .iter()
        .copied()
        .find(|w| !lines.clone().any(|l| l.starts_with(w)))
}

/// Boot a reuse example on its board (512 MiB, generated DTB): it must exit 0, print
/// its lines, and show the same zones as a board binary.
fn check_example(example: &Example, image: &Path) -> Result<(), String> {
    let board = find_board(&example.profile.board)?;
    let opts = BootOptions {
        board,
        mem: 512 * MIB,
        cmdline: None,
        release: false,
        timeout_secs: DEFAULT_TIMEOUT_SECS,
        dtb: dtb::DtbMode::Auto,
        icount: false,
        workdir: None,
    };
    let run = run_qemu(&opts, image, false)?;
    let log = &run.stdout;
    let fail = |why: String| Err(format!("{why}\n  guest log tail:\n{}", tail(log, 15)));
    if run.timed_out {
        return fail(format!("timed out after {} s", opts.timeout_secs));
    }
    if run.status != 0 {
        return fail(format!("exit status {}", run.status));
    }
    let expected = expected_lines(board, opts.mem, None, None);
    for want in &expected {
        if !log.lines().any(|l| l == want) {
            return fail(format!("missing line {want:?}"));
        }
    }
    for want in &example.profile.expect {
        if !log.lines().any(|l| l.starts_with(want)) {
            return fail(format!("missing line starting {want:?}"));
        }
    }
    Ok(())
}

/// Matrix cases whose QEMU log `cargo xtask sim` must reproduce (zone, node, memmap,
/// `Memory:` and MEMBLOCK dump lines).
fn sim_compared(case: &BootCase) -> bool {
    let mib = case.mem >> 20;
    if case.exit != 0 {
        // A boot that must fail fails the same way in the sim.
        return true;
    }
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
            | ("vexpress-a9", 128, Some("memtest=17"), dtb::DtbMode::Auto)
            | ("sabrelite", 2048, None, dtb::DtbMode::Auto)
            | ("vexpress-a9", 512, Some("mem=8G"), dtb::DtbMode::Auto)
            | (
                "vexpress-a9",
                256,
                None,
                dtb::DtbMode::Test(dtb::TestTree::Latin1)
            )
            | (
                "vexpress-a9",
                64,
                None,
                dtb::DtbMode::Test(dtb::TestTree::Quirks)
            )
            | (
                "vexpress-a9",
                128,
                _,
                dtb::DtbMode::Test(dtb::TestTree::Overlap)
            )
    )
}

/// Whether the simulator can print a case's log in the guest's order: not with defmt
/// (the frames are decoded after the console), not from a device tree QEMU generates
/// itself (the simulator has only the trees xtask writes).
fn sim_reproduces(case: &BootCase) -> bool {
    let qemu_tree = find_board(case.board)
        .is_ok_and(|b| b.profile.qemu.dtb == DtbSource::Qemu && case.dtb == dtb::DtbMode::Auto);
    !case.defmt && !qemu_tree
}

/// The simulator's options for a matrix case (the image range from the ELF unless
/// given).
fn sim_for_case(
    case: &BootCase,
    image: Option<zonekit_core::addr::MemRange>,
) -> Result<sim::SimOptions, String> {
    Ok(sim::SimOptions {
        board: find_board(case.board)?,
        mem: case.mem,
        cmdline: case.cmdline.map(str::to_string),
        dtb: case.dtb.clone(),
        release: false,
        image,
    })
}

/// Run the same case in the simulator and compare with the QEMU log.
fn check_sim(case: &BootCase, qemu_log: &str) -> Result<(), String> {
    let opts = sim_for_case(case, None)?;
    let run = sim::run(&opts, false)?;
    if case.exit != 0 {
        // A boot that stops: the same status and the same lines.
        if run.exit_code() != case.exit {
            return Err(format!(
                "sim exits {} ({}), QEMU {}",
                run.exit_code(),
                run.verdict(),
                case.exit
            ));
        }
        return match case
            .also
            .iter()
            .find(|w| !run.lines.iter().any(|l| l.starts_with(*w)))
        {
            Some(w) => Err(format!("sim log lacks a line starting {w:?}")),
            None => Ok(()),
        };
    }
    if run.exit_code() != 0 {
        return Err(format!("sim: {}", run.verdict()));
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

/// Build each board of `cases` once and boot every case in QEMU, a few at once; the
/// logs (or why a boot failed) in the order of `cases`.
fn run_boot_matrix(cases: &[BootCase]) -> Result<Vec<Result<String, String>>, String> {
    let tc = toolchain::ArmToolchain::find_or_install()?;
    toolchain::ensure_qemu()?;
    // One build per (board, defmt).
    type Image<'a> = ((&'a str, bool), Result<Built, String>);
    let mut images: Vec<Image> = Vec::new();
    for case in cases {
        let key = (case.board, case.defmt);
        if !images.iter().any(|(k, _)| *k == key) {
            let started = std::time::Instant::now();
            let built = find_board(case.board)
                .and_then(|b| build_image(&tc, &b.package, &b.profile.bin, b, false, case.defmt));
            eprintln!(
                "xtask: built {}{} in {:.1} s",
                case.board,
                if case.defmt { " (defmt)" } else { "" },
                started.elapsed().as_secs_f64()
            );
            images.push((key, built));
        }
    }
    // The boots are independent: run a few at once, report in matrix order.
    Ok(run_parallel(cases, boot_jobs(), |case| {
        let key = (case.board, case.defmt);
        let image = images
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, i)| i.clone())
            .expect("built above");
        let started = std::time::Instant::now();
        let r = image
            .map_err(|e| format!("build failed: {e}"))
            .and_then(|img| check_boot(case, &img));
        eprintln!(
            "xtask: boot {} {} in {:.0} s",
            case.name(),
            if r.is_ok() { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        r
    }))
}

/// `cargo xtask bless`: boot every matrix case in QEMU and in the simulator and
/// rewrite its golden log (`tests/golden/<case>.log`): the QEMU log whole, with the
/// lines only the guest prints marked. A case whose boot fails its checks is not
/// written.
fn cmd_bless(args: &[String]) -> Result<u8, String> {
    if let Some(a) = args.first() {
        return Err(format!("`bless` takes no options (got {a:?})"));
    }
    let root = workspace_root();
    std::fs::create_dir_all(root.join(golden::DIR))
        .map_err(|e| format!("creating {}: {e}", golden::DIR))?;
    let cases = boot_matrix();
    let results = run_boot_matrix(&cases)?;
    let mut failed = 0;
    for (case, result) in cases.iter().zip(results) {
        let name = case.name();
        let written = result.and_then(|log| {
            let qemu = golden::lines(&log);
            let (sim, image) = if !sim_reproduces(case) {
                (None, None)
            } else {
                let board = find_board(case.board)?;
                let (image, _) = sim::kernel_image(board, false);
                let run = sim::run(&sim_for_case(case, Some(image))?, false)?;
                let lines: Vec<String> = run.lines.iter().map(|l| golden::normalize(l)).collect();
                (Some(lines), Some(image))
            };
            let g = golden::bless(&qemu, sim.as_deref(), image)?;
            let p = golden::path(&root, &name);
            std::fs::write(&p, g.render()).map_err(|e| format!("writing {}: {e}", p.display()))?;
            Ok(p)
        });
        match written {
            Ok(p) => println!("wrote {}", p.display()),
            Err(e) => {
                failed += 1;
                println!("FAIL {name} ({e})");
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
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

    // QEMU boot matrix: every log also against its golden file, whole.
    let cases = boot_matrix();
    match run_boot_matrix(&cases) {
        Err(e) => {
            for case in &cases {
                report(&case.name(), Err(format!("no ARM toolchain or QEMU: {e}")));
            }
        }
        Ok(results) => {
            for (case, result) in cases.iter().zip(results) {
                let log = result.as_ref().ok().cloned();
                report(&case.name(), result.map(|_| ()));
                let golden = match &log {
                    Some(log) => golden::Golden::load(&root, &case.name()).and_then(|g| {
                        golden::compare("QEMU", &g.guest_view(), &golden::lines(log))
                    }),
                    None => Err("the QEMU boot failed".into()),
                };
                report(&format!("golden: {}", case.name()), golden);
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

    // The reuse examples: a kernel of its own boots memory and uses the allocator.
    for example in boards::declared().map_or(&[][..], |d| &d.examples) {
        let (bin, board) = (&example.profile.bin, &example.profile.board);
        let name = format!("example {bin} on {board}");
        let result = toolchain::ArmToolchain::find_or_install()
            .and_then(|tc| {
                let board = find_board(board)?;
                build_example_image(&tc, example, board, false)
            })
            .and_then(|img| check_example(example, &img.bin));
        report(&name, result);
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
    fn parallel_results_keep_their_order() {
        let items: Vec<u64> = (0..37).collect();
        for jobs in [1, 3, 8, 100] {
            let out = run_parallel(&items, jobs, |x| x * 2);
            assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
        assert!(run_parallel(&[] as &[u8], 4, |_| 0).is_empty());
    }

    #[test]
    fn xtask_non_utf8_argument_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let args = [
            std::ffi::OsString::from("qemu"),
            std::ffi::OsString::from("--cmdline"),
            std::ffi::OsString::from_vec(b"mem=64M\xff".to_vec()),
        ];
        let e = utf8_args(args).unwrap_err();
        assert_eq!(e, r#"argument "mem=64M\xFF" is not valid UTF-8"#);
        assert_eq!(
            utf8_args([std::ffi::OsString::from("sim")]),
            Ok(vec!["sim".to_string()])
        );
    }

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
    fn qemu_generated_dtb_boards() {
        let opts = |board: &str, dtb| BootOptions {
            board: find_board(board).unwrap(),
            mem: 512 * MIB,
            cmdline: None,
            release: false,
            timeout_secs: 1,
            dtb,
            icount: false,
            workdir: None,
        };
        // virt: `auto` is QEMU's own tree (no -dtb), ATAGS do not exist.
        assert_eq!(
            effective_dtb(&opts("virt", dtb::DtbMode::Auto)),
            Ok(dtb::DtbMode::None)
        );
        assert!(effective_dtb(&opts("virt", dtb::DtbMode::None)).is_err());
        assert!(effective_dtb(&opts("virt", dtb::DtbMode::AutoNomap)).is_err());
        // Other boards keep what was asked for.
        assert_eq!(
            effective_dtb(&opts("vexpress-a9", dtb::DtbMode::Auto)),
            Ok(dtb::DtbMode::Auto)
        );
        let cmd = qemu_command(&opts("virt", dtb::DtbMode::Auto), Path::new("x.bin")).unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.windows(2).any(|w| w == ["-cpu", "cortex-a15"]));
        assert!(args.windows(2).any(|w| w == ["-nic", "none"]));
        assert!(!args.iter().any(|a| a == "-dtb"));
        assert!(boot_matrix().iter().any(|c| c.board == "virt"));
        assert_eq!(
            find_example("minimal-os").unwrap().profile.board,
            "vexpress-a9"
        );
    }

    #[test]
    fn qemu_command_follows_the_profile() {
        for b in boards::all().unwrap() {
            let dtb = match b.profile.qemu.dtb {
                DtbSource::Generated => dtb::DtbMode::File("x.dtb".into()),
                DtbSource::Qemu => dtb::DtbMode::Auto,
            };
            let opts = BootOptions {
                board: b,
                mem: 256 * MIB,
                cmdline: None,
                release: false,
                timeout_secs: 1,
                dtb,
                icount: false,
                workdir: None,
            };
            let cmd = qemu_command(&opts, Path::new("x.bin")).unwrap();
            let args: Vec<String> = cmd
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let q = &b.profile.qemu;
            assert!(args.windows(2).any(|w| w == ["-M", q.machine.as_str()]));
            assert!(q.args.is_empty() || args.windows(q.args.len()).any(|w| w == q.args));
            assert_eq!(args.iter().any(|a| a == "-cpu"), q.cpu.is_some());
            // Every size of the board's profile is a matrix case.
            for &mem in &q.matrix {
                assert!(boot_matrix()
                    .iter()
                    .any(|c| c.board == b.name && c.mem == mem && c.dtb == dtb::DtbMode::Auto));
            }
        }
    }

    #[test]
    fn expected_lines_with_ram_at_zero() {
        // PHYS_OFFSET 0: lowmem is the first 768 MiB.
        let board = BoardDesc {
            name: "ram-at-zero",
            ram_base: 0,
            ..*find_board("vexpress-a9").unwrap().desc
        };
        assert_eq!(
            expected_lines(&board, 1 << 30, None, None),
            vec![
                "  Normal   [mem 0x0000000000000000-0x000000002fffffff]",
                "  HighMem  [mem 0x0000000030000000-0x000000003fffffff]",
                "  node   0: [mem 0x0000000000000000-0x000000003fffffff]",
                "On node 0 totalpages: 262144",
            ]
        );
    }

    #[test]
    fn sim_comparisons_are_in_the_matrix() {
        assert!(boot_matrix().iter().filter(|c| sim_compared(c)).count() >= 5);
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
