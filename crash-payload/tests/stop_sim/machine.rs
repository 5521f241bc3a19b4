//! A simulated arm64 machine for the crash-stop protocol: CPUs as threads,
//! a GIC that delivers IPIs and pseudo-NMIs according to each CPU's masks,
//! and an EL3 firmware model with SDEI's rules for event 0, reached through
//! the real SMCCC [`Conduit`] so the protocol uses the real ABI client.
//!
//! Firmware rules modelled (SDEI 1.0 / DEN 0054A, as TF-A and `sdei-fw`):
//! - a signal to a masked PE is dropped ([`MaskedSignal::Drop`], TF-A) or
//!   kept pending until unmasked ([`MaskedSignal::Pend`]);
//! - a signal to a PE whose event 0 handler is running stays pending and is
//!   dispatched when the handler completes: one dispatch per PE, no re-entry;
//! - `SDEI_EVENT_CONTEXT`, `SDEI_EVENT_COMPLETE[_AND_RESUME]` outside a
//!   handler answer `DENIED` and are counted as protocol violations;
//! - dispatch ignores PSTATE.DAIF (the SGI is Group 0, taken at EL3);
//! - the dispatch entry clobbers `x0..x17` (`x0..x3` are the arguments,
//!   `x4..x17` are poisoned here), so only `SDEI_EVENT_CONTEXT` gives them;
//! - PSCI `CPU_OFF` inside a dispatch is counted as a violation.
//!
//! Time is either virtual (deterministic: the requester's `relax` lets every
//! CPU thread finish what it can do, then moves the clock to the next event)
//! or real (races allowed, only invariants checked).

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crash_payload::crash_note::{self, CRASH_NOTE_BUF_SIZE};
use crash_payload::prstatus::{ElfPrstatus, Regs};
use crash_payload::psci::PSCI_CPU_OFF;
use crash_payload::sdei::{
    EventStatus, Sdei, SdeiError, SdeiVersion, SDEI_CONTEXT_REGS, SDEI_EVENT_COMPLETE,
    SDEI_EVENT_COMPLETE_AND_RESUME, SDEI_EVENT_CONTEXT, SDEI_EVENT_GET_INFO, SDEI_EVENT_SIGNAL,
    SDEI_EVENT_STATUS, SDEI_EV_HANDLED, SDEI_PE_MASK, SDEI_PE_UNMASK, SDEI_VERSION,
};
use crash_payload::smccc::{Conduit, FunctionId};
use crash_payload::stop::{
    on_ipi, on_sdei_event, probe_sdei, resumed_park, Announcement, CpuSet, EventContext, Instant,
    IpiOutcome, ParkRoutine, PowerOff, RequestKind, Requester, Rung, SdeiEntry, SdeiOutcome,
    SdeiUnusable, SignalError, StopBoard, StopCpu, StopPolicy,
};

/// Board capacity of the simulation.
pub const SIM_CPUS: usize = 8;

/// What the code a CPU was running when the crash hit has masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mask {
    /// Interrupts enabled.
    None,
    /// `local_irq_disable()`: IRQs masked, pseudo-NMIs still taken when the
    /// kernel has them (PMR masking), none otherwise (PSTATE.I).
    Irqs,
    /// DAIF fully masked: only SDEI gets in.
    Daif,
}

/// One CPU's state at the crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpuState {
    /// Offline before the crash: not a target.
    Offline,
    /// Online, spinning with `mask`; `pe_masked`: SDEI masked on this PE.
    Spinning {
        /// What is masked.
        mask: Mask,
        /// SDEI masked on this PE (`SDEI_PE_MASK`).
        pe_masked: bool,
    },
    /// Already inside an SDEI event 0 handler that never completes.
    InHandlerWedged,
    /// Inside an SDEI event 0 handler that completes at `ms` (virtual or
    /// real milliseconds from the start), then spins with DAIF masked.
    InHandlerUntil {
        /// When the handler completes.
        ms: u64,
    },
}

