//! Replays the fuzz targets of `kexec-rs` and of the `sdei-fw` firmware's
//! host-testable DTB and Image code (which feeds kexec-rs's parsers) on their
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

#[allow(dead_code)]
#[path = "../../fuzz/src/firmware.rs"]
mod firmware;

#[macro_use]
#[path = "../../fuzz/src/replay.rs"]
mod replay;

targets! {
    kexec::iomem / seeds_iomem,
    kexec::fdt / seeds_fdt,
    kexec::dtb_edit / seeds_fdt,
    kexec::image / seeds_image,
    kexec::sysfs / seeds_sysfs,
    kexec::cmdline / seeds_cmdline,
    kexec::kdump_config / seeds_kdump_config,
    kexec::kdump_elf / seeds_kdump_elf,
    firmware::fw_fdt / seeds_fw_fdt,
    firmware::fw_image / seeds_fw_image,
}
