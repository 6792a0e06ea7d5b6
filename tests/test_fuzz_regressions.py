"""Regressions from benchmarks/fuzz_models.py (random whole networks through compress, firmware.build and
rp2040_sim), each reduced to the smallest spec that showed it; docs/BENCHMARKS.md "Random whole networks (fuzzing)".
Firmware is booted in rp2040_sim and its pz_infer outputs compared with zoo.host's on MNIST rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import require_tool
from firmware import build as fwbuild
from rp2040_sim import eval as sim_eval
from zoo import host, modeldir
from zoo.nn import Conv2D, Dense, Flatten, Input, MaxPool2D, ReLU, ReLU6, Sequential

ROWS = 3


def save_random(directory, spec, dtype="float32", seed=0):
    """A model directory of `spec` (MNIST input) with params uniform in [-2, 2]: pre-activations well past 6."""
    rng = np.random.default_rng(seed)
    params = [{k: rng.uniform(-2, 2, shape).astype(dtype) for k, shape in layer.param_shapes().items()}
              for layer in spec.layers]
    meta = {"model": directory.name, "dataset": "mnist", "input": {"scale": 1 / 255, "features": 784},
            "dtype": dtype, "seed": seed, "picozoo_version": "0.1.0"}
    modeldir.save(directory, spec, params, meta, metrics={"model": directory.name})
    return directory


def chip_outputs(out_dir, rows):
    """pz_infer's outputs (float64) and classes for each raw row, the build booted once in rp2040_sim."""
    harness = sim_eval.Harness(out_dir, sim_eval.read_build(out_dir))
    runs = [harness.infer_one(r) for r in rows]
    return np.stack([r[1] for r in runs]), [int(r[0]) for r in runs]


# Fuzz seed 1, cases 21/31/46/50 (dense -> relu6 in a float conv net) and 51/58 (max_pool2d -> relu6): the float
# firmware fused ReLU6 into a conv only and refused it anywhere else, although zoo.nn, zoo.host, training and the
# int8 firmware all take it; a float MLP with ReLU6 was refused as "no float kernel" too.
RELU6_SPECS = {
    "conv-float32": (Sequential([Input(28, 28, 1), Conv2D(1, 2, 3, 2, "valid"), MaxPool2D(2), ReLU6(), Flatten(),
                                 Dense(72, 8), ReLU6(), Dense(8, 3)]), "float32"),
    "mlp-float64": (Sequential([Dense(784, 6), ReLU6(), Dense(6, 3)]), "float64"),
}


@pytest.mark.parametrize("name", sorted(RELU6_SPECS))
def test_float_relu6_after_a_pool_or_dense_runs_on_the_chip(tmp_path, mnist, name):
    require_tool("arm-none-eabi-gcc")
    spec, dtype = RELU6_SPECS[name]
    model_dir = save_random(tmp_path / name, spec, dtype)
    out = tmp_path / "build"
    fwbuild.build(model_dir, out, images=1, quiet=True, cores="1")
    # MNIST rows and rows of 255s, on which some pre-activations pass 6: the clamp changes the outputs
    rows = np.concatenate([mnist.x_test[:ROWS], np.full((2, 784), 255, np.uint8)])
    model = modeldir.load(model_dir)
    want = host.forward(model, rows)
    as_relu = Sequential([ReLU() if isinstance(layer, ReLU6) else layer for layer in spec.layers])
    assert not np.allclose(host.forward(dataclasses.replace(model, spec=as_relu), rows), want)
    got, classes = chip_outputs(out, rows)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())
    assert classes == np.argmax(want, axis=1).tolist()


# Fuzz seed 1 cases 1/12/51/58 and seed 2 cases 6/18/36/40/44 (relu or relu6 after max_pool2d): compress refused
# the int8 variant ("does not follow a dense or conv layer"), although the activation commutes with the max pool,
# the float firmware runs it and it is PyTorch's relu(max_pool2d(conv(x))). Now moved before the pools
# (compress.netspec.hoist_activations), merged with a conv's own ReLU/ReLU6 before them.
HOISTED = Sequential([Input(28, 28, 1), Conv2D(1, 4, 3, 2, "valid"), MaxPool2D(2), ReLU(),          # 13 -> 6
                      Conv2D(4, 6, 3, 1, "same"), ReLU6(), MaxPool2D(3, 1, "same"), MaxPool2D(2), ReLU(),  # 3
                      Flatten(), Dense(54, 10)])


