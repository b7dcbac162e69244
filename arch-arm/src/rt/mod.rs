//! Target runtime: boot entry, exception vectors, semihosting, console and logger,
//! the secondary CPUs ([`smp`]: bring-up and `on_each_cpu`),
//! panic handler, physical page storage, and the generic [`boot_main`].
//!
//! Compiled only for `target_arch = "arm", target_os = "none"`.

pub mod console;
#[cfg(feature = "defmt")]
pub mod defmt_logger;
pub mod entry;
pub mod paging;
pub mod semihosting;
pub mod smp;
pub mod storage;

pub use storage::PhysPageStorage;

use crate::board::{BoardDesc, Console, MonotonicCounter, KERNEL_LOAD_OFFSET};
use crate::bootmem::{BootError, PagingContext, RunningMemory};
use crate::fdt::{fdt_totalsize_at, FdtError, FDT_HEADER_SIZE};
use crate::flow::{self, BootBlob, FlowInput, NoBlob};
use crate::hooks::{BootHooks, BootStep, HookStop};
use crate::kprintln;
use crate::mmu::kernel::{MmuOptions, NOMMU_LINE};
use crate::mmu::{MappingHooks, NoMappingHooks};
use crate::smp::alloc_test::concurrent_page_alloc_test;
use crate::smp::SmpFault;
use zonekit_core::addr::MemRange;
use zonekit_core::page_alloc::MAX_CPUS;
use zonekit_core::MemorySource;

pub use crate::flow::{EXIT_BOOT_ERROR, EXIT_SELF_CHECK};

/// Flattened device tree magic (big-endian in memory).
const FDT_MAGIC: u32 = 0xd00d_feed;

/// Most bytes of ATAGS zonekit reads (Linux's boot protocol suggests the first 16 KiB
/// of RAM; QEMU's list is far shorter).
const ATAGS_MAX_BYTES: u64 = 0x4000;

/// Exit code when the boot stack overflowed (checked after the boot flow).
pub const EXIT_STACK_OVERFLOW: u32 = 4;

/// Runs of the SMP smoke test (each a new generation of `on_each_cpu` work).
const SMOKE_ROUNDS: usize = 64;

pub use crate::smp::alloc_test::EXIT_SMP_TEST;
use crate::smp::alloc_test::SMP_TEST_SEED;

pub use crate::mmu::selftest::EXIT_MMU_TEST;
use crate::mmu::selftest::KMAP_TEST_PAGES;

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
    static __stack_bottom: u32;
    static __stack_top: u32;
}

/// The boot stack's high-water mark: (bytes used, stack size). Used equals the size
/// when the lowest word was overwritten, i.e. the stack (probably) overflowed.
pub fn stack_usage() -> (usize, usize) {
    // The linker symbols mark the ends of the stack area; the words between them are
    // not part of either static, so they are reached by address, not by offsetting a
    // pointer to the symbol.
    let bottom = core::ptr::addr_of!(__stack_bottom) as usize;
    let top = core::ptr::addr_of!(__stack_top) as usize;
    let words = (top - bottom) / 4;
    let untouched = (0..words)
        .take_while(|&i| {
            let word = core::ptr::with_exposed_provenance::<u32>(bottom + 4 * i);
            // SAFETY: every word of [__stack_bottom, __stack_top) is inside the image's
            // stack area; the scan reads upwards from the bottom and stops at the first
            // word that is not the paint, before reaching any live frame.
            let value = unsafe { core::ptr::read_volatile(word) };
            value == entry::STACK_PAINT
        })
        .count();
    ((words - untouched) * 4, words * 4)
}

/// Report the boot stack's high-water mark; exit with [`EXIT_STACK_OVERFLOW`] if it,
/// or the stack of an online secondary CPU, overflowed.
fn check_stack() {
    let (used, size) = stack_usage();
    kprintln!("zonekit: boot stack: {} of {} bytes used", used, size);
    if used >= size {
        kprintln!(
            "zonekit: error: boot stack overflowed (raise STACK_SIZE in arch-arm/src/link.rs)"
        );
        semihosting::exit(EXIT_STACK_OVERFLOW);
    }
    for cpu in 1..crate::smp::MAX_CPUS {
        if let Some((used, size)) = smp::stack_usage(cpu) {
            if used >= size {
                kprintln!(
                    "zonekit: error: CPU{} stack overflowed (raise SECONDARY_STACK_SIZE in arch-arm/src/link.rs)",
                    cpu
                );
                semihosting::exit(EXIT_STACK_OVERFLOW);
            }
        }
    }
}

