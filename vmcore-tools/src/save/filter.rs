//! Which pages a makedumpfile dump level leaves out, decided from the dumped
//! kernel's `struct page` array, read out of the dump itself.
//!
//! Dump level bits (makedumpfile(8) `-d`): 1 zero pages, 2 page cache
//! without private data, 4 page cache with private data, 8 user data, 16
//! free pages. Zero pages are not decided here: the writer looks at each
//! page's content. (makedumpfile 1.7.2 writing kdump-compressed output
//! leaves zero pages set in the 2nd bitmap and points all of them at one
//! shared zero-filled `page_desc`; only its ELF output drops them from the
//! bitmap.) Everything else follows makedumpfile 1.7.2's
//! `__exclude_unnecessary_pages` for a Linux 6.1 kernel, page by page:
//!
//! 1. A compound tail page (`page.compound_head` bit 0) is never judged on
//!    its own: it goes with its head.
//! 2. Free (bit 16): the page is a buddy block head — `page._mapcount`
//!    (the 6.1 `page_type`) equals `NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)` and
//!    `PG_slab` is clear. The whole block, `1 << page.private` pages, goes;
//!    an order of `LENGTH(zone.free_area)` or more is implausible and the
//!    page is kept. (For kernels without `PAGE_BUDDY_MAPCOUNT_VALUE`, before
//!    2.6.38, makedumpfile walks the zones' free lists instead; not done
//!    here: the missing key is an error.)
//! 3. Cache (bit 2): on the LRU, or in the swap cache (`PG_swapcache` with
//!    `PG_swapbacked`), not anonymous (`page.mapping` bit 0 clear), and
//!    without `PG_private`.
//! 4. Cache with private (bit 4): the same, `PG_private` allowed (a page
//!    with `PG_private` is counted as cache-private, one without as cache).
//! 5. User (bit 8): anonymous (`page.mapping` bit 0), or the head of a
//!    hugetlbfs page (compound destructor `NUMBER(HUGETLB_PAGE_DTOR)`).
//! 6. Whatever the level: hardware-poisoned pages (when VMCOREINFO names
//!    `PG_hwpoison`) and pages logically offline (`_mapcount` equal to
//!    `NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)`, not slab) — counted as `other`.
//!    Levels 0 and 1 look at page flags for these only when VMCOREINFO names
//!    `PG_hwpoison`, as makedumpfile does (reading a poisoned page can stop
//!    the machine; offline pages may not be backed).
//!
//! The first rule that matches decides, in that order. A compound head that
//! matches takes its whole compound page with it: `1 << compound_order`
//! pages, the order and destructor read from the first tail page (one byte
//! each at `OFFSET(page.compound_order)` and `OFFSET(page.compound_dtor)`,
//! the layout since Linux 4.16, which 6.1 has; later kernels moved them into
//! `struct folio`); an order that is 64 or more, or that the head's pfn is
//! not aligned to, counts as 0.
//!
//! Finding `struct page` (SPARSEMEM, `mm/sparse.c`, `include/linux/mmzone.h`):
//! section `nr` covers pfns `nr << (SECTION_SIZE_BITS - PAGE_SHIFT)` onwards.
//! With SPARSEMEM_EXTREME (`LENGTH(mem_section)` absent or equal to the
//! number of roots, `2^(MAX_PHYSMEM_BITS - SECTION_SIZE_BITS)` sections at
//! `PAGESIZE / SIZE(mem_section)` per root), `SYMBOL(mem_section)` is the
//! root array: root `nr / per_root` points at a page of `struct mem_section`;
//! should no section validate that way, `SYMBOL(mem_section)` is taken as a
//! pointer to the root array, as makedumpfile does. Without it,
//! `SYMBOL(mem_section)` is the array of sections itself. A section's
//! `section_mem_map` holds flags in its low 5 bits (bit 0
//! `SECTION_MARKED_PRESENT`) and above them the section's `mem_map` minus
//! its first pfn times `SIZE(page)`. On arm64 the result lies in vmemmap,
//! read through the kernel page tables one mapping (page or block) at a
//! time. A section that is not present, or whose `mem_section` cannot be
//! read, has no `struct page`: its pages are kept. As in makedumpfile, pfns
//! past the last section with a `mem_map` are not part of the dump
//! ([`PageFilter::max_pfn`] shrinks to that end).
//!
//! Only pfns inside the dump's ranges are looked at (a page counts when its
//! first byte lies in a range, makedumpfile's `is_in_segs`), and only the
//! sections holding such pfns. Levels 0 and 1 never fail for want of page
//! flags: without the keys, or when `struct page` cannot be read, they keep
//! everything.
//!
//! Checked against makedumpfile 1.7.2 itself on real Debian 6.1 arm64 dumps
//! (`tests/save_filter.rs`): the same kept set and the same per-class
//! counts at levels 0, 1, 2, 4, 8, 16 and 31.
#![forbid(unsafe_code)]

use crash_payload::vmcoreinfo::{VmcoreInfo, VmcoreInfoError};
use crash_payload::VirtAddr;

use crate::arm64::{Arm64, Arm64Error};
use crate::format::{Dump, PhysRange};
use crate::mem::{MemError, PhysMem};

/// A makedumpfile dump level, 0..=31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DumpLevel(u8);

impl DumpLevel {
    /// Bit 1: zero pages (decided by content, by the writer).
    pub const ZERO: u8 = 1;
    /// Bit 2: page cache without private data.
    pub const CACHE: u8 = 2;
    /// Bit 4: page cache, private data or not.
    pub const CACHE_PRIVATE: u8 = 4;
    /// Bit 8: user process data (anonymous and hugetlbfs pages).
    pub const USER: u8 = 8;
    /// Bit 16: free pages.
    pub const FREE: u8 = 16;

    /// The level `level`, or [`FilterError::BadLevel`] above 31.
    pub fn new(level: u32) -> Result<DumpLevel, FilterError> {
        u8::try_from(level)
            .ok()
            .filter(|l| *l <= 31)
            .map(DumpLevel)
            .ok_or(FilterError::BadLevel(level))
    }

    /// The level's bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// True when the level excludes the class `bit` (one of the constants).
    pub fn excludes(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// True when the level needs page flags (any bit but [`DumpLevel::ZERO`]).
    fn needs_flags(self) -> bool {
        self.0 & !Self::ZERO != 0
    }
}

impl std::fmt::Display for DumpLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Pages excluded per class: pages of the dump's ranges, each counted once,
/// in the class that excluded it first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FilterStats {
    /// Page cache without private data (bit 2, or bit 4).
    pub cache: u64,
    /// Page cache with private data (bit 4).
    pub cache_private: u64,
    /// User data: anonymous and hugetlbfs pages (bit 8).
    pub user: u64,
    /// Free pages (bit 16).
    pub free: u64,
    /// Excluded at every level: hardware-poisoned and logically offline pages.
    pub other: u64,
}

impl FilterStats {
    /// All excluded pages.
    pub fn total(&self) -> u64 {
        self.cache + self.cache_private + self.user + self.free + self.other
    }
}

/// Which class excluded a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Cache,
    CachePrivate,
    User,
    Free,
    Other,
}

/// The pfns the page flags exclude.
#[derive(Debug, Clone)]
pub struct PageFilter {
    max_pfn: u64,
    /// Disjoint pfn spans of the dump, sorted, each with a bit per pfn set
    /// when excluded. Empty for [`PageFilter::keep_all`].
    spans: Vec<Span>,
    stats: FilterStats,
}

#[derive(Debug, Clone)]
struct Span {
    start: u64,
    end: u64,
    excluded: Vec<u64>,
}

impl PageFilter {
    /// Keeps every pfn below `max_pfn` (levels 0 and 1 without page flags).
    pub fn keep_all(max_pfn: u64) -> PageFilter {
        PageFilter {
            max_pfn,
            spans: Vec::new(),
            stats: FilterStats::default(),
        }
    }

