//! The syscall edge: `kexec_load`, `kexec_file_load` and `reboot` behind
//! one trait ([`KexecSys`]), a real Linux implementation ([`linux`], the
//! crate's only `unsafe`), a recording fake, and the errno → refusal table.

pub mod linux;

use std::collections::VecDeque;

use crash_payload::PhysAddr;
use sha2::{Digest, Sha256};

/// `KEXEC_ON_CRASH` (`include/uapi/linux/kexec.h`).
pub const KEXEC_ON_CRASH: u64 = 0x0000_0001;
/// `KEXEC_ARCH_AARCH64`: `EM_AARCH64 << 16`.
pub const KEXEC_ARCH_AARCH64: u64 = 183 << 16;
/// `KEXEC_ARCH_X86_64`: `EM_X86_64 << 16`.
pub const KEXEC_ARCH_X86_64: u64 = 62 << 16;
/// `KEXEC_FILE_UNLOAD`.
pub const KEXEC_FILE_UNLOAD: u64 = 0x0000_0001;
/// `KEXEC_FILE_ON_CRASH`.
pub const KEXEC_FILE_ON_CRASH: u64 = 0x0000_0002;
/// `KEXEC_FILE_NO_INITRAMFS`.
pub const KEXEC_FILE_NO_INITRAMFS: u64 = 0x0000_0004;

/// One `struct kexec_segment` for the syscall.
#[derive(Debug, Clone, Copy)]
pub struct LoadSegment<'a> {
    /// Bytes to copy (`buf`, `bufsz`).
    pub bytes: &'a [u8],
    /// Destination (`mem`).
    pub mem: PhysAddr,
    /// Destination size (`memsz`).
    pub memsz: u64,
}

/// A raw errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

/// The kexec syscalls.
pub trait KexecSys {
    /// `kexec_load(entry, nr_segments, segments, flags)`; no segments = unload.
    fn kexec_load(
        &mut self,
        entry: PhysAddr,
        segments: &[LoadSegment<'_>],
        flags: u64,
    ) -> Result<(), Errno>;
    /// `kexec_file_load(kernel_fd, initrd_fd, cmdline_len, cmdline, flags)`;
    /// the implementation passes the bytes as file descriptors. `kernel`
    /// `None` (with `KEXEC_FILE_UNLOAD`) unloads.
    fn kexec_file_load(
        &mut self,
        kernel: Option<&[u8]>,
        initrd: Option<&[u8]>,
        cmdline: &str,
        flags: u64,
    ) -> Result<(), Errno>;
    /// `sync()` then `reboot(LINUX_REBOOT_CMD_KEXEC)`; returns only on failure.
    fn reboot_kexec(&mut self) -> Result<(), Errno>;
}

/// A call the fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// `kexec_load`: entry, `(mem, memsz, bufsz, sha256)` per segment, flags.
    KexecLoad {
        /// Entry.
        entry: PhysAddr,
        /// Segments.
        segments: Vec<(PhysAddr, u64, u64, [u8; 32])>,
        /// Flags.
        flags: u64,
    },
    /// `kexec_file_load`.
    KexecFileLoad {
        /// Kernel length.
        kernel_len: Option<usize>,
        /// Initrd length.
        initrd_len: Option<usize>,
        /// Command line.
        cmdline: String,
        /// Flags.
        flags: u64,
    },
    /// `reboot(LINUX_REBOOT_CMD_KEXEC)`.
    Reboot,
    /// [`HostSys::write_file`]: path, bytes.
    WriteFile(String, Vec<u8>),
    /// [`HostSys::init_module`]: module name (for the record), image length, parameters.
    InitModule(String, usize, String),
    /// [`HostSys::sync`].
    Sync,
    /// [`HostSys::mount`]: source, target, fstype, data.
    Mount(String, String, String, String),
    /// [`HostSys::power`].
    Power(PowerAction),
}

/// What [`HostSys::power`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerAction {
    /// `reboot(LINUX_REBOOT_CMD_RESTART)`.
    Reboot,
    /// `reboot(LINUX_REBOOT_CMD_POWER_OFF)`.
    Poweroff,
    /// `reboot(LINUX_REBOOT_CMD_HALT)`.
    Halt,
}

/// The other system calls the kdump service makes (sysfs writes, module
/// loading, mounts, power), so each sequence is tested with the fake.
pub trait HostSys {
    /// Writes `bytes` to an existing file (sysfs, procfs or a regular file);
    /// no create, no truncate beyond what the file does itself.
    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), Errno>;
    /// `init_module(image, len, params)`: loads a kernel module from memory.
    fn init_module(&mut self, name: &str, image: &[u8], params: &str) -> Result<(), Errno>;
    /// `sync()`.
    fn sync(&mut self);
    /// `mount(source, target, fstype, 0, data)`; creates `target` first.
    fn mount(&mut self, source: &str, target: &str, fstype: &str, data: &str) -> Result<(), Errno>;
    /// `sync()` then `reboot(cmd)`; returns only on failure.
    fn power(&mut self, action: PowerAction) -> Result<(), Errno>;
}

