//! Target runtime: boot entry, exception vectors, semihosting, console and logger,
//! panic handler, physical page storage, and the generic [`boot_main`].
//!
//! Compiled only for `target_arch = "arm", target_os = "none"`.

pub mod console;
#[cfg(feature = "defmt")]
pub mod defmt_logger;
pub mod entry;
pub mod paging;
pub mod semihosting;
pub mod storage;

pub use storage::PhysPageStorage;

use crate::atags::Atags;
use crate::board::{BoardDesc, Console, MonotonicCounter, Stopwatch, KERNEL_LOAD_OFFSET};
use crate::bootmem::{self, BootParams, BootStep, RunningMemory};
use crate::fdt::{fdt_totalsize_at, FdtError, FDT_HEADER_SIZE};
use crate::flow::{self, BoardFallback, DtbChoice, FALLBACK_BOARD};
use crate::kprintln;
use crate::mmu::{MappingHooks, NoHooks};
use zonekit_core::addr::{MemRange, PAGE_SIZE};
use zonekit_core::arch::MmConfig;
use zonekit_core::MemorySource;

/// Exit code when the boot flow fails.
pub const EXIT_BOOT_ERROR: u32 = 1;
/// Exit code when the self-check fails.
pub const EXIT_SELF_CHECK: u32 = 2;

/// Operations of the random phase of the page allocator self-test.
const SELFTEST_RANDOM_OPS: u64 = 20_000;

/// Flattened device tree magic (big-endian in memory).
const FDT_MAGIC: u32 = 0xd00d_feed;

/// Most bytes of ATAGS zonekit reads (Linux's boot protocol suggests the first 16 KiB
/// of RAM; QEMU's list is far shorter).
const ATAGS_MAX_BYTES: u64 = 0x4000;

/// Exit code when the boot stack overflowed (checked after the boot flow).
pub const EXIT_STACK_OVERFLOW: u32 = 4;

/// Exit code when an MMU self-test fails.
pub const EXIT_MMU_TEST: u32 = 5;

/// Highmem pages the kmap self-test maps twice.
const KMAP_TEST_PAGES: usize = 8;

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
    static __stack_bottom: u32;
    static __stack_top: u32;
}

/// The boot stack's high-water mark: (bytes used, stack size). Used equals the size
/// when the lowest word was overwritten, i.e. the stack (probably) overflowed.
pub fn stack_usage() -> (usize, usize) {
    let bottom = core::ptr::addr_of!(__stack_bottom);
    let top = core::ptr::addr_of!(__stack_top);
    let words = (top as usize - bottom as usize) / 4;
    let untouched = (0..words)
        // SAFETY: every word of [__stack_bottom, __stack_top) is inside the image's
        // stack area; the scan reads upwards from the bottom and stops at the first
        // word that is not the paint, before reaching any live frame.
        .take_while(|&i| unsafe { core::ptr::read_volatile(bottom.add(i)) } == entry::STACK_PAINT)
        .count();
    ((words - untouched) * 4, words * 4)
}

/// Report the stack high-water mark; exit with [`EXIT_STACK_OVERFLOW`] if it overflowed.
fn check_stack() {
    let (used, size) = stack_usage();
    kprintln!("zonekit: boot stack: {} of {} bytes used", used, size);
    if used >= size {
        kprintln!(
            "zonekit: error: boot stack overflowed (raise STACK_SIZE in arch-arm/src/link.rs)"
        );
        semihosting::exit(EXIT_STACK_OVERFLOW);
    }
}

/// The running image, from its first byte to the end of its stack and .bss.
fn kernel_image() -> MemRange {
    // Only the addresses of the linker-script symbols are taken, never their contents.
    let start = core::ptr::addr_of!(__image_start) as usize as u64;
    let end = core::ptr::addr_of!(__image_end) as usize as u64;
    MemRange::new(start, end.saturating_sub(start))
}

