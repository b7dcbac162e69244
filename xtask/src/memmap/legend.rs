//! The legend: one entry per kind drawn on this map, each with a caption saying what
//! that kind of range is.

use crate::sim::Owner;

/// What a range of `o` is, in a line.
pub fn owner_caption(o: Owner) -> String {
    match o {
        Owner::KernelImage => {
            "__image_start..__image_end: code, data, .bss and the boot stack".into()
        }
        Owner::BootData => {
            "the first page of RAM: QEMU's boot stub (and the ATAGS on a boot without DTB)".into()
        }
        Owner::Dtb => "the device tree blob as QEMU placed it (room to grow included)".into(),
        Owner::MemMap => format!(
            "the page descriptors: one {}-byte struct page per page frame (alloc_node_mem_map)",
            zonekit_core::page::PAGE_DESCRIPTOR_SIZE
        ),
        Owner::Usemap => "each zone's pageblock flags, 4 bits per pageblock (setup_usemap)".into(),
        Owner::ReservedStatic => {
            "/reserved-memory with reg, /memreserve/ entries and the initrd".into()
        }
        Owner::ReservedDynamic => {
            "/reserved-memory with size only (e.g. CMA pools): placed by memblock".into()
        }
        Owner::NoMap => "no-map regions: kept out of the linear map and the buddy allocator".into(),
        Owner::BootAlloc => {
            "other memblock allocations made during boot: paging_init's page tables \
             (L1 and L2, or LPAE tables), a cma= area, memblock's grown region arrays"
                .into()
        }
    }
}

/// What a zone is, in a line.
pub fn zone_caption(name: &str) -> &'static str {
    match name {
        "DMA" => "zone DMA: memory the board's DMA can reach (arm_dma_zone_size)",
        "Normal" => "zone Normal: lowmem, in the kernel's linear map",
        "HighMem" => "zone HighMem: above the lowmem limit, mapped only on demand (kmap)",
        _ => "a zone",
    }
}

/// Caption of free memory.
pub const FREE_CAPTION: &str = "whole pages memblock hands to the buddy allocator";
/// Caption of a hole between banks.
pub const HOLE_CAPTION: &str = "no RAM between two DRAM banks";
