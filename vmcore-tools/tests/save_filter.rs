//! The page filter (`save::filter`) against the real makedumpfile 1.7.2 on
//! real dumps made by tests/dumps/make-dumps.sh: the `.d31.kdump-lzo` files
//! are `makedumpfile -d 31` conversions of the `.elf` /proc/vmcore copies,
//! and their 2nd bitmap is the set makedumpfile kept. Our filter at level 31
//! on the same `.elf` must keep exactly that set. Zero pages stay in that
//! bitmap: for kdump-compressed output makedumpfile decides bit 1 while
//! copying and points every zero page at one shared zero `page_desc`
//! (`write_kdump_pages_cyclic`); only ELF output (`-E`) clears them from the
//! bitmap. If the dumps are missing, they are made first; these tests never
//! skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/src/lib.rs"]
#[allow(dead_code)]
mod support;

use std::path::PathBuf;
use std::time::Instant;

use crash_payload::PhysAddr;
use vmcore_tools::format::{self, kdump::KdumpDump, Dump};
use vmcore_tools::save::filter::{page_filter, DumpLevel, PageFilter};
use vmcore_tools::source::Source;

fn dumps_dir() -> PathBuf {
    match support::real_dumps() {
        Ok((dir, _)) => dir.clone(),
        Err(e) => panic!("real dumps unavailable: {e}"),
    }
}

/// Pfns whose first byte lies in one of the dump's ranges.
fn in_dump(dump: &dyn Dump, page: u64) -> Vec<(u64, u64)> {
    dump.ranges()
        .iter()
        .map(|r| {
            let s = r.start.get().div_ceil(page);
            let e = (r.start.get() + r.size).div_ceil(page);
            (s, e)
        })
        .collect()
}

/// How the filter and makedumpfile's 2nd bitmap compare.
#[derive(Debug, Default)]
struct Comparison {
    pages_in_dump: u64,
    kept_by_filter: u64,
    zero: u64,
    kept_both: u64,
    only_ours: Vec<u64>,
    only_makedumpfile: Vec<u64>,
}

/// Keeps what `filter` keeps, counts zero pages by content and drops them
/// when `drop_zero` (makedumpfile's bit 1 for ELF output), and compares
/// with `kd`'s 2nd bitmap.
fn compare(
    dump: &dyn Dump,
    filter: &PageFilter,
    kd: &KdumpDump<Source>,
    drop_zero: bool,
) -> Comparison {
    let page = 4096u64;
    let zero = vec![0u8; page as usize];
    let mut buf = vec![0u8; page as usize];
    let mut c = Comparison::default();
    let spans = in_dump(dump, page);
    let mut covered = vec![false; kd.max_mapnr().max(filter.max_pfn()) as usize];
    for (s, e) in spans {
        for pfn in s..e {
            if let Some(x) = covered.get_mut(pfn as usize) {
                *x = true;
            }
        }
    }
    for (pfn, &present) in covered.iter().enumerate() {
        let pfn = pfn as u64;
        let theirs = kd.is_dumped(pfn);
        let mut ours = false;
        if present && pfn < filter.max_pfn() {
            c.pages_in_dump += 1;
            if filter.keep(pfn) {
                c.kept_by_filter += 1;
                dump.read_phys(PhysAddr(pfn * page), &mut buf)
                    .unwrap_or_else(|e| panic!("pfn {pfn:#x}: {e}"));
                let is_zero = buf == zero;
                c.zero += u64::from(is_zero);
                ours = !(drop_zero && is_zero);
            }
        }
        match (ours, theirs) {
            (true, true) => c.kept_both += 1,
            (true, false) => c.only_ours.push(pfn),
            (false, true) => c.only_makedumpfile.push(pfn),
            (false, false) => {}
        }
    }
    c
}

fn show(pfns: &[u64]) -> String {
    let v: Vec<String> = pfns.iter().take(16).map(|p| format!("{p:#x}")).collect();
    format!("{} pfns, first {}", pfns.len(), v.join(" "))
}

