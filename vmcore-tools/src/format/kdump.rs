//! makedumpfile's kdump-compressed format (`KDUMP   `), also written by
//! QEMU's `dump-guest-memory -z/-l/-s`.
//!
//! Layout (makedumpfile `diskdump_mod.h`, QEMU `dump/dump.c`), in blocks of
//! `block_size` bytes (the dumped kernel's page size; QEMU uses 64 KiB on
//! aarch64):
//!
//! | block | content |
//! |---|---|
//! | 0 | `struct disk_dump_header` (464 bytes on 64-bit) |
//! | 1 | `struct kdump_sub_header` (104 bytes for version 6), then the notes |
//! | 1 + `sub_hdr_size` | 1st bitmap (pfns that exist), then the 2nd (pfns dumped), each `bitmap_blocks / 2` blocks |
//! | then | one 24-byte `page_desc` per set bit of the 2nd bitmap, in pfn order |
//! | then | page data, compressed per `page_desc.flags` |
//!
//! `struct disk_dump_header` on LP64: `signature[8]` at 0, `header_version`
//! at 8, `new_utsname` (6 × 65 bytes) at 12, `struct timeval` aligned to 8
//! at 408, then `status` 424, `block_size` 428, `sub_hdr_size` 432,
//! `bitmap_blocks` 436, `max_mapnr` 440, `total_ram_blocks` 444,
//! `device_blocks` 448, `written_blocks` 452, `current_cpu` 456, `nr_cpus` 460.
//!
//! A pfn's `page_desc` index is its rank among the set bits of the 2nd
//! bitmap (counted from `start_pfn` in a split dump). The rank comes from a
//! prefix count per 4096 pfns built on the first page read, so opening the
//! dump reads only the headers and notes, and a page read touches its
//! bitmap chunk, its descriptor and its data.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use crash_payload::PhysAddr;

use crate::error::ParseError;
use crate::mem::{MemError, PhysMem};
use crate::source::Source;

use super::{
    summarize_notes, vmcoreinfo_says_arm64, ByteSource, Container, Dump, FormatInfo, NoteSegment,
    PhysRange, KDUMP_SIGNATURE, MAX_NOTE_BYTES,
};

/// Size of `struct disk_dump_header` on 64-bit.
pub const DISK_DUMP_HEADER_SIZE: u64 = 464;
/// Size of `struct kdump_sub_header` for header version 6.
pub const KDUMP_SUB_HEADER_SIZE: u64 = 104;
/// Size of `struct page_desc`.
pub const PAGE_DESC_SIZE: u64 = 24;

/// `disk_dump_header` field offsets.
pub mod dh {
    /// `header_version`.
    pub const HEADER_VERSION: usize = 8;
    /// `utsname` (`struct new_utsname`: six 65-byte fields).
    pub const UTSNAME: usize = 12;
    /// `utsname.release` (`new_utsname` at 12, 65 bytes per field).
    pub const RELEASE: usize = 12 + 2 * 65;
    /// `utsname.machine`.
    pub const MACHINE: usize = 12 + 4 * 65;
    /// `timestamp.tv_sec`.
    pub const TIMESTAMP: usize = 408;
    /// `status`.
    pub const STATUS: usize = 424;
    /// `block_size`.
    pub const BLOCK_SIZE: usize = 428;
    /// `sub_hdr_size`.
    pub const SUB_HDR_SIZE: usize = 432;
    /// `bitmap_blocks`.
    pub const BITMAP_BLOCKS: usize = 436;
    /// `max_mapnr` (32-bit; version 6 has the full value in the sub-header).
    pub const MAX_MAPNR: usize = 440;
    /// `nr_cpus`.
    pub const NR_CPUS: usize = 460;
}

/// `kdump_sub_header` field offsets (from the start of block 1).
pub mod kh {
    /// `phys_base`.
    pub const PHYS_BASE: usize = 0;
    /// `dump_level` (version 1+).
    pub const DUMP_LEVEL: usize = 8;
    /// `split` (version 2+).
    pub const SPLIT: usize = 12;
    /// `start_pfn` (version 2+, 32-bit value in 64-bit field).
    pub const START_PFN: usize = 16;
    /// `end_pfn` (version 2+).
    pub const END_PFN: usize = 24;
    /// `offset_vmcoreinfo` (version 3+).
    pub const OFFSET_VMCOREINFO: usize = 32;
    /// `size_vmcoreinfo` (version 3+).
    pub const SIZE_VMCOREINFO: usize = 40;
    /// `offset_note` (version 4+).
    pub const OFFSET_NOTE: usize = 48;
    /// `size_note` (version 4+).
    pub const SIZE_NOTE: usize = 56;
    /// `start_pfn_64` (version 6+).
    pub const START_PFN_64: usize = 80;
    /// `end_pfn_64` (version 6+).
    pub const END_PFN_64: usize = 88;
    /// `max_mapnr_64` (version 6+).
    pub const MAX_MAPNR_64: usize = 96;
}

