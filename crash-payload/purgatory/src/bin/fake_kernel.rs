//! A stand-in kernel for `tests/purgatory/run.sh`. Entered by the purgatory,
//! it prints what the arm64 boot protocol says it must be given —
//! `fake-kernel: x0=<DTB> x1=0 x2=0 x3=0 sctlr.M=0 sctlr.C=0 EL<n>` — on the
//! PL011 at 0x0900_0000 (QEMU virt) and exits QEMU with semihosting
//! `SYS_EXIT`. Position-independent asm only; on a host this is a stub.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
core::arch::global_asm!(include_str!("../asm/fake_kernel.S"));

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("purgatory-fake-kernel is bare-metal test code; see tests/purgatory/run.sh");
    std::process::exit(2);
}
