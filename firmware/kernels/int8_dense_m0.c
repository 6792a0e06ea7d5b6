/* Optimised int8 dense kernel for the Cortex-M0+ (no SIMD, no multiply-accumulate; MULS 1 cycle, LDR 2, LDM 1+N),
 * with zero skipping: an input byte xu[k] == 0 contributes nothing (0 * w), so it is never loaded again, multiplied
 * or added. For the first layer 0 is the raw pixel 0 and for a layer after a ReLU it is the input zero point
 * (ReLU outputs have zero point -128, compress/quantize.py, so xu = q + 128 = 0); about 80 % of MNIST pixels and
 * 70 % of hidden ReLU outputs. Skipping any zero is exact for every zero point: the folded-bias contract of int8.h
 * is unchanged.
 *
 * 1. Compaction: the non-zero inputs of a slice of at most PZ_Q8_SLICE inputs become a list on the stack, one word
 *    per input: x << 16 | (k - k0) * 8 (x = xu[k], the byte offset of input k in an 8-lane group).
 * 2. Per group of 8 outputs (layout "interleave4", compress/layout.py, unchanged) the list is walked once: eight
 *    outputs share each list entry. Their weights for input k are two 32-bit words, bytes b0..b3 = (w0+128, w1,
 *    w2+128, w3); one instruction extracts each lane:
 *      asr(W, 24) = w3    asr(W, 16) = 256*w3 + (w2+128)    sxth(W) = 256*w1 + (w0+128)    asr(sxth(W), 8) = w1
 *    and per group the four sums A0..A3 give
 *      S1 = A1, S3 = A3, S0 = A0 - 256*A1 - 128*X, S2 = A2 - 256*A3 - 128*X   (X = sum xu; all mod 2^32, exact).
 *
 * Inner loop (pz_q8_skip8_m0, ARMv6-M), per list entry: LDR entry (2) + LSRS x (1) + UXTH offset (1) + ADDS base
 * (1) + 2 x [LDM W (2) + 12 (extract, MULS, ADD per lane; one scratch register)] = 33 cycles for 8 MACs, plus 7
 * cycles of loop per 4 entries: 34.75 / 8 = 4.34 cycles per MAC of a non-zero input (static count from the TRM
 * table; measured in docs/BENCHMARKS.md), against 3.80 for every input without skipping. A number of entries that
 * is not a multiple of 4 enters the unrolled body part way (Duff's device). The last group of 4 outputs uses
 * pz_q8_skip4_m0. Elsewhere (host tests, other CPUs) the same algorithm runs in portable C.
 *
 * Layers with more than PZ_Q8_SLICE inputs compact one slice at a time, again for each group (the list stays on the
 * stack: 4 bytes per input of a slice).
 * When more than 7/8 of the inputs are non-zero (4.34 * n > 3.80 * n_in) the list does not pay: each group then
 * multiplies every input of the first n_in & ~3 with pz_q8_dot8_m0 / pz_q8_dot4_m0 (the loop without skipping,
 * 3.80 cycles per MAC) and only the list's entries for the n_in & 3 inputs left over. */
#include "int8_impl.h"
#include "int8_mac_m0.h"

/* Inputs per compacted slice: 28 x 28 images in one slice; 3.2 kB of stack at most. */
#define PZ_Q8_SLICE 800u

/* The list of the non-zero inputs among xu[k0 .. k1): returns the entry count; *sum = sum of xu over the slice. */
static uint32_t compact(const uint8_t *xu, uint32_t k0, uint32_t k1, uint32_t *list, uint32_t *sum) {
    uint32_t *p = list, s = 0, off = 0;
    for (uint32_t k = k0; k < k1; k++, off += 8u) {
        uint32_t x = xu[k];
        if (x) {
            *p++ = x << 16 | off;
            s += x;
        }
    }
    *sum = s;
    return (uint32_t)(p - list);
}

