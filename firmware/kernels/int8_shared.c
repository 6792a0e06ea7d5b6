/* Sparse int8 layer with shared weights in the "code3" format (compress/layout.py pack_shared): per output row,
 * row_len[j] bytes `gap << 3 | code`; the input pointer advances by gap, then adds codebook[code] * xu. Filler
 * entries (code 0, weight 0) bridge gaps over 31. One multiplier and shift for the whole layer. Bytes: 1 per entry
 * + 2 per row + 8 per layer.
 *
 * Inner loop (pz_q8_shared_row_m0, ARMv6-M): the kernel first expands the codebook into a 256-byte table on the
 * stack indexed by the whole entry byte (tab[b] = codebook[b & 7]), so one LDRSB fetches the weight without masking
 * the code. Per entry LDRB b (2) + LDRSB w (2) + LSRS gap (1) + ADDS xp (1) + LDRB x (2) + MULS (1) + ADDS acc (1)
 * = 10 cycles, plus 4 cycles of loop per 4 entries: 11 cycles per entry (static count from the TRM table; measured
 * in docs/COMPRESS.md). Elsewhere (host tests, other CPUs) the same loop runs in portable C. */
#include "int8_impl.h"

#if PZ_Q8_M0_ASM
/* acc + sum over the n entries at e; tab is the 256-byte expanded codebook. */
int32_t pz_q8_shared_row_m0(const uint8_t *e, uint32_t n, const uint8_t *xp, int32_t acc, const int8_t *tab);

#define PZ_Q8_SHARED_ENTRY_ASM(k)                                                       \
    "    ldrb  r6, [r0, #" #k "]\n"                                                     \
    "    ldrsb r7, [r4, r6]\n"                                                          \
    "    lsrs  r6, r6, #3\n"                                                            \
    "    adds  r2, r2, r6\n"                                                            \
    "    ldrb  r6, [r2]\n"                                                              \
    "    muls  r7, r6\n"                                                                \
    "    adds  r3, r3, r7\n"

__asm__(
    "    .pushsection .text.pz_q8_shared_row_m0, \"ax\", %progbits\n"  /* own section for --gc-sections */
    "    .syntax unified\n"
    "    .global pz_q8_shared_row_m0\n"
    "    .type pz_q8_shared_row_m0, %function\n"
    "    .thumb_func\n"
    "    .balign 4\n"
    "pz_q8_shared_row_m0:\n"                    /* r0 e, r1 n, r2 xp, r3 acc, [sp] tab */
    "    push  {r4, r5, r6, r7, lr}\n"
    "    ldr   r4, [sp, #20]\n"
    "    lsls  r5, r1, #30\n"                   /* n & 3 entries one at a time */
    "    beq   2f\n"
    "    lsrs  r5, r5, #30\n"
    "1:\n"
    PZ_Q8_SHARED_ENTRY_ASM(0)
    "    adds  r0, r0, #1\n"
    "    subs  r5, r5, #1\n"
    "    bne   1b\n"
    "2:\n"
    "    lsrs  r1, r1, #2\n"                    /* then four per iteration */
    "    beq   4f\n"
    "3:\n"
    PZ_Q8_SHARED_ENTRY_ASM(0)
    PZ_Q8_SHARED_ENTRY_ASM(1)
    PZ_Q8_SHARED_ENTRY_ASM(2)
    PZ_Q8_SHARED_ENTRY_ASM(3)
    "    adds  r0, r0, #4\n"
    "    subs  r1, r1, #1\n"
    "    bne   3b\n"
    "4:\n"
    "    movs  r0, r3\n"
    "    pop   {r4, r5, r6, r7, pc}\n"
    "    .size pz_q8_shared_row_m0, . - pz_q8_shared_row_m0\n"
    "    .popsection\n");
#endif

void pz_q8_shared(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y) {
    const uint8_t *e = l->w;
    /* layer fields in locals: the byte stores to y would otherwise force reloads (aliasing) */
    const uint32_t n_out = l->n_out;
    const uint16_t *row_len = l->row_len;
    const int8_t *book = l->codebook;
    const int32_t *bias = l->bias;
    const int32_t mult = l->multiplier[0], shift = l->shift[0];
    const int32_t out_zp = l->out_zp, act_min = l->act_min, act_max = l->act_max;
    const uint32_t out_xor = l->out_xor;
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
#endif
    for (uint32_t j = 0; j < n_out; j++) {
        const uint32_t n = row_len[j];
        int32_t acc = bias[j];
#if PZ_Q8_M0_ASM
        acc = pz_q8_shared_row_m0(e, n, xu, acc, tab);
#else
        const uint8_t *xp = xu;
        for (uint32_t i = 0; i < n; i++) {
            xp += e[i] >> 3;
            acc += (int32_t)book[e[i] & 7u] * (int32_t)xp[0];
        }
#endif
        e += n;
        y[j] = pz_q8_out_i(acc, mult, shift, out_zp, act_min, act_max, out_xor);
    }
}
