import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo import host, modeldir
from zoo.models import MODELS, UnknownModelError, get_model
from zoo import nn
from zoo.nn import Dense, ReLU, Sequential, Sigmoid, SpecError, Tanh
from random_models import host_reference, random_params as _random_params

# Pinned: (in*out + out) summed over the Dense layers, computed by hand; conv nets add kh*kw*in*out + out per conv
# and 4 per BatchNorm channel. pd_mobilenet = 207,968 weights + 2,738 biases (the counts of TFLM's person_detect,
# ../shared/reference/conv-onnx.md section 5) + 4 * 2,736 BatchNorm values.
PARAM_COUNTS = {"xor": 13, "mnist_50": 39_760, "mnist_100": 79_510, "mnist_200": 159_010,
                "mnist_300": 238_510, "mnist_300_100": 266_610, "fashion_300": 238_510,
                "mnist_cnn": 89_994, "fashion_cnn": 89_994, "pd_mobilenet": 221_650}
CONV_MODELS = ("mnist_cnn", "fashion_cnn", "pd_mobilenet")


@pytest.mark.parametrize("name", sorted(PARAM_COUNTS))
def test_param_counts_are_pinned(name):
    spec = get_model(name).spec
    assert spec.param_count() == PARAM_COUNTS[name]
    params = spec.init(jax.random.key(0))
    assert sum(x.size for x in jax.tree.leaves(params)) == PARAM_COUNTS[name]


def test_conv_models_mac_counts():
    """MACs of conv/depthwise/dense layers from the spec's shapes; pd_mobilenet's equals TFLM person_detect's
    7,157,888 (../shared/reference/conv-onnx.md section 5)."""
    import math
    counts = {}
    for name in CONV_MODELS:
        spec, macs = get_model(name).spec, 0
        for layer, out in zip(spec.layers, spec.output_shapes()):
            if layer.kind in ("conv2d", "depthwise_conv2d"):
                macs += math.prod(out) * layer.kernel[0] * layer.kernel[1] * getattr(layer, "in_channels", 1)
            elif layer.kind == "dense":
                macs += layer.in_features * layer.out_features
        counts[name] = macs
        assert spec.macs() == macs
    assert counts == {"mnist_cnn": 615_104, "fashion_cnn": 615_104, "pd_mobilenet": 7_157_888}


def test_registry_names():
    assert set(MODELS) == set(PARAM_COUNTS)


def test_unknown_model_lists_known_ones():
    with pytest.raises(UnknownModelError) as err:
        get_model("mnist_999")
    assert "mnist_999" in str(err.value) and "mnist_300_100" in str(err.value) and "xor" in str(err.value)


@pytest.mark.parametrize("name", sorted(PARAM_COUNTS))
def test_registry_specs_round_trip_json(name):
    spec = get_model(name).spec
    assert Sequential.from_json(spec.to_json()) == spec
    assert Sequential.from_json(spec.to_json()).to_json() == spec.to_json()


_activation = st.sampled_from([ReLU(), Sigmoid(), Tanh()])


@st.composite
def specs(draw):
    widths = draw(st.lists(st.integers(1, 50), min_size=2, max_size=5))
    layers = []
    for a, b in zip(widths, widths[1:]):
        layers.append(Dense(a, b))
        layers += draw(st.lists(_activation, max_size=2))
    return Sequential(layers, output="binary" if widths[-1] == 1 else "logits")


