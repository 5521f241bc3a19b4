//! The Rust core of `sdei-stop.ko`: crash-payload's crash-stop protocol
//! (`shared/DESIGN.md` §6) bound to a stock arm64 Linux kernel that lacks the
//! upstream SDEI stop rung.
//!
//! The C glue (`glue.c`) does what only a kernel build can: it finds the SDEI
//! driver's entry points, registers SDEI event 0 through Linux's own SDEI
//! driver (whose entry code handles KPTI trampolines and the SDEI stacks),
//! installs the panic notifier, and offers a handful of kernel primitives back
//! to this crate (printk, the online mask, `current->pid`). Everything the
//! protocol decides happens here, in crash-payload's code:
//!
//! - **Requester** ([`sdei_stop_on_panic`], run from the first panic notifier,
//!   i.e. after the kernel's own `crash_smp_send_stop()` and before
//!   `__crash_kexec()` with `crash_kexec_post_notifiers`): crash-payload's
//!   [`Ladder`] driven by [`drive`]. The IPI rung is the kernel's, already
//!   sent; the pseudo-NMI rung is skipped (6.1 has no NMI stop); the SDEI rung
//!   probes event 0, sets each remaining CPU's request word on the
//!   [`StopBoard`], signals it with `SDEI_EVENT_SIGNAL` and waits 100 ms at
//!   most on `CNTVCT_EL0` (jiffies do not advance here).
//! - **Target** ([`sdei_stop_on_event`], Linux's SDEI callback on the wedged
//!   CPU): crash-payload's [`on_sdei_event`] with [`StopPolicy::LINUX`]: the
//!   interrupted registers become an `NT_PRSTATUS` note built by
//!   [`crash_note::build`] in that CPU's own crash-notes buffer, the CPU
//!   clears its online bit, masks SDEI and parks inside the handler (the event
//!   is never completed; no `CPU_OFF` inside the dispatch).
//!
//! A CPU has *answered* once it is offline or its crash-notes buffer holds a
//! valid `CORE` note: Linux 6.1's `ipi_cpu_crash_stop()` saves the note and
//! powers the CPU off but leaves its online bit set.
#![no_std]
#![deny(missing_docs)]

use core::convert::Infallible;
use core::fmt::{self, Write};
use core::ptr::null_mut;
use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};
use core::time::Duration;

use crash_payload::crash_note::{self, CrashNote, CRASH_NOTE_BUF_SIZE};
use crash_payload::prstatus::{ElfPrstatus, Regs, ELF_NGREG};
use crash_payload::sdei::{Sdei, SdeiError, SdeiVersion};
use crash_payload::smccc::{Conduit, FunctionId, Hvc, Smc};
use crash_payload::stop::{
    drive, on_sdei_event, probe_sdei, Announcement, Capabilities, CpuSet, EventContext, Instant,
    Ladder, LadderConfig, RequestKind, Requester, Rung, RungStatus, SdeiEntry, SdeiOutcome,
    SdeiUnusable, SignalError, StopBoard, StopCpu, StopPolicy, MAX_CPUS,
};

mod hw;
mod kernel;

use kernel::Level;

/// How long the SDEI rung waits for answers (upstream's value).
const SDEI_WAIT: Duration = Duration::from_millis(100);

/// The ladder this module drives: the kernel already spent its own IPI wait
/// (1 s in `crash_smp_send_stop()`), so the IPI rung only re-reads who
/// answered; then SDEI with its 100 ms.
const LADDER: LadderConfig = LadderConfig {
    ipi_wait: Duration::ZERO,
    nmi_wait: Duration::ZERO,
    sdei_wait: SDEI_WAIT,
};

/// An MPIDR slot not filled yet (the CPU never came online while loaded).
const NO_MPIDR: u64 = u64::MAX;

