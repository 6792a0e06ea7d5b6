"""Functional JAX/optax training, data-parallel over every local device.

`python -m zoo.train NAME [--epochs --batch-size --lr --seed --dtype --data-dir --out]` trains a registry model,
evaluates it on the full test set and writes the model directory (docs/MODEL_FORMAT.md); `--data FILE` (with
`--normalize`, `--label-column`, `--test-file`, `--test-fraction`) trains it on the user's own data (docs/DATA.md);
`--spec FILE` (a spec .json or a .py defining `model`, zoo/specfile.py) trains a network of the user's own instead
of a registry model. The library entry point is
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

from zoo import __version__, classnames, data, modeldir, outputs, specfile, userdata
from zoo.models import ModelConfig, UnknownModelError, get_model
from zoo.normalize import MODES as NORMALIZE_MODES, Normalization as NormalizationType, as_normalization

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
OUTPUT_FILES = (modeldir.MODEL_FILE, modeldir.METRICS_FILE, "training.png", userdata.ARRAYS_FILE)
MAX_SEED = 2**32 - 1  # numpy's default_rng and jax.random.key both take it


class TrainingError(Exception):
    """Training that cannot go on (diverged, impossible batch layout); the message says what to change."""


# -- the maths ---------------------------------------------------------------------------------------------------
# Precision: training runs JAX's default matmul/conv precision (full float32 on CPUs; TF32 on recent NVIDIA GPUs,
# which is fine for gradients); evaluation uses HIGHEST so that the figures saved in metrics.json are true float32
# on every device and agree with the NumPy host model (docs/MODEL_FORMAT.md).
EVAL_PRECISION = "highest"  # jax.default_matmul_precision: every dot and conv traced inside, any spec
EVAL_ACTIVATION_BYTES = 1 << 27  # rows per evaluation call: the widest activation of a chunk stays under 128 MiB


def loss_of_outputs(cfg: ModelConfig, out, y):
    if cfg.loss == "mse":
        target = y.astype(out.dtype)[:, None] if cfg.spec.output == "binary" else jax.nn.one_hot(y, out.shape[-1])
        return jnp.mean((out - target) ** 2)
    if cfg.label_smoothing:
        targets = optax.smooth_labels(jax.nn.one_hot(y, out.shape[-1], dtype=out.dtype), cfg.label_smoothing)
        return jnp.mean(optax.softmax_cross_entropy(out, targets))
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))


def classes(cfg: ModelConfig, out):
    if cfg.spec.output == "binary":
        return (out[..., 0] > 0.5).astype(jnp.int32)
    return jnp.argmax(out, axis=-1)


def loss_fn(cfg: ModelConfig, params, x, y):
    """Inference-mode loss (BatchNorm running statistics, no dropout)."""
    return loss_of_outputs(cfg, cfg.spec.apply(params, x), y)


def make_optimizer(cfg: ModelConfig, steps_per_epoch: int):
    if cfg.optimizer == "sgd":
        return optax.sgd(cfg.lr)
    total = max(cfg.epochs * steps_per_epoch, 2)
    warmup = min(steps_per_epoch, total // 2)
    schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, total, end_value=cfg.lr * 1e-3)
    return optax.adamw(schedule, weight_decay=cfg.weight_decay)


def make_train_step(cfg: ModelConfig, optimizer, input_scale, dtype, seed: int = 0):
    """One jitted step `(params, opt_state, xb, yb, step=0) -> (params, opt_state, loss, correct)`.

    Training mode threads functional state: BatchNorm normalises with the batch statistics and returns its advanced
    running statistics, which replace the optimizer's (gradient-free) values for those leaves; Dropout draws from a
    key folded from the seed and the step number, so runs are reproducible. A spec without a training mode (e.g.
    compress's fake-quantized view) runs its `apply`."""
    spec = cfg.spec
    has_train_mode = hasattr(spec, "apply_train")
    norm = as_normalization(input_scale)  # a float: raw uint8 * scale, as always (zoo/normalize.py)

    def train_step(params, opt_state, xb, yb, step):
        x = norm.apply(xb, dtype, xp=jnp)
        rng = jax.random.fold_in(jax.random.key(seed), step)

        def objective(p):
            out, new_params = spec.apply_train(p, x, rng) if has_train_mode else (spec.apply(p, x), p)
            return loss_of_outputs(cfg, out, yb), (out, new_params)

        (loss, (out, new_params)), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if has_train_mode:
            params = jax.tree.map(lambda is_state, p, s: s if is_state else p, spec.state_mask(params), params,
                                  new_params)
        correct = jnp.sum(classes(cfg, out) == yb)
        return params, opt_state, loss, correct

    jitted = jax.jit(train_step, donate_argnums=(0, 1))
    return lambda params, opt_state, xb, yb, step=0: jitted(params, opt_state, xb, yb, np.int32(step))


class ParamAverage:
    """The exponential moving average of every parameter leaf, weights and BatchNorm running statistics alike
    (ModelConfig.ema_decay): `update(params)` after each step moves it by (1 - decay) of the way to them, in one
    jitted call that reuses the old average's buffers. It starts from a copy of the initial parameters (the step
    donates those)."""

    def __init__(self, decay: float, params):
        if not 0 < decay < 1:
            raise TrainingError(f"ema_decay {decay}: must be in (0, 1) to average (0 switches averaging off)")
        rate = 1.0 - decay
        self._step = jax.jit(lambda avg, p: jax.tree.map(lambda a, x: a + rate * (x - a), avg, p),
                             donate_argnums=0)
        self.params = jax.tree.map(lambda x: x.copy(), params)

    def update(self, params):
        self.params = self._step(self.params, params)


def make_eval_step(cfg: ModelConfig, input_scale, dtype):
    """A jitted (mean loss, correct count) over a chunk of rows, at full float32 precision; built once per run."""
    norm = as_normalization(input_scale)

    def eval_step(params, xb, yb):
        x = norm.apply(xb, dtype, xp=jnp)
        with jax.default_matmul_precision(EVAL_PRECISION):
            out = cfg.spec.apply(params, x)
        return loss_of_outputs(cfg, out, yb), jnp.sum(classes(cfg, out) == yb)

    return jax.jit(eval_step)


def eval_rows(cfg: ModelConfig, n: int) -> int:
    """Rows per evaluation call: all of them for MLPs, chunks for image nets with big activations."""
    widest = max(math.prod(shape) for shape in [cfg.spec.input_shape, *cfg.spec.output_shapes()])
    return max(1, min(n, EVAL_ACTIVATION_BYTES // (4 * widest)))


def evaluate(eval_step, params, x_raw, y, rows: int | None = None):
    """(accuracy, mean loss) over the whole set, `rows` at a time."""
    rows = rows or len(y)
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), rows):
        loss, c = eval_step(params, jnp.asarray(x_raw[start:start + rows]), jnp.asarray(y[start:start + rows]))
        if rows >= len(y):
            return float(c) / len(y), float(loss)
        loss_sum += float(loss) * len(y[start:start + rows])
        correct += int(c)
    return correct / len(y), loss_sum / len(y)


# -- augmentation ------------------------------------------------------------------------------------------------
def shift_images(x: np.ndarray, shape: tuple, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each row of x (n, h*w*c) moved by its own random whole-pixel (dy, dx) in [-max_shift, max_shift]^2, zero
    filled (the same augmentation as compress's --augment-shift, for any (h, w, c))."""
    n = len(x)
    h, w, c = shape
    m = max_shift
    padded = np.zeros((n, h + 2 * m, w + 2 * m, c), x.dtype)
    padded[:, m:m + h, m:m + w] = x.reshape(n, h, w, c)
    dy, dx = rng.integers(-m, m + 1, n), rng.integers(-m, m + 1, n)
    rows = (m - dy)[:, None] + np.arange(h)[None, :]  # output row r reads padded row r + m - dy
    cols = (m - dx)[:, None] + np.arange(w)[None, :]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]].reshape(n, -1)


def rotate_images(x: np.ndarray, shape: tuple, max_degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Each row of x (n, h*w*c) turned about the image centre by its own random angle in [-max_degrees,
    max_degrees], sampled bilinearly (float32), zero outside; integer data is rounded back to its dtype."""
    n = len(x)
    h, w, c = shape
    theta = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n)).astype(np.float32)[:, None, None]
    cy, cx = np.float32((h - 1) / 2), np.float32((w - 1) / 2)
    dy, dx = np.mgrid[0:h, 0:w].astype(np.float32) - np.array([cy, cx], np.float32)[:, None, None]
    # output pixel (r, c) reads the input at the centre + its offset turned back by theta
    src_y = np.cos(theta) * dy - np.sin(theta) * dx + cy
    src_x = np.sin(theta) * dy + np.cos(theta) * dx + cx
    y0, x0 = np.floor(src_y), np.floor(src_x)
    fy, fx = (src_y - y0)[..., None], (src_x - x0)[..., None]
    # a one-pixel zero border: a corner outside the image is clipped onto it and reads 0
    padded = np.zeros((n, h + 2, w + 2, c), np.float32)
    padded[:, 1:h + 1, 1:w + 1] = x.reshape(n, h, w, c)
    pixels = padded.reshape(-1, c)
    row0, col0 = y0.astype(np.int64) + 1, x0.astype(np.int64) + 1  # padded coordinates of the top-left corner
    image = (np.arange(n) * (h + 2) * (w + 2))[:, None, None]
    top, bottom = (image + np.clip(r, 0, h + 1) * (w + 2) for r in (row0, row0 + 1))
    left, right = (np.clip(q, 0, w + 1) for q in (col0, col0 + 1))
    out = ((1 - fy) * ((1 - fx) * pixels[top + left] + fx * pixels[top + right])
           + fy * ((1 - fx) * pixels[bottom + left] + fx * pixels[bottom + right]))
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(x.dtype).reshape(n, -1)


def flip_images(x: np.ndarray, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Each row of x (n, h*w*c) mirrored left-right with probability 1/2 (clothes are; digits are not)."""
    n = len(x)
    images = x.reshape(n, *shape)
    flip = rng.random(n) < 0.5
    return np.where(flip[:, None, None, None], images[:, :, ::-1], images).reshape(n, -1)


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
def run_epoch(step, params, opt_state, mesh, x_train, y_train, order, on_step=lambda: None, first_step=0,
              augment=lambda xb: xb, after_step=None):
    """One pass over the batches listed in `order` (steps x batch indices); losses stay on device until the end.
    `after_step(params)` sees each step's new parameters (the averaging), before the next step donates them."""
    losses, corrects = [], []
    for k, idx in enumerate(order):
        params, opt_state, loss, correct = step(params, opt_state, shard_batch(mesh, augment(x_train[idx])),
                                                shard_batch(mesh, y_train[idx]), first_step + k)
        if after_step is not None:
            after_step(params)
        losses.append(loss)
        corrects.append(correct)
        on_step()
    return params, opt_state, losses, corrects


# -- training ----------------------------------------------------------------------------------------------------
def train_and_evaluate(cfg: ModelConfig, out_dir: Path | None, *, seed: int = 0, dtype: str = "float32",
                       data_dir: Path | None = None, dataset: data.Dataset | None = None,
                       train_limit: int | None = None, progress: bool = True, force: bool = False,
                       class_names: list[str] | None = None):
    """Train `cfg`, evaluate on the full test set, save to `out_dir` (if given); returns (metrics, params).
    The output directory is checked before training (zoo/outputs.py); `force` replaces an earlier zoo.train output.
    `dataset` (e.g. `zoo.userdata.load_file(path)` or `zoo.userdata.from_arrays(...)`) replaces the registry
    model's dataset; its normalisation and source file are recorded in the model directory (docs/DATA.md), and
    from_arrays data (no file) is written there as `data.npz` so that later stages can reload it.
    `class_names` (default: the dataset's `class_names`, if it has them) go into the metadata and metrics.json."""
    if dtype not in DTYPES:
        raise TrainingError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if not (isinstance(seed, (int, np.integer)) and 0 <= seed <= MAX_SEED):
        raise TrainingError(f"--seed {seed}: must be an integer from 0 to {MAX_SEED}")
    out = None
    if out_dir is not None:
        source = dataset.source["path"] if dataset is not None and dataset.source else None
        out = outputs.OutputDir(out_dir, "zoo.train", OUTPUT_FILES, inputs=[data_dir, source], force=force)
        out.check()
    augment = _augmenter(cfg, seed)
    ds = dataset or data.load(cfg.dataset, data_dir)
    if ds.features != cfg.spec.in_features:
        raise TrainingError(f"{cfg.name}: the model takes {cfg.spec.in_features} input values per sample, the data "
                            f"has {ds.features}")
    class_names = class_names if class_names is not None else getattr(ds, "class_names", None)
    if class_names is not None:
        try:
            class_names = classnames.check(class_names, classnames.n_classes(cfg.spec), f"{cfg.name}: class names")
        except classnames.ClassNamesError as e:
            raise TrainingError(str(e)) from None
    train_limit = train_limit if train_limit is not None else cfg.train_limit
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
        step = make_train_step(cfg, optimizer, ds.input_scale, jdtype, seed)
        average = ParamAverage(cfg.ema_decay, params) if cfg.ema_decay else None
        eval_step = make_eval_step(cfg, ds.input_scale, jdtype)
        rows = eval_rows(cfg, len(ds.y_test))
        rng = np.random.default_rng(seed)
        history = []
        start = time.perf_counter()
        with _ProgressBar(progress, cfg, steps_per_epoch) as bar:
            for epoch in range(1, cfg.epochs + 1):
                order = rng.permutation(len(x_train))[:steps_per_epoch * batch].reshape(steps_per_epoch, batch)
                params, opt_state, losses, corrects = run_epoch(step, params, opt_state, mesh, x_train, y_train,
                                                                order, bar.advance, (epoch - 1) * steps_per_epoch,
                                                                augment, average and average.update)
                train_loss = float(jnp.mean(jnp.stack(losses)))
                if not math.isfinite(train_loss):
                    raise TrainingError(f"{cfg.name}: training diverged at epoch {epoch} (loss {train_loss}); "
                                        f"lower --lr (now {cfg.lr}) or use --dtype float64")
                train_acc = float(jnp.sum(jnp.stack(corrects))) / (steps_per_epoch * batch)
                kept = average.params if average else params  # what is evaluated and saved
                test_acc, test_loss = evaluate(eval_step, kept, ds.x_test, ds.y_test, rows)
                history.append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                                "test_loss": test_loss, "test_accuracy": test_acc})
                if average:  # the last step's parameters too, to show what the averaging gains
                    history[-1]["last_step_test_accuracy"] = evaluate(eval_step, params, ds.x_test, ds.y_test,
                                                                      rows)[0]
                bar.epoch(epoch, train_loss, train_acc, test_acc)
        train_seconds = time.perf_counter() - start
        params = jax.tree.map(np.asarray, jax.device_get(average.params if average else params))

    metrics = {
        "model": cfg.name, "dataset": ds.name, "dtype": dtype, "seed": seed,
        "test_accuracy": history[-1]["test_accuracy"], "test_loss": history[-1]["test_loss"],
        "train_accuracy": history[-1]["train_accuracy"], "train_seconds": round(train_seconds, 3),
        "epochs": cfg.epochs, "batch_size": batch, "lr": cfg.lr, "optimizer": cfg.optimizer,
        "params": cfg.spec.param_count(), "devices": int(mesh.devices.size), "train_samples": len(x_train),
        "augment_shift": cfg.augment_shift, "augment_flip": cfg.augment_flip,
        "augment_rotate": cfg.augment_rotate, "history": history,
    }
    if cfg.ema_decay:
        metrics["ema_decay"] = cfg.ema_decay
    if ds.source:
        metrics["data_file"] = ds.source["path"]
    if class_names is not None:
        metrics["class_names"] = class_names
    if out is not None:
        meta = {"model": cfg.name, "dataset": ds.name, "input": _input_meta(ds),
                "dtype": dtype, "seed": seed, "picozoo_version": __version__}
        if ds.source:
            meta["data"] = ds.source
        if class_names is not None:
            meta["class_names"] = class_names
        with out.staging() as tmp:
            if ds.name == userdata.USER_DATASET and not ds.source:  # from_arrays: later stages need a file
                final = Path(out_dir).resolve() / userdata.ARRAYS_FILE
                meta["data"] = {"path": str(final), **userdata.save_npz(tmp / userdata.ARRAYS_FILE, ds)}
                metrics["data_file"] = str(final)
            modeldir.save(tmp, cfg.spec, params, meta, metrics)
            _plot_history(tmp / "training.png", cfg.name, history)
            out.commit(tmp)
    return metrics, params


