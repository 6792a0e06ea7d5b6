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

/* ... then int8 (compress/quantize.py quantize_input): t = x * inv_scale in float32, NaN and |t| > 1024 clamped to
 * -+1024, q = t rounded half away from zero + zero_point clamped to int8, stored offset-binary (q + 128) as every
 * int8 kernel reads its input. The rounding is exact, so it is done on t's bits with integers (a soft-float
 * conversion and compare chain costs several hundred cycles per value on the M0+). */
static int32_t round_half_away_1024(float t) {
    union {
        float f;
        uint32_t u;
    } v = {t};
    uint32_t e = (v.u >> 23) & 0xFFu;                  /* biased exponent: |t| = m * 2^(e - 150) */
    uint32_t m = (v.u & 0x7FFFFFu) | 0x800000u;
    int32_t mag;
    if (e == 0xFFu && (v.u & 0x7FFFFFu)) return -1024;  /* NaN: clamped to -1024, as quantize_input does */
    if (e >= 127u + 10u) {
        mag = 1024;                                     /* |t| >= 1024, infinities */
    } else if (e < 126u) {
        mag = 0;                                        /* |t| < 0.5, zeros and subnormals */
    } else {
        uint32_t shift = 150u - e;                      /* 14..24: add half an output unit, drop the fraction */
        mag = (int32_t)((m + (1u << (shift - 1u))) >> shift);
    }
    return (v.u >> 31) ? -mag : mag;
}

void pz_input_f32_q8(const float *raw, const float *mean, const float *mult, float inv_scale, int32_t zero_point,
                     uint8_t *y, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        float x = (raw[i] - mean[i]) * mult[i];
        int32_t q = round_half_away_1024(x * inv_scale) + zero_point;
        if (q < -128) q = -128;
        if (q > 127) q = 127;
        y[i] = (uint8_t)(q + 128);
    }
}
