//! The boot entry (Linux ARM boot protocol) and the exception vectors.
//!
//! QEMU loads the raw image at RAM base + 0x10000 and jumps to its first byte with
//! r0 = 0, r1 = machine number, r2 = ATAGS or DTB pointer, MMU and caches off, in SVC
//! (or HYP on mcimx6ul-evk). `_start`:
//!
//! 1. keeps r0-r2 in r8-r10;
//! 2. drops from HYP to SVC with IRQ, FIQ and asynchronous aborts masked;
//! 3. parks every CPU whose `MPIDR.Aff0` is not 0 in a `wfe` loop;
//! 4. paints the boot stack with [`STACK_PAINT`] and sets sp to its top
//!    (`__stack_bottom` .. `__stack_top` from the linker script);
//! 5. zeroes `.bss` (`__bss_start` .. `__bss_end`);
//! 6. points TPIDRPRW at the boot CPU's per-CPU area (`zonekit_cpu0_area`: its
//!    exception stack `__exc_stack_top`, CPU number 0), VBAR at the vectors, and
//!    calls the kernel's main function (the one given to [`entry!`](crate::entry))
//!    with r0-r2; it must not return.
//!
//! The vectors take their stack from the running CPU's area (TPIDRPRW), so an
//! exception on a secondary CPU ([`crate::rt::smp`]) uses that CPU's exception stack
//! and is reported with its number (`zonekit: CPU2: unexpected exception: ...`).
//!
//! Both are opt-in: [`entry!`](crate::entry) links them into the kernel.
//!
//! Linux counterpart: `stext` in `arch/arm/kernel/head.S` (boot registers, HYP drop in `__hyp_stub_install`, secondary parking) and `__vectors_start` in `entry-armv.S`.

use super::console;
use super::semihosting;
use crate::mmu::selftest::{Fault, ProbeAbortReport};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Link zonekit's boot entry and exception vectors into the kernel, entering `main`.
///
/// `zonekit_arch_arm::entry!(kernel_main);` with `fn kernel_main(r0: u32, r1: u32,
/// r2: u32) -> !` defines `_start` (see the [module documentation](self)) and the
/// vectors (fatal reports of every exception, the probed loads of the MMU
/// self-tests), and calls `kernel_main` with the boot registers. A kernel with its
/// own entry and vectors leaves the macro out and calls the runtime's boot
/// functions from its own code; the linker script still needs `__stack_bottom`,
/// `__stack_top`, `__exc_stack_top` and the `.bss` bounds that `_start` uses. (Its
/// vectors then also serve the secondary CPUs of [`crate::rt::smp`], which set
/// TPIDRPRW to their own area and VBAR to the boot CPU's.)
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::__zonekit_entry_asm!();

        /// Called by `_start` with the boot registers.
        #[no_mangle]
        extern "C" fn zonekit_main(r0: u32, r1: u32, r2: u32) -> ! {
            let main: fn(u32, u32, u32) -> ! = $main;
            main(r0, r1, r2)
        }
    };
}

