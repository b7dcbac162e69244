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
//! Anything else is an [`FdtError`]; nothing panics and nothing is silently dropped
//! (ranges beyond a list's capacity are [`FdtError::TooManyRanges`]).
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
//! * Banks above `phys_addr_max` are dropped and listed in [`FdtMemory::dropped`];
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
//! * `reserved_ranges()` of the [`MemorySource`] impl includes `no-map` regions (they
//!   must never be allocated either); a consumer that wants Linux's exact
//!   `memblock_mark_nomap` uses [`FdtMemory::reserved_static`].

use core::fmt;
use core::ops::Range;

use zonekit_core::addr::{MemRange, PhysAddr};
use zonekit_core::cma::MAX_CMA_AREAS;
use zonekit_core::source::{
    validate_ranges, CmaRegion, MemorySource, RangeList, ReservationRequest, SourceError,
    MAX_RESERVATION_REQUESTS, MAX_SOURCE_RANGES,
};

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

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Why a device tree blob was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// Fewer bytes are available than the header or `totalsize` needs.
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The first word is not [`FDT_MAGIC`].
    BadMagic {
        /// The word found (big-endian decoded).
        found: u32,
    },
    /// `version` < 16, `last_comp_version` > 17, or `version` < `last_comp_version`.
    BadVersion {
        /// `version` field.
        version: u32,
        /// `last_comp_version` field.
        last_comp_version: u32,
    },
    /// A header offset/size points into the header, past `totalsize`, or into another
    /// block.
    BadOffset {
        /// Which field, and how.
        what: &'static str,
    },
    /// A block offset (or the buffer itself) is not aligned as the format requires.
    Unaligned {
        /// Which offset.
        what: &'static str,
        /// Its value.
        value: usize,
    },
    /// `#address-cells` / `#size-cells` not 1 or 2, or not matching where they must.
    BadCells {
        /// Which property.
        what: &'static str,
        /// Its value.
        value: u32,
    },
    /// A property's length is not what its format requires.
    BadPropLen {
        /// Which property.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// More entries than a fixed-capacity list holds. Nothing is dropped silently.
    TooManyRanges {
        /// Which list.
        what: &'static str,
        /// Its capacity.
        max: usize,
    },
    /// Two memory banks share bytes.
    OverlappingBanks {
        /// The earlier bank (in DTB order).
        first: MemRange,
        /// The later bank.
        second: MemRange,
    },
    /// `base + size` overflows 64 bits.
    Overflow {
        /// Where the range came from.
        what: &'static str,
        /// Base.
        base: u64,
        /// Size.
        size: u64,
    },
    /// `linux,initrd-end` is below `linux,initrd-start`.
    BadInitrd {
        /// Start.
        start: u64,
        /// End.
        end: u64,
    },
    /// The structure block (or a property value) is malformed; the text says how.
    Parse(&'static str),
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdtError::Truncated { need, have } => {
                write!(f, "FDT truncated: need {need} bytes, have {have}")
            }
            FdtError::BadMagic { found } => {
                write!(
                    f,
                    "bad FDT magic {found:#010x} (expected {FDT_MAGIC:#010x})"
                )
            }
            FdtError::BadVersion {
                version,
                last_comp_version,
            } => write!(
                f,
                "unsupported FDT version {version} (last compatible {last_comp_version})"
            ),
            FdtError::BadOffset { what } => write!(f, "bad FDT header: {what}"),
            FdtError::Unaligned { what, value } => {
                write!(f, "FDT {what} {value:#x} is misaligned")
            }
            FdtError::BadCells { what, value } => {
                write!(f, "unsupported {what} = {value} (must be 1 or 2)")
            }
            FdtError::BadPropLen { what, len } => {
                write!(f, "property {what} has invalid length {len}")
            }
            FdtError::TooManyRanges { what, max } => {
                write!(f, "too many {what} in the FDT (at most {max} supported)")
            }
            FdtError::OverlappingBanks { first, second } => {
                write!(f, "memory banks overlap: {first} and {second}")
            }
            FdtError::Overflow { what, base, size } => {
                write!(f, "{what} range {base:#x}+{size:#x} overflows 64 bits")
            }
            FdtError::BadInitrd { start, end } => {
                write!(f, "initrd end {end:#x} is below its start {start:#x}")
            }
            FdtError::Parse(why) => write!(f, "malformed FDT: {why}"),
        }
    }
}

impl From<FdtError> for SourceError {
    fn from(e: FdtError) -> SourceError {
        match e {
            FdtError::TooManyRanges { .. } => SourceError::TooManyRanges,
            FdtError::Overflow { base, size, .. } => SourceError::Overflow { base, size },
            FdtError::Truncated { .. } => SourceError::Malformed("FDT truncated"),
            FdtError::BadMagic { .. } => SourceError::Malformed("bad FDT magic"),
            FdtError::BadVersion { .. } => SourceError::Malformed("unsupported FDT version"),
            FdtError::BadOffset { what } => SourceError::Malformed(what),
            FdtError::Unaligned { what, .. } => SourceError::Malformed(what),
            FdtError::BadCells { what, .. } => SourceError::Malformed(what),
            FdtError::BadPropLen { what, .. } => SourceError::Malformed(what),
            FdtError::OverlappingBanks { .. } => {
                SourceError::Malformed("overlapping memory banks in FDT")
            }
            FdtError::BadInitrd { .. } => SourceError::Malformed("initrd end below start"),
            FdtError::Parse(why) => SourceError::Malformed(why),
        }
    }
}

