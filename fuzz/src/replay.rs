//! The replay harness the crates' `fuzz_regressions` tests share (included
//! with `#[path]`): every seed of a target, then every saved crash under
//! `fuzz/regressions/<target>/`, through the same code libFuzzer runs.

use std::io::Write as _;
use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs `run` on every seed and every file of `fuzz/regressions/<target>/`;
/// fails naming each input that panics.
pub fn replay(target: &str, run: fn(&[u8]), seeds: fn() -> Vec<Vec<u8>>) {
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
                $crate::replay::replay(stringify!($t), $m::$t, $m::$s);
            }
        )*
    };
}

