//! The read-only edge: every file the planner needs from `/proc` and `/sys`
//! goes through [`HostSource`], so tests feed recorded trees and check
//! exactly what was read.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crash_payload::PhysAddr;
use serde::Serialize;

use crate::fdt::{decode_cells, Fdt, FdtError};
use crate::iomem::{Iomem, IomemError};
use crate::sysfs::{self, KernelLayout, SysfsError, VmcoreinfoLocation};

/// `/proc/iomem`.
pub const PROC_IOMEM: &str = "/proc/iomem";
/// `/proc/kcore` (only its head is read, for the VMCOREINFO note).
pub const PROC_KCORE: &str = "/proc/kcore";
/// `/proc/cmdline`.
pub const PROC_CMDLINE: &str = "/proc/cmdline";
/// `/sys/kernel/vmcoreinfo`.
pub const SYS_VMCOREINFO: &str = "/sys/kernel/vmcoreinfo";
/// `/sys/firmware/fdt`: the DTB the running kernel booted with.
pub const SYS_FDT: &str = "/sys/firmware/fdt";
/// The CPU directory.
pub const SYS_CPU: &str = "/sys/devices/system/cpu";
/// `1` when a kexec image is loaded.
pub const SYS_KEXEC_LOADED: &str = "/sys/kernel/kexec_loaded";
/// `1` when a crash image is loaded.
pub const SYS_KEXEC_CRASH_LOADED: &str = "/sys/kernel/kexec_crash_loaded";
/// Size of the crash reservation.
pub const SYS_KEXEC_CRASH_SIZE: &str = "/sys/kernel/kexec_crash_size";
/// The lockdown state (`none [integrity] confidentiality`).
pub const SYS_LOCKDOWN: &str = "/sys/kernel/security/lockdown";

/// Read access to the host's `/proc` and `/sys`.
pub trait HostSource {
    /// Reads at most `limit` bytes of the file at absolute `path`.
    fn read(&self, path: &str, limit: usize) -> io::Result<Vec<u8>>;
    /// The target of the symlink at absolute `path`.
    fn read_link(&self, path: &str) -> io::Result<String>;
}

/// The real file system, optionally under a different root (a captured tree).
#[derive(Debug, Clone)]
pub struct FsSource {
    root: PathBuf,
}

impl FsSource {
    /// Reads the live system (`/`).
    pub fn live() -> Self {
        FsSource {
            root: PathBuf::from("/"),
        }
    }
    /// Reads a captured tree rooted at `root`.
    pub fn under(root: impl Into<PathBuf>) -> Self {
        FsSource { root: root.into() }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
}

impl HostSource for FsSource {
    fn read(&self, path: &str, limit: usize) -> io::Result<Vec<u8>> {
        let f = std::fs::File::open(self.path(path))?;
        let mut out = Vec::new();
        f.take(limit as u64).read_to_end(&mut out)?;
        Ok(out)
    }
    fn read_link(&self, path: &str) -> io::Result<String> {
        Ok(std::fs::read_link(self.path(path))?
            .to_string_lossy()
            .into_owned())
    }
}

/// An in-memory tree that records every path asked for (the fake).
#[derive(Debug, Default)]
pub struct RecordingSource {
    /// File contents by absolute path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Symlink targets by absolute path.
    pub links: BTreeMap<String, String>,
    /// Paths read, in order.
    pub log: RefCell<Vec<String>>,
}

impl RecordingSource {
    /// Loads every regular file and symlink under `dir` as `/<relative path>`.
    pub fn from_dir(dir: &Path) -> io::Result<Self> {
        let mut s = RecordingSource::default();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)? {
                let e = e?;
                let p = e.path();
                let rel = p.strip_prefix(dir).map_err(io::Error::other)?;
                let key = format!("/{}", rel.to_string_lossy());
                let ft = e.file_type()?;
                if ft.is_symlink() {
                    s.links
                        .insert(key, std::fs::read_link(&p)?.to_string_lossy().into_owned());
                } else if ft.is_dir() {
                    stack.push(p);
                } else {
                    s.files.insert(key, std::fs::read(&p)?);
                }
            }
        }
        Ok(s)
    }

    /// Adds or replaces a file.
    pub fn with_file(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.to_string(), bytes.into());
        self
    }

    /// Removes a file.
    pub fn without(mut self, path: &str) -> Self {
        self.files.remove(path);
        self.links.remove(path);
        self
    }
}

