"""Cycles of the int8 kernels on the Cortex-M0+ build, counted from an instruction trace (phase-1 estimate).

`python benchmarks/compress_kernel_cycles.py [--layers 784x300,300x10] [--density 0.1]`

The kernels are cross-compiled exactly as tests/test_compress_kernels.py does, run in Unicorn on a Cortex-M0 core
model with a per-instruction hook, and every executed instruction is priced with the TRM table
(../shared/reference/rp2040.md: ALU/MULS 1, LDR/STR 2, LDM/STM/PUSH/POP 1+N, POP {..pc} 3+N, B<cond> 2 taken / 1 not,
B 2, BL 3, BX/BLX 2). Memory is zero-wait-state (weights in SRAM); the emulator's measurement in phase 2 replaces
this. Output is checked against the NumPy golden model before any figure is printed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_compress_kernels import ARM_FLAGS, ARM_GCC, FLASH, KERNELS, RET, SOURCES, golden, random_layer  # noqa: E402

BRANCH = re.compile(r"^b(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)(\.n|\.w)?$")


def build(tmp: Path):
    elf = tmp / "kernels.elf"
    subprocess.run([ARM_GCC, *ARM_FLAGS, f"-I{KERNELS}", "-nostdlib", f"-Wl,-Ttext=0x{FLASH:08x}",
                    "-Wl,-e,pz_q8_dense_m0", *map(str, SOURCES), "-lgcc", "-o", str(elf)], check=True)
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    insns = {}
    for line in dis.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+([0-9a-f]{4})(?: ([0-9a-f]{4}))?\s+(\S+)\s*(.*)$", line)
        if m:
            insns[int(m.group(1), 16)] = (m.group(4), m.group(5), 4 if m.group(3) else 2)
    return elf, insns


def cycles_of(mnemonic: str, operands: str, taken: bool) -> int:
    mn = mnemonic.split(".")[0]
    regs = operands[operands.find("{") + 1:operands.find("}")].split(",") if "{" in operands else []
    n = len([r for r in regs if r.strip() and r.strip() != "pc"])
    if mn in ("push", "stmia", "ldmia", "stm", "ldm"):
        return 1 + len(regs)
    if mn == "pop":
        return 3 + n if "pc" in operands else 1 + n
    if mn.startswith(("ldr", "str")):
        return 2
    if BRANCH.match(mnemonic):
        return 2 if taken else 1
    if mn == "b":
        return 2
    if mn == "bl":
        return 3
    if mn in ("bx", "blx"):
        return 2
    if mn in ("mov", "add") and operands.split(",")[0].strip() == "pc":
        return 2
    return 1


def trace(image_segments, symbols, insns, t, fn):
    from unicorn import UC_ARCH_ARM, UC_HOOK_CODE, UC_MODE_THUMB, Uc
    from unicorn.arm_const import (UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_SP,
                                   UC_CPU_ARM_CORTEX_M0)

    from compress import layout

    SRAM = 0x20000000
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
    uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M0)
    uc.mem_map(FLASH, 16 << 20)
    uc.mem_map(SRAM, 264 << 10)
    for addr, blob in image_segments:
        uc.mem_write(addr, blob)
    uc.mem_write(RET, b"\x00\xbf" * 8)
    heap = [SRAM + 0x100]

    def put(data: bytes) -> int:
        addr = heap[0]
        uc.mem_write(addr, data)
        heap[0] = (addr + len(data) + 3) & ~3
        return addr

    n_out, n_in = t["w"].shape
    if fn == "pz_q8_sparse":
        entries, row_len = layout.pack_sparse(t["w"])
        w_addr, rl_addr = put(entries.tobytes()), put(row_len.tobytes())
        stored = len(entries) // 2
    else:
        w_addr, rl_addr = put(layout.pack_dense(t["w"]).tobytes()), 0
        stored = n_in * n_out
    fb = layout.folded_bias(t["bias"], t["w"], t["zp_in"])
    b_addr, m_addr, s_addr = put(fb.tobytes()), put(t["mult"].tobytes()), put(t["shift"].tobytes())
    struct = np.array([n_in, n_out, w_addr, rl_addr, b_addr, m_addr, s_addr], np.uint32).tobytes()
    struct += np.array([t["zp_out"], t["act_min"], t["act_max"]], np.int8).tobytes() + b"\0"
    l_addr = put(struct)
    x_addr, y_addr = put(t["xu"][0].tobytes()), put(bytes(n_out))
    counts, taken, prev = Counter(), Counter(), [None]

    def hook(uc, addr, size, _):
        p = prev[0]
        if p is not None and addr != p[0] + p[1]:
            taken[p[0]] += 1
        counts[addr] += 1
        prev[0] = (addr, size)

    uc.hook_add(UC_HOOK_CODE, hook)
    for reg, val in ((UC_ARM_REG_R0, l_addr), (UC_ARM_REG_R1, x_addr), (UC_ARM_REG_R2, y_addr),
                     (UC_ARM_REG_SP, SRAM + (264 << 10)), (UC_ARM_REG_LR, RET | 1)):
        uc.reg_write(reg, val)
    uc.emu_start(symbols[fn] | 1, RET)
    y = np.frombuffer(bytes(uc.mem_read(y_addr, n_out)), np.int8)
    np.testing.assert_array_equal(y, golden({**t, "xu": t["xu"][:1]})[0])
    total = 0
    for addr, n in counts.items():
        if addr not in insns:
            continue  # the return pad
        mn, ops, _ = insns[addr]
        tk = taken[addr]
        total += (n - tk) * cycles_of(mn, ops, False) + tk * cycles_of(mn, ops, True)
    return total, sum(counts.values()), stored


def main(argv=None):
    import tempfile

    from elftools.elf.elffile import ELFFile

    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", default="784x300,300x100,100x10")
    ap.add_argument("--density", type=float, default=0.1, help="weight density of the sparse runs")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        elf, insns = build(Path(tmp))
        with open(elf, "rb") as f:
            e = ELFFile(f)
            segments = [(s["p_paddr"], s.data()) for s in e.iter_segments() if s["p_type"] == "PT_LOAD"]
            symbols = {s.name: s["st_value"] for s in e.get_section_by_name(".symtab").iter_symbols()}
    print("kernel          layer      density  cycles     instr      cycles/stored-weight")
    for spec in a.layers.split(","):
        n_in, n_out = map(int, spec.split("x"))
        for fn, density in (("pz_q8_dense_m0", 1.0), ("pz_q8_dense_ref", 1.0), ("pz_q8_sparse", a.density)):
            t = random_layer(np.random.default_rng(n_in + n_out), n_in, n_out, density)
            cyc, ins, stored = trace(segments, symbols, insns, t, fn)
            print(f"{fn:15s} {spec:10s} {density:7.2f}  {cyc:9d}  {ins:9d}  {cyc / stored:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
