"""`--gpio-log FILE`: every change of a GPIO's output level, output enable (SIO GPIO_OUT / GPIO_OE and their
SET/CLR/XOR aliases) or function select (IO_BANK0 GPIOn_CTRL.FUNCSEL), with the chip time it happened at.

One CSV line per pin and change: time_ns,cycle,signal,pin,value (signal: out, oe or funcsel). Times come from
the emulated clock (cycles through the clock tree), never from wall time, so a log is repeatable. The hooks wrap
the two peripherals' `write` on one chip instance; nothing else is slowed down.
"""

from __future__ import annotations

from rp2040_sim.peripherals.gpio import GPIO_CTRL, GPIO_STRIDE, NUM_GPIOS
from rp2040_sim.peripherals.sio import SIO_GPIO_OE, SIO_GPIO_OUT

HEADER = "time_ns,cycle,signal,pin,value"
PS_PER_NS = 1000


class GpioLog:
    def __init__(self, sim):
        self.sim = sim
        self.lines: list[str] = [HEADER]
        sio, bank = sim.sio, sim.io_bank0
        sio_write, bank_write = sio.write, bank.write

        def sio_logged(offset, value):
            before = sio.regs[SIO_GPIO_OUT], sio.regs[SIO_GPIO_OE]
            sio_write(offset, value)
            for signal, reg, old in (("out", SIO_GPIO_OUT, before[0]), ("oe", SIO_GPIO_OE, before[1])):
                self._bits(signal, old, sio.regs[reg])

        def bank_logged(offset, value):
            pin, field = divmod(offset, GPIO_STRIDE)
            old = bank.funcsel(pin) if field == GPIO_CTRL and pin < NUM_GPIOS else None
            bank_write(offset, value)
            if old is not None and bank.funcsel(pin) != old:
                self._line("funcsel", pin, bank.funcsel(pin))

        sio.write, bank.write = sio_logged, bank_logged

    def _bits(self, signal: str, old: int, new: int):
        changed = old ^ new
        pin = 0
        while changed:
            if changed & 1:
                self._line(signal, pin, new >> pin & 1)
            changed >>= 1
            pin += 1

    def _line(self, signal: str, pin: int, value: int):
        self.lines.append(f"{self.sim.clock.now_ps() // PS_PER_NS},{self.sim.cycles()},{signal},{pin},{value}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
