//! zonekit for QEMU `-M xilinx-zynq-a9`: the board's console, timer and description
//! handed to the generic boot. A target-only binary; on the host it only says so.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod target {
    // zonekit's panic report and semihosting exit.
    zonekit_arch_arm::panic_handler!();

    use zonekit_bsp_zynq::{A9GlobalTimer, CadenceUart, XILINX_ZYNQ_A9};

    // SAFETY: the board table's UART of the board this binary is built for; only
    // the runtime's console uses it.
    static CONSOLE: CadenceUart = unsafe { CadenceUart::new(XILINX_ZYNQ_A9.uart_base as usize) };

    // SAFETY: the board table's timer of the board this binary is built for.
    static TIMER: A9GlobalTimer = match unsafe { A9GlobalTimer::from_desc(&XILINX_ZYNQ_A9.timer) } {
        Some(t) => t,
        None => panic!("the board table names another timer"),
    };

    // zonekit's `_start` and exception vectors, entering `kernel_main`.
    zonekit_arch_arm::entry!(kernel_main);

    /// Called by `_start` with the boot registers (r2: the DTB).
    fn kernel_main(_r0: u32, r1: u32, r2: u32) -> ! {
        zonekit_arch_arm::rt::boot_main(&XILINX_ZYNQ_A9, &CONSOLE, &TIMER, r1, r2)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    println!(
        "xilinx-zynq-a9 is a target-only binary: run `cargo xtask qemu --board xilinx-zynq-a9`"
    );
}
