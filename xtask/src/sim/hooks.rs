//! The simulator's side of the boot flow: page storage that records what each request
//! was for and checks it against the simulated RAM, and the hooks that do what the
//! guest's hooks do, without hardware: build the kernel page tables (the same
//! `build_kernel_tables` the guest runs), print the MMU-on line with the register
//! values the guest would program, run the guest's MMU self-tests by walking those
//! tables into simulated RAM, and draw the memory map.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use zonekit_core::selftest::smp::PagePatterns;

use zonekit_core::page_alloc::MAX_CPUS;

use zonekit_arch_arm::board::BoardDesc;
use zonekit_arch_arm::bootmem::RunningMemory;
use zonekit_arch_arm::bootmem::{BootError, BootParams, BootedMemory, PagingContext};
use zonekit_arch_arm::hooks::{BootHooks, BootStep, HookStop};
use zonekit_arch_arm::mmu::early::build_kernel_tables;
use zonekit_arch_arm::mmu::kernel::{log_mmu_on, ttbr0_of, MmuOptions, NOMMU_LINE};
use zonekit_arch_arm::mmu::regs::{sctlr_mmu_on, TTBCR_LONG_TTBR0_ONLY, TTBCR_SHORT_TTBR0_ONLY};
use zonekit_arch_arm::mmu::selftest::{
    mmu_self_test, translation_fault, Fault, ProbeAbortReport, VirtualMemory, EXIT_MMU_TEST,
    KMAP_TEST_PAGES,
};
use zonekit_arch_arm::mmu::{
    print_virtual_layout, KernelMmu, KernelTableMemory, LinearMap, MmuError, NoMappingHooks,
    TableMemory, TlbFlush, VirtualLayout, PAGE_OFFSET,
};
use zonekit_arch_arm::smp::alloc_test::{
    concurrent_page_alloc_test, ThreadCpus, EXIT_SMP_TEST, SMP_TEST_SEED,
};
use zonekit_arch_arm::smp::{cpus_to_start, SmpFault};
use zonekit_core::addr::{MemRange, PhysAddr};
use zonekit_core::fmt::LogLines;
use zonekit_core::page::Page;
use zonekit_core::storage::{PageStorage, StorageError, VecPageStorage};
use zonekit_core::zk_info;

use super::{memory_map, MemoryMap, Ram};

/// Kind of a storage request, for owners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handed {
    MemMap,
    Bitmap,
}

/// [`VecPageStorage`] that also records what each request was for, and checks it
/// against the simulated RAM.
pub(super) struct SimStorage {
    pub(super) inner: VecPageStorage,
    pub(super) record: Arc<Mutex<Vec<(Handed, MemRange)>>>,
    pub(super) ram: Ram,
}

impl SimStorage {
    /// Check a `mem_map` of `nr_pages` descriptors at `base` against the RAM and
    /// record it for the memory map.
    fn hand_out_mem_map(&self, base: PhysAddr, nr_pages: usize) {
        let bytes = (nr_pages * core::mem::size_of::<Page>()) as u64;
        let r = MemRange::new(base, bytes);
        self.ram
            .check(r, "mem_map", "the guest hangs or faults writing it");
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((Handed::MemMap, r));
    }
}

impl PageStorage for SimStorage {
    type MemMap = <VecPageStorage as PageStorage>::MemMap;
    type Bitmap = <VecPageStorage as PageStorage>::Bitmap;

    fn mem_map(&mut self, base: PhysAddr, nr_pages: usize) -> Result<Self::MemMap, StorageError> {
        self.hand_out_mem_map(base, nr_pages);
        self.inner.mem_map(base, nr_pages)
    }

    fn mem_map_init(
        &mut self,
        base: PhysAddr,
        nr_pages: usize,
        runs: &[(usize, Page)],
    ) -> Result<Self::MemMap, StorageError> {
        self.hand_out_mem_map(base, nr_pages);
        self.inner.mem_map_init(base, nr_pages, runs)
    }

    fn bitmap(&mut self, base: PhysAddr, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        let r = MemRange::new(base, bytes as u64);
        self.ram
            .check(r, "a usemap", "the guest hangs or faults writing it");
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((Handed::Bitmap, r));
        self.inner.bitmap(base, bytes)
    }

