//! ELF64 cores: a copy of `/proc/vmcore`, `makedumpfile -E`, or QEMU's
//! `dump-guest-memory` (without `-z/-l/-s`).
//!
//! Layout read (`include/uapi/linux/elf.h`): the 64-byte `Elf64_Ehdr`, then
//! `e_phnum` 56-byte `Elf64_Phdr`s at `e_phoff` (or, when `e_phnum` is
//! `PN_XNUM`, the count in section header 0's `sh_info`, as QEMU writes it
//! for more than 65534 segments). Every `PT_NOTE` is a note segment;
//! every `PT_LOAD` maps `[p_paddr, p_paddr + p_memsz)`, of which the first
//! `p_filesz` bytes are at `p_offset` and the rest read as zero.
//!
//! Physical addresses come from `p_paddr`. QEMU writes the guest-physical
//! address there (`dump/dump.c` `write_elf64_load`: `p_paddr =
//! memory_mapping->phys_addr`) and `p_offset = -1, p_filesz = 0` for
//! memory it filtered out; such segments are not in the dump.
//!
//! Overlaps are normal: kexec-tools and the kernel describe the kernel
//! image with its own `PT_LOAD` inside a System RAM one (both read the same
//! physical memory), and `makedumpfile -E` keeps that segment while cutting
//! the RAM segments around excluded pages, so the two overlap partly (seen:
//! `0x40000000..0x40210000` and `0x40200000..0x42210000`). As in crash and
//! makedumpfile (`paddr_to_offset`), the first `PT_LOAD` in program-header
//! order that holds an address is the one read.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crash_payload::PhysAddr;

use crate::error::ParseError;
use crate::mem::{MemError, PhysMem};
use crate::source::Source;

use super::{
    insert_uncovered, machine_name, summarize_notes, ByteSource, Container, Dump, FormatInfo, NoteSegment,
    PhysRange, EM_AARCH64, ELF_MAGIC, MAX_NOTE_BYTES,
};

/// Size of `Elf64_Ehdr`.
pub const EHDR_SIZE: u64 = 64;
/// Size of `Elf64_Phdr`.
pub const PHDR_SIZE: u64 = 56;
/// Size of `Elf64_Shdr`.
pub const SHDR_SIZE: u64 = 64;
/// `ELFCLASS64`.
pub const ELFCLASS64: u8 = 2;
/// `ELFDATA2LSB`.
pub const ELFDATA2LSB: u8 = 1;
/// `ET_CORE`.
pub const ET_CORE: u16 = 4;
/// `PT_LOAD`.
pub const PT_LOAD: u32 = 1;
/// `PT_NOTE`.
pub const PT_NOTE: u32 = 4;
/// `PN_XNUM`: the real program header count is in section header 0's `sh_info`.
pub const PN_XNUM: u16 = 0xffff;
/// makedumpfile's `DUMP_ELF_INCOMPLETE` `e_flags` bit: the dump was cut short
/// (`makedumpfile.h`).
pub const DUMP_ELF_INCOMPLETE: u32 = 0x1;

/// One `PT_LOAD`, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Load {
    paddr: u64,
    memsz: u64,
    filesz: u64,
    offset: u64,
    /// File offset of its program header, for messages.
    phdr: u64,
}

impl Load {
    fn end(&self) -> u64 {
        // Checked at parse time.
        self.paddr + self.memsz
    }
}

/// An ELF64 core over any byte source.
#[derive(Debug)]
pub struct ElfDump<B: ByteSource> {
    pub(super) bytes: B,
    pub(super) info: FormatInfo,
    inner: Container,
    notes: Vec<NoteSegment>,
    vmcoreinfo: Option<Vec<u8>>,
    ranges: Vec<PhysRange>,
    /// In program-header order.
    loads: Vec<Load>,
    /// Disjoint pieces sorted by address: (start, end, index into `loads`),
    /// each address served by the first load holding it.
    pieces: Vec<(u64, u64, usize)>,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    crash_payload::le::u16_at(b, off).unwrap_or(0)
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    crash_payload::le::u32_at(b, off).unwrap_or(0)
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    crash_payload::le::u64_at(b, off).unwrap_or(0)
}

