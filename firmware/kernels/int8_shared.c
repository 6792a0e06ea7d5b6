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
    "    lsls  r7, r1, #30\n"                   /* r = n mod 4: enter the 4-entry body at entry (4 - r) mod 4 */
    "    lsrs  r7, r7, #30\n"                   /* with r0 moved back to match (Duff's device) */
    "    adds  r1, r1, #3\n"
    "    lsrs  r1, r1, #2\n"                    /* iterations = ceil(n / 4) */
    "    cmp   r7, #2\n"
    "    beq   12f\n"
    "    bhi   13f\n"
    "    cmp   r7, #0\n"
    "    beq   3f\n"
    "    subs  r0, r0, #3\n"                    /* r = 1: entry 3 */
    "    b     23f\n"
    "13:\n"
    "    subs  r0, r0, #1\n"                    /* r = 3: entry 1 */
    "    b     21f\n"
    "12:\n"
    "    subs  r0, r0, #2\n"                    /* r = 2: entry 2 */
    "    b     22f\n"
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

/* Adds the column's n entries at e, times x, into the accumulators (tab: the 256-byte table on ARMv6-M). */
static inline __attribute__((always_inline)) void shared_column(const uint8_t *e, uint32_t n, int32_t *acc,
                                                                uint32_t x, const int8_t *tab, const int8_t *book) {
#if PZ_Q8_M0_ASM
    (void)book;
    pz_q8_shared_col_m0(e, n, acc, x, tab);
#else
    (void)tab;
    int32_t *p = acc;
    for (uint32_t i = 0; i < n; i++) {
        p += 2u * (e[i] >> 3);
        *p += (int32_t)book[e[i] & 7u] * (int32_t)x;
    }
#endif
}

/* The layer's work for core `part` of `parts`: the same split as sparse_part in int8_sparse.c (alternate blocks of
 * 4 input columns, accumulators swapped, each core writes half of the outputs from the sum). */
static inline __attribute__((always_inline)) void shared_part(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y,
                                                              uint32_t part, uint32_t parts, pz_q8_swap_fn swap) {
    const uint8_t *e = l->w;
    /* layer fields in locals: the byte stores to y would otherwise force reloads (aliasing) */
    const uint32_t n_in = l->n_in, n_out = l->n_out;
    const uint16_t *col_len = l->row_len;
    const int8_t *book = l->codebook;
    const int32_t *bias = l->bias;
    const int32_t mult = l->multiplier[0], shift = l->shift[0];
    const int32_t out_zp = l->out_zp, act_min = l->act_min, act_max = l->act_max;
    const uint32_t out_xor = l->out_xor;
    int32_t acc[n_out ? 2u * n_out : 1u];  /* acc[2 j] for output j: the 8-byte stride of the entries' gaps */
    pz_q8_acc_init(acc, 2u, part == 0 ? bias : 0, n_out);
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
    const int8_t *tab = book;   /* unused by the portable loop */
#endif
    if (parts == 1u) {
        for (uint32_t k = 0; k < n_in; k++) {
            const uint32_t n = col_len[k], x = xu[k];
            if (x != 0 && n != 0) shared_column(e, n, acc, x, tab, book);
            e += n;
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
            if (part) e += skipped;
#pragma GCC unroll 4
            for (uint32_t i = k + 4u * part; i < k + 4u * part + 4u; i++) {
                const uint32_t n = col_len[i], x = xu[i];
                if (x != 0 && n != 0) shared_column(e, n, acc, x, tab, book);
                e += n;
            }
            if (!part) e += skipped;
        }
        for (; part == 0 && k < n_in; k++) {
            const uint32_t n = col_len[k], x = xu[k];
            if (x != 0 && n != 0) shared_column(e, n, acc, x, tab, book);
            e += n;
        }
    }
    if (parts == 1u) {
        for (uint32_t j = 0; j < n_out; j++) {
            y[j] = pz_q8_out_i(acc[2u * j], mult, shift, out_zp, act_min, act_max, out_xor);
        }
        return;
    }
    const int32_t *other = (const int32_t *)swap((uintptr_t)acc);
    const uint32_t h = n_out / 2u, j1 = part ? n_out : h;
    for (uint32_t j = part ? h : 0u; j < j1; j++) {
        int32_t a = (int32_t)((uint32_t)acc[2u * j] + (uint32_t)other[2u * j]);
        y[j] = pz_q8_out_i(a, mult, shift, out_zp, act_min, act_max, out_xor);
    }
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
