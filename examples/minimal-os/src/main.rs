//! A minimal "your OS" on zonekit, outside zonekit's workspace: the arch crate's
//! runtime (`_start` and vectors, linked by `entry!`) enters `kernel_main`, one call boots
//! memory the way Linux does up to `mem_init`, and the kernel then owns a buddy
//! allocator and the kernel page tables; then a heap of pages (`zonekit-heap`) gives it
//! `Vec`, `Box` and `BTreeMap`. It brings its own `#[panic_handler]`. Build it
//! as `docs/using.md` says, or run `cargo xtask qemu --example minimal-os`
//! (vexpress-a9); `cargo xtask test` boots it.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod os {
    extern crate alloc;

    use alloc::boxed::Box;
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use core::ptr::NonNull;
    use zonekit_arch_arm::mmu::NoMappingHooks;
    use zonekit_arch_arm::rt::PhysPageStorage;
    use zonekit_arch_arm::{kprintln, rt};
    use zonekit_bsp_vexpress::{A9GlobalTimer, Pl011, VEXPRESS_A9 as BOARD};
    use zonekit_core::addr::pfn_phys;
    use zonekit_core::page_alloc::{Gfp, LockedPageAllocator, MAX_CPUS};
    use zonekit_core::PhysAddr;
    use zonekit_heap::{BuddyPages, PageHeap};

    // SAFETY: vexpress-a9's UART0 and MPCore global timer (periphbase 0x1e000000 +
    // 0x200), used by nothing else.
    static UART: Pl011 = unsafe { Pl011::new(BOARD.uart_base as usize) };
    // SAFETY: as above.
    static TIMER: A9GlobalTimer = unsafe { A9GlobalTimer::new(0x1E00_0200, 100_000_000) };

    /// The kernel's own panic handler (zonekit's is opt-in: `panic_handler!()`).
    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        kprintln!("minimal-os: panic: {}", info.message());
        rt::semihosting::exit(101)
    }

    // zonekit's `_start` and exception vectors, entering `kernel_main`.
    zonekit_arch_arm::entry!(kernel_main);

    /// The kernel's entry, called by `_start` with the boot registers.
    fn kernel_main(_r0: u32, r1: u32, r2: u32) -> ! {
        let memory = rt::MemoryInfo::BootRegisters { r1, r2 };
        let mut kernel = rt::boot_memory(&BOARD, &UART, &TIMER, memory, NoMappingHooks);
        let buddy = &mut kernel.running.allocator;
        let before = buddy.nr_free_pages() + buddy.nr_pcp_pages();
        let page = buddy.alloc_pages(0, Gfp::KERNEL, 0).expect("one page");
        let block = buddy
            .alloc_pages(0, Gfp::HIGHUSER_MOVABLE, 4)
            .expect("16 pages");
        kprintln!(
            "minimal-os: page at {:#x} ({}), 16 pages at {:#x} ({})",
            page.phys(),
            page.zone().name(),
            block.phys(),
            block.zone().name()
        );
        buddy.free_pages(0, page).expect("free the page");
        buddy.free_pages(0, block).expect("free the block");
        let after = buddy.nr_free_pages() + buddy.nr_pcp_pages();
        kprintln!("minimal-os: {} pages free before, {} after", before, after);

        // `alloc` from here on: the heap grows by pages from the buddy allocator.
        let cfg = kernel.running.allocator.config();
        LINEAR.call_once(|| (cfg.phys_offset, cfg.page_offset, pfn_phys(cfg.max_low_pfn)));
        let buddy = BUDDY.call_once(|| LockedPageAllocator::new(kernel.running.allocator));
        // SAFETY: GFP_KERNEL blocks are lowmem, which the kernel tables map read/write
        // at `linear_map`'s addresses (the allocator's own PHYS_OFFSET and its virtual
        // address, identity with `zonekit.nommu`); the heap owns every block it takes.
        HEAP.init(unsafe { BuddyPages::new(buddy, linear_map as LinearMapFn) });
        let squares: Vec<u32> = (0..10_000).map(|i| i * i).collect();
        let mut names = BTreeMap::new();
        for (i, name) in ["memblock", "zones", "buddy", "pcp", "kmap"]
            .iter()
            .enumerate()
        {
            names.insert(*name, i);
        }
        let boxed = Box::new([0x5au8; 256]);
        let ok = squares[9_999] == 9_999 * 9_999 && names["pcp"] == 3 && boxed[255] == 0x5a;
        kprintln!(
            "minimal-os: heap: a Vec of {} u32, a BTreeMap of {} names (first {:?}), a Box of {} bytes; {} pages from the buddy allocator",
            squares.len(),
            names.len(),
            names.keys().next(),
            boxed.len(),
            HEAP.stats().pages
        );
        rt::semihosting::exit(if before == after && ok { 0 } else { 1 })
    }

    /// The linear map as the booted allocator has it: PHYS_OFFSET, its virtual
    /// address, and the end of lowmem.
    static LINEAR: spin::Once<(PhysAddr, u64, PhysAddr)> = spin::Once::new();

    /// Where the linear map puts a lowmem physical address (`page_address`).
    fn linear_map(phys: PhysAddr) -> Option<NonNull<u8>> {
        let &(phys_offset, page_offset, lowmem_end) = LINEAR.get()?;
        if phys >= lowmem_end {
            return None;
        }
        let virt = phys.checked_sub(phys_offset)?.checked_add(page_offset)?;
        NonNull::new(usize::try_from(virt).ok()? as *mut u8)
    }

    type LinearMapFn = fn(PhysAddr) -> Option<NonNull<u8>>;

    /// The buddy allocator once the boot is done, shared with the heap.
    static BUDDY: spin::Once<LockedPageAllocator<PhysPageStorage, MAX_CPUS>> = spin::Once::new();

    /// The kernel's heap: `Box`, `Vec`, `BTreeMap`.
    #[global_allocator]
    static HEAP: PageHeap<BuddyPages<PhysPageStorage, MAX_CPUS, LinearMapFn>> = PageHeap::new();
}

#[cfg(not(target_os = "none"))]
fn main() {
    println!("minimal-os is a target-only binary: run `cargo xtask qemu --example minimal-os`");
}
