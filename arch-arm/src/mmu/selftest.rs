//! The MMU self-tests that run after `mem_init`, in the guest and in the simulator.
//!
//! The tests only reach memory through [`VirtualMemory`]: in the guest that is a
//! plain load or store at the virtual address (the MMU translates it), in the
//! simulator a walk of the same tables into simulated RAM. Both run this one
//! function on the same [`KernelMmu`] and page allocator, so a wrong table entry
//! fails in `cargo test` as it would on the board, and both print the same lines.

use core::fmt;

use zonekit_core::addr::{pfn_phys, Pfn};
use zonekit_core::mmzone::ZoneType;
use zonekit_core::page_alloc::{Gfp, PageAllocator, PageBlock};
use zonekit_core::{zk_info, PageStorage};

use super::kernel::{KernelMmu, KernelTableMemory};
use super::regs::FaultStatus;
use super::{TableMemory, PAGE_OFFSET};

/// Exit status of a boot whose MMU self-test failed.
pub const EXIT_MMU_TEST: u32 = 5;

/// Highmem pages the kmap test maps twice.
pub const KMAP_TEST_PAGES: usize = 8;

/// Words of the image's probe buffer the linear-map test writes.
pub const PROBE_WORDS: usize = 64;

/// Why an MMU self-test failed.
pub type MmuTestError = &'static str;

/// A data abort: the faulting address and the fault status register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// DFAR.
    pub dfar: u32,
    /// DFSR (in the format of the tables: short, or long with the LPAE bit).
    pub dfsr: u32,
}

/// The line the data-abort handler prints when it catches a probed load.
#[derive(Clone, Copy, Debug)]
pub struct ProbeAbortReport {
    /// Address of the faulting load.
    pub pc: u32,
    /// What the abort reported.
    pub fault: Fault,
}

impl fmt::Display for ProbeAbortReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "zonekit: data abort at pc={:#010x}: DFAR={:#010x} DFSR={:#010x}; resuming after the faulting load (test mode)",
            self.pc, self.fault.dfar, self.fault.dfsr
        )
    }
}

/// How the self-tests reach memory at a virtual address, translated by `mmu`'s tables.
///
/// The tests only touch what they own: the image's probe buffer (through its identity
/// address and its linear alias) and pages they allocated (through the linear map and
/// PKMAP slots), plus deliberate probes of unmapped addresses.
pub trait VirtualMemory<M: TableMemory> {
    /// Read the word at `va`; an abort is an error (fatal on the target).
    fn read(&mut self, mmu: &KernelMmu<M>, va: u32) -> Result<u32, Fault>;
    /// Write the word at `va`.
    fn write(&mut self, mmu: &KernelMmu<M>, va: u32, value: u32) -> Result<(), Fault>;
    /// Read `va` with the data-abort handler armed: the abort it caught (after
    /// printing its [`ProbeAbortReport`]), or `None` when the read succeeded.
    fn probe_read(&mut self, mmu: &KernelMmu<M>, va: u32) -> Option<Fault>;
    /// Order the accesses so far before the next ones (DSB on the target).
    fn barrier(&mut self) {}
}

/// What a read or write of `va` through `mmu`'s tables aborts with, if it does:
/// translation faults only (every kernel mapping is read/write at PL1, domain 0).
/// DFSR as the tables' format reports it (see
/// [`ArmPageTable::translation_fault_status`](super::ArmPageTable::translation_fault_status)).
pub fn translation_fault<M: KernelTableMemory>(
    mmu: &KernelMmu<M>,
    va: u32,
    write: bool,
) -> Option<Fault> {
    let dfsr = mmu.page_table().translation_fault_status(va, write)?;
    Some(Fault { dfar: va, dfsr })
}

fn pattern(seed: u32, i: usize) -> u32 {
    seed.wrapping_mul(0x9E37_79B9).wrapping_add(i as u32) ^ 0xA5A5_0000
}

const PAGE_WORDS: usize = 1024;
const UNEXPECTED: MmuTestError = "an access the tables should allow aborted";

struct Tester<'a, M: TableMemory, V> {
    mmu: &'a mut KernelMmu<M>,
    mem: &'a mut V,
}

