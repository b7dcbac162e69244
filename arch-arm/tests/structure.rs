//! The shape of zonekit-arch-arm's sources, checked so that it cannot silently
//! regress (issue 10, item 7): no file has more than [`MAX_NON_TEST_LINES`] lines of
//! non-test code (the lines before its first `#[cfg(test)]`), target-only modules
//! (`rt`, `mmu::hw`) included.

use std::fs;
use std::path::{Path, PathBuf};

/// The largest number of non-test lines a file of `arch-arm/src` may have.
const MAX_NON_TEST_LINES: usize = 800;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let p = entry.expect("directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_file_is_over_the_line_budget() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    assert!(paths.len() > 20, "only {} files found", paths.len());
    let mut over = Vec::new();
    for p in paths {
        let src = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let lines = src
            .lines()
            .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
            .count();
        if lines > MAX_NON_TEST_LINES {
            over.push(format!(
                "{}: {lines} non-test lines (at most {MAX_NON_TEST_LINES})",
                p.strip_prefix(&root).unwrap_or(&p).display()
            ));
        }
    }
    assert!(over.is_empty(), "files over budget:\n{}", over.join("\n"));
}
