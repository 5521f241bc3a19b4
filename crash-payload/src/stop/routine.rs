//! The target side: the one stop routine every rung ends in.
//!
//! Whatever brought the CPU here — the stop IPI, the pseudo-NMI IPI or SDEI
//! event 0 — the routine reads this CPU's request word and then:
//!
//! 1. masks DAIF;
//! 2. for a crash stop, writes the CPU's crash note from the **interrupted**
//!    registers;
//! 3. clears the CPU's online bit — the acknowledgement the requester polls;
//! 4. masks SDEI on this PE (`SDEI_PE_MASK`), so no later event enters it;
//! 5. parks without ever resuming the interrupted (wedged) context.
//!
//! How it parks depends on how it was entered:
//! - From an IPI or pseudo-NMI ([`on_ipi`]): a `wfi` loop, or PSCI `CPU_OFF`.
//! - From an SDEI dispatch ([`on_sdei_event`]): either park inside the
//!   handler and never complete the event (what upstream's v2 does, and the
//!   only choice through Linux's own SDEI entry path), or return
//!   [`SdeiOutcome::CompleteAndResume`] so the entry code calls
//!   `SDEI_EVENT_COMPLETE_AND_RESUME` into a park or `CPU_OFF` routine, which
//!   then runs [`resumed_park`] *outside* the dispatch. A CPU must never power
//!   off inside a dispatch (under TF-A it then never receives the event again
//!   after `CPU_ON`): [`on_sdei_event`] only accepts a CPU handle bounded by
//!   [`StopCpu`] + [`EventContext`], neither of which can power off, so the
//!   rule is checked by the compiler; `CPU_OFF` ([`PowerOff`]) is reachable
//!   only from [`on_ipi`] and [`resumed_park`].
//!
//! A backtrace request prints the interrupted context, acknowledges, and
//! returns to it; a stop requested meanwhile is honoured before returning.
//! An entry that finds this CPU already inside the routine (an SDEI event
//! or pseudo-NMI landing between the outer entry and `SDEI_PE_MASK`) returns
//! at once, so the outer invocation finishes and the note holds the real
//! interrupted context, not the routine's own.

use crate::prstatus::Regs;
use crate::sdei::{SdeiError, SDEI_CONTEXT_REGS};

use super::board::{Request, StopBoard};

/// The machine operations the stop routine needs on the CPU running it.
///
/// Implemented by the kernel module (over kernel primitives and the SDEI ABI
/// client [`crate::sdei::Sdei`]), by firmware, and by the host simulation.
pub trait StopCpu {
    /// What parking yields: `core::convert::Infallible` on hardware (a park
    /// never returns); a marker in a simulation, so its thread can end.
    type Parked;

    /// This CPU's logical number (index into the [`StopBoard`]).
    fn cpu(&self) -> usize;
    /// Masks D, A, I and F (`msr daifset, #0xf`).
    fn mask_daif(&mut self);
    /// Writes this CPU's 424-byte crash-notes buffer from `regs`
    /// ([`crate::crash_note::build`], `pr_pid` = the interrupted task's pid).
    fn write_crash_note(&mut self, regs: &Regs);
    /// Prints a backtrace of `regs` (the NMI-backtrace output).
    fn backtrace(&mut self, regs: &Regs);
    /// Clears this CPU's online bit: the stop acknowledgement. Must be a
    /// `Release` operation (Linux: `smp_mb__before_atomic()` then
    /// `set_cpu_online(cpu, false)`), so a requester that sees the CPU offline
    /// also sees its crash note.
    fn clear_online(&mut self);
    /// `SDEI_PE_MASK` through the ABI ([`crate::sdei::Sdei::pe_mask`]);
    /// `Ok(true)` when this call masked an unmasked PE. Without SDEI the
    /// implementation answers `Err(SdeiError::NotSupported)`, which the
    /// routine ignores.
    fn sdei_pe_mask(&mut self) -> Result<bool, SdeiError>;
    /// Parks forever: DAIF masked, a `wfi` loop. Legal anywhere, including
    /// inside an SDEI dispatch (the event is then never completed).
    fn park(&mut self) -> Self::Parked;
}

/// Inside an SDEI dispatch: the interrupted `x0..x17`.
pub trait EventContext {
    /// `SDEI_EVENT_CONTEXT(n)` ([`crate::sdei::Sdei::event_context`]); only
    /// valid inside a handler.
    fn event_context(&mut self, n: u64) -> Result<u64, SdeiError>;
}

