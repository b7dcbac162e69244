//! Linux's `paging_init` as a pure function: which mappings the kernel needs, and the
//! `Virtual kernel memory layout:` block that describes them.
//!
//! The 3G/1G split of a classic (non-LPAE) ARM kernel:
//!
//! ```text
//! 0xffff0000  vector page                     (printed; zonekit uses VBAR)
//! 0xffc00000  fixmap .. 0xfff00000            (printed; not used by zonekit)
//! 0xff800000  VMALLOC_END
//! 0xf8000000  device window (static I/O maps) .. VMALLOC_END, inside vmalloc
//!  vmalloc start = ALIGN(high_memory + 8 MiB, 8 MiB)  (>= 0xf0800000)
//! 0xc0000000  PAGE_OFFSET: lowmem linear map, at most 768 MiB (to 0xf0000000)
//! 0xbfe00000  PKMAP_BASE = PAGE_OFFSET - PMD_SIZE: 512 kmap slots (2 MiB)
//! 0xbf000000  modules
//!  below      user space; the identity map of the running image lives here
//! ```
//!
//! **Device mappings** (`devicemaps_init`/`iotable_init`) go to a fixed window at
//! [`DEVICE_WINDOW_BASE`] (0xf8000000) upward, one 1 MiB-rounded section run per
//! board region, in the order given. Like Linux's static I/O maps, the window lies
//! inside the vmalloc area (which always contains it, since lowmem ends at or below
//! 0xf0000000): a vmalloc allocator must treat it as reserved
//! (`vm_reserve_area_early`). The fixmap and the high vector page are not mapped.
//!
//! **The identity map** of the image (`[round_down(start, 1 MiB),
//! round_up(end, 1 MiB))`, VA == PA, normal memory, executable) lets execution
//! continue at the same addresses once the MMU is on. It must not collide with the
//! kernel's own windows; when PHYS_OFFSET == PAGE_OFFSET it coincides with the linear
//! map and is left out.
//!
//! **The linear map** (`map_lowmem`) is split as Linux splits it: the 1 MiB-rounded
//! kernel image is mapped RWX, the rest of lowmem RW and execute-never.

use super::desc::{Access, MemType};
use super::MmuError;
use heapless::Vec;

/// `PAGE_OFFSET`: start of the kernel's linear map.
pub const PAGE_OFFSET: u32 = crate::limits::PAGE_OFFSET as u32;
/// `PMD_SIZE` of ARM's two-level Linux page tables (two hardware L1 entries).
pub const PMD_SIZE: u32 = crate::limits::PMD_SIZE as u32;
/// A 1 MiB section.
pub const SECTION_SIZE: u32 = 0x0010_0000;
/// `LAST_PKMAP`: the number of kmap slots (one Linux PTE table: 512 entries).
pub const LAST_PKMAP: usize = 512;
/// `PKMAP_BASE = PAGE_OFFSET - PMD_SIZE`.
pub const PKMAP_BASE: u32 = PAGE_OFFSET - PMD_SIZE;
/// Bytes covered by the PKMAP window (2 MiB).
pub const PKMAP_SIZE: u32 = (LAST_PKMAP as u32) * 4096;
/// `MODULES_VADDR = PAGE_OFFSET - 16 MiB`.
pub const MODULES_VADDR: u32 = PAGE_OFFSET - 0x0100_0000;
/// `MODULES_END` with highmem: the PKMAP base.
pub const MODULES_END: u32 = PKMAP_BASE;
/// `VMALLOC_OFFSET`: the guard gap above lowmem (8 MiB).
pub const VMALLOC_OFFSET: u32 = crate::limits::VMALLOC_OFFSET as u32;
/// `VMALLOC_END`.
pub const VMALLOC_END: u32 = crate::limits::VMALLOC_END as u32;
/// `vmalloc_min = VMALLOC_END - 240 MiB - VMALLOC_OFFSET`: the highest end of lowmem.
pub const VMALLOC_MIN: u32 =
    VMALLOC_END - crate::limits::VMALLOC_DEFAULT_SIZE as u32 - VMALLOC_OFFSET;
/// The most lowmem the linear map can hold (768 MiB).
pub const LOWMEM_MAX_SIZE: u32 = VMALLOC_MIN - PAGE_OFFSET;
/// `FIXADDR_START`.
pub const FIXADDR_START: u32 = 0xFFC0_0000;
/// `FIXADDR_END`.
pub const FIXADDR_END: u32 = 0xFFF0_0000;
/// The high vector page.
pub const VECTORS_BASE: u32 = 0xFFFF_0000;
/// First address of the device window.
pub const DEVICE_WINDOW_BASE: u32 = 0xF800_0000;
/// One past the device window.
pub const DEVICE_WINDOW_END: u32 = VMALLOC_END;

