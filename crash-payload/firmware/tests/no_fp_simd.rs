//! Builds sdei-fw for `aarch64-unknown-none-softfloat`, disassembles it with
//! `aarch64-linux-gnu-objdump` and fails on any FP/SIMD/SVE instruction: the
//! firmware saves no FP state, so touching it would corrupt the Normal
//! world's. Also checks the layout QEMU's `-bios` relies on.
//!
//! Runs wherever the target and binutils are installed. Without them it
//! fails when `CI` is set (tests/setup.sh installs both) and is skipped with
//! a message otherwise.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: failing loudly is the point

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "aarch64-unknown-none-softfloat";
const OBJDUMP: &str = "aarch64-linux-gnu-objdump";

fn missing(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is missing; tests/setup.sh installs it and CI must not skip this test");
    }
    eprintln!("SKIPPED: {what} is missing (run tests/setup.sh); this test fails in CI");
}

fn target_installed() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .is_dir()
}

fn build_firmware() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // A separate target dir: the outer `cargo test` holds the lock on the main one.
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sdei-fw");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let st = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "sdei-fw",
            "--release",
            "--target",
            TARGET,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .expect("run cargo");
    assert!(st.success(), "building sdei-fw for {TARGET} failed");
    target_dir.join(TARGET).join("release").join("sdei-fw")
}

/// Why a disassembled instruction line touches FP/SIMD/SVE state, if it does.
/// `line` is one line of `objdump -d` output.
fn fp_simd_reason(line: &str) -> Option<String> {
    // "     8a4:\td5384100 \tmrs\tx0, sp_el0" — address, encoding, mnemonic, operands.
    let mut parts = line.splitn(3, '\t');
    let addr = parts.next()?.trim();
    if !addr.ends_with(':')
        || !addr[..addr.len() - 1]
            .chars()
            .all(|c| c.is_ascii_hexdigit())
    {
        return None;
    }
    let _encoding = parts.next()?;
    let rest = parts.next()?;
    let (mnemonic, ops) = match rest.split_once('\t') {
        Some((m, o)) => (m.trim(), o),
        None => (rest.trim(), ""),
    };
    if mnemonic.starts_with('.') {
        return None; // .word: literal data
    }
    if mnemonic.starts_with('f') {
        return Some(format!("FP mnemonic `{mnemonic}`"));
    }
    // Drop the comment and every "address <symbol>" (branch and literal
    // targets print as bare hex, e.g. "d0 <boot_park+0x8>").
    let ops = ops.split("//").next().unwrap_or("");
    let mut clean = String::new();
    let mut words = ops.split(' ').peekable();
    while let Some(w) = words.next() {
        if words.peek().is_some_and(|n| n.starts_with('<')) {
            continue;
        }
        if w.starts_with('<') {
            continue;
        }
        clean.push_str(w);
        clean.push(' ');
    }
    for tok in clean.split(|c: char| c.is_whitespace() || ",[]{}!#".contains(c)) {
        let tok = tok.to_ascii_lowercase();
        let reg = tok.split('.').next().unwrap_or("");
        let mut cs = reg.chars();
        if let Some(first) = cs.next() {
            let num: String = cs.collect();
            let numeric =
                !num.is_empty() && num.len() <= 2 && num.chars().all(|c| c.is_ascii_digit());
            if numeric && "bhsdqvzp".contains(first) {
                return Some(format!("FP/SIMD/SVE register `{tok}` in `{mnemonic}`"));
            }
        }
        if tok == "fpcr" || tok == "fpsr" {
            return Some(format!("FP control register `{tok}`"));
        }
    }
    None
}

#[test]
fn classifier_flags_fp_simd_and_nothing_else() {
    for l in [
        "     100:\t9e670020 \tfmov\td0, x1",
        "     104:\t4ea01c00 \tmov\tv0.16b, v0.16b",
        "     108:\t3d800fe0 \tstr\tq0, [sp, #48]",
        "     10c:\tfd000fe0 \tstr\td0, [sp, #24]",
        "     110:\t1e220020 \tscvtf\ts0, w1",
        "     114:\td53b4400 \tmrs\tx0, fpcr",
        "     118:\t4c407000 \tld1\t{v0.16b}, [x0]",
    ] {
        assert!(fp_simd_reason(l).is_some(), "not flagged: {l}");
    }
    for l in [
        "      20:\t58000580 \tldr\tx0, d0 <boot_park+0x8>",
        "      1c:\t54000562 \tb.cs\tc8 <boot_park>  // b.hs, b.nlast",
        "      d0:\t0e121000 \t.word\t0x0e121000",
        "     8a4:\td53e1100 \tmrs\tx0, scr_el3",
        "     8a8:\ta9bf7bfd \tstp\tx29, x30, [sp, #-16]!",
        "     8ac:\t94000010 \tbl\t8ec <el3_exception>",
        "     8b0:\td5033fdf \tisb",
    ] {
        assert_eq!(fp_simd_reason(l), None, "wrongly flagged: {l}");
    }
}

#[test]
fn firmware_has_no_fp_simd_and_the_right_layout() {
    if !target_installed() {
        missing(&format!("the Rust target {TARGET}"));
        return;
    }
    if Command::new(OBJDUMP).arg("--version").output().is_err() {
        missing(OBJDUMP);
        return;
    }
    let elf = build_firmware();
    let out = Command::new(OBJDUMP)
        .arg("-d")
        .arg(&elf)
        .output()
        .expect("run objdump");
    assert!(out.status.success(), "objdump -d failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut count = 0usize;
    let bad: Vec<String> = text
        .lines()
        .filter(|l| {
            let is_insn = l.contains(":\t");
            count += usize::from(is_insn);
            is_insn
        })
        .filter_map(|l| fp_simd_reason(l).map(|r| format!("{r}: {}", l.trim())))
        .collect();
    assert!(
        count > 1000,
        "only {count} instructions disassembled: wrong file?"
    );
    assert!(
        bad.is_empty(),
        "{} FP/SIMD instruction(s) in sdei-fw:\n{}",
        bad.len(),
        bad.join("\n")
    );

    // -bios loads the raw image at 0x0: _start must be there, the vectors
    // 2 KiB aligned, and everything loadable inside the 64 MiB flash.
    let nm = Command::new("aarch64-linux-gnu-nm")
        .arg(&elf)
        .output()
        .expect("run nm");
    let syms = String::from_utf8_lossy(&nm.stdout);
    let addr = |name: &str| {
        syms.lines()
            .find_map(|l| {
                let mut f = l.split_whitespace();
                let (a, _, n) = (f.next()?, f.next()?, f.next()?);
                (n == name)
                    .then(|| u64::from_str_radix(a, 16).ok())
                    .flatten()
            })
            .unwrap_or_else(|| panic!("symbol {name} missing"))
    };
    assert_eq!(addr("_start"), 0);
    assert_eq!(addr("el3_vectors") % 0x800, 0);
    assert!(addr("__data_lma") < 0x400_0000);
    assert!(
        addr("__stacks_end") <= 0x0f00_0000,
        "secure RAM is 16 MiB at 0x0e000000"
    );
}
