//! The firmware's runtime services: one function decides every SMC, one
//! decides every SDEI signal. Both work on a [`TrapFrame`] and the state
//! machines, and reach hardware only through [`Platform`], so they run in
//! host tests with a recording fake.
//!
//! Services (function IDs in `crash_payload::{smccc, psci, sdei}`):
//! - SMCCC 1.1: `SMCCC_VERSION`, `SMCCC_ARCH_FEATURES` (no workaround is
//!   offered: QEMU's TCG has no speculative side channels to close).
//! - PSCI 1.1: `PSCI_VERSION`, `PSCI_FEATURES`, `CPU_ON`, `CPU_OFF`,
//!   `AFFINITY_INFO`, `MIGRATE_INFO_TYPE`, `SYSTEM_OFF`, `SYSTEM_RESET`.
//! - SDEI 1.0 for event 0, plus `SDEI_FEATURES` and `SDEI_EVENT_SIGNAL` of 1.1.
//!
//! Anything else answers `NOT_SUPPORTED` (-1) and returns at once.
#![forbid(unsafe_code)]

use crate::frame::{spsr_el, TrapFrame};
use crate::psci_state::PowerStates;
use crate::sdei_state::{Pe, Signal};
use crash_payload::psci::{self, PsciError, MIGRATE_INFO_TYPE_NOT_PRESENT, PSCI_VERSION_1_1};
use crash_payload::sdei::{self, SdeiError, SdeiVersion, SDEI_EVENT_0};
use crash_payload::smccc::{self, FunctionId, Version, SMCCC_RET_NOT_SUPPORTED};

/// The Group-0 SGI that carries SDEI event 0 (TF-A's `PLAT_SDEI_SGI_PRIVATE` on
/// `plat/qemu` is SGI 8 too).
pub const SGI_SDEI: u32 = 8;
/// The Group-0 SGI that wakes a held core after `CPU_ON`.
pub const SGI_WAKE: u32 = 9;

/// The hardware the services act on.
pub trait Platform {
    /// Raises [`SGI_SDEI`] on `core`.
    fn raise_sdei_sgi(&mut self, core: usize);
    /// Wakes `core` from its wait loop (raises [`SGI_WAKE`]).
    fn wake(&mut self, core: usize);
    /// Loads `ELR_ELx` and `SPSR_ELx` of the Normal world's `el` (1 or 2).
    fn write_elr_spsr(&mut self, el: u8, elr: u64, spsr: u64);
}

/// What the caller does after an SMC has been decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Restore the frame and `eret`.
    Return,
    /// This core turned itself off: go to the wait loop, never return.
    CpuOff,
    /// Power the machine off.
    SystemOff,
    /// Reset the machine.
    SystemReset,
}

const SMCCC_VERSION_1_1: Version = Version::V1_1;

fn psci_result(r: Result<u64, PsciError>) -> u64 {
    match r {
        Ok(v) => v,
        Err(e) => e.to_x0(),
    }
}

fn sdei_result(r: Result<u64, SdeiError>) -> u64 {
    match r {
        Ok(v) => v,
        Err(e) => e.to_x0(),
    }
}

/// PSCI functions this firmware implements (for `PSCI_FEATURES`).
fn psci_implemented(fid: u32) -> bool {
    [
        psci::PSCI_VERSION,
        psci::PSCI_CPU_OFF,
        psci::PSCI_CPU_ON,
        psci::PSCI_CPU_ON_64,
        psci::PSCI_AFFINITY_INFO,
        psci::PSCI_AFFINITY_INFO_64,
        psci::PSCI_MIGRATE_INFO_TYPE,
        psci::PSCI_SYSTEM_OFF,
        psci::PSCI_SYSTEM_RESET,
        psci::PSCI_FEATURES,
        smccc::SMCCC_VERSION,
    ]
    .iter()
    .any(|f| f.get() == fid)
}

