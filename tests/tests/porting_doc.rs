//! `docs/porting.md` shows real code: every fenced block whose info string names a file
//! (```` ```rust bsp-zynq/build.rs ````) appears verbatim in that file, which the
//! workspace builds and tests, and a block marked `generated:<Cargo.toml>` is part of
//! what the BSP's build script generates from that manifest.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// (info string's second word, block text) of every fenced block that has one.
fn tagged_blocks(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in doc.lines() {
        let fence = line.trim_start().starts_with("```");
        match (&mut open, fence) {
            (None, true) => {
                let info = line.trim_start().trim_start_matches('`');
                // An untagged block gets an empty tag and is skipped.
                let tag = info.split_whitespace().nth(1).unwrap_or_default();
                open = Some((tag.to_string(), String::new()));
            }
            (Some(_), true) => {
                let (tag, text) = open.take().expect("open");
                if !tag.is_empty() {
                    out.push((tag, text));
                }
            }
            (Some((_, text)), false) => {
                // Blocks inside list items are indented.
                text.push_str(line);
                text.push('\n');
            }
            (None, false) => {}
        }
    }
    assert!(open.is_none(), "docs/porting.md has an unclosed code block");
    out
}

#[test]
fn porting_guide_samples_are_the_zynq_crate() {
    let doc = std::fs::read_to_string(root().join("docs/porting.md")).unwrap();
    let blocks = tagged_blocks(&doc);
    assert_eq!(blocks.len(), 10, "tagged blocks in docs/porting.md");
    for (tag, text) in &blocks {
        let (file, content) = match tag.strip_prefix("generated:") {
            Some(manifest) => {
                let p = zonekit_arch_arm::profile::read_manifest(&root().join(manifest)).unwrap();
                let mut src = String::new();
                zonekit_arch_arm::profile::write_board_consts(&mut src, &p.boards).unwrap();
                (format!("the code generated from {manifest}"), src)
            }
            None => (
                tag.clone(),
                std::fs::read_to_string(root().join(tag))
                    .unwrap_or_else(|e| panic!("docs/porting.md names {tag}: {e}")),
            ),
        };
        assert!(
            content.contains(text.as_str()),
            "docs/porting.md shows a block that is not in {file}:\n{text}"
        );
    }
}

/// The "What it took" table counts the lines of the zynq crate's files as they are,
/// and the total adds them up.
#[test]
fn porting_guide_line_counts_are_true() {
    let doc = std::fs::read_to_string(root().join("docs/porting.md")).unwrap();
    let mut code_total = 0;
    let mut code_files = 0;
    let mut rows = 0;
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(file), Some(count)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let (Some(file), Ok(count)) = (
            file.strip_prefix('`').and_then(|f| f.strip_suffix('`')),
            count.parse::<usize>(),
        ) else {
            continue;
        };
        let text = std::fs::read_to_string(root().join("bsp-zynq").join(file))
            .unwrap_or_else(|e| panic!("docs/porting.md counts bsp-zynq/{file}: {e}"));
        assert_eq!(
            text.lines().count(),
            count,
            "docs/porting.md: lines of bsp-zynq/{file}"
        );
        rows += 1;
        if file != "README.md" {
            code_total += count;
            code_files += 1;
        }
    }
    assert_eq!(rows, 5, "rows of the line-count table in docs/porting.md");
    let claim = format!("**{code_total} lines in {code_files} files**");
    assert!(doc.contains(&claim), "docs/porting.md should say {claim}");
}
