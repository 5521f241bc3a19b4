//! The kdump-compressed writer: layout, the page pass and the sinks (a
//! seekable file or makedumpfile's flattened stream).
//!
//! File layout (makedumpfile `write_kdump_header`,
//! `write_kdump_pages_and_bitmap_cyclic`; field offsets in
//! [`crate::format::kdump`]), in blocks of the dump's page size:
//!
//! | where | what |
//! |---|---|
//! | block 0 | `disk_dump_header` (version 6) |
//! | block 1 | `kdump_sub_header`, then the notes (all PT_NOTE bytes) |
//! | 1 + `sub_hdr_size` | 1st bitmap (pfns present in the input), 2nd bitmap (pfns with a `page_desc`) |
//! | then | one `page_desc` per candidate page (the table is reserved for every candidate the page filter keeps; pages the input turns out not to hold leave unused slots at its end) |
//! | then | the shared zero page (when zero pages are excluded), then page data in pfn order |
//!
//! As makedumpfile does, an excluded zero page keeps its 2nd-bitmap bit and
//! gets a `page_desc` pointing at the one shared block of zeros.
//!
//! Order of writes: header (with `DUMP_DH_COMPRESSED_INCOMPLETE` set),
//! sub-header, notes, both bitmaps; then page data and descriptors as they
//! are produced; last the 2nd bitmap again (less the pages the input did not
//! hold) and the header without the incomplete bit. A run cut short therefore leaves a file its readers
//! see as incomplete.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crash_payload::PhysAddr;

use crate::format::flat::{END_FLAG_FLAT_HEADER, MAX_SIZE_MDF_HEADER, TYPE_FLAT_HEADER};
use crate::format::kdump::{
    dh, kh, DISK_DUMP_HEADER_SIZE, DUMP_DH_COMPRESSED_INCOMPLETE, KDUMP_SUB_HEADER_SIZE,
    PAGE_DESC_SIZE,
};
use crate::format::{Dump, KDUMP_SIGNATURE, MAKEDUMPFILE_SIGNATURE};
use crate::mem::MemError;

use super::compress::{Compression, Compressor};
use super::filter::{DumpLevel, PageFilter};
use super::input::Input;
use super::progress::Progress;
use crate::mem::PhysMem;

/// `new_utsname` field length.
pub const UTS_LEN: usize = 65;
/// Pages per batch with one job (compressed by the reading thread straight
/// into the page-data buffer). The buffer is written when the next batch,
/// were none of its pages to shrink, might take it past [`DATA_FLUSH`]: the
/// smaller the batch, the fuller each write (32-page batches made writes of
/// 145 KiB at the median, and each write costs far more than its bytes on a
/// network or 9p file system).
const BATCH_PAGES: usize = 8;
/// Pages per batch with several jobs: each batch in flight (the pool holds
/// one more than the jobs) has an output buffer of its own, and over a
/// whole dump each buffer meets a batch that compresses badly, so each ends
/// up resident at the batch's full size: with 16 pages the three buffers of
/// `-j 2` were 236 KiB of a 1,396 KiB peak in the two-CPU capture kernel,
/// with 8 half that. (8-page batches had been slower while the reading
/// thread only handed batches on; now that it compresses too they cost
/// about 5 %.)
const BATCH_PAGES_THREADED: usize = 8;
/// Page data buffered before a write (at most this much: what is buffered
/// is written before a page or a batch could pass it). 4 KiB under 256 KiB,
/// so a write and its header fit one 256 KiB 9p message.
pub(crate) const DATA_FLUSH: usize = 252 << 10;
/// Descriptors buffered before they must be written (24 KiB; peak memory
/// counts: twice as many saved 16 of 179 writes and cost 24 KiB, which
/// `-j 2` has not to spare). They are written along with page data once 3/4
/// full ([`DESC_EARLY`]), not on their own (which had cost a short
/// page-data write before each).
const DESC_FLUSH: usize = 1024;
/// Descriptors buffered from which a page-data write takes them along.
const DESC_EARLY: usize = DESC_FLUSH * 3 / 4;
/// Input bytes covered between releases of the input mapping's resident pages.
const RELEASE_EVERY: u64 = 4 << 20;

/// Where output bytes go.
pub trait Sink {
    /// Writes `data` at `offset` of the kdump file.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Bytes of output so far (file length, or stream length).
    fn output_bytes(&self) -> u64;
}

/// A seekable output file.
///
/// Every [`SYNC_EVERY`] bytes written, a helper thread is asked to
/// `fdatasync` the file, so the device writes while pages are still being
/// compressed and the final sync has little left to do. The helper's first
/// error is kept and returned by [`FileSink::finish`] (a sync error is
/// reported once per open file, so it must not be lost there).
#[derive(Debug)]
pub struct FileSink {
    file: std::fs::File,
    end: u64,
    limit: Option<u64>,
    unsynced: u64,
    syncer: Option<Syncer>,
}

#[derive(Debug)]
struct Syncer {
    tx: SyncSender<()>,
    handle: std::thread::JoinHandle<io::Result<()>>,
}

/// Bytes written between background syncs of a [`FileSink`].
pub const SYNC_EVERY: u64 = 8 << 20;

impl FileSink {
    /// Writes into `file` (expected empty).
    pub fn new(file: std::fs::File) -> FileSink {
        FileSink::with_limit(file, None)
    }
    /// Behaves as a device of `limit` bytes: a write past it writes what
    /// fits and fails with ENOSPC.
    pub fn with_limit(file: std::fs::File, limit: Option<u64>) -> FileSink {
        let syncer = file.try_clone().ok().and_then(|f| {
            let (tx, rx) = mpsc::sync_channel::<()>(1);
            std::thread::Builder::new()
                .name("vmcore-sync".into())
                .spawn(move || {
                    for () in rx {
                        f.sync_data()?;
                    }
                    Ok(())
                })
                .ok()
                .map(|handle| Syncer { tx, handle })
        });
        FileSink {
            file,
            end: 0,
            limit,
            unsynced: 0,
            syncer,
        }
    }
    /// Stops the background syncs; returns the file, to sync and close,
    /// and the first error a background sync met.
    pub fn finish(self) -> (std::fs::File, io::Result<()>) {
        let r = match self.syncer {
            Some(s) => {
                drop(s.tx);
                s.handle
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("the sync thread panicked")))
            }
            None => Ok(()),
        };
        (self.file, r)
    }
    fn wrote(&mut self, n: u64) {
        self.unsynced += n;
        if self.unsynced >= SYNC_EVERY {
            // A sync still running covers these bytes or the next does.
            if let Some(s) = &self.syncer {
                if s.tx.try_send(()).is_ok() {
                    self.unsynced = 0;
                }
            }
        }
    }
}

