//! Board profiles: each BSP crate declares its boards in its own `Cargo.toml`, and
//! this module reads them for the two places that need them (feature `build`, host
//! only):
//!
//! * the BSP's build script ([`emit_board_support`]) generates one [`BoardDesc`]
//!   constant per board and `BOARDS`, into `$OUT_DIR/zonekit_boards.rs` (the crate
//!   `include!`s it), and links each board binary at its load address;
//! * xtask finds every BSP through `cargo metadata` (the packages with a
//!   `[package.metadata.zonekit]` table), reads the same tables with
//!   [`read_manifest`] and boots, simulates and tests the boards from them.
//!
//! So every board fact has one home, and this crate names no board. A board:
//!
//! ```toml
//! [package.metadata.zonekit.boards.my-board]
//! doc = "`-M my-machine`: ..."           # doc comment of the generated constant
//! bin = "my-board"                       # the board's binary (default: its name)
//! ram_base = 0x0000_0000                 # BoardDesc fields; sizes are bytes or "512M"
//! default_ram = "128M"
//! max_ram = "2G"
//! uart_base = 0xE000_0000
//! machine_id = 0xd32
//! timer = { kind = "a9-global-timer", base = 0xF8F0_0200, hz = 100_000_000 }
//! mmio = [
//!     { name = "uart0", phys = 0xE000_0000, size = 0x1000 },
//!     { name = "mpcore", phys = 0xF8F0_0000, size = 0x2000 },
//! ]
//!
//! [package.metadata.zonekit.boards.my-board.qemu]
//! machine = "my-machine"                 # -M
//! dtb = "generated"                      # xtask writes the tree ("qemu": QEMU does)
//! no_atags = "why ATAGS cannot be used"  # absent: QEMU's ATAGS work
//! matrix = ["512M", "1G"]                # `cargo xtask test` boots these sizes
//! ```
//!
//! Optional: `dma_zone_size`, `starts_in_hyp` (false), `lpae` (false: long-descriptor
//! tables and RAM above 4 GiB, `CONFIG_ARM_LPAE`), `smp` (how the secondary CPUs are
//! started and counted: `{ method = "vexpress-sysflags", sysregs = 0x1000_0000,
//! cpus = "a9-scu", scu = 0x1E00_0000 }` (the GIC distributor from `qemu.gic`),
//! `{ method = "imx-src", src = 0x020D_8000, cpus = "a9-scu", scu = ... }`,
//! `{ method = "psci", conduit = "hvc", cpus = "l2ctlr" }`; absent: one CPU, see
//! [`crate::smp`]), and in `qemu`: `max_cpus` (1: the most `-smp` xtask passes), `cpu` (`-cpu`),
//! `args` (more QEMU arguments), `bench` (false: `cargo xtask bench` boots the
//! board at `max_ram`), `gic = { compatible = ["arm,cortex-a9-gic"], dist = 0x1E00_1000,
//! cpu = 0x1E00_0100 }` (an interrupt controller for the generated tree). A package may also declare binaries that are not a board's own
//! (`[package.metadata.zonekit.examples.<bin>]` with `board` and `expect`, the
//! prefixes of lines its log must contain), which `cargo xtask test` boots.
//!
//! Linux counterpart: none; Linux keeps this in `MACHINE_START` tables and device
//! trees, QEMU in its board files.

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::board::{BoardDesc, DeviceRegion, TimerDesc, TimerKind, KERNEL_LOAD_OFFSET};
use crate::smp::{CpuCount, PsciConduit, SmpDesc, SmpMethod};

/// A TOML value as the profile parser sees it (what `toml_edit` parsed, without its
/// formatting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// An integer (TOML allows `0x` hex and `_` separators).
    Int(i64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// A table or inline table, keys in file order.
    Table(Vec<(String, Value)>),
}

impl Value {
    /// The value at `key` of a table.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Table(t) => t.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Where the board's device tree comes from when none is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtbSource {
    /// xtask writes one from the board's facts and passes it with `-dtb`.
    Generated,
    /// QEMU generates the machine's own tree and always passes it in r2 (`virt`).
    Qemu,
}

