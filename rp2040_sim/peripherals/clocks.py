"""The clock tree as far as firmware sees it: XOSC, PLL_SYS and the CLOCKS muxes (datasheet 2.15-2.18).

Switching clk_sys or clk_ref changes the rate at which emulated cycles become time (clock.Clock), which is what
the TIMER and UART baud rate see. Oscillators start and PLLs lock instantly (their status bits read as ready).
"""

from __future__ import annotations

from rp2040_sim.clock import ROSC_HZ, XOSC_HZ
from rp2040_sim.peripherals.base import Peripheral

# -- XOSC (datasheet 2.16.7, base 0x40024000) --
XOSC_BASE = 0x40024000
XOSC_CTRL, XOSC_STATUS, XOSC_DORMANT, XOSC_STARTUP, XOSC_COUNT = 0x00, 0x04, 0x08, 0x0C, 0x1C
XOSC_CTRL_ENABLE_MASK = 0xFFF << 12
XOSC_CTRL_ENABLE = 0xFAB << 12
XOSC_STATUS_STABLE = 1 << 31
XOSC_STATUS_ENABLED = 1 << 12


class Xosc(Peripheral):
    NAME, BASE = "XOSC", XOSC_BASE
    REGISTERS = {XOSC_CTRL: "CTRL", XOSC_STATUS: "STATUS", XOSC_DORMANT: "DORMANT", XOSC_STARTUP: "STARTUP",
                 XOSC_COUNT: "COUNT"}

    @property
    def running(self) -> bool:
        return (self.regs[XOSC_CTRL] & XOSC_CTRL_ENABLE_MASK) == XOSC_CTRL_ENABLE

    def read(self, offset):
        if offset == XOSC_STATUS:
            return (XOSC_STATUS_STABLE | XOSC_STATUS_ENABLED) if self.running else 0
        return super().read(offset)

    def write(self, offset, value):
        old = self.regs[offset]
        super().write(offset, value)
        if offset == XOSC_CTRL:                # clk_ref may run from it
            commit_clock_change(self, offset, value, old)


# -- PLL_SYS (datasheet 2.18.4, base 0x40028000) --
PLL_SYS_BASE = 0x40028000
PLL_CS, PLL_PWR, PLL_FBDIV_INT, PLL_PRIM = 0x00, 0x04, 0x08, 0x0C
PLL_CS_LOCK = 1 << 31
PLL_CS_REFDIV_MASK = 0x3F
PLL_PWR_PD, PLL_PWR_POSTDIVPD, PLL_PWR_VCOPD = 1 << 0, 1 << 3, 1 << 5
PLL_PWR_RESET = 0x2D
PLL_PRIM_POSTDIV1_SHIFT, PLL_PRIM_POSTDIV2_SHIFT = 16, 12


def commit_clock_change(periph: Peripheral, offset: int, value: int, old: int):
    """After a write that can change clk_ref or clk_sys: apply it, unless a clock would fall below 1 Hz. Time is
    counted in whole hertz, so a divider that takes a clock to 0 Hz (CLK_SYS_DIV = 0xFFFFFF00 from the 6.5 MHz ROSC,
    or powering PLL_SYS down under such a divider) would divide by zero later: keep the old value and stop the run
    with a fault naming the register (issue 10)."""
    sim = periph.sim
    ref, sys = sim.clocks.ref_hz(sim.xosc), sim.clocks.sys_hz(sim.xosc, sim.pll_sys)
    if ref < 1 or sys < 1:
        periph.regs[offset] = old
        periph.impossible(offset, value, f"clk_ref would be {ref} Hz and clk_sys {sys} Hz; the emulator needs both "
                                         f"at 1 Hz or more")
        return
    sim.clocks_changed()


