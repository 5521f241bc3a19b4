//! arm64 `struct elf_prstatus` (392 bytes), as the kernel writes it into a
//! CPU's crash note (`include/linux/elfcore.h`, `arch/arm64/include/asm/elf.h`).
//!
//! `pr_reg` is `elf_gregset_t`: x0..x30, sp, pc, pstate (34 × u64) at 112.

use core::mem::{offset_of, size_of};

use crate::le;

/// Number of general registers in arm64 `elf_gregset_t`.
pub const ELF_NGREG: usize = 34;

/// `struct __kernel_old_timeval` as laid out on arm64.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeval {
    /// Seconds.
    pub tv_sec: i64,
    /// Microseconds.
    pub tv_usec: i64,
}

/// arm64 `struct elf_prstatus`. Field names follow the kernel.
///
/// This is the layout contract: [`ElfPrstatus::parse`] and
/// [`ElfPrstatus::write`] read and write each field little-endian at the
/// offset this declaration gives it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfPrstatus {
    /// `pr_info.si_signo`.
    pub si_signo: i32,
    /// `pr_info.si_code`.
    pub si_code: i32,
    /// `pr_info.si_errno`.
    pub si_errno: i32,
    /// Current signal.
    pub pr_cursig: i16,
    /// Pending signals.
    pub pr_sigpend: u64,
    /// Held signals.
    pub pr_sighold: u64,
    /// Process (thread) id; the kernel stores `current->pid`.
    pub pr_pid: i32,
    /// Parent pid.
    pub pr_ppid: i32,
    /// Process group.
    pub pr_pgrp: i32,
    /// Session id.
    pub pr_sid: i32,
    /// User time.
    pub pr_utime: Timeval,
    /// System time.
    pub pr_stime: Timeval,
    /// Cumulative user time.
    pub pr_cutime: Timeval,
    /// Cumulative system time.
    pub pr_cstime: Timeval,
    /// x0..x30, sp, pc, pstate.
    pub pr_reg: [u64; ELF_NGREG],
    /// True if math co-processor registers are valid.
    pub pr_fpvalid: i32,
}

/// Size of arm64 `struct elf_prstatus`.
pub const PRSTATUS_SIZE: usize = 392;
/// Offset of `pr_pid`.
pub const OFF_PR_PID: usize = 32;
/// Offset of `pr_reg`.
pub const OFF_PR_REG: usize = 112;
/// Offset of `pr_fpvalid`.
pub const OFF_PR_FPVALID: usize = 384;

const _: () = assert!(size_of::<ElfPrstatus>() == PRSTATUS_SIZE);
const _: () = assert!(offset_of!(ElfPrstatus, pr_pid) == OFF_PR_PID);
const _: () = assert!(offset_of!(ElfPrstatus, pr_reg) == OFF_PR_REG);
const _: () = assert!(offset_of!(ElfPrstatus, pr_reg) + 31 * 8 == 360); // sp
const _: () = assert!(offset_of!(ElfPrstatus, pr_reg) + 32 * 8 == 368); // pc
const _: () = assert!(offset_of!(ElfPrstatus, pr_reg) + 33 * 8 == 376); // pstate
const _: () = assert!(offset_of!(ElfPrstatus, pr_fpvalid) == OFF_PR_FPVALID);

/// The general registers of one arm64 CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Regs {
    /// x0..x30 (x29 = fp, x30 = lr).
    pub x: [u64; 31],
    /// Stack pointer.
    pub sp: u64,
    /// Program counter.
    pub pc: u64,
    /// PSTATE (SPSR layout).
    pub pstate: u64,
}

impl Regs {
    /// The link register, x30.
    pub fn lr(&self) -> u64 {
        self.x[30]
    }
    /// The frame pointer, x29.
    pub fn fp(&self) -> u64 {
        self.x[29]
    }
}

impl Default for ElfPrstatus {
    fn default() -> Self {
        ElfPrstatus {
            si_signo: 0,
            si_code: 0,
            si_errno: 0,
            pr_cursig: 0,
            pr_sigpend: 0,
            pr_sighold: 0,
            pr_pid: 0,
            pr_ppid: 0,
            pr_pgrp: 0,
            pr_sid: 0,
            pr_utime: Timeval::default(),
            pr_stime: Timeval::default(),
            pr_cutime: Timeval::default(),
            pr_cstime: Timeval::default(),
            pr_reg: [0; ELF_NGREG],
            pr_fpvalid: 0,
        }
    }
}

/// A descriptor of the wrong size for arm64 `elf_prstatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrstatusSizeError {
    /// The descriptor's size.
    pub got: usize,
}

