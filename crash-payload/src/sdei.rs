//! SDEI 1.0 (Arm DEN 0054A; `SDEI_FEATURES` and `SDEI_EVENT_SIGNAL` as in
//! 1.1, DEN 0054B): function IDs, return codes mapped to one typed error in one
//! place ([`SdeiError::check`]), version decoding, event 0, and a client over
//! any [`Conduit`] whose every call goes through [`Sdei::invoke`] (the shape of
//! Linux's `invoke_sdei_fn` in `drivers/firmware/arm_sdei.c`).
//!
//! Event 0 (§4.4): the only event `SDEI_EVENT_SIGNAL` can raise. It is
//! *private* (each PE registers, enables and completes it separately), of
//! *normal* priority, and signalable. A signal to a PE that has masked SDEI
//! (`SDEI_PE_MASK`) is dropped, not kept pending (TF-A
//! `services/std_svc/sdei/sdei_intr_mgmt.c`, `handle_masked_trigger`).
//!
//! Handler entry (§5.2.1, DESIGN.md §5): `x0` = event, `x1` = the registration
//! argument, `x2` = interrupted PC, `x3` = interrupted PSTATE, PSTATE.DAIF all
//! masked, at the EL that registered; `SDEI_EVENT_CONTEXT(n)`, `n` in 0..=17,
//! returns the interrupted `x<n>`, and only inside a handler.
#![forbid(unsafe_code)]

use crate::smccc::{Conduit, FunctionId};
use core::fmt;

/// The first SDEI function ID (SMC64).
pub const SDEI_1_0_FN_BASE: u32 = 0xC400_0020;

/// `SDEI_VERSION`.
pub const SDEI_VERSION: FunctionId = FunctionId(SDEI_1_0_FN_BASE);
/// `SDEI_EVENT_REGISTER(event, entry, arg, flags, affinity)`.
pub const SDEI_EVENT_REGISTER: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x01);
/// `SDEI_EVENT_ENABLE(event)`.
pub const SDEI_EVENT_ENABLE: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x02);
/// `SDEI_EVENT_DISABLE(event)`.
pub const SDEI_EVENT_DISABLE: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x03);
/// `SDEI_EVENT_CONTEXT(n)`: interrupted `x<n>`, inside a handler only.
pub const SDEI_EVENT_CONTEXT: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x04);
/// `SDEI_EVENT_COMPLETE(status)`: resume the interrupted context.
pub const SDEI_EVENT_COMPLETE: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x05);
/// `SDEI_EVENT_COMPLETE_AND_RESUME(resume_addr)`.
pub const SDEI_EVENT_COMPLETE_AND_RESUME: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x06);
/// `SDEI_EVENT_UNREGISTER(event)`.
pub const SDEI_EVENT_UNREGISTER: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x07);
/// `SDEI_EVENT_STATUS(event)`: a bit set of [`EventStatus`].
pub const SDEI_EVENT_STATUS: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x08);
/// `SDEI_EVENT_GET_INFO(event, info)`.
pub const SDEI_EVENT_GET_INFO: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x09);
/// `SDEI_EVENT_ROUTING_SET(event, mode, affinity)` (shared events only).
pub const SDEI_EVENT_ROUTING_SET: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x0A);
/// `SDEI_PE_MASK`: returns 1 if the PE was unmasked, 0 if already masked.
pub const SDEI_PE_MASK: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x0B);
/// `SDEI_PE_UNMASK`.
pub const SDEI_PE_UNMASK: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x0C);
/// `SDEI_INTERRUPT_BIND(intid)`.
pub const SDEI_INTERRUPT_BIND: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x0D);
/// `SDEI_INTERRUPT_RELEASE(event)`.
pub const SDEI_INTERRUPT_RELEASE: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x0E);
/// `SDEI_EVENT_SIGNAL(event, target_pe)`: event must be 0.
pub const SDEI_EVENT_SIGNAL: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x0F);
/// `SDEI_FEATURES(feature)` (SDEI 1.1).
pub const SDEI_FEATURES: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x10);
/// `SDEI_PRIVATE_RESET`.
pub const SDEI_PRIVATE_RESET: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x11);
/// `SDEI_SHARED_RESET`.
pub const SDEI_SHARED_RESET: FunctionId = FunctionId(SDEI_1_0_FN_BASE + 0x12);

