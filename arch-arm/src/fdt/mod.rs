//! Device-tree (FDT) memory discovery: Linux's `setup_machine_fdt` →
//! `early_init_dt_scan_memory`, `early_init_fdt_scan_reserved_mem` and
//! `early_init_dt_scan_chosen`, as data.
//!
//! [`FdtMemory::parse`] reads a flattened device tree and reports what Linux would feed
//! to memblock: the DRAM banks of every `device_type = "memory"` node, the header's
//! `/memreserve/` block, the static and dynamic `/reserved-memory` children, the initrd
//! and the command line from `/chosen`. [`FdtMemory`] is a [`MemorySource`].
//!
//! # Our own structure walk
//!
//! The blob is walked by [`FdtTokens`], a bounds-checked token reader in safe code
//! (libfdt's `fdt_next_tag`), not by a crate: fdt-rs 0.4, used before, cannot tokenize
//! node names longer than 29 bytes and insists on UTF-8 where Linux reads bytes, so it
//! rejected blobs Linux boots. No `unsafe` is needed anywhere in this module.
//!
//! # Validate before trusting
//!
//! Before any property is interpreted, this module checks:
//!
//! * the header ([`fdt_header_ok`]): magic, version (≥ 16, `last_comp_version` ≤ 17 and
//!   ≤ `version`), `totalsize` within the bytes given, every block offset past the
//!   header and inside `totalsize`, the structure and strings blocks not overlapping
//!   each other or the `/memreserve/` block, the `/memreserve/` block 8-byte aligned and
//!   the structure block 4-byte aligned;
//! * the buffer itself is 4-byte aligned (the format is made of big-endian words; boot
//!   loaders place the blob 8-byte aligned, as Linux's boot protocol asks);
//! * the `/memreserve/` block is terminated before the next block;
//! * the whole structure block: every token known and inside `size_dt_struct`, node
//!   names NUL-terminated, property values inside the block, property names inside the
//!   strings block, nodes balanced, properties before subnodes, exactly one root node
//!   and an `FDT_END`.
//!
//! Anything else is an [`FdtError`]; nothing panics and nothing is silently dropped.
//! Banks and fixed reservations are not copied into lists: they are read again from
//! the validated blob when used ([`FdtMemory::ranges`]), so a tree may have any number
//! of them (memblock's table is the limit, as in Linux). Only what Linux bounds is
//! kept in a list, and an entry beyond it is [`FdtError::TooManyRanges`]: dynamic
//! reservations, `alloc-ranges`, CMA pools.
//!
//! Names and strings are bytes, as in Linux: a node name of any length, and bytes that
//! are not UTF-8 in a node name or in any string property, are accepted. zonekit
//! compares the strings it reads (`device_type`, `status`) byte for byte, as Linux's
//! `strcmp` does, and keeps `/chosen/bootargs` as bytes with a text view
//! ([`Bootargs`]).
//!
//! # Choices, compared with Linux
//!
//! * Only children of the root are memory nodes (as Linux ≥ 5.x's
//!   `early_init_dt_scan_memory`), using the root's `#address-cells`/`#size-cells`
//!   (default 1/1 when absent, as Linux). Cells other than 1 or 2 are
//!   [`FdtError::BadCells`]. `linux,usable-memory` is not consulted.
//! * `/chosen` and `/reserved-memory` are found as Linux 6.1 finds them, with libfdt's
//!   `fdt_path_offset("/chosen")` (then `"/chosen@0"`, which the first lookup already
//!   covers): the first child of the root named `chosen` or `chosen@<anything>`, in
//!   tree order. Later nodes of the same name are ignored, with a warning
//!   ([`FdtWarning::DuplicateNode`]), and scanned only as possible memory nodes, as
//!   Linux's `early_init_dt_scan_memory` scans every child of the root.
//! * `/chosen/bootargs` is taken as Linux's `strscpy(cmdline, p, min(len,
//!   COMMAND_LINE_SIZE))` takes it: at most [`COMMAND_LINE_SIZE`]` - 1` bytes, up to
//!   the first NUL (a warning when it is cut). Bytes that are not UTF-8 stay in
//!   [`Bootargs::as_bytes`]; [`Bootargs::as_str`] (the command line zonekit parses)
//!   shows each invalid sequence as U+FFFD, with a warning, so every parameter around
//!   it keeps working.
//! * A node is available when it has no `status`, or `status` is `"okay"` or `"ok"`
//!   (`of_fdt_device_is_available`); unavailable nodes are skipped with a warning.
//! * Zero-sized `reg` entries are skipped with a [`FdtWarning`] (Linux skips them
//!   silently).
//! * Banks are kept exactly as the DTB gives them, unaligned ones included. Linux's
//!   `early_init_dt_add_memory_arch` page-rounds them before `memblock_add`; zonekit
//!   leaves that to the consumer of the [`MemorySource`] (memblock/boot flow).
//! * Banks above `phys_addr_max` are dropped and reported by [`FdtMemory::dropped`];
//!   a bank crossing it is truncated to end at `phys_addr_max + 1` and the cut-off part
//!   is listed there too (Linux: `OF: fdt: Ignoring memory range 0x100000000 -
//!   0x180000000`). Each is also logged with `log::warn!` in Linux's words.
//! * Overlapping memory banks are an error ([`FdtError::OverlappingBanks`]). Linux would
//!   merge them silently in memblock; a DTB that describes the same RAM twice is
//!   almost always a mistake (e.g. both a `memory` and a `memory@80000000` node), so it
//!   is made visible. Banks that merely touch are fine.
//! * Reserved ranges are kept even when they lie outside RAM (they are reservations;
//!   memblock tolerates them) and are not clipped to `phys_addr_max`.
//! * `/memreserve/` ends at the all-zero entry (the specification's terminator); an
//!   entry with size 0 but a non-zero address is skipped with a warning (Linux stops
//!   there).
//! * `/reserved-memory` must have `#address-cells`/`#size-cells` equal to the root's
//!   and a `ranges` property (`__reserved_mem_check_root`); Linux ignores the whole
//!   node otherwise, zonekit reports [`FdtError::BadCells`] / [`FdtError::Parse`].
//! * Property lengths that are not a whole number of entries are
//!   [`FdtError::BadPropLen`] (Linux ignores the trailing cells of a memory `reg`).
//! * The [`MemorySource`] impl reports `/memreserve/`, the static `/reserved-memory`
//!   children without `no-map`, the initrd and the blob as [`Region::Reserved`] (in
//!   that order, Linux's), the `no-map` children as [`Region::NoMap`]
//!   (`memblock_mark_nomap`), CMA pools as [`Region::Cma`] and dynamic children as
//!   [`Region::Request`].

