//! The `kexec_load` segment plan: a plain value computed from the host
//! facts and the request, which tests assert on and one small function
//! ([`crate::act`]) turns into a syscall.
//!
//! Layout, in this order from the bottom of the window (the `Crash kernel`
//! range for `-p`, a `System RAM` range for `-l`), each segment starting on
//! a page boundary with a page-multiple `memsz` (the kernel's
//! `sanity_check_segment_list()` refuses anything else):
//!
//! 1. kernel at the first 2 MiB-aligned address + `text_offset`, `memsz`
//!    the header's `image_size` (it includes BSS);
//! 2. initrd;
//! 3. elfcorehdr (crash only): ELF header, program headers, then the
//!    CPU-map note and a zero note header that its `PT_NOTE` points at;
//! 4. DTB (`/chosen` edited; placed after everything it refers to);
//! 5. purgatory slot (needs the DTB address and every digest).
//!
//! One page must stay free in a crash window: the kernel takes the control
//! page for a crash image from the reservation
//! (`kimage_alloc_crash_control_pages()`).

use crash_payload::cpumap::{self, CpuEntry, CPU_ONLINE, CPU_PRESENT};
use crash_payload::elfcorehdr::{self, ElfCoreHdrError, ProgramHeader, EM_AARCH64};
use crash_payload::note::{note_size, NHDR_SIZE};
use crash_payload::{PhysAddr, VirtAddr};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::fdt::{encode_cells, str_value, Fdt};
use crate::image::{Container, KernelImage};
use crate::iomem::{subtract, PhysRange};
use crate::purgatory::{Handoff, Purgatory};
use crate::source::HostFacts;

/// Kernel base alignment on arm64 (`Documentation/arm64/booting.rst`).
pub const KERNEL_ALIGN: u64 = 2 << 20;
/// Largest DTB the arm64 boot protocol accepts.
pub const MAX_DTB_SIZE: usize = 2 << 20;
/// Bytes of `rng-seed` written (the kernel's `RNG_SEED_SIZE` for kexec_file).
pub const RNG_SEED_SIZE: usize = 128;
/// `KEXEC_SEGMENT_MAX`.
pub const KEXEC_SEGMENT_MAX: usize = 16;

/// `-p` or `-l`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadKind {
    /// The crash (panic) kernel: `KEXEC_ON_CRASH`.
    Crash,
    /// A kernel to boot with `kexec -e`.
    Normal,
}

/// What a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// The raw kernel Image.
    Kernel,
    /// The initramfs.
    Initrd,
    /// The ELF core header for `/proc/vmcore`.
    #[serde(rename = "elfcorehdr")]
    ElfCoreHdr,
    /// The edited device tree.
    Dtb,
    /// The purgatory.
    Purgatory,
}

/// One `struct kexec_segment` plus what it is.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// What it holds.
    pub purpose: Purpose,
    /// Destination physical address (page-aligned).
    #[serde(serialize_with = "crate::ser_phys")]
    pub mem: PhysAddr,
    /// Destination size (page multiple, at least `bytes_len`).
    pub memsz: u64,
    /// Bytes supplied (`bufsz`); the rest of `memsz` is zero-filled.
    pub bytes_len: u64,
    /// SHA-256 of the supplied bytes.
    #[serde(serialize_with = "crate::ser_hex")]
    pub sha256: [u8; 32],
    /// The bytes.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("purpose", &self.purpose)
            .field("mem", &self.mem)
            .field("memsz", &format_args!("{:#x}", self.memsz))
            .field("bytes_len", &self.bytes_len)
            .field("sha256", &crate::hex(&self.sha256))
            .finish()
    }
}

