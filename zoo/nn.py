"""A small functional layer spec: layers are data, params are plain pytrees.

`Sequential([Dense(784, 300), ReLU(), Dense(300, 10)])` describes a network; `init(key)` returns its params (a list
with one dict per layer: `{"w": (in, out), "b": (out,)}` for Dense, `{}` for activations) and `apply(params, x)` runs
it. Image networks start with `Input(h, w, c)` and run NHWC (`Conv2D`, `DepthwiseConv2D`, pools, `BatchNorm`, ...).
The spec serialises to JSON and back exactly (`to_json` / `from_json`); every later stage reads that JSON, so its
format is written down in docs/MODEL_FORMAT.md.

Every layer type is one class registered in `LAYER_TYPES` under its JSON "type"; a class knows its dict form, its
output shape, its parameter shapes, its inference `apply` and (for BatchNorm and Dropout) its training-mode
`apply_train`. Nothing else in the code switches on the layer type.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

SPEC_FORMAT = "picozoo.sequential/2"
READABLE_FORMATS = ("picozoo.sequential/1", SPEC_FORMAT)  # v1: dense/relu/sigmoid/tanh only, same layer dicts
OUTPUT_KINDS = ("logits", "binary")  # logits: class = argmax; binary: one sigmoid unit, class = (y > 0.5)
PADDINGS = ("same", "valid")


class SpecError(ValueError):
    """A spec that cannot describe a network we can run."""


# -- padding and window arithmetic (the TensorFlow rule, docs/MODEL_FORMAT.md) -------------------------------------
def window_out_size(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def same_pads(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """(before, after) zero padding along one axis; the odd cell goes after, as TensorFlow and JAX 'SAME' do."""
    if padding == "valid":
        return 0, 0
    out = window_out_size(size, kernel, stride, padding)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pair(v, what):
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(e) for e in v)
    if len(t) != 2:
        raise SpecError(f"{what} {list(v)} must have 2 entries (h, w)")
    return t


class _Layer:
    """Base: no params, shape preserved, the same in training and inference."""
    kind = ""
    weighted = False  # holds a weight that BatchNorm can fold into and int8 quantizes

    def param_shapes(self) -> dict:
        return {}

    def state_names(self) -> tuple:
        return ()  # params updated from data in training, not by the gradient (BatchNorm's running statistics)

    def init(self, key, dtype):
        return {}

    def out_shape(self, shape, index):
        return shape

    def macs(self, out_shape) -> int:
        """Multiply-accumulates of one sample given this layer's output shape (0: no weights)."""
        return 0

    def apply_train(self, params, x, rng, precision=None):
        """(y, new state dict or None) in training mode."""
        return self.apply(params, x, precision=precision), None

    def to_dict(self):
        return {"type": self.kind}

    @classmethod
    def from_dict(cls, d):
        return cls()

    def _shape_error(self, index, shape, why):
        return SpecError(f"layer {index} ({self.kind}): input shape {tuple(shape)} {why}")

    def _need_image(self, shape, index):
        if len(shape) != 3:
            raise self._shape_error(index, shape, "is not an image (h, w, c); start the spec with an input layer "
                                                  "and put image layers before flatten/global_avg_pool2d")


@dataclass(frozen=True)
class Input(_Layer):
    """The shape of one sample (h, w, c). Flat rows of raw features are reshaped row-major (h, w, c)."""
    height: int
    width: int
    channels: int
    kind = "input"

    def shape(self):
        return (self.height, self.width, self.channels)

    def out_shape(self, shape, index):
        return self.shape()

    def apply(self, params, x, precision=None):
        return x.reshape((x.shape[0], *self.shape()))

    def to_dict(self):
        return {"type": self.kind, "shape": list(self.shape())}

    def __post_init__(self):
        if min(self.shape()) < 1:
            raise SpecError(f"input shape {list(self.shape())} has an empty dimension")

    @classmethod
    def from_dict(cls, d):
        if len(d["shape"]) != 3:
            raise SpecError(f"input shape {list(d['shape'])} must be [h, w, c] (a flat network has no input layer)")
        h, w, c = (int(v) for v in d["shape"])
        return cls(h, w, c)