impl<B: ByteSource> ElfDump<B> {
    /// Parses the ELF header, program headers and notes. Reads no memory
    /// pages beyond the headers and the note segments.
    pub fn parse(bytes: B) -> Result<Self, ParseError> {
        let eh = bytes.bytes(0, EHDR_SIZE, "an ELF64 header")?.into_owned();
        if !eh.starts_with(ELF_MAGIC) {
            return Err(ParseError::new(0, "ELF magic \\x7fELF"));
        }
        if eh[4] != ELFCLASS64 {
            return Err(ParseError::new(
                4,
                format!("ELFCLASS64 (2), found EI_CLASS {} (only 64-bit cores are read)", eh[4]),
            ));
        }
        if eh[5] != ELFDATA2LSB {
            return Err(ParseError::new(
                5,
                format!("ELFDATA2LSB (1), found EI_DATA {} (only little-endian cores are read)", eh[5]),
            ));
        }
        let e_type = u16_at(&eh, 16);
        if e_type != ET_CORE {
            return Err(ParseError::new(16, format!("e_type ET_CORE (4), found {e_type}")));
        }
        let e_machine = u16_at(&eh, 18);
        if e_machine != EM_AARCH64 {
            return Err(ParseError::new(
                18,
                format!(
                    "e_machine EM_AARCH64 (183), found {e_machine} ({}): only aarch64 dumps are supported",
                    machine_name(e_machine)
                ),
            ));
        }
        let e_phoff = u64_at(&eh, 32);
        let e_shoff = u64_at(&eh, 40);
        let e_flags = u32_at(&eh, 48);
        let e_phentsize = u16_at(&eh, 54);
        let e_phnum = u16_at(&eh, 56);
        if u64::from(e_phentsize) != PHDR_SIZE {
            return Err(ParseError::new(
                54,
                format!("e_phentsize {PHDR_SIZE}, found {e_phentsize}"),
            ));
        }
        let phnum: u64 = if e_phnum == PN_XNUM {
            let sh = bytes.bytes(
                e_shoff,
                SHDR_SIZE,
                "section header 0 (e_phnum is PN_XNUM: it holds the program header count)",
            )?;
            u64::from(u32_at(&sh, 44))
        } else {
            u64::from(e_phnum)
        };
        if phnum == 0 {
            return Err(ParseError::new(56, "at least one program header, found e_phnum 0"));
        }
        let table_len = phnum.checked_mul(PHDR_SIZE).ok_or_else(|| {
            ParseError::new(56, format!("a program header count that fits, found {phnum}"))
        })?;
        let table = bytes
            .bytes(
                e_phoff,
                table_len,
                &format!("the program header table ({phnum} entries at e_phoff {e_phoff:#x})"),
            )?
            .into_owned();

        let incomplete = e_flags & DUMP_ELF_INCOMPLETE != 0;
        let file_len = bytes.len();
        let mut note_ranges = Vec::new();
        let mut loads = Vec::new();
        let mut note_total = 0u64;
        for i in 0..phnum {
            // In bounds: the table is phnum * PHDR_SIZE bytes.
            let at = (i * PHDR_SIZE) as usize;
            let ph = &table[at..at + PHDR_SIZE as usize];
            let phdr = e_phoff + i * PHDR_SIZE;
            let p_type = u32_at(ph, 0);
            let p_offset = u64_at(ph, 8);
            let p_paddr = u64_at(ph, 24);
            let p_filesz = u64_at(ph, 32);
            let p_memsz = u64_at(ph, 40);
            match p_type {
                PT_NOTE => {
                    note_total = note_total.saturating_add(p_filesz);
                    if note_total > MAX_NOTE_BYTES {
                        return Err(ParseError::new(
                            phdr,
                            format!(
                                "PT_NOTE segments of at most {MAX_NOTE_BYTES} bytes together, found p_filesz {p_filesz:#x}"
                            ),
                        ));
                    }
                    note_ranges.push((p_offset, p_filesz, phdr));
                }
                PT_LOAD => {
                    if p_memsz == 0 {
                        continue;
                    }
                    if p_filesz == 0 && p_offset == u64::MAX {
                        // QEMU: memory filtered out of the dump.
                        continue;
                    }
                    if p_filesz > p_memsz {
                        return Err(ParseError::new(
                            phdr,
                            format!(
                                "PT_LOAD {i}: p_filesz ({p_filesz:#x}) at most p_memsz ({p_memsz:#x})"
                            ),
                        ));
                    }
                    if p_paddr.checked_add(p_memsz).is_none() {
                        return Err(ParseError::new(
                            phdr,
                            format!(
                                "PT_LOAD {i}: p_paddr {p_paddr:#x} + p_memsz {p_memsz:#x} within the 64-bit address space"
                            ),
                        ));
                    }
                    let mut filesz = p_filesz;
                    match p_offset.checked_add(p_filesz) {
                        // makedumpfile -E writes p_offset 0, p_filesz 0 for
                        // a segment whose pages were all excluded.
                        _ if p_filesz == 0 => {}
                        Some(end) if end <= file_len => {}
                        _ if incomplete => {
                            // makedumpfile marked the dump incomplete: keep
                            // what was written.
                            filesz = file_len.saturating_sub(p_offset).min(p_filesz);
                        }
                        _ => {
                            return Err(ParseError::new(
                                phdr,
                                format!(
                                    "PT_LOAD {i}: p_offset {p_offset:#x} + p_filesz {p_filesz:#x} within the file ({file_len} bytes)"
                                ),
                            ))
                        }
                    }
                    loads.push(Load {
                        paddr: p_paddr,
                        memsz: p_memsz,
                        filesz,
                        offset: p_offset,
                        phdr,
                    });
                }
                _ => {}
            }
        }

        let (pieces, shadowed) = resolve_overlaps(&loads);

        let mut notes = Vec::with_capacity(note_ranges.len());
        for (off, size, phdr) in note_ranges {
            let data = bytes
                .bytes(
                    off,
                    size,
                    &format!("PT_NOTE data (program header at {phdr:#x})"),
                )?
                .into_owned();
            notes.push(NoteSegment {
                file_offset: off,
                data,
            });
        }
        let summary = summarize_notes(&notes);
        let container = if summary.qemu {
            Container::QemuElf
        } else {
            Container::Elf
        };
        let mut description = String::new();
        let _ = write!(
            description,
            "{} ({} PT_LOAD, {} PT_NOTE)",
            if summary.qemu {
                "ELF64 core from QEMU dump-guest-memory"
            } else {
                "ELF64 core"
            },
            loads.len(),
            notes.len()
        );
        if shadowed > 0 {
            let _ = write!(
                description,
                ", {shadowed} PT_LOAD overlapping an earlier one (the earlier is read)"
            );
        }
        if incomplete {
            description.push_str(", marked incomplete by makedumpfile");
        }
        // Ranges: the pieces, merged where they touch.
        let mut ranges: Vec<PhysRange> = Vec::new();
        for &(start, end, _) in &pieces {
            match ranges.last_mut() {
                Some(r) if r.start.get() + r.size == start => r.size += end - start,
                _ => ranges.push(PhysRange {
                    start: PhysAddr(start),
                    size: end - start,
                }),
            }
        }
        Ok(ElfDump {
            bytes,
            info: FormatInfo {
                container,
                description,
                arch: "aarch64".to_string(),
                page_size: None,
                dump_level: None,
                nr_cpus: None,
                release: None,
            },
            inner: container,
            notes,
            vmcoreinfo: summary.vmcoreinfo,
            ranges,
            loads,
            pieces,
        })
    }
}

