//! Round trips: builder inputs saved, read back with `format::open`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use crash_payload::PhysAddr;

use super::*;
use crate::format::build::{self, Compression as BuildComp, ElfBuilder, ElfLoad, KdumpBuilder};
use crate::format::kdump::{dh, kh, DUMP_DH_COMPRESSED_INCOMPLETE};
use crate::format::{self, Container};
use crate::source::Source;

const BASE: u64 = 0x4000_0000;
const PS: u64 = 4096;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmcore-save-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// 16 pattern pages, 4 zero pages, then 4 pages of memsz beyond filesz
/// (zero), then a second range of 8 pattern pages after a hole.
fn elf_input() -> Vec<u8> {
    let mut a = build::pattern(BASE, 16 * PS as usize);
    a.extend(vec![0u8; 4 * PS as usize]);
    let second = BASE + 64 * PS;
    ElfBuilder::new()
        .note_segment(build::kernel_notes(2, true))
        .load(ElfLoad::new(BASE, a).memsz(24 * PS))
        .load(ElfLoad::new(
            second,
            build::pattern(second, 8 * PS as usize),
        ))
        .build()
}

fn open_vec(name: &str, b: Vec<u8>) -> Box<dyn Dump> {
    format::from_source(Source::from_vec(name, b)).unwrap()
}

/// Saves `input` to the file `p`, which must succeed.
fn save_file(input: &dyn Dump, p: &Path, o: &SaveOptions) -> Summary {
    save(input, &Target::File(p.to_path_buf()), o).unwrap()
}

fn opts(levels: &[u32], c: Compression) -> SaveOptions {
    SaveOptions {
        levels: levels.iter().map(|&l| DumpLevel::new(l).unwrap()).collect(),
        compression: c,
        jobs: 3,
        progress: false,
        device_limit: None,
    }
}

/// Every page of `input` reads the same from `output`.
fn same_pages(input: &dyn Dump, output: &dyn Dump) -> u64 {
    let mut n = 0;
    let (mut a, mut b) = (vec![0u8; PS as usize], vec![0u8; PS as usize]);
    for r in input.ranges() {
        let mut addr = r.start.get();
        while addr < r.start.get() + r.size {
            if input.read_phys(PhysAddr(addr), &mut a).is_ok() {
                output
                    .read_phys(PhysAddr(addr), &mut b)
                    .unwrap_or_else(|e| panic!("{addr:#x}: {e}"));
                assert_eq!(a, b, "page at {addr:#x}");
                n += 1;
            }
            addr += PS;
        }
    }
    n
}

