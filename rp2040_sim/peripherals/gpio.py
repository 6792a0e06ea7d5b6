"""IO_BANK0 and PADS_BANK0 (datasheet 2.19.6): pin function select and pad control, stored as written."""

from __future__ import annotations

from rp2040_sim.peripherals.base import Peripheral

NUM_GPIOS = 30
IO_BANK0_BASE = 0x40014000
GPIO_STATUS, GPIO_CTRL, GPIO_STRIDE = 0x0, 0x4, 8
GPIO_CTRL_FUNCSEL_NULL = 0x1F           # reset value of FUNCSEL
GPIO_FUNC_UART = 2
PADS_BANK0_BASE = 0x4001C000
PADS_VOLTAGE_SELECT = 0x00
PADS_GPIO0 = 0x04
PADS_SWCLK, PADS_SWD = 0x7C, 0x80
PADS_GPIO_RESET = 0x56                  # datasheet 2.19.6.3: IE, DRIVE 4 mA, PDE, SCHMITT


class IoBank0(Peripheral):
    NAME, BASE = "IO_BANK0", IO_BANK0_BASE
    REGISTERS = {**{n * GPIO_STRIDE + GPIO_STATUS: f"GPIO{n}_STATUS" for n in range(NUM_GPIOS)},
                 **{n * GPIO_STRIDE + GPIO_CTRL: f"GPIO{n}_CTRL" for n in range(NUM_GPIOS)}}
    RESET = {n * GPIO_STRIDE + GPIO_CTRL: GPIO_CTRL_FUNCSEL_NULL for n in range(NUM_GPIOS)}

    def funcsel(self, pin: int) -> int:
        return self.regs[pin * GPIO_STRIDE + GPIO_CTRL] & 0x1F


class PadsBank0(Peripheral):
    NAME, BASE = "PADS_BANK0", PADS_BANK0_BASE
    REGISTERS = {PADS_VOLTAGE_SELECT: "VOLTAGE_SELECT",
                 **{PADS_GPIO0 + 4 * n: f"GPIO{n}" for n in range(NUM_GPIOS)},
                 PADS_SWCLK: "SWCLK", PADS_SWD: "SWD"}
    RESET = {PADS_GPIO0 + 4 * n: PADS_GPIO_RESET for n in range(NUM_GPIOS)}
