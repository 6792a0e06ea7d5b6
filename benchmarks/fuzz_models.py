"""Random whole conv networks through the pipeline a user runs, each stage as its command (docs/BENCHMARKS.md
"Random whole networks (fuzzing)"):

    python benchmarks/fuzz_models.py --count 40 --seed 1 [--keep DIR] [--dtype int8|float32|both] [--dw-kernels 3,5,7]

Each case draws a valid Sequential conv spec (an input of 1..32 x 1..32 x 1..16, or a (1, t, c) time series; 1-6
blocks of conv2d / depthwise_conv2d / max or avg pool, with batch_norm and relu / relu6 / no activation; then
global_avg_pool2d or flatten, an optional hidden dense, and a dense of 2..10 classes; at most MAX_MACS), random
params (BatchNorm with non-trivial statistics, as tests/random_models.py) and a small user data file of random
images (uint8 pixels, or float32 values for standard normalisation), saved as a float32 model directory. Then:

    python -m compress MODEL --quantize int8 --out MODEL/int8                 (int8 only)
    python -m firmware.build MODEL[/int8] --out BUILD --images 8 --cores C --weights-in W [--ram-budget B]
    python -m rp2040_sim eval BUILD --images 8 --jobs 1

with C, W and B drawn per case. A case is

- ok: the emulated chip agrees with the host on every image (agreement 1.0), int8 outputs bit-exact with compress's
  golden model (max_abs_output_diff 0), float32 outputs within 1e-4 of the largest host output (the float tests'
  tolerance, tests/test_firmware_conv_build.py)
- refused: a stage exited non-zero with an `error:` line and no traceback (listed, to be read: a refusal may be a bug)
- build failure: the cross compiler or linker failed
- wrong output: the chip's outputs or classes differ from the host's
- crash: a Python traceback, a fault in the emulator, or a signal
- hang: a stage still running after STAGE_TIMEOUT_S, or an emulated run past rp2040_sim's --timeout

Everything is drawn from numpy.random.default_rng((seed, case)): the same seed gives the same cases. The spec, the
data file, model, builds and commands of every case that is not ok stay in --keep DIR/case-<seed>-<n>/ (repro.sh
re-runs it from the repository root). A rerun replaces only case directories this script made (they hold
`.fuzz_models`); it stops with an error at any other of that name.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo import host, modeldir, userdata  # noqa: E402
from zoo.nn import (AvgPool2D, BatchNorm, Conv2D, Dense, DepthwiseConv2D, Flatten, GlobalAvgPool2D,  # noqa: E402
                    Input, MaxPool2D, ReLU, ReLU6, Sequential, SpecError)

MAX_MACS = 2_000_000            # keeps one case's build and 8 emulated inferences well under a minute
MAX_FLAT = 4096                 # features into the first dense after flatten
IMAGES = 8                      # test images per case, evaluated
BOOT_IMAGES = 2                 # built into the firmware and classified at boot (a float net's boot is slow)
EVAL_TIMEOUT_S = 300            # rp2040_sim eval --timeout: wall clock per image and for the boot
TRAIN_ROWS = 64                 # calibration rows of the user data file
STAGE_TIMEOUT_S = 600
FLOAT_TOL = 1e-4                # of the largest host output: tests/test_firmware_conv_build.py
CLASSES = ("ok", "refused", "build failure", "wrong output", "crash", "hang")


# -- drawing a spec ------------------------------------------------------------------------------------------
def _pick(rng, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _input(rng):
    if rng.random() < 0.15:                                      # a 1-D signal: (1, t, c)
        return Input(1, int(rng.integers(8, 65)), int(_pick(rng, [1, 2, 3, 6])))
    h = int(_pick(rng, [1, 2, 3, 5, 7, 8, 12, 15, 16, 17, 28, 31, 32]))
    w = h if rng.random() < 0.6 else int(rng.integers(1, 33))
    c = int(_pick(rng, [1, 1, 3, 3, 2, 4, 5, 8, 16]))
    return Input(h, w, c)


def _window(rng, shape, sizes):
    """(kernel, stride) pairs for an image of `shape`: 1-wide along an axis of size 1 (a time series)."""
    k, s = int(_pick(rng, sizes)), int(_pick(rng, [1, 1, 2]))
    kh, sh = (1, 1) if shape[0] == 1 else (k, s)
    return (kh, k), (sh, s)


def _block(rng, shape, dw_kernels=(3,)):
    """One block's layers for an input of `shape` (h, w, c), or [] when the draw does not fit; a depthwise layer's
    kernel size from dw_kernels."""
    c, layers = shape[2], []
    kind = _pick(rng, ["conv", "dw", "pool"], p=[0.5, 0.25, 0.25])
    pad = _pick(rng, ["same", "valid"])
    if kind == "conv":
        out = int(_pick(rng, [1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 24, 32, 48]))
        k, s = _window(rng, shape, [1, 3, 3, 5])
        layers.append(Conv2D(c, out, k, s, pad))
        c = out
    elif kind == "dw":
        k, s = _window(rng, shape, list(dw_kernels))
        layers.append(DepthwiseConv2D(c, k, s, pad))
    else:
        k, s = _window(rng, shape, [2, 3])
        if rng.random() < 0.5:
            layers.append(MaxPool2D(k, s, pad))
        else:
            layers.append(AvgPool2D(k, s, "valid"))
    if kind != "pool" and rng.random() < 0.4:
        layers.append(BatchNorm(c))
    # int8 fuses an activation into the weighted layer before it and refuses one after a pool (compress names it);
    # a few are drawn to keep that refusal covered
    act = _pick(rng, [ReLU, ReLU6, None], p=[0.5, 0.25, 0.25])
    if act is not None and (kind != "pool" or rng.random() < 0.1):
        layers.append(act())
    return layers


def draw_spec(rng, dw_kernels=(3,)) -> Sequential:
    """A valid spec of at most MAX_MACS (drawn again until one is)."""
    while True:
        layers = [_input(rng)]
        for _ in range(int(rng.integers(1, 7))):
            try:
                block = _block(rng, _shape(layers), dw_kernels)
                _shape(layers + block)
            except SpecError:
                continue                                         # e.g. a valid window larger than the image
            layers += block
        shape = _shape(layers)
        flat = rng.random() < 0.4 and int(np.prod(shape)) <= MAX_FLAT
        layers.append(Flatten() if flat else GlobalAvgPool2D())
        features = int(np.prod(shape)) if flat else shape[2]
        if rng.random() < 0.4:
            hidden = int(_pick(rng, [3, 8, 10, 16, 33]))
            layers += [Dense(features, hidden)]
            act = _pick(rng, [ReLU, ReLU6, None], p=[0.6, 0.15, 0.25])  # float refuses relu6 after a dense
            layers += [act()] if act else []
            features = hidden
        layers.append(Dense(features, int(rng.integers(2, 11))))
        try:
            spec = Sequential(layers)
        except SpecError:
            continue
        if spec.macs() <= MAX_MACS:
            return spec


def _shape(layers):
    """The output shape of an image prefix `layers` (SpecError when it does not chain)."""
    shape = layers[0].shape()
    for i, layer in enumerate(layers[1:], 1):
        shape = layer.out_shape(shape, i)
    return shape


# -- params and data -----------------------------------------------------------------------------------------
def random_params(spec, rng):
    """spec.init's params (seeded from rng), float32, with every BatchNorm given non-trivial statistics from rng
    (tests/random_models.batch_norm_statistics)."""
    import jax
    sys.path.insert(0, str(ROOT / "tests"))
    from random_models import batch_norm_statistics

    params = spec.init(jax.random.key(int(rng.integers(2**31))))
    return [{k: np.asarray(v, np.float32) for k, v in p.items()} for p in batch_norm_statistics(spec, params, rng)]


def write_data(path: Path, spec, rng, raw_float: bool):
    """A user .npz of random samples (uint8 pixels, or float32 values around 100 for `standard` normalisation)
    and labels over every class."""
    classes = spec.out_features
    shape = spec.input_shape
    arrays = {}
    for split, n in (("train", TRAIN_ROWS), ("test", IMAGES)):
        if raw_float:
            x = rng.normal(100, 30, (n, *shape)).astype(np.float32)
        else:
            x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        y = np.arange(n) % classes
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, rng.permutation(y).astype(np.int64)
    np.savez(path, **arrays)


def save_model(case_dir: Path, name: str, spec, rng, raw_float: bool) -> Path:
    data_file = case_dir / "data.npz"
    write_data(data_file, spec, rng, raw_float)
    ds = userdata.load_file(data_file, input_shape=spec.input_shape, n_classes=spec.out_features)
    meta = {"model": name, "dataset": userdata.USER_DATASET, "input": ds.normalization.to_meta(ds.features),
            "data": ds.source, "dtype": "float32", "seed": 0, "picozoo_version": "0.1.0"}
    model = case_dir / "model"
    modeldir.save(model, spec, random_params(spec, rng), meta)
    logits, pred = host.reference(modeldir.load(model), ds.x_test)   # the metrics later stages compare with
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    loss = float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(pred)), ds.y_test]))
    modeldir.write_json(model / modeldir.METRICS_FILE,
                        {"model": name, "dataset": userdata.USER_DATASET, "dtype": "float32", "seed": 0,
                         "test_accuracy": float(np.mean(pred == ds.y_test)), "test_loss": loss,
                         "params": spec.param_count()})
    return model


# -- running the stages --------------------------------------------------------------------------------------
def run_stage(cmd: list[str], log: list) -> tuple[str, str]:
    """(outcome, text): outcome "ok", "refused", "build failure", "crash" or "hang"; text its last lines."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    log.append(" ".join(cmd))
    try:
        p = subprocess.run([sys.executable, "-m", *cmd], cwd=ROOT, capture_output=True, text=True,
                           timeout=STAGE_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return "hang", f"still running after {STAGE_TIMEOUT_S} s"
    text = (p.stdout + p.stderr).strip()
    tail = "\n".join(text.splitlines()[-6:])
    if p.returncode == 0:
        return "ok", tail
    if "the wall-clock limit" in text:
        return "hang", tail
    if "Traceback (most recent call last)" in text or p.returncode < 0:
        return "crash", tail
    if "arm-none-eabi" in text and ("error:" in text.split("arm-none-eabi", 1)[1] or "undefined reference" in text):
        return "build failure", tail
    if cmd[0] == "rp2040_sim":
        return "crash", tail                                     # a fault or a refused boot of our own firmware
    return "refused", tail


def check_outputs(model_dir: Path, report: dict, int8: bool) -> str:
    """'' when the chip's outputs are the host's (within the float tolerance), else what differs."""
    if int8:
        if report["max_abs_output_diff"] != 0 or report["agreement_with_host"] != 1.0:
            return (f"max_abs_output_diff {report['max_abs_output_diff']}, agreement "
                    f"{report['agreement_with_host']} (disagreements {report['disagreements']})")
        return ""
    from zoo import data
    model = modeldir.load(model_dir)
    ds = data.load_for_model(model.meta)
    out, _ = host.reference(model, ds.x_test[:IMAGES])
    tol = FLOAT_TOL * max(float(np.max(np.abs(out))), 1e-30)
    if report["max_abs_output_diff"] > tol:
        return f"max_abs_output_diff {report['max_abs_output_diff']:.3g} > {tol:.3g}"
    if report["agreement_with_host"] != 1.0:
        top2 = np.sort(np.asarray(out, np.float64), axis=1)[:, -2:]
        gaps = top2[:, 1] - top2[:, 0]
        if all(gaps[i] <= 2 * report["max_abs_output_diff"] for i in report["disagreements"]):
            return ""                                            # a near-tie the float summation order decides
        return f"agreement {report['agreement_with_host']} (disagreements {report['disagreements']})"
    return ""


def draw_options(rng, int8: bool) -> list[str]:
    opts = ["--cores", _pick(rng, ["1", "2", "auto"]), "--weights-in", _pick(rng, ["auto", "flash", "ram"])]
    if rng.random() < (0.35 if int8 else 0.2):     # weights staged per layer or left in flash, or a clear refusal
        opts += ["--ram-budget", f"{int(rng.integers(16, 129))}K"]
    return opts


CASE_MARK = ".fuzz_models"  # in every case directory this script makes: a rerun may replace only those


class FuzzError(Exception):
    pass


def fresh_case_dir(case_dir: Path) -> Path:
    """An empty case directory: made, or an earlier run's copy of this very case (its CASE_MARK) replaced; a
    directory of that name the script did not make is left alone (FuzzError)."""
    if case_dir.exists():
        if not (case_dir / CASE_MARK).is_file():
            raise FuzzError(f"{case_dir} exists and was not made by benchmarks/fuzz_models.py (no {CASE_MARK}); "
                            f"move it away or give another --keep")
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    (case_dir / CASE_MARK).write_text("made by benchmarks/fuzz_models.py: a rerun of this case replaces it\n")
    return case_dir


def run_case(seed: int, n: int, dtypes: list[str], work: Path, spec=None, raw=None, options=None,
             dw_kernels=(3,)) -> list[dict]:
    """The case's runs, one per dtype; spec, raw ("uint8"/"float32") and options (build options) replace the
    drawn ones (to reproduce or reduce a case); dw_kernels: the depthwise kernel sizes drawn from."""
    rng = np.random.default_rng((seed, n))
    drawn = draw_spec(rng, dw_kernels)
    spec = spec or drawn
    raw_float = bool(rng.random() < 0.3) if raw is None else raw == "float32"
    name = f"fuzz_{seed}_{n}"
    case_dir = fresh_case_dir(work / f"case-{seed}-{n}")
    (case_dir / "spec.json").write_text(spec.to_json() + "\n")
    model = save_model(case_dir, name, spec, rng, raw_float)
    results = []
    for dtype in dtypes:
        int8 = dtype == "int8"
        opts = draw_options(rng, int8)
        opts = opts if options is None else options.split()
        row = {"case": n, "dtype": dtype, "spec": spec, "raw": "float32" if raw_float else "uint8",
               "options": " ".join(opts), "macs": spec.macs(), "dir": case_dir, "commands": []}
        results.append(row)
        variant = model
        t0 = time.perf_counter()
        if int8:
            variant = model / "int8"
            outcome, text = run_stage(["compress", str(model), "--quantize", "int8", "--quiet", "--out",
                                       str(variant)], row["commands"])
            if outcome != "ok":
                row.update(result=outcome, stage="compress", detail=text, seconds=time.perf_counter() - t0)
                continue
        build = case_dir / f"build-{dtype}"
        outcome, text = run_stage(["firmware.build", str(variant), "--out", str(build), "--images",
                                   str(BOOT_IMAGES), *opts], row["commands"])
        if outcome != "ok":
            row.update(result=outcome, stage="firmware.build", detail=text, seconds=time.perf_counter() - t0)
            continue
        outcome, text = run_stage(["rp2040_sim", "eval", str(build), "--images", str(IMAGES), "--jobs", "1",
                                   "--timeout", str(EVAL_TIMEOUT_S), "--no-progress"], row["commands"])
        if outcome != "ok":
            row.update(result=outcome, stage="rp2040_sim eval", detail=text, seconds=time.perf_counter() - t0)
            continue
        report = json.loads((build / "emulator.json").read_text())
        wrong = check_outputs(variant, report, int8)
        row.update(result="wrong output" if wrong else "ok", stage="" if not wrong else "compare", detail=wrong,
                   seconds=time.perf_counter() - t0, cycles=report["cycles_per_inference"]["mean"])
    return results


def describe(spec) -> str:
    """A compact one-line spec: 28x28x1 c3/2s16 bn relu mp2/2 gap d10."""
    parts = []
    for layer in spec.layers:
        d = layer.to_dict()
        t = d["type"]
        win = lambda k, s: (f"{k[0]}x{k[1]}" if k[0] != k[1] else f"{k[0]}") + (  # noqa: E731
            f"/{s[0]}x{s[1]}" if s[0] != s[1] else f"/{s[0]}")
        if t == "input":
            parts.append("x".join(map(str, d["shape"])))
        elif t == "conv2d":
            parts.append(f"c{win(d['kernel'], d['stride'])}{d['padding'][0]}{d['out']}")
        elif t == "depthwise_conv2d":
            parts.append(f"dw{win(d['kernel'], d['stride'])}{d['padding'][0]}")
        elif t in ("max_pool2d", "avg_pool2d"):
            parts.append(f"{t[0]}p{win(d['pool'], d['stride'])}{d['padding'][0]}")
        elif t == "dense":
            parts.append(f"d{d['out']}")
        else:
            parts.append({"batch_norm": "bn", "global_avg_pool2d": "gap", "flatten": "flat"}.get(t, t))
    return " ".join(parts)


def keep_case(rows: list[dict]):
    """Leave a case's directory (spec, data, model, builds) with repro.sh when a run is not ok, else remove it."""
    case_dir = rows[0]["dir"]
    bad = [r for r in rows if r["result"] != "ok"]
    if not bad:
        shutil.rmtree(case_dir)
        return
    (case_dir / "repro.sh").write_text(
        "# from the repository root (the model directory records the data file by its absolute path)\n"
        + "".join(f"python -m {c}\n" for r in bad for c in r["commands"]))
    (case_dir / "result.txt").write_text("".join(f"{r['dtype']}: {r['result']} at {r['stage']}\n{r['detail']}\n\n"
                                                 for r in bad))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=10, help="cases to draw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first", type=int, default=0, help="index of the first case (to resume a run)")
    p.add_argument("--keep", type=Path, help="directory for the cases that are not ok")
    p.add_argument("--dtype", choices=["int8", "float32", "both"], default="both")
    p.add_argument("--spec", type=Path, help="a spec JSON file to run instead of the drawn one (one case)")
    p.add_argument("--raw", choices=["uint8", "float32"], help="with --spec: the data's raw type")
    p.add_argument("--options", help="with --spec: the firmware.build options, e.g. '--cores 2 --weights-in ram'")
    p.add_argument("--dw-kernels", default="3",
                   help="depthwise kernel sizes to draw from, e.g. 3,5,7 (default 3: the runs in docs/BENCHMARKS.md)")
    a = p.parse_args(argv)
    try:
        dw_kernels = tuple(int(k) for k in a.dw_kernels.split(","))
    except ValueError:
        p.error(f"--dw-kernels {a.dw_kernels!r}: give kernel sizes separated by commas, e.g. 3,5,7")
    if not all(1 <= k <= 9 for k in dw_kernels):
        p.error(f"--dw-kernels {a.dw_kernels!r}: each size must be 1 to 9")
    given = Sequential.from_json(a.spec.read_text()) if a.spec else None
    dtypes = ["float32", "int8"] if a.dtype == "both" else [a.dtype]
    counts, rows = Counter(), []
    print("| case | dtype | spec | raw | options | MACs | result | stage | detail | cycles | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        work = a.keep.resolve() if a.keep else Path(tmp)
        for n in range(a.first, a.first + a.count):
            try:
                case_rows = run_case(a.seed, n, dtypes, work, given, a.raw, a.options, dw_kernels)
            except FuzzError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            if a.keep:
                keep_case(case_rows)
            for row in case_rows:
                counts[row["result"]] += 1
                rows.append(row)
                detail = row["detail"].replace("\n", " / ").replace("|", "\\|")[-300:]
                cycles = f"{row['cycles']:,.0f}" if "cycles" in row else ""
                print(f"| {n} | {row['dtype']} | {describe(row['spec'])} | {row['raw']} | {row['options']} | "
                      f"{row['macs']:,} | {row['result']} | {row['stage']} | {detail} | {cycles} | "
                      f"{row['seconds']:.0f} |", flush=True)
    print(f"\n{sum(counts.values())} runs of {a.count} cases (seed {a.seed}): "
          + ", ".join(f"{k} {counts[k]}" for k in CLASSES if counts[k]))
    return 0 if counts["ok"] + counts["refused"] == sum(counts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
