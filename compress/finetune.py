"""Fine-tuning for the compression passes: masks applied through optax, a gradual pruning schedule, fake quantization.

Reuses zoo.train's pieces unchanged (`make_optimizer`, `make_train_step`, `make_eval_step`, `evaluate`, `make_mesh`,
`shard_batch`): the optimizer is `optax.chain(zoo optimizer, keep_masked())`, and QAT swaps the config's spec for a
`FakeQuantSpec` that has the same `apply`/`predict`/`output` surface.

- `keep_masked()` multiplies every update by a 0/1 mask held in its optax state, so a pruned weight (set to 0 when
  its mask is set) never moves again; AdamW's weight decay is part of the update, so it is masked too.
- The schedule is Zhu & Gupta (2017): s_t = s_f * (1 - (1 - t / T)^3), recomputed every `prune_every` steps over the
  first `ramp` fraction of the steps, then fixed masks for the rest (recovery fine-tuning).
- `augment_shift` N > 0 moves every training image by a random whole-pixel offset in [-N, N] on each axis (zeros
  shifted in), drawn afresh per image and step from the seed: a pruned MLP fine-tuned on MNIST otherwise overfits
  (longer fine-tuning lowers its test accuracy), and one pixel of jitter is enough to lift 92 %-sparse
  mnist_300_100 above its dense source (docs/COMPRESS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from zoo import train as zt


# -- masks through optax ------------------------------------------------------------------------------------------
class MaskState(NamedTuple):
    masks: Any  # same tree as params: 0/1 arrays


def keep_masked() -> optax.GradientTransformation:
    def init(params):
        return MaskState(jax.tree.map(jnp.ones_like, params))

    def update(updates, state, params=None):
        return jax.tree.map(lambda u, m: u * m.astype(u.dtype), updates, state.masks), state

    return optax.GradientTransformation(init, update)


def with_masks(opt_state, masks):
    """The chained optimizer state with its MaskState replaced (same tree structure, so no recompilation)."""
    inner, _ = opt_state
    return inner, MaskState(masks)


def apply_masks(params, masks):
    return jax.tree.map(lambda p, m: p * m.astype(p.dtype), params, masks)


# -- which weights go ---------------------------------------------------------------------------------------------
def _ones_like_tree(params):
    return [{k: np.ones(np.shape(v), np.float32) for k, v in p.items()} for p in params]


def zero_masks(params):
    """Masks that keep every weight that is exactly zero at zero (an earlier pruning), biases free."""
    return [{k: (np.asarray(v) != 0).astype(np.float32) if k == "w" else np.ones(np.shape(v), np.float32)
             for k, v in p.items()} for p in params]


def _weighted(spec):
    from compress.netspec import WEIGHTED, layer_dicts

    return [i for i, d in enumerate(layer_dicts(spec)) if d["type"] in WEIGHTED]


def magnitude_masks(spec, params, sparsity: float, scope: str = "global", kinds=None, within=None):
    """0/1 masks removing the `sparsity` fraction of weights (dense, conv2d, depthwise) with the smallest |w|
    (biases are kept).

    global: one ranking over every weight; layer: each layer loses the same fraction. Ties are broken by
    position (stable sort), so the count is exact and the result deterministic. `kinds` (layer types) limits the
    ranking to those layers; `within` (masks, e.g. structured ones) leaves its zeros out of the ranking and the
    count, so the fraction is of the weights `within` keeps, and the result keeps its zeros.
    """
    from compress.netspec import layer_dicts

    masks = _ones_like_tree(params) if within is None else [{k: np.array(v) for k, v in m.items()} for m in within]
    types = [d["type"] for d in layer_dicts(spec)]
    idx = [i for i in _weighted(spec) if kinds is None or types[i] in kinds]
    groups = [idx] if scope == "global" else [[i] for i in idx]
    for group in groups:
        if not group:
            continue
        mags = np.concatenate([np.abs(np.asarray(params[i]["w"], np.float64)).ravel() for i in group])
        live = np.concatenate([masks[i]["w"].ravel() for i in group]) != 0
        k = int(round(sparsity * int(live.sum())))
        flat = live.astype(np.float32)
        order = np.argsort(np.where(live, mags, -1.0), kind="stable")  # removed weights first, then by |w|
        flat[order[int((~live).sum()):][:k]] = 0
        offset = 0
        for i in group:
            shape = np.shape(params[i]["w"])
            masks[i]["w"] = flat[offset:offset + int(np.prod(shape))].reshape(shape)
            offset += int(np.prod(shape))
    return masks


# Structured pruning: whole hidden neurons of an MLP, whole filters/channels of a conv net (compress/structured.py).
def neuron_scores(spec, params):
    """{producer index: score per output channel / hidden neuron} (compress.structured.scores)."""
    from compress import netspec, structured

    return structured.scores(netspec.layer_dicts(spec), params)


def neuron_keep(spec, params, fraction: float, producers=None):
    """{producer index: bool keep-vector}: each group drops the `fraction` of its channels with the lowest score
    (only the groups whose producer type is in `producers`, when given)."""
    from compress import netspec, structured

    return structured.keep(netspec.layer_dicts(spec), params, fraction, producers)


def neuron_masks(spec, params, fraction: float, producers=None):
    from compress import netspec, structured

    dicts = netspec.layer_dicts(spec)
    return structured.masks(dicts, params, structured.keep(dicts, params, fraction, producers))


STRUCTURED_WITH_DENSE = ("conv2d",)  # --prune-dense: --structured removes conv filters only, dense weights go singly


def pruning_masks(spec, params, fc, step: int | None = None, ramp_steps: int = 1):
    """The masks of `fc`'s pruning at the schedule's `step` (None: the final targets): magnitude (unstructured),
    structured, or structured conv filters with unstructured dense weights (`fc.dense_prune`)."""
    def at(final):
        return final if step is None else zhu_gupta(step, ramp_steps, final)

    if not fc.structured:
        return magnitude_masks(spec, params, at(fc.prune), fc.scope)
    if fc.dense_prune is None:
        return neuron_masks(spec, params, at(fc.prune))
    masks = neuron_masks(spec, params, at(fc.prune), STRUCTURED_WITH_DENSE)
    return magnitude_masks(spec, params, at(fc.dense_prune), fc.scope, kinds=("dense",), within=masks)


def slice_neurons(spec, params, keep):
    """A smaller network without the removed channels (same function once they are masked to zero)."""
    from compress import netspec, structured

    dicts, params = structured.slice_channels(netspec.layer_dicts(spec), params, keep)
    return netspec.with_layers(spec, dicts), params


def zhu_gupta(step: int, ramp_steps: int, final: float, initial: float = 0.0) -> float:
    if step >= ramp_steps:
        return final
    return final + (initial - final) * (1.0 - step / ramp_steps) ** 3


# -- data augmentation -------------------------------------------------------------------------------------------
def image_side(features: int) -> int | None:
    """The side of a square image with `features` pixels, or None."""
    side = int(round(math.sqrt(features)))
    return side if side * side == features and side > 1 else None


def shift_images(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each row of x (n, side*side) moved by its own random (dy, dx) in [-max_shift, max_shift]^2, zero filled."""
    n, features = x.shape
    side = image_side(features)
    if side is None:
        raise ValueError(f"shift augmentation needs square images, got {features} features")
    m = max_shift
    padded = np.zeros((n, side + 2 * m, side + 2 * m), x.dtype)
    padded[:, m:m + side, m:m + side] = x.reshape(n, side, side)
    dy, dx = rng.integers(-m, m + 1, n), rng.integers(-m, m + 1, n)
    rows = (m - dy)[:, None] + np.arange(side)[None, :]  # output row r reads padded row r + m - dy
    cols = (m - dx)[:, None] + np.arange(side)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(n, features)


