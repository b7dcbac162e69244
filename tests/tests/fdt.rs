//! Device-tree memory discovery (`zonekit_arch_arm::fdt`) against DTBs built with
//! `vm-fdt`, plus malformed blobs patched by hand and a no-panic mutation loop.

use vm_fdt::{FdtReserveEntry, FdtWriter};
use zonekit_arch_arm::fdt::{
    fdt_header_ok, fdt_totalsize_at, FdtError, FdtMemory, FdtWarning, FDT_HEADER_SIZE, FDT_MAGIC,
};
use zonekit_core::cmdline::Cmdline;
use zonekit_core::{MemRange, MemorySource, SourceError};

const MAX32: u64 = u32::MAX as u64;
const MAX40: u64 = (1 << 40) - 1;

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
/// aligned; fdt-rs needs 4).
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
        m.memory.as_slice(),
        &[MemRange::new(0x6000_0000, 0x4000_0000)]
    );
    assert!(m.dropped.is_empty());
    assert!(m.memreserve.is_empty() && m.reserved_static.is_empty());
    assert!(m.reserved_dynamic.is_empty());
    assert_eq!((m.initrd, m.bootargs, m.blob), (None, None, None));
    assert!(m.warnings.is_empty());
    assert_eq!((m.address_cells, m.size_cells), (1, 1));
    assert_eq!(m.name(), "DTB");
    assert_eq!(m.memory_banks().unwrap(), m.memory);
    assert!(m.reserved_ranges().unwrap().is_empty());
    assert_eq!(m.cmdline(), "");
    assert_eq!(m.dma_zone_size(), None);
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
        m.memory.as_slice(),
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
    assert_eq!(m.memory.as_slice(), want.as_slice());
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
        m.memory.as_slice(),
        &[MemRange::new(0x8000_0000, 0x8000_0000)]
    );
    assert_eq!(
        m.dropped.as_slice(),
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
        m.memory.as_slice(),
        &[MemRange::new(0x8000_0000, 0x1_0000_0000)]
    );
    assert!(m.dropped.is_empty() && m.warnings.is_empty());
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
        m.memory.as_slice(),
        &[MemRange::new(0x8000_0000, 0x4000_0000)]
    );
    assert_eq!(
        m.dropped.as_slice(),
        &[MemRange::new(0x8_8000_0000, 0x8000_0000)]
    );

    // Only memory above the limit: parsed, but the source has no memory.
    let dtb = dtb_with(2, 2, &[], |w, ac, sc| {
        memory_node(w, "memory@0", ac, sc, &[(0x8_8000_0000, 0x8000_0000)])
    });
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert!(m.memory.is_empty());
    assert_eq!(m.dropped.len(), 1);
    assert_eq!(m.memory_banks(), Err(SourceError::NoMemory));
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
        m.memory.as_slice(),
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
        m.memory.as_slice(),
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
        m.memory.as_slice(),
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
    assert_eq!(m.memreserve.as_slice(), &want);
    assert_eq!(m.reserved_ranges().unwrap().as_slice(), &want);
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
        m.memreserve.as_slice(),
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
        m.reserved_static.as_slice(),
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
    assert_eq!(m.reserved_ranges().unwrap().len(), 2);
    assert_eq!(
        m.nomap_ranges().unwrap().as_slice(),
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
    assert!(m.reserved_static.is_empty());
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
    assert!(m.reserved_ranges().unwrap().is_empty());
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
        m.reserved_ranges().unwrap().as_slice(),
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
    assert_eq!(m.bootargs, Some("console=ttyAMA0 mem=512M"));
    assert_eq!(m.cmdline(), "console=ttyAMA0 mem=512M");
    assert_eq!(Cmdline::parse(m.cmdline()).mem[0].size, 512 << 20);
    assert_eq!(m.initrd, Some(MemRange::new(0x6800_0000, 0x40_0000)));
    let total = m.header.totalsize as u64;
    assert_eq!(m.blob, Some(MemRange::new(0x6ff0_0000, total)));
    assert_eq!(
        m.reserved_ranges().unwrap().as_slice(),
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
        m.memory.as_slice(),
        &[MemRange::new(0x6000_0000, 0x1000_0000)]
    );
}

