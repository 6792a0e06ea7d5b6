"""The model-directory contract every stage reads and writes: `model.safetensors` + `metrics.json`.

`model.safetensors` holds one tensor per layer parameter, named `layers.<i>.<name>` (a Dense's `w` (in, out) and
`b` (out,), a conv's `w` and `b`, a BatchNorm's `gamma`, `beta`, `mean`, `var`) where <i> is the layer's index in the spec, plus any tensors a compression pass adds; its metadata key `picozoo` is a
JSON object with the spec, dataset, input scaling, dtype, seed and format version. Writes go to a temporary name and
are renamed into place, so a directory never holds half a model. Details: docs/MODEL_FORMAT.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from zoo.nn import Sequential, SpecError

MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
META_KEY = "picozoo"
FORMAT_VERSION = 1


class ModelDirError(Exception):
    """A model directory that cannot be read; the message names the file and what is wrong."""


@dataclass
class SavedModel:
    spec: Sequential
    params: list  # one dict of numpy arrays per layer
    meta: dict
    extra: dict = field(default_factory=dict)  # tensors beyond the layer params (compression passes)
    metrics: dict = field(default_factory=dict)


def params_to_tensors(spec: Sequential, params) -> dict:
    tensors = {}
    for i, (layer, p) in enumerate(zip(spec.layers, params)):
        for name in layer.param_shapes():
            tensors[f"layers.{i}.{name}"] = np.ascontiguousarray(np.asarray(p[name]))
    return tensors


def atomic_write_bytes(path: Path, data: bytes):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, obj):
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save(directory: Path, spec: Sequential, params, meta: dict, metrics: dict | None = None, extra=None):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "spec": spec.to_dict(), "format_version": FORMAT_VERSION}
    tensors = {**params_to_tensors(spec, params), **(extra or {})}
    tmp = directory / f".{MODEL_FILE}.tmp-{os.getpid()}"
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    os.replace(tmp, directory / MODEL_FILE)
    if metrics is not None:
        write_json(directory / METRICS_FILE, metrics)


def load(directory: Path) -> SavedModel:
    directory = Path(directory)
    path = directory / MODEL_FILE
    if not path.is_file():
        raise ModelDirError(f"{path}: not found; a model directory holds {MODEL_FILE} and {METRICS_FILE} "
                            f"(create one with `python -m zoo.train NAME --out {directory}`)")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "np") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelDirError(f"{path}: not a readable safetensors file ({e}); retrain or restore it") from None
    if META_KEY not in header:
        raise ModelDirError(f"{path}: no '{META_KEY}' metadata; it was not written by picozoo")
    try:
        meta = json.loads(header[META_KEY])
        spec = Sequential.from_dict(meta["spec"])
    except (json.JSONDecodeError, KeyError, SpecError) as e:
        raise ModelDirError(f"{path}: bad model metadata: {e}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelDirError(f"{path}: format_version {meta.get('format_version')!r}, this picozoo reads "
                            f"{FORMAT_VERSION}")
    params = []
    for i, layer in enumerate(spec.layers):
        shapes = layer.param_shapes()
        try:
            p = {name: tensors.pop(f"layers.{i}.{name}") for name in shapes}
        except KeyError as e:
            raise ModelDirError(f"{path}: missing tensor {e.args[0]} for layer {i} ({layer})") from None
        if any(p[name].shape != shape for name, shape in shapes.items()):
            raise ModelDirError(f"{path}: layer {i} tensors have shapes {', '.join(str(v.shape) for v in p.values())}; "
                                f"the spec says {', '.join(map(str, shapes.values()))}")
        params.append(p)
    metrics = {}
    metrics_path = directory / METRICS_FILE
    if metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text())
        except json.JSONDecodeError as e:
            raise ModelDirError(f"{metrics_path}: not valid JSON ({e}); restore it, or rewrite the directory with "
                                f"the command that made it (`python -m zoo.train` or `python -m compress`)") from None
    return SavedModel(spec, params, meta, extra=tensors, metrics=metrics)
