//! `cargo xtask doc`: the API documentation as a kernel developer reads it, for the
//! ARM target, so the target-only runtime (`zonekit_arch_arm::rt`: `boot_main`,
//! `boot_memory`, the entry, console, paging and page storage) is included; a host
//! `cargo doc` leaves it out. Warnings are errors (`RUSTDOCFLAGS=-D warnings`), as in
//! CI. The output is under `target/arm-doc/armv7a-none-eabi/doc/`.

use crate::toolchain::{self, ArmToolchain};
use crate::workspace_root;

/// The library crates whose docs are built, besides every board's package (the
/// binaries' are not API).
const CRATES: [&str; 3] = ["zonekit-core", "zonekit-arch-arm", "zonekit-heap"];

/// `cargo xtask doc [--open]`.
pub fn cmd_doc(open: bool) -> Result<u8, String> {
    let tc = ArmToolchain::find_or_install()?;
    let root = workspace_root();
    let target_dir = root.join("target/arm-doc");
    let mut cmd = std::process::Command::new(&tc.cargo);
    cmd.current_dir(&root)
        .args(["doc", "--no-deps", "--lib", "--target", toolchain::TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTDOCFLAGS", "-D warnings");
    let mut packages: Vec<&str> = CRATES.to_vec();
    for b in crate::boards::all()? {
        if !packages.contains(&b.package.as_str()) {
            packages.push(&b.package);
        }
    }
    for p in packages {
        cmd.args(["--package", p]);
    }
    if tc.build_std {
        cmd.arg("-Zbuild-std=core,alloc");
    }
    for k in &tc.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &tc.env {
        cmd.env(k, v);
    }
    if tc.cargo.starts_with("/usr/bin") {
        cmd.env("RUSTDOC", "/usr/bin/rustdoc");
    }
    eprintln!("xtask: documenting the ARM target API ({})", tc.route);
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", tc.cargo.display()))?;
    if !status.success() {
        return Err(format!(
            "cargo doc for {} failed ({status})",
            toolchain::TARGET
        ));
    }
    let index = target_dir
        .join(toolchain::TARGET)
        .join("doc/zonekit_arch_arm/rt/index.html");
    if !index.is_file() {
        return Err(format!(
            "{} is missing: the target-only runtime was not documented",
            index.display()
        ));
    }
    println!("xtask: target API docs at {}", index.display());
    if open {
        let _ = std::process::Command::new("xdg-open").arg(&index).status();
    }
    Ok(0)
}
