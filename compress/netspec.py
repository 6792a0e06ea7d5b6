"""The compress stage's view of a network: layer dicts (the spec's JSON form), their shapes, the float forward
pass with taps (calibration), and the inference-only rewrite (BatchNorm folded, Dropout dropped).

compress works on `[layer.to_dict() for layer in spec.layers]` so its int8 and pruning passes edit plain JSON
(a structured-pruned layer is a dict with smaller counts); `with_layers`/`to_spec` build the Sequential back, and
shapes and float layers come from zoo.nn and zoo.host, so there is one definition of each layer type.
"""

from __future__ import annotations

import numpy as np

WEIGHTED = ("dense", "conv2d", "depthwise_conv2d")
POOLS = ("max_pool2d", "avg_pool2d", "global_avg_pool2d")
FUSED_ACTIVATIONS = ("relu", "relu6")


def layer_dicts(spec) -> list[dict]:
    return [layer.to_dict() for layer in spec.layers]


def with_layers(spec, dicts):
    """The Sequential with these layer dicts (same output kind and format)."""
    from zoo.nn import Sequential

    d = spec.to_dict()
    d["layers"] = [dict(x) for x in dicts]
    return Sequential.from_dict(d)


def to_spec(dicts, output="logits"):
    """A Sequential from layer dicts (zoo.nn validates the chain; SpecError names the layer and the shapes)."""
    from zoo.nn import SPEC_FORMAT, Sequential

    return Sequential.from_dict({"format": SPEC_FORMAT, "output": output, "layers": [dict(d) for d in dicts]})


def in_shape(dicts) -> list[int]:
    return list(to_spec(dicts).input_shape)


def shapes(dicts) -> list[tuple[list[int], list[int]]]:
    """[(in_shape, out_shape)] per layer (zoo.nn.Sequential's shape rules)."""
    spec = to_spec(dicts)
    return [(list(i), list(o)) for i, o in zip(spec.input_shapes(), spec.output_shapes())]


# -- float forward (calibration): zoo.host's NumPy layers, in the input's dtype --------------------------------------
def float_forward(dicts, params, x, taps=()):
    """The float outputs of the layers in `taps` (indices) and of the last layer, for inputs x (n, features)."""
    from zoo.host import LAYER_FORWARD

    spec = to_spec(dicts)
    x = np.asarray(x)
    if spec.layers[0].kind != "input" and x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    outs = {}
    for i, (layer, p, shape) in enumerate(zip(spec.layers, params, spec.output_shapes())):
        p = {k: np.asarray(v) for k, v in p.items()}
        x = LAYER_FORWARD[layer.kind](layer, p, x, shape).astype(x.dtype, copy=False)
        if i in taps:
            outs[i] = x
    return outs, x


# -- the inference-only network -----------------------------------------------------------------------------------
def for_inference(spec, params):
    """(spec, params) with every batch_norm folded into the layer before it and every dropout removed
    (zoo.nn.for_inference), then every ReLU/ReLU6 after max pools moved before them (hoist_activations): the network
    the int8 passes and the firmware see. Unchanged when there is none of these."""
    from zoo.nn import for_inference as fold

    if any(d["type"] in ("batch_norm", "dropout") for d in layer_dicts(spec)):
        spec, params = fold(spec, params)
    return hoist_activations(spec, [dict(p) for p in params])


def hoist_activations(spec, params):
    """(spec, params) with each ReLU/ReLU6 that follows a run of max_pool2d layers moved before the run, where it
    then follows a weighted layer (fused into it by int8) or that layer's own ReLU/ReLU6 (the two merge: relu6 if
    either is). Exact: max commutes with a non-decreasing function, and a max pool's padding cells never win.
    Anything else is left for quantize.check_layers to refuse by name (an activation after an avg pool does not
    commute)."""
    from zoo.nn import ReLU, ReLU6, Sequential

    layers, kept = [], []
    for layer, p in zip(spec.layers, params):
        if layer.kind in FUSED_ACTIVATIONS and layers and layers[-1].kind == "max_pool2d":
            j = len(layers)
            while j > 1 and layers[j - 1].kind == "max_pool2d":
                j -= 1
            before = layers[j - 1].kind
            if before in WEIGHTED:
                layers.insert(j, layer)
                kept.insert(j, {})
                continue
            if before in FUSED_ACTIVATIONS and j >= 2 and layers[j - 2].kind in WEIGHTED:
                layers[j - 1] = ReLU6() if "relu6" in (before, layer.kind) else ReLU()
                continue
        layers.append(layer)
        kept.append(p)
    if len(layers) == len(spec.layers) and all(a is b for a, b in zip(layers, spec.layers)):
        return spec, kept
    return Sequential(layers, output=spec.output), kept
