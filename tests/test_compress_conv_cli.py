"""`python -m compress` on a small trained CNN (every int8 op but global average pooling, BatchNorm and Dropout in
the float model): the int8 directory contract, golden model agreement with the float model, structured channel
pruning, model_bytes, and the conv-specific refusals."""

from __future__ import annotations

import numpy as np
import pytest

from compress import cli, layout, netspec, reference
from zoo import host, modeldir
from zoo.models import ModelConfig
from zoo.nn import (AvgPool2D, BatchNorm, Conv2D, Dense, DepthwiseConv2D, Dropout, Flatten, GlobalAvgPool2D, Input,
                    MaxPool2D, ReLU, ReLU6, Sequential, Sigmoid)
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


def quantized(src, out):
    """`python -m compress src --quantize int8` (1,000 calibration images) into out."""
    assert cli.main([str(src), "--quantize", "int8", "--calib-images", "1000", "--quiet", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def cnn_int8(cnn_dirs, tmp_path_factory):
    return quantized(cnn_dirs[1], tmp_path_factory.mktemp("c") / "cnn-int8")


@pytest.fixture(scope="module")
def cnn_int8_max(cnn_dirs, tmp_path_factory):
    return quantized(cnn_dirs[0], tmp_path_factory.mktemp("c") / "cnn-max-int8")


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
    dense = [lm for lm in q["layers"] if lm["type"] == "dense"][0]
    assert dense["storage"] in ("dense", "sparse")
    expect += layout.int8_layer_bytes(model.extra[f"q.layers.{dense['index']}.w"], dense["storage"])["total"]
    assert model.metrics["model_bytes"] == expect
    assert model.metrics["source_model_bytes"] == 4 * sum(np.asarray(p["w"]).size + np.asarray(p["b"]).size
                                                          for d, p in zip(netspec.layer_dicts(src.spec), src.params)
                                                          if d["type"] in netspec.WEIGHTED)


def test_structured_pruning_shrinks_filters_and_the_flattened_rows(cnn_dir, tmp_path, mnist):
    out = tmp_path / "s50"
    assert cli.main([str(cnn_dir), "--prune", "0.5", "--structured", "--quantize", "int8", "--qat",
                     "--qat-epochs", "1", *FAST, "--out", str(out)]) == 0
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
    assert [st["pass"] for st in model.meta["compression"]["steps"]] == ["inference", "prune", "qat", "quantize"]


def test_unstructured_pruning_reaches_conv_weights(cnn_dir, tmp_path):
    out = tmp_path / "p70"
    assert cli.main([str(cnn_dir), "--prune", "0.7", *FAST, "--out", str(out)]) == 0
    model = modeldir.load(out)
    sp = model.meta["sparsity"]
    assert abs(sp["weights"] - 0.7) < 1e-3
    conv_idx = [i for i, d in enumerate(netspec.layer_dicts(model.spec)) if d["type"] == "conv2d"]
    assert all(sp["layers"][str(i)] > 0 for i in conv_idx)


def test_structured_groups_are_found_through_batchnorm(tmp_path):
    """Every conv followed by a BatchNorm (as in mnist_cnn): the groups are those of the folded network."""
    spec = Sequential([Input(8, 8, 1), Conv2D(1, 4, 3, 1, "same"), BatchNorm(4), ReLU(), Conv2D(4, 4, 3, 2, "same"),
                       BatchNorm(4), ReLU(), Flatten(), Dense(64, 2)])
    params = [{k: np.asarray(v) for k, v in p.items()} for p in spec.init(__import__("jax").random.key(0))]
    src = tmp_path / "bn"
    modeldir.save(src, spec, params, {"model": "bn", "dataset": "mnist", "dtype": "float32", "seed": 0,
                                      "input": {"scale": 1 / 255, "features": 64}}, {"model": "bn"})
    model = cli.validate(src, cli.Options(out=tmp_path / "out", prune=0.5, structured=True))
    assert model.spec.to_dict() == spec.to_dict()


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
    no_dense = Sequential([Input(8, 8, 1), Conv2D(1, 2, 3, 1, "same"), ReLU(), Conv2D(2, 3, 3, 1, "same"),
                           GlobalAvgPool2D()])
    params = [{k: np.asarray(v) for k, v in p.items()} for p in no_dense.init(__import__("jax").random.key(0))]
    src = tmp_path / "gap"
    modeldir.save(src, no_dense, params, {"model": "gap", "dataset": "mnist", "dtype": "float32", "seed": 0,
                                          "input": {"scale": 1 / 255, "features": 64}},
                  {"model": "gap", "test_accuracy": 0.5})
    assert cli.main([str(src), "--quantize", "int8", "--share", "7", "--out", str(out)]) == 2
    assert "--share 7 shares the values of dense layers" in capsys.readouterr().err
    assert cli.main([str(src), "--prune", "0.5", "--structured", "--prune-dense", "0.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--prune-dense 0.5 prunes the dense layers of a conv net" in err and "no dense layer" in err
    assert not out.exists()


def test_filters_whole_dense_weights_singly_shared_and_distilled(cnn_dir, tmp_path, mnist):
    """--structured --prune-dense: conv filters removed whole, the dense layer pruned to the exact fraction of its
    remaining weights; --share on a conv net: the dense layer takes at most 7 values (code3 storage), the convs keep
    per-channel int8; --distill is recorded; the golden model gives the saved accuracy."""
    out = tmp_path / "mixed"
    assert cli.main([str(cnn_dir), "--prune", "0.5", "--structured", "--prune-dense", "0.6", "--distill", "0.5",
                     "--quantize", "int8", "--share", "7", "--share-epochs", "1", *FAST, "--out", str(out)]) == 0
    model = modeldir.load(out)
    layers = netspec.layer_dicts(model.spec)
    convs = [d for d in layers if d["type"] == "conv2d"]
    assert [c["out"] for c in convs] == [3, 4]
    i = [n for n, d in enumerate(layers) if d["type"] == "dense"][0]
    assert layers[i]["in"] == 9 * 4 and layers[i]["out"] == 10
    wq = model.extra[f"q.layers.{i}.w"]
    assert int(np.sum(wq != 0)) <= 36 * 10 - int(round(0.6 * 36 * 10))
    assert np.unique(wq[wq != 0]).size <= 7 and model.metrics["storage"][str(i)] == "shared"
    sp = model.meta["sparsity"]
    assert sp["dense_target"] == 0.6 and abs(sp["layers"][str(i)] - 0.6) < 0.01
    steps = model.meta["compression"]["steps"]
    assert [st["pass"] for st in steps] == ["inference", "prune", "share", "quantize"]
    assert steps[1]["dense_sparsity"] == 0.6 and steps[1]["distill"] == 0.5
    assert model.metrics["test_accuracy"] == float(np.mean(reference.predict(model, reference.forward(
        model, mnist.x_test)) == mnist.y_test))
    assert model.metrics["test_accuracy"] > 0.3


def test_small_variant_script_meets_its_byte_budget(cnn_dir, tmp_path, capsys):
    """benchmarks/mnist_cnn_small.py: the dense sparsity it derives keeps model_bytes within the budget; a budget the
    conv layers alone exceed is refused with the fix."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "mnist_cnn_small.py"
    spec = importlib.util.spec_from_file_location("mnist_cnn_small", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sparsity, plan = mod.dense_sparsity(cnn_dir, 0.5, 534)
    # kept 3 + 3 (depthwise) + 4 channels: (27 + 27 + 4) + (27 + 27 + 4) + (12 + 36 + 4) bytes; dense 36 -> 10 sparse:
    # 2 x 36 column lengths + 9 x 10 + 4
    assert plan["fixed_bytes"] == 58 + 58 + 52 + 166 and plan["dense_weights"] == 360 and plan["max_entries"] == 100
    assert sparsity == 0.723
    # --share: code3 (8 codebook + 2 x 36 + 4 x 10 + 5 + 4 bytes fixed, then 1 per entry, 2 % kept for fillers)
    sparsity, plan = mod.dense_sparsity(cnn_dir, 0.5, 534, share=7)
    assert plan["fixed_bytes"] == 58 + 58 + 52 + 129 and plan["max_entries"] == int(237 / 1.02) == 232
    assert sparsity == 0.356
    out = tmp_path / "small"
    assert mod.main([str(cnn_dir), str(out), "--budget", "534", "--filters", "0.5", "--epochs", "1",
                     "--train-limit", "1024", "--calib-images", "500", "--cut-last-conv", "0"]) == 0
    model = modeldir.load(out)
    assert model.metrics["model_bytes"] <= 534
    i = [n for n, d in enumerate(netspec.layer_dicts(model.spec)) if d["type"] == "dense"][0]
    assert int(np.sum(model.extra[f"q.layers.{i}.w"] != 0)) <= plan["max_entries"]
    capsys.readouterr()
    with pytest.raises(SystemExit, match="already take 334 bytes of the 300-byte budget; raise --filters"):
        mod.main([str(cnn_dir), str(tmp_path / "never"), "--budget", "300", "--filters", "0.5", "--cut-last-conv",
                  "0"])
    assert not (tmp_path / "never").exists()


def test_small_variant_script_cuts_the_last_conv_first(cnn_dir, tmp_path, capsys):
    """--cut-last-conv: the last conv loses that fraction of its filters (compress.structured's lowest scores) in a
    float model directory OUT-cut that compress starts from; an existing OUT-cut is refused, not overwritten."""
    import importlib.util
    from pathlib import Path

    from compress import structured
    from zoo import eval as zoo_eval

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "mnist_cnn_small.py"
    spec = importlib.util.spec_from_file_location("mnist_cnn_small", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    source = modeldir.load(cnn_dir)
    folded_spec, folded_params = netspec.for_inference(source.spec, [dict(p) for p in source.params])
    dicts = netspec.layer_dicts(folded_spec)
    last = [i for i, d in enumerate(dicts) if d["type"] == "conv2d"][-1]
    scores = structured.scores(dicts, folded_params)[last]
    want = np.sort(np.argsort(scores, kind="stable")[int(round(0.5 * scores.size)):])  # the higher-scored half
    out = tmp_path / "small"
    assert mod.main([str(cnn_dir), str(out), "--budget", "534", "--filters", "0.25", "--epochs", "1",
                     "--train-limit", "1024", "--calib-images", "500", "--cut-last-conv", "0.5"]) == 0
    cut = modeldir.load(tmp_path / "small-cut")
    cut_dicts = netspec.layer_dicts(cut.spec)
    assert cut_dicts[last]["out"] == len(want)
    np.testing.assert_array_equal(cut.params[last]["w"], folded_params[last]["w"][..., want])
    assert cut.metrics["test_accuracy"] == zoo_eval.evaluate_dir(tmp_path / "small-cut")["test_accuracy"]
    assert modeldir.load(out).metrics["model_bytes"] <= 534
    capsys.readouterr()
    before = (tmp_path / "small-cut" / "model.safetensors").read_bytes()
    with pytest.raises(SystemExit, match="small-cut: already exists"):
        mod.main([str(cnn_dir), str(tmp_path / "small"), "--budget", "534", "--cut-last-conv", "0.5"])
    assert (tmp_path / "small-cut" / "model.safetensors").read_bytes() == before


def test_relu_after_a_max_pool_is_fused_into_its_conv(cnn_dirs, cnn_int8_max, tmp_path, mnist):
    """PyTorch's `relu(max_pool2d(conv(x)))` (its MNIST example's order, as zoo.import reads it): the same function
    as conv, ReLU, max pool (a max commutes with the ReLU), so compress moves the ReLU up to the conv it fuses into.
    The float model is the same on every test image, and the int8 directory is the one the conv, ReLU, max pool
    order gives, tensor for tensor."""
    src = modeldir.load(cnn_dirs[0])
    kinds = [layer.kind for layer in src.spec.layers]
    i = kinds.index("conv2d", 2)                       # conv 6 -> 8, then relu, max pool
    assert kinds[i + 1:i + 3] == ["relu", "max_pool2d"]
    order = [*range(i + 1), i + 2, i + 1, *range(i + 3, len(kinds))]
    moved = Sequential([src.spec.layers[j] for j in order], output=src.spec.output)
    modeldir.save(tmp_path / "pool-relu", moved, [src.params[j] for j in order], src.meta, src.metrics)
    np.testing.assert_array_equal(host.forward(modeldir.load(tmp_path / "pool-relu"), mnist.x_test),
                                  host.forward(src, mnist.x_test))
    got = modeldir.load(quantized(tmp_path / "pool-relu", tmp_path / "pool-relu-int8"))
    want = modeldir.load(cnn_int8_max)
    assert [layer.kind for layer in got.spec.layers] == [layer.kind for layer in want.spec.layers]
    assert got.meta["quantization"] == want.meta["quantization"]
    assert got.extra.keys() == want.extra.keys()
    for name in want.extra:
        np.testing.assert_array_equal(got.extra[name], want.extra[name], err_msg=name)
