"""The Cortex-M0+ private peripheral bus (ARMv6-M ARM B3; datasheet 2.4.8): SysTick, NVIC and the SCB.

SysTick counts clk_sys cycles from the native cycle counter (CLKSOURCE = 1; the external reference is not
modelled); with TICKINT it pends the SysTick exception at each 1 -> 0 step. The NVIC and SCB exception registers
read and write the core's `exceptions.Exceptions` state, which the run loop in core.py acts on.
"""

from __future__ import annotations

from rp2040_sim.exceptions import PENDSV, SYSTICK
from rp2040_sim.peripherals.base import NO_EXTRA, Peripheral

PPB_BASE = 0xE0000000
PPB_SIZE = 0x100000
SYST_CSR, SYST_RVR, SYST_CVR, SYST_CALIB = 0xE010, 0xE014, 0xE018, 0xE01C
SYST_CSR_ENABLE, SYST_CSR_TICKINT, SYST_CSR_CLKSOURCE, SYST_CSR_COUNTFLAG = 1 << 0, 1 << 1, 1 << 2, 1 << 16
SYST_MASK = 0x00FFFFFF
NVIC_ISER, NVIC_ICER, NVIC_ISPR, NVIC_ICPR, NVIC_IPR0 = 0xE100, 0xE180, 0xE200, 0xE280, 0xE400
SCB_CPUID, SCB_ICSR, SCB_VTOR, SCB_AIRCR, SCB_SCR, SCB_CCR = 0xED00, 0xED04, 0xED08, 0xED0C, 0xED10, 0xED14
SCB_SHPR2, SCB_SHPR3, SCB_SHCSR = 0xED1C, 0xED20, 0xED24
CPUID_CORTEX_M0PLUS = 0x410CC601      # ARM, r0p1, Cortex-M0+ (datasheet 2.4.8 CPUID)
CCR_VALUE = 0x00000208                # STKALIGN | UNALIGN_TRP: fixed on ARMv6-M
AIRCR_VECTKEY = 0x05FA << 16
AIRCR_SYSRESETREQ = 1 << 2
VTOR_MASK = 0xFFFFFF00
IPR_MASK = 0xC0C0C0C0                 # 2 priority bits per IRQ (datasheet 2.4.8 NVIC_IPR)
ICSR_PENDSVSET, ICSR_PENDSVCLR, ICSR_PENDSTSET, ICSR_PENDSTCLR = 1 << 28, 1 << 27, 1 << 26, 1 << 25
ICSR_ISRPENDING = 1 << 22
SCR_MASK = 0x16                       # SEVONPEND 4, SLEEPDEEP 2, SLEEPONEXIT 1


