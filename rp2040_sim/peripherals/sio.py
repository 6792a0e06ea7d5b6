"""SIO (datasheet 2.3.1.7, base 0xD0000000): CPUID, GPIO registers, the hardware divider, the inter-core FIFOs
and the spinlocks.

Each core sees its own SIO (CPUID, its FIFO ends, its divider); the FIFOs, spinlocks and GPIO are shared
(`SioShared`). FIFOs (datasheet 2.3.1.5): two of 8 words, core 0 -> core 1 and back. FIFO_ST: VLD (own RX not
empty), RDY (own TX not full), WOF (a write to a full TX was dropped), ROE (a read of an empty RX; it returns 0,
CHOICE: the value is not documented); WOF/ROE are cleared by writing 1. SIO_IRQ_PROCn (IRQ 15 + n) on core n =
VLD | WOF | ROE. Spinlocks (2.3.1.3): reading SPINLOCKn claims it (returns 1 << n) or returns 0 if already
claimed; any write releases it; SPINLOCK_ST is the bitmap of claimed locks.

SIO is on the core's single-cycle IOPORT: loads and stores take 1 cycle, not 2 (SIO_EXTRA = -1). It has no
atomic aliases; GPIO_OUT/OE have their own SET/CLR/XOR registers. The divider computes a result immediately but
only reports CSR.READY 8 cycles after the last operand write (datasheet 2.3.1.5); reading QUOTIENT clears DIRTY.

CPUID, the divider and the spinlocks are modelled in native/cycles.c (`sio_native`, one per core, the spinlock
word shared): pico-sdk code touches them thousands of times (printf divides through the divider), and there each
access is answered without a Python call. Accesses made from Python (tests) reach the same registers through
`sim_sio_read`/`sim_sio_write`.
"""

from __future__ import annotations

import ctypes
import weakref
from collections import deque

from rp2040_sim import native
from rp2040_sim.peripherals import interp
from rp2040_sim.peripherals.base import MASK32, SIO_EXTRA, Peripheral

SIO_BASE = 0xD0000000
SIO_SIZE = 0x1000
SIO_CPUID, SIO_GPIO_IN, SIO_GPIO_HI_IN = 0x000, 0x004, 0x008
SIO_GPIO_OUT, SIO_GPIO_OUT_SET, SIO_GPIO_OUT_CLR, SIO_GPIO_OUT_XOR = 0x010, 0x014, 0x018, 0x01C
SIO_GPIO_OE, SIO_GPIO_OE_SET, SIO_GPIO_OE_CLR, SIO_GPIO_OE_XOR = 0x020, 0x024, 0x028, 0x02C
SIO_FIFO_ST, SIO_FIFO_WR, SIO_FIFO_RD = 0x050, 0x054, 0x058
SIO_DIV_UDIVIDEND, SIO_DIV_UDIVISOR, SIO_DIV_SDIVIDEND, SIO_DIV_SDIVISOR = 0x060, 0x064, 0x068, 0x06C
SIO_DIV_QUOTIENT, SIO_DIV_REMAINDER, SIO_DIV_CSR = 0x070, 0x074, 0x078
SIO_SPINLOCK_ST, SIO_SPINLOCK0 = 0x05C, 0x100
SIO_INTERP0, SIO_INTERP_END = 0x080, 0x100      # INTERP0 at 0x080, INTERP1 at 0x0C0 (peripherals/interp.py)
DIV_CSR_READY, DIV_CSR_DIRTY = 1 << 0, 1 << 1
DIV_LATENCY_CYCLES = 8
FIFO_ST_VLD, FIFO_ST_RDY, FIFO_ST_WOF, FIFO_ST_ROE = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FIFO_DEPTH = 8
NUM_SPINLOCKS = 32
SIO_IRQ_PROC0 = 15                   # SIO_IRQ_PROCn = 15 + n (datasheet 2.3.2)
NUM_GPIOS_MASK = (1 << 30) - 1
GPIO_SET_CLR_XOR = {SIO_GPIO_OUT_SET: (SIO_GPIO_OUT, "set"), SIO_GPIO_OUT_CLR: (SIO_GPIO_OUT, "clr"),
                    SIO_GPIO_OUT_XOR: (SIO_GPIO_OUT, "xor"), SIO_GPIO_OE_SET: (SIO_GPIO_OE, "set"),
                    SIO_GPIO_OE_CLR: (SIO_GPIO_OE, "clr"), SIO_GPIO_OE_XOR: (SIO_GPIO_OE, "xor")}


