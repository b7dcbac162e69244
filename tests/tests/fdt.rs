//! Device-tree memory discovery (`zonekit_arch_arm::fdt`) against DTBs built with
//! `vm-fdt`, plus malformed blobs patched by hand and a no-panic mutation loop.

use vm_fdt::{FdtReserveEntry, FdtWriter};
use zonekit_arch_arm::fdt::{
    chosen_bootargs, fdt_header_ok, fdt_totalsize_at, Bootargs, FdtError, FdtMemory, FdtWarning,
    COMMAND_LINE_SIZE, FDT_HEADER_SIZE, FDT_MAGIC,
};
use zonekit_core::cmdline::Cmdline;
use zonekit_core::source::{collect_ranges, RegionKind};
use zonekit_core::{MemRange, MemorySource, SourceError};

const MAX32: u64 = u32::MAX as u64;
const MAX40: u64 = (1 << 40) - 1;

/// The tree's banks, dropped memory, `/memreserve/` and static `/reserved-memory`
/// children (read from the blob), and what the source reports as reserved / no-map.
fn banks_of(m: &FdtMemory) -> Vec<MemRange> {
    m.banks().collect()
}
fn dropped(m: &FdtMemory) -> Vec<MemRange> {
    m.dropped().collect()
}
fn memreserve(m: &FdtMemory) -> Vec<MemRange> {
    m.memreserve().collect()
}
fn reserved_static(m: &FdtMemory) -> Vec<(MemRange, bool)> {
    m.reserved_static().collect()
}
fn reserved(m: &FdtMemory) -> Vec<MemRange> {
    collect_ranges(m, RegionKind::Reserved).unwrap()
}
fn nomap(m: &FdtMemory) -> Vec<MemRange> {
    collect_ranges(m, RegionKind::NoMap).unwrap()
}

// Header field offsets.
const TOTALSIZE: usize = 4;
const OFF_DT_STRUCT: usize = 8;
const OFF_DT_STRINGS: usize = 12;
const OFF_MEM_RSVMAP: usize = 16;
const VERSION: usize = 20;
const LAST_COMP_VERSION: usize = 24;
const SIZE_DT_STRINGS: usize = 32;
const SIZE_DT_STRUCT: usize = 36;

/// A copy of a blob at an 8-byte aligned address (boot loaders place DTBs 8-byte
/// aligned; the parser needs 4).
struct Aligned {
    buf: Vec<u8>,
    off: usize,
    len: usize,
}

impl Aligned {
    fn new(bytes: &[u8]) -> Self {
        Self::with_misalignment(bytes, 0)
    }

    fn with_misalignment(bytes: &[u8], skew: usize) -> Self {
        let mut buf = vec![0u8; bytes.len() + 16];
        let off = buf.as_ptr().align_offset(8) + skew;
        buf[off..off + bytes.len()].copy_from_slice(bytes);
        Self {
            buf,
            off,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.off..self.off + self.len]
    }
}

fn parse(blob: &[u8], max: u64) -> Result<FdtMemory<'_>, FdtError> {
    FdtMemory::parse(blob, max)
}

fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(b[off..off + 4].try_into().unwrap())
}

fn set32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// `reg` cells for `entries` with the given cell counts.
fn reg_cells(ac: u32, sc: u32, entries: &[(u64, u64)]) -> Vec<u32> {
    let mut v = Vec::new();
    for &(base, size) in entries {
        for (x, n) in [(base, ac), (size, sc)] {
            if n == 2 {
                v.push((x >> 32) as u32);
            }
            v.push(x as u32);
        }
    }
    v
}

/// A DTB with root cells `ac`/`sc`, the given `/memreserve/` entries, and whatever
/// `body` adds inside the root node.
fn dtb_with(
    ac: u32,
    sc: u32,
    rsv: &[(u64, u64)],
    body: impl FnOnce(&mut FdtWriter, u32, u32),
) -> Vec<u8> {
    let rsv: Vec<FdtReserveEntry> = rsv
        .iter()
        .map(|&(a, s)| FdtReserveEntry::new(a, s).unwrap())
        .collect();
    let mut w = FdtWriter::new_with_mem_reserv(&rsv).unwrap();
    let root = w.begin_node("").unwrap();
    w.property_string("compatible", "arm,vexpress").unwrap();
    w.property_u32("#address-cells", ac).unwrap();
    w.property_u32("#size-cells", sc).unwrap();
    body(&mut w, ac, sc);
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

fn memory_node(w: &mut FdtWriter, name: &str, ac: u32, sc: u32, banks: &[(u64, u64)]) {
    let n = w.begin_node(name).unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u32("reg", &reg_cells(ac, sc, banks))
        .unwrap();
    w.end_node(n).unwrap();
}

/// vexpress-a9 style: one bank at 0x60000000, 1 GiB.
fn simple_dtb() -> Vec<u8> {
    dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory@60000000", ac, sc, &[(0x6000_0000, 0x4000_0000)])
    })
}

/// A DTB exercising every feature, for the mutation loop.
fn rich_dtb() -> Vec<u8> {
    dtb_with(1, 1, &[(0x6000_0000, 0x1000)], |w, ac, sc| {
        let c = w.begin_node("chosen").unwrap();
        w.property_string("bootargs", "console=ttyAMA0 mem=512M")
            .unwrap();
        w.property_u32("linux,initrd-start", 0x6800_0000).unwrap();
        w.property_u32("linux,initrd-end", 0x6840_0000).unwrap();
        w.end_node(c).unwrap();
        memory_node(w, "memory@60000000", ac, sc, &[(0x6000_0000, 0x2000_0000)]);
        memory_node(w, "memory@a0000000", ac, sc, &[(0xa000_0000, 0x1000_0000)]);
        let rm = w.begin_node("reserved-memory").unwrap();
        w.property_u32("#address-cells", ac).unwrap();
        w.property_u32("#size-cells", sc).unwrap();
        w.property_null("ranges").unwrap();
        let v = w.begin_node("vram@7f000000").unwrap();
        w.property_array_u32("reg", &[0x7f00_0000, 0x80_0000])
            .unwrap();
        w.property_null("no-map").unwrap();
        w.end_node(v).unwrap();
        let cma = w.begin_node("linux,cma").unwrap();
        w.property_string("compatible", "shared-dma-pool").unwrap();
        w.property_null("reusable").unwrap();
        w.property_u32("size", 0x400_0000).unwrap();
        w.property_u32("alignment", 0x40_0000).unwrap();
        w.property_array_u32("alloc-ranges", &[0x6000_0000, 0x1000_0000])
            .unwrap();
        w.end_node(cma).unwrap();
        w.end_node(rm).unwrap();
    })
}

