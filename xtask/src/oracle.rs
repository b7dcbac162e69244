//! `cargo xtask oracle`: check zonekit against fixtures recorded from a real Linux 6.1
//! kernel booted under QEMU: memblock fixtures (`tests/fixtures/linux-6.1/`, told apart
//! by `memblock_initial`) and /proc page-allocator fixtures
//! (`tests/fixtures/linux-6.1-proc/`, told apart by `zoneinfo` + `min_free_kbytes`).
//!
//! Only the fixture's inputs are read (board, RAM, command line, LPAE, the memblock
//! state at the `MEMBLOCK configuration` dump and the requests in `ops`); `derived`
//! and `checks` are the extractor's own arithmetic and are never looked at. Every
//! number is then produced by zonekit's own code paths (`add_memory`,
//! `Arm32::lowmem_bounds`, `zone_sizes_init`, memblock, `free_area_init_node`,
//! `memblock_free_all`, `init_per_zone_wmark_min`) and compared with what Linux printed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use zonekit_arch_arm::bootmem::{add_memory, zone_sizes_init, BootMemblock};
use zonekit_arch_arm::limits::{early_vmalloc, find_limits, Arm32};
use zonekit_core::addr::{pfn_down, pfn_phys, pfn_up, MemRange};
use zonekit_core::arch::{ArchLimits, MmConfig};
use zonekit_core::cma::{dma_contiguous_reserve, CmaAreas, CmaPlacement, LINUX_61_CMA_SIZE};
use zonekit_core::cmdline::Cmdline;
use zonekit_core::memblock::RegionFlags;
use zonekit_core::mmzone::{free_area_init_node, PgData, ZoneType, MAX_NR_ZONES};
use zonekit_core::page_alloc::memblock_free_all;
use zonekit_core::source::StaticMemoryMap;
use zonekit_core::storage::VecPageStorage;
use zonekit_core::watermark::{init_per_zone_wmark_min, WmarkInput};

/// Linux 6.1 armmp has CONFIG_ZONE_DMA with `arm_dma_limit = 0xffffffff`: ZONE_DMA
/// covers all of lowmem on every board here.
const LINUX_DMA_ZONE_SIZE: u64 = 1 << 32;

/// The fixture directories used when none are given: the memblock fixtures and the
/// /proc (page allocator) fixtures.
pub fn default_dirs(root: &Path) -> Vec<PathBuf> {
    vec![
        root.join("tests/fixtures/linux-6.1"),
        root.join("tests/fixtures/linux-6.1-proc"),
    ]
}

/// Physical RAM base of the board a fixture names (fixtures use zonekit's board names,
/// so the BSPs' tables answer).
fn ram_base(board: &str) -> Option<u64> {
    crate::boards::find(board).ok().map(|b| b.ram_base)
}

fn hex(v: &Value) -> Result<u64, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("expected a hex string, got {v}"))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("bad hex {s}: {e}"))
}

fn int(v: &Value) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("expected an integer, got {v}"))
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key)
        .filter(|x| !x.is_null())
        .ok_or_else(|| format!("missing field `{key}`"))
}

fn regions(v: &Value) -> Result<Vec<(u64, u64, u32)>, String> {
    v.as_array()
        .ok_or("expected an array of regions")?
        .iter()
        .map(|r| {
            Ok((
                hex(field(r, "base")?)?,
                hex(field(r, "size")?)?,
                r.get("flags").map(hex).transpose()?.unwrap_or(0) as u32,
            ))
        })
        .collect()
}

/// The outcome of one fixture.
pub struct Outcome {
    /// Fixture name (file stem).
    pub name: String,
    /// What the checks compared (for the log line).
    pub summary: String,
    /// Every mismatch, empty when the case passes.
    pub failures: Vec<String>,
}

impl Outcome {
    /// `Ok` when every check passed, else the mismatches joined.
    pub fn result(&self) -> Result<(), String> {
        if self.failures.is_empty() {
            Ok(())
        } else {
            Err(self.failures.join("; "))
        }
    }
}