    fn zero(&mut self, base: PhysAddr, size: u64) -> Result<(), StorageError> {
        self.inner.zero(base, size)
    }

    fn allocator_table(&mut self, bytes: usize) -> Result<Self::Bitmap, StorageError> {
        // Outside the guest's RAM, as the target's is in its image: nothing to check.
        self.inner.allocator_table(bytes)
    }

    fn write_words(
        &mut self,
        base: PhysAddr,
        words: u64,
        pattern: u64,
    ) -> Result<(), StorageError> {
        self.inner.write_words(base, words, pattern)
    }

    fn read_words(&mut self, base: PhysAddr, out: &mut [u64]) -> Result<(), StorageError> {
        self.inner.read_words(base, out)
    }
}

/// The sim's part in the flow: build the kernel page tables as the guest's
/// `paging_init` does (same plan, same memblock allocations; the MMU switch itself
/// is the only step missing), run the guest's MMU self-tests on them through
/// simulated RAM, and draw the memory map once `bootmem_init` is done.
pub(super) struct SimHooks {
    board: &'static BoardDesc,
    started: Option<std::time::Instant>,
    record: Arc<Mutex<Vec<(Handed, MemRange)>>>,
    dtb: Option<MemRange>,
    /// The memory map, once `bootmem_init` is done.
    pub(super) map: Option<MemoryMap>,
    ram: Ram,
    probe: u64,
    options: MmuOptions,
    mmu: Option<KernelMmu<SimTables>>,
    /// CPUs of the machine (QEMU's `-smp`).
    pub(super) cpus: u32,
    /// `zonekit.fault=cpu-offline:N`: the CPU that stays asleep.
    offline: Option<usize>,
}

impl SimHooks {
    /// The hooks of a boot of `board` in `ram`, whose storage records into `record`,
    /// with the DTB at `dtb` and the image's probe buffer at `probe`.
    pub(super) fn new(
        board: &'static BoardDesc,
        record: Arc<Mutex<Vec<(Handed, MemRange)>>>,
        dtb: Option<MemRange>,
        ram: Ram,
        probe: u64,
    ) -> Self {
        Self {
            board,
            started: None,
            record,
            dtb,
            map: None,
            ram,
            probe,
            options: MmuOptions::default(),
            mmu: None,
            cpus: 1,
            offline: None,
        }
    }
}

/// The simulated pages' pattern words: one per page of the node (the guest writes
/// three into the page itself; one tells the same story here).
struct SimPatterns {
    start: u64,
    words: Vec<AtomicU32>,
}

impl SimPatterns {
    fn new<S: PageStorage>(node: &zonekit_core::zone::PgData<S>) -> Self {
        SimPatterns {
            start: node.node_start_pfn,
            words: (0..node.node_spanned_pages)
                .map(|_| AtomicU32::new(0))
                .collect(),
        }
    }

    fn slots(&self, pfn: u64, order: u32) -> impl Iterator<Item = &AtomicU32> {
        let from = pfn.saturating_sub(self.start) as usize;
        self.words.iter().skip(from).take(1 << order)
    }
}

impl PagePatterns for SimPatterns {
    fn fill(&self, pfn: u64, order: u32, pattern: u32) {
        self.slots(pfn, order)
            .for_each(|w| w.store(pattern, Relaxed));
    }

    fn holds(&self, pfn: u64, order: u32, pattern: u32) -> bool {
        self.slots(pfn, order).all(|w| w.load(Relaxed) == pattern)
    }
}

/// SCTLR out of reset on QEMU's Cortex-A7/A9/A15 models (`reset_sctlr`), which the
/// guest's MMU switch reads and modifies.
const QEMU_RESET_SCTLR: u32 = 0x00c5_0078;

/// Simulated page-table memory: 16 KiB chunks of words, created on first write
/// (checked against the simulated RAM then: the guest would write there). Like the
/// guest's `DirectTableMemory`, it reaches only the claimed tables.
struct SimTables(BTreeMap<u64, Vec<u32>>, Ram, Vec<(u64, u64)>);

/// What an untouched chunk reads as.
static ZERO_WORDS: [u32; SimTables::CHUNK_WORDS] = [0; SimTables::CHUNK_WORDS];

