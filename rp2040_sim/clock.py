"""Emulated time: clk_sys cycles counted by the native core, turned into time with the current clock tree.

No wall time anywhere: the TIMER, SysTick and the divider all derive from the cycle counter, so a run is
bit-for-bit repeatable. Time is kept in picoseconds with the remainder carried, so frequency changes
(ROSC at boot -> PLL_SYS 125 MHz) are integrated exactly.
"""

from __future__ import annotations

PS_PER_S = 10**12
# Datasheet 2.17 (ROSC): nominal 6.5 MHz after reset (1.8-12 MHz across parts); we use the nominal value.
ROSC_HZ = 6_500_000
# Pico board crystal (datasheet 2.16, Pico datasheet): 12 MHz.
XOSC_HZ = 12_000_000


class Clock:
    def __init__(self, cycles_fn):
        self._cycles = cycles_fn
        self.sys_hz = ROSC_HZ        # clk_sys after the bootrom runs from the ROSC
        self.ref_hz = ROSC_HZ        # clk_ref too
        self._last_cycles = 0
        self._ps = 0
        self._rem = 0                # remainder of cycles*1e12 not yet turned into a whole picosecond
        self._ref_cycles = 0         # clk_ref cycles since reset (the watchdog tick counts these)
        self._ref_rem = 0
        self.listeners: list = []    # called after clk_sys changes (what was derived from it in cycles is stale)

    def now_ps(self) -> int:
        c = self._cycles()
        dc = c - self._last_cycles
        if dc:
            total = dc * PS_PER_S + self._rem
            dps = total // self.sys_hz
            self._rem = total % self.sys_hz
            self._ps += dps
            ref_total = dps * self.ref_hz + self._ref_rem
            self._ref_cycles += ref_total // PS_PER_S
            self._ref_rem = ref_total % PS_PER_S
            self._last_cycles = c
        return self._ps

    def ref_cycles(self) -> int:
        self.now_ps()
        return self._ref_cycles

    def cycle_at_ps(self, ps: int) -> int:
        """The first cycle count at which now_ps() >= ps, if clk_sys keeps its present frequency (0 if already)."""
        now = self.now_ps()
        deficit = (ps - now) * self.sys_hz - self._rem      # (cycles - last) * 1e12 must reach this
        return self._last_cycles + -(-deficit // PS_PER_S) if deficit > 0 else 0

    def set_sys_hz(self, hz: int):
        self.now_ps()                # integrate up to now at the old frequency
        self.sys_hz = int(hz)
        for fn in self.listeners:
            fn()

    def set_ref_hz(self, hz: int):
        self.now_ps()
        self.ref_hz = int(hz)
