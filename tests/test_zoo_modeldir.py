import json

import jax
import numpy as np
import pytest

from zoo import modeldir
from zoo.models import get_model

META = {"model": "mnist_50", "dataset": "mnist", "input": {"scale": 1 / 255, "features": 784}, "dtype": "float32",
        "seed": 0}


@pytest.fixture
def saved(tmp_path):
    spec = get_model("mnist_50").spec
    params = spec.init(jax.random.key(0))
    modeldir.save(tmp_path, spec, params, META, {"test_accuracy": 0.5})
    return tmp_path, spec, params


def test_round_trip(saved):
    path, spec, params = saved
    model = modeldir.load(path)
    assert model.spec == spec and model.meta["model"] == "mnist_50" and model.metrics == {"test_accuracy": 0.5}
    for got, want in zip(jax.tree.leaves(model.params), jax.tree.leaves(params)):
        np.testing.assert_array_equal(got, np.asarray(want))
    assert [p.name for p in path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def test_missing_directory_says_how_to_make_one(tmp_path):
    with pytest.raises(modeldir.ModelDirError, match="model.safetensors: not found.*python -m zoo.train"):
        modeldir.load(tmp_path / "nope")


def test_corrupt_file(saved):
    path, _, _ = saved
    (path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(modeldir.ModelDirError, match="model.safetensors: not a readable safetensors file"):
        modeldir.load(path)


def test_shape_mismatch_is_reported(saved):
    path, spec, params = saved
    params[0]["w"] = np.zeros((784, 49), np.float32)
    tensors = modeldir.params_to_tensors(spec, params)
    from safetensors.numpy import save_file
    meta = {**META, "spec": spec.to_dict(), "format_version": 1}
    save_file(tensors, str(path / "model.safetensors"), metadata={"picozoo": json.dumps(meta)})
    with pytest.raises(modeldir.ModelDirError, match=r"layer 0 tensors have shapes \(784, 49\)"):
        modeldir.load(path)


def test_foreign_safetensors_file(tmp_path):
    from safetensors.numpy import save_file
    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(modeldir.ModelDirError, match="no 'picozoo' metadata"):
        modeldir.load(tmp_path)


def test_bad_metrics_json(saved):
    path, _, _ = saved
    (path / "metrics.json").write_text("{")
    with pytest.raises(modeldir.ModelDirError, match="metrics.json: not valid JSON"):
        modeldir.load(path)
