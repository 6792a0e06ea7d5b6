/* Adapters from a layer-table entry to the conv and pooling kernels of conv.h (kinds 13-22 of layers.h), and the
 * planned layers (conv_layers.h): int8 conv, depthwise and pool layers split between the cores by output rows or
 * output channels (static halves, or shares taken from pz_share), each core running the unchanged kernel on its
 * part, and/or weights staged from flash into SRAM first (overlapping core 1's work when shared); float conv and
 * depthwise layers split by output rows. */
#include <stddef.h>

#include "conv_layers.h"
#include "multicore.h"

/* A float conv or depthwise layer split by output rows (pz_f32_conv_plan_t): each core runs the float kernel on its
 * rows' sub-layer, as the int8 row split does. */
typedef struct {
    const pz_layer *l;
    const float *x;
    float *y;
    uint32_t depthwise;
} f32_work;

static void f32_part(const void *arg, uint32_t core) {
    const f32_work *w = arg;
    const pz_f32_conv_plan_t *p = w->l->aux;
    const uint32_t r0 = core ? p->mid : 0u, r1 = core ? p->c.s.out_h : p->mid;
    pz_conv_shape_t s = p->c.s;
    const uint32_t first = pz_conv_rows(&s, r0, r1);
    const float *x = w->x + first * s.in_w * s.in_c;
    float *y = w->y + r0 * s.out_w * s.out_c;
    if (w->depthwise) pz_dwconv2d_f32(&s, x, w->l->w, w->l->b, y, p->c.lo, p->c.hi);
    else pz_conv2d_f32(&s, x, w->l->w, w->l->b, y, p->c.lo, p->c.hi);
}

static void f32_planned(const pz_layer *l, const void *x, void *y, uint32_t depthwise) {
    const f32_work w = {l, x, y, depthwise};
#if PZ_CORES == 2
    pz_parallel(f32_part, &w);
#else
    f32_part(&w, 0);   /* a split table in a one-core build (not generated) */
    f32_part(&w, 1);
#endif
}

void pz_run_conv2d_f32_plan(const pz_layer *l, const void *x, void *y) { f32_planned(l, x, y, 0); }
void pz_run_dwconv2d_f32_plan(const pz_layer *l, const void *x, void *y) { f32_planned(l, x, y, 1); }

void pz_run_conv2d_f32(const pz_layer *l, const void *x, void *y) {
    const pz_f32_conv_t *c = l->aux;
    pz_conv2d_f32(&c->s, x, l->w, l->b, y, c->lo, c->hi);
}

void pz_run_dwconv2d_f32(const pz_layer *l, const void *x, void *y) {
    const pz_f32_conv_t *c = l->aux;
    pz_dwconv2d_f32(&c->s, x, l->w, l->b, y, c->lo, c->hi);
}

void pz_run_maxpool_f32(const pz_layer *l, const void *x, void *y) { pz_maxpool2d_f32(l->aux, x, y); }
void pz_run_avgpool_f32(const pz_layer *l, const void *x, void *y) { pz_avgpool2d_f32(l->aux, x, y); }

void pz_run_gavgpool_f32(const pz_layer *l, const void *x, void *y) {
    const pz_conv_shape_t *s = l->aux;
    pz_gavgpool_f32(x, y, (uint32_t)s->in_h * s->in_w, s->in_c);
}

void pz_run_q8_conv2d(const pz_layer *l, const void *x, void *y) { pz_conv2d_q8_m0(l->aux, x, y); }
void pz_run_q8_dwconv2d(const pz_layer *l, const void *x, void *y) { pz_dwconv2d_q8_m0(l->aux, x, y); }

static void q8_maxpool(const pz_q8_conv_t *c, const uint8_t *x, uint8_t *y) {
    pz_maxpool2d_q8_m0(&c->s, x, y, c->out_xor);
}

static void q8_avgpool(const pz_q8_conv_t *c, const uint8_t *x, uint8_t *y) {
    pz_avgpool2d_q8(&c->s, x, y, c->out_xor);
}