/// `DUMP_DH_COMPRESSED_ZLIB`: page (or dump) compressed with zlib.
pub const DUMP_DH_COMPRESSED_ZLIB: u32 = 0x1;
/// `DUMP_DH_COMPRESSED_LZO`: lzo1x_1.
pub const DUMP_DH_COMPRESSED_LZO: u32 = 0x2;
/// `DUMP_DH_COMPRESSED_SNAPPY`: raw snappy.
pub const DUMP_DH_COMPRESSED_SNAPPY: u32 = 0x4;
/// `DUMP_DH_COMPRESSED_INCOMPLETE`: the dump was cut short (header status).
pub const DUMP_DH_COMPRESSED_INCOMPLETE: u32 = 0x8;
/// `DUMP_DH_EXCLUDED_VMEMMAP`: unused vmemmap pages excluded (header status).
pub const DUMP_DH_EXCLUDED_VMEMMAP: u32 = 0x10;
/// `DUMP_DH_COMPRESSED_ZSTD`: a zstd frame.
pub const DUMP_DH_COMPRESSED_ZSTD: u32 = 0x20;

/// Smallest and largest block sizes accepted (arm64 pages are 4, 16 or 64 KiB).
const MIN_BLOCK: u64 = 1024;
const MAX_BLOCK: u64 = 1 << 20;
/// Pfns per prefix-count chunk (512 bitmap bytes).
const CHUNK_BITS: u64 = 4096;
/// Decompressed pages kept.
const CACHE_PAGES: usize = 16;

/// A kdump-compressed dump over any byte source.
#[derive(Debug)]
pub struct KdumpDump<B: ByteSource> {
    pub(super) bytes: B,
    pub(super) info: FormatInfo,
    inner: Container,
    notes: Vec<NoteSegment>,
    vmcoreinfo: Option<Vec<u8>>,
    header_version: u32,
    block_size: u64,
    max_mapnr: u64,
    /// Pfns this file holds pages for: all, or a split part's range.
    pfn_start: u64,
    pfn_end: u64,
    incomplete: bool,
    bitmap1: u64,
    bitmap2: u64,
    bitmap_len: u64,
    descs: u64,
    phys_base: u64,
    ranges: OnceLock<Vec<PhysRange>>,
    prefix: OnceLock<Vec<u64>>,
    cache: Mutex<VecDeque<(u64, Arc<[u8]>)>>,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    crash_payload::le::u32_at(b, off).unwrap_or(0)
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    crash_payload::le::u64_at(b, off).unwrap_or(0)
}

/// A NUL-terminated string field.
fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Bytes of `kdump_sub_header` that exist in `version`.
fn sub_header_len(version: u32) -> u64 {
    match version {
        0 | 1 => 12,
        2 => 32,
        3 => 48,
        4 => 64,
        5 => 80,
        _ => KDUMP_SUB_HEADER_SIZE,
    }
}

fn compression_names(flags: u32) -> Vec<&'static str> {
    let mut v = Vec::new();
    if flags & DUMP_DH_COMPRESSED_ZLIB != 0 {
        v.push("zlib");
    }
    if flags & DUMP_DH_COMPRESSED_LZO != 0 {
        v.push("lzo");
    }
    if flags & DUMP_DH_COMPRESSED_SNAPPY != 0 {
        v.push("snappy");
    }
    if flags & DUMP_DH_COMPRESSED_ZSTD != 0 {
        v.push("zstd");
    }
    v
}

