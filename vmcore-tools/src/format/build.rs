//! Builders of synthetic dumps (ELF cores, kdump-compressed files, flattened
//! streams) for unit tests, integration tests and fuzz targets. Every input a
//! test feeds the readers is made here, so the test shows what went in.
//!
//! Not part of the stable API.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use crash_payload::note::{write_note, NoteIter, NT_PRSTATUS};

use super::elf::{EHDR_SIZE, PHDR_SIZE, PN_XNUM, PT_LOAD, PT_NOTE, SHDR_SIZE};
use super::kdump::{
    DUMP_DH_COMPRESSED_LZO, DUMP_DH_COMPRESSED_SNAPPY, DUMP_DH_COMPRESSED_ZLIB,
    DUMP_DH_COMPRESSED_ZSTD, KDUMP_SUB_HEADER_SIZE,
};
use super::{EM_AARCH64, NT_PRFPREG};

/// The VMCOREINFO text the builders put in their notes.
pub const VMCOREINFO_TEXT: &[u8] = b"OSRELEASE=6.1.0-test-arm64\nPAGESIZE=4096\n\
NUMBER(VA_BITS)=48\nNUMBER(kimage_voffset)=0xffff7fffc7e00000\nNUMBER(PHYS_OFFSET)=0x40000000\n\
KERNELOFFSET=0\nCRASHTIME=1700000000\n";

/// A xorshift64 sequence: the same numbers for the same seed, for tests that
/// want noise or random choices they can repeat.
#[derive(Debug, Clone)]
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `len` bytes, the low byte of each next number (incompressible).
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// Deterministic bytes for physical address `addr` onwards: each byte is a
/// hash of its own address, so any read can be checked against it.
pub fn pattern(addr: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let mut x = addr.wrapping_add(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            x ^= x >> 29;
            // Compressible: a quarter of the bytes repeat a small alphabet.
            if (addr.wrapping_add(i) / 64) % 4 == 0 {
                (x % 4) as u8
            } else {
                (x >> 24) as u8
            }
        })
        .collect()
}

/// One note: header, name padded to 4, descriptor padded to 4.
pub fn note(name: &[u8], n_type: u32, desc: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; crash_payload::note::note_size(name.len(), desc.len())];
    let n = write_note(&mut b, name, n_type, desc).unwrap_or(0);
    b.truncate(n);
    b
}

/// An arm64 `elf_prstatus` (392 bytes) with `pr_pid`, pc and sp set.
pub fn prstatus(pid: u32, pc: u64, sp: u64) -> Vec<u8> {
    let mut d = vec![0u8; 392];
    d[32..36].copy_from_slice(&pid.to_le_bytes());
    d[360..368].copy_from_slice(&sp.to_le_bytes());
    d[368..376].copy_from_slice(&pc.to_le_bytes());
    d[376..384].copy_from_slice(&0x3c5u64.to_le_bytes());
    d
}

/// A /proc/vmcore-style merged note segment: one `CORE`/`NT_PRSTATUS` per
/// CPU, then `VMCOREINFO` if asked for.
pub fn kernel_notes(cpus: u32, vmcoreinfo: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for cpu in 0..cpus {
        let pc = 0xffff_8000_0801_0000 + u64::from(cpu) * 0x100;
        v.extend(note(
            b"CORE",
            NT_PRSTATUS,
            &prstatus(100 + cpu, pc, 0xffff_8000_0a00_3f00),
        ));
    }
    if vmcoreinfo {
        v.extend(note(b"VMCOREINFO", 0, VMCOREINFO_TEXT));
    }
    v
}

/// QEMU's note segment: `NT_PRSTATUS` then `NT_PRFPREG` (528 bytes) per vCPU
/// (`pr_pid` = cpu index + 1), then the guest's `VMCOREINFO`.
pub fn qemu_notes(cpus: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for cpu in 0..cpus {
        let pc = 0xffff_8000_0801_0000 + u64::from(cpu) * 0x100;
        v.extend(note(
            b"CORE",
            NT_PRSTATUS,
            &prstatus(cpu + 1, pc, 0xffff_8000_0a00_3f00),
        ));
        v.extend(note(b"CORE", NT_PRFPREG, &[0u8; 528]));
    }
    v.extend(note(b"VMCOREINFO", 0, VMCOREINFO_TEXT));
    v
}

/// One `PT_LOAD` for [`ElfBuilder`].
#[derive(Debug, Clone)]
pub struct ElfLoad {
    paddr: u64,
    data: Vec<u8>,
    memsz: u64,
    offset: Option<u64>,
}