// ---------------------------------------------------------------- valid blobs

#[test]
fn one_memory_node() {
    let blob = Aligned::new(&simple_dtb());
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x6000_0000, 0x4000_0000)]
    );
    assert!(dropped(&m).is_empty());
    assert!(memreserve(&m).is_empty() && reserved_static(&m).is_empty());
    assert!(m.reserved_dynamic.is_empty());
    assert_eq!((m.initrd, &m.bootargs, m.blob), (None, &None, None));
    assert!(m.warnings.is_empty());
    assert_eq!((m.address_cells, m.size_cells), (1, 1));
    assert_eq!(m.name(), "DTB");
    assert_eq!(banks_of(&m), banks_of(&m));
    assert!(reserved(&m).is_empty());
    assert_eq!(m.cmdline(), "");
}

#[test]
fn two_memory_nodes() {
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory@60000000", ac, sc, &[(0x6000_0000, 0x2000_0000)]);
        memory_node(w, "memory@a0000000", ac, sc, &[(0xa000_0000, 0x1000_0000)]);
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        banks_of(&m).as_slice(),
        &[
            MemRange::new(0x6000_0000, 0x2000_0000),
            MemRange::new(0xa000_0000, 0x1000_0000)
        ]
    );
}

#[test]
fn several_reg_entries_in_one_node_and_adjacent_banks() {
    let banks = [
        (0x1000_0000, 0x1000_0000),
        (0x2000_0000, 0x800_0000), // touches the first: fine
        (0x8000_0000, 0x4000_0000),
    ];
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &banks)
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    let want: Vec<MemRange> = banks.iter().map(|&(b, s)| MemRange::new(b, s)).collect();
    assert_eq!(banks_of(&m).as_slice(), want.as_slice());
}

#[test]
fn vexpress_a15_two_cells_lpae_truncated_without_lpae() {
    // vexpress-v2p-ca15-tc1: reg = <0x0 0x80000000 0x1 0x0> (4 GiB at 2 GiB).
    let dtb = dtb_with(2, 2, &[], |w, ac, sc| {
        memory_node(
            w,
            "memory@80000000",
            ac,
            sc,
            &[(0x8000_0000, 0x1_0000_0000)],
        )
    });
    let blob = Aligned::new(&dtb);

    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!((m.address_cells, m.size_cells), (2, 2));
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x8000_0000, 0x8000_0000)]
    );
    assert_eq!(
        dropped(&m).as_slice(),
        &[MemRange::new(0x1_0000_0000, 0x8000_0000)]
    );
    assert_eq!(
        m.warnings.as_slice(),
        &[FdtWarning::IgnoredMemory {
            range: MemRange::new(0x1_0000_0000, 0x8000_0000)
        }]
    );
    assert_eq!(
        m.warnings[0].to_string(),
        "OF: fdt: Ignoring memory range 0x100000000 - 0x180000000"
    );

    let m = parse(blob.bytes(), MAX40).unwrap();
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x8000_0000, 0x1_0000_0000)]
    );
    assert!(dropped(&m).is_empty() && m.warnings.is_empty());
}

#[test]
fn bank_wholly_above_phys_max_is_dropped_and_reported() {
    let dtb = dtb_with(2, 2, &[], |w, ac, sc| {
        memory_node(
            w,
            "memory@0",
            ac,
            sc,
            &[(0x8000_0000, 0x4000_0000), (0x8_8000_0000, 0x8000_0000)],
        )
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x8000_0000, 0x4000_0000)]
    );
    assert_eq!(
        dropped(&m).as_slice(),
        &[MemRange::new(0x8_8000_0000, 0x8000_0000)]
    );

    // Only memory above the limit: parsed, but the source has no memory.
    let dtb = dtb_with(2, 2, &[], |w, ac, sc| {
        memory_node(w, "memory@0", ac, sc, &[(0x8_8000_0000, 0x8000_0000)])
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert!(banks_of(&m).is_empty());
    assert_eq!(dropped(&m).len(), 1);
    assert!(banks_of(&m).is_empty()); // the boot flow's SourceError::NoMemory
}

#[test]
fn disabled_memory_node_is_skipped() {
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory@60000000", ac, sc, &[(0x6000_0000, 0x1000_0000)]);
        let n = w.begin_node("memory@80000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_string("status", "disabled").unwrap();
        w.property_array_u32("reg", &[0x8000_0000, 0x1000_0000])
            .unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node("memory@90000000").unwrap();
        w.property_string("status", "okay").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u32("reg", &[0x9000_0000, 0x1000_0000])
            .unwrap();
        w.end_node(n).unwrap();
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        banks_of(&m).as_slice(),
        &[
            MemRange::new(0x6000_0000, 0x1000_0000),
            MemRange::new(0x9000_0000, 0x1000_0000)
        ]
    );
    assert_eq!(
        m.warnings.as_slice(),
        &[FdtWarning::DisabledNode {
            node: "memory@80000000"
        }]
    );
}

#[test]
fn zero_sized_bank_is_skipped_with_warning() {
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(
            w,
            "memory",
            ac,
            sc,
            &[(0x6000_0000, 0), (0x7000_0000, 0x1000_0000)],
        )
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x7000_0000, 0x1000_0000)]
    );
    assert_eq!(
        m.warnings.as_slice(),
        &[FdtWarning::ZeroSizedBank {
            node: "memory",
            base: 0x6000_0000
        }]
    );
}

#[test]
fn unaligned_bank_is_kept_as_given() {
    // Page rounding is the consumer's (memblock's) job, not the parser's.
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0800, 0x0fff_f123)])
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x6000_0800, 0x0fff_f123)]
    );
}

