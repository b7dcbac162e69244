//! Board descriptions and the console interface, visible on the host so that tools
//! (xtask, tests) can list boards without any target code.
//!
//! Linux counterpart: a board's `MACHINE_START`/`DT_MACHINE_START` (`struct machine_desc`, chosen by `setup_machine_fdt`/`setup_machine_tags` in `arch/arm/kernel/setup.c`) plus its early console.

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
    /// QEMU `-cpu` to ask for, or `None` for the machine's default CPU.
    pub qemu_cpu: Option<&'static str>,
    /// QEMU generates the board's device tree itself and always passes it in r2 (no
    /// ATAGS, and `-dtb` would replace the machine's own tree).
    pub qemu_dtb: bool,
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
}

/// Bytes in a mebibyte.
const MIB: u64 = 1 << 20;

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
        }
        assert_eq!(find("nope"), None);
    }

    #[test]
    fn writer_translates_newlines() {
        let c = Capture(std::sync::Mutex::new(RefCell::new(Vec::new())));
        write!(ConsoleWriter(&c), "a\nb {}", 1).unwrap();
        assert_eq!(&*c.0.lock().unwrap().borrow(), b"a\r\nb 1");
    }
}
