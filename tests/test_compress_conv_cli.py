"""`python -m compress` on a small trained CNN (every int8 op but global average pooling, BatchNorm and Dropout in
the float model): the int8 directory contract, golden model agreement with the float model, structured channel
pruning, model_bytes, and the conv-specific refusals."""

from __future__ import annotations

import numpy as np
import pytest

from compress import cli, netspec, reference
from zoo import host, modeldir
from zoo.models import ModelConfig
from zoo.nn import (AvgPool2D, BatchNorm, Conv2D, Dense, DepthwiseConv2D, Dropout, Flatten, Input, MaxPool2D, ReLU,
                    ReLU6, Sequential, Sigmoid)
from zoo.train import train_and_evaluate

FAST = ["--epochs", "1", "--train-limit", "1024", "--calib-images", "500", "--quiet"]

TRAINED = Sequential([
    Input(28, 28, 1),
    Conv2D(1, 6, 3, 2, "same"), ReLU(), MaxPool2D(2),  # 14x14x6 -> 7x7x6
    DepthwiseConv2D(6, 3, 1, "same"), ReLU6(),
    Conv2D(6, 8, 1, 1, "valid"), ReLU(), MaxPool2D(2),  # 7x7x8 -> 3x3x8
    Flatten(), Dense(72, 10)])


def tiny_cnn(pool):
    """What is compressed: TRAINED with a BatchNorm after the first conv and a Dropout before the head; `pool`
    replaces the second max pool (an average pool is not trained: zoo.nn's AvgPool2D has no gradient in this JAX
    version, so the pruning tests, which fine-tune, use the max pool)."""
    return Sequential([
        Input(28, 28, 1),
        Conv2D(1, 6, 3, 2, "same"), BatchNorm(6), ReLU(), MaxPool2D(2),
        DepthwiseConv2D(6, 3, 1, "same"), ReLU6(),
        Conv2D(6, 8, 1, 1, "valid"), ReLU(), pool,
        Flatten(), Dropout(0.1), Dense(72, 10)])


@pytest.fixture(scope="module")
def cnn_dirs(tmp_path_factory, mnist):
    """TRAINED trained briefly, rewritten as tiny_cnn(max pool) and tiny_cnn(average pool): the BatchNorm gets
    random statistics and the conv before it the inverse scaling (so folding must undo it)."""
    root = tmp_path_factory.mktemp("zoo")
    cfg = ModelConfig("tiny_cnn", TRAINED, dataset="mnist", epochs=3, lr=1e-2)
    train_and_evaluate(cfg, root / "trained", dataset=mnist, train_limit=6000, progress=False)
    trained = modeldir.load(root / "trained")
    p = [{k: np.asarray(v) for k, v in q.items()} for q in trained.params]
    rng = np.random.default_rng(0)
    bn = {"gamma": rng.uniform(0.5, 2, 6), "beta": rng.normal(size=6), "mean": rng.normal(size=6),
          "var": rng.uniform(0.1, 3, 6)}
    g = bn["gamma"] / np.sqrt(bn["var"] + BatchNorm(6).eps)
    conv = {"w": p[1]["w"] / g, "b": (p[1]["b"] - bn["beta"]) / g + bn["mean"]}
    params = [p[0], conv, bn, *p[2:10], {}, p[10]]
    params = [{k: v.astype(np.float32) for k, v in q.items()} for q in params]
    dirs = []
    for name, pool in (("max", MaxPool2D(2)), ("avg", AvgPool2D(2))):
        spec = tiny_cnn(pool)
        model = modeldir.SavedModel(spec, params, trained.meta)
        acc = float(np.mean(host.predict(model, host.forward(model, mnist.x_test)) == mnist.y_test))
        modeldir.save(root / name, spec, params, trained.meta, {**trained.metrics, "test_accuracy": acc})
        dirs.append(root / name)
    return dirs


@pytest.fixture(scope="module")
def cnn_dir(cnn_dirs):
    return cnn_dirs[0]


