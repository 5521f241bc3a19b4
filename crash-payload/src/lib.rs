//! The no_std core shared by every part of the project.
//!
//! Everything here works on byte slices and plain values: no allocation, no
//! I/O. The same code runs in host tests, in the `vmcore` analyzer, in the
//! kexec-rs loader, and on bare metal (firmware, purgatory, kernel module).
//!
//! Formats (byte-exact, see `shared/DESIGN.md` section 3):
//! - [`note`]: ELF note framing (`Elf64_Nhdr`, 4-byte padding), read and write.
//! - [`prstatus`]: arm64 `struct elf_prstatus` (392 bytes).
//! - [`crash_note`]: the kernel's 424-byte per-CPU crash-notes buffer.
//! - [`vmcoreinfo`]: the `VMCOREINFO` note's `KEY=VALUE` text.
//! - [`cpumap`]: the loader's CPU-map note, which says which note is which CPU.
//! - [`elfcorehdr`]: the ELF64 `ET_CORE` header and program headers the crash kernel reads.
//!
//! Firmware ABI: [`smccc`] (function IDs, versions, the SMC/HVC/fake conduit),
//! [`psci`] (PSCI 1.1) and [`sdei`] (SDEI 1.0, event 0), each with one error type.
#![no_std]
#![deny(missing_docs)]
// `unsafe` is denied everywhere; the one exception is the `smc`/`hvc` asm in
// `smccc::arch`, which carries `#[allow(unsafe_code)]` and `// SAFETY:` comments.
#![deny(unsafe_code)]

pub mod addr;
pub mod cpumap;
pub mod crash_note;
pub mod elfcorehdr;
pub mod le;
pub mod note;
pub mod prstatus;
pub mod psci;
pub mod sdei;
pub mod smccc;
pub mod stop;
pub mod vmcoreinfo;

pub use addr::{PhysAddr, VirtAddr};
