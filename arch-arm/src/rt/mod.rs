//! Target runtime: boot entry, exception vectors, semihosting, console and logger,
//! panic handler, physical page storage, and the generic [`boot_main`].
//!
//! Compiled only for `target_arch = "arm", target_os = "none"`.

pub mod console;
pub mod entry;
pub mod semihosting;
pub mod storage;

pub use storage::PhysPageStorage;

use crate::board::{BoardDesc, Console, KERNEL_LOAD_OFFSET};
use crate::fdt::{fdt_totalsize_at, FdtError, FDT_HEADER_SIZE};
use crate::flow::{self, BootBlob, FlowHooks, FlowInput, NoBlob};
use crate::kprintln;
use zonekit_core::addr::MemRange;

pub use crate::flow::{EXIT_BOOT_ERROR, EXIT_SELF_CHECK};

/// Flattened device tree magic (big-endian in memory).
const FDT_MAGIC: u32 = 0xd00d_feed;

/// Most bytes of ATAGS zonekit reads (Linux's boot protocol suggests the first 16 KiB
/// of RAM; QEMU's list is far shorter).
const ATAGS_MAX_BYTES: u64 = 0x4000;

/// Exit code when the boot stack overflowed (checked after the boot flow).
pub const EXIT_STACK_OVERFLOW: u32 = 4;

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

/// Look at r2: a DTB (magic 0xd00dfeed) anywhere in the board's RAM window, or ATAGS
/// in the boot area below the image.
fn classify_r2(board: &BoardDesc, r2: u32, image_start: u64) -> BootBlob<'static> {
    let addr = u64::from(r2);
    let ram_end = board.ram_base + board.max_ram;
    if addr % 4 != 0 || addr < board.ram_base || addr + 4 > ram_end {
        return BootBlob::None(NoBlob::OutsideRam);
    }
    // The boot protocol promises that r2 points into RAM; the board's largest RAM
    // window is all that can be checked without knowing the RAM size yet. (A bad
    // pointer past the real end of RAM aborts on some boards; the vectors report it.)
    // SAFETY: the address is 4-aligned, non-null and inside the board's RAM window
    // (checked above), where the boot loader put its data; it is read once.
    let first = unsafe { core::ptr::read_volatile(addr as usize as *const u32) };
    if u32::from_be(first) == FDT_MAGIC {
        return BootBlob::Dtb {
            addr,
            blob: open_dtb(board, r2),
        };
    }
    if addr >= image_start {
        return BootBlob::None(NoBlob::IntoImage);
    }
    let len = (image_start - addr).min(ATAGS_MAX_BYTES) as usize;
    // SAFETY: [addr, addr + len) lies in RAM below the image (the boot stub and ATAGS
    // page QEMU wrote), which nothing writes while zonekit runs; it is only read.
    let buf: &'static [u8] =
        unsafe { core::slice::from_raw_parts(addr as usize as *const u8, len) };
    BootBlob::Atags { addr, bytes: buf }
}

/// The DTB at `at`: read its header and check that `totalsize` fits in the board's
/// RAM window; the flow hands the blob to the validating parser.
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
    Ok(unsafe { core::slice::from_raw_parts(addr as usize as *const u8, total as usize) })
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

/// The guest's part in the shared flow: fault injection and the stack check.
struct GuestHooks;

impl FlowHooks<PhysPageStorage> for GuestHooks {
    fn fault(&mut self, what: &str) {
        inject_fault(what);
    }

    fn before_verdict(&mut self) {
        check_stack();
    }
}

/// The board-independent boot: console and logger, then [`flow::run`] with what r2
/// points at (a DTB, ATAGS, or nothing: the board's static map) and physical page
/// storage, and a semihosting exit (0 on success, [`EXIT_BOOT_ERROR`] or
/// [`EXIT_SELF_CHECK`] otherwise).
pub fn boot_main(board: &BoardDesc, console: &'static dyn Console, r1: u32, r2: u32) -> ! {
    console::init(console);
    let image = kernel_image();
    let image_start = if image.is_empty() {
        board.ram_base + KERNEL_LOAD_OFFSET
    } else {
        image.base
    };
    let input = FlowInput {
        board,
        r1,
        r2,
        blob: classify_r2(board, r2, image_start),
        kernel_image: image,
    };
    // SAFETY: the MMU is off (identity addressing) for the whole boot, and the boot
    // flow only passes ranges memblock has just reserved for it.
    let storage = unsafe { PhysPageStorage::new() };
    let outcome = flow::run(input, storage, &mut GuestHooks);
    semihosting::exit(outcome.exit_code())
}
