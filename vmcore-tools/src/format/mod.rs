//! Dump formats, detected by content.
//!
//! Every format yields the same things: its note segments (for /proc/vmcore
//! one merged PT_NOTE; for a kdump-compressed file the notes it copied), the
//! VMCOREINFO text, the physical ranges it holds, and reads of physical
//! memory ([`PhysMem`]).

use std::borrow::Cow;
use std::path::Path;

use crash_payload::note::{NoteIter, NT_PRSTATUS};
use crash_payload::vmcoreinfo::VMCOREINFO_NAME;
use crash_payload::PhysAddr;

use crate::error::{Error, ParseError};
use crate::mem::PhysMem;
use crate::source::Source;

#[doc(hidden)]
pub mod build;
pub mod elf;
pub mod flat;
pub mod kdump;
pub mod lzo;

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
    #[serde(serialize_with = "serialize_phys")]
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
    /// The offset in [`Dump::source`]'s file at which the `len` bytes of
    /// physical memory from `addr` are stored verbatim, when they are (an
    /// ELF core's `PT_LOAD` data); `None` when they are compressed, split,
    /// zero-filled or absent. Lets a long sequential pass read the file
    /// with `pread` into its own buffers instead of through the mapping.
    fn file_extent(&self, addr: PhysAddr, len: u64) -> Option<u64> {
        let _ = (addr, len);
        None
    }
    /// The format inside the container: for a flattened stream, the
    /// reassembled file's format ([`Container::Kdump`], [`Container::QemuKdump`],
    /// [`Container::Elf`] or [`Container::QemuElf`]); otherwise the container.
    fn inner_container(&self) -> Container {
        self.info().container
    }
}

/// Serializes a physical address as a `0x`-prefixed hex string (JSON has no
/// 64-bit integers that every reader keeps exact).
fn serialize_phys<S: serde::Serializer>(addr: &PhysAddr, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{:#x}", addr.get()))
}

/// `NT_PRFPREG`: floating-point registers. QEMU's `dump-guest-memory` writes
/// one after each CPU's `NT_PRSTATUS` (`target/arm/arch_dump.c`); the
/// kernel's crash notes never do.
pub const NT_PRFPREG: u32 = 2;

/// `EM_AARCH64`, the only machine this tool reads (`include/uapi/linux/elf-em.h`).
pub const EM_AARCH64: u16 = 183;

/// Size of arm64 `struct elf_prstatus`: an `NT_PRSTATUS` descriptor of this
/// size marks an arm64 dump when the format names no machine.
const ARM64_PRSTATUS_SIZE: usize = 392;

/// Upper bound on the note bytes a dump may carry (every PT_NOTE together,
/// or a kdump file's note copy). The kernel's notes are a few KiB per CPU;
/// QEMU caps its guest note at 1 MiB.
pub const MAX_NOTE_BYTES: u64 = 64 << 20;

/// The bytes a format reader parses: the file itself, or the file a
/// flattened stream reassembles to. Readers never see which.
pub trait ByteSource: Send + Sync + std::fmt::Debug {
    /// Length in bytes.
    fn len(&self) -> u64;

    /// True when there are no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` bytes at `offset` (borrowed when they lie in one piece), or an
    /// error naming the offset and `what` was expected there.
    fn bytes(&self, offset: u64, len: u64, what: &str) -> Result<Cow<'_, [u8]>, ParseError>;

    /// The file underneath.
    fn source(&self) -> &Source;

    /// The offset in [`ByteSource::source`]'s file of the `len` bytes at
    /// `offset`, when they lie there as they are (`None` for a flattened
    /// stream, whose bytes are reassembled).
    fn file_offset(&self, offset: u64, len: u64) -> Option<u64> {
        let _ = (offset, len);
        None
    }

    /// `offset` for a message: "file offset 0x…", or for a flattened stream
    /// the reassembled offset and the stream offset it comes from.
    fn describe(&self, offset: u64) -> String {
        format!("file offset {offset:#x}")
    }
}

impl ByteSource for Source {
    fn len(&self) -> u64 {
        Source::len(self)
    }

    fn bytes(&self, offset: u64, len: u64, what: &str) -> Result<Cow<'_, [u8]>, ParseError> {
        Source::bytes(self, offset, len, what).map(Cow::Borrowed)
    }

    fn source(&self) -> &Source {
        self
    }

    fn file_offset(&self, offset: u64, len: u64) -> Option<u64> {
        offset
            .checked_add(len)
            .filter(|&end| end <= Source::len(self))
            .map(|_| offset)
    }
}

