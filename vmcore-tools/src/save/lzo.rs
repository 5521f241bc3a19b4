//! LZO1X-1-style compression (the fast level makedumpfile uses through
//! liblzo2's `lzo1x_1_compress`): greedy matching over a hash of the next
//! four bytes.
//!
//! The streams are valid LZO1X (liblzo2's `lzo1x_decompress_safe` reads
//! them) but not liblzo2's byte for byte: after a literal run of `k` bytes
//! the next probe is `1 + k / 16` bytes on (liblzo2: `1 + k / 32`), which
//! makes fewer probes through poorly compressible data at the cost of some
//! matches there, and the position two bytes before each match's end is
//! hashed too (liblzo2 hashes none inside a match), which finds matches
//! that start right after another. On the 2 GiB test dump at `-d 31` the
//! output is 1.1 % smaller than liblzo2's decisions gave.
//!
//! Written here because lzokay-native 0.1 compresses at lzo1x_999-like
//! effort and resets a ~0.5 MiB dictionary per call, which made a 4 KiB page
//! cost ~300 µs. The stream format is the one [`crate::format::lzo`]
//! documents and decodes; this encoder emits only literal runs, M2 matches
//! (distance ≤ 2 KiB, length ≤ 8), M3 matches (distance ≤ 16 KiB) and the
//! end marker, so it needs no M1 or M4 forms.

// The section `Lzo1x::compress` is placed in starts on a 4 KiB boundary
// (see there why). vmcore-tools is built as one codegen unit (the
// workspace's release profile), so this directive and the function land in
// the same section of the same object.
#[cfg(target_os = "linux")]
std::arch::global_asm!(
    ".pushsection .text.hot.vmcore_lzo,\"ax\",%progbits",
    ".balign 4096",
    ".popsection"
);

/// `M2_MAX_OFFSET`.
const M2_MAX_OFFSET: usize = 0x0800;
/// `M2_MAX_LEN`.
const M2_MAX_LEN: usize = 8;
/// `M3_MAX_OFFSET`: matches further back are not looked for.
const M3_MAX_OFFSET: usize = 0x4000;
/// `M3_MAX_LEN` before the length is extended.
const M3_MAX_LEN: usize = 33;
/// `M3_MARKER`.
const M3_MARKER: u8 = 0x20;
/// `M4_MARKER`: with distance 16384 and length 3, the end of the stream.
const M4_MARKER: u8 = 0x10;
/// Hash table size (log2).
const HASH_BITS: u32 = 12;

/// log2 of the literal-run length per extra byte skipped between probes.
const SKIP_SHIFT: u32 = 4;

/// Hash table entries.
const TABLE_LEN: usize = 1 << HASH_BITS;

/// Reusable state: the hash table of recent positions.
///
/// An entry holds `base + position + 1` of the call that stored it; `base`
/// grows by the input length + 1 with every call, so an entry at most
/// `base` is from an earlier call and counts as empty. The table is thus
/// cleared only when `base` would overflow, not for every page.
#[derive(Debug, Clone)]
pub struct Lzo1x {
    table: Box<[u32; TABLE_LEN]>,
    base: u32,
}

impl Default for Lzo1x {
    fn default() -> Self {
        Self::new()
    }
}

