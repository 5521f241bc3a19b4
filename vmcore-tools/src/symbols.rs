//! Data symbols (and a fallback for functions): a System.map or a vmlinux
//! ELF `.symtab`, combined with the dump's own kallsyms and VMCOREINFO
//! `SYMBOL()` lines into one [`Symbols`] the CPU verifier asks.
//!
//! System.map and vmlinux hold link-time addresses; the running kernel's are
//! those plus `KERNELOFFSET` (the KASLR displacement), except for absolute
//! symbols (`A`/`a`, `SHN_ABS`), which are not moved. A file from another
//! build would give wrong addresses silently, so [`Symbols::add_link_symbols`]
//! refuses one whose `_stext`, or any symbol the dump itself knows (every
//! VMCOREINFO `SYMBOL()`, every uniquely named kallsyms symbol), disagrees
//! with the dump after shifting ([`SymbolsError::DifferentBuild`]).
//!
//! Debian's `/boot/System.map-<ver>` is a one-line stub pointing at the
//! `-dbg` package; it is recognised and refused ([`SymbolsError::Stub`]).
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crash_payload::vmcoreinfo::VmcoreInfo;
use crash_payload::VirtAddr;

use crate::arm64::{Arm64, KernelBounds};
use crate::kallsyms::{Kallsyms, Location};

/// Why a symbol file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolsError {
    /// A System.map line that is not `ADDR TYPE NAME`.
    #[error("{origin} line {line}: {why}")]
    MapLine {
        /// The file, for messages.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// Debian's placeholder System.map.
    #[error("{origin} is a placeholder ({text:?}); the real System.map and vmlinux are in the linux-image-<version>-dbg package")]
    Stub {
        /// The file.
        origin: String,
        /// Its text.
        text: String,
    },
    /// A vmlinux that `object` cannot read, or that has no symbols.
    #[error("{origin}: {why}")]
    Elf {
        /// The file.
        origin: String,
        /// What is wrong.
        why: String,
    },
    /// The file has no `_stext`, so it cannot be matched to the dump.
    #[error("{origin} has no _stext: cannot check that it belongs to this dump")]
    NoStext {
        /// The file.
        origin: String,
    },
    /// The file disagrees with the dump.
    #[error("{kind} from a different build: {origin} puts {symbol} at {shifted:#x} (link address {link:#x} + KERNELOFFSET {kaslr:#x}) but the dump's {dump_source} says {dump:#x}")]
    DifferentBuild {
        /// "System.map" or "vmlinux".
        kind: &'static str,
        /// The file.
        origin: String,
        /// The symbol compared.
        symbol: String,
        /// Its link-time address in the file.
        link: u64,
        /// `KERNELOFFSET`.
        kaslr: u64,
        /// `link + kaslr`.
        shifted: u64,
        /// The dump's value.
        dump: u64,
        /// Where the dump's value came from.
        dump_source: &'static str,
    },
}

/// Where a symbol answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SymbolSource {
    /// The dump's kallsyms tables.
    Kallsyms,
    /// A VMCOREINFO `SYMBOL()` line.
    Vmcoreinfo,
    /// A System.map file.
    SystemMap,
    /// A vmlinux `.symtab`.
    Vmlinux,
}

impl fmt::Display for SymbolSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SymbolSource::Kallsyms => "kallsyms",
            SymbolSource::Vmcoreinfo => "VMCOREINFO",
            SymbolSource::SystemMap => "System.map",
            SymbolSource::Vmlinux => "vmlinux",
        })
    }
}

/// One link-time symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSymbol {
    /// Link-time address.
    pub addr: u64,
    /// Size, when the file records one (vmlinux), else 0.
    pub size: u64,
    /// `nm` type character.
    pub kind: char,
    /// Name.
    pub name: String,
}

impl LinkSymbol {
    /// Absolute symbols are not moved by KASLR.
    pub fn is_absolute(&self) -> bool {
        matches!(self.kind, 'A' | 'a')
    }
}

