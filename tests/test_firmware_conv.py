"""Conv, depthwise conv and pooling kernels (firmware/kernels/conv*.c) on the host against NumPy references.

The references here are written independently of the C: windows are cut from an explicitly padded NumPy array
(zeros for conv, i.e. q - zp_in = 0 in int8; -inf / not counted for pools), the int8 accumulator is computed in
int64 from q - zp_in and the unfolded bias, and requantized with compress.quantize.requantize. float32 kernels are
compared with float64 under the summation bound |error| <= 2 (n + 1) eps (|b| + sum |x w|) (n = terms per output).
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress import conv_layout
from compress.quantize import requantize
from firmware import hostcc
from rp2040_sim.kernel_harness import (CONV_SOURCES, KERNELS, ConvImage, ConvShape, conv_case, conv_fields, conv_packed,
                                       conv_shape, timed_shifts)

# the int8 conv kernels the firmware links (kernel_harness.CONV_SOURCES: one list to extend) and the float ones
SOURCES = [p.name for p in CONV_SOURCES] + ["conv_f32.c"]
Q8_CONV = ("ref", "m0")


class Q8Conv(ctypes.Structure):
    """pz_q8_conv_t as the host compiler lays it out."""
    _fields_ = conv_fields(ctypes.c_void_p)


def host_conv_lib(name, extra=(), include_dirs=()):
    """The conv kernels (SOURCES, then `extra`) built for the host as one shared library called `name`."""
    lib = hostcc.build([KERNELS / s for s in (*SOURCES, *extra)], include_dirs=[KERNELS, *include_dirs], name=name)
    lib.pz_conv_q8_scratch_bytes.restype = ctypes.c_uint32
    return lib


@pytest.fixture(scope="module")
def lib():
    lib = host_conv_lib("pz_conv")
    for name in ("pz_conv2d_f32", "pz_dwconv2d_f32"):
        getattr(lib, name).argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_float, ctypes.c_float]
    return lib


def ptr(a):
    return ctypes.c_void_p(a.ctypes.data)


# -- geometry -------------------------------------------------------------------------------------------------------
@st.composite
def geometry(draw, max_hw=9, max_k=3):
    padding = draw(st.sampled_from(["same", "valid"]))
    kh, kw = draw(st.integers(1, max_k)), draw(st.integers(1, max_k))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = draw(st.integers(kh if padding == "valid" else 1, max_hw))
    w = draw(st.integers(kw if padding == "valid" else 1, max_hw))
    return h, w, (kh, kw), (sh, sw), padding


shape = conv_shape


def windows(x, s: ConvShape, fill):
    """(out_h, out_w, k_h, k_w, C) windows of x (h, w, C), padding cells = fill (before and after, TF rule)."""
    pb = max((s.out_h - 1) * s.stride_h + s.k_h - s.in_h, 0) - s.pad_top
    pr = max((s.out_w - 1) * s.stride_w + s.k_w - s.in_w, 0) - s.pad_left
    xp = np.pad(x, ((s.pad_top, max(pb, 0)), (s.pad_left, max(pr, 0)), (0, 0)), constant_values=fill)
    out = np.empty((s.out_h, s.out_w, s.k_h, s.k_w, x.shape[2]), xp.dtype)
    for oy in range(s.out_h):
        for ox in range(s.out_w):
            out[oy, ox] = xp[oy * s.stride_h:oy * s.stride_h + s.k_h, ox * s.stride_w:ox * s.stride_w + s.k_w]
    return out


def test_same_padding_rule():
    # 96 px, k3, s2: 48 out, 0 before, 1 after (TF, reference/conv-onnx.md); 5 px k3 s1: 1 before
    assert conv_layout.window(96, 3, 2, "same") == (48, 0)
    assert conv_layout.window(5, 3, 1, "same") == (5, 1)
    assert conv_layout.window(7, 3, 2, "valid") == (3, 0)
    with pytest.raises(ValueError, match="does not fit"):
        conv_layout.window(2, 3, 1, "valid")
    with pytest.raises(ValueError, match="padding 'full'"):
        conv_layout.window(5, 3, 1, "full")


# -- float32 -------------------------------------------------------------------------------------------------------
def check_bound(y, ref64, magnitude, n_terms):
    bound = 2 * (n_terms + 1) * np.finfo(np.float32).eps * magnitude + np.finfo(np.float32).tiny
    assert np.all(np.abs(y.astype(np.float64) - ref64) <= bound), (y, ref64)


@settings(max_examples=60, deadline=None)
@given(g=geometry(), c=st.integers(1, 6), k=st.integers(1, 9), seed=st.integers(0, 2**32 - 1),
       act=st.sampled_from([None, "relu", "relu6"]), depthwise=st.booleans())
def test_float_conv_equals_numpy(lib, g, c, k, seed, act, depthwise):
    h, w, kernel, stride, padding = g
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, (h, w, c)).astype(np.float32)
    if depthwise:
        k = c
        wt = rng.normal(0, 1, (*kernel, c)).astype(np.float32)
    else:
        wt = rng.normal(0, 1, (*kernel, c, k)).astype(np.float32)
    b = rng.normal(0, 1, k).astype(np.float32)
    s = shape(h, w, c, kernel, stride, padding, k)
    lo, hi = {None: (-np.inf, np.inf), "relu": (0, np.inf), "relu6": (0, 6)}[act]
    y = np.full((s.out_h, s.out_w, k), np.nan, np.float32)
    fn = lib.pz_dwconv2d_f32 if depthwise else lib.pz_conv2d_f32
    fn(ctypes.byref(s), ptr(x), ptr(wt), ptr(b), ptr(y), lo, hi)
    win = windows(x.astype(np.float64), s, 0.0)
    if depthwise:
        ref = np.einsum("yxhwc,hwc->yxc", win, wt) + b
        mag = np.einsum("yxhwc,hwc->yxc", np.abs(win), np.abs(wt)) + np.abs(b)
    else:
        ref = np.einsum("yxhwc,hwck->yxk", win, wt) + b
        mag = np.einsum("yxhwc,hwck->yxk", np.abs(win), np.abs(wt)) + np.abs(b)
    check_bound(y, np.clip(ref, lo, hi), mag, kernel[0] * kernel[1] * (1 if depthwise else c))


@settings(max_examples=60, deadline=None)
@given(g=geometry(max_k=4), c=st.integers(1, 6), seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["max", "avg"]),
       in_place=st.booleans())
def test_float_pools_equal_numpy(lib, g, c, seed, kind, in_place):
    h, w, kernel, stride, padding = g
    s = shape(h, w, c, kernel, stride, padding, c)
    x = np.random.default_rng(seed).normal(0, 3, (h, w, c)).astype(np.float32)
    if in_place:
        if s.pad_top or s.pad_left:
            return
        y = x.copy().ravel()
        getattr(lib, f"pz_{kind}pool2d_f32")(ctypes.byref(s), ptr(y), ptr(y))
        y = y[:s.out_h * s.out_w * c].reshape(s.out_h, s.out_w, c)
    else:
        y = np.full((s.out_h, s.out_w, c), np.nan, np.float32)
        getattr(lib, f"pz_{kind}pool2d_f32")(ctypes.byref(s), ptr(x), ptr(y))
    if kind == "max":
        np.testing.assert_array_equal(y, windows(x, s, -np.inf).max(axis=(2, 3)))
    else:
        win = windows(x.astype(np.float64), s, np.nan)
        check_bound(y, np.nanmean(win, axis=(2, 3)), np.nansum(np.abs(win), axis=(2, 3)), kernel[0] * kernel[1] + 1)


def test_float_global_avg_pool(lib):
    x = np.random.default_rng(0).normal(0, 3, (5, 7, 3)).astype(np.float32)
    y = np.full(3, np.nan, np.float32)
    lib.pz_gavgpool_f32(ptr(x), ptr(y), 35, 3)
    check_bound(y, x.astype(np.float64).mean(axis=(0, 1)), np.abs(x.astype(np.float64)).sum(axis=(0, 1)), 36)


# -- int8 ------------------------------------------------------------------------------------------------------------
def q8_golden(t):
    s = t["shape"]
    centred = t["xu"].astype(np.int64) - 128 - t["zp_in"]
    win = windows(centred, s, 0)
    if t["depthwise"]:
        acc = np.einsum("yxhwc,hwc->yxc", win, t["w"].astype(np.int64))
    else:
        acc = np.einsum("yxhwc,khwc->yxk", win, t["w"].astype(np.int64))
    acc = acc + t["bias"]
    y = requantize(acc, t["mult"].astype(np.int64), t["shift"].astype(np.int64)) + t["zp_out"]
    return np.clip(y, t["act_min"], t["act_max"]).astype(np.int8)


SCRATCH_GUARD = 64


def run_q8(lib, t, kind, out_xor=0):
    """pz_conv2d_q8_KIND / pz_dwconv2d_q8_KIND on the host with exactly pz_conv_q8_scratch_bytes of scratch (what
    firmware/convgen.py reserves in the arena), then a guard that must stay untouched, as must the bytes after y."""
    s, keep = t["shape"], []

    def buf(a):
        a = np.ascontiguousarray(a)
        keep.append(a)
        return a.ctypes.data

    packed, fb = conv_packed(t)
    w_ptr = buf(np.frombuffer(packed.tobytes() + b"\0" * 4, np.uint8)[:len(packed) + 4].copy())
    n_scratch = lib.pz_conv_q8_scratch_bytes(ctypes.byref(s), int(t["depthwise"]))
    assert n_scratch % 4 == 0
    scratch = np.full((n_scratch + SCRATCH_GUARD) // 4, 0x5A5A5A5A, np.uint32)
    layer = Q8Conv(s, w_ptr, buf(fb), buf(t["mult"]), buf(t["shift"]), t["zp_out"], t["act_min"], t["act_max"],
                   out_xor, (t["zp_in"] + 128) & 0xFF, buf(scratch))
    n = s.out_h * s.out_w * s.out_c
    y = np.full(n + 8, 0xA5, np.uint8)
    x = np.ascontiguousarray(t["xu"])
    op = "dwconv2d" if t["depthwise"] else "conv2d"
    getattr(lib, f"pz_{op}_q8_{kind}")(ctypes.byref(layer), ptr(x), ptr(y))
    assert np.all(y[n:] == 0xA5), "kernel wrote past its output"
    assert np.all(scratch.view(np.uint8)[n_scratch:] == 0x5A), "kernel wrote past pz_conv_q8_scratch_bytes"
    return (y[:n] ^ out_xor).view(np.int8).reshape(s.out_h, s.out_w, s.out_c)


@settings(max_examples=80, deadline=None)
@given(g=geometry(), c=st.integers(1, 12), k=st.integers(1, 20), seed=st.integers(0, 2**32 - 1),
       edge=st.sampled_from([None, None, "max", "tiny", "shifts"]), out_xor=st.sampled_from([0, 0x80]),
       depthwise=st.booleans())
def test_q8_conv_equals_numpy_golden(lib, g, c, k, seed, edge, out_xor, depthwise):
    h, w, kernel, stride, padding = g
    t = conv_case(np.random.default_rng(seed), h, w, c, k, kernel, stride, padding, depthwise, edge)
    want = q8_golden(t)
    for kind in Q8_CONV:
        np.testing.assert_array_equal(run_q8(lib, t, kind, out_xor), want, err_msg=kind)


def test_q8_conv_saturates(lib):
    t = conv_case(np.random.default_rng(3), 6, 6, 8, 8, (3, 3), (1, 1), "same", False, "max")
    t["act_min"], t["act_max"] = -128, 127
    out = run_q8(lib, t, "m0")
    np.testing.assert_array_equal(out, q8_golden(t))
    assert out.max() == 127 and out.min() == -128


def pool_golden(xu, s, kind):
    q = xu.astype(np.int64) - 128
    if kind == "max":
        return windows(q, s, -1 << 40).max(axis=(2, 3)).astype(np.int8)
    win = windows(q, s, 1 << 40)
    inside = win != 1 << 40
    total, n = np.where(inside, win, 0).sum(axis=(2, 3)), inside.sum(axis=(2, 3))
    return np.clip(np.sign(total) * ((np.abs(total) + n // 2) // n), -128, 127).astype(np.int8)


@settings(max_examples=60, deadline=None)
@given(g=geometry(max_k=4), c=st.integers(1, 6), seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["max", "avg"]),
       out_xor=st.sampled_from([0, 0x80]), ties=st.booleans())
def test_q8_pools_equal_numpy_golden(lib, g, c, seed, kind, out_xor, ties):
    h, w, kernel, stride, padding = g
    s = shape(h, w, c, kernel, stride, padding, c)
    rng = np.random.default_rng(seed)
    # ties: values 127 / 128 / 129 (q = -1, 0, 1) make half-way sums common, so the rounding direction is tested
    xu = (rng.integers(127, 130, (h, w, c)) if ties else rng.integers(0, 256, (h, w, c))).astype(np.uint8)
    n = s.out_h * s.out_w * c
    for fn in [f"pz_{kind}pool2d_q8"] + (["pz_maxpool2d_q8_m0"] if kind == "max" else []):
        y = np.full(n + 8, 0xA5, np.uint8)
        getattr(lib, fn)(ctypes.byref(s), ptr(xu), ptr(y), out_xor)
        assert np.all(y[n:] == 0xA5)
        np.testing.assert_array_equal((y[:n] ^ out_xor).view(np.int8).reshape(s.out_h, s.out_w, c),
                                      pool_golden(xu, s, kind), err_msg=fn)
        if not (s.pad_top or s.pad_left):  # in place
            y = np.concatenate([xu.ravel(), np.full(8, 0xA5, np.uint8)])
            getattr(lib, fn)(ctypes.byref(s), ptr(y), ptr(y), out_xor)
            np.testing.assert_array_equal((y[:n] ^ out_xor).view(np.int8).reshape(s.out_h, s.out_w, c),
                                          pool_golden(xu, s, kind), err_msg=f"{fn} in place")


@pytest.mark.parametrize("hw,c", [(1, 3), (9, 4), (36, 2), (2, 5)])
def test_q8_global_avg_pool_rounds_half_away_from_zero(lib, hw, c):
    rng = np.random.default_rng(hw)
    cases = (rng.integers(0, 256, (hw, c)), rng.integers(127, 130, (hw, c)), np.full((hw, c), 0), np.full((hw, c), 255))
    for xu in cases:
        xu = np.ascontiguousarray(xu, np.uint8)
        y = np.zeros(c, np.uint8)
        lib.pz_gavgpool_q8(ptr(xu), ptr(y), hw, c, 0x80)
        total = xu.astype(np.int64).sum(axis=0) - 128 * hw
        want = [int(np.sign(t)) * ((abs(int(t)) + hw // 2) // hw) for t in total]  # Python ints: exact
        assert (y ^ 0x80).view(np.int8).tolist() == want


def test_conv8_layout_round_trip():
    rng = np.random.default_rng(0)
    for shape_ in ((1, 1, 1, 1), (5, 3, 3, 2), (8, 1, 1, 16), (13, 2, 3, 4)):
        w = rng.integers(-127, 128, shape_).astype(np.int8)
        fb = rng.integers(-2**31, 2**31, shape_[0]).astype(np.int32)
        packed = conv_layout.pack_conv8(w, fb)
        assert len(packed) == conv_layout.conv8_bytes(*shape_)
        w2, fb2 = conv_layout.unpack_conv8(packed, shape_)
        np.testing.assert_array_equal(w2, w)
        np.testing.assert_array_equal(fb2, fb)
    with pytest.raises(TypeError, match="int8"):
        conv_layout.pack_conv8(np.zeros((1, 1, 1, 1), np.int16), np.zeros(1, np.int32))
    with pytest.raises(TypeError, match="int8"):
        conv_layout.pack_depthwise(np.zeros((1, 1), np.int8), np.zeros(1, np.int32))
    w = rng.integers(-127, 128, (3, 3, 5)).astype(np.int8)
    fb = rng.integers(-2**31, 2**31, 5).astype(np.int32)
    records = conv_layout.pack_depthwise(w, fb).reshape(5, 16)
    assert len(records.ravel()) == conv_layout.depthwise_bytes(3, 3, 5)
    np.testing.assert_array_equal(records[:, :4].copy().view("<i4").ravel(), fb)
    np.testing.assert_array_equal(records[:, 4:13].view(np.int8), w.reshape(9, 5).T)
    assert not records[:, 13:].any()
    with pytest.raises(OverflowError):
        conv_layout.folded_conv_bias(np.array([-2**31 + 1]), np.full((1, 1, 1, 1), 127, np.int8), 127)


# -- the M0+ build in rp2040_sim -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def m0(tmp_path_factory):
    return ConvImage.build(tmp_path_factory.mktemp("conv_m0"))


@pytest.mark.parametrize("seed,h,w,c,k,kernel,stride,padding,depthwise,edge", [
    (0, 7, 6, 8, 12, (3, 3), (1, 1), "same", False, None),     # interior runs + gathered borders, K % 8 = 4
    (1, 9, 9, 3, 8, (3, 3), (2, 2), "same", False, None),      # kw * C = 9: every window gathered, 1-byte tail
    (2, 5, 5, 16, 8, (1, 1), (1, 1), "valid", False, "max"),   # pointwise, saturating
    (3, 6, 7, 1, 5, (3, 2), (2, 1), "valid", False, "tiny"),
    (4, 8, 8, 12, 12, (3, 3), (2, 2), "same", True, None),     # depthwise
    (5, 5, 4, 5, 5, (2, 3), (1, 2), "valid", True, "max"),
    (6, 6, 6, 8, 40, (3, 3), (1, 1), "same", False, "shifts"),  # total shifts 1..62 through the M0+ requantization
    (7, 7, 5, 24, 24, (3, 3), (1, 1), "same", True, "shifts"),
    (8, 5, 5, 8, 16, (1, 1), (1, 1), "valid", False, "tiny"),
])
def test_m0_kernels_bit_exact_in_emulator(m0, seed, h, w, c, k, kernel, stride, padding, depthwise, edge):
    t = conv_case(np.random.default_rng(seed), h, w, c, k, kernel, stride, padding, depthwise, edge)
    want = q8_golden(t)
    op = "dwconv2d" if depthwise else "conv2d"
    for kind in Q8_CONV:
        for out_xor in (0, 0x80):
            np.testing.assert_array_equal(m0.call(t, f"pz_{op}_q8_{kind}", out_xor).y, want, err_msg=kind)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), act=st.integers(0, 2), out_xor=st.sampled_from([0, 0x80]),
       depthwise=st.booleans())
def test_m0_fast_output_stage_exact_over_int32(m0, seed, act, out_xor, depthwise):
    """The Thumb-1 output stage (every shift >= 2) against compress.quantize.requantize: zero weights make each
    channel's accumulator its bias, drawn over all of int32 and around every output step of the clamp range."""
    rng = np.random.default_rng(seed)
    k = 24
    t = conv_case(rng, 2, 2, k if depthwise else 3, k, (3, 3), (1, 1), "same", depthwise)  # 3x3: the M0+ depthwise
    t["w"][:] = 0
    t["mult"] = rng.integers(0, 2**31, k).astype(np.int32)
    t["shift"] = rng.integers(2, 32, k).astype(np.int8)
    q = rng.integers(-300, 301, k)  # an output near the int8 range: acc just around q * 2^t / m
    near = (q * (1 << (31 + t["shift"].astype(object))) // np.maximum(t["mult"], 1).astype(object)).astype(np.float64)
    lim = 2**31 - 1  # folded biases are within +-(2^31 - 1) (conv_layout._fold)
    acc = np.where(rng.random(k) < 0.5, np.clip(near + rng.integers(-2, 3, k), -lim, lim),
                   rng.integers(-lim, lim + 1, k))
    acc[:2] = (-lim, lim)
    t["bias"] = acc.astype(np.int64).astype(np.int32)
    t["zp_out"] = int(rng.integers(-128, 128))
    t["act_min"], t["act_max"] = [(-128, 127), (t["zp_out"], 127), (t["zp_out"], min(127, t["zp_out"] + 40))][act]
    op = "dwconv2d" if depthwise else "conv2d"
    run, entered = m0.call_entering(t, f"pz_{op}_q8_m0", ["pz_q8_requant_run_m0"], out_xor, records=False)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert entered, "the fast output stage did not run"


@pytest.mark.parametrize("seed,h,w,c,k,kernel,stride,padding,zeros,edge", [
    (20, 6, 6, 8, 16, (1, 1), (1, 1), "same", 0.6, None),    # pointwise on ReLU-like input
    (21, 7, 6, 8, 12, (3, 3), (1, 1), "same", 0.5, None),    # borders gathered (padding cells are zeros too)
    (22, 9, 9, 1, 8, (3, 3), (2, 2), "same", 0.7, None),     # 1-channel first layer: runs of 3 bytes
    (23, 5, 5, 3, 8, (3, 3), (1, 1), "valid", 0.0, None),    # zero point 0 but no zeros
    (24, 4, 4, 20, 40, (1, 1), (1, 1), "same", 1.0, None),   # only zeros: accumulators = folded biases
    (25, 6, 6, 16, 8, (3, 3), (1, 1), "same", 0.3, "max"),   # saturating
])
def test_m0_zero_skipping_exact(m0, seed, h, w, c, k, kernel, stride, padding, zeros, edge):
    """Inputs whose zero point is the byte 0 (zp_in = -128, ReLU outputs) go through the zero-skipping dot product
    (pz_q8_conv_dot8z_m0, or its batched forms pz_q8_conv_px8z*_m0 for K <= 32); the outputs equal the golden
    model's."""
    rng = np.random.default_rng(seed)
    t = conv_case(rng, h, w, c, k, kernel, stride, padding, False, edge)
    t["zp_in"] = -128
    t["xu"] = np.where(rng.random(t["xu"].shape) < zeros, 0, t["xu"]).astype(np.uint8)
    want = q8_golden(t)
    for out_xor in (0, 0x80):
        run, entered = m0.call_entering(t, "pz_conv2d_q8_m0", ["pz_q8_conv_dot8z_m0", "pz_q8_conv_px8zs_m0",
                                                                "pz_q8_conv_px8zr_m0", "pz_q8_conv_px8zsr_m0"], out_xor)
        np.testing.assert_array_equal(run.y, want)
        assert entered, "the zero-skipping dot product did not run"


@pytest.mark.parametrize("seed,h,w,c,stride,padding,edge", [
    (30, 6, 8, 8, (1, 1), "valid", None),    # 6 outputs a row: a quad and a pair
    (31, 5, 6, 4, (1, 1), "same", "max"),     # a quad and a pair, both from border bands, saturating
    (32, 4, 10, 20, (1, 1), "same", "shifts"),
    (33, 7, 13, 8, (2, 2), "valid", None),   # stride 2: 6 outputs a row
    (34, 6, 6, 12, (2, 1), "same", "max"),
    (35, 5, 12, 4, (1, 2), "same", "shifts"),
])
def test_m0_depthwise_pairs_exact(m0, seed, h, w, c, stride, padding, edge):
    """What a row leaves after its groups of four goes through the two-pixel depthwise loops
    (pz_q8_dw3x3_pair_m0, pz_q8_dw3x3_pair2_m0)."""
    t = conv_case(np.random.default_rng(seed), h, w, c, c, (3, 3), stride, padding, True, edge)
    want = q8_golden(t)
    pair = "pz_q8_dw3x3_pair_m0" if stride[1] == 1 else "pz_q8_dw3x3_pair2_m0"
    for out_xor in (0, 0x80):
        run, entered = m0.call_entering(t, "pz_dwconv2d_q8_m0", [pair], out_xor)
        np.testing.assert_array_equal(run.y, want)
        assert entered, "the two-pixel loop did not run"


def small_acc_case(seed, act, depthwise):
    """A layer for the three-piece output stage (every accumulator within +-(2^20 - 1), every shift >= 0:
    conv_q8_m0.c out_small): zero weights make each channel's accumulator its bias, drawn up to the bound, at the
    bound with the largest multiplier (the partial products' int32 limit), and around every output step; shifts
    0..31 reach the register shifts of 32 and more."""
    rng = np.random.default_rng(seed)
    k = 24
    t = conv_case(rng, 2, 2, k if depthwise else 3, k, (3, 3), (1, 1), "same", depthwise)
    t["w"][:] = 0
    t["mult"] = rng.integers(0, 2**31, k).astype(np.int32)
    t["mult"][:4] = 2**31 - 1
    t["shift"] = rng.integers(0, 32, k).astype(np.int8)
    lim = 2**20 - 1
    q = rng.integers(-300, 301, k)
    near = (q * (1 << (31 + t["shift"].astype(object))) // np.maximum(t["mult"], 1).astype(object)).astype(np.float64)
    acc = np.where(rng.random(k) < 0.5, np.clip(near + rng.integers(-2, 3, k), -lim, lim),
                   rng.integers(-lim, lim + 1, k))
    acc[:4] = (-lim, lim, -lim, lim)
    t["bias"] = acc.astype(np.int64).astype(np.int32)
    t["zp_out"] = int(rng.integers(-128, 128))
    t["act_min"], t["act_max"] = [(-128, 127), (t["zp_out"], 127), (t["zp_out"], min(127, t["zp_out"] + 40))][act]
    return t


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), act=st.integers(0, 2), out_xor=st.sampled_from([0, 0x80]),
       depthwise=st.booleans())