/// How xtask runs a board under QEMU (`[package.metadata.zonekit.boards.<name>.qemu]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuProfile {
    /// `-M`.
    pub machine: String,
    /// `-cpu`, when the machine's default is not the one to use.
    pub cpu: Option<String>,
    /// More arguments (quieting a device, dropping a NIC).
    pub args: Vec<String>,
    /// The default device tree.
    pub dtb: DtbSource,
    /// Why the ATAGS QEMU writes cannot be used on this board, if they cannot.
    pub no_atags: Option<String>,
    /// RAM sizes `cargo xtask test` boots with the default device tree.
    pub matrix: Vec<u64>,
    /// Whether `cargo xtask bench` boots the board.
    pub bench: bool,
    /// The interrupt controller the generated device tree describes (QEMU's
    /// vexpress models look for it to add their virtio-mmio nodes).
    pub gic: Option<GicNode>,
    /// Most CPUs QEMU's model of the board takes (`-smp`), as far as zonekit
    /// starts them (1: the board has one CPU).
    pub max_cpus: u32,
}

/// An interrupt-controller node of a generated device tree (a GICv1/v2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GicNode {
    /// `compatible`, most specific first (`["arm,cortex-a15-gic", "arm,cortex-a9-gic"]`).
    pub compatible: Vec<String>,
    /// Physical base of the distributor.
    pub dist: u64,
    /// Physical base of the CPU interface.
    pub cpu: u64,
}

/// One board of a BSP: its [`BoardDesc`] facts and its QEMU profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardProfile {
    /// The board's name (the table's key).
    pub name: String,
    /// Doc comment of the generated constant.
    pub doc: String,
    /// The board's binary in its package.
    pub bin: String,
    /// [`BoardDesc::ram_base`].
    pub ram_base: u64,
    /// [`BoardDesc::default_ram`].
    pub default_ram: u64,
    /// [`BoardDesc::max_ram`].
    pub max_ram: u64,
    /// [`BoardDesc::dma_zone_size`].
    pub dma_zone_size: Option<u64>,
    /// [`BoardDesc::uart_base`].
    pub uart_base: u64,
    /// [`BoardDesc::starts_in_hyp`].
    pub starts_in_hyp: bool,
    /// [`BoardDesc::lpae`].
    pub lpae: bool,
    /// [`BoardDesc::machine_id`].
    pub machine_id: u32,
    /// [`BoardDesc::mmio`]: (name, physical base, size).
    pub mmio: Vec<(String, u64, u64)>,
    /// [`BoardDesc::timer`].
    pub timer: TimerDesc,
    /// [`BoardDesc::smp`].
    pub smp: SmpDesc,
    /// How xtask runs it.
    pub qemu: QemuProfile,
}

/// A binary that is not a board's own (a kernel built on zonekit), booted by
/// `cargo xtask test` (`[package.metadata.zonekit.examples.<bin>]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExampleProfile {
    /// The binary.
    pub bin: String,
    /// The board it runs on.
    pub board: String,
    /// Prefixes of lines its log must contain.
    pub expect: Vec<String>,
}

/// Everything a package's `[package.metadata.zonekit]` declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageProfile {
    /// Its boards, in file order.
    pub boards: Vec<BoardProfile>,
    /// Its other binaries.
    pub examples: Vec<ExampleProfile>,
}

impl BoardProfile {
    /// The name of the generated constant: the board's name in upper case, `-` as `_`
    /// (`mcimx6ul-evk` → `MCIMX6UL_EVK`).
    pub fn const_name(&self) -> String {
        self.name.to_ascii_uppercase().replace('-', "_")
    }

    /// Where the image is linked and loaded ([`BoardDesc::load_address`]).
    pub fn load_address(&self) -> u64 {
        self.ram_base + KERNEL_LOAD_OFFSET
    }

    /// The board's [`BoardDesc`], with its strings leaked (host tools build a few
    /// once and keep them for the whole run).
    pub fn leak_desc(&self) -> &'static BoardDesc {
        fn leak(s: &str) -> &'static str {
            std::boxed::Box::leak(s.to_string().into_boxed_str())
        }
        let mmio: Vec<DeviceRegion> = self
            .mmio
            .iter()
            .map(|(name, phys, size)| DeviceRegion {
                name: leak(name),
                phys: *phys,
                size: *size,
            })
            .collect();
        std::boxed::Box::leak(std::boxed::Box::new(BoardDesc {
            name: leak(&self.name),
            ram_base: self.ram_base,
            default_ram: self.default_ram,
            max_ram: self.max_ram,
            dma_zone_size: self.dma_zone_size,
            uart_base: self.uart_base,
            starts_in_hyp: self.starts_in_hyp,
            lpae: self.lpae,
            machine_id: self.machine_id,
            mmio: mmio.leak(),
            timer: self.timer,
            smp: self.smp,
        }))
    }
}

