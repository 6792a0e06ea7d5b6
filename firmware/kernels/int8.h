/* int8 kernels (compress stage): integer-only dense and sparse layers, bit-exact with compress/reference.py.
 *
 * One contract for every kernel (docs/COMPRESS.md):
 *   activations are offset-binary bytes xu = q + 128 (the first layer reads the raw pixels as they are);
 *   acc_j = bias_j + sum_k xu[k] * w[j][k]          (bias already folded: compress.layout.folded_bias)
 *   v_j   = round_half_up(acc_j * multiplier_j / 2^(31 + shift_j)) + out_zp     ("single rounding")
 *   y[j]  = (uint8_t)(int8_t)clamp(v_j, act_min, act_max) ^ out_xor
 * out_xor = 0x80 writes the next layer's offset-binary input; 0 writes plain int8 (the model output).
 * Only y[0 .. n_out) is written and only xu[0 .. n_in) is read. x and y must not overlap.
 * Zero skipping: an input byte xu[k] == 0 adds nothing to any acc_j, so pz_q8_dense_m0, pz_q8_sparse and
 * pz_q8_shared never read its weights. 0 is the offset-binary zero point of the first layer (raw pixel 0) and of
 * every layer after a ReLU (zero point -128), so those inputs are the ones skipped.
 *
 * Weight layouts (built by compress/layout.py):
 *   dense  (pz_q8_dense_ref, pz_q8_dense_m0): "interleave4", w = pack_dense(q.layers.<i>.w), 4-byte aligned
 *   sparse (pz_q8_sparse): "pairs" by input column, w = (int8 weight, uint8 output delta) entries, row_len =
 *     per-input-column entry counts
 *   shared (pz_q8_shared): "code3" by input column, w = gap << 3 | code bytes, row_len = per-input-column entry
 *     counts, codebook = 8 int8 values (codebook[0] = 0); multiplier[0] and shift[0] serve every output
 *   sparse and shared keep one int32 accumulator per output on the stack (4 and 8 bytes per output). */
#ifndef PZ_INT8_H
#define PZ_INT8_H

#include <stdint.h>

typedef struct {
    uint32_t n_in, n_out;
    const uint8_t *w;           /* interleave4 bytes (dense), (int8 weight, uint8 delta) pairs (sparse) or
                                   code3 bytes (shared) */
    const uint16_t *row_len;    /* sparse and shared: entries per input column; NULL for dense */
    const int32_t *bias;        /* folded int32 bias, n_out */
    const int32_t *multiplier;  /* Q31 multiplier, n_out */
    const int8_t *shift;        /* right shift, 31 + shift in [1, 62], n_out */
    int8_t out_zp, act_min, act_max;
    uint8_t out_xor;
    const int8_t *codebook;     /* shared only (8 values); NULL otherwise */
} pz_q8_layer_t;

/* round_half_up(acc * multiplier / 2^(31 + shift)) saturated to [-2^30, 2^30] (exact before the int8 clamp). */
int32_t pz_q8_requantize(int32_t acc, int32_t multiplier, int32_t shift);

/* The byte written for output j given its accumulator (requantize, add zero point, clamp, xor). */
uint8_t pz_q8_output(const pz_q8_layer_t *l, uint32_t j, int32_t acc);

/* Weight w[j][k] of an interleave4 matrix (what the reference kernel reads). */
int32_t pz_q8_dense_weight(const pz_q8_layer_t *l, uint32_t j, uint32_t k);

/* Dense layers: the plain reference and the Cortex-M0+ kernel (Thumb-1 assembly inner loop on ARMv6-M, the same
 * algorithm in portable C elsewhere). Same arguments, same bytes out. */
void pz_q8_dense_ref(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y);
void pz_q8_dense_m0(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y);

/* Outputs [j_begin, j_end) of a dense layer (j_begin a multiple of 8: a group boundary); pz_q8_dense_m0 is
 * (0, n_out). Two cores each run one range of the same layer (docs/FIRMWARE.md "Two cores"). */
void pz_q8_dense_m0_outputs(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y, uint32_t j_begin,
                            uint32_t j_end);

/* Two cores on one sparse or shared layer: both call the _half kernel (core = 0 or 1) at the same time; each
 * accumulates its blocks of 4 input columns (the blocks alternate between the cores; core 0 also takes the n_in % 8
 * columns at the end), then `swap` hands its accumulators' address to the other core and returns the other's (a
 * barrier), and each writes half of the outputs from the sum of both. */
typedef uintptr_t (*pz_q8_swap_fn)(uintptr_t mine);

/* Sparse layer in the pairs format. */
void pz_q8_sparse(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y);

void pz_q8_sparse_half(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y, uint32_t core, pz_q8_swap_fn swap);

/* Sparse layer with shared weights in the code3 format (one multiplier and shift for the layer). */
void pz_q8_shared(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y);
void pz_q8_shared_half(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y, uint32_t core, pz_q8_swap_fn swap);

#endif