/// Outside any SDEI dispatch: may power the CPU off.
pub trait PowerOff: StopCpu {
    /// PSCI `CPU_OFF` ([`crate::psci::Psci::cpu_off`]); if firmware refuses,
    /// parks instead. Never call this inside an SDEI dispatch.
    fn cpu_off(&mut self) -> Self::Parked;
}

/// Where a stopped CPU ends up once it is outside any dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParkRoutine {
    /// A `wfi` loop with DAIF masked.
    Wfi,
    /// PSCI `CPU_OFF` (falls back to the `wfi` loop if refused).
    CpuOff,
}

/// How a stop taken through SDEI leaves the dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdeiExit {
    /// Park inside the handler; the event is never completed.
    ParkInHandler,
    /// `SDEI_EVENT_COMPLETE_AND_RESUME` into this routine.
    CompleteAndResume(ParkRoutine),
}

/// Stop-routine policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StopPolicy {
    /// How a stop leaves an SDEI dispatch.
    pub sdei_exit: SdeiExit,
    /// How a stop taken from an IPI or pseudo-NMI parks.
    pub after_ipi: ParkRoutine,
}

impl StopPolicy {
    /// What Linux does (`ipi_cpu_crash_stop`, upstream's SDEI v2): power off
    /// after an IPI, park inside the SDEI handler.
    pub const LINUX: StopPolicy = StopPolicy {
        sdei_exit: SdeiExit::ParkInHandler,
        after_ipi: ParkRoutine::CpuOff,
    };
}

impl Default for StopPolicy {
    fn default() -> Self {
        Self::LINUX
    }
}

/// What the IPI/NMI handler returns to its caller.
#[derive(Debug, PartialEq, Eq)]
pub enum IpiOutcome<P> {
    /// Nothing (more) to do here: return from the interrupt.
    Resume,
    /// Stopped and parked (uninhabited on hardware).
    Parked(P),
}

/// What the SDEI handler returns to the entry code.
#[derive(Debug, PartialEq, Eq)]
pub enum SdeiOutcome<P> {
    /// Nothing (more) to do here: `SDEI_EVENT_COMPLETE(SDEI_EV_HANDLED)`,
    /// resuming the interrupted context. Never returned after a stop.
    Complete,
    /// Stopped: the entry code calls `SDEI_EVENT_COMPLETE_AND_RESUME` with
    /// the address of a routine that calls [`resumed_park`] with this value.
    CompleteAndResume(ParkRoutine),
    /// Stopped and parked inside the handler (uninhabited on hardware).
    Parked(P),
}

/// What the entry code of an SDEI dispatch hands the handler (SDEI §5.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdeiEntry {
    /// `x0`: the event number.
    pub event: u32,
    /// `x2`: the interrupted PC.
    pub pc: u64,
    /// `x3`: the interrupted PSTATE.
    pub pstate: u64,
    /// The registers at handler entry as the entry code saved them:
    /// `x18..x30` and `sp` are the interrupted context's (for an interruption
    /// at EL0 the entry code puts `SP_EL0` in `sp`); `x0..x17` are overwritten
    /// from `SDEI_EVENT_CONTEXT`, falling back to these values for `x4..x17`
    /// if a call fails. `pc` and `pstate` here are ignored.
    pub live: Regs,
}

impl SdeiEntry {
    /// The interrupted context: `x0..x17` from `SDEI_EVENT_CONTEXT`, the rest
    /// from the entry registers, `pc`/`pstate` from `x2`/`x3`. Only call this
    /// inside the dispatch.
    pub fn interrupted_regs<E: EventContext + ?Sized>(&self, ctx: &mut E) -> Regs {
        let mut r = self.live;
        r.pc = self.pc;
        r.pstate = self.pstate;
        for (n, x) in (0..SDEI_CONTEXT_REGS).zip(r.x.iter_mut()) {
            match ctx.event_context(n) {
                Ok(v) => *x = v,
                // x0..x3 at entry hold the handler's arguments, not the
                // interrupted values: an unknown register reads as zero.
                Err(_) if n < 4 => *x = 0,
                Err(_) => {}
            }
        }
        r
    }
}

/// The common tail of every rung: steps 1–4 of the module documentation.
/// Returns with the CPU acknowledged and SDEI masked; the caller parks.
fn stop_tail<C: StopCpu + ?Sized>(cpu: &mut C, req: Request, regs: &mut dyn FnMut(&mut C) -> Regs) {
    cpu.mask_daif();
    if req.crash() {
        let r = regs(cpu);
        cpu.write_crash_note(&r);
    }
    cpu.clear_online();
    // Not fatal: without SDEI (NOT_SUPPORTED) there is nothing to mask, and
    // a CPU that cannot mask still never completes or resumes.
    let _ = cpu.sdei_pe_mask();
}

