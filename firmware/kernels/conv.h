/* Convolution and pooling kernels, float32 and int8, NHWC activations (docs/FIRMWARE.md "Conv kernels").
 *
 * Geometry (pz_conv_shape_t) follows the spec (zoo/nn.py, TensorFlow's padding rule): out = ceil(in / s) for
 * "same" with pad_top = pad_total / 2 before and the odd cell after, out = (in - k) / s + 1 for "valid" (no pad).
 * Only the "before" pads are passed; cells past the input on either side are padding. Conv padding cells are zero
 * (int8: the input zero point, i.e. the byte `pad`), pool padding cells are ignored (never win, not counted).
 *
 * int8 kernels read offset-binary bytes xu = q + 128 (the first layer reads raw pixels) and, like the dense
 * kernels (int8.h), use a folded bias: acc_k = bias_folded_k + sum_window xu * w, with a padding cell read as
 * `pad` = zp_in + 128 so that it adds exactly what bias_folded took away (compress/conv_layout.py). Outputs are
 * requantized exactly as dense (int8_impl.h) and written as (uint8_t)clamp(...) ^ out_xor.
 * Pools keep scale and zero point: max = the largest value, avg = round half away from zero of sum(q) / n
 * (compress/reference.py and CONV_INTERFACE.md), written ^ out_xor as well. */
#ifndef PZ_CONV_H
#define PZ_CONV_H

#include <stdint.h>

typedef struct {
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;  /* out_c = in_c for depthwise and pools */
    uint8_t k_h, k_w;              /* kernel or pool window */
    uint8_t stride_h, stride_w;
    uint8_t pad_top, pad_left;     /* "before" padding; 0 for valid */
} pz_conv_shape_t;

/* -- float32 (weights as the model directory holds them) -------------------------------------------------------
 * conv2d: w[kh][kw][C][K] (HWIO), b[K]; depthwise: w[kh][kw][C], b[C]; y = clamp(conv + b, lo, hi): lo = -inf,
 * hi = +inf for none, 0 / inf for ReLU, 0 / 6 for ReLU6. x and y must not overlap. */
void pz_conv2d_f32(const pz_conv_shape_t *s, const float *x, const float *w, const float *b, float *y, float lo,
                   float hi);
void pz_dwconv2d_f32(const pz_conv_shape_t *s, const float *x, const float *w, const float *b, float *y, float lo,
                     float hi);
/* The aux data of a float conv layer: its geometry and the fused activation's clamp. */
typedef struct {
    pz_conv_shape_t s;
    float lo, hi;
} pz_f32_conv_t;

/* Pools: y may equal x (in place) when pad_top = pad_left = 0; avg counts only the cells inside the input. */
void pz_maxpool2d_f32(const pz_conv_shape_t *s, const float *x, float *y);
void pz_avgpool2d_f32(const pz_conv_shape_t *s, const float *x, float *y);
void pz_gavgpool_f32(const float *x, float *y, uint32_t hw, uint32_t c);  /* y[c] = mean over hw pixels */

/* -- int8 ------------------------------------------------------------------------------------------------------ */
typedef struct {
    pz_conv_shape_t s;
    const uint8_t *w;           /* conv: "conv8" bytes; depthwise: "dw" records (compress/conv_layout.py), 4-byte
                                   aligned */
    const int32_t *bias;        /* NULL: the folded bias is inside the conv8 groups and the dw records */
    const int32_t *multiplier;  /* Q31 multiplier, out_c */
    const int8_t *shift;        /* right shift, 31 + shift in [1, 62], out_c */
    int8_t out_zp, act_min, act_max;
    uint8_t out_xor;
    uint8_t pad;                /* the byte of a padding cell: zp_in + 128 */
    uint8_t *scratch;           /* the _m0 kernels: pz_conv_q8_scratch_bytes, 4-byte aligned (conv2d: windows that
                                   cross the border; depthwise: one pixel's int32 accumulators); the reference
                                   kernels do not use it */
    const int32_t *rq;          /* NULL, or PZ_Q8_RQ_WORDS per output channel for the _m0 kernels' one-multiply
                                   output stage (firmware/requant.py): L (acc <= L: act_min), A (acc >= A: act_max),
                                   m' << 8 | s with acc * m' / 2^s the golden acc * multiplier / 2^(31 + shift),
                                   exact in int32 for every accumulator between (conv2d: then zero records up to
                                   a multiple of 8 channels, as the loops read whole groups); the reference kernels
                                   ignore it */
    uint8_t w_layout;           /* conv2d: PZ_Q8_W_CONV8 (0) or PZ_Q8_W_PW16 (compress/conv_layout.py
                                   conv_weight_layout: pointwise layers pwconv_q8_m0.c's pw16 loop takes; their
                                   records are inside w, rq is NULL); depthwise and pools: 0 */
} pz_q8_conv_t;

#define PZ_Q8_RQ_WORDS 3u
#define PZ_Q8_W_CONV8 0u
#define PZ_Q8_W_PW16 1u
/* Bytes of a pw16 group of 8 output channels (compress/conv_layout.py pw16_group_bytes): 8 lane starts, 16 bytes
 * per input channel, the 8 channels' records. */
#define PZ_PW16_GROUP_BYTES(C) (32u + 16u * (uint32_t)(C) + 4u * PZ_Q8_RQ_WORDS * 8u)
/* A pointwise layer whose K is not a multiple of 8 runs in batches through a stack buffer of this many bytes, at
 * least ceil8(K) (pwconv_q8_m0.c; compress/conv_layout.py PW_BATCH_BYTES); a larger K takes conv_q8_m0.c's paths. */
#define PZ_PW_BATCH_BYTES 256u

/* Weight of output channel k at window index i = (dy * k_w + dx) * in_c + c, and its folded bias, of a conv8 or pw16
 * array (l->w_layout). */
int32_t pz_q8_conv_weight(const pz_q8_conv_t *l, uint32_t k, uint32_t i);
int32_t pz_q8_conv_bias(const pz_q8_conv_t *l, uint32_t k);
/* The record of depthwise channel c: its folded bias, then its weights at taps dy * k_w + dx. */
const uint8_t *pz_q8_dw_record(const pz_q8_conv_t *l, uint32_t c);

/* conv2d: the plain reference and the Cortex-M0+ kernel (Thumb-1 inner loop on ARMv6-M, the same algorithm in C
 * elsewhere); the same bytes out. x and y must not overlap. */
void pz_conv2d_q8_ref(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y);
void pz_conv2d_q8_m0(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y);
/* Scratch bytes the _m0 kernel of a conv2d (depthwise = 0) or depthwise conv2d (1) needs. */
uint32_t pz_conv_q8_scratch_bytes(const pz_conv_shape_t *s, uint32_t depthwise);

void pz_dwconv2d_q8_ref(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y);
void pz_dwconv2d_q8_m0(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y);

/* Pools on offset-binary bytes; y may equal x (in place) when pad_top = pad_left = 0. */
void pz_maxpool2d_q8(const pz_conv_shape_t *s, const uint8_t *xu, uint8_t *y, uint8_t out_xor);
/* The same max pool with a fast path for windows inside the input (conv_q8_m0.c); the same bytes out. */
void pz_maxpool2d_q8_m0(const pz_conv_shape_t *s, const uint8_t *xu, uint8_t *y, uint8_t out_xor);
void pz_avgpool2d_q8(const pz_conv_shape_t *s, const uint8_t *xu, uint8_t *y, uint8_t out_xor);
void pz_gavgpool_q8(const uint8_t *xu, uint8_t *y, uint32_t hw, uint32_t c, uint8_t out_xor);

#endif
