// EL3 exception vectors. Each of the 16 slots saves the interrupted context
// as a TrapFrame ({frame_size} bytes; x30/ELR_EL3 pair at {frame_x30},
// SPSR_EL3 at {frame_spsr}) on SP_EL3, calls
//     el3_exception(frame: &mut TrapFrame, slot: u64)
// and restores whatever the frame then holds before ERET. Slots are 0x80
// bytes; a slot that grows past its size makes the next `.org` move
// backwards, which fails the build.

    .macro save_frame
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp, #16 * 0]
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    mrs     x0, elr_el3
    stp     x30, x0, [sp, #{frame_x30}]
    mrs     x0, spsr_el3
    str     x0, [sp, #{frame_spsr}]
    .endm

    .macro ventry idx
    .org    el3_vectors + \idx * 0x80
    save_frame
    mov     x0, sp                      // x0: &mut TrapFrame
    mov     x1, #\idx                   // x1: which slot
    bl      el3_exception
    b       el3_restore_and_eret
    .endm

    .section .text.vectors, "ax"
    .balign 2048                        // VBAR_EL3 bits 10:0 are RES0
    .global el3_vectors
el3_vectors:
    ventry 0                            // current EL, SP_EL0: sync
    ventry 1                            //   IRQ
    ventry 2                            //   FIQ
    ventry 3                            //   SError
    ventry 4                            // current EL, SP_EL3: sync
    ventry 5                            //   IRQ
    ventry 6                            //   FIQ
    ventry 7                            //   SError
    ventry 8                            // lower EL, AArch64: sync (SMC)
    ventry 9                            //   IRQ
    ventry 10                           //   FIQ (Group 0: SDEI SGI)
    ventry 11                           //   SError
    ventry 12                           // lower EL, AArch32: sync
    ventry 13                           //   IRQ
    ventry 14                           //   FIQ
    ventry 15                           //   SError
    .org    el3_vectors + 0x800

// el3_exit_frame(frame: *const TrapFrame) -> !: enter the lower EL the frame
// describes. The frame must be on this core's EL3 stack; SP_EL3 ends up just
// above it.
    .global el3_exit_frame
el3_exit_frame:
    mov     sp, x0
el3_restore_and_eret:
    ldr     x0, [sp, #{frame_spsr}]
    msr     spsr_el3, x0
    ldp     x30, x0, [sp, #{frame_x30}]
    msr     elr_el3, x0
    ldp     x0, x1, [sp, #16 * 0]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    add     sp, sp, #{frame_size}
    eret
    dsb     nsh                         // no speculation past ERET
    isb