impl<B: ByteSource> KdumpDump<B> {
    /// Parses the headers and notes and checks that the bitmaps fit; reads
    /// no bitmap and no page.
    pub fn parse(bytes: B) -> Result<Self, ParseError> {
        let h = bytes
            .bytes(0, DISK_DUMP_HEADER_SIZE, "a kdump disk_dump_header")?
            .into_owned();
        if !h.starts_with(KDUMP_SIGNATURE) {
            return Err(ParseError::new(0, "the kdump signature \"KDUMP   \""));
        }
        let version = u32_at(&h, dh::HEADER_VERSION);
        if version == 0 || version > 0xff {
            return Err(ParseError::new(
                dh::HEADER_VERSION as u64,
                format!("a header_version from 1 to 255 (6 is current), found {version}"),
            ));
        }
        let status = u32_at(&h, dh::STATUS);
        let block_size = u64::from(u32_at(&h, dh::BLOCK_SIZE));
        if !block_size.is_power_of_two() || !(MIN_BLOCK..=MAX_BLOCK).contains(&block_size) {
            return Err(ParseError::new(
                dh::BLOCK_SIZE as u64,
                format!("a block_size that is a power of two from {MIN_BLOCK} to {MAX_BLOCK}, found {block_size}"),
            ));
        }
        let sub_hdr_size = u64::from(u32_at(&h, dh::SUB_HDR_SIZE));
        let bitmap_blocks = u64::from(u32_at(&h, dh::BITMAP_BLOCKS));
        let nr_cpus = u32_at(&h, dh::NR_CPUS);
        let release = c_str(&h[dh::RELEASE..dh::RELEASE + 65]);
        let machine = c_str(&h[dh::MACHINE..dh::MACHINE + 65]);

        // Sub-header, in block 1.
        let kh_len = sub_header_len(version);
        let k = bytes
            .bytes(block_size, kh_len, "a kdump_sub_header (block 1)")?
            .into_owned();
        let kf = |off: usize| block_size + off as u64;
        let phys_base = u64_at(&k, kh::PHYS_BASE);
        let dump_level = u32_at(&k, kh::DUMP_LEVEL);
        let mut max_mapnr = u64::from(u32_at(&h, dh::MAX_MAPNR));
        if version >= 6 {
            let m = u64_at(&k, kh::MAX_MAPNR_64);
            if m != 0 {
                max_mapnr = m;
            }
        }
        let (mut pfn_start, mut pfn_end) = (0, max_mapnr);
        let split = version >= 2 && u32_at(&k, kh::SPLIT) != 0;
        if split {
            let (s, e) = if version >= 6 {
                (u64_at(&k, kh::START_PFN_64), u64_at(&k, kh::END_PFN_64))
            } else {
                (u64_at(&k, kh::START_PFN), u64_at(&k, kh::END_PFN))
            };
            if s > e || e > max_mapnr {
                return Err(ParseError::new(
                    kf(if version >= 6 { kh::START_PFN_64 } else { kh::START_PFN }),
                    format!("a split part's start_pfn <= end_pfn <= max_mapnr ({max_mapnr:#x}), found {s:#x}..{e:#x}"),
                ));
            }
            (pfn_start, pfn_end) = (s, e);
        }
        if max_mapnr.checked_mul(block_size).is_none() {
            return Err(ParseError::new(
                dh::MAX_MAPNR as u64,
                format!("max_mapnr × block_size within 64 bits, found max_mapnr {max_mapnr:#x}"),
            ));
        }

        // Bitmaps: checked by arithmetic only, not read.
        let field = dh::BITMAP_BLOCKS as u64;
        if bitmap_blocks == 0 || bitmap_blocks % 2 != 0 {
            return Err(ParseError::new(
                field,
                format!("an even, non-zero bitmap_blocks (two bitmaps of equal size), found {bitmap_blocks}"),
            ));
        }
        let bitmap_len = bitmap_blocks / 2 * block_size;
        if bitmap_len.saturating_mul(8) < max_mapnr {
            return Err(ParseError::new(
                field,
                format!(
                    "bitmaps of at least max_mapnr ({max_mapnr}) bits, found bitmap_blocks {bitmap_blocks} ({} bits each)",
                    bitmap_len.saturating_mul(8)
                ),
            ));
        }
        let bitmap1 = sub_hdr_size
            .checked_add(1)
            .and_then(|b| b.checked_mul(block_size))
            .ok_or_else(|| {
                ParseError::new(
                    dh::SUB_HDR_SIZE as u64,
                    format!("a sub_hdr_size that fits, found {sub_hdr_size}"),
                )
            })?;
        let descs = bitmap1.checked_add(2 * bitmap_len);
        let file_len = bytes.len();
        let descs = match descs {
            Some(d) if d <= file_len => d,
            _ => {
                return Err(ParseError::new(
                    bitmap1,
                    format!(
                        "two bitmaps of {bitmap_len} bytes (bitmap_blocks {bitmap_blocks}), but the file is {file_len} bytes"
                    ),
                ))
            }
        };
        let bitmap2 = bitmap1 + bitmap_len;

        // Notes (version 4+) and VMCOREINFO (version 3+).
        let mut notes = Vec::new();
        if version >= 4 {
            let off = u64_at(&k, kh::OFFSET_NOTE);
            let size = u64_at(&k, kh::SIZE_NOTE);
            if size > MAX_NOTE_BYTES {
                return Err(ParseError::new(
                    kf(kh::SIZE_NOTE),
                    format!("a size_note of at most {MAX_NOTE_BYTES} bytes, found {size:#x}"),
                ));
            }
            if size > 0 {
                let data = bytes
                    .bytes(off, size, "the notes (offset_note/size_note in the sub-header)")?
                    .into_owned();
                notes.push(NoteSegment {
                    file_offset: off,
                    data,
                });
            }
        }
        let summary = summarize_notes(&notes);
        let mut vmcoreinfo = None;
        if version >= 3 {
            let off = u64_at(&k, kh::OFFSET_VMCOREINFO);
            let size = u64_at(&k, kh::SIZE_VMCOREINFO);
            if size > MAX_NOTE_BYTES {
                return Err(ParseError::new(
                    kf(kh::SIZE_VMCOREINFO),
                    format!("a size_vmcoreinfo of at most {MAX_NOTE_BYTES} bytes, found {size:#x}"),
                ));
            }
            if size > 0 {
                vmcoreinfo = Some(
                    bytes
                        .bytes(off, size, "VMCOREINFO (offset_vmcoreinfo/size_vmcoreinfo in the sub-header)")?
                        .into_owned(),
                );
            }
        }
        if vmcoreinfo.is_none() {
            vmcoreinfo = summary.vmcoreinfo.clone();
        }

        // Architecture: the utsname machine, or (QEMU writes "Unknown" on
        // arm) what the notes and VMCOREINFO show.
        match machine.as_str() {
            "aarch64" => {}
            "" | "Unknown" => {
                let arm64 = summary.arm64_prstatus
                    || vmcoreinfo.as_deref().is_some_and(vmcoreinfo_says_arm64);
                if !arm64 {
                    return Err(ParseError::new(
                        dh::MACHINE as u64,
                        format!(
                            "an aarch64 dump: utsname.machine is {machine:?} and no arm64 NT_PRSTATUS note or arm64 VMCOREINFO key says otherwise"
                        ),
                    ));
                }
            }
            other => {
                return Err(ParseError::new(
                    dh::MACHINE as u64,
                    format!("utsname.machine \"aarch64\", found {other:?}: only aarch64 dumps are supported"),
                ))
            }
        }

        let container = if summary.qemu {
            Container::QemuKdump
        } else {
            Container::Kdump
        };
        let comp = compression_names(status);
        let mut description = format!(
            "kdump-compressed v{version}{} ({}), {block_size}-byte blocks",
            if summary.qemu {
                " from QEMU dump-guest-memory"
            } else {
                ""
            },
            if comp.is_empty() {
                "uncompressed".to_string()
            } else {
                comp.join(", ")
            }
        );
        if !summary.qemu {
            description.push_str(&format!(", dump level {dump_level}"));
        }
        if split {
            description.push_str(&format!(", split part for pfns {pfn_start:#x}..{pfn_end:#x}"));
        }
        let incomplete = status & DUMP_DH_COMPRESSED_INCOMPLETE != 0;
        if incomplete {
            description.push_str(", marked incomplete");
        }
        Ok(KdumpDump {
            bytes,
            info: FormatInfo {
                container,
                description,
                arch: "aarch64".to_string(),
                page_size: Some(block_size),
                dump_level: Some(dump_level),
                nr_cpus: (nr_cpus > 0).then_some(nr_cpus),
                release: (!release.is_empty()).then_some(release),
            },
            inner: container,
            notes,
            vmcoreinfo,
            header_version: version,
            block_size,
            max_mapnr,
            pfn_start,
            pfn_end,
            incomplete,
            bitmap1,
            bitmap2,
            bitmap_len,
            descs,
            phys_base,
            ranges: OnceLock::new(),
            prefix: OnceLock::new(),
            cache: Mutex::new(VecDeque::with_capacity(CACHE_PAGES)),
        })
    }

