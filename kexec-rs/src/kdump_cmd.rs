//! `kexec-rs kdump …`: the service commands (the binary's edge; the logic
//! is in the library's `kdump` module).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use kexec_rs::kdump::capture::{self, Outcome, RealEnv};
use kexec_rs::kdump::config::{Config, DEFAULT_PATH};
use kexec_rs::kdump::estimate::{estimate, render as render_estimate, Estimate};
use kexec_rs::kdump::start::{self, Step};
use kexec_rs::kdump::status::{self, verdict};
use kexec_rs::kdump::{capture_jobs, estimate_inputs, prepare, Prepared};
use kexec_rs::plan::{plan_kexec_load, LoadKind, LoadRequest};
use kexec_rs::source::{gather, lockdown_mode, FsSource, HostSource, Need, PROC_CMDLINE};
use kexec_rs::sys::linux::LinuxSys;

/// `kdump` arguments.
#[derive(Debug, clap::Args)]
pub struct KdumpArgs {
    /// The config file (default /etc/kexec-rs/kdump.toml, under --sysroot when given).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Read /proc, /sys, /boot, /lib/modules and the files the config names under DIR
    /// (a captured tree; status, estimate, initramfs and start --dry-run only).
    #[arg(long, value_name = "DIR", global = true)]
    sysroot: Option<PathBuf>,
    #[command(subcommand)]
    cmd: KdumpCmd,
}

