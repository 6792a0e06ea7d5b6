/* Reference int8 conv, depthwise conv and pooling: plain maths, one output at a time (conv.h). The optimised
 * kernels in conv_q8_m0.c must match these byte for byte; tests/test_firmware_conv.py checks these against NumPy. */
#include "conv.h"
#include "int8_impl.h"

/* Output channel k's group of 8 in a conv8 array: a 32-byte header, then 8 bytes per (padded) window index. */
static const uint8_t *conv8_group(const pz_q8_conv_t *l, uint32_t k) {
    uint32_t n_win = ((uint32_t)l->s.k_h * l->s.k_w * l->s.in_c + 3u) & ~3u;  /* padded to whole 4-byte blocks */
    return l->w + (k >> 3) * (32u + 8u * n_win);
}

static int32_t le32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* pw16 (pointwise): output channel k's group of 8, a header of 8 lane starts, then 16 bytes per input channel, then
 * the records (which the reference does not need). */
static const uint8_t *pw16_group(const pz_q8_conv_t *l, uint32_t k) {
    return l->w + (k >> 3) * PZ_PW16_GROUP_BYTES(l->s.in_c);
}

/* The header word of lane j (compress/conv_layout.py PW16_HEADER_LANES: 2, 3, 4, 5, 0, 1, 6, 7). */
static uint32_t pw16_header_word(uint32_t j) {
    return j < 2u ? j + 4u : j < 6u ? j - 2u : j;
}

int32_t pz_q8_conv_weight(const pz_q8_conv_t *l, uint32_t k, uint32_t i) {
    if (l->w_layout == PZ_Q8_W_PW16) {  /* pair i / 2, lane pair (k & 7) / 2, channel i & 1: w_even + 65536 w_odd */
        const uint8_t *word = pw16_group(l, k) + 32u + 32u * (i >> 1) + 8u * ((k & 7u) >> 1) + 4u * (i & 1u);
        return (int32_t)(int16_t)(word[2u * (k & 1u)] | word[2u * (k & 1u) + 1u] << 8) +
               ((k & 1u) ? (int32_t)(int16_t)(word[0] | word[1] << 8) < 0 : 0);  /* the even half's borrow */
    }
    uint8_t b = conv8_group(l, k)[32u + i * 8u + (k & 7u)];
    return (k & 1u) ? (int32_t)(int8_t)b : (int32_t)b - 128;  /* even lanes are stored + 128 */
}

int32_t pz_q8_conv_bias(const pz_q8_conv_t *l, uint32_t k) {
    if (l->w_layout == PZ_Q8_W_PW16) {  /* the lane start less 128 times the channel's weight sum */
        int32_t start = le32(pw16_group(l, k) + 4u * pw16_header_word(k & 7u));
        for (uint32_t c = 0; c < l->s.in_c; c++) start -= 128 * pz_q8_conv_weight(l, k, c);
        return start;
    }
    const uint8_t *h = conv8_group(l, k) + 4u * (k & 6u);  /* the (even, odd) pair of k */
    uint32_t odd = (uint32_t)le32(h + 4);
    return (k & 1u) ? (int32_t)odd : (int32_t)((uint32_t)le32(h) - 256u * odd);
}

const uint8_t *pz_q8_dw_record(const pz_q8_conv_t *l, uint32_t c) {
    return l->w + c * (4u + (((uint32_t)l->s.k_h * l->s.k_w + 3u) & ~3u));
}

/* The byte read at window tap (dy, dx), channel c of output (oy, ox): the input or, in the padding, `pad`. */
static uint32_t tap(const pz_q8_conv_t *l, const uint8_t *xu, uint32_t oy, uint32_t ox, uint32_t dy, uint32_t dx,
                    uint32_t c) {
    const pz_conv_shape_t *s = &l->s;
    int32_t iy = (int32_t)(oy * s->stride_h + dy) - s->pad_top;
    int32_t ix = (int32_t)(ox * s->stride_w + dx) - s->pad_left;
    if (iy < 0 || ix < 0 || iy >= s->in_h || ix >= s->in_w) return l->pad;
    return xu[((uint32_t)iy * s->in_w + (uint32_t)ix) * s->in_c + c];
}

