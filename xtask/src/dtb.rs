//! `--dtb auto`: a board device tree written by xtask with `vm-fdt`.
//!
//! The blob has what zonekit reads from a real bootloader's tree: a `/memory` node
//! (QEMU rewrites it to match `-m`), `/chosen` with the command line (QEMU replaces
//! `bootargs` with `-append`), and a `/reserved-memory` node with a static region and
//! a dynamic pool that memblock must place; the `nomap` variant adds a `no-map`
//! region, which shows up as a hole in the linear map.
//!
//! `--dtb test:NAME` writes the same tree with what the boot matrix checks discovery
//! against ([`TestTree`]): a Latin-1 byte in `bootargs`, what Linux accepts but fdt-rs
//! did not, or a second memory node that makes the tree unusable.
//!
//! [`qemu_load_dtb`] is what QEMU 7.2's `arm_load_dtb` does to a `-dtb` file before the
//! guest sees it, so `cargo xtask sim` hands the guest's flow the same bytes.

use std::path::{Path, PathBuf};

use vm_fdt::FdtWriter;
use zonekit_arch_arm::board::BoardDesc;
use zonekit_arch_arm::fdt::{fdt_header_ok, fdt_string, FdtToken, FdtTokens};
use zonekit_arch_arm::profile::GicNode;

/// Which device tree a boot gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtbMode {
    /// xtask writes the board's tree.
    Auto,
    /// As `Auto`, plus a 1 MiB `no-map` reserved region.
    AutoNomap,
    /// No tree: QEMU passes ATAGS.
    None,
    /// A tree from a file.
    File(PathBuf),
    /// xtask writes one of the boot matrix's test trees.
    Test(TestTree),
}

impl DtbMode {
    /// Parse `--dtb auto|auto-nomap|none|test:NAME|PATH`.
    pub fn parse(s: &str) -> Result<DtbMode, String> {
        Ok(match s {
            "auto" => DtbMode::Auto,
            "auto-nomap" => DtbMode::AutoNomap,
            "none" => DtbMode::None,
            _ => match s.strip_prefix("test:") {
                Some(name) => DtbMode::Test(TestTree::parse(name)?),
                None => DtbMode::File(PathBuf::from(s)),
            },
        })
    }
}

/// The boot matrix's test trees: the `auto` tree plus what one case checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestTree {
    /// `test:latin1`: `bootargs` hold a Latin-1 byte (`caf\xe9`) and `memblock=debug`.
    /// The guest must use the tree's memory and reservations, and the command line.
    Latin1,
    /// `test:quirks`: what Linux accepts and fdt-rs 0.4 did not: node names over 29
    /// bytes (one with a 200-character unit address), a node name and a `status` that
    /// are not UTF-8, and `/chosen@1` (with `mem=32M`, which must not apply) after
    /// `/chosen`.
    Quirks,
    /// `test:overlap`: a second memory node, `sdram@<RAM base>` (QEMU replaces only
    /// `memory` nodes), over the same RAM: zonekit rejects the tree.
    Overlap,
}

impl TestTree {
    /// Every test tree.
    pub const ALL: [TestTree; 3] = [TestTree::Latin1, TestTree::Quirks, TestTree::Overlap];

    /// The name after `test:`.
    pub fn name(self) -> &'static str {
        match self {
            TestTree::Latin1 => "latin1",
            TestTree::Quirks => "quirks",
            TestTree::Overlap => "overlap",
        }
    }

    fn parse(name: &str) -> Result<TestTree, String> {
        TestTree::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = TestTree::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "unknown test tree test:{name} (known: test:{})",
                    names.join(", test:")
                )
            })
    }
}

/// `bootargs` of [`TestTree::Latin1`] ("café" in Latin-1).
pub const LATIN1_BOOTARGS: &[u8] = b"console=ttyAMA0 caf\xe9 memblock=debug";

