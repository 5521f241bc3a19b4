//! The purgatory image header and parameter block: the contract between the
//! loader (which fills the block in its copy of the image) and the purgatory
//! (which reads it in place). Little-endian, `#[repr(C)]`, sizes asserted;
//! the assembly that emits the header uses the `offset_of!` values below.
//!
//! Image layout (offsets from the load address):
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | [`HEADER_SIZE`] | [`Header`]; its first word is a branch to the entry code, so the entry point is the load address |
//! | `params_offset` (64) | [`PARAMS_SIZE`] | [`Params`], zero in the built image until the loader fills it |
//! | ... | | code, data, relocations |
//! | file end .. `image_size` | | zero-filled by the loader: `.bss`, stack, page-table pool |
#![forbid(unsafe_code)]

use core::mem::{offset_of, size_of};

/// `Header::magic`.
pub const HEADER_MAGIC: [u8; 8] = *b"KXRSPURG";
/// `Params::magic` once the loader has filled the block (the built image
/// holds zeros there, and the purgatory refuses to run without it).
pub const PARAMS_MAGIC: [u8; 8] = *b"KXRSPARM";
/// Layout version of both structures.
pub const VERSION: u32 = 1;
/// Segments the block can describe: `KEXEC_SEGMENT_MAX` (include/linux/kexec.h).
pub const MAX_SEGMENTS: usize = 16;
/// Alignment the load address must have (page tables inside `.bss` are
/// 4 KiB-aligned relative to the image start).
pub const LOAD_ALIGN: u64 = 4096;

/// `Params::flags`: verify with the MMU and caches off (slow; for
/// measurements and as an escape hatch).
pub const FLAG_NO_MMU: u64 = 1 << 0;
/// `Params::flags`: hash in software even when the CPU has the SHA-256
/// instructions.
pub const FLAG_NO_SHA_INSNS: u64 = 1 << 1;
/// `Params::flags`: print nothing on success (mismatches are always printed).
pub const FLAG_QUIET: u64 = 1 << 2;
/// Every flag this version understands.
pub const FLAGS_KNOWN: u64 = FLAG_NO_MMU | FLAG_NO_SHA_INSNS | FLAG_QUIET;

/// The first 64 bytes of the image.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `b <entry code>`: execution starts at offset 0.
    pub code0: u32,
    /// Reserved, 0.
    pub code1: u32,
    /// [`HEADER_MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: u32,
    /// `size_of::<Header>()`.
    pub header_size: u32,
    /// Offset of [`Params`] from the image start.
    pub params_offset: u64,
    /// `size_of::<Params>()`.
    pub params_size: u64,
    /// Bytes from the load address the purgatory uses, `.bss`, stack and
    /// page tables included: the segment's `memsz`.
    pub image_size: u64,
    /// Offset of the entry point (0).
    pub entry_offset: u64,
    /// Reserved, 0.
    pub reserved: u64,
}

/// Size of [`Header`].
pub const HEADER_SIZE: usize = 64;
const _: () = assert!(size_of::<Header>() == HEADER_SIZE);
/// `offset_of!(Header, code1)`.
pub const HDR_CODE1: usize = offset_of!(Header, code1);
/// `offset_of!(Header, magic)`.
pub const HDR_MAGIC: usize = offset_of!(Header, magic);
/// `offset_of!(Header, version)`.
pub const HDR_VERSION: usize = offset_of!(Header, version);
/// `offset_of!(Header, header_size)`.
pub const HDR_HEADER_SIZE: usize = offset_of!(Header, header_size);
/// `offset_of!(Header, params_offset)`.
pub const HDR_PARAMS_OFFSET: usize = offset_of!(Header, params_offset);
/// `offset_of!(Header, params_size)`.
pub const HDR_PARAMS_SIZE: usize = offset_of!(Header, params_size);
/// `offset_of!(Header, image_size)`.
pub const HDR_IMAGE_SIZE: usize = offset_of!(Header, image_size);
/// `offset_of!(Header, entry_offset)`.
pub const HDR_ENTRY_OFFSET: usize = offset_of!(Header, entry_offset);
/// `offset_of!(Header, reserved)`.
pub const HDR_RESERVED: usize = offset_of!(Header, reserved);

