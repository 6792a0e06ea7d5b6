"""Helpers for the firmware tests: synthetic model directories and a minimal Unicorn boot of a firmware image.

The Unicorn harness here is only a test fixture for the firmware stage (rp2040_sim is the real emulator): it maps
flash and SRAM, answers the clock/reset/PLL polls with "ready", captures UART0 bytes, counts TIMER reads, runs the
bootrom's hand-over (boot2 copied to 0x20041F00, LR = 0) and stops at the first BKPT.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from zoo import modeldir
from zoo.nn import Dense, ReLU, Sequential, Sigmoid, Tanh

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}
SRAM_BASE, SRAM_SIZE = 0x20000000, 0x42000
XIP_BASE, FLASH_SIZE = 0x10000000, 2 * 1024 * 1024
BOOT2_RUN_ADDR = 0x20041F00  # where the bootrom copies boot2 (datasheet §2.8.1.3)


def make_model(directory: Path, sizes=(784, 16, 10), activation="relu", dtype="float32", output="logits",
               dataset="mnist", scale=1.0 / 255.0, seed=0) -> Path:
    """A model directory with random weights; final activation 'sigmoid' for binary outputs."""
    rng = np.random.default_rng(seed)
    layers, params = [], []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(n_in, n_out))
        params.append({"w": rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_out)).astype(dtype),
                       "b": rng.normal(0, 0.1, n_out).astype(dtype)})
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
            params.append({})
    if output == "binary":
        layers.append(Sigmoid())
        params.append({})
    meta = {"model": directory.name, "dataset": dataset, "input": {"scale": scale, "features": sizes[0]},
            "dtype": dtype, "seed": seed, "picozoo_version": "0.1.0"}
    modeldir.save(directory, Sequential(layers, output), params, meta, metrics={"model": directory.name})
    return directory


def elf_symbols(elf_path: Path) -> dict[str, tuple[int, int]]:
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: (s["st_value"], s["st_size"]) for s in symtab.iter_symbols() if s.name}


class Board:
    """Flash + SRAM + just enough peripheral behaviour for the picozoo runtime to boot."""

    READY = {  # (peripheral base, offset) -> value read: the status bits the runtime polls
        (0x40024000, 0x04): 1 << 31,  # XOSC_STATUS.STABLE
        (0x40008000, 0x38): 1 << 2,  # CLK_REF_SELECTED = xosc
        (0x40008000, 0x44): 1 << 1,  # CLK_SYS_SELECTED = aux (pll_sys)
        (0x4000C000, 0x08): 0xFFFFFFFF,  # RESET_DONE
        (0x40028000, 0x00): 1 << 31,  # PLL_CS.LOCK
    }
    PERIPHERALS = (0x18000000, 0x40008000, 0x4000C000, 0x40014000, 0x40024000, 0x40028000, 0x40034000,
                   0x40054000, 0x40058000)

    def __init__(self, image: bytes):
        from unicorn import UC_ARCH_ARM, UC_HOOK_INTR, UC_MODE_THUMB, UC_PROT_EXEC, UC_PROT_READ, Uc
        from unicorn.arm_const import UC_CPU_ARM_CORTEX_M0

        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M0)
        self.uc.mem_map(XIP_BASE, FLASH_SIZE, UC_PROT_READ | UC_PROT_EXEC)
        self.uc.mem_write(XIP_BASE, image)
        self.uc.mem_map(SRAM_BASE, SRAM_SIZE)
        self.uart = bytearray()
        self.writes: dict[int, int] = {}
        self.timer = 0
        for base in self.PERIPHERALS:
            self.uc.mmio_map(base, 0x4000, self._read, base, self._write, base)
        self.uc.mmio_map(0xE000E000, 0x1000, self._read, 0xE000E000, self._write, 0xE000E000)
        self.stops: list[tuple[int, int]] = []
        self.uc.hook_add(UC_HOOK_INTR, self._intr)

    def _read(self, uc, offset, size, base):
        reg = offset & 0xFFF  # atomic aliases read as the register
        if (base, reg) in self.READY:
            return self.READY[(base, reg)]
        if (base, reg) == (0x40054000, 0x0C):  # TIMELR: one tick per read
            self.timer += 1
            return self.timer & 0xFFFFFFFF
        return self.writes.get(base + reg, 0)

    def _write(self, uc, offset, size, value, base):
        if (base, offset) == (0x40034000, 0x00):  # UART0 DR
            self.uart.append(value & 0xFF)
        self.writes[base + offset] = value

    def _intr(self, uc, intno, user_data):
        from unicorn.arm_const import UC_ARM_REG_PC

        pc = uc.reg_read(UC_ARM_REG_PC)
        self.stops.append((intno, pc))
        uc.emu_stop()

    def bkpt_imm(self) -> int:
        """Immediate of the BKPT the CPU stopped at (Thumb encoding 0xBExx)."""
        pc = self.stops[-1][1]
        for addr in (pc, pc - 2):
            half = struct.unpack("<H", self.uc.mem_read(addr, 2))[0]
            if half >> 8 == 0xBE:
                return half & 0xFF
        raise AssertionError(f"no BKPT at 0x{pc:08x}")

    def boot(self, max_instructions=500_000_000):
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_SP

        self.uc.mem_write(BOOT2_RUN_ADDR, bytes(self.uc.mem_read(XIP_BASE, 256)))
        self.uc.reg_write(UC_ARM_REG_LR, 0)
        self.uc.reg_write(UC_ARM_REG_SP, SRAM_BASE + SRAM_SIZE)
        self.uc.emu_start(BOOT2_RUN_ADDR | 1, 0xFFFFFFFF, count=max_instructions)
        return self.uart.decode()

    def call(self, address: int, lr: int, max_instructions=200_000_000) -> int:
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_R0

        self.uc.reg_write(UC_ARM_REG_LR, lr)
        self.uc.emu_start(address | 1, 0xFFFFFFFF, count=max_instructions)
        return self.uc.reg_read(UC_ARM_REG_R0)
