"""Tiny bootable images from Thumb assembly, for tests and benchmarks (needs arm-none-eabi-as/ld/objcopy).

`build_image(app_source, outdir)` assembles `app_source` after a vector table (initial SP = __stack_top, reset
= the `reset` label), links it at 0x10000100 behind a minimal boot2 carrying its CRC (flash offset 0), with
__stack_limit/__stack_top defined, and writes image.elf/.bin/.uf2 with firmware/uf2.py's writer.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from firmware.uf2 import boot2_with_crc, write_uf2

TOOLS = ("arm-none-eabi-as", "arm-none-eabi-ld", "arm-none-eabi-objcopy")
ASFLAGS = ["-mcpu=cortex-m0plus", "-mthumb"]
PRELUDE = """    .syntax unified
    .cpu cortex-m0plus
    .thumb
"""
# boot2 as the SDK's exits it when called from the bootrom: VTOR = 0x10000100, MSP and PC from that table.
BOOT2_SOURCE = PRELUDE + """
    ldr r0, =0xE000ED08        @ PPB VTOR
    ldr r1, =0x10000100
    str r1, [r0]
    ldmia r1!, {r0, r2}
    msr msp, r0
    bx r2
    .ltorg
"""
# An app's first lines that make UART0 print (r0 = UART0's base after them): RESETS' atomic clear alias (datasheet
# §2.1.2, RESETS_BASE 0x4000C000 + 0x3000) takes UART0 (RESET bit 22, §2.14.3) out of reset; UARTCR (offset 0x30,
# §4.2.8) = UARTEN | TXE | RXE.
UART0_ON = """
    ldr r1, =0x4000F000        @ RESETS, CLR alias: take UART0 out of reset
    ldr r2, =(1 << 22)
    str r2, [r1]
    ldr r0, =0x40034000        @ UART0
    ldr r2, =0x301             @ UARTEN | TXE | RXE
    str r2, [r0, #0x30]
"""
VECTORS = """
    .section .vectors, "a"
    .word __stack_top
    .word reset
    .text
"""
STACK_BYTES = 2048
LINKER_SCRIPT = f"""
ENTRY(reset)
MEMORY {{
  FLASH (rx) : ORIGIN = 0x10000000, LENGTH = 0x200000
  RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 0x42000
}}
SECTIONS {{
  .boot2 : {{ KEEP(*(.boot2)) }} > FLASH
  .text 0x10000100 : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); }} > FLASH
  .bss (NOLOAD) : {{ *(.bss*) *(COMMON) . = ALIGN(4); }} > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
  __stack_limit = __stack_top - {STACK_BYTES};
}}
"""


class ToolchainMissing(RuntimeError):
    pass


def require_tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise ToolchainMissing(f"{', '.join(missing)} not found: sudo apt-get install -y binutils-arm-none-eabi")


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr}")


def assemble(source: str, outdir: Path, name: str) -> Path:
    require_tools()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    src = outdir / f"{name}.S"
    src.write_text(source)
    obj = outdir / f"{name}.o"
    _run(["arm-none-eabi-as", *ASFLAGS, "-g", "-o", obj, src])
    return obj


def to_bin(elf_or_obj: Path, out: Path) -> bytes:
    _run(["arm-none-eabi-objcopy", "-O", "binary", elf_or_obj, out])
    return Path(out).read_bytes()


def code_bytes(source: str, outdir: Path, name: str = "snippet") -> bytes:
    """Raw .text of a position-independent snippet."""
    obj = assemble(PRELUDE + source, outdir, name)
    return to_bin(obj, Path(outdir) / f"{name}.bin")


def build_image(app_source: str, outdir, boot2: bytes | None = None) -> dict:
    """Bootable image; returns {'elf', 'bin', 'uf2'} paths. `boot2` overrides the 256-byte boot2 block."""
    outdir = Path(outdir)
    if boot2 is None:
        boot2 = boot2_with_crc(code_bytes(BOOT2_SOURCE, outdir, "boot2"))
    (outdir / "boot2_crc.bin").write_bytes(boot2)
    boot2_section = f'    .section .boot2, "ax"\n    .incbin "{outdir / "boot2_crc.bin"}"\n'
    obj = assemble(PRELUDE + boot2_section + VECTORS + app_source, outdir, "app")
    lds = outdir / "app.ld"
    lds.write_text(LINKER_SCRIPT)
    elf = outdir / "image.elf"
    _run(["arm-none-eabi-ld", "-T", lds, "-o", elf, obj])
    image = to_bin(elf, outdir / "app.bin")
    (outdir / "image.bin").write_bytes(image)
    (outdir / "image.uf2").write_bytes(write_uf2(image))
    return {"elf": elf, "bin": outdir / "image.bin", "uf2": outdir / "image.uf2"}


def run_snippet(source: str, workdir, at: int = 0x20000000, sim=None, regs=None):
    """Assemble `source` (ending in bkpt), place it at `at` (SRAM, or flash when at is in XIP) and run it.
    Returns (sim, stop)."""
    from rp2040_sim.core import Rp2040
    from rp2040_sim.memory import XIP_BASE, XIP_WINDOW_END
    code = code_bytes(source, workdir)
    sim = sim or Rp2040()
    if XIP_BASE <= at < XIP_WINDOW_END:
        sim.load_flash(code, (at - XIP_BASE) % (2 * 1024 * 1024))
    else:
        sim.write(at, code)
    sim.set_regs(sp=0x20042000, **(regs or {}))
    return sim, sim.run(at)