/// The running image, from its first byte to the end of its stack and .bss.
fn kernel_image() -> MemRange {
    // Only the addresses of the linker-script symbols are taken, never their contents.
    let start = core::ptr::addr_of!(__image_start) as usize as u64;
    let end = core::ptr::addr_of!(__image_end) as usize as u64;
    MemRange::new(start, end.saturating_sub(start))
}

/// What r2 points at, for [`flow`]: a DTB (magic 0xd00dfeed) anywhere in the board's
/// RAM window, else the boot area below the image, where ATAGS would be.
fn classify_r2(board: &BoardDesc, r2: u32, image_start: u64) -> BootBlob<'static> {
    let addr = u64::from(r2);
    let ram_end = board.ram_base + board.max_ram;
    if addr % 4 != 0 || addr < board.ram_base || addr + 4 > ram_end {
        return BootBlob::None(NoBlob::OutsideRam);
    }
    // The boot protocol promises that r2 points into RAM; the board's largest RAM
    // window is all that can be checked without knowing the RAM size yet. (A bad
    // pointer past the real end of RAM aborts on some boards; the vectors report it.)
    // SAFETY: the address is 4-aligned, non-null and inside the board's RAM window
    // (checked above), where the boot loader put its data; it is read once.
    let first = unsafe { core::ptr::read_volatile(addr as usize as *const u32) };
    if u32::from_be(first) == FDT_MAGIC {
        return BootBlob::Dtb {
            addr,
            blob: open_dtb(board, r2),
        };
    }
    if addr >= image_start {
        return BootBlob::None(NoBlob::IntoImage);
    }
    let len = (image_start - addr).min(ATAGS_MAX_BYTES) as usize;
    // SAFETY: [addr, addr + len) lies in RAM below the image (the boot stub and ATAGS
    // page QEMU wrote), which nothing writes while zonekit runs; it is only read.
    let bytes: &'static [u8] =
        unsafe { core::slice::from_raw_parts(addr as usize as *const u8, len) };
    BootBlob::Atags { addr, bytes }
}

/// The DTB at `at` as bytes: read its header, check that `totalsize` fits in the
/// board's RAM window, and view that many bytes (the validating parser checks them).
fn open_dtb(board: &BoardDesc, at: u32) -> Result<&'static [u8], FdtError> {
    let addr = u64::from(at);
    let room = (board.ram_base + board.max_ram).saturating_sub(addr);
    if room < FDT_HEADER_SIZE as u64 {
        return Err(FdtError::Truncated {
            need: FDT_HEADER_SIZE,
            have: room as usize,
        });
    }
    // SAFETY: classify_r2 checked that `at` is 4-aligned and inside the board's RAM
    // window, and `room` bytes from it are inside that window; the header is read-only.
    let header: &'static [u8] =
        unsafe { core::slice::from_raw_parts(addr as usize as *const u8, FDT_HEADER_SIZE) };
    let total = fdt_totalsize_at(header).ok_or(FdtError::BadMagic { found: 0 })? as u64;
    if total > room {
        return Err(FdtError::Truncated {
            need: total as usize,
            have: room as usize,
        });
    }
    // SAFETY: [addr, addr + total) is inside the board's RAM window (checked above);
    // the boot loader placed the blob there and nothing writes it while zonekit runs,
    // and memblock reserves it before any allocation.
    let blob: &'static [u8] =
        unsafe { core::slice::from_raw_parts(addr as usize as *const u8, total as usize) };
    Ok(blob)
}

/// Test hook for the exception vectors, from the command line:
/// `zonekit.fault=undef` executes an undefined instruction, `zonekit.fault=read:ADDR`
/// (hex) reads a word from ADDR (a data abort where nothing is mapped),
/// `zonekit.fault=hang` stops the CPU without exiting (to test host-side timeouts);
/// the SMP faults ([`SmpFault`]: `cpu-offline:N`, `cpu-undef:N`) are returned for
/// the bring-up and its smoke test.
fn inject_fault(what: &str) -> Option<SmpFault> {
    kprintln!("zonekit: injecting fault {:?}", what);
    if let Some(f) = SmpFault::parse(what) {
        return Some(f);
    }
    if what == "undef" {
        // SAFETY: deliberately raises an Undefined Instruction exception, which the
        // vectors report before exiting; nothing after it runs.
        unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
    } else if what == "hang" {
        semihosting::halt();
    } else if let Some(addr) = what.strip_prefix("read:") {
        let digits = addr.trim_start_matches("0x");
        match u32::from_str_radix(digits, 16) {
            Ok(a) if a % 4 == 0 => {
                // SAFETY: a deliberate, test-only read of an arbitrary aligned address;
                // a fault is reported by the vectors, and the value is discarded.
                let v = unsafe { core::ptr::read_volatile(a as usize as *const u32) };
                kprintln!("zonekit: read {:#010x} from {:#010x} without a fault", v, a);
            }
            _ => kprintln!("zonekit: zonekit.fault=read: needs an aligned hex address"),
        }
    } else {
        kprintln!("zonekit: unknown zonekit.fault={}", what);
    }
    None
}