#[test]
fn overlapping_banks_are_an_error() {
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x2000_0000)]);
        memory_node(w, "memory@70000000", ac, sc, &[(0x7000_0000, 0x2000_0000)]);
    });
    let blob = Aligned::new(&dtb);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::OverlappingBanks {
            first: MemRange::new(0x6000_0000, 0x2000_0000),
            second: MemRange::new(0x7000_0000, 0x2000_0000),
        }
    );
}

#[test]
fn memreserve_entries() {
    let dtb = dtb_with(
        1,
        1,
        &[(0x6000_0000, 0x1000), (0x6100_0000, 0x2_0000)],
        |w, ac, sc| memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)]),
    );
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    let want = [
        MemRange::new(0x6000_0000, 0x1000),
        MemRange::new(0x6100_0000, 0x2_0000),
    ];
    assert_eq!(memreserve(&m).as_slice(), &want);
    assert_eq!(reserved(&m).as_slice(), &want);
}

#[test]
fn memreserve_zero_size_entry_is_skipped_with_warning() {
    let mut dtb = dtb_with(
        1,
        1,
        &[(0x6000_0000, 0x1000), (0x6100_0000, 0x2000)],
        |w, ac, sc| memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)]),
    );
    // Zero the size of the first entry (vm-fdt refuses to write one).
    let rsv = get32(&dtb, OFF_MEM_RSVMAP) as usize;
    dtb[rsv + 8..rsv + 16].fill(0);
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        memreserve(&m).as_slice(),
        &[MemRange::new(0x6100_0000, 0x2000)]
    );
    assert_eq!(
        m.warnings.as_slice(),
        &[FdtWarning::ZeroSizedReservation {
            node: "/memreserve/",
            base: 0x6000_0000
        }]
    );
}

fn reserved_memory(w: &mut FdtWriter, ac: u32, sc: u32, children: impl FnOnce(&mut FdtWriter)) {
    let rm = w.begin_node("reserved-memory").unwrap();
    w.property_u32("#address-cells", ac).unwrap();
    w.property_u32("#size-cells", sc).unwrap();
    w.property_null("ranges").unwrap();
    children(w);
    w.end_node(rm).unwrap();
}

#[test]
fn reserved_memory_static_with_and_without_no_map() {
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)]);
        reserved_memory(w, ac, sc, |w| {
            let n = w.begin_node("vram@7f000000").unwrap();
            w.property_array_u32("reg", &[0x7f00_0000, 0x80_0000])
                .unwrap();
            w.property_null("no-map").unwrap();
            w.end_node(n).unwrap();
            let n = w.begin_node("ramoops@7e000000").unwrap();
            w.property_array_u32("reg", &[0x7e00_0000, 0x10_0000, 0x7e80_0000, 0x1000])
                .unwrap();
            w.end_node(n).unwrap();
            let n = w.begin_node("off@7d000000").unwrap();
            w.property_array_u32("reg", &[0x7d00_0000, 0x10_0000])
                .unwrap();
            w.property_string("status", "disabled").unwrap();
            w.end_node(n).unwrap();
        });
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        reserved_static(&m).as_slice(),
        &[
            (MemRange::new(0x7f00_0000, 0x80_0000), true),
            (MemRange::new(0x7e00_0000, 0x10_0000), false),
            (MemRange::new(0x7e80_0000, 0x1000), false),
        ]
    );
    assert_eq!(
        m.warnings.as_slice(),
        &[FdtWarning::DisabledNode {
            node: "off@7d000000"
        }]
    );
    // The MemorySource reserves the plain regions and marks the no-map one NOMAP.
    assert_eq!(reserved(&m).len(), 2);
    assert_eq!(
        nomap(&m).as_slice(),
        &[MemRange::new(0x7f00_0000, 0x80_0000)]
    );
}

#[test]
fn reserved_memory_dynamic() {
    let dtb = dtb_with(2, 2, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x8000_0000, 0x8000_0000)]);
        reserved_memory(w, ac, sc, |w| {
            let n = w.begin_node("linux,cma").unwrap();
            w.property_string("compatible", "shared-dma-pool").unwrap();
            w.property_null("reusable").unwrap();
            w.property_u64("size", 0x400_0000).unwrap();
            w.property_u64("alignment", 0x40_0000).unwrap();
            w.property_array_u64(
                "alloc-ranges",
                &[0x8000_0000, 0x1000_0000, 0xa000_0000, 0x1000_0000],
            )
            .unwrap();
            w.end_node(n).unwrap();
            let n = w.begin_node("fw-pool").unwrap();
            w.property_u64("size", 0x10_0000).unwrap();
            w.property_null("no-map").unwrap();
            w.end_node(n).unwrap();
            let n = w.begin_node("nothing").unwrap();
            w.property_string("compatible", "acme,nothing").unwrap();
            w.end_node(n).unwrap();
        });
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert!(reserved_static(&m).is_empty());
    assert_eq!(m.reserved_dynamic.len(), 2);
    let cma = &m.reserved_dynamic[0];
    assert_eq!(cma.name, "linux,cma");
    assert_eq!(cma.size, 0x400_0000);
    assert_eq!(cma.alignment, Some(0x40_0000));
    assert_eq!(
        cma.alloc_ranges.as_slice(),
        &[
            MemRange::new(0x8000_0000, 0x1000_0000),
            MemRange::new(0xa000_0000, 0x1000_0000)
        ]
    );
    assert!(cma.reusable && !cma.no_map);
    let fw = &m.reserved_dynamic[1];
    assert_eq!(
        (fw.name, fw.size, fw.alignment),
        ("fw-pool", 0x10_0000, None)
    );
    assert!(fw.no_map && !fw.reusable && fw.alloc_ranges.is_empty());
    assert_eq!(
        m.warnings.as_slice(),
        &[FdtWarning::ReservedNodeWithoutRegOrSize { node: "nothing" }]
    );
    // Dynamic reservations are data only; they are not in reserved_ranges().
    assert!(reserved(&m).is_empty());
}

