//! makedumpfile's flattened stream (`-F`, and every QEMU
//! `dump-guest-memory -z/-l/-s` file up to QEMU 8.1): the kdump-compressed or
//! ELF file cut into records that say where their bytes go.
//!
//! Layout (`makedumpfile.h`, `makedumpfile.c` `write_start_flat_header`,
//! `write_buffer`, `write_end_flat_header`, `rearrange_dumpdata`):
//! - a 4096-byte `makedumpfile_header`: `signature[16]` = `"makedumpfile"`
//!   NUL-padded, then `type` and `version`, big-endian `int64_t` (type 1);
//! - records: `makedumpfile_data_header { int64_t offset; int64_t buf_size; }`
//!   big-endian, then `buf_size` bytes destined for `offset` (buf_size > 0);
//! - the end marker: offset = -1, buf_size = -1.
//!
//! A later record overwrites an earlier one (makedumpfile rewrites the
//! sub-header at the end), and bytes no record writes read as zero (as in
//! the sparse file `makedumpfile -R` makes). Only the record headers are read
//! to build the index; data is read in place when a reader asks for it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::error::{Error, ParseError};
use crate::source::Source;

use super::elf::ElfDump;
use super::kdump::KdumpDump;
use super::{
    insert_uncovered, sniff, unknown_format, ByteSource, Container, Dump, Kind,
    MAKEDUMPFILE_SIGNATURE,
};

/// Size of the stream's leading `makedumpfile_header` block.
pub const MAX_SIZE_MDF_HEADER: u64 = 4096;
/// `TYPE_FLAT_HEADER`.
pub const TYPE_FLAT_HEADER: u64 = 1;
/// Size of `makedumpfile_data_header`.
pub const DATA_HEADER_SIZE: u64 = 16;
/// Largest read assembled from holes beyond the stream's own size.
const MAX_ASSEMBLED: u64 = 64 << 20;
/// `END_FLAG_FLAT_HEADER`, in both fields of the last header.
pub const END_FLAG_FLAT_HEADER: i64 = -1;

/// A record: (offset in the reassembled file, size, stream offset of its
/// data).
pub type Record = (u64, u64, u64);

/// A flattened stream seen as the file it reassembles to.
#[derive(Debug)]
pub struct FlatFile {
    src: Source,
    /// Start in the reassembled file → (end, stream offset of the start);
    /// disjoint.
    pieces: BTreeMap<u64, (u64, u64)>,
    len: u64,
    records: u64,
    version: u64,
}

fn be_i64(b: &[u8], off: usize) -> i64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    i64::from_be_bytes(a)
}

impl FlatFile {
    /// Reads the stream header and every record header (seeking over the
    /// data), and builds the offset index.
    pub fn parse(src: Source) -> Result<FlatFile, ParseError> {
        let (records, version) = FlatFile::records_of(&src)?;
        let mut pieces = BTreeMap::new();
        let mut len = 0u64;
        // Latest first: a byte keeps the last record that wrote it.
        for &(off, size, data) in records.iter().rev() {
            insert_uncovered(&mut pieces, off, off + size, |at| data + (at - off));
            len = len.max(off + size);
        }
        Ok(FlatFile {
            src,
            pieces,
            len,
            records: records.len() as u64,
            version,
        })
    }

    /// The stream's records, each as (offset in the reassembled file, size,
    /// stream offset of its data), in the order written, and the header's
    /// version.
    pub fn records_of(src: &Source) -> Result<(Vec<Record>, u64), ParseError> {
        let h = src.bytes(0, MAX_SIZE_MDF_HEADER, "a 4096-byte makedumpfile_header")?;
        if !h.starts_with(MAKEDUMPFILE_SIGNATURE) || h[MAKEDUMPFILE_SIGNATURE.len()] != 0 {
            return Err(ParseError::new(
                0,
                "the signature \"makedumpfile\" NUL-terminated",
            ));
        }
        let ty = be_i64(h, 16) as u64;
        let version = be_i64(h, 24) as u64;
        if ty != TYPE_FLAT_HEADER {
            return Err(ParseError::new(
                16,
                format!("type TYPE_FLAT_HEADER (1, big-endian), found {ty:#x}"),
            ));
        }
        let total = src.len();
        let mut records = Vec::new();
        let mut pos = MAX_SIZE_MDF_HEADER;
        loop {
            let dh = src.bytes(
                pos,
                DATA_HEADER_SIZE,
                "a makedumpfile_data_header or the end marker (offset -1, size -1)",
            )?;
            let off = be_i64(dh, 0);
            let size = be_i64(dh, 8);
            if off == END_FLAG_FLAT_HEADER && size == END_FLAG_FLAT_HEADER {
                break;
            }
            if off < 0 || size <= 0 {
                return Err(ParseError::new(
                    pos,
                    format!(
                        "a record with offset >= 0 and size > 0, or the end marker (-1, -1); found offset {off}, size {size}"
                    ),
                ));
            }
            let (off, size) = (off as u64, size as u64);
            let data = pos + DATA_HEADER_SIZE;
            let next = data
                .checked_add(size)
                .filter(|&n| n <= total)
                .ok_or_else(|| {
                    ParseError::new(
                        pos,
                        format!("a record of {size} bytes, but the stream is {total} bytes"),
                    )
                })?;
            if off.checked_add(size).is_none() {
                return Err(ParseError::new(
                    pos,
                    format!("a record offset + size within 64 bits, found {off:#x} + {size:#x}"),
                ));
            }
            records.push((off, size, data));
            pos = next;
        }
        Ok((records, version))
    }