class Pll(Peripheral):
    """PLL_SYS and PLL_USB share this layout (datasheet 2.18.4); CS.LOCK reads 1 once powered and FBDIV is set."""
    REGISTERS = {PLL_CS: "CS", PLL_PWR: "PWR", PLL_FBDIV_INT: "FBDIV_INT", PLL_PRIM: "PRIM"}
    RESET = {PLL_CS: 1, PLL_PWR: PLL_PWR_RESET, PLL_PRIM: 0x00077000}

    @property
    def locked(self) -> bool:
        return not self.regs[PLL_PWR] & (PLL_PWR_PD | PLL_PWR_VCOPD) and self.regs[PLL_FBDIV_INT] >= 16

    def output_hz(self) -> int:
        """FOUTPOSTDIV = FREF / REFDIV * FBDIV / (POSTDIV1 * POSTDIV2) (datasheet 2.18.2), 0 when off."""
        if not self.locked or self.regs[PLL_PWR] & PLL_PWR_POSTDIVPD:
            return 0
        refdiv = max(self.regs[PLL_CS] & PLL_CS_REFDIV_MASK, 1)
        prim = self.regs[PLL_PRIM]
        pd1, pd2 = max((prim >> PLL_PRIM_POSTDIV1_SHIFT) & 7, 1), max((prim >> PLL_PRIM_POSTDIV2_SHIFT) & 7, 1)
        return XOSC_HZ // refdiv * self.regs[PLL_FBDIV_INT] // (pd1 * pd2)

    def read(self, offset):
        if offset == PLL_CS:
            return (self.regs[PLL_CS] & ~PLL_CS_LOCK) | (PLL_CS_LOCK if self.locked else 0)
        return super().read(offset)

    def write(self, offset, value):
        old = self.regs[offset]
        super().write(offset, value & (~PLL_CS_LOCK & 0xFFFFFFFF if offset == PLL_CS else 0xFFFFFFFF))
        commit_clock_change(self, offset, value, old)


class PllSys(Pll):
    NAME, BASE = "PLL_SYS", PLL_SYS_BASE


# -- PLL_USB (datasheet 2.18.4, base 0x4002C000): the SDK runs it at 48 MHz for clk_usb/clk_adc/clk_rtc and spins
# on CS.LOCK; nothing in the emulator is clocked from it --
PLL_USB_BASE = 0x4002C000


class PllUsb(Pll):
    NAME, BASE = "PLL_USB", PLL_USB_BASE

    def write(self, offset, value):
        Peripheral.write(self, offset, value & (~PLL_CS_LOCK & 0xFFFFFFFF if offset == PLL_CS else 0xFFFFFFFF))


# -- CLOCKS (datasheet 2.15.7, base 0x40008000): each clock has CTRL, DIV, SELECTED at 12-byte stride --
CLOCKS_BASE = 0x40008000
CLK_NAMES = ("GPOUT0", "GPOUT1", "GPOUT2", "GPOUT3", "REF", "SYS", "PERI", "USB", "ADC", "RTC")
CLK_STRIDE = 12
CLK_REF, CLK_SYS, CLK_PERI = 4, 5, 6
CLK_CTRL, CLK_DIV, CLK_SELECTED = 0, 4, 8
CLK_REF_CTRL = CLK_REF * CLK_STRIDE + CLK_CTRL        # 0x30
CLK_REF_SELECTED = CLK_REF * CLK_STRIDE + CLK_SELECTED
CLK_SYS_CTRL = CLK_SYS * CLK_STRIDE + CLK_CTRL        # 0x3C
CLK_SYS_SELECTED = CLK_SYS * CLK_STRIDE + CLK_SELECTED
CLK_PERI_CTRL = CLK_PERI * CLK_STRIDE + CLK_CTRL      # 0x48
CLK_REF_SRC_ROSC, CLK_REF_SRC_AUX, CLK_REF_SRC_XOSC = 0, 1, 2
CLK_SYS_SRC_AUX = 1                                   # CLK_SYS_CTRL.SRC: 0 clk_ref, 1 clksrc_clk_sys_aux
CLK_SYS_AUXSRC_SHIFT, CLK_SYS_AUXSRC_PLL_SYS = 5, 0
CLK_CTRL_ENABLE = 1 << 11
CLK_DIV_INT_ONE = 1 << 8                              # DIV reset value: integer 1
CLK_SYS_RESUS_CTRL, CLK_SYS_RESUS_STATUS = 0x78, 0x7C
FC0_REGS = {0x80: "FC0_REF_KHZ", 0x84: "FC0_MIN_KHZ", 0x88: "FC0_MAX_KHZ", 0x8C: "FC0_DELAY",
            0x90: "FC0_INTERVAL", 0x94: "FC0_SRC", 0x98: "FC0_STATUS", 0x9C: "FC0_RESULT"}
