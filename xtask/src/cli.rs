//! The command line (`clap` derive): every subcommand and option with its help and
//! default, values typed and checked before anything is built (a board from the
//! BSPs' tables, a `--mem` size in QEMU's syntax, a `--dtb` mode).

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::boards::{Board, Example};
use crate::dtb::DtbMode;

/// zonekit's build and test driver.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build one board image (or a reuse example) for ARM and boot it in QEMU; exits
    /// with the guest's status.
    Qemu(QemuArgs),
    /// Run the guest's boot flow on the host with simulated RAM and the boot
    /// information QEMU would hand over; prints the same log.
    Sim(SimArgs),
    /// Draw the memory map of a simulated boot as an SVG file.
    Memmap {
        /// The boot to draw.
        #[command(flatten)]
        sim: SimArgs,
        /// The SVG file to write.
        #[arg(short, long, value_name = "FILE.svg")]
        output: PathBuf,
    },
    /// Run the host test suites, the QEMU boot matrix (each log against its golden
    /// file) and the reuse examples; ends with `N passed, N failed`.
    Test,
    /// Boot every matrix case in QEMU and the simulator and rewrite tests/golden/.
    Bless {
        /// Only the cases whose name contains one of these (`cargo xtask test`
        /// prints the names).
        cases: Vec<String>,
    },
    /// Benchmarks: host allocator workloads against peers, the guest's
    /// instructions per page and image sizes; rewrites BENCHMARKS.md.
    Bench(BenchArgs),
    /// Replay the Linux oracle fixtures (default: tests/fixtures/linux-6.1 and
    /// tests/fixtures/linux-6.1-proc).
    Oracle {
        /// Fixture directories.
        dirs: Vec<PathBuf>,
    },
    /// Build the API docs for the ARM target (the runtime included), warnings as
    /// errors.
    Doc {
        /// Open them in a browser.
        #[arg(long)]
        open: bool,
    },
}

/// One boot's inputs, shared by `qemu`, `sim` and `memmap`.
#[derive(Debug, Clone, Args)]
pub struct BootArgs {
    /// The board (from each BSP's `[package.metadata.zonekit.boards]`).
    #[arg(long, default_value = "vexpress-a9", value_parser = board_parser())]
    pub board: &'static Board,
    /// RAM size, QEMU's `-m` syntax (a number with K/M/G/T; MiB when bare).
    #[arg(long, default_value = "512M", value_parser = crate::parse_mem)]
    pub mem: u64,
    /// The kernel command line (QEMU's `-append`).
    #[arg(long, value_name = "STR")]
    pub cmdline: Option<String>,
    /// The device tree: `auto` (xtask writes the board's; on a board whose tree QEMU
    /// generates, QEMU's own), `auto-nomap` (plus a no-map region), `none` (ATAGS),
    /// `test:NAME` (a test tree of the matrix) or a file.
    #[arg(long, default_value = "auto", value_parser = DtbMode::parse, value_name = "MODE")]
    pub dtb: DtbMode,
    /// The release profile (for `sim`: read the image range from the release ELF).
    #[arg(long)]
    pub release: bool,
}

/// `cargo xtask qemu`.
#[derive(Debug, Clone, Args)]
pub struct QemuArgs {
    /// The boot.
    #[command(flatten)]
    pub boot: BootArgs,
    /// Boot a reuse example instead of the board binary (on the example's board).
    #[arg(long, value_parser = example_parser(), conflicts_with = "board")]
    pub example: Option<&'static Example>,
    /// `-icount shift=0,sleep=off`: board timers count guest instructions.
    #[arg(long)]
    pub icount: bool,
    /// CPUs QEMU models (`-smp N`): 1 to 4, at most what the board's model takes
    /// (its profile's `max_cpus`); the guest starts the secondaries.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4))]
    pub smp: u32,
    /// Build with the `defmt` feature and decode the guest's frames after the run.
    #[arg(long)]
    pub defmt: bool,
    /// Stop QEMU after this many seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub timeout: u64,
    /// Start QEMU's gdbstub on PORT, halted before the first instruction, and print
    /// the `gdb-multiarch` command that attaches to it (no timeout then).
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "1234")]
    pub gdb: Option<u16>,
}

impl Cli {
    /// Parse the process's arguments ([`Self::parse_checked_from`]).
    pub fn parse_checked() -> Result<Cli, clap::Error> {
        Self::parse_checked_from(std::env::args_os())
    }

    /// Parse `args`, then check what one option cannot check alone (`--smp` against
    /// the board's CPUs); either failure is a clap error.
    pub fn parse_checked_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::CommandFactory;
        let cli = Self::try_parse_from(args)?;
        // (subcommand, board, --smp) to check against the board's model.
        let smp = match &cli.command {
            Command::Qemu(q) => {
                let board = match q.example {
                    Some(e) => crate::find_board(&e.profile.board).ok(),
                    None => Some(q.boot.board),
                };
                board.map(|b| ("qemu", b, q.smp))
            }
            Command::Sim(s) => Some(("sim", s.boot.board, s.smp)),
            Command::Memmap { sim, .. } => Some(("memmap", sim.boot.board, sim.smp)),
            _ => None,
        };
        if let Some((name, b, n)) = smp {
            let max = b.profile.qemu.max_cpus;
            if n > max {
                let mut sub = Self::command()
                    .find_subcommand(name)
                    .expect("the subcommand exists")
                    .clone()
                    .bin_name(format!("cargo xtask {name}"));
                return Err(sub.error(
                    clap::error::ErrorKind::ValueValidation,
                    format!(
                        "invalid value '{n}' for '--smp <N>': QEMU's {} model takes at most {max} CPU{}",
                        b.name,
                        if max == 1 { "" } else { "s" }
                    ),
                ));
            }
        }
        Ok(cli)
    }
}

