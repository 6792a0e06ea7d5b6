/* Optimised int8 dense kernel for the Cortex-M0+ (no SIMD, no multiply-accumulate; MULS 1 cycle, LDR 2, LDM 1+N).
 *
 * Eight outputs share each activation load. Their weights for input k are two 32-bit words of the interleave4
 * layout (compress/layout.py), bytes b0..b3 = (w0+128, w1, w2+128, w3). One instruction extracts each lane value:
 *   sxth(W) = 256*w1 + (w0+128)     asr(sxth(W), 8) = w1     asr(W, 16) = 256*w3 + (w2+128)     asr(W, 24) = w3
 * so a MAC costs extract + MULS + ADD = 3 cycles plus a quarter of the LDM. Per group the four sums A0..A3 give
 *   S1 = A1, S3 = A3, S0 = A0 - 256*A1 - 128*X, S2 = A2 - 256*A3 - 128*X   (X = sum xu; all mod 2^32, exact)
 * because sum (w0+128)*xu = A0 - 256*A1 fits 31 bits for n_in < 33025.
 *
 * Inner loop (pz_q8_dot8_m0, ARMv6-M): per input k, LDRB x (2) + 2 x [LDM W (2) + 4 extract + 4 MULS + 4 ADD]
 * (28) = 30 cycles for 8 MACs, plus 7 cycles of loop per 16 inputs: 487 / 128 = 3.80 cycles per MAC (static count
 * from the TRM table, docs/COMPRESS.md); a number of 4-input blocks that is not a multiple of 4 enters the unrolled
 * body part way (Duff's device).
 * Accumulators live in r6, r7, r8-r12 and lr; the end pointer on the stack.
 * A last group of 4 outputs uses pz_q8_dot4_m0 (4.0 cycles per MAC). Elsewhere (host tests, other CPUs) the same
 * algorithm runs in portable C; the n_in & 3 inputs left over use the C path on every CPU. */
#include "int8_impl.h"

/* A[0..lanes) = the lane sums over inputs [0, nk4) (nk4 a multiple of 4) of one group. */
static void dot_lanes_c(const uint8_t *xu, uint32_t nk4, const uint8_t *w, uint32_t lanes, uint32_t *A) {
    for (uint32_t i = 0; i < lanes; i++) A[i] = 0;
    for (uint32_t k = 0; k < nk4; k++) {
        int32_t x = xu[k];
        for (uint32_t h = 0; h < lanes; h += 4) {
            const uint8_t *p = w + k * lanes + h;
            uint32_t W = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            int32_t lo = (int32_t)((W & 0xFFFFu) ^ 0x8000u) - 0x8000;  /* sxth */
            int32_t hi = (int32_t)((W >> 16) ^ 0x8000u) - 0x8000;      /* asr 16 */
            A[h + 0] += (uint32_t)(lo * x);
            A[h + 1] += (uint32_t)((lo >> 8) * x);                     /* >> is arithmetic with GCC/Clang */
            A[h + 2] += (uint32_t)(hi * x);
            A[h + 3] += (uint32_t)((hi >> 8) * x);
        }
    }
}

#if PZ_Q8_M0_ASM
void pz_q8_dot8_m0(const uint8_t *xu, const uint8_t *xend, const uint8_t *w, uint32_t *A);
void pz_q8_dot4_m0(const uint8_t *xu, const uint8_t *xend, const uint8_t *w, uint32_t *A);

#define PZ_Q8_MAC_WORD(a0, a1, a2, a3)                                                  \
    "    ldm   r1!, {r3}\n"                                                             \
    "    sxth  r4, r3\n"                                                                \
    "    asrs  r5, r4, #8\n"                                                            \
    "    muls  r4, r2, r4\n"                                                            \
    "    " a0 ", r4\n"                                                            \
    "    muls  r5, r2, r5\n"                                                            \
    "    " a1 ", r5\n"                                                            \
    "    asrs  r4, r3, #16\n"                                                           \
    "    muls  r4, r2, r4\n"                                                            \
    "    " a2 ", r4\n"                                                            \
    "    asrs  r3, r3, #24\n"                                                           \
    "    muls  r3, r2, r3\n"                                                            \
    "    " a3 ", r3\n"
