//! LZO1X decompression, bounds-checked, for makedumpfile's
//! `DUMP_DH_COMPRESSED_LZO` pages (written by liblzo2's `lzo1x_1_compress`).
//!
//! Written here rather than taken from a crate because the decoders found
//! (lzokay-native 0.1) index and subtract without checks and panic on
//! corrupt input; a dump reader must return an error instead.
//!
//! The stream is a sequence of instructions; the meaning of a byte below 16
//! depends on how many literals the previous instruction copied (`state`):
//!
//! | first byte | instruction |
//! |---|---|
//! | `1LLDDDSS`, `01LDDDSS` + H | M2: copy `(byte >> 5) + 1` (3 to 8) bytes from distance `(H<<3)+D+1` ≤ 2 KiB |
//! | `001LLLLL` + [len] + LE16 | M3: copy `L+2` bytes from distance `(LE16>>2)+1` ≤ 16 KiB |
//! | `0001HLLL` + [len] + LE16 | M4: copy `L+2` bytes from distance `16384+(H<<14)+(LE16>>2)`; distance 16384 ends the stream |
//! | `0000LLLL`, state 0 | literal run of `L+3` bytes |
//! | `0000DDSS` + H, state 1..3 | M1: copy 2 bytes from distance `(H<<2)+D+1` |
//! | `0000DDSS` + H, state 4 | M1: copy 3 bytes from distance `(H<<2)+D+2049` |
//!
//! `SS` (the low two bits of a match's last distance byte) is the number of
//! literals that follow the match, and becomes the next state. A zero length
//! field is extended by a run of zero bytes (255 each) and a final byte. A
//! first byte above 17 is a literal run of `byte-17` bytes.

use std::fmt;

/// Why an LZO1X stream did not decode to exactly the expected size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LzoError {
    /// The input ended inside an instruction (at this input offset).
    InputOverrun(usize),
    /// The output would exceed the expected size (instruction at this input offset).
    OutputOverrun(usize),
    /// A match reaches before the start of the output (instruction at this input offset).
    LookBehind(usize),
    /// Bytes follow the end-of-stream marker (at this input offset).
    TrailingInput(usize),
    /// The stream ended with fewer bytes than expected (this many).
    ShortOutput(usize),
}

impl fmt::Display for LzoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LzoError::InputOverrun(at) => {
                write!(f, "LZO1X stream ends inside the instruction at byte {at}")
            }
            LzoError::OutputOverrun(at) => {
                write!(f, "LZO1X instruction at byte {at} writes past the page")
            }
            LzoError::LookBehind(at) => {
                write!(
                    f,
                    "LZO1X match at byte {at} reaches before the start of the page"
                )
            }
            LzoError::TrailingInput(at) => {
                write!(f, "LZO1X data continues after the end marker (byte {at})")
            }
            LzoError::ShortOutput(n) => {
                write!(f, "LZO1X stream ends after {n} bytes, short of the page")
            }
        }
    }
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Offset of the instruction being decoded, for errors.
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, LzoError> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or(LzoError::InputOverrun(self.at))?;
        self.pos += 1;
        Ok(b)
    }

    fn le16(&mut self) -> Result<usize, LzoError> {
        let lo = self.byte()?;
        let hi = self.byte()?;
        Ok(usize::from(u16::from_le_bytes([lo, hi])))
    }

    /// A length field's extension: zero bytes count 255 each, then a final
    /// byte. Bounded by the input length, so it cannot overflow.
    fn extended_len(&mut self, base: usize) -> Result<usize, LzoError> {
        let mut zeros = 0usize;
        loop {
            let b = self.byte()?;
            if b != 0 {
                return Ok(base + zeros * 255 + usize::from(b));
            }
            zeros += 1;
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], LzoError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(LzoError::InputOverrun(self.at))?;
        let s = self
            .input
            .get(self.pos..end)
            .ok_or(LzoError::InputOverrun(self.at))?;
        self.pos = end;
        Ok(s)
    }
}

