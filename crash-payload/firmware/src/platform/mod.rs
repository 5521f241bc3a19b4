//! Bare-metal part of sdei-fw (`target_os = "none"` only): reset and
//! exception entry, EL3 set-up, the devices, and the glue that feeds the
//! host-tested state machines.
//!
//! `unsafe` is confined to this module tree: `regs` (system registers, MMIO),
//! the per-CPU cells below, the Normal-world RAM slices used while booting,
//! and the `extern "C"` boundary with the assembly.

mod gic;
mod regs;

use crate::boot::{self, fw_cfg, BootError, DtbValues, ImageHeader, IMAGE_HEADER_SIZE};
use crate::dispatch::{handle_sdei_sgi, handle_smc, Next, Platform, SGI_SDEI};
use crate::fdt::{self, Prop};
use crate::frame::{spsr_elx_h_masked, TrapFrame, FRAME_SIZE, FRAME_SPSR, FRAME_X30};
use crate::psci_state::{PowerStates, MAX_CPUS};
use crate::sdei_state::Pe;
use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};
use regs::{read32, read8, sysreg_read, sysreg_write, write16, write32, write64, write8};

/// EL3 stack per core (link.ld reserves `STACK_SIZE * MAX_CPUS`).
const STACK_SIZE: usize = 0x4000;
const _: () = assert!(
    STACK_SIZE * MAX_CPUS == 0x4000 * 8,
    "update .stacks in link.ld"
);

const UART0: usize = 0x0900_0000;
const FW_CFG: usize = 0x0902_0000;
const SECURE_GPIO: usize = 0x090b_0000;
const GICD: usize = 0x0800_0000;
/// Normal-world RAM on virt.
const RAM_BASE: u64 = 0x4000_0000;
/// PL061 pins wired to QEMU's gpio-pwr on the secure GPIO (hw/arm/virt.c;
/// TF-A plat/qemu `SECURE_GPIO_POWEROFF`/`_RESET`).
const GPIO_POWEROFF: u32 = 0;
const GPIO_RESET: u32 = 1;

core::arch::global_asm!(
    include_str!("../asm/entry.S"),
    max_cpus = const MAX_CPUS,
    stack_size = const STACK_SIZE,
    gicd_base = const GICD,
);
core::arch::global_asm!(
    include_str!("../asm/vectors.S"),
    frame_size = const FRAME_SIZE,
    frame_x30 = const FRAME_X30,
    frame_spsr = const FRAME_SPSR,
);

extern "C" {
    /// Restores `frame` and `eret`s (asm/vectors.S).
    fn el3_exit_frame(frame: *const TrapFrame) -> !;
    /// Resets SP_EL3 and waits for CPU_ON in `rust_hold` (asm/entry.S).
    fn el3_reenter_hold() -> !;
}

// ------------------------------------------------------------------ state

static POWER: PowerStates = PowerStates::new();
/// The Normal-world EL Linux runs at (1, or 2 with VHE).
static NS_EL: AtomicU8 = AtomicU8::new(1);

/// One core's SDEI state. Only that core touches it, from EL3 with every
/// exception masked.
struct PeCell(UnsafeCell<Pe>);
// SAFETY: slot `i` is only accessed by core `i` (see `pe_mut`), never concurrently.
unsafe impl Sync for PeCell {}
static PES: [PeCell; MAX_CPUS] = [const { PeCell(UnsafeCell::new(Pe::new())) }; MAX_CPUS];

/// This core's index (Aff0; `_start` parks cores outside cluster 0 or past MAX_CPUS).
fn this_core() -> usize {
    (sysreg_read!("mpidr_el1") & 0xff) as usize
}

/// The calling core's SDEI state. Each exception handler calls this once.
fn pe_mut() -> &'static mut Pe {
    let core = this_core().min(MAX_CPUS - 1);
    // SAFETY: only this core uses slot `core`; EL3 runs with DAIF masked and
    // does not nest, and every caller takes the reference once and drops it
    // before the core leaves EL3, so no two `&mut` to a slot coexist.
    unsafe { &mut *PES[core].0.get() }
}

// ------------------------------------------------------------------ console

struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                putc(b'\r');
            }
            putc(b);
        }
        Ok(())
    }
}

fn putc(b: u8) {
    // PL011: wait while UARTFR.TXFF (bit 5), then UARTDR.
    while read32(UART0 + 0x18) & (1 << 5) != 0 {}
    write32(UART0, u32::from(b));
}

macro_rules! say {
    ($($t:tt)*) => {{
        let _ = write!(Uart, "sdei-fw: ");
        let _ = writeln!(Uart, $($t)*);
    }};
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Uart, "sdei-fw: panic on core {}: {}", this_core(), info);
    park()
}

fn park() -> ! {
    loop {
        regs::wfi();
    }
}

// ------------------------------------------------------------------ EL3 set-up

#[derive(Clone, Copy)]
struct Cpu {
    el2: bool,
    vhe: bool,
}

fn cpu_features() -> Cpu {
    let pfr0 = sysreg_read!("id_aa64pfr0_el1");
    let mmfr1 = sysreg_read!("id_aa64mmfr1_el1");
    Cpu {
        el2: (pfr0 >> 8) & 0xf != 0,
        vhe: (mmfr1 >> 8) & 0xf != 0,
    }
}

/// EL3 and lower-EL control registers on this core, before the Normal world
/// first runs on it (cold boot and every CPU_ON).
fn init_el3(cpu: Cpu) {
    // SCTLR_EL3: RES1 bits, I-cache on, SP alignment check; MMU, D-cache,
    // alignment faults off, little-endian.
    sysreg_write!("sctlr_el3", 0x30c5_0830 | (1 << 12) | (1 << 3));
    let pfr0 = sysreg_read!("id_aa64pfr0_el1");
    let pfr1 = sysreg_read!("id_aa64pfr1_el1");
    let mmfr0 = sysreg_read!("id_aa64mmfr0_el1");
    let mmfr1 = sysreg_read!("id_aa64mmfr1_el1");
    let isar1 = sysreg_read!("id_aa64isar1_el1");
    let field = |reg: u64, shift: u32| (reg >> shift) & 0xf;
    let sve = field(pfr0, 32) != 0;
    let sme = field(pfr1, 24) != 0;
    // CPTR_EL3: no FP/SIMD trap (TFP = 0); EZ and ESM let lower ELs use SVE
    // and SME (else their first use traps here, EC 0x19/0x1d).
    sysreg_write!("cptr_el3", u64::from(sve) << 8 | u64::from(sme) << 12);
    if sve {
        // ZCR_EL3: allow the longest vector length.
        sysreg_write!("S3_6_C1_C2_0", 0xf);
    }
    if sme {
        // SMCR_EL3: allow the longest streaming vector length.
        sysreg_write!("S3_6_C1_C2_6", 0xf);
    }
    // SCR_EL3: NS, FIQ to EL3 (Group 0), RES1 bits 5:4, SMC enabled (SMD = 0),
    // RW (lower ELs AArch64), HCE when EL2 exists. Features a lower EL may
    // use, enabled when present (their registers trap to EL3 otherwise):
    // APK/API pointer authentication, EnSCXT (CSV2 >= 2), ATA (MTE2),
    // FGTEn, HXEn, EnTP2 (SME).
    let mut scr: u64 = 1 | (1 << 2) | (3 << 4) | (1 << 10);
    if cpu.el2 {
        scr |= 1 << 8;
    }
    if isar1 & 0xff00_ff00 != 0 {
        scr |= (1 << 16) | (1 << 17);
    }
    if field(pfr0, 56) >= 2 {
        scr |= 1 << 25;
    }
    if field(pfr1, 8) >= 2 {
        scr |= 1 << 26;
    }
    if field(mmfr0, 56) != 0 {
        scr |= 1 << 27;
    }
    if field(mmfr1, 40) != 0 {
        scr |= 1 << 38;
    }
    if sme {
        scr |= 1 << 41;
    }
    sysreg_write!("scr_el3", scr);
    if sysreg_read!("cntfrq_el0") == 0 {
        // QEMU's default generic timer frequency (62.5 MHz).
        sysreg_write!("cntfrq_el0", 62_500_000);
    }
    if cpu.el2 {
        // EL2 transparent for an EL1 kernel, sane for an EL2 (VHE) one.
        sysreg_write!("hcr_el2", 1 << 31); // RW
        sysreg_write!("sctlr_el2", 0x30c5_0830);
        sysreg_write!("cptr_el2", 0x33ff); // RES1, no traps
        sysreg_write!("cnthctl_el2", 0x3); // EL1PCTEN | EL1PCEN
        sysreg_write!("cntvoff_el2", 0);
        sysreg_write!("vttbr_el2", 0);
        sysreg_write!("hstr_el2", 0);
        let midr = sysreg_read!("midr_el1");
        sysreg_write!("vpidr_el2", midr);
        let mpidr = sysreg_read!("mpidr_el1");
        sysreg_write!("vmpidr_el2", mpidr);
        let pmcr = sysreg_read!("pmcr_el0");
        sysreg_write!("mdcr_el2", (pmcr >> 11) & 0x1f); // HPMN = PMCR_EL0.N
    }
    // SCTLR_EL1: RES1 bits only (MMU and caches off), as booting.rst asks.
    sysreg_write!("sctlr_el1", 0x30d0_0800);
}

