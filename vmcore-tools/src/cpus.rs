//! Which register note is which CPU, and whether every CPU was captured.
//!
//! `/proc/vmcore` merges every CPU's crash note into one PT_NOTE and drops
//! CPUs that saved nothing, so the order of notes cannot number CPUs
//! (`shared/DESIGN.md` §4). This module never uses note order. It decides,
//! in this order of preference:
//!
//! 1. the loader's CPU-map note (exact: each CPU's crash-notes buffer is
//!    read from the dump's memory);
//! 2. data symbols (`crash_notes` + `__per_cpu_offset[cpu]`, and
//!    `__cpu_online_mask` at dump time) — exact;
//! 3. QEMU's own dumps number vCPUs in `pr_pid` (index + 1) — exact;
//! 4. inference from the dump's own kernel log, always labelled `inferred`:
//!    the CPU count ("smp: Brought up … N CPUs"), the panicking CPU and its
//!    PID (the last "CPU: n PID: p" line, matched against `pr_pid`), the CPUs
//!    the kernel says failed to stop, and elimination when exactly one CPU
//!    and one note remain;
//! 5. otherwise: the notes are listed unnumbered, with what would settle it.
//!
//! Gathering the evidence (reading memory, symbols, the log) is done by the
//! caller; [`decide`] is pure logic over an [`Evidence`] value.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crash_payload::cpumap::CpuEntry;
use crash_payload::crash_note::{CrashNote, CrashNoteError};
use crash_payload::prstatus::{ElfPrstatus, Pstate, Regs};

/// A CORE/NT_PRSTATUS note found in the dump's note segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundNote {
    /// Position among the CORE/NT_PRSTATUS notes (0-based). Reported, never
    /// used to number CPUs.
    pub index: usize,
    /// File offset of the note header.
    pub file_offset: u64,
    /// The registers, or why the descriptor is unusable.
    pub prstatus: Result<ElfPrstatus, String>,
}

/// What a CPU's crash-notes buffer in the dump's memory holds.
// A handful per dump: boxing the note would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BufferState {
    /// Read and parsed.
    Parsed(CrashNote),
    /// Read, but not a valid note.
    Corrupt(CrashNoteError),
    /// Not readable from the dump (address not dumped, translation failed).
    Unreadable(String),
}

/// Evidence from data symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolEvidence {
    /// Where the symbols came from ("System.map FILE", "vmlinux FILE", "kallsyms").
    pub origin: String,
    /// Present CPUs (`__cpu_present_mask`).
    pub present: Vec<u32>,
    /// CPUs online at dump time (`__cpu_online_mask`): the panicking CPU plus
    /// every CPU that failed to stop.
    pub online_at_dump: Option<Vec<u32>>,
    /// Each present CPU's buffer.
    pub buffers: Vec<(u32, BufferState)>,
}

/// Facts read from the dump's own kernel log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFacts {
    /// "smp: Brought up 1 node, N CPUs".
    pub cpus_brought_up: Option<u32>,
    /// The last "CPU: n PID: p" line: (cpu, pid).
    pub panic_cpu_pid: Option<(u32, i32)>,
    /// "SMP: failed to stop secondary CPUs LIST".
    pub failed_to_stop: Option<Vec<u32>>,
    /// CPUs the log says were taken offline and not brought back
    /// ("CPUn: shutdown" without a later "CPUn: Booted").
    pub offlined: Vec<u32>,
    /// Per-CPU unit size ("pcpu-alloc: … u126976 …").
    pub pcpu_unit_size: Option<u64>,
    /// CPU of each per-CPU unit, in unit order ("pcpu-alloc: [0] 0 [0] 1").
    pub pcpu_units: Vec<u32>,
}

/// Kernel virtual layout used to judge whether registers are plausible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLayout {
    /// Kernel text (`_stext`.. `_etext`), if known.
    pub text: Option<Range<u64>>,
    /// Module area, if known.
    pub modules: Option<Range<u64>>,
    /// Lowest kernel virtual address (the start of the TTBR1 half).
    pub kernel_space_start: u64,
    /// Highest user virtual address + 1.
    pub user_space_end: u64,
}

impl KernelLayout {
    /// The layout for a `va_bits`-bit kernel with no finer knowledge.
    pub fn for_va_bits(va_bits: u32) -> KernelLayout {
        let va_bits = va_bits.clamp(36, 52);
        KernelLayout {
            text: None,
            modules: None,
            kernel_space_start: !0u64 << va_bits,
            user_space_end: 1u64 << va_bits,
        }
    }
}

