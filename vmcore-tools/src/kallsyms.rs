//! Function symbols from the dump itself: the kernel's compressed kallsyms
//! tables, located by VMCOREINFO (`SYMBOL(kallsyms_names|num_syms|
//! token_table|token_index|offsets|relative_base)`, Linux 5.x–6.x).
//!
//! The format (`scripts/kallsyms.c`, `kernel/kallsyms.c` of Linux 6.1):
//! - `kallsyms_num_syms`: `u32`, the number of symbols.
//! - `kallsyms_names`: one entry per symbol: a length, then that many token
//!   bytes. The length is one byte, or — when its bit 7 is set — two bytes,
//!   `(b0 & 0x7f) | b1 << 7` ("big" symbols, 6.1+; older kernels never emit
//!   a length ≥ 0x80, so one decoder reads both).
//! - `kallsyms_token_table`: 256 NUL-terminated strings;
//!   `kallsyms_token_index`: 256 `u16` offsets into it. Each token byte of a
//!   name expands to its string; the first character of the expansion is
//!   the symbol type (`T`, `t`, `W`, …), the rest the name.
//! - `kallsyms_offsets`: `i32` per symbol; with `CONFIG_KALLSYMS_BASE_RELATIVE`
//!   the address is `kallsyms_relative_base + (u32)offset`, except under
//!   `CONFIG_KALLSYMS_ABSOLUTE_PERCPU` (x86_64 SMP only; off on arm64), where a
//!   non-negative offset is an absolute value and a negative one is
//!   `relative_base - 1 - offset`. VMCOREINFO does not say which, so both are
//!   tried as data: the table is sorted by address, and the reading that
//!   keeps it sorted wins ([`OffsetsMode`]).
//! - `kallsyms_relative_base` is an `unsigned long` holding a run-time
//!   address (relocated at boot), so every address here is already
//!   KASLR-shifted.
//!
//! Without `CONFIG_KALLSYMS_ALL` (Debian 6.1) the table holds only text
//! symbols (`_stext`..`_etext`, init text), no data symbols; see
//! [`crate::symbols`] for those. `kallsyms_markers` is not needed (all
//! names are decoded once) and not read.
#![forbid(unsafe_code)]

use std::fmt;

use crash_payload::vmcoreinfo::VmcoreInfo;
use crash_payload::VirtAddr;

use crate::arm64::{Arm64, KernelBounds};
use crate::mem::{MemError, PhysMem};

/// Most symbols a table may claim. Debian 6.1 arm64 has about 100 000;
/// an allyesconfig kernel with `KALLSYMS_ALL` under 1 000 000.
pub const MAX_SYMS: u32 = 1 << 22;

/// Most bytes of `kallsyms_names` read in one go (Debian 6.1's is about 600 KiB).
const MAX_NAMES_SPAN: u64 = 16 << 20;

/// Longest decoded name (`KSYM_NAME_LEN` is 512 since 6.1, 128 before),
/// type character included.
pub const KSYM_NAME_LEN: usize = 512;

/// Largest token table read (256 tokens; real ones are 1–3 KiB).
const MAX_TOKEN_TABLE: u64 = 64 << 10;

