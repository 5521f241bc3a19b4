//! Gathers the evidence from an opened dump: its notes, the CPU-map note and
//! each CPU's crash-notes buffer in memory, data symbols, and facts from the
//! kernel log; then hands them to [`crate::cpus::decide`].

use std::path::{Path, PathBuf};

use crash_payload::cpumap::{CpuEntry, CpuMap, CPUMAP_NAME, NT_KEXECRS_CPUMAP};
use crash_payload::crash_note::{self, CRASH_NOTE_BUF_SIZE};
use crash_payload::note::{NoteIter, NT_PRSTATUS};
use crash_payload::prstatus::ElfPrstatus;
use crash_payload::vmcoreinfo::{VmcoreInfo, VMCOREINFO_NAME};
use crash_payload::{PhysAddr, VirtAddr};

use crate::arm64::Arm64;
use crate::cpus::{self, BufferState, Evidence, FoundNote, KernelLayout, SymbolEvidence, Verdict};
use crate::error::Error;
use crate::format::{self, Dump, NT_PRFPREG};
use crate::kallsyms::Kallsyms;
use crate::mem::PhysMem;
use crate::report::Symbolize;
use crate::symbols::{LinkSymbols, Symbols};
use std::cell::OnceCell;

/// Most bytes of memory searched for notes' buffers (top-down).
pub const BUFFER_SEARCH_LIMIT: u64 = 256 << 20;

/// Where data symbols come from, besides the dump itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A System.map of the same build.
    pub system_map: Option<PathBuf>,
    /// A vmlinux of the same build.
    pub vmlinux: Option<PathBuf>,
    /// Keep from a System.map only the symbols CPU verification needs
    /// (`verify`); `cpus` keeps every symbol to name addresses.
    pub data_symbols_only: bool,
}

/// Data symbols CPU verification reads, and the image bounds.
const VERIFY_SYMBOLS: &[&str] = &[
    "crash_notes",
    "__per_cpu_offset",
    "__cpu_present_mask",
    "__cpu_possible_mask",
    "__cpu_online_mask",
    "_stext",
    "_etext",
    "_sinittext",
    "_einittext",
    "_end",
];

/// What the dump's notes hold, sorted by kind.
#[derive(Debug, Clone, Default)]
pub struct Notes {
    /// CORE/NT_PRSTATUS notes, in file order.
    pub core: Vec<FoundNote>,
    /// NT_PRFPREG notes seen (QEMU writes them; the kernel never does).
    pub prfpreg: usize,
    /// The loader's CPU-map, or why it is unusable.
    pub cpumap: Option<Result<Vec<CpuEntry>, String>>,
    /// The VMCOREINFO note's descriptor.
    pub vmcoreinfo: Option<Vec<u8>>,
    /// Why the note segments could not be read to the end, if so.
    pub error: Option<String>,
}

/// Reads every note segment of `dump`.
pub fn collect_notes(dump: &dyn Dump) -> Notes {
    let mut out = Notes::default();
    for seg in dump.note_segments() {
        for n in NoteIter::new(&seg.data) {
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    out.error = Some(format!(
                        "note segment at file offset {:#x}: {e}",
                        seg.file_offset
                    ));
                    break;
                }
            };
            let file_offset = seg.file_offset + n.offset as u64;
            match (n.name, n.n_type) {
                (b"CORE", NT_PRSTATUS) => out.core.push(FoundNote {
                    index: out.core.len(),
                    file_offset,
                    prstatus: ElfPrstatus::parse(n.desc).map_err(|e| e.to_string()),
                }),
                (b"CORE", NT_PRFPREG) => out.prfpreg += 1,
                (name, 0) if name == VMCOREINFO_NAME => out.vmcoreinfo = Some(n.desc.to_vec()),
                (name, NT_KEXECRS_CPUMAP) if name == CPUMAP_NAME => {
                    out.cpumap = Some(
                        CpuMap::parse(n.desc)
                            .map(|m| m.entries().collect())
                            .map_err(|e| format!("file offset {file_offset:#x}: {e}")),
                    )
                }
                _ => {}
            }
        }
    }
    out
}