    /// One past the highest pfn in the dump (for a filter read from page
    /// flags: at most the end of the last section with a `mem_map`).
    pub fn max_pfn(&self) -> u64 {
        self.max_pfn
    }

    /// False when the page flags exclude `pfn`, or `pfn >= max_pfn`. True
    /// otherwise, also for pfns outside the dump's ranges: whether a pfn
    /// is in the dump at all is [`Dump::ranges`]'s answer.
    pub fn keep(&self, pfn: u64) -> bool {
        if pfn >= self.max_pfn {
            return false;
        }
        match self.span_of(pfn) {
            Some(s) => {
                let i = pfn - s.start;
                s.excluded
                    .get((i / 64) as usize)
                    .is_none_or(|w| w & (1u64 << (i % 64)) == 0)
            }
            None => true,
        }
    }

    /// The first run `[a, b)` of pfns [`PageFilter::keep`] keeps within
    /// `[from, end)`, or `None` when it keeps none there. A run ends at the
    /// first excluded pfn or at the edge of one of the dump's spans (so two
    /// runs may adjoin); the bitmaps are scanned a word at a time.
    pub fn kept_run(&self, from: u64, end: u64) -> Option<(u64, u64)> {
        let end = end.min(self.max_pfn);
        let mut p = from;
        while p < end {
            let i = self.spans.partition_point(|s| s.end <= p);
            let Some(s) = self.spans.get(i) else {
                return Some((p, end));
            };
            if s.start > p {
                // Between spans: nothing is excluded there.
                return Some((p, end.min(s.start)));
            }
            let stop = end.min(s.end);
            let first = first_bit(&s.excluded, p - s.start, stop - s.start, false);
            let a = s.start + first;
            if a < stop {
                let last = first_bit(&s.excluded, first, stop - s.start, true);
                return Some((a, s.start + last));
            }
            p = stop;
        }
        None
    }

    /// Excluded pages per class.
    pub fn stats(&self) -> &FilterStats {
        &self.stats
    }

    fn span_of(&self, pfn: u64) -> Option<&Span> {
        let i = self.spans.partition_point(|s| s.end <= pfn);
        self.spans.get(i).filter(|s| s.start <= pfn)
    }

    /// Excludes `[start, end)` (clipped to the dump's spans and `max_pfn`),
    /// counting pages not excluded before.
    fn exclude(&mut self, start: u64, end: u64, class: Class) {
        let end = end.min(self.max_pfn);
        let mut n = 0u64;
        let mut i = self.spans.partition_point(|s| s.end <= start);
        while let Some(s) = self.spans.get_mut(i) {
            if s.start >= end {
                break;
            }
            for pfn in start.max(s.start)..end.min(s.end) {
                let k = pfn - s.start;
                if let Some(w) = s.excluded.get_mut((k / 64) as usize) {
                    let bit = 1u64 << (k % 64);
                    if *w & bit == 0 {
                        *w |= bit;
                        n += 1;
                    }
                }
            }
            i += 1;
        }
        let c = match class {
            Class::Cache => &mut self.stats.cache,
            Class::CachePrivate => &mut self.stats.cache_private,
            Class::User => &mut self.stats.user,
            Class::Free => &mut self.stats.free,
            Class::Other => &mut self.stats.other,
        };
        *c += n;
    }
}

/// The index of the first bit equal to `set` in `bits[from..to]`, or `to`.
fn first_bit(bits: &[u64], from: u64, to: u64, set: bool) -> u64 {
    let mut i = from;
    while i < to {
        let w = bits.get((i / 64) as usize).copied().unwrap_or(0);
        let w = (if set { w } else { !w }) >> (i % 64);
        if w != 0 {
            return (i + u64::from(w.trailing_zeros())).min(to);
        }
        i = (i / 64 + 1) * 64;
    }
    to
}

/// Why the filter could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A dump level above 31.
    #[error("dump level {0} is not in 0..=31")]
    BadLevel(u32),
    /// The level needs page flags and the dump carries no VMCOREINFO.
    #[error("dump level {0} needs the dump's VMCOREINFO, and the dump has none")]
    NoVmcoreinfo(u8),
    /// VMCOREINFO text that does not parse.
    #[error("{0}")]
    Vmcoreinfo(String),
    /// A key the level needs is absent.
    #[error("dump level {level} needs VMCOREINFO {key}, which this dump does not have")]
    Missing {
        /// The key, e.g. `NUMBER(PG_lru)`.
        key: String,
        /// The level asked for.
        level: u8,
    },
    /// A key whose value is unusable.
    #[error("VMCOREINFO {key}: {why}")]
    BadValue {
        /// The key.
        key: String,
        /// What is wrong with its value.
        why: String,
    },
    /// The address translation context could not be built.
    #[error(transparent)]
    Arm64(#[from] Arm64Error),
    /// No `mem_section` layout gave a valid `mem_map`.
    #[error("SYMBOL(mem_section) {addr}: no present section with a kernel mem_map, read as the root array or as a pointer to it ({why})")]
    MemSection {
        /// `SYMBOL(mem_section)`.
        addr: VirtAddr,
        /// The last failure.
        why: String,
    },
    /// `struct page` of a pfn in the dump could not be read.
    #[error("struct page of pfn {pfn:#x} at {addr}: {err}")]
    ReadPage {
        /// The first pfn of the failed read.
        pfn: u64,
        /// Its `struct page` address.
        addr: VirtAddr,
        /// The cause.
        err: MemError,
    },
    /// The dump's ranges cover more pages than a bitmap here may hold.
    #[error("the dump's ranges cover {pages} pages, more than the {MAX_PAGES} the filter handles")]
    TooLarge {
        /// Pages in the ranges.
        pages: u64,
    },
}

/// Most pages the filter keeps a bitmap for: 2^36 pages (256 TiB of 4 KiB
/// pages, an 8 GiB bitmap).
pub const MAX_PAGES: u64 = 1 << 36;

/// `SECTION_MAP_LAST_BIT` of Linux 4.13+ with `CONFIG_ZONE_DEVICE`
/// (makedumpfile's value): the low bits of `section_mem_map` that are flags.
const SECTION_MAP_FLAG_BITS: u64 = (1 << 5) - 1;
/// `SECTION_MARKED_PRESENT` (`include/linux/mmzone.h`).
const SECTION_MARKED_PRESENT: u64 = 1;
/// `PAGE_MAPPING_ANON` (`include/linux/page-flags.h`).
const PAGE_MAPPING_ANON: u64 = 1;
/// Struct pages read at a time (64 KiB of 64-byte `struct page`; 9 in
/// unit tests, so their few pages cross chunk ends).
const CHUNK_PAGES: u64 = if cfg!(test) { 9 } else { 1024 };
/// Largest `SIZE(page)` and `SIZE(mem_section)` believed.
const MAX_STRUCT: u64 = 4096;

/// The filter for `level` from the dump's own VMCOREINFO and memory.
///
/// Levels 0 and 1 need no VMCOREINFO: without the keys for it (or without
/// `NUMBER(PG_hwpoison)`) the result is [`PageFilter::keep_all`]; with them,
/// hwpoison and offline pages are left out as makedumpfile does.
///
/// Struct pages are read with `pread` where the file holds them verbatim
/// ([`super::input::Input`]): the ~1.6 % of RAM they take is not left
/// resident in the input mapping.
pub fn page_filter(dump: &dyn Dump, level: DumpLevel) -> Result<PageFilter, FilterError> {
    let page_size = dump.info().page_size;
    let input = super::input::Input::new(dump);
    filter_memory(&input, dump.vmcoreinfo(), dump.ranges(), page_size, level)
}