#[test]
fn reserved_memory_root_format_is_checked() {
    // #size-cells differing from the root's.
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)]);
        reserved_memory(w, ac, 2, |w| {
            let n = w.begin_node("r@7f000000").unwrap();
            w.property_array_u32("reg", &[0x7f00_0000, 0, 0x1000])
                .unwrap();
            w.end_node(n).unwrap();
        });
    });
    let blob = Aligned::new(&dtb);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadCells {
            what: "/reserved-memory #size-cells",
            value: 2
        }
    );
    // No `ranges`.
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        let rm = w.begin_node("reserved-memory").unwrap();
        w.property_u32("#address-cells", ac).unwrap();
        w.property_u32("#size-cells", sc).unwrap();
        w.end_node(rm).unwrap();
    });
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Parse(_)
    ));
}

#[test]
fn reserved_range_outside_ram_is_kept() {
    let dtb = dtb_with(1, 1, &[(0x1000_0000, 0x1000)], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)]);
        reserved_memory(w, ac, sc, |w| {
            let n = w.begin_node("sram@0").unwrap();
            w.property_array_u32("reg", &[0x0, 0x1_0000]).unwrap();
            w.end_node(n).unwrap();
        });
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        reserved(&m).as_slice(),
        &[
            MemRange::new(0x1000_0000, 0x1000),
            MemRange::new(0, 0x1_0000)
        ]
    );
}

#[test]
fn chosen_bootargs_and_initrd() {
    let blob = Aligned::new(&rich_dtb());
    let m = FdtMemory::parse_at(blob.bytes(), MAX32, Some(0x6ff0_0000)).unwrap();
    let args = m.bootargs.as_ref().unwrap();
    assert_eq!(args.as_str(), "console=ttyAMA0 mem=512M");
    assert_eq!(args.as_bytes(), b"console=ttyAMA0 mem=512M");
    assert!(args.is_utf8());
    assert_eq!(m.cmdline(), "console=ttyAMA0 mem=512M");
    assert_eq!(Cmdline::parse(m.cmdline()).mem[0].size, 512 << 20);
    assert_eq!(m.initrd, Some(MemRange::new(0x6800_0000, 0x40_0000)));
    let total = m.header.totalsize as u64;
    assert_eq!(m.blob, Some(MemRange::new(0x6ff0_0000, total)));
    assert_eq!(
        reserved(&m).as_slice(),
        &[
            MemRange::new(0x6000_0000, 0x1000),    // /memreserve/
            MemRange::new(0x6800_0000, 0x40_0000), // initrd
            MemRange::new(0x6ff0_0000, total),     // the DTB itself
        ]
    );
    assert_eq!(m.reserved_dynamic.len(), 1);
}

#[test]
fn initrd_with_64bit_cells_and_bad_initrds() {
    let mk = |start: Option<u64>, end: Option<u64>| {
        dtb_with(1, 1, &[], |w, ac, sc| {
            memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)]);
            let c = w.begin_node("chosen").unwrap();
            if let Some(s) = start {
                w.property_u64("linux,initrd-start", s).unwrap();
            }
            if let Some(e) = end {
                w.property_u64("linux,initrd-end", e).unwrap();
            }
            w.end_node(c).unwrap();
        })
    };
    let blob = Aligned::new(&mk(Some(0x6800_0000), Some(0x6810_0000)));
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(m.initrd, Some(MemRange::new(0x6800_0000, 0x10_0000)));

    let blob = Aligned::new(&mk(Some(0x6800_0000), None));
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(m.initrd, None);
    assert_eq!(m.warnings.as_slice(), &[FdtWarning::IncompleteInitrd]);

    let blob = Aligned::new(&mk(Some(0x6800_0000), Some(0x6800_0000)));
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(m.initrd, None);

    let blob = Aligned::new(&mk(Some(0x6800_0000), Some(0x6700_0000)));
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadInitrd {
            start: 0x6800_0000,
            end: 0x6700_0000
        }
    );
}

#[test]
fn root_without_cells_defaults_to_one_one() {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    memory_node(&mut w, "memory", 1, 1, &[(0x6000_0000, 0x1000_0000)]);
    w.end_node(root).unwrap();
    let blob = Aligned::new(&w.finish().unwrap());
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!((m.address_cells, m.size_cells), (1, 1));
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x6000_0000, 0x1000_0000)]
    );
}

#[test]
fn empty_tree_with_fdt_end_as_last_word() {
    // No properties: the strings block is empty and FDT_END is the blob's last word,
    // the layout that tripped fdt-rs 0.4's debug assertion (used before).
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.end_node(root).unwrap();
    let dtb = w.finish().unwrap();
    assert_eq!(get32(&dtb, SIZE_DT_STRINGS), 0);
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert!(banks_of(&m).is_empty());
    assert!(banks_of(&m).is_empty()); // the boot flow's SourceError::NoMemory
}

#[test]
fn version_16_blob_is_accepted() {
    let mut dtb = simple_dtb();
    set32(&mut dtb, VERSION, 16);
    set32(&mut dtb, LAST_COMP_VERSION, 16);
    set32(&mut dtb, SIZE_DT_STRUCT, 0xdead_beef); // not a field in v16
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x6000_0000, 0x4000_0000)]
    );
}

#[test]
fn buffer_longer_than_totalsize_is_fine() {
    let mut dtb = simple_dtb();
    dtb.extend_from_slice(&[0xff; 64]);
    let blob = Aligned::new(&dtb);
    assert!(parse(blob.bytes(), MAX32).is_ok());
}

#[test]
fn totalsize_at_reads_the_prefix() {
    let dtb = simple_dtb();
    assert_eq!(
        fdt_totalsize_at(&dtb[..FDT_HEADER_SIZE]),
        Some(dtb.len() as u32)
    );
    assert_eq!(fdt_totalsize_at(&dtb[..FDT_HEADER_SIZE - 1]), None);
    let mut bad = dtb.clone();
    bad[0] ^= 1;
    assert_eq!(fdt_totalsize_at(&bad), None);
    let h = fdt_header_ok(&dtb).unwrap();
    assert_eq!(h.totalsize as usize, dtb.len());
    assert_eq!(h.version, 17);
}

