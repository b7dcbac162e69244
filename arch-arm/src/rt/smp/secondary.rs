//! A secondary CPU's side: its entry (`zonekit_secondary_entry`, the physical address
//! every wake-up method is given), the holding pen, its stacks and per-CPU area, the
//! switch to the boot CPU's page tables, and the loop that runs `on_each_cpu` work.
//!
//! The entry runs with the MMU and caches off, in SVC (or HYP, dropped to SVC as
//! `_start` does), IRQ/FIQ/aborts masked. It waits in the pen until [`PEN`] names
//! its MPIDR affinity (a CPU woken by accident, such as a spurious `wfi` exit in
//! QEMU's vexpress stub, stays there), takes the stack, per-CPU area (TPIDRPRW) and
//! VBAR the boot CPU left in the pen, and calls [`zonekit_secondary_main`] with its
//! MPIDR affinity. Linux counterpart: `secondary_startup` (`head.S`) and the
//! Versatile holding pen (`plat-versatile/headsmp.S`), then `secondary_start_kernel`.

use super::{handshake, GENERATION, HANDSHAKE, TOKENS, WORK, WORK_DONE};
use crate::kprintln;
use crate::link::{EXC_STACK_SIZE, SECONDARY_STACK_SIZE};
use crate::mmu::hw::{self, MmuRegs};
use crate::rt::entry::STACK_PAINT;
use crate::smp::{cpu_logical, MAX_CPUS};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, Ordering};
use zonekit_core::percpu::CpuToken;

