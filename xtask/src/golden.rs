//! Golden boot logs: the whole log of every boot-matrix case, checked in under
//! `tests/golden/<case>.log`.
//!
//! `cargo xtask test` compares each QEMU boot's console log with its file, whole;
//! `cargo test` (this module's test) runs `cargo xtask sim` on the same inputs and
//! compares the simulator's log with the same file. So the simulator is the same boot,
//! line for line, except for what only hardware can print, which the file marks.
//!
//! File format: `# ` lines are metadata (`# image BASE-END probe ADDR`: the kernel
//! image range and the MMU self-test's probe buffer the logs were made with, which
//! the simulator uses; `# order: console first` when the guest's log has the lines it
//! writes straight to the console before the logger's, as a defmt boot whose frames
//! are decoded after the run; `# sim: no` when the simulator cannot make the log).
//! Every other line is a log line; `[guest] ` before it marks a line only the guest
//! prints, which may only be one of [`GUEST_ONLY`] or an SMP bring-up line
//! ([`smp_line`]; what needs the hardware: the stack's high-water mark, starting the
//! secondary CPUs; the concurrent page allocator test after it the simulator runs
//! on host threads, line for line). Figures that change from run to run or with the image
//! are placeholders: `took <N> us`, `boot stack: <N> of <N>`, `pc=<pc>`, `lr=<lr>`.
//!
//! `cargo xtask bless` boots every case in QEMU and the simulator and rewrites the
//! files; review the diff before committing it.

use std::path::{Path, PathBuf};

use zonekit_core::addr::MemRange;

use crate::sim::ImageLayout;

/// Where the files live, from the workspace root.
pub const DIR: &str = "tests/golden";

/// The mark of a line only the guest prints.
pub const GUEST: &str = "[guest] ";

/// The lines (normalized) only the guest can print: what needs the hardware.
pub const GUEST_ONLY: &[&str] = &["zonekit: boot stack: <N> of <N> bytes used"];

/// Whether `line` is one of the lines only the guest prints: [`GUEST_ONLY`] or an
/// SMP bring-up line ([`smp_line`]: the simulator starts no CPUs). The concurrent
/// page allocator test that follows ([`smp_test_line`]) the simulator runs too, on
/// host threads, and prints the same lines.
pub fn guest_only(line: &str) -> bool {
    GUEST_ONLY.contains(&line) || (smp_line(line) && !smp_test_line(line))
}

/// A line of the concurrent page allocator test (`zonekit: smp: CPUn: ... freed`,
/// `zonekit: smp: N CPUs ran the concurrent page allocator test at once, ...`).
pub fn smp_test_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("zonekit: smp: ") else {
        return false;
    };
    (rest.starts_with("CPU") && rest.ends_with(" pages) allocated, written, checked and freed"))
        || rest.contains(" CPUs ran the concurrent page allocator test at once, nothing lost (")
}

/// A line of the secondary-CPU bring-up (`smp: Bringing up secondary CPUs ...`,
/// `CPUn: started`, `CPUn: failed to ...`, `smp: Brought up 1 node, N CPUs`,
/// `zonekit: smp: N CPUs ran on_each_cpu`) or of the concurrent test that follows
/// ([`smp_test_line`]).
pub fn smp_line(line: &str) -> bool {
    if smp_test_line(line) {
        return true;
    }
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if line == "smp: Bringing up secondary CPUs ..." {
        return true;
    }
    if let Some(n) = line
        .strip_prefix("smp: Brought up 1 node, ")
        .and_then(|r| r.strip_suffix(" CPUs"))
    {
        return number(n);
    }
    if let Some(n) = line
        .strip_prefix("zonekit: smp: ")
        .and_then(|r| r.strip_suffix(" CPUs ran on_each_cpu"))
    {
        return number(n);
    }
    match line.strip_prefix("CPU").and_then(|r| r.split_once(": ")) {
        Some((n, what)) => number(n) && (what == "started" || what.starts_with("failed to ")),
        None => false,
    }
}

