"""The host model in plain NumPy: the reference the firmware and the emulator are compared against.

It computes in the model's own dtype (float32 or float64), starting from the raw uint8 features exactly as the
firmware does (`x = raw * input_scale`), so differences with the chip come only from summation order.
"""

from __future__ import annotations

import numpy as np

from zoo.modeldir import SavedModel

_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
}


def forward(model: SavedModel, raw: np.ndarray) -> np.ndarray:
    """Outputs of the last layer for each row of raw uint8 features."""
    dtype = np.dtype(model.meta["dtype"])
    x = np.asarray(raw).astype(dtype) * dtype.type(model.meta["input"]["scale"])
    for layer, p in zip(model.spec.layers, model.params):
        if layer.kind == "dense":
            x = x @ p["w"].astype(dtype) + p["b"].astype(dtype)
        else:
            x = _ACTIVATIONS[layer.kind](x).astype(dtype)
    return x


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
