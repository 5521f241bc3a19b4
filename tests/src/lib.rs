//! Support for the integration tests: the real arm64 dumps that
//! `tests/dumps/make-dumps.sh` makes under QEMU, and the facts recorded
//! about them (`truth.json`).
//!
//! The dumps live outside the clone, in `${KEXECRS_CACHE:-/var/cache/kexec-rs}/dumps/<release>/`.
//! When they are missing, the tests make them (running the script) rather
//! than skip: a test that needs a real dump never passes without one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The cache directory.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("KEXECRS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kexec-rs"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn find_truth() -> Option<PathBuf> {
    let dumps = cache_dir().join("dumps");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dumps)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("truth.json"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The real dumps and their recorded truth, making them first if needed.
pub fn real_dumps() -> &'static Result<(PathBuf, Value), String> {
    static DUMPS: OnceLock<Result<(PathBuf, Value), String>> = OnceLock::new();
    DUMPS.get_or_init(|| load().map_err(|e| format!("{e:#}")))
}

fn load() -> Result<(PathBuf, Value)> {
    if find_truth().is_none() {
        let script = repo_root().join("tests/dumps/make-dumps.sh");
        let st = Command::new(&script)
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !st.success() {
            bail!("{} failed ({st})", script.display());
        }
    }
    let truth = find_truth().context("make-dumps.sh ran but wrote no truth.json")?;
    let text = std::fs::read_to_string(&truth).with_context(|| truth.display().to_string())?;
    let v: Value = serde_json::from_str(&text).with_context(|| truth.display().to_string())?;
    let dir = truth.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((dir, v))
}