/// Why the kallsyms tables could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KallsymsError {
    /// VMCOREINFO lacks a symbol the tables need.
    #[error("VMCOREINFO has no SYMBOL({0}): the kernel's kallsyms tables cannot be found")]
    Missing(&'static str),
    /// A VMCOREINFO value that does not parse.
    #[error("VMCOREINFO SYMBOL({key}): {why}")]
    BadValue {
        /// The symbol.
        key: &'static str,
        /// The parser's message.
        why: String,
    },
    /// A table could not be read from the dump.
    #[error("reading {what} at {addr}: {err}")]
    Read {
        /// Which table.
        what: &'static str,
        /// Where.
        addr: VirtAddr,
        /// The cause.
        err: MemError,
    },
    /// `kallsyms_num_syms` is zero or absurdly large.
    #[error("kallsyms_num_syms at {addr} is {value}: expected 1..={max}")]
    NumSyms {
        /// Address of `kallsyms_num_syms`.
        addr: VirtAddr,
        /// The value read.
        value: u64,
        /// The bound.
        max: u32,
    },
    /// A token-index entry that points outside the token table, or at a
    /// token with no terminating NUL inside it.
    #[error("kallsyms_token_index[{token}] = {offset:#x} points outside the {table_len}-byte kallsyms_token_table (used by symbol {symbol})")]
    TokenIndex {
        /// The token byte.
        token: u8,
        /// Its offset from `kallsyms_token_index`.
        offset: u16,
        /// Bytes of token table read.
        table_len: usize,
        /// Index of the symbol whose name uses it.
        symbol: u32,
    },
    /// A name that decodes to nothing or to more than [`KSYM_NAME_LEN`] bytes.
    #[error("kallsyms name {symbol} at {addr} decodes to {len} bytes: expected 2..={max}")]
    NameLength {
        /// Symbol index.
        symbol: u32,
        /// Address of its entry in `kallsyms_names`.
        addr: VirtAddr,
        /// Decoded (or compressed) length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Neither reading of `kallsyms_offsets` gives sorted addresses.
    #[error("kallsyms_offsets: addresses are not sorted at symbol {symbol} under either offset encoding")]
    Unsorted {
        /// First symbol out of order (relative-base reading).
        symbol: u32,
    },
}

/// How `kallsyms_offsets` was interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetsMode {
    /// `relative_base + (u32)offset` (arm64, and every arch but x86_64 SMP).
    Relative,
    /// `CONFIG_KALLSYMS_ABSOLUTE_PERCPU`: non-negative offsets are absolute,
    /// negative ones `relative_base - 1 - offset`.
    AbsolutePercpu,
}

impl OffsetsMode {
    fn address(self, base: u64, off: i32) -> u64 {
        match self {
            OffsetsMode::Relative => base.wrapping_add(u64::from(off as u32)),
            OffsetsMode::AbsolutePercpu => {
                if off >= 0 {
                    off as u64
                } else {
                    base.wrapping_sub(1).wrapping_sub(off as i64 as u64)
                }
            }
        }
    }
}

/// One symbol from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KallsymsSymbol {
    /// Run-time address.
    pub addr: VirtAddr,
    /// The `nm` type character (`T`, `t`, `W`, …).
    pub kind: char,
    /// The name.
    pub name: String,
}

/// Where an address falls: `name+offset/size`, formatted as the kernel's
/// `%pS` does (`schedule+0x1c/0x80`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location<'a> {
    /// The containing symbol.
    pub name: &'a str,
    /// Offset from its start.
    pub offset: u64,
    /// Its size (distance to the next symbol at a higher address).
    pub size: u64,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:#x}/{:#x}", self.name, self.offset, self.size)
    }
}

/// A decoded, address-sorted kallsyms table.
#[derive(Debug, Clone)]
pub struct Kallsyms {
    syms: Vec<KallsymsSymbol>,
    /// Symbol indices sorted by (name, index): `address_of` bisects it.
    by_name: Vec<u32>,
    mode: OffsetsMode,
}

/// The raw tables, as read from memory (or built by a test).
#[derive(Debug, Clone, Default)]
pub struct RawTables {
    /// `kallsyms_offsets`, one per symbol.
    pub offsets: Vec<i32>,
    /// `kallsyms_relative_base`.
    pub relative_base: u64,
    /// `kallsyms_token_table` bytes (at most [`MAX_TOKEN_TABLE`]).
    pub token_table: Vec<u8>,
    /// `kallsyms_token_index`.
    pub token_index: Vec<u16>,
}

fn sym_addr(vi: &VmcoreInfo<'_>, key: &'static str) -> Result<VirtAddr, KallsymsError> {
    match vi.symbol(key) {
        None => Err(KallsymsError::Missing(key)),
        Some(Err(e)) => Err(KallsymsError::BadValue {
            key,
            why: e.to_string(),
        }),
        Some(Ok(v)) => Ok(VirtAddr(v)),
    }
}

/// Reads a kernel-image table sequentially, one page at a time.
struct Cursor<'a> {
    mem: &'a dyn PhysMem,
    arm: &'a Arm64,
    what: &'static str,
    page: Vec<u8>,
    page_va: Option<u64>,
}

