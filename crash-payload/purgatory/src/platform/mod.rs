//! Bare-metal part (`target_os = "none"` only): the entry and exit
//! assembly, system registers, the UART, the SHA-256 instructions, and the
//! sequence in [`purgatory_main`].
//!
//! `unsafe` is confined to this module: system-register and MMIO access,
//! the segments read as slices, the page-table pool, and the `extern "C"`
//! boundary with the assembly.

use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;
use core::mem::offset_of;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::layout::{self, Params, SegmentDigest, FLAG_NO_MMU, FLAG_NO_SHA_INSNS, FLAG_QUIET};
use crate::mmu::{self, Builder, MapError, Regime, Table};
use crate::sha256::{self, compress_soft, Compress};
use crate::text;

/// Stack bytes (`link.ld` reserves them after `.bss`).
const STACK_SIZE: usize = 0x4000;
const _: () = assert!(STACK_SIZE == 0x4000, "update the stack in link.ld");
/// Page tables in the pool: the root, and for 16 segments spread over
/// different GiB a level-1 and level-2 table each, with room to spare.
const POOL_TABLES: usize = 24;
/// `R_AARCH64_RELATIVE` (ELF for the Arm 64-bit Architecture, 5.7.12).
const R_AARCH64_RELATIVE: u64 = 1027;

/// Registers the purgatory changes, as it found them; `purgatory_exit`
/// writes them back (for the current EL) before it enters the kernel.
#[repr(C)]
struct Saved {
    sctlr: u64,
    tcr: u64,
    mair: u64,
    ttbr0: u64,
    /// `CPACR_EL1` at EL1, `CPTR_EL2` at EL2.
    cpacr: u64,
    vbar: u64,
}
const _: () = assert!(core::mem::size_of::<Saved>() == 48);

global_asm!(
    include_str!("../asm/entry.S"),
    hdr_code1 = const layout::HDR_CODE1,
    hdr_magic = const layout::HDR_MAGIC,
    hdr_version = const layout::HDR_VERSION,
    hdr_header_size = const layout::HDR_HEADER_SIZE,
    hdr_params_offset = const layout::HDR_PARAMS_OFFSET,
    hdr_params_size = const layout::HDR_PARAMS_SIZE,
    hdr_image_size = const layout::HDR_IMAGE_SIZE,
    hdr_entry_offset = const layout::HDR_ENTRY_OFFSET,
    hdr_reserved = const layout::HDR_RESERVED,
    header_size = const layout::HEADER_SIZE,
    params_size = const layout::PARAMS_SIZE,
    version = const layout::VERSION,
    r_aarch64_relative = const R_AARCH64_RELATIVE,
    sv_sctlr = const offset_of!(Saved, sctlr),
    sv_tcr = const offset_of!(Saved, tcr),
    sv_mair = const offset_of!(Saved, mair),
    sv_ttbr0 = const offset_of!(Saved, ttbr0),
    sv_cpacr = const offset_of!(Saved, cpacr),
    sv_vbar = const offset_of!(Saved, vbar),
);
global_asm!(include_str!("../asm/sha256_ce.S"));

extern "C" {
    /// The parameter block inside the image (`entry.S`), filled by the loader.
    static purgatory_params: Params;
    fn purgatory_dcache_civac(start: usize, end: usize);
    fn purgatory_exit(kernel: u64, dtb: u64, saved: *const Saved, start: usize, end: usize) -> !;
    fn purgatory_sha256_ce(state: *mut u32, data: *const u8, nblocks: usize);
}

/// The page-table pool, in `.bss` (zeroed by the entry code).
#[repr(C, align(4096))]
struct Pool(UnsafeCell<[Table; POOL_TABLES]>);
// SAFETY: one CPU runs the purgatory and only `build_map` touches the pool.
unsafe impl Sync for Pool {}
static POOL: Pool = Pool(UnsafeCell::new([[0; mmu::ENTRIES]; POOL_TABLES]));

/// Reads a system register (`mrs`).
macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading this register has no side effect at the EL the
        // caller checked it runs at.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// Writes a system register (`msr`); the caller adds the barrier it needs.
macro_rules! msr {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the callers below write only the registers `Saved` restores
        // (or SCTLR/CPACR/CPTR bits they document), at the EL they checked.
        unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nostack, preserves_flags)) };
    }};
}