/// All the evidence [`decide`] works from.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// CORE/NT_PRSTATUS notes, in file order.
    pub notes: Vec<FoundNote>,
    /// The notes are QEMU's (`dump-guest-memory`): `pr_pid` is vCPU index + 1.
    pub qemu: bool,
    /// The loader's CPU-map, each entry with its buffer as read from memory.
    pub cpumap: Option<Vec<(CpuEntry, BufferState)>>,
    /// Why a CPU-map note was present but unusable.
    pub cpumap_error: Option<String>,
    /// Evidence from data symbols.
    pub symbols: Option<SymbolEvidence>,
    /// Facts from the kernel log.
    pub log: Option<LogFacts>,
    /// Layout for plausibility checks.
    pub layout: Option<KernelLayout>,
    /// Where each note's original crash-notes buffer was found in the
    /// dump's memory (by content), indexed like `notes`.
    pub note_buffers: Vec<Option<u64>>,
}

/// Captured or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A valid note with plausible registers.
    Captured,
    /// No usable note.
    Missing,
}

/// How a CPU's number (and its being expected) was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NumberSource {
    /// The loader's CPU-map note.
    CpuMapNote,
    /// `crash_notes` + `__per_cpu_offset` from data symbols.
    DataSymbols,
    /// QEMU's `pr_pid` = vCPU index + 1.
    QemuPrPid,
    /// Inferred: the panicking CPU's PID in the log matches this note's `pr_pid`.
    InferredPanicPid,
    /// Inferred: the only CPU and the only note left.
    InferredElimination,
    /// Inferred: the log names this CPU among those that failed to stop.
    InferredLogFailedToStop,
    /// Inferred: the log's CPU count says this CPU exists; nothing numbers a note for it.
    InferredLogCount,
    /// Inferred: the note's buffer sits a whole number of per-CPU units
    /// from a numbered note's buffer, and the log's unit map names the CPU.
    InferredBufferSpacing,
}

impl NumberSource {
    /// True for the inferred sources.
    pub fn is_inferred(self) -> bool {
        !matches!(
            self,
            NumberSource::CpuMapNote | NumberSource::DataSymbols | NumberSource::QemuPrPid
        )
    }
}

/// One CPU's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuRow {
    /// Logical CPU number.
    pub cpu: u32,
    /// Captured or missing.
    pub status: Status,
    /// Why missing (or a remark on a captured CPU).
    pub reason: Option<String>,
    /// How the number was established.
    pub source: NumberSource,
    /// The note's registers, when there is a note.
    pub prstatus: Option<ElfPrstatus>,
    /// The note's index among the dump's CORE notes, when it came from there.
    pub note_index: Option<usize>,
}

/// A note whose CPU could not be established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnnumberedNote {
    /// The note.
    pub note: FoundNote,
    /// Whether its registers are plausible, and if not why.
    pub implausible: Option<String>,
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// One row per expected CPU, by CPU number.
    pub rows: Vec<CpuRow>,
    /// Notes that no evidence numbers.
    pub unnumbered: Vec<UnnumberedNote>,
    /// CPUs known to exist but not expected to have a note (offline).
    pub not_expected: Vec<u32>,
    /// How many CPUs were expected, if known.
    pub expected: Option<u32>,
    /// The strongest source used.
    pub method: &'static str,
    /// Every numbering is exact (no inference).
    pub exact: bool,
    /// Remarks: inconsistencies, what would settle an open question.
    pub remarks: Vec<String>,
}

impl Verdict {
    /// Expected CPUs captured.
    pub fn captured(&self) -> usize {
        self.rows.iter().filter(|r| r.status == Status::Captured).count()
            + self.unnumbered.iter().filter(|u| u.implausible.is_none()).count()
    }

    /// Every expected CPU captured, and the expected set known.
    pub fn all_captured(&self) -> bool {
        let Some(expected) = self.expected else {
            return false;
        };
        self.rows.iter().all(|r| r.status == Status::Captured)
            && self.unnumbered.iter().all(|u| u.implausible.is_none())
            && self.captured() == expected as usize
    }
}

/// What would settle an unnumbered note.
pub const HOW_TO_SETTLE: &str = "load the crash kernel with kexec-rs (it adds a CPU-map note), \
or pass --system-map/--vmlinux from the kernel's -dbg package (data symbols crash_notes, \
__per_cpu_offset, __cpu_online_mask)";

/// Judges a CPU's registers.
pub fn implausible(pr: &ElfPrstatus, layout: Option<&KernelLayout>) -> Option<String> {
    let r: Regs = pr.regs();
    let ps = Pstate::decode(r.pstate);
    let layout = layout?;
    match ps.el {
        None => Some(format!("pstate {:#x} is AArch32 state; an arm64 kernel never runs there", r.pstate)),
        Some(0) => {
            if r.pc >= layout.user_space_end {
                Some(format!("pc {:#x} is a kernel address but pstate {:#x} is EL0", r.pc, r.pstate))
            } else {
                None
            }
        }
        Some(1) | Some(2) => {
            if r.pc == 0 && r.sp == 0 {
                return Some("pc and sp are zero".to_string());
            }
            // pc must be in the kernel half. Kernel text and modules are the
            // usual places, but BPF JIT code runs from the vmalloc area, so
            // the whole half is accepted.
            if r.pc < layout.kernel_space_start {
                return Some(format!("pc {:#x} is not a kernel address", r.pc));
            }
            if !r.sp.is_multiple_of(16) {
                return Some(format!("sp {:#x} is not 16-byte aligned", r.sp));
            }
            if r.sp < layout.kernel_space_start {
                return Some(format!("sp {:#x} is not a kernel address", r.sp));
            }
            if ps.el == Some(1) && !ps.sp_elx {
                // EL1t: the kernel never runs on SP_EL0 at EL1.
                return Some(format!("pstate {:#x} is EL1t; the kernel runs on SP_EL1", r.pstate));
            }
            None
        }
        Some(_) => Some(format!("pstate {:#x} is EL3: firmware, not the kernel", r.pstate)),
    }
}

