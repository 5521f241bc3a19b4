//! GICv3 on QEMU virt (`hw/intc/arm_gicv3*`): distributor at 0x0800_0000,
//! redistributors from 0x080a_0000 (two 64 KiB frames each), CPU interface
//! through system registers.
//!
//! Security: SPIs, PPIs and SGIs 0-7 are Group 1 Non-secure (Linux's);
//! SGI 8 (SDEI event 0) and SGI 9 (CPU_ON wake-up) are Group 0, priority
//! 0x70 — above anything the Normal world can set — and reach EL3 as FIQ.

use super::regs::{read32, sysreg_read, sysreg_write, write32};
use crate::dispatch::{SGI_SDEI, SGI_WAKE};

const GICD: usize = 0x0800_0000;
const GICR: usize = 0x080a_0000;
const GICR_STRIDE: usize = 0x2_0000;
const SGI_BASE: usize = 0x1_0000;

const GICD_CTLR: usize = 0x0;
const GICD_TYPER: usize = 0x4;
const GICD_IGROUPR: usize = 0x80;
const GICD_IGRPMODR: usize = 0xd00;
const GICD_CTLR_ENABLE_G0: u32 = 1 << 0;
const GICD_CTLR_ENABLE_G1NS: u32 = 1 << 1;
const GICD_CTLR_ARE_S: u32 = 1 << 4;
const GICD_CTLR_ARE_NS: u32 = 1 << 5;
const GICD_CTLR_RWP: u32 = 1 << 31;

const GICR_TYPER: usize = 0x8;
const GICR_WAKER: usize = 0x14;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const GICR_TYPER_LAST: u32 = 1 << 4;
const GICR_IGROUPR0: usize = SGI_BASE + 0x80;
const GICR_ISENABLER0: usize = SGI_BASE + 0x100;
const GICR_ISACTIVER0: usize = SGI_BASE + 0x300;
const GICR_IPRIORITYR: usize = SGI_BASE + 0x400;
const GICR_IGRPMODR0: usize = SGI_BASE + 0xd00;

/// Priority of the Group-0 SGIs (TF-A uses 0x70 for normal SDEI events).
const GROUP0_PRIORITY: u32 = 0x70;

/// INTIDs 1020..=1023 are special (nothing for Group 0 to acknowledge).
pub const INTID_SPECIAL: u32 = 1020;

fn wait_rwp() {
    while read32(GICD + GICD_CTLR) & GICD_CTLR_RWP != 0 {}
}

/// How many redistributors (= cores) QEMU created.
pub fn count_redistributors() -> usize {
    let mut n = 0;
    loop {
        let typer_lo = read32(GICR + n * GICR_STRIDE + GICR_TYPER);
        n += 1;
        if typer_lo & GICR_TYPER_LAST != 0 || n == 64 {
            return n;
        }
    }
}

/// The redistributor frame of the core with this MPIDR.
fn redistributor(mpidr: u64) -> Option<usize> {
    let aff = (mpidr & 0xff_ffff) as u32 | (((mpidr >> 32) & 0xff) as u32) << 24;
    let mut rd = GICR;
    for _ in 0..64 {
        let lo = read32(rd + GICR_TYPER);
        if read32(rd + GICR_TYPER + 4) == aff {
            return Some(rd);
        }
        if lo & GICR_TYPER_LAST != 0 {
            return None;
        }
        rd += GICR_STRIDE;
    }
    None
}

/// Core 0, once: affinity routing, every SPI Group 1 Non-secure. Groups are
/// enabled later by [`enable_distributor`], which also releases the others.
pub fn init_distributor() {
    write32(GICD + GICD_CTLR, 0);
    wait_rwp();
    write32(GICD + GICD_CTLR, GICD_CTLR_ARE_S | GICD_CTLR_ARE_NS);
    wait_rwp();
    let lines = (read32(GICD + GICD_TYPER) & 0x1f) as usize + 1;
    for i in 1..lines {
        write32(GICD + GICD_IGROUPR + 4 * i, !0);
        write32(GICD + GICD_IGRPMODR + 4 * i, 0);
    }
}

/// Enables Group 0 and Group 1 NS in the distributor.
pub fn enable_distributor() {
    write32(
        GICD + GICD_CTLR,
        GICD_CTLR_ARE_S | GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G0 | GICD_CTLR_ENABLE_G1NS,
    );
    wait_rwp();
}