impl Segment {
    /// The destination range.
    pub fn range(&self) -> Option<PhysRange> {
        PhysRange::from_start_size(self.mem, self.memsz)
    }
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// `-p` or `-l`.
    pub kind: LoadKind,
    /// Target architecture (`aarch64`).
    pub arch: &'static str,
    /// Segments in address order.
    pub segments: Vec<Segment>,
    /// `kexec_load` entry: the purgatory.
    #[serde(serialize_with = "crate::ser_phys")]
    pub entry: PhysAddr,
    /// Where the purgatory jumps: the kernel's first byte.
    #[serde(serialize_with = "crate::ser_phys")]
    pub kernel_entry: PhysAddr,
    /// The DTB address handed over in `x0`.
    #[serde(serialize_with = "crate::ser_phys")]
    pub dtb: PhysAddr,
    /// The window segments were placed in.
    pub window: PhysRange,
    /// Bytes of the window left free after the last segment.
    pub free_after: u64,
    /// `linux,usable-memory-range` (crash only).
    pub usable_memory: Vec<PhysRange>,
    /// `linux,elfcorehdr` (crash only).
    pub elfcorehdr: Option<PhysRange>,
    /// The crash kernel's command line (`bootargs`).
    pub cmdline: String,
    /// Containers the kernel came in.
    pub kernel_containers: Vec<Container>,
    /// The purgatory used.
    pub purgatory: &'static str,
    /// Whether it checks digests.
    pub purgatory_verifies: bool,
}

/// Fresh seeds for the new kernel (from `getrandom` in the binary; fixed in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeds {
    /// `/chosen/kaslr-seed`.
    pub kaslr: u64,
    /// `/chosen/rng-seed`.
    pub rng: [u8; RNG_SEED_SIZE],
}

