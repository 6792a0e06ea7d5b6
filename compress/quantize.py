"""int8 quantization (Jacob et al. 2018 / the TFLite int8 spec), post-training or after fake-quant training.

Scheme (docs/COMPRESS.md, docs/MODEL_FORMAT.md "Compressed variants"):
- real = scale * (q - zero_point).
- Input: the firmware's raw uint8 pixels; q_in = raw - 128 with the model's input scale and zero point -128, which is
  exact (x = raw * scale) and costs nothing: the kernels read activations as offset-binary bytes `xu = q + 128`, so the
  first layer reads the raw pixels as they are.
  A model of the user's float32 data (or any normalisation other than uint8 * scale, zoo/normalize.py) gets an
  input scale and zero point calibrated like an activation on the normalised training rows, and every stage
  quantizes its input with `quantize_input` (float32: x = normalised raw, t = x * inv_scale clamped to +-1024,
  q = round_half_away(t) + zero_point clamped to [-128, 127]); firmware/kernels/input.c does the same.
- Weights: per output channel, symmetric, int8 in [-127, 127], zero point 0.
- Activations: per tensor, asymmetric int8, range calibrated (min/max) on training images. A dense layer followed by
  ReLU has a range [0, max], so zero point -128 and the ReLU is the clamp at -128.
- Bias: int32 with scale s_w[j] * s_in, zero point 0.
- Requantization: M = s_in s_w[j] / s_out = M0 * 2^-shift with M0 in [0.5, 1) stored as round(2^31 M0) (int32);
  "single rounding": y = (acc * M0 + 2^(30 + shift)) >> (31 + shift) with one 64-bit product and one arithmetic
  shift, i.e. acc * M rounded half up (towards +inf). The NumPy golden model (compress/reference.py) and the C kernels
  (firmware/kernels/int8*.c) implement exactly this. Conv and depthwise layers store M0 rounded to fewer bits
  (reduced_multiplier, below), which the M0+ output stage computes with one 32-bit multiply; same formula.
"""

from __future__ import annotations

import math

import numpy as np

from zoo.nn import Dense
from zoo.normalize import Normalization, as_normalization

SCHEME = "int8"
ROUNDING = "single"
INPUT_ZERO_POINT = -128  # q_in = raw - 128
QMIN, QMAX = -128, 127
WMAX = 127  # weights are symmetric in [-127, 127]
RELU6_MAX = 6.0
MAX_TOTAL_SHIFT = 62  # 31 + shift must be in [1, 62] so the 64-bit product's rounding term fits


class QuantizationError(ValueError):
    """A model the int8 scheme cannot represent; the message says which layer and why."""


# -- fixed-point requantization -----------------------------------------------------------------------------------
def quantize_multiplier(m: float) -> tuple[int, int]:
    """(multiplier, shift) with m ~= multiplier * 2^-(31 + shift), multiplier in [2^30, 2^31) when m is normal.

    `shift` is a right shift (positive for m < 0.5). Very small m (shift > 31) keeps shift = 31 and a smaller,
    unnormalised multiplier, so the total shift never exceeds 62; m = 0 gives (0, 0).
    """
    if not (m >= 0 and math.isfinite(m)):
        raise QuantizationError(f"requantization multiplier {m!r} must be finite and >= 0")
    if m == 0:
        return 0, 0
    mant, exp = math.frexp(m)  # m = mant * 2^exp, mant in [0.5, 1)
    q = round(mant * (1 << 31))
    if q == 1 << 31:
        q //= 2
        exp += 1
    shift = -exp
    if shift < -30:
        raise QuantizationError(f"requantization multiplier {m:g} is too large (>= 2^30); the output scale is "
                                f"degenerate")
    if shift > MAX_TOTAL_SHIFT - 31:
        q = round(m * 2.0 ** MAX_TOTAL_SHIFT)
        shift = MAX_TOTAL_SHIFT - 31
    return int(q), int(shift)


