"""Functional JAX/optax training, data-parallel over every local device.

`python -m zoo.train NAME [--epochs --batch-size --lr --seed --dtype --data-dir --out]` trains a registry model,
evaluates it on the full test set and writes the model directory (docs/MODEL_FORMAT.md). The library entry point is
`train_and_evaluate(config, out_dir, ...)`, which tests call directly.

Data parallelism: a 1-D device mesh named "data"; params and optimizer state are replicated, each batch is sharded
along its first axis, and XLA inserts the gradient all-reduce. The same code runs on one CPU, on several
accelerators, and on several hosts after `jax.distributed.initialize()` (each process feeds its slice of the batch).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from zoo import __version__, data, modeldir, outputs
from zoo.models import ModelConfig, UnknownModelError, get_model

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
OUTPUT_FILES = (modeldir.MODEL_FILE, modeldir.METRICS_FILE, "training.png")
MAX_SEED = 2**32 - 1  # numpy's default_rng and jax.random.key both take it


class TrainingError(Exception):
    """Training that cannot go on (diverged, impossible batch layout); the message says what to change."""


# -- the maths ---------------------------------------------------------------------------------------------------
def loss_fn(cfg: ModelConfig, params, x, y):
    out = cfg.spec.apply(params, x)
    if cfg.loss == "mse":
        target = y.astype(out.dtype)[:, None] if cfg.spec.output == "binary" else jax.nn.one_hot(y, out.shape[-1])
        return jnp.mean((out - target) ** 2)
    if cfg.label_smoothing:
        targets = optax.smooth_labels(jax.nn.one_hot(y, out.shape[-1], dtype=out.dtype), cfg.label_smoothing)
        return jnp.mean(optax.softmax_cross_entropy(out, targets))
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))


def make_optimizer(cfg: ModelConfig, steps_per_epoch: int):
    if cfg.optimizer == "sgd":
        return optax.sgd(cfg.lr)
    total = max(cfg.epochs * steps_per_epoch, 2)
    warmup = min(steps_per_epoch, total // 2)
    schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, total, end_value=cfg.lr * 1e-3)
    return optax.adamw(schedule, weight_decay=cfg.weight_decay)


def make_train_step(cfg: ModelConfig, optimizer, input_scale, dtype):
    def train_step(params, opt_state, xb, yb):
        x = xb.astype(dtype) * input_scale
        loss, grads = jax.value_and_grad(lambda p: loss_fn(cfg, p, x, yb))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        correct = jnp.sum(cfg.spec.predict(params, x) == yb)
        return optax.apply_updates(params, updates), opt_state, loss, correct

    return jax.jit(train_step, donate_argnums=(0, 1))


def make_eval_step(cfg: ModelConfig, input_scale, dtype):
    """A jitted (mean loss, correct count) over a whole set; built once per training run."""
    def eval_step(params, xb, yb):
        x = xb.astype(dtype) * input_scale
        return loss_fn(cfg, params, x, yb), jnp.sum(cfg.spec.predict(params, x) == yb)

    return jax.jit(eval_step)


def evaluate(eval_step, params, x_raw, y):
    """(accuracy, mean loss) over the whole set."""
    loss, correct = eval_step(params, jnp.asarray(x_raw), jnp.asarray(y))
    return float(correct) / len(y), float(loss)


# -- data parallel layout ----------------------------------------------------------------------------------------
def make_mesh(batch_size: int) -> Mesh:
    """A 1-D mesh over as many devices as evenly split the batch (all of them for the usual powers of two)."""
    devices = jax.devices()
    n = math.gcd(batch_size, len(devices))
    if jax.process_count() > 1 and n != len(devices):
        raise TrainingError(f"--batch-size {batch_size} must be a multiple of the {len(devices)} devices across "
                            f"{jax.process_count()} hosts")
    return Mesh(np.array(devices[:n]), ("data",))


def shard_batch(mesh: Mesh, batch: np.ndarray):
    """Place a global batch (identical on every host) with its first axis split over the mesh."""
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    per_process = len(batch) // jax.process_count()
    local = batch[jax.process_index() * per_process:(jax.process_index() + 1) * per_process]
    return jax.make_array_from_process_local_data(sharding, local, batch.shape)


# -- the loop ----------------------------------------------------------------------------------------------------
def run_epoch(step, params, opt_state, mesh, x_train, y_train, order, on_step=lambda: None):
    """One pass over the batches listed in `order` (steps x batch indices); losses stay on device until the end."""
    losses, corrects = [], []
    for idx in order:
        params, opt_state, loss, correct = step(params, opt_state, shard_batch(mesh, x_train[idx]),
                                                shard_batch(mesh, y_train[idx]))
        losses.append(loss)
        corrects.append(correct)
        on_step()
    return params, opt_state, losses, corrects


# -- training ----------------------------------------------------------------------------------------------------
def train_and_evaluate(cfg: ModelConfig, out_dir: Path | None, *, seed: int = 0, dtype: str = "float32",
                       data_dir: Path | None = None, dataset: data.Dataset | None = None,
                       train_limit: int | None = None, progress: bool = True, force: bool = False):
    """Train `cfg`, evaluate on the full test set, save to `out_dir` (if given); returns (metrics, params).
    The output directory is checked before training (zoo/outputs.py); `force` replaces an earlier zoo.train output."""
    if dtype not in DTYPES:
        raise TrainingError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if not (isinstance(seed, (int, np.integer)) and 0 <= seed <= MAX_SEED):
        raise TrainingError(f"--seed {seed}: must be an integer from 0 to {MAX_SEED}")
    out = None
    if out_dir is not None:
        out = outputs.OutputDir(out_dir, "zoo.train", OUTPUT_FILES, inputs=[data_dir], force=force)
        out.check()
    ds = dataset or data.load(cfg.dataset, data_dir)
    x_train, y_train = ds.x_train[:train_limit], ds.y_train[:train_limit]
    batch = min(cfg.batch_size, len(x_train))
    steps_per_epoch = len(x_train) // batch  # the last partial batch is dropped so every step has the same shape

    with jax.enable_x64(dtype == "float64"):
        jdtype = DTYPES[dtype]
        mesh = make_mesh(batch)
        replicated = NamedSharding(mesh, PartitionSpec())
        params = jax.device_put(cfg.spec.init(jax.random.key(seed), jdtype), replicated)
        optimizer = make_optimizer(cfg, steps_per_epoch)
        opt_state = jax.device_put(optimizer.init(params), replicated)
        step = make_train_step(cfg, optimizer, ds.input_scale, jdtype)
        eval_step = make_eval_step(cfg, ds.input_scale, jdtype)
        rng = np.random.default_rng(seed)
        history = []
        start = time.perf_counter()
        with _ProgressBar(progress, cfg, steps_per_epoch) as bar:
            for epoch in range(1, cfg.epochs + 1):
                order = rng.permutation(len(x_train))[:steps_per_epoch * batch].reshape(steps_per_epoch, batch)
                params, opt_state, losses, corrects = run_epoch(step, params, opt_state, mesh, x_train, y_train,
                                                                order, bar.advance)
                train_loss = float(jnp.mean(jnp.stack(losses)))
                if not math.isfinite(train_loss):
                    raise TrainingError(f"{cfg.name}: training diverged at epoch {epoch} (loss {train_loss}); "
                                        f"lower --lr (now {cfg.lr}) or use --dtype float64")
                train_acc = float(jnp.sum(jnp.stack(corrects))) / (steps_per_epoch * batch)
                test_acc, test_loss = evaluate(eval_step, params, ds.x_test, ds.y_test)
                history.append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                                "test_loss": test_loss, "test_accuracy": test_acc})
                bar.epoch(epoch, train_loss, train_acc, test_acc)
        train_seconds = time.perf_counter() - start
        params = jax.tree.map(np.asarray, jax.device_get(params))

    metrics = {
        "model": cfg.name, "dataset": ds.name, "dtype": dtype, "seed": seed,
        "test_accuracy": history[-1]["test_accuracy"], "test_loss": history[-1]["test_loss"],
        "train_accuracy": history[-1]["train_accuracy"], "train_seconds": round(train_seconds, 3),
        "epochs": cfg.epochs, "batch_size": batch, "lr": cfg.lr, "optimizer": cfg.optimizer,
        "params": cfg.spec.param_count(), "devices": int(mesh.devices.size), "train_samples": len(x_train),
        "history": history,
    }
    if out is not None:
        meta = {"model": cfg.name, "dataset": ds.name, "input": {"scale": ds.input_scale, "features": ds.features},
                "dtype": dtype, "seed": seed, "picozoo_version": __version__}
        with out.staging() as tmp:
            modeldir.save(tmp, cfg.spec, params, meta, metrics)
            _plot_history(tmp / "training.png", cfg.name, history)
            out.commit(tmp)
    return metrics, params


class _ProgressBar(contextlib.AbstractContextManager):
    """A rich progress bar over all steps, its description showing the last epoch's loss and accuracies."""

    def __init__(self, enabled, cfg, steps_per_epoch):
        self.enabled, self.cfg, self.total = enabled, cfg, cfg.epochs * steps_per_epoch

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), transient=False)
            self.bar.start()
            self.task = self.bar.add_task(f"{self.cfg.name}", total=self.total)
        return self

    def advance(self):
        if self.enabled:
            self.bar.advance(self.task)

    def epoch(self, epoch, loss, train_acc, test_acc):
        if self.enabled:
            self.bar.update(self.task, description=f"{self.cfg.name} epoch {epoch}/{self.cfg.epochs} "
                                                   f"loss {loss:.4f} train {train_acc:.2%} test {test_acc:.2%}")

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False


