//! The boards (and example kernels) xtask knows, found rather than listed: `cargo
//! metadata` names the workspace's packages, and each package with a
//! `[package.metadata.zonekit]` table declares its boards there. The tables are read
//! with `zonekit_arch_arm::profile`, the parser the BSPs' build scripts use to
//! generate their `BoardDesc` constants, so xtask and the guest see the same facts.

use std::path::PathBuf;
use std::sync::OnceLock;

use zonekit_arch_arm::board::BoardDesc;
use zonekit_arch_arm::profile::{self, BoardProfile, DtbSource, ExampleProfile};

use crate::dtb::DtbMode;

/// A board of some BSP package.
#[derive(Debug)]
pub struct Board {
    /// Its facts, as the BSP's generated constant has them.
    pub desc: &'static BoardDesc,
    /// Everything its table says (the QEMU profile included).
    pub profile: BoardProfile,
    /// The package that holds its binary.
    pub package: String,
}

impl std::ops::Deref for Board {
    type Target = BoardDesc;

    fn deref(&self) -> &BoardDesc {
        self.desc
    }
}

/// A binary that is not a board's own: a kernel of its own built on zonekit.
#[derive(Debug)]
pub struct Example {
    /// Its table.
    pub profile: ExampleProfile,
    /// The package that holds it.
    pub package: String,
    /// Its manifest: an example is a kernel outside this workspace (listed in the
    /// root's `[workspace] exclude`), built from its own manifest as docs/using.md
    /// says.
    pub manifest: PathBuf,
}

/// What the workspace declares.
#[derive(Debug, Default)]
pub struct Declared {
    /// Every board, in `cargo metadata`'s package order, then table order.
    pub boards: Vec<Board>,
    /// Every example.
    pub examples: Vec<Example>,
}

/// The workspace's manifests that have a `[package.metadata.zonekit]` table, with
/// their package names (`cargo metadata --format-version 1 --no-deps`).
fn zonekit_manifests() -> Result<Vec<(String, PathBuf)>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = crate::workspace_root();
    let out = std::process::Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {cargo} metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cargo} metadata failed ({})", out.status));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{cargo} metadata printed no JSON: {e}"))?;
    let packages = meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no `packages`")?;
    Ok(packages
        .iter()
        .filter(|p| !p["metadata"]["zonekit"].is_null())
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_string(),
                PathBuf::from(p["manifest_path"].as_str()?),
            ))
        })
        .collect())
}

/// The kernels outside the workspace: every `[workspace] exclude` entry of the root
/// manifest that holds a `Cargo.toml`, with its package name.
fn excluded_manifests() -> Result<Vec<(String, PathBuf)>, String> {
    let root = crate::workspace_root();
    let text = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("reading the root Cargo.toml: {e}"))?;
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("the root Cargo.toml: {e}"))?;
    let mut out = Vec::new();
    let excluded = doc
        .get("workspace")
        .and_then(|w| w.get("exclude"))
        .and_then(|e| e.as_array());
    for dir in excluded.into_iter().flatten().filter_map(|v| v.as_str()) {
        let manifest = root.join(dir).join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let doc: toml_edit::DocumentMut = text
            .parse()
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
        let name = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| format!("{}: no package name", manifest.display()))?;
        out.push((name.to_string(), manifest));
    }
    Ok(out)
}

fn discover() -> Result<Declared, String> {
    let mut all = Declared::default();
    for (package, manifest) in zonekit_manifests()? {
        let declared = profile::read_manifest(&manifest)?;
        for profile in declared.boards {
            if all.boards.iter().any(|b| b.profile.name == profile.name) {
                return Err(format!(
                    "board {} is declared twice (again in {})",
                    profile.name,
                    manifest.display()
                ));
            }
            all.boards.push(Board {
                desc: profile.leak_desc(),
                profile,
                package: package.clone(),
            });
        }
        all.examples
            .extend(declared.examples.into_iter().map(|profile| Example {
                profile,
                package: package.clone(),
                manifest: manifest.clone(),
            }));
    }
    for (package, manifest) in excluded_manifests()? {
        let declared = profile::read_manifest(&manifest)?;
        if !declared.boards.is_empty() {
            return Err(format!(
                "{} declares boards but is outside the workspace",
                manifest.display()
            ));
        }
        all.examples
            .extend(declared.examples.into_iter().map(|profile| Example {
                profile,
                package: package.clone(),
                manifest: manifest.clone(),
            }));
    }
    if all.boards.is_empty() {
        return Err("no package declares a board ([package.metadata.zonekit.boards])".into());
    }
    Ok(all)
}

/// What the workspace declares, read once per run.
pub fn declared() -> Result<&'static Declared, String> {
    static DECLARED: OnceLock<Result<Declared, String>> = OnceLock::new();
    DECLARED
        .get_or_init(discover)
        .as_ref()
        .map_err(Clone::clone)
}