/// What to load.
#[derive(Debug, Clone)]
pub struct LoadRequest<'a> {
    /// `-p` or `-l`.
    pub kind: LoadKind,
    /// The probed kernel.
    pub kernel: &'a KernelImage,
    /// The initrd bytes.
    pub initrd: Option<&'a [u8]>,
    /// The new kernel's command line.
    pub cmdline: &'a str,
    /// Seeds for `/chosen`.
    pub seeds: Seeds,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// No `Crash kernel` range in `/proc/iomem`.
    #[error("no \"Crash kernel\" range in /proc/iomem: boot the running kernel with crashkernel=SIZE (for example crashkernel=256M)")]
    NoCrashKernel,
    /// The reservation cannot hold the segments (the kernel would say ENOMEM).
    #[error("crash kernel reservation {range} is too small: the segments need {needed} bytes ({needed_mib} MiB, including one page for the kernel's control page), the reservation has {available} bytes ({available_mib} MiB); raise crashkernel=")]
    ReservationTooSmall {
        /// The reservation.
        range: PhysRange,
        /// Bytes needed from its start.
        needed: u64,
        /// `needed` in MiB, rounded up.
        needed_mib: u64,
        /// Its size.
        available: u64,
        /// `available` in MiB, rounded down.
        available_mib: u64,
    },
    /// No `System RAM` range can hold a normal load.
    #[error("no System RAM range in /proc/iomem can hold {needed} bytes of segments")]
    NoRoom {
        /// Bytes needed.
        needed: u64,
    },
    /// A fact the crash plan needs is missing.
    #[error("{0}")]
    Missing(&'static str),
    /// Facts that contradict each other.
    #[error("{0}")]
    Inconsistent(String),
    /// Address arithmetic overflowed.
    #[error("address arithmetic overflowed while placing the {0}")]
    Overflow(&'static str),
    /// A RAM range outside the crashed kernel's linear map.
    #[error("System RAM at {paddr:#x} is outside the linear map (PHYS_OFFSET {phys_offset:#x}, VA_BITS {va_bits})")]
    LinearMap {
        /// The range start.
        paddr: u64,
        /// `PHYS_OFFSET`.
        phys_offset: u64,
        /// `VA_BITS`.
        va_bits: u32,
    },
    /// The elfcorehdr could not be written.
    #[error("elfcorehdr: {0:?}")]
    ElfCoreHdr(ElfCoreHdrError),
    /// The DTB could not be edited.
    #[error("DTB: {0}")]
    Dtb(String),
    /// The purgatory could not be built.
    #[error("purgatory: {0}")]
    Purgatory(String),
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    debug_assert!(a.is_power_of_two());
    Some(v.checked_add(a - 1)? & !(a - 1))
}

fn segment(
    purpose: Purpose,
    mem: PhysAddr,
    bytes: Vec<u8>,
    memsz: u64,
    page: u64,
) -> Result<Segment, PlanError> {
    let memsz =
        align_up(memsz.max(bytes.len() as u64), page).ok_or(PlanError::Overflow("segment size"))?;
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    Ok(Segment {
        purpose,
        mem,
        memsz,
        bytes_len: bytes.len() as u64,
        sha256,
        bytes,
    })
}

/// Bytes of the elfcorehdr segment for `ncpus` CPUs and `nram` RAM ranges:
/// headers, then the CPU-map note, then a zero note header.
pub fn elfcorehdr_len(ncpus: usize, nram: usize) -> Option<(usize, usize, usize)> {
    let phnum = ncpus.checked_add(nram)?.checked_add(3)?; // + VMCOREINFO, CPU map, kernel text
    let headers = elfcorehdr::headers_size(phnum)?;
    let note_off = headers.checked_add(7)? & !7;
    let note_len = note_size(cpumap::CPUMAP_NAME.len(), cpumap::desc_size(ncpus));
    Some((note_off, note_len, note_off + note_len + NHDR_SIZE))
}

/// Builds the elfcorehdr bytes for a segment at `at`.
pub fn build_elfcorehdr(
    facts: &HostFacts,
    crash: &[PhysRange],
    at: PhysAddr,
) -> Result<Vec<u8>, PlanError> {
    let layout = facts.layout.ok_or(PlanError::Missing(
        "VMCOREINFO layout (from /proc/kcore) is required for a crash load",
    ))?;
    let vmci = facts.vmcoreinfo.ok_or(PlanError::Missing(
        "/sys/kernel/vmcoreinfo is required for a crash load",
    ))?;
    if facts.cpus.is_empty() {
        return Err(PlanError::Missing(
            "no possible CPUs with crash_notes in /sys/devices/system/cpu",
        ));
    }
    let code = facts.iomem.kernel_code().ok_or(PlanError::Missing(
        "no \"Kernel code\" range in /proc/iomem",
    ))?;
    let data_last = facts.iomem.kernel_data().map_or(code.last, |d| d.last);
    if data_last < code.last {
        return Err(PlanError::Inconsistent(format!(
            "\"Kernel data\" ends at {data_last:#x}, before \"Kernel code\" {code}"
        )));
    }
    let text_vaddr = layout.phys_to_kimage(code.start).ok_or_else(|| {
        PlanError::Inconsistent(format!(
            "\"Kernel code\" start {:#x} + kimage_voffset {:#x} is not a kernel address",
            code.start.get(),
            layout.kimage_voffset
        ))
    })?;
    if let Some(stext) = layout.stext {
        if stext != text_vaddr {
            return Err(PlanError::Inconsistent(format!(
                "SYMBOL(_stext) is {stext:#x} but \"Kernel code\" {:#x} + kimage_voffset {:#x} = {text_vaddr:#x}: /proc/iomem and VMCOREINFO disagree",
                code.start.get(),
                layout.kimage_voffset
            )));
        }
    }
    let ram = subtract(&facts.iomem.system_ram(), crash);
    let (note_off, note_len, total) =
        elfcorehdr_len(facts.cpus.len(), ram.len()).ok_or(PlanError::Overflow("elfcorehdr"))?;
    let note_paddr = at
        .checked_add(note_off as u64)
        .ok_or(PlanError::Overflow("elfcorehdr"))?;

    let mut ph = Vec::with_capacity(facts.cpus.len() + ram.len() + 3);
    for c in &facts.cpus {
        ph.push(ProgramHeader::note(c.crash_notes, c.crash_notes_size));
    }
    ph.push(ProgramHeader::note(vmci.paddr, vmci.size));
    ph.push(ProgramHeader::note(
        note_paddr,
        (note_len + NHDR_SIZE) as u64,
    ));
    let text_size = data_last.get() - code.start.get() + 1;
    ph.push(ProgramHeader::load(
        code.start,
        VirtAddr(text_vaddr),
        text_size,
    ));
    for r in &ram {
        let v = layout.phys_to_linear(r.start).ok_or(PlanError::LinearMap {
            paddr: r.start.get(),
            phys_offset: layout.phys_offset,
            va_bits: layout.va_bits,
        })?;
        let size = r.size().ok_or(PlanError::Overflow("RAM range"))?;
        ph.push(ProgramHeader::load(r.start, VirtAddr(v), size));
    }
    let mut out = vec![0u8; total];
    elfcorehdr::write_headers(&mut out, EM_AARCH64, &ph).map_err(PlanError::ElfCoreHdr)?;
    let entries: Vec<CpuEntry> = facts
        .cpus
        .iter()
        .map(|c| CpuEntry {
            cpu: c.cpu,
            flags: if c.online { CPU_ONLINE } else { 0 } | if c.present { CPU_PRESENT } else { 0 },
            mpidr: c.mpidr.unwrap_or(u64::MAX),
            notes_paddr: c.crash_notes,
            notes_size: c.crash_notes_size,
        })
        .collect();
    let mut scratch = vec![0u8; cpumap::desc_size(entries.len())];
    cpumap::write_note(
        &mut out[note_off..note_off + note_len],
        &entries,
        &mut scratch,
    )
    .map_err(|e| PlanError::Inconsistent(format!("CPU-map note: {e}")))?;
    // The zero header after the note is already zero.
    Ok(out)
}

/// `/chosen` changes for the new kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenEdits {
    /// `bootargs` (removed when empty).
    pub bootargs: String,
    /// `linux,initrd-start` / `-end` (exclusive end).
    pub initrd: Option<(PhysAddr, u64)>,
    /// `linux,elfcorehdr`.
    pub elfcorehdr: Option<PhysRange>,
    /// `linux,usable-memory-range`.
    pub usable: Vec<PhysRange>,
    /// Seeds.
    pub seeds: Seeds,
}

