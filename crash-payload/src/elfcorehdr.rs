//! The elfcorehdr: the ELF64 `ET_CORE` header and program headers that the
//! crash kernel reads (through the DT's `linux,elfcorehdr`) to build
//! `/proc/vmcore`.
//!
//! Layout as the kernel writes it for `kexec_file_load`
//! (`kernel/crash_core.c`, `crash_prepare_elf64_headers()`), which the
//! capture kernel's `fs/proc/vmcore.c` expects:
//! - `Elf64_Ehdr` (64 bytes): `ELFCLASS64`, `ELFDATA2LSB`, `EV_CURRENT`,
//!   `ELFOSABI_NONE`, `e_type = ET_CORE`, `e_phoff = 64`, `e_phentsize = 56`,
//!   no sections, `e_entry = 0`, `e_flags = 0`.
//! - `Elf64_Phdr` (56 bytes each), straight after:
//!   - `PT_NOTE` per CPU: `p_offset = p_paddr =` the CPU's crash-notes
//!     buffer, `p_filesz = p_memsz = crash_notes_size`, `p_vaddr = 0`, no
//!     flags;
//!   - `PT_NOTE` for VMCOREINFO, same shape;
//!   - `PT_LOAD` for kernel text and for each RAM range: `p_flags = RWX`,
//!     `p_offset = p_paddr`, `p_vaddr` the kernel virtual address,
//!     `p_filesz = p_memsz`, `p_align = 0`.
//!
//! `p_offset` of every header is a *physical address* of the crashed
//! kernel's memory: `/proc/vmcore` rewrites offsets when it builds its own
//! header. A `PT_NOTE`'s `p_memsz` should include room for a zero note header
//! after the last note: `update_note_header_size_elf64()` reads the next
//! `n_namesz` before it checks the size.
//!
//! This module only writes bytes into a caller buffer: no allocation.

use crate::le;
use crate::{PhysAddr, VirtAddr};

/// `sizeof(Elf64_Ehdr)`.
pub const EHDR_SIZE: usize = 64;
/// `sizeof(Elf64_Phdr)`.
pub const PHDR_SIZE: usize = 56;

/// `e_type`: core file.
pub const ET_CORE: u16 = 4;
/// `e_machine`: AArch64 (`include/uapi/linux/elf-em.h`).
pub const EM_AARCH64: u16 = 183;
/// `e_machine`: x86-64.
pub const EM_X86_64: u16 = 62;
/// `p_type`: loadable segment.
pub const PT_LOAD: u32 = 1;
/// `p_type`: notes.
pub const PT_NOTE: u32 = 4;
/// `p_flags`: execute.
pub const PF_X: u32 = 1;
/// `p_flags`: write.
pub const PF_W: u32 = 2;
/// `p_flags`: read.
pub const PF_R: u32 = 4;
/// `e_ident[EI_CLASS]`: 64-bit.
pub const ELFCLASS64: u8 = 2;
/// `e_ident[EI_DATA]`: little-endian.
pub const ELFDATA2LSB: u8 = 1;
/// `e_version` / `e_ident[EI_VERSION]`.
pub const EV_CURRENT: u8 = 1;
/// `e_ident[EI_OSABI]`: System V (what the kernel writes).
pub const ELFOSABI_NONE: u8 = 0;
/// `e_phnum` at or above this means "see section 0" (`PN_XNUM`); we refuse it.
pub const PN_XNUM: usize = 0xffff;

/// One `Elf64_Phdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    /// `p_type` ([`PT_NOTE`], [`PT_LOAD`]).
    pub p_type: u32,
    /// `p_flags` ([`PF_R`] | [`PF_W`] | [`PF_X`]).
    pub p_flags: u32,
    /// `p_offset`: in an elfcorehdr, the physical address of the data.
    pub p_offset: u64,
    /// `p_vaddr`.
    pub p_vaddr: VirtAddr,
    /// `p_paddr`.
    pub p_paddr: PhysAddr,
    /// `p_filesz`.
    pub p_filesz: u64,
    /// `p_memsz`.
    pub p_memsz: u64,
    /// `p_align`.
    pub p_align: u64,
}

