"""--spec FILE.json / FILE.py for zoo.train: round trips, recipes and overrides, and every error the file can cause."""

import json

import pytest

from zoo import modeldir, specfile, train
from zoo.models import get_model
from zoo.nn import Dense, Sequential, Sigmoid, Tanh

XOR_SPEC = Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], output="logits")


def _train(tmp_path, *argv):
    return train.main([*map(str, argv), "--dataset", "xor", "--no-progress"])


def test_json_spec_trains_to_a_model_directory_with_the_same_spec(tmp_path, capsys):
    spec_path = tmp_path / "my_net.json"
    spec_path.write_text(XOR_SPEC.to_json())
    out = tmp_path / "run"
    assert _train(tmp_path, "--spec", spec_path, "--out", out, "--epochs", "3", "--lr", "0.01") == 0
    saved = modeldir.load(out)
    assert saved.spec.to_json() == spec_path.read_text()
    assert saved.meta["model"] == "my_net" and saved.meta["dataset"] == "xor"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "my_net" and metrics["epochs"] == 3 and metrics["lr"] == 0.01
    # the saved spec, written out again, is a spec file that trains the same network (JSON -> dir -> JSON)
    again = tmp_path / "again.json"
    again.write_text(saved.spec.to_json())
    assert specfile.load(again).model == XOR_SPEC


def test_python_spec_with_recipe_and_command_line_overrides(tmp_path, capsys):
    spec_path = tmp_path / "net.py"
    spec_path.write_text(
        "from zoo.nn import Dense, Sequential, Tanh\n"
        "hidden = [4]\n"
        "model = Sequential([Dense(2, hidden[0]), Tanh(), Dense(hidden[0], 2)])\n"
        "recipe = {'optimizer': 'sgd', 'lr': 0.5, 'epochs': 7, 'batch_size': 4, 'weight_decay': 0.0}\n")
    out = tmp_path / "run"
    assert _train(tmp_path, "--spec", spec_path, "--name", "xor_tanh", "--out", out, "--epochs", "2") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "xor_tanh"
    assert (metrics["optimizer"], metrics["lr"], metrics["epochs"], metrics["batch_size"]) == ("sgd", 0.5, 2, 4)
    assert modeldir.load(out).spec == XOR_SPEC


def test_python_spec_imports_a_helper_beside_it(tmp_path):
    (tmp_path / "my_layers.py").write_text("from zoo.nn import Dense, Tanh\n"
                                          "def block(n_in, n_out):\n    return [Dense(n_in, n_out), Tanh()]\n")
    (tmp_path / "net.py").write_text("from my_layers import block\nfrom zoo.nn import Dense, Sequential\n"
                                     "model = Sequential([*block(2, 4), Dense(4, 2)])\n")
    import sys
    before = list(sys.path)
    assert specfile.load(tmp_path / "net.py").model == XOR_SPEC
    assert sys.path == before
    sys.modules.pop("my_layers", None)


def test_recipe_may_be_a_model_config(tmp_path):
    spec_path = tmp_path / "cfg.py"
    spec_path.write_text("from zoo.models import ModelConfig\nfrom zoo.nn import Dense, Sequential, Tanh\n"
                         "model = Sequential([Dense(2, 4), Tanh(), Dense(4, 2)])\n"
                         "recipe = ModelConfig('x', model, 'xor', lr=0.3, epochs=5)\n")
    loaded = specfile.load(spec_path)
    assert loaded.recipe == {"lr": 0.3, "epochs": 5}
    cfg = loaded.config(None, "xor", epochs=9)
    assert (cfg.name, cfg.lr, cfg.epochs, cfg.dataset) == ("cfg", 0.3, 9, "xor")


