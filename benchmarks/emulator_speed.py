"""Emulator speed: emulated instructions and cycles per wall second, with and without cycle accounting.

    .venv/bin/python benchmarks/emulator_speed.py [--build-dir build/mnist_300] [--repeat 5]

Workload 1, an int8-style dense layer (784 x 300, ldrsb/muls/adds unrolled by 4, the shape of a quantised
kernel), run with its weights in SRAM and in flash (where every weight load goes through the XIP cache model).
Workload 2 (with --build-dir): the real firmware's boot, which runs its test images through pz_infer (with
accounting only: its quad boot2 polls the flash's BUSY bit, which never clears when no time passes).
"without accounting" is the same machine with the native hooks left out (no cycles counted): the cost of
Unicorn itself. Times are the best of --repeat runs; the emulated counts are identical in every run.

--image FILE.uf2 (repeatable) times any other image too (a pico-sdk example built by benchmarks/sdk_examples.py,
say; --max-cycles bounds a never-halting one), with accounting only: without it no time passes and the SDK's
delays never end. --rp2040js DIR (a directory with `npm install rp2040js` done) also
runs every workload in rp2040js through benchmarks/rp2040js_run.js, booted the same way (our ROM, boot2 at
0x20041F00), and prints its instructions per second, the speed ratio and whether the UART text is the same.
Each emulator's counts follow its own peripheral and cycle models (rp2040js's SSI answers at once, its flash
has no line-fill cost), so the ratio is of instructions per wall second, and per CPU second (best of the runs
each; on a loaded machine the CPU-time ratio is the steadier one: wall time there measures the scheduler too).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rp2040_sim import asm, boot, rom  # noqa: E402
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


def run_once(image, accounting: bool, max_cycles: int | None = None):
    sim = Rp2040(SimConfig(accounting=accounting, timeout=0, warn_sink=lambda m: None,
                           **({"max_cycles": max_cycles} if max_cycles else {})))
    start = boot.prepare(sim, image)
    t0, c0 = time.perf_counter(), time.process_time()
    stop = sim.run(start)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert stop.ok or (max_cycles and stop.kind == "budget exceeded"), stop
    uart = (sim.uart0.tx + sim.uart1.tx).decode("latin-1")
    return wall, sim.state.instructions, sim.state.cycles, uart, cpu


def run_rp2040js(js_dir: Path, image, max_cycles: int, tmp: Path) -> dict:
    """One run of the image in rp2040js (node); its own instruction and cycle counts, wall time of its loop."""
    rom_bin, flash_bin = tmp / "rom.bin", tmp / "flash.bin"
    rom_bin.write_bytes(rom.image())
    flash_bin.write_bytes(image.data)
    out = subprocess.run(["node", str(Path(__file__).with_name("rp2040js_run.js")), str(js_dir), str(rom_bin),
                          str(flash_bin), str(max_cycles)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(name, image, repeat, js_dir=None, max_cycles=None, tmp=None, bare=True):
    """bare=False leaves out the run without accounting: firmware that waits on time (any pico-sdk program's
    delays, the quad boot2's ~10 ms of flash BUSY polling) never gets past it when no cycles are counted."""
    walls, cpus = {}, {}
    modes = (True, False) if bare else (True,)
    for accounting in modes:
        runs = [run_once(image, accounting, max_cycles) for _ in range(repeat)]
        walls[accounting] = min(r[0] for r in runs)
        cpus[accounting] = min(r[4] for r in runs)
        if accounting:
            instr, cycles, uart = runs[0][1:4]
            assert all(r[1:3] == (instr, cycles) for r in runs), "counts differ between runs"
    print(f"{name}")
    print(f"  emulated: {instr:,} instructions, {cycles:,} cycles ({cycles / 125e3:.2f} ms at 125 MHz)")
    for accounting in modes:
        w = walls[accounting]
        label = "with accounting   " if accounting else "without accounting"
        print(f"  {label}: {w * 1e3:9.1f} ms wall  {instr / w / 1e6:7.1f} M instr/s  "
              f"{cycles / w / 1e6:7.1f} M emulated cycles/s  ({cycles / w / 125e6:.2f}x real time)")
    if js_dir:
        js_runs = [run_rp2040js(js_dir, image, max_cycles or cycles * 4, tmp) for _ in range(max(1, repeat // 2))]
        js = min(js_runs, key=lambda r: r["wall_s"])
        ours = instr / walls[True]
        theirs = js["instructions"] / js["wall_s"]
        print(f"  rp2040js          : {js['wall_s'] * 1e3:9.1f} ms wall  {theirs / 1e6:7.1f} M instr/s  "
              f"({js['instructions']:,} instructions, {js['cycles']:,} cycles, "
              f"{'bkpt' if js['halted'] else 'budget'}; UART text {'the same' if js['uart'] == uart else 'DIFFERS'})")
        print(f"  speed with accounting / rp2040js: {ours / theirs:.1f}x (instructions per wall second)")
        js_cpu = min(r["cpu_s"] for r in js_runs)
        print(f"  CPU time, ours {cpus[True] * 1e3:.1f} ms, rp2040js {js_cpu * 1e3:.1f} ms (all its threads): "
              f"{instr / cpus[True] / (js['instructions'] / js_cpu):.1f}x (instructions per CPU second)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", type=Path, help="a firmware build directory to time as well")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--image", type=Path, action="append", default=[], help="another .uf2 to time (repeatable)")
    p.add_argument("--max-cycles", type=int, help="cycle budget for --image runs that never halt")
    p.add_argument("--rp2040js", type=Path, metavar="DIR",
                   help="a directory holding node_modules/rp2040js: compare each workload with rp2040js")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for where, addr in WEIGHTS.items():
            paths = asm.build_image(DENSE.replace("WEIGHTS", f"0x{addr:08x}"), tmp / where)
            measure(f"int8 dense {N_IN}x{N_OUT}, weights in {where}", boot.load_image(paths["uf2"]), args.repeat,
                    args.rp2040js, tmp=tmp)
        if args.build_dir:
            image = boot.load_image(args.build_dir / "firmware.uf2", args.build_dir / "firmware.elf")
            measure(f"firmware boot + test images: {args.build_dir}", image, max(1, args.repeat // 2),
                    args.rp2040js, tmp=tmp, bare=False)
        for path in args.image:
            measure(f"image {path}", boot.load_image(path), max(1, args.repeat // 2), args.rp2040js,
                    args.max_cycles, tmp, bare=False)


if __name__ == "__main__":
    main()
