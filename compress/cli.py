"""`python -m compress MODEL_DIR [--prune S] [--structured] [--augment-shift N] [--quantize int8]
[--qat | --share LEVELS] --out DIR`.

Reads a float model directory, prunes (magnitude, gradual, fine-tuned; or whole hidden neurons) and/or quantizes
to int8 (post-training, fake-quant fine-tuning with --qat, or trained weight sharing with --share: at most LEVELS
non-zero values per layer, fine-tuned with fake quantization, stored as 3-bit codes), and writes a model directory
in the same contract
(docs/MODEL_FORMAT.md, "Compressed variants"). The library entry point is `compress_model(model_dir, options)`.
Nothing is written unless everything succeeded: the files are staged under a temporary name and renamed into --out;
an existing output is replaced only with --force, and only the files compress wrote (zoo/outputs.py).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compress import finetune as ft
from compress import footprint, layout, netspec, quantize, reference, share, structured
from zoo import __version__, data, host, modeldir, outputs
from zoo.models import MODELS, ModelConfig
from zoo.train import TrainingError

QUANT_SCHEMES = ("int8",)


class CompressError(Exception):
    """Bad input or an impossible request; the message names the file or value and the fix."""


@dataclass
class Options:
    out: Path
    prune: float | None = None
    structured: bool = False
    prune_dense: float | None = None  # with --structured: conv filters whole, dense weights singly to this sparsity
    distill: float | None = None  # pruning fine-tune: weight of the source model's soft targets in the loss
    scope: str = "global"
    quantize: str | None = None
    qat: bool = False
    share: int | None = None  # non-zero weight values per layer (trained weight sharing, compress/share.py)
    share_epochs: int = 3
    share_lr: float = 1e-3
    augment_shift: int = 0  # fine-tune on training images shifted by up to this many pixels (compress/finetune.py)
    epochs: int | None = None  # pruning fine-tune epochs (default 20)
    qat_epochs: int = 3
    lr: float | None = None  # pruning fine-tune peak learning rate (default 1e-3)
    qat_lr: float = 1e-4
    seed: int | None = None  # default: the model's training seed
    calib_images: int = 10000
    train_limit: int | None = None
    data_dir: Path | None = None
    label_smoothing: float | None = None  # override the registry recipe's (fine-tuning loss must match training's)
    force: bool = False
    log: object = field(default=None, repr=False)


def validate(model_dir: Path, opts: Options):
    """Every check that needs no training, so bad input fails before any work."""
    if opts.prune is not None and not (0 < opts.prune < 1):
        raise CompressError(f"--prune {opts.prune}: the sparsity must be between 0 and 1 (exclusive), "
                            f"e.g. --prune 0.9 for 90 % zero weights")
    if opts.quantize is not None and opts.quantize not in QUANT_SCHEMES:
        raise CompressError(f"--quantize {opts.quantize!r}: unknown scheme; supported: {', '.join(QUANT_SCHEMES)}")
    if opts.structured and opts.prune is None:
        raise CompressError("--structured needs --prune FRACTION (the fraction of hidden neurons to remove)")
    if opts.prune_dense is not None:
        if not (0 < opts.prune_dense < 1):
            raise CompressError(f"--prune-dense {opts.prune_dense}: the dense layers' sparsity must be between 0 and "
                                f"1 (exclusive), e.g. --prune-dense 0.8 for 80 % zero dense weights")
        if not opts.structured:
            raise CompressError(f"--prune-dense {opts.prune_dense} goes with --structured --prune FRACTION (conv "
                                f"filters removed whole, dense weights singly); for unstructured pruning alone use "
                                f"--prune SPARSITY")
    if opts.distill is not None:
        if not (0 < opts.distill <= 1):
            raise CompressError(f"--distill {opts.distill}: the weight of the source model's soft targets must be in "
                                f"(0, 1], e.g. --distill 0.5 (half the recipe's loss, half the teacher's)")
        if opts.prune is None:
            raise CompressError(f"--distill {opts.distill} fine-tunes the pruned network against the source model; "
                                f"give --prune (plain --quantize does not train)")
    if opts.qat and opts.quantize is None:
        raise CompressError("--qat needs --quantize int8 (it fine-tunes with int8 fake quantization)")
    if opts.share is not None:
        if opts.quantize is None:
            raise CompressError(f"--share {opts.share} needs --quantize int8 (the shared values are int8 weights)")
        if not (1 <= opts.share <= layout.SHARED_LEVELS):
            raise CompressError(f"--share {opts.share}: the number of shared values per layer must be 1 to "
                                f"{layout.SHARED_LEVELS} (a 3-bit code, code 0 is zero), e.g. --share 7")
        if opts.qat:
            raise CompressError("--share fine-tunes with int8 fake quantization already; drop --qat")
    if opts.prune is None and opts.quantize is None:
        raise CompressError("nothing to do: give --prune SPARSITY and/or --quantize int8")
    if opts.scope not in ("global", "layer"):
        raise CompressError(f"--scope {opts.scope!r}: use global or layer")
    for name in ("epochs", "qat_epochs", "share_epochs", "calib_images", "train_limit"):
        value = getattr(opts, name)
        if value is not None and value < 1:
            raise CompressError(f"--{name.replace('_', '-')} {value}: must be at least 1")
    if opts.label_smoothing is not None and not (0 <= opts.label_smoothing < 1):
        raise CompressError(f"--label-smoothing {opts.label_smoothing}: must be in [0, 1)")
    for name in ("lr", "qat_lr", "share_lr"):
        value = getattr(opts, name)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise CompressError(f"--{name.replace('_', '-')} {value}: must be a positive number")
    if opts.seed is not None and not 0 <= opts.seed <= modeldir.MAX_SEED:
        raise CompressError(f"--seed {opts.seed}: must be 0 to {modeldir.MAX_SEED}")
    if opts.augment_shift < 0:
        raise CompressError(f"--augment-shift {opts.augment_shift}: must be 0 (off) or a number of pixels, e.g. 1")
    if opts.augment_shift and not (opts.prune is not None or opts.qat or opts.share):
        raise CompressError(f"--augment-shift {opts.augment_shift} applies to fine-tuning; give --prune, --qat or "
                            f"--share (plain --quantize int8 does not train)")
    try:
        output_dir(model_dir, opts).check()
    except outputs.OutputError as e:
        raise CompressError(str(e)) from None
    model = modeldir.load(model_dir)
    path = model_dir / modeldir.MODEL_FILE
    if "quantization" in model.meta:
        raise CompressError(f"{path} is already quantized ({model.meta['quantization'].get('scheme')}); compress "
                            f"the float model it came from ({model.meta.get('compression', {}).get('from', '?')})")
    if opts.prune is not None and "sparsity" in model.meta:
        raise CompressError(f"{path} is already pruned (sparsity {model.meta['sparsity'].get('weights')}); "
                            f"prune the float model it came from ({model.meta.get('compression', {}).get('from')}),"
                            f" or only --quantize this one")
    dicts = netspec.layer_dicts(model.spec)
    if opts.quantize:
        try:
            quantize.check_supported(model.spec, str(path))
        except quantize.QuantizationError as e:
            raise CompressError(str(e)) from None
    if opts.qat or opts.share is not None:  # fake quantization assumes the uint8 input (docs/DATA.md)
        try:
            quantize.check_fake_quant_input(model.meta, str(path))
        except quantize.QuantizationError as e:
            raise CompressError(str(e)) from None
    if opts.share is not None and "dense" not in {d["type"] for d in dicts}:
        raise CompressError(f"{path}: --share {opts.share} shares the values of dense layers (its code3 storage is a "
                            f"dense kernel), and this model has none; use --prune and/or --qat")
    dicts_inf = netspec.layer_dicts(netspec.for_inference(model.spec, model.params)[0])
    shape = netspec.in_shape(dicts)
    side = _image_side(shape)
    if opts.augment_shift and (side is None or opts.augment_shift * 4 > side):
        what = f"{shape[0]} features" if len(shape) == 1 else f"input shape {shape}"
        raise CompressError(f"{path}: --augment-shift {opts.augment_shift} needs square images at least "
                            f"{4 * opts.augment_shift} pixels wide (one channel), and this model takes {what}; "
                            f"use --augment-shift 0 for non-image inputs")
    groups = structured.groups(dicts_inf)
    if opts.structured and not groups:
        raise CompressError(f"{path}: --structured removes hidden neurons or conv filters, and this model has no "
                            f"hidden layer or conv layer feeding another; use unstructured --prune")
    if opts.prune_dense is not None:
        conv_groups = [g for g in groups if dicts_inf[g.producer]["type"] in ft.STRUCTURED_WITH_DENSE]
        if not conv_groups or "dense" not in {d["type"] for d in dicts_inf}:
            raise CompressError(f"{path}: --prune-dense {opts.prune_dense} prunes the dense layers of a conv net "
                                f"whose conv filters --structured removes, and this model has "
                                f"{'no conv layer feeding another' if not conv_groups else 'no dense layer'}; use "
                                f"--structured --prune FRACTION or --prune SPARSITY alone")
    return model


def output_dir(model_dir: Path, opts: Options) -> outputs.OutputDir:
    """--out: never the input or a directory holding it; a variant may nest inside its source model's directory
    (the README's layout); an earlier compress output there is replaced only with --force (zoo/outputs.py)."""
    return outputs.OutputDir(opts.out, "compress", (modeldir.MODEL_FILE, modeldir.METRICS_FILE),
                             inputs=[model_dir, opts.data_dir], force=opts.force, nested_ok=True)


def _image_side(shape):
    """The side of a square one-channel image input ((h, w, 1) or h*w features), or None."""
    if len(shape) == 3:
        return shape[0] if shape[0] == shape[1] and shape[2] == 1 else None
    return ft.image_side(int(shape[0]))


def _config(model) -> ModelConfig:
    name = model.meta.get("model")
    if name in MODELS and MODELS[name].spec.to_json() == model.spec.to_json():
        return MODELS[name]
    return ModelConfig(name or "model", model.spec, dataset=model.meta["dataset"])


def _weight_count(spec) -> int:
    """Weights of the dense, conv2d and depthwise layers (biases and BatchNorm not counted)."""
    return sum(math.prod(layer.param_shapes()["w"]) for layer in spec.layers if layer.weighted)


def _sparsity(spec, params) -> dict:
    layers, zeros, count = {}, 0, 0
    for i, d in enumerate(netspec.layer_dicts(spec)):
        if d["type"] in netspec.WEIGHTED:
            w = np.asarray(params[i]["w"])
            layers[str(i)] = round(float(np.mean(w == 0)), 6)
            zeros += int(np.sum(w == 0))
            count += w.size
    return {"weights": round(zeros / count, 6), "layers": layers, "nonzero_weights": count - zeros,
            "weight_count": count}


def _test_loss(spec, out, y):
    """The test loss zoo.train reports: mean squared error for a binary output, cross-entropy for logits."""
    if spec.output == "binary":
        return float(np.mean((np.asarray(out, np.float64)[:, 0] - y) ** 2))
    return _xent(np.asarray(out, np.float64), y)


def _xent(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


def _after_max_pools(spec) -> int:
    """ReLU/ReLU6 layers right after a max_pool2d (dropout aside): those netspec.hoist_activations moves."""
    types = [layer.kind for layer in spec.layers if layer.kind != "dropout"]
    return sum(t in netspec.FUSED_ACTIVATIONS and u == "max_pool2d" for u, t in zip(types, types[1:]))


def compress_model(model_dir: Path, opts: Options):
    """Run the passes and write opts.out; returns the metrics dict."""
    model_dir = Path(model_dir)
    model = validate(model_dir, opts)
    log = opts.log or (lambda msg: None)
    ds = data.load_for_model(model.meta, opts.data_dir)  # a named dataset, or the user's file (docs/DATA.md)
    labels = int(max(np.max(ds.y_train), np.max(ds.y_test))) + 1
    if model.spec.output == "logits" and labels > model.spec.out_features:  # the test loss indexes one per label
        raise CompressError(f"{model_dir}: the model has {model.spec.out_features} outputs but its dataset "
                            f"{model.meta.get('dataset')!r} has labels 0..{labels - 1}; a logits model needs one "
                            f"output per class: give its last dense layer {labels} outputs and retrain it")
    cfg = _config(model).with_overrides(label_smoothing=opts.label_smoothing)
    seed = model.meta.get("seed", 0) if opts.seed is None else opts.seed
    spec, params = netspec.for_inference(model.spec, [dict(p) for p in model.params])
    meta = {k: model.meta[k] for k in ("model", "dataset", "data", "input", "dtype", "seed", "class_names")
            if k in model.meta}
    meta["picozoo_version"] = __version__
    steps = []
    compression = {"from": str(model_dir), "source_test_accuracy": model.metrics.get("test_accuracy"), "steps": steps}
    sparsity_meta = model.meta.get("sparsity")
    folded = [d["type"] for d in netspec.layer_dicts(model.spec) if d["type"] in ("batch_norm", "dropout")]
    moved = _after_max_pools(model.spec) - _after_max_pools(spec)
    if folded or moved:  # the int8 and pruning passes and the firmware see the inference network
        steps.append({"pass": "inference", "batch_norm_folded": folded.count("batch_norm"),
                      "dropout_removed": folded.count("dropout"),
                      **({"activations_moved_before_max_pools": moved} if moved else {})})
    cfg = cfg.with_overrides(spec=spec)

    if opts.prune is not None:
        fc = ft.FinetuneConfig(epochs=opts.epochs or 20, lr=opts.lr or 1e-3, seed=seed,
                               train_limit=opts.train_limit, prune=opts.prune, structured=opts.structured,
                               scope=opts.scope, augment_shift=opts.augment_shift, dense_prune=opts.prune_dense,
                               distill=opts.distill or 0.0)
        log(f"pruning to {opts.prune:.0%} ({'structured' if opts.structured else opts.scope})"
            + (f" of the conv filters, dense weights to {opts.prune_dense:.0%} ({opts.scope})"
               if opts.prune_dense is not None else "")
            + f", {fc.epochs} epochs of fine-tuning")
        params, masks, info = ft.finetune(cfg, params, ds, fc, log=log)
        original_weights = _weight_count(spec)
        if opts.structured:
            keep = ft.neuron_keep(spec, params, opts.prune,
                                  ft.STRUCTURED_WITH_DENSE if opts.prune_dense is not None else None)
            spec, params = ft.slice_neurons(spec, params, keep)
            cfg = cfg.with_overrides(spec=spec)
            kept = (_weight_count(spec) if opts.prune_dense is None  # the dense layers' zeros are removed too
                    else _sparsity(spec, params)["nonzero_weights"])
            sparsity_meta = {**_sparsity(spec, params), "structured": True, "target": opts.prune,
                             "neurons_kept": {str(i): int(v.sum()) for i, v in keep.items()},
                             "neurons_removed": {str(i): int((~v).sum()) for i, v in keep.items()},
                             "weights_removed": round(1 - kept / original_weights, 6),
                             "original_spec": model.spec.to_dict()}
            if opts.prune_dense is not None:
                sparsity_meta.update(dense_target=opts.prune_dense, scope=opts.scope)
        else:
            sparsity_meta = {**_sparsity(spec, params), "structured": False, "target": opts.prune,
                             "scope": opts.scope}
        sparsity_meta.update(schedule="zhu_gupta_cubic", fine_tune=info)
        steps.append({"pass": "prune", "sparsity": opts.prune, "structured": opts.structured, "scope": opts.scope,
                      **({"dense_sparsity": opts.prune_dense} if opts.prune_dense is not None else {}), **info})

    extra, qmeta = {}, None
    if opts.quantize:
        calib = ds.x_train[:opts.calib_images]
        ranges, shared_weights = None, None
        if opts.share:
            params, ranges, shared_weights, info = _share(cfg.with_overrides(spec=spec), params, ds, calib, opts,
                                                          seed, log, pruned=sparsity_meta is not None)
            steps.append({"pass": "share", **info})
        if opts.qat:
            ranges = quantize.fake_quant_ranges(spec, params, calib, ds.input_scale)
            masks = ft.zero_masks(params) if sparsity_meta else None  # a pruned model stays pruned
            fc = ft.FinetuneConfig(epochs=opts.qat_epochs, lr=opts.qat_lr, seed=seed, train_limit=opts.train_limit,
                                   augment_shift=opts.augment_shift)
            log(f"quantization-aware fine-tuning, {fc.epochs} epochs")
            params, _, info = ft.finetune(cfg.with_overrides(spec=spec), params, ds, fc, masks=masks,
                                          qat_ranges=ranges, log=log)
            steps.append({"pass": "qat", **info})
        try:
            qmeta, extra, params = quantize.quantize_model(spec, params, ds.input_scale, calib, act_ranges=ranges,
                                                           path=str(model_dir), weights=shared_weights)
        except quantize.QuantizationError as e:
            raise CompressError(str(e)) from None
        qmeta["calibration"] = {"images": int(len(calib)), "source": "first training images", "method": "minmax",
                                "qat": opts.qat}
        for lm in qmeta["layers"]:
            i = lm["index"]
            if lm["type"] != "dense":  # conv kernels read the quantized tensors as they are; pools store nothing
                if lm["type"] in netspec.WEIGHTED:
                    lm["storage"] = "dense"
                continue
            wq = extra[f"q.layers.{i}.w"]
            lm["storage"] = layout.choose_storage(wq, extra[f"q.layers.{i}.multiplier"], extra[f"q.layers.{i}.shift"])
            for name, tensor in layout.storage_tensors(lm["storage"], wq).items():
                extra[f"s.layers.{i}.{name}"] = tensor
        if sparsity_meta is not None:
            sparsity_meta = {**sparsity_meta, **_sparsity(spec, params)}
        steps.append({"pass": "quantize", "scheme": "int8", "qat": opts.qat, "rounding": quantize.ROUNDING})
        meta["quantization"] = qmeta
    if sparsity_meta is not None:
        meta["sparsity"] = sparsity_meta
    meta["compression"] = compression

    saved = modeldir.SavedModel(spec, params, meta, extra)
    metrics = _metrics(saved, ds, model, sparsity_meta)
    _write(output_dir(model_dir, opts), spec, params, meta, metrics, extra)
    return metrics


def _share(cfg, params, ds, calib, opts, seed, log, pruned=False):
    """Trained weight sharing (compress/share.py): (float params of the shared model, the activation ranges it was
    fine-tuned against, {layer: (int8 weights, scales)} for quantize_model, info). A pruned conv layer keeps its
    zeros (a pruned dense weight has no code)."""
    spec = cfg.spec
    layers, shared = share.build(spec, params, opts.share, per_layer_scale=True)
    ranges = quantize.fake_quant_ranges(spec, share.float_params(layers, shared), calib, ds.input_scale)
    fc = ft.FinetuneConfig(epochs=opts.share_epochs, lr=opts.share_lr, seed=seed, train_limit=opts.train_limit,
                           augment_shift=opts.augment_shift)
    log(f"weight sharing: {opts.share} values per layer, {fc.epochs} epochs of fine-tuning the shared values")
    sspec = share.SharedSpec(spec, layers, tuple(ranges), ds.input_scale)
    shared, _, info = ft.finetune(cfg.with_overrides(spec=sspec), shared, ds, fc, log=log,
                                  masks=ft.zero_masks(shared) if pruned else None)
    info = {"levels": opts.share, "scale": "per layer", "init": "linear", **info}
    return share.float_params(layers, shared), ranges, share.int8_weights(layers, shared), info


model_bytes = footprint.model_bytes  # every byte the firmware stores (docs/COMPRESS.md)


def _metrics(saved, ds, source, sparsity_meta) -> dict:
    float_out = host.forward(saved, ds.x_test)
    float_acc = float(np.mean(host.predict(saved, float_out) == ds.y_test))
    if "quantization" in saved.meta:
        out = reference.forward(saved, ds.x_test)
        acc = float(np.mean(reference.predict(saved, out) == ds.y_test))
        loss = _xent(reference.dequantize_outputs(saved, out), ds.y_test)
    else:
        acc, loss = float_acc, _test_loss(saved.spec, float_out, ds.y_test)
    src = source.metrics.get("test_accuracy")
    mb = model_bytes(saved)
    metrics = {
        "model": saved.meta.get("model"), "dataset": ds.name, "dtype": saved.meta["dtype"],
        "seed": saved.meta.get("seed"), "test_accuracy": acc, "test_loss": loss, "float_test_accuracy": float_acc,
        "source_test_accuracy": src, "accuracy_change_points": None if src is None else round(100 * (acc - src), 4),
        "params": saved.spec.param_count(), "test_images": int(len(ds.y_test)),
        "quantization": saved.meta.get("quantization", {}).get("scheme", "none"),
        "sparsity": sparsity_meta["weights"] if sparsity_meta else 0.0,
        "nonzero_weights": sparsity_meta["nonzero_weights"] if sparsity_meta else None,
        "model_bytes": mb["total"], "model_bytes_breakdown": mb,
        "source_model_bytes": model_bytes(source)["total"],
        "compression": saved.meta["compression"],
    }
    if "quantization" in saved.meta:
        metrics["storage"] = {str(lm["index"]): lm["storage"] for lm in saved.meta["quantization"]["layers"]
                              if "storage" in lm}
    if "class_names" in saved.meta:
        metrics["class_names"] = saved.meta["class_names"]
    if sparsity_meta and sparsity_meta.get("structured"):
        metrics["weights_removed"] = sparsity_meta["weights_removed"]
        metrics["sparsity"] = sparsity_meta["weights_removed"]
    return metrics


def _write(od: outputs.OutputDir, spec, params, meta, metrics, extra):
    with od.staging() as tmp:
        modeldir.save(tmp, spec, params, meta, metrics, extra=extra)
        modeldir.load(tmp)  # what we hand on must read back
        try:
            od.commit(tmp)
        except outputs.OutputError as e:
            raise CompressError(f"{e} (it changed while compressing; nothing written)") from None


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m compress",
                                description="Prune and/or quantize a model directory into a deployable variant.")
    p.add_argument("model_dir", type=Path)
    p.add_argument("--prune", type=float, metavar="SPARSITY",
                   help="fraction of weights to zero (with --structured: of hidden neurons to remove)")
    p.add_argument("--structured", action="store_true", help="remove whole hidden neurons (smaller dense layers)")
    p.add_argument("--prune-dense", type=float, metavar="SPARSITY",
                   help="with --structured on a conv net: --prune removes conv filters only, and the dense layers "
                        "lose this fraction of their weights singly (sparse storage)")
    p.add_argument("--distill", type=float, metavar="WEIGHT",
                   help="pruning fine-tune: loss = (1 - WEIGHT) * the recipe's + WEIGHT * cross-entropy against the "
                        "source model's softmax on the same images (knowledge distillation)")
    p.add_argument("--scope", default="global", help="magnitude ranking: global (default) or layer")
    p.add_argument("--quantize", metavar="SCHEME", help="int8")
    p.add_argument("--qat", action="store_true", help="fine-tune with int8 fake quantization before quantizing")
    p.add_argument("--epochs", type=int, help="pruning fine-tune epochs (default 20)")
    p.add_argument("--lr", type=float, help="pruning fine-tune peak learning rate (default 1e-3)")
    p.add_argument("--share", type=int, metavar="LEVELS",
                   help=f"trained weight sharing: at most LEVELS (1-{layout.SHARED_LEVELS}) non-zero int8 values per "
                        f"layer, stored as 3-bit codes (needs --quantize int8)")
    p.add_argument("--share-epochs", type=int, default=3, help="fine-tuning epochs of the shared values")
    p.add_argument("--share-lr", type=float, default=1e-3)
    p.add_argument("--augment-shift", type=int, default=0, metavar="PIXELS",
                   help="fine-tune on training images moved by a random offset of up to PIXELS in each direction "
                        "(default 0: off; 1 lifts pruned MNIST models by ~0.3 points)")
    p.add_argument("--qat-epochs", type=int, default=3)
    p.add_argument("--qat-lr", type=float, default=1e-4)
    p.add_argument("--calib-images", type=int, default=10000, help="training images for int8 calibration")
    p.add_argument("--seed", type=int, help="fine-tuning seed (default: the model's)")
    p.add_argument("--train-limit", type=int, help="fine-tune on the first N training images only")
    p.add_argument("--data-dir", type=Path, help="directory with the dataset's IDX files (plain or .gz)")
    p.add_argument("--label-smoothing", type=float,
                   help="fine-tuning loss label smoothing (default: the registry recipe's; match the training run)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--force", action="store_true",
                   help="replace an earlier compress output in --out (only the files it wrote)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    opts = Options(out=a.out, prune=a.prune, structured=a.structured, prune_dense=a.prune_dense, distill=a.distill,
                   scope=a.scope, quantize=a.quantize,
                   qat=a.qat, share=a.share, share_epochs=a.share_epochs, share_lr=a.share_lr,
                   augment_shift=a.augment_shift, epochs=a.epochs, qat_epochs=a.qat_epochs, lr=a.lr,
                   qat_lr=a.qat_lr, seed=a.seed,
                   calib_images=a.calib_images, train_limit=a.train_limit, data_dir=a.data_dir, force=a.force,
                   label_smoothing=a.label_smoothing,
                   log=None if a.quiet else (lambda msg: print(msg, file=sys.stderr)))
    try:
        metrics = compress_model(a.model_dir, opts)
    except (CompressError, modeldir.ModelDirError, data.DataError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    src = metrics["source_test_accuracy"]
    print(f"{a.out}: test_accuracy {metrics['test_accuracy']:.4f}"
          + (f" (source {src:.4f}, {metrics['accuracy_change_points']:+.2f} points)" if src is not None else "")
          + f", sparsity {metrics['sparsity']:.4f}, model_bytes {metrics['model_bytes']}"
          + f" (source {metrics['source_model_bytes']})")
    return 0