impl Sink for FileSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(limit) = self.limit {
            let end = offset.saturating_add(data.len() as u64);
            if end > limit {
                let fits = limit.saturating_sub(offset).min(data.len() as u64) as usize;
                self.file.write_all_at(&data[..fits], offset)?;
                self.end = self.end.max(offset + fits as u64);
                return Err(io::Error::from_raw_os_error(28));
            }
        }
        self.file.write_all_at(data, offset)?;
        self.end = self.end.max(offset.saturating_add(data.len() as u64));
        self.wrote(data.len() as u64);
        Ok(())
    }
    fn output_bytes(&self) -> u64 {
        self.end
    }
}

/// makedumpfile's flattened stream: a 4096-byte `makedumpfile_header`, then
/// records `{ offset, size }` (big-endian `int64_t`) each followed by its
/// bytes, then the end marker (-1, -1). Records may come in any order; a
/// later one overwrites an earlier one.
#[derive(Debug)]
pub struct FlatSink<W: Write> {
    w: W,
    bytes: u64,
}

impl<W: Write> FlatSink<W> {
    /// Writes the stream header to `w`.
    pub fn new(mut w: W) -> io::Result<FlatSink<W>> {
        let mut h = vec![0u8; MAX_SIZE_MDF_HEADER as usize];
        h[..MAKEDUMPFILE_SIGNATURE.len()].copy_from_slice(MAKEDUMPFILE_SIGNATURE);
        h[16..24].copy_from_slice(&TYPE_FLAT_HEADER.to_be_bytes());
        // VERSION_FLAT_HEADER.
        h[24..32].copy_from_slice(&1u64.to_be_bytes());
        w.write_all(&h)?;
        Ok(FlatSink {
            w,
            bytes: MAX_SIZE_MDF_HEADER,
        })
    }

    /// Writes the end marker and flushes; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let mut end = [0u8; 16];
        end[..8].copy_from_slice(&END_FLAG_FLAT_HEADER.to_be_bytes());
        end[8..].copy_from_slice(&END_FLAG_FLAT_HEADER.to_be_bytes());
        self.w.write_all(&end)?;
        self.w.flush()?;
        Ok(self.w)
    }
}

impl<W: Write> Sink for FlatSink<W> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let bad = || io::Error::new(io::ErrorKind::InvalidInput, "record beyond 2^63");
        let off = i64::try_from(offset).map_err(|_| bad())?;
        let len = i64::try_from(data.len()).map_err(|_| bad())?;
        let mut h = [0u8; 16];
        h[..8].copy_from_slice(&off.to_be_bytes());
        h[8..].copy_from_slice(&len.to_be_bytes());
        // Header and data in one vectored write where they can go
        // together (a record of page data passes the buffer: a separate
        // 16-byte write before it had been a write of its own into the
        // pipe, and a short read and write for the reader).
        let mut bufs = [io::IoSlice::new(&h), io::IoSlice::new(data)];
        let mut bufs = &mut bufs[..];
        while !bufs.is_empty() {
            match self.w.write_vectored(bufs) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => io::IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.bytes += 16 + data.len() as u64;
        Ok(())
    }
    fn output_bytes(&self) -> u64 {
        self.bytes
    }
}

/// What the headers say about the dumped system.
#[derive(Debug, Clone)]
pub struct Meta {
    /// `utsname`: sysname, nodename, release, version, machine, domainname.
    pub utsname: [String; 6],
    /// Crash time (`timestamp.tv_sec`).
    pub timestamp: i64,
    /// `nr_cpus`: NT_PRSTATUS notes in the input.
    pub nr_cpus: u32,
    /// `phys_base`.
    pub phys_base: u64,
    /// The note bytes (every note segment, in order).
    pub notes: Vec<u8>,
    /// Offset and size of the VMCOREINFO descriptor inside `notes`.
    pub vmcoreinfo: Option<(u64, u64)>,
}

/// Where the parts of the file go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Block (page) size.
    pub block_size: u64,
    /// `max_mapnr`: one past the highest pfn.
    pub max_mapnr: u64,
    /// `sub_hdr_size` in blocks.
    pub sub_hdr_blocks: u64,
    /// Bytes of each bitmap.
    pub bitmap_len: u64,
    /// 1st bitmap offset.
    pub bitmap1: u64,
    /// 2nd bitmap offset.
    pub bitmap2: u64,
    /// First `page_desc`.
    pub descs: u64,
    /// Descriptor slots reserved.
    pub slots: u64,
    /// First byte after the descriptor table.
    pub data: u64,
}

impl Layout {
    /// The layout for `candidates` pages and `notes_len` note bytes.
    pub fn new(block_size: u64, max_mapnr: u64, notes_len: u64, candidates: u64) -> Option<Layout> {
        let sub_hdr_blocks = KDUMP_SUB_HEADER_SIZE
            .checked_add(notes_len)?
            .div_ceil(block_size);
        let bitmap_len = max_mapnr
            .div_ceil(8)
            .div_ceil(block_size)
            .max(1)
            .checked_mul(block_size)?;
        let bitmap1 = sub_hdr_blocks.checked_add(1)?.checked_mul(block_size)?;
        let bitmap2 = bitmap1.checked_add(bitmap_len)?;
        let descs = bitmap2.checked_add(bitmap_len)?;
        let data = descs.checked_add(candidates.checked_mul(PAGE_DESC_SIZE)?)?;
        Some(Layout {
            block_size,
            max_mapnr,
            sub_hdr_blocks,
            bitmap_len,
            bitmap1,
            bitmap2,
            descs,
            slots: candidates,
            data,
        })
    }
}