/// Serves backtrace requests until none is left; returns the request word
/// as it stands afterwards.
fn serve_backtraces<C: StopCpu + ?Sized, const N: usize>(
    board: &StopBoard<N>,
    cpu: &mut C,
    regs: &mut dyn FnMut(&mut C) -> Regs,
) -> Request {
    let id = cpu.cpu();
    let mut req = board.read(id);
    // Bounded: each pass clears the bit; a new request arriving meanwhile
    // is served once more, and requesters wait for the ack before asking again.
    for _ in 0..4 {
        if !req.backtrace() {
            break;
        }
        let r = regs(cpu);
        cpu.backtrace(&r);
        board.ack_backtrace(id);
        req = board.read(id);
    }
    req
}

/// The IPI / pseudo-NMI handler's body. `interrupted` is the exception's
/// saved context (`get_irq_regs()` in Linux).
pub fn on_ipi<C: PowerOff, const N: usize>(
    board: &StopBoard<N>,
    cpu: &mut C,
    interrupted: &Regs,
    policy: &StopPolicy,
) -> IpiOutcome<C::Parked> {
    let id = cpu.cpu();
    if !board.enter(id) {
        // Nested inside this CPU's own handler: the outer one finishes.
        return IpiOutcome::Resume;
    }
    let mut regs = |_: &mut C| *interrupted;
    let req = serve_backtraces(board, cpu, &mut regs);
    if !req.stop() {
        board.leave(id);
        return IpiOutcome::Resume;
    }
    stop_tail(cpu, req, &mut regs);
    IpiOutcome::Parked(resumed_park(cpu, policy.after_ipi))
}

/// The SDEI event 0 handler's body, called by the entry code inside the
/// dispatch. `C` cannot power off (no [`PowerOff`] bound): see the module
/// documentation.
pub fn on_sdei_event<C: StopCpu + EventContext, const N: usize>(
    board: &StopBoard<N>,
    cpu: &mut C,
    entry: &SdeiEntry,
    policy: &StopPolicy,
) -> SdeiOutcome<C::Parked> {
    let id = cpu.cpu();
    if !board.enter(id) {
        // The event interrupted this CPU's own stop or backtrace: complete
        // it, so the outer invocation resumes and finishes the job.
        return SdeiOutcome::Complete;
    }
    // The interrupted registers are fetched at most once, and only when a
    // request needs them (SDEI_EVENT_CONTEXT costs an SMC per register).
    let mut cached: Option<Regs> = None;
    let mut regs = |c: &mut C| *cached.get_or_insert_with(|| entry.interrupted_regs(c));
    let req = serve_backtraces(board, cpu, &mut regs);
    if !req.stop() {
        board.leave(id);
        return SdeiOutcome::Complete;
    }
    stop_tail(cpu, req, &mut regs);
    match policy.sdei_exit {
        SdeiExit::ParkInHandler => SdeiOutcome::Parked(cpu.park()),
        SdeiExit::CompleteAndResume(routine) => SdeiOutcome::CompleteAndResume(routine),
    }
}