// ------------------------------------------------------------------- capacity

#[test]
fn memory_ranges_have_no_cap() {
    // More banks than memblock's table holds: all reported, in DTB order; memblock
    // decides what fits (tests/tests/dtb_boot.rs boots them).
    let banks: Vec<(u64, u64)> = (0..200).map(|i| (i * 0x100_0000, 0x10_0000)).collect();
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &banks)
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    let want: Vec<MemRange> = banks.iter().map(|&(b, s)| MemRange::new(b, s)).collect();
    assert_eq!(banks_of(&m), want);
    assert_eq!(collect_ranges(&m, RegionKind::Memory).unwrap(), want);
}

#[test]
fn memreserve_entries_have_no_cap() {
    let rsv: Vec<(u64, u64)> = (0..200)
        .map(|i| (0x6000_0000 + i * 0x1_0000, 0x1000))
        .collect();
    let dtb = dtb_with(1, 1, &rsv, |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)])
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(memreserve(&m).len(), 200);
}

#[test]
fn too_many_dynamic_reservations() {
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)]);
        reserved_memory(w, ac, sc, |w| {
            for i in 0..9 {
                let n = w.begin_node(&format!("pool{i}")).unwrap();
                w.property_u32("size", 0x1000).unwrap();
                w.end_node(n).unwrap();
            }
        });
    });
    let blob = Aligned::new(&dtb);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::TooManyRanges {
            what: "dynamic reserved-memory nodes",
            max: 8
        }
    );
}

#[test]
fn reserved_ranges_beyond_memblocks_table_are_all_reported() {
    // INIT_MEMBLOCK_REGIONS /memreserve/ entries plus an initrd: none dropped (memblock,
    // not the source, says when its table is full).
    let rsv: Vec<(u64, u64)> = (0..128)
        .map(|i| (0x6000_0000 + i * 0x1_0000, 0x1000))
        .collect();
    let dtb = dtb_with(1, 1, &rsv, |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)]);
        let c = w.begin_node("chosen").unwrap();
        w.property_u32("linux,initrd-start", 0x6800_0000).unwrap();
        w.property_u32("linux,initrd-end", 0x6900_0000).unwrap();
        w.end_node(c).unwrap();
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    let r = reserved(&m);
    assert_eq!(r.len(), 129);
    assert_eq!(r.last(), Some(&MemRange::new(0x6800_0000, 0x100_0000)));
}

// ------------------------------------------------------------------ malformed

#[test]
fn truncated_blob() {
    let dtb = simple_dtb();
    let blob = Aligned::new(&dtb[..dtb.len() - 8]);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Truncated {
            need: dtb.len(),
            have: dtb.len() - 8
        }
    );
    let blob = Aligned::new(&dtb[..20]);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Truncated { need: 40, have: 20 }
    );
    assert!(matches!(
        parse(&[], MAX32).unwrap_err(),
        FdtError::Truncated { have: 0, .. }
    ));
}

#[test]
fn wrong_magic() {
    let mut dtb = simple_dtb();
    set32(&mut dtb, 0, 0xedfe0dd0); // little-endian magic
    let blob = Aligned::new(&dtb);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadMagic { found: 0xedfe0dd0 }
    );
    assert_ne!(FDT_MAGIC, 0xedfe0dd0);
}

#[test]
fn totalsize_larger_than_buffer() {
    let mut dtb = simple_dtb();
    let len = dtb.len();
    set32(&mut dtb, TOTALSIZE, len as u32 + 4096);
    let blob = Aligned::new(&dtb);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Truncated {
            need: len + 4096,
            have: len
        }
    );
}

#[test]
fn struct_offset_past_the_end() {
    let mut dtb = simple_dtb();
    let len = dtb.len() as u32;
    set32(&mut dtb, OFF_DT_STRUCT, (len + 64) & !3);
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadOffset { what } if what.contains("off_dt_struct")
    ));
    // Offset inside, size reaching past the end.
    let mut dtb = simple_dtb();
    set32(&mut dtb, SIZE_DT_STRUCT, len);
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadOffset { what } if what.contains("size_dt_struct")
    ));
}

#[test]
fn strings_offset_past_the_end() {
    let mut dtb = simple_dtb();
    let len = dtb.len() as u32;
    set32(&mut dtb, OFF_DT_STRINGS, len + 4);
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadOffset { what } if what.contains("off_dt_strings")
    ));
}

#[test]
fn offsets_into_the_header_or_misaligned() {
    let mut dtb = simple_dtb();
    set32(&mut dtb, OFF_MEM_RSVMAP, 8);
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadOffset { what } if what.contains("off_mem_rsvmap")
    ));
    let mut dtb = simple_dtb();
    let rsv = get32(&dtb, OFF_MEM_RSVMAP);
    set32(&mut dtb, OFF_MEM_RSVMAP, rsv + 4);
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Unaligned {
            what: "off_mem_rsvmap",
            ..
        }
    ));
    let mut dtb = simple_dtb();
    let st = get32(&dtb, OFF_DT_STRUCT);
    set32(&mut dtb, OFF_DT_STRUCT, st + 2);
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Unaligned {
            what: "off_dt_struct",
            ..
        }
    ));
    let mut dtb = simple_dtb();
    set32(&mut dtb, OFF_DT_STRINGS, 0);
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadOffset { .. }
    ));
}

#[test]
fn misaligned_buffer() {
    let blob = Aligned::with_misalignment(&simple_dtb(), 1);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Unaligned {
            what: "blob address",
            ..
        }
    ));
}

#[test]
fn bad_version() {
    for (version, last) in [(15, 15), (17, 18), (16, 17), (0, 0)] {
        let mut dtb = simple_dtb();
        set32(&mut dtb, VERSION, version);
        set32(&mut dtb, LAST_COMP_VERSION, last);
        let blob = Aligned::new(&dtb);
        assert_eq!(
            parse(blob.bytes(), MAX32).unwrap_err(),
            FdtError::BadVersion {
                version,
                last_comp_version: last
            }
        );
    }
}