/// Per-CPU request words (crash-payload's protocol state).
static BOARD: StopBoard<MAX_CPUS> = StopBoard::new();
/// Each CPU's MPIDR affinity (the `SDEI_EVENT_SIGNAL` target), recorded by the
/// CPU itself when it comes online.
static MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(NO_MPIDR) }; MAX_CPUS];
/// Each CPU's crash-notes buffer (kernel virtual address of the per-CPU
/// `crash_notes` area, 424 bytes), or null when unknown.
static NOTES: [AtomicPtr<u8>; MAX_CPUS] = [const { AtomicPtr::new(null_mut()) }; MAX_CPUS];
/// `nr_cpu_ids`.
static NR_CPUS: AtomicU32 = AtomicU32::new(0);
/// The SDEI conduit: 0 none, 1 SMC, 2 HVC.
static CONDUIT: AtomicU8 = AtomicU8::new(0);
/// The panic path runs once.
static PANIC_RAN: AtomicBool = AtomicBool::new(false);

/// SMC or HVC, as the firmware description (DT `method`, ACPI: SMC) says.
#[derive(Clone, Copy, Debug)]
enum KConduit {
    Smc,
    Hvc,
}

impl Conduit for KConduit {
    fn call(&mut self, fid: FunctionId, args: [u64; 7]) -> [u64; 4] {
        match self {
            KConduit::Smc => Smc.call(fid, args),
            KConduit::Hvc => Hvc.call(fid, args),
        }
    }
}

impl KConduit {
    fn name(self) -> &'static str {
        match self {
            KConduit::Smc => "smc",
            KConduit::Hvc => "hvc",
        }
    }
}

fn conduit() -> Option<KConduit> {
    match CONDUIT.load(Ordering::Relaxed) {
        1 => Some(KConduit::Smc),
        2 => Some(KConduit::Hvc),
        _ => None,
    }
}

fn nr_cpus() -> usize {
    NR_CPUS.load(Ordering::Relaxed) as usize
}

/// One console line, formatted on the stack (no allocation), cut at 200 bytes.
struct Line {
    buf: [u8; 200],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn print(level: Level, args: fmt::Arguments<'_>) {
    let mut l = Line { buf: [0; 200], len: 0 };
    let _ = l.write_fmt(args);
    kernel::print(level, &l.buf[..l.len]);
}

macro_rules! kprint {
    ($lvl:expr, $($t:tt)*) => { print($lvl, format_args!($($t)*)) };
}

/// `ticks` of a `freq` Hz counter in nanoseconds, without 128-bit division
/// (no compiler-builtins in a kernel module) and without floating point.
fn ticks_to_ns(ticks: u64, freq: u64) -> u64 {
    if freq == 0 {
        return ticks;
    }
    let secs = ticks / freq;
    let rem = ticks % freq; // < freq, so rem * 1e9 fits for any freq below 2^34 Hz
    secs.saturating_mul(1_000_000_000)
        .saturating_add(rem.saturating_mul(1_000_000_000) / freq)
}

fn millis(d: Duration) -> u64 {
    d.as_secs() * 1000 + u64::from(d.subsec_millis())
}

fn micros(d: Duration) -> u64 {
    d.as_secs() * 1_000_000 + u64::from(d.subsec_micros())
}

/// CPU `cpu`'s crash note if its buffer holds a valid `CORE`/`NT_PRSTATUS`.
fn saved_note(cpu: usize) -> Option<ElfPrstatus> {
    let p = NOTES.get(cpu)?.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    let buf = kernel::read_note(p);
    match crash_note::parse(&buf) {
        Ok(CrashNote::Saved(pr)) => Some(pr),
        _ => None,
    }
}

// ------------------------------------------------------------------ target side

/// The CPU taking SDEI event 0, inside Linux's SDEI callback.
struct TargetCpu {
    id: usize,
    sdei: Sdei<KConduit>,
}

impl StopCpu for TargetCpu {
    type Parked = Infallible;

