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


# -- QSPI pins (datasheet 2.19.6.2 IO_QSPI, 2.19.6.4 PADS_QSPI): pico-sdk's boot2 sets their pad drive --
IO_QSPI_BASE = 0x40018000
QSPI_PINS = ("SCLK", "SS", "SD0", "SD1", "SD2", "SD3")
PADS_QSPI_BASE = 0x40020000
PADS_QSPI_PINS = ("SCLK", "SD0", "SD1", "SD2", "SD3", "SS")


QSPI_SS_CTRL = QSPI_PINS.index("SS") * GPIO_STRIDE + GPIO_CTRL
CTRL_OUTOVER_SHIFT = 8                  # OUTOVER [9:8]: 0 normal, 1 inverted, 2 drive low, 3 drive high


class IoQspi(Peripheral):
    """GPIO_QSPI_SS_CTRL's plain word accesses are answered in native/cycles.c while the SSI's status poll runs
    there (xip.Ssi._publish); every other access goes through the SSI's hand-over first."""
    NAME, BASE = "IO_QSPI", IO_QSPI_BASE
    REGISTERS = {**{n * GPIO_STRIDE + GPIO_STATUS: f"GPIO_QSPI_{p}_STATUS" for n, p in enumerate(QSPI_PINS)},
                 **{n * GPIO_STRIDE + GPIO_CTRL: f"GPIO_QSPI_{p}_CTRL" for n, p in enumerate(QSPI_PINS)}}

    def __init__(self, sim):
        super().__init__(sim)
        sim.ssi.io_qspi = self

    def native_registers(self):
        return self.sim.ssi._native, "sim_qspi_ss_read", "sim_qspi_ss_write"

    def bus_read(self, offset, size):
        ssi = self.sim.ssi
        ssi._take_native()
        try:
            return super().bus_read(offset, size)
        finally:
            ssi._publish()

    def bus_write(self, offset, size, value):
        ssi = self.sim.ssi
        ssi._take_native()
        try:
            super().bus_write(offset, size, value)
        finally:
            ssi._publish()

    def write(self, offset, value):
        super().write(offset, value)
        if offset == QSPI_SS_CTRL:      # the flash chip select, forced by the ROM's flash functions
            self.sim.ssi.set_cs_override((value >> CTRL_OUTOVER_SHIFT) & 3)


class PadsQspi(Peripheral):
    """Stored as written; reset values are not modelled (read 0 until written)."""
    NAME, BASE = "PADS_QSPI", PADS_QSPI_BASE
    REGISTERS = {PADS_VOLTAGE_SELECT: "VOLTAGE_SELECT",
                 **{4 + 4 * n: f"GPIO_QSPI_{p}" for n, p in enumerate(PADS_QSPI_PINS)}}
