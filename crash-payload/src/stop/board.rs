//! Per-CPU request words: what the requester asks each CPU to do.
//!
//! One word per CPU, not a shared mask: the requester sets the target's word
//! **before** it signals (IPI, pseudo-NMI IPI or `SDEI_EVENT_SIGNAL`), and the
//! handler reads its own word. So one signal — in particular SDEI event 0, the
//! only event `SDEI_EVENT_SIGNAL` can raise — serves stop, crash stop and
//! backtrace alike, and a spurious or stale signal (word zero) is ignored.
//!
//! # Memory ordering
//!
//! - [`StopBoard::request`] is a `fetch_or` with `Release`; the handler's
//!   [`StopBoard::read`] is an `Acquire` load. When the handler sees the bit,
//!   everything the requester wrote before setting it (the crash-notes
//!   buffers' addresses, the kexec image, the panic state) is visible to the
//!   handler. The signal itself is outside the language's memory model: the
//!   code that sends it must also order the word before the signal on the
//!   hardware (arm64: `dsb ishst` before writing `ICC_SGI1R_EL1` or making the
//!   SMC, as Linux's `gic_ipi_send_mask` does), so the target cannot take the
//!   signal and still read a stale zero.
//! - A backtrace is acknowledged by clearing the bit with `Release`
//!   ([`StopBoard::ack_backtrace`]) after printing; the requester's `Acquire`
//!   read ([`StopBoard::backtrace_pending`]) then sees the output's writes.
//! - A stop is acknowledged by clearing the CPU's online bit (the machine's
//!   job, see [`super::StopCpu::clear_online`]), with the same
//!   Release/Acquire pairing, so a requester that sees the CPU offline also
//!   sees its crash note.
//! - The per-CPU *busy* flag only guards against re-entry on the same CPU (an
//!   SDEI event or pseudo-NMI landing inside a running handler), where program
//!   order on that CPU already orders everything: `Relaxed` is enough.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::cpuset::CpuSet;

/// Request bit: stop (park) this CPU.
pub const REQ_STOP: u32 = 1 << 0;
/// Request bit: save this CPU's crash note before stopping (set with [`REQ_STOP`]).
pub const REQ_CRASH: u32 = 1 << 1;
/// Request bit: print a backtrace of the interrupted context, then resume.
pub const REQ_BACKTRACE: u32 = 1 << 2;

/// What a requester asks of the other CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// Stop (`smp_send_stop`): park without saving registers.
    Stop,
    /// Crash stop (`crash_smp_send_stop`): save the crash note, then park.
    CrashStop,
    /// NMI backtrace (`arch_trigger_cpumask_backtrace`): print and resume.
    Backtrace,
}

impl RequestKind {
    /// The bits this request sets in the target's word.
    pub const fn bits(self) -> u32 {
        match self {
            RequestKind::Stop => REQ_STOP,
            RequestKind::CrashStop => REQ_STOP | REQ_CRASH,
            RequestKind::Backtrace => REQ_BACKTRACE,
        }
    }

    /// How a message names it: `stop`, `crash stop`, `backtrace`.
    pub const fn name(self) -> &'static str {
        match self {
            RequestKind::Stop => "stop",
            RequestKind::CrashStop => "crash stop",
            RequestKind::Backtrace => "backtrace",
        }
    }

    /// Whether the target acknowledges by going offline (stop requests), as
    /// opposed to clearing its backtrace bit.
    pub const fn acked_by_going_offline(self) -> bool {
        !matches!(self, RequestKind::Backtrace)
    }
}

impl core::fmt::Display for RequestKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A snapshot of one CPU's request word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Request(pub u32);

impl Request {
    /// A stop (or crash stop) is requested.
    pub const fn stop(self) -> bool {
        self.0 & REQ_STOP != 0
    }
    /// The crash note must be saved before stopping.
    pub const fn crash(self) -> bool {
        self.0 & REQ_CRASH != 0
    }
    /// A backtrace is requested.
    pub const fn backtrace(self) -> bool {
        self.0 & REQ_BACKTRACE != 0
    }
    /// Nothing is requested: the signal was spurious or already served.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The CPU number is not below the board's capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuOutOfRange {
    /// The CPU asked for.
    pub cpu: usize,
    /// The board's capacity.
    pub capacity: usize,
}

impl core::fmt::Display for CpuOutOfRange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "CPU {} is beyond the stop board's {} slots",
            self.cpu, self.capacity
        )
    }
}