#[test]
fn address_cells_three() {
    let dtb = dtb_with(3, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)])
    });
    let blob = Aligned::new(&dtb);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadCells {
            what: "root #address-cells",
            value: 3
        }
    );
    let dtb = dtb_with(1, 0, &[], |_, _, _| {});
    let blob = Aligned::new(&dtb);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadCells {
            what: "root #size-cells",
            value: 0
        }
    );
}

#[test]
fn reg_length_not_a_whole_entry() {
    let dtb = dtb_with(1, 1, &[], |w, _, _| {
        let n = w.begin_node("memory").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u32("reg", &[0x6000_0000, 0x1000_0000, 0x7000_0000])
            .unwrap();
        w.end_node(n).unwrap();
    });
    let blob = Aligned::new(&dtb);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::BadPropLen {
            what: "memory reg",
            len: 12
        }
    );
}

#[test]
fn bank_overflowing_64_bits() {
    let dtb = dtb_with(2, 2, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(u64::MAX - 0xfff, 0x2000)])
    });
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), u64::MAX).unwrap_err(),
        FdtError::Overflow { .. }
    ));
}

#[test]
fn structure_block_damage() {
    // size_dt_struct too small to reach FDT_END.
    let mut dtb = simple_dtb();
    let sz = get32(&dtb, SIZE_DT_STRUCT);
    set32(&mut dtb, SIZE_DT_STRUCT, sz - 4);
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Parse(_)
    ));
    // First token not a known token.
    let mut dtb = simple_dtb();
    let st = get32(&dtb, OFF_DT_STRUCT) as usize;
    set32(&mut dtb, st, 0x77);
    let blob = Aligned::new(&dtb);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Parse("unknown structure token")
    );
    // FDT_END replaced by FDT_NOP: the walk runs off the block.
    let mut dtb = simple_dtb();
    let end = (get32(&dtb, OFF_DT_STRUCT) + get32(&dtb, SIZE_DT_STRUCT)) as usize;
    set32(&mut dtb, end - 4, 4);
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Parse(_)
    ));
}

// ------------------------------------------------- what Linux accepts, too

/// Replace the first occurrence of `from` in `blob` by `to` (same length): bytes no
/// FDT writer will put in a name or a string, patched in afterwards.
fn patch(blob: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = blob
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in the blob");
    blob[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn dtb_node_name_over_29_chars_is_accepted() {
    // 30 bytes (the longest fdt-rs 0.4 took was 29), a 31-byte name with a long unit
    // address, and a memory node whose name is longer still: all are read.
    let long = format!("abcdefghijklmnopqrstuvwxyz01234@{}", "9".repeat(200));
    let memory = format!("memory@{}", "0".repeat(72));
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        let n = w.begin_node("interrupt-controller@12c001000").unwrap();
        w.property_string("status", "okay").unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node(&long).unwrap();
        let c = w.begin_node(&long).unwrap();
        w.end_node(c).unwrap();
        w.end_node(n).unwrap();
        memory_node(w, &memory, ac, sc, &[(0x6000_0000, 0x1000_0000)]);
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x6000_0000, 0x1000_0000)]
    );
    assert!(m.warnings.is_empty());
}

#[test]
fn dtb_non_utf8_node_name_is_accepted() {
    let mut dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        let n = w.begin_node("cafeX@0").unwrap();
        w.end_node(n).unwrap();
        // A memory node whose (unit address) name is not UTF-8 is still memory.
        memory_node(w, "memory@6000000X", ac, sc, &[(0x6000_0000, 0x1000_0000)]);
    });
    patch(&mut dtb, b"cafeX@0\0", b"caf\xe9\xff@0\0");
    patch(&mut dtb, b"6000000X\0", b"6000000\xe9\0");
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(banks_of(&m).len(), 1);
}

#[test]
fn dtb_latin1_bootargs_keeps_tree_memory() {
    let dtb = dtb_with(1, 1, &[(0x6000_0000, 0x1000)], |w, ac, sc| {
        let c = w.begin_node("chosen").unwrap();
        // "café" in Latin-1: one 0xe9 byte, not UTF-8.
        w.property(
            "bootargs",
            b"console=ttyAMA0 caf\xe9 mem=256M memblock=debug\0",
        )
        .unwrap();
        w.end_node(c).unwrap();
        memory_node(w, "memory@60000000", ac, sc, &[(0x6000_0000, 0x1000_0000)]);
        reserved_memory(w, ac, sc, |w| {
            let n = w.begin_node("static@61000000").unwrap();
            w.property_array_u32("reg", &[0x6100_0000, 0x1_0000])
                .unwrap();
            w.end_node(n).unwrap();
        });
    });
    let blob = Aligned::new(&dtb);
    let m = FdtMemory::parse_at(blob.bytes(), MAX32, Some(0x6800_0000)).unwrap();
    // The tree's memory and every reservation, not a fallback.
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x6000_0000, 0x1000_0000)]
    );
    let total = m.header.totalsize as u64;
    assert_eq!(
        reserved(&m).as_slice(),
        &[
            MemRange::new(0x6000_0000, 0x1000),
            MemRange::new(0x6100_0000, 0x1_0000),
            MemRange::new(0x6800_0000, total),
        ]
    );
    // The bytes as Linux has them, the text with U+FFFD, every parameter working.
    let args = m.bootargs.as_ref().unwrap();
    assert_eq!(
        args.as_bytes(),
        b"console=ttyAMA0 caf\xe9 mem=256M memblock=debug"
    );
    assert!(!args.is_utf8());
    assert_eq!(
        m.cmdline(),
        "console=ttyAMA0 caf\u{fffd} mem=256M memblock=debug"
    );
    let c = Cmdline::parse(m.cmdline());
    assert_eq!(c.mem[0].size, 256 << 20);
    assert!(c.memblock_debug);
    assert_eq!(m.warnings.as_slice(), &[FdtWarning::BootargsNotUtf8]);
}

