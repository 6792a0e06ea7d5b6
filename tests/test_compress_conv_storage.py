"""A conv net whose dense head is stored sparse (pairs) and shared (code3), as `python -m compress --structured
--prune-dense` / `--share` write it: firmware.build runs those kernels after the convs, and rp2040_sim gives the
golden model's outputs bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from compress import layout, reference
from compress.netspec import for_inference
from compress.quantize import quantize_model
from conftest import require_tool
from firmware_support import elf_symbols
from firmware import build as fwbuild
from test_firmware_conv_build import infer
from zoo import modeldir
from zoo.nn import Conv2D, Dense, Flatten, Input, MaxPool2D, ReLU, Sequential

CODEBOOK = np.array([-97, -41, -9, 13, 52, 88, 127])


def save_sparse_shared_cnn(directory, mnist, seed=0):
    """Conv 1->4 (stride 2), max pool, dense 196->24 with 85 % zero weights, dense 24->10 whose int8 weights take
    7 values at one scale (what --share exports)."""
    rng = np.random.default_rng(seed)
    spec = Sequential([Input(28, 28, 1), Conv2D(1, 4, 3, 2, "same"), ReLU(), MaxPool2D(2), Flatten(),
                       Dense(196, 24), ReLU(), Dense(24, 10)])
    params = [{k: rng.uniform(-0.6, 0.6, s).astype(np.float32) for k, s in layer.param_shapes().items()}
              for layer in spec.layers]
    params[5]["w"] *= rng.uniform(size=params[5]["w"].shape) > 0.85
    codes = rng.integers(0, len(CODEBOOK) + 1, (10, 24))
    wq = np.where(codes < len(CODEBOOK), CODEBOOK[np.minimum(codes, len(CODEBOOK) - 1)], 0).astype(np.int8)
    scale = 0.6 / 127
    params[7]["w"] = (wq.T * scale).astype(np.float32)
    meta = {"model": directory.name, "dataset": "mnist", "input": {"scale": 1 / 255, "features": 784},
            "dtype": "float32", "seed": seed, "picozoo_version": "0.1.0"}
    ispec, iparams = for_inference(spec, params)
    qmeta, extra, qparams = quantize_model(ispec, iparams, 1 / 255, mnist.x_test[:64],
                                           weights={7: (wq, np.full(10, scale))})
    for lm in qmeta["layers"]:
        if lm["type"] == "dense":
            i = lm["index"]
            lm["storage"] = layout.choose_storage(extra[f"q.layers.{i}.w"], extra[f"q.layers.{i}.multiplier"],
                                                  extra[f"q.layers.{i}.shift"])
            for name, tensor in layout.storage_tensors(lm["storage"], extra[f"q.layers.{i}.w"]).items():
                extra[f"s.layers.{i}.{name}"] = tensor
    modeldir.save(directory, ispec, qparams, {**meta, "quantization": qmeta}, metrics={"model": directory.name},
                  extra=extra)
    return directory


@pytest.fixture(scope="module")
def built(tmp_path_factory, mnist):
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy")
    root = tmp_path_factory.mktemp("cnn")
    model_dir = save_sparse_shared_cnn(root / "sparse_shared_cnn", mnist)
    return model_dir, fwbuild.build(model_dir, root / "q8", images=2, quiet=True, cores="1")


def test_sparse_and_shared_dense_heads_are_bit_exact(built, mnist):
    model_dir, q8 = built
    model = modeldir.load(model_dir)
    storage = {lm["index"]: lm.get("storage") for lm in model.meta["quantization"]["layers"] if lm["type"] == "dense"}
    assert storage == {5: "sparse", 7: "shared"}
    rows = np.concatenate([mnist.x_test[:3], np.random.default_rng(1).integers(0, 256, (2, 784), dtype=np.uint8)])
    outs, classes, _, _ = infer(q8, rows)
    want = reference.forward(model, rows)
    got = np.array([np.frombuffer(o, np.int8) for o in outs])
    np.testing.assert_array_equal(got, want)
    assert classes == reference.predict(model, want).tolist()
    assert len(set(map(bytes, got))) > 1  # different images give different outputs: the test can fail
    symbols = elf_symbols(q8.out_dir / "firmware.elf")
    assert "pz_l5_rowlen" in symbols and "pz_l7_codebook" in symbols, "the sparse and shared tables are linked"
