//! Board descriptions and the console interface, visible on the host so that tools
//! (xtask, tests) can list boards without any target code.
//!
//! Linux counterpart: a board's `MACHINE_START`/`DT_MACHINE_START` (`struct machine_desc`, chosen by `setup_machine_fdt`/`setup_machine_tags` in `arch/arm/kernel/setup.c`) plus its early console.

pub use crate::mmu::plan::DeviceRegion;

/// Which console UART a board uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PrimeCell PL011 (vexpress, virt).
    Pl011,
    /// Freescale/NXP i.MX UART (i.MX6Q, i.MX6UL).
    Imx,
}

/// A QEMU board zonekit boots on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoardDesc {
    /// zonekit's name for the board (also the BSP binary name).
    pub name: &'static str,
    /// QEMU `-M` machine name.
    pub qemu_machine: &'static str,
    /// The BSP package that holds the board's binary.
    pub package: &'static str,
    /// Physical address of the first byte of DRAM.
    pub ram_base: u64,
    /// DRAM size when QEMU is given no `-m` (and the fallback when no memory map is
    /// passed to the image).
    pub default_ram: u64,
    /// Largest DRAM size that is reachable with 32-bit physical addresses (or that QEMU
    /// can model).
    pub max_ram: u64,
    /// `arm_dma_zone_size`: DMA zone size from the RAM base, or `None` (no ZONE_DMA).
    pub dma_zone_size: Option<u64>,
    /// Physical address of the console UART.
    pub uart_base: u64,
    /// Kind of the console UART.
    pub uart_kind: UartKind,
    /// Whether QEMU enters a raw image in HYP mode on this board.
    pub starts_in_hyp: bool,
    /// Machine number QEMU puts in r1 (`0xffff_ffff` when the board has none).
    pub machine_id: u32,
    /// MMIO regions the kernel maps at boot (`mdesc->map_io`): the console UART and
    /// the timers. `paging_init` puts them in the device window.
    pub mmio: &'static [DeviceRegion],
    /// The free-running counter the boot uses for timings.
    pub timer: TimerDesc,
    /// QEMU `-cpu` to ask for, or `None` for the machine's default CPU.
    pub qemu_cpu: Option<&'static str>,
    /// QEMU generates the board's device tree itself and always passes it in r2 (no
    /// ATAGS, and `-dtb` would replace the machine's own tree).
    pub qemu_dtb: bool,
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

/// The A9 MPCore global timer: 100 MHz in QEMU (prescaler 0).
const fn a9_global_timer(base: u64) -> TimerDesc {
    TimerDesc {
        kind: TimerKind::A9GlobalTimer,
        base,
        frequency_hz: 100_000_000,
    }
}

/// The ARMv7 generic timer as QEMU presets it (`CNTFRQ` = 62.5 MHz).
const GENERIC_TIMER: TimerDesc = TimerDesc {
    kind: TimerKind::GenericTimer,
    base: 0,
    frequency_hz: 62_500_000,
};

/// Offset from the RAM base at which QEMU loads a raw (zImage-style) image.
pub const KERNEL_LOAD_OFFSET: u64 = 0x1_0000;

/// Offset from the RAM base at which QEMU places ATAGS.
pub const ATAGS_OFFSET: u64 = 0x100;

impl BoardDesc {
    /// Where the image is linked and loaded: RAM base + [`KERNEL_LOAD_OFFSET`].
    pub const fn load_address(&self) -> u64 {
        self.ram_base + KERNEL_LOAD_OFFSET
    }
}

/// Bytes in a mebibyte.
const MIB: u64 = 1 << 20;

const fn region(name: &'static str, phys: u64, size: u64) -> DeviceRegion {
    DeviceRegion { name, phys, size }
}

/// vexpress-a9: PL011 UART0, the MPCore private region (SCU, GIC, global and private
/// timers; periphbase 0x1E000000).
pub const VEXPRESS_A9_MMIO: [DeviceRegion; 2] = [
    region("uart0", 0x1000_9000, 0x1000),
    region("mpcore", 0x1E00_0000, 0x2000),
];

