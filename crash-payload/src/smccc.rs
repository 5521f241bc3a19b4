//! The SMC Calling Convention (Arm DEN 0028, SMCCC 1.1): function identifiers,
//! return codes, version decoding, and the *conduit* that carries a call to
//! firmware.
//!
//! The conduit is a type parameter ([`Conduit`]): [`Smc`] and [`Hvc`] execute
//! the instruction (aarch64 only; the only `unsafe` in this crate), [`FakeConduit`]
//! answers from a closure so clients such as [`crate::sdei::Sdei`] and
//! [`crate::psci::Psci`] are tested on any host.
//!
//! Register use (SMCCC 1.1 §2.7 for SMC64/HVC64): `x0` the function ID, `x1..x17`
//! arguments, results in `x0..x3`; the callee preserves `x4..x17` (1.1), but this
//! crate passes at most seven arguments and marks `x4..x17` clobbered anyway, so
//! it is also right for SMCCC 1.0 firmware.

use core::fmt;

/// A 32-bit SMCCC function identifier (`x0`/`w0` of a call).
///
/// Layout (SMCCC §2.5): bit 31 fast call, bit 30 SMC64/HVC64 convention,
/// bits 29:24 owning entity, bits 15:0 function number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FunctionId(pub u32);

impl FunctionId {
    /// Bit 31: a fast (atomic) call. Every call in this crate is fast.
    pub const FAST: u32 = 1 << 31;
    /// Bit 30: the SMC64/HVC64 calling convention (arguments in `x` registers).
    pub const SMC64: u32 = 1 << 30;

    /// The raw identifier.
    pub const fn get(self) -> u32 {
        self.0
    }
    /// Whether bit 31 (fast call) is set.
    pub const fn is_fast(self) -> bool {
        self.0 & Self::FAST != 0
    }
    /// Whether this is an SMC64/HVC64 call (bit 30).
    pub const fn is_64(self) -> bool {
        self.0 & Self::SMC64 != 0
    }
    /// The owning entity number, bits 29:24.
    pub const fn owner(self) -> OwningEntity {
        OwningEntity((self.0 >> 24) as u8 & 0x3f)
    }
    /// The function number, bits 15:0.
    pub const fn number(self) -> u16 {
        self.0 as u16
    }
    /// The same call under the other convention (`SMC32 <-> SMC64`).
    pub const fn with_64(self, sixty_four: bool) -> Self {
        if sixty_four {
            Self(self.0 | Self::SMC64)
        } else {
            Self(self.0 & !Self::SMC64)
        }
    }
}

impl fmt::Debug for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FunctionId({:#010x})", self.0)
    }
}

/// The owning-entity field of a function ID (SMCCC §2.5, table 2-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OwningEntity(pub u8);

impl OwningEntity {
    /// Arm Architecture Calls (SMCCC_VERSION, SMCCC_ARCH_FEATURES, workarounds).
    pub const ARCH: Self = Self(0);
    /// Standard Secure Service Calls (PSCI, SDEI, TRNG).
    pub const STANDARD: Self = Self(4);
}

/// `SMCCC_VERSION` (SMCCC 1.1 §7.2): returns the implemented SMCCC version.
pub const SMCCC_VERSION: FunctionId = FunctionId(0x8000_0000);
/// `SMCCC_ARCH_FEATURES` (SMCCC 1.1 §7.3): `x1` = a function ID; 0 if implemented.
pub const SMCCC_ARCH_FEATURES: FunctionId = FunctionId(0x8000_0001);
/// `SMCCC_ARCH_SOC_ID` (SMCCC 1.2 §7.4).
pub const SMCCC_ARCH_SOC_ID: FunctionId = FunctionId(0x8000_0002);
/// `SMCCC_ARCH_WORKAROUND_1` (CVE-2017-5715, branch predictor invalidation).
pub const SMCCC_ARCH_WORKAROUND_1: FunctionId = FunctionId(0x8000_8000);
/// `SMCCC_ARCH_WORKAROUND_2` (CVE-2018-3639, speculative store bypass).
pub const SMCCC_ARCH_WORKAROUND_2: FunctionId = FunctionId(0x8000_7fff);
/// `SMCCC_ARCH_WORKAROUND_3` (CVE-2017-5715 and CVE-2022-23960).
pub const SMCCC_ARCH_WORKAROUND_3: FunctionId = FunctionId(0x8000_3fff);

