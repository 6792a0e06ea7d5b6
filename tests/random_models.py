"""Models with random params and the NumPy host model's outputs for them (one copy for tests/test_zoo_nn.py and
benchmarks/gpu_precision_check.py, which compare JAX with the host model on every device)."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from zoo import host, modeldir


def random_params(spec, seed):
    """Params with non-trivial BatchNorm statistics (init gives mean 0, var 1, gamma 1, beta 0)."""
    return batch_norm_statistics(spec, spec.init(jax.random.key(seed)), np.random.default_rng(seed))


def batch_norm_statistics(spec, params, rng):
    """params (NumPy arrays) with every BatchNorm's gamma, beta, mean and var drawn from rng (in that order), so
    that folding it changes the network (also benchmarks/fuzz_models.py's)."""
    out = []
    for layer, p in zip(spec.layers, params):
        p = {k: np.asarray(v) for k, v in p.items()}
        if layer.kind == "batch_norm":
            c = layer.features
            p = {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(0, 0.2, c), "mean": rng.normal(0, 0.3, c),
                 "var": rng.uniform(0.3, 2.0, c)}
            p = {k: v.astype(np.float32) for k, v in p.items()}
        out.append(p)
    return out


def host_reference(name: str, cfg, directory: Path, rows: int, seed: int = 3):
    """(params, raw, host outputs): registry model `name` (config cfg) with random_params(seed), saved as a float32
    model directory in `directory`, and zoo.host.forward's outputs for `rows` random uint8 images."""
    spec = cfg.spec
    params = random_params(spec, seed)
    meta = {"model": name, "dataset": cfg.dataset, "input": {"scale": 1 / 255, "features": spec.in_features},
            "dtype": "float32", "seed": seed}
    modeldir.save(directory, spec, params, meta)
    raw = np.random.default_rng(0).integers(0, 256, (rows, spec.in_features), dtype=np.uint8)
    return params, raw, host.forward(modeldir.load(directory), raw)


def save_uniform_cnn(directory: Path, spec, name: str, calibration, seed: int, scale: float, int8: bool = True):
    """Model directory `directory` of the image model `spec` (MNIST-shaped input, no BatchNorm) with every param
    uniform in [-scale, scale] (NumPy seed): int8 as `python -m compress --quantize int8` writes it, calibrated on
    `calibration` (uint8 rows), or float32. For the two-core firmware tests, which need activations of every sign."""
    from compress.quantize import quantize_model

    rng = np.random.default_rng(seed)
    params = [{k: rng.uniform(-scale, scale, shp).astype(np.float32) for k, shp in layer.param_shapes().items()}
              for layer in spec.layers]
    meta = {"model": name, "dataset": "mnist", "input": {"scale": 1 / 255, "features": 784}, "dtype": "float32",
            "seed": seed, "picozoo_version": "0.1.0"}
    if not int8:
        modeldir.save(directory, spec, params, meta, metrics={"model": "f32"})
        return directory
    qmeta, extra, qparams = quantize_model(spec, params, 1 / 255, calibration)
    modeldir.save(directory, spec, qparams, {**meta, "quantization": qmeta}, metrics={"model": "int8"}, extra=extra)
    return directory
