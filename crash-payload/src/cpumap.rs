//! The loader's CPU-map note: which crash-notes buffer belongs to which CPU.
//!
//! `/proc/vmcore` merges every CPU's note into one PT_NOTE and drops CPUs
//! that saved nothing, so note order cannot number CPUs. kexec-rs writes the
//! elfcorehdr itself and adds one more PT_NOTE segment holding this note;
//! the capture kernel merges it like any other, and `vmcore verify` reads
//! the CPU numbering and the expected set from it.
//!
//! Format (all little-endian), note name `KEXEC-RS`, type [`NT_KEXECRS_CPUMAP`]:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `version` = 1 |
//! | 4 | 4 | `entry_size` = 32 (readers skip bytes past the fields they know) |
//! | 8 | 4 | `count` |
//! | 12 | 4 | `flags` = 0 (reserved) |
//! | 16 + 32·i | 4 | `cpu`: logical CPU id |
//! | +4 | 4 | `flags`: bit 0 online at load time, bit 1 present |
//! | +8 | 8 | `mpidr`: affinity (MPIDR_EL1 & 0xff00ffffff), `u64::MAX` unknown |
//! | +16 | 8 | `notes_paddr`: physical address of the CPU's crash-notes buffer |
//! | +24 | 8 | `notes_size`: its size (sysfs `crash_notes_size`) |

use crate::le;
use crate::note;
use crate::PhysAddr;

/// Note name.
pub const CPUMAP_NAME: &[u8] = b"KEXEC-RS";
/// Note type ("CPUM" as a little-endian word).
pub const NT_KEXECRS_CPUMAP: u32 = u32::from_le_bytes(*b"CPUM");
/// Format version written.
pub const CPUMAP_VERSION: u32 = 1;
/// Header bytes.
pub const CPUMAP_HEADER_SIZE: usize = 16;
/// Entry bytes written by version 1.
pub const CPUMAP_ENTRY_SIZE: usize = 32;
/// Entry flag: the CPU was online when the crash kernel was loaded.
pub const CPU_ONLINE: u32 = 1 << 0;
/// Entry flag: the CPU was present.
pub const CPU_PRESENT: u32 = 1 << 1;
/// Most CPUs a map may list (bounds what a reader will believe).
pub const CPUMAP_MAX_CPUS: u32 = 65536;

/// One CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuEntry {
    /// Logical CPU id (`cpuN`).
    pub cpu: u32,
    /// [`CPU_ONLINE`], [`CPU_PRESENT`].
    pub flags: u32,
    /// MPIDR affinity, `u64::MAX` when unknown.
    pub mpidr: u64,
    /// Physical address of the CPU's crash-notes buffer.
    pub notes_paddr: PhysAddr,
    /// Size of that buffer.
    pub notes_size: u64,
}

impl CpuEntry {
    /// Online at load time.
    pub fn online(&self) -> bool {
        self.flags & CPU_ONLINE != 0
    }
}

/// Why a CPU-map descriptor is unusable (offsets are within the descriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMapError {
    /// Shorter than the 16-byte header.
    ShortHeader {
        /// Bytes given.
        got: usize,
    },
    /// A version this reader does not know.
    Version {
        /// The version found.
        got: u32,
    },
    /// `entry_size` smaller than 32.
    EntrySize {
        /// The size found.
        got: u32,
    },
    /// `count` entries do not fit in the descriptor, or exceed the bound.
    Count {
        /// The count found.
        count: u32,
        /// Descriptor length.
        len: usize,
    },
    /// The same CPU listed twice (offset of the second entry).
    DuplicateCpu {
        /// The CPU.
        cpu: u32,
        /// Offset of the second entry.
        offset: usize,
    },
    /// Writing: the destination is too small.
    NoRoom {
        /// Bytes needed.
        needed: usize,
    },
}

impl core::fmt::Display for CpuMapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            CpuMapError::ShortHeader { got } => write!(f, "CPU-map note: {got} bytes, expected a 16-byte header"),
            CpuMapError::Version { got } => write!(f, "CPU-map note at offset 0: version {got}, expected 1"),
            CpuMapError::EntrySize { got } => write!(f, "CPU-map note at offset 4: entry_size {got}, expected at least 32"),
            CpuMapError::Count { count, len } => write!(
                f,
                "CPU-map note at offset 8: count {count} does not fit in {len} bytes (or exceeds {CPUMAP_MAX_CPUS})"
            ),
            CpuMapError::DuplicateCpu { cpu, offset } => {
                write!(f, "CPU-map note at offset {offset}: CPU {cpu} listed twice")
            }
            CpuMapError::NoRoom { needed } => write!(f, "CPU-map note needs {needed} bytes"),
        }
    }
}

/// A validated view of a CPU-map descriptor.
#[derive(Debug, Clone, Copy)]
pub struct CpuMap<'a> {
    desc: &'a [u8],
    entry_size: usize,
    count: usize,
}

