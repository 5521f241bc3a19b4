//! kexec-rs: a kexec loader for arm64 that builds its own crash-kernel
//! segments (the `kexec_load` path, the only one on Debian 6.1 arm64).
//!
//! Data flows one way: the host's files ([`source`]) → typed views
//! ([`iomem`], [`sysfs`], [`fdt`], [`image`]) → a plain [`plan::Plan`] →
//! one syscall ([`act`], through [`sys::KexecSys`]). Architecture is data:
//! everything but [`sys::linux`] runs and is tested on any host.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod act;
pub mod cmdline;
pub mod fdt;
pub mod image;
pub mod iomem;
pub mod kdump;
pub mod plan;
pub mod purgatory;
pub mod source;
pub mod sys;
pub mod sysfs;

#[cfg(test)]
mod tests;

use crash_payload::PhysAddr;

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Serializes a physical address as a `0x` hex string.
pub(crate) fn ser_phys<S: serde::Serializer>(a: &PhysAddr, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{:#x}", a.get()))
}

/// Serializes bytes as a hex string.
pub(crate) fn ser_hex<S: serde::Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(b))
}