fn row_from_buffer(
    cpu: u32,
    buf: &BufferState,
    online_at_dump: Option<&BTreeSet<u32>>,
    log_failed: Option<&BTreeSet<u32>>,
    layout: Option<&KernelLayout>,
    source: NumberSource,
) -> CpuRow {
    let mut row = CpuRow {
        cpu,
        status: Status::Missing,
        reason: None,
        source,
        prstatus: None,
        note_index: None,
    };
    match buf {
        BufferState::Parsed(CrashNote::Saved(pr)) => {
            row.prstatus = Some(*pr);
            match implausible(pr, layout) {
                None => row.status = Status::Captured,
                Some(why) => row.reason = Some(format!("registers implausible: {why}")),
            }
        }
        BufferState::Parsed(CrashNote::Empty) => {
            let online = online_at_dump.map(|s| s.contains(&cpu));
            let log = log_failed.map(|s| s.contains(&cpu));
            row.reason = Some(match (online, log) {
                (Some(true), _) | (_, Some(true)) => {
                    "failed to stop: no register note, and the CPU was still online when the kernel crashed".to_string()
                }
                _ => "failed to stop: its crash-notes buffer is empty (the CPU never saved its registers)".to_string(),
            });
        }
        BufferState::Corrupt(e) => row.reason = Some(format!("note corrupt: {e}")),
        BufferState::Unreadable(e) => {
            row.reason = Some(format!("note unreadable: crash-notes buffer not in the dump ({e})"))
        }
    }
    row
}

/// Decides the verdict. Pure: all I/O happened while building `ev`.
pub fn decide(ev: &Evidence) -> Verdict {
    let layout = ev.layout.as_ref();
    let log_failed: Option<BTreeSet<u32>> = ev
        .log
        .as_ref()
        .and_then(|l| l.failed_to_stop.as_ref())
        .map(|v| v.iter().copied().collect());
    let mut remarks = Vec::new();
    if let Some(e) = &ev.cpumap_error {
        remarks.push(format!("CPU-map note present but unusable: {e}"));
    }

    // 1. The loader's CPU-map note.
    if let Some(map) = &ev.cpumap {
        let mut rows = Vec::new();
        let mut not_expected = Vec::new();
        for (entry, buf) in map {
            if !entry.online() {
                not_expected.push(entry.cpu);
                continue;
            }
            rows.push(row_from_buffer(
                entry.cpu,
                buf,
                None,
                log_failed.as_ref(),
                layout,
                NumberSource::CpuMapNote,
            ));
        }
        return exact_verdict(ev, rows, not_expected, "cpu-map-note", remarks);
    }

    // 2. Data symbols.
    if let Some(sym) = &ev.symbols {
        let online: Option<BTreeSet<u32>> =
            sym.online_at_dump.as_ref().map(|v| v.iter().copied().collect());
        let mut rows = Vec::new();
        let mut not_expected = Vec::new();
        for (cpu, buf) in &sym.buffers {
            let empty = matches!(buf, BufferState::Parsed(CrashNote::Empty));
            let was_online = online.as_ref().map(|s| s.contains(cpu));
            if empty && was_online == Some(false) {
                // Not online at the crash and never saved: it was offline
                // before the crash (a stopped CPU always saves first).
                not_expected.push(*cpu);
                continue;
            }
            rows.push(row_from_buffer(
                *cpu,
                buf,
                online.as_ref(),
                log_failed.as_ref(),
                layout,
                NumberSource::DataSymbols,
            ));
        }
        if online.is_none() {
            remarks.push(
                "__cpu_online_mask unknown: a CPU with an empty buffer is counted as failed to stop, \
                 though it may have been offline before the crash"
                    .to_string(),
            );
        }
        return exact_verdict(ev, rows, not_expected, "data-symbols", remarks);
    }

    // 3. QEMU numbers its notes.
    if ev.qemu {
        return decide_qemu(ev, remarks);
    }

    // 4. Inference from the log.
    decide_inferred(ev, remarks)
}

