//! A fixed-capacity set of logical CPU numbers, printed the way the kernel's
//! `%*pbl` prints a cpumask (`1-3,5`).
//!
//! No allocation: the set is [`MAX_CPUS`] bits inline, `Copy`, 128 bytes, so
//! it can live on a crash-time stack.

use core::fmt;

/// Largest number of CPUs a [`CpuSet`] (and so the stop protocol) handles.
///
/// A caller with `nr_cpu_ids` above this must refuse to set up the protocol
/// rather than silently stop fewer CPUs; [`CpuSet::insert`] reports it.
pub const MAX_CPUS: usize = 1024;

const WORDS: usize = MAX_CPUS.div_ceil(64);

/// A set of logical CPU numbers below [`MAX_CPUS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CpuSet {
    bits: [u64; WORDS],
}

impl Default for CpuSet {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuSet {
    /// The empty set.
    pub const EMPTY: CpuSet = CpuSet { bits: [0; WORDS] };

    /// The empty set.
    pub const fn new() -> Self {
        Self::EMPTY
    }

    /// CPUs `0..n` (`n` is clamped to [`MAX_CPUS`]).
    pub fn first(n: usize) -> Self {
        let mut s = Self::new();
        for cpu in 0..n.min(MAX_CPUS) {
            s.insert(cpu);
        }
        s
    }

    /// Adds `cpu`. Returns `false` (and leaves the set unchanged) when `cpu`
    /// is not below [`MAX_CPUS`].
    pub fn insert(&mut self, cpu: usize) -> bool {
        match self.bits.get_mut(cpu / 64) {
            Some(w) => {
                *w |= 1u64 << (cpu % 64);
                true
            }
            None => false,
        }
    }

    /// Removes `cpu` (no effect when absent or out of range).
    pub fn remove(&mut self, cpu: usize) {
        if let Some(w) = self.bits.get_mut(cpu / 64) {
            *w &= !(1u64 << (cpu % 64));
        }
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: usize) -> bool {
        self.bits
            .get(cpu / 64)
            .is_some_and(|w| w & (1u64 << (cpu % 64)) != 0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// Number of CPUs in the set.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// `self ∩ other`.
    #[must_use]
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        let mut out = *self;
        for (a, b) in out.bits.iter_mut().zip(other.bits.iter()) {
            *a &= *b;
        }
        out
    }

    /// `self ∪ other`.
    #[must_use]
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        let mut out = *self;
        for (a, b) in out.bits.iter_mut().zip(other.bits.iter()) {
            *a |= *b;
        }
        out
    }

    /// `self \ other`.
    #[must_use]
    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        let mut out = *self;
        for (a, b) in out.bits.iter_mut().zip(other.bits.iter()) {
            *a &= !*b;
        }
        out
    }

    /// The CPUs in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { set: self, next: 0 }
    }
}

impl FromIterator<usize> for CpuSet {
    /// CPUs at or above [`MAX_CPUS`] are left out.
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let mut s = CpuSet::new();
        for cpu in iter {
            s.insert(cpu);
        }
        s
    }
}

impl<'a> IntoIterator for &'a CpuSet {
    type Item = usize;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over a [`CpuSet`], ascending.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    set: &'a CpuSet,
    next: usize,
}

impl Iterator for Iter<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        while self.next < MAX_CPUS {
            let word = self.set.bits.get(self.next / 64).copied().unwrap_or(0) >> (self.next % 64);
            if word == 0 {
                // Skip to the next word.
                self.next = (self.next / 64 + 1) * 64;
                continue;
            }
            let cpu = self.next + word.trailing_zeros() as usize;
            self.next = cpu + 1;
            return Some(cpu);
        }
        None
    }
}

impl fmt::Display for CpuSet {
    /// The kernel's `%*pbl` list format: `0-2,5`; the empty set prints nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut it = self.iter().peekable();
        let mut first = true;
        while let Some(start) = it.next() {
            let mut end = start;
            while it.peek() == Some(&(end + 1)) {
                end += 1;
                it.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet{{{self}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn list_format_matches_the_kernel() {
        let s: CpuSet = [1, 2, 3, 5, 64, 65, 1023].into_iter().collect();
        assert_eq!(s.to_string(), "1-3,5,64-65,1023");
        assert_eq!(CpuSet::new().to_string(), "");
        assert_eq!(CpuSet::first(4).to_string(), "0-3");
    }

    #[test]
    fn set_operations() {
        let a: CpuSet = [0, 1, 2, 700].into_iter().collect();
        let b: CpuSet = [2, 3, 700].into_iter().collect();
        assert_eq!(a.intersection(&b).iter().collect::<Vec<_>>(), [2, 700]);
        assert_eq!(a.union(&b).len(), 5);
        assert_eq!(a.difference(&b).iter().collect::<Vec<_>>(), [0, 1]);
        let mut c = a;
        assert!(!c.insert(MAX_CPUS), "out of range is refused, not wrapped");
        c.remove(700);
        c.remove(5000);
        assert!(!c.contains(700) && !c.contains(5000));
        assert!(CpuSet::new().is_empty());
    }
}
