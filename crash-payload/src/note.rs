//! ELF note framing: `Elf64_Nhdr { n_namesz, n_descsz, n_type }`, then the
//! name (with its NUL, padded to 4 bytes), then the descriptor (padded to 4).
//!
//! On arm64 the kernel uses 4-byte alignment for both name and descriptor
//! (`include/linux/elf.h`, `fs/proc/vmcore.c`). An all-zero header ends a
//! note buffer: the kernel writes one after each CPU's `CORE` note, and
//! `/proc/vmcore` stops walking a buffer at the first header with
//! `n_namesz == 0`.

use core::fmt;

/// Size of `Elf64_Nhdr` (three 32-bit words).
pub const NHDR_SIZE: usize = 12;

/// `NT_PRSTATUS`: a thread's registers (`struct elf_prstatus`).
pub const NT_PRSTATUS: u32 = 1;

/// Rounds `n` up to the note alignment (4).
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Why a note buffer could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteError {
    /// The buffer ends inside a note header.
    TruncatedHeader {
        /// Offset of the header in the buffer.
        offset: usize,
    },
    /// `n_namesz` or `n_descsz` points past the end of the buffer.
    TruncatedBody {
        /// Offset of the header in the buffer.
        offset: usize,
        /// Bytes the note claims (header + padded name + padded desc).
        needed: u64,
        /// Bytes left from the header to the end of the buffer.
        available: usize,
    },
    /// A name that is not NUL-terminated where `n_namesz` says it ends.
    NameNotTerminated {
        /// Offset of the header in the buffer.
        offset: usize,
    },
    /// Writing: the destination buffer is too small.
    NoRoom {
        /// Bytes the write needs.
        needed: usize,
        /// Bytes the destination has.
        available: usize,
    },
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NoteError::TruncatedHeader { offset } => write!(
                f,
                "note header at offset {offset:#x}: buffer ends before the 12-byte Elf64_Nhdr"
            ),
            NoteError::TruncatedBody {
                offset,
                needed,
                available,
            } => write!(
                f,
                "note at offset {offset:#x}: header claims {needed} bytes, only {available} remain"
            ),
            NoteError::NameNotTerminated { offset } => write!(
                f,
                "note at offset {offset:#x}: name is not NUL-terminated as n_namesz says"
            ),
            NoteError::NoRoom { needed, available } => {
                write!(f, "note needs {needed} bytes, destination has {available}")
            }
        }
    }
}

/// One note, borrowed from the buffer it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Note<'a> {
    /// Offset of this note's header in the buffer.
    pub offset: usize,
    /// The name without its terminating NUL (for example `b"CORE"`).
    pub name: &'a [u8],
    /// `n_type`.
    pub n_type: u32,
    /// The descriptor, exactly `n_descsz` bytes.
    pub desc: &'a [u8],
    /// Offset of the descriptor in the buffer (from `n_namesz`: a note with
    /// `n_namesz == 0` has no name bytes, not even a NUL).
    desc_off: usize,
}

impl Note<'_> {
    /// Offset of the descriptor in the buffer.
    pub fn desc_offset(&self) -> usize {
        self.desc_off
    }
}

/// Iterates the notes of a buffer.
///
/// Stops at the end of the buffer or at an all-zero-size header
/// (`n_namesz == 0 && n_descsz == 0`), the terminator the kernel writes.
/// After an error it yields nothing more (fused).
#[derive(Debug, Clone)]
pub struct NoteIter<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> NoteIter<'a> {
    /// Notes in `buf`, starting at offset 0.
    pub fn new(buf: &'a [u8]) -> Self {
        NoteIter {
            buf,
            pos: 0,
            done: false,
        }
    }

    /// Offset just past the last note read (where a terminator or the end is).
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for NoteIter<'a> {
    type Item = Result<Note<'a>, NoteError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let off = self.pos;
        let rest = &self.buf[off..];
        let (Some(namesz), Some(descsz), Some(n_type)) = (
            crate::le::u32_at(rest, 0),
            crate::le::u32_at(rest, 4),
            crate::le::u32_at(rest, 8),
        ) else {
            self.done = true;
            return Some(Err(NoteError::TruncatedHeader { offset: off }));
        };
        if namesz == 0 && descsz == 0 {
            self.done = true;
            return None;
        }
        let name_len = align4(namesz as usize) as u64;
        let desc_len = align4(descsz as usize) as u64;
        let needed = NHDR_SIZE as u64 + name_len + desc_len;
        if needed > rest.len() as u64 {
            // The last descriptor of a buffer may omit its padding.
            let unpadded = NHDR_SIZE as u64 + name_len + u64::from(descsz);
            if unpadded != rest.len() as u64 {
                self.done = true;
                return Some(Err(NoteError::TruncatedBody {
                    offset: off,
                    needed,
                    available: rest.len(),
                }));
            }
        }
        let name_raw = &rest[NHDR_SIZE..NHDR_SIZE + namesz as usize];
        let name = match name_raw.split_last() {
            Some((0, n)) => n,
            None => name_raw,
            Some(_) => {
                self.done = true;
                return Some(Err(NoteError::NameNotTerminated { offset: off }));
            }
        };
        let d0 = NHDR_SIZE + name_len as usize;
        let desc = &rest[d0..d0 + descsz as usize];
        self.pos = off + (needed as usize).min(rest.len());
        Some(Ok(Note {
            offset: off,
            name,
            n_type,
            desc,
            desc_off: off + d0,
        }))
    }
}

