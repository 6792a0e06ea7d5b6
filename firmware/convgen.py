"""C for image models (a spec with an Input layer): conv, depthwise conv, pools, flatten, dense; float32 or int8.

One registry per number format maps an op type to its `Op`: the pz_kind and adapter (firmware/kernels/layers.h),
whether it may run in place, its scratch need, and the function that packs its tensors into C arrays. The layer
table is walked with a planned `io` table: firmware/planner.py places every intermediate activation (and scratch)
in one `pz_arena`, so peak activation RAM is known before compiling (size.json `arena_bytes`).

float32: BatchNorm folded and Dropout dropped (zoo.nn.for_inference); a ReLU/ReLU6 right after a conv or depthwise
conv becomes its clamp, others run as their own (in-place) layer; flatten is free (an NHWC tensor's bytes already
are the flat vector). int8: the ops of meta["quantization"]["layers"] (compress/reference.py's golden model), the
first one reading the raw pixels in pz_input (offset-binary, zero point -128), hidden outputs offset-binary
(out_xor 0x80), the last plain int8 into pz_output.

Weights per layer go to flash (`const`) or SRAM (copied at boot) as `placement[spec index]` says (firmware/build.py
decides). Every per-layer array is named pz_l<i>_<name> so size.json counts it in weights_bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from firmware import planner

ALIGNED4 = " __attribute__((aligned(4)))"
MAX_ELEMENTS = 0xFFFF  # pz_layer.in/out are uint16_t


class ConvCodegenError(ValueError):
    pass


@dataclass
class Emitted:
    """One table entry before the arena is planned."""
    index: int                 # spec index (for names and messages)
    op: str
    in_elems: int
    out_elems: int
    out_bytes: int
    scratch_bytes: int
    in_place: bool
    weight_bytes: int
    reads_per_weight: int      # how often an inference reads each weight byte (for the placement decision)
    render: Callable[[str, str], tuple[str, str]] = field(repr=False)  # (qualifier, scratch) -> (arrays, entry)


def _c_values(values, fmt, per_line=16) -> str:
    values = list(values)
    return "\n".join("    " + ", ".join(fmt(v) for v in values[i:i + per_line]) + ","
                     for i in range(0, len(values), per_line))


def c_array(ctype: str, name: str, values, fmt, qualifier: str, attrs: str = "") -> str:
    values = list(values)
    return f"{qualifier}{ctype} {name}[{len(values)}]{attrs} = {{\n{_c_values(values, fmt)}\n}};\n"


def _hex(v) -> str:
    return f"0x{int(v):02x}"


def _int(v) -> str:
    return f"{int(v)}"


def _f32(v) -> str:
    text = f"{float(v):.9g}"
    if "e" not in text and "." not in text and "n" not in text:
        text += ".0"
    return text + "f"


def _shape_c(in_shape, out_shape, kernel=(1, 1), stride=(1, 1), pads=(0, 0)) -> str:
    h, w, c = in_shape
    oh, ow, oc = out_shape
    return (f"{{{h}, {w}, {c}, {oh}, {ow}, {oc}, {kernel[0]}, {kernel[1]}, {stride[0]}, {stride[1]}, {pads[0]}, "
            f"{pads[1]}}}")


def _pads(in_shape, kernel, stride, padding) -> tuple[int, int]:
    from compress.conv_layout import window
    return window(in_shape[0], kernel[0], stride[0], padding)[1], window(in_shape[1], kernel[1], stride[1],
                                                                           padding)[1]


def _elems(shape) -> int:
    return int(np.prod(shape))


# -- float32 ----------------------------------------------------------------------------------------------------------
def _f32_conv(i, layer, p, shape_in, shape_out, act):
    depthwise = layer.kind == "depthwise_conv2d"
    w = np.asarray(p["w"], np.float32)
    b = np.asarray(p["b"], np.float32)
    if not (np.isfinite(w).all() and np.isfinite(b).all()):
        raise ConvCodegenError(f"layer {i} has non-finite weights (NaN or inf); retrain the model")
    kernel, stride = tuple(layer.kernel), tuple(layer.stride)
    pads = _pads(shape_in, kernel, stride, layer.padding)
    lo, hi = {"none": ("-INFINITY", "INFINITY"), "relu": ("0.0f", "INFINITY"), "relu6": ("0.0f", "6.0f")}[act]
    kind, adapter = ("PZ_K_DWCONV2D_F32", "pz_run_dwconv2d_f32") if depthwise else ("PZ_K_CONV2D_F32",
                                                                                   "pz_run_conv2d_f32")

    def render(q, scratch):
        arrays = (f"/* layer {i}: {layer.kind} {list(shape_in)} -> {list(shape_out)}, fused {act} */\n"
                  + c_array("float", f"pz_l{i}_w", w.reshape(-1), _f32, q)
                  + c_array("float", f"pz_l{i}_b", b, _f32, q)
                  + f"const pz_f32_conv_t pz_l{i}_conv = {{{_shape_c(shape_in, shape_out, kernel, stride, pads)}, "
                    f"{lo}, {hi}}};\n\n")
        return arrays, f"{{{adapter}, {kind}, {{in}}, {{out}}, pz_l{i}_w, pz_l{i}_b, &pz_l{i}_conv}}"
    return Emitted(i, layer.kind, _elems(shape_in), _elems(shape_out), 4 * _elems(shape_out), 0, False,
                   w.nbytes + b.nbytes, shape_out[0] * shape_out[1], render)


def _f32_pool(i, layer, p, shape_in, shape_out, act):
    if layer.kind == "global_avg_pool2d":
        kernel, stride, pads, adapter, kind = (1, 1), (1, 1), (0, 0), "pz_run_gavgpool_f32", "PZ_K_GAVGPOOL_F32"
        c_out = (1, 1, shape_out[0])
    else:
        kernel, stride = tuple(layer.pool), tuple(layer.stride)
        pads = _pads(shape_in, kernel, stride, layer.padding)
        stem = "max" if layer.kind == "max_pool2d" else "avg"
        adapter, kind, c_out = f"pz_run_{stem}pool_f32", f"PZ_K_{stem.upper()}POOL_F32", shape_out

    def render(q, scratch):
        return (f"const pz_conv_shape_t pz_l{i}_shape = {_shape_c(shape_in, c_out, kernel, stride, pads)};\n",
                f"{{{adapter}, {kind}, {{in}}, {{out}}, NULL, NULL, &pz_l{i}_shape}}")
    return Emitted(i, layer.kind, _elems(shape_in), _elems(shape_out), 4 * _elems(shape_out), 0, pads == (0, 0),
                   0, 0, render)


def _f32_dense(i, layer, p, shape_in, shape_out, act):
    w = np.asarray(p["w"], np.float32)
    b = np.asarray(p["b"], np.float32)

    def render(q, scratch):
        return (f"/* layer {i}: dense {layer.in_features} -> {layer.out_features}, w[in][out] */\n"
                + c_array("float", f"pz_l{i}_w", w.reshape(-1), _f32, q) + c_array("float", f"pz_l{i}_b", b, _f32, q),
                f"{{pz_run_dense_f32, PZ_K_DENSE_F32, {{in}}, {{out}}, pz_l{i}_w, pz_l{i}_b, NULL}}")
    return Emitted(i, "dense", layer.in_features, layer.out_features, 4 * layer.out_features, 0, False,
                   w.nbytes + b.nbytes, 1, render)


def _f32_activation(i, layer, p, shape_in, shape_out, act):
    stem = layer.kind

    def render(q, scratch):
        return "", f"{{pz_run_{stem}_f32, PZ_K_{stem.upper()}_F32, {{in}}, {{out}}, NULL, NULL, NULL}}"
    return Emitted(i, stem, _elems(shape_in), _elems(shape_out), 4 * _elems(shape_out), 0, True, 0, 0, render)


F32_OPS = {"conv2d": _f32_conv, "depthwise_conv2d": _f32_conv, "max_pool2d": _f32_pool, "avg_pool2d": _f32_pool,
           "global_avg_pool2d": _f32_pool, "dense": _f32_dense, "relu": _f32_activation,
           "sigmoid": _f32_activation, "tanh": _f32_activation}
FUSABLE = ("conv2d", "depthwise_conv2d")


def f32_ops(model, source) -> list[Emitted]:
    from zoo.nn import for_inference

    spec, params = for_inference(model.spec, model.params)
    shapes_in, shapes_out = spec.input_shapes(), spec.output_shapes()
    ops: list[Emitted] = []
    layers = list(spec.layers)
    i = 0
    while i < len(layers):
        layer = layers[i]
        if layer.kind in ("input", "flatten"):
            i += 1
            continue
        nxt = layers[i + 1].kind if i + 1 < len(layers) else None
        act = "none"
        if layer.kind in FUSABLE and nxt in ("relu", "relu6"):
            act = nxt
        elif layer.kind == "relu6":
            raise ConvCodegenError(f"{source}: layer {i} (relu6) follows {layers[i - 1].kind}; the float firmware "
                                   f"fuses ReLU6 into a conv2d or depthwise_conv2d only")
        if layer.kind not in F32_OPS:
            raise ConvCodegenError(f"{source}: layer {i} kind {layer.kind!r} has no float kernel")
        ops.append(F32_OPS[layer.kind](i, layer, params[i], shapes_in[i], shapes_out[i], act))
        i += 2 if act != "none" else 1
    return ops


# -- int8 -------------------------------------------------------------------------------------------------------------
def _q8_scalars(lm, out_xor, pad=0) -> str:
    return f"{int(lm['output_zero_point'])}, {int(lm['act_min'])}, {int(lm['act_max'])}, 0x{out_xor:02x}u, {pad}u"


def _q8_conv(lm, t, out_xor):
    from compress import conv_layout

    i, shape_in, shape_out = lm["index"], lm["in_shape"], lm["out_shape"]
    depthwise = lm["type"] == "depthwise_conv2d"
    kernel, stride = tuple(lm["kernel"]), tuple(lm["stride"])
    pads = _pads(shape_in, kernel, stride, lm["padding"])
    w = np.asarray(t["w"], np.int8)
    zp_in = int(lm["input_zero_point"])
    if depthwise:
        fb = conv_layout.folded_depthwise_bias(t["bias"], w, zp_in)
        packed, bias = conv_layout.pack_depthwise(w, fb), None
        kind, adapter = "PZ_K_Q8_DWCONV2D", "pz_run_q8_dwconv2d"
        scratch = (13 * shape_in[2] + 3) // 4 * 4 if kernel == (3, 3) else 0
    else:
        packed, bias = conv_layout.pack_conv8(w, conv_layout.folded_conv_bias(t["bias"], w, zp_in)), None
        kind, adapter = "PZ_K_Q8_CONV2D", "pz_run_q8_conv2d"
        scratch = (kernel[0] * kernel[1] * shape_in[2] + 3) // 4 * 4
    mult, shift = np.asarray(t["multiplier"], np.int32), np.asarray(t["shift"], np.int8)

    def render(q, scratch_expr):
        arrays = (f"/* layer {i}: int8 {lm['type']} {list(shape_in)} -> {list(shape_out)} */\n"
                  + c_array("uint8_t", f"pz_l{i}_w", packed, _hex, q, ALIGNED4)
                  + (c_array("int32_t", f"pz_l{i}_bias", bias, _int, q) if bias is not None else "")
                  + c_array("int32_t", f"pz_l{i}_mult", mult, _int, q)
                  + c_array("int8_t", f"pz_l{i}_shift", shift, _int, q)
                  + f"const pz_q8_conv_t pz_l{i}_conv = {{{_shape_c(shape_in, shape_out, kernel, stride, pads)}, "
                    f"pz_l{i}_w, {f'pz_l{i}_bias' if bias is not None else 'NULL'}, pz_l{i}_mult, pz_l{i}_shift, "
                    f"{_q8_scalars(lm, out_xor, (zp_in + 128) & 0xFF)}, {scratch_expr}}};\n\n")
        return arrays, f"{{{adapter}, {kind}, {{in}}, {{out}}, pz_l{i}_w, NULL, &pz_l{i}_conv}}"
    nbytes = packed.nbytes + mult.nbytes + shift.nbytes + (bias.nbytes if bias is not None else 0)
    return Emitted(i, lm["type"], _elems(shape_in), _elems(shape_out), _elems(shape_out), scratch, False, nbytes,
                   shape_out[0] * shape_out[1], render)


def _q8_pool(lm, t, out_xor):
    i, shape_in, shape_out = lm["index"], lm["in_shape"], lm["out_shape"]
    if lm["type"] == "global_avg_pool2d":
        kernel, stride, pads, stem, c_out = (1, 1), (1, 1), (0, 0), "gavg", (1, 1, shape_out[0])
    else:
        kernel, stride = tuple(lm["pool"]), tuple(lm["stride"])
        pads = _pads(shape_in, kernel, stride, lm.get("padding", "valid"))
        stem, c_out = ("max" if lm["type"] == "max_pool2d" else "avg"), shape_out

    def render(q, scratch_expr):
        return (f"const pz_q8_conv_t pz_l{i}_conv = {{{_shape_c(shape_in, c_out, kernel, stride, pads)}, NULL, NULL, "
                f"NULL, NULL, 0, -128, 127, 0x{out_xor:02x}u, 0u, NULL}};\n",
                f"{{pz_run_q8_{stem}pool, PZ_K_Q8_{stem.upper()}POOL, {{in}}, {{out}}, NULL, NULL, &pz_l{i}_conv}}")
    return Emitted(i, lm["type"], _elems(shape_in), _elems(shape_out), _elems(shape_out), 0, pads == (0, 0), 0, 0,
                   render)


def _q8_dense(lm, t, out_xor):
    from compress import layout

    i = lm["index"]
    if lm.get("storage", "dense") != "dense":
        raise ConvCodegenError(f"layer {i}: int8 dense storage {lm['storage']!r} in a conv net; the conv firmware "
                               f"builds dense storage only")
    w = np.asarray(t["w"], np.int8)
    n_out, n_in = w.shape
    packed = layout.pack_dense(w)
    fb = layout.folded_bias(t["bias"], w, lm["input_zero_point"])
    mult, shift = np.asarray(t["multiplier"], np.int32), np.asarray(t["shift"], np.int8)

    def render(q, scratch_expr):
        arrays = (f"/* layer {i}: int8 dense {n_in} -> {n_out} */\n"
                  + c_array("uint8_t", f"pz_l{i}_w", packed, _hex, q, ALIGNED4)
                  + c_array("int32_t", f"pz_l{i}_bias", fb, _int, q)
                  + c_array("int32_t", f"pz_l{i}_mult", mult, _int, q)
                  + c_array("int8_t", f"pz_l{i}_shift", shift, _int, q)
                  + f"const pz_q8_layer_t pz_l{i}_q = {{{n_in}u, {n_out}u, pz_l{i}_w, NULL, pz_l{i}_bias, "
                    f"pz_l{i}_mult, pz_l{i}_shift, {int(lm['output_zero_point'])}, {int(lm['act_min'])}, "
                    f"{int(lm['act_max'])}, 0x{out_xor:02x}u, NULL}};\n\n")
        return arrays, f"{{pz_run_q8_dense, PZ_K_Q8_DENSE, {{in}}, {{out}}, pz_l{i}_w, pz_l{i}_bias, &pz_l{i}_q}}"
    return Emitted(i, "dense", n_in, n_out, n_out, 0, False, packed.nbytes + fb.nbytes + mult.nbytes + shift.nbytes,
                   1, render)


Q8_OPS = {"conv2d": _q8_conv, "depthwise_conv2d": _q8_conv, "max_pool2d": _q8_pool, "avg_pool2d": _q8_pool,
          "global_avg_pool2d": _q8_pool, "dense": _q8_dense}


def q8_ops(model, source) -> list[Emitted]:
    from compress import reference

    layers = [(lm, t) for lm, t in reference.qlayers(model) if lm["type"] != "flatten"]
    ops = []
    for n, (lm, t) in enumerate(layers):
        if lm["type"] not in Q8_OPS:
            raise ConvCodegenError(f"{source}: layer {lm['index']} int8 op {lm['type']!r} has no kernel")
        ops.append(Q8_OPS[lm["type"]](lm, t, 0x80 if n + 1 < len(layers) else 0))
    return ops


# -- the model --------------------------------------------------------------------------------------------------------
def is_image_model(model) -> bool:
    """A spec that starts with an input layer (NHWC images); v1 MLP specs start with a dense layer."""
    layers = getattr(model.spec, "layers", ())
    return bool(layers) and layers[0].kind == "input"


def network_ops(model, source) -> tuple[list[Emitted], bool]:
    """(table entries before planning, int8?) for an image model."""
    int8 = "quantization" in model.meta
    if not int8 and model.meta.get("dtype") != "float32":
        raise ConvCodegenError(f"{source}: dtype {model.meta.get('dtype')!r}: conv nets build in float32 or int8")
    ops = q8_ops(model, source) if int8 else f32_ops(model, source)
    if not ops:
        raise ConvCodegenError(f"{source}: the network has no layer with a kernel")
    for op in ops:
        if max(op.in_elems, op.out_elems) > MAX_ELEMENTS:
            raise ConvCodegenError(f"{source}: layer {op.index} ({op.op}) has {max(op.in_elems, op.out_elems)} "
                                   f"elements; the layer table holds at most {MAX_ELEMENTS}")
    return ops, int8


def plan_steps(model, source) -> tuple[list[Emitted], list[planner.Step], bool]:
    """The entries and the planner's steps (a float model's first step turns raw pixels into floats); plan them
    with planner.plan(steps, input_bytes(model))."""
    ops, int8 = network_ops(model, source)
    steps = [planner.Step(f"layer {op.index} {op.op}", op.out_bytes, op.scratch_bytes, op.in_place) for op in ops]
    features = int(model.meta["input"]["features"])
    if _float_input(model):  # the user's floats: normalised (and for int8 quantized) by a first step
        steps.insert(0, planner.Step("input quantization" if int8 else "input normalisation",
                                     features if int8 else 4 * features))
    elif not int8:
        steps.insert(0, planner.Step("input scaling", 4 * features))
    return ops, steps, int8


def _float_input(model) -> bool:
    from firmware.codegen import float_input  # codegen imports this module
    return float_input(model)


def input_bytes(model) -> int:
    """Bytes of pz_input: one per raw pixel, or a float32 per value of the user's data."""
    return int(model.meta["input"]["features"]) * (4 if _float_input(model) else 1)


