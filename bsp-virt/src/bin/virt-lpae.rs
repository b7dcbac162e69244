//! zonekit for QEMU `-M virt` with LPAE (board `virt-lpae`): the board's console, timer and
//! description handed to the generic boot. A target-only binary; on the host it only says so.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod target {
    // zonekit's panic report and semihosting exit.
    zonekit_arch_arm::panic_handler!();

    use zonekit_bsp_virt::{GenericTimer, Pl011, VIRT_LPAE};

    // SAFETY: the board table's UART of the board this binary is built for; only
    // the runtime's console uses it.
    static CONSOLE: Pl011 = unsafe { Pl011::new(VIRT_LPAE.uart_base as usize) };

    static TIMER: GenericTimer = match GenericTimer::from_desc(&VIRT_LPAE.timer) {
        Some(t) => t,
        None => panic!("the board table names another timer"),
    };

    // zonekit's `_start` and exception vectors, entering `kernel_main`.
    zonekit_arch_arm::entry!(kernel_main);

    /// Called by `_start` with the boot registers (r2: QEMU's DTB).
    fn kernel_main(_r0: u32, r1: u32, r2: u32) -> ! {
        zonekit_arch_arm::rt::boot_main(&VIRT_LPAE, &CONSOLE, &TIMER, r1, r2)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    println!("virt-lpae is a target-only binary: run `cargo xtask qemu --board virt-lpae`");
}