impl SimTables {
    const CHUNK_WORDS: usize = 4096;
    const CHUNK_BYTES: u64 = 4 * Self::CHUNK_WORDS as u64;

    fn locate(&self, phys: PhysAddr, count: usize) -> Option<(u64, usize)> {
        let end = phys.checked_add(4 * count as u64)?;
        if !self.2.iter().any(|&(s, e)| s <= phys && end <= e) {
            return None;
        }
        let chunk = phys & !(Self::CHUNK_BYTES - 1);
        let first = ((phys - chunk) / 4) as usize;
        (phys.is_multiple_of(4) && first + count <= Self::CHUNK_WORDS).then_some((chunk, first))
    }
}

impl TableMemory for SimTables {
    fn words(&self, phys: PhysAddr, count: usize) -> Option<&[u32]> {
        let (chunk, first) = self.locate(phys, count)?;
        let words = self.0.get(&chunk).map_or(&ZERO_WORDS[..], Vec::as_slice);
        Some(&words[first..first + count])
    }

    fn words_mut(&mut self, phys: PhysAddr, count: usize) -> Option<&mut [u32]> {
        let (chunk, first) = self.locate(phys, count)?;
        let ram = &self.1;
        let words = self.0.entry(chunk).or_insert_with(|| {
            ram.check(
                MemRange::new(chunk, Self::CHUNK_BYTES),
                "paging_init: a page table",
                "the guest hangs or faults writing it",
            );
            vec![0; Self::CHUNK_WORDS]
        });
        Some(&mut words[first..first + count])
    }

    fn claim(&mut self, phys: PhysAddr, bytes: usize) -> Result<(), MmuError> {
        let end = phys
            .checked_add(bytes as u64)
            .ok_or(MmuError::OutOfTableMemory { bytes, align: 4 })?;
        self.2.push((phys, end));
        Ok(())
    }
}

impl KernelTableMemory for SimTables {
    /// No cache is simulated: the walk reads what was written.
    fn sync_table_word(&mut self, _phys: PhysAddr) {}

    /// No TLB is simulated: every access walks the tables.
    fn flush_tlb(&mut self, _flush: TlbFlush) {}
}

/// Simulated RAM contents for the MMU self-tests: words by physical address, reached
/// by walking the kernel tables as the MMU would.
struct SimVirtualMemory {
    words: BTreeMap<u64, u32>,
    ram: Ram,
}

impl SimVirtualMemory {
    fn translate(&self, mmu: &KernelMmu<SimTables>, va: u32, write: bool) -> Result<u64, Fault> {
        if let Some(f) = translation_fault(mmu, va, write) {
            return Err(f);
        }
        let phys = mmu.page_table().walk(va).map_or(0, |t| t.phys);
        self.ram.check(
            MemRange::new(phys, 4),
            "an MMU self-test access",
            "the guest faults there",
        );
        Ok(phys)
    }
}

impl VirtualMemory<SimTables> for SimVirtualMemory {
    fn read(&mut self, mmu: &KernelMmu<SimTables>, va: u32) -> Result<u32, Fault> {
        let phys = self.translate(mmu, va, false)?;
        Ok(self.words.get(&phys).copied().unwrap_or(0))
    }

    fn write(&mut self, mmu: &KernelMmu<SimTables>, va: u32, value: u32) -> Result<(), Fault> {
        let phys = self.translate(mmu, va, true)?;
        self.words.insert(phys, value);
        Ok(())
    }

    fn probe_read(&mut self, mmu: &KernelMmu<SimTables>, va: u32) -> Option<Fault> {
        let fault = self.translate(mmu, va, false).err()?;
        // The guest's handler prints the faulting load's address; there is none here
        // (golden logs write it as a placeholder).
        zk_info!("{}", ProbeAbortReport { pc: 0, fault });
        Some(fault)
    }
}

impl BootHooks<SimStorage> for SimHooks {
    fn cmdline(&mut self, cmdline: &str) {
        // The guest announces its SMP test faults (the only ones the simulated
        // boots of the matrix use) before acting on them.
        for (what, fault) in cmdline
            .split_ascii_whitespace()
            .filter_map(|w| w.strip_prefix("zonekit.fault="))
            .filter_map(|w| Some((w, SmpFault::parse(w)?)))
        {
            zk_info!("zonekit: injecting fault {:?}", what);
            if let SmpFault::Offline(n) = fault {
                self.offline = Some(n);
            }
        }
        self.options = MmuOptions::parse(cmdline);
        if self.options.nommu {
            zk_info!("{}", NOMMU_LINE);
        }
    }

