"""int8 quantization (Jacob et al. 2018 / the TFLite int8 spec), post-training or after fake-quant training.

Scheme (docs/COMPRESS.md, docs/MODEL_FORMAT.md "Compressed variants"):
- real = scale * (q - zero_point).
- Input: the firmware's raw uint8 pixels; q_in = raw - 128 with the model's input scale and zero point -128, which is
  exact (x = raw * scale) and costs nothing: the kernels read activations as offset-binary bytes `xu = q + 128`, so the
  first layer reads the raw pixels as they are.
- Weights: per output channel, symmetric, int8 in [-127, 127], zero point 0.
- Activations: per tensor, asymmetric int8, range calibrated (min/max) on training images. A dense layer followed by
  ReLU has a range [0, max], so zero point -128 and the ReLU is the clamp at -128.
- Bias: int32 with scale s_w[j] * s_in, zero point 0.
- Requantization: M = s_in s_w[j] / s_out = M0 * 2^-shift with M0 in [0.5, 1) stored as round(2^31 M0) (int32);
  "single rounding": y = (acc * M0 + 2^(30 + shift)) >> (31 + shift) with one 64-bit product and one arithmetic
  shift, i.e. acc * M rounded half up (towards +inf). The NumPy golden model (compress/reference.py) and the C kernels
  (firmware/kernels/int8*.c) implement exactly this.
"""

from __future__ import annotations

import math

import numpy as np

from zoo.nn import Dense

SCHEME = "int8"
ROUNDING = "single"
INPUT_ZERO_POINT = -128  # q_in = raw - 128
QMIN, QMAX = -128, 127
WMAX = 127  # weights are symmetric in [-127, 127]
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


def requantize(acc, multiplier, shift):
    """Single-rounding fixed-point scaling of int32 accumulators: round_half_up(acc * multiplier / 2^(31+shift)).

    Vectorised over NumPy int64 arrays (acc * multiplier < 2^62 fits); arguments broadcast.
    """
    acc = np.asarray(acc, np.int64)
    multiplier = np.asarray(multiplier, np.int64)
    total = 31 + np.asarray(shift, np.int64)
    return (acc * multiplier + (np.int64(1) << (total - 1))) >> total


# -- calibration --------------------------------------------------------------------------------------------------
def dense_indices(spec):
    return [i for i, layer in enumerate(spec.layers) if isinstance(layer, Dense)]


def check_supported(spec, path="model"):
    """int8 covers dense layers, each optionally followed by one ReLU, ending in logits."""
    layers = spec.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            continue
        if layer.kind != "relu":
            raise QuantizationError(f"{path}: layer {i} is {layer.kind}; int8 supports dense layers with ReLU only "
                                    f"(quantize a ReLU model, or keep this one in float)")
        if i == 0 or not isinstance(layers[i - 1], Dense):
            raise QuantizationError(f"{path}: layer {i} (relu) does not follow a dense layer; int8 fuses each ReLU "
                                    f"into the dense layer before it")
    if spec.output != "logits":
        raise QuantizationError(f"{path}: output {spec.output!r}; int8 supports logits outputs only")


def float_activations(spec, params, x):
    """The float output of each dense layer (after its fused ReLU, if any), in order."""
    outs = []
    for i, (layer, p) in enumerate(zip(spec.layers, params)):
        if isinstance(layer, Dense):
            x = x @ np.asarray(p["w"], np.float32) + np.asarray(p["b"], np.float32)
            if i + 1 < len(spec.layers) and spec.layers[i + 1].kind == "relu":
                x = np.maximum(x, 0)
            outs.append(x)
    return outs