#[test]
fn elf_round_trips_through_every_compression_and_both_containers() {
    let input = open_vec("in.elf", elf_input());
    for c in [
        Compression::Lzo,
        Compression::Zlib,
        Compression::Zstd,
        Compression::None,
    ] {
        for flat in [false, true] {
            for level in [0u32, 1] {
                let p = tmp(&format!("out-{}-{flat}-{level}", c.name()));
                let t = if flat {
                    Target::FlatFile(p.clone())
                } else {
                    Target::File(p.clone())
                };
                let s = save(input.as_ref(), &t, &opts(&[level], c)).unwrap();
                assert!(s.complete, "{s:?}");
                assert_eq!(s.pages_total, 32);
                let zero = if level & 1 == 1 { 8 } else { 0 };
                assert_eq!(s.excluded.zero, zero, "{s:?}");
                assert_eq!(s.pages_written, 32 - zero);
                assert_eq!(s.output_bytes, std::fs::metadata(&p).unwrap().len());
                assert!(!tmp(&format!("out-{}-{flat}-{level}.part", c.name())).exists());
                let out = format::open(&p).unwrap();
                let want = if flat {
                    Container::Flattened
                } else {
                    Container::Kdump
                };
                assert_eq!(out.info().container, want);
                assert_eq!(out.inner_container(), Container::Kdump);
                assert_eq!(out.info().dump_level, Some(level));
                assert_eq!(out.info().nr_cpus, Some(2));
                assert_eq!(out.vmcoreinfo(), input.vmcoreinfo());
                assert_eq!(out.note_segments()[0].data, input.note_segments()[0].data);
                assert_eq!(same_pages(input.as_ref(), out.as_ref()), 32);
                assert_eq!(out.ranges(), input.ranges());
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
}

#[test]
fn header_fields_are_makedumpfiles() {
    let input = open_vec("in.elf", elf_input());
    let p = tmp("hdr.kdump");
    save_file(input.as_ref(), &p, &opts(&[1], Compression::Lzo));
    let b = std::fs::read(&p).unwrap();
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    assert_eq!(&b[..8], b"KDUMP   ");
    assert_eq!(u32_at(dh::HEADER_VERSION), 6);
    assert_eq!(&b[dh::RELEASE..dh::RELEASE + 17], b"6.1.0-test-arm64\0");
    assert_eq!(&b[dh::MACHINE..dh::MACHINE + 8], b"aarch64\0");
    assert_eq!(u64_at(dh::TIMESTAMP), 1_700_000_000);
    assert_eq!(u32_at(dh::STATUS), DUMP_DH_COMPRESSED_LZO_FLAG);
    assert_eq!(u32_at(dh::BLOCK_SIZE), 4096);
    assert_eq!(u32_at(dh::SUB_HDR_SIZE), 1);
    let max_mapnr = (BASE + 72 * PS) / PS;
    assert_eq!(u32_at(dh::MAX_MAPNR) as u64, max_mapnr);
    assert_eq!(
        u32_at(dh::BITMAP_BLOCKS) as u64,
        2 * max_mapnr.div_ceil(8 * 4096)
    );
    let k = 4096;
    assert_eq!(u64_at(k + kh::PHYS_BASE), 0x4000_0000);
    assert_eq!(u32_at(k + kh::DUMP_LEVEL), 1);
    assert_eq!(u32_at(k + kh::SPLIT), 0);
    assert_eq!(u64_at(k + kh::OFFSET_NOTE), 4096 + 104);
    assert_eq!(u64_at(k + kh::MAX_MAPNR_64), max_mapnr);
    let vi = u64_at(k + kh::OFFSET_VMCOREINFO) as usize;
    let vs = u64_at(k + kh::SIZE_VMCOREINFO) as usize;
    assert_eq!(&b[vi..vi + vs], build::VMCOREINFO_TEXT);
    // Zero pages share one block: 8 descriptors with the same offset.
    let descs = (2 + u32_at(dh::BITMAP_BLOCKS) as usize) * 4096;
    let zero_off = descs + 32 * 24;
    let zeros = (0..32)
        .filter(|i| u64_at(descs + i * 24) == zero_off as u64)
        .count();
    assert_eq!(zeros, 8);
    std::fs::remove_file(&p).unwrap();
}

const DUMP_DH_COMPRESSED_LZO_FLAG: u32 = crate::format::kdump::DUMP_DH_COMPRESSED_LZO;

#[test]
fn filtered_kdump_input_keeps_its_holes() {
    let kd = KdumpBuilder::new(4096)
        .pattern_pages(0x40000..0x40004, BuildComp::Zlib)
        .page(0x40004, vec![0u8; 4096], BuildComp::Lzo)
        .filtered(0x40005)
        .pattern_pages(0x40006..0x40008, BuildComp::Snappy)
        .build();
    let input = open_vec("in.kdump", kd);
    let p = tmp("re.kdump");
    let s = save_file(input.as_ref(), &p, &opts(&[1], Compression::Zlib));
    assert!(s.complete);
    assert_eq!(
        (
            s.pages_total,
            s.pages_absent,
            s.excluded.zero,
            s.pages_written
        ),
        (8, 1, 1, 6)
    );
    let out = format::open(&p).unwrap();
    assert_eq!(same_pages(input.as_ref(), out.as_ref()), 7);
    let mut b = vec![0u8; 4096];
    assert!(matches!(
        out.read_phys(PhysAddr(0x40005 * 4096), &mut b),
        Err(crate::mem::MemError::NotPresent(_))
    ));
    assert_eq!(out.ranges(), input.ranges());
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn a_corrupt_input_page_leaves_an_incomplete_file_naming_pfn_and_offset() {
    let kd = KdumpBuilder::new(4096)
        .pattern_pages(0x40000..0x40400, BuildComp::Zlib)
        .build_with_layout();
    let (mut bytes, layout) = kd;
    // Break the zlib stream of pfn 0x40300 (its descriptor gives the offset).
    let d = (layout.descs + 0x300 * 24) as usize;
    let off = u64::from_le_bytes(bytes[d..d + 8].try_into().unwrap()) as usize;
    bytes[off + 2] ^= 0xff;
    bytes[off + 3] ^= 0xff;
    let input = open_vec("bad.kdump", bytes);
    let p = tmp("bad-out.kdump");
    let s = save_file(input.as_ref(), &p, &opts(&[1], Compression::Lzo));
    assert!(!s.complete);
    let r = s.reason.unwrap();
    assert!(r.starts_with("bad.kdump: pfn 0x40300: "), "{r}");
    assert!(r.contains(&format!("file offset {off:#x}")), "{r}");
    assert!(!p.exists());
    let inc = tmp("bad-out.kdump.incomplete");
    assert_eq!(s.output, inc.display().to_string());
    let b = std::fs::read(&inc).unwrap();
    let status = u32::from_le_bytes(b[dh::STATUS..dh::STATUS + 4].try_into().unwrap());
    assert_ne!(status & DUMP_DH_COMPRESSED_INCOMPLETE, 0);
    let out = format::open(&inc).unwrap();
    assert!(out.info().description.contains("incomplete"));
    std::fs::remove_file(&inc).unwrap();
}

/// The builders' dumps carry no `struct page` layout in VMCOREINFO, so the
/// tests above save at levels 0 and 1; a level that needs page flags is
/// refused before anything is written, naming the missing key.
#[test]
fn a_level_needing_page_flags_names_the_missing_key() {
    let input = open_vec("in.elf", elf_input());
    let t = tmp("needs-flags");
    let e = save(
        input.as_ref(),
        &Target::File(t.clone()),
        &opts(&[31], Compression::Lzo),
    )
    .unwrap_err();
    assert!(e.to_string().contains("SIZE(page)"), "{e}");
    assert!(!t.exists());
    assert!(!tmp("needs-flags.part").exists());
    assert!(!tmp("needs-flags.incomplete").exists());
}

#[test]
fn an_empty_level_list_is_refused() {
    let input = open_vec("in.elf", elf_input());
    let e = save(
        input.as_ref(),
        &Target::File(tmp("x")),
        &opts(&[], Compression::Lzo),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "no dump level given");
}

#[test]
fn meta_counts_cpus_and_finds_vmcoreinfo() {
    let input = open_vec("in.elf", elf_input());
    let vi = super::vmcoreinfo(input.as_ref());
    let m = meta(input.as_ref(), vi.as_ref());
    assert_eq!(m.nr_cpus, 2);
    let (off, size) = m.vmcoreinfo.unwrap();
    assert_eq!(
        &m.notes[off as usize..(off + size) as usize],
        build::VMCOREINFO_TEXT
    );
    assert_eq!(m.utsname[2], "6.1.0-test-arm64");
    assert_eq!(m.timestamp, 1_700_000_000);
}

/// 3000 pages of which 2000 are zero: about 1000 stored pages at level 1,
/// 3000 at level 0.
fn ladder_input() -> Vec<u8> {
    let mut a = build::pattern(BASE, 1000 * PS as usize);
    a.extend(vec![0u8; 2000 * PS as usize]);
    ElfBuilder::new()
        .note_segment(build::kernel_notes(2, true))
        .load(ElfLoad::new(BASE, a))
        .build()
}

fn size_at(level: u32, tag: &str) -> u64 {
    let input = open_vec("ladder.elf", ladder_input());
    let p = tmp(&format!("size-{level}-{tag}"));
    let s = save_file(input.as_ref(), &p, &opts(&[level], Compression::None));
    std::fs::remove_file(&p).unwrap();
    s.output_bytes
}

#[test]
fn enospc_restarts_at_the_next_level_and_the_result_is_complete() {
    let (big, small) = (size_at(0, "ladder"), size_at(1, "ladder"));
    assert!(big > small + 1000 * PS, "{big} {small}");
    let input = open_vec("ladder.elf", ladder_input());
    // One job (all on one thread) and several (a thread pipeline).
    for jobs in [1, 3] {
        let p = tmp(&format!("ladder-j{jobs}.kdump"));
        let mut o = opts(&[0, 1], Compression::None);
        o.jobs = jobs;
        o.device_limit = Some(small + PS);
        let s = save_file(input.as_ref(), &p, &o);
        assert!(s.complete, "{s:?}");
        assert_eq!((s.dump_level, s.levels_tried.clone()), (1, vec![0, 1]));
        assert_eq!(s.excluded.zero, 2000);
        let out = format::open(&p).unwrap();
        assert_eq!(out.info().dump_level, Some(1));
        assert_eq!(same_pages(input.as_ref(), out.as_ref()), 3000);
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn one_job_writes_the_file_several_jobs_write() {
    let input = open_vec("jobs.elf", ladder_input());
    let mut files = Vec::new();
    for jobs in [1, 2, 3] {
        for c in [Compression::Lzo, Compression::Zlib] {
            let p = tmp(&format!("jobs-{jobs}-{}.kdump", c.name()));
            let mut o = opts(&[1], c);
            o.jobs = jobs;
            let s = save_file(input.as_ref(), &p, &o);
            assert!(s.complete, "{s:?}");
            files.push((jobs, c, std::fs::read(&p).unwrap()));
            std::fs::remove_file(&p).unwrap();
        }
    }
    for (jobs, c, b) in &files[2..] {
        let (_, _, first) = files.iter().find(|f| f.1 == *c).unwrap();
        assert!(b == first, "-j {jobs} -c {} differs from -j 1", c.name());
    }
}

#[test]
fn when_no_level_fits_the_output_is_kept_incomplete() {
    // The same pages salvaged whether the pass ran on one thread or
    // several (page data is written behind the pass either way): every
    // page whose data fit before the device filled, in pfn order.
    let one = no_level_fits(1);
    assert_eq!(no_level_fits(3), one);
    let (readable, gap) = one;
    assert!(readable > 400, "{readable}");
    assert_eq!(gap, Some(BASE + readable * PS));
}

fn no_level_fits(jobs: usize) -> (u64, Option<u64>) {
    let small = size_at(1, "full");
    let input = open_vec("ladder.elf", ladder_input());
    let name = format!("full-j{jobs}.kdump");
    let p = tmp(&name);
    let mut o = opts(&[0, 1], Compression::None);
    o.jobs = jobs;
    o.device_limit = Some(small / 2);
    let s = save_file(input.as_ref(), &p, &o);
    assert!(!s.complete);
    assert_eq!(s.levels_tried, vec![0, 1]);
    // The summary counts the last pass as far as it went.
    assert_eq!(s.pages_total, 3000);
    assert!(s.pages_written > 0 && s.pages_written <= 1000, "{s:?}");
    let r = s.reason.clone().unwrap();
    assert!(r.starts_with("writing page data at dump level 1: "), "{r}");
    assert!(r.contains("No space left on device"), "{r}");
    assert!(!p.exists() && !tmp(&format!("{name}.part")).exists());
    let inc = tmp(&format!("{name}.incomplete"));
    assert_eq!(s.output, inc.display().to_string());
    let b = std::fs::read(&inc).unwrap();
    assert_eq!(b.len() as u64, small / 2);
    let status = u32::from_le_bytes(b[dh::STATUS..dh::STATUS + 4].try_into().unwrap());
    assert_eq!(status, DUMP_DH_COMPRESSED_INCOMPLETE);
    // Readable as far as it goes: the first page made it, and every page
    // the file gives is the input's, up to where the device filled (data
    // the writer was given but could not write left no descriptor).
    let out = format::open(&inc).unwrap();
    let mut page = vec![0u8; PS as usize];
    out.read_phys(PhysAddr(BASE), &mut page).unwrap();
    assert_eq!(page, build::pattern(BASE, PS as usize));
    let (readable, gap) = readable_prefix(input.as_ref(), out.as_ref());
    std::fs::remove_file(&inc).unwrap();
    (readable, gap)
}

/// Pages of `output` that read back as `input`'s (the others must fail to
/// read, never give other bytes), and the first input page that did not.
fn readable_prefix(input: &dyn Dump, output: &dyn Dump) -> (u64, Option<u64>) {
    let (mut a, mut b) = (vec![0u8; PS as usize], vec![0u8; PS as usize]);
    let (mut n, mut gap) = (0, None);
    for r in input.ranges() {
        for addr in (r.start.get()..r.start.get() + r.size).step_by(PS as usize) {
            if input.read_phys(PhysAddr(addr), &mut a).is_err() {
                continue;
            }
            match output.read_phys(PhysAddr(addr), &mut b) {
                Ok(()) => {
                    assert_eq!(a, b, "page at {addr:#x}");
                    n += 1;
                }
                Err(_) => {
                    gap.get_or_insert(addr);
                }
            }
        }
    }
    (n, gap)
}

#[test]
fn an_elf_file_is_read_with_pread_and_round_trips() {
    let path = tmp("in-file.elf");
    let bytes = elf_input();
    std::fs::write(&path, &bytes).unwrap();
    let input = format::open(&path).unwrap();
    // Verbatim pages have a file extent holding exactly their bytes; the
    // zero-filled tail (memsz beyond filesz) and holes have none.
    let off = input.file_extent(PhysAddr(BASE + PS), PS).unwrap() as usize;
    assert_eq!(
        &bytes[off..off + PS as usize],
        &build::pattern(BASE + PS, PS as usize)[..]
    );
    assert_eq!(input.file_extent(PhysAddr(BASE + 20 * PS), PS), None);
    // Spans: the 20 pages of file data in one piece, not one page more.
    assert_eq!(
        input.file_extent(PhysAddr(BASE), 20 * PS),
        Some(off as u64 - PS)
    );
    assert_eq!(input.file_extent(PhysAddr(BASE), 21 * PS), None);
    assert_eq!(input.file_extent(PhysAddr(BASE + 19 * PS + 1), PS), None);
    assert_eq!(input.file_extent(PhysAddr(BASE + 40 * PS), PS), None);
    let p = tmp("from-file.kdump");
    let s = save_file(input.as_ref(), &p, &opts(&[1], Compression::Lzo));
    assert!(s.complete);
    // Opening and saving read no page data through the mapping (pread).
    assert!(
        input.source().pages_touched() < 4,
        "{}",
        input.source().pages_touched()
    );
    let out = format::open(&p).unwrap();
    assert_eq!(same_pages(input.as_ref(), out.as_ref()), 32);
    for f in [&p, &path] {
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn a_dump_claiming_too_much_memory_is_refused_before_allocating() {
    let huge = BASE << 20;
    let elf = ElfBuilder::new()
        .note_segment(build::kernel_notes(1, true))
        .load(ElfLoad::new(huge, build::pattern(huge, PS as usize)))
        .build();
    let input = open_vec("huge.elf", elf);
    let e = save(
        input.as_ref(),
        &Target::File(tmp("huge")),
        &opts(&[1], Compression::Lzo),
    )
    .unwrap_err();
    assert!(
        matches!(e, SaveError::TooLarge { max_pfn } if max_pfn == huge / PS + 1),
        "{e}"
    );
    assert!(!tmp("huge.part").exists());
}

/// Seeded flips, truncations and 64-bit extremes in builder inputs: saving
/// gives a result or an error, never a panic.
#[test]
fn mutated_inputs_never_panic() {
    let kd = KdumpBuilder::new(4096)
        .pattern_pages(0x40000..0x40010, BuildComp::Zlib)
        .pattern_pages(0x40010..0x40014, BuildComp::Lzo)
        .filtered(0x40014)
        .build();
    let mut x = build::Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut rnd = move || x.next_u64();
    let out = tmp("mutant.kdump");
    let mut saved = 0;
    for (name, good) in [("elf", elf_input()), ("kdump", kd)] {
        for round in 0..150 {
            let mut b = good.clone();
            for _ in 0..1 + rnd() % 3 {
                let span = if rnd() & 1 == 0 {
                    b.len().min(9000)
                } else {
                    b.len()
                };
                let at = (rnd() as usize) % span.max(1);
                match rnd() % 6 {
                    0 => b.truncate(at.max(64)),
                    1 => {
                        let at = at & !7;
                        let v = [u64::MAX, 1 << 62, 0x7fff_ffff, 0][(rnd() % 4) as usize];
                        if at + 8 <= b.len() {
                            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
                        }
                    }
                    _ => {
                        if at < b.len() {
                            b[at] ^= 1 << (rnd() % 8);
                        }
                    }
                }
            }
            let Ok(d) = format::from_source(Source::from_vec(format!("{name}-{round}"), b)) else {
                continue;
            };
            if let Ok(s) = save(
                d.as_ref(),
                &Target::File(out.clone()),
                &opts(&[1], Compression::Lzo),
            ) {
                saved += 1;
                let _ = std::fs::remove_file(&s.output);
            }
        }
    }
    assert!(saved > 100, "{saved}");
}

/// 6000 pages, every third one zero: page data and descriptors both fill
/// their buffers many times over.
fn interleaved_input() -> Vec<u8> {
    let mut a = build::pattern(BASE, 6000 * PS as usize);
    for page in a.chunks_mut(PS as usize).skip(2).step_by(3) {
        page.fill(0);
    }
    ElfBuilder::new()
        .note_segment(build::kernel_notes(2, true))
        .load(ElfLoad::new(BASE, a))
        .build()
}

#[test]
fn writes_are_full_and_no_descriptor_is_written_before_its_data() {
    // The flattened stream records every write, in order.
    let input = open_vec("interleaved.elf", interleaved_input());
    for jobs in [1, 3] {
        for c in [Compression::None, Compression::Lzo] {
            let p = tmp(&format!("order-j{jobs}-{}.flat", c.name()));
            let mut o = opts(&[1], c);
            o.jobs = jobs;
            let s = save(input.as_ref(), &Target::FlatFile(p.clone()), &o).unwrap();
            assert!(s.complete && s.pages_written == 4000, "{s:?}");
            let b = std::fs::read(&p).unwrap();
            let (spans, _) =
                crate::format::flat::FlatFile::records_of(&Source::open(&p).unwrap()).unwrap();
            let recs: Vec<(u64, &[u8])> = spans
                .iter()
                .map(|&(off, size, at)| (off, &b[at as usize..(at + size) as usize]))
                .collect();
            // Header, sub-header, the two bitmaps, the shared zero page;
            // at the end the 2nd bitmap and the header again.
            let (bm1, bm2, zero) = (recs[2], recs[3], recs[4]);
            let descs = bm2.0 + (bm2.0 - bm1.0);
            let data = zero.0;
            assert!(zero.1.len() == PS as usize && zero.1.iter().all(|&x| x == 0));
            let (mut data_end, mut desc_end) = (data + PS, descs);
            let (mut data_writes, mut desc_writes) = (Vec::new(), 0);
            for &(off, bytes) in &recs[5..recs.len() - 2] {
                if off >= data {
                    assert_eq!(off, data_end, "page data in order, no gaps");
                    data_end += bytes.len() as u64;
                    data_writes.push(bytes.len());
                } else {
                    assert!(off >= descs, "{off:#x}");
                    assert_eq!(off, desc_end, "descriptors in order, no gaps");
                    desc_end += bytes.len() as u64;
                    desc_writes += 1;
                    for d in bytes.chunks_exact(24) {
                        let at = u64::from_le_bytes(d[..8].try_into().unwrap());
                        let size = u64::from(u32::from_le_bytes(d[8..12].try_into().unwrap()));
                        assert!(at + size <= data_end, "a descriptor ahead of its data");
                    }
                }
            }
            assert_eq!(desc_end - descs, 6000 * 24);
            // Each page-data write but the last as full as the buffer
            // allows (a batch or a page short of it at most).
            let (last, full) = data_writes.split_last().unwrap();
            assert!(*last <= writer::DATA_FLUSH);
            let least = writer::DATA_FLUSH - 8 * PS as usize;
            assert!(
                full.iter()
                    .all(|&n| (least..=writer::DATA_FLUSH).contains(&n)),
                "-j {jobs} -c {}: {data_writes:?}",
                c.name()
            );
            // Descriptors go out with page data, not each on their own.
            assert!(desc_writes <= 6000 / 768 + 1, "{desc_writes}");
            std::fs::remove_file(&p).unwrap();
        }
    }
}