/// What r2 points at.
enum BootInfo {
    Atags(Atags<'static>),
    Dtb(u32),
    Invalid,
}

/// Look at r2: a DTB (magic 0xd00dfeed) anywhere in the board's RAM window, or ATAGS
/// in the boot area below the image.
fn classify_r2(board: &BoardDesc, r2: u32, image_start: u64) -> BootInfo {
    let addr = u64::from(r2);
    let ram_end = board.ram_base + board.max_ram;
    if addr % 4 != 0 || addr < board.ram_base || addr + 4 > ram_end {
        kprintln!(
            "zonekit: r2={:#010x} is outside RAM; no boot information",
            r2
        );
        return BootInfo::Invalid;
    }
    // The boot protocol promises that r2 points into RAM; the board's largest RAM
    // window is all that can be checked without knowing the RAM size yet. (A bad
    // pointer past the real end of RAM aborts on some boards; the vectors report it.)
    // SAFETY: the address is 4-aligned, non-null and inside the board's RAM window
    // (checked above), where the boot loader put its data; it is read once.
    let first = unsafe { core::ptr::read_volatile(addr as usize as *const u32) };
    if u32::from_be(first) == FDT_MAGIC {
        return BootInfo::Dtb(r2);
    }
    if addr >= image_start {
        kprintln!("zonekit: r2={:#010x} points into the image; not ATAGS", r2);
        return BootInfo::Invalid;
    }
    let len = (image_start - addr).min(ATAGS_MAX_BYTES) as usize;
    // SAFETY: [addr, addr + len) lies in RAM below the image (the boot stub and ATAGS
    // page QEMU wrote), which nothing writes while zonekit runs; it is only read.
    let buf: &'static [u8] =
        unsafe { core::slice::from_raw_parts(addr as usize as *const u8, len) };
    match Atags::parse(buf) {
        Ok(atags) => BootInfo::Atags(atags),
        Err(e) => {
            kprintln!("zonekit: no valid ATAGS at {:#010x}: {}", r2, e);
            BootInfo::Invalid
        }
    }
}

/// The DTB at `at` as bytes: read its header, check that `totalsize` fits in the
/// board's RAM window, and view that many bytes (the validating parser checks them).
fn open_dtb(board: &BoardDesc, at: u32) -> Result<&'static [u8], FdtError> {
    let addr = u64::from(at);
    let room = (board.ram_base + board.max_ram).saturating_sub(addr);
    if room < FDT_HEADER_SIZE as u64 {
        return Err(FdtError::Truncated {
            need: FDT_HEADER_SIZE,
            have: room as usize,
        });
    }
    // SAFETY: classify_r2 checked that `at` is 4-aligned and inside the board's RAM
    // window, and `room` bytes from it are inside that window; the header is read-only.
    let header: &'static [u8] =
        unsafe { core::slice::from_raw_parts(addr as usize as *const u8, FDT_HEADER_SIZE) };
    let total = fdt_totalsize_at(header).ok_or(FdtError::BadMagic { found: 0 })? as u64;
    if total > room {
        return Err(FdtError::Truncated {
            need: total as usize,
            have: room as usize,
        });
    }
    // SAFETY: [addr, addr + total) is inside the board's RAM window (checked above);
    // the boot loader placed the blob there and nothing writes it while zonekit runs,
    // and memblock reserves it before any allocation.
    let blob: &'static [u8] =
        unsafe { core::slice::from_raw_parts(addr as usize as *const u8, total as usize) };
    Ok(blob)
}