/// Ticks of the board counter at each [`BootStep`] (for timings and `zonekit.bench`).
#[derive(Default)]
struct StepTicks([u64; 6]);

impl StepTicks {
    fn slot(step: BootStep) -> usize {
        match step {
            BootStep::MemoryInitStart => 0,
            BootStep::FreeAreaInitStart => 1,
            BootStep::FreeAreaInitEnd => 2,
            BootStep::FreeAllStart => 3,
            BootStep::FreeAllEnd => 4,
            BootStep::MemoryInitEnd => 5,
        }
    }

    fn span(&self, from: BootStep, to: BootStep) -> u64 {
        self.0[Self::slot(to)].wrapping_sub(self.0[Self::slot(from)])
    }

    /// Ticks spent in `free_area_init_node` plus `memblock_free_all`.
    fn init_and_free_all(&self) -> u64 {
        self.span(BootStep::FreeAreaInitStart, BootStep::FreeAreaInitEnd)
            + self.span(BootStep::FreeAllStart, BootStep::FreeAllEnd)
    }
}

/// The guest's part in the [`flow`]: `paging_init` with the MMU switch
/// ([`paging::ArmPaging`]), timings on the board counter, `zonekit.fault=` /
/// `zonekit.nommu` / `zonekit.nocache` / `zonekit.test_abort`, the MMU self-tests,
/// the secondary CPUs with the SMP smoke test, and the stack check.
struct GuestHooks<H> {
    board: &'static BoardDesc,
    counter: &'static dyn MonotonicCounter,
    paging: paging::ArmPaging<H>,
    steps: StepTicks,
    nommu: bool,
    test_abort: bool,
    /// Run the MMU self-tests in [`BootHooks::running`] (the self-tested boot), or
    /// keep the MMU for the caller ([`boot_memory`]).
    mmu_tests: bool,
    mmu: Option<paging::KernelMmu>,
    /// `zonekit.fault=cpu-offline:N` / `cpu-undef:N`.
    smp_fault: Option<SmpFault>,
}

