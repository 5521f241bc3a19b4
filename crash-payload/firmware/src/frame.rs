//! The register frame the EL3 exception vectors save and restore.
//!
//! `asm/vectors.S` stores `x0..x30`, `ELR_EL3` and `SPSR_EL3` at the offsets
//! below (passed to the assembler as `const` operands, never typed as numbers),
//! hands a `&mut TrapFrame` to Rust, and restores whatever Rust left in it before
//! `eret`. An SMC's results, an SDEI dispatch and a completion are all edits of
//! this frame.
#![forbid(unsafe_code)]

use core::mem::{offset_of, size_of};

/// The interrupted Normal-world context: general registers, return address
/// and saved PSTATE.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapFrame {
    /// `x0..x30`.
    pub x: [u64; 31],
    /// `ELR_EL3`: where `eret` goes.
    pub elr: u64,
    /// `SPSR_EL3`: the PSTATE `eret` restores.
    pub spsr: u64,
    /// Keeps the frame a multiple of 16 bytes (SP alignment).
    pub pad: u64,
}

/// Bytes the vectors reserve on the EL3 stack.
pub const FRAME_SIZE: usize = size_of::<TrapFrame>();
/// Offset of `x30` (stored as a pair with `ELR_EL3`).
pub const FRAME_X30: usize = offset_of!(TrapFrame, x) + 30 * 8;
/// Offset of `ELR_EL3`.
pub const FRAME_ELR: usize = offset_of!(TrapFrame, elr);
/// Offset of `SPSR_EL3`.
pub const FRAME_SPSR: usize = offset_of!(TrapFrame, spsr);

const _: () = assert!(FRAME_SIZE == 272);
const _: () = assert!(FRAME_SIZE & 15 == 0);
const _: () = assert!(offset_of!(TrapFrame, x) == 0);
// The vectors store x30 and ELR_EL3 with one `stp`.
const _: () = assert!(FRAME_ELR == FRAME_X30 + 8);
const _: () = assert!(FRAME_SPSR == FRAME_ELR + 8);

impl TrapFrame {
    /// An all-zero frame.
    pub const ZERO: Self = Self {
        x: [0; 31],
        elr: 0,
        spsr: 0,
        pad: 0,
    };
}

/// `SPSR_ELx.M[3:0]` for AArch64 EL1 using `SP_EL1`.
pub const SPSR_M_EL1H: u64 = 0b0101;
/// `SPSR_ELx.M[3:0]` for AArch64 EL2 using `SP_EL2`.
pub const SPSR_M_EL2H: u64 = 0b1001;
/// `SPSR_ELx.{D,A,I,F}` all set.
pub const SPSR_DAIF: u64 = 0xf << 6;

/// The exception level a saved PSTATE was at (`M[3:2]`).
pub const fn spsr_el(spsr: u64) -> u8 {
    ((spsr >> 2) & 3) as u8
}

/// The PSTATE for entering the Normal world at `el` (1 or 2), using `SP_ELx`,
/// with D, A, I and F masked: how Linux is entered at boot and after
/// `CPU_ON`, and how an SDEI handler is entered (SDEI §5.2.1).
pub const fn spsr_elx_h_masked(el: u8) -> u64 {
    let m = if el == 2 { SPSR_M_EL2H } else { SPSR_M_EL1H };
    m | SPSR_DAIF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spsr_values() {
        assert_eq!(spsr_elx_h_masked(1), 0x3c5);
        assert_eq!(spsr_elx_h_masked(2), 0x3c9);
        assert_eq!(spsr_el(0x3c5), 1);
        assert_eq!(spsr_el(0x3c9), 2);
        assert_eq!(spsr_el(0x0), 0);
    }
}
