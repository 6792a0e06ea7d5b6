/* Adapters from a layer-table entry to the conv and pooling kernels of conv.h (kinds 13-22 of layers.h), and the
 * planned int8 layers (conv_layers.h): split between the cores by output rows, each core running the unchanged
 * kernel on its rows, and/or weights staged from flash into SRAM first. */
#include <stddef.h>

#include "conv_layers.h"
#include "multicore.h"

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

typedef void (*q8_conv_kernel)(const pz_q8_conv_t *c, const uint8_t *x, uint8_t *y);

typedef struct {
    const pz_q8_conv_plan_t *p;
    q8_conv_kernel kernel;
    const uint8_t *w;   /* the weights of this pass's first channel: in c.w or the staged copy */
    const uint8_t *x;
    uint8_t *y;
    uint32_t c0, n;     /* this pass: output channels [c0, c0 + n) */
} q8_work;

/* One core's share of a pass: its rows (row split) or channels (channel split), the layer's struct copied to this
 * core's stack and narrowed, this core's scratch; outputs straight into y when the share has every channel, else
 * into its block of `part`, then scattered into y. */
static void q8_part(const void *arg, uint32_t core) {
    const q8_work *w = arg;
    const pz_q8_conv_plan_t *p = w->p;
    const uint32_t K = p->c.s.out_c, ow = p->c.s.out_w;
    uint32_t a = w->c0, b = w->c0 + w->n, r0 = 0, r1 = p->c.s.out_h;
    if (p->by_channels) {
        const uint32_t half = ((w->n + 15u) / 16u) * 8u;   /* core 0: the lower ceil(groups / 2) groups */
        if (core) a += half; else b = a + half < b ? a + half : b;
        if (a >= b) return;
    } else if (p->mid) {
        if (core) r0 = p->mid; else r1 = p->mid;
    }
    pz_q8_conv_t sub = p->c;
    sub.s.out_c = (uint16_t)(b - a);
    sub.w = w->w + (a - w->c0) / 8u * p->group_bytes;
    if (p->group_bytes) {   /* conv2d: per output channel tables from channel a on */
        sub.multiplier += a;
        sub.shift += a;
        if (sub.rq) sub.rq += PZ_Q8_RQ_WORDS * a;
    }
    if (core) sub.scratch = p->scratch1;
    const uint32_t first = pz_conv_rows(&sub.s, r0, r1);
    const uint8_t *x = w->x + first * p->c.s.in_w * p->c.s.in_c;
    const uint32_t n = b - a;
    if (n == K) {
        w->kernel(&sub, x, w->y + r0 * ow * K);
        return;
    }
    uint8_t *block = p->part + (a - w->c0) * p->c.s.out_h * ow;   /* this share's (out_h, out_w, n) block */
    w->kernel(&sub, x, block + r0 * ow * n);
    for (uint32_t px = r0 * ow; px < r1 * ow; px++) {
        const uint8_t *src = block + px * n;
        uint8_t *dst = w->y + px * K + a;
        for (uint32_t j = 0; j < n; j++) dst[j] = src[j];
    }
}

/* Flash to SRAM, four words per step: one XIP line fill per 8 bytes, each byte read once. */
static void stage_copy(uint32_t *dst, const uint32_t *src, uint32_t words) {
    for (; words >= 4u; words -= 4u, dst += 4, src += 4) {
        uint32_t a = src[0], b = src[1], c = src[2], d = src[3];
        dst[0] = a;
        dst[1] = b;
        dst[2] = c;
        dst[3] = d;
    }
    for (; words; words--) *dst++ = *src++;
}

static void q8_planned(const pz_layer *l, q8_conv_kernel kernel, const void *x, void *y) {
    const pz_q8_conv_plan_t *p = l->aux;
    const uint32_t K = p->c.s.out_c;
    for (uint32_t c0 = 0; c0 < K; c0 += p->pass_c) {
        const uint32_t n = K - c0 < p->pass_c ? K - c0 : p->pass_c;
        const uint32_t skip = c0 / 8u * p->group_bytes;   /* bytes of c.w before this pass's groups */
        q8_work w = {p, kernel, p->c.w + skip, x, y, c0, n};
        if (p->stage != NULL) {
            const uint32_t words = p->stage_words - skip / 4u;
            const uint32_t pass_words = (p->pass_c + 7u) / 8u * p->group_bytes / 4u;
            stage_copy(p->stage, (const uint32_t *)(const void *)w.w,
                       pass_words && pass_words < words ? pass_words : words);
            w.w = (const uint8_t *)p->stage;
        }
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