impl CpuState {
    /// Every state the exhaustive test enumerates.
    pub const ALL: [CpuState; 9] = [
        CpuState::Offline,
        CpuState::Spinning {
            mask: Mask::None,
            pe_masked: false,
        },
        CpuState::Spinning {
            mask: Mask::Irqs,
            pe_masked: false,
        },
        CpuState::Spinning {
            mask: Mask::Daif,
            pe_masked: false,
        },
        CpuState::Spinning {
            mask: Mask::None,
            pe_masked: true,
        },
        CpuState::Spinning {
            mask: Mask::Irqs,
            pe_masked: true,
        },
        CpuState::Spinning {
            mask: Mask::Daif,
            pe_masked: true,
        },
        CpuState::InHandlerWedged,
        CpuState::InHandlerUntil { ms: 1040 },
    ];

    /// Online at the crash.
    pub fn online(self) -> bool {
        self != CpuState::Offline
    }
}

/// What SDEI the machine has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdeiMode {
    /// Not described, no firmware support.
    Absent,
    /// Described, but the firmware answers NOT_SUPPORTED (probe fails).
    Broken,
    /// Works.
    Usable,
}

/// What a signal to a masked PE does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaskedSignal {
    /// Dropped (TF-A, `sdei-fw`).
    Drop,
    /// Kept pending until the PE is unmasked.
    Pend,
}

/// The machine's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// State of each CPU; CPU 0 is the requester and must be online.
    pub states: Vec<CpuState>,
    /// Pseudo-NMIs enabled.
    pub pseudo_nmi: bool,
    /// SDEI.
    pub sdei: SdeiMode,
    /// Stop routine policy.
    pub policy: StopPolicy,
    /// Masked-PE behaviour.
    pub masked: MaskedSignal,
    /// Real time instead of virtual time.
    pub real_time: bool,
}

/// Address of each CPU's spin loop.
pub fn loop_pc(cpu: usize) -> u64 {
    0xffff_8000_0810_0000 + 0x1000 * cpu as u64 + 0x40
}

/// The registers of the code `cpu` was running when the crash hit.
pub fn program_regs(cpu: usize, mask: Mask, pseudo_nmi: bool) -> Regs {
    let mut r = Regs::default();
    for (i, x) in r.x.iter_mut().enumerate() {
        *x = ((cpu as u64) << 32) | ((i as u64) << 8) | 0x11;
    }
    r.sp = 0xffff_8000_0a00_0000 + 0x4000 * cpu as u64 + 0x3e40;
    r.pc = loop_pc(cpu);
    // EL1h with NZCV set; D/A/I/F as the code masked them.
    r.pstate = 0x6000_0005
        | match mask {
            Mask::None => 0,
            Mask::Irqs if pseudo_nmi => 0, // PMR masking leaves PSTATE.I clear
            Mask::Irqs => 0x80,
            Mask::Daif => 0x3c0,
        };
    r
}

/// The pid each CPU's interrupted task has (`pr_pid` in its note).
pub fn pid(cpu: usize) -> i32 {
    1000 + cpu as i32
}

/// MPIDR of a CPU (Aff0 = cpu).
pub fn mpidr(cpu: usize) -> u64 {
    cpu as u64
}

/// Something that happened, in global order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// The requester printed a line.
    Announce(String),
    /// The requester signalled `cpu` over `rung`.
    Signal(Rung, usize),
    /// A CPU's stop-routine operation.
    Op(usize, Op),
    /// A CPU went back to the code it was running when interrupted.
    Resumed(usize),
    /// A protocol violation seen by the model.
    Violation(String),
}

/// A machine operation the protocol made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Entered the IPI/NMI handler.
    EnterIpi,
    /// Entered the SDEI handler.
    EnterSdei,
    /// `mask_daif`.
    MaskDaif,
    /// Wrote the crash note (pc).
    Note(u64),
    /// Printed a backtrace (pc).
    Backtrace(u64),
    /// Cleared the online bit.
    ClearOnline,
    /// `SDEI_PE_MASK`.
    PeMask,
    /// Parked inside an SDEI dispatch.
    ParkInDispatch,
    /// Parked in a wfi loop outside any dispatch.
    Park,
    /// `CPU_OFF`.
    CpuOff,
    /// `SDEI_EVENT_COMPLETE`.
    Complete,
    /// `SDEI_EVENT_COMPLETE_AND_RESUME`.
    CompleteAndResume(ParkRoutine),
    /// A foreign (pre-existing) handler completed.
    ForeignComplete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    /// Running its spin loop.
    Spinning(Mask),
    /// Inside a handler of event 0 that was running before the crash.
    Foreign { until_ms: Option<u64> },
    /// Running one of our handlers (busy).
    Handling,
    /// Stopped (parked or off): the thread has ended.
    Stopped,
    /// Offline from the start.
    Off,
}