/// Offset from the RAM base of the static example reservation (64 KiB).
pub const STATIC_RESERVED_OFFSET: u64 = 0x0100_0000;
/// Size of the static example reservation.
pub const STATIC_RESERVED_SIZE: u64 = 0x1_0000;
/// Offset from the RAM base of the `no-map` region of the `auto-nomap` tree.
pub const NOMAP_OFFSET: u64 = 0x0200_0000;
/// Size of the `no-map` region.
pub const NOMAP_SIZE: u64 = 0x10_0000;
/// Size of the dynamic pool memblock places.
pub const POOL_SIZE: u64 = 0x10_0000;

fn cells(v: u64) -> [u32; 2] {
    [(v >> 32) as u32, v as u32]
}

/// Write the tree for `board` with `mem` bytes of RAM.
pub fn board_dtb(
    board: &BoardDesc,
    mem: u64,
    cmdline: &str,
    nomap: bool,
) -> Result<Vec<u8>, String> {
    write_tree(board, mem, cmdline.as_bytes(), nomap, |_| Ok(()))
}

/// Write the test tree `t` for `board` with `mem` bytes of RAM (`cmdline` is its
/// `bootargs`, except for [`TestTree::Latin1`]).
pub fn test_dtb(
    t: TestTree,
    board: &BoardDesc,
    mem: u64,
    cmdline: &str,
) -> Result<Vec<u8>, String> {
    let base = board.ram_base;
    match t {
        TestTree::Latin1 => write_tree(board, mem, LATIN1_BOOTARGS, false, |_| Ok(())),
        TestTree::Overlap => write_tree(board, mem, cmdline.as_bytes(), false, |w| {
            let n = w.begin_node(&format!("sdram@{base:x}"))?;
            w.property_string("device_type", "memory")?;
            let reg: Vec<u32> = cells(base).into_iter().chain(cells(mem)).collect();
            w.property_array_u32("reg", &reg)?;
            w.end_node(n)
        }),
        TestTree::Quirks => {
            let mut blob = write_tree(board, mem, cmdline.as_bytes(), false, |w| {
                // /chosen@1 after /chosen: Linux (fdt_path_offset) reads the first.
                let n = w.begin_node("chosen@1")?;
                w.property_string("bootargs", "mem=32M")?;
                w.end_node(n)?;
                // 30 bytes: one more than fdt-rs 0.4 could read.
                let n = w.begin_node("interrupt-controller@12c001000")?;
                w.property_string("compatible", "arm,cortex-a9-gic")?;
                w.property_string("status", "okay")?;
                w.end_node(n)?;
                let n = w.begin_node(&format!(
                    "a-node-name-of-thirty-one-bytes@{}",
                    "9".repeat(200)
                ))?;
                w.end_node(n)?;
                // Patched below: a name and a status that are not UTF-8.
                let n = w.begin_node("uartX@10009000")?;
                w.property("status", b"d\xe9sactiv\xe9\0")?;
                w.end_node(n)
            })?;
            let from: &[u8] = b"uartX@10009000\0";
            let at = blob
                .windows(from.len())
                .position(|x| x == from)
                .ok_or("the test tree lost its uart node")?;
            blob[at + 4] = 0xe9;
            Ok(blob)
        }
    }
}