impl ProgramHeader {
    /// A `PT_NOTE` for `size` bytes of notes at physical `paddr`, shaped as
    /// the kernel shapes its per-CPU and VMCOREINFO notes.
    pub const fn note(paddr: PhysAddr, size: u64) -> Self {
        ProgramHeader {
            p_type: PT_NOTE,
            p_flags: 0,
            p_offset: paddr.0,
            p_vaddr: VirtAddr(0),
            p_paddr: paddr,
            p_filesz: size,
            p_memsz: size,
            p_align: 0,
        }
    }

    /// A `PT_LOAD` of `size` bytes of memory at physical `paddr`, mapped by
    /// the crashed kernel at `vaddr`.
    pub const fn load(paddr: PhysAddr, vaddr: VirtAddr, size: u64) -> Self {
        ProgramHeader {
            p_type: PT_LOAD,
            p_flags: PF_R | PF_W | PF_X,
            p_offset: paddr.0,
            p_vaddr: vaddr,
            p_paddr: paddr,
            p_filesz: size,
            p_memsz: size,
            p_align: 0,
        }
    }
}

/// Why the headers could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfCoreHdrError {
    /// More program headers than `e_phnum` can count without `PN_XNUM`.
    TooManyHeaders {
        /// Headers given.
        count: usize,
    },
    /// The destination buffer is too small.
    NoRoom {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
}

impl core::fmt::Display for ElfCoreHdrError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ElfCoreHdrError::TooManyHeaders { count } => write!(
                f,
                "elfcorehdr: {count} program headers, at most {} fit in e_phnum",
                PN_XNUM - 1
            ),
            ElfCoreHdrError::NoRoom { needed, available } => write!(
                f,
                "elfcorehdr needs {needed} bytes, destination has {available}"
            ),
        }
    }
}

/// Bytes of the ELF header plus `phnum` program headers, or `None` when
/// `phnum` does not fit in `e_phnum`.
pub const fn headers_size(phnum: usize) -> Option<usize> {
    if phnum >= PN_XNUM {
        return None;
    }
    Some(EHDR_SIZE + phnum * PHDR_SIZE)
}

/// Writes the `Elf64_Ehdr` and `phdrs` at the start of `out`; returns the
/// bytes written ([`headers_size`]). Bytes past that are left untouched.
pub fn write_headers(
    out: &mut [u8],
    e_machine: u16,
    phdrs: &[ProgramHeader],
) -> Result<usize, ElfCoreHdrError> {
    let needed =
        headers_size(phdrs.len()).ok_or(ElfCoreHdrError::TooManyHeaders { count: phdrs.len() })?;
    let available = out.len();
    let out = out
        .get_mut(..needed)
        .ok_or(ElfCoreHdrError::NoRoom { needed, available })?;
    out.fill(0);
    // e_ident
    out[0..4].copy_from_slice(b"\x7fELF");
    out[4] = ELFCLASS64;
    out[5] = ELFDATA2LSB;
    out[6] = EV_CURRENT;
    out[7] = ELFOSABI_NONE;
    // Every offset below lies inside `out`, sized by headers_size above;
    // phnum < PN_XNUM so it fits in u16.
    let _ = le::put_u16(out, 16, ET_CORE); // e_type
    let _ = le::put_u16(out, 18, e_machine); // e_machine
    let _ = le::put_u32(out, 20, u32::from(EV_CURRENT)); // e_version
    let _ = le::put_u64(out, 24, 0); // e_entry
    let _ = le::put_u64(out, 32, EHDR_SIZE as u64); // e_phoff
    let _ = le::put_u64(out, 40, 0); // e_shoff
    let _ = le::put_u32(out, 48, 0); // e_flags
    let _ = le::put_u16(out, 52, EHDR_SIZE as u16); // e_ehsize
    let _ = le::put_u16(out, 54, PHDR_SIZE as u16); // e_phentsize
    let _ = le::put_u16(out, 56, phdrs.len() as u16); // e_phnum
    let _ = le::put_u16(out, 58, 0); // e_shentsize
    let _ = le::put_u16(out, 60, 0); // e_shnum
    let _ = le::put_u16(out, 62, 0); // e_shstrndx
    for (i, p) in phdrs.iter().enumerate() {
        let o = EHDR_SIZE + i * PHDR_SIZE;
        let _ = le::put_u32(out, o, p.p_type);
        let _ = le::put_u32(out, o + 4, p.p_flags);
        let _ = le::put_u64(out, o + 8, p.p_offset);
        let _ = le::put_u64(out, o + 16, p.p_vaddr.0);
        let _ = le::put_u64(out, o + 24, p.p_paddr.0);
        let _ = le::put_u64(out, o + 32, p.p_filesz);
        let _ = le::put_u64(out, o + 40, p.p_memsz);
        let _ = le::put_u64(out, o + 48, p.p_align);
    }
    Ok(needed)
}