/// Instruction barrier.
fn isb() {
    // SAFETY: a barrier only orders execution.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Full-system data barrier.
fn dsb_sy() {
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Where we run.
#[derive(Clone, Copy)]
struct Cpu {
    el2: bool,
    e2h: bool,
}

impl Cpu {
    fn now() -> Cpu {
        let el2 = (mrs!("CurrentEL") >> 2) & 3 == 2;
        let e2h = el2 && mrs!("hcr_el2") & (1 << 34) != 0;
        Cpu { el2, e2h }
    }

    fn regime(self) -> Regime {
        if self.el2 && !self.e2h {
            Regime::El2
        } else {
            Regime::TwoRanges
        }
    }

    fn save(self, old_vbar: u64) -> Saved {
        if self.el2 {
            Saved {
                sctlr: mrs!("sctlr_el2"),
                tcr: mrs!("tcr_el2"),
                mair: mrs!("mair_el2"),
                ttbr0: mrs!("ttbr0_el2"),
                cpacr: mrs!("cptr_el2"),
                vbar: old_vbar,
            }
        } else {
            Saved {
                sctlr: mrs!("sctlr_el1"),
                tcr: mrs!("tcr_el1"),
                mair: mrs!("mair_el1"),
                ttbr0: mrs!("ttbr0_el1"),
                cpacr: mrs!("cpacr_el1"),
                vbar: old_vbar,
            }
        }
    }

    /// Turns on the MMU (tables at `root`) and the D- and I-caches.
    fn enable_mmu(self, root: u64) {
        const M: u64 = 1 << 0;
        const A: u64 = 1 << 1;
        const C: u64 = 1 << 2;
        const I: u64 = 1 << 12;
        const WXN: u64 = 1 << 19;
        let tcr = mmu::tcr(self.regime(), mrs!("id_aa64mmfr0_el1") & 0xf);
        // SAFETY: a barrier only orders memory accesses.
        unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) }; // table stores complete before any walk
        if self.el2 {
            msr!("mair_el2", mmu::MAIR);
            msr!("tcr_el2", tcr);
            msr!("ttbr0_el2", root);
            isb(); // the new translation registers are in effect
                   // SAFETY: invalidating EL2 TLB entries only drops cached translations.
            unsafe { asm!("tlbi alle2", "dsb nsh", options(nostack, preserves_flags)) }; // no stale entry of the old kernel; wait for it
            isb(); // the invalidation is seen before the MMU goes on
            let s = mrs!("sctlr_el2");
            msr!("sctlr_el2", (s | M | C | I) & !(A | WXN));
        } else {
            msr!("mair_el1", mmu::MAIR);
            msr!("tcr_el1", tcr);
            msr!("ttbr0_el1", root);
            isb(); // the new translation registers are in effect
                   // SAFETY: invalidating EL1 TLB entries only drops cached translations.
            unsafe { asm!("tlbi vmalle1", "dsb nsh", options(nostack, preserves_flags)) }; // no stale entry of the old kernel; wait for it
            isb(); // the invalidation is seen before the MMU goes on
            let s = mrs!("sctlr_el1");
            msr!("sctlr_el1", (s | M | C | I) & !(A | WXN));
        }
        isb(); // fetch the next instruction with the MMU on
    }

    /// Lets this EL use FP/SIMD (for the SHA-256 instructions).
    fn enable_fp(self) {
        const FPEN: u64 = 0b11 << 20;
        const TFP: u64 = 1 << 10;
        if !self.el2 {
            msr!("cpacr_el1", mrs!("cpacr_el1") | FPEN);
        } else if self.e2h {
            msr!("cptr_el2", mrs!("cptr_el2") | FPEN); // E2H = 1: CPACR layout
        } else {
            msr!("cptr_el2", mrs!("cptr_el2") & !TFP);
        }
        isb(); // FP/SIMD accesses after this point are not trapped
    }
}

fn has_sha256_insns() -> bool {
    (mrs!("id_aa64isar0_el1") >> 12) & 0xf != 0 // ID_AA64ISAR0_EL1.SHA2
}

fn counter() -> u64 {
    isb(); // read the counter here, not earlier
    mrs!("cntvct_el0")
}

/// The PL011 base, for the panic and exception handlers too.
static UART: AtomicUsize = AtomicUsize::new(0);

/// Writes to the PL011 at `UART` (nothing when it is 0).
struct Console;