/// SMCCC return code: success.
pub const SMCCC_RET_SUCCESS: i64 = 0;
/// SMCCC return code: unknown function / not supported (`0xFFFF_FFFF` as `w0`).
pub const SMCCC_RET_NOT_SUPPORTED: i64 = -1;
/// SMCCC return code: the workaround is not required on this PE.
pub const SMCCC_RET_NOT_REQUIRED: i64 = -2;
/// SMCCC return code: invalid parameter.
pub const SMCCC_RET_INVALID_PARAMETER: i64 = -3;

/// A `major.minor` version as PSCI and SMCCC encode it in 32 bits:
/// bits 30:16 major, bits 15:0 minor, bit 31 zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl Version {
    /// SMCCC 1.0.
    pub const V1_0: Self = Self::new(1, 0);
    /// SMCCC 1.1.
    pub const V1_1: Self = Self::new(1, 1);

    /// A version.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }
    /// Encodes as `major << 16 | minor` (major limited to 15 bits).
    pub const fn encode(self) -> u32 {
        ((self.major as u32 & 0x7fff) << 16) | self.minor as u32
    }
    /// Decodes a 32-bit return value; `None` when bit 31 is set (a negative
    /// error code such as NOT_SUPPORTED).
    pub const fn decode(raw: u64) -> Option<Self> {
        let w = raw as u32;
        if w & 0x8000_0000 != 0 {
            return None;
        }
        Some(Self {
            major: (w >> 16) as u16,
            minor: w as u16,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Something that carries an SMCCC call to firmware and brings back `x0..x3`.
///
/// `args` are `x1..x7`; unused ones should be zero. Implementations must not
/// assume the call is free of side effects on memory.
pub trait Conduit {
    /// Makes the call.
    fn call(&mut self, fid: FunctionId, args: [u64; 7]) -> [u64; 4];
}

impl<C: Conduit + ?Sized> Conduit for &mut C {
    fn call(&mut self, fid: FunctionId, args: [u64; 7]) -> [u64; 4] {
        (**self).call(fid, args)
    }
}

/// The `SMC #0` conduit (firmware at EL3). Only aarch64 can make the call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smc;

/// The `HVC #0` conduit (a hypervisor at EL2). Only aarch64 can make the call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hvc;

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod arch {
    //! The instruction itself. Neither `asm!` claims `nomem`: firmware may read
    //! and write memory the caller owns (SDEI registration, PSCI CPU_ON entry
    //! points), so the compiler must not cache memory across the call.
    use super::{Conduit, FunctionId, Hvc, Smc};
    use core::arch::asm;

    macro_rules! conduit_impl {
        ($t:ty, $insn:literal) => {
            impl Conduit for $t {
                fn call(&mut self, fid: FunctionId, args: [u64; 7]) -> [u64; 4] {
                    let mut r0 = u64::from(fid.get());
                    let (mut r1, mut r2, mut r3) = (args[0], args[1], args[2]);
                    // SAFETY: an SMCCC call changes no state this program relies
                    // on beyond x0..x17, which are all declared as outputs or
                    // clobbers here; memory effects are allowed (no `nomem`), and
                    // the stack is not touched by the callee at a lower EL.
                    unsafe {
                        asm!(
                            $insn,
                            inout("x0") r0,
                            inout("x1") r1,
                            inout("x2") r2,
                            inout("x3") r3,
                            inout("x4") args[3] => _,
                            inout("x5") args[4] => _,
                            inout("x6") args[5] => _,
                            inout("x7") args[6] => _,
                            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                            out("x16") _, out("x17") _,
                            options(nostack)
                        );
                    }
                    [r0, r1, r2, r3]
                }
            }
        };
    }
    conduit_impl!(Smc, "smc #0");
    conduit_impl!(Hvc, "hvc #0");
}

/// A conduit for tests: every call goes to `respond`, and the last call is kept.
pub struct FakeConduit<F: FnMut(FunctionId, [u64; 7]) -> [u64; 4]> {
    respond: F,
    /// How many calls were made.
    pub calls: usize,
    /// The last call's function ID and arguments.
    pub last: Option<(FunctionId, [u64; 7])>,
}

impl<F: FnMut(FunctionId, [u64; 7]) -> [u64; 4]> FakeConduit<F> {
    /// A fake answering with `respond`.
    pub fn new(respond: F) -> Self {
        Self {
            respond,
            calls: 0,
            last: None,
        }
    }
}

impl<F: FnMut(FunctionId, [u64; 7]) -> [u64; 4]> Conduit for FakeConduit<F> {
    fn call(&mut self, fid: FunctionId, args: [u64; 7]) -> [u64; 4] {
        self.calls += 1;
        self.last = Some((fid, args));
        (self.respond)(fid, args)
    }
}

impl<F: FnMut(FunctionId, [u64; 7]) -> [u64; 4]> fmt::Debug for FakeConduit<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeConduit")
            .field("calls", &self.calls)
            .field("last", &self.last)
            .finish()
    }
}

/// Why an SMCCC architecture call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmcccError {
    /// `-1`: the function is not implemented.
    NotSupported,
    /// `-2`: the workaround is not required.
    NotRequired,
    /// `-3`: invalid parameter.
    InvalidParameter,
    /// Any other negative value.
    Unknown(i64),
}