/// Splits the loads into disjoint pieces, each address going to the first
/// load (in program-header order) that holds it. Returns the pieces sorted by
/// address and how many loads overlap an earlier one.
fn resolve_overlaps(loads: &[Load]) -> (Vec<(u64, u64, usize)>, usize) {
    let mut map: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    let mut shadowed = 0;
    for (i, l) in loads.iter().enumerate() {
        if map
            .range(..l.end())
            .next_back()
            .is_some_and(|(_, (e, _))| *e > l.paddr)
        {
            shadowed += 1;
        }
        insert_uncovered(&mut map, l.paddr, l.end(), |_| i);
    }
    (map.into_iter().map(|(s, (e, i))| (s, e, i)).collect(), shadowed)
}

impl<B: ByteSource> PhysMem for ElfDump<B> {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr
                .get()
                .checked_add(done as u64)
                .ok_or(MemError::NotPresent(addr))?;
            // The piece holding a.
            let idx = self.pieces.partition_point(|p| p.0 <= a);
            let Some(&(_, end, li)) = idx.checked_sub(1).and_then(|i| self.pieces.get(i)) else {
                return Err(MemError::NotPresent(PhysAddr(a)));
            };
            if a >= end {
                return Err(MemError::NotPresent(PhysAddr(a)));
            }
            let Some(l) = self.loads.get(li) else {
                return Err(MemError::NotPresent(PhysAddr(a)));
            };
            let in_seg = a - l.paddr;
            let want = (buf.len() - done) as u64;
            let n = want.min(end - a);
            let dst = &mut buf[done..done + n as usize];
            // File-backed part, then zeros.
            let file_n = l.filesz.saturating_sub(in_seg).min(n);
            if file_n > 0 {
                let off = l.offset + in_seg;
                let src = self.bytes.bytes(off, file_n, "PT_LOAD data").map_err(|e| {
                    MemError::Corrupt {
                        addr: PhysAddr(a),
                        why: format!(
                            "PT_LOAD at program header {:#x}: {}: {}",
                            l.phdr,
                            self.bytes.describe(off),
                            e.expected
                        ),
                    }
                })?;
                dst[..file_n as usize].copy_from_slice(&src);
            }
            dst[file_n as usize..].fill(0);
            done += n as usize;
        }
        Ok(())
    }
}

