import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from zoo import modeldir
from zoo.nn import Dense, ReLU, Sequential

META = {"model": "mnist_50", "dataset": "mnist", "input": {"scale": 1 / 255, "features": 784}, "dtype": "float32",
        "seed": 0}
SPEC = Sequential([Dense(784, 50), ReLU(), Dense(50, 10)])
SMALL = Sequential([Dense(2, 3), ReLU(), Dense(3, 2)])
SMALL_META = {**META, "model": "tiny", "dataset": "xor", "input": {"scale": 1.0, "features": 2}}


def params_for(spec, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [{"w": rng.normal(size=(l.in_features, l.out_features)).astype(dtype),
             "b": rng.normal(size=l.out_features).astype(dtype)} if isinstance(l, Dense) else {}
            for l in spec.layers]


@pytest.fixture
def saved(tmp_path):
    params = params_for(SPEC)
    modeldir.save(tmp_path, SPEC, params, META, {"test_accuracy": 0.5})
    return tmp_path, SPEC, params


def write_raw(path, tensors, meta):
    """A model.safetensors as someone else might write it: any tensors, any metadata."""
    path.mkdir(parents=True, exist_ok=True)
    text = meta if isinstance(meta, str) else json.dumps(meta)
    save_file(tensors, str(path / modeldir.MODEL_FILE), metadata={modeldir.META_KEY: text})
    return path


def small_meta(**changes):
    """A fresh deep copy: the fuzz tests mutate nested fields."""
    return json.loads(json.dumps({**SMALL_META, "spec": SMALL.to_dict(), "format_version": 1, **changes}))


def small_tensors(dtype=np.float32):
    return modeldir.params_to_tensors(SMALL, params_for(SMALL, dtype))


def test_round_trip(saved):
    path, spec, params = saved
    model = modeldir.load(path)
    assert model.spec == spec and model.meta["model"] == "mnist_50" and model.metrics == {"test_accuracy": 0.5}
    for got, want in zip(model.params, params):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    assert [p.name for p in path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def test_missing_directory_says_how_to_make_one(tmp_path):
    with pytest.raises(modeldir.ModelDirError, match="model.safetensors: not found.*python -m zoo.train"):
        modeldir.load(tmp_path / "nope")


def test_corrupt_file(saved):
    path, _, _ = saved
    (path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(modeldir.ModelDirError, match="model.safetensors: header length 16 exceeds the file"):
        modeldir.load(path)
    (path / "model.safetensors").write_bytes(b"\x09\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(modeldir.ModelDirError, match="model.safetensors: the safetensors header is not JSON"):
        modeldir.load(path)


def test_shape_mismatch_is_reported(saved):
    path, spec, params = saved
    params[0]["w"] = np.zeros((784, 49), np.float32)
    write_raw(path, modeldir.params_to_tensors(spec, params), {**META, "spec": spec.to_dict(), "format_version": 1})
    with pytest.raises(modeldir.ModelDirError, match=r"tensor layers.0.w has shape \(784, 49\); the spec says "
                                                     r"\(784, 50\)"):
        modeldir.load(path)


def test_foreign_safetensors_file(tmp_path):
    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(modeldir.ModelDirError, match="no 'picozoo' metadata"):
        modeldir.load(tmp_path)


def test_bad_metrics_json(saved):
    path, _, _ = saved
    (path / "metrics.json").write_text("{")
    with pytest.raises(modeldir.ModelDirError, match="metrics.json: not valid JSON"):
        modeldir.load(path)


# -- issue 10, item 9: each malformed field is named -------------------------------------------------------------
BAD_META = [
    ({"spec": "picozoo.sequential/1"}, "field 'spec' must be an object"),
    ({"spec": {**SMALL.to_dict(), "layers": [{"type": "dense", "in": "2", "out": 3}, {"type": "relu"},
                                             {"type": "dense", "in": 3, "out": 2}]}}, "spec layer 0 field 'in'"),
    ({"spec": {**SMALL.to_dict(), "layers": [{"type": "dense", "in": 2, "out": 3}, "relu",
                                             {"type": "dense", "in": 3, "out": 2}]}}, "spec layer 1 must be an object"),
    ({"spec": {**SMALL.to_dict(), "layers": [{"type": "conv"}]}}, "bad metadata field 'spec'"),
    ({"spec": {**SMALL.to_dict(), "layers": []}}, "spec has 0 layers"),
    ({"spec": Sequential([Dense(784, 10**6)]).to_dict()}, "field 'out' is 1000000.*limit on a layer's width"),
    ({"spec": Sequential([Dense(2, 8192), Dense(8192, 8192)]).to_dict()}, "over picozoo's limit of 16,777,216"),
    ({"dataset": "imagenet"}, "field 'dataset' is 'imagenet'"),
    ({"dtype": "float16"}, "field 'dtype' is 'float16'"),
    ({"seed": -1}, "field 'seed' is -1"),
    ({"seed": "0"}, "field 'seed' is '0'"),
    ({"model": 'x"; system("rm -rf /"); "'}, "field 'model'"),
    ({"input": "raw"}, "field 'input' is 'raw'"),
    ({"input": {"scale": "1", "features": 2}}, "field 'input.scale' is '1'"),
    ({"input": {"scale": 1.0, "features": 3}}, "field 'input.features' is 3; it must be the spec's input width, 2"),
    ({"format_version": 2}, "format_version 2, this picozoo reads 1"),
    ({"quantization": "int8"}, "field 'quantization' is 'int8'"),
    ({"quantization": {"scheme": "int8", "layers": []}}, "one entry per weighted layer"),
]


@pytest.mark.parametrize("changes, message", BAD_META, ids=[m for _, m in BAD_META])
def test_malformed_metadata_names_the_field(tmp_path, changes, message):
    write_raw(tmp_path, small_tensors(), small_meta(**changes))
    with pytest.raises(modeldir.ModelDirError, match=message) as e:
        modeldir.load(tmp_path)
    assert str(tmp_path / "model.safetensors") in str(e.value)


def test_metadata_that_is_not_an_object(tmp_path):
    write_raw(tmp_path, small_tensors(), "[1, 2]")
    with pytest.raises(modeldir.ModelDirError, match="must be a JSON object, got list"):
        modeldir.load(tmp_path)


@pytest.mark.parametrize("dtype, found", [(np.float16, "F16"), (np.int32, "I32"), (np.int8, "I8")])
def test_parameters_must_be_float32_or_float64(tmp_path, dtype, found):
    tensors = {k: v.astype(dtype) for k, v in small_tensors().items()}
    write_raw(tmp_path, tensors, small_meta())
    with pytest.raises(modeldir.ModelDirError, match=f"tensor layers.0.w is {found}; picozoo stores float"):
        modeldir.load(tmp_path)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weight(tmp_path, value):
    tensors = small_tensors()
    tensors["layers.2.w"][1, 1] = value
    write_raw(tmp_path, tensors, small_meta())
    with pytest.raises(modeldir.ModelDirError, match="tensor layers.2.w holds NaN or infinite values"):
        modeldir.load(tmp_path)


def test_float64_parameters_are_accepted(tmp_path):
    write_raw(tmp_path, small_tensors(np.float64), small_meta(dtype="float64"))
    assert modeldir.load(tmp_path).params[0]["w"].dtype == np.float64


BAD_METRICS = [
    ('{"test_accuracy": "0.9"}', "field 'test_accuracy' is '0.9'; it must be a finite number"),
    ('{"test_accuracy": NaN}', "field 'test_accuracy' is nan"),
    ('{"test_accuracy": 1.5}', "field 'test_accuracy' is 1.5"),
    ('{"test_accuracy": true}', "field 'test_accuracy' is True"),
    ('{"model_bytes": 1.5}', "field 'model_bytes' is 1.5; it must be an integer"),
    ('{"params": -3}', "field 'params' is -3"),
    ('[0.9]', "must hold a JSON object, got list"),
    ('"\\ud800"', "must hold a JSON object, got str"),
    (b"\xff\xfe", "not valid JSON"),
]


@pytest.mark.parametrize("text, message", BAD_METRICS, ids=[m for _, m in BAD_METRICS])
def test_malformed_metrics_names_the_field(tmp_path, text, message):
    write_raw(tmp_path, small_tensors(), small_meta())
    (tmp_path / "metrics.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(modeldir.ModelDirError, match=message) as e:
        modeldir.load(tmp_path)
    assert "metrics.json" in str(e.value)
    (tmp_path / "metrics.json").write_text('{"source_test_accuracy": null, "test_accuracy": 1}')
    assert modeldir.load(tmp_path).metrics["test_accuracy"] == 1


# -- issue 10, item 7: nothing unbounded is read ------------------------------------------------------------------
def test_device_fifo_and_huge_files_are_refused_before_reading(tmp_path):
    (tmp_path / "dev").mkdir()
    os.symlink("/dev/zero", tmp_path / "dev" / "model.safetensors")
    with pytest.raises(modeldir.ModelDirError, match="not a regular file"):
        modeldir.load(tmp_path / "dev")
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "model.safetensors")  # opening it would block forever
    with pytest.raises(modeldir.ModelDirError, match="not a regular file"):
        modeldir.load(tmp_path / "fifo")
    write_raw(tmp_path / "m", small_tensors(), small_meta())
    os.symlink("/dev/zero", tmp_path / "m" / "metrics.json")
    with pytest.raises(modeldir.ModelDirError, match="metrics.json: not a regular file"):
        modeldir.load(tmp_path / "m")
    (tmp_path / "huge").mkdir()
    with open(tmp_path / "huge" / "model.safetensors", "wb") as f:
        f.truncate(modeldir.MAX_MODEL_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(modeldir.ModelDirError, match=r"exceeds picozoo's limit for model.safetensors \(268,435,456"):
        modeldir.load(tmp_path / "huge")


def test_a_huge_declared_header_is_refused(tmp_path):
    tmp_path.joinpath("model.safetensors").write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(modeldir.ModelDirError, match="header length .* exceeds the file"):
        modeldir.load(tmp_path)


# -- property tests: mutated metadata and mutated bytes never escape as anything but ModelDirError ---------------
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                         max_size=3),
                           max_leaves=6)
META_PATHS = [("spec",), ("spec", "layers"), ("spec", "layers", 0), ("spec", "layers", 0, "in"),
              ("spec", "layers", 2, "out"), ("spec", "output"), ("spec", "format"), ("input",), ("input", "scale"),
              ("input", "features"), ("dtype",), ("dataset",), ("seed",), ("model",), ("format_version",),
              ("quantization",), ("sparsity",)]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _set(meta, path, value):
    target = meta
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _load_or_model_dir_error(directory):
    try:
        model = modeldir.load(directory)
    except modeldir.ModelDirError as e:
        assert str(directory) in str(e)
        return None
    return model


@FUZZ
@given(path=st.sampled_from(META_PATHS), value=JSON_VALUES)
def test_fuzz_metadata_fields(tmp_path, path, value):
    meta = small_meta()
    _set(meta, path, value)
    write_raw(tmp_path / "m", small_tensors(), meta)
    model = _load_or_model_dir_error(tmp_path / "m")
    if model is not None:  # accepted: then it is a model every stage can use
        assert model.spec.in_features == model.meta["input"]["features"]
        assert all(np.all(np.isfinite(p["w"])) for p in model.params if p)


@FUZZ
@given(data=st.data())
def test_fuzz_file_bytes(tmp_path, data):
    write_raw(tmp_path / "m", small_tensors(), small_meta())
    path = tmp_path / "m" / modeldir.MODEL_FILE
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    path.write_bytes(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))
    _load_or_model_dir_error(tmp_path / "m")


@FUZZ
@given(value=JSON_VALUES, key=st.sampled_from(sorted(modeldir.METRIC_FIELDS)))
def test_fuzz_metrics(tmp_path, value, key):
    write_raw(tmp_path / "m", small_tensors(), small_meta())
    (tmp_path / "m" / "metrics.json").write_text(json.dumps({key: value}))
    model = _load_or_model_dir_error(tmp_path / "m")
    if model is not None and value is not None:
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# -- an int8 variant: mutated quantization metadata and integer tensors reach neither the golden model nor codegen --
@pytest.fixture(scope="module")
def int8_variant(tmp_path_factory):
    from compress import cli

    root = tmp_path_factory.mktemp("int8")
    modeldir.save(root / "src", SMALL, params_for(SMALL), SMALL_META, {"test_accuracy": 0.5})
    assert cli.main([str(root / "src"), "--quantize", "int8", "--calib-images", "4", "--quiet", "--out",
                     str(root / "q")]) == 0
    model = modeldir.load(root / "q")
    return {**model.meta}, {**modeldir.params_to_tensors(model.spec, model.params), **model.extra}


def _paths(obj, prefix=()):
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield from _paths(value, (*prefix, key))


@FUZZ
@given(data=st.data())
def test_fuzz_int8_variant(tmp_path, int8_variant, data):
    from firmware import codegen
    from zoo import eval as zoo_eval

    meta, tensors = json.loads(json.dumps(int8_variant[0])), {k: v.copy() for k, v in int8_variant[1].items()}
    if data.draw(st.booleans()):
        where = data.draw(st.sampled_from(list(_paths(meta["quantization"]))))
        value = data.draw(JSON_VALUES | st.sampled_from([-129, -128, 127, 128, 2**31, -2**31 - 1]))
        if where:
            _set(meta["quantization"], where, value)
        else:
            meta["quantization"] = value
    else:
        name = data.draw(st.sampled_from(sorted(k for k, v in tensors.items() if v.size)))
        array = tensors[name]
        limits = np.iinfo(array.dtype) if array.dtype.kind in "iu" else None
        value = data.draw(st.sampled_from([limits.min, limits.max, 0, 1]) if limits else st.floats())
        with np.errstate(over="ignore"):  # a huge float becomes inf in float32, which load must refuse
            array.flat[data.draw(st.integers(0, array.size - 1))] = value
    write_raw(tmp_path / "m", tensors, meta)
    model = _load_or_model_dir_error(tmp_path / "m")
    if model is None:
        return
    zoo_eval.evaluate_dir(tmp_path / "m")  # the golden model runs without an error
    try:
        codegen.generate_model(model, "m", "flash")
    except codegen.CodegenError:
        pass  # a clear refusal by the firmware stage is fine
