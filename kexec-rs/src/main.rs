//! `kexec-rs`: kexec-tools' everyday interface on top of the kexec-rs library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Parser, Subcommand};
use kexec_rs::image::{probe, KernelImage};
use kexec_rs::plan::{plan_kexec_load, render, LoadKind, LoadRequest, Seeds, RNG_SEED_SIZE};
use kexec_rs::source::{gather, lockdown_mode, read_status, FsSource, HostSource, Need};
use kexec_rs::sys::linux::LinuxSys;
use kexec_rs::sys::KexecSys;
use kexec_rs::{act, cmdline, hex};

mod kdump_cmd;

/// Load a kernel (or a crash kernel) to boot later with kexec.
#[derive(Debug, Parser)]
#[command(name = "kexec-rs", version, args_conflicts_with_subcommands = true)]
#[command(group(ArgGroup::new("action").args(["load", "exec"]).multiple(false)))]
#[command(group(ArgGroup::new("syscall").args(["file_syscall", "load_syscall", "auto_syscall"]).multiple(false)))]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Load KERNEL to boot later with -e.
    #[arg(short = 'l', long = "load", conflicts_with_all = ["load_panic", "unload"])]
    load: bool,
    /// Load KERNEL as the crash (panic) kernel.
    #[arg(short = 'p', long = "load-panic")]
    load_panic: bool,
    /// Unload the loaded kernel (the crash kernel with -p).
    #[arg(short = 'u', long = "unload", conflicts_with_all = ["exec", "status", "kernel"])]
    unload: bool,
    /// Reboot into the loaded kernel now (no shutdown).
    #[arg(short = 'e', long = "exec")]
    exec: bool,
    /// Use kexec_file_load only.
    #[arg(short = 's', long = "kexec-file-syscall")]
    file_syscall: bool,
    /// Use kexec_load only.
    #[arg(short = 'c', long = "kexec-syscall")]
    load_syscall: bool,
    /// Try kexec_file_load, fall back to kexec_load (the default).
    #[arg(short = 'a', long = "kexec-syscall-auto")]
    auto_syscall: bool,
    /// The initramfs for the new kernel.
    #[arg(long = "initrd", visible_alias = "ramdisk", value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// Append STRING to the new kernel's command line.
    #[arg(long = "append", visible_alias = "command-line", value_name = "STRING")]
    append: Option<String>,
    /// Start from the running kernel's command line (drops BOOT_IMAGE=, and crashkernel= for -p).
    #[arg(long = "reuse-cmdline")]
    reuse_cmdline: bool,
    /// Use this DTB instead of /sys/firmware/fdt.
    #[arg(long = "dtb", value_name = "FILE")]
    dtb: Option<PathBuf>,
    /// Exit 1 if the kernel (crash by default, -l for the normal one) is loaded, 0 if not (kexec-tools' codes).
    #[arg(short = 'S', long = "status")]
    status: bool,
    /// Compute and print the plan; load nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Print plans and status as JSON.
    #[arg(long = "json")]
    json: bool,
    /// Read /proc and /sys under DIR instead of / (a captured tree; only with --dry-run).
    #[arg(long = "sysroot", value_name = "DIR", requires = "dry_run")]
    sysroot: Option<PathBuf>,
    /// The kernel image: Image, Image.gz, EFI zboot, UKI or vmlinux.
    #[arg(value_name = "KERNEL")]
    kernel: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Show what is loaded; exit 0 if the crash kernel (or with --normal, the kexec kernel) is loaded, 3 if not.
    Status {
        /// Ask about the kernel loaded with -l instead of the crash kernel.
        #[arg(long)]
        normal: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Read /sys under DIR instead of /.
        #[arg(long, value_name = "DIR")]
        sysroot: Option<PathBuf>,
    },
    /// The kdump service: start, stop, status, estimate, test, save (see kdump.toml(5)).
    Kdump(kdump_cmd::KdumpArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    File,
    Load,
    Auto,
}

fn source(sysroot: &Option<PathBuf>) -> FsSource {
    sysroot
        .as_ref()
        .map_or_else(FsSource::live, FsSource::under)
}

