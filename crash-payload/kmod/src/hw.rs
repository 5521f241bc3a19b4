//! The arm64 instructions the module executes itself (besides the SMC/HVC in
//! crash-payload's `smccc`): the virtual counter, DAIF masking, the barrier
//! before a signal, and the park loop. Only built for aarch64.
#![allow(unsafe_code)]

use core::arch::asm;
use core::convert::Infallible;

/// `CNTVCT_EL0`, after an `isb` so the read is not hoisted: the free-running
/// virtual counter, which advances with interrupts masked (jiffies do not).
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading CNTVCT_EL0 is allowed at EL1 (and EL0 when the kernel
    // enables it); `isb` only orders the read. No memory is touched.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// `CNTFRQ_EL0`: the counter's frequency in Hz.
pub fn counter_freq() -> u64 {
    let v: u64;
    // SAFETY: a read-only system register read, no memory access.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Masks D, A, I and F on this CPU (`msr daifset, #0xf`).
pub fn mask_daif() {
    // SAFETY: masking exceptions on the current CPU is what the stop routine
    // requires; it changes no memory. Not `nomem`: the compiler must not move
    // memory accesses across the mask.
    unsafe { asm!("msr daifset, #0xf", options(nostack, preserves_flags)) };
}

/// `dsb ishst`: the request word is visible to the inner-shareable domain
/// before the signal that follows (as `gic_ipi_send_mask` does for IPIs).
pub fn dsb_ishst() {
    // SAFETY: a barrier; no other effect.
    unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
}

/// Parks this CPU forever: DAIF masked, `wfi` in a loop (a wake-up only
/// loops again). Legal inside an SDEI dispatch: the event is never completed.
pub fn park() -> Infallible {
    mask_daif();
    loop {
        // SAFETY: `wfi` waits for an interrupt or event; with DAIF masked it
        // returns on a wake-up event and changes no state.
        unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}
