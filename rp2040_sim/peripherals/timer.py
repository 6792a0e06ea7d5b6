"""TIMER (datasheet 4.6.5) and the WATCHDOG tick that drives it (datasheet 4.7.6).

The 64-bit microsecond counter advances once per watchdog tick: one tick every TICK.CYCLES clk_ref cycles once
TICK.ENABLE is set (firmware sets CYCLES = 12 with clk_ref = XOSC 12 MHz -> 1 us). clk_ref cycles come from the
emulated clk_sys cycles through the current clock tree (clock.Clock), never from wall time.

Alarms 0-3 (datasheet 4.6.4): writing ALARMn arms it; it fires when the counter's low 32 bits reach the value,
which sets INTR bit n and clears ARMED bit n. IRQ line n (TIMER_IRQ_n) is INTS bit n = (INTR | INTF) & INTE. The
run loop asks `next_event()` for the cycle count of the next alarm and stops there; the exact tick is rechecked
on arrival (cycles -> ticks goes through the clock tree's rounding), so an alarm fires on the block in which its
tick is reached.
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
NUM_ALARMS = 4
TIMER_IRQ_0 = 0                              # TIMER_IRQ_n = n (datasheet 2.3.2)
U32 = 1 << 32


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

    def cycles_for_ticks(self, ticks: int) -> int | None:
        """clk_sys cycles from now until `ticks` more ticks have been generated (an estimate from the current clock
        frequencies, rounded up; the caller rechecks on arrival)."""
        self.ticks()
        cycles = self.regs[WD_TICK] & WD_TICK_CYCLES_MASK
        if not (self.regs[WD_TICK] & WD_TICK_ENABLE and cycles):
            return None                        # not ticking: the alarm cannot fire
        ref_needed = ticks * cycles - self._ref_rem
        clock = self.sim.clock
        return max(1, -(-ref_needed * clock.sys_hz // clock.ref_hz))

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
        self._targets = [None] * NUM_ALARMS    # absolute 64-bit tick at which each armed alarm fires

    # -- alarms -----------------------------------------------------------------------------------------------
    def update(self):
        """Fire the alarms whose tick has come; drive the four IRQ lines."""
        if any(t is not None for t in self._targets):
            now = self.now_us()
            for n, target in enumerate(self._targets):
                if target is not None and now >= target:
                    self._targets[n] = None
                    self.regs[TIMER_INTR] |= 1 << n
        ints = self._ints()
        for n in range(NUM_ALARMS):
            self.sim.set_irq(TIMER_IRQ_0 + n, (ints >> n) & 1)

    def _ints(self) -> int:
        return (self.regs[TIMER_INTR] | self.regs[TIMER_INTF]) & self.regs[TIMER_INTE] & 0xF

    def next_event(self) -> int | None:
        """Cycle count at (or just before) which the next armed alarm's tick is reached."""
        armed = [t for t in self._targets if t is not None]
        if not armed:
            return None
        ticks = min(armed) - self.now_us()
        now = self.sim.cycles()
        if ticks <= 0:
            return now + 1
        cycles = self.watchdog.cycles_for_ticks(ticks)
        return None if cycles is None else now + max(1, cycles - 1)

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
        if offset == TIMER_ARMED:
            self.update()
            return sum(1 << n for n, t in enumerate(self._targets) if t is not None)
        if offset in (TIMER_INTR, TIMER_INTS):
            self.update()
            return self.regs[TIMER_INTR] if offset == TIMER_INTR else self._ints()
        return super().read(offset)

    def write(self, offset, value):
        if offset == TIMER_TIMELW:
            self.regs[TIMER_TIMELW] = value
        elif offset == TIMER_TIMEHW:           # writing TIMEHW commits TIMELW:TIMEHW (datasheet 4.6.5)
            target = (value << 32) | self.regs[TIMER_TIMELW]
            self._offset = target - self.watchdog.ticks()
        elif TIMER_ALARM0 <= offset < TIMER_ALARM0 + 4 * NUM_ALARMS:
            n = (offset - TIMER_ALARM0) // 4
            self.update()
            now = self.now_us()
            delta = (value - now) % U32 or U32    # equal now: the match comes round after a full 2^32 us
            self._targets[n] = now + delta
            self.regs[offset] = value
            self.sim.events_changed()
        elif offset == TIMER_ARMED:                # write 1 to disarm
            for n in range(NUM_ALARMS):
                if value >> n & 1:
                    self._targets[n] = None
            self.sim.events_changed()
        elif offset == TIMER_INTR:                 # write 1 to clear
            self.update()
            self.regs[TIMER_INTR] &= ~value & 0xF
            self.update()
        elif offset in (TIMER_INTE, TIMER_INTF):
            self.update()
            self.regs[offset] = value & 0xF
            self.update()
            self.sim.events_changed()
        elif offset == TIMER_INTS:
            return                                 # read-only
        else:
            super().write(offset, value)
