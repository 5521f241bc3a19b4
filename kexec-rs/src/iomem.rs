//! `/proc/iomem`: the physical memory map, as a flat list of nested ranges.
//!
//! Each line is `<indent><start>-<end> : <name>` with two spaces of indent
//! per nesting level and inclusive hex bounds (`kernel/resource.c`,
//! `r_show()`). Non-root readers see every address as zero; that is
//! reported as [`IomemError::Hidden`] rather than as an empty map.

use crash_payload::PhysAddr;
use serde::Serialize;

/// `System RAM`.
pub const SYSTEM_RAM: &str = "System RAM";
/// `Crash kernel`: the `crashkernel=` reservation.
pub const CRASH_KERNEL: &str = "Crash kernel";
/// `Kernel code`: `__pa_symbol(_stext)` .. `__pa_symbol(__init_begin) - 1`
/// (`arch/arm64/kernel/setup.c`, `request_standard_resources()`).
pub const KERNEL_CODE: &str = "Kernel code";
/// `Kernel data`: `__pa_symbol(_sdata)` .. `__pa_symbol(_end) - 1`.
pub const KERNEL_DATA: &str = "Kernel data";

/// An inclusive physical range `[start, last]`, as the kernel's
/// `struct resource` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PhysRange {
    /// First byte.
    #[serde(serialize_with = "crate::ser_phys")]
    pub start: PhysAddr,
    /// Last byte (inclusive).
    #[serde(serialize_with = "crate::ser_phys")]
    pub last: PhysAddr,
}

impl PhysRange {
    /// `[start, start + size)`, or `None` for an empty or overflowing range.
    pub fn from_start_size(start: PhysAddr, size: u64) -> Option<Self> {
        let last = start.get().checked_add(size.checked_sub(1)?)?;
        Some(PhysRange {
            start,
            last: PhysAddr(last),
        })
    }

    /// Bytes covered; `None` only for the whole 64-bit space.
    pub fn size(&self) -> Option<u64> {
        (self.last.get() - self.start.get()).checked_add(1)
    }

    /// One past the last byte, `None` when that is 2^64.
    pub fn end(&self) -> Option<PhysAddr> {
        self.last.checked_add(1)
    }

    /// True when `other` lies entirely inside `self`.
    pub fn contains_range(&self, other: &PhysRange) -> bool {
        self.start <= other.start && other.last <= self.last
    }

    /// True when the ranges share a byte.
    pub fn overlaps(&self, other: &PhysRange) -> bool {
        self.start <= other.last && other.start <= self.last
    }
}

impl core::fmt::Display for PhysRange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#x}-{:#x}", self.start.get(), self.last.get())
    }
}

/// One line of `/proc/iomem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IomemEntry {
    /// Nesting level (0 = top level).
    pub depth: usize,
    /// The range.
    pub range: PhysRange,
    /// The resource name (`System RAM`, `Kernel code`, a device …).
    pub name: String,
}

/// Why `/proc/iomem` text could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IomemError {
    /// A line that is not `<start>-<end> : <name>`.
    #[error("/proc/iomem line {line}: {reason}: {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Every range reads as `00000000-00000000`: the reader is not root.
    #[error("/proc/iomem shows only zero addresses: it must be read as root (CAP_SYS_ADMIN)")]
    Hidden,
}

/// The parsed memory map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Iomem {
    /// Lines in file order.
    pub entries: Vec<IomemEntry>,
}

impl Iomem {
    /// Parses the text of `/proc/iomem`. Lines starting with `#` are comments
    /// (fixtures carry one saying how they were made).
    pub fn parse(text: &str) -> Result<Iomem, IomemError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let bad = |reason| IomemError::BadLine {
                line,
                text: raw.to_string(),
                reason,
            };
            let indent = raw.len() - raw.trim_start_matches(' ').len();
            if indent % 2 != 0 {
                return Err(bad("indent is not a multiple of two spaces"));
            }
            let depth = indent / 2;
            let body = &raw[indent..];
            let (range, name) = body
                .split_once(" : ")
                .ok_or_else(|| bad("expected `<start>-<end> : <name>`"))?;
            let (s, e) = range
                .split_once('-')
                .ok_or_else(|| bad("expected `<start>-<end>`"))?;
            let start = u64::from_str_radix(s.trim(), 16).map_err(|_| bad("start is not hex"))?;
            let last = u64::from_str_radix(e.trim(), 16).map_err(|_| bad("end is not hex"))?;
            if last < start {
                return Err(bad("end is below start"));
            }
            if let Some(parent) = entries
                .iter()
                .rev()
                .find(|p: &&IomemEntry| p.depth + 1 == depth)
            {
                let r = PhysRange {
                    start: PhysAddr(start),
                    last: PhysAddr(last),
                };
                if !(parent.range.contains_range(&r) || (start == 0 && last == 0)) {
                    return Err(bad("range lies outside its parent"));
                }
            } else if depth > 0 {
                return Err(bad("nested line without a parent"));
            }
            entries.push(IomemEntry {
                depth,
                range: PhysRange {
                    start: PhysAddr(start),
                    last: PhysAddr(last),
                },
                name: name.trim_end().to_string(),
            });
        }
        if !entries.is_empty()
            && entries
                .iter()
                .all(|e| e.range.start.get() == 0 && e.range.last.get() == 0)
        {
            return Err(IomemError::Hidden);
        }
        Ok(Iomem { entries })
    }

    /// Every range with exactly this name, at any depth, in file order.
    pub fn named(&self, name: &str) -> Vec<PhysRange> {
        self.entries
            .iter()
            .filter(|e| e.name == name)
            .map(|e| e.range)
            .collect()
    }

    /// `System RAM` ranges, sorted.
    pub fn system_ram(&self) -> Vec<PhysRange> {
        let mut v = self.named(SYSTEM_RAM);
        v.sort();
        v
    }

    /// `Crash kernel` ranges (a high and a low one with `crashkernel=,low`), sorted.
    pub fn crash_kernel(&self) -> Vec<PhysRange> {
        let mut v = self.named(CRASH_KERNEL);
        v.sort();
        v
    }

    /// The first `Kernel code` range.
    pub fn kernel_code(&self) -> Option<PhysRange> {
        self.named(KERNEL_CODE).first().copied()
    }

    /// The first `Kernel data` range.
    pub fn kernel_data(&self) -> Option<PhysRange> {
        self.named(KERNEL_DATA).first().copied()
    }
}

