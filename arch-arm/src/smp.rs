//! Secondary-CPU bring-up, the part visible on the host: how a board starts its other
//! CPUs ([`SmpMethod`]) and learns how many it has ([`CpuCount`]), the register
//! values of each wake-up method as pure functions, and the drivers that write them
//! (generic over [`RegisterIo`], so the host tests run them on fake registers).
//! The target runtime (`rt::smp`, target only) maps the registers, hands each CPU
//! its stack and page tables, and runs `on_each_cpu` work on them.
//!
//! The methods, as Linux 6.1 starts the CPUs of these boards:
//!
//! * [`SmpMethod::VexpressSysFlags`] (`arch/arm/mach-vexpress/platsmp.c`,
//!   `plat-versatile/platsmp.c`): the secondaries wait in the boot loader (QEMU's
//!   stub in SRAM, `hw/arm/boot.c`) in `wfi` until an interrupt arrives and
//!   `SYS_FLAGS` is not zero, then jump to it. The boot CPU clears the flags
//!   (`SYS_FLAGSCLR`), writes the entry's physical address (`SYS_FLAGSSET`), enables
//!   the GIC distributor and sends an SGI to the CPU through `GICD_SGIR`.
//! * [`SmpMethod::ImxSrc`] (`arch/arm/mach-imx/platsmp.c`, `src.c`): the
//!   secondaries are held in reset by the System Reset Controller; the entry goes to
//!   `SRC_GPR1 + 8 * cpu` (GPR3/5/7), its argument to the next word, then
//!   `SRC_SCR` gets the core's enable bit (22 + cpu - 1) and reset bit (14 + cpu - 1).
//! * [`SmpMethod::Psci`] (`arch/arm/kernel/psci_smp.c`): `CPU_ON` (0x84000003) with
//!   the target's MPIDR, the entry and a context word, through `hvc` or `smc`
//!   (the device tree's `/psci` `method`; QEMU's `virt` says `hvc`).
//!
//! How many CPUs there are ([`CpuCount`]): the Cortex-A9 SCU configuration register
//! (`scu_get_core_count`), or the Cortex-A15/A7 L2CTLR\[25:24\] (what Linux's
//! `/cpus` nodes say on these boards), capped by [`MAX_CPUS`] and by `maxcpus=` /
//! `nosmp` on the command line ([`cpus_to_start`]).

pub mod alloc_test;

use crate::mmio::RegisterIo;
use zonekit_core::cmdline::Cmdline;
pub use zonekit_core::page_alloc::MAX_CPUS;

/// How a board starts its secondary CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpMethod {
    /// One CPU (or none that zonekit knows how to start).
    None,
    /// Versatile Express: `SYS_FLAGS` in the system registers and an SGI through the
    /// GIC distributor.
    VexpressSysFlags {
        /// Physical base of the system registers (`SYS_FLAGSSET` at + 0x30).
        sysregs: u64,
        /// Physical base of the GIC distributor.
        gic_dist: u64,
    },
    /// i.MX6 System Reset Controller.
    ImxSrc {
        /// Physical base of the SRC.
        src: u64,
    },
    /// PSCI `CPU_ON`.
    Psci {
        /// The instruction that reaches the PSCI implementation.
        conduit: PsciConduit,
    },
}

/// How PSCI is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    /// `hvc #0` (the firmware, or QEMU, sits at EL2).
    Hvc,
    /// `smc #0` (at EL3).
    Smc,
}

/// Where the number of CPUs comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuCount {
    /// One CPU.
    One,
    /// The Cortex-A9 MPCore SCU configuration register (`SCU_CONFIG`, + 0x4).
    A9Scu {
        /// Physical base of the SCU (the MPCore's PERIPHBASE).
        scu: u64,
    },
    /// The Cortex-A15/A7 L2 control register (`L2CTLR`\[25:24\], cp15 c9).
    L2ctlr,
}

/// A board's SMP facts ([`crate::board::BoardDesc::smp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmpDesc {
    /// How the secondaries are started.
    pub method: SmpMethod,
    /// How many CPUs there are.
    pub count: CpuCount,
}

impl SmpDesc {
    /// A board with one CPU.
    pub const UP: SmpDesc = SmpDesc {
        method: SmpMethod::None,
        count: CpuCount::One,
    };