/// [`page_filter`] over any physical memory: `vmcoreinfo` is the note's
/// text, `ranges` the physical ranges present, `format_page_size` the page
/// size the container declares (used, as 4096 is without it, only when
/// VMCOREINFO has no `PAGESIZE` at levels 0 and 1).
pub fn filter_memory(
    mem: &dyn PhysMem,
    vmcoreinfo: Option<&[u8]>,
    ranges: &[PhysRange],
    format_page_size: Option<u64>,
    level: DumpLevel,
) -> Result<PageFilter, FilterError> {
    let vi = match vmcoreinfo.map(VmcoreInfo::parse) {
        Some(Ok(vi)) => Some(vi),
        Some(Err(e)) if level.needs_flags() => return Err(FilterError::Vmcoreinfo(e.to_string())),
        Some(Err(_)) => None,
        None if level.needs_flags() => return Err(FilterError::NoVmcoreinfo(level.bits())),
        None => None,
    };
    let keys = vi.as_ref().map(|vi| Keys { vi, level });
    let page_size = match keys.as_ref().map(|k| k.page_size()) {
        Some(Ok(ps)) => ps,
        Some(Err(e)) if level.needs_flags() => return Err(e),
        _ => format_page_size
            .filter(|p| p.is_power_of_two())
            .unwrap_or(4096),
    };
    let (spans, max_pfn) = spans_of(ranges, page_size)?;
    let Some(keys) = keys else {
        return Ok(PageFilter::keep_all(max_pfn));
    };
    let hwpoison_known = keys.vi.number("PG_hwpoison").is_some();
    if !level.needs_flags() && !hwpoison_known {
        return Ok(PageFilter::keep_all(max_pfn));
    }
    match read_flags(mem, &keys, spans, max_pfn) {
        // Levels 0 and 1 need nothing: when page flags cannot be had
        // (missing keys, an unreadable mem_map), keep everything.
        Err(_) if !level.needs_flags() => Ok(PageFilter::keep_all(max_pfn)),
        r => r,
    }
}

/// The filter from page flags, for the levels that need them (and for
/// hwpoison and offline pages at every level).
fn read_flags(
    mem: &dyn PhysMem,
    keys: &Keys<'_, '_>,
    spans: Vec<Span>,
    max_pfn: u64,
) -> Result<PageFilter, FilterError> {
    let level = keys.level;
    let setup = Layout::from_keys(keys).and_then(|l| {
        let arm = Arm64::from_vmcoreinfo(keys.vi)?;
        let sections = Sections::from_keys(keys, l.page_shift)?;
        Ok((l, arm, sections))
    });
    let (layout, arm, sections) = setup?;
    // Only sections holding pages of the dump are looked at.
    let shift = sections.pfn_section_shift;
    let mut wanted: Vec<u64> = Vec::new();
    for s in &spans {
        for nr in (s.start >> shift)..=((s.end - 1) >> shift) {
            if wanted.last() != Some(&nr) {
                wanted.push(nr);
            }
        }
    }
    let maps = sections.mem_maps(mem, &arm, &wanted, layout.size_page)?;
    // makedumpfile: pfns past the last section with a mem_map are not dumped.
    let mapped_end = maps
        .iter()
        .filter_map(|(nr, _)| {
            nr.checked_add(1)
                .and_then(|n| n.checked_mul(sections.pages_per_section()))
        })
        .max()
        .map(|e| e.min(max_pfn));
    let max_pfn = mapped_end.unwrap_or(max_pfn);
    let mut filter = PageFilter {
        max_pfn,
        spans: spans
            .into_iter()
            .filter(|s| s.start < max_pfn)
            .map(|mut s| {
                s.end = s.end.min(max_pfn);
                s.excluded = vec![0; (s.end - s.start).div_ceil(64) as usize];
                s
            })
            .collect(),
        stats: FilterStats::default(),
    };
    let mut scan = Scan {
        mem,
        arm: &arm,
        layout: &layout,
        level,
        buf: Vec::new(),
    };
    for &(nr, mem_map) in &maps {
        let pps = sections.pages_per_section();
        let sec_start = nr * pps;
        let sec_end = sec_start.saturating_add(pps).min(max_pfn);
        scan.section(&mut filter, sec_start, sec_end, mem_map)?;
    }
    Ok(filter)
}

/// The dump's ranges as merged, sorted pfn spans (a pfn belongs when its
/// first byte does), and one past the highest pfn.
fn spans_of(ranges: &[PhysRange], page_size: u64) -> Result<(Vec<Span>, u64), FilterError> {
    let mut v: Vec<(u64, u64)> = ranges
        .iter()
        .filter_map(|r| {
            let start = r.start.get().div_ceil(page_size);
            let end = r.start.get().saturating_add(r.size).div_ceil(page_size);
            (start < end).then_some((start, end))
        })
        .collect();
    v.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let pages: u64 = merged
        .iter()
        .map(|(s, e)| e - s)
        .fold(0, u64::saturating_add);
    if pages > MAX_PAGES {
        return Err(FilterError::TooLarge { pages });
    }
    let max_pfn = merged.last().map_or(0, |l| l.1);
    let spans = merged
        .into_iter()
        .map(|(start, end)| Span {
            start,
            end,
            excluded: Vec::new(),
        })
        .collect();
    Ok((spans, max_pfn))
}

/// VMCOREINFO lookups that name the key and the level in their errors.
struct Keys<'a, 'b> {
    vi: &'b VmcoreInfo<'a>,
    level: DumpLevel,
}

impl Keys<'_, '_> {
    fn missing(&self, key: String) -> FilterError {
        FilterError::Missing {
            key,
            level: self.level.bits(),
        }
    }

    fn bad(key: String, e: VmcoreInfoError) -> FilterError {
        FilterError::BadValue {
            key,
            why: e.to_string(),
        }
    }

    fn opt<T>(
        key: String,
        v: Option<Result<T, VmcoreInfoError>>,
    ) -> Result<Option<T>, FilterError> {
        v.transpose().map_err(|e| Self::bad(key, e))
    }

    fn req<T>(&self, key: String, v: Option<Result<T, VmcoreInfoError>>) -> Result<T, FilterError> {
        Self::opt(key.clone(), v)?.ok_or_else(|| self.missing(key))
    }

    fn page_size(&self) -> Result<u64, FilterError> {
        let ps = self.req("PAGESIZE".into(), self.vi.page_size())?;
        if !(4096..=65536).contains(&ps) || !ps.is_power_of_two() {
            return Err(FilterError::BadValue {
                key: "PAGESIZE".into(),
                why: format!("{ps} is not 4096, 16384 or 65536"),
            });
        }
        Ok(ps)
    }

    fn number(&self, name: &str) -> Result<i64, FilterError> {
        self.req(format!("NUMBER({name})"), self.vi.number(name))
    }

    fn number_opt(&self, name: &str) -> Result<Option<i64>, FilterError> {
        Self::opt(format!("NUMBER({name})"), self.vi.number(name))
    }

    fn offset(&self, name: &str) -> Result<u64, FilterError> {
        self.req(format!("OFFSET({name})"), self.vi.offset(name))
    }

    fn offset_opt(&self, name: &str) -> Result<Option<u64>, FilterError> {
        Self::opt(format!("OFFSET({name})"), self.vi.offset(name))
    }

    fn size(&self, name: &str) -> Result<u64, FilterError> {
        let key = format!("SIZE({name})");
        let v = self.req(key.clone(), self.vi.size(name))?;
        if v == 0 || v > MAX_STRUCT {
            return Err(FilterError::BadValue {
                key,
                why: format!("{v} is not in 1..={MAX_STRUCT}"),
            });
        }
        Ok(v)
    }

    /// A `PG_*` bit number, 0..=63.
    fn flag_bit(&self, name: &str) -> Result<u32, FilterError> {
        let v = self.number(name)?;
        Self::bit_of(name, v)
    }

    fn flag_bit_opt(&self, name: &str) -> Result<Option<u32>, FilterError> {
        self.number_opt(name)?
            .map(|v| Self::bit_of(name, v))
            .transpose()
    }

