"""Emulator speed: emulated instructions and cycles per wall second, with and without cycle accounting.

    .venv/bin/python benchmarks/emulator_speed.py [--build-dir build/mnist_300] [--repeat 5]

Workload 1, an int8-style dense layer (784 x 300, ldrsb/muls/adds unrolled by 4, the shape of a quantised
kernel), run with its weights in SRAM and in flash (where every weight load goes through the XIP cache model).
Workload 2 (with --build-dir): the real firmware's boot, which runs its test images through pz_infer.
"without accounting" is the same machine with the native hooks left out (no cycles counted): the cost of
Unicorn itself. Times are the best of --repeat runs; the emulated counts are identical in every run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rp2040_sim import asm, boot  # noqa: E402
from rp2040_sim.core import Rp2040, SimConfig  # noqa: E402

N_IN, N_OUT = 784, 300
DENSE = f"""
    .thumb_func
    .global reset
reset:
    ldr r0, =WEIGHTS
    ldr r1, =0x20000000          @ input activations (int8) in SRAM
    ldr r2, ={N_IN}
    ldr r3, ={N_OUT}
loop_out:
    movs r4, #0
    movs r6, #0
loop_in:
""" + """    ldrsb r7, [r0, r6]
    ldrsb r5, [r1, r6]
    muls r7, r5
    adds r4, r4, r7
    adds r6, #1
""" * 4 + """    cmp r6, r2
    blt loop_in
    adds r0, r0, r2
    subs r3, #1
    bne loop_out
    bkpt #0
    .ltorg
"""
WEIGHTS = {"sram": 0x20001000, "flash": 0x10010000}


def run_once(image, accounting: bool):
    sim = Rp2040(SimConfig(accounting=accounting))
    start = boot.prepare(sim, image)
    t0 = time.perf_counter()
    stop = sim.run(start)
    wall = time.perf_counter() - t0
    assert stop.ok, stop
    return wall, sim.state.instructions, sim.state.cycles


def measure(name, image, repeat):
    walls = {}
    for accounting in (True, False):
        runs = [run_once(image, accounting) for _ in range(repeat)]
        walls[accounting] = min(r[0] for r in runs)
        if accounting:
            instr, cycles = runs[0][1], runs[0][2]
            assert all(r[1:] == (instr, cycles) for r in runs), "counts differ between runs"
    print(f"{name}")
    print(f"  emulated: {instr:,} instructions, {cycles:,} cycles ({cycles / 125e3:.2f} ms at 125 MHz)")
    for accounting in (True, False):
        w = walls[accounting]
        label = "with accounting   " if accounting else "without accounting"
        print(f"  {label}: {w * 1e3:9.1f} ms wall  {instr / w / 1e6:7.1f} M instr/s  "
              f"{cycles / w / 1e6:7.1f} M emulated cycles/s  ({cycles / w / 125e6:.2f}x real time)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", type=Path, help="a firmware build directory to time as well")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for where, addr in WEIGHTS.items():
            paths = asm.build_image(DENSE.replace("WEIGHTS", f"0x{addr:08x}"), Path(tmp) / where)
            measure(f"int8 dense {N_IN}x{N_OUT}, weights in {where}", boot.load_image(paths["uf2"]), args.repeat)
    if args.build_dir:
        image = boot.load_image(args.build_dir / "firmware.uf2", args.build_dir / "firmware.elf")
        measure(f"firmware boot + test images: {args.build_dir}", image, max(1, args.repeat // 2))


if __name__ == "__main__":
    main()
