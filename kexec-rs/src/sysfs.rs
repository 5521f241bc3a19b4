//! Small sysfs and procfs files: CPU lists, crash-notes addresses,
//! `/sys/kernel/vmcoreinfo`, and the VMCOREINFO note inside `/proc/kcore`.
//!
//! All pure functions over the file contents.

use crash_payload::note::NoteIter;
use crash_payload::vmcoreinfo::{VmcoreInfo, VMCOREINFO_NAME};
use crash_payload::{le, PhysAddr};
use serde::Serialize;

/// Why a small file could not be read as expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SysfsError {
    /// A CPU list (`0-3,5`) that does not parse.
    #[error("{file}: bad CPU list {text:?}: {reason}")]
    CpuList {
        /// The file.
        file: String,
        /// Its text.
        text: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value that is not the number the file should hold.
    #[error("{file}: expected {expected}, found {text:?}")]
    Value {
        /// The file.
        file: String,
        /// What was expected.
        expected: &'static str,
        /// Its text.
        text: String,
    },
    /// `/proc/kcore` headers that cannot be walked.
    #[error("/proc/kcore at offset {offset:#x}: {reason}")]
    Kcore {
        /// Offset in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A VMCOREINFO value missing or malformed.
    #[error("VMCOREINFO: {0}")]
    Vmcoreinfo(String),
}

/// Largest CPU number believed in a list (bounds memory use on bad input).
pub const MAX_CPUS: u32 = 65536;

/// Parses a kernel CPU list (`cpulist_parse` format: `0-3,5,7-8`; empty = none).
pub fn parse_cpu_list(file: &str, text: &str) -> Result<Vec<u32>, SysfsError> {
    let t = text.trim();
    let bad = |reason| SysfsError::CpuList {
        file: file.to_string(),
        text: t.to_string(),
        reason,
    };
    let mut out = Vec::new();
    if t.is_empty() {
        return Ok(out);
    }
    for part in t.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: u32 = a.trim().parse().map_err(|_| bad("not a number"))?;
        let b: u32 = b.trim().parse().map_err(|_| bad("not a number"))?;
        if b < a {
            return Err(bad("range end below start"));
        }
        if b >= MAX_CPUS {
            return Err(bad("CPU number too large"));
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Parses `cpuN/crash_notes`: a hex physical address without `0x`
/// (`drivers/base/cpu.c`, `"%llx\n"`).
pub fn parse_crash_notes(file: &str, text: &str) -> Result<PhysAddr, SysfsError> {
    let t = text.trim();
    let h = t.strip_prefix("0x").unwrap_or(t);
    u64::from_str_radix(h, 16)
        .ok()
        .filter(|_| !h.is_empty())
        .map(PhysAddr)
        .ok_or_else(|| SysfsError::Value {
            file: file.to_string(),
            expected: "a hex physical address",
            text: t.to_string(),
        })
}

/// Parses `cpuN/crash_notes_size`: decimal (`"%zu\n"`).
pub fn parse_decimal(file: &str, text: &str) -> Result<u64, SysfsError> {
    let t = text.trim();
    t.parse().map_err(|_| SysfsError::Value {
        file: file.to_string(),
        expected: "a decimal size",
        text: t.to_string(),
    })
}

/// Where the running kernel keeps its VMCOREINFO note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VmcoreinfoLocation {
    /// Physical address of the note (header included).
    #[serde(serialize_with = "crate::ser_phys")]
    pub paddr: PhysAddr,
    /// Bytes (`VMCOREINFO_NOTE_SIZE`, which includes a terminator header).
    pub size: u64,
}

/// Parses `/sys/kernel/vmcoreinfo`: `"%pa %x\n"` — the address `0x`-prefixed
/// and zero-padded, the size hex without prefix (`kernel/ksysfs.c`).
/// Older kernels printed `"%lx %x"`; both are accepted.
pub fn parse_vmcoreinfo_location(text: &str) -> Result<VmcoreinfoLocation, SysfsError> {
    let t = text.trim();
    let bad = || SysfsError::Value {
        file: "/sys/kernel/vmcoreinfo".into(),
        expected: "`<paddr> <size>` in hex",
        text: t.to_string(),
    };
    let mut it = t.split_whitespace();
    let (Some(a), Some(s), None) = (it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    let hex = |v: &str| {
        let v = v.strip_prefix("0x").unwrap_or(v);
        if v.is_empty() {
            None
        } else {
            u64::from_str_radix(v, 16).ok()
        }
    };
    let paddr = hex(a).ok_or_else(bad)?;
    let size = hex(s).ok_or_else(bad)?;
    if paddr == 0 || size == 0 {
        return Err(bad());
    }
    Ok(VmcoreinfoLocation {
        paddr: PhysAddr(paddr),
        size,
    })
}

/// Bytes of `/proc/kcore` to read to reach its notes (headers and notes sit
/// in the first page(s); the VMCOREINFO note is at most a page).
pub const KCORE_HEAD_BYTES: usize = 64 * 1024;

/// Extracts the VMCOREINFO note's text from the start of `/proc/kcore`
/// (`fs/proc/kcore.c` adds it since 4.19). `head` may be a prefix of the file.
pub fn kcore_vmcoreinfo(head: &[u8]) -> Result<String, SysfsError> {
    let kerr = |offset: u64, reason: &str| SysfsError::Kcore {
        offset,
        reason: reason.to_string(),
    };
    if head.get(0..4) != Some(b"\x7fELF") {
        return Err(kerr(0, "no ELF magic"));
    }
    if head.get(4) != Some(&2) || head.get(5) != Some(&1) {
        return Err(kerr(4, "not a little-endian ELF64 file"));
    }
    let phoff = le::u64_at(head, 32).ok_or_else(|| kerr(32, "truncated ELF header"))?;
    let phentsize =
        u64::from(le::u16_at(head, 54).ok_or_else(|| kerr(54, "truncated ELF header"))?);
    let phnum = u64::from(le::u16_at(head, 56).ok_or_else(|| kerr(56, "truncated ELF header"))?);
    if phentsize < 56 {
        return Err(kerr(54, "e_phentsize below 56"));
    }
    for i in 0..phnum {
        let o = phentsize
            .checked_mul(i)
            .and_then(|x| x.checked_add(phoff))
            .ok_or_else(|| kerr(phoff, "program header offset overflows"))?;
        let ou = usize::try_from(o).map_err(|_| kerr(o, "program header beyond the bytes read"))?;
        let p_type =
            le::u32_at(head, ou).ok_or_else(|| kerr(o, "program header beyond the bytes read"))?;
        if p_type != crash_payload::elfcorehdr::PT_NOTE {
            continue;
        }
        let (Some(off), Some(sz)) = (le::u64_at(head, ou + 8), le::u64_at(head, ou + 32)) else {
            return Err(kerr(o, "truncated PT_NOTE header"));
        };
        let notes = usize::try_from(off)
            .ok()
            .zip(usize::try_from(sz).ok())
            .and_then(|(a, n)| head.get(a..a.checked_add(n)?))
            .ok_or_else(|| kerr(off, "PT_NOTE data beyond the bytes read"))?;
        for n in NoteIter::new(notes) {
            let n = n.map_err(|e| kerr(off, &e.to_string()))?;
            if n.name == VMCOREINFO_NAME {
                let v = VmcoreInfo::parse(n.desc)
                    .map_err(|e| kerr(off + n.desc_offset() as u64, &e.to_string()))?;
                return Ok(v.text().to_string());
            }
        }
    }
    Err(SysfsError::Vmcoreinfo(
        "/proc/kcore has no VMCOREINFO note (kernel older than 4.19?)".into(),
    ))
}

/// What the crashed kernel's address layout is, from its VMCOREINFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KernelLayout {
    /// `NUMBER(VA_BITS)`.
    pub va_bits: u32,
    /// `NUMBER(kimage_voffset)`: kernel-image virtual minus physical.
    pub kimage_voffset: u64,
    /// `NUMBER(PHYS_OFFSET)` (`memstart_addr`; may be "negative" with
    /// linear-map randomization, kept as its 64-bit pattern).
    pub phys_offset: u64,
    /// `PAGESIZE`.
    pub page_size: u64,
    /// `SYMBOL(_stext)` when present (a cross-check on `Kernel code`).
    pub stext: Option<u64>,
}

impl KernelLayout {
    /// Reads the arm64 layout numbers from VMCOREINFO text.
    pub fn from_vmcoreinfo(text: &str) -> Result<KernelLayout, SysfsError> {
        let v = VmcoreInfo::parse(text.as_bytes())
            .map_err(|e| SysfsError::Vmcoreinfo(e.to_string()))?;
        let num = |k: &str| -> Result<i64, SysfsError> {
            match v.number(k) {
                Some(Ok(n)) => Ok(n),
                Some(Err(e)) => Err(SysfsError::Vmcoreinfo(format!("NUMBER({k}): {e}"))),
                None => Err(SysfsError::Vmcoreinfo(format!(
                    "NUMBER({k}) missing (not an arm64 kernel?)"
                ))),
            }
        };
        let va_bits = num("VA_BITS")?;
        let va_bits = u32::try_from(va_bits)
            .ok()
            .filter(|b| (36..=52).contains(b))
            .ok_or_else(|| {
                SysfsError::Vmcoreinfo(format!("NUMBER(VA_BITS)={va_bits} is not 36..=52"))
            })?;
        let page_size = match v.page_size() {
            Some(Ok(p)) if p.is_power_of_two() && (4096..=65536).contains(&p) => p,
            Some(Ok(p)) => {
                return Err(SysfsError::Vmcoreinfo(format!(
                    "PAGESIZE={p} is not 4K, 16K or 64K"
                )))
            }
            Some(Err(e)) => return Err(SysfsError::Vmcoreinfo(format!("PAGESIZE: {e}"))),
            None => return Err(SysfsError::Vmcoreinfo("PAGESIZE missing".into())),
        };
        let stext = match v.symbol("_stext") {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => return Err(SysfsError::Vmcoreinfo(format!("SYMBOL(_stext): {e}"))),
            None => None,
        };
        Ok(KernelLayout {
            va_bits,
            kimage_voffset: num("kimage_voffset")? as u64,
            phys_offset: num("PHYS_OFFSET")? as u64,
            page_size,
            stext,
        })
    }

    /// `PAGE_OFFSET = -(1 << VA_BITS)` (`arch/arm64/include/asm/memory.h`):
    /// the start of the linear map.
    pub fn page_offset(&self) -> u64 {
        u64::MAX << self.va_bits
    }

    /// The linear-map address of `pa`: `(pa - PHYS_OFFSET) | PAGE_OFFSET`
    /// (`__phys_to_virt`). `None` when `pa` falls outside the linear map,
    /// whose size is `1 << (VA_BITS - 1)`.
    pub fn phys_to_linear(&self, pa: PhysAddr) -> Option<u64> {
        let off = pa.get().wrapping_sub(self.phys_offset);
        if off >= 1u64 << (self.va_bits - 1) {
            return None;
        }
        Some(self.page_offset() | off)
    }

    /// The kernel-image virtual address of `pa`: `pa + kimage_voffset`
    /// (the inverse of `__pa_symbol`).
    pub fn phys_to_kimage(&self, pa: PhysAddr) -> Option<u64> {
        let v = pa.get().wrapping_add(self.kimage_voffset);
        // Kernel-image addresses live in the upper half.
        (v >> 63 == 1).then_some(v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("possible", "0-1\n").unwrap(), vec![0, 1]);
        assert_eq!(
            parse_cpu_list("online", "0,2-3,5\n").unwrap(),
            vec![0, 2, 3, 5]
        );
        assert_eq!(parse_cpu_list("offline", "\n").unwrap(), Vec::<u32>::new());
        assert_eq!(
            parse_cpu_list("online", "3-1").unwrap_err(),
            SysfsError::CpuList {
                file: "online".into(),
                text: "3-1".into(),
                reason: "range end below start"
            }
        );
        assert!(matches!(
            parse_cpu_list("online", "0-x"),
            Err(SysfsError::CpuList {
                reason: "not a number",
                ..
            })
        ));
        assert!(matches!(
            parse_cpu_list("online", "0-99999999"),
            Err(SysfsError::CpuList {
                reason: "CPU number too large",
                ..
            })
        ));
    }

    #[test]
    fn crash_notes_files() {
        assert_eq!(
            parse_crash_notes("c", "bfe3d000\n").unwrap(),
            PhysAddr(0xbfe3_d000)
        );
        assert_eq!(parse_decimal("s", "424\n").unwrap(), 424);
        assert_eq!(
            parse_crash_notes("cpu0/crash_notes", "zz\n")
                .unwrap_err()
                .to_string(),
            "cpu0/crash_notes: expected a hex physical address, found \"zz\""
        );
    }

    #[test]
    fn vmcoreinfo_location_formats() {
        let want = VmcoreinfoLocation {
            paddr: PhysAddr(0x8157_d000),
            size: 0x1024,
        };
        assert_eq!(
            parse_vmcoreinfo_location("0x000000008157d000 1024\n").unwrap(),
            want
        );
        assert_eq!(parse_vmcoreinfo_location("8157d000 1024\n").unwrap(), want);
        assert!(parse_vmcoreinfo_location("8157d000\n").is_err());
        assert!(parse_vmcoreinfo_location("0 1024\n").is_err());
    }

    pub(crate) const VMCOREINFO: &str = "OSRELEASE=6.1.0-56-arm64\nPAGESIZE=4096\nSYMBOL(_stext)=ffffd0d208010000\nNUMBER(VA_BITS)=48\nNUMBER(kimage_voffset)=0xffffd0d1c7e00000\nNUMBER(PHYS_OFFSET)=0xfffffdac00000000\n";

    #[test]
    fn layout_and_translation() {
        let l = KernelLayout::from_vmcoreinfo(VMCOREINFO).unwrap();
        assert_eq!(l.va_bits, 48);
        assert_eq!(l.page_offset(), 0xffff_0000_0000_0000);
        // Linear-map randomization: memstart_addr is below zero.
        assert_eq!(
            l.phys_to_linear(PhysAddr(0x4000_0000)),
            Some(0xffff_0254_4000_0000)
        );
        assert_eq!(
            l.phys_to_kimage(PhysAddr(0x4021_0000)),
            Some(0xffff_d0d2_0801_0000)
        );
        assert_eq!(l.stext, Some(0xffff_d0d2_0801_0000));
        // Without randomization PHYS_OFFSET is the start of RAM.
        let plain = KernelLayout {
            phys_offset: 0x4000_0000,
            ..l
        };
        assert_eq!(
            plain.phys_to_linear(PhysAddr(0x4000_0000)),
            Some(0xffff_0000_0000_0000)
        );
        assert_eq!(
            plain.phys_to_linear(PhysAddr(0x3fff_ffff)),
            None,
            "below PHYS_OFFSET"
        );
    }

    #[test]
    fn layout_errors_name_the_key() {
        let e = KernelLayout::from_vmcoreinfo("PAGESIZE=4096\nNUMBER(VA_BITS)=48\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "VMCOREINFO: NUMBER(kimage_voffset) missing (not an arm64 kernel?)"
        );
        let e = KernelLayout::from_vmcoreinfo("PAGESIZE=4096\nNUMBER(VA_BITS)=99\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "VMCOREINFO: NUMBER(VA_BITS)=99 is not 36..=52"
        );
    }

    /// A `/proc/kcore` head: ELF header, one PT_NOTE, notes (CORE, VMCOREINFO).
    pub(crate) fn kcore_head(vmcoreinfo: &str) -> Vec<u8> {
        use crash_payload::elfcorehdr::{write_headers, ProgramHeader, EM_AARCH64};
        use crash_payload::note::write_note;
        let mut notes = vec![0u8; 8192];
        let mut n = write_note(&mut notes, b"CORE", 1, &[0u8; 392]).unwrap();
        n += write_note(&mut notes[n..], VMCOREINFO_NAME, 0, vmcoreinfo.as_bytes()).unwrap();
        notes.truncate(n);
        let hdr = 64 + 2 * 56;
        let mut ph = [
            ProgramHeader::note(PhysAddr(0), n as u64),
            ProgramHeader::load(
                PhysAddr(0x4020_0000),
                crash_payload::VirtAddr(0xffff_d0d2_0800_0000),
                0x1a0_0000,
            ),
        ];
        ph[0].p_offset = hdr as u64;
        ph[0].p_paddr = PhysAddr(0);
        let mut out = vec![0u8; hdr];
        write_headers(&mut out, EM_AARCH64, &ph).unwrap();
        out.extend_from_slice(&notes);
        out
    }

    #[test]
    fn kcore_note_is_found() {
        let head = kcore_head(VMCOREINFO);
        assert_eq!(kcore_vmcoreinfo(&head).unwrap(), VMCOREINFO);
        // Cut inside the notes: the error names the PT_NOTE offset.
        let e = kcore_vmcoreinfo(&head[..200]).unwrap_err();
        assert_eq!(
            e,
            SysfsError::Kcore {
                offset: 176,
                reason: "PT_NOTE data beyond the bytes read".into()
            }
        );
        let mut bad = head.clone();
        bad[0] = 0;
        assert_eq!(
            kcore_vmcoreinfo(&bad).unwrap_err(),
            SysfsError::Kcore {
                offset: 0,
                reason: "no ELF magic".into()
            }
        );
    }
}