#[derive(Clone, Copy, Debug)]
struct Pe {
    has_sdei: bool,
    registered: bool,
    enabled: bool,
    masked: bool,
    running: bool,
    pending: bool,
    /// Signal accepted, to be taken at the next instruction boundary.
    ready: bool,
    /// x0..x17 of the interrupted context while running.
    saved: [u64; 18],
    powered: bool,
}

#[derive(Debug)]
struct CpuSim {
    ctx: Ctx,
    ipi: bool,
    nmi: bool,
    busy: bool,
    regs: Regs,
}

struct State {
    cpus: Vec<CpuSim>,
    pes: Vec<Pe>,
    events: Vec<Ev>,
    shutdown: bool,
    /// Bumped whenever a CPU thread does something.
    generation: u64,
}

/// The shared machine.
pub struct World {
    cfg: Config,
    st: Mutex<State>,
    cv: Condvar,
    /// The online mask: cleared with Release by a stopping CPU.
    online: Vec<AtomicBool>,
    /// Each CPU's 424-byte crash-notes buffer, written byte by byte (Relaxed)
    /// before the online bit is cleared (Release).
    notes: Vec<Vec<AtomicU8>>,
    /// The request words.
    pub board: StopBoard<SIM_CPUS>,
    virtual_ns: AtomicU64,
    start: std::time::Instant,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").field("cfg", &self.cfg).finish()
    }
}

/// The SMCCC conduit of one PE into the firmware model.
#[derive(Clone)]
pub struct SimConduit {
    world: Arc<World>,
    pe: usize,
}

impl Conduit for SimConduit {
    fn call(&mut self, fid: FunctionId, args: [u64; 7]) -> [u64; 4] {
        let mut g = self.world.lock();
        let r = self.world.smc(&mut g, self.pe, fid, args);
        drop(g);
        self.world.cv.notify_all();
        [r, 0, 0, 0]
    }
}

fn err(e: SdeiError) -> u64 {
    e.to_x0()
}

impl World {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A CPU thread that panicked poisons the lock; the test fails anyway,
        // keep going so the panic message is the one reported.
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Milliseconds since the start, on this machine's clock.
    pub fn now(&self) -> Instant {
        if self.cfg.real_time {
            Instant(self.start.elapsed().as_nanos() as u64)
        } else {
            Instant(self.virtual_ns.load(Ordering::SeqCst))
        }
    }

    fn now_ms(&self) -> u64 {
        self.now().0 / 1_000_000
    }

    fn violation(g: &mut State, s: String) {
        g.events.push(Ev::Violation(s));
    }

    /// The firmware: one SMC from PE `pe`.
    fn smc(&self, g: &mut State, pe: usize, fid: FunctionId, a: [u64; 7]) -> u64 {
        if fid == PSCI_CPU_OFF {
            if g.pes[pe].running {
                Self::violation(g, format!("CPU {pe}: CPU_OFF inside an SDEI dispatch"));
                return err(SdeiError::Denied);
            }
            g.pes[pe].powered = false;
            return 0;
        }
        if !g.pes[pe].has_sdei {
            return err(SdeiError::NotSupported);
        }
        match fid {
            SDEI_VERSION => SdeiVersion::V1_0.encode(),
            SDEI_EVENT_GET_INFO => match (a[0], a[1]) {
                (0, 1) => 0, // EV_NOT_SIGNALED: signalable
                _ => err(SdeiError::InvalidParameters),
            },
            SDEI_EVENT_STATUS => {
                let p = g.pes[pe];
                EventStatus {
                    registered: p.registered,
                    enabled: p.enabled,
                    running: p.running,
                }
                .to_raw()
            }
            SDEI_PE_MASK => {
                let was = g.pes[pe].masked;
                g.pes[pe].masked = true;
                u64::from(!was)
            }
            SDEI_PE_UNMASK => {
                g.pes[pe].masked = false;
                self.resignal(g, pe);
                0
            }
            SDEI_EVENT_CONTEXT => {
                let p = g.pes[pe];
                if !p.running {
                    Self::violation(g, format!("CPU {pe}: EVENT_CONTEXT outside a handler"));
                    return err(SdeiError::Denied);
                }
                match p.saved.get(a[0] as usize) {
                    Some(v) if a[0] < SDEI_CONTEXT_REGS => *v,
                    _ => err(SdeiError::InvalidParameters),
                }
            }
            SDEI_EVENT_COMPLETE | SDEI_EVENT_COMPLETE_AND_RESUME => {
                if !g.pes[pe].running {
                    Self::violation(g, format!("CPU {pe}: COMPLETE outside a handler"));
                    return err(SdeiError::Denied);
                }
                g.pes[pe].running = false;
                self.resignal(g, pe);
                0
            }
            SDEI_EVENT_SIGNAL => {
                let target = a[1] as usize;
                if a[0] != 0 || target >= g.pes.len() {
                    return err(SdeiError::InvalidParameters);
                }
                if !g.pes[target].powered {
                    return err(SdeiError::Denied);
                }
                self.deliver(g, target);
                0
            }
            _ => err(SdeiError::NotSupported),
        }
    }