/// Reads program header `i` back from bytes written by [`write_headers`]
/// (or any little-endian ELF64 file whose `e_phoff`/`e_phnum` are sane).
pub fn read_header(buf: &[u8], i: usize) -> Option<ProgramHeader> {
    if buf.get(0..4)? != b"\x7fELF" || *buf.get(4)? != ELFCLASS64 || *buf.get(5)? != ELFDATA2LSB {
        return None;
    }
    let phoff = usize::try_from(le::u64_at(buf, 32)?).ok()?;
    let phnum = usize::from(le::u16_at(buf, 56)?);
    if i >= phnum {
        return None;
    }
    let o = phoff.checked_add(i.checked_mul(PHDR_SIZE)?)?;
    Some(ProgramHeader {
        p_type: le::u32_at(buf, o)?,
        p_flags: le::u32_at(buf, o + 4)?,
        p_offset: le::u64_at(buf, o + 8)?,
        p_vaddr: VirtAddr(le::u64_at(buf, o + 16)?),
        p_paddr: PhysAddr(le::u64_at(buf, o + 24)?),
        p_filesz: le::u64_at(buf, o + 32)?,
        p_memsz: le::u64_at(buf, o + 40)?,
        p_align: le::u64_at(buf, o + 48)?,
    })
}

const _: () = assert!(EHDR_SIZE == 64 && PHDR_SIZE == 56);

#[cfg(test)]
mod tests {
    use super::*;

    fn phdrs() -> [ProgramHeader; 3] {
        [
            ProgramHeader::note(PhysAddr(0xbfe3_d000), 424),
            ProgramHeader::load(
                PhysAddr(0x4021_0000),
                VirtAddr(0xffff_d0d2_0801_0000),
                0x1_9f0_000,
            ),
            ProgramHeader::load(
                PhysAddr(0x4000_0000),
                VirtAddr(0xffff_0254_4000_0000),
                0x6fe0_0000,
            ),
        ]
    }

    #[test]
    fn writes_ehdr_fields_and_reads_back() {
        let mut buf = [0xaau8; 256];
        let n = write_headers(&mut buf, EM_AARCH64, &phdrs()).unwrap();
        assert_eq!(n, 64 + 3 * 56);
        assert_eq!(&buf[0..8], b"\x7fELF\x02\x01\x01\x00");
        assert_eq!(le::u16_at(&buf, 16), Some(ET_CORE));
        assert_eq!(le::u16_at(&buf, 18), Some(183));
        assert_eq!(le::u64_at(&buf, 32), Some(64));
        assert_eq!(le::u16_at(&buf, 54), Some(56));
        assert_eq!(le::u16_at(&buf, 56), Some(3));
        assert_eq!(buf[n], 0xaa, "bytes past the headers untouched");
        for (i, p) in phdrs().iter().enumerate() {
            assert_eq!(read_header(&buf, i).as_ref(), Some(p));
        }
        assert_eq!(read_header(&buf, 3), None);
    }

    #[test]
    fn no_room_names_sizes() {
        let mut buf = [0u8; 100];
        assert_eq!(
            write_headers(&mut buf, EM_AARCH64, &phdrs()),
            Err(ElfCoreHdrError::NoRoom {
                needed: 232,
                available: 100
            })
        );
    }

    #[test]
    fn phnum_bound() {
        assert_eq!(headers_size(PN_XNUM), None);
        assert_eq!(headers_size(2), Some(176));
    }
}
