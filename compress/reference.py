"""The integer-only golden model: raw uint8 features in, the last layer's int8 outputs out.

It uses only the integer tensors (`q.layers.<i>.*`) and the integer fields of meta["quantization"]; the float scales
are never touched. Every firmware int8 kernel (reference, optimised, sparse) must reproduce it bit for bit.
Activations are int8 values held in int64 arrays, NHWC (n, h, w, c) for images and (n, features) for vectors.

    q_in  = raw - 128                                     (input zero point -128, exact)
    dense:      acc_j = bias_j + sum_k (q_k - zp_in) * w_jk
    conv2d:     acc_k = bias_k + sum over the window and channels (q - zp_in) * w[k, dy, dx, c]
    depthwise:  acc_c = bias_c + sum over the window (q[.., c] - zp_in) * w[dy, dx, c]
                (padding cells hold zp_in, so they contribute 0)
    then        y = clamp(round_half_up(acc * M0 / 2^(31 + shift)) + zp_out, act_min, act_max)
    max pool:   max of the int8 values in the window (padding cells never win)
    avg pool, global average pool: s = sum of the stored int8 values, n = cells,
                y = clamp(round_half_away_from_zero(s / n), -128, 127)
    flatten:    (n, h, w, c) -> (n, h*w*c), row-major h, w, c

One function per op type in `OPS` (the registry every caller dispatches through). Vectorised: dense and conv2d dot
products run as float64 matrix products (conv2d on im2col patches, a bounded number of images at a time), exact
because every partial sum is an integer far below 2^53 (|acc| < 2^31 is checked); depthwise sums run in int64.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from compress.quantize import QMAX, QMIN, input_q, requantize
from zoo.modeldir import SavedModel

WEIGHTED_OPS = ("dense", "conv2d", "depthwise_conv2d")
PATCH_ELEMENTS = 1 << 22  # im2col patch elements per chunk of images (32 MiB of float64)
_NEVER_WINS = -(1 << 20)  # max-pool padding value, below every int8


class NotQuantizedError(ValueError):
    pass


class GoldenModelError(ValueError):
    """The int8 tensors or metadata do not describe a computable network; the message names the layer."""


# -- window geometry (shared with compress.quantize's float forward) ----------------------------------------------
def axis_geometry(size: int, k: int, s: int, padding: str) -> tuple[int, int, int]:
    """(out, pad_before, pad_after) along one axis, TensorFlow's rule (docs/MODEL_FORMAT.md)."""
    if padding == "valid":
        if size < k:
            raise GoldenModelError(f"window {k} is larger than the input size {size} with padding 'valid'")
        return (size - k) // s + 1, 0, 0
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        return out, total // 2, total - total // 2
    raise GoldenModelError(f"padding {padding!r}: use 'same' or 'valid'")


def windows(x: np.ndarray, kernel, stride, padding: str, fill) -> np.ndarray:
    """(n, oh, ow, kh, kw, c) windows of x (n, h, w, c), padded with `fill` (a view where no padding is needed)."""
    _, h, w, _ = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, top, bottom = axis_geometry(h, kh, sh, padding)
    ow, left, right = axis_geometry(w, kw, sw, padding)
    if top or bottom or left or right:
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    v = sliding_window_view(x, (kh, kw), axis=(1, 2))  # (n, h', w', c, kh, kw)
    return v[:, ::sh, ::sw][:, :oh, :ow].transpose(0, 1, 2, 4, 5, 3)