    /// The SGI reached `pe`.
    fn deliver(&self, g: &mut State, pe: usize) {
        let masked_policy = self.cfg.masked;
        let p = &mut g.pes[pe];
        if p.masked {
            if masked_policy == MaskedSignal::Pend {
                p.pending = true;
            }
            return;
        }
        if !p.registered {
            return;
        }
        if !p.enabled || p.running || p.ready {
            p.pending = true;
            return;
        }
        p.ready = true;
    }

    fn resignal(&self, g: &mut State, pe: usize) {
        let p = &mut g.pes[pe];
        if p.pending && p.registered && p.enabled && !p.running && !p.masked && !p.ready {
            p.pending = false;
            p.ready = true;
        }
    }

    fn next_timer_ms(g: &State) -> Option<u64> {
        g.cpus
            .iter()
            .filter_map(|c| match c.ctx {
                Ctx::Foreign { until_ms } => until_ms,
                _ => None,
            })
            .min()
    }
}

/// What a CPU thread takes next.
enum Work {
    Ipi,
    Nmi,
    Sdei,
    ForeignComplete,
}

fn deliverable(w: &World, g: &State, cpu: usize) -> Option<Work> {
    let c = &g.cpus[cpu];
    match c.ctx {
        Ctx::Spinning(mask) => {
            if g.pes[cpu].ready {
                Some(Work::Sdei)
            } else if c.nmi && w.cfg.pseudo_nmi && mask != Mask::Daif {
                Some(Work::Nmi)
            } else if c.ipi && mask == Mask::None {
                Some(Work::Ipi)
            } else {
                None
            }
        }
        Ctx::Foreign { until_ms: Some(t) } if w.now_ms() >= t => Some(Work::ForeignComplete),
        _ => None,
    }
}

/// Marker returned by a parked simulated CPU (an uninhabited type on hardware).
#[derive(Debug, PartialEq, Eq)]
pub struct SimParked;

/// The CPU running the stop routine. `in_dispatch` only selects which
/// record a park makes; the firmware checks the real rules.
struct SimCpu {
    world: Arc<World>,
    id: usize,
    in_dispatch: bool,
    daif_masked: bool,
    note_written: bool,
    acked: bool,
}

impl SimCpu {
    fn op(&self, op: Op) {
        let mut g = self.world.lock();
        g.events.push(Ev::Op(self.id, op));
        g.generation += 1;
    }
    fn conduit(&self) -> SimConduit {
        SimConduit {
            world: self.world.clone(),
            pe: self.id,
        }
    }
    fn check(&self, ok: bool, what: &str) {
        if !ok {
            let mut g = self.world.lock();
            World::violation(&mut g, format!("CPU {}: {what}", self.id));
        }
    }
}

