//! Passes the linker scripts, for the bare-metal target only: on a host the
//! binaries are stubs and link normally.
fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=fake-kernel.ld");
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "none" {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        // Position-independent: linked at 0 as a static PIE whose
        // R_AARCH64_RELATIVE relocations the entry code applies itself, so the
        // loader may place it at any 4 KiB-aligned address. `-z notext`: the
        // precompiled `core` is not PIC, so a few absolute pointers sit in
        // read-only sections; the single RWX segment makes them writable.
        for arg in [
            "-T",
            &format!("{dir}/link.ld"),
            "--pie",
            "-z",
            "notext",
            "--no-dynamic-linker",
            "-z",
            "norelro",
        ] {
            println!("cargo:rustc-link-arg-bin=purgatory={arg}");
        }
        println!("cargo:rustc-link-arg-bin=purgatory-fake-kernel=-T{dir}/fake-kernel.ld");
    }
}