/// The request words and re-entry flags of `N` CPUs. A `static` in the
/// kernel module and firmware (`StopBoard::new()` is `const`).
#[derive(Debug)]
pub struct StopBoard<const N: usize> {
    words: [AtomicU32; N],
    busy: [AtomicBool; N],
}

impl<const N: usize> Default for StopBoard<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> StopBoard<N> {
    /// A board with no requests.
    pub const fn new() -> Self {
        Self {
            words: [const { AtomicU32::new(0) }; N],
            busy: [const { AtomicBool::new(false) }; N],
        }
    }

    /// Number of CPU slots.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Requester side: asks `cpu` for `kind`. Call **before** signalling it
    /// (`Release`; see the module documentation).
    pub fn request(&self, cpu: usize, kind: RequestKind) -> Result<(), CpuOutOfRange> {
        let w = self
            .words
            .get(cpu)
            .ok_or(CpuOutOfRange { cpu, capacity: N })?;
        w.fetch_or(kind.bits(), Ordering::Release);
        Ok(())
    }

    /// Handler side: this CPU's request (`Acquire`). Out of range reads as
    /// no request.
    pub fn read(&self, cpu: usize) -> Request {
        Request(self.words.get(cpu).map_or(0, |w| w.load(Ordering::Acquire)))
    }

    /// Handler side: the backtrace is printed (`Release`).
    pub fn ack_backtrace(&self, cpu: usize) {
        if let Some(w) = self.words.get(cpu) {
            w.fetch_and(!REQ_BACKTRACE, Ordering::Release);
        }
    }

    /// Requester side: withdraws a backtrace request a CPU never answered,
    /// so a late signal does not print at a random time. Stop requests are
    /// never withdrawn: a CPU that answers late must still stop.
    pub fn cancel_backtrace(&self, cpu: usize) {
        if let Some(w) = self.words.get(cpu) {
            w.fetch_and(!REQ_BACKTRACE, Ordering::Relaxed);
        }
    }

    /// Requester side: CPUs whose backtrace request is still unanswered
    /// (`Acquire`, pairs with [`StopBoard::ack_backtrace`]).
    pub fn backtrace_pending(&self) -> CpuSet {
        self.words
            .iter()
            .enumerate()
            .filter(|(_, w)| w.load(Ordering::Acquire) & REQ_BACKTRACE != 0)
            .map(|(cpu, _)| cpu)
            .collect()
    }

    /// Clears every word. Only for reuse when no CPU can be in a handler
    /// (tests, module unload); never during a stop.
    pub fn reset(&self) {
        for (w, b) in self.words.iter().zip(self.busy.iter()) {
            w.store(0, Ordering::Relaxed);
            b.store(false, Ordering::Relaxed);
        }
    }

    /// Marks this CPU as inside a stop handler; `false` when it already was
    /// (a nested entry) or is out of range.
    pub(super) fn enter(&self, cpu: usize) -> bool {
        self.busy
            .get(cpu)
            .is_some_and(|b| !b.swap(true, Ordering::Relaxed))
    }

    /// Leaves the handler (only on paths that return to the interrupted code).
    pub(super) fn leave(&self, cpu: usize) {
        if let Some(b) = self.busy.get(cpu) {
            b.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_per_cpu_and_kinds_combine() {
        let b: StopBoard<4> = StopBoard::new();
        assert!(b.read(1).is_empty());
        b.request(1, RequestKind::Backtrace).unwrap();
        b.request(1, RequestKind::CrashStop).unwrap();
        let r = b.read(1);
        assert!(r.backtrace() && r.stop() && r.crash());
        assert!(b.read(2).is_empty(), "no shared mask: CPU 2 sees nothing");
        assert_eq!(
            b.backtrace_pending().iter().collect::<std::vec::Vec<_>>(),
            [1]
        );
        b.ack_backtrace(1);
        let r = b.read(1);
        assert!(
            !r.backtrace() && r.stop(),
            "acking a backtrace keeps the stop"
        );
        assert_eq!(
            b.request(4, RequestKind::Stop),
            Err(CpuOutOfRange {
                cpu: 4,
                capacity: 4
            })
        );
        assert!(b.read(99).is_empty());
    }

    #[test]
    fn reentry_is_detected_per_cpu() {
        let b: StopBoard<2> = StopBoard::new();
        assert!(b.enter(0));
        assert!(!b.enter(0), "nested entry on the same CPU");
        assert!(b.enter(1));
        b.leave(0);
        assert!(b.enter(0));
        assert!(!b.enter(7));
    }

    extern crate std;
}