/// An opened dump and what was learned from it.
pub struct Analysis {
    /// The file.
    pub path: PathBuf,
    /// The dump.
    pub dump: Box<dyn Dump>,
    /// Its notes.
    pub notes: Notes,
    /// VMCOREINFO text (from a note or the format's own copy).
    pub vmcoreinfo: Option<Vec<u8>>,
    /// Translation context, or why there is none.
    pub arm64: Result<Arm64, String>,
    /// Where symbol files were given, their description.
    pub symbol_files: Option<String>,
    /// Only CPU verification will be asked of this analysis (`verify`).
    data_symbols_only: bool,
    symbols: OnceCell<Result<Symbols, String>>,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis").field("path", &self.path).finish()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl Analysis {
    /// Opens and indexes `path`. Reads headers and notes only (and, when
    /// symbol files are given, the dump's kallsyms to check they match).
    pub fn open(path: &Path, opts: &Options) -> Result<Analysis, Error> {
        let dump = format::open(path)?;
        Analysis::from_dump(path, dump, opts)
    }

    /// Like [`Analysis::open`], for a dump already opened.
    pub fn from_dump(path: &Path, dump: Box<dyn Dump>, opts: &Options) -> Result<Analysis, Error> {
        let notes = collect_notes(dump.as_ref());
        let vmcoreinfo = dump
            .vmcoreinfo()
            .map(<[u8]>::to_vec)
            .or_else(|| notes.vmcoreinfo.clone());
        let arm64 = match &vmcoreinfo {
            None => Err("the dump carries no VMCOREINFO".to_string()),
            Some(v) => VmcoreInfo::parse(v)
                .map_err(|e| format!("VMCOREINFO: {e}"))
                .and_then(|vi| Arm64::from_vmcoreinfo(&vi).map_err(|e| e.to_string())),
        };
        let mut links = Vec::new();
        if let Some(p) = &opts.system_map {
            let bytes = read_file(p)?;
            // For verify: the data symbols it reads, plus every VMCOREINFO
            // SYMBOL() name, which the build check compares.
            let vi_names: Vec<String> = vmcoreinfo
                .as_deref()
                .and_then(|v| VmcoreInfo::parse(v).ok())
                .map(|vi| {
                    vi.entries()
                        .filter_map(|(k, _, _)| {
                            Some(k.strip_prefix("SYMBOL(")?.strip_suffix(')')?.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            let keep = |name: &[u8]| {
                !opts.data_symbols_only
                    || VERIFY_SYMBOLS.iter().any(|n| n.as_bytes() == name)
                    || vi_names.iter().any(|n| n.as_bytes() == name)
            };
            let l = LinkSymbols::parse_system_map_keeping(&bytes, &p.display().to_string(), &keep)
                .map_err(|e| {
                Error::Unusable {
                    path: p.clone(),
                    msg: e.to_string(),
                }
            })?;
            links.push((p.clone(), l));
        }
        if let Some(p) = &opts.vmlinux {
            // Mapped, not read: a -dbg vmlinux is hundreds of MiB and only
            // its section headers, .symtab and .strtab are needed.
            let src = crate::source::Source::open(p)?;
            let bytes = src
                .bytes(0, src.len(), "the vmlinux file")
                .map_err(|e| Error::parse(p, e))?;
            let l = LinkSymbols::parse_vmlinux(bytes, &p.display().to_string()).map_err(|e| {
                Error::Unusable {
                    path: p.clone(),
                    msg: e.to_string(),
                }
            })?;
            links.push((p.clone(), l));
        }
        let mut an = Analysis {
            path: path.to_path_buf(),
            dump,
            notes,
            vmcoreinfo,
            arm64,
            symbol_files: None,
            data_symbols_only: opts.data_symbols_only,
            symbols: OnceCell::new(),
        };
        if !links.is_empty() {
            // With a System.map or vmlinux the dump's kallsyms adds nothing
            // (the file has every symbol), so it is not decoded: the file is
            // checked against VMCOREINFO's SYMBOL() addresses and _stext.
            let mut syms = an.vmcoreinfo_symbols().map_err(|msg| Error::Unusable {
                path: path.to_path_buf(),
                msg: format!("cannot use symbol files: {msg}"),
            })?;
            let mut names = Vec::new();
            for (p, l) in links {
                syms.add_link_symbols(l).map_err(|e| Error::Unusable {
                    path: p.clone(),
                    msg: e.to_string(),
                })?;
                names.push(p.display().to_string());
            }
            an.symbol_files = Some(names.join(", "));
            let _ = an.symbols.set(Ok(syms));
        }
        // Only when symbol files made us load symbols already: `verify` must not
        // decode kallsyms it does not need.
        let bounds = an.symbols.get().and_then(|r| r.as_ref().ok()).map(Symbols::kernel_bounds);
        if let (Ok(a), Some(b)) = (&mut an.arm64, bounds) {
            a.set_kernel_bounds(b);
        }
        Ok(an)
    }

    fn vmcoreinfo_symbols(&self) -> Result<Symbols, String> {
        let a = self.arm64.as_ref().map_err(Clone::clone)?;
        let vi = self.vmcoreinfo().ok_or("the dump carries no VMCOREINFO")?;
        Ok(Symbols::from_dump(a, &vi, None))
    }

    fn dump_symbols(&self) -> Result<Symbols, String> {
        let a = self.arm64.as_ref().map_err(Clone::clone)?;
        let vi = self.vmcoreinfo().ok_or("the dump carries no VMCOREINFO")?;
        let k = Kallsyms::load(self.dump.as_ref(), a, &vi).map_err(|e| format!("kallsyms: {e}"))?;
        Ok(Symbols::from_dump(a, &vi, Some(k)))
    }

    /// The VMCOREINFO view.
    pub fn vmcoreinfo(&self) -> Option<VmcoreInfo<'_>> {
        self.vmcoreinfo.as_deref().and_then(|v| VmcoreInfo::parse(v).ok())
    }

    /// Every symbol source: the dump's kallsyms and VMCOREINFO, plus symbol
    /// files when given (loaded on first use).
    pub fn symbols(&self) -> Result<&Symbols, &str> {
        self.symbols
            .get_or_init(|| self.dump_symbols())
            .as_ref()
            .map_err(String::as_str)
    }

    fn read_buffer(&self, pa: PhysAddr, size: u64) -> BufferState {
        let len = (size as usize).clamp(CRASH_NOTE_BUF_SIZE, 4096);
        let mut buf = vec![0u8; len];
        match self.dump.read_phys(pa, &mut buf) {
            Ok(()) => match crash_note::parse(&buf) {
                Ok(n) => BufferState::Parsed(n),
                Err(e) => BufferState::Corrupt(e),
            },
            Err(e) => BufferState::Unreadable(e.to_string()),
        }
    }

    /// The address of a data symbol, from symbol files or the dump's kallsyms.
    fn data_symbol(&self, name: &str) -> Option<VirtAddr> {
        self.symbols().ok().and_then(|s| s.address_of(name))
    }

    fn symbol_evidence(&self) -> Option<SymbolEvidence> {
        let a = self.arm64.as_ref().ok()?;
        let mem: &dyn PhysMem = self.dump.as_ref();
        if self.data_symbols_only && self.symbols.get().is_none() {
            // `verify` with no symbol files: ask kallsyms for the two data
            // symbols without building the table it will never use. Without
            // CONFIG_KALLSYMS_ALL (Debian) they are not there. Other commands
            // build the table once here and name addresses with it later.
            let vi = self.vmcoreinfo()?;
            let found = Kallsyms::find(mem, a, &vi, &["crash_notes", "__per_cpu_offset"]).ok()?;
            if found.iter().any(Option::is_none) {
                return None;
            }
        }
        let crash_notes = self.data_symbol("crash_notes")?;
        let per_cpu_offset = self.data_symbol("__per_cpu_offset")?;
        let origin = match &self.symbol_files {
            Some(s) => s.clone(),
            None => "kallsyms (CONFIG_KALLSYMS_ALL)".to_string(),
        };
        let mask = |name: &str| -> Option<Vec<u32>> {
            let va = self.data_symbol(name)?;
            let w = a.read_u64(mem, va).ok()?;
            Some((0..64).filter(|b| w & (1 << b) != 0).collect())
        };
        let present = mask("__cpu_present_mask").or_else(|| mask("__cpu_possible_mask"))?;
        let online_at_dump = mask("__cpu_online_mask");
        let base = a.read_u64(mem, crash_notes).ok()?;
        let mut buffers = Vec::new();
        for &cpu in &present {
            let off_va = per_cpu_offset.checked_add(8 * u64::from(cpu))?;
            let state = match a.read_u64(mem, off_va) {
                Err(e) => BufferState::Unreadable(format!("__per_cpu_offset[{cpu}]: {e}")),
                Ok(off) => {
                    let va = VirtAddr(base.wrapping_add(off));
                    match a.virt_to_phys(mem, va) {
                        Ok(pa) => self.read_buffer(pa, CRASH_NOTE_BUF_SIZE as u64),
                        Err(e) => BufferState::Unreadable(e.to_string()),
                    }
                }
            };
            buffers.push((cpu, state));
        }
        Some(SymbolEvidence {
            origin,
            present,
            online_at_dump,
            buffers,
        })
    }

    /// The kernel log lines, as `vmcore dmesg` prints them.
    pub fn log_lines(&self) -> Result<Vec<String>, String> {
        let a = self.arm64.as_ref().map_err(Clone::clone)?;
        let vi = self.vmcoreinfo().ok_or("the dump carries no VMCOREINFO")?;
        let records = crate::printk::read_log(self.dump.as_ref(), a, &vi).map_err(|e| e.to_string())?;
        Ok(crate::printk::format_vmcore_dmesg(&records)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Layout for plausibility checks.
    pub fn layout(&self) -> Option<KernelLayout> {
        let a = self.arm64.as_ref().ok()?;
        let mut l = KernelLayout::for_va_bits(a.va_bits());
        l.text = Some(a.stext().get()..a.kernel_image().end.max(a.stext().get() + (64 << 20)));
        l.modules = Some(a.module_window());
        Some(l)
    }

    /// Gathers the evidence for the CPU verdict.
    pub fn evidence(&self) -> Evidence {
        let mut ev = Evidence {
            notes: self.notes.core.clone(),
            qemu: self.notes.prfpreg > 0,
            layout: self.layout(),
            ..Default::default()
        };
        match &self.notes.cpumap {
            Some(Ok(entries)) => {
                ev.cpumap = Some(
                    entries
                        .iter()
                        .map(|e| (*e, self.read_buffer(e.notes_paddr, e.notes_size)))
                        .collect(),
                )
            }
            Some(Err(e)) => ev.cpumap_error = Some(e.clone()),
            None => {}
        }
        if ev.cpumap.is_none() && !ev.qemu {
            ev.symbols = self.symbol_evidence();
        }
        // The log is read only when nothing exact numbers the CPUs: with a
        // CPU-map note or data symbols it would add nothing but cost.
        if !ev.qemu && ev.cpumap.is_none() && ev.symbols.is_none() {
            if let Ok(lines) = self.log_lines() {
                ev.log = Some(cpus::log_facts(lines.iter().map(String::as_str)));
            }
        }
        ev
    }

    /// Finds where each note's original crash-notes buffer sits in the
    /// dump's memory, by content: the kernel's CORE note header and the
    /// note's registers, at 512-byte alignment (the buffers' allocation
    /// alignment). Per-CPU first chunks are allocated top-down, so the search
    /// runs from the top of memory down and stops once every note is found
    /// or [`BUFFER_SEARCH_LIMIT`] bytes were searched.
    pub fn find_note_buffers(&self, notes: &[FoundNote]) -> Vec<Option<u64>> {
        let mut found: Vec<Option<u64>> = vec![None; notes.len()];
        let wanted: Vec<Option<[u8; CRASH_NOTE_BUF_SIZE]>> = notes
            .iter()
            .map(|n| n.prstatus.as_ref().ok().map(crash_note::build))
            .collect();
        let head = &crash_note::build(&ElfPrstatus::default())[..20];
        let mut ranges: Vec<_> = self.dump.ranges().to_vec();
        ranges.sort_by_key(|r| std::cmp::Reverse(r.start));
        let mut searched = 0u64;
        let mut page = vec![0u8; 4096];
        'outer: for r in ranges {
            let start = r.start.get();
            // Pages [p - 4096, p), from the top of the range down.
            let mut p = start.saturating_add(r.size) & !0xfff;
            while p >= start.saturating_add(0x1000) {
                let pa = p - 0x1000;
                p = pa;
                searched += 0x1000;
                if searched > BUFFER_SEARCH_LIMIT {
                    break 'outer;
                }
                if self.dump.read_phys(PhysAddr(pa), &mut page).is_err() {
                    continue;
                }
                for off in (0..4096 - CRASH_NOTE_BUF_SIZE + 1).step_by(512) {
                    if &page[off..off + 20] != head {
                        continue;
                    }
                    let cand = &page[off..off + CRASH_NOTE_BUF_SIZE];
                    for (i, w) in wanted.iter().enumerate() {
                        if found[i].is_none() && w.as_ref().is_some_and(|w| &w[..] == cand) {
                            found[i] = Some(pa + off as u64);
                        }
                    }
                }
                if found.iter().zip(&wanted).all(|(f, w)| f.is_some() || w.is_none()) {
                    break 'outer;
                }
            }
        }
        found
    }

    /// The CPU verdict.
    pub fn verdict(&self) -> Verdict {
        let mut ev = self.evidence();
        let v = cpus::decide(&ev);
        let inference_only = ev.cpumap.is_none() && ev.symbols.is_none() && !ev.qemu;
        if !inference_only || v.unnumbered.is_empty() {
            return v;
        }
        // The log left notes unnumbered: look for their buffers in memory
        // (costly, so only now) and decide again.
        ev.note_buffers = self.find_note_buffers(&ev.notes);
        cpus::decide(&ev)
    }

    /// A symbolizer over kallsyms (and symbol files).
    pub fn symbolizer(&self) -> AnalysisSymbols<'_> {
        AnalysisSymbols { an: self }
    }

    /// Fails when the dump is unusable for CPU analysis (no notes at all,
    /// broken note segments).
    pub fn check_usable(&self) -> Result<(), Error> {
        if let Some(e) = &self.notes.error {
            return Err(Error::Unusable {
                path: self.path.clone(),
                msg: e.clone(),
            });
        }
        Ok(())
    }
}

/// Symbolizes through an [`Analysis`].
#[derive(Debug)]
pub struct AnalysisSymbols<'a> {
    an: &'a Analysis,
}

impl Symbolize for AnalysisSymbols<'_> {
    fn symbolize(&self, addr: u64) -> Option<String> {
        let s = self.an.symbols().ok()?;
        s.lookup(VirtAddr(addr)).map(|(l, _)| l.to_string())
    }

    fn strip_pac(&self, addr: u64) -> u64 {
        match &self.an.arm64 {
            Ok(a) => a.strip_pac(addr),
            Err(_) => addr,
        }
    }
}
