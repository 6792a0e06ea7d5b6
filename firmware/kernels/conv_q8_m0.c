/* Optimised int8 conv2d and depthwise conv2d for the Cortex-M0+ (conv.h); byte-identical to conv_q8_ref.c.
 *
 * conv2d, no im2col: an NHWC window is kh runs of kw * C contiguous bytes, the conv8 weights walk the window in the
 * same order, so each group of 8 output channels is the dense kernel's 8-lane dot product (int8_dense_m0.c) over
 * those runs: per window byte, LDRB x + 2 x [LDM word + 4 extract + 4 MULS + 4 ADD] = 30 cycles for 8 MACs. Lanes
 * 0, 2, 4, 6 are stored + 128, so S_even = A_even - 256 * A_odd - 128 * X with X = sum of the window bytes, which
 * is computed once per output pixel (a SWAR byte sum) and shared by all groups.
 * - Interior windows (inside the input) are read in place: kh runs, the next one a row (in_w * C bytes) further.
 * - A window that crosses the border, or any window when kw * C is not a multiple of 4, is first copied into
 *   `scratch` with padding cells = `pad`, then read as one run.
 * The assembly loop takes runs whose length is a multiple of 4; the last (n_win & 3) bytes of a gathered window
 * go through a C loop with the exact weights.
 *
 * depthwise: C code, one output pixel at a time, channels inner, taps unrolled for 3x3 interior windows; the
 * accumulator stays in a register and each MAC is LDRB + LDRSB + MULS + ADD. */
#include "conv.h"
#include "int8_impl.h"

typedef uint32_t pz_word_alias __attribute__((may_alias));

typedef struct {
    uint32_t run_bytes;  /* bytes per run, a multiple of 4, > 0 */
    uint32_t skip;       /* from the end of one run to the start of the next */
    uint32_t runs;       /* > 0 */
} pz_conv_runs_t;

uint32_t pz_conv2d_q8_scratch_bytes(const pz_conv_shape_t *s) {
    return ((uint32_t)s->k_h * s->k_w * s->in_c + 3u) & ~3u;
}

/* Sum of n bytes at p (any alignment; words when aligned). */
static uint32_t sum_bytes(const uint8_t *p, uint32_t n) {
    uint32_t total = 0;
    while (n && ((uintptr_t)p & 3u)) { total += *p++; n--; }
    while (n >= 4) {
        uint32_t chunk = n > 512u ? 512u : n & ~3u;  /* <= 128 words: 16-bit lanes hold 128 * 510 */
        const pz_word_alias *w = (const pz_word_alias *)p;
        uint32_t lanes = 0;
        for (uint32_t i = 0; i < chunk / 4u; i++) {
            uint32_t v = w[i];
            lanes += v & 0x00FF00FFu;
            lanes += (v >> 8) & 0x00FF00FFu;
        }
        total += (lanes & 0xFFFFu) + (lanes >> 16);
        p += chunk;
        n -= chunk;
    }
    while (n--) total += *p++;
    return total;
}

#if PZ_Q8_M0_ASM
void pz_q8_conv_dot8_m0(const uint8_t *x, const uint8_t *w, const pz_conv_runs_t *r, uint32_t *A);

#define PZ_CONV_MAC_WORD(a0, a1, a2, a3) \
    "    ldm   r1!, {r3}\n"              \
    "    sxth  r4, r3\n"                 \
    "    asrs  r5, r4, #8\n"             \
    "    muls  r4, r2, r4\n"             \
    "    " a0 ", r4\n"                   \
    "    muls  r5, r2, r5\n"             \
    "    " a1 ", r5\n"                   \
    "    asrs  r4, r3, #16\n"            \
    "    muls  r4, r2, r4\n"             \
    "    " a2 ", r4\n"                   \
    "    asrs  r3, r3, #24\n"            \
    "    muls  r3, r2, r3\n"             \
    "    " a3 ", r3\n"
