//! Targets for `crash-payload`'s parsers (notes, crash-notes buffers,
//! VMCOREINFO, the CPU-map note, elfcorehdr program headers). Each `fn`
//! takes the fuzz bytes; each `seeds_*` gives valid inputs made by the
//! crates' own writers.

use crash_payload::cpumap::{write_desc, CpuEntry, CpuMap, CPU_ONLINE, CPU_PRESENT};
use crash_payload::crash_note::{build, parse, CrashNote};
use crash_payload::elfcorehdr::{read_header, write_headers, ProgramHeader};
use crash_payload::vmcoreinfo::VmcoreInfo;
use crash_payload::{PhysAddr, VirtAddr};
use vmcore_tools::format::build as b;

/// ELF note framing: iterate every note of arbitrary bytes.
pub fn notes(data: &[u8]) {
    for n in crash_payload::note::NoteIter::new(data) {
        let Ok(n) = n else { break };
        assert!(n.desc_offset() + n.desc.len() <= data.len());
        let _ = crash_payload::prstatus::ElfPrstatus::parse(n.desc);
    }
}

/// Seeds: kernel and QEMU note segments.
pub fn seeds_notes() -> Vec<Vec<u8>> {
    vec![b::kernel_notes(2, true), b::qemu_notes(2)]
}

/// The 424-byte per-CPU crash-notes buffer; a saved note must round-trip.
pub fn crash_note(data: &[u8]) {
    if let Ok(CrashNote::Saved(pr)) = parse(data) {
        assert_eq!(parse(&build(&pr)), Ok(CrashNote::Saved(pr)));
    }
}

/// Seeds: a saved buffer and an empty one.
pub fn seeds_crash_note() -> Vec<Vec<u8>> {
    let mut saved = b::note(b"CORE", 1, &b::prstatus(7, 0xffff_8000_0801_0040, 0xffff_8000_0a00_3f00));
    saved.extend_from_slice(&[0u8; 12]);
    vec![saved, vec![0u8; 424]]
}

/// VMCOREINFO text and every typed accessor.
pub fn vmcoreinfo(data: &[u8]) {
    if let Ok(v) = VmcoreInfo::parse(data) {
        let _ = v.number("VA_BITS");
        let _ = v.symbol("swapper_pg_dir");
        let _ = v.page_size();
        let _ = v.kerneloffset();
        let _ = v.crashtime();
        for (k, _, _) in v.entries() {
            let _ = v.get(k);
        }
    }
}

/// Seeds: the builders' VMCOREINFO.
pub fn seeds_vmcoreinfo() -> Vec<Vec<u8>> {
    vec![b::VMCOREINFO_TEXT.to_vec()]
}

/// The loader's CPU-map note; a valid map must round-trip.
pub fn cpumap(data: &[u8]) {
    if let Ok(m) = CpuMap::parse(data) {
        let cpus: Vec<_> = m.entries().collect();
        let mut out = vec![0u8; crash_payload::cpumap::desc_size(cpus.len())];
        let n = write_desc(&mut out, &cpus).expect("sized above");
        let again: Vec<_> = CpuMap::parse(&out[..n]).expect("own output").entries().collect();
        assert_eq!(again, cpus);
    }
}

/// Seeds: a two-CPU map.
pub fn seeds_cpumap() -> Vec<Vec<u8>> {
    let cpus = [
        CpuEntry { cpu: 0, flags: CPU_ONLINE | CPU_PRESENT, mpidr: 0, notes_paddr: PhysAddr(0xbfe3_d000), notes_size: 424 },
        CpuEntry { cpu: 1, flags: CPU_PRESENT, mpidr: u64::MAX, notes_paddr: PhysAddr(0xbfe3_e000), notes_size: 424 },
    ];
    let mut out = vec![0u8; crash_payload::cpumap::desc_size(cpus.len())];
    let n = write_desc(&mut out, &cpus).unwrap_or(0);
    out.truncate(n);
    vec![out]
}

/// elfcorehdr program headers: every header `read_header` returns must
/// write back and read back the same.
pub fn elfcorehdr(data: &[u8]) {
    let mut phdrs = Vec::new();
    for i in 0..64 {
        match read_header(data, i) {
            Some(p) => phdrs.push(p),
            None => break,
        }
    }
    let size = 64 + 56 * phdrs.len();
    let mut out = vec![0u8; size];
    let n = write_headers(&mut out, 183, &phdrs).expect("sized above");
    assert_eq!(n, size);
    for (i, p) in phdrs.iter().enumerate() {
        assert_eq!(read_header(&out, i).as_ref(), Some(p));
    }
    assert_eq!(read_header(&out, phdrs.len()), None);
}

/// Seeds: a note and two loads.
pub fn seeds_elfcorehdr() -> Vec<Vec<u8>> {
    let phdrs = [
        ProgramHeader::note(PhysAddr(0xbfe3_d000), 424),
        ProgramHeader::load(PhysAddr(0x4000_0000), VirtAddr(0xffff_0000_0000_0000), 0x1000_0000),
        ProgramHeader::load(PhysAddr(0x5000_0000), VirtAddr(0xffff_0000_1000_0000), 0x2000),
    ];
    let mut out = vec![0u8; 64 + 56 * phdrs.len()];
    let _ = write_headers(&mut out, 183, &phdrs);
    vec![out]
}
