//! How ARM32 bounds lowmem: Linux's `early_vmalloc`, `adjust_lowmem_bounds` and
//! `find_limits` (`arch/arm/mm/mmu.c`, `arch/arm/mm/init.c`).
//!
//! With the 3G/1G split the kernel maps physical memory linearly from `PAGE_OFFSET`
//! up to where the vmalloc area must begin; everything above that is highmem. The
//! vmalloc area is 240 MiB by default (`vmalloc=` changes it) and is separated from
//! lowmem by an 8 MiB guard, which puts the default lowmem limit 768 MiB above the
//! start of RAM.

use zonekit_core::addr::{align_down, pfn_down, pfn_up, MemRange, Pfn, PhysAddr};
use zonekit_core::arch::{ArchLimits, LowmemBounds, MmConfig};

/// `PAGE_OFFSET` with `VMSPLIT_3G`: where lowmem starts in the kernel's virtual space.
pub const PAGE_OFFSET: u64 = 0xC000_0000;
/// `VMALLOC_END`: the top of the vmalloc area.
pub const VMALLOC_END: u64 = 0xFF80_0000;
/// `VMALLOC_OFFSET`: the guard gap between lowmem and vmalloc.
pub const VMALLOC_OFFSET: u64 = 8 << 20;
/// The default vmalloc area size (`vmalloc_size`, 240 MiB).
pub const VMALLOC_DEFAULT_SIZE: u64 = 240 << 20;
/// The smallest vmalloc area `vmalloc=` may ask for.
pub const VMALLOC_MIN_SIZE: u64 = 16 << 20;
/// `PMD_SIZE`: the granule of the section mappings of lowmem (2 MiB).
pub const PMD_SIZE: u64 = 2 << 20;

/// What `early_vmalloc` made of a `vmalloc=` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmallocAdjust {
    /// Taken as given.
    AsRequested,
    /// Too small; raised to the minimum ("vmalloc area is too small, limiting to 16MiB").
    RaisedTo(u64),
    /// Too big; lowered to the maximum ("vmalloc area is too big, limiting to ...MiB").
    LoweredTo(u64),
}

/// `early_vmalloc`: clamp a requested vmalloc size to what the virtual layout allows.
pub fn early_vmalloc(requested: u64) -> (u64, VmallocAdjust) {
    // At least 32 MiB of lowmem must stay mapped above PAGE_OFFSET.
    let max = VMALLOC_END - (PAGE_OFFSET + (32 << 20) + VMALLOC_OFFSET);
    if requested < VMALLOC_MIN_SIZE {
        (VMALLOC_MIN_SIZE, VmallocAdjust::RaisedTo(VMALLOC_MIN_SIZE))
    } else if requested > max {
        (max, VmallocAdjust::LoweredTo(max))
    } else {
        (requested, VmallocAdjust::AsRequested)
    }
}

/// The ARM32 architecture description: memory-model constants plus the virtual
/// layout that bounds lowmem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arm32 {
    /// Page-descriptor size, orders, pageblock order, physical address width.
    pub mm: MmConfig,
    /// `PHYS_OFFSET`: the physical address mapped at `PAGE_OFFSET` (start of RAM).
    pub phys_offset: PhysAddr,
    /// The vmalloc area size in bytes (after `early_vmalloc`).
    pub vmalloc_size: u64,
    /// CONFIG_HIGHMEM: keep memory above lowmem as a HIGHMEM zone.
    pub highmem: bool,
}

impl Arm32 {
    /// An ARM32 description with the default vmalloc size and highmem enabled.
    pub fn new(mm: MmConfig, phys_offset: PhysAddr) -> Self {
        Self {
            mm,
            phys_offset,
            vmalloc_size: VMALLOC_DEFAULT_SIZE,
            highmem: true,
        }
    }