@given(specs())
@settings(max_examples=60, deadline=None)
def test_any_spec_round_trips_json(spec):
    assert Sequential.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("bad, message", [
    ({"format": "other/1", "layers": []}, "spec format 'other/1'"),
    ({"format": "picozoo.sequential/1", "layers": [{"type": "conv"}]}, "layer 0 has type 'conv'; known types"),
    ({"format": "picozoo.sequential/1", "layers": [{"type": "flatten"}]}, "layer 0 has type 'flatten'"),  # v2 only
    ({"format": "picozoo.sequential/1", "layers": [{"type": "relu"}]}, "at least one Dense"),
    ({"format": "picozoo.sequential/1", "layers": [{"type": "dense", "in": 4, "out": 3},
                                                   {"type": "dense", "in": 2, "out": 1}]},
     r"layer 1 \(dense\): input shape \(3,\) but dense takes \(2,\): 3 != 2"),
    ({"format": "picozoo.sequential/1", "output": "softmax",
      "layers": [{"type": "dense", "in": 4, "out": 3}]}, "output 'softmax'"),
    ({"format": "picozoo.sequential/1", "output": "binary",
      "layers": [{"type": "dense", "in": 4, "out": 3}]}, "binary output needs 1 unit"),
])
def test_bad_specs_are_rejected(bad, message):
    with pytest.raises(SpecError, match=message):
        Sequential.from_dict(bad)


@pytest.mark.parametrize("name", ["xor", "mnist_300_100"])
def test_jax_apply_matches_numpy_host_model(tmp_path, name):
    """The JAX forward and the NumPy reference the firmware is judged by agree."""
    cfg = get_model(name)
    params = cfg.spec.init(jax.random.key(3))
    meta = {"model": name, "dataset": cfg.dataset, "input": {"scale": 1 / 255, "features": cfg.spec.in_features},
            "dtype": "float32", "seed": 3}
    modeldir.save(tmp_path, cfg.spec, params, meta)
    raw = np.random.default_rng(0).integers(0, 256, (16, cfg.spec.in_features), dtype=np.uint8)
    # Full float32 (on GPUs JAX's default is TF32: 1.2e-3 off on an H200).
    expected = cfg.spec.apply(params, jnp.asarray(raw, jnp.float32) * (1 / 255), precision=jax.lax.Precision.HIGHEST)
    np.testing.assert_allclose(host.forward(modeldir.load(tmp_path), raw), expected, rtol=1e-5, atol=1e-5)


# -- conv layers ---------------------------------------------------------------------------------------------------
V2 = "picozoo.sequential/2"


def _v2(*layers, output="logits"):
    return {"format": V2, "output": output, "layers": list(layers)}


_IN = {"type": "input", "shape": [8, 8, 3]}
_CONV = {"type": "conv2d", "in": 3, "out": 4, "kernel": [3, 3], "stride": [1, 1], "padding": "same"}


def test_output_shapes_follow_the_tensorflow_rules():
    spec = Sequential([nn.Input(96, 96, 1), nn.Conv2D(1, 8, 3, 2, "same"), nn.DepthwiseConv2D(8, 3, 2, "same"),
                       nn.Conv2D(8, 5, (3, 1), (1, 2), "valid"), nn.MaxPool2D(3, 2, "same"), nn.AvgPool2D(2),
                       nn.BatchNorm(5), nn.ReLU6(), nn.Flatten(), nn.Dropout(0.5), nn.Dense(75, 2)])
    # same: ceil(in / s); valid: (in - k) // s + 1.  96 -> 48 -> 24; (3, 1) valid s(1, 2): (22, 12);
    # max 3 s2 same: (11, 6); avg 2 valid: (5, 3).
    assert spec.output_shapes() == [(96, 96, 1), (48, 48, 8), (24, 24, 8), (22, 12, 5), (11, 6, 5), (5, 3, 5),
                                    (5, 3, 5), (5, 3, 5), (75,), (75,), (2,)]
    assert spec.in_features == 96 * 96 and spec.out_features == 2
    assert nn.same_pads(96, 3, 2, "same") == (0, 1) and nn.same_pads(7, 3, 1, "same") == (1, 1)
    assert nn.same_pads(6, 1, 2, "same") == (0, 0) and nn.same_pads(5, 4, 1, "same") == (1, 2)


