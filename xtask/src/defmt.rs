//! Decoding the guest's defmt frames (`cargo xtask qemu --defmt`).
//!
//! A guest built with the `defmt` feature writes rzCOBS-encoded defmt frames with
//! semihosting to the host file `zonekit.defmt` in QEMU's working directory (see
//! `zonekit_arch_arm::rt::defmt_logger`). After the run, [`decode`] reads the
//! image's ELF (its `.defmt` section holds the interned log statements, its DWARF
//! their source locations) and turns the frames into [`Line`]s with `defmt-decoder`.

use std::path::{Path, PathBuf};

use defmt_decoder::{DecodeError, Table};

/// The file the guest's frames land in, relative to QEMU's working directory.
pub const FRAME_FILE: &str = "zonekit.defmt";

/// One decoded log frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `DEBUG`, `INFO`, `WARN`, `ERROR` (`PRINT` for level-less frames).
    pub level: String,
    /// The message, as the text backend would have printed it.
    pub message: String,
    /// `file:line` of the log macro call, the file relative to the workspace when it
    /// lies inside it; `?` when the ELF has no location for the frame.
    pub location: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<5} {}  ({})", self.level, self.message, self.location)
    }
}

/// Decode `frames` against the ELF at `elf`; file names are shown relative to `root`.
/// Fails when the ELF has no defmt table or a frame cannot be decoded.
pub fn decode(elf: &Path, frames: &[u8], root: &Path) -> Result<Vec<Line>, String> {
    let bytes = std::fs::read(elf).map_err(|e| format!("reading {}: {e}", elf.display()))?;
    let table = Table::parse(&bytes)
        .map_err(|e| format!("{}: bad defmt table: {e}", elf.display()))?
        .ok_or_else(|| {
            format!(
                "{} has no .defmt section (built without the defmt feature?)",
                elf.display()
            )
        })?;
    let locations = table
        .get_locations(&bytes)
        .map_err(|e| format!("{}: reading defmt locations: {e}", elf.display()))?;
    let mut decoder = table.new_stream_decoder();
    decoder.received(frames);
    let mut lines = Vec::new();
    loop {
        match decoder.decode() {
            Ok(frame) => {
                let level = frame
                    .level()
                    .map_or_else(|| "PRINT".to_string(), |l| format!("{l:?}").to_uppercase());
                let location = locations.get(&frame.index()).map_or_else(
                    || "?".to_string(),
                    |loc| format!("{}:{}", relative(&loc.file, root).display(), loc.line),
                );
                lines.push(Line {
                    level,
                    message: frame.display_message().to_string(),
                    location,
                });
            }
            Err(DecodeError::UnexpectedEof) => break,
            Err(DecodeError::Malformed) => {
                return Err(format!(
                    "malformed defmt frame after {} good ones (stale ELF?)",
                    lines.len()
                ))
            }
        }
    }
    Ok(lines)
}

/// `file` relative to `root` when it lies inside it.
fn relative(file: &Path, root: &Path) -> PathBuf {
    file.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| file.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_and_relative_paths() {
        let l = Line {
            level: "INFO".into(),
            message: "On node 0 totalpages: 131072".into(),
            location: "core/src/mmzone.rs:42".into(),
        };
        assert_eq!(
            l.to_string(),
            "INFO  On node 0 totalpages: 131072  (core/src/mmzone.rs:42)"
        );
        assert_eq!(
            relative(Path::new("/w/core/src/a.rs"), Path::new("/w")),
            PathBuf::from("core/src/a.rs")
        );
        assert_eq!(
            relative(Path::new("/rustc/x/lib.rs"), Path::new("/w")),
            PathBuf::from("/rustc/x/lib.rs")
        );
    }

    #[test]
    fn missing_elf_is_an_error() {
        assert!(decode(Path::new("/nonexistent.elf"), &[], Path::new("/")).is_err());
    }
}