/// Something odd but survivable found while parsing; Linux would mostly skip it
/// silently or with a `pr_warn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtWarning<'a> {
    /// A memory `reg` entry with size 0 was skipped.
    ZeroSizedBank {
        /// Node name.
        node: &'a str,
        /// Base of the entry.
        base: u64,
    },
    /// A reservation (`/memreserve/`, `/reserved-memory` `reg` or `size`) with size 0
    /// was skipped.
    ZeroSizedReservation {
        /// Node name (`"/memreserve/"` for the header block).
        node: &'a str,
        /// Base of the entry (0 for a dynamic one).
        base: u64,
    },
    /// A memory or reserved-memory node with a `status` other than okay was skipped.
    DisabledNode {
        /// Node name.
        node: &'a str,
    },
    /// A memory node without `reg`.
    MemoryNodeWithoutReg {
        /// Node name.
        node: &'a str,
    },
    /// A `/reserved-memory` child with neither `reg` nor `size`.
    ReservedNodeWithoutRegOrSize {
        /// Node name.
        node: &'a str,
    },
    /// Memory above `phys_addr_max` was dropped (the range is also in
    /// [`FdtMemory::dropped`]).
    IgnoredMemory {
        /// The dropped part.
        range: MemRange,
    },
    /// Only one of `linux,initrd-start` / `linux,initrd-end` is present.
    IncompleteInitrd,
    /// `linux,initrd-start` equals `linux,initrd-end`.
    EmptyInitrd {
        /// The start (= end).
        start: u64,
    },
    /// A second child of the root named `chosen[@...]` or `reserved-memory[@...]`:
    /// Linux uses the first one only, and so does zonekit.
    DuplicateNode {
        /// The ignored node's name.
        node: &'a str,
    },
    /// `/chosen/bootargs` holds bytes that are not UTF-8; the command line shows each
    /// invalid sequence as U+FFFD (the parameters around it still apply).
    BootargsNotUtf8,
    /// `/chosen/bootargs` has no NUL within [`COMMAND_LINE_SIZE`] bytes: cut as Linux
    /// cuts it, to this many bytes.
    BootargsTruncated {
        /// Bytes kept.
        kept: usize,
    },
}

impl fmt::Display for FdtWarning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdtWarning::ZeroSizedBank { node, base } => {
                write!(
                    f,
                    "OF: fdt: {node}: skipping zero-sized memory at {base:#x}"
                )
            }
            FdtWarning::ZeroSizedReservation { node, base } => {
                write!(
                    f,
                    "OF: fdt: {node}: skipping zero-sized reservation at {base:#x}"
                )
            }
            FdtWarning::DisabledNode { node } => {
                write!(f, "OF: fdt: {node}: not available, skipped")
            }
            FdtWarning::MemoryNodeWithoutReg { node } => {
                write!(f, "OF: fdt: {node}: memory node without reg")
            }
            FdtWarning::ReservedNodeWithoutRegOrSize { node } => {
                write!(f, "OF: reserved mem: {node}: neither reg nor size, ignored")
            }
            FdtWarning::IgnoredMemory { range } => write!(
                f,
                "OF: fdt: Ignoring memory range {:#x} - {:#x}",
                range.base,
                range.end()
            ),
            FdtWarning::IncompleteInitrd => write!(
                f,
                "OF: fdt: only one of linux,initrd-start/linux,initrd-end, initrd ignored"
            ),
            FdtWarning::EmptyInitrd { start } => {
                write!(f, "OF: fdt: empty initrd at {start:#x} ignored")
            }
            FdtWarning::DuplicateNode { node } => {
                write!(
                    f,
                    "OF: fdt: /{node}: ignored, an earlier node of that name is used"
                )
            }
            FdtWarning::BootargsNotUtf8 => write!(
                f,
                "OF: fdt: bootargs are not UTF-8, invalid bytes shown as U+FFFD"
            ),
            FdtWarning::BootargsTruncated { kept } => {
                write!(
                    f,
                    "OF: fdt: bootargs cut to {kept} bytes (COMMAND_LINE_SIZE)"
                )
            }
        }
    }
}

/// The decoded FDT header, after [`fdt_header_ok`] validated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdtHeader {
    /// Total size of the blob in bytes.
    pub totalsize: u32,
    /// Offset of the structure block.
    pub off_dt_struct: u32,
    /// Offset of the strings block.
    pub off_dt_strings: u32,
    /// Offset of the memory reservation block.
    pub off_mem_rsvmap: u32,
    /// Format version.
    pub version: u32,
    /// Oldest version this blob is compatible with.
    pub last_comp_version: u32,
    /// Physical ID of the boot CPU.
    pub boot_cpuid_phys: u32,
    /// Size of the strings block.
    pub size_dt_strings: u32,
    /// Size of the structure block. For a version-16 blob (which has no such field) it
    /// is derived: up to the strings block when that follows, else up to `totalsize`.
    pub size_dt_struct: u32,
}

impl FdtHeader {
    /// Byte range of the structure block.
    pub fn struct_block(&self) -> Range<usize> {
        let s = self.off_dt_struct as usize;
        s..s.saturating_add(self.size_dt_struct as usize)
    }

    /// Byte range of the strings block.
    pub fn strings_block(&self) -> Range<usize> {
        let s = self.off_dt_strings as usize;
        s..s.saturating_add(self.size_dt_strings as usize)
    }

