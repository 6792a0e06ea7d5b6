"""The one-multiply output stage of the int8 conv and depthwise kernels (firmware/kernels/conv_q8_m0.c,
docs/FIRMWARE.md "Output stage"): which layers can use it, and its per-channel records.

The golden formula is round_half_up(acc * m / 2^t), t = 31 + shift (compress/reference.py). When m has its low k
bits zero, acc * m / 2^t = acc * m' / 2^s with m' = m >> k, s = t - k; when every accumulator the channel can reach
(compress.quantize.accumulator_range, after the fused ReLU's cut) times m' stays inside int32, one MULS gives the
exact product, and the rounding is an arithmetic shift by s plus the last bit shifted out (ASRS sets the carry to it,
ADCS adds it). compress rounds conv multipliers so that this holds (compress.quantize.reduced_multiplier); the build
checks it on the stored tensors and emits the records only where it holds for every channel, so the bytes out are
the golden model's by construction, and any other model keeps the exact general paths.

Record of channel k: m' << 8 | s, one word (one LDM): ASRS by a register shifts by its low byte, so the word itself
is the shift operand and m' = word >> 8. The records follow the layer's multipliers in the same array
(multiplier[rq_offset + k], conv.h), so a layer narrowed to channels [a, b) by advancing `multiplier` (two-core
splits, firmware/kernels/conv_layers.c) still finds its own.
"""

from __future__ import annotations

import numpy as np

from compress.quantize import MAX_REDUCED_BITS, accumulator_range

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MAX_RECORD_SHIFT = 62  # s <= t <= 62; ASRS by 32 or more gives the sign (exact: |acc m'| < 2^31 <= 2^(s-1))


def record(m: int, shift: int, lo: int, hi: int) -> int | None:
    """The record (m' << 8 | s) of one channel with multiplier m, shift `shift`, whose accumulators that reach the
    multiply lie in [lo, hi] (lo > hi: none does), or None when one 32-bit product is not exact for it."""
    t = 31 + int(shift)
    m = int(m)
    if m == 0:
        return 1  # m' = 0, s = 1: every output 0, as the golden formula gives
    k = (m & -m).bit_length() - 1  # trailing zero bits
    reduced, s = m >> k, t - k
    if s < 1:  # ASRS by 0 would leave the carry as it was: keep one bit of shift
        reduced, s = reduced << (1 - s), 1
    if reduced >= 1 << MAX_REDUCED_BITS or s > MAX_RECORD_SHIFT:
        return None
    if lo <= hi and not (INT32_MIN <= lo * reduced and hi * reduced <= INT32_MAX):
        return None
    return reduced << 8 | s


def output_records(w, bias, multiplier, shift, zp_in: int, out_zp: int, act_min: int, axis: int) -> np.ndarray | None:
    """int32 records (one per output channel) of a conv or depthwise layer, or None when a channel's product does
    not fit (the kernels then keep their general paths). w: the stored int8 weights, output channel on `axis`
    (conv2d OHWI: 0, depthwise (kh, kw, C): -1); bias: the int32 bias before folding."""
    if act_min > out_zp:  # the M0+ stage has the ReLU cut only for act_min = out_zp
        return None
    lo, hi = accumulator_range(w, bias, zp_in, axis)
    if act_min >= out_zp:  # the cut: only acc >= 1 is multiplied
        lo = np.maximum(lo, 1)
    out = []
    for k in range(len(multiplier)):
        r = record(multiplier[k], shift[k], int(lo[k]), int(hi[k]))
        if r is None:
            return None
        out.append(r)
    return np.asarray(out, np.int32)