/// The `disk_dump_header` bytes.
pub fn disk_dump_header(meta: &Meta, l: &Layout, status: u32) -> Vec<u8> {
    let mut h = vec![0u8; DISK_DUMP_HEADER_SIZE as usize];
    h[..8].copy_from_slice(KDUMP_SIGNATURE);
    put32(&mut h, dh::HEADER_VERSION, 6);
    for (i, s) in meta.utsname.iter().enumerate() {
        let at = dh::UTSNAME + i * UTS_LEN;
        let b = s.as_bytes();
        let n = b.len().min(UTS_LEN - 1);
        h[at..at + n].copy_from_slice(&b[..n]);
    }
    put64(&mut h, dh::TIMESTAMP, meta.timestamp as u64);
    put32(&mut h, dh::STATUS, status);
    put32(&mut h, dh::BLOCK_SIZE, l.block_size as u32);
    put32(&mut h, dh::SUB_HDR_SIZE, l.sub_hdr_blocks as u32);
    put32(
        &mut h,
        dh::BITMAP_BLOCKS,
        (2 * l.bitmap_len / l.block_size) as u32,
    );
    put32(
        &mut h,
        dh::MAX_MAPNR,
        l.max_mapnr.min(u64::from(u32::MAX)) as u32,
    );
    put32(&mut h, dh::NR_CPUS, meta.nr_cpus);
    h
}

/// The `kdump_sub_header` (version 6) followed by the notes.
pub fn sub_header_and_notes(meta: &Meta, l: &Layout, level: DumpLevel) -> Vec<u8> {
    let mut k = vec![0u8; KDUMP_SUB_HEADER_SIZE as usize];
    put64(&mut k, kh::PHYS_BASE, meta.phys_base);
    put32(&mut k, kh::DUMP_LEVEL, u32::from(level.bits()));
    let notes_off = l.block_size + KDUMP_SUB_HEADER_SIZE;
    if !meta.notes.is_empty() {
        put64(&mut k, kh::OFFSET_NOTE, notes_off);
        put64(&mut k, kh::SIZE_NOTE, meta.notes.len() as u64);
        if let Some((off, size)) = meta.vmcoreinfo {
            put64(&mut k, kh::OFFSET_VMCOREINFO, notes_off + off);
            put64(&mut k, kh::SIZE_VMCOREINFO, size);
        }
    }
    put64(&mut k, kh::MAX_MAPNR_64, l.max_mapnr);
    k.extend_from_slice(&meta.notes);
    k
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Sets bit `pfn` of `bitmap`.
pub fn set_bit(bitmap: &mut [u8], pfn: u64) {
    if let Some(b) = bitmap.get_mut((pfn / 8) as usize) {
        *b |= 1 << (pfn % 8);
    }
}
/// Sets bits `start..end` of `bitmap`: whole bytes at once.
pub fn set_bits(bitmap: &mut [u8], start: u64, end: u64) {
    let mut p = start;
    while p < end && !p.is_multiple_of(8) {
        set_bit(bitmap, p);
        p += 1;
    }
    let whole = end / 8 * 8;
    if p < whole {
        let a = usize::try_from(p / 8)
            .unwrap_or(usize::MAX)
            .min(bitmap.len());
        let b = usize::try_from(whole / 8)
            .unwrap_or(usize::MAX)
            .min(bitmap.len());
        bitmap[a..b].fill(0xff);
        p = whole;
    }
    while p < end {
        set_bit(bitmap, p);
        p += 1;
    }
}

fn clear_bit(bitmap: &mut [u8], pfn: u64) {
    if let Some(b) = bitmap.get_mut((pfn / 8) as usize) {
        *b &= !(1 << (pfn % 8));
    }
}

/// True when every byte of `page` is zero: 64-byte blocks of eight
/// 64-bit words ORed together, stopping at the first non-zero block.
pub fn is_zero(page: &[u8]) -> bool {
    let mut blocks = page.chunks_exact(64);
    for blk in &mut blocks {
        let mut acc = 0u64;
        for w in blk.chunks_exact(8) {
            acc |= <[u8; 8]>::try_from(w).map_or(1, u64::from_ne_bytes);
        }
        if acc != 0 {
            return false;
        }
    }
    blocks.remainder().iter().all(|&b| b == 0)
}

/// Why a pass stopped.
#[derive(Debug)]
pub enum Failure {
    /// Writing the output failed (`what` was being written).
    Output {
        /// The part being written.
        what: &'static str,
        /// The error.
        err: io::Error,
    },
    /// A page of the input could not be read.
    Input {
        /// The page.
        pfn: u64,
        /// The reader's error (it names the file offset).
        err: MemError,
    },
}

/// Counts from one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Pages present in the input (1st bitmap).
    pub present: u64,
    /// Pages the page filter kept.
    pub candidates: u64,
    /// Zero pages stored as the shared zero block (zero-page exclusion on).
    pub zero: u64,
    /// Candidates the input does not hold (a filtered kdump input).
    pub absent: u64,
    /// Pages stored with their own data.
    pub written: u64,
    /// Of those, stored raw.
    pub raw: u64,
    /// Where the pass's time went.
    pub times: PhaseTimes,
}

/// Time spent per phase of a pass. Zero checks and compression run on
/// several threads: theirs is the sum over the threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    /// Reading candidate pages from the input.
    pub read: Duration,
    /// Checking pages for zeros.
    pub zero_check: Duration,
    /// Compressing pages.
    pub compress: Duration,
    /// Writing the output (headers, bitmaps, data, descriptors).
    pub write: Duration,
    /// Wall time before the first page (bitmaps, layout, headers).
    pub setup: Duration,
    /// Wall time of the page pass.
    pub pass: Duration,
}

/// A sink that adds the time spent in it to `spent`.
struct TimedSink<'a> {
    inner: &'a mut dyn Sink,
    spent: Duration,
}

impl Sink for TimedSink<'_> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let t = Instant::now();
        let r = self.inner.write_at(offset, data);
        self.spent += t.elapsed();
        r
    }
    fn output_bytes(&self) -> u64 {
        self.inner.output_bytes()
    }
}

/// Where a present page of a batch is.
#[derive(Clone, Copy)]
enum PageAt<'a> {
    /// In the batch's `data`, at this offset.
    Buf(usize),
    /// In the input's mapping (/proc/vmcore: read in place, not copied).
    Map(&'a [u8]),
}

