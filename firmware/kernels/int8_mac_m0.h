/* The 8-lane int8 MAC step of the Cortex-M0+ dot products, shared by the dense (int8_dense_m0.c) and conv
 * (conv_q8_m0.c) kernels: one input byte times the 8 interleaved weights of a group (docs/FIRMWARE.md "int8 dense
 * kernel"), lanes accumulated in r6, r7, r8 .. r12, lr, and the function frame both use. Thumb-1 assembly text
 * for __asm__ blocks. */
#ifndef PZ_INT8_MAC_M0_H
#define PZ_INT8_MAC_M0_H

/* The frame of every Thumb-1 kernel function: its own section (--gc-sections drops it when unused), then the label;
 * NAME is a string literal. */
#define PZ_M0_FUNC(NAME)                                \
    "    .pushsection .text." NAME ", \"ax\", %progbits\n" \
    "    .syntax unified\n"                             \
    "    .balign 4\n"                                   \
    "    .global " NAME "\n"                            \
    "    .type   " NAME ", %function\n"                 \
    "    .thumb_func\n"                                 \
    NAME ":\n"

/* Save r4-r11 and lr (AAPCS callee-saved; Thumb-1 pushes high registers through low ones): 11 cycles. */
#define PZ_M0_SAVE_R4_R11     \
    "    push  {r4-r7, lr}\n" \
    "    mov   r4, r8\n"      \
    "    mov   r5, r9\n"      \
    "    mov   r6, r10\n"     \
    "    mov   r7, r11\n"     \
    "    push  {r4-r7}\n"

/* Restore what PZ_M0_SAVE_R4_R11 saved and return. */
#define PZ_M0_RESTORE_R4_R11_RETURN \
    "    pop   {r4-r7}\n"           \
    "    mov   r8, r4\n"            \
    "    mov   r9, r5\n"            \
    "    mov   r10, r6\n"           \
    "    mov   r11, r7\n"           \
    "    pop   {r4-r7, pc}\n"

/* The end of a 16-byte unrolled body entered at label 1 (r0 its input pointer, [sp] where it ends): on to the next
 * 16 bytes, or on at label 3 once r0 reaches the end (the body is beyond B<cond>'s 256-byte reach: BEQ out, B back). */
#define PZ_Q8_NEXT_BLOCK16    \
    "    adds  r0, #16\n"     \
    "    ldr   r4, [sp]\n"    \
    "    cmp   r0, r4\n"      \
    "    beq   3f\n"          \
    "    b     1b\n"          \
    "3:\n"

/* The weight word in r3 (4 lanes) times x (r2) into lanes a0..a3; r3-r5 scratch: 4 extract + 4 MULS + 4 ADD = 12
 * cycles. Lanes 0 and 2 of a word are read with their odd neighbour's sign bits below them (SXTH, ASR 16), which the
 * layouts' + 128 on even lanes cancels (the kernels' A_even - 256 A_odd). */
#define PZ_Q8_MAC_LANES(a0, a1, a2, a3) \
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

/* One weight word (r1 advancing) through PZ_Q8_MAC_LANES: LDM (2) + 12 = 14 cycles. */
#define PZ_Q8_MAC_WORD(a0, a1, a2, a3) \
    "    ldm   r1!, {r3}\n"              \
    PZ_Q8_MAC_LANES(a0, a1, a2, a3)

/* Input byte x[off] (r0 base) times its 8 weights: LDRB (2) + 2 words = 30 cycles for 8 MACs. */
#define PZ_Q8_MAC_K(off)                                                      \
    "    ldrb  r2, [r0, #" off "]\n"                                          \
    PZ_Q8_MAC_WORD("adds  r6, r6", "adds  r7, r7", "add   r8", "add   r9")    \
    PZ_Q8_MAC_WORD("add   r10", "add   r11", "add   r12", "add   lr")

/* The code size of one PZ_Q8_MAC_K: 27 16-bit instructions (a computed jump into an unrolled body relies on it; the
 * kernels check it with .if/.error). */
#define PZ_Q8_MAC_K_BYTES "54"

#endif