    fn cpu(&self) -> usize {
        self.id
    }
    fn mask_daif(&mut self) {
        hw::mask_daif();
    }
    fn write_crash_note(&mut self, regs: &Regs) {
        let mut pr = ElfPrstatus { pr_pid: kernel::current_pid(), ..Default::default() };
        pr.set_regs(regs);
        let note = crash_note::build(&pr);
        if let Some(p) = NOTES.get(self.id).map(|n| n.load(Ordering::Acquire)) {
            if !p.is_null() {
                kernel::write_note(p, &note);
            }
        }
    }
    fn backtrace(&mut self, regs: &Regs) {
        let mut pr = ElfPrstatus::default();
        pr.set_regs(regs);
        kernel::show_cpu(self.id, "backtrace", &pr.pr_reg, kernel::current_pid());
    }
    fn clear_online(&mut self) {
        kernel::set_offline(self.id);
    }
    fn sdei_pe_mask(&mut self) -> Result<bool, SdeiError> {
        self.sdei.pe_mask()
    }
    fn park(&mut self) -> Infallible {
        hw::park()
    }
}

impl EventContext for TargetCpu {
    fn event_context(&mut self, n: u64) -> Result<u64, SdeiError> {
        self.sdei.event_context(n)
    }
}

/// Linux's SDEI callback body for event 0 on CPU `cpu`. `regs` is the
/// interrupted context Linux's SDEI entry saved (`struct user_pt_regs`:
/// x0..x30, sp, pc, pstate). Returns 0 (the event is completed and the
/// interrupted context resumes) when this CPU has no stop request; after a
/// stop it never returns.
///
/// # Safety
///
/// `regs` must point to 34 readable `u64`s; call only from the SDEI callback.
#[no_mangle]
pub unsafe extern "C" fn sdei_stop_on_event(cpu: u32, regs: *const u64) -> i32 {
    // SAFETY: the caller passes `&regs->user_regs`, 34 u64s that live for the
    // whole callback (the registered event's saved context).
    let r: &[u64; ELF_NGREG] = unsafe { &*regs.cast::<[u64; ELF_NGREG]>() };
    let mut live = Regs { sp: r[31], pc: r[32], pstate: r[33], ..Default::default() };
    live.x.copy_from_slice(&r[..31]);
    let entry = SdeiEntry { event: 0, pc: r[32], pstate: r[33], live };
    let Some(c) = conduit() else { return 0 };
    let mut me = TargetCpu { id: cpu as usize, sdei: Sdei::new(c) };
    match on_sdei_event(&BOARD, &mut me, &entry, &StopPolicy::LINUX) {
        SdeiOutcome::Complete => 0,
        SdeiOutcome::Parked(never) => match never {},
        // StopPolicy::LINUX parks in the handler: Linux's SDEI entry cannot
        // take a resume address. Should that ever change, park anyway.
        #[allow(unreachable_code)]
        SdeiOutcome::CompleteAndResume(_) => match me.park() {},
    }
}

// ------------------------------------------------------------------ requester side

/// The panicking CPU's view of the machine.
struct Crashing {
    sdei: Sdei<KConduit>,
    freq: u64,
}

impl Requester for Crashing {
    fn now(&mut self) -> Instant {
        Instant(ticks_to_ns(hw::counter(), self.freq))
    }

    fn outstanding(&mut self) -> CpuSet {
        let out = (0..nr_cpus()).filter(|&c| kernel::cpu_online(c) && saved_note(c).is_none()).collect();
        // Pairs with the target's fully ordered online-bit clear: a CPU seen
        // offline here has its note visible to the reads that follow.
        fence(Ordering::Acquire);
        out
    }

    fn announce(&mut self, line: &Announcement) {
        match line {
            Announcement::Sending { rung: Rung::Ipi, kind, cpus } => kprint!(
                Level::Emerg,
                "{kind} IPI to CPUs {cpus} was sent by the kernel (crash_smp_send_stop) before this notifier"
            ),
            other => kprint!(Level::Emerg, "{other}"),
        }
    }