/// Whether `fid` is in the SDEI range (`SDEI_VERSION` ..= `SDEI_SHARED_RESET`).
pub const fn is_sdei_fid(fid: FunctionId) -> bool {
    fid.0 >= SDEI_VERSION.0 && fid.0 <= SDEI_SHARED_RESET.0
}

/// Event 0: the software-signalled private event.
pub const SDEI_EVENT_0: u32 = 0;

/// `SDEI_EVENT_CONTEXT` accepts `n` in `0..SDEI_CONTEXT_REGS` (x0..x17).
pub const SDEI_CONTEXT_REGS: u64 = 18;

/// `SDEI_EVENT_GET_INFO` info: event type (0 private, 1 shared).
pub const SDEI_EVENT_INFO_EV_TYPE: u64 = 0;
/// `SDEI_EVENT_GET_INFO` info: 0 if signalable, 1 if not.
pub const SDEI_EVENT_INFO_EV_NOT_SIGNALED: u64 = 1;
/// `SDEI_EVENT_GET_INFO` info: 0 normal, 1 critical.
pub const SDEI_EVENT_INFO_EV_PRIORITY: u64 = 2;
/// `SDEI_EVENT_GET_INFO` info: routing mode (shared events only).
pub const SDEI_EVENT_INFO_EV_ROUTING_MODE: u64 = 3;
/// `SDEI_EVENT_GET_INFO` info: routing affinity (shared events only).
pub const SDEI_EVENT_INFO_EV_ROUTING_AFF: u64 = 4;

/// Event type: private (one registration per PE).
pub const SDEI_EVENT_TYPE_PRIVATE: u64 = 0;
/// Event type: shared.
pub const SDEI_EVENT_TYPE_SHARED: u64 = 1;
/// Event priority: normal.
pub const SDEI_EVENT_PRIORITY_NORMAL: u64 = 0;
/// Event priority: critical.
pub const SDEI_EVENT_PRIORITY_CRITICAL: u64 = 1;

/// `SDEI_EVENT_REGISTER` flags bit 0: route to any PE (0) or one PE (1).
pub const SDEI_EVENT_REGISTER_RM_PE: u64 = 1;

/// `SDEI_EVENT_COMPLETE` status: handled.
pub const SDEI_EV_HANDLED: u64 = 0;
/// `SDEI_EVENT_COMPLETE` status: failed.
pub const SDEI_EV_FAILED: u64 = 1;

/// `SDEI_FEATURES` feature 0: bind slots (bits 31:16 private, 15:0 shared).
pub const SDEI_FEATURE_BIND_SLOTS: u64 = 0;

/// Return code: success.
pub const SDEI_SUCCESS: i64 = 0;
/// Return code: not supported.
pub const SDEI_NOT_SUPPORTED: i64 = -1;
/// Return code: invalid parameters.
pub const SDEI_INVALID_PARAMETERS: i64 = -2;
/// Return code: denied.
pub const SDEI_DENIED: i64 = -3;
/// Return code: pending (unregister from a running handler).
pub const SDEI_PENDING: i64 = -5;
/// Return code: out of resource.
pub const SDEI_OUT_OF_RESOURCE: i64 = -10;

/// `SDEI_EVENT_STATUS` bits (§5.1.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EventStatus {
    /// Bit 0: a handler is registered.
    pub registered: bool,
    /// Bit 1: the event is enabled.
    pub enabled: bool,
    /// Bit 2: the handler is running on this PE.
    pub running: bool,
}

impl EventStatus {
    /// Encodes as the `x0` bit set.
    pub const fn to_raw(self) -> u64 {
        (self.registered as u64) | ((self.enabled as u64) << 1) | ((self.running as u64) << 2)
    }
    /// Decodes the `x0` bit set (higher bits ignored).
    pub const fn from_raw(v: u64) -> Self {
        Self {
            registered: v & 1 != 0,
            enabled: v & 2 != 0,
            running: v & 4 != 0,
        }
    }
}

/// An SDEI version as `SDEI_VERSION` returns it: bit 63 zero, bits 62:48
/// major, 47:32 minor, 31:0 implementation-defined vendor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdeiVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Vendor-defined bits 31:0.
    pub vendor: u32,
}

