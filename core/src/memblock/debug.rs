//! memblock's trace and dump output (Linux `mm/memblock.c`: `memblock_dbg`,
//! `__memblock_dump_all`, `memblock_dump_all`).
//!
//! With `memblock=debug` every mutator and allocator logs one line in Linux's
//! format: addresses as `%pa` ([`Pa`], 8 or 16 hex digits with the build's
//! `phys_addr_t`), the caller as `file:line` where Linux prints `%pS` of `_RET_IP_`.
//! The dump writes both tables exactly as Linux does, dummy region of an empty table
//! included. Nothing here changes memblock: the other files call into it.

use core::fmt;
use core::panic::Location;

use super::{Memblock, Region, RegionFlags, RegionTable, PHYS_ADDR_MAX_32};
use crate::addr::PhysAddr;

/// A physical address printed like Linux's `%pa`: `0x` and zero-padded hex, 8 digits
/// for a 32-bit `phys_addr_t`, 16 for a 64-bit one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pa {
    /// The value.
    pub addr: PhysAddr,
    /// True for a 64-bit `phys_addr_t` (16 digits).
    pub wide: bool,
}

impl fmt::Display for Pa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wide {
            write!(f, "{:#018x}", self.addr)
        } else {
            write!(f, "{:#010x}", self.addr & 0xffff_ffff)
        }
    }
}

/// A caller location printed as `file:line` (stands in for Linux's `%pS` of
/// `_RET_IP_`).
pub(super) struct Caller(pub(super) &'static Location<'static>);

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0.file(), self.0.line())
    }
}

/// Buffers text and logs it line by line with `zk_info!` (for [`Memblock::dump_all`]).
struct LineLogger {
    line: heapless::String<160>,
}

impl fmt::Write for LineLogger {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '\n' {
                zk_info!("{}", self.line);
                self.line.clear();
            } else {
                // An over-long line is truncated rather than failing the dump.
                let _ = self.line.push(c);
            }
        }
        Ok(())
    }
}

impl<const N: usize> Memblock<N> {
    /// Format an address like `%pa` for this build's `phys_addr_t`.
    pub fn pa(&self, addr: PhysAddr) -> Pa {
        Pa {
            addr,
            wide: self.phys_addr_max > PHYS_ADDR_MAX_32,
        }
    }

    pub(super) fn dbg(&self, args: fmt::Arguments<'_>) {
        if self.debug {
            zk_info!("{}", args);
        }
    }

    pub(super) fn dbg_range(
        &self,
        func: &str,
        base: PhysAddr,
        size: u64,
        loc: &'static Location<'static>,
    ) {
        if self.debug {
            let end = base.wrapping_add(size).wrapping_sub(1);
            zk_info!(
                "{}: [{}-{}] {}",
                func,
                self.pa(base),
                self.pa(end),
                Caller(loc)
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn dbg_alloc(
        &self,
        func: &str,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: i32,
        loc: &'static Location<'static>,
    ) {
        if self.debug {
            zk_info!(
                "{}: {} bytes align={:#x} nid={} from={} max_addr={} {}",
                func,
                size,
                align,
                nid,
                self.pa(min_addr),
                self.pa(max_addr),
                Caller(loc)
            );
        }
    }

    fn dump_table(&self, t: &RegionTable<N>, w: &mut dyn fmt::Write) -> fmt::Result {
        let name = t.name();
        writeln!(w, " {}.cnt  = {:#x}", name, t.linux_cnt())?;
        // Linux keeps a zero-sized dummy region in an empty table.
        let dummy = [Region {
            base: 0,
            size: 0,
            flags: RegionFlags::NONE,
            nid: 0,
        }];
        let regions: &[Region] = if t.regions.is_empty() {
            &dummy
        } else {
            &t.regions
        };
        for (i, r) in regions.iter().enumerate() {
            let end = r.base.wrapping_add(r.size).wrapping_sub(1);
            writeln!(
                w,
                " {}[{:#x}]\t[{}-{}], {} bytes flags: {:#x}",
                name,
                i,
                self.pa(r.base),
                self.pa(end),
                self.pa(r.size),
                r.flags.0
            )?;
        }
        Ok(())
    }

    /// `__memblock_dump_all`, written to `w` (every line newline-terminated).
    pub fn dump(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(w, "MEMBLOCK configuration:")?;
        writeln!(
            w,
            " memory size = {} reserved size = {}",
            self.pa(self.memory.total_size),
            self.pa(self.reserved.total_size)
        )?;
        self.dump_table(&self.memory, w)?;
        self.dump_table(&self.reserved, w)
    }

    /// `memblock_dump_all`: when debug is on, log [`dump`](Self::dump) line by line
    /// with `zk_info!`.
    pub fn dump_all(&self) {
        if self.debug {
            let mut l = LineLogger {
                line: heapless::String::new(),
            };
            let _ = self.dump(&mut l);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::memblock::{Memblock, PHYS_ADDR_MAX_32};
    use alloc::string::String;

    type Mb = Memblock<16>;

    #[test]
    fn dump_empty_is_linux_like() {
        let m = Mb::new(PHYS_ADDR_MAX_32);
        let mut s = String::new();
        m.dump(&mut s).unwrap();
        assert_eq!(
            s,
            "MEMBLOCK configuration:\n memory size = 0x00000000 reserved size = 0x00000000\n \
             memory.cnt  = 0x1\n memory[0x0]\t[0x00000000-0xffffffff], 0x00000000 bytes flags: 0x0\n \
             reserved.cnt  = 0x1\n reserved[0x0]\t[0x00000000-0xffffffff], 0x00000000 bytes flags: 0x0\n"
        );
    }
}
