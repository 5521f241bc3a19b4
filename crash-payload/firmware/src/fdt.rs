//! A flattened device tree (DTB, devicetree specification v0.4 §5) rewriter:
//! copies a DTB into a new buffer, setting properties and adding nodes on
//! the way. No allocation; the input is never modified.
//!
//! The firmware uses it to turn the DTB QEMU generates (which, with firmware
//! at EL3, has no `/psci` node and no `enable-method` on the CPUs) into the one
//! Linux boots with: `/psci`, `/firmware/sdei`, `enable-method = "psci"` on
//! every `/cpus/cpu@N`, and `/chosen` `bootargs` and `linux,initrd-*`.
//!
//! Output layout: header, memory reservation block (copied), structure block,
//! strings block (the input's, followed by any new property names); version 17.
#![forbid(unsafe_code)]

use core::fmt;

/// `fdt_header.magic`.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
const HEADER_SIZE: usize = 40;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const MAX_DEPTH: usize = 16;
const MAX_PATH: usize = 256;
/// At most this many property edits and this many added nodes per call.
pub const MAX_EDITS: usize = 32;

/// Why a DTB could not be rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// The first word is not `0xd00dfeed`.
    BadMagic(u32),
    /// A header field points outside the input, or the version is below 17.
    BadHeader {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u32,
    },
    /// The structure block ends inside a token at this offset (from the
    /// structure block's start).
    Truncated {
        /// Offset in the structure block.
        offset: usize,
    },
    /// An unknown token, or END_NODE without a node.
    BadToken {
        /// Offset in the structure block.
        offset: usize,
        /// The token.
        token: u32,
    },
    /// A property's name offset is outside the strings block.
    BadNameOffset {
        /// Offset of the property in the structure block.
        offset: usize,
        /// The name offset.
        nameoff: u32,
    },
    /// The node tree is not one root: the structure block must open with
    /// the nameless root node, hold no second top-level node, and name every
    /// other node (devicetree specification 0.4, §5.4.1 and §2.2.1).
    BadStructure {
        /// Offset of the offending token in the structure block.
        offset: usize,
        /// What is wrong there.
        what: &'static str,
    },
    /// Nodes nest deeper than 16, or a path is longer than 256 bytes.
    TooDeep,
    /// More than [`MAX_EDITS`] edits or added nodes.
    TooManyEdits,
    /// The output buffer is too small.
    NoRoom {
        /// Bytes needed at the point it ran out.
        needed: usize,
    },
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "DTB magic {m:#010x}, expected 0xd00dfeed"),
            Self::BadHeader { field, value } => {
                write!(f, "DTB header {field} = {value:#x} is invalid")
            }
            Self::Truncated { offset } => write!(f, "DTB structure block truncated at {offset:#x}"),
            Self::BadToken { offset, token } => {
                write!(f, "DTB token {token:#x} at {offset:#x} is invalid")
            }
            Self::BadNameOffset { offset, nameoff } => {
                write!(
                    f,
                    "DTB property at {offset:#x}: name offset {nameoff:#x} outside strings"
                )
            }
            Self::BadStructure { offset, what } => {
                write!(f, "DTB structure at {offset:#x}: {what}")
            }
            Self::TooDeep => f.write_str("DTB nests deeper than 16 or a path exceeds 256 bytes"),
            Self::TooManyEdits => write!(f, "more than {MAX_EDITS} DTB edits"),
            Self::NoRoom { needed } => write!(f, "DTB output needs at least {needed} bytes"),
        }
    }
}

/// A property to set. `node` is a full path (`"/chosen"`), or a parent path
/// and a name prefix ending in `*` (`"/cpus/cpu@*"`: every direct child of
/// `/cpus` whose name starts with `cpu@`). An existing property of that name
/// is replaced; otherwise it is added. `value` is stored as is (strings must
/// carry their NUL).
#[derive(Clone, Copy, Debug)]
pub struct Prop<'a> {
    /// Node path or pattern.
    pub node: &'a str,
    /// Property name.
    pub name: &'a str,
    /// Raw value.
    pub value: &'a [u8],
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A NUL-terminated string at `off` in `b`, without the NUL.
fn cstr(b: &[u8], off: usize) -> Option<&[u8]> {
    let rest = b.get(off..)?;
    let n = rest.iter().position(|&c| c == 0)?;
    Some(&rest[..n])
}