/// Properties removed from `/chosen` before the new ones are written.
pub const STALE_CHOSEN: &[&str] = &[
    "bootargs",
    "linux,elfcorehdr",
    "linux,usable-memory-range",
    "linux,initrd-start",
    "linux,initrd-end",
    "kaslr-seed",
    "rng-seed",
];

/// Rebuilds `base` with `/chosen` edited.
pub fn edit_dtb(base: &[u8], e: &ChosenEdits) -> Result<Vec<u8>, PlanError> {
    let mut f = Fdt::parse(base).map_err(|x| PlanError::Dtb(x.to_string()))?;
    let (ac, sc) = f.root_cells();
    let reg = |rs: &[PhysRange]| -> Result<Vec<u8>, PlanError> {
        let mut out = Vec::new();
        for r in rs {
            let size = r.size().ok_or(PlanError::Overflow("DTB range"))?;
            let a = encode_cells(&[r.start.get()], ac);
            let s = encode_cells(&[size], sc);
            match (a, s) {
                (Some(a), Some(s)) => {
                    out.extend(a);
                    out.extend(s);
                }
                _ => {
                    return Err(PlanError::Dtb(format!(
                        "range {r} does not fit in #address-cells={ac} #size-cells={sc}"
                    )))
                }
            }
        }
        Ok(out)
    };
    let elfcorehdr = e.elfcorehdr.map(|r| reg(&[r])).transpose()?;
    let usable = if e.usable.is_empty() {
        None
    } else {
        Some(reg(&e.usable)?)
    };
    let chosen = f.node_mut_or_create("/chosen");
    for p in STALE_CHOSEN {
        chosen.remove_prop(p);
    }
    if !e.bootargs.is_empty() {
        chosen.set_prop("bootargs", str_value(&e.bootargs));
    }
    if let Some((start, len)) = e.initrd {
        let end = start
            .get()
            .checked_add(len)
            .ok_or(PlanError::Overflow("initrd"))?;
        chosen.set_prop("linux,initrd-start", start.get().to_be_bytes().to_vec());
        chosen.set_prop("linux,initrd-end", end.to_be_bytes().to_vec());
    }
    if let Some(v) = elfcorehdr {
        chosen.set_prop("linux,elfcorehdr", v);
    }
    if let Some(v) = usable {
        chosen.set_prop("linux,usable-memory-range", v);
    }
    chosen.set_prop("kaslr-seed", e.seeds.kaslr.to_be_bytes().to_vec());
    chosen.set_prop("rng-seed", e.seeds.rng.to_vec());
    let out = f.to_bytes();
    if out.len() > MAX_DTB_SIZE {
        return Err(PlanError::Dtb(format!(
            "edited DTB is {} bytes, the arm64 boot protocol allows {MAX_DTB_SIZE}",
            out.len()
        )));
    }
    Ok(out)
}