use core::fmt;
use core::ops::Range;

use zonekit_core::addr::{MemRange, PhysAddr};
use zonekit_core::cma::MAX_CMA_AREAS;
use zonekit_core::source::{
    CmaRegion, MemorySource, Region, RegionSink, ReservationRequest, SourceError,
};

mod blob;
mod bootargs;
mod error;
mod ranges;
mod scan;

pub use blob::{fdt_header_ok, fdt_string, fdt_totalsize_at, FdtHeader, FdtToken, FdtTokens};
pub use bootargs::{chosen_bootargs, Bootargs};
pub use error::{FdtError, FdtWarning};
pub use ranges::{FdtRange, FdtRanges};
#[allow(unused_imports)] // the crate-private helpers, for the submodules and tests
use {blob::*, bootargs::*, scan::*};

/// The FDT magic number (stored big-endian at offset 0).
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Size of a version-17 header; [`fdt_totalsize_at`] needs this many bytes.
pub const FDT_HEADER_SIZE: usize = 40;
/// Size of a version-16 header (no `size_dt_struct`).
const FDT_V16_HEADER_SIZE: usize = 36;
/// Oldest accepted `version`.
pub const FDT_MIN_VERSION: u32 = 16;
/// Newest accepted `last_comp_version`.
pub const FDT_MAX_LAST_COMP_VERSION: u32 = 17;
/// ARM's `COMMAND_LINE_SIZE`: Linux keeps at most this many bytes of `bootargs`,
/// the terminating NUL included.
pub const COMMAND_LINE_SIZE: usize = 1024;
/// Most `/reserved-memory` children with `size` (dynamic reservations) kept.
pub const MAX_DYNAMIC_RESERVATIONS: usize = 8;
/// Most `alloc-ranges` entries per dynamic reservation.
pub const MAX_ALLOC_RANGES: usize = 4;
/// Most warnings kept; later ones are counted in [`FdtMemory::warnings_lost`].
pub const MAX_WARNINGS: usize = 16;