#[test]
fn level_31_keeps_exactly_what_makedumpfile_kept() {
    let dir = dumps_dir();
    for name in ["vmcore-wedged-daif", "vmcore-wedged-irq"] {
        let elf = dir.join(format!("{name}.elf"));
        let dump = format::open(&elf).unwrap_or_else(|e| panic!("{e}"));
        // Timed three times: the first run also faults the mapping in.
        let mut times = Vec::new();
        let mut filter = None;
        for _ in 0..3 {
            let t = Instant::now();
            let f = page_filter(dump.as_ref(), DumpLevel::new(31).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            times.push(t.elapsed().as_secs_f64() * 1e3);
            filter = Some(f);
        }
        let filter = filter.unwrap();
        let kpath = dir.join(format!("{name}.d31.kdump-lzo"));
        let kd = KdumpDump::parse(Source::open(&kpath).unwrap()).unwrap();
        let c = compare(dump.as_ref(), &filter, &kd, false);
        eprintln!(
            "{name}: page_filter(31) {:.1?} ms; {} pages in dump, filter keeps {}, {} of them zero; \
             kept by both {}, only by us {}, only by makedumpfile {}; excluded {:?}",
            times,
            c.pages_in_dump,
            c.kept_by_filter,
            c.zero,
            c.kept_both,
            c.only_ours.len(),
            c.only_makedumpfile.len(),
            filter.stats()
        );
        assert!(c.kept_both > 10_000, "{name}: {c:?}");
        assert!(
            c.only_ours.is_empty(),
            "{name}: kept by us only: {}",
            show(&c.only_ours)
        );
        assert!(
            c.only_makedumpfile.is_empty(),
            "{name}: kept by makedumpfile only: {}",
            show(&c.only_makedumpfile)
        );
        assert_eq!(
            filter.max_pfn(),
            kd.max_mapnr(),
            "{name}: max_pfn vs max_mapnr"
        );

        // Refiltering makedumpfile's output (whose struct pages it kept)
        // decides the same: every page it dumped is kept, and the counts
        // are the same as from the full dump.
        let kdump = format::open(&kpath).unwrap();
        let again = page_filter(kdump.as_ref(), DumpLevel::new(31).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", kpath.display()));
        let dropped = (0..kd.max_mapnr())
            .filter(|&p| kd.is_dumped(p) && !again.keep(p))
            .count();
        assert_eq!(dropped, 0, "{name}: refiltering drops dumped pages");
        assert_eq!(again.stats(), filter.stats(), "{name}: refiltered counts");
    }
}

/// makedumpfile's report (`--message-level 22`): excluded pages per class.
#[derive(Debug, Default, PartialEq, Eq)]
struct Report {
    zero: u64,
    cache: u64,
    cache_private: u64,
    user: u64,
    free: u64,
    hwpoison: u64,
    offline: u64,
}

fn parse_report(text: &str) -> Report {
    let get = |label: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("makedumpfile printed no {label:?} line:\n{text}"));
        let v = line.rsplit(':').next().unwrap().trim();
        u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
    };
    Report {
        zero: get("Pages filled with zero"),
        cache: get("Non-private cache pages"),
        cache_private: get("Private cache pages"),
        user: get("User process data pages"),
        free: get("Free pages"),
        hwpoison: get("Hwpoison pages"),
        offline: get("Offline pages"),
    }
}

/// Runs Debian's arm64 makedumpfile (the one tests/setup.sh unpacks into
/// the cache) under qemu-aarch64-static at each single-bit level and 31 (on
/// the wedged dump; at 31 on the plain one), and
/// compares its kept set and its per-class counts with the filter's.
#[test]
fn levels_match_live_makedumpfile() {
    let dir = dumps_dir();
    let root = support::cache_dir().join("root-arm64");
    let mdf = root.join("usr/bin/makedumpfile");
    assert!(
        mdf.is_file(),
        "{} is missing: tests/setup.sh unpacks Debian's arm64 makedumpfile there",
        mdf.display()
    );
    let out_dir = std::env::temp_dir().join(format!("kexecrs-save-filter-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let runs: [(&str, &[u32]); 2] = [
        ("vmcore-wedged-daif.elf", &[0, 1, 2, 4, 8, 16, 31]),
        ("vmcore-plain.elf", &[31]),
    ];
    for (file, levels) in runs {
        let elf = dir.join(file);
        let dump = format::open(&elf).unwrap_or_else(|e| panic!("{e}"));
        for &level in levels {
            let out = out_dir.join(format!("d{level}.kdump"));
            let _ = std::fs::remove_file(&out);
            let run = std::process::Command::new("qemu-aarch64-static")
                .env("QEMU_LD_PREFIX", &root)
                .arg(&mdf)
                .args(["--message-level", "22", "-d", &level.to_string(), "-l"])
                .arg(&elf)
                .arg(&out)
                .output()
                .unwrap_or_else(|e| panic!("running qemu-aarch64-static {}: {e}", mdf.display()));
            let text = String::from_utf8_lossy(&run.stdout).into_owned()
                + &String::from_utf8_lossy(&run.stderr);
            assert!(
                run.status.success(),
                "makedumpfile -d {level}: {}\n{text}",
                run.status
            );
            let report = parse_report(&text);
            let filter = page_filter(dump.as_ref(), DumpLevel::new(level).unwrap()).unwrap();
            let kd = KdumpDump::parse(Source::open(&out).unwrap()).unwrap();
            let c = compare(dump.as_ref(), &filter, &kd, false);
            let s = filter.stats();
            eprintln!(
            "{file} -d {level}: kept by both {}, only by us {}, only by makedumpfile {}; ours {s:?}; makedumpfile {report:?}",
            c.kept_both,
            c.only_ours.len(),
            c.only_makedumpfile.len()
        );
            assert!(
                c.only_ours.is_empty(),
                "-d {level}: kept by us only: {}",
                show(&c.only_ours)
            );
            assert!(
                c.only_makedumpfile.is_empty(),
                "-d {level}: kept by makedumpfile only: {}",
                show(&c.only_makedumpfile)
            );
            let ours = Report {
                zero: if level & 1 != 0 { c.zero } else { 0 },
                cache: s.cache,
                cache_private: s.cache_private,
                user: s.user,
                free: s.free,
                hwpoison: report.hwpoison,
                offline: report.offline,
            };
            assert_eq!(ours, report, "-d {level}: excluded pages per class");
            assert_eq!(s.other, report.hwpoison + report.offline, "-d {level}");
            std::fs::remove_file(&out).unwrap();
        }
    }
    let _ = std::fs::remove_dir(&out_dir);
}
