//! `vmcore save` from the command line, on a builder-made ELF core.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use vmcore_tools::format::build::{self, ElfBuilder, ElfLoad};

/// A scratch directory per test (tests run in parallel).
fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmcore-save-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 8 pattern pages and 8 zero pages at 1 GiB, kernel notes with VMCOREINFO.
fn input(test: &str) -> PathBuf {
    let p = dir(test).join("in.elf");
    let mut data = build::pattern(0x4000_0000, 8 * 4096);
    data.extend(vec![0u8; 8 * 4096]);
    let elf = ElfBuilder::new()
        .note_segment(build::kernel_notes(2, true))
        .load(ElfLoad::new(0x4000_0000, data))
        .build();
    std::fs::write(&p, elf).unwrap();
    p
}

fn vmcore(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmcore"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn arguments_are_checked() {
    let inp = input("args");
    let i = inp.to_str().unwrap();
    let o = vmcore(&["save", i]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give an OUTPUT file"));
    let out = dir("args").join("x.kdump");
    for bad in ["32", "1,x", ""] {
        let o = vmcore(&["save", "-d", bad, i, out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "-d {bad:?}");
    }
    let o = vmcore(&["save", "-c", "bzip2", i, out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
    std::fs::remove_dir_all(dir("args")).unwrap();
}

#[test]
fn json_summary_and_file() {
    let inp = input("json");
    let out = dir("json").join("j.kdump");
    let o = vmcore(&[
        "save",
        "--json",
        "-d",
        "1,31",
        "-c",
        "zlib",
        "-j",
        "2",
        inp.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["complete"], true);
    assert_eq!(s["dump_level"], 1);
    assert_eq!(s["compression"], "zlib");
    assert_eq!(s["pages_total"], 16);
    assert_eq!(s["excluded"]["zero"], 8);
    assert_eq!(s["pages_written"], 8);
    assert_eq!(
        s["output_bytes"].as_u64(),
        Some(std::fs::metadata(&out).unwrap().len())
    );
    assert!(s["peak_rss_kib"].as_u64().unwrap() > 0);
    let info = vmcore(&["info", out.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&info.stdout)
        .contains("kdump-compressed v6 (zlib), 4096-byte blocks, dump level 1"));
    std::fs::remove_dir_all(dir("json")).unwrap();
}

#[test]
fn flattened_stream_on_stdout_with_the_summary_on_stderr() {
    let inp = input("flat");
    let o = vmcore(&[
        "save",
        "-F",
        "-d",
        "1",
        "--json",
        inp.to_str().unwrap(),
        "-",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.starts_with(b"makedumpfile\0"));
    assert_eq!(&o.stdout[o.stdout.len() - 16..], &[0xff; 16]);
    let s: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(s["output"], "-");
    assert_eq!(s["output_bytes"].as_u64(), Some(o.stdout.len() as u64));
    let flat = dir("flat").join("s.flat");
    std::fs::write(&flat, &o.stdout).unwrap();
    let info = vmcore(&["info", flat.to_str().unwrap()]);
    assert!(info.status.success());
    // Text summary without --json.
    let o = vmcore(&[
        "save",
        "-F",
        "-d",
        "1",
        "--progress",
        "never",
        inp.to_str().unwrap(),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.starts_with("-: complete (dump level 1, lzo)"), "{e}");
    assert!(e.contains("pages: 16 total; excluded zero 8"), "{e}");
    std::fs::remove_dir_all(dir("flat")).unwrap();
}
