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

Weights per layer go to flash (`const`), SRAM (copied at boot) or flash staged into an arena buffer before the layer
runs, as `placement[spec index]` says (firmware/build.py decides). Every per-layer array is named pz_l<i>_<name> so
size.json counts it in weights_bytes. Two-core builds split the large int8 conv, depthwise and pool layers and the
float conv and depthwise layers between the cores (split_rows; docs/FIRMWARE.md "Two cores"); a split or staged int8
layer's struct is a pz_q8_conv_plan_t (kernels/conv_layers.h) described by a Run, a split float layer's a
pz_f32_conv_plan_t.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from firmware import planner, requant

# Weight arrays start on an XIP cache line (8 bytes, datasheet 2.6.3): the kernels read them as 8-byte pairs, and
# a pair that straddles two lines costs two fills when the weights stay in flash (43,142 misses against 24,377 on
# pd_mobilenet's 256x256 pointwise layer).
WEIGHTS_ALIGNED = " __attribute__((aligned(8)))"
MAX_ELEMENTS = 0xFFFF  # pz_layer.in/out are uint16_t
# Two-core builds (docs/FIRMWARE.md "Two cores"): a layer of at least SPLIT_MIN_MACS multiply-accumulates runs on both
# cores (dense: outputs; conv, depthwise and pools: output rows), smaller ones on core 0. firmware/build.py passes it
# to the C (PZ_SPLIT_MIN_MACS) for the dense layers.
SPLIT_MIN_MACS = 2000
# Which two-core conv2d splits are shared (docs/FIRMWARE.md "Two cores": units taken from a counter by either core)
# rather than static halves: "staged" (a staged layer split by channels: its copy from flash overlaps core 1's
# work), "channels" (a channel split of weights already in SRAM or flash), "rows" (rows, or a pointwise conv's
# pixels, whose cost zero skipping makes uneven). A shared row split's smallest share is 1 / SHARE_GRAIN of the
# units. Each share is one kernel call, and the call's set-up (the output stage's range check reads every weight of
# a window of <= 32 bytes: 111 k cycles on pd_mobilenet's 12x12 32->64 layer) made "channels" and "rows" slower
# than the static halves on every layer measured (docs/BENCHMARKS.md "Shared splits"), so only "staged" is on.
SHARED_SPLITS = ("staged",)
SHARE_GRAIN = 16
# Overlapped outputs (planner.Step.overlap; docs/FIRMWARE.md "Overlapped outputs"), the kernel contract of the int8
# ops whose output may be written over their own input: the kernel writes its output pixels in row-major order and,
# once it has written any byte of output pixel p, reads no input byte outside the windows of output pixels
# p - LOOKBACK + 1 and later (pixels; "row": one output row, out_w pixels). conv_q8_m0.c today needs 1: conv2d
# re-reads pixel p's window between its calls of 32 output channels, 3x3 depthwise reads the windows of a group of up
# to 4 pixels of a row before it writes any of them; the slack leaves the kernels room to work on more pixels at once.
# tests/test_planner_overlap.py checks the kernels against it in rp2040_sim. Only layers one core runs in one pass:
# core 1 of a split layer writes rows core 0 has not read yet, and a pass of a staged layer reads the whole input
# after the previous pass wrote its outputs.
# A 3x3 depthwise layer whose output is one 3x3 tile (depthwise_tile) runs channel by channel over the whole tile
# (dwconv_q8_m0.c dw_tile): its first output byte is written before the other channels of any window are read, so its
# lookback is the whole tile ("tile": out_h x out_w pixels, the output kept clear of the input).
OVERLAP_LOOKBACK = {"conv2d": 8, "depthwise_conv2d": "row", "depthwise_conv2d_tile": "tile"}


def depthwise_tile(rows: "Rows") -> bool:
    """Whether the M0+ depthwise kernel runs this layer as one 3x3 output tile (dwconv_q8_m0.c dw_tile, mirrored):
    3x3 kernel, stride 1 over a 3x3 input padded by one on every side (SAME) or stride 2 over a 6x6 one padded below
    and right only (SAME, even size)."""
    if rows.kind != "depthwise_conv2d" or rows.kernel != (3, 3) or rows.out_shape[:2] != (3, 3):
        return False
    return (rows.stride == (1, 1) and rows.in_shape[:2] == (3, 3) and rows.pads == (1, 1)
            or rows.stride == (2, 2) and rows.in_shape[:2] == (6, 6) and rows.pads == (0, 0))


