"""A program, written here in C and assembly and built with our toolchain (arm-none-eabi-gcc), that calls ROM
routines the way firmware does (tests/test_sim_rom*.py, benchmarks/rom_cycles.py): it finds them through the ROM
header (the lookup routine at 0x18 and the tables at 0x14/0x16), then calls one routine once per row of a register
table that the caller fills (r0-r3 in; r0-r3 and the APSR flags out). The program runs from SRAM and ends with
bkpt #0."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rp2040_sim.core import Rp2040, SimConfig


def elf_symbols(elf_path: Path) -> dict[str, int]:
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}

CPU = ["-mcpu=cortex-m0plus", "-mthumb"]
MAX_CALLS = 1024
HARNESS_C = f"""
#include <stdint.h>
#define ROM_HWORD(a) (*(const uint16_t *)(uintptr_t)(a))
typedef void *(*lookup_fn)(const uint16_t *table, uint32_t code);
void call_rom(uint32_t fn, uint32_t *regs);

/* filled by the test: table = 0 -> code names a function ('MC'), else a data code ('SF') and offset its entry */
struct job {{ uint32_t code, table, offset, calls, fn; }};
volatile struct job job;
uint32_t regs[{MAX_CALLS}][5];

int main(void) {{
    lookup_fn lookup = (lookup_fn)(uintptr_t)ROM_HWORD(0x18);
    uint32_t fn;
    if (job.table)
        fn = ((const uint32_t *)lookup((const uint16_t *)(uintptr_t)ROM_HWORD(0x16), job.table))[job.offset / 4];
    else
        fn = (uint32_t)lookup((const uint16_t *)(uintptr_t)ROM_HWORD(0x14), job.code);
    job.fn = fn;
    if (!fn)
        return 1;
    for (uint32_t i = 0; i < job.calls; i++)
        call_rom(fn, regs[i]);
    return 0;
}}
"""
HARNESS_S = """
    .syntax unified
    .cpu cortex-m0plus
    .thumb
    .section .text.start
    .global _start
    .thumb_func
_start:
    bl main
    bkpt #0
    .text
    .global call_rom
    .thumb_func
call_rom:                       @ (fn, regs): r0-r3 from regs[0..3], results back, APSR to regs[4]
    push {r4, r5, lr}
    mov r4, r0
    mov r5, r1
    ldr r0, [r5]
    ldr r1, [r5, #4]
    ldr r2, [r5, #8]
    ldr r3, [r5, #12]
    blx r4
    str r0, [r5]
    str r1, [r5, #4]
    str r2, [r5, #8]
    str r3, [r5, #12]
    mrs r0, apsr
    str r0, [r5, #16]
    pop {r4, r5, pc}
"""
LINKER = """
ENTRY(_start)
SECTIONS {
  .all 0x20000000 : { KEEP(*(.text.start)) *(.text*) *(.rodata*) *(.data*) *(.bss*) *(COMMON) }
}
"""


def build(outdir: Path, c_source: str = HARNESS_C, name: str = "harness") -> tuple[bytes, dict]:
    """Compile a C program (its main() runs from SRAM at 0x20000000 and ends in bkpt #0); returns the image and
    its symbols. Other tests use it for small device programs."""
    outdir = Path(outdir)
    (outdir / f"{name}.c").write_text(c_source)
    (outdir / "start.S").write_text(HARNESS_S)
    (outdir / "harness.ld").write_text(LINKER)
    elf = outdir / f"{name}.elf"
    for cmd in (["arm-none-eabi-gcc", *CPU, "-O1", "-ffreestanding", "-nostdlib", "-T", outdir / "harness.ld",
                 "-o", elf, outdir / f"{name}.c", outdir / "start.S", "-lgcc"],
                ["arm-none-eabi-objcopy", "-O", "binary", elf, outdir / f"{name}.bin"]):
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr}")
    return (outdir / f"{name}.bin").read_bytes(), elf_symbols(elf)


def run_program(program: bytes, sym: dict, sim=None):
    """Load a program built by `build` into SRAM and run it from _start; returns (sim, stop)."""
    sim = sim or Rp2040(SimConfig(warn_sink=lambda m: None))
    sim.write(0x20000000, program)
    sim.set_regs(sp=0x20041000)
    return sim, sim.run(sym["_start"])


def code(name: str) -> int:
    """'MC' -> 0x434D (first character in the low byte, datasheet 2.8.3)."""
    return ord(name[0]) | ord(name[1]) << 8


class RomCaller:
    """Runs the harness on a fresh chip for each batch of calls."""

    def __init__(self, outdir: Path, bootrom: bytes | None = None):
        self.program, self.sym = build(outdir)
        self.bootrom = bootrom                 # an official image to call instead of our ROM

    def call(self, rows, func=None, table=None, offset=0, sim=None):
        """rows: up to MAX_CALLS tuples of r0..r3 (missing ones 0); returns [(r0, r1, r2, r3, apsr)], the stop
        and the routine's address."""
        if len(rows) > MAX_CALLS:
            raise ValueError(f"{len(rows)} calls in one batch; the harness holds {MAX_CALLS}")
        if sim is None:
            sim = Rp2040(SimConfig(warn_sink=lambda m: None))
            if self.bootrom is not None:
                sim.load_rom(self.bootrom)
        sim.write(0x20000000, self.program)
        job = [code(func) if func else 0, code(table) if table else 0, offset, len(rows), 0]
        sim.write(self.sym["job"], b"".join(v.to_bytes(4, "little") for v in job))
        words = b"".join(b"".join((list(r) + [0] * 5)[i].to_bytes(4, "little") for i in range(5)) for r in rows)
        sim.write(self.sym["regs"], words)
        sim.set_regs(sp=0x20041000)
        stop = sim.run(self.sym["_start"])
        raw = sim.read(self.sym["regs"], 20 * len(rows))
        out = [tuple(int.from_bytes(raw[20 * i + 4 * j:20 * i + 4 * j + 4], "little") for j in range(5))
               for i in range(len(rows))]
        return out, stop, sim.read_u32(self.sym["job"] + 16)