/// Whether `path` is matched by `pattern` (see [`Prop::node`]).
/// Checks a BEGIN_NODE at `offset` against the one-root rule, given how
/// deep it opens and whether a root node was already seen.
fn check_node(offset: usize, depth: usize, name: &[u8], root_seen: bool) -> Result<(), FdtError> {
    let what = match (depth, name.is_empty(), root_seen) {
        (0, false, _) => "the root node has a name",
        (0, true, true) => "a second top-level node",
        (1.., true, _) => "a node without a name",
        _ => return Ok(()),
    };
    Err(FdtError::BadStructure { offset, what })
}

/// The END token at `offset`: a root node must have been seen.
fn check_end(offset: usize, root_seen: bool) -> Result<(), FdtError> {
    if root_seen {
        Ok(())
    } else {
        Err(FdtError::BadStructure {
            offset,
            what: "no root node before FDT_END",
        })
    }
}

fn node_matches(pattern: &str, path: &[u8]) -> bool {
    let p = pattern.as_bytes();
    match p.split_last() {
        Some((b'*', prefix)) => {
            path.len() >= prefix.len()
                && &path[..prefix.len()] == prefix
                && !path[prefix.len()..].contains(&b'/')
        }
        _ => p == path,
    }
}

/// `"/a/b"` -> (`"/a"`, `"b"`); `"/a"` -> (`"/"`, `"a"`).
fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

struct Writer<'o> {
    out: &'o mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) -> Result<(), FdtError> {
        let end = self.pos + b.len();
        let dst = self
            .out
            .get_mut(self.pos..end)
            .ok_or(FdtError::NoRoom { needed: end })?;
        dst.copy_from_slice(b);
        self.pos = end;
        Ok(())
    }
    fn u32(&mut self, v: u32) -> Result<(), FdtError> {
        self.bytes(&v.to_be_bytes())
    }
    fn pad4(&mut self) -> Result<(), FdtError> {
        while self.pos & 3 != 0 {
            self.bytes(&[0])?;
        }
        Ok(())
    }
    fn put_u32_at(&mut self, off: usize, v: u32) {
        self.out[off..off + 4].copy_from_slice(&v.to_be_bytes());
    }
}

struct Editor<'a, 'o> {
    w: Writer<'o>,
    props: &'a [Prop<'a>],
    nodes: &'a [&'a str],
    /// Name offset of each prop's name in the output strings block.
    nameoff: [u32; MAX_EDITS],
    /// Bit i: `nodes[i]` exists (seen or added).
    seen: u32,
    path: [u8; MAX_PATH],
    path_len: usize,
}

impl Editor<'_, '_> {
    fn cur_path(&self) -> &[u8] {
        if self.path_len == 0 {
            b"/"
        } else {
            &self.path[..self.path_len]
        }
    }

    fn pending_for_current(&self) -> u32 {
        let mut m = 0;
        for (i, p) in self.props.iter().enumerate() {
            if node_matches(p.node, self.cur_path()) {
                m |= 1 << i;
            }
        }
        m
    }

    fn write_prop(&mut self, i: usize) -> Result<(), FdtError> {
        let p = self.props[i];
        self.w.u32(FDT_PROP)?;
        self.w.u32(p.value.len() as u32)?;
        self.w.u32(self.nameoff[i])?;
        self.w.bytes(p.value)?;
        self.w.pad4()
    }

    fn flush(&mut self, pending: &mut u32) -> Result<(), FdtError> {
        for i in 0..self.props.len() {
            if *pending & (1 << i) != 0 {
                self.write_prop(i)?;
            }
        }
        *pending = 0;
        Ok(())
    }