impl SdeiVersion {
    /// SDEI 1.0 with vendor 0: what Linux prints as `SDEIv1.0 (0x0)`.
    pub const V1_0: Self = Self {
        major: 1,
        minor: 0,
        vendor: 0,
    };
    /// Encodes for `x0`.
    pub const fn encode(self) -> u64 {
        ((self.major as u64 & 0x7fff) << 48) | ((self.minor as u64) << 32) | self.vendor as u64
    }
    /// Decodes `x0`; `None` when bit 63 is set (an error code).
    pub const fn decode(v: u64) -> Option<Self> {
        if v >> 63 != 0 {
            return None;
        }
        Some(Self {
            major: ((v >> 48) & 0x7fff) as u16,
            minor: (v >> 32) as u16,
            vendor: v as u32,
        })
    }
}

/// An SDEI error: every negative return code, mapped in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdeiError {
    /// `NOT_SUPPORTED` (-1): the call is not implemented.
    NotSupported,
    /// `INVALID_PARAMETERS` (-2).
    InvalidParameters,
    /// `DENIED` (-3): not allowed in the event's or PE's current state.
    Denied,
    /// `PENDING` (-5): unregistration completes when the handler completes.
    Pending,
    /// `OUT_OF_RESOURCE` (-10).
    OutOfResource,
    /// A negative value SDEI does not define.
    Unknown(i64),
}

impl SdeiError {
    /// The return code.
    pub const fn code(self) -> i64 {
        match self {
            Self::NotSupported => SDEI_NOT_SUPPORTED,
            Self::InvalidParameters => SDEI_INVALID_PARAMETERS,
            Self::Denied => SDEI_DENIED,
            Self::Pending => SDEI_PENDING,
            Self::OutOfResource => SDEI_OUT_OF_RESOURCE,
            Self::Unknown(v) => v,
        }
    }

    /// The return code as `x0`.
    pub const fn to_x0(self) -> u64 {
        self.code() as u64
    }

    /// The one table: maps a raw `x0` to `Ok(value)` or its error. SDEI
    /// returns 64-bit values; codes are negative `x0` (Linux `sdei_to_linux_errno`).
    pub const fn check(raw: u64) -> Result<u64, Self> {
        let v = raw as i64;
        if v >= 0 {
            return Ok(raw);
        }
        Err(match v {
            SDEI_NOT_SUPPORTED => Self::NotSupported,
            SDEI_INVALID_PARAMETERS => Self::InvalidParameters,
            SDEI_DENIED => Self::Denied,
            SDEI_PENDING => Self::Pending,
            SDEI_OUT_OF_RESOURCE => Self::OutOfResource,
            v => Self::Unknown(v),
        })
    }
}

impl fmt::Display for SdeiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::NotSupported => "NOT_SUPPORTED",
            Self::InvalidParameters => "INVALID_PARAMETERS",
            Self::Denied => "DENIED",
            Self::Pending => "PENDING",
            Self::OutOfResource => "OUT_OF_RESOURCE",
            Self::Unknown(_) => "unknown error",
        };
        write!(f, "SDEI {name} ({})", self.code())
    }
}

/// An SDEI client over a conduit.
#[derive(Debug)]
pub struct Sdei<C: Conduit> {
    conduit: C,
}

impl<C: Conduit> Sdei<C> {
    /// A client over `conduit`.
    pub const fn new(conduit: C) -> Self {
        Self { conduit }
    }

    /// The one place an SDEI call is made and its return code checked.
    pub fn invoke(&mut self, fid: FunctionId, args: [u64; 7]) -> Result<u64, SdeiError> {
        SdeiError::check(self.conduit.call(fid, args)[0])
    }

    fn call1(&mut self, fid: FunctionId, a: u64) -> Result<u64, SdeiError> {
        self.invoke(fid, [a, 0, 0, 0, 0, 0, 0])
    }

