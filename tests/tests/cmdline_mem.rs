//! `mem=` and the memory banks of ATAGS and board maps, as the boot flow applies them
//! (`bootmem::add_memory`: ARM's `early_mem` and `arm_add_memory`), and the command-line
//! warnings the boot prints. The guest and `cargo xtask sim` run this same code.
//!
//! Log lines are captured per thread (tests run on threads of their own), so parallel
//! tests do not see each other's lines.

use std::cell::RefCell;
use std::sync::Once;

use log::{Log, Metadata, Record};
use vm_fdt::FdtWriter;
use zonekit_arch_arm::atags::{Atags, AtagsBuilder, AtagsError};
use zonekit_arch_arm::bootmem::{add_memory, boot, BootError, BootMemblock, BootParams};
use zonekit_arch_arm::fdt::{FdtError, FdtMemory};
use zonekit_arch_arm::hooks::NoHooks;
use zonekit_core::addr::MemRange;
use zonekit_core::arch::MmConfig;
use zonekit_core::cmdline::Cmdline;
use zonekit_core::source::{SourceError, StaticMemoryMap};
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MemorySource;

const BASE: u64 = 0x6000_0000;
const MIB: u64 = 1 << 20;

thread_local! {
    static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Records each line as the guest console shows it (warnings marked).
struct Capture;

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        let prefix = match record.level() {
            log::Level::Warn => "zonekit: warning: ",
            log::Level::Error => "zonekit: error: ",
            _ => "",
        };
        let line = format!("{prefix}{}", record.args());
        LINES.with(|l| l.borrow_mut().push(line));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;
static INIT: Once = Once::new();

fn capture() {
    INIT.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Debug);
    });
    LINES.with(|l| l.borrow_mut().clear());
}

fn lines() -> Vec<String> {
    LINES.with(|l| l.borrow().clone())
}

fn has(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l == want)
}