    /// Size of the header for this version.
    pub fn header_size(&self) -> usize {
        if self.version >= 17 {
            FDT_HEADER_SIZE
        } else {
            FDT_V16_HEADER_SIZE
        }
    }
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let w = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

fn be64(b: &[u8], off: usize) -> Option<u64> {
    let hi = be32(b, off)? as u64;
    let lo = be32(b, off.checked_add(4)?)? as u64;
    Some(hi << 32 | lo)
}

fn align4(x: usize) -> Option<usize> {
    Some(x.checked_add(3)? & !3)
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    !a.is_empty() && !b.is_empty() && a.start < b.end && b.start < a.end
}

/// Reads the 40-byte header at the start of `prefix` and returns `totalsize`, so a
/// blob found at a raw pointer can be sized before a slice over it is made. `None` if
/// `prefix` is shorter than [`FDT_HEADER_SIZE`], the magic is wrong, or `totalsize` is
/// smaller than a header. Validate the full blob with [`fdt_header_ok`] afterwards.
pub fn fdt_totalsize_at(prefix: &[u8]) -> Option<u32> {
    if prefix.len() < FDT_HEADER_SIZE || be32(prefix, 0)? != FDT_MAGIC {
        return None;
    }
    let total = be32(prefix, 4)?;
    (total as usize >= FDT_V16_HEADER_SIZE).then_some(total)
}

/// Validates the header of the blob at the start of `bytes` (see the module docs for
/// the checks) and returns it decoded.
pub fn fdt_header_ok(bytes: &[u8]) -> Result<FdtHeader, FdtError> {
    let have = bytes.len();
    let truncated = FdtError::Truncated {
        need: FDT_HEADER_SIZE,
        have,
    };
    let magic = be32(bytes, 0).ok_or(truncated)?;
    if magic != FDT_MAGIC {
        return Err(FdtError::BadMagic { found: magic });
    }
    if have < FDT_HEADER_SIZE {
        return Err(truncated);
    }
    let field = |i: usize| be32(bytes, 4 * i).unwrap_or(0);
    let mut h = FdtHeader {
        totalsize: field(1),
        off_dt_struct: field(2),
        off_dt_strings: field(3),
        off_mem_rsvmap: field(4),
        version: field(5),
        last_comp_version: field(6),
        boot_cpuid_phys: field(7),
        size_dt_strings: field(8),
        size_dt_struct: field(9),
    };
    if h.version < FDT_MIN_VERSION
        || h.last_comp_version > FDT_MAX_LAST_COMP_VERSION
        || h.version < h.last_comp_version
    {
        return Err(FdtError::BadVersion {
            version: h.version,
            last_comp_version: h.last_comp_version,
        });
    }
    let hdr = h.header_size();
    let total = h.totalsize as usize;
    if total < hdr {
        return Err(FdtError::BadOffset {
            what: "totalsize is smaller than the header",
        });
    }
    if total > have {
        return Err(FdtError::Truncated { need: total, have });
    }

    // Memory reservation block: after the header, 8-byte aligned, room for at least
    // the terminating entry.
    let rsv = h.off_mem_rsvmap as usize;
    if rsv < hdr {
        return Err(FdtError::BadOffset {
            what: "off_mem_rsvmap overlaps the header",
        });
    }
    if rsv & 7 != 0 {
        return Err(FdtError::Unaligned {
            what: "off_mem_rsvmap",
            value: rsv,
        });
    }
    if rsv.checked_add(16).filter(|&e| e <= total).is_none() {
        return Err(FdtError::BadOffset {
            what: "off_mem_rsvmap is past totalsize",
        });
    }

    // Structure block.
    let st = h.off_dt_struct as usize;
    if st < hdr {
        return Err(FdtError::BadOffset {
            what: "off_dt_struct overlaps the header",
        });
    }
    if st & 3 != 0 {
        return Err(FdtError::Unaligned {
            what: "off_dt_struct",
            value: st,
        });
    }
    if st >= total {
        return Err(FdtError::BadOffset {
            what: "off_dt_struct is past totalsize",
        });
    }
    if h.version < 17 {
        let so = h.off_dt_strings as usize;
        let end = if so > st && so <= total { so } else { total };
        // `end - st` fits in u32: both are at most totalsize.
        h.size_dt_struct = (end - st) as u32;
    }
    if st
        .checked_add(h.size_dt_struct as usize)
        .filter(|&e| e <= total)
        .is_none()
    {
        return Err(FdtError::BadOffset {
            what: "off_dt_struct + size_dt_struct is past totalsize",
        });
    }

    // Strings block.
    let so = h.off_dt_strings as usize;
    if so < hdr {
        return Err(FdtError::BadOffset {
            what: "off_dt_strings overlaps the header",
        });
    }
    if so
        .checked_add(h.size_dt_strings as usize)
        .filter(|&e| e <= total)
        .is_none()
    {
        return Err(FdtError::BadOffset {
            what: "off_dt_strings + size_dt_strings is past totalsize",
        });
    }

    let (sb, tb) = (h.struct_block(), h.strings_block());
    if overlaps(&sb, &tb) {
        return Err(FdtError::BadOffset {
            what: "structure and strings blocks overlap",
        });
    }
    if sb.contains(&rsv) || tb.contains(&rsv) {
        return Err(FdtError::BadOffset {
            what: "off_mem_rsvmap lies inside another block",
        });
    }
    Ok(h)
}

/// One token of the structure block, as [`FdtTokens`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtToken<'a> {
    /// `FDT_BEGIN_NODE` and the node's name: unit address included, any length, any
    /// bytes but NUL (the root's is empty).
    BeginNode(&'a [u8]),
    /// `FDT_PROP`: where its name starts in the strings block (see [`fdt_string`]), and
    /// its value.
    Prop {
        /// Offset of the name in the strings block (not checked here).
        nameoff: u32,
        /// The value bytes.
        value: &'a [u8],
    },
    /// `FDT_END_NODE`.
    EndNode,
    /// `FDT_NOP`.
    Nop,
    /// `FDT_END`: the end of the structure block.
    End,
}

/// The tokens of a structure block, one at a time, each checked against the block's
/// bounds before it is read (libfdt's `fdt_next_tag`). Nesting and property names are
/// the caller's to check: [`FdtMemory::parse`] checks the whole block first.
#[derive(Clone, Debug)]
pub struct FdtTokens<'a> {
    bytes: &'a [u8],
    off: usize,
    end: usize,
}

impl<'a> FdtTokens<'a> {
    /// The tokens of the structure block `header` describes in `bytes` (the blob
    /// [`fdt_header_ok`] decoded `header` from).
    pub fn new(bytes: &'a [u8], header: &FdtHeader) -> Self {
        let blk = header.struct_block();
        let end = blk.end.min(bytes.len());
        Self {
            bytes,
            off: blk.start.min(end),
            end,
        }
    }

    /// Offset in the blob of the next token.
    pub fn offset(&self) -> usize {
        self.off
    }