    /// `vmalloc_min`: the lowest virtual address of the vmalloc area. Linux only ever
    /// sets `vmalloc_size` through `early_vmalloc`, so the size is taken as
    /// [`early_vmalloc`] clamps it: any value of the public field gives a layout
    /// Linux could have (with at least 32 MiB of lowmem) instead of an overflow.
    pub fn vmalloc_min(&self) -> u64 {
        let (size, _) = early_vmalloc(self.vmalloc_size);
        VMALLOC_END - size - VMALLOC_OFFSET
    }

    /// The physical address where lowmem must stop: `__pa(vmalloc_min - 1) + 1`
    /// (saturating at the top of the physical address space).
    pub fn vmalloc_limit(&self) -> PhysAddr {
        self.phys_offset
            .saturating_add(self.vmalloc_min() - PAGE_OFFSET)
    }
}

impl ArchLimits for Arm32 {
    fn mm_config(&self) -> MmConfig {
        self.mm
    }

    /// `adjust_lowmem_bounds`: lowmem ends at the vmalloc limit or the end of the last
    /// bank below it; the early memblock limit stops short of a bank end or start that
    /// is not 2 MiB aligned (the first-level tables map lowmem in sections) and is
    /// rounded down to 2 MiB.
    fn lowmem_bounds(&self, memory: &[MemRange]) -> LowmemBounds {
        let vmalloc_limit = self.vmalloc_limit();
        let mut lowmem_limit: PhysAddr = 0;
        let mut memblock_limit: PhysAddr = 0;
        for bank in memory {
            let (start, end) = (bank.base, bank.end());
            if start >= vmalloc_limit {
                continue;
            }
            if end > lowmem_limit {
                lowmem_limit = end.min(vmalloc_limit);
            }
            if memblock_limit == 0 {
                if start % PMD_SIZE != 0 {
                    memblock_limit = start;
                } else if end % PMD_SIZE != 0 {
                    memblock_limit = lowmem_limit;
                }
            }
        }
        if memblock_limit == 0 {
            memblock_limit = lowmem_limit;
        }
        LowmemBounds {
            lowmem_limit,
            memblock_limit: align_down(memblock_limit, PMD_SIZE),
        }
    }

    fn has_highmem(&self) -> bool {
        self.highmem
    }
}

/// The PFN limits of `find_limits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfnLimits {
    /// `min_low_pfn`: the first page of RAM.
    pub min: Pfn,
    /// `max_low_pfn`: one past the last lowmem page.
    pub max_low: Pfn,
    /// `max_pfn` (`max_high`): one past the last page of RAM.
    pub max_high: Pfn,
}