impl<M: KernelTableMemory, V: VirtualMemory<M>> Tester<'_, M, V> {
    fn fill(&mut self, va: u32, words: usize, seed: u32) -> Result<(), MmuTestError> {
        for i in 0..words {
            let a = va.wrapping_add(4 * i as u32);
            self.mem
                .write(self.mmu, a, pattern(seed, i))
                .map_err(|_| UNEXPECTED)?;
        }
        self.mem.barrier();
        Ok(())
    }

    fn check(&mut self, va: u32, words: usize, seed: u32) -> Result<bool, MmuTestError> {
        for i in 0..words {
            let a = va.wrapping_add(4 * i as u32);
            if self.mem.read(self.mmu, a).map_err(|_| UNEXPECTED)? != pattern(seed, i) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The MMU self-tests, after `mem_init`:
///
/// 1. the image's probe buffer at `probe` (identity address, [`PROBE_WORDS`] words
///    owned by the test) written at its identity address reads back through its
///    linear-map alias, and the other way round;
/// 2. a lowmem page from the buddy allocator written at its `page_address` (linear
///    map) reads back through a PKMAP alias, and the other way round;
/// 3. with highmem, `highmem_pages` pages allocated with `__GFP_HIGHMEM`: `kmap`,
///    write a pattern, `kunmap`, `kmap` again (a different slot), read back;
/// 4. with `test_abort`, reads of an unmapped vmalloc address and of a just-freed
///    PKMAP slot abort (the handler reports DFAR/DFSR) and execution resumes.
pub fn mmu_self_test<M, V, S, const N: usize>(
    mmu: &mut KernelMmu<M>,
    mem: &mut V,
    alloc: &mut PageAllocator<S, N>,
    probe: u32,
    highmem_pages: usize,
    test_abort: bool,
) -> Result<(), MmuTestError>
where
    M: KernelTableMemory,
    V: VirtualMemory<M>,
    S: PageStorage,
{
    let mut t = Tester { mmu, mem };
    linear_map_test(&mut t, probe)?;
    lowmem_kmap_test(&mut t, alloc)?;
    highmem_kmap_test(&mut t, alloc, highmem_pages)?;
    if test_abort {
        abort_test(&mut t, alloc)?;
    }
    Ok(())
}

fn linear_map_test<M: KernelTableMemory, V: VirtualMemory<M>>(
    t: &mut Tester<'_, M, V>,
    id: u32,
) -> Result<(), MmuTestError> {
    let lin = t
        .mmu
        .phys_to_virt(u64::from(id))
        .ok_or("the image is not in the linear map")?;
    if t.mmu.page_table().walk(lin).map(|w| w.phys) != Some(u64::from(id)) {
        return Err("the linear alias of the image does not walk to it");
    }
    t.fill(id, PROBE_WORDS, 1)?;
    if !t.check(lin, PROBE_WORDS, 1)? {
        return Err("identity writes do not read back through the linear map");
    }
    t.fill(lin, PROBE_WORDS, 2)?;
    if !t.check(id, PROBE_WORDS, 2)? {
        return Err("linear-map writes do not read back at the identity address");
    }
    zk_info!(
        "zonekit: linear map test: {} words at {:#010x} (identity) = {:#010x} (linear) both ways",
        PROBE_WORDS,
        id,
        lin
    );
    Ok(())
}

fn lowmem_kmap_test<M: KernelTableMemory, V: VirtualMemory<M>, S: PageStorage, const N: usize>(
    t: &mut Tester<'_, M, V>,
    alloc: &mut PageAllocator<S, N>,
) -> Result<(), MmuTestError> {
    let block = alloc
        .alloc_pages(0, Gfp::KERNEL, 0)
        .map_err(|_| "no lowmem page")?;
    let pfn = block.pfn();
    let result = lowmem_page_aliases(t, alloc, pfn);
    let _ = alloc.free_pages(0, block);
    let (va, alias) = result?;
    zk_info!(
        "zonekit: linear map test: page pfn {:#x} at {:#010x} (linear) = {:#010x} (kmap) both ways",
        pfn,
        va,
        alias
    );
    Ok(())
}

/// Write the lowmem page `pfn` (ours alone) through the linear map, read it through a
/// PKMAP alias, and the other way round: `(linear, kmap)` addresses.
fn lowmem_page_aliases<M, V, S, const N: usize>(
    t: &mut Tester<'_, M, V>,
    alloc: &PageAllocator<S, N>,
    pfn: Pfn,
) -> Result<(u32, u32), MmuTestError>
where
    M: KernelTableMemory,
    V: VirtualMemory<M>,
    S: PageStorage,
{
    let va = alloc
        .page_address(pfn)
        .ok_or("page_address of a lowmem page")?;
    if va != t.mmu.phys_to_virt(pfn_phys(pfn)).map_or(0, u64::from) || va < u64::from(PAGE_OFFSET) {
        return Err("page_address is not the linear-map address");
    }
    let va = va as u32;
    t.fill(va, PAGE_WORDS, pfn as u32)?;
    let alias = t.mmu.kmap(pfn).map_err(|_| "kmap of a lowmem page")?;
    let mut ok = t.check(alias, PAGE_WORDS, pfn as u32);
    if let Ok(true) = ok {
        ok = t
            .fill(alias, PAGE_WORDS, !(pfn as u32))
            .and_then(|()| t.check(va, PAGE_WORDS, !(pfn as u32)));
    }
    t.mmu.kunmap(alias).map_err(|_| "kunmap")?;
    if !ok? {
        return Err("a lowmem page reads differently through the linear map and kmap");
    }
    Ok((va, alias))
}

fn highmem_kmap_test<M: KernelTableMemory, V: VirtualMemory<M>, S: PageStorage, const N: usize>(
    t: &mut Tester<'_, M, V>,
    alloc: &mut PageAllocator<S, N>,
    highmem_pages: usize,
) -> Result<(), MmuTestError> {
    let max_low = alloc.config().max_low_pfn;
    if alloc.managed(ZoneType::HighMem) == 0 || highmem_pages == 0 {
        zk_info!("zonekit: kmap test: no highmem on this boot, skipped");
        return Ok(());
    }
    let mut pages: heapless::Vec<(PageBlock, u32), 16> = heapless::Vec::new();
    let mut result = Ok(());
    for _ in 0..highmem_pages.min(16) {
        let Ok(b) = alloc.alloc_pages(0, Gfp::HIGHUSER_MOVABLE, 0) else {
            result = Err("no highmem page");
            break;
        };
        let pfn = b.pfn();
        // The vector has room for every page taken (at most 16).
        let _ = pages.push((b, 0));
        match kmap_write_unmap(t, alloc, pfn, max_low) {
            Ok(v) => {
                if let Some(last) = pages.last_mut() {
                    last.1 = v;
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let mut remapped = (0u32, 0u32);
    if result.is_ok() {
        for (b, first) in &pages {
            let pfn = b.pfn();
            let Ok(v) = t.mmu.kmap(pfn) else {
                result = Err("second kmap of a highmem page");
                break;
            };
            if remapped.0 == 0 {
                remapped = (*first, v);
            }
            let same = t.check(v, PAGE_WORDS, pfn as u32 ^ 0x5A5A);
            let walked = t.mmu.page_table().walk(v).map(|w| w.phys);
            let _ = t.mmu.kunmap(v);
            if v == *first {
                result = Err("the second kmap reused the same slot");
                break;
            }
            if !matches!(same, Ok(true)) || walked != Some(pfn_phys(pfn)) {
                result = Err("a highmem page lost its pattern between two kmaps");
                break;
            }
        }
    }
    let n = pages.len();
    let first_pfn = pages.first().map_or(0, |(b, _)| b.pfn());
    for (b, _) in pages {
        let _ = alloc.free_pages(0, b);
    }
    result?;
    if t.mmu.kmaps_in_use() != 0 {
        return Err("kmap slots leaked");
    }
    zk_info!(
        "zonekit: kmap test: {} highmem pages from pfn {:#x} (above max_low_pfn {:#x}): written at {:#010x}, kunmap, read back at {:#010x}",
        n,
        first_pfn,
        max_low,
        remapped.0,
        remapped.1
    );
    Ok(())
}

/// kmap the highmem page `pfn`, write its pattern, kunmap: the slot it had.
fn kmap_write_unmap<M, V, S, const N: usize>(
    t: &mut Tester<'_, M, V>,
    alloc: &PageAllocator<S, N>,
    pfn: Pfn,
    max_low: Pfn,
) -> Result<u32, MmuTestError>
where
    M: KernelTableMemory,
    V: VirtualMemory<M>,
    S: PageStorage,
{
    if pfn < max_low || alloc.page_address(pfn).is_some() {
        return Err("__GFP_HIGHMEM returned a lowmem page");
    }
    let v = t.mmu.kmap(pfn).map_err(|_| "kmap of a highmem page")?;
    let filled = t.fill(v, PAGE_WORDS, pfn as u32 ^ 0x5A5A);
    if t.mmu.kunmap(v).is_err() || t.mmu.page_table().walk(v).is_some() {
        return Err("kunmap left the slot mapped");
    }
    filled.map(|()| v)
}

fn abort_test<M: KernelTableMemory, V: VirtualMemory<M>, S: PageStorage, const N: usize>(
    t: &mut Tester<'_, M, V>,
    alloc: &PageAllocator<S, N>,
) -> Result<(), MmuTestError> {
    let unmapped = t.mmu.layout().vmalloc.0 + 0x1000;
    if t.mmu.page_table().walk(unmapped).is_some() {
        return Err("the probe address is mapped");
    }
    let f = t
        .mem
        .probe_read(t.mmu, unmapped)
        .ok_or("no data abort at an unmapped address")?;
    if f.dfar != unmapped {
        return Err("DFAR is not the probed address");
    }
    zk_info!(
        "zonekit: test_abort: unmapped read caught: DFAR={:#010x} DFSR={:#010x} ({})",
        f.dfar,
        f.dfsr,
        FaultStatus::from_dfsr(f.dfsr).description()
    );
    // A PKMAP slot after kunmap: the TLB entry must be gone.
    let pfn: Pfn = alloc.config().max_low_pfn.saturating_sub(1);
    let v = t
        .mmu
        .kmap(pfn)
        .map_err(|_| "kmap for the stale-slot probe")?;
    // Reading the page fills the TLB.
    let read = t.mem.read(t.mmu, v);
    t.mmu.kunmap(v).map_err(|_| "kunmap")?;
    read.map_err(|_| UNEXPECTED)?;
    let f = t
        .mem
        .probe_read(t.mmu, v)
        .ok_or("a freed kmap slot is still reachable")?;
    zk_info!(
        "zonekit: test_abort: freed kmap slot caught: DFAR={:#010x} DFSR={:#010x} ({})",
        f.dfar,
        f.dfsr,
        FaultStatus::from_dfsr(f.dfsr).description()
    );
    Ok(())
}
