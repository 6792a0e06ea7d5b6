/* Dense layer, float32. The loop walks w row by row, i.e. in storage order, so weights streamed from XIP flash are
 * read sequentially (each 8-byte cache line is used whole). An input that is exactly zero (most MNIST pixels, every
 * ReLU-clipped unit) adds nothing and its row is skipped: x * w is +-0 for finite w, and y[j] + 0 == y[j]. */
#include "kernels.h"

void pz_dense_f32(const float *x, const float *w, const float *b, float *y, uint32_t n_in, uint32_t n_out) {
    for (uint32_t j = 0; j < n_out; j++) {
        y[j] = b[j];
    }
    for (uint32_t i = 0; i < n_in; i++) {
        const float xi = x[i];
        const float *row = w + (uint32_t)i * n_out;
        if (xi == 0.0f) {
            continue;
        }
        for (uint32_t j = 0; j < n_out; j++) {
            y[j] += xi * row[j];
        }
    }
}