    /// The next token and its offset in the blob. After [`FdtToken::End`] the reader
    /// stays where it is.
    pub fn next_token(&mut self) -> Result<(usize, FdtToken<'a>), FdtError> {
        let at = self.off;
        let tok = self
            .word(at)
            .ok_or(FdtError::Parse("structure block ends without FDT_END"))?;
        let body = at + 4;
        let (tok, next) = match tok {
            FDT_BEGIN_NODE => {
                let area = &self.bytes[body..self.end];
                let len = area
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(FdtError::Parse("unterminated node name"))?;
                let next = align4(body + len + 1).ok_or(FdtError::Parse("offset overflow"))?;
                (FdtToken::BeginNode(&area[..len]), next)
            }
            FDT_PROP => {
                let (Some(len), Some(nameoff)) = (self.word(body), self.word(body + 4)) else {
                    return Err(FdtError::Parse("property header past the structure block"));
                };
                let start = body + 8;
                let vend = start
                    .checked_add(len as usize)
                    .filter(|&e| e <= self.end)
                    .ok_or(FdtError::Parse("property value past the structure block"))?;
                let next = align4(vend).ok_or(FdtError::Parse("offset overflow"))?;
                let value = &self.bytes[start..vend];
                (FdtToken::Prop { nameoff, value }, next)
            }
            FDT_END_NODE => (FdtToken::EndNode, body),
            FDT_NOP => (FdtToken::Nop, body),
            FDT_END => (FdtToken::End, at),
            _ => return Err(FdtError::Parse("unknown structure token")),
        };
        // A padded name or value may end exactly at the block's end; the next read
        // then reports the missing FDT_END.
        self.off = next.min(self.end);
        Ok((at, tok))
    }

    /// The big-endian word at `off`, when all of it lies inside the block.
    fn word(&self, off: usize) -> Option<u32> {
        off.checked_add(4).filter(|&e| e <= self.end)?;
        be32(self.bytes, off)
    }
}

/// Checks the whole structure block: every token readable ([`FdtTokens`]), every
/// property name inside the strings block, nodes balanced, properties before subnodes,
/// exactly one root node, and an `FDT_END`.
fn check_structure(bytes: &[u8], h: &FdtHeader) -> Result<(), FdtError> {
    let mut tokens = FdtTokens::new(bytes, h);
    let mut depth = 0usize;
    let mut seen_root = false;
    // True once the current node has had a subnode closed: properties must precede
    // subnodes.
    let mut child_closed = false;
    loop {
        match tokens.next_token()?.1 {
            FdtToken::BeginNode(_) => {
                if depth == 0 && seen_root {
                    return Err(FdtError::Parse("more than one root node"));
                }
                depth += 1;
                seen_root = true;
                child_closed = false;
            }
            FdtToken::Prop { nameoff, .. } => {
                if depth == 0 {
                    return Err(FdtError::Parse("property outside any node"));
                }
                if child_closed {
                    return Err(FdtError::Parse("property after a subnode"));
                }
                fdt_string(bytes, h, nameoff)?;
            }
            FdtToken::EndNode => {
                if depth == 0 {
                    return Err(FdtError::Parse("FDT_END_NODE without a node"));
                }
                depth -= 1;
                child_closed = true;
            }
            FdtToken::Nop => {}
            FdtToken::End => {
                if depth != 0 {
                    return Err(FdtError::Parse("FDT_END inside a node"));
                }
                if !seen_root {
                    return Err(FdtError::Parse("no root node"));
                }
                return Ok(());
            }
        }
    }
}

/// The NUL-terminated string at `nameoff` in the strings block (a property name),
/// bounds-checked against that block (libfdt's `fdt_get_string`). Any bytes but NUL.
pub fn fdt_string<'a>(bytes: &'a [u8], h: &FdtHeader, nameoff: u32) -> Result<&'a [u8], FdtError> {
    let strings = bytes
        .get(h.strings_block())
        .ok_or(FdtError::Parse("strings block out of bounds"))?;
    let tail = strings
        .get(nameoff as usize..)
        .filter(|t| !t.is_empty())
        .ok_or(FdtError::Parse(
            "property name offset past the strings block",
        ))?;
    let len = tail.iter().position(|&b| b == 0).ok_or(FdtError::Parse(
        "property name not terminated in the strings block",
    ))?;
    Ok(&tail[..len])
}

/// A node name for messages: the name itself when it is UTF-8 (it nearly always is).
fn node_name(raw: &[u8]) -> &str {
    core::str::from_utf8(raw).unwrap_or("<node name not UTF-8>")
}

/// libfdt's `fdt_nodename_eq_` for a name without `@`: `raw` is `want` itself or
/// `want@<unit address>`.
fn node_name_matches(raw: &[u8], want: &[u8]) -> bool {
    raw.strip_prefix(want)
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'@')
}

/// A string property's value up to its first NUL (what C's `strcmp` compares).
fn prop_cstr(v: &[u8]) -> &[u8] {
    let len = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    &v[..len]
}

/// Capacity of [`Bootargs`]'s text: each of [`COMMAND_LINE_SIZE`] bytes could become
/// a three-byte U+FFFD, so the text always fits.
const BOOTARGS_TEXT_MAX: usize = 3 * COMMAND_LINE_SIZE;

/// `/chosen/bootargs`: the bytes Linux copies into `boot_command_line`, and the
/// command line zonekit parses from them.
///
/// Linux treats the command line as bytes and splits it on ASCII whitespace, so a
/// byte that is not UTF-8 (a Latin-1 `é` from a boot loader) only affects the word it
/// is in. zonekit parses `&str`: when the bytes are UTF-8 the text is the bytes
/// themselves, otherwise a copy with each invalid sequence replaced by U+FFFD
/// (`String::from_utf8_lossy` without a heap). ASCII words, and so every parameter
/// zonekit knows, are unchanged either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bootargs<'a> {
    raw: &'a [u8],
    /// The replacement text, when `raw` is not UTF-8.
    lossy: Option<heapless::String<BOOTARGS_TEXT_MAX>>,
}

impl<'a> Bootargs<'a> {
    /// The command line for `raw` (the bytes before the NUL; at most
    /// [`COMMAND_LINE_SIZE`]` - 1` of them are kept).
    pub fn new(raw: &'a [u8]) -> Self {
        let raw = &raw[..raw.len().min(COMMAND_LINE_SIZE - 1)];
        if core::str::from_utf8(raw).is_ok() {
            return Self { raw, lossy: None };
        }
        let mut text = heapless::String::new();
        for chunk in raw.utf8_chunks() {
            // Cannot fail: the text is at most three bytes per byte of `raw`, which
            // BOOTARGS_TEXT_MAX allows for.
            let _ = text.push_str(chunk.valid());
            if !chunk.invalid().is_empty() {
                let _ = text.push(char::REPLACEMENT_CHARACTER);
            }
        }
        Self {
            raw,
            lossy: Some(text),
        }
    }

