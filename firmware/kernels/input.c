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

/* The user's raw float32 values (zoo/normalize.py): x = (raw - mean) * mult in float32, mult being 1/std per
 * feature ("standard") or the scale everywhere ("scale", mean 0: raw - 0 is raw exactly). */
void pz_input_f32_f32(const float *raw, const float *mean, const float *mult, float *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = (raw[i] - mean[i]) * mult[i];
    }
}

void pz_input_f32_f64(const float *raw, const float *mean, const float *mult, double *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = ((double)raw[i] - (double)mean[i]) * (double)mult[i];
    }
}

/* ... then int8 (compress/quantize.py quantize_input, the same float32 operations): t = x * inv_scale, NaN and
 * |t| > 1024 clamped, q = trunc(t +- 0.5) + zero_point clamped to int8, stored offset-binary (q + 128) as every
 * int8 kernel reads its input. */
#define PZ_INPUT_T_LIMIT 1024.0f

void pz_input_f32_q8(const float *raw, const float *mean, const float *mult, float inv_scale, int32_t zero_point,
                     uint8_t *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        float x = (raw[i] - mean[i]) * mult[i];
        float t = x * inv_scale;
        if (!(t > -PZ_INPUT_T_LIMIT)) t = -PZ_INPUT_T_LIMIT;
        if (!(t < PZ_INPUT_T_LIMIT)) t = PZ_INPUT_T_LIMIT;
        int32_t q = (int32_t)(t + (t >= 0.0f ? 0.5f : -0.5f)) + zero_point;
        if (q < -128) q = -128;
        if (q > 127) q = 127;
        y[i] = (uint8_t)(q + 128);
    }
}