def _input_meta(ds: data.Dataset) -> dict:
    """The model directory's `input`: {scale, features} for the named datasets (as always); with the user's data
    also the raw dtype and the fitted normalisation (docs/MODEL_FORMAT.md)."""
    if ds.name != userdata.USER_DATASET and not isinstance(ds.input_scale, NormalizationType):
        return {"scale": ds.input_scale, "features": ds.features}
    return ds.normalization.to_meta(ds.features)


def _augmenter(cfg: ModelConfig, seed: int):
    """The per-batch augmentation of the recipe (identity without one): turns, shifts, then mirroring, each with its
    own generator, so switching one on leaves the batch order and the others' draws unchanged."""
    shape = cfg.spec.input_shape
    steps = []
    if cfg.augment_shift:
        if len(shape) != 3 or cfg.augment_shift * 4 > min(shape[:2]):
            raise TrainingError(f"{cfg.name}: augment_shift {cfg.augment_shift} needs image input at least "
                                f"{4 * cfg.augment_shift} pixels wide; the spec's input is {shape}")
        shift_rng = np.random.default_rng([seed, 1])
        steps.append(lambda xb: shift_images(xb, shape, cfg.augment_shift, shift_rng))
    if cfg.augment_rotate:
        if len(shape) != 3:
            raise TrainingError(f"{cfg.name}: augment_rotate turns images; the spec's input is {shape}, not "
                                f"(height, width, channels)")
        rotate_rng = np.random.default_rng([seed, 3])
        steps.insert(0, lambda xb: rotate_images(xb, shape, cfg.augment_rotate, rotate_rng))
    if cfg.augment_flip:
        if len(shape) != 3:
            raise TrainingError(f"{cfg.name}: augment_flip mirrors images; the spec's input is {shape}, not "
                                f"(height, width, channels)")
        flip_rng = np.random.default_rng([seed, 2])
        steps.append(lambda xb: flip_images(xb, shape, flip_rng))

    def augment(xb):
        for step in steps:
            xb = step(xb)
        return xb
    return augment


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


