//! A small flattened-device-tree (DTB) reader and editor.
//!
//! Parsing turns the blob into an owned tree; editing changes the tree;
//! [`Fdt::to_bytes`] rebuilds a compact version-17 blob (header, memory
//! reservation map, structure block, strings block — Devicetree
//! Specification v0.4, chapter 5). Big-endian throughout. `FDT_NOP` tokens
//! (the kernel leaves them where it deleted `rng-seed`) are skipped.

use serde::Serialize;

/// `0xd00dfeed`.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_SIZE: usize = 40;
/// Deepest nesting believed (bounds recursion on hostile input).
pub const MAX_DEPTH: usize = 64;

/// Why a blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FdtError {
    /// The first word is not `0xd00dfeed`.
    #[error("DTB at offset 0: magic {found:#010x}, expected 0xd00dfeed")]
    BadMagic {
        /// What was there.
        found: u32,
    },
    /// The blob ends before something it describes.
    #[error("DTB at offset {offset:#x}: truncated {what}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where.
        offset: usize,
    },
    /// A version this reader does not handle.
    #[error("DTB: last_comp_version {last_comp} above 17 (version {version})")]
    Version {
        /// `version`.
        version: u32,
        /// `last_comp_version`.
        last_comp: u32,
    },
    /// An unknown structure token, or one out of place.
    #[error("DTB structure block at offset {offset:#x}: unexpected token {token:#x}")]
    Token {
        /// Offset in the blob.
        offset: usize,
        /// The token.
        token: u32,
    },
    /// A property name offset outside the strings block.
    #[error(
        "DTB at offset {offset:#x}: property name offset {nameoff:#x} outside the strings block"
    )]
    StringOffset {
        /// Offset of the property in the blob.
        offset: usize,
        /// Its `nameoff`.
        nameoff: u32,
    },
    /// Nodes nested deeper than [`MAX_DEPTH`].
    #[error("DTB at offset {offset:#x}: nodes nested deeper than {MAX_DEPTH}")]
    TooDeep {
        /// Where.
        offset: usize,
    },
    /// A node or property name that is not UTF-8.
    #[error("DTB at offset {offset:#x}: name is not UTF-8")]
    Name {
        /// Where.
        offset: usize,
    },
}

/// One property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prop {
    /// Name.
    pub name: String,
    /// Raw value bytes.
    pub value: Vec<u8>,
}

/// One node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Unit name (`cpu@0`; empty for the root).
    pub name: String,
    /// Properties in blob order.
    pub props: Vec<Prop>,
    /// Children in blob order.
    pub children: Vec<Node>,
}

impl Node {
    /// A property's value.
    pub fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_slice())
    }

    /// A property as one big-endian `u32`.
    pub fn prop_u32(&self, name: &str) -> Option<u32> {
        let v = self.prop(name)?;
        Some(u32::from_be_bytes(v.try_into().ok()?))
    }

    /// A property as a string (without its NUL).
    pub fn prop_str(&self, name: &str) -> Option<&str> {
        let v = self.prop(name)?;
        std::str::from_utf8(v.strip_suffix(&[0]).unwrap_or(v)).ok()
    }

    /// Sets (replaces or appends) a property.
    pub fn set_prop(&mut self, name: &str, value: Vec<u8>) {
        match self.props.iter_mut().find(|p| p.name == name) {
            Some(p) => p.value = value,
            None => self.props.push(Prop {
                name: name.to_string(),
                value,
            }),
        }
    }

    /// Removes a property; true when it existed.
    pub fn remove_prop(&mut self, name: &str) -> bool {
        let n = self.props.len();
        self.props.retain(|p| p.name != name);
        n != self.props.len()
    }

    /// A direct child by unit name.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// A direct child by unit name, created empty when missing.
    pub fn child_mut_or_create(&mut self, name: &str) -> &mut Node {
        let i = match self.children.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                self.children.push(Node {
                    name: name.to_string(),
                    ..Node::default()
                });
                self.children.len() - 1
            }
        };
        &mut self.children[i]
    }
}

/// A parsed device tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fdt {
    /// `boot_cpuid_phys` from the header.
    pub boot_cpuid_phys: u32,
    /// Memory reservation map entries `(address, size)`.
    pub reserve: Vec<(u64, u64)>,
    /// The root node.
    pub root: Node,
}

