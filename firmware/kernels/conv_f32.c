/* float32 conv, depthwise conv and pooling: plain loops in NHWC (conv.h). Summation order per output: bias first,
 * then the window row by row, column by column, channel by channel. */
#include "conv.h"

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Input cell (iy, ix) of the window at output (oy, ox), tap (dy, dx); 0 when it lies in the padding. */
static int cell(const pz_conv_shape_t *s, uint32_t oy, uint32_t ox, uint32_t dy, uint32_t dx, uint32_t *index) {
    int32_t iy = (int32_t)(oy * s->stride_h + dy) - s->pad_top;
    int32_t ix = (int32_t)(ox * s->stride_w + dx) - s->pad_left;
    if (iy < 0 || ix < 0 || iy >= s->in_h || ix >= s->in_w) return 0;
    *index = ((uint32_t)iy * s->in_w + (uint32_t)ix) * s->in_c;
    return 1;
}

void pz_conv2d_f32(const pz_conv_shape_t *s, const float *x, const float *w, const float *b, float *y, float lo,
                   float hi) {
    const uint32_t C = s->in_c, K = s->out_c;
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        for (uint32_t ox = 0; ox < s->out_w; ox++) {
            float *out = y + (oy * s->out_w + ox) * K;
            for (uint32_t k = 0; k < K; k++) out[k] = b[k];
            for (uint32_t dy = 0; dy < s->k_h; dy++) {
                for (uint32_t dx = 0; dx < s->k_w; dx++) {
                    uint32_t at;
                    if (!cell(s, oy, ox, dy, dx, &at)) continue;
                    const float *wt = w + (dy * s->k_w + dx) * C * K;
                    for (uint32_t c = 0; c < C; c++) {
                        float v = x[at + c];
                        for (uint32_t k = 0; k < K; k++) out[k] += v * wt[c * K + k];
                    }
                }
            }
            for (uint32_t k = 0; k < K; k++) out[k] = clampf(out[k], lo, hi);
        }
    }
}

void pz_dwconv2d_f32(const pz_conv_shape_t *s, const float *x, const float *w, const float *b, float *y, float lo,
                     float hi) {
    const uint32_t C = s->in_c;
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        for (uint32_t ox = 0; ox < s->out_w; ox++) {
            float *out = y + (oy * s->out_w + ox) * C;
            for (uint32_t c = 0; c < C; c++) out[c] = b[c];
            for (uint32_t dy = 0; dy < s->k_h; dy++) {
                for (uint32_t dx = 0; dx < s->k_w; dx++) {
                    uint32_t at;
                    if (!cell(s, oy, ox, dy, dx, &at)) continue;
                    const float *wt = w + (dy * s->k_w + dx) * C;
                    for (uint32_t c = 0; c < C; c++) out[c] += x[at + c] * wt[c];
                }
            }
            for (uint32_t c = 0; c < C; c++) out[c] = clampf(out[c], lo, hi);
        }
    }
}

/* One pool over every output cell and channel; `avg` selects mean (in-input cells only) instead of max. Each output
 * reads only input cells at or after its own index when there is no before-padding, so y may equal x. */
static void pool_f32(const pz_conv_shape_t *s, const float *x, float *y, int avg) {
    const uint32_t C = s->in_c;
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        for (uint32_t ox = 0; ox < s->out_w; ox++) {
            for (uint32_t c = 0; c < C; c++) {
                float acc = 0.0f;
                uint32_t n = 0;
                for (uint32_t dy = 0; dy < s->k_h; dy++) {
                    for (uint32_t dx = 0; dx < s->k_w; dx++) {
                        uint32_t at;
                        if (!cell(s, oy, ox, dy, dx, &at)) continue;
                        float v = x[at + c];
                        acc = avg ? acc + v : (n == 0 || v > acc ? v : acc);
                        n++;
                    }
                }
                y[(oy * s->out_w + ox) * C + c] = avg ? acc / (float)n : acc;
            }
        }
    }
}

void pz_maxpool2d_f32(const pz_conv_shape_t *s, const float *x, float *y) { pool_f32(s, x, y, 0); }
void pz_avgpool2d_f32(const pz_conv_shape_t *s, const float *x, float *y) { pool_f32(s, x, y, 1); }

void pz_gavgpool_f32(const float *x, float *y, uint32_t hw, uint32_t c) {
    for (uint32_t j = 0; j < c; j++) {
        float acc = 0.0f;
        for (uint32_t p = 0; p < hw; p++) acc += x[p * c + j];
        y[j] = acc / (float)hw;
    }
}