    /// `header_version`.
    pub fn header_version(&self) -> u32 {
        self.header_version
    }

    /// `max_mapnr` (the 64-bit value for version 6).
    pub fn max_mapnr(&self) -> u64 {
        self.max_mapnr
    }

    /// The sub-header's `phys_base`.
    pub fn phys_base(&self) -> u64 {
        self.phys_base
    }

    fn bitmap_byte(&self, base: u64, pfn: u64) -> Option<u8> {
        let b = self.bytes.bytes(base + pfn / 8, 1, "a bitmap byte").ok()?;
        b.first().copied()
    }

    fn compute_ranges(&self) -> Vec<PhysRange> {
        let Ok(bm) = self.bytes.bytes(self.bitmap1, self.bitmap_len, "the 1st bitmap") else {
            return Vec::new();
        };
        let mut out: Vec<PhysRange> = Vec::new();
        let mut run: Option<(u64, u64)> = None;
        let end_pfn = self.pfn_end;
        let flush = |run: &mut Option<(u64, u64)>, out: &mut Vec<PhysRange>| {
            if let Some((s, e)) = run.take() {
                out.push(PhysRange {
                    start: PhysAddr(s * self.block_size),
                    size: (e - s) * self.block_size,
                });
            }
        };
        let first_byte = (self.pfn_start / 8) as usize;
        for (i, &byte) in bm.iter().enumerate().skip(first_byte) {
            let base = i as u64 * 8;
            if base >= end_pfn {
                break;
            }
            if byte == 0 {
                flush(&mut run, &mut out);
                continue;
            }
            for bit in 0..8 {
                let pfn = base + bit;
                if pfn < self.pfn_start || pfn >= end_pfn {
                    continue;
                }
                if byte & (1 << bit) != 0 {
                    match &mut run {
                        Some((_, e)) if *e == pfn => *e = pfn + 1,
                        _ => {
                            flush(&mut run, &mut out);
                            run = Some((pfn, pfn + 1));
                        }
                    }
                } else {
                    flush(&mut run, &mut out);
                }
            }
        }
        flush(&mut run, &mut out);
        out
    }

    fn prefix(&self) -> &[u64] {
        self.prefix.get_or_init(|| {
            let Ok(bm) = self.bytes.bytes(self.bitmap2, self.bitmap_len, "the 2nd bitmap") else {
                return Vec::new();
            };
            let chunk = (CHUNK_BITS / 8) as usize;
            let mut v = Vec::with_capacity(bm.len() / chunk + 1);
            let mut total = 0u64;
            for c in bm.chunks(chunk) {
                v.push(total);
                total += c.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
            }
            v.push(total);
            v
        })
    }

    /// Set bits of the 2nd bitmap below `pfn`.
    fn rank(&self, pfn: u64) -> Option<u64> {
        let prefix = self.prefix();
        let c = pfn / CHUNK_BITS;
        let base = *prefix.get(usize::try_from(c).ok()?)?;
        let chunk_start = c * CHUNK_BITS / 8;
        let n = (pfn % CHUNK_BITS) / 8;
        let b = self
            .bytes
            .bytes(self.bitmap2 + chunk_start, n + 1, "2nd bitmap chunk")
            .ok()?;
        let full: u64 = b[..n as usize].iter().map(|x| u64::from(x.count_ones())).sum();
        let last = b[n as usize] & ((1u8 << (pfn % 8)) - 1);
        Some(base + full + u64::from(last.count_ones()))
    }

