//! ATAGS (ARM boot tags) parsing (Linux `arch/arm/kernel/atags_parse.c`).
//!
//! A boot loader that does not pass a device tree leaves a list of tags in RAM and its
//! address in r2. Each tag is a header of two little-endian words, `size` (in 32-bit
//! words, header included) and `tag`, followed by its payload. The list starts with
//! `ATAG_CORE` and ends with `ATAG_NONE` (size 0). QEMU passes CORE, one MEM per RAM
//! bank, CMDLINE (from `-append`) and NONE at RAM base + 0x100.
//!
//! [`Atags::parse`] never panics: every malformed list gives an [`AtagsError`].
//!
//! Overlapping `ATAG_MEM` banks are an error ([`AtagsError::OverlappingBanks`]), as
//! overlapping banks are in a device tree (`FdtError::OverlappingBanks`): Linux would
//! merge them silently in memblock, but a boot loader that describes the same RAM
//! twice is almost always wrong, and both sources of boot information treat it alike.
//! Banks that merely touch are fine.
//!
//! The banks are not copied out: [`Atags::banks`] reads them from the list each time,
//! so a list with any number of `ATAG_MEM` tags needs no storage (memblock's table is
//! the only limit).

use zonekit_core::addr::{MemRange, PhysAddr};
use zonekit_core::source::{MemorySource, Region, RegionSink, SourceError};

/// `ATAG_NONE`: end of the list.
pub const ATAG_NONE: u32 = 0x0000_0000;
/// `ATAG_CORE`: must come first.
pub const ATAG_CORE: u32 = 0x5441_0001;
/// `ATAG_MEM`: one DRAM bank (`size`, `start`).
pub const ATAG_MEM: u32 = 0x5441_0002;
/// `ATAG_CMDLINE`: the NUL-terminated kernel command line.
pub const ATAG_CMDLINE: u32 = 0x5441_0009;

/// Size in bytes of a tag header (`struct tag_header`).
const HEADER_BYTES: usize = 8;

/// Why an ATAGS list was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtagsError {
    /// The buffer is too short to hold even one tag header.
    Truncated {
        /// Byte offset of the header that did not fit.
        offset: usize,
    },
    /// The first tag is not `ATAG_CORE` (Linux: "no ATAGS"); carries the tag found.
    MissingCore {
        /// The tag value found at offset 0.
        found: u32,
    },
    /// A tag other than `ATAG_NONE` has a size below the header size.
    BadSize {
        /// Byte offset of the tag.
        offset: usize,
        /// Its tag value.
        tag: u32,
        /// Its size in words.
        size_words: u32,
    },
    /// A tag runs past the end of the buffer.
    PastEnd {
        /// Byte offset of the tag.
        offset: usize,
        /// Its tag value.
        tag: u32,
    },
    /// The buffer ended before `ATAG_NONE`.
    Unterminated,
    /// `ATAG_CMDLINE` is not valid UTF-8.
    CmdlineNotUtf8,
    /// Two `ATAG_MEM` banks share bytes.
    OverlappingBanks {
        /// The earlier bank (in list order).
        first: MemRange,
        /// The later bank.
        second: MemRange,
    },
}

impl core::fmt::Display for AtagsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AtagsError::Truncated { offset } => {
                write!(f, "tag header at offset {offset:#x} is truncated")
            }
            AtagsError::MissingCore { found } => {
                write!(f, "first tag is {found:#010x}, not ATAG_CORE")
            }
            AtagsError::BadSize {
                offset,
                tag,
                size_words,
            } => write!(
                f,
                "tag {tag:#010x} at offset {offset:#x} has invalid size {size_words} words"
            ),
            AtagsError::PastEnd { offset, tag } => {
                write!(
                    f,
                    "tag {tag:#010x} at offset {offset:#x} runs past the buffer"
                )
            }
            AtagsError::Unterminated => write!(f, "no ATAG_NONE before the end of the buffer"),
            AtagsError::CmdlineNotUtf8 => write!(f, "ATAG_CMDLINE is not valid UTF-8"),
            AtagsError::OverlappingBanks { first, second } => {
                write!(f, "ATAG_MEM banks overlap: {first} and {second}")
            }
        }
    }
}

