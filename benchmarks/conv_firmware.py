"""Conv nets on the emulated RP2040: kernel cycles per MAC, and whole networks per layer.

    python benchmarks/conv_firmware.py kernels
        int8 conv kernels (firmware/kernels/conv_q8_m0.c) called by rp2040_sim/kernel_harness.py with weights and
        activations in SRAM and the XIP cache warm (the second of two calls is counted, as from the second
        inference of a firmware on); outputs checked against the NumPy golden model first. The fixed cases, then
        pd_mobilenet's layer shapes (op "/2" = stride 2). Each layer twice: with conv_case's 31-bit multipliers
        (the general output stage) and with them rounded as compress rounds a conv layer's
        (compress.quantize.reduced_multiplier: the one-multiply output stage, firmware/requant.py).
    python benchmarks/conv_firmware.py zero-skipping
        pd_mobilenet's pointwise convs with and without zero skipping, on ReLU-like and on random inputs
        (multipliers rounded as compress rounds them); without (zp_in = -127) in the layout the build chooses
        (pw16), and with zp_in = -128 also in pw16 forced (no zero skipping) for comparison.
    python benchmarks/conv_firmware.py pw16-flash
        pointwise convs in conv8 and in pw16 with weights and records in SRAM and in flash (read through the XIP
        cache, warm), and the layout compress.conv_layout.conv_weight_layout gives each there: where
        PW16_FLASH_MAX_BYTES comes from.
    python benchmarks/conv_firmware.py pw16-small
        the 1x1 layers at C = 8 and 16 (pwconv_q8_m0.c's pw16 loops for one C each) on more data than the kernels
        table's: conv_case seeds 0-3, with their activation and without (-128..127: fewer outputs saturated), and
        each also through the block loop (the same layer with its input 2 bytes off a word boundary).
    python benchmarks/conv_firmware.py pw-any-k
        1x1 layers whose K is not a multiple of 8 (pwconv_q8_m0.c runs them in batches of pixels through a buffer,
        whole groups of 8 outputs, then copies each pixel's K bytes), next to K rounded up to a multiple of 8; each
        with a random input zero point (the build's pw16) and with zp_in = -128 (conv8, zero skipping); cycles/MAC
        counts the layer's own MACs.
    python benchmarks/conv_firmware.py dw-any-kernel
        depthwise layers whose kernel is not 3x3 (dwconv_q8_m0.c dw_any_kernel: 5x5, 7x7, 3x5, 1x1), with and
        without padding, rounded multipliers (the build's records), next to a 3x3 one.
    python benchmarks/conv_firmware.py random-model NAME OUT_DIR [--seed 0]
        a randomly initialised registry model (zoo.models, e.g. pd_mobilenet) saved to OUT_DIR and its int8
        variant (compress.quantize, calibrated on 64 test images) to OUT_DIR/int8: cycles do not depend on the
        weight values, so latency and RAM can be measured before anyone trains it.
    python benchmarks/conv_firmware.py layers MODEL_DIR [--out BUILD_DIR] [--weights-in auto|flash|ram]
                                              [--cores auto|1|2 ...] [--ram-budget BYTES]
        firmware.build the model (1 test image) for each --cores (into BUILD_DIR-1, -2, -auto), boot it in
        rp2040_sim, then call every layer of the table on its own (same arena, same order as pz_infer; core 1 of a
        two-core build brought to core 0's cycle count first, a split layer timed until both cores are done) and
        print its cycles, with the speed-up when two --cores are given; pz_infer at 125 MHz; peak RAM = static RAM
        (.data + .bss, which holds the arena) + core 0's measured peak stack (+ core 1's stack reserve).
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



def elf_symbols(path):
    from firmware_support import elf_symbols as symbols
    return symbols(path)


def kernels() -> None:
    from rp2040_sim.kernel_harness import ConvImage, conv_case, conv_records, timed_shifts

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_conv_requant import rounded
    from test_firmware_conv import q8_golden

    with tempfile.TemporaryDirectory() as tmp:
        image = ConvImage.build(tmp)
        print("| op | input h x w x C | K | kernel | MACs | cycles, 31-bit multipliers | cycles/MAC | "
              "cycles, rounded (one MULS) | cycles/MAC |")
        print("|---|---|---|---|---|---|---|---|---|")
        for h, w, c, k, kernel, stride, padding, depthwise in KERNEL_CASES + PD_MOBILENET_CASES:
            t = conv_case(np.random.default_rng(0), h, w, c, k, kernel, stride, padding, depthwise)
            t["shift"] = timed_shifts(t["shift"])
            fn = "pz_dwconv2d_q8_m0" if depthwise else "pz_conv2d_q8_m0"
            reduced = rounded(dict(t))
            if conv_records(reduced) is None:
                raise SystemExit(f"{h}x{w}x{c} -> {k}: no one-multiply records for the rounded multipliers")
            runs = []
            for form in (t, reduced):
                run = image.call(form, fn, warm=True)
                np.testing.assert_array_equal(run.y, q8_golden(form))
                runs.append(run)
            op = "depthwise" if depthwise else f"conv {kernel[0]}x{kernel[1]}"
            if stride != (1, 1):
                op += f" /{stride[0]}"
            print(f"| {op} | {h}x{w}x{c} {padding} | {t['shape'].out_c} | {kernel[0]}x{kernel[1]} | {runs[0].macs} | "
                  f"{runs[0].cycles} | {runs[0].cycles / runs[0].macs:.2f} | {runs[1].cycles} | "
                  f"{runs[1].cycles / runs[1].macs:.2f} |")


def zero_skipping() -> None:
    """pd_mobilenet's pointwise shapes on inputs whose zero point is the byte 0 (zp_in = -128, as after ReLU6):
    ReLU-like inputs (a normal distribution clipped at 0: about half zeros) and uniform random ones without zeros,
    each through the zero-skipping dot product (zp_in = -128) and, the same bytes with zp_in = -127, through the
    plain one."""
    from rp2040_sim.kernel_harness import ConvImage, conv_case, conv_weight_layout, timed_shifts
    from test_conv_requant import rounded
    from test_firmware_conv import q8_golden

    with tempfile.TemporaryDirectory() as tmp:
        image = ConvImage.build(tmp)
        print("| input h x w x C | K | input | zeros | cycles/MAC plain (zp_in -127: the build's layout) | "
              "cycles/MAC skipping zeros (zp_in -128, conv8) | cycles/MAC zp_in -128 in pw16 (forced) |")
        print("|---|---|---|---|---|---|---|")
        for h, w, c, k, kernel, stride, padding, depthwise in PD_MOBILENET_CASES:
            if depthwise or c == 1:
                continue
            for kind in ("ReLU-like", "random"):
                rng = np.random.default_rng(0)
                t = conv_case(rng, h, w, c, k, kernel, stride, padding, False)
                t["shift"] = timed_shifts(t["shift"])
                if kind == "ReLU-like":
                    t["xu"] = np.clip(np.rint(rng.normal(0, 60, t["xu"].shape)), 0, 255).astype(np.uint8)
                else:
                    t["xu"] = rng.integers(1, 256, t["xu"].shape).astype(np.uint8)
                per_mac = []
                for zp_in, layout in ((-127, None), (-128, None), (-128, "pw16")):
                    t["zp_in"] = zp_in
                    reduced = rounded(dict(t))
                    chosen = layout or conv_weight_layout(reduced)
                    run = image.call(reduced, "pz_conv2d_q8_m0", warm=True, layout=layout)
                    np.testing.assert_array_equal(run.y, q8_golden(reduced))
                    per_mac.append(f"{run.cycles / run.macs:.2f}" + (f" ({chosen})" if zp_in == -127 else ""))
                print(f"| {h}x{w}x{c} | {k} | {kind} | {np.mean(t['xu'] == 0):.0%} | {' | '.join(per_mac)} |")


PW16_FLASH_CASES = [(24, 24, 16, 32), (12, 12, 32, 64), (12, 12, 64, 64), (6, 6, 64, 80), (6, 6, 64, 96),
                    (6, 6, 64, 112), (6, 6, 64, 128), (6, 6, 96, 96), (6, 6, 128, 128), (3, 3, 256, 256)]


def pw16_small() -> None:
    """See the module docstring (pw16-small); weights in SRAM, warm XIP cache, outputs checked first."""
    from rp2040_sim.kernel_harness import ConvImage, conv_case, conv_weight_layout, timed_shifts
    from test_conv_requant import rounded
    from test_firmware_conv import q8_golden

    with tempfile.TemporaryDirectory() as tmp:
        image = ConvImage.build(tmp)
        print("| input h x w x C | K | seed | act_min, act_max | outputs at act_min or act_max | cycles | cycles/MAC | "
              "block loop (input 2 bytes off a word): cycles/MAC |")
        print("|---|---|---|---|---|---|---|---|")
        for h, w, c, k in ((24, 24, 16, 32), (12, 12, 16, 64), (48, 48, 8, 16)):
            for seed in range(4):
                for act in ("conv_case", "none"):
                    t = conv_case(np.random.default_rng(seed), h, w, c, k, (1, 1), (1, 1), "same", False)
                    t["shift"] = timed_shifts(t["shift"])
                    if act == "none":
                        if (t["act_min"], t["act_max"]) == (-128, 127):
                            continue  # conv_case drew none: the row above
                        t["act_min"], t["act_max"] = -128, 127
                    t = rounded(t)
                    if conv_weight_layout(t) != "pw16":
                        raise SystemExit(f"{h}x{w}x{c} -> {k} seed {seed}: not pw16")
                    want = q8_golden(t)
                    runs = [image.call(t, "pz_conv2d_q8_m0", warm=True, x_skew=skew) for skew in (0, 2)]
                    for run in runs:
                        np.testing.assert_array_equal(run.y, want)
                    saturated = np.mean((want == t["act_min"]) | (want == t["act_max"]))
                    print(f"| {h}x{w}x{c} | {k} | {seed} | {t['act_min']}, {t['act_max']} | {saturated:.0%} | "
                          f"{runs[0].cycles:,} | {runs[0].cycles / runs[0].macs:.2f} | "
                          f"{runs[1].cycles / runs[1].macs:.2f} |")


def rounded_case(h, w, c, k, kernel, stride, padding, depthwise, zp_in=lambda zp: zp):
    """conv_case seed 0 with timed shifts, its input zero point zp_in(the drawn one), and the multipliers rounded
    as compress rounds them (the build's one-multiply records)."""
    from rp2040_sim.kernel_harness import conv_case, timed_shifts
    from test_conv_requant import rounded

    t = conv_case(np.random.default_rng(0), h, w, c, k, kernel, stride, padding, depthwise)
    t["shift"] = timed_shifts(t["shift"])
    t["zp_in"] = zp_in(t["zp_in"])
    return rounded(t)


def checked_run(image, t, fn: str):
    """image.call(t, fn) with the XIP cache warm, its outputs checked against the NumPy golden model first."""
    from test_firmware_conv import q8_golden

    run = image.call(t, fn, warm=True)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    return run


def pw_any_k() -> None:
    """See the module docstring (pw-any-k); weights in SRAM, warm XIP cache, outputs checked first."""
    from rp2040_sim.kernel_harness import ConvImage, conv_weight_layout

    with tempfile.TemporaryDirectory() as tmp:
        image = ConvImage.build(tmp)
        print("| input h x w x C | K | zp_in | layout | cycles | cycles/MAC |")
        print("|---|---|---|---|---|---|")
        for h, w, c, k in ((12, 12, 10, 12), (12, 12, 10, 16), (12, 12, 20, 20), (12, 12, 20, 24), (12, 12, 32, 10),
                           (12, 12, 32, 16), (8, 8, 32, 50), (8, 8, 32, 56), (6, 6, 64, 250), (6, 6, 64, 256)):
            # the drawn zero point (not -128: the plain loops), then -128 (ReLU outputs: conv8, zero skipping)
            for zp_in in (lambda zp: max(zp, -127), lambda zp: -128):
                t = rounded_case(h, w, c, k, (1, 1), (1, 1), "same", False, zp_in)
                run = checked_run(image, t, "pz_conv2d_q8_m0")
                print(f"| {h}x{w}x{c} | {k} | {t['zp_in']} | {conv_weight_layout(t)} | {run.cycles:,} | "
                      f"{run.cycles / run.macs:.2f} |")


def dw_any_kernel() -> None:
    """See the module docstring (dw-any-kernel); weights in SRAM, warm XIP cache, outputs checked first."""
    from rp2040_sim.kernel_harness import ConvImage

    with tempfile.TemporaryDirectory() as tmp:
        image = ConvImage.build(tmp)
        print("| input h x w x C | kernel | stride | padding | MACs | cycles | cycles/MAC |")
        print("|---|---|---|---|---|---|---|")
        for h, w, c, kernel, stride, padding in ((12, 12, 16, (5, 5), (1, 1), "same"),
                                                 (12, 12, 16, (5, 5), (2, 2), "same"),
                                                 (9, 9, 12, (5, 5), (1, 1), "valid"),
                                                 (14, 14, 8, (7, 7), (1, 1), "same"),
                                                 (12, 12, 10, (3, 5), (1, 2), "valid"),
                                                 (12, 12, 16, (1, 1), (1, 1), "same"),
                                                 (12, 12, 16, (3, 3), (1, 1), "same")):
            run = checked_run(image, rounded_case(h, w, c, c, kernel, stride, padding, True), "pz_dwconv2d_q8_m0")
            print(f"| {h}x{w}x{c} | {kernel[0]}x{kernel[1]} | {stride[0]}, {stride[1]} | {padding} | {run.macs:,} | "
                  f"{run.cycles:,} | {run.cycles / run.macs:.2f} |")


def pw16_flash() -> None:
    """Pointwise convs (random zero points: the plain loop) in conv8 and pw16, weights and records in SRAM and in
    flash, and the layout conv_weight_layout gives them when the build leaves them in flash."""
    from compress import conv_layout
    from rp2040_sim.kernel_harness import ConvImage, conv_case, conv_weight_layout, timed_shifts
    from test_conv_requant import rounded
    from test_firmware_conv import q8_golden

    with tempfile.TemporaryDirectory() as tmp:
        image = ConvImage.build(tmp)
        print("| input h x w x C | K | conv8 bytes (+ 12 per channel of records) | pw16 bytes (records inside) | "
              "SRAM conv8 | SRAM pw16 | flash conv8 | flash pw16 | layout in flash |")
        print("|---|---|---|---|---|---|---|---|---|")
        for h, w, c, k in PW16_FLASH_CASES:
            t = conv_case(np.random.default_rng(0), h, w, c, k, (1, 1), (1, 1), "same", False)
            t["shift"] = timed_shifts(t["shift"])
            reduced = rounded(dict(t))
            per_mac = []
            for in_flash in (False, True):
                for layout in ("conv8", "pw16"):
                    run = image.call(reduced, "pz_conv2d_q8_m0", warm=True, layout=layout, weights_in_flash=in_flash)
                    np.testing.assert_array_equal(run.y, q8_golden(reduced))
                    per_mac.append(f"{run.cycles / run.macs:.2f}")
            s = reduced["shape"]
            chosen = conv_layout.conv_weight_layout(reduced["w"], (h, w, c), (s.out_h, s.out_w, k), (1, 1), (0, 0),
                                                    reduced["zp_in"], True, in_flash=True)
            assert conv_weight_layout(reduced) == "pw16"  # in SRAM
            print(f"| {h}x{w}x{c} | {k} | {conv_layout.conv8_bytes(k, 1, 1, c):,} | {conv_layout.pw16_bytes(k, c):,} | "
                  f"{' | '.join(per_mac)} | {chosen} |")


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


def measure_layers(model_dir: Path, out: Path, weights_in: str = "auto", cores: str = "auto",
                   ram_budget: int | None = None) -> dict:
    """Build, boot, then call every layer of the table on its own (same arena, same order as pz_infer) from the
    post-boot machine (rp2040_sim.eval.Harness: core 1 of a two-core build waits in its work loop and is brought to
    core 0's cycle count before each layer, so a split layer's cycles are core 0's until both halves are written, the
    slower core); then pz_infer once. Outputs checked against the golden model (int8) first."""
    from compress import reference
    from firmware import build as fwbuild
    from firmware import convgen
    from rp2040_sim.eval import Harness, read_build
    from rp2040_sim.runner import peak_stack
    from zoo import modeldir

    result = fwbuild.build(model_dir, out, images=1, weights_in=weights_in, quiet=True, force=True, cores=cores,
                           ram_budget=ram_budget)
    h = Harness(out, read_build(out))
    sim, elf = h.sim, h.image.elf
    sym = elf_symbols(out / "firmware.elf")
    n = sym["pz_layers"][1] // 24  # pz_layer: run, kind/in/out (3 x u16 + pad), w, b, aux
    h.restore()
    table = sim.read(sym["pz_layers"][0], 24 * n)
    io = struct.unpack(f"<{n + 1}I", sim.read(sym["pz_io"][0], 4 * (n + 1)))
    model = modeldir.load(model_dir)
    names = ["input scaling"] if "quantization" not in model.meta else []
    ops = convgen.network_ops(model, str(model_dir))[0]
    names += [f"layer {op.index} {op.op}" for op in ops]
    raw = bytes(sim.read(sym["pz_test_images"][0], sym["pz_input"][1]))
    sim.write(sym["pz_input"][0], raw)
    rows = []
    for i in range(n):
        run, kind, n_in, n_out, _pad, w, b, aux = struct.unpack("<IHHHHIII", table[24 * i:24 * i + 24])
        sim.set_regs(r0=sym["pz_layers"][0] + 24 * i, r1=io[i], r2=io[i + 1], sp=h.stack_top, lr=h.halt | 1)
        h.sync_core1()
        c0 = sim.state.cycles
        stop = sim.run(run & ~1 | 1)
        assert stop.kind == "halt", stop
        rows.append({"name": names[i], "kind": kind, "in": n_in, "out": n_out, "cycles": sim.state.cycles - c0})
    where = {f"layer {r['index']} {r['op']}": r["placement"] for r in result.size.get("weights_placement_layers", [])}
    for row in rows:
        row["weights"] = where.get(row["name"], "-")
    if "quantization" in model.meta:
        got = np.frombuffer(sim.read(h.output_addr, h.count), np.int8)
        want = reference.forward(model, np.frombuffer(raw, np.uint8)[None])[0]
        assert np.array_equal(got, want), "layer by layer outputs differ from compress.reference.forward"
    klass, _, infer, *_rest, stack = h.infer_one(np.frombuffer(raw, np.uint8))
    split = set(fwbuild.split_layers(model)) if result.build["cores"] == 2 else set()
    macs = {f"layer {op.index} {op.op}": (op.rows.work() if op.rows is not None else
                                         op.in_elems * op.out_elems if op.op == "dense" else 0) for op in ops}
    for row in rows:
        row["macs"] = macs.get(row["name"], 0)
        row["split"] = row["name"].startswith("layer ") and int(row["name"].split()[1]) in split
    return {"size": result.size, "cores": result.build["cores"], "rows": rows, "infer_cycles": infer,
            "peak_stack": stack, "boot_uart": h.boot_result.uart.splitlines()[0] if h.boot_result.uart else ""}


def print_layers(model_dir: Path, runs: dict) -> None:
    first = next(iter(runs.values()))
    for label, r in runs.items():
        size = r["size"]
        static = size["ram_static_bytes"]
        core1 = size["stack_reserved_bytes"] if r["cores"] == 2 else 0
        print(f"{model_dir} ({label}: {r['cores']} core(s)): arena {size['arena_bytes']} B, static RAM {static} B, "
              f"weights {size['weights_bytes']} B ({size['weights_placement']}); pz_infer {r['infer_cycles']} "
              f"cycles = {r['infer_cycles'] / CLOCK_HZ * 1e3:.1f} ms at 125 MHz; sum of layers "
              f"{sum(x['cycles'] for x in r['rows'])} cycles; peak RAM = static + core 0's peak stack "
              f"{r['peak_stack']} B{f' + core 1 stack reserve {core1} B' if core1 else ''} = "
              f"{static + r['peak_stack'] + core1} B")
    labels = list(runs)
    head = " | ".join(f"{lab}: weights | {lab}: cycles" for lab in labels)
    extra = " | speed-up" if len(labels) == 2 else ""
    print(f"\n| # | layer | in -> out elements | MACs | {head}{extra} |")
    print("|---|---|---|---|" + "---|---|" * len(labels) + ("---|" if extra else ""))
    for i, row in enumerate(first["rows"]):
        cyc = [runs[lab]["rows"][i]["cycles"] for lab in labels]
        mark = " (split)" if runs[labels[-1]]["rows"][i]["split"] else ""
        cells = " | ".join(f"{runs[lab]['rows'][i]['weights']} | {c:,}" for lab, c in zip(labels, cyc))
        sp = f" | {cyc[0] / cyc[1]:.2f}x" if extra else ""
        print(f"| {i} | {row['name']}{mark} | {row['in']} -> {row['out']} | {row['macs']:,} | {cells}{sp} |")
    tot = [runs[lab]["infer_cycles"] for lab in labels]
    sp = f" | {tot[0] / tot[1]:.2f}x" if extra else ""
    print(f"| | pz_infer (ms at 125 MHz) | | | {' | '.join(f' | {c:,} ({c / CLOCK_HZ * 1e3:.1f})' for c in tot)}{sp} |")


def layers(model_dir: Path, out: Path | None, weights_in: str = "auto", cores=("auto",),
           ram_budget: int | None = None) -> None:
    out = out or Path(tempfile.mkdtemp()) / "build"
    runs = {f"--cores {c}": measure_layers(model_dir, out.with_name(f"{out.name}-{c}"), weights_in, c, ram_budget)
            for c in cores}
    print_layers(model_dir, runs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("kernels")
    sub.add_parser("zero-skipping")
    sub.add_parser("pw16-flash")
    sub.add_parser("pw16-small")
    sub.add_parser("pw-any-k")
    sub.add_parser("dw-any-kernel")
    r = sub.add_parser("random-model")
    r.add_argument("name")
    r.add_argument("out", type=Path)
    r.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("layers")
    m.add_argument("model_dir", type=Path)
    m.add_argument("--out", type=Path)
    m.add_argument("--weights-in", choices=["auto", "flash", "ram"], default="auto")
    m.add_argument("--cores", nargs="+", choices=["auto", "1", "2"], default=["auto"],
                   help="build for each (e.g. --cores 1 2: one table, the speed-up per layer)")
    m.add_argument("--ram-budget", type=str, default=None, help="firmware.build --ram-budget (e.g. 64K)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    tables = {"kernels": kernels, "zero-skipping": zero_skipping, "pw16-flash": pw16_flash, "pw16-small": pw16_small,
              "pw-any-k": pw_any_k, "dw-any-kernel": dw_any_kernel}  # the subcommands without arguments
    if args.cmd in tables:
        tables[args.cmd]()
    elif args.cmd == "random-model":
        random_model(args.name, args.out, args.seed)
    else:
        from firmware.build import parse_bytes
        budget = parse_bytes(args.ram_budget) if args.ram_budget is not None else None
        layers(args.model_dir, args.out, args.weights_in, args.cores, budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
