//! `--dtb auto`: a board device tree written by xtask with `vm-fdt`.
//!
//! The blob has what zonekit reads from a real bootloader's tree: a `/memory` node
//! (QEMU rewrites it to match `-m`), `/chosen` with the command line (QEMU replaces
//! `bootargs` with `-append`), and a `/reserved-memory` node with a static region and
//! a dynamic pool that memblock must place; the `nomap` variant adds a `no-map`
//! region, which shows up as a hole in the linear map.

use std::path::{Path, PathBuf};

use vm_fdt::FdtWriter;
use zonekit_arch_arm::board::BoardDesc;

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
}

impl DtbMode {
    /// Parse `--dtb auto|auto-nomap|none|PATH`.
    pub fn parse(s: &str) -> DtbMode {
        match s {
            "auto" => DtbMode::Auto,
            "auto-nomap" => DtbMode::AutoNomap,
            "none" => DtbMode::None,
            path => DtbMode::File(PathBuf::from(path)),
        }
    }
}

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
    w.property_string("bootargs", cmdline).map_err(e)?;
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

/// The `-dtb` file for a boot, written under `dir` when generated; `None` for ATAGS.
pub fn dtb_for(
    mode: &DtbMode,
    board: &BoardDesc,
    mem: u64,
    cmdline: &str,
    dir: &Path,
) -> Result<Option<PathBuf>, String> {
    let nomap = match mode {
        DtbMode::None => return Ok(None),
        DtbMode::File(p) => return Ok(Some(p.clone())),
        DtbMode::Auto => false,
        DtbMode::AutoNomap => true,
    };
    let blob = board_dtb(board, mem, cmdline, nomap)?;
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
    let name = format!(
        "{}-{}M{}{tag}.dtb",
        board.name,
        mem >> 20,
        if nomap { "-nomap" } else { "" }
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use zonekit_arch_arm::board::BOARDS;
    use zonekit_arch_arm::fdt::FdtMemory;
    use zonekit_core::addr::MemRange;
    use zonekit_core::MemorySource;

    #[test]
    fn generated_tree_parses_back() {
        let board = &BOARDS[0];
        let blob = board_dtb(board, 512 << 20, "memblock=debug", true).unwrap();
        // The parser wants a 4-byte aligned buffer, which the heap gives.
        assert_eq!(blob.as_ptr() as usize % 4, 0);
        let m = FdtMemory::parse(&blob, u32::MAX as u64).unwrap();
        assert_eq!(
            m.memory.as_slice(),
            &[MemRange::new(board.ram_base, 512 << 20)]
        );
        assert_eq!(m.cmdline(), "memblock=debug");
        assert_eq!(
            m.reserved_ranges().unwrap().as_slice(),
            &[MemRange::new(
                board.ram_base + STATIC_RESERVED_OFFSET,
                STATIC_RESERVED_SIZE
            )]
        );
        assert_eq!(
            m.nomap_ranges().unwrap().as_slice(),
            &[MemRange::new(board.ram_base + NOMAP_OFFSET, NOMAP_SIZE)]
        );
        let req = m.reservation_requests();
        assert_eq!(req.len(), 1);
        assert_eq!((req[0].size, req[0].align), (POOL_SIZE, Some(POOL_SIZE)));
    }
}