# Conv and depthwise multipliers are rounded to the precision their accumulators allow (docs/COMPRESS.md "Conv
# multipliers"): with at most P significant bits (the low 31 - P bits zero) and every accumulator whose product the
# output stage needs within +-B (multiply_bound), B * (multiplier >> (31 - P)) < 2^31 when P = 31 - bitlength(B), so
# the M0+ output stage computes the golden formula exactly with one 32-bit multiply (firmware/requant.py). The
# formula itself is unchanged.
MIN_REDUCED_BITS = 11   # below this the rounding would cost accuracy: such a channel keeps its 31-bit multiplier
MAX_REDUCED_BITS = 23   # the firmware's record holds the reduced multiplier in 23 bits
SATURATION_MARGIN = 2.0**-10  # >= the relative change of the multiplier by rounding to MIN_REDUCED_BITS or more


def accumulator_range(w, bias, zp_in, axis=-1):
    """Per output channel (lo, hi) int64 bounds of the int32 accumulator bias + sum (q - zp_in) w over every int8
    input q in [-128, 127] (the kernels' folded bias + sum xu w, xu = q + 128 in [0, 255]; padding cells included).
    w: the int8 weights with the output channel on `axis` (dense (in, out) / conv channel-last: -1; OHWI: 0)."""
    w = np.moveaxis(np.asarray(w, np.int64), axis, -1)
    w = w.reshape(-1, w.shape[-1])
    folded = np.asarray(bias, np.int64) - (int(zp_in) + 128) * w.sum(axis=0)
    return folded + 255 * np.minimum(w, 0).sum(axis=0), folded + 255 * np.maximum(w, 0).sum(axis=0)


