"""The host model in plain NumPy: the reference the firmware and the emulator are compared against.

It computes in the model's own dtype (float32 or float64), starting from the raw features (uint8 pixels, or the
user's float32 values) normalised exactly as the firmware does (zoo/normalize.py: `x = raw * scale` or
`x = (raw - mean) * inv_std`), so differences with the chip come only from summation order.
"""

from __future__ import annotations

import numpy as np

from zoo.modeldir import SavedModel
from zoo.normalize import Normalization

# Chunks of rows keep the NHWC activations of big image nets (pd_mobilenet: 96x96 input) to a few hundred MB.
ROWS_PER_CHUNK = 256


def _pad(x, layer, value):
    """x (n, h, w, c) padded per the layer's padding rule (TensorFlow SAME: odd cell after)."""
    (top, bottom), (left, right) = layer.pads(x.shape[1:])
    if top == bottom == left == right == 0:
        return x
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _taps(x, layer, out_hw):
    """For each kernel tap (i, j): the input cells it reads for every output pixel, (n, oh, ow, c)."""
    (kh, kw), (sh, sw), _ = layer.window()
    oh, ow = out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]


def _conv2d(layer, p, x, out_shape):
    w = p["w"].astype(x.dtype)
    y = np.zeros((x.shape[0], *out_shape), x.dtype)
    for i, j, tap in _taps(_pad(x, layer, 0), layer, out_shape[:2]):
        y += tap @ w[i, j]
    return y + p["b"].astype(x.dtype)


def _depthwise_conv2d(layer, p, x, out_shape):
    w = p["w"].astype(x.dtype)
    y = np.zeros((x.shape[0], *out_shape), x.dtype)
    for i, j, tap in _taps(_pad(x, layer, 0), layer, out_shape[:2]):
        y += tap * w[i, j]
    return y + p["b"].astype(x.dtype)


def _max_pool2d(layer, p, x, out_shape):
    y = np.full((x.shape[0], *out_shape), -np.inf, x.dtype)
    for _, _, tap in _taps(_pad(x, layer, -np.inf), layer, out_shape[:2]):  # padding never wins
        np.maximum(y, tap, out=y)
    return y


def _avg_pool2d(layer, p, x, out_shape):
    y = np.zeros((x.shape[0], *out_shape), x.dtype)
    for _, _, tap in _taps(x, layer, out_shape[:2]):
        y += tap
    return y / x.dtype.type(layer.pool[0] * layer.pool[1])


def _batch_norm(layer, p, x, out_shape):
    g = p["gamma"].astype(x.dtype) / np.sqrt(p["var"].astype(x.dtype) + x.dtype.type(layer.eps))
    return (x - p["mean"].astype(x.dtype)) * g + p["beta"].astype(x.dtype)


# One NumPy function per layer type, (layer, params, x, output shape of one sample) -> y.
LAYER_FORWARD = {
    "input": lambda layer, p, x, shape: x.reshape(len(x), *shape),
    "dense": lambda layer, p, x, shape: x @ p["w"].astype(x.dtype) + p["b"].astype(x.dtype),
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise_conv2d,
    "max_pool2d": _max_pool2d,
    "avg_pool2d": _avg_pool2d,
    "global_avg_pool2d": lambda layer, p, x, shape: x.mean(axis=(1, 2), dtype=x.dtype),
    "flatten": lambda layer, p, x, shape: x.reshape(len(x), -1),
    "batch_norm": _batch_norm,
    "dropout": lambda layer, p, x, shape: x,
    "relu": lambda layer, p, x, shape: np.maximum(x, 0),
    "relu6": lambda layer, p, x, shape: np.clip(x, 0, 6),
    "sigmoid": lambda layer, p, x, shape: 1 / (1 + np.exp(-x)),
    "tanh": lambda layer, p, x, shape: np.tanh(x),
}


def forward(model: SavedModel, raw: np.ndarray) -> np.ndarray:
    """Outputs of the last layer for each row of raw features ((n, features) or (n, h, w, c))."""
    dtype = np.dtype(model.meta["dtype"])
    norm = Normalization.from_meta(model.meta["input"])
    raw = np.asarray(raw)
    shapes = model.spec.output_shapes()
    image = model.spec.layers[0].kind == "input"
    rows = ROWS_PER_CHUNK if image else max(len(raw), 1)  # flat nets: one matmul, as always
    chunks = []
    for start in range(0, max(len(raw), 1), rows):
        x = norm.apply(raw[start:start + rows], dtype)
        if x.ndim > 2 and not image:
            x = x.reshape(len(x), -1)
        for layer, p, shape in zip(model.spec.layers, model.params, shapes):
            x = LAYER_FORWARD[layer.kind](layer, p, x, shape).astype(dtype, copy=False)
        chunks.append(x)
    return np.concatenate(chunks)


def predict(model: SavedModel, outputs: np.ndarray) -> np.ndarray:
    if model.spec.output == "binary":
        return (outputs[..., 0] > 0.5).astype(np.int32)
    return np.argmax(outputs, axis=-1).astype(np.int32)


def reference(model: SavedModel, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(outputs, classes) of the model's own reference arithmetic: this float forward pass, or for int8 variants
    the integer-only golden model of the compress stage, which the firmware must match bit for bit."""
    if "quantization" in model.meta:
        from compress import reference as golden
        outputs = golden.forward(model, raw)
        return outputs, golden.predict(model, outputs)
    outputs = forward(model, raw)
    return outputs, predict(model, outputs)
