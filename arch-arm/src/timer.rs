//! CPU timers shared by the boards: the Cortex-A9 MPCore global timer (vexpress-a9,
//! sabrelite) and the ARMv7 generic timer (vexpress-a15, mcimx6ul-evk).
//!
//! The driver types exist on the host (so tools can name them); reading the hardware
//! ([`MonotonicCounter`](crate::board::MonotonicCounter) and `embedded_hal::delay::DelayNs`) is target-only.
// The explicit link target above is needed on the host and redundant on the target.
#![allow(rustdoc::redundant_explicit_links)]

#[cfg(all(target_arch = "arm", target_os = "none"))]
use crate::board::{busy_wait_ns, MonotonicCounter};
use crate::board::{TimerDesc, TimerKind};

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
        // SAFETY: `base` is the board's global timer (a BoardDesc constant) reached by
        // identity addressing with the MMU off; the control register is 32-bit MMIO,
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
}