#[derive(Debug, Subcommand)]
enum KdumpCmd {
    /// Load the crash kernel, enable crash_kexec_post_notifiers and load sdei-stop.ko when needed.
    Start {
        /// Print what would be done; do nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Unload the crash kernel (sdei-stop.ko stays loaded).
    Stop,
    /// Say whether a crash now captures every CPU; exit 0 if so, 3 if not.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Estimate the crashkernel= reservation the configured crash kernel needs.
    Estimate {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Crash the machine now (sysrq c) to test the setup.
    Test {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Save /proc/vmcore as configured (in the crash kernel).
    Save {
        /// Act as the capture initramfs's /init (PID 1): mount /proc, /sys, /dev, load modules, end with the final action.
        #[arg(long)]
        init: bool,
    },
    /// Build the capture initramfs and write it to a file.
    Initramfs {
        /// Where to write it.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
    },
}

impl KdumpArgs {
    /// The arguments of the capture initramfs's `/init`: `save --init` with
    /// the config the initramfs carries.
    pub fn capture_init() -> Self {
        KdumpArgs {
            config: Some(PathBuf::from(DEFAULT_PATH)),
            sysroot: None,
            cmd: KdumpCmd::Save { init: true },
        }
    }
}

fn source(sysroot: &Option<PathBuf>) -> FsSource {
    sysroot
        .as_ref()
        .map_or_else(FsSource::live, FsSource::under)
}

/// The config and its text: `--config` as given, else the default path
/// through the source (so under `--sysroot`).
fn load_config(a: &KdumpArgs, src: &dyn HostSource) -> Result<(Config, String)> {
    let (name, text) = match &a.config {
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => {
            let b = src
                .read(DEFAULT_PATH, 1 << 20)
                .with_context(|| format!("reading {DEFAULT_PATH} (see kdump.toml(5))"))?;
            (
                DEFAULT_PATH.to_string(),
                String::from_utf8(b).with_context(|| format!("{DEFAULT_PATH}: not UTF-8"))?,
            )
        }
    };
    Ok((Config::parse(&name, &text)?, text))
}

fn self_exe() -> Result<Vec<u8>> {
    std::fs::read("/proc/self/exe").context(
        "reading /proc/self/exe (the kexec-rs binary that becomes the capture initramfs's /init)",
    )
}

fn prepared(a: &KdumpArgs, src: &dyn HostSource) -> Result<(Config, Prepared, String)> {
    let (cfg, text) = load_config(a, src)?;
    let exe = self_exe()?;
    let p = prepare(&cfg, &text, src, ("/proc/self/exe", &exe))?;
    let running = src
        .read(PROC_CMDLINE, 1 << 16)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let line = cfg.crash_cmdline(&running);
    Ok((cfg, p, line))
}

fn estimate_for(src: &dyn HostSource, p: &Prepared, line: &str) -> Estimate {
    estimate(&estimate_inputs(p, src, capture_jobs(line)))
}

/// Runs `kexec-rs kdump …`.
pub fn run(a: KdumpArgs) -> Result<ExitCode> {
    let live = a.sysroot.is_none();
    let src = source(&a.sysroot);
    let host = std::env::consts::ARCH;
    match &a.cmd {
        KdumpCmd::Status { json } => {
            let facts = status::gather(&src);
            let est = prepared(&a, &src)
                .map(|(_, p, line)| estimate_for(&src, &p, &line).rounded)
                .map_err(|e| format!("{e:#}"));
            let v = verdict(facts, est);
            if *json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", status::render(&v));
            }
            Ok(ExitCode::from(if v.all_cpus { 0 } else { 3 }))
        }
        KdumpCmd::Estimate { json } => {
            let (_, p, line) = prepared(&a, &src)?;
            let e = estimate_for(&src, &p, &line);
            if *json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!(
                    "kernel {} ({} bytes), initramfs {} ({} bytes){}",
                    p.kernel_path,
                    p.kernel.raw.len(),
                    p.initrd_from,
                    p.initrd.len(),
                    if p.module_names.is_empty() {
                        String::new()
                    } else {
                        format!(", modules {}", p.module_names.join(" "))
                    }
                );
                print!("{}", render_estimate(&e));
                let have = status::gather(&src).reservation;
                if have > 0 {
                    println!(
                        "reserved now: {} MiB{}",
                        have >> 20,
                        if have < e.rounded { " (too small)" } else { "" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KdumpCmd::Initramfs { output } => {
            let (_, p, _) = prepared(&a, &src)?;
            if p.initrd_from != "built" {
                bail!(
                    "kernel.initrd is {}: nothing to build (set initrd = \"build\")",
                    p.initrd_from
                );
            }
            std::fs::write(output, &p.initrd)
                .with_context(|| format!("writing {}", output.display()))?;
            println!(
                "{}: {} bytes (cpio {} bytes), modules: {}",
                output.display(),
                p.initrd.len(),
                p.initrd_unpacked.0,
                p.module_names.join(" ")
            );
            Ok(ExitCode::SUCCESS)
        }
        KdumpCmd::Start { dry_run } => {
            if !live && !dry_run {
                bail!("--sysroot only with start --dry-run");
            }
            let (cfg, p, line) = prepared(&a, &src)?;
            let facts = status::gather(&src);
            let hf = gather(&src, Need::Crash, None)?;
            let req = LoadRequest {
                kind: LoadKind::Crash,
                kernel: &p.kernel,
                initrd: Some(&p.initrd),
                cmdline: &line,
                seeds: crate::seeds()?,
            };
            let purgatory = kexec_rs::purgatory::default_purgatory().map_err(anyhow::Error::msg)?;
            let plan = plan_kexec_load(&hf, &req, purgatory.as_ref())?;
            let sp = start::plan_start(&facts, cfg.kernel.crash_kexec_post_notifiers, &cfg.sdei());
            // Read the module before doing anything, so a missing file fails a start that did nothing.
            let module = match sp.steps.iter().find_map(|s| {
                if let Step::LoadSdeiModule { path } = s {
                    Some(path)
                } else {
                    None
                }
            }) {
                Some(path) => Some(src.read(path, 64 << 20).with_context(|| {
                    format!("reading {path} (kernel.sdei; \"off\" to go without the SDEI rung)")
                })?),
                None => None,
            };
            let e = estimate_for(&src, &p, &line);
            if facts.reservation < e.rounded {
                eprintln!("kexec-rs kdump: warning: the reservation ({} MiB) is under the estimate ({}); see `kexec-rs kdump estimate`", facts.reservation >> 20, e.crashkernel);
            }
            let describe = |s: &Step| match s {
                Step::LoadCrashKernel => format!(
                    "load the crash kernel {} with initramfs {} ({} bytes), cmdline: {line}",
                    p.kernel_path,
                    p.initrd_from,
                    p.initrd.len()
                ),
                Step::EnablePostNotifiers => {
                    "write 1 to /sys/module/kernel/parameters/crash_kexec_post_notifiers"
                        .to_string()
                }
                Step::LoadSdeiModule { path } => format!("load {path}"),
            };
            if *dry_run {
                for s in &sp.steps {
                    println!("would {}", describe(s));
                }
                for s in &sp.skipped {
                    println!("skip {s}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            start::run_start(
                &mut LinuxSys,
                &sp,
                &plan,
                module.as_deref(),
                host,
                lockdown_mode(&src),
            )?;
            for s in &sp.steps {
                println!("done: {}", describe(s));
            }
            for s in &sp.skipped {
                println!("skipped: {s}");
            }
            Ok(ExitCode::SUCCESS)
        }
        KdumpCmd::Stop => {
            if !live {
                bail!("--sysroot is not for stop");
            }
            start::run_stop(&mut LinuxSys, host, lockdown_mode(&src))?;
            println!("crash kernel unloaded (sdei-stop.ko, if loaded, stays: rmmod sdei_stop removes it)");
            Ok(ExitCode::SUCCESS)
        }
        KdumpCmd::Test { yes } => {
            if !live {
                bail!("--sysroot is not for test");
            }
            start::confirm(*yes, std::io::stdin().is_terminal(), || {
                eprint!("This crashes the machine now (sysrq c). Type `crash` to go on: ");
                let _ = std::io::stderr().flush();
                let mut s = String::new();
                std::io::stdin().lock().read_line(&mut s).ok().map(|_| s)
            })?;
            start::run_test(&mut LinuxSys).map_err(anyhow::Error::msg)?;
            bail!("wrote c to /proc/sysrq-trigger but the machine is still up (is CONFIG_MAGIC_SYSRQ on?)");
        }
        KdumpCmd::Save { init } => {
            if !live {
                bail!("--sysroot is not for save");
            }
            Ok(save(&a, *init))
        }
    }
}

/// The capture sequence; as PID 1 it never returns.
pub fn save(a: &KdumpArgs, pid1: bool) -> ExitCode {
    let mut sys = LinuxSys;
    let mut env = RealEnv;
    if pid1 {
        capture::CaptureEnv::say(
            &mut env,
            &format!(
                "capture init (kexec-rs {}) starting",
                env!("CARGO_PKG_VERSION")
            ),
        );
        capture::pid1_setup(&mut sys, &mut env);
    }
    let cfg_path = a
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    let cfg = Config::load(&cfg_path);
    let (outcome, action) = match &cfg {
        Ok(cfg) => (
            capture::save(&mut sys, &mut env, cfg, &capture::vmcore_program(cfg, pid1)),
            Some(cfg.save.final_action),
        ),
        Err(e) => (Outcome::NotRun(e.to_string()), None),
    };
    let msg = match &outcome {
        Outcome::Complete => "dump saved".to_string(),
        Outcome::Failed(c) => format!("not saved: {}", capture::exit_text(*c)),
        Outcome::NotRun(w) => format!("not saved: {w}"),
    };
    capture::CaptureEnv::say(&mut env, &msg);
    if pid1 {
        let action = action.unwrap_or(kexec_rs::kdump::config::FinalAction::Reboot);
        capture::pid1_finish(&mut sys, &mut env, action);
        // PID 1 must not exit (the kernel would panic): wait for the operator.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    ExitCode::from(if outcome == Outcome::Complete { 0 } else { 1 })
}

/// True when this process is the capture initramfs's `/init`.
pub fn is_capture_init() -> bool {
    std::process::id() == 1
        && std::env::args_os()
            .next()
            .is_some_and(|a| std::path::Path::new(&a).file_name() == Some("init".as_ref()))
}