/// Decides the SMC in `frame` (function ID in `x0`) made by `core`, whose
/// SDEI state is `pe`. Results go to `x0` (SMC32 calls see `w0`, with the
/// upper half zero); other registers are preserved unless an SDEI completion
/// replaces the whole frame.
pub fn handle_smc<P: Platform>(
    power: &PowerStates,
    pe: &mut Pe,
    core: usize,
    frame: &mut TrapFrame,
    plat: &mut P,
) -> Next {
    let fid = FunctionId(frame.x[0] as u32);
    let mut a = [0u64; 7];
    a.copy_from_slice(&frame.x[1..8]);
    if !fid.is_64() {
        for v in &mut a {
            *v &= 0xffff_ffff;
        }
    }
    let caller_el = spsr_el(frame.spsr);

    let x0: u64 = match fid {
        smccc::SMCCC_VERSION => u64::from(SMCCC_VERSION_1_1.encode()),
        smccc::SMCCC_ARCH_FEATURES => {
            let q = a[0] as u32;
            if q == smccc::SMCCC_VERSION.get() || q == smccc::SMCCC_ARCH_FEATURES.get() {
                0
            } else {
                SMCCC_RET_NOT_SUPPORTED as u64
            }
        }

        psci::PSCI_VERSION => u64::from(PSCI_VERSION_1_1.encode()),
        psci::PSCI_FEATURES => {
            if psci_implemented(a[0] as u32) {
                0
            } else {
                PsciError::NotSupported.to_x0()
            }
        }
        psci::PSCI_CPU_ON | psci::PSCI_CPU_ON_64 => {
            let r = power.cpu_on(a[0], a[1], a[2]);
            if r.is_ok() {
                if let Some(t) = power.core_of_mpidr(a[0]) {
                    plat.wake(t);
                }
            }
            psci_result(r.map(|()| 0))
        }
        psci::PSCI_CPU_OFF => {
            power.cpu_off(core);
            // Whatever SDEI state the PE had is gone; CPU_ON starts it afresh.
            *pe = Pe::new();
            return Next::CpuOff;
        }
        psci::PSCI_AFFINITY_INFO | psci::PSCI_AFFINITY_INFO_64 => {
            psci_result(power.affinity_info(a[0], a[1]).map(|s| s as u64))
        }
        psci::PSCI_MIGRATE_INFO_TYPE => MIGRATE_INFO_TYPE_NOT_PRESENT,
        psci::PSCI_SYSTEM_OFF => return Next::SystemOff,
        psci::PSCI_SYSTEM_RESET => return Next::SystemReset,

        sdei::SDEI_VERSION => SdeiVersion::V1_0.encode(),
        sdei::SDEI_EVENT_REGISTER => {
            sdei_result(pe.register(a[0], a[1], a[2], a[3], caller_el).map(|()| 0))
        }
        sdei::SDEI_EVENT_ENABLE => sdei_result(pe.enable(a[0]).map(|()| 0)),
        sdei::SDEI_EVENT_DISABLE => sdei_result(pe.disable(a[0]).map(|()| 0)),
        sdei::SDEI_EVENT_UNREGISTER => sdei_result(pe.unregister(a[0]).map(|()| 0)),
        sdei::SDEI_EVENT_STATUS => sdei_result(pe.status(a[0]).map(|s| s.to_raw())),
        sdei::SDEI_EVENT_GET_INFO => sdei_result(pe.get_info(a[0], a[1])),
        sdei::SDEI_EVENT_CONTEXT => sdei_result(pe.context(a[0])),
        sdei::SDEI_EVENT_COMPLETE | sdei::SDEI_EVENT_COMPLETE_AND_RESUME => {
            let resume = (fid == sdei::SDEI_EVENT_COMPLETE_AND_RESUME).then_some(a[0]);
            match pe.complete(frame, resume) {
                Ok(r) => {
                    if let Some(r) = r {
                        plat.write_elr_spsr(r.el, r.elr, r.spsr);
                    }
                    if pe.take_resignal() {
                        plat.raise_sdei_sgi(core);
                    }
                    // The frame is now the interrupted (or resumed) context.
                    return Next::Return;
                }
                Err(e) => e.to_x0(),
            }
        }
        sdei::SDEI_EVENT_ROUTING_SET => SdeiError::InvalidParameters.to_x0(),
        sdei::SDEI_PE_MASK => pe.pe_mask(),
        sdei::SDEI_PE_UNMASK => {
            pe.pe_unmask();
            0
        }
        // No interrupt can be bound: SDEI_FEATURES reports zero bind slots.
        sdei::SDEI_INTERRUPT_BIND => SdeiError::OutOfResource.to_x0(),
        sdei::SDEI_INTERRUPT_RELEASE => SdeiError::InvalidParameters.to_x0(),
        sdei::SDEI_EVENT_SIGNAL => {
            if a[0] != u64::from(SDEI_EVENT_0) {
                SdeiError::InvalidParameters.to_x0()
            } else if let Some(t) = power.core_of_mpidr(a[1]) {
                plat.raise_sdei_sgi(t);
                0
            } else {
                SdeiError::InvalidParameters.to_x0()
            }
        }
        sdei::SDEI_FEATURES => {
            if a[0] == sdei::SDEI_FEATURE_BIND_SLOTS {
                0
            } else {
                SdeiError::InvalidParameters.to_x0()
            }
        }
        sdei::SDEI_PRIVATE_RESET => sdei_result(pe.private_reset().map(|()| 0)),
        sdei::SDEI_SHARED_RESET => 0,

        _ => SMCCC_RET_NOT_SUPPORTED as u64,
    };
    frame.x[0] = if fid.is_64() { x0 } else { x0 & 0xffff_ffff };
    if pe.take_resignal() {
        plat.raise_sdei_sgi(core);
    }
    Next::Return
}

