//! The board-independent boot flow, shared by the guest and the host simulator.
//!
//! Linux's ARM `setup_arch` decides where memory is described (a device tree from r2,
//! ATAGS, or the machine's built-in map), then runs the memblock, paging and
//! `bootmem_init` steps and later `mem_init`. [`run`] is that sequence, generic over
//! [`PageStorage`], with every boot-log line the guest prints: the target runtime
//! (`rt::boot_main`) calls it with physical storage and views of the memory r2 points
//! at, `cargo xtask sim` with simulated storage and byte buffers. Only what needs the
//! hardware (reading r2, fault injection, the stack check, the semihosting exit) stays
//! with the caller, through [`FlowHooks`].
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

use zonekit_core::addr::{MemRange, PAGE_SIZE};
use zonekit_core::arch::MmConfig;
use zonekit_core::source::{RangeList, SourceError, StaticMemoryMap};
use zonekit_core::{zk_info, MemorySource, PageStorage};

use crate::atags::Atags;
use crate::board::BoardDesc;
use crate::bootmem::{self, BootError, BootParams, BootedMemory, PagingContext, RunningMemory};
use crate::fdt::{chosen_bootargs, Bootargs, FdtError, FdtMemory};

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
}

impl FlowOutcome {
    /// 0 on success, [`EXIT_BOOT_ERROR`] or [`EXIT_SELF_CHECK`].
    pub fn exit_code(&self) -> u32 {
        match self {
            FlowOutcome::Passed => 0,
            FlowOutcome::BootFailed(_) | FlowOutcome::DtbRejected { .. } => EXIT_BOOT_ERROR,
            FlowOutcome::SelfCheckFailed(_) => EXIT_SELF_CHECK,
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
        }
    }
}

/// Where the caller takes part in the flow. Every method has an empty default.
pub trait FlowHooks<S: PageStorage> {
    /// `zonekit.fault=WHAT` was on the command line (the guest injects the fault).
    fn fault(&mut self, _what: &str) {}
    /// Linux's `paging_init` (see [`bootmem::PagingInit`]): build the kernel page
    /// tables from memblock. The default builds none.
    fn paging_init(&mut self, _ctx: PagingContext<'_, S>) -> Result<Option<u64>, BootError> {
        Ok(None)
    }
    /// `bootmem::boot` succeeded: the node, zones and memblock as Linux has them at the
    /// end of `bootmem_init` (the memory-map picture is drawn from here).
    fn booted(&mut self, _params: &BootParams<'_>, _booted: &BootedMemory<S>) {}
    /// `mem_init` is done and the self-test ran.
    fn running(&mut self, _running: &RunningMemory<S, 1>) {}
    /// Just before the verdict line (the guest reports its stack use here).
    fn before_verdict(&mut self) {}
}

/// The hooks' `paging_init` as a [`bootmem::PagingInit`].
struct HookPaging<'h, S: PageStorage>(&'h mut dyn FlowHooks<S>);

impl<S: PageStorage> bootmem::PagingInit<S> for HookPaging<'_, S> {
    fn paging_init(&mut self, ctx: PagingContext<'_, S>) -> Result<Option<u64>, BootError> {
        self.0.paging_init(ctx)
    }
}

/// Hooks that do nothing.
pub struct NoHooks;

impl<S: PageStorage> FlowHooks<S> for NoHooks {}

/// The command-line word that lets a rejected DTB boot with the board's built-in
/// memory map (see the module docs).
pub const FALLBACK_BOARD: &str = "zonekit.fallback=board";

/// The board's built-in memory map ([`BoardDesc::default_ram`] from the RAM base).
pub fn board_map(board: &BoardDesc) -> StaticMemoryMap {
    let mut map = StaticMemoryMap::single_bank(board.ram_base, board.default_ram);
    map.dma_zone_size = board.dma_zone_size;
    map
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
/// not be read) for `board`; on success the board's DMA zone size is set. Shared by
/// [`run`] and the target runtime's `boot_kernel`.
pub fn parse_dtb<'a>(
    board: &BoardDesc,
    addr: u64,
    blob: Result<&'a [u8], FdtError>,
    phys_addr_max: u64,
) -> DtbChoice<'a> {
    let parsed = blob.and_then(|b| FdtMemory::parse_at(b, phys_addr_max, Some(addr)));
    match parsed {
        Ok(mut fdt) => {
            fdt.dma_zone_size = board.dma_zone_size;
            DtbChoice::Use(fdt)
        }
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
}

impl MemorySource for BoardFallback<'_> {
    fn name(&self) -> &str {
        self.map.name()
    }

    fn memory_banks(&self) -> Result<RangeList, SourceError> {
        self.map.memory_banks()
    }

    fn reserved_ranges(&self) -> Result<RangeList, SourceError> {
        let mut out = self.map.reserved_ranges()?;
        if let Some(b) = self.blob {
            out.push(b).map_err(|_| SourceError::TooManyRanges)?;
        }
        Ok(out)
    }

    fn dma_zone_size(&self) -> Option<u64> {
        self.map.dma_zone_size()
    }

    fn cmdline(&self) -> &str {
        self.bootargs.as_ref().map_or("", Bootargs::as_str)
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
}

