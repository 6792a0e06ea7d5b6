/* Adapters from a layer-table entry to the conv and pooling kernels of conv.h (kinds 13-22 of layers.h). */
#include "conv.h"
#include "layers.h"

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

void pz_run_q8_maxpool(const pz_layer *l, const void *x, void *y) {
    const pz_q8_conv_t *c = l->aux;
    pz_maxpool2d_q8_m0(&c->s, x, y, c->out_xor);
}

void pz_run_q8_avgpool(const pz_layer *l, const void *x, void *y) {
    const pz_q8_conv_t *c = l->aux;
    pz_avgpool2d_q8(&c->s, x, y, c->out_xor);
}

void pz_run_q8_gavgpool(const pz_layer *l, const void *x, void *y) {
    const pz_q8_conv_t *c = l->aux;
    pz_gavgpool_q8(x, y, (uint32_t)c->s.in_h * c->s.in_w, c->s.in_c, c->out_xor);
}
