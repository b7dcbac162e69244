//! `cargo xtask sim`: the guest's boot flow ([`zonekit_arch_arm::flow::run`]) on the
//! host, with simulated RAM ([`VecPageStorage`]) and the boot information QEMU would
//! hand over, so it prints the same log as `cargo xtask qemu` for the same inputs.
//!
//! What QEMU 7.2's `hw/arm/boot.c` does and is reproduced here:
//! * with a DTB (`-dtb`): the file is opened with room to grow (`load_device_tree`:
//!   `totalsize = (file size + 10000) * 2`), its `/memory` nodes are replaced by one
//!   describing `-m` and `/chosen/bootargs` set from `-append` ([`dtb::qemu_load_dtb`],
//!   for generated trees and files alike), and the blob is placed at
//!   `RAM base + min(RAM / 2, 128 MiB)`, page aligned; r2 points at it;
//! * without one: ATAGS at `RAM base + 0x100` (`CORE`, `MEM(size, base)`, `CMDLINE`
//!   when `-append` is not empty, `NONE`); r2 points at them;
//! * r1 is the board's machine number.
//!
//! The kernel image range (`__image_start..__image_end`) is read from the board's ELF
//! under `target/arm/` when it has been built; otherwise [`DEFAULT_IMAGE_SIZE`] from the
//! load address is assumed (and said so on stderr).
//!
//! # What the guest would trip on
//!
//! Simulated storage is as large as it is asked to be, so a boot that describes more
//! memory than QEMU's `-m` gives would pass here and hang on QEMU. The simulated RAM
//! is therefore `[RAM base, RAM base + -m)`, and the run fails ([`SimRun::faults`],
//! exit [`EXIT_SIM_FAULT`]) when the kernel image or the boot information does not lie
//! inside it, when memblock.memory reaches past it, or when a page table, the
//! `mem_map` or a usemap is placed outside it: the guest would not load, or would
//! hang or fault at the first write there.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use zonekit_arch_arm::atags::AtagsBuilder;
use zonekit_arch_arm::board::{BoardDesc, ATAGS_OFFSET};
use zonekit_arch_arm::bootmem::{BootMemblock, BootParams, BootedMemory};
use zonekit_arch_arm::flow::{self, BootBlob, FlowInput, FlowOutcome};
use zonekit_core::addr::{pfn_down, pfn_phys, pfn_up, MemRange};
use zonekit_core::memblock::RegionFlags;
use zonekit_core::mmzone::ZoneType;
use zonekit_core::source::{for_each_of_kind, Region, RegionKind};
use zonekit_core::storage::VecPageStorage;

use crate::dtb::{self, DtbMode};

mod hooks;
use hooks::{Handed, SimHooks, SimStorage};

const MIB: u64 = 1 << 20;

/// Image size assumed when no built ELF is found: the debug vexpress-a9 image of this
/// tree (code, data, .bss and the 512 KiB boot stack), rounded to pages.
pub const DEFAULT_IMAGE_SIZE: u64 = 0x10_6000;

/// Where the MMU self-test's probe buffer is assumed without an ELF: inside the
/// assumed image, word aligned.
const DEFAULT_PROBE_OFFSET: u64 = 0x4_0000;

/// Exit status of `cargo xtask sim` when the guest would fault or hang ([`SimRun::faults`]);
/// the guest's own exit status for an exception is 3 too.
pub const EXIT_SIM_FAULT: u8 = 3;

/// The simulated RAM, `-m` bytes from the board's RAM base, and what was found
/// outside it.
#[derive(Clone, Debug)]
struct Ram {
    range: MemRange,
    mem: u64,
    faults: Arc<Mutex<Vec<String>>>,
}

impl Ram {
    /// Record a fault unless `r` lies inside RAM.
    fn check(&self, r: MemRange, what: &str, consequence: &str) {
        if r.size == 0 || (self.range.base <= r.base && r.end() <= self.range.end()) {
            return;
        }
        let fault = format!(
            "{what} {r} is outside the simulated RAM {} (-m {}): {consequence}",
            self.range,
            crate::size_name(self.mem)
        );
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        if !faults.contains(&fault) {
            faults.push(fault);
        }
    }

    /// Record a fault for every memblock.memory region outside RAM.
    fn check_memblock(&self, mb: &BootMemblock) {
        for r in mb.memory.regions() {
            self.check(
                MemRange::new(r.base, r.size),
                "memblock.memory",
                "the guest would use memory that does not exist (and hang or fault there)",
            );
        }
    }
}

