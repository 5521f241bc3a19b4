//! The capture initramfs (`initrd = "build"`): a gzip-compressed newc cpio
//! with `/init` = the static kexec-rs binary itself, `/bin/vmcore`, the
//! config and the modules the save target needs, numbered in load order.

use std::io::Write;

use crate::kdump::cpio::{CpioError, CpioWriter};
use crate::kdump::elf::{self, ElfError};
use crate::kdump::modules::Module;

/// Where the config sits inside the initramfs.
pub const CONFIG_PATH: &str = "etc/kexec-rs/kdump.toml";
/// Where `vmcore` sits inside the initramfs.
pub const VMCORE_PATH: &str = "bin/vmcore";
/// The directory of numbered modules inside the initramfs.
pub const MODULES_DIR: &str = "lib/kexec-rs/modules";

/// What goes in.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The kexec-rs binary (`/proc/self/exe`) and its name for messages.
    pub init: (&'a str, &'a [u8]),
    /// The `vmcore` binary and its name.
    pub vmcore: (&'a str, &'a [u8]),
    /// The config text.
    pub config: &'a str,
    /// Modules, in load order.
    pub modules: &'a [Module],
}

/// The built archive.
#[derive(Debug, Clone)]
pub struct Built {
    /// gzip-compressed cpio.
    pub gz: Vec<u8>,
    /// The cpio's own length (what the kernel unpacks into its rootfs is
    /// about the sum of file sizes; this bounds it).
    pub cpio_len: u64,
    /// Sum of the module sizes.
    pub modules_len: u64,
}

/// Why the initramfs could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A dynamically linked program.
    #[error("{0}: not a static executable (it has PT_INTERP): the capture initramfs has no dynamic loader; build kexec-rs and vmcore for aarch64-unknown-linux-musl")]
    NotStatic(String),
    /// Not ELF.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// cpio.
    #[error(transparent)]
    Cpio(#[from] CpioError),
    /// gzip.
    #[error("gzip: {0}")]
    Gzip(#[from] std::io::Error),
}

/// Refuses a program that is not a static ELF executable.
pub fn check_static(name: &str, bytes: &[u8]) -> Result<(), BuildError> {
    if elf::has_interp(name, bytes)? {
        return Err(BuildError::NotStatic(name.to_string()));
    }
    Ok(())
}

/// The cpio archive (uncompressed).
pub fn cpio(inp: &Inputs<'_>) -> Result<Vec<u8>, BuildError> {
    check_static(inp.init.0, inp.init.1)?;
    check_static(inp.vmcore.0, inp.vmcore.1)?;
    let mut w = CpioWriter::new();
    for d in [
        "bin",
        "dev",
        "etc",
        "etc/kexec-rs",
        "lib",
        "lib/kexec-rs",
        MODULES_DIR,
        "mnt",
        "proc",
        "sys",
        "tmp",
    ] {
        w.dir(d, 0o755)?;
    }
    // The kernel opens /dev/console for init's stdio before init runs.
    w.char_dev("dev/console", 0o600, 5, 1)?;
    w.file("init", 0o755, inp.init.1)?;
    w.file(VMCORE_PATH, 0o755, inp.vmcore.1)?;
    w.file(CONFIG_PATH, 0o644, inp.config.as_bytes())?;
    for (i, m) in inp.modules.iter().enumerate() {
        w.file(
            &format!("{MODULES_DIR}/{i:02}-{}.ko", m.name),
            0o644,
            &m.bytes,
        )?;
    }
    Ok(w.finish())
}

/// Builds the gzip-compressed archive.
pub fn build(inp: &Inputs<'_>) -> Result<Built, BuildError> {
    let c = cpio(inp)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&c)?;
    let gz = gz.finish()?;
    Ok(Built {
        gz,
        cpio_len: c.len() as u64,
        modules_len: inp.modules.iter().map(|m| m.bytes.len() as u64).sum(),
    })
}

/// The numbered module names of an unpacked initramfs directory listing,
/// in load order (`00-virtio_mmio.ko` …).
pub fn load_order(mut files: Vec<String>) -> Vec<String> {
    files.retain(|f| f.ends_with(".ko"));
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdump::elf::tests::build as elf_file;

    #[test]
    fn refuses_dynamic_programs() {
        let dynamic = elf_file(elf::PT_INTERP, b"");
        let stat = elf_file(1, b"");
        let inp = Inputs {
            init: ("/proc/self/exe", &dynamic),
            vmcore: ("/usr/bin/vmcore", &stat),
            config: "",
            modules: &[],
        };
        let e = build(&inp).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/proc/self/exe: not a static executable (it has PT_INTERP)"),
            "{e}"
        );
        let inp = Inputs {
            init: ("/proc/self/exe", &stat),
            vmcore: ("/usr/bin/vmcore", b"#!/bin/sh"),
            config: "",
            modules: &[],
        };
        assert_eq!(
            build(&inp).unwrap_err().to_string(),
            "/usr/bin/vmcore: offset 0x0: ELF magic"
        );
    }

    #[test]
    fn contents_and_order() {
        use std::io::Read;
        let stat = elf_file(1, b"");
        let mods = vec![
            Module {
                name: "9pnet".into(),
                path: "kernel/net/9p/9pnet.ko".into(),
                bytes: vec![1; 10],
            },
            Module {
                name: "9p".into(),
                path: "kernel/fs/9p/9p.ko".into(),
                bytes: vec![2; 20],
            },
        ];
        let inp = Inputs {
            init: ("kexec-rs", &stat),
            vmcore: ("vmcore", &stat),
            config: "[save]\n",
            modules: &mods,
        };
        let b = build(&inp).unwrap();
        assert_eq!(b.modules_len, 30);
        let mut c = Vec::new();
        flate2::read::GzDecoder::new(b.gz.as_slice())
            .read_to_end(&mut c)
            .unwrap();
        assert_eq!(c.len() as u64, b.cpio_len);
        let names: Vec<String> = c
            .windows(6)
            .enumerate()
            .filter(|(_, w)| *w == b"070701")
            .filter_map(|(i, _)| {
                let n = usize::from_str_radix(std::str::from_utf8(&c[i + 94..i + 102]).ok()?, 16)
                    .ok()?;
                Some(String::from_utf8_lossy(&c[i + 110..i + 110 + n - 1]).into_owned())
            })
            .collect();
        for want in [
            "dev/console",
            "init",
            "bin/vmcore",
            "etc/kexec-rs/kdump.toml",
            "lib/kexec-rs/modules/00-9pnet.ko",
            "lib/kexec-rs/modules/01-9p.ko",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert_eq!(
            load_order(vec![
                "01-9p.ko".into(),
                "README".into(),
                "00-9pnet.ko".into()
            ]),
            vec!["00-9pnet.ko".to_string(), "01-9p.ko".to_string()]
        );
    }
}