/// Starts of the lines the guest writes straight to the console (`kprintln!`, the
/// exception handlers) rather than through the logger: with defmt they come before
/// the decoded frames.
pub const CONSOLE_LINES: &[&str] = &[
    "zonekit: memory init took ",
    "zonekit: boot stack: ",
    "zonekit-bench: ",
    "zonekit: zonekit.nommu",
    "zonekit: data abort at ",
    "zonekit: injecting fault ",
];

/// `lines` in the order a defmt boot's log has them: the console's lines first, then
/// the logger's, each in its own order.
pub fn console_first(lines: &[String]) -> Vec<String> {
    let direct = |l: &String| CONSOLE_LINES.iter().any(|p| l.starts_with(p));
    let (mut first, rest): (Vec<String>, Vec<String>) = lines.iter().cloned().partition(direct);
    first.extend(rest);
    first
}

/// `BASE-END probe ADDR`.
fn parse_image(s: &str) -> Option<ImageLayout> {
    let hex = |s: &str| u64::from_str_radix(s.strip_prefix("0x")?, 16).ok();
    let (range, probe) = s.split_once(" probe ")?;
    let (a, b) = range.split_once('-')?;
    let (a, b, probe) = (hex(a)?, hex(b)?, hex(probe)?);
    (b >= a).then(|| ImageLayout {
        range: MemRange::new(a, b - a),
        probe,
    })
}

/// The file of the case named `name`.
pub fn path(root: &Path, name: &str) -> PathBuf {
    let stem: String = name
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() => c,
            '.' | '-' | '=' | '@' | ',' => c,
            _ => '_',
        })
        .collect();
    root.join(DIR).join(format!("{stem}.log"))
}

/// The device tree QEMU generated for the case named `name`, where the case boots
/// from QEMU's own tree (`cargo xtask bless` dumps it): zlib-compressed.
pub fn qemu_tree_path(root: &Path, name: &str) -> PathBuf {
    path(root, name).with_extension("dtb.zlib")
}

/// Store QEMU's tree for the case named `name`.
pub fn save_qemu_tree(root: &Path, name: &str, dtb: &[u8]) -> Result<PathBuf, String> {
    let p = qemu_tree_path(root, name);
    let packed = miniz_oxide::deflate::compress_to_vec_zlib(dtb, 9);
    std::fs::write(&p, packed).map_err(|e| format!("writing {}: {e}", p.display()))?;
    Ok(p)
}

/// QEMU's tree for the case named `name`, as `cargo xtask bless` stored it.
pub fn load_qemu_tree(root: &Path, name: &str) -> Result<Vec<u8>, String> {
    let p = qemu_tree_path(root, name);
    let packed = std::fs::read(&p).map_err(|e| {
        format!(
            "no QEMU device tree {} ({e}); run `cargo xtask bless`",
            p.display()
        )
    })?;
    miniz_oxide::inflate::decompress_to_vec_zlib(&packed)
        .map_err(|e| format!("{}: not zlib data ({e:?})", p.display()))
}

/// A log line with its run-to-run figures replaced by placeholders.
pub fn normalize(line: &str) -> String {
    let line = line.trim_end_matches('\r');
    if let Some(rest) = line.strip_prefix("zonekit: memory init took ") {
        if rest.ends_with(" us") {
            return "zonekit: memory init took <N> us".into();
        }
    }
    if line.starts_with("zonekit: boot stack: ") && line.ends_with(" bytes used") {
        return "zonekit: boot stack: <N> of <N> bytes used".into();
    }
    // An exception report's return address moves with the image.
    if line.starts_with("zonekit: ") && line.contains("unexpected exception: ") {
        if let Some((head, lr)) = line.rsplit_once(", lr=") {
            if lr.len() == 10 && lr.starts_with("0x") {
                return format!("{head}, lr=<lr>");
            }
        }
    }
    if let Some(rest) = line.strip_prefix("zonekit: data abort at pc=") {
        if let Some((pc, tail)) = rest.split_once(':') {
            if pc.len() == 10 && pc.starts_with("0x") {
                return format!("zonekit: data abort at pc=<pc>:{tail}");
            }
        }
    }
    line.to_string()
}

