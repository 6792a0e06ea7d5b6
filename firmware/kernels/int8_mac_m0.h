/* The 8-lane int8 MAC step of the Cortex-M0+ dot products, shared by the dense (int8_dense_m0.c) and conv
 * (conv_q8_m0.c) kernels: one input byte times the 8 interleaved weights of a group (docs/FIRMWARE.md "int8 dense
 * kernel"), lanes accumulated in r6, r7, r8 .. r12, lr. Thumb-1 assembly text for __asm__ blocks. */
#ifndef PZ_INT8_MAC_M0_H
#define PZ_INT8_MAC_M0_H

/* One weight word (4 lanes, r1 advancing) times x (r2) into lanes a0..a3; r3-r5 scratch: LDM (2) + 4 extract + 4 MULS
 * + 4 ADD = 14 cycles. Lanes 0 and 2 of a word are read with their odd neighbour's sign bits below them (SXTH, ASR
 * 16), which the layouts' + 128 on even lanes cancels (the kernels' A_even - 256 A_odd). */
#define PZ_Q8_MAC_WORD(a0, a1, a2, a3) \
    "    ldm   r1!, {r3}\n"              \
    "    sxth  r4, r3\n"                 \
    "    asrs  r5, r4, #8\n"             \
    "    muls  r4, r2, r4\n"             \
    "    " a0 ", r4\n"                   \
    "    muls  r5, r2, r5\n"             \
    "    " a1 ", r5\n"                   \
    "    asrs  r4, r3, #16\n"            \
    "    muls  r4, r2, r4\n"             \
    "    " a2 ", r4\n"                   \
    "    asrs  r3, r3, #24\n"            \
    "    muls  r3, r2, r3\n"             \
    "    " a3 ", r3\n"

/* Input byte x[off] (r0 base) times its 8 weights: LDRB (2) + 2 words = 30 cycles for 8 MACs. */
#define PZ_Q8_MAC_K(off)                                                      \
    "    ldrb  r2, [r0, #" off "]\n"                                          \
    PZ_Q8_MAC_WORD("adds  r6, r6", "adds  r7, r7", "add   r8", "add   r9")    \
    PZ_Q8_MAC_WORD("add   r10", "add   r11", "add   r12", "add   lr")

/* The code size of one PZ_Q8_MAC_K: 27 16-bit instructions (a computed jump into an unrolled body relies on it; the
 * kernels check it with .if/.error). */
#define PZ_Q8_MAC_K_BYTES "54"

#endif