#[test]
fn bootargs_text_replaces_each_invalid_sequence() {
    let b = Bootargs::new(b"a\xe9b \xff\xfe c\xe2\x82");
    assert_eq!(b.as_str(), "a\u{fffd}b \u{fffd}\u{fffd} c\u{fffd}");
    // A whole line of invalid bytes still fits (three bytes of text per byte).
    let raw = vec![0xffu8; COMMAND_LINE_SIZE - 1];
    let b = Bootargs::new(&raw);
    assert_eq!(b.as_str().chars().count(), COMMAND_LINE_SIZE - 1);
    assert!(Bootargs::new(b"plain").is_utf8());
}

#[test]
fn dtb_bootargs_cut_at_command_line_size() {
    let mk = |v: &[u8]| {
        let v = v.to_vec();
        dtb_with(1, 1, &[], move |w, ac, sc| {
            let c = w.begin_node("chosen").unwrap();
            w.property("bootargs", &v).unwrap();
            w.end_node(c).unwrap();
            memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x1000_0000)]);
        })
    };
    // Longer than COMMAND_LINE_SIZE: Linux keeps COMMAND_LINE_SIZE - 1 bytes.
    let mut long = vec![b'x'; 2000];
    long.push(0);
    let blob = Aligned::new(&mk(&long));
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(m.cmdline().len(), COMMAND_LINE_SIZE - 1);
    assert_eq!(
        m.warnings.as_slice(),
        &[FdtWarning::BootargsTruncated {
            kept: COMMAND_LINE_SIZE - 1
        }]
    );
    // No NUL: strscpy keeps one byte less than the property.
    let blob = Aligned::new(&mk(b"mem=256M"));
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(m.cmdline(), "mem=256");
    // Exactly fitting, NUL-terminated: untouched.
    let blob = Aligned::new(&mk(b"mem=256M\0"));
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(m.cmdline(), "mem=256M");
    assert!(m.warnings.is_empty());
}

#[test]
fn dtb_latin1_status_of_unrelated_node_is_accepted() {
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        let n = w.begin_node("uart@10009000").unwrap();
        w.property("status", b"d\xe9sactiv\xe9\0").unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node("sdram@90000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u32("reg", &[0x9000_0000, 0x1000_0000])
            .unwrap();
        // Not "okay": Linux's of_fdt_device_is_available says no, so does zonekit.
        w.property("status", b"ok\xe9\0").unwrap();
        w.end_node(n).unwrap();
        memory_node(w, "memory@60000000", ac, sc, &[(0x6000_0000, 0x1000_0000)]);
        reserved_memory(w, ac, sc, |w| {
            let n = w.begin_node("pool").unwrap();
            w.property("compatible", b"shared-dma-pool\xe9\0").unwrap();
            w.property_u32("size", 0x10_0000).unwrap();
            w.end_node(n).unwrap();
        });
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        banks_of(&m).as_slice(),
        &[MemRange::new(0x6000_0000, 0x1000_0000)]
    );
    assert_eq!(
        m.warnings.as_slice(),
        &[FdtWarning::DisabledNode {
            node: "sdram@90000000"
        }]
    );
    assert_eq!(m.reserved_dynamic.len(), 1);
}

#[test]
fn dtb_more_than_16_memory_banks() {
    // 100 banks: 80 in one node, 20 in twenty more nodes; all kept, in DTB order.
    let banks: Vec<(u64, u64)> = (0..100).map(|i| (i * 0x200_0000, 0x100_0000)).collect();
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &banks[..80]);
        for (i, b) in banks[80..].iter().enumerate() {
            memory_node(w, &format!("memory@{i}"), ac, sc, &[*b]);
        }
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    let want: Vec<MemRange> = banks.iter().map(|&(b, s)| MemRange::new(b, s)).collect();
    assert_eq!(banks_of(&m).as_slice(), want.as_slice());
    // And as many /memreserve/ entries and static reservations.
    let rsv: Vec<(u64, u64)> = (0..40).map(|i| (i * 0x200_0000, 0x1000)).collect();
    let dtb = dtb_with(1, 1, &rsv, |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &banks);
        reserved_memory(w, ac, sc, |w| {
            for i in 0..40u32 {
                let n = w.begin_node(&format!("r@{i}")).unwrap();
                w.property_array_u32("reg", &[i * 0x200_0000 + 0x10_0000, 0x1000])
                    .unwrap();
                w.end_node(n).unwrap();
            }
        });
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(banks_of(&m).len(), 100);
    assert_eq!(reserved(&m).len(), 80);
}

/// A child of the root for [`chosen_tree`]: its name and `bootargs`.
type TopNode<'a> = (&'a str, Option<&'a str>);

/// A tree with the given children of the root (`(name, bootargs)`; `None`: a
/// `/reserved-memory`-style node with one static region at 0x6100_0000 + i MiB).
fn chosen_tree(nodes: &[TopNode<'_>]) -> Vec<u8> {
    dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x1000_0000)]);
        for (i, (name, args)) in nodes.iter().enumerate() {
            let n = w.begin_node(name).unwrap();
            match args {
                Some(a) => w.property_string("bootargs", a).unwrap(),
                None => {
                    w.property_u32("#address-cells", ac).unwrap();
                    w.property_u32("#size-cells", sc).unwrap();
                    w.property_null("ranges").unwrap();
                    let r = w.begin_node("r").unwrap();
                    w.property_array_u32("reg", &[0x6100_0000 + ((i as u32) << 20), 0x1000])
                        .unwrap();
                    w.end_node(r).unwrap();
                }
            }
            w.end_node(n).unwrap();
        }
    })
}

