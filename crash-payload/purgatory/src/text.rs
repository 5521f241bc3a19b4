//! Message formatting without `core::fmt`: numbers into fixed buffers, so
//! the bare-metal console code stays small and allocation-free.
#![forbid(unsafe_code)]

/// Lower-case hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// `v` as `0x` + 16 hex digits.
pub fn hex_u64(v: u64) -> [u8; 18] {
    let mut b = *b"0x0000000000000000";
    for i in 0..16 {
        b[17 - i] = HEX[((v >> (4 * i)) & 0xf) as usize];
    }
    b
}

/// `bytes` as hex, two digits each, into `out`; returns the digits written.
pub fn hex_bytes<'a>(bytes: &[u8], out: &'a mut [u8; 64]) -> &'a [u8] {
    let n = bytes.len().min(32);
    for (i, b) in bytes[..n].iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
    &out[..2 * n]
}

/// `v` in decimal into `out`; returns the digits written.
pub fn dec_u64(mut v: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &out[i..]
}

/// Counter ticks at `freq` Hz as whole milliseconds and tenths; `freq` 0 gives 0.
pub fn ticks_to_ms(ticks: u64, freq: u64) -> (u64, u64) {
    if freq == 0 {
        return (0, 0);
    }
    let tenths = (u128::from(ticks) * 10_000 / u128::from(freq)) as u64;
    (tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(&hex_u64(0x4020_0000), b"0x0000000040200000");
        let mut o = [0u8; 64];
        assert_eq!(hex_bytes(&[0xde, 0xad, 0x01], &mut o), b"dead01");
        let mut d = [0u8; 20];
        assert_eq!(dec_u64(0, &mut d), b"0");
        assert_eq!(dec_u64(41_943_040, &mut d), b"41943040");
        assert_eq!(dec_u64(u64::MAX, &mut d), b"18446744073709551615");
        assert_eq!(ticks_to_ms(62_500_000, 62_500_000), (1000, 0));
        assert_eq!(ticks_to_ms(6_256, 62_500_000), (0, 1));
        assert_eq!(ticks_to_ms(5, 0), (0, 0));
    }
}
