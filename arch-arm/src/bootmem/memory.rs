//! Step 1 of the flow: memblock.memory from the source's banks (`setup_machine_*`
//! calling `arm_add_memory`) and the command line's `mem=` (`early_mem`), each bank
//! checked as Linux checks it and against the RAM the source reported.

use super::*;

/// Step 1, `setup_machine_*` + `early_mem`: add every bank, apply `mem=`.
///
/// Banks of a source that asks for it ([`MemorySource::banks_via_arm_add_memory`]:
/// ATAGS, board maps) go through [`arm_add_memory`]; a DTB's are added as given (its
/// parser made Linux's `early_init_dt_add_memory_arch` checks).
///
/// With `mem=` on the command line this is ARM's `early_mem`, once per `mem=`: the
/// first forgets every discovered bank, each adds its own bank (START defaults to
/// `PHYS_OFFSET`, the start of the discovered RAM) through [`arm_add_memory`]. Unlike
/// Linux, zonekit then keeps only the part of each `mem=` bank that lies in the RAM the
/// source discovered, and warns about the rest: Linux believes `mem=8G` on a 512 MiB
/// board and hangs touching memory that is not there. A `mem=` whose START + SIZE
/// overflows is [`BootError::MemOverflow`]; `mem=` that leaves no memory at all is
/// [`BootError::MemOutsideRam`].
pub fn add_memory(
    mb: &mut BootMemblock,
    source: &dyn MemorySource,
    cmdline: &Cmdline,
) -> Result<(), BootError> {
    check_banks(source)?;
    let checked = source.banks_via_arm_add_memory();
    for_each_of_kind(source, RegionKind::Memory, &mut |r| {
        let Region::Memory(bank) = r else {
            return Ok(());
        };
        if !checked {
            return Ok(mb.add(bank.base, bank.size)?);
        }
        // No PHYS_OFFSET check: it is defined by these banks. A bank past the top of
        // the physical address space is ignored or truncated, as Linux does.
        match arm_add_memory(bank.base, bank.size, 0, mb.phys_addr_max()) {
            Ok(Some(r)) => Ok(mb.add(r.base, r.size)?),
            Ok(None) => Ok(()),
            Err(_) => Err(SourceError::Overflow {
                base: bank.base,
                size: bank.size,
            }),
        }
    })?;
    // Each `mb.add` above is a `memblock_add` line of the memblock=debug trace, which
    // names its caller's file and line (where Linux names the function); the golden
    // logs hold those lines, so a change that moves the calls needs a bless.
    if mb.memory.is_empty() {
        return Err(SourceError::NoMemory.into());
    }
    if !cmdline.mem.is_empty() {
        early_mem(mb, source.name(), &cmdline.mem)?;
    }
    Ok(())
}

/// ARM's `early_mem` for every `mem=` in order, each bank then clipped to `ram`, the
/// memory the source discovered.
pub(super) fn early_mem(
    mb: &mut BootMemblock,
    source_name: &str,
    mem: &[zonekit_core::cmdline::MemParam],
) -> Result<(), BootError> {
    let phys_offset = mb.start_of_dram();
    let ram = memblock_banks(mb);
    // The first mem= blows away the discovered banks.
    mb.remove(phys_offset, mb.end_of_dram() - phys_offset)?;
    for m in mem {
        let start = m.start.unwrap_or(phys_offset);
        let Some(bank) =
            arm_add_memory(start, m.size, phys_offset, mb.phys_addr_max()).map_err(|_| {
                BootError::MemOverflow {
                    size: m.size,
                    start,
                }
            })?
        else {
            continue;
        };
        // memblock.memory is sorted and its regions do not touch.
        let mut cursor = bank.base;
        for r in ram.iter().filter(|r| r.overlaps(&bank)) {
            if r.base > cursor {
                warn_not_ram(MemRange::new(cursor, r.base - cursor), source_name);
            }
            let (s, e) = (cursor.max(r.base), bank.end().min(r.end()));
            mb.add(s, e - s)?;
            cursor = e;
        }
        if cursor < bank.end() {
            warn_not_ram(MemRange::new(cursor, bank.end() - cursor), source_name);
        }
    }
    if mb.memory.is_empty() {
        return Err(BootError::MemOutsideRam);
    }
    Ok(())
}

