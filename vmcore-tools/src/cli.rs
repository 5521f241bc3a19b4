//! The `vmcore` command line (in the library so the man-page test can see
//! every option).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
}