#if !PZ_Q8_M0_ASM
/* A[0..lanes) += x times one input's lane words p[0 .. lanes) (the extraction the Thumb-1 loops do). */
static void mac_lanes_c(int32_t x, const uint8_t *p0, uint32_t lanes, uint32_t *A) {
    for (uint32_t h = 0; h < lanes; h += 4) {
        const uint8_t *p = p0 + h;
        uint32_t W = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        int32_t lo = (int32_t)((W & 0xFFFFu) ^ 0x8000u) - 0x8000;  /* sxth */
        int32_t hi = (int32_t)((W >> 16) ^ 0x8000u) - 0x8000;      /* asr 16 */
        A[h + 0] += (uint32_t)(lo * x);
        A[h + 1] += (uint32_t)((lo >> 8) * x);                     /* >> is arithmetic with GCC/Clang */
        A[h + 2] += (uint32_t)(hi * x);
        A[h + 3] += (uint32_t)((hi >> 8) * x);
    }
}

/* A[0..lanes) = the lane sums of one group over the n list entries (w = the group's weights at the slice start). */
static void dot_list_c(const uint32_t *list, uint32_t n, const uint8_t *w, uint32_t lanes, uint32_t *A) {
    for (uint32_t i = 0; i < lanes; i++) A[i] = 0;
    for (uint32_t e = 0; e < n; e++) {
        mac_lanes_c((int32_t)(list[e] >> 16), w + (list[e] & 0xFFFFu) / 8u * lanes, lanes, A);
    }
}

/* A[0..lanes) = the lane sums over inputs [0, nk4) (nk4 a multiple of 4) of one group. */
static void dot_lanes_c(const uint8_t *xu, uint32_t nk4, const uint8_t *w, uint32_t lanes, uint32_t *A) {
    for (uint32_t i = 0; i < lanes; i++) A[i] = 0;
    for (uint32_t k = 0; k < nk4; k++) {
        mac_lanes_c(xu[k], w + k * lanes, lanes, A);
    }
}

#endif

#if PZ_Q8_M0_ASM
/* The pieces pz_q8_dot8_m0 and pz_q8_skip8_m0 share. ZERO_LANES8: the eight lane accumulators r6, r7, r8 .. r12, lr
 * to 0. DUFF4_ENTRY: r4 = a count of the body's units (4-input blocks or list entries, at bit 2 and up of r4) taken
 * mod 4 = r; the body of four units (labels 1, 14, 15, 13 before units 0..3) is entered at unit (4 - r) mod 4 with r0
 * moved back by the units skipped (Duff's device). BODY16_END: the loop's end (int8_mac_m0.h PZ_Q8_NEXT_BLOCK16), then
 * the lanes into A (the frame's {end, A} popped) and the return. */
#define PZ_Q8_ZERO_LANES8                                                               \
    "    movs  r6, #0\n"                                                                \
    "    movs  r7, #0\n"                                                                \
    "    mov   r8, r6\n"                                                                \
    "    mov   r9, r6\n"                                                                \
    "    mov   r10, r6\n"                                                               \
    "    mov   r11, r6\n"                                                               \
    "    mov   r12, r6\n"                                                               \
    "    mov   lr, r6\n"
#define PZ_Q8_DUFF4_ENTRY                                                               \
    "    lsls  r4, r4, #28\n"                                                           \
    "    lsrs  r4, r4, #30\n"                                                           \
    "    beq   1f\n"                                                                    \
    "    cmp   r4, #2\n"                                                                \
    "    beq   12f\n"                                                                   \
    "    bhi   11f\n"                                                                   \
    "    subs  r0, #12\n"            /* r = 1: enter at unit 3 */                       \
    "    b     13f\n"                                                                   \
    "11:\n"                                                                             \
    "    subs  r0, #4\n"             /* r = 3: unit 1 */                                \
    "    b     14f\n"                                                                   \
    "12:\n"                                                                             \
    "    subs  r0, #8\n"             /* r = 2: unit 2 */                                \
    "    b     15f\n"
