//! The crash-stop protocol on a simulated machine (`stop_sim/machine.rs`):
//! CPUs are threads in every combination of states, the firmware model
//! follows SDEI's rules, and the requester runs the real ladder through
//! `crash_payload::stop::drive`. For each run the ladder must capture every
//! online CPU that can be reached, name exactly those that cannot, and the
//! notes the CPUs wrote must read back — through `crash_note::parse`,
//! `vmcore-tools`' verdict and the `object` crate — with the interrupted
//! pc/sp/pstate each CPU really had.

#[path = "stop_sim/machine.rs"]
mod machine;

use crash_payload::cpumap::{CpuEntry, CPU_ONLINE, CPU_PRESENT};
use crash_payload::crash_note::{self, CrashNote, CORE_NOTE_SIZE};
use crash_payload::elfcorehdr::{headers_size, write_headers, ProgramHeader, EM_AARCH64};
use crash_payload::note::NT_PRSTATUS;
use crash_payload::prstatus::{ElfPrstatus, Regs};
use crash_payload::stop::{
    drive, Capabilities, CpuSet, Ladder, LadderConfig, ParkRoutine, Report, RequestKind,
    RungStatus, SdeiExit, StopPolicy,
};
use crash_payload::PhysAddr;
use machine::{
    loop_pc, pid, program_regs, Config, CpuState, Ev, Machine, Mask, MaskedSignal, Op, Record,
    SdeiMode,
};
use object::read::elf::{ElfFile64, ProgramHeader as _};
use object::Endianness;
use vmcore_tools::cpus::{decide, BufferState, Evidence, FoundNote, KernelLayout, Status};

/// splitmix64: a seeded generator, so sampled runs are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const POLICIES: [StopPolicy; 4] = [
    StopPolicy::LINUX,
    StopPolicy {
        sdei_exit: SdeiExit::CompleteAndResume(ParkRoutine::Wfi),
        after_ipi: ParkRoutine::Wfi,
    },
    StopPolicy {
        sdei_exit: SdeiExit::CompleteAndResume(ParkRoutine::CpuOff),
        after_ipi: ParkRoutine::CpuOff,
    },
    StopPolicy {
        sdei_exit: SdeiExit::ParkInHandler,
        after_ipi: ParkRoutine::Wfi,
    },
];
const SDEI_MODES: [SdeiMode; 3] = [SdeiMode::Absent, SdeiMode::Broken, SdeiMode::Usable];

fn config(
    states: Vec<CpuState>,
    pseudo_nmi: bool,
    sdei: SdeiMode,
    rng: &mut Rng,
    real_time: bool,
) -> Config {
    Config {
        states,
        pseudo_nmi,
        sdei,
        policy: POLICIES[rng.below(POLICIES.len())],
        masked: if rng.below(2) == 0 {
            MaskedSignal::Drop
        } else {
            MaskedSignal::Pend
        },
        real_time,
    }
}

fn caps(cfg: &Config) -> Capabilities {
    Capabilities {
        pseudo_nmi: cfg.pseudo_nmi,
        sdei: cfg.sdei != SdeiMode::Absent,
    }
}

/// The oracle, independent of the implementation: can this CPU be reached
/// by some rung within the ladder's waits? `None`: not a target.
fn reachable(s: CpuState, cfg: &Config, ladder: &LadderConfig) -> Option<bool> {
    let sdei = cfg.sdei == SdeiMode::Usable;
    Some(match s {
        CpuState::Offline => return None,
        CpuState::Spinning {
            mask: Mask::None, ..
        } => true,
        CpuState::Spinning {
            mask: Mask::Irqs,
            pe_masked,
        } => cfg.pseudo_nmi || (sdei && !pe_masked),
        CpuState::Spinning {
            mask: Mask::Daif,
            pe_masked,
        } => sdei && !pe_masked,
        CpuState::InHandlerWedged => false,
        CpuState::InHandlerUntil { ms } => {
            // The event stays pending until the handler completes; it must
            // complete before the SDEI wait ends.
            let sdei_end = ladder.ipi_wait
                + if cfg.pseudo_nmi {
                    ladder.nmi_wait
                } else {
                    Default::default()
                }
                + ladder.sdei_wait;
            sdei && u128::from(ms) * 1_000_000 < sdei_end.as_nanos()
        }
    })
}

