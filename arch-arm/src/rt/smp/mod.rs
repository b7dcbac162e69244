//! The secondary CPUs on the target: [`bring_up`] starts them the board's way and
//! [`on_each_cpu`] runs work on every online CPU at once.
//!
//! [`bring_up`] (Linux's `smp_init` / `bringup_nonboot_cpus`, one CPU after the
//! other as `__cpu_up` does) claims the boot CPU's [`CpuToken`] (id 0) from the
//! runtime's [`CpuTokens`], counts the CPUs ([`crate::smp::CpuCount`], capped by
//! [`MAX_CPUS`], `maxcpus=` and `nosmp`) and, for each secondary: paints its stack,
//! opens the holding pen for it, wakes it ([`crate::smp::SmpMethod`]: `SYS_FLAGS` +
//! SGI, the i.MX6 SRC, PSCI `CPU_ON`) and waits a bounded time (1 s on the board
//! counter) for it to report. The secondary drops to SVC, sets ACTLR.SMP, VBAR and
//! TPIDRPRW (its exception stack), switches its MMU on with the boot CPU's
//! registers ([`hw::read_mmu_regs`] / [`hw::enable_like`]: the same tables,
//! TTBCR, DACR, PRRR/NMRR or MAIR, SCTLR and so caches; MMU off in a
//! `zonekit.nommu` boot), claims its token, prints `CPUn: started` and parks in
//! `wfe`. A CPU that does not report in time is `CPUn: failed to come online`; it
//! can never join later (the handshake below). With more than one CPU online the
//! boot CPU prints `smp: Brought up 1 node, N CPUs`; with one (`-smp 1`,
//! `maxcpus=1`, `nosmp`, a board with one core) nothing is printed and nothing is
//! woken.
//!
//! [`on_each_cpu`] publishes the work and a new generation (Release), `sev`s, runs
//! the work on the boot CPU, then waits in `wfe` until every online secondary has
//! counted itself done (Acquire); each secondary waits in `wfe` for a generation it
//! has not run. Waiting loops use `wfe` or `yield`, so the CPUs also make progress
//! when QEMU runs them round-robin on one thread (`-icount`).

mod boards;
pub mod patterns;
mod secondary;

pub(crate) use secondary::stack_usage;

use crate::board::{BoardDesc, MonotonicCounter};
use crate::kprintln;
use crate::mmu::hw;
use crate::smp::{cpu_hwid, cpus_to_start, psci_error, MAX_CPUS};
use aarch32_cpu::register::{Mpidr, SysRegRead, Tpidrprw, Vbar};
use boards::WakeError;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use secondary::{PEN, PEN_CLOSED, START};
use zonekit_core::cmdline::Cmdline;
use zonekit_core::percpu::{CpuToken, CpuTokens};

/// The per-CPU tokens: the boot CPU claims id 0 in [`bring_up`], each secondary its
/// own number when it starts.
static TOKENS: CpuTokens<MAX_CPUS> = CpuTokens::new();

/// The bring-up handshake between the boot CPU and the secondary it is starting:
/// the boot CPU sets `waiting(n)`; CPU n moves it to `acked(n)`, prints, then to
/// `online(n)`. The boot CPU gives up by moving `waiting`/`acked` back to `NONE`,
/// after which CPU n's compare-exchange fails and it stays parked for good.
static HANDSHAKE: AtomicU32 = AtomicU32::new(handshake::NONE);

mod handshake {
    pub(super) const NONE: u32 = u32::MAX;
    pub(super) const fn waiting(cpu: usize) -> u32 {
        cpu as u32
    }
    pub(super) const fn acked(cpu: usize) -> u32 {
        0x100 | cpu as u32
    }
    pub(super) const fn online(cpu: usize) -> u32 {
        0x200 | cpu as u32
    }
}

/// The CPUs online (bit n: CPU n), the boot CPU's bit set by [`bring_up`].
static ONLINE: AtomicU32 = AtomicU32::new(0);

/// Bumped by [`on_each_cpu`] for each new work (Release).
static GENERATION: AtomicU32 = AtomicU32::new(0);
/// Secondaries done with the current work.
static WORK_DONE: AtomicU32 = AtomicU32::new(0);
/// [`on_each_cpu`] is running (it is not reentrant).
static WORK_BUSY: AtomicBool = AtomicBool::new(false);

