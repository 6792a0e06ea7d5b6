"""Normalisation identical in the host model, the int8 golden model and the firmware: tiny nets trained for one
epoch on a float .npz (raw values far from unit scale, so `standard` normalisation matters), int8-quantized by
compress, built, and run in rp2040_sim on the user's raw float32 values. The chip's normalised (float) and quantized
(int8) input bytes equal the host's, int8 outputs are bit-exact with the golden model, predictions equal the
host's, and the UART report of the built-in float test samples matches too."""

from __future__ import annotations

import re

import numpy as np
import pytest

from compress import quantize
from tests.conftest import require_tool
from zoo import data, host, modeldir, userdata
from zoo.models import ModelConfig
from zoo.nn import Conv2D, Dense, Flatten, Input, ReLU, Sequential
from zoo.normalize import Normalization

IMAGES = 12
LINE = re.compile(r"img (\d+) label (\d+) pred (-?\d+) us (\d+)")
SPECS = {
    "mlp": Sequential([Dense(12, 16), ReLU(), Dense(16, 3)]),
    "conv": Sequential([Input(1, 4, 3), Conv2D(3, 4, 3, 1, "same"), ReLU(), Flatten(), Dense(16, 3)]),
}


def windows(n, seed):
    """(n, 4, 3) windows of a 3-axis signal, three classes, raw values around 500 +- 40 (not unit scale)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = np.arange(4)[None, :, None]
    x = 500 + 40 * np.sin(t * (y[:, None, None] + 1) + np.arange(3)) + rng.normal(0, 5, (n, 4, 3))
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    require_tool("arm-none-eabi-gcc")
    from compress.cli import main as compress_main
    from firmware import build as fwbuild
    from zoo.train import train_and_evaluate
    root = tmp_path_factory.mktemp("userchip")
    (x, y), (xt, yt) = windows(240, 1), windows(60, 2)
    np.savez(root / "w.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    builds = {}
    for name, spec in SPECS.items():
        ds = userdata.load_file(root / "w.npz", input_shape=spec.input_shape, n_classes=3)
        cfg = ModelConfig(f"user_{name}", spec, dataset="user", epochs=1, batch_size=16, lr=1e-2)
        train_and_evaluate(cfg, root / name, dataset=ds, progress=False)
        assert compress_main([str(root / name), "--quantize", "int8", "--out", str(root / name / "int8")]) == 0
        for variant in (root / name, root / name / "int8"):
            out = root / "build" / f"{name}-{variant.name}"
            fwbuild.build(variant, out, images=IMAGES, quiet=True, cores="1")
            builds[f"{name}-{'int8' if variant.name == 'int8' else 'float'}"] = (variant, out)
    return builds


@pytest.mark.parametrize("which", ["mlp-float", "mlp-int8", "conv-float", "conv-int8"])
def test_chip_matches_host_on_raw_float_input(built, which):
    from rp2040_sim import eval as sim_eval
    model_dir, out = built[which]
    report = sim_eval.evaluate(out, images=40, jobs=1, progress=False)
    assert report["agreement_with_host"] == 1.0, report["disagreements"]
    if which.endswith("int8"):
        assert report["max_abs_output_diff"] == 0.0          # bit-exact with compress's golden model
    else:
        assert report["max_abs_output_diff"] < 1e-4          # float summation order only
    assert report["accuracy"] > 0.6


def test_chip_input_layer_writes_the_hosts_quantized_input(built):
    """Layer 0 of an int8 MLP writes pz_buf0 (not reused by the two dense layers after it): the int8 input as
    offset-binary bytes. (The float kernels' bits are compared with NumPy on the host: test_zoo_userdata.py.)"""
    from rp2040_sim import eval as sim_eval
    model_dir, out = built["mlp-int8"]
    model = modeldir.load(model_dir)
    harness = sim_eval.Harness(out, sim_eval.read_build(out))
    ds = data.load_for_model(model.meta)
    norm = Normalization.from_meta(model.meta["input"])
    addr = harness.image.elf.addr("pz_buf0")
    for raw in ds.x_test[:5]:
        harness.infer_one(raw)
        x = norm.apply(raw[None], np.float32)[0]
        qin = model.meta["quantization"]["input"]
        want = (quantize.quantize_input(x, qin["inv_scale"], qin["zero_point"]) + 128).astype(np.uint8)
        assert harness.sim.read(addr, 12) == want.tobytes()


def test_uart_report_of_the_built_in_float_samples(built):
    from rp2040_sim import runner
    model_dir, out = built["mlp-int8"]
    result, _ = runner.run_image(out / "firmware.uf2")
    assert result.stop.ok, result.fault_report
    rows = [LINE.fullmatch(line) for line in result.uart.splitlines()[:IMAGES]]
    assert all(rows)
    model = modeldir.load(model_dir)
    ds = data.load_for_model(model.meta)
    _, expected = host.reference(model, ds.x_test[:IMAGES])
    assert [int(m[2]) for m in rows] == ds.y_test[:IMAGES].tolist()
    assert [int(m[3]) for m in rows] == expected.tolist()


def test_golden_model_quantizes_exactly_as_quantize_input(built):
    """The int8 input scale and zero point are calibrated on the normalised training split: its extremes map to the
    ends of the int8 range."""
    model = modeldir.load(built["mlp-int8"][0])
    qin = model.meta["quantization"]["input"]
    ds = data.load_for_model(model.meta)
    x = Normalization.from_meta(model.meta["input"]).apply(ds.x_train, np.float32)
    q = quantize.quantize_input(x, qin["inv_scale"], qin["zero_point"])
    assert q.min() >= -128 and q.max() <= 127 and (q == -128).any() and (q == 127).any()  # min/max calibrated
    assert qin["raw"] == "float32" and model.meta["input"]["normalize"]["mode"] == "standard"


def test_export_takes_the_users_raw_float_values(built, tmp_path):
    """firmware.export of an int8 model of float data: pz_model_infer_f32 copies the raw values into the float
    pz_input, which layer 0 normalises and quantizes, so a firmware with its own main matches the golden model."""
    from compress import reference
    from firmware import build as fwbuild
    from firmware import export as fwexport
    from tests.test_firmware_export import run_exported
    model_dir, _ = built["mlp-int8"]
    out = tmp_path / "lib"
    fwexport.export(model_dir, out)
    model = modeldir.load(model_dir)
    raw = (np.round(data.load_for_model(model.meta).x_test[:6] * 2) / 2).astype(np.float32)  # exact in C text
    got = run_exported(fwbuild.find_toolchain(), out, tmp_path, raw, int8=False)
    q = reference.forward(model, raw)
    assert np.array_equal(got["classes"], reference.predict(model, q))
    o = model.meta["quantization"]["output"]
    assert np.allclose(got["scores"], o["scale"] * (q.astype(np.float64) - o["zero_point"]), rtol=1e-6)


def test_eval_refuses_a_build_whose_input_type_is_not_the_models(built, tmp_path):
    import json
    import shutil
    from rp2040_sim import eval as sim_eval
    _, out = built["mlp-int8"]
    for value, message in (("uint8_t", "input_ctype 'uint8_t' but the model .* takes float input; rebuild"),
                           ("double", r"input_ctype 'double', expected one of \['float', 'uint8_t'\]")):
        copy = tmp_path / value
        shutil.copytree(out, copy)
        build = json.loads((copy / "build.json").read_text())
        (copy / "build.json").write_text(json.dumps({**build, "input_ctype": value}))
        with pytest.raises(sim_eval.EvalError, match=message):
            sim_eval.evaluate(copy, images=1, jobs=1, progress=False)


def test_eval_says_when_the_data_file_is_gone(built, tmp_path):
    """A model directory whose recorded data file is gone: rp2040_sim eval names the file and the fix."""
    import json
    import shutil
    from rp2040_sim import eval as sim_eval
    model_dir, out = built["mlp-int8"]
    model = modeldir.load(model_dir)
    moved = tmp_path / "model"
    meta = {k: v for k, v in model.meta.items() if k != "spec"}
    meta["data"] = {**meta["data"], "path": str(tmp_path / "gone.npz")}
    modeldir.save(moved, model.spec, model.params, meta, model.metrics, model.extra)
    copy = tmp_path / "build"
    shutil.copytree(out, copy)
    build = json.loads((copy / "build.json").read_text())
    (copy / "build.json").write_text(json.dumps({**build, "model_dir": str(moved)}))
    with pytest.raises(sim_eval.EvalError, match="gone.npz: the data file this model was trained on .* is gone; "
                                                 "put it back at that path or retrain"):
        sim_eval.evaluate(copy, images=1, jobs=1, progress=False)