/// The registers of the context the stop interrupted.
fn interrupted(cpu: usize, s: CpuState, pseudo_nmi: bool) -> Regs {
    let mask = match s {
        CpuState::Spinning { mask, .. } => mask,
        _ => Mask::Daif, // a handler that completed went back to DAIF-masked code
    };
    program_regs(cpu, mask, pseudo_nmi)
}

fn targets(cfg: &Config) -> CpuSet {
    cfg.states
        .iter()
        .enumerate()
        .filter(|(c, s)| *c != 0 && s.online())
        .map(|(c, _)| c)
        .collect()
}

/// Runs one ladder of `kind` on `m`.
fn run_ladder(m: &Machine, kind: RequestKind, lc: LadderConfig) -> (Report, Vec<String>) {
    let cfg = m.world_cfg();
    let mut ladder = Ladder::new(
        lc,
        caps(&cfg),
        kind,
        0,
        &targets(&cfg).union(&CpuSet::first(1)),
    );
    let mut req = m.requester(kind);
    let report = drive(&mut ladder, &m.world.board, &mut req);
    m.quiesce();
    (report, req.lines)
}

fn ops_of(events: &[Ev], cpu: usize) -> Vec<Op> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Op(c, op) if *c == cpu => Some(*op),
            _ => None,
        })
        .collect()
}

