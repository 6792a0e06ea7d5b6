"""Cycles per layer of an int8 firmware, measured by the rp2040_sim emulator (weights where the build put them).

`python benchmarks/compress_layer_cycles.py BUILD_DIR [--images N] [--json FILE]`

The firmware boots once; then for each test image the post-boot machine is restored (as `rp2040_sim eval` does)
and the layer table's adapters are called one at a time (r0 = &pz_layers[i], r1 = x, r2 = y, as pz_infer calls
them), so each layer's cycles include its adapter, kernel and per-output requantization. The last layer's int8
outputs are checked against compress.reference.forward before any figure is printed. Reported per layer: cycles per
MAC (dense: n_in x n_out), for dense layers also cycles per MAC of a non-zero input (the int8 dense kernel skips
zero input bytes: n_out x the layer's non-zero inputs, averaged over the images), and for sparse layers cycles per
non-zero weight, per stored entry and per entry read (the entries in the columns of the non-zero inputs, which is
all the zero-skipping sparse and shared kernels read). The marginal cost is the least-squares slope of a layer's
cycles over that work across the images (the loop's own cost, without the per-layer and per-output parts).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compress import layout, reference  # noqa: E402
from rp2040_sim.eval import Harness, read_build  # noqa: E402
from zoo import data, modeldir  # noqa: E402

LAYER_STRUCT_BYTES = 24  # pz_layer (layers.h): run, kind/in/out (uint16 x3 + pad), w, b, aux
NETWORK_BUF_OFFSET = 8   # pz_network (layers.h): layers, n_layers (+pad), buf[2], ...


def measure(build_dir: Path, images: int) -> dict:
    build = read_build(build_dir)
    model = modeldir.load(Path(build["model_dir"]))
    kls = layout.kernel_layers(model)
    h = Harness(build_dir, build)
    sim, elf = h.sim, h.image.elf
    table = elf.addr("pz_layers")
    net = elf.addr("pz_network_model")
    bufs = [sim.read_u32(net + NETWORK_BUF_OFFSET + 4 * b) for b in (0, 1)]
    runs = [sim.read_u32(table + LAYER_STRUCT_BYTES * i) for i in range(len(kls))]
    ds = data.load(build["dataset"])
    x = ds.x_test[:images]
    cycles = np.zeros((images, len(kls)), np.int64)
    nonzero_in = np.zeros((images, len(kls)), np.int64)
    entries_read = np.zeros((images, len(kls)), np.int64)  # sparse/shared: entries in the non-zero inputs' columns
    outs = []
    for n, raw in enumerate(x):
        h.restore()                       # both cores' post-boot state (a two-core build: core 1 waits for work)
        sim.write(h.input_addr, np.asarray(raw, np.uint8).tobytes())
        src = h.input_addr
        for i, fn in enumerate(runs):
            dst = h.output_addr if i + 1 == len(runs) else bufs[i % 2]
            xu = np.frombuffer(sim.read(src, kls[i]["n_in"]), np.uint8)
            nonzero_in[n, i] = np.count_nonzero(xu)
            if kls[i]["row_len"] is not None:
                entries_read[n, i] = int(np.asarray(kls[i]["row_len"], np.int64)[xu != 0].sum())
            sim.set_regs(r0=table + LAYER_STRUCT_BYTES * i, r1=src, r2=dst, sp=h.stack_top, lr=h.halt | 1)
            h.sync_core1()
            c0 = sim.state.cycles         # a split layer: core 0 returns after core 1's half (the slower core)
            stop = sim.run(fn, 1 << 31)
            if not stop.ok:
                raise SystemExit(f"layer {i} did not return to pz_halt: {stop}")
            cycles[n, i] = sim.state.cycles - c0
            src = dst
        outs.append(np.frombuffer(sim.read(h.output_addr, h.count), np.int8))
    golden = reference.forward(model, x)
    if not np.array_equal(np.stack(outs), golden):
        raise SystemExit(f"{build_dir}: emulator outputs differ from compress.reference.forward; no figures")
    size = json.loads((build_dir / "size.json").read_text())
    rows = []
    for i, kl in enumerate(kls):
        w = model.extra[f"q.layers.{kl['index']}.w"]
        macs, nnz = kl["n_in"] * kl["n_out"], int(np.count_nonzero(w))
        c = float(cycles[:, i].mean())
        row = {"layer": kl["index"], "storage": kl["storage"], "kernel": kl["kernel"], "n_in": kl["n_in"],
               "n_out": kl["n_out"], "cycles_mean": c, "cycles_min": int(cycles[:, i].min()),
               "cycles_max": int(cycles[:, i].max()), "nonzero_weights": nnz}
        row["nonzero_inputs_mean"] = float(nonzero_in[:, i].mean())
        work = nonzero_in[:, i] * kl["n_out"] if kl["storage"] == "dense" else entries_read[:, i]
        if np.ptp(work) > 0:  # marginal cost: least-squares slope of cycles over the work the images differ in
            row["marginal_cycles_per_unit"] = float(np.polyfit(work, cycles[:, i], 1)[0])
        if kl["storage"] == "dense":
            row["cycles_per_mac"] = c / macs
            row["cycles_per_nonzero_mac"] = float((cycles[:, i] / np.maximum(nonzero_in[:, i], 1)).mean()) / kl["n_out"]
        else:
            entries = int(np.asarray(kl["row_len"]).sum())
            stored = np.asarray(kl["w"]).nbytes + np.asarray(kl["row_len"]).nbytes  # entries and row lengths
            row.update(stored_entries=entries, cycles_per_nonzero=c / nnz, cycles_per_entry=c / entries,
                       bytes_per_nonzero=stored / nnz, entries_read_mean=float(entries_read[:, i].mean()),
                       cycles_per_entry_read=float((cycles[:, i] / np.maximum(entries_read[:, i], 1)).mean()))
        rows.append(row)
    return {"build_dir": str(build_dir), "model_dir": build["model_dir"], "images": images,
            "weights_placement": size.get("weights_placement"), "layers": rows,
            "total_cycles_mean": float(cycles.sum(axis=1).mean())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("build_dir", type=Path)
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    r = measure(args.build_dir, args.images)
    print(f"{args.build_dir} (weights {r['weights_placement']}, {args.images} images, outputs == golden model)")
    for row in r["layers"]:
        fig = (f"{row['cycles_per_mac']:.3f} cycles/MAC, {row['cycles_per_nonzero_mac']:.3f} cycles/MAC of a "
               f"non-zero input" if "cycles_per_mac" in row else
               f"{row['cycles_per_nonzero']:.2f} cycles/non-zero, {row['cycles_per_entry']:.2f} cycles/entry, "
               f"{row['cycles_per_entry_read']:.2f} cycles/entry of a non-zero input, "
               f"{row['bytes_per_nonzero']:.2f} bytes/non-zero")
        if "marginal_cycles_per_unit" in row:
            fig += (f", marginal {row['marginal_cycles_per_unit']:.2f} per "
                    f"{'MAC of a non-zero input' if row['storage'] == 'dense' else 'entry read'}")
        print(f"  layer {row['layer']}: {row['storage']:<6} {row['n_in']}x{row['n_out']:<4} "
              f"{row['cycles_mean']:>12,.0f} cycles  {fig}  ({row['nonzero_inputs_mean']:.1f} non-zero inputs)")
    print(f"  total {r['total_cycles_mean']:,.0f} cycles per inference")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