#define PZ_CONV_MAC_K(off)                                                      \
    "    ldrb  r2, [r0, #" off "]\n"                                            \
    PZ_CONV_MAC_WORD("adds  r6, r6", "adds  r7, r7", "add   r8", "add   r9")    \
    PZ_CONV_MAC_WORD("add   r10", "add   r11", "add   r12", "add   lr")

/* r0 = x, r1 = w (4-byte aligned), r2 = runs, r3 = A[8]. Frame: [sp] = end of this run, [sp+4] = skip,
 * [sp+8] = runs left, [sp+12] = A, [sp+16] = run bytes. Each run enters the 16-byte unrolled body part way when its
 * number of 4-byte blocks is not a multiple of 4 (Duff's device, as int8_dense_m0.c). */
__asm__(
    "    .pushsection .text.pz_q8_conv_dot8_m0, \"ax\", %progbits\n"
    "    .syntax unified\n"
    "    .balign 4\n"
    "    .global pz_q8_conv_dot8_m0\n"
    "    .type   pz_q8_conv_dot8_m0, %function\n"
    "    .thumb_func\n"
    "pz_q8_conv_dot8_m0:\n"
    "    push  {r4-r7, lr}\n"
    "    mov   r4, r8\n"
    "    mov   r5, r9\n"
    "    mov   r6, r10\n"
    "    mov   r7, r11\n"
    "    push  {r4-r7}\n"
    "    sub   sp, #20\n"
    "    ldm   r2!, {r4, r5, r6}\n"  /* run bytes, skip, runs */
    "    str   r4, [sp, #16]\n"
    "    str   r5, [sp, #4]\n"
    "    str   r6, [sp, #8]\n"
    "    str   r3, [sp, #12]\n"
    "    movs  r6, #0\n"
    "    movs  r7, #0\n"
    "    mov   r8, r6\n"
    "    mov   r9, r6\n"
    "    mov   r10, r6\n"
    "    mov   r11, r6\n"
    "    mov   r12, r6\n"
    "    mov   lr, r6\n"
    "0:\n"                            /* next run: r0 = its first byte */
    "    ldr   r4, [sp, #16]\n"
    "    adds  r5, r0, r4\n"
    "    str   r5, [sp]\n"
    "    lsls  r4, r4, #28\n"
    "    lsrs  r4, r4, #30\n"        /* (4-byte blocks) mod 4 */
    "    beq   1f\n"
    "    cmp   r4, #2\n"
    "    beq   12f\n"
    "    bhi   11f\n"
    "    subs  r0, #12\n"
    "    b     13f\n"
    "11:\n"
    "    subs  r0, #4\n"
    "    b     14f\n"
    "12:\n"
    "    subs  r0, #8\n"
    "    b     15f\n"
    "1:\n"
    PZ_CONV_MAC_K("0")
    PZ_CONV_MAC_K("1")
    PZ_CONV_MAC_K("2")
    PZ_CONV_MAC_K("3")
    "14:\n"
    PZ_CONV_MAC_K("4")
    PZ_CONV_MAC_K("5")
    PZ_CONV_MAC_K("6")
    PZ_CONV_MAC_K("7")
    "15:\n"
    PZ_CONV_MAC_K("8")
    PZ_CONV_MAC_K("9")
    PZ_CONV_MAC_K("10")
    PZ_CONV_MAC_K("11")
    "13:\n"
    PZ_CONV_MAC_K("12")
    PZ_CONV_MAC_K("13")
    PZ_CONV_MAC_K("14")
    PZ_CONV_MAC_K("15")
    "    adds  r0, #16\n"
    "    ldr   r4, [sp]\n"
    "    cmp   r0, r4\n"
    "    beq   3f\n"
    "    b     1b\n"
    "3:\n"
    "    ldr   r4, [sp, #4]\n"
    "    adds  r0, r0, r4\n"
    "    ldr   r4, [sp, #8]\n"
    "    subs  r4, #1\n"
    "    str   r4, [sp, #8]\n"
    "    beq   4f\n"
    "    b     0b\n"
    "4:\n"
    "    ldr   r3, [sp, #12]\n"
    "    str   r6, [r3, #0]\n"
    "    str   r7, [r3, #4]\n"
    "    mov   r4, r8\n"
    "    str   r4, [r3, #8]\n"
    "    mov   r4, r9\n"
    "    str   r4, [r3, #12]\n"
    "    mov   r4, r10\n"
    "    str   r4, [r3, #16]\n"
    "    mov   r4, r11\n"
    "    str   r4, [r3, #20]\n"
    "    mov   r4, r12\n"
    "    str   r4, [r3, #24]\n"
    "    mov   r4, lr\n"
    "    str   r4, [r3, #28]\n"
    "    add   sp, #20\n"
    "    pop   {r4-r7}\n"
    "    mov   r8, r4\n"
    "    mov   r9, r5\n"
    "    mov   r10, r6\n"
    "    mov   r11, r7\n"
    "    pop   {r4-r7, pc}\n"
    "    .size   pz_q8_conv_dot8_m0, . - pz_q8_conv_dot8_m0\n"
    "    .popsection\n");
