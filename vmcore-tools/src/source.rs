//! The input file: mmapped, read by range, with the pages read counted (the
//! benchmark reports them; `info`, `cpus` and `verify` must read only the
//! pages they need).
//!
//! A file of [`WINDOWED_FROM`] bytes or more (a dump) is mapped in windows,
//! each when first read and then kept, rather than whole at open: mapping
//! costs per page of the range (`/proc/vmcore`'s `mmap` fills every page
//! table entry of the range up front, and qemu-user records every page),
//! while a pass reads a small, clustered part of a dump (`-d 31` on the
//! 2 GiB test dump: 33 of 512 windows).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, ParseError};

/// Granule of the touched-page count.
pub const TOUCH_PAGE: u64 = 4096;

/// Files this large or larger are mapped in windows.
pub const WINDOWED_FROM: u64 = 256 << 20;

/// Bytes between window starts.
const WINDOW: u64 = 4 << 20;

/// Each window maps this much past the next one's start, so that any read
/// of up to this many bytes lies in the window of its first byte.
const OVERLAP: u64 = 1 << 20;

enum Backing {
    Map(Mmap),
    Owned(Vec<u8>),
    Windows(Windows),
}

impl Backing {
    /// The file's length in bytes.
    fn len(&self) -> u64 {
        match self {
            Backing::Map(m) => m.len() as u64,
            Backing::Owned(v) => v.len() as u64,
            Backing::Windows(w) => w.len,
        }
    }
}

/// A file mapped window by window; mappings live as long as the source, so
/// slices of them can be handed out.
struct Windows {
    file: File,
    len: u64,
    /// The file's name, for [`crate::sigbus`].
    name: Arc<[u8]>,
    /// Window `k` maps `[k * WINDOW, k * WINDOW + WINDOW + OVERLAP)`, cut
    /// at the end of the file.
    slots: Box<[OnceLock<Mmap>]>,
    /// Reads longer than [`OVERLAP`], each mapped on its own (by start and
    /// length, so a repeated read maps once).
    long: Mutex<HashMap<(u64, u64), Mmap>>,
}

impl Windows {
    fn new(file: File, len: u64, name: Arc<[u8]>) -> Windows {
        let n = len.div_ceil(WINDOW) as usize;
        let mut slots = Vec::with_capacity(n);
        slots.resize_with(n, OnceLock::new);
        Windows {
            file,
            len,
            name,
            slots: slots.into_boxed_slice(),
            long: Mutex::new(HashMap::new()),
        }
    }

    /// Maps `len` bytes at `offset` of the file (memmap2 maps from the page
    /// holding `offset` and points past it).
    fn map(&self, offset: u64, len: u64) -> std::io::Result<Mmap> {
        // SAFETY: as for the whole-file map in `Source::open`: read-only,
        // private to this process; a file truncated underneath faults (SIGBUS,
        // reported by `crate::sigbus`).
        unsafe {
            MmapOptions::new()
                .offset(offset)
                .len(len as usize)
                .map(&self.file)
        }
    }

    /// The bytes `[offset, end)`, which lie inside the file.
    fn bytes(&self, offset: u64, end: u64) -> std::io::Result<&[u8]> {
        if end - offset <= OVERLAP {
            let k = offset / WINDOW;
            let start = k * WINDOW;
            let slot = &self.slots[k as usize];
            let m = match slot.get() {
                Some(m) => m,
                None => {
                    let m = self.map(start, (start + WINDOW + OVERLAP).min(self.len) - start)?;
                    let ours = m.as_ptr();
                    // Another thread may have mapped it first: use theirs.
                    let m = slot.get_or_init(|| m);
                    if std::ptr::eq(m.as_ptr(), ours) {
                        crate::sigbus::register(m, start, &self.name);
                    }
                    m
                }
            };
            return Ok(&m[(offset - start) as usize..(end - start) as usize]);
        }
        let mut long = self.long.lock().unwrap_or_else(|p| p.into_inner());
        let m = match long.entry((offset, end - offset)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let m = e.insert(self.map(offset, end - offset)?);
                crate::sigbus::register(m, offset, &self.name);
                m
            }
        };
        let (ptr, n) = (m.as_ptr(), m.len());
        drop(long);
        // SAFETY: the map is never removed from `long` (nor unmapped)
        // before `self` is dropped, and moving an `Mmap` (the map growing)
        // does not move the memory it maps: the slice stays valid for the
        // lifetime of `&self`.
        Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
    }

    /// Every mapping made so far.
    fn for_each_map(&self, mut f: impl FnMut(&Mmap)) {
        self.slots.iter().filter_map(OnceLock::get).for_each(&mut f);
        let long = self.long.lock().unwrap_or_else(|p| p.into_inner());
        long.values().for_each(f);
    }
}