#define PZ_Q8_MAC_K(off)                                                                \
    "    ldrb  r2, [r0, #" off "]\n"                                                    \
    PZ_Q8_MAC_WORD("adds  r6, r6", "adds  r7, r7", "add   r8", "add   r9")                \
    PZ_Q8_MAC_WORD("add   r10", "add   r11", "add   r12", "add   lr")

/* r0 = xu, r1 = xend (xu + nk4, nk4 > 0, multiple of 4), r2 = w (4-byte aligned), r3 = A[8]. */
__asm__(
    "    .pushsection .text.pz_q8_dot8_m0, \"ax\", %progbits\n"  /* own section: --gc-sections drops it if unused */
    "    .syntax unified\n"
    "    .balign 4\n"
    "    .global pz_q8_dot8_m0\n"
    "    .type   pz_q8_dot8_m0, %function\n"
    "    .thumb_func\n"
    "pz_q8_dot8_m0:\n"
    "    push  {r4-r7, lr}\n"
    "    mov   r4, r8\n"
    "    mov   r5, r9\n"
    "    mov   r6, r10\n"
    "    mov   r7, r11\n"
    "    push  {r4-r7}\n"
    "    push  {r1, r3}\n"            /* [sp] = xend, [sp + 4] = A */
    "    mov   r1, r2\n"
    "    movs  r6, #0\n"
    "    movs  r7, #0\n"
    "    mov   r8, r6\n"
    "    mov   r9, r6\n"
    "    mov   r10, r6\n"
    "    mov   r11, r6\n"
    "    mov   r12, r6\n"
    "    mov   lr, r6\n"
    "    ldr   r4, [sp]\n"           /* r = (4-input blocks) mod 4 = 0..3; enter block (4 - r) mod 4 of the */
    "    subs  r4, r4, r0\n"         /* 16-input body with r0 moved back to match (Duff's device) */
    "    lsls  r4, r4, #28\n"
    "    lsrs  r4, r4, #30\n"        /* r4 = r */
    "    beq   1f\n"
    "    cmp   r4, #2\n"
    "    beq   12f\n"
    "    bhi   11f\n"
    "    subs  r0, #12\n"            /* r = 1: enter at block 3 */
    "    b     13f\n"
    "11:\n"
    "    subs  r0, #4\n"             /* r = 3: block 1 */
    "    b     14f\n"
    "12:\n"
    "    subs  r0, #8\n"             /* r = 2: block 2 */
    "    b     15f\n"
    "1:\n"
    PZ_Q8_MAC_K("0")
    PZ_Q8_MAC_K("1")
    PZ_Q8_MAC_K("2")
    PZ_Q8_MAC_K("3")
    "14:\n"
    PZ_Q8_MAC_K("4")
    PZ_Q8_MAC_K("5")
    PZ_Q8_MAC_K("6")
    PZ_Q8_MAC_K("7")
    "15:\n"
    PZ_Q8_MAC_K("8")
    PZ_Q8_MAC_K("9")
    PZ_Q8_MAC_K("10")
    PZ_Q8_MAC_K("11")
    "13:\n"
    PZ_Q8_MAC_K("12")
    PZ_Q8_MAC_K("13")
    PZ_Q8_MAC_K("14")
    PZ_Q8_MAC_K("15")
    "    adds  r0, #16\n"
    "    ldr   r4, [sp]\n"
    "    cmp   r0, r4\n"
    "    beq   3f\n"                 /* the body is beyond B<cond>'s 256-byte reach: BEQ out, B back */
    "    b     1b\n"
    "3:\n"
    "    pop   {r1, r3}\n"
    "    str   r6, [r3, #0]\n"
    "    str   r7, [r3, #4]\n"
    "    mov   r4, r8\n"
    "    str   r4, [r3, #8]\n"
    "    mov   r4, r9\n"
    "    str   r4, [r3, #12]\n"
    "    mov   r4, r10\n"
    "    str   r4, [r3, #16]\n"
    "    mov   r4, r11\n"
    "    str   r4, [r3, #20]\n"
    "    mov   r4, r12\n"
    "    str   r4, [r3, #24]\n"
    "    mov   r4, lr\n"
    "    str   r4, [r3, #28]\n"
    "    pop   {r4-r7}\n"
    "    mov   r8, r4\n"
    "    mov   r9, r5\n"
    "    mov   r10, r6\n"
    "    mov   r11, r7\n"
    "    pop   {r4-r7, pc}\n"
    "    .size   pz_q8_dot8_m0, . - pz_q8_dot8_m0\n"
    "    .popsection\n");

