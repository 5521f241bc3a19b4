/*
 * SHA-256 block function with the ARMv8 Cryptographic Extension (FEAT_SHA256).
 * A Rust asm template (braces are doubled). Only called after the caller saw
 * ID_AA64ISAR0_EL1.SHA2 != 0 and enabled FP/SIMD (CPACR/CPTR).
 *
 *   void purgatory_sha256_ce(uint32_t state[8], const uint8_t *data, size_t nblocks)
 *
 * Registers: v0 = ABCD, v1 = EFGH, v2/v3 = their values at block start,
 * v4..v7 = the message schedule (W[4i..4i+3] for the quad about to run),
 * v16..v31 = the 64 round constants, v8 = W + K for the current quad,
 * v9 = ABCD before the current quad. v8/v9 are callee-saved (AAPCS64, low
 * halves): saved on the stack. Loads use ld1 with 1- or 4-byte elements, so
 * they need no more than 4-byte alignment (the MMU-off path maps all memory
 * as Device, where unaligned accesses fault).
 */
    .arch_extension simd
    .arch_extension sha2

    .text
    .balign 16
.Lsha256_k:
    .word 0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5
    .word 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174
    .word 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da
    .word 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967
    .word 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85
    .word 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070
    .word 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3
    .word 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2

/*
 * Four rounds with constants v<k>, message words v<m0>; when <sched> is 1
 * also turns v<m0> into the words for four quads later (it needs v<m1>,
 * v<m2>, v<m3>, the words of the next three quads).
 */
.macro sha256_quad k, m0, m1, m2, m3, sched
    add         v8.4s, v\m0\().4s, v\k\().4s
    .if \sched
    sha256su0   v\m0\().4s, v\m1\().4s
    .endif
    mov         v9.16b, v0.16b
    sha256h     q0, q1, v8.4s
    sha256h2    q1, q9, v8.4s
    .if \sched
    sha256su1   v\m0\().4s, v\m2\().4s, v\m3\().4s
    .endif
.endm

    .global purgatory_sha256_ce
    .type purgatory_sha256_ce, %function
purgatory_sha256_ce:
    cbz         x2, 2f
    stp         d8, d9, [sp, #-16]!
    adr         x3, .Lsha256_k
    ld1         {{v16.4s, v17.4s, v18.4s, v19.4s}}, [x3], #64
    ld1         {{v20.4s, v21.4s, v22.4s, v23.4s}}, [x3], #64
    ld1         {{v24.4s, v25.4s, v26.4s, v27.4s}}, [x3], #64
    ld1         {{v28.4s, v29.4s, v30.4s, v31.4s}}, [x3]
    ld1         {{v0.4s, v1.4s}}, [x0]
1:  ld1         {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x1], #64
    rev32       v4.16b, v4.16b              // the message is big-endian words
    rev32       v5.16b, v5.16b
    rev32       v6.16b, v6.16b
    rev32       v7.16b, v7.16b
    mov         v2.16b, v0.16b
    mov         v3.16b, v1.16b
    sha256_quad 16, 4, 5, 6, 7, 1
    sha256_quad 17, 5, 6, 7, 4, 1
    sha256_quad 18, 6, 7, 4, 5, 1
    sha256_quad 19, 7, 4, 5, 6, 1
    sha256_quad 20, 4, 5, 6, 7, 1
    sha256_quad 21, 5, 6, 7, 4, 1
    sha256_quad 22, 6, 7, 4, 5, 1
    sha256_quad 23, 7, 4, 5, 6, 1
    sha256_quad 24, 4, 5, 6, 7, 1
    sha256_quad 25, 5, 6, 7, 4, 1
    sha256_quad 26, 6, 7, 4, 5, 1
    sha256_quad 27, 7, 4, 5, 6, 1
    sha256_quad 28, 4, 5, 6, 7, 0
    sha256_quad 29, 5, 6, 7, 4, 0
    sha256_quad 30, 6, 7, 4, 5, 0
    sha256_quad 31, 7, 4, 5, 6, 0
    add         v0.4s, v0.4s, v2.4s
    add         v1.4s, v1.4s, v3.4s
    subs        x2, x2, #1
    b.ne        1b
    st1         {{v0.4s, v1.4s}}, [x0]
    ldp         d8, d9, [sp], #16
2:  ret
    .size purgatory_sha256_ce, . - purgatory_sha256_ce