    fn bit_of(name: &str, v: i64) -> Result<u32, FilterError> {
        u32::try_from(v)
            .ok()
            .filter(|b| *b < 64)
            .ok_or_else(|| FilterError::BadValue {
                key: format!("NUMBER({name})"),
                why: format!("{v} is not a bit number 0..=63"),
            })
    }

    /// A `_mapcount` value, compared as the 32-bit `int` it is.
    fn mapcount_opt(&self, name: &str) -> Result<Option<u32>, FilterError> {
        self.number_opt(name)?
            .map(|v| {
                i32::try_from(v)
                    .map(|v| v as u32)
                    .map_err(|_| FilterError::BadValue {
                        key: format!("NUMBER({name})"),
                        why: format!("{v} does not fit the 32-bit _mapcount"),
                    })
            })
            .transpose()
    }
}

/// `struct page` field offsets and flag numbers.
#[derive(Debug, Clone)]
struct Layout {
    page_shift: u32,
    size_page: usize,
    flags: usize,
    mapping: Option<usize>,
    compound_head: usize,
    compound_order: usize,
    compound_dtor: Option<usize>,
    mapcount: Option<usize>,
    private: Option<usize>,
    pg_head_mask: u64,
    /// `PG_lru`, `PG_private`, `PG_swapcache`, `PG_swapbacked` (absent
    /// before 4.10: then the swap-cache bit counts on its own).
    cache_bits: Option<(u32, u32, u32, Option<u32>)>,
    pg_slab: Option<u32>,
    pg_hwpoison: Option<u32>,
    buddy_mapcount: Option<u32>,
    offline_mapcount: Option<u32>,
    hugetlb_dtor: Option<u64>,
    /// `LENGTH(zone.free_area)` (`MAX_ORDER`).
    free_area_len: Option<u64>,
}

impl Layout {
    fn from_keys(k: &Keys<'_, '_>) -> Result<Layout, FilterError> {
        let level = k.level;
        let page_size = k.page_size()?;
        let size_page = k.size("page")?;
        let field = |name: &str, v: u64, width: u64| -> Result<usize, FilterError> {
            if v.checked_add(width).is_none_or(|end| end > size_page) {
                return Err(FilterError::BadValue {
                    key: format!("OFFSET({name})"),
                    why: format!("a {width}-byte field at {v} does not fit in the {size_page}-byte struct page"),
                });
            }
            Ok(v as usize)
        };
        let req = |name: &str, width: u64| k.offset(name).and_then(|v| field(name, v, width));
        let opt = |name: &str, width: u64| {
            k.offset_opt(name)?
                .map(|v| field(name, v, width))
                .transpose()
        };
        let cache = level.excludes(DumpLevel::CACHE) || level.excludes(DumpLevel::CACHE_PRIVATE);
        let user = level.excludes(DumpLevel::USER);
        let free = level.excludes(DumpLevel::FREE);
        let mapping = if cache || user {
            Some(req("page.mapping", 8)?)
        } else {
            opt("page.mapping", 8)?
        };
        let cache_bits = if cache {
            Some((
                k.flag_bit("PG_lru")?,
                k.flag_bit("PG_private")?,
                k.flag_bit("PG_swapcache")?,
                k.flag_bit_opt("PG_swapbacked")?,
            ))
        } else {
            None
        };
        let (mapcount, private, pg_slab, buddy_mapcount) = if free {
            let buddy = k.mapcount_opt("PAGE_BUDDY_MAPCOUNT_VALUE")?;
            let buddy =
                buddy.ok_or_else(|| k.missing("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)".into()))?;
            (
                Some(req("page._mapcount", 4)?),
                Some(req("page.private", 8)?),
                Some(k.flag_bit("PG_slab")?),
                Some(buddy),
            )
        } else {
            (
                opt("page._mapcount", 4)?,
                opt("page.private", 8)?,
                k.flag_bit_opt("PG_slab")?,
                None,
            )
        };
        let hugetlb_dtor = if user {
            k.number_opt("HUGETLB_PAGE_DTOR")?.map(|v| v as u64)
        } else {
            None
        };
        let compound_dtor = if hugetlb_dtor.is_some() {
            Some(req("page.compound_dtor", 1)?)
        } else {
            opt("page.compound_dtor", 1)?
        };
        let free_area_len = Keys::opt(
            "LENGTH(zone.free_area)".into(),
            k.vi.length("zone.free_area"),
        )?;
        Ok(Layout {
            page_shift: page_size.trailing_zeros(),
            size_page: size_page as usize,
            flags: req("page.flags", 8)?,
            mapping,
            compound_head: req("page.compound_head", 8)?,
            compound_order: req("page.compound_order", 1)?,
            compound_dtor,
            mapcount,
            private,
            pg_head_mask: k.number("PG_head_mask")? as u64,
            cache_bits,
            pg_slab,
            pg_hwpoison: k.flag_bit_opt("PG_hwpoison")?,
            buddy_mapcount,
            offline_mapcount: k.mapcount_opt("PAGE_OFFLINE_MAPCOUNT_VALUE")?,
            hugetlb_dtor,
            free_area_len,
        })
    }
}

/// The SPARSEMEM section table.
#[derive(Debug, Clone)]
struct Sections {
    symbol: VirtAddr,
    size: u64,
    map_offset: u64,
    pfn_section_shift: u32,
    /// Sections per root page (SPARSEMEM_EXTREME), or `None`: a flat array.
    per_root: Option<u64>,
}

impl Sections {
    fn from_keys(k: &Keys<'_, '_>, page_shift: u32) -> Result<Sections, FilterError> {
        let symbol = k.req("SYMBOL(mem_section)".into(), k.vi.symbol("mem_section"))?;
        let size = k.size("mem_section")?;
        let map_offset = k.offset("mem_section.section_mem_map")?;
        if map_offset.checked_add(8).is_none_or(|e| e > size) {
            return Err(FilterError::BadValue {
                key: "OFFSET(mem_section.section_mem_map)".into(),
                why: format!("an 8-byte field at {map_offset} does not fit in the {size}-byte struct mem_section"),
            });
        }
        let section_bits = k.number("SECTION_SIZE_BITS")?;
        let physmem_bits = k.number("MAX_PHYSMEM_BITS")?;
        // At least 256 pages per section, so visiting sections costs less
        // than visiting pages (every kernel has thousands).
        if !(i64::from(page_shift) + 8 <= section_bits && section_bits < 64) {
            return Err(FilterError::BadValue {
                key: "NUMBER(SECTION_SIZE_BITS)".into(),
                why: format!(
                    "{section_bits} is not between PAGE_SHIFT + 8 ({}) and 63",
                    page_shift + 8
                ),
            });
        }
        if !(section_bits..=64).contains(&physmem_bits) {
            return Err(FilterError::BadValue {
                key: "NUMBER(MAX_PHYSMEM_BITS)".into(),
                why: format!(
                    "{physmem_bits} is not between SECTION_SIZE_BITS ({section_bits}) and 64"
                ),
            });
        }
        let per_root_extreme = (1u64 << page_shift) / size;
        let nr_mem_sections = 1u64 << (physmem_bits - section_bits).min(63);
        let roots_extreme = nr_mem_sections.div_ceil(per_root_extreme.max(1));
        let length = Keys::opt("LENGTH(mem_section)".into(), k.vi.length("mem_section"))?;
        let extreme = length.is_none_or(|l| l == roots_extreme) && per_root_extreme > 0;
        Ok(Sections {
            symbol: VirtAddr(symbol),
            size,
            map_offset,
            pfn_section_shift: (section_bits as u32) - page_shift,
            per_root: extreme.then_some(per_root_extreme),
        })
    }

    fn pages_per_section(&self) -> u64 {
        1u64 << self.pfn_section_shift
    }