impl Cursor<'_> {
    fn byte(&mut self, va: u64) -> Result<u8, KallsymsError> {
        // A bulk span read up front serves every byte inside it.
        if let Some(b) = self
            .page_va
            .and_then(|base| va.checked_sub(base))
            .and_then(|off| self.page.get(usize::try_from(off).ok()?))
        {
            return Ok(*b);
        }
        let size = self.arm.page_size();
        let base = va & !(size - 1);
        if self.page_va != Some(base) {
            self.page.resize(size as usize, 0);
            self.arm
                .read_symbol(self.mem, VirtAddr(base), &mut self.page)
                .map_err(|err| KallsymsError::Read {
                    what: self.what,
                    addr: VirtAddr(va),
                    err,
                })?;
            self.page_va = Some(base);
        }
        Ok(self.page[(va - base) as usize])
    }
}

impl Kallsyms {
    /// Finds and decodes the tables in the dump.
    pub fn load(
        mem: &dyn PhysMem,
        arm: &Arm64,
        vi: &VmcoreInfo<'_>,
    ) -> Result<Kallsyms, KallsymsError> {
        let (raw, entries) = Kallsyms::read_tables(mem, arm, vi)?;
        Kallsyms::decode(&raw, &entries)
    }

    /// The addresses of a few `names`, without building the table: each
    /// name is decoded into one scratch buffer and compared. For callers
    /// that only ask whether the table holds some data symbols (`verify`).
    pub fn find(
        mem: &dyn PhysMem,
        arm: &Arm64,
        vi: &VmcoreInfo<'_>,
        names: &[&str],
    ) -> Result<Vec<Option<VirtAddr>>, KallsymsError> {
        let (raw, entries) = Kallsyms::read_tables(mem, arm, vi)?;
        let mode = choose_mode(&raw)?;
        let mut found = vec![None; names.len()];
        let mut text = Vec::with_capacity(KSYM_NAME_LEN);
        for (i, (at, compressed)) in entries.iter().enumerate() {
            expand_name(&raw, *at, i as u32, compressed, &mut text)?;
            let name = &text[1..];
            for (slot, want) in found.iter_mut().zip(names) {
                if slot.is_none() && name == want.as_bytes() {
                    let off = raw.offsets.get(i).copied().unwrap_or(0);
                    *slot = Some(VirtAddr(mode.address(raw.relative_base, off)));
                }
            }
        }
        Ok(found)
    }

    /// Reads the raw tables and every compressed name from the dump.
    #[allow(clippy::type_complexity)]
    fn read_tables(
        mem: &dyn PhysMem,
        arm: &Arm64,
        vi: &VmcoreInfo<'_>,
    ) -> Result<(RawTables, Vec<(VirtAddr, Vec<u8>)>), KallsymsError> {
        let names = sym_addr(vi, "kallsyms_names")?;
        let num = sym_addr(vi, "kallsyms_num_syms")?;
        let token_table = sym_addr(vi, "kallsyms_token_table")?;
        let token_index = sym_addr(vi, "kallsyms_token_index")?;
        let offsets = sym_addr(vi, "kallsyms_offsets")?;
        let relative_base = sym_addr(vi, "kallsyms_relative_base")?;

        let read = |what: &'static str, addr: VirtAddr, buf: &mut [u8]| {
            arm.read_symbol(mem, addr, buf)
                .map_err(|err| KallsymsError::Read { what, addr, err })
        };
        let mut b4 = [0u8; 4];
        read("kallsyms_num_syms", num, &mut b4)?;
        let n = u32::from_le_bytes(b4);
        if n == 0 || n > MAX_SYMS {
            return Err(KallsymsError::NumSyms {
                addr: num,
                value: u64::from(n),
                max: MAX_SYMS,
            });
        }
        let mut b8 = [0u8; 8];
        read("kallsyms_relative_base", relative_base, &mut b8)?;
        let mut raw = RawTables {
            relative_base: u64::from_le_bytes(b8),
            ..RawTables::default()
        };
        let mut off_bytes = vec![0u8; n as usize * 4];
        read("kallsyms_offsets", offsets, &mut off_bytes)?;
        raw.offsets = off_bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut idx_bytes = [0u8; 512];
        read("kallsyms_token_index", token_index, &mut idx_bytes)?;
        raw.token_index = idx_bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        // The token table ends where the token index begins in the
        // kernel's layout; otherwise read a bounded amount, page by page,
        // stopping at the first unreadable page.
        let table_len = token_index
            .checked_sub(token_table)
            .filter(|&d| d > 0 && d <= MAX_TOKEN_TABLE)
            .unwrap_or(MAX_TOKEN_TABLE);
        let mut cur = Cursor {
            mem,
            arm,
            what: "kallsyms_token_table",
            page: Vec::new(),
            page_va: None,
        };
        for i in 0..table_len {
            match cur.byte(token_table.0.wrapping_add(i)) {
                Ok(b) => raw.token_table.push(b),
                Err(e) if i == 0 => return Err(e),
                Err(_) => break,
            }
        }

