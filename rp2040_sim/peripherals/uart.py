"""UART0/UART1: an ARM PL011 (datasheet 4.2.8). Transmitted bytes are captured (and echoed live if asked).

Transmission is instantaneous: the TX FIFO never fills, so `putc` never waits (baud-rate timing is not
modelled; docs/EMULATOR.md). This model is the authority; native/cycles.c (`uart_native`) answers the two
registers printf polls and stores to from what it publishes: UARTFR (republished whenever it changes) and UARTDR
stores while all they do is append the byte (UART and TX enabled, no live sink, TXRIS already set); those bytes
are collected natively and joined to `tx` when it is read.

Reception: bytes given with `feed` (the CLI's --uart-input FILE|-) wait in the RX
FIFO from the start of the run, as if they had arrived before the firmware looked; UARTDR pops one, UARTFR shows
RXFE/RXFF, UARTRIS RXRIS (level >= the IFLS trigger) and RTRIS (any byte waiting: there is no idle-line timing). The interrupts (RX levels as
above; TXRIS, set when a write drains, cleared by UARTICR; masked by UARTIMSC) drive UARTn_IRQ.
"""

from __future__ import annotations

import ctypes
import weakref
from collections import deque

from rp2040_sim import native
from rp2040_sim.peripherals.base import Peripheral

UART0_BASE, UART1_BASE = 0x40034000, 0x40038000
UARTDR, UARTRSR, UARTFR, UARTILPR, UARTIBRD, UARTFBRD, UARTLCR_H, UARTCR = (
    0x000, 0x004, 0x018, 0x020, 0x024, 0x028, 0x02C, 0x030)
UARTIFLS, UARTIMSC, UARTRIS, UARTMIS, UARTICR, UARTDMACR = 0x034, 0x038, 0x03C, 0x040, 0x044, 0x048
UARTPERIPHID = (0xFE0, 0xFE4, 0xFE8, 0xFEC)
UARTPCELLID = (0xFF0, 0xFF4, 0xFF8, 0xFFC)
PERIPHID_VALUES = (0x11, 0x10, 0x34, 0x00)        # PL011 r1p5 (datasheet 4.2.8)
PCELLID_VALUES = (0x0D, 0xF0, 0x05, 0xB1)
UARTFR_TXFE, UARTFR_RXFF, UARTFR_TXFF, UARTFR_RXFE, UARTFR_BUSY = 1 << 7, 1 << 6, 1 << 5, 1 << 4, 1 << 3
UARTCR_UARTEN, UARTCR_TXE = 1 << 0, 1 << 8
UARTCR_RESET = 0x300                               # TXE | RXE
UARTIFLS_RESET = 0x12
UART_FIFO_DEPTH = 32
UARTIFLS_RXIFLSEL_SHIFT = 3
RX_TRIGGER_LEVELS = (4, 8, 16, 24, 28)             # RXIFLSEL 0..4: 1/8 .. 7/8 full (datasheet 4.2.8 UARTIFLS)
UARTRIS_RXRIS, UARTRIS_RTRIS = 1 << 4, 1 << 6
UARTCR_RXE = 1 << 9
UART_TXIM = 1 << 5                                 # TX interrupt bit in RIS/MIS/IMSC/ICR (PL011 TRM 3.3.13)
UART0_IRQ = 20                                     # UART1_IRQ = 21 (datasheet 2.3.2)


