"""The one-multiply int8 conv output stage: compress's rounded conv multipliers (compress.quantize.reduced_multiplier,
accumulator_range), the build's per-channel records (firmware/requant.py) and the kernels' record stage
(conv_q8_m0.c pz_q8_requant_rec*_m0 and its C twin) against the golden formula (compress.quantize.requantize, exact
int64) and the NumPy conv golden model of tests/test_firmware_conv.py."""

from __future__ import annotations

import ctypes
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress.quantize import (MAX_REDUCED_BITS, MIN_REDUCED_BITS, accumulator_range, multiply_bound,
                               quantize_multiplier, quantize_model, reduced_multiplier, requantize)
from firmware import requant
from rp2040_sim.kernel_harness import ConvImage, conv_case, conv_packed, conv_records
from test_firmware_conv import Q8Conv, host_conv_lib, q8_golden

ACTS = [None, "relu", "relu6"]


# -- compress: the rounded multipliers ------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(mant=st.floats(0.5, 1.0, exclude_max=True), exp=st.integers(-30, 10), bound=st.integers(0, 2**24))
def test_reduced_multiplier_bits_bound_and_scale_error(mant, exp, bound):
    m = math.ldexp(mant, exp)
    mult, shift = reduced_multiplier(m, bound)
    bits = min(31 - bound.bit_length(), MAX_REDUCED_BITS)
    if bits < MIN_REDUCED_BITS:
        assert (mult, shift) == quantize_multiplier(m)
        return
    assert 2**30 <= mult < 2**31 and -30 <= shift <= 31
    assert mult % (1 << (31 - bits)) == 0
    assert bound * (mult >> (31 - bits)) < 2**31  # one 32-bit product holds every accumulator's
    real = Fraction(mult, 1 << (31 + shift))
    assert abs(real - Fraction(m)) <= Fraction(m) / (1 << bits)  # the scale kept to within 2^-P


def test_accumulator_range_is_reached_by_extreme_inputs():
    """The bounds are the accumulators of the two extreme inputs (q = -128 / 127 by the weight's sign), computed
    here per channel with Python integers."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (3, 3, 5, 7))  # channel-last conv weights
    bias = rng.integers(-2**20, 2**20, 7)
    for zp_in in (-128, -3, 127):
        lo, hi = accumulator_range(w.astype(np.int8), bias, zp_in)
        for k in range(7):
            ws = [int(v) for v in w[..., k].ravel()]
            low = int(bias[k]) + sum(((-128 if v > 0 else 127) - zp_in) * v for v in ws)
            high = int(bias[k]) + sum(((127 if v > 0 else -128) - zp_in) * v for v in ws)
            assert (int(lo[k]), int(hi[k])) == (low, high)
    # OHWI (axis 0) gives the same as channel-last
    lo2, hi2 = accumulator_range(np.moveaxis(w, -1, 0).astype(np.int8), bias, 5, axis=0)
    np.testing.assert_array_equal(np.stack([lo2, hi2]), np.stack(accumulator_range(w.astype(np.int8), bias, 5)))
    # only accumulators whose outputs are inside (act_min, act_max) are multiplied: about (bottom + 1/2) / scale
    # .. (top - 1/2) / scale, within [lo, hi]; the bound is the larger magnitude, with the margin
    np.testing.assert_array_equal(multiply_bound([-9, -9, 3], [4, -1, 8], -128, 127, 0, 1e-6), [9, 9, 8])
    np.testing.assert_array_equal(multiply_bound([-900, -900, 300], [400, -1, 800], 0, 10, 0, 0.1),
                                  [97, 0, 0])  # ReLU: 5 (0.5 / 0.1) to 95 (9.5 / 0.1); -1 or 300: never
    np.testing.assert_array_equal(multiply_bound([-900], [-600], 0, 10, 0, 0.1), [0])  # always act_min
    np.testing.assert_array_equal(multiply_bound([-900], [900], -128, 127, 0, 1.0), [129])

def test_quantized_cnn_gets_records_for_every_conv_layer(mnist):
    """compress rounds conv and depthwise multipliers so that the build finds records for them; dense layers keep
    their 31-bit multipliers."""
    from compress.netspec import for_inference
    from test_firmware_conv_build import tiny_cnn

    rng = np.random.default_rng(1)
    spec = tiny_cnn()
    params = [{name: rng.uniform(*{"var": (0.5, 2.0), "gamma": (0.5, 1.5)}.get(name, (-0.6, 0.6)), shape)
               .astype(np.float32) for name, shape in layer.param_shapes().items()} for layer in spec.layers]
    ispec, iparams = for_inference(spec, params)
    qmeta, extra, _ = quantize_model(ispec, iparams, 1 / 255, mnist.x_test[:64])
    kinds = set()
    for lm in qmeta["layers"]:
        if lm["type"] not in ("conv2d", "depthwise_conv2d", "dense"):
            continue
        i = lm["index"]
        mult, shift = extra[f"q.layers.{i}.multiplier"], extra[f"q.layers.{i}.shift"]
        if lm["type"] == "dense":
            assert np.any(mult.astype(np.int64) & 0xFF), "dense multipliers are not rounded"
            continue
        kinds.add(lm["type"])
        rec = requant.output_records(extra[f"q.layers.{i}.w"], extra[f"q.layers.{i}.bias"], mult, shift,
                                     lm["input_zero_point"], lm["output_zero_point"], lm["act_min"], lm["act_max"],
                                     -1 if lm["type"] == "depthwise_conv2d" else 0)
        assert rec is not None, f"layer {i}: no records"
        assert rec.shape == (requant.RECORD_WORDS * len(mult),)
    assert kinds == {"conv2d", "depthwise_conv2d"}


# -- the records -----------------------------------------------------------------------------------------------------
def record_output(acc: int, rec):
    """What the M0+ stage computes from a record (L, A, w) before adding out_zp: "low" for acc <= L, "top" from A
    on, else x = acc m' (int32), floor(x / 2^s) plus bit s - 1 of x."""
    low, a, word = rec
    if acc <= low:
        return "low"
    if acc >= a:
        return "top"
    reduced, s = word >> 8, word & 0xFF
    x = acc * reduced
    assert -2**31 <= x < 2**31
    return (x >> s) + ((x >> (s - 1)) & 1)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), reduced=st.integers(1, 2**MAX_REDUCED_BITS - 1), t=st.integers(1, 62),
       bottom=st.integers(-300, 300), span=st.integers(1, 300))
