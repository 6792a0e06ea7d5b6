/* Dense layer, float64. The loop walks w row by row, i.e. in storage order, so weights streamed from XIP flash are
 * read sequentially (each 8-byte cache line is used whole). An input that is exactly zero (most MNIST pixels, every
 * ReLU-clipped unit) adds nothing and its row is skipped: x * w is +-0 for finite w, and y[j] + 0 == y[j].
 * Zero is tested on the bit pattern (+0 or -0): on a core without an FPU a double compare is a library call. */
#include <string.h>

#include "kernels.h"

static int is_zero(double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (bits << 1) == 0u;
}

void pz_dense_f64(const double *x, const double *w, const double *b, double *y, uint32_t n_in, uint32_t n_out) {
    for (uint32_t j = 0; j < n_out; j++) {
        y[j] = b[j];
    }
    for (uint32_t i = 0; i < n_in; i++) {
        const double xi = x[i];
        const double *row = w + (uint32_t)i * n_out;
        if (is_zero(xi)) {
            continue;
        }
        for (uint32_t j = 0; j < n_out; j++) {
            y[j] += xi * row[j];
        }
    }
}