        // The names precede the markers and the token table in the kernel's
        // layout (scripts/kallsyms.c): read that span in one go when it is
        // plausible, so decoding does not go through memory byte by byte.
        let mut cur = Cursor {
            mem,
            arm,
            what: "kallsyms_names",
            page: Vec::new(),
            page_va: None,
        };
        if let Some(span) = token_table
            .0
            .checked_sub(names.0)
            .filter(|&d| d > 0 && d <= MAX_NAMES_SPAN)
        {
            let mut bulk = vec![0u8; span as usize];
            if arm.read_symbol(mem, names, &mut bulk).is_ok() {
                cur.page = bulk;
                cur.page_va = Some(names.0);
            }
        }
        let mut pos = names.0;
        let mut entries = Vec::with_capacity(n as usize);
        for i in 0..n {
            let at = pos;
            let mut len = usize::from(cur.byte(pos)?);
            pos = pos.wrapping_add(1);
            if len & 0x80 != 0 {
                len = (len & 0x7f) | usize::from(cur.byte(pos)?) << 7;
                pos = pos.wrapping_add(1);
            }
            if len == 0 || len > KSYM_NAME_LEN {
                return Err(KallsymsError::NameLength {
                    symbol: i,
                    addr: VirtAddr(at),
                    len,
                    max: KSYM_NAME_LEN,
                });
            }
            let mut compressed = Vec::with_capacity(len);
            for _ in 0..len {
                compressed.push(cur.byte(pos)?);
                pos = pos.wrapping_add(1);
            }
            entries.push((VirtAddr(at), compressed));
        }
        Ok((raw, entries))
    }

    /// Decodes compressed names (`(entry address, token bytes)` per symbol)
    /// with the raw tables. Pure: no memory access.
    pub fn decode(
        raw: &RawTables,
        names: &[(VirtAddr, Vec<u8>)],
    ) -> Result<Kallsyms, KallsymsError> {
        let mut syms = Vec::with_capacity(names.len());
        let mode = choose_mode(raw)?;
        for (i, (at, compressed)) in names.iter().enumerate() {
            let i = i as u32;
            let mut text = Vec::with_capacity(compressed.len() * 2);
            expand_name(raw, *at, i, compressed, &mut text)?;
            let off = raw.offsets.get(i as usize).copied().unwrap_or(0);
            syms.push(KallsymsSymbol {
                addr: VirtAddr(mode.address(raw.relative_base, off)),
                kind: char::from(text[0]),
                name: String::from_utf8_lossy(&text[1..]).into_owned(),
            });
        }
        let mut by_name: Vec<u32> = (0..syms.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| {
            syms[a as usize]
                .name
                .cmp(&syms[b as usize].name)
                .then(a.cmp(&b))
        });
        Ok(Kallsyms {
            syms,
            by_name,
            mode,
        })
    }

    /// The symbols, in table (address) order.
    pub fn symbols(&self) -> &[KallsymsSymbol] {
        &self.syms
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// True for an empty table (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// How the offsets were read.
    pub fn offsets_mode(&self) -> OffsetsMode {
        self.mode
    }

    /// The address of the first symbol named `name`.
    pub fn address_of(&self, name: &str) -> Option<VirtAddr> {
        let i = self
            .by_name
            .partition_point(|&i| self.syms[i as usize].name.as_str() < name);
        let &idx = self.by_name.get(i)?;
        let s = &self.syms[idx as usize];
        (s.name == name).then_some(s.addr)
    }

    /// The symbol containing `addr`, as the kernel's `kallsyms_lookup`
    /// finds it: the last symbol at or below `addr`, the first of its
    /// aliases, sized up to the next higher address. `None` below the first
    /// symbol, at or past the last one (its size is unknown), and after the
    /// `_etext` / `_einittext` / `_end` markers.
    pub fn lookup(&self, addr: VirtAddr) -> Option<Location<'_>> {
        let after = self.syms.partition_point(|s| s.addr <= addr);
        let last = after.checked_sub(1)?;
        let start = self.syms[last].addr;
        let first = self.syms[..=last].partition_point(|s| s.addr < start);
        let next = self.syms[after..].iter().find(|s| s.addr > start)?;
        // End markers: addresses past `_etext` (rodata, data) are not text.
        if matches!(
            self.syms[first].name.as_str(),
            "_etext" | "_einittext" | "_end"
        ) {
            return None;
        }
        Some(Location {
            name: &self.syms[first].name,
            offset: addr.0 - start.0,
            size: next.addr.0 - start.0,
        })
    }

    /// Image bounds the table knows: `_etext`, `_sinittext`/`_einittext`
    /// (`_end` is not in a table without `CONFIG_KALLSYMS_ALL`).
    pub fn kernel_bounds(&self) -> KernelBounds {
        KernelBounds {
            etext: self.address_of("_etext"),
            inittext: self
                .address_of("_sinittext")
                .zip(self.address_of("_einittext")),
            end: self.address_of("_end"),
        }
    }
}