    /// The register blocks the bring-up touches (name, physical address): each must
    /// lie in one of the board's `mmio` regions, so that it is mapped once the MMU is on.
    pub fn registers(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let (a, b) = match self.method {
            SmpMethod::VexpressSysFlags { sysregs, gic_dist } => (
                Some((
                    "the system registers (SYS_FLAGS)",
                    sysregs + SYS_FLAGSSET as u64,
                )),
                Some(("the GIC distributor", gic_dist)),
            ),
            SmpMethod::ImxSrc { src } => (Some(("the SRC", src)), None),
            SmpMethod::Psci { .. } | SmpMethod::None => (None, None),
        };
        let c = match self.count {
            CpuCount::A9Scu { scu } => Some(("the SCU", scu)),
            CpuCount::L2ctlr | CpuCount::One => None,
        };
        [a, b, c].into_iter().flatten()
    }
}

/// `SYS_FLAGSSET`: writing sets bits of `SYS_FLAGS` (reading gives `SYS_FLAGS`).
pub const SYS_FLAGSSET: usize = 0x30;
/// `SYS_FLAGSCLR`: writing clears bits of `SYS_FLAGS`.
pub const SYS_FLAGSCLR: usize = 0x34;
/// `GICD_CTLR`: distributor enable (bit 0: group 0, or the only group).
pub const GICD_CTLR: usize = 0x000;
/// `GICD_SGIR`: software generated interrupts.
pub const GICD_SGIR: usize = 0xF00;
/// The SGI used to wake a CPU (Linux's `IPI_WAKEUP`, SGI 0).
pub const WAKEUP_SGI: u8 = 0;
/// `SCU_CONFIG`: Cortex-A9 SCU configuration (CPU count in \[1:0\]).
pub const SCU_CONFIG: usize = 0x04;
/// `SRC_SCR`: i.MX6 SRC control register.
pub const SRC_SCR: usize = 0x00;
/// `SRC_GPR1`: the first general purpose register (a CPU's entry is at + 8 * cpu).
pub const SRC_GPR1: usize = 0x20;
/// PSCI 0.2 `CPU_ON`, SMC32 calling convention.
pub const PSCI_0_2_FN_CPU_ON: u32 = 0x8400_0003;

/// The number of CPUs an SCU configuration register reports.
pub const fn scu_cpu_count(scu_config: u32) -> usize {
    (scu_config & 0b11) as usize + 1
}

/// The number of CPUs a Cortex-A15/A7 `L2CTLR` reports.
pub const fn l2ctlr_cpu_count(l2ctlr: u32) -> usize {
    ((l2ctlr >> 24) & 0b11) as usize + 1
}

/// `GICD_SGIR` for SGI `sgi` to the CPU interfaces in `targets` (bit n: interface n;
/// target list filter 0: the list).
pub const fn gicd_sgir(targets: u8, sgi: u8) -> u32 {
    ((targets as u32) << 16) | (sgi as u32 & 0xF)
}

/// Offset of the SRC register that holds core `core`'s entry (GPR3/5/7 for cores
/// 1/2/3); its argument is the next word. `None` for core 0 or above 3.
pub const fn src_entry_offset(core: usize) -> Option<usize> {
    match core {
        1..=3 => Some(SRC_GPR1 + 8 * core),
        _ => None,
    }
}

/// `SRC_SCR` with core `core` (1..=3) enabled and its reset asserted, as Linux's
/// `imx_enable_cpu` writes it. `scr` unchanged for other cores.
pub const fn src_scr_enable(scr: u32, core: usize) -> u32 {
    match core {
        1..=3 => scr | (1 << (22 + core - 1)) | (1 << (14 + core - 1)),
        _ => scr,
    }
}

/// The hardware id (MPIDR affinity) of logical CPU `cpu` when the boot CPU's is
/// `boot_hwid`: Linux's `cpu_logical_map` on a single cluster (CPU n is affinity n,
/// except that the boot CPU is logical 0 and takes the place of affinity 0).
pub const fn cpu_hwid(cpu: usize, boot_hwid: u32) -> u32 {
    let aff0 = boot_hwid & 0xFF;
    if cpu == 0 {
        boot_hwid
    } else if cpu as u32 == aff0 {
        boot_hwid & !0xFF
    } else {
        (boot_hwid & !0xFF) | cpu as u32
    }
}

/// The logical CPU of hardware id `hwid` when the boot CPU's is `boot_hwid`: the
/// inverse of [`cpu_hwid`].
pub const fn cpu_logical(hwid: u32, boot_hwid: u32) -> usize {
    let (aff0, boot_aff0) = (hwid & 0xFF, boot_hwid & 0xFF);
    if hwid == boot_hwid {
        0
    } else if aff0 == 0 {
        boot_aff0 as usize
    } else {
        aff0 as usize
    }
}

