//! `vmcore-tools`: read arm64 vmcores and prove which CPUs were captured.
//!
//! Layers, data flowing one way (`shared/DESIGN.md` §2):
//! - [`source`]: the mmapped file, with a count of the pages read
//!   ([`sigbus`]: a failed read of a mapped page is an error naming the file).
//! - [`format`]: ELF (/proc/vmcore, `makedumpfile -E`, QEMU), makedumpfile's
//!   kdump-compressed format and its flattened stream, detected by content;
//!   each gives notes, VMCOREINFO and physical memory ([`mem::PhysMem`]).
//! - [`arm64`]: address translation (kernel image, linear map, page tables).
//! - [`kallsyms`], [`symbols`]: function symbols from the dump, data symbols
//!   from a System.map or vmlinux.
//! - [`printk`]: the kernel log.
//! - [`cpus`]: which note is which CPU, and the verdict.
//! - [`report`]: text and JSON output.
#![deny(missing_docs)]

pub mod analyze;
pub mod arm64;
pub mod cli;
pub mod cpus;
pub mod error;
pub mod format;
pub mod kallsyms;
pub mod mem;
pub mod printk;
pub mod report;
pub mod save;
pub mod sigbus;
pub mod source;
pub mod symbols;

pub use error::{Error, ParseError};
