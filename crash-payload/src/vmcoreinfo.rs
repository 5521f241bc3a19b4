//! The `VMCOREINFO` note: `KEY=VALUE` lines (`kernel/crash_core.c`).
//!
//! Value encodings, as the kernel prints them:
//! - `NUMBER(x)`: `%ld` decimal, except that arm64 prints `VA_BITS` decimal
//!   and `kimage_voffset`, `PHYS_OFFSET`, `TCR_EL1_T1SZ`, `KERNELPACMASK` as
//!   `0x%llx`. [`VmcoreInfo::number`] accepts both.
//! - `SYMBOL(x)`, `KERNELOFFSET`: `%lx` hex without `0x`.
//! - `SIZE(x)`, `OFFSET(x)`, `LENGTH(x)`, `PAGESIZE`, `CRASHTIME`: decimal.

/// The note's name.
pub const VMCOREINFO_NAME: &[u8] = b"VMCOREINFO";

/// A parse failure, with the byte offset of the offending line in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmcoreInfoError {
    /// A line without `=` (offset of the line).
    NoEquals {
        /// Byte offset of the line.
        offset: usize,
    },
    /// A value that does not parse as the key's encoding.
    BadValue {
        /// Byte offset of the value.
        offset: usize,
    },
    /// Text that is not UTF-8 (offset of the first bad byte).
    NotText {
        /// Byte offset of the first bad byte.
        offset: usize,
    },
}

impl core::fmt::Display for VmcoreInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            VmcoreInfoError::NoEquals { offset } => {
                write!(f, "VMCOREINFO line at offset {offset}: expected KEY=VALUE")
            }
            VmcoreInfoError::BadValue { offset } => {
                write!(
                    f,
                    "VMCOREINFO value at offset {offset}: not a number in the key's encoding"
                )
            }
            VmcoreInfoError::NotText { offset } => {
                write!(f, "VMCOREINFO byte at offset {offset}: not UTF-8 text")
            }
        }
    }
}

/// A view of VMCOREINFO text.
#[derive(Debug, Clone, Copy)]
pub struct VmcoreInfo<'a> {
    text: &'a str,
}

impl<'a> VmcoreInfo<'a> {
    /// Wraps the note descriptor. Trailing NUL bytes are ignored; every
    /// non-empty line must be `KEY=VALUE`.
    pub fn parse(desc: &'a [u8]) -> Result<Self, VmcoreInfoError> {
        let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
        let text = core::str::from_utf8(&desc[..end]).map_err(|e| VmcoreInfoError::NotText {
            offset: e.valid_up_to(),
        })?;
        let mut off = 0;
        for line in text.split('\n') {
            if !line.is_empty() && !line.contains('=') {
                return Err(VmcoreInfoError::NoEquals { offset: off });
            }
            off += line.len() + 1;
        }
        Ok(VmcoreInfo { text })
    }

    /// The whole text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// `(key, value, value_offset)` for every line.
    pub fn entries(&self) -> impl Iterator<Item = (&'a str, &'a str, usize)> + 'a {
        let text = self.text;
        text.split('\n')
            .scan(0usize, move |off, line| {
                let start = *off;
                *off += line.len() + 1;
                Some((start, line))
            })
            .filter_map(|(start, line)| {
                let eq = line.find('=')?;
                Some((&line[..eq], &line[eq + 1..], start + eq + 1))
            })
    }

    /// The raw value of `key` (the last one if repeated) and its offset.
    pub fn get_with_offset(&self, key: &str) -> Option<(&'a str, usize)> {
        self.entries()
            .filter(|(k, _, _)| *k == key)
            .last()
            .map(|(_, v, o)| (v, o))
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.get_with_offset(key).map(|(v, _)| v)
    }

    fn parse_with<T>(
        &self,
        key: &str,
        f: impl Fn(&str) -> Option<T>,
    ) -> Option<Result<T, VmcoreInfoError>> {
        let (v, offset) = self.get_with_offset(key)?;
        Some(f(v.trim()).ok_or(VmcoreInfoError::BadValue { offset }))
    }

    /// `NUMBER(name)`: decimal (possibly negative) or `0x` hex.
    pub fn number(&self, name: &str) -> Option<Result<i64, VmcoreInfoError>> {
        let key = Key::new("NUMBER", name)?;
        self.parse_with(key.as_str(), parse_number)
    }

    /// `SYMBOL(name)`: hex without `0x`.
    pub fn symbol(&self, name: &str) -> Option<Result<u64, VmcoreInfoError>> {
        let key = Key::new("SYMBOL", name)?;
        self.parse_with(key.as_str(), parse_hex)
    }

    /// `SIZE(name)`: decimal.
    pub fn size(&self, name: &str) -> Option<Result<u64, VmcoreInfoError>> {
        let key = Key::new("SIZE", name)?;
        self.parse_with(key.as_str(), |s| s.parse().ok())
    }

    /// `OFFSET(name)`: decimal.
    pub fn offset(&self, name: &str) -> Option<Result<u64, VmcoreInfoError>> {
        let key = Key::new("OFFSET", name)?;
        self.parse_with(key.as_str(), |s| s.parse().ok())
    }

    /// `LENGTH(name)`: decimal.
    pub fn length(&self, name: &str) -> Option<Result<u64, VmcoreInfoError>> {
        let key = Key::new("LENGTH", name)?;
        self.parse_with(key.as_str(), |s| s.parse().ok())
    }

    /// `OSRELEASE`.
    pub fn osrelease(&self) -> Option<&'a str> {
        self.get("OSRELEASE")
    }

    /// `PAGESIZE`.
    pub fn page_size(&self) -> Option<Result<u64, VmcoreInfoError>> {
        self.parse_with("PAGESIZE", |s| s.parse().ok())
    }

    /// `KERNELOFFSET` (KASLR displacement, hex without `0x`).
    pub fn kerneloffset(&self) -> Option<Result<u64, VmcoreInfoError>> {
        self.parse_with("KERNELOFFSET", parse_hex)
    }

    /// `CRASHTIME` (seconds since the epoch, appended at crash time).
    pub fn crashtime(&self) -> Option<Result<i64, VmcoreInfoError>> {
        self.parse_with("CRASHTIME", |s| s.parse().ok())
    }
}

