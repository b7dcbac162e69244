//! Arm semihosting: the exit call QEMU turns into its own exit status, and the file
//! calls the `defmt` logger writes its frames with.
//!
//! Linux counterpart: none (Linux powers off through PSCI or a board reset driver).

/// `SYS_EXIT_EXTENDED`.
const SYS_EXIT_EXTENDED: u32 = 0x20;
/// `ADP_Stopped_ApplicationExit`.
const ADP_STOPPED_APPLICATION_EXIT: u32 = 0x2_0026;

/// `SYS_OPEN`.
const SYS_OPEN: u32 = 0x01;
/// `SYS_WRITE`.
const SYS_WRITE: u32 = 0x05;
/// `SYS_OPEN` mode 5: `"wb"` (create or truncate, binary).
pub const OPEN_WRITE_BINARY: u32 = 5;

/// One semihosting call: operation `op`, parameter block `block` (r1); returns r0.
fn call(op: u32, block: &[u32]) -> u32 {
    let ret;
    // SAFETY: the A32 semihosting call reads the parameter block r1 points to (and,
    // through it, the buffers the caller's block names, which the caller keeps alive
    // for the call); it writes only r0, and lr when it is taken as a real SVC
    // exception (a debug agent, or no `-semihosting`: then it traps).
    unsafe {
        core::arch::asm!(
            "svc 0x123456",
            inout("r0") op => ret,
            in("r1") block.as_ptr(),
            lateout("lr") _,
            options(nostack, readonly)
        );
    }
    ret
}

/// Opens the host file `name` (relative paths are relative to QEMU's working
/// directory) with a `SYS_OPEN` mode; returns the handle, or `None` on failure.
/// `name` must end with a NUL byte (the length passed excludes it).
pub fn open(name: &[u8], mode: u32) -> Option<u32> {
    let len = name.len().checked_sub(1).filter(|&l| name[l] == 0)?;
    let handle = call(SYS_OPEN, &[name.as_ptr() as usize as u32, mode, len as u32]);
    (handle as i32 >= 0).then_some(handle)
}

/// Writes `data` to the host file `handle`; returns false if not every byte was
/// written.
pub fn write(handle: u32, data: &[u8]) -> bool {
    if data.is_empty() {
        return true;
    }
    call(
        SYS_WRITE,
        &[handle, data.as_ptr() as usize as u32, data.len() as u32],
    ) == 0
}

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
            lateout("lr") _,
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
