"""Trained weight sharing (Han et al. 2016, "Deep Compression", section 3): every dense layer's non-zero weights
take one of at most `levels` shared values, fine-tuned with the network (the conv layers of a conv net keep their
per-channel int8 weights, fake-quantized as --qat trains them); the firmware then stores a 3-bit code and
a 5-bit index gap per weight in one byte (compress/layout.py, "code3").

In int8 terms (the golden model does not change): a layer's int8 weights are codebook[code], one codebook of
integers in [-127, 127] per layer, scaled per output channel as before (w_jk = s_j * codebook[a_jk]) or, with
`per_layer_scale`, by one scale for the whole layer.

1. Units: u_jk = w_jk / s_j with s_j = max_k |w_jk| / 127 (per-channel) or s = max |w| / 127 (per layer), so
   u is in int8 units.
2. Codebook: 1-D k-means over the layer's non-zero u, centroids initialised evenly between min and max (Han et al.
   found linear initialisation best for keeping the rare large weights), Lloyd iterations until assignments settle.
3. Fine-tuning: the assignments stay fixed and the centroids (held in units of 127, so one learning rate suits them
   and the biases) are trained with the biases through `SharedSpec`,
   a spec whose forward pass builds each weight matrix from its codebook, with int8 fake quantization of biases and
   activations; the gradient of a centroid is the sum of its weights' gradients (autodiff through the gather).
4. Export: centroids are rounded to integers; the int8 weights are codebook[a] (0 where pruned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from compress.finetune import fake_quant_act, straight_through
from compress.quantize import WMAX
from zoo.nn import Dense

KMEANS_ITERATIONS = 100


def channel_scales(w_in_out: np.ndarray, per_layer: bool) -> np.ndarray:
    """(out,) scales s with |w / s| <= 127: per output channel, or one value for the whole layer."""
    amax = np.abs(np.asarray(w_in_out, np.float64))
    amax = np.full(amax.shape[1], amax.max()) if per_layer else amax.max(axis=0)
    return np.where(amax > 0, amax / WMAX, 1.0 / WMAX)


def kmeans_1d(values: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (k,), assignment per value) of a deterministic 1-D k-means with linear initialisation.

    k = min(levels, number of distinct values); empty clusters keep their previous centroid."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    k = min(levels, np.unique(v).size)
    c = np.linspace(v.min(), v.max(), k)
    a = np.zeros(v.size, np.int64)
    for _ in range(KMEANS_ITERATIONS):
        edges = (c[1:] + c[:-1]) / 2  # centroids stay sorted in 1-D, so nearest = bucket between midpoints
        new = np.searchsorted(edges, v)
        counts = np.bincount(new, minlength=k)
        sums = np.bincount(new, weights=v, minlength=k)
        c = np.where(counts > 0, sums / np.maximum(counts, 1), c)
        if np.array_equal(new, a):
            break
        a = new
    return c, a


@dataclass(frozen=True)
class SharedLayer:
    index: int  # position in spec.layers
    assign: np.ndarray  # (in, out) int32: code in [0, k) or k for a pruned weight (its value is 0)
    scales: np.ndarray  # (out,) float


def build(spec, params, levels: int, per_layer_scale: bool):
    """(shared layers, trainable params): params keep "b" and replace "w" by the centroids "c" (int8 units / 127)."""
    layers, new_params = [], [dict(p) for p in params]
    for i, layer in enumerate(spec.layers):
        if not isinstance(layer, Dense):
            continue
        w = np.asarray(params[i]["w"], np.float64)
        s = channel_scales(w, per_layer_scale)
        u = w / s[None, :]
        nz = w != 0
        c, a = kmeans_1d(u[nz], levels)
        assign = np.full(w.shape, len(c), np.int32)
        assign[nz] = a
        layers.append(SharedLayer(i, assign, s))
        new_params[i] = {"c": np.asarray(c / WMAX, np.float32), "b": np.asarray(params[i]["b"], np.float32)}
    return tuple(layers), new_params


def weights(layer: SharedLayer, c):
    """The float (in, out) weight matrix of codebook c (in units of 127, NumPy or JAX)."""
    xp = jnp if isinstance(c, jax.Array) else np
    padded = xp.concatenate([c, xp.zeros(1, c.dtype)])
    return padded[layer.assign] * xp.asarray(layer.scales * WMAX, c.dtype)[None, :]


@dataclass(frozen=True, eq=False)
class SharedSpec:
    """The spec's forward pass with codebook weights; with `ranges`, biases and activations are int8 fake-quantized
    (as compress.finetune.FakeQuantSpec does) and the centroids are rounded to integers (straight-through)."""
    spec: Any
    layers: tuple
    ranges: tuple | None
    input_scale: float

    @property
    def output(self):
        return self.spec.output

    def apply(self, params, x):
        from compress.finetune import fake_quant_weight
        from compress.netspec import FUSED_ACTIVATIONS, WEIGHTED

        by_index = {sl.index: sl for sl in self.layers}
        layers, quant = self.spec.layers, self.ranges is not None
        n, s_in, fused = 0, self.input_scale, False
        for i, (layer, p) in enumerate(zip(layers, params)):
            if fused:  # the ReLU/ReLU6 was applied with the weighted layer before it
                fused = False
                continue
            if layer.kind not in WEIGHTED:  # input, flatten, pools
                x = layer.apply(p, x)
                continue
            if i in by_index:  # a shared dense layer: its weights come from the codebook
                sl = by_index[i]
                c = p["c"]
                if quant:
                    c = straight_through(c, jnp.clip(jnp.round(c * WMAX), -WMAX, WMAX) / WMAX)
                w, scales = weights(sl, c), jnp.asarray(sl.scales, x.dtype)
            elif quant:  # a conv layer of a conv net: per-channel int8 weights, as --qat trains them
                w, s_w = fake_quant_weight(p["w"])
                scales = jax.lax.stop_gradient(s_w.reshape(-1))
            else:
                w = p["w"]
            b = p["b"]
            if quant:
                bs = scales * s_in
                b = straight_through(b, jnp.round(b / bs) * bs)
            x = layer.apply({"w": w, "b": b}, x)
            if i + 1 < len(layers) and layers[i + 1].kind in FUSED_ACTIVATIONS:
                x = layers[i + 1].apply({}, x)
                fused = True
            if quant:
                scale, zp = self.ranges[n]
                x = fake_quant_act(x, scale, zp)
                s_in = scale
            n += 1
        return x

    def predict(self, params, x):
        return jnp.argmax(self.apply(params, x), axis=-1)


def float_params(layers, params):
    """Ordinary (in, out) weights and biases of the shared model."""
    out = [dict(p) for p in params]
    for sl in layers:
        p = params[sl.index]
        out[sl.index] = {"w": weights(sl, np.asarray(p["c"], np.float64)).astype(np.float32),
                         "b": np.asarray(p["b"], np.float32)}
    return out


def int8_weights(layers, params):
    """{layer index: (int8 (out, in) weights, (out,) scales)} with the centroids rounded to integers."""
    result = {}
    for sl in layers:
        c = np.clip(np.rint(np.asarray(params[sl.index]["c"], np.float64) * WMAX), -WMAX, WMAX).astype(np.int64)
        padded = np.concatenate([c, [0]])
        result[sl.index] = (padded[sl.assign].T.astype(np.int8).copy(), np.asarray(sl.scales, np.float64))
    return result
