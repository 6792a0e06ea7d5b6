"""The int8 conv/pool golden model (compress/reference.py) against a big-integer reference written independently
here: Python ints, explicit loops over every output and tap, padding by bounds checks, the TensorFlow SAME rule
spelled out again. Hypothesis draws shapes, strides, paddings, zero points and requantization parameters that
saturate often."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress import reference
from zoo.modeldir import SavedModel


# -- the independent reference ------------------------------------------------------------------------------------
def geometry(size, k, s, padding):
    """(out, pad_before) per axis."""
    if padding == "valid":
        return (size - k) // s + 1, 0
    out = (size + s - 1) // s
    total = (out - 1) * s + k - size
    return out, max(total, 0) // 2


def requant(acc, m, shift, zp_out, lo, hi):
    total = 31 + shift
    y = (acc * m + (1 << (total - 1))) >> total  # Python ints: exact floor
    return min(max(y + zp_out, lo), hi)


def ref_conv(x, w, bias, mult, shift, zp_in, zp_out, lo, hi, stride, padding, depthwise):
    """x: nested lists [n][h][w][c]; w: OHWI lists for conv, [kh][kw][c] for depthwise."""
    n, h, wd, c = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    kh, kw = (len(w), len(w[0])) if depthwise else (len(w[0]), len(w[0][0]))
    oh, top = geometry(h, kh, stride[0], padding)
    ow, left = geometry(wd, kw, stride[1], padding)
    k_out = c if depthwise else len(w)
    out = []
    for b in range(n):
        img = []
        for oy in range(oh):
            row = []
            for ox in range(ow):
                pix = []
                for k in range(k_out):
                    acc = int(bias[k])
                    for dy in range(kh):
                        for dx in range(kw):
                            iy, ix = oy * stride[0] + dy - top, ox * stride[1] + dx - left
                            if not (0 <= iy < h and 0 <= ix < wd):
                                continue  # a padding cell equals zp_in: contributes 0
                            if depthwise:
                                acc += (x[b][iy][ix][k] - zp_in) * int(w[dy][dx][k])
                            else:
                                for ci in range(c):
                                    acc += (x[b][iy][ix][ci] - zp_in) * int(w[k][dy][dx][ci])
                    assert abs(acc) < 2**31
                    pix.append(requant(acc, int(mult[k]), int(shift[k]), zp_out, lo, hi))
                row.append(pix)
            img.append(row)
        out.append(img)
    return out


def ref_pool(x, pool, stride, padding, kind):
    n, h, wd, c = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    oh, top = geometry(h, pool[0], stride[0], padding)
    ow, left = geometry(wd, pool[1], stride[1], padding)
    out = []
    for b in range(n):
        img = []
        for oy in range(oh):
            row = []
            for ox in range(ow):
                pix = []
                for ch in range(c):
                    vals = [x[b][oy * stride[0] + dy - top][ox * stride[1] + dx - left][ch]
                            for dy in range(pool[0]) for dx in range(pool[1])
                            if 0 <= oy * stride[0] + dy - top < h and 0 <= ox * stride[1] + dx - left < wd]
                    if kind == "max":
                        pix.append(max(vals))
                    else:
                        pix.append(c_round_div(sum(vals), len(vals)))
                row.append(pix)
            img.append(row)
        out.append(img)
    return out


def c_round_div(s, n):
    """The C expression of the contract, with C's truncating division."""
    def trunc(a, b):
        return abs(a) // b * (1 if a >= 0 else -1)
    r = trunc(s + n // 2, n) if s >= 0 else -trunc(-s + n // 2, n)
    return min(max(r, -128), 127)


# -- strategies ---------------------------------------------------------------------------------------------------
@st.composite
def conv_case(draw, depthwise):
    n = draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    c = draw(st.integers(1, 4))
    k_out = c if depthwise else draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    padding = draw(st.sampled_from(["same", "valid"]) if h >= kh and w >= kw else st.just("same"))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(-128, 128, (n, h, w, c))
    wshape = (kh, kw, c) if depthwise else (k_out, kh, kw, c)
    wq = rng.integers(-127, 128, wshape).astype(np.int8)
    bias = rng.integers(-(2**20), 2**20, k_out).astype(np.int32)
    mult = rng.integers(2**30, 2**31, k_out).astype(np.int32)
    shift = rng.integers(-3, 16, k_out).astype(np.int8)  # small shifts saturate, large ones do not
    zp_in, zp_out = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    lo = int(rng.integers(-128, 128))
    hi = int(rng.integers(lo, 128))
    return dict(x=x, w=wq, bias=bias, mult=mult, shift=shift, zp_in=zp_in, zp_out=zp_out, lo=lo, hi=hi,
                kernel=[kh, kw], stride=stride, padding=padding, depthwise=depthwise)


def lm_and_tensors(case):
    kind = "depthwise_conv2d" if case["depthwise"] else "conv2d"
    lm = {"type": kind, "index": 0, "kernel": case["kernel"], "stride": case["stride"], "padding": case["padding"],
          "input_zero_point": case["zp_in"], "output_zero_point": case["zp_out"],
          "act_min": case["lo"], "act_max": case["hi"]}
    t = {"w": case["w"], "bias": case["bias"], "multiplier": case["mult"], "shift": case["shift"]}
    return lm, t


@pytest.mark.parametrize("depthwise", [False, True])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_conv_matches_big_integer_reference(depthwise, data):
    case = data.draw(conv_case(depthwise))
    lm, t = lm_and_tensors(case)
    got = reference.OPS[lm["type"]](case["x"].astype(np.int64), lm, t)
    want = ref_conv(case["x"].tolist(), case["w"].tolist(), case["bias"].tolist(), case["mult"].tolist(),
                    case["shift"].tolist(), case["zp_in"], case["zp_out"], case["lo"], case["hi"], case["stride"],
                    case["padding"], depthwise)
    assert got.tolist() == want


@pytest.mark.parametrize("kind", ["max", "avg"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_pool_matches_big_integer_reference(kind, data):
    n, h, w, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7)), \
        data.draw(st.integers(1, 3))
    ph, pw = data.draw(st.integers(1, min(h, 3))), data.draw(st.integers(1, min(w, 3)))
    stride = [data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))]
    padding = data.draw(st.sampled_from(["same", "valid"])) if kind == "max" else "valid"
    extreme = data.draw(st.booleans())  # all values near one end: sums far from zero, ties on both signs
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(100, 128, (n, h, w, c)) * rng.choice([-1, 1]) if extreme else rng.integers(-128, 128,
                                                                                                   (n, h, w, c))
    x = np.clip(x, -128, 127)
    lm = {"type": f"{kind}_pool2d", "index": 0, "pool": [ph, pw], "stride": stride, "padding": padding}
    got = reference.OPS[lm["type"]](x.astype(np.int64), lm, {})
    assert got.tolist() == ref_pool(x.tolist(), [ph, pw], stride, padding, kind)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_global_average_pool_matches_big_integer_reference(h, w, seed):
    x = np.random.default_rng(seed).integers(-128, 128, (2, h, w, 3))
    got = reference.OPS["global_avg_pool2d"](x, {"type": "global_avg_pool2d", "index": 0}, {})
    want = [[c_round_div(sum(x[b, :, :, ch].ravel().tolist()), h * w) for ch in range(3)] for b in range(2)]
    assert got.tolist() == want