    /// The bytes, as Linux has them in `boot_command_line`.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The command line as text (see the type's docs).
    pub fn as_str(&self) -> &str {
        match &self.lossy {
            Some(text) => text.as_str(),
            // `lossy` is None only when `raw` is UTF-8.
            None => core::str::from_utf8(self.raw).unwrap_or(""),
        }
    }

    /// Whether the bytes are UTF-8 (the text is then exactly the bytes).
    pub fn is_utf8(&self) -> bool {
        self.lossy.is_none()
    }
}

/// What Linux's `strscpy(cmdline, p, min(len, COMMAND_LINE_SIZE))` copies of a
/// `bootargs` value: the bytes before the first NUL within the first
/// `min(len, COMMAND_LINE_SIZE)` bytes; without a NUL there, one byte less than that
/// limit (strscpy always leaves room for its NUL), and `true` (cut).
fn bootargs_bytes(v: &[u8]) -> (&[u8], bool) {
    let limit = v.len().min(COMMAND_LINE_SIZE);
    let head = &v[..limit];
    match head.iter().position(|&b| b == 0) {
        Some(n) => (&head[..n], false),
        None => (&head[..limit.saturating_sub(1)], true),
    }
}

/// The command line of a blob whose structure can be read even though
/// [`FdtMemory::parse`] rejected it (bad cells, overlapping banks, too many ranges):
/// `/chosen/bootargs`, found as [`FdtMemory::parse`] finds it. `Ok(None)` when there
/// is no `/chosen` or no `bootargs`; an error when the header or the structure block
/// is unreadable (then nothing in the blob can be trusted, the command line
/// included).
pub fn chosen_bootargs(bytes: &[u8]) -> Result<Option<Bootargs<'_>>, FdtError> {
    let h = fdt_header_ok(bytes)?;
    let bytes = &bytes[..h.totalsize as usize];
    check_structure(bytes, &h)?;
    let mut tokens = FdtTokens::new(bytes, &h);
    let mut depth = 0usize;
    let mut in_chosen = false;
    loop {
        match tokens.next_token()?.1 {
            FdtToken::BeginNode(name) => {
                depth += 1;
                if depth == 2 {
                    in_chosen = node_name_matches(name, b"chosen");
                }
            }
            FdtToken::Prop { nameoff, value } if in_chosen && depth == 2 => {
                if fdt_string(bytes, &h, nameoff)? == b"bootargs" && !value.is_empty() {
                    return Ok(Some(Bootargs::new(bootargs_bytes(value).0)));
                }
            }
            FdtToken::EndNode => {
                if depth == 2 && in_chosen {
                    // The first /chosen had no bootargs; Linux looks no further.
                    return Ok(None);
                }
                depth = depth.saturating_sub(1);
            }
            FdtToken::End => return Ok(None),
            FdtToken::Prop { .. } | FdtToken::Nop => {}
        }
    }
}

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
    /// DRAM banks at or below `phys_addr_max`, in DTB order, as given (not
    /// page-aligned).
    pub memory: RangeList,
    /// Memory above `phys_addr_max` that was not kept (whole banks, or the part of a
    /// bank beyond the limit).
    pub dropped: RangeList,
    /// The header's `/memreserve/` entries.
    pub memreserve: RangeList,
    /// `/reserved-memory` children with `reg`: (range, `no-map`).
    pub reserved_static: heapless::Vec<(MemRange, bool), MAX_SOURCE_RANGES>,
    /// `/reserved-memory` children with `reg` that are CMA pools (see
    /// [`DynamicReservation::cma`]): (range, `linux,cma-default`). Also in
    /// `reserved_static`.
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
    /// The board's DMA zone size (a device tree does not carry it; the board sets it).
    pub dma_zone_size: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Top {
    Other,
    Chosen,
    ReservedMemory,
}

/// Properties collected for one node until its end.
#[derive(Clone, Copy)]
struct NodeProps<'a> {
    name: &'a str,
    memory: bool,
    available: bool,
    reg: Option<&'a [u8]>,
    size: Option<&'a [u8]>,
    alignment: Option<&'a [u8]>,
    alloc_ranges: Option<&'a [u8]>,
    no_map: bool,
    reusable: bool,
    shared_dma_pool: bool,
    cma_default: bool,
}

impl<'a> NodeProps<'a> {
    /// What Linux's `rmem_cma_setup` takes as a CMA pool.
    fn is_cma(&self) -> bool {
        self.shared_dma_pool && self.reusable && !self.no_map
    }

    fn new(name: &'a str) -> Self {
        Self {
            name,
            memory: false,
            available: true,
            reg: None,
            size: None,
            alignment: None,
            alloc_ranges: None,
            no_map: false,
            reusable: false,
            shared_dma_pool: false,
            cma_default: false,
        }
    }
}

/// Whether a `compatible` string list holds `want`.
fn compatible_has(v: &[u8], want: &str) -> bool {
    v.split(|&b| b == 0).any(|c| c == want.as_bytes())
}

/// `of_fdt_device_is_available` for a `status` value: `"okay"` or `"ok"`, compared as
/// C strings (anything else, non-UTF-8 bytes included, is "not available").
fn is_okay(status: &[u8]) -> bool {
    matches!(prop_cstr(status), b"okay" | b"ok")
}

/// A `#address-cells`/`#size-cells` value that must be 1 or 2.
fn cells_prop(v: &[u8], what: &'static str) -> Result<u32, FdtError> {
    if v.len() != 4 {
        return Err(FdtError::BadPropLen { what, len: v.len() });
    }
    let n = be32(v, 0).unwrap_or(0);
    if n == 1 || n == 2 {
        Ok(n)
    } else {
        Err(FdtError::BadCells { what, value: n })
    }
}

