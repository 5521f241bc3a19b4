//! `vmcore save`: write a dump as makedumpfile's kdump-compressed file
//! (header version 6) or its flattened stream, filtering pages by dump level
//! and compressing each page.
//!
//! The pass: the page filter decides from page flags alone ([`filter`]);
//! then one sequential read of the candidate pages, zero pages found by
//! content, batches compressed on `jobs` threads, one writer emitting in pfn
//! order ([`writer`]). The output is written as `OUTPUT.part`, synced and
//! renamed when complete. When the device fills up, the pass restarts at
//! the next dump level of the list; when none fits, or the input cannot be
//! read, the output is kept as `OUTPUT.incomplete` with
//! `DUMP_DH_COMPRESSED_INCOMPLETE` set in its header.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crash_payload::note::{write_note, NoteIter, NT_PRSTATUS};
use crash_payload::vmcoreinfo::{VmcoreInfo, VMCOREINFO_NAME};
use crash_payload::PhysAddr;

use crate::format::Dump;

pub mod compress;
pub mod deflate;
pub mod filter;
pub mod input;
pub mod lzo;
pub mod progress;
pub mod writer;
pub mod zstd;

#[cfg(test)]
mod tests;

pub use compress::Compression;
use filter::{page_filter, DumpLevel, FilterError};
use writer::{Failure, FileSink, FlatSink, Meta, PassStats, Sink, UTS_LEN};

/// The dump's VMCOREINFO, parsed (for [`page_size`] and [`meta`]).
pub fn vmcoreinfo(dump: &dyn Dump) -> Option<VmcoreInfo<'_>> {
    dump.vmcoreinfo().and_then(|v| VmcoreInfo::parse(v).ok())
}

/// The dump's page size: VMCOREINFO `PAGESIZE`, else what the format says.
pub fn page_size(dump: &dyn Dump, vi: Option<&VmcoreInfo<'_>>) -> Result<u64, String> {
    let from_vmcoreinfo = vi.and_then(|v| v.page_size().and_then(Result::ok));
    let ps = from_vmcoreinfo
        .or(dump.info().page_size)
        .ok_or("neither VMCOREINFO PAGESIZE nor the format gives it")?;
    if !ps.is_power_of_two() || !(1024..=1 << 20).contains(&ps) {
        return Err(format!("{ps} is not a power of two from 1 KiB to 1 MiB"));
    }
    Ok(ps)
}

/// Reads `init_uts_ns.name` from the dump (VMCOREINFO gives its address;
/// it lies in the kernel image, so `kimage_voffset` translates it).
fn utsname_from_memory(dump: &dyn Dump, vi: &VmcoreInfo<'_>) -> Option<[String; 6]> {
    let sym = vi.symbol("init_uts_ns")?.ok()?;
    let off = vi
        .offset("uts_namespace.name")
        .and_then(Result::ok)
        .unwrap_or(0);
    let voff = vi.number("kimage_voffset")?.ok()? as u64;
    let pa = sym.checked_add(off)?.checked_sub(voff)?;
    let mut b = [0u8; 6 * UTS_LEN];
    dump.read_phys(PhysAddr(pa), &mut b).ok()?;
    let field = |i: usize| {
        let f = &b[i * UTS_LEN..(i + 1) * UTS_LEN];
        let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
        String::from_utf8_lossy(&f[..end]).into_owned()
    };
    let u = [field(0), field(1), field(2), field(3), field(4), field(5)];
    (u[0] == "Linux").then_some(u)
}