/// A verdict from an exact source (CPU-map note or data symbols): every
/// expected CPU has a row, numbered by that source.
fn exact_verdict(
    ev: &Evidence,
    mut rows: Vec<CpuRow>,
    not_expected: Vec<u32>,
    method: &'static str,
    mut remarks: Vec<String>,
) -> Verdict {
    rows.sort_by_key(|r| r.cpu);
    cross_check_notes(ev, &rows, &mut remarks);
    Verdict {
        expected: Some(rows.len() as u32),
        rows,
        unnumbered: Vec::new(),
        not_expected,
        method,
        exact: true,
        remarks,
    }
}

fn cross_check_notes(ev: &Evidence, rows: &[CpuRow], remarks: &mut Vec<String>) {
    // Every merged CORE note should be some CPU's buffer, byte for byte.
    let from_buffers: Vec<&ElfPrstatus> = rows.iter().filter_map(|r| r.prstatus.as_ref()).collect();
    for n in &ev.notes {
        match &n.prstatus {
            Ok(pr) if !from_buffers.contains(&pr) => remarks.push(format!(
                "note {} (file offset {:#x}) matches no CPU's crash-notes buffer in memory",
                n.index, n.file_offset
            )),
            Ok(_) => {}
            Err(e) => remarks.push(format!(
                "note {} (file offset {:#x}) is corrupt: {e}",
                n.index, n.file_offset
            )),
        }
    }
}

fn decide_qemu(ev: &Evidence, mut remarks: Vec<String>) -> Verdict {
    let layout = ev.layout.as_ref();
    let mut rows: BTreeMap<u32, CpuRow> = BTreeMap::new();
    let mut unnumbered = Vec::new();
    for n in &ev.notes {
        match &n.prstatus {
            Ok(pr) if pr.pr_pid >= 1 && !rows.contains_key(&((pr.pr_pid - 1) as u32)) => {
                let cpu = (pr.pr_pid - 1) as u32;
                let why = implausible(pr, layout);
                rows.insert(
                    cpu,
                    CpuRow {
                        cpu,
                        status: if why.is_none() { Status::Captured } else { Status::Missing },
                        reason: why.map(|w| format!("registers implausible: {w}")),
                        source: NumberSource::QemuPrPid,
                        prstatus: Some(*pr),
                        note_index: Some(n.index),
                    },
                );
            }
            Ok(pr) => {
                remarks.push(format!(
                    "QEMU note {} has pr_pid {} (a duplicate or not index + 1)",
                    n.index, pr.pr_pid
                ));
                unnumbered.push(UnnumberedNote {
                    note: n.clone(),
                    implausible: implausible(pr, layout),
                });
            }
            Err(e) => remarks.push(format!("QEMU note {} is corrupt: {e}", n.index)),
        }
    }
    let expected = rows.len() as u32 + unnumbered.len() as u32;
    Verdict {
        rows: rows.into_values().collect(),
        exact: unnumbered.is_empty(),
        unnumbered,
        not_expected: Vec::new(),
        expected: Some(expected),
        method: "qemu-pr-pid",
        remarks,
    }
}

