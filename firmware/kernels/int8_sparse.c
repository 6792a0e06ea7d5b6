/* Sparse int8 dense layer in the "pairs" format (compress/layout.py pack_sparse): per output row, row_len[j]
 * (even) entries of two bytes, int8 weight then uint8 delta; the input index advances by delta before each product.
 * Two entries are read with one 32-bit load. Bytes: 2 per entry + 2 per row. Cycle count per entry in
 * docs/COMPRESS.md. */
#include "int8_impl.h"

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
        for (uint32_t n = row_len[j] >> 1; n != 0; n--) {
            uint32_t v = *e++;  /* little-endian: w0, d0, w1, d1 */
            xp += (v >> 8) & 0xFFu;
            acc += (int32_t)(int8_t)(v & 0xFFu) * (int32_t)xp[0];
            xp += v >> 24;
            acc += (int32_t)(int8_t)((v >> 16) & 0xFFu) * (int32_t)xp[0];
        }
        y[j] = pz_q8_out_i(acc, mult[j], shift[j], out_zp, act_min, act_max, out_xor);
    }
}
