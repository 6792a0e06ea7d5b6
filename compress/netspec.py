"""The compress stage's view of a network: layer dicts (the spec's JSON form), their shapes, a float NumPy forward
pass per layer type, and the inference-only rewrite (BatchNorm folded, Dropout dropped).

compress works on `[layer.to_dict() for layer in spec.layers]` so its int8 and pruning passes need nothing from a
layer class but its JSON; `with_layers` builds the Sequential back. Shapes follow docs/MODEL_FORMAT.md: one sample
is (h, w, c) for images, (features,) for vectors; `in_shape` is the first layer's input ((h, w, c) from an `input`
layer, else the first dense layer's `in`).
"""

from __future__ import annotations

import numpy as np

from compress.reference import GoldenModelError, axis_geometry, windows

WEIGHTED = ("dense", "conv2d", "depthwise_conv2d")
POOLS = ("max_pool2d", "avg_pool2d", "global_avg_pool2d")
FUSED_ACTIVATIONS = ("relu", "relu6")
RELU6_MAX = 6.0


class SpecShapeError(ValueError):
    pass


def layer_dicts(spec) -> list[dict]:
    return [layer.to_dict() for layer in spec.layers]


def with_layers(spec, dicts):
    """The Sequential with these layer dicts (same output kind and format)."""
    from zoo.nn import Sequential

    d = spec.to_dict()
    d["layers"] = [dict(x) for x in dicts]
    return Sequential.from_dict(d)


def in_shape(dicts) -> list[int]:
    if dicts and dicts[0]["type"] == "input":
        return list(dicts[0]["shape"])
    for d in dicts:
        if d["type"] == "dense":
            return [int(d["in"])]
        if d["type"] in ("conv2d", "depthwise_conv2d") or d["type"] in POOLS:
            raise SpecShapeError(f"layer {dicts.index(d)} ({d['type']}) needs an image input; the spec has no "
                                 f"'input' layer giving (h, w, c)")
    raise SpecShapeError("the spec has neither an 'input' layer nor a dense layer, so its input size is unknown")


def _pair(v):
    return [int(v), int(v)] if np.isscalar(v) else [int(x) for x in v]


def out_shape(d: dict, shape: list[int], index: int) -> list[int]:
    """One layer's output shape for an input of `shape`; SpecShapeError names the layer and the shapes."""
    t = d["type"]

    def need(rank):
        if len(shape) != rank:
            raise SpecShapeError(f"layer {index} ({t}) needs a rank-{rank} input, got shape {shape}")

    if t == "input":
        return list(d["shape"])
    if t == "dense":
        need(1)
        if shape[0] != d["in"]:
            raise SpecShapeError(f"layer {index} (dense) takes {d['in']} inputs, got shape {shape}")
        return [int(d["out"])]
    if t in ("conv2d", "depthwise_conv2d", "max_pool2d", "avg_pool2d"):
        need(3)
        channels = d["in"] if t == "conv2d" else d.get("channels", shape[2])
        if shape[2] != channels:
            raise SpecShapeError(f"layer {index} ({t}) takes {channels} channels, got shape {shape}")
        k = _pair(d["pool"] if "pool" in d else d["kernel"])
        s = _pair(d.get("stride", k))
        pad = d.get("padding", "valid")
        try:
            oh = axis_geometry(shape[0], k[0], s[0], pad)[0]
            ow = axis_geometry(shape[1], k[1], s[1], pad)[0]
        except GoldenModelError as e:
            raise SpecShapeError(f"layer {index} ({t}) on input shape {shape}: {e}") from None
        return [oh, ow, int(d["out"]) if t == "conv2d" else shape[2]]
    if t == "global_avg_pool2d":
        need(3)
        return [shape[2]]
    if t == "flatten":
        return [int(np.prod(shape))]
    return list(shape)  # activations, dropout, batch_norm