def round_div_away(s: np.ndarray, n: int) -> np.ndarray:
    """round-half-away-from-zero(s / n) for int64 s and n > 0: `s >= 0 ? (s + n/2) / n : -((-s + n/2) / n)`."""
    s = np.asarray(s, np.int64)
    half = n // 2
    return np.where(s >= 0, (s + half) // n, -((-s + half) // n))


def _finish(acc, t, lm):
    if np.any(np.abs(acc) >= 2**31):
        raise OverflowError(f"layer {lm['index']} ({lm['type']}): an accumulator exceeds int32")
    y = requantize(np.asarray(acc).astype(np.int64), t["multiplier"], t["shift"]) + lm["output_zero_point"]
    return np.clip(y, lm["act_min"], lm["act_max"])


# -- the ops ------------------------------------------------------------------------------------------------------
def dense_layer(q, w, bias, multiplier, shift, zp_in, zp_out, act_min, act_max):
    """One integer dense layer: int8 inputs q (n, in) -> int8 outputs (n, out) as an int64 array."""
    centred = (np.asarray(q, np.int64) - zp_in).astype(np.float64)
    acc = centred @ np.asarray(w).T.astype(np.float64) + np.asarray(bias).astype(np.float64)
    if np.any(np.abs(acc) >= 2**31):
        raise OverflowError("an accumulator exceeds int32")
    y = requantize(acc.astype(np.int64), multiplier, shift) + zp_out
    return np.clip(y, act_min, act_max)


def _dense(q, lm, t):
    return dense_layer(q, t["w"], t["bias"], t["multiplier"], t["shift"], lm["input_zero_point"],
                       lm["output_zero_point"], lm["act_min"], lm["act_max"])


def _conv2d(q, lm, t):
    w = np.asarray(t["w"])  # (K, kh, kw, C), OHWI
    k_out = w.shape[0]
    wm = w.reshape(k_out, -1).T.astype(np.float64)  # (kh*kw*C, K), rows in (dy, dx, c) order like the patches
    bias = np.asarray(t["bias"]).astype(np.float64)
    centred = (q - lm["input_zero_point"]).astype(np.float64)  # padding 0 here = padding zp_in before centring
    n, h, wd, c = q.shape
    (kh, kw), (sh, sw) = lm["kernel"], lm["stride"]
    oh = axis_geometry(h, kh, sh, lm["padding"])[0]
    ow = axis_geometry(wd, kw, sw, lm["padding"])[0]
    chunk = max(1, PATCH_ELEMENTS // max(1, oh * ow * wm.shape[0]))
    out = []
    for start in range(0, n, chunk):
        patches = windows(centred[start:start + chunk], lm["kernel"], lm["stride"], lm["padding"], 0)
        m = patches.shape[0]
        acc = patches.reshape(m * oh * ow, -1) @ wm + bias
        out.append(_finish(acc, t, lm).reshape(m, oh, ow, k_out))
    return np.concatenate(out) if out else np.zeros((0, oh, ow, k_out), np.int64)


def _depthwise_conv2d(q, lm, t):
    w = np.asarray(t["w"], np.int64)  # (kh, kw, C)
    win = windows(q - lm["input_zero_point"], lm["kernel"], lm["stride"], lm["padding"], 0)
    acc = np.zeros(win.shape[:3] + (w.shape[2],), np.int64) + np.asarray(t["bias"], np.int64)
    for dy in range(w.shape[0]):
        for dx in range(w.shape[1]):
            acc += win[:, :, :, dy, dx, :] * w[dy, dx]
    return _finish(acc, t, lm)


def _pool_taps(q, lm, fill):
    """For each pool tap: the (n, oh, ow, c) cells it reads (strided views; one pass per tap is much faster than
    reducing over a 6-D window view)."""
    win = windows(q, lm["pool"], lm["stride"], lm.get("padding", "valid"), fill)
    for dy in range(win.shape[3]):
        for dx in range(win.shape[4]):
            yield win[:, :, :, dy, dx, :]


def _max_pool2d(q, lm, t):
    taps = _pool_taps(q, lm, _NEVER_WINS)
    y = np.array(next(taps))
    for tap in taps:
        np.maximum(y, tap, out=y)
    return np.clip(y, QMIN, QMAX)


def _avg_pool2d(q, lm, t):
    if lm.get("padding", "valid") != "valid":
        raise GoldenModelError(f"layer {lm['index']} (avg_pool2d): padding {lm['padding']!r}; int8 average "
                               f"pooling supports 'valid' only")
    ph, pw = lm["pool"]
    taps = _pool_taps(q, lm, 0)
    s = np.array(next(taps))
    for tap in taps:
        s += tap
    return np.clip(round_div_away(s, ph * pw), QMIN, QMAX)


def _global_avg_pool2d(q, lm, t):
    n, h, w, c = q.shape
    return np.clip(round_div_away(q.sum(axis=(1, 2)), h * w), QMIN, QMAX)


def _flatten(q, lm, t):
    return q.reshape(q.shape[0], -1)


OPS = {
    "dense": _dense,
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise_conv2d,
    "max_pool2d": _max_pool2d,
    "avg_pool2d": _avg_pool2d,
    "global_avg_pool2d": _global_avg_pool2d,
    "flatten": _flatten,
}


# -- the model ----------------------------------------------------------------------------------------------------
def layer_entry(lm: dict) -> dict:
    """A meta["quantization"]["layers"] entry with `type`, `in_shape` and `out_shape` filled in (format 1 entries are
    dense-only: {"index", "in", "out", ...})."""
    if "type" in lm:
        return lm
    return {**lm, "type": "dense", "in_shape": [lm["in"]], "out_shape": [lm["out"]]}


def qlayers(model: SavedModel):
    """[(layer meta, {tensor name: array})] for each int8 op, in order (weighted ops: w, bias, multiplier, shift)."""
    qmeta = model.meta.get("quantization")
    if not qmeta:
        raise NotQuantizedError(f"model {model.meta.get('model')!r} has no 'quantization' metadata; "
                                f"create an int8 variant with `python -m compress DIR --quantize int8 --out OUT`")
    out = []
    for lm in qmeta["layers"]:
        lm = layer_entry(lm)
        if lm["type"] not in OPS:
            raise GoldenModelError(f"layer {lm.get('index')}: int8 op type {lm['type']!r} is unknown; known: "
                                   f"{', '.join(OPS)}")
        tensors = {}
        if lm["type"] in WEIGHTED_OPS:
            i = lm["index"]
            tensors = {name: model.extra[f"q.layers.{i}.{name}"] for name in ("w", "bias", "multiplier", "shift")}
        out.append((lm, tensors))
    return out


def run_ops(layers, q: np.ndarray) -> np.ndarray:
    """Apply [(layer meta, tensors)] to int8 activations q (n, *in_shape of the first op), checking every shape."""
    for lm, t in layers:
        if list(q.shape[1:]) != list(lm["in_shape"]):
            raise GoldenModelError(f"layer {lm['index']} ({lm['type']}): input shape {list(q.shape[1:])}, the "
                                   f"metadata says {lm['in_shape']}")
        q = OPS[lm["type"]](q, lm, t)
        if list(q.shape[1:]) != list(lm["out_shape"]):
            raise GoldenModelError(f"layer {lm['index']} ({lm['type']}): output shape {list(q.shape[1:])}, the "
                                   f"metadata says {lm['out_shape']}")
    return q


def forward(model: SavedModel, raw: np.ndarray) -> np.ndarray:
    """int8 outputs (n, out) of the last op for raw uint8 features: (n, features) or (n, h, w, c) for image models,
    or one sample ((features,) or (h, w, c))."""
    layers = qlayers(model)
    in_shape = tuple(layers[0][0]["in_shape"])
    raw = np.asarray(raw)
    single = raw.ndim == 1 or (len(in_shape) > 1 and raw.shape == in_shape)
    if raw.size % int(np.prod(in_shape)) or (raw.ndim > 1 and not single
                                             and int(np.prod(raw.shape[1:])) != int(np.prod(in_shape))):
        raise GoldenModelError(f"raw features of shape {raw.shape} do not match the model input {list(in_shape)}")
    q = input_q(model, raw.reshape(-1, int(np.prod(in_shape)))).reshape((-1,) + in_shape)  # compress/quantize.py
    out = run_ops(layers, q).reshape(q.shape[0], -1).astype(np.int8)
    return out[0] if single else out


def predict(model: SavedModel, outputs: np.ndarray) -> np.ndarray:
    """Class per row: the argmax of the int8 outputs (the first maximum on ties, as the firmware's loop does)."""
    return np.argmax(np.asarray(outputs), axis=-1).astype(np.int32)


def dequantize_outputs(model: SavedModel, outputs: np.ndarray) -> np.ndarray:
    o = model.meta["quantization"]["output"]
    return o["scale"] * (np.asarray(outputs, np.float64) - o["zero_point"])