/// A number of `cells` (1 or 2) cells at byte offset `at`.
fn read_cells(v: &[u8], at: usize, cells: u32) -> Result<u64, FdtError> {
    let r = if cells == 2 {
        be64(v, at)
    } else {
        be32(v, at).map(u64::from)
    };
    r.ok_or(FdtError::Parse("cell read past the property"))
}

/// A single number of exactly one or two cells (`linux,initrd-start`).
fn read_number(v: &[u8], what: &'static str) -> Result<u64, FdtError> {
    match v.len() {
        4 => read_cells(v, 0, 1),
        8 => read_cells(v, 0, 2),
        len => Err(FdtError::BadPropLen { what, len }),
    }
}

/// Iterates over the (address, size) pairs of a `reg`-like property.
fn for_each_entry(
    v: &[u8],
    ac: u32,
    sc: u32,
    what: &'static str,
    mut f: impl FnMut(u64, u64) -> Result<(), FdtError>,
) -> Result<(), FdtError> {
    let entry = 4 * (ac + sc) as usize;
    let chunks = v.chunks_exact(entry);
    if !chunks.remainder().is_empty() {
        return Err(FdtError::BadPropLen { what, len: v.len() });
    }
    for e in chunks {
        let base = read_cells(e, 0, ac)?;
        let size = read_cells(e, 4 * ac as usize, sc)?;
        f(base, size)?;
    }
    Ok(())
}

fn checked_range(base: u64, size: u64, what: &'static str) -> Result<MemRange, FdtError> {
    match base.checked_add(size) {
        Some(_) => Ok(MemRange::new(base, size)),
        None => Err(FdtError::Overflow { what, base, size }),
    }
}

fn push<T, const N: usize>(
    v: &mut heapless::Vec<T, N>,
    x: T,
    what: &'static str,
) -> Result<(), FdtError> {
    v.push(x)
        .map_err(|_| FdtError::TooManyRanges { what, max: N })
}

impl<'a> FdtMemory<'a> {
    /// Parses the blob at the start of `bytes` (which may be longer than `totalsize`;
    /// it must be 4-byte aligned). Memory above `phys_addr_max` is moved to
    /// [`FdtMemory::dropped`].
    pub fn parse(bytes: &'a [u8], phys_addr_max: PhysAddr) -> Result<Self, FdtError> {
        Self::parse_at(bytes, phys_addr_max, None)
    }

    /// As [`FdtMemory::parse`], and records the blob's own range
    /// `[blob_phys, blob_phys + totalsize)` in [`FdtMemory::blob`] so it is reserved.
    pub fn parse_at(
        bytes: &'a [u8],
        phys_addr_max: PhysAddr,
        blob_phys: Option<PhysAddr>,
    ) -> Result<Self, FdtError> {
        let header = fdt_header_ok(bytes)?;
        let bytes = &bytes[..header.totalsize as usize];
        let mut m = FdtMemory {
            header,
            address_cells: 1,
            size_cells: 1,
            memory: RangeList::new(),
            dropped: RangeList::new(),
            memreserve: RangeList::new(),
            reserved_static: heapless::Vec::new(),
            cma_static: heapless::Vec::new(),
            reserved_dynamic: heapless::Vec::new(),
            initrd: None,
            bootargs: None,
            blob: None,
            warnings: heapless::Vec::new(),
            warnings_lost: 0,
            dma_zone_size: None,
        };
        if bytes.as_ptr() as usize & 3 != 0 {
            return Err(FdtError::Unaligned {
                what: "blob address",
                value: bytes.as_ptr() as usize,
            });
        }
        m.parse_rsvmap(bytes)?;
        check_structure(bytes, &header)?;
        m.walk(bytes, phys_addr_max)?;
        m.check_overlaps()?;
        if let Some(pa) = blob_phys {
            m.blob = Some(checked_range(pa, header.totalsize as u64, "FDT blob")?);
        }
        Ok(m)
    }

    fn warn(&mut self, w: FdtWarning<'a>) {
        log::warn!("{w}");
        if self.warnings.push(w).is_err() {
            self.warnings_lost += 1;
        }
    }

    fn parse_rsvmap(&mut self, bytes: &[u8]) -> Result<(), FdtError> {
        let h = &self.header;
        let rsv = h.off_mem_rsvmap as usize;
        // The block runs until the next block that starts after it.
        let bound = [h.off_dt_struct as usize, h.off_dt_strings as usize]
            .into_iter()
            .filter(|&o| o > rsv)
            .fold(h.totalsize as usize, usize::min);
        let mut off = rsv;
        loop {
            if off + 16 > bound {
                return Err(FdtError::Parse("/memreserve/ block is not terminated"));
            }
            let (Some(base), Some(size)) = (be64(bytes, off), be64(bytes, off + 8)) else {
                return Err(FdtError::Parse("/memreserve/ block out of bounds"));
            };
            off += 16;
            if base == 0 && size == 0 {
                return Ok(());
            }
            if size == 0 {
                self.warn(FdtWarning::ZeroSizedReservation {
                    node: "/memreserve/",
                    base,
                });
                continue;
            }
            let r = checked_range(base, size, "/memreserve/")?;
            push(&mut self.memreserve, r, "/memreserve/ entries")?;
        }
    }