def test_record_equals_the_golden_formula(data, reduced, t, bottom, span):
    """Every accumulator of [lo, hi]: the record gives the golden formula's clamp(q, bottom, top) (low: q <= bottom,
    top: q >= top, else q itself strictly between), or the build refuses it because some accumulator it would
    multiply has its product outside int32."""
    top = bottom + span
    k = data.draw(st.integers(0, 31 - reduced.bit_length()))
    m, shift = reduced << k, t - 31
    lim = (2**31 - 1) // reduced
    lo = data.draw(st.integers(-lim - 2, lim))
    hi = data.draw(st.integers(lo, lim + 2))
    rec = requant.record(m, shift, lo, hi, bottom, top)
    tz = (m & -m).bit_length() - 1
    red, s = m >> tz, t - tz
    if s < 1:
        red, s = red << (1 - s), 1
    if rec is None:  # only when a multiplied accumulator's product would leave int32
        low, a = requant.saturation(m, shift, bottom, top)
        first, last = max(lo, low + 1), min(hi, a - 1)
        assert red >= 2**MAX_REDUCED_BITS or first * red < -2**31 or last * red > 2**31 - 1
        return
    assert rec[2] == red << 8 | s
    accs = [lo, hi, lo + 1, hi - 1, 0, -1, 1, rec[0], rec[0] + 1, rec[1], rec[1] - 1]
    for acc in accs + [data.draw(st.integers(lo, hi)) for _ in range(8)]:
        if lo <= acc <= hi:
            got, want = record_output(acc, rec), int(requantize(acc, m, shift))
            if got == "low":
                assert want <= bottom
            elif got == "top":
                assert want >= top
            else:
                assert got == want and bottom < got < top, (acc, m, shift, rec)