/// A log as lines, normalized.
pub fn lines(log: &str) -> Vec<String> {
    log.lines().map(normalize).collect()
}

/// One line of a golden file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Only the guest prints it.
    pub guest_only: bool,
    /// The text.
    pub text: String,
}

/// A parsed golden file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Golden {
    /// The kernel image the logs were made with.
    pub image: Option<ImageLayout>,
    /// Whether the simulator's log is compared (`# sim: no` turns it off).
    pub sim: bool,
    /// The guest's log has its console lines first (`# order: console first`).
    pub console_first: bool,
    /// The log.
    pub lines: Vec<Line>,
}

impl Golden {
    /// Parse a file's text.
    pub fn parse(text: &str) -> Result<Golden, String> {
        let mut g = Golden {
            sim: true,
            ..Golden::default()
        };
        for (i, l) in text.lines().enumerate() {
            if let Some(meta) = l.strip_prefix("# ") {
                if let Some(image) = meta.strip_prefix("image ") {
                    g.image = Some(
                        parse_image(image)
                            .ok_or_else(|| format!("line {}: bad image line {meta:?}", i + 1))?,
                    );
                } else if meta == "sim: no" {
                    g.sim = false;
                } else if meta == "order: console first" {
                    g.console_first = true;
                } else if !meta.starts_with("Golden boot log") {
                    return Err(format!("line {}: unknown metadata {meta:?}", i + 1));
                }
                continue;
            }
            g.lines.push(match l.strip_prefix(GUEST) {
                Some(t) => Line {
                    guest_only: true,
                    text: t.to_string(),
                },
                None => Line {
                    guest_only: false,
                    text: l.to_string(),
                },
            });
        }
        Ok(g)
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Golden boot log (see xtask/src/golden.rs); refresh with `cargo xtask bless`.\n",
        );
        if let Some(l) = self.image {
            out.push_str(&format!(
                "# image {:#x}-{:#x} probe {:#x}\n",
                l.range.base,
                l.range.end(),
                l.probe
            ));
        }
        if !self.sim {
            out.push_str("# sim: no\n");
        }
        if self.console_first {
            out.push_str("# order: console first\n");
        }
        for l in &self.lines {
            if l.guest_only {
                out.push_str(GUEST);
            }
            out.push_str(&l.text);
            out.push('\n');
        }
        out
    }

    /// What the guest prints: every line.
    pub fn guest_view(&self) -> Vec<&str> {
        self.lines.iter().map(|l| l.text.as_str()).collect()
    }

    /// What the simulator prints: every line not marked `[guest]`.
    #[cfg(test)]
    pub fn sim_view(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| !l.guest_only)
            .map(|l| l.text.as_str())
            .collect()
    }

    /// Read the case's file.
    pub fn load(root: &Path, name: &str) -> Result<Golden, String> {
        let p = path(root, name);
        let text = std::fs::read_to_string(&p).map_err(|e| {
            format!(
                "no golden log {} ({e}); run `cargo xtask bless`",
                p.display()
            )
        })?;
        Golden::parse(&text).map_err(|e| format!("{}: {e}", p.display()))
    }
}

