//! The board-specific halves of the bring-up on the target: counting the CPUs
//! ([`CpuCount`]) and waking one ([`SmpMethod`]), through the register values and
//! drivers of [`crate::smp`]. Device registers are reached where the boot CPU's
//! tables map them (`paging_init`'s device window), or at their physical address in
//! a `zonekit.nommu` boot.

use crate::mmio::Mmio;
use crate::mmu::hw::cp15;
use crate::smp::{
    imx_src_wake, l2ctlr_cpu_count, scu_cpu_count, vexpress_wake, CpuCount, PsciConduit, SmpMethod,
    PSCI_0_2_FN_CPU_ON, SCU_CONFIG,
};
use aarch32_cpu::register::SysRegRead;

/// Where a device's physical address is reachable now (`None`: not mapped).
pub(super) type DeviceAddr<'a> = &'a dyn Fn(u64) -> Option<u32>;

/// A register block at virtual `va`.
///
/// # Safety
///
/// `va` must be a device register block of the running board, mapped (or the MMU
/// off), and nothing else may drive it concurrently.
unsafe fn block(va: u32) -> Mmio {
    // SAFETY: the caller's contract is `Mmio::new`'s.
    unsafe { Mmio::new(va as usize) }
}

/// How many CPUs the hardware reports (`None`: a register it needs is not mapped).
pub(super) fn present_cpus(count: CpuCount, dev: DeviceAddr<'_>) -> Option<usize> {
    Some(match count {
        CpuCount::One => 1,
        CpuCount::A9Scu { scu } => {
            // SAFETY: the board table's SCU (the MPCore region, mapped by
            // paging_init as `BoardDesc::check` requires); the configuration
            // register is read-only.
            let scu = unsafe { block(dev(scu)?) };
            scu_cpu_count(crate::mmio::RegisterIo::read32(&scu, SCU_CONFIG))
        }
        CpuCount::L2ctlr => l2ctlr_cpu_count(<cp15::L2ctlr as SysRegRead>::read_raw()),
    })
}

/// Why a CPU could not be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WakeError {
    /// The board starts no secondaries.
    NoMethod,
    /// A register block of the method is not mapped.
    Unmapped,
    /// The core number is outside what the method can start.
    BadCore,
    /// PSCI `CPU_ON` returned this error.
    Psci(i32),
}

/// Wake the CPU with MPIDR affinity `hwid` at physical `entry`.
pub(super) fn wake(
    method: SmpMethod,
    dev: DeviceAddr<'_>,
    hwid: u32,
    entry: u32,
) -> Result<(), WakeError> {
    match method {
        SmpMethod::None => Err(WakeError::NoMethod),
        SmpMethod::VexpressSysFlags { sysregs, gic_dist } => {
            let (s, g) = (
                dev(sysregs).ok_or(WakeError::Unmapped)?,
                dev(gic_dist).ok_or(WakeError::Unmapped)?,
            );
            // SAFETY: the board table's system registers and GIC distributor,
            // mapped as `BoardDesc::check` requires; only the boot CPU drives them,
            // one wake-up at a time.
            let (s, g) = unsafe { (block(s), block(g)) };
            vexpress_wake(&s, &g, hwid & 0xFF, entry);
            Ok(())
        }
        SmpMethod::ImxSrc { src } => {
            let s = dev(src).ok_or(WakeError::Unmapped)?;
            // SAFETY: the board table's SRC, mapped as `BoardDesc::check` requires;
            // only the boot CPU drives it.
            let s = unsafe { block(s) };
            if imx_src_wake(&s, (hwid & 0xFF) as usize, entry) {
                Ok(())
            } else {
                Err(WakeError::BadCore)
            }
        }
        SmpMethod::Psci { conduit } => {
            // SAFETY: a PSCI call as the board's table says its firmware (QEMU)
            // takes it; CPU_ON only starts the other CPU at `entry`, which is code
            // of this image.
            let r = unsafe { psci_call(conduit, PSCI_0_2_FN_CPU_ON, hwid, entry, 0) };
            if r == 0 {
                Ok(())
            } else {
                Err(WakeError::Psci(r))
            }
        }
    }
}

/// A PSCI call (SMC32 convention: function id in r0, arguments in r1-r3, result in
/// r0) through `conduit`.
///
/// # Safety
///
/// The board must have a PSCI implementation behind `conduit` (otherwise the
/// instruction is an exception), and the call's effect must be sound for the caller.
unsafe fn psci_call(conduit: PsciConduit, function: u32, a1: u32, a2: u32, a3: u32) -> i32 {
    let r0: u32;
    // One SMC32 call through `$insn` (which needs `.arch_extension $ext`).
    macro_rules! call {
        ($ext:literal, $insn:literal) => {
            core::arch::asm!(
                concat!(".arch_extension ", $ext),
                concat!($insn, " #0"),
                inout("r0") function => r0,
                inout("r1") a1 => _,
                inout("r2") a2 => _,
                inout("r3") a3 => _,
                options(nostack)
            )
        };
    }
    match conduit {
        // SAFETY: the caller's contract; the call clobbers at most r0-r3.
        PsciConduit::Hvc => unsafe { call!("virt", "hvc") },
        // SAFETY: as above.
        PsciConduit::Smc => unsafe { call!("sec", "smc") },
    }
    r0 as i32
}
