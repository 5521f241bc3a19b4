//! Embeds the purgatory (`crash-payload/purgatory`) when kexec-rs is built
//! for aarch64; nothing happens for other targets, where the loader falls
//! back to the non-verifying trampoline (`purgatory::default_purgatory`).
//!
//! The purgatory ELF comes from `KEXEC_RS_PURGATORY_ELF` when set (a
//! prebuilt `cargo build -p purgatory --target aarch64-unknown-none-softfloat
//! --release`), else this script runs exactly that build into its own
//! target directory under `OUT_DIR` (needs the target:
//! `rustup target add aarch64-unknown-none-softfloat`). The loadable bytes
//! (`purgatory::elf::image`, header checked) go to `OUT_DIR/purgatory.bin`;
//! nothing generated is checked in.
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "aarch64-unknown-none-softfloat";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kexec_rs_purgatory)");
    println!("cargo:rerun-if-env-changed=KEXEC_RS_PURGATORY_ELF");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("aarch64") {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let elf_path = match std::env::var_os("KEXEC_RS_PURGATORY_ELF") {
        Some(p) => PathBuf::from(p),
        None => build_purgatory(&out),
    };
    println!("cargo:rerun-if-changed={}", elf_path.display());
    let elf = std::fs::read(&elf_path)
        .unwrap_or_else(|e| panic!("reading the purgatory {}: {e}", elf_path.display()));
    let (bytes, _header) = purgatory::elf::image(&elf)
        .unwrap_or_else(|e| panic!("purgatory {}: {e}", elf_path.display()));
    let bin = out.join("purgatory.bin");
    std::fs::write(&bin, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", bin.display()));
    println!("cargo:rustc-cfg=kexec_rs_purgatory");
}

/// `cargo build -p purgatory --target aarch64-unknown-none-softfloat --release`
/// into `OUT_DIR/purgatory-target` (a separate target directory: the outer
/// build holds the lock on the workspace's).
fn build_purgatory(out: &std::path::Path) -> PathBuf {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest_dir.join("..");
    let src = workspace.join("crash-payload/purgatory");
    println!("cargo:rerun-if-changed={}", src.display());
    let target_dir = out.join("purgatory-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--offline",
            "-p",
            "purgatory",
            "--bin",
            "purgatory",
            "--target",
            TARGET,
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags are for the host or the Linux target.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build the purgatory: {e}"));
    if !status.success() {
        panic!(
            "building the purgatory failed ({status}); `rustup target add {TARGET}`, or build it yourself and set \
             KEXEC_RS_PURGATORY_ELF to target/{TARGET}/release/purgatory"
        );
    }
    target_dir.join(TARGET).join("release").join("purgatory")
}
