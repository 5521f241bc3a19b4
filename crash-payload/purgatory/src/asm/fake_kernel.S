/*
 * Fake kernel for tests/purgatory/run.sh (see src/bin/fake_kernel.rs).
 * Registers: x19..x22 = x0..x3 as entered, x23 = current EL, x24 = SCTLR of
 * that EL, x25 = PL011 base. Helpers clobber x0 and x9..x14 only.
 */
    .section .text.start, "ax"
    .global _start
_start:
    mov     x19, x0
    mov     x20, x1
    mov     x21, x2
    mov     x22, x3
    mrs     x23, CurrentEL
    lsr     x23, x23, #2
    cmp     x23, #2
    b.eq    1f
    mrs     x24, sctlr_el1
    b       2f
1:  mrs     x24, sctlr_el2
2:  movz    x25, #0x0900, lsl #16           // QEMU virt PL011
    adr     x0, .Lmsg_x0
    bl      puts
    mov     x0, x19
    bl      puthex
    adr     x0, .Lmsg_x1
    bl      puts
    mov     x0, x20
    bl      puthex
    adr     x0, .Lmsg_x2
    bl      puts
    mov     x0, x21
    bl      puthex
    adr     x0, .Lmsg_x3
    bl      puts
    mov     x0, x22
    bl      puthex
    adr     x0, .Lmsg_sctlr
    bl      puts
    mov     x0, x24
    bl      puthex
    adr     x0, .Lmsg_el
    bl      puts
    add     x0, x23, #'0'
    bl      putc
    mov     x0, #'\n'
    bl      putc
    // Semihosting SYS_EXIT (0x18); AArch64 passes a block
    // (ADP_Stopped_ApplicationExit, exit code 0).
    mov     x0, #0x18
    adr     x1, .Lexit_block
    hlt     #0xf000
3:  wfe
    b       3b

putc:                                       // x0 = byte
1:  ldr     w9, [x25, #0x18]                // UARTFR
    tbnz    w9, #5, 1b                      // TXFF: transmit FIFO full
    strb    w0, [x25]                       // UARTDR
    ret

puts:                                       // x0 = NUL-terminated string
    mov     x10, x30
    mov     x11, x0
1:  ldrb    w0, [x11], #1
    cbz     w0, 2f
    bl      putc
    b       1b
2:  ret     x10

puthex:                                     // x0 = value, printed as 0x + 16 digits
    mov     x12, x30
    mov     x13, x0
    mov     x14, #60
    mov     x0, #'0'
    bl      putc
    mov     x0, #'x'
    bl      putc
1:  lsr     x0, x13, x14
    and     x0, x0, #0xf
    cmp     x0, #10
    b.lo    2f
    add     x0, x0, #('a' - '0' - 10)
2:  add     x0, x0, #'0'
    bl      putc
    subs    x14, x14, #4
    b.ge    1b
    ret     x12

    .balign 8
.Lexit_block:
    .quad   0x20026                         // ADP_Stopped_ApplicationExit
    .quad   0
.Lmsg_x0:   .asciz "fake-kernel: x0="
.Lmsg_x1:   .asciz " x1="
.Lmsg_x2:   .asciz " x2="
.Lmsg_x3:   .asciz " x3="
.Lmsg_sctlr: .asciz " sctlr="
.Lmsg_el:   .asciz " EL"

/*
 * VHE stand-in for the hand-over of a kernel that ran at EL2 with
 * HCR_EL2.E2H = 1 (tests/purgatory/run.sh, `mkimage --vhe`): QEMU starts
 * the CPU here at EL2 (-machine virt,virtualization=on -cpu max); set E2H
 * and TGE as such a kernel leaves them, then enter the purgatory, whose
 * address mkimage writes at offset 0x3f8 (VHE_SLOT in examples/mkimage.rs).
 */
    .org    0x3f8
.Lpurgatory_addr:
    .quad   0
    .org    0x400
vhe_stub:
    mrs     x0, hcr_el2
    orr     x0, x0, #(1 << 34)              // E2H: EL2 host (VHE) regime
    orr     x0, x0, #(1 << 27)              // TGE: EL0 traps to EL2, as under a VHE kernel
    msr     hcr_el2, x0
    isb                                     // the regime change is in effect before the branch
    ldr     x1, .Lpurgatory_addr
    br      x1
