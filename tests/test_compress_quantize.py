"""int8 quantization: multiplier encoding, round-trip error bounds, calibration, and the golden model checked
against a plain Python-integer implementation written independently here."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress import quantize, reference
from zoo import host
from zoo.modeldir import SavedModel
from zoo.nn import Dense, ReLU, Sequential, Sigmoid

SPEC = Sequential([Dense(20, 16), ReLU(), Dense(16, 8), ReLU(), Dense(8, 5)])


@settings(max_examples=300, deadline=None)
@given(m=st.floats(1e-9, 1e8, allow_nan=False))
def test_quantize_multiplier_is_a_half_ulp_approximation(m):
    q, shift = quantize.quantize_multiplier(m)
    assert 1 <= 31 + shift <= quantize.MAX_TOTAL_SHIFT
    if shift < 31:
        assert 2**30 <= q < 2**31
    assert abs(q / 2 ** (31 + shift) - m) <= 2.0 ** -(32 + shift) * (1 + 1e-12)


def test_quantize_multiplier_edges():
    assert quantize.quantize_multiplier(0.0) == (0, 0)
    assert quantize.quantize_multiplier(0.5) == (2**30, 0)
    q, shift = quantize.quantize_multiplier(1 - 2**-40)  # rounds up to 2^31: renormalised
    assert (q, shift) == (2**30, -1)
    q, shift = quantize.quantize_multiplier(2.0**-40)  # below 2^-32: total shift capped at 62
    assert shift == 31 and q == 2**22
    with pytest.raises(quantize.QuantizationError):
        quantize.quantize_multiplier(float("nan"))


def test_weight_round_trip_error_bound_and_zeros():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(50, 7)) * rng.uniform(0.01, 3, 7)
    w[rng.random(w.shape) < 0.6] = 0
    w[:, 3] = 0  # an all-zero channel
    s = quantize.weight_scales(w)
    q = quantize.quantize_weights(w, s)
    assert q.dtype == np.int8 and q.shape == (7, 50)
    assert q.min() >= -127 and q.max() <= 127
    deq = q.T * s[None, :]
    assert np.all(np.abs(deq - w) <= s[None, :] / 2 + 1e-12)
    np.testing.assert_array_equal(q.T == 0, np.abs(w) < s / 2)  # zeros stay zero; only tiny weights join them
    nonzero = [j for j in range(7) if j != 3]
    assert np.all(np.abs(q[nonzero]).max(axis=1) == 127), "each channel uses the full range"


@pytest.mark.parametrize("lo,hi", [(0.0, 6.3), (-3.0, 11.0), (-20.0, 0.5), (2.0, 5.0), (-1e-3, 1e-3)])
def test_activation_qparams_cover_range_and_represent_zero(lo, hi):
    scale, zp = quantize.activation_qparams(lo, hi)
    assert -128 <= zp <= 127 and isinstance(zp, int)
    assert scale * (-128 - zp) <= min(lo, 0) + scale / 2
    assert scale * (127 - zp) >= max(hi, 0) - scale / 2
    if lo == 0.0:
        assert zp == -128, "a ReLU output starts at the bottom of the range"


def _tiny_model(seed=0):
    params = [{k: np.asarray(v) for k, v in p.items()} for p in SPEC.init(jax.random.key(seed))]
    rng = np.random.default_rng(seed)
    for p in params:
        if p:
            p["b"] = rng.normal(size=p["b"].shape).astype(np.float32) * 0.1
    calib = rng.integers(0, 256, (200, 20)).astype(np.uint8)
    qmeta, extra, fparams = quantize.quantize_model(SPEC, params, 1 / 255, calib)
    meta = {"dtype": "float32", "input": {"scale": 1 / 255, "features": 20}, "quantization": qmeta}
    model = SavedModel(SPEC, fparams, meta, extra)
    model.calib = calib
    return model, rng


def _python_int_forward(model, raw_row):
    """Independent golden: Python integers, one sample, written from the scheme in docs/COMPRESS.md."""
    q = [int(r) - 128 for r in raw_row]
    for lm in model.meta["quantization"]["layers"]:
        i = lm["index"]
        w = model.extra[f"q.layers.{i}.w"].tolist()
        bias = model.extra[f"q.layers.{i}.bias"].tolist()
        mult = model.extra[f"q.layers.{i}.multiplier"].tolist()
        shift = model.extra[f"q.layers.{i}.shift"].tolist()
        out = []
        for j in range(len(w)):
            acc = bias[j] + sum((q[k] - lm["input_zero_point"]) * w[j][k] for k in range(len(q)))
            assert -2**31 <= acc < 2**31
            total = 31 + shift[j]
            v = (acc * mult[j] + 2 ** (total - 1)) // 2**total + lm["output_zero_point"]  # floor = arithmetic >>
            out.append(min(max(v, lm["act_min"]), lm["act_max"]))
        q = out
    return q


def test_golden_forward_equals_python_integers():
    model, rng = _tiny_model()
    raw = rng.integers(0, 256, (40, 20)).astype(np.uint8)
    raw[0] = 0
    raw[1] = 255
    out = reference.forward(model, raw)
    assert out.dtype == np.int8 and out.shape == (40, 5)
    for row, o in zip(raw, out):
        assert o.tolist() == _python_int_forward(model, row)
    np.testing.assert_array_equal(reference.forward(model, raw[3]), out[3])


def test_int8_outputs_track_the_float_view():
    """On the calibration images (no clipping), dequantized int8 outputs stay within a few output steps of the float
    model built from the same (dequantized) weights; the rounding of hidden activations is the only difference."""
    model, rng = _tiny_model(1)
    raw = model.calib
    deq = reference.dequantize_outputs(model, reference.forward(model, raw))
    flt = host.forward(model, raw)
    step = model.meta["quantization"]["output"]["scale"]
    assert np.max(np.abs(deq - flt)) <= 4 * step


def test_unsupported_models_are_rejected():
    spec = Sequential([Dense(2, 3), Sigmoid(), Dense(3, 1), Sigmoid()], output="binary")
    with pytest.raises(quantize.QuantizationError, match="sigmoid"):
        quantize.check_supported(spec, "xor")
    with pytest.raises(reference.NotQuantizedError, match="--quantize int8"):
        reference.forward(SavedModel(SPEC, [], {"model": "m"}), np.zeros((1, 20), np.uint8))


def test_requantize_rounds_half_up_on_ties():
    # acc * mult / 2^(31+shift) = k + 1/2 exactly: rounds towards +inf for both signs
    assert int(quantize.requantize(3, 2**30, 0)) == 2  # 1.5 -> 2
    assert int(quantize.requantize(-3, 2**30, 0)) == -1  # -1.5 -> -1
    assert int(quantize.requantize(-5, 2**30, 1)) == math.floor(-5 / 4 + 0.5)