def test_activation_after_max_pools_moves_before_them_exactly(mnist):
    from compress import netspec
    spec = HOISTED
    rng = np.random.default_rng(0)
    params = [{k: rng.uniform(-2, 2, s).astype(np.float32) for k, s in layer.param_shapes().items()}
              for layer in spec.layers]
    ispec, iparams = netspec.for_inference(spec, params)
    assert [layer.kind for layer in ispec.layers] == [
        "input", "conv2d", "relu", "max_pool2d", "conv2d", "relu6", "max_pool2d", "max_pool2d", "flatten", "dense"]
    rows = mnist.x_test[:20]
    meta = {"input": {"scale": 1 / 255, "features": 784}, "dtype": "float32"}
    want = host.forward(modeldir.SavedModel(spec, params, meta), rows)
    got = host.forward(modeldir.SavedModel(ispec, iparams, meta), rows)
    np.testing.assert_array_equal(got, want)      # the same float operations on the same values: bit for bit


def test_int8_relu_after_max_pool_through_compress_and_the_chip(tmp_path, mnist):
    """`python -m compress --quantize int8` takes it, and the int8 firmware is bit-exact with the golden model."""
    require_tool("arm-none-eabi-gcc")
    from compress import reference
    from compress.cli import main as compress_main
    model_dir = save_random(tmp_path / "hoisted", HOISTED)
    assert compress_main([str(model_dir), "--quantize", "int8", "--calib-images", "64", "--quiet", "--out",
                          str(model_dir / "int8")]) == 0
    model = modeldir.load(model_dir / "int8")
    assert model.meta["compression"]["steps"][0] == {"pass": "inference", "batch_norm_folded": 0,
                                                     "dropout_removed": 0, "activations_moved_before_max_pools": 2}
    out = tmp_path / "build"
    fwbuild.build(model_dir / "int8", out, images=1, quiet=True, cores="1")
    rows = np.concatenate([mnist.x_test[:ROWS], np.full((1, 784), 255, np.uint8)])
    want = reference.forward(model, rows)
    got, classes = chip_outputs(out, rows)
    np.testing.assert_array_equal(got, want)
    assert classes == reference.predict(model, want).tolist()
    assert len({tuple(r) for r in want.tolist()}) > 1


def test_int8_relu_after_avg_pool_is_refused_with_the_reason(tmp_path, capsys):
    from compress.cli import main as compress_main
    from zoo.nn import AvgPool2D
    spec = Sequential([Input(28, 28, 1), Conv2D(1, 2, 3, 2, "valid"), AvgPool2D(2), ReLU(), Flatten(),
                       Dense(72, 3)])
    model_dir = save_random(tmp_path / "avg", spec)
    assert compress_main([str(model_dir), "--quantize", "int8", "--quiet", "--out", str(tmp_path / "q")]) != 0
    err = capsys.readouterr().err
    assert "layer 3 (relu)" in err and "after an avg_pool2d it would change the model" in err
    assert not (tmp_path / "q").exists()


def test_compress_refuses_fewer_outputs_than_the_datasets_classes(tmp_path, capsys):
    """Found while reducing the max-pool case: a 5-output model on MNIST (labels 0..9) crashed compress with an
    IndexError traceback in its test loss, after quantizing; now a clear refusal before any work."""
    from compress.cli import main as compress_main
    spec = Sequential([Input(28, 28, 1), Conv2D(1, 2, 3, 2, "valid"), ReLU(), Flatten(), Dense(338, 5)])
    model_dir = save_random(tmp_path / "five", spec)
    assert compress_main([str(model_dir), "--quantize", "int8", "--quiet", "--out", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err
    assert "has 5 outputs but its dataset 'mnist' has labels 0..9" in err and "Traceback" not in err
    assert not (tmp_path / "q").exists()
