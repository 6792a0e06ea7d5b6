"""The user's own data (zoo/userdata.py, zoo/normalize.py): every format, every validation error (each names the file,
the array or line, and the value), normalisation fitted on the training split and recorded in the model directory,
`python -m zoo.train --data`, `python -m compress` and `python -m zoo.import --data` on it."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from compress import quantize
from zoo import data, host, modeldir, userdata
from zoo.data import DataError
from zoo.normalize import Normalization, NormalizeError, fit

RNG = np.random.default_rng(0)


def blobs(n, features=6, classes=3, seed=0, dtype=np.float32):
    """Separable float data: class centres far apart in raw units (offset and scale unlike a unit Gaussian)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(50, 20, (classes, features))
    y = rng.integers(0, classes, n)
    x = centres[y] + rng.normal(0, 3, (n, features))
    return x.astype(dtype), y.astype(np.int64)


def write_npz(path, **arrays):
    base = dict(zip(("x_train", "y_train"), blobs(60, seed=1))) | dict(zip(("x_test", "y_test"), blobs(20, seed=2)))
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


def write_csv(path, x, y, label="label", names=None):
    header = [f"f{j}" for j in range(x.shape[1])]
    lines = [",".join(header[:1] + [label] + header[1:])]
    for row, lab in zip(x, y):
        cells = [repr(float(v)) for v in row]
        lines.append(",".join(cells[:1] + [names[lab] if names else str(int(lab))] + cells[1:]))
    path.write_text("\n".join(lines) + "\n")
    return path