/// One segment to verify.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentDigest {
    /// Physical address of its first byte.
    pub addr: u64,
    /// Bytes hashed (the segment's `bufsz`; the zero fill after it is not).
    pub len: u64,
    /// Expected SHA-256.
    pub sha256: [u8; 32],
}

/// Size of [`SegmentDigest`].
pub const SEGMENT_DIGEST_SIZE: usize = 48;
const _: () = assert!(size_of::<SegmentDigest>() == SEGMENT_DIGEST_SIZE);

/// The parameter block the loader fills.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// [`PARAMS_MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: u32,
    /// Entries of `segments` in use.
    pub nr_segments: u32,
    /// Physical address the purgatory branches to.
    pub kernel_entry: u64,
    /// Physical address of the DTB, passed in `x0`.
    pub dtb: u64,
    /// Physical base of a PL011 UART for messages; 0 for none.
    pub uart_pl011: u64,
    /// `FLAG_*`.
    pub flags: u64,
    /// The segments, `nr_segments` of them.
    pub segments: [SegmentDigest; MAX_SEGMENTS],
}

/// Size of [`Params`].
pub const PARAMS_SIZE: usize = 48 + MAX_SEGMENTS * SEGMENT_DIGEST_SIZE;
const _: () = assert!(size_of::<Params>() == PARAMS_SIZE);
const _: () = assert!(PARAMS_SIZE == 816);
const _: () = assert!(offset_of!(Params, segments) == 48);
/// The parameter block follows the header directly.
pub const PARAMS_OFFSET: usize = HEADER_SIZE;

/// Why an image or a parameter block was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// Fewer bytes than the header, or than the block it points at.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        have: u64,
    },
    /// `magic` is not [`HEADER_MAGIC`].
    BadMagic,
    /// An unknown layout version.
    Version(u32),
    /// `header_size`/`params_size` disagree with this crate's layout.
    Size {
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u64,
    },
    /// `image_size` smaller than the file, or not a multiple of 4 KiB.
    ImageSize(u64),
    /// More segments than [`MAX_SEGMENTS`].
    TooManySegments(usize),
    /// Unknown bits in `flags`.
    Flags(u64),
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated { needed, have } => {
                write!(f, "image truncated: {have} bytes, {needed} needed")
            }
            Self::BadMagic => write!(f, "not a purgatory image (no KXRSPURG magic)"),
            Self::Version(v) => write!(
                f,
                "purgatory layout version {v}, this loader knows {VERSION}"
            ),
            Self::Size { field, value } => write!(
                f,
                "purgatory header {field} = {value} does not match this loader's layout"
            ),
            Self::ImageSize(v) => write!(
                f,
                "purgatory image_size {v:#x} is smaller than the file or not 4 KiB-aligned"
            ),
            Self::TooManySegments(n) => write!(
                f,
                "{n} segments to verify, the purgatory holds at most {MAX_SEGMENTS}"
            ),
            Self::Flags(v) => write!(f, "unknown purgatory flags {v:#x}"),
        }
    }
}

fn le32(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(w)
}