// ------------------------------------------------------------------ Platform

struct Hw;

impl Platform for Hw {
    fn raise_sdei_sgi(&mut self, core: usize) {
        gic::sgi0(SGI_SDEI, core);
    }
    fn wake(&mut self, core: usize) {
        gic::sgi0(crate::dispatch::SGI_WAKE, core);
        regs::sev();
    }
    fn write_elr_spsr(&mut self, el: u8, elr: u64, spsr: u64) {
        if el == 2 {
            sysreg_write!("elr_el2", elr);
            sysreg_write!("spsr_el2", spsr);
        } else {
            sysreg_write!("elr_el1", elr);
            sysreg_write!("spsr_el1", spsr);
        }
    }
}

fn gpio_pulse(pin: u32) -> ! {
    // PL061: GPIODIR at 0x400; GPIODATA is addressed through a mask in
    // address bits 9:2, so offset (1 << pin) << 2 touches only `pin`.
    let dir = SECURE_GPIO + 0x400;
    write8(dir, read8(dir) | (1 << pin));
    let data = SECURE_GPIO + ((1usize << pin) << 2);
    write8(data, 0);
    write8(data, 1 << pin);
    park()
}

// ------------------------------------------------------------------ exceptions

/// Called by every vector slot with the saved frame.
#[no_mangle]
extern "C" fn el3_exception(frame: &mut TrapFrame, slot: u64) {
    match slot {
        // Lower EL, AArch64, synchronous.
        8 => {
            let esr = sysreg_read!("esr_el3");
            if esr >> 26 == 0x17 {
                let core = this_core();
                let next = handle_smc(&POWER, pe_mut(), core, frame, &mut Hw);
                match next {
                    Next::Return => {}
                    Next::CpuOff => {
                        gic::disable_group1ns();
                        // SAFETY: never returns; the SMC's EL3 frames are abandoned.
                        unsafe { el3_reenter_hold() }
                    }
                    Next::SystemOff => {
                        say!("PSCI SYSTEM_OFF");
                        gpio_pulse(GPIO_POWEROFF)
                    }
                    Next::SystemReset => {
                        say!("PSCI SYSTEM_RESET");
                        gpio_pulse(GPIO_RESET)
                    }
                }
            } else {
                unexpected(frame, slot, esr)
            }
        }
        // Lower EL FIQ: Group 0.
        10 => {
            let pe = pe_mut();
            loop {
                let intid = gic::ack0();
                if intid >= gic::INTID_SPECIAL {
                    break;
                }
                gic::eoi0(intid);
                if intid == SGI_SDEI {
                    let _ = handle_sdei_sgi(pe, frame);
                }
                // SGI_WAKE on a running core: nothing to do.
            }
        }
        _ => unexpected(frame, slot, sysreg_read!("esr_el3")),
    }
}

fn unexpected(frame: &TrapFrame, slot: u64, esr: u64) -> ! {
    say!(
        "unexpected exception on core {}: vector slot {slot}, ESR_EL3 {esr:#x}, ELR_EL3 {:#x}, SPSR_EL3 {:#x}; parking",
        this_core(),
        frame.elr,
        frame.spsr
    );
    park()
}

