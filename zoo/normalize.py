"""Input normalisation: the one definition of how a model turns the user's raw values into its input.

    x = raw * scale                          mode "scale" (uint8 images: scale = 1/255) and "none" (scale = 1)
    x = (raw - mean) * inv_std               mode "standard" (per feature; fitted on the training split)

computed in the model's dtype (float32 for every firmware), `raw` first converted to that dtype. zoo.host,
zoo.train, compress's calibration and golden model, and the firmware's input kernel
(firmware/kernels/input.c) all do exactly these operations in this order, so their inputs are the same bits.
The fitted values live in the model directory's metadata, `input.normalize` (docs/MODEL_FORMAT.md, docs/DATA.md).

`raw` is "uint8" (pixels: the firmware's pz_input is bytes) or "float32" (anything else: pz_input is floats).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MODES = ("none", "scale", "standard")
RAW_DTYPES = ("uint8", "float32")
UINT8_SCALE = 1.0 / 255.0


class NormalizeError(ValueError):
    """Normalisation metadata that is missing or inconsistent; the message names the field."""


@dataclass(frozen=True, eq=False)
class Normalization:
    mode: str = "scale"
    raw: str = "uint8"
    scale: float = UINT8_SCALE            # modes none and scale
    mean: np.ndarray | None = None        # mode standard: float32 (features,)
    inv_std: np.ndarray | None = None     # mode standard: float32 (features,)

    @property
    def legacy(self) -> bool:
        """uint8 raw values times a scale: the path every model before user data took (firmware reads bytes)."""
        return self.raw == "uint8" and self.mode in ("scale", "none")

    def apply(self, raw, dtype=np.float32, xp=np):
        """The model input for raw rows (n, features) or (n, *shape), in `dtype` (NumPy, or `xp=jax.numpy`)."""
        dtype = np.dtype(dtype)
        x = xp.asarray(raw).astype(dtype)
        if self.mode != "standard":
            return x * dtype.type(self.scale)
        shape = (-1,) if x.ndim <= 2 else x.shape[1:]
        mean = self.mean.astype(dtype).reshape(shape)
        inv_std = self.inv_std.astype(dtype).reshape(shape)
        return (x - mean) * inv_std

    def per_feature(self, features: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean, multiplier) float32 arrays of `features` values: what the firmware's float input kernel reads.
        For scale/none the mean is 0 and raw - 0 is raw exactly, so the result is raw * scale bit for bit."""
        if self.mode == "standard":
            return self.mean.astype(np.float32), self.inv_std.astype(np.float32)
        return np.zeros(features, np.float32), np.full(features, self.scale, np.float32)

    def to_meta(self, features: int) -> dict:
        """The model directory's `input` object."""
        meta = {"scale": float(self.scale), "features": int(features), "raw": self.raw,
                "normalize": {"mode": self.mode}}
        if self.mode == "standard":
            meta["normalize"].update(mean=[float(v) for v in self.mean], inv_std=[float(v) for v in self.inv_std])
        return meta

    @classmethod
    def from_meta(cls, inp: dict, where: str = "model") -> "Normalization":
        """From a model directory's `input` object; without `normalize` it is the legacy uint8 * scale."""
        scale = inp.get("scale")
        norm = inp.get("normalize")
        if norm is None:
            return cls("scale", "uint8", float(scale))
        if not isinstance(norm, dict) or norm.get("mode") not in MODES:
            raise NormalizeError(f"{where}: metadata field 'input.normalize' must be an object with 'mode' one of "
                                 f"{', '.join(MODES)}, got {norm!r}")
        raw = inp.get("raw", "uint8")
        if raw not in RAW_DTYPES:
            raise NormalizeError(f"{where}: metadata field 'input.raw' is {raw!r}; it must be one of "
                                 f"{', '.join(RAW_DTYPES)}")
        if norm["mode"] != "standard":
            return cls(norm["mode"], raw, float(scale))
        features = inp.get("features")
        arrays = {}
        for key in ("mean", "inv_std"):
            values = norm.get(key)
            if not (isinstance(values, list) and len(values) == features
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                            for v in values)):
                raise NormalizeError(f"{where}: metadata field 'input.normalize.{key}' must be a list of "
                                     f"{features} finite numbers (one per input feature)")
            arrays[key] = np.asarray(values, np.float32)
        if not np.all(np.isfinite(arrays["mean"])) or not np.all(arrays["inv_std"] > 0) or not np.all(
                np.isfinite(arrays["inv_std"])):
            raise NormalizeError(f"{where}: metadata field 'input.normalize': mean must be finite and inv_std "
                                 f"positive and finite in float32")
        return cls("standard", raw, 1.0, arrays["mean"], arrays["inv_std"])


def as_normalization(input_scale) -> Normalization:
    """A Normalization from what callers pass as `input_scale`: a Normalization, or a float (uint8 * scale)."""
    if isinstance(input_scale, Normalization):
        return input_scale
    return Normalization("scale", "uint8", float(input_scale))


def fit(x_train: np.ndarray, mode: str) -> Normalization:
    """Fit `mode` on the training rows (n, features) (never the test split). uint8 data with mode scale keeps raw
    bytes (scale 1/255); anything else takes float32 raw values: scale = 1 / max |x| (1 if all zero), standard =
    per-feature mean and 1 / std (population std, computed in float64; a constant feature gets inv_std 1)."""
    if mode not in MODES:
        raise NormalizeError(f"--normalize {mode!r}: use one of {', '.join(MODES)}")
    uint8 = x_train.dtype == np.uint8
    raw = "uint8" if uint8 and mode != "standard" else "float32"
    if mode == "none":
        return Normalization("none", raw, 1.0)
    if mode == "scale":
        if uint8:
            return Normalization("scale", "uint8", UINT8_SCALE)
        peak = float(np.max(np.abs(x_train.astype(np.float64)))) if x_train.size else 0.0
        return Normalization("scale", raw, float(np.float32(1.0 / peak)) if peak > 0 else 1.0)
    x = x_train.reshape(len(x_train), -1).astype(np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    inv_std = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 1.0)
    return Normalization("standard", raw, 1.0, mean.astype(np.float32), inv_std.astype(np.float32))