    /// `(section number, address of the section's first struct page)` for
    /// every present one of `sections` (sorted section numbers).
    fn mem_maps(
        &self,
        mem: &dyn PhysMem,
        arm: &Arm64,
        sections: &[u64],
        size_page: usize,
    ) -> Result<Vec<(u64, VirtAddr)>, FilterError> {
        let Some(per_root) = self.per_root else {
            return self
                .decode(mem, arm, sections, size_page, |nr| {
                    Ok(nr
                        .checked_mul(self.size)
                        .and_then(|o| self.symbol.0.checked_add(o)))
                })
                .map_err(|why| FilterError::MemSection {
                    addr: self.symbol,
                    why,
                });
        };
        // Root entries are read one by one (sections come sorted, so one
        // cached entry suffices): the array may be far larger than needed.
        let by_roots = |roots: VirtAddr| {
            let mut cached: Option<(u64, u64)> = None;
            self.decode(mem, arm, sections, size_page, move |nr| {
                let idx = nr / per_root;
                let root = match cached {
                    Some((i, r)) if i == idx => r,
                    _ => {
                        let at = idx
                            .checked_mul(8)
                            .and_then(|o| roots.0.checked_add(o))
                            .ok_or_else(|| format!("root {idx} past the address space"))?;
                        let r = read_kernel_u64(arm, mem, VirtAddr(at))
                            .map_err(|e| format!("reading root {idx} at {:#x}: {e}", at))?;
                        cached = Some((idx, r));
                        r
                    }
                };
                if root == 0 {
                    return Ok(None);
                }
                Ok(root.checked_add((nr % per_root) * self.size))
            })
        };
        // The root array at SYMBOL(mem_section) (what VMCOREINFO exports),
        // then SYMBOL(mem_section) as a pointer to it.
        let why = match by_roots(self.symbol) {
            Ok(v) => return Ok(v),
            Err(why) => why,
        };
        let second = read_kernel_u64(arm, mem, self.symbol)
            .map_err(|e| format!("reading the pointer at {}: {e}", self.symbol))
            .and_then(|p| by_roots(VirtAddr(p)));
        second.map_err(|w2| FilterError::MemSection {
            addr: self.symbol,
            why: format!("as the array: {why}; as a pointer: {w2}"),
        })
    }

    /// Reads and decodes each section's `section_mem_map` (`addr_of` gives
    /// a section's address); errs when no section is present or a present
    /// one's `mem_map` is not a kernel address (makedumpfile's
    /// `validate_mem_section`).
    fn decode(
        &self,
        mem: &dyn PhysMem,
        arm: &Arm64,
        sections: &[u64],
        size_page: usize,
        mut addr_of: impl FnMut(u64) -> Result<Option<u64>, String>,
    ) -> Result<Vec<(u64, VirtAddr)>, String> {
        let mut out = Vec::new();
        for &nr in sections {
            let Some(at) = addr_of(nr)?.and_then(|a| a.checked_add(self.map_offset)) else {
                continue;
            };
            if at < arm.layout().page_offset {
                continue;
            }
            // An unreadable mem_section has no mem_map (as in makedumpfile).
            let Ok(coded) = read_kernel_u64(arm, mem, VirtAddr(at)) else {
                continue;
            };
            if coded & SECTION_MARKED_PRESENT == 0 {
                continue;
            }
            let first_pfn = nr << self.pfn_section_shift;
            let mem_map = (coded & !SECTION_MAP_FLAG_BITS)
                .wrapping_add(first_pfn.wrapping_mul(size_page as u64));
            if mem_map < arm.layout().page_offset {
                return Err(format!(
                    "section {nr}: section_mem_map {coded:#x} decodes to mem_map {mem_map:#x}, not a kernel address"
                ));
            }
            out.push((nr, VirtAddr(mem_map)));
        }
        if out.is_empty() {
            return Err(format!(
                "no section holding the dump's pages is present ({} looked at)",
                sections.len()
            ));
        }
        Ok(out)
    }
}

fn le_u64_of(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(..8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

#[inline]
fn le_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).map_or(0, le_u64_of)
}

#[inline]
fn le_u32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads kernel virtual memory: a linear-map range in one physical read,
/// anything else one page-table mapping (page or block) at a time.
fn read_kernel(
    arm: &Arm64,
    mem: &dyn PhysMem,
    va: VirtAddr,
    buf: &mut [u8],
) -> Result<(), MemError> {
    let wraps = || MemError::Translate {
        addr: va,
        why: format!(
            "a read of {} bytes wraps around the address space",
            buf.len()
        ),
    };
    let last =
        va.0.checked_add((buf.len() as u64).saturating_sub(1))
            .ok_or_else(wraps)?;
    if let (Some(pa), Some(pa_last)) = (arm.lm_to_phys(va), arm.lm_to_phys(VirtAddr(last))) {
        if pa_last.0.checked_sub(pa.0) == Some(last - va.0) {
            return mem.read_phys(pa, buf);
        }
    }
    let mut done = 0usize;
    while done < buf.len() {
        let cur = VirtAddr(va.0 + done as u64);
        let (pa, room) = match arm.kimg_to_phys(cur) {
            Some(pa) => (pa, arm.page_size() - (cur.0 & (arm.page_size() - 1))),
            None => {
                let t = arm.walk(mem, cur)?;
                (t.phys, t.size - (cur.0 & (t.size - 1)))
            }
        };
        let n = usize::try_from(room)
            .unwrap_or(usize::MAX)
            .min(buf.len() - done);
        mem.read_phys(pa, &mut buf[done..done + n])?;
        done += n;
    }
    Ok(())
}