fn le64(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

impl Header {
    /// Reads and checks the header at the start of `image` (the file bytes).
    pub fn parse(image: &[u8]) -> Result<Header, LayoutError> {
        if image.len() < HEADER_SIZE {
            return Err(LayoutError::Truncated {
                needed: HEADER_SIZE as u64,
                have: image.len() as u64,
            });
        }
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&image[HDR_MAGIC..HDR_MAGIC + 8]);
        let h = Header {
            code0: le32(image, 0),
            code1: le32(image, HDR_CODE1),
            magic,
            version: le32(image, HDR_VERSION),
            header_size: le32(image, HDR_HEADER_SIZE),
            params_offset: le64(image, HDR_PARAMS_OFFSET),
            params_size: le64(image, HDR_PARAMS_SIZE),
            image_size: le64(image, HDR_IMAGE_SIZE),
            entry_offset: le64(image, HDR_ENTRY_OFFSET),
            reserved: le64(image, HDR_RESERVED),
        };
        if h.magic != HEADER_MAGIC {
            return Err(LayoutError::BadMagic);
        }
        if h.version != VERSION {
            return Err(LayoutError::Version(h.version));
        }
        if h.header_size as usize != HEADER_SIZE {
            return Err(LayoutError::Size {
                field: "header_size",
                value: h.header_size.into(),
            });
        }
        if h.params_size != PARAMS_SIZE as u64 {
            return Err(LayoutError::Size {
                field: "params_size",
                value: h.params_size,
            });
        }
        let end = h
            .params_offset
            .checked_add(h.params_size)
            .ok_or(LayoutError::Size {
                field: "params_offset",
                value: h.params_offset,
            })?;
        if h.params_offset < HEADER_SIZE as u64 || h.params_offset & 7 != 0 {
            return Err(LayoutError::Size {
                field: "params_offset",
                value: h.params_offset,
            });
        }
        if end > image.len() as u64 {
            return Err(LayoutError::Truncated {
                needed: end,
                have: image.len() as u64,
            });
        }
        if h.image_size < image.len() as u64 || h.image_size & (LOAD_ALIGN - 1) != 0 {
            return Err(LayoutError::ImageSize(h.image_size));
        }
        if h.entry_offset >= image.len() as u64 || h.entry_offset & 3 != 0 {
            return Err(LayoutError::Size {
                field: "entry_offset",
                value: h.entry_offset,
            });
        }
        Ok(h)
    }
}

impl Params {
    /// An empty block (what the built image holds, magic included as zero).
    pub const ZERO: Params = Params {
        magic: [0; 8],
        version: 0,
        nr_segments: 0,
        kernel_entry: 0,
        dtb: 0,
        uart_pl011: 0,
        flags: 0,
        segments: [SegmentDigest {
            addr: 0,
            len: 0,
            sha256: [0; 32],
        }; MAX_SEGMENTS],
    };

    /// A filled block.
    pub fn new(
        kernel_entry: u64,
        dtb: u64,
        uart_pl011: u64,
        flags: u64,
        segments: &[SegmentDigest],
    ) -> Result<Params, LayoutError> {
        if segments.len() > MAX_SEGMENTS {
            return Err(LayoutError::TooManySegments(segments.len()));
        }
        if flags & !FLAGS_KNOWN != 0 {
            return Err(LayoutError::Flags(flags));
        }
        let mut p = Params {
            magic: PARAMS_MAGIC,
            version: VERSION,
            nr_segments: segments.len() as u32,
            kernel_entry,
            dtb,
            uart_pl011,
            flags,
            ..Params::ZERO
        };
        p.segments[..segments.len()].copy_from_slice(segments);
        Ok(p)
    }

    /// The segments in use (`nr_segments`, clamped to [`MAX_SEGMENTS`]).
    pub fn used(&self) -> &[SegmentDigest] {
        &self.segments[..(self.nr_segments as usize).min(MAX_SEGMENTS)]
    }

    /// Checks what the purgatory relies on before it trusts the block.
    pub fn check(&self) -> Result<(), LayoutError> {
        if self.magic != PARAMS_MAGIC {
            return Err(LayoutError::BadMagic);
        }
        if self.version != VERSION {
            return Err(LayoutError::Version(self.version));
        }
        if self.nr_segments as usize > MAX_SEGMENTS {
            return Err(LayoutError::TooManySegments(self.nr_segments as usize));
        }
        if self.flags & !FLAGS_KNOWN != 0 {
            return Err(LayoutError::Flags(self.flags));
        }
        Ok(())
    }