/// `cargo xtask bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Skip the host benchmarks (callgrind instruction counts, CPU-time ratios,
    /// fragmentation).
    #[arg(long)]
    pub no_host: bool,
    /// Skip the guest's instructions-per-page boots under `-icount` and the image
    /// size table (release builds with and without `defmt`).
    #[arg(long)]
    pub no_guest: bool,
    /// Where to write the report [default: BENCHMARKS.md at the workspace root].
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `cargo xtask sim` (and the boot of `memmap`).
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// The boot.
    #[command(flatten)]
    pub boot: BootArgs,
    /// CPUs of the simulated machine (QEMU's `-smp N`): the concurrent page
    /// allocator test runs on that many host threads.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4))]
    pub smp: u32,
}

/// A board name from the discovered boards, as the board.
fn board_parser() -> impl TypedValueParser<Value = &'static Board> {
    let names: Vec<&'static str> = crate::boards::all()
        .map(|b| b.iter().map(|b| b.profile.name.as_str()).collect())
        .unwrap_or_default();
    PossibleValuesParser::new(names).try_map(|n: String| crate::find_board(&n))
}

/// An example binary from the discovered examples.
fn example_parser() -> impl TypedValueParser<Value = &'static Example> {
    let names: Vec<&'static str> = crate::boards::declared()
        .map(|d| d.examples.iter().map(|e| e.profile.bin.as_str()).collect())
        .unwrap_or_default();
    PossibleValuesParser::new(names).try_map(|n: String| crate::find_example(&n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::parse_checked_from(std::iter::once("cargo xtask").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn qemu_defaults_and_values() {
        let Command::Qemu(q) = parse(&["qemu"]).unwrap().command else {
            panic!("not qemu");
        };
        assert_eq!(q.boot.board.name, "vexpress-a9");
        assert_eq!(q.boot.mem, 512 << 20);
        assert_eq!(q.boot.dtb, DtbMode::Auto);
        assert_eq!((q.timeout, q.gdb, q.smp), (600, None, 1));
        let Command::Qemu(q) = parse(&["qemu", "--board", "virt", "--mem", "1G", "--gdb"])
            .unwrap()
            .command
        else {
            panic!("not qemu");
        };
        assert_eq!(
            (q.boot.board.name, q.boot.mem, q.gdb),
            ("virt", 1 << 30, Some(1234))
        );
        let Command::Qemu(q) = parse(&["qemu", "--gdb", "4321"]).unwrap().command else {
            panic!("not qemu");
        };
        assert_eq!(q.gdb, Some(4321));
    }

    #[test]
    fn bad_values_are_errors_that_say_what_is_allowed() {
        let e = parse(&["qemu", "--board", "nosuch"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nosuch") && e.contains("vexpress-a9") && e.contains("virt"),
            "{e}"
        );
        let e = parse(&["sim", "--mem", "lots"]).unwrap_err().to_string();
        assert!(e.contains("bad memory size"), "{e}");
        let e = parse(&["qemu", "--dtb", "test:nope"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
        assert!(parse(&["qemu", "--frobnicate"]).is_err());
        assert!(parse(&["memmap"]).is_err(), "memmap needs -o");
        assert!(parse(&["bench", "--fast"]).is_err());
        let Command::Bench(b) = parse(&["bench", "--no-guest"]).unwrap().command else {
            panic!("not bench");
        };
        assert!(b.no_guest && !b.no_host && b.output.is_none());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn smp_is_checked_against_the_board() {
        let smp = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Qemu(q)) => Ok(q.smp),
            Ok(_) => panic!("not qemu"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(smp(&["qemu", "--smp", "4"]), Ok(4));
        assert_eq!(smp(&["qemu", "--board", "sabrelite", "--smp", "2"]), Ok(2));
        assert_eq!(smp(&["qemu", "--board", "virt", "--smp", "4"]), Ok(4));
        for bad in ["0", "5", "x", "-1"] {
            let e = smp(&["qemu", &format!("--smp={bad}")]).unwrap_err();
            assert!(e.contains("--smp"), "{bad}: {e}");
        }
        let e = smp(&["qemu", "--board", "mcimx6ul-evk", "--smp", "2"]).unwrap_err();
        assert!(e.contains("mcimx6ul-evk model takes at most 1 CPU"), "{e}");
        assert_eq!(
            smp(&["qemu", "--board", "mcimx6ul-evk", "--smp", "1"]),
            Ok(1)
        );
        let e = smp(&["qemu", "--board", "xilinx-zynq-a9", "--smp", "4"]).unwrap_err();
        assert!(e.contains("at most 1 CPU"), "{e}");
        // Usage errors exit with 2, as clap's own.
        let e = parse(&["qemu", "--board", "mcimx6ul-evk", "--smp", "2"]).unwrap_err();
        assert!(e.use_stderr());
    }

    #[test]
    fn help_lists_every_option_with_its_default() {
        let mut cmd = Cli::command();
        let qemu = cmd
            .find_subcommand_mut("qemu")
            .expect("qemu")
            .render_long_help()
            .to_string();
        for want in [
            "--board",
            "[default: vexpress-a9]",
            "--mem",
            "[default: 512M]",
            "--dtb",
            "[default: auto]",
            "--cmdline",
            "--release",
            "--example",
            "--icount",
            "--defmt",
            "--timeout",
            "[default: 600]",
            "--gdb",
            "--smp",
            "[default: 1]",
        ] {
            assert!(qemu.contains(want), "qemu --help lacks {want:?}:\n{qemu}");
        }
    }
}