# -- fake quantization (QAT) --------------------------------------------------------------------------------------
def straight_through(x, q):
    return x + jax.lax.stop_gradient(q - x)


def fake_quant_weight(w):
    """Per-output-channel symmetric int8 rounding of a channel-last weight tensor (dense (in, out), conv2d HWIO,
    depthwise (kh, kw, C)) with a straight-through gradient."""
    amax = jax.lax.stop_gradient(jnp.max(jnp.abs(w), axis=tuple(range(w.ndim - 1)), keepdims=True))
    s = jnp.where(amax > 0, amax / 127.0, 1.0 / 127.0)
    return straight_through(w, jnp.clip(jnp.round(w / s), -127, 127) * s), s


def fake_quant_act(y, scale, zero_point):
    q = jnp.clip(jnp.round(y / scale) + zero_point, -128, 127)
    return straight_through(y, (q - zero_point) * scale)


@dataclass(frozen=True)
class FakeQuantSpec:
    """A Sequential's forward pass as the int8 model computes it (weights, bias and activations rounded)."""
    spec: Any
    ranges: tuple  # (scale, zero_point) of each dense layer's output
    input_scale: float

    @property
    def output(self):
        return self.spec.output

    def apply(self, params, x):
        from compress.netspec import FUSED_ACTIVATIONS, WEIGHTED

        layers, n, s_in = self.spec.layers, 0, self.input_scale
        fused = False
        for i, (layer, p) in enumerate(zip(layers, params)):
            if fused:  # the ReLU/ReLU6 was applied with the weighted layer before it
                fused = False
                continue
            if layer.kind not in WEIGHTED:
                x = layer.apply(p, x)
                continue
            w, s_w = fake_quant_weight(p["w"])
            bs = jax.lax.stop_gradient(s_w.reshape(-1) * s_in)
            x = layer.apply({"w": w, "b": straight_through(p["b"], jnp.round(p["b"] / bs) * bs)}, x)
            if i + 1 < len(layers) and layers[i + 1].kind in FUSED_ACTIVATIONS:
                x = layers[i + 1].apply({}, x)
                fused = True
            scale, zp = self.ranges[n]
            x = fake_quant_act(x, scale, zp)
            s_in, n = scale, n + 1
        return x

    def predict(self, params, x):
        return jnp.argmax(self.apply(params, x), axis=-1)