@pytest.fixture(scope="module")
def cnn_int8(cnn_dirs, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "cnn-int8"
    assert cli.main([str(cnn_dirs[1]), "--quantize", "int8", "--calib-images", "1000", "--quiet", "--out", str(out)]) == 0
    return out


def test_int8_cnn_contract_and_agreement_with_float(cnn_dirs, cnn_int8, mnist):
    src, model = modeldir.load(cnn_dirs[1]), modeldir.load(cnn_int8)
    kinds = [d["type"] for d in netspec.layer_dicts(model.spec)]
    assert "batch_norm" not in kinds and "dropout" not in kinds, "the int8 spec is the inference network"
    q = model.meta["quantization"]
    assert [lm["type"] for lm in q["layers"]] == ["conv2d", "max_pool2d", "depthwise_conv2d", "conv2d", "avg_pool2d",
                                                  "flatten", "dense"]
    assert model.meta["compression"]["steps"][0] == {"pass": "inference", "batch_norm_folded": 1,
                                                     "dropout_removed": 1}
    for lm in q["layers"]:
        assert model.spec.layers[lm["index"]].kind == lm["type"]
    assert model.extra[f"q.layers.{q['layers'][0]['index']}.w"].shape == (6, 3, 3, 1)
    x = mnist.x_test[:2000]
    golden = reference.forward(model, x)
    float_src = host.predict(src, host.forward(src, x))
    agree = np.mean(reference.predict(model, golden) == float_src)
    assert agree >= 0.97, f"int8 golden model agrees with the float model on {agree:.4f} of the images"
    full = reference.forward(model, mnist.x_test)
    assert model.metrics["test_accuracy"] == float(np.mean(reference.predict(model, full) == mnist.y_test))
    assert abs(model.metrics["test_accuracy"] - src.metrics["test_accuracy"]) < 0.01
    # every byte the firmware stores: per conv/depthwise layer K*kh*kw*C weights + 9 bytes per channel + 4
    expect = 0
    for lm in q["layers"]:
        if lm["type"] in ("conv2d", "depthwise_conv2d"):
            w = model.extra[f"q.layers.{lm['index']}.w"]
            k = w.shape[0] if lm["type"] == "conv2d" else w.shape[-1]
            expect += w.size + 9 * k + 4
    assert model.metrics["model_bytes"] - model.metrics["model_bytes_breakdown"]["total"] == 0
    dense = [lm for lm in q["layers"] if lm["type"] == "dense"][0]
    assert model.metrics["model_bytes"] > expect and dense["storage"] in ("dense", "sparse")


def test_structured_pruning_shrinks_filters_and_the_flattened_rows(cnn_dir, tmp_path, mnist):
    out = tmp_path / "s50"
    assert cli.main([str(cnn_dir), "--prune", "0.5", "--structured", "--quantize", "int8", *FAST,
                     "--out", str(out)]) == 0
    model = modeldir.load(out)
    layers = netspec.layer_dicts(model.spec)
    convs = [d for d in layers if d["type"] == "conv2d"]
    dw = [d for d in layers if d["type"] == "depthwise_conv2d"][0]
    dense = [d for d in layers if d["type"] == "dense"][0]
    assert convs[0]["out"] == 3 and dw["channels"] == 3 and convs[1]["in"] == 3 and convs[1]["out"] == 4
    assert dense["in"] == 9 * 4 and dense["out"] == 10, "each kept channel keeps its 3x3 flattened rows"
    sp = model.meta["sparsity"]
    assert sp["structured"] and sp["original_spec"] == modeldir.load(cnn_dir).spec.to_dict()
    assert 0.4 < sp["weights_removed"] < 0.6
    out_int8 = reference.forward(model, mnist.x_test[:500])
    assert out_int8.shape == (500, 10)
    assert model.metrics["test_accuracy"] > 0.5


def test_unstructured_pruning_reaches_conv_weights(cnn_dir, tmp_path):
    out = tmp_path / "p70"
    assert cli.main([str(cnn_dir), "--prune", "0.7", *FAST, "--out", str(out)]) == 0
    model = modeldir.load(out)
    sp = model.meta["sparsity"]
    assert abs(sp["weights"] - 0.7) < 1e-3
    conv_idx = [i for i, d in enumerate(netspec.layer_dicts(model.spec)) if d["type"] == "conv2d"]
    assert all(sp["layers"][str(i)] > 0 for i in conv_idx)


def test_conv_refusals_name_the_layer_and_the_fix(tmp_path, capsys, cnn_dir):
    bad = Sequential([Input(8, 8, 1), Conv2D(1, 2, 3, 1, "same"), Sigmoid(), Flatten(), Dense(128, 2)])
    params = [{k: np.asarray(v) for k, v in p.items()} for p in bad.init(__import__("jax").random.key(0))]
    src = tmp_path / "sig"
    modeldir.save(src, bad, params, {"model": "sig", "dataset": "mnist", "dtype": "float32", "seed": 0,
                                     "input": {"scale": 1 / 255, "features": 64}},
                  {"model": "sig", "test_accuracy": 0.5})
    out = tmp_path / "never"
    assert cli.main([str(src), "--quantize", "int8", "--out", str(out)]) == 2
    assert "layer 2 is sigmoid; int8 supports dense, conv2d" in capsys.readouterr().err
    assert cli.main([str(cnn_dir), "--quantize", "int8", "--share", "7", "--out", str(out)]) == 2
    assert "--share 7 supports dense-only networks" in capsys.readouterr().err
    assert not out.exists()