def test_small_accumulator_output_stage_exact_on_host(lib, seed, act, out_xor, depthwise):
    t = small_acc_case(seed, act, depthwise)
    np.testing.assert_array_equal(run_q8(lib, t, "m0", out_xor), q8_golden(t))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), act=st.integers(0, 2), out_xor=st.sampled_from([0, 0x80]),
       depthwise=st.booleans())
def test_m0_small_accumulator_output_stage_exact(m0, seed, act, out_xor, depthwise):
    t = small_acc_case(seed, act, depthwise)
    # the variant without the lower clamp under a fused ReLU (act_min = zp_out), the full one otherwise
    small = "pz_q8_requant_small_relu_m0" if act else "pz_q8_requant_small_m0"
    op = "dwconv2d" if depthwise else "conv2d"
    # records=False: the layer as a model directory without one-multiply records runs it (a random case may
    # otherwise get records, and the record stage would run instead)
    run, entered = m0.call_entering(t, f"pz_{op}_q8_m0", [small], out_xor, records=False)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert entered, "the small-accumulator output stage did not run"


def test_m0_small_output_stage_not_taken_past_its_bound(m0):
    """One channel whose accumulator can reach 2^20 sends the layer through the general output stage."""
    t = conv_case(np.random.default_rng(11), 3, 3, 8, 8, (1, 1), (1, 1), "same", False)
    t["shift"][:] = 8
    t["w"][:] = 0
    t["bias"][:] = 1000
    t["bias"][5] = 2**20
    t["act_min"], t["act_max"] = -128, 127
    run, entered = m0.call_entering(t, "pz_conv2d_q8_m0", ["pz_q8_requant_small_m0"], records=False)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert not entered
    t["bias"][5] = 2**20 - 1
    run, entered = m0.call_entering(t, "pz_conv2d_q8_m0", ["pz_q8_requant_small_m0"], records=False)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert entered