def test_average_rounding_is_half_away_from_zero():
    cases = {(3, 2): 2, (-3, 2): -2, (1, 2): 1, (-1, 2): -1, (5, 4): 1, (-5, 4): -1, (6, 4): 2, (-6, 4): -2,
             (-2, 4): -1, (2, 4): 1, (0, 9): 0}
    for (s, n), want in cases.items():
        assert reference.round_div_away(np.array([s]), n)[0] == want == c_round_div(s, n)


# -- a whole conv model through forward() -------------------------------------------------------------------------
def tiny_model(rng):
    """conv 3x3 same (1->3, ReLU) -> max pool 2 -> depthwise 3x3 stride 2 same -> avg pool -> flatten -> dense,
    on 6x6x1 images, with random integer tensors."""
    def wparams(k):
        return {"bias": rng.integers(-3000, 3000, k).astype(np.int32),
                "multiplier": rng.integers(2**30, 2**31, k).astype(np.int32),
                "shift": rng.integers(5, 9, k).astype(np.int8)}
    layers = [
        {"type": "conv2d", "index": 1, "in_shape": [6, 6, 1], "out_shape": [6, 6, 3], "kernel": [3, 3],
         "stride": [1, 1], "padding": "same", "input_zero_point": -128, "output_zero_point": -128,
         "act_min": -128, "act_max": 127},
        {"type": "max_pool2d", "index": 3, "in_shape": [6, 6, 3], "out_shape": [3, 3, 3], "pool": [2, 2],
         "stride": [2, 2], "padding": "valid"},
        {"type": "depthwise_conv2d", "index": 4, "in_shape": [3, 3, 3], "out_shape": [2, 2, 3], "kernel": [3, 3],
         "stride": [2, 2], "padding": "same", "input_zero_point": -128, "output_zero_point": 5,
         "act_min": -128, "act_max": 127},
        {"type": "avg_pool2d", "index": 5, "in_shape": [2, 2, 3], "out_shape": [1, 1, 3], "pool": [2, 2],
         "stride": [2, 2], "padding": "valid"},
        {"type": "flatten", "index": 6, "in_shape": [1, 1, 3], "out_shape": [3]},
        {"type": "dense", "index": 7, "in_shape": [3], "out_shape": [4], "in": 3, "out": 4,
         "input_zero_point": 5, "output_zero_point": 0, "act_min": -128, "act_max": 127},
    ]
    extra = {}
    for lm, shape, k_out in ((layers[0], (3, 3, 3, 1), 3), (layers[2], (3, 3, 3), 3), (layers[5], (4, 3), 4)):
        i = lm["index"]
        extra[f"q.layers.{i}.w"] = rng.integers(-127, 128, shape).astype(np.int8)
        extra.update({f"q.layers.{i}.{name}": v for name, v in wparams(k_out).items()})
    meta = {"model": "tiny", "quantization": {"scheme": "int8", "layers": layers,
                                              "output": {"scale": 0.1, "zero_point": 0}}}
    return SavedModel(None, [], meta, extra)