impl<H: for<'a> MappingHooks<paging::EarlyTables<'a>>> BootHooks<PhysPageStorage>
    for GuestHooks<H>
{
    fn cmdline(&mut self, cmdline: &str) {
        for word in cmdline.split_ascii_whitespace() {
            if let Some(what) = word.strip_prefix("zonekit.fault=") {
                self.smp_fault = inject_fault(what).or(self.smp_fault);
            }
        }
        let o = MmuOptions::parse(cmdline);
        (self.nommu, self.test_abort) = (o.nommu, o.test_abort);
        if o.nocache {
            self.paging.set_caches(false);
        }
        if self.nommu {
            kprintln!("{}", NOMMU_LINE);
        }
    }

    fn paging_init(
        &mut self,
        ctx: PagingContext<'_, PhysPageStorage>,
    ) -> Result<Option<u64>, BootError> {
        if self.nommu {
            return Ok(None);
        }
        let r = self.paging.paging_init(ctx);
        self.mmu = self.paging.take_mmu();
        r
    }

    fn step(&mut self, step: BootStep) {
        self.steps.0[StepTicks::slot(step)] = self.counter.ticks();
    }

    fn mem_init_done(&mut self, running: &RunningMemory<PhysPageStorage, MAX_CPUS>) {
        let ticks = self
            .steps
            .span(BootStep::MemoryInitStart, BootStep::MemoryInitEnd);
        kprintln!(
            "zonekit: memory init took {} us",
            self.counter.ticks_to_ns(ticks) / 1000
        );
        if running.cmdline.bench {
            kprintln!(
                "zonekit-bench: free_area_init_core+memblock_free_all ticks={} hz={} pages={}",
                self.steps.init_and_free_all(),
                self.counter.frequency_hz(),
                running.allocator.node().node_present_pages
            );
        }
    }

    fn running(
        &mut self,
        running: &mut RunningMemory<PhysPageStorage, MAX_CPUS>,
    ) -> Result<(), HookStop> {
        if running.cmdline.bench {
            bench_pairs(&mut running.allocator, self.counter)?;
        }
        if !self.mmu_tests {
            return Ok(());
        }
        if !self.nommu {
            let stop = |why| HookStop {
                what: "MMU self-test",
                why,
                exit_code: EXIT_MMU_TEST,
            };
            let mmu = self.mmu.as_mut().ok_or(stop("paging_init did not run"))?;
            paging::mmu_self_test(
                mmu,
                &mut running.allocator,
                KMAP_TEST_PAGES,
                self.test_abort,
            )
            .map_err(stop)?;
        }
        // The secondary CPUs, then work on all of them at once.
        let offline = match self.smp_fault {
            Some(SmpFault::Offline(n)) => Some(n),
            _ => None,
        };
        let mut smp = smp::bring_up_except(
            self.board,
            self.counter,
            self.mmu.as_ref(),
            &running.cmdline,
            offline,
        );
        let undef = match self.smp_fault {
            Some(SmpFault::Undef(n)) => Some(n),
            _ => None,
        };
        smp_smoke_test(&mut smp, undef)?;
        if running.cmdline.bench {
            bench_smp_pairs(&mut running.allocator, smp.boot_cpu(), self.counter)?;
        }
        if smp.online() < 2 {
            return Ok(());
        }
        // SAFETY: the linear map is live (or the MMU is off: identity), and the test
        // only touches blocks it holds from this allocator.
        let mem = unsafe { smp::patterns::LinearPatterns::new(&running.allocator) };
        concurrent_page_alloc_test(&mut running.allocator, &mut smp, &mem, SMP_TEST_SEED)
            .map(|_| ())
            .map_err(|_| HookStop {
                what: "concurrent page allocator test",
                why: "a CPU's block was overwritten, a free refused or pages lost",
                exit_code: EXIT_SMP_TEST,
            })
    }

    fn before_verdict(&mut self) {
        check_stack();
    }
}

/// Alloc+free pairs timed for `zonekit.bench`, after the memory-init line: per
/// order, `zonekit-bench: order<k> alloc+free pair n=N ticks=T hz=F` (CPU 0, the
/// other CPUs not yet up; `cargo xtask bench` reads them).
fn bench_pairs(
    allocator: &mut zonekit_core::page_alloc::PageAllocator<PhysPageStorage, MAX_CPUS>,
    counter: &dyn MonotonicCounter,
) -> Result<(), HookStop> {
    print_pairs("", counter, |order| {
        allocator.timed_pairs(0, order, BENCH_PAIRS, || counter.ticks())
    })
}

/// The same pairs through the shared allocator (`SmpPageAllocator`, what a kernel
/// uses on every CPU) on the boot CPU, uncontended: `zonekit-bench: smp-order<k>
/// alloc+free pair n=N ticks=T hz=F`.
fn bench_smp_pairs(
    allocator: &mut zonekit_core::page_alloc::PageAllocator<PhysPageStorage, MAX_CPUS>,
    cpu: &mut zonekit_core::percpu::CpuToken,
    counter: &dyn MonotonicCounter,
) -> Result<(), HookStop> {
    let shared: zonekit_core::page_alloc::SmpPageAllocator<'_, PhysPageStorage, MAX_CPUS> =
        zonekit_core::page_alloc::SmpPageAllocator::new(allocator);
    print_pairs("smp-", counter, |order| {
        shared.timed_pairs(cpu, order, BENCH_PAIRS, || counter.ticks())
    })
}

/// Time orders 0 and 3 with `timed` and print a `zonekit-bench: <kind>order<k>` line
/// for each; a failed loop stops the boot, saying why.
fn print_pairs(
    kind: &str,
    counter: &dyn MonotonicCounter,
    mut timed: impl FnMut(u32) -> Result<u64, zonekit_core::page_alloc::PairError>,
) -> Result<(), HookStop> {
    for order in [0, 3] {
        let ticks = timed(order).map_err(|e| {
            kprintln!("zonekit-bench: {}order{} pairs stopped: {}", kind, order, e);
            HookStop {
                what: "zonekit.bench",
                why: "an allocation or free of the timed pairs failed",
                exit_code: EXIT_SELF_CHECK,
            }
        })?;
        kprintln!(
            "zonekit-bench: {}order{} alloc+free pair n={} ticks={} hz={}",
            kind,
            order,
            BENCH_PAIRS,
            ticks,
            counter.frequency_hz()
        );
    }
    Ok(())
}

