"""The model-directory contract every stage reads and writes: `model.safetensors` + `metrics.json`.

`model.safetensors` holds one tensor per layer parameter, named `layers.<i>.<name>` (a Dense's `w` (in, out) and
`b` (out,), a conv's `w` and `b`, a BatchNorm's `gamma`, `beta`, `mean`, `var`) where <i> is the layer's index in the spec, plus any tensors a compression pass adds; its metadata key `picozoo` is a
JSON object with the spec, dataset, input scaling, dtype, seed and format version. Writes go to a temporary name and
are renamed into place, so a directory never holds half a model. Details: docs/MODEL_FORMAT.md.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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


# -- limits: checked before anything is read or allocated ----------------------------------------------------
# The Pico has 2 MB of flash; the largest registry model (mnist_300_100 in float64) is 2.1 MB of tensors. These
# bounds are far above any deployable model and far below what would exhaust a workstation.
MAX_MODEL_FILE_BYTES = 256 * 2**20
MAX_HEADER_BYTES = 16 * 2**20
MAX_METRICS_BYTES = 64 * 2**20
MAX_PARAMS = 16 * 2**20  # dense weights + biases (64 MiB in float32)
MAX_WIDTH = 2**17  # features of any layer (the firmware's layer table takes 65,535; codegen names that limit)
MAX_LAYERS = 256
DTYPES = ("float32", "float64")
FLOAT_TENSOR_DTYPES = {"F32": "float32", "F64": "float64"}
SAFETENSORS_DTYPES = {"I8": np.int8, "U8": np.uint8, "I16": np.int16, "U16": np.uint16, "I32": np.int32,
                      "U32": np.uint32, "I64": np.int64, "U64": np.uint64, "F16": np.float16, "F32": np.float32,
                      "F64": np.float64, "BOOL": np.bool_}
MAX_SEED = 2**32 - 1
_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}")  # goes into generated C (PZ_MODEL_NAME) and file names
# metrics.json fields other stages read: name -> (kind, lower bound, upper bound); null is allowed for the
# `source_*` fields (a variant of a model without metrics)
METRIC_FIELDS = {
    "test_accuracy": ("number", 0, 1), "float_test_accuracy": ("number", 0, 1), "train_accuracy": ("number", 0, 1),
    "source_test_accuracy": ("number?", 0, 1), "test_loss": ("number", 0, math.inf),
    "model_bytes": ("int", 0, math.inf), "source_model_bytes": ("int", 0, math.inf), "params": ("int", 0, math.inf),
    "test_images": ("int", 1, math.inf), "epochs": ("int", 1, math.inf), "seed": ("int?", 0, MAX_SEED),
    "sparsity": ("number", 0, 1), "train_seconds": ("number", 0, math.inf),
}
INT8_STORAGE = ("dense", "sparse", "shared")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _regular_file(path: Path, limit: int, what: str) -> int:
    """The size of a regular file no bigger than `limit` (not a device, FIFO or directory: those could hang or
    never end)."""
    try:
        st = path.stat()
    except OSError as e:
        raise ModelDirError(f"{path}: cannot read it ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelDirError(f"{path}: not a regular file; a model directory's {what} must be a file")
    if st.st_size > limit:
        raise ModelDirError(f"{path}: {st.st_size:,} bytes exceeds picozoo's limit for {what} ({limit:,} bytes)")
    return st.st_size


def read_header(path: Path) -> tuple[dict, dict]:
    """(tensor entries, metadata) of a safetensors file, validated before safetensors maps it: the 8-byte header
    length, a JSON object of {name: {dtype, shape, data_offsets}} tiling the data area exactly."""
    size = _regular_file(path, MAX_MODEL_FILE_BYTES, MODEL_FILE)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelDirError(f"{path}: {len(head)} bytes is too short for a safetensors file (8-byte header "
                                f"length); retrain or restore it")
        n = int.from_bytes(head, "little")
        if n > min(size - 8, MAX_HEADER_BYTES):
            raise ModelDirError(f"{path}: header length {n:,} exceeds the file ({size:,} bytes) or picozoo's limit "
                                f"({MAX_HEADER_BYTES:,}); the file is corrupt")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ModelDirError(f"{path}: the safetensors header is not JSON; the file is corrupt") from None
    if not isinstance(header, dict):
        raise ModelDirError(f"{path}: the safetensors header is not a JSON object; the file is corrupt")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelDirError(f"{path}: __metadata__ must map names to strings")
    spans, data_bytes = [], size - 8 - n
    for name, entry in header.items():
        where = f"{path}: tensor {name!r}"
        if not (isinstance(entry, dict) and entry.get("dtype") in SAFETENSORS_DTYPES
                and isinstance(entry.get("shape"), list) and all(_is_int(d) and d >= 0 for d in entry["shape"])
                and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
                and all(_is_int(o) for o in entry["data_offsets"])):
            raise ModelDirError(f"{where}: needs dtype (one of {', '.join(SAFETENSORS_DTYPES)}), shape (a list of "
                                f"sizes) and data_offsets [begin, end]; the file is corrupt")
        begin, end = entry["data_offsets"]
        count = math.prod(entry["shape"])
        if not 0 <= begin <= end <= data_bytes or end - begin != count * np.dtype(
                SAFETENSORS_DTYPES[entry["dtype"]]).itemsize:
            raise ModelDirError(f"{where}: data_offsets {entry['data_offsets']} do not hold {count} "
                                f"{entry['dtype']} values inside the {data_bytes:,}-byte data area; the file is "
                                f"corrupt")
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise ModelDirError(f"{path}: tensor data overlaps or leaves gaps at byte {begin}; the file is corrupt")
        position = end
    if position != data_bytes:
        raise ModelDirError(f"{path}: {data_bytes - position} bytes after the last tensor; the file is corrupt")
    return header, metadata


def _check_spec(path: Path, raw) -> Sequential:
    if not isinstance(raw, dict) or not isinstance(raw.get("layers"), list):
        raise ModelDirError(f"{path}: metadata field 'spec' must be an object with a 'layers' list, got "
                            f"{type(raw).__name__}")
    if not 1 <= len(raw["layers"]) <= MAX_LAYERS:
        raise ModelDirError(f"{path}: spec has {len(raw['layers'])} layers; picozoo reads 1 to {MAX_LAYERS}")
    for i, layer in enumerate(raw["layers"]):
        if not isinstance(layer, dict):
            raise ModelDirError(f"{path}: spec layer {i} must be an object, got {type(layer).__name__}")
        if layer.get("type") == "dense":
            for key in ("in", "out"):
                if not (_is_int(layer.get(key)) and 1 <= layer[key] <= MAX_WIDTH):
                    raise ModelDirError(f"{path}: spec layer {i} field {key!r} is {layer.get(key)!r}; it must be "
                                        f"an integer from 1 to {MAX_WIDTH} (picozoo's limit on a layer's width)")
    try:
        spec = Sequential.from_dict(raw)
    except (SpecError, TypeError, ValueError, KeyError, AttributeError) as e:
        raise ModelDirError(f"{path}: bad metadata field 'spec': {e}") from None
    if spec.param_count() > MAX_PARAMS:
        raise ModelDirError(f"{path}: the spec has {spec.param_count():,} parameters, over picozoo's limit of "
                            f"{MAX_PARAMS:,}")
    return spec


def _check_meta(path: Path, meta, spec: Sequential):
    def bad(field, value, want):
        raise ModelDirError(f"{path}: metadata field {field!r} is {value!r}; it must be {want}")

    from zoo.data import DATASETS
    from zoo.normalize import Normalization, NormalizeError
    from zoo.userdata import FORMATS, USER_DATASET

    if meta.get("dataset") not in DATASETS + (USER_DATASET,):
        bad("dataset", meta.get("dataset"), f"one of {', '.join(DATASETS + (USER_DATASET,))}")
    if meta["dataset"] == USER_DATASET:  # the user's file (zoo/userdata.py): later stages reload it from here
        src = meta.get("data")
        if not (isinstance(src, dict) and isinstance(src.get("path"), str) and src.get("format") in FORMATS
                and isinstance(src.get("sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", src["sha256"])):
            bad("data", src, f"an object with the data file's 'path', 'format' ({', '.join(FORMATS)}) and 'sha256'")
    if meta.get("dtype") not in DTYPES:
        bad("dtype", meta.get("dtype"), f"one of {', '.join(DTYPES)}")
    if "model" in meta and not (isinstance(meta["model"], str) and _NAME.fullmatch(meta["model"])):
        bad("model", meta["model"], "a name of letters, digits and _.+- (at most 64)")
    if "seed" in meta and not (_is_int(meta["seed"]) and 0 <= meta["seed"] <= MAX_SEED):
        bad("seed", meta["seed"], f"an integer from 0 to {MAX_SEED}")
    inp = meta.get("input")
    if not isinstance(inp, dict):
        bad("input", inp, "an object {scale, features}")
    if not (_is_number(inp.get("scale")) and inp["scale"] > 0):
        bad("input.scale", inp.get("scale"), "a positive finite number")
    if inp.get("features") != spec.in_features or not _is_int(inp.get("features")):
        bad("input.features", inp.get("features"), f"the spec's input width, {spec.in_features}")
    try:
        Normalization.from_meta(inp, str(path))
    except NormalizeError as e:
        raise ModelDirError(str(e)) from None
    for key in ("compression", "sparsity", "quantization"):
        if key in meta and not isinstance(meta[key], dict):
            bad(key, meta[key], "an object")


def _int8_shapes(layer) -> tuple[list, int, int]:
    """(int8 weight shape, outputs, inputs per output) of a weighted layer in the int8 format (docs/MODEL_FORMAT.md):
    dense (out, in); conv2d (K, kh, kw, C) (OHWI); depthwise_conv2d (kh, kw, C)."""
    shapes = layer.param_shapes()["w"]
    if layer.kind == "dense":
        n_in, n_out = shapes
        return [n_out, n_in], n_out, n_in
    if layer.kind == "conv2d":
        kh, kw, c, k = shapes
        return [k, kh, kw, c], k, kh * kw * c
    kh, kw, c = shapes                                      # depthwise_conv2d: one filter per channel
    return [kh, kw, c], c, kh * kw


INT8_WEIGHTED = ("dense", "conv2d", "depthwise_conv2d")
INT8_PASS_THROUGH = ("max_pool2d", "avg_pool2d", "global_avg_pool2d", "flatten")


def _check_quantization(path: Path, meta, spec: Sequential, tensors: dict):
    """The fields and tensors the integer golden model and the firmware read (docs/MODEL_FORMAT.md)."""
    q = meta["quantization"]
    weighted = [i for i, layer in enumerate(spec.layers) if layer.kind in INT8_WEIGHTED]
    layers = q.get("layers")
    if q.get("scheme") != "int8" or not isinstance(layers, list) or not all(isinstance(lm, dict) for lm in layers):
        raise ModelDirError(f"{path}: metadata field 'quantization' needs scheme 'int8' and a 'layers' list of "
                            f"objects")
    entries = [lm for lm in layers if lm.get("type", "dense") in INT8_WEIGHTED]
    if [lm.get("index") for lm in entries] != weighted:
        raise ModelDirError(f"{path}: metadata field 'quantization.layers' needs one entry per weighted layer "
                            f"(spec indices {weighted}), got {[lm.get('index') for lm in entries]}")
    shapes_in, shapes_out = spec.input_shapes(), spec.output_shapes()
    for lm in layers:
        kind = lm.get("type", "dense")
        if kind not in INT8_WEIGHTED + INT8_PASS_THROUGH or not (_is_int(lm.get("index"))
                                                                 and 0 <= lm["index"] < len(spec.layers)):
            raise ModelDirError(f"{path}: metadata field 'quantization.layers' entry {lm.get('index')!r} has type "
                                f"{kind!r}; it needs a spec 'index' and a type among "
                                f"{', '.join(INT8_WEIGHTED + INT8_PASS_THROUGH)}")
        i = lm["index"]
        # the golden model reads the shapes and window fields from here: they must be the spec's own
        want = {"type": spec.layers[i].kind, "in_shape": list(shapes_in[i]), "out_shape": list(shapes_out[i]),
                **{k: v for k, v in spec.layers[i].to_dict().items() if k in ("kernel", "stride", "padding", "pool")}}
        for key, value in want.items():
            if (key in lm or key in ("kernel", "stride", "pool")) and lm.get(key, "dense" if key == "type" else None) \
                    != value:
                raise ModelDirError(f"{path}: metadata field 'quantization.layers' entry for layer {i}: {key} is "
                                    f"{lm.get(key)!r}, the spec says {value!r}; re-quantize the model")
    inp = q.get("input")
    if not (isinstance(inp, dict) and _is_int(inp.get("zero_point")) and -128 <= inp["zero_point"] <= 127):
        raise ModelDirError(f"{path}: metadata field 'quantization.input' needs an integer 'zero_point' from -128 "
                            f"to 127")
    from zoo.normalize import Normalization
    if not Normalization.from_meta(meta["input"]).legacy and not (_is_number(inp.get("inv_scale"))
                                                                  and inp["inv_scale"] > 0):
        raise ModelDirError(f"{path}: metadata field 'quantization.input' needs a positive 'inv_scale' (the model "
                            f"takes normalised float input); re-quantize the model")
    out = q.get("output")
    if not (isinstance(out, dict) and _is_number(out.get("scale")) and _is_int(out.get("zero_point"))):
        raise ModelDirError(f"{path}: metadata field 'quantization.output' needs a finite 'scale' and an integer "
                            f"'zero_point'")
    for lm in entries:
        i = lm["index"]
        where = f"{path}: metadata field 'quantization.layers' entry for layer {i}"
        if spec.layers[i].kind != lm.get("type", "dense"):
            raise ModelDirError(f"{where}: type {lm.get('type', 'dense')!r} but the spec's layer {i} is "
                                f"{spec.layers[i].kind}")
        for key in ("input_zero_point", "output_zero_point", "act_min", "act_max"):
            if not (_is_int(lm.get(key)) and -128 <= lm[key] <= 127):
                raise ModelDirError(f"{where}: {key} is {lm.get(key)!r}; it must be an integer from -128 to 127")
        if lm["act_min"] > lm["act_max"]:
            raise ModelDirError(f"{where}: act_min {lm['act_min']} > act_max {lm['act_max']}")
        storage = lm.get("storage", "dense")
        if storage not in INT8_STORAGE or (storage != "dense" and spec.layers[i].kind != "dense"):
            raise ModelDirError(f"{where}: storage {storage!r} is not one of {', '.join(INT8_STORAGE)} (conv layers "
                                f"are stored dense)")
        w_shape, n_out, _ = _int8_shapes(spec.layers[i])
        want = {"q.w": ("I8", w_shape), "q.bias": ("I32", [n_out]), "q.multiplier": ("I32", [n_out]),
                "q.shift": ("I8", [n_out])}
        if storage == "shared":
            want["s.codebook"] = ("I8", [8])
        for name, (dtype, shape) in want.items():
            prefix, short = name.split(".")
            full = f"{prefix}.layers.{i}.{short}"
            entry = tensors.get(full)
            if entry is None or entry["dtype"] != dtype or entry["shape"] != shape:
                found = "missing" if entry is None else f"{entry['dtype']} {entry['shape']}"
                raise ModelDirError(f"{path}: tensor {full} is {found}; {storage} int8 storage needs {dtype} "
                                    f"{shape}")
        if storage != "dense":
            # column order (entries per input, compress today) or row order (entries per output, older variants)
            n_in = spec.layers[i].in_features
            lens = [(f"s.layers.{i}.col_len", [n_in]), (f"s.layers.{i}.row_len", [n_out])]
            if not any(tensors.get(n) and tensors[n]["dtype"] == "U16" and tensors[n]["shape"] == s for n, s in lens):
                raise ModelDirError(f"{path}: {storage} int8 storage of layer {i} needs U16 tensor "
                                    f"s.layers.{i}.col_len {[n_in]} (or row_len {[n_out]} from older versions)")
            entry = tensors.get(f"s.layers.{i}.entries")
            if entry is None or entry["dtype"] != "U8" or len(entry["shape"]) != 1:
                raise ModelDirError(f"{path}: tensor s.layers.{i}.entries must be a 1-D U8 tensor for {storage} "
                                    f"storage")


def _check_int8_values(path: Path, meta, spec: Sequential, tensors: dict):
    """Values the integer golden model and the kernels rely on: the int32 accumulator cannot overflow
    (|bias| + fan_in * 255 * 128 < 2^31: 255 the largest |q_in - zp_in|, 128 the largest |w|), a Q31 multiplier in
    [0, 2^31), and 31 + shift in [1, 62] (docs/MODEL_FORMAT.md)."""
    for lm in meta["quantization"]["layers"]:
        if lm.get("type", "dense") not in INT8_WEIGHTED:
            continue
        i = lm["index"]
        _, _, n_in = _int8_shapes(spec.layers[i])
        bias = tensors[f"q.layers.{i}.bias"].astype(np.int64)
        if bias.size and int(np.abs(bias).max()) + n_in * 255 * 128 >= 2**31:
            raise ModelDirError(f"{path}: tensor q.layers.{i}.bias reaches {int(np.abs(bias).max())}; with {n_in} "
                                f"inputs the int32 accumulator could overflow; re-quantize the model")
        mult = tensors[f"q.layers.{i}.multiplier"].astype(np.int64)
        if mult.size and (mult.min() < 0 or mult.max() >= 2**31):
            raise ModelDirError(f"{path}: tensor q.layers.{i}.multiplier must lie in [0, 2^31)")
        shift = tensors[f"q.layers.{i}.shift"].astype(np.int64)
        if shift.size and (shift.min() < -30 or shift.max() > 31):
            raise ModelDirError(f"{path}: tensor q.layers.{i}.shift must lie in [-30, 31] (31 + shift in [1, 62])")


def _check_metrics(path: Path, metrics):
    if not isinstance(metrics, dict):
        raise ModelDirError(f"{path}: must hold a JSON object, got {type(metrics).__name__}")
    for name, (kind, low, high) in METRIC_FIELDS.items():
        if name not in metrics or (kind.endswith("?") and metrics[name] is None):
            continue
        value = metrics[name]
        ok = _is_int(value) if kind.startswith("int") else _is_number(value)
        if not ok or not low <= value <= high:
            span = f"from {low} to {high}" if high != math.inf else f"at least {low}"
            want = "an integer" if kind.startswith("int") else "a finite number"
            raise ModelDirError(f"{path}: field {name!r} is {value!r}; it must be {want} {span}; restore it, or "
                                f"rewrite the directory with the command that made it")


def load(directory: Path) -> SavedModel:
    """Read and validate a model directory; any fault is a ModelDirError naming the file and the field."""
    directory = Path(directory)
    path = directory / MODEL_FILE
    if not path.exists():
        raise ModelDirError(f"{path}: not found; a model directory holds {MODEL_FILE} and {METRICS_FILE} "
                            f"(create one with `python -m zoo.train NAME --out {directory}`)")
    entries, header = read_header(path)
    if META_KEY not in header:
        raise ModelDirError(f"{path}: no '{META_KEY}' metadata; it was not written by picozoo")
    try:
        meta = json.loads(header[META_KEY])
    except ValueError as e:
        raise ModelDirError(f"{path}: metadata '{META_KEY}' is not JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ModelDirError(f"{path}: metadata '{META_KEY}' must be a JSON object, got {type(meta).__name__}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelDirError(f"{path}: format_version {meta.get('format_version')!r}, this picozoo reads "
                            f"{FORMAT_VERSION}")
    spec = _check_spec(path, meta.get("spec"))
    _check_meta(path, meta, spec)
    for i, layer in enumerate(spec.layers):
        for key, shape in layer.param_shapes().items():
            shape = list(shape)
            name, entry = f"layers.{i}.{key}", entries.get(f"layers.{i}.{key}")
            if entry is None:
                raise ModelDirError(f"{path}: missing tensor {name} for layer {i} ({layer})")
            if entry["dtype"] not in FLOAT_TENSOR_DTYPES:
                raise ModelDirError(f"{path}: tensor {name} is {entry['dtype']}; picozoo stores float parameters "
                                    f"as F32 or F64")
            if entry["shape"] != shape:
                raise ModelDirError(f"{path}: tensor {name} has shape {tuple(entry['shape'])}; the spec says "
                                    f"{tuple(shape)}")
    if "quantization" in meta:
        _check_quantization(path, meta, spec, entries)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - safetensors raises SafetensorError, OSError or ValueError
        raise ModelDirError(f"{path}: not a readable safetensors file ({e}); retrain or restore it") from None
    params = []
    for i, layer in enumerate(spec.layers):
        shapes = layer.param_shapes()
        p = {name: tensors.pop(f"layers.{i}.{name}") for name in shapes}  # present, typed and shaped: checked above
        for name, value in p.items():
            if not np.all(np.isfinite(value)):
                raise ModelDirError(f"{path}: tensor layers.{i}.{name} holds NaN or infinite values; retrain or "
                                    f"restore the model")
        params.append(p)
    if "quantization" in meta:
        _check_int8_values(path, meta, spec, tensors)
    metrics = {}
    metrics_path = directory / METRICS_FILE
    if metrics_path.exists():
        _regular_file(metrics_path, MAX_METRICS_BYTES, METRICS_FILE)
        try:
            metrics = json.loads(metrics_path.read_bytes())
        except (UnicodeDecodeError, ValueError) as e:
            raise ModelDirError(f"{metrics_path}: not valid JSON ({e}); restore it, or rewrite the directory with "
                                f"the command that made it (`python -m zoo.train` or `python -m compress`)") from None
        _check_metrics(metrics_path, metrics)
    return SavedModel(spec, params, meta, extra=tensors, metrics=metrics)
