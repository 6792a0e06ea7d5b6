/* Conv, depthwise and pool layers on both cores, and conv weights staged from flash into SRAM (conv_layers.c,
 * docs/FIRMWARE.md "Two cores" and "Weight staging").
 *
 * A planned layer's aux is a pz_q8_conv_plan_t: the layer's kernel struct first (so the one-core adapters and any
 * tool reading aux as a pz_q8_conv_t still see it), then how it runs:
 * - split (mid > 0): core 0 writes output rows [0, mid), core 1 [mid, out_h) (mid chosen by firmware/convgen.py to
 *   balance the cores' work, border rows costing more), each with its own scratch. Each core calls the same kernel
 *   on a sub-layer: x moved to the first input row its rows read, in_h cut to the rows they read, pad_top what is
 *   left of the top padding, y moved by r0 * out_w * out_c. The kernel then sees exactly the cells (and padding
 *   cells) it reads for those rows in the whole layer, so the bytes equal one core's.
 * - split by output channels (by_channels, conv2d or 3x3 depthwise with few output rows): each core runs the kernel
 *   on a sub-layer of its groups of 8 output channels (weights, multipliers and shifts from that group on) into its
 *   block of `part`, then scatters its block into y (pixel stride out_c). A depthwise channel range reads only its
 *   own input channels: they are first gathered into pixels of that many channels, after the core's kernel
 *   scratch (the planner reserves in_h x in_w x the most channels a core takes there).
 * - staged (stage != NULL): c.w (in flash) is copied word by word into `stage` (SRAM, a buffer the planner placed
 *   in the arena for this layer only) before the kernel runs, which then reads the copy: each weight byte crosses
 *   the XIP cache once per inference instead of once per output pixel. Weights larger than the room for them run
 *   in passes of pass_c output channels: copy a pass's groups, run them (on one or both cores) into `part`,
 *   scatter, next pass; still one copy of each byte per inference.
 * - shared (two cores, conv2d): instead of one fixed half each, the cores take the pass's units (groups of 8 output
 *   channels when by_channels, else output rows, or pixels of a pointwise conv) from a counter under an SIO
 *   spinlock (multicore.h pz_share_take), half of what is left at a time (at least `shared` units), until none
 *   is left: the core that ran faster (more zeros skipped) takes more. A staged pass is shared by channels and its
 *   copy overlaps the work: core 0 copies the weights group by group, publishing how many have arrived, core 1
 *   computes the groups that have arrived meanwhile, and core 0 joins when its copy is done. Every unit is the same
 *   kernel on a sub-layer, so the bytes do not depend on which core ran it. */
#ifndef PZ_CONV_LAYERS_H
#define PZ_CONV_LAYERS_H

#include <stdint.h>

#include "conv.h"
#include "layers.h"

typedef struct {
    pz_q8_conv_t c;            /* the whole layer, as one core runs it (c.scratch: core 0's scratch; c.w: where the
                                  weights are stored) */
    uint16_t mid;              /* two cores by rows: core 1 writes output rows [mid, out_h), 0 < mid < out_h; 0: not */
    uint8_t by_channels;       /* two cores by output channels (conv2d, 3x3 depthwise): core 1 takes the upper half
                                  of the groups of 8 channels of each pass */
    uint16_t pass_c;           /* output channels per pass (a multiple of 8); = out_c: one pass */
    uint32_t group_bytes;      /* conv2d, 3x3 depthwise: bytes of c.w per group of 8 output channels (channel
                                  ranges); else 0 */
    uint8_t *scratch1;         /* core 1's scratch (NULL when the kernel needs none or one core runs the layer) */
    uint32_t *stage;           /* NULL, or the SRAM buffer each pass's weights are copied into first */
    uint32_t stage_words;      /* c.w's size in words (each pass copies its groups' part of it) */
    uint8_t *part;             /* a pass's outputs (out_h * out_w * pass_c bytes) before they are scattered into y:
                                  needed when a pass or a core has fewer channels than out_c; else NULL */
    uint16_t shared;           /* 0: the static split above; else the smallest share (units) of a shared split:
                                  units (groups of 8 channels when by_channels, else output rows, pixels for a
                                  pointwise conv) taken by either core from a counter (pz_share_take) */
} pz_q8_conv_plan_t;

/* A float conv or depthwise layer split by output rows between the cores (two-core builds): core 0 writes rows
 * [0, mid), core 1 [mid, out_h), each with the float kernel on its sub-layer (pz_conv_rows), 0 < mid < out_h. */
typedef struct {
    pz_f32_conv_t c;
    uint16_t mid;
} pz_f32_conv_plan_t;

void pz_run_conv2d_f32_plan(const pz_layer *l, const void *x, void *y);
void pz_run_dwconv2d_f32_plan(const pz_layer *l, const void *x, void *y);

/* The output rows [r0, r1) of the layer s as a layer of their own: returns the first input row they read and
 * narrows *s to them (in_h, out_h, pad_top). */
uint32_t pz_conv_rows(pz_conv_shape_t *s, uint32_t r0, uint32_t r1);

/* Adapters of planned int8 layers (aux: pz_q8_conv_plan_t). */
void pz_run_q8_conv2d_plan(const pz_layer *l, const void *x, void *y);
void pz_run_q8_dwconv2d_plan(const pz_layer *l, const void *x, void *y);
void pz_run_q8_maxpool_plan(const pz_layer *l, const void *x, void *y);
void pz_run_q8_avgpool_plan(const pz_layer *l, const void *x, void *y);

#endif