class Ppb(Peripheral):
    NAME, BASE, SIZE = "PPB", PPB_BASE, PPB_SIZE
    ATOMIC_ALIASES = False
    READ_EXTRA = WRITE_EXTRA = NO_EXTRA
    REGISTERS = {SYST_CSR: "SYST_CSR", SYST_RVR: "SYST_RVR", SYST_CVR: "SYST_CVR", SYST_CALIB: "SYST_CALIB",
                 NVIC_ISER: "NVIC_ISER", NVIC_ICER: "NVIC_ICER", NVIC_ISPR: "NVIC_ISPR", NVIC_ICPR: "NVIC_ICPR",
                 **{NVIC_IPR0 + 4 * i: f"NVIC_IPR{i}" for i in range(8)},
                 SCB_CPUID: "CPUID", SCB_ICSR: "ICSR", SCB_VTOR: "VTOR", SCB_AIRCR: "AIRCR", SCB_SCR: "SCR",
                 SCB_CCR: "CCR", SCB_SHPR2: "SHPR2", SCB_SHPR3: "SHPR3", SCB_SHCSR: "SHCSR"}

    def __init__(self, sim):
        super().__init__(sim)
        self._syst_start = 0              # cycle count at which the counter held _syst_value
        self._syst_value = 0
        self._syst_flag_seen = 0          # wraps already reported through COUNTFLAG
        self._syst_irq_seen = 0           # wraps already turned into a pending SysTick exception
        self.exc = sim.exc

    def vtor(self) -> int:
        return self.regs[SCB_VTOR]

    # -- time-driven events (called by the run loop) ----------------------------------------------------------
    def update(self):
        """Pend SysTick for every 1 -> 0 step since the last call (TICKINT only)."""
        csr = self.regs[SYST_CSR]
        if csr & SYST_CSR_ENABLE and csr & SYST_CSR_TICKINT:
            wraps = self._systick()[1]
            if wraps > self._syst_irq_seen:
                self._syst_irq_seen = wraps
                self.exc.set_pending(SYSTICK)

    def next_event(self) -> int | None:
        """Cycle count of the next SysTick exception, or None when it cannot fire."""
        csr = self.regs[SYST_CSR]
        if not (csr & SYST_CSR_ENABLE and csr & SYST_CSR_TICKINT):
            return None
        t = self.sim.cycles() - self._syst_start
        v0, period = self._syst_value, (self.regs[SYST_RVR] & SYST_MASK) + 1
        if period == 1:                   # RVR = 0: the counter stops at 0 after one more step
            return self._syst_start + v0 if v0 and t < v0 else None
        first = v0 if v0 else v0 + period          # the first 1 -> 0 step after starting (none when starting at 0)
        if t < first:
            return self._syst_start + first
        return self._syst_start + first + ((t - first) // period + 1) * period

    # SysTick: decrements once per clk_sys cycle, reloads RVR on the cycle after reaching 0.
    def _systick(self) -> tuple[int, int]:
        """(current value, wraps to zero since the counter was started)."""
        if not self.regs[SYST_CSR] & SYST_CSR_ENABLE:
            return self._syst_value, 0
        t = self.sim.cycles() - self._syst_start
        v0, period = self._syst_value, (self.regs[SYST_RVR] & SYST_MASK) + 1
        if t <= v0:
            return v0 - t, (1 if t == v0 and v0 else 0)
        k = t - v0 - 1
        value = (period - 1) - (k % period)
        return value, (1 if v0 else 0) + (k + 1) // period

    def read(self, offset):
        if offset == SYST_CVR:
            return self._systick()[0]
        if offset == SYST_CSR:
            value, wraps = self._systick()
            flag = SYST_CSR_COUNTFLAG if wraps > self._syst_flag_seen else 0
            self._syst_flag_seen = wraps          # reading CSR clears COUNTFLAG
            return (self.regs[SYST_CSR] & ~SYST_CSR_COUNTFLAG) | flag
        if offset == SCB_CPUID:
            return CPUID_CORTEX_M0PLUS
        if offset == SCB_CCR:
            return CCR_VALUE
        if offset in (NVIC_ISER, NVIC_ICER):
            return self.exc.enabled
        if offset in (NVIC_ISPR, NVIC_ICPR):
            return self.exc.irq_pending_bits()
        if NVIC_IPR0 <= offset < NVIC_IPR0 + 32:
            return self.exc.ipr[(offset - NVIC_IPR0) // 4]
        if offset == SCB_SHPR2:
            return self.exc.shpr2
        if offset == SCB_SHPR3:
            return self.exc.shpr3
        if offset == SCB_ICSR:
            return self._icsr()
        return super().read(offset)

    def _icsr(self) -> int:
        self.update()
        exc = self.exc
        active = exc.active[-1] if exc.active else 0
        pending = exc.best_pending() or 0
        return ((ICSR_PENDSVSET if exc.pendsv else 0) | (ICSR_PENDSTSET if exc.systick else 0)
                | (ICSR_ISRPENDING if exc.irq_pending_bits() else 0) | (pending << 12) | active)

    def write(self, offset, value):
        if offset == SYST_CSR:
            self.update()
            was_on = self.regs[SYST_CSR] & SYST_CSR_ENABLE
            if was_on and not value & SYST_CSR_ENABLE:
                self._syst_value = self._systick()[0]
            if not was_on and value & SYST_CSR_ENABLE:
                self._syst_start, self._syst_flag_seen = self.sim.cycles(), 0
            if value & SYST_CSR_ENABLE and not value & SYST_CSR_CLKSOURCE:
                self.sim.warn("PPB: SysTick with CLKSOURCE=0 (external reference) counts clk_sys here")
            if not was_on and value & SYST_CSR_ENABLE:
                self._syst_irq_seen = 0
            tickint_was = self.regs[SYST_CSR] & SYST_CSR_TICKINT
            self.regs[SYST_CSR] = value & (SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE)
            if value & SYST_CSR_TICKINT and not tickint_was:
                self._syst_irq_seen = self._systick()[1]      # only steps from now on pend the exception
            self.sim.events_changed()
        elif offset == SYST_CVR:                  # any write clears the counter (and COUNTFLAG)
            self.update()
            self._syst_value, self._syst_start, self._syst_flag_seen, self._syst_irq_seen = 0, self.sim.cycles(), 0, 0
            self.sim.events_changed()
        elif offset == SYST_RVR:
            self.update()
            self.regs[SYST_RVR] = value & SYST_MASK
            self.sim.events_changed()
        elif offset == NVIC_ISER:
            self.exc.enabled |= value
            self.sim.events_changed()
        elif offset == NVIC_ICER:
            self.exc.enabled &= ~value
            self.sim.events_changed()
        elif offset == NVIC_ISPR:
            self.exc.pending |= value
            self.sim.events_changed()
        elif offset == NVIC_ICPR:
            self.exc.pending &= ~value
            self.sim.events_changed()
        elif NVIC_IPR0 <= offset < NVIC_IPR0 + 32:
            self.exc.ipr[(offset - NVIC_IPR0) // 4] = value & IPR_MASK
        elif offset == SCB_SHPR2:
            self.exc.shpr2 = value & 0xC0000000
        elif offset == SCB_SHPR3:
            self.exc.shpr3 = value & 0xC0C00000
        elif offset == SCB_ICSR:
            if value & ICSR_PENDSVSET:
                self.exc.set_pending(PENDSV)
            elif value & ICSR_PENDSVCLR:
                self.exc.set_pending(PENDSV, False)
            if value & ICSR_PENDSTSET:
                self.exc.set_pending(SYSTICK)
            elif value & ICSR_PENDSTCLR:
                self.exc.set_pending(SYSTICK, False)
            self.sim.events_changed()
        elif offset == SCB_SCR:
            self.regs[SCB_SCR] = value & SCR_MASK
        elif offset == SCB_VTOR:
            self.regs[SCB_VTOR] = value & VTOR_MASK
        elif offset == SCB_AIRCR:
            if value & 0xFFFF0000 == AIRCR_VECTKEY and value & AIRCR_SYSRESETREQ:
                self.sim.warn("PPB: AIRCR.SYSRESETREQ; a system reset is not modelled")
            self.regs[SCB_AIRCR] = value & 0xFFFF
        elif offset in (SCB_CPUID, SCB_CCR, SYST_CALIB):
            return                                # read-only
        else:
            super().write(offset, value)
