//! zlib streams (RFC 1950 around RFC 1951 deflate) for one page at a time,
//! at the speed end of zlib's levels: what makedumpfile writes with
//! `compress2(.., Z_BEST_SPEED)` per page, `vmcore save -c zlib`.
//!
//! Why not a general deflate library: every page is its own stream, and the
//! libraries reset their whole state per stream (miniz_oxide rewrites some
//! 230 KiB of tables and buffers per reset, zlib clears a 64 KiB hash
//! head); under the drill's emulation every one of those stores is paid
//! for, and the reset cost more than compressing the page. Here, as in
//! [`super::lzo`], the match finder's tables hold positions tagged with a
//! base that grows with every call, so nothing is cleared between pages.
//!
//! The parse is greedy over a four-byte hash with short chains (zlib's
//! fastest level searches chains of four for three-byte matches); one
//! block per stream, with dynamic Huffman codes, or the fixed codes when
//! those come out smaller.

// The per-position and per-symbol loops (`Deflate::parse`; `write_syms`
// and `adler32`) are in two sections that each start on a 4 KiB boundary,
// as `Lzo1x::compress`'s does (see there why): each loop then lies inside
// one guest page, wherever the code before it ends. Left to the linker,
// the same code ran a `-j 1` zlib save under qemu-user in 2.03-2.15 s at
// four of five offsets tried and 3.3 s at the fifth, and a change 28 bytes
// long elsewhere made it 7-10 % slower in the capture kernel.
#[cfg(target_os = "linux")]
std::arch::global_asm!(
    ".pushsection .text.hot.vmcore_deflate_parse,\"ax\",%progbits",
    ".balign 4096",
    ".popsection",
    ".pushsection .text.hot.vmcore_deflate_write,\"ax\",%progbits",
    ".balign 4096",
    ".popsection"
);

use super::lzo::{common_len, u32_at};

/// Deflate's window: matches reach at most this far back.
const WINDOW: usize = 32768;
/// Longest match deflate can code.
const MAX_MATCH: usize = 258;
/// Shortest match looked for (the hash covers four bytes).
const MIN_MATCH: usize = 4;
/// Hash table size (log2).
const HASH_BITS: u32 = 13;
/// Candidates tried per position.
const CHAIN: usize = 4;
/// A match this long ends the search.
const NICE: usize = 32;
/// Matches up to this long have every position inside them remembered.
const INSERT_MAX: usize = 8;

/// Literal/length alphabet: 256 literals, end of block, 29 length codes.
const LITLEN: usize = 286;
/// Distance alphabet.
const DISTS: usize = 30;
/// End-of-block symbol.
const EOB: usize = 256;
/// Order in which the code-length code's lengths are sent (RFC 1951 3.2.7).
const CL_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Reusable state: the match finder's tables and the symbol buffer.
///
/// `head` and `prev` hold `base + position + 1` of the call that stored
/// them; `base` grows by the input length + 1 with every call, so an entry
/// at most `base` is from an earlier call and counts as empty (see
/// [`super::lzo::Lzo1x`]). `prev` is indexed by position within the call,
/// so a 4 KiB page touches only its first 4096 entries.
#[derive(Debug, Clone)]
pub struct Deflate {
    head: Box<[u32; 1 << HASH_BITS]>,
    prev: Box<[u32; WINDOW]>,
    base: u32,
    /// The parse: per run of literals `count << 1`, per match
    /// `dist << 10 | len << 1 | 1`, in order.
    syms: Vec<u32>,
    /// The fixed codes, made when first used.
    fixed: Option<Box<(Code<288>, Code<30>)>>,
    scratch: Box<Scratch>,
    dynamic: Box<Dynamic>,
}

impl Default for Deflate {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn hash(v: u32) -> usize {
    (v.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize
}

/// The length code (257..=285), its extra bits and their value, of a match
/// of `len` bytes (3..=258).
#[inline(always)]
fn len_code(len: usize) -> (usize, u32, u32) {
    let l = len - 3;
    if l < 8 {
        (257 + l, 0, 0)
    } else if l == 255 {
        (285, 0, 0)
    } else {
        let nb = usize::BITS - 1 - l.leading_zeros();
        let extra = nb - 2;
        let code = 257 + 4 * (nb as usize - 1) + ((l >> extra) & 3);
        (code, extra, (l & ((1 << extra) - 1)) as u32)
    }
}

/// The distance code (0..=29), its extra bits and their value, of a
/// distance 1..=32768.
#[inline(always)]
fn dist_code(dist: usize) -> (usize, u32, u32) {
    let d = dist - 1;
    if d < 4 {
        (d, 0, 0)
    } else {
        let nb = usize::BITS - 1 - d.leading_zeros();
        let extra = nb - 1;
        let code = 2 * nb as usize + ((d >> extra) & 1);
        (code, extra, (d & ((1 << extra) - 1)) as u32)
    }
}

impl Deflate {
    /// A compressor.
    pub fn new() -> Deflate {
        Deflate {
            head: Box::new([0; 1 << HASH_BITS]),
            prev: vec![0u32; WINDOW]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("WINDOW entries")),
            base: 0,
            syms: Vec::new(),
            fixed: None,
            scratch: Box::new(Scratch {
                keys: [0; 288],
                tmp: [0; 288],
                depth: [0; 288],
            }),
            dynamic: Box::new(Dynamic::new()),
        }
    }

