//! The boot flow (`flow::run`, what the guest and `cargo xtask sim` run) with a device
//! tree from r2: a tree Linux accepts is the memory source, memory and reservations
//! included, and a tree that cannot be used stops the boot with a typed outcome
//! unless its command line asks for `zonekit.fallback=board`.

use vm_fdt::{FdtReserveEntry, FdtWriter};
use zonekit_arch_arm::board::BoardDesc;
use zonekit_arch_arm::bootmem::BootError;
use zonekit_arch_arm::bootmem::{BootParams, BootedMemory};
use zonekit_arch_arm::fdt::{fdt_header_ok, FdtError};
use zonekit_arch_arm::flow::{self, BootBlob, FlowInput, FlowOutcome};
use zonekit_arch_arm::hooks::BootHooks;
use zonekit_core::memblock::{MemblockError, TableKind, INIT_MEMBLOCK_REGIONS};
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MemRange;

const MIB: u64 = 1 << 20;
/// Where QEMU puts the DTB on a 256 MiB vexpress-a9: RAM base + 128 MiB.
const DTB_AT: u64 = 0x6800_0000;

fn a9() -> &'static BoardDesc {
    &zonekit_bsp_vexpress::VEXPRESS_A9
}

/// A copy of `bytes` at an 8-byte aligned address, as a boot loader places a DTB.
struct Aligned {
    buf: Vec<u8>,
    off: usize,
    len: usize,
}

