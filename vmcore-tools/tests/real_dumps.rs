//! `vmcore` on real arm64 dumps made under QEMU by tests/dumps/make-dumps.sh
//! (Debian's arm64 kernel; a real panic; a real /proc/vmcore; one run with
//! CPU 1 wedged with interrupts masked). The truth comes from the guest
//! itself (sysfs crash_notes addresses recorded before the panic) and from
//! how each dump was made (truth.json). If the dumps are missing, they are
//! made first; these tests never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/src/lib.rs"]
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use crash_payload::crash_note::{self, CrashNote};
use crash_payload::PhysAddr;
use serde_json::Value;
use vmcore_tools::analyze::{Analysis, Options};
use vmcore_tools::cpus::{NumberSource, Status};

fn dumps() -> (PathBuf, Value) {
    match support::real_dumps() {
        Ok((dir, truth)) => (dir.clone(), truth.clone()),
        Err(e) => panic!("real dumps unavailable: {e}"),
    }
}

fn files(truth: &Value) -> Vec<Value> {
    truth["files"].as_array().cloned().unwrap_or_default()
}

fn cpus_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_u64())
                .map(|c| c as u32)
                .collect()
        })
        .unwrap_or_default()
}

/// CPU `cpu`'s crash-notes buffer as the guest recorded it before the panic
/// in the run that made `file` (per-CPU allocations may differ between runs).
fn crash_notes_paddr(truth: &Value, file: &Value, cpu: u32) -> PhysAddr {
    let run = file["run"].as_str().expect("file run");
    let per_cpu = truth["runs"][run]["per_cpu"]
        .as_array()
        .unwrap_or_else(|| panic!("truth.json has no runs.{run}.per_cpu"));
    let e = per_cpu
        .iter()
        .find(|e| e["cpu"].as_u64() == Some(u64::from(cpu)))
        .unwrap_or_else(|| panic!("truth.json has no per_cpu entry for CPU {cpu}"));
    let s = e["crash_notes"].as_str().expect("crash_notes string");
    PhysAddr(u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex crash_notes"))
}

#[test]
fn every_real_dump_gets_the_verdict_its_making_implies() {
    let (dir, truth) = dumps();
    let all = files(&truth);
    assert!(all.len() >= 6, "truth.json lists only {} dumps", all.len());
    let ncpus = truth["cpus"].as_u64().expect("cpus") as u32;
    for f in &all {
        let name = f["file"].as_str().expect("file");
        let path = dir.join(name);
        let an =
            Analysis::open(&path, &Options::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let v = an.verdict();
        let captured = cpus_of(&f["expected_captured"]);
        let missing = cpus_of(&f["expected_missing"]);
        assert_eq!(v.expected, Some(ncpus), "{name}: expected CPU count; {v:?}");
        assert!(
            v.unnumbered.is_empty(),
            "{name}: notes left unnumbered: {v:?}"
        );
        for r in &v.rows {
            if captured.contains(&r.cpu) {
                assert_eq!(r.status, Status::Captured, "{name}: CPU {} {r:?}", r.cpu);
            } else {
                assert!(missing.contains(&r.cpu), "{name}: unexpected CPU {}", r.cpu);
                assert_eq!(r.status, Status::Missing, "{name}: CPU {}", r.cpu);
                let reason = r.reason.as_deref().unwrap_or("");
                assert!(
                    reason.starts_with("failed to stop"),
                    "{name}: CPU {}: {reason}",
                    r.cpu
                );
            }
        }
        assert_eq!(
            v.rows.len(),
            captured.len() + missing.len(),
            "{name}: rows {v:?}"
        );
        assert_eq!(v.all_captured(), missing.is_empty(), "{name}");

        if f["kind"] == "kdump-proc-vmcore" || f["kind"] == "makedumpfile" {
            // The numbering is right: each captured CPU's registers are the
            // ones its own crash-notes buffer (address recorded in the guest
            // before the panic) holds in the dump's memory.
            for r in v.rows.iter().filter(|r| r.status == Status::Captured) {
                let mut buf = [0u8; 424];
                an.dump
                    .read_phys(crash_notes_paddr(&truth, f, r.cpu), &mut buf)
                    .unwrap_or_else(|e| panic!("{name}: CPU {} buffer: {e}", r.cpu));
                let Ok(CrashNote::Saved(pr)) = crash_note::parse(&buf) else {
                    panic!("{name}: CPU {} buffer holds no note", r.cpu)
                };
                assert_eq!(
                    Some(pr),
                    r.prstatus,
                    "{name}: CPU {} shows another CPU's registers",
                    r.cpu
                );
            }
            // And a missing CPU's buffer is indeed empty.
            for &cpu in &missing {
                let mut buf = [0u8; 424];
                an.dump
                    .read_phys(crash_notes_paddr(&truth, f, cpu), &mut buf)
                    .unwrap_or_else(|e| panic!("{name}: CPU {cpu} buffer: {e}"));
                assert_eq!(
                    crash_note::parse(&buf),
                    Ok(CrashNote::Empty),
                    "{name}: CPU {cpu}"
                );
            }
        }
        if f["kind"] == "qemu-dump-guest-memory" {
            assert!(v.exact, "{name}: QEMU numbers its vCPUs exactly");
            assert!(v.rows.iter().all(|r| r.source == NumberSource::QemuPrPid));
        }
    }
}

#[test]
fn the_wedged_cpu_spins_with_interrupts_masked_in_qemus_view() {
    let (dir, truth) = dumps();
    let f = files(&truth)
        .into_iter()
        .find(|f| f["kind"] == "qemu-dump-guest-memory" && f["wedged_cpu"].is_u64())
        .expect("a QEMU dump taken while a CPU was wedged");
    let cpu = f["wedged_cpu"].as_u64().expect("wedged_cpu") as u32;
    let path = dir.join(f["file"].as_str().expect("file"));
    let an = Analysis::open(&path, &Options::default()).expect("opens");
    let v = an.verdict();
    let row = v
        .rows
        .iter()
        .find(|r| r.cpu == cpu)
        .expect("wedged CPU row");
    let regs = row.prstatus.expect("registers").regs();
    let ps = crash_payload::prstatus::Pstate::decode(regs.pstate);
    assert_eq!(ps.el, Some(1), "pstate {:#x}", regs.pstate);
    assert!(
        ps.i,
        "IRQs must be masked on the wedged CPU: pstate {:#x}",
        regs.pstate
    );
    let a = an.arm64.as_ref().expect("translation");
    assert!(
        a.is_module_addr(crash_payload::VirtAddr(regs.pc)),
        "the wedge loop lives in the test module: pc {:#x}",
        regs.pc
    );
}

#[test]
fn dmesg_is_byte_identical_to_vmcore_dmesg() {
    let (dir, truth) = dumps();
    let mut compared = 0;
    for f in files(&truth) {
        let Some(golden) = f["golden_dmesg_vmcore_dmesg"].as_str() else {
            continue;
        };
        let name = f["file"].as_str().expect("file");
        let an = Analysis::open(&dir.join(name), &Options::default()).expect("opens");
        let mut ours = an
            .log_lines()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .join("\n");
        ours.push('\n');
        let want = std::fs::read_to_string(dir.join(golden)).expect("golden");
        assert!(ours == want, "{name}: dmesg differs from {golden}");
        compared += 1;
    }
    assert!(compared >= 2, "only {compared} goldens compared");
}

fn vmcore(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmcore"))
        .args(args)
        .output()
        .expect("run vmcore")
}

fn file_of_kind(truth: &Value, kind: &str, wedged: bool) -> String {
    files(truth)
        .into_iter()
        .find(|f| f["kind"] == kind && f["wedged_cpu"].is_u64() == wedged && f["format"] == "elf")
        .and_then(|f| f["file"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no {kind} dump (wedged: {wedged})"))
}

#[test]
fn verify_exit_status_and_json() {
    let (dir, truth) = dumps();
    let wedged = dir.join(file_of_kind(&truth, "kdump-proc-vmcore", true));
    let plain = dir.join(file_of_kind(&truth, "kdump-proc-vmcore", false));

    let out = vmcore(&["verify", "--json", wedged.to_str().expect("utf8")]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(j["verdict"], "missing");
    assert_eq!(j["missing"], serde_json::json!([1]));
    let cpus = j["cpus"].as_array().expect("cpus array");
    let c1 = cpus.iter().find(|c| c["cpu"] == 1).expect("CPU 1");
    assert_eq!(c1["status"], "missing");
    assert!(c1["reason"]
        .as_str()
        .unwrap_or("")
        .starts_with("failed to stop"));
    assert_eq!(c1["source"], "inferred-log-failed-to-stop");
    assert_eq!(c1["inferred"], true);
    let c0 = cpus.iter().find(|c| c["cpu"] == 0).expect("CPU 0");
    assert_eq!(c0["status"], "captured");
    for k in [
        "pid",
        "pc",
        "pc_symbol",
        "lr",
        "lr_symbol",
        "sp",
        "pstate",
        "reason",
        "source",
    ] {
        assert!(c0.get(k).is_some(), "CPU 0 lacks {k}");
    }
    assert!(c0["pc"].as_str().unwrap_or("").starts_with("0x"));

    let out = vmcore(&["verify", plain.to_str().expect("utf8")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = vmcore(&["cpus", "--json", plain.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0));
    let j: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let pcs: Vec<String> = j["cpus"]
        .as_array()
        .expect("cpus")
        .iter()
        .map(|c| c["pc_symbol"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        pcs.iter().any(|s| s.starts_with("__crash_kexec+")),
        "panicking CPU's pc: {pcs:?}"
    );
}

#[test]
fn cost_does_not_grow_with_the_dump() {
    // verify reads headers, notes, a few translation pages and the log:
    // the same few hundred pages for a 2 GiB ELF as for a 23 MiB -d 31 file.
    let (dir, truth) = dumps();
    for f in files(&truth) {
        let name = f["file"].as_str().expect("file");
        let out = vmcore(&["verify", "--stats", dir.join(name).to_str().expect("utf8")]);
        let err = String::from_utf8_lossy(&out.stderr);
        let pages: u64 = err
            .split(" pages of")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no page count in {err:?}"));
        assert!(pages < 2000, "{name}: verify read {pages} pages");
    }
}

fn truncated_copy(src: &Path, len: u64, tag: &str) -> PathBuf {
    use std::io::{Read, Write};
    let dst = std::env::temp_dir().join(format!("vmcore-trunc-{}-{tag}-{len}", std::process::id()));
    let mut buf = vec![0u8; len as usize];
    std::fs::File::open(src)
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read");
    std::fs::File::create(&dst)
        .and_then(|mut f| f.write_all(&buf))
        .expect("write");
    dst
}

#[test]
fn truncated_real_dumps_are_refused_with_file_and_offset() {
    let (dir, truth) = dumps();
    for f in files(&truth) {
        let name = f["file"].as_str().expect("file");
        // Cuts inside the first header, just after it, and inside the notes.
        for len in [7u64, 40, 64, 100, 200, 700] {
            let t = truncated_copy(&dir.join(name), len, name);
            let out = vmcore(&["verify", t.to_str().expect("utf8")]);
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            let _ = std::fs::remove_file(&t);
            assert_eq!(out.status.code(), Some(2), "{name} cut at {len}: {err}");
            assert!(
                err.contains(t.to_str().expect("utf8")),
                "{name} cut at {len}: no file name: {err}"
            );
            assert!(
                err.contains("offset"),
                "{name} cut at {len}: no offset: {err}"
            );
        }
    }
}

/// The real System.map of the dumped kernel, from Debian's -dbg package
/// (tests/setup.sh unpacks it into the cache).
fn real_system_map(truth: &Value) -> PathBuf {
    let release = truth["kernel_release"].as_str().expect("kernel_release");
    let p = support::cache_dir().join(format!("dbg/root/usr/lib/debug/boot/System.map-{release}"));
    assert!(
        p.is_file(),
        "{} missing: tests/setup.sh unpacks it",
        p.display()
    );
    p
}

#[test]
fn data_symbols_from_the_real_system_map_number_cpus_exactly() {
    let (dir, truth) = dumps();
    let opts = Options {
        system_map: Some(real_system_map(&truth)),
        vmlinux: None,
        data_symbols_only: false,
    };
    for f in files(&truth) {
        if f["kind"] == "qemu-dump-guest-memory" {
            continue;
        }
        let name = f["file"].as_str().expect("file");
        let an = Analysis::open(&dir.join(name), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let v = an.verdict();
        assert_eq!(v.method, "data-symbols", "{name}: {v:?}");
        assert!(v.exact);
        let missing: Vec<u32> = v
            .rows
            .iter()
            .filter(|r| r.status == Status::Missing)
            .map(|r| r.cpu)
            .collect();
        assert_eq!(missing, cpus_of(&f["expected_missing"]), "{name}");
        for r in &v.rows {
            assert_eq!(r.source, NumberSource::DataSymbols);
        }
    }
}

#[test]
fn a_system_map_from_another_build_is_refused() {
    let (dir, truth) = dumps();
    let map = std::fs::read_to_string(real_system_map(&truth)).expect("read");
    // The same map with every address moved by 64 KiB: another build.
    let shifted: String = map
        .lines()
        .filter_map(|l| {
            let (a, rest) = l.split_once(' ')?;
            let a = u64::from_str_radix(a, 16).ok()?;
            Some(format!("{:016x} {rest}\n", a.wrapping_add(0x10000)))
        })
        .collect();
    let p = std::env::temp_dir().join(format!("vmcore-other-build-{}.map", std::process::id()));
    std::fs::write(&p, shifted).expect("write");
    let wedged = dir.join(file_of_kind(&truth, "kdump-proc-vmcore", true));
    let out = vmcore(&[
        "verify",
        "--system-map",
        p.to_str().expect("utf8"),
        wedged.to_str().expect("utf8"),
    ]);
    let _ = std::fs::remove_file(&p);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("different build"), "{err}");
}

#[test]
fn notes_buffers_are_found_in_memory_where_the_guest_said() {
    // The inference of last resort finds each note's original buffer by
    // content; on the real dumps it must land on the crash_notes addresses
    // sysfs reported in the guest before the panic.
    let (dir, truth) = dumps();
    let mut checked = 0;
    for f in files(&truth) {
        if f["kind"] != "kdump-proc-vmcore" {
            continue;
        }
        let name = f["file"].as_str().expect("file");
        let an = Analysis::open(&dir.join(name), &Options::default()).expect("opens");
        let v = an.verdict();
        let found = an.find_note_buffers(&an.notes.core);
        for r in v.rows.iter().filter(|r| r.status == Status::Captured) {
            let idx = r.note_index.expect("note index");
            assert_eq!(
                found[idx],
                Some(crash_notes_paddr(&truth, &f, r.cpu).get()),
                "{name}: CPU {} note {idx}",
                r.cpu
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} buffers checked");
}

#[test]
fn verify_with_the_real_system_map_keeps_only_what_it_needs() {
    // `verify` keeps from the map only the data symbols it reads and the
    // names the build check compares; the verdict is the exact one.
    let (dir, truth) = dumps();
    let map = real_system_map(&truth);
    for wedged in [true, false] {
        let f = dir.join(file_of_kind(&truth, "kdump-proc-vmcore", wedged));
        let out = vmcore(&[
            "verify",
            "--json",
            "--system-map",
            map.to_str().expect("utf8"),
            f.to_str().expect("utf8"),
        ]);
        assert_eq!(
            out.status.code(),
            Some(if wedged { 1 } else { 0 }),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(j["method"], "data-symbols");
        assert_eq!(j["exact"], true);
        assert_eq!(
            j["missing"],
            if wedged {
                serde_json::json!([1])
            } else {
                serde_json::json!([])
            }
        );
    }
}
