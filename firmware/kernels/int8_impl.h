/* Inline requantization and output stage shared by the int8 kernels (the exported pz_q8_requantize and
 * pz_q8_output in int8_common.c are these). Private to firmware/kernels/int8*.c. */
#ifndef PZ_INT8_IMPL_H
#define PZ_INT8_IMPL_H

#include "int8.h"

/* 1 where the Thumb-1 assembly inner loops apply (ARMv6-M: the Cortex-M0+); elsewhere (host tests, other CPUs)
 * the kernels run the same algorithm in portable C. */
#ifndef PZ_Q8_M0_ASM
#if defined(__thumb__) && defined(__ARM_ARCH_6M__)
#define PZ_Q8_M0_ASM 1
#else
#define PZ_Q8_M0_ASM 0
#endif
#endif

/* round_half_up(acc * multiplier / 2^t), t = 31 + shift in [1, 62], saturated to [-2^30, 2^30] (which the int8
 * clamp that follows cannot tell from the exact value). Unsigned maths on P = |acc| * multiplier:
 *   acc >= 0: floor((P + 2^(t-1)) / 2^t)          acc < 0: -floor((P + 2^(t-1) - 1) / 2^t)
 * with the 62-bit P built from four 16x16 MULS: the M0+ has no 32x32->64 multiply, and libgcc's 64x64 __aeabi_lmul
 * plus 64-bit shifts cost about twice as much. Checked against exact rationals in tests/test_compress_kernels.py. */
static inline int32_t pz_q8_requantize_i(int32_t acc, int32_t multiplier, int32_t shift) {
    uint32_t t = (uint32_t)(31 + shift);
    uint32_t a = acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc;  /* |acc| <= 2^31 */
    uint32_t m = (uint32_t)multiplier;                           /* < 2^31 */
    uint32_t a0 = a & 0xFFFFu, a1 = a >> 16, m0 = m & 0xFFFFu, m1 = m >> 16;
    uint32_t ll = a0 * m0, mid = a0 * m1 + a1 * m0;              /* mid < 2^32: a1 <= 2^15, m1 < 2^15 */
    uint32_t lo = ll + (mid << 16);
    uint32_t hi = a1 * m1 + (mid >> 16) + (lo < ll);
    uint32_t q;
    if (t < 32u) {
        uint32_t r = (1u << (t - 1u)) - (acc < 0);
        lo += r;
        hi += (lo < r);
        if (hi >> t) return acc < 0 ? -(1 << 30) : (1 << 30);
        q = (lo >> t) | (hi << (32u - t));
    } else {
        uint32_t r = t == 32u ? 0x80000000u : 0u;  /* the rounding term's part in the low word */
        uint32_t rh = t == 32u ? 0u : 1u << (t - 33u);
        if (acc < 0) {
            if (r) r -= 1u; else { r = 0xFFFFFFFFu; rh -= 1u; }
        }
        lo += r;
        hi += rh + (lo < r);
        q = hi >> (t - 32u);
    }
    if (q > (1u << 30)) q = 1u << 30;
    return acc < 0 ? -(int32_t)q : (int32_t)q;
}

/* The output stage with the layer's scalars passed in (kernels load them once per layer: the uint8_t stores to y
 * may alias the layer struct, so reading l->... in the loop would reload every field after every store).
 * When act_min >= out_zp (a fused ReLU), acc <= 0 gives round_half_up(acc * M) <= 0, so v <= out_zp <= act_min:
 * the clamp's result is known without the 62-bit product (about half of the ReLU outputs; exact). */
static inline uint8_t pz_q8_out_i(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_zp, int32_t act_min,
                                  int32_t act_max, uint32_t out_xor) {
    int32_t v;
    if (acc <= 0 && act_min >= out_zp) {
        v = act_min;
    } else {
        v = pz_q8_requantize_i(acc, multiplier, shift) + out_zp;
        if (v < act_min) v = act_min;
        if (v > act_max) v = act_max;
    }
    return (uint8_t)((uint8_t)(int8_t)v ^ out_xor);
}

/* The column kernels' accumulators (int8_sparse.c, int8_shared.c): acc[stride * j] = bias[j], or 0 when bias is
 * NULL (core 1's partial sums), for j < n. Four words a pass; the empty asm makes the pointer opaque so that GCC
 * does not turn the zero case into a memset call (picolibc's costs 8 cycles a word on the M0+, against 3 here). */
static inline __attribute__((always_inline)) void pz_q8_acc_init(int32_t *acc, uint32_t stride, const int32_t *bias,
                                                                 uint32_t n) {
    int32_t *p = acc;
    const int32_t *end4 = acc + stride * (n & ~3u), *end = acc + stride * n;
    if (bias) {
        for (; p != end4; p += 4u * stride, bias += 4) {
            __asm__("" : "+l"(p));
            const int32_t b0 = bias[0], b1 = bias[1], b2 = bias[2], b3 = bias[3];
            p[0] = b0;
            p[stride] = b1;
            p[2u * stride] = b2;
            p[3u * stride] = b3;
        }
        for (; p != end; p += stride) *p = *bias++;
    } else {
        const int32_t z = 0;
        for (; p != end4; p += 4u * stride) {
            __asm__("" : "+l"(p));
            p[0] = z;
            p[stride] = z;
            p[2u * stride] = z;
            p[3u * stride] = z;
        }
        for (; p != end; p += stride) {
            __asm__("" : "+l"(p));
            *p = z;
        }
    }
}

static inline uint8_t pz_q8_output_i(const pz_q8_layer_t *l, uint32_t j, int32_t acc) {
    return pz_q8_out_i(acc, l->multiplier[j], l->shift[j], l->out_zp, l->act_min, l->act_max, l->out_xor);
}

#endif