const SECTION: u64 = SECTION_SIZE as u64;
const PAGE: u64 = 4096;
const FOUR_GIB: u64 = 1 << 32;

/// A board MMIO region to map (`struct map_desc` of `mdesc->map_io`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRegion {
    /// Name for logs and errors.
    pub name: &'static str,
    /// Physical base.
    pub phys: u64,
    /// Size in bytes.
    pub size: u64,
}

/// What a planned mapping is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappingKind {
    /// Part of the lowmem linear map at PAGE_OFFSET (`map_lowmem`).
    Lowmem,
    /// The identity map of the running image.
    Identity,
    /// A board device region (`devicemaps_init`).
    Device,
    /// The PKMAP window: second-level tables allocated, every entry a fault
    /// (`kmap_init`). `phys`, `mem`, `access` and `exec` are those kmap uses.
    Pkmap,
}

/// One mapping of the plan; [`super::PageTable::apply`] carries it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingRequest {
    /// Name for logs (`"lowmem"`, `"kernel"`, `"identity"`, the device's, `"pkmap"`).
    pub name: &'static str,
    /// What it is for.
    pub kind: MappingKind,
    /// First virtual address.
    pub virt: u32,
    /// First physical address.
    pub phys: u64,
    /// Size in bytes.
    pub size: u32,
    /// Memory type.
    pub mem: MemType,
    /// Access permissions.
    pub access: Access,
    /// Executable.
    pub exec: bool,
}

impl MappingRequest {
    /// One past the last virtual address.
    pub fn virt_end(&self) -> u64 {
        self.virt as u64 + self.size as u64
    }

    /// One past the last physical address.
    pub fn phys_end(&self) -> u64 {
        self.phys.saturating_add(self.size as u64)
    }

    fn virt_overlaps(&self, start: u64, end: u64) -> bool {
        (self.virt as u64) < end && start < self.virt_end()
    }
}

fn align_down(x: u64, a: u64) -> u64 {
    x & !(a - 1)
}

fn align_up(x: u64, a: u64) -> u64 {
    x.saturating_add(a - 1) & !(a - 1)
}

fn push(plan: &mut Vec<MappingRequest, 32>, r: MappingRequest) -> Result<(), MmuError> {
    plan.push(r).map_err(|_| MmuError::TooManyMappings)
}