    fn signal(&mut self, rung: Rung, cpu: usize) -> Result<(), SignalError> {
        match rung {
            // Sent by crash_smp_send_stop(); the ladder only re-reads who answered.
            Rung::Ipi => Ok(()),
            // Linux 6.1 has no NMI stop IPI a module could raise.
            Rung::PseudoNmi => Err(SignalError::Unavailable),
            Rung::Sdei => {
                let mpidr = MPIDR.get(cpu).map_or(NO_MPIDR, |m| m.load(Ordering::Relaxed));
                if mpidr == NO_MPIDR {
                    kprint!(Level::Err, "CPU{cpu}: MPIDR unknown, cannot signal SDEI event 0");
                    return Err(SignalError::Unavailable);
                }
                // The request word (set by `drive`) must be visible before the
                // target can take the event.
                hw::dsb_ishst();
                self.sdei.signal(mpidr).map_err(|e| {
                    kprint!(Level::Err, "SDEI_EVENT_SIGNAL to CPU{cpu} (MPIDR {mpidr:#x}) failed: {e}");
                    SignalError::Sdei(e)
                })
            }
        }
    }

    fn probe_sdei(&mut self) -> Result<SdeiVersion, SdeiUnusable> {
        probe_sdei(&mut self.sdei)
    }