#[test]
fn empty_tree_with_fdt_end_as_last_word() {
    // No properties: the strings block is empty and FDT_END is the blob's last word,
    // the layout that would trip fdt-rs's debug assertion.
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.end_node(root).unwrap();
    let dtb = w.finish().unwrap();
    assert_eq!(get32(&dtb, SIZE_DT_STRINGS), 0);
    let blob = Aligned::new(&dtb);
    let m = parse(blob.bytes(), MAX32).unwrap();
    assert!(m.memory.is_empty());
    assert_eq!(m.memory_banks(), Err(SourceError::NoMemory));
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
        m.memory.as_slice(),
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
fn too_many_memory_ranges() {
    let banks: Vec<(u64, u64)> = (0..17).map(|i| (i * 0x1000_0000, 0x100_0000)).collect();
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &banks)
    });
    let blob = Aligned::new(&dtb);
    assert_eq!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::TooManyRanges {
            what: "memory banks",
            max: 16
        }
    );
    // Sixteen fit.
    let dtb = dtb_with(1, 1, &[], |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &banks[..16])
    });
    let blob = Aligned::new(&dtb);
    assert_eq!(parse(blob.bytes(), MAX32).unwrap().memory.len(), 16);
}

#[test]
fn too_many_memreserve_entries() {
    let rsv: Vec<(u64, u64)> = (0..17)
        .map(|i| (0x6000_0000 + i * 0x1_0000, 0x1000))
        .collect();
    let dtb = dtb_with(1, 1, &rsv, |w, ac, sc| {
        memory_node(w, "memory", ac, sc, &[(0x6000_0000, 0x4000_0000)])
    });
    let blob = Aligned::new(&dtb);
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::TooManyRanges { max: 16, .. }
    ));
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
fn reserved_ranges_over_capacity_is_an_error_not_a_truncation() {
    // 16 /memreserve/ entries plus an initrd: 17 reserved ranges.
    let rsv: Vec<(u64, u64)> = (0..16)
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
    assert_eq!(m.reserved_ranges(), Err(SourceError::TooManyRanges));
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

#[test]
fn node_name_length_limit_of_fdt_rs() {
    let mk = |name: &str| {
        dtb_with(1, 1, &[], |w, _, _| {
            let n = w.begin_node(name).unwrap();
            w.end_node(n).unwrap();
        })
    };
    let ok = "interrupt-controller@2c001000"; // 29 bytes
    assert_eq!(ok.len(), 29);
    let blob = Aligned::new(&mk(ok));
    assert!(parse(blob.bytes(), MAX32).is_ok());
    let blob = Aligned::new(&mk("interrupt-controller@12c001000"));
    assert!(matches!(
        parse(blob.bytes(), MAX32).unwrap_err(),
        FdtError::Parse(_)
    ));
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
            what: "memory banks",
            max: 16
        }),
        SourceError::TooManyRanges
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
    for r in &m.memory {
        assert!(r.size > 0);
        assert!(r.end() - 1 <= max);
    }
    for (i, a) in m.memory.iter().enumerate() {
        for b in &m.memory[i + 1..] {
            assert!(!a.overlaps(b));
        }
    }
    let _ = m.reserved_ranges();
    let _ = m.memory_banks();
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
        let _ = fdt_totalsize_at(&b);
        let _ = fdt_header_ok(&b);
    }
    // Both outcomes must actually occur for the loop to mean anything.
    assert!(ok > 100, "only {ok} mutants parsed");
    assert!(errs > 1000, "only {errs} mutants rejected");
}
