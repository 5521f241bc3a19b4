//! PSCI 1.1 (Arm DEN 0022D): function IDs, return codes as one typed error,
//! and a small client over any [`Conduit`].
//!
//! The `_64` IDs take `x` registers (SMC64); the others are SMC32. Linux uses
//! `PSCI_CPU_ON_64` and `PSCI_AFFINITY_INFO_64` on arm64 (`drivers/firmware/psci/psci.c`).
#![forbid(unsafe_code)]

use crate::smccc::{Conduit, FunctionId, Version};
use core::fmt;

/// `PSCI_VERSION` (§5.1.1).
pub const PSCI_VERSION: FunctionId = FunctionId(0x8400_0000);
/// `CPU_SUSPEND`, SMC32 (§5.1.2).
pub const PSCI_CPU_SUSPEND: FunctionId = FunctionId(0x8400_0001);
/// `CPU_SUSPEND`, SMC64.
pub const PSCI_CPU_SUSPEND_64: FunctionId = FunctionId(0xC400_0001);
/// `CPU_OFF` (§5.1.3).
pub const PSCI_CPU_OFF: FunctionId = FunctionId(0x8400_0002);
/// `CPU_ON`, SMC32 (§5.1.4).
pub const PSCI_CPU_ON: FunctionId = FunctionId(0x8400_0003);
/// `CPU_ON`, SMC64: `x1` target MPIDR, `x2` entry point, `x3` context ID.
pub const PSCI_CPU_ON_64: FunctionId = FunctionId(0xC400_0003);
/// `AFFINITY_INFO`, SMC32 (§5.1.5).
pub const PSCI_AFFINITY_INFO: FunctionId = FunctionId(0x8400_0004);
/// `AFFINITY_INFO`, SMC64: `x1` target affinity, `x2` lowest affinity level.
pub const PSCI_AFFINITY_INFO_64: FunctionId = FunctionId(0xC400_0004);
/// `MIGRATE`, SMC32 (§5.1.6).
pub const PSCI_MIGRATE: FunctionId = FunctionId(0x8400_0005);
/// `MIGRATE_INFO_TYPE` (§5.1.7).
pub const PSCI_MIGRATE_INFO_TYPE: FunctionId = FunctionId(0x8400_0006);
/// `MIGRATE_INFO_UP_CPU`, SMC32 (§5.1.8).
pub const PSCI_MIGRATE_INFO_UP_CPU: FunctionId = FunctionId(0x8400_0007);
/// `SYSTEM_OFF` (§5.1.9).
pub const PSCI_SYSTEM_OFF: FunctionId = FunctionId(0x8400_0008);
/// `SYSTEM_RESET` (§5.1.10).
pub const PSCI_SYSTEM_RESET: FunctionId = FunctionId(0x8400_0009);
/// `PSCI_FEATURES` (§5.1.14): `x1` = a function ID.
pub const PSCI_FEATURES: FunctionId = FunctionId(0x8400_000A);
/// `SYSTEM_SUSPEND`, SMC64 (§5.1.19).
pub const PSCI_SYSTEM_SUSPEND_64: FunctionId = FunctionId(0xC400_000E);
/// `SYSTEM_RESET2`, SMC64 (§5.1.20, PSCI 1.1).
pub const PSCI_SYSTEM_RESET2_64: FunctionId = FunctionId(0xC400_0012);

/// PSCI 1.1 as `PSCI_VERSION` returns it.
pub const PSCI_VERSION_1_1: Version = Version::new(1, 1);

/// `MIGRATE_INFO_TYPE`: a Trusted OS is not present or needs no migration.
pub const MIGRATE_INFO_TYPE_NOT_PRESENT: u64 = 2;

/// PSCI return code: success.
pub const PSCI_RET_SUCCESS: i32 = 0;
/// PSCI return code: not supported.
pub const PSCI_RET_NOT_SUPPORTED: i32 = -1;
/// PSCI return code: invalid parameters.
pub const PSCI_RET_INVALID_PARAMETERS: i32 = -2;
/// PSCI return code: denied.
pub const PSCI_RET_DENIED: i32 = -3;
/// PSCI return code: the target is already on.
pub const PSCI_RET_ALREADY_ON: i32 = -4;
/// PSCI return code: a CPU_ON for the target is in progress.
pub const PSCI_RET_ON_PENDING: i32 = -5;
/// PSCI return code: internal failure.
pub const PSCI_RET_INTERNAL_FAILURE: i32 = -6;
/// PSCI return code: not present.
pub const PSCI_RET_NOT_PRESENT: i32 = -7;
/// PSCI return code: disabled.
pub const PSCI_RET_DISABLED: i32 = -8;
/// PSCI return code: invalid address.
pub const PSCI_RET_INVALID_ADDRESS: i32 = -9;