/// vexpress-a15: PL011 UART0, the GIC (CBAR 0x2C000000). The timer is the CP15
/// generic timer and needs no mapping.
pub const VEXPRESS_A15_MMIO: [DeviceRegion; 2] = [
    region("uart0", 0x1C09_0000, 0x1000),
    region("gic", 0x2C00_0000, 0x8000),
];

/// sabrelite: i.MX UART1, the GPT, the MPCore private region (periphbase 0x00A00000).
pub const SABRELITE_MMIO: [DeviceRegion; 3] = [
    region("uart1", 0x0202_0000, 0x4000),
    region("gpt", 0x0209_8000, 0x4000),
    region("mpcore", 0x00A0_0000, 0x2000),
];

/// mcimx6ul-evk: i.MX UART1 and GPT1 (the generic timer needs no mapping).
pub const MCIMX6UL_EVK_MMIO: [DeviceRegion; 2] = [
    region("uart1", 0x0202_0000, 0x4000),
    region("gpt1", 0x0209_8000, 0x4000),
];

/// virt: PL011 UART0 and the GIC (the timer is the CP15 generic timer).
pub const VIRT_MMIO: [DeviceRegion; 2] = [
    region("uart0", 0x0900_0000, 0x1000),
    region("gic", 0x0800_0000, 0x2_0000),
];

/// `-M vexpress-a9`: RAM at 0x6000_0000 (QEMU models at most 1 GiB), PL011 UART0 at
/// 0x1000_9000.
pub const VEXPRESS_A9: BoardDesc = BoardDesc {
    name: "vexpress-a9",
    qemu_machine: "vexpress-a9",
    package: "zonekit-bsp-vexpress",
    ram_base: 0x6000_0000,
    default_ram: 128 * MIB,
    max_ram: 1024 * MIB,
    dma_zone_size: None,
    uart_base: 0x1000_9000,
    uart_kind: UartKind::Pl011,
    starts_in_hyp: false,
    machine_id: 0x8e0,
    mmio: &VEXPRESS_A9_MMIO,
    timer: a9_global_timer(0x1E00_0200),
    qemu_cpu: None,
    qemu_dtb: false,
};

/// `-M vexpress-a15`: RAM at 0x8000_0000 (at most 2 GiB below 4 GiB without LPAE),
/// PL011 UART0 at 0x1C09_0000.
pub const VEXPRESS_A15: BoardDesc = BoardDesc {
    name: "vexpress-a15",
    qemu_machine: "vexpress-a15",
    package: "zonekit-bsp-vexpress",
    ram_base: 0x8000_0000,
    default_ram: 128 * MIB,
    max_ram: 2048 * MIB,
    dma_zone_size: None,
    uart_base: 0x1C09_0000,
    uart_kind: UartKind::Pl011,
    starts_in_hyp: false,
    machine_id: 0x8e0,
    mmio: &VEXPRESS_A15_MMIO,
    timer: GENERIC_TIMER,
    qemu_cpu: None,
    qemu_dtb: false,
};

/// `-M sabrelite`: MMDC RAM at 0x1000_0000 (QEMU models at most 3840 MiB, up to
/// 0xFFFF_FFFF), console on UART1 at 0x0202_0000 (the first `-serial`).
pub const SABRELITE: BoardDesc = BoardDesc {
    name: "sabrelite",
    qemu_machine: "sabrelite",
    package: "zonekit-bsp-imx6",
    ram_base: 0x1000_0000,
    default_ram: 128 * MIB,
    max_ram: 3840 * MIB,
    dma_zone_size: None,
    uart_base: 0x0202_0000,
    uart_kind: UartKind::Imx,
    starts_in_hyp: false,
    machine_id: 0xffff_ffff,
    mmio: &SABRELITE_MMIO,
    timer: a9_global_timer(0x00A0_0200),
    qemu_cpu: None,
    qemu_dtb: false,
};

