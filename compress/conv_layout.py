"""The byte layouts the int8 conv kernels read (firmware/kernels/conv.h), packed from the int8 tensors.

Same contract as the dense kernels (compress/layout.py): activations are offset-binary bytes xu = q + 128 and
    acc_k = bias_folded_k + sum_window xu * w,   bias_folded_k = bias_k - (128 + zp_in) * sum_window w_k
where a padding cell of the window is read as the byte zp_in + 128, so it adds back exactly what the fold took
away: the golden model's "padding contributes 0" (CONV_INTERFACE.md) without a test per tap.

conv2d ("conv8", `pack_conv8`) from OHWI int8 weights (K, kh, kw, C) and their folded bias: output channels padded
with zero weights to a multiple of 8 and walked in groups of 8. A group starts with a 32-byte header, the initial
values of the kernel's 8 lane accumulators (int32 little-endian): b_odd for lanes 1, 3, 5, 7 and b_even + 256 * b_odd
(mod 2^32) for lanes 0, 2, 4, 6, so the lanes end up holding bias + dot product with no bias array to walk. Then, for
each window index i = (dy * kw + dx) * C + c (the order in which an NHWC window lies in memory, one contiguous run of
kw * C bytes per kernel row), 8 bytes hold the 8 channels' weights, lanes 0, 2, 4, 6 stored as w + 128 (unsigned)
and lanes 1, 3, 5, 7 as plain int8: the dense kernel's interleave trick (two 32-bit words per window index, one
instruction per lane to extract, docs/FIRMWARE.md). The window is padded with zero weights to n_win = ceil4(kh * kw * C)
indices, so a window the kernel copies (zero-filled to that length) is read in whole 4-byte blocks.
Bytes: ceil8(K) / 8 * (32 + 8 * ceil4(kh * kw * C)).

depthwise_conv2d ("dw", `pack_depthwise`): one record per channel c, 4-byte aligned: its folded bias (int32,
little-endian), then its kh * kw weights (int8, taps row-major), zero-padded to a multiple of 4 bytes. The kernel
streams a channel's bias and weights with LDM instead of keeping 9 weight offsets in registers it does not have.
Bytes: C * (4 + ceil4(kh * kw)).
"""

from __future__ import annotations

import numpy as np

CONV_LANES = 8


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(out, pad_before) of TensorFlow's "same" rule: out = ceil(size / s), the odd padding cell after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2


