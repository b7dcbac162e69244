//! The board-independent boot flow: one pipeline for the guest, the simulator, the
//! host tests and the examples.
//!
//! Linux's ARM `setup_arch` decides where memory is described (a device tree from r2,
//! ATAGS, or the machine's built-in map), then runs the memblock, paging and
//! `bootmem_init` steps and later `mem_init`. [`boot`] is that sequence up to a running
//! page allocator and [`run`] adds the self-tests and the verdict, generic over
//! [`PageStorage`], with every boot-log line the guest prints: the target runtime
//! (`rt::boot_main`, `rt::boot_memory`) calls them with physical storage and views of
//! the memory r2 points at, `cargo xtask sim` with simulated storage and byte buffers,
//! the host tests with `VecPageStorage`. What needs the hardware (reading r2, the MMU
//! switch, fault injection, timing, the stack check, the semihosting exit) stays with
//! the caller, through [`BootHooks`].
//!
//! # A DTB that cannot be used stops the boot
//!
//! When r2 points at a device tree, the tree is the memory description: its banks,
//! `/memreserve/`, `/reserved-memory`, initrd, the blob itself and the command line.
//! If [`FdtMemory::parse`] rejects it, falling back to the board's built-in map would
//! boot with memory the machine may not have (QEMU's `-m` smaller than the map hangs
//! in `paging_init`) and hand every reservation of the tree to the allocator, so the
//! boot stops instead ([`FlowOutcome::DtbRejected`], exit [`EXIT_BOOT_ERROR`]), naming
//! the cause. Linux, too, stops when it finds neither a usable tree nor a machine
//! (`setup_machine_fdt` → "Error: invalid dtb").
//!
//! A tag list is treated alike: one that starts with `ATAG_CORE` but cannot be read
//! whole (a tag past the end, a zero-sized tag, overlapping banks) stops the boot
//! ([`FlowOutcome::AtagsRejected`]); memory without `ATAG_CORE` is no tag list at
//! all, and the board map is used, as Linux falls back to the machine's default
//! tags ("Neither atags nor dtb found").
//!
//! # The boot parameters
//!
//! The flow's probe step builds [`BootParams`]: the memory source, the command line
//! from the boot information itself (`ATAG_CMDLINE`, `/chosen/bootargs`, or what the
//! kernel passes with its own source) and the DMA zone size from the board
//! ([`BoardDesc::dma_zone_size`], Linux's `machine_desc`). Neither is part of a
//! [`MemorySource`], so no source needs patching after it is parsed.
//!
//! # The board map for a rejected tree
//!
//! The board map is used for a rejected tree only when asked for, with
//! [`FALLBACK_BOARD`] (`zonekit.fallback=board`) on the command line. On a DTB boot the
//! command line lives in the tree itself (QEMU writes `-append` into
//! `/chosen/bootargs`), so it is read from the rejected tree when its header and
//! structure block are intact ([`chosen_bootargs`]): bad cells, overlapping banks or
//! too many ranges leave the command line readable. When the structure itself is
//! damaged nothing in the blob, the command line included, can be trusted, and the
//! boot stops. No raw scan of a damaged blob for the string, and no build-time
//! default: either could turn a corrupt tree into a silent board-map boot again. The
//! fallback keeps the tree's command line and reserves the blob (it is still read).

use core::fmt;
use zonekit_core::page_alloc::MAX_CPUS;

use zonekit_core::addr::{MemRange, PAGE_SIZE};
use zonekit_core::arch::MmConfig;
use zonekit_core::source::{Region, RegionSink, SourceError, StaticMemoryMap};
use zonekit_core::{zk_info, MemorySource, PageStorage};

use crate::atags::{Atags, AtagsError};
use crate::board::BoardDesc;
use crate::bootmem::{self, BootError, BootParams, RunningMemory};
use crate::fdt::{chosen_bootargs, Bootargs, FdtError, FdtMemory};
use crate::hooks::{BootHooks, BootStep, HookStop};

/// Exit code when the boot flow fails.
pub const EXIT_BOOT_ERROR: u32 = 1;
/// Exit code when the self-check fails.
pub const EXIT_SELF_CHECK: u32 = 2;