/// `-M mcimx6ul-evk`: MMDC RAM at 0x8000_0000 (at most 2 GiB), console on UART1 at
/// 0x0202_0000. QEMU enters raw images in HYP mode on this board.
pub const MCIMX6UL_EVK: BoardDesc = BoardDesc {
    name: "mcimx6ul-evk",
    qemu_machine: "mcimx6ul-evk",
    package: "zonekit-bsp-imx6",
    ram_base: 0x8000_0000,
    default_ram: 128 * MIB,
    max_ram: 2048 * MIB,
    dma_zone_size: None,
    uart_base: 0x0202_0000,
    uart_kind: UartKind::Imx,
    starts_in_hyp: true,
    machine_id: 0xffff_ffff,
    mmio: &MCIMX6UL_EVK_MMIO,
    timer: GENERIC_TIMER,
    qemu_cpu: None,
    qemu_dtb: false,
};

/// `-M virt -cpu cortex-a15`: QEMU's generic board, RAM at 0x4000_0000 (at most 3 GiB
/// below 4 GiB without LPAE), PL011 at 0x0900_0000, described only by the device tree
/// QEMU generates and passes in r2.
pub const VIRT: BoardDesc = BoardDesc {
    name: "virt",
    qemu_machine: "virt",
    package: "zonekit-bsp-virt",
    ram_base: 0x4000_0000,
    default_ram: 128 * MIB,
    max_ram: 3072 * MIB,
    dma_zone_size: None,
    uart_base: 0x0900_0000,
    uart_kind: UartKind::Pl011,
    starts_in_hyp: false,
    machine_id: 0xffff_ffff,
    mmio: &VIRT_MMIO,
    timer: GENERIC_TIMER,
    qemu_cpu: Some("cortex-a15"),
    qemu_dtb: true,
};

/// Every board zonekit boots on (the BSP crates re-export their own).
pub const BOARDS: [&BoardDesc; 5] = [
    &VEXPRESS_A9,
    &VEXPRESS_A15,
    &SABRELITE,
    &MCIMX6UL_EVK,
    &VIRT,
];

/// The board called `name`.
pub fn find(name: &str) -> Option<&'static BoardDesc> {
    BOARDS.iter().copied().find(|b| b.name == name)
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
    use std::vec::Vec;

    struct Capture(std::sync::Mutex<RefCell<Vec<u8>>>);

    impl Console for Capture {
        fn putc(&self, byte: u8) {
            self.0.lock().unwrap().borrow_mut().push(byte);
        }
    }

    #[test]
    fn boards_are_consistent() {
        for b in BOARDS {
            assert_eq!(find(b.name), Some(b));
            assert_eq!(b.load_address(), b.ram_base + 0x1_0000);
            assert!(b.ram_base + b.max_ram <= 1 << 32, "{} needs LPAE", b.name);
            assert!(b.default_ram <= b.max_ram);
            assert!(
                b.mmio
                    .iter()
                    .any(|r| r.phys <= b.uart_base && b.uart_base < r.phys + r.size),
                "{}: the console UART is not in mmio",
                b.name
            );
            for r in b.mmio {
                let ram = (b.ram_base, b.ram_base + b.max_ram);
                assert!(
                    r.phys + r.size <= ram.0 || r.phys >= ram.1,
                    "{} overlaps RAM",
                    r.name
                );
            }
        }
        assert_eq!(find("nope"), None);
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
    fn timers_are_described() {
        assert_eq!(VEXPRESS_A9.timer.kind, TimerKind::A9GlobalTimer);
        assert_eq!(VEXPRESS_A9.timer.base, 0x1E00_0200);
        assert_eq!(SABRELITE.timer.base, 0x00A0_0200);
        assert_eq!(VEXPRESS_A15.timer.kind, TimerKind::GenericTimer);
        assert_eq!(MCIMX6UL_EVK.timer.frequency_hz, 62_500_000);
    }

    #[test]
    fn writer_translates_newlines() {
        let c = Capture(std::sync::Mutex::new(RefCell::new(Vec::new())));
        write!(ConsoleWriter(&c), "a\nb {}", 1).unwrap();
        assert_eq!(&*c.0.lock().unwrap().borrow(), b"a\r\nb 1");
    }
}