/// The `auto` tree with `bootargs` as given, and `extra` nodes written after the
/// memory node.
fn write_tree(
    board: &BoardDesc,
    mem: u64,
    bootargs: &[u8],
    nomap: bool,
    extra: impl FnOnce(&mut FdtWriter) -> Result<(), vm_fdt::Error>,
) -> Result<Vec<u8>, String> {
    let e = |e: vm_fdt::Error| format!("writing the DTB: {e}");
    let mut w = FdtWriter::new().map_err(e)?;
    let root = w.begin_node("").map_err(e)?;
    w.property_string("model", &format!("zonekit {}", board.name))
        .map_err(e)?;
    w.property_string("compatible", &format!("zonekit,{}", board.name))
        .map_err(e)?;
    w.property_u32("#address-cells", 2).map_err(e)?;
    w.property_u32("#size-cells", 2).map_err(e)?;

    let chosen = w.begin_node("chosen").map_err(e)?;
    let mut args = bootargs.to_vec();
    args.push(0);
    w.property("bootargs", &args).map_err(e)?;
    w.end_node(chosen).map_err(e)?;

    let memory = w
        .begin_node(&format!("memory@{:x}", board.ram_base))
        .map_err(e)?;
    w.property_string("device_type", "memory").map_err(e)?;
    let reg: Vec<u32> = cells(board.ram_base)
        .into_iter()
        .chain(cells(mem))
        .collect();
    w.property_array_u32("reg", &reg).map_err(e)?;
    w.end_node(memory).map_err(e)?;
    if let Some(gic) = crate::find_board(board.name)
        .ok()
        .and_then(|b| b.profile.qemu.gic.as_ref())
    {
        write_gic(&mut w, gic).map_err(e)?;
    }
    extra(&mut w).map_err(e)?;

    let rsv = w.begin_node("reserved-memory").map_err(e)?;
    w.property_u32("#address-cells", 2).map_err(e)?;
    w.property_u32("#size-cells", 2).map_err(e)?;
    w.property_null("ranges").map_err(e)?;
    let base = board.ram_base + STATIC_RESERVED_OFFSET;
    let n = w
        .begin_node(&format!("zonekit-static@{base:x}"))
        .map_err(e)?;
    let reg: Vec<u32> = cells(base)
        .into_iter()
        .chain(cells(STATIC_RESERVED_SIZE))
        .collect();
    w.property_array_u32("reg", &reg).map_err(e)?;
    w.end_node(n).map_err(e)?;
    if nomap {
        let base = board.ram_base + NOMAP_OFFSET;
        let n = w
            .begin_node(&format!("zonekit-nomap@{base:x}"))
            .map_err(e)?;
        let reg: Vec<u32> = cells(base).into_iter().chain(cells(NOMAP_SIZE)).collect();
        w.property_array_u32("reg", &reg).map_err(e)?;
        w.property_null("no-map").map_err(e)?;
        w.end_node(n).map_err(e)?;
    }
    let n = w.begin_node("zonekit-pool").map_err(e)?;
    w.property_array_u32("size", &cells(POOL_SIZE)).map_err(e)?;
    w.property_array_u32("alignment", &cells(POOL_SIZE))
        .map_err(e)?;
    w.end_node(n).map_err(e)?;
    w.end_node(rsv).map_err(e)?;

    w.end_node(root).map_err(e)?;
    w.finish().map_err(e)
}

/// The board's interrupt controller (a GIC: distributor, then CPU interface), with a
/// phandle: QEMU's vexpress models look for `arm,cortex-a9-gic` among the
/// `compatible` strings to wire their virtio-mmio nodes to it, and warn when there is
/// none (the A15's GIC lists it second, as Linux's vexpress-v2p-ca15 tree does).
fn write_gic(w: &mut FdtWriter, gic: &GicNode) -> Result<(), vm_fdt::Error> {
    let n = w.begin_node(&format!("interrupt-controller@{:x}", gic.dist))?;
    w.property_string_list("compatible", gic.compatible.clone())?;
    w.property_u32("#interrupt-cells", 3)?;
    w.property_u32("#address-cells", 0)?;
    w.property_null("interrupt-controller")?;
    let reg: Vec<u32> = [gic.dist, 0x1000, gic.cpu, 0x100]
        .into_iter()
        .flat_map(cells)
        .collect();
    w.property_array_u32("reg", &reg)?;
    w.property_u32("phandle", GIC_PHANDLE)?;
    w.end_node(n)
}

/// The interrupt controller's phandle in generated trees.
const GIC_PHANDLE: u32 = 1;