/// ELF magic, `\x7fELF`.
pub const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
/// The kdump-compressed signature (`diskdump_mod.h` `KDUMP_SIGNATURE`).
pub const KDUMP_SIGNATURE: &[u8; 8] = b"KDUMP   ";
/// The old diskdump signature, which this tool does not read.
pub const DISKDUMP_SIGNATURE: &[u8; 8] = b"DISKDUMP";
/// The flattened stream's signature (`makedumpfile.h` `MAKEDUMPFILE_SIGNATURE`).
pub const MAKEDUMPFILE_SIGNATURE: &[u8; 12] = b"makedumpfile";

/// Opens a dump file of any supported format, detected by content.
pub fn open(path: &Path) -> Result<Box<dyn Dump>, Error> {
    from_source(Source::open(path)?)
}

/// Reads a dump from bytes already opened (a mapped file, or memory in
/// tests and fuzzing), detecting the format by content.
///
/// Only little-endian ELF64 aarch64 cores, kdump-compressed files and
/// flattened makedumpfile streams of either are accepted; anything else is
/// an error naming the file, the offset and what was expected there.
pub fn from_source(src: Source) -> Result<Box<dyn Dump>, Error> {
    let path = src.path().to_path_buf();
    let n = src.len().min(16);
    let head = src
        .bytes(0, n, "a dump header")
        .map_err(|e| Error::parse(&path, e))?
        .to_vec();
    match sniff(&head) {
        Some(Kind::Elf) => elf::ElfDump::parse(src)
            .map(|d| Box::new(d) as Box<dyn Dump>)
            .map_err(|e| Error::parse(&path, e)),
        Some(Kind::Kdump) => kdump::KdumpDump::parse(src)
            .map(|d| Box::new(d) as Box<dyn Dump>)
            .map_err(|e| Error::parse(&path, e)),
        Some(Kind::Flat) => flat::open(src),
        None => Err(Error::parse(&path, unknown_format(&head))),
    }
}

/// What the first bytes say a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Elf,
    Kdump,
    Flat,
}

pub(crate) fn sniff(head: &[u8]) -> Option<Kind> {
    if head.starts_with(ELF_MAGIC) {
        Some(Kind::Elf)
    } else if head.starts_with(KDUMP_SIGNATURE) {
        Some(Kind::Kdump)
    } else if head.starts_with(MAKEDUMPFILE_SIGNATURE) {
        Some(Kind::Flat)
    } else {
        None
    }
}

pub(crate) fn unknown_format(head: &[u8]) -> ParseError {
    if head.starts_with(DISKDUMP_SIGNATURE) {
        return ParseError::new(
            0,
            "a kdump-compressed signature \"KDUMP   \", found \"DISKDUMP\" (the old diskdump format, not supported)",
        );
    }
    let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    ParseError::new(
        0,
        format!(
            "an ELF core (\\x7fELF), a kdump-compressed file (\"KDUMP   \") or a flattened makedumpfile stream (\"makedumpfile\"), found bytes {}",
            shown.join(" ")
        ),
    )
}

/// Names an ELF `e_machine` for messages.
pub(crate) fn machine_name(m: u16) -> &'static str {
    match m {
        3 => "i386",
        8 => "mips",
        20 => "ppc",
        21 => "ppc64",
        22 => "s390",
        40 => "arm",
        62 => "x86_64",
        183 => "aarch64",
        243 => "riscv",
        258 => "loongarch",
        _ => "unknown",
    }
}