/// What the output's headers say, taken from the input.
pub fn meta(dump: &dyn Dump, vi: Option<&VmcoreInfo<'_>>) -> Meta {
    let release = vi
        .and_then(|v| v.osrelease().map(str::to_string))
        .or_else(|| dump.info().release.clone())
        .unwrap_or_default();
    let utsname = vi
        .and_then(|v| utsname_from_memory(dump, v))
        .unwrap_or_else(|| {
            [
                "Linux".into(),
                String::new(),
                release,
                String::new(),
                dump.info().arch.clone(),
                String::new(),
            ]
        });
    let timestamp = vi
        .and_then(|v| v.crashtime().and_then(Result::ok))
        .unwrap_or(0);
    // makedumpfile (arm64) records NUMBER(PHYS_OFFSET) as phys_base.
    let phys_base = vi
        .and_then(|v| v.number("PHYS_OFFSET").and_then(Result::ok))
        .map_or(0, |n| n as u64);
    let mut notes = Vec::new();
    let mut vmcoreinfo = None;
    let mut nr_cpus = 0u32;
    for seg in dump.note_segments() {
        let base = notes.len() as u64;
        for n in NoteIter::new(&seg.data) {
            let Ok(n) = n else { break };
            if n.name == b"CORE" && n.n_type == NT_PRSTATUS {
                nr_cpus += 1;
            }
            if vmcoreinfo.is_none() && n.name == VMCOREINFO_NAME {
                vmcoreinfo = Some((base + n.desc_offset() as u64, n.desc.len() as u64));
            }
        }
        notes.extend_from_slice(&seg.data);
    }
    if vmcoreinfo.is_none() {
        if let Some(v) = dump.vmcoreinfo() {
            // The format kept VMCOREINFO outside its notes: carry it as a note.
            let mut b = vec![0u8; crash_payload::note::note_size(VMCOREINFO_NAME.len(), v.len())];
            if let Ok(len) = write_note(&mut b, VMCOREINFO_NAME, 0, v) {
                b.truncate(len);
                if let Some(Ok(n)) = NoteIter::new(&b).next() {
                    let base = notes.len() as u64;
                    vmcoreinfo = Some((base + n.desc_offset() as u64, v.len() as u64));
                }
                notes.extend_from_slice(&b);
            }
        }
    }
    Meta {
        utsname,
        timestamp,
        nr_cpus,
        phys_base,
        notes,
        vmcoreinfo,
    }
}

/// Where the result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A kdump-compressed file.
    File(PathBuf),
    /// A flattened stream in a file.
    FlatFile(PathBuf),
    /// A flattened stream on standard output.
    FlatStdout,
}

/// How to save.
#[derive(Debug, Clone)]
pub struct SaveOptions {
    /// Dump levels to try in order (the ENOSPC ladder); at least one.
    pub levels: Vec<DumpLevel>,
    /// Page compression.
    pub compression: Compression,
    /// Compression threads.
    pub jobs: usize,
    /// Draw a progress bar on standard error.
    pub progress: bool,
    /// Treat the output file as a device of this many bytes (ENOSPC past
    /// it); `None` for the real device. Tests use it to drive the ladder.
    pub device_limit: Option<u64>,
}

/// Excluded pages per class.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Excluded {
    /// Zero pages (stored as the one shared zero block).
    pub zero: u64,
    /// Page cache without private data.
    pub cache: u64,
    /// Page cache with private data.
    pub cache_private: u64,
    /// User pages.
    pub user: u64,
    /// Free pages.
    pub free: u64,
    /// Other (hwpoison, offline, ...).
    pub other: u64,
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// True when the output is complete (renamed to OUTPUT).
    pub complete: bool,
    /// Why not, when not.
    pub reason: Option<String>,
    /// Where the output is ("-" for standard output).
    pub output: String,
    /// The dump level of the last attempt.
    pub dump_level: u8,
    /// Levels tried, in order.
    pub levels_tried: Vec<u8>,
    /// Compression.
    pub compression: Compression,
    /// Pages present in the input.
    pub pages_total: u64,
    /// Excluded pages per class.
    pub excluded: Excluded,
    /// Candidates the input does not hold (filtered out of a kdump input).
    pub pages_absent: u64,
    /// Pages stored with their own data.
    pub pages_written: u64,
    /// Of those, stored uncompressed.
    pub pages_raw: u64,
    /// Output bytes.
    pub output_bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Input covered (present pages × page size) per second, in MB (10^6).
    pub mb_per_s: f64,
    /// Peak resident set (VmHWM), KiB.
    pub peak_rss_kib: Option<u64>,
    /// Where the time of the last attempt went.
    pub phases: Phases,
}

/// Seconds per phase of the last attempt. Zero checks and compression run
/// on `jobs` threads at once: theirs is the sum over the threads, so the
/// phases may add up to more than the wall time.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Phases {
    /// The page filter (reading the struct pages).
    pub filter: f64,
    /// Reading the candidate pages.
    pub read: f64,
    /// Checking them for zeros.
    pub zero_check: f64,
    /// Compressing them.
    pub compress: f64,
    /// Writing the output.
    pub write: f64,
    /// Wall time before the first page: bitmaps, layout and the headers
    /// written ahead of the data.
    pub setup: f64,
    /// Wall time of the page pass (reading, zero checks, compression and
    /// writing, overlapped across threads), up to the final header.
    pub pass: f64,
    /// Wall time after the pass: syncing the file to its device, the
    /// rename and the directory sync.
    pub finish: f64,
}