/// How many CPUs to run: the `present` ones, at most [`MAX_CPUS`], one with `nosmp`
/// and at most `maxcpus=N` (`maxcpus=0` is one CPU, as Linux treats it like `nosmp`).
pub fn cpus_to_start(present: usize, cmdline: &Cmdline) -> usize {
    let mut n = present.clamp(1, MAX_CPUS);
    if cmdline.nosmp {
        n = 1;
    }
    if let Some(max) = cmdline.maxcpus {
        n = n.min((max as usize).max(1));
    }
    n
}

/// Start CPU `core` (its SCU/CPU-interface number) at physical `entry` on a
/// Versatile Express board: `SYS_FLAGS` cleared then set to `entry`, the
/// distributor enabled, SGI [`WAKEUP_SGI`] sent to the CPU.
pub fn vexpress_wake<R: RegisterIo + ?Sized>(sysregs: &R, gicd: &R, core: u32, entry: u32) {
    sysregs.write32(SYS_FLAGSCLR, !0);
    sysregs.write32(SYS_FLAGSSET, entry);
    if gicd.read32(GICD_CTLR) & 1 == 0 {
        gicd.write32(GICD_CTLR, 1);
    }
    gicd.write32(GICD_SGIR, gicd_sgir(1 << (core & 7), WAKEUP_SGI));
}

/// Start core `core` (1..=3) at physical `entry` through the i.MX6 SRC. False for
/// another core.
pub fn imx_src_wake<R: RegisterIo + ?Sized>(src: &R, core: usize, entry: u32) -> bool {
    let Some(gpr) = src_entry_offset(core) else {
        return false;
    };
    src.write32(gpr, entry);
    src.write32(gpr + 4, 0);
    let scr = src.read32(SRC_SCR);
    src.write32(SRC_SCR, src_scr_enable(scr, core));
    true
}

/// A test fault of the SMP bring-up, from `zonekit.fault=` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpFault {
    /// `cpu-offline:N`: CPU N is not woken, so it must be reported as not coming
    /// online after the bounded wait, and the boot go on without it.
    Offline(usize),
    /// `cpu-undef:N`: CPU N executes an undefined instruction in the `on_each_cpu`
    /// smoke test; the exception report must name it.
    Undef(usize),
}

impl SmpFault {
    /// The fault `zonekit.fault=WHAT` names, if it is an SMP one (N from 1 to
    /// [`MAX_CPUS`] - 1).
    pub fn parse(what: &str) -> Option<SmpFault> {
        let (kind, n) = what.split_once(':')?;
        let n: usize = n.parse().ok().filter(|n| (1..MAX_CPUS).contains(n))?;
        match kind {
            "cpu-offline" => Some(SmpFault::Offline(n)),
            "cpu-undef" => Some(SmpFault::Undef(n)),
            _ => None,
        }
    }
}