#define PZ_Q8_BODY16_END                                                                \
    PZ_Q8_NEXT_BLOCK16                                                                  \
    "    pop   {r1, r3}\n"                                                              \
    "    str   r6, [r3, #0]\n"                                                          \
    "    str   r7, [r3, #4]\n"                                                          \
    "    mov   r4, r8\n"                                                                \
    "    str   r4, [r3, #8]\n"                                                          \
    "    mov   r4, r9\n"                                                                \
    "    str   r4, [r3, #12]\n"                                                         \
    "    mov   r4, r10\n"                                                               \
    "    str   r4, [r3, #16]\n"                                                         \
    "    mov   r4, r11\n"                                                               \
    "    str   r4, [r3, #20]\n"                                                         \
    "    mov   r4, r12\n"                                                               \
    "    str   r4, [r3, #24]\n"                                                         \
    "    mov   r4, lr\n"                                                                \
    "    str   r4, [r3, #28]\n"                                                         \
    PZ_M0_RESTORE_R4_R11_RETURN

void pz_q8_dot8_m0(const uint8_t *xu, const uint8_t *xend, const uint8_t *w, uint32_t *A);
void pz_q8_dot4_m0(const uint8_t *xu, const uint8_t *xend, const uint8_t *w, uint32_t *A);

/* Dense inputs (no skipping): per input k, LDRB x (2) + 2 x [LDM W (2) + 4 extract + 4 MULS + 4 ADD] (28) = 30 cycles
 * for 8 MACs, plus 7 cycles of loop per 16 inputs: 3.80 cycles per MAC; entered part way (Duff's device) when the
 * number of 4-input blocks is not a multiple of 4. The MAC step (PZ_Q8_MAC_K) is int8_mac_m0.h's, shared with the
 * conv kernels. r0 = xu, r1 = xend (xu + nk4, nk4 > 0, multiple of 4), r2 = w (4-byte aligned), r3 = A[8]. */
__asm__(
    PZ_M0_FUNC("pz_q8_dot8_m0")
    PZ_M0_SAVE_R4_R11
    "    push  {r1, r3}\n"            /* [sp] = xend, [sp + 4] = A */
    "    mov   r1, r2\n"
    PZ_Q8_ZERO_LANES8
    "    ldr   r4, [sp]\n"
    "    subs  r4, r4, r0\n"         /* nk4 bytes: 4-input blocks from bit 2 up */
    PZ_Q8_DUFF4_ENTRY
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
    PZ_Q8_BODY16_END
    "    .size   pz_q8_dot8_m0, . - pz_q8_dot8_m0\n"
    "    .popsection\n");

#define PZ_Q8_MAC_K4(off)                                                               \
    "    ldrb  r2, [r0, #" off "]\n"                                                    \
    PZ_Q8_MAC_WORD("adds  r6, r6", "adds  r7, r7", "add   r8", "add   r9")

