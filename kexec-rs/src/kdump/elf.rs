//! The two ELF facts the capture-initramfs builder needs: whether an
//! executable is static (no `PT_INTERP`), and a kernel module's `.modinfo`
//! (its `depends=`). ELF64 little-endian only (arm64 and x86_64 Linux).

use crash_payload::le::{u16_at, u32_at, u64_at};

/// Why an ELF file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    /// Not ELF64 LE, or a header field out of range.
    #[error("{file}: offset {offset:#x}: {what}")]
    Bad {
        /// The file.
        file: String,
        /// Where.
        offset: usize,
        /// What was expected.
        what: &'static str,
    },
}

/// `PT_INTERP`.
pub const PT_INTERP: u32 = 3;

fn header(file: &str, b: &[u8]) -> Result<(), ElfError> {
    let bad = |offset, what| ElfError::Bad {
        file: file.to_string(),
        offset,
        what,
    };
    if b.get(..4) != Some(b"\x7fELF") {
        return Err(bad(0, "ELF magic"));
    }
    if b.get(4) != Some(&2) {
        return Err(bad(4, "ELFCLASS64"));
    }
    if b.get(5) != Some(&1) {
        return Err(bad(5, "ELFDATA2LSB"));
    }
    Ok(())
}

/// The `e_machine` of an ELF64 LE file.
pub fn machine(file: &str, b: &[u8]) -> Result<u16, ElfError> {
    header(file, b)?;
    u16_at(b, 18).ok_or(ElfError::Bad {
        file: file.to_string(),
        offset: 18,
        what: "e_machine",
    })
}