/// The assembly of [`entry!`]: `_start` and the vector table.
#[doc(hidden)]
#[macro_export]
macro_rules! __zonekit_entry_asm {
    () => {
        ::core::arch::global_asm!(
    r#"
    .arm
    .arch_extension virt
    .section .text.boot, "ax"
    .global _start
    .type _start, %function
_start:
    mov     r8, r0
    mov     r9, r1
    mov     r10, r2

    @ HYP -> SVC with A, I, F masked.
    bl      zonekit_hyp_to_svc
    cpsid   aif

    @ Park secondary CPUs (MPIDR.Aff0 != 0).
    mrc     p15, 0, r4, c0, c0, 5
    ands    r4, r4, #0xff
2:
    wfene
    bne     2b

    @ Paint the boot stack so that its high-water mark can be measured.
    ldr     r4, =__stack_bottom
    ldr     r5, =__stack_top
    ldr     r6, ={paint}
5:
    cmp     r4, r5
    strlo   r6, [r4], #4
    blo     5b

    ldr     sp, =__stack_top

    @ Zero .bss.
    ldr     r4, =__bss_start
    ldr     r5, =__bss_end
    mov     r6, #0
3:
    cmp     r4, r5
    strlo   r6, [r4], #4
    blo     3b

    @ This CPU's area (exception stack, CPU number), then our own exception vectors.
    ldr     r4, =zonekit_cpu0_area
    mcr     p15, 0, r4, c13, c0, 4
    ldr     r4, =zonekit_vectors
    mcr     p15, 0, r4, c12, c0, 0
    isb

    mov     r0, r8
    mov     r1, r9
    mov     r2, r10
    bl      zonekit_main
4:
    wfe
    b       4b
    .size _start, . - _start

    .section .data.zonekit_cpu0_area, "aw"
    .balign 8
    .global zonekit_cpu0_area
zonekit_cpu0_area:
    .word   __exc_stack_top
    .word   0

    .section .text.vectors, "ax"
    .balign 32
    .global zonekit_vectors
zonekit_vectors:
    b       zonekit_vec_reset
    b       zonekit_vec_undef
    b       zonekit_vec_svc
    b       zonekit_vec_pabt
    b       zonekit_vec_dabt
    b       zonekit_vec_hyp
    b       zonekit_vec_irq
    b       zonekit_vec_fiq

    @ sp = the running CPU's exception stack (the first word of its area).
    .macro zonekit_exc_sp
    mrc     p15, 0, sp, c13, c0, 4
    ldr     sp, [sp]
    .endm

    .macro zonekit_vec name, kind
zonekit_vec_\name:
    zonekit_exc_sp
    mov     r1, lr
    mov     r0, #\kind
    b       zonekit_exception
    .endm

    zonekit_vec reset, 0
    zonekit_vec undef, 1
    zonekit_vec svc, 2
    zonekit_vec pabt, 3

    @ Data abort: a read armed by `probe_read` is reported and skipped (returning
    @ to the instruction after the faulting one); anything else is fatal.
zonekit_vec_dabt:
    zonekit_exc_sp
    push    {{r0-r3, r12, lr}}
    sub     r0, lr, #8
    bl      zonekit_dabt_probe
    cmp     r0, #0
    pop     {{r0-r3, r12, lr}}
    subsne  pc, lr, #4
    mov     r1, lr
    mov     r0, #4
    b       zonekit_exception
    zonekit_vec hyp, 5
    zonekit_vec irq, 6
    zonekit_vec fiq, 7
"#,
            paint = const $crate::rt::entry::STACK_PAINT,
        );
    };
}

// `zonekit_hyp_to_svc`, for `_start` and the secondary entry (no stack yet; it uses
// r4, r5 and lr only): from HYP (0x1a) drop to SVC (0x13) with A, I and F masked,
// returning to the caller in SVC (`eret` to the return address); in any other mode
// return as it is. In HYP, `lr` is the User-mode r14 that `bl` wrote.
core::arch::global_asm!(
    r#"
    .arm
    .arch_extension virt
    .section .text.zonekit_hyp_to_svc, "ax"
    .global zonekit_hyp_to_svc
    .type zonekit_hyp_to_svc, %function
zonekit_hyp_to_svc:
    mrs     r4, cpsr
    and     r5, r4, #0x1f
    cmp     r5, #0x1a
    bxne    lr
    bic     r4, r4, #0x1f
    orr     r4, r4, #0x1c0
    orr     r4, r4, #0x13
    msr     spsr_cxsf, r4          @ SPSR_hyp: the mode to return to
    msr     elr_hyp, lr
    eret
    .size zonekit_hyp_to_svc, . - zonekit_hyp_to_svc
"#
);

/// The word `_start` fills the boot stack with before using it.
pub const STACK_PAINT: u32 = 0x57ac_57ac;

const NAMES: [&str; 8] = [
    "reset",
    "undefined instruction",
    "supervisor call",
    "prefetch abort",
    "data abort",
    "hypervisor trap",
    "IRQ",
    "FIQ",
];

/// Exit code of an unexpected exception.
pub const EXIT_EXCEPTION: u32 = 3;

fn read_fault_registers() -> (u32, u32, u32, u32) {
    let (dfar, dfsr, ifar, ifsr): (u32, u32, u32, u32);
    // SAFETY: reading the CP15 fault address/status registers has no side effects and
    // is allowed at PL1, where every exception is taken.
    unsafe {
        core::arch::asm!(
            "mrc p15, 0, {0}, c6, c0, 0",
            "mrc p15, 0, {1}, c5, c0, 0",
            "mrc p15, 0, {2}, c6, c0, 2",
            "mrc p15, 0, {3}, c5, c0, 1",
            out(reg) dfar, out(reg) dfsr, out(reg) ifar, out(reg) ifsr,
            options(nomem, nostack, preserves_flags)
        );
    }
    (dfar, dfsr, ifar, ifsr)
}

