//! Dump formats, detected by content.
//!
//! Every format yields the same things: its note segments (for /proc/vmcore
//! one merged PT_NOTE; for a kdump-compressed file the notes it copied), the
//! VMCOREINFO text, the physical ranges it holds, and reads of physical
//! memory ([`PhysMem`]).

use crash_payload::PhysAddr;

use crate::mem::PhysMem;
use crate::source::Source;

pub mod elf;
pub mod flat;
pub mod kdump;

/// Which container the dump is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    /// ELF64 core: a /proc/vmcore copy or `makedumpfile -E`.
    Elf,
    /// ELF64 core written by QEMU's `dump-guest-memory`.
    QemuElf,
    /// makedumpfile's kdump-compressed format (`KDUMP   `).
    Kdump,
    /// QEMU's `dump-guest-memory -z/-l/-s` output (kdump-compressed).
    QemuKdump,
    /// makedumpfile's flattened stream (`-F`), holding a kdump-compressed or ELF dump.
    Flattened,
}

/// What a dump says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FormatInfo {
    /// The container.
    pub container: Container,
    /// Human-readable description, e.g. "kdump-compressed v6 (zlib, lzo)".
    pub description: String,
    /// ELF `e_machine` or the kdump header's machine, as a name ("aarch64").
    pub arch: String,
    /// Page size the format declares, if it declares one.
    pub page_size: Option<u64>,
    /// makedumpfile dump level, where recorded.
    pub dump_level: Option<u32>,
    /// CPU count the format declares (kdump header `nr_cpus`), if any.
    pub nr_cpus: Option<u32>,
    /// Kernel release the format declares (kdump header utsname), if any.
    pub release: Option<String>,
}

/// One note segment, with where it sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSegment {
    /// File offset of the segment's first byte (for error messages).
    pub file_offset: u64,
    /// The segment's bytes.
    pub data: Vec<u8>,
}

/// A physical memory range present in the dump (pages in it may still be
/// filtered out by a dump level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PhysRange {
    /// First address.
    pub start: PhysAddr,
    /// Length in bytes.
    pub size: u64,
}

/// An opened dump of any format.
pub trait Dump: PhysMem + Send + Sync {
    /// Format facts.
    fn info(&self) -> &FormatInfo;
    /// The note segments, in file order.
    fn note_segments(&self) -> &[NoteSegment];
    /// VMCOREINFO text, from a note or the format's own copy.
    fn vmcoreinfo(&self) -> Option<&[u8]>;
    /// Physical ranges held.
    fn ranges(&self) -> &[PhysRange];
    /// The underlying file.
    fn source(&self) -> &Source;
}
