//! The board description type and the console and counter interfaces, visible on the
//! host. This crate names no board: each BSP crate declares its boards in its
//! `Cargo.toml` and owns their [`BoardDesc`] constants and console drivers.
//!
//! Linux counterpart: a board's `MACHINE_START`/`DT_MACHINE_START` (`struct machine_desc`, chosen by `setup_machine_fdt`/`setup_machine_tags` in `arch/arm/kernel/setup.c`) plus its early console.

pub use crate::mmu::plan::DeviceRegion;
pub use crate::smp::SmpDesc;

/// A board zonekit boots on: what the boot flow needs to know about it.
///
/// A BSP crate does not write this by hand: it declares each board in its
/// `Cargo.toml` (`[package.metadata.zonekit.boards.<name>]`) and its build script
/// generates the constant (`zonekit_arch_arm::profile`, feature `build`), so that
/// xtask reads the same facts. The console driver is the BSP's own type behind [`Console`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoardDesc {
    /// zonekit's name for the board (also the BSP binary name).
    pub name: &'static str,
    /// Physical address of the first byte of DRAM.
    pub ram_base: u64,
    /// DRAM size when QEMU is given no `-m` (and the fallback when no memory map is
    /// passed to the image).
    pub default_ram: u64,
    /// Largest DRAM size that is reachable with 32-bit physical addresses (40-bit with
    /// [`Self::lpae`]) and that QEMU can model.
    pub max_ram: u64,
    /// `arm_dma_zone_size`: DMA zone size from the RAM base, or `None` (no ZONE_DMA).
    pub dma_zone_size: Option<u64>,
    /// Physical address of the console UART.
    pub uart_base: u64,
    /// Whether QEMU enters a raw image in HYP mode on this board.
    pub starts_in_hyp: bool,
    /// `CONFIG_ARM_LPAE`: long-descriptor page tables and 64-bit (40-bit) physical
    /// addresses, so RAM may reach above 4 GiB (a board variant of an LPAE-capable
    /// core, Cortex-A7/A15).
    pub lpae: bool,
    /// Machine number QEMU puts in r1 (`0xffff_ffff` when the board has none).
    pub machine_id: u32,
    /// MMIO regions the kernel maps at boot (`mdesc->map_io`): the console UART and
    /// the timers (and what the SMP bring-up touches). `paging_init` puts them in
    /// the device window.
    pub mmio: &'static [DeviceRegion],
    /// The free-running counter the boot uses for timings.
    pub timer: TimerDesc,
    /// How the secondary CPUs are counted and started ([`SmpDesc::UP`] for a board
    /// with one CPU).
    pub smp: SmpDesc,
}

/// Which free-running counter a board's timer driver reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// Cortex-A9 MPCore global timer (64-bit, memory-mapped, enabled by software).
    A9GlobalTimer,
    /// ARMv7 generic timer: the virtual count `CNTVCT` read through cp15 (always runs).
    GenericTimer,
    /// i.MX general purpose timer (32-bit free-running mode).
    ImxGpt,
}

/// A board's timer: what it is, where, and how fast QEMU runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerDesc {
    /// The kind of counter.
    pub kind: TimerKind,
    /// Physical address of its register block (0 for the cp15 generic timer).
    pub base: u64,
    /// Nominal rate in Hz (the generic timer's driver reads `CNTFRQ` instead).
    pub frequency_hz: u64,
}

/// A free-running, monotonic counter (a board timer). Visible on the host so that
/// tools and tests can provide their own.
pub trait MonotonicCounter: Sync {
    /// Start the counter if it needs software to start it (the A9 global timer does);
    /// idempotent.
    fn start(&self) {}

    /// The current count.
    fn ticks(&self) -> u64;

    /// Move a memory-mapped counter to the virtual address `base` of its register
    /// block once the MMU is on (no-op for counters read through cp15).
    ///
    /// # Safety
    ///
    /// The counter's registers must be mapped at `base` (device memory) from now on.
    #[allow(unsafe_code)] // a driver interface: moving an MMIO block is unsafe
    unsafe fn remap(&self, _base: usize) {}

    /// Counts per second.
    fn frequency_hz(&self) -> u64;

    /// `ticks` converted to nanoseconds (saturating).
    fn ticks_to_ns(&self, ticks: u64) -> u64 {
        ticks_to_ns(ticks, self.frequency_hz())
    }
}