/// The `-dtb` file for a boot, written under `dir` when generated; `None` for ATAGS.
pub fn dtb_for(
    mode: &DtbMode,
    board: &BoardDesc,
    mem: u64,
    cmdline: &str,
    dir: &Path,
) -> Result<Option<PathBuf>, String> {
    let (blob, variant) = match mode {
        DtbMode::None => return Ok(None),
        DtbMode::File(p) => return Ok(Some(p.clone())),
        DtbMode::Auto => (board_dtb(board, mem, cmdline, false)?, String::new()),
        DtbMode::AutoNomap => (board_dtb(board, mem, cmdline, true)?, "-nomap".into()),
        DtbMode::Test(t) => (test_dtb(*t, board, mem, cmdline)?, format!("-{}", t.name())),
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // The blob carries the command line: one file per command line, so that boots
    // running at once never share a file with different contents.
    let tag = if cmdline.is_empty() {
        String::new()
    } else {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        cmdline.hash(&mut h);
        format!("-{:016x}", h.finish())
    };
    let name = format!("{}-{}M{variant}{tag}.dtb", board.name, mem >> 20);
    let path = dir.join(&name);
    // Write a private file and rename it into place: a boot reading the same
    // (identical) file meanwhile never sees it half written.
    let tmp = dir.join(format!(
        "{name}.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, blob).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("renaming {}: {e}", tmp.display()))?;
    Ok(Some(path))
}

/// What QEMU 7.2's `load_device_tree` + `arm_load_dtb` (`hw/arm/boot.c`) make of a
/// `-dtb` file for a boot with `mem` bytes of RAM and `-append cmdline`:
///
/// * the blob is opened into a buffer of `(file size + 10000) * 2` bytes, which
///   becomes its `totalsize` (`fdt_open_into`);
/// * the root's `#address-cells` and `#size-cells` must be present and not 0;
/// * every node named `memory` or `memory@...` whose path starts with `/memory` is
///   overwritten with `FDT_NOP`s (`qemu_fdt_nop_node`), and one `/memory@<RAM base>`
///   node describing `-m` is added after the root's properties (`fdt_add_memory_node`);
/// * `/chosen` (the first child of the root named `chosen[@...]`, as
///   `fdt_path_offset` finds it) is added when missing, and its `bootargs` set to
///   `-append` when that is not empty.
///
/// QEMU's libfdt only reads what these steps need, so a blob it passes on may still
/// be one the guest rejects (a property name outside the strings block, say): such
/// bytes are copied as they are. What QEMU itself refuses is an `Err`.
pub fn qemu_load_dtb(
    file: &[u8],
    board: &BoardDesc,
    mem: u64,
    cmdline: &str,
) -> Result<Vec<u8>, String> {
    let refuse = |why: String| format!("QEMU would refuse this DTB: {why}");
    let h = fdt_header_ok(file).map_err(|e| refuse(e.to_string()))?;
    let file = &file[..h.totalsize as usize];

    // One pass over the structure block: the root's cells, the memory nodes to NOP,
    // where new root children go, and the first /chosen with its bootargs.
    let mut tokens = FdtTokens::new(file, &h);
    let mut path: Vec<&[u8]> = Vec::new();
    let (mut acells, mut scells) = (None, None);
    let mut nops: Vec<(usize, usize)> = Vec::new();
    let mut nop_from: Option<(usize, usize)> = None; // (offset, depth)
    let mut insert_at = None;
    let mut chosen: Option<usize> = None; // just past its FDT_BEGIN_NODE and name
    let mut in_chosen = false;
    let mut bootargs: Option<(usize, usize)> = None;
    loop {
        let (at, tok) = tokens.next_token().map_err(|e| refuse(e.to_string()))?;
        let next = tokens.offset();
        if path.len() == 1
            && insert_at.is_none()
            && !matches!(tok, FdtToken::Prop { .. } | FdtToken::Nop)
        {
            insert_at = Some(at);
        }
        match tok {
            FdtToken::BeginNode(name) => {
                path.push(name);
                let full: Vec<u8> = path[1..]
                    .iter()
                    .flat_map(|n| [b"/".as_slice(), n].concat())
                    .collect();
                let memory = name == b"memory" || name.starts_with(b"memory@");
                if memory && full.starts_with(b"/memory") && nop_from.is_none() {
                    nop_from = Some((at, path.len()));
                }
                if path.len() == 2
                    && chosen.is_none()
                    && (name == b"chosen" || name.starts_with(b"chosen@"))
                {
                    chosen = Some(next);
                    in_chosen = true;
                }
            }
            FdtToken::Prop { nameoff, value } => {
                let name = fdt_string(file, &h, nameoff).ok();
                let cell = || (value.len() == 4).then(|| be32(value));
                match (path.len(), name) {
                    (1, Some(b"#address-cells")) => acells = cell(),
                    (1, Some(b"#size-cells")) => scells = cell(),
                    (2, Some(b"bootargs")) if in_chosen && bootargs.is_none() => {
                        bootargs = Some((at, next))
                    }
                    _ => {}
                }
            }
            FdtToken::EndNode => {
                if nop_from.is_some_and(|(_, depth)| depth == path.len()) {
                    nops.push((nop_from.map_or(at, |(start, _)| start), next));
                    nop_from = None;
                }
                if path.len() == 2 {
                    in_chosen = false;
                }
                path.pop();
            }
            FdtToken::Nop => {}
            FdtToken::End => break,
        }
    }
    let (Some(acells), Some(scells)) = (acells, scells) else {
        return Err(refuse(
            "the root has no 4-byte #address-cells or #size-cells".into(),
        ));
    };
    if acells == 0 || scells == 0 {
        return Err(refuse("#address-cells or #size-cells 0".into()));
    }
    let fits = |v: u64, cells: u32| cells >= 2 || v >> 32 == 0;
    if !(1..=2).contains(&acells)
        || !(1..=2).contains(&scells)
        || !fits(board.ram_base, acells)
        || !fits(mem, scells)
    {
        return Err(refuse(format!(
            "RAM {:#x}+{mem:#x} does not fit #address-cells {acells}, #size-cells {scells}",
            board.ram_base
        )));
    }
    // fdt_add_subnode skips the root's properties and NOPs, those just written
    // included.
    let mut insert_at = insert_at.ok_or_else(|| refuse("no root node".into()))?;
    while let Some(&(_, end)) = nops.iter().find(|(start, _)| *start == insert_at) {
        insert_at = end;
    }

    // The strings block with the names QEMU adds (fdt_find_add_string_ reuses any
    // occurrence, a suffix of another name included).
    let mut strings = file[h.strings_block()].to_vec();
    let mut name_off = |name: &str| -> u32 {
        let want: Vec<u8> = name.bytes().chain([0]).collect();
        match strings.windows(want.len()).position(|w| w == want) {
            Some(at) => at as u32,
            None => {
                strings.extend_from_slice(&want);
                (strings.len() - want.len()) as u32
            }
        }
    };
    let device_type = name_off("device_type");
    let reg = name_off("reg");
    let bootargs_name = name_off("bootargs");
    let mut args = cmdline.as_bytes().to_vec();
    args.push(0);

    // The nodes added at the insertion point, in the order fdt_add_subnode leaves
    // them: a missing /chosen is added second, so it lands in front of the memory node.
    let mut added = Vec::new();
    if chosen.is_none() {
        begin_node(&mut added, "chosen");
        if !cmdline.is_empty() {
            push_prop(&mut added, bootargs_name, &args);
        }
        added.extend_from_slice(&2u32.to_be_bytes());
    }
    begin_node(&mut added, &format!("memory@{:x}", board.ram_base));
    push_prop(&mut added, device_type, b"memory\0");
    let mut reg_value = cells_bytes(board.ram_base, acells);
    reg_value.extend(cells_bytes(mem, scells));
    push_prop(&mut added, reg, &reg_value);
    added.extend_from_slice(&2u32.to_be_bytes());

    // The new structure block: the old one with the NOPs, the nodes inserted, and
    // /chosen/bootargs replaced in place or added as its first property (where
    // fdt_add_property_ puts it).
    enum Edit {
        Insert,
        ReplaceBootargs(usize),
        AddBootargs,
    }
    let mut edits = vec![(insert_at, Edit::Insert)];
    if !cmdline.is_empty() {
        match (chosen, bootargs) {
            (_, Some((at, end))) => edits.push((at, Edit::ReplaceBootargs(end))),
            (Some(c), None) => edits.push((c, Edit::AddBootargs)),
            (None, None) => {}
        }
    }
    edits.sort_by_key(|e| e.0);
    let blk = h.struct_block();
    let mut st = Vec::with_capacity(blk.len() + added.len() + args.len() + 16);
    let mut off = blk.start;
    let copy = |st: &mut Vec<u8>, from: usize, to: usize| {
        for at in (from..to).step_by(4) {
            if nops.iter().any(|&(a, b)| a <= at && at < b) {
                st.extend_from_slice(&4u32.to_be_bytes());
            } else {
                st.extend_from_slice(&file[at..(at + 4).min(to)]);
            }
        }
    };
    for (at, edit) in edits {
        copy(&mut st, off, at);
        off = at;
        match edit {
            Edit::Insert => st.extend_from_slice(&added),
            Edit::ReplaceBootargs(end) => {
                push_prop(&mut st, bootargs_name, &args);
                off = end;
            }
            Edit::AddBootargs => push_prop(&mut st, bootargs_name, &args),
        }
    }
    copy(&mut st, off, blk.end);

    // /memreserve/ up to its all-zero terminator (fdt_header_ok checked it is inside
    // the blob; the guest checks the rest).
    let mut rsv = Vec::new();
    for entry in file[h.off_mem_rsvmap as usize..].chunks_exact(16) {
        rsv.extend_from_slice(entry);
        if entry.iter().all(|&b| b == 0) {
            break;
        }
    }

    let total = qemu_dtb_totalsize(file.len());
    let off_rsv = 40;
    let off_struct = off_rsv + rsv.len();
    let off_strings = off_struct + st.len();
    let size = off_strings + strings.len();
    if size > total {
        return Err(refuse(format!(
            "{size} bytes after QEMU's edits, {total} available"
        )));
    }
    let mut out = Vec::with_capacity(total);
    for w in [
        0xd00d_feed,
        total as u32,
        off_struct as u32,
        off_strings as u32,
        off_rsv as u32,
        17,
        16,
        h.boot_cpuid_phys,
        strings.len() as u32,
        st.len() as u32,
    ] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(&rsv);
    out.extend_from_slice(&st);
    out.extend_from_slice(&strings);
    out.resize(total, 0);
    Ok(out)
}

/// The room QEMU's `load_device_tree` gives a DTB file: `(size + 10000) * 2`.
pub fn qemu_dtb_totalsize(file_size: usize) -> usize {
    (file_size + 10_000) * 2
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn begin_node(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

fn push_prop(out: &mut Vec<u8>, nameoff: u32, value: &[u8]) {
    for w in [3u32, value.len() as u32, nameoff] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(value);
    pad4(out);
}

fn cells_bytes(v: u64, cells: u32) -> Vec<u8> {
    if cells == 2 {
        v.to_be_bytes().to_vec()
    } else {
        (v as u32).to_be_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vexpress_trees_describe_their_gic() {
        for (board, dist, compatible) in [
            ("vexpress-a9", 0x1e00_1000u64, &b"arm,cortex-a9-gic\0"[..]),
            (
                "vexpress-a15",
                0x2c00_1000,
                &b"arm,cortex-a15-gic\0arm,cortex-a9-gic\0"[..],
            ),
        ] {
            let b = crate::find_board(board).unwrap();
            let blob = board_dtb(b, 512 << 20, "", false).unwrap();
            let name = format!("interrupt-controller@{dist:x}\0");
            let has = |needle: &[u8]| blob.windows(needle.len()).any(|w| w == needle);
            assert!(has(name.as_bytes()), "{board}: no {name}");
            assert!(has(compatible), "{board}: compatible");
        }
        let b = crate::find_board("sabrelite").unwrap();
        let blob = board_dtb(b, 512 << 20, "", false).unwrap();
        assert!(
            !blob.windows(9).any(|w| w == b"interrupt"),
            "sabrelite declares no GIC"
        );
    }
    use zonekit_arch_arm::fdt::{chosen_bootargs, FdtError, FdtMemory, FdtWarning};
    use zonekit_core::addr::MemRange;
    use zonekit_core::source::{collect_ranges, collect_requests, RegionKind};

    const MAX32: u64 = u32::MAX as u64;

    #[test]
    fn qemu_load_dtb_replaces_memory_and_sets_bootargs() {
        let board = crate::find_board("vexpress-a9").unwrap();
        let file = board_dtb(board, 1 << 30, "old", false).unwrap();
        // -m 256M -append new: QEMU's memory node, QEMU's command line, the rest kept.
        let blob = qemu_load_dtb(&file, board, 256 << 20, "new").unwrap();
        assert_eq!(blob.len(), qemu_dtb_totalsize(file.len()));
        let m = FdtMemory::parse(&blob, MAX32).unwrap();
        assert_eq!(m.header.totalsize as usize, blob.len());
        assert_eq!(
            m.banks().collect::<Vec<_>>(),
            [MemRange::new(board.ram_base, 256 << 20)]
        );
        assert_eq!(m.cmdline(), "new");
        assert_eq!(m.reserved_static().count(), 1);
        assert_eq!(collect_requests(&m).unwrap().len(), 1);
        // No -append: the tree's bootargs stay.
        let blob = qemu_load_dtb(&file, board, 256 << 20, "").unwrap();
        assert_eq!(FdtMemory::parse(&blob, MAX32).unwrap().cmdline(), "old");
        // A memory node not called memory survives next to QEMU's.
        let file = test_dtb(TestTree::Overlap, board, 128 << 20, "").unwrap();
        let blob = qemu_load_dtb(&file, board, 128 << 20, "").unwrap();
        assert!(matches!(
            FdtMemory::parse(&blob, MAX32),
            Err(FdtError::OverlappingBanks { .. })
        ));
    }

    #[test]
    fn qemu_load_dtb_adds_chosen_and_refuses_what_qemu_refuses() {
        let board = crate::find_board("vexpress-a9").unwrap();
        let e = |e: vm_fdt::Error| e.to_string();
        let mk = |cells: bool| -> Vec<u8> {
            (|| {
                let mut w = FdtWriter::new()?;
                let root = w.begin_node("")?;
                if cells {
                    w.property_u32("#address-cells", 1)?;
                    w.property_u32("#size-cells", 1)?;
                }
                let m = w.begin_node("memory")?;
                w.property_string("device_type", "memory")?;
                w.property_array_u32("reg", &[0, 0x1000])?;
                let nested = w.begin_node("memory@0")?;
                w.end_node(nested)?;
                w.end_node(m)?;
                w.end_node(root)?;
                w.finish()
            })()
            .map_err(e)
            .unwrap()
        };
        let blob = qemu_load_dtb(&mk(true), board, 64 << 20, "mem=32M").unwrap();
        let m = FdtMemory::parse(&blob, MAX32).unwrap();
        assert_eq!(
            m.banks().collect::<Vec<_>>(),
            [MemRange::new(board.ram_base, 64 << 20)]
        );
        assert_eq!(m.cmdline(), "mem=32M");
        // QEMU reads the root's cells with error_fatal.
        let err = qemu_load_dtb(&mk(false), board, 64 << 20, "").unwrap_err();
        assert!(err.starts_with("QEMU would refuse this DTB"), "{err}");
        assert!(qemu_load_dtb(b"not a tree at all........................", board, 1, "").is_err());
    }

    #[test]
    fn test_trees_are_what_the_matrix_expects() {
        let board = crate::find_board("vexpress-a9").unwrap();
        let load = |t, mem, cmdline| {
            let file = test_dtb(t, board, mem, cmdline).unwrap();
            qemu_load_dtb(&file, board, mem, cmdline).unwrap()
        };
        // Latin-1 bootargs: the tree's memory, the bytes kept, the text usable.
        let blob = load(TestTree::Latin1, 256 << 20, "");
        let m = FdtMemory::parse(&blob, MAX32).unwrap();
        assert_eq!(m.banks().count(), 1);
        assert_eq!(m.bootargs.as_ref().unwrap().as_bytes(), LATIN1_BOOTARGS);
        assert_eq!(m.cmdline(), "console=ttyAMA0 caf\u{fffd} memblock=debug");
        // Quirks: accepted; /chosen@1's mem=32M is not the command line.
        let blob = load(TestTree::Quirks, 64 << 20, "");
        let m = FdtMemory::parse(&blob, MAX32).unwrap();
        assert_eq!(m.cmdline(), "");
        assert!(m
            .warnings
            .contains(&FdtWarning::DuplicateNode { node: "chosen@1" }));
        assert!(blob.windows(5).any(|w| w == b"uart\xe9"));
        // Overlap: rejected, with the command line QEMU wrote still readable.
        let blob = load(TestTree::Overlap, 128 << 20, "zonekit.fallback=board");
        assert!(FdtMemory::parse(&blob, MAX32).is_err());
        let args = chosen_bootargs(&blob).unwrap().unwrap();
        assert_eq!(args.as_str(), "zonekit.fallback=board");
        // Names.
        for t in TestTree::ALL {
            assert_eq!(
                DtbMode::parse(&format!("test:{}", t.name())),
                Ok(DtbMode::Test(t))
            );
        }
        assert!(DtbMode::parse("test:nope").is_err());
        assert_eq!(
            DtbMode::parse("x.dtb"),
            Ok(DtbMode::File(PathBuf::from("x.dtb")))
        );
    }

    #[test]
    fn generated_tree_parses_back() {
        let board = crate::find_board("vexpress-a9").unwrap();
        let blob = board_dtb(board, 512 << 20, "memblock=debug", true).unwrap();
        // The parser wants a 4-byte aligned buffer, which the heap gives.
        assert_eq!(blob.as_ptr() as usize % 4, 0);
        let m = FdtMemory::parse(&blob, u32::MAX as u64).unwrap();
        assert_eq!(
            m.banks().collect::<Vec<_>>(),
            [MemRange::new(board.ram_base, 512 << 20)]
        );
        assert_eq!(m.cmdline(), "memblock=debug");
        assert_eq!(
            collect_ranges(&m, RegionKind::Reserved).unwrap(),
            [MemRange::new(
                board.ram_base + STATIC_RESERVED_OFFSET,
                STATIC_RESERVED_SIZE
            )]
        );
        assert_eq!(
            collect_ranges(&m, RegionKind::NoMap).unwrap(),
            [MemRange::new(board.ram_base + NOMAP_OFFSET, NOMAP_SIZE)]
        );
        let req = collect_requests(&m).unwrap();
        assert_eq!(req.len(), 1);
        assert_eq!((req[0].size, req[0].align), (POOL_SIZE, Some(POOL_SIZE)));
    }
}