@dataclass(frozen=True)
class Dense(_Layer):
    in_features: int
    out_features: int
    kind = "dense"
    weighted = True

    def param_shapes(self):
        return {"w": (self.in_features, self.out_features), "b": (self.out_features,)}

    def init(self, key, dtype):
        # He-uniform for ReLU networks; it also trains the small sigmoid XOR net reliably.
        bound = jnp.sqrt(6.0 / self.in_features)
        w = jax.random.uniform(key, (self.in_features, self.out_features), dtype, -bound, bound)
        return {"w": w, "b": jnp.zeros((self.out_features,), dtype)}

    def out_shape(self, shape, index):
        if len(shape) != 1:
            raise self._shape_error(index, shape, f"is not flat; dense takes ({self.in_features},): add a flatten "
                                                  f"or global_avg_pool2d before it")
        if shape[0] != self.in_features:
            raise self._shape_error(index, shape, f"but dense takes ({self.in_features},): "
                                                  f"{shape[0]} != {self.in_features}")
        return (self.out_features,)

    def macs(self, out_shape):
        return self.in_features * self.out_features

    def apply(self, params, x, precision=None):
        return jnp.matmul(x, params["w"], precision=precision) + params["b"]

    def to_dict(self):
        return {"type": self.kind, "in": self.in_features, "out": self.out_features}

    @classmethod
    def from_dict(cls, d):
        return cls(int(d["in"]), int(d["out"]))


class _Windowed(_Layer):
    """Shared by convs and pools: kernel/stride/padding over (h, w)."""
    _kernel_field = "kernel"  # the window's size field: "kernel" for convs, "pool" for pools

    def window(self):
        """((kh, kw), (sh, sw), padding)."""
        return getattr(self, self._kernel_field), self.stride, self.padding

    def _check_window(self):
        object.__setattr__(self, self._kernel_field, _pair(getattr(self, self._kernel_field), self._kernel_field))
        object.__setattr__(self, "stride", _pair(self.stride, "stride"))
        k, s, p = self.window()
        if min(k) < 1 or min(s) < 1:
            raise SpecError(f"{self.kind}: kernel {list(k)} and stride {list(s)} must be at least 1")
        if p not in PADDINGS:
            raise SpecError(f"{self.kind}: padding {p!r} is not one of {', '.join(PADDINGS)}")

    def spatial_out(self, shape, index):
        self._need_image(shape, index)
        k, s, p = self.window()
        out = tuple(window_out_size(n, kk, ss, p) for n, kk, ss in zip(shape[:2], k, s))
        if min(out) < 1:
            raise self._shape_error(index, shape, f"is smaller than the {p} window {list(k)}: no output")
        return out

    def pads(self, shape):
        k, s, p = self.window()
        return [same_pads(n, kk, ss, p) for n, kk, ss in zip(shape[:2], k, s)]

    def _window_dict(self):
        k, s, p = self.window()
        return {"stride": list(s), "padding": p}


@dataclass(frozen=True)
class Conv2D(_Windowed):
    in_channels: int
    out_channels: int
    kernel: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: str = "same"
    kind = "conv2d"
    weighted = True

    def __post_init__(self):
        self._check_window()
        if self.in_channels < 1 or self.out_channels < 1:
            raise SpecError(f"conv2d({self.in_channels}, {self.out_channels}) has an empty dimension")

    def param_shapes(self):
        return {"w": (*self.kernel, self.in_channels, self.out_channels), "b": (self.out_channels,)}

    def init(self, key, dtype):
        fan_in = self.kernel[0] * self.kernel[1] * self.in_channels
        bound = jnp.sqrt(6.0 / fan_in)  # He-uniform, as Dense
        w = jax.random.uniform(key, self.param_shapes()["w"], dtype, -bound, bound)
        return {"w": w, "b": jnp.zeros((self.out_channels,), dtype)}

    def out_shape(self, shape, index):
        hw = self.spatial_out(shape, index)
        if shape[2] != self.in_channels:
            raise self._shape_error(index, shape, f"has {shape[2]} channels, conv2d takes {self.in_channels}")
        return (*hw, self.out_channels)

    def macs(self, out_shape):
        return math.prod(out_shape) * self.kernel[0] * self.kernel[1] * self.in_channels

    def apply(self, params, x, precision=None):
        y = jax.lax.conv_general_dilated(x, params["w"], self.stride, self.pads(x.shape[1:]),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision)
        return y + params["b"]

    def to_dict(self):
        return {"type": self.kind, "in": self.in_channels, "out": self.out_channels, "kernel": list(self.kernel),
                **self._window_dict()}

    @classmethod
    def from_dict(cls, d):
        return cls(int(d["in"]), int(d["out"]), d["kernel"], d.get("stride", 1), d.get("padding", "same"))


