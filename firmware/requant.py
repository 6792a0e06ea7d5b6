"""The one-multiply output stage of the int8 conv and depthwise kernels (firmware/kernels/conv_q8_m0.c,
docs/FIRMWARE.md "Output stage"): which layers can use it, and its per-channel records.

The golden formula is v = clamp(round_half_up(acc * m / 2^t) + out_zp, act_min, act_max), t = 31 + shift
(compress/reference.py), monotonic in acc: up to some accumulator L every output is act_min, from some A on every
output is act_max, and neither needs the product. When m has its low k bits zero, acc * m / 2^t = acc * m' / 2^s with
m' = m >> k, s = t - k; when every accumulator left, in [L + 1, A - 1] (and in the channel's range [lo, hi], from its
weights and bias: compress.quantize.accumulator_range), times m' stays inside int32, one MULS gives the exact
product, and the rounding is an arithmetic shift by s plus the last bit shifted out (ASRS sets the carry to it, ADCS
adds it); the result is then inside (act_min, act_max) and needs no clamp. Those accumulators have outputs within
the int8 range, so the product bound is about 256 / scale whatever the layer's size. compress rounds conv
multipliers so that it holds (compress.quantize.reduced_multiplier, multiply_bound); the build checks it exactly on
the stored tensors and emits the records only where it holds for every channel, so the bytes out are the golden
model's by construction, and any other layer keeps the kernels' general paths.

Record of channel k: RECORD_WORDS words, loaded with one LDM: L (acc <= L writes act_min), A (acc >= A writes
act_max), m' << 8 | s (ASRS by a register shifts by its low byte, so the word itself is the shift operand, and
m' = word >> 8).
"""

from __future__ import annotations

import numpy as np

from compress.quantize import MAX_REDUCED_BITS, accumulator_range

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MAX_RECORD_SHIFT = 62  # s <= t <= 62; ASRS by 32 or more gives the sign (exact: |acc m'| < 2^31 <= 2^(s-1))
RECORD_WORDS = 3       # conv.h PZ_Q8_RQ_WORDS


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def saturation(m: int, shift: int, bottom: int, top: int) -> tuple[int, int]:
    """(L, A) for multiplier m > 0: the largest acc with round_half_up(acc m / 2^t) <= bottom (acc m / 2^t <
    bottom + 1/2) and the least with round_half_up(acc m / 2^t) >= top (acc m / 2^t >= top - 1/2)."""
    half = 30 + shift  # 2^(t - 1)
    return ceil_div((2 * bottom + 1) << half, m) - 1, ceil_div((2 * top - 1) << half, m)


def record(m: int, shift: int, lo: int, hi: int, bottom: int, top: int) -> tuple[int, int, int] | None:
    """(L, A, m' << 8 | s) of one channel with multiplier m, shift `shift`, accumulators in [lo, hi], bottom =
    act_min - out_zp, top = act_max - out_zp (bottom <= top), or None when one 32-bit product is not exact for it."""
    m, t = int(m), 31 + int(shift)
    if bottom > top:
        return None
    if m == 0 or bottom == top:  # every output is clamp(out_zp) (act_min, act_max or out_zp), or act_min = act_max
        low, a = (hi, hi + 1) if bottom >= 0 or bottom == top else (lo - 1, lo) if top <= 0 else (lo - 1, hi + 1)
        word = 1
    else:
        low, a = saturation(m, int(shift), bottom, top)
        k = (m & -m).bit_length() - 1  # trailing zero bits
        reduced, s = m >> k, t - k
        if s < 1:  # ASRS by 0 would leave the carry as it was: keep one bit of shift
            reduced, s = reduced << (1 - s), 1
        if reduced >= 1 << MAX_REDUCED_BITS or s > MAX_RECORD_SHIFT:
            return None
        first, last = max(lo, low + 1), min(hi, a - 1)  # the accumulators that are multiplied
        if first <= last and not (INT32_MIN <= first * reduced and last * reduced <= INT32_MAX):
            return None
        word = reduced << 8 | s
    low, a = min(max(low, lo - 1), hi), max(min(a, hi + 1), lo)  # the same outputs for every acc in [lo, hi]
    if not (INT32_MIN <= low and a <= INT32_MAX):
        return None
    return low, a, word


def output_records(w, bias, multiplier, shift, zp_in: int, out_zp: int, act_min: int, act_max: int,
                   axis: int) -> np.ndarray | None:
    """int32 records (RECORD_WORDS per output channel) of a conv or depthwise layer, or None when a channel's
    product does not fit (the kernels then keep their general paths). w: the stored int8 weights, output channel on
    `axis` (conv2d OHWI: 0, depthwise (kh, kw, C): -1); bias: the int32 bias before folding."""
    lo, hi = accumulator_range(w, bias, zp_in, axis)
    bottom, top = int(act_min) - int(out_zp), int(act_max) - int(out_zp)
    out = []
    for k in range(len(multiplier)):
        r = record(multiplier[k], shift[k], int(lo[k]), int(hi[k]), bottom, top)
        if r is None:
            return None
        out.extend(r)
    return np.asarray(out, np.int64).astype(np.int32)