/// Pairs per `zonekit.bench` figure.
const BENCH_PAIRS: u32 = 10_000;

/// The SMP smoke test of the self-tested boot: [`SMOKE_ROUNDS`] runs of
/// [`smp::on_each_cpu`] in which every online CPU counts itself once (if its token
/// names the CPU it runs on). With `undef`, that CPU executes an undefined
/// instruction instead (a test fault).
fn smp_smoke_test(smp: &mut smp::Smp, undef: Option<usize>) -> Result<(), HookStop> {
    static RAN: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
    use core::sync::atomic::Ordering::Relaxed;
    let mut all_ran = true;
    for _ in 0..SMOKE_ROUNDS {
        RAN.store(0, Relaxed);
        smp.on_each_cpu(&|cpu| {
            if undef == Some(cpu.id()) {
                // SAFETY: a deliberate Undefined Instruction exception (zonekit.fault=
                // cpu-undef:N), which the vectors report before exiting.
                unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
            }
            if cpu.id() == smp::this_cpu() {
                RAN.fetch_add(1, Relaxed);
            }
        });
        all_ran &= RAN.load(Relaxed) == smp.online();
    }
    let ran = RAN.load(Relaxed);
    if !all_ran {
        return Err(HookStop {
            what: "SMP smoke test",
            why: "not every online CPU ran the on_each_cpu work once",
            exit_code: EXIT_SMP_TEST,
        });
    }
    if ran > 1 {
        kprintln!("zonekit: smp: {} CPUs ran on_each_cpu", ran);
    }
    Ok(())
}

impl<H: for<'a> MappingHooks<paging::EarlyTables<'a>>> GuestHooks<H> {
    fn new(
        board: &'static BoardDesc,
        console: &'static dyn Console,
        counter: &'static dyn MonotonicCounter,
        hooks: H,
        mmu_tests: bool,
    ) -> Self {
        Self {
            board,
            counter,
            paging: paging::ArmPaging::new(board, console, hooks).with_counter(counter),
            steps: StepTicks::default(),
            nommu: false,
            test_abort: false,
            mmu_tests,
            mmu: None,
            smp_fault: None,
        }
    }
}

/// Set by the first boot entry ([`boot_main`], [`boot_memory`]). What they set up
/// (the console cell, the page storage on physical addresses) assumes the MMU is off
/// and only the boot CPU runs, which is true once.
static ENTERED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Console, logger and counter up, the registers and memory r2 points at read: the
/// [`flow`] input. A second boot entry stops here (exit [`EXIT_BOOT_ERROR`]).
/// `given` replaces what r2 points at (which is then not read).
fn flow_input<'a>(
    board: &'static BoardDesc,
    console: &'static dyn Console,
    counter: &'static dyn MonotonicCounter,
    r1: u32,
    r2: u32,
    given: Option<(&'a dyn MemorySource, &'a str)>,
) -> FlowInput<'a> {
    // Plain load and store: exclusive accesses are not reliable with the MMU off.
    use core::sync::atomic::Ordering::Relaxed;
    if ENTERED.load(Relaxed) {
        // The first entry's console is still the output.
        kprintln!("zonekit: boot_main/boot_memory run once, at boot: called again");
        semihosting::exit(EXIT_BOOT_ERROR);
    }
    ENTERED.store(true, Relaxed);
    console::init(console);
    counter.start();
    let image = kernel_image();
    let image_start = if image.is_empty() {
        board.ram_base + KERNEL_LOAD_OFFSET
    } else {
        image.base
    };
    let blob = match given {
        Some((source, cmdline)) => BootBlob::Given { source, cmdline },
        None => classify_r2(board, r2, image_start),
    };
    FlowInput {
        board,
        r1,
        r2,
        blob,
        kernel_image: image,
    }
}

/// The page storage of the boot.
fn phys_storage() -> PhysPageStorage {
    // SAFETY: the MMU is off (identity addressing) until paging_init, which moves the
    // storage to the linear map when it switches the MMU on; the boot flow only
    // passes ranges memblock has just reserved for it.
    unsafe { PhysPageStorage::new() }
}