impl HostSource for RecordingSource {
    fn read(&self, path: &str, limit: usize) -> io::Result<Vec<u8>> {
        self.log.borrow_mut().push(path.to_string());
        let b = self
            .files
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(b[..b.len().min(limit)].to_vec())
    }
    fn read_link(&self, path: &str) -> io::Result<String> {
        self.log.borrow_mut().push(path.to_string());
        self.links
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

/// Why the host facts could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    /// A file that could not be read.
    #[error("{path}: {source}{hint}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: io::Error,
        /// What it usually means.
        hint: &'static str,
    },
    /// `/proc/iomem` unusable.
    #[error(transparent)]
    Iomem(#[from] IomemError),
    /// A sysfs value unusable.
    #[error(transparent)]
    Sysfs(#[from] SysfsError),
    /// The DTB unusable.
    #[error("{path}: {source}")]
    Fdt {
        /// Where the blob came from.
        path: String,
        /// The parse error.
        source: FdtError,
    },
    /// A file that is not text.
    #[error("{path}: not UTF-8 text")]
    NotText {
        /// The file.
        path: String,
    },
}

fn hint_for(path: &str, e: &io::Error) -> &'static str {
    match (path, e.kind()) {
        (PROC_KCORE, io::ErrorKind::PermissionDenied) => {
            " (reading the VMCOREINFO note needs root, and lockdown=confidentiality forbids /proc/kcore)"
        }
        (SYS_VMCOREINFO, io::ErrorKind::NotFound) => " (kernel built without CONFIG_CRASH_CORE)",
        (SYS_FDT, io::ErrorKind::NotFound) => " (not a device-tree system, or an ACPI boot: pass --dtb)",
        (p, io::ErrorKind::NotFound) if p.ends_with("/crash_notes") => " (kernel built without CONFIG_KEXEC_CORE)",
        (_, io::ErrorKind::PermissionDenied) => " (run as root)",
        _ => "",
    }
}

fn read(src: &dyn HostSource, path: &str, limit: usize) -> Result<Vec<u8>, GatherError> {
    src.read(path, limit).map_err(|source| GatherError::Read {
        path: path.to_string(),
        hint: hint_for(path, &source),
        source,
    })
}

fn read_text(src: &dyn HostSource, path: &str) -> Result<String, GatherError> {
    String::from_utf8(read(src, path, 1 << 20)?).map_err(|_| GatherError::NotText {
        path: path.to_string(),
    })
}

/// Where a CPU's MPIDR came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MpidrSource {
    /// `cpuN/of_node` names the DT node; its `reg` is exact.
    OfNode,
    /// Inferred from DT order (boot CPU first), the kernel's own numbering
    /// rule when `of_node` is missing.
    DtOrder,
    /// Unknown (no matching DT node).
    Unknown,
}

/// One possible CPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuFacts {
    /// Logical id (`cpuN`).
    pub cpu: u32,
    /// In `present`.
    pub present: bool,
    /// In `online` at load time.
    pub online: bool,
    /// `cpuN/crash_notes`.
    #[serde(serialize_with = "crate::ser_phys")]
    pub crash_notes: PhysAddr,
    /// `cpuN/crash_notes_size`.
    pub crash_notes_size: u64,
    /// MPIDR affinity (`reg & 0xff00ffffff`).
    pub mpidr: Option<u64>,
    /// How `mpidr` was found.
    pub mpidr_source: MpidrSource,
}

/// Everything the crash plan needs to know about the running system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostFacts {
    /// `/proc/iomem`.
    pub iomem: Iomem,
    /// Possible CPUs (empty when not gathered for a crash load).
    pub cpus: Vec<CpuFacts>,
    /// `/sys/kernel/vmcoreinfo` (crash loads only).
    pub vmcoreinfo: Option<VmcoreinfoLocation>,
    /// From the VMCOREINFO note in `/proc/kcore` (crash loads only).
    pub layout: Option<KernelLayout>,
    /// The base DTB (`/sys/firmware/fdt`, or `--dtb`).
    #[serde(skip)]
    pub fdt: Vec<u8>,
    /// `/proc/cmdline`.
    pub cmdline: String,
}

/// MPIDR affinity bits (Aff3, Aff2, Aff1, Aff0).
pub const MPIDR_HWID_MASK: u64 = 0xff_00ff_ffff;