#[test]
fn dtb_chosen_unit_address_variants() {
    // Linux 6.1: fdt_path_offset("/chosen"), i.e. the first child of the root named
    // "chosen" or "chosen@<unit>", in tree order; later ones are ignored.
    let cases: [(&[TopNode], &str, &[&str]); 5] = [
        (
            &[("chosen", Some("a")), ("chosen@1", Some("b"))],
            "a",
            &["chosen@1"],
        ),
        (
            &[("chosen@1", Some("b")), ("chosen", Some("a"))],
            "b",
            &["chosen"],
        ),
        (&[("chosen@0", Some("z"))], "z", &[]),
        (&[("chosenx", Some("no")), ("chose", Some("no"))], "", &[]),
        (
            &[
                ("chosen", Some("a")),
                ("chosen@1", Some("b")),
                ("chosen@0", Some("c")),
            ],
            "a",
            &["chosen@1", "chosen@0"],
        ),
    ];
    for (nodes, want, ignored) in cases {
        let blob = Aligned::new(&chosen_tree(nodes));
        let m = parse(blob.bytes(), MAX32).unwrap();
        assert_eq!(m.cmdline(), want, "{nodes:?}");
        let dups: Vec<FdtWarning> = ignored
            .iter()
            .map(|n| FdtWarning::DuplicateNode { node: n })
            .collect();
        assert_eq!(m.warnings.as_slice(), dups.as_slice(), "{nodes:?}");
        assert_eq!(
            chosen_bootargs(blob.bytes())
                .unwrap()
                .map(|b| b.as_str().to_string()),
            (!want.is_empty()).then(|| want.to_string()),
            "{nodes:?}"
        );
    }
    // The same rule for /reserved-memory: the first of reserved-memory and
    // reserved-memory@0 is used.
    let blob = Aligned::new(&chosen_tree(&[
        ("reserved-memory@0", None),
        ("reserved-memory", None),
    ]));
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert_eq!(
        reserved(&m).as_slice(),
        &[MemRange::new(0x6100_0000, 0x1000)]
    );
    assert_eq!(
        m.warnings.as_slice(),
        &[FdtWarning::DuplicateNode {
            node: "reserved-memory"
        }]
    );
}

#[test]
fn chosen_bootargs_of_a_rejected_tree() {
    // Overlapping banks: the tree is rejected, but its structure (and so the command
    // line the user wrote) can be read.
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        let c = w.begin_node("chosen").unwrap();
        w.property_string("bootargs", "memblock=debug zonekit.fallback=board")
            .unwrap();
        w.end_node(c).unwrap();
        memory_node(w, "memory@60000000", ac, sc, &[(0x6000_0000, 0x1000_0000)]);
        memory_node(w, "sdram@60000000", ac, sc, &[(0x6000_0000, 0x1000_0000)]);
    });
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32),
        Err(FdtError::OverlappingBanks { .. })
    ));
    let args = chosen_bootargs(blob.bytes()).unwrap().unwrap();
    assert_eq!(args.as_str(), "memblock=debug zonekit.fallback=board");
    // A damaged structure block: nothing can be read.
    let mut bad = dtb.clone();
    let h = fdt_header_ok(&bad).unwrap();
    let last = h.off_dt_struct as usize + h.size_dt_struct as usize - 4;
    set32(&mut bad, last, 0x77);
    let blob = Aligned::new(&bad);
    assert!(chosen_bootargs(blob.bytes()).is_err());
    // No /chosen: no command line.
    let blob = Aligned::new(&simple_dtb());
    assert_eq!(chosen_bootargs(blob.bytes()), Ok(None));
}

#[test]
fn errors_display_and_convert() {
    let e = FdtError::BadCells {
        what: "root #address-cells",
        value: 3,
    };
    assert_eq!(
        e.to_string(),
        "unsupported root #address-cells = 3 (must be 1 or 2)"
    );
    assert_eq!(
        SourceError::from(FdtError::TooManyRanges {
            what: "CMA pools",
            max: 7
        }),
        SourceError::TooMany {
            what: "CMA pools",
            max: 7
        }
    );
    assert!(matches!(
        SourceError::from(FdtError::BadMagic { found: 0 }),
        SourceError::Malformed(_)
    ));
    assert!(FdtError::Truncated { need: 40, have: 3 }
        .to_string()
        .contains("40"));
}

// ------------------------------------------------------------- mutation loop

/// Mutants per run (raised to 400 000 once during development: no panic).
const FUZZ_N: usize = 6000;

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn check_invariants(m: &FdtMemory<'_>, max: u64, len: usize) {
    assert!(m.header.totalsize as usize <= len);
    let banks = banks_of(m);
    for r in &banks {
        assert!(r.size > 0);
        assert!(r.end() - 1 <= max);
    }
    for (i, a) in banks.iter().enumerate() {
        for b in &banks[i + 1..] {
            assert!(!a.overlaps(b));
        }
    }
    let _ = zonekit_core::source::collect_regions(m);
    let _ = m.cmdline();
}

#[test]
fn mutated_blobs_never_panic() {
    let base = rich_dtb();
    let mut rng = Rng(0x5eed_f00d_dead_beef);
    let mut ok = 0usize;
    let mut errs = 0usize;
    for i in 0..FUZZ_N {
        let mut b = base.clone();
        match i % 4 {
            // Flip 1..4 random bits.
            0 => {
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(b.len());
                    b[at] ^= 1 << rng.below(8);
                }
            }
            // Overwrite a random byte.
            1 => {
                let at = rng.below(b.len());
                b[at] = rng.next() as u8;
            }
            // Overwrite an aligned word with a small or header-ish value.
            2 => {
                let at = rng.below(b.len() / 4) * 4;
                let v = match rng.below(4) {
                    0 => rng.below(16) as u32,
                    1 => b.len() as u32 + rng.below(64) as u32 - 32,
                    2 => u32::MAX - rng.below(8) as u32,
                    _ => rng.next() as u32,
                };
                set32(&mut b, at, v);
            }
            // Truncate (and sometimes also flip).
            _ => {
                let len = rng.below(b.len() + 1);
                b.truncate(len);
                if !b.is_empty() && rng.below(2) == 0 {
                    let at = rng.below(b.len());
                    b[at] ^= 0xff;
                }
            }
        }
        let blob = Aligned::new(&b);
        for max in [MAX32, MAX40] {
            match parse(blob.bytes(), max) {
                Ok(m) => {
                    ok += 1;
                    check_invariants(&m, max, b.len());
                }
                Err(e) => {
                    errs += 1;
                    let _ = e.to_string();
                }
            }
        }
        let _ = chosen_bootargs(blob.bytes());
        let _ = fdt_totalsize_at(&b);
        let _ = fdt_header_ok(&b);
    }
    // Both outcomes must actually occur for the loop to mean anything.
    assert!(ok > 100, "only {ok} mutants parsed");
    assert!(errs > 1000, "only {errs} mutants rejected");
}