/// What one simulated boot takes.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// The board.
    pub board: &'static BoardDesc,
    /// RAM size (`-m`).
    pub mem: u64,
    /// `-append`.
    pub cmdline: Option<String>,
    /// `--dtb`.
    pub dtb: DtbMode,
    /// Read the image range from the release ELF instead of the debug one.
    pub release: bool,
    /// The kernel image to assume instead of reading the ELF (a golden log records
    /// the one it was made with).
    pub image: Option<ImageLayout>,
    /// The device tree QEMU generated itself (its `dumpdtb`), handed over unchanged
    /// instead of the one `dtb` names: the board boots from QEMU's tree.
    pub qemu_tree: Option<Vec<u8>>,
    /// CPUs the machine has (QEMU's `-smp`): with more than one (and the command
    /// line allowing them) the concurrent page allocator test runs on as many host
    /// threads, as the guest runs it on its CPUs.
    pub cpus: u32,
}

/// Where the kernel image lies, as far as the boot log shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLayout {
    /// `__image_start..__image_end`.
    pub range: MemRange,
    /// The MMU self-test's probe buffer (`zonekit_mmu_probe`).
    pub probe: u64,
}

/// Who owns a reserved (or no-map) range of the memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// `__image_start..__image_end`.
    KernelImage,
    /// The first page of RAM: QEMU's boot stub and the ATAGS.
    BootData,
    /// The device tree blob.
    Dtb,
    /// `mem_map` (the page descriptors).
    MemMap,
    /// The pageblock-flags usemaps.
    Usemap,
    /// `/reserved-memory` with `reg` (and `/memreserve/`, the initrd).
    ReservedStatic,
    /// `/reserved-memory` with `size`, placed by memblock.
    ReservedDynamic,
    /// `no-map` regions: memory outside the linear map.
    NoMap,
    /// Other memblock allocations (the node's zone tables, ...).
    BootAlloc,
}

impl Owner {
    /// Human name, for labels and the legend.
    pub fn name(self) -> &'static str {
        match self {
            Owner::KernelImage => "kernel image",
            Owner::BootData => "boot data (stub, ATAGS page)",
            Owner::Dtb => "DTB",
            Owner::MemMap => "mem_map",
            Owner::Usemap => "usemap",
            Owner::ReservedStatic => "reserved-memory (static)",
            Owner::ReservedDynamic => "reserved-memory (dynamic)",
            Owner::NoMap => "no-map",
            Owner::BootAlloc => "boot allocations",
        }
    }
}

/// The physical memory map at the end of `bootmem_init`, with owners.
#[derive(Clone, Debug, Default)]
pub struct MemoryMap {
    /// memblock.memory, with each region's NOMAP flag.
    pub memory: Vec<(MemRange, bool)>,
    /// Non-empty zones: name and `[start, end)` physical range.
    pub zones: Vec<(&'static str, MemRange)>,
    /// Reserved and no-map ranges by owner, sorted by address, not overlapping.
    pub owned: Vec<(Owner, MemRange)>,
    /// Memory that memblock hands to the buddy allocator (whole pages).
    pub free: Vec<MemRange>,
}

/// The result of one simulated boot.
pub struct SimRun {
    /// Every log line, as the guest console would show it.
    pub lines: Vec<String>,
    /// How the flow ended.
    pub outcome: FlowOutcome,
    /// The memory map, when the boot got through `bootmem_init`.
    pub map: Option<MemoryMap>,
    /// Notes about the simulation itself (for stderr).
    pub notes: Vec<String>,
    /// What the guest would trip on that the simulated storage does not (see the
    /// module docs); empty when nothing.
    pub faults: Vec<String>,
}

impl SimRun {
    /// The exit status the guest would have: [`EXIT_SIM_FAULT`] when there are
    /// faults, else the flow's.
    pub fn exit_code(&self) -> u8 {
        if self.faults.is_empty() {
            self.outcome.exit_code() as u8
        } else {
            EXIT_SIM_FAULT
        }
    }

