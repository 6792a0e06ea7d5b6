/* Adapters from a layer-table entry to the plain float kernels of kernels.h. */
#include "layers.h"

#include "kernels.h"

void pz_run_input_u8_f32(const pz_layer *l, const void *x, void *y) {
    pz_input_u8_f32(x, *(const float *)l->aux, y, l->out);
}

void pz_run_input_u8_f64(const pz_layer *l, const void *x, void *y) {
    pz_input_u8_f64(x, *(const double *)l->aux, y, l->out);
}

void pz_run_input_f32_f32(const pz_layer *l, const void *x, void *y) {
    pz_input_f32_f32(x, l->w, l->b, y, l->out);
}

void pz_run_input_f32_f64(const pz_layer *l, const void *x, void *y) {
    pz_input_f32_f64(x, l->w, l->b, y, l->out);
}

void pz_run_input_f32_q8(const pz_layer *l, const void *x, void *y) {
    const pz_input_q8_t *q = l->aux;
    pz_input_f32_q8(x, l->w, l->b, q->inv_scale, q->zero_point, y, l->out);
}

void pz_run_dense_f32(const pz_layer *l, const void *x, void *y) {
    pz_dense_f32(x, l->w, l->b, y, l->in, l->out);
}

void pz_run_dense_f64(const pz_layer *l, const void *x, void *y) {
    pz_dense_f64(x, l->w, l->b, y, l->in, l->out);
}

void pz_run_relu_f32(const pz_layer *l, const void *x, void *y) { pz_relu_f32(x, y, l->out); }
void pz_run_relu_f64(const pz_layer *l, const void *x, void *y) { pz_relu_f64(x, y, l->out); }
void pz_run_relu6_f32(const pz_layer *l, const void *x, void *y) { pz_relu6_f32(x, y, l->out); }
void pz_run_relu6_f64(const pz_layer *l, const void *x, void *y) { pz_relu6_f64(x, y, l->out); }
void pz_run_sigmoid_f32(const pz_layer *l, const void *x, void *y) { pz_sigmoid_f32(x, y, l->out); }
void pz_run_sigmoid_f64(const pz_layer *l, const void *x, void *y) { pz_sigmoid_f64(x, y, l->out); }
void pz_run_tanh_f32(const pz_layer *l, const void *x, void *y) { pz_tanh_f32(x, y, l->out); }
void pz_run_tanh_f64(const pz_layer *l, const void *x, void *y) { pz_tanh_f64(x, y, l->out); }

int32_t pz_predict_argmax_f32(const void *y, uint32_t n) { return pz_argmax_f32(y, n); }
int32_t pz_predict_argmax_f64(const void *y, uint32_t n) { return pz_argmax_f64(y, n); }
int32_t pz_predict_binary_f32(const void *y, uint32_t n) { (void)n; return *(const float *)y > 0.5f; }
int32_t pz_predict_binary_f64(const void *y, uint32_t n) { (void)n; return *(const double *)y > 0.5; }
