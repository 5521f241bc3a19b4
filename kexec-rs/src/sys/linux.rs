//! The real syscalls. The only `unsafe` code in the crate.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crash_payload::PhysAddr;

use super::{Errno, KexecSys, LoadSegment};

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