fn be32(b: &[u8], off: usize, what: &'static str) -> Result<u32, FdtError> {
    let s = b
        .get(
            off..off
                .checked_add(4)
                .ok_or(FdtError::Truncated { what, offset: off })?,
        )
        .ok_or(FdtError::Truncated { what, offset: off })?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], off: usize, what: &'static str) -> Result<u64, FdtError> {
    let hi = be32(b, off, what)?;
    let lo = be32(b, off + 4, what)?;
    Ok((u64::from(hi) << 32) | u64::from(lo))
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

impl Fdt {
    /// Parses a blob. Bytes past `totalsize` are ignored.
    pub fn parse(blob: &[u8]) -> Result<Fdt, FdtError> {
        let magic = be32(blob, 0, "header")?;
        if magic != FDT_MAGIC {
            return Err(FdtError::BadMagic { found: magic });
        }
        let h = |i: usize| be32(blob, i * 4, "header");
        let totalsize = h(1)? as usize;
        let off_struct = h(2)? as usize;
        let off_strings = h(3)? as usize;
        let off_rsv = h(4)? as usize;
        let version = h(5)?;
        let last_comp = h(6)?;
        let boot_cpuid_phys = h(7)?;
        let size_strings = h(8)? as usize;
        if last_comp > 17 {
            return Err(FdtError::Version { version, last_comp });
        }
        let blob = blob.get(..totalsize).ok_or(FdtError::Truncated {
            what: "blob (totalsize)",
            offset: blob.len(),
        })?;
        let strings = blob
            .get(off_strings..off_strings.saturating_add(size_strings))
            .ok_or(FdtError::Truncated {
                what: "strings block",
                offset: off_strings,
            })?;

        let mut reserve = Vec::new();
        let mut o = off_rsv;
        loop {
            let a = be64(blob, o, "memory reservation map")?;
            let s = be64(blob, o + 8, "memory reservation map")?;
            if a == 0 && s == 0 {
                break;
            }
            reserve.push((a, s));
            o += 16;
        }

        let mut pos = off_struct;
        let mut stack: Vec<Node> = Vec::new();
        let mut root: Option<Node> = None;
        loop {
            let tok_off = pos;
            let tok = be32(blob, pos, "structure token")?;
            pos += 4;
            match tok {
                FDT_BEGIN_NODE => {
                    if root.is_some() {
                        return Err(FdtError::Token {
                            offset: tok_off,
                            token: tok,
                        });
                    }
                    let rest = blob.get(pos..).ok_or(FdtError::Truncated {
                        what: "node name",
                        offset: pos,
                    })?;
                    let nul = rest
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(FdtError::Truncated {
                            what: "node name",
                            offset: pos,
                        })?;
                    let name = std::str::from_utf8(&rest[..nul])
                        .map_err(|_| FdtError::Name { offset: pos })?;
                    if stack.len() >= MAX_DEPTH {
                        return Err(FdtError::TooDeep { offset: tok_off });
                    }
                    stack.push(Node {
                        name: name.to_string(),
                        ..Node::default()
                    });
                    pos = align4(pos + nul + 1).ok_or(FdtError::Truncated {
                        what: "node name",
                        offset: pos,
                    })?;
                }
                FDT_END_NODE => {
                    let n = stack.pop().ok_or(FdtError::Token {
                        offset: tok_off,
                        token: tok,
                    })?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(n),
                        None => root = Some(n),
                    }
                }
                FDT_PROP => {
                    let len = be32(blob, pos, "property header")? as usize;
                    let nameoff = be32(blob, pos + 4, "property header")?;
                    let v0 = pos + 8;
                    let value =
                        blob.get(v0..v0.saturating_add(len))
                            .ok_or(FdtError::Truncated {
                                what: "property value",
                                offset: v0,
                            })?;
                    let name_bytes = strings
                        .get(nameoff as usize..)
                        .and_then(|s| s.iter().position(|&b| b == 0).map(|n| &s[..n]))
                        .ok_or(FdtError::StringOffset {
                            offset: tok_off,
                            nameoff,
                        })?;
                    let name = std::str::from_utf8(name_bytes)
                        .map_err(|_| FdtError::Name { offset: tok_off })?;
                    let node = stack.last_mut().ok_or(FdtError::Token {
                        offset: tok_off,
                        token: tok,
                    })?;
                    node.props.push(Prop {
                        name: name.to_string(),
                        value: value.to_vec(),
                    });
                    pos = align4(v0 + len).ok_or(FdtError::Truncated {
                        what: "property value",
                        offset: v0,
                    })?;
                }
                FDT_NOP => {}
                FDT_END => {
                    if !stack.is_empty() {
                        return Err(FdtError::Token {
                            offset: tok_off,
                            token: tok,
                        });
                    }
                    break;
                }
                _ => {
                    return Err(FdtError::Token {
                        offset: tok_off,
                        token: tok,
                    })
                }
            }
        }
        let root = root.ok_or(FdtError::Truncated {
            what: "root node",
            offset: off_struct,
        })?;
        Ok(Fdt {
            boot_cpuid_phys,
            reserve,
            root,
        })
    }

    /// A node by absolute path (`/`, `/chosen`, `/cpus/cpu@1`).
    pub fn node(&self, path: &str) -> Option<&Node> {
        let mut n = &self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            n = n.child(part)?;
        }
        Some(n)
    }

    /// A node by absolute path, creating missing nodes.
    pub fn node_mut_or_create(&mut self, path: &str) -> &mut Node {
        let mut n = &mut self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            n = n.child_mut_or_create(part);
        }
        n
    }

    /// Root `#address-cells` and `#size-cells` (defaults 2 and 1 per the spec).
    pub fn root_cells(&self) -> (u32, u32) {
        (
            self.root.prop_u32("#address-cells").unwrap_or(2),
            self.root.prop_u32("#size-cells").unwrap_or(1),
        )
    }

    /// Rebuilds a compact version-17 blob.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut strings: Vec<u8> = Vec::new();
        let mut st: Vec<u8> = Vec::new();
        fn put(v: &mut Vec<u8>, x: u32) {
            v.extend_from_slice(&x.to_be_bytes());
        }
        fn pad(v: &mut Vec<u8>) {
            while v.len() & 3 != 0 {
                v.push(0);
            }
        }
        fn name_off(strings: &mut Vec<u8>, name: &str) -> u32 {
            // Reuse an existing identical string (exact match, NUL-terminated).
            let mut i = 0;
            while i < strings.len() {
                let end = strings[i..]
                    .iter()
                    .position(|&b| b == 0)
                    .map_or(strings.len(), |n| i + n);
                if &strings[i..end] == name.as_bytes() {
                    return i as u32;
                }
                i = end + 1;
            }
            let off = strings.len() as u32;
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            off
        }
        fn emit(n: &Node, st: &mut Vec<u8>, strings: &mut Vec<u8>) {
            put(st, FDT_BEGIN_NODE);
            st.extend_from_slice(n.name.as_bytes());
            st.push(0);
            pad(st);
            for p in &n.props {
                put(st, FDT_PROP);
                put(st, p.value.len() as u32);
                let off = name_off(strings, &p.name);
                put(st, off);
                st.extend_from_slice(&p.value);
                pad(st);
            }
            for c in &n.children {
                emit(c, st, strings);
            }
            put(st, FDT_END_NODE);
        }
        emit(&self.root, &mut st, &mut strings);
        put(&mut st, FDT_END);

        let off_rsv = HEADER_SIZE; // 40, already 8-aligned
        let rsv_len = (self.reserve.len() + 1) * 16;
        let off_struct = off_rsv + rsv_len;
        let off_strings = off_struct + st.len();
        let total = off_strings + strings.len();
        let mut out = Vec::with_capacity(total);
        for w in [
            FDT_MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsv as u32,
            17,
            16,
            self.boot_cpuid_phys,
            strings.len() as u32,
            st.len() as u32,
        ] {
            put(&mut out, w);
        }
        for &(a, s) in &self.reserve {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&s.to_be_bytes());
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&st);
        out.extend_from_slice(&strings);
        out
    }
}