class SioShared:
    """The SIO state both cores see: the two FIFOs (fifo[n] is written by core n, read by the other core) and
    the spinlocks (a word cycles.c reads and writes)."""

    def __init__(self):
        self.fifo = (deque(), deque())
        self.spinlocks = ctypes.c_uint32(0)
        self.readers = [None, None]          # callable() run when core n's RX FIFO gets a word (core 1's ROM model)


class Sio(Peripheral):
    NAME, BASE, SIZE = "SIO", SIO_BASE, SIO_SIZE
    ATOMIC_ALIASES = False
    READ_EXTRA = WRITE_EXTRA = SIO_EXTRA
    REGISTERS = {SIO_CPUID: "CPUID", SIO_GPIO_IN: "GPIO_IN", SIO_GPIO_HI_IN: "GPIO_HI_IN",
                 SIO_GPIO_OUT: "GPIO_OUT", SIO_GPIO_OUT_SET: "GPIO_OUT_SET", SIO_GPIO_OUT_CLR: "GPIO_OUT_CLR",
                 SIO_GPIO_OUT_XOR: "GPIO_OUT_XOR", SIO_GPIO_OE: "GPIO_OE", SIO_GPIO_OE_SET: "GPIO_OE_SET",
                 SIO_GPIO_OE_CLR: "GPIO_OE_CLR", SIO_GPIO_OE_XOR: "GPIO_OE_XOR", SIO_FIFO_ST: "FIFO_ST",
                 SIO_DIV_UDIVIDEND: "DIV_UDIVIDEND", SIO_DIV_UDIVISOR: "DIV_UDIVISOR",
                 SIO_DIV_SDIVIDEND: "DIV_SDIVIDEND", SIO_DIV_SDIVISOR: "DIV_SDIVISOR",
                 SIO_DIV_QUOTIENT: "DIV_QUOTIENT", SIO_DIV_REMAINDER: "DIV_REMAINDER", SIO_DIV_CSR: "DIV_CSR",
                 SIO_FIFO_WR: "FIFO_WR", SIO_FIFO_RD: "FIFO_RD", SIO_SPINLOCK_ST: "SPINLOCK_ST",
                 **{SIO_SPINLOCK0 + 4 * i: f"SPINLOCK{i}" for i in range(NUM_SPINLOCKS)},
                 **{SIO_INTERP0 + n * interp.INTERP_SPAN + off: f"INTERP{n}_{name}" for n in (0, 1)
                    for off, name in interp.REGISTER_NAMES.items()}}

    def __init__(self, sim, core: int = 0, shared: SioShared | None = None):
        super().__init__(sim)
        self.core = core
        self.shared = shared or SioShared()
        self.fifo_errors = 0             # this core's sticky WOF | ROE
        self.interp = (interp.Interpolator(0), interp.Interpolator(1))
        # CPUID, the divider and the spinlocks live in cycles.c (sio_native), answered there without Python.
        lib = native.load()
        self._lib = lib
        self._native = lib.sim_sio_new(sim._sp, ctypes.addressof(self.shared.spinlocks), core)
        if not self._native:
            raise MemoryError("sim_sio_new failed")
        weakref.finalize(self, lib.sim_sio_free, self._native)
        self._value = ctypes.c_uint64()
        self.native_offsets = frozenset(off for off in self.REGISTERS if lib.sim_sio_owns(off))

    def native_registers(self):
        return self._native, "sim_sio_read", "sim_sio_write"

    def set_second_clock(self, state_ptr):
        """Core 1 runs: the divider's chip time is the later of the two cores' counts (as sim.cycles())."""
        self._lib.sim_sio_set_time_b(self._native, state_ptr)

    def read(self, offset):
        if offset in self.native_offsets:
            self._lib.sim_sio_read(self._native, offset, 4, ctypes.byref(self._value))
            return self._value.value
        if SIO_INTERP0 <= offset < SIO_INTERP_END:
            return self.interp[(offset - SIO_INTERP0) // interp.INTERP_SPAN].read(offset % interp.INTERP_SPAN)
        if offset in (SIO_GPIO_IN, SIO_GPIO_HI_IN):
            return 0                      # no external pin drivers
        if offset == SIO_FIFO_ST:
            return self.fifo_status()
        if offset == SIO_FIFO_RD:
            rx = self.shared.fifo[1 - self.core]
            if not rx:
                self.fifo_errors |= FIFO_ST_ROE
                self.update_irq()
                return 0
            value = rx.popleft()
            self.update_irq()
            self.other().update_irq()     # the other core's TX has room again (RDY is polled, no IRQ: kept simple)
            return value
        return super().read(offset)

    # -- FIFOs -------------------------------------------------------------------------------------------------
    def other(self) -> "Sio":
        """The other core's SIO (a stand-in with no NVIC when core 1 is not emulated)."""
        return self.sim.sio_of(1 - self.core)

    def fifo_status(self) -> int:
        rx, tx = self.shared.fifo[1 - self.core], self.shared.fifo[self.core]
        return ((FIFO_ST_VLD if rx else 0) | (FIFO_ST_RDY if len(tx) < FIFO_DEPTH else 0) | self.fifo_errors)

    def update_irq(self):
        """SIO_IRQ_PROCn of this core = VLD | WOF | ROE."""
        level = 1 if self.fifo_status() & (FIFO_ST_VLD | FIFO_ST_WOF | FIFO_ST_ROE) else 0
        self.sim.set_irq_of(self.core, SIO_IRQ_PROC0 + self.core, level)

    def fifo_write(self, value: int):
        tx = self.shared.fifo[self.core]
        if len(tx) >= FIFO_DEPTH:
            self.fifo_errors |= FIFO_ST_WOF
            self.update_irq()
            return
        tx.append(value & MASK32)
        self.other().update_irq()
        reader = self.shared.readers[1 - self.core]
        if reader:
            reader()

    def write(self, offset, value):
        if offset == SIO_FIFO_WR:
            self.fifo_write(value)
            return
        if offset == SIO_FIFO_ST:         # WOF and ROE are write-1-to-clear
            self.fifo_errors &= ~value & (FIFO_ST_WOF | FIFO_ST_ROE)
            self.update_irq()
            return
        if offset in self.native_offsets:
            self._lib.sim_sio_write(self._native, offset, 4, value)
            return
        if SIO_INTERP0 <= offset < SIO_INTERP_END:
            return self.interp[(offset - SIO_INTERP0) // interp.INTERP_SPAN].write(offset % interp.INTERP_SPAN, value)
        if offset in GPIO_SET_CLR_XOR:
            reg, op = GPIO_SET_CLR_XOR[offset]
            old = self.regs[reg]
            self.regs[reg] = {"set": old | value, "clr": old & ~value, "xor": old ^ value}[op] & NUM_GPIOS_MASK
            return
        if offset in (SIO_GPIO_OUT, SIO_GPIO_OE):
            self.regs[offset] = value & NUM_GPIOS_MASK
            return
        if offset in (SIO_GPIO_IN, SIO_GPIO_HI_IN, SIO_FIFO_RD):
            return                        # read-only
        super().write(offset, value)
