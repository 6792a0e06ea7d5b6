/* Sparse int8 dense layer in the "pairs" format (compress/layout.py pack_sparse): per output row, row_len[j]
 * (even) entries of two bytes, int8 weight then uint8 delta; the input index advances by delta before each product.
 * Two entries are read with one 32-bit load, two words per loop iteration. Bytes: 2 per entry + 2 per row. Cycles in
 * docs/COMPRESS.md. */
#include "int8_impl.h"

/* Two entries of one word v (little-endian: w0, d0, w1, d1) into acc, advancing xp. */
#define PZ_Q8_SPARSE_WORD(word)                                               \
    do {                                                                      \
        uint32_t v = (word);                                                  \
        xp += (v >> 8) & 0xFFu;                                               \
        acc += (int32_t)(int8_t)(v & 0xFFu) * (int32_t)xp[0];                 \
        xp += v >> 24;                                                        \
        acc += (int32_t)(int8_t)((v >> 16) & 0xFFu) * (int32_t)xp[0];         \
    } while (0)

void pz_q8_sparse(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y) {
    const uint32_t *e = (const uint32_t *)(const void *)l->w;  /* 4-byte aligned, rows are whole words */
    /* layer fields in locals: the byte stores to y would otherwise force reloads (aliasing) */
    const uint32_t n_out = l->n_out;
    const uint16_t *row_len = l->row_len;
    const int32_t *bias = l->bias, *mult = l->multiplier;
    const int8_t *shift = l->shift;
    const int32_t out_zp = l->out_zp, act_min = l->act_min, act_max = l->act_max;
    const uint32_t out_xor = l->out_xor;
    for (uint32_t j = 0; j < n_out; j++) {
        const uint8_t *xp = xu;
        int32_t acc = bias[j];
        uint32_t n = row_len[j] >> 1;  /* words of two entries */
        if (n & 1u) {
            PZ_Q8_SPARSE_WORD(e[0]);
            e++;
        }
        for (n >>= 1; n != 0; n--) {    /* two words per iteration: the loop test is paid once per 4 entries */
            uint32_t v0 = e[0], v1 = e[1];
            e += 2;
            PZ_Q8_SPARSE_WORD(v0);
            PZ_Q8_SPARSE_WORD(v1);
        }
        y[j] = pz_q8_out_i(acc, mult[j], shift[j], out_zp, act_min, act_max, out_xor);
    }
}