@dataclass(frozen=True)
class DepthwiseConv2D(_Windowed):
    channels: int
    kernel: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: str = "same"
    kind = "depthwise_conv2d"
    weighted = True

    def __post_init__(self):
        self._check_window()
        if self.channels < 1:
            raise SpecError(f"depthwise_conv2d({self.channels}) has no channels")

    def param_shapes(self):
        return {"w": (*self.kernel, self.channels), "b": (self.channels,)}

    def init(self, key, dtype):
        bound = jnp.sqrt(6.0 / (self.kernel[0] * self.kernel[1]))
        w = jax.random.uniform(key, self.param_shapes()["w"], dtype, -bound, bound)
        return {"w": w, "b": jnp.zeros((self.channels,), dtype)}

    def out_shape(self, shape, index):
        hw = self.spatial_out(shape, index)
        if shape[2] != self.channels:
            raise self._shape_error(index, shape, f"has {shape[2]} channels, depthwise_conv2d takes {self.channels}")
        return (*hw, self.channels)

    def macs(self, out_shape):
        return math.prod(out_shape) * self.kernel[0] * self.kernel[1]

    def apply(self, params, x, precision=None):
        w = params["w"][:, :, None, :]  # HWIO with I = 1 per group
        y = jax.lax.conv_general_dilated(x, w, self.stride, self.pads(x.shape[1:]),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                         feature_group_count=self.channels, precision=precision)
        return y + params["b"]

    def to_dict(self):
        return {"type": self.kind, "channels": self.channels, "kernel": list(self.kernel), **self._window_dict()}

    @classmethod
    def from_dict(cls, d):
        return cls(int(d["channels"]), d["kernel"], d.get("stride", 1), d.get("padding", "same"))


class _Pool(_Windowed):
    _kernel_field = "pool"

    def __post_init__(self):
        if self.stride is None:
            object.__setattr__(self, "stride", self.pool)
        self._check_window()

    def out_shape(self, shape, index):
        return (*self.spatial_out(shape, index), shape[2])

    def to_dict(self):
        return {"type": self.kind, "pool": list(self.pool), **self._window_dict()}

    @classmethod
    def from_dict(cls, d):
        return cls(d["pool"], d.get("stride"), d.get("padding", "valid"))


@dataclass(frozen=True)
class MaxPool2D(_Pool):
    pool: tuple = (2, 2)
    stride: tuple | None = None  # default: the pool size
    padding: str = "valid"
    kind = "max_pool2d"

    def apply(self, params, x, precision=None):
        if self.padding == "valid" and self.pool == self.stride:
            # Non-overlapping windows: a reshape and max, whose gradient XLA runs far faster on CPUs than
            # reduce_window's select-and-scatter; the values are the same.
            (ph, pw), (oh, ow) = self.pool, (x.shape[1] // self.pool[0], x.shape[2] // self.pool[1])
            x = x[:, :oh * ph, :ow * pw].reshape(x.shape[0], oh, ph, ow, pw, x.shape[3])
            return jnp.max(x, axis=(2, 4))
        pads = [(0, 0), *self.pads(x.shape[1:]), (0, 0)]  # -inf padding never wins
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, *self.pool, 1), (1, *self.stride, 1), pads)