/// A `/reserved-memory` child with `size` instead of `reg`: memory the kernel must
/// allocate and set aside (Linux's `__reserved_mem_alloc_size`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicReservation<'a> {
    /// Node name (e.g. `linux,cma`).
    pub name: &'a str,
    /// Bytes to reserve.
    pub size: u64,
    /// Required alignment, when given.
    pub alignment: Option<u64>,
    /// Where the allocation may be placed (empty: anywhere).
    pub alloc_ranges: heapless::Vec<MemRange, MAX_ALLOC_RANGES>,
    /// `no-map`: remove from the linear map (`memblock_mark_nomap`).
    pub no_map: bool,
    /// `reusable`: the kernel may use it until the owner claims it (CMA).
    pub reusable: bool,
    /// A CMA pool: `compatible = "shared-dma-pool"`, `reusable`, no `no-map`
    /// (what Linux's `rmem_cma_setup` accepts).
    pub cma: bool,
    /// `linux,cma-default`: the pool serves as the global CMA area (no `cma=` area).
    pub cma_default: bool,
}

/// Everything memory-related a device tree says, as Linux's early FDT scan finds it.
#[derive(Clone, Debug)]
pub struct FdtMemory<'a> {
    /// The validated header.
    pub header: FdtHeader,
    /// The root's `#address-cells` (1 when absent).
    pub address_cells: u32,
    /// The root's `#size-cells` (1 when absent).
    pub size_cells: u32,
    /// `/reserved-memory` children with `reg` that are CMA pools (see
    /// [`DynamicReservation::cma`]): (range, `linux,cma-default`). Also in
    /// [`FdtMemory::reserved_static`].
    pub cma_static: heapless::Vec<(MemRange, bool), MAX_CMA_AREAS>,
    /// `/reserved-memory` children with `size`.
    pub reserved_dynamic: heapless::Vec<DynamicReservation<'a>, MAX_DYNAMIC_RESERVATIONS>,
    /// `[linux,initrd-start, linux,initrd-end)` from `/chosen`.
    pub initrd: Option<MemRange>,
    /// `/chosen/bootargs` (up to its first NUL, as Linux copies it).
    pub bootargs: Option<Bootargs<'a>>,
    /// The blob itself `[phys, phys + totalsize)`, when its physical address was given
    /// (Linux's `early_init_fdt_reserve_self`).
    pub blob: Option<MemRange>,
    /// Survivable oddities, in the order found.
    pub warnings: heapless::Vec<FdtWarning<'a>, MAX_WARNINGS>,
    /// Warnings beyond [`MAX_WARNINGS`] (counted, not kept).
    pub warnings_lost: usize,
    /// The validated blob, `totalsize` bytes (banks and reservations are read from it).
    bytes: &'a [u8],
    /// Memory above this is [`FdtMemory::dropped`].
    phys_addr_max: PhysAddr,
}

impl FdtMemory<'_> {
    /// The kernel command line (`/chosen/bootargs`, empty if absent), for the boot
    /// parameters.
    pub fn cmdline(&self) -> &str {
        self.bootargs.as_ref().map_or("", Bootargs::as_str)
    }
}