/// The work of the current generation.
type WorkPtr = *const (dyn Fn(&mut CpuToken) + Sync + 'static);
struct WorkCell(UnsafeCell<Option<WorkPtr>>);

// SAFETY: written only by the boot CPU in `on_each_cpu` while no secondary reads it
// (before a generation is published, after every secondary counted itself done);
// the secondaries read it between those points. The pointee is `Sync`.
unsafe impl Sync for WorkCell {}

static WORK: WorkCell = WorkCell(UnsafeCell::new(None));

/// How long the boot CPU waits for a secondary to report (Linux waits 1 s too).
const ONLINE_TIMEOUT_NS: u64 = 1_000_000_000;

/// The running CPUs, and the boot CPU's token: what [`bring_up`] returns.
#[derive(Debug)]
pub struct Smp {
    boot: CpuToken,
    online: usize,
}

impl Smp {
    /// How many CPUs are online, the boot CPU included.
    pub fn online(&self) -> usize {
        self.online
    }

    /// The CPUs online, bit n for CPU n (the boot CPU's bit 0 always set). Not
    /// always the lowest [`Self::online`] bits: a CPU that failed to come online
    /// leaves a hole (`CPU2: failed to come online` with CPU3 up is `0b1011`).
    pub fn online_mask(&self) -> u32 {
        ONLINE.load(Ordering::Acquire)
    }

    /// The boot CPU's token (id 0).
    pub fn boot_cpu(&mut self) -> &mut CpuToken {
        &mut self.boot
    }

    /// [`on_each_cpu`] with the boot CPU's token.
    pub fn on_each_cpu(&mut self, work: &(dyn Fn(&mut CpuToken) + Sync)) {
        on_each_cpu(&mut self.boot, work)
    }
}

impl crate::smp::alloc_test::EachCpu for Smp {
    fn online(&self) -> usize {
        self.online
    }

    fn on_each_cpu(&mut self, work: &(dyn Fn(&mut CpuToken) + Sync)) {
        Smp::on_each_cpu(self, work)
    }
}

/// The number of the CPU running this: the secondary whose area TPIDRPRW points at
/// (each secondary's entry sets it), else 0 (the boot CPU, whose TPIDRPRW holds
/// `entry!`'s `zonekit_cpu0_area`, or whatever a kernel with its own entry keeps
/// there: it is compared, never followed).
pub fn this_cpu() -> usize {
    let area = <Tpidrprw as SysRegRead>::read_raw() as usize;
    secondary::AREAS
        .iter()
        .position(|a| core::ptr::addr_of!(*a) as usize == area)
        .map_or(0, |i| i + 1)
}

/// `CPUn: ` on a secondary CPU, nothing on the boot CPU: the prefix of a fatal
/// report (so the boot CPU's reports read as before).
pub struct CpuPrefix(usize);

impl CpuPrefix {
    /// The prefix for the CPU running this.
    pub fn this() -> Self {
        CpuPrefix(this_cpu())
    }
}

impl core::fmt::Display for CpuPrefix {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, "CPU{n}: "),
        }
    }
}

/// Start the secondary CPUs of `board` (see the [module documentation](self)): at
/// most `cmdline`'s `maxcpus=`, none with `nosmp`; `mmu` is the boot CPU's live MMU
/// (device registers are reached through its device window; `None` in a
/// `zonekit.nommu` boot: physical addresses, the secondaries' MMUs stay off).
///
/// # Panics
///
/// When called a second time (the boot CPU's token is already out).
pub fn bring_up(
    board: &BoardDesc,
    counter: &dyn MonotonicCounter,
    mmu: Option<&crate::rt::paging::KernelMmu>,
    cmdline: &Cmdline,
) -> Smp {
    bring_up_except(board, counter, mmu, cmdline, None)
}

/// [`bring_up`], leaving CPU `skip` asleep (`zonekit.fault=cpu-offline:N`: the
/// bounded wait and its report, tested).
pub(crate) fn bring_up_except(
    board: &BoardDesc,
    counter: &dyn MonotonicCounter,
    mmu: Option<&crate::rt::paging::KernelMmu>,
    cmdline: &Cmdline,
    skip: Option<usize>,
) -> Smp {
    let boot = TOKENS
        .claim(0)
        .expect("smp::bring_up runs once, on the boot CPU");
    ONLINE.fetch_or(1, Ordering::Release);
    let dev = |phys: u64| match mmu {
        Some(m) => m.device_virt(phys),
        None => u32::try_from(phys).ok(),
    };
    let present = boards::present_cpus(board.smp.count, &dev).unwrap_or(1);
    let wanted = cpus_to_start(present, cmdline);
    if wanted < 2 {
        return Smp { boot, online: 1 };
    }
    let boot_hwid = Mpidr::read().0 & 0x00FF_FFFF;
    // SAFETY: no secondary has been woken yet, so nothing reads START.
    unsafe {
        *START.0.get() = secondary::Start {
            boot_hwid,
            mmu: mmu.map(|_| hw::read_mmu_regs()),
        };
    }
    clean(
        START.0.get() as u32,
        core::mem::size_of::<secondary::Start>(),
    );
    PEN.vbar
        .store(<Vbar as SysRegRead>::read_raw(), Ordering::Relaxed);
    crate::rt::console::set_shared();
    kprintln!("smp: Bringing up secondary CPUs ...");
    let mut online = 1;
    for cpu in 1..wanted {
        if start_one(
            board,
            counter,
            &dev,
            cpu,
            cpu_hwid(cpu, boot_hwid),
            skip == Some(cpu),
        ) {
            online += 1;
        }
    }
    kprintln!("smp: Brought up 1 node, {} CPUs", online);
    Smp { boot, online }
}

