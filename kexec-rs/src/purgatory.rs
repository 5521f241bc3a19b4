//! The purgatory slot: the code the old kernel jumps to after a panic (or
//! at `kexec -e`) on the `kexec_load` path.
//!
//! Why one is needed on arm64 (checked in Linux 6.1,
//! `arch/arm64/kernel/machine_kexec.c` and `relocate_kernel.S`): both the
//! no-relocation path (`cpu_soft_restart(kimage->start,
//! kimage->arch.dtb_mem, 0, 0)`, taken for crash images) and
//! `arm64_relocate_new_kernel` enter `kimage->start` with
//! `x0 = kimage->arch.dtb_mem`, `x1..x3 = 0`. Only `kexec_file_load` sets
//! `arch.dtb_mem` (`machine_kexec_file.c`, `load_other_segments()`); for
//! `kexec_load` the kimage is zero-allocated, so `x0 = 0`. The kernel's own
//! comment: "In kexec case, kimage->start points to purgatory assuming that
//! kernel entry and dtb address are embedded in purgatory by userspace".
//! The arm64 boot protocol needs `x0` = the DTB's physical address, so the
//! entry of a `kexec_load` image must be code that sets it: a purgatory.
//!
//! The real purgatory (SHA-256 check of every segment, then the jump) is a
//! separate `no_std` crate still to come; it plugs in through [`Purgatory`].
//! Until then [`Trampoline`] fills the slot: 40 bytes that load `x0` with
//! the DTB address, zero `x1..x3` and branch to the kernel, verifying
//! nothing (what kexec-tools' purgatory does with its checks skipped).

use crash_payload::PhysAddr;

/// What the purgatory must hand over and may verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// Physical address of the kernel's first instruction.
    pub kernel_entry: PhysAddr,
    /// Physical address of the DTB (goes in `x0`).
    pub dtb: PhysAddr,
    /// Every other segment: `(mem, bytes_len, sha256 of its bytes)`.
    pub digests: Vec<(PhysAddr, u64, [u8; 32])>,
}

/// A built purgatory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgatoryImage {
    /// The bytes to load at the slot address.
    pub bytes: Vec<u8>,
    /// Offset of the entry point within `bytes`.
    pub entry_offset: u64,
    /// True when it checks the segment digests before jumping.
    pub verifies: bool,
}

/// A purgatory implementation that fills the plan's slot.
pub trait Purgatory {
    /// A short name for the plan output.
    fn name(&self) -> &'static str;
    /// Bytes to reserve (a multiple of the page size is not required; the
    /// planner rounds up).
    fn slot_size(&self) -> u64;
    /// Builds the image for load address `at`.
    fn build(&self, at: PhysAddr, handoff: &Handoff) -> Result<PurgatoryImage, String>;
}

/// The minimal hand-off (no verification).
#[derive(Debug, Clone, Copy, Default)]
pub struct Trampoline;

/// `ldr x0, #0x18` (LDR literal, 64-bit: `0x58000000 | imm19 << 5 | Rt`).
const LDR_X0_DTB: u32 = 0x5800_0000 | (6 << 5);
/// `ldr x4, #0x1c` (from pc 4 to the entry word at 0x20).
const LDR_X4_ENTRY: u32 = 0x5800_0000 | (7 << 5) | 4;
/// `mov x1, xzr` (`orr x1, xzr, xzr`).
const MOV_X1_XZR: u32 = 0xaa1f_03e1;
/// `mov x2, xzr`.
const MOV_X2_XZR: u32 = 0xaa1f_03e2;
/// `mov x3, xzr`.
const MOV_X3_XZR: u32 = 0xaa1f_03e3;
/// `br x4`.
const BR_X4: u32 = 0xd61f_0080;
/// Bytes of the trampoline: six instructions and two 64-bit literals.
pub const TRAMPOLINE_SIZE: usize = 40;

impl Purgatory for Trampoline {
    fn name(&self) -> &'static str {
        "trampoline (no digest check)"
    }
    fn slot_size(&self) -> u64 {
        TRAMPOLINE_SIZE as u64
    }
    fn build(&self, _at: PhysAddr, h: &Handoff) -> Result<PurgatoryImage, String> {
        let mut b = Vec::with_capacity(TRAMPOLINE_SIZE);
        for w in [LDR_X0_DTB, LDR_X4_ENTRY, MOV_X1_XZR, MOV_X2_XZR, MOV_X3_XZR, BR_X4] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&h.dtb.get().to_le_bytes());
        b.extend_from_slice(&h.kernel_entry.get().to_le_bytes());
        Ok(PurgatoryImage { bytes: b, entry_offset: 0, verifies: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampoline_encoding() {
        let h = Handoff { kernel_entry: PhysAddr(0xb000_0000), dtb: PhysAddr(0xb2a0_0000), digests: vec![] };
        let p = Trampoline.build(PhysAddr(0xb2c0_0000), &h).unwrap();
        assert_eq!(p.bytes.len(), TRAMPOLINE_SIZE);
        let w = |i: usize| u32::from_le_bytes(p.bytes[i * 4..i * 4 + 4].try_into().unwrap());
        // Encodings as GNU as assembles them.
        assert_eq!(w(0), 0x5800_00c0); // ldr x0, 18 <dtb>
        assert_eq!(w(1), 0x5800_00e4); // ldr x4, 20 <entry>
        assert_eq!(w(5), 0xd61f_0080); // br x4
        // The literals the loads reach: pc + imm19 * 4.
        let lit = |pc: usize, word: u32| pc + (((word >> 5) & 0x7ffff) as usize) * 4;
        assert_eq!(lit(0, w(0)), 0x18);
        assert_eq!(lit(4, w(1)), 0x20);
        assert_eq!(&p.bytes[0x18..0x20], &0xb2a0_0000u64.to_le_bytes());
        assert_eq!(&p.bytes[0x20..0x28], &0xb000_0000u64.to_le_bytes());
        assert!(!p.verifies);
    }
}
