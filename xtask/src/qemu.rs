//! Building a board's image and booting it in QEMU (`cargo xtask qemu`): the ARM
//! build, the raw image, the QEMU command line from the board's profile, the run under
//! a timeout, defmt decoding.

use super::*;

/// Options of one QEMU boot.
#[derive(Clone, Debug)]
pub(crate) struct BootOptions {
    pub(crate) board: &'static Board,
    pub(crate) mem: u64,
    pub(crate) cmdline: Option<String>,
    pub(crate) release: bool,
    pub(crate) timeout_secs: u64,
    pub(crate) dtb: dtb::DtbMode,
    /// `-icount shift=0,sleep=off`: one guest instruction per virtual nanosecond, so
    /// the board timers count instructions deterministically.
    pub(crate) icount: bool,
    /// Run QEMU in this directory (where the guest's defmt frame file lands).
    pub(crate) workdir: Option<PathBuf>,
    /// Wait for a debugger on this TCP port (QEMU's `-S -gdb tcp::PORT`).
    pub(crate) gdb: Option<u16>,
    /// CPUs QEMU models (`-smp`, passed when above 1).
    pub(crate) smp: u32,
}

pub(crate) fn cmd_qemu(args: &crate::cli::QemuArgs) -> Result<u8, String> {
    let boot = &args.boot;
    let mut opts = BootOptions {
        board: boot.board,
        mem: boot.mem,
        cmdline: boot.cmdline.clone(),
        release: boot.release,
        timeout_secs: args.timeout,
        dtb: boot.dtb.clone(),
        icount: args.icount,
        workdir: None,
        gdb: args.gdb,
        smp: args.smp,
    };
    let (example, defmt) = (args.example, args.defmt);
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
    if let Some(port) = opts.gdb {
        // A debugging session takes as long as it takes (`timeout 0` never fires).
        opts.timeout_secs = 0;
        eprintln!("xtask: QEMU waits for a debugger on port {port}; attach with:");
        eprintln!("  {}", gdb_command(&built.elf, port));
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
    if opts.icount {
        if let Some(line) = crate::bench::icount_summary(&run.stdout) {
            eprintln!("{line}");
        }
        for line in crate::bench_pairs::summary_lines(&run.stdout) {
            eprintln!("{line}");
        }
    }
    Ok(run.status)
}

/// The `gdb-multiarch` command line that attaches to a `--gdb` boot: the ELF for
/// symbols, ARM mode, the gdbstub's port.
pub(crate) fn gdb_command(elf: &Path, port: u16) -> String {
    format!(
        "gdb-multiarch {} -ex 'set architecture armv7' -ex 'target remote localhost:{port}'",
        elf.display()
    )
}

/// A fresh directory for one defmt run: QEMU runs there, the guest's frame file
/// lands there.
pub(crate) fn defmt_workdir(board: &str) -> Result<PathBuf, String> {
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
pub(crate) fn read_defmt(dir: &Path, elf: &Path) -> Result<Vec<defmt::Line>, String> {
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
pub(crate) struct Built {
    /// The linked ELF (with `defmt`, under `target/arm-defmt/`, so the two
    /// builds of a board do not overwrite each other's).
    pub(crate) elf: PathBuf,
    /// The raw image QEMU loads.
    pub(crate) bin: PathBuf,
}

/// Build the board's binary for ARM (with the `defmt` feature when asked) and convert
/// it to a raw image.
/// Build binary `bin` of `package` (a board's own binary, or a kernel built on
/// zonekit) for ARM and convert it to a raw image for `board`; returns its path.
pub(crate) fn build_image(
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
pub(crate) fn build_example_image(
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
pub(crate) struct QemuRun {
    pub(crate) status: u8,
    pub(crate) timed_out: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// QEMU's `-icount` setting for deterministic guest timing: 1 instruction = 1 ns of
/// virtual time, no sleeping while idle.
pub(crate) const ICOUNT: &str = "shift=0,sleep=off";
/// The `-dtb` mode a boot really uses ([`boards::effective_dtb`]).
pub(crate) fn effective_dtb(opts: &BootOptions) -> Result<dtb::DtbMode, String> {
    boards::effective_dtb(opts.board, &opts.dtb)
}

pub(crate) fn qemu_command(opts: &BootOptions, image: &Path) -> Result<Command, String> {
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
    if opts.smp > 1 {
        cmd.arg("-smp").arg(opts.smp.to_string());
    }
    if let Some(c) = &opts.cmdline {
        cmd.arg("-append").arg(c);
    }
    if let Some(path) = dtb {
        // Absolute, as QEMU may run in another directory (`--defmt`).
        let path = std::path::absolute(&path).unwrap_or(path);
        cmd.arg("-dtb").arg(path);
    }
    if let Some(port) = opts.gdb {
        // Halted before the first instruction, the gdbstub waiting on the port.
        cmd.args(["-S", "-gdb"]).arg(format!("tcp::{port}"));
    }
    // The board's own arguments (its profile's `args`).
    cmd.args(&qemu.args);
    if let Some(dir) = &opts.workdir {
        cmd.current_dir(dir);
    }
    Ok(cmd)
}

/// Boot the image; with `stream` the console goes to our stdout as it arrives.
/// The device tree QEMU itself generates for this boot, as the guest gets it in r2
/// when no `-dtb` is given: QEMU's `-M MACHINE,dumpdtb=FILE` writes it (after
/// `arm_load_dtb`'s edits: `/memory` from `-m`, `/chosen/bootargs` from `-append`)
/// and exits without booting.
pub(crate) fn dump_qemu_dtb(opts: &BootOptions, image: &Path) -> Result<Vec<u8>, String> {
    let out = workspace_root().join(format!(
        "target/arm/dtb/qemu-{}-{}.dtb",
        opts.board.name,
        size_name(opts.mem)
    ));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let cmd = qemu_command(opts, image)?;
    let mut args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
    let m = args
        .iter()
        .position(|a| a == "-M")
        .ok_or("the QEMU command has no -M")?;
    let machine = format!(
        "{},dumpdtb={}",
        args[m + 1].to_string_lossy(),
        out.display()
    );
    args[m + 1] = machine.into();
    let result = Command::new(cmd.get_program())
        .args(&args)
        .output()
        .map_err(|e| format!("running QEMU to dump its device tree: {e}"))?;
    std::fs::read(&out).map_err(|e| {
        format!(
            "QEMU wrote no device tree to {} ({e}): {}",
            out.display(),
            String::from_utf8_lossy(&result.stderr).trim()
        )
    })
}

pub(crate) fn run_qemu(opts: &BootOptions, image: &Path, stream: bool) -> Result<QemuRun, String> {
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

pub(crate) fn describe(cmd: &Command) -> String {
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