    /// Number of data records.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The header's `version`.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The stream offset holding reassembled byte `offset`, if a record wrote it.
    pub fn stream_offset(&self, offset: u64) -> Option<u64> {
        let (&start, &(end, pos)) = self.pieces.range(..=offset).next_back()?;
        (offset < end).then(|| pos + (offset - start))
    }
}

impl ByteSource for FlatFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn bytes(&self, offset: u64, len: u64, what: &str) -> Result<Cow<'_, [u8]>, ParseError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.len).ok_or_else(|| {
            ParseError::new(
                offset,
                format!(
                    "{what} ({len} bytes), but the file reassembled from the flattened stream is {} bytes",
                    self.len
                ),
            )
        })?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        // One piece: borrow.
        if let Some((&s, &(p_end, pos))) = self.pieces.range(..=offset).next_back() {
            if end <= p_end {
                return self
                    .src
                    .bytes(pos + (offset - s), len, what)
                    .map(Cow::Borrowed);
            }
        }
        // Several pieces and holes: assemble. Holes cost no stream bytes, so
        // bound the copy by the stream's size (or 64 MiB of zeros for a
        // sparse small stream) rather than trust the records.
        let cap = self.src.len().max(MAX_ASSEMBLED);
        if len > cap {
            return Err(ParseError::new(
                offset,
                format!(
                    "{what} ({len} bytes), more than a flattened stream of {} bytes can hold",
                    self.src.len()
                ),
            ));
        }
        let mut out = vec![0u8; len as usize];
        let first = self
            .pieces
            .range(..=offset)
            .next_back()
            .map(|(&s, _)| s)
            .unwrap_or(offset);
        for (&s, &(p_end, pos)) in self.pieces.range(first..end) {
            let a = s.max(offset);
            let b = p_end.min(end);
            if a >= b {
                continue;
            }
            let src = self.src.bytes(pos + (a - s), b - a, what)?;
            out[(a - offset) as usize..(b - offset) as usize].copy_from_slice(src);
        }
        Ok(Cow::Owned(out))
    }

    fn source(&self) -> &Source {
        &self.src
    }

    fn describe(&self, offset: u64) -> String {
        match self.stream_offset(offset) {
            Some(pos) => {
                format!("offset {offset:#x} of the reassembled file (stream offset {pos:#x})")
            }
            None => format!("offset {offset:#x} of the reassembled file (written by no record)"),
        }
    }
}

fn in_stream(e: ParseError) -> ParseError {
    ParseError::new(
        e.offset,
        format!(
            "{} (offset in the file reassembled from the flattened stream)",
            e.expected
        ),
    )
}