impl From<AtagsError> for SourceError {
    fn from(e: AtagsError) -> Self {
        SourceError::Malformed(match e {
            AtagsError::Truncated { .. } => "ATAGS: truncated tag header",
            AtagsError::MissingCore { .. } => "ATAGS: first tag is not ATAG_CORE",
            AtagsError::BadSize { .. } => "ATAGS: tag with invalid size",
            AtagsError::PastEnd { .. } => "ATAGS: tag runs past the buffer",
            AtagsError::Unterminated => "ATAGS: no ATAG_NONE",
            AtagsError::CmdlineNotUtf8 => "ATAGS: command line is not UTF-8",
            AtagsError::OverlappingBanks { .. } => "ATAGS: overlapping ATAG_MEM banks",
        })
    }
}

/// The payload of `ATAG_CORE` (`struct tag_core`); absent fields read as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagCore {
    /// Bit 0: read-only root.
    pub flags: u32,
    /// System page size.
    pub pagesize: u32,
    /// Root device number.
    pub rootdev: u32,
}

/// A parsed ATAGS list. Borrows the list (for its banks) and the command line from
/// the buffer.
#[derive(Clone, Debug, Default)]
pub struct Atags<'a> {
    /// The `ATAG_CORE` payload.
    pub core: TagCore,
    /// The `ATAG_CMDLINE` text without its NUL (empty if absent).
    pub cmdline: &'a str,
    /// Bytes the list occupies, `ATAG_NONE` included.
    pub len: usize,
    /// The list as parsed, `ATAG_NONE` included.
    list: &'a [u8],
}

/// The (tag, payload) pairs of a list [`Atags::parse`] accepted, up to `ATAG_NONE`.
fn tags(list: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let mut offset = 0usize;
    core::iter::from_fn(move || {
        let (size_words, tag) = (word(list, offset)?, word(list, offset + 4)?);
        let end = (size_words as usize).checked_mul(4)?.checked_add(offset)?;
        let payload = list.get(offset + HEADER_BYTES..end)?;
        offset = end;
        Some((tag, payload))
    })
}

/// An `ATAG_MEM` payload (`size`, `start`) as a range.
fn mem_tag(payload: &[u8]) -> Option<MemRange> {
    let (size, start) = (word(payload, 0)?, word(payload, 4)?);
    Some(MemRange::new(u64::from(start), u64::from(size)))
}

