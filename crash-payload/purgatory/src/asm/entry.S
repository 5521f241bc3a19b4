/*
 * Purgatory entry, exception vectors and exit. A Rust asm template (braces doubled): the
 * {{name}} operands are layout constants from src/layout.rs and
 * src/platform/mod.rs (offset_of!/size_of!), never magic numbers.
 *
 * Entered at the load address (the header's first word) by the kernel's
 * kexec hand-over: EL1 or EL2, MMU off, D- and I-caches off, interrupts
 * masked (arch/arm64/kernel/cpu-reset.S, relocate_kernel.S).
 */

/* ---- Header and parameter block (src/layout.rs) ---- */
    .section .text.head, "ax"
    .global _head
_head:
    b       _start                          // code0: the entry point is the load address
    .org    _head + {hdr_code1}
    .word   0                               // code1
    .org    _head + {hdr_magic}
    .ascii  "KXRSPURG"
    .org    _head + {hdr_version}
    .word   {version}
    .org    _head + {hdr_header_size}
    .word   {header_size}
    .org    _head + {hdr_params_offset}
    .quad   purgatory_params - _head
    .org    _head + {hdr_params_size}
    .quad   {params_size}
    .org    _head + {hdr_image_size}
    .quad   __image_size                    // link.ld: .bss, stack and page tables included
    .org    _head + {hdr_entry_offset}
    .quad   0
    .org    _head + {hdr_reserved}
    .quad   0
    .org    _head + {header_size}
    .balign 8
    .global purgatory_params
purgatory_params:                           // filled by the loader (layout::fill)
    .space  {params_size}, 0

/* ---- Entry ---- */
    .text
    .global _start
