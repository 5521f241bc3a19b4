//! The identity map the purgatory verifies under: 4 KiB granule, 48-bit
//! input addresses (four levels, starting at level 0), built into a pool of
//! tables inside the purgatory's own `.bss`.
//!
//! What is mapped (everything else faults):
//! - every segment and the purgatory image: Normal write-back cacheable,
//!   inner shareable, in 2 MiB blocks (the 2 MiB around each range; RAM is
//!   at least 2 MiB-aligned on the platforms this targets);
//! - the UART: one 4 KiB Device-nGnRnE page, never executable.
//!
//! A Device page that would fall inside a Normal block (or the reverse) is
//! refused rather than given two attributes: the caller then verifies with
//! the MMU off. Descriptors per the Arm ARM (D8.3, VMSAv8-64 translation
//! table format); pure data here so the host tests can walk the tables.
#![forbid(unsafe_code)]

/// Entries per table (4 KiB granule).
pub const ENTRIES: usize = 512;
/// One translation table.
pub type Table = [u64; ENTRIES];
/// Bytes per table.
pub const TABLE_SIZE: u64 = 4096;
/// Bytes mapped by a level-2 block.
pub const BLOCK_2M: u64 = 2 << 20;
/// Bytes mapped by a level-3 page.
pub const PAGE_4K: u64 = 4096;
/// First address the 48-bit map cannot reach.
pub const VA_LIMIT: u64 = 1 << 48;
/// `TCR_ELx.T0SZ` for 48-bit input addresses.
pub const T0SZ: u64 = 64 - 48;

/// `MAIR_ELx`: attribute index 0 is Device-nGnRnE (0x00), index 1 is Normal
/// inner/outer write-back non-transient read/write-allocate (0xff).
pub const MAIR: u64 = 0xff << 8;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;

/// Descriptor type bits: table (levels 0-2) and page (level 3).
pub const DESC_TABLE: u64 = 0b11;
/// Descriptor type bits: block (levels 1-2).
pub const DESC_BLOCK: u64 = 0b01;
/// Descriptor type bits: page (level 3).
pub const DESC_PAGE: u64 = 0b11;
/// `AP[1]`: EL0 access in two-range regimes; RES1 in the EL2 (E2H = 0) regime.
pub const AP1: u64 = 1 << 6;
/// `SH = 0b11`: inner shareable.
pub const SH_INNER: u64 = 0b11 << 8;
/// Access flag (set, so no access-flag fault).
pub const AF: u64 = 1 << 10;
/// `PXN` (two-range regimes only; RES0 in the EL2 regime).
pub const PXN: u64 = 1 << 53;
/// `UXN` / `XN`.
pub const UXN: u64 = 1 << 54;
/// Output address bits of a descriptor (4 KiB granule, 48-bit OA).
pub const OA_MASK: u64 = 0x0000_ffff_ffff_f000;

/// Which translation regime the tables are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    /// EL1&0, or EL2&0 (EL2 with `HCR_EL2.E2H = 1`): same descriptor format.
    TwoRanges,
    /// EL2 with `HCR_EL2.E2H = 0`: one VA range, `AP[1]` RES1, no `PXN`.
    El2,
}

/// Memory type of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mem {
    /// RAM: cacheable, executable.
    Normal,
    /// MMIO: Device-nGnRnE, never executable.
    Device,
}

/// Why the map could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// The table pool is used up.
    OutOfTables,
    /// An address at or above 2^48.
    TooHigh(u64),
    /// `addr` is already mapped with another memory type or granularity.
    Conflict(u64),
}

/// Lower attributes for a block or page of type `mem` in `regime`.
pub fn attrs(mem: Mem, regime: Regime) -> u64 {
    let ap = match regime {
        Regime::TwoRanges => 0, // AP[2:1] = 00: read/write at EL1/EL2, no EL0 access
        Regime::El2 => AP1,     // AP[1] RES1; AP[2] = 0: read/write
    };
    match (mem, regime) {
        (Mem::Normal, _) => ATTR_NORMAL | SH_INNER | AF | ap,
        (Mem::Device, Regime::TwoRanges) => ATTR_DEVICE | AF | ap | PXN | UXN,
        (Mem::Device, Regime::El2) => ATTR_DEVICE | AF | ap | UXN,
    }
}

/// A pool of tables at physical address `base_pa` (table `i` is at
/// `base_pa + i * 4096`); table 0 is the level-0 root.
#[derive(Debug)]
pub struct Builder<'a> {
    tables: &'a mut [Table],
    base_pa: u64,
    used: usize,
    regime: Regime,
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (39 - 9 * level)) & 0x1ff) as usize
}