fn word(buf: &[u8], offset: usize) -> Option<u32> {
    let bytes = buf.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

impl<'a> Atags<'a> {
    /// Parse the tag list at the start of `buf`. Unknown tags are skipped, as Linux
    /// skips tags it has no parser for.
    pub fn parse(buf: &'a [u8]) -> Result<Atags<'a>, AtagsError> {
        let mut atags = Atags::default();
        let mut offset = 0usize;
        loop {
            let (Some(size_words), Some(tag)) = (word(buf, offset), word(buf, offset + 4)) else {
                return Err(if offset == 0 {
                    AtagsError::Truncated { offset }
                } else {
                    AtagsError::Unterminated
                });
            };
            if offset == 0 && tag != ATAG_CORE {
                return Err(AtagsError::MissingCore { found: tag });
            }
            if size_words == 0 {
                if tag == ATAG_NONE {
                    atags.len = offset + HEADER_BYTES;
                    atags.list = &buf[..atags.len];
                    atags.check_overlaps()?;
                    return Ok(atags);
                }
                return Err(AtagsError::BadSize {
                    offset,
                    tag,
                    size_words,
                });
            }
            if size_words < 2 {
                return Err(AtagsError::BadSize {
                    offset,
                    tag,
                    size_words,
                });
            }
            let end = (size_words as usize)
                .checked_mul(4)
                .and_then(|b| b.checked_add(offset))
                .filter(|&e| e <= buf.len())
                .ok_or(AtagsError::PastEnd { offset, tag })?;
            let payload = &buf[offset + HEADER_BYTES..end];
            match tag {
                ATAG_CORE => {
                    // `tag_core` may be empty (size 2) or carry three words.
                    atags.core = TagCore {
                        flags: word(payload, 0).unwrap_or(0),
                        pagesize: word(payload, 4).unwrap_or(0),
                        rootdev: word(payload, 8).unwrap_or(0),
                    };
                }
                // The banks are read again when used (Atags::banks).
                ATAG_MEM if mem_tag(payload).is_none() => {
                    return Err(AtagsError::BadSize {
                        offset,
                        tag,
                        size_words,
                    });
                }
                ATAG_CMDLINE => {
                    let text = payload
                        .iter()
                        .position(|&b| b == 0)
                        .map_or(payload, |nul| &payload[..nul]);
                    atags.cmdline =
                        core::str::from_utf8(text).map_err(|_| AtagsError::CmdlineNotUtf8)?;
                }
                _ => {}
            }
            offset = end;
        }
    }

    fn check_overlaps(&self) -> Result<(), AtagsError> {
        for (i, a) in self.banks().enumerate() {
            if let Some(b) = self.banks().skip(i + 1).find(|b| a.overlaps(b)) {
                return Err(AtagsError::OverlappingBanks {
                    first: a,
                    second: b,
                });
            }
        }
        Ok(())
    }

    /// One range per `ATAG_MEM`, in list order (read from the list each time).
    pub fn banks(&self) -> impl Iterator<Item = MemRange> + 'a {
        tags(self.list)
            .filter(|&(tag, _)| tag == ATAG_MEM)
            .filter_map(|(_, payload)| mem_tag(payload))
    }

    /// The kernel command line (`ATAG_CMDLINE`, empty if absent), for the boot
    /// parameters.
    pub fn cmdline(&self) -> &'a str {
        self.cmdline
    }

    /// The range the list occupies when it was parsed from physical address `base`.
    pub fn range(&self, base: PhysAddr) -> MemRange {
        MemRange::new(base, self.len as u64)
    }
}

impl MemorySource for Atags<'_> {
    fn name(&self) -> &str {
        "ATAGS"
    }

    fn for_each_region<'s>(&'s self, sink: &mut RegionSink<'s, '_>) -> Result<(), SourceError> {
        self.banks().map(Region::Memory).try_for_each(sink)
    }
}

/// Builds ATAGS lists in memory, as QEMU's `set_kernel_args` does (for tests and tools).
#[derive(Clone, Debug, Default)]
pub struct AtagsBuilder {
    words: heapless::Vec<u32, 256>,
}

impl AtagsBuilder {
    /// An empty list (add `core` first for a valid one).
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a raw tag with the given payload words and the size computed from it.
    /// Returns `None` when the builder is full.
    pub fn tag(mut self, tag: u32, payload: &[u32]) -> Option<Self> {
        self.words.push(2 + payload.len() as u32).ok()?;
        self.words.push(tag).ok()?;
        self.words.extend_from_slice(payload).ok()?;
        Some(self)
    }

    /// `ATAG_CORE` as QEMU writes it: flags 1, page size 4096, rootdev 0.
    pub fn core(self) -> Option<Self> {
        self.tag(ATAG_CORE, &[1, 4096, 0])
    }

    /// `ATAG_MEM` for one bank.
    pub fn mem(self, start: u32, size: u32) -> Option<Self> {
        self.tag(ATAG_MEM, &[size, start])
    }

    /// `ATAG_CMDLINE` with the text NUL-terminated and padded to whole words.
    pub fn cmdline(self, text: &str) -> Option<Self> {
        let mut payload: heapless::Vec<u32, 64> = heapless::Vec::new();
        let bytes = text.as_bytes();
        for chunk in 0..(bytes.len() + 4) / 4 {
            let mut w = [0u8; 4];
            for (i, b) in w.iter_mut().enumerate() {
                *b = bytes.get(chunk * 4 + i).copied().unwrap_or(0);
            }
            payload.push(u32::from_le_bytes(w)).ok()?;
        }
        self.tag(ATAG_CMDLINE, &payload)
    }

