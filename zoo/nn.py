"""A small functional layer spec: layers are data, params are plain pytrees.

`Sequential([Dense(784, 300), ReLU(), Dense(300, 10)])` describes a network; `init(key)` returns its params (a list
with one dict per layer: `{"w": (in, out), "b": (out,)}` for Dense, `{}` for activations) and `apply(params, x)` runs
it. The spec serialises to JSON and back exactly (`to_json` / `from_json`); firmware code generation reads that JSON,
so its format is written down in docs/MODEL_FORMAT.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import jax
import jax.numpy as jnp

SPEC_FORMAT = "picozoo.sequential/1"
OUTPUT_KINDS = ("logits", "binary")  # logits: class = argmax; binary: one sigmoid unit, class = (y > 0.5)


class SpecError(ValueError):
    """A spec that cannot describe a network we can run."""


@dataclass(frozen=True)
class Dense:
    in_features: int
    out_features: int
    kind = "dense"

    def init(self, key, dtype):
        # He-uniform for ReLU networks; it also trains the small sigmoid XOR net reliably.
        bound = jnp.sqrt(6.0 / self.in_features)
        w = jax.random.uniform(key, (self.in_features, self.out_features), dtype, -bound, bound)
        return {"w": w, "b": jnp.zeros((self.out_features,), dtype)}

    def apply(self, params, x):
        return x @ params["w"] + params["b"]

    def to_dict(self):
        return {"type": self.kind, "in": self.in_features, "out": self.out_features}


@dataclass(frozen=True)
class _Activation:
    kind = ""

    def init(self, key, dtype):
        return {}

    def to_dict(self):
        return {"type": self.kind}


@dataclass(frozen=True)
class ReLU(_Activation):
    kind = "relu"

    def apply(self, params, x):
        return jax.nn.relu(x)


@dataclass(frozen=True)
class Sigmoid(_Activation):
    kind = "sigmoid"

    def apply(self, params, x):
        return jax.nn.sigmoid(x)


@dataclass(frozen=True)
class Tanh(_Activation):
    kind = "tanh"

    def apply(self, params, x):
        return jnp.tanh(x)


_ACTIVATIONS = {cls.kind: cls for cls in (ReLU, Sigmoid, Tanh)}


@dataclass(frozen=True)
class Sequential:
    layers: tuple
    output: str = "logits"

    def __init__(self, layers, output="logits"):
        object.__setattr__(self, "layers", tuple(layers))
        object.__setattr__(self, "output", output)
        self.validate()

    # -- shape ---------------------------------------------------------------------------------------------------
    @property
    def dense_layers(self):
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    @property
    def in_features(self):
        return self.dense_layers[0].in_features

    @property
    def out_features(self):
        return self.dense_layers[-1].out_features

    def param_count(self):
        return sum(d.in_features * d.out_features + d.out_features for d in self.dense_layers)

    def validate(self):
        dense = self.dense_layers
        if not dense:
            raise SpecError("a Sequential needs at least one Dense layer")
        if self.output not in OUTPUT_KINDS:
            raise SpecError(f"output {self.output!r} is not one of {', '.join(OUTPUT_KINDS)}")
        for a, b in zip(dense, dense[1:]):
            if a.out_features != b.in_features:
                raise SpecError(f"Dense({a.in_features}, {a.out_features}) feeds Dense({b.in_features}, "
                                f"{b.out_features}): {a.out_features} != {b.in_features}")
        for d in dense:
            if d.in_features < 1 or d.out_features < 1:
                raise SpecError(f"Dense({d.in_features}, {d.out_features}) has an empty dimension")
        if self.output == "binary" and self.out_features != 1:
            raise SpecError(f"a binary output needs 1 unit, the last Dense has {self.out_features}")

    # -- functional API ------------------------------------------------------------------------------------------
    def init(self, key, dtype=jnp.float32):
        keys = jax.random.split(key, len(self.layers))
        return [layer.init(k, dtype) for layer, k in zip(self.layers, keys)]

    def apply(self, params, x):
        for layer, p in zip(self.layers, params):
            x = layer.apply(p, x)
        return x

    def predict(self, params, x):
        """Class index per row."""
        y = self.apply(params, x)
        if self.output == "binary":
            return (y[..., 0] > 0.5).astype(jnp.int32)
        return jnp.argmax(y, axis=-1)

    # -- serialisation -------------------------------------------------------------------------------------------
    def to_dict(self):
        return {"format": SPEC_FORMAT, "output": self.output, "layers": [layer.to_dict() for layer in self.layers]}

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict) or d.get("format") != SPEC_FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise SpecError(f"spec format {found!r} is not {SPEC_FORMAT!r}")
        layers = []
        for i, ld in enumerate(d.get("layers", [])):
            kind = ld.get("type")
            if kind == "dense":
                layers.append(Dense(int(ld["in"]), int(ld["out"])))
            elif kind in _ACTIVATIONS:
                layers.append(_ACTIVATIONS[kind]())
            else:
                known = ", ".join(["dense", *_ACTIVATIONS])
                raise SpecError(f"layer {i} has type {kind!r}; known types: {known}")
        return cls(layers, output=d.get("output", "logits"))

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))