/// The recording fake: logs calls and returns scripted results (success
/// when the script is empty).
#[derive(Debug, Default)]
pub struct RecordingSys {
    /// Calls seen.
    pub calls: Vec<Recorded>,
    /// Results to return, in order.
    pub script: VecDeque<Result<(), Errno>>,
}

impl RecordingSys {
    /// A fake that fails its calls with these errnos in order.
    pub fn failing(errnos: &[i32]) -> Self {
        RecordingSys {
            calls: Vec::new(),
            script: errnos.iter().map(|&e| Err(Errno(e))).collect(),
        }
    }
    /// A fake that returns these results in order (then success).
    pub fn scripted(results: impl IntoIterator<Item = Result<(), Errno>>) -> Self {
        RecordingSys {
            calls: Vec::new(),
            script: results.into_iter().collect(),
        }
    }
    fn next(&mut self) -> Result<(), Errno> {
        self.script.pop_front().unwrap_or(Ok(()))
    }
}

impl KexecSys for RecordingSys {
    fn kexec_load(
        &mut self,
        entry: PhysAddr,
        segments: &[LoadSegment<'_>],
        flags: u64,
    ) -> Result<(), Errno> {
        let segments = segments
            .iter()
            .map(|s| {
                (
                    s.mem,
                    s.memsz,
                    s.bytes.len() as u64,
                    Sha256::digest(s.bytes).into(),
                )
            })
            .collect();
        self.calls.push(Recorded::KexecLoad {
            entry,
            segments,
            flags,
        });
        self.next()
    }
    fn kexec_file_load(
        &mut self,
        kernel: Option<&[u8]>,
        initrd: Option<&[u8]>,
        cmdline: &str,
        flags: u64,
    ) -> Result<(), Errno> {
        self.calls.push(Recorded::KexecFileLoad {
            kernel_len: kernel.map(<[u8]>::len),
            initrd_len: initrd.map(<[u8]>::len),
            cmdline: cmdline.to_string(),
            flags,
        });
        self.next()
    }
    fn reboot_kexec(&mut self) -> Result<(), Errno> {
        self.calls.push(Recorded::Reboot);
        self.next()
    }
}

impl HostSys for RecordingSys {
    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), Errno> {
        self.calls
            .push(Recorded::WriteFile(path.to_string(), bytes.to_vec()));
        self.next()
    }
    fn init_module(&mut self, name: &str, image: &[u8], params: &str) -> Result<(), Errno> {
        self.calls.push(Recorded::InitModule(
            name.to_string(),
            image.len(),
            params.to_string(),
        ));
        self.next()
    }
    fn sync(&mut self) {
        self.calls.push(Recorded::Sync);
    }
    fn mount(&mut self, source: &str, target: &str, fstype: &str, data: &str) -> Result<(), Errno> {
        self.calls.push(Recorded::Mount(
            source.to_string(),
            target.to_string(),
            fstype.to_string(),
            data.to_string(),
        ));
        self.next()
    }
    fn power(&mut self, action: PowerAction) -> Result<(), Errno> {
        self.calls.push(Recorded::Power(action));
        self.next()
    }
}

/// Which syscall failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `kexec_load`.
    KexecLoad,
    /// `kexec_file_load`.
    KexecFileLoad,
    /// `reboot(LINUX_REBOOT_CMD_KEXEC)`.
    Reboot,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Call::KexecLoad => "kexec_load",
            Call::KexecFileLoad => "kexec_file_load",
            Call::Reboot => "reboot(LINUX_REBOOT_CMD_KEXEC)",
        })
    }
}

