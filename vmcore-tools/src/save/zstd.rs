//! Per-page zstd frames: ruzstd's frame and entropy coding, with a match
//! finder of our own sized to one page.
//!
//! ruzstd's own match finder (`MatchGeneratorDriver`) works on 128 KiB
//! slices and clears a 128 KiB buffer and a 1 MiB suffix table for every
//! frame; with each page its own frame, as makedumpfile stores them, that
//! was ~8 ms a page in the capture kernel (200 s for the test dump). This
//! one finds matches within the page only (a frame is one page, so nothing
//! before it is reachable anyway) over a hash of the next four bytes, in a
//! table tagged with a growing base like [`super::lzo`]'s, so that nothing
//! is cleared between pages.
//!
//! Each frame is one block (the page, or an RLE block for a page of one
//! byte value) and, as ruzstd writes them, a content checksum. The window
//! is twice the page (rounded up to a power of two): a block's compressed
//! content may not be larger than the window, and an incompressible page
//! comes out a little larger than itself (such a page is stored raw in the
//! dump, but the frame is valid either way; libzstd decodes every frame).

use std::io::Cursor;

use ruzstd::encoding::{CompressionLevel, FrameCompressor, Matcher, Sequence};

use super::lzo::{hash, take_base};

/// Hash table size (log2; [`hash`]'s, the LZO encoder's).
const HASH_BITS: u32 = 12;
/// Shortest match zstd can code is 3; the hash covers 4.
const MIN_MATCH: usize = 4;
/// log2 of the literal-run length per extra byte skipped between probes.
const SKIP_SHIFT: u32 = 5;

/// A page-at-a-time zstd encoder; reuse it for every page.
pub struct Zstd {
    frame: Option<FrameCompressor<Cursor<Vec<u8>>, Vec<u8>, PageMatcher>>,
    /// The page size the frame compressor's matcher was built for.
    page: usize,
}

impl std::fmt::Debug for Zstd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zstd").field("page", &self.page).finish()
    }
}

impl Default for Zstd {
    fn default() -> Self {
        Self::new()
    }
}

impl Zstd {
    /// An encoder; its state is made for the first page.
    pub fn new() -> Zstd {
        Zstd {
            frame: None,
            page: 0,
        }
    }

    /// Appends one zstd frame holding `page` to `out`. Pages of up to
    /// 128 KiB (zstd's largest block) are one block each.
    pub fn compress(&mut self, page: &[u8], out: &mut Vec<u8>) {
        if self.page != page.len() {
            self.page = page.len();
            self.frame = None;
        }
        let frame = self.frame.get_or_insert_with(|| {
            FrameCompressor::new_with_matcher(
                PageMatcher::new(page.len()),
                CompressionLevel::Fastest,
            )
        });
        let mut src = frame
            .take_source()
            .map(Cursor::into_inner)
            .unwrap_or_default();
        src.clear();
        src.extend_from_slice(page);
        frame.set_source(Cursor::new(src));
        frame.set_drain(std::mem::take(out));
        frame.compress();
        if let Some(d) = frame.take_drain() {
            *out = d;
        }
    }
}

/// The matcher: one block per frame, matches inside it.
struct PageMatcher {
    /// Length of each block buffer handed out: one more than a page (up to
    /// 128 KiB), so that a page is read whole and the end of the input is
    /// seen with it (one block, the last).
    space: usize,
    /// Block buffers back from the frame compressor, for the next.
    pool: Vec<Vec<u8>>,
    /// The block being matched.
    last: Vec<u8>,
    /// `base + position + 1` of the last position with each hash; at most
    /// the block's base means none in this block ([`take_base`]).
    head: Box<[u32]>,
    /// The next block's base.
    base: u32,
}

impl PageMatcher {
    fn new(page: usize) -> PageMatcher {
        PageMatcher {
            space: (page + 1).min(128 << 10),
            pool: Vec::new(),
            last: Vec::new(),
            head: vec![0u32; 1 << HASH_BITS].into_boxed_slice(),
            base: 0,
        }
    }
}

#[inline(always)]
fn load(src: &[u8], i: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&src[i..i + 4]);
    u32::from_le_bytes(b)
}

impl Matcher for PageMatcher {
    fn get_next_space(&mut self) -> Vec<u8> {
        let mut v = self.pool.pop().unwrap_or_default();
        v.resize(self.space, 0);
        v
    }

