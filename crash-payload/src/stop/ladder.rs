//! The requester side: the escalation ladder as a pure, steppable state
//! machine, and [`drive`], the loop that binds it to a machine.
//!
//! Rungs, in order, each bounded by its own configurable wait:
//! 1. the stop IPI (1 s, as Linux's `smp_send_stop`);
//! 2. the pseudo-NMI IPI (10 ms), only when the kernel has pseudo-NMIs;
//! 3. SDEI event 0 (100 ms), only when SDEI is present **and** a probe just
//!    before the rung says it is usable ([`probe_sdei`]).
//!
//! Before each rung the ladder re-reads the set of CPUs that have not
//! answered and targets only those; it announces what it is *about* to do
//! ([`Action::Announce`]) before it asks for the signal ([`Action::Signal`]);
//! a wait ends early once every signalled CPU has answered; and it ends with
//! the CPUs that never answered ([`Report::unanswered`]).
//!
//! [`Ladder::step`] takes the time and the current *outstanding* set and
//! returns one [`Action`]; nothing in it sleeps, reads hardware or allocates,
//! so tests step it by hand and the kernel module drives it from its crash
//! path. *Outstanding* means "has not acknowledged": for a stop, the targets
//! still online; for a backtrace, the targets whose backtrace bit is still
//! set ([`StopBoard::backtrace_pending`]) — those bits are only set by the
//! first signal, so the first rung always goes to every target.

use core::fmt;
use core::time::Duration;

use crate::sdei::{Sdei, SdeiError, SdeiVersion, SDEI_EVENT_0, SDEI_EVENT_INFO_EV_NOT_SIGNALED};
use crate::smccc::Conduit;

use super::board::{RequestKind, StopBoard};
use super::cpuset::CpuSet;

/// A point in time in nanoseconds from an arbitrary origin. On hardware it
/// must come from a free-running counter (`CNTVCT_EL0`), never from jiffies,
/// which stop advancing with interrupts masked on the crash path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

impl Instant {
    /// `self + d`, saturating at the end of time.
    pub fn saturating_add(self, d: Duration) -> Instant {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(ns))
    }
    /// Time from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// One rung of the ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rung {
    /// The ordinary stop IPI (an SGI taken as IRQ).
    Ipi,
    /// The same IPI as a pseudo-NMI (GIC priority masking).
    PseudoNmi,
    /// SDEI event 0, signalled with `SDEI_EVENT_SIGNAL`.
    Sdei,
}

impl Rung {
    /// The rungs in the order they are tried.
    pub const ALL: [Rung; 3] = [Rung::Ipi, Rung::PseudoNmi, Rung::Sdei];

    /// How messages name it.
    pub const fn name(self) -> &'static str {
        match self {
            Rung::Ipi => "IPI",
            Rung::PseudoNmi => "pseudo-NMI",
            Rung::Sdei => "SDEI",
        }
    }
}

impl fmt::Display for Rung {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How long each rung waits for answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LadderConfig {
    /// After the stop IPI.
    pub ipi_wait: Duration,
    /// After the pseudo-NMI IPI.
    pub nmi_wait: Duration,
    /// After SDEI event 0.
    pub sdei_wait: Duration,
}

impl LadderConfig {
    /// Linux's waits (`arch/arm64/kernel/smp.c`) and upstream's SDEI rung:
    /// 1 s, 10 ms, 100 ms.
    pub const LINUX: LadderConfig = LadderConfig {
        ipi_wait: Duration::from_secs(1),
        nmi_wait: Duration::from_millis(10),
        sdei_wait: Duration::from_millis(100),
    };

    /// The wait of `rung`.
    pub const fn wait(&self, rung: Rung) -> Duration {
        match rung {
            Rung::Ipi => self.ipi_wait,
            Rung::PseudoNmi => self.nmi_wait,
            Rung::Sdei => self.sdei_wait,
        }
    }
}

impl Default for LadderConfig {
    fn default() -> Self {
        Self::LINUX
    }
}

/// What the machine offers, known before the ladder starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// Pseudo-NMIs are enabled (`CONFIG_ARM64_PSEUDO_NMI` and
    /// `irqchip.gicv3_pseudo_nmi=1`).
    pub pseudo_nmi: bool,
    /// SDEI is described (DT `/firmware/sdei` or ACPI) and event 0's handler
    /// is registered. Usability is still probed before the rung.
    pub sdei: bool,
}

/// Why SDEI cannot be used for the last rung.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdeiUnusable {
    /// Not described, or no handler registered for event 0.
    Absent,
    /// `SDEI_VERSION` failed.
    Version(SdeiError),
    /// A major version this code does not speak (only 1.x).
    UnsupportedVersion {
        /// Major version reported.
        major: u16,
        /// Minor version reported.
        minor: u16,
    },
    /// `SDEI_EVENT_GET_INFO(0, EV_NOT_SIGNALED)` failed.
    Info(SdeiError),
    /// Event 0 is reported as not signalable.
    NotSignalable,
    /// `SDEI_EVENT_STATUS(0)` failed.
    Status(SdeiError),
    /// Event 0 is not registered on the requesting PE.
    NotRegistered,
    /// Event 0 is registered but not enabled on the requesting PE.
    NotEnabled,
}