def activation_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero_point) covering [lo, hi], which is widened to include 0 (so 0 is exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo <= 0:
        hi = lo + 1.0
    scale = (hi - lo) / (QMAX - QMIN)
    zero_point = int(round(QMIN - lo / scale))
    return scale, int(min(max(zero_point, QMIN), QMAX))


def calibrate(spec, params, raw_calib, input_scale):
    """(scale, zero_point) of each dense layer's output from min/max over the calibration images."""
    x = np.asarray(raw_calib, np.float32) * np.float32(input_scale)
    ranges = []
    for out in float_activations(spec, params, x):
        ranges.append(activation_qparams(out.min(), out.max()))
    return ranges


# -- weights ------------------------------------------------------------------------------------------------------
def weight_scales(w_in_out: np.ndarray) -> np.ndarray:
    """Per-output-channel symmetric scales of a (in, out) float weight matrix; an all-zero channel gets 1/127."""
    amax = np.max(np.abs(np.asarray(w_in_out, np.float64)), axis=0)
    return np.where(amax > 0, amax / WMAX, 1.0 / WMAX)


def quantize_weights(w_in_out: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int8 (out, in) weights: round(w / s) clipped to [-127, 127]; zeros stay zero (sparsity is preserved)."""
    q = np.rint(np.asarray(w_in_out, np.float64) / scales[None, :])
    return np.clip(q, -WMAX, WMAX).astype(np.int8).T.copy()


# -- the whole model ----------------------------------------------------------------------------------------------
def quantize_model(spec, params, input_scale, raw_calib, act_ranges=None, path="model", weights=None):
    """Post-training int8 quantization. Returns (quantization meta, extra tensors, dequantized float params).

    `act_ranges` (one (scale, zero_point) per dense layer) overrides calibration, e.g. the ranges used by QAT.
    `weights` ({layer index: (int8 (out, in) weights, (out,) scales)}) overrides weight quantization, e.g. the
    codebook weights of compress.share.
    """
    check_supported(spec, path)
    if act_ranges is None:
        act_ranges = calibrate(spec, params, raw_calib, input_scale)
    in_scale, in_zp = float(input_scale), INPUT_ZERO_POINT
    layers_meta, extra = [], {}
    new_params = [dict(p) for p in params]
    dense = dense_indices(spec)
    for n, i in enumerate(dense):
        w, b = np.asarray(params[i]["w"]), np.asarray(params[i]["b"])
        out_scale, out_zp = act_ranges[n]
        relu = i + 1 < len(spec.layers) and spec.layers[i + 1].kind == "relu"
        if weights is not None and i in weights:
            wq, s_w = weights[i]
        else:
            s_w = weight_scales(w)
            wq = quantize_weights(w, s_w)
        bias_scale = s_w * in_scale
        bq = np.rint(np.asarray(b, np.float64) / bias_scale)
        if np.any(np.abs(bq) > 2**31 - 1 - 2**24):
            raise QuantizationError(f"{path}: layer {i}: a bias does not fit int32 at scale s_w*s_in "
                                    f"(max |b/scale| = {np.max(np.abs(bq)):.3g}); the weights are degenerate")
        mults, shifts = zip(*(quantize_multiplier(in_scale * s / out_scale) for s in s_w))
        extra[f"q.layers.{i}.w"] = wq
        extra[f"q.layers.{i}.bias"] = bq.astype(np.int32)
        extra[f"q.layers.{i}.multiplier"] = np.asarray(mults, np.int32)
        extra[f"q.layers.{i}.shift"] = np.asarray(shifts, np.int8)
        layers_meta.append({
            "index": i, "in": int(w.shape[0]), "out": int(w.shape[1]), "relu": relu,
            "input_scale": in_scale, "input_zero_point": in_zp,
            "output_scale": float(out_scale), "output_zero_point": int(out_zp),
            "act_min": int(out_zp) if relu else QMIN, "act_max": QMAX,
        })
        dtype = w.dtype
        new_params[i] = {"w": (wq.T.astype(np.float64) * s_w[None, :]).astype(dtype),
                         "b": (bq * bias_scale).astype(dtype)}
        in_scale, in_zp = float(out_scale), int(out_zp)
    meta = {"scheme": SCHEME, "rounding": ROUNDING,
            "input": {"scale": float(input_scale), "zero_point": INPUT_ZERO_POINT, "q": "raw - 128"},
            "output": {"scale": layers_meta[-1]["output_scale"], "zero_point": layers_meta[-1]["output_zero_point"]},
            "layers": layers_meta}
    return meta, extra, new_params


def fake_quant_ranges(spec, params, raw_calib, input_scale):
    """The per-layer activation (scale, zero_point) QAT trains against: calibrated once on the float model."""
    check_supported(spec)
    return calibrate(spec, params, raw_calib, input_scale)
