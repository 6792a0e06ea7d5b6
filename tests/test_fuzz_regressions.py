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