/// The SDEI SGI was taken on this core, interrupting `frame`.
pub fn handle_sdei_sgi(pe: &mut Pe, frame: &mut TrapFrame) -> Signal {
    pe.signal(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crash_payload::psci::*;
    use crash_payload::sdei::*;
    use crash_payload::smccc::*;

    #[derive(Default)]
    struct Fake {
        sgis: Vec<usize>,
        wakes: Vec<usize>,
        elx: Vec<(u8, u64, u64)>,
    }
    impl Platform for Fake {
        fn raise_sdei_sgi(&mut self, core: usize) {
            self.sgis.push(core);
        }
        fn wake(&mut self, core: usize) {
            self.wakes.push(core);
        }
        fn write_elr_spsr(&mut self, el: u8, elr: u64, spsr: u64) {
            self.elx.push((el, elr, spsr));
        }
    }

    struct Machine {
        power: PowerStates,
        pes: [Pe; 2],
        plat: Fake,
    }

    impl Machine {
        fn new() -> Self {
            let power = PowerStates::new();
            power.cold_boot(2, 0, 0x4000_0000, 0x8000_0000);
            Self {
                power,
                pes: [Pe::new(), Pe::new()],
                plat: Fake::default(),
            }
        }
        /// An SMC from EL1 on `core`; returns (x0, next, frame after).
        fn smc(&mut self, core: usize, fid: FunctionId, args: &[u64]) -> (u64, Next, TrapFrame) {
            let mut f = TrapFrame::ZERO;
            f.x[0] = u64::from(fid.get());
            f.x[1..=args.len()].copy_from_slice(args);
            f.x[20] = 0x2020;
            f.elr = 0xffff_8000_0800_0004;
            f.spsr = 0x3c5;
            let n = handle_smc(
                &self.power,
                &mut self.pes[core],
                core,
                &mut f,
                &mut self.plat,
            );
            (f.x[0], n, f)
        }
        fn x0(&mut self, core: usize, fid: FunctionId, args: &[u64]) -> u64 {
            self.smc(core, fid, args).0
        }
    }

    #[test]
    fn versions_and_features() {
        let mut m = Machine::new();
        assert_eq!(m.x0(0, SMCCC_VERSION, &[]), 0x1_0001);
        assert_eq!(m.x0(0, PSCI_VERSION, &[]), 0x1_0001);
        assert_eq!(m.x0(0, SDEI_VERSION, &[]), 0x1_0000_0000_0000);
        assert_eq!(m.x0(0, PSCI_FEATURES, &[u64::from(SMCCC_VERSION.get())]), 0);
        assert_eq!(
            m.x0(0, PSCI_FEATURES, &[u64::from(PSCI_CPU_ON_64.get())]),
            0
        );
        // SMC32: the answer is w0.
        assert_eq!(
            m.x0(0, PSCI_FEATURES, &[u64::from(PSCI_CPU_SUSPEND_64.get())]),
            0xffff_ffff
        );
        assert_eq!(m.x0(0, PSCI_MIGRATE_INFO_TYPE, &[]), 2);
        assert_eq!(
            m.x0(
                0,
                SMCCC_ARCH_FEATURES,
                &[u64::from(SMCCC_ARCH_WORKAROUND_1.get())]
            ),
            0xffff_ffff
        );
        assert_eq!(
            m.x0(
                0,
                SMCCC_ARCH_FEATURES,
                &[u64::from(SMCCC_ARCH_FEATURES.get())]
            ),
            0
        );
        assert_eq!(m.x0(0, SDEI_FEATURES, &[0]), 0);
        assert_eq!(
            m.x0(0, SDEI_FEATURES, &[1]),
            SdeiError::InvalidParameters.to_x0()
        );
    }

    #[test]
    fn unknown_calls_answer_not_supported_and_preserve_registers() {
        let mut m = Machine::new();
        for fid in [0xC400_0033u32, 0x8400_0050, 0xC200_0000, 0x8600_ff00, 0] {
            let (x0, n, f) = m.smc(0, FunctionId(fid), &[1, 2, 3]);
            assert_eq!(n, Next::Return);
            let want = if FunctionId(fid).is_64() {
                u64::MAX
            } else {
                0xffff_ffff
            };
            assert_eq!(x0, want, "fid {fid:#x}");
            assert_eq!((f.x[1], f.x[20], f.elr), (1, 0x2020, 0xffff_8000_0800_0004));
        }
        assert_eq!(
            m.x0(0, SDEI_INTERRUPT_BIND, &[40]),
            SdeiError::OutOfResource.to_x0()
        );
    }

    #[test]
    fn cpu_on_off_affinity() {
        let mut m = Machine::new();
        assert_eq!(m.x0(0, PSCI_AFFINITY_INFO_64, &[1, 0]), 1);
        assert_eq!(m.x0(0, PSCI_CPU_ON_64, &[1, 0x4100_0000, 5]), 0);
        assert_eq!(m.plat.wakes, [1]);
        assert_eq!(m.x0(0, PSCI_AFFINITY_INFO_64, &[1, 0]), 2);
        assert_eq!(
            m.x0(0, PSCI_CPU_ON_64, &[1, 0x4100_0000, 5]),
            PsciError::OnPending.to_x0()
        );
        assert_eq!(m.power.take_entry(1), Some((0x4100_0000, 5)));
        assert_eq!(m.x0(0, PSCI_AFFINITY_INFO_64, &[1, 0]), 0);
        assert_eq!(
            m.x0(0, PSCI_CPU_ON_64, &[1, 0x4100_0000, 5]),
            PsciError::AlreadyOn.to_x0()
        );
        assert_eq!(
            m.x0(0, PSCI_CPU_ON_64, &[7, 0x4100_0000, 5]),
            PsciError::InvalidParameters.to_x0()
        );
        assert_eq!(m.smc(1, PSCI_CPU_OFF, &[]).1, Next::CpuOff);
        assert_eq!(m.x0(0, PSCI_AFFINITY_INFO_64, &[1, 0]), 1);
        assert_eq!(m.smc(0, PSCI_SYSTEM_OFF, &[]).1, Next::SystemOff);
        assert_eq!(m.smc(0, PSCI_SYSTEM_RESET, &[]).1, Next::SystemReset);
    }

    fn register_enable_unmask(m: &mut Machine, core: usize) {
        assert_eq!(m.x0(core, SDEI_PRIVATE_RESET, &[]), 0);
        assert_eq!(
            m.x0(
                core,
                SDEI_EVENT_REGISTER,
                &[0, 0xffff_8000_0801_0000, 99, 0, 0]
            ),
            0
        );
        assert_eq!(m.x0(core, SDEI_EVENT_ENABLE, &[0]), 0);
        assert_eq!(m.x0(core, SDEI_PE_UNMASK, &[]), 0);
    }

    #[test]
    fn signal_dispatch_context_complete() {
        let mut m = Machine::new();
        register_enable_unmask(&mut m, 1);
        assert_eq!(m.x0(0, SDEI_EVENT_SIGNAL, &[0, 1]), 0);
        assert_eq!(m.plat.sgis, [1]);
        assert_eq!(
            m.x0(0, SDEI_EVENT_SIGNAL, &[1, 1]),
            SdeiError::InvalidParameters.to_x0()
        );
        assert_eq!(
            m.x0(0, SDEI_EVENT_SIGNAL, &[0, 9]),
            SdeiError::InvalidParameters.to_x0()
        );

        // Core 1 spins with DAIF masked; the SGI is taken at EL3 anyway.
        let mut spin = TrapFrame::ZERO;
        spin.x[0] = 0xaaaa;
        spin.x[17] = 0x1717;
        spin.elr = 0xffff_8000_0812_0000;
        spin.spsr = 0x3c5;
        let orig = spin;
        assert_eq!(
            handle_sdei_sgi(&mut m.pes[1], &mut spin),
            Signal::Dispatched
        );
        assert_eq!(spin.x[..4], [0, 99, orig.elr, 0x3c5]);
        assert_eq!(m.x0(1, SDEI_EVENT_CONTEXT, &[0]), 0xaaaa);
        assert_eq!(m.x0(1, SDEI_EVENT_CONTEXT, &[17]), 0x1717);
        assert_eq!(m.x0(0, SDEI_EVENT_CONTEXT, &[0]), SdeiError::Denied.to_x0());
        assert_eq!(m.x0(1, SDEI_EVENT_STATUS, &[0]), 0b111);
        let (_, n, f) = m.smc(1, SDEI_EVENT_COMPLETE, &[SDEI_EV_HANDLED]);
        assert_eq!(n, Next::Return);
        assert_eq!(f, orig);
        assert_eq!(
            m.x0(1, SDEI_EVENT_COMPLETE, &[0]),
            SdeiError::Denied.to_x0()
        );
    }

    #[test]
    fn complete_and_resume_loads_client_elr_spsr() {
        let mut m = Machine::new();
        register_enable_unmask(&mut m, 0);
        let mut f = TrapFrame::ZERO;
        f.elr = 0x1234;
        f.spsr = 0x345;
        handle_sdei_sgi(&mut m.pes[0], &mut f);
        let (_, _, after) = m.smc(0, SDEI_EVENT_COMPLETE_AND_RESUME, &[0xffff_8000_0900_0000]);
        assert_eq!(after.elr, 0xffff_8000_0900_0000);
        assert_eq!(after.spsr, 0x3c5);
        assert_eq!(m.plat.elx, [(1, 0x1234, 0x345)]);
    }

    #[test]
    fn pending_signal_is_raised_again_after_complete() {
        let mut m = Machine::new();
        register_enable_unmask(&mut m, 0);
        let mut f = TrapFrame::ZERO;
        handle_sdei_sgi(&mut m.pes[0], &mut f);
        let mut g = f;
        assert_eq!(handle_sdei_sgi(&mut m.pes[0], &mut g), Signal::Pending);
        m.smc(0, SDEI_EVENT_COMPLETE, &[0]);
        assert_eq!(m.plat.sgis, [0]);
    }

    #[test]
    fn masked_pe_drops_and_cpu_off_resets_sdei() {
        let mut m = Machine::new();
        register_enable_unmask(&mut m, 1);
        assert_eq!(m.x0(1, SDEI_PE_MASK, &[]), 1);
        assert_eq!(m.x0(1, SDEI_PE_MASK, &[]), 0);
        let mut f = TrapFrame::ZERO;
        assert_eq!(
            handle_sdei_sgi(&mut m.pes[1], &mut f),
            Signal::DroppedMasked
        );
        assert_eq!(m.x0(1, SDEI_PE_UNMASK, &[]), 0);
        assert!(m.plat.sgis.is_empty(), "a dropped signal stays dropped");
        // Powering off inside a dispatch must not wedge the PE after CPU_ON.
        assert_eq!(handle_sdei_sgi(&mut m.pes[1], &mut f), Signal::Dispatched);
        assert_eq!(m.smc(1, PSCI_CPU_OFF, &[]).1, Next::CpuOff);
        assert_eq!(m.x0(0, PSCI_CPU_ON_64, &[1, 0x4100_0000, 0]), 0);
        assert_eq!(m.power.take_entry(1), Some((0x4100_0000, 0)));
        assert_eq!(m.x0(1, SDEI_EVENT_STATUS, &[0]), 0);
        register_enable_unmask(&mut m, 1);
        assert_eq!(handle_sdei_sgi(&mut m.pes[1], &mut f), Signal::Dispatched);
    }
}
