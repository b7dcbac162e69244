//! The guest images' section sizes, with and without the `defmt` feature (what the
//! feature costs or saves in flash and RAM): every allocated section of the release
//! ELF, by kind, plus `.defmt`, the interned format strings that stay on the host.

use object::{Object, ObjectSection, SectionFlags, SectionKind};
use std::fmt::Write as _;
use std::path::Path;

/// Bytes per kind of section in one ELF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SectionSizes {
    /// Code (`.text*`, vectors).
    pub text: u64,
    /// Read-only data (`.rodata*`).
    pub rodata: u64,
    /// Initialised data (`.data*`).
    pub data: u64,
    /// Zero-initialised data (`.bss*`) and the stacks.
    pub bss: u64,
    /// `.defmt`: defmt's interned strings, in the ELF only (not loaded).
    pub defmt: u64,
}

impl SectionSizes {
    /// What the raw image holds: code, read-only and initialised data.
    pub fn loaded(&self) -> u64 {
        self.text + self.rodata + self.data
    }
}

/// One image's sizes, for the table.
pub struct ImageSize {
    /// Board name.
    pub board: &'static str,
    /// Built with the `defmt` feature.
    pub defmt: bool,
    /// Its sections.
    pub sizes: SectionSizes,
}

/// The section sizes of the ELF at `path`.
pub fn of_file(path: &Path) -> Result<SectionSizes, String> {
    let data = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    of_elf(&data).map_err(|e| format!("{}: {e}", path.display()))
}

/// The section sizes of an ELF in memory: each section the program allocates
/// (`SHF_ALLOC`) counted by its kind (the zero-filled ones, `.bss` and the stacks,
/// together), `.defmt` by name.
pub fn of_elf(data: &[u8]) -> Result<SectionSizes, String> {
    let file = object::File::parse(data).map_err(|e| format!("not an ELF: {e}"))?;
    if file.format() != object::BinaryFormat::Elf {
        return Err(format!("not an ELF: a {:?} file", file.format()));
    }
    let mut s = SectionSizes::default();
    for sec in file.sections() {
        let name = sec.name().unwrap_or("");
        let size = sec.size();
        if name == ".defmt" {
            s.defmt += size;
            continue;
        }
        let alloc = match sec.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_ALLOC) != 0,
            _ => false,
        };
        if !alloc {
            continue;
        }
        match sec.kind() {
            SectionKind::Text => s.text += size,
            SectionKind::ReadOnlyData
            | SectionKind::ReadOnlyString
            | SectionKind::ReadOnlyDataWithRel => s.rodata += size,
            SectionKind::UninitializedData | SectionKind::UninitializedTls => s.bss += size,
            SectionKind::Data | SectionKind::Tls => s.data += size,
            // Anything else the program loads (exception tables, init arrays) is data.
            _ => s.data += size,
        }
    }
    Ok(s)
}

/// The BENCHMARKS.md section for `images`.
pub fn render(s: &mut String, images: &[ImageSize]) {
    if images.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Guest: image size (release)\n");
    let _ = writeln!(
        s,
        "Bytes per kind of section in each bench board's release ELF, built without and with \
         the `defmt` feature (`cargo xtask qemu --release [--defmt]`). Loaded = the code, \
         read-only and initialised data sections (the raw image adds their alignment \
         padding); `.bss + stacks` = every zero-filled section (`.bss`, the boot, \
         secondary-CPU and exception stacks); `.defmt` is the table of interned format \
         strings, which stays in the ELF on the host. zonekit's defmt backend still renders each message \
         with `core::fmt` on the target (see `core/src/fmt.rs`): the feature swaps the `log` \
         dispatch and console logger for defmt's encoder and the semihosting frame writer \
         and keeps the formatting code, so the two builds differ little.\n"
    );
    let _ = writeln!(
        s,
        "| board | defmt | .text | .rodata | .data | .bss + stacks | loaded | .defmt (host only) |\n|---|---|---|---|---|---|---|---|"
    );
    for i in images {
        let z = i.sizes;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            i.board,
            if i.defmt { "yes" } else { "no" },
            z.text,
            z.rodata,
            z.data,
            z.bss,
            z.loaded(),
            z.defmt
        );
    }
    let _ = writeln!(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_has_code_and_data() {
        let exe = std::env::current_exe().expect("test binary path");
        let s = of_file(&exe).expect("the test binary is an ELF");
        assert!(s.text > 0, "{s:?}");
        assert!(s.rodata > 0, "{s:?}");
        assert!(s.bss > 0, "{s:?}");
        assert_eq!(s.defmt, 0, "{s:?}");
    }

    #[test]
    fn garbage_is_an_error() {
        let e = of_elf(b"definitely not an ELF file").unwrap_err();
        assert!(e.contains("not an ELF"), "{e}");
    }

    #[test]
    fn renders_one_row_per_image() {
        let mut s = String::new();
        let sizes = SectionSizes {
            text: 10,
            rodata: 20,
            data: 3,
            bss: 400,
            defmt: 5,
        };
        render(
            &mut s,
            &[ImageSize {
                board: "vexpress-a9",
                defmt: true,
                sizes,
            }],
        );
        assert!(
            s.contains("| vexpress-a9 | yes | 10 | 20 | 3 | 400 | 33 | 5 |"),
            "{s}"
        );
        let mut empty = String::new();
        render(&mut empty, &[]);
        assert!(empty.is_empty());
    }
}