/// A PSCI return code as text.
pub fn psci_error(code: i32) -> &'static str {
    match code {
        0 => "success",
        -1 => "not supported",
        -2 => "invalid parameters",
        -3 => "denied",
        -4 => "already on",
        -5 => "on pending",
        -6 => "internal failure",
        -7 => "not present",
        -8 => "disabled",
        -9 => "invalid address",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmio::fake::FakeRegisters;

    #[test]
    fn cpu_counts_from_the_scu_and_l2ctlr() {
        // QEMU's a9mpcore SCU: ((1 << n) - 1) << 4 | (n - 1).
        assert_eq!(scu_cpu_count(0xF3), 4);
        assert_eq!(scu_cpu_count(0x10), 1);
        assert_eq!(scu_cpu_count(0x31), 2);
        // QEMU's cortex-a15 L2CTLR: (n - 1) << 24.
        assert_eq!(l2ctlr_cpu_count(3 << 24), 4);
        assert_eq!(l2ctlr_cpu_count(0), 1);
        assert_eq!(l2ctlr_cpu_count(0x0100_0000 | 0xFF), 2);
    }

    #[test]
    fn cmdline_caps_the_cpus() {
        let c = |s: &str| Cmdline::parse(s);
        assert_eq!(cpus_to_start(4, &c("")), 4);
        assert_eq!(cpus_to_start(8, &c("")), MAX_CPUS);
        assert_eq!(cpus_to_start(0, &c("")), 1);
        assert_eq!(cpus_to_start(4, &c("maxcpus=2")), 2);
        assert_eq!(cpus_to_start(4, &c("maxcpus=1")), 1);
        assert_eq!(cpus_to_start(4, &c("maxcpus=0")), 1);
        assert_eq!(cpus_to_start(2, &c("maxcpus=8")), 2);
        assert_eq!(cpus_to_start(4, &c("nosmp")), 1);
        assert_eq!(cpus_to_start(4, &c("nosmp maxcpus=3")), 1);
        // A bad value is reported by the parser and changes nothing.
        let bad = c("maxcpus=two");
        assert_eq!(cpus_to_start(4, &bad), 4);
        assert_eq!(bad.errors[0].param, "maxcpus");
    }

    #[test]
    fn smp_faults() {
        assert_eq!(SmpFault::parse("cpu-offline:2"), Some(SmpFault::Offline(2)));
        assert_eq!(SmpFault::parse("cpu-undef:1"), Some(SmpFault::Undef(1)));
        for bad in [
            "cpu-offline:0",
            "cpu-offline:4",
            "cpu-undef:x",
            "undef",
            "cpu-hang:1",
        ] {
            assert_eq!(SmpFault::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn register_values() {
        assert_eq!(gicd_sgir(1 << 1, WAKEUP_SGI), 0x0002_0000);
        assert_eq!(gicd_sgir(0b1110, 3), 0x000E_0003);
        assert_eq!(src_entry_offset(1), Some(0x28));
        assert_eq!(src_entry_offset(2), Some(0x30));
        assert_eq!(src_entry_offset(3), Some(0x38));
        assert_eq!(src_entry_offset(0), None);
        assert_eq!(src_entry_offset(4), None);
        assert_eq!(src_scr_enable(0, 1), (1 << 22) | (1 << 14));
        assert_eq!(src_scr_enable(0x521, 3), 0x521 | (1 << 24) | (1 << 16));
        assert_eq!(src_scr_enable(7, 0), 7);
        assert_eq!(cpu_hwid(0, 0x8000_0000), 0x8000_0000);
        assert_eq!(cpu_hwid(2, 0x8000_0000), 0x8000_0002);
        // A boot CPU that is not affinity 0 swaps places with CPU 0.
        assert_eq!(cpu_hwid(1, 1), 0);
        assert_eq!(cpu_hwid(2, 1), 2);
        assert_eq!(psci_error(-4), "already on");
        for boot in [0x8000_0000, 0x8000_0001, 0x8000_0003] {
            for cpu in 0..4 {
                assert_eq!(
                    cpu_logical(cpu_hwid(cpu, boot), boot),
                    cpu,
                    "{boot:#x} {cpu}"
                );
            }
        }
    }

    #[test]
    fn vexpress_wake_sets_the_flags_then_sends_the_sgi() {
        let (sys, gicd) = (FakeRegisters::new(), FakeRegisters::new());
        vexpress_wake(&sys, &gicd, 2, 0x6001_2340);
        assert_eq!(
            sys.writes(),
            [(SYS_FLAGSCLR, 0xFFFF_FFFF), (SYS_FLAGSSET, 0x6001_2340)]
        );
        assert_eq!(gicd.writes(), [(GICD_CTLR, 1), (GICD_SGIR, 0x0004_0000)]);
        // An enabled distributor is left alone.
        let gicd = FakeRegisters::new();
        gicd.set(GICD_CTLR, 1);
        vexpress_wake(&sys, &gicd, 1, 0x6001_2340);
        assert_eq!(gicd.written_to(GICD_SGIR), [0x0002_0000]);
        assert!(gicd.written_to(GICD_CTLR).is_empty());
    }

    #[test]
    fn imx_src_wake_writes_the_entry_then_enables_the_core() {
        let src = FakeRegisters::new();
        src.set(SRC_SCR, 0x521);
        assert!(imx_src_wake(&src, 3, 0x1001_0400));
        assert_eq!(
            src.writes(),
            [
                (0x38, 0x1001_0400),
                (0x3C, 0),
                (SRC_SCR, 0x521 | (1 << 24) | (1 << 16))
            ]
        );
        assert!(!imx_src_wake(&src, 0, 0x1001_0400));
    }

    #[test]
    fn registers_to_map() {
        let a9 = SmpDesc {
            method: SmpMethod::VexpressSysFlags {
                sysregs: 0x1000_0000,
                gic_dist: 0x1E00_1000,
            },
            count: CpuCount::A9Scu { scu: 0x1E00_0000 },
        };
        let regs: std::vec::Vec<u64> = a9.registers().map(|(_, a)| a).collect();
        assert_eq!(regs, [0x1000_0030, 0x1E00_1000, 0x1E00_0000]);
        assert_eq!(SmpDesc::UP.registers().count(), 0);
    }
}