/// The golden file for a QEMU log and the simulator's log of the same boot: the QEMU
/// lines in order, those the simulator does not print marked `[guest]`. Fails when
/// the simulator prints a line the guest does not (then they are not the same boot).
pub fn bless(
    qemu: &[String],
    sim: Option<&[String]>,
    image: Option<ImageLayout>,
    console_first: bool,
) -> Result<Golden, String> {
    let Some(sim) = sim else {
        return Ok(Golden {
            image,
            sim: false,
            console_first,
            lines: qemu
                .iter()
                .map(|t| Line {
                    guest_only: false,
                    text: t.clone(),
                })
                .collect(),
        });
    };
    // Longest common subsequence, then walk it.
    let (n, m) = (qemu.len(), sim.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if qemu[i] == sim[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut lines = Vec::new();
    while i < n {
        if j < m && qemu[i] == sim[j] {
            lines.push(Line {
                guest_only: false,
                text: qemu[i].clone(),
            });
            i += 1;
            j += 1;
        } else if j < m && lcs[i][j + 1] > lcs[i + 1][j] {
            return Err(format!(
                "the simulator prints {:?}, the guest does not",
                sim[j]
            ));
        } else {
            lines.push(Line {
                guest_only: true,
                text: qemu[i].clone(),
            });
            i += 1;
        }
    }
    if j < m {
        return Err(format!(
            "the simulator prints {:?}, the guest does not",
            sim[j]
        ));
    }
    if let Some(l) = lines.iter().find(|l| l.guest_only && !guest_only(&l.text)) {
        return Err(format!(
            "the guest prints {:?}, the simulator does not",
            l.text
        ));
    }
    Ok(Golden {
        image,
        sim: true,
        console_first,
        lines,
    })
}

/// `got` against `want`, naming the first difference.
pub fn compare(what: &str, want: &[&str], got: &[String]) -> Result<(), String> {
    for (k, (w, g)) in want.iter().zip(got).enumerate() {
        if w != g {
            return Err(format!(
                "{what} differs from the golden log at line {}:\n    golden: {w}\n    {what}: {g}",
                k + 1
            ));
        }
    }
    match want.len().cmp(&got.len()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(format!(
            "{what} log ends early; the golden log goes on with {:?}",
            want[got.len()]
        )),
        std::cmp::Ordering::Less => Err(format!(
            "{what} log goes on past the golden log with {:?}",
            got[want.len()]
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn bless_marks_guest_only_lines_and_round_trips() {
        let stack = GUEST_ONLY[0];
        let qemu = v(&["a", stack, "b", stack, "c"]);
        let sim = v(&["a", "b", "c"]);
        let image = ImageLayout {
            range: MemRange::new(0x6001_0000, 0x1000),
            probe: 0x6001_0800,
        };
        let g = bless(&qemu, Some(&sim), Some(image), false).unwrap();
        assert_eq!(g.sim_view(), ["a", "b", "c"]);
        assert_eq!(g.guest_view(), ["a", stack, "b", stack, "c"]);
        assert!(bless(&v(&["a", "mmu on"]), Some(&v(&["a"])), None, false).is_err());
        assert_eq!(Golden::parse(&g.render()).unwrap(), g);
        assert!(bless(&qemu, Some(&v(&["a", "x"])), None, false).is_err());
        let g = bless(&qemu, None, None, true).unwrap();
        assert!(!g.sim && g.console_first);
        assert_eq!(Golden::parse(&g.render()).unwrap(), g);
        assert!(Golden::parse("# image 0x1-0x2\n").is_err());
        assert!(Golden::parse("# imagine\n").is_err());
    }

    #[test]
    fn placeholders_and_comparison() {
        assert_eq!(
            normalize("zonekit: memory init took 48025 us"),
            "zonekit: memory init took <N> us"
        );
        assert_eq!(
            normalize("zonekit: boot stack: 220132 of 524288 bytes used"),
            "zonekit: boot stack: <N> of <N> bytes used"
        );
        assert_eq!(
            normalize(
                "zonekit: data abort at pc=0x60010314: DFAR=0xe0801000 DFSR=0x00000005; resuming"
            ),
            "zonekit: data abort at pc=<pc>: DFAR=0xe0801000 DFSR=0x00000005; resuming"
        );
        assert_eq!(
            normalize("zonekit: CPU3: unexpected exception: undefined instruction, lr=0x10010578"),
            "zonekit: CPU3: unexpected exception: undefined instruction, lr=<lr>"
        );
        assert_eq!(
            console_first(&v(&["a", "zonekit: memory init took <N> us", "b"])),
            ["zonekit: memory init took <N> us", "a", "b"]
        );
        assert!(compare("sim", &["a", "b"], &v(&["a", "b"])).is_ok());
        assert!(compare("sim", &["a", "b"], &v(&["a", "c"])).is_err());
        assert!(compare("sim", &["a", "b"], &v(&["a"])).is_err());
        assert!(compare("sim", &["a"], &v(&["a", "b"])).is_err());
    }

    #[test]
    fn smp_lines_are_the_guests() {
        for l in [
            "smp: Bringing up secondary CPUs ...",
            "CPU1: started",
            "CPU3: failed to come online",
            "CPU2: failed to boot: -4 (already on)",
            "smp: Brought up 1 node, 4 CPUs",
            "zonekit: smp: 4 CPUs ran on_each_cpu",
        ] {
            assert!(guest_only(l), "{l}");
        }
        for l in [
            "CPU: started",
            "CPUx: started",
            "CPU1: stopped",
            "smp: Brought up 1 node, four CPUs",
            "zonekit: smp: CPUs ran on_each_cpu",
            "zonekit: self-check passed",
            // The simulator runs the concurrent test too.
            "zonekit: smp: CPU1: 5 blocks (9 pages) allocated, written, checked and freed",
            "zonekit: smp: 4 CPUs ran the concurrent page allocator test at once, nothing lost (7 pages free before and after)",
        ] {
            assert!(!guest_only(l), "{l}");
        }
        let qemu = v(&["a", "CPU1: started", "b"]);
        let g = bless(&qemu, Some(&v(&["a", "b"])), None, false).unwrap();
        assert_eq!(g.sim_view(), ["a", "b"]);
    }

    /// Every matrix case has a golden log, and the simulator reproduces it (all but
    /// the `[guest]` lines, which may only be [`GUEST_ONLY`] and SMP ones), from the image
    /// recorded in it.
    #[test]
    fn golden_logs_match_the_simulator() {
        let root = crate::workspace_root();
        let mut failures = Vec::new();
        let mut compared = 0;
        for case in crate::boot_matrix() {
            let name = case.name();
            let golden = match Golden::load(&root, &name) {
                Ok(g) => g,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
            if let Some(l) = golden
                .lines
                .iter()
                .find(|l| l.guest_only && !guest_only(&l.text))
            {
                failures.push(format!(
                    "{name}: {:?} is marked as printed by the guest alone; only {GUEST_ONLY:?} and SMP lines may be",
                    l.text
                ));
                continue;
            }
            if !golden.sim {
                continue;
            }
            if golden.image.is_none() {
                failures.push(format!(
                    "{name}: no `# image` line; run `cargo xtask bless`"
                ));
                continue;
            }
            let tree = if crate::boots_from_qemu_tree(&case) {
                match load_qemu_tree(&root, &name) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        failures.push(format!("{name}: {e}"));
                        continue;
                    }
                }
            } else {
                None
            };
            let run = crate::sim_for_case(&case, golden.image, tree)
                .and_then(|opts| crate::sim::run(&opts, false).map_err(|e| format!("sim: {e}")));
            let result = run.and_then(|r| {
                let mut got: Vec<String> = r.lines.iter().map(|l| normalize(l)).collect();
                if golden.console_first {
                    got = console_first(&got);
                }
                compare("sim", &golden.sim_view(), &got)
            });
            compared += 1;
            if let Err(e) = result {
                failures.push(format!("{name}: {e}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(compared > 10, "only {compared} golden logs compared");
    }
}