pub(super) fn warn_not_ram(r: MemRange, source_name: &str) {
    zk_warn!(
        "mem=: ignoring {} outside the RAM reported by the {}",
        r,
        source_name
    );
}

/// `START + SIZE` (or START rounded up to a page) overflows the 64-bit address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankOverflow;

/// Linux's `arm_add_memory` (`arch/arm/kernel/setup.c`) without the `memblock_add`:
/// round `start` up and `size` down to whole pages; ignore a bank that starts past
/// `phys_addr_max` and truncate one that ends past it (Linux checks this only without
/// LPAE, against 32 bits; zonekit checks against the build's `phys_addr_max`, so LPAE
/// banks past 2^40 are reported too, as "40-bit"); drop what lies below
/// `phys_offset`. Returns the range to add, or `None` when nothing is left. Prints
/// Linux's messages as warnings (Linux uses `pr_crit` and `pr_info`), and a warning of
/// its own for a bank smaller than a page (Linux drops that silently).
pub fn arm_add_memory(
    start: PhysAddr,
    size: u64,
    phys_offset: PhysAddr,
    phys_addr_max: PhysAddr,
) -> Result<Option<MemRange>, BankOverflow> {
    let end = start.checked_add(size).ok_or(BankOverflow)?;
    let aligned_start = start
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(BankOverflow)?;
    let mut size = end.saturating_sub(aligned_start);
    let bits = 64 - phys_addr_max.leading_zeros();
    if aligned_start > phys_addr_max {
        zk_warn!(
            "Ignoring memory at {:#010x} outside {}-bit physical address space",
            start,
            bits
        );
        return Ok(None);
    }
    if aligned_start + size > phys_addr_max {
        zk_warn!(
            "Truncating memory at {:#010x} to fit in {}-bit physical address space",
            start,
            bits
        );
        // As Linux: the end stays representable, so the last page is lost.
        size = phys_addr_max - aligned_start;
    }
    let mut base = aligned_start;
    if base < phys_offset {
        if base + size <= phys_offset {
            zk_warn!(
                "Ignoring memory below PHYS_OFFSET: {:#010x}-{:#010x}",
                base,
                base + size
            );
            return Ok(None);
        }
        zk_warn!(
            "Ignoring memory below PHYS_OFFSET: {:#010x}-{:#010x}",
            base,
            phys_offset
        );
        size -= phys_offset - base;
        base = phys_offset;
    }
    let size = size & !(PAGE_SIZE - 1);
    if size == 0 {
        zk_warn!("Ignoring memory at {:#010x}: less than a whole page", start);
        return Ok(None);
    }
    Ok(Some(MemRange::new(base, size)))
}

/// The running image must lie in memory: Linux maps it with lowmem (`map_lowmem`), so
/// an image outside memblock.memory is never mapped.
pub(super) fn check_kernel_in_memory(mb: &BootMemblock, image: MemRange) -> Result<(), BootError> {
    if image.is_empty() || mb.is_region_memory(image.base, image.size) {
        return Ok(());
    }
    let (start, end) = (mb.start_of_dram(), mb.end_of_dram());
    Err(BootError::KernelOutsideMemory {
        image,
        memory: MemRange::new(start, end - start),
    })
}

/// The source's banks checked before any is added: each one valid
/// ([`validate_range`]), at least one ([`SourceError::NoMemory`]).
fn check_banks(source: &dyn MemorySource) -> Result<(), SourceError> {
    let mut banks = 0usize;
    for_each_of_kind(source, RegionKind::Memory, &mut |r| {
        banks += 1;
        r.range().map_or(Ok(()), validate_range)
    })?;
    if banks == 0 {
        return Err(SourceError::NoMemory);
    }
    Ok(())
}
