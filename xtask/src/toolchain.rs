//! Finding (or installing) a toolchain that builds `armv7a-none-eabi` images, and QEMU.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The bare-metal target zonekit's images are built for.
pub const TARGET: &str = "armv7a-none-eabi";

/// The Debian packages that provide everything (see shared/notes/toolchain.md).
const APT_PACKAGES: &str = "qemu-system-arm rustc-web cargo-web rust-web-src lld-22";

/// How to run an ARM build.
#[derive(Debug, Clone)]
pub struct ArmToolchain {
    /// Human description of the route taken.
    pub route: &'static str,
    /// The cargo to run.
    pub cargo: PathBuf,
    /// Build `core`/`alloc` from source (`-Zbuild-std`).
    pub build_std: bool,
    /// Environment to set.
    pub env: Vec<(String, String)>,
    /// Environment to remove.
    pub env_remove: Vec<&'static str>,
}

/// Look for `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn outer_cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// The linker to use when `rust-lld` is missing: `ld.lld-22`, then `ld.lld`.
fn lld_fallback() -> Option<PathBuf> {
    ["ld.lld-22", "ld.lld"].iter().find_map(|n| which(n))
}

impl ArmToolchain {
    fn rustup_target() -> Option<Self> {
        which("rustup")?;
        let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
        installed.lines().any(|l| l.trim() == TARGET).then(|| Self {
            route: "rustup target armv7a-none-eabi",
            cargo: outer_cargo(),
            build_std: false,
            env: Vec::new(),
            env_remove: Vec::new(),
        })
    }

    fn rustup_rust_src() -> Option<Self> {
        which("rustup")?;
        let sysroot = output(Command::new("rustc").args(["--print", "sysroot"]))?;
        let src = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/core");
        src.is_dir().then(|| Self {
            route: "rustup rust-src with -Zbuild-std",
            cargo: outer_cargo(),
            build_std: true,
            env: vec![("RUSTC_BOOTSTRAP".into(), "1".into())],
            env_remove: Vec::new(),
        })
    }

    fn debian() -> Option<Self> {
        let (cargo, rustc) = (Path::new("/usr/bin/cargo"), Path::new("/usr/bin/rustc"));
        let src = Path::new("/usr/lib/rustlib/src/rust/library/core");
        if !(cargo.is_file() && rustc.is_file() && src.is_dir()) {
            return None;
        }
        let mut env = vec![
            ("RUSTC_BOOTSTRAP".into(), "1".into()),
            ("RUSTC".into(), "/usr/bin/rustc".into()),
        ];
        if which("rust-lld").is_none() {
            let lld = lld_fallback()?;
            env.push((
                "CARGO_TARGET_ARMV7A_NONE_EABI_LINKER".into(),
                lld.to_string_lossy().into_owned(),
            ));
        }
        Some(Self {
            route: "Debian rustc/cargo with -Zbuild-std",
            cargo: cargo.to_path_buf(),
            build_std: true,
            env,
            env_remove: vec!["RUSTUP_TOOLCHAIN", "RUSTC_WRAPPER", "RUSTFLAGS"],
        })
    }

    /// The first working route: rustup target, rustup `rust-src`, Debian packages.
    /// `ZONEKIT_ARM_TOOLCHAIN=rustup-target|rustup-src|debian` forces one route.
    pub fn find() -> Option<Self> {
        match std::env::var("ZONEKIT_ARM_TOOLCHAIN").as_deref() {
            Ok("rustup-target") => Self::rustup_target(),
            Ok("rustup-src") => Self::rustup_rust_src(),
            Ok("debian") => Self::debian(),
            _ => Self::rustup_target()
                .or_else(Self::rustup_rust_src)
                .or_else(Self::debian),
        }
    }

    /// [`find`](Self::find), installing Debian's packages when that is possible
    /// (Debian, root), or explaining what to install.
    pub fn find_or_install() -> Result<Self, String> {
        if let Some(tc) = Self::find() {
            return Ok(tc);
        }
        install_or_explain("an ARM Rust toolchain")?;
        Self::find().ok_or_else(|| "still no ARM toolchain after installing".into())
    }

    /// Build `bin` of `package`; returns the ELF path. With `defmt` the package's
    /// `defmt` feature is enabled and `DEFMT_LOG=debug` set (defmt compiles out the
    /// levels below `DEFMT_LOG`, and keeps only errors when it is unset).
    pub fn build(
        &self,
        root: &Path,
        target_dir: &Path,
        package: &str,
        bin: &str,
        release: bool,
        defmt: bool,
    ) -> Result<PathBuf, String> {
        self.build_in(root, None, target_dir, package, bin, release, defmt)
    }

    /// [`ArmToolchain::build`] of a package of another workspace (a kernel outside
    /// this one, built from its own `Cargo.toml` as its documentation says).
    #[allow(clippy::too_many_arguments)]
    pub fn build_in(
        &self,
        root: &Path,
        manifest: Option<&Path>,
        target_dir: &Path,
        package: &str,
        bin: &str,
        release: bool,
        defmt: bool,
    ) -> Result<PathBuf, String> {
        let mut cmd = Command::new(&self.cargo);
        cmd.current_dir(root).arg("build");
        if let Some(m) = manifest {
            cmd.arg("--manifest-path").arg(m);
        }
        cmd.args(["--package", package, "--bin", bin, "--target", TARGET])
            .arg("--target-dir")
            .arg(target_dir);
        if release {
            cmd.arg("--release");
        }
        if defmt {
            cmd.args(["--features", "defmt"]).env("DEFMT_LOG", "debug");
        } else {
            cmd.env_remove("DEFMT_LOG");
        }
        if self.build_std {
            cmd.arg("-Zbuild-std=core,alloc");
        }
        for k in &self.env_remove {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        eprintln!(
            "xtask: building {bin}{} ({})",
            if defmt { " with defmt" } else { "" },
            self.route
        );
        let status = cmd
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.cargo.display()))?;
        if !status.success() {
            return Err(format!("ARM build of {bin} failed ({status})"));
        }
        Ok(target_dir
            .join(TARGET)
            .join(if release { "release" } else { "debug" })
            .join(bin))
    }
}

fn is_debian_root() -> bool {
    let root = output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0");
    root && Path::new("/etc/debian_version").is_file() && which("apt-get").is_some()
}

/// On Debian as root, install the packages (printing the commands); elsewhere print
/// what to run and fail.
fn install_or_explain(what: &str) -> Result<(), String> {
    let apt =
        format!("apt-get update && apt-get install -y --no-install-recommends {APT_PACKAGES}");
    if is_debian_root() {
        eprintln!("xtask: {what} is missing; installing: {apt}");
        let status = Command::new("sh")
            .args(["-c", &apt])
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!("`{apt}` failed ({status})"))
        };
    }
    Err(format!(
        "{what} is missing. Install one of:\n  rustup target add {TARGET}\n  (or rustup component add rust-src)\n  sudo sh -c '{apt}'"
    ))
}

/// Make sure `qemu-system-arm` and `timeout` are on PATH.
pub fn ensure_qemu() -> Result<(), String> {
    if which("timeout").is_none() {
        return Err("`timeout` (coreutils) is missing".into());
    }
    if which("qemu-system-arm").is_some() {
        return Ok(());
    }
    install_or_explain("qemu-system-arm")?;
    which("qemu-system-arm")
        .map(|_| ())
        .ok_or_else(|| "still no qemu-system-arm after installing".into())
}