/// This core: wake its redistributor, make SGIs 8 and 9 Group 0, and turn on
/// the system-register CPU interface for EL3 and the lower ELs.
pub fn init_cpu(mpidr: u64, el2: bool) {
    if let Some(rd) = redistributor(mpidr) {
        let w = read32(rd + GICR_WAKER);
        write32(rd + GICR_WAKER, w & !GICR_WAKER_PROCESSOR_SLEEP);
        while read32(rd + GICR_WAKER) & GICR_WAKER_CHILDREN_ASLEEP != 0 {}
        let g0 = (1u32 << SGI_SDEI) | (1u32 << SGI_WAKE);
        write32(rd + GICR_IGROUPR0, !g0);
        write32(rd + GICR_IGRPMODR0, 0);
        // SGIs 8..11 share IPRIORITYR2; SGI 8 and 9 are its two low bytes.
        let pr = rd + GICR_IPRIORITYR + 8;
        let v = read32(pr) & !0xffff;
        write32(pr, v | GROUP0_PRIORITY | (GROUP0_PRIORITY << 8));
        write32(rd + GICR_ISENABLER0, g0);
    }
    // ICC_SRE_EL3: SRE | DFB | DIB | Enable (lower ELs may use ICC_SRE_EL1/EL2).
    sysreg_write!("S3_6_C12_C12_5", 0xf);
    // ICC_SRE_EL1 (Secure copy, as SCR_EL3.NS = 0 here): SRE.
    sysreg_write!("S3_0_C12_C12_5", 0x1);
    if el2 {
        // ICC_SRE_EL2: SRE | Enable, so EL1 can use the system registers.
        sysreg_write!("S3_4_C12_C9_5", 0x9);
    }
    // ICC_PMR_EL1: let every priority through.
    sysreg_write!("S3_0_C4_C6_0", 0xff);
    // ICC_IGRPEN0_EL1: Group 0 on.
    sysreg_write!("S3_0_C12_C12_6", 1);
    // ICC_IGRPEN1_EL3: Group 1 NS off until Linux turns it on (it writes
    // ICC_IGRPEN1_EL1), so a held core is not woken by Normal-world interrupts.
    sysreg_write!("S3_6_C12_C12_7", 0);
}

/// Ends every interrupt still active on this core's CPU interface, before
/// the core enters the Normal world from its wait loop after `CPU_ON`.
///
/// A core here is never powered off, so its CPU interface keeps what it had
/// at `CPU_OFF`: Linux stops a CPU for a crash (and for `smp_send_stop`)
/// from inside the stop IPI's handler, which calls `CPU_OFF` without the
/// EOI, and that IPI's priority then stays the running priority. After
/// `CPU_ON` every Normal-world interrupt at or below it (all of Linux's)
/// stayed pending: a capture kernel with two CPUs hung bringing up the
/// second (its first IPI never arrived), with the ICC_AP1R0 bit of priority
/// 0xd0 (Linux's 0xa0, as the Secure-aware CPU interface counts it) still
/// set when the core left this loop. The Normal world cannot clear that bit
/// itself: its writes to ICC_AP1R0/1_EL1 are ignored where Secure state
/// exists (QEMU), and its EOIs need the INTID it no longer knows.
///
/// Group 0 is EL3's own: its active priorities are cleared. For Group 1 NS,
/// each private interrupt (SGI, PPI) active on this core's redistributor
/// gets the EOI its handler never wrote (`ICC_EOIR1_EL1` from EL3 with
/// SCR_EL3.NS = 1: the Non-secure bank; priority drop, then deactivation).
/// An SPI a handler left active is not ended here: it may be active on
/// another core.
pub fn end_active(mpidr: u64) {
    // ICC_AP0R0_EL1 (QEMU implements 5 priority bits: one register).
    sysreg_write!("S3_0_C12_C8_4", 0);
    let Some(rd) = redistributor(mpidr) else {
        return;
    };
    let active = read32(rd + GICR_ISACTIVER0) & read32(rd + GICR_IGROUPR0);
    for intid in 0..32u32 {
        if active & (1 << intid) != 0 {
            // ICC_EOIR1_EL1.
            sysreg_write!("S3_0_C12_C12_1", u64::from(intid));
        }
    }
}

/// Turns Group 1 NS off on this core's CPU interface (the core goes to the
/// wait loop and must not be woken by the Normal world's interrupts).
pub fn disable_group1ns() {
    sysreg_write!("S3_6_C12_C12_7", 0);
}

/// `ICC_IAR0_EL1`: acknowledges the highest-priority Group-0 interrupt.
pub fn ack0() -> u32 {
    (sysreg_read!("S3_0_C12_C8_0") & 0xff_ffff) as u32
}

/// `ICC_EOIR0_EL1`: drops priority and deactivates.
pub fn eoi0(intid: u32) {
    sysreg_write!("S3_0_C12_C8_1", u64::from(intid));
}

/// Raises Group-0 SGI `intid` on the core with index `core` (Aff0; cluster 0).
pub fn sgi0(intid: u32, core: usize) {
    let aff0 = core as u64;
    let rs = aff0 / 16;
    let target_list = 1u64 << (aff0 % 16);
    // ICC_SGI0R_EL1: INTID 27:24, RS 47:44, TargetList 15:0; Aff1-3 zero.
    let v = (u64::from(intid) & 0xf) << 24 | rs << 44 | target_list;
    super::regs::dsb_sy();
    sysreg_write!("S3_0_C12_C11_7", v);
}