# -- formats -----------------------------------------------------------------------------------------------------------
def test_npz_loads_flat_with_source_and_standard_normalisation(tmp_path):
    path = write_npz(tmp_path / "d.npz", class_names=np.array(["a", "b", "c"]))
    ds = userdata.load_file(path, input_shape=(6,), n_classes=3)
    assert ds.name == "user" and ds.x_train.dtype == np.float32 and ds.x_train.shape == (60, 6)
    assert ds.class_names == ["a", "b", "c"]
    assert ds.source == {"path": str(path.resolve()), "format": "npz",
                         "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    norm = ds.normalization
    assert norm.mode == "standard" and norm.raw == "float32"
    x_train = np.load(path)["x_train"].astype(np.float64)   # fitted on the training split only
    np.testing.assert_allclose(norm.mean, x_train.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.inv_std, 1 / x_train.std(0), rtol=1e-6)


def test_zoo_data_offers_the_same_calls(tmp_path):
    path = write_npz(tmp_path / "d.npz")
    a, b = data.load_file(path, normalize="scale"), userdata.load_file(path, normalize="scale")
    assert np.array_equal(a.x_test, b.x_test) and a.source == b.source
    assert a.normalization.scale == b.normalization.scale
    assert data.from_arrays(x_ok, y_ok, x_ok, y_ok, normalize="none").normalization.mode == "none"


def test_uint8_images_keep_the_byte_path_and_windows_fit_a_1xtxc_input(tmp_path):
    x = RNG.integers(0, 256, (10, 4, 4, 1), dtype=np.uint8)
    y = np.arange(10) % 2
    ds = userdata.from_arrays(x, y, x[:3], y[:3], input_shape=(4, 4, 1))
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == (10, 16) and ds.input_scale == 1 / 255
    assert ds.normalization.legacy                       # uint8 * 1/255: the firmware reads bytes as always
    windows = RNG.normal(0, 1, (8, 5, 3))                # (n, t, c) windows -> our (1, t, c) NHWC input or flat
    ds = userdata.from_arrays(windows, y[:8], windows, y[:8], input_shape=(1, 5, 3))
    assert ds.x_train.shape == (8, 15) and ds.normalization.raw == "float32"
    assert userdata.from_arrays(windows, y[:8], windows, y[:8], input_shape=(15,)).features == 15
    assert userdata.from_arrays(x[..., 0], y, x[:3, ..., 0], y[:3], input_shape=(4, 4, 1)).features == 16


def test_csv_with_test_fraction_is_seeded_and_string_labels_become_class_names(tmp_path):
    x, y = blobs(50)
    path = write_csv(tmp_path / "d.csv", x, y, names=["cat", "dog", "eel"])
    a = userdata.load_file(path, label_column="label", test_fraction=0.2, seed=3)
    b = userdata.load_file(path, label_column="label", test_fraction=0.2, seed=3)
    assert len(a.x_test) == 10 and len(a.x_train) == 40 and np.array_equal(a.x_test, b.x_test)
    assert a.class_names == ["cat", "dog", "eel"]
    assert a.source["test_fraction"] == 0.2 and a.source["seed"] == 3 and a.source["label_column"] == "label"
    rows = {tuple(r) for r in x.astype(np.float32)}
    assert all(tuple(r) in rows for r in a.x_test)      # the feature columns without the label column
    c = userdata.load_file(path, label_column="label", test_fraction=0.2, seed=4)
    assert not np.array_equal(a.x_test, c.x_test)


def test_csv_with_test_file(tmp_path):
    x, y = blobs(30)
    xt, yt = blobs(9, seed=5)
    ds = userdata.load_file(write_csv(tmp_path / "a.csv", x, y), label_column="label",
                            test_file=write_csv(tmp_path / "t.csv", xt, yt))
    np.testing.assert_array_equal(ds.y_test, yt)
    np.testing.assert_array_equal(ds.x_test, xt.astype(np.float32))
    assert ds.source["test_sha256"] == hashlib.sha256((tmp_path / "t.csv").read_bytes()).hexdigest()


def test_idx_directory(tmp_path):
    def idx(array):
        dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        return bytes([0, 0, 8, array.ndim]) + dims + array.astype(np.uint8).tobytes()
    x = RNG.integers(0, 256, (12, 3, 3), dtype=np.uint8)
    y = (np.arange(12) % 3).astype(np.uint8)
    for stem, arr in zip(data.IDX_FILES, (x, y, x[:4], y[:4])):
        (tmp_path / stem).write_bytes(idx(arr))
    ds = userdata.load_file(tmp_path, input_shape=(9,))
    assert ds.x_train.shape == (12, 9) and ds.source["format"] == "idx" and ds.normalization.legacy
    (tmp_path / data.IDX_FILES[3]).unlink()
    with pytest.raises(DataError, match=f"{tmp_path}: missing t10k-labels-idx1-ubyte"):
        userdata.load_file(tmp_path)


# -- validation: each error names the file, the array and the value ---------------------------------------------------
x_ok, y_ok = blobs(20)
NPZ_ERRORS = [
    ({"x_test": None}, r"missing array\(s\) x_test"),
    ({"X_train": x_ok}, r"unexpected array\(s\) X_train"),
    ({"x_train": x_ok.astype(bool)}, "array x_train has dtype bool"),
    ({"x_train": x_ok[:, 0]}, r"array x_train has shape \(20,\)"),
    ({"x_test": x_ok[:0], "y_test": y_ok[:0]}, "array x_test is empty"),
    ({"x_train": np.where(np.arange(20)[:, None] == 7, np.nan, x_ok)}, "array x_train holds NaN .* sample 7"),
    ({"x_test": np.full((20, 6), np.inf), "y_test": y_ok}, "array x_test holds NaN or infinite"),
    ({"x_train": np.full((20, 6), 1e39)}, "array x_train has values beyond float32's range"),
    ({"x_test": x_ok[:, :5], "y_test": y_ok}, r"x_train samples have shape \(6,\), x_test samples \(5,\)"),
    ({"x_train": x_ok, "y_train": np.eye(3)[y_ok]}, r"array y_train has shape \(20, 3\)"),
    ({"x_train": x_ok, "y_train": y_ok[:19]}, "array y_train has 19 labels for 20 samples"),
    ({"x_train": x_ok, "y_train": y_ok + 0.5}, r"array y_train: label 2.5 \(sample 0\) is not an integer"),
    ({"x_train": x_ok, "y_train": np.where(np.arange(20) == 4, -1, y_ok)}, r"array y_train: label -1 \(sample 4\)"),
    ({"x_train": x_ok, "y_train": np.zeros(20, int)}, r"array y_train has only 1 class \(\[0\]\)"),
    ({"x_test": x_ok, "y_test": np.full(20, 7)}, "array y_test: label 7 is out of range for the model's 3 outputs"),
    ({"class_names": np.array(["a", "b"])}, "array class_names has 2 names for labels 0..2"),
    ({"class_names": np.array([1, 2, 3])}, "array class_names must be a 1-D array of strings"),
    ({"x_train": np.array([[object()]] * 20)}, "array x_train: cannot be read without pickle"),
]


@pytest.mark.parametrize("arrays,message", NPZ_ERRORS, ids=[m[:30] for _, m in NPZ_ERRORS])
def test_npz_errors_name_the_file_array_and_value(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    if "x_train" in arrays and arrays["x_train"].dtype == object:
        np.savez(path, x_train=arrays["x_train"], y_train=y_ok, x_test=x_ok, y_test=y_ok)  # pickled
    else:
        write_npz(path, **arrays)
    with pytest.raises(DataError, match=f"^{path}: .*{message}"):
        userdata.load_file(path, input_shape=(6,), n_classes=3)


def test_shape_mismatch_with_the_spec_input(tmp_path):
    with pytest.raises(DataError, match=r"bad.npz: array x_train holds samples of shape \(6,\); the model's input "
                                        r"is \(1, 4, 2\)"):
        userdata.load_file(write_npz(tmp_path / "bad.npz"), input_shape=(1, 4, 2))


def test_file_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="nope.npz: no such file"):
        userdata.load_file(tmp_path / "nope.npz")
    (tmp_path / "d.json").write_text("{}")
    with pytest.raises(DataError, match=r"d.json: unknown data format '.json'"):
        userdata.load_file(tmp_path / "d.json")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz: not a readable .npz file"):
        userdata.load_file(tmp_path / "junk.npz")
    os.mkfifo(tmp_path / "fifo.npz")
    with pytest.raises(DataError, match="fifo.npz: not a regular file"):
        userdata.load_file(tmp_path / "fifo.npz")
    path = write_npz(tmp_path / "d.npz")
    monkeypatch.setattr(userdata, "MAX_ARRAY_BYTES", 100)
    with pytest.raises(DataError, match=r"d.npz: its arrays declare [0-9,]+ bytes decompressed, over picozoo's "
                                        r"limit of 100"):
        userdata.load_file(path)
    monkeypatch.setattr(userdata, "MAX_FILE_BYTES", 100)
    with pytest.raises(DataError, match=r"d.npz: [0-9,]+ bytes is over picozoo's limit of 100 bytes"):
        userdata.load_file(path)
    with pytest.raises(DataError, match="--test-file and --test-fraction are for .csv data"):
        userdata.load_file(write_npz(tmp_path / "e.npz"), test_fraction=0.5)


def test_csv_errors(tmp_path):
    x, y = blobs(10)
    good = write_csv(tmp_path / "d.csv", x, y)
    cases = [
        (dict(), "d.csv: a CSV file needs --label-column NAME"),
        (dict(label_column="class"), r"d.csv: no column 'class' in the header \(f0, label, f1"),
        (dict(label_column="label"), "d.csv: a CSV file needs its test split: --test-file TEST.csv or --test-frac"),
        (dict(label_column="label", test_fraction=1.5), "--test-fraction 1.5: must be between 0 and 1"),
        (dict(label_column="label", test_fraction=0.01), "d.csv: --test-fraction 0.01 of 10 rows leaves an empty"),
        (dict(label_column="label", test_fraction=0.5, test_file=good), "give --test-file or --test-fraction, not"),
    ]
    for kwargs, message in cases:
        with pytest.raises(DataError, match=message):
            userdata.load_file(good, **kwargs)
    text = good.read_text().splitlines()
    bad_cell = tmp_path / "cell.csv"
    bad_cell.write_text("\n".join(text[:3] + [text[3].replace(text[3].split(",")[2], "abc", 1)] + text[4:]))
    with pytest.raises(DataError, match=r"cell.csv: line 4 column 'f1': 'abc' is not a number"):
        userdata.load_file(bad_cell, label_column="label", test_fraction=0.5)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join(text[:2] + [text[2] + ",1"]))
    with pytest.raises(DataError, match="ragged.csv: line 3 has 8 columns, the header has 7"):
        userdata.load_file(ragged, label_column="label", test_fraction=0.5)
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(DataError, match="empty.csv: empty"):
        userdata.load_file(tmp_path / "empty.csv", label_column="label", test_fraction=0.5)
    narrow = write_csv(tmp_path / "narrow.csv", x[:, :4], y)
    with pytest.raises(DataError, match="narrow.csv: 4 feature columns, .*d.csv has 6"):
        userdata.load_file(good, label_column="label", test_file=narrow)
    named = write_csv(tmp_path / "named.csv", x, y, names=["a", "b", "c"])
    other = write_csv(tmp_path / "other.csv", x, y, names=["a", "b", "zebra"])
    with pytest.raises(DataError, match=r"other.csv: label 'zebra' does not occur in the training file's labels"):
        userdata.load_file(named, label_column="label", test_file=other)


