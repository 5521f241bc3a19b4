//! `kexec-rs kdump` against a sysroot made of the QEMU virt fixture, a
//! header-only Image and a small gzip initramfs: estimate, status and
//! start --dry-run. Nothing here loads a kernel or writes to the host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kexec-rs"))
}

/// `DIR/{proc,sys}` → the fixture; `DIR/boot/{Image,initrd.img}`;
/// `DIR/etc/kexec-rs/kdump.toml`.
fn sysroot(name: &str, extra: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kexec-rs-kdump-{name}-{}", std::process::id()));
    let fx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qemu-virt-2cpu-2g");
    std::fs::create_dir_all(d.join("boot")).unwrap();
    std::fs::create_dir_all(d.join("etc/kexec-rs")).unwrap();
    for s in ["proc", "sys"] {
        let _ = std::os::unix::fs::symlink(fx.join(s), d.join(s));
    }
    // 64 KiB Image, image_size 32 MiB, 4K pages.
    let mut v = vec![0u8; 0x1_0000];
    v[0..4].copy_from_slice(b"MZ@\xfa");
    v[16..24].copy_from_slice(&(32u64 << 20).to_le_bytes());
    v[24..32].copy_from_slice(&0b1010u64.to_le_bytes());
    v[0x38..0x3c].copy_from_slice(b"ARM\x64");
    std::fs::write(d.join("boot/Image"), v).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&vec![0u8; 3 << 20]).unwrap();
    std::fs::write(d.join("boot/initrd.img"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        d.join("etc/kexec-rs/kdump.toml"),
        format!("[kernel]\nimage = \"/boot/Image\"\ninitrd = \"/boot/initrd.img\"\nappend = \"panic=1\"\n{extra}[save]\ntarget = \"stdout\"\n"),
    )
    .unwrap();
    d
}

fn run(root: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = bin()
        .arg("kdump")
        .arg("--sysroot")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn estimate_from_a_sysroot() {
    let d = sysroot("estimate", "");
    let (code, out, err) = run(&d, &["estimate", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items[0]["bytes"], 32u64 << 20);
    assert_eq!(
        items[2]["bytes"],
        3u64 << 20,
        "unpacked size measured by decompressing"
    );
    assert_eq!(items[2]["note"], "measured");
    // 32 + 3 KiB + 3 + 0 + 48 + 32.125, then x 64/63: 116.6 MiB -> 128M.
    assert_eq!(v["crashkernel"], "crashkernel=128M");
}

#[test]
fn status_names_each_reason_and_exits_3() {
    let d = sysroot("status", "");
    let (code, out, err) = run(&d, &["status", "--json"]);
    assert_eq!(code, Some(3), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let reasons: Vec<&str> = v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["no-crash-kernel", "no-sdei-firmware", "no-pseudo-nmi"]
    );
    assert_eq!(v["facts"]["reservation"], 256u64 << 20);
    assert_eq!(v["estimate"], 128u64 << 20);
    let (_, text, _) = run(&d, &["status"]);
    assert!(
        text.contains("verdict: a crash now may NOT capture every CPU:"),
        "{text}"
    );
}

#[test]
fn start_dry_run_and_refusals() {
    let d = sysroot("start", "sdei = \"off\"\n");
    let (code, out, err) = run(&d, &["start", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("would load the crash kernel /boot/Image with initramfs /boot/initrd.img"),
        "{out}"
    );
    assert!(
        out.contains("cmdline: reset_devices nr_cpus=1 maxcpus=1 console=ttyAMA0 panic=1\n"),
        "{out}"
    );
    assert!(
        out.contains("skip sdei-stop.ko: not loaded (sdei = \"off\")"),
        "{out}"
    );
    for cmd in ["stop", "save", "start"] {
        let (code, _, err) = run(&d, &[cmd]);
        assert_eq!(code, Some(1));
        assert!(err.contains("--sysroot"), "{cmd}: {err}");
    }
    let (code, _, err) = run(&d, &["test"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--sysroot is not for test"), "{err}");
}

#[test]
fn config_errors_name_file_line_and_key() {
    let d = sysroot("badcfg", "");
    let cfg = d.join("bad.toml");
    std::fs::write(
        &cfg,
        "[save]\ntarget = \"stdout\"\n[kernel]\ninitrd = \"/boot/initrd.img\"\nsdei = true\n",
    )
    .unwrap();
    let (code, _, err) = run(&d, &["--config", cfg.to_str().unwrap(), "estimate"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            "{}:5: key `sdei`: invalid type: boolean `true`, expected a string",
            cfg.display()
        )),
        "{err}"
    );
}
