"""USBCTRL (datasheet 4.1): not modelled. Its DPRAM (0x50100000, 4 kB) and registers (0x50110000, with atomic
aliases) are mapped so that firmware touching USB gets one clear warning instead of a fault per register: reads
give 0, writes are dropped. With --strict the first access stops the run, like any unimplemented register.
Exception: SIE_CTRL is stored (with its XOR/SET/CLR aliases) without a warning, because the pico-sdk's runtime init
of every program reads it and sets TRANSCEIVER_PD to power the PHY down; a program that does only that does not use
USB. Stdio over USB cannot work here."""

from __future__ import annotations

from rp2040_sim.peripherals.base import Peripheral

USBCTRL_DPRAM_BASE = 0x50100000
USBCTRL_REGS_BASE = 0x50110000
USBCTRL_SPAN = 0x14000                        # DPRAM, gap, registers and their three aliases
USB_SIE_CTRL = 0x4C                           # datasheet 4.1.4, reset value 0
ALIAS_XOR, ALIAS_SET, ALIAS_CLR = 0x1000, 0x2000, 0x3000
_REGS = USBCTRL_REGS_BASE - USBCTRL_DPRAM_BASE
USB_WARNING = ("USBCTRL: USB is not modelled (no host, no enumeration): reads return 0 and writes are ignored; "
               "use UART stdio to see output in the emulator")


class UsbCtrl(Peripheral):
    NAME, BASE, SIZE = "USBCTRL", USBCTRL_DPRAM_BASE, USBCTRL_SPAN
    ATOMIC_ALIASES = False

    def __init__(self, sim):
        super().__init__(sim)
        self.sie_ctrl = 0

    def _touch(self, offset: int, op: str):
        if self.sim.config.strict:
            self.sim.unimplemented(self, offset, op, self.BASE + offset)
        else:
            self.sim.warn(USB_WARNING)

    def name_of(self, offset: int) -> str:
        if offset < USBCTRL_REGS_BASE - USBCTRL_DPRAM_BASE:
            return f"USBCTRL_DPRAM+0x{offset:03x}"
        return f"USBCTRL_REGS+0x{offset - (USBCTRL_REGS_BASE - USBCTRL_DPRAM_BASE):04x}"

    def bus_read(self, offset: int, size: int) -> int:
        if offset >= _REGS and (offset - _REGS) & 0xFFF == USB_SIE_CTRL and size == 4:
            return self.sie_ctrl
        self._touch(offset, "read")
        return 0

    def bus_write(self, offset: int, size: int, value: int):
        if offset >= _REGS and (offset - _REGS) & 0xFFF == USB_SIE_CTRL and size == 4:
            alias = (offset - _REGS) & 0x3000
            self.sie_ctrl = {0: value, ALIAS_XOR: self.sie_ctrl ^ value, ALIAS_SET: self.sie_ctrl | value,
                             ALIAS_CLR: self.sie_ctrl & ~value}[alias] & 0xFFFFFFFF
            return
        self._touch(offset, "write")
