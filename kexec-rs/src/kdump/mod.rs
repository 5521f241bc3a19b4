//! `kexec-rs kdump`: the kdump service on top of the loader, configured by
//! `/etc/kexec-rs/kdump.toml` ([`config`]).
//!
//! - `start` loads the crash kernel and the SDEI rung ([`start`]);
//! - `status` says whether a crash now captures every CPU ([`status`]);
//! - `estimate` sizes `crashkernel=` ([`estimate`]);
//! - the capture initramfs is built here ([`initramfs`], [`cpio`],
//!   [`modules`]) with kexec-rs itself as `/init`, which then runs the
//!   capture sequence ([`capture`]).

pub mod capture;
pub mod config;
pub mod cpio;
pub mod elf;
pub mod estimate;
pub mod initramfs;
pub mod modules;
pub mod start;
pub mod status;

use std::io::Read;

use crate::image::{probe, ImageError, KernelImage};
use crate::iomem::Iomem;
use crate::source::{HostSource, PROC_IOMEM};
use config::Config;
use estimate::EstimateInputs;

/// Why the crash kernel's inputs could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A file that could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The kernel image.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The modules.
    #[error(transparent)]
    Modules(#[from] modules::ModuleError),
    /// The initramfs.
    #[error(transparent)]
    Build(#[from] initramfs::BuildError),
    /// No release known.
    #[error("cannot tell the running kernel's release ({0} unreadable); set kernel.image and initramfs.modules_dir")]
    NoRelease(&'static str),
}

/// Everything loaded as the crash kernel.
#[derive(Debug)]
pub struct Prepared {
    /// The kernel file.
    pub kernel_path: String,
    /// The probed kernel.
    pub kernel: KernelImage,
    /// The initramfs bytes.
    pub initrd: Vec<u8>,
    /// Where the initramfs came from (a path or "built").
    pub initrd_from: String,
    /// Its unpacked size and whether that was measured.
    pub initrd_unpacked: (u64, bool),
    /// Sum of the module sizes in it (built ones only).
    pub modules_len: u64,
    /// The modules put in, in load order.
    pub module_names: Vec<String>,
}

/// The largest file read as a kernel or initramfs.
const MAX_FILE: usize = 1 << 30;

fn read(src: &dyn HostSource, path: &str) -> Result<Vec<u8>, PrepareError> {
    src.read(path, MAX_FILE)
        .map_err(|source| PrepareError::Read {
            path: path.to_string(),
            source,
        })
}

/// The running kernel's release.
pub fn release(src: &dyn HostSource) -> Option<String> {
    let b = src.read(status::PROC_OSRELEASE, 256).ok()?;
    let r = String::from_utf8_lossy(&b).trim().to_string();
    (!r.is_empty()).then_some(r)
}

/// The modules the built initramfs holds: the configured ones, and the
/// save file system's module when the index knows one by that name.
pub fn wanted_modules(cfg: &Config, ix: &modules::Index) -> Vec<String> {
    let mut v = cfg.initramfs.modules.clone();
    if let Some(fs) = &cfg.save.fstype {
        if ix.knows(fs)
            && !v
                .iter()
                .any(|m| modules::normalize(m) == modules::normalize(fs))
        {
            v.push(fs.clone());
        }
    }
    v
}

/// Reads the kernel and builds (or reads) the initramfs. `init` is the
/// running kexec-rs binary (`/proc/self/exe`), needed to build.
pub fn prepare(
    cfg: &Config,
    cfg_text: &str,
    src: &dyn HostSource,
    init: (&str, &[u8]),
) -> Result<Prepared, PrepareError> {
    let rel = release(src);
    let kpath = match (&cfg.kernel.image, &rel) {
        (Some(p), _) => p.display().to_string(),
        (None, Some(r)) => cfg.kernel_image(r).display().to_string(),
        (None, None) => return Err(PrepareError::NoRelease(status::PROC_OSRELEASE)),
    };
    let kernel = probe(&kpath, &read(src, &kpath)?)?;
    if cfg.kernel.initrd != "build" {
        let initrd = read(src, &cfg.kernel.initrd)?;
        let unpacked = unpacked_len(&initrd);
        return Ok(Prepared {
            kernel_path: kpath,
            kernel,
            initrd_from: cfg.kernel.initrd.clone(),
            initrd_unpacked: unpacked.map_or((initrd.len() as u64 * 4, false), |n| (n, true)),
            initrd,
            modules_len: 0,
            module_names: Vec::new(),
        });
    }
    let mdir = match (&cfg.initramfs.modules_dir, &rel) {
        (Some(p), _) => p.display().to_string(),
        (None, Some(r)) => cfg.modules_dir(r).display().to_string(),
        (None, None) => return Err(PrepareError::NoRelease(status::PROC_OSRELEASE)),
    };
    let ix = modules::Index::read(src, &mdir)?;
    let mods = ix.resolve(src, &wanted_modules(cfg, &ix))?;
    let vpath = cfg.initramfs.vmcore.display().to_string();
    let vmcore = read(src, &vpath)?;
    let built = initramfs::build(&initramfs::Inputs {
        init,
        vmcore: (&vpath, &vmcore),
        config: cfg_text,
        modules: &mods,
    })?;
    Ok(Prepared {
        kernel_path: kpath,
        kernel,
        initrd: built.gz,
        initrd_from: "built".to_string(),
        initrd_unpacked: (built.cpio_len, true),
        modules_len: built.modules_len,
        module_names: mods.iter().map(|m| m.name.clone()).collect(),
    })
}

/// The unpacked size of a gzip or zstd (possibly multi-member) initramfs,
/// or of an uncompressed cpio; `None` for other formats.
pub fn unpacked_len(b: &[u8]) -> Option<u64> {
    let sink = &mut std::io::sink();
    match b {
        [0x1f, 0x8b, ..] => std::io::copy(
            &mut flate2::read::MultiGzDecoder::new(b).take(8 << 30),
            sink,
        )
        .ok(),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            let d = ruzstd::decoding::StreamingDecoder::new(b).ok()?;
            std::io::copy(&mut d.take(8 << 30), sink).ok()
        }
        [b'0', b'7', b'0', b'7', b'0', b'1', ..] => Some(b.len() as u64),
        _ => None,
    }
}

/// The estimate's inputs from a prepared load and the running system.
pub fn estimate_inputs(p: &Prepared, src: &dyn HostSource, jobs: u64) -> EstimateInputs {
    let ram = src
        .read(PROC_IOMEM, 1 << 20)
        .ok()
        .and_then(|b| Iomem::parse(&String::from_utf8_lossy(&b)).ok())
        .map_or(0, |io| {
            io.system_ram().iter().filter_map(|r| r.size()).sum()
        });
    EstimateInputs {
        kernel_image_size: p.kernel.header.effective_size(p.kernel.raw.len() as u64),
        initrd_compressed: p.initrd.len() as u64,
        initrd_unpacked: p.initrd_unpacked.0,
        initrd_unpacked_measured: p.initrd_unpacked.1,
        modules: p.modules_len,
        ram,
        page_size: p.kernel.header.page_size.unwrap_or(4096),
        jobs,
    }
}

/// Compression jobs in the capture kernel: its `nr_cpus=`/`maxcpus=`
/// (the smaller), else 1 (kdump's usual single CPU).
pub fn capture_jobs(cmdline: &str) -> u64 {
    crate::cmdline::split_params(cmdline)
        .iter()
        .filter_map(|p| {
            p.strip_prefix("nr_cpus=")
                .or_else(|| p.strip_prefix("maxcpus="))
        })
        .filter_map(|v| v.parse::<u64>().ok())
        .min()
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_unpacked() {
        assert_eq!(capture_jobs("reset_devices nr_cpus=1 maxcpus=1"), 1);
        assert_eq!(capture_jobs("nr_cpus=4 maxcpus=2"), 2);
        assert_eq!(capture_jobs("console=ttyAMA0"), 1);
        let mut w = cpio::CpioWriter::new();
        w.file("init", 0o755, &[0; 1000]).unwrap();
        let c = w.finish();
        assert_eq!(unpacked_len(&c), Some(c.len() as u64));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &c).unwrap();
        let mut two = gz.finish().unwrap();
        two.extend(two.clone());
        assert_eq!(unpacked_len(&two), Some(2 * c.len() as u64));
        assert_eq!(unpacked_len(b"\xfd7zXZ\0"), None);
    }
}