/// Picks the offset encoding that keeps the table sorted.
/// Expands symbol `symbol`'s compressed name (at `at`) through the token
/// table into `text` (type character first), checking its length.
fn expand_name(
    raw: &RawTables,
    at: VirtAddr,
    symbol: u32,
    compressed: &[u8],
    text: &mut Vec<u8>,
) -> Result<(), KallsymsError> {
    text.clear();
    let too_long_or_short = |len| KallsymsError::NameLength {
        symbol,
        addr: at,
        len,
        max: KSYM_NAME_LEN,
    };
    for &t in compressed {
        let off = raw
            .token_index
            .get(usize::from(t))
            .copied()
            .unwrap_or(u16::MAX);
        let tok = raw
            .token_table
            .get(usize::from(off)..)
            .and_then(|rest| rest.iter().position(|&b| b == 0).map(|e| &rest[..e]))
            .ok_or(KallsymsError::TokenIndex {
                token: t,
                offset: off,
                table_len: raw.token_table.len(),
                symbol,
            })?;
        text.extend_from_slice(tok);
        if text.len() > KSYM_NAME_LEN {
            return Err(too_long_or_short(text.len()));
        }
    }
    if text.len() < 2 {
        return Err(too_long_or_short(text.len()));
    }
    Ok(())
}

