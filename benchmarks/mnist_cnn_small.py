"""The small mnist_cnn variant (issue 11: <= 12 KB of model bytes at >= 99.4 %) from any trained conv net, in one
command: half the last conv's filters cut first (--cut-last-conv, written to the float model directory OUT-cut),
then conv filters removed whole (--structured), the dense head pruned singly to the sparsity that fits the byte
budget (--prune-dense), int8.

`python benchmarks/mnist_cnn_small.py MODEL_DIR OUT [--budget 12288] [--cut-last-conv 0.5] [--filters 0.375]
[--share 7] [--distill W] [--epochs 30] [--lr 2e-3] [--seed S] [--train-limit N] [--calib-images N] [--dry-run]`

Why the cut: `--structured` removes the same fraction of every conv, and mnist_cnn's 16/32/64 filters at ~12 KB
would keep 7/14/28; cutting the 64 to 32 first keeps 10/20/20, 0.2 points better (docs/BENCHMARKS.md).

The dense sparsity is not a fixed number, so the recipe follows a retrained or reshaped source: after removing the
fraction `--filters` of every conv layer's filters (a count that depends only on the channel counts), every byte
but the dense layers' entries is known (conv weights, biases and scales; per dense layer its column lengths, biases
and scales: compress/footprint.py), and each non-zero dense weight costs at most 2 bytes (an entry of the pairs
format; compress picks dense storage for a layer only when that is smaller). The sparsity is chosen so that this
bound meets the budget, so model_bytes <= budget whatever the training does; the script checks it at the end.
Prints the compress command it runs and the resulting metrics (model_bytes, int8 and float-view accuracy).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compress import cli, footprint, layout, netspec, structured  # noqa: E402
from compress.finetune import STRUCTURED_WITH_DENSE  # noqa: E402
from zoo import modeldir  # noqa: E402

SPARSE_ENTRY_BYTES = 2  # int8 weight + uint8 index delta (compress/layout.py, "pairs")
SHARED_FILLER_RESERVE = 0.02  # code3 gaps over 31 take filler entries: 8 per 4,813 weights in the trained mnist_cnn


def folded(model_dir: Path, cut_last_conv: float = 0.0):
    """(layer dicts, params, the loaded model) of `model_dir` with BatchNorm folded and, with `cut_last_conv`, that
    fraction of the last conv layer's filters removed (compress.structured's score)."""
    model = modeldir.load(model_dir)
    spec, params = netspec.for_inference(model.spec, [dict(p) for p in model.params])
    dicts = netspec.layer_dicts(spec)
    if cut_last_conv:
        last = [i for i, d in enumerate(dicts) if d["type"] == "conv2d"][-1]
        keep = structured.keep(dicts, params, cut_last_conv, STRUCTURED_WITH_DENSE)
        dicts, params = structured.slice_channels(dicts, params, {last: keep[last]})
    return dicts, params, model


def write_cut(model_dir: Path, cut_last_conv: float, out: Path) -> float:
    """The float model directory compress starts from: `model_dir` with its last conv cut; returns its accuracy."""
    from zoo import eval as zoo_eval
    dicts, params, model = folded(model_dir, cut_last_conv)
    modeldir.save(out, netspec.to_spec(dicts), params, model.meta,
                  {"model": model.meta.get("model"), "from": str(model_dir), "cut_last_conv": cut_last_conv})
    accuracy = zoo_eval.evaluate_dir(out)["test_accuracy"]
    metrics = json.loads((out / modeldir.METRICS_FILE).read_text())
    modeldir.write_json(out / modeldir.METRICS_FILE, {**metrics, "test_accuracy": accuracy})
    return accuracy


def dense_sparsity(model_dir: Path, filters: float, budget: int, share: int | None = None,
                   cut_last_conv: float = 0.0) -> tuple[float, dict]:
    """(the --prune-dense sparsity whose byte bound meets `budget`, the plan's figures). With `share` the dense
    layers are counted in code3 storage: one byte per entry, with SHARED_FILLER_RESERVE of the entries set aside
    for fillers (an estimate, not a bound: main checks the result)."""
    dicts, params, _ = folded(model_dir, cut_last_conv)
    keep = structured.keep(dicts, params, filters, STRUCTURED_WITH_DENSE)
    sliced, _ = structured.slice_channels(dicts, params, keep)
    fixed, dense_weights = 0, 0
    for d in sliced:
        if d["type"] == "conv2d":  # stored dense: OHWI int8 weights + per-channel bias, multiplier, shift
            fixed += footprint.INT8_LAYER_BYTES["conv2d"]({}, np.zeros((d["out"], *d["kernel"], d["in"])))["total"]
        elif d["type"] == "depthwise_conv2d":
            fixed += footprint.INT8_LAYER_BYTES["depthwise_conv2d"](
                {}, np.zeros((*d["kernel"], d["channels"])))["total"]
        elif d["type"] == "dense":  # everything but the entries: column lengths, biases, scales
            fixed += layout.int8_layer_bytes(np.zeros((d["out"], d["in"]), np.int8),
                                             "shared" if share else "sparse")["total"]
            dense_weights += d["in"] * d["out"]
    entries = (int((budget - fixed) / (1 + SHARED_FILLER_RESERVE)) if share
               else (budget - fixed) // SPARSE_ENTRY_BYTES)
    if entries < 1:
        raise SystemExit(f"error: {model_dir}: with --filters {filters} the conv layers and the dense layers' "
                         f"fixed parts already take {fixed} bytes of the {budget}-byte budget; raise --filters")
    sparsity = min(0.99, 1 - entries / dense_weights)
    if sparsity <= 0:
        raise SystemExit(f"error: {model_dir}: --filters {filters} leaves room for every dense weight "
                         f"({fixed} + {SPARSE_ENTRY_BYTES} x {dense_weights} bytes <= {budget}); lower --filters")
    sparsity = math.ceil(sparsity * 1000) / 1000  # a round figure on the safe side
    channels = {str(i): int(v.sum()) for i, v in keep.items()}
    return sparsity, {"fixed_bytes": fixed, "dense_weights": dense_weights, "max_entries": int(entries),
                      "channels_kept": channels}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--budget", type=int, default=12288, help="model_bytes at most (default 12288 = 12 KiB)")
    # With the last conv cut by half first, 0.375 keeps 10/20/20 of mnist_cnn's 16/32/64 filters; uniform removal
    # alone (--cut-last-conv 0 --filters 0.5625: 7/14/28) measured 0.2 points lower (docs/BENCHMARKS.md)
    p.add_argument("--filters", type=float, default=0.375, help="fraction of each conv layer's filters removed")
    p.add_argument("--cut-last-conv", type=float, default=0.5, metavar="FRACTION",
                   help="first remove this fraction of the last conv layer's filters, into the float model "
                        "directory OUT-cut that compress starts from (0: none)")
    p.add_argument("--share", type=int, metavar="LEVELS",
                   help="trained weight sharing of the dense head (code3 storage: 1 byte per weight), e.g. 7")
    p.add_argument("--distill", type=float, metavar="WEIGHT",
                   help="fine-tune against the source model's outputs too (compress --distill), e.g. 0.5")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int)
    p.add_argument("--train-limit", type=int, help="fine-tune on the first N training images (quick checks)")
    p.add_argument("--calib-images", type=int, help="int8 calibration images (default: compress's)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the command, run nothing")
    a = p.parse_args(argv)
    if not 0 <= a.cut_last_conv < 1:
        raise SystemExit(f"error: --cut-last-conv {a.cut_last_conv}: must be in [0, 1)")
    sparsity, plan = dense_sparsity(a.model_dir, a.filters, a.budget, a.share, a.cut_last_conv)
    source = a.out.with_name(a.out.name + "-cut") if a.cut_last_conv else a.model_dir
    if a.cut_last_conv and not a.dry_run:
        if source.exists():
            raise SystemExit(f"error: {source}: already exists (an earlier run's cut model?); remove it or choose "
                             f"another OUT")
        plan["cut_model_accuracy"] = write_cut(a.model_dir, a.cut_last_conv, source)
    args = [str(source), "--structured", "--prune", str(a.filters), "--prune-dense", str(sparsity),
            "--augment-shift", "1", "--epochs", str(a.epochs), "--lr", str(a.lr), "--quantize", "int8",
            *(["--share", str(a.share)] if a.share else []),
            *(["--distill", str(a.distill)] if a.distill is not None else []),
            *(["--seed", str(a.seed)] if a.seed is not None else []),
            *(["--train-limit", str(a.train_limit)] if a.train_limit else []),
            *(["--calib-images", str(a.calib_images)] if a.calib_images else []), "--out", str(a.out)]
    print(json.dumps({"budget": a.budget, "filters": a.filters, "dense_sparsity": sparsity, **plan}))
    print("python -m compress " + " ".join(args), flush=True)
    if a.dry_run:
        return 0
    rc = cli.main(args)
    if rc:
        return rc
    m = json.loads((a.out / modeldir.METRICS_FILE).read_text())
    print(json.dumps({k: m[k] for k in ("model_bytes", "test_accuracy", "float_test_accuracy", "storage")}))
    if m["model_bytes"] > a.budget:
        print(f"error: {a.out}: model_bytes {m['model_bytes']} > budget {a.budget} (more code3 fillers than "
              f"reserved); re-run with --budget {2 * a.budget - m['model_bytes']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
