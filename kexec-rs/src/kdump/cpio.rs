//! A `newc` cpio writer (the format the kernel unpacks as an initramfs:
//! `Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Each entry: the 110-byte ASCII header `070701` + 13 eight-digit hex
//! fields (ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
//! rdevmajor, rdevminor, namesize incl. NUL, check), the name and its NUL
//! padded to 4 bytes, the data padded to 4 bytes. `TRAILER!!!` ends it.

/// `S_IFDIR`.
pub const S_IFDIR: u32 = 0o040_000;
/// `S_IFREG`.
pub const S_IFREG: u32 = 0o100_000;
/// `S_IFCHR`.
pub const S_IFCHR: u32 = 0o020_000;
/// `S_IFLNK`.
pub const S_IFLNK: u32 = 0o120_000;

/// Why an entry was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CpioError {
    /// A name that cannot be stored.
    #[error("cpio entry `{0}`: names must be relative, non-empty and without NUL")]
    BadName(String),
    /// Over the format's 32-bit size field.
    #[error("cpio entry `{name}`: {len} bytes is over newc's 4 GiB limit")]
    TooBig {
        /// Entry name.
        name: String,
        /// Its length.
        len: usize,
    },
}

/// A cpio archive being written into memory.
#[derive(Debug, Default)]
pub struct CpioWriter {
    out: Vec<u8>,
    ino: u32,
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

impl CpioWriter {
    /// An empty archive.
    pub fn new() -> Self {
        CpioWriter {
            out: Vec::new(),
            ino: 0,
        }
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> Result<(), CpioError> {
        if name.is_empty() || name.starts_with('/') || name.contains('\0') {
            return Err(CpioError::BadName(name.to_string()));
        }
        let size = u32::try_from(data.len()).map_err(|_| CpioError::TooBig {
            name: name.to_string(),
            len: data.len(),
        })?;
        let namesize =
            u32::try_from(name.len() + 1).map_err(|_| CpioError::BadName(name.to_string()))?;
        self.ino = self.ino.wrapping_add(1);
        let nlink = if mode & 0o170_000 == S_IFDIR { 2 } else { 1 };
        let fields = [
            self.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
        Ok(())
    }

    /// A directory (`perm` e.g. 0o755).
    pub fn dir(&mut self, name: &str, perm: u32) -> Result<(), CpioError> {
        self.entry(name, S_IFDIR | (perm & 0o7777), (0, 0), &[])
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> Result<(), CpioError> {
        self.entry(name, S_IFREG | (perm & 0o7777), (0, 0), data)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), CpioError> {
        self.entry(name, S_IFLNK | 0o777, (0, 0), target.as_bytes())
    }

    /// A character device node.
    pub fn char_dev(
        &mut self,
        name: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        self.entry(name, S_IFCHR | (perm & 0o7777), (major, minor), &[])
    }

    /// Ends the archive with `TRAILER!!!` and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.ino = u32::MAX - 1;
        // The trailer name is fixed and valid.
        let _ = self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_newc() {
        let mut w = CpioWriter::new();
        w.file("init", 0o755, b"hello").unwrap();
        let b = w.finish();
        assert_eq!(&b[..6], b"070701");
        assert_eq!(&b[6..14], b"00000001");
        assert_eq!(&b[14..22], b"000081ED");
        assert_eq!(&b[54..62], b"00000005");
        assert_eq!(&b[94..102], b"00000005");
        assert_eq!(&b[110..115], b"init\0");
        // 110 + 5 = 115, padded to 116; data at 116, 5 bytes, padded to 124.
        assert_eq!(&b[116..121], b"hello");
        assert_eq!(&b[124..130], b"070701");
        assert_eq!(b.len() % 4, 0);
        assert!(b.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn bad_names_are_refused() {
        let mut w = CpioWriter::new();
        assert_eq!(
            w.file("/init", 0o755, b""),
            Err(CpioError::BadName("/init".into()))
        );
        assert_eq!(w.dir("", 0o755), Err(CpioError::BadName(String::new())));
    }

    /// Debian's cpio lists what the writer wrote, with types and sizes.
    #[test]
    fn gnu_cpio_reads_it_back() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut w = CpioWriter::new();
        w.dir("etc", 0o755).unwrap();
        w.dir("etc/kexec-rs", 0o755).unwrap();
        w.file("etc/kexec-rs/kdump.toml", 0o644, b"[save]\n")
            .unwrap();
        w.file("init", 0o755, &[7u8; 4097]).unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        w.char_dev("dev/console", 0o600, 5, 1).unwrap();
        let bytes = w.finish();
        let mut child = Command::new("cpio")
            .args(["-itv", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cpio (Debian package cpio) must be installed for this test");
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(
            lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" etc"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("-rw-r--r--")
                && lines[2].contains(" 7 ")
                && lines[2].ends_with("etc/kexec-rs/kdump.toml"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("-rwxr-xr-x")
                && lines[3].contains(" 4097 ")
                && lines[3].ends_with(" init"),
            "{text}"
        );
        assert!(
            lines[4].starts_with("lrwxrwxrwx") && lines[4].ends_with("bin/sh -> busybox"),
            "{text}"
        );
        assert!(
            lines[5].starts_with("crw-------")
                && lines[5].contains("5,")
                && lines[5].ends_with("dev/console"),
            "{text}"
        );
    }
}
