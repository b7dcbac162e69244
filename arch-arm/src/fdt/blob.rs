//! The blob itself: the header check (`fdt_check_header`), the structure-block token
//! reader and the strings block, bounds-checked at every step (Linux's libfdt,
//! `fdt_next_tag`, `fdt_get_string`), without fdt-rs's limits on node names or UTF-8.

use super::*;

pub(super) const FDT_BEGIN_NODE: u32 = 1;
pub(super) const FDT_END_NODE: u32 = 2;
pub(super) const FDT_PROP: u32 = 3;
pub(super) const FDT_NOP: u32 = 4;
pub(super) const FDT_END: u32 = 9;

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

pub(super) fn be32(b: &[u8], off: usize) -> Option<u32> {
    let w = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

pub(super) fn be64(b: &[u8], off: usize) -> Option<u64> {
    let hi = be32(b, off)? as u64;
    let lo = be32(b, off.checked_add(4)?)? as u64;
    Some(hi << 32 | lo)
}

pub(super) fn align4(x: usize) -> Option<usize> {
    Some(x.checked_add(3)? & !3)
}

pub(super) fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
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
pub(super) fn check_structure(bytes: &[u8], h: &FdtHeader) -> Result<(), FdtError> {
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
pub(super) fn node_name(raw: &[u8]) -> &str {
    core::str::from_utf8(raw).unwrap_or("<node name not UTF-8>")
}

/// libfdt's `fdt_nodename_eq_` for a name without `@`: `raw` is `want` itself or
/// `want@<unit address>`.
pub(super) fn node_name_matches(raw: &[u8], want: &[u8]) -> bool {
    raw.strip_prefix(want)
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'@')
}

/// A string property's value up to its first NUL (what C's `strcmp` compares).
pub(super) fn prop_cstr(v: &[u8]) -> &[u8] {
    let len = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    &v[..len]
}
