//! A clear error instead of a crash when a mapped input cannot be read.
//!
//! Inputs are read through `mmap` ([`crate::source`]). A read of a mapped
//! page the kernel cannot supply raises SIGBUS: the file shrank after it
//! was opened, its storage failed (a disk, NFS, 9p), or the page is a hole
//! in a file on a full tmpfs (tmpfs allocates a page for a hole read through
//! a mapping, and cannot). Every mapping is entered in a fixed table with
//! its file's name and offset; [`install`] sets a handler that finds the
//! faulting address there and ends the process with exit status 2 and one
//! line naming the file and the offset, as for any other input error.
//! A SIGBUS elsewhere (not a mapped input) keeps its default action.
//!
//! The handler only reads atomics and calls `write` and `_exit`, which are
//! async-signal-safe.

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Mappings tracked at once (a 2 GiB dump read whole is 512 windows).
const SLOTS: usize = 1024;

struct Slot {
    /// First mapped address; 0 = free.
    start: AtomicUsize,
    len: AtomicUsize,
    /// File offset of `start`.
    offset: AtomicU64,
    /// The file's name (bytes owned by the source that registered it).
    path: AtomicPtr<u8>,
    path_len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    offset: AtomicU64::new(0),
    path: AtomicPtr::new(std::ptr::null_mut()),
    path_len: AtomicUsize::new(0),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
/// Slots ever used (the handler and `forget` look no further).
static USED: AtomicUsize = AtomicUsize::new(0);

/// Enters the mapping `map` (file bytes from `offset` on) of the file named
/// `path`. `path` must stay valid until [`forget`] is called with it. A full
/// table enters nothing (a fault there then crashes as without the table).
pub(crate) fn register(map: &[u8], offset: u64, path: &[u8]) {
    if map.is_empty() {
        return;
    }
    let start = map.as_ptr() as usize;
    for (i, s) in TABLE.iter().enumerate() {
        // Claim a free slot with a placeholder start, fill it, then publish.
        if s.start
            .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            s.len.store(map.len(), Ordering::Relaxed);
            s.offset.store(offset, Ordering::Relaxed);
            s.path.store(path.as_ptr().cast_mut(), Ordering::Relaxed);
            s.path_len.store(path.len(), Ordering::Relaxed);
            s.start.store(start, Ordering::Release);
            USED.fetch_max(i + 1, Ordering::AcqRel);
            return;
        }
    }
}

/// Removes every mapping entered with the name `path` (same bytes, by
/// address), before they are unmapped and the name is freed.
pub(crate) fn forget(path: &[u8]) {
    let used = USED.load(Ordering::Acquire);
    for s in &TABLE[..used] {
        let st = s.start.load(Ordering::Acquire);
        if st != 0 && st != usize::MAX && s.path.load(Ordering::Relaxed) == path.as_ptr().cast_mut()
        {
            s.start.store(0, Ordering::Release);
        }
    }
}

/// The file name bytes, length and file offset of a mapped address.
fn find(addr: usize) -> Option<(*const u8, usize, u64)> {
    let used = USED.load(Ordering::Acquire);
    for s in &TABLE[..used.min(SLOTS)] {
        let st = s.start.load(Ordering::Acquire);
        if st == 0 || st == usize::MAX {
            continue;
        }
        let len = s.len.load(Ordering::Relaxed);
        if addr >= st && addr - st < len {
            let off = s.offset.load(Ordering::Relaxed) + (addr - st) as u64;
            return Some((
                s.path.load(Ordering::Relaxed).cast_const(),
                s.path_len.load(Ordering::Relaxed),
                off,
            ));
        }
    }
    None
}

/// A fixed buffer a message is put together in without allocating.
struct Line {
    buf: [u8; 768],
    n: usize,
}

impl Line {
    fn push(&mut self, b: &[u8]) {
        let k = b.len().min(self.buf.len() - self.n);
        self.buf[self.n..self.n + k].copy_from_slice(&b[..k]);
        self.n += k;
    }
    fn hex(&mut self, v: u64) {
        let mut d = [0u8; 16];
        let mut k = 16;
        let mut v = v;
        loop {
            k -= 1;
            d[k] = b"0123456789abcdef"[(v & 15) as usize];
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        self.push(b"0x");
        self.push(&d[k..]);
    }
}

/// The line the handler writes for a fault at file offset `offset` of
/// `path`.
fn message(path: &[u8], offset: u64) -> Line {
    let mut l = Line {
        buf: [0; 768],
        n: 0,
    };
    l.push(b"vmcore: ");
    l.push(&path[..path.len().min(512)]);
    l.push(b": reading offset ");
    l.hex(offset);
    l.push(
        b" through its mapping failed (SIGBUS): the file shrank while open, its storage \
          failed, or it has a hole on a full tmpfs\n",
    );
    l
}

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some((p, n, off)) = find(addr) {
        // SAFETY: `p` and `n` describe name bytes that stay valid while
        // their mapping is in the table (`register`'s contract).
        let path = unsafe { std::slice::from_raw_parts(p, n) };
        let l = message(path, off);
        // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer
        // is this frame's.
        unsafe {
            libc::write(2, l.buf.as_ptr().cast(), l.n);
            libc::_exit(2);
        }
    }
    // Not an input mapping: SA_RESETHAND restored the default action, and
    // returning re-runs the access, which now ends the process as before.
}

/// Installs the SIGBUS handler (once, from `main`).
pub fn install() -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; the handler has the SA_SIGINFO
    // signature and only does async-signal-safe work.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_file_and_the_offset() {
        let l = message(b"/var/crash/vmcore.incomplete", 0x1234_5000);
        let s = std::str::from_utf8(&l.buf[..l.n]).unwrap();
        assert!(s.starts_with("vmcore: /var/crash/vmcore.incomplete: reading offset 0x12345000 "));
        assert!(s.ends_with("full tmpfs\n"));
        let l = message(b"x", 0);
        assert!(std::str::from_utf8(&l.buf[..l.n])
            .unwrap()
            .contains("offset 0x0 "));
        // A long name is cut, the line still ends.
        let long = vec![b'a'; 5000];
        let l = message(&long, u64::MAX);
        assert!(l.n <= l.buf.len());
    }

    #[test]
    fn mappings_are_found_by_address_and_forgotten_by_name() {
        let region = vec![7u8; 8192];
        let name: Vec<u8> = b"/tmp/a-dump".to_vec();
        register(&region[4096..], 0x10_0000, &name);
        let base = region.as_ptr() as usize + 4096;
        let (p, n, off) = find(base + 100).unwrap();
        // SAFETY: the name is alive and registered just above.
        assert_eq!(unsafe { std::slice::from_raw_parts(p, n) }, &name[..]);
        assert_eq!(off, 0x10_0000 + 100);
        assert!(find(base - 1).is_none() || find(base - 1).map(|f| f.0) != Some(name.as_ptr()));
        forget(&name);
        assert!(find(base + 100).map(|f| f.0) != Some(name.as_ptr()));
    }
}