/// Check every `*.json` in `dirs` (sorted per directory). A directory that cannot be
/// read is one failed outcome.
pub fn run_all(dirs: &[PathBuf]) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for dir in dirs {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect();
                found.sort();
                if found.is_empty() {
                    outcomes.push(Outcome {
                        name: dir.display().to_string(),
                        summary: String::new(),
                        failures: vec!["no *.json fixtures in this directory".into()],
                    });
                }
                outcomes.extend(found.iter().map(|p| run_file(p)));
            }
            Err(e) => outcomes.push(Outcome {
                name: dir.display().to_string(),
                summary: String::new(),
                failures: vec![format!("cannot read directory: {e}")],
            }),
        }
    }
    outcomes
}

/// Run every fixture in `dirs`, print one line per case, return (passed, failed).
pub fn run(dirs: &[PathBuf]) -> (usize, usize) {
    let (mut passed, mut failed) = (0, 0);
    for outcome in run_all(dirs) {
        match outcome.result() {
            Ok(()) => {
                passed += 1;
                println!("PASS {} ({})", outcome.name, outcome.summary);
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {}: {why}", outcome.name);
            }
        }
    }
    (passed, failed)
}

/// Check one fixture file.
pub fn run_file(path: &Path) -> Outcome {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let value = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str::<Value>(&s).map_err(|e| e.to_string()));
    match value {
        Err(e) => Outcome {
            name,
            summary: String::new(),
            failures: vec![format!("unreadable fixture: {e}")],
        },
        Ok(v) if v.get("memblock_initial").is_some() => check_memblock_case(name, &v),
        Ok(v) if v.get("zoneinfo").is_some() && v.get("min_free_kbytes").is_some() => {
            check_proc_case(name, &v)
        }
        Ok(_) => Outcome {
            name,
            summary: String::new(),
            failures: vec![
                "unknown fixture kind (neither `memblock_initial` nor `zoneinfo`)".into(),
            ],
        },
    }
}

fn check_memblock_case(name: String, v: &Value) -> Outcome {
    let mut failures = Vec::new();
    let mut summary = String::new();
    if let Err(e) = memblock_case(v, &mut failures, &mut summary) {
        failures.push(e);
    }
    Outcome {
        name,
        summary,
        failures,
    }
}