def test_normalize_mode_is_checked():
    with pytest.raises(DataError, match=r"--normalize 'zscore': use one of none, scale, standard"):
        userdata.from_arrays(x_ok, y_ok, x_ok, y_ok, normalize="zscore")


# -- normalisation ----------------------------------------------------------------------------------------------------
def test_fit_modes():
    x = np.array([[1, 5, 2], [3, 5, -6]], np.float32)
    std = fit(x, "standard")
    np.testing.assert_array_equal(std.mean, np.float32([2, 5, -2]))
    np.testing.assert_array_equal(std.inv_std, np.float32([1, 1, 0.25]))   # a constant feature keeps inv_std 1
    assert fit(x, "scale").scale == np.float32(1 / 6) and fit(x, "scale").raw == "float32"
    assert fit(x, "none").scale == 1.0
    u8 = np.array([[0, 255]], np.uint8)
    assert fit(u8, "scale").legacy and fit(u8, "none").legacy and fit(u8, "standard").raw == "float32"
    with pytest.raises(NormalizeError, match="--normalize 'x'"):
        fit(x, "x")


def test_legacy_normalisation_is_bit_identical_to_raw_times_scale():
    raw = RNG.integers(0, 256, (50, 7), dtype=np.uint8)
    norm = Normalization.from_meta({"scale": 1 / 255, "features": 7})
    for dtype in (np.float32, np.float64):
        assert np.array_equal(norm.apply(raw, dtype), raw.astype(dtype) * np.dtype(dtype).type(1 / 255))
    mean, mult = norm.per_feature(7)
    assert np.array_equal((raw.astype(np.float32) - mean) * mult, norm.apply(raw))   # the firmware's form