/// Why a save could not start.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// No dump level given.
    #[error("no dump level given")]
    NoLevel,
    /// The dump's page size is unusable.
    #[error("page size: {0}")]
    PageSize(String),
    /// The page filter failed.
    #[error("page filter: {0}")]
    Filter(#[from] FilterError),
    /// The dump claims more memory than this tool will lay out.
    #[error("the dump reaches pfn {max_pfn:#x}; at most {MAX_PFNS:#x} pages (16 TiB of 4 KiB pages) are supported")]
    TooLarge {
        /// One past the highest pfn.
        max_pfn: u64,
    },
    /// The output could not be created.
    #[error("{path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Most pfns a dump may reach (each bitmap is then 512 MiB, allocated
/// lazily): bounds what a corrupt header can make the writer allocate.
pub const MAX_PFNS: u64 = 1 << 32;

/// Peak resident set of this process (VmHWM), KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// True for "no space left on device" (and "quota exceeded").
pub fn is_enospc(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(28)
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn create(path: &Path) -> Result<File, SaveError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|source| SaveError::Create {
            path: path.to_path_buf(),
            source,
        })
}

fn sync_dir(p: &Path) {
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn describe_failure(f: &Failure, input: &Path, level: DumpLevel) -> String {
    match f {
        Failure::Output { what, err } => {
            format!("writing {what} at dump level {}: {err}", level.bits())
        }
        Failure::Input { pfn, err } => format!("{}: pfn {pfn:#x}: {err}", input.display()),
    }
}

/// Buffer of the flattened stream: gathers its record headers and small
/// writes; page data comes in larger pieces (the writer batches it) and
/// goes past it. (1 MiB here had made the stream's peak memory a third
/// larger than makedumpfile's in the capture kernel.)
const FLAT_BUF: usize = 64 << 10;

/// The pipe size asked for when the flattened stream goes into a pipe: one
/// write of page data (256 KiB) then fits whole and the reader (`dd`, `ssh`)
/// takes it in one read; with the default 64 KiB each write filled the pipe
/// four times, and on one CPU each time was a switch to the reader and back.
const STDOUT_PIPE_SIZE: libc::c_int = writer::DATA_FLUSH as libc::c_int;

/// Asks for a `STDOUT_PIPE_SIZE` buffer if standard output is a pipe (on
/// anything else `F_SETPIPE_SZ` fails, and a refusal leaves the pipe as it
/// was: either way nothing changes but speed).
fn widen_stdout_pipe() {
    // SAFETY: fcntl(F_SETPIPE_SZ) takes an integer argument and touches no
    // memory of this process.
    unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_SETPIPE_SZ, STDOUT_PIPE_SIZE) };
}