def shapes(dicts) -> list[tuple[list[int], list[int]]]:
    """[(in_shape, out_shape)] per layer."""
    shape, out = in_shape(dicts), []
    for i, d in enumerate(dicts):
        o = out_shape(d, shape, i)
        out.append((shape, o))
        shape = o
    return out


# -- float forward (calibration and the float view), NumPy, in the params' dtype -----------------------------------
def _conv2d(d, p, x):
    w = np.asarray(p["w"])
    k = _pair(d["kernel"])
    patches = windows(x, k, _pair(d["stride"]), d["padding"], 0)
    n, oh, ow = patches.shape[:3]
    y = patches.reshape(n * oh * ow, -1) @ w.reshape(-1, w.shape[-1]).astype(x.dtype)
    return y.reshape(n, oh, ow, -1) + np.asarray(p["b"]).astype(x.dtype)


def _depthwise(d, p, x):
    w = np.asarray(p["w"]).astype(x.dtype)
    win = windows(x, _pair(d["kernel"]), _pair(d["stride"]), d["padding"], 0)
    return np.einsum("nhwijc,ijc->nhwc", win, w) + np.asarray(p["b"]).astype(x.dtype)


def _max_pool(d, p, x):
    k = _pair(d["pool"])
    return windows(x, k, _pair(d.get("stride", k)), d.get("padding", "valid"), -np.inf).max(axis=(3, 4))


def _avg_pool(d, p, x):
    k = _pair(d["pool"])
    return windows(x, k, _pair(d.get("stride", k)), "valid", 0).mean(axis=(3, 4))


FLOAT_OPS = {
    "input": lambda d, p, x: x.reshape((x.shape[0],) + tuple(d["shape"])),
    "dense": lambda d, p, x: x @ np.asarray(p["w"]).astype(x.dtype) + np.asarray(p["b"]).astype(x.dtype),
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "max_pool2d": _max_pool,
    "avg_pool2d": _avg_pool,
    "global_avg_pool2d": lambda d, p, x: x.mean(axis=(1, 2)),
    "flatten": lambda d, p, x: x.reshape(x.shape[0], -1),
    "relu": lambda d, p, x: np.maximum(x, 0),
    "relu6": lambda d, p, x: np.clip(x, 0, RELU6_MAX),
    "dropout": lambda d, p, x: x,
    "sigmoid": lambda d, p, x: 1 / (1 + np.exp(-x)),
    "tanh": lambda d, p, x: np.tanh(x),
}


def float_forward(dicts, params, x, taps=()):
    """The float outputs of the layers in `taps` (indices) and of the last layer, for inputs x (n, features)."""
    x = np.asarray(x)
    if dicts[0]["type"] != "input" and x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    outs = {}
    for i, (d, p) in enumerate(zip(dicts, params)):
        if d["type"] not in FLOAT_OPS:
            raise SpecShapeError(f"layer {i}: type {d['type']!r} has no float forward in compress (fold it first)")
        x = FLOAT_OPS[d["type"]](d, p, x)
        if i in taps:
            outs[i] = x
    return outs, x


# -- the inference-only network -----------------------------------------------------------------------------------
def for_inference(spec, params):
    """(spec, params) with every batch_norm folded into the layer before it (zoo.nn.fold_batchnorm) and every
    dropout removed: the network the int8 passes and the firmware see. Unchanged when there is neither."""
    dicts = layer_dicts(spec)
    params = [dict(p) for p in params]
    if any(d["type"] == "batch_norm" for d in dicts):
        from zoo.nn import fold_batchnorm

        spec, params = fold_batchnorm(spec, params)
        params = [dict(p) for p in params]
        dicts = layer_dicts(spec)
    if any(d["type"] == "dropout" for d in dicts):
        keep = [i for i, d in enumerate(dicts) if d["type"] != "dropout"]
        spec = with_layers(spec, [dicts[i] for i in keep])
        params = [params[i] for i in keep]
    return spec, params