/// True when the executable has a `PT_INTERP` (needs a dynamic loader).
pub fn has_interp(file: &str, b: &[u8]) -> Result<bool, ElfError> {
    header(file, b)?;
    let bad = |offset, what| ElfError::Bad {
        file: file.to_string(),
        offset,
        what,
    };
    let phoff = u64_at(b, 32)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or(bad(32, "e_phoff"))?;
    let phentsize = usize::from(u16_at(b, 54).ok_or(bad(54, "e_phentsize"))?);
    let phnum = usize::from(u16_at(b, 56).ok_or(bad(56, "e_phnum"))?);
    if phnum > 0 && phentsize < 56 {
        return Err(bad(54, "e_phentsize >= 56"));
    }
    for i in 0..phnum {
        let o = i
            .checked_mul(phentsize)
            .and_then(|x| x.checked_add(phoff))
            .ok_or(bad(32, "program headers inside the file"))?;
        if o.checked_add(56).is_none_or(|end| end > b.len()) {
            return Err(bad(o, "a program header inside the file"));
        }
        let t = u32_at(b, o).ok_or(bad(o, "a program header inside the file"))?;
        if t == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The bytes of the section named `name`, if any.
pub fn section<'a>(file: &str, b: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, ElfError> {
    header(file, b)?;
    let bad = |offset, what| ElfError::Bad {
        file: file.to_string(),
        offset,
        what,
    };
    let to = |v: u64, o, what| usize::try_from(v).map_err(|_| bad(o, what));
    let shoff = to(u64_at(b, 40).ok_or(bad(40, "e_shoff"))?, 40, "e_shoff")?;
    let shentsize = usize::from(u16_at(b, 58).ok_or(bad(58, "e_shentsize"))?);
    let shnum = usize::from(u16_at(b, 60).ok_or(bad(60, "e_shnum"))?);
    let shstrndx = usize::from(u16_at(b, 62).ok_or(bad(62, "e_shstrndx"))?);
    if shnum == 0 {
        return Ok(None);
    }
    if shentsize < 64 {
        return Err(bad(58, "e_shentsize >= 64"));
    }
    let sh = |i: usize| -> Result<(u32, usize, usize), ElfError> {
        let o = i
            .checked_mul(shentsize)
            .and_then(|x| x.checked_add(shoff))
            .ok_or(bad(40, "section headers inside the file"))?;
        let name = u32_at(b, o).ok_or(bad(o, "a section header inside the file"))?;
        let off = to(
            u64_at(b, o + 24).ok_or(bad(o + 24, "sh_offset"))?,
            o + 24,
            "sh_offset",
        )?;
        let size = to(
            u64_at(b, o + 32).ok_or(bad(o + 32, "sh_size"))?,
            o + 32,
            "sh_size",
        )?;
        Ok((name, off, size))
    };
    let slice = |off: usize, size: usize, o| {
        off.checked_add(size)
            .and_then(|end| b.get(off..end))
            .ok_or(bad(o, "section data inside the file"))
    };
    let (_, stroff, strsize) = sh(shstrndx)?;
    let strtab = slice(stroff, strsize, shoff)?;
    for i in 0..shnum {
        let (n, off, size) = sh(i)?;
        let n = usize::try_from(n).map_err(|_| bad(shoff, "sh_name"))?;
        let Some(rest) = strtab.get(n..) else {
            return Err(bad(shoff, "sh_name inside .shstrtab"));
        };
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        if &rest[..end] == name.as_bytes() {
            return Ok(Some(slice(off, size, shoff)?));
        }
    }
    Ok(None)
}

/// A module's `depends=` list from its `.modinfo` (empty if none).
pub fn modinfo_depends(file: &str, ko: &[u8]) -> Result<Vec<String>, ElfError> {
    let Some(info) = section(file, ko, ".modinfo")? else {
        return Err(ElfError::Bad {
            file: file.to_string(),
            offset: 0,
            what: "a .modinfo section (a kernel module)",
        });
    };
    Ok(info
        .split(|&c| c == 0)
        .filter_map(|kv| kv.strip_prefix(b"depends="))
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An ELF64 LE file with one program header of type `pt` and a
    /// `.modinfo` section holding `modinfo`.
    pub(crate) fn build(pt: u32, modinfo: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&183u16.to_le_bytes());
        // One program header at 64.
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&pt.to_le_bytes());
        b.extend(ph);
        // Section data: shstrtab then modinfo.
        let shstr = b"\0.shstrtab\0.modinfo\0";
        let str_off = b.len();
        b.extend_from_slice(shstr);
        let mi_off = b.len();
        b.extend_from_slice(modinfo);
        while !b.len().is_multiple_of(8) {
            b.push(0);
        }
        let shoff = b.len();
        b[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
        b[58..60].copy_from_slice(&64u16.to_le_bytes());
        b[60..62].copy_from_slice(&3u16.to_le_bytes());
        b[62..64].copy_from_slice(&1u16.to_le_bytes());
        let sh = |name: u32, off: usize, size: usize| {
            let mut s = vec![0u8; 64];
            s[..4].copy_from_slice(&name.to_le_bytes());
            s[24..32].copy_from_slice(&(off as u64).to_le_bytes());
            s[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            s
        };
        b.extend(sh(0, 0, 0));
        b.extend(sh(1, str_off, shstr.len()));
        b.extend(sh(11, mi_off, modinfo.len()));
        b
    }

    #[test]
    fn interp_and_modinfo() {
        let ko = build(1, b"license=GPL\0depends=9pnet,netfs,fscache\0name=9p\0");
        assert!(!has_interp("9p.ko", &ko).unwrap());
        assert_eq!(
            modinfo_depends("9p.ko", &ko).unwrap(),
            vec!["9pnet", "netfs", "fscache"]
        );
        let none = build(1, b"depends=\0name=netfs\0");
        assert!(modinfo_depends("netfs.ko", &none).unwrap().is_empty());
        assert!(has_interp("a", &build(PT_INTERP, b"")).unwrap());
    }

    #[test]
    fn bad_files_name_the_offset() {
        let mut ko = build(1, b"");
        ko[5] = 2;
        assert_eq!(
            has_interp("x", &ko),
            Err(ElfError::Bad {
                file: "x".into(),
                offset: 5,
                what: "ELFDATA2LSB"
            })
        );
        let mut ko = build(1, b"");
        ko.truncate(100);
        assert_eq!(
            has_interp("x", &ko),
            Err(ElfError::Bad {
                file: "x".into(),
                offset: 64,
                what: "a program header inside the file"
            })
        );
        assert_eq!(
            machine("x", b"#!/bin/sh\n"),
            Err(ElfError::Bad {
                file: "x".into(),
                offset: 0,
                what: "ELF magic"
            })
        );
    }
}