@dataclass(frozen=True)
class AvgPool2D(_Pool):
    pool: tuple = (2, 2)
    stride: tuple | None = None
    padding: str = "valid"
    kind = "avg_pool2d"

    def __post_init__(self):
        super().__post_init__()
        if self.padding != "valid":
            raise SpecError(f"avg_pool2d: padding {self.padding!r}; only 'valid' is supported (no pad counting rule)")

    def apply(self, params, x, precision=None):
        (ph, pw), (sh, sw) = self.pool, self.stride
        if (ph, pw) == (sh, sw):
            # Non-overlapping windows: a reshape and mean, as MaxPool2D (a faster gradient on CPUs).
            oh, ow = x.shape[1] // ph, x.shape[2] // pw
            return jnp.mean(x[:, :oh * ph, :ow * pw].reshape(x.shape[0], oh, ph, ow, pw, x.shape[3]), axis=(2, 4))
        # The init value must be a concrete constant: JAX differentiates reduce_window only when it recognises the
        # (add, 0) monoid, and a traced jnp.zeros inside jit is not recognised ("Linearization failed").
        s = jax.lax.reduce_window(x, np.zeros((), x.dtype), jax.lax.add, (1, ph, pw, 1), (1, sh, sw, 1), "VALID")
        return s / (ph * pw)


@dataclass(frozen=True)
class GlobalAvgPool2D(_Layer):
    kind = "global_avg_pool2d"

    def out_shape(self, shape, index):
        self._need_image(shape, index)
        return (shape[2],)

    def apply(self, params, x, precision=None):
        return jnp.mean(x, axis=(1, 2))


@dataclass(frozen=True)
class Flatten(_Layer):
    kind = "flatten"

    def out_shape(self, shape, index):
        self._need_image(shape, index)
        return (math.prod(shape),)

    def apply(self, params, x, precision=None):
        return x.reshape((x.shape[0], -1))


@dataclass(frozen=True)
class BatchNorm(_Layer):
    """Per-channel (last axis) normalisation. Training: batch statistics, and the running statistics move by
    `new = momentum * old + (1 - momentum) * batch`; inference: the running statistics (Keras defaults)."""
    features: int
    eps: float = 0.001
    momentum: float = 0.99
    kind = "batch_norm"

    def __post_init__(self):
        if self.features < 1 or not self.eps > 0 or not 0 <= self.momentum < 1:
            raise SpecError(f"batch_norm(features={self.features}, eps={self.eps}, momentum={self.momentum}): "
                            f"needs features >= 1, eps > 0, 0 <= momentum < 1")

    def param_shapes(self):
        return {name: (self.features,) for name in ("gamma", "beta", "mean", "var")}

    def state_names(self):
        return ("mean", "var")

    def init(self, key, dtype):
        ones, zeros = jnp.ones((self.features,), dtype), jnp.zeros((self.features,), dtype)
        return {"gamma": ones, "beta": zeros, "mean": zeros, "var": ones}

    def out_shape(self, shape, index):
        if shape[-1] != self.features:
            raise self._shape_error(index, shape, f"has {shape[-1]} channels, batch_norm takes {self.features}")
        return shape

    def _normalise(self, params, x, mean, var):
        return (x - mean) * (params["gamma"] * jax.lax.rsqrt(var + self.eps)) + params["beta"]

    def apply(self, params, x, precision=None):
        return self._normalise(params, x, params["mean"], params["var"])

    def apply_train(self, params, x, rng, precision=None):
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        m = self.momentum
        state = {"mean": m * params["mean"] + (1 - m) * jax.lax.stop_gradient(mean),
                 "var": m * params["var"] + (1 - m) * jax.lax.stop_gradient(var)}
        return self._normalise(params, x, mean, var), state

    def to_dict(self):
        return {"type": self.kind, "features": self.features, "eps": self.eps, "momentum": self.momentum}

    @classmethod
    def from_dict(cls, d):
        return cls(int(d["features"]), float(d.get("eps", 0.001)), float(d.get("momentum", 0.99)))


@dataclass(frozen=True)
class Dropout(_Layer):
    """Training only: zeroes each value with probability `rate` and scales the rest by 1/(1-rate)."""
    rate: float = 0.5
    kind = "dropout"

    def __post_init__(self):
        if not 0 <= self.rate < 1:
            raise SpecError(f"dropout rate {self.rate} must be in [0, 1)")

    def apply(self, params, x, precision=None):
        return x

    def apply_train(self, params, x, rng, precision=None):
        if self.rate == 0:
            return x, None
        keep = jax.random.bernoulli(rng, 1 - self.rate, x.shape)
        return jnp.where(keep, x / (1 - self.rate), jnp.zeros((), x.dtype)), None

    def to_dict(self):
        return {"type": self.kind, "rate": self.rate}

    @classmethod
    def from_dict(cls, d):
        return cls(float(d["rate"]))