    /// One line: the flow's outcome, or the first fault.
    pub fn verdict(&self) -> String {
        match self.faults.first() {
            None => self.outcome.to_string(),
            Some(f) => format!("the guest would fail: {f}"),
        }
    }
}

/// Where log records go: optionally printed, always captured.
struct Sink {
    print: bool,
    lines: Vec<String>,
}

static SINK: Mutex<Sink> = Mutex::new(Sink {
    print: false,
    lines: Vec::new(),
});

/// One simulated boot at a time: the logger is global.
static RUN_LOCK: Mutex<()> = Mutex::new(());

fn sink() -> std::sync::MutexGuard<'static, Sink> {
    SINK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The guest console's logger: the message and a newline; warnings and errors marked
/// as the guest marks them.
struct SimLogger;

impl log::Log for SimLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Debug
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let prefix = match record.level() {
            log::Level::Error => "zonekit: error: ",
            log::Level::Warn => "zonekit: warning: ",
            _ => "",
        };
        let mut s = sink();
        let line = format!("{prefix}{}", record.args());
        if s.print {
            println!("{line}");
        }
        s.lines.push(line);
    }

    fn flush(&self) {}
}

static LOGGER: SimLogger = SimLogger;

fn install_logger() {
    // A second call (another run in the same process) finds it installed already.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
}

/// The image layout from the board's ELF, or the documented default.
pub fn kernel_image(board: &BoardDesc, release: bool) -> (ImageLayout, String) {
    let elf = elf_path(board, release);
    match image_symbols(&elf) {
        Ok(l) => (
            l,
            format!(
                "xtask: sim: kernel image {:#x}-{:#x} (probe buffer {:#x}) from {}",
                l.range.base,
                l.range.end(),
                l.probe,
                elf.display()
            ),
        ),
        Err(why) => {
            let range = MemRange::new(board.load_address(), DEFAULT_IMAGE_SIZE);
            let l = ImageLayout {
                range,
                probe: range.base + DEFAULT_PROBE_OFFSET,
            };
            (
                l,
                format!(
                    "xtask: sim: {why}; assuming the kernel image is {:#x}-{:#x} (load address + {:#x}, probe buffer at {:#x}); `cargo xtask qemu --board {}` builds it",
                    range.base,
                    range.end(),
                    DEFAULT_IMAGE_SIZE,
                    l.probe,
                    board.name
                ),
            )
        }
    }
}