impl ElfLoad {
    /// A segment at `paddr` whose file bytes are `data` (`p_memsz` = its length).
    pub fn new(paddr: u64, data: Vec<u8>) -> Self {
        let memsz = data.len() as u64;
        ElfLoad {
            paddr,
            data,
            memsz,
            offset: None,
        }
    }
    /// Sets `p_memsz` (beyond the data, memory reads as zero).
    pub fn memsz(mut self, memsz: u64) -> Self {
        self.memsz = memsz;
        self
    }
    /// Forces `p_offset` (QEMU writes `u64::MAX` for filtered memory).
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }
}

/// Builds an ELF64 little-endian core: header, program headers (notes
/// first), an optional section header for `PN_XNUM`, note data, load data.
#[derive(Debug, Clone)]
pub struct ElfBuilder {
    machine: u16,
    flags: u32,
    notes: Vec<Vec<u8>>,
    loads: Vec<ElfLoad>,
    pn_xnum: bool,
}

impl Default for ElfBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ElfBuilder {
    /// An aarch64 core with no segments.
    pub fn new() -> Self {
        ElfBuilder {
            machine: EM_AARCH64,
            flags: 0,
            notes: Vec::new(),
            loads: Vec::new(),
            pn_xnum: false,
        }
    }
    /// Sets `e_machine`.
    pub fn machine(mut self, m: u16) -> Self {
        self.machine = m;
        self
    }
    /// Sets `e_flags`.
    pub fn flags(mut self, f: u32) -> Self {
        self.flags = f;
        self
    }
    /// Adds a `PT_NOTE` segment.
    pub fn note_segment(mut self, data: Vec<u8>) -> Self {
        self.notes.push(data);
        self
    }
    /// Adds a `PT_LOAD` segment.
    pub fn load(mut self, l: ElfLoad) -> Self {
        self.loads.push(l);
        self
    }
    /// Writes `e_phnum = PN_XNUM` and the count in section header 0.
    pub fn pn_xnum(mut self, on: bool) -> Self {
        self.pn_xnum = on;
        self
    }

    /// The file.
    pub fn build(&self) -> Vec<u8> {
        let phnum = (self.notes.len() + self.loads.len()) as u64;
        let phoff = EHDR_SIZE;
        let shoff = phoff + phnum * PHDR_SIZE;
        let mut data_off = shoff + if self.pn_xnum { SHDR_SIZE } else { 0 };
        let mut out = vec![0u8; data_off as usize];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&4u16.to_le_bytes());
        out[18..20].copy_from_slice(&self.machine.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[32..40].copy_from_slice(&phoff.to_le_bytes());
        out[48..52].copy_from_slice(&self.flags.to_le_bytes());
        out[52..54].copy_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
        out[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        if self.pn_xnum {
            out[40..48].copy_from_slice(&shoff.to_le_bytes());
            out[56..58].copy_from_slice(&PN_XNUM.to_le_bytes());
            out[58..60].copy_from_slice(&(SHDR_SIZE as u16).to_le_bytes());
            out[60..62].copy_from_slice(&1u16.to_le_bytes());
            let sh = shoff as usize;
            out[sh + 44..sh + 48].copy_from_slice(&(phnum as u32).to_le_bytes());
        } else {
            out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        }
        let mut ph = phoff as usize;
        let mut put_phdr =
            |out: &mut Vec<u8>, ty: u32, off: u64, paddr: u64, filesz: u64, memsz: u64| {
                let p = &mut out[ph..ph + PHDR_SIZE as usize];
                p[0..4].copy_from_slice(&ty.to_le_bytes());
                p[4..8].copy_from_slice(&7u32.to_le_bytes());
                p[8..16].copy_from_slice(&off.to_le_bytes());
                let vaddr = if ty == PT_LOAD {
                    0xffff_0000_0000_0000u64 | paddr
                } else {
                    0
                };
                p[16..24].copy_from_slice(&vaddr.to_le_bytes());
                p[24..32].copy_from_slice(&paddr.to_le_bytes());
                p[32..40].copy_from_slice(&filesz.to_le_bytes());
                p[40..48].copy_from_slice(&memsz.to_le_bytes());
                ph += PHDR_SIZE as usize;
            };
        let mut blobs: Vec<&[u8]> = Vec::new();
        for n in &self.notes {
            put_phdr(
                &mut out,
                PT_NOTE,
                data_off,
                0,
                n.len() as u64,
                n.len() as u64,
            );
            blobs.push(n);
            data_off += n.len() as u64;
        }
        for l in &self.loads {
            let off = l.offset.unwrap_or(data_off);
            put_phdr(
                &mut out,
                PT_LOAD,
                off,
                l.paddr,
                l.data.len() as u64,
                l.memsz,
            );
            blobs.push(&l.data);
            data_off += l.data.len() as u64;
        }
        for b in blobs {
            out.extend_from_slice(b);
        }
        out
    }
}

/// How [`KdumpBuilder`] stores a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Raw (`flags` 0, size = block size).
    None,
    /// zlib stream (`DUMP_DH_COMPRESSED_ZLIB`).
    Zlib,
    /// lzo1x (`DUMP_DH_COMPRESSED_LZO`).
    Lzo,
    /// Raw snappy (`DUMP_DH_COMPRESSED_SNAPPY`).
    Snappy,
    /// zstd frame (`DUMP_DH_COMPRESSED_ZSTD`).
    Zstd,
}