impl fmt::Display for SdeiUnusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdeiUnusable::Absent => f.write_str("no SDEI firmware or no event 0 handler"),
            SdeiUnusable::Version(e) => write!(f, "SDEI_VERSION failed: {e}"),
            SdeiUnusable::UnsupportedVersion { major, minor } => {
                write!(f, "SDEI version {major}.{minor} is not supported")
            }
            SdeiUnusable::Info(e) => write!(f, "SDEI_EVENT_GET_INFO(0) failed: {e}"),
            SdeiUnusable::NotSignalable => f.write_str("SDEI event 0 is not signalable"),
            SdeiUnusable::Status(e) => write!(f, "SDEI_EVENT_STATUS(0) failed: {e}"),
            SdeiUnusable::NotRegistered => f.write_str("SDEI event 0 is not registered"),
            SdeiUnusable::NotEnabled => f.write_str("SDEI event 0 is not enabled"),
        }
    }
}

/// Checks that SDEI event 0 can be signalled, from the requesting CPU:
/// `SDEI_VERSION` is 1.x, `SDEI_EVENT_GET_INFO(0, EV_NOT_SIGNALED)` says
/// signalable, and `SDEI_EVENT_STATUS(0)` on this PE says registered and
/// enabled (event 0 is private: its registration on this PE stands for the
/// handler's registration on every CPU, which the caller did together).
pub fn probe_sdei<C: Conduit>(sdei: &mut Sdei<C>) -> Result<SdeiVersion, SdeiUnusable> {
    let v = sdei.version().map_err(SdeiUnusable::Version)?;
    if v.major != 1 {
        return Err(SdeiUnusable::UnsupportedVersion {
            major: v.major,
            minor: v.minor,
        });
    }
    let not_signaled = sdei
        .event_get_info(SDEI_EVENT_0, SDEI_EVENT_INFO_EV_NOT_SIGNALED)
        .map_err(SdeiUnusable::Info)?;
    if not_signaled != 0 {
        return Err(SdeiUnusable::NotSignalable);
    }
    let st = sdei
        .event_status(SDEI_EVENT_0)
        .map_err(SdeiUnusable::Status)?;
    if !st.registered {
        return Err(SdeiUnusable::NotRegistered);
    }
    if !st.enabled {
        return Err(SdeiUnusable::NotEnabled);
    }
    Ok(v)
}

/// Why a rung was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The kernel has no pseudo-NMIs.
    NoPseudoNmi,
    /// SDEI is absent or the probe failed.
    Sdei(SdeiUnusable),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoPseudoNmi => f.write_str("pseudo-NMIs are not enabled"),
            SkipReason::Sdei(e) => e.fmt(f),
        }
    }
}

/// A line for the caller to print, *before* the act it describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// About to send `kind` over `rung` to `cpus`.
    Sending {
        /// The rung.
        rung: Rung,
        /// The request.
        kind: RequestKind,
        /// The CPUs about to be signalled.
        cpus: CpuSet,
    },
    /// Not using `rung` for the CPUs still outstanding.
    Skipping {
        /// The rung.
        rung: Rung,
        /// The request.
        kind: RequestKind,
        /// The CPUs still outstanding.
        cpus: CpuSet,
        /// Why.
        why: SkipReason,
    },
}

impl fmt::Display for Announcement {
    /// `sending SDEI stop to CPUs 1-3`;
    /// `not sending pseudo-NMI crash stop to CPUs 2: pseudo-NMIs are not enabled`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Announcement::Sending { rung, kind, cpus } => {
                write!(f, "sending {rung} {kind} to CPUs {cpus}")
            }
            Announcement::Skipping {
                rung,
                kind,
                cpus,
                why,
            } => {
                write!(f, "not sending {rung} {kind} to CPUs {cpus}: {why}")
            }
        }
    }
}

/// What the caller must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Probe SDEI now ([`probe_sdei`]) and hand the result to
    /// [`Ladder::sdei_probed`]. Repeated until answered.
    ProbeSdei,
    /// Print this line.
    Announce(Announcement),
    /// For each CPU in `targets`: set its request word
    /// ([`StopBoard::request`]), *then* signal it over `rung`. Report the
    /// CPUs whose signal failed with [`Ladder::signal_failed`].
    Signal {
        /// The rung to signal over.
        rung: Rung,
        /// The CPUs to signal.
        targets: CpuSet,
    },
    /// Nothing to do before `until`; poll again (re-reading the outstanding
    /// set) soon, and at the latest at `until`.
    Wait {
        /// The end of the current rung's wait.
        until: Instant,
    },
    /// Finished: [`Ladder::report`].
    Done,
}

/// How a rung went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RungStatus {
    /// Every CPU had answered before this rung.
    NotNeeded,
    /// Skipped.
    Skipped(SkipReason),
    /// Signals were sent.
    Sent,
}