/// Operations of the random phase of the page allocator self-test.
pub const SELFTEST_RANDOM_OPS: u64 = 20_000;

/// What r2 points at, as bytes the flow may read.
pub enum BootBlob<'a> {
    /// A device tree (magic found) at physical `addr`: its `totalsize` bytes, or why
    /// they could not be read.
    Dtb {
        /// Physical address of the blob (r2).
        addr: u64,
        /// The blob, or why it was rejected before parsing.
        blob: Result<&'a [u8], FdtError>,
    },
    /// Memory at physical `addr` that should hold an ATAGS list.
    Atags {
        /// Physical address of the list (r2).
        addr: u64,
        /// The bytes from `addr` that may be read.
        bytes: &'a [u8],
    },
    /// Nothing usable at r2.
    None(NoBlob),
    /// The kernel's own description of memory, used instead of anything at r2 (a
    /// firmware table it parsed, a fixed map of its own), and its command line.
    Given {
        /// The memory source.
        source: &'a dyn MemorySource,
        /// The kernel command line (may be empty).
        cmdline: &'a str,
    },
}

/// Why r2 gave no boot information.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoBlob {
    /// r2 is misaligned or outside the board's RAM window.
    OutsideRam,
    /// r2 points into the image and holds no DTB.
    IntoImage,
    /// The caller passes no boot information on purpose.
    NotPassed,
}

/// The registers and memory the boot loader handed over.
pub struct FlowInput<'a> {
    /// The board being booted.
    pub board: &'a BoardDesc,
    /// r1: the machine number.
    pub r1: u32,
    /// r2: the boot information pointer.
    pub r2: u32,
    /// What r2 points at.
    pub blob: BootBlob<'a>,
    /// The running image, `__image_start..__image_end` (empty if unknown).
    pub kernel_image: MemRange,
}

/// How the flow ended; [`FlowOutcome::exit_code`] is the guest's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowOutcome {
    /// Booted, self-checked and self-tested.
    Passed,
    /// `bootmem::boot` failed.
    BootFailed(BootError),
    /// The self-check or the page allocator self-test failed.
    SelfCheckFailed(BootError),
    /// r2 points at a device tree that cannot be used, and the command line does not
    /// ask for [`FALLBACK_BOARD`].
    DtbRejected {
        /// Physical address of the blob.
        addr: u64,
        /// Why it was rejected.
        error: FdtError,
    },
    /// r2 points at a tag list that starts with `ATAG_CORE` but is malformed (a
    /// list without `ATAG_CORE` is "no ATAGS", and the board map is used, as Linux's
    /// default tags are).
    AtagsRejected {
        /// Physical address of the list.
        addr: u64,
        /// Why it was rejected.
        error: AtagsError,
    },
    /// A hook's own test failed ([`BootHooks::running`]).
    HookStopped(HookStop),
}

impl FlowOutcome {
    /// 0 on success, [`EXIT_BOOT_ERROR`] or [`EXIT_SELF_CHECK`].
    pub fn exit_code(&self) -> u32 {
        match self {
            FlowOutcome::Passed => 0,
            FlowOutcome::BootFailed(_)
            | FlowOutcome::DtbRejected { .. }
            | FlowOutcome::AtagsRejected { .. } => EXIT_BOOT_ERROR,
            FlowOutcome::SelfCheckFailed(_) => EXIT_SELF_CHECK,
            FlowOutcome::HookStopped(h) => h.exit_code,
        }
    }
}

impl fmt::Display for FlowOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowOutcome::Passed => write!(f, "passed"),
            FlowOutcome::BootFailed(e) => write!(f, "boot failed: {e}"),
            FlowOutcome::SelfCheckFailed(e) => write!(f, "self-check failed: {e}"),
            FlowOutcome::DtbRejected { addr, error } => {
                write!(f, "boot failed: DTB at {addr:#010x} rejected: {error}")
            }
            FlowOutcome::AtagsRejected { addr, error } => {
                write!(f, "boot failed: ATAGS at {addr:#010x} rejected: {error}")
            }
            FlowOutcome::HookStopped(h) => write!(f, "{h}"),
        }
    }
}

