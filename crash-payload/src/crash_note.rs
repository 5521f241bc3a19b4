//! The kernel's per-CPU crash-notes buffer (`kernel/crash_core.c`,
//! `crash_save_cpu()`): one `CORE`/`NT_PRSTATUS` note (412 bytes) followed
//! by a zeroed 12-byte header, 424 bytes in all. Its physical address is
//! `/sys/devices/system/cpu/cpuN/crash_notes`. A CPU that never saved its
//! registers leaves the buffer zeroed.

use crate::note::{self, NoteIter, NHDR_SIZE, NT_PRSTATUS};
use crate::prstatus::{ElfPrstatus, PRSTATUS_SIZE};

/// Name of a CPU's register note.
pub const CORE_NAME: &[u8] = b"CORE";
/// Bytes of the `CORE` note: 12 + 8 + 392.
pub const CORE_NOTE_SIZE: usize = note::note_size(CORE_NAME.len(), PRSTATUS_SIZE);
/// Bytes of the whole per-CPU buffer: the note plus a zero terminator header.
pub const CRASH_NOTE_BUF_SIZE: usize = CORE_NOTE_SIZE + NHDR_SIZE;
/// The kernel allocates each buffer with this alignment.
pub const CRASH_NOTE_ALIGN: usize = 512;

const _: () = assert!(CORE_NOTE_SIZE == 412);
const _: () = assert!(CRASH_NOTE_BUF_SIZE == 424);

/// What a per-CPU crash-notes buffer holds.
// No allocator here (no_std, no alloc): the 392-byte variant stays inline.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashNote {
    /// All zero: the CPU never saved its registers.
    Empty,
    /// A valid `CORE`/`NT_PRSTATUS` note.
    Saved(ElfPrstatus),
}

/// Why a crash-notes buffer is not a valid saved note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashNoteError {
    /// The buffer is shorter than 424 bytes.
    Short {
        /// Bytes given.
        got: usize,
    },
    /// The framing is broken.
    Framing(note::NoteError),
    /// The first note is not `CORE`/`NT_PRSTATUS`.
    NotCore {
        /// Its `n_type`.
        n_type: u32,
    },
    /// The descriptor is not 392 bytes.
    DescSize {
        /// Its size.
        got: usize,
    },
    /// No zero header follows the note.
    NoTerminator,
    /// The buffer is not empty but holds no note (first header zero-sized,
    /// other bytes not).
    Garbage,
}

impl core::fmt::Display for CrashNoteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CrashNoteError::Short { got } => {
                write!(f, "crash-notes buffer is {got} bytes, expected {CRASH_NOTE_BUF_SIZE}")
            }
            CrashNoteError::Framing(e) => write!(f, "crash-notes buffer: {e}"),
            CrashNoteError::NotCore { n_type } => write!(
                f,
                "crash-notes buffer: first note is type {n_type} or not named CORE, expected CORE/NT_PRSTATUS"
            ),
            CrashNoteError::DescSize { got } => write!(
                f,
                "crash-notes buffer: NT_PRSTATUS descriptor is {got} bytes, expected {PRSTATUS_SIZE}"
            ),
            CrashNoteError::NoTerminator => {
                write!(f, "crash-notes buffer: no zero header after the CORE note (offset {CORE_NOTE_SIZE:#x})")
            }
            CrashNoteError::Garbage => {
                write!(f, "crash-notes buffer: zero-sized first header but non-zero bytes after it")
            }
        }
    }
}

/// Reads a per-CPU crash-notes buffer (at least 424 bytes; only the first
/// 424 are looked at).
pub fn parse(buf: &[u8]) -> Result<CrashNote, CrashNoteError> {
    let buf = buf
        .get(..CRASH_NOTE_BUF_SIZE)
        .ok_or(CrashNoteError::Short { got: buf.len() })?;
    let mut it = NoteIter::new(buf);
    let first = match it.next() {
        None => {
            return if buf.iter().all(|&b| b == 0) {
                Ok(CrashNote::Empty)
            } else {
                Err(CrashNoteError::Garbage)
            }
        }
        Some(r) => r.map_err(CrashNoteError::Framing)?,
    };
    if first.name != CORE_NAME || first.n_type != NT_PRSTATUS {
        return Err(CrashNoteError::NotCore {
            n_type: first.n_type,
        });
    }
    if first.desc.len() != PRSTATUS_SIZE {
        return Err(CrashNoteError::DescSize {
            got: first.desc.len(),
        });
    }
    if buf[CORE_NOTE_SIZE..CRASH_NOTE_BUF_SIZE]
        .iter()
        .any(|&b| b != 0)
    {
        return Err(CrashNoteError::NoTerminator);
    }
    let pr = ElfPrstatus::parse(first.desc).map_err(|e| CrashNoteError::DescSize { got: e.got })?;
    Ok(CrashNote::Saved(pr))
}

/// Builds the 424-byte buffer the kernel's `crash_save_cpu()` would write.
pub fn build(pr: &ElfPrstatus) -> [u8; CRASH_NOTE_BUF_SIZE] {
    let mut out = [0u8; CRASH_NOTE_BUF_SIZE];
    let mut desc = [0u8; PRSTATUS_SIZE];
    pr.write(&mut desc);
    // Sizes are compile-time constants that fit (asserted above).
    let n = note::write_note(&mut out, CORE_NAME, NT_PRSTATUS, &desc).unwrap_or(0);
    let _ = note::write_terminator(&mut out[n..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_buffer_is_empty() {
        assert_eq!(parse(&[0u8; 424]), Ok(CrashNote::Empty));
    }

    #[test]
    fn build_then_parse() {
        let pr = ElfPrstatus {
            pr_pid: 7,
            ..Default::default()
        };
        let b = build(&pr);
        assert_eq!(&b[0..4], &5u32.to_le_bytes());
        assert_eq!(&b[4..8], &392u32.to_le_bytes());
        assert_eq!(&b[12..17], b"CORE\0");
        assert_eq!(parse(&b), Ok(CrashNote::Saved(pr)));
    }

    #[test]
    fn every_single_byte_flip_in_header_is_caught_or_harmless() {
        let b = build(&ElfPrstatus::default());
        // Header and name (0..17); bytes 17..20 are name padding, ignored like the kernel does.
        for i in 0..17 {
            let mut c = b;
            c[i] ^= 0x40;
            assert!(parse(&c).is_err(), "flip at {i} not caught");
        }
        let mut c = b;
        c[420] = 1;
        assert_eq!(parse(&c), Err(CrashNoteError::NoTerminator));
    }

    #[test]
    fn short_buffer() {
        assert_eq!(parse(&[0u8; 100]), Err(CrashNoteError::Short { got: 100 }));
    }
}