fn memblock_case(v: &Value, fail: &mut Vec<String>, summary: &mut String) -> Result<(), String> {
    let board = field(v, "board")?.as_str().ok_or("board is not a string")?;
    let ram_bytes = field(v, "ram_bytes")?.as_u64().ok_or("ram_bytes")?;
    let cmdline_text = field(v, "cmdline")?.as_str().unwrap_or("");
    let lpae = field(v, "lpae")?.as_bool().unwrap_or(false);
    let base = ram_base(board).ok_or_else(|| format!("unknown board {board}"))?;
    let mm = if lpae {
        MmConfig::LINUX_61_ARMMP_LPAE
    } else {
        MmConfig::LINUX_61_ARMMP
    };
    let cmdline = Cmdline::parse(cmdline_text);
    let initial = field(v, "memblock_initial")?;
    let want_memory = regions(field(initial, "memory")?)?;
    let want_reserved = regions(field(initial, "reserved")?)?;

    // 1. memblock.memory from RAM and the command line.
    let source = StaticMemoryMap::single_bank(base, ram_bytes);
    let mut mb = BootMemblock::new(mm.phys_addr_max);
    add_memory(&mut mb, &source, &cmdline).map_err(|e| format!("add_memory: {e}"))?;
    let got_memory: Vec<(u64, u64, u32)> = mb
        .memory
        .regions()
        .iter()
        .map(|r| (r.base, r.size, r.flags.0))
        .collect();
    if got_memory != want_memory {
        fail.push(format!(
            "memblock.memory {} != Linux {}",
            fmt_regions(&got_memory),
            fmt_regions(&want_memory)
        ));
    }

    // 2. Lowmem limit, zones, node ranges.
    let mut arch = Arm32::new(mm, base);
    if let Some(req) = cmdline.vmalloc_size {
        arch.vmalloc_size = early_vmalloc(req).0;
    }
    let banks: Vec<MemRange> = want_memory
        .iter()
        .map(|&(b, s, _)| MemRange::new(b, s))
        .collect();
    let lowmem_limit = arch.lowmem_bounds(&banks).lowmem_limit;
    let start = banks.first().map(|b| b.base).unwrap_or(0);
    let end = banks.last().map(|b| b.end()).unwrap_or(0);
    let limits = find_limits(start, end, lowmem_limit);
    let sizes = zone_sizes_init(&limits, &banks, Some(LINUX_DMA_ZONE_SIZE))
        .map_err(|e| format!("zone_sizes_init: {e}"))?;
    let ranges = sizes.zone_ranges(limits.min);
    for z in field(v, "zones_printed")?
        .as_array()
        .ok_or("zones_printed")?
    {
        let zname = field(z, "name")?.as_str().unwrap_or("");
        let zt = match zname {
            "DMA" => ZoneType::Dma,
            "Normal" => ZoneType::Normal,
            "HighMem" => ZoneType::HighMem,
            "Movable" => ZoneType::Movable,
            other => {
                fail.push(format!("unknown zone {other}"));
                continue;
            }
        };
        let (s, e) = ranges[zt as usize];
        let empty = z.get("empty").and_then(Value::as_bool).unwrap_or(false);
        if empty {
            if s != e {
                fail.push(format!(
                    "{zname}: zonekit {:#x}-{:#x}, Linux empty",
                    pfn_phys(s),
                    pfn_phys(e)
                ));
            }
        } else {
            let (ws, we) = (hex(field(z, "start")?)?, hex(field(z, "end")?)?);
            if (pfn_phys(s), pfn_phys(e)) != (ws, we) {
                fail.push(format!(
                    "{zname}: zonekit {:#x}-{:#x}, Linux {ws:#x}-{we:#x}",
                    pfn_phys(s),
                    pfn_phys(e)
                ));
            }
        }
    }
    let node_ranges: Vec<(u64, u64)> = banks
        .iter()
        .filter(|b| pfn_up(b.base) < pfn_down(b.end()))
        .map(|b| (pfn_phys(pfn_up(b.base)), pfn_phys(pfn_down(b.end()))))
        .collect();
    let want_nodes: Vec<(u64, u64)> = field(v, "node_ranges")?
        .as_array()
        .ok_or("node_ranges")?
        .iter()
        .map(|n| Ok((hex(field(n, "start")?)?, hex(field(n, "end")?)?)))
        .collect::<Result<_, String>>()?;
    if node_ranges != want_nodes {
        fail.push(format!(
            "node ranges {node_ranges:x?} != Linux {want_nodes:x?}"
        ));
    }
    let initmem = field(v, "initmem_setup")?;
    let want_initmem = (hex(field(initmem, "start")?)?, hex(field(initmem, "end")?)?);
    let got_initmem = (pfn_phys(limits.min), pfn_phys(limits.max_high));
    if got_initmem != want_initmem {
        fail.push(format!(
            "initmem {got_initmem:x?} != Linux {want_initmem:x?}"
        ));
    }

    // 2b. CMA: zonekit's dma_contiguous_reserve from the state before it.
    check_cma(
        v,
        &want_memory,
        &want_reserved,
        &cmdline,
        mm,
        lowmem_limit,
        fail,
    )?;

    // 3 + 4. Replay every op from the dumped state; free_area_init_node performs the
    // mem_map and usemap allocations itself.
    let mut mb = dumped_memblock(&want_memory, &want_reserved, mm)?;
    mb.set_current_limit(lowmem_limit);
    let ops = field(v, "ops")?.as_array().ok_or("ops")?;
    let ops_before = field(field(v, "memory")?, "ops_before")?
        .as_u64()
        .ok_or("ops_before")? as usize;
    let mut storage = VecPageStorage::default();
    let mut allocs = 0usize;
    let mut mismatches = 0usize;
    let mut free_counts = None;
    let mut node_total = None;
    let mut node = None;
    let mut i = 0;
    while i < ops.len() {
        if i == ops_before {
            free_counts = free_all(&mut node, &mb, limits.max_low);
        }
        let op = &ops[i];
        let kind = field(op, "op")?.as_str().unwrap_or("");
        let func = op.get("fn").and_then(Value::as_str).unwrap_or("");
        if kind == "alloc" && func == "memblock_alloc_try_nid_raw" && node_total.is_none() {
            // alloc_node_mem_map + setup_usemap, done by zonekit's own code.
            let n = free_area_init_node(
                &mut mb,
                &mut storage,
                &mm,
                0,
                &sizes.zone_size,
                limits.min,
                &sizes.zhole_size,
                0,
            )
            .map_err(|e| format!("free_area_init_node: {e:?}"))?;
            let mut made = vec![(n.mem_map_phys, n.mem_map_bytes)];
            for zt in ZoneType::ALL {
                let zone = &n.zones[zt as usize];
                if zone.usemap.is_some() {
                    made.push((zone.usemap_phys, zone.usemap_bytes));
                }
            }
            for (k, &(got_base, got_bytes)) in made.iter().enumerate() {
                let Some(lop) = ops.get(i + k) else {
                    fail.push("free_area_init_node made more allocations than Linux".into());
                    break;
                };
                let want_bytes = field(lop, "bytes")?.as_u64().ok_or("bytes")?;
                let want_base = hex(field(lop, "base")?)?;
                allocs += 1;
                if (got_base, got_bytes) != (want_base, want_bytes) {
                    mismatches += 1;
                    fail.push(format!(
                        "op {}: {} {} bytes @ {want_base:#x}, zonekit {got_bytes} bytes @ {got_base:#x}",
                        int(field(lop, "i")?)?,
                        if k == 0 { "mem_map" } else { "usemap" },
                        want_bytes
                    ));
                }
            }
            node_total = Some(n.zones.iter().map(|z| z.managed_pages).sum::<u64>());
            node = Some(n);
            i += made.len();
            continue;
        }
        match kind {
            "alloc" => {
                let bytes = field(op, "bytes")?.as_u64().ok_or("bytes")?;
                let align = hex(field(op, "align")?)?;
                let nid = int(field(op, "nid")?)? as i32;
                let from = hex(field(op, "from")?)?;
                let max_addr = hex(field(op, "max_addr")?)?;
                let want = op
                    .get("base")
                    .filter(|b| !b.is_null())
                    .map(hex)
                    .transpose()?;
                let got = if func == "memblock_alloc_try_nid_raw" {
                    mb.alloc_try_nid_raw(bytes, align, from, max_addr, nid).ok()
                } else {
                    mb.alloc_try_nid(&mut storage, bytes, align, from, max_addr, nid)
                        .ok()
                };
                allocs += 1;
                if got != want {
                    mismatches += 1;
                    if mismatches <= 3 {
                        fail.push(format!(
                            "op {}: {func}({bytes}, align {align:#x}) Linux {:x?}, zonekit {:x?}",
                            int(field(op, "i")?)?,
                            want,
                            got
                        ));
                    }
                }
            }
            "reserve" => {
                let (b, s) = (hex(field(op, "base")?)?, hex(field(op, "size")?)?);
                mb.reserve(b, s).map_err(|e| format!("reserve: {e}"))?;
            }
            "phys_free" => {
                let (b, s) = (hex(field(op, "base")?)?, hex(field(op, "size")?)?);
                mb.phys_free(b, s).map_err(|e| format!("phys_free: {e}"))?;
            }
            "remove" => {
                let (b, s) = (hex(field(op, "base")?)?, hex(field(op, "size")?)?);
                mb.remove(b, s).map_err(|e| format!("remove: {e}"))?;
            }
            "add" => {
                let (b, s) = (hex(field(op, "base")?)?, hex(field(op, "size")?)?);
                mb.add(b, s).map_err(|e| format!("add: {e}"))?;
            }
            other => fail.push(format!("unknown op kind {other}")),
        }
        i += 1;
    }
    if ops_before >= ops.len() {
        free_counts = free_all(&mut node, &mb, limits.max_low);
    }
    if mismatches > 3 {
        fail.push(format!("{} more alloc mismatches", mismatches - 3));
    }

    // 4. Total pages.
    let want_total = field(v, "total_pages")?.as_u64().ok_or("total_pages")?;
    match node_total {
        Some(t) if t == want_total => {}
        Some(t) => fail.push(format!("total pages {t} != Linux {want_total}")),
        None => fail.push("no mem_map allocation in ops".into()),
    }

    // 5. Pages memblock_free_all would release.
    let memory = field(v, "memory")?;
    let want_avail = field(memory, "available_k")?
        .as_u64()
        .ok_or("available_k")?
        / 4;
    let want_high = field(memory, "highmem_k")?.as_u64().ok_or("highmem_k")? / 4;
    if free_counts.is_none() {
        fail.push("no node to free pages into (no mem_map allocation before `Memory:`)".into());
    }
    if let Some((low, high)) = free_counts {
        if low + high != want_avail || high != want_high {
            fail.push(format!(
                "free-all releases {} pages ({high} highmem), Linux {want_avail} ({want_high} highmem)",
                low + high
            ));
        }
    }
    let _ = write!(
        summary,
        "{allocs} allocs exact, lowmem limit {lowmem_limit:#x}, {want_total} total pages, {want_avail} free"
    );
    Ok(())
}

