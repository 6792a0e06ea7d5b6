/* Internal to the int8 M0+ conv kernels: what the conv2d kernel (conv_q8_m0.c) shares with the depthwise one
 * (dwconv_q8_m0.c): the output stage of a run of channels (defined in conv_q8_m0.c) and the scratch size. Not part
 * of the kernel API (conv.h). */
#ifndef PZ_CONV_Q8_M0_H
#define PZ_CONV_Q8_M0_H

#include "conv.h"

typedef uint32_t pz_word_alias __attribute__((may_alias));

/* The output stage of a run of channels: y[i] = the output byte of acc[i] with multiplier mult[i], shift[i], i < n.
 * `fast` (set by requant_init) when every shift is >= 2 (total shift >= 33, see out_m0) and out_xor is 0 or 0x80:
 * then the Thumb-1 loop below does it with the constants folded, lo = act_min - out_zp, hi = act_max - out_zp,
 * add = out_zp + out_xor (xor 0x80 = + 0x80 modulo 256), cut = 1 with a fused ReLU (acc <= 0 gives act_min without
 * a multiply), INT32_MIN otherwise. */
typedef struct pz_requant_run {
    const int32_t *acc;
    uint8_t *y;
    const int32_t *mult;
    const int8_t *shift;
    uint32_t n;          /* > 0 */
    int32_t lo, hi, add, cut;
    const int32_t *rq, *mult0;  /* conv.h rq and multiplier: mult[i]'s record is at rq + 3 (mult - mult0) + 3 i */
    uint32_t fast;
    uint32_t small;      /* every accumulator within +-(2^20 - 1) and every shift >= 0: out_small (2: and
                            act_min = out_zp) */
    uint32_t rec;        /* the layer has one-multiply records (conv.h rq) */
    void (*stage)(const struct pz_requant_run *);  /* the Thumb-1 loop requant_init chose, or NULL: pz_q8_requant_c */
    uint32_t pixels;     /* pz_q8_requant_rec_px_m0: pixels of n outputs each */
    uint32_t acc_skip;   /* pz_q8_requant_rec_px_m0: bytes of accumulators after each pixel's n */
} pz_requant_run_t;
void pz_q8_requant_init(pz_requant_run_t *r, const pz_q8_conv_t *l, uint32_t channels, uint32_t depthwise);
void pz_q8_requant_c(const pz_requant_run_t *r, const int32_t *acc, uint8_t *y, uint32_t n, const int32_t *mult,
                     const int8_t *shift, const pz_q8_conv_t *l);

/* y[i] = the output byte of acc[i], i < n, channels from mult/shift on: the Thumb-1 stage pz_q8_requant_init chose,
 * else the C one (pz_q8_requant_c, conv_q8_m0.c). */
static inline void pz_q8_requant_run(pz_requant_run_t *r, const int32_t *acc, uint8_t *y, uint32_t n,
                                     const int32_t *mult, const int8_t *shift, const pz_q8_conv_t *l) {
    if (r->stage) {
        r->acc = acc;
        r->y = y;
        r->mult = mult;
        r->shift = shift;
        r->n = n;
        r->stage(r);
        return;
    }
    pz_q8_requant_c(r, acc, y, n, mult, shift, l);
}

/* The pointwise kernel (pwconv_q8_m0.c): runs a 1x1 stride-1 unpadded conv2d and returns 1, or returns 0 for a
 * layer it does not take (no one-multiply records, K not a multiple of 8, the host build), which pz_conv2d_q8_m0
 * then runs itself. */
int pz_pwconv_q8_m0(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y);

/* Scratch of the 3x3 depthwise kernel (pz_conv_q8_scratch_bytes with depthwise set, k 3x3). */
uint32_t pz_dwconv_q8_m0_scratch_bytes(const pz_conv_shape_t *s);

#endif