/// What a dump's notes say about it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct NotesSummary {
    /// The first `VMCOREINFO` note's descriptor.
    pub vmcoreinfo: Option<Vec<u8>>,
    /// A `CORE`/`NT_PRSTATUS` note directly followed by a `CORE`/`NT_PRFPREG`
    /// note: QEMU's pattern.
    pub qemu: bool,
    /// A `CORE`/`NT_PRSTATUS` descriptor of arm64's 392 bytes.
    pub arm64_prstatus: bool,
}

/// Walks every note of every segment (stopping a segment at its first bad
/// note: the CPU analysis reports those; opening the dump does not fail).
pub(crate) fn summarize_notes(segments: &[NoteSegment]) -> NotesSummary {
    let mut s = NotesSummary::default();
    for seg in segments {
        let mut prev_prstatus = false;
        for note in NoteIter::new(&seg.data) {
            let Ok(note) = note else { break };
            let core = note.name == b"CORE";
            if core && note.n_type == NT_PRFPREG && prev_prstatus {
                s.qemu = true;
            }
            prev_prstatus = core && note.n_type == NT_PRSTATUS;
            if prev_prstatus && note.desc.len() == ARM64_PRSTATUS_SIZE {
                s.arm64_prstatus = true;
            }
            if s.vmcoreinfo.is_none() && note.name == VMCOREINFO_NAME {
                s.vmcoreinfo = Some(note.desc.to_vec());
            }
        }
    }
    s
}

/// True when VMCOREINFO text carries a key only arm64 kernels write.
pub(crate) fn vmcoreinfo_says_arm64(text: &[u8]) -> bool {
    text.split(|&b| b == b'\n').any(|line| {
        line.starts_with(b"NUMBER(kimage_voffset)=") || line.starts_with(b"NUMBER(TCR_EL1_T1SZ)=")
    })
}

/// Adds `[start, end)` to a map of disjoint intervals (start → (end,
/// value)), only where the map has nothing yet; `make(at)` gives the value
/// for a piece starting at `at`. Used where the first writer of a byte wins
/// (overlapping PT_LOADs in header order; flattened records latest first).
pub(crate) fn insert_uncovered<V>(
    map: &mut std::collections::BTreeMap<u64, (u64, V)>,
    start: u64,
    end: u64,
    mut make: impl FnMut(u64) -> V,
) {
    let mut covered: Vec<(u64, u64)> = Vec::new();
    for (&s, (e, _)) in map.range(..end).rev() {
        if *e <= start {
            break;
        }
        covered.push((s, *e));
    }
    covered.reverse();
    let mut cur = start;
    for (s, e) in covered {
        if s > cur {
            map.insert(cur, (s, make(cur)));
        }
        cur = cur.max(e);
    }
    if cur < end {
        map.insert(cur, (end, make(cur)));
    }
}

