//! System registers and MMIO: the only place (with `mod.rs` and `gic.rs`)
//! that executes `mrs`/`msr` or touches device memory.

/// Reads a system register by name (`"mpidr_el1"`) or encoding (`"S3_6_C12_C12_5"`).
macro_rules! sysreg_read {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading a system register has no side effect on memory; the
        // registers read here exist at EL3 on every core this firmware runs on
        // (EL2 registers are read only when ID_AA64PFR0_EL1 says EL2 exists).
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags));
        }
        v
    }};
}

/// Writes a system register and synchronises the context (`isb`).
macro_rules! sysreg_write {
    ($name:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the callers write values the architecture defines for these
        // registers at EL3, for state this firmware owns (EL3 control, the
        // GIC CPU interface, or lower-EL registers before entering the Normal
        // world). No `nomem`: some writes change how memory is accessed.
        unsafe {
            core::arch::asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) v, options(nostack, preserves_flags));
        }
    }};
}

pub(crate) use sysreg_read;
pub(crate) use sysreg_write;

/// A 32-bit MMIO read.
pub fn read32(addr: usize) -> u32 {
    // SAFETY: callers pass addresses of QEMU virt device registers (GIC,
    // PL011, PL061, fw_cfg) or of RAM this firmware owns at that moment,
    // 4-byte aligned; volatile keeps every access.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// A 32-bit MMIO write.
pub fn write32(addr: usize, v: u32) {
    // SAFETY: as for `read32`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

/// A 64-bit MMIO write.
pub fn write64(addr: usize, v: u64) {
    // SAFETY: as for `read32`, 8-byte aligned.
    unsafe { core::ptr::write_volatile(addr as *mut u64, v) }
}

/// An 8-bit MMIO read.
pub fn read8(addr: usize) -> u8 {
    // SAFETY: as for `read32`.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

/// An 8-bit MMIO write.
pub fn write8(addr: usize, v: u8) {
    // SAFETY: as for `read32`.
    unsafe { core::ptr::write_volatile(addr as *mut u8, v) }
}

/// A 16-bit MMIO write.
pub fn write16(addr: usize, v: u16) {
    // SAFETY: as for `read32`, 2-byte aligned.
    unsafe { core::ptr::write_volatile(addr as *mut u16, v) }
}

/// Full-system data synchronisation barrier.
pub fn dsb_sy() {
    // SAFETY: a barrier changes no state.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) }
}

/// Wait for interrupt (wakes on any pending interrupt, masked or not).
pub fn wfi() {
    // SAFETY: WFI only suspends the core; no state changes.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) }
}

/// Send event to all cores.
pub fn sev() {
    // SAFETY: SEV only sets the event register of every core.
    unsafe { core::arch::asm!("dsb sy", "sev", options(nostack, preserves_flags)) }
}
