//! `vmcore`: show every CPU of an arm64 vmcore, and prove which were captured.
//!
//! Exit status: 0 success (verify: every expected CPU captured), 1 verify
//! found CPUs missing or could not establish the expected set, 2 unusable input.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;
use vmcore_tools::analyze::{Analysis, Options};
use vmcore_tools::cli::{self, Cli, Command, Common, Parsed, ProgressMode, SaveArgs};
use vmcore_tools::cpus::Verdict;
use vmcore_tools::report;
use vmcore_tools::save::{SaveOptions, Target};

fn open(c: &Common, data_symbols_only: bool) -> anyhow::Result<Analysis> {
    let opts = Options {
        system_map: c.system_map.clone(),
        vmlinux: c.vmlinux.clone(),
        data_symbols_only,
    };
    let an = Analysis::open(&c.dump, &opts)?;
    an.check_usable()?;
    Ok(an)
}

fn format_desc(an: &Analysis) -> String {
    an.dump.info().description.clone()
}

fn fmt_time(secs: i64) -> String {
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn info(an: &Analysis, v: &Verdict, json_out: bool, out: &mut dyn Write) -> io::Result<()> {
    let fi = an.dump.info();
    let vi = an.vmcoreinfo();
    let release = vi
        .as_ref()
        .and_then(|v| v.osrelease().map(str::to_string))
        .or_else(|| fi.release.clone());
    let page_size = vi
        .as_ref()
        .and_then(|v| v.page_size().and_then(Result::ok))
        .or(fi.page_size);
    let crashtime = vi.as_ref().and_then(|v| v.crashtime().and_then(Result::ok));
    let ranges = an.dump.ranges();
    let total: u64 = ranges.iter().map(|r| r.size).sum();
    if json_out {
        let j = json!({
            "file": an.path.display().to_string(),
            "format": fi.description,
            "container": fi.container,
            "arch": fi.arch,
            "release": release,
            "page_size": page_size,
            "dump_level": fi.dump_level,
            "crash_time": crashtime,
            "crash_time_utc": crashtime.map(fmt_time),
            "memory": ranges.iter().map(|r| json!({
                "start": format!("{:#x}", r.start.get()),
                "size": format!("{:#x}", r.size),
            })).collect::<Vec<_>>(),
            "memory_bytes": total,
            "translation": an.arm64.as_ref().map(|_| "ok").unwrap_or_else(|e| e.as_str()),
            "cpus_expected": v.expected,
            "cpus_captured": v.captured(),
            "cpu_numbering": v.method,
            "cpu_numbering_exact": v.exact,
            "cpu_map_note": an.notes.cpumap.as_ref().map(|r| r.is_ok()),
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&j).unwrap_or_default()
        )?;
        return Ok(());
    }
    writeln!(out, "file:          {}", an.path.display())?;
    writeln!(out, "format:        {}", fi.description)?;
    writeln!(out, "arch:          {}", fi.arch)?;
    writeln!(
        out,
        "kernel:        {}",
        release.as_deref().unwrap_or("unknown (no VMCOREINFO)")
    )?;
    match page_size {
        Some(p) => writeln!(out, "page size:     {p}")?,
        None => writeln!(out, "page size:     unknown")?,
    }
    if let Some(l) = fi.dump_level {
        writeln!(out, "dump level:    {l}")?;
    }
    match crashtime {
        Some(t) => writeln!(out, "crash time:    {} ({t})", fmt_time(t))?,
        None => writeln!(out, "crash time:    not recorded")?,
    }
    writeln!(
        out,
        "memory:        {} MiB in {} range{}",
        total >> 20,
        ranges.len(),
        if ranges.len() == 1 { "" } else { "s" }
    )?;
    for r in ranges.iter().take(16) {
        writeln!(
            out,
            "               {:#014x}-{:#014x} ({} MiB)",
            r.start.get(),
            r.start.get().saturating_add(r.size).saturating_sub(1),
            r.size >> 20
        )?;
    }
    if ranges.len() > 16 {
        writeln!(out, "               … {} more", ranges.len() - 16)?;
    }
    if let Err(e) = &an.arm64 {
        writeln!(out, "translation:   unavailable: {e}")?;
    }
    writeln!(
        out,
        "CPU-map note:  {}",
        match &an.notes.cpumap {
            Some(Ok(m)) => format!("present ({} CPUs)", m.len()),
            Some(Err(e)) => format!("unusable: {e}"),
            None => "absent (crash kernel not loaded by kexec-rs)".to_string(),
        }
    )?;
    match v.expected {
        Some(e) => writeln!(
            out,
            "CPUs:          {} expected, {} captured (numbering: {}, {})",
            e,
            v.captured(),
            v.method,
            if v.exact { "exact" } else { "inferred" }
        )?,
        None => writeln!(
            out,
            "CPUs:          {} register notes; expected set unknown",
            v.captured()
        )?,
    }
    Ok(())
}

fn save(a: &SaveArgs) -> anyhow::Result<u8> {
    let to_stdout = a.output.as_ref().is_none_or(|p| p.as_os_str() == "-");
    let target = match (&a.output, a.flat) {
        (_, true) if to_stdout => Target::FlatStdout,
        (Some(p), true) => Target::FlatFile(p.clone()),
        (Some(p), false) if !to_stdout => Target::File(p.clone()),
        _ => anyhow::bail!(
            "save: give an OUTPUT file (only the flattened stream, -F, goes to standard output)"
        ),
    };
    let dump = vmcore_tools::format::open(&a.dump)?;
    let progress = match a.progress {
        ProgressMode::Always => true,
        ProgressMode::Never => false,
        ProgressMode::Auto => io::stderr().is_terminal(),
    };
    let jobs = a.jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let opts = SaveOptions {
        levels: a.dump_level.0.clone(),
        compression: a.compress,
        jobs,
        progress,
        device_limit: None,
    };
    let s = vmcore_tools::save::save(dump.as_ref(), &target, &opts)?;
    if a.json {
        let text = serde_json::to_string_pretty(&s)?;
        if target == Target::FlatStdout {
            eprintln!("{text}");
        } else {
            let mut out = io::stdout().lock();
            writeln!(out, "{text}")?;
            out.flush()?;
        }
    } else {
        vmcore_tools::save::print_summary(&mut io::stderr().lock(), &s)?;
    }
    Ok(if s.complete { 0 } else { 1 })
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Command::Save(a) = &cli.command {
        return save(a);
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let start = Instant::now();
    let (code, an) = match &cli.command {
        Command::Info { common, json } => {
            let an = open(common, false)?;
            let v = an.verdict();
            info(&an, &v, *json, &mut out)?;
            (0, an)
        }
        Command::Cpus { common, json } => {
            let an = open(common, false)?;
            let v = an.verdict();
            let sym = an.symbolizer();
            if *json {
                let j = report::verdict_json(
                    &an.path.display().to_string(),
                    &format_desc(&an),
                    &v,
                    &sym,
                );
                writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
            } else {
                report::print_cpus(&mut out, &v, &sym)?;
            }
            (0, an)
        }
        Command::Verify { common, json } => {
            let an = open(common, true)?;
            let v = an.verdict();
            if *json {
                let j = report::verdict_json(
                    &an.path.display().to_string(),
                    &format_desc(&an),
                    &v,
                    &report::NoSymbols,
                );
                writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
            } else {
                report::print_verify(&mut out, &v)?;
            }
            (if v.all_captured() { 0 } else { 1 }, an)
        }
        Command::Save(_) => return Ok(2),
        Command::Dmesg { common } => {
            let an = open(common, false)?;
            let lines = an
                .log_lines()
                .map_err(|e| anyhow::anyhow!("{}: {e}", an.path.display()))?;
            for l in lines {
                writeln!(out, "{l}")?;
            }
            (0, an)
        }
    };
    out.flush()?;
    let stats = match &cli.command {
        Command::Info { common, .. }
        | Command::Cpus { common, .. }
        | Command::Verify { common, .. }
        | Command::Dmesg { common } => common.stats,
        Command::Save(_) => false,
    };
    if stats {
        eprintln!(
            "vmcore: {:.3} ms, {} pages of {} read",
            start.elapsed().as_secs_f64() * 1e3,
            an.dump.source().pages_touched(),
            an.path.display()
        );
    }
    Ok(code)
}

/// The error and its causes, `: `-separated, leaving out a cause whose text
/// an outer message already quotes (the library's errors name their cause).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out
}

fn main() -> ExitCode {
    // Without it a mapped input that cannot be read would kill the
    // process with SIGBUS (and no word of which file).
    if let Err(e) = vmcore_tools::sigbus::install() {
        eprintln!("vmcore: warning: no SIGBUS handler: {e}");
    }
    let cli = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(cli)) => cli,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("{}", cli::version());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vmcore: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(io) = e.downcast_ref::<io::Error>() {
                if io.kind() == io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("vmcore: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}
