//! Text and JSON renderings of a [`Verdict`]. Printers take the verdict, a
//! symbolizer and a writer; they do no I/O of their own.

use std::io::{self, Write};

use crash_payload::prstatus::{ElfPrstatus, Pstate};
use serde_json::{json, Value};

use crate::cpus::{CpuRow, Status, UnnumberedNote, Verdict};

/// Turns an address into `name+0xoff/0xsize`, if it can.
pub trait Symbolize {
    /// The symbol for `addr`.
    fn symbolize(&self, addr: u64) -> Option<String>;
    /// Removes pointer-authentication bits from a return address.
    fn strip_pac(&self, addr: u64) -> u64 {
        addr
    }
}

/// A symbolizer that knows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSymbols;

impl Symbolize for NoSymbols {
    fn symbolize(&self, _addr: u64) -> Option<String> {
        None
    }
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// `EL1h DAIF` style summary of a PSTATE.
pub fn pstate_summary(v: u64) -> String {
    let p = Pstate::decode(v);
    let mut masks = String::new();
    for (on, c) in [(p.d, 'D'), (p.a, 'A'), (p.i, 'I'), (p.f, 'F')] {
        masks.push(if on { c } else { '-' });
    }
    format!("{} {}", p.mode_name(), masks)
}

fn regs_json(pr: Option<&ElfPrstatus>, sym: &dyn Symbolize) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    match pr {
        Some(pr) => {
            let r = pr.regs();
            let lr = sym.strip_pac(r.lr());
            let p = Pstate::decode(r.pstate);
            m.insert("pid".into(), json!(pr.pr_pid));
            m.insert("pc".into(), json!(hex(r.pc)));
            m.insert("pc_symbol".into(), json!(sym.symbolize(r.pc)));
            m.insert("lr".into(), json!(hex(lr)));
            m.insert("lr_symbol".into(), json!(sym.symbolize(lr)));
            m.insert("sp".into(), json!(hex(r.sp)));
            m.insert("fp".into(), json!(hex(r.fp())));
            m.insert("pstate".into(), json!(hex(r.pstate)));
            m.insert(
                "pstate_decoded".into(),
                json!({
                    "el": p.el, "sp": if p.sp_elx { "SP_ELx" } else { "SP_EL0" },
                    "mode": p.mode_name(), "d": p.d, "a": p.a, "i": p.i, "f": p.f,
                }),
            );
        }
        None => {
            for k in ["pid", "pc", "pc_symbol", "lr", "lr_symbol", "sp", "fp", "pstate", "pstate_decoded"] {
                m.insert(k.into(), Value::Null);
            }
        }
    }
    m
}

fn row_json(r: &CpuRow, sym: &dyn Symbolize) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("cpu".into(), json!(r.cpu));
    m.insert("status".into(), json!(r.status));
    m.insert("reason".into(), json!(r.reason));
    m.insert("source".into(), json!(r.source));
    m.insert("inferred".into(), json!(r.source.is_inferred()));
    m.insert("note_index".into(), json!(r.note_index));
    m.extend(regs_json(r.prstatus.as_ref(), sym));
    Value::Object(m)
}

fn unnumbered_json(u: &UnnumberedNote, sym: &dyn Symbolize) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("cpu".into(), Value::Null);
    m.insert(
        "status".into(),
        json!(if u.implausible.is_none() { "captured" } else { "missing" }),
    );
    m.insert("reason".into(), json!(u.implausible));
    m.insert("source".into(), json!("unknown"));
    m.insert("note_index".into(), json!(u.note.index));
    m.insert("note_file_offset".into(), json!(hex(u.note.file_offset)));
    m.extend(regs_json(u.note.prstatus.as_ref().ok(), sym));
    Value::Object(m)
}

/// One word for the outcome: `all-captured`, `missing`, or `unknown` (the
/// expected set could not be established).
pub fn verdict_word(v: &Verdict) -> &'static str {
    if v.expected.is_none() {
        "unknown"
    } else if v.all_captured() {
        "all-captured"
    } else {
        "missing"
    }
}