    /// Adds every listed node whose parent is `parent` and that does not exist yet.
    fn add_missing_children(&mut self, parent: &[u8]) -> Result<(), FdtError> {
        for i in 0..self.nodes.len() {
            let n = self.nodes[i];
            let (p, name) = split_parent(n);
            if self.seen & (1 << i) != 0 || p.as_bytes() != parent {
                continue;
            }
            self.seen |= 1 << i;
            self.w.u32(FDT_BEGIN_NODE)?;
            self.w.bytes(name.as_bytes())?;
            self.w.bytes(&[0])?;
            self.w.pad4()?;
            for j in 0..self.props.len() {
                if self.props[j].node == n {
                    self.write_prop(j)?;
                }
            }
            self.add_missing_children(n.as_bytes())?;
            self.w.u32(FDT_END_NODE)?;
        }
        Ok(())
    }
}

/// Rewrites `input` into `out`, setting `props` and creating `nodes` (full
/// paths, parents before children) where missing. Returns the output size
/// (also its `totalsize`).
pub fn edit(
    input: &[u8],
    nodes: &[&str],
    props: &[Prop<'_>],
    out: &mut [u8],
) -> Result<usize, FdtError> {
    if props.len() > MAX_EDITS || nodes.len() > MAX_EDITS {
        return Err(FdtError::TooManyEdits);
    }
    let magic = be32(input, 0).ok_or(FdtError::BadMagic(0))?;
    if magic != FDT_MAGIC {
        return Err(FdtError::BadMagic(magic));
    }
    let hdr = |i: usize| be32(input, i * 4).unwrap_or(0);
    let (off_struct, off_strings, off_rsv) = (hdr(2) as usize, hdr(3) as usize, hdr(4) as usize);
    let (version, boot_cpuid) = (hdr(5), hdr(7));
    let (size_strings, size_struct) = (hdr(8) as usize, hdr(9) as usize);
    if version < 17 {
        return Err(FdtError::BadHeader {
            field: "version",
            value: version,
        });
    }
    let structs = input
        .get(off_struct..off_struct.saturating_add(size_struct))
        .ok_or(FdtError::BadHeader {
            field: "off_dt_struct",
            value: off_struct as u32,
        })?;
    let strings = input
        .get(off_strings..off_strings.saturating_add(size_strings))
        .ok_or(FdtError::BadHeader {
            field: "off_dt_strings",
            value: off_strings as u32,
        })?;
    if off_rsv % 8 != 0 || off_rsv >= input.len() {
        return Err(FdtError::BadHeader {
            field: "off_mem_rsvmap",
            value: off_rsv as u32,
        });
    }

    // Name offsets: existing names are reused (any NUL-terminated match,
    // suffixes included); new ones are appended after the input's strings.
    let mut nameoff = [0u32; MAX_EDITS];
    let mut extra_len = 0usize;
    for (i, p) in props.iter().enumerate() {
        let name = p.name.as_bytes();
        let existing = (0..strings.len())
            .find(|&o| strings[o..].starts_with(name) && strings.get(o + name.len()) == Some(&0));
        let earlier = (0..i).find(|&j| props[j].name == p.name);
        nameoff[i] = match (existing, earlier) {
            (Some(o), _) => o as u32,
            (None, Some(j)) => nameoff[j],
            (None, None) => {
                let o = size_strings + extra_len;
                extra_len += name.len() + 1;
                o as u32
            }
        };
    }

    let mut ed = Editor {
        w: Writer { out, pos: 0 },
        props,
        nodes,
        nameoff,
        seen: 0,
        path: [0; MAX_PATH],
        path_len: 0,
    };
    ed.w.bytes(&[0; HEADER_SIZE])?;

    // Memory reservation block: (address, size) pairs up to an all-zero one.
    let rsv_out = ed.w.pos;
    let mut o = off_rsv;
    loop {
        let e = input.get(o..o + 16).ok_or(FdtError::BadHeader {
            field: "off_mem_rsvmap",
            value: off_rsv as u32,
        })?;
        ed.w.bytes(e)?;
        o += 16;
        if e.iter().all(|&b| b == 0) {
            break;
        }
    }

    // Structure block.
    let struct_out = ed.w.pos;
    let mut stack = [0usize; MAX_DEPTH];
    let mut depth = 0usize;
    let mut pending = 0u32;
    let mut pos = 0usize;
    let mut root_seen = false;
    loop {
        let tok_at = pos;
        let tok = be32(structs, pos).ok_or(FdtError::Truncated { offset: pos })?;
        pos += 4;
        match tok {
            FDT_BEGIN_NODE => {
                let name = cstr(structs, pos).ok_or(FdtError::Truncated { offset: pos })?;
                check_node(tok_at, depth, name, root_seen)?;
                root_seen = true;
                pos = align4(pos + name.len() + 1);
                ed.flush(&mut pending)?;
                if depth == MAX_DEPTH {
                    return Err(FdtError::TooDeep);
                }
                stack[depth] = ed.path_len;
                depth += 1;
                if depth > 1 {
                    let end = ed.path_len + 1 + name.len();
                    if end > MAX_PATH {
                        return Err(FdtError::TooDeep);
                    }
                    ed.path[ed.path_len] = b'/';
                    ed.path[ed.path_len + 1..end].copy_from_slice(name);
                    ed.path_len = end;
                }
                for (i, n) in nodes.iter().enumerate() {
                    if n.as_bytes() == ed.cur_path() {
                        ed.seen |= 1 << i;
                    }
                }
                pending = ed.pending_for_current();
                ed.w.u32(FDT_BEGIN_NODE)?;
                ed.w.bytes(name)?;
                ed.w.bytes(&[0])?;
                ed.w.pad4()?;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(FdtError::BadToken {
                        offset: tok_at,
                        token: tok,
                    });
                }
                ed.flush(&mut pending)?;
                let mut here = [0u8; MAX_PATH];
                let n = ed.cur_path().len();
                here[..n].copy_from_slice(ed.cur_path());
                ed.add_missing_children(&here[..n])?;
                ed.w.u32(FDT_END_NODE)?;
                depth -= 1;
                ed.path_len = stack[depth];
            }
            FDT_PROP => {
                let len = be32(structs, pos).ok_or(FdtError::Truncated { offset: pos })? as usize;
                let noff = be32(structs, pos + 4).ok_or(FdtError::Truncated { offset: pos })?;
                let vstart = pos + 8;
                let value = structs
                    .get(vstart..vstart.saturating_add(len))
                    .ok_or(FdtError::Truncated { offset: vstart })?;
                pos = align4(vstart + len);
                let name = cstr(strings, noff as usize).ok_or(FdtError::BadNameOffset {
                    offset: tok_at,
                    nameoff: noff,
                })?;
                let replace = (0..props.len())
                    .find(|&i| pending & (1 << i) != 0 && props[i].name.as_bytes() == name);
                match replace {
                    Some(i) => {
                        pending &= !(1 << i);
                        ed.write_prop(i)?;
                    }
                    None => {
                        ed.w.u32(FDT_PROP)?;
                        ed.w.u32(len as u32)?;
                        ed.w.u32(noff)?;
                        ed.w.bytes(value)?;
                        ed.w.pad4()?;
                    }
                }
            }
            FDT_NOP => {}
            FDT_END => {
                if depth != 0 {
                    return Err(FdtError::BadToken {
                        offset: tok_at,
                        token: tok,
                    });
                }
                check_end(tok_at, root_seen)?;
                ed.w.u32(FDT_END)?;
                break;
            }
            _ => {
                return Err(FdtError::BadToken {
                    offset: tok_at,
                    token: tok,
                })
            }
        }
    }
    let struct_size = ed.w.pos - struct_out;

    // Strings block: the input's, then the new names in first-use order.
    let strings_out = ed.w.pos;
    ed.w.bytes(strings)?;
    for (i, p) in props.iter().enumerate() {
        if ed.nameoff[i] as usize >= size_strings && (0..i).all(|j| props[j].name != p.name) {
            ed.w.bytes(p.name.as_bytes())?;
            ed.w.bytes(&[0])?;
        }
    }
    let total = ed.w.pos;
    let fields = [
        FDT_MAGIC,
        total as u32,
        struct_out as u32,
        strings_out as u32,
        rsv_out as u32,
        17,
        16,
        boot_cpuid,
        (total - strings_out) as u32,
        struct_size as u32,
    ];
    for (i, v) in fields.iter().enumerate() {
        ed.w.put_u32_at(i * 4, *v);
    }
    Ok(total)
}