/// Checks one crash-stop run. `events_from` skips events of earlier ladders.
fn check_crash_stop(
    cfg: &Config,
    lc: &LadderConfig,
    report: &Report,
    rec: &Record,
    events_from: usize,
    ctx: &str,
) {
    let n = cfg.states.len();
    let t = targets(cfg);
    let expect_unanswered: CpuSet = t
        .iter()
        .filter(|&c| reachable(cfg.states[c], cfg, lc) == Some(false))
        .collect();
    assert_eq!(report.targets, t, "{ctx}");
    assert_eq!(report.unanswered, expect_unanswered, "{ctx}: named CPUs");
    assert_eq!(report.answered, t.difference(&expect_unanswered), "{ctx}");
    let events = &rec.events[events_from..];
    let violations: Vec<&Ev> = rec
        .events
        .iter()
        .filter(|e| matches!(e, Ev::Violation(_)))
        .collect();
    assert!(violations.is_empty(), "{ctx}: {violations:?}");

    // Announce before every signal.
    let mut last_announce: Option<&str> = None;
    for e in events {
        match e {
            Ev::Announce(l) => last_announce = Some(l),
            Ev::Signal(rung, cpu) => {
                let l = last_announce.unwrap_or("");
                assert!(
                    l.starts_with(&format!("sending {rung} crash stop to CPUs ")),
                    "{ctx}: signal {rung} to {cpu} after {l:?}"
                );
            }
            _ => {}
        }
    }

    for cpu in 0..n {
        let s = cfg.states[cpu];
        let note = crash_note::parse(&rec.notes[cpu])
            .unwrap_or_else(|e| panic!("{ctx}: CPU {cpu} note: {e}"));
        let captured = cpu == 0 || report.answered.contains(cpu);
        match note {
            CrashNote::Saved(pr) if captured => {
                assert_eq!(pr.pr_pid, pid(cpu), "{ctx}");
                assert_eq!(
                    pr.regs(),
                    interrupted(cpu, s, cfg.pseudo_nmi),
                    "{ctx}: CPU {cpu} registers"
                );
            }
            CrashNote::Empty if !captured => {}
            other => panic!("{ctx}: CPU {cpu} captured={captured} but note {other:?}"),
        }
        if cpu == 0 || !s.online() {
            continue;
        }
        assert_eq!(rec.online[cpu], !captured, "{ctx}: CPU {cpu} online bit");
        let ops = ops_of(events, cpu);
        if !captured {
            assert!(
                !ops.contains(&Op::ClearOnline) && !ops.iter().any(|o| matches!(o, Op::Note(_))),
                "{ctx}: {ops:?}"
            );
            continue;
        }
        // The stop routine's order, then never back to the wedged code.
        let i_ack = ops
            .iter()
            .position(|o| *o == Op::ClearOnline)
            .unwrap_or_else(|| panic!("{ctx}: CPU {cpu} {ops:?}"));
        let seq: Vec<Op> = ops[i_ack..].to_vec();
        assert_eq!(seq[1], Op::PeMask, "{ctx}: CPU {cpu} {ops:?}");
        let enter = ops[..i_ack]
            .iter()
            .rev()
            .find(|o| matches!(o, Op::EnterIpi | Op::EnterSdei))
            .copied();
        let before_ack: Vec<Op> = ops[..i_ack]
            .iter()
            .rev()
            .take_while(|o| !matches!(o, Op::EnterIpi | Op::EnterSdei))
            .copied()
            .collect();
        assert!(
            before_ack.contains(&Op::Note(loop_pc(cpu))),
            "{ctx}: CPU {cpu} {ops:?}"
        );
        assert_eq!(
            before_ack.last(),
            Some(&Op::MaskDaif),
            "{ctx}: DAIF masked first: {ops:?}"
        );
        let resumed_after_ack = events
            .iter()
            .skip_while(|e| **e != Ev::Op(cpu, Op::ClearOnline))
            .any(|e| *e == Ev::Resumed(cpu));
        assert!(
            !resumed_after_ack,
            "{ctx}: CPU {cpu} resumed its wedged context after stopping"
        );
        let end = seq.last().copied();
        match (enter, cfg.policy) {
            (
                Some(Op::EnterSdei),
                StopPolicy {
                    sdei_exit: SdeiExit::ParkInHandler,
                    ..
                },
            ) => {
                assert_eq!(end, Some(Op::ParkInDispatch), "{ctx}: {ops:?}");
                assert!(
                    rec.pe_running[cpu],
                    "{ctx}: the event must never be completed"
                );
            }
            (
                Some(Op::EnterSdei),
                StopPolicy {
                    sdei_exit: SdeiExit::CompleteAndResume(r),
                    ..
                },
            ) => {
                assert!(seq.contains(&Op::CompleteAndResume(r)), "{ctx}: {ops:?}");
                assert_eq!(
                    end,
                    Some(if r == ParkRoutine::Wfi {
                        Op::Park
                    } else {
                        Op::CpuOff
                    }),
                    "{ctx}: {ops:?}"
                );
                assert!(!rec.pe_running[cpu]);
            }
            (Some(Op::EnterIpi), p) => {
                assert_eq!(
                    end,
                    Some(if p.after_ipi == ParkRoutine::Wfi {
                        Op::Park
                    } else {
                        Op::CpuOff
                    }),
                    "{ctx}: {ops:?}"
                );
            }
            other => panic!("{ctx}: CPU {cpu} entered by {other:?}"),
        }
        if end == Some(Op::CpuOff) {
            assert!(!rec.pe_powered[cpu], "{ctx}");
        }
        if cfg.sdei == SdeiMode::Usable {
            assert!(rec.pe_masked[cpu], "{ctx}: CPU {cpu} left SDEI unmasked");
        }
    }

    // Bounded: no rung waited longer than configured, and the whole ladder
    // took at most the sum of the waits of the rungs it used.
    let mut budget = std::time::Duration::ZERO;
    for r in &report.rungs {
        if r.status == RungStatus::Sent {
            let w = lc.wait(r.rung);
            budget += w;
            let took = r
                .ended
                .unwrap_or(report.finished)
                .since(r.started.unwrap_or(report.started));
            assert!(took <= w, "{ctx}: {:?} took {took:?}", r.rung);
        }
    }
    assert!(report.finished.since(report.started) <= budget, "{ctx}");
    if !cfg.real_time
        && t.iter().all(|c| {
            matches!(
                cfg.states[c],
                CpuState::Spinning {
                    mask: Mask::None,
                    ..
                }
            )
        })
    {
        assert_eq!(
            report.finished, report.started,
            "{ctx}: the IPI wait must end as soon as all answered"
        );
    }
    readback(cfg, report, rec, ctx);
}