impl StopCpu for SimCpu {
    type Parked = SimParked;
    fn cpu(&self) -> usize {
        self.id
    }
    fn mask_daif(&mut self) {
        self.daif_masked = true;
        self.op(Op::MaskDaif);
    }
    fn write_crash_note(&mut self, regs: &Regs) {
        self.check(self.daif_masked, "note written with DAIF unmasked");
        let mut pr = ElfPrstatus {
            pr_pid: pid(self.id),
            ..Default::default()
        };
        pr.set_regs(regs);
        let buf = crash_note::build(&pr);
        for (dst, src) in self.world.notes[self.id].iter().zip(buf.iter()) {
            dst.store(*src, Ordering::Relaxed);
        }
        self.note_written = true;
        self.op(Op::Note(regs.pc));
    }
    fn backtrace(&mut self, regs: &Regs) {
        self.op(Op::Backtrace(regs.pc));
    }
    fn clear_online(&mut self) {
        self.check(self.daif_masked, "acknowledged with DAIF unmasked");
        self.acked = true;
        self.op(Op::ClearOnline);
        self.world.online[self.id].store(false, Ordering::Release);
    }
    fn sdei_pe_mask(&mut self) -> Result<bool, SdeiError> {
        self.check(self.acked, "SDEI masked before the acknowledgement");
        self.op(Op::PeMask);
        Sdei::new(self.conduit()).pe_mask()
    }
    fn park(&mut self) -> SimParked {
        self.check(self.acked, "parked without acknowledging");
        self.op(if self.in_dispatch {
            Op::ParkInDispatch
        } else {
            Op::Park
        });
        SimParked
    }
}

impl EventContext for SimCpu {
    fn event_context(&mut self, n: u64) -> Result<u64, SdeiError> {
        Sdei::new(self.conduit()).event_context(n)
    }
}

/// Only for the CPU outside any dispatch (the IPI path and the resumed park
/// routine). The SDEI path gets a [`SimDispatchCpu`], which cannot power off.
struct SimOutsideCpu(SimCpu);

impl StopCpu for SimOutsideCpu {
    type Parked = SimParked;
    fn cpu(&self) -> usize {
        self.0.cpu()
    }
    fn mask_daif(&mut self) {
        self.0.mask_daif()
    }
    fn write_crash_note(&mut self, regs: &Regs) {
        self.0.write_crash_note(regs)
    }
    fn backtrace(&mut self, regs: &Regs) {
        self.0.backtrace(regs)
    }
    fn clear_online(&mut self) {
        self.0.clear_online()
    }
    fn sdei_pe_mask(&mut self) -> Result<bool, SdeiError> {
        self.0.sdei_pe_mask()
    }
    fn park(&mut self) -> SimParked {
        self.0.park()
    }
}

impl PowerOff for SimOutsideCpu {
    fn cpu_off(&mut self) -> SimParked {
        self.0.op(Op::CpuOff);
        let _ = self.0.conduit().call(PSCI_CPU_OFF, [0; 7]);
        SimParked
    }
}