def multiply_bound(lo, hi, act_min: int, act_max: int, out_zp: int, scale):
    """Per channel, the largest |acc| whose product the M0+ output stage computes (firmware/requant.py), for
    accumulators in [lo, hi] and real multipliers `scale`: the output is a clamp of round(acc scale) + out_zp, so
    below about (act_min - out_zp + 1/2) / scale it is act_min and from about (act_max - out_zp - 1/2) / scale on it is
    act_max, both written without multiplying (here with SATURATION_MARGIN for the multiplier's own rounding)."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    scale = np.asarray(scale, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.maximum(lo, (act_min - out_zp + 0.5) / scale)
        last = np.minimum(hi, (act_max - out_zp - 0.5) / scale)
    bound = np.ceil(np.maximum(np.abs(first), np.abs(last)) * (1 + SATURATION_MARGIN)) + 1
    return np.where(first <= last, np.minimum(bound, np.maximum(np.abs(lo), np.abs(hi))), 0).astype(np.int64)


def reduced_multiplier(m: float, bound: int) -> tuple[int, int]:
    """quantize_multiplier(m) rounded to P = min(31 - bitlength(bound), MAX_REDUCED_BITS) significant bits, i.e.
    (multiplier, shift) with multiplier a multiple of 2^(31 - P) and |multiplier 2^-(31+shift) - m| <= 2^-P m.
    Unchanged where P < MIN_REDUCED_BITS or m is not normal (multiplier < 2^30)."""
    mult, shift = quantize_multiplier(m)
    bits = min(31 - int(bound).bit_length(), MAX_REDUCED_BITS)
    if mult < 1 << 30 or bits < MIN_REDUCED_BITS:
        return mult, shift
    mant, exp = math.frexp(m)
    q = round(mant * (1 << bits))
    if q == 1 << bits:
        q //= 2
        exp += 1
    if -exp < -30:  # rounded up past the largest multiplier: keep the exact one
        return mult, shift
    return int(q) << (31 - bits), int(-exp)


def requantize(acc, multiplier, shift):
    """Single-rounding fixed-point scaling of int32 accumulators: round_half_up(acc * multiplier / 2^(31+shift)).

    Vectorised over NumPy int64 arrays (acc * multiplier < 2^62 fits); arguments broadcast.
    """
    acc = np.asarray(acc, np.int64)
    multiplier = np.asarray(multiplier, np.int64)
    total = 31 + np.asarray(shift, np.int64)
    return (acc * multiplier + (np.int64(1) << (total - 1))) >> total


# -- which networks int8 covers ----------------------------------------------------------------------------------
def dense_indices(spec):
    return [i for i, layer in enumerate(spec.layers) if isinstance(layer, Dense)]


def _ops():
    from compress.reference import OPS  # reference imports this module: import on use
    return OPS


def check_supported(spec, path="model"):
    """Raise QuantizationError naming the first layer int8 cannot run (see check_layers)."""
    from compress.netspec import layer_dicts

    check_layers(layer_dicts(spec), spec.output, path)


def check_layers(dicts, output="logits", path="model"):
    """int8 runs the golden model's ops (dense, conv2d, depthwise_conv2d, max/avg/global-average pooling, flatten);
    a ReLU or ReLU6 right after a weighted layer is fused into it (after max pools that follow one, it is moved
    before them: compress.netspec.hoist_activations), a batch_norm right after one is folded into it, `input` and
    `dropout` layers compute nothing; the output must be logits."""
    from compress.netspec import FUSED_ACTIVATIONS, WEIGHTED

    ops = _ops()
    prev = before_pools = None    # the layer before a run of max pools (an activation after them moves before them)
    for i, d in enumerate(dicts):
        t = d["type"]
        if t in ("input", "dropout"):
            continue
        if t == "batch_norm" and prev not in WEIGHTED:
            raise QuantizationError(f"{path}: layer {i} (batch_norm) does not follow a dense, conv2d or "
                                    f"depthwise_conv2d layer, so it cannot be folded into one for int8")
        if t == "max_pool2d" and prev != "max_pool2d":
            before_pools = prev
        hoisted = prev == "max_pool2d" and before_pools in (*WEIGHTED, *FUSED_ACTIVATIONS)
        if t in FUSED_ACTIVATIONS and prev not in WEIGHTED and not hoisted:
            where = ("; after an avg_pool2d it would change the model: put it before the pool and retrain, or keep "
                     "this model in float" if prev == "avg_pool2d" else " (move it there)")
            raise QuantizationError(f"{path}: layer {i} ({t}) does not follow a dense or conv layer (directly or "
                                    f"through max pools); int8 fuses each ReLU/ReLU6 into the weighted layer before "
                                    f"it{where}")
        if t not in ops and t not in FUSED_ACTIVATIONS and t != "batch_norm":
            raise QuantizationError(f"{path}: layer {i} is {t}; int8 supports {', '.join(ops)}, each weighted layer "
                                    f"optionally followed by ReLU or ReLU6 (quantize a ReLU model, or keep this one "
                                    f"in float)")
        prev = prev if t == "batch_norm" else t
    if output != "logits":
        raise QuantizationError(f"{path}: output {output!r}; int8 supports logits outputs only")


def fused_activation(dicts, i) -> str:
    """'relu', 'relu6' or 'none': the activation fused into weighted layer i (the next layer, if it is one)."""
    from compress.netspec import FUSED_ACTIVATIONS

    nxt = dicts[i + 1]["type"] if i + 1 < len(dicts) else None
    return nxt if nxt in FUSED_ACTIVATIONS else "none"


# -- calibration --------------------------------------------------------------------------------------------------
CALIBRATION_BATCH = 500  # images per float forward pass (bounds the im2col memory)


def float_activations(spec, params, x):
    """The float output of each weighted layer (after its fused activation, if any), in order."""
    from compress.netspec import layer_dicts

    return _weighted_outputs(layer_dicts(spec), params, np.asarray(x, np.float32))


def _weighted_outputs(dicts, params, x):
    from compress.netspec import WEIGHTED, float_forward

    taps = []
    for i, d in enumerate(dicts):
        if d["type"] in WEIGHTED:
            taps.append(i + 1 if fused_activation(dicts, i) != "none" else i)
    outs, _ = float_forward(dicts, params, x, taps=set(taps))
    return [outs[t] for t in taps]


def activation_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero_point) covering [lo, hi], which is widened to include 0 (so 0 is exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo <= 0:
        hi = lo + 1.0
    scale = (hi - lo) / (QMAX - QMIN)
    zero_point = int(round(QMIN - lo / scale))
    return scale, int(min(max(zero_point, QMIN), QMAX))


def calibrate(spec, params, raw_calib, input_scale):
    """(scale, zero_point) of each weighted layer's output from min/max over the calibration images."""
    from compress.netspec import layer_dicts

    return calibrate_layers(layer_dicts(spec), params, raw_calib, input_scale)


