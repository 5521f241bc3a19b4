// sdei-fw reset entry. Every core of QEMU virt (secure=on, -bios) starts here
// at EL3, AArch64, with DAIF masked and the MMU off.
//
// Constants come from Rust as `const` operands: {max_cpus}, {stack_size},
// {gicd_base}. Symbols from link.ld: __stacks_end, __data_lma, __data_start,
// __data_end, __bss_start, __bss_end.

    .section .text.boot, "ax"
    .global _start
_start:
    mrs     x19, mpidr_el1
    and     x20, x19, #0xff             // x20: Aff0, the core index on virt
    ubfx    x21, x19, #8, #16           // Aff1 and Aff2 ...
    ubfx    x22, x19, #32, #8           // ... and Aff3 must be zero
    orr     x21, x21, x22
    cbnz    x21, boot_park
    cmp     x20, #{max_cpus}
    b.hs    boot_park

    // SP_EL3 (SPSel is 1 out of reset) = top of this core's stack.
    ldr     x0, =__stacks_end
    mov     x1, #{stack_size}
    msub    x0, x20, x1, x0
    mov     sp, x0

    ldr     x0, =el3_vectors
    msr     vbar_el3, x0
    isb                                 // vectors in effect before anything can fault

    cbnz    x20, secondary

    // Core 0: .data from flash to secure RAM, then zero .bss.
    ldr     x0, =__data_lma
    ldr     x1, =__data_start
    ldr     x2, =__data_end
1:  cmp     x1, x2
    b.hs    2f
    ldr     x3, [x0], #8
    str     x3, [x1], #8
    b       1b
2:  ldr     x1, =__bss_start
    ldr     x2, =__bss_end
3:  cmp     x1, x2
    b.hs    4f
    str     xzr, [x1], #8
    b       3b
4:  dsb     sy                          // .data/.bss written before Rust reads them
    mov     x0, x20
    bl      rust_primary_main
    b       boot_park

secondary:
    // Wait until core 0 has set up memory and the GIC: it enables Group 0 in
    // GICD_CTLR last. GICD_CTLR resets to 0, so a stale value from before a
    // reset cannot release us early (a flag in RAM could).
    ldr     x1, ={gicd_base}
5:  ldr     w2, [x1]
    tbnz    w2, #0, 6f
    wfe                                 // core 0 sends SEV; TCG treats WFE as a yield
    b       5b
6:  dsb     sy
    mov     x0, x20
    bl      rust_secondary_main
    b       boot_park

// el3_reenter_hold(): never returns. Resets SP_EL3 to the top of this core's
// stack (dropping whatever EL3 frames were live, e.g. the CPU_OFF SMC) and
// waits in rust_hold for CPU_ON.
    .global el3_reenter_hold
el3_reenter_hold:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    ldr     x1, =__stacks_end
    mov     x2, #{stack_size}
    msub    x1, x0, x2, x1
    mov     sp, x1
    bl      rust_hold
boot_park:
    wfi
    b       boot_park

    .ltorg