/// The notes, read back by vmcore-tools and by `object`.
fn readback(cfg: &Config, report: &Report, rec: &Record, ctx: &str) {
    let n = cfg.states.len();
    let mut map = Vec::new();
    let mut merged = Vec::new();
    let mut saved_cpus = Vec::new();
    for cpu in 0..n {
        let online = cfg.states[cpu].online();
        let entry = CpuEntry {
            cpu: cpu as u32,
            flags: CPU_PRESENT | if online { CPU_ONLINE } else { 0 },
            mpidr: machine::mpidr(cpu),
            notes_paddr: PhysAddr(0xbfb8_6600 + 0x1f000 * cpu as u64),
            notes_size: 424,
        };
        let buf = match crash_note::parse(&rec.notes[cpu]) {
            Ok(n) => BufferState::Parsed(n),
            Err(e) => BufferState::Corrupt(e),
        };
        if matches!(buf, BufferState::Parsed(CrashNote::Saved(_))) {
            // /proc/vmcore merges each buffer up to its zero terminator.
            merged.extend_from_slice(&rec.notes[cpu][..CORE_NOTE_SIZE]);
            saved_cpus.push(cpu);
        }
        map.push((entry, buf));
    }

    // An ELF core with one PT_NOTE, parsed by `object`.
    let hdr = headers_size(1).unwrap_or(0);
    let mut elf = vec![0u8; hdr];
    write_headers(
        &mut elf,
        EM_AARCH64,
        &[ProgramHeader::note(
            PhysAddr(hdr as u64),
            merged.len() as u64,
        )],
    )
    .unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
    elf.extend_from_slice(&merged);
    let file =
        ElfFile64::<Endianness>::parse(&*elf).unwrap_or_else(|e| panic!("{ctx}: object: {e}"));
    let endian = file.endian();
    let mut found = Vec::new();
    for ph in file.elf_program_headers() {
        let Some(mut notes) = ph
            .notes(endian, &*elf)
            .unwrap_or_else(|e| panic!("{ctx}: {e}"))
        else {
            continue;
        };
        let mut off = hdr as u64;
        while let Some(note) = notes.next().unwrap_or_else(|e| panic!("{ctx}: {e}")) {
            assert_eq!(note.name(), b"CORE", "{ctx}");
            assert_eq!(note.n_type(endian), NT_PRSTATUS, "{ctx}");
            let pr = ElfPrstatus::parse(note.desc()).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            found.push(FoundNote {
                index: found.len(),
                file_offset: off,
                prstatus: Ok(pr),
            });
            off += CORE_NOTE_SIZE as u64;
        }
    }
    assert_eq!(
        found.len(),
        saved_cpus.len(),
        "{ctx}: object sees every saved note"
    );
    for (f, &cpu) in found.iter().zip(&saved_cpus) {
        let pr = f.prstatus.as_ref().unwrap_or_else(|e| panic!("{e}"));
        let want = interrupted(cpu, cfg.states[cpu], cfg.pseudo_nmi);
        let got = pr.regs();
        assert_eq!(
            (pr.pr_pid, got.pc, got.sp, got.pstate),
            (pid(cpu), want.pc, want.sp, want.pstate),
            "{ctx}: object note"
        );
    }

    // vmcore-tools' verdict from the CPU-map evidence.
    let ev = Evidence {
        notes: found,
        cpumap: Some(map),
        layout: Some(KernelLayout::for_va_bits(48)),
        ..Default::default()
    };
    let v = decide(&ev);
    assert_eq!(v.method, "cpu-map-note", "{ctx}");
    assert!(v.remarks.is_empty(), "{ctx}: {:?}", v.remarks);
    let missing: CpuSet = v
        .rows
        .iter()
        .filter(|r| r.status == Status::Missing)
        .map(|r| r.cpu as usize)
        .collect();
    assert_eq!(
        missing, report.unanswered,
        "{ctx}: vmcore names exactly the CPUs the ladder named: {:?}",
        v.rows
    );
    let offline: Vec<u32> = (0..n)
        .filter(|&c| !cfg.states[c].online())
        .map(|c| c as u32)
        .collect();
    assert_eq!(v.not_expected, offline, "{ctx}");
    for r in &v.rows {
        if r.status == Status::Captured {
            let regs = r.prstatus.map(|p| p.regs()).unwrap_or_default();
            let want = interrupted(r.cpu as usize, cfg.states[r.cpu as usize], cfg.pseudo_nmi);
            assert_eq!(
                (regs.pc, regs.sp, regs.pstate),
                (want.pc, want.sp, want.pstate),
                "{ctx}: vmcore row {}",
                r.cpu
            );
        } else {
            assert!(
                r.reason
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("failed to stop"),
                "{ctx}: {:?}",
                r.reason
            );
        }
    }
    assert_eq!(v.all_captured(), report.unanswered.is_empty(), "{ctx}");
}

fn one_crash_stop(cfg: Config, lc: LadderConfig) {
    let ctx = format!("{cfg:?}");
    let m = Machine::start(cfg.clone());
    let (report, lines) = run_ladder(&m, RequestKind::CrashStop, lc);
    m.save_requester_note();
    let rec = m.shutdown();
    check_crash_stop(&cfg, &lc, &report, &rec, 0, &format!("{ctx} {lines:?}"));
}

