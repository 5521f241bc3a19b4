//! The real syscalls. The only `unsafe` code in the crate.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crash_payload::PhysAddr;

use super::{Errno, HostSys, KexecSys, LoadSegment, PowerAction};

/// `struct kexec_segment` (`include/uapi/linux/kexec.h`).
#[repr(C)]
struct KexecSegment {
    buf: *const libc::c_void,
    bufsz: libc::size_t,
    mem: *const libc::c_void,
    memsz: libc::size_t,
}
const _: () = assert!(std::mem::size_of::<KexecSegment>() == 4 * std::mem::size_of::<usize>());

/// Syscall numbers (`include/uapi/asm-generic/unistd.h` for arm64,
/// `arch/x86/entry/syscalls/syscall_64.tbl`); not every libc target names
/// `SYS_kexec_file_load` (aarch64-musl does not).
#[cfg(target_arch = "aarch64")]
const NR: Option<(libc::c_long, libc::c_long)> = Some((104, 294));
#[cfg(target_arch = "x86_64")]
const NR: Option<(libc::c_long, libc::c_long)> = Some((246, 320));
#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
const NR: Option<(libc::c_long, libc::c_long)> = None;

fn last_errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// An anonymous memory file holding `bytes` (for `kexec_file_load`).
fn memfd(name: &str, bytes: &[u8]) -> Result<OwnedFd, Errno> {
    let cname = CString::new(name).map_err(|_| Errno(libc::EINVAL))?;
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call;
    // memfd_create reads it and returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut f = std::fs::File::from(owned);
    f.write_all(bytes)
        .map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(OwnedFd::from(f))
}

/// The running Linux kernel.
#[derive(Debug, Default)]
pub struct LinuxSys;

impl KexecSys for LinuxSys {
    fn kexec_load(
        &mut self,
        entry: PhysAddr,
        segments: &[LoadSegment<'_>],
        flags: u64,
    ) -> Result<(), Errno> {
        let (nr, _) = NR.ok_or(Errno(libc::ENOSYS))?;
        let mut segs = Vec::with_capacity(segments.len());
        for s in segments {
            segs.push(KexecSegment {
                buf: s.bytes.as_ptr().cast(),
                bufsz: s.bytes.len(),
                mem: usize::try_from(s.mem.get()).map_err(|_| Errno(libc::EINVAL))?
                    as *const libc::c_void,
                memsz: usize::try_from(s.memsz).map_err(|_| Errno(libc::EINVAL))?,
            });
        }
        let entry = usize::try_from(entry.get()).map_err(|_| Errno(libc::EINVAL))?;
        let flags = libc::c_ulong::try_from(flags).map_err(|_| Errno(libc::EINVAL))?;
        let ptr = if segs.is_empty() {
            std::ptr::null()
        } else {
            segs.as_ptr()
        };
        // SAFETY: `segs` holds `segs.len()` valid kexec_segment structs whose
        // `buf` pointers borrow `segments` for `bufsz` bytes; all outlive the
        // call. `mem` is a physical address the kernel only compares and
        // never dereferences in our address space.
        let r = unsafe { libc::syscall(nr, entry, segs.len(), ptr, flags) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(())
        }
    }

    fn kexec_file_load(
        &mut self,
        kernel: Option<&[u8]>,
        initrd: Option<&[u8]>,
        cmdline: &str,
        flags: u64,
    ) -> Result<(), Errno> {
        let (_, nr) = NR.ok_or(Errno(libc::ENOSYS))?;
        let kfd = kernel.map(|k| memfd("kexec-rs-kernel", k)).transpose()?;
        let ifd = initrd.map(|i| memfd("kexec-rs-initrd", i)).transpose()?;
        let c = CString::new(cmdline).map_err(|_| Errno(libc::EINVAL))?;
        let clen = if cmdline.is_empty() {
            0
        } else {
            c.as_bytes_with_nul().len()
        };
        let cptr = if clen == 0 {
            std::ptr::null()
        } else {
            c.as_ptr()
        };
        let kraw = kfd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        let iraw = ifd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        let flags = libc::c_ulong::try_from(flags).map_err(|_| Errno(libc::EINVAL))?;
        // SAFETY: the descriptors are open (or -1) for the duration of the
        // call, `cptr` is null with length 0 or points at `clen` bytes of a
        // NUL-terminated string that outlives the call.
        let r = unsafe { libc::syscall(nr, kraw, iraw, clen, cptr, flags) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(())
        }
    }

    fn reboot_kexec(&mut self) -> Result<(), Errno> {
        // SAFETY: sync() takes no arguments and cannot fail.
        unsafe { libc::sync() };
        // SAFETY: reboot with LINUX_REBOOT_CMD_KEXEC takes no pointers; on
        // success it does not return.
        let r = unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_KEXEC) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(())
        }
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(libc::EIO))
}

impl HostSys for LinuxSys {
    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), Errno> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io_errno(&e))?;
        f.write_all(bytes).map_err(|e| io_errno(&e))
    }

    fn init_module(&mut self, _name: &str, image: &[u8], params: &str) -> Result<(), Errno> {
        let p = CString::new(params).map_err(|_| Errno(libc::EINVAL))?;
        // SAFETY: `image` is a valid buffer of `image.len()` bytes and `p` a
        // NUL-terminated string; both outlive the call, which only reads them.
        let r = unsafe {
            libc::syscall(
                libc::SYS_init_module,
                image.as_ptr(),
                image.len(),
                p.as_ptr(),
            )
        };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(())
        }
    }

    fn sync(&mut self) {
        // SAFETY: sync() takes no arguments and cannot fail.
        unsafe { libc::sync() };
    }

    fn mount(&mut self, source: &str, target: &str, fstype: &str, data: &str) -> Result<(), Errno> {
        std::fs::create_dir_all(target).map_err(|e| io_errno(&e))?;
        let c = |s: &str| CString::new(s).map_err(|_| Errno(libc::EINVAL));
        let (src, tgt, fs, d) = (c(source)?, c(target)?, c(fstype)?, c(data)?);
        let dptr = if data.is_empty() {
            std::ptr::null()
        } else {
            d.as_ptr().cast::<libc::c_void>()
        };
        // SAFETY: every pointer is a NUL-terminated string (or null data)
        // that outlives the call; mount only reads them.
        let r = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fs.as_ptr(), 0, dptr) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(())
        }
    }

    fn power(&mut self, action: PowerAction) -> Result<(), Errno> {
        let cmd = match action {
            PowerAction::Reboot => libc::LINUX_REBOOT_CMD_RESTART,
            PowerAction::Poweroff => libc::LINUX_REBOOT_CMD_POWER_OFF,
            PowerAction::Halt => libc::LINUX_REBOOT_CMD_HALT,
        };
        // SAFETY: sync() takes no arguments and cannot fail.
        unsafe { libc::sync() };
        // SAFETY: reboot with these commands takes no pointers; on success
        // it does not return.
        let r = unsafe { libc::reboot(cmd) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(())
        }
    }
}
