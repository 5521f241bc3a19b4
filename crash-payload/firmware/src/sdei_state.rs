//! SDEI event 0 on one PE: the registration state machine of the SDEI
//! specification (DEN 0054A §6.1, table 6; the same table as TF-A's
//! `sdei_state.c`), PE masking, and the one dispatch a PE can have at a time.
//!
//! States are three flags: *registered*, *enabled*, *running*. Running and
//! not registered is "unregister pending": the handler called
//! `SDEI_EVENT_UNREGISTER` (answered `PENDING`) and the event becomes
//! unregistered when the handler completes.
//!
//! What a signal does (the Group-0 SGI taken at EL3), in order:
//! 1. PE masked: dropped (event 0 is not kept pending for a masked PE).
//! 2. Not registered, or unregister pending: dropped.
//! 3. Registered but disabled, or a handler already running: kept pending,
//!    raised again when the event is enabled, the handler completes or the
//!    PE is unmasked ([`Pe::take_resignal`]).
//! 4. Otherwise dispatched: the interrupted frame is saved and rewritten to
//!    enter the handler.
//!
//! Every PE starts masked with event 0 unregistered (cold boot and `CPU_ON`).
#![forbid(unsafe_code)]

use crate::frame::{spsr_elx_h_masked, TrapFrame};
use crash_payload::sdei::{
    EventStatus, SdeiError, SDEI_CONTEXT_REGS, SDEI_EVENT_0, SDEI_EVENT_INFO_EV_NOT_SIGNALED,
    SDEI_EVENT_INFO_EV_PRIORITY, SDEI_EVENT_INFO_EV_ROUTING_AFF, SDEI_EVENT_INFO_EV_ROUTING_MODE,
    SDEI_EVENT_INFO_EV_TYPE, SDEI_EVENT_PRIORITY_NORMAL, SDEI_EVENT_REGISTER_RM_PE,
    SDEI_EVENT_TYPE_PRIVATE,
};

/// What happened to a signal that reached this PE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// The handler is entered when the frame is restored.
    Dispatched,
    /// Kept pending (event disabled, or a handler running).
    Pending,
    /// Dropped: the PE is masked.
    DroppedMasked,
    /// Dropped: event 0 is not registered on this PE.
    DroppedUnregistered,
}

/// Registers to load at the client's EL for `SDEI_EVENT_COMPLETE_AND_RESUME`:
/// the resumed code sees an exception-like entry whose `ELR_ELx`/`SPSR_ELx`
/// point at the interrupted context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeRegs {
    /// The client's exception level (1 or 2).
    pub el: u8,
    /// Value for `ELR_ELx`: the interrupted PC.
    pub elr: u64,
    /// Value for `SPSR_ELx`: the interrupted PSTATE.
    pub spsr: u64,
}

/// Event 0 and the mask on one PE.
#[derive(Clone, Copy, Debug)]
pub struct Pe {
    masked: bool,
    registered: bool,
    enabled: bool,
    running: bool,
    pending: bool,
    entry: u64,
    arg: u64,
    client_el: u8,
    /// The interrupted context while `running`.
    saved: TrapFrame,
}

impl Default for Pe {
    fn default() -> Self {
        Self::new()
    }
}

fn check_event(ev: u64) -> Result<(), SdeiError> {
    if ev == u64::from(SDEI_EVENT_0) {
        Ok(())
    } else {
        Err(SdeiError::InvalidParameters)
    }
}

impl Pe {
    /// Power-on state: masked, event 0 unregistered.
    pub const fn new() -> Self {
        Self {
            masked: true,
            registered: false,
            enabled: false,
            running: false,
            pending: false,
            entry: 0,
            arg: 0,
            client_el: 1,
            saved: TrapFrame::ZERO,
        }
    }

    /// Whether a handler is running (a dispatch is outstanding) on this PE.
    pub const fn running(&self) -> bool {
        self.running
    }

    /// Whether the PE is masked.
    pub const fn masked(&self) -> bool {
        self.masked
    }