/// Opens a flattened stream and the kdump-compressed or ELF dump inside it.
pub fn open(src: Source) -> Result<Box<dyn Dump>, Error> {
    let path = src.path().to_path_buf();
    let flat = FlatFile::parse(src).map_err(|e| Error::parse(&path, e))?;
    let head = flat
        .bytes(0, flat.len().min(16), "a dump header")
        .map_err(|e| Error::parse(&path, in_stream(e)))?
        .into_owned();
    let records = flat.records;
    let describe =
        |inner: &str| format!("flattened makedumpfile stream ({records} records) of {inner}");
    match sniff(&head) {
        Some(Kind::Kdump) => {
            let mut d = KdumpDump::parse(flat).map_err(|e| Error::parse(&path, in_stream(e)))?;
            d.info.container = Container::Flattened;
            d.info.description = describe(&d.info.description);
            Ok(Box::new(d))
        }
        Some(Kind::Elf) => {
            let mut d = ElfDump::parse(flat).map_err(|e| Error::parse(&path, in_stream(e)))?;
            d.info.container = Container::Flattened;
            d.info.description = describe(&d.info.description);
            Ok(Box::new(d))
        }
        Some(Kind::Flat) => Err(Error::parse(
            &path,
            in_stream(ParseError::new(
                0,
                "a kdump-compressed or ELF dump, found another flattened stream",
            )),
        )),
        None => Err(Error::parse(&path, in_stream(unknown_format(&head)))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::build::{self, Compression, ElfBuilder, ElfLoad, FlatOptions, KdumpBuilder};
    use super::super::from_source;
    use super::*;
    use crash_payload::PhysAddr;

    const BS: u64 = 4096;

    fn kdump() -> Vec<u8> {
        KdumpBuilder::new(BS as u32)
            .pattern_pages(0x40000..0x40004, Compression::Zlib)
            .pattern_pages(0x40004..0x40006, Compression::Lzo)
            .pattern_pages(0x40006..0x40008, Compression::None)
            .build()
    }

    fn open(bytes: Vec<u8>) -> Result<Box<dyn Dump>, ParseError> {
        match from_source(Source::from_vec("t.flat", bytes)) {
            Ok(d) => Ok(d),
            Err(Error::Parse { err, .. }) => Err(err),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    fn check_pages(d: &dyn Dump, pfns: std::ops::Range<u64>) {
        for pfn in pfns {
            let mut p = vec![0u8; BS as usize];
            d.read_phys(PhysAddr(pfn * BS), &mut p).unwrap();
            assert_eq!(p, build::pattern(pfn * BS, BS as usize), "pfn {pfn:#x}");
        }
    }

    #[test]
    fn flattened_kdump_reads_like_the_file() {
        let file = kdump();
        let opts = FlatOptions {
            chunk: 1000,
            skip_zero: true,
            rewrite_first: 5000,
        };
        let stream = build::flatten(&file, opts);
        let d = open(stream).unwrap();
        assert_eq!(d.info().container, Container::Flattened);
        assert_eq!(d.inner_container(), Container::Kdump);
        assert!(
            d.info()
                .description
                .starts_with("flattened makedumpfile stream ("),
            "{}",
            d.info().description
        );
        assert!(
            d.info().description.contains("kdump-compressed v6"),
            "{}",
            d.info().description
        );
        assert_eq!(d.vmcoreinfo(), Some(build::VMCOREINFO_TEXT));
        check_pages(d.as_ref(), 0x40000..0x40008);
        assert_eq!(d.ranges().len(), 1);
    }

    #[test]
    fn reassembly_matches_the_original_bytes() {
        let file = kdump();
        for opts in [
            FlatOptions::default(),
            FlatOptions {
                chunk: 1,
                skip_zero: false,
                rewrite_first: 0,
            },
            FlatOptions {
                chunk: 777,
                skip_zero: true,
                rewrite_first: 4200,
            },
        ] {
            let f = FlatFile::parse(Source::from_vec("t", build::flatten(&file, opts))).unwrap();
            assert_eq!(ByteSource::len(&f), file.len() as u64);
            let all = f.bytes(0, file.len() as u64, "all").unwrap();
            assert_eq!(&all[..], &file[..], "{opts:?}");
            let mid = f.bytes(4090, 20, "mid").unwrap();
            assert_eq!(&mid[..], &file[4090..4110]);
            assert!(f.bytes(file.len() as u64 - 1, 2, "past").is_err());
        }
    }

    #[test]
    fn flattened_elf_and_qemu_kdump() {
        let elf = ElfBuilder::new()
            .note_segment(build::qemu_notes(2))
            .load(ElfLoad::new(
                0x4000_0000,
                build::pattern(0x4000_0000, 0x4000),
            ))
            .build();
        let d = open(build::flatten(&elf, FlatOptions::default())).unwrap();
        assert_eq!(d.info().container, Container::Flattened);
        assert_eq!(d.inner_container(), Container::QemuElf);
        check_pages(d.as_ref(), 0x40000..0x40004);

        let q = KdumpBuilder::new(65536)
            .machine("Unknown")
            .notes(build::qemu_notes(2))
            .pattern_pages(0x4000..0x4001, Compression::Snappy)
            .build();
        let d = open(build::flatten(
            &q,
            FlatOptions {
                chunk: 4 * 65536,
                ..Default::default()
            },
        ))
        .unwrap();
        assert_eq!(d.inner_container(), Container::QemuKdump);
        assert!(d.info().description.contains("QEMU"));
    }

    #[test]
    fn stream_errors_name_the_stream_offset() {
        let good = build::flatten(&kdump(), FlatOptions::default());
        // Signature, type.
        let mut b = good.clone();
        b[3] = b'X';
        assert_eq!(open(b).unwrap_err().offset, 0);
        let mut b = good.clone();
        b[23] = 2;
        let e = open(b).unwrap_err();
        assert_eq!(e.offset, 16);
        assert!(e.expected.contains("TYPE_FLAT_HEADER"), "{e}");
        // Truncated in the 4096-byte header and at every record header.
        for cut in [12usize, 4095] {
            assert!(open(good[..cut].to_vec()).is_err());
        }
        let mut pos = 4096usize;
        let mut n = 0;
        while pos + 16 <= good.len() {
            let size = i64::from_be_bytes(good[pos + 8..pos + 16].try_into().unwrap());
            for cut in [pos, pos + 7, pos + 15] {
                let e = open(good[..cut].to_vec()).unwrap_err();
                assert_eq!(e.offset, pos as u64, "cut at {cut}");
                assert!(e.expected.contains("end marker"), "{e}");
            }
            if size < 0 {
                break;
            }
            // Cut inside the data: the record is named.
            let e = open(good[..pos + 16 + 1].to_vec()).unwrap_err();
            assert_eq!(e.offset, pos as u64);
            pos += 16 + size as usize;
            n += 1;
        }
        assert!(n > 5);
        // Negative and zero sizes.
        let mut b = good.clone();
        b[4096 + 8..4096 + 16].copy_from_slice(&0i64.to_be_bytes());
        assert_eq!(open(b).unwrap_err().offset, 4096);
        let mut b = good.clone();
        b[4096..4096 + 8].copy_from_slice(&(-5i64).to_be_bytes());
        assert_eq!(open(b).unwrap_err().offset, 4096);
        // A record whose size runs past the stream.
        let mut b = good;
        b[4096 + 8..4096 + 16].copy_from_slice(&i64::MAX.to_be_bytes());
        let e = open(b).unwrap_err();
        assert_eq!(e.offset, 4096);
    }

    #[test]
    fn inner_errors_say_they_are_reassembled_offsets() {
        let x86 = KdumpBuilder::new(BS as u32)
            .machine("x86_64")
            .pattern_pages(1..2, Compression::None)
            .build();
        let e = open(build::flatten(&x86, FlatOptions::default())).unwrap_err();
        assert_eq!(e.offset, 272);
        assert!(
            e.expected.contains("reassembled") && e.expected.contains("only aarch64"),
            "{e}"
        );
        let junk = build::flatten(b"not a dump at all", FlatOptions::default());
        let e = open(junk).unwrap_err();
        assert!(e.expected.contains("reassembled"), "{e}");
    }

    #[test]
    fn huge_holes_are_not_allocated() {
        // One byte written at 1 TiB: the reassembled file is 1 TiB long,
        // but a read spanning the hole is refused rather than allocated.
        let mut s = build::flatten(&[], FlatOptions::default());
        s.truncate(4096);
        s.extend_from_slice(&(1i64 << 40).to_be_bytes());
        s.extend_from_slice(&1i64.to_be_bytes());
        s.push(7);
        s.extend_from_slice(&[0xff; 16]);
        let f = FlatFile::parse(Source::from_vec("t", s)).unwrap();
        assert_eq!(ByteSource::len(&f), (1 << 40) + 1);
        assert!(f.bytes(0, 1 << 30, "a big read").is_err());
        assert_eq!(&f.bytes(1 << 40, 1, "the byte").unwrap()[..], &[7]);
        assert_eq!(&f.bytes(5, 3, "a hole").unwrap()[..], &[0, 0, 0]);
    }

    #[test]
    fn holes_read_as_zero_and_are_described() {
        let mut s = vec![0u8; 4096];
        s[..12].copy_from_slice(b"makedumpfile");
        s[16..24].copy_from_slice(&1i64.to_be_bytes());
        s[24..32].copy_from_slice(&1i64.to_be_bytes());
        let rec = |s: &mut Vec<u8>, off: i64, data: &[u8]| {
            s.extend_from_slice(&off.to_be_bytes());
            s.extend_from_slice(&(data.len() as i64).to_be_bytes());
            s.extend_from_slice(data);
        };
        rec(&mut s, 100, &[1; 10]);
        rec(&mut s, 0, &[2; 4]);
        rec(&mut s, 105, &[3; 10]); // overwrites 105..110, extends to 115
        s.extend_from_slice(&[0xff; 16]);
        let f = FlatFile::parse(Source::from_vec("t", s)).unwrap();
        assert_eq!(ByteSource::len(&f), 115);
        let all = f.bytes(0, 115, "all").unwrap();
        let mut want = [0u8; 115];
        want[..4].fill(2);
        want[100..105].fill(1);
        want[105..115].fill(3);
        assert_eq!(&all[..], &want[..]);
        assert_eq!(f.records(), 3);
        assert_eq!(f.stream_offset(0), Some(4096 + 16 + 10 + 16));
        assert!(f.describe(50).contains("written by no record"));
        assert!(f.describe(101).contains("stream offset"));
    }
}