/// `ticks` of a counter running at `hz` converted to nanoseconds (saturating; 0 when
/// `hz` is 0).
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    if hz == 0 {
        return 0;
    }
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(hz);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Busy-wait `ns` nanoseconds on `counter` (the body of the timers'
/// `embedded_hal::delay::DelayNs::delay_ns`). Waits at least `ns`, rounded up to a
/// whole tick; correct across counter wrap-around of the 64-bit count.
pub fn busy_wait_ns<C: MonotonicCounter + ?Sized>(counter: &C, ns: u64) {
    let hz = counter.frequency_hz();
    if hz == 0 || ns == 0 {
        return;
    }
    let wait = (u128::from(ns) * u128::from(hz)).div_ceil(1_000_000_000);
    let wait = u64::try_from(wait).unwrap_or(u64::MAX);
    let start = counter.ticks();
    while counter.ticks().wrapping_sub(start) < wait {
        core::hint::spin_loop();
    }
}

/// A stopwatch over a [`MonotonicCounter`].
pub struct Stopwatch<'a> {
    counter: &'a dyn MonotonicCounter,
    start: u64,
}

impl<'a> Stopwatch<'a> {
    /// Start timing now.
    pub fn start(counter: &'a dyn MonotonicCounter) -> Self {
        Self {
            counter,
            start: counter.ticks(),
        }
    }

    /// Ticks since the start.
    pub fn elapsed_ticks(&self) -> u64 {
        self.counter.ticks().wrapping_sub(self.start)
    }

    /// Microseconds since the start.
    pub fn elapsed_us(&self) -> u64 {
        self.counter.ticks_to_ns(self.elapsed_ticks()) / 1000
    }
}

/// Offset from the RAM base at which QEMU loads a raw (zImage-style) image.
pub const KERNEL_LOAD_OFFSET: u64 = 0x1_0000;

/// Offset from the RAM base at which QEMU places ATAGS.
pub const ATAGS_OFFSET: u64 = 0x100;

impl BoardDesc {
    /// Where the image is linked and loaded: RAM base + [`KERNEL_LOAD_OFFSET`].
    pub const fn load_address(&self) -> u64 {
        self.ram_base + KERNEL_LOAD_OFFSET
    }

    /// Check what the boot flow assumes of a board: its largest RAM is reachable
    /// without LPAE and holds the image, the default size fits in it, the console
    /// UART and a memory-mapped timer lie in an [`mmio`](Self::mmio) region, and no
    /// region overlaps RAM. BSP build scripts run it on every board they generate.
    pub fn check(&self) -> Result<(), BoardError> {
        let pa_end: u64 = if self.lpae { 1 << 40 } else { 1 << 32 };
        match self.ram_base.checked_add(self.max_ram) {
            Some(end) if end <= pa_end => {}
            _ => return Err(BoardError::NeedsLpae),
        }
        if self.default_ram == 0 || self.default_ram > self.max_ram {
            return Err(BoardError::DefaultRam);
        }
        if self.max_ram <= KERNEL_LOAD_OFFSET || !self.ram_base.is_multiple_of(0x10_0000) {
            return Err(BoardError::RamBase);
        }
        let mapped = |addr: u64| {
            self.mmio
                .iter()
                .any(|r| r.phys <= addr && addr < r.phys.saturating_add(r.size))
        };
        if !mapped(self.uart_base) {
            return Err(BoardError::Unmapped("the console UART"));
        }
        if self.timer.base != 0 && !mapped(self.timer.base) {
            return Err(BoardError::Unmapped("the timer"));
        }
        if let Some((what, _)) = self.smp.registers().find(|&(_, a)| !mapped(a)) {
            return Err(BoardError::Unmapped(what));
        }
        let ram_end = self.ram_base + self.max_ram;
        if let Some(r) = self
            .mmio
            .iter()
            .find(|r| r.size == 0 || (r.phys < ram_end && self.ram_base < r.phys + r.size))
        {
            return Err(BoardError::Region(r.name));
        }
        // `paging_init` must fit every region in the device window.
        let load = self.load_address();
        crate::mmu::plan::plan_kernel_mappings(
            (self.ram_base, self.ram_base + self.default_ram),
            self.ram_base,
            (load, load + 0x1000),
            self.mmio,
        )
        .map(|_| ())
        .map_err(|_| BoardError::DeviceWindow)
    }
}