/// Parses a hex number with or without `0x`.
pub fn parse_hex(s: &str) -> Option<u64> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// Parses `NUMBER()` values: `0x` hex (as u64 bits) or signed decimal.
pub fn parse_number(s: &str) -> Option<i64> {
    if let Some(h) = s.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok().map(|v| v as i64);
    }
    s.parse::<i64>().ok()
}

/// A `PREFIX(name)` key built without allocation.
struct Key {
    buf: [u8; 96],
    len: usize,
}

impl Key {
    fn new(prefix: &str, name: &str) -> Option<Key> {
        let mut buf = [0u8; 96];
        let parts: [&[u8]; 4] = [prefix.as_bytes(), b"(", name.as_bytes(), b")"];
        let mut len = 0;
        for p in parts {
            buf.get_mut(len..len + p.len())?.copy_from_slice(p);
            len += p.len();
        }
        Some(Key { buf, len })
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"OSRELEASE=6.1.0-28-arm64\nPAGESIZE=4096\n\
SYMBOL(init_uts_ns)=ffff800009e1a6e8\nSYMBOL(_stext)=ffff800008010000\n\
NUMBER(VA_BITS)=48\nNUMBER(kimage_voffset)=0xffff7fffc7e00000\n\
NUMBER(PHYS_OFFSET)=0x40000000\nNUMBER(PG_head_mask)=-65537\nKERNELOFFSET=0\n\
CRASHTIME=1763900000\n\0\0\0";

    #[test]
    fn encodings() {
        let v = VmcoreInfo::parse(SAMPLE).unwrap();
        assert_eq!(v.osrelease(), Some("6.1.0-28-arm64"));
        assert_eq!(v.page_size(), Some(Ok(4096)));
        assert_eq!(v.symbol("_stext"), Some(Ok(0xffff_8000_0801_0000)));
        assert_eq!(v.number("VA_BITS"), Some(Ok(48)));
        assert_eq!(
            v.number("kimage_voffset"),
            Some(Ok(0xffff_7fff_c7e0_0000u64 as i64))
        );
        assert_eq!(v.number("PHYS_OFFSET"), Some(Ok(0x4000_0000)));
        assert_eq!(v.number("PG_head_mask"), Some(Ok(-65537)));
        assert_eq!(v.kerneloffset(), Some(Ok(0)));
        assert_eq!(v.crashtime(), Some(Ok(1_763_900_000)));
        assert_eq!(v.symbol("missing"), None);
    }

    #[test]
    fn bad_line_names_offset() {
        assert_eq!(
            VmcoreInfo::parse(b"A=1\nBROKEN\n").unwrap_err(),
            VmcoreInfoError::NoEquals { offset: 4 }
        );
        let v = VmcoreInfo::parse(b"A=1\nPAGESIZE=4k\n").unwrap();
        assert_eq!(
            v.page_size(),
            Some(Err(VmcoreInfoError::BadValue { offset: 13 }))
        );
    }
}