#define PZ_CONV_DOT8 pz_q8_conv_dot8_m0
#else
/* A[0..8) = the 8 lane sums of one group over the runs (portable version of the assembly below). */
static void dot8_c(const uint8_t *x, const uint8_t *w, const pz_conv_runs_t *r, uint32_t *A) {
    for (uint32_t i = 0; i < 8; i++) A[i] = 0;
    for (uint32_t run = 0; run < r->runs; run++) {
        for (uint32_t k = 0; k < r->run_bytes; k++, w += 8) {
            int32_t v = x[k];
            for (uint32_t h = 0; h < 8; h += 4) {
                uint32_t W = (uint32_t)w[h] | (uint32_t)w[h + 1] << 8 | (uint32_t)w[h + 2] << 16 |
                             (uint32_t)w[h + 3] << 24;
                int32_t lo = (int32_t)((W & 0xFFFFu) ^ 0x8000u) - 0x8000;  /* sxth */
                int32_t hi = (int32_t)((W >> 16) ^ 0x8000u) - 0x8000;      /* asr 16 */
                A[h + 0] += (uint32_t)(lo * v);
                A[h + 1] += (uint32_t)((lo >> 8) * v);
                A[h + 2] += (uint32_t)(hi * v);
                A[h + 3] += (uint32_t)((hi >> 8) * v);
            }
        }
        x += r->run_bytes + r->skip;
    }
}

#define PZ_CONV_DOT8 dot8_c
#endif

/* Copy the window of output (oy, ox) into dst (k_h * k_w * C bytes), padding cells = pad. Plain loops, and GCC
 * told not to turn them into memcpy/memset calls: the kernels link without a C library (kernel_harness.py). */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static void gather(const pz_q8_conv_t *l, const uint8_t *xu, uint32_t oy, uint32_t ox, uint8_t *dst) {
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c;
    for (uint32_t dy = 0; dy < s->k_h; dy++) {
        int32_t iy = (int32_t)(oy * s->stride_h + dy) - s->pad_top;
        for (uint32_t dx = 0; dx < s->k_w; dx++, dst += C) {
            int32_t ix = (int32_t)(ox * s->stride_w + dx) - s->pad_left;
            if (iy < 0 || ix < 0 || iy >= s->in_h || ix >= s->in_w) {
                for (uint32_t c = 0; c < C; c++) dst[c] = l->pad;
            } else {
                const uint8_t *src = xu + ((uint32_t)iy * s->in_w + (uint32_t)ix) * C;
                for (uint32_t c = 0; c < C; c++) dst[c] = src[c];
            }
        }
    }
}

/* The window bytes [n4, n_win) of a gathered window, added to the lanes as exact products: even lanes get
 * (w + 128) * x - 128 * x so that S_even = A_even - 256 * A_odd - 128 * X still holds with X over [0, n4) only. */
