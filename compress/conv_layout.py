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

pointwise conv2d ("pw16", `pack_pw16`, chosen by `conv_weight_layout`): the layout of the M0+ pointwise kernel's
two-MACs-per-MULS loop (firmware/kernels/pwconv_q8_m0.c, docs/FIRMWARE.md "Pointwise kernel"), from (K, 1, 1, C)
weights, C even, none of them -128. Output channels in groups of 8 (zero padded); a group starts with 8 int32 lane
starts, bias_folded_k + 128 * sum_c w_k,c (the kernel multiplies signed x = xu - 128, so a lane ends at the same
acc_k as conv8's) in the order its LDMs take them (lanes PW16_HEADER_LANES), then per input-channel pair (c, c + 1)
8 int32 words in the order the loop reads them: for lane pair p = 0..3 (output channels 2p, 2p + 1 of the group)
the word of channel c, then that of channel c + 1, each w_2p + 65536 * w_2p+1 (mod 2^32), then the 8 channels'
one-multiply records (firmware/requant.py, 3 int32 each: the loop's weight pointer runs on into them and then into
the next group, so the layer needs no separate record array). x times such a word is
x w_2p + 65536 x w_2p+1, and the sum of the two channels' products has a low half
|x_c w_2p,c + x_c+1 w_2p,c+1| <= 2 * 128 * 127 = 32,512 < 2^15: SXTH gives it exactly and the rest shifted down by
16 is the high lane, exactly (a weight of -128 would break the bound: conv8 then).
Bytes: ceil8(K) / 8 * (128 + 16 * C).

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


# pz_q8_conv_t.w_layout of each conv2d weight layout, conv.h PZ_Q8_W_<NAME> (a depthwise layer's is 0)
W_LAYOUT_CODES = {"conv8": 0, "pw16": 1}

PW16_LANE_PAIRS = CONV_LANES // 2
# The most pw16 bytes (records inside) read from flash that stay faster than conv8 (benchmarks/conv_firmware.py
# pw16-flash, warm XIP cache, 6x6 pixels: 64 -> 80 channels, 11,520 bytes, 3.45 cycles/MAC against conv8's 4.15;
# 64 -> 96, 13,824 bytes, 4.52 against 4.15; from 16,128 bytes 6.7-18.2 against 4.9-11.3: the 16 kB cache holds the
# code too).
PW16_FLASH_MAX_BYTES = 11520
# the group header's lane order: one LDM of six words (lanes 2-5 for the high registers, lanes 0 and 1 straight into
# r6, r7), then lanes 6 and 7
PW16_HEADER_LANES = (2, 3, 4, 5, 0, 1, 6, 7)


PW16_RECORD_WORDS = 3  # firmware/requant.py's one-multiply record {L, A, m' << 8 | s} per output channel
# A pointwise layer whose K is not a multiple of 8 runs its pixels in batches through a buffer of this many bytes
# (conv.h PZ_PW_BATCH_BYTES): ceil8(K) must fit, else conv_q8_m0.c's conv8 paths take it.
PW_BATCH_BYTES = 256


def conv8_records(records: np.ndarray, k: int) -> np.ndarray:
    """The one-multiply records of a conv8 layer (firmware/requant.py, PW16_RECORD_WORDS int32 per output channel)
    as the kernels read them, K channels' then zero records up to ceil8(K): the loops run whole groups of 8 channels.
    A padding lane (zero weights and bias) with the record {0, 0, 0} is never multiplied: every accumulator is <= L
    or >= A; its output bytes land in a buffer the kernel does not copy out (pack_pw16 pads the same way)."""
    rec = np.zeros((_ceil8(k), PW16_RECORD_WORDS), np.int32)
    rec[:k] = np.asarray(records, np.int32).reshape(k, PW16_RECORD_WORDS)
    return rec.ravel()


def pw16_group_bytes(c: int) -> int:
    """A pw16 group of 8 output channels: 8 lane starts, 16 bytes per input channel, 8 records."""
    return 4 * CONV_LANES + 2 * CONV_LANES * c + 4 * PW16_RECORD_WORDS * CONV_LANES


def pw16_bytes(k: int, c: int) -> int:
    return _ceil8(k) // CONV_LANES * pw16_group_bytes(c)


def conv_weight_layout(w_ohwi: np.ndarray, in_shape, out_shape, stride, pads, in_zero_point: int,
                       has_records: bool, in_flash: bool = False) -> str:
    """The weight layout of an int8 conv2d layer, "pw16" or "conv8": the one place the build
    (firmware/convgen.py), the kernel harness and the tests decide it. pw16 for a pointwise layer (1x1, stride 1,
    no padding) that pwconv_q8_m0.c's pw16 loop takes: the build's one-multiply records (has_records), K a
    multiple of 8 or ceil8(K) at most PW_BATCH_BYTES (a batch of pixels), C even, no weight -128 (the lanes'
    bound), and an input whose zero point is not the byte 0 (-128: ReLU outputs keep conv8 and the zero-skipping
    loop, faster at their ~50 % zeros, docs/BENCHMARKS.md "Pointwise kernel: two MACs per MULS"). Weights left in
    flash (in_flash) are read through the 16 kB XIP cache once per pixel, and pw16's are twice conv8's: pw16 there
    only up to PW16_FLASH_MAX_BYTES."""
    w = np.asarray(w_ohwi)
    k, kh, kw, c = w.shape
    pointwise = ((kh, kw) == (1, 1) and tuple(stride) == (1, 1) and tuple(pads) == (0, 0)
                 and tuple(in_shape[:2]) == tuple(out_shape[:2]))
    if (pointwise and has_records and (k % CONV_LANES == 0 or _ceil8(k) <= PW_BATCH_BYTES) and c % 2 == 0
            and int(in_zero_point) != -128 and (w.size == 0 or int(w.min()) > -128)
            and (not in_flash or pw16_bytes(k, c) <= PW16_FLASH_MAX_BYTES)):
        return "pw16"
    return "conv8"


def pack_pw16(w_ohwi: np.ndarray, folded_bias: np.ndarray, records: np.ndarray) -> np.ndarray:
    """uint8 bytes of the pw16 layout for int8 weights (K, 1, 1, C), C even, no weight -128, their folded int32
    bias (K,) and their one-multiply records (K * PW16_RECORD_WORDS int32, firmware/requant.py)."""
    w = np.asarray(w_ohwi)
    if w.dtype != np.int8 or w.ndim != 4 or w.shape[1:3] != (1, 1) or w.shape[3] % 2:
        raise TypeError(f"pack_pw16 wants int8 (K, 1, 1, C) weights with C even, got {w.dtype} {w.shape}")
    if w.size and int(w.min()) == -128:
        raise ValueError("pack_pw16: a weight of -128 breaks the lanes' bound (|x w| <= 128 * 127); use conv8")
    k, c = w.shape[0], w.shape[3]
    rec = np.zeros((_ceil8(k), PW16_RECORD_WORDS), np.int64)
    rec[:k] = np.asarray(records, np.int64).reshape(k, PW16_RECORD_WORDS)
    flat = np.zeros((_ceil8(k), c), np.int64)
    flat[:k] = w.reshape(k, c)
    b = np.zeros(_ceil8(k), np.int64)
    b[:k] = folded_bias
    start = b + 128 * flat.sum(axis=1)
    if np.any(np.abs(start) > 2**31 - 1):
        raise OverflowError("a pw16 lane start (folded bias + 128 * sum of weights) does not fit int32")
    g = flat.reshape(-1, PW16_LANE_PAIRS, 2, c)               # (groups, lane pair, even/odd, C)
    words = g[:, :, 0, :] + 65536 * g[:, :, 1, :]              # (groups, lane pair, C)
    body = words.reshape(len(g), PW16_LANE_PAIRS, c // 2, 2).transpose(0, 2, 1, 3)  # (groups, C / 2, pair, c|c+1)
    header = start.reshape(-1, CONV_LANES)[:, list(PW16_HEADER_LANES)]
    rows = np.concatenate([header, body.reshape(len(g), -1), rec.reshape(len(g), -1)], axis=1)
    return (rows & 0xFFFFFFFF).astype("<u4").view(np.uint8).ravel()


def unpack_pw16(packed: np.ndarray, shape: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of pack_pw16 (tests and tools): (int8 (K, 1, 1, C) weights, int32 (K,) folded bias, int32
    (K * PW16_RECORD_WORDS,) records)."""
    k, c = shape[0], shape[3]
    words = np.asarray(packed, np.uint8).copy().view("<u4").astype(np.int64).reshape(-1, pw16_group_bytes(c) // 4)
    rec = words[:, CONV_LANES + 4 * c:].reshape(-1)[:PW16_RECORD_WORDS * k]
    words = words[:, :CONV_LANES + 4 * c]
    lo = (words + 2**15) % 2**16 - 2**15                      # SXTH: the even channel's weight
    hi = ((words - lo) % 2**32) // 2**16                      # the odd one's, as 16 bits
    hi = (hi + 2**15) % 2**16 - 2**15
    body_lo = lo[:, CONV_LANES:].reshape(-1, c // 2, PW16_LANE_PAIRS, 2).transpose(0, 2, 1, 3).reshape(-1, 4, c)
    body_hi = hi[:, CONV_LANES:].reshape(-1, c // 2, PW16_LANE_PAIRS, 2).transpose(0, 2, 1, 3).reshape(-1, 4, c)
    w = np.stack([body_lo, body_hi], axis=2).reshape(-1, c)    # (ceil8(K), C)
    start = np.empty((len(words), CONV_LANES), np.int64)
    start[:, list(PW16_HEADER_LANES)] = words[:, :CONV_LANES]
    start = start.reshape(-1)
    start = np.where(start >= 2**31, start - 2**32, start)
    bias = start - 128 * w.sum(axis=1)
    return w[:k].reshape(shape).astype(np.int8), bias[:k].astype(np.int32), rec.astype(np.uint32).view(np.int32)


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