def plan(model, source) -> planner.Plan:
    return planner.plan(plan_steps(model, source)[1], input_bytes(model))


def generate(model, source: str, placement: dict[int, str], header: str) -> tuple[dict[str, str], planner.Plan]:
    """model.h / model.c for an image model, and the activation plan. placement: spec index -> "flash" | "ram"."""
    ops, steps, int8 = plan_steps(model, source)
    plan = planner.plan(steps, input_bytes(model))
    features = int(model.meta["input"]["features"])
    arrays, entries = [], []
    table = list(ops)
    float_in = _float_input(model)
    offset = 0 if int8 and not float_in else 1  # a float model's first entry is the input scaling
    if float_in:
        from firmware.codegen import float_input_arrays
        arrays.append(float_input_arrays(model))
        kind = "q8" if int8 else "f32"
        entries.append(f"    {{pz_run_input_f32_{kind}, PZ_K_INPUT_F32_{kind.upper()}, {features}, {features}, "
                       f"pz_input_mean, pz_input_mult, {'&pz_input_q' if int8 else 'NULL'}}},")
    elif not int8:
        entries.append(f"    {{pz_run_input_u8_f32, PZ_K_INPUT_U8_F32, {features}, {features}, NULL, NULL, "
                       f"&pz_input_scale}},")
    for k, op in enumerate(table):
        q = "" if placement.get(op.index, "flash") == "ram" else "const "
        scratch = plan.io[k + offset][2]
        text, entry = op.render(q, f"pz_arena + {scratch}" if scratch is not None else "NULL")
        arrays.append(text)
        entries.append("    " + entry.replace("{in}", str(op.in_elems)).replace("{out}", str(op.out_elems)) + ",")
    io = ["pz_input"]
    for _, y, _ in plan.io:
        io.append(f"pz_arena + {y}" if y is not None else "pz_output")
    outputs = ops[-1].out_elems
    ctype = "int8_t" if int8 else "float"
    kind = "argmax" if model.spec.output == "logits" else "binary"
    predictor = "pz_predict_argmax_i8" if int8 else f"pz_predict_{kind}_f32"
    scale = model.meta["input"]["scale"]
    h = f"""{header}#ifndef PZ_MODEL_H
#define PZ_MODEL_H

#include <stdint.h>

#include "conv.h"
#include "int8.h"
#include "layers.h"

#define PZ_MODEL_NAME "{model.meta.get('model', '')}"
#define PZ_INPUT_FEATURES {features}
#define PZ_OUTPUT_COUNT {outputs}
#define PZ_N_LAYERS {len(entries)}
#define PZ_ARENA_BYTES {max(plan.arena_bytes, 4)}
typedef {ctype} pz_output_t;

extern {"float pz_input[PZ_INPUT_FEATURES];     /* the user's raw values" if float_in else
        "uint8_t pz_input[PZ_INPUT_FEATURES];   /* raw pixels 0..255"}, NHWC: the first bytes of pz_arena */
extern pz_output_t pz_output[PZ_OUTPUT_COUNT];
extern uint8_t pz_arena[PZ_ARENA_BYTES];      /* every intermediate activation, placed by firmware/planner.py */
extern const pz_network pz_network_model;

int pz_infer(void);  /* runs the network on pz_input, fills pz_output, returns the predicted class */

#endif
"""
    scale_c = "" if int8 or float_in else \
        f"const float pz_input_scale = {_f32(np.float32(scale))};  /* x = raw * scale */\n\n"
    c = f"""{header}#include <math.h>
#include <stddef.h>

#include "model.h"

pz_output_t pz_output[PZ_OUTPUT_COUNT];
uint8_t pz_arena[PZ_ARENA_BYTES] __attribute__((aligned(8)));
/* pz_input is the start of the arena (planned there, dead after the first layer), with its own size in the ELF */
__asm__(".global pz_input\\n.type pz_input, %object\\n.set pz_input, pz_arena\\n.size pz_input, "
        "{input_bytes(model)}\\n");

{scale_c}{"".join(arrays)}
const pz_layer pz_layers[PZ_N_LAYERS] = {{
{chr(10).join(entries)}
}};

/* layer k reads pz_io[k] and writes pz_io[k + 1] (planned offsets in pz_arena) */
static void *const pz_io[PZ_N_LAYERS + 1] = {{
{_c_values(io, str, 4)}
}};

const pz_network pz_network_model = {{
    pz_layers, PZ_N_LAYERS, {{NULL, NULL}}, pz_output, PZ_OUTPUT_COUNT, {predictor}, pz_io,
}};
"""
    return {"model.h": h, "model.c": c}, plan