/// Symbols from a System.map or vmlinux, sorted by address.
#[derive(Debug, Clone)]
pub struct LinkSymbols {
    source: SymbolSource,
    origin: String,
    syms: Vec<LinkSymbol>,
    /// (FNV-1a hash of the name, index into `syms`), sorted: lookups bisect
    /// by hash and compare names; equal neighbours mark names that occur
    /// more than once (static symbols in several files). Sorting integers
    /// keeps loading a 150 000-line System.map cheap.
    by_name: Vec<(u64, u32)>,
}

/// Parses up to 16 hex digits.
fn parse_hex_bytes(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| {
        let d = (c as char).to_digit(16)?;
        Some(acc << 4 | u64::from(d))
    })
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl LinkSymbols {
    fn new(source: SymbolSource, origin: String, mut syms: Vec<LinkSymbol>) -> LinkSymbols {
        syms.sort_by_key(|s| s.addr);
        let mut by_name: Vec<(u64, u32)> = syms
            .iter()
            .enumerate()
            .map(|(i, s)| (fnv1a(&s.name), i as u32))
            .collect();
        by_name.sort_unstable();
        LinkSymbols {
            source,
            origin,
            syms,
            by_name,
        }
    }

    /// Indices (into `syms`, ascending) of the symbols named `name`.
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        let h = fnv1a(name);
        let start = self.by_name.partition_point(|&(k, _)| k < h);
        self.by_name[start..]
            .iter()
            .take_while(move |&&(k, _)| k == h)
            .map(|&(_, i)| i as usize)
            .filter(move |&i| self.syms[i].name == name)
    }

    /// True when more than one symbol is named `name`.
    pub fn is_duplicate(&self, name: &str) -> bool {
        self.named(name).nth(1).is_some()
    }

    /// Parses System.map text: `ADDR TYPE NAME` per line (`nm -n` output).
    /// `origin` names the file in errors.
    pub fn parse_system_map(text: &[u8], origin: &str) -> Result<LinkSymbols, SymbolsError> {
        LinkSymbols::parse_system_map_keeping(text, origin, &|_| true)
    }

    /// Like [`LinkSymbols::parse_system_map`], keeping only the symbols whose
    /// name `keep` accepts (every line is still checked). `verify` needs a
    /// dozen names out of 150 000; not building the rest is most of its cost.
    pub fn parse_system_map_keeping(
        text: &[u8],
        origin: &str,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<LinkSymbols, SymbolsError> {
        let err = |line: usize, why: String| SymbolsError::MapLine {
            origin: origin.to_string(),
            line,
            why,
        };
        // Debian's stub is one short line; look only at the start.
        let stub = b"System.map is in the";
        let head = &text[..text.len().min(512)];
        let is_stub = head.windows(stub.len()).any(|w| w == stub);
        if is_stub {
            return Err(SymbolsError::Stub {
                origin: origin.to_string(),
                text: String::from_utf8_lossy(text).trim().to_string(),
            });
        }
        // Byte-level parsing: a -dbg System.map has 150 000 lines, and
        // `verify --system-map` should cost little more than reading it.
        let ws = |b: &u8| *b == b' ' || *b == b'\t' || *b == b'\r';
        let mut syms = Vec::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            let mut fields = line.split(ws).filter(|f| !f.is_empty());
            let Some(a) = fields.next() else { continue };
            let (Some(k), Some(name), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(err(
                    n,
                    format!("expected `ADDR TYPE NAME`, found {:?}", String::from_utf8_lossy(line)),
                ));
            };
            let addr = parse_hex_bytes(a).ok_or_else(|| {
                err(n, format!("address {:?} is not hexadecimal", String::from_utf8_lossy(a)))
            })?;
            let kind = match k {
                [c] if c.is_ascii_graphic() => char::from(*c),
                _ => {
                    return Err(err(
                        n,
                        format!("type {:?} is not one character", String::from_utf8_lossy(k)),
                    ))
                }
            };
            if !keep(name) {
                continue;
            }
            syms.push(LinkSymbol {
                addr,
                size: 0,
                kind,
                name: String::from_utf8_lossy(name).into_owned(),
            });
        }
        if syms.is_empty() {
            return Err(err(0, "no symbols".into()));
        }
        Ok(LinkSymbols::new(
            SymbolSource::SystemMap,
            origin.to_string(),
            syms,
        ))
    }

    /// Reads a vmlinux ELF's `.symtab`. Section, file and arm64 mapping
    /// symbols (`$x`, `$d`) are skipped; types are derived as `nm` does
    /// (text `T`, read-only `R`, data `D`, bss `B`, absolute `A`, weak `W`;
    /// lower case for local symbols).
    pub fn parse_vmlinux(bytes: &[u8], origin: &str) -> Result<LinkSymbols, SymbolsError> {
        use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind, SymbolSection};
        let e = |why: String| SymbolsError::Elf {
            origin: origin.to_string(),
            why,
        };
        let file =
            object::File::parse(bytes).map_err(|x| e(format!("not a readable ELF file: {x}")))?;
        let mut syms = Vec::new();
        for s in file.symbols() {
            let Ok(name) = s.name() else { continue };
            if name.is_empty()
                || name.starts_with('$')
                || matches!(s.kind(), SymbolKind::Section | SymbolKind::File)
                || s.is_undefined()
            {
                continue;
            }
            let kind = match s.section() {
                SymbolSection::Absolute => 'A',
                SymbolSection::Section(idx) => {
                    match file.section_by_index(idx).map(|sec| sec.kind()) {
                        Ok(SectionKind::Text) => 'T',
                        Ok(SectionKind::ReadOnlyData | SectionKind::ReadOnlyString) => 'R',
                        Ok(SectionKind::UninitializedData) => 'B',
                        _ => 'D',
                    }
                }
                _ => continue,
            };
            let kind = if s.is_weak() {
                if kind == 'T' {
                    'W'
                } else {
                    'V'
                }
            } else if s.is_local() {
                kind.to_ascii_lowercase()
            } else {
                kind
            };
            syms.push(LinkSymbol {
                addr: s.address(),
                size: s.size(),
                kind,
                name: name.to_string(),
            });
        }
        if syms.is_empty() {
            return Err(e(
                "no .symtab symbols (a stripped image? use the -dbg package's vmlinux)".into(),
            ));
        }
        Ok(LinkSymbols::new(
            SymbolSource::Vmlinux,
            origin.to_string(),
            syms,
        ))
    }

    /// Where these came from.
    pub fn source(&self) -> SymbolSource {
        self.source
    }

    /// The file, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The symbols, sorted by link-time address.
    pub fn symbols(&self) -> &[LinkSymbol] {
        &self.syms
    }

    /// The first symbol named `name`.
    pub fn get(&self, name: &str) -> Option<&LinkSymbol> {
        // The lowest index: the first in address order.
        self.named(name).next().map(|i| &self.syms[i])
    }

    /// Link-time address of `name`.
    pub fn link_address_of(&self, name: &str) -> Option<u64> {
        self.get(name).map(|s| s.addr)
    }

    fn kind_name(&self) -> &'static str {
        match self.source {
            SymbolSource::Vmlinux => "vmlinux",
            _ => "System.map",
        }
    }
}