/// Walks a DTB and calls `f(path, name, value)` for every property (for
/// checks and tests; reuses [`edit`]'s parsing rules).
pub fn for_each_prop(dtb: &[u8], mut f: impl FnMut(&[u8], &[u8], &[u8])) -> Result<(), FdtError> {
    let hdr = |i: usize| be32(dtb, i * 4).unwrap_or(0);
    if hdr(0) != FDT_MAGIC {
        return Err(FdtError::BadMagic(hdr(0)));
    }
    let (os, ost, ss, sst) = (
        hdr(2) as usize,
        hdr(3) as usize,
        hdr(9) as usize,
        hdr(8) as usize,
    );
    let structs = dtb.get(os..os + ss).ok_or(FdtError::BadHeader {
        field: "off_dt_struct",
        value: os as u32,
    })?;
    let strings = dtb.get(ost..ost + sst).ok_or(FdtError::BadHeader {
        field: "off_dt_strings",
        value: ost as u32,
    })?;
    let mut path = [0u8; MAX_PATH];
    let mut stack = [0usize; MAX_DEPTH];
    let (mut plen, mut depth, mut pos) = (0usize, 0usize, 0usize);
    let mut root_seen = false;
    loop {
        let at = pos;
        let tok = be32(structs, pos).ok_or(FdtError::Truncated { offset: pos })?;
        pos += 4;
        match tok {
            FDT_BEGIN_NODE => {
                let name = cstr(structs, pos).ok_or(FdtError::Truncated { offset: pos })?;
                check_node(at, depth, name, root_seen)?;
                root_seen = true;
                pos = align4(pos + name.len() + 1);
                if depth == MAX_DEPTH || plen + 1 + name.len() > MAX_PATH {
                    return Err(FdtError::TooDeep);
                }
                stack[depth] = plen;
                depth += 1;
                if depth > 1 {
                    path[plen] = b'/';
                    path[plen + 1..plen + 1 + name.len()].copy_from_slice(name);
                    plen += 1 + name.len();
                }
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(FdtError::BadToken {
                        offset: at,
                        token: tok,
                    });
                }
                depth -= 1;
                plen = stack[depth];
            }
            FDT_PROP => {
                let len = be32(structs, pos).ok_or(FdtError::Truncated { offset: pos })? as usize;
                let noff = be32(structs, pos + 4).ok_or(FdtError::Truncated { offset: pos })?;
                let v = structs
                    .get(pos + 8..pos + 8 + len)
                    .ok_or(FdtError::Truncated { offset: pos })?;
                let name = cstr(strings, noff as usize).ok_or(FdtError::BadNameOffset {
                    offset: at,
                    nameoff: noff,
                })?;
                let p: &[u8] = if plen == 0 { b"/" } else { &path[..plen] };
                f(p, name, v);
                pos = align4(pos + 8 + len);
            }
            FDT_NOP => {}
            FDT_END => return check_end(at, root_seen),
            _ => {
                return Err(FdtError::BadToken {
                    offset: at,
                    token: tok,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    /// A tiny DTB builder: nodes as (depth change, name) and properties.
    enum T<'a> {
        Begin(&'a str),
        Prop(&'a str, &'a [u8]),
        End,
    }

    fn build(tokens: &[T<'_>]) -> Vec<u8> {
        let mut st = Vec::new();
        let mut strings: Vec<u8> = Vec::new();
        for t in tokens {
            match t {
                T::Begin(n) => {
                    st.extend(FDT_BEGIN_NODE.to_be_bytes());
                    st.extend(n.as_bytes());
                    st.push(0);
                }
                T::Prop(n, v) => {
                    let off = match strings
                        .windows(n.len() + 1)
                        .position(|w| &w[..n.len()] == n.as_bytes() && w[n.len()] == 0)
                    {
                        Some(o) => o,
                        None => {
                            let o = strings.len();
                            strings.extend(n.as_bytes());
                            strings.push(0);
                            o
                        }
                    };
                    st.extend(FDT_PROP.to_be_bytes());
                    st.extend((v.len() as u32).to_be_bytes());
                    st.extend((off as u32).to_be_bytes());
                    st.extend(*v);
                }
                T::End => st.extend(FDT_END_NODE.to_be_bytes()),
            }
            while st.len() % 4 != 0 {
                st.push(0);
            }
        }
        st.extend(FDT_END.to_be_bytes());
        let rsv = [0u8; 16];
        let off_rsv = 40;
        let off_st = off_rsv + rsv.len();
        let off_str = off_st + st.len();
        let total = off_str + strings.len();
        let mut out = Vec::new();
        for v in [
            FDT_MAGIC,
            total as u32,
            off_st as u32,
            off_str as u32,
            off_rsv as u32,
            17,
            16,
            0,
            strings.len() as u32,
            st.len() as u32,
        ] {
            out.extend(v.to_be_bytes());
        }
        out.extend(rsv);
        out.extend(st);
        out.extend(strings);
        out
    }

    fn dump(dtb: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        for_each_prop(dtb, |p, n, val| {
            v.push(format!(
                "{}:{}={}",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(n),
                val.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ))
        })
        .unwrap();
        v
    }

    fn virt_like() -> Vec<u8> {
        build(&[
            T::Begin(""),
            T::Prop("compatible", b"linux,dummy-virt\0"),
            T::Begin("cpus"),
            T::Prop("#size-cells", &[0, 0, 0, 0]),
            T::Begin("cpu@0"),
            T::Prop("reg", &[0, 0, 0, 0]),
            T::End,
            T::Begin("cpu@1"),
            T::Prop("reg", &[0, 0, 0, 1]),
            T::End,
            T::Begin("cpu-map"),
            T::End,
            T::End,
            T::Begin("chosen"),
            T::Prop("bootargs", b"old\0"),
            T::Prop("stdout-path", b"/pl011@9000000\0"),
            T::End,
            T::End,
        ])
    }

    #[test]
    fn adds_nodes_and_sets_props() {
        let input = virt_like();
        let mut out = vec![0u8; 4096];
        let props = [
            Prop {
                node: "/psci",
                name: "compatible",
                value: b"arm,psci-1.0\0arm,psci-0.2\0",
            },
            Prop {
                node: "/psci",
                name: "method",
                value: b"smc\0",
            },
            Prop {
                node: "/firmware/sdei",
                name: "compatible",
                value: b"arm,sdei-1.0\0",
            },
            Prop {
                node: "/firmware/sdei",
                name: "method",
                value: b"smc\0",
            },
            Prop {
                node: "/cpus/cpu@*",
                name: "enable-method",
                value: b"psci\0",
            },
            Prop {
                node: "/chosen",
                name: "bootargs",
                value: b"console=ttyAMA0\0",
            },
            Prop {
                node: "/chosen",
                name: "linux,initrd-start",
                value: &0x4800_0000u64.to_be_bytes(),
            },
        ];
        let n = edit(
            &input,
            &["/psci", "/firmware", "/firmware/sdei"],
            &props,
            &mut out,
        )
        .unwrap();
        let out = &out[..n];
        let d = dump(out);
        let want = [
            "/:compatible=6c696e75782c64756d6d792d7669727400",
            "/cpus:#size-cells=00000000",
            "/cpus/cpu@0:reg=00000000",
            "/cpus/cpu@0:enable-method=7073636900",
            "/cpus/cpu@1:reg=00000001",
            "/cpus/cpu@1:enable-method=7073636900",
            // "console=ttyAMA0\0" replaced "old\0" in place.
            "/chosen:bootargs=636f6e736f6c653d747479414d413000",
        ];
        assert_eq!(d[..7], want);
        assert!(d.iter().any(|l| l.starts_with("/chosen:stdout-path=")));
        assert!(d.contains(&"/chosen:linux,initrd-start=0000000048000000".to_string()));
        assert!(d.contains(&"/psci:method=736d6300".to_string()));
        assert!(d.contains(&"/firmware/sdei:compatible=61726d2c736465692d312e3000".to_string()));
        assert!(d.contains(&"/firmware/sdei:method=736d6300".to_string()));
        // cpu-map is not a cpu@ node.
        assert!(!d.iter().any(|l| l.starts_with("/cpus/cpu-map:")));
        // One bootargs only.
        assert_eq!(d.iter().filter(|l| l.contains(":bootargs=")).count(), 1);
        // Header is consistent.
        assert_eq!(be32(out, 4), Some(n as u32));
        // Editing the output again changes nothing but keeps it valid.
        let mut again = vec![0u8; 4096];
        let m = edit(
            out,
            &["/psci", "/firmware", "/firmware/sdei"],
            &props,
            &mut again,
        )
        .unwrap();
        assert_eq!(dump(&again[..m]), d);
    }

    #[test]
    fn finds_ram() {
        let mut reg = Vec::new();
        reg.extend(0x4000_0000u64.to_be_bytes());
        reg.extend(0x8000_0000u64.to_be_bytes());
        let dtb = build(&[
            T::Begin(""),
            T::Begin("secram@e000000"),
            T::Prop("reg", &[0; 16]),
            T::End,
            T::Begin("memory@40000000"),
            T::Prop("device_type", b"memory\0"),
            T::Prop("reg", &reg),
            T::End,
            T::End,
        ]);
        assert_eq!(
            crate::boot::ram_from_dtb(&dtb),
            Ok(Some((0x4000_0000, 0x8000_0000)))
        );
        let none = build(&[T::Begin(""), T::End]);
        assert_eq!(crate::boot::ram_from_dtb(&none), Ok(None));
    }

    #[test]
    fn existing_parent_gets_the_child() {
        let input = build(&[
            T::Begin(""),
            T::Begin("firmware"),
            T::Prop("x", b"1\0"),
            T::End,
            T::End,
        ]);
        let props = [Prop {
            node: "/firmware/sdei",
            name: "method",
            value: b"smc\0",
        }];
        let mut out = vec![0u8; 1024];
        let n = edit(&input, &["/firmware", "/firmware/sdei"], &props, &mut out).unwrap();
        assert_eq!(
            dump(&out[..n]),
            ["/firmware:x=3100", "/firmware/sdei:method=736d6300"]
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let mut input = virt_like();
        let mut out = vec![0u8; 4096];
        input[0] = 0;
        assert_eq!(
            edit(&input, &[], &[], &mut out),
            Err(FdtError::BadMagic(0x000d_feed))
        );
        let mut input = virt_like();
        input[23] = 16; // version 16
        assert_eq!(
            edit(&input, &[], &[], &mut out),
            Err(FdtError::BadHeader {
                field: "version",
                value: 16
            })
        );
        let input = virt_like();
        // An unknown token where the first BEGIN_NODE is.
        let mut bad = input.clone();
        bad[56 + 3] = 7;
        assert_eq!(
            edit(&bad, &[], &[], &mut out),
            Err(FdtError::BadToken {
                offset: 0,
                token: 7
            })
        );
        // A nameless child would take the root's path (and its edits).
        let nameless = build(&[T::Begin(""), T::Begin(""), T::End, T::End]);
        assert_eq!(
            edit(&nameless, &[], &[], &mut out),
            Err(FdtError::BadStructure {
                offset: 8,
                what: "a node without a name"
            })
        );
        // No root at all: the added nodes would have no parent to go in.
        let rootless = build(&[]);
        assert_eq!(
            edit(&rootless, &["/psci"], &[], &mut out),
            Err(FdtError::BadStructure {
                offset: 0,
                what: "no root node before FDT_END"
            })
        );
        let two_roots = build(&[T::Begin(""), T::End, T::Begin(""), T::End]);
        assert_eq!(
            for_each_prop(&two_roots, |_, _, _| {}),
            Err(FdtError::BadStructure {
                offset: 12,
                what: "a second top-level node"
            })
        );
        let mut small = vec![0u8; 64];
        assert!(matches!(
            edit(&input, &[], &[], &mut small),
            Err(FdtError::NoRoom { .. })
        ));
    }
}