# -- distillation -------------------------------------------------------------------------------------------------
def make_distill_step(cfg, optimizer, input_scale, dtype, teacher, weight: float):
    """A jitted step like zoo.train's whose loss is `(1 - weight) * the recipe's loss + weight * cross-entropy
    against the teacher's softmax` (Hinton et al. 2015, temperature 1), the teacher `(spec, params)` seeing the same
    (augmented) batch. `(params, opt_state, xb, yb) -> (params, opt_state, loss, None)`."""
    from zoo.normalize import as_normalization

    spec, norm = cfg.spec, as_normalization(input_scale)
    teacher_spec, teacher_params = teacher

    def train_step(params, opt_state, t_params, xb, yb):
        x = norm.apply(xb, dtype, xp=jnp)
        soft = jax.nn.softmax(teacher_spec.apply(t_params, x), axis=-1)

        def objective(p):
            out = spec.apply(p, x)
            return ((1 - weight) * zt.loss_of_outputs(cfg, out, yb)
                    + weight * jnp.mean(optax.softmax_cross_entropy(out, soft)))

        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, None

    jitted = jax.jit(train_step, donate_argnums=(0, 1))
    return lambda params, opt_state, xb, yb: jitted(params, opt_state, teacher_params, xb, yb)


# -- the loop -----------------------------------------------------------------------------------------------------
@dataclass
class FinetuneConfig:
    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 128
    seed: int = 0
    train_limit: int | None = None
    prune: float | None = None  # target sparsity (weights) or neuron fraction (structured)
    structured: bool = False
    scope: str = "global"
    ramp: float = 0.6  # fraction of the steps over which sparsity ramps up
    prune_every: int = 50  # steps between mask updates during the ramp
    augment_shift: int = 0  # random whole-pixel shift of the training images, up to this many pixels (0: off)
    dense_prune: float | None = None  # with structured: conv filters go whole, dense weights singly to this sparsity
    distill: float = 0.0  # weight of the teacher's soft targets in the loss (0: the recipe's loss alone)


def finetune(cfg, params, ds, fc: FinetuneConfig, *, masks=None, qat_ranges=None, log=None):
    """Fine-tune `params` (list of dicts of numpy arrays); prune gradually if fc.prune; returns (params, masks, info).

    `masks` (0/1 tree) keeps an earlier pruning fixed (e.g. QAT of a pruned model); `qat_ranges` turns on fake
    quantization with those activation ranges. float64 models train in float64, as zoo.train does. `fc.distill`
    > 0 distils from the network as it comes in (cfg.spec with `params`: the source model, before any pruning).
    """
    is64 = any(np.asarray(p["w"]).dtype == np.float64 for p in params if "w" in p)
    with jax.enable_x64(is64):
        return _finetune(cfg, params, ds, fc, masks, qat_ranges, log)


