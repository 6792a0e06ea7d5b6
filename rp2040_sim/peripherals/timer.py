"""TIMER (datasheet 4.6.5) and the WATCHDOG tick that drives it (datasheet 4.7.6).

The 64-bit microsecond counter advances once per watchdog tick: one tick every TICK.CYCLES clk_ref cycles once
TICK.ENABLE is set (firmware sets CYCLES = 12 with clk_ref = XOSC 12 MHz -> 1 us). clk_ref cycles come from the
emulated clk_sys cycles through the current clock tree (clock.Clock), never from wall time. Alarms are not modelled.
"""

from __future__ import annotations

from rp2040_sim.peripherals.base import Peripheral

WATCHDOG_BASE = 0x40058000
WD_CTRL, WD_LOAD, WD_REASON, WD_SCRATCH0, WD_TICK = 0x00, 0x04, 0x08, 0x0C, 0x2C
WD_TICK_CYCLES_MASK = 0x1FF
WD_TICK_ENABLE = 1 << 9
WD_TICK_RUNNING = 1 << 10
WD_TICK_RESET = WD_TICK_ENABLE              # reset: enabled, CYCLES = 0 (no ticks until CYCLES is set)
WD_CTRL_TRIGGER = 1 << 31
WD_CTRL_ENABLE = 1 << 30

TIMER_BASE = 0x40054000
TIMER_TIMEHW, TIMER_TIMELW, TIMER_TIMEHR, TIMER_TIMELR = 0x00, 0x04, 0x08, 0x0C
TIMER_ALARM0 = 0x10
TIMER_ARMED, TIMER_TIMERAWH, TIMER_TIMERAWL = 0x20, 0x24, 0x28
TIMER_DBGPAUSE, TIMER_PAUSE, TIMER_INTR, TIMER_INTE, TIMER_INTF, TIMER_INTS = 0x2C, 0x30, 0x34, 0x38, 0x3C, 0x40
TIMER_DBGPAUSE_RESET = 0x7


class Watchdog(Peripheral):
    NAME, BASE = "WATCHDOG", WATCHDOG_BASE
    REGISTERS = {WD_CTRL: "CTRL", WD_LOAD: "LOAD", WD_REASON: "REASON", WD_TICK: "TICK",
                 **{WD_SCRATCH0 + 4 * i: f"SCRATCH{i}" for i in range(8)}}
    RESET = {WD_TICK: WD_TICK_RESET}

    def __init__(self, sim):
        super().__init__(sim)
        self._ticks = 0                       # whole ticks so far
        self._ref_at_last = 0
        self._ref_rem = 0

    def ticks(self) -> int:
        """Watchdog ticks generated so far (each one advances the TIMER by one)."""
        ref = self.sim.clock.ref_cycles()
        tick = self.regs[WD_TICK]
        cycles = tick & WD_TICK_CYCLES_MASK
        if tick & WD_TICK_ENABLE and cycles:
            total = ref - self._ref_at_last + self._ref_rem
            self._ticks += total // cycles
            self._ref_rem = total % cycles
        self._ref_at_last = ref
        return self._ticks

    def read(self, offset):
        if offset == WD_TICK:
            tick = self.regs[WD_TICK]
            running = tick & WD_TICK_ENABLE and tick & WD_TICK_CYCLES_MASK
            return tick | (WD_TICK_RUNNING if running else 0)
        return super().read(offset)

    def write(self, offset, value):
        if offset == WD_TICK:
            self.ticks()                       # count the old setting's ticks up to now
            value &= WD_TICK_ENABLE | WD_TICK_CYCLES_MASK
        if offset == WD_CTRL and value & WD_CTRL_TRIGGER:
            self.sim.warn("WATCHDOG: CTRL.TRIGGER written; a chip reset is not modelled")
        super().write(offset, value)


class Timer(Peripheral):
    NAME, BASE = "TIMER", TIMER_BASE
    REGISTERS = {TIMER_TIMEHW: "TIMEHW", TIMER_TIMELW: "TIMELW", TIMER_TIMEHR: "TIMEHR", TIMER_TIMELR: "TIMELR",
                 **{TIMER_ALARM0 + 4 * i: f"ALARM{i}" for i in range(4)},
                 TIMER_ARMED: "ARMED", TIMER_TIMERAWH: "TIMERAWH", TIMER_TIMERAWL: "TIMERAWL",
                 TIMER_DBGPAUSE: "DBGPAUSE", TIMER_PAUSE: "PAUSE", TIMER_INTR: "INTR", TIMER_INTE: "INTE",
                 TIMER_INTF: "INTF", TIMER_INTS: "INTS"}
    RESET = {TIMER_DBGPAUSE: TIMER_DBGPAUSE_RESET}

    def __init__(self, sim, watchdog: Watchdog):
        super().__init__(sim)
        self.watchdog = watchdog
        self._offset = 0                       # set by TIMEHW/TIMELW writes
        self._latched_high = 0

    def now_us(self) -> int:
        return (self.watchdog.ticks() + self._offset) & 0xFFFFFFFFFFFFFFFF

    def read(self, offset):
        if offset == TIMER_TIMELR:             # reading TIMELR latches TIMEHR (datasheet 4.6.2)
            t = self.now_us()
            self._latched_high = t >> 32
            return t & 0xFFFFFFFF
        if offset == TIMER_TIMEHR:
            return self._latched_high
        if offset == TIMER_TIMERAWL:
            return self.now_us() & 0xFFFFFFFF
        if offset == TIMER_TIMERAWH:
            return self.now_us() >> 32
        return super().read(offset)

    def write(self, offset, value):
        if offset == TIMER_TIMELW:
            self.regs[TIMER_TIMELW] = value
        elif offset == TIMER_TIMEHW:           # writing TIMEHW commits TIMELW:TIMEHW (datasheet 4.6.5)
            target = (value << 32) | self.regs[TIMER_TIMELW]
            self._offset = target - self.watchdog.ticks()
        elif offset in (TIMER_ALARM0, TIMER_ALARM0 + 4, TIMER_ALARM0 + 8, TIMER_ALARM0 + 12) or offset == TIMER_INTE:
            self.sim.warn(f"TIMER: {self.name_of(offset)} written; alarms and timer interrupts are not modelled")
            super().write(offset, value)
        else:
            super().write(offset, value)