impl core::fmt::Display for PrstatusSizeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "NT_PRSTATUS descriptor is {} bytes, arm64 elf_prstatus is {PRSTATUS_SIZE}",
            self.got
        )
    }
}

fn i32_at(b: &[u8], off: usize) -> i32 {
    le::u32_at(b, off).unwrap_or(0) as i32
}
fn i64_at(b: &[u8], off: usize) -> i64 {
    le::u64_at(b, off).unwrap_or(0) as i64
}
fn tv_at(b: &[u8], off: usize) -> Timeval {
    Timeval {
        tv_sec: i64_at(b, off),
        tv_usec: i64_at(b, off + 8),
    }
}

impl ElfPrstatus {
    /// Parses a 392-byte descriptor.
    pub fn parse(desc: &[u8]) -> Result<Self, PrstatusSizeError> {
        if desc.len() != PRSTATUS_SIZE {
            return Err(PrstatusSizeError { got: desc.len() });
        }
        let mut pr_reg = [0u64; ELF_NGREG];
        for (i, r) in pr_reg.iter_mut().enumerate() {
            *r = le::u64_at(desc, OFF_PR_REG + 8 * i).unwrap_or(0);
        }
        Ok(ElfPrstatus {
            si_signo: i32_at(desc, offset_of!(ElfPrstatus, si_signo)),
            si_code: i32_at(desc, offset_of!(ElfPrstatus, si_code)),
            si_errno: i32_at(desc, offset_of!(ElfPrstatus, si_errno)),
            pr_cursig: le::u16_at(desc, offset_of!(ElfPrstatus, pr_cursig)).unwrap_or(0) as i16,
            pr_sigpend: le::u64_at(desc, offset_of!(ElfPrstatus, pr_sigpend)).unwrap_or(0),
            pr_sighold: le::u64_at(desc, offset_of!(ElfPrstatus, pr_sighold)).unwrap_or(0),
            pr_pid: i32_at(desc, offset_of!(ElfPrstatus, pr_pid)),
            pr_ppid: i32_at(desc, offset_of!(ElfPrstatus, pr_ppid)),
            pr_pgrp: i32_at(desc, offset_of!(ElfPrstatus, pr_pgrp)),
            pr_sid: i32_at(desc, offset_of!(ElfPrstatus, pr_sid)),
            pr_utime: tv_at(desc, offset_of!(ElfPrstatus, pr_utime)),
            pr_stime: tv_at(desc, offset_of!(ElfPrstatus, pr_stime)),
            pr_cutime: tv_at(desc, offset_of!(ElfPrstatus, pr_cutime)),
            pr_cstime: tv_at(desc, offset_of!(ElfPrstatus, pr_cstime)),
            pr_reg,
            pr_fpvalid: i32_at(desc, OFF_PR_FPVALID),
        })
    }

    /// Writes the 392-byte descriptor; padding bytes are zero.
    pub fn write(&self, out: &mut [u8; PRSTATUS_SIZE]) {
        out.fill(0);
        let o = &mut out[..];
        // Offsets come from the repr(C) declaration and all lie inside 392 bytes
        // (checked by the const asserts above), so these writes cannot fail.
        let _ = le::put_u32(o, offset_of!(ElfPrstatus, si_signo), self.si_signo as u32);
        let _ = le::put_u32(o, offset_of!(ElfPrstatus, si_code), self.si_code as u32);
        let _ = le::put_u32(o, offset_of!(ElfPrstatus, si_errno), self.si_errno as u32);
        let _ = le::put_u16(o, offset_of!(ElfPrstatus, pr_cursig), self.pr_cursig as u16);
        let _ = le::put_u64(o, offset_of!(ElfPrstatus, pr_sigpend), self.pr_sigpend);
        let _ = le::put_u64(o, offset_of!(ElfPrstatus, pr_sighold), self.pr_sighold);
        let _ = le::put_u32(o, offset_of!(ElfPrstatus, pr_pid), self.pr_pid as u32);
        let _ = le::put_u32(o, offset_of!(ElfPrstatus, pr_ppid), self.pr_ppid as u32);
        let _ = le::put_u32(o, offset_of!(ElfPrstatus, pr_pgrp), self.pr_pgrp as u32);
        let _ = le::put_u32(o, offset_of!(ElfPrstatus, pr_sid), self.pr_sid as u32);
        for (off, tv) in [
            (offset_of!(ElfPrstatus, pr_utime), self.pr_utime),
            (offset_of!(ElfPrstatus, pr_stime), self.pr_stime),
            (offset_of!(ElfPrstatus, pr_cutime), self.pr_cutime),
            (offset_of!(ElfPrstatus, pr_cstime), self.pr_cstime),
        ] {
            let _ = le::put_u64(o, off, tv.tv_sec as u64);
            let _ = le::put_u64(o, off + 8, tv.tv_usec as u64);
        }
        for (i, r) in self.pr_reg.iter().enumerate() {
            let _ = le::put_u64(o, OFF_PR_REG + 8 * i, *r);
        }
        let _ = le::put_u32(o, OFF_PR_FPVALID, self.pr_fpvalid as u32);
    }