def _finetune(cfg, params, ds, fc, masks, qat_ranges, log):
    teacher = (cfg.spec, jax.tree.map(jnp.asarray, params)) if fc.distill else None
    x_train, y_train = ds.x_train[:fc.train_limit], ds.y_train[:fc.train_limit]
    batch = min(fc.batch_size, len(x_train))
    spe = len(x_train) // batch
    total = fc.epochs * spe
    ramp_steps = max(1, int(fc.ramp * total))
    dtype = _param_dtype(params)
    run_cfg = cfg.with_overrides(lr=fc.lr, epochs=fc.epochs, batch_size=batch)
    if qat_ranges is not None:
        run_cfg = run_cfg.with_overrides(spec=FakeQuantSpec(cfg.spec, tuple(qat_ranges), ds.input_scale))
    mesh = zt.make_mesh(batch)
    replicated = NamedSharding(mesh, PartitionSpec())
    optimizer = optax.chain(zt.make_optimizer(run_cfg, spe), keep_masked())
    masks = masks if masks is not None else _ones_like_tree(params)
    params = apply_masks(jax.tree.map(jnp.asarray, params), masks)
    params = jax.device_put(params, replicated)
    opt_state = jax.device_put(with_masks(optimizer.init(params), jax.tree.map(jnp.asarray, masks)), replicated)
    step_fn = (make_distill_step(run_cfg, optimizer, ds.input_scale, dtype, teacher, fc.distill) if teacher
               else zt.make_train_step(run_cfg, optimizer, ds.input_scale, dtype))
    rng = np.random.default_rng(fc.seed)
    augment_rng = np.random.default_rng([fc.seed, 1])  # its own stream: the batch order does not depend on it
    schedule = []
    t = 0
    for epoch in range(1, fc.epochs + 1):
        order = rng.permutation(len(x_train))[:spe * batch].reshape(spe, batch)
        losses = []
        for idx in order:
            if fc.prune and t <= ramp_steps and (t % fc.prune_every == 0 or t == ramp_steps):
                target = zhu_gupta(t, ramp_steps, fc.prune)
                host_params = jax.tree.map(np.asarray, jax.device_get(params))
                masks = pruning_masks(cfg.spec, host_params, fc, t, ramp_steps)
                jm = jax.device_put(jax.tree.map(jnp.asarray, masks), replicated)
                params = apply_masks(params, jm)
                opt_state = with_masks(opt_state, jm)
                schedule.append((t, round(target, 6)))
            xb = x_train[idx]
            if fc.augment_shift:
                xb = shift_images(xb, fc.augment_shift, augment_rng)
            params, opt_state, loss, _ = step_fn(params, opt_state, zt.shard_batch(mesh, xb),
                                                 zt.shard_batch(mesh, y_train[idx]))
            losses.append(loss)
            t += 1
        train_loss = float(jnp.mean(jnp.stack(losses)))
        if not math.isfinite(train_loss):
            raise zt.TrainingError(f"fine-tuning diverged at epoch {epoch} (loss {train_loss}); lower --lr "
                                   f"(now {fc.lr})")
        if log:
            log(f"epoch {epoch}/{fc.epochs} loss {train_loss:.4f}")
    if fc.prune and ramp_steps >= total:  # the ramp did not finish inside the run: apply the final masks now
        host_params = jax.tree.map(np.asarray, jax.device_get(params))
        masks = pruning_masks(cfg.spec, host_params, fc)
        params = apply_masks(params, jax.tree.map(jnp.asarray, masks))
        schedule.append((t, fc.prune))
    params = jax.tree.map(np.asarray, jax.device_get(params))
    info = {"epochs": fc.epochs, "steps": total, "lr": fc.lr, "batch_size": batch, "seed": fc.seed,
            "train_samples": len(x_train), "mask_updates": len(schedule), "ramp_steps": ramp_steps,
            "augment_shift": fc.augment_shift}
    if fc.dense_prune is not None:
        info["dense_prune"] = fc.dense_prune
    if fc.distill:
        info["distill"] = fc.distill
    return params, masks, info


def _param_dtype(params):
    for p in params:
        if "w" in p:
            return jnp.asarray(p["w"]).dtype
    return jnp.float32