impl SmcccError {
    /// Maps a raw `x0` to `Ok(value)` or the error it encodes (negative as `i32`:
    /// SMCCC 1.0 firmware may return the code in `w0` only).
    pub const fn check(raw: u64) -> Result<u64, Self> {
        let w = raw as u32 as i32;
        if w >= 0 {
            return Ok(raw);
        }
        Err(match w as i64 {
            SMCCC_RET_NOT_SUPPORTED => Self::NotSupported,
            SMCCC_RET_NOT_REQUIRED => Self::NotRequired,
            SMCCC_RET_INVALID_PARAMETER => Self::InvalidParameter,
            v => Self::Unknown(v),
        })
    }
}

impl fmt::Display for SmcccError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSupported => f.write_str("SMCCC: not supported (-1)"),
            Self::NotRequired => f.write_str("SMCCC: not required (-2)"),
            Self::InvalidParameter => f.write_str("SMCCC: invalid parameter (-3)"),
            Self::Unknown(v) => write!(f, "SMCCC: unknown error {v}"),
        }
    }
}

/// Asks the firmware for its SMCCC version (`SMCCC_VERSION`). Firmware that
/// predates SMCCC 1.1 answers NOT_SUPPORTED, which means 1.0.
pub fn smccc_version<C: Conduit>(c: &mut C) -> Version {
    let r = c.call(SMCCC_VERSION, [0; 7]);
    match SmcccError::check(r[0]) {
        Ok(v) => Version::decode(v).unwrap_or(Version::V1_0),
        Err(_) => Version::V1_0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_id_fields() {
        let f = FunctionId(0xC400_0021);
        assert!(f.is_fast());
        assert!(f.is_64());
        assert_eq!(f.owner(), OwningEntity::STANDARD);
        assert_eq!(f.number(), 0x21);
        assert_eq!(f.with_64(false), FunctionId(0x8400_0021));
        assert_eq!(SMCCC_VERSION.owner(), OwningEntity::ARCH);
        assert!(!SMCCC_VERSION.is_64());
    }

    #[test]
    fn version_round_trip() {
        assert_eq!(Version::V1_1.encode(), 0x1_0001);
        assert_eq!(Version::decode(0x1_0001), Some(Version::V1_1));
        assert_eq!(Version::decode(0x1_0002), Some(Version::new(1, 2)));
        // NOT_SUPPORTED in w0 only, or sign-extended, is not a version.
        assert_eq!(Version::decode(0xffff_ffff), None);
        assert_eq!(Version::decode(u64::MAX), None);
    }

    #[test]
    fn errors_map_from_w0_or_x0() {
        assert_eq!(SmcccError::check(0), Ok(0));
        assert_eq!(SmcccError::check(u64::MAX), Err(SmcccError::NotSupported));
        assert_eq!(
            SmcccError::check(0xffff_ffff),
            Err(SmcccError::NotSupported)
        );
        assert_eq!(
            SmcccError::check(-2i64 as u64),
            Err(SmcccError::NotRequired)
        );
        assert_eq!(
            SmcccError::check(-3i64 as u64),
            Err(SmcccError::InvalidParameter)
        );
        assert_eq!(
            SmcccError::check(-7i64 as u64),
            Err(SmcccError::Unknown(-7))
        );
    }

    #[test]
    fn version_through_fake() {
        let mut c = FakeConduit::new(|fid, _| {
            assert_eq!(fid, SMCCC_VERSION);
            [0x1_0002, 0, 0, 0]
        });
        assert_eq!(smccc_version(&mut c), Version::new(1, 2));
        let mut old = FakeConduit::new(|_, _| [u64::MAX, 0, 0, 0]);
        assert_eq!(smccc_version(&mut old), Version::V1_0);
        assert_eq!(old.calls, 1);
    }
}
