/* Element-wise activations, as zoo/host.py defines them: relu = max(x, 0), relu6 = min(max(x, 0), 6),
 * sigmoid = 1 / (1 + exp(-x)), tanh. */
#include <math.h>

#include "kernels.h"

void pz_relu_f32(const float *x, float *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
}

void pz_relu_f64(const double *x, double *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = x[i] > 0.0 ? x[i] : 0.0;
    }
}

void pz_relu6_f32(const float *x, float *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = x[i] > 0.0f ? (x[i] < 6.0f ? x[i] : 6.0f) : 0.0f;
    }
}

void pz_relu6_f64(const double *x, double *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = x[i] > 0.0 ? (x[i] < 6.0 ? x[i] : 6.0) : 0.0;
    }
}

void pz_sigmoid_f32(const float *x, float *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = 1.0f / (1.0f + expf(-x[i]));
    }
}

void pz_sigmoid_f64(const double *x, double *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = 1.0 / (1.0 + exp(-x[i]));
    }
}

void pz_tanh_f32(const float *x, float *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = tanhf(x[i]);
    }
}

void pz_tanh_f64(const double *x, double *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = tanh(x[i]);
    }
}