/// Test hook for the exception vectors, from the command line:
/// `zonekit.fault=undef` executes an undefined instruction, `zonekit.fault=read:ADDR`
/// (hex) reads a word from ADDR (a data abort where nothing is mapped),
/// `zonekit.fault=hang` stops the CPU without exiting (to test host-side timeouts).
fn inject_fault(what: &str) {
    kprintln!("zonekit: injecting fault {:?}", what);
    if what == "undef" {
        // SAFETY: deliberately raises an Undefined Instruction exception, which the
        // vectors report before exiting; nothing after it runs.
        unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
    } else if what == "hang" {
        semihosting::halt();
    } else if let Some(addr) = what.strip_prefix("read:") {
        let digits = addr.trim_start_matches("0x");
        match u32::from_str_radix(digits, 16) {
            Ok(a) if a % 4 == 0 => {
                // SAFETY: a deliberate, test-only read of an arbitrary aligned address;
                // a fault is reported by the vectors, and the value is discarded.
                let v = unsafe { core::ptr::read_volatile(a as usize as *const u32) };
                kprintln!("zonekit: read {:#010x} from {:#010x} without a fault", v, a);
            }
            _ => kprintln!("zonekit: zonekit.fault=read: needs an aligned hex address"),
        }
    } else {
        kprintln!("zonekit: unknown zonekit.fault={}", what);
    }
}

/// Ticks of the board counter at each [`BootStep`] (for `zonekit.bench`).
#[derive(Default)]
struct StepTicks([u64; 4]);

impl StepTicks {
    fn record(&mut self, counter: &dyn MonotonicCounter, step: BootStep) {
        let slot = match step {
            BootStep::FreeAreaInitStart => 0,
            BootStep::FreeAreaInitEnd => 1,
            BootStep::FreeAllStart => 2,
            BootStep::FreeAllEnd => 3,
        };
        self.0[slot] = counter.ticks();
    }

    /// Ticks spent in `free_area_init_node` plus `memblock_free_all`.
    fn init_and_free_all(&self) -> u64 {
        self.0[1].wrapping_sub(self.0[0]) + self.0[3].wrapping_sub(self.0[2])
    }
}

/// The board-independent boot: console and logger, memory source from r2 (ATAGS) or
/// the board's static map, `bootmem::boot_with_paging` with the MMU switched on in
/// `paging_init` (timed on the board's `counter`), the self-checks, and a semihosting
/// exit (0 on success, [`EXIT_BOOT_ERROR`], [`EXIT_SELF_CHECK`] or [`EXIT_MMU_TEST`]
/// otherwise).
pub fn boot_main(
    board: &'static BoardDesc,
    console: &'static dyn Console,
    counter: &'static dyn MonotonicCounter,
    r1: u32,
    r2: u32,
) -> ! {
    boot_main_with_hooks(board, console, counter, r1, r2, NoHooks)
}

/// What [`boot_kernel`] leaves: the running page allocator and, unless the command
/// line said `zonekit.nommu`, the live MMU state (page tables, pkmap).
pub struct BootedKernel {
    /// memblock retired, the buddy allocator owning every free page.
    pub running: RunningMemory<PhysPageStorage, 1>,
    /// The kernel page tables and pkmap, once `paging_init` switched the MMU on.
    pub mmu: Option<paging::KernelMmu>,
    /// `zonekit.test_abort` was on the command line.
    pub test_abort: bool,
}

