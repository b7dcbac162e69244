//! Timers shared by the boards (each board's table names its own): the Cortex-A9
//! MPCore global timer, the ARMv7 generic timer (Cortex-A7/A15) and the i.MX general
//! purpose timer (GPT).
//!
//! The driver types exist on the host (so tools can name them); reading the A9 and
//! generic timers ([`MonotonicCounter`](crate::board::MonotonicCounter) and
//! `embedded_hal::delay::DelayNs`) is target-only. The GPT driver is generic over its
//! registers ([`RegisterIo`]), so host tests run it on a fake block.
// The explicit link target above is needed on the host and redundant on the target.
#![allow(rustdoc::redundant_explicit_links)]

use crate::board::{busy_wait_ns, MonotonicCounter};
use crate::board::{TimerDesc, TimerKind};
use crate::mmio::{Mmio, RegisterIo};

/// Global timer counter, low word (offset from the timer's base).
pub const GT_COUNTER_LO: usize = 0x0;
/// Global timer counter, high word.
pub const GT_COUNTER_HI: usize = 0x4;
/// Global timer control register.
pub const GT_CONTROL: usize = 0x8;
/// `GT_CONTROL.TimerEnable`.
pub const GT_CONTROL_ENABLE: u32 = 1 << 0;

/// The Cortex-A9 MPCore global timer: a 64-bit up-counter in the private memory
/// region (periphbase + 0x200), started by software, 100 MHz in QEMU.
#[derive(Debug)]
pub struct A9GlobalTimer {
    /// Register block address: physical with the MMU off, the device-window address
    /// after `paging_init` moves it ([`MonotonicCounter::remap`]).
    base: core::sync::atomic::AtomicUsize,
    hz: u64,
}

impl A9GlobalTimer {
    /// A driver for the global timer at physical `base` counting at `hz` (MMU off).
    ///
    /// # Safety
    ///
    /// `base` must be the running board's A9 global timer block (periphbase +
    /// 0x200), reachable at that address with the MMU off: the driver writes its
    /// control register and reads its counter there.
    pub const unsafe fn new(base: usize, hz: u64) -> Self {
        Self {
            base: core::sync::atomic::AtomicUsize::new(base),
            hz,
        }
    }

    /// The driver a board's [`TimerDesc`] describes, if it is a global timer.
    ///
    /// # Safety
    ///
    /// `desc` must describe the running board's timer (as [`A9GlobalTimer::new`]).
    pub const unsafe fn from_desc(desc: &TimerDesc) -> Option<Self> {
        match desc.kind {
            TimerKind::A9GlobalTimer => {
                // SAFETY: the caller vouches for `desc`, so its base is the board's
                // timer.
                Some(unsafe { Self::new(desc.base as usize, desc.frequency_hz) })
            }
            _ => None,
        }
    }

    /// The register block's address.
    pub fn base(&self) -> usize {
        self.base.load(core::sync::atomic::Ordering::Relaxed)
    }