/// Gives each CPU its MPIDR from the DT: from `of_node` when the link names
/// a `/cpus` child, else by the kernel's numbering rule (`smp_init_cpus()`:
/// the boot CPU is 0, the others follow in DT order).
pub fn assign_mpidrs(fdt: &Fdt, cpus: &mut [CpuFacts], of_nodes: &BTreeMap<u32, String>) {
    let Some(cpus_node) = fdt.node("/cpus") else {
        return;
    };
    let ac = cpus_node.prop_u32("#address-cells").unwrap_or(1) as usize;
    let reg_of = |n: &crate::fdt::Node| {
        n.prop("reg")
            .and_then(|r| r.get(..ac * 4))
            .and_then(decode_cells)
            .map(|v| v & MPIDR_HWID_MASK)
    };
    let dt_cpus: Vec<(&str, u64)> = cpus_node
        .children
        .iter()
        .filter(|c| c.prop_str("device_type") == Some("cpu"))
        .filter_map(|c| Some((c.name.as_str(), reg_of(c)?)))
        .collect();
    let boot = u64::from(fdt.boot_cpuid_phys) & MPIDR_HWID_MASK;
    let mut order: Vec<u64> = Vec::new();
    if let Some(&(_, b)) = dt_cpus.iter().find(|(_, r)| *r == boot).or(dt_cpus.first()) {
        order.push(b);
        order.extend(dt_cpus.iter().map(|&(_, r)| r).filter(|&r| r != b));
    }
    for c in cpus.iter_mut() {
        let by_node = of_nodes
            .get(&c.cpu)
            .and_then(|t| t.rsplit('/').next())
            .and_then(|name| dt_cpus.iter().find(|(n, _)| *n == name))
            .map(|&(_, r)| r);
        (c.mpidr, c.mpidr_source) = match (by_node, order.get(c.cpu as usize)) {
            (Some(r), _) => (Some(r), MpidrSource::OfNode),
            (None, Some(&r)) => (Some(r), MpidrSource::DtOrder),
            (None, None) => (None, MpidrSource::Unknown),
        };
    }
}

/// What to gather.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A crash (`-p`) load: CPUs, crash notes, VMCOREINFO, layout too.
    Crash,
    /// A normal (`-l`) load: memory map, DTB and command line.
    Normal,
}

/// Reads the host facts. `dtb` replaces `/sys/firmware/fdt` when given
/// (`--dtb`); `(name, bytes)`.
pub fn gather(
    src: &dyn HostSource,
    need: Need,
    dtb: Option<(&str, Vec<u8>)>,
) -> Result<HostFacts, GatherError> {
    let iomem = Iomem::parse(&read_text(src, PROC_IOMEM)?)?;
    let cmdline = read_text(src, PROC_CMDLINE)?
        .trim_end_matches(['\n', '\0'])
        .to_string();
    let (fdt_name, fdt) = match dtb {
        Some((n, b)) => (n.to_string(), b),
        None => (SYS_FDT.to_string(), read(src, SYS_FDT, 16 << 20)?),
    };
    let parsed = Fdt::parse(&fdt).map_err(|source| GatherError::Fdt {
        path: fdt_name,
        source,
    })?;
    let mut facts = HostFacts {
        iomem,
        cpus: Vec::new(),
        vmcoreinfo: None,
        layout: None,
        fdt,
        cmdline,
    };
    if need == Need::Normal {
        return Ok(facts);
    }
    let list = |name: &str| -> Result<Vec<u32>, GatherError> {
        let p = format!("{SYS_CPU}/{name}");
        Ok(sysfs::parse_cpu_list(&p, &read_text(src, &p)?)?)
    };
    let possible = list("possible")?;
    let present = list("present")?;
    let online = list("online")?;
    let mut of_nodes = BTreeMap::new();
    for &cpu in &possible {
        let p = format!("{SYS_CPU}/cpu{cpu}/crash_notes");
        let crash_notes = sysfs::parse_crash_notes(&p, &read_text(src, &p)?)?;
        let p = format!("{SYS_CPU}/cpu{cpu}/crash_notes_size");
        let crash_notes_size = sysfs::parse_decimal(&p, &read_text(src, &p)?)?;
        if let Ok(t) = src.read_link(&format!("{SYS_CPU}/cpu{cpu}/of_node")) {
            of_nodes.insert(cpu, t);
        }
        facts.cpus.push(CpuFacts {
            cpu,
            present: present.contains(&cpu),
            online: online.contains(&cpu),
            crash_notes,
            crash_notes_size,
            mpidr: None,
            mpidr_source: MpidrSource::Unknown,
        });
    }
    assign_mpidrs(&parsed, &mut facts.cpus, &of_nodes);
    facts.vmcoreinfo = Some(sysfs::parse_vmcoreinfo_location(&read_text(
        src,
        SYS_VMCOREINFO,
    )?)?);
    let head = read(src, PROC_KCORE, sysfs::KCORE_HEAD_BYTES)?;
    facts.layout = Some(KernelLayout::from_vmcoreinfo(&sysfs::kcore_vmcoreinfo(
        &head,
    )?)?);
    Ok(facts)
}