    /// Terminate with `ATAG_NONE` and return the words.
    pub fn finish(mut self) -> Option<heapless::Vec<u32, 256>> {
        self.words.push(0).ok()?;
        self.words.push(ATAG_NONE).ok()?;
        Some(self.words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn bytes(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn qemu_list(cmdline: &str) -> Vec<u8> {
        let w = AtagsBuilder::new()
            .core()
            .and_then(|b| b.mem(0x6000_0000, 0x2000_0000))
            .and_then(|b| b.cmdline(cmdline))
            .and_then(|b| b.finish())
            .expect("fits");
        bytes(&w)
    }

    #[test]
    fn parses_qemu_style_list() {
        let buf = qemu_list("vmalloc=600M console=ttyAMA0");
        let a = Atags::parse(&buf).expect("valid");
        assert_eq!(a.core.pagesize, 4096);
        assert_eq!(
            a.banks().collect::<Vec<_>>(),
            [MemRange::new(0x6000_0000, 0x2000_0000)]
        );
        assert_eq!(a.cmdline, "vmalloc=600M console=ttyAMA0");
        assert_eq!(a.len, buf.len());
        assert_eq!(a.name(), "ATAGS");
        assert_eq!(a.cmdline(), "vmalloc=600M console=ttyAMA0");
        let mut regions = Vec::new();
        a.for_each_region(&mut |r| {
            regions.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            regions,
            [Region::Memory(MemRange::new(0x6000_0000, 0x2000_0000))]
        );
    }

    #[test]
    fn trailing_bytes_after_none_are_ignored() {
        let mut buf = qemu_list("");
        buf.extend_from_slice(&[0xff; 64]);
        let a = Atags::parse(&buf).expect("valid");
        assert_eq!(a.cmdline, "");
    }

    #[test]
    fn empty_core_and_unknown_tags() {
        let w = AtagsBuilder::new()
            .tag(ATAG_CORE, &[])
            .and_then(|b| b.tag(0x5441_0004, &[1, 2, 3]))
            .and_then(|b| b.mem(0x8000_0000, 0x1000_0000))
            .and_then(|b| b.mem(0xa000_0000, 0x1000_0000))
            .and_then(|b| b.finish())
            .unwrap();
        let buf = bytes(&w);
        let a = Atags::parse(&buf).unwrap();
        assert_eq!(a.core, TagCore::default());
        assert_eq!(a.banks().count(), 2);
    }

    #[test]
    fn missing_core_is_an_error() {
        let buf = bytes(&[4, ATAG_MEM, 0x1000, 0x6000_0000, 0, 0]);
        assert_eq!(
            Atags::parse(&buf).unwrap_err(),
            AtagsError::MissingCore { found: ATAG_MEM }
        );
        // A DTB header is not ATAGS either.
        let dtb = 0xd00d_feed_u32.to_be_bytes();
        let mut buf = dtb.to_vec();
        buf.extend_from_slice(&[0; 12]);
        assert!(matches!(
            Atags::parse(&buf),
            Err(AtagsError::MissingCore { .. })
        ));
    }

    #[test]
    fn zero_size_tag_is_an_error() {
        let buf = bytes(&[5, ATAG_CORE, 1, 4096, 0, 0, ATAG_MEM, 0, 0]);
        assert_eq!(
            Atags::parse(&buf).unwrap_err(),
            AtagsError::BadSize {
                offset: 20,
                tag: ATAG_MEM,
                size_words: 0
            }
        );
        let buf = bytes(&[1, ATAG_CORE, 0, 0]);
        assert!(matches!(
            Atags::parse(&buf),
            Err(AtagsError::BadSize { size_words: 1, .. })
        ));
    }

    #[test]
    fn tag_past_end_is_an_error() {
        let buf = bytes(&[5, ATAG_CORE, 1, 4096, 0, 100, ATAG_CMDLINE, 0]);
        assert_eq!(
            Atags::parse(&buf).unwrap_err(),
            AtagsError::PastEnd {
                offset: 20,
                tag: ATAG_CMDLINE
            }
        );
        // A huge size must not overflow.
        let buf = bytes(&[u32::MAX, ATAG_CORE]);
        assert!(matches!(
            Atags::parse(&buf),
            Err(AtagsError::PastEnd { .. })
        ));
    }

    #[test]
    fn truncated_and_unterminated() {
        assert_eq!(
            Atags::parse(&[1, 2, 3]).unwrap_err(),
            AtagsError::Truncated { offset: 0 }
        );
        let buf = bytes(&[2, ATAG_CORE, 4]);
        assert_eq!(Atags::parse(&buf).unwrap_err(), AtagsError::Unterminated);
    }

    #[test]
    fn short_mem_tag_and_bad_cmdline() {
        let buf = bytes(&[2, ATAG_CORE, 3, ATAG_MEM, 0x1000, 0, 0]);
        assert!(matches!(
            Atags::parse(&buf),
            Err(AtagsError::BadSize { tag: ATAG_MEM, .. })
        ));
        let buf = bytes(&[2, ATAG_CORE, 3, ATAG_CMDLINE, 0x00ff_feff, 0, 0]);
        assert_eq!(Atags::parse(&buf).unwrap_err(), AtagsError::CmdlineNotUtf8);
    }

    #[test]
    fn banks_have_no_cap() {
        // More MEM tags than memblock's table holds (and than AtagsBuilder has room
        // for): all kept, in list order; memblock decides what fits.
        let mut w = std::vec![2, ATAG_CORE];
        for i in 0..200u32 {
            w.extend([4, ATAG_MEM, 0x1000, i * 0x0100_0000]);
        }
        w.extend([0, ATAG_NONE]);
        let buf = bytes(&w);
        let a = Atags::parse(&buf).unwrap();
        assert_eq!(a.banks().count(), 200);
        assert_eq!(
            a.banks().last(),
            Some(MemRange::new(199 * 0x0100_0000, 0x1000))
        );
    }

    #[test]
    fn zero_sized_bank_and_no_bank_are_reported_as_given() {
        // The flow rejects them (SourceError::ZeroSized, NoMemory); the list is valid.
        let w = AtagsBuilder::new()
            .core()
            .and_then(|b| b.mem(0x6000_0000, 0))
            .and_then(|b| b.finish())
            .unwrap();
        let buf = bytes(&w);
        let a = Atags::parse(&buf).unwrap();
        assert_eq!(
            a.banks().collect::<Vec<_>>(),
            [MemRange::new(0x6000_0000, 0)]
        );
        let w = AtagsBuilder::new().core().and_then(|b| b.finish()).unwrap();
        let buf = bytes(&w);
        assert_eq!(Atags::parse(&buf).unwrap().banks().count(), 0);
    }

    #[test]
    fn overlapping_mem_banks_are_an_error() {
        let w = AtagsBuilder::new()
            .core()
            .and_then(|b| b.mem(0x6000_0000, 0x2000_0000))
            .and_then(|b| b.mem(0x7000_0000, 0x2000_0000))
            .and_then(|b| b.finish())
            .unwrap();
        let buf = bytes(&w);
        let e = Atags::parse(&buf).unwrap_err();
        assert_eq!(
            e,
            AtagsError::OverlappingBanks {
                first: MemRange::new(0x6000_0000, 0x2000_0000),
                second: MemRange::new(0x7000_0000, 0x2000_0000),
            }
        );
        assert_eq!(
            std::format!("{e}"),
            "ATAG_MEM banks overlap: [mem 0x0000000060000000-0x000000007fffffff] and \
             [mem 0x0000000070000000-0x000000008fffffff]"
        );
        // Banks that only touch are two banks.
        let w = AtagsBuilder::new()
            .core()
            .and_then(|b| b.mem(0x6000_0000, 0x1000_0000))
            .and_then(|b| b.mem(0x7000_0000, 0x1000_0000))
            .and_then(|b| b.finish())
            .unwrap();
        let buf = bytes(&w);
        assert_eq!(Atags::parse(&buf).unwrap().banks().count(), 2);
    }

    #[test]
    fn errors_display_and_convert() {
        let e = AtagsError::MissingCore { found: 0xd00dfeed };
        assert!(std::format!("{e}").contains("ATAG_CORE"));
        assert!(matches!(SourceError::from(e), SourceError::Malformed(_)));
    }
}