/* The last group of 4 outputs (n_out_pad % 8 == 4): one word per input, 64 cycles per 4 inputs = 4.0 per MAC. */
__asm__(
    PZ_M0_FUNC("pz_q8_dot4_m0")
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

#if PZ_Q8_M0_ASM
void pz_q8_skip8_m0(const uint32_t *list, const uint32_t *end, const uint8_t *w, uint32_t *A);
void pz_q8_skip4_m0(const uint32_t *list, const uint32_t *end, const uint8_t *w, uint32_t *A);

/* One weight word W (r3) times x (r2) into four lane accumulators, r4 the only scratch register. */
#define PZ_Q8_SKIP_WORD(a0, a1, a2, a3)                                                 \
    "    ldm   r1!, {r3}\n"                                                             \
    "    asrs  r4, r3, #24\n"                                                           \
    "    muls  r4, r2, r4\n"                                                            \
    "    " a3 ", r4\n"                                                                  \
    "    asrs  r4, r3, #16\n"                                                           \
    "    muls  r4, r2, r4\n"                                                            \
    "    " a2 ", r4\n"                                                                  \
    "    sxth  r3, r3\n"                                                                \
    "    asrs  r4, r3, #8\n"                                                            \
    "    muls  r4, r2, r4\n"                                                            \
    "    " a1 ", r4\n"                                                                  \
    "    muls  r3, r2, r3\n"                                                            \
    "    " a0 ", r3\n"
#define PZ_Q8_SKIP_ENTRY(off)                                                           \
    "    ldr   r1, [r0, #" off "]\n"                                                    \
    "    lsrs  r2, r1, #16\n"                                                           \
    "    uxth  r1, r1\n"                                                                \
    "    adds  r1, r1, r5\n"                                                            \
    PZ_Q8_SKIP_WORD("adds  r6, r6", "adds  r7, r7", "add   r8", "add   r9")             \
    PZ_Q8_SKIP_WORD("add   r10", "add   r11", "add   r12", "add   lr")

/* r0 = list, r1 = end (list + n), r2 = w (4-byte aligned), r3 = A[8] (written). */
__asm__(
    PZ_M0_FUNC("pz_q8_skip8_m0")
    PZ_M0_SAVE_R4_R11
    "    push  {r1, r3}\n"            /* [sp] = end, [sp + 4] = A */
    "    mov   r5, r2\n"              /* r5 = weight base of the group */
    PZ_Q8_ZERO_LANES8
    "    subs  r4, r1, r0\n"         /* 4 bytes an entry: entries from bit 2 up */
    "    bne   2f\n"
    "    b     3f\n"                 /* no entries: A = 0 */
    "2:\n"
    PZ_Q8_DUFF4_ENTRY
    "1:\n"
    PZ_Q8_SKIP_ENTRY("0")
    "14:\n"
    PZ_Q8_SKIP_ENTRY("4")
    "15:\n"
    PZ_Q8_SKIP_ENTRY("8")
    "13:\n"
    PZ_Q8_SKIP_ENTRY("12")
    PZ_Q8_BODY16_END
    "    .size   pz_q8_skip8_m0, . - pz_q8_skip8_m0\n"
    "    .popsection\n");

/* The last group of 4 outputs (n_out_pad % 8 == 4): one word per entry at offset (k - k0) * 4. */
__asm__(
    PZ_M0_FUNC("pz_q8_skip4_m0")
    "    push  {r4-r7, lr}\n"
    "    mov   r4, r8\n"
    "    mov   r5, r9\n"
    "    push  {r3, r4, r5}\n"        /* [sp] = A */
    "    mov   lr, r1\n"
    "    mov   r5, r2\n"
    "    movs  r6, #0\n"
    "    movs  r7, #0\n"
    "    mov   r8, r6\n"
    "    mov   r9, r6\n"
    "    cmp   r0, lr\n"
    "    beq   2f\n"                 /* no entries: A = 0 */
    "1:\n"
    "    ldm   r0!, {r1}\n"
    "    lsrs  r2, r1, #16\n"
    "    uxth  r1, r1\n"
    "    lsrs  r1, r1, #1\n"
    "    adds  r1, r1, r5\n"
    PZ_Q8_SKIP_WORD("adds  r6, r6", "adds  r7, r7", "add   r8", "add   r9")
    "    cmp   r0, lr\n"
    "    bne   1b\n"
    "2:\n"
    "    pop   {r3}\n"
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
    "    .size   pz_q8_skip4_m0, . - pz_q8_skip4_m0\n"
    "    .popsection\n");
#endif

/* A[0..lanes) = one group's lane sums over the list. */
static inline void dot_list(const uint32_t *list, uint32_t n, const uint8_t *w, uint32_t lanes, uint32_t *A) {
#if PZ_Q8_M0_ASM
    if (lanes == 8) {
        pz_q8_skip8_m0(list, list + n, w, A);
    } else {
        pz_q8_skip4_m0(list, list + n, w, A);
    }
#else
    dot_list_c(list, n, w, lanes, A);
#endif
}

/* A[0..lanes) = one group's lane sums over inputs [0, nk4) (nk4 > 0, a multiple of 4), every input multiplied. */
static inline void dot_all(const uint8_t *xu, uint32_t nk4, const uint8_t *w, uint32_t lanes, uint32_t *A) {
#if PZ_Q8_M0_ASM
    if (lanes == 8) {
        pz_q8_dot8_m0(xu, xu + nk4, w, A);
    } else {
        pz_q8_dot4_m0(xu, xu + nk4, w, A);
    }
#else
    dot_lanes_c(xu, nk4, w, lanes, A);
#endif
}

void pz_q8_dense_m0(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y) {
    pz_q8_dense_m0_outputs(l, xu, y, 0, l->n_out);
}

void pz_q8_dense_m0_outputs(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y, uint32_t j_begin,
                            uint32_t j_end) {
    /* every layer field in a local: the byte stores to y would otherwise force reloads (aliasing) */
    const uint32_t n_in = l->n_in, n_out = l->n_out, in_pad = (n_in + 3u) & ~3u;
    const uint32_t out_pad = (n_out + 3u) & ~3u;
    const int32_t *bias = l->bias, *mult = l->multiplier;
    const int8_t *shift = l->shift;
    const int32_t out_zp = l->out_zp, act_min = l->act_min, act_max = l->act_max;
    const uint32_t out_xor = l->out_xor;
    const uint32_t slice = n_in < PZ_Q8_SLICE ? n_in : PZ_Q8_SLICE;
    uint32_t list[slice ? slice : 1u];
    uint32_t n = 0, X = 0;
    if (n_in <= PZ_Q8_SLICE) {
        n = compact(xu, 0, n_in, list, &X);   /* one list for every group */
    } else {
        for (uint32_t k = 0; k < n_in; k++) X += xu[k];
    }
    const uint32_t X128 = X * 128u;
    /* Mostly non-zero inputs (over 7/8: 4.34 * n > 3.80 * n_in): multiply every input of the first nk4 with the
     * plain loop, and only the non-zero ones of the n_in & 3 left over (the list's last entries). */
    const uint32_t nk4 = n_in & ~3u;
    const int all = n_in <= PZ_Q8_SLICE && nk4 != 0 && 8u * n > 7u * n_in;
    uint32_t tail = n;
    while (all && tail != 0 && (list[tail - 1u] & 0xFFFFu) >= 8u * nk4) tail--;
    const uint8_t *w = l->w + j_begin * in_pad;   /* every group before j_begin has 8 lanes */
    for (uint32_t j0 = j_begin; j0 < j_end; j0 += 8) {
        uint32_t lanes = (j0 + 8u <= out_pad) ? 8u : 4u;
        uint32_t A[8];
        if (all) {
            dot_all(xu, nk4, w, lanes, A);
            if (tail != n) {
                uint32_t B[8];
                dot_list(list + tail, n - tail, w, lanes, B);
                for (uint32_t i = 0; i < lanes; i++) A[i] += B[i];
            }
        } else if (n_in <= PZ_Q8_SLICE) {
            dot_list(list, n, w, lanes, A);
        } else {
            uint32_t s = 0;
            dot_list(list, compact(xu, 0, PZ_Q8_SLICE, list, &s), w, lanes, A);
            for (uint32_t k0 = PZ_Q8_SLICE; k0 < n_in; k0 += PZ_Q8_SLICE) {
                uint32_t k1 = n_in - k0 < PZ_Q8_SLICE ? n_in : k0 + PZ_Q8_SLICE, B[8];
                dot_list(list, compact(xu, k0, k1, list, &s), w + k0 * lanes, lanes, B);
                for (uint32_t i = 0; i < lanes; i++) A[i] += B[i];
            }
        }
        uint32_t m = j_end - j0 < lanes ? j_end - j0 : lanes;
        for (uint32_t i = 0; i < m; i++) {
            uint32_t j = j0 + i;
            uint32_t s = (i & 1u) ? A[i] : A[i] - 256u * A[i + 1] - X128;
            int32_t acc = (int32_t)((uint32_t)bias[j] + s);
            y[j] = pz_q8_out_i(acc, mult[j], shift[j], out_zp, act_min, act_max, out_xor);
        }
        w += in_pad * lanes;
    }
}