/// Run the boot: choose the memory source, `bootmem::boot`, the self-check,
/// `mem_init`, the reports `zonekit.report` asks for and the page allocator self-test,
/// printing every line of the boot log.
pub fn run<S: PageStorage>(
    input: FlowInput<'_>,
    mut storage: S,
    hooks: &mut dyn FlowHooks<S>,
) -> FlowOutcome {
    let board = input.board;
    zk_info!("zonekit: booting on {}", board.name);
    zk_info!(
        "zonekit: machine id {:#x}, boot information at {:#010x}",
        input.r1,
        input.r2
    );
    // Classic (non-LPAE) descriptors: 32-bit physical addresses, as with the MMU off.
    let mm = MmConfig::ZONEKIT;
    let chosen = match choose_source(board, input.r2, input.blob, mm.phys_addr_max) {
        Ok(chosen) => chosen,
        Err(stop) => {
            hooks.before_verdict();
            zk_info!("zonekit: {}", stop);
            return stop;
        }
    };
    let source: &dyn MemorySource = match &chosen {
        Source::Dtb(d) => {
            zk_info!("zonekit: memory from DTB at {:#010x}", input.r2);
            d
        }
        Source::Atags(a) => {
            zk_info!("zonekit: memory from ATAGS");
            a
        }
        Source::Board(m) => {
            zk_info!("zonekit: memory from board map");
            m
        }
        Source::Fallback(m) => {
            zk_info!("zonekit: memory from board map");
            m
        }
    };
    if !source.cmdline().is_empty() {
        zk_info!("Kernel command line: {}", source.cmdline());
    }
    for word in source.cmdline().split_ascii_whitespace() {
        if let Some(what) = word.strip_prefix("zonekit.fault=") {
            hooks.fault(what);
        }
    }

    // The first page of RAM: QEMU's boot stub at the base and the ATAGS at +0x100.
    let boot_data = [MemRange::new(board.ram_base, PAGE_SIZE)];
    let params = BootParams {
        source,
        kernel_image: input.kernel_image,
        boot_data: &boot_data,
        mm,
    };
    let booted = match bootmem::boot_with_paging(&params, &mut storage, &mut HookPaging(hooks)) {
        Ok(b) => b,
        Err(e) => {
            hooks.before_verdict();
            zk_info!("zonekit: boot failed: {}", e);
            return FlowOutcome::BootFailed(e);
        }
    };
    if let Err(e) = booted.self_check() {
        hooks.before_verdict();
        zk_info!("zonekit: self-check failed: {}", e);
        return FlowOutcome::SelfCheckFailed(e);
    }
    hooks.booted(&params, &booted);
    // mem_init: every free page to the buddy allocator.
    let mut running = booted.mem_init::<1>(storage);
    if running.cmdline.report {
        running.print_reports();
    }
    let tested = running.self_test(u64::from(input.r2) | 1, SELFTEST_RANDOM_OPS);
    hooks.running(&running);
    hooks.before_verdict();
    match tested {
        Ok(_) => {
            zk_info!("zonekit: self-check passed");
            FlowOutcome::Passed
        }
        Err(e) => {
            zk_info!("zonekit: self-check failed: {}", e);
            FlowOutcome::SelfCheckFailed(e)
        }
    }
}

/// The DTB if it parses, else ATAGS if they parse, else the board's static map. A
/// rejected DTB stops the boot unless its command line asks for [`FALLBACK_BOARD`].
fn choose_source<'a>(
    board: &BoardDesc,
    r2: u32,
    blob: BootBlob<'a>,
    phys_addr_max: u64,
) -> Result<Source<'a>, FlowOutcome> {
    match blob {
        BootBlob::Dtb { addr, blob } => match parse_dtb(board, addr, blob, phys_addr_max) {
            DtbChoice::Use(fdt) => {
                for dropped in &fdt.dropped {
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
            Ok(mut a) => {
                a.dma_zone_size = board.dma_zone_size;
                return Ok(Source::Atags(a));
            }
            Err(e) => zk_info!("zonekit: no valid ATAGS at {:#010x}: {}", addr, e),
        },
        BootBlob::None(NoBlob::OutsideRam) => zk_info!(
            "zonekit: r2={:#010x} is outside RAM; no boot information",
            r2
        ),
        BootBlob::None(NoBlob::IntoImage) => {
            zk_info!("zonekit: r2={:#010x} points into the image; not ATAGS", r2)
        }
        BootBlob::None(NoBlob::NotPassed) => {}
    }
    Ok(Source::Board(board_map(board)))
}
