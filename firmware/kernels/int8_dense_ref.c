/* Reference int8 kernels: plain maths, one output at a time (tflite-micro reference style). The optimised kernel
 * in int8_dense_m0.c must match these byte for byte. */
#include "int8.h"

void pz_q8_dense_ref(const pz_q8_layer_t *l, const uint8_t *xu, uint8_t *y) {
    for (uint32_t j = 0; j < l->n_out; j++) {
        int32_t acc = l->bias[j];
        for (uint32_t k = 0; k < l->n_in; k++) {
            acc += (int32_t)xu[k] * pz_q8_dense_weight(l, j, k);
        }
        y[j] = pz_q8_output(l, j, acc);
    }
}