class Uart(Peripheral):
    REGISTERS = {UARTDR: "UARTDR", UARTRSR: "UARTRSR", UARTFR: "UARTFR", UARTILPR: "UARTILPR",
                 UARTIBRD: "UARTIBRD", UARTFBRD: "UARTFBRD", UARTLCR_H: "UARTLCR_H", UARTCR: "UARTCR",
                 UARTIFLS: "UARTIFLS", UARTIMSC: "UARTIMSC", UARTRIS: "UARTRIS", UARTMIS: "UARTMIS",
                 UARTICR: "UARTICR", UARTDMACR: "UARTDMACR",
                 **{o: f"UARTPERIPHID{i}" for i, o in enumerate(UARTPERIPHID)},
                 **{o: f"UARTPCELLID{i}" for i, o in enumerate(UARTPCELLID)}}
    RESET = {UARTCR: UARTCR_RESET, UARTIFLS: UARTIFLS_RESET}

    def __init__(self, sim, index: int, sink=None):
        self.NAME = f"UART{index}"
        self.BASE = (UART0_BASE, UART1_BASE)[index]
        super().__init__(sim)
        lib = native.load()
        self._native = lib.sim_uart_new()
        if not self._native:
            raise MemoryError("sim_uart_new failed")
        weakref.finalize(self, lib.sim_uart_free, ctypes.cast(self._native, ctypes.c_void_p))
        self._fast = self._native.contents
        self._tx = bytearray()
        self.rx = deque()                          # bytes waiting to be read (fed before or during the run)
        self.index = index
        self.tx_ris = 0                            # TX interrupt status: set when a write drains (at once here)
        self.sink = sink                           # called with each transmitted byte (live output)

    def native_registers(self):
        return ctypes.cast(self._native, ctypes.c_void_p), "sim_uart_read", "sim_uart_write"

    @property
    def sink(self):
        return self._sink

    @sink.setter
    def sink(self, fn):
        self._sink = fn
        self._publish()

    @property
    def tx(self) -> bytearray:
        """Every byte transmitted so far (those stored natively joined on first)."""
        fast = self._fast
        if fast.len:
            self._tx += ctypes.string_at(fast.buf, fast.len)
            fast.len = 0
        return self._tx

    def _publish(self):
        """Tell cycles.c what UARTFR reads and whether a UARTDR store only appends its byte."""
        fast = self._fast
        fast.fr = self.read(UARTFR)
        cr = self.regs[UARTCR]
        fast.tx_direct = 1 if (cr & UARTCR_UARTEN and cr & UARTCR_TXE and self._sink is None and self.tx_ris) else 0

    def _raw_irqs(self) -> int:
        """UARTRIS: the RX levels (RXRIS at the IFLS trigger, RTRIS while any byte waits) and TXRIS."""
        level = (self.regs[UARTIFLS] >> UARTIFLS_RXIFLSEL_SHIFT) & 7
        trigger = RX_TRIGGER_LEVELS[min(level, len(RX_TRIGGER_LEVELS) - 1)]
        ris = UARTRIS_RXRIS if len(self.rx) >= trigger else 0
        return ris | (UARTRIS_RTRIS if self.rx else 0) | self.tx_ris

    def _update_irq(self):
        """UARTn_IRQ = MIS != 0 (RIS & IMSC)."""
        self.sim.set_irq(UART0_IRQ + self.index, 1 if self._raw_irqs() & self.regs[UARTIMSC] else 0)

    def feed(self, data: bytes):
        """Bytes arriving on RX; they are read in order through UARTDR."""
        self.rx.extend(data)
        self._update_irq()
        self._publish()

    def read(self, offset):
        if offset == UARTFR:                       # TX always drained
            return UARTFR_TXFE | (UARTFR_RXFE if not self.rx else 0) | \
                (UARTFR_RXFF if len(self.rx) >= UART_FIFO_DEPTH else 0)
        if offset == UARTDR:
            cr = self.regs[UARTCR]
            if self.rx and cr & UARTCR_UARTEN and cr & UARTCR_RXE:
                byte = self.rx.popleft()
                self._update_irq()
                self._publish()
                return byte
            return 0
        if offset == UARTRIS:
            return self._raw_irqs()
        if offset == UARTMIS:
            return self._raw_irqs() & self.regs[UARTIMSC]
        if offset in UARTPERIPHID:
            return PERIPHID_VALUES[UARTPERIPHID.index(offset)]
        if offset in UARTPCELLID:
            return PCELLID_VALUES[UARTPCELLID.index(offset)]
        return super().read(offset)

    def write(self, offset, value):
        if offset == UARTDR:
            cr = self.regs[UARTCR]
            if not (cr & UARTCR_UARTEN and cr & UARTCR_TXE):
                self.sim.warn(f"{self.NAME}: byte 0x{value & 0xFF:02x} written to UARTDR while the UART is "
                              f"disabled (UARTCR=0x{cr:x}); the chip would not send it")
                return
            byte = value & 0xFF
            self.tx.append(byte)
            if self.sink:
                self.sink(byte)
            # The PL011 raises TXRIS when its TX FIFO passes down through the trigger level: here every byte
            # leaves at once, so each write ends with TXRIS set (never before the first write).
            if not self.tx_ris:
                self.tx_ris = UART_TXIM
                self._update_irq()
                self._publish()
            return
        if offset == UARTICR:
            self.tx_ris &= ~value
            self._update_irq()
            self._publish()
            return
        super().write(offset, value)
        if offset == UARTIMSC:
            self._update_irq()
        if offset == UARTCR:
            self._publish()