/// One batch of pages on its way to a compression thread.
struct Batch<'a> {
    seq: u64,
    pfns: Vec<u64>,
    /// Per pfn: where its bytes are; `None` when the input does not hold it.
    at: Vec<Option<PageAt<'a>>>,
    /// A batch's worth of pages of room; the first `filled` bytes are the
    /// batch's copied pages, in order.
    data: Vec<u8>,
    filled: usize,
    /// The buffer the compressed pages go to (empty, reused).
    out: Vec<u8>,
}

impl<'a> Batch<'a> {
    /// An empty batch holding no buffer.
    fn placeholder() -> Batch<'a> {
        Batch {
            seq: 0,
            pfns: Vec::new(),
            at: Vec::new(),
            data: Vec::new(),
            filled: 0,
            out: Vec::new(),
        }
    }

    /// The bytes of the batch's `i`-th page; `None` when it is absent.
    fn page(&self, i: usize, ps: usize) -> Option<&[u8]> {
        match self.at.get(i)?.as_ref()? {
            PageAt::Map(p) => Some(p),
            &PageAt::Buf(off) => Some(self.data.get(off..off + ps).unwrap_or(&[])),
        }
    }
}

enum Stored {
    Absent,
    Zero,
    Data { flags: u32, len: u32 },
}

struct Done {
    seq: u64,
    pfns: Vec<u64>,
    items: Vec<Stored>,
    out: Vec<u8>,
    /// The batch's input buffer, for reuse (with `out`).
    spare: Vec<u8>,
    /// Time the batch's zero checks took.
    zero_check: Duration,
    /// Time its compression took.
    compress: Duration,
}

/// The page ranges of the dump as pfn runs (pages wholly inside a range).
pub fn pfn_runs(dump: &dyn Dump, page_size: u64) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = dump
        .ranges()
        .iter()
        .filter_map(|r| {
            let s = r.start.get().div_ceil(page_size);
            let e = r.start.get().checked_add(r.size)? / page_size;
            (s < e).then_some((s, e))
        })
        .collect();
    v.sort_unstable();
    v
}

/// What one pass writes: the input, its filter and the output's settings.
#[derive(Clone, Copy)]
pub struct Pass<'a> {
    /// The input.
    pub dump: &'a dyn Dump,
    /// The output's header fields.
    pub meta: &'a Meta,
    /// Which pages to write.
    pub filter: &'a PageFilter,
    /// The dump level recorded in the output.
    pub level: DumpLevel,
    /// Page compression.
    pub comp: Compression,
    /// Compression threads.
    pub jobs: usize,
    /// The dump's page size.
    pub page_size: u64,
    /// Show a progress bar.
    pub progress: bool,
}

impl std::fmt::Debug for Pass<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pass")
            .field("level", &self.level)
            .field("comp", &self.comp)
            .field("jobs", &self.jobs)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// Writes one complete dump into `sink`; `stats` counts what was done,
/// also when the pass fails.
pub fn write_dump(
    pass: &Pass<'_>,
    sink: &mut dyn Sink,
    stats: &mut PassStats,
) -> Result<(), Failure> {
    let mut timed = TimedSink {
        inner: sink,
        spent: Duration::ZERO,
    };
    let r = write_pass(pass, &mut timed, stats);
    stats.times.write = timed.spent;
    r
}