/// The crash window: the largest `Crash kernel` range (the one
/// `kexec_load` checks segments against; a `crashkernel=,low` range is only
/// handed over as usable memory).
fn crash_window(ranges: &[PhysRange]) -> Result<PhysRange, PlanError> {
    ranges
        .iter()
        .copied()
        .max_by_key(|r| (r.size().unwrap_or(u64::MAX), r.start))
        .ok_or(PlanError::NoCrashKernel)
}

/// Places the segments for `kexec_load` and builds every byte.
pub fn plan_kexec_load(
    facts: &HostFacts,
    req: &LoadRequest<'_>,
    purgatory: &dyn Purgatory,
) -> Result<Plan, PlanError> {
    // The running kernel's page size governs segment alignment.
    let page = facts.layout.map_or(4096, |l| l.page_size).max(4096);
    let crash = facts.iomem.crash_kernel();
    let hdr = req.kernel.header;
    let kernel_memsz = hdr.effective_size(req.kernel.raw.len() as u64);
    let initrd_len = req.initrd.map_or(0, |i| i.len() as u64);

    // Sizes known before placement (the DTB's is found by building it once).
    let elf_len = match req.kind {
        LoadKind::Crash => {
            let ram = subtract(&facts.iomem.system_ram(), &crash);
            Some(
                elfcorehdr_len(facts.cpus.len(), ram.len())
                    .ok_or(PlanError::Overflow("elfcorehdr"))?,
            )
        }
        LoadKind::Normal => None,
    };

    let window = match req.kind {
        LoadKind::Crash => crash_window(&crash)?,
        LoadKind::Normal => {
            // The first System RAM range that can hold a rough total.
            let rough = kernel_memsz
                .saturating_add(initrd_len)
                .saturating_add(MAX_DTB_SIZE as u64 + KERNEL_ALIGN + 4 * page);
            facts
                .iomem
                .system_ram()
                .into_iter()
                .find(|r| {
                    let base = align_up(r.start.get(), KERNEL_ALIGN).unwrap_or(u64::MAX);
                    base.checked_add(rough)
                        .is_some_and(|e| e <= r.last.get().saturating_add(1))
                })
                .ok_or(PlanError::NoRoom { needed: rough })?
        }
    };

    let mut segs: Vec<Segment> = Vec::new();
    let base = align_up(window.start.get(), KERNEL_ALIGN).ok_or(PlanError::Overflow("kernel"))?;
    let kernel_mem = PhysAddr(
        base.checked_add(hdr.text_offset)
            .ok_or(PlanError::Overflow("kernel"))?,
    );
    segs.push(segment(
        Purpose::Kernel,
        kernel_mem,
        req.kernel.raw.clone(),
        kernel_memsz,
        page,
    )?);
    let next = |segs: &[Segment], what: &'static str| -> Result<PhysAddr, PlanError> {
        let last = segs.last().ok_or(PlanError::Overflow(what))?;
        let end = last
            .mem
            .get()
            .checked_add(last.memsz)
            .ok_or(PlanError::Overflow(what))?;
        Ok(PhysAddr(
            align_up(end, page).ok_or(PlanError::Overflow(what))?,
        ))
    };
    let mut initrd_at = None;
    if let Some(i) = req.initrd {
        let at = next(&segs, "initrd")?;
        initrd_at = Some((at, i.len() as u64));
        segs.push(segment(
            Purpose::Initrd,
            at,
            i.to_vec(),
            i.len() as u64,
            page,
        )?);
    }
    let mut elfcorehdr = None;
    if let Some((_, _, len)) = elf_len {
        let at = next(&segs, "elfcorehdr")?;
        let bytes = build_elfcorehdr(facts, &crash, at)?;
        debug_assert_eq!(bytes.len(), len);
        elfcorehdr = Some(
            PhysRange::from_start_size(at, bytes.len() as u64)
                .ok_or(PlanError::Overflow("elfcorehdr"))?,
        );
        segs.push(segment(Purpose::ElfCoreHdr, at, bytes, len as u64, page)?);
    }
    let usable = if req.kind == LoadKind::Crash {
        crash.clone()
    } else {
        Vec::new()
    };
    let edits = ChosenEdits {
        bootargs: req.cmdline.to_string(),
        initrd: initrd_at,
        elfcorehdr,
        usable: usable.clone(),
        seeds: req.seeds.clone(),
    };
    let dtb_at = next(&segs, "DTB")?;
    let dtb = edit_dtb(&facts.fdt, &edits)?;
    let dtb_len = dtb.len() as u64;
    segs.push(segment(Purpose::Dtb, dtb_at, dtb, dtb_len, page)?);

    let purg_at = next(&segs, "purgatory")?;
    let handoff = Handoff {
        kernel_entry: kernel_mem,
        dtb: dtb_at,
        digests: segs
            .iter()
            .map(|s| (s.mem, s.bytes_len, s.sha256))
            .collect(),
        console: crate::purgatory::pl011_console(&facts.fdt),
    };
    let p = purgatory
        .build(purg_at, &handoff)
        .map_err(PlanError::Purgatory)?;
    let entry = purg_at
        .checked_add(p.entry_offset)
        .ok_or(PlanError::Overflow("purgatory"))?;
    let slot = purgatory.slot_size().max(p.bytes.len() as u64);
    segs.push(segment(Purpose::Purgatory, purg_at, p.bytes, slot, page)?);

    let last = segs.last().ok_or(PlanError::Overflow("purgatory"))?;
    let end = last
        .mem
        .get()
        .checked_add(last.memsz)
        .ok_or(PlanError::Overflow("purgatory"))?;
    let control = if req.kind == LoadKind::Crash { page } else { 0 };
    let needed = (end - window.start.get())
        .checked_add(control)
        .ok_or(PlanError::Overflow("plan"))?;
    let available = window.size().unwrap_or(u64::MAX);
    if needed > available {
        return match req.kind {
            LoadKind::Crash => Err(PlanError::ReservationTooSmall {
                range: window,
                needed,
                needed_mib: needed.div_ceil(1 << 20),
                available,
                available_mib: available >> 20,
            }),
            LoadKind::Normal => Err(PlanError::NoRoom { needed }),
        };
    }
    debug_assert!(segs.len() <= KEXEC_SEGMENT_MAX);
    Ok(Plan {
        kind: req.kind,
        arch: "aarch64",
        entry,
        kernel_entry: kernel_mem,
        dtb: dtb_at,
        window,
        free_after: available - needed + control,
        usable_memory: usable,
        elfcorehdr,
        cmdline: req.cmdline.to_string(),
        kernel_containers: req.kernel.containers.clone(),
        purgatory: purgatory.name(),
        purgatory_verifies: p.verifies,
        segments: segs,
    })
}

