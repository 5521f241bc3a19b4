//! Page-flag exclusion for `vmcore save` (makedumpfile dump levels).
//!
//! **TEMPORARY STAND-IN.** This file only carries the public API of the
//! `vmcore save` contract (`/work/briefs/save-contract.md`) so the writer can
//! be built and tested; [`page_filter`] keeps every page at every level
//! (it excludes nothing by page flags). The real filter, written on another
//! branch, replaces this file at merge. Zero pages (level bit 1) are never
//! decided here: the writer checks content as it reads pages.

use crate::format::Dump;

/// A makedumpfile dump level, 0..=31 (bit 1 zero pages, 2 cache without
/// private data, 4 cache with private data, 8 user pages, 16 free pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpLevel(u8);

impl DumpLevel {
    /// Pages filled with zeros.
    pub const ZERO: u8 = 1;
    /// Page cache pages without private data.
    pub const CACHE: u8 = 2;
    /// Page cache pages with private data.
    pub const CACHE_PRIVATE: u8 = 4;
    /// User process pages.
    pub const USER: u8 = 8;
    /// Free pages.
    pub const FREE: u8 = 16;

    /// A level from 0 to 31.
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

    /// True when this level excludes the class `bit` (one of the constants).
    pub fn excludes(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// Excluded pages per class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterStats {
    /// Page cache without private data.
    pub cache: u64,
    /// Page cache with private data.
    pub cache_private: u64,
    /// User pages.
    pub user: u64,
    /// Free pages.
    pub free: u64,
    /// Other excluded pages (hwpoison, offline, ...).
    pub other: u64,
}

/// Which pfns to keep, decided from page flags only.
#[derive(Debug, Clone)]
pub struct PageFilter {
    max_pfn: u64,
    stats: FilterStats,
}

impl PageFilter {
    /// Keeps every pfn below `max_pfn` (levels 0 and 1 need no page flags).
    pub fn keep_all(max_pfn: u64) -> PageFilter {
        PageFilter {
            max_pfn,
            stats: FilterStats::default(),
        }
    }

    /// One past the highest pfn of the dump.
    pub fn max_pfn(&self) -> u64 {
        self.max_pfn
    }

    /// True when `pfn` is kept.
    pub fn keep(&self, pfn: u64) -> bool {
        pfn < self.max_pfn
    }

    /// Excluded pages per class.
    pub fn stats(&self) -> &FilterStats {
        &self.stats
    }
}

/// Why a filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// A dump level outside 0..=31.
    #[error("dump level {0} is not in 0..31")]
    BadLevel(u32),
    /// The dump's page size is unknown or unusable.
    #[error("the dump's page size: {0}")]
    PageSize(String),
}

/// The filter for `level` (stand-in: keeps every page, see the module doc).
pub fn page_filter(dump: &dyn Dump, level: DumpLevel) -> Result<PageFilter, FilterError> {
    let _ = level;
    let ps = super::page_size(dump).map_err(FilterError::PageSize)?;
    Ok(PageFilter::keep_all(super::max_pfn(dump, ps)))
}
