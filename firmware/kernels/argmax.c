#include "kernels.h"

int32_t pz_argmax_f32(const float *y, uint32_t n) {
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (y[i] > y[best]) {
            best = (int32_t)i;
        }
    }
    return best;
}

int32_t pz_argmax_f64(const double *y, uint32_t n) {
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (y[i] > y[best]) {
            best = (int32_t)i;
        }
    }
    return best;
}
