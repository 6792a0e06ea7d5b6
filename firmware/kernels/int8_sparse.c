/* Sparse int8 dense layer in the "pairs" format (compress/layout.py pack_sparse), with zero skipping: per input
 * column k, row_len[k] entries of two bytes, int8 weight then uint8 delta; the output index advances by delta before
 * w * xu[k] is added to that output's accumulator. A zero input byte (the zero point of the first layer and of every
 * ReLU output) contributes nothing, so its column is never read. Filler entries (0, 255) bridge gaps over 255.
 * Bytes: 2 per entry + 2 per input.
 *
 * Accumulators: int32 on the stack, one per output (compress/layout.py SPARSE_MAX_OUT bounds the layer's width);
 * they start at the biases.
 *
 * Inner loop (pz_q8_sparse_col_m0, ARMv6-M), per entry: LDRB delta (2) + LSLS (1) + ADDS p (1) + LDRB w (2) + SXTB
 * (1) + LDR acc (2) + MULS (1) + ADDS (1) + STR acc (2) = 13 cycles, plus 4 cycles of loop per 4 entries: 14 cycles
 * per entry of a non-zero input (static count from the TRM table; measured in docs/BENCHMARKS.md). Elsewhere (host
 * tests, other CPUs) the same loop runs in portable C. */
#include "int8_impl.h"

#if PZ_Q8_M0_ASM
/* Adds w * x into the accumulators along the n (weight, delta) entries at e; p = the first output's accumulator. */
void pz_q8_sparse_col_m0(const uint8_t *e, uint32_t n, int32_t *p, uint32_t x);

#define PZ_Q8_SPARSE_ENTRY_ASM(w, d)                                                    \
    "    ldrb  r6, [r0, #" #d "]\n"                                                     \
    "    lsls  r6, r6, #2\n"                                                            \
    "    adds  r2, r2, r6\n"                                                            \
    "    ldrb  r7, [r0, #" #w "]\n"                                                     \
    "    sxtb  r7, r7\n"                                                                \
    "    ldr   r6, [r2]\n"                                                              \
    "    muls  r7, r3, r7\n"                                                            \
    "    adds  r6, r6, r7\n"                                                            \
    "    str   r6, [r2]\n"

__asm__(
    "    .pushsection .text.pz_q8_sparse_col_m0, \"ax\", %progbits\n"  /* own section for --gc-sections */
    "    .syntax unified\n"
    "    .global pz_q8_sparse_col_m0\n"
    "    .type pz_q8_sparse_col_m0, %function\n"
    "    .thumb_func\n"
    "    .balign 4\n"
    "pz_q8_sparse_col_m0:\n"                    /* r0 e, r1 n (> 0), r2 p, r3 x */
    "    push  {r6, r7, lr}\n"
    "    lsls  r7, r1, #30\n"                   /* r = n mod 4: enter the 4-entry body at entry (4 - r) mod 4 */
    "    lsrs  r7, r7, #30\n"                   /* with r0 moved back to match (Duff's device) */
    "    adds  r1, r1, #3\n"
    "    lsrs  r1, r1, #2\n"                    /* iterations = ceil(n / 4) */
    "    cmp   r7, #2\n"
    "    beq   12f\n"
    "    bhi   13f\n"
    "    cmp   r7, #0\n"
    "    beq   3f\n"
    "    subs  r0, r0, #6\n"                    /* r = 1: entry 3 */
    "    b     23f\n"
    "13:\n"
    "    subs  r0, r0, #2\n"                    /* r = 3: entry 1 */
    "    b     21f\n"
    "12:\n"
    "    subs  r0, r0, #4\n"                    /* r = 2: entry 2 */
    "    b     22f\n"
    "3:\n"
    PZ_Q8_SPARSE_ENTRY_ASM(0, 1)
    "21:\n"
    PZ_Q8_SPARSE_ENTRY_ASM(2, 3)
    "22:\n"
    PZ_Q8_SPARSE_ENTRY_ASM(4, 5)
    "23:\n"
    PZ_Q8_SPARSE_ENTRY_ASM(6, 7)
    "    adds  r0, r0, #8\n"
    "    subs  r1, r1, #1\n"
    "    bne   3b\n"
    "    pop   {r6, r7, pc}\n"
    "    .size pz_q8_sparse_col_m0, . - pz_q8_sparse_col_m0\n"
    "    .popsection\n");
#endif

