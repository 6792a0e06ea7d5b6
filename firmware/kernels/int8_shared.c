/* Sparse int8 layer with shared weights in the "code3" format (compress/layout.py pack_shared), with zero skipping:
 * per input column k, row_len[k] bytes `gap << 3 | code`; the output index advances by gap, then
 * codebook[code] * xu[k] is added to that output's accumulator. A zero input byte (the zero point of the first layer
 * and of every ReLU output) contributes nothing, so its column is never read. Filler entries (code 0, weight 0)
 * bridge gaps over 31. One multiplier and shift for the whole layer. Bytes: 1 per entry + 2 per input + 8 per layer.
 *
 * Accumulators: int32 on the stack, one per output at an 8-byte stride, so an entry's byte & 0xF8 is its gap's byte
 * offset (compress/layout.py SHARED_MAX_OUT bounds the layer's width); they start at the biases.
 *
 * Inner loop (pz_q8_shared_col_m0, ARMv6-M): the kernel first expands the codebook into a 256-byte table on the
 * stack indexed by the whole entry byte (tab[b] = codebook[b & 7]), so one LDRSB fetches the weight without masking
 * the code. Per entry LDRB b (2) + LDRSB w (2) + ANDS gap*8 (1) + ADDS p (1) + LDR acc (2) + MULS (1) + ADDS (1) +
 * STR acc (2) = 12 cycles, plus 4 cycles of loop per 4 entries: 13 cycles per entry of a non-zero input (static
 * count from the TRM table; measured in docs/BENCHMARKS.md). Elsewhere (host tests, other CPUs) the same loop runs in
 * portable C. */
#include "int8_impl.h"

#if PZ_Q8_M0_ASM
/* Adds tab[e[i]] * x into the accumulators along the n entries at e; p = the first output's accumulator. */
void pz_q8_shared_col_m0(const uint8_t *e, uint32_t n, int32_t *p, uint32_t x, const int8_t *tab);

#define PZ_Q8_SHARED_ENTRY_ASM(k)                                                       \
    "    ldrb  r6, [r0, #" #k "]\n"                                                     \
    "    ldrsb r7, [r4, r6]\n"                                                          \
    "    ands  r6, r5\n"                                                                \
    "    adds  r2, r2, r6\n"                                                            \
    "    ldr   r6, [r2]\n"                                                              \
    "    muls  r7, r3, r7\n"                                                            \
    "    adds  r6, r6, r7\n"                                                            \
    "    str   r6, [r2]\n"

__asm__(
    "    .pushsection .text.pz_q8_shared_col_m0, \"ax\", %progbits\n"  /* own section for --gc-sections */
    "    .syntax unified\n"
    "    .global pz_q8_shared_col_m0\n"
    "    .type pz_q8_shared_col_m0, %function\n"
    "    .thumb_func\n"
    "    .balign 4\n"
    "pz_q8_shared_col_m0:\n"                    /* r0 e, r1 n (> 0), r2 p, r3 x, [sp] tab */
    "    push  {r4, r5, r6, r7, lr}\n"
    "    ldr   r4, [sp, #20]\n"
    "    movs  r5, #0xF8\n"                     /* gap << 3 = the gap's byte offset at an 8-byte stride */
    PZ_Q8_DUFF_ENTRY_ASM(1)
    "3:\n"
    PZ_Q8_SHARED_ENTRY_ASM(0)
    "21:\n"
    PZ_Q8_SHARED_ENTRY_ASM(1)
    "22:\n"
    PZ_Q8_SHARED_ENTRY_ASM(2)
    "23:\n"
    PZ_Q8_SHARED_ENTRY_ASM(3)
    "    adds  r0, r0, #4\n"
    "    subs  r1, r1, #1\n"
    "    bne   3b\n"
    "4:\n"
    "    pop   {r4, r5, r6, r7, pc}\n"
    "    .size pz_q8_shared_col_m0, . - pz_q8_shared_col_m0\n"
    "    .popsection\n");
#endif

/* Adds the column's n entries at e, times x, into the accumulators (tab: the 256-byte table on ARMv6-M, the
 * codebook elsewhere). */
static inline __attribute__((always_inline)) void shared_column(const uint8_t *e, uint32_t n, int32_t *acc,
                                                                uint32_t x, const int8_t *tab) {
#if PZ_Q8_M0_ASM
    pz_q8_shared_col_m0(e, n, acc, x, tab);
#else
    int32_t *p = acc;
    for (uint32_t i = 0; i < n; i++) {
        p += 2u * (e[i] >> 3);
        *p += (int32_t)tab[e[i] & 7u] * (int32_t)x;
    }
#endif
}

/* The layer's work for core `part` of `parts` (pz_q8_column_layer: accumulators at an 8-byte stride, entries of one
 * byte, one multiplier and shift for the layer). */
static inline __attribute__((always_inline)) void shared_part(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y,
                                                              uint32_t part, uint32_t parts, pz_q8_swap_fn swap) {
    const uint32_t n_out = l->n_out;
    const int8_t *book = l->codebook;
    int32_t acc[n_out ? 2u * n_out : 1u];  /* acc[2 j] for output j: the 8-byte stride of the entries' gaps */
#if PZ_Q8_M0_ASM
    uint32_t tab_words[64];  /* int8 tab[256] with tab[b] = book[b & 7]: two words repeated */
    const uint32_t w0 = (uint32_t)(uint8_t)book[0] | (uint32_t)(uint8_t)book[1] << 8 |
                        (uint32_t)(uint8_t)book[2] << 16 | (uint32_t)(uint8_t)book[3] << 24;
    const uint32_t w1 = (uint32_t)(uint8_t)book[4] | (uint32_t)(uint8_t)book[5] << 8 |
                        (uint32_t)(uint8_t)book[6] << 16 | (uint32_t)(uint8_t)book[7] << 24;
    for (uint32_t i = 0; i < 64; i += 2) {
        tab_words[i] = w0;
        tab_words[i + 1] = w1;
    }
    const int8_t *tab = (const int8_t *)tab_words;
#else
    const int8_t *tab = book;
#endif
    pz_q8_column_layer(l, xu, y, part, parts, swap, acc, 2u, 1u, 0u, shared_column, tab);
}

void pz_q8_shared(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y) {
    shared_part(l, xu, y, 0, 1, 0);
}

void pz_q8_shared_half(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y, uint32_t core, pz_q8_swap_fn swap) {
    if (core == 0) {
        shared_part(l, xu, y, 0, 2, swap);   /* constant parts and part: each loop inlined for its core */
    } else {
        shared_part(l, xu, y, 1, 2, swap);
    }
}