def test_standard_round_trips_through_the_metadata_exactly():
    norm = fit(RNG.normal(3, 7, (40, 5)).astype(np.float32), "standard")
    back = Normalization.from_meta(json.loads(json.dumps(norm.to_meta(5))))
    assert back.mean.tobytes() == norm.mean.tobytes() and back.inv_std.tobytes() == norm.inv_std.tobytes()
    x = RNG.normal(3, 7, (9, 5)).astype(np.float32)
    want = (x - norm.mean) * norm.inv_std                 # float32 throughout, this order
    assert want.dtype == np.float32 and np.array_equal(back.apply(x), want)


def test_metadata_errors():
    for inp, message in [
        ({"scale": 1, "features": 2, "normalize": {"mode": "zscore"}}, "'input.normalize' must be an object"),
        ({"scale": 1, "features": 2, "raw": "int16", "normalize": {"mode": "none"}}, "'input.raw' is 'int16'"),
        ({"scale": 1, "features": 2, "normalize": {"mode": "standard", "mean": [0], "inv_std": [1, 1]}},
         r"'input.normalize.mean' must be a list of 2 finite numbers"),
        ({"scale": 1, "features": 1, "normalize": {"mode": "standard", "mean": [0], "inv_std": [0.0]}},
         "inv_std positive"),
    ]:
        with pytest.raises(NormalizeError, match=message):
            Normalization.from_meta(inp, "m")


def test_quantize_input_rounds_half_away_and_clamps():
    x = np.float32([0.5, 1.5, -0.5, -1.5, 0.49999997, 2.4, -2.6, 1e9, -1e9, np.nan, 0.0])
    q = quantize.quantize_input(x, inv_scale=1.0, zero_point=3)
    assert q.tolist() == [4, 5, 2, 1, 3, 5, 0, 127, -128, -128, 3]   # 0.49999997 + 0.5 would round to 1.0


