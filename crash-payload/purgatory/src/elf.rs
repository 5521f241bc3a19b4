//! From the linked purgatory ELF to the bytes the loader places: the file
//! bytes of its single `PT_LOAD` (linked at 0), checked against the header.
#![forbid(unsafe_code)]

use crate::layout::{Header, LayoutError};

/// `EM_AARCH64`.
pub const EM_AARCH64: u16 = 183;
/// `PT_LOAD`.
pub const PT_LOAD: u32 = 1;

/// Why an ELF file is not a purgatory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// Not a little-endian ELF64 for AArch64.
    NotAarch64Elf,
    /// A header or the segment's bytes lie past the end of the file.
    Truncated,
    /// Not exactly one `PT_LOAD`, or it is not linked at 0.
    Segments,
    /// The header inside the segment is wrong.
    Layout(LayoutError),
    /// `image_size` in the header differs from the segment's `p_memsz`
    /// rounded to 4 KiB.
    MemSize {
        /// `image_size`.
        header: u64,
        /// `p_memsz`.
        memsz: u64,
    },
}

impl core::fmt::Display for ElfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotAarch64Elf => write!(f, "not a little-endian ELF64 AArch64 file"),
            Self::Truncated => write!(f, "ELF file truncated"),
            Self::Segments => write!(f, "expected one PT_LOAD linked at address 0"),
            Self::Layout(e) => write!(f, "{e}"),
            Self::MemSize { header, memsz } => write!(
                f,
                "header image_size {header:#x} but PT_LOAD p_memsz {memsz:#x}"
            ),
        }
    }
}

fn u16_at(b: &[u8], o: usize) -> Result<u16, ElfError> {
    let s = b.get(o..o + 2).ok_or(ElfError::Truncated)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], o: usize) -> Result<u32, ElfError> {
    let s = b.get(o..o + 4).ok_or(ElfError::Truncated)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], o: usize) -> Result<u64, ElfError> {
    let s = b.get(o..o + 8).ok_or(ElfError::Truncated)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(s);
    Ok(u64::from_le_bytes(w))
}

/// The loadable image inside a purgatory ELF and its checked header.
pub fn image(elf: &[u8]) -> Result<(&[u8], Header), ElfError> {
    if elf.get(0..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) || u16_at(elf, 18)? != EM_AARCH64
    {
        return Err(ElfError::NotAarch64Elf);
    }
    let phoff = u64_at(elf, 32)? as usize;
    let phentsize = u16_at(elf, 54)? as usize;
    let phnum = u16_at(elf, 56)? as usize;
    let mut found = None;
    for i in 0..phnum {
        let ph = phoff
            .checked_add(i.checked_mul(phentsize).ok_or(ElfError::Truncated)?)
            .ok_or(ElfError::Truncated)?;
        if u32_at(elf, ph)? != PT_LOAD {
            continue;
        }
        if found.is_some() {
            return Err(ElfError::Segments);
        }
        let offset = u64_at(elf, ph + 8)?;
        let vaddr = u64_at(elf, ph + 16)?;
        let filesz = u64_at(elf, ph + 32)?;
        let memsz = u64_at(elf, ph + 40)?;
        if vaddr != 0 || memsz < filesz {
            return Err(ElfError::Segments);
        }
        found = Some((offset, filesz, memsz));
    }
    let (offset, filesz, memsz) = found.ok_or(ElfError::Segments)?;
    let end = offset.checked_add(filesz).ok_or(ElfError::Truncated)?;
    let bytes = elf
        .get(offset as usize..end as usize)
        .ok_or(ElfError::Truncated)?;
    let h = Header::parse(bytes).map_err(ElfError::Layout)?;
    let rounded = memsz.checked_add(4095).ok_or(ElfError::Truncated)? & !4095;
    if h.image_size != rounded {
        return Err(ElfError::MemSize {
            header: h.image_size,
            memsz,
        });
    }
    Ok((bytes, h))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::layout::*;
    use std::vec::Vec;

    /// A minimal ELF: 64-byte ELF header, one program header, then the
    /// image at offset 0x1000.
    fn build(image_size: u64, memsz: u64, vaddr: u64) -> Vec<u8> {
        let mut e = std::vec![0u8; 0x1000 + 0x400];
        e[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        e[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        e[32..40].copy_from_slice(&64u64.to_le_bytes());
        e[54..56].copy_from_slice(&56u16.to_le_bytes());
        e[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        e[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        e[ph + 8..ph + 16].copy_from_slice(&0x1000u64.to_le_bytes());
        e[ph + 16..ph + 24].copy_from_slice(&vaddr.to_le_bytes());
        e[ph + 32..ph + 40].copy_from_slice(&0x400u64.to_le_bytes());
        e[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
        let i = 0x1000;
        e[i + HDR_MAGIC..i + HDR_MAGIC + 8].copy_from_slice(&HEADER_MAGIC);
        e[i + HDR_VERSION..][..4].copy_from_slice(&VERSION.to_le_bytes());
        e[i + HDR_HEADER_SIZE..][..4].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        e[i + HDR_PARAMS_OFFSET..][..8].copy_from_slice(&(PARAMS_OFFSET as u64).to_le_bytes());
        e[i + HDR_PARAMS_SIZE..][..8].copy_from_slice(&(PARAMS_SIZE as u64).to_le_bytes());
        e[i + HDR_IMAGE_SIZE..][..8].copy_from_slice(&image_size.to_le_bytes());
        e
    }

    #[test]
    fn extracts_the_load_segment() {
        let e = build(0x2000, 0x1f00, 0);
        let (bytes, h) = image(&e).unwrap();
        assert_eq!(bytes.len(), 0x400);
        assert_eq!(&bytes[HDR_MAGIC..HDR_MAGIC + 8], b"KXRSPURG");
        assert_eq!(h.image_size, 0x2000);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            image(&build(0x3000, 0x1f00, 0)),
            Err(ElfError::MemSize {
                header: 0x3000,
                memsz: 0x1f00
            })
        );
        assert_eq!(
            image(&build(0x2000, 0x1f00, 0x4000_0000)),
            Err(ElfError::Segments)
        );
        let mut e = build(0x2000, 0x1f00, 0);
        e[18] = 62; // EM_X86_64
        assert_eq!(image(&e), Err(ElfError::NotAarch64Elf));
        let e = build(0x2000, 0x1f00, 0);
        assert_eq!(image(&e[..0x1100]), Err(ElfError::Truncated));
        let mut e = build(0x2000, 0x1f00, 0);
        e[0x1000 + HDR_MAGIC] = b'X';
        assert_eq!(image(&e), Err(ElfError::Layout(LayoutError::BadMagic)));
    }
}