/// Plan the kernel's mappings as Linux's `paging_init` would make them:
///
/// 1. `map_lowmem`: `lowmem` (physical, half-open; page-rounded inwards and capped
///    at [`LOWMEM_MAX_SIZE`] above `phys_offset`) at `PAGE_OFFSET + (pa -
///    phys_offset)`, normal memory, kernel RW; the 1 MiB-rounded `image` part
///    executable, the rest execute-never;
/// 2. the identity map of `image` (1 MiB rounded, executable);
/// 3. `devicemaps_init`: each device region, 1 MiB rounded, as device memory,
///    execute-never, in the device window (regions already covered by an earlier
///    one are not mapped again; see [`device_virt`]);
/// 4. `kmap_init`: the PKMAP window with its second-level table and no entries.
pub fn plan_kernel_mappings(
    lowmem: (u64, u64),
    phys_offset: u64,
    image: (u64, u64),
    devices: &[DeviceRegion],
) -> Result<Vec<MappingRequest, 32>, MmuError> {
    let mut plan = Vec::new();
    // map_lowmem.
    let bad_lowmem = MmuError::LowmemInvalid {
        start: lowmem.0,
        end: lowmem.1,
    };
    let lo = align_up(lowmem.0, PAGE);
    let cap = phys_offset
        .checked_add(LOWMEM_MAX_SIZE as u64)
        .ok_or(bad_lowmem)?;
    let hi = align_down(lowmem.1, PAGE).min(cap);
    if phys_offset & (PAGE - 1) != 0 || lo < phys_offset || lo >= hi {
        return Err(bad_lowmem);
    }
    if hi > FOUR_GIB {
        return Err(MmuError::PhysTooHigh { phys: lo });
    }
    let (img_lo, img_hi) = (align_down(image.0, SECTION), align_up(image.1, SECTION));
    if image.0 >= image.1 || img_hi > FOUR_GIB {
        return Err(MmuError::ImageInvalid {
            start: image.0,
            end: image.1,
        });
    }
    let lin = |pa: u64| (PAGE_OFFSET as u64 + (pa - phys_offset)) as u32;
    let lowmem_req = |name, start: u64, end: u64, exec| MappingRequest {
        name,
        kind: MappingKind::Lowmem,
        virt: lin(start),
        phys: start,
        size: (end - start) as u32,
        mem: MemType::Memory,
        access: Access::KernelRw,
        exec,
    };
    let x_lo = img_lo.clamp(lo, hi);
    let x_hi = img_hi.clamp(lo, hi);
    if x_lo < x_hi {
        if lo < x_lo {
            push(&mut plan, lowmem_req("lowmem", lo, x_lo, false))?;
        }
        push(&mut plan, lowmem_req("kernel", x_lo, x_hi, true))?;
        if x_hi < hi {
            push(&mut plan, lowmem_req("lowmem", x_hi, hi, false))?;
        }
    } else {
        push(&mut plan, lowmem_req("lowmem", lo, hi, false))?;
    }

    // kmap_init (planned before devices and identity so that clashes are seen).
    let pkmap = MappingRequest {
        name: "pkmap",
        kind: MappingKind::Pkmap,
        virt: PKMAP_BASE,
        phys: 0,
        size: PKMAP_SIZE,
        mem: MemType::Memory,
        access: Access::KernelRw,
        exec: false,
    };

    // devicemaps_init.
    let mut devs: Vec<MappingRequest, 32> = Vec::new();
    let mut cursor = DEVICE_WINDOW_BASE as u64;
    for d in devices {
        let invalid = MmuError::DeviceInvalid { name: d.name };
        let end = d.phys.checked_add(d.size).ok_or(invalid)?;
        if d.size == 0 {
            return Err(invalid);
        }
        let (p_lo, p_hi) = (align_down(d.phys, SECTION), align_up(end, SECTION));
        if p_hi > FOUR_GIB {
            return Err(MmuError::PhysTooHigh { phys: d.phys });
        }
        let in_ram = (d.phys < hi && lo < end) || (d.phys < img_hi && img_lo < end);
        if in_ram {
            return Err(invalid);
        }
        if devs.iter().any(|r| r.phys <= p_lo && p_hi <= r.phys_end()) {
            continue;
        }
        let size = p_hi - p_lo;
        if cursor + size > DEVICE_WINDOW_END as u64 {
            return Err(MmuError::DeviceWindowFull { name: d.name });
        }
        push(
            &mut devs,
            MappingRequest {
                name: d.name,
                kind: MappingKind::Device,
                virt: cursor as u32,
                phys: p_lo,
                size: size as u32,
                mem: MemType::Device,
                access: Access::KernelRw,
                exec: false,
            },
        )?;
        cursor += size;
    }

    // The identity map of the image.
    let ident_size = img_hi - img_lo;
    let covered_by_linear = plan
        .iter()
        .any(|r| r.virt as u64 == r.phys && r.phys <= img_lo && img_hi <= r.phys_end());
    if !covered_by_linear {
        let others = plan
            .iter()
            .chain(devs.iter())
            .chain(core::iter::once(&pkmap));
        for r in others {
            if r.virt_overlaps(img_lo, img_hi) {
                return Err(MmuError::IdentityClash {
                    virt: (r.virt as u64).max(img_lo) as u32,
                });
            }
        }
        // Above the modules area everything belongs to the kernel.
        if img_hi > MODULES_VADDR as u64 {
            return Err(MmuError::IdentityClash {
                virt: img_lo.max(MODULES_VADDR as u64) as u32,
            });
        }
        push(
            &mut plan,
            MappingRequest {
                name: "identity",
                kind: MappingKind::Identity,
                virt: img_lo as u32,
                phys: img_lo,
                size: ident_size as u32,
                mem: MemType::Memory,
                access: Access::KernelRw,
                exec: true,
            },
        )?;
    }
    for r in devs {
        push(&mut plan, r)?;
    }
    push(&mut plan, pkmap)?;
    Ok(plan)
}

/// The virtual address of device physical address `phys` in a plan, if a device
/// mapping covers it.
pub fn device_virt(plan: &[MappingRequest], phys: u64) -> Option<u32> {
    plan.iter()
        .find(|r| r.kind == MappingKind::Device && r.phys <= phys && phys < r.phys_end())
        .and_then(|r| r.virt.checked_add(u32::try_from(phys - r.phys).ok()?))
}

/// The kernel virtual layout, as printed by Linux's `mem_init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualLayout {
    /// High vector page.
    pub vector: (u32, u32),
    /// Fixmap.
    pub fixmap: (u32, u32),
    /// vmalloc area (`VMALLOC_START` to `VMALLOC_END`).
    pub vmalloc: (u32, u32),
    /// Lowmem linear map (`PAGE_OFFSET` to `high_memory`).
    pub lowmem: (u32, u32),
    /// PKMAP window.
    pub pkmap: (u32, u32),
    /// Modules.
    pub modules: (u32, u32),
    /// zonekit's device window (inside vmalloc; not printed by Linux).
    pub devices: (u32, u32),
}