def test_input_kernels_compute_the_same_bits_as_numpy():
    """firmware/kernels/input.c compiled for the host (IEEE float32 like the chip's soft float) against
    Normalization.apply and quantize_input, on random values, exact .5 ties, NaN and out-of-range values."""
    import ctypes
    from pathlib import Path
    from firmware import hostcc
    kernels = Path(__file__).resolve().parent.parent / "firmware" / "kernels"
    lib = hostcc.build([kernels / "input.c"], include_dirs=[kernels], name="pz_input")
    n = 4000
    rng = np.random.default_rng(1)
    raw = rng.normal(40, 30, n).astype(np.float32)
    raw[:200] = np.float32(0.25) * rng.integers(-400, 400, 200)          # exact ties after the maths below
    raw[200:203] = [np.nan, 1e30, -1e30]
    raw[203:220] = [0.5, -0.5, 0.49999997, -0.49999997, 1023.5, -1023.5, 1024, -1024, 1024.5, np.inf, -np.inf,
                    1e-40, -1e-40, 0.0, -0.0, 2.5, 1.5]                  # ties, clamp edges, subnormals, zeros
    raw[220:1220] = rng.integers(-2200, 2200, 1000) / 2                   # every half from -1100 to 1100
    mean = rng.normal(40, 5, n).astype(np.float32)
    mean[:1220] = 0
    inv = rng.uniform(0.01, 2, n).astype(np.float32)
    inv[:1220] = 1
    norm = Normalization("standard", "float32", 1.0, mean, inv)
    f32p = ctypes.POINTER(ctypes.c_float)
    ptr = lambda a: a.ctypes.data_as(f32p)  # noqa: E731
    y = np.zeros(n, np.float32)
    lib.pz_input_f32_f32(ptr(raw), ptr(mean), ptr(inv), ptr(y), ctypes.c_uint32(n))
    with np.errstate(invalid="ignore"):
        finite = ~np.isnan(raw)
        assert y[finite].tobytes() == norm.apply(raw[None])[0][finite].tobytes() and np.isnan(y[~finite]).all()
        for inv_scale, zp in ((1.0, 0), (2.0, -7), (np.float32(1 / 0.037), 12)):
            out = np.zeros(n, np.uint8)
            lib.pz_input_f32_q8(ptr(raw), ptr(mean), ptr(inv), ctypes.c_float(inv_scale), ctypes.c_int32(zp),
                                out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), ctypes.c_uint32(n))
            want = quantize.quantize_input(norm.apply(raw[None])[0], inv_scale, zp) + 128
            assert out.tolist() == want.tolist()


# -- the commands -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """mnist_50 trained for one epoch on 784-feature float blobs from an .npz, then int8-quantized by compress."""
    from compress.cli import main as compress_main
    from zoo.train import main as train_main
    root = tmp_path_factory.mktemp("userdata")
    x, y = blobs(400, features=784, classes=10, seed=1)
    xt, yt = blobs(100, features=784, classes=10, seed=2)
    path = root / "blobs.npz"
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
    assert train_main(["mnist_50", "--data", str(path), "--epochs", "1", "--batch-size", "50", "--out",
                       str(root / "run"), "--no-progress"]) == 0
    assert compress_main([str(root / "run"), "--quantize", "int8", "--out", str(root / "run" / "int8")]) == 0
    return root, path