void pz_run_q8_maxpool(const pz_layer *l, const void *x, void *y) { q8_maxpool(l->aux, x, y); }
void pz_run_q8_avgpool(const pz_layer *l, const void *x, void *y) { q8_avgpool(l->aux, x, y); }

void pz_run_q8_gavgpool(const pz_layer *l, const void *x, void *y) {
    const pz_q8_conv_t *c = l->aux;
    pz_gavgpool_q8(x, y, (uint32_t)c->s.in_h * c->s.in_w, c->s.in_c, c->out_xor);
}

/* -- planned layers --------------------------------------------------------------------------------------------- */
uint32_t pz_conv_rows(pz_conv_shape_t *s, uint32_t r0, uint32_t r1) {
    const int32_t top = (int32_t)(r0 * s->stride_h) - s->pad_top;            /* first row read (may be padding) */
    int32_t end = (int32_t)((r1 - 1u) * s->stride_h) - s->pad_top + s->k_h;  /* one past the last row read */
    if (end > (int32_t)s->in_h) end = s->in_h;
    const uint32_t first = top < 0 ? 0u : (uint32_t)top;
    s->pad_top = (uint8_t)(top < 0 ? -top : 0);
    s->in_h = (uint16_t)((uint32_t)end - first);
    s->out_h = (uint16_t)(r1 - r0);
    return first;
}

typedef uint32_t pz_word __attribute__((may_alias));   /* a word of a byte buffer */

typedef void (*q8_conv_kernel)(const pz_q8_conv_t *c, const uint8_t *x, uint8_t *y);

typedef struct {
    const pz_q8_conv_plan_t *p;
    q8_conv_kernel kernel;
    const uint8_t *w;     /* the weights of this pass's first channel: in c.w or the staged copy */
    const uint32_t *src;  /* a shared staged pass: its weights in flash, copied into p->stage by core 0; else NULL */
    uint32_t words;       /* words to copy from src */
    const uint8_t *x;
    uint8_t *y;
    uint32_t c0, n;       /* this pass: output channels [c0, c0 + n) */
} q8_work;

/* Output channels [a, b) at output rows [r0, r1) of the pass, on core `core`: the layer's struct copied to this
 * core's stack and narrowed, this core's scratch; outputs straight into y when the share has every channel, else
 * into its block of `part`, then scattered into y. `s` is the layer's geometry as the rows are counted (a pointwise
 * conv's pixels may be counted as rows of one pixel: pz_conv_rows is the same, the kernel's bytes too). */
static void q8_run(const q8_work *w, const pz_conv_shape_t *s, uint32_t core, uint32_t a, uint32_t b, uint32_t r0,
                   uint32_t r1) {
    const pz_q8_conv_plan_t *p = w->p;
    const uint32_t K = s->out_c, ow = s->out_w;
    pz_q8_conv_t sub = p->c;
    sub.s = *s;
    sub.s.out_c = (uint16_t)(b - a);
    sub.w = w->w + (a - w->c0) / 8u * p->group_bytes;
    if (p->group_bytes) {   /* conv2d, depthwise: per output channel tables from channel a on */
        sub.multiplier += a;
        sub.shift += a;
        if (sub.rq) sub.rq += PZ_Q8_RQ_WORDS * a;
    }
    if (core) sub.scratch = p->scratch1;
    const uint32_t first = pz_conv_rows(&sub.s, r0, r1);
    const uint8_t *x = w->x + first * s->in_w * s->in_c;
    const uint32_t n = b - a;
    if (n != K && w->kernel == pz_dwconv2d_q8_m0) {
        /* depthwise channels [a, b) read input channels [a, b), interleaved in x at pixel stride C: gathered into
         * n-channel pixels after this core's kernel scratch (the planner reserved in_h x in_w x n bytes there) */
        const uint32_t C = s->in_c, pixels = (uint32_t)sub.s.in_h * s->in_w;
        uint8_t *g = sub.scratch + pz_conv_q8_scratch_bytes(&p->c.s, 1);
        const uint8_t *src = x + a;
        if (((C | a | n) & 3u) == 0) {   /* whole words: x, the scratch and every offset 4-byte aligned */
            for (uint32_t px = 0; px < pixels; px++, src += C) {
                for (uint32_t j = 0; j < n; j += 4) {
                    *(pz_word *)(void *)(g + px * n + j) = *(const pz_word *)(const void *)(src + j);
                }
            }
        } else {
            for (uint32_t px = 0; px < pixels; px++, src += C) {
                for (uint32_t j = 0; j < n; j++) g[px * n + j] = src[j];
            }
        }
        sub.s.in_c = (uint16_t)n;
        x = g;
    }
    if (n == K) {
        w->kernel(&sub, x, w->y + r0 * ow * K);
        return;
    }
    uint8_t *block = p->part + (a - w->c0) * s->out_h * ow;   /* this share's (out_h, out_w, n) block */
    w->kernel(&sub, x, block + r0 * ow * n);
    for (uint32_t px = r0 * ow; px < r1 * ow; px++) {
        const uint8_t *src = block + px * n;
        uint8_t *dst = w->y + px * K + a;
        for (uint32_t j = 0; j < n; j++) dst[j] = src[j];
    }
}

