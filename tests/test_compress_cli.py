"""`python -m compress` end to end on a small MNIST model: the directory contract, metrics, determinism, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from compress import cli, layout, reference
from zoo import host, modeldir
from zoo.models import get_model
from zoo.train import train_and_evaluate

FAST = ["--epochs", "1", "--train-limit", "2048", "--calib-images", "500", "--quiet"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, mnist):
    out = tmp_path_factory.mktemp("zoo") / "mnist_50"
    cfg = get_model("mnist_50").with_overrides(epochs=2)
    train_and_evaluate(cfg, out, dataset=mnist, train_limit=6000, progress=False)
    return out


@pytest.fixture(scope="module")
def pruned_int8(model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "p80-int8"
    assert cli.main([str(model_dir), "--prune", "0.8", "--quantize", "int8", *FAST, "--out", str(out)]) == 0
    return out


def _bytes_from_tensors(model):
    """model_bytes recomputed from the stored tensors and the kernels' documented layouts."""
    total = 0
    for lm in model.meta["quantization"]["layers"]:
        i, w = lm["index"], model.extra[f"q.layers.{lm['index']}.w"]
        out, n_in = w.shape
        if lm["storage"] == "shared":  # entries, column lengths, 8-value codebook; bias; one multiplier and shift
            total += model.extra[f"s.layers.{i}.entries"].nbytes + 2 * n_in + 8 + 4 * out + 5 + 4
            continue
        if lm["storage"] == "sparse":
            total += model.extra[f"s.layers.{i}.entries"].nbytes + model.extra[f"s.layers.{i}.col_len"].nbytes
        else:
            total += (-(-out // 4) * 4) * (-(-n_in // 4) * 4)
        total += out * (4 + 4 + 1) + 4  # bias, multiplier, shift; zero point, clamps, xor
    return total


def test_pruned_int8_dir_contract(pruned_int8, mnist):
    model = modeldir.load(pruned_int8)
    q, m = model.meta["quantization"], model.metrics
    assert q["scheme"] == "int8" and q["rounding"] == "single"
    assert q["input"] == {"scale": 1 / 255, "zero_point": -128, "q": "raw - 128"}
    for key in ("model", "dataset", "dtype", "test_accuracy", "test_loss", "params", "seed", "sparsity",
                "model_bytes"):
        assert key in m
    for lm in q["layers"]:
        i = lm["index"]
        w = model.extra[f"q.layers.{i}.w"]
        assert w.dtype == np.int8 and w.shape == (lm["out"], lm["in"]) and np.abs(w.astype(int)).max() <= 127
        assert model.extra[f"q.layers.{i}.bias"].dtype == np.int32
        assert model.extra[f"q.layers.{i}.multiplier"].dtype == np.int32
        assert model.extra[f"q.layers.{i}.shift"].dtype == np.int8
        np.testing.assert_array_equal(model.params[i]["w"] == 0, w.T == 0)  # the float view has the same zeros
        if lm["storage"] == "sparse":
            e, c = model.extra[f"s.layers.{i}.entries"], model.extra[f"s.layers.{i}.col_len"]
            np.testing.assert_array_equal(layout.unpack_sparse(e, c, lm["out"]), w)
    zero = np.mean(np.concatenate([model.extra[f"q.layers.{lm['index']}.w"].ravel() for lm in q["layers"]]) == 0)
    assert m["sparsity"] == pytest.approx(zero, abs=1e-6) and zero >= 0.8
    assert q["layers"][0]["storage"] == "sparse"
    # the figures are what the golden model and the float host model measure now
    out = reference.forward(model, mnist.x_test)
    assert m["test_accuracy"] == float(np.mean(reference.predict(model, out) == mnist.y_test))
    assert m["float_test_accuracy"] == float(np.mean(host.predict(model, host.forward(model, mnist.x_test))
                                                     == mnist.y_test))
    assert m["model_bytes"] == _bytes_from_tensors(model)
    assert m["model_bytes"] < m["source_model_bytes"] / 8  # 4 bytes per float weight vs ~2 per kept int8 one


def test_same_seed_same_bytes(model_dir, pruned_int8, tmp_path):
    out = tmp_path / "again"
    assert cli.main([str(model_dir), "--prune", "0.8", "--quantize", "int8", *FAST, "--out", str(out)]) == 0
    for name in ("model.safetensors", "metrics.json"):
        assert (out / name).read_bytes() == (pruned_int8 / name).read_bytes()


def test_quantize_a_pruned_dir_keeps_its_zeros(model_dir, tmp_path):
    pruned = tmp_path / "p70"
    assert cli.main([str(model_dir), "--prune", "0.7", *FAST, "--out", str(pruned)]) == 0
    p = modeldir.load(pruned)
    assert "quantization" not in p.meta and p.meta["sparsity"]["weights"] == pytest.approx(0.7, abs=1e-3)
    assert p.metrics["model_bytes"] == sum(x["w"].nbytes + x["b"].nbytes for x in p.params if x)
    q_dir = tmp_path / "p70-int8-qat"
    assert cli.main([str(pruned), "--quantize", "int8", "--qat", "--qat-epochs", "1", *FAST,
                     "--out", str(q_dir)]) == 0
    q = modeldir.load(q_dir)
    assert q.meta["quantization"]["calibration"]["qat"] is True
    for lm in q.meta["quantization"]["layers"]:
        i = lm["index"]
        assert np.all(q.extra[f"q.layers.{i}.w"].T[p.params[i]["w"] == 0] == 0), "QAT kept the pruned zeros"


def test_structured_gives_smaller_dense_layers(model_dir, tmp_path):
    out = tmp_path / "s50"
    assert cli.main([str(model_dir), "--prune", "0.5", "--structured", "--quantize", "int8", *FAST,
                     "--out", str(out)]) == 0
    m = modeldir.load(out)
    assert [(d.in_features, d.out_features) for d in m.spec.dense_layers] == [(784, 25), (25, 10)]
    assert m.meta["sparsity"]["structured"] is True
    assert m.metrics["sparsity"] == pytest.approx(0.5, abs=1e-6)
    assert all(lm["storage"] == "dense" for lm in m.meta["quantization"]["layers"])
    assert m.metrics["model_bytes"] == _bytes_from_tensors(m)


def test_share_gives_codebook_layers(model_dir, pruned_int8, mnist, tmp_path):
    """--share 5: every layer holds at most 5 non-zero int8 values and one multiplier and shift, stored in the code3
    format that unpacks to the weights; the figures are the golden model's; the same seed gives the same bytes."""
    out = tmp_path / "p80-share5"
    args = [str(model_dir), "--prune", "0.8", "--quantize", "int8", "--share", "5", "--share-epochs", "1",
            "--augment-shift", "1", *FAST]
    assert cli.main([*args, "--out", str(out)]) == 0
    model = modeldir.load(out)
    for lm in model.meta["quantization"]["layers"]:
        i = lm["index"]
        w = model.extra[f"q.layers.{i}.w"]
        assert lm["storage"] == "shared"
        assert np.unique(w[w != 0]).size <= 5
        assert np.unique(model.extra[f"q.layers.{i}.multiplier"]).size == 1
        assert np.unique(model.extra[f"q.layers.{i}.shift"]).size == 1
        e, c, b = (model.extra[f"s.layers.{i}.{k}"] for k in ("entries", "col_len", "codebook"))
        np.testing.assert_array_equal(layout.unpack_shared(e, c, b, lm["out"]), w)
        np.testing.assert_array_equal(model.params[i]["w"] == 0, w.T == 0)
    steps = [s["pass"] for s in model.meta["compression"]["steps"]]
    assert steps == ["prune", "share", "quantize"]
    assert [s.get("augment_shift") for s in model.meta["compression"]["steps"]] == [1, 1, None]
    m = model.metrics
    assert m["test_accuracy"] == float(np.mean(reference.predict(model, reference.forward(model, mnist.x_test))
                                               == mnist.y_test))
    assert m["test_accuracy"] > 0.85  # a working classifier, not just a format
    assert m["model_bytes"] == _bytes_from_tensors(model)
    assert m["model_bytes"] < 0.7 * modeldir.load(pruned_int8).metrics["model_bytes"]
    again = tmp_path / "again"
    assert cli.main([*args, "--out", str(again)]) == 0
    assert (again / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


def test_module_entry_point(model_dir, tmp_path):
    out = tmp_path / "int8"
    r = subprocess.run([sys.executable, "-m", "compress", str(model_dir), "--quantize", "int8",
                        "--calib-images", "300", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "test_accuracy" in r.stdout
    assert json.loads((out / "metrics.json").read_text())["quantization"] == "int8"


@pytest.fixture(scope="module")
def xor_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "xor"
    train_and_evaluate(get_model("xor").with_overrides(epochs=3), out, progress=False)
    return out


@pytest.fixture(scope="module")
def linear_dir(tmp_path_factory):
    """A one-layer (no hidden neurons) MNIST classifier."""
    import jax

    from zoo.nn import Dense, Sequential

    out = tmp_path_factory.mktemp("zoo") / "linear"
    spec = Sequential([Dense(784, 10)])
    params = [{k: np.asarray(v) for k, v in p.items()} for p in spec.init(jax.random.key(0))]
    meta = {"model": "linear", "dataset": "mnist", "input": {"scale": 1 / 255, "features": 784},
            "dtype": "float32", "seed": 0}
    modeldir.save(out, spec, params, meta, {"test_accuracy": 0.1})
    return out


BAD = [
    (["--prune", "1.5"], "--prune 1.5"),
    (["--prune", "0"], "--prune 0"),
    (["--prune", "-0.2"], "--prune -0.2"),
    (["--quantize", "int4"], "--quantize 'int4'"),
    (["--qat"], "--qat needs --quantize int8"),
    (["--structured"], "--structured needs --prune"),
    ([], "nothing to do"),
    (["--prune", "0.5", "--scope", "row"], "--scope 'row'"),
    (["--quantize", "int8", "--calib-images", "0"], "--calib-images 0"),
    (["--share", "7"], "--share 7 needs --quantize int8"),
    (["--quantize", "int8", "--share", "8"], "--share 8: the number of shared values per layer must be 1 to 7"),
    (["--quantize", "int8", "--share", "0"], "--share 0"),
    (["--quantize", "int8", "--share", "7", "--qat"], "drop --qat"),
    (["--quantize", "int8", "--share", "7", "--share-epochs", "0"], "--share-epochs 0"),
    (["--quantize", "int8", "--share", "7", "--share-lr", "-1"], "--share-lr -1"),
    (["--prune", "0.5", "--augment-shift", "-1"], "--augment-shift -1"),
    (["--quantize", "int8", "--augment-shift", "1"], "applies to fine-tuning"),
    (["--prune", "0.5", "--augment-shift", "8"], "--augment-shift 8 needs square images at least 32 pixels wide"),
    (["--prune", "0.5", "--structured", "--prune-dense", "1.5"], "--prune-dense 1.5: the dense layers' sparsity"),
    (["--prune", "0.5", "--structured", "--prune-dense", "0"], "--prune-dense 0.0: the dense layers' sparsity"),
    (["--prune", "0.5", "--prune-dense", "0.8"], "--prune-dense 0.8 goes with --structured --prune FRACTION"),
    (["--prune", "0.5", "--structured", "--prune-dense", "0.8"], "this model has no conv layer feeding another"),
    (["--prune", "0.5", "--distill", "0"], "--distill 0.0: the weight of the source model's soft targets"),
    (["--prune", "0.5", "--distill", "1.5"], "--distill 1.5"),
    (["--quantize", "int8", "--distill", "0.5"], "--distill 0.5 fine-tunes the pruned network"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_arguments(model_dir, tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert cli.main([str(model_dir), *args, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_bad_inputs(model_dir, pruned_int8, xor_dir, linear_dir, tmp_path, capsys):
    out = tmp_path / "never"
    cases = [
        ([str(tmp_path / "missing"), "--quantize", "int8"], "missing/model.safetensors: not found"),
        ([str(pruned_int8), "--quantize", "int8"], "is already quantized"),
        ([str(pruned_int8), "--prune", "0.9"], "is already quantized"),
        ([str(xor_dir), "--quantize", "int8"], "layer 1 is sigmoid; int8 supports dense, conv2d"),
        ([str(linear_dir), "--prune", "0.5", "--structured"], "no hidden layer"),
        ([str(xor_dir), "--prune", "0.5", "--augment-shift", "1"], "takes 2 features"),
        ([str(tmp_path), "--quantize", "int8"], "model.safetensors: not found"),
        ([str(model_dir), "--quantize", "int8", "--out", str(model_dir)], "is the input"),
    ]
    for args, message in cases:
        full = args if "--out" in args else [*args, "--out", str(out)]
        assert cli.main(full) == 2, args
        assert message in capsys.readouterr().err, args
        assert not out.exists()
    pruned = tmp_path / "p"
    assert cli.main([str(model_dir), "--prune", "0.5", *FAST, "--out", str(pruned)]) == 0
    capsys.readouterr()
    assert cli.main([str(pruned), "--prune", "0.9", "--out", str(out)]) == 2
    assert "is already pruned" in capsys.readouterr().err


def test_existing_out_needs_force(model_dir, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert cli.main([str(model_dir), "--quantize", "int8", "--calib-images", "200", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    # --force replaces only compress's own files: a user's directory is never replaced (zoo/outputs.py)
    assert cli.main([str(model_dir), "--quantize", "int8", "--calib-images", "200", "--quiet", "--force",
                     "--out", str(out)]) == 2
    assert (out / "keep.txt").read_text() == "mine" and not (out / "model.safetensors").exists()
    fresh = tmp_path / "fresh"
    assert cli.main([str(model_dir), "--quantize", "int8", "--calib-images", "200", "--quiet", "--out",
                     str(fresh)]) == 0
    assert modeldir.load(fresh).meta["quantization"]["scheme"] == "int8"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary directory left behind"
    # an earlier output is regenerated with --force, and whatever else it holds stays
    (fresh / ".step-compress.json").write_text("{}")
    assert cli.main([str(model_dir), "--prune", "0.5", "--quantize", "int8", *FAST, "--out", str(fresh)]) == 2
    assert cli.main([str(model_dir), "--prune", "0.5", "--quantize", "int8", *FAST, "--force", "--out",
                     str(fresh)]) == 0
    assert "sparsity" in modeldir.load(fresh).meta and (fresh / ".step-compress.json").exists()
    plain = tmp_path / "file"
    plain.write_text("x")
    assert cli.main([str(model_dir), "--quantize", "int8", "--out", str(plain)]) == 2
    assert plain.read_text() == "x"
