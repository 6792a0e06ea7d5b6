"""Import a model exported to ONNX (from PyTorch, Keras via tf2onnx, ...) as an ordinary picozoo model directory.

`python -m zoo.import MODEL.onnx --dataset mnist --out DIR` reads a graph that is a chain of supported operators,
turns it into a `zoo.nn.Sequential` spec with its parameters, and checks the result against onnxruntime before
anything is written: predictions must be identical and the largest output difference at most `TOLERANCE`.

Layout: ONNX image graphs are NCHW, picozoo is NHWC. Conv weights (K, C, kh, kw) become (kh, kw, C, K); a Flatten
of an (C, H, W) tensor flattens in C, H, W order where ours flattens H, W, C, so the rows of the dense layer after
it are permuted once at import. BatchNormalization is folded into the conv/dense before it, Dropout and Identity
are dropped, and a final Softmax is dropped (the argmax, hence the class, is unchanged; the check compares the
logits before it). Every operator is one entry of `_OPS`; anything else is refused with the node and its op named.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo import __version__, data, host, modeldir
from zoo.normalize import Normalization
from zoo.nn import Sequential, SpecError, same_pads, window_out_size

TOLERANCE = 1e-4          # largest |ours - onnxruntime| accepted on any output
CHECK_IMAGES = 10_000     # how many inputs the import check runs (all test images of a dataset, at most this)
MAX_MODEL_BYTES = 256 << 20  # an .onnx file larger than this is refused before reading


class OnnxImportError(Exception):
    """A model that cannot be imported; the message names the file, the node and what to change."""


@dataclass
class _Chain:
    """The network built so far while walking the graph."""
    path: Path
    consts: dict                       # initializer and Constant values by name
    layers: list = field(default_factory=list)
    params: list = field(default_factory=list)
    shape: tuple = ()                  # current activation shape in picozoo's layout: (features,) or (h, w, c)
    onnx_chw: tuple | None = None      # (c, h, w) when the last flatten came from an image: rows to permute
    current: str = ""                  # name of the tensor the next node must consume
    softmax_input: str | None = None   # the logits tensor when a final Softmax was dropped

    def fail(self, node, why: str):
        name = node.name or "(unnamed)"
        raise OnnxImportError(f"{self.path}: node {name!r} ({node.op_type}): {why}")

    def add(self, layer: dict, params: dict | None = None, shape: tuple | None = None):
        self.layers.append(layer)
        self.params.append(params or {})
        if shape is not None:
            self.shape = shape

    def const(self, node, name: str) -> np.ndarray:
        if name not in self.consts:
            self.fail(node, f"input {name!r} must be a constant (an initializer); computed shapes and weights are "
                            f"not supported: export with constant folding (torch.onnx.export(..., "
                            f"do_constant_folding=True))")
        return self.consts[name]


def _attrs(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# -- padding: ONNX explicit pads -> picozoo "same"/"valid" ------------------------------------------------------------
def _padding(chain, node, a: dict, hw: tuple, kernel: tuple, strides: tuple) -> str:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return "valid"
    if auto == "SAME_UPPER":
        return "same"
    if auto not in ("NOTSET", ""):
        chain.fail(node, f"auto_pad {auto} is not supported (SAME_UPPER and VALID are)")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        chain.fail(node, f"pads {pads}: only 2-D operators are supported")
    begin, end = pads[:2], pads[2:]
    if begin == [0, 0] and end == [0, 0]:
        return "valid"
    same = [same_pads(n, k, s, "same") for n, k, s in zip(hw, kernel, strides)]
    if [b for b, _ in same] == begin and [e for _, e in same] == end:
        return "same"
    chain.fail(node, f"pads {pads} (top, left, bottom, right) on a {hw[0]}x{hw[1]} input match neither 'valid' (no "
                     f"padding) nor 'same' ({[b for b, _ in same] + [e for _, e in same]}, the extra row/column "
                     f"after); picozoo supports those two")


def _window(chain, node, a: dict, kernel_key="kernel_shape"):
    kernel = tuple(int(k) for k in a.get(kernel_key, ()))
    strides = tuple(int(s) for s in a.get("strides", (1, 1)))
    if len(kernel) != 2:
        chain.fail(node, f"{kernel_key} {list(kernel)}: only 2-D windows are supported")
    if any(d != 1 for d in a.get("dilations", (1, 1))):
        chain.fail(node, f"dilations {list(a['dilations'])} are not supported (1 only)")
    if a.get("ceil_mode", 0):
        chain.fail(node, "ceil_mode=1 is not supported")
    return kernel, strides


def _image(chain, node) -> tuple[int, int, int]:
    if len(chain.shape) != 3:
        chain.fail(node, f"needs an image (N, C, H, W) input; here the tensor is flat {chain.shape}")
    return chain.shape


def _out_hw(hw, kernel, strides, padding):
    return tuple(window_out_size(n, k, s, padding) for n, k, s in zip(hw, kernel, strides))


# -- the operators ------------------------------------------------------------------------------------------------------
_OPS = {}


def _op(*names):
    def register(fn):
        for name in names:
            _OPS[name] = fn
        return fn
    return register


def _dense(chain, node, w_in_out: np.ndarray, bias: np.ndarray | None):
    if len(chain.shape) != 1:
        chain.fail(node, f"a matrix product needs a flat input; the tensor here is {chain.shape} (add a Flatten)")
    n_in, n_out = w_in_out.shape
    if n_in != chain.shape[0]:
        chain.fail(node, f"weight of shape {w_in_out.shape} does not take {chain.shape[0]} inputs")
    if chain.onnx_chw is not None:
        c, h, w = chain.onnx_chw
        # picozoo's flat index (y, x, ch) holds ONNX's flat index (ch, y, x)
        order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
        w_in_out = w_in_out[order]
        chain.onnx_chw = None
    b = np.zeros(n_out, np.float32) if bias is None else np.broadcast_to(bias, (n_out,))
    chain.add({"type": "dense", "in": n_in, "out": n_out},
              {"w": w_in_out.astype(np.float32), "b": np.array(b, np.float32)}, (n_out,))


@_op("Gemm")
def _gemm(chain, node):
    a = _attrs(node)
    if a.get("transA", 0):
        chain.fail(node, "transA=1 is not supported")
    b = chain.const(node, node.input[1]).astype(np.float64)
    w = (b.T if a.get("transB", 0) else b) * a.get("alpha", 1.0)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = chain.const(node, node.input[2]).astype(np.float64).reshape(-1) * a.get("beta", 1.0)
    _dense(chain, node, w, bias)


@_op("MatMul")
def _matmul(chain, node):
    w = chain.const(node, node.input[1])
    if w.ndim != 2:
        chain.fail(node, f"weight of rank {w.ndim}: only (in, out) matrices are supported")
    _dense(chain, node, w.astype(np.float64), None)


@_op("Add")
def _add(chain, node):
    other = node.input[1] if node.input[0] == chain.current else node.input[0]
    bias = chain.const(node, other)
    last = chain.layers[-1] if chain.layers else None
    if last is None or last["type"] not in ("dense", "conv2d", "depthwise_conv2d"):
        chain.fail(node, "an Add is supported only as the bias of the MatMul/Conv right before it")
    n = chain.params[-1]["b"].shape[0]
    if bias.size != n:
        chain.fail(node, f"bias of shape {bias.shape} does not match the {n} outputs before it")
    chain.params[-1]["b"] = (chain.params[-1]["b"] + bias.reshape(-1)).astype(np.float32)


@_op("Conv")
def _conv(chain, node):
    a = _attrs(node)
    h, w_, c = _image(chain, node)
    weight = chain.const(node, node.input[1]).astype(np.float32)
    bias = chain.const(node, node.input[2]).astype(np.float32) if len(node.input) > 2 and node.input[2] else None
    kernel, strides = _window(chain, node, {**a, "kernel_shape": a.get("kernel_shape", weight.shape[2:])})
    padding = _padding(chain, node, a, (h, w_), kernel, strides)
    group = int(a.get("group", 1))
    k_out = weight.shape[0]
    oh, ow = _out_hw((h, w_), kernel, strides, padding)
    if min(oh, ow) < 1:
        chain.fail(node, f"a {kernel} window does not fit the {h}x{w_} input")
    b = np.zeros(k_out, np.float32) if bias is None else bias
    spec = {"kernel": list(kernel), "stride": list(strides), "padding": padding}
    if group == 1:
        if weight.shape[1] != c:
            chain.fail(node, f"weight {weight.shape} expects {weight.shape[1]} input channels, the input has {c}")
        chain.add({"type": "conv2d", "in": c, "out": k_out, **spec},
                  {"w": np.ascontiguousarray(weight.transpose(2, 3, 1, 0)), "b": b}, (oh, ow, k_out))
    elif group == c and k_out == c and weight.shape[1] == 1:
        chain.add({"type": "depthwise_conv2d", "channels": c, **spec},
                  {"w": np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0)), "b": b}, (oh, ow, c))
    else:
        chain.fail(node, f"group={group} with {c} input and {k_out} output channels: only ordinary (group=1) and "
                         f"depthwise (group = channels, one filter each) convolutions are supported")


@_op("MaxPool", "AveragePool")
def _pool(chain, node):
    a = _attrs(node)
    h, w, c = _image(chain, node)
    kernel, strides = _window(chain, node, a)
    padding = _padding(chain, node, a, (h, w), kernel, strides)
    kind = "max_pool2d" if node.op_type == "MaxPool" else "avg_pool2d"
    if kind == "avg_pool2d" and padding != "valid":
        chain.fail(node, "AveragePool with padding is not supported (picozoo's avg_pool2d is 'valid' only)")
    if len(node.output) > 1 and node.output[1]:
        chain.fail(node, "the Indices output of MaxPool is not supported")
    oh, ow = _out_hw((h, w), kernel, strides, padding)
    chain.add({"type": kind, "pool": list(kernel), "stride": list(strides), "padding": padding}, None, (oh, ow, c))


@_op("GlobalAveragePool")
def _global_avg(chain, node):
    _, _, c = _image(chain, node)
    # ONNX keeps (N, C, 1, 1); the Flatten that usually follows is then a no-op for us
    chain.add({"type": "global_avg_pool2d"}, None, (c,))


@_op("Flatten", "Reshape")
def _flatten(chain, node):
    if node.op_type == "Flatten" and _attrs(node).get("axis", 1) != 1:
        chain.fail(node, f"axis={_attrs(node)['axis']}: only Flatten(axis=1) is supported")
    if node.op_type == "Reshape":
        target = [int(v) for v in chain.const(node, node.input[1]).reshape(-1)]
        size = int(np.prod(chain.shape))
        if len(target) != 2 or target[1] not in (-1, size) or target[0] not in (-1, 0, 1):
            chain.fail(node, f"shape {target}: only a reshape to (N, {size}) (a flatten) is supported")
    if len(chain.shape) == 3:
        h, w, c = chain.shape
        if h * w > 1:
            chain.onnx_chw = (c, h, w)
        if [ld["type"] for ld in chain.layers] == ["input"]:
            # an MLP on images: the raw features are already flat (h, w, c); only the first dense rows move
            chain.layers.clear()
            chain.params.clear()
            chain.shape = (h * w * c,)
        else:
            chain.add({"type": "flatten"}, None, (h * w * c,))


@_op("BatchNormalization")
def _batchnorm(chain, node):
    a = _attrs(node)
    gamma, beta, mean, var = (chain.const(node, n).astype(np.float64) for n in node.input[1:5])
    last = chain.layers[-1]["type"] if chain.layers else None
    if last not in ("dense", "conv2d", "depthwise_conv2d"):
        chain.fail(node, f"BatchNormalization is folded into the Conv/Gemm right before it; here it follows "
                         f"{last or 'the input'}")
    scale = gamma / np.sqrt(var + a.get("epsilon", 1e-5))
    p = chain.params[-1]
    p["w"] = (p["w"].astype(np.float64) * scale).astype(np.float32)  # the output axis is last in every layout
    p["b"] = ((p["b"].astype(np.float64) - mean) * scale + beta).astype(np.float32)


_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


@_op(*_ACTIVATIONS)
def _activation(chain, node):
    chain.add({"type": _ACTIVATIONS[node.op_type]})


@_op("Clip")
def _clip(chain, node):
    a = _attrs(node)
    bounds = [a.get("min"), a.get("max")]
    for i, name in enumerate(node.input[1:3]):
        if name:
            bounds[i] = float(chain.const(node, name).reshape(-1)[0])
    if bounds == [0.0, 6.0]:
        chain.add({"type": "relu6"})
    elif bounds[0] == 0.0 and bounds[1] is None:
        chain.add({"type": "relu"})
    else:
        chain.fail(node, f"Clip to {bounds}: only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) are supported")


@_op("Dropout", "Identity")
def _dropped(chain, node):
    pass


@_op("Softmax")
def _softmax(chain, node):
    chain.softmax_input = chain.current   # must be the last node: checked by the walk


SUPPORTED_OPS = tuple(sorted(_OPS))


# -- the walk ------------------------------------------------------------------------------------------------------------
def _load(path: Path):
    import onnx
    try:
        size = path.stat().st_size
    except OSError as e:
        raise OnnxImportError(f"{path}: cannot read ({e.strerror})") from None
    if not path.is_file():
        raise OnnxImportError(f"{path}: not a regular file")
    if size > MAX_MODEL_BYTES:
        raise OnnxImportError(f"{path}: {size} bytes, over the {MAX_MODEL_BYTES >> 20} MiB picozoo reads; a model "
                              f"for a 264 kB microcontroller is far smaller")
    try:
        model = onnx.load_model(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises DecodeError, ValidationError, ... : all mean "not a valid ONNX model"
        raise OnnxImportError(f"{path}: not a valid ONNX model ({type(e).__name__}: {str(e).splitlines()[0]})")
    return model


def _graph_input(path, model, consts):
    inputs = [i for i in model.graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise OnnxImportError(f"{path}: the graph has {len(inputs)} inputs ({[i.name for i in inputs]}); picozoo "
                              f"imports single-input models")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) not in (2, 4) or any(d is None or d < 1 for d in dims[1:]):
        raise OnnxImportError(f"{path}: input {inputs[0].name!r} has shape {dims}; picozoo imports (N, features) or "
                              f"(N, C, H, W) inputs with fixed sizes after the batch axis")
    return inputs[0].name, dims[1:]


def convert(path: Path, model=None):
    """(spec dict, params list, input shape, logits tensor name or None) for an ONNX file; nothing is written."""
    from onnx import numpy_helper
    path = Path(path)
    model = model if model is not None else _load(path)
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
    name, dims = _graph_input(path, model, consts)
    chain = _Chain(path, consts, current=name)
    if len(dims) == 3:
        c, h, w = dims
        chain.add({"type": "input", "shape": [h, w, c]}, None, (h, w, c))
    else:
        chain.shape = (dims[0],)
    nodes = [n for n in model.graph.node if n.op_type != "Constant"]
    for k, node in enumerate(nodes):
        handler = _OPS.get(node.op_type)
        if handler is None:
            chain.fail(node, f"operator not supported; picozoo imports {', '.join(SUPPORTED_OPS)}")
        if node.input[0] != chain.current and not (node.op_type == "Add" and chain.current in node.input):
            chain.fail(node, f"does not consume the output of the node before it ({chain.current!r}): picozoo "
                             f"imports a chain of operators (no branches or skip connections)")
        if node.op_type == "Softmax" and k != len(nodes) - 1:
            chain.fail(node, "a Softmax is supported only as the last node")
        handler(chain, node)
        chain.current = node.output[0]
    outputs = [o.name for o in model.graph.output]
    if outputs != [chain.current]:
        raise OnnxImportError(f"{path}: graph outputs {outputs}; picozoo imports one output, the end of the chain")
    if chain.shape != (chain.shape[0],):
        raise OnnxImportError(f"{path}: the model ends in a {chain.shape} tensor; picozoo needs flat class scores "
                              f"(end with a Flatten and a Gemm)")
    v1_types = {"dense", "relu", "sigmoid", "tanh"}
    layers = chain.layers
    fmt = "picozoo.sequential/1" if all(ld["type"] in v1_types for ld in layers) else "picozoo.sequential/2"
    spec = {"format": fmt, "output": "logits", "layers": layers}
    input_shape = (dims[1], dims[2], dims[0]) if len(dims) == 3 else (dims[0],)  # picozoo's (h, w, c) order
    return spec, chain.params, input_shape, chain.softmax_input


# -- the check against onnxruntime ----------------------------------------------------------------------------------------
def _onnxruntime_outputs(model, logits_name, x_nchw_or_flat: np.ndarray) -> np.ndarray:
    import onnx
    import onnxruntime as ort
    if logits_name is not None:  # read the logits before the dropped Softmax
        model = onnx.ModelProto.FromString(model.SerializeToString())
        del model.graph.output[:]
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(logits_name))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # no fused, reordered maths
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    chunks = [session.run(None, {name: x_nchw_or_flat[i:i + 500]})[0] for i in range(0, len(x_nchw_or_flat), 500)]
    return np.concatenate(chunks).reshape(len(x_nchw_or_flat), -1)


def check(saved: modeldir.SavedModel, model, logits_name, input_shape: tuple, raw: np.ndarray) -> dict:
    """Compare zoo.host's float32 forward pass with onnxruntime on raw uint8 inputs (n, features); the figures, and
    our outputs under "outputs"."""
    ours = host.forward(saved, raw).astype(np.float64)
    x = Normalization.from_meta(saved.meta["input"]).apply(raw, np.float32)  # what zoo.host feeds the model
    if len(input_shape) == 3:  # our (h, w, c) features -> the graph's NCHW input
        x = x.reshape(len(x), *input_shape).transpose(0, 3, 1, 2)
    theirs = _onnxruntime_outputs(model, logits_name, np.ascontiguousarray(x)).astype(np.float64)
    diff = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    same = int(np.sum(np.argmax(ours, -1) == np.argmax(theirs, -1)))
    return {"inputs": len(raw), "max_abs_output_diff": diff, "same_predictions": same,
            "tolerance": TOLERANCE, "passed": same == len(raw) and diff <= TOLERANCE, "outputs": ours}


def _check_inputs(dataset: data.Dataset, features: int) -> np.ndarray:
    if dataset.features != features:
        raise OnnxImportError(f"the model takes {features} input values, dataset {dataset.name!r} has "
                              f"{dataset.features} per sample")
    return dataset.x_test[:CHECK_IMAGES]


# -- the directory -------------------------------------------------------------------------------------------------------
def imported(path: Path, *, input_scale: float, dataset_name: str | None = None, name: str | None = None,
             seed: int = 0):
    """(SavedModel in memory, the ONNX model, input shape, logits tensor or None) for an ONNX file; nothing is
    written and nothing is checked against onnxruntime yet (`check` does that)."""
    path = Path(path)
    model = _load(path)
    spec_dict, params, input_shape, logits_name = convert(path, model)
    try:
        spec = Sequential.from_dict(spec_dict)
    except (SpecError, KeyError, TypeError, ValueError) as e:
        raise OnnxImportError(f"{path}: the converted network is not a valid picozoo spec: {e}") from None
    if isinstance(input_scale, Normalization):  # the user's data (--data): its normalisation (zoo/normalize.py)
        input_meta = input_scale.to_meta(math.prod(input_shape))
    elif not (math.isfinite(input_scale) and input_scale > 0):
        raise OnnxImportError(f"--input-scale {input_scale}: must be a positive finite number")
    else:
        input_meta = {"scale": input_scale, "features": math.prod(input_shape)}
    meta = {"model": name or path.stem, "dataset": dataset_name, "input": input_meta,
            "dtype": "float32", "seed": seed, "picozoo_version": __version__,
            "source": {"onnx": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                       "producer": f"{model.producer_name} {model.producer_version}".strip(),
                       "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                                    default=None)}}
    return modeldir.SavedModel(spec, params, {**meta, "spec": spec.to_dict()}), model, input_shape, logits_name


def import_onnx(path: Path, out_dir: Path, *, dataset: data.Dataset, input_scale: float | None = None,
                name: str | None = None, seed: int = 0) -> dict:
    """Import `path` into the model directory `out_dir` for `dataset` (the data the model takes: the check runs on
    its test images, and compress, eval and firmware.build read it); returns the metrics. Nothing is written unless
    the model converts and matches onnxruntime."""
    path, out_dir = Path(path), Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise OnnxImportError(f"{out_dir}: exists and is not an empty directory; choose a new --out")
    scale = input_scale if input_scale is not None else dataset.input_scale
    if input_scale is not None and not dataset.normalization.legacy:
        raise OnnxImportError("--input-scale applies to uint8 data; this data's normalisation is "
                              f"{dataset.normalization.mode!r} of float32 values (choose it with --normalize)")
    saved, model, input_shape, logits_name = imported(path, input_scale=scale, dataset_name=dataset.name, name=name,
                                                      seed=seed)
    spec = saved.spec
    if dataset.source:
        saved.meta["data"] = dataset.source  # compress, firmware.build and eval reload the user's file from here
    features = math.prod(input_shape)
    raw = _check_inputs(dataset, features)
    classes = 2 if spec.output == "binary" else spec.out_features
    top = max(int(dataset.y_test.max()), int(dataset.y_train.max()))
    if top >= classes:
        raise OnnxImportError(f"{path}: the data's labels go up to {top} but the model has {classes} classes "
                              f"(labels 0..{classes - 1})")
    result = check(saved, model, logits_name, input_shape, raw)   # result["outputs"]: ours, reused below
    if not result["passed"]:
        raise OnnxImportError(f"{path}: the imported model disagrees with onnxruntime on "
                              f"{result['inputs'] - result['same_predictions']} of {result['inputs']} inputs "
                              f"(max abs output difference {result['max_abs_output_diff']:.3g}, tolerance "
                              f"{TOLERANCE}); nothing was written")
    metrics = {"model": saved.meta["model"], "dataset": dataset.name, "dtype": "float32", "seed": seed,
               "params": spec.param_count(), "import_check": result}
    outputs = host.forward(saved, dataset.x_test) if len(raw) < len(dataset.x_test) else result.pop("outputs")
    result.pop("outputs", None)
    labels = dataset.y_test
    metrics["test_accuracy"] = float(np.mean(host.predict(saved, outputs) == labels))
    top = outputs.max(-1, keepdims=True)
    logp = outputs - top - np.log(np.sum(np.exp(outputs - top), -1, keepdims=True))
    metrics["test_loss"] = float(-np.mean(logp[np.arange(len(logp)), labels]))
    tmp = out_dir.with_name(f".{out_dir.name}.import-tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        meta = {k: v for k, v in saved.meta.items() if k != "spec"}
        modeldir.save(tmp, spec, saved.params, meta, metrics)
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return metrics