@pytest.mark.parametrize("layers, message", [
    ([_IN, {**_CONV, "in": 2}, {"type": "flatten"}, {"type": "dense", "in": 256, "out": 2}],
     r"layer 1 \(conv2d\): input shape \(8, 8, 3\) has 3 channels, conv2d takes 2"),
    ([_IN, {**_CONV, "kernel": [9, 9], "padding": "valid"}, {"type": "flatten"}, {"type": "dense", "in": 4, "out": 2}],
     r"layer 1 \(conv2d\): input shape \(8, 8, 3\) is smaller than the valid window \[9, 9\]"),
    ([_IN, _CONV, {"type": "dense", "in": 256, "out": 2}], r"layer 2 \(dense\): input shape \(8, 8, 4\) is not flat"),
    ([_IN, _CONV, {"type": "flatten"}, {"type": "dense", "in": 100, "out": 2}],
     r"layer 3 \(dense\): input shape \(256,\) but dense takes \(100,\)"),
    ([{"type": "dense", "in": 4, "out": 4}, {"type": "max_pool2d", "pool": [2, 2]}],
     r"layer 1 \(max_pool2d\): input shape \(4,\) is not an image"),
    ([_CONV, {"type": "flatten"}, {"type": "dense", "in": 4, "out": 2}],
     r"layer 0 \(conv2d\): input shape \(4,\) is not an image \(h, w, c\); start the spec with an input layer"),
    ([_CONV, {"type": "global_avg_pool2d"}], r"layer 0 \(conv2d\): an image network must start with an input layer"),
    ([_IN, _CONV, {"type": "batch_norm", "features": 5}, {"type": "flatten"}, {"type": "dense", "in": 256, "out": 2}],
     r"layer 2 \(batch_norm\): input shape \(8, 8, 4\) has 4 channels, batch_norm takes 5"),
    ([_IN, {"type": "depthwise_conv2d", "channels": 3, "kernel": [3, 3], "stride": [1, 1], "padding": "full"}],
     r"layer 1: depthwise_conv2d: padding 'full'"),
    ([_IN, {"type": "avg_pool2d", "pool": [2, 2], "padding": "same"}], r"only 'valid'"),
    ([_IN, {"type": "conv2d", "in": 3, "out": 4}], r"layer 1 \(conv2d\): bad or missing field 'kernel'"),
    ([_IN, _CONV, {"type": "global_avg_pool2d"}, {"type": "input", "shape": [1, 1, 4]},
      {"type": "dense", "in": 4, "out": 1}],
     r"layer 3 \(input\): an input layer may only come first"),
    ([_IN, _CONV], r"last layer's output \(8, 8, 4\) is not flat"),
    ([_IN, {"type": "dropout", "rate": 1.0}], r"dropout rate 1.0"),
    ([{"type": "input", "shape": [784]}, {"type": "dense", "in": 784, "out": 1}], r"input shape \[784\] must be"),
])
def test_conv_shape_errors_name_the_layer_and_shapes(layers, message):
    with pytest.raises(SpecError, match=message):
        Sequential.from_dict(_v2(*layers))


@pytest.mark.parametrize("name", CONV_MODELS)
def test_v2_json_is_sorted_and_round_trips(name):
    spec = get_model(name).spec
    text = spec.to_json()
    assert json.loads(text)["format"] == V2 and text == json.dumps(json.loads(text), sort_keys=True,
                                                                    separators=(",", ":"))
    assert Sequential.from_json(text) == spec and Sequential.from_json(text).to_json() == text


def test_v1_specs_still_load():
    v1 = {"format": "picozoo.sequential/1", "output": "logits",
          "layers": [{"type": "dense", "in": 784, "out": 50}, {"type": "relu"}, {"type": "dense", "in": 50, "out": 10}]}
    assert Sequential.from_dict(v1) == get_model("mnist_50").spec