impl std::fmt::Debug for dyn Dump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dump")
            .field("info", self.info())
            .field("source", self.source())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::build::{self, Compression, ElfBuilder, ElfLoad, FlatOptions, KdumpBuilder};
    use super::*;

    /// xorshift64: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn inputs() -> Vec<(&'static str, Vec<u8>)> {
        let elf = ElfBuilder::new()
            .note_segment(build::kernel_notes(2, true))
            .load(ElfLoad::new(
                0x4000_0000,
                build::pattern(0x4000_0000, 0x2000),
            ))
            .load(ElfLoad::new(0x4000_2000, build::pattern(0x4000_2000, 0x800)).memsz(0x1000))
            .build();
        let qelf = ElfBuilder::new()
            .note_segment(build::qemu_notes(1))
            .load(ElfLoad::new(
                0x4000_0000,
                build::pattern(0x4000_0000, 0x1000),
            ))
            .pn_xnum(true)
            .build();
        let kd = KdumpBuilder::new(4096)
            .pattern_pages(0x40000..0x40001, Compression::Zlib)
            .pattern_pages(0x40001..0x40002, Compression::Lzo)
            .pattern_pages(0x40002..0x40003, Compression::Snappy)
            .pattern_pages(0x40003..0x40004, Compression::Zstd)
            .pattern_pages(0x40004..0x40005, Compression::None)
            .filtered(0x40005)
            .build();
        let flat = build::flatten(
            &kd,
            FlatOptions {
                chunk: 3000,
                skip_zero: true,
                rewrite_first: 300,
            },
        );
        let flat_elf = build::flatten(&elf, FlatOptions::default());
        vec![
            ("elf", elf),
            ("qemu-elf", qelf),
            ("kdump", kd),
            ("flat-kdump", flat),
            ("flat-elf", flat_elf),
        ]
    }

    /// Everything a reader of the dump would do first.
    fn exercise(d: &dyn Dump, rng: &mut Rng) {
        let _ = d.info();
        for seg in d.note_segments() {
            for n in NoteIter::new(&seg.data) {
                if n.is_err() {
                    break;
                }
            }
        }
        if let Some(v) = d.vmcoreinfo() {
            let _ = crash_payload::vmcoreinfo::VmcoreInfo::parse(v);
        }
        let ranges = d.ranges().to_vec();
        let mut buf = vec![0u8; 5000];
        for r in ranges.iter().take(8) {
            let _ = d.read_phys(r.start, &mut buf[..64]);
            let end = r.start.get().saturating_add(r.size).saturating_sub(10);
            let _ = d.read_phys(PhysAddr(end), &mut buf[..100]);
        }
        for _ in 0..4 {
            let a = 0x4000_0000 + rng.below(0x8000) as u64;
            let n = rng.below(buf.len());
            let _ = d.read_phys(PhysAddr(a), &mut buf[..n]);
        }
        let _ = d.read_phys(PhysAddr(u64::MAX - 3), &mut buf[..8]);
    }

    #[test]
    fn valid_inputs_open() {
        let mut rng = Rng(1);
        for (name, bytes) in inputs() {
            let d = from_source(Source::from_vec(name, bytes))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            exercise(d.as_ref(), &mut rng);
            assert!(!d.ranges().is_empty(), "{name}");
        }
    }

    /// Seeded random flips, truncations and insertions of each builder's
    /// valid file: opening and reading must give Ok or Err, never panic.
    #[test]
    fn mutations_never_panic() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut opened = 0;
        for (name, good) in inputs() {
            for round in 0..800 {
                let mut b = good.clone();
                let edits = 1 + rng.below(4);
                for _ in 0..edits {
                    // Headers are where the decisions are: aim there often.
                    let span = if rng.next() & 1 == 0 {
                        b.len().min(9000)
                    } else {
                        b.len()
                    };
                    let at = rng.below(span);
                    match rng.below(10) {
                        0 => b.truncate(at),
                        1 => {
                            let n = 1 + rng.below(16);
                            let ins: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                            let at = at.min(b.len());
                            b.splice(at..at, ins);
                        }
                        2 => {
                            // A whole 64-bit field set to an extreme.
                            let v = [0u64, u64::MAX, 1 << 63, 0x7fff_ffff_ffff_ffff, 0xffff_ffff]
                                [rng.below(5)];
                            let at = at & !7;
                            if at + 8 <= b.len() {
                                b[at..at + 8].copy_from_slice(&v.to_le_bytes());
                            }
                        }
                        _ => {
                            if at < b.len() {
                                b[at] ^= 1 << rng.below(8);
                            }
                        }
                    }
                }
                if b.is_empty() {
                    continue;
                }
                let label = format!("{name} round {round}");
                if let Ok(d) = from_source(Source::from_vec(label, b)) {
                    opened += 1;
                    exercise(d.as_ref(), &mut rng);
                }
            }
        }
        // Most single-byte flips land in page data, so many still open.
        assert!(opened > 500, "{opened}");
    }

    #[test]
    fn unknown_and_diskdump_formats_are_named() {
        let e = from_source(Source::from_vec("x", b"DISKDUMP and more".to_vec())).unwrap_err();
        assert!(
            e.to_string().contains("x: offset 0x0") && e.to_string().contains("DISKDUMP"),
            "{e}"
        );
        let e = from_source(Source::from_vec("x", b"hello".to_vec())).unwrap_err();
        assert!(e.to_string().contains("68 65 6c 6c 6f"), "{e}");
        let e = from_source(Source::from_vec("x", vec![])).unwrap_err();
        assert!(e.to_string().contains("offset 0x0"), "{e}");
    }
}
