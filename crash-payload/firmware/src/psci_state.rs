//! PSCI power state of every core, shared between cores through atomics.
//!
//! Each core is `Off`, `OnPending` or `On`. `CPU_ON` claims an `Off` core,
//! writes its entry point and context ID, then publishes `OnPending` (release);
//! the target, held in the firmware's wait loop, sees `OnPending` (acquire),
//! takes the entry point and becomes `On`. `CPU_OFF` makes the caller `Off`
//! and sends it back to the wait loop. `AFFINITY_INFO` reads the state.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use crash_payload::psci::{AffinityState, PsciError};

/// Cores this firmware manages (QEMU virt `-smp` up to 8, all in cluster 0).
pub const MAX_CPUS: usize = 8;

const OFF: u8 = 0;
/// Claimed by a CPU_ON that is still writing the entry point.
const CLAIMED: u8 = 1;
const ON_PENDING: u8 = 2;
const ON: u8 = 3;

/// One core's power state and its pending CPU_ON arguments.
#[derive(Debug)]
struct Core {
    state: AtomicU8,
    entry: AtomicU64,
    context: AtomicU64,
}

impl Core {
    const fn new() -> Self {
        Self {
            state: AtomicU8::new(OFF),
            entry: AtomicU64::new(0),
            context: AtomicU64::new(0),
        }
    }
}

/// The power state of all cores, and the Normal-world RAM an entry point must
/// lie in.
#[derive(Debug)]
pub struct PowerStates {
    cores: [Core; MAX_CPUS],
    present: AtomicU8,
    ram_base: AtomicU64,
    ram_size: AtomicU64,
}

impl Default for PowerStates {
    fn default() -> Self {
        Self::new()
    }
}

impl PowerStates {
    /// Every core off, none present.
    pub const fn new() -> Self {
        Self {
            cores: [const { Core::new() }; MAX_CPUS],
            present: AtomicU8::new(0),
            ram_base: AtomicU64::new(0),
            ram_size: AtomicU64::new(0),
        }
    }

    /// Cold boot: `present` cores exist, `boot` is on, the others off.
    /// Entry points must lie in `[ram_base, ram_base + ram_size)`.
    pub fn cold_boot(&self, present: usize, boot: usize, ram_base: u64, ram_size: u64) {
        let present = present.min(MAX_CPUS);
        self.present.store(present as u8, Ordering::Relaxed);
        self.ram_base.store(ram_base, Ordering::Relaxed);
        self.ram_size.store(ram_size, Ordering::Relaxed);
        for (i, c) in self.cores.iter().enumerate() {
            c.state
                .store(if i == boot { ON } else { OFF }, Ordering::Release);
        }
    }

    /// How many cores exist.
    pub fn present(&self) -> usize {
        usize::from(self.present.load(Ordering::Relaxed))
    }

    /// The core index of an MPIDR value on QEMU virt (cluster 0, `Aff0` =
    /// index), or `None` if no such core is present. Bits other than the
    /// affinity fields are ignored.
    pub fn core_of_mpidr(&self, mpidr: u64) -> Option<usize> {
        let aff0 = (mpidr & 0xff) as usize;
        let upper = (mpidr >> 8) & 0xffff | ((mpidr >> 32) & 0xff);
        (upper == 0 && aff0 < self.present()).then_some(aff0)
    }

    fn entry_ok(&self, entry: u64) -> bool {
        let base = self.ram_base.load(Ordering::Relaxed);
        let size = self.ram_size.load(Ordering::Relaxed);
        entry & 3 == 0 && entry >= base && entry - base < size
    }

    /// `CPU_ON(target, entry, context)`.
    pub fn cpu_on(&self, target_mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
        let core = self
            .core_of_mpidr(target_mpidr)
            .ok_or(PsciError::InvalidParameters)?;
        if !self.entry_ok(entry) {
            return Err(PsciError::InvalidAddress);
        }
        let c = &self.cores[core];
        match c
            .state
            .compare_exchange(OFF, CLAIMED, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {}
            Err(ON) => return Err(PsciError::AlreadyOn),
            Err(_) => return Err(PsciError::OnPending),
        }
        c.entry.store(entry, Ordering::Relaxed);
        c.context.store(context, Ordering::Relaxed);
        c.state.store(ON_PENDING, Ordering::Release);
        Ok(())
    }