impl<'a> CpuMap<'a> {
    /// Validates the descriptor of a `KEXEC-RS`/[`NT_KEXECRS_CPUMAP`] note.
    pub fn parse(desc: &'a [u8]) -> Result<Self, CpuMapError> {
        let (Some(version), Some(entry_size), Some(count)) = (
            le::u32_at(desc, 0),
            le::u32_at(desc, 4),
            le::u32_at(desc, 8),
        ) else {
            return Err(CpuMapError::ShortHeader { got: desc.len() });
        };
        if desc.len() < CPUMAP_HEADER_SIZE {
            return Err(CpuMapError::ShortHeader { got: desc.len() });
        }
        if version != CPUMAP_VERSION {
            return Err(CpuMapError::Version { got: version });
        }
        if (entry_size as usize) < CPUMAP_ENTRY_SIZE || entry_size % 8 != 0 {
            return Err(CpuMapError::EntrySize { got: entry_size });
        }
        let need = (count as u64) * u64::from(entry_size) + CPUMAP_HEADER_SIZE as u64;
        if count > CPUMAP_MAX_CPUS || need > desc.len() as u64 {
            return Err(CpuMapError::Count {
                count,
                len: desc.len(),
            });
        }
        let map = CpuMap {
            desc,
            entry_size: entry_size as usize,
            count: count as usize,
        };
        // Duplicate check: quadratic, but count is bounded and small in practice.
        for i in 0..map.count {
            let a = map.entry(i);
            for j in 0..i {
                if map.entry(j).cpu == a.cpu {
                    return Err(CpuMapError::DuplicateCpu {
                        cpu: a.cpu,
                        offset: CPUMAP_HEADER_SIZE + i * map.entry_size,
                    });
                }
            }
        }
        Ok(map)
    }

    /// Number of CPUs listed.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no CPU is listed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn entry(&self, i: usize) -> CpuEntry {
        let o = CPUMAP_HEADER_SIZE + i * self.entry_size;
        let d = self.desc;
        CpuEntry {
            cpu: le::u32_at(d, o).unwrap_or(0),
            flags: le::u32_at(d, o + 4).unwrap_or(0),
            mpidr: le::u64_at(d, o + 8).unwrap_or(0),
            notes_paddr: PhysAddr(le::u64_at(d, o + 16).unwrap_or(0)),
            notes_size: le::u64_at(d, o + 24).unwrap_or(0),
        }
    }

    /// The entries, in the order written.
    pub fn entries(&self) -> impl Iterator<Item = CpuEntry> + '_ {
        (0..self.count).map(move |i| self.entry(i))
    }
}

/// Descriptor bytes for `n` CPUs.
pub const fn desc_size(n: usize) -> usize {
    CPUMAP_HEADER_SIZE + n * CPUMAP_ENTRY_SIZE
}

/// Writes the descriptor for `cpus` into `out`; returns the bytes written.
pub fn write_desc(out: &mut [u8], cpus: &[CpuEntry]) -> Result<usize, CpuMapError> {
    let n = desc_size(cpus.len());
    let out = out.get_mut(..n).ok_or(CpuMapError::NoRoom { needed: n })?;
    out.fill(0);
    let count = u32::try_from(cpus.len()).map_err(|_| CpuMapError::NoRoom { needed: n })?;
    // All offsets below lie inside `out` (sized by desc_size above).
    let _ = le::put_u32(out, 0, CPUMAP_VERSION);
    let _ = le::put_u32(out, 4, CPUMAP_ENTRY_SIZE as u32);
    let _ = le::put_u32(out, 8, count);
    for (i, c) in cpus.iter().enumerate() {
        let o = CPUMAP_HEADER_SIZE + i * CPUMAP_ENTRY_SIZE;
        let _ = le::put_u32(out, o, c.cpu);
        let _ = le::put_u32(out, o + 4, c.flags);
        let _ = le::put_u64(out, o + 8, c.mpidr);
        let _ = le::put_u64(out, o + 16, c.notes_paddr.0);
        let _ = le::put_u64(out, o + 24, c.notes_size);
    }
    Ok(n)
}

/// Writes the whole note (header, name, descriptor) into `out`.
pub fn write_note(
    out: &mut [u8],
    cpus: &[CpuEntry],
    scratch: &mut [u8],
) -> Result<usize, CpuMapError> {
    let n = write_desc(scratch, cpus)?;
    note::write_note(out, CPUMAP_NAME, NT_KEXECRS_CPUMAP, &scratch[..n]).map_err(|_| {
        CpuMapError::NoRoom {
            needed: note::note_size(CPUMAP_NAME.len(), n),
        }
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn cpus() -> [CpuEntry; 2] {
        [
            CpuEntry {
                cpu: 0,
                flags: CPU_ONLINE | CPU_PRESENT,
                mpidr: 0,
                notes_paddr: PhysAddr(0x7fb4_b000),
                notes_size: 424,
            },
            CpuEntry {
                cpu: 1,
                flags: CPU_ONLINE | CPU_PRESENT,
                mpidr: 1,
                notes_paddr: PhysAddr(0x7fb6_a000),
                notes_size: 424,
            },
        ]
    }

    #[test]
    fn round_trip() {
        let mut d = [0u8; 128];
        let n = write_desc(&mut d, &cpus()).unwrap();
        assert_eq!(n, 80);
        let m = CpuMap::parse(&d[..n]).unwrap();
        let got: Vec<_> = m.entries().collect();
        assert_eq!(got, cpus());
    }

    #[test]
    fn bad_inputs_are_named() {
        let mut d = [0u8; 128];
        let n = write_desc(&mut d, &cpus()).unwrap();
        assert_eq!(
            CpuMap::parse(&d[..10]).unwrap_err(),
            CpuMapError::ShortHeader { got: 10 }
        );
        assert!(matches!(
            CpuMap::parse(&d[..n - 1]),
            Err(CpuMapError::Count { count: 2, .. })
        ));
        let mut e = d;
        e[0] = 2;
        assert_eq!(
            CpuMap::parse(&e[..n]).unwrap_err(),
            CpuMapError::Version { got: 2 }
        );
        let mut e = d;
        e[48] = 0; // second entry's cpu := 0
        assert_eq!(
            CpuMap::parse(&e[..n]).unwrap_err(),
            CpuMapError::DuplicateCpu { cpu: 0, offset: 48 }
        );
    }
}