def _plot_history(path: Path, name: str, history):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["test_loss"] for h in history], label="test")
    ax_loss.set(xlabel="epoch", ylabel="loss", title=f"{name} loss")
    ax_acc.plot(epochs, [h["train_accuracy"] for h in history], label="train")
    ax_acc.plot(epochs, [h["test_accuracy"] for h in history], label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title=f"{name} accuracy")
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def print_metrics(metrics, out_dir=None):
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{metrics['model']} ({metrics['dataset']}, {metrics['dtype']})")
    for key in ("test_accuracy", "test_loss", "params", "epochs", "train_seconds", "seed"):
        value = metrics[key]
        table.add_row(key, f"{value:.2%}" if key == "test_accuracy" else str(value))
    if out_dir:
        table.caption = f"saved to {out_dir}"
    Console().print(table)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.train", description="Train a zoo model and save it.")
    parser.add_argument("model", help="registry name, e.g. mnist_300 or xor")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--data-dir", type=Path, help="directory with the dataset's IDX files (plain or .gz)")
    parser.add_argument("--out", type=Path, help="output directory (default runs/NAME)")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier zoo.train output in --out (only the files it wrote)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for flag in ("epochs", "batch_size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.lr is not None and not args.lr > 0:
        parser.error(f"--lr must be positive, got {args.lr}")
    if not 0 <= args.seed <= MAX_SEED:
        parser.error(f"--seed must be 0 to {MAX_SEED}, got {args.seed}")
    try:
        cfg = get_model(args.model).with_overrides(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
        out = args.out or Path("runs") / cfg.name
        metrics, _ = train_and_evaluate(cfg, out, seed=args.seed, dtype=args.dtype, data_dir=args.data_dir,
                                        progress=not args.no_progress, force=args.force)
    except (UnknownModelError, data.DataError, TrainingError, outputs.OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_metrics(metrics, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