@dataclass(frozen=True)
class ReLU(_Layer):
    kind = "relu"

    def apply(self, params, x, precision=None):
        return jax.nn.relu(x)


@dataclass(frozen=True)
class ReLU6(_Layer):
    kind = "relu6"

    def apply(self, params, x, precision=None):
        return jnp.clip(x, 0, 6)


@dataclass(frozen=True)
class Sigmoid(_Layer):
    kind = "sigmoid"

    def apply(self, params, x, precision=None):
        return jax.nn.sigmoid(x)


@dataclass(frozen=True)
class Tanh(_Layer):
    kind = "tanh"

    def apply(self, params, x, precision=None):
        return jnp.tanh(x)


LAYER_TYPES = {cls.kind: cls for cls in (Input, Dense, Conv2D, DepthwiseConv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D,
                                         Flatten, BatchNorm, Dropout, ReLU, ReLU6, Sigmoid, Tanh)}
V1_TYPES = ("dense", "relu", "sigmoid", "tanh")


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
    def input_shape(self) -> tuple:
        """One sample's shape: (h, w, c) after an Input layer, else (features,) of the first Dense."""
        first = self.layers[0]
        return first.shape() if isinstance(first, Input) else (self.dense_layers[0].in_features,)

    @property
    def in_features(self):
        return math.prod(self.input_shape)

    @property
    def out_features(self):
        return math.prod(self.output_shapes()[-1])

    def output_shapes(self) -> list[tuple]:
        """Each layer's output shape for one sample ((h, w, c) or (features,)); SpecError names the bad layer."""
        shape, shapes = self.input_shape, []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Input) and i != 0:
                raise SpecError(f"layer {i} (input): an input layer may only come first")
            shape = tuple(layer.out_shape(shape, i))
            shapes.append(shape)
        return shapes

    def input_shapes(self) -> list[tuple]:
        """Each layer's input shape."""
        return [self.input_shape, *self.output_shapes()[:-1]]

    def macs(self) -> int:
        """Multiply-accumulates of one inference (conv2d, depthwise_conv2d and dense layers)."""
        return sum(layer.macs(shape) for layer, shape in zip(self.layers, self.output_shapes()))

    def param_count(self):
        return sum(math.prod(s) for layer in self.layers for s in layer.param_shapes().values())

    def validate(self):
        if not any(layer.weighted for layer in self.layers):
            raise SpecError("a Sequential needs at least one Dense (or conv2d/depthwise_conv2d) layer")
        if self.output not in OUTPUT_KINDS:
            raise SpecError(f"output {self.output!r} is not one of {', '.join(OUTPUT_KINDS)}")
        if not isinstance(self.layers[0], Input) and not self.dense_layers:
            raise SpecError(f"layer 0 ({self.layers[0].kind}): an image network must start with an input layer, "
                            f"{{\"type\": \"input\", \"shape\": [h, w, c]}}")
        for i, layer in enumerate(self.layers):
            for name, shape in layer.param_shapes().items():
                if min(shape) < 1:
                    raise SpecError(f"layer {i} ({layer.kind}) has an empty dimension in {name} {shape}")
        shapes = self.output_shapes()
        if len(shapes[-1]) != 1:
            raise SpecError(f"the last layer's output {shapes[-1]} is not flat; end with flatten/global_avg_pool2d "
                            f"and a dense layer")
        if self.output == "binary" and shapes[-1][0] != 1:
            raise SpecError(f"a binary output needs 1 unit, the last layer has {shapes[-1][0]}")

    # -- functional API ------------------------------------------------------------------------------------------
    def init(self, key, dtype=jnp.float32):
        def init_all(key):
            keys = jax.random.split(key, len(self.layers))
            return [layer.init(k, dtype) for layer, k in zip(self.layers, keys)]
        return jax.jit(init_all)(key)  # one compilation instead of one per layer shape

    def apply(self, params, x, precision=None):
        """Inference: BatchNorm uses running statistics, Dropout is the identity. `precision` goes to every matmul
        and conv (jax.lax.Precision.HIGHEST for full float32 on accelerators whose default is TF32/bf16)."""
        for layer, p in zip(self.layers, params):
            x = layer.apply(p, x, precision=precision)
        return x

    def apply_train(self, params, x, rng, precision=None):
        """Training mode: (outputs, params with BatchNorm's running statistics advanced). `rng` feeds Dropout."""
        new_params = list(params)
        for i, (layer, p) in enumerate(zip(self.layers, params)):
            x, state = layer.apply_train(p, x, jax.random.fold_in(rng, i), precision=precision)
            if state is not None:
                new_params[i] = {**p, **state}
        return x, new_params

    def predict(self, params, x, precision=None):
        """Class index per row."""
        y = self.apply(params, x, precision=precision)
        if self.output == "binary":
            return (y[..., 0] > 0.5).astype(jnp.int32)
        return jnp.argmax(y, axis=-1)

    def state_mask(self, params):
        """A pytree like params: True where the leaf is running state (not trained by the gradient)."""
        return [{name: name in layer.state_names() for name in p} for layer, p in zip(self.layers, params)]

    # -- serialisation -------------------------------------------------------------------------------------------
    def to_dict(self):
        return {"format": SPEC_FORMAT, "output": self.output, "layers": [layer.to_dict() for layer in self.layers]}

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict) or d.get("format") not in READABLE_FORMATS:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise SpecError(f"spec format {found!r} is not one of {', '.join(map(repr, READABLE_FORMATS))}")
        known = LAYER_TYPES if d["format"] == SPEC_FORMAT else {k: LAYER_TYPES[k] for k in V1_TYPES}
        layers = []
        for i, ld in enumerate(d.get("layers", [])):
            kind = ld.get("type") if isinstance(ld, dict) else None
            if kind not in known:
                raise SpecError(f"layer {i} has type {kind!r}; known types in {d['format']}: {', '.join(known)}")
            try:
                layers.append(known[kind].from_dict(ld))
            except (KeyError, TypeError, ValueError) as e:
                if isinstance(e, SpecError):
                    raise SpecError(f"layer {i}: {e}") from None
                raise SpecError(f"layer {i} ({kind}): bad or missing field {e}; got {ld}") from None
        if not layers:
            raise SpecError("a Sequential needs at least one Dense (or conv2d/depthwise_conv2d) layer")
        return cls(layers, output=d.get("output", "logits"))

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))


