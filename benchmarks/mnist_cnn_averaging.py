"""What parameter averaging gains on mnist_cnn: one training run of the registry recipe that also follows several
moving-average decays and the plain average of the last K epochs' parameters, each scored on the 10,000 test images.

`python benchmarks/mnist_cnn_averaging.py OUT [--layout 16,32,64] [--decays 0.998 0.9995 0.9998 0.9999]
[--epochs N] [--train-limit N]`

The run itself is `python -m zoo.train mnist_cnn` (seed 0; `--layout 16,32,32` swaps in the earlier conv widths), so
OUT holds the same model directory, byte for byte; the extra averages ride along through `after_step` and are
scored after every epoch (so its CPU time is above the plain command's). Prints one JSON line per epoch and a final
line with the snapshot averages (docs/BENCHMARKS.md "zoo: conv nets").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from zoo import data, train  # noqa: E402
from zoo.models import _conv_bn_relu, get_model  # noqa: E402
from zoo.nn import Dense, Dropout, Flatten, Input, ReLU, Sequential  # noqa: E402

SNAPSHOT_WINDOWS = (3, 5, 10, 15, 20)  # epochs averaged at the end (stochastic weight averaging)


def layout_spec(channels):
    """mnist_cnn's stride-2 layout with other conv widths (the registry's is 16, 32, 64)."""
    c1, c2, c3 = channels
    return Sequential([Input(28, 28, 1), *_conv_bn_relu(1, c1, stride=2), *_conv_bn_relu(c1, c2, stride=2),
                       *_conv_bn_relu(c2, c3, stride=2), Flatten(), Dropout(0.2), Dense(16 * c3, 64), ReLU(),
                       Dense(64, 10)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--layout", default="16,32,64", help="conv channels, e.g. 16,32,32 (the earlier design)")
    p.add_argument("--decays", type=float, nargs="+", default=[0.998, 0.9995, 0.9998, 0.9999])
    p.add_argument("--epochs", type=int)
    p.add_argument("--train-limit", type=int)
    a = p.parse_args(argv)
    cfg = get_model("mnist_cnn").with_overrides(epochs=a.epochs)
    channels = tuple(int(c) for c in a.layout.split(","))
    if channels != (16, 32, 64):
        cfg = cfg.with_overrides(spec=layout_spec(channels))
    ds = data.load(cfg.dataset)
    eval_step = train.make_eval_step(cfg, ds.input_scale, jnp.float32)
    rows = train.eval_rows(cfg, len(ds.y_test))
    extras, snapshots = [], []
    plain_run_epoch = train.run_epoch

    def run_epoch(step, params, opt_state, mesh, x, y, order, on_step, first_step, augment, after_step):
        if not extras:  # before the first step donates the initial parameters
            extras.extend(train.ParamAverage(d, params) for d in a.decays)

        def every_average(p):
            after_step(p)
            for average in extras:
                average.update(p)
        result = plain_run_epoch(step, params, opt_state, mesh, x, y, order, on_step, first_step, augment,
                                 every_average)
        snapshots.append(jax.tree.map(np.asarray, jax.device_get(result[0])))
        line = {"epoch": len(snapshots), "cpu_s": round(time.process_time(), 1)}
        for d, average in zip(a.decays, extras):
            line[f"ema_{d}"] = train.evaluate(eval_step, average.params, ds.x_test, ds.y_test, rows)[0]
        print(json.dumps(line), flush=True)
        return result

    train.run_epoch = run_epoch
    metrics, _ = train.train_and_evaluate(cfg, a.out, dataset=ds, train_limit=a.train_limit, progress=False)
    final = {"saved": metrics["test_accuracy"], "ema_decay": cfg.ema_decay,
             "last_step": metrics["history"][-1]["last_step_test_accuracy"]}
    for k in SNAPSHOT_WINDOWS:
        if k <= len(snapshots):
            mean = jax.tree.map(lambda *xs: np.mean(np.stack(xs), 0).astype(xs[0].dtype), *snapshots[-k:])
            final[f"mean_last_{k}_epochs"] = train.evaluate(eval_step, mean, ds.x_test, ds.y_test, rows)[0]
    print(json.dumps(final))
    return 0


if __name__ == "__main__":
    sys.exit(main())