/// `find_limits`: `min = PFN_UP(start of DRAM)`, `max_low = PFN_DOWN(lowmem limit)`,
/// `max_high = PFN_DOWN(end of DRAM)`.
pub fn find_limits(
    start_of_dram: PhysAddr,
    end_of_dram: PhysAddr,
    lowmem_limit: PhysAddr,
) -> PfnLimits {
    PfnLimits {
        min: pfn_up(start_of_dram),
        max_low: pfn_down(lowmem_limit),
        max_high: pfn_down(end_of_dram),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank(base: u64, size: u64) -> [MemRange; 1] {
        [MemRange::new(base, size)]
    }

    #[test]
    fn default_lowmem_is_768m_above_ram_start() {
        let a = Arm32::new(MmConfig::ZONEKIT, 0x6000_0000);
        let b = a.lowmem_bounds(&bank(0x6000_0000, 1 << 30));
        assert_eq!(b.lowmem_limit, 0x9000_0000);
        assert_eq!(b.memblock_limit, 0x9000_0000);
        let a = Arm32::new(MmConfig::ZONEKIT, 0x1000_0000);
        assert_eq!(
            a.lowmem_bounds(&bank(0x1000_0000, 2 << 30)).lowmem_limit,
            0x4000_0000
        );
    }

    #[test]
    fn small_ram_is_all_lowmem() {
        let a = Arm32::new(MmConfig::ZONEKIT, 0x6000_0000);
        let b = a.lowmem_bounds(&bank(0x6000_0000, 512 << 20));
        assert_eq!(b.lowmem_limit, 0x8000_0000);
    }

    #[test]
    fn vmalloc_600m_moves_the_limit() {
        let mut a = Arm32::new(MmConfig::ZONEKIT, 0x6000_0000);
        a.vmalloc_size = early_vmalloc(600 << 20).0;
        assert_eq!(
            a.lowmem_bounds(&bank(0x6000_0000, 512 << 20)).lowmem_limit,
            0x7980_0000
        );
        // vmalloc=400M leaves 608 MiB of lowmem: more than 512 MiB of RAM, no effect.
        a.vmalloc_size = early_vmalloc(400 << 20).0;
        assert_eq!(
            a.lowmem_bounds(&bank(0x6000_0000, 512 << 20)).lowmem_limit,
            0x8000_0000
        );
    }

    #[test]
    fn vmalloc_is_clamped() {
        assert_eq!(
            early_vmalloc(1 << 20),
            (16 << 20, VmallocAdjust::RaisedTo(16 << 20))
        );
        let (max, adj) = early_vmalloc(4 << 30);
        assert_eq!(max, 0xff80_0000 - 0xc000_0000 - (32 << 20) - (8 << 20));
        assert_eq!(adj, VmallocAdjust::LoweredTo(max));
    }

    #[test]
    fn unaligned_bank_end_rounds_memblock_limit() {
        // mem=301M: the bank ends off a 2 MiB boundary.
        let a = Arm32::new(MmConfig::LINUX_61_ARMMP, 0x6000_0000);
        let b = a.lowmem_bounds(&bank(0x6000_0000, 301 << 20));
        assert_eq!(b.lowmem_limit, 0x72d0_0000);
        assert_eq!(b.memblock_limit, 0x72c0_0000);
    }

    #[test]
    fn two_banks_second_above_limit() {
        let a = Arm32::new(MmConfig::ZONEKIT, 0x6000_0000);
        let banks = [
            MemRange::new(0x6000_0000, 256 << 20),
            MemRange::new(0xA000_0000, 256 << 20),
        ];
        let b = a.lowmem_bounds(&banks);
        assert_eq!(b.lowmem_limit, 0x7000_0000);
    }

    #[test]
    fn lowmem_bounds_vmalloc_2g_no_panic() {
        // More vmalloc space than the 1 GiB kernel half holds: clamped as
        // `early_vmalloc` would, leaving Linux's minimum of 32 MiB of lowmem.
        let mut a = Arm32::new(MmConfig::ZONEKIT, 0x6000_0000);
        a.vmalloc_size = 2 << 30;
        let b = a.lowmem_bounds(&bank(0x6000_0000, 512 << 20));
        assert_eq!(b.lowmem_limit, 0x6000_0000 + (32 << 20));
        a.vmalloc_size = u64::MAX;
        assert_eq!(
            a.lowmem_bounds(&bank(0x6000_0000, 512 << 20)).lowmem_limit,
            0x6200_0000
        );
        // RAM at the very top of a 64-bit space does not overflow either.
        a.phys_offset = u64::MAX - 0xfff;
        let _ = a.lowmem_bounds(&bank(u64::MAX - 0xfff, 0x1000));
    }

    #[test]
    fn find_limits_u64_max_no_panic() {
        let l = find_limits(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(
            (l.min, l.max_low, l.max_high),
            (1 << 52, (1 << 52) - 1, (1 << 52) - 1)
        );
        // An empty lowmem is visible to the caller (bootmem_init reports NoLowmem).
        assert!(l.max_low <= l.min);
        let l = find_limits(u64::MAX, 0, 0);
        assert_eq!((l.min, l.max_low, l.max_high), (1 << 52, 0, 0));
    }

    #[test]
    fn find_limits_rounds_inwards() {
        let l = find_limits(0x8000_0000, 0xa000_0000, 0xa000_0000);
        assert_eq!((l.min, l.max_low, l.max_high), (0x80000, 0xa0000, 0xa0000));
        let l = find_limits(0x8000_0001, 0x9fff_ffff, 0x9000_0000);
        assert_eq!((l.min, l.max_low, l.max_high), (0x80001, 0x90000, 0x9ffff));
    }
}