/// The command-line word that lets a rejected DTB boot with the board's built-in
/// memory map (see the module docs).
pub const FALLBACK_BOARD: &str = "zonekit.fallback=board";

/// The board's built-in memory map ([`BoardDesc::default_ram`] from the RAM base).
pub fn board_map(board: &BoardDesc) -> StaticMemoryMap {
    StaticMemoryMap::single_bank(board.ram_base, board.default_ram)
}

/// A device tree [`FdtMemory::parse`] rejected, and what it still tells.
#[derive(Clone, Debug)]
pub struct RejectedDtb<'a> {
    /// Physical address of the blob (r2).
    pub addr: u64,
    /// Its size, when the header could be read.
    pub size: Option<u64>,
    /// Why it was rejected.
    pub error: FdtError,
    /// Its command line, when the header and structure block are intact (see
    /// [`chosen_bootargs`]); `None` when there is none or it cannot be read.
    pub bootargs: Option<Bootargs<'a>>,
    /// Whether the command line could be read at all.
    pub cmdline_readable: bool,
}

impl RejectedDtb<'_> {
    /// The tree's command line asks for [`FALLBACK_BOARD`].
    pub fn wants_board_fallback(&self) -> bool {
        self.bootargs.as_ref().is_some_and(|b| {
            b.as_str()
                .split_ascii_whitespace()
                .any(|w| w == FALLBACK_BOARD)
        })
    }

    /// Why the boot cannot go on, in one line for the boot log (after `zonekit: `).
    pub fn stop_reason(&self) -> &'static str {
        if self.cmdline_readable {
            "the DTB is the memory description; add zonekit.fallback=board to its bootargs to boot the board's built-in map instead"
        } else {
            "the DTB is the memory description, and its structure (the command line included) cannot be read"
        }
    }
}

/// What to boot from, once the DTB r2 points at was read.
#[allow(clippy::large_enum_variant)]
pub enum DtbChoice<'a> {
    /// The tree parsed: it is the memory source.
    Use(FdtMemory<'a>),
    /// The tree was rejected.
    Rejected(RejectedDtb<'a>),
}

/// Parse the DTB at physical `addr` (`blob`: its `totalsize` bytes, or why they could
/// not be read). Shared by [`boot`] (and so the target runtime).
pub fn parse_dtb<'a>(
    addr: u64,
    blob: Result<&'a [u8], FdtError>,
    phys_addr_max: u64,
) -> DtbChoice<'a> {
    let parsed = blob.and_then(|b| FdtMemory::parse_at(b, phys_addr_max, Some(addr)));
    match parsed {
        Ok(fdt) => DtbChoice::Use(fdt),
        Err(error) => {
            let (bootargs, cmdline_readable) = match blob.map(chosen_bootargs) {
                Ok(Ok(args)) => (args, true),
                _ => (None, false),
            };
            DtbChoice::Rejected(RejectedDtb {
                addr,
                size: blob.ok().map(|b| b.len() as u64),
                error,
                bootargs,
                cmdline_readable,
            })
        }
    }
}

/// The board's built-in map used for a rejected DTB because its command line asked
/// for [`FALLBACK_BOARD`]: the map, the tree's command line, and the blob reserved
/// (the command line is read from it).
#[derive(Clone, Debug)]
pub struct BoardFallback<'a> {
    /// The board map.
    pub map: StaticMemoryMap,
    /// The rejected tree's command line.
    pub bootargs: Option<Bootargs<'a>>,
    /// The blob, `[addr, addr + totalsize)`.
    pub blob: Option<MemRange>,
}

impl<'a> BoardFallback<'a> {
    /// The fallback for `rejected` on `board`.
    pub fn new(board: &BoardDesc, rejected: RejectedDtb<'a>) -> Self {
        Self {
            map: board_map(board),
            blob: rejected.size.map(|s| MemRange::new(rejected.addr, s)),
            bootargs: rejected.bootargs,
        }
    }

    /// The rejected tree's command line (empty if none), for the boot parameters.
    pub fn cmdline(&self) -> &str {
        self.bootargs.as_ref().map_or("", Bootargs::as_str)
    }
}