impl<B: ByteSource> Dump for ElfDump<B> {
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
        &self.ranges
    }
    fn source(&self) -> &Source {
        self.bytes.source()
    }
    fn file_extent(&self, addr: PhysAddr, len: u64) -> Option<u64> {
        let a = addr.get();
        let idx = self.pieces.partition_point(|p| p.0 <= a);
        let &(_, end, li) = self.pieces.get(idx.checked_sub(1)?)?;
        let l = self.loads.get(li)?;
        let in_seg = a.checked_sub(l.paddr)?;
        if a.checked_add(len)? > end || in_seg.checked_add(len)? > l.filesz {
            return None;
        }
        self.bytes.file_offset(l.offset.checked_add(in_seg)?, len)
    }
    fn inner_container(&self) -> Container {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::super::build::{self, ElfBuilder, ElfLoad};
    use super::super::from_source;
    use super::*;
    use crate::error::Error;

    fn parse(bytes: Vec<u8>) -> Result<Box<dyn Dump>, ParseError> {
        match from_source(Source::from_vec("t.elf", bytes)) {
            Ok(d) => Ok(d),
            Err(Error::Parse { err, .. }) => Err(err),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    fn sample() -> ElfBuilder {
        ElfBuilder::new()
            .note_segment(build::kernel_notes(2, true))
            .load(ElfLoad::new(0x4000_0000, build::pattern(0x4000_0000, 0x3000)))
            .load(ElfLoad::new(0x4000_3000, build::pattern(0x4000_3000, 0x1000)).memsz(0x3000))
            .load(ElfLoad::new(0x5000_0000, build::pattern(0x5000_0000, 0x2000)))
    }

    #[test]
    fn reads_notes_loads_and_vmcoreinfo() {
        let d = parse(sample().build()).unwrap();
        assert_eq!(d.info().container, Container::Elf);
        assert_eq!(d.info().arch, "aarch64");
        assert_eq!(d.note_segments().len(), 1);
        assert_eq!(d.vmcoreinfo(), Some(build::VMCOREINFO_TEXT));
        assert_eq!(
            d.ranges(),
            &[
                PhysRange { start: PhysAddr(0x4000_0000), size: 0x6000 },
                PhysRange { start: PhysAddr(0x5000_0000), size: 0x2000 },
            ]
        );
        // Spanning two segments.
        let mut buf = vec![0u8; 0x20];
        d.read_phys(PhysAddr(0x4000_2ff0), &mut buf).unwrap();
        assert_eq!(&buf[..0x10], &build::pattern(0x4000_2ff0, 0x10)[..]);
        assert_eq!(&buf[0x10..], &build::pattern(0x4000_3000, 0x10)[..]);
        // The tail beyond p_filesz reads as zero, also across the boundary.
        d.read_phys(PhysAddr(0x4000_3ff8), &mut buf[..0x10]).unwrap();
        assert_eq!(&buf[..8], &build::pattern(0x4000_3ff8, 8)[..]);
        assert_eq!(&buf[8..0x10], &[0; 8]);
        // Gaps are not present.
        assert_eq!(
            d.read_phys(PhysAddr(0x4000_5ff8), &mut buf[..0x10]),
            Err(MemError::NotPresent(PhysAddr(0x4000_6000)))
        );
        assert_eq!(
            d.read_u64(PhysAddr(0x1000)),
            Err(MemError::NotPresent(PhysAddr(0x1000)))
        );
        assert_eq!(d.read_u64(PhysAddr(0x5000_0008)).unwrap(), u64::from_le_bytes(build::pattern(0x5000_0008, 8).try_into().unwrap()));
    }

    #[test]
    fn qemu_notes_make_a_qemu_elf() {
        let d = parse(
            ElfBuilder::new()
                .note_segment(build::qemu_notes(2))
                .load(ElfLoad::new(0x4000_0000, vec![1; 0x1000]))
                .build(),
        )
        .unwrap();
        assert_eq!(d.info().container, Container::QemuElf);
        assert_eq!(d.inner_container(), Container::QemuElf);
        assert_eq!(d.vmcoreinfo(), Some(build::VMCOREINFO_TEXT));
    }

    #[test]
    fn qemu_filtered_segment_is_absent_and_pn_xnum_is_followed() {
        let b = ElfBuilder::new()
            .note_segment(build::qemu_notes(1))
            .load(ElfLoad::new(0x4000_0000, vec![7; 0x1000]))
            .load(ElfLoad::new(0x6000_0000, vec![]).memsz(0x1000).offset(u64::MAX))
            .pn_xnum(true);
        let d = parse(b.build()).unwrap();
        assert_eq!(d.ranges().len(), 1);
        assert_eq!(d.read_u64(PhysAddr(0x4000_0000)).unwrap(), 0x0707_0707_0707_0707);
        assert!(d.read_u64(PhysAddr(0x6000_0000)).is_err());
    }

    #[test]
    fn overlapping_loads_read_the_first_in_header_order() {
        // The kernel-image alias inside a RAM segment, as /proc/vmcore has.
        let alias = sample()
            .load(ElfLoad::new(0x4000_1000, build::pattern(0x4000_1000, 0x1000)))
            .build();
        let d = parse(alias).unwrap();
        assert_eq!(d.ranges().len(), 2);
        assert!(d.info().description.contains("4 PT_LOAD") && d.info().description.contains("1 PT_LOAD overlapping"), "{}", d.info().description);

        // A partial overlap as makedumpfile -E writes it; make the later
        // segment's bytes differ so the test sees which one is read.
        let d = parse(
            sample()
                .load(ElfLoad::new(0x4000_5000, vec![0xab; 0x2000]))
                .build(),
        )
        .unwrap();
        // 0x4000_5000..0x4000_6000 belongs to the earlier segment (zero tail).
        assert_eq!(d.read_u64(PhysAddr(0x4000_5000)).unwrap(), 0);
        // Past it, the later segment.
        assert_eq!(d.read_u64(PhysAddr(0x4000_6000)).unwrap(), 0xabab_abab_abab_abab);
        let mut buf = vec![0u8; 0x2000];
        d.read_phys(PhysAddr(0x4000_5000), &mut buf).unwrap();
        assert!(buf[..0x1000].iter().all(|&b| b == 0) && buf[0x1000..].iter().all(|&b| b == 0xab));
        assert_eq!(
            d.ranges(),
            &[
                PhysRange { start: PhysAddr(0x4000_0000), size: 0x7000 },
                PhysRange { start: PhysAddr(0x5000_0000), size: 0x2000 },
            ]
        );

        // An earlier segment listed after a later one in address order.
        let d = parse(
            ElfBuilder::new()
                .load(ElfLoad::new(0x4020_0000, vec![1; 0x2000]))
                .load(ElfLoad::new(0x4000_0000, vec![2; 0x20_1000]))
                .build(),
        )
        .unwrap();
        assert_eq!(d.read_u64(PhysAddr(0x4020_0000)).unwrap(), 0x0101_0101_0101_0101);
        assert_eq!(d.read_u64(PhysAddr(0x401f_fff8)).unwrap(), 0x0202_0202_0202_0202);
        assert_eq!(d.ranges(), &[PhysRange { start: PhysAddr(0x4000_0000), size: 0x20_2000 }]);
    }

    #[test]
    fn header_fields_are_checked_with_offsets() {
        let good = sample().build();
        let cases: [(usize, u8, u64, &str); 5] = [
            (0, 0, 0, "magic"),
            (4, 1, 4, "ELFCLASS64"),
            (5, 2, 5, "ELFDATA2LSB"),
            (16, 2, 16, "ET_CORE"),
            (54, 57, 54, "e_phentsize"),
        ];
        for (at, v, off, what) in cases {
            let mut b = good.clone();
            b[at] = v;
            let r = match from_source(Source::from_vec("t", b)) {
                Err(Error::Parse { err, .. }) => err,
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("accepted a bad {what}"),
            };
            if at == 0 {
                assert_eq!(r.offset, 0);
                continue;
            }
            assert_eq!(r.offset, off, "{what}");
            assert!(r.expected.contains(what), "{r}");
        }
        let x86 = sample().machine(62).build();
        let e = parse(x86).unwrap_err();
        assert_eq!(e.offset, 18);
        assert!(e.expected.contains("x86_64") && e.expected.contains("only aarch64"), "{e}");
    }

    #[test]
    fn absurd_counts_and_offsets_are_rejected() {
        let good = sample().build();
        let mut b = good.clone();
        b[56..58].copy_from_slice(&0xfffeu16.to_le_bytes());
        let e = parse(b).unwrap_err();
        assert_eq!(e.offset, 64);
        assert!(e.expected.contains("program header table"), "{e}");

        let mut b = good.clone();
        b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse(b).unwrap_err().offset, u64::MAX);

        // First PT_LOAD's p_filesz far past the end.
        let mut b = good.clone();
        b[120 + 32..120 + 40].copy_from_slice(&(1u64 << 60).to_le_bytes());
        b[120 + 40..120 + 48].copy_from_slice(&(1u64 << 61).to_le_bytes());
        let e = parse(b).unwrap_err();
        assert_eq!(e.offset, 120);
        assert!(e.expected.contains("within the file"), "{e}");

        // p_paddr + p_memsz wraps.
        let mut b = good.clone();
        b[120 + 24..120 + 32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse(b).unwrap_err().offset, 120);

        // p_filesz > p_memsz.
        let mut b = good.clone();
        b[120 + 40..120 + 48].copy_from_slice(&1u64.to_le_bytes());
        let e = parse(b).unwrap_err();
        assert!(e.expected.contains("at most p_memsz"), "{e}");

        // A huge PT_NOTE.
        let mut b = good;
        b[64 + 32..64 + 40].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let e = parse(b).unwrap_err();
        assert_eq!(e.offset, 64);
    }

    #[test]
    fn makedumpfile_excluded_segment_reads_as_zero() {
        // makedumpfile -E: a segment whose pages were all excluded has
        // p_offset 0 and p_filesz 0 (seen in a -d 31 conversion).
        let d = parse(
            sample()
                .load(ElfLoad::new(0x6000_0000, vec![]).memsz(0x4000).offset(0))
                .build(),
        )
        .unwrap();
        assert_eq!(d.read_u64(PhysAddr(0x6000_3ff8)).unwrap(), 0);
        // Any other offset past the end with bytes to read is refused.
        let e = parse(
            sample()
                .load(ElfLoad::new(0x6000_0000, vec![1]).memsz(0x4000).offset(1 << 40))
                .build(),
        )
        .unwrap_err();
        assert!(e.expected.contains("within the file"), "{e}");
    }

    #[test]
    fn incomplete_makedumpfile_elf_keeps_what_was_written() {
        let mut b = sample().flags(DUMP_ELF_INCOMPLETE).build();
        let len = b.len();
        b.truncate(len - 0x1000);
        let d = parse(b).unwrap();
        assert!(d.info().description.contains("incomplete"));
        assert!(d.read_u64(PhysAddr(0x4000_0000)).is_ok());
        // The last segment's cut-off part reads as zeros (p_filesz clamped).
        assert_eq!(d.read_u64(PhysAddr(0x5000_1000)).unwrap(), 0);
    }

    #[test]
    fn truncation_at_every_header_boundary_is_an_error() {
        let good = sample().build();
        let data_start = good.len() - 0x6000;
        for cut in [0usize, 1, 4, 16, 63, 64, 100, 120, 176, 232, 288, data_start - 1, data_start] {
            match from_source(Source::from_vec("t", good[..cut].to_vec())) {
                Ok(_) => panic!("accepted a file cut at {cut}"),
                Err(Error::Parse { err, .. }) => assert!(err.offset <= good.len() as u64, "{err}"),
                Err(e) => panic!("{e}"),
            }
        }
    }
}