impl Compression {
    /// The `page_desc.flags` / header status bit.
    pub fn flag(self) -> u32 {
        match self {
            Compression::None => 0,
            Compression::Zlib => DUMP_DH_COMPRESSED_ZLIB,
            Compression::Lzo => DUMP_DH_COMPRESSED_LZO,
            Compression::Snappy => DUMP_DH_COMPRESSED_SNAPPY,
            Compression::Zstd => DUMP_DH_COMPRESSED_ZSTD,
        }
    }

    /// Compresses `page` as makedumpfile does (the encoders here differ from
    /// the C libraries byte for byte, but produce the same stream formats).
    pub fn compress(self, page: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => page.to_vec(),
            Compression::Zlib => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                let _ = e.write_all(page);
                e.finish().unwrap_or_default()
            }
            Compression::Lzo => lzokay_native::compress(page).unwrap_or_default(),
            Compression::Snappy => snap::raw::Encoder::new()
                .compress_vec(page)
                .unwrap_or_default(),
            Compression::Zstd => {
                ruzstd::encoding::compress_to_vec(page, ruzstd::encoding::CompressionLevel::Fastest)
            }
        }
    }
}

/// Where [`KdumpBuilder::build_with_layout`] put things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdumpLayout {
    /// Block size.
    pub block_size: u64,
    /// 1st bitmap offset.
    pub bitmap1: u64,
    /// 2nd bitmap offset.
    pub bitmap2: u64,
    /// First `page_desc`.
    pub descs: u64,
    /// First page data byte.
    pub data: u64,
    /// Notes offset.
    pub notes: u64,
}

/// Builds a kdump-compressed file (header version 6 unless told otherwise).
#[derive(Debug, Clone)]
pub struct KdumpBuilder {
    block_size: u32,
    header_version: u32,
    machine: String,
    release: String,
    max_mapnr: Option<u64>,
    notes: Vec<u8>,
    pages: BTreeMap<u64, (Vec<u8>, Compression)>,
    valid_only: BTreeSet<u64>,
    dump_level: u32,
    nr_cpus: u32,
    status: u32,
    split: Option<(u64, u64)>,
}

impl KdumpBuilder {
    /// An aarch64 kdump file with `block_size`-byte pages, kernel notes for
    /// two CPUs and VMCOREINFO.
    pub fn new(block_size: u32) -> Self {
        KdumpBuilder {
            block_size,
            header_version: 6,
            machine: "aarch64".into(),
            release: "6.1.0-test-arm64".into(),
            max_mapnr: None,
            notes: kernel_notes(2, true),
            pages: BTreeMap::new(),
            valid_only: BTreeSet::new(),
            dump_level: 31,
            nr_cpus: 2,
            status: 0,
            split: None,
        }
    }
    /// Sets `utsname.machine`.
    pub fn machine(mut self, m: &str) -> Self {
        self.machine = m.into();
        self
    }
    /// Sets `header_version`.
    pub fn header_version(mut self, v: u32) -> Self {
        self.header_version = v;
        self
    }
    /// Sets the note bytes.
    pub fn notes(mut self, n: Vec<u8>) -> Self {
        self.notes = n;
        self
    }
    /// Forces `max_mapnr`.
    pub fn max_mapnr(mut self, m: u64) -> Self {
        self.max_mapnr = Some(m);
        self
    }
    /// Adds dumped page `pfn` with `data` (padded or cut to the block size).
    pub fn page(mut self, pfn: u64, mut data: Vec<u8>, c: Compression) -> Self {
        data.resize(self.block_size as usize, 0);
        self.pages.insert(pfn, (data, c));
        self
    }
    /// Adds pages `pfns` filled with [`pattern`] of their physical address.
    pub fn pattern_pages(mut self, pfns: std::ops::Range<u64>, c: Compression) -> Self {
        let bs = u64::from(self.block_size);
        for pfn in pfns {
            let data = pattern(pfn * bs, bs as usize);
            self = self.page(pfn, data, c);
        }
        self
    }
    /// Marks `pfn` as existing but filtered out (1st bitmap only).
    pub fn filtered(mut self, pfn: u64) -> Self {
        self.valid_only.insert(pfn);
        self
    }
    /// ORs bits into the header `status`.
    pub fn status(mut self, s: u32) -> Self {
        self.status |= s;
        self
    }
    /// Makes this a split part holding pfns `start..end`.
    pub fn split(mut self, start: u64, end: u64) -> Self {
        self.split = Some((start, end));
        self
    }