/* One core's half of a static split: its rows (row split) or the lower / upper groups of channels. */
static void q8_part(const void *arg, uint32_t core) {
    const q8_work *w = arg;
    const pz_q8_conv_plan_t *p = w->p;
    uint32_t a = w->c0, b = w->c0 + w->n, r0 = 0, r1 = p->c.s.out_h;
    if (p->by_channels) {
        const uint32_t half = ((w->n + 15u) / 16u) * 8u;   /* core 0: the lower ceil(groups / 2) groups */
        if (core) a += half; else b = a + half < b ? a + half : b;
        if (a >= b) return;
    } else if (p->mid) {
        if (core) r0 = p->mid; else r1 = p->mid;
    }
    q8_run(w, &p->c.s, core, a, b, r0, r1);
}

/* Flash to SRAM, four words per step: one XIP line fill per 8 bytes, each byte read once. On the M0+ one LDM and
 * one STM of four words: 13 cycles per 16 bytes beside the two 56-cycle line fills, against 22 for the four LDR and
 * four STR GCC makes of the C loop (0.56 cycles per byte, ~100 k cycles over pd_mobilenet's staged weights). */
__attribute__((noinline))   /* one function, its stores told apart by PC (tests/test_firmware_dual_balance.py) */
static void stage_copy(uint32_t *dst, const uint32_t *src, uint32_t words) {
#if defined(__thumb__) && defined(__ARM_ARCH_6M__)
    uint32_t blocks = words / 4u;
    if (blocks) {
        __asm__ volatile(".syntax unified\n"   /* GCC hands inline assembly over in divided syntax */
                         "1:\n"
                         "    ldm   %[s]!, {r2, r3, r4, r5}\n"
                         "    stm   %[d]!, {r2, r3, r4, r5}\n"
                         "    subs  %[n], #1\n"
                         "    bne   1b\n"
                         : [s] "+l"(src), [d] "+l"(dst), [n] "+l"(blocks)
                         :
                         : "r2", "r3", "r4", "r5", "cc", "memory");
    }
    words &= 3u;
#else
    for (; words >= 4u; words -= 4u, dst += 4, src += 4) {
        uint32_t a = src[0], b = src[1], c = src[2], d = src[3];
        dst[0] = a;
        dst[1] = b;
        dst[2] = c;
        dst[3] = d;
    }
#endif
    for (; words; words--) *dst++ = *src++;
}

#if PZ_CORES == 2
/* The geometry a shared split counts units in: a pointwise conv (1x1, stride 1, no padding) as out_h * out_w rows
 * of one pixel, so that its shares are pixels; any other layer as it is (its rows). */
static pz_conv_shape_t share_shape(const pz_conv_shape_t *s) {
    pz_conv_shape_t t = *s;
    if (t.k_h == 1 && t.k_w == 1 && t.stride_h == 1 && t.stride_w == 1 && t.pad_top == 0 && t.pad_left == 0 &&
        t.in_h == t.out_h && t.in_w == t.out_w) {
        t.in_h = t.out_h = (uint16_t)(t.out_h * t.out_w);
        t.in_w = t.out_w = 1;
    }
    return t;
}

