//! `sdei-fw`: a small EL3 firmware for QEMU's `virt` machine that gives Linux
//! PSCI 1.1 and SDEI 1.0 (event 0), so the crash-stop path of this project
//! runs under QEMU in CI.
//!
//! # Running it
//!
//! ```text
//! cargo build -p sdei-fw --target aarch64-unknown-none-softfloat --release
//! aarch64-linux-gnu-objcopy -O binary \
//!     target/aarch64-unknown-none-softfloat/release/sdei-fw sdei-fw.bin
//! qemu-system-aarch64 -machine virt,secure=on,gic-version=3 -cpu cortex-a57 \
//!     -smp 2 -m 2048 -nographic -bios sdei-fw.bin \
//!     -kernel vmlinuz -initrd initrd.cpio.gz -append "console=ttyAMA0"
//! ```
//!
//! With firmware in `-bios`, QEMU does not load `-kernel`/`-initrd`/`-append`
//! into memory: it offers them through `fw_cfg`, and this firmware reads them
//! with `fw_cfg` DMA (see [`boot`] for where they go). QEMU's own DTB is at the
//! start of RAM; the firmware rewrites it in place ([`fdt`]) to add `/psci`
//! (QEMU leaves it out when firmware runs at EL3), `enable-method = "psci"` on
//! the CPUs, `/firmware/sdei`, and `/chosen` `bootargs` and `linux,initrd-*`.
//! It enters Linux at EL1 (at EL2 on a CPU with VHE) with `x0` = the DTB.
//!
//! # Cut
//!
//! Host-testable, `#![forbid(unsafe_code)]`: [`frame`] (the saved register
//! frame), [`psci_state`] (power states), [`sdei_state`] (event 0 per PE),
//! [`dispatch`] (every SMC and SDEI signal), [`fdt`], [`boot`].
//! Bare metal only (`target_os = "none"`): `platform`, which holds the reset
//! and vector assembly, system registers, the GICv3, PL011, PL061 and
//! `fw_cfg` drivers, and the glue that calls the modules above.
//!
//! # Design notes
//!
//! - Every core starts at 0x0 at EL3. Core 0 initialises; the others wait
//!   until the GIC distributor is enabled, set up their redistributor and CPU
//!   interface, and wait for `CPU_ON` in `WFI` (woken by a Group-0 SGI), which
//!   under TCG sleeps the vCPU thread — unlike `WFE`, which QEMU treats as a
//!   yield and so spins.
//! - SDEI event 0 is Group-0 SGI 8, routed to EL3 as FIQ (`SCR_EL3.FIQ`), so
//!   it is taken however the Normal world has masked DAIF.
//! - The MMU stays off at EL3: firmware data accesses are Device-nGnRnE,
//!   which QEMU does not distinguish from Normal memory. On hardware this
//!   firmware would need an identity map and cache maintenance.
//! - The firmware never touches FP/SIMD (built soft-float; a test disassembles
//!   the binary to check), so it needs no FP context switch.
//! - Linux runs at EL1 (cortex-a57; also with `virtualization=on`, where EL2
//!   has no VHE and is configured to stay out of the way) or at EL2 with VHE
//!   (`-cpu max,virtualization=on`). `SCR_EL3` enables what the CPU has that a
//!   lower EL would otherwise trap on (pointer authentication, SVE, SME, FGT,
//!   HCX, MTE2, CSV2 contexts).
//! - A core that calls `CPU_OFF` inside an SDEI dispatch loses the dispatch:
//!   `CPU_ON` starts it with fresh SDEI state (masked, event 0 unregistered),
//!   so it receives event 0 again once Linux re-registers it.
//! - A core is never powered off, so `CPU_ON` hands it back with what a
//!   power cycle would have cleared ended by hand: interrupts it left active
//!   (Linux calls `CPU_OFF` from inside its stop IPI's handler, and that IPI's
//!   priority would otherwise stay the running priority, masking every
//!   Normal-world interrupt: a two-CPU capture kernel hung without it).
//!
//! # Tests
//!
//! `cargo test -p sdei-fw` runs the state machines and also builds the
//! firmware and disassembles it (`tests/no_fp_simd.rs`).
//! `tests/firmware/boot-linux.sh` boots Debian's kernel on it (PSCI, SDEI,
//! hotplug, and event 0 delivered to a CPU spinning with DAIF masked through
//! Linux's own SDEI driver); `FIRMWARE=tfa` runs the same checks on TF-A, and
//! `tests/firmware/sdei-latency.sh` compares their delivery latency.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

pub mod boot;
pub mod dispatch;
pub mod fdt;
pub mod frame;
pub mod psci_state;
pub mod sdei_state;

#[cfg(target_os = "none")]
mod platform;