fn image_symbols(elf: &Path) -> Result<ImageLayout, String> {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(elf).map_err(|e| format!("no board ELF at {}: {e}", elf.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
    let sym = |name: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
            .ok_or_else(|| format!("{} has no {name}", elf.display()))
    };
    let (start, end) = (sym("__image_start")?, sym("__image_end")?);
    Ok(ImageLayout {
        range: MemRange::new(start, end.saturating_sub(start)),
        probe: sym("zonekit_mmu_probe")?,
    })
}

fn qemu_dtb(opts: &SimOptions, cmdline: &str) -> Result<Option<(Vec<u8>, u64)>, String> {
    let (board, mem) = (opts.board, opts.mem);
    let at = opts.board.ram_base + (opts.mem / 2).min(128 * MIB);
    let at = (at + 0xfff) & !0xfff;
    if let Some(tree) = &opts.qemu_tree {
        return Ok(Some((tree.clone(), at)));
    }
    let file = match &opts.dtb {
        DtbMode::None => return Ok(None),
        DtbMode::Auto => dtb::board_dtb(board, mem, cmdline, false)?,
        DtbMode::AutoNomap => dtb::board_dtb(board, mem, cmdline, true)?,
        DtbMode::Test(t) => dtb::test_dtb(*t, board, mem, cmdline)?,
        DtbMode::File(p) => {
            std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?
        }
    };
    let blob = dtb::qemu_load_dtb(&file, board, mem, cmdline)?;
    Ok(Some((blob, at)))
}

/// The ATAGS QEMU writes for a boot without a DTB.
fn qemu_atags(board: &BoardDesc, mem: u64, cmdline: &str) -> Result<Vec<u8>, String> {
    let mut b = AtagsBuilder::new()
        .core()
        .and_then(|b| b.mem(board.ram_base as u32, mem as u32));
    if !cmdline.is_empty() {
        b = b.and_then(|b| b.cmdline(cmdline));
    }
    let words = b
        .and_then(|b| b.finish())
        .ok_or("the ATAGS do not fit (command line too long?)")?;
    Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

/// Run the guest's flow on the host; with `print`, log lines go to stdout as they come.
pub fn run(opts: &SimOptions, print: bool) -> Result<SimRun, String> {
    let _one = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cmdline = opts.cmdline.clone().unwrap_or_default();
    let (image, note) = match opts.image {
        Some(l) => (
            l,
            format!(
                "xtask: sim: kernel image {} (probe buffer {:#x}) as given",
                l.range, l.probe
            ),
        ),
        None => kernel_image(opts.board, opts.release),
    };
    let mut notes = vec![note];
    if let DtbMode::File(p) = &opts.dtb {
        notes.push(format!(
            "xtask: sim: {} is edited as QEMU's arm_load_dtb edits it (/memory from -m, /chosen/bootargs from -append)",
            p.display()
        ));
    }
    let dtb = qemu_dtb(opts, &cmdline)?;
    let atags = match dtb {
        None => Some(qemu_atags(opts.board, opts.mem, &cmdline)?),
        Some(_) => None,
    };
    let (blob, r2, dtb_range) = match (&dtb, &atags) {
        (Some((bytes, at)), _) => (
            BootBlob::Dtb {
                addr: *at,
                blob: Ok(&bytes[..]),
            },
            *at,
            Some(MemRange::new(*at, bytes.len() as u64)),
        ),
        (None, Some(bytes)) => {
            let at = opts.board.ram_base + ATAGS_OFFSET;
            (
                BootBlob::Atags {
                    addr: at,
                    bytes: &bytes[..],
                },
                at,
                None,
            )
        }
        (None, None) => unreachable!("either a DTB or ATAGS is built"),
    };
    let input = FlowInput {
        board: opts.board,
        r1: opts.board.machine_id,
        r2: r2 as u32,
        blob,
        kernel_image: image.range,
    };
    // What QEMU itself needs inside RAM: the image it loads, the boot information
    // it writes.
    let ram = Ram {
        range: MemRange::new(opts.board.ram_base, opts.mem),
        mem: opts.mem,
        faults: Arc::new(Mutex::new(Vec::new())),
    };
    let not_loaded = "QEMU refuses to load it (the guest does not start)";
    ram.check(image.range, "the kernel image", not_loaded);
    match (&dtb, &atags) {
        (Some(_), _) => {
            if let Some(r) = dtb_range {
                ram.check(r, "the DTB", not_loaded);
            }
        }
        (None, Some(bytes)) => ram.check(
            MemRange::new(r2, bytes.len() as u64),
            "the ATAGS",
            not_loaded,
        ),
        (None, None) => {}
    }
    let record = Arc::new(Mutex::new(Vec::new()));
    let storage = SimStorage {
        inner: VecPageStorage::default(),
        record: record.clone(),
        ram: ram.clone(),
    };
    let mut hooks = SimHooks::new(opts.board, record, dtb_range, ram.clone(), image.probe);
    hooks.cpus = opts.cpus;
    install_logger();
    {
        let mut s = sink();
        s.print = print;
        s.lines.clear();
    }
    let outcome = flow::run(input, storage, &mut hooks);
    let lines = std::mem::take(&mut sink().lines);
    let faults = ram
        .faults
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(SimRun {
        lines,
        outcome,
        map: hooks.map,
        notes,
        faults,
    })
}

/// Subtract every range of `cut` from `r`.
fn subtract(r: MemRange, cut: &[MemRange]) -> Vec<MemRange> {
    let mut pieces = vec![r];
    for c in cut.iter().filter(|c| c.size > 0) {
        let mut next = Vec::new();
        for p in pieces {
            if c.end() <= p.base || c.base >= p.end() {
                next.push(p);
                continue;
            }
            if c.base > p.base {
                next.push(MemRange::new(p.base, c.base - p.base));
            }
            if c.end() < p.end() {
                next.push(MemRange::new(c.end(), p.end() - c.end()));
            }
        }
        pieces = next;
    }
    pieces
}

/// The memory map at the end of `bootmem_init`, reserved ranges attributed to owners.
fn memory_map(
    params: &BootParams<'_>,
    booted: &BootedMemory<SimStorage>,
    dtb: Option<MemRange>,
    handed: &[(Handed, MemRange)],
) -> MemoryMap {
    let mb = &booted.memblock;
    let memory: Vec<(MemRange, bool)> = mb
        .memory
        .regions()
        .iter()
        .map(|r| {
            (
                MemRange::new(r.base, r.size),
                r.flags.contains(RegionFlags::NOMAP),
            )
        })
        .collect();
    let zones = booted
        .zone_sizes
        .zone_ranges(booted.limits.min)
        .iter()
        .enumerate()
        .filter(|(_, (s, e))| e > s)
        .map(|(i, (s, e))| {
            (
                ZoneType::from_index(i).name(),
                MemRange::new(pfn_phys(*s), pfn_phys(*e) - pfn_phys(*s)),
            )
        })
        .collect();

    let mut known: Vec<(Owner, MemRange)> = Vec::new();
    known.push((Owner::KernelImage, params.kernel_image));
    for r in params.boot_data {
        known.push((Owner::BootData, *r));
    }
    // The source's fixed reservations, in its order (the map is drawn after a boot
    // that read them all, so a walk cannot fail here).
    for kind in [RegionKind::Reserved, RegionKind::NoMap] {
        let _ = for_each_of_kind(params.source, kind, &mut |region| {
            match region {
                Region::Reserved(r) if Some(r) == dtb => known.push((Owner::Dtb, r)),
                Region::Reserved(r) => known.push((Owner::ReservedStatic, r)),
                Region::NoMap(r) => known.push((Owner::NoMap, r)),
                _ => {}
            }
            Ok(())
        });
    }
    for r in &booted.dynamic_reservations {
        known.push((Owner::ReservedDynamic, *r));
    }
    for (kind, r) in handed {
        let owner = match kind {
            Handed::MemMap => Owner::MemMap,
            Handed::Bitmap => Owner::Usemap,
        };
        known.push((owner, *r));
    }
    // Whatever memblock reserved that no one above claims: boot allocations.
    let claimed: Vec<MemRange> = known.iter().map(|k| k.1).collect();
    let mut owned = known;
    for r in mb.reserved_ranges() {
        for piece in subtract(r, &claimed) {
            owned.push((Owner::BootAlloc, piece));
        }
    }
    owned.retain(|(_, r)| r.size > 0);
    owned.sort_by_key(|(o, r)| (r.base, *o));

    let taken: Vec<MemRange> = owned.iter().map(|o| o.1).collect();
    let free = memory
        .iter()
        .filter(|(_, nomap)| !nomap)
        .flat_map(|(r, _)| subtract(*r, &taken))
        .filter_map(|r| {
            // memblock_free_all releases whole pages only.
            let start = pfn_phys(pfn_up(r.base));
            let end = pfn_phys(pfn_down(r.end()));
            (end > start).then(|| MemRange::new(start, end - start))
        })
        .collect();
    MemoryMap {
        memory,
        zones,
        owned,
        free,
    }
}

/// The simulator's options for the command line's boot (`sim`, `memmap`), checked as
/// `qemu` checks them.
pub fn sim_options(args: &crate::cli::BootArgs, smp: u32) -> Result<SimOptions, String> {
    let board = args.board;
    if args.mem > board.max_ram {
        return Err(format!(
            "{} supports at most {} of RAM here",
            board.name,
            crate::size_name(board.max_ram)
        ));
    }
    // ATAGS on a board whose profile refuses them: the same error as `qemu`.
    if args.dtb == DtbMode::None {
        crate::boards::effective_dtb(board, &args.dtb)?;
    }
    Ok(SimOptions {
        board: board.desc,
        mem: args.mem,
        cmdline: args.cmdline.clone(),
        dtb: args.dtb.clone(),
        release: args.release,
        image: None,
        qemu_tree: None,
        cpus: smp,
    })
}

/// `cargo xtask sim --board B --mem SIZE [--cmdline STR] [--dtb auto|auto-nomap|none|test:NAME|PATH] [--release]`.
pub fn cmd_sim(opts: &SimOptions) -> Result<u8, String> {
    let started = std::time::Instant::now();
    let run = run(opts, true)?;
    for n in &run.notes {
        eprintln!("{n}");
    }
    for f in &run.faults {
        eprintln!("xtask: sim: FAIL: {f}");
    }
    eprintln!(
        "xtask: sim: {} in {:.3} s",
        run.verdict(),
        started.elapsed().as_secs_f64()
    );
    Ok(run.exit_code())
}

pub use crate::sim_compare::compare_logs;
#[cfg(test)]
use crate::sim_compare::is_compared_line;

/// The board's ELF as `cargo xtask qemu` builds it.
pub fn elf_path(board: &BoardDesc, release: bool) -> PathBuf {
    crate::workspace_root()
        .join("target/arm/armv7a-none-eabi")
        .join(if release { "release" } else { "debug" })
        .join(board.name)
}

/// The image range of the board's debug `defmt` build (its own target directory).
pub fn defmt_kernel_image(board: &BoardDesc) -> Result<ImageLayout, String> {
    let elf = crate::workspace_root()
        .join("target/arm-defmt/armv7a-none-eabi/debug")
        .join(board.name);
    image_symbols(&elf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonekit_arch_arm::bootmem::BootError;

    fn opts(board: &str, mem: u64, dtb: DtbMode, cmdline: Option<&str>) -> SimOptions {
        SimOptions {
            board: crate::find_board(board).unwrap(),
            mem,
            cmdline: cmdline.map(str::to_string),
            dtb,
            release: false,
            image: None,
            qemu_tree: None,
            cpus: 1,
        }
    }

    #[test]
    fn sim_boots_vexpress_a9_1g_like_the_guest() {
        let run = run(&opts("vexpress-a9", 1 << 30, DtbMode::Auto, None), false).unwrap();
        assert_eq!(run.outcome, FlowOutcome::Passed, "{:#?}", run.lines);
        let has = |l: &str| run.lines.iter().any(|x| x == l);
        assert!(has("zonekit: booting on vexpress-a9"));
        assert!(has("zonekit: memory from DTB at 0x68000000"));
        assert!(has(
            "  Normal   [mem 0x0000000060000000-0x000000008fffffff]"
        ));
        assert!(has(
            "  HighMem  [mem 0x0000000090000000-0x000000009fffffff]"
        ));
        assert!(has("On node 0 totalpages: 262144"));
        assert!(has("zonekit: self-check passed"));
        let map = run.map.unwrap();
        assert_eq!(map.zones.len(), 2);
        assert!(
            map.owned
                .iter()
                .any(|(o, r)| *o == Owner::Dtb && r.base == 0x6800_0000 && r.size > 20_000),
            "{:#x?}",
            map.owned
        );
        assert!(map.owned.iter().any(|(o, _)| *o == Owner::MemMap));
        assert!(map
            .owned
            .iter()
            .any(|(o, r)| *o == Owner::ReservedDynamic && r.base == 0x9ff0_0000));
    }

    #[test]
    fn sim_atags_and_cmdline() {
        let run = run(
            &opts(
                "sabrelite",
                512 << 20,
                DtbMode::None,
                Some("memblock=debug"),
            ),
            false,
        )
        .unwrap();
        assert_eq!(run.outcome, FlowOutcome::Passed);
        assert!(run.lines.iter().any(|l| l == "zonekit: memory from ATAGS"));
        assert!(run
            .lines
            .iter()
            .any(|l| l == "Kernel command line: memblock=debug"));
        assert!(run.lines.iter().any(|l| l == "MEMBLOCK configuration:"));
    }

    #[test]
    fn sim_mem_larger_than_ram_is_clipped_with_warning() {
        let run = run(
            &opts("vexpress-a9", 512 << 20, DtbMode::Auto, Some("mem=8G")),
            false,
        )
        .unwrap();
        assert_eq!(run.outcome, FlowOutcome::Passed, "{:#?}", run.lines);
        let has = |l: &str| run.lines.iter().any(|x| x == l);
        assert!(has(
            "zonekit: warning: mem=: ignoring [mem 0x0000000080000000-0x00000000ffffefff] outside the RAM reported by the DTB"
        ));
        assert!(has(
            "  node   0: [mem 0x0000000060000000-0x000000007fffffff]"
        ));
    }

    #[test]
    fn sim_mem_at_start_near_u64_max_is_a_typed_error() {
        let run = run(
            &opts(
                "vexpress-a9",
                512 << 20,
                DtbMode::None,
                Some("mem=64M@0xffffffffffffffff"),
            ),
            false,
        )
        .unwrap();
        assert_eq!(
            run.outcome,
            FlowOutcome::BootFailed(BootError::MemOverflow {
                size: 64 << 20,
                start: u64::MAX
            })
        );
        assert_eq!(run.outcome.exit_code(), flow::EXIT_BOOT_ERROR);
    }

    #[test]
    fn sim_fails_when_image_outside_ram() {
        // 64 KiB of RAM: the 1 MiB image does not fit (QEMU refuses to load it).
        let run = run(&opts("vexpress-a9", 64 << 10, DtbMode::None, None), false).unwrap();
        assert_eq!(run.exit_code(), EXIT_SIM_FAULT, "{:?}", run.faults);
        assert!(
            run.faults[0].starts_with("the kernel image [mem 0x0000000060010000-"),
            "{:?}",
            run.faults
        );
        assert!(run.verdict().contains(
            "outside the simulated RAM [mem 0x0000000060000000-0x000000006000ffff] (-m 64K)"
        ));
    }

    #[test]
    fn sim_fails_when_memory_outside_ram() {
        // A rejected tree, the board map asked for, 64 MiB of RAM: the 128 MiB map
        // puts memblock.memory, the page tables and mem_map where there is no RAM (the
        // guest hangs in paging_init). The flow itself passes; the sim must not.
        let run = run(
            &opts(
                "vexpress-a9",
                64 << 20,
                DtbMode::Test(dtb::TestTree::Overlap),
                Some("zonekit.fallback=board"),
            ),
            false,
        )
        .unwrap();
        assert_eq!(run.outcome, FlowOutcome::Passed);
        assert_eq!(run.exit_code(), EXIT_SIM_FAULT);
        for what in ["memblock.memory ", "paging_init: a page table ", "mem_map "] {
            assert!(
                run.faults.iter().any(|f| f.starts_with(what)),
                "no {what:?} fault in {:#?}",
                run.faults
            );
        }
        // 128 MiB of RAM: the same boot is fine.
        let run = run_128m_fallback();
        assert_eq!(run.exit_code(), 0, "{:#?}", run.faults);
        assert!(run
            .lines
            .iter()
            .any(|l| l == "zonekit: memory from board map"));
    }

    fn run_128m_fallback() -> SimRun {
        run(
            &opts(
                "vexpress-a9",
                128 << 20,
                DtbMode::Test(dtb::TestTree::Overlap),
                Some("zonekit.fallback=board"),
            ),
            false,
        )
        .unwrap()
    }

    #[test]
    fn sim_rejected_dtb_stops_like_the_guest() {
        let run = run(
            &opts(
                "vexpress-a9",
                128 << 20,
                DtbMode::Test(dtb::TestTree::Overlap),
                None,
            ),
            false,
        )
        .unwrap();
        assert!(matches!(
            run.outcome,
            FlowOutcome::DtbRejected {
                addr: 0x6400_0000,
                ..
            }
        ));
        assert_eq!(run.exit_code(), 1);
        assert!(run.lines.iter().any(|l| l.starts_with(
            "zonekit: boot failed: DTB at 0x64000000 rejected: memory banks overlap: "
        )));
        assert!(run.map.is_none());
    }

    #[test]
    fn sim_test_trees_boot_from_the_tree() {
        let run_tree =
            |t, mem| run(&opts("vexpress-a9", mem, DtbMode::Test(t), None), false).unwrap();
        let r = run_tree(dtb::TestTree::Latin1, 256 << 20);
        assert_eq!(r.exit_code(), 0, "{}", r.verdict());
        let has = |r: &SimRun, l: &str| r.lines.iter().any(|x| x.starts_with(l));
        assert!(has(&r, "zonekit: memory from DTB at 0x68000000"));
        assert!(has(&r, " reserved[0x2]\t[0x61000000-0x6100ffff]"));
        assert!(has(&r, "On node 0 totalpages: 65536"));
        let r = run_tree(dtb::TestTree::Quirks, 64 << 20);
        assert_eq!(r.exit_code(), 0, "{}", r.verdict());
        assert!(has(&r, "On node 0 totalpages: 16384"));
    }

    #[test]
    fn compared_lines() {
        assert!(is_compared_line("  Normal zone: 768 pages used for memmap"));
        assert!(is_compared_line("  HighMem  empty"));
        assert!(is_compared_line(
            "  node   0: [mem 0x0000000060000000-0x000000009fffffff]"
        ));
        assert!(!is_compared_line("zonekit: boot stack: 1 of 2 bytes used"));
        assert!(compare_logs(
            "Zone ranges:\nOn node 0 totalpages: 1\n",
            &["Zone ranges:".into()]
        )
        .is_err());
    }
}