// ------------------------------------------------------------------ entry

/// Core 0 after `_start` has set up the stack, .data and .bss.
#[no_mangle]
extern "C" fn rust_primary_main(core: usize) -> ! {
    say!("EL3 firmware: PSCI 1.1, SDEI 1.0 (event 0 on Group-0 SGI {SGI_SDEI})");
    let cpu = cpu_features();
    NS_EL.store(if cpu.el2 && cpu.vhe { 2 } else { 1 }, Ordering::Relaxed);
    init_el3(cpu);
    let cores = gic::count_redistributors().min(MAX_CPUS);
    let ram_size = ram_size_from_qemu_dtb();
    POWER.cold_boot(cores, core, RAM_BASE, ram_size);
    gic::init_distributor();
    gic::init_cpu(sysreg_read!("mpidr_el1"), cpu.el2);
    // Releases the other cores from `_start`.
    gic::enable_distributor();
    regs::sev();

    let el = NS_EL.load(Ordering::Relaxed);
    say!("{cores} cores, {} MiB RAM, Linux at EL{el}", ram_size >> 20);
    match load_linux(ram_size) {
        Ok((entry, dtb)) => {
            say!("entering Linux at {entry:#x}, DTB at {dtb:#x}");
            let mut f = TrapFrame::ZERO;
            f.x[0] = dtb;
            f.elr = entry;
            f.spsr = spsr_elx_h_masked(el);
            // SAFETY: `f` is on this core's EL3 stack; never returns.
            unsafe { el3_exit_frame(&f) }
        }
        Err(e) => {
            say!("cannot boot Linux: {e}");
            park()
        }
    }
}

/// Cores other than 0, released once core 0 enabled the distributor.
#[no_mangle]
extern "C" fn rust_secondary_main(_core: usize) -> ! {
    let cpu = cpu_features();
    init_el3(cpu);
    gic::init_cpu(sysreg_read!("mpidr_el1"), cpu.el2);
    rust_hold()
}

/// The wait loop of a core that is off: sleep in WFI until CPU_ON publishes
/// an entry point (and raises the wake-up SGI), then enter the Normal world.
#[no_mangle]
extern "C" fn rust_hold() -> ! {
    let core = this_core();
    let (entry, context) = loop {
        if let Some(e) = POWER.take_entry(core) {
            break e;
        }
        regs::wfi();
        // Drain Group 0: the wake-up SGI, or an SDEI signal to an off core
        // (dropped: this PE is off, so masked).
        loop {
            let intid = gic::ack0();
            if intid >= gic::INTID_SPECIAL {
                break;
            }
            gic::eoi0(intid);
        }
    };
    *pe_mut() = Pe::new();
    init_el3(cpu_features());
    // A core that CPU_OFF had taken out of an interrupt handler (Linux's
    // crash stop) comes back with none active, as a powered-off core would.
    gic::end_active(sysreg_read!("mpidr_el1"));
    let mut f = TrapFrame::ZERO;
    f.x[0] = context;
    f.elr = entry;
    f.spsr = spsr_elx_h_masked(NS_EL.load(Ordering::Relaxed));
    // SAFETY: `f` is on this core's EL3 stack; never returns.
    unsafe { el3_exit_frame(&f) }
}

// ------------------------------------------------------------------ fw_cfg and boot

/// A Normal-world RAM range as a byte slice.
///
/// # Safety
/// `[addr, addr + len)` must be RAM that nothing else uses while the slice
/// lives: only core 0 runs during boot (the others wait for CPU_ON), and the
/// Normal world has not started.
unsafe fn ns_ram(addr: u64, len: usize) -> &'static mut [u8] {
    // SAFETY: per the caller's contract.
    unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len) }
}

const SCRATCH: u64 = RAM_BASE + boot::SCRATCH_OFFSET;