    /// The file.
    pub fn build(&self) -> Vec<u8> {
        self.build_with_layout().0
    }

    /// The file and where its parts are.
    pub fn build_with_layout(&self) -> (Vec<u8>, KdumpLayout) {
        let bs = u64::from(self.block_size);
        let top = self
            .pages
            .keys()
            .chain(self.valid_only.iter())
            .max()
            .map_or(1, |m| m + 1);
        let max_mapnr = self.max_mapnr.unwrap_or(top);
        let bitmap_len = max_mapnr.div_ceil(8).div_ceil(bs).max(1) * bs;
        let notes_off = bs + KDUMP_SUB_HEADER_SIZE;
        let sub_hdr_size = (KDUMP_SUB_HEADER_SIZE + self.notes.len() as u64).div_ceil(bs);
        let bitmap1 = (1 + sub_hdr_size) * bs;
        let bitmap2 = bitmap1 + bitmap_len;
        let descs = bitmap2 + bitmap_len;
        let (s, e) = self.split.unwrap_or((0, u64::MAX));
        let dumped: Vec<(&u64, &(Vec<u8>, Compression))> = self
            .pages
            .iter()
            .filter(|(p, _)| **p >= s && **p < e)
            .collect();
        let data = descs + dumped.len() as u64 * 24;
        let mut out = vec![0u8; data as usize];

        // disk_dump_header
        out[..8].copy_from_slice(b"KDUMP   ");
        out[8..12].copy_from_slice(&self.header_version.to_le_bytes());
        let uts = |out: &mut Vec<u8>, field: usize, s: &str| {
            let at = 12 + field * 65;
            let b = s.as_bytes();
            let n = b.len().min(64);
            out[at..at + n].copy_from_slice(&b[..n]);
        };
        uts(&mut out, 0, "Linux");
        uts(&mut out, 1, "test-node");
        uts(&mut out, 2, &self.release);
        uts(&mut out, 3, "#1 SMP Debian");
        uts(&mut out, 4, &self.machine);
        out[408..416].copy_from_slice(&1_700_000_000u64.to_le_bytes());
        let mut status = self.status;
        for (_, (_, c)) in &dumped {
            status |= c.flag();
        }
        out[424..428].copy_from_slice(&status.to_le_bytes());
        out[428..432].copy_from_slice(&self.block_size.to_le_bytes());
        out[432..436].copy_from_slice(&(sub_hdr_size as u32).to_le_bytes());
        out[436..440].copy_from_slice(&((2 * bitmap_len / bs) as u32).to_le_bytes());
        out[440..444].copy_from_slice(&(max_mapnr.min(u64::from(u32::MAX)) as u32).to_le_bytes());
        out[460..464].copy_from_slice(&self.nr_cpus.to_le_bytes());

        // kdump_sub_header
        let k = bs as usize;
        out[k..k + 8].copy_from_slice(&0x4000_0000u64.to_le_bytes());
        out[k + 8..k + 12].copy_from_slice(&self.dump_level.to_le_bytes());
        if let Some((s, e)) = self.split {
            out[k + 12..k + 16].copy_from_slice(&1u32.to_le_bytes());
            out[k + 16..k + 24].copy_from_slice(&s.to_le_bytes());
            out[k + 24..k + 32].copy_from_slice(&e.to_le_bytes());
            out[k + 80..k + 88].copy_from_slice(&s.to_le_bytes());
            out[k + 88..k + 96].copy_from_slice(&e.to_le_bytes());
        }
        if let Some(Ok(n)) =
            NoteIter::new(&self.notes).find(|n| n.as_ref().is_ok_and(|n| n.name == b"VMCOREINFO"))
        {
            let off = notes_off + n.desc_offset() as u64;
            out[k + 32..k + 40].copy_from_slice(&off.to_le_bytes());
            out[k + 40..k + 48].copy_from_slice(&(n.desc.len() as u64).to_le_bytes());
        }
        if !self.notes.is_empty() {
            out[k + 48..k + 56].copy_from_slice(&notes_off.to_le_bytes());
            out[k + 56..k + 64].copy_from_slice(&(self.notes.len() as u64).to_le_bytes());
        }
        out[k + 96..k + 104].copy_from_slice(&max_mapnr.to_le_bytes());
        let n0 = notes_off as usize;
        out[n0..n0 + self.notes.len()].copy_from_slice(&self.notes);

        // Bitmaps.
        let set = |out: &mut Vec<u8>, base: u64, pfn: u64| {
            if pfn / 8 < bitmap_len {
                out[(base + pfn / 8) as usize] |= 1 << (pfn % 8);
            }
        };
        for pfn in self.pages.keys().chain(self.valid_only.iter()) {
            set(&mut out, bitmap1, *pfn);
        }
        for pfn in self.pages.keys() {
            set(&mut out, bitmap2, *pfn);
        }

        // Descriptors and data.
        let mut pos = data;
        for (i, (_, (page, c))) in dumped.iter().enumerate() {
            let mut body = c.compress(page);
            let mut flags = c.flag();
            if *c == Compression::None || body.len() >= page.len() {
                body = page.clone();
                flags = 0;
            }
            let d = (descs + i as u64 * 24) as usize;
            out[d..d + 8].copy_from_slice(&pos.to_le_bytes());
            out[d + 8..d + 12].copy_from_slice(&(body.len() as u32).to_le_bytes());
            out[d + 12..d + 16].copy_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&body);
            pos += body.len() as u64;
        }
        (
            out,
            KdumpLayout {
                block_size: bs,
                bitmap1,
                bitmap2,
                descs,
                data,
                notes: notes_off,
            },
        )
    }
}

