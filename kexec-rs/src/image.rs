//! Kernel image probing: arm64 `Image`, `Image.gz`, EFI zboot (gzip or
//! zstd payload), UKI (PE with `.linux`, `.initrd`, `.cmdline`), and ELF
//! `vmlinux`. Everything ends as a raw arm64 `Image` (what both kexec
//! syscalls need on arm64) plus its parsed header.
//!
//! Formats:
//! - arm64 Image header (`Documentation/arm64/booting.rst`): `code0`,
//!   `code1`, `text_offset` at 8, `image_size` at 16, `flags` at 24, three
//!   reserved words, `magic = "ARM\x64"` at 0x38, PE offset at 0x3c. Flags:
//!   bit 0 big-endian, bits 1–2 page size (1 = 4K, 2 = 16K, 3 = 64K),
//!   bit 3 "may be placed anywhere in physical memory".
//! - EFI zboot (`drivers/firmware/efi/libstub/zboot-header.S`): `MZ` at 0,
//!   `zimg` at 4, payload offset at 8, payload size at 12, compression
//!   type as a NUL-terminated string at 24 (`gzip`, `zstd`, …).
//! - UKI: a PE/COFF image whose `.linux` section holds the kernel.

use std::io::Read;

use serde::Serialize;

/// Largest decompressed kernel accepted (guards against decompression bombs).
pub const MAX_KERNEL_BYTES: u64 = 1 << 30;
/// arm64 `Image` header magic at offset 0x38.
pub const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
/// Offset of the arm64 magic.
pub const ARM64_MAGIC_OFFSET: usize = 0x38;
/// Bytes of the arm64 `Image` header.
pub const ARM64_HEADER_SIZE: usize = 64;
/// `text_offset` assumed for images with `image_size == 0` (pre-3.17).
pub const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;

/// The container a kernel came in; a probe may pass through several
/// (a UKI holding a zboot holding an Image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    /// Raw arm64 `Image`.
    Image,
    /// gzip-compressed `Image` (`Image.gz`).
    Gzip,
    /// EFI zboot with a gzip payload.
    ZbootGzip,
    /// EFI zboot with a zstd payload.
    ZbootZstd,
    /// Unified kernel image (PE with `.linux`).
    Uki,
    /// ELF `vmlinux`, flattened from its `PT_LOAD` segments.
    ElfVmlinux,
}

/// The parsed arm64 `Image` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Arm64Header {
    /// Offset from a 2 MiB-aligned base where the image must be placed.
    pub text_offset: u64,
    /// Bytes the kernel occupies once running (including BSS); 0 on
    /// pre-3.17 kernels.
    pub image_size: u64,
    /// Raw flags word.
    pub flags: u64,
    /// Page size the kernel was built for (`None`: unspecified).
    pub page_size: Option<u64>,
    /// Bit 3: the image may sit anywhere in physical memory.
    pub place_anywhere: bool,
}

impl Arm64Header {
    /// Bytes to reserve for the running kernel: `image_size`, or the file
    /// length for old images that do not say.
    pub fn effective_size(&self, file_len: u64) -> u64 {
        if self.image_size == 0 {
            file_len
        } else {
            self.image_size.max(file_len)
        }
    }
}

/// A probed kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage {
    /// Containers unwrapped, outermost first, ending with [`Container::Image`].
    pub containers: Vec<Container>,
    /// The raw arm64 `Image`.
    pub raw: Vec<u8>,
    /// Its header.
    pub header: Arm64Header,
    /// A UKI's `.initrd`.
    pub embedded_initrd: Option<Vec<u8>>,
    /// A UKI's `.cmdline`.
    pub embedded_cmdline: Option<String>,
}