/// Keys a table may hold; anything else is a typo worth an error.
fn only_keys(v: &Value, path: &str, allowed: &[&str]) -> Result<(), String> {
    let Value::Table(t) = v else {
        return Err(format!("{path}: expected a table"));
    };
    match t.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(format!(
            "{path}.{k}: unknown key (known: {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn int(v: &Value, path: &str) -> Result<u64, String> {
    match v {
        Value::Int(n) if *n >= 0 => Ok(*n as u64),
        _ => Err(format!("{path}: expected a non-negative integer")),
    }
}

/// A size: bytes, or a string with a K/M/G suffix (`"512M"`).
fn size(v: &Value, path: &str) -> Result<u64, String> {
    match v {
        Value::Str(s) => zonekit_core::cmdline::memparse(s)
            .ok_or_else(|| format!("{path}: {s:?} is not a size (bytes, or a number with K/M/G)")),
        _ => int(v, path),
    }
}

fn string(v: &Value, path: &str) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        _ => Err(format!("{path}: expected a string")),
    }
}

fn boolean(v: &Value, path: &str) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(format!("{path}: expected true or false")),
    }
}

fn array<'a>(v: &'a Value, path: &str) -> Result<&'a [Value], String> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(format!("{path}: expected an array")),
    }
}

fn required<'a>(t: &'a Value, key: &str, path: &str) -> Result<&'a Value, String> {
    t.get(key).ok_or_else(|| format!("{path}: missing `{key}`"))
}

fn strings(v: &Value, path: &str) -> Result<Vec<String>, String> {
    array(v, path)?
        .iter()
        .enumerate()
        .map(|(i, s)| string(s, &format!("{path}[{i}]")))
        .collect()
}

fn timer(v: &Value, path: &str) -> Result<TimerDesc, String> {
    only_keys(v, path, &["kind", "base", "hz"])?;
    let kind = string(required(v, "kind", path)?, &format!("{path}.kind"))?;
    let kind = match kind.as_str() {
        "a9-global-timer" => TimerKind::A9GlobalTimer,
        "generic-timer" => TimerKind::GenericTimer,
        "imx-gpt" => TimerKind::ImxGpt,
        other => {
            return Err(format!(
                "{path}.kind: {other:?} is not a timer zonekit drives (a9-global-timer, generic-timer, imx-gpt)"
            ))
        }
    };
    let base = match v.get("base") {
        Some(b) => int(b, &format!("{path}.base"))?,
        None => 0,
    };
    let frequency_hz = int(required(v, "hz", path)?, &format!("{path}.hz"))?;
    Ok(TimerDesc {
        kind,
        base,
        frequency_hz,
    })
}

fn qemu(v: &Value, path: &str) -> Result<QemuProfile, String> {
    only_keys(
        v,
        path,
        &[
            "machine", "cpu", "args", "dtb", "no_atags", "matrix", "bench", "gic", "max_cpus",
        ],
    )?;
    let p = |k: &str| format!("{path}.{k}");
    let dtb = match v.get("dtb") {
        None => DtbSource::Generated,
        Some(d) => match string(d, &p("dtb"))?.as_str() {
            "generated" => DtbSource::Generated,
            "qemu" => DtbSource::Qemu,
            other => {
                return Err(format!(
                    "{}: {other:?} is neither \"generated\" nor \"qemu\"",
                    p("dtb")
                ))
            }
        },
    };
    Ok(QemuProfile {
        machine: string(required(v, "machine", path)?, &p("machine"))?,
        cpu: v.get("cpu").map(|c| string(c, &p("cpu"))).transpose()?,
        args: match v.get("args") {
            Some(a) => strings(a, &p("args"))?,
            None => Vec::new(),
        },
        dtb,
        no_atags: v
            .get("no_atags")
            .map(|r| string(r, &p("no_atags")))
            .transpose()?,
        matrix: match v.get("matrix") {
            Some(m) => array(m, &p("matrix"))?
                .iter()
                .enumerate()
                .map(|(i, s)| size(s, &format!("{}[{i}]", p("matrix"))))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        },
        bench: match v.get("bench") {
            Some(b) => boolean(b, &p("bench"))?,
            None => false,
        },
        gic: v.get("gic").map(|g| gic(g, &p("gic"))).transpose()?,
        max_cpus: match v.get("max_cpus") {
            Some(m) => match int(m, &p("max_cpus"))? {
                n @ 1..=32 => n as u32,
                _ => return Err(format!("{}: expected 1 to 32", p("max_cpus"))),
            },
            None => 1,
        },
    })
}