/// Every board.
pub fn all() -> Result<&'static [Board], String> {
    Ok(&declared()?.boards)
}

/// The names of every board, for messages.
pub fn names() -> String {
    match all() {
        Ok(b) => b
            .iter()
            .map(|b| b.profile.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("none found: {e}"),
    }
}

/// The board called `name`; an unknown name is an error listing the boards found.
pub fn find(name: &str) -> Result<&'static Board, String> {
    all()?
        .iter()
        .find(|b| b.profile.name == name)
        .ok_or_else(|| format!("unknown board {name:?} (known: {})", names()))
}

/// The example called `bin`.
pub fn find_example(bin: &str) -> Result<&'static Example, String> {
    let examples = &declared()?.examples;
    examples
        .iter()
        .find(|e| e.profile.bin == bin)
        .ok_or_else(|| {
            let names: Vec<_> = examples.iter().map(|e| e.profile.bin.as_str()).collect();
            format!("unknown example {bin:?} (known: {})", names.join(", "))
        })
}

/// The `-dtb` mode a boot really uses, or why the board cannot boot that way. On a
/// board whose tree QEMU generates (`dtb = "qemu"`, virt), `auto` means QEMU's own
/// tree (no `-dtb`) and no variant of xtask's tree can be passed; on a board whose
/// profile says `no_atags`, ATAGS (`none`) are refused with that reason.
pub fn effective_dtb(board: &Board, mode: &DtbMode) -> Result<DtbMode, String> {
    let q = &board.profile.qemu;
    if *mode == DtbMode::None {
        if let Some(why) = &q.no_atags {
            return Err(format!(
                "--dtb none (ATAGS) is not available on {}: {why}",
                board.name
            ));
        }
    }
    if q.dtb == DtbSource::Generated {
        return Ok(mode.clone());
    }
    match mode {
        DtbMode::Auto => Ok(DtbMode::None),
        DtbMode::File(p) => Ok(DtbMode::File(p.clone())),
        other => Err(format!(
            "--dtb {other:?} is not available on {}: QEMU always passes its own device tree there (use auto or a file)",
            board.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bsp_board_is_found_with_its_generated_facts() {
        let boards = all().unwrap();
        for name in [
            "vexpress-a9",
            "vexpress-a15",
            "sabrelite",
            "mcimx6ul-evk",
            "virt",
        ] {
            let b = find(name).unwrap();
            assert_eq!(b.name, name);
            assert_eq!(b.check(), Ok(()));
            assert!(b.package.starts_with("zonekit-bsp-"), "{}", b.package);
        }
        assert!(boards.len() >= 5);
        let e = find("nope").unwrap_err();
        assert!(e.contains("unknown board \"nope\" (known: ") && e.contains("sabrelite"));
        // The same table as the generated constants (read by build.rs).
        let a9 = find("vexpress-a9").unwrap();
        assert_eq!((a9.ram_base, a9.uart_base), (0x6000_0000, 0x1000_9000));
        assert_eq!(a9.mmio[1].phys, 0x1E00_0000);
        assert_eq!(find("sabrelite").unwrap().max_ram, 3840 << 20);
        assert_eq!(
            find_example("minimal-os").unwrap().profile.board,
            "vexpress-a9"
        );
        // `cargo xtask bench` boots the boards whose profile says so, at max_ram:
        // vexpress-a9 1 GiB (all lowmem but 256 MiB), sabrelite 3840 MiB.
        let bench: Vec<&str> = boards
            .iter()
            .filter(|b| b.profile.qemu.bench)
            .map(|b| b.name)
            .collect();
        assert_eq!(bench, ["vexpress-a9", "sabrelite"]);
    }

    #[test]
    fn boot_information_follows_the_profile() {
        let virt = find("virt").unwrap();
        assert_eq!(effective_dtb(virt, &DtbMode::Auto), Ok(DtbMode::None));
        assert!(effective_dtb(virt, &DtbMode::None).is_err());
        assert!(effective_dtb(virt, &DtbMode::AutoNomap).is_err());
        let a9 = find("vexpress-a9").unwrap();
        assert_eq!(effective_dtb(a9, &DtbMode::None), Ok(DtbMode::None));
        assert_eq!(effective_dtb(a9, &DtbMode::Auto), Ok(DtbMode::Auto));
        // A board whose profile refuses ATAGS says why.
        for b in all().unwrap() {
            if let Some(why) = &b.profile.qemu.no_atags {
                let e = effective_dtb(b, &DtbMode::None).unwrap_err();
                assert!(e.contains("--dtb none (ATAGS) is not available on") && e.contains(why));
            }
        }
    }
}