def test_record_refused_past_int32():
    big = 2**31 // 3 + 1
    assert requant.record(2**30, 0, -2, 2, -128, 127) is not None  # m' = 1
    # m = 3/8: outputs inside (-128, 127) for acc in [-340, 338]: those are the only products
    assert requant.record(3 << 28, 0, -big, big, -128, 127) == (-341, 338, 3 << 8 | 3)
    assert requant.record(3 << 28, 0, 0, big, -128, 127) == (-1, 338, 3 << 8 | 3)  # L = lo - 1: never low
    assert requant.record(3 << 28, 0, -big, big, -2**29, 2**29) is None  # 3 acc would leave int32
    assert requant.record(0, 0, -5, 7, 2, 9) == (7, 8, 1)                # m = 0: always act_min
    assert requant.record(0, 0, -5, 7, -9, -2) == (-6, -5, 1)            # m = 0: always act_max
    assert requant.record(0, 0, -5, 7, -2, 9) == (-6, 8, 1)              # m = 0: always out_zp
    w = np.zeros((1, 1, 1, 2), np.int8)
    assert requant.output_records(w, [1, 2], [2**30, 2**30], [0, 0], 0, 0, 5, 4, 0) is None  # act_min > act_max
    assert requant.record(2**30, 0, -5, 7, 3, 3) == (7, 8, 1)                  # act_min = act_max: always act_min
    assert requant.output_records(w, [1, 2], [2**30, 2**30], [0, 0], 0, 0, 0, 127, 0) is not None


# -- the kernels ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lib():
    return host_conv_lib("pz_conv_requant")


@pytest.fixture(scope="module")
def m0(tmp_path_factory):
    return ConvImage.build(tmp_path_factory.mktemp("conv_requant"))


def run_host(lib, t, out_xor):
    """The host build of pz_*_q8_m0 with the records the build gives the layer (conv_records)."""
    s, keep = t["shape"], []

    def buf(a):
        a = np.ascontiguousarray(a)
        keep.append(a)
        return a.ctypes.data

    rec = conv_records(t)
    assert rec is not None
    packed, fb = conv_packed(t)
    scratch = buf(np.zeros(lib.pz_conv_q8_scratch_bytes(ctypes.byref(s), int(t["depthwise"])) // 4 + 1, np.uint32))
    layer = Q8Conv(s, buf(packed), buf(fb), buf(t["mult"]), buf(t["shift"]), t["zp_out"], t["act_min"],
                   t["act_max"], out_xor, (t["zp_in"] + 128) & 0xFF, scratch, buf(rec))
    n = s.out_h * s.out_w * s.out_c
    y = np.full(n + 8, 0xA5, np.uint8)
    op = "dwconv2d" if t["depthwise"] else "conv2d"
    getattr(lib, f"pz_{op}_q8_m0")(ctypes.byref(layer), ctypes.c_void_p(t["xu"].ctypes.data),
                                   ctypes.c_void_p(y.ctypes.data))
    assert np.all(y[n:] == 0xA5)
    return (y[:n] ^ out_xor).view(np.int8).reshape(s.out_h, s.out_w, s.out_c)


def set_act(t, rng, act):
    t["zp_out"] = int(rng.integers(-128, 128))
    zp = t["zp_out"]
    t["act_min"], t["act_max"] = {None: (-128, 127), "relu": (zp, 127), "relu6": (zp, min(127, zp + 40))}[act]


def bound_case(seed, act, depthwise):
    """Zero weights make each channel's accumulator its bias: drawn around the output steps next to act_min and
    act_max (the records' L and A; ties included: m' = 1 channels), at +-floor((2^31 - 1) / m') and at random, with
    reduced multipliers m' of 1..23 bits and s = 1..23: with s = 23 the products next to A reach 255.5 * 2^23, just
    inside int32."""
    rng = np.random.default_rng(seed)
    k = 23  # odd: the stage's two-output passes entered at the second
    t = conv_case(rng, 2, 2, k if depthwise else 3, k, (3, 3), (1, 1), "same", depthwise)
    t["w"][:] = 0
    set_act(t, rng, act)
    bits = rng.integers(1, MAX_REDUCED_BITS + 1, k)
    reduced = (rng.integers(0, 2**62, k) >> (62 - bits)) | 1
    reduced[:3] = 1
    low = np.array([rng.integers(0, 31 - int(r).bit_length() + 1) for r in reduced])
    s = rng.integers(1, 24, k)
    s[3:6] = 23
    t["mult"] = (reduced << low).astype(np.int32)
    t["shift"] = (s + low - 31).astype(np.int8)
    lim = np.minimum((2**31 - 1) // reduced, 2**31 - 2)
    bottom, top = t["act_min"] - t["zp_out"], t["act_max"] - t["zp_out"]
    q = np.where(rng.random(k) < 0.6, rng.choice([bottom, bottom + 1, top - 1, top], k), rng.integers(-300, 301, k))
    near = [(int(qq) * 2**int(ss) + 2**(int(ss) - 1)) // int(r) + int(rng.integers(-1, 2))
            for qq, ss, r in zip(q, s, reduced)]
    acc = np.where(rng.random(k) < 0.8, np.clip(near, -lim, lim), [int(rng.integers(-int(v), int(v) + 1)) for v in lim])
    acc[6:8] = (-lim[6], lim[7])
    t["bias"] = acc.astype(np.int64).astype(np.int32)
    return t


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), act=st.sampled_from(ACTS), out_xor=st.sampled_from([0, 0x80]),
       depthwise=st.booleans())
def test_record_stage_at_the_bound_host(lib, seed, act, out_xor, depthwise):
    t = bound_case(seed, act, depthwise)
    np.testing.assert_array_equal(run_host(lib, t, out_xor), q8_golden(t))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), act=st.sampled_from(ACTS), out_xor=st.sampled_from([0, 0x80]),
       depthwise=st.booleans())