/// Why a kernel image could not be used. Every variant names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The file ends before a structure it needs.
    #[error(
        "{file}: truncated {what}: needs {needed} bytes at offset {offset:#x}, file has {len}"
    )]
    Truncated {
        /// The file.
        file: String,
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Bytes needed from there.
        needed: u64,
        /// File length.
        len: u64,
    },
    /// Not any format this loader knows.
    #[error("{file}: not an arm64 kernel: no \"ARM\\x64\" magic at offset 0x38, no gzip, zboot, PE or ELF header (first bytes {first:02x?})")]
    Unknown {
        /// The file.
        file: String,
        /// Its first bytes.
        first: Vec<u8>,
    },
    /// A big-endian arm64 kernel.
    #[error("{file}: arm64 Image at offset 0x18: flags {flags:#x} say big-endian; only little-endian kernels are supported")]
    BigEndian {
        /// The file.
        file: String,
        /// The flags word.
        flags: u64,
    },
    /// A compressed stream that does not decompress.
    #[error("{file}: {format} data at offset {offset:#x} does not decompress: {message}")]
    Decompress {
        /// The file.
        file: String,
        /// `gzip` or `zstd`.
        format: &'static str,
        /// Where the stream starts.
        offset: u64,
        /// The decoder's message.
        message: String,
    },
    /// Decompressed output larger than [`MAX_KERNEL_BYTES`].
    #[error("{file}: {format} data at offset {offset:#x} decompresses to more than {MAX_KERNEL_BYTES} bytes")]
    TooLarge {
        /// The file.
        file: String,
        /// `gzip` or `zstd`.
        format: &'static str,
        /// Where the stream starts.
        offset: u64,
    },
    /// A structure with a bad field.
    #[error("{file}: {what} at offset {offset:#x}: {reason}")]
    Bad {
        /// The file.
        file: String,
        /// The structure.
        what: &'static str,
        /// Where.
        offset: u64,
        /// Expected versus found.
        reason: String,
    },
    /// Containers nested too deep (a UKI in a UKI …).
    #[error("{file}: kernel containers nested more than 3 deep")]
    TooDeep {
        /// The file.
        file: String,
    },
}

fn truncated(file: &str, what: &'static str, offset: u64, needed: u64, len: usize) -> ImageError {
    ImageError::Truncated {
        file: file.to_string(),
        what,
        offset,
        needed,
        len: len as u64,
    }
}

fn get<'a>(
    file: &str,
    b: &'a [u8],
    what: &'static str,
    off: u64,
    n: u64,
) -> Result<&'a [u8], ImageError> {
    usize::try_from(off)
        .ok()
        .zip(usize::try_from(n).ok())
        .and_then(|(o, n)| b.get(o..o.checked_add(n)?))
        .ok_or_else(|| truncated(file, what, off, n, b.len()))
}

fn u16_le(file: &str, b: &[u8], what: &'static str, off: u64) -> Result<u16, ImageError> {
    let s = get(file, b, what, off, 2)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}
fn u32_le(file: &str, b: &[u8], what: &'static str, off: u64) -> Result<u32, ImageError> {
    let s = get(file, b, what, off, 4)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_le(file: &str, b: &[u8], what: &'static str, off: u64) -> Result<u64, ImageError> {
    let s = get(file, b, what, off, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// Parses the 64-byte arm64 `Image` header at the start of `b`.
pub fn parse_arm64_header(file: &str, b: &[u8]) -> Result<Arm64Header, ImageError> {
    get(file, b, "arm64 Image header", 0, ARM64_HEADER_SIZE as u64)?;
    let magic = get(file, b, "arm64 Image header", ARM64_MAGIC_OFFSET as u64, 4)?;
    if magic != ARM64_MAGIC {
        return Err(ImageError::Bad {
            file: file.to_string(),
            what: "arm64 Image header",
            offset: ARM64_MAGIC_OFFSET as u64,
            reason: format!("magic {magic:02x?}, expected 41 52 4d 64 (\"ARM\\x64\")"),
        });
    }
    let text_offset = u64_le(file, b, "arm64 Image header", 8)?;
    let image_size = u64_le(file, b, "arm64 Image header", 16)?;
    let flags = u64_le(file, b, "arm64 Image header", 24)?;
    if flags & 1 != 0 {
        return Err(ImageError::BigEndian {
            file: file.to_string(),
            flags,
        });
    }
    let page_size = match (flags >> 1) & 3 {
        1 => Some(4096),
        2 => Some(16384),
        3 => Some(65536),
        _ => None,
    };
    let text_offset = if image_size == 0 {
        LEGACY_TEXT_OFFSET
    } else {
        text_offset
    };
    if text_offset % 4096 != 0 || text_offset >= 2 << 20 {
        return Err(ImageError::Bad {
            file: file.to_string(),
            what: "arm64 Image header",
            offset: 8,
            reason: format!(
                "text_offset {text_offset:#x} is not a page-aligned offset below 2 MiB"
            ),
        });
    }
    Ok(Arm64Header {
        text_offset,
        image_size,
        flags,
        page_size,
        place_anywhere: flags & 8 != 0,
    })
}

fn read_limited(
    file: &str,
    format: &'static str,
    offset: u64,
    mut r: impl Read,
) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    (&mut r)
        .take(MAX_KERNEL_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| ImageError::Decompress {
            file: file.to_string(),
            format,
            offset,
            message: e.to_string(),
        })?;
    if out.len() as u64 > MAX_KERNEL_BYTES {
        return Err(ImageError::TooLarge {
            file: file.to_string(),
            format,
            offset,
        });
    }
    Ok(out)
}

/// Decompresses one gzip member starting at `offset` (trailing bytes ignored).
pub fn gunzip(file: &str, b: &[u8], offset: u64) -> Result<Vec<u8>, ImageError> {
    let o =
        usize::try_from(offset).map_err(|_| truncated(file, "gzip stream", offset, 10, b.len()))?;
    let data = b
        .get(o..)
        .ok_or_else(|| truncated(file, "gzip stream", offset, 10, b.len()))?;
    read_limited(file, "gzip", offset, flate2::read::GzDecoder::new(data))
}

/// Decompresses one zstd frame starting at `offset`.
pub fn unzstd(file: &str, b: &[u8], offset: u64) -> Result<Vec<u8>, ImageError> {
    let o =
        usize::try_from(offset).map_err(|_| truncated(file, "zstd stream", offset, 4, b.len()))?;
    let data = b
        .get(o..)
        .ok_or_else(|| truncated(file, "zstd stream", offset, 4, b.len()))?;
    let dec =
        ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| ImageError::Decompress {
            file: file.to_string(),
            format: "zstd",
            offset,
            message: e.to_string(),
        })?;
    read_limited(file, "zstd", offset, dec)
}

/// A PE section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeSection {
    /// Name (up to 8 bytes, NULs stripped).
    pub name: String,
    /// File offset of its data.
    pub offset: u64,
    /// Bytes of data (`min(VirtualSize, SizeOfRawData)`).
    pub size: u64,
}