fn decide_inferred(ev: &Evidence, mut remarks: Vec<String>) -> Verdict {
    let layout = ev.layout.as_ref();
    let log = ev.log.clone().unwrap_or_default();
    let mut rows: BTreeMap<u32, CpuRow> = BTreeMap::new();
    let mut left: Vec<&FoundNote> = Vec::new();
    for n in &ev.notes {
        match &n.prstatus {
            Ok(_) => left.push(n),
            Err(e) => remarks.push(format!(
                "note {} (file offset {:#x}) is corrupt and cannot be numbered: {e}",
                n.index, n.file_offset
            )),
        }
    }
    let note_row = |cpu: u32, n: &FoundNote, source: NumberSource| -> CpuRow {
        let pr = n.prstatus.as_ref().ok().copied();
        let why = pr.as_ref().and_then(|p| implausible(p, layout));
        CpuRow {
            cpu,
            status: if why.is_none() { Status::Captured } else { Status::Missing },
            reason: why.map(|w| format!("registers implausible: {w}")),
            source,
            prstatus: pr,
            note_index: Some(n.index),
        }
    };

    let Some(n_cpus) = log.cpus_brought_up else {
        remarks.push(format!(
            "the CPU count is unknown (no \"smp: Brought up\" line in the dump's log); to number CPUs, {HOW_TO_SETTLE}"
        ));
        return Verdict {
            rows: Vec::new(),
            unnumbered: left
                .into_iter()
                .map(|n| UnnumberedNote {
                    note: n.clone(),
                    implausible: n.prstatus.as_ref().ok().and_then(|p| implausible(p, layout)),
                })
                .collect(),
            not_expected: Vec::new(),
            expected: None,
            method: "none",
            exact: false,
            remarks,
        };
    };
    let mut remaining: BTreeSet<u32> = (0..n_cpus).collect();
    for c in &log.offlined {
        if remaining.remove(c) {
            remarks.push(format!("CPU {c} was taken offline before the crash (kernel log); not expected"));
        }
    }
    let not_expected: Vec<u32> = log.offlined.iter().copied().filter(|c| *c < n_cpus).collect();

    // Anchor: the panicking CPU, by PID.
    if let Some((cpu, pid)) = log.panic_cpu_pid {
        let matches: Vec<usize> = left
            .iter()
            .enumerate()
            .filter(|(_, n)| n.prstatus.as_ref().is_ok_and(|p| p.pr_pid == pid))
            .map(|(i, _)| i)
            .collect();
        if matches.len() == 1 && remaining.contains(&cpu) {
            let n = left.remove(matches[0]);
            rows.insert(cpu, note_row(cpu, n, NumberSource::InferredPanicPid));
            remaining.remove(&cpu);
        } else if matches.len() > 1 {
            remarks.push(format!(
                "{} notes carry the panicking task's PID {pid}; the panicking CPU {cpu} cannot be told apart",
                matches.len()
            ));
        }
    }
    // CPUs the kernel said failed to stop.
    if let Some(failed) = &log.failed_to_stop {
        for &cpu in failed {
            if remaining.remove(&cpu) {
                rows.insert(
                    cpu,
                    CpuRow {
                        cpu,
                        status: Status::Missing,
                        reason: Some(
                            "failed to stop: the kernel reported it still running with its stop request unanswered"
                                .to_string(),
                        ),
                        source: NumberSource::InferredLogFailedToStop,
                        prstatus: None,
                        note_index: None,
                    },
                );
            }
        }
    }
    // Buffer spacing: a numbered note's buffer anchors the per-CPU units.
    if !left.is_empty() {
        number_by_spacing(ev, &log, &mut rows, &mut left, &mut remaining, &note_row, &mut remarks);
    }
    // Elimination: exactly one CPU and one note left.
    if remaining.len() == 1 && left.len() == 1 {
        let cpu = remaining.iter().next().copied().unwrap_or(0);
        let n = left.remove(0);
        rows.insert(cpu, note_row(cpu, n, NumberSource::InferredElimination));
        remaining.clear();
    }
    if remaining.len() > left.len() {
        // More CPUs than notes: some CPUs left no note, and the log did not
        // name them. Which ones cannot be told unless every note is numbered.
        if left.is_empty() {
            for &cpu in &remaining {
                rows.insert(
                    cpu,
                    CpuRow {
                        cpu,
                        status: Status::Missing,
                        reason: Some(
                            "no register note: every note in the dump belongs to another CPU".to_string(),
                        ),
                        source: NumberSource::InferredLogCount,
                        prstatus: None,
                        note_index: None,
                    },
                );
            }
            remaining.clear();
        } else {
            remarks.push(format!(
                "{} CPUs ({}) share {} unnumbered notes: {} left no note, which cannot be told; to settle it, {HOW_TO_SETTLE}",
                remaining.len(),
                list(&remaining),
                left.len(),
                remaining.len() - left.len()
            ));
        }
    } else if remaining.len() < left.len() {
        remarks.push(format!(
            "{} notes but only {} CPUs left to number ({}): the log's CPU count or the notes are inconsistent",
            left.len(),
            remaining.len(),
            list(&remaining)
        ));
    } else if !left.is_empty() {
        remarks.push(format!(
            "CPUs {} each left a note, but which note is which CPU is not settled by the log; to settle it, {HOW_TO_SETTLE}",
            list(&remaining)
        ));
    }
    let unnumbered: Vec<UnnumberedNote> = left
        .into_iter()
        .map(|n| UnnumberedNote {
            note: n.clone(),
            implausible: n.prstatus.as_ref().ok().and_then(|p| implausible(p, layout)),
        })
        .collect();
    let expected = n_cpus - not_expected.len() as u32;
    Verdict {
        rows: rows.into_values().collect(),
        unnumbered,
        not_expected,
        expected: Some(expected),
        method: "inferred-from-log",
        exact: false,
        remarks,
    }
}

