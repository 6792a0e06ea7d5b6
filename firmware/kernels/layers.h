/* The layer table: what the generated model.c describes and pz_infer (runtime/network.c) walks.
 *
 * Each entry names its kernel kind (for tools and checks) and the adapter that runs it; the adapter unpacks the
 * entry into a plain kernel call. Because the generated table refers to adapters by name, the linker keeps only
 * the kernels a model uses (-ffunction-sections, --gc-sections).
 *
 * Adding a kind (e.g. int8 dense): append to pz_kind (never renumber), declare its adapter here, define it in its
 * own .c file next to the kernel, and teach firmware/codegen.py to emit it (docs/FIRMWARE.md "Adding a kernel"). */
#ifndef PZ_LAYERS_H
#define PZ_LAYERS_H

#include <stdint.h>

typedef enum {
    PZ_K_INPUT_U8_F32 = 0, /* aux: const float *scale */
    PZ_K_INPUT_U8_F64 = 1, /* aux: const double *scale */
    PZ_K_DENSE_F32 = 2,    /* w: float[in][out], b: float[out] */
    PZ_K_DENSE_F64 = 3,
    PZ_K_RELU_F32 = 4,
    PZ_K_RELU_F64 = 5,
    PZ_K_SIGMOID_F32 = 6,
    PZ_K_SIGMOID_F64 = 7,
    PZ_K_TANH_F32 = 8,
    PZ_K_TANH_F64 = 9,
    PZ_K_Q8_DENSE = 10,    /* int8 dense, interleave4 weights; aux: const pz_q8_layer_t * (int8.h) */
    PZ_K_Q8_SPARSE = 11,   /* int8 sparse, pairs format; aux: const pz_q8_layer_t * */
    PZ_K_Q8_SHARED = 12,   /* int8 sparse with a per-layer codebook, code3 format; aux: const pz_q8_layer_t * */
    /* conv nets (conv.h, adapters in conv_layers.c); in/out count elements of the NHWC tensors */
    PZ_K_CONV2D_F32 = 13,     /* w: float HWIO, b: float[K]; aux: const pz_f32_conv_t * (shape, fused clamp) */
    PZ_K_DWCONV2D_F32 = 14,   /* w: float (kh, kw, C), b: float[C]; aux: const pz_f32_conv_t * */
    PZ_K_MAXPOOL_F32 = 15,    /* aux: const pz_conv_shape_t * */
    PZ_K_AVGPOOL_F32 = 16,    /* aux: const pz_conv_shape_t * */
    PZ_K_GAVGPOOL_F32 = 17,   /* aux: const pz_conv_shape_t * (in_h * in_w pixels of in_c channels) */
    PZ_K_Q8_CONV2D = 18,      /* aux: const pz_q8_conv_t * (conv8 weights, scratch in the arena) */
    PZ_K_Q8_DWCONV2D = 19,    /* aux: const pz_q8_conv_t * (dw records, scratch in the arena) */
    PZ_K_Q8_MAXPOOL = 20,     /* aux: const pz_q8_conv_t * (shape and out_xor only) */
    PZ_K_Q8_AVGPOOL = 21,
    PZ_K_Q8_GAVGPOOL = 22,
    /* the user's float32 input (zoo/normalize.py); w: const float mean[in], b: const float mult[in] */
    PZ_K_INPUT_F32_F32 = 23,
    PZ_K_INPUT_F32_F64 = 24,
    PZ_K_INPUT_F32_Q8 = 25,   /* aux: const pz_input_q8_t * (then int8 quantization, offset-binary bytes out) */
    PZ_K_RELU6_F32 = 26,      /* element-wise, where it cannot be fused into a conv (after a dense or a pool) */
    PZ_K_RELU6_F64 = 27,
} pz_kind;

typedef struct pz_layer pz_layer;
typedef void (*pz_layer_fn)(const pz_layer *layer, const void *x, void *y);

struct pz_layer {
    pz_layer_fn run;  /* adapter: runs this layer from x into y */
    uint16_t kind;    /* a pz_kind */
    uint16_t in;      /* input elements */
    uint16_t out;     /* output elements */
    const void *w;    /* weights or NULL */
    const void *b;    /* bias or NULL */
    const void *aux;  /* kind-specific extra data (input scale, quantisation parameters, sparse indices) or NULL */
};

/* The predicted class from the last layer's outputs. */
typedef int32_t (*pz_predict_fn)(const void *y, uint32_t n);

typedef struct {
    const pz_layer *layers;
    uint16_t n_layers;
    void *buf[2];        /* ping-pong activation buffers: layer i writes buf[i % 2], the last layer writes output */
    void *output;        /* pz_output */
    uint16_t output_count;
    pz_predict_fn predict;
    void *const *io;     /* NULL, or the planned buffers (firmware/planner.py): layer i reads io[i] and writes
                            io[i + 1]; io[0] = pz_input, io[n_layers] = pz_output, the rest inside pz_arena */
} pz_network;

void pz_run_input_u8_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_input_u8_f64(const pz_layer *layer, const void *x, void *y);
void pz_run_input_f32_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_input_f32_f64(const pz_layer *layer, const void *x, void *y);
void pz_run_input_f32_q8(const pz_layer *layer, const void *x, void *y);

/* The int8 input quantization of a model of float data (compress/quantize.py quantize_input). */
typedef struct {
    float inv_scale;
    int32_t zero_point;
} pz_input_q8_t;
void pz_run_dense_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_dense_f64(const pz_layer *layer, const void *x, void *y);
void pz_run_relu_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_relu_f64(const pz_layer *layer, const void *x, void *y);
void pz_run_relu6_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_relu6_f64(const pz_layer *layer, const void *x, void *y);
void pz_run_sigmoid_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_sigmoid_f64(const pz_layer *layer, const void *x, void *y);
void pz_run_tanh_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_tanh_f64(const pz_layer *layer, const void *x, void *y);

/* int8 layers (int8_layers.c): x is offset-binary bytes (raw pixels for the first layer), y int8 or offset-binary */
void pz_run_q8_dense(const pz_layer *layer, const void *x, void *y);
void pz_run_q8_sparse(const pz_layer *layer, const void *x, void *y);
void pz_run_q8_shared(const pz_layer *layer, const void *x, void *y);

/* conv nets (conv_layers.c) */
void pz_run_conv2d_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_dwconv2d_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_maxpool_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_avgpool_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_gavgpool_f32(const pz_layer *layer, const void *x, void *y);
void pz_run_q8_conv2d(const pz_layer *layer, const void *x, void *y);
void pz_run_q8_dwconv2d(const pz_layer *layer, const void *x, void *y);
void pz_run_q8_maxpool(const pz_layer *layer, const void *x, void *y);
void pz_run_q8_avgpool(const pz_layer *layer, const void *x, void *y);
void pz_run_q8_gavgpool(const pz_layer *layer, const void *x, void *y);

int32_t pz_predict_argmax_f32(const void *y, uint32_t n);
int32_t pz_predict_argmax_f64(const void *y, uint32_t n);
int32_t pz_predict_argmax_i8(const void *y, uint32_t n);
int32_t pz_predict_binary_f32(const void *y, uint32_t n);  /* class = y[0] > 0.5 */
int32_t pz_predict_binary_f64(const void *y, uint32_t n);

#endif
