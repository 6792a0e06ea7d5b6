/* Plain, portable C kernels: the same source runs on the host (tests call it through ctypes and compare with
 * NumPy) and on the Cortex-M0+. No platform headers, no allocation; every buffer is passed in.
 * Weights are stored as the model directory holds them: w[in][out] row-major, y = x @ w + b. */
#ifndef PZ_KERNELS_H
#define PZ_KERNELS_H

#include <stdint.h>

/* Raw uint8 features -> model input: y[i] = (T)raw[i] * scale (zoo/host.py does the same in the model dtype). */
void pz_input_u8_f32(const uint8_t *raw, float scale, float *y, uint32_t n);
void pz_input_u8_f64(const uint8_t *raw, double scale, double *y, uint32_t n);

/* The user's raw float32 features -> model input: y[i] = (raw[i] - mean[i]) * mult[i] (zoo/normalize.py), and the
 * int8 input: offset-binary bytes of the quantized values (compress/quantize.py quantize_input). */
void pz_input_f32_f32(const float *raw, const float *mean, const float *mult, float *y, uint32_t n);
void pz_input_f32_f64(const float *raw, const float *mean, const float *mult, double *y, uint32_t n);
void pz_input_f32_q8(const float *raw, const float *mean, const float *mult, float inv_scale, int32_t zero_point,
                     uint8_t *y, uint32_t n);

/* Dense: y[j] = b[j] + sum_i x[i] * w[i * n_out + j]. x and y must not overlap. */
void pz_dense_f32(const float *x, const float *w, const float *b, float *y, uint32_t n_in, uint32_t n_out);
void pz_dense_f64(const double *x, const double *w, const double *b, double *y, uint32_t n_in, uint32_t n_out);

/* Element-wise activations; y may equal x. */
void pz_relu_f32(const float *x, float *y, uint32_t n);
void pz_relu_f64(const double *x, double *y, uint32_t n);
void pz_relu6_f32(const float *x, float *y, uint32_t n);
void pz_relu6_f64(const double *x, double *y, uint32_t n);
void pz_sigmoid_f32(const float *x, float *y, uint32_t n);
void pz_sigmoid_f64(const double *x, double *y, uint32_t n);
void pz_tanh_f32(const float *x, float *y, uint32_t n);
void pz_tanh_f64(const double *x, double *y, uint32_t n);

/* Index of the first maximum (NumPy argmax for finite inputs); n >= 1. */
int32_t pz_argmax_f32(const float *y, uint32_t n);
int32_t pz_argmax_f64(const double *y, uint32_t n);

#endif