fn write_pass(pass: &Pass<'_>, sink: &mut dyn Sink, stats: &mut PassStats) -> Result<(), Failure> {
    let Pass {
        dump,
        meta,
        filter,
        level,
        comp,
        jobs,
        page_size,
        progress: progress_on,
    } = *pass;
    let out = |what: &'static str| move |err| Failure::Output { what, err };
    let started = Instant::now();
    let runs = pfn_runs(dump, page_size);
    let max_mapnr = filter.max_pfn();
    *stats = PassStats::default();
    let st = stats;
    let bm_bytes = usize::try_from(max_mapnr.div_ceil(8)).unwrap_or(usize::MAX);
    let mut bitmap1 = vec![0u8; bm_bytes];
    let mut bitmap2 = vec![0u8; bm_bytes];
    for &(s, e) in &runs {
        let e = e.min(max_mapnr);
        if s >= e {
            continue;
        }
        st.present += e - s;
        set_bits(&mut bitmap1, s, e);
        let mut p = s;
        while let Some((a, z)) = filter.kept_run(p, e) {
            st.candidates += z - a;
            set_bits(&mut bitmap2, a, z);
            p = z;
        }
    }
    let layout = Layout::new(page_size, max_mapnr, meta.notes.len() as u64, st.candidates).ok_or(
        Failure::Output {
            what: "the layout",
            err: io::Error::new(
                io::ErrorKind::InvalidInput,
                "dump too large for 64-bit offsets",
            ),
        },
    )?;
    let mut progress = Progress::new(
        progress_on,
        st.candidates,
        format!("vmcore save -d {}", level.bits()),
    );
    let status = comp.flag();
    sink.write_at(
        0,
        &disk_dump_header(meta, &layout, status | DUMP_DH_COMPRESSED_INCOMPLETE),
    )
    .map_err(out("the disk_dump_header"))?;
    sink.write_at(page_size, &sub_header_and_notes(meta, &layout, level))
        .map_err(out("the sub-header and notes"))?;
    sink.write_at(layout.bitmap1, &bitmap1)
        .map_err(out("the 1st bitmap"))?;
    drop(bitmap1);
    // Every candidate for now, so that a run cut short leaves a file whose
    // written pages can be found; rewritten at the end without the pages
    // the input turned out not to hold.
    sink.write_at(layout.bitmap2, &bitmap2)
        .map_err(out("the 2nd bitmap"))?;

    let zero_excluded = level.excludes(DumpLevel::ZERO);
    let mut data_off = layout.data;
    let zero_desc = zero_excluded.then(|| {
        let d = desc(layout.data, page_size as u32, 0);
        data_off += page_size;
        d
    });
    if zero_excluded {
        sink.write_at(layout.data, &vec![0u8; page_size as usize])
            .map_err(out("the shared zero page"))?;
    }

    st.times.setup = started.elapsed();
    let pass_start = Instant::now();
    let jobs = jobs.max(1);
    let ps = page_size as usize;
    let stop = AtomicBool::new(false);
    let mut wr = Out {
        w: Emit {
            sink,
            layout: &layout,
            data_off,
            data_start: data_off,
            // Room for a compressor's worst case for a page past
            // `DATA_FLUSH`, before the page is stored raw instead.
            data_buf: Vec::with_capacity(DATA_FLUSH + ps / 8 + 128),
            desc_buf: Vec::with_capacity(DESC_FLUSH * PAGE_DESC_SIZE as usize),
            desc_idx: 0,
            desc_flushed: 0,
        },
        bitmap2: std::mem::take(&mut bitmap2),
        st,
        zero_desc,
        progress: &mut progress,
        done_pages: 0,
        failure: None,
    };
    let mut read_time = Duration::ZERO;
    let read = if jobs == 1 {
        // One thread does it all: with one CPU (a crash kernel) hand-offs
        // between threads would be context switches, and one batch buffer
        // is the whole pool.
        let mut pipe = Inline {
            c: Compressor::new(comp),
            zero_excluded,
            ps,
            out: &mut wr,
            spare: None,
        };
        let batch = Batching {
            ps,
            pages: BATCH_PAGES,
            pool: 1,
        };
        read_pages(dump, filter, &runs, batch, &mut pipe, &stop, &mut read_time)
    } else {
        // The reading thread hands batches to the jobs and writes what
        // they give back, in pfn order, between batches: two hand-offs per
        // batch. The pool bounds the batches in existence, so neither
        // channel, each as large as the pool, ever makes a sender wait.
        let batch = Batching {
            ps,
            pages: BATCH_PAGES_THREADED,
            pool: jobs + 1,
        };
        let (job_tx, job_rx) = mpsc::sync_channel::<Batch<'_>>(batch.pool);
        let (done_tx, done_rx) = mpsc::sync_channel::<Done>(batch.pool);
        let job_rx = Arc::new(Mutex::new(job_rx));
        std::thread::scope(|scope| {
            // The reading thread is one of the jobs (see `Threaded`).
            for _ in 1..jobs {
                let job_rx = Arc::clone(&job_rx);
                let done_tx = done_tx.clone();
                scope.spawn(move || compress_worker(&job_rx, &done_tx, comp, zero_excluded, ps));
            }
            drop(done_tx);
            let mut pipe = Threaded {
                job_tx: Some(job_tx),
                job_rx,
                done_rx,
                c: Compressor::new(comp),
                zero_excluded,
                ps,
                pending: BTreeMap::new(),
                next: 0,
                spare: Vec::new(),
                out: &mut wr,
                stop: &stop,
            };
            let r = read_pages(dump, filter, &runs, batch, &mut pipe, &stop, &mut read_time);
            // The last batches: the jobs, this thread among them, finish
            // them once no more come.
            pipe.job_tx = None;
            while pipe.next_done() {}
            r
        })
    };
    wr.st.times.read = read_time;
    wr.st.times.pass = pass_start.elapsed();
    let w = &mut wr.w;
    if let Some(f) = wr.failure.take() {
        w.salvage();
        return Err(f);
    }
    if let Err(f) = read {
        w.salvage();
        return Err(f);
    }
    if let Err(f) = w.flush() {
        w.salvage();
        return Err(f);
    }
    wr.progress.finish(wr.done_pages);
    let Out { w, bitmap2, .. } = wr;
    let sink = w.sink;
    sink.write_at(layout.bitmap2, &bitmap2)
        .map_err(out("the 2nd bitmap"))?;
    sink.write_at(0, &disk_dump_header(meta, &layout, status))
        .map_err(out("the final disk_dump_header"))?;
    Ok(())
}

fn desc(offset: u64, size: u32, flags: u32) -> [u8; PAGE_DESC_SIZE as usize] {
    let mut d = [0u8; PAGE_DESC_SIZE as usize];
    d[..8].copy_from_slice(&offset.to_le_bytes());
    d[8..12].copy_from_slice(&size.to_le_bytes());
    d[12..16].copy_from_slice(&flags.to_le_bytes());
    d
}

struct Emit<'a> {
    sink: &'a mut dyn Sink,
    layout: &'a Layout,
    data_off: u64,
    /// Offset of `data_buf[0]`.
    data_start: u64,
    data_buf: Vec<u8>,
    desc_buf: Vec<u8>,
    desc_idx: u64,
    desc_flushed: u64,
}