    fn walk(&mut self, bytes: &'a [u8], phys_addr_max: PhysAddr) -> Result<(), FdtError> {
        let h = self.header;
        let mut tokens = FdtTokens::new(bytes, &h);
        let mut depth = 0usize;
        let mut top = Top::Other;
        let mut node1 = NodeProps::new("");
        let mut node2 = NodeProps::new("");
        let mut seen_chosen = false;
        let mut seen_rm = false;
        // /reserved-memory's own cells and `ranges`, checked once its first child
        // starts or it ends.
        let (mut rm_ac, mut rm_sc, mut rm_ranges, mut rm_checked) = (None, None, false, false);
        let (mut initrd_start, mut initrd_end) = (None, None);

        loop {
            match tokens.next_token()?.1 {
                FdtToken::End => break,
                FdtToken::BeginNode(raw) => {
                    let name = node_name(raw);
                    depth += 1;
                    if depth == 2 {
                        // fdt_path_offset("/chosen"), fdt_path_offset("/reserved-memory"):
                        // the first match wins.
                        top = if node_name_matches(raw, b"chosen") {
                            if seen_chosen {
                                self.warn(FdtWarning::DuplicateNode { node: name });
                                Top::Other
                            } else {
                                seen_chosen = true;
                                Top::Chosen
                            }
                        } else if node_name_matches(raw, b"reserved-memory") {
                            if seen_rm {
                                self.warn(FdtWarning::DuplicateNode { node: name });
                                Top::Other
                            } else {
                                seen_rm = true;
                                Top::ReservedMemory
                            }
                        } else {
                            Top::Other
                        };
                        node1 = NodeProps::new(name);
                    } else if depth == 3 && top == Top::ReservedMemory {
                        if !rm_checked {
                            self.check_rm_root(rm_ac, rm_sc, rm_ranges)?;
                            rm_checked = true;
                        }
                        node2 = NodeProps::new(name);
                    }
                }
                FdtToken::Prop { nameoff, value: v } => {
                    let name = fdt_string(bytes, &h, nameoff)?;
                    match (depth, top) {
                        (1, _) => match name {
                            b"#address-cells" => {
                                self.address_cells = cells_prop(v, "root #address-cells")?
                            }
                            b"#size-cells" => self.size_cells = cells_prop(v, "root #size-cells")?,
                            _ => {}
                        },
                        (2, Top::Other) => match name {
                            b"device_type" => node1.memory = prop_cstr(v) == b"memory",
                            b"status" => node1.available = is_okay(v),
                            b"reg" => node1.reg = Some(v),
                            _ => {}
                        },
                        (2, Top::Chosen) => match name {
                            b"bootargs" if !v.is_empty() => {
                                let (raw, cut) = bootargs_bytes(v);
                                let args = Bootargs::new(raw);
                                if cut {
                                    self.warn(FdtWarning::BootargsTruncated { kept: raw.len() });
                                }
                                if !args.is_utf8() {
                                    self.warn(FdtWarning::BootargsNotUtf8);
                                }
                                self.bootargs = Some(args);
                            }
                            b"linux,initrd-start" => {
                                initrd_start = Some(read_number(v, "linux,initrd-start")?)
                            }
                            b"linux,initrd-end" => {
                                initrd_end = Some(read_number(v, "linux,initrd-end")?)
                            }
                            _ => {}
                        },
                        (2, Top::ReservedMemory) => match name {
                            b"#address-cells" => rm_ac = Some(v),
                            b"#size-cells" => rm_sc = Some(v),
                            b"ranges" => rm_ranges = true,
                            _ => {}
                        },
                        (3, Top::ReservedMemory) => match name {
                            b"status" => node2.available = is_okay(v),
                            b"reg" => node2.reg = Some(v),
                            b"size" => node2.size = Some(v),
                            b"alignment" => node2.alignment = Some(v),
                            b"alloc-ranges" => node2.alloc_ranges = Some(v),
                            b"no-map" => node2.no_map = true,
                            b"reusable" => node2.reusable = true,
                            b"compatible" => {
                                node2.shared_dma_pool = compatible_has(v, "shared-dma-pool")
                            }
                            b"linux,cma-default" => node2.cma_default = true,
                            _ => {}
                        },
                        _ => {}
                    }
                }
                FdtToken::EndNode => {
                    match (depth, top) {
                        (3, Top::ReservedMemory) => self.reserved_child(&node2)?,
                        (2, Top::Other) if node1.memory => {
                            self.memory_node(&node1, phys_addr_max)?
                        }
                        (2, Top::ReservedMemory) if !rm_checked => {
                            self.check_rm_root(rm_ac, rm_sc, rm_ranges)?;
                            rm_checked = true;
                        }
                        _ => {}
                    }
                    if depth == 2 {
                        top = Top::Other;
                    }
                    depth = depth
                        .checked_sub(1)
                        .ok_or(FdtError::Parse("unbalanced FDT_END_NODE"))?;
                }
                FdtToken::Nop => {}
            }
        }
        self.set_initrd(initrd_start, initrd_end)
    }

    fn check_rm_root(
        &self,
        ac: Option<&[u8]>,
        sc: Option<&[u8]>,
        ranges: bool,
    ) -> Result<(), FdtError> {
        for (v, root, what) in [
            (ac, self.address_cells, "/reserved-memory #address-cells"),
            (sc, self.size_cells, "/reserved-memory #size-cells"),
        ] {
            let v = v.ok_or(FdtError::Parse(
                "/reserved-memory lacks #address-cells or #size-cells",
            ))?;
            if v.len() != 4 {
                return Err(FdtError::BadPropLen { what, len: v.len() });
            }
            let n = be32(v, 0).unwrap_or(0);
            if n != root {
                // Linux: "Reserved memory: unsupported node format, ignoring".
                return Err(FdtError::BadCells { what, value: n });
            }
        }
        if !ranges {
            return Err(FdtError::Parse("/reserved-memory lacks `ranges`"));
        }
        Ok(())
    }

    fn memory_node(&mut self, n: &NodeProps<'a>, max: PhysAddr) -> Result<(), FdtError> {
        if !n.available {
            self.warn(FdtWarning::DisabledNode { node: n.name });
            return Ok(());
        }
        let Some(reg) = n.reg else {
            self.warn(FdtWarning::MemoryNodeWithoutReg { node: n.name });
            return Ok(());
        };
        let (ac, sc) = (self.address_cells, self.size_cells);
        for_each_entry(reg, ac, sc, "memory reg", |base, size| {
            if size == 0 {
                self.warn(FdtWarning::ZeroSizedBank { node: n.name, base });
                return Ok(());
            }
            let r = checked_range(base, size, "memory reg")?;
            if base > max {
                // Linux: "Ignoring memory block".
                self.drop_memory(r)
            } else if r.end() - 1 > max {
                // Linux: "Ignoring memory range <max+1> - <end>", size truncated.
                let keep = MemRange::new(base, max - base + 1);
                push(&mut self.memory, keep, "memory banks")?;
                self.drop_memory(MemRange::new(max + 1, r.end() - (max + 1)))
            } else {
                push(&mut self.memory, r, "memory banks")
            }
        })
    }