impl<'a> Builder<'a> {
    /// Starts an empty map; zeroes the root. `tables` must not be empty and
    /// `base_pa` must be 4 KiB-aligned (the caller's contract).
    pub fn new(
        tables: &'a mut [Table],
        base_pa: u64,
        regime: Regime,
    ) -> Result<Builder<'a>, MapError> {
        let root = tables.first_mut().ok_or(MapError::OutOfTables)?;
        root.fill(0);
        Ok(Builder {
            tables,
            base_pa,
            used: 1,
            regime,
        })
    }

    /// Physical address of the root table (for `TTBR0_ELx`).
    pub fn root_pa(&self) -> u64 {
        self.base_pa
    }

    /// Tables used so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The tables (for tests and for cache maintenance).
    pub fn tables(&self) -> &[Table] {
        &self.tables[..self.used]
    }

    fn table_index(&self, desc: u64) -> usize {
        ((desc & OA_MASK) - self.base_pa) as usize / TABLE_SIZE as usize
    }

    /// The table at `level + 1` under entry `idx` of table `t`, allocated
    /// when the entry is invalid.
    fn next(&mut self, t: usize, idx: usize, addr: u64) -> Result<usize, MapError> {
        let d = self.tables[t][idx];
        if d & 1 == 0 {
            let n = self.used;
            let new = self.tables.get_mut(n).ok_or(MapError::OutOfTables)?;
            new.fill(0);
            self.used += 1;
            self.tables[t][idx] = (self.base_pa + n as u64 * TABLE_SIZE) | DESC_TABLE;
            Ok(n)
        } else if d & 0b11 == DESC_TABLE {
            Ok(self.table_index(d))
        } else {
            Err(MapError::Conflict(addr))
        }
    }

    /// Maps `[start, end)` as Normal memory in 2 MiB blocks.
    pub fn map_normal(&mut self, start: u64, end: u64) -> Result<(), MapError> {
        if end <= start {
            return Ok(());
        }
        let first = start & !(BLOCK_2M - 1);
        let last = end
            .checked_add(BLOCK_2M - 1)
            .ok_or(MapError::TooHigh(end))?
            & !(BLOCK_2M - 1);
        if last > VA_LIMIT {
            return Err(MapError::TooHigh(end));
        }
        let want = attrs(Mem::Normal, self.regime) | DESC_BLOCK;
        let mut va = first;
        while va < last {
            let l1 = self.next(0, index(va, 0), va)?;
            let l2 = self.next(l1, index(va, 1), va)?;
            let e = &mut self.tables[l2][index(va, 2)];
            let d = want | va;
            if *e == 0 {
                *e = d;
            } else if *e != d {
                return Err(MapError::Conflict(va));
            }
            va += BLOCK_2M;
        }
        Ok(())
    }

    /// Maps the 4 KiB page holding `addr` as Device memory.
    pub fn map_device_page(&mut self, addr: u64) -> Result<(), MapError> {
        if addr >= VA_LIMIT {
            return Err(MapError::TooHigh(addr));
        }
        let va = addr & !(PAGE_4K - 1);
        let l1 = self.next(0, index(va, 0), va)?;
        let l2 = self.next(l1, index(va, 1), va)?;
        let l3 = self.next(l2, index(va, 2), va)?;
        let d = attrs(Mem::Device, self.regime) | DESC_PAGE | va;
        let e = &mut self.tables[l3][index(va, 3)];
        if *e == 0 || *e == d {
            *e = d;
            Ok(())
        } else {
            Err(MapError::Conflict(va))
        }
    }

    /// Walks the tables like the MMU: the descriptor that maps `va` and the
    /// physical address it translates to.
    pub fn translate(&self, va: u64) -> Option<(u64, u64)> {
        let mut t = 0;
        for level in 0..4 {
            let d = self.tables[t][index(va, level)];
            if d & 1 == 0 {
                return None;
            }
            let is_table = d & 0b11 == DESC_TABLE && level < 3;
            if !is_table {
                let size = 1u64 << (39 - 9 * level);
                let base = d & OA_MASK & !(size - 1);
                return Some((d, base | (va & (size - 1))));
            }
            t = self.table_index(d);
        }
        None
    }
}

