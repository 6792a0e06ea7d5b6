"""RESETS (datasheet 2.14.3, base 0x4000C000): a peripheral comes out of reset when its bit is cleared."""

from __future__ import annotations

from rp2040_sim.peripherals.base import Peripheral

RESETS_BASE = 0x4000C000
RESETS_RESET, RESETS_WDSEL, RESETS_RESET_DONE = 0x0, 0x4, 0x8
RESETS_ALL = 0x01FFFFFF                 # 25 peripheral reset bits
# Bit numbers (datasheet 2.14.3 RESET register)
RESET_IO_BANK0, RESET_IO_QSPI, RESET_PADS_BANK0, RESET_PADS_QSPI = 5, 6, 8, 9
RESET_PLL_SYS, RESET_TIMER, RESET_UART0, RESET_UART1 = 12, 21, 22, 23
# State left by the bootrom before boot2 runs (pico-bootrom; reference sheet "Boot" step 5)
RESETS_AFTER_BOOTROM = RESETS_ALL & ~((1 << RESET_PADS_BANK0) | (1 << RESET_IO_QSPI) | (1 << RESET_PADS_QSPI)
                                      | (1 << RESET_TIMER))


class Resets(Peripheral):
    NAME, BASE = "RESETS", RESETS_BASE
    REGISTERS = {RESETS_RESET: "RESET", RESETS_WDSEL: "WDSEL", RESETS_RESET_DONE: "RESET_DONE"}
    RESET = {RESETS_RESET: RESETS_AFTER_BOOTROM}

    def read(self, offset):
        if offset == RESETS_RESET_DONE:
            return ~self.regs[RESETS_RESET] & RESETS_ALL      # reset completes instantly
        return super().read(offset)

    def write(self, offset, value):
        if offset == RESETS_RESET_DONE:
            return                                            # read-only
        super().write(offset, value & RESETS_ALL)

    def in_reset(self, bit: int) -> bool:
        return bool(self.regs[RESETS_RESET] >> bit & 1)