/// Numbers notes whose buffers were found in memory: each per-CPU unit is
/// `pcpu_unit_size` bytes, units are contiguous in the first chunk, and the
/// log's unit map gives each unit's CPU. A numbered note with a found buffer
/// anchors the unit numbering.
fn number_by_spacing<'a>(
    ev: &Evidence,
    log: &LogFacts,
    rows: &mut BTreeMap<u32, CpuRow>,
    left: &mut Vec<&'a FoundNote>,
    remaining: &mut BTreeSet<u32>,
    note_row: &dyn Fn(u32, &FoundNote, NumberSource) -> CpuRow,
    remarks: &mut Vec<String>,
) {
    let Some(unit) = log.pcpu_unit_size.filter(|u| *u > 0) else {
        return;
    };
    let unit_of = |cpu: u32| log.pcpu_units.iter().position(|&c| c == cpu);
    let buf_of = |idx: usize| ev.note_buffers.get(idx).copied().flatten();
    // The anchor: a numbered note whose buffer was found.
    let Some((anchor_unit, anchor_addr)) = rows.values().find_map(|r| {
        let addr = buf_of(r.note_index?)?;
        Some((unit_of(r.cpu)?, addr))
    }) else {
        return;
    };
    let mut numbered = Vec::new();
    for (i, n) in left.iter().enumerate() {
        let Some(addr) = buf_of(n.index) else { continue };
        let delta = i128::from(addr) - i128::from(anchor_addr);
        if delta % i128::from(unit) != 0 {
            remarks.push(format!(
                "note {} sits at {addr:#x}, not a whole number of {unit}-byte per-CPU units from the anchor at {anchor_addr:#x}",
                n.index
            ));
            continue;
        }
        let u = anchor_unit as i128 + delta / i128::from(unit);
        let cpu = usize::try_from(u).ok().and_then(|u| log.pcpu_units.get(u)).copied();
        match cpu {
            Some(cpu) if remaining.contains(&cpu) => numbered.push((i, cpu)),
            _ => remarks.push(format!(
                "note {}'s buffer at {addr:#x} falls in per-CPU unit {u}, which is no CPU left to number",
                n.index
            )),
        }
    }
    // Remove from `left` back to front so indices stay valid.
    numbered.sort_by_key(|&(i, _)| std::cmp::Reverse(i));
    for (i, cpu) in numbered {
        let n = left.remove(i);
        rows.insert(cpu, note_row(cpu, n, NumberSource::InferredBufferSpacing));
        remaining.remove(&cpu);
    }
}

fn list(s: &BTreeSet<u32>) -> String {
    s.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
}

/// Parses a kernel CPU list ("0-2,5") as the kernel's `%*pbl` prints it.
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.trim().split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if let Some((a, b)) = part.split_once('-') {
            let a: u32 = a.trim().parse().ok()?;
            let b: u32 = b.trim().parse().ok()?;
            if b < a || b - a > 65536 {
                return None;
            }
            out.extend(a..=b);
        } else {
            out.push(part.parse().ok()?);
        }
    }
    Some(out)
}

