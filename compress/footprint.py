"""model_bytes: every byte the firmware stores for a model (weights, indices, scales, biases), per layer type.

int8 dense layers are counted by their storage (compress.layout.int8_layer_bytes: interleave4, pairs or code3).
int8 conv2d and depthwise_conv2d layers are stored dense: one byte per weight (OHWI / (kh, kw, C) as quantized),
an int32 bias, an int32 multiplier and an int8 shift per output channel, plus the per-layer scalars (zero point,
act_min, act_max, offset byte) as for dense. Pools and flatten store nothing. A float model stores w and b of each
weighted layer in its dtype (a BatchNorm is folded into them by the firmware, so it adds nothing).
"""

from __future__ import annotations

import numpy as np

from compress import layout
from compress.netspec import WEIGHTED, layer_dicts


def _int8_conv_bytes(wq: np.ndarray) -> dict:
    channels = wq.shape[0] if wq.ndim == 4 else wq.shape[-1]
    parts = {"weights": int(wq.size), "indices": 0, "biases": 4 * channels,
             "scales": 5 * channels + layout.SCALAR_BYTES_PER_LAYER}
    return {**parts, "total": sum(parts.values())}


INT8_LAYER_BYTES = {
    "dense": lambda lm, wq: layout.int8_layer_bytes(wq, lm.get("storage", "dense")),
    "conv2d": lambda lm, wq: _int8_conv_bytes(wq),
    "depthwise_conv2d": lambda lm, wq: _int8_conv_bytes(wq),
}


def model_bytes(saved) -> dict:
    """{"weights", "indices", "biases", "scales", "total"} summed over the layers (docs/COMPRESS.md)."""
    parts = []
    q = saved.meta.get("quantization")
    if q:
        for lm in q["layers"]:
            kind = lm.get("type", "dense")
            if kind in INT8_LAYER_BYTES:
                parts.append(INT8_LAYER_BYTES[kind](lm, saved.extra[f"q.layers.{lm['index']}.w"]))
    else:
        for i, d in enumerate(layer_dicts(saved.spec)):
            if d["type"] in WEIGHTED:
                parts.append(layout.float_layer_bytes(saved.params[i]["w"], saved.params[i]["b"]))
    return layout.total(parts)