# -- BatchNorm folding -------------------------------------------------------------------------------------------
def fold_batchnorm(spec: Sequential, params):
    """(spec', params') with every batch_norm merged into the conv2d/depthwise_conv2d/dense right before it:
    w' = w * g on the output axis, b' = (b - mean) * g + beta, g = gamma / sqrt(var + eps). Computed in float64,
    stored in the params' dtype. A batch_norm not right after a weighted layer is a SpecError."""
    layers, new_params = [], []
    for i, (layer, p) in enumerate(zip(spec.layers, params)):
        if not isinstance(layer, BatchNorm):
            layers.append(layer)
            new_params.append({k: np.asarray(v) for k, v in p.items()})
            continue
        if not layers or not layers[-1].weighted:
            before = layers[-1].kind if layers else "nothing"
            raise SpecError(f"layer {i} (batch_norm) follows {before}; it can only be folded into a conv2d, "
                            f"depthwise_conv2d or dense right before it")
        prev = new_params[-1]
        dtype = prev["w"].dtype
        f64 = {k: np.asarray(v, np.float64) for k, v in p.items()}
        g = f64["gamma"] / np.sqrt(f64["var"] + layer.eps)
        new_params[-1] = {"w": (np.asarray(prev["w"], np.float64) * g).astype(dtype),  # output axis is last
                          "b": ((np.asarray(prev["b"], np.float64) - f64["mean"]) * g + f64["beta"]).astype(dtype)}
    return Sequential(layers, output=spec.output), new_params


def for_inference(spec: Sequential, params):
    """fold_batchnorm, then without Dropout layers: the network later stages run."""
    spec, params = fold_batchnorm(spec, params)
    kept = [(layer, p) for layer, p in zip(spec.layers, params) if not isinstance(layer, Dropout)]
    return Sequential([layer for layer, _ in kept], output=spec.output), [p for _, p in kept]