/// One rung's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RungReport {
    /// The rung.
    pub rung: Rung,
    /// What happened.
    pub status: RungStatus,
    /// CPUs signalled (or, when skipped, outstanding at the time).
    pub targets: CpuSet,
    /// CPUs whose signal failed.
    pub signal_failed: CpuSet,
    /// Targets that answered by the end of the rung's wait.
    pub answered: CpuSet,
    /// When the signals were sent.
    pub started: Option<Instant>,
    /// When the wait ended.
    pub ended: Option<Instant>,
}

impl RungReport {
    const fn new(rung: Rung) -> Self {
        RungReport {
            rung,
            status: RungStatus::NotNeeded,
            targets: CpuSet::EMPTY,
            signal_failed: CpuSet::EMPTY,
            answered: CpuSet::EMPTY,
            started: None,
            ended: None,
        }
    }
}

/// The ladder's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// The request.
    pub kind: RequestKind,
    /// The CPUs asked (every target but the requester itself).
    pub targets: CpuSet,
    /// Targets that answered.
    pub answered: CpuSet,
    /// Targets that never answered: for a stop, the CPUs that failed to stop
    /// (still online, no crash note).
    pub unanswered: CpuSet,
    /// Each rung, in order.
    pub rungs: [RungReport; 3],
    /// When the ladder started.
    pub started: Instant,
    /// When it finished.
    pub finished: Instant,
}

impl Report {
    /// Every target answered.
    pub fn all_answered(&self) -> bool {
        self.unanswered.is_empty()
    }
}

impl fmt::Display for Report {
    /// For a stop, Linux's own words, which `vmcore` reads back from the log:
    /// `SMP: failed to stop secondary CPUs 2-3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.unanswered.is_empty(), self.kind) {
            (true, RequestKind::Backtrace) => {
                write!(f, "backtrace from CPUs {}", self.answered)
            }
            (true, _) => write!(f, "SMP: stopped secondary CPUs {}", self.answered),
            (false, RequestKind::Backtrace) => {
                write!(f, "no backtrace from CPUs {}", self.unanswered)
            }
            (false, _) => write!(f, "SMP: failed to stop secondary CPUs {}", self.unanswered),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Start,
    Enter(usize),
    AwaitProbe(usize),
    Announce(usize),
    Signal(usize),
    WaitStart(usize),
    Wait(usize, Instant),
    Done,
}

/// The escalation ladder. See the module documentation.
#[derive(Clone, Debug)]
pub struct Ladder {
    cfg: LadderConfig,
    caps: Capabilities,
    kind: RequestKind,
    targets: CpuSet,
    remaining: CpuSet,
    phase: Phase,
    probe: Option<Result<SdeiVersion, SdeiUnusable>>,
    rungs: [RungReport; 3],
    started: Instant,
    finished: Instant,
}

impl Ladder {
    /// A ladder asking `targets` (minus `self_cpu`, the requester) for `kind`.
    pub fn new(
        cfg: LadderConfig,
        caps: Capabilities,
        kind: RequestKind,
        self_cpu: usize,
        targets: &CpuSet,
    ) -> Ladder {
        let mut t = *targets;
        t.remove(self_cpu);
        Ladder {
            cfg,
            caps,
            kind,
            targets: t,
            remaining: t,
            phase: Phase::Start,
            probe: None,
            rungs: [
                RungReport::new(Rung::Ipi),
                RungReport::new(Rung::PseudoNmi),
                RungReport::new(Rung::Sdei),
            ],
            started: Instant(0),
            finished: Instant(0),
        }
    }

    /// The request this ladder makes.
    pub fn kind(&self) -> RequestKind {
        self.kind
    }

    /// Whether [`Action::Done`] has been returned.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The SDEI probe's answer, after [`Action::ProbeSdei`].
    pub fn sdei_probed(&mut self, result: Result<SdeiVersion, SdeiUnusable>) {
        self.probe = Some(result);
    }

    /// CPUs whose signal failed, after [`Action::Signal`]. The current wait
    /// does not wait for them.
    pub fn signal_failed(&mut self, cpus: &CpuSet) {
        let cur = match self.phase {
            Phase::WaitStart(i) | Phase::Wait(i, _) => i,
            _ => return,
        };
        if let Some(r) = self.rungs.get_mut(cur) {
            r.signal_failed = r.signal_failed.union(&cpus.intersection(&r.targets));
        }
    }

    /// The outcome so far (final after [`Action::Done`]).
    pub fn report(&self) -> Report {
        Report {
            kind: self.kind,
            targets: self.targets,
            answered: self.targets.difference(&self.remaining),
            unanswered: self.remaining,
            rungs: self.rungs,
            started: self.started,
            finished: self.finished,
        }
    }

    fn finish(&mut self, now: Instant) -> Action {
        self.finished = now;
        self.phase = Phase::Done;
        Action::Done
    }

    fn next_rung(&mut self, i: usize) {
        self.phase = Phase::Enter(i + 1);
    }