def overlap_lookback(rows: "Rows") -> int | str:
    """The layer's OVERLAP_LOOKBACK entry."""
    return OVERLAP_LOOKBACK["depthwise_conv2d_tile" if depthwise_tile(rows) else rows.kind]


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
    # (qualifier, scratch, run) -> (arrays, entry); run: None, or a split/staged layer's plan fields (generate)
    render: Callable[..., tuple[str, str]] = field(repr=False)
    rows: Rows | None = None   # an int8 conv/pool layer's geometry (split between the cores, staging)
    stage_bytes: int = 0       # bytes of its weight array (pz_l<i>_w) that staging copies to SRAM; 0: not stageable
    group_bytes: int = 0       # int8 conv2d / 3x3 depthwise: bytes of pz_l<i>_w per group of 8 output channels
                               # (channel ranges); 0: its channels cannot be split
    overlap: int | None = None  # run whole on one core, its output may overlap its input when it starts at least
                                # this many bytes before it (OVERLAP_LOOKBACK, Rows.overlap_lead); None: never


@dataclass(frozen=True)
class Rows:
    """The geometry of a conv, depthwise or pool layer, for splitting its output rows between the cores."""
    kind: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int]
    dtype: str = "int8"        # "float32": the float kernels (plain loops over the cells inside the input)

    def window_inside(self, axis: int, o: int) -> bool:
        """Whether output row (axis 0) / column (axis 1) o reads only cells inside the input on that axis."""
        first = o * self.stride[axis] - self.pads[axis]
        return first >= 0 and first + self.kernel[axis] <= self.in_shape[axis]

    def pointwise(self) -> bool:
        """1x1, stride 1, no padding: a shared split counts its pixels, not its rows (conv_layers.c share_shape)."""
        return (self.kernel == (1, 1) and self.stride == (1, 1) and self.pads == (0, 0)
                and self.in_shape[:2] == self.out_shape[:2])

    def work(self) -> int:
        """Multiply-accumulates (pools: cells compared or added), the measure the split bar uses."""
        oh, ow, oc = self.out_shape
        per_out = self.kernel[0] * self.kernel[1] * (self.in_shape[2] if self.kind == "conv2d" else 1)
        return oh * ow * oc * per_out

    def row_costs(self) -> list[int]:
        """Estimated cycles per output row with today's M0+ kernels (docs/FIRMWARE.md "int8 conv, M0+"): a window
        that crosses the border is first gathered cell by cell (conv, depthwise) or checked cell by cell (pools),
        so border rows and columns cost more. Only the ratios matter: they place the split row."""
        (h, w, c), (oh, ow, oc), (kh, kw) = self.in_shape, self.out_shape, self.kernel
        cells = kh * kw
        if self.dtype == "float32":   # the float kernels skip padding cells: a row costs its cells inside the input
            per_cell = c * oc if self.kind == "conv2d" else c
            return [per_cell * sum(self._inside(0, oy) * self._inside(1, ox) for ox in range(ow)) for oy in range(oh)]
        if self.kind == "conv2d":
            n_win = (cells * c + 3) // 4 * 4
            inside = 30 * n_win * ((oc + 7) // 8) // 8 + 45 * oc + (0 if kw * c % 4 == 0 else 4 * n_win)
            border = 6 * n_win + 15 * cells
        elif self.kind == "depthwise_conv2d":
            inside = 112 * c if (kh, kw) == (3, 3) else 30 * cells * c
            border = 6 * cells * c + 15 * cells
        else:
            inside = 4 * cells * c
            border = 12 * cells * c
        inside_cols = sum(self.window_inside(1, ox) for ox in range(ow))
        return [ow * inside + (ow - inside_cols if self.window_inside(0, oy) else ow) * border
                for oy in range(oh)]

    def _inside(self, axis: int, o: int) -> int:
        """How many window cells of output row (axis 0) / column (axis 1) o lie inside the input on that axis."""
        first = o * self.stride[axis] - self.pads[axis]
        return max(0, min(first + self.kernel[axis], self.in_shape[axis]) - max(first, 0))

    def overlap_lead(self, lookback: int | str, elem_bytes: int = 1) -> int:
        """The least D such that the output may start D bytes before the input (overlapping it) for a kernel with
        this lookback (OVERLAP_LOOKBACK): once output pixel p is written, the bytes still to be read all lie at or
        above the lowest byte of the windows of pixels p - lookback + 1 and later, and p's output must end there.
        (The lowest byte of a window is its first cell inside the input: rows and columns of padding are never
        read.)"""
        (h, w, c), (oh, ow, oc) = self.in_shape, self.out_shape
        back = ow if lookback == "row" else oh * ow if lookback == "tile" else int(lookback)
        oy, ox = np.divmod(np.arange(oh * ow), ow)
        iy = np.maximum(oy * self.stride[0] - self.pads[0], 0)
        ix = np.maximum(ox * self.stride[1] - self.pads[1], 0)
        low = (iy * w + ix) * c * elem_bytes                      # the lowest input byte of pixel q's window
        later = np.minimum.accumulate(low[::-1])[::-1]             # min over pixels q' >= q
        first = np.maximum(np.arange(oh * ow) - back + 1, 0)        # the earliest pixel still read after p
        end = (np.arange(oh * ow) + 1) * oc * elem_bytes            # one past p's last output byte
        return int(np.max(end - later[first]))

    def row_balance(self) -> float:
        """The slower core's share of the estimated cycles with the rows split at split_row (1.0: one row)."""
        costs = self.row_costs()
        if len(costs) < 2:
            return 1.0
        mid = self.split_row()
        return max(sum(costs[:mid]), sum(costs[mid:])) / sum(costs)

    def split_row(self) -> int:
        """The first output row of core 1's part: the row that balances the estimated cycles best."""
        costs = self.row_costs()
        total, best, best_mid, acc = sum(costs), None, 1, 0
        for mid in range(1, len(costs)):
            acc += costs[mid - 1]
            slower = max(acc, total - acc)
            if best is None or slower < best:
                best, best_mid = slower, mid
        return best_mid


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

    def render(q, scratch, run=None):   # run: a two-core row split (pz_f32_conv_plan_t, kernels/conv_layers.h)
        conv = f"{{{_shape_c(shape_in, shape_out, kernel, stride, pads)}, {lo}, {hi}}}"
        struct = (f"const pz_f32_conv_t pz_l{i}_conv = {conv};\n\n" if run is None else
                  f"const pz_f32_conv_plan_t pz_l{i}_conv = {{{conv}, {run['mid']}}};\n\n")
        arrays = (f"/* layer {i}: {layer.kind} {list(shape_in)} -> {list(shape_out)}, fused {act} */\n"
                  + c_array("float", f"pz_l{i}_w", w.reshape(-1), _f32, q)
                  + c_array("float", f"pz_l{i}_b", b, _f32, q) + struct)
        return arrays, (f"{{{_plan_adapter(adapter, run)}, {kind}, {{in}}, {{out}}, pz_l{i}_w, pz_l{i}_b, "
                        f"&pz_l{i}_conv}}")
    rows = Rows(layer.kind, tuple(shape_in), tuple(shape_out), kernel, stride, pads, "float32")
    return Emitted(i, layer.kind, _elems(shape_in), _elems(shape_out), 4 * _elems(shape_out), 0, False,
                   w.nbytes + b.nbytes, shape_out[0] * shape_out[1], render, rows)


def _f32_pool(i, layer, p, shape_in, shape_out, act):
    if layer.kind == "global_avg_pool2d":
        kernel, stride, pads, adapter, kind = (1, 1), (1, 1), (0, 0), "pz_run_gavgpool_f32", "PZ_K_GAVGPOOL_F32"
        c_out = (1, 1, shape_out[0])
    else:
        kernel, stride = tuple(layer.pool), tuple(layer.stride)
        pads = _pads(shape_in, kernel, stride, layer.padding)
        stem = "max" if layer.kind == "max_pool2d" else "avg"
        adapter, kind, c_out = f"pz_run_{stem}pool_f32", f"PZ_K_{stem.upper()}POOL_F32", shape_out

    def render(q, scratch, run=None):
        return (f"const pz_conv_shape_t pz_l{i}_shape = {_shape_c(shape_in, c_out, kernel, stride, pads)};\n",
                f"{{{adapter}, {kind}, {{in}}, {{out}}, NULL, NULL, &pz_l{i}_shape}}")
    return Emitted(i, layer.kind, _elems(shape_in), _elems(shape_out), 4 * _elems(shape_out), 0, pads == (0, 0),
                   0, 0, render)


def _f32_dense(i, layer, p, shape_in, shape_out, act):
    w = np.asarray(p["w"], np.float32)
    b = np.asarray(p["b"], np.float32)

    def render(q, scratch, run=None):
        return (f"/* layer {i}: dense {layer.in_features} -> {layer.out_features}, w[in][out] */\n"
                + c_array("float", f"pz_l{i}_w", w.reshape(-1), _f32, q) + c_array("float", f"pz_l{i}_b", b, _f32, q),
                f"{{pz_run_dense_f32, PZ_K_DENSE_F32, {{in}}, {{out}}, pz_l{i}_w, pz_l{i}_b, NULL}}")
    return Emitted(i, "dense", layer.in_features, layer.out_features, 4 * layer.out_features, 0, False,
                   w.nbytes + b.nbytes, 1, render)


def _f32_activation(i, layer, p, shape_in, shape_out, act):
    stem = layer.kind

    def render(q, scratch, run=None):
        return "", f"{{pz_run_{stem}_f32, PZ_K_{stem.upper()}_F32, {{in}}, {{out}}, NULL, NULL, NULL}}"
    return Emitted(i, stem, _elems(shape_in), _elems(shape_out), 4 * _elems(shape_out), 0, True, 0, 0, render)


F32_OPS = {"conv2d": _f32_conv, "depthwise_conv2d": _f32_conv, "max_pool2d": _f32_pool, "avg_pool2d": _f32_pool,
           "global_avg_pool2d": _f32_pool, "dense": _f32_dense, "relu": _f32_activation,
           "relu6": _f32_activation, "sigmoid": _f32_activation, "tanh": _f32_activation}
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
            act = nxt           # the conv's clamp; anywhere else an activation is its own element-wise layer
        if layer.kind not in F32_OPS:
            raise ConvCodegenError(f"{source}: layer {i} kind {layer.kind!r} has no float kernel")
        ops.append(F32_OPS[layer.kind](i, layer, params[i], shapes_in[i], shapes_out[i], act))
        i += 2 if act != "none" else 1
    return ops


# -- int8 -------------------------------------------------------------------------------------------------------------
def _q8_scalars(lm, out_xor, pad=0) -> str:
    return f"{int(lm['output_zero_point'])}, {int(lm['act_min'])}, {int(lm['act_max'])}, 0x{out_xor:02x}u, {pad}u"


def q8_conv2d_scratch_bytes(shape_in, shape_out, kernel, stride, pads) -> int:
    """= pz_conv_q8_scratch_bytes (conv_q8_m0.c) of an int8 conv2d: one window (k_h k_w C bytes, whole words), or
    where larger the row band (band_pitch) of a layer with runs k_w C <= 32 whose windows cross the border: k_h rows
    of the row's columns, each a whole number of words."""
    (h, w, c), (oh, ow) = shape_in, shape_out[:2]
    window = (kernel[0] * kernel[1] * c + 3) // 4 * 4
    cols, rows = (ow - 1) * stride[1] + kernel[1], (oh - 1) * stride[0] + kernel[0]
    pointwise = kernel == (1, 1) and stride == (1, 1) and pads == (0, 0) and w == ow
    border = pads[0] > 0 or pads[1] > 0 or rows > h or cols > w
    if pointwise or not border or kernel[1] * c > 32:
        return window
    return max(window, kernel[0] * ((cols * c + 3) // 4 * 4))


def in_flash(placement: dict[int, str]) -> frozenset[int]:
    """The spec indices whose weights a placement leaves in flash (not copied at boot, not staged)."""
    return frozenset(i for i, where in placement.items() if where == "flash")


def _q8_conv(lm, t, out_xor, in_flash=False):
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
        # = pz_conv_q8_scratch_bytes (dwconv_q8_m0.c dw_band_at): the accumulators of the largest group of pixels,
        # then a border band of its 3 x cols x C bytes
        n = 1 if stride[1] > 2 else 4 if shape_out[1] >= 4 else 2 if shape_out[1] == 3 and stride[1] == 2 \
            else shape_out[1]
        cols = (n - 1) * stride[1] + 3
        scratch = ((4 * max(n, 2) + 3 * cols) * shape_in[2] + 3) // 4 * 4 if kernel == (3, 3) else 0
    mult, shift = np.asarray(t["multiplier"], np.int32), np.asarray(t["shift"], np.int8)
    # the one-multiply output stage's records after the multipliers, where exact (firmware/requant.py)
    rec = requant.output_records(w, t["bias"], mult, shift, zp_in, int(lm["output_zero_point"]), int(lm["act_min"]),
                                 int(lm["act_max"]), -1 if depthwise else 0)
    layout = "dw" if depthwise else conv_layout.conv_weight_layout(w, shape_in, shape_out, stride, pads, zp_in,
                                                                   rec is not None, in_flash)
    if not depthwise:
        fb = conv_layout.folded_conv_bias(t["bias"], w, zp_in)
        # pw16 groups hold their channels' records (the kernel's weight pointer runs into them): no pz_l<i>_rq
        packed, bias = (conv_layout.pack_pw16(w, fb, rec) if layout == "pw16" else conv_layout.pack_conv8(w, fb)), None
        rec = None if layout == "pw16" or rec is None else conv_layout.conv8_records(rec, w.shape[0])
        kind, adapter = "PZ_K_Q8_CONV2D", "pz_run_q8_conv2d"
        scratch = q8_conv2d_scratch_bytes(shape_in, shape_out, kernel, stride, pads)
    rq = "NULL" if rec is None else f"pz_l{i}_rq"

    def render(q, scratch_expr, run=None):
        fields = (f"{_shape_c(shape_in, shape_out, kernel, stride, pads)}, pz_l{i}_w, "
                  f"{f'pz_l{i}_bias' if bias is not None else 'NULL'}, pz_l{i}_mult, pz_l{i}_shift, "
                  f"{_q8_scalars(lm, out_xor, (zp_in + 128) & 0xFF)}, {scratch_expr}, {rq}"
                  + f", {'0u' if depthwise else 'PZ_Q8_W_' + layout.upper()}")  # conv_layout.W_LAYOUT_CODES
        arrays = (f"/* layer {i}: int8 {lm['type']} {list(shape_in)} -> {list(shape_out)} */\n"
                  + c_array("uint8_t", f"pz_l{i}_w", packed, _hex, q, WEIGHTS_ALIGNED)
                  + (c_array("int32_t", f"pz_l{i}_bias", bias, _int, q) if bias is not None else "")
                  + c_array("int32_t", f"pz_l{i}_mult", mult, _int, q)
                  + c_array("int8_t", f"pz_l{i}_shift", shift, _int, q)
                  + (c_array("int32_t", f"pz_l{i}_rq", rec, _int, q) if rec is not None else "")
                  + _q8_conv_struct(i, fields, run) + "\n")
        return arrays, (f"{{{_plan_adapter(adapter, run)}, {kind}, {{in}}, {{out}}, pz_l{i}_w, NULL, "
                        f"&pz_l{i}_conv}}")
    nbytes = (packed.nbytes + mult.nbytes + shift.nbytes + (bias.nbytes if bias is not None else 0)
              + (rec.nbytes if rec is not None else 0))
    rows = Rows(lm["type"], tuple(shape_in), tuple(shape_out), kernel, stride, pads)
    # the M0+ kernels' order (OVERLAP_LOOKBACK); a depthwise kernel other than 3x3 runs the reference: not claimed
    overlap = None if depthwise and kernel != (3, 3) else rows.overlap_lead(overlap_lookback(rows))
    return Emitted(i, lm["type"], _elems(shape_in), _elems(shape_out), _elems(shape_out), scratch, False, nbytes,
                   shape_out[0] * shape_out[1], render, rows, planner.aligned(packed.nbytes),
                   _q8_group_bytes(layout, kernel, shape_in[2]), overlap)


def _q8_group_bytes(layout: str, kernel, channels: int) -> int:
    """Bytes of pz_l<i>_w per group of 8 output channels: a conv8 group (32 bytes of folded biases, then 8 bytes
    per window index), a pw16 group (32 bytes of lane starts, 16 bytes per input channel, 96 of records), or 8
    depthwise records ("dw": folded bias + the taps, 4-byte aligned). 0 for a depthwise kernel other than 3x3: the
    M0+ kernel hands those to the reference, which needs no scratch, so there is none to gather a channel range's
    input into (conv_layers.c q8_run)."""
    from compress import conv_layout

    if layout == "dw":
        return 8 * (4 + (kernel[0] * kernel[1] + 3) // 4 * 4) if tuple(kernel) == (3, 3) else 0
    if layout == "pw16":
        return conv_layout.pw16_group_bytes(channels)
    return 32 + 8 * ((kernel[0] * kernel[1] * channels + 3) // 4 * 4)


def _q8_conv_struct(i, fields: str, run: dict | None) -> str:
    """The layer's pz_q8_conv_t, or for a split or staged layer the pz_q8_conv_plan_t around it (conv_layers.h);
    run: its other fields as C expressions (generate)."""
    if run is None:
        return f"const pz_q8_conv_t pz_l{i}_conv = {{{fields}}};\n"
    rest = ", ".join(str(run[k]) for k in ("mid", "by_channels", "pass_c", "group_bytes", "scratch1", "stage",
                                            "stage_words", "part", "shared"))
    return f"const pz_q8_conv_plan_t pz_l{i}_conv = {{{{{fields}}}, {rest}}};\n"


def _plan_adapter(adapter: str, run) -> str:
    return adapter if run is None else adapter + "_plan"


def _q8_pool(lm, t, out_xor, in_flash=False):
    i, shape_in, shape_out = lm["index"], lm["in_shape"], lm["out_shape"]
    if lm["type"] == "global_avg_pool2d":
        kernel, stride, pads, stem, c_out = (1, 1), (1, 1), (0, 0), "gavg", (1, 1, shape_out[0])
    else:
        kernel, stride = tuple(lm["pool"]), tuple(lm["stride"])
        pads = _pads(shape_in, kernel, stride, lm.get("padding", "valid"))
        stem, c_out = ("max" if lm["type"] == "max_pool2d" else "avg"), shape_out

    def render(q, scratch_expr, run=None):
        fields = (f"{_shape_c(shape_in, c_out, kernel, stride, pads)}, NULL, NULL, NULL, NULL, 0, -128, 127, "
                  f"0x{out_xor:02x}u, 0u, NULL, NULL, 0u")
        return (_q8_conv_struct(i, fields, run),
                f"{{{_plan_adapter(f'pz_run_q8_{stem}pool', run)}, PZ_K_Q8_{stem.upper()}POOL, {{in}}, {{out}}, "
                f"NULL, NULL, &pz_l{i}_conv}}")
    rows = None if stem == "gavg" else Rows(lm["type"], tuple(shape_in), tuple(shape_out), kernel, stride, pads)
    return Emitted(i, lm["type"], _elems(shape_in), _elems(shape_out), _elems(shape_out), 0, pads == (0, 0), 0, 0,
                   render, rows)


def _q8_dense(lm, t, out_xor, in_flash=False):
    from compress import layout
    from firmware.codegen import Q8_KERNELS

    i = lm["index"]
    try:  # dense (interleave4), sparse (pairs) or shared (code3) storage, as the MLP firmware builds them
        kl = layout.kernel_layer(lm, {**t, "w": np.asarray(t["w"], np.int8)}, out_xor)
    except ValueError as e:
        raise ConvCodegenError(str(e)) from None
    n_in, n_out, storage = kl["n_in"], kl["n_out"], kl["storage"]
    kind, adapter = Q8_KERNELS[storage]
    tensors = [np.asarray(kl[k]) for k in ("w", "row_len", "codebook", "bias", "multiplier", "shift")
               if kl[k] is not None]
    row_len = f"pz_l{i}_rowlen" if kl["row_len"] is not None else "NULL"
    codebook = f"pz_l{i}_codebook" if kl["codebook"] is not None else "NULL"

    def render(q, scratch_expr, run=None):
        arrays = (f"/* layer {i}: int8 dense {n_in} -> {n_out}, {storage} storage */\n"
                  + c_array("uint8_t", f"pz_l{i}_w", kl["w"], _hex, q, WEIGHTS_ALIGNED)
                  + (c_array("uint16_t", row_len, kl["row_len"], _int, q) if kl["row_len"] is not None else "")
                  + (c_array("int8_t", codebook, kl["codebook"], _int, q) if kl["codebook"] is not None else "")
                  + c_array("int32_t", f"pz_l{i}_bias", kl["bias"], _int, q)
                  + c_array("int32_t", f"pz_l{i}_mult", kl["multiplier"], _int, q)
                  + c_array("int8_t", f"pz_l{i}_shift", kl["shift"], _int, q)
                  + f"const pz_q8_layer_t pz_l{i}_q = {{{n_in}u, {n_out}u, pz_l{i}_w, {row_len}, pz_l{i}_bias, "
                    f"pz_l{i}_mult, pz_l{i}_shift, {int(lm['output_zero_point'])}, {int(lm['act_min'])}, "
                    f"{int(lm['act_max'])}, 0x{out_xor:02x}u, {codebook}}};\n\n")
        return arrays, f"{{{adapter}, {kind}, {{in}}, {{out}}, pz_l{i}_w, pz_l{i}_bias, &pz_l{i}_q}}"
    return Emitted(i, "dense", n_in, n_out, n_out, 0, False, sum(a.nbytes for a in tensors), 1, render)


# op type -> (layer meta, tensors, out_xor, weights left in flash) -> Emitted
Q8_OPS = {"conv2d": _q8_conv, "depthwise_conv2d": _q8_conv, "max_pool2d": _q8_pool, "avg_pool2d": _q8_pool,
          "global_avg_pool2d": _q8_pool, "dense": _q8_dense}


def q8_ops(model, source, flash=frozenset()) -> list[Emitted]:
    """flash: the spec indices of layers whose weights stay in flash (read through the XIP cache: the weight layout
    depends on it, compress/conv_layout.conv_weight_layout)."""
    from compress import reference

    layers = [(lm, t) for lm, t in reference.qlayers(model) if lm["type"] != "flatten"]
    ops = []
    for n, (lm, t) in enumerate(layers):
        if lm["type"] not in Q8_OPS:
            raise ConvCodegenError(f"{source}: layer {lm['index']} int8 op {lm['type']!r} has no kernel")
        ops.append(Q8_OPS[lm["type"]](lm, t, 0x80 if n + 1 < len(layers) else 0, lm["index"] in flash))
    return ops


# -- the model --------------------------------------------------------------------------------------------------------
def is_image_model(model) -> bool:
    """A spec that starts with an input layer (NHWC images); v1 MLP specs start with a dense layer."""
    layers = getattr(model.spec, "layers", ())
    return bool(layers) and layers[0].kind == "input"


def network_ops(model, source, flash=frozenset()) -> tuple[list[Emitted], bool]:
    """(table entries before planning, int8?) for an image model; flash: as q8_ops (the placement, once decided:
    firmware/build.py decides it from the entries of the weights in SRAM)."""
    int8 = "quantization" in model.meta
    if not int8 and model.meta.get("dtype") != "float32":
        raise ConvCodegenError(f"{source}: dtype {model.meta.get('dtype')!r}: conv nets build in float32 or int8")
    ops = q8_ops(model, source, flash) if int8 else f32_ops(model, source)
    if not ops:
        raise ConvCodegenError(f"{source}: the network has no layer with a kernel")
    for op in ops:
        if max(op.in_elems, op.out_elems) > MAX_ELEMENTS:
            raise ConvCodegenError(f"{source}: layer {op.index} ({op.op}) has {max(op.in_elems, op.out_elems)} "
                                   f"elements; the layer table holds at most {MAX_ELEMENTS}")
    return ops, int8


@dataclass(frozen=True)
class Run:
    """How a layer runs beyond its kernel on one core: split between the cores (by output rows, or by groups of 8
    output channels when it has too few rows to balance), and/or its weights staged in passes of pass_c output
    channels. Its buffers follow one another in the step's scratch: core 0's kernel scratch, core 1's, the pass
    output `part`; the staged weights are the step's own buffer (planner.Step.stage_bytes)."""
    mid: int = 0               # row split: core 1's first output row
    by_channels: bool = False
    pass_c: int = 0            # staged: output channels per pass (out_c: one pass); 0: not staged
    scratch_each: int = 0      # aligned kernel scratch per core
    cores: int = 1
    part_bytes: int = 0        # pass outputs before the scatter (0: none)
    stage_bytes: int = 0
    shared: int = 0            # shared split (SHARED_SPLITS): the smallest share in units; 0: a static split

    @property
    def scratch_bytes(self) -> int:
        return self.cores * self.scratch_each + planner.aligned(self.part_bytes)


def split_rows(ops: list[Emitted], cores: int) -> dict[int, int]:
    """{spec index: first output row of core 1, or 0 for a split by output channels} of the layers a `cores`-core
    build runs on both cores: conv, depthwise and pool layers (int8) of at least SPLIT_MIN_MACS multiply-accumulates
    and two output rows, or (conv2d, 3x3 depthwise) two groups of 8 output channels. Such a layer splits its
    channels when that balances the cores better than its rows (few rows: a 3x3 output splits 1 + 2 rows, 256
    channels 128 + 128)."""
    if cores != 2:
        return {}
    out = {}
    for op in ops:
        r = op.rows
        if r is None or r.work() < SPLIT_MIN_MACS:
            continue
        groups = (r.out_shape[2] + 7) // 8
        by_channels = op.group_bytes and groups >= 2 and (groups + 1) // 2 / groups + 0.05 < r.row_balance()
        if by_channels:
            out[op.index] = 0
        elif r.out_shape[0] >= 2:
            out[op.index] = r.split_row()
    return out


def run_of(op: Emitted, split: dict[int, int], staged: dict[int, int]) -> Run | None:
    """The Run of op in a build whose split layers are `split` (split_rows) and whose staged layers are `staged`
    ({spec index: output channels per pass}); None for a layer that runs as it is."""
    if op.index not in split and op.index not in staged:
        return None
    two = op.index in split
    mid = split.get(op.index, 0)
    oh, ow, oc = op.rows.out_shape
    pass_c = staged.get(op.index, 0)
    channels = min(pass_c or oc, oc)
    by_channels, shared = two and mid == 0, 0
    if by_channels and op.group_bytes and ("staged" if pass_c else "channels") in SHARED_SPLITS:
        shared = 1
    elif two and op.group_bytes and not by_channels and "rows" in SHARED_SPLITS:
        shared = max(1, (oh * ow if op.rows.pointwise() else oh) // SHARE_GRAIN)
    part = oh * ow * channels if (channels < oc or by_channels) else 0
    stage = 0
    if pass_c:
        stage = op.stage_bytes if pass_c >= oc else pass_c // 8 * op.group_bytes
    scratch = planner.aligned(op.scratch_bytes)
    if part and op.op == "depthwise_conv2d":   # a channel range's input pixels, gathered after the kernel's scratch
        most = ((channels + 7) // 8 + 1) // 2 * 8 if by_channels else channels
        scratch += planner.aligned(op.rows.in_shape[0] * op.rows.in_shape[1] * most)
    return Run(mid, by_channels, pass_c, scratch, 2 if two else 1, part, stage, shared)


def staged_of(placement: dict[int, str], ops: list[Emitted]) -> dict[int, int]:
    """{spec index: output channels per pass} of the staged layers of a placement ("staged": the whole layer in
    one pass, "staged:N": passes of N output channels)."""
    out_c = {op.index: op.rows.out_shape[2] for op in ops if op.rows is not None}
    staged = {}
    for i, where in placement.items():
        if where == "staged" or where.startswith("staged:"):
            staged[i] = int(where.split(":")[1]) if ":" in where else out_c.get(i, 0)
    return staged


def steps_of(ops: list[Emitted], int8: bool, features: int, cores: int = 1, staged=None,
             float_input: bool = False) -> list[planner.Step]:
    """The planner's steps for the entries (a float model's first step turns raw pixels into floats; with
    float_input, the user's float32 values are normalised, and for int8 quantized, by a first step). A split layer
    (split_rows) gets a kernel scratch per core (and a pass output for a channel split) and never runs in place:
    core 1's first output rows would land on input rows core 0 still reads. A layer in `staged` ({spec index:
    channels per pass}) gets a buffer for a pass's weights. A layer one core runs in one pass keeps its overlap
    (OVERLAP_LOOKBACK)."""
    split = split_rows(ops, cores)
    staged = staged or {}
    steps = []
    for op in ops:
        run = run_of(op, split, staged)
        whole = op.index not in split and (run is None or run.pass_c >= op.rows.out_shape[2])
        steps.append(planner.Step(f"layer {op.index} {op.op}", op.out_bytes,
                                  run.scratch_bytes if run else op.scratch_bytes,
                                  op.in_place and op.index not in split, run.stage_bytes if run else 0,
                                  op.overlap if whole else None))
    if float_input:  # the user's floats: normalised (and for int8 quantized) by a first step
        steps.insert(0, planner.Step("input quantization" if int8 else "input normalisation",
                                     features if int8 else 4 * features))
    elif not int8:
        steps.insert(0, planner.Step("input scaling", 4 * features))
    return steps


def plan_steps(model, source, cores: int = 1, staged=None) -> tuple[list[Emitted], list[planner.Step], bool]:
    """The entries and the planner's steps (steps_of); plan them with planner.plan(steps, input_bytes(model))."""
    ops, int8 = network_ops(model, source)
    return ops, steps_of(ops, int8, int(model.meta["input"]["features"]), cores, staged, _float_input(model)), int8


def _float_input(model) -> bool:
    from firmware.codegen import float_input  # codegen imports this module
    return float_input(model)


def input_bytes(model) -> int:
    """Bytes of pz_input: one per raw pixel, or a float32 per value of the user's data."""
    return int(model.meta["input"]["features"]) * (4 if _float_input(model) else 1)


def plan(model, source, cores: int = 1, staged=None) -> planner.Plan:
    return planner.plan(plan_steps(model, source, cores, staged)[1], input_bytes(model))


def generate(model, source: str, placement: dict[int, str], header: str,
             cores: int = 1) -> tuple[dict[str, str], planner.Plan]:
    """model.h / model.c for an image model, and the activation plan. placement: spec index -> "flash" | "ram" |
    "staged" | "staged:N" (in flash, copied into an arena buffer before the layer runs, in passes of N output
    channels); cores: 2 splits the layers split_rows picks between the cores."""
    ops, int8 = network_ops(model, source, in_flash(placement))
    staged = staged_of(placement, ops)
    for op in ops:
        if op.index in staged and not (op.stage_bytes and (staged[op.index] >= op.rows.out_shape[2]
                                                           or (op.group_bytes and staged[op.index] % 8 == 0))):
            raise ConvCodegenError(f"{source}: layer {op.index} ({op.op}) cannot be staged in passes of "
                                   f"{staged[op.index]} channels: int8 conv2d and 3x3 depthwise_conv2d weights can "
                                   f"(passes of a multiple of 8), other depthwise_conv2d weights in one pass; place "
                                   f"it in flash or ram")
    split = split_rows(ops, cores)
    plan = planner.plan(steps_of(ops, int8, int(model.meta["input"]["features"]), cores, staged, _float_input(model)),
                        input_bytes(model))
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
        scratch_expr = f"pz_arena + {scratch}" if op.scratch_bytes else "NULL"
        run = run_of(op, split, staged)
        fields = None
        if run is not None:   # core 1's scratch, then the pass output, follow core 0's in the step's scratch
            two = run.cores == 2
            fields = {"mid": f"{run.mid}u", "by_channels": f"{int(run.by_channels)}u", "shared": f"{run.shared}u",
                      "pass_c": f"{run.pass_c or op.rows.out_shape[2]}u", "group_bytes": f"{op.group_bytes}u",
                      "scratch1": f"pz_arena + {scratch + run.scratch_each}" if two and op.scratch_bytes else "NULL",
                      "stage": (f"(uint32_t *)(void *)(pz_arena + {plan.stage[k + offset]})" if run.stage_bytes
                                else "NULL"),
                      "stage_words": f"{op.stage_bytes // 4}u",
                      "part": (f"pz_arena + {scratch + run.cores * run.scratch_each}" if run.part_bytes
                               else "NULL")}
        text, entry = op.render(q, scratch_expr, fields)
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
#include "conv_layers.h"
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
