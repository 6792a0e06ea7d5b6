/* Conv, depthwise and pool layers on both cores (conv_layers.c, docs/FIRMWARE.md "Two cores").
 *
 * A split layer's aux is a pz_q8_conv_split_t: the layer's kernel struct first (so the one-core adapters and any
 * tool reading aux as a pz_q8_conv_t still see it), then the first output row of core 1's part (chosen by
 * firmware/convgen.py to balance the cores' work, border rows costing more) and core 1's own scratch. Each core calls
 * the same kernel on a sub-layer: output rows [r0, r1), x moved to the first input row those rows read, in_h cut to
 * the rows they read, pad_top what is left of the top padding, y moved by r0 * out_w * out_c. The kernel then sees
 * exactly the cells (and padding cells) it reads for those rows in the whole layer, so the bytes equal one core's. */
#ifndef PZ_CONV_LAYERS_H
#define PZ_CONV_LAYERS_H

#include <stdint.h>

#include "conv.h"
#include "layers.h"

typedef struct {
    pz_q8_conv_t c;            /* the whole layer, as one core runs it (c.scratch: core 0's scratch) */
    uint16_t mid;              /* core 0 writes output rows [0, mid), core 1 [mid, out_h); 0 < mid < out_h */
    uint8_t *scratch1;         /* core 1's scratch (NULL when the kernel needs none) */
} pz_q8_conv_split_t;

/* The output rows [r0, r1) of the layer s as a layer of their own: returns the first input row they read and
 * narrows *s to them (in_h, out_h, pad_top). */
uint32_t pz_conv_rows(pz_conv_shape_t *s, uint32_t r0, uint32_t r1);

/* Adapters of split int8 layers (aux: pz_q8_conv_split_t); one-core builds run them on core 0 alone. */
void pz_run_q8_conv2d_split(const pz_layer *l, const void *x, void *y);
void pz_run_q8_dwconv2d_split(const pz_layer *l, const void *x, void *y);
void pz_run_q8_maxpool_split(const pz_layer *l, const void *x, void *y);
void pz_run_q8_avgpool_split(const pz_layer *l, const void *x, void *y);

#endif