/// Reads the PE section table (`MZ` at 0, `e_lfanew` at 0x3c, `PE\0\0`).
pub fn pe_sections(file: &str, b: &[u8]) -> Result<Vec<PeSection>, ImageError> {
    let bad = |offset: u64, reason: String| ImageError::Bad {
        file: file.to_string(),
        what: "PE header",
        offset,
        reason,
    };
    if get(file, b, "MS-DOS header", 0, 2)? != b"MZ" {
        return Err(bad(0, "expected \"MZ\"".into()));
    }
    let pe = u64::from(u32_le(file, b, "MS-DOS header", 0x3c)?);
    let sig = get(file, b, "PE header", pe, 24)?;
    if &sig[..4] != b"PE\0\0" {
        return Err(bad(
            pe,
            format!("signature {:02x?}, expected \"PE\\0\\0\"", &sig[..4]),
        ));
    }
    let nsec = u64::from(u16_le(file, b, "COFF header", pe + 6)?);
    let opt = u64::from(u16_le(file, b, "COFF header", pe + 20)?);
    let table = pe + 24 + opt;
    let mut out = Vec::new();
    for i in 0..nsec {
        let s = table + i * 40;
        let raw = get(file, b, "PE section table", s, 40)?;
        let name: String = raw[..8]
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as char)
            .collect();
        let vsize = u64::from(u32_le(file, b, "PE section table", s + 8)?);
        let rsize = u64::from(u32_le(file, b, "PE section table", s + 16)?);
        let roff = u64::from(u32_le(file, b, "PE section table", s + 20)?);
        let size = if vsize == 0 { rsize } else { vsize.min(rsize) };
        get(file, b, "PE section data", roff, size)?;
        out.push(PeSection {
            name,
            offset: roff,
            size,
        });
    }
    Ok(out)
}