# -- an independent NumPy reference: explicit loops over every output cell and tap -------------------------------------
def _pad_amounts(size, k, s, padding):
    if padding == "valid":
        return (size - k) // s + 1, 0
    out = -(-size // s)
    return out, max((out - 1) * s + k - size, 0) // 2


def _loop_window(x, k, s, padding, cell):
    """cell(n, out_y, out_x, [(in_y, in_x) inside the image]) -> vector over channels."""
    (kh, kw), (sh, sw) = k, s
    oh, top = _pad_amounts(x.shape[1], kh, sh, padding)
    ow, left = _pad_amounts(x.shape[2], kw, sw, padding)
    rows = []
    for n in range(x.shape[0]):
        for oy in range(oh):
            for ox in range(ow):
                taps = [(oy * sh + i - top, ox * sw + j - left, i, j) for i in range(kh) for j in range(kw)]
                inside = [t for t in taps if 0 <= t[0] < x.shape[1] and 0 <= t[1] < x.shape[2]]
                rows.append(cell(n, inside))
    return np.array(rows).reshape(x.shape[0], oh, ow, -1)


def loop_conv2d(x, w, b, s, padding):
    return _loop_window(x, w.shape[:2], s, padding, lambda n, taps: b + sum(
        x[n, y, xx] @ w[i, j] for y, xx, i, j in taps))


def loop_depthwise(x, w, b, s, padding):
    return _loop_window(x, w.shape[:2], s, padding, lambda n, taps: b + sum(
        x[n, y, xx] * w[i, j] for y, xx, i, j in taps))


def loop_max_pool(x, k, s, padding):
    return _loop_window(x, k, s, padding, lambda n, taps: np.max([x[n, y, xx] for y, xx, _, _ in taps], axis=0))


def loop_avg_pool(x, k, s):
    return _loop_window(x, k, s, "valid", lambda n, taps: np.mean([x[n, y, xx] for y, xx, _, _ in taps], axis=0))


_HIGHEST = jax.lax.Precision.HIGHEST


@pytest.mark.parametrize("size, k, s, padding", [
    ((7, 6), (3, 3), (1, 1), "same"), ((7, 6), (3, 3), (2, 2), "same"), ((8, 8), (3, 3), (2, 2), "same"),
    ((7, 6), (3, 2), (2, 1), "valid"), ((5, 5), (1, 1), (1, 1), "same"), ((6, 7), (4, 4), (3, 2), "same"),
    ((7, 6), (2, 2), (2, 2), "valid"), ((7, 9), (3, 2), (3, 2), "valid")])  # pool == stride: MaxPool2D's fast path
def test_jax_conv_and_pools_match_loops(size, k, s, padding):
    rng = np.random.default_rng(sum(size) + sum(k) + sum(s))
    x = rng.normal(size=(2, *size, 3))
    w, b = rng.normal(size=(*k, 3, 4)), rng.normal(size=4)
    wd, bd = rng.normal(size=(*k, 3)), rng.normal(size=3)
    with jax.enable_x64(True):
        conv = nn.Conv2D(3, 4, k, s, padding).apply({"w": w, "b": b}, jnp.asarray(x), precision=_HIGHEST)
        dw = nn.DepthwiseConv2D(3, k, s, padding).apply({"w": wd, "b": bd}, jnp.asarray(x), precision=_HIGHEST)
        mp = nn.MaxPool2D(k, s, padding).apply({}, jnp.asarray(-np.abs(x)))  # all negative: a zero pad would win
        if padding == "valid":
            ap = nn.AvgPool2D(k, s).apply({}, jnp.asarray(x))
            np.testing.assert_allclose(ap, loop_avg_pool(x, k, s), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv, loop_conv2d(x, w, b, s, padding), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, loop_depthwise(x, wd, bd, s, padding), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mp, loop_max_pool(-np.abs(x), k, s, padding), rtol=0, atol=0)


@pytest.mark.parametrize("size, k, s", [((7, 6), (2, 2), (2, 2)), ((7, 9), (3, 2), (3, 2)), ((7, 6), (3, 3), (2, 2)),
                                         ((6, 7), (3, 2), (1, 2))])
def test_avg_pool_gradient_matches_numpy_and_finite_differences(size, k, s):
    """AvgPool2D trains: the jitted gradient of sum(g * pool(x)) is the NumPy adjoint (each output's g / (kh*kw)
    added to every cell of its window) and agrees with central finite differences."""
    rng = np.random.default_rng(sum(size) + sum(k) + sum(s))
    x = rng.normal(size=(2, *size, 3))
    pool = nn.AvgPool2D(k, s)
    out_shape = (2, *pool.out_shape((*size, 3), 0))
    g = rng.normal(size=out_shape)
    expected = np.zeros_like(x)
    for n, oy, ox in np.ndindex(out_shape[:3]):
        expected[n, oy * s[0]:oy * s[0] + k[0], ox * s[1]:ox * s[1] + k[1]] += g[n, oy, ox] / (k[0] * k[1])
    with jax.enable_x64(True):
        def objective(v):
            return jnp.sum(jnp.asarray(g) * pool.apply({}, v))
        grad = np.asarray(jax.jit(jax.grad(objective))(jnp.asarray(x)))
        eps = 1e-6
        for idx in [tuple(rng.integers(0, d) for d in x.shape) for _ in range(8)]:
            up, down = x.copy(), x.copy()
            up[idx] += eps
            down[idx] -= eps
            fd = (float(objective(jnp.asarray(up))) - float(objective(jnp.asarray(down)))) / (2 * eps)
            assert abs(fd - grad[idx]) < 1e-6, (idx, fd, grad[idx])
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-12)


