#include "kernels.h"

void pz_input_u8_f32(const uint8_t *raw, float scale, float *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = (float)raw[i] * scale;
    }
}

void pz_input_u8_f64(const uint8_t *raw, double scale, double *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = (double)raw[i] * scale;
    }
}
