//! Why a device tree was rejected ([`FdtError`]) and what was survivable
//! ([`FdtWarning`]), in Linux's words where Linux logs the same thing.

use super::*;

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
    /// More entries than Linux keeps of a bounded kind (dynamic reservations,
    /// `alloc-ranges`, CMA pools). Nothing is dropped silently.
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
            FdtError::TooManyRanges { what, max } => SourceError::TooMany { what, max },
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