/// Bytes a note with this name (without NUL) and descriptor length takes.
pub const fn note_size(name_len: usize, desc_len: usize) -> usize {
    NHDR_SIZE + align4(name_len + 1) + align4(desc_len)
}

/// Writes one note at the start of `out`: header, `name` plus NUL padded to
/// 4, `desc` padded to 4. Padding bytes are zeroed. Returns the bytes written.
pub fn write_note(
    out: &mut [u8],
    name: &[u8],
    n_type: u32,
    desc: &[u8],
) -> Result<usize, NoteError> {
    let total = note_size(name.len(), desc.len());
    if out.len() < total {
        return Err(NoteError::NoRoom {
            needed: total,
            available: out.len(),
        });
    }
    let namesz = u32::try_from(name.len() + 1).map_err(|_| NoteError::NoRoom {
        needed: total,
        available: out.len(),
    })?;
    let descsz = u32::try_from(desc.len()).map_err(|_| NoteError::NoRoom {
        needed: total,
        available: out.len(),
    })?;
    let out = &mut out[..total];
    out.fill(0);
    out[0..4].copy_from_slice(&namesz.to_le_bytes());
    out[4..8].copy_from_slice(&descsz.to_le_bytes());
    out[8..12].copy_from_slice(&n_type.to_le_bytes());
    out[NHDR_SIZE..NHDR_SIZE + name.len()].copy_from_slice(name);
    let d0 = NHDR_SIZE + align4(name.len() + 1);
    out[d0..d0 + desc.len()].copy_from_slice(desc);
    Ok(total)
}

/// Writes the 12-byte all-zero terminator header at the start of `out`.
pub fn write_terminator(out: &mut [u8]) -> Result<usize, NoteError> {
    let available = out.len();
    let t = out.get_mut(..NHDR_SIZE).ok_or(NoteError::NoRoom {
        needed: NHDR_SIZE,
        available,
    })?;
    t.fill(0);
    Ok(NHDR_SIZE)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn round_trip_two_notes_and_terminator() {
        let mut buf = [0xffu8; 80];
        let a = write_note(&mut buf, b"CORE", NT_PRSTATUS, &[1, 2, 3]).unwrap();
        assert_eq!(a, 12 + 8 + 4);
        let b = write_note(&mut buf[a..], b"VMCOREINFO", 0, b"OSRELEASE=6.1\n").unwrap();
        write_terminator(&mut buf[a + b..]).unwrap();
        let notes: Vec<_> = NoteIter::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].name, b"CORE");
        assert_eq!(notes[0].desc, &[1, 2, 3]);
        assert_eq!(notes[0].desc_offset(), 20);
        assert_eq!(notes[1].name, b"VMCOREINFO");
        assert_eq!(notes[1].offset, a);
        assert_eq!(notes[1].desc, b"OSRELEASE=6.1\n");
        // Padding after the 3-byte descriptor is zero.
        assert_eq!(buf[23], 0);
    }

    #[test]
    fn truncated_header_is_named() {
        let mut buf = [0u8; 40];
        let a = write_note(&mut buf, b"CORE", 1, &[0; 8]).unwrap();
        buf[a] = 1; // a non-zero header that the buffer cuts short
        let short = &buf[..a + 5];
        let mut it = NoteIter::new(short);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(
            it.next(),
            Some(Err(NoteError::TruncatedHeader { offset: a }))
        );
        assert_eq!(it.next(), None, "fused after an error");
    }

    #[test]
    fn absurd_descsz_is_named() {
        let mut buf = [0u8; 32];
        write_note(&mut buf, b"CORE", 1, &[0; 4]).unwrap();
        buf[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        match NoteIter::new(&buf).next() {
            Some(Err(NoteError::TruncatedBody {
                offset: 0,
                available: 32,
                ..
            })) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unterminated_name_is_an_error() {
        let mut buf = [0u8; 32];
        write_note(&mut buf, b"CORE", 1, &[0; 4]).unwrap();
        buf[12 + 4] = b'X';
        assert_eq!(
            NoteIter::new(&buf).next(),
            Some(Err(NoteError::NameNotTerminated { offset: 0 }))
        );
    }

    #[test]
    fn no_room_to_write() {
        let mut buf = [0u8; 10];
        assert_eq!(
            write_note(&mut buf, b"CORE", 1, &[]),
            Err(NoteError::NoRoom {
                needed: 20,
                available: 10
            })
        );
    }
}
