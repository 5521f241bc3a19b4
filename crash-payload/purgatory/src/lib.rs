//! The kexec-rs purgatory for arm64: the code the crashed (or `kexec -e`)
//! kernel jumps to on the `kexec_load` path. It checks the SHA-256 of every
//! segment the loader listed, then enters the new kernel with `x0` = the
//! DTB and `x1..x3` = 0 (`Documentation/arm64/booting.rst`); on a mismatch
//! it prints which segment on the UART and parks, never booting.
//!
//! # How it is entered
//!
//! Linux (`arch/arm64/kernel/machine_kexec.c`, `cpu-reset.S`,
//! `relocate_kernel.S`) branches to `kimage->start` — the purgatory's load
//! address — at EL1, or at EL2 (with `HCR_EL2.E2H` 0 or 1), with the MMU and
//! the caches off, interrupts masked, and `x0` = 0 on this path.
//!
//! # What it does
//!
//! 1. Entry (`asm/entry.S`): clean+invalidate its own image to the Point of
//!    Coherency, apply its own `R_AARCH64_RELATIVE` relocations (it is
//!    linked at 0 as a static PIE, so the loader may place it at any
//!    4 KiB-aligned address), zero `.bss`, take a stack and install
//!    exception vectors that report and park.
//! 2. Clean+invalidate every segment (no stale line may hide what memory
//!    really holds), build an identity map in a table pool inside `.bss`
//!    ([`mmu`]), and turn the MMU and caches on.
//! 3. Hash every segment with the ARMv8 SHA-256 instructions when
//!    `ID_AA64ISAR0_EL1.SHA2` says they exist (after a self-test against the
//!    software path), else with [`sha256::compress_soft`].
//! 4. On success print `purgatory: N segments, B bytes verified in X ms`,
//!    clean+invalidate the segments and itself to the PoC, turn the MMU and
//!    caches off (restoring `SCTLR`, `TCR`, `MAIR`, `TTBR0`, `CPACR`/`CPTR`
//!    and `VBAR` as found), invalidate the I-cache and TLBs and branch.
//!
//! # Building and embedding
//!
//! `cargo build -p purgatory --target aarch64-unknown-none-softfloat --release`
//! gives the ELF `target/aarch64-unknown-none-softfloat/release/purgatory`.
//! kexec-rs embeds it at build time (its `build.rs` runs that command when
//! kexec-rs is built for aarch64, or takes `KEXEC_RS_PURGATORY_ELF`), and
//! turns it into the placed bytes with [`elf::image`]; no generated binary
//! is checked in. The image layout and the parameter block are in
//! [`layout`].
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod elf;
pub mod layout;
pub mod mmu;
pub mod sha256;
pub mod text;

#[cfg(target_os = "none")]
mod platform;
