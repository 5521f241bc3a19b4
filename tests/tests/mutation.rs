//! Mutation test on the stable toolchain: seeded random byte flips,
//! truncations and insertions of valid inputs, fed to every crash-payload
//! parser and to the CPU verdict. Each must return Ok or Err, never panic,
//! and a result that parses must survive a write/read round trip.
//!
//! The fuzz targets under `fuzz/` explore further with coverage guidance;
//! this runs in CI on every change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crash_payload::cpumap::{self, CpuEntry, CpuMap, CPU_ONLINE};
use crash_payload::crash_note::{self, CrashNote};
use crash_payload::note::{self, NoteIter};
use crash_payload::prstatus::ElfPrstatus;
use crash_payload::vmcoreinfo::VmcoreInfo;
use crash_payload::PhysAddr;
use vmcore_tools::cpus::{decide, log_facts, Evidence};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `input`.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 0xff, 0x7f, 0x80][rng.below(4)];
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            _ if v.len() >= 4 => {
                // An absurd 32-bit field at a 4-aligned offset.
                let i = rng.below(v.len() / 4) * 4;
                v[i..i + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
            }
            _ => {}
        }
    }
    v
}

fn seeds() -> Vec<Vec<u8>> {
    let mut pr = ElfPrstatus {
        pr_pid: 42,
        ..Default::default()
    };
    pr.pr_reg[32] = 0xffff_8000_0810_0000;
    let buf = crash_note::build(&pr).to_vec();
    let cpus = [
        CpuEntry {
            cpu: 0,
            flags: CPU_ONLINE,
            mpidr: 0,
            notes_paddr: PhysAddr(0x7000_0000),
            notes_size: 424,
        },
        CpuEntry {
            cpu: 1,
            flags: CPU_ONLINE,
            mpidr: 1,
            notes_paddr: PhysAddr(0x7001_f000),
            notes_size: 424,
        },
    ];
    let mut map = vec![0u8; cpumap::desc_size(2)];
    cpumap::write_desc(&mut map, &cpus).expect("sized");
    let mut notes = vec![0u8; 2048];
    let mut off = 0;
    off += note::write_note(&mut notes[off..], b"CORE", 1, &buf[20..412]).expect("room");
    off += note::write_note(
        &mut notes[off..],
        b"VMCOREINFO",
        0,
        b"OSRELEASE=6.1.0\nPAGESIZE=4096\nNUMBER(VA_BITS)=48\n",
    )
    .expect("room");
    off += note::write_note(
        &mut notes[off..],
        b"KEXEC-RS",
        cpumap::NT_KEXECRS_CPUMAP,
        &map,
    )
    .expect("room");
    notes.truncate(off);
    let log = b"[    0.1] smp: Brought up 1 node, 4 CPUs\n[    9.0] SMP: failed to stop secondary CPUs 1-2\n\
[    9.1] CPU: 3 PID: 77 Comm: sh Not tainted\nCPU1: shutdown\n".to_vec();
    vec![buf, map, notes, log]
}

#[test]
fn parsers_survive_mutations() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds = seeds();
    let mut parsed = 0usize;
    for round in 0..20_000 {
        let seed = &seeds[round % seeds.len()];
        let m = mutate(&mut rng, seed);
        for n in NoteIter::new(&m) {
            let Ok(n) = n else { break };
            if ElfPrstatus::parse(n.desc).is_ok() {
                parsed += 1;
            }
            let _ = CpuMap::parse(n.desc);
            let _ = VmcoreInfo::parse(n.desc).map(|v| (v.number("VA_BITS"), v.page_size()));
        }
        if let Ok(CrashNote::Saved(pr)) = crash_note::parse(&m) {
            assert_eq!(
                crash_note::parse(&crash_note::build(&pr)),
                Ok(CrashNote::Saved(pr))
            );
        }
        if let Ok(map) = CpuMap::parse(&m) {
            let entries: Vec<_> = map.entries().collect();
            let mut out = vec![0u8; cpumap::desc_size(entries.len())];
            let n = cpumap::write_desc(&mut out, &entries).expect("sized");
            assert_eq!(
                CpuMap::parse(&out[..n])
                    .expect("own output")
                    .entries()
                    .collect::<Vec<_>>(),
                entries
            );
        }
        let text = String::from_utf8_lossy(&m);
        let _ = decide(&Evidence {
            log: Some(log_facts(text.lines())),
            ..Default::default()
        });
    }
    assert!(
        parsed > 100,
        "mutations too destructive: only {parsed} notes still parsed"
    );
}
