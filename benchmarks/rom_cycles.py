"""Cycles per call of ROM routines, with our ROM or an official image: the figures that differ between the two.

`python benchmarks/rom_cycles.py [--bootrom B2.bin] [--calls 200]`

rp2040_sim/rom_harness.py calls each routine `--calls` times from SRAM through the ROM's own lookup (as firmware
does) on random operands; the same loop calling popcount32 is timed and subtracted (call overhead excluded). Code in
ROM and SRAM runs without wait states, so the counts are the routine's instructions priced by the emulator's TRM
table. Everything outside ROM costs the same with either ROM: the emulator enters boot2 itself in both cases.
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rp2040_sim import rom  # noqa: E402
from rp2040_sim.core import Rp2040, SimConfig  # noqa: E402
from rp2040_sim.rom_harness import RomCaller  # noqa: E402

SF = {"fadd": 0x00, "fmul": 0x08, "fdiv": 0x0C, "fsqrt": 0x18, "float2int": 0x1C, "int2float": 0x2C,
      "fsin": 0x40, "fexp": 0x4C, "fln": 0x50}
SD = {"dadd": 0x00, "dmul": 0x08, "ddiv": 0x0C, "dsqrt": 0x18, "double2int": 0x1C, "dsin": 0x40, "dexp": 0x4C}


def cycles(caller, rows, **where) -> int:
    sim = Rp2040(SimConfig(warn_sink=lambda m: None))
    if caller.bootrom is not None:
        sim.load_rom(caller.bootrom)
    start = sim.cycles()
    _, stop, _ = caller.call(rows, sim=sim, **where)
    if stop.kind != "halt":
        raise SystemExit(f"{where}: the run stopped with {stop.kind}: {stop.detail}")
    return sim.cycles() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootrom", help="official 16 kB bootrom image to measure instead of ours")
    p.add_argument("--calls", type=int, default=200)
    args = p.parse_args(argv)
    image = rom.check_official(args.bootrom) if args.bootrom else None
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as work:
        caller = RomCaller(Path(work), image)
        n = args.calls
        floats = [struct.unpack("<I", struct.pack("<f", v))[0] for v in rng.uniform(0.5, 50, 2 * n)]
        doubles = [struct.unpack("<II", struct.pack("<d", v)) for v in rng.uniform(0.5, 50, 2 * n)]
        base = cycles(caller, [(0,)] * n, func="P3")              # loop + call + a short routine
        print(f"ROM: {args.bootrom or 'rp2040_sim (ours)'}; cycles per call, loop overhead of "
              f"{base / n:.1f} (popcount32 call included) subtracted")
        rows = {"memcpy 256 B": (cycles(caller, [(0x20030000, 0x20031000, 256)] * n, func="MC"), None),
                "memset 256 B": (cycles(caller, [(0x20030000, 0, 256)] * n, func="MS"), None)}
        for name, off in SF.items():
            arg = [(floats[i], floats[n + i] if name != "int2float" else 0) for i in range(n)]
            if name in ("int2float",):
                arg = [(int(v) & 0xFFFFFFFF, 0) for v in rng.integers(-2**31, 2**31, n)]
            rows[name] = (cycles(caller, arg, table="SF", offset=off), None)
        for name, off in SD.items():
            arg = [(*doubles[i], *doubles[n + i]) for i in range(n)]
            rows[name] = (cycles(caller, arg, table="SD", offset=off), None)
        for name, (total, _) in rows.items():
            print(f"  {name:14s} {(total - base) / n:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
