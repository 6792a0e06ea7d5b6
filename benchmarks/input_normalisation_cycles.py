"""Cycles of the firmware's input layer for the user's float data (docs/DATA.md), measured in rp2040_sim.

`python benchmarks/input_normalisation_cycles.py [--features 784] [--samples 20] [--json FILE]`

Builds three 784-16-10 MLPs with random weights (in a temporary directory): a float32 model of uint8 pixels
(`x = raw * scale`, pz_run_input_u8_f32), a float32 model of float data normalised per feature (`standard`,
pz_run_input_f32_f32) and its int8 variant (normalised and quantized on the chip, pz_run_input_f32_q8). For each, the
post-boot machine is restored per sample, the raw values are written to pz_input and only layer 0 (the input layer)
is called, as pz_infer calls it (r0 = &pz_layers[0], r1 = pz_input, r2 = buf[0]). Its output is checked bit for bit
against the host (zoo.normalize, compress.quantize.quantize_input) before any figure is printed. An int8 model of
uint8 pixels has no input layer at all (its first layer reads the raw bytes): 0 cycles.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compress import quantize  # noqa: E402
from firmware import build as fwbuild  # noqa: E402
from rp2040_sim.eval import Harness, read_build  # noqa: E402
from zoo import modeldir, userdata  # noqa: E402
from zoo.nn import Dense, ReLU, Sequential  # noqa: E402
from zoo.normalize import Normalization  # noqa: E402

LAYER_STRUCT_BYTES = 24  # pz_layer (layers.h)
NETWORK_BUF_OFFSET = 8   # pz_network (layers.h): layers, n_layers (+pad), buf[2]


def make_models(root: Path, features: int, samples: int) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    spec = Sequential([Dense(features, 16), ReLU(), Dense(16, 10)])
    params = [{"w": rng.normal(0, features ** -0.5, (features, 16)).astype(np.float32),
               "b": np.zeros(16, np.float32)}, {},
              {"w": rng.normal(0, 0.25, (16, 10)).astype(np.float32), "b": np.zeros(10, np.float32)}]
    y = np.arange(max(samples, 20)) % 10
    dirs = {}
    for name, x in (("uint8", rng.integers(0, 256, (len(y), features), dtype=np.uint8)),
                    ("float", rng.normal(300, 40, (len(y), features)).astype(np.float32))):
        np.savez(root / f"{name}.npz", x_train=x, y_train=y, x_test=x, y_test=y)
        ds = userdata.load_file(root / f"{name}.npz")
        meta = {"model": f"input_{name}", "dataset": "user", "data": ds.source, "dtype": "float32",
                "input": ds.normalization.to_meta(features)}
        modeldir.save(root / name, spec, params, meta, {"model": f"input_{name}"})
        dirs[name] = root / name
        if name == "float":
            qmeta, extra, qparams = quantize.quantize_model(spec, params, ds.input_scale, ds.x_train)
            modeldir.save(root / "float-int8", spec, qparams, {**meta, "quantization": qmeta}, {}, extra)
            dirs["float-int8"] = root / "float-int8"
    return dirs


def measure(build_dir: Path, samples: int) -> dict:
    build = read_build(build_dir)
    model = modeldir.load(Path(build["model_dir"]))
    h = Harness(build_dir, build)
    sim, elf = h.sim, h.image.elf
    table, net = elf.addr("pz_layers"), elf.addr("pz_network_model")
    buf0 = sim.read_u32(net + NETWORK_BUF_OFFSET)
    run = sim.read_u32(table)
    features = int(model.meta["input"]["features"])
    norm = Normalization.from_meta(model.meta["input"])
    ds = userdata.load_for_model(model.meta)
    cycles = []
    for raw in ds.x_test[:samples]:
        h.restore()
        sim.write(h.input_addr, np.asarray(raw, h.input_dtype).tobytes())
        sim.set_regs(r0=table, r1=h.input_addr, r2=buf0, sp=h.stack_top, lr=h.halt | 1)
        c0 = sim.state.cycles
        stop = sim.run(run, 1 << 31)
        if not stop.ok:
            raise SystemExit(f"{build_dir}: the input layer did not return to pz_halt: {stop}")
        cycles.append(sim.state.cycles - c0)
        x = norm.apply(raw[None], np.float32)[0]
        if "quantization" in model.meta:
            qin = model.meta["quantization"]["input"]
            want = (quantize.quantize_input(x, qin["inv_scale"], qin["zero_point"]) + 128).astype(np.uint8).tobytes()
        else:
            want = x.astype("<f4").tobytes()
        if sim.read(buf0, len(want)) != want:
            raise SystemExit(f"{build_dir}: the input layer's output differs from the host's; no figures")
    cycles = np.asarray(cycles)
    return {"build_dir": str(build_dir), "features": features, "samples": len(cycles),
            "cycles_mean": float(cycles.mean()), "cycles_min": int(cycles.min()), "cycles_max": int(cycles.max()),
            "cycles_per_feature": float(cycles.mean() / features)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--features", type=int, default=784)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="pz-input-bench-") as tmp:
        root = Path(tmp)
        for name, model_dir in make_models(root, args.features, args.samples).items():
            fwbuild.build(model_dir, root / f"build-{name}", images=1, quiet=True, cores="1")
            results[name] = measure(root / f"build-{name}", args.samples)
    kernels = {"uint8": "pz_run_input_u8_f32 (x = raw * scale)",
               "float": "pz_run_input_f32_f32 (x = (raw - mean) * inv_std)",
               "float-int8": "pz_run_input_f32_q8 (normalise, then quantize to int8)"}
    print(f"input layer, {args.features} features, {args.samples} samples each, output == host bit for bit")
    for name, r in results.items():
        print(f"  {kernels[name]:<56} {r['cycles_mean']:>10,.0f} cycles  {r['cycles_per_feature']:6.1f} per "
              f"feature  ({r['cycles_mean'] / 125e3:.3f} ms at 125 MHz)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