    /// Called by a held core: if a CPU_ON is pending for it, becomes `On` and
    /// returns `(entry, context)`.
    pub fn take_entry(&self, core: usize) -> Option<(u64, u64)> {
        let c = self.cores.get(core)?;
        if c.state.load(Ordering::Acquire) != ON_PENDING {
            return None;
        }
        let e = (
            c.entry.load(Ordering::Relaxed),
            c.context.load(Ordering::Relaxed),
        );
        c.state.store(ON, Ordering::Release);
        Some(e)
    }

    /// `CPU_OFF` by `core` (a core can only turn itself off).
    pub fn cpu_off(&self, core: usize) {
        if let Some(c) = self.cores.get(core) {
            c.state.store(OFF, Ordering::Release);
        }
    }

    /// `AFFINITY_INFO(target, lowest_level)`. Only level 0 is supported.
    pub fn affinity_info(
        &self,
        target_mpidr: u64,
        lowest_level: u64,
    ) -> Result<AffinityState, PsciError> {
        if lowest_level != 0 {
            return Err(PsciError::InvalidParameters);
        }
        let core = self
            .core_of_mpidr(target_mpidr)
            .ok_or(PsciError::InvalidParameters)?;
        Ok(match self.cores[core].state.load(Ordering::Acquire) {
            ON => AffinityState::On,
            OFF => AffinityState::Off,
            _ => AffinityState::OnPending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> PowerStates {
        let p = PowerStates::new();
        p.cold_boot(2, 0, 0x4000_0000, 0x8000_0000);
        p
    }

    #[test]
    fn cold_boot_states() {
        let p = two();
        assert_eq!(p.affinity_info(0, 0), Ok(AffinityState::On));
        assert_eq!(p.affinity_info(1, 0), Ok(AffinityState::Off));
        assert_eq!(p.affinity_info(2, 0), Err(PsciError::InvalidParameters));
        assert_eq!(p.affinity_info(0x100, 0), Err(PsciError::InvalidParameters));
        assert_eq!(p.affinity_info(1, 1), Err(PsciError::InvalidParameters));
        // MPIDR's U/MT/RES1 bits are not affinity.
        assert_eq!(p.core_of_mpidr(0x8000_0001), Some(1));
    }

    #[test]
    fn on_pending_then_on_then_off() {
        let p = two();
        assert_eq!(p.take_entry(1), None);
        assert_eq!(p.cpu_on(1, 0x4020_0000, 42), Ok(()));
        assert_eq!(p.affinity_info(1, 0), Ok(AffinityState::OnPending));
        assert_eq!(p.cpu_on(1, 0x4020_0000, 42), Err(PsciError::OnPending));
        assert_eq!(p.take_entry(1), Some((0x4020_0000, 42)));
        assert_eq!(p.take_entry(1), None);
        assert_eq!(p.affinity_info(1, 0), Ok(AffinityState::On));
        assert_eq!(p.cpu_on(1, 0x4020_0000, 1), Err(PsciError::AlreadyOn));
        p.cpu_off(1);
        assert_eq!(p.affinity_info(1, 0), Ok(AffinityState::Off));
        assert_eq!(p.cpu_on(1, 0x4030_0000, 7), Ok(()));
        assert_eq!(p.take_entry(1), Some((0x4030_0000, 7)));
    }

    #[test]
    fn cpu_on_checks_target_and_address() {
        let p = two();
        assert_eq!(
            p.cpu_on(5, 0x4020_0000, 0),
            Err(PsciError::InvalidParameters)
        );
        assert_eq!(p.cpu_on(1, 0x1000, 0), Err(PsciError::InvalidAddress));
        assert_eq!(p.cpu_on(1, 0x4020_0002, 0), Err(PsciError::InvalidAddress));
        assert_eq!(p.cpu_on(1, 0xc000_0000, 0), Err(PsciError::InvalidAddress));
        assert_eq!(p.cpu_on(0, 0x4020_0000, 0), Err(PsciError::AlreadyOn));
    }

    #[test]
    fn racing_cpu_on_has_one_winner() {
        let p = std::sync::Arc::new(two());
        let wins: usize = (0..4)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || p.cpu_on(1, 0x4020_0000, i).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| usize::from(h.join().unwrap_or(false)))
            .sum();
        assert_eq!(wins, 1);
        assert!(p.take_entry(1).is_some());
    }
}