    /// `SDEI_VERSION`.
    pub fn version(&mut self) -> Result<SdeiVersion, SdeiError> {
        let v = self.invoke(SDEI_VERSION, [0; 7])?;
        SdeiVersion::decode(v).ok_or(SdeiError::Unknown(v as i64))
    }
    /// `SDEI_EVENT_REGISTER(event, entry, arg, flags, affinity)`.
    pub fn event_register(
        &mut self,
        event: u32,
        entry: u64,
        arg: u64,
        flags: u64,
        affinity: u64,
    ) -> Result<(), SdeiError> {
        self.invoke(
            SDEI_EVENT_REGISTER,
            [u64::from(event), entry, arg, flags, affinity, 0, 0],
        )
        .map(|_| ())
    }
    /// `SDEI_EVENT_ENABLE`.
    pub fn event_enable(&mut self, event: u32) -> Result<(), SdeiError> {
        self.call1(SDEI_EVENT_ENABLE, u64::from(event)).map(|_| ())
    }
    /// `SDEI_EVENT_DISABLE`.
    pub fn event_disable(&mut self, event: u32) -> Result<(), SdeiError> {
        self.call1(SDEI_EVENT_DISABLE, u64::from(event)).map(|_| ())
    }
    /// `SDEI_EVENT_CONTEXT(n)`: the interrupted `x<n>`.
    ///
    /// The value is the register's, so a register holding a "negative"
    /// value is indistinguishable from an error code; callers inside a handler
    /// can rely on `n < 18` never failing.
    pub fn event_context(&mut self, n: u64) -> Result<u64, SdeiError> {
        let r = self.conduit.call(SDEI_EVENT_CONTEXT, [n, 0, 0, 0, 0, 0, 0])[0];
        if n >= SDEI_CONTEXT_REGS {
            return SdeiError::check(r);
        }
        Ok(r)
    }
    /// `SDEI_EVENT_COMPLETE(status)`: does not return on success.
    pub fn event_complete(&mut self, status: u64) -> SdeiError {
        match self.call1(SDEI_EVENT_COMPLETE, status) {
            Ok(v) => SdeiError::Unknown(v as i64),
            Err(e) => e,
        }
    }
    /// `SDEI_EVENT_COMPLETE_AND_RESUME(addr)`: does not return on success.
    pub fn event_complete_and_resume(&mut self, resume_addr: u64) -> SdeiError {
        match self.call1(SDEI_EVENT_COMPLETE_AND_RESUME, resume_addr) {
            Ok(v) => SdeiError::Unknown(v as i64),
            Err(e) => e,
        }
    }
    /// `SDEI_EVENT_UNREGISTER`.
    pub fn event_unregister(&mut self, event: u32) -> Result<(), SdeiError> {
        self.call1(SDEI_EVENT_UNREGISTER, u64::from(event))
            .map(|_| ())
    }
    /// `SDEI_EVENT_STATUS`.
    pub fn event_status(&mut self, event: u32) -> Result<EventStatus, SdeiError> {
        self.call1(SDEI_EVENT_STATUS, u64::from(event))
            .map(EventStatus::from_raw)
    }
    /// `SDEI_EVENT_GET_INFO(event, info)`.
    pub fn event_get_info(&mut self, event: u32, info: u64) -> Result<u64, SdeiError> {
        self.invoke(SDEI_EVENT_GET_INFO, [u64::from(event), info, 0, 0, 0, 0, 0])
    }
    /// `SDEI_PE_MASK`: `true` if this call masked a PE that was unmasked.
    pub fn pe_mask(&mut self) -> Result<bool, SdeiError> {
        self.invoke(SDEI_PE_MASK, [0; 7]).map(|v| v == 1)
    }
    /// `SDEI_PE_UNMASK`.
    pub fn pe_unmask(&mut self) -> Result<(), SdeiError> {
        self.invoke(SDEI_PE_UNMASK, [0; 7]).map(|_| ())
    }
    /// `SDEI_PRIVATE_RESET`.
    pub fn private_reset(&mut self) -> Result<(), SdeiError> {
        self.invoke(SDEI_PRIVATE_RESET, [0; 7]).map(|_| ())
    }
    /// `SDEI_SHARED_RESET`.
    pub fn shared_reset(&mut self) -> Result<(), SdeiError> {
        self.invoke(SDEI_SHARED_RESET, [0; 7]).map(|_| ())
    }
    /// `SDEI_EVENT_SIGNAL(0, target_mpidr)`.
    pub fn signal(&mut self, target_mpidr: u64) -> Result<(), SdeiError> {
        self.invoke(
            SDEI_EVENT_SIGNAL,
            [u64::from(SDEI_EVENT_0), target_mpidr, 0, 0, 0, 0, 0],
        )
        .map(|_| ())
    }
    /// `SDEI_FEATURES(feature)`.
    pub fn features(&mut self, feature: u64) -> Result<u64, SdeiError> {
        self.call1(SDEI_FEATURES, feature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smccc::FakeConduit;

    #[test]
    fn function_ids_match_linux_uapi() {
        // include/uapi/linux/arm_sdei.h
        assert_eq!(SDEI_VERSION.get(), 0xC400_0020);
        assert_eq!(SDEI_EVENT_COMPLETE_AND_RESUME.get(), 0xC400_0026);
        assert_eq!(SDEI_PE_UNMASK.get(), 0xC400_002C);
        assert_eq!(SDEI_EVENT_SIGNAL.get(), 0xC400_002F);
        assert_eq!(SDEI_FEATURES.get(), 0xC400_0030);
        assert_eq!(SDEI_SHARED_RESET.get(), 0xC400_0032);
        assert!(is_sdei_fid(SDEI_PRIVATE_RESET));
        assert!(!is_sdei_fid(FunctionId(0xC400_0033)));
        assert!(!is_sdei_fid(FunctionId(0x8400_0020)));
    }

    #[test]
    fn version_encoding() {
        assert_eq!(SdeiVersion::V1_0.encode(), 0x0001_0000_0000_0000);
        let v = SdeiVersion {
            major: 1,
            minor: 1,
            vendor: 0x1234,
        };
        assert_eq!(SdeiVersion::decode(v.encode()), Some(v));
        assert_eq!(SdeiVersion::decode(SdeiError::NotSupported.to_x0()), None);
    }

    #[test]
    fn error_table() {
        for (code, e) in [
            (-1, SdeiError::NotSupported),
            (-2, SdeiError::InvalidParameters),
            (-3, SdeiError::Denied),
            (-5, SdeiError::Pending),
            (-10, SdeiError::OutOfResource),
            (-4, SdeiError::Unknown(-4)),
        ] {
            assert_eq!(SdeiError::check(code as u64), Err(e));
            assert_eq!(e.code(), code);
        }
        assert_eq!(SdeiError::check(5), Ok(5));
    }

    #[test]
    fn status_bits() {
        let s = EventStatus {
            registered: true,
            enabled: false,
            running: true,
        };
        assert_eq!(s.to_raw(), 0b101);
        assert_eq!(EventStatus::from_raw(0b101), s);
    }

    #[test]
    fn client_passes_arguments_and_maps_errors() {
        let mut s = Sdei::new(FakeConduit::new(|fid, a| match fid {
            SDEI_VERSION => [SdeiVersion::V1_0.encode(), 0, 0, 0],
            SDEI_EVENT_REGISTER => {
                assert_eq!(a[..5], [0, 0xffff_8000_1000_0000, 42, 0, 0]);
                [0, 0, 0, 0]
            }
            SDEI_EVENT_CONTEXT if a[0] < 18 => [u64::MAX - a[0], 0, 0, 0],
            SDEI_EVENT_CONTEXT => [SdeiError::InvalidParameters.to_x0(), 0, 0, 0],
            SDEI_EVENT_SIGNAL => [SdeiError::Denied.to_x0(), 0, 0, 0],
            SDEI_PE_MASK => [1, 0, 0, 0],
            SDEI_EVENT_STATUS => [0b11, 0, 0, 0],
            _ => [SdeiError::NotSupported.to_x0(), 0, 0, 0],
        }));
        assert_eq!(s.version(), Ok(SdeiVersion::V1_0));
        assert_eq!(s.event_register(0, 0xffff_8000_1000_0000, 42, 0, 0), Ok(()));
        // A register holding -1 is a value, not an error.
        assert_eq!(s.event_context(0), Ok(u64::MAX));
        assert_eq!(s.event_context(18), Err(SdeiError::InvalidParameters));
        assert_eq!(s.signal(1), Err(SdeiError::Denied));
        assert_eq!(s.pe_mask(), Ok(true));
        assert_eq!(
            s.event_status(0),
            Ok(EventStatus {
                registered: true,
                enabled: true,
                running: false
            })
        );
        assert_eq!(s.features(0), Err(SdeiError::NotSupported));
        assert_eq!(s.event_complete(SDEI_EV_HANDLED), SdeiError::NotSupported);
    }
}