fn choose_mode(raw: &RawTables) -> Result<OffsetsMode, KallsymsError> {
    let first_unsorted = |mode: OffsetsMode| {
        raw.offsets
            .windows(2)
            .position(|w| {
                mode.address(raw.relative_base, w[1]) < mode.address(raw.relative_base, w[0])
            })
            .map(|p| p as u32 + 1)
    };
    match first_unsorted(OffsetsMode::Relative) {
        None => Ok(OffsetsMode::Relative),
        Some(symbol) => match first_unsorted(OffsetsMode::AbsolutePercpu) {
            None => Ok(OffsetsMode::AbsolutePercpu),
            Some(_) => Err(KallsymsError::Unsorted { symbol }),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::arm64::tests::arm64;
    use crate::mem::FakeMem;
    use crash_payload::PhysAddr;

    /// Tokens beyond single characters, to exercise multi-byte expansion the
    /// way `scripts/kallsyms.c` compresses (`T` and `t` prefixes are common).
    const MULTI: &[(u8, &str)] = &[
        (0x01, "Tsch"),
        (0x02, "edule"),
        (0x03, "_irq"),
        (0x04, "tdo"),
    ];

    /// Builds the tables for `(addr, type, name)` symbols at `base`.
    pub(crate) struct KallsymsBuilder {
        pub syms: Vec<(u64, char, String)>,
        pub base: u64,
    }

    impl KallsymsBuilder {
        pub(crate) fn token_table() -> (Vec<u8>, Vec<u16>) {
            let mut table = Vec::new();
            let mut index = vec![0u16; 256];
            for t in 0..=255u8 {
                index[usize::from(t)] = table.len() as u16;
                if let Some((_, s)) = MULTI.iter().find(|(b, _)| *b == t) {
                    table.extend_from_slice(s.as_bytes());
                } else if (0x20..0x7f).contains(&t) {
                    table.push(t);
                } else {
                    table.push(b'?');
                }
                table.push(0);
            }
            (table, index)
        }

        /// Greedy longest-token compression of `type + name`.
        pub(crate) fn compress(text: &str) -> Vec<u8> {
            let b = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if let Some((t, s)) = MULTI
                    .iter()
                    .filter(|(_, s)| b[i..].starts_with(s.as_bytes()))
                    .max_by_key(|(_, s)| s.len())
                {
                    out.push(*t);
                    i += s.len();
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            out
        }

        /// `kallsyms_names` bytes (with 2-byte lengths where needed).
        pub(crate) fn names(&self) -> Vec<u8> {
            let mut out = Vec::new();
            for (_, k, n) in &self.syms {
                let c = Self::compress(&format!("{k}{n}"));
                if c.len() >= 0x80 {
                    out.push((c.len() & 0x7f) as u8 | 0x80);
                    out.push((c.len() >> 7) as u8);
                } else {
                    out.push(c.len() as u8);
                }
                out.extend_from_slice(&c);
            }
            out
        }

        /// Lays the tables out as the kernel does (offsets, relative base,
        /// num_syms, names, token table, token index, 8-byte aligned) in one
        /// blob at kernel-image address `va`, padded to whole pages.
        pub(crate) fn layout(&self, va: u64) -> Placed {
            let offsets: Vec<u8> = self
                .syms
                .iter()
                .flat_map(|(addr, _, _)| ((addr - self.base) as u32).to_le_bytes())
                .collect();
            let (table, index) = Self::token_table();
            let index: Vec<u8> = index.iter().flat_map(|v| v.to_le_bytes()).collect();
            let names = self.names();
            let align = |v: usize| (v + 7) & !7;
            let base_off = align(offsets.len());
            let num_off = base_off + 8;
            let names_off = num_off + 8;
            let table_off = align(names_off + names.len());
            let index_off = align(table_off + table.len());
            let mut blob = vec![0u8; (index_off + index.len()).next_multiple_of(4096)];
            blob[..offsets.len()].copy_from_slice(&offsets);
            blob[base_off..base_off + 8].copy_from_slice(&self.base.to_le_bytes());
            blob[num_off..num_off + 4].copy_from_slice(&(self.syms.len() as u32).to_le_bytes());
            blob[names_off..names_off + names.len()].copy_from_slice(&names);
            blob[table_off..table_off + table.len()].copy_from_slice(&table);
            blob[index_off..index_off + index.len()].copy_from_slice(&index);
            let at = |o: usize| va + o as u64;
            let lines = format!(
                "SYMBOL(kallsyms_offsets)={:x}\nSYMBOL(kallsyms_relative_base)={:x}\n\
                 SYMBOL(kallsyms_num_syms)={:x}\nSYMBOL(kallsyms_names)={:x}\n\
                 SYMBOL(kallsyms_token_table)={:x}\nSYMBOL(kallsyms_token_index)={:x}\n",
                at(0),
                at(base_off),
                at(num_off),
                at(names_off),
                at(table_off),
                at(index_off)
            );
            Placed {
                lines,
                blob,
                va,
                num_off,
                names_off,
            }
        }
    }

    /// Tables laid out by [`KallsymsBuilder::layout`].
    pub(crate) struct Placed {
        /// VMCOREINFO lines locating them.
        pub lines: String,
        /// The bytes.
        pub blob: Vec<u8>,
        /// Where they start (kernel-image address).
        pub va: u64,
        /// Offset of kallsyms_num_syms in the blob.
        pub num_off: usize,
        /// Offset of kallsyms_names in the blob.
        pub names_off: usize,
    }

    impl Placed {
        /// Puts the blob into `mem`.
        pub(crate) fn put(&self, a: &Arm64, mem: &mut FakeMem) {
            mem.put(PhysAddr(self.va - a.kimage_voffset()), &self.blob);
        }
        /// Loads through a fresh KASLR-less context.
        pub(crate) fn load(&self) -> Result<Kallsyms, KallsymsError> {
            let a = arm64(0);
            let mut mem = FakeMem::default();
            self.put(&a, &mut mem);
            let text = crate::arm64::tests::vmcoreinfo_text(0) + &self.lines;
            let vi = VmcoreInfo::parse(text.as_bytes()).unwrap();
            Kallsyms::load(&mem, &a, &vi)
        }
    }

    /// Where the test tables go: in .rodata of a KASLR-less image.
    pub(crate) const TABLES_VA: u64 = 0xffff_8000_0900_0000;

    pub(crate) const STEXT: u64 = 0xffff_8000_0801_0000;

    pub(crate) fn sample() -> KallsymsBuilder {
        KallsymsBuilder {
            base: 0xffff_8000_0800_0000,
            syms: vec![
                (STEXT, 'T', "_stext".into()),
                (STEXT, 'T', "__exception_text_start".into()),
                (STEXT + 0x100, 'T', "schedule".into()),
                (STEXT + 0x180, 't', "do_idle_irq".into()),
                (STEXT + 0x200, 'T', "x".repeat(140)),
                (STEXT + 0x300, 'T', "panic".into()),
                (STEXT + 0xf0_0000, 'T', "_etext".into()),
            ],
        }
    }

    /// Loads `b` placed in the image of a KASLR-less kernel.
    pub(crate) fn load(b: &KallsymsBuilder) -> Result<Kallsyms, KallsymsError> {
        b.layout(TABLES_VA).load()
    }

    #[test]
    fn decode_lookup_and_names() {
        let k = load(&sample()).unwrap();
        assert_eq!(k.len(), 7);
        assert_eq!(k.offsets_mode(), OffsetsMode::Relative);
        assert_eq!(k.address_of("schedule"), Some(VirtAddr(STEXT + 0x100)));
        assert_eq!(k.symbols()[3].kind, 't');
        assert_eq!(k.symbols()[3].name, "do_idle_irq");
        assert_eq!(k.symbols()[4].name.len(), 140);
        let l = k.lookup(VirtAddr(STEXT + 0x11c)).unwrap();
        assert_eq!(l.to_string(), "schedule+0x1c/0x80");
        // Aliases: the first one in table order names the address.
        assert_eq!(
            k.lookup(VirtAddr(STEXT + 4)).unwrap().to_string(),
            "_stext+0x4/0x100"
        );
        assert_eq!(
            k.lookup(VirtAddr(STEXT + 0x300)).unwrap().to_string(),
            "panic+0x0/0xeffd00"
        );
        assert_eq!(k.lookup(VirtAddr(STEXT - 1)), None);
        assert_eq!(k.lookup(VirtAddr(STEXT + 0xf0_0000)), None);
        assert_eq!(k.kernel_bounds().etext, Some(VirtAddr(STEXT + 0xf0_0000)));
    }

    #[test]
    fn absolute_percpu_offsets_are_detected() {
        let base = 0xffff_ffff_8100_0000u64;
        // Two per-CPU symbols (absolute), then text (negative offsets).
        let offsets = [0i32, 0x40, -1 - 0x1000, -1 - 0x2000];
        let (token_table, token_index) = KallsymsBuilder::token_table();
        let raw = RawTables {
            offsets: offsets.to_vec(),
            relative_base: base,
            token_table,
            token_index,
        };
        let names: Vec<(VirtAddr, Vec<u8>)> =
            ["Dfixed_percpu_data", "Dcpu_number", "T_stext", "Tschedule"]
                .iter()
                .map(|n| (VirtAddr(0), KallsymsBuilder::compress(n)))
                .collect();
        let k = Kallsyms::decode(&raw, &names).unwrap();
        assert_eq!(k.offsets_mode(), OffsetsMode::AbsolutePercpu);
        assert_eq!(k.address_of("cpu_number"), Some(VirtAddr(0x40)));
        assert_eq!(k.address_of("schedule"), Some(VirtAddr(base + 0x2000)));
    }

    #[test]
    fn absurd_num_syms() {
        let mut p = sample().layout(TABLES_VA);
        let num_va = VirtAddr(TABLES_VA + p.num_off as u64);
        p.blob[p.num_off..p.num_off + 4].copy_from_slice(&0x4000_0001u32.to_le_bytes());
        assert_eq!(
            p.load().unwrap_err(),
            KallsymsError::NumSyms {
                addr: num_va,
                value: 0x4000_0001,
                max: MAX_SYMS
            }
        );
        assert_eq!(
            p.load().unwrap_err().to_string(),
            "kallsyms_num_syms at 0xffff800009000028 is 1073741825: expected 1..=4194304"
        );
        p.blob[p.num_off..p.num_off + 4].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            p.load(),
            Err(KallsymsError::NumSyms { value: 0, .. })
        ));
    }

    #[test]
    fn token_index_outside_table() {
        let (token_table, mut token_index) = KallsymsBuilder::token_table();
        token_index[usize::from(b's')] = 0x7000;
        let raw = RawTables {
            offsets: vec![0, 4],
            relative_base: STEXT,
            token_table,
            token_index,
        };
        let names = vec![
            (VirtAddr(0x10), KallsymsBuilder::compress("T_stext")),
            (VirtAddr(0x18), KallsymsBuilder::compress("Tpanic")),
        ];
        let e = Kallsyms::decode(&raw, &names).unwrap_err();
        assert_eq!(
            e,
            KallsymsError::TokenIndex {
                token: b's',
                offset: 0x7000,
                table_len: 256 * 2 + 3 + 4 + 3 + 2,
                symbol: 0
            }
        );
        assert_eq!(
            e.to_string(),
            "kallsyms_token_index[115] = 0x7000 points outside the 524-byte kallsyms_token_table (used by symbol 0)"
        );
    }

    #[test]
    fn unterminated_token_and_bad_lengths() {
        let (mut token_table, token_index) = KallsymsBuilder::token_table();
        // Drop the final NUL: token 0xff has no terminator.
        token_table.pop();
        let raw = RawTables {
            offsets: vec![0],
            relative_base: STEXT,
            token_table,
            token_index,
        };
        let e = Kallsyms::decode(&raw, &[(VirtAddr(0), vec![b'T', 0xff])]).unwrap_err();
        assert!(
            matches!(e, KallsymsError::TokenIndex { token: 0xff, .. }),
            "{e}"
        );
        let e = Kallsyms::decode(&raw, &[(VirtAddr(8), vec![b'T'])]).unwrap_err();
        assert_eq!(
            e,
            KallsymsError::NameLength {
                symbol: 0,
                addr: VirtAddr(8),
                len: 1,
                max: 512
            }
        );
        // A zero length byte in kallsyms_names.
        let mut b = sample();
        b.syms.truncate(1);
        let mut p = b.layout(TABLES_VA);
        p.blob[p.names_off] = 0;
        assert_eq!(
            p.load().unwrap_err(),
            KallsymsError::NameLength {
                symbol: 0,
                addr: VirtAddr(TABLES_VA + p.names_off as u64),
                len: 0,
                max: 512
            }
        );
    }

    #[test]
    fn unsorted_and_missing() {
        let (token_table, token_index) = KallsymsBuilder::token_table();
        let raw = RawTables {
            offsets: vec![0x10, 0x8, 0x20],
            relative_base: STEXT,
            token_table,
            token_index,
        };
        let names = vec![(VirtAddr(0), b"Ta".to_vec()); 3];
        assert!(matches!(
            Kallsyms::decode(&raw, &names),
            Err(KallsymsError::Unsorted { symbol: 1 })
        ));
        let a = arm64(0);
        let text = crate::arm64::tests::vmcoreinfo_text(0);
        let vi = VmcoreInfo::parse(text.as_bytes()).unwrap();
        assert_eq!(
            Kallsyms::load(&FakeMem::default(), &a, &vi).unwrap_err(),
            KallsymsError::Missing("kallsyms_names")
        );
    }

    #[test]
    fn unreadable_table_names_the_table() {
        let a = arm64(0);
        let p = sample().layout(TABLES_VA);
        let text = crate::arm64::tests::vmcoreinfo_text(0) + &p.lines;
        let vi = VmcoreInfo::parse(text.as_bytes()).unwrap();
        let e = Kallsyms::load(&FakeMem::default(), &a, &vi).unwrap_err();
        assert!(
            matches!(
                e,
                KallsymsError::Read {
                    what: "kallsyms_num_syms",
                    ..
                }
            ),
            "{e}"
        );
    }
}
