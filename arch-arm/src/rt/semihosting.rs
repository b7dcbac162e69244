//! Arm semihosting: the exit call QEMU turns into its own exit status.
//!
//! Linux counterpart: none (Linux powers off through PSCI or a board reset driver); QEMU turns this into its exit status.

/// `SYS_EXIT_EXTENDED`.
const SYS_EXIT_EXTENDED: u32 = 0x20;
/// `ADP_Stopped_ApplicationExit`.
const ADP_STOPPED_APPLICATION_EXIT: u32 = 0x2_0026;

/// Ends the emulation with exit status `code` (QEMU keeps the low 8 bits). Without
/// `-semihosting` the call traps as an ordinary SVC and the vector halts the CPU.
pub fn exit(code: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, code];
    // SAFETY: the A32 semihosting call reads the two-word block r1 points to, which
    // lives on our stack for the duration of the call; it does not return on QEMU.
    unsafe {
        core::arch::asm!(
            "svc 0x123456",
            inout("r0") SYS_EXIT_EXTENDED => _,
            in("r1") block.as_ptr(),
            options(nostack, readonly)
        );
    }
    halt()
}

/// Stops this CPU forever (interrupts are masked, so `wfe` only idles).
pub fn halt() -> ! {
    loop {
        // SAFETY: `wfe` only waits for an event; it touches no memory or registers.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack, preserves_flags)) };
    }
}