/// Reads [`LogFacts`] from kernel log lines (message text, without the
/// timestamp prefix or with it; both are handled).
pub fn log_facts<'a>(lines: impl IntoIterator<Item = &'a str>) -> LogFacts {
    let mut f = LogFacts::default();
    let mut offline: BTreeSet<u32> = BTreeSet::new();
    for line in lines {
        let msg = match line.find("] ") {
            Some(i) if line.starts_with('[') => &line[i + 2..],
            _ => line,
        };
        if let Some(rest) = msg.strip_prefix("smp: Brought up ") {
            // "1 node, 2 CPUs" / "2 nodes, 8 CPUs"
            if let Some(n) = rest
                .split(", ")
                .nth(1)
                .and_then(|s| s.strip_suffix(" CPUs").or_else(|| s.strip_suffix(" CPU")))
                .and_then(|s| s.trim().parse().ok())
            {
                f.cpus_brought_up = Some(n);
            }
        } else if let Some(rest) = msg.strip_prefix("pcpu-alloc: ") {
            if rest.starts_with('[') {
                // "[0] 0 [0] 1 " : group, CPU pairs in unit order.
                let mut it = rest.split_whitespace();
                while let (Some(g), Some(c)) = (it.next(), it.next()) {
                    match (g.starts_with('['), c.parse::<u32>()) {
                        (true, Ok(c)) => f.pcpu_units.push(c),
                        _ => break,
                    }
                }
            } else if let Some(u) = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix('u'))
                .and_then(|u| u.parse::<u64>().ok())
            {
                f.pcpu_unit_size = Some(u);
            }
        } else if let Some(rest) = msg.strip_prefix("SMP: failed to stop secondary CPUs") {
            if let Some(v) = parse_cpu_list(rest) {
                f.failed_to_stop = Some(v);
            }
        } else if let Some(rest) = msg.strip_prefix("CPU: ") {
            // "CPU: 0 PID: 1 Comm: sh Not tainted 6.1.0-… #1"
            let mut it = rest.split_whitespace();
            let cpu = it.next().and_then(|s| s.parse::<u32>().ok());
            let pid = match (it.next(), it.next()) {
                (Some("PID:"), Some(p)) => p.parse::<i32>().ok(),
                _ => None,
            };
            if let (Some(c), Some(p)) = (cpu, pid) {
                f.panic_cpu_pid = Some((c, p));
            }
        } else if let Some(rest) = msg.strip_prefix("CPU") {
            // "CPU1: shutdown" / "CPU1: Booted secondary processor …"
            if let Some((n, what)) = rest.split_once(": ") {
                if let Ok(n) = n.parse::<u32>() {
                    if what.starts_with("shutdown") {
                        offline.insert(n);
                    } else if what.starts_with("Booted") {
                        offline.remove(&n);
                    }
                }
            }
        }
    }
    f.offlined = offline.into_iter().collect();
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crash_payload::cpumap::{CPU_ONLINE, CPU_PRESENT};
    use crash_payload::PhysAddr;

    fn pr(pid: i32, pc: u64) -> ElfPrstatus {
        let mut p = ElfPrstatus {
            pr_pid: pid,
            ..Default::default()
        };
        let mut r = Regs {
            pc,
            sp: 0xffff_8000_0a00_3e40,
            pstate: 0x3c5, // EL1h, DAIF masked
            ..Default::default()
        };
        r.x[30] = pc - 0x40;
        p.set_regs(&r);
        p
    }

    fn note(index: usize, p: ElfPrstatus) -> FoundNote {
        FoundNote {
            index,
            file_offset: 0x1000 + 424 * index as u64,
            prstatus: Ok(p),
        }
    }

    fn layout() -> Option<KernelLayout> {
        Some(KernelLayout {
            text: Some(0xffff_8000_0801_0000..0xffff_8000_0900_0000),
            modules: Some(0xffff_8000_0000_0000..0xffff_8000_0800_0000),
            kernel_space_start: 0xffff_0000_0000_0000,
            user_space_end: 1 << 48,
        })
    }

    #[test]
    fn cpumap_names_the_wedged_cpu_whatever_the_note_order() {
        // CPU 1 wedged: its buffer is empty; the merged notes hold CPUs 0 and 2.
        let entry = |cpu| CpuEntry {
            cpu,
            flags: CPU_ONLINE | CPU_PRESENT,
            mpidr: cpu as u64,
            notes_paddr: PhysAddr(0x7000_0000 + 0x1f000 * cpu as u64),
            notes_size: 424,
        };
        let ev = Evidence {
            notes: vec![note(0, pr(100, 0xffff_8000_0810_0000)), note(1, pr(0, 0xffff_8000_0820_0000))],
            cpumap: Some(vec![
                (entry(0), BufferState::Parsed(CrashNote::Saved(pr(100, 0xffff_8000_0810_0000)))),
                (entry(1), BufferState::Parsed(CrashNote::Empty)),
                (entry(2), BufferState::Parsed(CrashNote::Saved(pr(0, 0xffff_8000_0820_0000)))),
            ]),
            layout: layout(),
            ..Default::default()
        };
        let v = decide(&ev);
        assert_eq!(v.method, "cpu-map-note");
        assert!(v.exact);
        assert_eq!(v.rows.len(), 3);
        assert_eq!(v.rows[1].cpu, 1);
        assert_eq!(v.rows[1].status, Status::Missing);
        assert!(v.rows[1].reason.as_deref().unwrap_or("").starts_with("failed to stop"));
        assert_eq!(v.rows[2].prstatus.map(|p| p.regs().pc), Some(0xffff_8000_0820_0000));
        assert!(!v.all_captured());
        assert!(v.remarks.is_empty(), "{:?}", v.remarks);
    }

    #[test]
    fn inference_from_the_log_with_a_wedged_cpu() {
        let log = log_facts([
            "[    0.05] smp: Brought up 1 node, 2 CPUs",
            "[   12.00] SMP: failed to stop secondary CPUs 1",
            "[   12.01] CPU: 0 PID: 211 Comm: sh Not tainted 6.1.0-28-arm64 #1  Debian 6.1.119-1",
        ]);
        assert_eq!(log.cpus_brought_up, Some(2));
        assert_eq!(log.failed_to_stop, Some(vec![1]));
        assert_eq!(log.panic_cpu_pid, Some((0, 211)));
        let ev = Evidence {
            notes: vec![note(0, pr(211, 0xffff_8000_0810_0000))],
            log: Some(log),
            layout: layout(),
            ..Default::default()
        };
        let v = decide(&ev);
        assert_eq!(v.method, "inferred-from-log");
        assert!(!v.exact);
        assert_eq!(v.rows.len(), 2);
        assert_eq!((v.rows[0].cpu, v.rows[0].status), (0, Status::Captured));
        assert_eq!(v.rows[0].source, NumberSource::InferredPanicPid);
        assert_eq!((v.rows[1].cpu, v.rows[1].status), (1, Status::Missing));
        assert_eq!(v.rows[1].source, NumberSource::InferredLogFailedToStop);
        assert!(v.unnumbered.is_empty());
    }

    #[test]
    fn elimination_numbers_the_last_note_only_when_unique() {
        let log = LogFacts {
            cpus_brought_up: Some(2),
            panic_cpu_pid: Some((1, 300)),
            ..Default::default()
        };
        // Note order deliberately "wrong": the panicking CPU 1's note comes first.
        let ev = Evidence {
            notes: vec![note(0, pr(300, 0xffff_8000_0810_0000)), note(1, pr(0, 0xffff_8000_0820_0000))],
            log: Some(log.clone()),
            layout: layout(),
            ..Default::default()
        };
        let v = decide(&ev);
        assert_eq!(v.rows[0].cpu, 0);
        assert_eq!(v.rows[0].note_index, Some(1));
        assert_eq!(v.rows[0].source, NumberSource::InferredElimination);
        assert_eq!(v.rows[1].note_index, Some(0));
        assert!(v.all_captured());

        // Four CPUs, three idle notes: never numbered by order.
        let ev = Evidence {
            notes: vec![
                note(0, pr(300, 0xffff_8000_0810_0000)),
                note(1, pr(0, 0xffff_8000_0820_0000)),
                note(2, pr(0, 0xffff_8000_0820_0000)),
                note(3, pr(0, 0xffff_8000_0820_0000)),
            ],
            log: Some(LogFacts {
                cpus_brought_up: Some(4),
                ..log
            }),
            layout: layout(),
            ..Default::default()
        };
        let v = decide(&ev);
        assert_eq!(v.rows.len(), 1);
        assert_eq!(v.unnumbered.len(), 3);
        assert!(v.all_captured(), "all four captured even if three are unnumbered");
        assert!(v.remarks.iter().any(|r| r.contains("kexec-rs")));
    }

    #[test]
    fn buffer_spacing_numbers_idle_cpus() {
        // Four CPUs, all stopped; CPU 2 panicked. Note order is scrambled.
        let log = log_facts([
            "[    0.00] pcpu-alloc: s87272 r8192 d31512 u126976 alloc=31*4096",
            "[    0.00] pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3 ",
            "[    0.10] smp: Brought up 1 node, 4 CPUs",
            "[    9.00] CPU: 2 PID: 77 Comm: sh Not tainted",
        ]);
        assert_eq!(log.pcpu_unit_size, Some(126_976));
        assert_eq!(log.pcpu_units, vec![0, 1, 2, 3]);
        let base = 0xbfb8_6600u64;
        let at = |cpu: u64| Some(base + cpu * 126_976);
        let ev = Evidence {
            notes: vec![
                note(0, pr(0, 0xffff_8000_0820_0010)),  // CPU 3
                note(1, pr(77, 0xffff_8000_0810_0000)), // CPU 2 (panic)
                note(2, pr(0, 0xffff_8000_0820_0030)),  // CPU 0
                note(3, pr(0, 0xffff_8000_0820_0040)),  // CPU 1
            ],
            note_buffers: vec![at(3), at(2), at(0), at(1)],
            log: Some(log),
            layout: layout(),
            ..Default::default()
        };
        let v = decide(&ev);
        assert!(v.unnumbered.is_empty(), "{v:?}");
        let by_cpu: Vec<(u32, Option<usize>)> = v.rows.iter().map(|r| (r.cpu, r.note_index)).collect();
        assert_eq!(by_cpu, vec![(0, Some(2)), (1, Some(3)), (2, Some(1)), (3, Some(0))]);
        assert_eq!(v.rows[0].source, NumberSource::InferredBufferSpacing);
        assert!(v.all_captured());
    }

    #[test]
    fn no_log_means_no_numbering_and_no_verdict() {
        let ev = Evidence {
            notes: vec![note(0, pr(1, 0xffff_8000_0810_0000))],
            ..Default::default()
        };
        let v = decide(&ev);
        assert_eq!(v.expected, None);
        assert!(!v.all_captured());
        assert_eq!(v.unnumbered.len(), 1);
    }

    #[test]
    fn implausible_registers_are_named() {
        let mut p = pr(1, 0xffff_8000_0810_0000);
        let mut r = p.regs();
        r.sp = 0xffff_8000_0a00_3e44;
        p.set_regs(&r);
        let why = implausible(&p, layout().as_ref()).unwrap_or_default();
        assert!(why.contains("16-byte"), "{why}");
        let mut r = p.regs();
        r.sp = 0xffff_8000_0a00_3e40;
        r.pc = 0x4000;
        p.set_regs(&r);
        assert!(implausible(&p, layout().as_ref()).unwrap_or_default().contains("not a kernel address"));
        r.pstate = 0; // EL0t with a user pc
        p.set_regs(&r);
        assert_eq!(implausible(&p, layout().as_ref()), None);
    }

    #[test]
    fn qemu_numbering_uses_pr_pid() {
        let ev = Evidence {
            notes: vec![note(0, pr(2, 0xffff_8000_0810_0000)), note(1, pr(1, 0xffff_8000_0820_0000))],
            qemu: true,
            layout: layout(),
            ..Default::default()
        };
        let v = decide(&ev);
        assert_eq!(v.rows[0].cpu, 0);
        assert_eq!(v.rows[0].note_index, Some(1));
        assert!(v.all_captured());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list(" 1-3,5"), Some(vec![1, 2, 3, 5]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn offline_cpus_in_the_log() {
        let f = log_facts(["CPU1: shutdown", "CPU2: shutdown", "CPU2: Booted secondary processor 0x0000000002"]);
        assert_eq!(f.offlined, vec![1]);
    }
}