# -- the user's data on the command line (zoo.train and zoo.import) -------------------------------------------------
def add_data_arguments(parser):
    """--data FILE and its options (docs/DATA.md)."""
    parser.add_argument("--data", type=Path, metavar="FILE",
                        help="your own data: an .npz (x_train, y_train, x_test, y_test[, class_names]), a .csv with "
                             "a header row, or a directory of IDX files (docs/DATA.md)")
    parser.add_argument("--normalize", choices=NORMALIZE_MODES,
                        help="input normalisation fitted on the training split (default: scale for uint8 data, "
                             "standard = per-feature mean/std otherwise)")
    userdata.add_csv_arguments(parser)


def load_data_argument(args, spec) -> data.Dataset | None:
    """The Dataset of --data (validated against the spec's input shape and outputs), or None without --data."""
    if args.data is None:
        for flag in ("normalize", "label_column", "test_file", "test_fraction"):
            if getattr(args, flag) is not None:
                raise data.DataError(f"--{flag.replace('_', '-')} applies to --data FILE only")
        return None
    n_classes = 2 if spec.output == "binary" else spec.out_features
    return userdata.load_file(args.data, input_shape=spec.input_shape, n_classes=n_classes,
                              normalize=args.normalize, label_column=args.label_column, test_file=args.test_file,
                              test_fraction=args.test_fraction, seed=getattr(args, "seed", 0) or 0)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.train", description="Train a zoo model and save it.")
    parser.add_argument("model", nargs="?", help="registry name, e.g. mnist_300 or xor (or give --spec)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--data-dir", type=Path, help="directory with the dataset's IDX files (plain or .gz)")
    add_data_arguments(parser)
    parser.add_argument("--out", type=Path, help="output directory (default runs/NAME)")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier zoo.train output in --out (only the files it wrote)")
    parser.add_argument("--no-progress", action="store_true")
    # -- your own network (zoo/specfile.py) and the recipe's other fields ------------------------------------------
    own = parser.add_argument_group("your own network (docs/API.md)")
    own.add_argument("--spec", type=Path, help="a spec .json (docs/MODEL_FORMAT.md) or a .py file defining `model` "
                                               "(a zoo.nn.Sequential) and optionally `recipe`; the .py is executed")
    own.add_argument("--name", help="the model's name (default: the spec file's name without its suffix)")
    own.add_argument("--dataset", choices=data.DATASETS, help="a built-in dataset to train a --spec model on")
    own.add_argument("--optimizer", choices=["adam", "sgd"])
    own.add_argument("--weight-decay", type=float)
    own.add_argument("--label-smoothing", type=float)
    own.add_argument("--augment-shift", type=int)
    own.add_argument("--augment-rotate", type=float, metavar="DEGREES",
                     help="turn training images by a random angle up to this many degrees either way")
    own.add_argument("--augment-flip", action="store_true", default=None,
                     help="mirror training images left-right at random (for clothes, not for digits)")
    own.add_argument("--ema-decay", type=float, metavar="DECAY",
                     help="save the moving average of the parameters, e.g. 0.999 (0: the last step's, as saved "
                          "without it)")
    own.add_argument("--class-names", type=classnames.parse, metavar="A,B,C",
                     help="a name per class in label order (default: the data's class_names, if any)")
    args = parser.parse_args(argv)
    for flag in ("epochs", "batch_size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.lr is not None and not args.lr > 0:
        parser.error(f"--lr must be positive, got {args.lr}")
    if not 0 <= args.seed <= MAX_SEED:
        parser.error(f"--seed must be 0 to {MAX_SEED}, got {args.seed}")
    if args.data is not None and args.data_dir is not None:
        parser.error("give --data FILE (your own data) or --data-dir DIR (the registry dataset's files), not both")
    if (args.model is None) == (args.spec is None):
        parser.error("give a registry model name or --spec FILE (one of them)")
    if args.spec is None and (args.name or args.dataset):
        parser.error("--name and --dataset go with --spec (a registry model has its own)")
    if args.spec is not None and (args.dataset is None) == (args.data is None):
        parser.error("--spec needs the data to train on: --data FILE (your own) or --dataset NAME (built in), "
                     "one of them")
    overrides = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                     weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
                     augment_shift=args.augment_shift, augment_flip=args.augment_flip,
                     augment_rotate=args.augment_rotate, ema_decay=args.ema_decay)
    try:
        if args.spec is not None:  # the user's network: its spec decides what the data must look like
            spec_file = specfile.load(args.spec)
            dataset = load_data_argument(args, spec_file.model)
            cfg = spec_file.config(args.name, dataset.name if dataset else args.dataset, **overrides)
            if dataset is None:
                dataset = data.load(cfg.dataset, args.data_dir)
                specfile.check_data(cfg, dataset, f"--spec {args.spec} with --dataset {args.dataset}")
        else:
            specfile.check_recipe({k: v for k, v in overrides.items() if v is not None}, "command line")
            cfg = get_model(args.model).with_overrides(**overrides)
            dataset = load_data_argument(args, cfg.spec)
        out = args.out or Path("runs") / cfg.name
        metrics, _ = train_and_evaluate(cfg, out, seed=args.seed, dtype=args.dtype, data_dir=args.data_dir,
                                        dataset=dataset, progress=not args.no_progress, force=args.force,
                                        class_names=args.class_names)
    except (UnknownModelError, data.DataError, TrainingError, outputs.OutputError, specfile.SpecFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_metrics(metrics, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
