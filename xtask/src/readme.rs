//! The README's sample runs are golden logs: every fenced block that starts with
//! `$ cargo xtask qemu ARGS` shows lines of the golden log of the matrix case those
//! arguments boot (in order; `...` skips lines), so a change to the boot that the
//! README does not follow fails `cargo test`.

use crate::cli::{Cli, Command};
use crate::golden::{self, Golden};

/// A sample: the command's arguments and the lines shown.
#[derive(Debug)]
pub struct Sample {
    /// Line number of the command in the file.
    pub line: usize,
    /// Arguments after `cargo xtask`.
    pub args: Vec<String>,
    /// The output lines shown (`...` included).
    pub shown: Vec<String>,
}

/// The samples of a Markdown text.
pub fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((_, l)) = lines.next() {
        if !l.starts_with("```") {
            continue;
        }
        let Some((n, first)) = lines.peek().copied() else {
            break;
        };
        let Some(args) = first.strip_prefix("$ cargo xtask qemu") else {
            continue;
        };
        lines.next();
        let shown = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| !l.starts_with("```"))
            .map(str::to_string)
            .collect();
        let mut args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
        args.insert(0, "qemu".into());
        out.push(Sample {
            line: n + 1,
            args,
            shown,
        });
    }
    out
}

/// Check one sample against the golden logs: `Err` says what is wrong.
pub fn check(sample: &Sample) -> Result<(), String> {
    let argv = std::iter::once("cargo xtask".to_string()).chain(sample.args.iter().cloned());
    let cli = Cli::parse_checked_from(argv).map_err(|e| format!("bad command: {e}"))?;
    let Command::Qemu(q) = cli.command else {
        return Err("not a `qemu` command".into());
    };
    let case = crate::boot_matrix()
        .into_iter()
        .find(|c| {
            c.board == q.boot.board.name
                && c.mem == q.boot.mem
                && c.dtb == q.boot.dtb
                && c.cmdline == q.boot.cmdline.as_deref()
                && c.defmt == q.defmt
                && c.smp == q.smp
        })
        .ok_or("the command is not a case of the boot matrix, so no golden log backs it")?;
    let g = Golden::load(&crate::workspace_root(), &case.name())?;
    let log = g.guest_view();
    let mut at = 0;
    for shown in &sample.shown {
        if shown.trim() == "..." {
            continue;
        }
        let want = golden::normalize(shown);
        match log[at..].iter().position(|l| *l == want) {
            Some(k) => at += k + 1,
            None => {
                return Err(format!(
                    "shows {shown:?}, which the golden log of `{}` does not have (after line {at})",
                    case.name()
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_samples_are_golden_logs() {
        let root = crate::workspace_root();
        let text = std::fs::read_to_string(root.join("README.md")).unwrap();
        let samples = samples(&text);
        assert!(
            samples.len() >= 2,
            "README.md has {} samples",
            samples.len()
        );
        let failures: Vec<String> = samples
            .iter()
            .filter_map(|s| check(s).err().map(|e| format!("README.md:{}: {e}", s.line)))
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_sample_that_is_not_in_the_log_fails() {
        let text = "```\n$ cargo xtask qemu\nzonekit: booting on vexpress-a9\n...\nzonekit: no such line\n```\n";
        let s = samples(text);
        assert_eq!(s.len(), 1);
        assert!(check(&s[0]).unwrap_err().contains("no such line"));
        let text = "```\n$ cargo xtask qemu --mem 3M\nx\n```\n";
        assert!(check(&samples(text)[0]).unwrap_err().contains("not a case"));
    }
}
