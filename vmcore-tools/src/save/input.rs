//! How a save reads its input: page data the file holds verbatim (an ELF
//! core's `PT_LOAD` data) with `pread` into the caller's buffer, so that no
//! page of the input mapping becomes resident; everything else (small
//! reads, compressed or reassembled formats) through the dump.
//!
//! Except on procfs: `/proc/vmcore`'s `read` copies old memory one page at
//! a time through a temporary kernel mapping, while its `mmap` maps the old
//! memory's page frames directly (`remap_pfn_range`), so a copy from the
//! mapping is plain memory speed and, those frames not being counted as
//! the process's pages, adds nothing to its resident set. There every read
//! goes through the mapping.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use crash_payload::PhysAddr;

use crate::format::Dump;
use crate::mem::{MemError, PhysMem};

/// Reads shorter than this go through the mapping even when `pread`
/// could serve them (page-table entries: few distinct pages, many reads).
const PREAD_MIN: usize = 64;

/// A dump's memory, read the cheapest way for a long sequential pass.
pub struct Input<'a> {
    dump: &'a dyn Dump,
    /// The input file opened again for `pread`, when page data is read so.
    file: Option<File>,
    /// The input is on procfs (`/proc/vmcore`): its mapping maps page
    /// frames that are not this process's pages.
    procfs: bool,
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("path", &self.dump.source().path())
            .field("pread", &self.file.is_some())
            .finish()
    }
}

/// True when `path` lies on the file system mounted at `/proc`.
fn on_procfs(path: &Path) -> bool {
    match (std::fs::metadata(path), std::fs::metadata("/proc")) {
        (Ok(f), Ok(p)) => f.dev() == p.dev(),
        _ => false,
    }
}

impl<'a> Input<'a> {
    /// Reads `dump`; `pread` only for a mapped regular file that is not on
    /// procfs and has the size that was mapped.
    pub fn new(dump: &'a dyn Dump) -> Input<'a> {
        let src = dump.source();
        let procfs = on_procfs(src.path());
        let file = (src.is_mapped() && !procfs)
            .then(|| File::open(src.path()).ok())
            .flatten()
            .filter(|f| f.metadata().is_ok_and(|m| m.len() == src.len()));
        Input { dump, file, procfs }
    }

    /// True when verbatim page data is read with `pread`.
    pub fn uses_pread(&self) -> bool {
        self.file.is_some()
    }

    /// True when reading page data makes pages of the input's mapping
    /// resident in this process, so that a long pass should drop them
    /// behind itself ([`crate::source::Source::release_resident`]): not
    /// with `pread`, and not on procfs, whose mapping maps old memory's
    /// page frames (`MADV_DONTNEED` is refused there, and a whole-mapping
    /// `madvise` is not free: under qemu-user it walks every page).
    pub fn fills_mapping(&self) -> bool {
        self.file.is_none() && !self.procfs && self.dump.source().is_mapped()
    }

    /// The dump.
    pub fn dump(&self) -> &'a dyn Dump {
        self.dump
    }

    /// The `len` bytes at `addr`, in place in the input's mapping, when
    /// the input is procfs (/proc/vmcore: its mapping maps the old memory,
    /// which a copy would only duplicate) and the file holds them verbatim
    /// in one piece; `None` to read them another way.
    pub fn map_verbatim(&self, addr: PhysAddr, len: u64) -> Option<Result<&'a [u8], MemError>> {
        if !self.procfs || self.file.is_some() || !self.dump.source().is_mapped() {
            return None;
        }
        let off = self.dump.file_extent(addr, len)?;
        Some(
            self.dump
                .source()
                .bytes(off, len, "page data")
                .map_err(|e| MemError::Corrupt {
                    addr,
                    why: format!("{} bytes at file offset {off:#x}: {}", len, e.expected),
                }),
        )
    }

    /// Reads the `buf.len()` bytes at `addr` in one piece when the file
    /// holds them verbatim: one `pread`, or (procfs, no `pread`) one copy
    /// from the mapping. `None` when the file does not hold them so, to
    /// read them another way.
    pub fn read_verbatim(&self, addr: PhysAddr, buf: &mut [u8]) -> Option<Result<(), MemError>> {
        let len = buf.len() as u64;
        let off = self.dump.file_extent(addr, len)?;
        let Some(f) = self.file.as_ref() else {
            return Some(self.dump.read_phys(addr, buf));
        };
        Some(f.read_exact_at(buf, off).map_err(|e| MemError::Corrupt {
            addr,
            why: format!("reading {len} bytes at file offset {off:#x}: {e}"),
        }))
    }
}

impl PhysMem for Input<'_> {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        if buf.len() >= PREAD_MIN && self.file.is_some() {
            if let Some(r) = self.read_verbatim(addr, buf) {
                return r;
            }
        }
        self.dump.read_phys(addr, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfs_is_told_from_other_file_systems() {
        assert!(on_procfs(Path::new("/proc/self/status")));
        assert!(!on_procfs(Path::new(env!("CARGO_MANIFEST_DIR"))));
        assert!(!on_procfs(Path::new("/nonexistent/file")));
    }
}