    fn drop_memory(&mut self, r: MemRange) -> Result<(), FdtError> {
        push(&mut self.dropped, r, "dropped memory ranges")?;
        self.warn(FdtWarning::IgnoredMemory { range: r });
        Ok(())
    }

    fn reserved_child(&mut self, n: &NodeProps<'a>) -> Result<(), FdtError> {
        if !n.available {
            self.warn(FdtWarning::DisabledNode { node: n.name });
            return Ok(());
        }
        let (ac, sc) = (self.address_cells, self.size_cells);
        if let Some(reg) = n.reg {
            return for_each_entry(reg, ac, sc, "reserved-memory reg", |base, size| {
                if size == 0 {
                    self.warn(FdtWarning::ZeroSizedReservation { node: n.name, base });
                    return Ok(());
                }
                let r = checked_range(base, size, "reserved-memory reg")?;
                if n.is_cma() {
                    push(&mut self.cma_static, (r, n.cma_default), "CMA pools")?;
                }
                push(
                    &mut self.reserved_static,
                    (r, n.no_map),
                    "static reserved-memory regions",
                )
            });
        }
        let Some(size) = n.size else {
            self.warn(FdtWarning::ReservedNodeWithoutRegOrSize { node: n.name });
            return Ok(());
        };
        let one = |v: &[u8], what| {
            if v.len() != 4 * sc as usize {
                Err(FdtError::BadPropLen { what, len: v.len() })
            } else {
                read_cells(v, 0, sc)
            }
        };
        let size = one(size, "reserved-memory size")?;
        let alignment = n
            .alignment
            .map(|v| one(v, "reserved-memory alignment"))
            .transpose()?;
        let mut alloc_ranges = heapless::Vec::new();
        if let Some(v) = n.alloc_ranges {
            for_each_entry(v, ac, sc, "alloc-ranges", |base, size| {
                let r = checked_range(base, size, "alloc-ranges")?;
                push(&mut alloc_ranges, r, "alloc-ranges entries")
            })?;
        }
        if size == 0 {
            self.warn(FdtWarning::ZeroSizedReservation {
                node: n.name,
                base: 0,
            });
            return Ok(());
        }
        push(
            &mut self.reserved_dynamic,
            DynamicReservation {
                name: n.name,
                size,
                alignment,
                alloc_ranges,
                no_map: n.no_map,
                reusable: n.reusable,
                cma: n.is_cma(),
                cma_default: n.cma_default,
            },
            "dynamic reserved-memory nodes",
        )
    }

    fn set_initrd(&mut self, start: Option<u64>, end: Option<u64>) -> Result<(), FdtError> {
        match (start, end) {
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => self.warn(FdtWarning::IncompleteInitrd),
            (Some(start), Some(end)) if end < start => {
                return Err(FdtError::BadInitrd { start, end })
            }
            (Some(start), Some(end)) if end == start => {
                self.warn(FdtWarning::EmptyInitrd { start })
            }
            (Some(start), Some(end)) => self.initrd = Some(MemRange::new(start, end - start)),
        }
        Ok(())
    }

    fn check_overlaps(&self) -> Result<(), FdtError> {
        for (i, a) in self.memory.iter().enumerate() {
            for b in &self.memory[i + 1..] {
                if a.overlaps(b) {
                    return Err(FdtError::OverlappingBanks {
                        first: *a,
                        second: *b,
                    });
                }
            }
        }
        Ok(())
    }

    /// Every range that must not be allocated: `/memreserve/`, static
    /// `/reserved-memory` (no-map included), the initrd and the blob itself.
    pub fn all_reserved(&self) -> Result<RangeList, FdtError> {
        let mut out = RangeList::new();
        let what = "reserved ranges";
        for r in &self.memreserve {
            push(&mut out, *r, what)?;
        }
        for (r, no_map) in &self.reserved_static {
            if !no_map {
                push(&mut out, *r, what)?;
            }
        }
        for r in self.initrd.iter().chain(self.blob.iter()) {
            push(&mut out, *r, what)?;
        }
        Ok(out)
    }

    /// The static `/reserved-memory` regions marked `no-map`: Linux takes them out of
    /// the linear map (`memblock_mark_nomap`) rather than reserving them.
    pub fn all_nomap(&self) -> Result<RangeList, FdtError> {
        let mut out = RangeList::new();
        for (r, _) in self.reserved_static.iter().filter(|(_, no_map)| *no_map) {
            push(&mut out, *r, "no-map ranges")?;
        }
        Ok(out)
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

    fn memory_banks(&self) -> Result<RangeList, SourceError> {
        if self.memory.is_empty() {
            return Err(SourceError::NoMemory);
        }
        validate_ranges(&self.memory)?;
        Ok(self.memory.clone())
    }

    fn reserved_ranges(&self) -> Result<RangeList, SourceError> {
        let out = self.all_reserved()?;
        validate_ranges(&out)?;
        Ok(out)
    }

    fn dma_zone_size(&self) -> Option<u64> {
        self.dma_zone_size
    }

    fn nomap_ranges(&self) -> Result<RangeList, SourceError> {
        Ok(self.all_nomap()?)
    }

    fn reservation_requests(
        &self,
    ) -> heapless::Vec<ReservationRequest<'_>, MAX_RESERVATION_REQUESTS> {
        self.reserved_dynamic
            .iter()
            .map(|d| ReservationRequest {
                name: d.name,
                size: d.size,
                align: d.alignment,
                alloc_ranges: d.alloc_ranges.iter().copied().collect(),
                no_map: d.no_map,
                cma: d.cma,
                cma_default: d.cma_default,
            })
            .collect()
    }

    fn cma_ranges(&self) -> heapless::Vec<CmaRegion, MAX_CMA_AREAS> {
        self.cma_static
            .iter()
            .map(|&(range, default)| CmaRegion { range, default })
            .collect()
    }

    fn cmdline(&self) -> &str {
        self.bootargs.as_ref().map_or("", Bootargs::as_str)
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