/// The board map, and the blob reserved after the map's own reservations.
impl MemorySource for BoardFallback<'_> {
    fn name(&self) -> &str {
        self.map.name()
    }

    fn for_each_region<'s>(&'s self, sink: &mut RegionSink<'s, '_>) -> Result<(), SourceError> {
        self.map.for_each_region(sink)?;
        self.blob.map_or(Ok(()), |b| sink(Region::Reserved(b)))
    }
}

/// The memory source chosen from r2. One lives on the boot stack (there is no heap),
/// so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Source<'a> {
    Dtb(FdtMemory<'a>),
    Atags(Atags<'a>),
    Board(StaticMemoryMap),
    Fallback(BoardFallback<'a>),
    Given(&'a dyn MemorySource, &'a str),
}

/// The boot up to a running page allocator, printing every line of the boot log:
/// the memory source chosen from r2 (see the module docs), `bootmem::boot` with the
/// hooks' `paging_init`, the node self-check and `mem_init`. On failure the hooks'
/// `before_verdict` has run and the verdict line is printed; the outcome says why.
/// The guest runtime's `boot_memory` and [`run`] call it.
pub fn boot<S: PageStorage>(
    input: FlowInput<'_>,
    mut storage: S,
    hooks: &mut dyn BootHooks<S>,
) -> Result<RunningMemory<S, MAX_CPUS>, FlowOutcome> {
    let board = input.board;
    zk_info!("zonekit: booting on {}", board.name);
    zk_info!(
        "zonekit: machine id {:#x}, boot information at {:#010x}",
        input.r1,
        input.r2
    );
    // Classic descriptors: 32-bit physical addresses, as with the MMU off; an LPAE
    // board (`CONFIG_ARM_LPAE`): 40-bit ones.
    let mm = if board.lpae {
        MmConfig::ZONEKIT_LPAE
    } else {
        MmConfig::ZONEKIT
    };
    let stop = |hooks: &mut dyn BootHooks<S>, outcome: FlowOutcome| {
        hooks.before_verdict();
        zk_info!("zonekit: {}", outcome);
        outcome
    };
    let chosen = match choose_source(board, input.r2, input.blob, mm.phys_addr_max) {
        Ok(chosen) => chosen,
        Err(outcome) => return Err(stop(hooks, outcome)),
    };
    // The probe step: the source, and the command line from the boot information.
    let (source, cmdline): (&dyn MemorySource, &str) = match &chosen {
        Source::Dtb(d) => {
            zk_info!("zonekit: memory from DTB at {:#010x}", input.r2);
            (d, d.cmdline())
        }
        Source::Atags(a) => {
            zk_info!("zonekit: memory from ATAGS");
            (a, a.cmdline())
        }
        Source::Board(m) => {
            zk_info!("zonekit: memory from board map");
            (m, "")
        }
        Source::Fallback(m) => {
            zk_info!("zonekit: memory from board map");
            (m, m.cmdline())
        }
        Source::Given(m, cmdline) => {
            zk_info!("zonekit: memory from the kernel ({})", m.name());
            (*m, *cmdline)
        }
    };
    if !cmdline.is_empty() {
        zk_info!("Kernel command line: {}", cmdline);
    }
    hooks.cmdline(cmdline);

    // The first page of RAM: QEMU's boot stub at the base and the ATAGS at +0x100.
    let boot_data = [MemRange::new(board.ram_base, PAGE_SIZE)];
    let params = BootParams {
        source,
        cmdline,
        dma_zone_size: board.dma_zone_size,
        kernel_image: input.kernel_image,
        boot_data: &boot_data,
        mm,
    };
    hooks.step(BootStep::MemoryInitStart);
    // From here on the memory source (DTB, ATAGS) may be unmapped: nothing after
    // `bootmem::boot` reads it.
    let booted = match bootmem::boot(&params, &mut storage, hooks) {
        Ok(b) => b,
        Err(e) => return Err(stop(hooks, FlowOutcome::BootFailed(e))),
    };
    if let Err(e) = booted.self_check() {
        return Err(stop(hooks, FlowOutcome::SelfCheckFailed(e)));
    }
    hooks.booted(&params, &booted);
    // mem_init: every free page to the buddy allocator.
    let running = booted.mem_init::<MAX_CPUS>(storage, hooks);
    hooks.step(BootStep::MemoryInitEnd);
    hooks.mem_init_done(&running);
    Ok(running)
}

/// The whole boot: [`boot`], the reports `zonekit.report` asks for, the page
/// allocator self-test, the hooks' own tests ([`BootHooks::running`]) and the verdict
/// line. The guest's `boot_main`, `cargo xtask sim` and the host tests run it.
pub fn run<S: PageStorage>(
    input: FlowInput<'_>,
    storage: S,
    hooks: &mut dyn BootHooks<S>,
) -> FlowOutcome {
    let seed = u64::from(input.r2) | 1;
    let mut running = match boot(input, storage, hooks) {
        Ok(r) => r,
        Err(outcome) => return outcome,
    };
    if running.cmdline.report {
        running.print_reports();
    }
    let outcome = match running.self_test(seed, SELFTEST_RANDOM_OPS) {
        Ok(_) => match hooks.running(&mut running) {
            Ok(()) => FlowOutcome::Passed,
            Err(h) => FlowOutcome::HookStopped(h),
        },
        Err(e) => FlowOutcome::SelfCheckFailed(e),
    };
    hooks.before_verdict();
    match outcome {
        FlowOutcome::Passed => zk_info!("zonekit: self-check passed"),
        other => zk_info!("zonekit: {}", other),
    }
    outcome
}

/// The DTB if it parses, else ATAGS if they parse, else the board's static map. A
/// rejected DTB stops the boot unless its command line asks for [`FALLBACK_BOARD`];
/// a malformed tag list that starts with `ATAG_CORE` stops it
/// ([`FlowOutcome::AtagsRejected`]).
fn choose_source<'a>(
    board: &BoardDesc,
    r2: u32,
    blob: BootBlob<'a>,
    phys_addr_max: u64,
) -> Result<Source<'a>, FlowOutcome> {
    match blob {
        BootBlob::Dtb { addr, blob } => match parse_dtb(addr, blob, phys_addr_max) {
            DtbChoice::Use(fdt) => {
                for dropped in fdt.dropped() {
                    zk_info!(
                        "OF: fdt: Ignoring memory range {:#x} - {:#x}",
                        dropped.base,
                        dropped.end()
                    );
                }
                return Ok(Source::Dtb(fdt));
            }
            DtbChoice::Rejected(rejected) => {
                zk_info!(
                    "zonekit: DTB at {:#010x} rejected: {}",
                    addr,
                    rejected.error
                );
                if !rejected.wants_board_fallback() {
                    zk_info!("zonekit: {}", rejected.stop_reason());
                    return Err(FlowOutcome::DtbRejected {
                        addr,
                        error: rejected.error,
                    });
                }
                zk_info!(
                    "zonekit: {}: the DTB's memory and reservations are ignored",
                    FALLBACK_BOARD
                );
                return Ok(Source::Fallback(BoardFallback::new(board, rejected)));
            }
        },
        BootBlob::Atags { addr, bytes } => match Atags::parse(bytes) {
            Ok(a) => return Ok(Source::Atags(a)),
            // Not a tag list at all (Linux: "Neither atags nor dtb found", and the
            // machine's default tags): the board map.
            Err(e @ AtagsError::MissingCore { .. }) => {
                zk_info!("zonekit: no valid ATAGS at {:#010x}: {}", addr, e)
            }
            // A tag list that cannot be read whole: its memory and command line
            // cannot be trusted, and the board map may not be the machine's.
            Err(error) => {
                zk_info!("zonekit: ATAGS at {:#010x} rejected: {}", addr, error);
                return Err(FlowOutcome::AtagsRejected { addr, error });
            }
        },
        BootBlob::None(NoBlob::OutsideRam) => zk_info!(
            "zonekit: r2={:#010x} is outside RAM; no boot information",
            r2
        ),
        BootBlob::None(NoBlob::IntoImage) => {
            zk_info!("zonekit: r2={:#010x} points into the image; not ATAGS", r2)
        }
        BootBlob::None(NoBlob::NotPassed) => {}
        BootBlob::Given { source, cmdline } => return Ok(Source::Given(source, cmdline)),
    }
    Ok(Source::Board(board_map(board)))
}