def calibrate_layers(dicts, params, raw_calib, input_scale):
    raw_calib = np.asarray(raw_calib)
    norm = as_normalization(input_scale)
    spatial = any(d["type"] not in ("dense", "relu", "relu6") for d in dicts)
    batch = CALIBRATION_BATCH if spatial else max(1, len(raw_calib))  # an MLP: one product, as before conv nets
    lo = hi = None
    for start in range(0, len(raw_calib), batch):
        x = norm.apply(raw_calib[start:start + batch], np.float32)
        outs = _weighted_outputs(dicts, params, x)
        b_lo, b_hi = [float(o.min()) for o in outs], [float(o.max()) for o in outs]
        lo = b_lo if lo is None else [min(a, b) for a, b in zip(lo, b_lo)]
        hi = b_hi if hi is None else [max(a, b) for a, b in zip(hi, b_hi)]
    return [activation_qparams(a, b) for a, b in zip(lo, hi)]


# -- weights ------------------------------------------------------------------------------------------------------
def weight_scales(w: np.ndarray) -> np.ndarray:
    """Per-output-channel symmetric scales of a float weight tensor whose last axis is the output channel (dense
    (in, out), conv2d (kh, kw, in, out), depthwise (kh, kw, channels)); an all-zero channel gets 1/127."""
    w = np.asarray(w, np.float64)
    amax = np.max(np.abs(w.reshape(-1, w.shape[-1])), axis=0)
    return np.where(amax > 0, amax / WMAX, 1.0 / WMAX)