void pz_conv2d_q8_ref(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y) {
    const pz_conv_shape_t *s = &l->s;
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        for (uint32_t ox = 0; ox < s->out_w; ox++) {
            for (uint32_t k = 0; k < s->out_c; k++) {
                int32_t acc = pz_q8_conv_bias(l, k);
                uint32_t i = 0;
                for (uint32_t dy = 0; dy < s->k_h; dy++) {
                    for (uint32_t dx = 0; dx < s->k_w; dx++) {
                        for (uint32_t c = 0; c < s->in_c; c++, i++) {
                            acc += (int32_t)tap(l, xu, oy, ox, dy, dx, c) * pz_q8_conv_weight(l, k, i);
                        }
                    }
                }
                *y++ = pz_q8_out_i(acc, l->multiplier[k], l->shift[k], l->out_zp, l->act_min, l->act_max,
                                   l->out_xor);
            }
        }
    }
}

void pz_dwconv2d_q8_ref(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y) {
    const pz_conv_shape_t *s = &l->s;
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        for (uint32_t ox = 0; ox < s->out_w; ox++) {
            for (uint32_t c = 0; c < s->in_c; c++) {
                const uint8_t *rec = pz_q8_dw_record(l, c);
                int32_t acc = le32(rec);
                const int8_t *w = (const int8_t *)rec + 4;
                for (uint32_t dy = 0; dy < s->k_h; dy++) {
                    for (uint32_t dx = 0; dx < s->k_w; dx++) {
                        acc += (int32_t)tap(l, xu, oy, ox, dy, dx, c) * w[dy * s->k_w + dx];
                    }
                }
                *y++ = pz_q8_out_i(acc, l->multiplier[c], l->shift[c], l->out_zp, l->act_min, l->act_max,
                                   l->out_xor);
            }
        }
    }
}

/* Round half away from zero of s / n with truncating division (CONV_INTERFACE.md), clamped to int8. */
static int32_t avg_round(int32_t s, int32_t n) {
    int32_t r = s >= 0 ? (s + n / 2) / n : -((-s + n / 2) / n);
    return r < -128 ? -128 : (r > 127 ? 127 : r);
}

static void pool_q8(const pz_conv_shape_t *s, const uint8_t *xu, uint8_t *y, uint8_t out_xor, int avg) {
    const uint32_t C = s->in_c;
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        for (uint32_t ox = 0; ox < s->out_w; ox++) {
            for (uint32_t c = 0; c < C; c++) {
                int32_t acc = avg ? 0 : -128;
                int32_t n = 0;
                for (uint32_t dy = 0; dy < s->k_h; dy++) {
                    int32_t iy = (int32_t)(oy * s->stride_h + dy) - s->pad_top;
                    if (iy < 0 || iy >= s->in_h) continue;
                    for (uint32_t dx = 0; dx < s->k_w; dx++) {
                        int32_t ix = (int32_t)(ox * s->stride_w + dx) - s->pad_left;
                        if (ix < 0 || ix >= s->in_w) continue;
                        int32_t q = (int32_t)xu[((uint32_t)iy * s->in_w + (uint32_t)ix) * C + c] - 128;
                        acc = avg ? acc + q : (q > acc ? q : acc);
                        n++;
                    }
                }
                int32_t v = avg ? avg_round(acc, n) : acc;
                y[(oy * s->out_w + ox) * C + c] = (uint8_t)((uint8_t)(int8_t)v ^ out_xor);
            }
        }
    }
}

void pz_maxpool2d_q8(const pz_conv_shape_t *s, const uint8_t *xu, uint8_t *y, uint8_t out_xor) {
    pool_q8(s, xu, y, out_xor, 0);
}

void pz_avgpool2d_q8(const pz_conv_shape_t *s, const uint8_t *xu, uint8_t *y, uint8_t out_xor) {
    pool_q8(s, xu, y, out_xor, 1);
}

void pz_gavgpool_q8(const uint8_t *xu, uint8_t *y, uint32_t hw, uint32_t c, uint8_t out_xor) {
    for (uint32_t j = 0; j < c; j++) {
        int32_t acc = 0;
        for (uint32_t p = 0; p < hw; p++) acc += (int32_t)xu[p * c + j] - 128;
        y[j] = (uint8_t)((uint8_t)(int8_t)avg_round(acc, (int32_t)hw) ^ out_xor);
    }
}
