"""The integer-only golden model: raw uint8 features in, the last layer's int8 outputs out.

It uses only the integer tensors (`q.layers.<i>.*`) and the integer fields of meta["quantization"]; the float scales
are never touched. Every firmware int8 kernel (reference, optimised, sparse) must reproduce it bit for bit:

    q_in  = raw - 128                                     (input zero point -128, exact)
    acc_j = bias_j + sum_k (q_in_k - zp_in) * w_jk        (int32; computed exactly)
    y_j   = clamp(round_half_up(acc_j * M0_j / 2^(31 + shift_j)) + zp_out, act_min, act_max)

Vectorised: the dot products run as float64 matrix products, exact because every partial sum is an integer far
below 2^53 (|acc| < 2^31 is checked), so 10,000 MNIST images take a fraction of a second.
"""

from __future__ import annotations

import numpy as np

from compress.quantize import INPUT_ZERO_POINT, requantize
from zoo.modeldir import SavedModel


class NotQuantizedError(ValueError):
    pass


def qlayers(model: SavedModel):
    """[(layer meta, int8 w (out, in), int32 bias, int32 multiplier, int8 shift)] for each dense layer."""
    qmeta = model.meta.get("quantization")
    if not qmeta:
        raise NotQuantizedError(f"model {model.meta.get('model')!r} has no 'quantization' metadata; "
                                f"create an int8 variant with `python -m compress DIR --quantize int8 --out OUT`")
    out = []
    for lm in qmeta["layers"]:
        i = lm["index"]
        t = [model.extra[f"q.layers.{i}.{name}"] for name in ("w", "bias", "multiplier", "shift")]
        out.append((lm, *t))
    return out


def dense_layer(q, w, bias, multiplier, shift, zp_in, zp_out, act_min, act_max):
    """One integer dense layer: int8 inputs q (n, in) -> int8 outputs (n, out) as an int64 array."""
    centred = (np.asarray(q, np.int64) - zp_in).astype(np.float64)
    acc = centred @ np.asarray(w).T.astype(np.float64) + np.asarray(bias).astype(np.float64)
    if np.any(np.abs(acc) >= 2**31):
        raise OverflowError("an accumulator exceeds int32")
    y = requantize(acc.astype(np.int64), multiplier, shift) + zp_out
    return np.clip(y, act_min, act_max)


def forward(model: SavedModel, raw: np.ndarray) -> np.ndarray:
    """int8 outputs (n, out) of the last dense layer for raw uint8 features (n, in) (or one row (in,))."""
    raw = np.asarray(raw)
    single = raw.ndim == 1
    q = (raw.reshape(1, -1) if single else raw).astype(np.int64) + INPUT_ZERO_POINT
    for lm, w, bias, mult, shift in qlayers(model):
        q = dense_layer(q, w, bias, mult, shift, lm["input_zero_point"], lm["output_zero_point"],
                        lm["act_min"], lm["act_max"])
    out = q.astype(np.int8)
    return out[0] if single else out


def predict(model: SavedModel, outputs: np.ndarray) -> np.ndarray:
    """Class per row: the argmax of the int8 outputs (the first maximum on ties, as the firmware's loop does)."""
    return np.argmax(np.asarray(outputs), axis=-1).astype(np.int32)


def dequantize_outputs(model: SavedModel, outputs: np.ndarray) -> np.ndarray:
    o = model.meta["quantization"]["output"]
    return o["scale"] * (np.asarray(outputs, np.float64) - o["zero_point"])
