//! `/chosen/bootargs` as Linux copies it into `boot_command_line`: bytes up to
//! `COMMAND_LINE_SIZE`, with a lossy text view for zonekit's parser
//! (`early_init_dt_scan_chosen`).

use super::*;

/// Capacity of [`Bootargs`]'s text: each of [`COMMAND_LINE_SIZE`] bytes could become
/// a three-byte U+FFFD, so the text always fits.
pub(super) const BOOTARGS_TEXT_MAX: usize = 3 * COMMAND_LINE_SIZE;

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
pub(super) fn bootargs_bytes(v: &[u8]) -> (&[u8], bool) {
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
