//! The `sdei-fw` binary. For `target_os = "none"` everything is in the
//! library's `platform` module (reset vector, exception vectors, panic
//! handler); on a host this is a stub.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use sdei_fw as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "sdei-fw is EL3 firmware. Build it with\n  cargo build -p sdei-fw --target aarch64-unknown-none-softfloat --release\n\
         and start QEMU with -machine virt,secure=on,gic-version=3 -bios sdei-fw.bin (see the crate docs)."
    );
    std::process::exit(2);
}