/// memblock as the `MEMBLOCK configuration` dump shows it.
fn dumped_memblock(
    memory: &[(u64, u64, u32)],
    reserved: &[(u64, u64, u32)],
    mm: MmConfig,
) -> Result<BootMemblock, String> {
    let mut mb = BootMemblock::new(mm.phys_addr_max);
    for &(b, s, f) in memory {
        mb.add(b, s).map_err(|e| format!("replay add: {e}"))?;
        if f & RegionFlags::NOMAP.0 != 0 {
            mb.mark_nomap(b, s)
                .map_err(|e| format!("replay nomap: {e}"))?;
        }
    }
    for &(b, s, _) in reserved {
        mb.reserve(b, s)
            .map_err(|e| format!("replay reserve: {e}"))?;
    }
    Ok(mb)
}

/// CMA placement: take the dumped memblock, give back what the early ops show as
/// implicit (CMA) reservations, run zonekit's `dma_contiguous_reserve` as Linux 6.1
/// armmp runs it (`CONFIG_CMA_SIZE_MBYTES=16` unless `cma=`, `arm_dma_limit`
/// 0xffffffff, Linux 6.1's highmem leak on LPAE) and compare the area with the
/// fixture's `cma` and the reserved table with the dump's.
fn check_cma(
    v: &Value,
    memory: &[(u64, u64, u32)],
    reserved: &[(u64, u64, u32)],
    cmdline: &Cmdline,
    mm: MmConfig,
    highmem_start: u64,
    fail: &mut Vec<String>,
) -> Result<(), String> {
    let mut mb = dumped_memblock(memory, reserved, mm)?;
    for op in field(v, "early_ops")?.as_array().ok_or("early_ops")? {
        if op.get("implicit_alloc").and_then(Value::as_bool) == Some(true) {
            let (b, s) = (hex(field(op, "base")?)?, hex(field(op, "size")?)?);
            mb.phys_free(b, s).map_err(|e| format!("phys_free: {e}"))?;
        }
    }
    let mut areas = CmaAreas::new();
    let placement = CmaPlacement {
        phys_addr_64bit: mm.phys_addr_max > u64::from(u32::MAX),
        linux_61_highmem_leak: true,
    };
    let got = dma_contiguous_reserve(
        &mut mb,
        &mut areas,
        cmdline.cma,
        LINUX_61_CMA_SIZE,
        u64::from(u32::MAX),
        highmem_start,
        mm.pageblock_nr_pages() << 12,
        placement,
        false,
    )
    .map_err(|e| format!("dma_contiguous_reserve: {e}"))?;
    let want = match v.get("cma").filter(|c| !c.is_null()) {
        Some(c) => Some((hex(field(c, "base")?)?, hex(field(c, "size")?)?)),
        None => None,
    };
    let got_pair = got.map(|a| (a.base, a.size));
    if got_pair != want {
        fail.push(format!("CMA area zonekit {got_pair:x?}, Linux {want:x?}"));
    }
    let got_reserved: Vec<(u64, u64)> = mb.reserved_ranges().map(|r| (r.base, r.size)).collect();
    let want_reserved: Vec<(u64, u64)> = reserved.iter().map(|&(b, s, _)| (b, s)).collect();
    if got_reserved != want_reserved {
        fail.push(format!(
            "reserved after CMA {got_reserved:x?} != Linux {want_reserved:x?}"
        ));
    }
    let want_k = field(field(v, "memory")?, "cma_reserved_k")?
        .as_u64()
        .ok_or("cma_reserved_k")?;
    if areas.total_bytes() >> 10 != want_k {
        fail.push(format!(
            "cma-reserved {}K, Linux {want_k}K",
            areas.total_bytes() >> 10
        ));
    }
    Ok(())
}