impl Emit<'_> {
    fn push_desc(&mut self, d: &[u8]) -> Result<(), Failure> {
        if self.desc_idx >= self.layout.slots {
            return Err(Failure::Output {
                what: "a page_desc",
                err: io::Error::other("more pages than descriptor slots"),
            });
        }
        self.desc_buf.extend_from_slice(d);
        self.desc_idx += 1;
        if self.desc_buf.len() >= DESC_FLUSH * PAGE_DESC_SIZE as usize {
            self.flush_descs()?;
        }
        Ok(())
    }

    fn push_data(&mut self, body: &[u8], flags: u32) -> Result<(), Failure> {
        if self.data_buf.len() + body.len() > DATA_FLUSH {
            self.flush_data()?;
        }
        self.data_buf.extend_from_slice(body);
        self.push_placed(body.len(), flags)
    }

    /// The descriptor of the page data that ends `data_buf`, `len` bytes
    /// (put there already, by [`Emit::push_data`] or by `Inline`, which
    /// flushed before it could pass `DATA_FLUSH`).
    fn push_placed(&mut self, len: usize, flags: u32) -> Result<(), Failure> {
        let d = desc(self.data_off, len as u32, flags);
        self.data_off += len as u64;
        self.push_desc(&d)
    }

    /// Writes the buffered page data; with it, the buffered descriptors
    /// once there are [`DESC_EARLY`] (the data buffer is written only
    /// between pages, so each of them points at data now written).
    fn flush_data(&mut self) -> Result<(), Failure> {
        if !self.data_buf.is_empty() {
            self.sink
                .write_at(self.data_start, &self.data_buf)
                .map_err(|err| Failure::Output {
                    what: "page data",
                    err,
                })?;
            self.data_start += self.data_buf.len() as u64;
            self.data_buf.clear();
            if self.desc_buf.len() >= DESC_EARLY * PAGE_DESC_SIZE as usize {
                self.write_descs()?;
            }
        }
        Ok(())
    }

    fn flush_descs(&mut self) -> Result<(), Failure> {
        // Data first: a descriptor never points past what was written.
        self.flush_data()?;
        self.write_descs()
    }

    /// Writes the buffered descriptors (their page data written already).
    fn write_descs(&mut self) -> Result<(), Failure> {
        if !self.desc_buf.is_empty() {
            let at = self.layout.descs + self.desc_flushed * PAGE_DESC_SIZE;
            self.sink
                .write_at(at, &self.desc_buf)
                .map_err(|err| Failure::Output {
                    what: "page descriptors",
                    err,
                })?;
            self.desc_flushed = self.desc_idx;
            self.desc_buf.clear();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Failure> {
        self.flush_descs()
    }

    /// After a failure: write the descriptors whose page data is already
    /// out (so an incomplete file holds every page it can), ignoring errors.
    fn salvage(&mut self) {
        // Small pieces, so whatever still fits gets out.
        let mut done = 0usize;
        for piece in self.data_buf.chunks(4096) {
            if self.sink.write_at(self.data_start, piece).is_err() {
                break;
            }
            self.data_start += piece.len() as u64;
            done += piece.len();
        }
        self.data_buf.drain(..done);
        let ok = self
            .desc_buf
            .chunks_exact(PAGE_DESC_SIZE as usize)
            .take_while(|d| {
                let off = u64::from_le_bytes(d[..8].try_into().unwrap_or([0xff; 8]));
                let size = u64::from(u32::from_le_bytes(d[8..12].try_into().unwrap_or([0xff; 4])));
                off.saturating_add(size) <= self.data_start
            })
            .count();
        let at = self.layout.descs + self.desc_flushed * PAGE_DESC_SIZE;
        let _ = self
            .sink
            .write_at(at, &self.desc_buf[..ok * PAGE_DESC_SIZE as usize]);
    }
}

/// How the reader cuts the pages: page size, pages per batch, batch
/// buffers in all.
#[derive(Debug, Clone, Copy)]
struct Batching {
    ps: usize,
    pages: usize,
    pool: usize,
}

/// The reader: candidate pages in pfn order, in batches, into reused buffers.
fn read_pages<'a>(
    dump: &'a dyn Dump,
    filter: &PageFilter,
    runs: &[(u64, u64)],
    batch: Batching,
    pipe: &mut dyn Pipe<'a>,
    stop: &AtomicBool,
    spent: &mut Duration,
) -> Result<(), Failure> {
    let ps = batch.ps;
    let mut seq = 0u64;
    let mut since_release = 0u64;
    // Pages stored verbatim (an ELF core) are read with pread into the
    // batch buffer: no page of the mapping becomes resident (on procfs,
    // through the mapping: see `Input`).
    let input = Input::new(dump);
    // A fixed pool of batch buffers bounds the memory in flight (queued,
    // compressing, waiting to be written in order); the writer hands each
    // buffer back once its batch is out, with the batch's output buffer.
    // Buffers keep their full size: pages are read over the old bytes,
    // never zero-filled first.
    let mut allocated = 0usize;
    let mut new_batch = |seq: u64, pipe: &mut dyn Pipe<'a>| -> Option<Batch<'a>> {
        let (data, out) = if allocated < batch.pool {
            allocated += 1;
            (vec![0u8; ps * batch.pages], Vec::new())
        } else {
            pipe.buffers()?
        };
        Some(Batch {
            seq,
            pfns: Vec::with_capacity(batch.pages),
            at: Vec::with_capacity(batch.pages),
            data,
            filled: 0,
            out,
        })
    };
    let Some(mut b) = new_batch(seq, pipe) else {
        return Ok(());
    };
    for &(s, e) in runs {
        let end = e.min(filter.max_pfn());
        let mut pfn = s;
        // The run of kept pages `pfn` is in ends at `run_end`.
        let mut run_end = pfn;
        while pfn < end {
            if pfn >= run_end {
                match filter.kept_run(pfn, end) {
                    Some((a, z)) => (pfn, run_end) = (a, z),
                    None => break,
                }
            }
            // A span of kept pages that fits the batch: one pread when the
            // file holds it verbatim in one piece.
            let room = (batch.pages - b.pfns.len()) as u64;
            let mut k = room.min(run_end - pfn);
            let addr = PhysAddr(pfn.saturating_mul(ps as u64));
            let span_len = k * ps as u64;
            let t0 = Instant::now();
            if let Some(r) = input.map_verbatim(addr, span_len) {
                // /proc/vmcore: the pages are read where they are mapped.
                let span = r.map_err(|err| Failure::Input { pfn, err })?;
                for (i, page) in span.chunks_exact(ps).enumerate() {
                    b.at.push(Some(PageAt::Map(page)));
                    b.pfns.push(pfn + i as u64);
                }
            } else if let Some(r) =
                input.read_verbatim(addr, &mut b.data[b.filled..b.filled + span_len as usize])
            {
                // At most `batch.pages` pages per batch: always in bounds.
                r.map_err(|err| Failure::Input { pfn, err })?;
                for i in 0..k {
                    b.at.push(Some(PageAt::Buf(b.filled + i as usize * ps)));
                    b.pfns.push(pfn + i);
                }
                b.filled += span_len as usize;
            } else {
                k = 1;
                let dst = &mut b.data[b.filled..b.filled + ps];
                match input.read_phys(addr, dst) {
                    Ok(()) => {
                        b.at.push(Some(PageAt::Buf(b.filled)));
                        b.filled += ps;
                    }
                    Err(MemError::NotPresent(_)) => b.at.push(None),
                    Err(err) => return Err(Failure::Input { pfn, err }),
                }
                b.pfns.push(pfn);
            }
            *spent += t0.elapsed();
            pfn += k;
            since_release += k * ps as u64;
            if b.pfns.len() == batch.pages {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                seq += 1;
                // Send first: the writer may need this batch before it can
                // hand a buffer back.
                let full = std::mem::replace(&mut b, Batch::placeholder());
                if !pipe.send(full) {
                    return Ok(());
                }
                match new_batch(seq, pipe) {
                    Some(n) => b = n,
                    None => return Ok(()),
                }
                if since_release >= RELEASE_EVERY && input.fills_mapping() {
                    // The input pages just copied are not needed again:
                    // keep the resident set small (they stay in the page
                    // cache, out of this process's RSS).
                    dump.source().release_resident();
                    since_release = 0;
                }
            }
        }
    }
    if !b.pfns.is_empty() {
        pipe.send(b);
    }
    if input.fills_mapping() {
        dump.source().release_resident();
    }
    Ok(())
}