/// A PSCI error (§5.2.2): every negative return code, in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciError {
    /// `NOT_SUPPORTED` (-1).
    NotSupported,
    /// `INVALID_PARAMETERS` (-2).
    InvalidParameters,
    /// `DENIED` (-3).
    Denied,
    /// `ALREADY_ON` (-4).
    AlreadyOn,
    /// `ON_PENDING` (-5).
    OnPending,
    /// `INTERNAL_FAILURE` (-6).
    InternalFailure,
    /// `NOT_PRESENT` (-7).
    NotPresent,
    /// `DISABLED` (-8).
    Disabled,
    /// `INVALID_ADDRESS` (-9).
    InvalidAddress,
    /// A negative value PSCI does not define.
    Unknown(i32),
}

impl PsciError {
    /// The return code for this error.
    pub const fn code(self) -> i32 {
        match self {
            Self::NotSupported => PSCI_RET_NOT_SUPPORTED,
            Self::InvalidParameters => PSCI_RET_INVALID_PARAMETERS,
            Self::Denied => PSCI_RET_DENIED,
            Self::AlreadyOn => PSCI_RET_ALREADY_ON,
            Self::OnPending => PSCI_RET_ON_PENDING,
            Self::InternalFailure => PSCI_RET_INTERNAL_FAILURE,
            Self::NotPresent => PSCI_RET_NOT_PRESENT,
            Self::Disabled => PSCI_RET_DISABLED,
            Self::InvalidAddress => PSCI_RET_INVALID_ADDRESS,
            Self::Unknown(v) => v,
        }
    }

    /// The return code as `x0` (sign-extended, as SMC64 callers read it).
    pub const fn to_x0(self) -> u64 {
        self.code() as i64 as u64
    }

    /// Maps a raw `x0` to `Ok(value)` or its error. PSCI return codes are
    /// 32-bit signed (`w0`), so a value is an error when `w0` is negative.
    pub const fn check(raw: u64) -> Result<u64, Self> {
        let w = raw as u32 as i32;
        if w >= 0 {
            return Ok(raw);
        }
        Err(match w {
            PSCI_RET_NOT_SUPPORTED => Self::NotSupported,
            PSCI_RET_INVALID_PARAMETERS => Self::InvalidParameters,
            PSCI_RET_DENIED => Self::Denied,
            PSCI_RET_ALREADY_ON => Self::AlreadyOn,
            PSCI_RET_ON_PENDING => Self::OnPending,
            PSCI_RET_INTERNAL_FAILURE => Self::InternalFailure,
            PSCI_RET_NOT_PRESENT => Self::NotPresent,
            PSCI_RET_DISABLED => Self::Disabled,
            PSCI_RET_INVALID_ADDRESS => Self::InvalidAddress,
            v => Self::Unknown(v),
        })
    }
}

impl fmt::Display for PsciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::NotSupported => "NOT_SUPPORTED",
            Self::InvalidParameters => "INVALID_PARAMETERS",
            Self::Denied => "DENIED",
            Self::AlreadyOn => "ALREADY_ON",
            Self::OnPending => "ON_PENDING",
            Self::InternalFailure => "INTERNAL_FAILURE",
            Self::NotPresent => "NOT_PRESENT",
            Self::Disabled => "DISABLED",
            Self::InvalidAddress => "INVALID_ADDRESS",
            Self::Unknown(_) => "unknown error",
        };
        write!(f, "PSCI {name} ({})", self.code())
    }
}

/// `AFFINITY_INFO`'s answer (§5.1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AffinityState {
    /// At least one core in the affinity instance is on.
    On = 0,
    /// All cores are off.
    Off = 1,
    /// A CPU_ON is in progress.
    OnPending = 2,
}