#define PZ_Q8_MAC_K4(off)                                                               \
    "    ldrb  r2, [r0, #" off "]\n"                                                    \
    PZ_Q8_MAC_WORD("adds  r6, r6", "adds  r7, r7", "add   r8", "add   r9")

/* The last group of 4 outputs (n_out_pad % 8 == 4): one word per input, 64 cycles per 4 inputs = 4.0 per MAC. */
__asm__(
    "    .pushsection .text.pz_q8_dot4_m0, \"ax\", %progbits\n"  /* own section: --gc-sections drops it if unused */
    "    .syntax unified\n"
    "    .balign 4\n"
    "    .global pz_q8_dot4_m0\n"
    "    .type   pz_q8_dot4_m0, %function\n"
    "    .thumb_func\n"
    "pz_q8_dot4_m0:\n"
    "    push  {r4-r7, lr}\n"
    "    mov   r4, r8\n"
    "    mov   r5, r9\n"
    "    push  {r4, r5}\n"
    "    mov   lr, r1\n"
    "    mov   r12, r3\n"
    "    mov   r1, r2\n"
    "    movs  r6, #0\n"
    "    movs  r7, #0\n"
    "    mov   r8, r6\n"
    "    mov   r9, r6\n"
    "1:\n"
    PZ_Q8_MAC_K4("0")
    PZ_Q8_MAC_K4("1")
    PZ_Q8_MAC_K4("2")
    PZ_Q8_MAC_K4("3")
    "    adds  r0, #4\n"
    "    cmp   r0, lr\n"
    "    bne   1b\n"
    "    mov   r3, r12\n"
    "    str   r6, [r3, #0]\n"
    "    str   r7, [r3, #4]\n"
    "    mov   r4, r8\n"
    "    str   r4, [r3, #8]\n"
    "    mov   r4, r9\n"
    "    str   r4, [r3, #12]\n"
    "    pop   {r4, r5}\n"
    "    mov   r8, r4\n"
    "    mov   r9, r5\n"
    "    pop   {r4-r7, pc}\n"
    "    .size   pz_q8_dot4_m0, . - pz_q8_dot4_m0\n"
    "    .popsection\n");
#endif

void pz_q8_dense_m0(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y) {
    /* every layer field in a local: the byte stores to y would otherwise force reloads (aliasing) */
    const uint32_t n_in = l->n_in, n_out = l->n_out, nk4 = n_in & ~3u, in_pad = (n_in + 3u) & ~3u;
    const uint32_t out_pad = (n_out + 3u) & ~3u;
    const int32_t *bias = l->bias, *mult = l->multiplier;
    const int8_t *shift = l->shift;
    const int32_t out_zp = l->out_zp, act_min = l->act_min, act_max = l->act_max;
    const uint32_t out_xor = l->out_xor;
    uint32_t X128 = 0;
    for (uint32_t k = 0; k < nk4; k++) X128 += xu[k];
    X128 *= 128u;
    const uint8_t *w = l->w;
    for (uint32_t j0 = 0; j0 < n_out; j0 += 8) {
        uint32_t lanes = (j0 + 8u <= out_pad) ? 8u : 4u;
        uint32_t A[8];
#if PZ_Q8_M0_ASM
        if (nk4 == 0) {
            dot_lanes_c(xu, nk4, w, lanes, A);
        } else if (lanes == 8) {
            pz_q8_dot8_m0(xu, xu + nk4, w, A);
        } else {
            pz_q8_dot4_m0(xu, xu + nk4, w, A);
        }
#else
        dot_lanes_c(xu, nk4, w, lanes, A);
#endif
        uint32_t n = n_out - j0 < lanes ? n_out - j0 : lanes;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t j = j0 + i;
            uint32_t s = (i & 1u) ? A[i] : A[i] - 256u * A[i + 1] - X128;
            int32_t acc = (int32_t)((uint32_t)bias[j] + s);
            if (nk4 != n_in) {
                for (uint32_t k = nk4; k < n_in; k++) acc += (int32_t)xu[k] * pz_q8_dense_weight(l, j, k);
            }
            y[j] = pz_q8_out_i(acc, mult[j], shift[j], out_zp, act_min, act_max, out_xor);
        }
        w += in_pad * lanes;
    }
}