    fn get_last_space(&mut self) -> &[u8] {
        &self.last
    }

    fn commit_space(&mut self, space: Vec<u8>) {
        let old = std::mem::replace(&mut self.last, space);
        if old.capacity() > 0 {
            self.pool.push(old);
        }
    }

    fn skip_matching(&mut self) {
        // Nothing of this block is reachable from the next frame: the next
        // takes a base of its own.
    }

    fn start_matching(&mut self, mut emit: impl for<'a> FnMut(Sequence<'a>)) {
        let src = &self.last[..];
        let n = src.len();
        let head = &mut self.head;
        let base = take_base(&mut self.base, n, || head.fill(0));
        let mut lit = 0usize;
        let mut i = 0usize;
        while i + MIN_MATCH <= n {
            let v = load(src, i);
            let h = hash(v);
            let cand = head[h];
            head[h] = base + i as u32 + 1;
            if cand > base {
                let j = (cand - base - 1) as usize;
                if load(src, j) == v {
                    let mut len = MIN_MATCH;
                    while i + len < n && src[j + len] == src[i + len] {
                        len += 1;
                    }
                    emit(Sequence::Triple {
                        literals: &src[lit..i],
                        offset: i - j,
                        match_len: len,
                    });
                    i += len;
                    lit = i;
                    // The position two before the match's end, so that a
                    // match right after this one can be found.
                    if i >= 2 && i + 2 <= n {
                        let p = i - 2;
                        head[hash(load(src, p))] = base + p as u32 + 1;
                    }
                    continue;
                }
            }
            i += 1 + ((i - lit) >> SKIP_SHIFT);
        }
        emit(Sequence::Literals {
            literals: &src[lit..],
        });
    }

    fn reset(&mut self, _level: CompressionLevel) {
        let old = std::mem::take(&mut self.last);
        if old.capacity() > 0 {
            self.pool.push(old);
        }
    }

    fn window_size(&self) -> u64 {
        ((self.space - 1) as u64)
            .next_power_of_two()
            .saturating_mul(2)
            .clamp(1024, 128 << 10)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::format::build::Xorshift;

    fn decode(frame: &[u8], len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let mut dec = ruzstd::decoding::FrameDecoder::new();
        assert_eq!(dec.decode_all(frame, &mut out).unwrap(), len);
        out
    }

    #[test]
    fn pages_round_trip_with_one_encoder() {
        let mut z = Zstd::new();
        let mut rng = Xorshift(7);
        let mut pages: Vec<Vec<u8>> = Vec::new();
        // Text-like, random, one byte value, mixed, short repeats.
        let text: Vec<u8> =
            b"struct page *pfn_to_page(unsigned long pfn) { return vmemmap + pfn; }\n"
                .iter()
                .copied()
                .cycle()
                .take(4096)
                .collect();
        pages.push(text);
        pages.push((0..4096).map(|_| rng.next_u64() as u8).collect());
        pages.push(vec![0xa5; 4096]);
        let mut mixed: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8 & 3).collect();
        mixed[1000..2000].fill(0);
        pages.push(mixed);
        pages.push((0..4096u32).map(|i| (i % 7) as u8).collect());
        pages.push((0..16384u32).map(|i| (i / 64) as u8).collect());
        for round in 0..3 {
            for p in &pages {
                let mut out = vec![0xee; 3];
                z.compress(p, &mut out);
                assert_eq!(&out[..3], &[0xee; 3], "appends");
                assert_eq!(
                    decode(&out[3..], p.len()),
                    *p,
                    "round {round}, {} bytes",
                    p.len()
                );
            }
        }
        // A compressible page shrinks.
        let mut out = Vec::new();
        z.compress(&pages[0], &mut out);
        assert!(out.len() < 512, "{}", out.len());
    }

    #[test]
    fn the_table_is_cleared_only_when_the_base_would_overflow() {
        let mut m = PageMatcher::new(4096);
        m.base = u32::MAX - 5000;
        m.head[3] = u32::MAX - 10;
        assert_eq!(
            take_base(&mut m.base, 4096, || m.head.fill(0)),
            u32::MAX - 5000
        );
        assert_eq!(take_base(&mut m.base, 4096, || m.head.fill(0)), 0);
        assert!(m.head.iter().all(|&h| h == 0));
        assert_eq!(take_base(&mut m.base, 4096, || m.head.fill(0)), 4097);
    }
}