    /// `SDEI_EVENT_REGISTER(ev, entry, arg, flags, affinity)` from a caller at
    /// `client_el`. Event 0 is private: routing flags are accepted and ignored.
    pub fn register(
        &mut self,
        ev: u64,
        entry: u64,
        arg: u64,
        flags: u64,
        client_el: u8,
    ) -> Result<(), SdeiError> {
        check_event(ev)?;
        if flags & !SDEI_EVENT_REGISTER_RM_PE != 0 || entry == 0 || !(1..=2).contains(&client_el) {
            return Err(SdeiError::InvalidParameters);
        }
        // Only from unregistered and not running (table: REGISTER is valid in state 0 only).
        if self.registered || self.running {
            return Err(SdeiError::Denied);
        }
        self.registered = true;
        self.enabled = false;
        self.entry = entry;
        self.arg = arg;
        self.client_el = client_el;
        Ok(())
    }

    /// `SDEI_EVENT_ENABLE(ev)`.
    pub fn enable(&mut self, ev: u64) -> Result<(), SdeiError> {
        check_event(ev)?;
        if !self.registered {
            return Err(SdeiError::Denied);
        }
        self.enabled = true;
        Ok(())
    }

    /// `SDEI_EVENT_DISABLE(ev)`.
    pub fn disable(&mut self, ev: u64) -> Result<(), SdeiError> {
        check_event(ev)?;
        if !self.registered {
            return Err(SdeiError::Denied);
        }
        self.enabled = false;
        Ok(())
    }

    /// `SDEI_EVENT_UNREGISTER(ev)`: `Err(Pending)` from a running handler,
    /// which completes the unregistration at `SDEI_EVENT_COMPLETE`.
    pub fn unregister(&mut self, ev: u64) -> Result<(), SdeiError> {
        check_event(ev)?;
        if !self.registered {
            // Already unregister-pending answers PENDING again (TF-A does the same).
            return Err(if self.running {
                SdeiError::Pending
            } else {
                SdeiError::Denied
            });
        }
        self.registered = false;
        self.enabled = false;
        self.pending = false;
        if self.running {
            return Err(SdeiError::Pending);
        }
        Ok(())
    }

    /// `SDEI_EVENT_STATUS(ev)`.
    pub fn status(&self, ev: u64) -> Result<EventStatus, SdeiError> {
        check_event(ev)?;
        Ok(EventStatus {
            registered: self.registered,
            enabled: self.enabled,
            running: self.running,
        })
    }

    /// `SDEI_EVENT_GET_INFO(ev, info)`.
    pub fn get_info(&self, ev: u64, info: u64) -> Result<u64, SdeiError> {
        check_event(ev)?;
        match info {
            SDEI_EVENT_INFO_EV_TYPE => Ok(SDEI_EVENT_TYPE_PRIVATE),
            SDEI_EVENT_INFO_EV_NOT_SIGNALED => Ok(0),
            SDEI_EVENT_INFO_EV_PRIORITY => Ok(SDEI_EVENT_PRIORITY_NORMAL),
            // Routing is defined for shared events only.
            SDEI_EVENT_INFO_EV_ROUTING_MODE | SDEI_EVENT_INFO_EV_ROUTING_AFF => {
                Err(SdeiError::InvalidParameters)
            }
            _ => Err(SdeiError::InvalidParameters),
        }
    }

    /// `SDEI_EVENT_CONTEXT(n)`: the interrupted `x<n>`, only inside a handler.
    pub fn context(&self, n: u64) -> Result<u64, SdeiError> {
        if n >= SDEI_CONTEXT_REGS {
            return Err(SdeiError::InvalidParameters);
        }
        if !self.running {
            return Err(SdeiError::Denied);
        }
        Ok(self.saved.x[n as usize])
    }

    /// `SDEI_PE_MASK`: 1 if the PE was unmasked, 0 if it already was masked.
    pub fn pe_mask(&mut self) -> u64 {
        let was = self.masked;
        self.masked = true;
        u64::from(!was)
    }

    /// `SDEI_PE_UNMASK`.
    pub fn pe_unmask(&mut self) {
        self.masked = false;
    }