/// The ATAGS QEMU writes: one bank per `(start, size)`, the command line.
fn atags(banks: &[(u32, u32)], cmdline: &str) -> Vec<u8> {
    let mut b = AtagsBuilder::new().core();
    for &(start, size) in banks {
        b = b.and_then(|b| b.mem(start, size));
    }
    if !cmdline.is_empty() {
        b = b.and_then(|b| b.cmdline(cmdline));
    }
    let words = b.and_then(|b| b.finish()).expect("fits");
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The whole boot flow of vexpress-a9 with 512 MiB of ATAGS RAM and `cmdline`, the
/// image where QEMU loads it.
fn boot_a9(cmdline: &str) -> (Result<Vec<MemRange>, BootError>, Vec<String>) {
    capture();
    let buf = atags(&[(BASE as u32, 512 << 20)], cmdline);
    let source = Atags::parse(&buf).expect("valid ATAGS");
    let boot_data = [MemRange::new(BASE, 0x1000)];
    let params = BootParams {
        source: &source,
        cmdline: source.cmdline(),
        dma_zone_size: None,
        kernel_image: MemRange::new(BASE + 0x1_0000, 0x10_0000),
        boot_data: &boot_data,
        mm: MmConfig::ZONEKIT,
    };
    let mut storage = VecPageStorage::default();
    let r = boot(&params, &mut storage, &mut NoHooks).map(|b| b.memblock.memory_ranges().collect());
    (r, lines())
}

/// `add_memory` alone: memblock.memory from `source` and `cmdline`.
fn memory_of(
    source: &dyn MemorySource,
    cmdline: &str,
    mm: MmConfig,
) -> (Result<Vec<MemRange>, BootError>, Vec<String>) {
    capture();
    let mut mb = BootMemblock::new(mm.phys_addr_max);
    let r = add_memory(&mut mb, source, &Cmdline::parse(cmdline))
        .map(|()| mb.memory_ranges().collect());
    (r, lines())
}

#[test]
fn mem_at_start_near_u64_max_is_a_typed_error() {
    let (r, _) = boot_a9("mem=64M@0xffffffffffffffff");
    let e = r.unwrap_err();
    assert_eq!(
        e,
        BootError::MemOverflow {
            size: 64 * MIB,
            start: u64::MAX
        }
    );
    assert_eq!(
        e.to_string(),
        "mem=0x4000000@0xffffffffffffffff: START + SIZE overflows the 64-bit physical address space"
    );
    // START that only overflows once rounded up to a page, and SIZE that overflows
    // from the default START.
    let (r, _) = boot_a9("mem=1@0xfffffffffffff001");
    assert!(matches!(r, Err(BootError::MemOverflow { .. })), "{r:?}");
    let (r, _) = boot_a9("mem=0xffffffffffff0000");
    assert_eq!(
        r.unwrap_err(),
        BootError::MemOverflow {
            size: 0xffff_ffff_ffff_0000,
            start: BASE
        }
    );
}

#[test]
fn mem_larger_than_ram_is_clipped_with_warning() {
    let (r, log) = boot_a9("mem=8G");
    assert_eq!(r.unwrap(), [MemRange::new(BASE, 512 * MIB)]);
    assert!(
        has(
            &log,
            "zonekit: warning: Truncating memory at 0x60000000 to fit in 32-bit physical address space"
        ),
        "{log:#?}"
    );
    assert!(
        has(
            &log,
            "zonekit: warning: mem=: ignoring [mem 0x0000000080000000-0x00000000ffffefff] outside the RAM reported by the ATAGS"
        ),
        "{log:#?}"
    );
    assert!(has(&log, "On node 0 totalpages: 131072"), "{log:#?}");
    // A mem= inside RAM changes nothing else and warns about nothing.
    let (r, log) = boot_a9("mem=300M");
    assert_eq!(r.unwrap(), [MemRange::new(BASE, 300 * MIB)]);
    assert!(!log.iter().any(|l| l.contains("warning")), "{log:#?}");
}

#[test]
fn mem_partly_outside_ram_keeps_the_part_inside() {
    let map = StaticMemoryMap::single_bank(BASE, 512 * MIB);
    // 0x78000000 + 256 MiB runs 128 MiB past the end of RAM.
    let (r, log) = memory_of(&map, "mem=64M mem=256M@0x78000000", MmConfig::ZONEKIT);
    assert_eq!(
        r.unwrap(),
        [
            MemRange::new(BASE, 64 * MIB),
            MemRange::new(0x7800_0000, 128 * MIB)
        ]
    );
    assert_eq!(
        log,
        ["zonekit: warning: mem=: ignoring [mem 0x0000000080000000-0x0000000087ffffff] outside the RAM reported by the board map"]
    );
}

#[test]
fn mem_outside_ram_is_refused() {
    // vexpress-a9's flash, below PHYS_OFFSET.
    let (r, log) = boot_a9("mem=64M@0x40000000");
    assert_eq!(r.unwrap_err(), BootError::MemOutsideRam);
    assert!(
        has(
            &log,
            "zonekit: warning: Ignoring memory below PHYS_OFFSET: 0x40000000-0x44000000"
        ),
        "{log:#?}"
    );
    // Above RAM, and crossing the top of the 32-bit space.
    let (r, log) = boot_a9("mem=1G@0xf0000000");
    assert_eq!(r.unwrap_err(), BootError::MemOutsideRam);
    assert!(has(
        &log,
        "zonekit: warning: Truncating memory at 0xf0000000 to fit in 32-bit physical address space"
    ));
    assert!(has(
        &log,
        "zonekit: warning: mem=: ignoring [mem 0x00000000f0000000-0x00000000ffffefff] outside the RAM reported by the ATAGS"
    ));
    // A bank straddling PHYS_OFFSET loses the part below it.
    let map = StaticMemoryMap::single_bank(BASE, 512 * MIB);
    let (r, log) = memory_of(&map, "mem=64M@0x5e000000", MmConfig::ZONEKIT);
    assert_eq!(r.unwrap(), [MemRange::new(BASE, 32 * MIB)]);
    assert_eq!(
        log,
        ["zonekit: warning: Ignoring memory below PHYS_OFFSET: 0x5e000000-0x60000000"]
    );
    // Past the 32-bit space altogether.
    let (r, log) = memory_of(&map, "mem=64M@0x100000000", MmConfig::ZONEKIT);
    assert_eq!(r.unwrap_err(), BootError::MemOutsideRam);
    assert_eq!(
        log,
        ["zonekit: warning: Ignoring memory at 0x100000000 outside 32-bit physical address space"]
    );
}

#[test]
fn repeated_mem_adds_banks() {
    // Linux ARM: the first mem= forgets the discovered bank, each mem= adds one.
    let (r, log) = boot_a9("mem=64M mem=64M@0x70000000");
    assert_eq!(
        r.unwrap(),
        [
            MemRange::new(BASE, 64 * MIB),
            MemRange::new(0x7000_0000, 64 * MIB)
        ]
    );
    assert!(
        has(
            &log,
            "  node   0: [mem 0x0000000070000000-0x0000000073ffffff]"
        ),
        "{log:#?}"
    );
    assert!(has(&log, "On node 0 totalpages: 32768"), "{log:#?}");
    // Overlapping and touching mem= banks merge in memblock, as in Linux.
    let map = StaticMemoryMap::single_bank(BASE, 512 * MIB);
    let (r, _) = memory_of(
        &map,
        "mem=64M mem=64M@0x62000000 mem=16M@0x66000000",
        MmConfig::ZONEKIT,
    );
    assert_eq!(r.unwrap(), [MemRange::new(BASE, 112 * MIB)]);
}

#[test]
fn bank_crossing_top_is_truncated_with_linux_message() {
    // ATAG_MEM 0xffffffff@0x60000000 (as arm_add_memory: the end must stay below
    // 4 GiB, so the last page is lost).
    let buf = atags(&[(BASE as u32, 0xffff_ffff)], "");
    let source = Atags::parse(&buf).unwrap();
    let (r, log) = memory_of(&source, "", MmConfig::ZONEKIT);
    assert_eq!(r.unwrap(), [MemRange::new(BASE, 0xffff_f000 - BASE)]);
    assert_eq!(
        log,
        ["zonekit: warning: Truncating memory at 0x60000000 to fit in 32-bit physical address space"]
    );
    // A bank ending exactly at 4 GiB (sabrelite's 3840 MiB) loses its last page too.
    let buf = atags(&[(0x1000_0000, 0xf000_0000)], "");
    let source = Atags::parse(&buf).unwrap();
    let (r, log) = memory_of(&source, "", MmConfig::ZONEKIT);
    assert_eq!(r.unwrap(), [MemRange::new(0x1000_0000, 0xefff_f000)]);
    assert_eq!(log.len(), 1);
    // LPAE: a bank crossing 2^40, and one beyond it.
    let mut map = StaticMemoryMap::single_bank(0xff_0000_0000, 8 << 30);
    let _ = map.banks.push(MemRange::new(1 << 40, 1 << 30));
    let (r, log) = memory_of(&map, "", MmConfig::ZONEKIT_LPAE);
    assert_eq!(
        r.unwrap(),
        [MemRange::new(
            0xff_0000_0000,
            0xff_ffff_f000 - 0xff_0000_0000
        )]
    );
    assert_eq!(
        log,
        [
            "zonekit: warning: Truncating memory at 0xff00000000 to fit in 40-bit physical address space",
            "zonekit: warning: Ignoring memory at 0x10000000000 outside 40-bit physical address space",
        ]
    );
    // Page rounding, as arm_add_memory: start up, size down.
    let map = StaticMemoryMap::single_bank(BASE + 0x800, 0x10_0000);
    let (r, log) = memory_of(&map, "", MmConfig::ZONEKIT);
    assert_eq!(r.unwrap(), [MemRange::new(BASE + 0x1000, 0xf_f000)]);
    assert!(log.is_empty(), "{log:#?}");
    // Nothing left at all is the source's NoMemory.
    let map = StaticMemoryMap::single_bank(1 << 32, 1 << 20);
    let (r, _) = memory_of(&map, "", MmConfig::ZONEKIT);
    assert_eq!(r.unwrap_err(), BootError::Source(SourceError::NoMemory));
}

#[test]
fn dtb_banks_are_not_rounded_by_arm_add_memory() {
    // A DTB's banks were checked by its parser (early_init_dt_add_memory_arch): the
    // arm_add_memory rules do not apply to them.
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let n = w.begin_node("memory@10000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u32("reg", &[0x1000_0000, 0xf000_0000])
        .unwrap();
    w.end_node(n).unwrap();
    w.end_node(root).unwrap();
    let blob = aligned(&w.finish().unwrap());
    let fdt = FdtMemory::parse(&blob.0[blob.1..], u32::MAX as u64).unwrap();
    let (r, log) = memory_of(&fdt, "", MmConfig::ZONEKIT);
    // memblock_cap_size takes the last byte, no message.
    assert_eq!(r.unwrap(), [MemRange::new(0x1000_0000, 0xefff_ffff)]);
    assert!(log.is_empty(), "{log:#?}");
}

/// The blob copied to an 8-byte aligned offset (fdt-rs does aligned loads).
fn aligned(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; bytes.len() + 8];
    let off = buf.as_ptr().align_offset(8);
    buf[off..off + bytes.len()].copy_from_slice(bytes);
    buf.truncate(off + bytes.len());
    (buf, off)
}

#[test]
fn mem_4096_reports_too_small() {
    let (r, _) = boot_a9("mem=4096");
    let e = r.unwrap_err();
    assert_eq!(
        e,
        BootError::KernelOutsideMemory {
            image: MemRange::new(BASE + 0x1_0000, 0x10_0000),
            memory: MemRange::new(BASE, 0x1000),
        }
    );
    let text = e.to_string();
    assert!(
        text.contains("too little memory for the kernel") && !text.contains("NoSpace"),
        "{text}"
    );
    // mem= that leaves the image out entirely (Linux would not map it either).
    let (r, _) = boot_a9("mem=64M@0x70000000");
    assert!(
        matches!(r, Err(BootError::KernelOutsideMemory { .. })),
        "{r:?}"
    );
}

#[test]
fn overlapping_atag_mem_banks_rejected_like_dtb() {
    let banks = [(0x6000_0000u64, 0x2000_0000u64), (0x7000_0000, 0x2000_0000)];
    let (first, second) = (
        MemRange::new(banks[0].0, banks[0].1),
        MemRange::new(banks[1].0, banks[1].1),
    );
    // ATAGS.
    let buf = atags(&banks.map(|(s, n)| (s as u32, n as u32)), "console=ttyAMA0");
    let e = Atags::parse(&buf).unwrap_err();
    assert_eq!(e, AtagsError::OverlappingBanks { first, second });
    // The same banks in a DTB.
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    for (base, size) in banks {
        let n = w.begin_node(&format!("memory@{base:x}")).unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u32("reg", &[base as u32, size as u32])
            .unwrap();
        w.end_node(n).unwrap();
    }
    w.end_node(root).unwrap();
    let blob = aligned(&w.finish().unwrap());
    let d = FdtMemory::parse(&blob.0[blob.1..], u32::MAX as u64).unwrap_err();
    assert_eq!(d, FdtError::OverlappingBanks { first, second });
    // Both are malformed boot information to the boot flow.
    assert!(matches!(SourceError::from(e), SourceError::Malformed(_)));
    assert!(matches!(SourceError::from(d), SourceError::Malformed(_)));
}

#[test]
fn cmdline_keeps_all_errors() {
    // Twenty malformed parameters: twenty warnings, in order, and the boot goes on.
    let line: String = (0..20).map(|i| format!("mem=bad{i} ")).collect();
    let (r, log) = boot_a9(line.trim_end());
    assert!(r.is_ok(), "{r:?}");
    let warnings: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("zonekit: warning: ignoring malformed parameter mem"))
        .collect();
    assert_eq!(warnings.len(), 20, "{log:#?}");
    // Past the kept list, the rest are counted on a line of their own (bare words,
    // so that forty fit in an ATAG_CMDLINE).
    let line = "mem ".repeat(40);
    let (_, log) = boot_a9(line.trim_end());
    assert!(
        has(
            &log,
            "zonekit: warning: ignoring 8 more malformed parameters (not listed)"
        ),
        "{log:#?}"
    );
}

#[test]
fn bare_mem_and_vmalloc_warn() {
    let (r, log) = boot_a9("mem vmalloc zonekit.report=1");
    // Ignored: the board's RAM, the default vmalloc size, no report.
    assert_eq!(r.unwrap(), [MemRange::new(BASE, 512 * MIB)]);
    for want in [
        "zonekit: warning: ignoring malformed parameter mem: needs a value: mem=SIZE[@START]",
        "zonekit: warning: ignoring malformed parameter vmalloc: needs a value: vmalloc=SIZE",
        "zonekit: warning: ignoring malformed parameter zonekit.report: takes no value (write zonekit.report)",
    ] {
        assert!(has(&log, want), "missing {want:?} in {log:#?}");
    }
}