    /// The guest's `paging_init` up to the MMU switch (same plan, same memblock
    /// allocations), then what the guest prints once the MMU is on.
    fn paging_init(
        &mut self,
        ctx: PagingContext<'_, SimStorage>,
    ) -> Result<Option<u64>, BootError> {
        self.ram.check_memblock(ctx.memblock);
        if self.options.nommu {
            return Ok(None);
        }
        let linear = LinearMap {
            phys_offset: ctx.arch.phys_offset,
            lowmem_end: ctx.lowmem_limit,
        };
        let mem = SimTables(BTreeMap::new(), self.ram.clone(), Vec::new());
        let built = build_kernel_tables(ctx, self.board, mem, &mut NoMappingHooks)?;
        let long = built.pt.is_long();
        log_mmu_on(
            long,
            ttbr0_of(&built.pt),
            if long {
                TTBCR_LONG_TTBR0_ONLY
            } else {
                TTBCR_SHORT_TTBR0_ONLY
            },
            sctlr_mmu_on(QEMU_RESET_SCTLR, !self.options.nocache),
            built.pt.table_count(),
            built.uart_virt,
        );
        let mut out = LogLines::new();
        let _ = print_virtual_layout(&mut out, &VirtualLayout::of_plan(&built.plan));
        self.mmu = Some(KernelMmu::from_early(built, linear));
        Ok(Some(u64::from(PAGE_OFFSET)))
    }

    /// The guest's MMU self-tests, on simulated RAM through the same tables.
    fn running(
        &mut self,
        running: &mut RunningMemory<SimStorage, MAX_CPUS>,
    ) -> Result<(), HookStop> {
        if !self.options.nommu {
            let stop = |why| HookStop {
                what: "MMU self-test",
                why,
                exit_code: EXIT_MMU_TEST,
            };
            let mmu = self.mmu.as_mut().ok_or(stop("paging_init did not run"))?;
            let mut mem = SimVirtualMemory {
                words: BTreeMap::new(),
                ram: self.ram.clone(),
            };
            mmu_self_test(
                mmu,
                &mut mem,
                &mut running.allocator,
                self.probe as u32,
                KMAP_TEST_PAGES,
                self.options.test_abort,
            )
            .map_err(stop)?;
        }
        // The CPUs the guest brings up (a CPU kept offline leaves a hole), each a
        // host thread running the guest's concurrent page allocator test.
        let present = cpus_to_start(self.cpus as usize, &running.cmdline);
        let mask = (0..present)
            .filter(|&n| self.offline != Some(n))
            .fold(0u32, |m, n| m | 1 << n);
        if mask.count_ones() < 2 {
            return Ok(());
        }
        let mem = SimPatterns::new(running.allocator.node());
        concurrent_page_alloc_test(
            &mut running.allocator,
            &mut ThreadCpus { mask },
            &mem,
            SMP_TEST_SEED,
        )
        .map(|_| ())
        .map_err(|_| HookStop {
            what: "concurrent page allocator test",
            why: "a CPU's block was overwritten, a free refused or pages lost",
            exit_code: EXIT_SMP_TEST,
        })
    }

    fn step(&mut self, step: BootStep) {
        if step == BootStep::MemoryInitStart {
            self.started = Some(std::time::Instant::now());
        }
    }

    fn mem_init_done(&mut self, _running: &RunningMemory<SimStorage, MAX_CPUS>) {
        let us = self.started.map_or(0, |t| t.elapsed().as_micros());
        zk_info!("zonekit: memory init took {} us", us);
    }

    fn booted(&mut self, params: &BootParams<'_>, booted: &BootedMemory<SimStorage>) {
        self.ram.check_memblock(&booted.memblock);
        self.map = Some(memory_map(
            params,
            booted,
            self.dtb,
            &self.record.lock().unwrap_or_else(PoisonError::into_inner),
        ));
    }
}