/// The JSON object `cpus --json` and `verify --json` print.
pub fn verdict_json(file: &str, format: &str, v: &Verdict, sym: &dyn Symbolize) -> Value {
    let missing: Vec<u32> = v
        .rows
        .iter()
        .filter(|r| r.status == Status::Missing)
        .map(|r| r.cpu)
        .collect();
    json!({
        "file": file,
        "format": format,
        "verdict": verdict_word(v),
        "method": v.method,
        "exact": v.exact,
        "expected": v.expected,
        "captured": v.captured(),
        "missing": missing,
        "not_expected": v.not_expected,
        "cpus": v.rows.iter().map(|r| row_json(r, sym))
            .chain(v.unnumbered.iter().map(|u| unnumbered_json(u, sym)))
            .collect::<Vec<_>>(),
        "remarks": v.remarks,
    })
}

fn sym_or_hex(sym: &dyn Symbolize, a: u64) -> String {
    match sym.symbolize(a) {
        Some(s) => format!("{a:#x} {s}"),
        None => format!("{a:#x}"),
    }
}

fn print_regs_line(out: &mut dyn Write, cpu: &str, status: &str, pr: Option<&ElfPrstatus>, source: &str, sym: &dyn Symbolize) -> io::Result<()> {
    match pr {
        Some(pr) => {
            let r = pr.regs();
            writeln!(
                out,
                "{cpu:<4} {status:<9} {:<7} pc {:<50} {source}",
                pr.pr_pid,
                sym_or_hex(sym, r.pc)
            )?;
            writeln!(out, "{:<22} lr {}", "", sym_or_hex(sym, sym.strip_pac(r.lr())))?;
            writeln!(out, "{:<22} sp {:#x}  pstate {:#x} {}", "", r.sp, r.pstate, pstate_summary(r.pstate))?;
        }
        None => writeln!(out, "{cpu:<4} {status:<9} {:<7} {:<53} {source}", "-", "")?,
    }
    Ok(())
}

/// The `cpus` table.
pub fn print_cpus(out: &mut dyn Write, v: &Verdict, sym: &dyn Symbolize) -> io::Result<()> {
    writeln!(out, "{:<4} {:<9} {:<7} {:<53} NUMBERED BY", "CPU", "STATUS", "PID", "REGISTERS")?;
    for r in &v.rows {
        let status = match r.status {
            Status::Captured => "captured",
            Status::Missing => "missing",
        };
        let src = serde_json::to_value(r.source)
            .ok()
            .and_then(|s| s.as_str().map(str::to_string))
            .unwrap_or_default();
        print_regs_line(out, &r.cpu.to_string(), status, r.prstatus.as_ref(), &src, sym)?;
        if let Some(reason) = &r.reason {
            writeln!(out, "{:<22} {reason}", "")?;
        }
    }
    for u in &v.unnumbered {
        let status = if u.implausible.is_none() { "captured" } else { "missing" };
        print_regs_line(out, "?", status, u.note.prstatus.as_ref().ok(), &format!("unknown (note {})", u.note.index), sym)?;
        if let Some(why) = &u.implausible {
            writeln!(out, "{:<22} registers implausible: {why}", "")?;
        }
    }
    print_summary(out, v)
}

/// The `verify` report: the summary and each missing CPU with its reason.
pub fn print_verify(out: &mut dyn Write, v: &Verdict) -> io::Result<()> {
    for r in &v.rows {
        if r.status == Status::Missing {
            writeln!(
                out,
                "CPU {}: missing: {}",
                r.cpu,
                r.reason.as_deref().unwrap_or("no register note")
            )?;
        }
    }
    for u in &v.unnumbered {
        if let Some(why) = &u.implausible {
            writeln!(out, "note {} (CPU unknown): registers implausible: {why}", u.note.index)?;
        }
    }
    print_summary(out, v)
}

fn print_summary(out: &mut dyn Write, v: &Verdict) -> io::Result<()> {
    let how = if v.exact { "exact" } else { "INFERRED" };
    match v.expected {
        Some(e) => writeln!(
            out,
            "{}: {} of {} expected CPUs captured (CPU numbers: {}, {})",
            verdict_word(v),
            v.captured(),
            e,
            v.method,
            how
        )?,
        None => writeln!(
            out,
            "unknown: {} register notes, but which CPUs were expected cannot be established",
            v.captured()
        )?,
    }
    if !v.not_expected.is_empty() {
        let l: Vec<String> = v.not_expected.iter().map(|c| c.to_string()).collect();
        writeln!(out, "offline before the crash (not expected): {}", l.join(","))?;
    }
    for r in &v.remarks {
        writeln!(out, "note: {r}")?;
    }
    Ok(())
}