impl AffinityState {
    /// Decodes `x0` of a successful `AFFINITY_INFO`.
    pub const fn from_raw(v: u64) -> Option<Self> {
        match v {
            0 => Some(Self::On),
            1 => Some(Self::Off),
            2 => Some(Self::OnPending),
            _ => None,
        }
    }
}

/// A PSCI client: every call goes through [`Psci::invoke`], which maps the
/// return code once.
#[derive(Debug)]
pub struct Psci<C: Conduit> {
    conduit: C,
}

impl<C: Conduit> Psci<C> {
    /// A client over `conduit`.
    pub const fn new(conduit: C) -> Self {
        Self { conduit }
    }

    /// The one place a PSCI call is made and its return code checked.
    pub fn invoke(&mut self, fid: FunctionId, args: [u64; 7]) -> Result<u64, PsciError> {
        PsciError::check(self.conduit.call(fid, args)[0])
    }

    /// `PSCI_VERSION`.
    pub fn version(&mut self) -> Result<Version, PsciError> {
        let v = self.invoke(PSCI_VERSION, [0; 7])?;
        Version::decode(v).ok_or(PsciError::Unknown(v as u32 as i32))
    }

    /// `PSCI_FEATURES(fid)`: the feature flags of an implemented function.
    pub fn features(&mut self, fid: FunctionId) -> Result<u64, PsciError> {
        self.invoke(PSCI_FEATURES, [u64::from(fid.get()), 0, 0, 0, 0, 0, 0])
    }

    /// `CPU_ON_64(target, entry, context_id)`.
    pub fn cpu_on(
        &mut self,
        target_mpidr: u64,
        entry: u64,
        context_id: u64,
    ) -> Result<(), PsciError> {
        self.invoke(
            PSCI_CPU_ON_64,
            [target_mpidr, entry, context_id, 0, 0, 0, 0],
        )
        .map(|_| ())
    }

    /// `CPU_OFF`: only returns on failure.
    pub fn cpu_off(&mut self) -> PsciError {
        match self.invoke(PSCI_CPU_OFF, [0; 7]) {
            Ok(_) => PsciError::InternalFailure,
            Err(e) => e,
        }
    }

    /// `AFFINITY_INFO_64(target, 0)`.
    pub fn affinity_info(&mut self, target_mpidr: u64) -> Result<AffinityState, PsciError> {
        let v = self.invoke(PSCI_AFFINITY_INFO_64, [target_mpidr, 0, 0, 0, 0, 0, 0])?;
        AffinityState::from_raw(v).ok_or(PsciError::Unknown(v as u32 as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smccc::FakeConduit;

    #[test]
    fn every_code_round_trips() {
        for c in -9..=-1 {
            let e = PsciError::check(c as i64 as u64).unwrap_err();
            assert_eq!(e.code(), c);
            assert_eq!(PsciError::check(e.to_x0()), Err(e));
            // w0-only answers (SMC32 firmware) map the same way.
            assert_eq!(PsciError::check(u64::from(c as u32)), Err(e));
        }
        assert_eq!(
            PsciError::check(-42i64 as u64),
            Err(PsciError::Unknown(-42))
        );
        assert_eq!(PsciError::check(2), Ok(2));
    }

    #[test]
    fn client_calls() {
        let mut p = Psci::new(FakeConduit::new(|fid, a| match fid {
            PSCI_VERSION => [0x1_0001, 0, 0, 0],
            PSCI_CPU_ON_64 if a[0] == 1 => [0, 0, 0, 0],
            PSCI_CPU_ON_64 => [PsciError::AlreadyOn.to_x0(), 0, 0, 0],
            PSCI_AFFINITY_INFO_64 => [1, 0, 0, 0],
            _ => [u64::MAX, 0, 0, 0],
        }));
        assert_eq!(p.version(), Ok(PSCI_VERSION_1_1));
        assert_eq!(p.cpu_on(1, 0x4000_0000, 7), Ok(()));
        assert_eq!(p.cpu_on(0, 0x4000_0000, 7), Err(PsciError::AlreadyOn));
        assert_eq!(p.affinity_info(1), Ok(AffinityState::Off));
        assert_eq!(
            p.features(PSCI_SYSTEM_SUSPEND_64),
            Err(PsciError::NotSupported)
        );
        assert_eq!(p.cpu_off(), PsciError::NotSupported);
    }
}