/* Adds the column's n entries at e, times x, into the accumulators. */
static inline __attribute__((always_inline)) void sparse_column(const uint8_t *e, uint32_t n, int32_t *acc,
                                                                uint32_t x) {
#if PZ_Q8_M0_ASM
    pz_q8_sparse_col_m0(e, n, acc, x);
#else
    int32_t *p = acc;
    for (uint32_t i = 0; i < n; i++) {
        p += e[2u * i + 1u];
        *p += (int32_t)(int8_t)e[2u * i] * (int32_t)x;
    }
#endif
}

/* The layer's work for core `part` of `parts` (1, or 2 with swap given): core `part`'s input columns are
 * accumulated (all of them for one core; for two, alternate blocks of 4, see below; core 0's accumulators start at
 * the biases, core 1's at 0); with 2 parts the cores then swap their accumulators' addresses (a barrier: both sums
 * are complete) and core `part` writes outputs [part * h, h + part * (n_out - h)), h = n_out / 2, from the sum of
 * both. int32 addition is exact in any order, so the bytes equal the one-core kernel's. Inlined with constant parts
 * and part: the one-core kernel keeps its loop. */
static inline __attribute__((always_inline)) void sparse_part(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y,
                                                              uint32_t part, uint32_t parts, pz_q8_swap_fn swap) {
    const uint8_t *e = l->w;
    /* layer fields in locals: the byte stores to y would otherwise force reloads (aliasing) */
    const uint32_t n_in = l->n_in, n_out = l->n_out;
    const uint16_t *col_len = l->row_len;
    const int32_t *bias = l->bias, *mult = l->multiplier;
    const int8_t *shift = l->shift;
    const int32_t out_zp = l->out_zp, act_min = l->act_min, act_max = l->act_max;
    const uint32_t out_xor = l->out_xor;
    int32_t acc[n_out ? n_out : 1u];
    pz_q8_acc_init(acc, 1u, part == 0 ? bias : 0, n_out);
    if (parts == 1u) {
        for (uint32_t k = 0; k < n_in; k++) {
            const uint32_t n = col_len[k], x = xu[k];
            if (x != 0 && n != 0) sparse_column(e, n, acc, x);
            e += 2u * n;
        }
    } else {
        /* Blocks of 4 input columns alternate between the cores (core 0 the even blocks; a 28-pixel image row holds 7
         * blocks, so they form a checkerboard and the work halves evenly); a core steps over the other core's block
         * by adding its 4 lengths, and core 0 takes the n_in % 8 columns left at the end. */
        const uint32_t n8 = n_in & ~7u;
        uint32_t k = 0;
        for (; k < n8; k += 8u) {
            const uint16_t *skip = col_len + k + 4u * (1u - part);
            const uint32_t skipped = (uint32_t)skip[0] + skip[1] + skip[2] + skip[3];
            if (part) e += 2u * skipped;
#pragma GCC unroll 4
            for (uint32_t i = k + 4u * part; i < k + 4u * part + 4u; i++) {
                const uint32_t n = col_len[i], x = xu[i];
                if (x != 0 && n != 0) sparse_column(e, n, acc, x);
                e += 2u * n;
            }
            if (!part) e += 2u * skipped;
        }
        for (; part == 0 && k < n_in; k++) {
            const uint32_t n = col_len[k], x = xu[k];
            if (x != 0 && n != 0) sparse_column(e, n, acc, x);
            e += 2u * n;
        }
    }
    if (parts == 1u) {
        for (uint32_t j = 0; j < n_out; j++) {
            y[j] = pz_q8_out_i(acc[j], mult[j], shift[j], out_zp, act_min, act_max, out_xor);
        }
        return;
    }
    const int32_t *other = (const int32_t *)swap((uintptr_t)acc);
    const uint32_t h = n_out / 2u, j1 = part ? n_out : h;
    for (uint32_t j = part ? h : 0u; j < j1; j++) {
        int32_t a = (int32_t)((uint32_t)acc[j] + (uint32_t)other[j]);
        y[j] = pz_q8_out_i(a, mult[j], shift[j], out_zp, act_min, act_max, out_xor);
    }
}

void pz_q8_sparse(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y) {
    sparse_part(l, xu, y, 0, 1, 0);
}

void pz_q8_sparse_half(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y, uint32_t core, pz_q8_swap_fn swap) {
    if (core == 0) {
        sparse_part(l, xu, y, 0, 2, swap);   /* constant parts and part: each loop inlined for its core */
    } else {
        sparse_part(l, xu, y, 1, 2, swap);
    }
}