    /// A compressor whose position base starts at `base` (tests and the
    /// fuzz target reach the base's overflow with it).
    #[doc(hidden)]
    pub fn with_base(base: u32) -> Deflate {
        Deflate {
            base,
            ..Deflate::new()
        }
    }

    /// Appends the zlib stream of `src` to `out`.
    pub fn compress(&mut self, src: &[u8], out: &mut Vec<u8>) {
        let fits = self.compress_within(src, out, usize::MAX);
        debug_assert!(fits);
    }

    /// Appends the zlib stream of `src` to `out` if it is shorter than
    /// `limit` bytes, and says whether it did; `out` is left as it was when
    /// not (the block's size is known before a bit of it is written, so a
    /// page that does not shrink costs no output and no checksum).
    pub fn compress_within(&mut self, src: &[u8], out: &mut Vec<u8>, limit: usize) -> bool {
        let (head, prev) = (&mut self.head, &mut self.prev);
        let base = super::lzo::take_base(&mut self.base, src.len(), || {
            head.fill(0);
            prev.fill(0);
        });
        let f = self.parse(src, base);
        let plan = Plan::new(&f, &mut self.scratch, &mut self.dynamic);
        // Header, the block's whole bytes, checksum.
        let size = 2 + plan.bits.div_ceil(8) as usize + 4;
        if size >= limit {
            return false;
        }
        // CMF: deflate, 32 KiB window; FLG: fastest level, no dictionary,
        // check bits making CMF * 256 + FLG a multiple of 31.
        out.reserve(size + 8);
        out.extend_from_slice(&[0x78, 0x01]);
        let fixed = &mut self.fixed;
        // The block's bytes and 4 more: `Bits` stores whole words.
        let room = size - 6 + 4;
        // SAFETY: `out` has `size + 8 - 2` bytes of room past its end.
        let len = unsafe {
            let at = out.as_mut_ptr().add(out.len());
            let mut w = Bits::new(at, room);
            write_block(&mut w, src, &self.syms, &plan, &self.dynamic, fixed);
            w.finish(at)
        };
        let Some(len) = len.filter(|&l| l as u64 == plan.bits.div_ceil(8)) else {
            // The plan and the block disagree: a bug, not the input's fault.
            debug_assert!(
                false,
                "deflate block of {len:?} bytes, planned {}",
                plan.bits
            );
            out.truncate(out.len() - 2);
            return false;
        };
        // SAFETY: `write_block` initialised those `len` bytes.
        unsafe { out.set_len(out.len() + len) };
        out.extend_from_slice(&adler32(src).to_be_bytes());
        true
    }