/// A refusal, named by its cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SysError {
    /// EPERM.
    #[error("{call}: permission denied (EPERM): {}", match lockdown.as_deref() {
        Some(m) if m != "none" => format!("the kernel is locked down ({m}); kexec_load is forbidden, only kexec_file_load (-s) of a signed kernel is allowed"),
        _ => "needs CAP_SYS_BOOT (run as root), and kernel.kexec_load_disabled must be 0".to_string(),
    })]
    Permission {
        /// The call.
        call: Call,
        /// The lockdown mode if readable.
        lockdown: Option<String>,
    },
    /// EBUSY.
    #[error("{call}: busy (EBUSY): another kexec load or exec is in progress, or CPUs are stuck in the kernel (normal loads)")]
    Busy {
        /// The call.
        call: Call,
    },
    /// ENOMEM.
    #[error("{call}: out of memory (ENOMEM): {}", if *crash { "the crash kernel reservation has no room left (the kernel needs a free page for its control code beside the segments); raise crashkernel=" } else { "the kernel could not allocate pages for the image" })]
    NoMemory {
        /// The call.
        call: Call,
        /// A crash load.
        crash: bool,
    },
    /// EADDRNOTAVAIL.
    #[error("{call}: address not available (EADDRNOTAVAIL): a segment or the entry lies outside the crash kernel reservation or is not page-aligned; is crashkernel= reserved?")]
    AddrNotAvail {
        /// The call.
        call: Call,
    },
    /// EINVAL.
    #[error(
        "{call}: invalid argument (EINVAL): the kernel rejected the image or the segment list"
    )]
    Rejected {
        /// The call.
        call: Call,
    },
    /// ENOEXEC.
    #[error("{call}: exec format error (ENOEXEC): the kernel does not recognise the image (arm64 kexec_file_load takes only a raw Image)")]
    NotKernel {
        /// The call.
        call: Call,
    },
    /// ENOSYS.
    #[error("{call}: not implemented (ENOSYS): the running kernel was built without {}", if *call == Call::KexecFileLoad { "CONFIG_KEXEC_FILE (use -c)" } else { "CONFIG_KEXEC" })]
    NotSupported {
        /// The call.
        call: Call,
    },
    /// EKEYREJECTED, ENOKEY, EBADMSG.
    #[error("{call}: signature check failed (errno {errno}): the kernel image is not signed by a key the kernel trusts")]
    Signature {
        /// The call.
        call: Call,
        /// The errno.
        errno: i32,
    },
    /// ENOENT from `reboot`: nothing loaded.
    #[error("{call}: no kexec image is loaded (load one with -l first)")]
    NothingLoaded {
        /// The call.
        call: Call,
    },
    /// Anything else.
    #[error("{call}: {message} (errno {errno})")]
    Other {
        /// The call.
        call: Call,
        /// The errno.
        errno: i32,
        /// `strerror`.
        message: String,
    },
    /// A plan for another architecture.
    #[error("the plan is for {plan}, this machine is {host}: refusing to call {call}")]
    WrongArch {
        /// The call.
        call: Call,
        /// Plan architecture.
        plan: String,
        /// Host architecture.
        host: String,
    },
}

impl SysError {
    /// True for errors after which `-a` falls back from `kexec_file_load`
    /// to `kexec_load` (the file syscall or the image format unsupported).
    pub fn falls_back(&self) -> bool {
        matches!(
            self,
            SysError::NotSupported { .. } | SysError::NotKernel { .. }
        )
    }
}

/// Maps an errno to its refusal.
pub fn explain(call: Call, e: Errno, crash: bool, lockdown: Option<String>) -> SysError {
    match e.0 {
        libc::EPERM => SysError::Permission { call, lockdown },
        libc::EBUSY => SysError::Busy { call },
        libc::ENOMEM => SysError::NoMemory { call, crash },
        libc::EADDRNOTAVAIL => SysError::AddrNotAvail { call },
        libc::EINVAL => SysError::Rejected { call },
        libc::ENOEXEC => SysError::NotKernel { call },
        libc::ENOSYS => SysError::NotSupported { call },
        libc::EKEYREJECTED | libc::ENOKEY | libc::EBADMSG => {
            SysError::Signature { call, errno: e.0 }
        }
        libc::ENOENT if call == Call::Reboot => SysError::NothingLoaded { call },
        n => SysError::Other {
            call,
            errno: n,
            message: std::io::Error::from_raw_os_error(n).to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_named() {
        let lockdown = explain(
            Call::KexecLoad,
            Errno(libc::EPERM),
            true,
            Some("integrity".into()),
        );
        assert_eq!(
            lockdown.to_string(),
            "kexec_load: permission denied (EPERM): the kernel is locked down (integrity); kexec_load is forbidden, only kexec_file_load (-s) of a signed kernel is allowed"
        );
        let root = explain(
            Call::KexecLoad,
            Errno(libc::EPERM),
            true,
            Some("none".into()),
        );
        assert!(root.to_string().contains("CAP_SYS_BOOT"));
        assert_eq!(
            explain(Call::KexecLoad, Errno(libc::EBUSY), true, None),
            SysError::Busy {
                call: Call::KexecLoad
            }
        );
        assert!(explain(Call::KexecLoad, Errno(libc::ENOMEM), true, None)
            .to_string()
            .contains("raise crashkernel="));
        assert_eq!(
            explain(Call::KexecLoad, Errno(libc::EINVAL), true, None),
            SysError::Rejected {
                call: Call::KexecLoad
            }
        );
        let nosys = explain(Call::KexecFileLoad, Errno(libc::ENOSYS), true, None);
        assert!(nosys.falls_back());
        assert!(nosys.to_string().contains("CONFIG_KEXEC_FILE"));
        assert!(!explain(Call::KexecFileLoad, Errno(libc::EKEYREJECTED), true, None).falls_back());
        assert_eq!(
            explain(Call::Reboot, Errno(libc::ENOENT), false, None),
            SysError::NothingLoaded { call: Call::Reboot }
        );
    }
}
