//! zonekit for QEMU `-M vexpress-a15` with LPAE (board `vexpress-a15-lpae`): the board's
//! console, timer and memory description handed to the generic boot. A target-only
//! binary; on the host it only says so.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod target {
    // zonekit's panic report and semihosting exit.
    zonekit_arch_arm::panic_handler!();

    use zonekit_bsp_vexpress::{GenericTimer, Pl011, VEXPRESS_A15_LPAE};

    // SAFETY: the board table's UART of the board this binary is built for; only
    // the runtime's console uses it.
    static CONSOLE: Pl011 = unsafe { Pl011::new(VEXPRESS_A15_LPAE.uart_base as usize) };

    static TIMER: GenericTimer = match GenericTimer::from_desc(&VEXPRESS_A15_LPAE.timer) {
        Some(t) => t,
        None => panic!("the board table names another timer"),
    };

    // zonekit's `_start` and exception vectors, entering `kernel_main`.
    zonekit_arch_arm::entry!(kernel_main);

    /// Called by `_start` with the boot registers.
    fn kernel_main(_r0: u32, r1: u32, r2: u32) -> ! {
        zonekit_arch_arm::rt::boot_main(&VEXPRESS_A15_LPAE, &CONSOLE, &TIMER, r1, r2)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    println!("vexpress-a15-lpae is a target-only binary: run `cargo xtask qemu --board vexpress-a15-lpae`");
}