/// VMCOREINFO `SYMBOL()` keys whose value is what a pointer variable holds,
/// not where the variable is (`kernel/crash_core.c`, `VMCOREINFO_SYMBOL_ARRAY`).
const POINTER_VALUED: &[&str] = &["mem_section"];

/// Every symbol source for one dump.
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    kaslr: u64,
    stext: Option<VirtAddr>,
    vmcoreinfo: BTreeMap<String, VirtAddr>,
    kallsyms: Option<Kallsyms>,
    link: Option<LinkSymbols>,
}

impl Symbols {
    /// The dump's own symbols: VMCOREINFO `SYMBOL()` lines and, if loaded,
    /// kallsyms. `KERNELOFFSET` and `_stext` come from `arm`.
    pub fn from_dump(arm: &Arm64, vi: &VmcoreInfo<'_>, kallsyms: Option<Kallsyms>) -> Symbols {
        let vmcoreinfo = vi
            .entries()
            .filter_map(|(k, v, _)| {
                let name = k.strip_prefix("SYMBOL(")?.strip_suffix(')')?;
                // VMCOREINFO_SYMBOL_ARRAY(mem_section) prints the pointer's
                // value (the array it points to under SPARSEMEM_EXTREME),
                // not the variable's address: it is no symbol address.
                if POINTER_VALUED.contains(&name) {
                    return None;
                }
                let addr = crash_payload::vmcoreinfo::parse_hex(v.trim())?;
                Some((name.to_string(), VirtAddr(addr)))
            })
            .collect();
        Symbols {
            kaslr: arm.kaslr_offset(),
            stext: Some(arm.stext()),
            vmcoreinfo,
            kallsyms,
            link: None,
        }
    }