/// Flattens an ELF64 little-endian AArch64 `vmlinux` into a raw image:
/// every `PT_LOAD`'s file bytes at `p_paddr - lowest p_paddr`, gaps zeroed
/// (what `objcopy -O binary` produces).
pub fn flatten_elf(file: &str, b: &[u8]) -> Result<Vec<u8>, ImageError> {
    let bad = |offset: u64, reason: String| ImageError::Bad {
        file: file.to_string(),
        what: "ELF header",
        offset,
        reason,
    };
    get(file, b, "ELF header", 0, 64)?;
    if b[4] != 2 || b[5] != 1 {
        return Err(bad(
            4,
            format!(
                "class {} data {}, expected ELF64 little-endian (2, 1)",
                b[4], b[5]
            ),
        ));
    }
    let machine = u16_le(file, b, "ELF header", 18)?;
    if machine != crash_payload::elfcorehdr::EM_AARCH64 {
        return Err(bad(
            18,
            format!("e_machine {machine}, expected 183 (EM_AARCH64)"),
        ));
    }
    let phoff = u64_le(file, b, "ELF header", 32)?;
    let phentsize = u64::from(u16_le(file, b, "ELF header", 54)?);
    let phnum = u64::from(u16_le(file, b, "ELF header", 56)?);
    if phentsize < 56 {
        return Err(bad(54, format!("e_phentsize {phentsize}, expected 56")));
    }
    let mut loads = Vec::new();
    for i in 0..phnum {
        let o = i
            .checked_mul(phentsize)
            .and_then(|x| x.checked_add(phoff))
            .ok_or_else(|| {
                bad(
                    32,
                    format!("e_phoff {phoff:#x} puts program header {i} past 2^64"),
                )
            })?;
        if u32_le(file, b, "ELF program header", o)? != 1 {
            continue;
        }
        let off = u64_le(file, b, "ELF program header", o + 8)?;
        let paddr = u64_le(file, b, "ELF program header", o + 24)?;
        let filesz = u64_le(file, b, "ELF program header", o + 32)?;
        if filesz == 0 {
            continue;
        }
        get(file, b, "PT_LOAD data", off, filesz)?;
        loads.push((paddr, off, filesz, o));
    }
    let base = loads
        .iter()
        .map(|l| l.0)
        .min()
        .ok_or_else(|| bad(phoff, "no PT_LOAD with file data".into()))?;
    let mut end = 0u64;
    for &(paddr, _, filesz, o) in &loads {
        let e = paddr
            .checked_sub(base)
            .and_then(|d| d.checked_add(filesz))
            .filter(|&e| e <= MAX_KERNEL_BYTES)
            .ok_or_else(|| bad(o, format!("PT_LOAD at p_paddr {paddr:#x} spans more than {MAX_KERNEL_BYTES} bytes from {base:#x}")))?;
        end = end.max(e);
    }
    let mut out = vec![0u8; end as usize];
    for &(paddr, off, filesz, _) in &loads {
        let d = (paddr - base) as usize;
        out[d..d + filesz as usize].copy_from_slice(&b[off as usize..(off + filesz) as usize]);
    }
    Ok(out)
}