_start:
    msr     daifset, #0xf                   // D, A, I, F masked (the kernel masked them already)
    adr     x19, _head                      // x19 = load address (MMU off: VA == PA)
    // Clean+invalidate the whole image to the PoC. While the MMU is off our
    // stores bypass the caches; no line of the image may survive in a cache
    // to be read (stale) or written back (over our data) once it is mapped
    // cacheable.
    ldr     x1, [x19, #{hdr_image_size}]
    mov     x0, x19
    add     x1, x19, x1
    bl      purgatory_dcache_civac
    dsb     sy                              // maintenance complete before the stores below

    // Self-relocation: linked at 0, so each R_AARCH64_RELATIVE entry
    // {{r_offset, r_info, r_addend}} asks for *(base + r_offset) = base + r_addend.
    adr     x2, __rela_start
    adr     x3, __rela_end
1:  cmp     x2, x3
    b.hs    2f
    ldp     x4, x5, [x2], #16               // r_offset, r_info
    ldr     x6, [x2], #8                    // r_addend
    cmp     x5, #{r_aarch64_relative}
    b.ne    .Lpark                          // any other type: the link went wrong
    add     x6, x6, x19
    str     x6, [x19, x4]
    b       1b

    // Zero .bss (stack and page tables included; 16-byte aligned in link.ld).
2:  adr     x2, __bss_start
    adr     x3, __bss_end
3:  cmp     x2, x3
    b.hs    4f
    stp     xzr, xzr, [x2], #16
    b       3b

4:  msr     spsel, #1                       // use SP_ELx, the stack exceptions use too
    adr     x2, __stack_top
    mov     sp, x2
    // Our vectors, so a fault is reported instead of jumping into the old
    // kernel's (virtual, now unmapped) ones. x20 = the old VBAR, restored at exit.
    adr     x2, purgatory_vectors
    mrs     x0, CurrentEL
    cmp     x0, #(2 << 2)
    b.eq    5f
    mrs     x20, vbar_el1
    msr     vbar_el1, x2
    b       6f
5:  mrs     x20, vbar_el2
    msr     vbar_el2, x2
6:  isb                                     // the new VBAR is in effect from here
    mov     x0, x19
    mov     x1, x20
    bl      purgatory_main                  // (base, old_vbar) -> !
.Lpark:
    wfe
    b       .Lpark

/*
 * purgatory_dcache_civac(start x0, end x1): clean and invalidate data cache
 * lines to the Point of Coherency, by VA (VA == PA with the MMU off or
 * under the identity map). Clobbers x0..x4; no barrier: callers issue dsb.
 */
    .global purgatory_dcache_civac
purgatory_dcache_civac:
    mrs     x2, ctr_el0
    ubfx    x2, x2, #16, #4                 // DminLine: log2(words) of the smallest D-cache line
    mov     x3, #4
    lsl     x3, x3, x2                      // line size in bytes
    sub     x4, x3, #1
    bic     x0, x0, x4
1:  cmp     x0, x1
    b.hs    2f
    dc      civac, x0
    add     x0, x0, x3
    b       1b
2:  ret

/*
 * purgatory_exit(kernel x0, dtb x1, saved x2, image_start x3, image_end x4):
 * leaves the CPU as the kernel handed it over (MMU and caches off, the
 * registers in `Saved` restored) and enters the new kernel with x0 = DTB,
 * x1..x3 = 0. Never returns; uses no stack once the saved values are loaded.
 */
    .global purgatory_exit
purgatory_exit:
    mov     x19, x0                         // x19 = kernel entry
    mov     x20, x1                         // x20 = DTB
    ldr     x21, [x2, #{sv_sctlr}]
    ldr     x22, [x2, #{sv_tcr}]
    ldr     x23, [x2, #{sv_mair}]
    ldr     x24, [x2, #{sv_ttbr0}]
    ldr     x25, [x2, #{sv_cpacr}]
    ldr     x26, [x2, #{sv_vbar}]
    // Our image (stack, tables, data) was written through the caches:
    // push it to the PoC and drop it, so no dirty line is evicted later over
    // memory the new kernel owns (the crash kernel's usable memory includes
    // this segment).
    mov     x0, x3
    mov     x1, x4
    bl      purgatory_dcache_civac
    dsb     sy                              // the clean reaches the PoC before the caches go off
    mrs     x0, CurrentEL
    cmp     x0, #(2 << 2)
    b.eq    2f
    msr     sctlr_el1, x21                  // MMU, D- and I-cache back as found: off
    isb                                     // following instructions run with the MMU off
    ic      iallu                           // no stale instructions for the new kernel
    tlbi    vmalle1                         // drop our identity map's TLB entries
    dsb     nsh                             // I-cache and TLB invalidation complete
    isb                                     // and seen by the instruction stream
    msr     tcr_el1, x22
    msr     mair_el1, x23
    msr     ttbr0_el1, x24
    msr     cpacr_el1, x25
    msr     vbar_el1, x26
    b       3f
2:  msr     sctlr_el2, x21                  // as above, EL2 (with or without E2H)
    isb                                     // following instructions run with the MMU off
    ic      iallu                           // no stale instructions for the new kernel
    tlbi    alle2                           // drop our identity map's TLB entries (EL2 and EL2&0)
    dsb     nsh                             // I-cache and TLB invalidation complete
    isb                                     // and seen by the instruction stream
    msr     tcr_el2, x22
    msr     mair_el2, x23
    msr     ttbr0_el2, x24
    msr     cptr_el2, x25
    msr     vbar_el2, x26
3:  isb                                     // restored registers in effect before the branch
    mov     x0, x20
    mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    br      x19

/* ---- Exception vectors: report and park (purgatory_exception) ---- */
    .section .text.vectors, "ax"
    .balign 0x800
    .global purgatory_vectors
purgatory_vectors:
    .irp    n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .org    purgatory_vectors + \n * 0x80   // fails the build if a slot overflows
    mov     x0, #\n
    b       .Lvector_common
    .endr
    .org    purgatory_vectors + 0x800
.Lvector_common:
    mrs     x4, CurrentEL
    cmp     x4, #(2 << 2)
    b.eq    1f
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    b       2f
1:  mrs     x1, esr_el2
    mrs     x2, elr_el2
    mrs     x3, far_el2
2:  adr     x4, __stack_top                 // a fresh stack: the fault may be an overflow
    mov     sp, x4
    bl      purgatory_exception             // (vector, esr, elr, far) -> !
    b       .
