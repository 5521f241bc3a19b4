//! The `vmcore` command line (in the library so the man-page test can see
//! every option).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::save::filter::DumpLevel;
use crate::save::Compression;

/// Show every CPU of an arm64 vmcore, and prove which were captured.
#[derive(Debug, Parser)]
#[command(name = "vmcore", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The dump: a /proc/vmcore copy, makedumpfile output (ELF, kdump-compressed, flattened) or a QEMU dump.
    pub dump: PathBuf,
    /// Data symbols from a System.map of the same build (shifted by KERNELOFFSET).
    #[arg(long, value_name = "FILE")]
    pub system_map: Option<PathBuf>,
    /// Data and function symbols from a vmlinux of the same build.
    #[arg(long, value_name = "FILE")]
    pub vmlinux: Option<PathBuf>,
    /// Print wall time and pages of the dump read, to standard error.
    #[arg(long)]
    pub stats: bool,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Format, kernel, page size, crash time, memory ranges, CPUs expected and captured.
    Info {
        /// Shared options.
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One row per CPU: status, pid, pc and lr with symbols, sp, pstate.
    Cpus {
        /// Shared options.
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 when every expected CPU was captured, 1 when not, 2 when the input is unusable.
    Verify {
        /// Shared options.
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The kernel log, as vmcore-dmesg prints it.
    Dmesg {
        /// Shared options.
        #[command(flatten)]
        common: Common,
    },
    /// Write the dump as makedumpfile's kdump-compressed file (or flattened stream), filtered and compressed.
    Save(SaveArgs),
}

/// `vmcore save` options.
#[derive(Debug, Clone, Args)]
pub struct SaveArgs {
    /// The dump: /proc/vmcore, an ELF copy, makedumpfile output or a QEMU dump.
    pub dump: PathBuf,
    /// The kdump-compressed output (written as OUTPUT.part, renamed when complete); omitted or `-` with -F: standard output.
    pub output: Option<PathBuf>,
    /// makedumpfile dump level 0..31, or a comma list tried in order when the output device fills up.
    #[arg(short = 'd', long = "dump-level", value_name = "LIST", default_value = "31", value_parser = parse_levels)]
    pub dump_level: Levels,
    /// Page compression.
    #[arg(short = 'c', long = "compress", value_enum, default_value_t = Compression::Lzo)]
    pub compress: Compression,
    /// Write makedumpfile's flattened stream.
    #[arg(short = 'F', long = "flat")]
    pub flat: bool,
    /// Compression threads (default: available CPUs).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Progress bar on standard error.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Print the summary as JSON (on standard output, or standard error when the stream goes there).
    #[arg(long)]
    pub json: bool,
}

/// The `-d` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels(pub Vec<DumpLevel>);

/// Parses `1,17,31`.
pub fn parse_levels(s: &str) -> Result<Levels, String> {
    let mut v = Vec::new();
    for part in s.split(',') {
        let n: u32 = part
            .trim()
            .parse()
            .map_err(|_| format!("{part:?} is not a dump level (0..31)"))?;
        v.push(DumpLevel::new(n).map_err(|e| e.to_string())?);
    }
    Ok(Levels(v))
}

/// When to draw the progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// When standard error is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}
