//! Kernel modules for the capture initramfs: names → files under
//! `/lib/modules/<release>`, dependencies first.
//!
//! The index is `modules.dep` when present (`kernel/fs/9p/9p.ko: kernel/…`),
//! else `modules.order` (one path per line) with each module's own
//! `.modinfo` `depends=` (Debian's linux-image package ships no
//! `modules.dep`; depmod writes it at install). Built-in modules
//! (`modules.builtin`) are skipped. `.ko.zst` and `.ko.gz` are
//! decompressed; `.ko.xz` is refused (no xz decoder here).

use std::collections::BTreeMap;
use std::io::Read;

use crate::kdump::elf::{self, ElfError};
use crate::source::HostSource;

/// A module ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Its name (`_` spelling).
    pub name: String,
    /// Its path relative to the modules directory.
    pub path: String,
    /// The uncompressed ELF.
    pub bytes: Vec<u8>,
}

/// Why modules could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Neither index file.
    #[error("{dir}: neither modules.dep nor modules.order is readable ({source}); is this a modules directory?")]
    NoIndex {
        /// The modules directory.
        dir: String,
        /// The last I/O error.
        source: std::io::Error,
    },
    /// Unknown module.
    #[error("{dir}: no module `{name}` (not in {index}, not built in){}", needed_by.as_ref().map(|n| format!(", needed by `{n}`")).unwrap_or_default())]
    Unknown {
        /// The modules directory.
        dir: String,
        /// The module.
        name: String,
        /// The index file used.
        index: &'static str,
        /// The module that depends on it.
        needed_by: Option<String>,
    },
    /// Unreadable module file.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Compressed in a way not handled.
    #[error("{path}: {format}-compressed modules are not supported: decompress it ({tool}) or install it uncompressed")]
    Compressed {
        /// The file.
        path: String,
        /// The format.
        format: &'static str,
        /// The tool to decompress with.
        tool: &'static str,
    },
    /// Decompression failed.
    #[error("{path}: {format} decompression failed: {message}")]
    Decompress {
        /// The file.
        path: String,
        /// The format.
        format: &'static str,
        /// What the decoder said.
        message: String,
    },
    /// Not a module.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// A dependency cycle.
    #[error("module dependency cycle through `{0}`")]
    Cycle(String),
}

/// A module name in the kernel's spelling (`-` → `_`).
pub fn normalize(name: &str) -> String {
    name.trim_end_matches(".ko").replace('-', "_")
}

/// The module name of a path in an index (`kernel/fs/9p/9p.ko.zst` → `9p`).
fn name_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split(".ko").next().unwrap_or(base);
    normalize(base)
}

/// Largest module accepted (a 6.1 module is well under 10 MiB).
const MAX_MODULE: usize = 64 << 20;

/// The modules index of one directory.
#[derive(Debug, Default)]
pub struct Index {
    dir: String,
    index: &'static str,
    paths: BTreeMap<String, String>,
    deps: Option<BTreeMap<String, Vec<String>>>,
    builtin: Vec<String>,
}

impl Index {
    /// Reads the index of `dir` (absolute) through `src`.
    pub fn read(src: &dyn HostSource, dir: &str) -> Result<Index, ModuleError> {
        let dir = dir.trim_end_matches('/').to_string();
        let text = |f: &str| {
            src.read(&format!("{dir}/{f}"), 16 << 20)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let builtin = text("modules.builtin")
            .map(|t| t.lines().map(name_of).collect())
            .unwrap_or_default();
        let mut ix = Index {
            dir: dir.clone(),
            builtin,
            ..Index::default()
        };
        match text("modules.dep") {
            Ok(t) => {
                ix.index = "modules.dep";
                let mut deps = BTreeMap::new();
                for line in t.lines() {
                    let Some((p, d)) = line.split_once(':') else {
                        continue;
                    };
                    let n = name_of(p.trim());
                    ix.paths.insert(n.clone(), p.trim().to_string());
                    deps.insert(n, d.split_whitespace().map(name_of).collect());
                }
                ix.deps = Some(deps);
            }
            Err(_) => {
                let t = text("modules.order").map_err(|source| ModuleError::NoIndex {
                    dir: dir.clone(),
                    source,
                })?;
                ix.index = "modules.order";
                for p in t.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    ix.paths.insert(name_of(p), p.to_string());
                }
            }
        }
        Ok(ix)
    }