    fn corrupt(&self, addr: PhysAddr, why: String) -> MemError {
        MemError::Corrupt { addr, why }
    }

    /// The decompressed page `pfn`, from the cache or the file.
    fn page(&self, pfn: u64, addr: PhysAddr) -> Result<Arc<[u8]>, MemError> {
        if let Ok(mut c) = self.cache.lock() {
            if let Some(i) = c.iter().position(|(p, _)| *p == pfn) {
                if let Some(e) = c.remove(i) {
                    let page = e.1.clone();
                    c.push_front(e);
                    return Ok(page);
                }
            }
        }
        if pfn < self.pfn_start || pfn >= self.pfn_end {
            return Err(MemError::NotPresent(addr));
        }
        let byte = self
            .bitmap_byte(self.bitmap2, pfn)
            .ok_or_else(|| self.corrupt(addr, "2nd bitmap unreadable".into()))?;
        if byte & (1 << (pfn % 8)) == 0 {
            return Err(MemError::NotPresent(addr));
        }
        // A split part's descriptors start at its first pfn.
        let rank = self
            .rank(pfn)
            .and_then(|r| match self.pfn_start {
                0 => Some(r),
                s => self.rank(s).map(|base| r.saturating_sub(base)),
            })
            .ok_or_else(|| self.corrupt(addr, "2nd bitmap unreadable".into()))?;
        let desc_off = rank
            .checked_mul(PAGE_DESC_SIZE)
            .and_then(|r| r.checked_add(self.descs))
            .ok_or_else(|| self.corrupt(addr, format!("page descriptor {rank} out of range")))?;
        let d = self
            .bytes
            .bytes(desc_off, PAGE_DESC_SIZE, "a page_desc")
            .map_err(|e| {
                self.corrupt(
                    addr,
                    format!(
                        "page_desc {rank} for pfn {pfn:#x} at {}: {}",
                        self.bytes.describe(desc_off),
                        e.expected
                    ),
                )
            })?;
        let offset = u64_at(&d, 0);
        let size = u64::from(u32_at(&d, 8));
        let flags = u32_at(&d, 12);
        if offset == 0 && size == 0 {
            if self.incomplete {
                return Err(MemError::NotPresent(addr));
            }
            return Err(self.corrupt(
                addr,
                format!(
                    "page_desc for pfn {pfn:#x} at {} was never written",
                    self.bytes.describe(desc_off)
                ),
            ));
        }
        let at = self.bytes.describe(offset);
        if size > self.block_size || size == 0 {
            return Err(self.corrupt(
                addr,
                format!(
                    "page_desc for pfn {pfn:#x} at {} gives page data size {size}, block size is {}",
                    self.bytes.describe(desc_off),
                    self.block_size
                ),
            ));
        }
        let data = self.bytes.bytes(offset, size, "page data").map_err(|e| {
            self.corrupt(addr, format!("page data for pfn {pfn:#x} at {at}: {}", e.expected))
        })?;
        let bs = self.block_size as usize;
        let fail = |kind: &str, msg: String| {
            self.corrupt(
                addr,
                format!("{kind} page data for pfn {pfn:#x} at {at} ({size} bytes): {msg}"),
            )
        };
        let out: Vec<u8> = if flags & DUMP_DH_COMPRESSED_ZLIB != 0 {
            inflate_zlib(&data, bs).map_err(|m| fail("zlib", m))?
        } else if flags & DUMP_DH_COMPRESSED_LZO != 0 {
            super::lzo::decompress(&data, bs).map_err(|e| fail("lzo", e.to_string()))?
        } else if flags & DUMP_DH_COMPRESSED_SNAPPY != 0 {
            unsnappy(&data, bs).map_err(|m| fail("snappy", m))?
        } else if flags & DUMP_DH_COMPRESSED_ZSTD != 0 {
            unzstd(&data, bs).map_err(|m| fail("zstd", m))?
        } else {
            if data.len() != bs {
                return Err(fail(
                    "uncompressed",
                    format!("expected exactly the block size, {bs} bytes"),
                ));
            }
            data.into_owned()
        };
        let page: Arc<[u8]> = out.into();
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_PAGES {
                c.pop_back();
            }
            c.push_front((pfn, page.clone()));
        }
        Ok(page)
    }
}

fn inflate_zlib(data: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; out_len];
    let mut z = flate2::Decompress::new(true);
    let status = z
        .decompress(data, &mut out, flate2::FlushDecompress::Finish)
        .map_err(|e| e.to_string())?;
    if status != flate2::Status::StreamEnd {
        return Err(format!(
            "the zlib stream does not end within {out_len} bytes of output"
        ));
    }
    if z.total_out() != out_len as u64 {
        return Err(format!(
            "decompressed to {} bytes, expected {out_len}",
            z.total_out()
        ));
    }
    Ok(out)
}

