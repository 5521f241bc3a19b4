//! The crash-stop protocol (`shared/DESIGN.md` §6): how the crashing CPU
//! stops the others — including one spinning with every interrupt masked —
//! and makes each save its registers as its crash note.
//!
//! - [`board`]: per-CPU request words (stop / crash stop / backtrace), set
//!   before signalling, so one SDEI event 0 serves every request without a
//!   global mask; the memory-ordering contract lives there.
//! - [`routine`]: the target side, one stop routine for every rung, written
//!   against the [`StopCpu`] machine trait; the rule "never power off inside
//!   an SDEI dispatch" is in its types.
//! - [`ladder`]: the requester side, the escalation ladder (IPI → pseudo-NMI
//!   → SDEI) as a pure state machine, and [`drive`] which runs it against a
//!   [`Requester`].
//! - [`cpuset`]: the fixed-size CPU set both sides use.
//!
//! No allocation, no `unsafe`: the same code runs in the kernel module, in
//! firmware and in the host simulation (`crash-payload/tests/stop_sim.rs`).
#![forbid(unsafe_code)]

pub mod board;
pub mod cpuset;
pub mod ladder;
pub mod routine;

pub use board::{
    CpuOutOfRange, Request, RequestKind, StopBoard, REQ_BACKTRACE, REQ_CRASH, REQ_STOP,
};
pub use cpuset::{CpuSet, MAX_CPUS};
pub use ladder::{
    drive, probe_sdei, Action, Announcement, Capabilities, Instant, Ladder, LadderConfig, Report,
    Requester, Rung, RungReport, RungStatus, SdeiUnusable, SignalError, SkipReason,
};
pub use routine::{
    on_ipi, on_sdei_event, resumed_park, EventContext, IpiOutcome, ParkRoutine, PowerOff,
    SdeiEntry, SdeiExit, SdeiOutcome, StopCpu, StopPolicy,
};