/// The board-independent boot up to a running page allocator: console and logger,
/// memory source from r2 (DTB, then ATAGS, then the board's static map; a DTB that
/// cannot be used stops the boot unless `zonekit.fallback=board` asks for the board
/// map, see [`flow`](crate::flow)), Linux's `setup_arch` memory part (memblock,
/// `adjust_lowmem_bounds`, `paging_init` with the MMU switched on, `bootmem_init`)
/// timed on the board's `counter`, the node self-check and `mem_init`
/// (`memblock_free_all`). On a boot error it exits through semihosting with
/// [`EXIT_BOOT_ERROR`] or [`EXIT_SELF_CHECK`].
pub fn boot_kernel<H: for<'a> MappingHooks<paging::EarlyTables<'a>>>(
    board: &'static BoardDesc,
    console: &'static dyn Console,
    counter: &'static dyn MonotonicCounter,
    r1: u32,
    r2: u32,
    hooks: H,
) -> BootedKernel {
    console::init(console);
    counter.start();
    kprintln!("zonekit: booting on {}", board.name);
    kprintln!(
        "zonekit: machine id {:#x}, boot information at {:#010x}",
        r1,
        r2
    );

    let image = kernel_image();
    let image_start = if image.is_empty() {
        board.ram_base + KERNEL_LOAD_OFFSET
    } else {
        image.base
    };
    let board_map = flow::board_map(board);
    // Classic (non-LPAE) descriptors: 32-bit physical addresses, as with the MMU off.
    let mm = MmConfig::ZONEKIT;
    let mut atags = None;
    let mut dtb = None;
    let mut fallback = None;
    match classify_r2(board, r2, image_start) {
        BootInfo::Atags(mut a) => {
            a.dma_zone_size = board.dma_zone_size;
            atags = Some(a);
        }
        BootInfo::Dtb(at) => {
            let addr = u64::from(at);
            match flow::parse_dtb(board, addr, open_dtb(board, at), mm.phys_addr_max) {
                DtbChoice::Use(fdt) => {
                    for dropped in &fdt.dropped {
                        kprintln!(
                            "OF: fdt: Ignoring memory range {:#x} - {:#x}",
                            dropped.base,
                            dropped.end()
                        );
                    }
                    dtb = Some(fdt);
                }
                // A rejected DTB stops the boot unless its command line asks for the
                // board map (see `flow`'s module docs).
                DtbChoice::Rejected(rejected) => {
                    kprintln!("zonekit: DTB at {:#010x} rejected: {}", at, rejected.error);
                    if !rejected.wants_board_fallback() {
                        kprintln!("zonekit: {}", rejected.stop_reason());
                        check_stack();
                        kprintln!(
                            "zonekit: {}",
                            flow::FlowOutcome::DtbRejected {
                                addr,
                                error: rejected.error
                            }
                        );
                        semihosting::exit(EXIT_BOOT_ERROR)
                    }
                    kprintln!(
                        "zonekit: {}: the DTB's memory and reservations are ignored",
                        FALLBACK_BOARD
                    );
                    fallback = Some(BoardFallback::new(board, rejected));
                }
            }
        }
        BootInfo::Invalid => {}
    }
    let source: &dyn MemorySource = if let Some(d) = &dtb {
        kprintln!("zonekit: memory from DTB at {:#010x}", r2);
        d
    } else if let Some(f) = &fallback {
        kprintln!("zonekit: memory from board map");
        f
    } else if let Some(a) = &atags {
        kprintln!("zonekit: memory from ATAGS");
        a
    } else {
        kprintln!("zonekit: memory from board map");
        &board_map
    };
    if !source.cmdline().is_empty() {
        kprintln!("Kernel command line: {}", source.cmdline());
    }

    let mut test_abort = false;
    let mut nommu = false;
    for word in source.cmdline().split_ascii_whitespace() {
        if let Some(what) = word.strip_prefix("zonekit.fault=") {
            inject_fault(what);
        }
        test_abort |= word == "zonekit.test_abort";
        nommu |= word == "zonekit.nommu";
    }

    // The first page of RAM: QEMU's boot stub at the base and the ATAGS at +0x100.
    let boot_area = MemRange::new(board.ram_base, PAGE_SIZE);
    let boot_data = [boot_area];
    let params = BootParams {
        source,
        kernel_image: image,
        boot_data: &boot_data,
        mm,
    };
    // SAFETY: the MMU is off (identity addressing) until paging_init, which moves the
    // storage to the linear map when it switches the MMU on; the boot flow only
    // passes ranges memblock has just reserved for it.
    let mut storage = unsafe { PhysPageStorage::new() };
    let mut paging = paging::ArmPaging::new(board, console, hooks).with_counter(counter);
    let mut steps = StepTicks::default();
    let boot_timer = Stopwatch::start(counter);
    let mut probe = |s| steps.record(counter, s);
    // From here on the memory source (DTB, ATAGS) may be unmapped: nothing after
    // `boot_full` reads it.
    let booted = if nommu {
        kprintln!("zonekit: zonekit.nommu: no paging_init, the MMU stays off");
        bootmem::boot_probed(&params, &mut storage, &mut probe)
    } else {
        bootmem::boot_full(&params, &mut storage, &mut paging, &mut probe)
    };
    let boot_ticks = boot_timer.elapsed_ticks();
    let booted = match booted {
        Ok(b) => b,
        Err(e) => {
            check_stack();
            kprintln!("zonekit: boot failed: {}", e);
            semihosting::exit(EXIT_BOOT_ERROR)
        }
    };
    if let Err(e) = booted.self_check() {
        check_stack();
        kprintln!("zonekit: self-check failed: {}", e);
        semihosting::exit(EXIT_SELF_CHECK)
    }
    // mem_init: every free page to the buddy allocator.
    let mem_init_timer = Stopwatch::start(counter);
    let running = booted.mem_init_probed::<1>(storage, &mut |s| steps.record(counter, s));
    let init_ticks = boot_ticks + mem_init_timer.elapsed_ticks();
    kprintln!(
        "zonekit: memory init took {} us",
        counter.ticks_to_ns(init_ticks) / 1000
    );
    if running.cmdline.bench {
        kprintln!(
            "zonekit-bench: free_area_init_core+memblock_free_all ticks={} hz={} pages={}",
            steps.init_and_free_all(),
            counter.frequency_hz(),
            running.allocator.node().node_present_pages
        );
    }
    let mmu = if nommu {
        None
    } else if let Some(mmu) = paging.take_mmu() {
        Some(mmu)
    } else {
        kprintln!("zonekit: MMU self-test failed: paging_init did not run");
        semihosting::exit(EXIT_MMU_TEST)
    };
    BootedKernel {
        running,
        mmu,
        test_abort,
    }
}