def test_registry_models_take_the_same_recipe_overrides(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["xor", "--out", str(out), "--no-progress", "--epochs", "3", "--optimizer", "adam",
                       "--weight-decay", "0", "--label-smoothing", "0"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["optimizer"], metrics["epochs"]) == ("adam", 3)


PY_ERRORS = [
    ("x = 1\n", "defines no `model`"),
    ("model = [1, 2]\n", "`model` is a list, not a zoo.nn.Sequential"),
    ("import numpy\nmodel = 1 / 0\n", "raised ZeroDivisionError while running it (line 2)"),
    ("import sys\nsys.exit(3)\n", "raised SystemExit"),
    ("from zoo.nn import Dense, Sequential\nmodel = Sequential([Dense(2, 2)])\nrecipe = ['lr']\n",
     "`recipe` is a list"),
    ("from zoo.nn import Dense, Sequential\nmodel = Sequential([Dense(2, 2)])\nrecipe = {'learning_rate': 1}\n",
     "unknown field 'learning_rate'"),
    ("from zoo.nn import Dense, Sequential\nmodel = Sequential([Dense(2, 2)])\nrecipe = {'epochs': 0}\n",
     "epochs = 0 must be an integer >= 1"),
    ("from zoo.nn import Dense, Sequential\nmodel = Sequential([Dense(2, 2)])\nrecipe = {'optimizer': 'rmsprop'}\n",
     "optimizer = 'rmsprop' must be one of adam, sgd"),
    ("from zoo.nn import Dense, Sequential\nmodel = Sequential([Dense(2, 2)])\nrecipe = {'augment_flip': 1}\n",
     "augment_flip = 1 must be true or false"),
    ("from zoo.nn import Dense, Sequential\nmodel = Sequential([Dense(2, 0)])\n", "empty dimension"),
]


@pytest.mark.parametrize("source, message", PY_ERRORS)
def test_python_spec_errors_name_the_file_exit_2_and_write_nothing(tmp_path, capsys, source, message):
    spec_path = tmp_path / "bad.py"
    spec_path.write_text(source)
    out = tmp_path / "run"
    assert _train(tmp_path, "--spec", spec_path, "--out", out) == 2
    err = capsys.readouterr().err
    assert str(spec_path) in err and message in err
    assert not out.exists()


JSON_ERRORS = [
    ("{not json", "not JSON"),
    ('{"format": "keras", "layers": []}', "spec format 'keras'"),
    ('{"format": "picozoo.sequential/2", "layers": [{"type": "lstm"}]}', "layer 0 has type 'lstm'"),
    ('{"format": "picozoo.sequential/2", "layers": [{"type": "dense", "in": 2}]}', "bad or missing field"),
]


@pytest.mark.parametrize("text, message", JSON_ERRORS)
def test_json_spec_errors_name_the_file(tmp_path, capsys, text, message):
    spec_path = tmp_path / "bad.json"
    spec_path.write_text(text)
    assert _train(tmp_path, "--spec", spec_path, "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert str(spec_path) in err and message in err
    assert not (tmp_path / "run").exists()


MISMATCHES = [
    (Sequential([Dense(3, 4), Tanh(), Dense(4, 2)]), "[3] (3 features) but the data 'xor' has 2 features"),
    (Sequential([Dense(2, 4), Tanh(), Dense(4, 1)]), "has 1 outputs but the data 'xor' has 2 classes"),
]


@pytest.mark.parametrize("spec, message", MISMATCHES)
def test_spec_and_data_that_do_not_fit_are_named(tmp_path, capsys, spec, message):
    spec_path = tmp_path / "net.json"
    spec_path.write_text(spec.to_json())
    assert _train(tmp_path, "--spec", spec_path, "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert str(spec_path) in err and message in err
    assert not (tmp_path / "run").exists()


def test_binary_output_against_more_than_two_classes_is_named(tmp_path):
    spec = Sequential([Dense(2, 3), Sigmoid(), Dense(3, 1), Sigmoid()], output="binary")
    cfg = specfile.SpecFile(tmp_path / "b.json", spec).config("b", "xor")

    class ThreeClasses:
        name, features = "three", 2
        y_train = y_test = __import__("numpy").array([0, 1, 2])
    with pytest.raises(specfile.SpecFileError, match="binary output .* labels up to 2"):
        specfile.check_data(cfg, ThreeClasses, "here")


@pytest.mark.parametrize("argv, message", [
    (["--spec", "x.json"], "--spec needs the data"),
    (["xor", "--spec", "x.json", "--dataset", "xor"], "one of them"),
    ([], "one of them"),
    (["xor", "--name", "n"], "--name and --dataset go with --spec"),
])
def test_cli_argument_combinations(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_missing_file_and_wrong_suffix(tmp_path, capsys):
    assert _train(tmp_path, "--spec", tmp_path / "none.json", "--out", tmp_path / "run") == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "net.yaml").write_text("layers: []")
    assert _train(tmp_path, "--spec", tmp_path / "net.yaml", "--out", tmp_path / "run") == 2
    assert "must end in .json" in capsys.readouterr().err


def test_registry_override_values_are_checked(capsys):
    assert train.main(["xor", "--weight-decay", "-1", "--no-progress"]) == 2
    assert "weight_decay = -1.0 must be a number >= 0" in capsys.readouterr().err
    assert get_model("xor").weight_decay == 0.0
    assert train.main(["mnist_cnn", "--augment-rotate", "200", "--no-progress"]) == 2
    assert "augment_rotate = 200.0 must be a number of degrees in [0, 180]" in capsys.readouterr().err
    assert train.main(["mnist_cnn", "--ema-decay", "1", "--no-progress"]) == 2
    assert "ema_decay = 1.0 must be a number in [0, 1)" in capsys.readouterr().err


def _npz(path, n_features=2, names=("off", "on")):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (64, n_features)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    np.savez(path, x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:], class_names=np.array(names))
    return path


def test_spec_with_a_data_file_keeps_its_class_names(tmp_path, capsys):
    spec_path = tmp_path / "net.json"
    spec_path.write_text(XOR_SPEC.to_json())
    data = _npz(tmp_path / "mine.npz")
    out = tmp_path / "run"
    assert train.main(["--spec", str(spec_path), "--data", str(data), "--out", str(out), "--epochs", "2",
                       "--no-progress"]) == 0
    saved = modeldir.load(out)
    assert saved.spec == XOR_SPEC and saved.meta["class_names"] == ["off", "on"]
    assert json.loads((out / "metrics.json").read_text())["class_names"] == ["off", "on"]


def test_spec_and_data_file_that_do_not_fit_are_named(tmp_path, capsys):
    spec_path = tmp_path / "net.json"
    spec_path.write_text(XOR_SPEC.to_json())
    data = _npz(tmp_path / "wide.npz", n_features=5)
    out = tmp_path / "run"
    assert train.main(["--spec", str(spec_path), "--data", str(data), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(data) in err and "(2,)" in err and not out.exists()
    with pytest.raises(SystemExit):
        train.main(["--spec", str(spec_path), "--data", str(data), "--dataset", "xor", "--out", str(out)])
    assert "one of them" in capsys.readouterr().err