fn fw_cfg_dma(key: u16, len: u32, dst: u64) -> Result<(), ()> {
    let d = fw_cfg::dma_read_descriptor(key, len, dst);
    // SAFETY: the first 16 bytes of the boot scratch area (see `boot`), used
    // by core 0 only.
    let desc = unsafe { ns_ram(SCRATCH, 16) };
    desc.copy_from_slice(&d);
    regs::dsb_sy();
    // The DMA address register is big-endian; QEMU runs the transfer on this write.
    write64(FW_CFG + fw_cfg::FW_CFG_DMA_ADDR as usize, SCRATCH.to_be());
    regs::dsb_sy();
    // QEMU clears the control word when the transfer is done, or leaves
    // FW_CFG_DMA_CTL_ERROR set.
    let control = u32::from_be_bytes([desc[0], desc[1], desc[2], desc[3]]);
    if control != 0 {
        return Err(());
    }
    Ok(())
}

fn fw_cfg_has_dma() -> bool {
    // The legacy interface: select, then read bytes from the data register.
    let select = |key: u16| write16(FW_CFG + fw_cfg::FW_CFG_SELECTOR as usize, key.to_be());
    let read4 = || {
        let mut b = [0u8; 4];
        for x in &mut b {
            *x = read8(FW_CFG + fw_cfg::FW_CFG_DATA as usize);
        }
        b
    };
    select(fw_cfg::FW_CFG_SIGNATURE);
    if read4() != *b"QEMU" {
        return false;
    }
    select(fw_cfg::FW_CFG_ID);
    u32::from_le_bytes(read4()) & fw_cfg::FW_CFG_VERSION_DMA != 0
}

/// RAM size from the `/memory` node of QEMU's DTB (fw_cfg has no RAM size
/// item on arm). Falls back to 128 MiB, QEMU's default, with a warning.
fn ram_size_from_qemu_dtb() -> u64 {
    // SAFETY: the first 8 bytes of RAM hold QEMU's DTB header; core 0 only.
    let h = unsafe { ns_ram(RAM_BASE, 8) };
    let total = (u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize).min(boot::DTB_MAX as usize);
    // SAFETY: QEMU's DTB lies in the first MiB of RAM; read-only use, core 0 only.
    let dtb = unsafe { ns_ram(RAM_BASE, total) };
    match boot::ram_from_dtb(dtb) {
        Ok(Some((base, size))) if base == RAM_BASE => size,
        other => {
            say!("no RAM at {RAM_BASE:#x} in QEMU's DTB ({other:?}); assuming 128 MiB");
            0x800_0000
        }
    }
}