fn all_combinations(n: usize) -> Vec<Vec<CpuState>> {
    let k = CpuState::ALL.len();
    let total = k.pow((n - 1) as u32);
    (0..total)
        .map(|mut i| {
            let mut v = vec![CpuState::Spinning {
                mask: Mask::None,
                pe_masked: false,
            }];
            for _ in 1..n {
                v.push(CpuState::ALL[i % k]);
                i /= k;
            }
            v
        })
        .collect()
}

/// Every combination of the nine CPU states on 2, 3 and 4 CPUs, under every
/// pseudo-NMI × SDEI availability, with park policy and masked-PE behaviour
/// drawn from a seeded generator.
#[test]
fn every_state_combination_on_2_to_4_cpus() {
    let mut rng = Rng(0x5eed_0001);
    let mut runs = 0;
    for n in 2..=4 {
        for states in all_combinations(n) {
            for pseudo_nmi in [false, true] {
                for sdei in SDEI_MODES {
                    one_crash_stop(
                        config(states.clone(), pseudo_nmi, sdei, &mut rng, false),
                        LadderConfig::LINUX,
                    );
                    runs += 1;
                }
            }
        }
    }
    assert_eq!(runs, (9 + 81 + 729) * 6);
}

/// 5 to 8 CPUs: seeded samples of states, capabilities and policies.
#[test]
fn sampled_state_combinations_on_5_to_8_cpus() {
    let mut rng = Rng(0x5eed_0002);
    for n in 5..=8 {
        for _ in 0..150 {
            let mut states = vec![CpuState::Spinning {
                mask: Mask::None,
                pe_masked: false,
            }];
            states.extend((1..n).map(|_| CpuState::ALL[rng.below(CpuState::ALL.len())]));
            let pseudo_nmi = rng.below(2) == 1;
            let sdei = SDEI_MODES[rng.below(3)];
            one_crash_stop(
                config(states, pseudo_nmi, sdei, &mut rng, false),
                LadderConfig::LINUX,
            );
        }
    }
}

/// The case the project exists for: Debian's kernel (no pseudo-NMI), CPU 1
/// spinning with DAIF fully masked. Without SDEI it is named; with it, its
/// note holds the spinning pc.
#[test]
fn daif_masked_cpu_is_captured_only_by_sdei() {
    let mut rng = Rng(3);
    let states = vec![
        CpuState::Spinning {
            mask: Mask::None,
            pe_masked: false,
        },
        CpuState::Spinning {
            mask: Mask::Daif,
            pe_masked: false,
        },
        CpuState::Spinning {
            mask: Mask::None,
            pe_masked: false,
        },
    ];
    for sdei in SDEI_MODES {
        let cfg = config(states.clone(), false, sdei, &mut rng, false);
        let m = Machine::start(cfg.clone());
        let (report, lines) = run_ladder(&m, RequestKind::CrashStop, LadderConfig::LINUX);
        m.save_requester_note();
        let rec = m.shutdown();
        check_crash_stop(&cfg, &LadderConfig::LINUX, &report, &rec, 0, "debian");
        if sdei == SdeiMode::Usable {
            assert!(report.all_answered());
            assert_eq!(
                lines,
                [
                    "sending IPI crash stop to CPUs 1-2",
                    "not sending pseudo-NMI crash stop to CPUs 1: pseudo-NMIs are not enabled",
                    "sending SDEI crash stop to CPUs 1",
                ]
            );
            assert_eq!(report.rungs[2].answered, [1].into_iter().collect());
        } else {
            assert_eq!(report.to_string(), "SMP: failed to stop secondary CPUs 1");
            assert!(
                matches!(report.rungs[2].status, RungStatus::Skipped(_)),
                "{:?}",
                report.rungs[2]
            );
        }
    }
}