/// Probes `bytes` (the contents of `file`) and unwraps it down to a raw
/// arm64 `Image`.
pub fn probe(file: &str, bytes: &[u8]) -> Result<KernelImage, ImageError> {
    let mut containers = Vec::new();
    let mut embedded_initrd = None;
    let mut embedded_cmdline = None;
    let mut cur: std::borrow::Cow<'_, [u8]> = std::borrow::Cow::Borrowed(bytes);
    for _ in 0..4 {
        let b: &[u8] = &cur;
        if b.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) == Some(ARM64_MAGIC) {
            let header = parse_arm64_header(file, b)?;
            containers.push(Container::Image);
            return Ok(KernelImage {
                containers,
                raw: cur.into_owned(),
                header,
                embedded_initrd,
                embedded_cmdline,
            });
        }
        if b.starts_with(&[0x1f, 0x8b]) {
            containers.push(Container::Gzip);
            cur = gunzip(file, b, 0)?.into();
            continue;
        }
        if b.starts_with(b"\x7fELF") {
            containers.push(Container::ElfVmlinux);
            cur = flatten_elf(file, b)?.into();
            // A flattened vmlinux must be an Image; do not unwrap further.
            let header = parse_arm64_header(file, &cur)?;
            containers.push(Container::Image);
            return Ok(KernelImage {
                containers,
                raw: cur.into_owned(),
                header,
                embedded_initrd,
                embedded_cmdline,
            });
        }
        if b.len() < ARM64_HEADER_SIZE && containers.is_empty() {
            return Err(truncated(
                file,
                "arm64 Image header",
                0,
                ARM64_HEADER_SIZE as u64,
                b.len(),
            ));
        }
        if b.starts_with(b"MZ") && b.get(4..8) == Some(b"zimg") {
            let off = u64::from(u32_le(file, b, "zboot header", 8)?);
            let size = u64::from(u32_le(file, b, "zboot header", 12)?);
            let comp = get(file, b, "zboot header", 24, 32)?;
            let comp: String = comp
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as char)
                .collect();
            // The payload must lie in the file; its trailing size word is past `size`.
            get(file, b, "zboot payload", off, size)?;
            match comp.as_str() {
                "gzip" => {
                    containers.push(Container::ZbootGzip);
                    cur = gunzip(file, b, off)?.into();
                }
                "zstd" | "zstd22" => {
                    containers.push(Container::ZbootZstd);
                    cur = unzstd(file, b, off)?.into();
                }
                other => {
                    return Err(ImageError::Bad {
                        file: file.to_string(),
                        what: "zboot header",
                        offset: 24,
                        reason: format!(
                            "compression type {other:?}, expected \"gzip\" or \"zstd\""
                        ),
                    })
                }
            }
            continue;
        }
        if b.starts_with(b"MZ") {
            let secs = pe_sections(file, b)?;
            let sec = |n: &str| secs.iter().find(|s| s.name == n);
            let Some(linux) = sec(".linux") else {
                return Err(ImageError::Bad {
                    file: file.to_string(),
                    what: "PE section table",
                    offset: 0x3c,
                    reason: "a PE image without the arm64 magic and without a .linux section (not a kernel or UKI)".into(),
                });
            };
            containers.push(Container::Uki);
            if let Some(i) = sec(".initrd") {
                embedded_initrd = Some(b[i.offset as usize..(i.offset + i.size) as usize].to_vec());
            }
            if let Some(c) = sec(".cmdline") {
                let raw = &b[c.offset as usize..(c.offset + c.size) as usize];
                let end = raw.iter().position(|&x| x == 0).unwrap_or(raw.len());
                embedded_cmdline = Some(String::from_utf8_lossy(&raw[..end]).trim().to_string());
            }
            cur = b[linux.offset as usize..(linux.offset + linux.size) as usize]
                .to_vec()
                .into();
            continue;
        }
        return Err(ImageError::Unknown {
            file: file.to_string(),
            first: b.iter().take(8).copied().collect(),
        });
    }
    Err(ImageError::TooDeep {
        file: file.to_string(),
    })
}

