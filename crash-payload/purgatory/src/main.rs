//! The `purgatory` binary. For `target_os = "none"` everything is in the
//! library's `platform` module (entry, vectors, panic handler); on a host
//! this is a stub.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use purgatory as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "purgatory is bare-metal code entered by the kexec hand-over. Build it with\n  \
         cargo build -p purgatory --target aarch64-unknown-none-softfloat --release\n\
         kexec-rs embeds it; tests/purgatory/run.sh runs it under QEMU."
    );
    std::process::exit(2);
}
