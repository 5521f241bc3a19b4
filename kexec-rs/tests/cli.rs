//! The binary against the QEMU virt fixture (`--sysroot`, `--dry-run`):
//! nothing here loads a kernel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kexec-rs"))
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qemu-virt-2cpu-2g")
}

/// A 64 KiB arm64 Image header-only kernel (image_size 26 MiB, 4K pages).
fn image(dir: &std::path::Path) -> PathBuf {
    let mut v = vec![0u8; 0x1_0000];
    v[0..4].copy_from_slice(b"MZ@\xfa");
    v[16..24].copy_from_slice(&0x1a0_0000u64.to_le_bytes());
    v[24..32].copy_from_slice(&0b1010u64.to_le_bytes());
    v[0x38..0x3c].copy_from_slice(b"ARM\x64");
    let p = dir.join("Image");
    std::fs::write(&p, v).unwrap();
    p
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kexec-rs-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn dry_run_crash_plan_on_fixture() {
    let d = tmpdir("plan");
    let out = bin()
        .args([
            "-p",
            "-c",
            "--dry-run",
            "--reuse-cmdline",
            "--append",
            "maxcpus=1 reset_devices",
            "--sysroot",
        ])
        .arg(fixture())
        .arg(image(&d))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(
            "plan: crash (kexec_load, KEXEC_ON_CRASH), 4 segments in 0xafe00000-0xbfdfffff"
        ),
        "{text}"
    );
    assert!(
        text.contains("linux,elfcorehdr 0xb1800000-0xb180023b"),
        "{text}"
    );
    assert!(
        text.contains("bootargs: console=ttyAMA0 maxcpus=1 reset_devices"),
        "{text}"
    );
}

#[test]
fn dry_run_json() {
    let d = tmpdir("json");
    let out = bin()
        .args(["-p", "-c", "--dry-run", "--json", "--sysroot"])
        .arg(fixture())
        .arg(image(&d))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"purpose\": \"elfcorehdr\""), "{text}");
    assert!(text.contains("\"entry\": \"0xb1803000\""), "{text}");
}

#[test]
fn status_exit_codes() {
    let out = bin()
        .arg("status")
        .arg("--sysroot")
        .arg(fixture())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "crash kernel not loaded → 3");
    assert!(String::from_utf8_lossy(&out.stdout).contains("crash kernel: not loaded"));
    let out = bin()
        .args(["-S", "--dry-run", "--sysroot"])
        .arg(fixture())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "kexec-tools -S: 0 when not loaded"
    );
}

#[test]
fn refusals() {
    let out = bin().args(["-l", "-p", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    let d = tmpdir("bad");
    let k = d.join("short");
    std::fs::write(&k, [0u8; 40]).unwrap();
    let out = bin()
        .args(["-p", "-c", "--dry-run", "--sysroot"])
        .arg(fixture())
        .arg(&k)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("truncated arm64 Image header: needs 64 bytes at offset 0x0, file has 40"),
        "{err}"
    );
    let out = bin()
        .args(["--dry-run", "--sysroot"])
        .arg(fixture())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));
}