core::arch::global_asm!(
    r#"
    .arm
    .arch_extension virt
    .section .text.zonekit_secondary, "ax"
    .balign 4
    .global zonekit_secondary_entry
    .type zonekit_secondary_entry, %function
zonekit_secondary_entry:
    @ HYP -> SVC with A, I, F masked, as in _start.
    bl      zonekit_hyp_to_svc
    cpsid   aif
    @ The holding pen: wait until PEN.target is this CPU's MPIDR affinity.
    mrc     p15, 0, r4, c0, c0, 5
    bic     r4, r4, #0xff000000
    ldr     r5, ={pen}
2:
    ldr     r6, [r5]
    cmp     r6, r4
    beq     3f
    wfe
    b       2b
3:
    dmb
    ldr     sp, [r5, #4]
    ldr     r6, [r5, #8]
    mcr     p15, 0, r6, c13, c0, 4      @ TPIDRPRW: this CPU's area
    ldr     r6, [r5, #12]
    mcr     p15, 0, r6, c12, c0, 0      @ VBAR: the boot CPU's vectors
    isb
    mov     r0, r4
    bl      zonekit_secondary_main
4:
    wfe
    b       4b
    .size zonekit_secondary_entry, . - zonekit_secondary_entry
"#,
    pen = sym PEN,
);

extern "C" {
    /// The secondary entry above (its address is physical: the image is linked and
    /// runs at its physical address).
    fn zonekit_secondary_entry();
}

/// The entry's physical address, for the wake-up methods.
pub(super) fn entry_address() -> u32 {
    zonekit_secondary_entry as *const () as usize as u32
}

/// No CPU may leave the pen.
pub(super) const PEN_CLOSED: u32 = u32::MAX;

/// The holding pen, read by the entry with the MMU and caches off (so the boot CPU
/// cleans it to the point of coherency after each write). One cache line.
#[repr(C, align(64))]
pub(super) struct Pen {
    /// +0: the MPIDR affinity of the CPU that may leave the pen ([`PEN_CLOSED`]: none).
    pub(super) target: AtomicU32,
    /// +4: its initial stack pointer.
    pub(super) stack_top: AtomicU32,
    /// +8: its [`CpuArea`] (TPIDRPRW).
    pub(super) area: AtomicU32,
    /// +12: VBAR.
    pub(super) vbar: AtomicU32,
}

pub(super) static PEN: Pen = Pen {
    target: AtomicU32::new(PEN_CLOSED),
    stack_top: AtomicU32::new(0),
    area: AtomicU32::new(0),
    vbar: AtomicU32::new(0),
};

/// What every secondary needs before its MMU is on, written once by the boot CPU
/// before it wakes the first one (and cleaned to the point of coherency).
#[derive(Clone, Copy)]
pub(super) struct Start {
    /// The boot CPU's MPIDR affinity.
    pub(super) boot_hwid: u32,
    /// The boot CPU's translation registers (`None`: `zonekit.nommu`, MMU off).
    pub(super) mmu: Option<MmuRegs>,
}

pub(super) struct StartCell(pub(super) UnsafeCell<Start>);

// SAFETY: written only by the boot CPU in `bring_up` before any secondary is woken
// (no secondary reads it yet), read-only afterwards.
unsafe impl Sync for StartCell {}

pub(super) static START: StartCell = StartCell(UnsafeCell::new(Start {
    boot_hwid: 0,
    mmu: None,
}));

/// A CPU's area, where TPIDRPRW points: the exception vectors load `sp` from its
/// first word; the second holds the CPU's number (for assembly and debuggers;
/// [`super::this_cpu`] compares TPIDRPRW with the areas' addresses instead). The
/// boot CPU's is `zonekit_cpu0_area` (`entry!`'s assembly).
#[repr(C, align(64))]
pub(super) struct CpuArea {
    pub(super) exc_stack_top: AtomicU32,
    pub(super) id: AtomicU32,
}

pub(super) static AREAS: [CpuArea; MAX_CPUS - 1] = [const {
    CpuArea {
        exc_stack_top: AtomicU32::new(0),
        id: AtomicU32::new(0),
    }
}; MAX_CPUS - 1];

const STACK_WORDS: usize = (SECONDARY_STACK_SIZE / 4) as usize;
const EXC_WORDS: usize = (EXC_STACK_SIZE / 4) as usize;

/// A stack: memory only its CPU uses (through `sp`), in `.bss`.
#[repr(C, align(64))]
struct Stack<const W: usize>(UnsafeCell<[u32; W]>);

// SAFETY: each stack is handed to exactly one CPU (the boot CPU paints it before
// that CPU starts and reads it back only to measure it); Rust code never forms a
// reference to its contents.
unsafe impl<const W: usize> Sync for Stack<W> {}

static STACKS: [Stack<STACK_WORDS>; MAX_CPUS - 1] =
    [const { Stack(UnsafeCell::new([0; STACK_WORDS])) }; MAX_CPUS - 1];
static EXC_STACKS: [Stack<EXC_WORDS>; MAX_CPUS - 1] =
    [const { Stack(UnsafeCell::new([0; EXC_WORDS])) }; MAX_CPUS - 1];

/// The `[bottom, top)` of a stack as addresses.
fn bounds<const W: usize>(s: &Stack<W>) -> (u32, u32) {
    let bottom = s.0.get() as usize as u32;
    (bottom, bottom + (W * 4) as u32)
}

/// Prepare secondary `cpu` (1..MAX_CPUS): paint its stack, fill its area, and
/// return (stack top, area address). The caller cleans both to the point of
/// coherency before the CPU runs.
pub(super) fn prepare(cpu: usize) -> (u32, u32) {
    let i = cpu - 1;
    let (bottom, top) = bounds(&STACKS[i]);
    let base = STACKS[i].0.get().cast::<u32>();
    for w in 0..STACK_WORDS {
        // SAFETY: `w` is inside the stack array, which no CPU uses yet (the CPU it
        // belongs to has not been released from the pen).
        unsafe { base.add(w).write_volatile(STACK_PAINT) };
    }
    hw::clean_inval_dcache_range(bottom, top);
    let (_, exc_top) = bounds(&EXC_STACKS[i]);
    AREAS[i].exc_stack_top.store(exc_top, Ordering::Relaxed);
    AREAS[i].id.store(cpu as u32, Ordering::Relaxed);
    let area = core::ptr::addr_of!(AREAS[i]) as usize as u32;
    hw::clean_dcache_range(area, area + core::mem::size_of::<CpuArea>() as u32);
    (top, area)
}

/// Secondary `cpu`'s stack high-water mark: (bytes used, size), as
/// [`crate::rt::stack_usage`] measures the boot stack; `None` unless the CPU is
/// online.
pub(crate) fn stack_usage(cpu: usize) -> Option<(usize, usize)> {
    if cpu >= 32 || super::ONLINE.load(Ordering::Acquire) & (1 << cpu) == 0 {
        return None;
    }
    let s = STACKS.get(cpu.checked_sub(1)?)?;
    let base = s.0.get().cast::<u32>();
    let untouched = (0..STACK_WORDS)
        // SAFETY: inside the stack array; the scan reads upwards from the bottom and
        // stops at the first word that is not the paint, below any live frame.
        .take_while(|&w| unsafe { base.add(w).read_volatile() } == STACK_PAINT)
        .count();
    Some(((STACK_WORDS - untouched) * 4, STACK_WORDS * 4))
}

/// Move this CPU's handshake word from `from` to `to`; false when the boot CPU
/// already moved it elsewhere (it gave up on this CPU).
fn handshake_step(from: u32, to: u32) -> bool {
    HANDSHAKE
        .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// A CPU that must not take part (the boot CPU gave up on it, or its token is out):
/// it stays here, touching nothing.
fn stay_parked() -> ! {
    loop {
        aarch32_cpu::asm::wfe();
    }
}

/// Called by `zonekit_secondary_entry` on the CPU's own stack, MMU off, with its
/// MPIDR affinity.
#[no_mangle]
extern "C" fn zonekit_secondary_main(hwid: u32) -> ! {
    // SAFETY: START was written before this CPU was woken and cleaned to the point
    // of coherency; nothing writes it any more.
    let start = unsafe { *START.0.get() };
    let id = cpu_logical(hwid, start.boot_hwid);
    match &start.mmu {
        // SAFETY: the boot CPU's tables map the whole image (this code, this CPU's
        // stack and area in .bss) at its physical addresses, which is where this
        // CPU runs; the MMU is off and the data cache has been off since reset.
        Some(regs) => unsafe { hw::enable_like(regs) },
        None => hw::join_coherency(),
    }
    // From here on this CPU is coherent with the others.
    if !handshake_step(handshake::waiting(id), handshake::acked(id)) {
        stay_parked();
    }
    let Some(token) = TOKENS.claim(id) else {
        stay_parked();
    };
    kprintln!("CPU{}: started", id);
    let seen = GENERATION.load(Ordering::Acquire);
    if !handshake_step(handshake::acked(id), handshake::online(id)) {
        stay_parked();
    }
    hw::dsb();
    aarch32_cpu::asm::sev();
    run_work(token, seen)
}

/// Wait (in `wfe`) for each new generation of `on_each_cpu` work, run it with this
/// CPU's token, count it done, wake the boot CPU.
fn run_work(mut token: CpuToken, mut seen: u32) -> ! {
    loop {
        let generation = GENERATION.load(Ordering::Acquire);
        if generation == seen {
            aarch32_cpu::asm::wfe();
            continue;
        }
        seen = generation;
        // SAFETY: the boot CPU stored the work before publishing this generation
        // (Release, matched by the Acquire above) and keeps it, and what it points
        // to, alive and unchanged until every online secondary has counted itself
        // done below.
        if let Some(work) = unsafe { *WORK.0.get() } {
            // SAFETY: as above: the pointee lives until WORK_DONE reaches the count.
            unsafe { (*work)(&mut token) };
        }
        WORK_DONE.fetch_add(1, Ordering::Release);
        hw::dsb();
        aarch32_cpu::asm::sev();
    }
}