impl MemorySource for FdtMemory<'_> {
    fn name(&self) -> &str {
        "DTB"
    }

    /// The parser already dropped or truncated banks past `phys_addr_max`, as
    /// `early_init_dt_add_memory_arch` does.
    fn banks_via_arm_add_memory(&self) -> bool {
        false
    }

    /// One walk of the tree: banks, static reservations and `no-map` children come
    /// from the same pass; `/memreserve/` is reported first, the initrd and the blob
    /// last, so the reservations keep Linux's order.
    fn for_each_region<'s>(&'s self, sink: &mut RegionSink<'s, '_>) -> Result<(), SourceError> {
        self.memreserve()
            .map(Region::Reserved)
            .try_for_each(&mut *sink)?;
        for r in self.ranges() {
            sink(match r {
                FdtRange::Bank(b) => Region::Memory(b),
                FdtRange::Dropped(_) => continue,
                FdtRange::Reserved {
                    range,
                    no_map: false,
                } => Region::Reserved(range),
                FdtRange::Reserved {
                    range,
                    no_map: true,
                } => Region::NoMap(range),
            })?;
        }
        for r in self.initrd.iter().chain(self.blob.iter()) {
            sink(Region::Reserved(*r))?;
        }
        for &(range, default) in &self.cma_static {
            sink(Region::Cma(CmaRegion { range, default }))?;
        }
        for d in &self.reserved_dynamic {
            sink(Region::Request(ReservationRequest {
                name: d.name,
                size: d.size,
                align: d.alignment,
                alloc_ranges: d.alloc_ranges.iter().copied().collect(),
                no_map: d.no_map,
                cma: d.cma,
                cma_default: d.cma_default,
            }))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Structure-block cases no FDT writer will produce, built token by token; the
    //! DTB-level suite is in `tests/tests/fdt.rs`.
    use super::*;
    use std::vec::Vec;

    /// A raw FDT: header, empty `/memreserve/`, the given structure words, strings.
    fn raw(words: &[u32], strings: &[u8]) -> Vec<u8> {
        let off_struct = 56u32;
        let size_struct = 4 * words.len() as u32;
        let off_strings = off_struct + size_struct;
        let total = off_strings + strings.len() as u32;
        let mut b = Vec::new();
        for w in [
            FDT_MAGIC,
            total,
            off_struct,
            off_strings,
            40,
            17,
            16,
            0,
            strings.len() as u32,
            size_struct,
        ] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(&[0; 16]);
        for w in words {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(strings);
        b
    }

    /// Parses `bytes` from an 8-byte aligned copy.
    fn parse_aligned(bytes: &[u8]) -> Result<(), FdtError> {
        let mut flat: Vec<u8> = std::vec![0; bytes.len() + 8];
        let off = flat.as_ptr().align_offset(8);
        flat[off..off + bytes.len()].copy_from_slice(bytes);
        FdtMemory::parse(&flat[off..off + bytes.len()], u32::MAX as u64).map(|_| ())
    }

    const B: u32 = FDT_BEGIN_NODE;
    const E: u32 = FDT_END_NODE;
    const P: u32 = FDT_PROP;
    const END: u32 = FDT_END;

    #[test]
    fn minimal_tree_parses() {
        // Root "" (name word 0), a property "a" = <1>, end.
        let blob = raw(&[B, 0, P, 4, 0, 1, E, END], b"a\0");
        assert_eq!(parse_aligned(&blob), Ok(()));
    }

    #[test]
    fn structural_errors_are_typed() {
        let cases: [(&[u32], &str); 8] = [
            (&[P, 4, 0, 1, END], "property outside any node"),
            (
                &[B, 0, B, 0, E, P, 4, 0, 1, E, END],
                "property after a subnode",
            ),
            (&[B, 0, E, B, 0, E, END], "more than one root node"),
            (&[E, END], "FDT_END_NODE without a node"),
            (&[B, 0, END], "FDT_END inside a node"),
            (&[END], "no root node"),
            (
                &[B, 0, P, 4, 7, 1, E, END],
                "property name offset past the strings block",
            ),
            (
                &[B, 0, P, 64, 0, 1, E, END],
                "property value past the structure block",
            ),
        ];
        for (words, why) in cases {
            assert_eq!(
                parse_aligned(&raw(words, b"a\0")),
                Err(FdtError::Parse(why))
            );
        }
    }

    #[test]
    fn unterminated_name_and_strings() {
        // Node name running to the end of the structure block.
        let blob = raw(&[B, 0x6162_6364], b"a\0");
        assert_eq!(
            parse_aligned(&blob),
            Err(FdtError::Parse("unterminated node name"))
        );
        // Property name without NUL inside the strings block.
        let blob = raw(&[B, 0, P, 4, 0, 1, E, END], b"ab");
        assert_eq!(
            parse_aligned(&blob),
            Err(FdtError::Parse(
                "property name not terminated in the strings block"
            ))
        );
    }

    #[test]
    fn header_helpers() {
        let blob = raw(&[B, 0, E, END], b"");
        assert_eq!(fdt_totalsize_at(&blob), Some(blob.len() as u32));
        let h = fdt_header_ok(&blob).unwrap();
        assert_eq!(h.struct_block(), 56..72);
        assert_eq!(h.strings_block(), 72..72);
        assert_eq!(h.header_size(), FDT_HEADER_SIZE);
        assert!(node_name_matches(b"chosen@0", b"chosen"));
        assert!(node_name_matches(b"chosen", b"chosen"));
        assert!(!node_name_matches(b"chosenx", b"chosen"));
        assert!(!node_name_matches(b"chose", b"chosen"));
        assert_eq!(be64(&[0, 0, 0, 1, 0, 0, 0, 2], 0), Some((1 << 32) | 2));
        assert_eq!(be32(&[1, 2, 3], 0), None);
    }
}