/// Renders the plan as the `--dry-run` table.
pub fn render(plan: &Plan) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let kind = match plan.kind {
        LoadKind::Crash => "crash (kexec_load, KEXEC_ON_CRASH)",
        LoadKind::Normal => "normal (kexec_load)",
    };
    let _ = writeln!(
        s,
        "plan: {kind}, {} segments in {}",
        plan.segments.len(),
        plan.window
    );
    let _ = writeln!(
        s,
        "{:<11} {:>18} {:>12} {:>12}  sha256",
        "segment", "mem", "memsz", "bufsz"
    );
    for g in &plan.segments {
        let name = match g.purpose {
            Purpose::Kernel => "kernel",
            Purpose::Initrd => "initrd",
            Purpose::ElfCoreHdr => "elfcorehdr",
            Purpose::Dtb => "dtb",
            Purpose::Purgatory => "purgatory",
        };
        let _ = writeln!(
            s,
            "{name:<11} {:>#18x} {:>#12x} {:>12}  {}",
            g.mem.get(),
            g.memsz,
            g.bytes_len,
            crate::hex(&g.sha256)
        );
    }
    let _ = writeln!(
        s,
        "entry {:#x} (purgatory: {}), kernel {:#x}, dtb {:#x}",
        plan.entry.get(),
        plan.purgatory,
        plan.kernel_entry.get(),
        plan.dtb.get()
    );
    if let Some(e) = plan.elfcorehdr {
        let _ = writeln!(s, "linux,elfcorehdr {e}");
    }
    for u in &plan.usable_memory {
        let _ = writeln!(s, "linux,usable-memory-range {u}");
    }
    let _ = writeln!(s, "free after segments: {} bytes", plan.free_after);
    let _ = writeln!(s, "bootargs: {}", plan.cmdline);
    if !plan.purgatory_verifies {
        let _ = writeln!(s, "note: the purgatory does not verify segment digests yet");
    }
    s
}