/// How [`flatten`] cuts a file into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatOptions {
    /// Bytes per record.
    pub chunk: usize,
    /// Leave all-zero chunks out (they read back as zero).
    pub skip_zero: bool,
    /// Write the first this-many bytes as 0xee garbage first and the real
    /// bytes in a last record, as makedumpfile rewrites its sub-header.
    pub rewrite_first: usize,
}

impl Default for FlatOptions {
    fn default() -> Self {
        FlatOptions {
            chunk: 4096,
            skip_zero: false,
            rewrite_first: 0,
        }
    }
}

fn record(out: &mut Vec<u8>, offset: u64, data: &[u8]) {
    out.extend_from_slice(&(offset as i64).to_be_bytes());
    out.extend_from_slice(&(data.len() as i64).to_be_bytes());
    out.extend_from_slice(data);
}

/// A flattened makedumpfile stream of `file`.
pub fn flatten(file: &[u8], opt: FlatOptions) -> Vec<u8> {
    let mut out = vec![0u8; 4096];
    out[..12].copy_from_slice(b"makedumpfile");
    out[16..24].copy_from_slice(&1i64.to_be_bytes());
    out[24..32].copy_from_slice(&1i64.to_be_bytes());
    let chunk = opt.chunk.max(1);
    for (i, c) in file.chunks(chunk).enumerate() {
        let off = i * chunk;
        if opt.skip_zero && c.iter().all(|&b| b == 0) && off + c.len() != file.len() {
            continue;
        }
        let mut c = c.to_vec();
        for (j, b) in c.iter_mut().enumerate() {
            if off + j < opt.rewrite_first {
                *b = 0xee;
            }
        }
        record(&mut out, off as u64, &c);
    }
    if opt.rewrite_first > 0 {
        let n = opt.rewrite_first.min(file.len());
        record(&mut out, 0, &file[..n]);
    }
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out
}

impl KdumpLayout {
    /// 4 KiB pages one bitmap spans.
    pub fn bitmap_len_pages(&self) -> u64 {
        (self.bitmap2 - self.bitmap1).div_ceil(4096)
    }
}
