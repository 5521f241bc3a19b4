//! SHA-256 (FIPS 180-4) over one contiguous buffer, with the block function
//! as a parameter: [`compress_soft`] here (tested against the `sha2` crate
//! on the host), or the ARMv8 SHA-256 instructions in the bare-metal build.
//!
//! Memory access rules for the MMU-off path (all memory is Device there, so
//! an unaligned access faults): the input is read only in whole 64-byte
//! blocks from its own alignment (segments are page-aligned) or byte by byte.
#![forbid(unsafe_code)]

/// A block function: consumes `blocks.len() / 64` whole blocks
/// (`blocks.len()` is always a multiple of 64).
pub type Compress = fn(&mut [u32; 8], &[u8]);

/// Initial hash value (FIPS 180-4 §5.3.3).
pub const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Round constants (FIPS 180-4 §4.2.2).
pub const K: [u32; 64] = [
    0x428a_2f98,
    0x7137_4491,
    0xb5c0_fbcf,
    0xe9b5_dba5,
    0x3956_c25b,
    0x59f1_11f1,
    0x923f_82a4,
    0xab1c_5ed5,
    0xd807_aa98,
    0x1283_5b01,
    0x2431_85be,
    0x550c_7dc3,
    0x72be_5d74,
    0x80de_b1fe,
    0x9bdc_06a7,
    0xc19b_f174,
    0xe49b_69c1,
    0xefbe_4786,
    0x0fc1_9dc6,
    0x240c_a1cc,
    0x2de9_2c6f,
    0x4a74_84aa,
    0x5cb0_a9dc,
    0x76f9_88da,
    0x983e_5152,
    0xa831_c66d,
    0xb003_27c8,
    0xbf59_7fc7,
    0xc6e0_0bf3,
    0xd5a7_9147,
    0x06ca_6351,
    0x1429_2967,
    0x27b7_0a85,
    0x2e1b_2138,
    0x4d2c_6dfc,
    0x5338_0d13,
    0x650a_7354,
    0x766a_0abb,
    0x81c2_c92e,
    0x9272_2c85,
    0xa2bf_e8a1,
    0xa81a_664b,
    0xc24b_8b70,
    0xc76c_51a3,
    0xd192_e819,
    0xd699_0624,
    0xf40e_3585,
    0x106a_a070,
    0x19a4_c116,
    0x1e37_6c08,
    0x2748_774c,
    0x34b0_bcb5,
    0x391c_0cb3,
    0x4ed8_aa4a,
    0x5b9c_ca4f,
    0x682e_6ff3,
    0x748f_82ee,
    0x78a5_636f,
    0x84c8_7814,
    0x8cc7_0208,
    0x90be_fffa,
    0xa450_6ceb,
    0xbef9_a3f7,
    0xc671_78f2,
];

/// The portable block function.
pub fn compress_soft(state: &mut [u32; 8], blocks: &[u8]) {
    for block in blocks.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
}

/// SHA-256 of `data` with block function `compress`.
pub fn digest(data: &[u8], compress: Compress) -> [u8; 32] {
    let mut state = H0;
    let whole = data.len() - data.len() % 64;
    // The whole blocks in one call, straight from the caller's buffer.
    compress(&mut state, &data[..whole]);
    // The tail and the padding: at most two blocks, built byte by byte.
    let tail = &data[whole..];
    let mut last = [0u8; 128];
    for (d, s) in last.iter_mut().zip(tail) {
        *d = *s;
    }
    last[tail.len()] = 0x80;
    let n = if tail.len() < 56 { 64 } else { 128 };
    let bits = (data.len() as u64).wrapping_mul(8).to_be_bytes();
    for (i, b) in bits.iter().enumerate() {
        last[n - 8 + i] = *b;
    }
    compress(&mut state, &last[..n]);
    let mut out = [0u8; 32];
    for (o, s) in out.chunks_exact_mut(4).zip(state) {
        let be = s.to_be_bytes();
        for (d, b) in o.iter_mut().zip(be) {
            *d = b;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use sha2::{Digest, Sha256};
    use std::vec::Vec;

    #[test]
    fn fips_vectors() {
        let abc = digest(b"abc", compress_soft);
        assert_eq!(abc[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(abc[28..], [0xf2, 0x00, 0x15, 0xad]);
        let empty = digest(b"", compress_soft);
        assert_eq!(empty[..4], [0xe3, 0xb0, 0xc4, 0x42]);
    }

    #[test]
    fn matches_sha2_for_many_lengths() {
        // Deterministic pseudo-random bytes (xorshift64).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..70_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        // Every length around the padding edges, then a spread of larger ones.
        let mut lens: Vec<usize> = (0..=300).collect();
        lens.extend([
            447, 448, 511, 512, 513, 1000, 4095, 4096, 4097, 65_535, 65_536, 65_537, 69_999, 70_000,
        ]);
        for len in lens {
            let want: [u8; 32] = Sha256::digest(&data[..len]).into();
            assert_eq!(digest(&data[..len], compress_soft), want, "length {len}");
        }
    }

    #[test]
    fn one_flipped_byte_changes_the_digest() {
        let mut buf = [0x5au8; 1000];
        let a = digest(&buf, compress_soft);
        buf[777] ^= 1;
        assert_ne!(digest(&buf, compress_soft), a);
    }
}