def quantize_channels(w: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int8 round(w / s) clipped to [-127, 127], in w's own layout (channel last); zeros stay zero."""
    q = np.rint(np.asarray(w, np.float64) / scales)
    return np.clip(q, -WMAX, WMAX).astype(np.int8)


def quantize_weights(w_in_out: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int8 (out, in) weights of a dense (in, out) matrix."""
    return quantize_channels(w_in_out, scales).T.copy()


# The stored int8 layout per weighted type (docs/MODEL_FORMAT.md): from the channel-last float layout, and back.
STORED_LAYOUT = {
    "dense": (lambda q: q.T.copy(), lambda q: q.T),  # (out, in)
    "conv2d": (lambda q: np.ascontiguousarray(np.moveaxis(q, -1, 0)), lambda q: np.moveaxis(q, 0, -1)),  # OHWI
    "depthwise_conv2d": (lambda q: q.copy(), lambda q: q),  # (kh, kw, C)
}


# -- the whole model ----------------------------------------------------------------------------------------------
def quantize_model(spec, params, input_scale, raw_calib, act_ranges=None, path="model", weights=None):
    """Post-training int8 quantization. Returns (quantization meta, extra tensors, dequantized float params).

    The spec must already be inference-only (no batch_norm or dropout: compress.netspec.for_inference).
    `act_ranges` (one (scale, zero_point) per weighted layer) overrides calibration, e.g. the ranges used by QAT.
    `weights` ({layer index: (int8 (out, in) weights, (out,) scales)}) overrides a dense layer's weight
    quantization, e.g. the codebook weights of compress.share.
    """
    from compress.netspec import layer_dicts

    return quantize_layers(layer_dicts(spec), spec.output, params, input_scale, raw_calib, act_ranges, path,
                           weights)


def quantize_layers(dicts, output, params, input_scale, raw_calib, act_ranges=None, path="model", weights=None):
    from compress.netspec import WEIGHTED, shapes

    check_layers(dicts, output, path)
    for i, d in enumerate(dicts):
        if d["type"] in ("batch_norm", "dropout"):
            raise QuantizationError(f"{path}: layer {i} is {d['type']}; fold BatchNorm and drop Dropout first "
                                    f"(compress.netspec.for_inference)")
    if act_ranges is None:
        act_ranges = calibrate_layers(dicts, params, raw_calib, input_scale)
    ops = _ops()
    norm = as_normalization(input_scale)
    if norm.legacy:
        in_scale, in_zp = float(norm.scale), INPUT_ZERO_POINT
        input_meta = {"scale": in_scale, "zero_point": INPUT_ZERO_POINT, "q": "raw - 128"}
    else:
        in_scale, in_zp = input_qparams(norm, raw_calib)
        input_meta = {"scale": in_scale, "zero_point": in_zp, "inv_scale": float(np.float32(1.0 / in_scale)),
                      "raw": norm.raw, "q": INPUT_Q_RULE}
    layers_meta, extra = [], {}
    new_params = [dict(p) for p in params]
    n = 0
    for i, (d, (shape_in, shape_out)) in enumerate(zip(dicts, shapes(dicts))):
        t = d["type"]
        if t not in ops:
            continue
        entry = {k: v for k, v in d.items() if k != "type"}
        entry.update({"type": t, "index": i, "in_shape": list(shape_in), "out_shape": list(shape_out)})
        if t not in WEIGHTED:  # pools and flatten keep the input's scale and zero point
            layers_meta.append(entry)
            continue
        w, b = np.asarray(params[i]["w"]), np.asarray(params[i]["b"])
        out_scale, out_zp = act_ranges[n]
        n += 1
        act = fused_activation(dicts, i)
        if weights is not None and i in weights:
            wq_stored, s_w = weights[i]
            wq = STORED_LAYOUT[t][1](np.asarray(wq_stored))
        else:
            s_w = weight_scales(w)
            wq = quantize_channels(w, s_w)
        bias_scale = s_w * in_scale
        bq = np.rint(np.asarray(b, np.float64) / bias_scale)
        if np.any(np.abs(bq) > 2**31 - 1 - 2**24):
            raise QuantizationError(f"{path}: layer {i}: a bias does not fit int32 at scale s_w*s_in "
                                    f"(max |b/scale| = {np.max(np.abs(bq)):.3g}); the weights are degenerate")
        act_min = int(out_zp) if act != "none" else QMIN
        act_max = min(QMAX, int(out_zp) + round(RELU6_MAX / out_scale)) if act == "relu6" else QMAX
        if t == "dense":
            mults, shifts = zip(*(quantize_multiplier(in_scale * s / out_scale) for s in s_w))
        else:  # conv, depthwise: rounded to what one 32-bit multiply holds (reduced_multiplier)
            scale = in_scale * np.asarray(s_w, np.float64) / out_scale
            bounds = multiply_bound(*accumulator_range(wq, bq, in_zp), max(QMIN, act_min), act_max, int(out_zp), scale)
            mults, shifts = zip(*(reduced_multiplier(in_scale * s / out_scale, b) for s, b in zip(s_w, bounds)))
        extra[f"q.layers.{i}.w"] = STORED_LAYOUT[t][0](wq)
        extra[f"q.layers.{i}.bias"] = bq.astype(np.int32)
        extra[f"q.layers.{i}.multiplier"] = np.asarray(mults, np.int32)
        extra[f"q.layers.{i}.shift"] = np.asarray(shifts, np.int8)
        entry.update({
            "relu": act == "relu", "activation": act,
            "input_scale": in_scale, "input_zero_point": in_zp,
            "output_scale": float(out_scale), "output_zero_point": int(out_zp),
            "act_min": max(QMIN, act_min), "act_max": act_max,
        })
        layers_meta.append(entry)
        dtype = w.dtype
        new_params[i] = {"w": (wq.astype(np.float64) * s_w).astype(dtype), "b": (bq * bias_scale).astype(dtype)}
        in_scale, in_zp = float(out_scale), int(out_zp)
    meta = {"scheme": SCHEME, "rounding": ROUNDING,
            "input": input_meta,
            "output": {"scale": in_scale, "zero_point": in_zp},
            "layers": layers_meta}
    return meta, extra, new_params


FAKE_QUANT_INPUT = ("QAT (--qat) and weight sharing (--share) need uint8 input scaled by a constant; this model "
                    "takes normalised float32 input: use post-training --quantize int8 (docs/DATA.md)")


def check_fake_quant_input(meta: dict, path: str = "model"):
    """QAT and weight sharing fake-quantize the input as raw - 128: refuse a model of float data."""
    if not Normalization.from_meta(meta["input"]).legacy:
        raise QuantizationError(f"{path}: {FAKE_QUANT_INPUT}")


def fake_quant_ranges(spec, params, raw_calib, input_scale):
    """The per-layer activation (scale, zero_point) QAT trains against: calibrated once on the float model."""
    if not as_normalization(input_scale).legacy:
        raise QuantizationError(FAKE_QUANT_INPUT)
    check_supported(spec)
    return calibrate(spec, params, raw_calib, input_scale)


# -- the input of a model of float data (zoo/normalize.py) ---------------------------------------------------------
INPUT_Q_RULE = "t = x * inv_scale (float32, clamped to +-1024); q = clamp(round_half_away(t) + zero_point)"
INPUT_T_LIMIT = np.float32(1024.0)  # |t| beyond this is clamped anyway; keeps the int conversion in range


def input_qparams(norm: Normalization, raw_calib) -> tuple[float, int]:
    """(scale, zero_point) of the normalised input, min/max over the calibration rows (0 exactly representable)."""
    x = norm.apply(np.asarray(raw_calib), np.float32)
    return activation_qparams(float(x.min()), float(x.max()))


def quantize_input(x, inv_scale: float, zero_point: int) -> np.ndarray:
    """int8 q (as int64) of normalised float32 inputs x: the exact float32 operations of the firmware's input kernel
    (pz_input_f32_q8): t = x * inv_scale, NaN and |t| > 1024 clamped to +-1024, r = trunc(t), f = t - r (exact),
    q = r + (f >= 0.5) - (f <= -0.5) (round half away from zero, exactly) + zero_point, clamped to [-128, 127]."""
    x = np.asarray(x, np.float32)
    t = x * np.float32(inv_scale)
    t = np.where(t > -INPUT_T_LIMIT, t, -INPUT_T_LIMIT)
    t = np.where(t < INPUT_T_LIMIT, t, INPUT_T_LIMIT).astype(np.float32)
    r = np.trunc(t)
    f = t - r
    q = r.astype(np.int64) + (f >= np.float32(0.5)) - (f <= np.float32(-0.5))
    return np.clip(q + int(zero_point), QMIN, QMAX)


def input_q(model, raw) -> np.ndarray:
    """The int8 model input q (int64, raw's shape) for raw features: raw - 128 for uint8 * scale models, else
    quantize_input of the normalised values."""
    qin = model.meta["quantization"].get("input", {})
    if "inv_scale" not in qin:  # uint8 * scale: the raw bytes are the offset-binary input
        return np.asarray(raw).astype(np.int64) + INPUT_ZERO_POINT
    norm = Normalization.from_meta(model.meta["input"])
    return quantize_input(norm.apply(raw, np.float32), qin["inv_scale"], qin["zero_point"])
