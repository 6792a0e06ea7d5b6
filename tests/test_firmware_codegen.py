"""firmware.codegen: the generated C compiles warning-free and, compiled for the host, equals the host model."""

import ctypes
import re
from pathlib import Path

import numpy as np
import pytest

from firmware import codegen, hostcc
from firmware_support import make_model
from zoo import host, modeldir

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
KERNEL_SOURCES = ["input.c", "dense_f32.c", "dense_f64.c", "activations.c", "argmax.c", "layers.c"]


def host_network(model_dir: Path, out: Path):
    """Generate model.c/.h and compile them with the runtime's network.c and the kernels for the host."""
    model = modeldir.load(model_dir)
    files = codegen.generate_model(model, str(model_dir))
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    sources = [out / "model.c", FIRMWARE / "runtime" / "network.c",
               *[FIRMWARE / "kernels" / s for s in KERNEL_SOURCES]]
    lib = hostcc.build(sources, include_dirs=[out, FIRMWARE / "kernels"], name="pz_model")
    return model, lib


def run_host(model, lib, raw: np.ndarray):
    features = model.meta["input"]["features"]
    ctype = {"float32": ctypes.c_float, "float64": ctypes.c_double}[model.meta["dtype"]]
    outputs = model.spec.out_features
    pz_input = (ctypes.c_uint8 * features).in_dll(lib, "pz_input")
    pz_output = (ctype * outputs).in_dll(lib, "pz_output")
    preds, ys = [], []
    for row in raw:
        ctypes.memmove(pz_input, row.tobytes(), features)
        preds.append(lib.pz_infer())
        ys.append(np.array(pz_output[:], dtype=model.meta["dtype"]))
    return np.array(preds), np.array(ys)


@pytest.mark.parametrize("case", [
    dict(sizes=(784, 24, 10), activation="relu", dtype="float32"),
    dict(sizes=(784, 12, 7, 10), activation="tanh", dtype="float64"),
    dict(sizes=(784, 9, 10), activation="sigmoid", dtype="float32"),
    dict(sizes=(2, 3, 1), activation="sigmoid", dtype="float32", output="binary", dataset="xor", scale=1.0),
    dict(sizes=(2, 3, 1), activation="tanh", dtype="float64", output="binary", dataset="xor", scale=1.0),
])
def test_generated_model_equals_host_model(tmp_path, case):
    model_dir = make_model(tmp_path / "m", **case)
    model, lib = host_network(model_dir, tmp_path / "gen")
    rng = np.random.default_rng(1)
    features = case["sizes"][0]
    raw = rng.integers(0, 256 if features > 2 else 2, (40, features), dtype=np.uint8)
    raw[:, : features // 3] = 0  # MNIST-like zero border exercises the dense kernel's zero skip
    preds, ys = run_host(model, lib, raw)
    expected = host.forward(model, raw)
    eps = np.finfo(model.meta["dtype"]).eps
    np.testing.assert_allclose(ys, expected, rtol=0, atol=64 * eps * max(1.0, np.abs(expected).max()))
    # the class must agree wherever the host's top two outputs are not within rounding of each other
    top2 = np.sort(expected, axis=-1)[:, -2:] if expected.shape[-1] > 1 else None
    clear = (top2[:, 1] - top2[:, 0] > 1e-4) if top2 is not None else np.abs(expected[:, 0] - 0.5) > 1e-4
    np.testing.assert_array_equal(preds[clear], host.predict(model, expected)[clear])


def test_generated_files_are_marked_prefixed_and_deterministic(tmp_path):
    model = modeldir.load(make_model(tmp_path / "m"))
    first = codegen.generate_model(model, "m")
    assert first == codegen.generate_model(model, "m")
    for name, text in first.items():
        assert "GENERATED" in text.splitlines()[0] and "do not edit" in text.splitlines()[0], name
    # every external symbol the generated C defines starts with pz_
    defined = re.findall(r"^(?:const |static )*\w+ (\w+)\[", first["model.c"], re.M)
    defined += re.findall(r"^const \w+ (\w+) =", first["model.c"], re.M)
    assert defined and all(name.startswith("pz_") for name in defined), defined


def test_weights_are_const_in_flash_and_mutable_in_ram(tmp_path):
    model = modeldir.load(make_model(tmp_path / "m"))
    flash = codegen.generate_model(model, "m", "flash")["model.c"]
    ram = codegen.generate_model(model, "m", "ram")["model.c"]
    assert re.search(r"^const float pz_l0_w\[12544\]", flash, re.M)
    assert re.search(r"^float pz_l0_w\[12544\]", ram, re.M)


def test_float_literals_round_trip_exactly(tmp_path):
    for dtype in ("float32", "float64"):
        dt = codegen.DTYPES[dtype]
        values = np.random.default_rng(0).normal(0, 10, 1000).astype(dtype)
        values = np.concatenate([values, np.array([0.0, -0.0, 1e-38, 3.4e38, 1.0], dtype)])
        parsed = np.array([float(codegen.c_float(v, dt).rstrip("f")) for v in values], dtype)
        np.testing.assert_array_equal(parsed, values)


def test_rejects_non_finite_weights(tmp_path):
    model = modeldir.load(make_model(tmp_path / "m"))
    model.params[0]["w"][3, 4] = np.nan
    with pytest.raises(codegen.CodegenError, match="m: layer 0 has non-finite weights"):
        codegen.generate_model(model, "m")


def test_rejects_unsupported_dtype_and_placement(tmp_path):
    model = modeldir.load(make_model(tmp_path / "m"))
    with pytest.raises(codegen.CodegenError, match="weights_in 'eeprom'"):
        codegen.generate_model(model, "m", "eeprom")
    model.meta["dtype"] = "int8"
    with pytest.raises(codegen.CodegenError, match="m: dtype 'int8' has no float kernels"):
        codegen.generate_model(model, "m")


def test_testdata(tmp_path):
    images = np.arange(2 * 5, dtype=np.uint8).reshape(2, 5)
    files = codegen.generate_testdata(images, np.array([3, 7]))
    assert "#define PZ_TEST_IMAGES 2u" in files["testdata.h"]
    assert "0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09" in files["testdata.c"]
    with pytest.raises(codegen.CodegenError, match="uint8"):
        codegen.generate_testdata(images.astype(np.int32), np.array([3, 7]))


def test_cli(tmp_path, capsys):
    model_dir = make_model(tmp_path / "m")
    assert codegen.main([str(model_dir), "--out", str(tmp_path / "gen")]) == 0
    assert (tmp_path / "gen" / "model.c").is_file()
    assert codegen.main([str(tmp_path / "missing"), "--out", str(tmp_path / "gen2")]) == 1
    assert "model.safetensors: not found" in capsys.readouterr().err
    assert not (tmp_path / "gen2").exists()


def test_rejects_layers_wider_than_the_table_allows(tmp_path):
    model = modeldir.load(make_model(tmp_path / "wide", sizes=(2, 70000, 1), activation="relu",
                                     output="binary", dataset="xor", scale=1.0))
    with pytest.raises(codegen.CodegenError, match="wide: layer 0 width 70000 exceeds the layer table's uint16"):
        codegen.generate_model(model, "wide")