def test_train_data_records_the_file_and_normalisation(trained):
    root, path = trained
    model = modeldir.load(root / "run")
    assert model.meta["dataset"] == "user"
    assert model.meta["data"] == {"path": str(path.resolve()), "format": "npz",
                                  "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert model.meta["input"]["raw"] == "float32" and model.meta["input"]["normalize"]["mode"] == "standard"
    assert model.metrics["test_accuracy"] > 0.5 and model.metrics["data_file"] == str(path.resolve())
    ds = data.load_for_model(model.meta)   # what compress, firmware.build and eval load
    acc = np.mean(host.predict(model, host.forward(model, ds.x_test)) == ds.y_test)
    assert abs(acc - model.metrics["test_accuracy"]) <= 0.02


def test_compress_int8_quantizes_the_normalised_input(trained):
    root, _ = trained
    q = modeldir.load(root / "run" / "int8")
    qin = q.meta["quantization"]["input"]
    assert q.meta["data"] == modeldir.load(root / "run").meta["data"]
    assert qin["inv_scale"] == float(np.float32(1 / qin["scale"])) and -128 <= qin["zero_point"] <= 127
    assert q.metrics["test_accuracy"] >= modeldir.load(root / "run").metrics["test_accuracy"] - 0.05


def test_later_stages_refuse_a_changed_or_missing_file(trained, tmp_path):
    root, path = trained
    meta = modeldir.load(root / "run").meta
    moved = {**meta, "data": {**meta["data"], "path": str(tmp_path / "gone.npz")}}
    with pytest.raises(DataError, match="gone.npz: the data file this model was trained on .* is gone"):
        data.load_for_model(moved)
    changed = {**meta, "data": {**meta["data"], "sha256": "0" * 64}}
    with pytest.raises(DataError, match=f"{path}: sha256 [0-9a-f]{{64}} differs from 0{{64}}, recorded when the "
                                        f"model was trained"):
        data.load_for_model(changed)


def test_train_data_errors_exit_nonzero_and_write_nothing(tmp_path, capsys):
    from zoo.train import main as train_main
    bad = write_npz(tmp_path / "bad.npz")   # 6 features for a 784-input model
    out = tmp_path / "out"
    assert train_main(["mnist_50", "--data", str(bad), "--out", str(out), "--no-progress"]) == 2
    assert "bad.npz: array x_train holds samples of shape (6,); the model's input is (784,)" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
    assert train_main(["mnist_50", "--normalize", "none", "--out", str(out), "--no-progress"]) == 2
    assert "--normalize applies to --data FILE only" in capsys.readouterr().err


def test_import_with_data(tmp_path):
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper
    import onnx
    w, b = RNG.normal(0, 0.2, (3, 6)).astype(np.float32), RNG.normal(0, 0.1, 3).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    path = write_npz(tmp_path / "d.npz")
    import importlib
    cli = importlib.import_module("zoo.import")
    assert cli.main([str(tmp_path / "m.onnx"), "--data", str(path), "--out", str(tmp_path / "imp")]) == 0
    model = modeldir.load(tmp_path / "imp")
    assert model.meta["data"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.meta["input"]["normalize"] == {"mode": "none"}    # the model takes the values as they are
    x = np.load(path)["x_test"]
    np.testing.assert_allclose(host.forward(model, x), x @ w.T + b, rtol=1e-5, atol=1e-4)
    assert cli.main([str(tmp_path / "m.onnx"), "--data", str(tmp_path / "nope.npz"), "--out",
                     str(tmp_path / "imp2")]) == 2
    assert not (tmp_path / "imp2").exists()


def test_compress_refuses_qat_and_share_on_float_data(trained, tmp_path, capsys):
    from compress.cli import main as compress_main
    root, _ = trained
    for flags in (["--quantize", "int8", "--qat"], ["--share", "4", "--quantize", "int8"]):
        assert compress_main([str(root / "run"), *flags, "--out", str(tmp_path / "q")]) == 2
        assert "need uint8 input scaled by a constant; this model takes normalised float32 input" \
            in capsys.readouterr().err
    with pytest.raises(quantize.QuantizationError, match="--qat"):
        quantize.fake_quant_ranges(None, None, None, fit(x_ok, "standard"))


def test_model_directory_checks_the_user_data_records(trained, tmp_path):
    import shutil
    root, _ = trained
    for src, edit, message in [
        ("run", lambda m: m.pop("data"), "metadata field 'data' is None; it must be an object with the data file's"),
        ("run", lambda m: m["data"].update(sha256="xyz"), "metadata field 'data'"),
        ("run", lambda m: m["input"]["normalize"].update(mode="zscore"), "'input.normalize' must be an object"),
        ("run/int8", lambda m: m["quantization"]["input"].pop("inv_scale"),
         "'quantization.input' needs a positive 'inv_scale'"),
    ]:
        model = modeldir.load(root / src)
        meta = json.loads(json.dumps(model.meta))
        edit(meta)
        target = tmp_path / "m"
        shutil.rmtree(target, ignore_errors=True)
        modeldir.save(target, model.spec, model.params, {k: v for k, v in meta.items() if k != "spec"},
                      model.metrics, model.extra)
        with pytest.raises(modeldir.ModelDirError, match=message):
            modeldir.load(target)
    with pytest.raises(DataError, match="dataset 'user' but no 'data' record"):
        data.load_for_model({"dataset": "user", "input": {"scale": 1, "features": 6}})


def test_arrays_dataset_is_written_into_the_model_directory(tmp_path):
    """from_arrays data has no file: zoo.train writes it as data.npz (the same bytes for the same arrays), records
    it, and later stages reload exactly those arrays."""
    from zoo.models import ModelConfig
    from zoo.nn import Dense, Sequential
    from zoo.train import train_and_evaluate
    x, y = blobs(80)
    ds = userdata.from_arrays(x[:60], y[:60], x[60:], y[60:], class_names=np.array(["a", "b", "c"]))
    cfg = ModelConfig("arrays", Sequential([Dense(6, 3)]), dataset="user", epochs=1, batch_size=20)
    train_and_evaluate(cfg, tmp_path / "a", dataset=ds, progress=False)
    userdata.save_npz(tmp_path / "again.npz", ds)
    assert (tmp_path / "a" / "data.npz").read_bytes() == (tmp_path / "again.npz").read_bytes()
    model = modeldir.load(tmp_path / "a")
    assert model.meta["data"]["path"] == str((tmp_path / "a" / "data.npz").resolve())
    again = data.load_for_model(model.meta)
    assert np.array_equal(again.x_train, ds.x_train) and np.array_equal(again.y_test, ds.y_test)
    assert again.class_names == ["a", "b", "c"]
    assert again.normalization.mean.tobytes() == ds.normalization.mean.tobytes()


def test_csv_test_file_changed_since_training(tmp_path):
    x, y = blobs(30)
    train, test = write_csv(tmp_path / "a.csv", x, y), write_csv(tmp_path / "t.csv", *blobs(9, seed=5))
    ds = userdata.load_file(train, label_column="label", test_file=test)
    meta = {"dataset": "user", "data": ds.source, "input": ds.normalization.to_meta(6)}
    assert np.array_equal(data.load_for_model(meta).x_test, ds.x_test)
    write_csv(test, *blobs(9, seed=6))
    with pytest.raises(DataError, match="t.csv: the test CSV changed since the model was trained on it"):
        data.load_for_model(meta)


def test_cli_option_errors(tmp_path, capsys):
    import importlib
    from zoo.train import main as train_main
    path = write_npz(tmp_path / "d.npz")
    with pytest.raises(SystemExit) as e:
        train_main(["mnist_50", "--data", str(path), "--data-dir", str(tmp_path)])
    assert e.value.code == 2 and "--data FILE (your own data) or --data-dir DIR" in capsys.readouterr().err
    cli = importlib.import_module("zoo.import")
    with pytest.raises(SystemExit):
        cli.main(["m.onnx", "--out", str(tmp_path / "o")])                     # neither --dataset nor --data
    with pytest.raises(SystemExit):
        cli.main(["m.onnx", "--dataset", "xor", "--normalize", "none", "--out", str(tmp_path / "o")])
    assert "apply to --data FILE only" in capsys.readouterr().err


def test_import_refuses_input_scale_on_float_data_and_labels_beyond_the_outputs(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from zoo.onnx_import import OnnxImportError, import_onnx
    w = RNG.normal(0, 0.2, (2, 6)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
                              [numpy_helper.from_array(w.T.copy(), "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    ds = userdata.load_file(write_npz(tmp_path / "d.npz"), float_default="none")
    with pytest.raises(OnnxImportError, match="--input-scale applies to uint8 data"):
        import_onnx(tmp_path / "m.onnx", tmp_path / "o", dataset=ds, input_scale=0.5)
    with pytest.raises(OnnxImportError, match=r"m.onnx: the data's labels go up to 2 but the model has 2 classes"):
        import_onnx(tmp_path / "m.onnx", tmp_path / "o", dataset=ds)
    assert not (tmp_path / "o").exists()


def test_testdata_codegen_refuses_other_sample_types():
    from firmware import codegen
    with pytest.raises(codegen.CodegenError, match="test images must be uint8 or float32"):
        codegen.generate_testdata(np.zeros((2, 3), np.int16), np.zeros(2, int))
    files = codegen.generate_testdata(np.float32([[1.5, -2]]), np.array([1]))
    assert "0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0" in files["testdata.c"]   # 1.5f, -2.0f little-endian