/// Encodes `values` as `cells`-wide big-endian numbers; `None` when a value
/// does not fit (for example an address above 4 GiB in one cell).
pub fn encode_cells(values: &[u64], cells: u32) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for &v in values {
        match cells {
            1 => out.extend_from_slice(&u32::try_from(v).ok()?.to_be_bytes()),
            2 => out.extend_from_slice(&v.to_be_bytes()),
            _ => return None,
        }
    }
    Some(out)
}

/// Decodes big-endian cells into one number (at most two cells).
pub fn decode_cells(b: &[u8]) -> Option<u64> {
    match b.len() {
        4 => Some(u64::from(u32::from_be_bytes(b.try_into().ok()?))),
        8 => Some(u64::from_be_bytes(b.try_into().ok()?)),
        _ => None,
    }
}

/// A string property value (with its NUL).
pub fn str_value(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Fdt {
        let mut f = Fdt {
            boot_cpuid_phys: 0,
            reserve: vec![(0x4800_0000, 0x1000)],
            root: Node::default(),
        };
        f.root
            .set_prop("#address-cells", 2u32.to_be_bytes().to_vec());
        f.root.set_prop("#size-cells", 2u32.to_be_bytes().to_vec());
        f.root.set_prop("compatible", str_value("linux,dummy-virt"));
        let cpus = f.node_mut_or_create("/cpus");
        cpus.set_prop("#address-cells", 1u32.to_be_bytes().to_vec());
        cpus.set_prop("#size-cells", 0u32.to_be_bytes().to_vec());
        for i in 0..2u32 {
            let c = f.node_mut_or_create(&format!("/cpus/cpu@{i}"));
            c.set_prop("device_type", str_value("cpu"));
            c.set_prop("reg", i.to_be_bytes().to_vec());
        }
        f.node_mut_or_create("/chosen")
            .set_prop("bootargs", str_value("console=ttyAMA0"));
        f
    }

    #[test]
    fn round_trip() {
        let f = sample();
        let b = f.to_bytes();
        assert_eq!(&b[0..4], &FDT_MAGIC.to_be_bytes());
        assert_eq!(
            u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize,
            b.len()
        );
        let g = Fdt::parse(&b).unwrap();
        assert_eq!(g, f);
        assert_eq!(g.node("/cpus/cpu@1").unwrap().prop_u32("reg"), Some(1));
        assert_eq!(
            g.node("/chosen").unwrap().prop_str("bootargs"),
            Some("console=ttyAMA0")
        );
        assert_eq!(g.root_cells(), (2, 2));
        // Shared names are stored once.
        let strings = &b[u32::from_be_bytes(b[12..16].try_into().unwrap()) as usize..];
        assert_eq!(strings.windows(4).filter(|w| w == b"reg\0").count(), 1);
    }

    #[test]
    fn nop_tokens_and_padding_are_accepted() {
        let b = sample().to_bytes();
        // Insert an FDT_NOP right after the root's BEGIN_NODE + name (8 bytes),
        // and pad the blob past totalsize as firmware does.
        let off_struct = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
        let mut c = b[..off_struct + 8].to_vec();
        c.extend_from_slice(&FDT_NOP.to_be_bytes());
        c.extend_from_slice(&b[off_struct + 8..]);
        let total = c.len() as u32;
        let off_strings = u32::from_be_bytes(c[12..16].try_into().unwrap()) + 4;
        c[4..8].copy_from_slice(&total.to_be_bytes());
        c[12..16].copy_from_slice(&off_strings.to_be_bytes());
        c.extend_from_slice(&[0u8; 4096]);
        assert_eq!(Fdt::parse(&c).unwrap(), sample());
    }

    #[test]
    fn bad_blobs_are_named() {
        let b = sample().to_bytes();
        let mut m = b.clone();
        m[0] = 0;
        assert_eq!(
            Fdt::parse(&m),
            Err(FdtError::BadMagic { found: 0x000d_feed })
        );
        assert_eq!(
            Fdt::parse(&b[..100]),
            Err(FdtError::Truncated {
                what: "blob (totalsize)",
                offset: 100
            })
        );
        let off_struct = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
        let mut t = b.clone();
        t[off_struct + 3] = 7; // token 1 -> 7
        assert_eq!(
            Fdt::parse(&t),
            Err(FdtError::Token {
                offset: off_struct,
                token: 7
            })
        );
    }

    #[test]
    fn cells() {
        assert_eq!(encode_cells(&[0x1_0000_0000], 1), None);
        assert_eq!(
            encode_cells(&[0xafe0_0000, 0x1000_0000], 2).unwrap().len(),
            16
        );
        assert_eq!(decode_cells(&[0, 0, 0, 1, 0, 0, 0, 2]), Some(0x1_0000_0002));
    }
}