    /// True when `name` is in the index (as a module file, not built in).
    pub fn knows(&self, name: &str) -> bool {
        self.paths.contains_key(&normalize(name))
    }

    /// Reads and decompresses one module file.
    fn load(&self, src: &dyn HostSource, name: &str, rel: &str) -> Result<Module, ModuleError> {
        // modules.order names `.ko`; the file may be compressed beside it.
        let base = rel.split(".ko").next().unwrap_or(rel);
        let mut last = None;
        for ext in [".ko", ".ko.zst", ".ko.gz", ".ko.xz"] {
            let path = format!("{}/{base}{ext}", self.dir);
            match src.read(&path, MAX_MODULE) {
                Ok(raw) => {
                    return Ok(Module {
                        name: name.to_string(),
                        path: format!("{base}{ext}"),
                        bytes: decompress(&path, ext, raw)?,
                    })
                }
                Err(e) => last = Some((path, e)),
            }
        }
        let (path, source) = last.unwrap_or_else(|| {
            (
                rel.to_string(),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        });
        Err(ModuleError::Read { path, source })
    }

    /// `names` and their dependencies, each once, dependencies first.
    pub fn resolve(
        &self,
        src: &dyn HostSource,
        names: &[String],
    ) -> Result<Vec<Module>, ModuleError> {
        let mut out: Vec<Module> = Vec::new();
        let mut visiting: Vec<String> = Vec::new();
        for n in names {
            self.visit(src, &normalize(n), None, &mut visiting, &mut out)?;
        }
        Ok(out)
    }

    fn visit(
        &self,
        src: &dyn HostSource,
        name: &str,
        parent: Option<&str>,
        visiting: &mut Vec<String>,
        out: &mut Vec<Module>,
    ) -> Result<(), ModuleError> {
        if out.iter().any(|m| m.name == name) || self.builtin.iter().any(|b| b == name) {
            return Ok(());
        }
        if visiting.iter().any(|v| v == name) {
            return Err(ModuleError::Cycle(name.to_string()));
        }
        let Some(rel) = self.paths.get(name) else {
            return Err(ModuleError::Unknown {
                dir: self.dir.clone(),
                name: name.to_string(),
                index: self.index,
                needed_by: parent.map(str::to_string),
            });
        };
        let m = self.load(src, name, rel)?;
        let deps = match &self.deps {
            Some(d) => d.get(name).cloned().unwrap_or_default(),
            None => elf::modinfo_depends(&format!("{}/{}", self.dir, m.path), &m.bytes)?
                .iter()
                .map(|d| normalize(d))
                .collect(),
        };
        visiting.push(name.to_string());
        for d in &deps {
            self.visit(src, d, Some(name), visiting, out)?;
        }
        visiting.pop();
        out.push(m);
        Ok(())
    }
}

fn decompress(path: &str, ext: &str, raw: Vec<u8>) -> Result<Vec<u8>, ModuleError> {
    let fail = |format, e: &dyn std::fmt::Display| ModuleError::Decompress {
        path: path.to_string(),
        format,
        message: e.to_string(),
    };
    let mut out = Vec::new();
    match ext {
        ".ko.zst" => {
            let dec = ruzstd::decoding::StreamingDecoder::new(raw.as_slice())
                .map_err(|e| fail("zstd", &e))?;
            dec.take(MAX_MODULE as u64)
                .read_to_end(&mut out)
                .map_err(|e| fail("zstd", &e))?;
        }
        ".ko.gz" => {
            flate2::read::GzDecoder::new(raw.as_slice())
                .take(MAX_MODULE as u64)
                .read_to_end(&mut out)
                .map_err(|e| fail("gzip", &e))?;
        }
        ".ko.xz" => {
            return Err(ModuleError::Compressed {
                path: path.to_string(),
                format: "xz",
                tool: "unxz",
            })
        }
        _ => return Ok(raw),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdump::elf::tests::build;
    use crate::source::RecordingSource;

    const D: &str = "/lib/modules/6.1.0-56-arm64";

    fn ko(deps: &str) -> Vec<u8> {
        build(1, format!("license=GPL\0depends={deps}\0").as_bytes())
    }

    fn tree_without_dep() -> RecordingSource {
        RecordingSource::default()
            .with_file(
                &format!("{D}/modules.order"),
                "kernel/fs/9p/9p.ko\nkernel/net/9p/9pnet.ko\nkernel/net/9p/9pnet_virtio.ko\nkernel/fs/netfs/netfs.ko\nkernel/fs/fscache/fscache.ko\n",
            )
            .with_file(&format!("{D}/modules.builtin"), "kernel/drivers/virtio/virtio.ko\n")
            .with_file(&format!("{D}/kernel/fs/9p/9p.ko"), ko("9pnet,netfs,fscache"))
            .with_file(&format!("{D}/kernel/net/9p/9pnet.ko"), ko(""))
            .with_file(&format!("{D}/kernel/net/9p/9pnet_virtio.ko"), ko("9pnet,virtio"))
            .with_file(&format!("{D}/kernel/fs/netfs/netfs.ko"), ko("fscache"))
            .with_file(&format!("{D}/kernel/fs/fscache/fscache.ko.zst"), crate::image::build::zstd(&ko("")))
    }

    fn names(v: &[Module]) -> Vec<&str> {
        v.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn modinfo_order_deps_first_builtin_skipped() {
        let src = tree_without_dep();
        let ix = Index::read(&src, D).unwrap();
        let mods = ix
            .resolve(&src, &["9pnet_virtio".into(), "9p".into()])
            .unwrap();
        assert_eq!(
            names(&mods),
            ["9pnet", "9pnet_virtio", "fscache", "netfs", "9p"]
        );
        assert_eq!(mods[2].path, "kernel/fs/fscache/fscache.ko.zst");
        assert_eq!(&mods[2].bytes[..4], b"\x7fELF");
    }

    #[test]
    fn modules_dep_wins() {
        let src = tree_without_dep().with_file(
            &format!("{D}/modules.dep"),
            "kernel/fs/9p/9p.ko: kernel/fs/netfs/netfs.ko kernel/net/9p/9pnet.ko\nkernel/fs/netfs/netfs.ko:\nkernel/net/9p/9pnet.ko:\n",
        );
        let ix = Index::read(&src, D).unwrap();
        assert_eq!(
            names(&ix.resolve(&src, &["9p".into()]).unwrap()),
            ["netfs", "9pnet", "9p"]
        );
    }

    #[test]
    fn missing_and_xz_are_named() {
        let src = tree_without_dep().without(&format!("{D}/kernel/net/9p/9pnet.ko"));
        let ix = Index::read(&src, D).unwrap();
        let e = ix.resolve(&src, &["9p".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{D}/kernel/net/9p/9pnet.ko.xz: entity not found")
        );
        let e = ix.resolve(&src, &["ext4".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{D}: no module `ext4` (not in modules.order, not built in)")
        );
        let src = tree_without_dep()
            .with_file(&format!("{D}/kernel/net/9p/9pnet.ko.xz"), vec![0xfd, b'7'])
            .without(&format!("{D}/kernel/net/9p/9pnet.ko"));
        let e = ix.resolve(&src, &["9pnet".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{D}/kernel/net/9p/9pnet.ko.xz: xz-compressed modules are not supported: decompress it (unxz) or install it uncompressed")
        );
    }
}
