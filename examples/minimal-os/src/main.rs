//! A minimal "your OS" on zonekit, outside zonekit's workspace: the arch crate's
//! runtime (`_start` and vectors, linked by `entry!`) enters `kernel_main`, one call boots
//! memory the way Linux does up to `mem_init`, and the kernel then owns a buddy
//! allocator and the kernel page tables. It brings its own `#[panic_handler]`. Build it
//! as `docs/using.md` says, or run `cargo xtask qemu --example minimal-os`
//! (vexpress-a9); `cargo xtask test` boots it.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod os {
    use zonekit_arch_arm::mmu::NoMappingHooks;
    use zonekit_arch_arm::{kprintln, rt};
    use zonekit_bsp_vexpress::{A9GlobalTimer, Pl011, VEXPRESS_A9 as BOARD};
    use zonekit_core::page_alloc::Gfp;

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
        rt::semihosting::exit(if before == after { 0 } else { 1 })
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    println!("minimal-os is a target-only binary: run `cargo xtask qemu --example minimal-os`");
}