def window(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """(out, pad_before) of one axis for padding "same" or "valid" (CONV_INTERFACE.md)."""
    if padding == "same":
        return same_padding(size, kernel, stride)
    if padding == "valid":
        if size < kernel:
            raise ValueError(f"valid window of {kernel} does not fit an input of {size}")
        return (size - kernel) // stride + 1, 0
    raise ValueError(f"padding {padding!r}: use 'same' or 'valid'")


def _ceil4(n: int) -> int:
    return (n + 3) // 4 * 4


def _ceil8(n: int) -> int:
    return (n + CONV_LANES - 1) // CONV_LANES * CONV_LANES


def pack_conv8(w_ohwi: np.ndarray, folded_bias: np.ndarray) -> np.ndarray:
    """uint8 bytes of the conv8 layout for int8 weights (K, kh, kw, C) and their folded int32 bias (K,)."""
    w = np.asarray(w_ohwi)
    if w.dtype != np.int8 or w.ndim != 4:
        raise TypeError(f"pack_conv8 wants int8 (K, kh, kw, C) weights, got {w.dtype} {w.shape}")
    k, n_win = w.shape[0], _ceil4(int(np.prod(w.shape[1:])))
    flat = np.zeros((_ceil8(k), n_win), np.int16)
    flat[:k, :int(np.prod(w.shape[1:]))] = w.reshape(k, -1)
    lanes = np.tile(np.array([128, 0], np.int16), CONV_LANES // 2)
    groups = flat.reshape(-1, CONV_LANES, n_win).transpose(0, 2, 1) + lanes  # (groups, n_win, 8)
    b = np.zeros(_ceil8(k), np.int64)
    b[:k] = folded_bias
    b = b.reshape(-1, CONV_LANES // 2, 2)
    header = np.stack([b[:, :, 0] + 256 * b[:, :, 1], b[:, :, 1]], axis=2).reshape(-1, CONV_LANES)
    header = (header & 0xFFFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4 * CONV_LANES)
    body = (groups & 0xFF).astype(np.uint8).reshape(len(header), -1)
    return np.concatenate([header, body], axis=1).ravel()


def unpack_conv8(packed: np.ndarray, shape: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of pack_conv8 (tests and tools): (int8 (K, kh, kw, C) weights, int32 (K,) folded bias)."""
    k, n_win = shape[0], _ceil4(int(np.prod(shape[1:])))
    rows = np.asarray(packed, np.uint8).reshape(-1, 4 * CONV_LANES + CONV_LANES * n_win)
    header = rows[:, :4 * CONV_LANES].copy().view("<u4").astype(np.int64).reshape(-1, CONV_LANES // 2, 2)
    odd = np.where(header[:, :, 1] >= 2**31, header[:, :, 1] - 2**32, header[:, :, 1])
    even = (header[:, :, 0] - 256 * odd) % 2**32
    even = np.where(even >= 2**31, even - 2**32, even)
    bias = np.stack([even, odd], axis=2).reshape(-1)[:k].astype(np.int32)
    g = rows[:, 4 * CONV_LANES:].reshape(-1, n_win, CONV_LANES).astype(np.int16)
    g = g - np.tile(np.array([128, 0], np.int16), CONV_LANES // 2)
    w = ((g + 128) % 256 - 128).transpose(0, 2, 1).reshape(-1, n_win)[:k, :int(np.prod(shape[1:]))]
    return w.reshape(shape).astype(np.int8), bias


def pack_depthwise(w_hwc: np.ndarray, folded_bias: np.ndarray) -> np.ndarray:
    """uint8 bytes of the dw layout for int8 weights (kh, kw, C) and their folded int32 bias (C,)."""
    w = np.asarray(w_hwc)
    if w.dtype != np.int8 or w.ndim != 3:
        raise TypeError(f"pack_depthwise wants int8 (kh, kw, C) weights, got {w.dtype} {w.shape}")
    taps, c = w.shape[0] * w.shape[1], w.shape[2]
    records = np.zeros((c, 4 + _ceil4(taps)), np.uint8)
    records[:, :4] = np.asarray(folded_bias, "<i4").reshape(c, 1).view(np.uint8)
    records[:, 4:4 + taps] = w.reshape(taps, c).T.view(np.uint8)
    return records.ravel()


def depthwise_bytes(kh: int, kw: int, c: int) -> int:
    return c * (4 + _ceil4(kh * kw))


def _fold(bias, sums, in_zero_point: int) -> np.ndarray:
    b = np.asarray(bias, np.int64) - (128 + int(in_zero_point)) * sums
    if np.any(np.abs(b) > 2**31 - 1):
        raise OverflowError("a folded bias does not fit int32")
    return b.astype(np.int32)


def folded_conv_bias(bias: np.ndarray, w_ohwi: np.ndarray, in_zero_point: int) -> np.ndarray:
    """bias_k - (128 + zp_in) * sum of output channel k's weights, int32."""
    w = np.asarray(w_ohwi, np.int64)
    return _fold(bias, w.reshape(w.shape[0], -1).sum(axis=1), in_zero_point)


def folded_depthwise_bias(bias: np.ndarray, w_hwc: np.ndarray, in_zero_point: int) -> np.ndarray:
    """bias_c - (128 + zp_in) * sum of channel c's kh * kw weights, int32."""
    return _fold(bias, np.asarray(w_hwc, np.int64).sum(axis=(0, 1)), in_zero_point)


def conv8_bytes(k: int, kh: int, kw: int, c: int) -> int:
    return _ceil8(k) // CONV_LANES * (4 * CONV_LANES + CONV_LANES * _ceil4(kh * kw * c))