fn unsnappy(data: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
    let n = snap::raw::decompress_len(data).map_err(|e| e.to_string())?;
    if n != out_len {
        return Err(format!("declares {n} bytes, expected {out_len}"));
    }
    let mut out = vec![0u8; out_len];
    let got = snap::raw::Decoder::new()
        .decompress(data, &mut out)
        .map_err(|e| e.to_string())?;
    if got != out_len {
        return Err(format!("decompressed to {got} bytes, expected {out_len}"));
    }
    Ok(out)
}

fn unzstd(data: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; out_len];
    let mut dec = ruzstd::decoding::FrameDecoder::new();
    let got = dec.decode_all(data, &mut out).map_err(|e| e.to_string())?;
    if got != out_len {
        return Err(format!("decompressed to {got} bytes, expected {out_len}"));
    }
    Ok(out)
}

impl<B: ByteSource> PhysMem for KdumpDump<B> {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr
                .get()
                .checked_add(done as u64)
                .ok_or(MemError::NotPresent(addr))?;
            let pfn = a / self.block_size;
            let off = (a % self.block_size) as usize;
            if pfn >= self.max_mapnr {
                return Err(MemError::NotPresent(PhysAddr(a)));
            }
            let page = self.page(pfn, PhysAddr(a))?;
            let n = (buf.len() - done).min(page.len() - off);
            buf[done..done + n].copy_from_slice(&page[off..off + n]);
            done += n;
        }
        Ok(())
    }
}

