"""Conv nets on the emulated RP2040: kernel cycles per MAC, and whole networks per layer.

    python benchmarks/conv_firmware.py kernels
        int8 conv kernels (firmware/kernels/conv_q8_m0.c) called by rp2040_sim/kernel_harness.py with weights and
        activations in SRAM and the XIP cache warm (the second of two calls is counted, as from the second
        inference of a firmware on); outputs checked against the NumPy golden model first. The fixed cases, then
        pd_mobilenet's layer shapes (op "/2" = stride 2).
    python benchmarks/conv_firmware.py zero-skipping
        pd_mobilenet's pointwise convs with and without zero skipping, on ReLU-like and on random inputs.
    python benchmarks/conv_firmware.py random-model NAME OUT_DIR [--seed 0]
        a randomly initialised registry model (zoo.models, e.g. pd_mobilenet) saved to OUT_DIR and its int8
        variant (compress.quantize, calibrated on 64 test images) to OUT_DIR/int8: cycles do not depend on the
        weight values, so latency and RAM can be measured before anyone trains it.
    python benchmarks/conv_firmware.py layers MODEL_DIR [--out BUILD_DIR] [--weights-in auto|flash|ram]
        firmware.build the model (1 test image), boot it in rp2040_sim, then call every layer of the table on its
        own (same arena, same order as pz_infer) and print its cycles; total at 125 MHz; peak RAM = static RAM
        (.data + .bss, which holds the arena) + the measured peak stack.
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLOCK_HZ = 125_000_000
KERNEL_CASES = [  # (h, w, C, K, kernel, stride, padding, depthwise)
    (14, 14, 8, 16, (3, 3), (1, 1), "same", False),
    (14, 14, 16, 32, (3, 3), (1, 1), "same", False),
    (12, 12, 32, 32, (3, 3), (1, 1), "same", False),
    (7, 7, 64, 64, (3, 3), (1, 1), "same", False),
    (12, 12, 32, 32, (1, 1), (1, 1), "same", False),
    (6, 6, 64, 128, (1, 1), (1, 1), "same", False),
    (6, 6, 128, 128, (1, 1), (1, 1), "same", False),
    (3, 3, 256, 256, (1, 1), (1, 1), "same", False),
    (28, 28, 1, 12, (3, 3), (1, 1), "same", False),
    (48, 48, 8, 8, (3, 3), (1, 1), "same", True),
    (24, 24, 32, 32, (3, 3), (1, 1), "same", True),
    (6, 6, 128, 128, (3, 3), (1, 1), "same", True),
]
# pd_mobilenet's own layers (zoo.models: MobileNetV1 0.25 at 96x96x1): the first conv, every depthwise shape and
# every pointwise channel count
PD_MOBILENET_CASES = [
    (96, 96, 1, 8, (3, 3), (2, 2), "same", False),
    (48, 48, 8, 8, (3, 3), (1, 1), "same", True),
    (48, 48, 16, 16, (3, 3), (2, 2), "same", True),
    (24, 24, 32, 32, (3, 3), (2, 2), "same", True),
    (12, 12, 64, 64, (3, 3), (1, 1), "same", True),
    (12, 12, 64, 64, (3, 3), (2, 2), "same", True),
    (6, 6, 128, 128, (3, 3), (2, 2), "same", True),
    (3, 3, 256, 256, (3, 3), (1, 1), "same", True),
    (48, 48, 8, 16, (1, 1), (1, 1), "same", False),
    (24, 24, 16, 32, (1, 1), (1, 1), "same", False),
    (24, 24, 32, 32, (1, 1), (1, 1), "same", False),
    (12, 12, 32, 64, (1, 1), (1, 1), "same", False),
    (12, 12, 64, 64, (1, 1), (1, 1), "same", False),
    (6, 6, 64, 128, (1, 1), (1, 1), "same", False),
    (6, 6, 128, 128, (1, 1), (1, 1), "same", False),
    (3, 3, 128, 256, (1, 1), (1, 1), "same", False),
    (3, 3, 256, 256, (1, 1), (1, 1), "same", False),
]


def realistic_shifts(shift: np.ndarray) -> np.ndarray:
    """conv_case draws shifts -1..11 to cover the requantization's range; int8 conv layers have scales s_in s_w /
    s_out well below 1/4 (the int8 registry models: shifts 6-12), which the kernels' output stage is fast for
    (conv_q8_m0.c, requant_init). Timed with shifts 6..11 (the same seed, so the same weights and inputs)."""
    return (6 + (shift.astype(np.int64) + 1) % 6).astype(np.int8)


def kernels() -> None:
    from rp2040_sim.kernel_harness import ConvImage, conv_case

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_firmware_conv import q8_golden

    with tempfile.TemporaryDirectory() as tmp:
        image = ConvImage.build(tmp)
        print("| op | input h x w x C | K | kernel | MACs | cycles | cycles/MAC |")
        print("|---|---|---|---|---|---|---|")
        for h, w, c, k, kernel, stride, padding, depthwise in KERNEL_CASES + PD_MOBILENET_CASES:
            t = conv_case(np.random.default_rng(0), h, w, c, k, kernel, stride, padding, depthwise)
            t["shift"] = realistic_shifts(t["shift"])
            fn = "pz_dwconv2d_q8_m0" if depthwise else "pz_conv2d_q8_m0"
            run = image.call(t, fn, warm=True)
            np.testing.assert_array_equal(run.y, q8_golden(t))
            op = "depthwise" if depthwise else f"conv {kernel[0]}x{kernel[1]}"
            if stride != (1, 1):
                op += f" /{stride[0]}"
            print(f"| {op} | {h}x{w}x{c} {padding} | {t['shape'].out_c} | {kernel[0]}x{kernel[1]} | {run.macs} | "
                  f"{run.cycles} | {run.cycles / run.macs:.2f} |")


def zero_skipping() -> None:
    """pd_mobilenet's pointwise shapes on inputs whose zero point is the byte 0 (zp_in = -128, as after ReLU6):
    ReLU-like inputs (a normal distribution clipped at 0: about half zeros) and uniform random ones without zeros,
    each through the zero-skipping dot product (zp_in = -128) and, the same bytes with zp_in = -127, through the
    plain one."""
    from rp2040_sim.kernel_harness import ConvImage, conv_case
    from test_firmware_conv import q8_golden

    with tempfile.TemporaryDirectory() as tmp:
        image = ConvImage.build(tmp)
        print("| input h x w x C | K | input | zeros | cycles/MAC plain | cycles/MAC skipping zeros |")
        print("|---|---|---|---|---|---|")
        for h, w, c, k, kernel, stride, padding, depthwise in PD_MOBILENET_CASES:
            if depthwise or c == 1:
                continue
            for kind in ("ReLU-like", "random"):
                rng = np.random.default_rng(0)
                t = conv_case(rng, h, w, c, k, kernel, stride, padding, False)
                t["shift"] = realistic_shifts(t["shift"])
                if kind == "ReLU-like":
                    t["xu"] = np.clip(np.rint(rng.normal(0, 60, t["xu"].shape)), 0, 255).astype(np.uint8)
                else:
                    t["xu"] = rng.integers(1, 256, t["xu"].shape).astype(np.uint8)
                per_mac = []
                for zp_in in (-127, -128):
                    t["zp_in"] = zp_in
                    run = image.call(t, "pz_conv2d_q8_m0", warm=True)
                    np.testing.assert_array_equal(run.y, q8_golden(t))
                    per_mac.append(run.cycles / run.macs)
                print(f"| {h}x{w}x{c} | {k} | {kind} | {np.mean(t['xu'] == 0):.0%} | {per_mac[0]:.2f} | "
                      f"{per_mac[1]:.2f} |")


def random_model(name: str, out: Path, seed: int) -> None:
    import jax

    from compress.netspec import for_inference
    from compress.quantize import quantize_model
    from zoo import data, modeldir
    from zoo.models import MODELS

    cfg = MODELS[name]
    ds = data.load(cfg.dataset)
    params = [{k: np.asarray(v) for k, v in p.items()} for p in cfg.spec.init(jax.random.PRNGKey(seed))]
    meta = {"model": name, "dataset": cfg.dataset, "input": {"scale": ds.input_scale, "features": ds.features},
            "dtype": "float32", "seed": seed, "picozoo_version": "0.1.0", "note": "random initialisation, untrained"}
    modeldir.save(out, cfg.spec, params, meta, metrics={"model": name})
    spec, iparams = for_inference(cfg.spec, params)
    qmeta, extra, qparams = quantize_model(spec, iparams, ds.input_scale, ds.x_test[:64])
    modeldir.save(out / "int8", spec, qparams, {**meta, "quantization": qmeta}, metrics={"model": f"{name}-int8"},
                  extra=extra)
    print(f"wrote {out} and {out / 'int8'}")


def layers(model_dir: Path, out: Path | None, weights_in: str = "auto") -> None:
    from firmware import build as fwbuild
    from firmware import convgen
    from firmware_support import elf_symbols
    from rp2040_sim import runner
    from zoo import modeldir

    out = out or Path(tempfile.mkdtemp()) / "build"
    result = fwbuild.build(model_dir, out, images=1, weights_in=weights_in, quiet=True)
    res, sim = runner.run_image(out / "firmware.uf2")
    assert res.stop.ok, res.fault_report
    sym = elf_symbols(out / "firmware.elf")
    n = sym["pz_layers"][1] // 24  # pz_layer: run, kind/in/out (3 x u16 + pad), w, b, aux
    table = sim.read(sym["pz_layers"][0], 24 * n)
    io = struct.unpack(f"<{n + 1}I", sim.read(sym["pz_io"][0], 4 * (n + 1)))
    model = modeldir.load(model_dir)
    names = ["input scaling"] if "quantization" not in model.meta else []
    names += [f"layer {op.index} {op.op}" for op in convgen.network_ops(model, str(model_dir))[0]]
    sim.write(sym["pz_input"][0], bytes(sim.read(sym["pz_test_images"][0], sym["pz_input"][1])))
    total = 0
    print(f"{model_dir}: arena {result.size['arena_bytes']} B, static RAM {result.size['ram_static_bytes']} B, "
          f"weights {result.size['weights_bytes']} B ({result.size['weights_placement']})")
    print("| # | layer | kind | in -> out elements | cycles | ms at 125 MHz |")
    print("|---|---|---|---|---|---|")
    for i in range(n):
        run, kind, n_in, n_out, _pad, w, b, aux = struct.unpack("<IHHHHIII", table[24 * i:24 * i + 24])
        sim.set_regs(r0=sym["pz_layers"][0] + 24 * i, r1=io[i], r2=io[i + 1], sp=sym["__stack_top"][0],
                     lr=sym["pz_halt"][0] | 1)
        c0 = sim.state.cycles
        stop = sim.run(run & ~1 | 1)
        assert stop.kind == "halt", stop
        cycles = sim.state.cycles - c0
        total += cycles
        print(f"| {i} | {names[i]} | {kind} | {n_in} -> {n_out} | {cycles} | {cycles / CLOCK_HZ * 1e3:.2f} |")
    # the whole inference once more through pz_infer (same code path as the firmware's timing)
    sim.set_regs(sp=sym["__stack_top"][0], lr=sym["pz_halt"][0] | 1)
    c0 = sim.state.cycles
    stop = sim.run(sym["pz_infer"][0])
    assert stop.kind == "halt", stop
    infer = sim.state.cycles - c0
    print(f"\nsum of layers {total} cycles = {total / CLOCK_HZ * 1e3:.1f} ms; pz_infer {infer} cycles = "
          f"{infer / CLOCK_HZ * 1e3:.1f} ms at 125 MHz")
    print(f"firmware's own timing of test image 0: {res.uart.splitlines()[0]}")
    static = result.size["ram_static_bytes"]
    print(f"peak RAM: static {static} B (.data + .bss incl. the {result.size['arena_bytes']} B arena) + peak stack "
          f"{res.peak_stack_bytes} B = {static + res.peak_stack_bytes} B")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("kernels")
    sub.add_parser("zero-skipping")
    r = sub.add_parser("random-model")
    r.add_argument("name")
    r.add_argument("out", type=Path)
    r.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("layers")
    m.add_argument("model_dir", type=Path)
    m.add_argument("--out", type=Path)
    m.add_argument("--weights-in", choices=["auto", "flash", "ram"], default="auto")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    if args.cmd == "kernels":
        kernels()
    elif args.cmd == "zero-skipping":
        zero_skipping()
    elif args.cmd == "random-model":
        random_model(args.name, args.out, args.seed)
    else:
        layers(args.model_dir, args.out, args.weights_in)
    return 0


if __name__ == "__main__":
    sys.exit(main())