/// A board's `smp` table: `method` (`"vexpress-sysflags"` with `sysregs`, the GIC
/// distributor from `qemu.gic`; `"imx-src"` with `src`; `"psci"` with `conduit`
/// `"hvc"` or `"smc"`) and `cpus` (`"a9-scu"` with `scu`, or `"l2ctlr"`).
fn smp(v: &Value, path: &str, gic: Option<&GicNode>) -> Result<SmpDesc, String> {
    only_keys(
        v,
        path,
        &["method", "sysregs", "src", "conduit", "cpus", "scu"],
    )?;
    let p = |k: &str| format!("{path}.{k}");
    let addr = |k: &str| int(required(v, k, path)?, &p(k));
    let method = match string(required(v, "method", path)?, &p("method"))?.as_str() {
        "vexpress-sysflags" => SmpMethod::VexpressSysFlags {
            sysregs: addr("sysregs")?,
            gic_dist: gic
                .ok_or_else(|| {
                    format!(
                        "{}: vexpress-sysflags needs qemu.gic (the distributor)",
                        p("method")
                    )
                })?
                .dist,
        },
        "imx-src" => SmpMethod::ImxSrc { src: addr("src")? },
        "psci" => SmpMethod::Psci {
            conduit: match string(required(v, "conduit", path)?, &p("conduit"))?.as_str() {
                "hvc" => PsciConduit::Hvc,
                "smc" => PsciConduit::Smc,
                other => {
                    return Err(format!(
                        "{}: {other:?} is neither \"hvc\" nor \"smc\"",
                        p("conduit")
                    ))
                }
            },
        },
        other => {
            return Err(format!(
                "{}: {other:?} is not a method zonekit knows (vexpress-sysflags, imx-src, psci)",
                p("method")
            ))
        }
    };
    let count = match string(required(v, "cpus", path)?, &p("cpus"))?.as_str() {
        "a9-scu" => CpuCount::A9Scu { scu: addr("scu")? },
        "l2ctlr" => CpuCount::L2ctlr,
        other => {
            return Err(format!(
                "{}: {other:?} is neither \"a9-scu\" nor \"l2ctlr\"",
                p("cpus")
            ))
        }
    };
    Ok(SmpDesc { method, count })
}

fn gic(v: &Value, path: &str) -> Result<GicNode, String> {
    only_keys(v, path, &["compatible", "dist", "cpu"])?;
    Ok(GicNode {
        compatible: strings(
            required(v, "compatible", path)?,
            &format!("{path}.compatible"),
        )?,
        dist: int(required(v, "dist", path)?, &format!("{path}.dist"))?,
        cpu: int(required(v, "cpu", path)?, &format!("{path}.cpu"))?,
    })
}