/// NMI backtrace rides the same event 0: CPUs print and resume (none stops,
/// none is acked offline), stale requests are withdrawn, and a crash stop
/// afterwards still reaches them through the same event.
#[test]
fn backtrace_then_crash_stop_share_event_0() {
    let mut rng = Rng(0x5eed_0004);
    let lc = LadderConfig::LINUX;
    for i in 0..300 {
        let n = 2 + i % 5;
        let mut states = vec![CpuState::Spinning {
            mask: Mask::None,
            pe_masked: false,
        }];
        states.extend((1..n).map(|_| CpuState::ALL[rng.below(CpuState::ALL.len())]));
        let pseudo_nmi = rng.below(2) == 1;
        let sdei = SDEI_MODES[rng.below(3)];
        let cfg = config(states, pseudo_nmi, sdei, &mut rng, false);
        let ctx = format!("{cfg:?}");
        let m = Machine::start(cfg.clone());
        let (bt, lines) = run_ladder(&m, RequestKind::Backtrace, lc);
        let t = targets(&cfg);
        let expect: CpuSet = t
            .iter()
            .filter(|&c| reachable(cfg.states[c], &cfg, &lc) == Some(true))
            .collect();
        assert_eq!(bt.answered, expect, "{ctx} {lines:?}");
        for cpu in &t {
            assert!(
                m.world.board.read(cpu).is_empty(),
                "{ctx}: CPU {cpu} keeps a backtrace request"
            );
        }
        let mid = m.events_len();
        let (report, lines) = run_ladder(&m, RequestKind::CrashStop, lc);
        m.save_requester_note();
        let rec = m.shutdown();
        for cpu in &expect {
            let ops = ops_of(&rec.events[..mid], cpu);
            assert!(ops.contains(&Op::Backtrace(loop_pc(cpu))), "{ctx}: {ops:?}");
            assert!(
                !ops.contains(&Op::ClearOnline),
                "{ctx}: a backtrace never stops a CPU"
            );
            assert!(rec.events[..mid].contains(&Ev::Resumed(cpu)), "{ctx}");
        }
        // After the backtrace the in-handler CPUs have completed; the crash
        // stop's oracle is the same.
        check_crash_stop(&cfg, &lc, &report, &rec, mid, &format!("{ctx} {lines:?}"));
    }
}

/// Real time, short waits, real races between the requester's polling and
/// the CPUs' handlers: the invariants hold whatever the interleaving.
#[test]
fn real_time_races_keep_the_invariants() {
    let mut rng = Rng(0x5eed_0005);
    let lc = LadderConfig {
        ipi_wait: std::time::Duration::from_millis(40),
        nmi_wait: std::time::Duration::from_millis(5),
        sdei_wait: std::time::Duration::from_millis(40),
    };
    for i in 0..24 {
        let n = 2 + i % 7;
        let mut states = vec![CpuState::Spinning {
            mask: Mask::None,
            pe_masked: false,
        }];
        states.extend(
            (1..n).map(|_| match CpuState::ALL[rng.below(CpuState::ALL.len())] {
                CpuState::InHandlerUntil { .. } => CpuState::InHandlerUntil { ms: 3 },
                s => s,
            }),
        );
        let cfg = config(
            states,
            rng.below(2) == 1,
            SDEI_MODES[rng.below(3)],
            &mut rng,
            true,
        );
        let ctx = format!("{cfg:?}");
        let m = Machine::start(cfg.clone());
        let (report, _) = run_ladder(&m, RequestKind::CrashStop, lc);
        m.save_requester_note();
        let rec = m.shutdown();
        assert!(
            !rec.events.iter().any(|e| matches!(e, Ev::Violation(_))),
            "{ctx}: {:?}",
            rec.events
        );
        for cpu in &targets(&cfg) {
            let possible = reachable(cfg.states[cpu], &cfg, &lc) == Some(true);
            let note = crash_note::parse(&rec.notes[cpu]).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            if report.answered.contains(cpu) {
                assert!(possible, "{ctx}: CPU {cpu} cannot have answered");
                assert!(!rec.online[cpu]);
            }
            if !possible {
                assert!(
                    report.unanswered.contains(cpu) && rec.online[cpu] && note == CrashNote::Empty,
                    "{ctx}: CPU {cpu}"
                );
            }
            // Whoever went offline (even after the ladder gave up) left a
            // complete, correct note: the ack is ordered after it.
            if !rec.online[cpu] {
                match note {
                    CrashNote::Saved(pr) => assert_eq!(
                        pr.regs(),
                        interrupted(cpu, cfg.states[cpu], cfg.pseudo_nmi),
                        "{ctx}"
                    ),
                    CrashNote::Empty => panic!("{ctx}: CPU {cpu} acked without a note"),
                }
            }
        }
    }
}
