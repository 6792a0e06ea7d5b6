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

/* The column formats (int8_sparse.c "pairs", int8_shared.c "code3"): one driver for both kernels, on one core or
 * split between two (int8.h). A column function adds the n entries at e, times the input byte x, into the
 * accumulators (ctx: the shared kernel's weight table; unused by the sparse one). */
typedef void (*pz_q8_column_fn)(const uint8_t *e, uint32_t n, int32_t *acc, uint32_t x, const int8_t *ctx);

/* The Duff's-device entry of the Thumb-1 column loops: r1 = n (> 0) becomes the count of 4-entry passes, ceil(n / 4),
 * and r0 steps back by (4 - n mod 4) mod 4 entries of `size` bytes, entering the 4-entry body at its label 21 (n mod
 * 4 = 3), 22 (2), 23 (1) or 3 (0). Uses r7. */
#define PZ_Q8_DUFF_ENTRY_ASM(size)                                                          \
    "    lsls  r7, r1, #30\n"                                                               \
    "    lsrs  r7, r7, #30\n"                                                               \
    "    adds  r1, r1, #3\n"                                                                \
    "    lsrs  r1, r1, #2\n"                                                                \
    "    cmp   r7, #2\n"                                                                    \
    "    beq   12f\n"                                                                       \
    "    bhi   13f\n"                                                                       \
    "    cmp   r7, #0\n"                                                                    \
    "    beq   3f\n"                                                                        \
    "    subs  r0, r0, #(3 * " #size ")\n"                                                  \
    "    b     23f\n"                                                                       \
    "13:\n"                                                                                 \
    "    subs  r0, r0, #(1 * " #size ")\n"                                                  \
    "    b     21f\n"                                                                       \
    "12:\n"                                                                                 \
    "    subs  r0, r0, #(2 * " #size ")\n"                                                  \
    "    b     22f\n"

/* The layer's work for core `part` of `parts` (1, or 2 with swap given), inlined with constant parts, part,
 * stride, entry_bytes, per_output and column (each core's loop specialised; the one-core kernel keeps its own).
 * acc: the caller's n_out accumulators at `stride` words (acc[stride * j] for output j); entries of `entry_bytes`;
 * per_output: 1 when multiplier and shift are per output, 0 for one per layer.
 * Core `part`'s input columns are accumulated (all of them for one core; for two, alternate blocks of 4, below; core
 * 0's accumulators start at the biases, core 1's at 0); with 2 parts the cores then swap their accumulators'
 * addresses (a barrier: both sums are complete) and core `part` writes outputs [part * h, h + part * (n_out - h)),
 * h = n_out / 2, from the sum of both. int32 addition is exact in any order, so the bytes equal the one-core
 * kernel's. */
static inline __attribute__((always_inline)) void pz_q8_column_layer(const pz_q8_layer_t *l, const uint8_t *xu,
                                                                     uint8_t *y, uint32_t part, uint32_t parts,
                                                                     pz_q8_swap_fn swap, int32_t *acc,
                                                                     uint32_t stride, uint32_t entry_bytes,
                                                                     uint32_t per_output, pz_q8_column_fn column,
                                                                     const int8_t *ctx) {
    const uint8_t *e = l->w;
    /* layer fields in locals: the byte stores to y would otherwise force reloads (aliasing) */
    const uint32_t n_in = l->n_in, n_out = l->n_out;
    const uint16_t *col_len = l->row_len;
    const int32_t *mult = l->multiplier;
    const int8_t *shift = l->shift;
    const int32_t mult0 = mult[0], shift0 = shift[0];
    const int32_t out_zp = l->out_zp, act_min = l->act_min, act_max = l->act_max;
    const uint32_t out_xor = l->out_xor;
    /* A fused ReLU writes act_min for acc <= 0 (pz_q8_out_i's shortcut, ~70 % of a hidden layer's outputs), tested
     * first in the output loops: 784x300 sparse 67,313 -> 65,006 cycles on one core. Only with per-output
     * requantization: the shared kernel's loops (one multiplier and shift) came out slower with it (docs/BENCHMARKS.md
     * "Two cores"). */
    const uint32_t relu = per_output && act_min >= out_zp;
    const uint8_t low = (uint8_t)((uint8_t)(int8_t)act_min ^ out_xor);
    pz_q8_acc_init(acc, stride, part == 0 ? l->bias : 0, n_out);
    if (parts == 1u) {
        for (uint32_t k = 0; k < n_in; k++) {
            const uint32_t n = col_len[k], x = xu[k];
            if (x != 0 && n != 0) column(e, n, acc, x, ctx);
            e += entry_bytes * n;
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
            if (part) e += entry_bytes * skipped;
#pragma GCC unroll 4
            for (uint32_t i = k + 4u * part; i < k + 4u * part + 4u; i++) {
                const uint32_t n = col_len[i], x = xu[i];
                if (x != 0 && n != 0) column(e, n, acc, x, ctx);
                e += entry_bytes * n;
            }
            if (!part) e += entry_bytes * skipped;
        }
        for (; part == 0 && k < n_in; k++) {
            const uint32_t n = col_len[k], x = xu[k];
            if (x != 0 && n != 0) column(e, n, acc, x, ctx);
            e += entry_bytes * n;
        }
    }
    if (parts == 1u) {
        for (uint32_t j = 0; j < n_out; j++) {
            const int32_t a = acc[stride * j];
            if (relu && a <= 0) {
                y[j] = low;
                continue;
            }
            y[j] = pz_q8_out_i(a, per_output ? mult[j] : mult0, per_output ? shift[j] : shift0,
                               out_zp, act_min, act_max, out_xor);
        }
        return;
    }
    const int32_t *other = (const int32_t *)swap((uintptr_t)acc);
    const uint32_t h = n_out / 2u, j1 = part ? n_out : h;
    for (uint32_t j = part ? h : 0u; j < j1; j++) {
        int32_t a = (int32_t)((uint32_t)acc[stride * j] + (uint32_t)other[stride * j]);
        if (relu && a <= 0) {
            y[j] = low;
            continue;
        }
        y[j] = pz_q8_out_i(a, per_output ? mult[j] : mult0, per_output ? shift[j] : shift0, out_zp, act_min,
                           act_max, out_xor);
    }
}

#endif
