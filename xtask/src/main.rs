//! zonekit's build and test driver (`cargo xtask ...`, see matklad's cargo-xtask);
//! `cargo xtask --help` and `cargo xtask COMMAND --help` list every option ([`cli`]).
//!
//! * `cargo xtask qemu [--board B] [--mem SIZE] [--cmdline STR] [--release] [--timeout SECS] [--gdb [PORT]]`
//!   builds one board image for ARM, converts it to a raw image and boots it in QEMU,
//!   exiting with the guest's status.
//! * `cargo xtask bench` counts instructions per operation (callgrind) and times
//!   zonekit's page allocator against its peers interleaved in one process, runs the
//!   fragmentation workload and the guest's instruction count per page under
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
mod bench_breakdown;
mod bench_host;
mod bench_pairs;
mod bench_size;
mod bench_smp;
mod boards;
mod cli;
mod commands;
mod defmt;
mod doc;
mod dtb;
mod golden;
mod image;
mod matrix;
mod matrix_sim;
mod memmap;
mod oracle;
mod progress;
mod qemu;
#[cfg(test)]
mod readme;
mod sim;
mod sim_compare;
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

fn find_example(name: &str) -> Result<&'static Example, String> {
    boards::find_example(name)
}

fn main() -> ExitCode {
    let cli = match cli::Cli::parse_checked() {
        Ok(c) => c,
        // Help and version go to stdout with status 0, usage errors to stderr with 2.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        cli::Command::Qemu(args) => cmd_qemu(&args),
        cli::Command::Test => cmd_test(),
        cli::Command::Oracle { dirs } => cmd_oracle(&dirs),
        cli::Command::Bench(args) => bench::cmd_bench(&args),
        cli::Command::Sim(args) => {
            sim::sim_options(&args.boot, args.smp).and_then(|o| sim::cmd_sim(&o))
        }
        cli::Command::Memmap { sim: args, output } => {
            sim::sim_options(&args.boot, args.smp).and_then(|o| memmap::cmd_memmap(&o, &output))
        }
        cli::Command::Doc { open } => doc::cmd_doc(open),
        cli::Command::Bless { cases } => cmd_bless(&cases),
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

#[allow(unused_imports)] // the runner, the matrix and the commands, for main and the tests
use {commands::*, matrix::*, matrix_sim::*, qemu::*};

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
    fn smp_cases_and_their_lines() {
        let names: Vec<String> = boot_matrix()
            .iter()
            .filter(|c| c.smp > 1)
            .map(|c| c.name())
            .collect();
        assert_eq!(
            names,
            [
                "vexpress-a9 1G dtb smp4",
                "sabrelite 512M dtb smp4",
                "vexpress-a15 512M dtb smp4",
                "virt 512M qemu-dtb smp4",
                "vexpress-a9 512M dtb maxcpus=1 smp4",
                "vexpress-a9 512M dtb zonekit.fault=cpu-offline:2 smp4",
                "sabrelite 512M dtb zonekit.fault=cpu-undef:3 smp4",
            ]
        );
        let cpus: Vec<usize> = boot_matrix()
            .iter()
            .filter(|c| c.smp > 1)
            .map(|c| c.cpus())
            .collect();
        assert_eq!(cpus, [4, 4, 4, 4, 1, 4, 4]);
        let offline: Vec<Option<usize>> = boot_matrix()
            .iter()
            .filter(|c| c.smp > 1)
            .map(|c| c.offline_cpu())
            .collect();
        assert_eq!(offline, [None, None, None, None, None, Some(2), None]);
        let test = |ids: &[usize]| {
            let mut t: String = ids
                .iter()
                .map(|n| format!("zonekit: smp: CPU{n}: 5 blocks (9 pages) allocated, written, checked and freed\n"))
                .collect();
            t.push_str(&format!(
                "zonekit: smp: {} CPUs ran the concurrent page allocator test at once, nothing lost (7 pages free before and after)\n",
                ids.len()
            ));
            t
        };
        let four = &format!(
            "x\nsmp: Bringing up secondary CPUs ...\nCPU1: started\nCPU2: started\nCPU3: started\nsmp: Brought up 1 node, 4 CPUs\nzonekit: smp: 4 CPUs ran on_each_cpu\n{}y\n",
            test(&[0, 1, 2, 3])
        );
        assert_eq!(smp_lines_ok(four, 4, None), Ok(()));
        assert!(smp_lines_ok(four, 1, None).is_err());
        assert!(smp_lines_ok(four, 3, None).is_err());
        let offline = four
            .replace(&test(&[0, 1, 2, 3]), &test(&[0, 1, 3]))
            .replace("CPU2: started", "CPU2: failed to come online")
            .replace("4 CPUs", "3 CPUs");
        assert!(smp_lines_ok(&offline, 4, None).is_err());
        assert_eq!(smp_lines_ok(&offline, 4, Some(2)), Ok(()));
        assert!(smp_lines_ok(four, 4, Some(2)).is_err());
        assert!(smp_lines_ok(&four.replace("CPU3: started\n", ""), 4, None).is_err());
        // A CPU missing from the concurrent test, or no verdict.
        let no_cpu2 = four.replace(&test(&[0, 1, 2, 3]), &test(&[0, 1, 3]));
        assert!(smp_lines_ok(&no_cpu2, 4, None).is_err());
        assert!(smp_lines_ok(&four.replace("nothing lost", "lost"), 4, None).is_err());
        assert_eq!(smp_lines_ok("x\ny\n", 1, None), Ok(()));
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
            gdb: None,
            smp: 1,
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
                gdb: None,
                smp: 1,
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
            assert!(!args.iter().any(|a| a == "-gdb" || a == "-S"));
            // Every size of the board's profile is a matrix case.
            for &mem in &q.matrix {
                assert!(boot_matrix()
                    .iter()
                    .any(|c| c.board == b.name && c.mem == mem && c.dtb == dtb::DtbMode::Auto));
            }
        }
    }

    #[test]
    fn example_readmes_show_a_run() {
        let ex = find_example("minimal-os").unwrap();
        let lines = readme_sample(ex).unwrap();
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines
            .iter()
            .any(|l| l.starts_with("minimal-os: heap: a Vec")));
    }

    #[test]
    fn gdb_boot_waits_on_the_port_and_says_how_to_attach() {
        let opts = BootOptions {
            board: find_board("vexpress-a9").unwrap(),
            mem: 256 * MIB,
            cmdline: None,
            release: false,
            timeout_secs: 0,
            dtb: dtb::DtbMode::File("x.dtb".into()),
            icount: false,
            workdir: None,
            gdb: Some(4321),
            smp: 1,
        };
        let cmd = qemu_command(&opts, Path::new("x.bin")).unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.windows(3).any(|w| w == ["-S", "-gdb", "tcp::4321"]),
            "{args:?}"
        );
        assert_eq!(
            gdb_command(Path::new("target/arm/k"), 4321),
            "gdb-multiarch target/arm/k -ex 'set architecture armv7' -ex 'target remote localhost:4321'"
        );
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
        // A case the simulator cannot make is never compared with it.
        assert!(boot_matrix()
            .iter()
            .filter(|c| c.no_sim)
            .all(|c| !sim_compared(c)));
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