/// `ranges` minus every range in `holes`, sorted, empty pieces dropped.
pub fn subtract(ranges: &[PhysRange], holes: &[PhysRange]) -> Vec<PhysRange> {
    let mut out: Vec<PhysRange> = ranges.to_vec();
    for h in holes {
        let mut next = Vec::with_capacity(out.len() + 1);
        for r in out {
            if !r.overlaps(h) {
                next.push(r);
                continue;
            }
            if r.start < h.start {
                // h.start > r.start >= 0, so h.start - 1 does not underflow.
                next.push(PhysRange {
                    start: r.start,
                    last: PhysAddr(h.start.get() - 1),
                });
            }
            if h.last < r.last {
                next.push(PhysRange {
                    start: PhysAddr(h.last.get() + 1),
                    last: r.last,
                });
            }
        }
        out = next;
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# hand-written sample
09000000-09000fff : pl011@9000000
  09000000-09000fff : 9000000.pl011 pl011@9000000
40000000-bfffffff : System RAM
  40210000-4144ffff : Kernel code
  41450000-4178ffff : reserved
  41790000-41a6ffff : Kernel data
  afe00000-bfdfffff : Crash kernel
4010000000-401fffffff : PCI ECAM
";

    fn r(s: u64, l: u64) -> PhysRange {
        PhysRange {
            start: PhysAddr(s),
            last: PhysAddr(l),
        }
    }

    #[test]
    fn parses_nested_ranges() {
        let m = Iomem::parse(SAMPLE).unwrap();
        assert_eq!(m.entries.len(), 8);
        assert_eq!(m.entries[1].depth, 1);
        assert_eq!(m.entries[1].name, "9000000.pl011 pl011@9000000");
        assert_eq!(m.system_ram(), vec![r(0x4000_0000, 0xbfff_ffff)]);
        assert_eq!(m.crash_kernel(), vec![r(0xafe0_0000, 0xbfdf_ffff)]);
        assert_eq!(m.kernel_code(), Some(r(0x4021_0000, 0x4144_ffff)));
        assert_eq!(m.kernel_data(), Some(r(0x4179_0000, 0x41a6_ffff)));
        assert_eq!(m.crash_kernel()[0].size(), Some(256 << 20));
        assert_eq!(m.named("PCI ECAM"), vec![r(0x40_1000_0000, 0x40_1fff_ffff)]);
    }

    #[test]
    fn non_root_view_is_refused() {
        let t = "00000000-00000000 : System RAM\n  00000000-00000000 : Kernel code\n";
        assert_eq!(Iomem::parse(t), Err(IomemError::Hidden));
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(
            Iomem::parse("40000000-bfffffff System RAM\n"),
            Err(IomemError::BadLine {
                line: 1,
                text: "40000000-bfffffff System RAM".into(),
                reason: "expected `<start>-<end> : <name>`"
            })
        );
        assert!(matches!(
            Iomem::parse("40000000-3fffffff : System RAM\n"),
            Err(IomemError::BadLine {
                reason: "end is below start",
                ..
            })
        ));
        assert!(matches!(
            Iomem::parse("  40000000-4fffffff : Kernel code\n"),
            Err(IomemError::BadLine {
                reason: "nested line without a parent",
                ..
            })
        ));
        assert!(matches!(
            Iomem::parse("40000000-4fffffff : System RAM\n  50000000-50000fff : Kernel code\n"),
            Err(IomemError::BadLine {
                line: 2,
                reason: "range lies outside its parent",
                ..
            })
        ));
        assert!(matches!(
            Iomem::parse("4000zz00-4fffffff : System RAM\n"),
            Err(IomemError::BadLine {
                reason: "start is not hex",
                ..
            })
        ));
    }

    #[test]
    fn subtract_punches_holes() {
        let ram = [r(0x4000_0000, 0xbfff_ffff)];
        let crash = [r(0xafe0_0000, 0xbfdf_ffff)];
        assert_eq!(
            subtract(&ram, &crash),
            vec![r(0x4000_0000, 0xafdf_ffff), r(0xbfe0_0000, 0xbfff_ffff)]
        );
        // A hole covering a whole range removes it; one at the edge trims it.
        assert_eq!(subtract(&ram, &[r(0x3000_0000, 0xc000_0000)]), vec![]);
        assert_eq!(
            subtract(&ram, &[r(0x4000_0000, 0x4000_0fff)]),
            vec![r(0x4000_1000, 0xbfff_ffff)]
        );
    }

    #[test]
    fn range_size_edges() {
        assert_eq!(r(0, u64::MAX).size(), None);
        assert_eq!(r(0, u64::MAX).end(), None);
        assert_eq!(PhysRange::from_start_size(PhysAddr(0x1000), 0), None);
        assert_eq!(PhysRange::from_start_size(PhysAddr(u64::MAX), 2), None);
        assert_eq!(
            PhysRange::from_start_size(PhysAddr(0x1000), 0x1000),
            Some(r(0x1000, 0x1fff))
        );
    }
}