    /// The registers in `pr_reg`.
    pub fn regs(&self) -> Regs {
        let mut x = [0u64; 31];
        x.copy_from_slice(&self.pr_reg[..31]);
        Regs {
            x,
            sp: self.pr_reg[31],
            pc: self.pr_reg[32],
            pstate: self.pr_reg[33],
        }
    }

    /// Sets `pr_reg` from `regs`.
    pub fn set_regs(&mut self, regs: &Regs) {
        self.pr_reg[..31].copy_from_slice(&regs.x);
        self.pr_reg[31] = regs.sp;
        self.pr_reg[32] = regs.pc;
        self.pr_reg[33] = regs.pstate;
    }
}

/// Decoded fields of an arm64 PSTATE (SPSR_ELx layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pstate {
    /// Exception level 0..3; `None` for AArch32 state (M[4] set).
    pub el: Option<u8>,
    /// SPSel: true = SP_ELx, false = SP_EL0 (`h`/`t` suffix).
    pub sp_elx: bool,
    /// D, A, I, F mask bits.
    pub d: bool,
    /// SError masked.
    pub a: bool,
    /// IRQ masked.
    pub i: bool,
    /// FIQ masked.
    pub f: bool,
}

impl Pstate {
    /// Decodes the PSTATE word.
    pub fn decode(v: u64) -> Pstate {
        let aarch32 = v & 0x10 != 0;
        Pstate {
            el: if aarch32 {
                None
            } else {
                Some(((v >> 2) & 3) as u8)
            },
            sp_elx: v & 1 != 0,
            d: v & (1 << 9) != 0,
            a: v & (1 << 8) != 0,
            i: v & (1 << 7) != 0,
            f: v & (1 << 6) != 0,
        }
    }

    /// `EL1h`, `EL0t`, … as the Arm ARM names the mode.
    pub fn mode_name(&self) -> &'static str {
        match (self.el, self.sp_elx) {
            (Some(0), _) => "EL0t",
            (Some(1), false) => "EL1t",
            (Some(1), true) => "EL1h",
            (Some(2), false) => "EL2t",
            (Some(2), true) => "EL2h",
            (Some(3), false) => "EL3t",
            (Some(3), true) => "EL3h",
            _ => "AArch32",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_parse_round_trip_at_kernel_offsets() {
        let mut p = ElfPrstatus {
            pr_pid: 1234,
            ..Default::default()
        };
        let mut r = Regs::default();
        for (i, x) in r.x.iter_mut().enumerate() {
            *x = 0x1000 + i as u64;
        }
        r.sp = 0xffff_8000_0801_3f00;
        r.pc = 0xffff_8000_0810_0abc;
        r.pstate = 0x3c5;
        p.set_regs(&r);
        let mut b = [0u8; PRSTATUS_SIZE];
        p.write(&mut b);
        assert_eq!(le::u32_at(&b, 32), Some(1234));
        assert_eq!(le::u64_at(&b, 112), Some(0x1000));
        assert_eq!(le::u64_at(&b, 360), Some(r.sp));
        assert_eq!(le::u64_at(&b, 368), Some(r.pc));
        assert_eq!(le::u64_at(&b, 376), Some(0x3c5));
        let q = ElfPrstatus::parse(&b).unwrap();
        assert_eq!(q, p);
        assert_eq!(q.regs(), r);
    }

    #[test]
    fn wrong_size_is_rejected() {
        assert_eq!(
            ElfPrstatus::parse(&[0u8; 391]),
            Err(PrstatusSizeError { got: 391 })
        );
    }

    #[test]
    fn pstate_decoding() {
        let p = Pstate::decode(0x3c5);
        assert_eq!(p.el, Some(1));
        assert!(p.sp_elx && p.d && p.a && p.i && p.f);
        assert_eq!(p.mode_name(), "EL1h");
        let p = Pstate::decode(0x0);
        assert_eq!(p.mode_name(), "EL0t");
        assert!(!p.i);
    }
}