    /// `SDEI_PRIVATE_RESET`: unregisters event 0 on this PE. A running
    /// handler makes it unregister-pending and the call answers DENIED
    /// (as TF-A's `sdei_private_reset`).
    pub fn private_reset(&mut self) -> Result<(), SdeiError> {
        match self.unregister(u64::from(SDEI_EVENT_0)) {
            Ok(()) | Err(SdeiError::Denied) => Ok(()),
            Err(_) => Err(SdeiError::Denied),
        }
    }

    /// A signal (the SDEI SGI) reached this PE while it ran `frame` in the
    /// Normal world. On [`Signal::Dispatched`] the frame now enters the handler
    /// with `x0` = event, `x1` = argument, `x2` = interrupted PC,
    /// `x3` = interrupted PSTATE, at the registering EL with DAIF masked;
    /// `x4..x30` and the client's `SP_ELx` are left as interrupted.
    pub fn signal(&mut self, frame: &mut TrapFrame) -> Signal {
        if self.masked {
            return Signal::DroppedMasked;
        }
        if !self.registered {
            return Signal::DroppedUnregistered;
        }
        if !self.enabled || self.running {
            self.pending = true;
            return Signal::Pending;
        }
        self.saved = *frame;
        self.running = true;
        frame.x[0] = u64::from(SDEI_EVENT_0);
        frame.x[1] = self.arg;
        frame.x[2] = self.saved.elr;
        frame.x[3] = self.saved.spsr;
        frame.elr = self.entry;
        frame.spsr = spsr_elx_h_masked(self.client_el);
        Signal::Dispatched
    }

    /// `SDEI_EVENT_COMPLETE` (`resume = None`) or
    /// `SDEI_EVENT_COMPLETE_AND_RESUME` (`resume = Some(addr)`), called from
    /// the handler whose SMC frame is `frame`.
    ///
    /// Complete: the frame becomes the interrupted context again. Complete and
    /// resume: the interrupted registers, but entered at `addr` at the client's
    /// EL with DAIF masked, as if an exception had been taken there from the
    /// interrupted context; the caller loads the returned [`ResumeRegs`] into
    /// `ELR_ELx`/`SPSR_ELx`.
    pub fn complete(
        &mut self,
        frame: &mut TrapFrame,
        resume: Option<u64>,
    ) -> Result<Option<ResumeRegs>, SdeiError> {
        if !self.running {
            return Err(SdeiError::Denied);
        }
        self.running = false;
        *frame = self.saved;
        Ok(resume.map(|addr| {
            frame.elr = addr;
            frame.spsr = spsr_elx_h_masked(self.client_el);
            ResumeRegs {
                el: self.client_el,
                elr: self.saved.elr,
                spsr: self.saved.spsr,
            }
        }))
    }