static void tail_lanes(const uint8_t *x, const uint8_t *w, uint32_t n4, uint32_t n_win, uint32_t *A) {
    for (uint32_t k = n4; k < n_win; k++) {
        for (uint32_t i = 0; i < 8; i += 2) {
            int32_t w_even = (int32_t)w[k * 8u + i] - 128, w_odd = (int32_t)(int8_t)w[k * 8u + i + 1];
            A[i] += (uint32_t)((w_even + 256 * w_odd) * (int32_t)x[k]);  /* cancels the -256 * A_odd term */
            A[i + 1] += (uint32_t)(w_odd * (int32_t)x[k]);
        }
    }
}

void pz_conv2d_q8_m0(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y) {
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c, K = s->out_c, n_win = (uint32_t)s->k_h * s->k_w * C;
    const uint32_t row = (uint32_t)s->in_w * C, run = (uint32_t)s->k_w * C;
    const int32_t *bias = l->bias, *mult = l->multiplier;
    const int8_t *shift = l->shift;
    const int32_t out_zp = l->out_zp, act_min = l->act_min, act_max = l->act_max;
    const uint32_t out_xor = l->out_xor;
    const uint8_t *w0 = l->w;
    uint8_t *scratch = l->scratch;
    /* windows read in place when each run is a whole number of 4-byte blocks (x is read bytewise: any alignment) */
    const int direct = (run & 3u) == 0;
    const uint32_t n4 = n_win & ~3u;  /* a gathered window: the assembly part */
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        int32_t iy0 = (int32_t)(oy * s->stride_h) - s->pad_top;
        for (uint32_t ox = 0; ox < s->out_w; ox++) {
            int32_t ix0 = (int32_t)(ox * s->stride_w) - s->pad_left;
            const uint8_t *x;
            pz_conv_runs_t r;
            uint32_t tail;  /* window bytes left to the C loop */
            if (direct && iy0 >= 0 && ix0 >= 0 && iy0 + s->k_h <= s->in_h && ix0 + s->k_w <= s->in_w) {
                x = xu + ((uint32_t)iy0 * s->in_w + (uint32_t)ix0) * C;
                r.run_bytes = run;
                r.skip = row - run;
                r.runs = s->k_h;
                tail = 0;
            } else {
                gather(l, xu, oy, ox, scratch);
                x = scratch;
                r.run_bytes = n4;
                r.skip = 0;
                r.runs = 1;
                tail = n_win - n4;
            }
            uint32_t X = 0;
            for (uint32_t i = 0; i < r.runs; i++) X += sum_bytes(x + i * row, r.run_bytes);
            uint32_t X128 = X * 128u;
            const uint8_t *w = w0;
            for (uint32_t j0 = 0; j0 < K; j0 += 8, w += n_win * 8u) {
                uint32_t A[8];
                if (r.run_bytes) {
                    PZ_CONV_DOT8(x, w, &r, A);
                } else {
                    for (uint32_t i = 0; i < 8; i++) A[i] = 0;
                }
                if (tail) tail_lanes(x, w, n4, n_win, A);
                uint32_t n = K - j0 < 8u ? K - j0 : 8u;
                for (uint32_t i = 0; i < n; i += 2) {  /* lanes in pairs: S_even needs A_odd */
                    const uint32_t j = j0 + i;
                    int32_t acc = (int32_t)((uint32_t)bias[j] + A[i] - 256u * A[i + 1] - X128);
                    y[j] = pz_q8_out_i(acc, mult[j], shift[j], out_zp, act_min, act_max, out_xor);
                    if (i + 1 < n) {
                        acc = (int32_t)((uint32_t)bias[j + 1] + A[i + 1]);
                        y[j + 1] = pz_q8_out_i(acc, mult[j + 1], shift[j + 1], out_zp, act_min, act_max, out_xor);
                    }
                }
            }
            y += K;
        }
    }
}

