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
    PZ_Q8_DUFF_ENTRY_ASM(2)
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
                                                                uint32_t x, const int8_t *ctx) {
    (void)ctx;
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

/* The layer's work for core `part` of `parts` (pz_q8_column_layer: accumulators one word apart, entries of 2
 * bytes, a multiplier and shift per output). */
static inline __attribute__((always_inline)) void sparse_part(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y,
                                                              uint32_t part, uint32_t parts, pz_q8_swap_fn swap) {
    const uint32_t n_out = l->n_out;
    int32_t acc[n_out ? n_out : 1u];
    pz_q8_column_layer(l, xu, y, part, parts, swap, acc, 1u, 2u, 1u, sparse_column, 0);
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