/// The table slot of the four bytes `v` (also the zstd encoder's).
#[inline(always)]
pub(super) fn hash(v: u32) -> usize {
    (v.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize
}

/// The little-endian `u32` at `src[i..i + 4]`.
///
/// # Safety
/// `i + 4 <= src.len()`.
#[inline(always)]
unsafe fn u32_at(src: &[u8], i: usize) -> u32 {
    debug_assert!(i + 4 <= src.len());
    // SAFETY: the caller keeps the four bytes inside `src`.
    u32::from_le(unsafe { src.as_ptr().add(i).cast::<u32>().read_unaligned() })
}

/// The little-endian `u64` at `src[i..i + 8]`.
///
/// # Safety
/// `i + 8 <= src.len()`.
#[inline(always)]
unsafe fn u64_at(src: &[u8], i: usize) -> u64 {
    debug_assert!(i + 8 <= src.len());
    // SAFETY: the caller keeps the eight bytes inside `src`.
    u64::from_le(unsafe { src.as_ptr().add(i).cast::<u64>().read_unaligned() })
}

/// How many bytes from `a` equal those from `b` (`a < b`), up to the end
/// of `src`: eight at a time, the first difference found from the lowest
/// differing byte of two little-endian words (byte-reversed and counted
/// from the top: `rev` and `clz`, cheaper than `rbit` under emulation).
#[inline(always)]
fn common_len(src: &[u8], a: usize, b: usize) -> usize {
    debug_assert!(a < b);
    let n = src.len();
    let mut k = 0usize;
    while b + k + 8 <= n {
        // SAFETY: `a + k < b + k` and `b + k + 8 <= n`.
        let x = unsafe { u64_at(src, a + k) ^ u64_at(src, b + k) };
        if x != 0 {
            return k + (x.swap_bytes().leading_zeros() / 8) as usize;
        }
        k += 8;
    }
    while b + k < n && src[a + k] == src[b + k] {
        k += 1;
    }
    k
}

/// The base for a block of `n` bytes in tables of positions stored as
/// `base + position + 1`: entries at most the returned base are from
/// earlier blocks and count as empty. `next` moves past the block; only
/// when that would overflow are the tables cleared (`clear`) and the base
/// starts again from 0. The LZO, deflate and zstd encoders' bookkeeping.
#[inline(always)]
pub(super) fn take_base(next: &mut u32, n: usize, clear: impl FnOnce()) -> u32 {
    // `position < n` must fit.
    let span = u32::try_from(n).ok().and_then(|n| n.checked_add(1));
    match span.and_then(|s| next.checked_add(s)) {
        Some(after) => std::mem::replace(next, after),
        None => {
            clear();
            *next = span.unwrap_or(u32::MAX);
            0
        }
    }
}

impl Lzo1x {
    /// A compressor.
    pub fn new() -> Lzo1x {
        Lzo1x {
            table: Box::new([0; TABLE_LEN]),
            base: 0,
        }
    }

    /// A compressor whose position base starts at `base` (tests and the
    /// fuzz target reach the base's overflow with it).
    #[doc(hidden)]
    pub fn with_base(base: u32) -> Lzo1x {
        Lzo1x {
            base,
            ..Lzo1x::new()
        }
    }

    /// Appends the LZO1X stream of `src` to `out`.
    // In a section of its own aligned to 4 KiB (the `global_asm!` above):
    // the hot loops, in the function's first 4 KiB, then share one page.
    // Under QEMU's TCG (the crash drill, qemu-user) a jump between two
    // guest pages cannot be chained and costs a lookup, so the same code cut
    // by a page boundary ran 15 % slower (0.41 against 0.35 s for the test
    // dump's kept pages).
    #[inline(never)]
    #[link_section = ".text.hot.vmcore_lzo"]
    pub fn compress(&mut self, src: &[u8], out: &mut Vec<u8>) {
        let n = src.len();
        let base = take_base(&mut self.base, n, || self.table.fill(0));
        // The stream is written straight into `out`'s spare capacity.
        // Its worst case (incompressible input) is n + n/16 + 64 + 3 bytes;
        // 16 more let literal copies and match codes store whole words past
        // what they keep.
        out.reserve(n + n / 16 + 64 + 3 + 16);
        let len = out.len();
        // SAFETY: `out` has that room after `len`, and `encode` writes
        // only inside it (see there).
        let op = unsafe {
            let dst = out.as_mut_ptr().add(len);
            if n <= M3_MAX_OFFSET {
                encode::<true>(&mut self.table, src, dst, base)
            } else {
                encode::<false>(&mut self.table, src, dst, base)
            }
        };
        // SAFETY: `encode` initialised the `op` bytes after `len`.
        unsafe { out.set_len(len + op) };
    }
}

/// Writes the stream of `src` at `dst` and returns its length. `SMALL`:
/// `src` is at most `M3_MAX_OFFSET` long, so no earlier position is out of
/// reach and the distance needs no bound of its own.
///
/// # Safety
/// `dst` is valid for writes of `n + n/16 + 64 + 3 + 16` bytes (`n` the
/// length of `src`). The stream never exceeds `n + n/16 + 64 + 3` (liblzo2's
/// bound for LZO1X-1; here a match of 4 or more bytes costs at most 3, a
/// literal run at most 3 + t/255 bytes of code, and the end marker 3), and
/// no store reaches more than 15 bytes past the stream's current end
/// (a 16-byte literal copy; the words of match codes and short runs).
#[inline(always)]
unsafe fn encode<const SMALL: bool>(
    table: &mut [u32; TABLE_LEN],
    src: &[u8],
    dst: *mut u8,
    base: u32,
) -> usize {
    let n = src.len();
    // Bytes of the stream so far; the first literal not yet emitted; the
    // next position probed (the first literal run is at least 4 bytes).
    let (mut op, mut lit, mut ip) = (0usize, 0usize, 4usize);
    // Positions are stored as `base + ip + 1`.
    let base1 = base.wrapping_add(1);
    while ip + 4 <= n {
        // SAFETY: `ip + 4 <= n`.
        let v = unsafe { u32_at(src, ip) };
        let h = hash(v);
        let pos = base1.wrapping_add(ip as u32);
        let e = table[h];
        table[h] = pos;
        // One test instead of three: an entry of this call gives a
        // position before `ip`; an empty or earlier-call one (at most
        // `base`) wraps to at least `2^32 - base - 1`, which is `n` or
        // more (the caller keeps `base + n + 1` within a `u32`).
        let m = e.wrapping_sub(base1) as usize;
        let reach_ok = if SMALL {
            m < ip
        } else {
            m < ip && ip - m <= M3_MAX_OFFSET
        };
        // Without a usable entry the candidate is the previous byte
        // (distance 1, always in reach: `ip >= 4`), which finds runs
        // of one byte value without a branch of its own.
        let m = if reach_ok { m } else { ip - 1 };
        // SAFETY: `m < ip` and `ip + 4 <= n`.
        if unsafe { u32_at(src, m) } == v {
            let dist = ip - m;
            let len = 4 + common_len(src, m + 4, ip + 4);
            let t = ip - lit;
            // SAFETY: within the room the caller gives (see above).
            unsafe {
                if t <= 3 {
                    // Not the stream's first run (that one is at least
                    // 4 bytes: `ip` starts at 4), so a match precedes:
                    // the count goes into its last-but-one byte, and the
                    // bytes are copied as one word (`lit + 4 <= ip + 1`,
                    // inside `src`).
                    if t != 0 {
                        *dst.add(op - 2) |= t as u8;
                        dst.add(op).cast::<u32>().write_unaligned(u32_at(src, lit));
                        op += t;
                    }
                } else {
                    emit_literals(dst, &mut op, src, lit, ip);
                }
                emit_match(dst, &mut op, len, dist);
            }
            ip += len;
            lit = ip;
            if ip + 4 > n {
                break;
            }
            // Also remember a position inside the match (liblzo2 does
            // not): a repeat of its tail is then found.
            let p = ip - 2;
            // SAFETY: `p + 4 == ip + 2 < ip + 4 <= n`.
            let w = unsafe { u32_at(src, p) };
            table[hash(w)] = base1.wrapping_add(p as u32);
            continue;
        }
        // Skip faster through data that does not match.
        ip += 1 + ((ip - lit) >> SKIP_SHIFT);
    }
    // SAFETY: as above; the end marker is the stream's last 3 bytes.
    unsafe {
        emit_literals(dst, &mut op, src, lit, n);
        dst.add(op)
            .cast::<[u8; 3]>()
            .write_unaligned([M4_MARKER | 1, 0, 0]);
    }
    op + 3
}

/// Writes the literal run `src[lit..end]` at `dst + *op`.
///
/// # Safety
/// `dst + *op` has room for the run's code and bytes, and 16 more.
#[inline(always)]
unsafe fn emit_literals(dst: *mut u8, op: &mut usize, src: &[u8], lit: usize, end: usize) {
    let t = end - lit;
    if t == 0 {
        return;
    }
    let mut o = *op;
    // SAFETY: every write is inside the room the caller gives.
    unsafe {
        if o == 0 && t <= 238 {
            // Only as the stream's first byte: `17 + t` literals follow.
            *dst = (17 + t) as u8;
            o = 1;
        } else if t <= 3 {
            // In the low two bits of the previous match's last-but-one byte.
            *dst.add(o - 2) |= t as u8;
        } else if t <= 18 {
            *dst.add(o) = (t - 3) as u8;
            o += 1;
        } else {
            *dst.add(o) = 0;
            o += 1;
            emit_length(dst, &mut o, t - 18);
        }
        let s = src.as_ptr().add(lit);
        if t <= 16 && lit + 16 <= src.len() {
            // Short runs (most are): one fixed-size copy, the bytes past the
            // run overwritten by what follows.
            dst.add(o)
                .cast::<[u8; 16]>()
                .write_unaligned(s.cast::<[u8; 16]>().read_unaligned());
        } else {
            std::ptr::copy_nonoverlapping(s, dst.add(o), t);
        }
    }
    *op = o + t;
}

/// Writes the extension of a length field that was zero: a zero byte per
/// 255 of `n`, then the rest (`n >= 1`).
///
/// # Safety
/// `dst + *o` has room for `n / 255 + 1` bytes.
#[inline(always)]
unsafe fn emit_length(dst: *mut u8, o: &mut usize, mut n: usize) {
    // SAFETY: every write is inside the room the caller gives.
    unsafe {
        while n > 255 {
            n -= 255;
            *dst.add(*o) = 0;
            *o += 1;
        }
        *dst.add(*o) = n as u8;
    }
    *o += 1;
}

/// Writes a match of `len` bytes `dist` back at `dst + *op`.
///
/// # Safety
/// `dst + *op` has room for the match's code, and 16 bytes more.
#[inline(always)]
unsafe fn emit_match(dst: *mut u8, op: &mut usize, len: usize, dist: usize) {
    let off = dist - 1;
    let mut o = *op;
    // SAFETY: every write is inside the room the caller gives.
    unsafe {
        // `len <= M2_MAX_LEN && dist <= M2_MAX_OFFSET` in one test
        // (`len >= 4`, `dist >= 1`).
        if ((len - 1) / M2_MAX_LEN) | (off / M2_MAX_OFFSET) == 0 {
            let code = ((len - 1) << 5) | ((off & 7) << 2) | ((off >> 3) << 8);
            dst.add(o)
                .cast::<u16>()
                .write_unaligned((code as u16).to_le());
            *op = o + 2;
            return;
        }
        if len <= M3_MAX_LEN {
            // The marker and the distance in one store; its fourth byte
            // is overwritten by what follows.
            let code = (M3_MARKER as usize | (len - 2)) | (off << 10);
            dst.add(o)
                .cast::<u32>()
                .write_unaligned((code as u32).to_le());
            *op = o + 3;
            return;
        }
        *dst.add(o) = M3_MARKER;
        o += 1;
        emit_length(dst, &mut o, len - M3_MAX_LEN);
        dst.add(o)
            .cast::<u16>()
            .write_unaligned(((off << 2) as u16).to_le());
    }
    *op = o + 2;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::build;
    use crate::format::lzo::decompress;

    fn round_trip(data: &[u8]) -> usize {
        let mut c = Lzo1x::new();
        let mut out = vec![0xee];
        c.compress(data, &mut out);
        let back = decompress(&out[1..], data.len())
            .unwrap_or_else(|e| panic!("{e:?} for {} bytes", data.len()));
        assert_eq!(back, data);
        out.len() - 1
    }

    #[test]
    fn reused_state_gives_the_streams_of_a_fresh_one() {
        let a = build::pattern(0x4000_0000, 4096);
        let b = build::pattern(0x4000_1000, 4096);
        let fresh = |d: &[u8]| {
            let mut o = Vec::new();
            Lzo1x::new().compress(d, &mut o);
            o
        };
        let mut c = Lzo1x::new();
        for d in [&a, &b, &a, &b] {
            let mut o = Vec::new();
            c.compress(d, &mut o);
            assert_eq!(o, fresh(d));
        }
        // The position base about to overflow: the table is cleared.
        c.base = u32::MAX - 5000;
        for d in [&b, &a, &b] {
            let mut o = Vec::new();
            c.compress(d, &mut o);
            assert_eq!(o, fresh(d));
        }
        assert_eq!(c.base, 2 * 4097);
    }

    #[test]
    fn text_and_repeated_patterns_decode_and_shrink() {
        let text: Vec<u8> = "The quick brown fox jumps over the lazy dog; \
                             kernel: Kernel panic - not syncing: sysrq triggered crash\n"
            .bytes()
            .cycle()
            .take(4096)
            .collect();
        assert!(round_trip(&text) < 400);
        // Periods 1..=64, and words of a struct array with a counter.
        for period in [1usize, 2, 3, 4, 5, 7, 8, 13, 16, 31, 64] {
            let d: Vec<u8> = (0..4096).map(|i| (i % period) as u8 ^ 0x5a).collect();
            assert!(round_trip(&d) < 300, "period {period}");
        }
        let mut structs = Vec::new();
        for i in 0u64..256 {
            structs.extend_from_slice(&(0xffff_0000_0800_0000 + i * 64).to_le_bytes());
            structs.extend_from_slice(&i.to_le_bytes());
        }
        assert!(round_trip(&structs) < 4096);
        // A page of zeros with a few scattered words, as kernel pages often are.
        let mut sparse = vec![0u8; 4096];
        for i in (0..4096).step_by(520) {
            sparse[i..i + 8].copy_from_slice(&(i as u64 * 0x0101_0101).to_le_bytes());
        }
        assert!(round_trip(&sparse) < 200);
        // Every single-byte change of a pattern page.
        let base = build::pattern(0x4000_0000, 4096);
        for i in (0..4096).step_by(97) {
            let mut d = base.clone();
            d[i] ^= 0xff;
            round_trip(&d);
        }
    }

    #[test]
    fn streams_decode_to_their_input() {
        assert!(round_trip(&[0u8; 4096]) < 64);
        assert!(round_trip(&build::pattern(0x4000_0000, 4096)) < 4096);
        assert!(round_trip(&[0u8; 65536]) < 600);
        let mut x = build::Xorshift(0x2545_f491_4f6c_dd1d);
        let mut rnd = || x.next_u64();
        for len in [
            0usize, 1, 2, 3, 4, 5, 7, 8, 17, 18, 19, 238, 239, 240, 300, 4096, 16384, 65536,
        ] {
            let noise: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            round_trip(&noise);
            // Mixed: runs of 1..300 literals between repeats at all distances.
            let mut mixed = Vec::new();
            while mixed.len() < len {
                let lits = (rnd() % 300) as usize + 1;
                mixed.extend((0..lits).map(|_| rnd() as u8));
                let d = (rnd() as usize % mixed.len()) + 1;
                let l = (rnd() % 400) as usize + 3;
                for _ in 0..l {
                    mixed.push(mixed[mixed.len() - d]);
                }
            }
            mixed.truncate(len);
            round_trip(&mixed);
        }
    }
}