impl<B: ByteSource> Dump for KdumpDump<B> {
    fn info(&self) -> &FormatInfo {
        &self.info
    }
    fn note_segments(&self) -> &[NoteSegment] {
        &self.notes
    }
    fn vmcoreinfo(&self) -> Option<&[u8]> {
        self.vmcoreinfo.as_deref()
    }
    fn ranges(&self) -> &[PhysRange] {
        self.ranges.get_or_init(|| self.compute_ranges())
    }
    fn source(&self) -> &Source {
        self.bytes.source()
    }
    fn inner_container(&self) -> Container {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::super::build::{self, Compression, KdumpBuilder};
    use super::super::from_source;
    use super::*;
    use crate::error::Error;

    const BS: u64 = 4096;
    const BASE: u64 = 0x40000; // pfn of 0x4000_0000

    fn open(bytes: Vec<u8>) -> Result<Box<dyn Dump>, ParseError> {
        match from_source(Source::from_vec("t.kdump", bytes)) {
            Ok(d) => Ok(d),
            Err(Error::Parse { err, .. }) => Err(err),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    fn sample() -> KdumpBuilder {
        KdumpBuilder::new(BS as u32)
            .pattern_pages(BASE..BASE + 2, Compression::Zlib)
            .pattern_pages(BASE + 2..BASE + 4, Compression::Lzo)
            .pattern_pages(BASE + 4..BASE + 6, Compression::Snappy)
            .pattern_pages(BASE + 6..BASE + 8, Compression::Zstd)
            .pattern_pages(BASE + 8..BASE + 10, Compression::None)
            .page(BASE + 10, vec![0; BS as usize], Compression::Zlib)
            .filtered(BASE + 11)
            .pattern_pages(BASE + 16..BASE + 17, Compression::Zlib)
    }

    fn addr(pfn: u64) -> PhysAddr {
        PhysAddr(pfn * BS)
    }

    #[test]
    fn every_compression_round_trips() {
        let (file, layout) = sample().build_with_layout();
        // Each kind of page really is stored that way.
        for (i, flag) in [1u32, 1, 2, 2, 4, 4, 0x20, 0x20, 0, 0, 1].iter().enumerate() {
            let d = (layout.descs + i as u64 * 24) as usize;
            assert_eq!(u32_at(&file, d + 12), *flag, "page {i}");
        }
        let d = open(file).unwrap();
        assert_eq!(d.info().container, Container::Kdump);
        assert_eq!(d.info().page_size, Some(BS));
        assert_eq!(d.info().dump_level, Some(31));
        assert_eq!(d.info().nr_cpus, Some(2));
        assert_eq!(d.info().release.as_deref(), Some("6.1.0-test-arm64"));
        assert!(d.info().description.starts_with("kdump-compressed v6 (zlib, lzo, snappy, zstd)"), "{}", d.info().description);
        assert_eq!(d.vmcoreinfo(), Some(build::VMCOREINFO_TEXT));
        assert_eq!(d.note_segments().len(), 1);
        assert_eq!(d.note_segments()[0].data, build::kernel_notes(2, true));
        for pfn in BASE..BASE + 10 {
            let mut page = vec![0u8; BS as usize];
            d.read_phys(addr(pfn), &mut page).unwrap();
            assert_eq!(page, build::pattern(pfn * BS, BS as usize), "pfn {pfn:#x}");
        }
        assert_eq!(d.read_u64(addr(BASE + 10)).unwrap(), 0);
        // A read across all ten pages, starting mid-page.
        let mut big = vec![0u8; 9 * BS as usize];
        d.read_phys(PhysAddr(BASE * BS + 100), &mut big).unwrap();
        assert_eq!(big, build::pattern(BASE * BS + 100, 9 * BS as usize));
        // Filtered, absent, and beyond max_mapnr.
        assert_eq!(d.read_u64(addr(BASE + 11)), Err(MemError::NotPresent(addr(BASE + 11))));
        assert_eq!(d.read_u64(addr(BASE + 12)), Err(MemError::NotPresent(addr(BASE + 12))));
        assert_eq!(d.read_u64(addr(1 << 40)), Err(MemError::NotPresent(addr(1 << 40))));
        let mut p = [0u8; 8];
        d.read_phys(addr(BASE + 16), &mut p).unwrap();
        assert_eq!(p[..], build::pattern((BASE + 16) * BS, 8)[..]);
        assert_eq!(
            d.ranges(),
            &[
                PhysRange { start: addr(BASE), size: 12 * BS },
                PhysRange { start: addr(BASE + 16), size: BS },
            ]
        );
    }

    #[test]
    fn opening_reads_headers_and_notes_only_and_reads_stay_local() {
        let b = KdumpBuilder::new(BS as u32).pattern_pages(BASE..BASE + 600, Compression::None);
        let (file, layout) = b.build_with_layout();
        let file_pages = file.len() as u64 / 4096;
        let src = Source::from_vec("t", file);
        let d = KdumpDump::parse(src).unwrap();
        // Header, sub-header (+ notes): 2 pages.
        assert_eq!(d.bytes.pages_touched(), 2);
        let mut buf = [0u8; 8];
        d.read_phys(addr(BASE + 599), &mut buf).unwrap();
        d.read_phys(addr(BASE + 3), &mut buf).unwrap();
        let bitmap_pages = layout.bitmap_len_pages();
        // The 2nd bitmap (once, for the prefix count), two descriptor pages,
        // two unaligned raw pages (two file pages each).
        assert!(d.bytes.pages_touched() <= 2 + bitmap_pages + 6, "{} of {file_pages}", d.bytes.pages_touched());
        // The decompressed-page cache answers a re-read without the file.
        let before = d.bytes.pages_touched();
        d.read_phys(addr(BASE + 3), &mut buf).unwrap();
        assert_eq!(d.bytes.pages_touched(), before);
    }

    #[test]
    fn qemu_kdump_is_recognised_and_its_arch_inferred() {
        let file = KdumpBuilder::new(65536)
            .machine("Unknown")
            .notes(build::qemu_notes(2))
            .pattern_pages(0x4000..0x4002, Compression::Zlib)
            .build();
        let d = open(file).unwrap();
        assert_eq!(d.info().container, Container::QemuKdump);
        assert_eq!(d.info().arch, "aarch64");
        assert_eq!(d.info().page_size, Some(65536));
        assert_eq!(d.read_u64(PhysAddr(0x4000 * 65536 + 8)).unwrap(), u64::from_le_bytes(build::pattern(0x4000 * 65536 + 8, 8).try_into().unwrap()));

        // "Unknown" with nothing arm64 about it is refused.
        let e = open(KdumpBuilder::new(4096).machine("Unknown").notes(vec![]).pattern_pages(1..2, Compression::None).build()).unwrap_err();
        assert_eq!(e.offset, dh::MACHINE as u64);
    }

    #[test]
    fn wrong_arch_is_refused() {
        let e = open(sample().machine("x86_64").build()).unwrap_err();
        assert_eq!(e.offset, 272);
        assert!(e.expected.contains("only aarch64"), "{e}");
    }

    #[test]
    fn header_fields_are_checked_with_offsets() {
        let good = sample().build();
        let put32 = |at: usize, v: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            open(b).unwrap_err()
        };
        let mut b = good.clone();
        b[0] = b'k';
        assert_eq!(open(b).unwrap_err().offset, 0);
        let mut b = good.clone();
        b[..8].copy_from_slice(b"KDUMP   ");
        b[1] = b'X';
        assert_eq!(open(b).unwrap_err().offset, 0);
        assert_eq!(put32(8, 0).offset, 8);
        assert_eq!(put32(428, 4095).offset, 428);
        assert_eq!(put32(428, 1 << 24).offset, 428);
        assert_eq!(put32(436, 0).offset, 436);
        assert_eq!(put32(436, 3).offset, 436);
        // sub_hdr_size pushing the bitmaps past the end.
        let e = put32(432, 1 << 30);
        assert!(e.expected.contains("bitmaps") || e.expected.contains("sub_hdr_size"), "{e}");
    }

    #[test]
    fn bitmap_shorter_than_max_mapnr_is_refused() {
        let (mut b, layout) = sample().build_with_layout();
        let bits = (layout.bitmap2 - layout.bitmap1) * 8;
        let k = BS as usize + kh::MAX_MAPNR_64;
        b[k..k + 8].copy_from_slice(&(bits + 1).to_le_bytes());
        let e = open(b).unwrap_err();
        assert_eq!(e.offset, 436);
        assert!(e.expected.contains(&format!("max_mapnr ({})", bits + 1)), "{e}");
    }

    #[test]
    fn truncation_at_every_header_boundary() {
        let (good, l) = sample().build_with_layout();
        let notes_end = l.notes + build::kernel_notes(2, true).len() as u64;
        for cut in [0, 1, 8, 463, 464, BS, BS + 1, BS + 103, BS + 104, notes_end - 1, l.bitmap1, l.bitmap2, l.descs - 1] {
            let e = open(good[..cut as usize].to_vec());
            assert!(e.is_err(), "accepted a file cut at {cut:#x}");
        }
        let e = open(good[..l.bitmap2 as usize].to_vec()).unwrap_err();
        assert_eq!(e.offset, l.bitmap1);
        // Cut in the descriptors or data: opens, and the lost pages say where.
        let d = open(good[..(l.descs + 24 * 3 + 5) as usize].to_vec()).unwrap();
        match d.read_u64(addr(BASE + 4)) {
            Err(MemError::Corrupt { why, .. }) => {
                assert!(why.contains(&format!("{:#x}", l.descs + 24 * 4)), "{why}")
            }
            other => panic!("{other:?}"),
        }
        let d = open(good[..(l.data + 10) as usize].to_vec()).unwrap();
        match d.read_u64(addr(BASE)) {
            Err(MemError::Corrupt { why, .. }) => {
                assert!(why.contains(&format!("file offset {:#x}", l.data)), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn corrupt_pages_name_their_file_offset() {
        let (good, l) = sample().build_with_layout();
        for (i, kind) in [(0usize, "zlib"), (2, "lzo"), (4, "snappy"), (6, "zstd")] {
            let d = (l.descs + i as u64 * 24) as usize;
            let off = u64_at(&good, d);
            let size = u32_at(&good, d + 8) as usize;
            let mut b = good.clone();
            // Garble the middle of the compressed page.
            for x in &mut b[off as usize + size / 3..off as usize + size / 3 + 8] {
                *x ^= 0x5a;
            }
            b[off as usize] ^= 0xff;
            let dump = open(b).unwrap();
            let mut page = vec![0u8; BS as usize];
            match dump.read_phys(addr(BASE + i as u64), &mut page) {
                Err(MemError::Corrupt { why, .. }) => {
                    assert!(why.contains(kind) && why.contains(&format!("{off:#x}")), "{why}")
                }
                // A garbled page may still decode; it must not decode to the original.
                Ok(()) => assert_ne!(page, build::pattern((BASE + i as u64) * BS, BS as usize), "{kind}"),
                Err(e) => panic!("{e:?}"),
            }
        }
        // A descriptor whose size exceeds the block, or whose data is past the end.
        let mut b = good.clone();
        let d = l.descs as usize;
        b[d + 8..d + 12].copy_from_slice(&(BS as u32 + 1).to_le_bytes());
        assert!(matches!(open(b).unwrap().read_u64(addr(BASE)), Err(MemError::Corrupt { .. })));
        let mut b = good.clone();
        b[d..d + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(matches!(open(b).unwrap().read_u64(addr(BASE)), Err(MemError::Corrupt { .. })));
        // A raw page whose size is not the block size.
        let mut b = good;
        let d = (l.descs + 8 * 24) as usize;
        b[d + 8..d + 12].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(open(b).unwrap().read_u64(addr(BASE + 8)), Err(MemError::Corrupt { .. })));
    }

    #[test]
    fn incomplete_dump_pages_never_written_are_absent() {
        let (mut b, l) = sample().status(DUMP_DH_COMPRESSED_INCOMPLETE).build_with_layout();
        let d = (l.descs + 3 * 24) as usize;
        b[d..d + 24].fill(0);
        let dump = open(b).unwrap();
        assert!(dump.info().description.contains("incomplete"));
        assert_eq!(dump.read_u64(addr(BASE + 3)), Err(MemError::NotPresent(addr(BASE + 3))));
        assert!(dump.read_u64(addr(BASE + 2)).is_ok());
    }

    #[test]
    fn split_part_indexes_from_its_start_pfn() {
        let file = KdumpBuilder::new(BS as u32)
            .pattern_pages(BASE..BASE + 8, Compression::Zlib)
            .split(BASE + 3, BASE + 6)
            .build();
        let d = open(file).unwrap();
        assert!(d.info().description.contains("split"));
        for pfn in BASE + 3..BASE + 6 {
            let mut p = vec![0u8; BS as usize];
            d.read_phys(addr(pfn), &mut p).unwrap();
            assert_eq!(p, build::pattern(pfn * BS, BS as usize));
        }
        assert_eq!(d.read_u64(addr(BASE + 2)), Err(MemError::NotPresent(addr(BASE + 2))));
        assert_eq!(d.read_u64(addr(BASE + 6)), Err(MemError::NotPresent(addr(BASE + 6))));
        assert_eq!(d.ranges(), &[PhysRange { start: addr(BASE + 3), size: 3 * BS }]);
    }

    #[test]
    fn older_header_versions() {
        // Version 3: VMCOREINFO but no notes; version 1: neither.
        let d = open(sample().header_version(3).build()).unwrap();
        assert!(d.note_segments().is_empty());
        assert_eq!(d.vmcoreinfo(), Some(build::VMCOREINFO_TEXT));
        assert!(d.read_u64(addr(BASE)).is_ok());
        let d = open(sample().header_version(1).build()).unwrap();
        assert_eq!(d.vmcoreinfo(), None);
        assert!(d.read_u64(addr(BASE + 5)).is_ok());
    }
}