/// Set by [`probe_read`] around its one load; cleared by the data-abort handler.
static PROBE_ARMED: AtomicBool = AtomicBool::new(false);
/// Set by the data-abort handler when it caught the armed load.
static PROBE_FAULTED: AtomicBool = AtomicBool::new(false);
static PROBE_DFAR: AtomicU32 = AtomicU32::new(0);
static PROBE_DFSR: AtomicU32 = AtomicU32::new(0);

/// Called by the data-abort stub with the faulting instruction's address: 1 when the
/// abort was the load armed by [`probe_read`] (reported, then skipped), 0 otherwise
/// (fatal, as every other exception).
#[no_mangle]
extern "C" fn zonekit_dabt_probe(pc: u32) -> u32 {
    // Only the boot CPU arms probes.
    if super::smp::this_cpu() != 0 || !PROBE_ARMED.load(Ordering::Relaxed) {
        return 0;
    }
    PROBE_ARMED.store(false, Ordering::Relaxed);
    let (dfar, dfsr, _, _) = read_fault_registers();
    PROBE_DFAR.store(dfar, Ordering::Relaxed);
    PROBE_DFSR.store(dfsr, Ordering::Relaxed);
    PROBE_FAULTED.store(true, Ordering::Relaxed);
    let report = ProbeAbortReport {
        pc,
        fault: Fault { dfar, dfsr },
    };
    console::print_fmt(format_args!("{report}\n"));
    1
}

/// Read the word at `addr` with the data-abort handler armed to catch a fault:
/// `Some((DFAR, DFSR))` when the read aborted (and was skipped), `None` when it did
/// not. Only for self-tests: the default data-abort handling stays fatal.
pub fn probe_read(addr: u32) -> Option<(u32, u32)> {
    PROBE_FAULTED.store(false, Ordering::Relaxed);
    PROBE_ARMED.store(true, Ordering::Relaxed);
    let mut value: u32 = 0;
    // SAFETY: a single A32 load from an arbitrary address: either it succeeds (the
    // value is discarded) or it aborts, and the armed handler skips exactly this
    // instruction, leaving `value` as it was and every other register restored.
    unsafe {
        core::arch::asm!(
            "ldr {v}, [{a}]",
            a = in(reg) addr,
            v = inout(reg) value,
            options(nostack, preserves_flags)
        );
    }
    let _ = value;
    PROBE_ARMED.store(false, Ordering::Relaxed);
    if PROBE_FAULTED.load(Ordering::Relaxed) {
        Some((
            PROBE_DFAR.load(Ordering::Relaxed),
            PROBE_DFSR.load(Ordering::Relaxed),
        ))
    } else {
        None
    }
}

/// Called by every vector stub on the exception stack, with the vector index and the
/// exception-mode LR. Prints what happened and exits through semihosting.
#[no_mangle]
extern "C" fn zonekit_exception(kind: u32, lr: u32) -> ! {
    static ENTERED: AtomicBool = AtomicBool::new(false);
    let name = NAMES.get(kind as usize).copied().unwrap_or("unknown");
    let (dfar, dfsr, ifar, ifsr) = read_fault_registers();
    // A nested exception (or an SVC because semihosting is off) must not loop.
    let again = ENTERED.swap(true, Ordering::Relaxed);
    let cpu = super::smp::CpuPrefix::this();
    if again {
        console::print_fmt(format_args!(
            "zonekit: {cpu}nested exception: {name}, lr={lr:#010x}; halting\n"
        ));
        semihosting::halt();
    }
    console::print_fmt(format_args!(
        "zonekit: {cpu}unexpected exception: {name}, lr={lr:#010x}\n"
    ));
    match kind {
        3 => console::print_fmt(format_args!(
            "zonekit:   IFAR={ifar:#010x} IFSR={ifsr:#010x}\n"
        )),
        4 => console::print_fmt(format_args!(
            "zonekit:   DFAR={dfar:#010x} DFSR={dfsr:#010x}\n"
        )),
        2 => {
            // An SVC reaching us means semihosting is disabled: the exit call below
            // would trap again, so stop here.
            console::print_fmt(format_args!(
                "zonekit:   semihosting is not enabled (run QEMU with -semihosting)\n"
            ));
            semihosting::halt();
        }
        _ => {}
    }
    semihosting::exit(EXIT_EXCEPTION)
}