/// Why a [`BoardDesc`] cannot be booted ([`BoardDesc::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardError {
    /// `ram_base + max_ram` lies above 4 GiB on a board without `lpae` (or above
    /// 1 TiB with it).
    NeedsLpae,
    /// `default_ram` is 0 or larger than `max_ram`.
    DefaultRam,
    /// RAM does not start on a 1 MiB boundary or cannot hold the image's load offset.
    RamBase,
    /// The device is in no `mmio` region, so it is unreachable once the MMU is on.
    Unmapped(&'static str),
    /// This `mmio` region is empty or overlaps RAM.
    Region(&'static str),
    /// `paging_init` cannot map the `mmio` regions (more or larger than the device
    /// window holds).
    DeviceWindow,
}

impl core::fmt::Display for BoardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BoardError::NeedsLpae => write!(
                f,
                "RAM reaches above 4 GiB without LPAE (`lpae = true`), or above 1 TiB"
            ),
            BoardError::DefaultRam => write!(f, "default_ram must be between 1 byte and max_ram"),
            BoardError::RamBase => write!(
                f,
                "ram_base must be 1 MiB aligned and max_ram larger than the load offset {KERNEL_LOAD_OFFSET:#x}"
            ),
            BoardError::Unmapped(what) => write!(f, "{what} is in no mmio region"),
            BoardError::Region(name) => write!(f, "mmio region {name} is empty or overlaps RAM"),
            BoardError::DeviceWindow => {
                write!(f, "the mmio regions do not fit paging_init's device window")
            }
        }
    }
}

/// A byte sink for boot messages. Implementations must be usable through a shared
/// reference from a `static`, before any other initialisation (MMIO UARTs are).
pub trait Console: Sync {
    /// Write one byte, waiting until the device accepts it.
    fn putc(&self, byte: u8);

    /// Reach the device at virtual address `base` from now on (called once the MMU
    /// is on, with the UART's address in the device window). Consoles that are not
    /// memory-mapped ignore it.
    ///
    /// # Safety
    ///
    /// The UART's registers must be mapped at `base` (device memory) from now on.
    #[allow(unsafe_code)] // a driver interface: moving an MMIO block is unsafe
    unsafe fn remap(&self, base: usize) {
        let _ = base;
    }

    /// Write a string, turning `\n` into `\r\n`.
    fn puts(&self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.putc(b'\r');
            }
            self.putc(b);
        }
    }
}

/// Adapts a [`Console`] to [`core::fmt::Write`].
pub struct ConsoleWriter<'a>(pub &'a dyn Console);

