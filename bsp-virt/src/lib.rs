//! # zonekit-bsp-virt
//!
//! QEMU's generic `virt` machine (`-M virt -cpu cortex-a15`): RAM at 0x4000_0000, a
//! PL011 console at 0x0900_0000, and no board memory map beyond that: QEMU generates
//! the device tree and passes it in r2, and zonekit's `early_init_dt_scan_memory`
//! equivalent ([`zonekit_arch_arm::fdt`]) reads RAM, the command line and the
//! reservations from it. The PL011 driver is the vexpress BSP's.
#![no_std]
#![deny(missing_docs)]

use zonekit_arch_arm::board::BoardDesc;
pub use zonekit_arch_arm::board::VIRT;
pub use zonekit_bsp_vexpress::{GenericTimer, Pl011};

/// Every board of this BSP.
pub const BOARDS: [&BoardDesc; 1] = [&VIRT];

#[cfg(test)]
mod tests {
    use super::*;
    use zonekit_arch_arm::board::UartKind;

    #[test]
    fn virt_is_dtb_described() {
        assert_eq!((VIRT.ram_base, VIRT.uart_base), (0x4000_0000, 0x0900_0000));
        assert_eq!(VIRT.uart_kind, UartKind::Pl011);
        const { assert!(VIRT.qemu_dtb && VIRT.ram_base + VIRT.max_ram == 1 << 32) };
        assert_eq!(BOARDS[0].package, env!("CARGO_PKG_NAME"));
    }
}
