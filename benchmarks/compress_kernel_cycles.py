"""Cycles of the int8 kernels on the Cortex-M0+ build, counted from an instruction trace (phase-1 estimate).

`python benchmarks/compress_kernel_cycles.py [--layers 784x300,300x10] [--density 0.1]`

The kernels are cross-compiled and called by rp2040_sim/kernel_harness.py (as tests/test_compress_kernels.py does)
with a per-instruction hook, and every executed instruction is priced with the TRM table
(../shared/reference/rp2040.md: ALU/MULS 1, LDR/STR 2, LDM/STM/PUSH/POP 1+N, POP {..pc} 3+N, B<cond> 2 taken / 1 not,
B 2, BL 3, BX/BLX 2). Memory is zero-wait-state (weights in SRAM); the emulator's measurement in phase 2 replaces
this. The last column is rp2040_sim's own count of the same call: code in flash behind a cold XIP cache (56-cycle
line fills, SimConfig's default) plus the final `bkpt`. Output is checked against the NumPy golden model before any
figure is printed. The shared-weight kernel runs at the sparse density (at most 7 distinct weights, one multiplier).
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

from rp2040_sim.kernel_harness import KernelImage, golden, random_layer, shared_layer  # noqa: E402

BRANCH = re.compile(r"^b(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)(\.n|\.w)?$")


def instructions(elf: Path) -> dict:
    """address -> (mnemonic, operands, size) of every instruction in the kernel build, from objdump."""
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    insns = {}
    for line in dis.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+([0-9a-f]{4})(?: ([0-9a-f]{4}))?\s+(\S+)\s*(.*)$", line)
        if m:
            insns[int(m.group(1), 16)] = (m.group(4), m.group(5), 4 if m.group(3) else 2)
    return insns


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


def trace(image: KernelImage, insns, t, fn):
    """One call on the first input row: (TRM-priced cycles, instructions, stored entries, rp2040_sim cycles)."""
    counts, taken, prev = Counter(), Counter(), [None]

    def hook(addr, size):
        p = prev[0]
        if p is not None and addr != p[0] + p[1]:
            taken[p[0]] += 1
        counts[addr] += 1
        prev[0] = (addr, size)

    one = {**t, "xu": t["xu"][:1]}
    run = image.call(one, fn, hook=hook)
    np.testing.assert_array_equal(run.y, golden(one))
    total = 0
    for addr, n in counts.items():
        mn, ops, _ = insns[addr]
        tk = taken[addr]
        total += (n - tk) * cycles_of(mn, ops, False) + tk * cycles_of(mn, ops, True)
    return total, sum(counts.values()), run.entries, run.cycles[0]


def main(argv=None):
    import tempfile

    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", default="784x300,300x100,100x10")
    ap.add_argument("--density", type=float, default=0.1, help="weight density of the sparse and shared runs")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        image = KernelImage.build(tmp)
        insns = instructions(image.path)
    print("kernel          layer      density  cycles     instr      cycles/stored-weight  sim-cycles")
    for spec in a.layers.split(","):
        n_in, n_out = map(int, spec.split("x"))
        for fn, density in (("pz_q8_dense_m0", 1.0), ("pz_q8_dense_ref", 1.0), ("pz_q8_sparse", a.density),
                            ("pz_q8_shared", a.density)):
            make = shared_layer if fn == "pz_q8_shared" else random_layer
            t = make(np.random.default_rng(n_in + n_out), n_in, n_out, density)
            cyc, ins, stored, sim = trace(image, insns, t, fn)
            print(f"{fn:15s} {spec:10s} {density:7.2f}  {cyc:9d}  {ins:9d}  {cyc / stored:6.2f}  {sim:24d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
