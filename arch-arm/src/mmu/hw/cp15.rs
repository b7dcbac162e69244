//! The CP15 registers and operations `aarch32-cpu` 0.3 does not have, declared with
//! its own [`SysReg`]/[`SysReg64`] traits so they are read and written by the same
//! `mrc`/`mcr`/`mcrr` code as the crate's registers.
//!
//! (0.3 because 0.4 needs Rust 1.93 and the workspace promises 1.87.)

use aarch32_cpu::register::{
    SysReg, SysReg64, SysRegRead, SysRegRead64, SysRegWrite, SysRegWrite64,
};

macro_rules! cp15 {
    ($(#[$doc:meta])* $name:ident: CRn = $crn:literal, op1 = $op1:literal, CRm = $crm:literal, op2 = $op2:literal $(, $read:ident)?) => {
        $(#[$doc])*
        pub struct $name;

        impl SysReg for $name {
            const CP: u32 = 15;
            const CRN: u32 = $crn;
            const OP1: u32 = $op1;
            const CRM: u32 = $crm;
            const OP2: u32 = $op2;
        }

        impl SysRegWrite for $name {}
        $(impl $read for $name {})?
    };
}

cp15!(
    /// TTBCR (Translation Table Base Control Register).
    Ttbcr: CRn = 2, op1 = 0, CRm = 0, op2 = 2, SysRegRead
);
cp15!(
    /// PRRR (Primary Region Remap Register; MAIR0 under LPAE).
    Prrr: CRn = 10, op1 = 0, CRm = 2, op2 = 0, SysRegRead
);
cp15!(
    /// NMRR (Normal Memory Remap Register; MAIR1 under LPAE).
    Nmrr: CRn = 10, op1 = 0, CRm = 2, op2 = 1, SysRegRead
);
cp15!(
    /// L2CTLR (Cortex-A15/A7 L2 control; \[25:24\] = number of CPUs - 1).
    L2ctlr: CRn = 9, op1 = 1, CRm = 0, op2 = 2, SysRegRead
);
cp15!(
    /// TLBIMVA: invalidate the unified TLB entry of a virtual address, this core.
    TlbiMva: CRn = 8, op1 = 0, CRm = 7, op2 = 1
);
cp15!(
    /// TLBIMVAIS: TLBIMVA broadcast to the Inner Shareable domain.
    TlbiMvaIs: CRn = 8, op1 = 0, CRm = 3, op2 = 1
);
cp15!(
    /// TLBIALLIS: TLBIALL broadcast to the Inner Shareable domain.
    TlbiAllIs: CRn = 8, op1 = 0, CRm = 3, op2 = 0
);
cp15!(
    /// BPIALLIS: invalidate all branch predictors, Inner Shareable.
    BpiAllIs: CRn = 7, op1 = 0, CRm = 1, op2 = 6
);

/// TTBR0 as a 64-bit register (`mcrr p15, 0, lo, hi, c2`): the long-descriptor form.
pub struct Ttbr0Long;

impl SysReg64 for Ttbr0Long {
    const CP: u32 = 15;
    const OP1: u32 = 0;
    const CRM: u32 = 2;
}

impl SysRegWrite64 for Ttbr0Long {}
impl SysRegRead64 for Ttbr0Long {}
