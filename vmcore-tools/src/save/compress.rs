//! Per-page compression, as makedumpfile stores pages: one independent
//! zlib stream, lzo1x block or zstd frame per page; a page whose compressed
//! form is not smaller than the page is stored raw (`page_desc.flags` 0).

use crate::format::kdump::{
    DUMP_DH_COMPRESSED_LZO, DUMP_DH_COMPRESSED_ZLIB, DUMP_DH_COMPRESSED_ZSTD,
};

/// Page compression of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd frames (makedumpfile 1.7.3+; Debian 12's 1.7.2 cannot read them).
    Zstd,
    /// lzo1x (read by makedumpfile 1.7.2, crash and libkdumpfile).
    Lzo,
    /// zlib streams at the fastest level (makedumpfile's `Z_BEST_SPEED`).
    Zlib,
    /// Raw pages.
    None,
}

impl Compression {
    /// The `page_desc.flags` and header `status` bit.
    pub fn flag(self) -> u32 {
        match self {
            Compression::Zstd => DUMP_DH_COMPRESSED_ZSTD,
            Compression::Lzo => DUMP_DH_COMPRESSED_LZO,
            Compression::Zlib => DUMP_DH_COMPRESSED_ZLIB,
            Compression::None => 0,
        }
    }

    /// Every kind.
    pub const ALL: [Compression; 4] = [
        Compression::Zstd,
        Compression::Lzo,
        Compression::Zlib,
        Compression::None,
    ];

    /// The kind whose [`Compression::name`] is `name`.
    pub fn from_name(name: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Lzo => "lzo",
            Compression::Zlib => "zlib",
            Compression::None => "none",
        }
    }
}

/// A compressor with its reusable state (one per thread), made on first use:
/// only the state its kind uses (the deflate encoder's tables 160 KiB, of
/// which 4 KiB pages touch about 64; the LZO table 16 KiB; the zstd match
/// table 16 KiB and a page's worth of buffers).
pub struct Compressor {
    kind: Compression,
    lzo: Option<super::lzo::Lzo1x>,
    zlib: Option<super::deflate::Deflate>,
    /// Boxed: the zstd state is 49 KiB inline, too much to move around
    /// with a `Compressor` (see [`made`]).
    zstd: Option<Box<super::zstd::Zstd>>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The state `new` makes, made in a frame of its own.
///
/// What a constructor builds on the stack before it is boxed (the zstd
/// state, 49 KiB; the deflate encoder's code tables, 7 KiB) would otherwise
/// be in the frame of [`Compressor::store`], which is entered for every page:
/// the stack probes at its entry then kept that much of every compressing
/// thread's stack resident (48 KiB each, whatever the compression; 60-64 KiB
/// stacks at `-j 1` and `-j 2` in the capture kernel).
#[inline(never)]
#[cold]
fn made<T>(new: impl FnOnce() -> T) -> T {
    new()
}

impl Compressor {
    /// A compressor for `kind`.
    pub fn new(kind: Compression) -> Compressor {
        Compressor {
            kind,
            lzo: None,
            zlib: None,
            zstd: None,
        }
    }

    /// Appends the stored form of `page` to `out` and returns its
    /// `page_desc.flags`: the compression flag, or 0 when the page is stored
    /// raw (compression off, failed, or not smaller than the page).
    pub fn store(&mut self, page: &[u8], out: &mut Vec<u8>) -> u32 {
        let before = out.len();
        let ok = match self.kind {
            Compression::None => false,
            Compression::Lzo => {
                self.lzo
                    .get_or_insert_with(|| made(super::lzo::Lzo1x::new))
                    .compress(page, out);
                true
            }
            Compression::Zlib => {
                // Each page its own zlib stream, as with makedumpfile's
                // compress2(); the encoder's state carries over, not cleared.
                // A stream that would not be smaller is never written.
                self.zlib
                    .get_or_insert_with(|| made(super::deflate::Deflate::new))
                    .compress_within(page, out, page.len())
            }
            Compression::Zstd => {
                self.zstd
                    .get_or_insert_with(|| made(|| Box::new(super::zstd::Zstd::new())))
                    .compress(page, out);
                true
            }
        };
        if ok && out.len() - before < page.len() {
            return self.kind.flag();
        }
        out.truncate(before);
        out.extend_from_slice(page);
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::build;

    #[test]
    fn every_kind_round_trips_through_the_builders_decoders_or_stays_raw() {
        let page = build::pattern(0x4000_0000, 4096);
        for kind in Compression::ALL {
            let mut c = Compressor::new(kind);
            let mut out = Vec::new();
            let flags = c.store(&page, &mut out);
            if kind == Compression::None {
                assert_eq!((flags, out.as_slice()), (0, page.as_slice()));
            } else {
                assert_eq!(flags, kind.flag(), "{kind:?}");
                assert!(out.len() < page.len(), "{kind:?}: {}", out.len());
            }
        }
    }

    #[test]
    fn incompressible_pages_are_stored_raw() {
        // xorshift bytes do not compress.
        let page = build::Xorshift(0x1234_5678_9abc_def1).bytes(4096);
        for kind in [Compression::Zstd, Compression::Lzo, Compression::Zlib] {
            let mut out = vec![0xaa];
            let flags = Compressor::new(kind).store(&page, &mut out);
            assert_eq!(flags, 0, "{kind:?}");
            assert_eq!(&out[1..], page.as_slice(), "{kind:?}");
        }
    }
}