    /// The block as bytes, little-endian, at the `offset_of!` positions.
    pub fn to_bytes(&self) -> [u8; PARAMS_SIZE] {
        let mut b = [0u8; PARAMS_SIZE];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(offset_of!(Params, magic), &self.magic);
        put(offset_of!(Params, version), &self.version.to_le_bytes());
        put(
            offset_of!(Params, nr_segments),
            &self.nr_segments.to_le_bytes(),
        );
        put(
            offset_of!(Params, kernel_entry),
            &self.kernel_entry.to_le_bytes(),
        );
        put(offset_of!(Params, dtb), &self.dtb.to_le_bytes());
        put(
            offset_of!(Params, uart_pl011),
            &self.uart_pl011.to_le_bytes(),
        );
        put(offset_of!(Params, flags), &self.flags.to_le_bytes());
        for (i, s) in self.segments.iter().enumerate() {
            let o = offset_of!(Params, segments) + i * SEGMENT_DIGEST_SIZE;
            put(o + offset_of!(SegmentDigest, addr), &s.addr.to_le_bytes());
            put(o + offset_of!(SegmentDigest, len), &s.len.to_le_bytes());
            put(o + offset_of!(SegmentDigest, sha256), &s.sha256);
        }
        b
    }

    /// Reads a block from little-endian bytes (the inverse of [`Params::to_bytes`]).
    pub fn from_bytes(b: &[u8; PARAMS_SIZE]) -> Params {
        let mut p = Params::ZERO;
        p.magic
            .copy_from_slice(&b[offset_of!(Params, magic)..][..8]);
        p.version = le32(b, offset_of!(Params, version));
        p.nr_segments = le32(b, offset_of!(Params, nr_segments));
        p.kernel_entry = le64(b, offset_of!(Params, kernel_entry));
        p.dtb = le64(b, offset_of!(Params, dtb));
        p.uart_pl011 = le64(b, offset_of!(Params, uart_pl011));
        p.flags = le64(b, offset_of!(Params, flags));
        for (i, s) in p.segments.iter_mut().enumerate() {
            let o = offset_of!(Params, segments) + i * SEGMENT_DIGEST_SIZE;
            s.addr = le64(b, o + offset_of!(SegmentDigest, addr));
            s.len = le64(b, o + offset_of!(SegmentDigest, len));
            s.sha256
                .copy_from_slice(&b[o + offset_of!(SegmentDigest, sha256)..][..32]);
        }
        p
    }
}

