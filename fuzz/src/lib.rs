//! Fuzz target bodies for the kexec-rs workspace, one plain function per
//! target plus its seeds, so the workspace's regression tests can replay
//! `fuzz/regressions/<target>/` through exactly the same code (they include
//! these files with `#[path]`). See `fuzz/README.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod firmware;
pub mod input;
pub mod kexec;
pub mod payload;
pub mod vmcore;