fn fw_cfg_u32(key: u16) -> Option<u32> {
    let at = SCRATCH + 0x100;
    // SAFETY: scratch bytes 0x100..0x104, core 0 only.
    let b = unsafe { ns_ram(at, 4) };
    fw_cfg_dma(key, 4, at).ok()?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Output buffer for the rewritten DTB, in secure RAM.
struct DtbBuf(UnsafeCell<[u8; boot::DTB_MAX as usize]>);
// SAFETY: used by core 0 only, once, during boot.
unsafe impl Sync for DtbBuf {}
static DTB_OUT: DtbBuf = DtbBuf(UnsafeCell::new([0; boot::DTB_MAX as usize]));

#[derive(Debug)]
enum LoadError {
    NoFwCfgDma,
    FwCfg(&'static str),
    Boot(BootError),
    Dtb(fdt::FdtError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFwCfgDma => f.write_str("QEMU fw_cfg with DMA not found at 0x9020000"),
            Self::FwCfg(what) => write!(f, "fw_cfg DMA read of the {what} failed"),
            Self::Boot(e) => write!(f, "{e}"),
            Self::Dtb(e) => write!(f, "QEMU's DTB at {RAM_BASE:#x}: {e}"),
        }
    }
}

/// Loads kernel, initrd and command line from fw_cfg, rewrites the DTB.
/// Returns (entry, DTB address).
fn load_linux(ram_size: u64) -> Result<(u64, u64), LoadError> {
    if !fw_cfg_has_dma() {
        return Err(LoadError::NoFwCfgDma);
    }
    let kernel_size =
        fw_cfg_u32(fw_cfg::FW_CFG_KERNEL_SIZE).ok_or(LoadError::FwCfg("kernel size"))?;
    if kernel_size == 0 {
        return Err(LoadError::Boot(BootError::NoKernel));
    }
    let initrd_size = fw_cfg_u32(fw_cfg::FW_CFG_INITRD_SIZE).unwrap_or(0);
    let cmdline_size = fw_cfg_u32(fw_cfg::FW_CFG_CMDLINE_SIZE).unwrap_or(0);

    let hdr_at = SCRATCH + 0x200;
    fw_cfg_dma(fw_cfg::FW_CFG_KERNEL_DATA, IMAGE_HEADER_SIZE as u32, hdr_at)
        .map_err(|()| LoadError::FwCfg("kernel header"))?;
    // SAFETY: scratch bytes 0x200..0x240, core 0 only.
    let hdr = ImageHeader::parse(unsafe { ns_ram(hdr_at, IMAGE_HEADER_SIZE) })
        .map_err(LoadError::Boot)?;
    let plan = boot::plan(
        RAM_BASE,
        ram_size,
        &hdr,
        u64::from(kernel_size),
        u64::from(initrd_size),
    )
    .map_err(LoadError::Boot)?;

    fw_cfg_dma(fw_cfg::FW_CFG_KERNEL_DATA, kernel_size, plan.kernel)
        .map_err(|()| LoadError::FwCfg("kernel"))?;
    if let Some((start, _)) = plan.initrd {
        fw_cfg_dma(fw_cfg::FW_CFG_INITRD_DATA, initrd_size, start)
            .map_err(|()| LoadError::FwCfg("initrd"))?;
    }
    let cmd_at = SCRATCH + 0x1000;
    let cmd_max = (boot::SCRATCH_SIZE - 0x1000) as u32;
    let bootargs: Option<&[u8]> = if cmdline_size > 1 && cmdline_size <= cmd_max {
        fw_cfg_dma(fw_cfg::FW_CFG_CMDLINE_DATA, cmdline_size, cmd_at)
            .map_err(|()| LoadError::FwCfg("command line"))?;
        // SAFETY: scratch bytes 0x1000.., within SCRATCH_SIZE; core 0 only;
        // nothing writes the scratch area while the slice is in use.
        let s = unsafe { ns_ram(cmd_at, cmdline_size as usize) };
        // fw_cfg's command line includes its NUL; make sure of it.
        if let Some(last) = s.last_mut() {
            *last = 0;
        }
        Some(s)
    } else {
        None
    };

    // QEMU's DTB: read its header for the size, rewrite into secure RAM,
    // copy back in place.
    // SAFETY: the first 8 bytes of RAM hold QEMU's DTB header; core 0 only.
    let h = unsafe { ns_ram(plan.dtb, 8) };
    let total = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let total = total.min(boot::DTB_MAX as usize);
    // SAFETY: QEMU's DTB occupies [dtb, dtb + total) ⊆ the first MiB of RAM,
    // which the plan keeps free of kernel and initrd; core 0 only.
    let input = unsafe { ns_ram(plan.dtb, total) };
    // SAFETY: DTB_OUT is used once, by core 0, here.
    let out = unsafe { &mut *DTB_OUT.0.get() };
    let mut vals = DtbValues::default();
    let mut props = [Prop {
        node: "",
        name: "",
        value: b"",
    }; 9];
    let n = boot::linux_dtb_props(&mut vals, bootargs, plan.initrd, &mut props);
    let size =
        fdt::edit(input, &boot::LINUX_DTB_NODES, &props[..n], out).map_err(LoadError::Dtb)?;
    // SAFETY: the rewritten DTB fits in the first MiB of RAM (DTB_MAX), which
    // the plan keeps free; `input` is no longer used.
    let dst = unsafe { ns_ram(plan.dtb, size) };
    dst.copy_from_slice(&out[..size]);
    regs::dsb_sy();
    if let Some((s, e)) = plan.initrd {
        say!(
            "kernel {:#x}..{:#x}, initrd {s:#x}..{e:#x}, DTB {size} bytes",
            plan.kernel,
            plan.kernel_end
        );
    } else {
        say!(
            "kernel {:#x}..{:#x}, no initrd, DTB {size} bytes",
            plan.kernel,
            plan.kernel_end
        );
    }
    Ok((plan.kernel, plan.dtb))
}