def test_record_stage_at_the_bound_in_emulator(m0, seed, act, out_xor, depthwise):
    t = bound_case(seed, act, depthwise)
    # the record stage per pixel, or over a batch of pixels (conv2d's small-K path: the 2x2 input's row bands)
    fns = ["pz_q8_requant_rec_m0", "pz_q8_requant_rec_px_m0"]
    op = "dwconv2d" if depthwise else "conv2d"
    run, entered = m0.call_entering(t, f"pz_{op}_q8_m0", fns, out_xor)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert entered, f"{fns} did not run"


def test_past_the_bound_the_layer_keeps_the_general_stage(m0):
    """One channel whose product would leave int32: no records (the build's check), the exact general path."""
    t = bound_case(5, None, False)
    t["mult"][7], t["shift"][7] = ((1 << 23) - 1) << 8, 7  # m' = 2^23 - 1, s = 30: q = 1 is acc ~ 128
    t["bias"][7] = 300                                     # multiplied (q ~ 2), 300 m' > 2^31 - 1
    assert conv_records(t) is None
    run, entered = m0.call_entering(t, "pz_conv2d_q8_m0", ["pz_q8_requant_rec_m0"])
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert not entered


def rounded(t):
    """conv_case's layer with its multipliers rounded as compress rounds a conv layer's."""
    lo, hi = accumulator_range(t["w"], t["bias"], t["zp_in"], -1 if t["depthwise"] else 0)
    real = [float(Fraction(int(m), 1 << (31 + int(s)))) for m, s in zip(t["mult"], t["shift"])]
    bound = multiply_bound(lo, hi, t["act_min"], t["act_max"], t["zp_out"], real)
    pairs = [reduced_multiplier(r, int(b)) for r, b in zip(real, bound)]
    t["mult"] = np.array([m for m, _ in pairs], np.int32)
    t["shift"] = np.array([s for _, s in pairs], np.int8)
    return t


@pytest.mark.parametrize("seed,h,w,c,k,kernel,stride,padding,depthwise", [
    (0, 7, 6, 8, 12, (3, 3), (1, 1), "same", False),    # interior runs + gathered borders, K % 8 = 4
    (1, 9, 9, 1, 8, (3, 3), (2, 2), "same", False),     # a 1-channel first layer
    (2, 5, 5, 32, 40, (1, 1), (1, 1), "valid", False),  # pointwise, two calls per pixel
    (3, 8, 8, 12, 12, (3, 3), (2, 2), "same", True),    # depthwise
    (4, 6, 7, 13, 13, (3, 3), (1, 1), "same", True),     # odd channel counts
    (5, 5, 6, 3, 7, (3, 3), (1, 1), "same", False),
])
def test_rounded_multiplier_layers_bit_exact(lib, m0, seed, h, w, c, k, kernel, stride, padding, depthwise):
    rng = np.random.default_rng(seed)
    op = "dwconv2d" if depthwise else "conv2d"
    for act in ACTS:
        t = conv_case(rng, h, w, c, k, kernel, stride, padding, depthwise)
        set_act(t, rng, act)
        t = rounded(t)
        assert conv_records(t) is not None
        want = q8_golden(t)
        for out_xor in (0, 0x80):
            np.testing.assert_array_equal(run_host(lib, t, out_xor), want)
            np.testing.assert_array_equal(m0.call(t, f"pz_{op}_q8_m0", out_xor).y, want)
