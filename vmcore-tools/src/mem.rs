//! Physical memory as a dump presents it.

use crash_payload::{PhysAddr, VirtAddr};

/// A read that the dump cannot satisfy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    /// The physical page is not in the dump (never dumped, or filtered out).
    #[error("physical address {0} is not in the dump")]
    NotPresent(PhysAddr),
    /// The page is in the dump but its stored form is broken.
    #[error("physical address {addr}: {why}")]
    Corrupt {
        /// The address read.
        addr: PhysAddr,
        /// What is wrong, with the file offset.
        why: String,
    },
    /// A virtual address that does not translate.
    #[error("virtual address {addr}: {why}")]
    Translate {
        /// The address.
        addr: VirtAddr,
        /// Why not.
        why: String,
    },
}

/// Reads physical memory. Implemented by every dump format and by test fakes.
pub trait PhysMem {
    /// Fills `buf` from physical address `addr`; the read may span pages.
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError>;

    /// Reads a little-endian `u64`.
    fn read_u64(&self, addr: PhysAddr) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        self.read_phys(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// A fake physical memory for unit tests: sparse pages in a map.
#[derive(Debug, Default, Clone)]
pub struct FakeMem {
    /// (start, bytes) ranges.
    pub ranges: Vec<(PhysAddr, Vec<u8>)>,
}

impl FakeMem {
    /// Adds bytes at `addr`.
    pub fn put(&mut self, addr: PhysAddr, bytes: &[u8]) {
        self.ranges.push((addr, bytes.to_vec()));
    }
}

impl PhysMem for FakeMem {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        for (start, data) in self.ranges.iter().rev() {
            let Some(off) = addr.checked_sub(*start) else { continue };
            let Ok(off) = usize::try_from(off) else { continue };
            if let Some(src) = off.checked_add(buf.len()).and_then(|end| data.get(off..end)) {
                buf.copy_from_slice(src);
                return Ok(());
            }
        }
        Err(MemError::NotPresent(addr))
    }
}
