/* Shared by every int8 kernel: requantization, output clamp, interleave4 weight lookup. */
#include "int8_impl.h"

int32_t pz_q8_requantize(int32_t acc, int32_t multiplier, int32_t shift) {
    return pz_q8_requantize_i(acc, multiplier, shift);
}

uint8_t pz_q8_output(const pz_q8_layer_t *l, uint32_t j, int32_t acc) {
    return pz_q8_output_i(l, j, acc);
}

int32_t pz_q8_dense_weight(const pz_q8_layer_t *l, uint32_t j, uint32_t k) {
    uint32_t in_pad = (l->n_in + 3u) & ~3u;
    uint32_t out_pad = (l->n_out + 3u) & ~3u;
    uint32_t g0 = j & ~7u;                      /* groups of 8 outputs, the last one of 4 when 4 remain */
    uint32_t lanes = (g0 + 8u <= out_pad) ? 8u : 4u;
    uint8_t b = l->w[g0 * in_pad + k * lanes + (j - g0)];
    return ((j - g0) & 1u) ? (int32_t)(int8_t)b : (int32_t)b - 128;  /* lanes 0 and 2 are stored + 128 */
}