/// `TCR_ELx` for these tables: T0SZ for 48 bits, walks inner/outer
/// write-back read/write-allocate cacheable and inner shareable, 4 KiB
/// granule, TTBR1 walks disabled (two-range regimes), and the physical
/// address size from `ID_AA64MMFR0_EL1.PARange` (capped at 48 bits, the
/// most these tables can output).
pub fn tcr(regime: Regime, pa_range: u64) -> u64 {
    const IRGN0_WBWA: u64 = 0b01 << 8;
    const ORGN0_WBWA: u64 = 0b01 << 10;
    const SH0_INNER: u64 = 0b11 << 12;
    const TG0_4K: u64 = 0b00 << 14;
    let ps = pa_range.min(0b101);
    let common = T0SZ | IRGN0_WBWA | ORGN0_WBWA | SH0_INNER | TG0_4K;
    match regime {
        // EPD1 (bit 23) = 1, IPS at 34:32.
        Regime::TwoRanges => common | (1 << 23) | (ps << 32),
        // PS at 18:16; bits 31 and 23 are RES1.
        Regime::El2 => common | (ps << 16) | (1 << 31) | (1 << 23),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> [Table; 8] {
        [[0xdead_beef; ENTRIES]; 8]
    }

    #[test]
    fn normal_blocks_and_a_device_page() {
        let mut p = pool();
        let base = 0x42e0_4000;
        let mut b = Builder::new(&mut p, base, Regime::TwoRanges).unwrap();
        b.map_normal(0x4020_0000, 0x4020_0000 + 40 * (1 << 20) + 5)
            .unwrap();
        b.map_normal(0x42e0_0000, 0x42e1_a000).unwrap();
        b.map_device_page(0x0900_0123).unwrap();
        // L0, L1, L2 for 0x4000_0000..; L2 + L3 for the UART's GiB.
        assert_eq!(b.used(), 5);
        let (d, pa) = b.translate(0x4123_4567).unwrap();
        assert_eq!(pa, 0x4123_4567);
        assert_eq!(d & 0b11, DESC_BLOCK);
        assert_eq!(
            d & !OA_MASK,
            attrs(Mem::Normal, Regime::TwoRanges) | DESC_BLOCK
        );
        assert_eq!(d & (0b111 << 2), 1 << 2);
        assert_eq!(b.translate(0x42a0_0000 + 7).map(|x| x.1), Some(0x42a0_0007));
        assert_eq!(b.translate(0x42e1_9ff8).map(|x| x.1), Some(0x42e1_9ff8));
        // Nothing outside the 2 MiB-rounded ranges.
        assert_eq!(b.translate(0x4000_0000), None);
        assert_eq!(b.translate(0x42c0_0000), None);
        assert_eq!(b.translate(0x4300_0000), None);
        let (d, pa) = b.translate(0x0900_0018).unwrap();
        assert_eq!(pa, 0x0900_0018);
        assert_eq!(d & 0b11, DESC_PAGE);
        assert_eq!(d & (PXN | UXN), PXN | UXN);
        assert_eq!(d & (0b111 << 2), 0);
        assert_eq!(b.translate(0x0900_1000), None);
        // Table descriptors point inside the pool.
        assert_eq!(b.tables()[0][0] & OA_MASK, base + 4096);
        assert_eq!(b.tables()[0][1], 0);
    }

    #[test]
    fn el2_descriptors() {
        let mut p = pool();
        let mut b = Builder::new(&mut p, 0x8000_0000, Regime::El2).unwrap();
        b.map_normal(0x1_0000_0000, 0x1_0000_1000).unwrap();
        b.map_device_page(0x0900_0000).unwrap();
        let (d, _) = b.translate(0x1_0000_0000).unwrap();
        assert_eq!(d & AP1, AP1);
        assert_eq!(d & (PXN | UXN), 0);
        let (d, _) = b.translate(0x0900_0000).unwrap();
        assert_eq!(d & (PXN | UXN), UXN);
        assert_eq!(d & AP1, AP1);
    }

    #[test]
    fn refusals() {
        let mut p = pool();
        let mut b = Builder::new(&mut p, 0x1000, Regime::TwoRanges).unwrap();
        b.map_normal(0x4000_0000, 0x4000_1000).unwrap();
        assert_eq!(
            b.map_device_page(0x4010_0000),
            Err(MapError::Conflict(0x4010_0000))
        );
        b.map_device_page(0x0900_0000).unwrap();
        assert_eq!(
            b.map_normal(0x0900_0000, 0x0900_1000),
            Err(MapError::Conflict(0x0900_0000))
        );
        assert_eq!(
            b.map_normal(0xffff_ffff_f000, 0x1_0000_0000_0000 + 1),
            Err(MapError::TooHigh(0x1_0000_0000_0001))
        );
        // Overlapping Normal ranges are fine.
        b.map_normal(0x4000_0000, 0x4060_0000).unwrap();
        let mut one = [[0u64; ENTRIES]; 2];
        let mut b = Builder::new(&mut one, 0, Regime::TwoRanges).unwrap();
        assert_eq!(
            b.map_normal(0x4000_0000, 0x4000_1000),
            Err(MapError::OutOfTables)
        );
    }

    #[test]
    fn tcr_values() {
        // 40-bit PA (PARange 0b010): IPS = 2 at bit 32.
        assert_eq!(
            tcr(Regime::TwoRanges, 2),
            16 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (2 << 32)
        );
        assert_eq!(tcr(Regime::El2, 6) >> 16 & 7, 5);
        assert_eq!(tcr(Regime::El2, 2) & (1 << 31 | 1 << 23), 1 << 31 | 1 << 23);
    }
}
