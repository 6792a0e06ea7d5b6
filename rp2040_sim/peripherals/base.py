"""What every peripheral shares: register storage, the atomic SET/CLR/XOR aliases, bus timing and loud warnings.

Modelled on rp2040js's BasePeripheral: a peripheral class lists the registers it implements (offset -> name);
`read`/`write` get the register offset within the 4 kB block and the full 32-bit value. Accesses through the
atomic aliases (datasheet 2.1.2: +0x1000 XOR, +0x2000 SET, +0x3000 CLR) are turned into plain writes here, once.
Any other offset warns with the peripheral's name and the offset, or stops the emulation in strict mode.
"""

from __future__ import annotations

# Datasheet 2.1.2 "Atomic Register Access": alias offsets within each peripheral's 16 kB window.
ALIAS_NONE, ALIAS_XOR, ALIAS_SET, ALIAS_CLR = 0, 1, 2, 3
ALIAS_SHIFT = 12
REG_BLOCK_MASK = 0xFFF

# Bus timing, added on top of the 2-cycle LDR/STR of the TRM table (open choice, see docs/EMULATOR.md):
# APB sits behind the AHB-APB bridge: we charge loads 3 and stores 4 cycles (datasheet reading; rp2040js uses 4/5).
APB_READ_EXTRA = 1
APB_WRITE_EXTRA = 2
SIO_EXTRA = -1      # datasheet 2.3.1: SIO is single-cycle, so LDR/STR to it take 1 cycle instead of 2
NO_EXTRA = 0

MASK32 = 0xFFFFFFFF


class Peripheral:
    NAME = "?"
    BASE = 0
    SIZE = 0x4000            # register block plus its three atomic aliases
    ATOMIC_ALIASES = True
    READ_EXTRA = APB_READ_EXTRA
    WRITE_EXTRA = APB_WRITE_EXTRA
    REGISTERS: dict[int, str] = {}   # implemented registers (offset -> datasheet name)
    RESET: dict[int, int] = {}       # reset values of stored registers

    def __init__(self, sim):
        self.sim = sim
        self.regs = {off: self.RESET.get(off, 0) for off in self.REGISTERS}

    def native_registers(self):
        """(device pointer, read function name, write function name) of the registers cycles.c answers for this
        peripheral before its Python callback (the hot ones of pico-sdk programs), or None: all go to Python."""
        return None

    # -- storage; subclasses override read/write for registers with behaviour --------------------------------
    def read(self, offset: int) -> int:
        return self.regs[offset]

    def write(self, offset: int, value: int):
        self.regs[offset] = value

    def impossible(self, offset: int, value: int, why: str):
        """A write the chip could not honour and the emulator cannot model (e.g. a 0 Hz clk_sys): stop the run with
        a fault naming the register instead of carrying on into a Python error (issue 10). The write is dropped."""
        from rp2040_sim.core import Stop          # the Stop record of a run; imported late (core imports us)
        sim = self.sim
        what = f"{self.name_of(offset)} = 0x{value & MASK32:08x}: {why}"
        if getattr(sim, "_pending", None) is None:
            sim._pending = Stop("impossible configuration", sim.pc(), self.BASE + offset, what)
        sim.uc.emu_stop()
        sim.warn(what)

    def peek(self, offset: int) -> int:
        """The value an atomic alias combines with (no read side effects)."""
        return self.regs.get(offset, 0)

    # -- bus side, called from the Unicorn MMIO callbacks ------------------------------------------------------
    def name_of(self, offset: int) -> str:
        return f"{self.NAME}.{self.REGISTERS[offset]}" if offset in self.REGISTERS else f"{self.NAME}+0x{offset:03x}"

    # The bus cycles of an emulated access (READ_EXTRA/WRITE_EXTRA) are charged by its native port before these
    # run (core.Rp2040._map_port); a test calling them directly charges nothing.
    def bus_read(self, offset: int, size: int) -> int:
        reg = offset & (REG_BLOCK_MASK if self.ATOMIC_ALIASES else ~0) & ~3     # _split, inlined: hot path
        if reg not in self.REGISTERS:
            self.sim.unimplemented(self, reg, "read", self.BASE + offset)
            return 0
        return ((self.read(reg) & MASK32) >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def bus_write(self, offset: int, size: int, value: int):
        reg, shift = self._split(offset)
        alias = (offset >> ALIAS_SHIFT) & 3 if self.ATOMIC_ALIASES else ALIAS_NONE
        if reg not in self.REGISTERS:
            self.sim.unimplemented(self, reg, "write", self.BASE + offset)
            return
        # Datasheet 2.1.4: narrow writes to APB/AHB registers are replicated across the 32-bit bus.
        if size == 1:
            value = (value & 0xFF) * 0x01010101
        elif size == 2:
            value = (value & 0xFFFF) * 0x00010001
        value &= MASK32
        if alias == ALIAS_XOR:
            value = self.peek(reg) ^ value
        elif alias == ALIAS_SET:
            value = self.peek(reg) | value
        elif alias == ALIAS_CLR:
            value = self.peek(reg) & ~value & MASK32
        self.write(reg, value)

    def _split(self, offset: int) -> tuple[int, int]:
        reg = offset & (REG_BLOCK_MASK if self.ATOMIC_ALIASES else ~0) & ~3
        return reg, 8 * (offset & 3)