/// One board table.
fn board(name: &str, v: &Value, path: &str) -> Result<BoardProfile, String> {
    only_keys(
        v,
        path,
        &[
            "doc",
            "bin",
            "ram_base",
            "default_ram",
            "max_ram",
            "dma_zone_size",
            "uart_base",
            "starts_in_hyp",
            "lpae",
            "machine_id",
            "mmio",
            "timer",
            "smp",
            "qemu",
        ],
    )?;
    let p = |k: &str| format!("{path}.{k}");
    let qemu = qemu(required(v, "qemu", path)?, &p("qemu"))?;
    let mmio = array(required(v, "mmio", path)?, &p("mmio"))?
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let rp = format!("{}[{i}]", p("mmio"));
            only_keys(r, &rp, &["name", "phys", "size"])?;
            Ok((
                string(required(r, "name", &rp)?, &format!("{rp}.name"))?,
                int(required(r, "phys", &rp)?, &format!("{rp}.phys"))?,
                size(required(r, "size", &rp)?, &format!("{rp}.size"))?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let machine_id = int(required(v, "machine_id", path)?, &p("machine_id"))?;
    let machine_id =
        u32::try_from(machine_id).map_err(|_| format!("{}: above 32 bits", p("machine_id")))?;
    let profile = BoardProfile {
        name: name.to_string(),
        doc: match v.get("doc") {
            Some(d) => string(d, &p("doc"))?,
            None => format!("The `{name}` board (QEMU `-M {}`).", qemu.machine),
        },
        bin: match v.get("bin") {
            Some(b) => string(b, &p("bin"))?,
            None => name.to_string(),
        },
        ram_base: int(required(v, "ram_base", path)?, &p("ram_base"))?,
        default_ram: size(required(v, "default_ram", path)?, &p("default_ram"))?,
        max_ram: size(required(v, "max_ram", path)?, &p("max_ram"))?,
        dma_zone_size: v
            .get("dma_zone_size")
            .map(|d| size(d, &p("dma_zone_size")))
            .transpose()?,
        uart_base: int(required(v, "uart_base", path)?, &p("uart_base"))?,
        starts_in_hyp: match v.get("starts_in_hyp") {
            Some(b) => boolean(b, &p("starts_in_hyp"))?,
            None => false,
        },
        lpae: match v.get("lpae") {
            Some(b) => boolean(b, &p("lpae"))?,
            None => false,
        },
        machine_id,
        mmio,
        timer: timer(required(v, "timer", path)?, &p("timer"))?,
        smp: match v.get("smp") {
            Some(t) => smp(t, &p("smp"), qemu.gic.as_ref())?,
            None => SmpDesc::UP,
        },
        qemu,
    };
    if profile.smp.method != SmpMethod::None && profile.qemu.max_cpus < 2 {
        return Err(format!(
            "{}: a board that starts secondary CPUs needs qemu.max_cpus of 2 or more",
            p("smp")
        ));
    }
    if let Some(&s) = profile.qemu.matrix.iter().find(|&&s| s > profile.max_ram) {
        return Err(format!(
            "{}: {s:#x} bytes is more than max_ram",
            p("qemu.matrix")
        ));
    }
    profile
        .leak_desc()
        .check()
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(profile)
}

/// Parse a package's `[package.metadata.zonekit]` table.
pub fn parse_zonekit(zonekit: &Value) -> Result<PackageProfile, String> {
    let path = "package.metadata.zonekit";
    only_keys(zonekit, path, &["boards", "examples"])?;
    let mut out = PackageProfile::default();
    if let Some(boards) = zonekit.get("boards") {
        let Value::Table(t) = boards else {
            return Err(format!("{path}.boards: expected a table of boards"));
        };
        for (name, v) in t {
            out.boards
                .push(board(name, v, &format!("{path}.boards.{name}"))?);
        }
    }
    if let Some(examples) = zonekit.get("examples") {
        let Value::Table(t) = examples else {
            return Err(format!("{path}.examples: expected a table of binaries"));
        };
        for (bin, v) in t {
            let ep = format!("{path}.examples.{bin}");
            only_keys(v, &ep, &["board", "expect"])?;
            out.examples.push(ExampleProfile {
                bin: bin.clone(),
                board: string(required(v, "board", &ep)?, &format!("{ep}.board"))?,
                expect: match v.get("expect") {
                    Some(e) => strings(e, &format!("{ep}.expect"))?,
                    None => Vec::new(),
                },
            });
        }
    }
    Ok(out)
}

/// A TOML table as a [`Value::Table`].
fn from_toml_table(t: &toml_edit::Table) -> Result<Value, String> {
    let mut out = Vec::new();
    for (k, item) in t.iter() {
        if let Some(v) = from_toml(item)? {
            out.push((k.to_string(), v));
        }
    }
    Ok(Value::Table(out))
}

/// A TOML item as a [`Value`] (`None` for an absent item).
fn from_toml(item: &toml_edit::Item) -> Result<Option<Value>, String> {
    Ok(match item {
        toml_edit::Item::None => None,
        toml_edit::Item::Value(v) => Some(from_toml_value(v)?),
        toml_edit::Item::Table(t) => Some(from_toml_table(t)?),
        toml_edit::Item::ArrayOfTables(a) => Some(Value::Array(
            a.iter().map(from_toml_table).collect::<Result<_, _>>()?,
        )),
    })
}

fn from_toml_value(v: &toml_edit::Value) -> Result<Value, String> {
    Ok(match v {
        toml_edit::Value::String(s) => Value::Str(s.value().clone()),
        toml_edit::Value::Integer(n) => Value::Int(*n.value()),
        toml_edit::Value::Boolean(b) => Value::Bool(*b.value()),
        toml_edit::Value::Array(a) => {
            Value::Array(a.iter().map(from_toml_value).collect::<Result<_, _>>()?)
        }
        toml_edit::Value::InlineTable(t) => Value::Table(
            t.iter()
                .map(|(k, v)| Ok((k.to_string(), from_toml_value(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        toml_edit::Value::Float(_) | toml_edit::Value::Datetime(_) => {
            return Err(format!("{v:?}: floats and dates are not board facts"))
        }
    })
}

/// Parse the `[package.metadata.zonekit]` table of a `Cargo.toml`'s text (an empty
/// profile when there is none).
pub fn parse_manifest(text: &str) -> Result<PackageProfile, String> {
    let doc = toml_edit::Document::parse(text).map_err(|e| format!("not TOML: {e}"))?;
    let item = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("zonekit"));
    match item.map(from_toml).transpose()?.flatten() {
        Some(v) => parse_zonekit(&v),
        None => Ok(PackageProfile::default()),
    }
}

/// Read and parse the `[package.metadata.zonekit]` table of the manifest at `path`.
pub fn read_manifest(path: &std::path::Path) -> Result<PackageProfile, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_manifest(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The Rust source of a package's board constants: one `pub const` [`BoardDesc`]
/// per board (named by [`BoardProfile::const_name`]) and `BOARDS`, all of them.
pub fn write_board_consts(
    w: &mut dyn core::fmt::Write,
    boards: &[BoardProfile],
) -> core::fmt::Result {
    const B: &str = "::zonekit_arch_arm::board";
    writeln!(
        w,
        "// Generated by zonekit_arch_arm::profile from this package's Cargo.toml\n// ([package.metadata.zonekit.boards]); edit that table, not this file.\n"
    )?;
    for b in boards {
        let timer_kind = match b.timer.kind {
            TimerKind::A9GlobalTimer => "A9GlobalTimer",
            TimerKind::GenericTimer => "GenericTimer",
            TimerKind::ImxGpt => "ImxGpt",
        };
        writeln!(w, "#[doc = {:?}]", b.doc)?;
        writeln!(
            w,
            "pub const {}: {B}::BoardDesc = {B}::BoardDesc {{",
            b.const_name()
        )?;
        writeln!(w, "    name: {:?},", b.name)?;
        writeln!(w, "    ram_base: {:#x},", b.ram_base)?;
        writeln!(w, "    default_ram: {:#x},", b.default_ram)?;
        writeln!(w, "    max_ram: {:#x},", b.max_ram)?;
        match b.dma_zone_size {
            Some(s) => writeln!(
                w,
                "    dma_zone_size: ::core::option::Option::Some({s:#x}),"
            )?,
            None => writeln!(w, "    dma_zone_size: ::core::option::Option::None,")?,
        }
        writeln!(w, "    uart_base: {:#x},", b.uart_base)?;
        writeln!(w, "    starts_in_hyp: {},", b.starts_in_hyp)?;
        writeln!(w, "    lpae: {},", b.lpae)?;
        writeln!(w, "    machine_id: {:#x},", b.machine_id)?;
        writeln!(w, "    mmio: &[")?;
        for (name, phys, size) in &b.mmio {
            writeln!(
                w,
                "        {B}::DeviceRegion {{ name: {name:?}, phys: {phys:#x}, size: {size:#x} }},"
            )?;
        }
        writeln!(w, "    ],")?;
        writeln!(
            w,
            "    timer: {B}::TimerDesc {{ kind: {B}::TimerKind::{timer_kind}, base: {:#x}, frequency_hz: {} }},",
            b.timer.base, b.timer.frequency_hz
        )?;
        writeln!(w, "    smp: {},", smp_source(&b.smp))?;
        writeln!(w, "}};\n")?;
    }
    writeln!(
        w,
        "/// Every board of this package, as its `Cargo.toml` lists them."
    )?;
    let list: Vec<String> = boards
        .iter()
        .map(|b| format!("&{}", b.const_name()))
        .collect();
    writeln!(
        w,
        "pub const BOARDS: [&{B}::BoardDesc; {}] = [{}];",
        boards.len(),
        list.join(", ")
    )
}

/// The Rust expression of an [`SmpDesc`].
fn smp_source(d: &SmpDesc) -> String {
    const S: &str = "::zonekit_arch_arm::smp";
    let method = match d.method {
        SmpMethod::None => format!("{S}::SmpMethod::None"),
        SmpMethod::VexpressSysFlags { sysregs, gic_dist } => format!(
            "{S}::SmpMethod::VexpressSysFlags {{ sysregs: {sysregs:#x}, gic_dist: {gic_dist:#x} }}"
        ),
        SmpMethod::ImxSrc { src } => format!("{S}::SmpMethod::ImxSrc {{ src: {src:#x} }}"),
        SmpMethod::Psci { conduit } => {
            format!("{S}::SmpMethod::Psci {{ conduit: {S}::PsciConduit::{conduit:?} }}")
        }
    };
    let count = match d.count {
        CpuCount::One => format!("{S}::CpuCount::One"),
        CpuCount::A9Scu { scu } => format!("{S}::CpuCount::A9Scu {{ scu: {scu:#x} }}"),
        CpuCount::L2ctlr => format!("{S}::CpuCount::L2ctlr"),
    };
    format!("{S}::SmpDesc {{ method: {method}, count: {count} }}")
}

/// For a BSP's build script: read the package's boards from its `Cargo.toml`, write
/// their constants to `$OUT_DIR/zonekit_boards.rs` (the crate does
/// `include!(concat!(env!("OUT_DIR"), "/zonekit_boards.rs"));`) and, when building
/// for the bare-metal target, link each board's binary at its load address
/// ([`crate::link::emit_linker_script`]). A table that cannot be used (unknown key,
/// RAM above 4 GiB, console outside `mmio`, ...) fails the build with its path.
pub fn emit_board_support() {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let manifest = std::path::Path::new(&dir).join("Cargo.toml");
    std::println!("cargo:rerun-if-changed={}", manifest.display());
    let profile = read_manifest(&manifest).unwrap_or_else(|e| panic!("{e}"));
    if profile.boards.is_empty() {
        panic!(
            "{}: no [package.metadata.zonekit.boards.<name>] table",
            manifest.display()
        );
    }
    let mut src = String::new();
    write_board_consts(&mut src, &profile.boards).expect("writing to a String cannot fail");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("zonekit_boards.rs");
    std::fs::write(&out, src).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    for b in &profile.boards {
        crate::link::emit_linker_script(&b.bin, b.load_address());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[package]
name = "x"

[package.metadata.zonekit.boards.sample-a9]
ram_base = 0
default_ram = "128M"
max_ram = "2G"
uart_base = 0xE000_0000
machine_id = 0xd32
timer = { kind = "a9-global-timer", base = 0xF8F0_0200, hz = 100_000_000 }
mmio = [
    { name = "uart0", phys = 0xE000_0000, size = 0x1000 },
    { name = "mpcore", phys = 0xF8F0_0000, size = "8K" },
]

[package.metadata.zonekit.boards.sample-a9.qemu]
machine = "sample-a9"
no_atags = "the board-setup code sits where r2 points"
matrix = ["512M", "1G"]

[package.metadata.zonekit.examples.my-os]
board = "sample-a9"
expect = ["my-os: "]
"#;

    #[test]
    fn a_board_table_becomes_a_profile_and_a_constant() {
        let p = parse_manifest(SAMPLE).unwrap();
        let b = &p.boards[0];
        assert_eq!(b.name, "sample-a9");
        assert_eq!(
            (b.bin.as_str(), b.const_name().as_str()),
            ("sample-a9", "SAMPLE_A9")
        );
        assert_eq!(
            (b.ram_base, b.default_ram, b.max_ram),
            (0, 128 << 20, 2 << 30)
        );
        assert_eq!(b.mmio[1], ("mpcore".to_string(), 0xF8F0_0000, 0x2000));
        assert_eq!(b.timer.kind, TimerKind::A9GlobalTimer);
        assert_eq!(b.qemu.dtb, DtbSource::Generated);
        assert_eq!(b.qemu.matrix, [512 << 20, 1 << 30]);
        assert!(b.qemu.no_atags.is_some() && !b.qemu.bench && b.qemu.cpu.is_none());
        assert_eq!(b.load_address(), 0x1_0000);
        let d = b.leak_desc();
        assert_eq!(
            (d.name, d.uart_base, d.machine_id),
            ("sample-a9", 0xE000_0000, 0xd32)
        );
        assert_eq!(
            p.examples,
            [ExampleProfile {
                bin: "my-os".into(),
                board: "sample-a9".into(),
                expect: std::vec!["my-os: ".into()],
            }]
        );
        let mut src = String::new();
        write_board_consts(&mut src, &p.boards).unwrap();
        assert!(src.contains("pub const SAMPLE_A9: ::zonekit_arch_arm::board::BoardDesc"));
        assert!(src.contains("uart_base: 0xe0000000,"));
        assert!(src.contains(
            "kind: ::zonekit_arch_arm::board::TimerKind::A9GlobalTimer, base: 0xf8f00200"
        ));
        assert!(src.contains(
            "pub const BOARDS: [&::zonekit_arch_arm::board::BoardDesc; 1] = [&SAMPLE_A9];"
        ));
    }

    #[test]
    fn a_wrong_table_is_an_error_naming_its_path() {
        let err = |from: &str, to: &str| parse_manifest(&SAMPLE.replace(from, to)).unwrap_err();
        assert!(err("machine_id", "machine_idd")
            .contains("package.metadata.zonekit.boards.sample-a9.machine_idd: unknown key"));
        assert!(err("max_ram = \"2G\"", "max_ram = \"lots\"")
            .contains(".max_ram: \"lots\" is not a size"));
        assert!(err("max_ram = \"2G\"", "max_ram = \"5G\"").contains("LPAE"));
        assert!(err("max_ram = \"2G\"", "max_ram = \"768M\"").contains("qemu.matrix"));
        assert!(err("uart_base = 0xE000_0000", "uart_base = 0xE000_2000").contains("console UART"));
        assert!(err("a9-global-timer", "hpet").contains("timer.kind: \"hpet\""));
        assert!(err("machine = \"sample-a9\"", "").contains(".qemu: missing `machine`"));
        let smp = "timer = { kind = \"a9-global-timer\", base = 0xF8F0_0200, hz = 100_000_000 }\nsmp = { method = \"imx-src\", src = 0xF8F0_1000, cpus = \"a9-scu\", scu = 0xF8F0_0000 }";
        let with_smp = |from: &str, to: &str| {
            parse_manifest(
                &SAMPLE
                    .replace("timer = { kind = \"a9-global-timer\", base = 0xF8F0_0200, hz = 100_000_000 }", smp)
                    .replace(from, to),
            )
        };
        assert!(with_smp("", "").unwrap_err().contains("qemu.max_cpus of 2"));
        let ok = with_smp("matrix = [", "max_cpus = 4\nmatrix = [").unwrap();
        assert_eq!(ok.boards[0].qemu.max_cpus, 4);
        assert_eq!(
            ok.boards[0].smp,
            SmpDesc {
                method: SmpMethod::ImxSrc { src: 0xF8F0_1000 },
                count: CpuCount::A9Scu { scu: 0xF8F0_0000 },
            }
        );
        let mut src = String::new();
        write_board_consts(&mut src, &ok.boards).unwrap();
        assert!(src.contains("smp: ::zonekit_arch_arm::smp::SmpDesc { method: ::zonekit_arch_arm::smp::SmpMethod::ImxSrc { src: 0xf8f01000 }, count: ::zonekit_arch_arm::smp::CpuCount::A9Scu { scu: 0xf8f00000 } },"), "{src}");
        let with_smp4 = |from: &str, to: &str| {
            parse_manifest(
                &SAMPLE
                    .replace("timer = { kind = \"a9-global-timer\", base = 0xF8F0_0200, hz = 100_000_000 }", smp)
                    .replace("matrix = [", "max_cpus = 4\nmatrix = [")
                    .replace(from, to),
            )
        };
        let e = with_smp4("src = 0xF8F0_1000", "src = 0x0200_0000").unwrap_err();
        assert!(e.contains("the SRC is in no mmio region"), "{e}");
        let e = with_smp4("imx-src", "spin-table").unwrap_err();
        assert!(e.contains("smp.method: \"spin-table\""), "{e}");
        let e = with_smp("matrix = [", "max_cpus = 0\nmatrix = [").unwrap_err();
        assert!(e.contains("qemu.max_cpus: expected 1 to 32"), "{e}");
        let e = with_smp4(
            "method = \"imx-src\", src = 0xF8F0_1000",
            "method = \"vexpress-sysflags\", sysregs = 0xF8F0_1000",
        )
        .unwrap_err();
        assert!(e.contains("needs qemu.gic"), "{e}");
        let psci = with_smp4(
            "method = \"imx-src\", src = 0xF8F0_1000, cpus = \"a9-scu\", scu = 0xF8F0_0000",
            "method = \"psci\", conduit = \"smc\", cpus = \"l2ctlr\"",
        )
        .unwrap();
        assert_eq!(
            psci.boards[0].smp,
            SmpDesc {
                method: SmpMethod::Psci {
                    conduit: PsciConduit::Smc
                },
                count: CpuCount::L2ctlr,
            }
        );
        let e = with_smp4(", scu = 0xF8F0_0000", "").unwrap_err();
        assert!(e.contains(".smp: missing `scu`"), "{e}");
        // No zonekit table: nothing declared.
        assert_eq!(
            parse_manifest("[package]\nname = \"x\"\n"),
            Ok(PackageProfile::default())
        );
    }
}
