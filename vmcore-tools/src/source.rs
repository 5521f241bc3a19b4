//! The input file: mmapped, read by range, with the pages read counted (the
//! benchmark reports them; `info`, `cpus` and `verify` must read only the
//! pages they need).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ParseError};

/// Granule of the touched-page count.
pub const TOUCH_PAGE: u64 = 4096;

enum Backing {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

/// An input file's bytes.
pub struct Source {
    path: PathBuf,
    backing: Backing,
    touched: Vec<AtomicU64>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("path", &self.path)
            .field("len", &self.len())
            .finish()
    }
}

impl Source {
    /// Maps `path` read-only.
    pub fn open(path: &Path) -> Result<Source, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if meta.len() == 0 {
            return Err(Error::parse(path, ParseError::new(0, "a dump file, found an empty file")));
        }
        // SAFETY: the map is read-only and private to this process; a dump
        // file being truncated underneath us would fault (SIGBUS), which is
        // the same risk every mmap-based reader (makedumpfile, crash) takes.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Ok(Source::with_backing(path.to_path_buf(), Backing::Map(map)))
    }

    /// Wraps bytes already in memory (tests, fuzzing, stdin).
    pub fn from_vec(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Source {
        Source::with_backing(path.into(), Backing::Owned(bytes))
    }

    fn with_backing(path: PathBuf, backing: Backing) -> Source {
        let len = match &backing {
            Backing::Map(m) => m.len() as u64,
            Backing::Owned(v) => v.len() as u64,
        };
        let pages = len.div_ceil(TOUCH_PAGE);
        let words = pages.div_ceil(64) as usize;
        let mut touched = Vec::with_capacity(words);
        touched.resize_with(words, || AtomicU64::new(0));
        Source {
            path,
            backing,
            touched,
        }
    }

    /// True when the bytes are the file at [`Source::path`], mapped (not a
    /// copy in memory).
    pub fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Map(_))
    }

    /// The file name, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File size in bytes.
    pub fn len(&self) -> u64 {
        self.all().len() as u64
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn all(&self) -> &[u8] {
        match &self.backing {
            Backing::Map(m) => m,
            Backing::Owned(v) => v,
        }
    }

    /// `len` bytes at `offset`, or an error naming the offset and `what`.
    pub fn bytes(&self, offset: u64, len: u64, what: &str) -> Result<&[u8], ParseError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.len()).ok_or_else(|| {
            ParseError::new(
                offset,
                format!(
                    "{what} ({len} bytes), but the file is {} bytes",
                    self.len()
                ),
            )
        })?;
        self.touch(offset, end);
        Ok(&self.all()[offset as usize..end as usize])
    }

    fn touch(&self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let first = start / TOUCH_PAGE;
        let last = (end - 1) / TOUCH_PAGE;
        for p in first..=last {
            if let Some(w) = self.touched.get((p / 64) as usize) {
                w.fetch_or(1 << (p % 64), Ordering::Relaxed);
            }
        }
    }

    /// Drops the mapping's resident pages from this process (they stay in
    /// the page cache and fault back in if read again). A long sequential
    /// pass calls this behind itself so its resident set stays small.
    pub fn release_resident(&self) {
        if let Backing::Map(m) = &self.backing {
            // SAFETY: the map is a read-only file mapping that this process
            // never writes, so MADV_DONTNEED discards nothing that cannot be
            // read back from the file: later reads fault the same bytes in.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// Distinct 4 KiB pages of the file read so far.
    pub fn pages_touched(&self) -> u64 {
        self.touched
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_touch_count() {
        let s = Source::from_vec("t", vec![0u8; 3 * 4096]);
        assert!(s.bytes(4095, 2, "x").is_ok());
        assert_eq!(s.pages_touched(), 2);
        let e = s.bytes(3 * 4096 - 1, 2, "an ELF header").unwrap_err();
        assert_eq!(e.offset, 3 * 4096 - 1);
        assert!(e.expected.contains("an ELF header"));
        assert!(s.bytes(u64::MAX, 2, "x").is_err());
    }
}
