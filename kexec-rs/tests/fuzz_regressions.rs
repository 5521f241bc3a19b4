//! Replays the fuzz targets of `kexec-rs` on their
//! seeds and on every saved crash under `fuzz/regressions/<target>/`, through
//! the same code libFuzzer runs (`fuzz/src/*.rs`, included here). A target
//! with no saved crashes still runs its seeds, so nothing is skipped.
//!
//! `FUZZ_WRITE_SEEDS=1 cargo test -p kexec-rs --test fuzz_regressions`
//! also writes the seeds to `fuzz/corpus/<target>/` (see `fuzz/README.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../../fuzz/src/input.rs"]
mod input;
#[allow(dead_code)]
#[path = "../../fuzz/src/kexec.rs"]
mod kexec;

use std::io::Write as _;
use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs `run` on every seed and every file of `fuzz/regressions/<target>/`;
/// fails naming each input that panics.
fn replay(target: &str, run: fn(&[u8]), seeds: fn() -> Vec<Vec<u8>>) {
    let mut inputs: Vec<(String, Vec<u8>)> = seeds()
        .into_iter()
        .enumerate()
        .map(|(i, s)| (format!("seed {i}"), s))
        .collect();
    assert!(!inputs.is_empty(), "{target}: no seeds");
    if std::env::var_os("FUZZ_WRITE_SEEDS").is_some() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, (_, s)) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
        }
    }
    let dir = fuzz_dir().join("regressions").join(target);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
        files.sort();
        for f in files {
            inputs.push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }
    let mut failed = Vec::new();
    for (name, bytes) in &inputs {
        // Straight to fd 2, not captured: an input that aborts the process
        // (a failed allocation) is still named.
        if !name.starts_with("seed") {
            let _ = writeln!(std::io::stderr(), "{target}: replaying {name}");
        }
        if std::panic::catch_unwind(|| run(bytes)).is_err() {
            failed.push(name.clone());
        }
    }
    assert!(failed.is_empty(), "{target}: panicked on {failed:?}");
}

macro_rules! targets {
    ($($m:ident :: $t:ident / $s:ident),* $(,)?) => {
        $(
            #[test]
            fn $t() {
                replay(stringify!($t), $m::$t, $m::$s);
            }
        )*
    };
}

targets! {
    kexec::iomem / seeds_iomem,
    kexec::fdt / seeds_fdt,
    kexec::dtb_edit / seeds_fdt,
    kexec::image / seeds_image,
    kexec::sysfs / seeds_sysfs,
    kexec::cmdline / seeds_cmdline,
}