impl Console {
    fn byte(&self, b: u8) {
        const UARTDR: usize = 0x00;
        const UARTFR: usize = 0x18;
        const FR_TXFF: u32 = 1 << 5;
        let base = UART.load(Ordering::Relaxed);
        if base == 0 {
            return;
        }
        // A bounded wait: a UART that never drains must not hang the hand-over.
        for _ in 0..1_000_000 {
            // SAFETY: `base` is the PL011 the loader named; FR is a read-only register.
            let fr = unsafe { core::ptr::read_volatile((base + UARTFR) as *const u32) };
            if fr & FR_TXFF == 0 {
                break;
            }
        }
        // SAFETY: writing DR transmits one byte.
        unsafe { core::ptr::write_volatile((base + UARTDR) as *mut u32, u32::from(b)) };
    }

    fn bytes(&self, s: &[u8]) -> &Self {
        for &b in s {
            if b == b'\n' {
                self.byte(b'\r');
            }
            self.byte(b);
        }
        self
    }

    fn str(&self, s: &str) -> &Self {
        self.bytes(s.as_bytes())
    }

    fn hex(&self, v: u64) -> &Self {
        self.bytes(&text::hex_u64(v))
    }

    fn dec(&self, v: u64) -> &Self {
        let mut b = [0u8; 20];
        self.bytes(text::dec_u64(v, &mut b))
    }

    fn digest(&self, d: &[u8; 32]) -> &Self {
        let mut b = [0u8; 64];
        self.bytes(text::hex_bytes(d, &mut b))
    }
}

fn park() -> ! {
    loop {
        // SAFETY: waits for an event; interrupts are masked, so this is a low-power spin.
        unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
    }
}

fn compress_ce(state: &mut [u32; 8], blocks: &[u8]) {
    // SAFETY: called only after `has_sha256_insns()` and `enable_fp()`;
    // `blocks` is whole 64-byte blocks (sha256::digest's contract), and the
    // routine reads exactly `len / 64` of them and writes `state`.
    unsafe { purgatory_sha256_ce(state.as_mut_ptr(), blocks.as_ptr(), blocks.len() / 64) };
}

/// The SHA-256 instructions agree with the software path on a few lengths.
fn ce_self_test() -> bool {
    let mut buf = [0u8; 200];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    [0usize, 3, 55, 56, 64, 119, 200].iter().all(|&n| {
        sha256::digest(&buf[..n], compress_ce) == sha256::digest(&buf[..n], compress_soft)
    })
}

/// Clean+invalidate every segment to the PoC.
fn civac_segments(segs: &[SegmentDigest]) {
    for s in segs {
        // SAFETY: cache maintenance by VA of RAM the loader placed; it changes
        // no data (lines are written back, then dropped).
        unsafe { purgatory_dcache_civac(s.addr as usize, s.addr.saturating_add(s.len) as usize) };
    }
    dsb_sy(); // maintenance complete before the next access to these ranges
}

fn build_map(cpu: Cpu, p: &Params, base: u64, image_size: u64) -> Result<u64, MapError> {
    // SAFETY: the only reference to the pool; this runs once, on one CPU,
    // before the MMU is on. The pool is inside our image, which is
    // identity-mapped, so its address is its physical address.
    let tables = unsafe { &mut *POOL.0.get() };
    let root = tables.as_ptr() as u64;
    let mut b = Builder::new(tables, root, cpu.regime())?;
    b.map_normal(
        base,
        base.checked_add(image_size)
            .ok_or(MapError::TooHigh(base))?,
    )?;
    for s in p.used() {
        b.map_normal(
            s.addr,
            s.addr.checked_add(s.len).ok_or(MapError::TooHigh(s.addr))?,
        )?;
    }
    if p.uart_pl011 != 0 {
        b.map_device_page(p.uart_pl011)?;
    }
    Ok(b.root_pa())
}