/// Clean `len` bytes at `addr` to the point of coherency (for a CPU whose caches
/// are still off).
fn clean(addr: u32, len: usize) {
    hw::clean_dcache_range(addr, addr + len as u32);
}

/// Let the CPU with affinity `target` (or none) out of the pen.
fn open_pen(target: u32) {
    PEN.target.store(target, Ordering::Release);
    clean(
        core::ptr::addr_of!(PEN) as u32,
        core::mem::size_of_val(&PEN),
    );
    aarch32_cpu::asm::sev();
}

/// Start secondary `cpu` (affinity `hwid`; not woken at all with `asleep`) and wait
/// for it: true when it came online.
fn start_one(
    board: &BoardDesc,
    counter: &dyn MonotonicCounter,
    dev: boards::DeviceAddr<'_>,
    cpu: usize,
    hwid: u32,
    asleep: bool,
) -> bool {
    let (stack_top, area) = secondary::prepare(cpu);
    PEN.stack_top.store(stack_top, Ordering::Relaxed);
    PEN.area.store(area, Ordering::Relaxed);
    clean(
        core::ptr::addr_of!(PEN) as u32,
        core::mem::size_of_val(&PEN),
    );
    HANDSHAKE.store(handshake::waiting(cpu), Ordering::Release);
    open_pen(hwid);
    let woke = match asleep {
        true => Ok(()),
        false => boards::wake(board.smp.method, dev, hwid, secondary::entry_address()),
    };
    let came = match woke {
        Ok(()) => wait_online(counter, cpu),
        Err(_) => give_up(cpu),
    };
    open_pen(PEN_CLOSED);
    match (came, woke) {
        (true, _) => {
            ONLINE.fetch_or(1 << cpu, Ordering::Release);
        }
        (false, Err(WakeError::Psci(code))) => {
            kprintln!(
                "CPU{}: failed to boot: {} ({})",
                cpu,
                code,
                psci_error(code)
            )
        }
        (false, Err(e)) => kprintln!("CPU{}: failed to boot: {:?}", cpu, e),
        (false, Ok(())) => kprintln!("CPU{}: failed to come online", cpu),
    }
    came
}

/// Wait up to [`ONLINE_TIMEOUT_NS`] for CPU `cpu` to report online; on a timeout
/// stop it from ever joining. True when it is online.
fn wait_online(counter: &dyn MonotonicCounter, cpu: usize) -> bool {
    let t0 = counter.ticks();
    let timeout = ONLINE_TIMEOUT_NS.saturating_mul(counter.frequency_hz()) / 1_000_000_000;
    loop {
        if HANDSHAKE.load(Ordering::Acquire) == handshake::online(cpu) {
            return true;
        }
        if counter.ticks().wrapping_sub(t0) > timeout {
            return give_up(cpu);
        }
        // `yield`, not `wfe`: nothing may ever send the event if the CPU is dead.
        core::hint::spin_loop();
    }
}

/// Stop waiting for `cpu`: false, unless it got online in the meantime.
fn give_up(cpu: usize) -> bool {
    for from in [handshake::waiting(cpu), handshake::acked(cpu)] {
        if HANDSHAKE
            .compare_exchange(from, handshake::NONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return false;
        }
    }
    HANDSHAKE.load(Ordering::Acquire) == handshake::online(cpu)
}

/// Run `work` on every online CPU at once, the boot CPU included (each with its own
/// token), and return when all of them have finished. `boot` is the boot CPU's
/// token ([`Smp::boot_cpu`]); with one CPU online this is `work(boot)`.
///
/// # Panics
///
/// When `boot` is not CPU 0's token, or when called from inside `work`.
pub fn on_each_cpu(boot: &mut CpuToken, work: &(dyn Fn(&mut CpuToken) + Sync)) {
    assert_eq!(
        boot.id(),
        0,
        "on_each_cpu runs on the boot CPU, with its token"
    );
    assert!(
        !WORK_BUSY.swap(true, Ordering::Acquire),
        "on_each_cpu is not reentrant"
    );
    let others = ONLINE
        .load(Ordering::Acquire)
        .count_ones()
        .saturating_sub(1);
    if others > 0 {
        let ptr: *const (dyn Fn(&mut CpuToken) + Sync + '_) = work;
        // SAFETY: only the lifetime is erased: this function does not return before
        // every secondary has finished with the pointer (WORK_DONE below), and clears
        // it before returning.
        let ptr: WorkPtr = unsafe { core::mem::transmute(ptr) };
        // SAFETY: no secondary reads WORK now: all finished the previous generation
        // (or none was published yet).
        unsafe { *WORK.0.get() = Some(ptr) };
        WORK_DONE.store(0, Ordering::Relaxed);
        GENERATION.fetch_add(1, Ordering::Release);
        hw::dsb();
        aarch32_cpu::asm::sev();
    }
    work(boot);
    while WORK_DONE.load(Ordering::Acquire) < others {
        aarch32_cpu::asm::wfe();
    }
    // SAFETY: every secondary is done with the work (counted above).
    unsafe { *WORK.0.get() = None };
    WORK_BUSY.store(false, Ordering::Release);
}