    /// Adds a System.map or vmlinux after checking it matches the dump:
    /// its `_stext` + `KERNELOFFSET` must equal the dump's `_stext`
    /// (VMCOREINFO, else kallsyms), and every VMCOREINFO `SYMBOL()` and
    /// uniquely named kallsyms symbol it also lists must agree.
    pub fn add_link_symbols(&mut self, link: LinkSymbols) -> Result<(), SymbolsError> {
        let stext = link.get("_stext").ok_or_else(|| SymbolsError::NoStext {
            origin: link.origin.clone(),
        })?;
        let dump_stext = self
            .stext
            .map(|v| (v, "VMCOREINFO SYMBOL(_stext)"))
            .or_else(|| {
                self.kallsyms
                    .as_ref()
                    .and_then(|k| k.address_of("_stext"))
                    .map(|v| (v, "kallsyms"))
            });
        let mismatch = |s: &LinkSymbol, dump: VirtAddr, dump_source: &'static str| {
            let shifted = self.runtime(s);
            (shifted != dump.0).then(|| SymbolsError::DifferentBuild {
                kind: link.kind_name(),
                origin: link.origin.clone(),
                symbol: s.name.clone(),
                link: s.addr,
                kaslr: self.kaslr,
                shifted,
                dump: dump.0,
                dump_source,
            })
        };
        if let Some((v, src)) = dump_stext {
            if let Some(e) = mismatch(stext, v, src) {
                return Err(e);
            }
        }
        for (name, &v) in &self.vmcoreinfo {
            if link.is_duplicate(name) {
                continue;
            }
            if let Some(s) = link.get(name) {
                if let Some(e) = mismatch(s, v, "VMCOREINFO SYMBOL()") {
                    return Err(e);
                }
            }
        }
        if let Some(k) = &self.kallsyms {
            let mut seen: HashMap<&str, u32> = HashMap::new();
            for s in k.symbols() {
                *seen.entry(&s.name).or_default() += 1;
            }
            for s in k.symbols() {
                if seen.get(s.name.as_str()) != Some(&1) || link.is_duplicate(&s.name) {
                    continue;
                }
                if let Some(ls) = link.get(&s.name) {
                    if let Some(e) = mismatch(ls, s.addr, "kallsyms") {
                        return Err(e);
                    }
                }
            }
        }
        self.link = Some(link);
        Ok(())
    }

    fn runtime(&self, s: &LinkSymbol) -> u64 {
        if s.is_absolute() {
            s.addr
        } else {
            s.addr.wrapping_add(self.kaslr)
        }
    }

    /// The kallsyms table, if loaded.
    pub fn kallsyms(&self) -> Option<&Kallsyms> {
        self.kallsyms.as_ref()
    }

    /// The System.map / vmlinux symbols, if added.
    pub fn link_symbols(&self) -> Option<&LinkSymbols> {
        self.link.as_ref()
    }

    /// Run-time address of `name`, and which source gave it. Order:
    /// kallsyms (the dump itself), VMCOREINFO, then the (checked)
    /// System.map / vmlinux shifted by `KERNELOFFSET`.
    pub fn address_of_with_source(&self, name: &str) -> Option<(VirtAddr, SymbolSource)> {
        if let Some(v) = self.kallsyms.as_ref().and_then(|k| k.address_of(name)) {
            return Some((v, SymbolSource::Kallsyms));
        }
        if let Some(&v) = self.vmcoreinfo.get(name) {
            return Some((v, SymbolSource::Vmcoreinfo));
        }
        let link = self.link.as_ref()?;
        let s = link.get(name)?;
        Some((VirtAddr(self.runtime(s)), link.source))
    }

    /// Run-time address of `name` (see [`Symbols::address_of_with_source`]).
    pub fn address_of(&self, name: &str) -> Option<VirtAddr> {
        self.address_of_with_source(name).map(|(v, _)| v)
    }

    /// The symbol containing `addr`: kallsyms first (functions), then the
    /// System.map / vmlinux (data too; sized by `st_size` when the file
    /// gives one, else up to the next symbol).
    pub fn lookup(&self, addr: VirtAddr) -> Option<(Location<'_>, SymbolSource)> {
        if let Some(l) = self.kallsyms.as_ref().and_then(|k| k.lookup(addr)) {
            return Some((l, SymbolSource::Kallsyms));
        }
        let link = self.link.as_ref()?;
        let link_addr = addr.0.wrapping_sub(self.kaslr);
        let syms = &link.syms;
        let after = syms.partition_point(|s| s.addr <= link_addr);
        let last = after.checked_sub(1)?;
        let start = syms[last].addr;
        let first = syms[..=last].partition_point(|s| s.addr < start);
        // Prefer a non-absolute, sized alias.
        let s = syms[first..=last]
            .iter()
            .find(|s| !s.is_absolute() && s.size > 0)
            .or_else(|| syms[first..=last].iter().find(|s| !s.is_absolute()))?;
        let size = if s.size > 0 {
            s.size
        } else {
            syms[after..].iter().find(|n| n.addr > start)?.addr - start
        };
        let offset = link_addr - start;
        (offset < size).then_some((
            Location {
                name: &s.name,
                offset,
                size,
            },
            link.source,
        ))
    }

    /// Kernel image bounds from every source (`_etext`, init text, `_end`).
    pub fn kernel_bounds(&self) -> KernelBounds {
        let a = |n: &str| self.address_of(n);
        KernelBounds {
            etext: a("_etext"),
            inittext: a("_sinittext").zip(a("_einittext")),
            end: a("_end"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm64::tests::{arm64, vmcoreinfo_text};
    use crate::kallsyms::tests::{sample, TABLES_VA};

    const KASLR: u64 = 0x1234_0000;

    /// A System.map in `nm -n` form for a KASLR-less link, matching the
    /// test kallsyms table and VMCOREINFO (swapper_pg_dir at
    /// ffff80000a000000).
    fn system_map() -> String {
        "0000000000000000 A _kernel_flags_le_lo32\n\
         ffff800008000000 t _head\n\
         ffff800008000000 T _text\n\
         ffff800008010000 T _stext\n\
         ffff800008010100 T schedule\n\
         ffff800008010300 T panic\n\
         ffff800008f10000 T _etext\n\
         ffff800009e10000 D __per_cpu_offset\n\
         ffff800009e20000 D __cpu_online_mask\n\
         ffff80000a000000 B swapper_pg_dir\n\
         ffff80000a100000 D crash_notes\n\
         ffff80000a200000 B _end\n"
            .to_string()
    }

    fn dump_symbols(kaslr: u64, with_kallsyms: bool) -> Symbols {
        let a = arm64(kaslr);
        let text = vmcoreinfo_text(kaslr);
        let vi = VmcoreInfo::parse(text.as_bytes()).unwrap();
        let k = with_kallsyms.then(|| {
            let mut b = sample();
            for s in &mut b.syms {
                s.0 += kaslr;
            }
            b.base += kaslr;
            b.layout(TABLES_VA).load().unwrap()
        });
        Symbols::from_dump(&a, &vi, k)
    }

    #[test]
    fn system_map_shifted_by_kerneloffset() {
        let mut s = dump_symbols(KASLR, true);
        let map = LinkSymbols::parse_system_map(system_map().as_bytes(), "System.map-6.1").unwrap();
        s.add_link_symbols(map).unwrap();
        assert_eq!(
            s.address_of_with_source("crash_notes"),
            Some((
                VirtAddr(0xffff_8000_0a10_0000 + KASLR),
                SymbolSource::SystemMap
            ))
        );
        assert_eq!(
            s.address_of("__per_cpu_offset"),
            Some(VirtAddr(0xffff_8000_09e1_0000 + KASLR))
        );
        assert_eq!(
            s.address_of_with_source("swapper_pg_dir"),
            Some((
                VirtAddr(0xffff_8000_0a00_0000 + KASLR),
                SymbolSource::Vmcoreinfo
            ))
        );
        assert_eq!(
            s.address_of_with_source("schedule"),
            Some((
                VirtAddr(0xffff_8000_0801_0100 + KASLR),
                SymbolSource::Kallsyms
            ))
        );
        // Absolute symbols are not moved.
        assert_eq!(s.address_of("_kernel_flags_le_lo32"), Some(VirtAddr(0)));
        // Functions resolve through kallsyms, data through the map.
        let (l, src) = s.lookup(VirtAddr(0xffff_8000_0801_011c + KASLR)).unwrap();
        assert_eq!(
            (l.to_string(), src),
            ("schedule+0x1c/0x80".to_string(), SymbolSource::Kallsyms)
        );
        let (l, src) = s.lookup(VirtAddr(0xffff_8000_0a10_0010 + KASLR)).unwrap();
        assert_eq!(
            (l.to_string(), src),
            (
                "crash_notes+0x10/0x100000".to_string(),
                SymbolSource::SystemMap
            )
        );
        assert_eq!(
            s.kernel_bounds().end,
            Some(VirtAddr(0xffff_8000_0a20_0000 + KASLR))
        );
    }

    #[test]
    fn map_from_another_build_is_refused() {
        let mut s = dump_symbols(KASLR, false);
        let other = system_map().replace("ffff800008010000 T _stext", "ffff800008020000 T _stext");
        let e = s
            .add_link_symbols(
                LinkSymbols::parse_system_map(other.as_bytes(), "System.map-old").unwrap(),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "System.map from a different build: System.map-old puts _stext at 0xffff80001a360000 \
             (link address 0xffff800008020000 + KERNELOFFSET 0x12340000) but the dump's \
             VMCOREINFO SYMBOL(_stext) says 0xffff80001a350000"
        );
        // Same _stext, but a data symbol the dump knows has moved.
        let other = system_map().replace(
            "ffff80000a000000 B swapper_pg_dir",
            "ffff80000a001000 B swapper_pg_dir",
        );
        let e = s
            .add_link_symbols(LinkSymbols::parse_system_map(other.as_bytes(), "m").unwrap())
            .unwrap_err();
        assert!(
            matches!(e, SymbolsError::DifferentBuild { ref symbol, .. } if symbol == "swapper_pg_dir"),
            "{e}"
        );
        // A function kallsyms knows has moved.
        let mut s = dump_symbols(KASLR, true);
        let other = system_map().replace("ffff800008010300 T panic", "ffff800008010310 T panic");
        let e = s
            .add_link_symbols(LinkSymbols::parse_system_map(other.as_bytes(), "m").unwrap())
            .unwrap_err();
        assert!(
            matches!(e, SymbolsError::DifferentBuild { ref symbol, dump_source: "kallsyms", .. } if symbol == "panic"),
            "{e}"
        );
        let no_stext = system_map().replace("ffff800008010000 T _stext\n", "");
        let e = s
            .add_link_symbols(LinkSymbols::parse_system_map(no_stext.as_bytes(), "m").unwrap())
            .unwrap_err();
        assert_eq!(e, SymbolsError::NoStext { origin: "m".into() });
    }

    #[test]
    fn system_map_errors_name_the_line() {
        let e = LinkSymbols::parse_system_map(b"ffff800008010000 T _stext\nzzzz T x\n", "S")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "S line 2: address \"zzzz\" is not hexadecimal"
        );
        let e = LinkSymbols::parse_system_map(b"ffff800008010000 T\n", "S").unwrap_err();
        assert_eq!(
            e.to_string(),
            "S line 1: expected `ADDR TYPE NAME`, found \"ffff800008010000 T\""
        );
        let e = LinkSymbols::parse_system_map(b"\nffff800008010000 TT _stext\n", "S").unwrap_err();
        assert_eq!(e.to_string(), "S line 2: type \"TT\" is not one character");
        // Debian's /boot/System.map-6.1.0-56-arm64, verbatim.
        let stub =
            b"ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n";
        let e = LinkSymbols::parse_system_map(stub, "/boot/System.map-6.1.0-56-arm64").unwrap_err();
        assert!(matches!(e, SymbolsError::Stub { .. }), "{e}");
    }

    /// Builds a minimal little-endian ELF64 `ET_EXEC` for aarch64 the way a
    /// vmlinux is shaped: `.text` at 0xffff800008010000 (0x400 bytes),
    /// `.data` at 0xffff800009000000 (0x100 bytes), `.symtab`, `.strtab`,
    /// `.shstrtab`. Symbols: `(name, value, size, st_info, st_shndx)`.
    fn tiny_vmlinux(syms: &[(&str, u64, u64, u8, u16)]) -> Vec<u8> {
        const TEXT: u64 = 0xffff_8000_0801_0000;
        const DATA: u64 = 0xffff_8000_0900_0000;
        let shstr = b"\0.text\0.data\0.symtab\0.strtab\0.shstrtab\0";
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 24];
        for (name, value, size, info, shndx) in syms {
            let off = strtab.len() as u32;
            strtab.extend_from_slice(name.as_bytes());
            strtab.push(0);
            symtab.extend_from_slice(&off.to_le_bytes());
            symtab.push(*info);
            symtab.push(0);
            symtab.extend_from_slice(&shndx.to_le_bytes());
            symtab.extend_from_slice(&value.to_le_bytes());
            symtab.extend_from_slice(&size.to_le_bytes());
        }
        let mut out = vec![0u8; 64];
        let text_off = out.len();
        out.resize(text_off + 0x400, 0);
        let data_off = out.len();
        out.resize(data_off + 0x100, 0);
        let sym_off = out.len();
        out.extend_from_slice(&symtab);
        let str_off = out.len();
        out.extend_from_slice(&strtab);
        let shstr_off = out.len();
        out.extend_from_slice(shstr);
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        let sh_off = out.len();
        // (name, type, flags, addr, offset, size, link, info, align, entsize)
        #[allow(clippy::type_complexity)]
        let shdrs: [(u32, u32, u64, u64, usize, usize, u32, u32, u64, u64); 6] = [
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            (1, 1, 6, TEXT, text_off, 0x400, 0, 0, 16, 0),
            (7, 1, 3, DATA, data_off, 0x100, 0, 0, 8, 0),
            (13, 2, 0, 0, sym_off, symtab.len(), 4, 1, 8, 24),
            (21, 3, 0, 0, str_off, strtab.len(), 0, 0, 1, 0),
            (29, 3, 0, 0, shstr_off, shstr.len(), 0, 0, 1, 0),
        ];
        for (name, ty, flags, addr, off, size, link, info, align, entsize) in shdrs {
            out.extend_from_slice(&name.to_le_bytes());
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&addr.to_le_bytes());
            out.extend_from_slice(&(off as u64).to_le_bytes());
            out.extend_from_slice(&(size as u64).to_le_bytes());
            out.extend_from_slice(&link.to_le_bytes());
            out.extend_from_slice(&info.to_le_bytes());
            out.extend_from_slice(&align.to_le_bytes());
            out.extend_from_slice(&entsize.to_le_bytes());
        }
        out[0..4].copy_from_slice(b"\x7fELF");
        out[4] = 2; // ELFCLASS64
        out[5] = 1; // ELFDATA2LSB
        out[6] = 1; // EV_CURRENT
        out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[24..32].copy_from_slice(&TEXT.to_le_bytes()); // e_entry
        out[40..48].copy_from_slice(&(sh_off as u64).to_le_bytes()); // e_shoff
        out[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        out[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        out[60..62].copy_from_slice(&6u16.to_le_bytes()); // e_shnum
        out[62..64].copy_from_slice(&5u16.to_le_bytes()); // e_shstrndx
        out
    }

    /// STB_GLOBAL/STB_LOCAL with STT_FUNC/STT_OBJECT/STT_NOTYPE.
    const GLOBAL_FUNC: u8 = 0x12;
    const GLOBAL_OBJECT: u8 = 0x11;
    const LOCAL_OBJECT: u8 = 0x01;
    const LOCAL_NOTYPE: u8 = 0x00;
    const SHN_ABS: u16 = 0xfff1;

    #[test]
    fn vmlinux_symtab() {
        let elf = tiny_vmlinux(&[
            ("_stext", 0xffff_8000_0801_0000, 0, GLOBAL_FUNC, 1),
            ("schedule", 0xffff_8000_0801_0100, 0x80, GLOBAL_FUNC, 1),
            ("$x", 0xffff_8000_0801_0100, 0, LOCAL_NOTYPE, 1),
            ("crash_notes", 0xffff_8000_0900_0010, 8, GLOBAL_OBJECT, 2),
            ("local_thing", 0xffff_8000_0900_0020, 4, LOCAL_OBJECT, 2),
            ("_kernel_size", 0x1234, 0, GLOBAL_OBJECT, SHN_ABS),
        ]);
        let v = LinkSymbols::parse_vmlinux(&elf, "vmlinux").unwrap();
        assert_eq!(v.source(), SymbolSource::Vmlinux);
        let schedule = v.get("schedule").unwrap();
        assert_eq!((schedule.kind, schedule.size), ('T', 0x80));
        assert!(v.get("$x").is_none());
        assert_eq!(v.get("crash_notes").unwrap().kind, 'D');
        assert_eq!(v.get("local_thing").unwrap().kind, 'd');
        assert_eq!(v.get("_kernel_size").unwrap().kind, 'A');
        let mut s = dump_symbols(KASLR, false);
        s.add_link_symbols(v).unwrap();
        assert_eq!(
            s.address_of("crash_notes"),
            Some(VirtAddr(0xffff_8000_0900_0010 + KASLR))
        );
        assert_eq!(s.address_of("_kernel_size"), Some(VirtAddr(0x1234)));
        let (l, src) = s.lookup(VirtAddr(0xffff_8000_0801_011c + KASLR)).unwrap();
        assert_eq!(
            (l.to_string(), src),
            ("schedule+0x1c/0x80".into(), SymbolSource::Vmlinux)
        );
        let (l, _) = s.lookup(VirtAddr(0xffff_8000_0900_0014 + KASLR)).unwrap();
        assert_eq!(l.to_string(), "crash_notes+0x4/0x8");
        // Past the end of a sized symbol: not inside anything.
        assert!(s.lookup(VirtAddr(0xffff_8000_0900_0019 + KASLR)).is_none());
        // A vmlinux of another build (its _stext elsewhere).
        let elf2 = tiny_vmlinux(&[("_stext", 0xffff_8000_0802_0000, 0, GLOBAL_FUNC, 1)]);
        let mut other = dump_symbols(KASLR, false);
        let e = other
            .add_link_symbols(LinkSymbols::parse_vmlinux(&elf2, "vmlinux").unwrap())
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("vmlinux from a different build: vmlinux puts _stext"),
            "{e}"
        );
        let e = LinkSymbols::parse_vmlinux(b"\x7fELF garbage", "vmlinux").unwrap_err();
        assert!(matches!(e, SymbolsError::Elf { .. }), "{e}");
    }
}