/// The board binaries' entry: the whole self-tested boot ([`flow::run`]) with the
/// MMU switched on in `paging_init`, the page allocator and MMU self-tests, the
/// secondary CPUs brought up ([`smp::bring_up`]) and an [`smp::on_each_cpu`] smoke
/// test, then a semihosting exit with the outcome's status (0, [`EXIT_BOOT_ERROR`],
/// [`EXIT_SELF_CHECK`], [`EXIT_MMU_TEST`], [`EXIT_SMP_TEST`], [`EXIT_STACK_OVERFLOW`]).
pub fn boot_main(
    board: &'static BoardDesc,
    console: &'static dyn Console,
    counter: &'static dyn MonotonicCounter,
    r1: u32,
    r2: u32,
) -> ! {
    let input = flow_input(board, console, counter, r1, r2, None);
    let mut hooks = GuestHooks::new(board, console, counter, NoMappingHooks, true);
    let outcome = flow::run(input, phys_storage(), &mut hooks);
    semihosting::exit(outcome.exit_code())
}

/// What [`boot_memory`] gives a kernel: the running page allocator and, unless the
/// command line said `zonekit.nommu`, the live MMU state (page tables, linear map,
/// `kmap`/`kunmap` for highmem pages). Only the boot CPU runs;
/// [`BootedKernel::start_cpus`] starts the others.
pub struct BootedKernel {
    /// memblock retired, the buddy allocator owning every free page.
    pub running: RunningMemory<PhysPageStorage, MAX_CPUS>,
    /// The kernel page tables and pkmap, once `paging_init` switched the MMU on.
    pub mmu: Option<paging::KernelMmu>,
    board: &'static BoardDesc,
    counter: &'static dyn MonotonicCounter,
}

impl BootedKernel {
    /// Start the board's secondary CPUs ([`smp::bring_up`]: as many as the hardware
    /// has, up to [`crate::smp::MAX_CPUS`], `maxcpus=` and `nosmp` from the command
    /// line), each on the kernel tables of [`Self::mmu`], parked until work comes.
    /// The returned [`smp::Smp`] holds the boot CPU's token and runs work on every
    /// online CPU ([`smp::Smp::on_each_cpu`]). Call it once.
    ///
    /// ```ignore
    /// let mut smp = booted.start_cpus();
    /// smp.on_each_cpu(&|cpu| kprintln!("hello from CPU{}", cpu.id()));
    /// ```
    pub fn start_cpus(&self) -> smp::Smp {
        smp::bring_up(
            self.board,
            self.counter,
            self.mmu.as_ref(),
            &self.running.cmdline,
        )
    }
}

/// Where [`boot_memory`] learns the memory layout.
#[derive(Clone, Copy)]
pub enum MemoryInfo<'a> {
    /// What the boot loader left: r2 points at a DTB, else ATAGS (else the board
    /// map is used); r1 is the machine number.
    BootRegisters {
        /// r1 at entry.
        r1: u32,
        /// r2 at entry.
        r2: u32,
    },
    /// The kernel's own description (a firmware table it parsed, a fixed map of its
    /// own) and command line.
    Source {
        /// The banks and reservations.
        source: &'a dyn MemorySource,
        /// The kernel command line (`mem=`, `memblock=debug`, `zonekit.*`, ...).
        cmdline: &'a str,
    },
}

/// For your own kernel: the [`flow::boot`] up to a running page allocator, with the
/// MMU on (lowmem linearly mapped at PAGE_OFFSET) and the OS's [`MappingHooks`]
/// around the switch (`before_mmu_on` may add mappings, `after_mmu_on` runs on the
/// new ones), memory described by `memory`. A boot error exits through semihosting
/// with the outcome's status.
pub fn boot_memory<H: for<'a> MappingHooks<paging::EarlyTables<'a>>>(
    board: &'static BoardDesc,
    console: &'static dyn Console,
    counter: &'static dyn MonotonicCounter,
    memory: MemoryInfo<'_>,
    hooks: H,
) -> BootedKernel {
    let input = match memory {
        MemoryInfo::BootRegisters { r1, r2 } => flow_input(board, console, counter, r1, r2, None),
        MemoryInfo::Source { source, cmdline } => {
            flow_input(board, console, counter, 0, 0, Some((source, cmdline)))
        }
    };
    let mut guest = GuestHooks::new(board, console, counter, hooks, false);
    match flow::boot(input, phys_storage(), &mut guest) {
        Ok(running) => BootedKernel {
            running,
            mmu: guest.mmu.take(),
            board,
            counter,
        },
        Err(outcome) => semihosting::exit(outcome.exit_code()),
    }
}
