"""The SIO interpolators INTERP0 and INTERP1 (datasheet 2.3.1.6; registers at SIO 0x080 and 0x0C0).

Each has two lanes. Lane i takes its accumulator (or the other lane's, CROSS_INPUT), shifts it right (logical) by
SHIFT, keeps bits MASK_LSB..MASK_MSB and, if SIGNED, sign-extends from MASK_MSB: that is the lane's shift+mask
value. The lane result is BASEi plus that value (or plus the raw input, ADD_RAW); the FULL result is BASE2 plus
both shift+mask values. PEEK reads a result; POP reads it and writes both accumulators with the lane results
(or the other lane's, CROSS_RESULT). FORCE_MSB ORs into bits 29:28 of a lane result as the bus sees it only.
INTERP0 lane 0 has BLEND (lane 1 = BASE0 + alpha * (BASE1 - BASE0) / 256 with alpha the low 8 bits of lane 1's
shift+mask, lane 0 = alpha, FULL = BASE2 + lane 0's shift+mask); INTERP1 lane 0 has CLAMP (lane 0 = its
shift+mask clamped to [BASE0, BASE1]). Signedness of blend follows lane 1, of clamp lane 0.
"""

from __future__ import annotations

MASK32 = 0xFFFFFFFF
ACCUM0, ACCUM1, BASE0, BASE1, BASE2 = 0x00, 0x04, 0x08, 0x0C, 0x10
POP_LANE0, POP_LANE1, POP_FULL, PEEK_LANE0, PEEK_LANE1, PEEK_FULL = 0x14, 0x18, 0x1C, 0x20, 0x24, 0x28
CTRL_LANE0, CTRL_LANE1, ACCUM0_ADD, ACCUM1_ADD, BASE_1AND0 = 0x2C, 0x30, 0x34, 0x38, 0x3C
REGISTER_NAMES = {ACCUM0: "ACCUM0", ACCUM1: "ACCUM1", BASE0: "BASE0", BASE1: "BASE1", BASE2: "BASE2",
                  POP_LANE0: "POP_LANE0", POP_LANE1: "POP_LANE1", POP_FULL: "POP_FULL", PEEK_LANE0: "PEEK_LANE0",
                  PEEK_LANE1: "PEEK_LANE1", PEEK_FULL: "PEEK_FULL", CTRL_LANE0: "CTRL_LANE0",
                  CTRL_LANE1: "CTRL_LANE1", ACCUM0_ADD: "ACCUM0_ADD", ACCUM1_ADD: "ACCUM1_ADD",
                  BASE_1AND0: "BASE_1AND0"}
INTERP_SPAN = 0x40                       # each interpolator's register block
# CTRL_LANEx fields (datasheet 2.3.1.7 SIO: INTERP0_CTRL_LANE0 ...)
SHIFT_MASK, MASK_LSB_SHIFT, MASK_MSB_SHIFT = 0x1F, 5, 10
SIGNED, CROSS_INPUT, CROSS_RESULT, ADD_RAW = 1 << 15, 1 << 16, 1 << 17, 1 << 18
FORCE_MSB_SHIFT, FORCE_MSB_MASK = 19, 3
BLEND, CLAMP = 1 << 21, 1 << 22
OVERF0, OVERF1, OVERF = 1 << 23, 1 << 24, 1 << 25
CTRL_WRITABLE = (1 << 23) - 1            # bits 22:0; the OVERF bits are read-only
ACCUM_ADD_MASK = 0xFFFFFF                # ACCUMx_ADD is a 24-bit field


def _s32(x: int) -> int:
    x &= MASK32
    return x - (1 << 32) if x & 0x80000000 else x


def _field_mask(ctrl: int) -> int:
    lsb, msb = (ctrl >> MASK_LSB_SHIFT) & 0x1F, (ctrl >> MASK_MSB_SHIFT) & 0x1F
    return ((1 << (msb + 1)) - 1) & ~((1 << lsb) - 1) if msb >= lsb else 0