/// Run zonekit's `memblock_free_all` on the node at the memblock state Linux had at its
/// `Memory:` line; returns (lowmem, highmem) pages released.
fn free_all(
    node: &mut Option<PgData<VecPageStorage>>,
    mb: &BootMemblock,
    max_low: u64,
) -> Option<(u64, u64)> {
    let node = node.as_mut()?;
    let stats = memblock_free_all(node, mb, max_low);
    Some((stats.lowmem_pages, stats.highmem_pages))
}

fn fmt_regions(r: &[(u64, u64, u32)]) -> String {
    r.iter()
        .map(|(b, s, f)| format!("[{b:#x}+{s:#x} f{f:#x}]"))
        .collect::<Vec<_>>()
        .join(" ")
}

const ZONE_NAMES: [&str; MAX_NR_ZONES] = ["DMA", "Normal", "HighMem", "Movable"];

fn check_proc_case(name: String, v: &Value) -> Outcome {
    let mut failures = Vec::new();
    let mut summary = String::new();
    if let Err(e) = proc_case(v, &mut failures, &mut summary) {
        failures.push(e);
    }
    Outcome {
        name,
        summary,
        failures,
    }
}

/// The /proc oracle: from the inputs the README names (online CPUs, LPAE, THP mode,
/// the sysctls, and each zone's managed pages when Linux set its watermarks), zonekit's
/// `init_per_zone_wmark_min` must give Linux's `min_free_kbytes`, every zone's
/// min/low/high and protection, and each pageset's batch, high and stat threshold.
fn proc_case(v: &Value, fail: &mut Vec<String>, summary: &mut String) -> Result<(), String> {
    let u = |v: &Value, what: &str| {
        v.as_u64()
            .ok_or_else(|| format!("`{what}` is not a number"))
    };
    let lpae = field(v, "lpae")?.as_bool().unwrap_or(false);
    let zoneinfo = field(v, "zoneinfo")?.as_array().ok_or("zoneinfo")?;
    let managed_in = field(field(v, "model")?, "managed")?;
    let mut managed = [0u64; MAX_NR_ZONES];
    let mut populated = [false; MAX_NR_ZONES];
    for (i, zname) in ZONE_NAMES.iter().enumerate() {
        managed[i] = u(
            field(field(managed_in, zname)?, "at_watermark_setup")?,
            "at_watermark_setup",
        )?;
        let z = zoneinfo
            .iter()
            .find(|z| z.get("name").and_then(Value::as_str) == Some(zname))
            .ok_or_else(|| format!("zoneinfo has no zone {zname}"))?;
        populated[i] = u(field(z, "present")?, "present")? > 0;
    }
    let ratio: Vec<u64> = field(v, "lowmem_reserve_ratio")?
        .as_array()
        .ok_or("lowmem_reserve_ratio")?
        .iter()
        .map(|x| u(x, "lowmem_reserve_ratio"))
        .collect::<Result<_, _>>()?;
    if ratio.len() != MAX_NR_ZONES {
        return Err(format!("lowmem_reserve_ratio has {} entries", ratio.len()));
    }
    let mm = if lpae {
        MmConfig::LINUX_61_ARMMP_LPAE
    } else {
        MmConfig::LINUX_61_ARMMP
    };
    let input = WmarkInput {
        managed,
        populated,
        nr_cpus: u(field(v, "cpus_online")?, "cpus_online")? as u32,
        // Null when the kernel has no THP (the non-LPAE build).
        thp: v
            .get("thp_enabled")
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains("[always]")),
        pageblock_nr_pages: mm.pageblock_nr_pages(),
        lowmem_reserve_ratio: [ratio[0], ratio[1], ratio[2], ratio[3]],
        watermark_scale_factor: u(
            field(v, "watermark_scale_factor")?,
            "watermark_scale_factor",
        )?,
        percpu_pagelist_high_fraction: v
            .get("percpu_pagelist_high_fraction")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        min_free_kbytes: None,
    };
    let t = init_per_zone_wmark_min(&input);
    let want_mfk = u(field(v, "min_free_kbytes")?, "min_free_kbytes")?;
    if t.min_free_kbytes != want_mfk {
        fail.push(format!(
            "min_free_kbytes {} != Linux {want_mfk}",
            t.min_free_kbytes
        ));
    }
    let mut pagesets = 0;
    for z in zoneinfo {
        let zname = field(z, "name")?.as_str().unwrap_or("");
        let Some(i) = ZONE_NAMES.iter().position(|n| *n == zname) else {
            fail.push(format!("unknown zone {zname}"));
            continue;
        };
        let w = t.wmark[i];
        let want = (
            u(field(z, "min")?, "min")?,
            u(field(z, "low")?, "low")?,
            u(field(z, "high")?, "high")?,
        );
        if (w.min, w.low, w.high) != want {
            fail.push(format!(
                "{zname} min/low/high {:?} != Linux {want:?}",
                (w.min, w.low, w.high)
            ));
        }
        let prot: Vec<u64> = field(z, "protection")?
            .as_array()
            .ok_or("protection")?
            .iter()
            .map(|x| u(x, "protection"))
            .collect::<Result<_, _>>()?;
        if t.lowmem_reserve[i].to_vec() != prot {
            fail.push(format!(
                "{zname} protection {:?} != Linux {prot:?}",
                t.lowmem_reserve[i]
            ));
        }
        for ps in z
            .get("pagesets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            pagesets += 1;
            let got = (t.pcp_batch[i] as u64, t.pcp_high[i] as u64);
            let want = (
                u(field(ps, "batch")?, "batch")?,
                u(field(ps, "high")?, "high")?,
            );
            if got != want {
                fail.push(format!(
                    "{zname} pageset batch/high {got:?} != Linux {want:?}"
                ));
            }
        }
    }
    let _ = write!(
        summary,
        "min_free_kbytes {want_mfk}, {} zones, {pagesets} pagesets",
        zoneinfo.len()
    );
    Ok(())
}
