//! `vmcore save` on a real arm64 dump (the /proc/vmcore copy of the guest
//! with CPU 1 wedged, made by tests/dumps/make-dumps.sh), checked by the
//! project's reader and by Debian's arm64 makedumpfile 1.7.2 run under
//! qemu-aarch64-static:
//! (a) `vmcore verify` gives the same verdict on the output as on the input;
//! (b) `makedumpfile --dump-dmesg` accepts the output (the flattened stream
//!     after `makedumpfile -R`) and prints the same log as on the input;
//! (c) makedumpfile re-reads the output as its input (`-d 31 -l`);
//! (d) every page of the input reads back byte for byte from the output.
//! The dumps are made first when missing; these tests never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/src/lib.rs"]
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crash_payload::PhysAddr;
use serde_json::Value;
use vmcore_tools::format::{self, Container, Dump};
use vmcore_tools::mem::MemError;
use vmcore_tools::save::filter::{page_filter, DumpLevel};

const INPUT: &str = "vmcore-wedged-daif.elf";

fn input() -> PathBuf {
    match support::real_dumps() {
        Ok((dir, _)) => dir.join(INPUT),
        Err(e) => panic!("real dumps unavailable: {e}"),
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmcore-save-real-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn vmcore(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmcore"))
        .args(args)
        .output()
        .unwrap()
}

/// Debian's arm64 makedumpfile under qemu-aarch64-static.
fn makedumpfile() -> Command {
    let root = support::cache_dir().join("root-arm64");
    let bin = root.join("usr/bin/makedumpfile");
    assert!(
        bin.is_file(),
        "{} missing (tests/dumps/make-dumps.sh installs it)",
        bin.display()
    );
    let mut c = Command::new("qemu-aarch64-static");
    c.env("QEMU_LD_PREFIX", &root).arg(bin);
    c
}

fn run_ok(mut c: Command, what: &str) -> std::process::Output {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mdf_dmesg(dump: &Path) -> Vec<u8> {
    let log = dump.with_extension("dmesg");
    let _ = std::fs::remove_file(&log);
    let mut c = makedumpfile();
    c.arg("--dump-dmesg").arg(dump).arg(&log);
    run_ok(c, &format!("makedumpfile --dump-dmesg {}", dump.display()));
    let text = std::fs::read(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    text
}

/// The log makedumpfile prints for the input (make-dumps.sh keeps it;
/// made here when it does not).
fn input_dmesg() -> Vec<u8> {
    let golden = input().with_file_name(format!("{INPUT}.makedumpfile-dmesg.txt"));
    std::fs::read(&golden).unwrap_or_else(|_| mdf_dmesg(&input()))
}

fn verify_json(dump: &Path) -> Value {
    let out = vmcore(&["verify", "--json", dump.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify {}: {e}: {}",
            dump.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // The same exit status too.
    let code = out.status.code();
    serde_json::json!({ "code": code, "verdict": v["verdict"], "cpus": v["cpus"], "expected": v["expected"],
                        "captured": v["captured"], "missing": v["missing"], "method": v["method"] })
}

fn save(args: &[&str], out: &Path) -> Value {
    let mut a = vec!["save", "--json", "--progress", "never"];
    a.extend_from_slice(args);
    let inp = input();
    a.push(inp.to_str().unwrap());
    a.push(out.to_str().unwrap());
    let o = vmcore(&a);
    assert_eq!(
        o.status.code(),
        Some(0),
        "vmcore {a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["complete"], true, "{s}");
    assert!(out.is_file());
    assert!(!PathBuf::from(format!("{}.part", out.display())).exists());
    s
}

/// Every input page the level-31 page filter keeps reads back identical from
/// the output (zero pages as the shared zero block), and every page it
/// excludes is absent from the output. Returns (kept, excluded).
fn same_pages(input: &dyn Dump, output: &dyn Dump) -> (u64, u64) {
    let ps = 4096u64;
    let level = DumpLevel::new(31).unwrap();
    let filter = page_filter(input, level).unwrap();
    let (mut a, mut b) = (vec![0u8; 4096], vec![0u8; 4096]);
    let (mut kept, mut excluded) = (0, 0);
    for r in input.ranges() {
        let mut addr = r.start.get();
        while addr + ps <= r.start.get() + r.size {
            if filter.keep(addr / ps) {
                input.read_phys(PhysAddr(addr), &mut a).unwrap();
                output
                    .read_phys(PhysAddr(addr), &mut b)
                    .unwrap_or_else(|e| panic!("output misses kept page {addr:#x}: {e}"));
                assert!(a == b, "page at {addr:#x} differs");
                kept += 1;
            } else {
                assert!(
                    matches!(
                        output.read_phys(PhysAddr(addr), &mut b),
                        Err(MemError::NotPresent(_))
                    ),
                    "excluded page {addr:#x} is in the output"
                );
                excluded += 1;
            }
            addr += ps;
        }
    }
    (kept, excluded)
}

fn check_saved(kdump: &Path, summary: &Value, comp: &str) {
    let inp = format::open(&input()).unwrap();
    let out = format::open(kdump).unwrap();
    assert_eq!(out.inner_container(), Container::Kdump);
    assert!(
        out.info().description.contains(comp),
        "{}",
        out.info().description
    );
    assert_eq!(out.info().dump_level, Some(31));
    assert_eq!(out.ranges(), inp.ranges());
    assert_eq!(out.vmcoreinfo(), inp.vmcoreinfo());
    assert_eq!(out.note_segments()[0].data, inp.note_segments()[0].data);
    // (d)
    let (kept, excluded) = same_pages(inp.as_ref(), out.as_ref());
    assert_eq!(Some(kept + excluded), summary["pages_total"].as_u64());
    let e = &summary["excluded"];
    let by_flags: u64 = ["cache", "cache_private", "user", "free", "other"]
        .iter()
        .map(|k| {
            e[*k]
                .as_u64()
                .unwrap_or_else(|| panic!("summary lacks excluded.{k}: {summary}"))
        })
        .sum();
    assert_eq!(excluded, by_flags, "{summary}");
    // The real dump is mostly free pages: -d 31 must drop most of it.
    assert!(
        kept > 20_000 && excluded > 400_000,
        "kept {kept}, excluded {excluded}"
    );
    // (a)
    assert_eq!(verify_json(kdump), verify_json(&input()));
    // (b)
    assert!(
        mdf_dmesg(kdump) == input_dmesg(),
        "{}: makedumpfile --dump-dmesg differs",
        kdump.display()
    );
}

#[test]
fn lzo_output_reads_back_and_makedumpfile_rereads_it() {
    let out = scratch("wedged.lzo.kdump");
    let s = save(&["-c", "lzo", "-d", "31"], &out);
    assert!(s["excluded"]["zero"].as_u64().unwrap() > 0, "{s}");
    check_saved(&out, &s, "lzo");
    // (c) makedumpfile takes it as input and filters it at -d 31.
    let again = scratch("again.kdump");
    let _ = std::fs::remove_file(&again);
    let mut c = makedumpfile();
    c.args(["-d", "31", "-l"]).arg(&out).arg(&again);
    run_ok(c, "makedumpfile -d 31 -l <ours>");
    let a = format::open(&again).unwrap();
    assert_eq!(a.info().dump_level, Some(31));
    assert!(
        mdf_dmesg(&again) == input_dmesg(),
        "log after makedumpfile re-read differs"
    );
    for p in [&out, &again] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn zlib_output_reads_back() {
    let out = scratch("wedged.zlib.kdump");
    let s = save(&["-c", "zlib"], &out);
    check_saved(&out, &s, "zlib");
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn flattened_stream_reassembles_to_the_same_file() {
    // -F to stdout, reassembled by makedumpfile -R; and a plain file of the
    // same settings: the two must be byte-identical.
    let flat = scratch("wedged.flat");
    let inp = input();
    let o = Command::new(env!("CARGO_BIN_EXE_vmcore"))
        .args([
            "save",
            "-F",
            "-c",
            "lzo",
            "--progress",
            "never",
            "-j",
            "2",
            inp.to_str().unwrap(),
        ])
        .stdout(std::fs::File::create(&flat).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let direct = format::open(&flat).unwrap();
    assert_eq!(direct.info().container, Container::Flattened);
    let rebuilt = scratch("wedged.flat.kdump");
    let _ = std::fs::remove_file(&rebuilt);
    let mut c = makedumpfile();
    c.arg("-R")
        .arg(&rebuilt)
        .stdin(std::fs::File::open(&flat).unwrap());
    run_ok(c, "makedumpfile -R");
    let file = scratch("wedged.file.kdump");
    let s = save(&["-c", "lzo", "-j", "1"], &file);
    assert!(
        std::fs::read(&rebuilt).unwrap() == std::fs::read(&file).unwrap(),
        "-R of the stream differs from the file"
    );
    // (b) on the reassembled stream; (a) and (d) on the file (identical bytes).
    check_saved(&file, &s, "lzo");
    assert!(mdf_dmesg(&rebuilt) == input_dmesg());
    for p in [&flat, &rebuilt, &file] {
        std::fs::remove_file(p).unwrap();
    }
}