impl Aligned {
    fn new(bytes: &[u8]) -> Self {
        let mut buf = vec![0u8; bytes.len() + 8];
        let off = buf.as_ptr().align_offset(8);
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

/// A vexpress-a9 tree: `bootargs` (raw bytes, NUL added), 256 MiB at 0x60000000, a
/// `/memreserve/` page, a static reserved region at 0x61000000, and, with `overlap`,
/// a second memory node over the same RAM (which zonekit rejects).
fn tree(bootargs: &[u8], overlap: bool) -> Vec<u8> {
    tree_with(bootargs, overlap, |w| {
        let r = w.begin_node("static@61000000").unwrap();
        w.property_array_u32("reg", &[0x6100_0000, 0x1_0000])
            .unwrap();
        w.end_node(r).unwrap();
    })
}

/// [`tree`] with `reserved` writing the `/reserved-memory` children.
fn tree_with(bootargs: &[u8], overlap: bool, reserved: impl FnOnce(&mut FdtWriter)) -> Vec<u8> {
    let rsv = [FdtReserveEntry::new(0x6f00_0000, 0x1000).unwrap()];
    let mut w = FdtWriter::new_with_mem_reserv(&rsv).unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let c = w.begin_node("chosen").unwrap();
    let mut args = bootargs.to_vec();
    args.push(0);
    w.property("bootargs", &args).unwrap();
    w.end_node(c).unwrap();
    for name in ["memory@60000000", "sdram@60000000"]
        .iter()
        .take(if overlap { 2 } else { 1 })
    {
        let m = w.begin_node(name).unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u32("reg", &[0x6000_0000, 256 << 20])
            .unwrap();
        w.end_node(m).unwrap();
    }
    let rm = w.begin_node("reserved-memory").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_null("ranges").unwrap();
    reserved(&mut w);
    w.end_node(rm).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

/// What the flow booted from, seen at the end of `bootmem_init`.
#[derive(Default)]
struct Seen {
    source: Option<String>,
    cmdline: String,
    dma_zone_size: Option<u64>,
    memory: Vec<MemRange>,
    reserved: Vec<MemRange>,
    present_pages: u64,
}

impl BootHooks<VecPageStorage> for Seen {
    fn booted(&mut self, params: &BootParams<'_>, booted: &BootedMemory<VecPageStorage>) {
        self.source = Some(params.source.name().to_string());
        self.cmdline = params.cmdline.to_string();
        self.dma_zone_size = params.dma_zone_size;
        self.present_pages = booted.node.node_present_pages;
        self.memory = booted
            .memblock
            .memory
            .regions()
            .iter()
            .map(|r| MemRange::new(r.base, r.size))
            .collect();
        self.reserved = booted.memblock.reserved_ranges().collect();
    }
}

fn boot(blob: Result<&[u8], FdtError>) -> (FlowOutcome, Seen) {
    let board = a9();
    let input = FlowInput {
        board,
        r1: board.machine_id,
        r2: DTB_AT as u32,
        blob: BootBlob::Dtb { addr: DTB_AT, blob },
        kernel_image: MemRange::new(board.load_address(), MIB),
    };
    let mut seen = Seen::default();
    let outcome = flow::run(input, VecPageStorage::default(), &mut seen);
    (outcome, seen)
}

/// `r` lies inside one of `ranges`.
fn covered(r: MemRange, ranges: &[MemRange]) -> bool {
    ranges
        .iter()
        .any(|x| x.base <= r.base && r.end() <= x.end())
}

#[test]
fn dtb_latin1_bootargs_boot_uses_tree_memory_and_reservations() {
    // "café" in Latin-1 (0xe9), then parameters that must still apply.
    let blob = Aligned::new(&tree(b"console=ttyAMA0 caf\xe9 vmalloc=256M", false));
    let (outcome, seen) = boot(Ok(blob.bytes()));
    assert_eq!(outcome, FlowOutcome::Passed);
    assert_eq!(seen.source.as_deref(), Some("DTB"));
    assert_eq!(seen.memory, [MemRange::new(0x6000_0000, 256 * MIB)]);
    assert_eq!(seen.cmdline, "console=ttyAMA0 caf\u{fffd} vmalloc=256M");
    for r in [
        MemRange::new(0x6100_0000, 0x1_0000), // /reserved-memory
        MemRange::new(0x6f00_0000, 0x1000),   // /memreserve/
        MemRange::new(DTB_AT, blob.bytes().len() as u64), // the blob itself
    ] {
        assert!(
            covered(r, &seen.reserved),
            "{r} not reserved: {:x?}",
            seen.reserved
        );
    }
}

#[test]
fn rejected_dtb_stops_boot_without_fallback() {
    // Overlapping memory nodes: a usable structure, an unusable memory description.
    let blob = Aligned::new(&tree(b"console=ttyAMA0", true));
    let (outcome, seen) = boot(Ok(blob.bytes()));
    assert!(
        matches!(
            outcome,
            FlowOutcome::DtbRejected {
                addr: DTB_AT,
                error: FdtError::OverlappingBanks { .. }
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(outcome.exit_code(), flow::EXIT_BOOT_ERROR);
    assert!(outcome.to_string().contains("memory banks overlap"));
    assert!(seen.source.is_none(), "booted from {:?}", seen.source);

    // A damaged structure block: even a fallback request in it cannot be trusted.
    let mut bad = tree(b"zonekit.fallback=board", false);
    let h = fdt_header_ok(&bad).unwrap();
    // The structure block's last word, FDT_END, becomes an unknown token.
    let at = (h.off_dt_struct + h.size_dt_struct - 4) as usize;
    bad[at..at + 4].copy_from_slice(&0x77u32.to_be_bytes());
    let blob = Aligned::new(&bad);
    let (outcome, seen) = boot(Ok(blob.bytes()));
    assert!(
        matches!(
            outcome,
            FlowOutcome::DtbRejected {
                error: FdtError::Parse(_),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(seen.source.is_none());

    // A blob that could not even be read (r2's header says more than RAM holds).
    let (outcome, _) = boot(Err(FdtError::Truncated {
        need: 1 << 30,
        have: 64,
    }));
    assert!(matches!(
        outcome,
        FlowOutcome::DtbRejected {
            error: FdtError::Truncated { .. },
            ..
        }
    ));
}

#[test]
fn rejected_dtb_falls_back_to_board_map_when_asked() {
    let blob = Aligned::new(&tree(b"console=ttyAMA0 zonekit.fallback=board", true));
    let (outcome, seen) = boot(Ok(blob.bytes()));
    assert_eq!(outcome, FlowOutcome::Passed);
    assert_eq!(seen.source.as_deref(), Some("board map"));
    let board = a9();
    assert_eq!(
        seen.memory,
        [MemRange::new(board.ram_base, board.default_ram)]
    );
    // The tree's command line still applies, and the blob it is read from stays
    // reserved; the tree's own reservations are not used.
    assert_eq!(seen.cmdline, "console=ttyAMA0 zonekit.fallback=board");
    assert!(covered(
        MemRange::new(DTB_AT, blob.bytes().len() as u64),
        &seen.reserved
    ));
    assert!(!covered(
        MemRange::new(0x6100_0000, 0x1_0000),
        &seen.reserved
    ));
}

/// A kernel's own memory description (issue 10: "the guest entry accepts the OS's own
/// memory source") is used instead of anything at r2, through the same pipeline.
#[test]
fn kernel_memory_source_is_used_instead_of_r2() {
    let board = a9();
    let mut map = zonekit_core::source::StaticMemoryMap::single_bank(0x6000_0000, 96 * MIB);
    map.reserved
        .push(MemRange::new(0x6400_0000, 0x10_0000))
        .unwrap();
    let input = FlowInput {
        board,
        r1: board.machine_id,
        r2: 0,
        blob: BootBlob::Given {
            source: &map,
            cmdline: "console=ttyAMA0 vmalloc=256M",
        },
        kernel_image: MemRange::new(board.load_address(), MIB),
    };
    let mut seen = Seen::default();
    let outcome = flow::run(input, VecPageStorage::default(), &mut seen);
    assert_eq!(outcome, FlowOutcome::Passed);
    assert_eq!(seen.source.as_deref(), Some("board map"));
    assert_eq!(seen.memory, [MemRange::new(0x6000_0000, 96 * MIB)]);
    // The kernel's command line, and the board's DMA zone size (none on vexpress).
    assert_eq!(seen.cmdline, "console=ttyAMA0 vmalloc=256M");
    assert_eq!(seen.dma_zone_size, board.dma_zone_size);
    assert!(covered(
        MemRange::new(0x6400_0000, 0x10_0000),
        &seen.reserved
    ));
}

/// A vexpress-a9 tree with one `/memory@...` node per range, `bootargs` as given.
fn tree_with_banks(banks: &[MemRange], bootargs: &str) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let c = w.begin_node("chosen").unwrap();
    w.property_string("bootargs", bootargs).unwrap();
    w.end_node(c).unwrap();
    for b in banks {
        let m = w.begin_node(&format!("memory@{:x}", b.base)).unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u32("reg", &[b.base as u32, b.size as u32])
            .unwrap();
        w.end_node(m).unwrap();
    }
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

/// 200 `/memory` ranges of `size` bytes, every `stride` bytes from the RAM base.
fn ranges_200(stride: u64, size: u64) -> Vec<MemRange> {
    (0..200)
        .map(|i| MemRange::new(0x6000_0000 + i * stride, size))
        .collect()
}

/// More `/memory` ranges than memblock's table holds boot when memblock merges them
/// (Linux's memblock_add does the same): no source-side cap.
#[test]
fn dtb_with_200_adjacent_memory_ranges_boots() {
    let banks = ranges_200(MIB, MIB);
    assert!(banks.len() > INIT_MEMBLOCK_REGIONS);
    let blob = Aligned::new(&tree_with_banks(&banks, "console=ttyAMA0"));
    let (outcome, seen) = boot(Ok(blob.bytes()));
    assert_eq!(outcome, FlowOutcome::Passed);
    assert_eq!(seen.source.as_deref(), Some("DTB"));
    assert_eq!(seen.cmdline, "console=ttyAMA0");
    // One merged region of 200 MiB; the node and its zones present every page.
    assert_eq!(seen.memory, [MemRange::new(0x6000_0000, 200 * MIB)]);
    assert_eq!(seen.present_pages, 200 * MIB / 4096);
    assert!(covered(
        MemRange::new(DTB_AT, blob.bytes().len() as u64),
        &seen.reserved
    ));
}

/// 200 separate ranges overflow memblock.memory (INIT_MEMBLOCK_REGIONS, not resizable
/// at that point of the boot, as in Linux): a typed error naming the table and its
/// limit, never a silent truncation.
#[test]
fn dtb_with_200_disjoint_memory_ranges_is_a_memblock_table_full_error() {
    // 1.5 MiB every 2 MiB: the first holds the image, the DTB lies in another.
    let banks = ranges_200(2 * MIB, 3 * MIB / 2);
    let blob = Aligned::new(&tree_with_banks(&banks, ""));
    let (outcome, seen) = boot(Ok(blob.bytes()));
    let full = MemblockError::TableFull {
        table: TableKind::Memory,
        capacity: INIT_MEMBLOCK_REGIONS,
    };
    assert_eq!(outcome, FlowOutcome::BootFailed(BootError::Memblock(full)));
    assert_eq!(outcome.exit_code(), flow::EXIT_BOOT_ERROR);
    assert_eq!(
        outcome.to_string(),
        "boot failed: memblock: memblock.memory is full (128 regions) and cannot be resized"
    );
    assert!(seen.source.is_none());
    // INIT_MEMBLOCK_REGIONS separate ranges still fit.
    let blob = Aligned::new(&tree_with_banks(&banks[..INIT_MEMBLOCK_REGIONS], ""));
    let (outcome, seen) = boot(Ok(blob.bytes()));
    assert_eq!(outcome, FlowOutcome::Passed);
    assert_eq!(seen.memory.len(), INIT_MEMBLOCK_REGIONS);
}

/// The flow on tag list `words` (little-endian) at 0x60000100.
fn boot_atags(words: &[u32]) -> (FlowOutcome, Seen) {
    let board = a9();
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let input = FlowInput {
        board,
        r1: board.machine_id,
        r2: 0x6000_0100,
        blob: BootBlob::Atags {
            addr: 0x6000_0100,
            bytes: &bytes,
        },
        kernel_image: MemRange::new(board.load_address(), MIB),
    };
    let mut seen = Seen::default();
    let outcome = flow::run(input, VecPageStorage::default(), &mut seen);
    (outcome, seen)
}

/// A tag list that starts with ATAG_CORE but cannot be read whole stops the boot,
/// as a rejected DTB does; memory without ATAG_CORE is "no ATAGS" (Linux's
/// default tags): the board map.
#[test]
fn malformed_atags_stop_the_boot_and_no_atags_is_the_board_map() {
    const CORE: [u32; 2] = [2, 0x5441_0001];
    let mem = |start: u32, size: u32| [4, 0x5441_0002, size, start];
    let list: Vec<u32> = [
        &CORE[..],
        &mem(0x6000_0000, 0x1000_0000),
        &mem(0x6800_0000, 0x1000_0000),
        &[0, 0],
    ]
    .concat();
    let (outcome, seen) = boot_atags(&list);
    assert!(
        matches!(
            outcome,
            FlowOutcome::AtagsRejected {
                addr: 0x6000_0100,
                error: zonekit_arch_arm::atags::AtagsError::OverlappingBanks { .. }
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(outcome.exit_code(), flow::EXIT_BOOT_ERROR);
    assert!(outcome
        .to_string()
        .starts_with("boot failed: ATAGS at 0x60000100 rejected: "));
    assert!(seen.source.is_none(), "booted from {:?}", seen.source);

    let good: Vec<u32> = [&CORE[..], &mem(0x6000_0000, 0x1000_0000), &[0, 0]].concat();
    let (outcome, seen) = boot_atags(&good);
    assert_eq!(outcome, FlowOutcome::Passed);
    assert_eq!(seen.source.as_deref(), Some("ATAGS"));

    let (outcome, seen) = boot_atags(&[0xdead_beef; 8]);
    assert_eq!(outcome, FlowOutcome::Passed);
    assert_eq!(seen.source.as_deref(), Some("board map"));
}

/// A vexpress-a9 tree ([`tree_with`]) whose one `/reserved-memory` child is a
/// dynamic pool of 1 MiB aligned to `align`.
fn tree_with_pool(align: u32) -> Vec<u8> {
    tree_with(b"", false, |w| {
        let p = w.begin_node("pool").unwrap();
        w.property_u32("size", 0x10_0000).unwrap();
        w.property_u32("alignment", align).unwrap();
        w.end_node(p).unwrap();
    })
}

/// A dynamic reservation's alignment must be a power of two: anything else stops
/// the boot naming it (not as "no room").
#[test]
fn reservation_alignment_not_a_power_of_two_is_named() {
    let blob = Aligned::new(&tree_with_pool(0x40_0000));
    let (outcome, seen) = boot(Ok(blob.bytes()));
    assert_eq!(outcome, FlowOutcome::Passed);
    assert!(seen
        .reserved
        .iter()
        .any(|r| r.size == 0x10_0000 && r.base % 0x40_0000 == 0));

    let blob = Aligned::new(&tree_with_pool(0x3000));
    let (outcome, seen) = boot(Ok(blob.bytes()));
    assert_eq!(outcome.exit_code(), flow::EXIT_BOOT_ERROR, "{outcome}");
    assert!(
        outcome
            .to_string()
            .contains("alignment is not a power of two"),
        "{outcome}"
    );
    assert!(seen.source.is_none());
}