    /// The counting rate in Hz.
    pub const fn hz(&self) -> u64 {
        self.hz
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl MonotonicCounter for A9GlobalTimer {
    fn start(&self) {
        let ctrl = (self.base() + GT_CONTROL) as *mut u32;
        // SAFETY: `base` is the board's global timer (a BoardDesc constant), reached
        // where `new` or `remap` put it; the control register is 32-bit MMIO,
        // and setting TimerEnable only starts the counter (no interrupt is enabled).
        unsafe {
            let v = core::ptr::read_volatile(ctrl);
            core::ptr::write_volatile(ctrl, v | GT_CONTROL_ENABLE);
        }
    }

    unsafe fn remap(&self, base: usize) {
        self.base.store(base, core::sync::atomic::Ordering::Relaxed);
    }

    fn ticks(&self) -> u64 {
        let lo = (self.base() + GT_COUNTER_LO) as *const u32;
        let hi = (self.base() + GT_COUNTER_HI) as *const u32;
        loop {
            // SAFETY: as in `start`: 32-bit MMIO reads of the counter registers, which
            // have no side effects. High-low-high detects a carry between the reads.
            let (h1, l, h2) = unsafe {
                (
                    core::ptr::read_volatile(hi),
                    core::ptr::read_volatile(lo),
                    core::ptr::read_volatile(hi),
                )
            };
            if h1 == h2 {
                return (u64::from(h1) << 32) | u64::from(l);
            }
        }
    }

    fn frequency_hz(&self) -> u64 {
        self.hz
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl embedded_hal::delay::DelayNs for A9GlobalTimer {
    fn delay_ns(&mut self, ns: u32) {
        busy_wait_ns(self, u64::from(ns));
    }
}

/// The ARMv7 generic timer's virtual count (`CNTVCT`, read with `mrrc p15, 1`), which
/// always runs; the rate is `CNTFRQ` (QEMU presets 62.5 MHz), or the fallback when
/// firmware left `CNTFRQ` at 0.
#[derive(Debug)]
pub struct GenericTimer {
    fallback_hz: u64,
}

impl GenericTimer {
    /// A driver that uses `fallback_hz` when `CNTFRQ` reads 0.
    pub const fn new(fallback_hz: u64) -> Self {
        Self { fallback_hz }
    }

    /// The driver a board's [`TimerDesc`] describes, if it is a generic timer.
    pub const fn from_desc(desc: &TimerDesc) -> Option<Self> {
        match desc.kind {
            TimerKind::GenericTimer => Some(Self::new(desc.frequency_hz)),
            _ => None,
        }
    }

    /// The rate used when `CNTFRQ` reads 0.
    pub const fn fallback_hz(&self) -> u64 {
        self.fallback_hz
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl MonotonicCounter for GenericTimer {
    fn ticks(&self) -> u64 {
        let (lo, hi): (u32, u32);
        // SAFETY: reads CNTVCT (a 64-bit cp15 register readable at PL1 and PL2 on
        // cores with the generic timer, which the board declares); the ISB orders the
        // read after earlier instructions. No memory is touched.
        unsafe {
            core::arch::asm!(
                "isb",
                "mrrc p15, 1, {lo}, {hi}, c14",
                lo = out(reg) lo,
                hi = out(reg) hi,
                options(nomem, nostack, preserves_flags)
            );
        }
        (u64::from(hi) << 32) | u64::from(lo)
    }

    fn frequency_hz(&self) -> u64 {
        let f: u32;
        // SAFETY: reads CNTFRQ (cp15 c14, c0, 0), readable at PL1 and PL2; no memory
        // is touched.
        unsafe {
            core::arch::asm!(
                "mrc p15, 0, {f}, c14, c0, 0",
                f = out(reg) f,
                options(nomem, nostack, preserves_flags)
            );
        }
        if f == 0 {
            self.fallback_hz
        } else {
            u64::from(f)
        }
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl embedded_hal::delay::DelayNs for GenericTimer {
    fn delay_ns(&mut self, ns: u32) {
        busy_wait_ns(self, u64::from(ns));
    }
}

/// GPT control register (`GPTx_CR`; Linux `MXC_TCTL`), offset from the block's base.
pub const GPT_CR: usize = 0x00;
/// GPT prescaler register (`GPTx_PR`; Linux `MXC_TPRER`): the count rate is the
/// selected clock / (PRESCALER + 1).
pub const GPT_PR: usize = 0x04;
/// GPT counter register (`GPTx_CNT`; Linux `V2_TCN`), read-only.
pub const GPT_CNT: usize = 0x24;
/// `GPT_CR.EN`: the timer counts.
pub const GPT_CR_EN: u32 = 1 << 0;
/// `GPT_CR.WAITEN`: keep counting in the core's WAIT mode (Linux sets it).
pub const GPT_CR_WAITEN: u32 = 1 << 3;
/// `GPT_CR.CLKSRC` (bits 8:6): the clock the counter runs on.
pub const GPT_CR_CLKSRC_MASK: u32 = 0b111 << 6;
/// `GPT_CR.CLKSRC` = 001, the peripheral clock `ipg_clk` (Linux `V2_TCTL_CLK_PER`).
pub const GPT_CR_CLKSRC_PER: u32 = 0b001 << 6;
/// `GPT_CR.FRR`: free-run mode, counting on past the compare values to 0xFFFF_FFFF
/// and wrapping to 0.
pub const GPT_CR_FRR: u32 = 1 << 9;
/// The control value the driver runs the GPT with (Linux's `imx31_gpt_setup_tctl` and
/// `imx6dl_gpt_setup_tctl` when the clock is not the 3 MHz crystal divider): enabled,
/// free-running, on the peripheral clock, no interrupt, no output.
pub const GPT_CR_RUN: u32 = GPT_CR_EN | GPT_CR_WAITEN | GPT_CR_CLKSRC_PER | GPT_CR_FRR;

/// [`ImxGpt`]'s last count before its first reading (a count it never reaches: 2^64
/// ticks are thousands of years at its rates).
const GPT_UNREAD: u64 = u64::MAX;

/// The i.MX general purpose timer (Linux: `drivers/clocksource/timer-imx-gpt.c`), a
/// 32-bit up-counter in free-run mode on the peripheral clock `ipg_clk` with the
/// prescaler at 1. QEMU derives that clock from its CCM model's reset state: 66 MHz
/// on the i.MX6Q (`-M sabrelite`), 49.5 MHz on the i.MX6UL (`-M mcimx6ul-evk`).
///
/// [`MonotonicCounter::ticks`](crate::board::MonotonicCounter::ticks) extends the
/// 32-bit `CNT` to 64 bits (Linux's clocksource core does the same with its 32-bit
/// mask): a reading is taken as less than 2^31 ticks after the last one, so a `CNT`
/// below the last one's low word counts a wrap. That is right as long as the counter
/// is read at least once per 2^31 ticks (32 s at 66 MHz); a reading that lags the
/// last count returned (another CPU's) gives its own, earlier count and leaves the
/// last one as it is.
///
/// Generic over its registers so that it can be tested on the host; boards use
/// [`ImxGpt::new`] or [`ImxGpt::from_desc`] (memory-mapped registers).
#[derive(Debug)]
pub struct ImxGpt<R = Mmio> {
    regs: R,
    hz: u64,
    /// The 64-bit count last returned: its low word is the `CNT` read then, its high
    /// word the wraps seen so far ([`GPT_UNREAD`] before the first reading).
    last: core::sync::atomic::AtomicU64,
}

impl ImxGpt<Mmio> {
    /// A driver for the GPT at physical `base` counting at `hz` (MMU off).
    ///
    /// # Safety
    ///
    /// `base` must be the running board's GPT register block, reachable at that
    /// address with the MMU off, and no other driver may use that GPT: the driver
    /// resets and reprograms its control and prescaler registers and reads its
    /// counter there.
    pub const unsafe fn new(base: usize, hz: u64) -> Self {
        // SAFETY: the caller's contract is `Mmio::new`'s (the GPT's block, used by
        // this driver only).
        Self::with_registers(unsafe { Mmio::new(base) }, hz)
    }

    /// The driver a board's [`TimerDesc`] describes, if it is an i.MX GPT.
    ///
    /// # Safety
    ///
    /// `desc` must describe the running board's timer (as [`ImxGpt::new`]).
    pub const unsafe fn from_desc(desc: &TimerDesc) -> Option<Self> {
        match desc.kind {
            TimerKind::ImxGpt => {
                // SAFETY: the caller vouches for `desc`, so its base is the board's
                // GPT.
                Some(unsafe { Self::new(desc.base as usize, desc.frequency_hz) })
            }
            _ => None,
        }
    }

    /// The register block's address (physical until remapped).
    pub fn base(&self) -> usize {
        self.regs.base()
    }
}

impl<R> ImxGpt<R> {
    /// A driver on any register block (a fake one in host tests) counting at `hz`.
    pub const fn with_registers(regs: R, hz: u64) -> Self {
        Self {
            regs,
            hz,
            last: core::sync::atomic::AtomicU64::new(GPT_UNREAD),
        }
    }

    /// The driver's registers.
    pub fn registers(&self) -> &R {
        &self.regs
    }

    /// The counting rate in Hz.
    pub const fn hz(&self) -> u64 {
        self.hz
    }
}

impl<R: RegisterIo> ImxGpt<R> {
    /// Program the GPT as Linux's `_mxc_timer_init` does: control and prescaler to
    /// 0 (timer off, divide by 1), then [`GPT_CR_RUN`]. Left alone when it already
    /// runs that way, so that a second call does not disturb the count.
    fn program(&self) {
        let running = GPT_CR_EN | GPT_CR_CLKSRC_MASK | GPT_CR_FRR;
        if self.regs.read32(GPT_CR) & running == GPT_CR_RUN & running
            && self.regs.read32(GPT_PR) == 0
        {
            return;
        }
        self.regs.write32(GPT_CR, 0);
        self.regs.write32(GPT_PR, 0);
        self.regs.write32(GPT_CR, GPT_CR_RUN);
    }

    /// `CNT` extended to 64 bits (see the type's documentation).
    fn count(&self) -> u64 {
        use core::sync::atomic::Ordering::Relaxed;
        let now = self.regs.read32(GPT_CNT);
        let mut last = self.last.load(Relaxed);
        loop {
            if last == GPT_UNREAD {
                // The first reading: the count starts at `CNT` as it is.
                match self
                    .last
                    .compare_exchange(last, u64::from(now), Relaxed, Relaxed)
                {
                    Ok(_) => return u64::from(now),
                    Err(seen) => last = seen,
                }
                continue;
            }
            let ahead = now.wrapping_sub(last as u32);
            if ahead >= 1 << 31 {
                // An older reading than the last one returned.
                return last.wrapping_sub(u64::from(ahead.wrapping_neg()));
            }
            let next = last.wrapping_add(u64::from(ahead));
            match self
                .last
                .compare_exchange_weak(last, next, Relaxed, Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

impl<R: RegisterIo> MonotonicCounter for ImxGpt<R> {
    fn start(&self) {
        self.program();
    }

    unsafe fn remap(&self, base: usize) {
        // SAFETY: the caller's contract (the GPT is mapped at `base`) is the
        // register block's.
        unsafe { self.regs.remap(base) };
    }

    fn ticks(&self) -> u64 {
        self.count()
    }

    fn frequency_hz(&self) -> u64 {
        self.hz
    }
}

impl<R: RegisterIo> embedded_hal::delay::DelayNs for ImxGpt<R> {
    fn delay_ns(&mut self, ns: u32) {
        busy_wait_ns(self, u64::from(ns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A9_GT: TimerDesc = TimerDesc {
        kind: TimerKind::A9GlobalTimer,
        base: 0x1E00_0200,
        frequency_hz: 100_000_000,
    };
    const CP15: TimerDesc = TimerDesc {
        kind: TimerKind::GenericTimer,
        base: 0,
        frequency_hz: 62_500_000,
    };

    #[test]
    fn drivers_follow_their_timer_desc() {
        let base = |d: &TimerDesc| {
            // SAFETY: the handle is never used to reach a register on the host.
            unsafe { A9GlobalTimer::from_desc(d) }.map(|t| t.base())
        };
        assert_eq!(base(&A9_GT), Some(0x1E00_0200));
        assert!(base(&CP15).is_none());
        assert_eq!(
            GenericTimer::from_desc(&CP15).map(|t| t.fallback_hz()),
            Some(62_500_000)
        );
        // SAFETY: the handle is never used to reach a register on the host.
        let t = unsafe { A9GlobalTimer::new(0, 100_000_000) };
        assert_eq!(t.hz(), 100_000_000);
        assert!(GenericTimer::from_desc(&A9_GT).is_none());
    }

    use crate::mmio::fake::FakeRegisters;

    const GPT: TimerDesc = TimerDesc {
        kind: TimerKind::ImxGpt,
        base: 0x0209_8000,
        frequency_hz: 66_000_000,
    };

    #[test]
    fn gpt_driver_follows_its_timer_desc() {
        // SAFETY: the handles are never used to reach a register on the host.
        let gpt = unsafe { ImxGpt::from_desc(&GPT) }.expect("an i.MX GPT");
        assert_eq!((gpt.base(), gpt.hz()), (0x0209_8000, 66_000_000));
        // SAFETY: as above.
        assert!(unsafe { ImxGpt::from_desc(&A9_GT) }.is_none());
        // SAFETY: as above.
        assert!(unsafe { A9GlobalTimer::from_desc(&GPT) }.is_none());
        assert!(GenericTimer::from_desc(&GPT).is_none());
    }

    #[test]
    fn gpt_start_programs_free_run_on_the_peripheral_clock_once() {
        // EN, WAITEN, CLKSRC = 001 (ipg_clk), FRR: Linux's V2 TCTL for the
        // peripheral clock.
        assert_eq!(GPT_CR_RUN, 0x0000_0249);
        let regs = FakeRegisters::new();
        let gpt = ImxGpt::with_registers(&regs, 66_000_000);
        gpt.start();
        assert_eq!(
            regs.writes(),
            [(GPT_CR, 0), (GPT_PR, 0), (GPT_CR, GPT_CR_RUN)]
        );
        // Already running so: a second start leaves the count alone.
        gpt.start();
        assert_eq!(regs.writes().len(), 3);
        assert_eq!(gpt.frequency_hz(), 66_000_000);
        assert_eq!(gpt.ticks_to_ns(66), 1000);
    }

    #[test]
    fn gpt_start_reprograms_a_timer_firmware_left_on_another_clock() {
        let regs = FakeRegisters::new();
        // Linux's i.MX6DL setup: the 24 MHz crystal (CLKSRC = 101, EN_24M) / 8.
        regs.set(GPT_CR, GPT_CR_EN | GPT_CR_FRR | (0b101 << 6) | (1 << 10));
        regs.set(GPT_PR, 7 << 12);
        let gpt = ImxGpt::with_registers(&regs, 66_000_000);
        gpt.start();
        assert_eq!(regs.written_to(GPT_CR), [0, GPT_CR_RUN]);
        assert_eq!(regs.written_to(GPT_PR), [0]);
        // A timer on the right clock with a prescaler is reprogrammed too.
        regs.set(GPT_PR, 1);
        gpt.start();
        assert_eq!(regs.written_to(GPT_PR), [0, 0]);
    }

    #[test]
    fn gpt_ticks_extend_the_32_bit_count_across_wraps() {
        let regs = FakeRegisters::new();
        let gpt = ImxGpt::with_registers(&regs, 49_500_000);
        regs.set(GPT_CNT, 0xFFFF_FFF0);
        assert_eq!(gpt.ticks(), 0xFFFF_FFF0);
        let sw = crate::board::Stopwatch::start(&gpt);
        regs.set(GPT_CNT, 0x10);
        assert_eq!(gpt.ticks(), 0x1_0000_0010);
        assert_eq!(sw.elapsed_ticks(), 0x20);
        // A reading older than the last one returned (another CPU's) is its own
        // count and counts no wrap.
        regs.set(GPT_CNT, 0x8);
        assert_eq!(gpt.ticks(), 0x1_0000_0008);
        regs.set(GPT_CNT, 0x20);
        assert_eq!(gpt.ticks(), 0x1_0000_0020);
        // Two more wraps, read at least once per 2^31 ticks.
        for cnt in [
            0x7000_0000,
            0xE000_0000,
            0x10,
            0x7000_0000,
            0xE000_0000,
            0x10,
        ] {
            regs.set(GPT_CNT, cnt);
            gpt.ticks();
        }
        assert_eq!(gpt.ticks(), 0x3_0000_0010);
        // Reads only: the counter is never written.
        assert!(regs.writes().is_empty());
    }

    #[test]
    fn gpt_delay_waits_for_enough_ticks() {
        let regs = FakeRegisters::new();
        let mut gpt = ImxGpt::with_registers(&regs, 66_000_000);
        // 1 us at 66 MHz = 66 ticks: the first read sees 0, the next ones 100.
        regs.set(GPT_CNT, 100);
        regs.read_as(GPT_CNT, 0, 1);
        embedded_hal::delay::DelayNs::delay_us(&mut gpt, 1);
        assert_eq!(regs.reads(), 2);
    }
}