# Cycle budgets per MAC with the XIP cache warm and the shifts of real int8 conv layers (the emulator is
# deterministic; `python benchmarks/conv_firmware.py kernels` has the full table). They fail when a change makes a
# kernel slower.
@pytest.mark.parametrize("h,w,c,k,kernel,stride,depthwise,budget", [
    (14, 14, 16, 32, (3, 3), (1, 1), False, 4.45),
    (6, 6, 128, 128, (1, 1), (1, 1), False, 4.43),
    (12, 12, 16, 16, (3, 3), (1, 1), True, 12.53),
    (24, 24, 1, 8, (3, 3), (2, 2), False, 17.85),  # a 1-channel first layer
])
def test_m0_cycle_budgets(m0, h, w, c, k, kernel, stride, depthwise, budget):
    t = conv_case(np.random.default_rng(7), h, w, c, k, kernel, stride, "same", depthwise)
    t["shift"] = timed_shifts(t["shift"])  # 6..11
    run = m0.call(t, f"pz_{'dwconv2d' if depthwise else 'conv2d'}_q8_m0", warm=True)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert run.cycles / run.macs <= budget, run.cycles / run.macs


def test_m0_zero_skipping_cycle_budget(m0):
    """A pointwise conv on ReLU-like input (zp_in = -128, about half zeros) through the zero-skipping dot product."""
    rng = np.random.default_rng(7)
    t = conv_case(rng, 6, 6, 64, 64, (1, 1), (1, 1), "same", False)
    t["shift"] = timed_shifts(t["shift"])
    t["zp_in"] = -128
    t["xu"] = np.clip(np.rint(rng.normal(0, 60, t["xu"].shape)), 0, 255).astype(np.uint8)
    run = m0.call(t, "pz_conv2d_q8_m0", warm=True)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert run.cycles / run.macs <= 3.57, run.cycles / run.macs