fn name_bytes(path: &Path) -> Arc<[u8]> {
    use std::os::unix::ffi::OsStrExt;
    Arc::from(path.as_os_str().as_bytes())
}

/// An input file's bytes.
pub struct Source {
    /// The path's bytes (shared with the windows, and named by
    /// [`crate::sigbus`] for a failed mapped read).
    name: Arc<[u8]>,
    backing: Backing,
    touched: Vec<AtomicU64>,
}

impl Drop for Source {
    fn drop(&mut self) {
        // Out of the table before the mappings go.
        crate::sigbus::forget(&self.name);
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("path", &self.path())
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
            return Err(Error::parse(
                path,
                ParseError::new(0, "a dump file, found an empty file"),
            ));
        }
        Source::open_file(path, file, meta.len(), meta.len() >= WINDOWED_FROM)
    }

    /// Maps `file` (`len` bytes, named `path`), whole or in windows.
    fn open_file(path: &Path, file: File, len: u64, windowed: bool) -> Result<Source, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let name = name_bytes(path);
        if windowed {
            let w = Windows::new(file, len, Arc::clone(&name));
            // Map the first window now: a file that cannot be mapped (a
            // pipe, a device without mmap) fails here, at open.
            w.bytes(0, 1).map_err(io)?;
            return Ok(Source::with_backing(name, Backing::Windows(w)));
        }
        // SAFETY: the map is read-only and private to this process; a page
        // the kernel cannot supply (the file truncated underneath us) faults
        // with SIGBUS, which `crate::sigbus` turns into an error naming the
        // file and offset.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        crate::sigbus::register(&map, 0, &name);
        Ok(Source::with_backing(name, Backing::Map(map)))
    }

    /// Wraps bytes already in memory (tests, fuzzing, stdin).
    pub fn from_vec(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Source {
        Source::with_backing(name_bytes(&path.into()), Backing::Owned(bytes))
    }

    fn with_backing(name: Arc<[u8]>, backing: Backing) -> Source {
        let len = backing.len();
        let pages = len.div_ceil(TOUCH_PAGE);
        let words = pages.div_ceil(64) as usize;
        let mut touched = Vec::with_capacity(words);
        touched.resize_with(words, || AtomicU64::new(0));
        Source {
            name,
            backing,
            touched,
        }
    }

    /// True when the bytes are the file at [`Source::path`], mapped (not a
    /// copy in memory).
    pub fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Map(_) | Backing::Windows(_))
    }

    /// The file name, for messages.
    pub fn path(&self) -> &Path {
        use std::os::unix::ffi::OsStrExt;
        Path::new(std::ffi::OsStr::from_bytes(&self.name))
    }

    /// File size in bytes.
    pub fn len(&self) -> u64 {
        self.backing.len()
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` bytes at `offset`, or an error naming the offset and `what`.
    pub fn bytes(&self, offset: u64, len: u64, what: &str) -> Result<&[u8], ParseError> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.len())
            .ok_or_else(|| {
                ParseError::new(
                    offset,
                    format!("{what} ({len} bytes), but the file is {} bytes", self.len()),
                )
            })?;
        self.touch(offset, end);
        match &self.backing {
            Backing::Map(m) => Ok(&m[offset as usize..end as usize]),
            Backing::Owned(v) => Ok(&v[offset as usize..end as usize]),
            Backing::Windows(_) if offset == end => Ok(&[]),
            Backing::Windows(w) => w.bytes(offset, end).map_err(|e| {
                ParseError::new(
                    offset,
                    format!("{what} ({len} bytes), but mapping them failed: {e}"),
                )
            }),
        }
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
        let drop_pages = |m: &Mmap| {
            // SAFETY: every map is a read-only file mapping that this
            // process never writes, so MADV_DONTNEED discards nothing that
            // cannot be read back from the file: later reads fault the same
            // bytes in.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        };
        match &self.backing {
            Backing::Map(m) => drop_pages(m),
            Backing::Windows(w) => w.for_each_map(drop_pages),
            Backing::Owned(_) => {}
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
    fn windowed_reads_equal_the_file() {
        let dir = std::env::temp_dir().join(format!("vmcore-windows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let len = 2 * WINDOW + OVERLAP + 12345;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + (i >> 12)) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let s = Source::open_file(&path, File::open(&path).unwrap(), len, true).unwrap();
        assert!(s.is_mapped());
        assert_eq!(s.len(), len);
        let check = |off: u64, n: u64| {
            let got = s.bytes(off, n, "x").unwrap();
            assert_eq!(got, &data[off as usize..(off + n) as usize], "{off} {n}");
        };
        // Inside a window, across a window start (in the overlap), the
        // longest short read, a long read over two windows, a repeated
        // long read, the last byte, an empty read at the end.
        check(10, 4096);
        check(WINDOW - 100, 200);
        check(WINDOW + 5, OVERLAP);
        check(3, 2 * WINDOW);
        check(3, 2 * WINDOW);
        check(WINDOW + 4095, OVERLAP + 1);
        check(len - 1, 1);
        check(len, 0);
        assert!(s.bytes(len - 1, 2, "past the end").is_err());
        s.release_resident();
        check(2 * WINDOW + 17, 3000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Forks; the child truncates the file under `s`'s mapping and reads
    /// offset `at` through it (no allocation after the fork). The child's
    /// exit status and what it wrote to stderr.
    fn read_after_truncate(s: &Source, path: &Path, at: u64) -> (i32, String) {
        use std::io::Read;
        use std::os::fd::{AsRawFd, FromRawFd};
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let mut fds = [0; 2];
        // SAFETY: a plain pipe(2) into a local array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only makes syscalls and reads mapped memory
        // (no allocation, no lock another thread may hold), then exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: the child's own descriptors and the mapping `s` holds;
            // the read is of a byte inside the mapped length.
            unsafe {
                libc::dup2(fds[1], 2);
                if crate::sigbus::install().is_err() || libc::ftruncate(f.as_raw_fd(), 0) != 0 {
                    libc::_exit(10);
                }
                match s.bytes(at, 1, "a byte") {
                    Ok(b) => {
                        std::ptr::read_volatile(&b[0]);
                        libc::_exit(0)
                    }
                    Err(_) => libc::_exit(11),
                }
            }
        }
        assert!(pid > 0);
        // SAFETY: fds[1] is ours, closed once.
        unsafe { libc::close(fds[1]) };
        let mut err = String::new();
        // SAFETY: fds[0] is ours and owned by the File from here on.
        unsafe { std::fs::File::from_raw_fd(fds[0]) }
            .read_to_string(&mut err)
            .unwrap();
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child killed: status {status:#x}");
        (libc::WEXITSTATUS(status), err)
    }

    #[test]
    fn a_file_that_shrank_under_its_mapping_is_an_error_naming_file_and_offset() {
        let dir = std::env::temp_dir().join(format!("vmcore-sigbus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for windowed in [false, true] {
            let path = dir.join(format!("dump-{windowed}"));
            std::fs::write(&path, vec![0x5au8; 64 << 10]).unwrap();
            let s =
                Source::open_file(&path, File::open(&path).unwrap(), 64 << 10, windowed).unwrap();
            // Mapped before the fork (a window is mapped at its first read).
            assert_eq!(s.bytes(0xa000, 1, "a byte").unwrap(), &[0x5a]);
            let (code, err) = read_after_truncate(&s, &path, 0xa123);
            assert_eq!(code, 2, "{err}");
            let want = format!(
                "vmcore: {}: reading offset 0xa123 through its mapping failed (SIGBUS)",
                path.display()
            );
            assert!(err.starts_with(&want), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