fn read_kernel_u64(arm: &Arm64, mem: &dyn PhysMem, va: VirtAddr) -> Result<u64, MemError> {
    let mut b = [0u8; 8];
    read_kernel(arm, mem, va, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Per-scan state: the memory, the layout, and a reusable buffer of
/// `struct page`s.
struct Scan<'a> {
    mem: &'a dyn PhysMem,
    arm: &'a Arm64,
    layout: &'a Layout,
    level: DumpLevel,
    buf: Vec<u8>,
}

impl Scan<'_> {
    /// Judges the pfns of one section `[sec_start, sec_end)` that lie in
    /// the dump, `mem_map` being the section's first `struct page`.
    fn section(
        &mut self,
        filter: &mut PageFilter,
        sec_start: u64,
        sec_end: u64,
        mem_map: VirtAddr,
    ) -> Result<(), FilterError> {
        let sz = self.layout.size_page as u64;
        // Where judging resumes after a multi-page exclusion.
        let mut resume = sec_start;
        let first = filter.spans.partition_point(|s| s.end <= sec_start);
        let mut si = first;
        while let Some((a, b)) = filter.spans.get(si).map(|s| (s.start, s.end)) {
            if a >= sec_end {
                break;
            }
            si += 1;
            let a = a.max(sec_start).max(resume);
            let b = b.min(sec_end);
            if a >= b {
                continue;
            }
            let mut pfn = a;
            while pfn < b {
                // A chunk of struct pages, then the one after it (for a
                // compound head at the end; its absence is no error).
                let c = pfn;
                let d = b.min(c.saturating_add(CHUNK_PAGES));
                let at = VirtAddr(mem_map.0.wrapping_add((c - sec_start) * sz));
                let n = ((d - c) * sz) as usize;
                self.buf.resize(n + sz as usize, 0);
                read_kernel(self.arm, self.mem, at, &mut self.buf[..n]).map_err(|err| {
                    FilterError::ReadPage {
                        pfn: c,
                        addr: at,
                        err,
                    }
                })?;
                let next_ok = d < sec_end
                    && read_kernel(
                        self.arm,
                        self.mem,
                        VirtAddr(at.0.wrapping_add(n as u64)),
                        &mut self.buf[n..],
                    )
                    .is_ok();
                while pfn < d {
                    let i = ((pfn - c) * sz) as usize;
                    let has_next = pfn + 1 < d || next_ok;
                    match self.judge(pfn, i, has_next) {
                        Some((class, pages)) => {
                            let end = pfn.saturating_add(pages);
                            filter.exclude(pfn, end, class);
                            pfn = end;
                            resume = resume.max(end);
                        }
                        None => pfn += 1,
                    }
                }
            }
        }
        Ok(())
    }

    /// The class and page count excluding `pfn`, whose struct page is at
    /// `self.buf[i..]`, or `None` to keep it.
    #[inline]
    fn judge(&self, pfn: u64, i: usize, has_next: bool) -> Option<(Class, u64)> {
        let l = self.layout;
        let sz = l.size_page;
        let page = self.buf.get(i..i + sz)?;
        let flags = le_u64(page, l.flags);
        let bit = |b: u32| flags & (1u64 << b) != 0;
        // A tail goes with its head.
        if le_u64(page, l.compound_head) & 1 != 0 {
            return None;
        }
        let mut order = 0u32;
        let mut dtor = 0u64;
        if flags & l.pg_head_mask != 0 && has_next {
            if let Some(next) = self.buf.get(i + sz..i + 2 * sz) {
                order = u32::from(next.get(l.compound_order).copied().unwrap_or(0));
                dtor = l
                    .compound_dtor
                    .and_then(|o| next.get(o).copied())
                    .map_or(0, u64::from);
                if order >= 64 || pfn & ((1u64 << order) - 1) != 0 {
                    order = 0;
                }
            }
        }
        let pages = 1u64 << order;
        let mapping = l.mapping.map_or(0, |o| le_u64(page, o));
        let anon = mapping & PAGE_MAPPING_ANON != 0;
        let mapcount = l.mapcount.map(|o| le_u32(page, o));
        let slab = l.pg_slab.is_some_and(bit);
        let lv = self.level;
        if lv.excludes(DumpLevel::FREE) {
            if let (Some(buddy), Some(mc)) = (l.buddy_mapcount, mapcount) {
                if !slab && mc == buddy {
                    let order = l.private.map_or(0, |o| le_u64(page, o));
                    // An implausible order keeps the page (makedumpfile warns).
                    if order >= 64 || l.free_area_len.is_some_and(|n| order >= n) {
                        return None;
                    }
                    return Some((Class::Free, 1u64 << order));
                }
            }
        }
        if let Some((lru, private, swapcache, swapbacked)) = l.cache_bits {
            let cache = bit(lru) || (swapbacked.is_none_or(bit) && bit(swapcache));
            if cache && !anon {
                let has_private = bit(private);
                if lv.excludes(DumpLevel::CACHE) && !has_private {
                    return Some((Class::Cache, pages));
                }
                if lv.excludes(DumpLevel::CACHE_PRIVATE) {
                    let c = if has_private {
                        Class::CachePrivate
                    } else {
                        Class::Cache
                    };
                    return Some((c, pages));
                }
            }
        }
        if lv.excludes(DumpLevel::USER) && (anon || l.hugetlb_dtor.is_some_and(|d| d == dtor)) {
            return Some((Class::User, pages));
        }
        if l.pg_hwpoison.is_some_and(bit) {
            return Some((Class::Other, pages));
        }
        if let (Some(off), Some(mc), Some(_)) = (l.offline_mapcount, mapcount, l.pg_slab) {
            if !slab && mc == off {
                return Some((Class::Other, pages));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm64::tests::{arm64, tables_for, vmcoreinfo_text};
    use crate::mem::FakeMem;
    use crash_payload::PhysAddr;

    /// First pfn of the fake RAM (0x4000_0000), section 8 with 128 MiB sections.
    const BASE_PFN: u64 = 0x40000;
    /// Pfns described (two pages of `struct page`).
    const N: u64 = 128;
    /// vmemmap address of `BASE_PFN`'s struct page (`VMEMMAP_START + pfn * 64`).
    const MEM_MAP_VA: u64 = 0xffff_fc00_0000_0000 + BASE_PFN * 64;
    /// Where the two pages of struct pages are: not contiguous.
    const MEM_MAP_PA: [u64; 2] = [0x7200_0000, 0x7300_5000];
    const ROOTS_PA: u64 = 0x7100_0000;
    const SECTIONS_PA: u64 = 0x7100_1000;
    const PTR_PA: u64 = 0x7100_3000;
    /// Flag bits of Debian's 6.1 (`include/linux/page-flags.h`).
    const PG_LRU: u64 = 1 << 4;
    const PG_SLAB: u64 = 1 << 9;
    const PG_SWAPCACHE: u64 = 1 << 10;
    const PG_PRIVATE: u64 = 1 << 13;
    const PG_HEAD: u64 = 1 << 16;
    const PG_SWAPBACKED: u64 = 1 << 19;
    const PG_HWPOISON: u64 = 1 << 22;
    const BUDDY: u32 = -129i32 as u32;
    const OFFLINE: u32 = -257i32 as u32;

    /// The linear-map address of `pa` (PHYS_OFFSET 0x4000_0000, 48-bit VA).
    fn lm(pa: u64) -> u64 {
        pa - 0x4000_0000 + 0xffff_0000_0000_0000
    }

    /// VMCOREINFO as Debian's 6.1 arm64 kernel writes it (the keys the
    /// filter reads, with the real values), `SYMBOL(mem_section)` at `ms`.
    fn vmcoreinfo(ms: u64) -> String {
        vmcoreinfo_text(0)
            + &format!(
                "SYMBOL(mem_section)={ms:x}\nLENGTH(mem_section)=16384\nSIZE(mem_section)=32\n\
                 OFFSET(mem_section.section_mem_map)=0\nNUMBER(SECTION_SIZE_BITS)=27\n\
                 NUMBER(MAX_PHYSMEM_BITS)=48\nSIZE(page)=64\nOFFSET(page.flags)=0\n\
                 OFFSET(page._refcount)=52\nOFFSET(page.mapping)=24\nOFFSET(page.lru)=8\n\
                 OFFSET(page._mapcount)=48\nOFFSET(page.private)=40\nOFFSET(page.compound_dtor)=16\n\
                 OFFSET(page.compound_order)=17\nOFFSET(page.compound_head)=8\n\
                 LENGTH(zone.free_area)=11\nNUMBER(PG_lru)=4\nNUMBER(PG_private)=13\n\
                 NUMBER(PG_swapcache)=10\nNUMBER(PG_swapbacked)=19\nNUMBER(PG_slab)=9\n\
                 NUMBER(PG_hwpoison)=22\nNUMBER(PG_head_mask)=65536\n\
                 NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129\nNUMBER(HUGETLB_PAGE_DTOR)=2\n\
                 NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257\n"
            )
    }

    /// `N` struct pages, builder style.
    #[derive(Clone)]
    struct Pages(Vec<[u8; 64]>);

    impl Pages {
        /// Ordinary kernel pages: no flags, `_mapcount` -1.
        fn new() -> Pages {
            let mut p = [0u8; 64];
            p[48..52].copy_from_slice(&u32::MAX.to_le_bytes());
            Pages(vec![p; N as usize])
        }
        fn u64(mut self, i: u64, off: usize, v: u64) -> Self {
            self.0[i as usize][off..off + 8].copy_from_slice(&v.to_le_bytes());
            self
        }
        fn flags(self, i: u64, f: u64) -> Self {
            self.u64(i, 0, f)
        }
        fn mapping(self, i: u64, m: u64) -> Self {
            self.u64(i, 24, m)
        }
        fn private(self, i: u64, v: u64) -> Self {
            self.u64(i, 40, v)
        }
        fn mapcount(mut self, i: u64, v: u32) -> Self {
            self.0[i as usize][48..52].copy_from_slice(&v.to_le_bytes());
            self
        }
        /// A compound page of `1 << order` at `i`, destructor `dtor`.
        fn compound(mut self, i: u64, order: u8, dtor: u8) -> Self {
            let head_va = MEM_MAP_VA + i * 64;
            self = self.flags(i, PG_HEAD);
            for t in 1..(1u64 << order) {
                self = self.u64(i + t, 8, head_va | 1);
            }
            self.0[(i + 1) as usize][16] = dtor;
            self.0[(i + 1) as usize][17] = order;
            self
        }
        fn bytes(&self) -> Vec<u8> {
            self.0.iter().flatten().copied().collect()
        }
    }

    /// The fake dump's memory: page tables mapping the two vmemmap pages,
    /// the SPARSEMEM_EXTREME root array and section 8's `mem_section`, a
    /// pointer to the root array, and the struct pages.
    fn memory(pages: &Pages) -> FakeMem {
        let a = arm64(0);
        let mut pt = tables_for(&a);
        pt.map_page(MEM_MAP_VA, MEM_MAP_PA[0]);
        pt.map_page(MEM_MAP_VA + 4096, MEM_MAP_PA[1]);
        let mut mem = pt.build();
        let b = pages.bytes();
        mem.put(PhysAddr(MEM_MAP_PA[0]), &b[..4096]);
        mem.put(PhysAddr(MEM_MAP_PA[1]), &b[4096..]);
        mem.put(PhysAddr(ROOTS_PA), &lm(SECTIONS_PA).to_le_bytes());
        let mut sections = vec![0u8; 4096];
        // Section 8: coded mem_map = mem_map - first pfn * SIZE(page),
        // SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP.
        let coded = (MEM_MAP_VA - BASE_PFN * 64) | 3;
        sections[8 * 32..8 * 32 + 8].copy_from_slice(&coded.to_le_bytes());
        mem.put(PhysAddr(SECTIONS_PA), &sections);
        mem.put(PhysAddr(PTR_PA), &lm(ROOTS_PA).to_le_bytes());
        mem
    }

    /// RAM pfns `BASE_PFN + [0, 48)` and `+ [56, 128)`: 48..56 is a hole.
    fn ranges() -> Vec<PhysRange> {
        let r = |s: u64, e: u64| PhysRange {
            start: PhysAddr((BASE_PFN + s) * 4096),
            size: (e - s) * 4096,
        };
        vec![r(56, N), r(0, 48)]
    }

    /// One of each kind of page.
    fn zoo() -> Pages {
        Pages::new()
            // A free buddy block of order 3 at 0..8.
            .mapcount(0, BUDDY)
            .private(0, 3)
            // Page cache without and with private data, file-backed.
            .flags(8, PG_LRU)
            .mapping(8, 0xffff_0000_1234_0000)
            .flags(9, PG_LRU | PG_PRIVATE)
            .mapping(9, 0xffff_0000_1234_0000)
            // An anonymous page on the LRU: user, never cache.
            .flags(10, PG_LRU)
            .mapping(10, 0xffff_0000_5678_0001)
            // Swap cache (swap-backed), not on the LRU, file mapping.
            .flags(11, PG_SWAPCACHE | PG_SWAPBACKED)
            // A hugetlbfs page of order 2 at 12..16.
            .compound(12, 2, 2)
            .flags(16, PG_HWPOISON)
            .mapcount(17, OFFLINE)
            // Slab page whose page_type word happens to read as buddy.
            .flags(18, PG_SLAB)
            .mapcount(18, BUDDY)
            // An anonymous THP of order 1 at 44, 45: with 9-page chunks its
            // head is the last struct page of a chunk.
            .compound(44, 1, 0)
            .mapping(44, 0xffff_0000_5678_0001)
            // A buddy page in the hole: never judged.
            .mapcount(48, BUDDY)
            // A free block with an order past MAX_ORDER: kept.
            .mapcount(64, BUDDY)
            .private(64, 11)
            // An anonymous THP of order 3 at 72..80.
            .compound(72, 3, 0)
            .mapping(72, 0xffff_0000_5678_0001)
            // A head that is not aligned to its order: order 0.
            .compound(81, 1, 0)
            .flags(81, PG_HEAD | PG_LRU)
    }

    fn run(vi: &str, pages: &Pages, level: u32) -> Result<PageFilter, FilterError> {
        let mem = memory(pages);
        filter_memory(
            &mem,
            Some(vi.as_bytes()),
            &ranges(),
            None,
            DumpLevel::new(level)?,
        )
    }

    /// Pfn offsets (from BASE_PFN) the filter excludes, within 0..N.
    fn excluded(f: &PageFilter) -> Vec<u64> {
        (0..N).filter(|i| !f.keep(BASE_PFN + i)).collect()
    }

    /// Every pfn of `[from, end)` that `kept_run` yields, checking the
    /// runs are ordered, non-empty and within bounds.
    fn runs_flat(f: &PageFilter, from: u64, end: u64) -> Vec<u64> {
        let mut v = Vec::new();
        let mut p = from;
        while let Some((a, b)) = f.kept_run(p, end) {
            assert!(p <= a && a < b && b <= end, "{p} {a} {b}");
            v.extend(a..b);
            p = b;
        }
        v
    }

    #[test]
    fn kept_runs_are_the_kept_pfns() {
        let f = run(&vmcoreinfo(lm(ROOTS_PA)), &zoo(), 31).unwrap();
        let (from, end) = (BASE_PFN - 5, BASE_PFN + N + 70);
        let want: Vec<u64> = (from..end).filter(|&p| f.keep(p)).collect();
        assert_eq!(runs_flat(&f, from, end), want);
        // Spans with a gap, excluded bits across word edges, max_pfn cut.
        let mut ex = vec![0u64; 3];
        for k in [0u64, 1, 63, 64, 65, 127, 128, 150] {
            ex[(k / 64) as usize] |= 1 << (k % 64);
        }
        let f = PageFilter {
            max_pfn: 1200,
            spans: vec![
                Span {
                    start: 100,
                    end: 260,
                    excluded: ex,
                },
                Span {
                    start: 1000,
                    end: 1300,
                    excluded: vec![u64::MAX; 1],
                },
            ],
            stats: FilterStats::default(),
        };
        for (from, end) in [(0, 2000), (100, 101), (163, 300), (990, 1070), (1190, 1300)] {
            let want: Vec<u64> = (from..end).filter(|&p| f.keep(p)).collect();
            assert_eq!(runs_flat(&f, from, end), want, "{from}..{end}");
        }
        assert_eq!(f.kept_run(100, 102), None);
        assert_eq!(f.kept_run(0, 2000), Some((0, 100)));
        assert_eq!(f.kept_run(100, 2000), Some((102, 163)));
    }

    fn stats(cache: u64, cache_private: u64, user: u64, free: u64, other: u64) -> FilterStats {
        FilterStats {
            cache,
            cache_private,
            user,
            free,
            other,
        }
    }

    #[test]
    fn free_level_excludes_whole_buddy_blocks() {
        let f = run(&vmcoreinfo(lm(ROOTS_PA)), &zoo(), 16).unwrap();
        // 0..8 the order-3 block; 16, 17 hwpoison and offline. Not the slab
        // page (18), not the hole (48), not the order-11 block (64).
        assert_eq!(excluded(&f), [0, 1, 2, 3, 4, 5, 6, 7, 16, 17]);
        assert_eq!(*f.stats(), stats(0, 0, 0, 8, 2));
        assert_eq!(f.max_pfn(), BASE_PFN + N);
        assert!(
            f.keep(BASE_PFN + 48),
            "a pfn outside the ranges is not the filter's to drop"
        );
        assert!(f.keep(BASE_PFN - 1));
        assert!(!f.keep(BASE_PFN + N), "past max_pfn");
    }

    #[test]
    fn cache_levels_split_on_pg_private() {
        let vi = vmcoreinfo(lm(ROOTS_PA));
        let f = run(&vi, &zoo(), 2).unwrap();
        // 8 (cache), 11 (swap cache); 9 has PG_private; 10 is anonymous;
        // 81 is an LRU head whose order does not fit its pfn: one page.
        assert_eq!(excluded(&f), [8, 11, 16, 17, 81]);
        assert_eq!(*f.stats(), stats(3, 0, 0, 0, 2));
        let f = run(&vi, &zoo(), 4).unwrap();
        assert_eq!(excluded(&f), [8, 9, 11, 16, 17, 81]);
        assert_eq!(*f.stats(), stats(3, 1, 0, 0, 2));
    }

    #[test]
    fn user_level_takes_anon_and_hugetlb_pages() {
        let f = run(&vmcoreinfo(lm(ROOTS_PA)), &zoo(), 8).unwrap();
        let mut want = vec![10, 12, 13, 14, 15, 16, 17, 44, 45];
        want.extend(72..80);
        assert_eq!(excluded(&f), want);
        assert_eq!(*f.stats(), stats(0, 0, 15, 0, 2));
    }

    #[test]
    fn level_31_and_the_first_rule_wins() {
        let f = run(&vmcoreinfo(lm(ROOTS_PA)), &zoo(), 31).unwrap();
        let mut want: Vec<u64> = (0..18).collect();
        want.extend([44, 45]);
        want.extend(72..80);
        want.push(81);
        assert_eq!(excluded(&f), want);
        assert_eq!(*f.stats(), stats(3, 1, 15, 8, 2));
    }

    #[test]
    fn level_0_drops_only_hwpoison_and_offline() {
        let vi = vmcoreinfo(lm(ROOTS_PA));
        for level in [0, 1] {
            let f = run(&vi, &zoo(), level).unwrap();
            assert_eq!(excluded(&f), [16, 17]);
            assert_eq!(*f.stats(), stats(0, 0, 0, 0, 2));
        }
        // Without PG_hwpoison makedumpfile does not look at page flags at
        // levels 0 and 1; without the memory-model keys neither can we.
        for gone in ["NUMBER(PG_hwpoison)", "SYMBOL(mem_section)"] {
            let vi = vi.replace(gone, "X");
            let f = run(&vi, &zoo(), 1).unwrap();
            assert_eq!(excluded(&f), Vec::<u64>::new(), "{gone}");
            assert_eq!(f.max_pfn(), BASE_PFN + N);
        }
        let f = filter_memory(
            &FakeMem::default(),
            None,
            &ranges(),
            Some(16384),
            DumpLevel::new(0).unwrap(),
        )
        .unwrap();
        assert_eq!(f.max_pfn(), (BASE_PFN + N) / 4);
    }

    #[test]
    fn mem_section_as_a_pointer_to_the_roots() {
        let f = run(&vmcoreinfo(lm(PTR_PA)), &zoo(), 16).unwrap();
        assert_eq!(excluded(&f), [0, 1, 2, 3, 4, 5, 6, 7, 16, 17]);
    }

    #[test]
    fn pfns_past_the_last_mem_map_are_not_dumped() {
        // A range in section 9, which has no mem_map.
        let mut r = ranges();
        r.push(PhysRange {
            start: PhysAddr(0x4800_0000),
            size: 0x2000,
        });
        let f = filter_memory(
            &memory(&zoo()),
            Some(vmcoreinfo(lm(ROOTS_PA)).as_bytes()),
            &r,
            None,
            DumpLevel::new(16).unwrap(),
        )
        .unwrap();
        assert_eq!(f.max_pfn(), 0x48000);
        assert!(!f.keep(0x48000));
    }

    #[test]
    fn missing_keys_are_named() {
        let vi = vmcoreinfo(lm(ROOTS_PA));
        let cases = [
            (2, "NUMBER(PG_lru)"),
            (4, "NUMBER(PG_private)"),
            (8, "OFFSET(page.mapping)"),
            (8, "OFFSET(page.compound_dtor)"),
            (16, "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)"),
            (16, "OFFSET(page._mapcount)"),
            (31, "SYMBOL(mem_section)"),
            (31, "NUMBER(SECTION_SIZE_BITS)"),
            (31, "NUMBER(PG_head_mask)"),
        ];
        for (level, key) in cases {
            let e = run(&vi.replace(key, "X"), &zoo(), level).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("dump level {level} needs VMCOREINFO {key}, which this dump does not have")
            );
        }
        // Level 2 does not need the buddy keys, nor level 16 the cache ones.
        run(
            &vi.replace("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", "X"),
            &zoo(),
            2,
        )
        .unwrap();
        run(&vi.replace("NUMBER(PG_lru)", "X"), &zoo(), 16).unwrap();
        let e = filter_memory(
            &FakeMem::default(),
            None,
            &ranges(),
            None,
            DumpLevel::new(31).unwrap(),
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "dump level 31 needs the dump's VMCOREINFO, and the dump has none"
        );
    }

    #[test]
    fn bad_values_and_levels() {
        assert_eq!(
            DumpLevel::new(32).unwrap_err().to_string(),
            "dump level 32 is not in 0..=31"
        );
        let l = DumpLevel::new(24).unwrap();
        assert!(
            l.excludes(DumpLevel::USER)
                && l.excludes(DumpLevel::FREE)
                && !l.excludes(DumpLevel::CACHE)
        );
        assert_eq!(l.bits(), 24);
        let vi = vmcoreinfo(lm(ROOTS_PA));
        let e = run(
            &vi.replace("NUMBER(PG_lru)=4", "NUMBER(PG_lru)=64"),
            &zoo(),
            2,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "VMCOREINFO NUMBER(PG_lru): 64 is not a bit number 0..=63"
        );
        let e = run(
            &vi.replace("OFFSET(page.private)=40", "OFFSET(page.private)=60"),
            &zoo(),
            16,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "VMCOREINFO OFFSET(page.private): a 8-byte field at 60 does not fit in the 64-byte struct page"
        );
        let e = run(
            &vi.replace("SECTION_SIZE_BITS)=27", "SECTION_SIZE_BITS)=19"),
            &zoo(),
            16,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "VMCOREINFO NUMBER(SECTION_SIZE_BITS): 19 is not between PAGE_SHIFT + 8 (20) and 63"
        );
        let e = run(&vi.replace("SIZE(page)=64", "SIZE(page)=0"), &zoo(), 16).unwrap_err();
        assert_eq!(e.to_string(), "VMCOREINFO SIZE(page): 0 is not in 1..=4096");
    }

    #[test]
    fn unreadable_struct_pages_and_sections_are_errors() {
        let vi = vmcoreinfo(lm(ROOTS_PA));
        // The second vmemmap page's backing is not in the dump.
        let mut mem = memory(&zoo());
        mem.ranges.retain(|(a, _)| a.0 != MEM_MAP_PA[1]);
        let e = filter_memory(
            &mem,
            Some(vi.as_bytes()),
            &ranges(),
            None,
            DumpLevel::new(16).unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "struct page of pfn {:#x} at {}: physical address 0x73005000 is not in the dump",
                BASE_PFN + 56,
                VirtAddr(MEM_MAP_VA + 56 * 64)
            )
        );
        // No section present at all.
        let mut mem = memory(&zoo());
        mem.ranges.retain(|(a, _)| a.0 != SECTIONS_PA);
        let e = filter_memory(
            &mem,
            Some(vi.as_bytes()),
            &ranges(),
            None,
            DumpLevel::new(16).unwrap(),
        )
        .unwrap_err();
        assert!(matches!(e, FilterError::MemSection { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("no section holding the dump's pages is present (1 looked at)"),
            "{e}"
        );
        // Level 0 needs no page flags: it keeps everything instead.
        let f = filter_memory(
            &mem,
            Some(vi.as_bytes()),
            &ranges(),
            None,
            DumpLevel::new(0).unwrap(),
        )
        .unwrap();
        assert_eq!(excluded(&f), Vec::<u64>::new());
        assert_eq!(f.max_pfn(), BASE_PFN + N);
    }

    #[test]
    fn huge_ranges_are_refused() {
        let r = [PhysRange {
            start: PhysAddr(0),
            size: u64::MAX,
        }];
        let e = filter_memory(
            &FakeMem::default(),
            None,
            &r,
            None,
            DumpLevel::new(0).unwrap(),
        )
        .unwrap_err();
        assert!(matches!(e, FilterError::TooLarge { .. }), "{e}");
    }
}