class Interpolator:
    def __init__(self, index: int):
        self.index = index                       # 0: has BLEND, 1: has CLAMP
        self.accum = [0, 0]
        self.base = [0, 0, 0]
        self.ctrl = [0, 0]

    # -- datapath ------------------------------------------------------------------------------------------
    def _input(self, lane: int) -> int:
        return self.accum[1 - lane] if self.ctrl[lane] & CROSS_INPUT else self.accum[lane]

    def shift_mask(self, lane: int) -> int:
        ctrl = self.ctrl[lane]
        v = (self._input(lane) >> (ctrl & SHIFT_MASK)) & _field_mask(ctrl)
        msb = (ctrl >> MASK_MSB_SHIFT) & 0x1F
        if ctrl & SIGNED and v >> msb & 1:
            v |= MASK32 & ~((1 << (msb + 1)) - 1)
        return v & MASK32

    def _blend(self) -> bool:
        return self.index == 0 and bool(self.ctrl[0] & BLEND)

    def _clamp(self) -> bool:
        return self.index == 1 and bool(self.ctrl[0] & CLAMP)

    def results(self) -> tuple[int, int, int]:
        """(lane 0, lane 1, full) on the internal datapath (no FORCE_MSB)."""
        sm0, sm1 = self.shift_mask(0), self.shift_mask(1)
        if self._blend():
            alpha = sm1 & 0xFF
            b0, b1 = self.base[0], self.base[1]
            if self.ctrl[1] & SIGNED:
                b0, b1 = _s32(b0), _s32(b1)
            lane1 = b0 + ((b1 - b0) * alpha >> 8)
            return alpha, lane1 & MASK32, (self.base[2] + sm0) & MASK32
        lane = []
        for i, sm in ((0, sm0), (1, sm1)):
            lane.append((self.base[i] + (self._input(i) if self.ctrl[i] & ADD_RAW else sm)) & MASK32)
        if self._clamp():
            lo, hi, v = self.base[0], self.base[1], sm0
            if self.ctrl[0] & SIGNED:
                lo, hi, v = _s32(lo), _s32(hi), _s32(v)
            lane[0] = (hi if v > hi else lo if v < lo else v) & MASK32
        return lane[0], lane[1], (self.base[2] + sm0 + sm1) & MASK32

    def _forced(self, lane: int, value: int) -> int:
        return value | ((self.ctrl[lane] >> FORCE_MSB_SHIFT) & FORCE_MSB_MASK) << 28

    def _pop(self):
        r0, r1, _full = self.results()
        self.accum = [r1 if self.ctrl[0] & CROSS_RESULT else r0, r0 if self.ctrl[1] & CROSS_RESULT else r1]

    def _overflow_bits(self) -> int:
        bits = 0
        for lane, flag in ((0, OVERF0), (1, OVERF1)):
            ctrl = self.ctrl[lane]
            msb = (ctrl >> MASK_MSB_SHIFT) & 0x1F
            if (self._input(lane) >> (ctrl & SHIFT_MASK)) >> (msb + 1):
                bits |= flag
        return bits | (OVERF if bits else 0)

    # -- bus (offset within this interpolator's 0x40 block) -------------------------------------------------------
    def read(self, offset: int) -> int:
        if offset in (ACCUM0, ACCUM1):
            return self.accum[offset // 4]
        if offset in (BASE0, BASE1, BASE2):
            return self.base[(offset - BASE0) // 4]
        if offset in (PEEK_LANE0, PEEK_LANE1, PEEK_FULL, POP_LANE0, POP_LANE1, POP_FULL):
            r = self.results()
            which = (offset - (PEEK_LANE0 if offset >= PEEK_LANE0 else POP_LANE0)) // 4
            value = self._forced(which, r[which]) if which < 2 else r[2]
            if offset < PEEK_LANE0:
                self._pop()
            return value
        if offset == CTRL_LANE0:
            return self.ctrl[0] | self._overflow_bits()
        if offset == CTRL_LANE1:
            return self.ctrl[1]
        if offset in (ACCUM0_ADD, ACCUM1_ADD):
            return self.shift_mask((offset - ACCUM0_ADD) // 4)
        return 0                                  # BASE_1AND0 is write-only

    def write(self, offset: int, value: int):
        value &= MASK32
        if offset in (ACCUM0, ACCUM1):
            self.accum[offset // 4] = value
        elif offset in (BASE0, BASE1, BASE2):
            self.base[(offset - BASE0) // 4] = value
        elif offset in (CTRL_LANE0, CTRL_LANE1):
            self.ctrl[(offset - CTRL_LANE0) // 4] = value & CTRL_WRITABLE
        elif offset in (ACCUM0_ADD, ACCUM1_ADD):
            lane = (offset - ACCUM0_ADD) // 4
            self.accum[lane] = (self.accum[lane] + (value & ACCUM_ADD_MASK)) & MASK32
        elif offset == BASE_1AND0:
            for lane, half in ((0, value & 0xFFFF), (1, value >> 16)):
                signed_lane = 1 if self._blend() else lane
                if self.ctrl[signed_lane] & SIGNED and half & 0x8000:
                    half |= 0xFFFF0000
                self.base[lane] = half
        # PEEK/POP registers are read-only: writes are ignored as on the chip