/* Both cores: take shares of the pass until none is left (pz_share_take). A staged pass first has core 0 copy its
 * weights group by group (one group: group_bytes, a multiple of 32), raising pz_share.ready after each when the
 * shares are groups of channels, while core 1 already runs the groups that have arrived (row shares wait for the
 * whole copy). */
static void q8_shared_part(const void *arg, uint32_t core) {
    const q8_work *w = arg;
    const pz_q8_conv_plan_t *p = w->p;
    if (core == 0 && w->src != NULL) {
        const uint32_t group_words = p->group_bytes / 4u;
        uint32_t *dst = p->stage;
        const uint32_t *src = w->src;
        uint32_t left = w->words;
        for (uint32_t g = 1; left; g++) {
            const uint32_t n = left < group_words ? left : group_words;
            stage_copy(dst, src, n);
            dst += n;
            src += n;
            left -= n;
            __asm__ volatile("" ::: "memory");   /* the group's words are stored before it is announced */
            if (p->by_channels) pz_share.ready = g;
        }
        __asm__ volatile("" ::: "memory");
        pz_share.ready = pz_share.units;   /* a row share needs every group */
    }
    const pz_conv_shape_t s = p->by_channels ? p->c.s : share_shape(&p->c.s);
    uint32_t first, n;
    while ((n = pz_share_take(&first)) != 0u) {
        if (p->by_channels) {
            const uint32_t a = w->c0 + 8u * first, b = a + 8u * n;
            q8_run(w, &s, core, a, b < w->c0 + w->n ? b : w->c0 + w->n, 0, s.out_h);
        } else {
            q8_run(w, &s, core, w->c0, w->c0 + w->n, first, first + n);
        }
    }
}
#endif

static void q8_planned(const pz_layer *l, q8_conv_kernel kernel, const void *x, void *y) {
    const pz_q8_conv_plan_t *p = l->aux;
    const uint32_t K = p->c.s.out_c;
    for (uint32_t c0 = 0; c0 < K; c0 += p->pass_c) {
        const uint32_t n = K - c0 < p->pass_c ? K - c0 : p->pass_c;
        const uint32_t skip = c0 / 8u * p->group_bytes;   /* bytes of c.w before this pass's groups */
        q8_work w = {p, kernel, p->c.w + skip, NULL, 0, x, y, c0, n};
        if (p->stage != NULL) {
            const uint32_t words = p->stage_words - skip / 4u;
            const uint32_t pass_words = (p->pass_c + 7u) / 8u * p->group_bytes / 4u;
            w.src = (const uint32_t *)(const void *)w.w;
            w.words = pass_words && pass_words < words ? pass_words : words;
            w.w = (const uint8_t *)p->stage;
        }
#if PZ_CORES == 2
        if (p->shared) {
            const uint32_t units = p->by_channels ? (n + 7u) / 8u : share_shape(&p->c.s).out_h;
            pz_share.next = 0;
            pz_share.units = units;
            pz_share.ready = w.src != NULL ? 0u : units;   /* a staged pass: none until core 0 has copied them */
            pz_share.min_take = p->shared;
            pz_parallel(q8_shared_part, &w);
            continue;
        }
#endif
        if (w.src != NULL) stage_copy(p->stage, w.src, w.words);
#if PZ_CORES == 2
        if (p->mid || p->by_channels) {
            pz_parallel(q8_part, &w);
            continue;
        }
#endif
        q8_part(&w, 0);
        if (p->mid || p->by_channels) q8_part(&w, 1);   /* a split table in a one-core build (not generated) */
    }
}

void pz_run_q8_conv2d_plan(const pz_layer *l, const void *x, void *y) { q8_planned(l, pz_conv2d_q8_m0, x, y); }
void pz_run_q8_dwconv2d_plan(const pz_layer *l, const void *x, void *y) { q8_planned(l, pz_dwconv2d_q8_m0, x, y); }
void pz_run_q8_maxpool_plan(const pz_layer *l, const void *x, void *y) { q8_planned(l, q8_maxpool, x, y); }
void pz_run_q8_avgpool_plan(const pz_layer *l, const void *x, void *y) { q8_planned(l, q8_avgpool, x, y); }