/// Writes `params` into the loader's copy of the image (the file bytes).
pub fn fill(image: &mut [u8], params: &Params) -> Result<Header, LayoutError> {
    let h = Header::parse(image)?;
    let off = h.params_offset as usize; // checked against image.len() by parse
    image[off..off + PARAMS_SIZE].copy_from_slice(&params.to_bytes());
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> [u8; 4096] {
        let mut b = [0u8; 4096];
        b[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
        b[HDR_MAGIC..HDR_MAGIC + 8].copy_from_slice(&HEADER_MAGIC);
        b[HDR_VERSION..][..4].copy_from_slice(&VERSION.to_le_bytes());
        b[HDR_HEADER_SIZE..][..4].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        b[HDR_PARAMS_OFFSET..][..8].copy_from_slice(&(PARAMS_OFFSET as u64).to_le_bytes());
        b[HDR_PARAMS_SIZE..][..8].copy_from_slice(&(PARAMS_SIZE as u64).to_le_bytes());
        b[HDR_IMAGE_SIZE..][..8].copy_from_slice(&0x3000u64.to_le_bytes());
        b
    }

    #[test]
    fn offsets_match_the_documented_layout() {
        assert_eq!(
            (HDR_CODE1, HDR_MAGIC, HDR_VERSION, HDR_HEADER_SIZE),
            (4, 8, 16, 20)
        );
        assert_eq!(
            (
                HDR_PARAMS_OFFSET,
                HDR_PARAMS_SIZE,
                HDR_IMAGE_SIZE,
                HDR_ENTRY_OFFSET,
                HDR_RESERVED
            ),
            (24, 32, 40, 48, 56)
        );
        assert_eq!(offset_of!(Params, magic), 0);
        assert_eq!(offset_of!(Params, version), 8);
        assert_eq!(offset_of!(Params, nr_segments), 12);
        assert_eq!(offset_of!(Params, kernel_entry), 16);
        assert_eq!(offset_of!(Params, dtb), 24);
        assert_eq!(offset_of!(Params, uart_pl011), 32);
        assert_eq!(offset_of!(Params, flags), 40);
        assert_eq!(offset_of!(Params, segments), 48);
        assert_eq!(offset_of!(SegmentDigest, addr), 0);
        assert_eq!(offset_of!(SegmentDigest, len), 8);
        assert_eq!(offset_of!(SegmentDigest, sha256), 16);
        assert_eq!(core::mem::align_of::<Params>(), 8);
    }

    #[test]
    fn fill_writes_little_endian_at_the_header_offset() {
        let mut img = image();
        let seg = SegmentDigest {
            addr: 0x4020_0000,
            len: 0x1234,
            sha256: [0xab; 32],
        };
        let p = Params::new(
            0x4020_0000,
            0x42c0_0000,
            0x0900_0000,
            FLAG_QUIET,
            &[seg, seg],
        )
        .unwrap();
        let h = fill(&mut img, &p).unwrap();
        assert_eq!(h.image_size, 0x3000);
        let b = &img[PARAMS_OFFSET..];
        assert_eq!(&b[0..8], b"KXRSPARM");
        assert_eq!(&b[8..16], &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&b[16..24], &0x4020_0000u64.to_le_bytes());
        assert_eq!(&b[24..32], &0x42c0_0000u64.to_le_bytes());
        assert_eq!(&b[32..40], &0x0900_0000u64.to_le_bytes());
        assert_eq!(&b[40..48], &FLAG_QUIET.to_le_bytes());
        assert_eq!(&b[48..56], &0x4020_0000u64.to_le_bytes());
        assert_eq!(&b[56..64], &0x1234u64.to_le_bytes());
        assert_eq!(&b[64..96], &[0xab; 32]);
        assert_eq!(&b[96..96 + 8], &0x4020_0000u64.to_le_bytes());
        assert!(b[144..PARAMS_SIZE].iter().all(|&x| x == 0));
        let back = Params::from_bytes(b[..PARAMS_SIZE].try_into().unwrap());
        assert_eq!(back, p);
        assert_eq!(back.used().len(), 2);
        assert_eq!(back.check(), Ok(()));
    }

    #[test]
    fn header_negative() {
        let mut img = image();
        img[HDR_MAGIC] ^= 1;
        assert_eq!(Header::parse(&img), Err(LayoutError::BadMagic));
        let mut img = image();
        img[HDR_VERSION] = 2;
        assert_eq!(Header::parse(&img), Err(LayoutError::Version(2)));
        let mut img = image();
        img[HDR_PARAMS_SIZE] ^= 1;
        assert_eq!(
            Header::parse(&img),
            Err(LayoutError::Size {
                field: "params_size",
                value: PARAMS_SIZE as u64 ^ 1
            })
        );
        let mut img = image();
        img[HDR_IMAGE_SIZE] = 0x10; // 0x3000 -> 0x3010, not page-aligned
        assert_eq!(Header::parse(&img), Err(LayoutError::ImageSize(0x3010)));
        let img = image();
        assert_eq!(
            Header::parse(&img[..100]),
            Err(LayoutError::Truncated {
                needed: (PARAMS_OFFSET + PARAMS_SIZE) as u64,
                have: 100
            })
        );
        assert_eq!(
            Header::parse(&img[..10]),
            Err(LayoutError::Truncated {
                needed: 64,
                have: 10
            })
        );
    }

    #[test]
    fn params_negative() {
        let seg = SegmentDigest::default();
        assert_eq!(
            Params::new(0, 0, 0, 0, &[seg; 17]),
            Err(LayoutError::TooManySegments(17))
        );
        assert_eq!(
            Params::new(0, 0, 0, 1 << 9, &[]),
            Err(LayoutError::Flags(1 << 9))
        );
        assert_eq!(Params::ZERO.check(), Err(LayoutError::BadMagic));
        let mut p = Params::new(0, 0, 0, 0, &[seg]).unwrap();
        p.nr_segments = 17;
        assert_eq!(p.check(), Err(LayoutError::TooManySegments(17)));
        assert_eq!(p.used().len(), MAX_SEGMENTS);
    }
}