/// Where the reader's batches go, and where its next buffers come from.
trait Pipe<'a> {
    /// Hands a full batch on; false when nobody takes batches any more.
    fn send(&mut self, b: Batch<'a>) -> bool;
    /// An input and an output buffer for the next batch, once the pool is
    /// all allocated; `None` when no more will come back.
    fn buffers(&mut self) -> Option<(Vec<u8>, Vec<u8>)>;
}

/// To the compression threads; what they give back is written, in
/// sequence order, by the reading thread while it waits for a buffer.
///
/// The reading thread is itself one of the jobs: rather than wait for a
/// buffer while batches are queued, it takes one and compresses it. With
/// `-j N` there are thus N - 1 compression threads besides it and no more
/// threads with work than CPUs (with N threads besides it, a two-CPU
/// capture kernel switched between three).
struct Threaded<'a, 'b, 'o> {
    job_tx: Option<SyncSender<Batch<'a>>>,
    /// The queue the compression threads take from, for this thread too.
    job_rx: Arc<Mutex<Receiver<Batch<'a>>>>,
    done_rx: Receiver<Done>,
    /// This thread's compressor.
    c: Compressor,
    zero_excluded: bool,
    ps: usize,
    /// Batches compressed ahead of their turn.
    pending: BTreeMap<u64, Done>,
    /// The sequence number written next.
    next: u64,
    /// Buffers of written batches, for the next.
    spare: Vec<(Vec<u8>, Vec<u8>)>,
    out: &'o mut Out<'b>,
    stop: &'o AtomicBool,
}

impl<'a> Threaded<'a, '_, '_> {
    /// Writes every compressed batch whose turn has come, `d` among them;
    /// false when the output failed.
    fn accept(&mut self, d: Done) -> bool {
        self.pending.insert(d.seq, d);
        while let Some(d) = self.pending.remove(&self.next) {
            self.next += 1;
            if self.out.emit(&d, false).is_err() {
                self.stop.store(true, Ordering::Relaxed);
                return false;
            }
            let mut o = d.out;
            o.clear();
            self.spare.push((d.spare, o));
        }
        true
    }

    /// A queued batch no compression thread has taken yet. A thread that
    /// holds the queue's lock is waiting on an empty queue or about to take
    /// the batch at its head: then there is nothing to take.
    fn queued(&self) -> Option<Batch<'a>> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        self.job_rx.try_lock().ok()?.try_recv().ok()
    }

    /// Makes progress on one batch: one already compressed by a job is
    /// written, else one still queued is compressed here, else one is
    /// waited for. False when no more will come or the output failed.
    fn next_done(&mut self) -> bool {
        let d = if let Ok(d) = self.done_rx.try_recv() {
            d
        } else if let Some(b) = self.queued() {
            compress_batch(&mut self.c, b, self.zero_excluded, self.ps)
        } else if let Ok(d) = self.done_rx.recv() {
            d
        } else {
            return false;
        };
        self.accept(d)
    }
}

impl<'a> Pipe<'a> for Threaded<'a, '_, '_> {
    fn send(&mut self, b: Batch<'a>) -> bool {
        self.job_tx.as_ref().is_some_and(|tx| tx.send(b).is_ok())
    }
    fn buffers(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        loop {
            if let Some(s) = self.spare.pop() {
                return Some(s);
            }
            if !self.next_done() {
                return None;
            }
        }
    }
}

/// One job: each batch compressed and written by the reading thread
/// itself, its buffers then reused (no hand-offs between threads).
struct Inline<'a, 'b> {
    c: Compressor,
    zero_excluded: bool,
    ps: usize,
    out: &'a mut Out<'b>,
    spare: Option<(Vec<u8>, Vec<u8>)>,
}

impl<'x> Pipe<'x> for Inline<'_, '_> {
    fn send(&mut self, mut b: Batch<'x>) -> bool {
        // Compressed straight onto the end of the page-data buffer: no
        // copy from the batch's own output buffer (which stays unused).
        // What is buffered goes out first if the batch could take the
        // buffer past `DATA_FLUSH`, so it never holds more.
        let w = &mut self.out.w;
        if w.data_buf.len() + b.pfns.len() * self.ps > DATA_FLUSH {
            if let Err(f) = w.flush_data() {
                self.out.failure.get_or_insert(f);
                return false;
            }
        }
        let own_out = std::mem::replace(&mut b.out, std::mem::take(&mut self.out.w.data_buf));
        let mut d = compress_batch(&mut self.c, b, self.zero_excluded, self.ps);
        self.out.w.data_buf = std::mem::take(&mut d.out);
        let ok = self.out.emit(&d, true).is_ok();
        self.spare = Some((d.spare, own_out));
        ok
    }
    fn buffers(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        self.spare.take()
    }
}

/// The writer's state: the output, the 2nd bitmap, the counts and the
/// progress bar.
struct Out<'a> {
    w: Emit<'a>,
    bitmap2: Vec<u8>,
    st: &'a mut PassStats,
    zero_desc: Option<[u8; PAGE_DESC_SIZE as usize]>,
    progress: &'a mut Progress,
    done_pages: u64,
    failure: Option<Failure>,
}