/// Saves `dump` to `target`.
pub fn save(dump: &dyn Dump, target: &Target, opts: &SaveOptions) -> Result<Summary, SaveError> {
    let start = Instant::now();
    if opts.levels.is_empty() {
        return Err(SaveError::NoLevel);
    }
    let vi = vmcoreinfo(dump);
    let ps = page_size(dump, vi.as_ref()).map_err(SaveError::PageSize)?;
    let meta = meta(dump, vi.as_ref());
    let input = dump.source().path().to_path_buf();
    if *target == Target::FlatStdout {
        widen_stdout_pipe();
    }
    let mut tried = Vec::new();
    let mut last: Option<(PassStats, filter::FilterStats, Option<String>, u64)> = None;
    let mut filter_secs = 0.0;
    let mut finish_secs = 0.0;
    let mut output = match target {
        Target::File(p) | Target::FlatFile(p) => p.display().to_string(),
        Target::FlatStdout => "-".to_string(),
    };
    for (i, &level) in opts.levels.iter().enumerate() {
        tried.push(level.bits());
        let t = Instant::now();
        let filter = page_filter(dump, level)?;
        filter_secs = t.elapsed().as_secs_f64();
        if filter.max_pfn() > MAX_PFNS {
            return Err(SaveError::TooLarge {
                max_pfn: filter.max_pfn(),
            });
        }
        let has_next = i + 1 < opts.levels.len();
        let mut stats = PassStats::default();
        // When the pass ended: what follows (syncing, renaming) is `finish`.
        let mut pass_end = None;
        let mut run = |sink: &mut dyn Sink| {
            let pass = writer::Pass {
                dump,
                meta: &meta,
                filter: &filter,
                level,
                comp: opts.compression,
                jobs: opts.jobs,
                page_size: ps,
                progress: opts.progress,
            };
            let r = writer::write_dump(&pass, sink, &mut stats).map(|()| stats.clone());
            pass_end = Some(Instant::now());
            r
        };
        let (result, bytes) = match target {
            Target::File(p) => {
                let part = with_suffix(p, ".part");
                let mut sink = FileSink::with_limit(create(&part)?, opts.device_limit);
                let r = run(&mut sink);
                let bytes = sink.output_bytes();
                let (file, synced) = sink.finish();
                let r = r.and_then(|st| {
                    synced
                        .and_then(|()| file.sync_all())
                        .map(|()| st)
                        .map_err(|err| Failure::Output {
                            what: "(fsync)",
                            err,
                        })
                });
                (finish_file(r, file, &part, p, has_next, &mut output), bytes)
            }
            Target::FlatFile(p) => {
                let part = with_suffix(p, ".part");
                let file = create(&part)?;
                let (r, bytes, file) = match FlatSink::new(BufWriter::with_capacity(FLAT_BUF, file))
                {
                    Err(err) => (
                        Err(Failure::Output {
                            what: "the flattened header",
                            err,
                        }),
                        0,
                        None,
                    ),
                    Ok(mut sink) => {
                        let r = run(&mut sink);
                        let bytes = sink.output_bytes() + 16;
                        let fin = sink.finish().map_err(|err| Failure::Output {
                            what: "the flattened stream's end",
                            err,
                        });
                        let file = match fin {
                            Ok(w) => w.into_inner().ok(),
                            Err(_) => None,
                        };
                        let r = match (r, file.as_ref()) {
                            (Ok(st), Some(f)) => {
                                f.sync_all().map(|()| st).map_err(|err| Failure::Output {
                                    what: "(fsync)",
                                    err,
                                })
                            }
                            (Ok(_), None) => Err(Failure::Output {
                                what: "the flattened stream's end",
                                err: io::Error::other("flush failed"),
                            }),
                            (Err(e), _) => Err(e),
                        };
                        (r, bytes, file)
                    }
                };
                let file = match file {
                    Some(f) => f,
                    None => match File::open(&part) {
                        Ok(f) => f,
                        Err(source) => return Err(SaveError::Create { path: part, source }),
                    },
                };
                (finish_file(r, file, &part, p, has_next, &mut output), bytes)
            }
            Target::FlatStdout => {
                // Written through a duplicate of descriptor 1, not through
                // `Stdout`: its line buffering would cut the binary stream's
                // writes at newline bytes.
                use std::os::fd::AsFd;
                let out = match io::stdout().as_fd().try_clone_to_owned() {
                    Ok(fd) => File::from(fd),
                    Err(err) => {
                        return Err(SaveError::Create {
                            path: PathBuf::from("(standard output)"),
                            source: err,
                        })
                    }
                };
                let w = BufWriter::with_capacity(FLAT_BUF, out);
                match FlatSink::new(w) {
                    Err(err) => (
                        Attempt::Failed(Failure::Output {
                            what: "the flattened header",
                            err,
                        }),
                        0,
                    ),
                    Ok(mut sink) => {
                        let r = run(&mut sink);
                        let bytes = sink.output_bytes() + 16;
                        let fin = sink.finish();
                        match (r, fin) {
                            (Ok(st), Ok(_)) => (Attempt::Done(st), bytes),
                            (Ok(_), Err(err)) => (
                                Attempt::Failed(Failure::Output {
                                    what: "the flattened stream's end",
                                    err,
                                }),
                                bytes,
                            ),
                            (Err(f), _) => (Attempt::Failed(f), bytes),
                        }
                    }
                }
            }
        };
        finish_secs = pass_end.map_or(0.0, |t| t.elapsed().as_secs_f64());
        match result {
            Attempt::Done(st) => {
                last = Some((st, *filter.stats(), None, bytes));
                break;
            }
            Attempt::Retry(f) => {
                if opts.progress {
                    eprintln!();
                }
                eprintln!(
                    "vmcore save: {}; trying dump level {}",
                    describe_failure(&f, &input, level),
                    opts.levels.get(i + 1).map_or(0, |l| l.bits())
                );
            }
            Attempt::Failed(f) => {
                if opts.progress {
                    eprintln!();
                }
                last = Some((
                    stats.clone(),
                    *filter.stats(),
                    Some(describe_failure(&f, &input, level)),
                    bytes,
                ));
                break;
            }
        }
    }
    let (st, fs, reason, bytes) = last.unwrap_or_default();
    let secs = start.elapsed().as_secs_f64();
    Ok(Summary {
        complete: reason.is_none(),
        reason,
        output,
        dump_level: tried.last().copied().unwrap_or(0),
        levels_tried: tried,
        compression: opts.compression,
        pages_total: st.present,
        excluded: Excluded {
            zero: st.zero,
            cache: fs.cache,
            cache_private: fs.cache_private,
            user: fs.user,
            free: fs.free,
            other: fs.other,
        },
        pages_absent: st.absent,
        pages_written: st.written,
        pages_raw: st.raw,
        output_bytes: bytes,
        seconds: secs,
        mb_per_s: if secs > 0.0 {
            (st.present.saturating_mul(ps)) as f64 / 1e6 / secs
        } else {
            0.0
        },
        peak_rss_kib: peak_rss_kib(),
        phases: Phases {
            filter: filter_secs,
            read: st.times.read.as_secs_f64(),
            zero_check: st.times.zero_check.as_secs_f64(),
            compress: st.times.compress.as_secs_f64(),
            write: st.times.write.as_secs_f64(),
            setup: st.times.setup.as_secs_f64(),
            pass: st.times.pass.as_secs_f64(),
            finish: finish_secs,
        },
    })
}