/// Decompresses `input`, which must decode to exactly `out_len` bytes and
/// end with the end-of-stream marker and nothing after it.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzoError> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut r = Reader {
        input,
        pos: 0,
        at: 0,
    };

    let push_literals = |r: &mut Reader<'_>, out: &mut Vec<u8>, n: usize| -> Result<(), LzoError> {
        let at = r.at;
        let lit = r.take(n)?;
        if out.len() + lit.len() > out_len {
            return Err(LzoError::OutputOverrun(at));
        }
        out.extend_from_slice(lit);
        Ok(())
    };

    let mut state = 0usize;
    if let Some(&b0) = input.first() {
        if b0 > 17 {
            r.pos = 1;
            let n = usize::from(b0 - 17);
            push_literals(&mut r, &mut out, n)?;
            state = n.min(4);
        }
    }

    loop {
        r.at = r.pos;
        let inst = r.byte()?;
        let (dist, len, next);
        if inst >= 64 {
            // M2
            let h = usize::from(r.byte()?);
            dist = (h << 3) + usize::from((inst >> 2) & 7) + 1;
            len = usize::from(inst >> 5) + 1;
            next = usize::from(inst & 3);
        } else if inst >= 32 {
            // M3
            let l = usize::from(inst & 31);
            len = if l == 0 {
                r.extended_len(31)? + 2
            } else {
                l + 2
            };
            let w = r.le16()?;
            dist = (w >> 2) + 1;
            next = w & 3;
        } else if inst >= 16 {
            // M4 (or the end marker)
            let l = usize::from(inst & 7);
            len = if l == 0 {
                r.extended_len(7)? + 2
            } else {
                l + 2
            };
            let w = r.le16()?;
            let d = (usize::from(inst & 8) << 11) + (w >> 2);
            if d == 0 {
                if r.pos != input.len() {
                    return Err(LzoError::TrailingInput(r.pos));
                }
                if out.len() != out_len {
                    return Err(LzoError::ShortOutput(out.len()));
                }
                return Ok(out);
            }
            dist = d + 16384;
            next = w & 3;
        } else if state == 0 {
            // Literal run.
            let l = usize::from(inst);
            let n = if l == 0 {
                r.extended_len(15)? + 3
            } else {
                l + 3
            };
            push_literals(&mut r, &mut out, n)?;
            state = 4;
            continue;
        } else {
            // M1: 2 bytes near, or 3 bytes 2 KiB back after a literal run.
            let h = usize::from(r.byte()?);
            let base = if state == 4 { 2049 } else { 1 };
            dist = (h << 2) + usize::from(inst >> 2) + base;
            len = if state == 4 { 3 } else { 2 };
            next = usize::from(inst & 3);
        }
        if dist > out.len() {
            return Err(LzoError::LookBehind(r.at));
        }
        if out.len() + len > out_len {
            return Err(LzoError::OutputOverrun(r.at));
        }
        let start = out.len() - dist;
        // Byte by byte: the source may overlap what is being written.
        for i in 0..len {
            let b = out[start + i];
            out.push(b);
        }
        push_literals(&mut r, &mut out, next)?;
        state = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: u64, n: usize) -> Vec<u8> {
        // Compressible but varied: runs, repeats, and noise.
        let mut r = crate::format::build::Xorshift(seed | 1);
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let x = r.next_u64();
            match x % 4 {
                0 => v.extend(std::iter::repeat_n(
                    (x >> 8) as u8,
                    (x >> 16) as usize % 300,
                )),
                1 if v.len() > 64 => {
                    let back = 1 + (x >> 20) as usize % v.len().min(50_000);
                    let len = 3 + (x >> 40) as usize % 200;
                    let s = v.len() - back;
                    for i in 0..len {
                        let b = v[s + i];
                        v.push(b);
                    }
                }
                _ => v.extend_from_slice(&x.to_le_bytes()),
            }
        }
        v.truncate(n);
        v
    }

    #[test]
    fn round_trips_lzokay_output() {
        for (seed, n) in [
            (1, 4096),
            (2, 65536),
            (3, 1),
            (4, 17),
            (5, 4096),
            (6, 16384),
        ] {
            let data = sample(seed, n);
            let c = lzokay_native::compress(&data).unwrap();
            assert_eq!(decompress(&c, n).unwrap(), data, "seed {seed}");
        }
        let zeros = vec![0u8; 65536];
        let c = lzokay_native::compress(&zeros).unwrap();
        assert_eq!(decompress(&c, zeros.len()).unwrap(), zeros);
    }

    /// The page the liblzo2 fixture compresses: numbered text lines, then
    /// zeros with two marker bytes.
    fn fixture_page() -> Vec<u8> {
        let mut p = Vec::new();
        let mut n = 0;
        while p.len() < 2048 {
            p.extend_from_slice(format!("kexec-rs lzo fixture line {n}\n").as_bytes());
            n += 1;
        }
        p.truncate(2048);
        p.resize(4096, 0);
        p[3000] = 0x5a;
        p[4095] = 1;
        p
    }

    #[test]
    fn liblzo2_lzo1x_1_output_decodes() {
        // Made by liblzo2 2.10's lzo1x_1_compress through Debian's
        // python3-lzo: lzo.compress(page, 1, False), page as in fixture_page.
        // It uses long literal runs, extended lengths, M2, M3 and M4 matches.
        let hex = [
        "000a6b657865632d7273206c7a6f2066697874757265206c696e6520300a386d0031396d0032396d0033396d0034396d",
        "0035396d0036396d0037396d0038396d0039396d00313b60043a6504313a6904313a6d04313a7104313a7504313a7904",
        "313a7d04313a8104313a8504323a8504323a8504323a8504323a8504323a8504323a8504323a8504323a8504323a8504",
        "323a8504333a8504333a8504333a8504333a8504333a8504333a8504333a8504333a8504333a8504333a8504343a8504",
        "343a8504343a8504343a8504343a8504343a8504343a8504343a8504343a8504343a8504353a8504353a8504353a8504",
        "353a8504353a8504353a8504353a8504353a8504353a8504353a8504363a8504363a8504363a8504363a8504363a8504",
        "363a8504363a8504363a8504363a8504363a8704373000200000009901005a2000000099dc0e205bd80e000200000000",
        "00000000000000000000000000000001110000",
        ]
        .concat();
        let c: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(c.len(), 355);
        assert_eq!(decompress(&c, 4096).unwrap(), fixture_page());
    }

    #[test]
    fn corrupt_streams_are_errors_not_panics() {
        let data = sample(9, 4096);
        let c = lzokay_native::compress(&data).unwrap();
        let mut r = crate::format::build::Xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let x = r.next_u64();
            let mut m = c.clone();
            let i = (x as usize) % m.len();
            m[i] ^= (x >> 32) as u8 | 1;
            if x & 0x100 != 0 {
                m.truncate((x >> 40) as usize % m.len());
            }
            let _ = decompress(&m, 4096);
        }
        assert_eq!(decompress(&[], 4096), Err(LzoError::InputOverrun(0)));
        assert_eq!(
            decompress(&c, 4095).unwrap_err(),
            decompress(&c, 4095).unwrap_err()
        );
        assert!(matches!(
            decompress(&c, 4097),
            Err(LzoError::ShortOutput(4096))
        ));
        let mut trailing = c.clone();
        trailing.push(0);
        assert!(matches!(
            decompress(&trailing, 4096),
            Err(LzoError::TrailingInput(_))
        ));
    }
}
