//! LZO1X-1-style compression (the fast level makedumpfile uses through
//! liblzo2's `lzo1x_1_compress`): greedy matching over a hash of the next
//! four bytes.
//!
//! The streams are valid LZO1X (liblzo2's `lzo1x_decompress_safe` reads
//! them) but not liblzo2's byte for byte: after a literal run of `k` bytes
//! the next probe is `1 + k / 16` bytes on (liblzo2: `1 + k / 32`), which
//! makes fewer probes through poorly compressible data at the cost of some
//! matches there; after a match the same distance is tried one and two
//! bytes on before the hash table (liblzo2 has no such repeat); and the
//! position two bytes before a match's end is hashed too (liblzo2 hashes
//! none inside a match), which finds matches that start right after
//! another. On the 2 GiB test dump at `-d 31` (vmcore-wedged-irq) the kept
//! pages come to 3.7 % less than liblzo2's decisions gave (see [`encode`]).
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

/// The little-endian `u32` at `src[i..i + 4]` (also the deflate
/// encoder's).
///
/// # Safety
/// `i + 4 <= src.len()`.
#[inline(always)]
pub(super) unsafe fn u32_at(src: &[u8], i: usize) -> u32 {
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

/// How many low bytes of two little-endian words are equal, given their
/// XOR (8 when it is 0): byte-reversed and counted from the top, `rev` and
/// `clz`, cheaper than `rbit` under emulation (a helper call in TCG).
#[inline(always)]
fn equal_bytes(x: u64) -> usize {
    (x.swap_bytes().leading_zeros() / 8) as usize
}

/// How many bytes from `a` equal those from `b` (`a < b`), up to `end`
/// (at most `src.len()`): eight at a time, then one at a time (also the
/// deflate encoder's).
#[inline(always)]
pub(super) fn common_len(src: &[u8], a: usize, b: usize, end: usize) -> usize {
    debug_assert!(a < b && end <= src.len());
    let mut k = 0usize;
    while b + k + 8 <= end {
        // SAFETY: `a + k < b + k` and `b + k + 8 <= end <= src.len()`.
        let x = unsafe { u64_at(src, a + k) ^ u64_at(src, b + k) };
        if x != 0 {
            return k + equal_bytes(x);
        }
        k += 8;
    }
    while b + k < end && src[a + k] == src[b + k] {
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

/// 1 if `x`, read as a signed number, is negative, else 0: a sign test
/// with no compare (see [`encode`] on compares).
#[inline(always)]
fn negative(x: usize) -> usize {
    x >> (usize::BITS - 1)
}

/// `x`, unchanged, through a barrier the optimiser cannot see through: it
/// keeps the masks and sign tests of [`encode`] from being folded back into
/// compares, selects and conditional branches on flags.
#[inline(always)]
fn opaque(mut x: usize) -> usize {
    #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
    // SAFETY: an empty instruction sequence: no memory, no stack, no flags.
    unsafe {
        std::arch::asm!("/* {0} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags));
    }
    x
}

/// The literal run `src[lit..lit + t]` of at most 3 bytes before a match,
/// written at `dst + *op`: its count goes into the low bits of the previous
/// match code's last-but-one byte and its bytes are copied as one word (a
/// count of 0 ORs nothing, and the match code then overwrites the word).
///
/// # Safety
/// A match code ends at `dst + *op` (never so for the stream's first
/// run, which is at least 4 bytes: probing starts at 4), `lit + 4 <=
/// src.len()`, and `dst + *op` has room for 4 bytes.
#[inline(always)]
unsafe fn emit_short_literals(dst: *mut u8, op: &mut usize, src: &[u8], lit: usize, t: usize) {
    // SAFETY: as the caller promises.
    unsafe {
        *dst.add(*op - 2) |= t as u8;
        dst.add(*op).cast::<u32>().write_unaligned(u32_at(src, lit));
    }
    *op += t;
}

/// Writes the stream of `src` at `dst` and returns its length. `SMALL`:
/// `src` is at most `M3_MAX_OFFSET` long, so no earlier position is out of
/// reach and the distance needs no bound of its own.
///
/// Greedy matching: a probe looks the four bytes at `ip` up in the hash
/// table (without a usable entry, the candidate is the previous byte, which
/// finds runs of one value); after a literal run of `k` bytes the next
/// probe is `1 + k / 16` bytes on. After each match the same distance is
/// tried first one, then two bytes on, before the table: kernel data is
/// full of arrays of 8-byte words that differ in one byte (pointers,
/// counters), where a match of 7 bytes follows one literal, again and
/// again. Where that fails, the position two bytes before the match's end
/// is hashed too (liblzo2 hashes none inside a match), which finds matches
/// that start right after another.
///
/// Written for QEMU's TCG as much as for hardware, since the capture
/// kernel of the crash drill and qemu-user run it: there a compare costs
/// about 15 host instructions (it computes all four NZCV flags), a memory
/// access about 8, and every branch ends a translation block. So the
/// probe's tests are masks and sign bits, branched on with `cbz`/`tbz`
/// (behind [`opaque`]), a probe that fails is one branch, and a match of at
/// most 11 bytes after at most 3 literals (about two thirds of them) is
/// coded without a branch. Under qemu-user this took the test dump's kept
/// pages from 0.293 to 0.188 s (x86_64 natively: 0.103 to 0.075-0.094 s).
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
    // Matches start at most at `end`, so the 12 bytes after a match's
    // start are inside `src` (the 8 after its first 4 are compared in
    // one word), and so are the 4 at `end + 1` that a repeat is tried at.
    // Shorter inputs are one literal run.
    let end = n.wrapping_sub(13);
    if n < 18 {
        // SAFETY: as below.
        unsafe { return finish(dst, 0, src, 0) };
    }
    'probe: loop {
        // SAFETY: `ip <= end`.
        let v = unsafe { u32_at(src, ip) };
        let h = hash(v);
        let e = table[h];
        table[h] = base1.wrapping_add(ip as u32);
        // An entry of this call gives a position before `ip`; an empty or
        // earlier-call one (at most `base`) wraps to at least
        // `2^32 - base - 1`, which is `n` or more (the caller keeps
        // `base + n + 1` within a `u32`). Without a usable entry the
        // candidate is the previous byte (distance 1, in reach: `ip >= 4`).
        let m = e.wrapping_sub(base1) as usize;
        let mut m = if SMALL {
            // All ones where `m` is not before `ip` (in 64 bits, where
            // `ip - 1 - m` cannot wrap past the sign).
            let before = (ip as u64).wrapping_sub(1).wrapping_sub(m as u64);
            let stale = opaque(((before >> 63) as usize).wrapping_neg());
            (m & !stale) | ((ip - 1) & stale)
        } else if m < ip && ip - m <= M3_MAX_OFFSET {
            m
        } else {
            ip - 1
        };
        // SAFETY: `m < ip`.
        let diff = unsafe { u32_at(src, m) } ^ v;
        // Skip faster through data that does not match.
        let next = ip + 1 + ((ip - lit) >> SKIP_SHIFT);
        // No match, and `next` is still probed: one branch.
        let on = negative((diff as usize).wrapping_neg() & !end.wrapping_sub(next));
        if opaque(on) != 0 {
            ip = next;
            continue;
        }
        if diff != 0 {
            break;
        }
        // Matches at `ip` from `m` (4 bytes equal, `ip <= end`): this one,
        // then those found at the same distance just after it.
        loop {
            let dist = ip - m;
            let off = dist - 1;
            // SAFETY: `m < ip` and `ip + 12 <= n`.
            let x = unsafe { u64_at(src, m + 4) ^ u64_at(src, ip + 4) };
            let t = ip - lit;
            // 4 to 11 bytes; 12 when the word is all equal (`x` 0), then
            // measured on.
            let mut len = 4 + equal_bytes(x);
            if opaque(x as usize) != 0 && opaque(t >> 2) == 0 {
                // Up to 11 bytes after up to 3 literals: an M2 or an M3
                // code, chosen by masks.
                // SAFETY: `t <= 3` (so a match precedes), `lit <= ip`, and
                // the room the caller gives.
                unsafe { emit_short_literals(dst, &mut op, src, lit, t) };
                // 1 for an M2 match (`len <= 8`, `dist <= 2048`), else 0.
                let m2 = negative(opaque((((len - 1) >> 3) | (off >> 11)).wrapping_sub(1)));
                let c2 = ((len - 1) << 5) | ((off & 7) << 2) | ((off >> 3) << 8);
                let c3 = (M3_MARKER as usize | (len - 2)) | (off << 10);
                let code = c3 ^ ((c2 ^ c3) & opaque(m2.wrapping_neg()));
                // The fourth byte (the third of an M2 code) is overwritten
                // by what follows.
                // SAFETY: within the room the caller gives.
                unsafe {
                    dst.add(op)
                        .cast::<u32>()
                        .write_unaligned((code as u32).to_le());
                }
                op += 3 - m2;
            } else {
                if x == 0 {
                    len += common_len(src, m + 12, ip + 12, n);
                }
                // SAFETY: as in the branch above, and the room the caller
                // gives.
                unsafe {
                    if t <= 3 {
                        emit_short_literals(dst, &mut op, src, lit, t);
                    } else {
                        emit_literals(dst, &mut op, src, lit, ip);
                    }
                    emit_match(dst, &mut op, len, dist);
                }
            }
            ip += len;
            lit = ip;
            if negative(opaque(end.wrapping_sub(1).wrapping_sub(ip))) != 0 {
                break 'probe;
            }
            // The same distance one byte on, then two (`ip + 1 <= end`:
            // both words are inside; `ip + 1 - dist` is past the match's
            // source).
            // SAFETY: as just said.
            let r1 = unsafe { u32_at(src, ip + 1) ^ u32_at(src, ip + 1 - dist) };
            if opaque(r1 as usize) == 0 {
                ip += 1;
            } else {
                // SAFETY: as just said.
                let r2 = unsafe { u32_at(src, ip + 2) ^ u32_at(src, ip + 2 - dist) };
                if opaque(r2 as usize) != 0
                    || negative(opaque(end.wrapping_sub(2).wrapping_sub(ip))) != 0
                {
                    // Back to the table: also remember a position inside
                    // the match, so a repeat of its tail is found.
                    let p = ip - 2;
                    // SAFETY: `p + 4 < ip + 4 <= n`.
                    let w = unsafe { u32_at(src, p) };
                    table[hash(w)] = base1.wrapping_add(p as u32);
                    continue 'probe;
                }
                ip += 2;
            }
            m = ip - dist;
        }
    }
    // SAFETY: as above.
    unsafe { finish(dst, op, src, lit) }
}

/// Ends the stream of `src` at `dst + op`: the literals from `lit` on, then
/// the end marker; returns the stream's length.
///
/// # Safety
/// As for [`encode`], with `dst + op` the stream's end.
#[inline(always)]
unsafe fn finish(dst: *mut u8, mut op: usize, src: &[u8], lit: usize) -> usize {
    // SAFETY: as the caller promises; the end marker is the stream's last
    // 3 bytes.
    unsafe {
        emit_literals(dst, &mut op, src, lit, src.len());
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
        // Words that differ in their low byte only (the repeat path): one
        // literal and a 7-byte match at distance 8 each, 3 bytes a word.
        let words: Vec<u8> = (0u64..512)
            .flat_map(|i| (0xffff_8000_1234_5600 | (i * 37 % 251)).to_le_bytes())
            .collect();
        assert!(round_trip(&words) < 512 * 3 + 64);
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