/// Which images are loaded, from sysfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `/sys/kernel/kexec_loaded`.
    pub loaded: bool,
    /// `/sys/kernel/kexec_crash_loaded`.
    pub crash_loaded: bool,
    /// `/sys/kernel/kexec_crash_size` (bytes reserved; 0 when none).
    pub crash_size: Option<u64>,
}

/// Reads the kexec status files.
pub fn read_status(src: &dyn HostSource) -> Result<Status, GatherError> {
    let flag = |p: &str| -> Result<bool, GatherError> { Ok(read_text(src, p)?.trim() == "1") };
    let crash_size = read_text(src, SYS_KEXEC_CRASH_SIZE)
        .ok()
        .and_then(|t| t.trim().parse().ok());
    Ok(Status {
        loaded: flag(SYS_KEXEC_LOADED)?,
        crash_loaded: flag(SYS_KEXEC_CRASH_LOADED)?,
        crash_size,
    })
}

/// The active lockdown mode (`integrity`, `confidentiality`), if readable.
pub fn lockdown_mode(src: &dyn HostSource) -> Option<String> {
    let t = String::from_utf8(src.read(SYS_LOCKDOWN, 4096).ok()?).ok()?;
    let a = t.find('[')?;
    let b = t[a..].find(']')?;
    Some(t[a + 1..a + b].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::{str_value, Node};

    fn cpu(n: u32) -> CpuFacts {
        CpuFacts {
            cpu: n,
            present: true,
            online: true,
            crash_notes: PhysAddr(0),
            crash_notes_size: 424,
            mpidr: None,
            mpidr_source: MpidrSource::Unknown,
        }
    }

    fn dt(regs: &[(&str, u32)], boot: u32) -> Fdt {
        let mut f = Fdt {
            boot_cpuid_phys: boot,
            reserve: vec![],
            root: Node::default(),
        };
        f.node_mut_or_create("/cpus")
            .set_prop("#address-cells", 1u32.to_be_bytes().to_vec());
        for (name, reg) in regs {
            let n = f.node_mut_or_create(&format!("/cpus/{name}"));
            n.set_prop("device_type", str_value("cpu"));
            n.set_prop("reg", reg.to_be_bytes().to_vec());
        }
        f.node_mut_or_create("/cpus/cpu-map");
        f
    }

    #[test]
    fn mpidr_from_of_node_then_dt_order() {
        let f = dt(&[("cpu@0", 0), ("cpu@100", 0x100), ("cpu@1", 1)], 0x100);
        let mut cpus = vec![cpu(0), cpu(1), cpu(2), cpu(3)];
        let mut links = BTreeMap::new();
        links.insert(
            2,
            "../../../../firmware/devicetree/base/cpus/cpu@1".to_string(),
        );
        assign_mpidrs(&f, &mut cpus, &links);
        // Boot CPU (reg 0x100 per boot_cpuid_phys) is logical 0; then DT order.
        assert_eq!(
            (cpus[0].mpidr, cpus[0].mpidr_source),
            (Some(0x100), MpidrSource::DtOrder)
        );
        assert_eq!(
            (cpus[1].mpidr, cpus[1].mpidr_source),
            (Some(0), MpidrSource::DtOrder)
        );
        assert_eq!(
            (cpus[2].mpidr, cpus[2].mpidr_source),
            (Some(1), MpidrSource::OfNode)
        );
        assert_eq!(
            (cpus[3].mpidr, cpus[3].mpidr_source),
            (None, MpidrSource::Unknown)
        );
    }

    #[test]
    fn lockdown_parse() {
        let s = RecordingSource::default()
            .with_file(SYS_LOCKDOWN, "none [integrity] confidentiality\n");
        assert_eq!(lockdown_mode(&s).as_deref(), Some("integrity"));
    }
}