WAKE_SLEEP_REGS = {0xA0: "WAKE_EN0", 0xA4: "WAKE_EN1", 0xA8: "SLEEP_EN0", 0xAC: "SLEEP_EN1",
                   0xB0: "ENABLED0", 0xB4: "ENABLED1", 0xB8: "INTR", 0xBC: "INTE", 0xC0: "INTF", 0xC4: "INTS"}


class Clocks(Peripheral):
    NAME, BASE = "CLOCKS", CLOCKS_BASE
    REGISTERS = {**{i * CLK_STRIDE + r: f"CLK_{n}_{rn}" for i, n in enumerate(CLK_NAMES)
                    for r, rn in ((CLK_CTRL, "CTRL"), (CLK_DIV, "DIV"), (CLK_SELECTED, "SELECTED"))},
                 CLK_SYS_RESUS_CTRL: "CLK_SYS_RESUS_CTRL", CLK_SYS_RESUS_STATUS: "CLK_SYS_RESUS_STATUS",
                 **FC0_REGS, **WAKE_SLEEP_REGS}
    RESET = {i * CLK_STRIDE + CLK_DIV: CLK_DIV_INT_ONE for i in range(len(CLK_NAMES))}

    def read(self, offset):
        if offset == CLK_REF_SELECTED:
            return 1 << (self.regs[CLK_REF_CTRL] & 3)
        if offset == CLK_SYS_SELECTED:
            return 1 << (self.regs[CLK_SYS_CTRL] & 1)
        if offset % CLK_STRIDE == CLK_SELECTED and offset < len(CLK_NAMES) * CLK_STRIDE:
            return 1                                  # glitchless muxes switch instantly
        return super().read(offset)

    def write(self, offset, value):
        old = self.regs[offset]
        super().write(offset, value)
        if offset in (CLK_REF_CTRL, CLK_SYS_CTRL, CLK_REF * CLK_STRIDE + CLK_DIV, CLK_SYS * CLK_STRIDE + CLK_DIV):
            commit_clock_change(self, offset, value, old)

    def ref_hz(self, xosc: Xosc) -> int:
        src = self.regs[CLK_REF_CTRL] & 3
        hz = XOSC_HZ if src == CLK_REF_SRC_XOSC and xosc.running else ROSC_HZ
        return hz // max(self.regs[CLK_REF * CLK_STRIDE + CLK_DIV] >> 8, 1)

    def sys_hz(self, xosc: Xosc, pll: PllSys) -> int:
        ctrl = self.regs[CLK_SYS_CTRL]
        if ctrl & 1 == CLK_SYS_SRC_AUX and (ctrl >> CLK_SYS_AUXSRC_SHIFT) & 7 == CLK_SYS_AUXSRC_PLL_SYS \
                and pll.output_hz():
            hz = pll.output_hz()
        else:
            hz = self.ref_hz(xosc)
        return hz // max(self.regs[CLK_SYS * CLK_STRIDE + CLK_DIV] >> 8, 1)

    def peri_enabled(self) -> bool:
        return bool(self.regs[CLK_PERI_CTRL] & CLK_CTRL_ENABLE)