def _small_cnn():
    return Sequential([nn.Input(9, 9, 2), nn.Conv2D(2, 4, 3, 1, "same"), nn.BatchNorm(4), nn.ReLU(),
                       nn.MaxPool2D(2, 2, "same"), nn.DepthwiseConv2D(4, 3, 2, "valid"), nn.BatchNorm(4), nn.ReLU6(),
                       nn.Conv2D(4, 6, 1), nn.AvgPool2D(2, 1), nn.Flatten(), nn.Dropout(0.5), nn.Dense(6, 8),
                       nn.BatchNorm(8), nn.Tanh(), nn.Dense(8, 3)])


def test_host_model_matches_the_loop_reference_layer_by_layer(tmp_path):
    spec = _small_cnn()
    params = _random_params(spec, 1)
    meta = {"model": "t", "dataset": "mnist", "input": {"scale": 1 / 255, "features": spec.in_features},
            "dtype": "float64", "seed": 1}
    params64 = [{k: v.astype(np.float64) for k, v in p.items()} for p in params]
    modeldir.save(tmp_path, spec, params64, meta)
    raw = np.random.default_rng(2).integers(0, 256, (3, spec.in_features), dtype=np.uint8)
    x = raw.reshape(3, 9, 9, 2) / 255
    p = params64
    bn = lambda v, q, eps=0.001: (v - q["mean"]) / np.sqrt(q["var"] + eps) * q["gamma"] + q["beta"]
    x = np.maximum(bn(loop_conv2d(x, p[1]["w"], p[1]["b"], (1, 1), "same"), p[2]), 0)
    x = loop_max_pool(x, (2, 2), (2, 2), "same")
    x = np.clip(bn(loop_depthwise(x, p[5]["w"], p[5]["b"], (2, 2), "valid"), p[6]), 0, 6)
    x = loop_avg_pool(loop_conv2d(x, p[8]["w"], p[8]["b"], (1, 1), "same"), (2, 2), (1, 1)).reshape(3, -1)
    x = np.tanh(bn(x @ p[12]["w"] + p[12]["b"], p[13])) @ p[15]["w"] + p[15]["b"]
    np.testing.assert_allclose(host.forward(modeldir.load(tmp_path), raw), x, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(PARAM_COUNTS))