    /// Advances the ladder. `now` is the current time; `outstanding` the CPUs
    /// that have not acknowledged (see the module documentation), freshly
    /// read. Call again after doing what the returned action says.
    pub fn step(&mut self, now: Instant, outstanding: &CpuSet) -> Action {
        // Each arm either returns an action or moves to a later phase, and
        // phases only move forward, so this loop runs at most a few times.
        loop {
            match self.phase {
                Phase::Done => return Action::Done,
                Phase::Start => {
                    self.started = now;
                    self.phase = Phase::Enter(0);
                }
                Phase::Enter(i) => {
                    let Some(&rung) = Rung::ALL.get(i) else {
                        return self.finish(now);
                    };
                    // Re-read: only CPUs that have not answered are asked. A
                    // backtrace's bits are set by the first signal, so before
                    // it nothing can be read from them.
                    if i > 0 || self.kind.acked_by_going_offline() {
                        self.remaining = self.remaining.intersection(outstanding);
                    }
                    if self.remaining.is_empty() {
                        return self.finish(now);
                    }
                    let skip = match rung {
                        Rung::Ipi => None,
                        Rung::PseudoNmi if !self.caps.pseudo_nmi => Some(SkipReason::NoPseudoNmi),
                        Rung::PseudoNmi => None,
                        Rung::Sdei if !self.caps.sdei => {
                            Some(SkipReason::Sdei(SdeiUnusable::Absent))
                        }
                        Rung::Sdei => {
                            self.probe = None;
                            self.phase = Phase::AwaitProbe(i);
                            return Action::ProbeSdei;
                        }
                    };
                    match skip {
                        Some(why) => return self.skip(i, rung, why),
                        None => self.phase = Phase::Announce(i),
                    }
                }
                Phase::AwaitProbe(i) => match self.probe {
                    None => return Action::ProbeSdei,
                    Some(Ok(_)) => self.phase = Phase::Announce(i),
                    Some(Err(e)) => return self.skip(i, Rung::Sdei, SkipReason::Sdei(e)),
                },
                Phase::Announce(i) => {
                    self.phase = Phase::Signal(i);
                    return Action::Announce(Announcement::Sending {
                        rung: Rung::ALL[i % 3],
                        kind: self.kind,
                        cpus: self.remaining,
                    });
                }
                Phase::Signal(i) => {
                    let rung = Rung::ALL[i % 3];
                    if let Some(r) = self.rungs.get_mut(i) {
                        r.status = RungStatus::Sent;
                        r.targets = self.remaining;
                        r.started = Some(now);
                    }
                    self.phase = Phase::WaitStart(i);
                    return Action::Signal {
                        rung,
                        targets: self.remaining,
                    };
                }
                Phase::WaitStart(i) => {
                    // The wait is measured from when the signals are out.
                    let until = now.saturating_add(self.cfg.wait(Rung::ALL[i % 3]));
                    self.phase = Phase::Wait(i, until);
                }
                Phase::Wait(i, until) => {
                    let still = self.remaining.intersection(outstanding);
                    let failed = self.rungs.get(i).map_or(CpuSet::EMPTY, |r| r.signal_failed);
                    if now < until && !still.difference(&failed).is_empty() {
                        return Action::Wait { until };
                    }
                    if let Some(r) = self.rungs.get_mut(i) {
                        r.answered = r.targets.difference(&still);
                        r.ended = Some(now);
                    }
                    self.remaining = still;
                    self.next_rung(i);
                }
            }
        }
    }

    fn skip(&mut self, i: usize, rung: Rung, why: SkipReason) -> Action {
        if let Some(r) = self.rungs.get_mut(i) {
            r.status = RungStatus::Skipped(why);
            r.targets = self.remaining;
        }
        self.next_rung(i);
        Action::Announce(Announcement::Skipping {
            rung,
            kind: self.kind,
            cpus: self.remaining,
            why,
        })
    }
}

/// Why a signal could not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalError {
    /// `SDEI_EVENT_SIGNAL` failed.
    Sdei(SdeiError),
    /// The machine cannot send this rung's signal to this CPU.
    Unavailable,
}

/// The requesting CPU's view of the machine, for [`drive`].
pub trait Requester {
    /// The current time, from a free-running counter.
    fn now(&mut self) -> Instant;
    /// The CPUs that have not acknowledged, read with `Acquire` (for a stop:
    /// the online mask; for a backtrace: [`StopBoard::backtrace_pending`]).
    fn outstanding(&mut self) -> CpuSet;
    /// Prints a line.
    fn announce(&mut self, line: &Announcement);
    /// Signals `cpu` over `rung`. The request word is already set; the
    /// implementation must order it before the signal on the hardware
    /// (`dsb ishst` on arm64).
    fn signal(&mut self, rung: Rung, cpu: usize) -> Result<(), SignalError>;
    /// Probes SDEI ([`probe_sdei`] over the ABI client).
    fn probe_sdei(&mut self) -> Result<SdeiVersion, SdeiUnusable>;
    /// Pauses briefly (`udelay(1)`, `cpu_relax()`); may return early, must
    /// not sleep past `until`.
    fn relax(&mut self, until: Instant);
}