impl core::fmt::Write for ConsoleWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.puts(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use core::fmt::Write;
    use std::string::ToString;
    use std::vec::Vec;

    struct Capture(std::sync::Mutex<RefCell<Vec<u8>>>);

    impl Console for Capture {
        fn putc(&self, byte: u8) {
            self.0.lock().unwrap().borrow_mut().push(byte);
        }
    }

    const REGIONS: [DeviceRegion; 2] = [
        DeviceRegion {
            name: "uart0",
            phys: 0xE000_0000,
            size: 0x1000,
        },
        DeviceRegion {
            name: "mpcore",
            phys: 0xF8F0_0000,
            size: 0x2000,
        },
    ];

    /// A board with RAM at physical 0 (PHYS_OFFSET 0).
    const SAMPLE: BoardDesc = BoardDesc {
        name: "sample",
        ram_base: 0,
        default_ram: 128 << 20,
        max_ram: 2 << 30,
        dma_zone_size: None,
        uart_base: 0xE000_0000,
        starts_in_hyp: false,
        lpae: false,
        machine_id: 0xd32,
        mmio: &REGIONS,
        timer: TimerDesc {
            kind: TimerKind::A9GlobalTimer,
            base: 0xF8F0_0200,
            frequency_hz: 100_000_000,
        },
        smp: SmpDesc::UP,
    };

    #[test]
    fn check_accepts_a_board_and_names_what_is_wrong() {
        assert_eq!(SAMPLE.check(), Ok(()));
        assert_eq!(SAMPLE.load_address(), 0x1_0000);
        let lpae = BoardDesc {
            max_ram: 5 << 30,
            ..SAMPLE
        };
        assert_eq!(lpae.check(), Err(BoardError::NeedsLpae));
        assert_ne!(
            BoardDesc { lpae: true, ..lpae }.check(),
            Err(BoardError::NeedsLpae)
        );
        let big_default = BoardDesc {
            default_ram: 3 << 30,
            ..SAMPLE
        };
        assert_eq!(big_default.check(), Err(BoardError::DefaultRam));
        let unaligned = BoardDesc {
            ram_base: 0x8000,
            ..SAMPLE
        };
        assert_eq!(unaligned.check(), Err(BoardError::RamBase));
        let no_uart = BoardDesc {
            uart_base: 0xE000_1000,
            ..SAMPLE
        };
        assert_eq!(
            no_uart.check(),
            Err(BoardError::Unmapped("the console UART"))
        );
        let no_timer = BoardDesc {
            timer: TimerDesc {
                base: 0x1E00_0200,
                ..SAMPLE.timer
            },
            ..SAMPLE
        };
        assert_eq!(no_timer.check(), Err(BoardError::Unmapped("the timer")));
        let scu_only = BoardDesc {
            smp: SmpDesc {
                method: crate::smp::SmpMethod::ImxSrc { src: 0xF8F0_0000 },
                count: crate::smp::CpuCount::A9Scu { scu: 0xF8F0_0000 },
            },
            ..SAMPLE
        };
        assert_eq!(scu_only.check(), Ok(()));
        let no_src = BoardDesc {
            smp: SmpDesc {
                method: crate::smp::SmpMethod::ImxSrc { src: 0x020D_8000 },
                ..scu_only.smp
            },
            ..SAMPLE
        };
        assert_eq!(no_src.check(), Err(BoardError::Unmapped("the SRC")));
        // The cp15 generic timer needs no mapping.
        let cp15 = BoardDesc {
            timer: TimerDesc {
                kind: TimerKind::GenericTimer,
                base: 0,
                frequency_hz: 62_500_000,
            },
            ..SAMPLE
        };
        assert_eq!(cp15.check(), Ok(()));
        const HUGE: [DeviceRegion; 1] = [DeviceRegion {
            name: "uart0",
            phys: 0xD000_0000,
            size: 0x1000_0000,
        }];
        let crowded = BoardDesc {
            uart_base: 0xD000_0000,
            mmio: &HUGE,
            ..cp15
        };
        assert_eq!(crowded.check(), Err(BoardError::DeviceWindow));
        let in_ram = BoardDesc {
            ram_base: 0xC000_0000,
            max_ram: 1 << 30,
            ..SAMPLE
        };
        assert_eq!(in_ram.check(), Err(BoardError::Region("uart0")));
        assert!(in_ram
            .check()
            .unwrap_err()
            .to_string()
            .contains("uart0 is empty or overlaps RAM"));
    }

    struct FakeCounter(std::sync::atomic::AtomicU64);

    impl MonotonicCounter for FakeCounter {
        fn ticks(&self) -> u64 {
            // Every read advances the count by 3 ticks.
            self.0.fetch_add(3, std::sync::atomic::Ordering::Relaxed)
        }
        fn frequency_hz(&self) -> u64 {
            1_000_000
        }
    }

    #[test]
    fn counter_conversions_and_delay() {
        assert_eq!(ticks_to_ns(100, 100_000_000), 1000);
        assert_eq!(ticks_to_ns(125, 62_500_000), 2000);
        assert_eq!(ticks_to_ns(5, 0), 0);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        let c = FakeCounter(std::sync::atomic::AtomicU64::new(u64::MAX - 10));
        // 10 us at 1 MHz = 10 ticks, across the wrap of the count.
        busy_wait_ns(&c, 10_000);
        let after = c.0.load(std::sync::atomic::Ordering::Relaxed);
        assert!(after.wrapping_sub(u64::MAX - 10) >= 10);
        let sw = Stopwatch::start(&c);
        assert_eq!(sw.elapsed_ticks(), 3);
        assert_eq!(sw.elapsed_us(), 6);
    }

    #[test]
    fn writer_translates_newlines() {
        let c = Capture(std::sync::Mutex::new(RefCell::new(Vec::new())));
        write!(ConsoleWriter(&c), "a\nb {}", 1).unwrap();
        assert_eq!(&*c.0.lock().unwrap().borrow(), b"a\r\nb 1");
    }
}