def test_every_registry_model_jax_matches_host(tmp_path, name):
    """Full float32 (Precision.HIGHEST) JAX inference equals the NumPy host model up to summation order; on GPUs whose
    default is TF32 this is what benchmarks/gpu_precision_check.py runs."""
    cfg = get_model(name)
    params, raw, got = host_reference(name, cfg, tmp_path, 2 if name == "pd_mobilenet" else 8)
    expected = cfg.spec.apply(params, jnp.asarray(raw, jnp.float32) * (1 / 255), precision=_HIGHEST)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-5 * max(1.0, float(np.max(np.abs(expected)))))


def test_fold_batchnorm_keeps_outputs():
    spec = _small_cnn()
    params = _random_params(spec, 4)
    folded, fparams = nn.fold_batchnorm(spec, params)
    assert [layer.kind for layer in folded.layers] == [layer.kind for layer in spec.layers if layer.kind != "batch_norm"]
    assert folded.param_count() == spec.param_count() - 4 * (4 + 4 + 8)
    x = jnp.asarray(np.random.default_rng(5).uniform(0, 1, (4, spec.in_features)), jnp.float32)
    want = spec.apply(params, x, precision=_HIGHEST)
    np.testing.assert_allclose(folded.apply(fparams, x, precision=_HIGHEST), want, rtol=1e-5, atol=1e-5)
    inference, iparams = nn.for_inference(spec, params)
    assert "dropout" not in [layer.kind for layer in inference.layers]
    np.testing.assert_allclose(inference.apply(iparams, x, precision=_HIGHEST), want, rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_needs_a_weighted_layer_before():
    spec = Sequential([nn.Dense(4, 4), nn.ReLU(), nn.BatchNorm(4), nn.Dense(4, 2)])
    with pytest.raises(SpecError, match=r"layer 2 \(batch_norm\) follows relu"):
        nn.fold_batchnorm(spec, spec.init(jax.random.key(0)))


def test_batchnorm_training_uses_batch_statistics_and_moves_running_ones():
    layer = nn.BatchNorm(3, momentum=0.9)
    p = {k: np.asarray(v) for k, v in layer.init(None, jnp.float32).items()}
    x = np.random.default_rng(0).normal(2.0, 3.0, (64, 5, 5, 3)).astype(np.float32)
    y, state = layer.apply_train(p, jnp.asarray(x), None)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 0.001), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(state["mean"], 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(state["var"], 0.9 + 0.1 * var, rtol=1e-5)
    np.testing.assert_allclose(layer.apply(p, jnp.asarray(x)), x / np.sqrt(1.001), rtol=1e-6)  # running stats


def test_dropout_is_identity_at_inference_and_random_in_training():
    layer, x = nn.Dropout(0.25), jnp.ones((1000,))
    assert np.array_equal(layer.apply({}, x), x)
    y, _ = layer.apply_train({}, x, jax.random.key(0))
    dropped = float(np.mean(np.asarray(y) == 0))
    assert 0.2 < dropped < 0.3 and np.allclose(np.asarray(y)[np.asarray(y) != 0], 1 / 0.75)
    y2, _ = layer.apply_train({}, x, jax.random.key(1))
    assert not np.array_equal(y, y2)


def test_conv_model_directory_round_trips(tmp_path):
    spec = _small_cnn()
    params = _random_params(spec, 6)
    meta = {"model": "t", "dataset": "mnist", "input": {"scale": 1 / 255, "features": spec.in_features},
            "dtype": "float32", "seed": 6}
    modeldir.save(tmp_path, spec, params, meta)
    model = modeldir.load(tmp_path)
    assert model.spec == spec and model.extra == {}
    for got, want in zip(model.params, params):
        assert got.keys() == want.keys()
        for k in got:
            np.testing.assert_array_equal(got[k], want[k])
    from safetensors.numpy import load_file
    assert "layers.2.gamma" in load_file(str(tmp_path / "model.safetensors"))
