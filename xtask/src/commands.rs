//! `cargo xtask test`, `bless` and `oracle`: the suites in order, ending with the
//! `N passed, N failed` line.

use super::*;

/// `cargo xtask oracle [DIR...]`: replay Linux fixtures (default: the copied ones).
pub(crate) fn cmd_oracle(args: &[PathBuf]) -> Result<u8, String> {
    let dirs: Vec<PathBuf> = if args.is_empty() {
        oracle::default_dirs(&workspace_root())
    } else {
        args.to_vec()
    };
    let (passed, failed) = oracle::run(&dirs);
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 && passed > 0 { 0 } else { 1 })
}

/// Each case's log (or why its boot failed), in the order of the cases, and how long
/// each boot took.
pub(crate) type MatrixRun = (Vec<Result<String, String>>, Vec<progress::Timing>);

/// Build each board of `cases` once and boot every case in QEMU, a few at once; the
/// logs (or why a boot failed) in the order of `cases`.
pub(crate) fn run_boot_matrix(cases: &[BootCase]) -> Result<MatrixRun, String> {
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
    let progress = progress::Progress::new("boot", cases.len());
    let results = run_parallel(cases, boot_jobs(), |case| {
        let key = (case.board, case.defmt);
        let image = images
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, i)| i.clone())
            .expect("built above");
        let name = case.name();
        progress.start(&name);
        let r = image
            .map_err(|e| format!("build failed: {e}"))
            .and_then(|img| check_boot(case, &img));
        progress.finish(&name, r.is_ok());
        r
    });
    Ok((results, progress.timings()))
}

/// `cargo xtask bless`: boot every matrix case in QEMU and in the simulator and
/// rewrite its golden log (`tests/golden/<case>.log`): the QEMU log whole, with the
/// lines only the guest prints marked. A case whose boot fails its checks is not
/// written.
pub(crate) fn cmd_bless(only: &[String]) -> Result<u8, String> {
    let root = workspace_root();
    std::fs::create_dir_all(root.join(golden::DIR))
        .map_err(|e| format!("creating {}: {e}", golden::DIR))?;
    let cases: Vec<BootCase> = boot_matrix()
        .into_iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| c.name().contains(o.as_str())))
        .collect();
    if cases.is_empty() {
        return Err(format!("no matrix case matches {only:?}"));
    }
    let (results, _) = run_boot_matrix(&cases)?;
    let mut failed = 0;
    for (case, result) in cases.iter().zip(results) {
        let name = case.name();
        let written = result.and_then(|log| {
            let qemu = golden::lines(&log);
            let (sim, image) = {
                let board = find_board(case.board)?;
                let tree = if boots_from_qemu_tree(case) {
                    let opts = matrix_boot_options(case)?;
                    let bin = sim::elf_path(board, false).with_extension("bin");
                    let dtb = qemu::dump_qemu_dtb(&opts, &bin)?;
                    golden::save_qemu_tree(&root, &name, &dtb)?;
                    Some(dtb)
                } else {
                    None
                };
                // A defmt boot ran the defmt image, whose layout differs.
                let image = if case.defmt {
                    sim::defmt_kernel_image(board)?
                } else {
                    sim::kernel_image(board, false).0
                };
                if case.no_sim {
                    (None, Some(image))
                } else {
                    let run = sim::run(&sim_for_case(case, Some(image), tree)?, false)?;
                    let mut lines: Vec<String> =
                        run.lines.iter().map(|l| golden::normalize(l)).collect();
                    if case.defmt {
                        lines = golden::console_first(&lines);
                    }
                    (Some(lines), Some(image))
                }
            };
            let g = golden::bless(&qemu, sim.as_deref(), image, case.defmt)?;
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

pub(crate) fn cmd_test() -> Result<u8, String> {
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
    let mut timings = Vec::new();
    match run_boot_matrix(&cases) {
        Err(e) => {
            for case in &cases {
                report(&case.name(), Err(format!("no ARM toolchain or QEMU: {e}")));
            }
        }
        Ok((results, boot_timings)) => {
            timings = boot_timings;
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

    if !timings.is_empty() {
        println!("\n{}", progress::summary("boot", &timings));
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}