    /// Greedy LZ77 over `src` into `self.syms`; the symbols' counts.
    #[inline(never)]
    #[link_section = ".text.hot.vmcore_deflate_parse"]
    fn parse(&mut self, src: &[u8], base: u32) -> Freqs {
        let mut f = Freqs {
            lit: [0; LITLEN],
            dist: [0; DISTS],
        };
        let n = src.len();
        let syms = &mut self.syms;
        syms.clear();
        syms.reserve(n / 2 + 2);
        let head = &mut self.head;
        let prev = &mut self.prev;
        let base1 = base.wrapping_add(1);
        let mut ip = 0usize;
        let mut lit = 0usize;
        while ip + MIN_MATCH <= n {
            // SAFETY: `ip + 4 <= n`.
            let v = unsafe { u32_at(src, ip) };
            let h = hash(v);
            let mut c = head[h];
            head[h] = base1.wrapping_add(ip as u32);
            let (mut best, mut best_dist) = (0usize, 0usize);
            // A candidate of this call is before `ip` and within the
            // window; an empty or earlier-call entry (at most `base`)
            // wraps to at least `n`.
            if (c.wrapping_sub(base1) as usize) < ip {
                // Linked only behind a candidate of this call: a chain that
                // reaches `ip` otherwise finds an earlier call's entry (or,
                // past 32 KiB, one out of the window) and stops.
                prev[ip & (WINDOW - 1)] = c;
            }
            let mut last = ip;
            for _ in 0..CHAIN {
                let m = c.wrapping_sub(base1) as usize;
                if m >= last || ip - m > WINDOW {
                    break;
                }
                // SAFETY: `m < ip` and `ip + 4 <= n`.
                if unsafe { u32_at(src, m) } == v {
                    let len = MIN_MATCH + common_len(src, m + 4, ip + 4, (ip + MAX_MATCH).min(n));
                    if len > best {
                        (best, best_dist) = (len, ip - m);
                        if len >= NICE {
                            break;
                        }
                    }
                }
                last = m;
                c = prev[m & (WINDOW - 1)];
            }
            if best < MIN_MATCH {
                ip += 1;
                continue;
            }
            literals(syms, &mut f, &src[lit..ip]);
            f.lit[len_code(best).0] += 1;
            f.dist[dist_code(best_dist).0] += 1;
            syms.push(((best_dist as u32) << 10) | (best as u32) << 1 | 1);
            let end = ip + best;
            if best <= INSERT_MAX {
                let stop = end.min(n.saturating_sub(MIN_MATCH - 1));
                for p in ip + 1..stop {
                    // SAFETY: `p < stop <= n - 3`.
                    let hp = hash(unsafe { u32_at(src, p) });
                    prev[p & (WINDOW - 1)] = head[hp];
                    head[hp] = base1.wrapping_add(p as u32);
                }
            }
            ip = end;
            lit = ip;
        }
        literals(syms, &mut f, &src[lit..]);
        f.lit[EOB] = 1;
        f
    }
}

/// Counts the literals `run` and adds them to the parse (as runs of at
/// most 2^30 bytes, so that a count fits its symbol).
#[inline(always)]
fn literals(syms: &mut Vec<u32>, f: &mut Freqs, run: &[u8]) {
    for &b in run {
        f.lit[b as usize] += 1;
    }
    const MAX_RUN: usize = 1 << 30;
    let mut left = run.len();
    while left > MAX_RUN {
        syms.push((MAX_RUN as u32) << 1);
        left -= MAX_RUN;
    }
    if left != 0 {
        syms.push((left as u32) << 1);
    }
}

/// Symbol counts of a block.
struct Freqs {
    lit: [u32; LITLEN],
    dist: [u32; DISTS],
}

/// zlib's checksum of `data`.
#[inline(never)]
#[link_section = ".text.hot.vmcore_deflate_write"]
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    // Sixteen-bit lanes of the even and odd bytes of a little-endian word.
    const LANES: u64 = 0x00ff_00ff_00ff_00ff;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes (a multiple of 8) keep the sums within a u32 between
    // reductions.
    for chunk in data.chunks(5552) {
        // Eight bytes a step, from one load: with x0..x7 the bytes, `a`
        // grows by their sum and `b` by 8a + 8x0 + 7x1 + ... + 1x7. Each
        // sum is one multiply: the top lane of lanes * weights collects
        // lane i times weight 3 - i, no lane's partial sum passing 16 bits.
        let mut words = chunk.chunks_exact(8);
        for w in &mut words {
            let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            let even = v & LANES;
            let odd = (v >> 8) & LANES;
            let sum = ((even + odd).wrapping_mul(0x0001_0001_0001_0001) >> 48) as u32;
            let weighted = ((even.wrapping_mul(0x0008_0006_0004_0002) >> 48)
                + (odd.wrapping_mul(0x0007_0005_0003_0001) >> 48))
                as u32;
            b += 8 * a + weighted;
            a += sum;
        }
        for &x in words.remainder() {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Bits, least significant first, stored through a pointer four bytes at a
/// time into room the caller sized from the block's planned length. A
/// store that would pass the room is not made (the stream is then refused:
/// a planning mistake costs a raw page, never memory past the buffer).
struct Bits {
    p: *mut u8,
    /// Where the room ends.
    end: *mut u8,
    acc: u64,
    /// Bits in `acc` not yet stored (under 32 between puts).
    n: u32,
    overflow: bool,
}

impl Bits {
    /// A writer at `p` with `room` bytes there.
    ///
    /// # Safety
    /// `p` is valid for writes of `room` bytes.
    unsafe fn new(p: *mut u8, room: usize) -> Bits {
        Bits {
            p,
            // SAFETY: the end of the room the caller gives.
            end: unsafe { p.add(room) },
            acc: 0,
            n: 0,
            overflow: false,
        }
    }

    /// Appends the low `nbits` (at most 32) of `v`, nothing above them set.
    #[inline(always)]
    fn put(&mut self, v: u32, nbits: u32) {
        self.acc |= u64::from(v) << self.n;
        self.n += nbits;
        if self.n >= 32 {
            self.store();
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    /// Stores the accumulator's low four bytes and moves on by four.
    #[inline(always)]
    fn store(&mut self) {
        // Four bytes of room left? (`p` never passes `end`.)
        if (self.end as usize) - (self.p as usize) < 4 {
            self.overflow = true;
            return;
        }
        // SAFETY: the four bytes are inside the room (just checked).
        unsafe {
            self.p
                .cast::<u32>()
                .write_unaligned((self.acc as u32).to_le());
            self.p = self.p.add(4);
        }
    }

    /// Stores what is left and returns the stream's length from `start`,
    /// or `None` when it did not fit the room.
    ///
    /// # Safety
    /// `start` is where this writer began.
    unsafe fn finish(mut self, start: *mut u8) -> Option<usize> {
        let tail = self.n.div_ceil(8) as usize;
        self.store();
        if self.overflow {
            return None;
        }
        // SAFETY: `p` moved on from `start` within one allocation.
        let whole = unsafe { self.p.offset_from(start) } as usize;
        Some(whole - 4 + tail)
    }
}

/// A Huffman code: each symbol's length and its bits, reversed for
/// least-significant-first output.
#[derive(Debug, Clone)]
struct Code<const N: usize> {
    len: [u8; N],
    /// Per symbol its bits, and its length from bit 16: one load to write
    /// it.
    code: [u32; N],
}

impl<const N: usize> Code<N> {
    /// The canonical code of the lengths `len`.
    fn from_lengths(len: [u8; N]) -> Code<N> {
        let mut c = Code { len, code: [0; N] };
        c.assign();
        c
    }

    /// The canonical code of the lengths in `self.len`, into `self.code`.
    fn assign(&mut self) {
        let mut count = [0u16; 16];
        for &l in &self.len {
            count[l as usize] += 1;
        }
        count[0] = 0;
        let mut next = [0u16; 16];
        let mut code = 0u16;
        for l in 1..16 {
            code = (code + count[l - 1]) << 1;
            next[l] = code;
        }
        for (s, &l) in self.len.iter().enumerate() {
            self.code[s] = if l != 0 {
                let c = next[l as usize];
                next[l as usize] += 1;
                u32::from(c.reverse_bits() >> (16 - l)) | u32::from(l) << 16
            } else {
                0
            };
        }
    }

    /// This code made the one for `freq`, no length above `limit`; at
    /// least two symbols get a length (deflate's decoders want complete
    /// codes), a symbol of count zero none unless it is needed for that.
    fn build(&mut self, freq: &[u32; N], limit: u8, s: &mut Scratch) {
        lengths(freq, limit, s, &mut self.len);
        self.assign();
    }

    #[inline(always)]
    fn put(&self, w: &mut Bits, sym: usize) {
        let c = self.code[sym];
        w.put(c & 0xffff, c >> 16);
    }
}

/// Huffman code lengths for `freq`, none above `limit`.
fn lengths<const N: usize>(freq: &[u32; N], limit: u8, s: &mut Scratch, len: &mut [u8; N]) {
    // Symbols that occur, as count << 16 | symbol, sorted: by count, then
    // symbol. At least two (a dummy count of one for the first unused).
    let used = &mut s.keys;
    let mut k = 0;
    for (s, &f) in freq.iter().enumerate() {
        if f != 0 {
            used[k] = u64::from(f) << 16 | s as u64;
            k += 1;
        }
    }
    for (s, &f) in freq.iter().enumerate() {
        if k >= 2 {
            break;
        }
        if f == 0 {
            used[k] = 1 << 16 | s as u64;
            k += 1;
        }
    }
    let used = &mut used[..k];
    if k > 2 {
        // No dummy among them: in symbol order, as sort_by_count wants.
        sort_by_count(used, &mut s.tmp);
    } else {
        used.sort_unstable();
    }
    let depth = &mut s.depth[..k];
    for (d, &u) in depth.iter_mut().zip(used.iter()) {
        *d = (u >> 16) as u32;
    }
    minimum_redundancy(depth);
    // Lengths over the limit folded down, then the Kraft sum made exact
    // again: a code at the limit goes, a shorter one splits in two (counts
    // per length; the most frequent symbols keep the shortest codes).
    let limit = usize::from(limit);
    let mut count = [0u32; 32];
    for &d in depth.iter() {
        count[(d as usize).min(limit)] += 1;
    }
    let full = 1u64 << limit;
    let mut kraft: u64 = (1..=limit)
        .map(|l| u64::from(count[l]) << (limit - l))
        .sum();
    while kraft > full {
        count[limit] -= 1;
        for l in (1..limit).rev() {
            if count[l] != 0 {
                count[l] -= 1;
                count[l + 1] += 2;
                break;
            }
        }
        kraft -= 1;
    }
    len.fill(0);
    // `used` is by ascending count: the longest lengths go first.
    let mut i = 0;
    for l in (1..=limit).rev() {
        for _ in 0..count[l] {
            len[(used[i] & 0xffff) as usize] = l as u8;
            i += 1;
        }
    }
}

/// Sorts `count << 16 | symbol` keys (given in symbol order) by count,
/// symbols in order within a count: by insertion when there are few, else
/// by a stable radix sort over the count's bytes when counts fit 16 bits
/// (always, for a page), else by comparisons. Under emulation the
/// comparison sort's branches had made code building a fifth of the
/// encoder's time. `tmp` is as long as `keys` or longer.
fn sort_by_count(keys: &mut [u64], tmp: &mut [u64]) {
    if keys.len() <= 32 {
        for i in 1..keys.len() {
            let k = keys[i];
            let mut j = i;
            while j > 0 && keys[j - 1] > k {
                keys[j] = keys[j - 1];
                j -= 1;
            }
            keys[j] = k;
        }
        return;
    }
    let max = keys.iter().map(|&k| k >> 16).max().unwrap_or(0);
    if max > 0xffff {
        keys.sort_unstable();
        return;
    }
    let tmp = &mut tmp[..keys.len()];
    let passes: &[u32] = if max > 0xff { &[16, 24] } else { &[16] };
    let (mut from, mut to) = (&mut *keys, &mut *tmp);
    for &shift in passes {
        let mut at = [0u32; 256];
        for &k in from.iter() {
            at[((k >> shift) & 0xff) as usize] += 1;
        }
        let mut sum = 0;
        for a in at.iter_mut() {
            (*a, sum) = (sum, sum + *a);
        }
        for &k in from.iter() {
            let b = ((k >> shift) & 0xff) as usize;
            to[at[b] as usize] = k;
            at[b] += 1;
        }
        std::mem::swap(&mut from, &mut to);
    }
    if passes.len() == 1 {
        // The result is in `tmp`.
        keys.copy_from_slice(tmp);
    }
}

/// Working arrays for building codes, kept from page to page (each call
/// writes what it then reads).
#[derive(Debug, Clone)]
struct Scratch {
    keys: [u64; 288],
    tmp: [u64; 288],
    depth: [u32; 288],
}

/// Optimal prefix-code lengths, in place: `a` holds counts in ascending
/// order and gets each one's code length (Moffat and Katajainen's
/// in-place algorithm, 1995). `a.len() >= 2`.
fn minimum_redundancy(a: &mut [u32]) {
    let n = a.len();
    // Phase 1: build the tree's internal nodes in place; a[i] for an
    // internal node becomes its parent's index.
    a[0] += a[1];
    let (mut root, mut leaf) = (0usize, 2usize);
    for next in 1..n - 1 {
        // First child.
        if leaf >= n || a[root] < a[leaf] {
            a[next] = a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] = a[leaf];
            leaf += 1;
        }
        // Second child.
        if leaf >= n || (root < next && a[root] < a[leaf]) {
            a[next] += a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] += a[leaf];
            leaf += 1;
        }
    }
    // Phase 2: internal nodes' depths.
    a[n - 2] = 0;
    for next in (0..n - 2).rev() {
        a[next] = a[a[next] as usize] + 1;
    }
    // Phase 3: leaves' depths, the deepest at the lowest counts.
    let (mut avail, mut used, mut depth) = (1usize, 0usize, 0u32);
    let mut root = n as isize - 2;
    let mut next = n as isize - 1;
    while avail > 0 {
        while root >= 0 && a[root as usize] == depth {
            used += 1;
            root -= 1;
        }
        while avail > used {
            a[next as usize] = depth;
            next -= 1;
            avail -= 1;
        }
        avail = 2 * used;
        depth += 1;
        used = 0;
    }
}

/// Fixed-code lengths (RFC 1951 3.2.6).
fn fixed_litlen_len(s: usize) -> u32 {
    match s {
        0..=143 => 8,
        144..=255 => 9,
        256..=279 => 7,
        _ => 8,
    }
}

/// The block: which codes, and its exact length in bits.
struct Plan {
    fixed: bool,
    bits: u64,
}

/// The dynamic codes of the current page and what their header says,
/// rebuilt in place for every page.
#[derive(Debug, Clone)]
struct Dynamic {
    lit: Code<LITLEN>,
    dist: Code<DISTS>,
    cl: Code<19>,
    /// The code lengths, run-length coded, as (symbol, extra bits): at
    /// most one entry per length sent.
    rle: [(u8, u8); LITLEN + DISTS],
    nrle: usize,
    hlit: usize,
    hdist: usize,
    hclen: usize,
}

impl Dynamic {
    fn new() -> Dynamic {
        Dynamic {
            lit: Code::from_lengths([0; LITLEN]),
            dist: Code::from_lengths([0; DISTS]),
            cl: Code::from_lengths([0; 19]),
            rle: [(0, 0); LITLEN + DISTS],
            nrle: 0,
            hlit: 257,
            hdist: 1,
            hclen: 4,
        }
    }
}

/// Extra bits of length code `c` (257..=285).
fn len_extra(c: usize) -> u64 {
    if (265..285).contains(&c) {
        ((c - 261) / 4) as u64
    } else {
        0
    }
}

/// Extra bits of distance code `c`.
fn dist_extra(c: usize) -> u64 {
    if c >= 4 {
        (c / 2 - 1) as u64
    } else {
        0
    }
}

impl Plan {
    /// The smaller of the dynamic block (its codes made in `d`) and the
    /// fixed one for the counts `f`.
    fn new(f: &Freqs, s: &mut Scratch, d: &mut Dynamic) -> Plan {
        let (lf, df) = (&f.lit, &f.dist);
        d.lit.build(lf, 15, s);
        d.dist.build(df, 15, s);
        let hlit = (257..=LITLEN)
            .rev()
            .find(|&i| d.lit.len[i - 1] != 0)
            .unwrap_or(257);
        let hdist = (1..=DISTS)
            .rev()
            .find(|&i| d.dist.len[i - 1] != 0)
            .unwrap_or(1);
        // The code lengths, run-length coded (16: repeat the previous 3-6
        // times, 17: 3-10 zeros, 18: 11-138 zeros).
        let total = hlit + hdist;
        let at = |i: usize| {
            if i < hlit {
                d.lit.len[i]
            } else {
                d.dist.len[i - hlit]
            }
        };
        let mut cf = [0u32; 19];
        let mut nrle = 0;
        let mut push = |s: u8, x: u8, rle: &mut [(u8, u8)]| {
            rle[nrle] = (s, x);
            nrle += 1;
            cf[s as usize] += 1;
        };
        let mut i = 0;
        while i < total {
            let l = at(i);
            let mut run = 1;
            while i + run < total && at(i + run) == l {
                run += 1;
            }
            i += run;
            if l == 0 {
                while run >= 11 {
                    let r = run.min(138);
                    push(18, (r - 11) as u8, &mut d.rle);
                    run -= r;
                }
                if run >= 3 {
                    push(17, (run - 3) as u8, &mut d.rle);
                    run = 0;
                }
            } else {
                push(l, 0, &mut d.rle);
                run -= 1;
                while run >= 3 {
                    let r = run.min(6);
                    push(16, (r - 3) as u8, &mut d.rle);
                    run -= r;
                }
            }
            for _ in 0..run {
                push(l, 0, &mut d.rle);
            }
        }
        d.cl.build(&cf, 7, s);
        let hclen = (4..=19)
            .rev()
            .find(|&i| d.cl.len[CL_ORDER[i - 1]] != 0)
            .unwrap_or(4);
        (d.nrle, d.hlit, d.hdist, d.hclen) = (nrle, hlit, hdist, hclen);
        // Both kinds of block in one pass over the counts (extra bits are
        // the same in both and counted once).
        let (mut extra, mut dynamic, mut fixed) = (0u64, 0u64, 3u64);
        for (c, &f) in lf.iter().enumerate() {
            let f = u64::from(f);
            dynamic += f * u64::from(d.lit.len[c]);
            fixed += f * u64::from(fixed_litlen_len(c));
            extra += f * len_extra(c);
        }
        for (c, &f) in df.iter().enumerate() {
            let f = u64::from(f);
            dynamic += f * u64::from(d.dist.len[c]);
            fixed += f * 5;
            extra += f * dist_extra(c);
        }
        dynamic += 3 + 14 + 3 * hclen as u64;
        for (s, &f) in cf.iter().enumerate() {
            let x = match s {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => 0,
            };
            dynamic += u64::from(f) * (u64::from(d.cl.len[s]) + x);
        }
        if fixed <= dynamic {
            Plan {
                fixed: true,
                bits: fixed + extra,
            }
        } else {
            Plan {
                fixed: false,
                bits: dynamic + extra,
            }
        }
    }
}

/// Writes the final block `plan` says (its dynamic codes in `d`), holding
/// `syms` (the parse of `src`) and the end of block.
fn write_block(
    w: &mut Bits,
    src: &[u8],
    syms: &[u32],
    plan: &Plan,
    d: &Dynamic,
    fixed: &mut Option<Box<(Code<288>, Code<30>)>>,
) {
    if plan.fixed {
        // BFINAL, BTYPE 01.
        w.put(0b011, 3);
        let codes = fixed.get_or_insert_with(|| {
            let mut flen = [0u8; 288];
            for (s, l) in flen.iter_mut().enumerate() {
                *l = fixed_litlen_len(s) as u8;
            }
            Box::new((Code::from_lengths(flen), Code::from_lengths([5u8; 30])))
        });
        write_syms(w, src, syms, &codes.0, &codes.1);
        return;
    }
    // BFINAL, BTYPE 10, then HLIT, HDIST, HCLEN.
    w.put(0b101, 3);
    w.put((d.hlit - 257) as u32, 5);
    w.put((d.hdist - 1) as u32, 5);
    w.put((d.hclen - 4) as u32, 4);
    for &s in &CL_ORDER[..d.hclen] {
        w.put(u32::from(d.cl.len[s]), 3);
    }
    for &(s, x) in &d.rle[..d.nrle] {
        d.cl.put(w, s as usize);
        match s {
            16 => w.put(u32::from(x), 2),
            17 => w.put(u32::from(x), 3),
            18 => w.put(u32::from(x), 7),
            _ => {}
        }
    }
    write_syms(w, src, syms, &d.lit, &d.dist);
}

/// The block's symbols and its end, in the codes `lit` and `dist`.
#[inline(never)]
#[link_section = ".text.hot.vmcore_deflate_write"]
fn write_syms<const L: usize>(
    out: &mut Bits,
    src: &[u8],
    syms: &[u32],
    lit: &Code<L>,
    dist: &Code<30>,
) {
    // The writer's state in locals (registers) for the loop, not stored
    // back through `w` after every symbol.
    let mut bits = Bits { ..*out };
    let w = &mut bits;
    let mut at = 0usize;
    for &s in syms {
        if s & 1 == 0 {
            let run = (s >> 1) as usize;
            for &b in &src[at..at + run] {
                lit.put(w, b as usize);
            }
            at += run;
        } else {
            // Each code with its extra bits in one put (at most 15 + 13).
            let len = ((s >> 1) & 0x1ff) as usize;
            let (c, eb, ev) = len_code(len);
            let c = lit.code[c];
            w.put((c & 0xffff) | ev << (c >> 16), (c >> 16) + eb);
            let (c, eb, ev) = dist_code((s >> 10) as usize);
            let c = dist.code[c];
            w.put((c & 0xffff) | ev << (c >> 16), (c >> 16) + eb);
            at += len;
        }
    }
    lit.put(w, EOB);
    *out = bits;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::build;

    fn inflate(z: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut d = flate2::read::ZlibDecoder::new(z);
        let mut v = Vec::new();
        d.read_to_end(&mut v)
            .unwrap_or_else(|e| panic!("inflate: {e} ({} bytes)", z.len()));
        v
    }

    fn round_trip(data: &[u8]) -> usize {
        let mut c = Deflate::new();
        let mut out = vec![0xee];
        c.compress(data, &mut out);
        assert_eq!(inflate(&out[1..]), data);
        out.len() - 1
    }

    #[test]
    fn codes_of_lengths_and_distances() {
        assert_eq!(len_code(3), (257, 0, 0));
        assert_eq!(len_code(10), (264, 0, 0));
        assert_eq!(len_code(11), (265, 1, 0));
        assert_eq!(len_code(12), (265, 1, 1));
        assert_eq!(len_code(19), (269, 2, 0));
        assert_eq!(len_code(131), (281, 5, 0));
        assert_eq!(len_code(257), (284, 5, 30));
        assert_eq!(len_code(258), (285, 0, 0));
        assert_eq!(dist_code(1), (0, 0, 0));
        assert_eq!(dist_code(4), (3, 0, 0));
        assert_eq!(dist_code(5), (4, 1, 0));
        assert_eq!(dist_code(7), (5, 1, 0));
        assert_eq!(dist_code(8), (5, 1, 1));
        assert_eq!(dist_code(32768), (29, 13, 8191));
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn lengths_are_limited_and_complete() {
        // Fibonacci counts make a code 40 deep without the limit.
        let mut f = [0u32; LITLEN];
        let (mut a, mut b) = (1u32, 1u32);
        for s in f.iter_mut().take(40) {
            *s = a;
            (a, b) = (b, a.saturating_add(b));
        }
        for limit in [7u8, 9, 15] {
            let mut l = [0u8; LITLEN];
            lengths(&f, limit, &mut Deflate::new().scratch, &mut l);
            assert!(l.iter().all(|&x| x <= limit));
            let kraft: f64 = l
                .iter()
                .filter(|&&x| x != 0)
                .map(|&x| 0.5f64.powi(x.into()))
                .sum();
            assert!((kraft - 1.0).abs() < 1e-12, "limit {limit}: {kraft}");
            assert_eq!(l.iter().filter(|&&x| x != 0).count(), 40);
        }
        // One symbol used, or none: two codes of one bit.
        let mut one = [0u32; DISTS];
        one[7] = 5;
        let mut l = [0u8; DISTS];
        lengths(&one, 15, &mut Deflate::new().scratch, &mut l);
        assert_eq!(
            (l[7], l[0], l.iter().filter(|&&x| x != 0).count()),
            (1, 1, 2)
        );
        lengths(&[0u32; DISTS], 15, &mut Deflate::new().scratch, &mut l);
        assert_eq!((l[0], l[1]), (1, 1));
    }

    #[test]
    fn the_bit_writer_stays_in_its_room() {
        let mut buf = [0u8; 16];
        // SAFETY: 8 bytes of `buf`.
        let mut w = unsafe { Bits::new(buf.as_mut_ptr(), 8) };
        w.put(0b101, 3);
        w.put(0xffff_ffff, 32);
        // SAFETY: started at `buf`.
        assert_eq!(unsafe { w.finish(buf.as_mut_ptr()) }, Some(5));
        assert_eq!(buf[..5], [0xfd, 0xff, 0xff, 0xff, 0x07]);
        // SAFETY: 8 bytes of `buf`; 12 put in them are refused.
        let mut w = unsafe { Bits::new(buf.as_mut_ptr(), 8) };
        for _ in 0..3 {
            w.put(0x1234_5678, 32);
        }
        // SAFETY: started at `buf`.
        assert_eq!(unsafe { w.finish(buf.as_mut_ptr()) }, None);
        assert_eq!(buf[8..], [0; 8]);
    }

    #[test]
    fn a_stream_over_the_limit_is_not_written() {
        let noise = build::Xorshift(0x1234_5678_9abc_def1).bytes(4096);
        let mut c = Deflate::new();
        let mut out = vec![1, 2, 3];
        assert!(!c.compress_within(&noise, &mut out, 4096));
        assert_eq!(out, [1, 2, 3]);
        // The same page with no limit: a valid stream, longer than 4096.
        assert!(c.compress_within(&noise, &mut out, usize::MAX));
        assert!(out.len() - 3 >= 4096);
        assert_eq!(inflate(&out[3..]), noise);
        // A limit one byte over the stream's length takes it; at it, not.
        let page = build::pattern(0x4000_0000, 4096);
        let mut full = Vec::new();
        c.compress(&page, &mut full);
        let mut o = Vec::new();
        assert!(!c.compress_within(&page, &mut o, full.len()));
        assert!(o.is_empty());
        assert!(c.compress_within(&page, &mut o, full.len() + 1));
        assert_eq!(o, full);
    }

    #[test]
    fn reused_state_gives_the_streams_of_a_fresh_one() {
        let a = build::pattern(0x4000_0000, 4096);
        let b = build::pattern(0x4000_1000, 4096);
        let fresh = |d: &[u8]| {
            let mut o = Vec::new();
            Deflate::new().compress(d, &mut o);
            o
        };
        let mut c = Deflate::new();
        for d in [&a, &b, &a, &b] {
            let mut o = Vec::new();
            c.compress(d, &mut o);
            assert_eq!(o, fresh(d));
        }
        c.base = u32::MAX - 5000;
        for d in [&b, &a, &b] {
            let mut o = Vec::new();
            c.compress(d, &mut o);
            assert_eq!(o, fresh(d));
        }
        assert_eq!(c.base, 2 * 4097);
    }

    #[test]
    fn streams_inflate_to_their_input() {
        assert!(round_trip(&[0u8; 4096]) <= 40);
        assert!(round_trip(&build::pattern(0x4000_0000, 4096)) < 4096);
        assert!(round_trip(&[0u8; 70000]) < 400);
        let text: Vec<u8> = "The quick brown fox jumps over the lazy dog; \
                             kernel: Kernel panic - not syncing: sysrq triggered crash\n"
            .bytes()
            .cycle()
            .take(4096)
            .collect();
        assert!(round_trip(&text) < 300);
        let mut x = build::Xorshift(0x2545_f491_4f6c_dd1d);
        let mut rnd = || x.next_u64();
        for len in [
            0usize, 1, 2, 3, 4, 5, 7, 8, 9, 100, 4096, 32768, 32769, 100_000,
        ] {
            let noise: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            round_trip(&noise);
            let mut mixed = Vec::new();
            while mixed.len() < len {
                let lits = (rnd() % 300) as usize + 1;
                mixed.extend((0..lits).map(|_| rnd() as u8 & 0x0f));
                let d = (rnd() as usize % mixed.len().min(40000)) + 1;
                let l = (rnd() % 400) as usize + 3;
                for _ in 0..l {
                    mixed.push(mixed[mixed.len() - d]);
                }
            }
            mixed.truncate(len);
            round_trip(&mixed);
        }
        // Every byte value, few times each: long codes.
        let skewed: Vec<u8> = (0..4096u32)
            .map(|i| (i.trailing_zeros() * 20 + i % 7) as u8)
            .collect();
        round_trip(&skewed);
    }
}