def test_forward_chains_ops_and_accepts_flat_or_image_input(monkeypatch):
    rng = np.random.default_rng(3)
    model = tiny_model(rng)
    raw = rng.integers(0, 256, (5, 36)).astype(np.uint8)
    out = reference.forward(model, raw)
    assert out.shape == (5, 4) and out.dtype == np.int8
    np.testing.assert_array_equal(reference.forward(model, raw.reshape(5, 6, 6, 1)), out)
    np.testing.assert_array_equal(reference.forward(model, raw[2]), out[2])
    np.testing.assert_array_equal(reference.forward(model, raw[2].reshape(6, 6, 1)), out[2])
    # chained by hand from the independent reference
    x = (raw.astype(np.int64) - 128).reshape(5, 6, 6, 1).tolist()
    for lm, t in reference.qlayers(model):
        if lm["type"] in ("conv2d", "depthwise_conv2d"):
            x = ref_conv(x, t["w"].tolist(), t["bias"].tolist(), t["multiplier"].tolist(), t["shift"].tolist(),
                         lm["input_zero_point"], lm["output_zero_point"], lm["act_min"], lm["act_max"],
                         lm["stride"], lm["padding"], lm["type"] == "depthwise_conv2d")
        elif lm["type"].endswith("pool2d"):
            x = ref_pool(x, lm["pool"], lm["stride"], lm["padding"], lm["type"][:3])
        elif lm["type"] == "flatten":
            x = [np.asarray(img).ravel().tolist() for img in x]
        else:
            w = t["w"].tolist()
            x = [[requant(int(t["bias"][j]) + sum((v - lm["input_zero_point"]) * w[j][k] for k, v in enumerate(r)),
                          int(t["multiplier"][j]), int(t["shift"][j]), lm["output_zero_point"], lm["act_min"],
                          lm["act_max"]) for j in range(len(w))] for r in x]
    assert out.tolist() == x
    # the im2col chunking does not change the result
    monkeypatch.setattr(reference, "PATCH_ELEMENTS", 10)
    np.testing.assert_array_equal(reference.forward(model, raw), out)


def test_forward_names_shape_and_op_errors():
    model = tiny_model(np.random.default_rng(0))
    with pytest.raises(reference.GoldenModelError, match=r"do not match the model input \[6, 6, 1\]"):
        reference.forward(model, np.zeros((2, 35), np.uint8))
    model.meta["quantization"]["layers"][1]["out_shape"] = [2, 2, 3]
    with pytest.raises(reference.GoldenModelError, match=r"layer 3 \(max_pool2d\): output shape \[3, 3, 3\]"):
        reference.forward(model, np.zeros((1, 36), np.uint8))
    model.meta["quantization"]["layers"][1]["type"] = "lrn"
    with pytest.raises(reference.GoldenModelError, match="'lrn' is unknown"):
        reference.forward(model, np.zeros((1, 36), np.uint8))