/// Runs `ladder` to the end against `req`, setting each target's request
/// word on `board` before signalling it. A backtrace request that was never
/// answered is withdrawn at the end. Terminates as long as
/// [`Requester::now`] advances: every wait is bounded.
pub fn drive<R: Requester + ?Sized, const N: usize>(
    ladder: &mut Ladder,
    board: &StopBoard<N>,
    req: &mut R,
) -> Report {
    loop {
        let now = req.now();
        let outstanding = req.outstanding();
        match ladder.step(now, &outstanding) {
            Action::ProbeSdei => {
                let r = req.probe_sdei();
                ladder.sdei_probed(r);
            }
            Action::Announce(line) => req.announce(&line),
            Action::Signal { rung, targets } => {
                let mut failed = CpuSet::new();
                for cpu in &targets {
                    // Word first, then the signal: see `board`'s ordering notes.
                    let sent = board
                        .request(cpu, ladder.kind())
                        .map_err(|_| SignalError::Unavailable)
                        .and_then(|()| req.signal(rung, cpu));
                    if sent.is_err() {
                        failed.insert(cpu);
                    }
                }
                ladder.signal_failed(&failed);
            }
            Action::Wait { until } => req.relax(until),
            Action::Done => {
                let report = ladder.report();
                if report.kind == RequestKind::Backtrace {
                    for cpu in &report.unanswered {
                        board.cancel_backtrace(cpu);
                    }
                }
                return report;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::sdei::{EventStatus, SDEI_EVENT_GET_INFO, SDEI_EVENT_STATUS, SDEI_VERSION};
    use crate::smccc::FakeConduit;
    use std::string::ToString;
    use std::vec::Vec;

    const MS: u64 = 1_000_000;

    fn set(cpus: &[usize]) -> CpuSet {
        cpus.iter().copied().collect()
    }

    fn caps(pseudo_nmi: bool, sdei: bool) -> Capabilities {
        Capabilities { pseudo_nmi, sdei }
    }

    /// Steps `l` to the end. `outstanding(now, signalled)` says who has not
    /// answered; `probe` answers ProbeSdei; Wait advances time by `tick`.
    fn run(
        l: &mut Ladder,
        tick: u64,
        probe: Result<SdeiVersion, SdeiUnusable>,
        mut outstanding: impl FnMut(Instant, &[(Instant, Rung, CpuSet)]) -> CpuSet,
    ) -> Vec<(Instant, Action)> {
        let mut now = Instant(0);
        let mut log = Vec::new();
        let mut sent: Vec<(Instant, Rung, CpuSet)> = Vec::new();
        for _ in 0..100_000 {
            let out = outstanding(now, &sent);
            let a = l.step(now, &out);
            log.push((now, a));
            match a {
                Action::ProbeSdei => l.sdei_probed(probe),
                Action::Announce(_) => {}
                Action::Signal { rung, targets } => sent.push((now, rung, targets)),
                Action::Wait { until } => {
                    assert!(until > now, "a wait always lies in the future");
                    now = Instant((now.0 + tick).min(until.0));
                }
                Action::Done => return log,
            }
        }
        panic!("ladder did not finish: {log:?}");
    }

    /// A CPU answers `delay` after the first signal of a rung it can take.
    fn answers(
        cpu_rungs: &[(usize, &[Rung], u64)],
        all: &CpuSet,
    ) -> impl FnMut(Instant, &[(Instant, Rung, CpuSet)]) -> CpuSet {
        let cpu_rungs: Vec<(usize, Vec<Rung>, u64)> = cpu_rungs
            .iter()
            .map(|(c, r, d)| (*c, r.to_vec(), *d))
            .collect();
        let all = *all;
        move |now, sent| {
            let mut out = all;
            for (cpu, rungs, delay) in &cpu_rungs {
                let hit = sent.iter().any(|(t, r, tg)| {
                    tg.contains(*cpu) && rungs.contains(r) && now.0 >= t.0 + delay
                });
                if hit {
                    out.remove(*cpu);
                }
            }
            out
        }
    }

    fn signals(log: &[(Instant, Action)]) -> Vec<(Instant, Rung, CpuSet)> {
        log.iter()
            .filter_map(|(t, a)| match a {
                Action::Signal { rung, targets } => Some((*t, *rung, *targets)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn everyone_answers_the_ipi_and_the_wait_ends_early() {
        let all = set(&[0, 1, 2, 3]);
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(true, true),
            RequestKind::CrashStop,
            0,
            &all,
        );
        let ipi: &[Rung] = &[Rung::Ipi];
        let log = run(
            &mut l,
            MS,
            Ok(SdeiVersion::V1_0),
            answers(&[(1, ipi, MS), (2, ipi, 2 * MS), (3, ipi, 3 * MS)], &all),
        );
        let r = l.report();
        assert!(r.all_answered());
        assert_eq!(r.targets, set(&[1, 2, 3]), "the requester is not a target");
        assert_eq!(r.rungs[0].answered, set(&[1, 2, 3]));
        assert_eq!(r.rungs[1].status, RungStatus::NotNeeded);
        assert_eq!(r.rungs[2].status, RungStatus::NotNeeded);
        assert_eq!(r.finished, Instant(3 * MS), "no waiting once all answered");
        assert!(
            !log.iter().any(|(_, a)| *a == Action::ProbeSdei),
            "SDEI not probed when not needed"
        );
        assert_eq!(r.to_string(), "SMP: stopped secondary CPUs 1-3");
    }

    #[test]
    fn announces_before_every_signal_and_escalates_to_sdei() {
        let all = set(&[0, 1, 2, 3]);
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(true, true),
            RequestKind::Stop,
            0,
            &all,
        );
        // CPU 1 takes the IPI, CPU 2 only the NMI, CPU 3 only SDEI.
        let log = run(
            &mut l,
            MS,
            Ok(SdeiVersion::V1_0),
            answers(
                &[
                    (1, &[Rung::Ipi], 0),
                    (2, &[Rung::PseudoNmi], MS),
                    (3, &[Rung::Sdei], 2 * MS),
                ],
                &all,
            ),
        );
        for (i, (_, a)) in log.iter().enumerate() {
            if let Action::Signal { rung, targets } = a {
                let prev = log[..i]
                    .iter()
                    .rev()
                    .find(|(_, a)| !matches!(a, Action::Wait { .. }));
                assert_eq!(
                    prev.map(|p| p.1),
                    Some(Action::Announce(Announcement::Sending {
                        rung: *rung,
                        kind: RequestKind::Stop,
                        cpus: *targets
                    })),
                    "signal {i} not announced right before"
                );
            }
        }
        let s = signals(&log);
        assert_eq!(
            s.iter().map(|x| (x.1, x.2)).collect::<Vec<_>>(),
            [
                (Rung::Ipi, set(&[1, 2, 3])),
                (Rung::PseudoNmi, set(&[2, 3])),
                (Rung::Sdei, set(&[3])),
            ]
        );
        // The probe comes before the SDEI announcement.
        let probe = log
            .iter()
            .position(|(_, a)| *a == Action::ProbeSdei)
            .unwrap();
        let ann = log
            .iter()
            .position(|(_, a)| {
                matches!(
                    a,
                    Action::Announce(Announcement::Sending {
                        rung: Rung::Sdei,
                        ..
                    })
                )
            })
            .unwrap();
        assert!(probe < ann);
        let line = match log[ann].1 {
            Action::Announce(a) => a.to_string(),
            _ => unreachable!(),
        };
        assert_eq!(line, "sending SDEI stop to CPUs 3");
        let r = l.report();
        assert!(r.all_answered());
        assert_eq!(
            r.rungs.map(|x| x.answered),
            [set(&[1]), set(&[2]), set(&[3])]
        );
        // Timing: IPI waited its full second, the NMI its 10 ms.
        assert_eq!(s[1].0, Instant(1000 * MS));
        assert_eq!(s[2].0, Instant(1010 * MS));
        assert_eq!(r.finished, Instant(1012 * MS));
    }

    #[test]
    fn unavailable_rungs_are_skipped_with_a_reason_and_no_probe() {
        let all = set(&[0, 1, 2]);
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(false, false),
            RequestKind::CrashStop,
            0,
            &all,
        );
        let log = run(
            &mut l,
            50 * MS,
            Ok(SdeiVersion::V1_0),
            answers(&[(1, &[Rung::Ipi], 0)], &all),
        );
        assert!(!log.iter().any(|(_, a)| *a == Action::ProbeSdei));
        let lines: Vec<std::string::String> = log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Announce(x) => Some(x.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            lines,
            [
                "sending IPI crash stop to CPUs 1-2",
                "not sending pseudo-NMI crash stop to CPUs 2: pseudo-NMIs are not enabled",
                "not sending SDEI crash stop to CPUs 2: no SDEI firmware or no event 0 handler",
            ]
        );
        let r = l.report();
        assert_eq!(r.unanswered, set(&[2]));
        assert_eq!(
            r.rungs[1].status,
            RungStatus::Skipped(SkipReason::NoPseudoNmi)
        );
        assert_eq!(r.finished, Instant(1000 * MS), "only the IPI rung waited");
        assert_eq!(r.to_string(), "SMP: failed to stop secondary CPUs 2");
    }

    #[test]
    fn a_failed_probe_skips_sdei_before_announcing_it() {
        let all = set(&[0, 1]);
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(false, true),
            RequestKind::CrashStop,
            0,
            &all,
        );
        let log = run(&mut l, 100 * MS, Err(SdeiUnusable::NotEnabled), |_, _| {
            set(&[0, 1])
        });
        assert!(!log.iter().any(|(_, a)| matches!(
            a,
            Action::Signal {
                rung: Rung::Sdei,
                ..
            }
        )));
        assert!(log.iter().any(|(_, a)| *a
            == Action::Announce(Announcement::Skipping {
                rung: Rung::Sdei,
                kind: RequestKind::CrashStop,
                cpus: set(&[1]),
                why: SkipReason::Sdei(SdeiUnusable::NotEnabled)
            })));
        assert_eq!(l.report().unanswered, set(&[1]));
    }

    #[test]
    fn the_probe_is_asked_until_answered() {
        let all = set(&[0, 1]);
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(false, true),
            RequestKind::Stop,
            0,
            &all,
        );
        let out = set(&[0, 1]);
        let mut now = Instant(0);
        loop {
            match l.step(now, &out) {
                Action::Wait { until } => now = until,
                Action::ProbeSdei => break,
                _ => {}
            }
        }
        assert_eq!(l.step(now, &out), Action::ProbeSdei);
        assert_eq!(l.step(now, &out), Action::ProbeSdei);
        l.sdei_probed(Ok(SdeiVersion::V1_0));
        assert!(matches!(
            l.step(now, &out),
            Action::Announce(Announcement::Sending {
                rung: Rung::Sdei,
                ..
            })
        ));
    }

    #[test]
    fn every_wait_is_bounded_by_its_configuration() {
        let cfg = LadderConfig {
            ipi_wait: Duration::from_millis(7),
            nmi_wait: Duration::from_millis(3),
            sdei_wait: Duration::from_millis(5),
        };
        let all = set(&[0, 1, 2]);
        let mut l = Ladder::new(cfg, caps(true, true), RequestKind::CrashStop, 0, &all);
        // Nobody ever answers; time moves in coarse 2 ms polls.
        let log = run(&mut l, 2 * MS, Ok(SdeiVersion::V1_0), |_, _| {
            set(&[0, 1, 2])
        });
        let r = l.report();
        for (rr, w) in r.rungs.iter().zip([7, 3, 5]) {
            let d = rr.ended.unwrap().since(rr.started.unwrap());
            assert_eq!(d, Duration::from_millis(w), "{:?}", rr.rung);
        }
        assert_eq!(r.finished, Instant(15 * MS));
        assert_eq!(r.unanswered, set(&[1, 2]));
        let waits: Vec<Instant> = log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Wait { until } => Some(*until),
                _ => None,
            })
            .collect();
        assert!(
            waits
                .iter()
                .all(|u| [7 * MS, 10 * MS, 15 * MS].contains(&u.0)),
            "{waits:?}"
        );
    }

    #[test]
    fn the_outstanding_set_is_reread_after_each_rung() {
        let all = set(&[0, 1, 2, 3]);
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(true, false),
            RequestKind::Stop,
            0,
            &all,
        );
        // CPU 2 answers the IPI only at the very end of its wait: the read
        // that ends the wait sees it, so the NMI does not go to it.
        let log = run(
            &mut l,
            MS,
            Ok(SdeiVersion::V1_0),
            answers(
                &[
                    (1, &[Rung::Ipi], 0),
                    (2, &[Rung::Ipi], 1000 * MS),
                    (3, &[Rung::PseudoNmi], 0),
                ],
                &all,
            ),
        );
        let s = signals(&log);
        assert_eq!(
            s[1],
            (Instant(1000 * MS), Rung::PseudoNmi, set(&[3])),
            "CPU 2 is not asked again"
        );
        let r = l.report();
        assert!(r.all_answered());
        assert_eq!(r.rungs[0].answered, set(&[1, 2]));
        assert_eq!(r.rungs[1].answered, set(&[3]));
    }

    #[test]
    fn failed_signals_do_not_hold_the_wait() {
        let all = set(&[0, 1, 2]);
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(false, true),
            RequestKind::CrashStop,
            0,
            &all,
        );
        let mut now = Instant(0);
        let mut out = set(&[0, 1, 2]);
        loop {
            match l.step(now, &out) {
                Action::Signal {
                    rung: Rung::Sdei,
                    targets,
                } => {
                    assert_eq!(targets, set(&[1, 2]));
                    l.signal_failed(&set(&[2, 5]));
                    out.remove(1);
                    now = Instant(now.0 + MS);
                }
                Action::Wait { until } => now = until,
                Action::ProbeSdei => l.sdei_probed(Ok(SdeiVersion::V1_0)),
                Action::Done => break,
                _ => {}
            }
        }
        let r = l.report();
        assert_eq!(
            r.rungs[2].signal_failed,
            set(&[2]),
            "only targets are recorded"
        );
        assert_eq!(r.unanswered, set(&[2]));
        assert_eq!(
            r.finished,
            Instant(1001 * MS),
            "the SDEI wait ended as soon as CPU 1 answered"
        );
    }

    #[test]
    fn a_backtrace_asks_everyone_first_even_though_no_bit_is_set_yet() {
        let all = set(&[0, 1, 2]);
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(false, false),
            RequestKind::Backtrace,
            0,
            &all,
        );
        let a = l.step(Instant(0), &CpuSet::new());
        assert_eq!(
            a,
            Action::Announce(Announcement::Sending {
                rung: Rung::Ipi,
                kind: RequestKind::Backtrace,
                cpus: set(&[1, 2])
            })
        );
    }

    #[test]
    fn nothing_to_do_is_done_at_once() {
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(true, true),
            RequestKind::Stop,
            0,
            &set(&[0]),
        );
        assert_eq!(l.step(Instant(5), &set(&[0])), Action::Done);
        assert!(l.is_done());
        assert_eq!(l.step(Instant(6), &set(&[0])), Action::Done);
        assert!(l.report().all_answered());
    }

    struct FakeReq<'a> {
        board: &'a StopBoard<4>,
        kind: RequestKind,
        now: u64,
        online: CpuSet,
        takes_ipi: CpuSet,
        lines: Vec<std::string::String>,
    }
    impl Requester for FakeReq<'_> {
        fn now(&mut self) -> Instant {
            Instant(self.now)
        }
        fn outstanding(&mut self) -> CpuSet {
            match self.kind {
                RequestKind::Backtrace => self.board.backtrace_pending(),
                _ => self.online,
            }
        }
        fn announce(&mut self, line: &Announcement) {
            self.lines.push(line.to_string());
        }
        fn signal(&mut self, _: Rung, cpu: usize) -> Result<(), SignalError> {
            let w = self.board.read(cpu);
            assert!(!w.is_empty(), "signalled CPU {cpu} before setting its word");
            if self.takes_ipi.contains(cpu) {
                if w.backtrace() {
                    self.board.ack_backtrace(cpu);
                } else {
                    self.online.remove(cpu);
                }
            }
            Ok(())
        }
        fn probe_sdei(&mut self) -> Result<SdeiVersion, SdeiUnusable> {
            Err(SdeiUnusable::Absent)
        }
        fn relax(&mut self, until: Instant) {
            self.now = until.0.min(self.now + MS);
        }
    }

    #[test]
    fn drive_sets_words_before_signalling_and_withdraws_unanswered_backtraces() {
        let board: StopBoard<4> = StopBoard::new();
        let mut req = FakeReq {
            board: &board,
            kind: RequestKind::Backtrace,
            now: 0,
            online: set(&[0, 1, 2]),
            takes_ipi: set(&[1]),
            lines: Vec::new(),
        };
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(false, false),
            RequestKind::Backtrace,
            0,
            &set(&[0, 1, 2]),
        );
        let r = drive(&mut l, &board, &mut req);
        assert_eq!(r.answered, set(&[1]));
        assert_eq!(r.unanswered, set(&[2]));
        assert!(
            board.read(2).is_empty(),
            "stale backtrace request withdrawn"
        );
        assert_eq!(r.to_string(), "no backtrace from CPUs 2");

        let board: StopBoard<4> = StopBoard::new();
        let mut req = FakeReq {
            board: &board,
            kind: RequestKind::CrashStop,
            now: 0,
            online: set(&[0, 1, 2]),
            takes_ipi: set(&[1]),
            lines: Vec::new(),
        };
        let mut l = Ladder::new(
            LadderConfig::LINUX,
            caps(false, false),
            RequestKind::CrashStop,
            0,
            &set(&[0, 1, 2]),
        );
        let r = drive(&mut l, &board, &mut req);
        assert_eq!(r.unanswered, set(&[2]));
        assert!(board.read(2).crash(), "a stop request is never withdrawn");
        assert_eq!(req.lines[0], "sending IPI crash stop to CPUs 1-2");
    }

    #[test]
    fn probe_checks_version_signalability_and_registration() {
        let answer = |ver: u64, info: u64, status: EventStatus| {
            move |fid: crate::smccc::FunctionId, _a: [u64; 7]| match fid {
                SDEI_VERSION => [ver, 0, 0, 0],
                SDEI_EVENT_GET_INFO => [info, 0, 0, 0],
                SDEI_EVENT_STATUS => [status.to_raw(), 0, 0, 0],
                _ => [SdeiError::NotSupported.to_x0(), 0, 0, 0],
            }
        };
        let ok = EventStatus {
            registered: true,
            enabled: true,
            running: false,
        };
        let v1 = SdeiVersion::V1_0.encode();
        let mut s = Sdei::new(FakeConduit::new(answer(v1, 0, ok)));
        assert_eq!(probe_sdei(&mut s), Ok(SdeiVersion::V1_0));
        let mut s = Sdei::new(FakeConduit::new(answer(
            SdeiError::NotSupported.to_x0(),
            0,
            ok,
        )));
        assert_eq!(
            probe_sdei(&mut s),
            Err(SdeiUnusable::Version(SdeiError::NotSupported))
        );
        let v2 = SdeiVersion {
            major: 2,
            minor: 0,
            vendor: 0,
        }
        .encode();
        let mut s = Sdei::new(FakeConduit::new(answer(v2, 0, ok)));
        assert_eq!(
            probe_sdei(&mut s),
            Err(SdeiUnusable::UnsupportedVersion { major: 2, minor: 0 })
        );
        let mut s = Sdei::new(FakeConduit::new(answer(v1, 1, ok)));
        assert_eq!(probe_sdei(&mut s), Err(SdeiUnusable::NotSignalable));
        let mut s = Sdei::new(FakeConduit::new(answer(
            v1,
            0,
            EventStatus {
                enabled: false,
                ..ok
            },
        )));
        assert_eq!(probe_sdei(&mut s), Err(SdeiUnusable::NotEnabled));
        let mut s = Sdei::new(FakeConduit::new(answer(v1, 0, EventStatus::default())));
        assert_eq!(probe_sdei(&mut s), Err(SdeiUnusable::NotRegistered));
    }
}