enum Attempt {
    Done(PassStats),
    Retry(Failure),
    Failed(Failure),
}

/// After a pass into `part`: rename to `dest` when complete; remove it to
/// retry on ENOSPC when another level remains; else keep it as
/// `dest.incomplete`.
fn finish_file(
    r: Result<PassStats, Failure>,
    file: File,
    part: &Path,
    dest: &Path,
    has_next: bool,
    output: &mut String,
) -> Attempt {
    match r {
        Ok(st) => {
            drop(file);
            match std::fs::rename(part, dest) {
                Ok(()) => {
                    sync_dir(dest);
                    *output = dest.display().to_string();
                    Attempt::Done(st)
                }
                Err(err) => Attempt::Failed(Failure::Output {
                    what: "(rename)",
                    err,
                }),
            }
        }
        Err(f) => {
            let enospc = matches!(&f, Failure::Output { err, .. } if is_enospc(err));
            if enospc && has_next {
                drop(file);
                let _ = std::fs::remove_file(part);
                return Attempt::Retry(f);
            }
            let _ = file.sync_all();
            drop(file);
            let inc = with_suffix(dest, ".incomplete");
            if std::fs::rename(part, &inc).is_ok() {
                sync_dir(&inc);
                *output = inc.display().to_string();
            } else {
                *output = part.display().to_string();
            }
            Attempt::Failed(f)
        }
    }
}

/// Writes `s` (the summary) as text.
pub fn print_summary(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    writeln!(
        w,
        "{}: {} (dump level {}{}, {})",
        s.output,
        if s.complete { "complete" } else { "INCOMPLETE" },
        s.dump_level,
        if s.levels_tried.len() > 1 {
            format!(
                " after {}",
                s.levels_tried[..s.levels_tried.len() - 1]
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        },
        s.compression.name()
    )?;
    if let Some(r) = &s.reason {
        writeln!(w, "  reason: {r}")?;
    }
    let e = &s.excluded;
    writeln!(
        w,
        "  pages: {} total; excluded zero {}, cache {}, cache-private {}, user {}, free {}, other {}; absent from input {}; written {} ({} raw)",
        s.pages_total, e.zero, e.cache, e.cache_private, e.user, e.free, e.other, s.pages_absent, s.pages_written, s.pages_raw
    )?;
    writeln!(
        w,
        "  {} bytes in {:.2} s, {:.1} MB/s of input; peak RSS {}",
        s.output_bytes,
        s.seconds,
        s.mb_per_s,
        s.peak_rss_kib
            .map_or("unknown".to_string(), |k| format!("{k} KiB"))
    )?;
    let p = &s.phases;
    writeln!(
        w,
        "  time: filter {:.2} s, read {:.2} s, zero check {:.2} s, compress {:.2} s (thread sums), write {:.2} s\n  \
         wall: setup {:.2} s, page pass {:.2} s, finish {:.2} s",
        p.filter, p.read, p.zero_check, p.compress, p.write, p.setup, p.pass, p.finish
    )
}