impl Out<'_> {
    /// Writes one compressed batch (the next in pfn order); keeps the
    /// failure, if any, for the pass to report.
    ///
    /// `placed`: the batch was compressed onto the end of the page-data
    /// buffer (`Inline`), its bodies are there already and `d.out` is empty.
    fn emit(&mut self, d: &Done, placed: bool) -> Result<(), ()> {
        if self.failure.is_some() {
            return Err(());
        }
        let st = &mut *self.st;
        st.times.zero_check += d.zero_check;
        st.times.compress += d.compress;
        let mut off = 0usize;
        for (pfn, item) in d.pfns.iter().zip(&d.items) {
            let r = match item {
                Stored::Absent => {
                    clear_bit(&mut self.bitmap2, *pfn);
                    st.absent += 1;
                    Ok(())
                }
                Stored::Zero => {
                    st.zero += 1;
                    match &self.zero_desc {
                        Some(z) => self.w.push_desc(z),
                        None => Ok(()),
                    }
                }
                Stored::Data { flags, len } => {
                    st.written += 1;
                    if *flags == 0 {
                        st.raw += 1;
                    }
                    let n = *len as usize;
                    if placed {
                        self.w.push_placed(n, *flags)
                    } else {
                        let body = d.out.get(off..off + n).unwrap_or(&[]);
                        off += n;
                        self.w.push_data(body, *flags)
                    }
                }
            };
            if let Err(e) = r {
                self.failure = Some(e);
                return Err(());
            }
        }
        self.done_pages += d.pfns.len() as u64;
        self.progress.update(self.done_pages);
        Ok(())
    }
}

/// Zero-checks and compresses the pages of `b`.
fn compress_batch(c: &mut Compressor, mut b: Batch<'_>, zero_excluded: bool, ps: usize) -> Done {
    let mut out = std::mem::take(&mut b.out);
    // First what each page is (absent, zero or data), then the data pages
    // compressed: two timed loops.
    let t0 = Instant::now();
    let mut items: Vec<Stored> = (0..b.at.len())
        .map(|i| match b.page(i, ps) {
            None => Stored::Absent,
            Some(page) if zero_excluded && is_zero(page) => Stored::Zero,
            Some(_) => Stored::Data { flags: 0, len: 0 },
        })
        .collect();
    let t1 = Instant::now();
    for (i, item) in items.iter_mut().enumerate() {
        if let (Stored::Data { flags, len }, Some(page)) = (item, b.page(i, ps)) {
            let before = out.len();
            *flags = c.store(page, &mut out);
            *len = (out.len() - before) as u32;
        }
    }
    let t2 = Instant::now();
    Done {
        seq: b.seq,
        pfns: b.pfns,
        items,
        out,
        spare: b.data,
        zero_check: t1 - t0,
        compress: t2 - t1,
    }
}

fn compress_worker(
    job_rx: &Mutex<Receiver<Batch<'_>>>,
    done_tx: &SyncSender<Done>,
    comp: Compression,
    zero_excluded: bool,
    ps: usize,
) {
    let mut c = Compressor::new(comp);
    loop {
        let job = match job_rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(b) = job else { return };
        if done_tx
            .send(compress_batch(&mut c, b, zero_excluded, ps))
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_check() {
        assert!(is_zero(&[0u8; 4096]));
        let mut p = vec![0u8; 4096];
        p[4095] = 1;
        assert!(!is_zero(&p));
        p[4095] = 0;
        p[3] = 0x80;
        assert!(!is_zero(&p));
        assert!(is_zero(&[0u8; 13]));
        assert!(!is_zero(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn file_sink_syncs_behind_and_keeps_every_byte() {
        let dir = std::env::temp_dir().join(format!("vmcore-filesink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        let mut sink = FileSink::new(std::fs::File::create(&path).unwrap());
        assert!(sink.syncer.is_some());
        let chunk = vec![0x5au8; 1 << 20];
        let n = SYNC_EVERY / (1 << 20) * 2 + 3;
        for i in 0..n {
            sink.write_at(i << 20, &chunk).unwrap();
        }
        // The first request (at SYNC_EVERY) always finds the channel empty;
        // later ones are dropped while a sync is still running (a busy
        // machine), so only that first reset is certain.
        assert!(sink.unsynced <= (n << 20) - SYNC_EVERY);
        assert_eq!(sink.output_bytes(), n << 20);
        let (file, synced) = sink.finish();
        synced.unwrap();
        assert_eq!(file.metadata().unwrap().len(), n << 20);
        drop(file);
        let back = std::fs::read(&path).unwrap();
        assert!(back.iter().all(|&b| b == 0x5a));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn set_bits_sets_what_set_bit_does() {
        for (s, e) in [
            (0, 0),
            (0, 1),
            (3, 5),
            (7, 9),
            (5, 64),
            (8, 16),
            (13, 75),
            (0, 90),
            (60, 200),
        ] {
            let mut a = vec![0u8; 10];
            let mut b = vec![0u8; 10];
            set_bits(&mut a, s, e);
            for p in s..e {
                set_bit(&mut b, p);
            }
            assert_eq!(a, b, "{s}..{e}");
        }
    }

    #[test]
    fn layout_matches_makedumpfiles_arithmetic() {
        // 2 GiB at 1 GiB, 4 KiB pages: max_mapnr 0xc0000, bitmaps of 24 blocks.
        let l = Layout::new(4096, 0xc0000, 1000, 10).unwrap();
        assert_eq!(l.sub_hdr_blocks, 1);
        assert_eq!(l.bitmap_len, 0xc0000 / 8);
        assert_eq!(l.bitmap1, 2 * 4096);
        assert_eq!(l.bitmap2, l.bitmap1 + l.bitmap_len);
        assert_eq!(l.descs, l.bitmap2 + l.bitmap_len);
        assert_eq!(l.data, l.descs + 240);
        // Notes spilling into a second block.
        assert_eq!(
            Layout::new(4096, 8, 4096 - 104 + 1, 0)
                .unwrap()
                .sub_hdr_blocks,
            2
        );
        assert!(Layout::new(4096, 8, 0, u64::MAX).is_none());
    }

    #[test]
    fn flat_records_are_big_endian_and_end_with_the_marker() {
        let mut f = FlatSink::new(Vec::new()).unwrap();
        f.write_at(0x1234, b"abc").unwrap();
        f.write_at(0, b"").unwrap();
        let v = f.finish().unwrap();
        assert_eq!(&v[..12], b"makedumpfile");
        assert_eq!(v.len(), 4096 + 16 + 3 + 16);
        assert_eq!(&v[4096..4104], &0x1234u64.to_be_bytes());
        assert_eq!(&v[4104..4112], &3u64.to_be_bytes());
        assert_eq!(&v[4112..4115], b"abc");
        assert_eq!(&v[4115..], &[0xff; 16]);
    }
}