/* One depthwise output pixel, all channels, window fully inside the input; off[t] = byte offset of tap t. */
static void dw_pixel(const pz_q8_conv_t *l, const uint8_t *x, const uint32_t *off, uint32_t taps, uint8_t *y) {
    const uint32_t C = l->s.in_c;
    const int8_t *w = (const int8_t *)l->w;
    const int32_t out_zp = l->out_zp, act_min = l->act_min, act_max = l->act_max;
    const uint32_t out_xor = l->out_xor;
    if (taps == 9) {
        const uint32_t o0 = off[0], o1 = off[1], o2 = off[2], o3 = off[3], o4 = off[4], o5 = off[5], o6 = off[6],
                       o7 = off[7], o8 = off[8];
        for (uint32_t c = 0; c < C; c++, x++, w++) {
            int32_t acc = l->bias[c];
            acc += x[o0] * w[0];
            acc += x[o1] * w[C];
            acc += x[o2] * w[2 * C];
            acc += x[o3] * w[3 * C];
            acc += x[o4] * w[4 * C];
            acc += x[o5] * w[5 * C];
            acc += x[o6] * w[6 * C];
            acc += x[o7] * w[7 * C];
            acc += x[o8] * w[8 * C];
            y[c] = pz_q8_out_i(acc, l->multiplier[c], l->shift[c], out_zp, act_min, act_max, out_xor);
        }
        return;
    }
    for (uint32_t c = 0; c < C; c++) {
        int32_t acc = l->bias[c];
        for (uint32_t t = 0; t < taps; t++) acc += x[off[t] + c] * w[t * C + c];
        y[c] = pz_q8_out_i(acc, l->multiplier[c], l->shift[c], out_zp, act_min, act_max, out_xor);
    }
}

#define PZ_DW_MAX_TAPS 64u

void pz_dwconv2d_q8_m0(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y) {
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c, taps = (uint32_t)s->k_h * s->k_w;
    if (taps > PZ_DW_MAX_TAPS) {
        pz_dwconv2d_q8_ref(l, xu, y);
        return;
    }
    uint32_t off[PZ_DW_MAX_TAPS];
    for (uint32_t dy = 0; dy < s->k_h; dy++) {
        for (uint32_t dx = 0; dx < s->k_w; dx++) off[dy * s->k_w + dx] = (dy * s->in_w + dx) * C;
    }
    const int8_t *w = (const int8_t *)l->w;
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        int32_t iy0 = (int32_t)(oy * s->stride_h) - s->pad_top;
        for (uint32_t ox = 0; ox < s->out_w; ox++, y += C) {
            int32_t ix0 = (int32_t)(ox * s->stride_w) - s->pad_left;
            if (iy0 >= 0 && ix0 >= 0 && iy0 + s->k_h <= s->in_h && ix0 + s->k_w <= s->in_w) {
                dw_pixel(l, xu + ((uint32_t)iy0 * s->in_w + (uint32_t)ix0) * C, off, taps, y);
                continue;
            }
            for (uint32_t c = 0; c < C; c++) {  /* border: padding cells read as `pad` */
                int32_t acc = l->bias[c];
                for (uint32_t dy = 0; dy < s->k_h; dy++) {
                    int32_t iy = iy0 + (int32_t)dy;
                    for (uint32_t dx = 0; dx < s->k_w; dx++) {
                        int32_t ix = ix0 + (int32_t)dx;
                        uint32_t v = (iy < 0 || ix < 0 || iy >= s->in_h || ix >= s->in_w)
                                         ? l->pad : xu[((uint32_t)iy * s->in_w + (uint32_t)ix) * C + c];
                        acc += (int32_t)v * w[(dy * s->k_w + dx) * C + c];
                    }
                }
                y[c] = pz_q8_out_i(acc, l->multiplier[c], l->shift[c], l->out_zp, l->act_min, l->act_max,
                                   l->out_xor);
            }
        }
    }
}
