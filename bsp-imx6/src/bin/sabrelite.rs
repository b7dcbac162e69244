//! zonekit for QEMU `-M sabrelite`: the board's console, timer and memory description handed to
//! the generic boot. A target-only binary; on the host it only says so.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod target {
    // zonekit's panic report and semihosting exit.
    zonekit_arch_arm::panic_handler!();

    use zonekit_bsp_imx6::{ImxGpt, ImxUart, SABRELITE};

    // SAFETY: the board table's UART of the board this binary is built for; only
    // the runtime's console uses it.
    static CONSOLE: ImxUart = unsafe { ImxUart::new(SABRELITE.uart_base as usize) };

    static TIMER: ImxGpt =
        // SAFETY: the board table's timer of the board this binary is built for; only
        // the runtime uses it.
        match unsafe { ImxGpt::from_desc(&SABRELITE.timer) } {
            Some(t) => t,
            None => panic!("the board table names another timer"),
        };

    // zonekit's `_start` and exception vectors, entering `kernel_main`.
    zonekit_arch_arm::entry!(kernel_main);

    /// Called by `_start` with the boot registers.
    fn kernel_main(_r0: u32, r1: u32, r2: u32) -> ! {
        zonekit_arch_arm::rt::boot_main(&SABRELITE, &CONSOLE, &TIMER, r1, r2)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    println!("sabrelite is a target-only binary: run `cargo xtask qemu --board sabrelite`");
}