impl VirtualLayout {
    /// The layout for a linear map ending at virtual `high_memory` (clamped to
    /// `[PAGE_OFFSET, VMALLOC_MIN]`).
    pub fn new(high_memory: u32) -> Self {
        let high = high_memory.clamp(PAGE_OFFSET, VMALLOC_MIN);
        let vmalloc_start = (high + VMALLOC_OFFSET) & !(VMALLOC_OFFSET - 1);
        Self {
            vector: (VECTORS_BASE, VECTORS_BASE + 0x1000),
            fixmap: (FIXADDR_START, FIXADDR_END),
            vmalloc: (vmalloc_start, VMALLOC_END),
            lowmem: (PAGE_OFFSET, high),
            pkmap: (PKMAP_BASE, PAGE_OFFSET),
            modules: (MODULES_VADDR, MODULES_END),
            devices: (DEVICE_WINDOW_BASE, DEVICE_WINDOW_END),
        }
    }

    /// The layout of a plan (high_memory = end of its lowmem requests).
    pub fn of_plan(plan: &[MappingRequest]) -> Self {
        let high = plan
            .iter()
            .filter(|r| r.kind == MappingKind::Lowmem)
            .map(|r| r.virt_end().min(u32::MAX as u64) as u32)
            .max()
            .unwrap_or(PAGE_OFFSET);
        Self::new(high)
    }
}

/// Print Linux's `Virtual kernel memory layout:` block.
pub fn print_virtual_layout(
    w: &mut dyn core::fmt::Write,
    layout: &VirtualLayout,
) -> core::fmt::Result {
    fn kb(w: &mut dyn core::fmt::Write, name: &str, r: (u32, u32)) -> core::fmt::Result {
        let size = r.1.wrapping_sub(r.0) >> 10;
        writeln!(
            w,
            "    {name:<8}: {:#010x} - {:#010x}   ({size:>4} kB)",
            r.0, r.1
        )
    }
    fn mb(w: &mut dyn core::fmt::Write, name: &str, r: (u32, u32)) -> core::fmt::Result {
        let size = r.1.wrapping_sub(r.0) >> 20;
        writeln!(
            w,
            "    {name:<8}: {:#010x} - {:#010x}   ({size:>4} MB)",
            r.0, r.1
        )
    }
    writeln!(w, "Virtual kernel memory layout:")?;
    kb(w, "vector", layout.vector)?;
    kb(w, "fixmap", layout.fixmap)?;
    mb(w, "vmalloc", layout.vmalloc)?;
    mb(w, "lowmem", layout.lowmem)?;
    mb(w, "pkmap", layout.pkmap)?;
    mb(w, "modules", layout.modules)
}

/// `__va` for lowmem: `PAGE_OFFSET + (phys - phys_offset)`, or `None` outside the
/// largest possible linear map.
pub const fn phys_to_virt(phys: u64, phys_offset: u64) -> Option<u32> {
    if phys < phys_offset || phys - phys_offset >= LOWMEM_MAX_SIZE as u64 {
        return None;
    }
    Some(PAGE_OFFSET + (phys - phys_offset) as u32)
}

/// `__pa` for lowmem: `phys_offset + (virt - PAGE_OFFSET)`, or `None` outside the
/// largest possible linear map.
pub const fn virt_to_phys(virt: u32, phys_offset: u64) -> Option<u64> {
    if virt < PAGE_OFFSET || virt >= VMALLOC_MIN {
        return None;
    }
    phys_offset.checked_add((virt - PAGE_OFFSET) as u64)
}

/// The linear map of an actual lowmem range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearMap {
    /// `PHYS_OFFSET`: the physical address at `PAGE_OFFSET`.
    pub phys_offset: u64,
    /// One past the last lowmem byte (`arm_lowmem_limit`).
    pub lowmem_end: u64,
}

impl LinearMap {
    /// `__va`, `None` outside lowmem.
    pub fn phys_to_virt(&self, phys: u64) -> Option<u32> {
        if phys >= self.lowmem_end {
            return None;
        }
        phys_to_virt(phys, self.phys_offset)
    }

    /// `__pa`, `None` outside lowmem.
    pub fn virt_to_phys(&self, virt: u32) -> Option<u64> {
        virt_to_phys(virt, self.phys_offset).filter(|&p| p < self.lowmem_end)
    }

    /// `high_memory`: the virtual end of lowmem.
    pub fn high_memory(&self) -> u32 {
        let size = self
            .lowmem_end
            .saturating_sub(self.phys_offset)
            .min(LOWMEM_MAX_SIZE as u64);
        PAGE_OFFSET + size as u32
    }
}