/// The routine a stopped CPU runs outside any dispatch: after an IPI stop,
/// or where `SDEI_EVENT_COMPLETE_AND_RESUME` sends it. Masks DAIF again
/// (the resumed context starts masked; this makes sure) and parks or powers
/// off.
pub fn resumed_park<C: PowerOff>(cpu: &mut C, routine: ParkRoutine) -> C::Parked {
    cpu.mask_daif();
    match routine {
        ParkRoutine::Wfi => cpu.park(),
        ParkRoutine::CpuOff => cpu.cpu_off(),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::stop::board::RequestKind;
    use std::vec::Vec;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Op {
        MaskDaif,
        Note(u64),
        Backtrace(u64),
        ClearOnline,
        PeMask,
        Park,
        CpuOff,
        Context(u64),
    }

    #[derive(Debug, PartialEq, Eq)]
    struct Parked;

    struct Fake {
        id: usize,
        ops: Vec<Op>,
        ctx: [u64; 18],
        in_dispatch: bool,
    }

    impl Fake {
        fn new(id: usize) -> Self {
            let mut ctx = [0; 18];
            for (i, c) in ctx.iter_mut().enumerate() {
                *c = 0x100 + i as u64;
            }
            Fake {
                id,
                ops: Vec::new(),
                ctx,
                in_dispatch: false,
            }
        }
    }

    impl StopCpu for Fake {
        type Parked = Parked;
        fn cpu(&self) -> usize {
            self.id
        }
        fn mask_daif(&mut self) {
            self.ops.push(Op::MaskDaif);
        }
        fn write_crash_note(&mut self, regs: &Regs) {
            self.ops.push(Op::Note(regs.pc));
        }
        fn backtrace(&mut self, regs: &Regs) {
            self.ops.push(Op::Backtrace(regs.pc));
        }
        fn clear_online(&mut self) {
            self.ops.push(Op::ClearOnline);
        }
        fn sdei_pe_mask(&mut self) -> Result<bool, SdeiError> {
            self.ops.push(Op::PeMask);
            Ok(true)
        }
        fn park(&mut self) -> Parked {
            self.ops.push(Op::Park);
            Parked
        }
    }
    impl EventContext for Fake {
        fn event_context(&mut self, n: u64) -> Result<u64, SdeiError> {
            assert!(self.in_dispatch, "EVENT_CONTEXT outside a dispatch");
            self.ops.push(Op::Context(n));
            self.ctx
                .get(n as usize)
                .copied()
                .ok_or(SdeiError::InvalidParameters)
        }
    }
    impl PowerOff for Fake {
        fn cpu_off(&mut self) -> Parked {
            assert!(!self.in_dispatch, "CPU_OFF inside an SDEI dispatch");
            self.ops.push(Op::CpuOff);
            Parked
        }
    }

    fn regs(pc: u64) -> Regs {
        Regs {
            pc,
            sp: 0xffff_8000_0a00_3e40,
            pstate: 0x3c5,
            ..Default::default()
        }
    }

    fn entry(pc: u64) -> SdeiEntry {
        let mut live = regs(0);
        live.x[20] = 0x2020;
        SdeiEntry {
            event: 0,
            pc,
            pstate: 0x3c5,
            live,
        }
    }

    #[test]
    fn crash_stop_from_ipi_follows_the_order() {
        let b: StopBoard<2> = StopBoard::new();
        b.request(1, RequestKind::CrashStop).unwrap();
        let mut c = Fake::new(1);
        let out = on_ipi(&b, &mut c, &regs(0xaaa0), &StopPolicy::LINUX);
        assert_eq!(out, IpiOutcome::Parked(Parked));
        assert_eq!(
            c.ops,
            [
                Op::MaskDaif,
                Op::Note(0xaaa0),
                Op::ClearOnline,
                Op::PeMask,
                Op::MaskDaif,
                Op::CpuOff
            ]
        );
    }

    #[test]
    fn plain_stop_writes_no_note() {
        let b: StopBoard<2> = StopBoard::new();
        b.request(1, RequestKind::Stop).unwrap();
        let mut c = Fake::new(1);
        let p = StopPolicy {
            after_ipi: ParkRoutine::Wfi,
            ..StopPolicy::LINUX
        };
        assert_eq!(on_ipi(&b, &mut c, &regs(1), &p), IpiOutcome::Parked(Parked));
        assert_eq!(
            c.ops,
            [
                Op::MaskDaif,
                Op::ClearOnline,
                Op::PeMask,
                Op::MaskDaif,
                Op::Park
            ]
        );
    }

    #[test]
    fn sdei_crash_stop_uses_event_context_and_never_powers_off() {
        let b: StopBoard<2> = StopBoard::new();
        b.request(1, RequestKind::CrashStop).unwrap();
        let mut c = Fake::new(1);
        c.in_dispatch = true;
        let out = on_sdei_event(&b, &mut c, &entry(0xbbb0), &StopPolicy::LINUX);
        assert_eq!(out, SdeiOutcome::Parked(Parked));
        let ctx: Vec<u64> = c
            .ops
            .iter()
            .filter_map(|o| match o {
                Op::Context(n) => Some(*n),
                _ => None,
            })
            .collect();
        assert_eq!(
            ctx,
            (0..18).collect::<Vec<_>>(),
            "x0..x17 fetched once each"
        );
        let rest: Vec<Op> = c
            .ops
            .iter()
            .copied()
            .filter(|o| !matches!(o, Op::Context(_)))
            .collect();
        assert_eq!(
            rest,
            [
                Op::MaskDaif,
                Op::Note(0xbbb0),
                Op::ClearOnline,
                Op::PeMask,
                Op::Park
            ]
        );

        // Complete-and-resume: the handler returns, the CPU_OFF happens later,
        // outside the dispatch.
        b.reset();
        b.request(1, RequestKind::CrashStop).unwrap();
        let mut c = Fake::new(1);
        c.in_dispatch = true;
        let p = StopPolicy {
            sdei_exit: SdeiExit::CompleteAndResume(ParkRoutine::CpuOff),
            ..StopPolicy::LINUX
        };
        let out = on_sdei_event(&b, &mut c, &entry(0xbbb0), &p);
        assert_eq!(out, SdeiOutcome::CompleteAndResume(ParkRoutine::CpuOff));
        assert!(!c.ops.contains(&Op::CpuOff) && !c.ops.contains(&Op::Park));
        c.in_dispatch = false;
        assert_eq!(resumed_park(&mut c, ParkRoutine::CpuOff), Parked);
        assert_eq!(c.ops.last(), Some(&Op::CpuOff));
    }

    #[test]
    fn interrupted_regs_take_x0_to_x17_from_the_firmware() {
        let mut c = Fake::new(0);
        c.in_dispatch = true;
        let e = entry(0xccc0);
        let r = e.interrupted_regs(&mut c);
        assert_eq!(r.x[0], 0x100);
        assert_eq!(r.x[17], 0x111);
        assert_eq!(r.x[20], 0x2020, "x18..x30 come from the entry registers");
        assert_eq!(
            (r.pc, r.pstate, r.sp),
            (0xccc0, 0x3c5, 0xffff_8000_0a00_3e40)
        );
    }

    #[test]
    fn spurious_signal_resumes() {
        let b: StopBoard<2> = StopBoard::new();
        let mut c = Fake::new(1);
        c.in_dispatch = true;
        assert_eq!(
            on_sdei_event(&b, &mut c, &entry(1), &StopPolicy::LINUX),
            SdeiOutcome::Complete
        );
        assert!(c.ops.is_empty(), "no register read, no ack: {:?}", c.ops);
        c.in_dispatch = false;
        assert_eq!(
            on_ipi(&b, &mut c, &regs(1), &StopPolicy::LINUX),
            IpiOutcome::Resume
        );
        // Both left the busy flag clear: a real request is still served.
        b.request(1, RequestKind::Stop).unwrap();
        assert_eq!(
            on_ipi(&b, &mut c, &regs(1), &StopPolicy::LINUX),
            IpiOutcome::Parked(Parked)
        );
    }

    #[test]
    fn backtrace_resumes_and_a_pending_stop_is_then_honoured() {
        let b: StopBoard<2> = StopBoard::new();
        b.request(1, RequestKind::Backtrace).unwrap();
        let mut c = Fake::new(1);
        c.in_dispatch = true;
        assert_eq!(
            on_sdei_event(&b, &mut c, &entry(0xddd0), &StopPolicy::LINUX),
            SdeiOutcome::Complete
        );
        assert!(c.ops.contains(&Op::Backtrace(0xddd0)));
        assert!(b.read(1).is_empty(), "backtrace acknowledged");

        b.request(1, RequestKind::Backtrace).unwrap();
        b.request(1, RequestKind::CrashStop).unwrap();
        let mut c = Fake::new(1);
        c.in_dispatch = true;
        assert_eq!(
            on_sdei_event(&b, &mut c, &entry(0xeee0), &StopPolicy::LINUX),
            SdeiOutcome::Parked(Parked)
        );
        let n_ctx = c.ops.iter().filter(|o| matches!(o, Op::Context(_))).count();
        assert_eq!(n_ctx, 18, "registers fetched once for backtrace and note");
        let i_bt = c.ops.iter().position(|o| *o == Op::Backtrace(0xeee0));
        let i_note = c.ops.iter().position(|o| *o == Op::Note(0xeee0));
        assert!(i_bt < i_note && i_bt.is_some());
    }

    #[test]
    fn nested_entry_leaves_the_outer_stop_to_finish() {
        // An SDEI event lands while the CPU is inside its IPI stop: the inner
        // entry completes at once and writes nothing, so the note the outer
        // writes holds the real interrupted context.
        let b: StopBoard<2> = StopBoard::new();
        b.request(1, RequestKind::CrashStop).unwrap();
        assert!(b.enter(1)); // the outer IPI handler is running
        let mut c = Fake::new(1);
        c.in_dispatch = true;
        assert_eq!(
            on_sdei_event(&b, &mut c, &entry(0xf0), &StopPolicy::LINUX),
            SdeiOutcome::Complete
        );
        assert!(c.ops.is_empty(), "{:?}", c.ops);
        c.in_dispatch = false;
        assert_eq!(
            on_ipi(&b, &mut c, &regs(0xf1), &StopPolicy::LINUX),
            IpiOutcome::Resume
        );
        assert!(c.ops.is_empty());
    }
}
