//! ELF to raw image conversion (what `objcopy -O binary` does, by physical address).

use object::elf::{FileHeader32, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;
use std::path::Path;

/// Largest raw image accepted (a sanity bound against a broken link).
const MAX_IMAGE: u64 = 64 << 20;

/// Write the PT_LOAD segments of the ELF at `elf` into a flat image at `out`, placed by
/// physical address from the lowest one, gaps zero-filled, .bss (no file bytes) left
/// out. The lowest address and the entry point must both be `load_address`.
pub fn elf_to_raw(elf: &Path, out: &Path, load_address: u64) -> Result<(), String> {
    let data = std::fs::read(elf).map_err(|e| format!("reading {}: {e}", elf.display()))?;
    let raw = raw_image(&data, load_address).map_err(|e| format!("{}: {e}", elf.display()))?;
    std::fs::write(out, raw).map_err(|e| format!("writing {}: {e}", out.display()))
}

/// The conversion itself, on bytes.
pub fn raw_image(data: &[u8], load_address: u64) -> Result<Vec<u8>, String> {
    let header =
        FileHeader32::<Endianness>::parse(data).map_err(|e| format!("not a 32-bit ELF: {e}"))?;
    let endian = header.endian().map_err(|e| format!("bad ELF: {e}"))?;
    let mut segments = Vec::new();
    for ph in header
        .program_headers(endian, data)
        .map_err(|e| format!("bad program headers: {e}"))?
    {
        if ph.p_type(endian) != PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let bytes = ph
            .data(endian, data)
            .map_err(|_| "segment runs past the file".to_string())?;
        segments.push((u64::from(ph.p_paddr(endian)), bytes));
    }
    let lowest = segments
        .iter()
        .map(|s| s.0)
        .min()
        .ok_or("no loadable segment")?;
    let highest = segments
        .iter()
        .map(|(a, b)| a + b.len() as u64)
        .max()
        .unwrap_or(lowest);
    if lowest != load_address {
        return Err(format!(
            "image starts at {lowest:#x}, expected the load address {load_address:#x}"
        ));
    }
    let entry = u64::from(header.e_entry(endian));
    if entry != load_address {
        return Err(format!(
            "entry point {entry:#x} is not the load address {load_address:#x}"
        ));
    }
    if highest - lowest > MAX_IMAGE {
        return Err(format!("image of {} bytes is too large", highest - lowest));
    }
    let mut raw = vec![0u8; (highest - lowest) as usize];
    for (addr, bytes) in segments {
        let at = (addr - lowest) as usize;
        raw[at..at + bytes.len()].copy_from_slice(bytes);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        assert!(raw_image(b"not an elf at all, definitely", 0).is_err());
        assert!(raw_image(&[], 0).is_err());
    }
}