fn cpu_thread(world: Arc<World>, cpu: usize) {
    let mut g = world.lock();
    loop {
        if g.shutdown {
            return;
        }
        let Some(work) = deliverable(&world, &g, cpu) else {
            g.cpus[cpu].busy = false;
            let wait = if world.cfg.real_time {
                Duration::from_micros(200)
            } else {
                Duration::from_millis(50)
            };
            g = world
                .cv
                .wait_timeout(g, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            continue;
        };
        g.cpus[cpu].busy = true;
        g.generation += 1;
        let interrupted = g.cpus[cpu].regs;
        let prev_ctx = g.cpus[cpu].ctx;
        match work {
            Work::ForeignComplete => {
                // The pre-existing handler finishes: COMPLETE, back to the
                // (DAIF-masked) code it interrupted.
                // (Modelled directly: it is not our code making the call.)
                g.cpus[cpu].ctx = Ctx::Spinning(Mask::Daif);
                g.events.push(Ev::Op(cpu, Op::ForeignComplete));
                g.pes[cpu].running = false;
                world.resignal(&mut g, cpu);
                g.cpus[cpu].busy = false;
                world.cv.notify_all();
                continue;
            }
            Work::Ipi | Work::Nmi => {
                if matches!(work, Work::Ipi) {
                    g.cpus[cpu].ipi = false;
                } else {
                    g.cpus[cpu].nmi = false;
                }
                g.cpus[cpu].ctx = Ctx::Handling;
                g.events.push(Ev::Op(cpu, Op::EnterIpi));
                drop(g);
                let mut c = SimOutsideCpu(SimCpu {
                    world: world.clone(),
                    id: cpu,
                    in_dispatch: false,
                    daif_masked: false,
                    note_written: false,
                    acked: false,
                });
                let out = on_ipi(&world.board, &mut c, &interrupted, &world.cfg.policy);
                g = world.lock();
                match out {
                    IpiOutcome::Resume => {
                        g.cpus[cpu].ctx = prev_ctx;
                        g.events.push(Ev::Resumed(cpu));
                    }
                    IpiOutcome::Parked(SimParked) => {
                        g.cpus[cpu].ctx = Ctx::Stopped;
                        g.cpus[cpu].busy = false;
                        g.generation += 1;
                        drop(g);
                        world.cv.notify_all();
                        return;
                    }
                }
            }
            Work::Sdei => {
                // Dispatch: save x0..x17, enter with x0..x3 = event, arg, pc,
                // pstate and x4..x17 poisoned; DAIF masked.
                let p = &mut g.pes[cpu];
                p.ready = false;
                p.running = true;
                p.saved.copy_from_slice(&interrupted.x[..18]);
                g.cpus[cpu].ctx = Ctx::Handling;
                g.events.push(Ev::Op(cpu, Op::EnterSdei));
                drop(g);
                let mut live = interrupted;
                live.x[0] = 0;
                live.x[1] = 0x5eed;
                live.x[2] = interrupted.pc;
                live.x[3] = interrupted.pstate;
                for (i, x) in live.x.iter_mut().enumerate().take(18).skip(4) {
                    *x = 0xdead_0000 + i as u64;
                }
                live.pc = 0;
                live.pstate = 0;
                let entry = SdeiEntry {
                    event: 0,
                    pc: interrupted.pc,
                    pstate: interrupted.pstate,
                    live,
                };
                let mut c = SimCpu {
                    world: world.clone(),
                    id: cpu,
                    in_dispatch: true,
                    daif_masked: true,
                    note_written: false,
                    acked: false,
                };
                let out = on_sdei_event(&world.board, &mut c, &entry, &world.cfg.policy);
                let mut conduit = SimConduit {
                    world: world.clone(),
                    pe: cpu,
                };
                match out {
                    SdeiOutcome::Complete => {
                        c.op(Op::Complete);
                        let r =
                            conduit.call(SDEI_EVENT_COMPLETE, [SDEI_EV_HANDLED, 0, 0, 0, 0, 0, 0]);
                        g = world.lock();
                        if r[0] != 0 {
                            World::violation(&mut g, format!("CPU {cpu}: COMPLETE refused"));
                        }
                        g.cpus[cpu].ctx = prev_ctx;
                        g.events.push(Ev::Resumed(cpu));
                    }
                    SdeiOutcome::CompleteAndResume(routine) => {
                        c.op(Op::CompleteAndResume(routine));
                        let r = conduit.call(
                            SDEI_EVENT_COMPLETE_AND_RESUME,
                            [0xffff_8000_0811_0000, 0, 0, 0, 0, 0, 0],
                        );
                        if r[0] != 0 {
                            let mut g = world.lock();
                            World::violation(
                                &mut g,
                                format!("CPU {cpu}: COMPLETE_AND_RESUME refused"),
                            );
                        }
                        // Now outside the dispatch, in the park routine.
                        c.in_dispatch = false;
                        let mut outside = SimOutsideCpu(c);
                        let SimParked = resumed_park(&mut outside, routine);
                        return finish(&world, cpu);
                    }
                    SdeiOutcome::Parked(SimParked) => return finish(&world, cpu),
                }
            }
        }
        g.cpus[cpu].busy = false;
        g.generation += 1;
        world.cv.notify_all();
    }
}

fn finish(world: &World, cpu: usize) {
    let mut g = world.lock();
    g.cpus[cpu].ctx = Ctx::Stopped;
    g.cpus[cpu].busy = false;
    g.generation += 1;
    drop(g);
    world.cv.notify_all();
}

/// A running simulation.
pub struct Machine {
    /// The shared machine.
    pub world: Arc<World>,
    threads: Vec<JoinHandle<()>>,
}

impl Machine {
    /// Builds the machine and starts a thread per online CPU other than 0.
    pub fn start(cfg: Config) -> Machine {
        assert!(cfg.states.len() <= SIM_CPUS && cfg.states[0].online());
        let n = cfg.states.len();
        let has_sdei = cfg.sdei == SdeiMode::Usable;
        let mut cpus = Vec::new();
        let mut pes = Vec::new();
        for (cpu, s) in cfg.states.iter().enumerate() {
            let (ctx, mask, pe_masked, running) = match *s {
                CpuState::Offline => (Ctx::Off, Mask::None, true, false),
                CpuState::Spinning { mask, pe_masked } => {
                    (Ctx::Spinning(mask), mask, pe_masked, false)
                }
                CpuState::InHandlerWedged => {
                    (Ctx::Foreign { until_ms: None }, Mask::Daif, false, true)
                }
                CpuState::InHandlerUntil { ms } => {
                    (Ctx::Foreign { until_ms: Some(ms) }, Mask::Daif, false, true)
                }
            };
            let regs = program_regs(cpu, mask, cfg.pseudo_nmi);
            let mut saved = [0u64; 18];
            saved.copy_from_slice(&regs.x[..18]);
            cpus.push(CpuSim {
                ctx: if cpu == 0 { Ctx::Handling } else { ctx },
                ipi: false,
                nmi: false,
                busy: false,
                regs,
            });
            pes.push(Pe {
                has_sdei,
                registered: s.online(),
                enabled: s.online(),
                masked: pe_masked,
                running,
                pending: false,
                ready: false,
                saved,
                powered: s.online(),
            });
        }
        let world = Arc::new(World {
            online: cfg
                .states
                .iter()
                .map(|s| AtomicBool::new(s.online()))
                .collect(),
            notes: (0..n)
                .map(|_| (0..CRASH_NOTE_BUF_SIZE).map(|_| AtomicU8::new(0)).collect())
                .collect(),
            board: StopBoard::new(),
            virtual_ns: AtomicU64::new(0),
            start: std::time::Instant::now(),
            st: Mutex::new(State {
                cpus,
                pes,
                events: Vec::new(),
                shutdown: false,
                generation: 0,
            }),
            cv: Condvar::new(),
            cfg,
        });
        let threads = (1..n)
            .filter(|&c| world.cfg.states[c].online())
            .map(|c| {
                let w = world.clone();
                std::thread::Builder::new()
                    .name(format!("sim-cpu{c}"))
                    .stack_size(256 * 1024)
                    .spawn(move || cpu_thread(w, c))
                    .unwrap_or_else(|e| panic!("spawn a simulated CPU: {e}"))
            })
            .collect();
        Machine { world, threads }
    }

    /// The machine's configuration.
    pub fn world_cfg(&self) -> Config {
        self.world.cfg.clone()
    }

    /// Events recorded so far.
    pub fn events_len(&self) -> usize {
        self.world.lock().events.len()
    }

    /// The requester running on CPU 0.
    pub fn requester(&self, kind: RequestKind) -> SimRequester {
        SimRequester {
            world: self.world.clone(),
            kind,
            last_generation: u64::MAX,
            lines: Vec::new(),
        }
    }

    /// Writes CPU 0's own note (`crash_save_cpu` on the panicking CPU).
    pub fn save_requester_note(&self) {
        let mask = match self.world.cfg.states[0] {
            CpuState::Spinning { mask, .. } => mask,
            _ => Mask::Daif,
        };
        let regs = program_regs(0, mask, self.world.cfg.pseudo_nmi);
        let mut pr = ElfPrstatus {
            pr_pid: pid(0),
            ..Default::default()
        };
        pr.set_regs(&regs);
        for (dst, src) in self.world.notes[0]
            .iter()
            .zip(crash_note::build(&pr).iter())
        {
            dst.store(*src, Ordering::Relaxed);
        }
    }

    /// Waits until no CPU thread can make progress at the current time.
    pub fn quiesce(&self) {
        quiesce(&self.world);
    }

    /// Stops every thread and returns the record.
    pub fn shutdown(mut self) -> Record {
        {
            let mut g = self.world.lock();
            g.shutdown = true;
        }
        self.world.cv.notify_all();
        for t in self.threads.drain(..) {
            if let Err(e) = t.join() {
                std::panic::resume_unwind(e);
            }
        }
        let g = self.world.lock();
        Record {
            events: g.events.clone(),
            online: self
                .world
                .online
                .iter()
                .map(|o| o.load(Ordering::Acquire))
                .collect(),
            notes: self
                .world
                .notes
                .iter()
                .map(|b| b.iter().map(|x| x.load(Ordering::Relaxed)).collect())
                .collect(),
            pe_masked: g.pes.iter().map(|p| p.masked).collect(),
            pe_running: g.pes.iter().map(|p| p.running).collect(),
            pe_powered: g.pes.iter().map(|p| p.powered).collect(),
            board: (0..self.world.cfg.states.len())
                .map(|c| self.world.board.read(c).0)
                .collect(),
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.world.lock().shutdown = true;
            self.world.cv.notify_all();
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// What the machine looked like at the end.
#[derive(Debug)]
pub struct Record {
    /// Everything, in order.
    pub events: Vec<Ev>,
    /// The online mask.
    pub online: Vec<bool>,
    /// Each CPU's crash-notes buffer.
    pub notes: Vec<Vec<u8>>,
    /// SDEI masked per PE.
    pub pe_masked: Vec<bool>,
    /// An event 0 dispatch still running per PE.
    pub pe_running: Vec<bool>,
    /// PE powered.
    pub pe_powered: Vec<bool>,
    /// Request words.
    pub board: Vec<u32>,
}

fn quiesce(w: &World) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut g = w.lock();
    loop {
        let n = g.cpus.len();
        let idle = (1..n).all(|c| {
            matches!(g.cpus[c].ctx, Ctx::Stopped | Ctx::Off)
                || (!g.cpus[c].busy && deliverable(w, &g, c).is_none())
        });
        if idle {
            return g.generation;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "simulation hung: {:?}",
            g.cpus
        );
        g =
            w.cv.wait_timeout(g, Duration::from_millis(5))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
    }
}

/// CPU 0, running the ladder.
pub struct SimRequester {
    world: Arc<World>,
    kind: RequestKind,
    last_generation: u64,
    /// Printed lines.
    pub lines: Vec<String>,
}

impl Requester for SimRequester {
    fn now(&mut self) -> Instant {
        self.world.now()
    }

    fn outstanding(&mut self) -> CpuSet {
        match self.kind {
            RequestKind::Backtrace => self.world.board.backtrace_pending(),
            _ => self
                .world
                .online
                .iter()
                .enumerate()
                .filter(|(_, o)| o.load(Ordering::Acquire))
                .map(|(c, _)| c)
                .collect(),
        }
    }

    fn announce(&mut self, line: &Announcement) {
        let s = line.to_string();
        self.world.lock().events.push(Ev::Announce(s.clone()));
        self.lines.push(s);
    }

    fn signal(&mut self, rung: Rung, cpu: usize) -> Result<(), SignalError> {
        let w = self.world.clone();
        let word = w.board.read(cpu);
        {
            let mut g = w.lock();
            if word.is_empty() {
                World::violation(
                    &mut g,
                    format!("CPU {cpu} signalled before its request word was set"),
                );
            }
            g.events.push(Ev::Signal(rung, cpu));
            match rung {
                Rung::Ipi => g.cpus[cpu].ipi = true,
                Rung::PseudoNmi => g.cpus[cpu].nmi = true,
                Rung::Sdei => {}
            }
        }
        let r = match rung {
            Rung::Sdei => Sdei::new(SimConduit {
                world: w.clone(),
                pe: 0,
            })
            .signal(mpidr(cpu))
            .map_err(SignalError::Sdei),
            _ => Ok(()),
        };
        w.cv.notify_all();
        r
    }

    fn probe_sdei(&mut self) -> Result<SdeiVersion, SdeiUnusable> {
        probe_sdei(&mut Sdei::new(SimConduit {
            world: self.world.clone(),
            pe: 0,
        }))
    }

    fn relax(&mut self, until: Instant) {
        let w = &self.world;
        if w.cfg.real_time {
            std::thread::sleep(Duration::from_micros(100));
            return;
        }
        // Let every CPU do what it can at this instant. If anything happened
        // since the last look, return so the ladder re-reads at this time;
        // otherwise move the clock to the next event (a handler completing)
        // or the end of the wait.
        let gen = quiesce(w);
        if gen != self.last_generation {
            self.last_generation = gen;
            return;
        }
        let now = w.now();
        let next = {
            let g = w.lock();
            World::next_timer_ms(&g)
                .map(|ms| ms * 1_000_000)
                .filter(|&t| t > now.0)
        };
        let to = next.map_or(until.0, |t| t.min(until.0));
        w.virtual_ns.store(to.max(now.0), Ordering::SeqCst);
        w.cv.notify_all();
        self.last_generation = quiesce(w);
    }
}