/// For your own kernel: [`boot_kernel`] without mapping hooks, returning the buddy
/// allocator's owner (the MMU is on, lowmem linearly mapped at PAGE_OFFSET).
pub fn boot_memory(
    board: &'static BoardDesc,
    console: &'static dyn Console,
    counter: &'static dyn MonotonicCounter,
    r1: u32,
    r2: u32,
) -> RunningMemory<PhysPageStorage, 1> {
    boot_kernel(board, console, counter, r1, r2, NoHooks).running
}

/// [`boot_main`] with an OS's [`MappingHooks`]: `before_mmu_on` may add mappings to
/// the kernel table, `after_mmu_on` runs on the new mappings (console already moved).
pub fn boot_main_with_hooks<H: for<'a> MappingHooks<paging::EarlyTables<'a>>>(
    board: &'static BoardDesc,
    console: &'static dyn Console,
    counter: &'static dyn MonotonicCounter,
    r1: u32,
    r2: u32,
    hooks: H,
) -> ! {
    let BootedKernel {
        mut running,
        mmu,
        test_abort,
    } = boot_kernel(board, console, counter, r1, r2, hooks);
    if running.cmdline.report {
        running.print_reports();
    }
    let tested = running.self_test(u64::from(r2) | 1, SELFTEST_RANDOM_OPS);
    if let (Ok(_), Some(mut mmu)) = (&tested, mmu) {
        let r = paging::mmu_self_test(
            &mut mmu,
            &mut running.allocator,
            KMAP_TEST_PAGES,
            test_abort,
        );
        if let Err(e) = r {
            check_stack();
            kprintln!("zonekit: MMU self-test failed: {}", e);
            semihosting::exit(EXIT_MMU_TEST)
        }
    }
    check_stack();
    match tested {
        Ok(_) => {
            kprintln!("zonekit: self-check passed");
            semihosting::exit(0)
        }
        Err(e) => {
            kprintln!("zonekit: self-check failed: {}", e);
            semihosting::exit(EXIT_SELF_CHECK)
        }
    }
}