    fn relax(&mut self, _until: Instant) {
        for _ in 0..32 {
            core::hint::spin_loop();
        }
    }
}

/// The panic notifier's body, on the panicking CPU `self_cpu` with interrupts
/// off. Returns the number of CPUs that still did not answer.
#[no_mangle]
pub extern "C" fn sdei_stop_on_panic(self_cpu: u32) -> u32 {
    if PANIC_RAN.swap(true, Ordering::Relaxed) {
        return 0;
    }
    let me = self_cpu as usize;
    let Some(c) = conduit() else {
        kprint!(Level::Err, "not set up; nothing to do");
        return 0;
    };
    let online: CpuSet = (0..nr_cpus()).filter(|&c| kernel::cpu_online(c)).collect();
    let mut others = online;
    others.remove(me);
    if others.is_empty() {
        kprint!(Level::Emerg, "panic on CPU{me}: no other CPU online, nothing to stop");
        return 0;
    }
    kprint!(
        Level::Emerg,
        "panic on CPU{me}: crash-stopping CPUs {others} that the kernel's stop IPI did not stop: SDEI event 0 via {}, {} ms at most",
        c.name(),
        millis(SDEI_WAIT)
    );
    let mut req = Crashing { sdei: Sdei::new(c), freq: hw::counter_freq() };
    let caps = Capabilities { pseudo_nmi: false, sdei: true };
    let mut ladder = Ladder::new(LADDER, caps, RequestKind::CrashStop, me, &online);
    let report = drive(&mut ladder, &BOARD, &mut req);

    let ipi = &report.rungs[0];
    let sdei = &report.rungs[2];
    if !ipi.answered.is_empty() {
        kprint!(Level::Emerg, "CPUs {} answered the kernel's IPI", ipi.answered);
    }
    if sdei.status == RungStatus::Sent {
        if let (Some(t0), Some(t1)) = (sdei.started, sdei.ended) {
            kprint!(
                Level::Emerg,
                "SDEI rung: CPUs {} answered, {} us after signalling CPUs {}",
                sdei.answered,
                micros(t1.since(t0)),
                sdei.targets
            );
        }
    }
    for cpu in &report.targets {
        // A CPU no rung saw answer but that holds a note was stopped by the
        // kernel's own crash-stop IPI between the online snapshot and the
        // first rung: the note is the kernel's.
        let how = if sdei.answered.contains(cpu) {
            "saved by SDEI"
        } else if ipi.answered.contains(cpu) {
            "saved by IPI"
        } else {
            "saved by the kernel's stop IPI before this module's rungs"
        };
        match saved_note(cpu) {
            Some(pr) => kernel::show_cpu(cpu, how, &pr.pr_reg, pr.pr_pid),
            None if report.unanswered.contains(cpu) => kprint!(
                Level::Emerg,
                "CPU{cpu} did not answer: still online, no crash note (failed to stop)"
            ),
            None => kprint!(Level::Emerg, "CPU{cpu} went offline without a crash note"),
        }
    }
    kprint!(Level::Emerg, "{report}");
    report.unanswered.len() as u32
}

// ------------------------------------------------------------------ set-up

/// Records the firmware conduit (1 SMC, 2 HVC) and `nr_cpu_ids`; `false`
/// (with a message) when the module cannot serve this kernel.
#[no_mangle]
pub extern "C" fn sdei_stop_setup(conduit: u32, nr_cpu_ids: u32) -> bool {
    if nr_cpu_ids as usize > MAX_CPUS {
        kprint!(Level::Err, "nr_cpu_ids {nr_cpu_ids} exceeds the {MAX_CPUS} CPUs the protocol handles");
        return false;
    }
    let c = match conduit {
        1 | 2 => conduit as u8,
        _ => {
            kprint!(Level::Err, "unknown SDEI conduit {conduit}");
            return false;
        }
    };
    NR_CPUS.store(nr_cpu_ids, Ordering::Relaxed);
    CONDUIT.store(c, Ordering::Relaxed);
    PANIC_RAN.store(false, Ordering::Relaxed);
    BOARD.reset();
    true
}

/// `SDEI_VERSION` through the conduit: `true` (and a line) for SDEI 1.x.
#[no_mangle]
pub extern "C" fn sdei_stop_check_firmware() -> bool {
    let Some(c) = conduit() else { return false };
    match Sdei::new(c).version() {
        Ok(v) if v.major == 1 => {
            kprint!(Level::Info, "SDEI {}.{} (vendor {:#x}) via {}", v.major, v.minor, v.vendor, c.name());
            true
        }
        Ok(v) => {
            kprint!(Level::Err, "SDEI {}.{} is not supported (only 1.x)", v.major, v.minor);
            false
        }
        Err(e) => {
            kprint!(Level::Err, "no SDEI firmware: SDEI_VERSION via {} failed: {e}", c.name());
            false
        }
    }
}

/// After registration: the SDEI rung's own probe (event 0 signalable,
/// registered and enabled on this PE). `false` with the reason printed.
#[no_mangle]
pub extern "C" fn sdei_stop_check_event0() -> bool {
    let Some(c) = conduit() else { return false };
    match probe_sdei(&mut Sdei::new(c)) {
        Ok(_) => true,
        Err(e) => {
            kprint!(Level::Err, "SDEI event 0 is not usable: {e}");
            false
        }
    }
}

/// Records CPU `cpu`'s MPIDR affinity (called on that CPU when it comes online).
#[no_mangle]
pub extern "C" fn sdei_stop_set_mpidr(cpu: u32, mpidr: u64) {
    if let Some(m) = MPIDR.get(cpu as usize) {
        m.store(mpidr, Ordering::Relaxed);
    }
}

/// Records CPU `cpu`'s crash-notes buffer (`buf`, `size` bytes); `false`
/// when the size is not the 424 bytes of a `CORE` note plus terminator.
#[no_mangle]
pub extern "C" fn sdei_stop_set_note(cpu: u32, buf: *mut u8, size: usize) -> bool {
    if size != CRASH_NOTE_BUF_SIZE || buf.is_null() || (buf as usize) % 8 != 0 {
        return false;
    }
    match NOTES.get(cpu as usize) {
        Some(n) => {
            n.store(buf, Ordering::Release);
            true
        }
        None => false,
    }
}

/// Forgets every request (module unload; no CPU can be in the handler then).
#[no_mangle]
pub extern "C" fn sdei_stop_reset() {
    BOARD.reset();
    PANIC_RAN.store(false, Ordering::Relaxed);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut l = Line { buf: [0; 200], len: 0 };
    let _ = write!(l, "Rust panic: {}", info.message());
    kernel::halt(&l.buf[..l.len])
}
