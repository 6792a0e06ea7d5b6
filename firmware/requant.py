"""The one-multiply output stage of the int8 conv and depthwise kernels (firmware/kernels/conv_q8_m0.c,
docs/FIRMWARE.md "Output stage"): which layers can use it, and its per-channel records.

The golden formula is v = clamp(round_half_up(acc * m / 2^t) + out_zp, act_min, act_max), t = 31 + shift
(compress/reference.py). It is monotonic in acc, so from the first accumulator A whose output reaches act_max every
output is act_max, and with a fused ReLU (act_min = out_zp) every acc <= 0 gives act_min: neither needs the product.
When m has its low k bits zero, acc * m / 2^t = acc * m' / 2^s with m' = m >> k, s = t - k; when every accumulator
left, in [lo, A - 1] ([1, A - 1] with the ReLU), times m' stays inside int32, one MULS gives the exact product, and
the rounding is an arithmetic shift by s plus the last bit shifted out (ASRS sets the carry to it, ADCS adds it).
compress rounds conv multipliers so that this holds (compress.quantize.reduced_multiplier, multiply_bound); the build
checks it exactly on the stored tensors and emits the records only where it holds for every channel, so the bytes
out are the golden model's by construction, and any other layer keeps the kernels' general paths.

Record of channel k: two words, loaded with one LDM: A (int32; acc >= A writes act_max), then m' << 8 | s (ASRS by
a register shifts by its low byte, so the word itself is the shift operand, and m' = word >> 8).
"""

from __future__ import annotations

import numpy as np

from compress.quantize import MAX_REDUCED_BITS, accumulator_range

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MAX_RECORD_SHIFT = 62  # s <= t <= 62; ASRS by 32 or more gives the sign (exact: |acc m'| < 2^31 <= 2^(s-1))
RECORD_WORDS = 2


def saturation_start(m: int, shift: int, top: int) -> int:
    """The least integer acc with round_half_up(acc m / 2^t) >= top, i.e. acc m / 2^t >= top - 1/2 (m > 0)."""
    num = (2 * top - 1) << (30 + shift)  # (top - 1/2) 2^t
    return -(-num // m)


def record(m: int, shift: int, lo: int, hi: int, top: int, cut: bool) -> tuple[int, int] | None:
    """(A, m' << 8 | s) of one channel with multiplier m, shift `shift`, accumulators in [lo, hi], top = act_max -
    out_zp and the fused ReLU's cut (acc <= 0 is not multiplied), or None when one 32-bit product is not exact for
    it."""
    m, t = int(m), 31 + int(shift)
    # m = 0: every output is clamp(out_zp), act_max from the start when top <= 0, else never
    a = saturation_start(m, int(shift), top) if m else (INT32_MIN if top <= 0 else hi + 1)
    if m == 0:
        return (a, 1) if a <= INT32_MAX else None
    if a > hi:  # never reached: any A past hi, inside int32
        if hi >= INT32_MAX:
            return None
        a = hi + 1
    a = max(a, INT32_MIN)  # every accumulator saturates
    k = (m & -m).bit_length() - 1  # trailing zero bits
    reduced, s = m >> k, t - k
    if s < 1:  # ASRS by 0 would leave the carry as it was: keep one bit of shift
        reduced, s = reduced << (1 - s), 1
    if reduced >= 1 << MAX_REDUCED_BITS or s > MAX_RECORD_SHIFT:
        return None
    first, last = (max(lo, 1) if cut else lo), a - 1  # the accumulators that are multiplied
    if first <= last and not (INT32_MIN <= first * reduced and last * reduced <= INT32_MAX):
        return None
    return a, reduced << 8 | s


def output_records(w, bias, multiplier, shift, zp_in: int, out_zp: int, act_min: int, act_max: int,
                   axis: int) -> np.ndarray | None:
    """int32 records (RECORD_WORDS per output channel) of a conv or depthwise layer, or None when a channel's
    product does not fit (the kernels then keep their general paths). w: the stored int8 weights, output channel on
    `axis` (conv2d OHWI: 0, depthwise (kh, kw, C): -1); bias: the int32 bias before folding."""
    if act_min > out_zp:  # the M0+ stage has the ReLU cut only for act_min = out_zp
        return None
    lo, hi = accumulator_range(w, bias, zp_in, axis)
    cut = act_min >= out_zp
    out = []
    for k in range(len(multiplier)):
        r = record(multiplier[k], shift[k], int(lo[k]), int(hi[k]), int(act_max) - int(out_zp), cut)
        if r is None:
            return None
        out.extend(r)
    return np.asarray(out, np.int64).astype(np.int32)