    /// Whether a pending signal can now be dispatched; clears it if so. The
    /// caller raises the SGI on this PE again, and it is taken as soon as the
    /// Normal world runs.
    pub fn take_resignal(&mut self) -> bool {
        let go = self.pending && self.registered && self.enabled && !self.running && !self.masked;
        if go {
            self.pending = false;
        }
        go
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::SPSR_DAIF;

    const ENTRY: u64 = 0xffff_8000_0801_0000;

    fn interrupted() -> TrapFrame {
        let mut f = TrapFrame::ZERO;
        for (i, r) in f.x.iter_mut().enumerate() {
            *r = 0x1000 + i as u64;
        }
        f.elr = 0xffff_8000_0812_3456;
        f.spsr = 0x3c5; // EL1h, DAIF masked: a CPU spinning with interrupts off
        f
    }

    fn ready() -> Pe {
        let mut pe = Pe::new();
        pe.register(0, ENTRY, 77, 0, 1).unwrap();
        pe.enable(0).unwrap();
        pe.pe_unmask();
        pe
    }

    fn st(pe: &Pe) -> (bool, bool, bool) {
        let s = pe.status(0).unwrap();
        (s.registered, s.enabled, s.running)
    }

    #[test]
    fn registration_state_table() {
        let mut pe = Pe::new();
        // state 0: unregistered
        assert_eq!(pe.enable(0), Err(SdeiError::Denied));
        assert_eq!(pe.disable(0), Err(SdeiError::Denied));
        assert_eq!(pe.unregister(0), Err(SdeiError::Denied));
        assert_eq!(pe.register(0, ENTRY, 1, 0, 1), Ok(()));
        assert_eq!(st(&pe), (true, false, false));
        // registered: register again denied, disable is a no-op, enable ok
        assert_eq!(pe.register(0, ENTRY, 1, 0, 1), Err(SdeiError::Denied));
        assert_eq!(pe.disable(0), Ok(()));
        assert_eq!(pe.enable(0), Ok(()));
        assert_eq!(pe.enable(0), Ok(()));
        assert_eq!(st(&pe), (true, true, false));
        assert_eq!(pe.disable(0), Ok(()));
        assert_eq!(st(&pe), (true, false, false));
        assert_eq!(pe.unregister(0), Ok(()));
        assert_eq!(st(&pe), (false, false, false));
    }

    #[test]
    fn bad_parameters() {
        let mut pe = Pe::new();
        assert_eq!(
            pe.register(1, ENTRY, 0, 0, 1),
            Err(SdeiError::InvalidParameters)
        );
        assert_eq!(
            pe.register(0, 0, 0, 0, 1),
            Err(SdeiError::InvalidParameters)
        );
        assert_eq!(
            pe.register(0, ENTRY, 0, 2, 1),
            Err(SdeiError::InvalidParameters)
        );
        assert_eq!(
            pe.register(0, ENTRY, 0, 0, 3),
            Err(SdeiError::InvalidParameters)
        );
        assert_eq!(pe.enable(5), Err(SdeiError::InvalidParameters));
        assert_eq!(pe.status(1), Err(SdeiError::InvalidParameters));
        assert_eq!(pe.get_info(0, 0), Ok(0));
        assert_eq!(pe.get_info(0, 1), Ok(0));
        assert_eq!(pe.get_info(0, 2), Ok(0));
        assert_eq!(pe.get_info(0, 3), Err(SdeiError::InvalidParameters));
        assert_eq!(pe.get_info(0, 9), Err(SdeiError::InvalidParameters));
    }

    #[test]
    fn dispatch_sets_handler_registers_and_complete_restores() {
        let mut pe = ready();
        let orig = interrupted();
        let mut f = orig;
        assert_eq!(pe.signal(&mut f), Signal::Dispatched);
        assert_eq!(f.x[..4], [0, 77, orig.elr, orig.spsr]);
        assert_eq!(f.x[4..], orig.x[4..]);
        assert_eq!(f.elr, ENTRY);
        assert_eq!(f.spsr, 0x3c5);
        assert_eq!(st(&pe), (true, true, true));
        // EVENT_CONTEXT gives the interrupted x0..x17.
        for n in 0..18 {
            assert_eq!(pe.context(n), Ok(0x1000 + n));
        }
        assert_eq!(pe.context(18), Err(SdeiError::InvalidParameters));
        // The handler's SMC frame is whatever the handler had.
        let mut smc = TrapFrame::ZERO;
        assert_eq!(pe.complete(&mut smc, None), Ok(None));
        assert_eq!(smc, orig);
        assert_eq!(st(&pe), (true, true, false));
        assert_eq!(pe.context(0), Err(SdeiError::Denied));
        let mut again = TrapFrame::ZERO;
        assert_eq!(pe.complete(&mut again, None), Err(SdeiError::Denied));
    }

    #[test]
    fn complete_and_resume_is_exception_like() {
        let mut pe = ready();
        let orig = interrupted();
        let mut f = orig;
        pe.signal(&mut f);
        let mut smc = TrapFrame::ZERO;
        let r = pe.complete(&mut smc, Some(0xffff_8000_0900_0000)).unwrap();
        assert_eq!(
            r,
            Some(ResumeRegs {
                el: 1,
                elr: orig.elr,
                spsr: orig.spsr
            })
        );
        assert_eq!(smc.x, orig.x);
        assert_eq!(smc.elr, 0xffff_8000_0900_0000);
        assert_eq!(smc.spsr & SPSR_DAIF, SPSR_DAIF);
        assert_eq!(smc.spsr & 0xf, 0b0101);
    }

    #[test]
    fn handler_runs_at_the_registering_el() {
        let mut pe = Pe::new();
        pe.register(0, ENTRY, 0, 0, 2).unwrap();
        pe.enable(0).unwrap();
        pe.pe_unmask();
        let mut f = interrupted();
        pe.signal(&mut f);
        assert_eq!(f.spsr, 0x3c9);
    }

    #[test]
    fn masked_pe_drops_and_mask_reports_change() {
        let mut pe = ready();
        assert_eq!(pe.pe_mask(), 1);
        assert_eq!(pe.pe_mask(), 0);
        let orig = interrupted();
        let mut f = orig;
        assert_eq!(pe.signal(&mut f), Signal::DroppedMasked);
        assert_eq!(f, orig);
        pe.pe_unmask();
        // Dropped, not pending: unmasking raises nothing.
        assert!(!pe.take_resignal());
        // A fresh PE is masked.
        let mut fresh = Pe::new();
        assert_eq!(fresh.signal(&mut f), Signal::DroppedMasked);
    }

    #[test]
    fn unregistered_drops_disabled_keeps_pending() {
        let mut pe = Pe::new();
        pe.pe_unmask();
        let mut f = interrupted();
        assert_eq!(pe.signal(&mut f), Signal::DroppedUnregistered);
        pe.register(0, ENTRY, 0, 0, 1).unwrap();
        assert_eq!(pe.signal(&mut f), Signal::Pending);
        assert!(!pe.take_resignal());
        pe.enable(0).unwrap();
        assert!(pe.take_resignal());
        assert!(!pe.take_resignal());
        assert_eq!(pe.signal(&mut f), Signal::Dispatched);
    }

    #[test]
    fn one_dispatch_at_a_time() {
        let mut pe = ready();
        let mut f = interrupted();
        assert_eq!(pe.signal(&mut f), Signal::Dispatched);
        let in_handler = f;
        let mut g = in_handler;
        assert_eq!(pe.signal(&mut g), Signal::Pending);
        assert_eq!(
            g, in_handler,
            "a second signal must not touch the running handler"
        );
        assert!(!pe.take_resignal(), "not while the handler runs");
        let mut smc = TrapFrame::ZERO;
        pe.complete(&mut smc, None).unwrap();
        assert!(pe.take_resignal());
    }

    #[test]
    fn unregister_from_handler_is_pending_until_complete() {
        let mut pe = ready();
        let mut f = interrupted();
        pe.signal(&mut f);
        assert_eq!(pe.unregister(0), Err(SdeiError::Pending));
        assert_eq!(st(&pe), (false, false, true));
        assert_eq!(pe.unregister(0), Err(SdeiError::Pending));
        assert_eq!(pe.register(0, ENTRY, 0, 0, 1), Err(SdeiError::Denied));
        assert_eq!(pe.enable(0), Err(SdeiError::Denied));
        assert_eq!(pe.context(3), Ok(0x1003));
        let mut smc = TrapFrame::ZERO;
        assert_eq!(pe.complete(&mut smc, None), Ok(None));
        assert_eq!(st(&pe), (false, false, false));
        assert_eq!(pe.register(0, ENTRY, 0, 0, 1), Ok(()));
    }

    #[test]
    fn disable_while_running_then_complete() {
        let mut pe = ready();
        let mut f = interrupted();
        pe.signal(&mut f);
        assert_eq!(pe.disable(0), Ok(()));
        assert_eq!(st(&pe), (true, false, true));
        let mut smc = TrapFrame::ZERO;
        pe.complete(&mut smc, None).unwrap();
        assert_eq!(st(&pe), (true, false, false));
    }

    #[test]
    fn private_reset() {
        let mut pe = ready();
        assert_eq!(pe.private_reset(), Ok(()));
        assert_eq!(st(&pe), (false, false, false));
        assert_eq!(pe.private_reset(), Ok(()), "nothing registered is fine");
        let mut pe = ready();
        let mut f = interrupted();
        pe.signal(&mut f);
        assert_eq!(pe.private_reset(), Err(SdeiError::Denied));
        assert_eq!(st(&pe), (false, false, true));
    }
}