fn read_file(p: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading the {what} {}", p.display()))
}

fn seeds() -> Result<Seeds> {
    let mut k = [0u8; 8];
    let mut rng = [0u8; RNG_SEED_SIZE];
    getrandom::fill(&mut k).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    getrandom::fill(&mut rng).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    Ok(Seeds {
        kaslr: u64::from_le_bytes(k),
        rng,
    })
}

fn main() -> ExitCode {
    if kdump_cmd::is_capture_init() {
        let args = kdump_cmd::KdumpArgs::capture_init();
        return kdump_cmd::save(&args, true);
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kexec-rs: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(Cmd::Kdump(a)) = cli.cmd {
        return kdump_cmd::run(a);
    }
    if let Some(Cmd::Status {
        normal,
        json,
        sysroot,
    }) = &cli.cmd
    {
        let st = read_status(&source(sysroot))?;
        if *json {
            println!("{}", serde_json::to_string_pretty(&st)?);
        } else {
            println!(
                "kexec kernel: {}",
                if st.loaded { "loaded" } else { "not loaded" }
            );
            println!(
                "crash kernel: {}",
                if st.crash_loaded {
                    "loaded"
                } else {
                    "not loaded"
                }
            );
            if let Some(n) = st.crash_size {
                println!("crash reservation: {n} bytes ({} MiB)", n >> 20);
            }
        }
        let yes = if *normal { st.loaded } else { st.crash_loaded };
        return Ok(ExitCode::from(if yes { 0 } else { 3 }));
    }
    let src = source(&cli.sysroot);
    let kind = if cli.load {
        LoadKind::Normal
    } else {
        LoadKind::Crash
    };
    if cli.status {
        let st = read_status(&src)?;
        let yes = if kind == LoadKind::Normal {
            st.loaded
        } else {
            st.crash_loaded
        };
        return Ok(ExitCode::from(u8::from(yes)));
    }
    let method = if cli.file_syscall {
        Method::File
    } else if cli.load_syscall || (kind == LoadKind::Crash && !cli.auto_syscall) {
        // A crash kernel goes through kexec_load unless asked otherwise:
        // only there does kexec-rs write the elfcorehdr, with the CPU-map
        // note that lets `vmcore verify` name every CPU, and its own
        // verifying purgatory. kexec_file_load would build the kernel's own.
        Method::Load
    } else {
        Method::Auto
    };
    let host = std::env::consts::ARCH;
    let mut sys = LinuxSys;
    if cli.exec {
        act::exec(&mut sys)?;
        return Ok(ExitCode::SUCCESS);
    }
    if cli.unload {
        if cli.dry_run {
            println!(
                "would unload the {} kernel",
                if cli.load_panic { "crash" } else { "kexec" }
            );
            return Ok(ExitCode::SUCCESS);
        }
        let kind = if cli.load_panic {
            LoadKind::Crash
        } else {
            LoadKind::Normal
        };
        act::unload(
            &mut sys,
            kind,
            method == Method::File,
            host,
            lockdown_mode(&src),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if !(cli.load || cli.load_panic) {
        bail!("nothing to do: give -l or -p with a kernel, -u, -e, -S, or `status` (see kexec-rs --help)");
    }
    let Some(kpath) = cli.kernel.as_ref() else {
        bail!("-l/-p need a kernel image");
    };
    let kname = kpath.display().to_string();
    let kernel = probe(&kname, &read_file(kpath, "kernel")?)?;
    let initrd = match &cli.initrd {
        Some(p) => Some(read_file(p, "initrd")?),
        None => kernel.embedded_initrd.clone(),
    };
    let dtb = match &cli.dtb {
        Some(p) => Some((p.display().to_string(), read_file(p, "DTB")?)),
        None => None,
    };
    let need = if kind == LoadKind::Crash {
        Need::Crash
    } else {
        Need::Normal
    };
    let proc_cmdline = if cli.reuse_cmdline {
        Some(read_proc_cmdline(&src)?)
    } else {
        None
    };
    let reused = proc_cmdline
        .as_deref()
        .map(|c| cmdline::reuse(c, kind == LoadKind::Crash));
    let mut line = cmdline::build(reused.as_deref(), cli.append.as_deref());
    if line.is_empty() {
        if let Some(c) = &kernel.embedded_cmdline {
            line = c.clone();
        }
    }

    // With -a, --dry-run --json prints both plans as one JSON document (below).
    let mut file_plan_json = None;
    if method != Method::Load {
        let r = if cli.dry_run {
            if cli.json && method == Method::Auto {
                file_plan_json = Some(file_plan_value(kind, &kernel, initrd.as_deref(), &line));
            } else {
                print_file_plan(&cli, kind, &kernel, initrd.as_deref(), &line)?;
                if method == Method::File {
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!("kexec-rs: dry run: with -a, kexec_load below is the fallback if kexec_file_load is refused");
            }
            None
        } else {
            Some(act::load_file(
                &mut sys,
                kind,
                &kernel.raw,
                initrd.as_deref(),
                &line,
                lockdown_mode(&src),
            ))
        };
        match r {
            Some(Ok(())) => return Ok(ExitCode::SUCCESS),
            Some(Err(e)) if method == Method::Auto && e.falls_back() => {
                eprintln!("kexec-rs: {e}; falling back to kexec_load");
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }

    let facts = gather(
        &src,
        need,
        dtb.as_ref().map(|(n, b)| (n.as_str(), b.clone())),
    )?;
    let req = LoadRequest {
        kind,
        kernel: &kernel,
        initrd: initrd.as_deref(),
        cmdline: &line,
        seeds: seeds()?,
    };
    let purgatory = kexec_rs::purgatory::default_purgatory().map_err(anyhow::Error::msg)?;
    let plan = plan_kexec_load(&facts, &req, purgatory.as_ref())?;
    if cli.dry_run {
        if cli.json {
            let v = match file_plan_json {
                Some(f) => serde_json::json!({ "kexec_file_load": f, "kexec_load_fallback": plan }),
                None => serde_json::to_value(&plan)?,
            };
            emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
        } else {
            emit(&render(&plan))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    act::load_plan(
        &mut sys as &mut dyn KexecSys,
        &plan,
        host,
        lockdown_mode(&src),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Prints to stdout; a closed pipe (`| head`) ends output quietly.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn read_proc_cmdline(src: &dyn HostSource) -> Result<String> {
    let b = src
        .read(kexec_rs::source::PROC_CMDLINE, 1 << 16)
        .context("reading /proc/cmdline for --reuse-cmdline")?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// What `kexec_file_load` would be given, as JSON.
fn file_plan_value(
    kind: LoadKind,
    k: &KernelImage,
    initrd: Option<&[u8]>,
    line: &str,
) -> serde_json::Value {
    use sha2::Digest;
    serde_json::json!({
        "syscall": "kexec_file_load",
        "kind": kind,
        "kernel_containers": k.containers,
        "kernel_len": k.raw.len(),
        "kernel_sha256": hex(&sha2::Sha256::digest(&k.raw)),
        "initrd_len": initrd.map(<[u8]>::len),
        "initrd_sha256": initrd.map(|i| hex(&sha2::Sha256::digest(i))),
        "cmdline": line,
    })
}

fn print_file_plan(
    cli: &Cli,
    kind: LoadKind,
    k: &KernelImage,
    initrd: Option<&[u8]>,
    line: &str,
) -> Result<()> {
    use sha2::Digest;
    if cli.json {
        emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&file_plan_value(kind, k, initrd, line))?
        ))?;
    } else {
        let ksha = hex(&sha2::Sha256::digest(&k.raw));
        let isha = initrd.map(|i| hex(&sha2::Sha256::digest(i)));
        let initrd = match (initrd, isha) {
            (Some(i), Some(h)) => format!("initrd {} bytes sha256 {h}", i.len()),
            _ => "no initrd".to_string(),
        };
        emit(&format!(
            "kexec_file_load ({kind:?}): kernel {} bytes (raw Image from {:?}) sha256 {ksha}\n{initrd}\ncmdline: {line}\n",
            k.raw.len(),
            k.containers
        ))?;
    }
    Ok(())
}