/// Rust entry, from `entry.S` with a stack, `.bss` zeroed and our vectors in.
#[no_mangle]
extern "C" fn purgatory_main(base: usize, old_vbar: u64) -> ! {
    let cpu = Cpu::now();
    let saved = cpu.save(old_vbar);
    // SAFETY: the block is in our image; the loader wrote it before we ran
    // and nothing writes it now. Volatile: its contents are not the
    // compile-time zeros.
    let p: Params = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(purgatory_params)) };
    // SAFETY: the header is at `base` (entry.S); `image_size` is 8-aligned.
    let image_size =
        unsafe { core::ptr::read_volatile((base + layout::HDR_IMAGE_SIZE) as *const u64) };
    if p.check().is_ok() {
        UART.store(p.uart_pl011 as usize, Ordering::Relaxed);
    }
    let con = Console;
    if p.check().is_err() {
        // No trusted UART address: nothing can be printed. Never boot.
        park();
    }
    let segs = p.used();
    let t0 = counter();

    let mut mmu_on = false;
    if p.flags & FLAG_NO_MMU == 0 {
        // Drop any line that could hide what memory holds (memory is what
        // was corrupted, if anything was).
        civac_segments(segs);
        match build_map(cpu, &p, base as u64, image_size) {
            Ok(root) => {
                cpu.enable_mmu(root);
                mmu_on = true;
            }
            Err(e) => {
                let (what, at) = match e {
                    MapError::OutOfTables => ("out of page tables", 0),
                    MapError::TooHigh(a) => ("address above 2^48", a),
                    MapError::Conflict(a) => ("Device and Normal memory share a block", a),
                };
                con.str("purgatory: no identity map (")
                    .str(what)
                    .str(" at ")
                    .hex(at)
                    .str("); verifying with caches off\n");
            }
        }
    }

    let mut compress: Compress = compress_soft;
    let mut insns = false;
    if p.flags & FLAG_NO_SHA_INSNS == 0 && has_sha256_insns() {
        cpu.enable_fp();
        if ce_self_test() {
            compress = compress_ce;
            insns = true;
        } else {
            con.str("purgatory: SHA-256 instructions fail the self-test; hashing in software\n");
        }
    }

    let mut total = 0u64;
    for (i, s) in segs.iter().enumerate() {
        let data: &[u8] = if s.len == 0 {
            &[]
        } else {
            // SAFETY: the loader placed this segment at `addr` (RAM,
            // identity-mapped or with the MMU off); nothing writes it while
            // we read it.
            unsafe { core::slice::from_raw_parts(s.addr as *const u8, s.len as usize) }
        };
        let got = sha256::digest(data, compress);
        if got != s.sha256 {
            con.str("purgatory: segment ")
                .dec(i as u64)
                .str(" at ")
                .hex(s.addr)
                .str(" (")
                .dec(s.len)
                .str(" bytes): SHA-256 mismatch\n");
            con.str("purgatory:   expected ")
                .digest(&s.sha256)
                .str("\n");
            con.str("purgatory:   got      ").digest(&got).str("\n");
            con.str("purgatory: not entering the kernel; parked\n");
            park();
        }
        total += s.len;
    }
    // The new kernel starts with its caches off: everything it will read
    // must be in memory, and no line may linger to be hit later.
    civac_segments(segs);
    let t1 = counter();

    if p.flags & FLAG_QUIET == 0 {
        let (ms, tenths) = text::ticks_to_ms(t1.wrapping_sub(t0), mrs!("cntfrq_el0") & 0xffff_ffff);
        con.str("purgatory: ")
            .dec(segs.len() as u64)
            .str(" segments, ")
            .dec(total)
            .str(" bytes verified in ")
            .dec(ms)
            .str(".")
            .dec(tenths);
        con.str(if insns {
            " ms (SHA-256 instructions, "
        } else {
            " ms (software SHA-256, "
        });
        con.str(if mmu_on {
            "MMU and caches on)\n"
        } else {
            "MMU and caches off)\n"
        });
        con.str("purgatory: entering ")
            .hex(p.kernel_entry)
            .str(" with x0 = ")
            .hex(p.dtb)
            .str("\n");
    }
    let end = base + image_size as usize;
    // SAFETY: `saved` holds the values read at entry; the exit routine puts
    // them back, turns the MMU off and branches to the verified kernel.
    unsafe { purgatory_exit(p.kernel_entry, p.dtb, &saved, base, end) }
}

/// From the vectors in `entry.S`: an exception we never expect.
#[no_mangle]
extern "C" fn purgatory_exception(vector: u64, esr: u64, elr: u64, far: u64) -> ! {
    Console
        .str("purgatory: exception (vector ")
        .dec(vector)
        .str(") ESR=")
        .hex(esr)
        .str(" ELR=")
        .hex(elr)
        .str(" FAR=")
        .hex(far)
        .str("; parked\n");
    park()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    Console.str("purgatory: internal error (panic); parked\n");
    park()
}