/// Test-input builders (also used by the plan tests).
#[cfg(test)]
pub(crate) mod build {
    /// A fake arm64 Image of `len` bytes with a valid header.
    pub fn image(len: usize, text_offset: u64, image_size: u64, flags: u64) -> Vec<u8> {
        let mut v: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        v[0..4].copy_from_slice(b"MZ@\xfa"); // code0 (EFI stub "MZ" + branch)
        v[8..16].copy_from_slice(&text_offset.to_le_bytes());
        v[16..24].copy_from_slice(&image_size.to_le_bytes());
        v[24..32].copy_from_slice(&flags.to_le_bytes());
        v[32..56].fill(0);
        v[0x38..0x3c].copy_from_slice(super::ARM64_MAGIC);
        v[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        v
    }

    pub fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    /// An EFI zboot file: header, then the payload at 0x100, then the
    /// trailing size word the kernel's Makefile appends.
    pub fn zboot(comp: &str, payload: &[u8], decompressed_len: u32) -> Vec<u8> {
        let mut v = vec![0u8; 0x100];
        v[0..2].copy_from_slice(b"MZ");
        v[4..8].copy_from_slice(b"zimg");
        v[8..12].copy_from_slice(&0x100u32.to_le_bytes());
        v[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        v[24..24 + comp.len()].copy_from_slice(comp.as_bytes());
        v.extend_from_slice(payload);
        v.extend_from_slice(&decompressed_len.to_le_bytes());
        v
    }

    /// A minimal PE with the given sections.
    pub fn pe(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let pe = 0x80usize;
        let table = pe + 24; // no optional header
        let mut data_off = (table + 40 * sections.len() + 0x1ff) & !0x1ff;
        let mut v = vec![0u8; data_off];
        v[0..2].copy_from_slice(b"MZ");
        v[0x3c..0x40].copy_from_slice(&(pe as u32).to_le_bytes());
        v[pe..pe + 4].copy_from_slice(b"PE\0\0");
        v[pe + 4..pe + 6].copy_from_slice(&0xaa64u16.to_le_bytes());
        v[pe + 6..pe + 8].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        for (i, (name, data)) in sections.iter().enumerate() {
            let s = table + 40 * i;
            v[s..s + name.len()].copy_from_slice(name.as_bytes());
            v[s + 8..s + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
            let raw = (data.len() + 0x1ff) & !0x1ff;
            v[s + 16..s + 20].copy_from_slice(&(raw as u32).to_le_bytes());
            v[s + 20..s + 24].copy_from_slice(&(data_off as u32).to_le_bytes());
            data_off += raw;
        }
        for (_, data) in sections {
            v.extend_from_slice(data);
            v.resize((v.len() + 0x1ff) & !0x1ff, 0);
        }
        v
    }

    /// An ELF64 AArch64 vmlinux whose two PT_LOADs hold `img` split at `split`,
    /// with a 0x1000-byte gap between them in the file.
    pub fn vmlinux(img: &[u8], split: usize) -> Vec<u8> {
        use crash_payload::elfcorehdr::{write_headers, ProgramHeader, EM_AARCH64};
        use crash_payload::{PhysAddr, VirtAddr};
        let base = 0xffff_8000_0800_0000u64;
        let mut a = ProgramHeader::load(PhysAddr(base), VirtAddr(base), split as u64);
        a.p_offset = 0x1000;
        let mut b = ProgramHeader::load(
            PhysAddr(base + split as u64),
            VirtAddr(base + split as u64),
            (img.len() - split) as u64,
        );
        b.p_offset = 0x1000 + split as u64 + 0x1000;
        let mut v = vec![0u8; 0x1000];
        write_headers(&mut v, EM_AARCH64, &[a, b]).unwrap();
        v[16] = 2; // ET_EXEC
        v.extend_from_slice(&img[..split]);
        v.extend_from_slice(&[0xeeu8; 0x1000]);
        v.extend_from_slice(&img[split..]);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    const FLAGS_4K: u64 = 0b1010; // 4K pages, place anywhere

    #[test]
    fn raw_image_header() {
        let img = image(4096, 0, 0x1a0_0000, FLAGS_4K);
        let k = probe("vmlinuz", &img).unwrap();
        assert_eq!(k.containers, vec![Container::Image]);
        assert_eq!(
            k.header,
            Arm64Header {
                text_offset: 0,
                image_size: 0x1a0_0000,
                flags: FLAGS_4K,
                page_size: Some(4096),
                place_anywhere: true
            }
        );
        assert_eq!(k.raw, img);
        assert_eq!(k.header.effective_size(4096), 0x1a0_0000);
    }

    #[test]
    fn legacy_image_gets_legacy_text_offset() {
        let k = probe("Image", &image(4096, 0, 0, 0)).unwrap();
        assert_eq!(k.header.text_offset, LEGACY_TEXT_OFFSET);
        assert_eq!(k.header.page_size, None);
        assert_eq!(k.header.effective_size(4096), 4096);
    }

    #[test]
    fn truncated_header_is_exact() {
        let img = image(4096, 0, 0x1a0_0000, FLAGS_4K);
        assert_eq!(
            probe("vmlinuz", &img[..40]).unwrap_err(),
            ImageError::Truncated {
                file: "vmlinuz".into(),
                what: "arm64 Image header",
                offset: 0,
                needed: 64,
                len: 40
            }
        );
        assert_eq!(
            parse_arm64_header("vmlinuz", &img[..60])
                .unwrap_err()
                .to_string(),
            "vmlinuz: truncated arm64 Image header: needs 64 bytes at offset 0x0, file has 60"
        );
    }

    #[test]
    fn flipped_magic_byte_is_unknown() {
        let mut img = image(4096, 0, 0x1a0_0000, FLAGS_4K);
        img[0x38] ^= 0xff;
        img[0] = b'X';
        assert!(matches!(
            probe("vmlinuz", &img),
            Err(ImageError::Unknown { .. })
        ));
        let mut img = image(4096, 0, 0x1a0_0000, FLAGS_4K);
        img[0x3b] = 0x65;
        assert_eq!(
            parse_arm64_header("k", &img).unwrap_err().to_string(),
            "k: arm64 Image header at offset 0x38: magic [41, 52, 4d, 65], expected 41 52 4d 64 (\"ARM\\x64\")"
        );
    }

    #[test]
    fn big_endian_and_bad_text_offset() {
        assert_eq!(
            probe("k", &image(4096, 0, 0x1000, 1)).unwrap_err(),
            ImageError::BigEndian {
                file: "k".into(),
                flags: 1
            }
        );
        assert!(matches!(
            probe("k", &image(4096, 0x123, 0x1000, 0)),
            Err(ImageError::Bad { offset: 8, .. })
        ));
    }

    #[test]
    fn image_gz() {
        let img = image(100_000, 0, 0x20_0000, FLAGS_4K);
        let k = probe("Image.gz", &gzip(&img)).unwrap();
        assert_eq!(k.containers, vec![Container::Gzip, Container::Image]);
        assert_eq!(k.raw, img);
    }

    #[test]
    fn bad_gzip_names_file_and_offset() {
        let img = image(100_000, 0, 0x20_0000, FLAGS_4K);
        let mut gz = gzip(&img);
        let n = gz.len();
        gz[n / 2] ^= 0xff;
        gz.truncate(n - 100);
        match probe("Image.gz", &gz) {
            Err(ImageError::Decompress {
                file,
                format: "gzip",
                offset: 0,
                ..
            }) => assert_eq!(file, "Image.gz"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn zboot_gzip_and_zstd() {
        let img = image(50_000, 0, 0x20_0000, FLAGS_4K);
        let z = zboot("gzip", &gzip(&img), img.len() as u32);
        let k = probe("vmlinuz.efi", &z).unwrap();
        assert_eq!(k.containers, vec![Container::ZbootGzip, Container::Image]);
        assert_eq!(k.raw, img);
        let z = zboot("zstd22", &zstd(&img), img.len() as u32);
        let k = probe("vmlinuz.efi", &z).unwrap();
        assert_eq!(k.containers, vec![Container::ZbootZstd, Container::Image]);
        assert_eq!(k.raw, img);
    }

    #[test]
    fn zboot_errors() {
        let img = image(5000, 0, 0x20_0000, FLAGS_4K);
        let z = zboot("lzma", &gzip(&img), 5000);
        assert_eq!(
            probe("v", &z).unwrap_err().to_string(),
            "v: zboot header at offset 0x18: compression type \"lzma\", expected \"gzip\" or \"zstd\""
        );
        let mut z = zboot("zstd", &zstd(&img), 5000);
        z[0x100] ^= 0xff; // break the zstd frame magic
        assert!(matches!(
            probe("v", &z),
            Err(ImageError::Decompress {
                format: "zstd",
                offset: 0x100,
                ..
            })
        ));
        let z = zboot("gzip", &gzip(&img), 5000);
        assert!(matches!(
            probe("v", &z[..0x120]),
            Err(ImageError::Truncated {
                what: "zboot payload",
                offset: 0x100,
                ..
            })
        ));
    }

    #[test]
    fn uki_sections() {
        let img = image(8192, 0, 0x20_0000, FLAGS_4K);
        let gz = gzip(&img);
        let z = zboot("gzip", &gz, img.len() as u32);
        let uki = pe(&[
            (".osrel", b"ID=debian\n"),
            (".cmdline", b"console=ttyAMA0 quiet\0"),
            (".linux", &z),
            (".initrd", b"070701fake"),
        ]);
        let k = probe("linux.efi", &uki).unwrap();
        assert_eq!(
            k.containers,
            vec![Container::Uki, Container::ZbootGzip, Container::Image]
        );
        assert_eq!(k.raw, img);
        assert_eq!(k.embedded_initrd.as_deref(), Some(&b"070701fake"[..]));
        assert_eq!(k.embedded_cmdline.as_deref(), Some("console=ttyAMA0 quiet"));
        let not_uki = pe(&[(".text", b"code")]);
        assert!(matches!(
            probe("x.efi", &not_uki),
            Err(ImageError::Bad {
                what: "PE section table",
                ..
            })
        ));
    }

    #[test]
    fn elf_vmlinux_is_flattened() {
        let img = image(20_000, 0, 0x20_0000, FLAGS_4K);
        let elf = vmlinux(&img, 8192);
        let k = probe("vmlinux", &elf).unwrap();
        assert_eq!(k.containers, vec![Container::ElfVmlinux, Container::Image]);
        assert_eq!(k.raw, img);
        let mut x86 = elf.clone();
        x86[18] = 62;
        assert_eq!(
            probe("vmlinux", &x86).unwrap_err().to_string(),
            "vmlinux: ELF header at offset 0x12: e_machine 62, expected 183 (EM_AARCH64)"
        );
    }
}
