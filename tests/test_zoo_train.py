import json
import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

from zoo import eval as zoo_eval
from zoo import modeldir, train
from zoo.models import get_model

SUBSET = 4096  # training images for the quick runs; the test set is always the full 10,000


def test_xor_converges_to_four_of_four(tmp_path):
    metrics, _ = train.train_and_evaluate(get_model("xor"), tmp_path, progress=False)
    assert metrics["test_accuracy"] == 1.0
    assert (tmp_path / "training.png").stat().st_size > 0


def test_short_training_reaches_sane_accuracy(tmp_path, mnist):
    cfg = get_model("mnist_50").with_overrides(epochs=2)
    metrics, _ = train.train_and_evaluate(cfg, tmp_path, dataset=mnist, train_limit=SUBSET, progress=False)
    assert metrics["test_accuracy"] > 0.85
    assert metrics["params"] == 39_760 and metrics["epochs"] == 2 and metrics["dataset"] == "mnist"
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("model", "dataset", "dtype", "test_accuracy", "test_loss", "train_seconds", "epochs", "params", "seed"):
        assert key in saved
    # The NumPy host model re-evaluates the saved directory to the same accuracy.
    result = zoo_eval.evaluate_dir(tmp_path)
    assert abs(result["test_accuracy"] - metrics["test_accuracy"]) <= 2e-4


def test_same_seed_gives_identical_checkpoint_bytes(tmp_path, mnist):
    cfg = get_model("mnist_50").with_overrides(epochs=1)
    for run in ("a", "b"):
        train.train_and_evaluate(cfg, tmp_path / run, dataset=mnist, train_limit=1024, seed=7, progress=False)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    train.train_and_evaluate(cfg, tmp_path / "c", dataset=mnist, train_limit=1024, seed=8, progress=False)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() != (tmp_path / "c" / "model.safetensors").read_bytes()


def test_float64_training_keeps_double_precision(tmp_path):
    cfg = get_model("xor").with_overrides(epochs=50)
    train.train_and_evaluate(cfg, tmp_path, dtype="float64", progress=False)
    model = modeldir.load(tmp_path)
    assert model.meta["dtype"] == "float64" and model.params[0]["w"].dtype == np.float64


_RUN_ON_DEVICES = """
import sys, json
from zoo import data, train
from zoo.models import get_model
import jax
cfg = get_model("mnist_50").with_overrides(epochs=1)
metrics, _ = train.train_and_evaluate(cfg, sys.argv[1], train_limit=2048, progress=False)
print(json.dumps({"devices": metrics["devices"], "local": jax.local_device_count()}))
"""


def test_two_devices_equal_one_device(tmp_path, mnist):
    """Data parallelism is exact up to float summation order: batches split over 2 devices, grads all-reduced."""
    results = {}
    for n in (1, 2):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}", "JAX_PLATFORMS": "cpu"}
        proc = subprocess.run([sys.executable, "-c", _RUN_ON_DEVICES, str(tmp_path / str(n))], env=env,
                              capture_output=True, text=True, check=True)
        results[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results[1]["devices"] == 1 and results[2]["devices"] == 2
    one, two = load_file(str(tmp_path / "1" / "model.safetensors")), load_file(str(tmp_path / "2" / "model.safetensors"))
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_allclose(one[key], two[key], rtol=1e-4, atol=1e-5)


def test_divergence_is_stopped_with_advice(tmp_path, mnist):
    cfg = get_model("mnist_50").with_overrides(epochs=1, optimizer="sgd", lr=1e12)
    with pytest.raises(train.TrainingError, match="diverged at epoch 1.*lower --lr"):
        train.train_and_evaluate(cfg, tmp_path, dataset=mnist, train_limit=1024, progress=False)
    assert not (tmp_path / "model.safetensors").exists()


def test_cli_unknown_model_exits_nonzero(capsys):
    assert train.main(["mnist_999"]) == 2
    assert "known models:" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["xor", "--epochs", "0"], "--epochs must be at least 1"),
    (["xor", "--lr", "-1"], "--lr must be positive"),
    (["xor", "--dtype", "float16"], "invalid choice"),
])
def test_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_trains_and_eval_cli_rereads(tmp_path, capsys):
    out = tmp_path / "xor"
    assert train.main(["xor", "--out", str(out), "--no-progress"]) == 0
    assert zoo_eval.main([str(out)]) == 0
    assert "100.00%" in capsys.readouterr().out


def test_eval_cli_missing_dir(tmp_path, capsys):
    assert zoo_eval.main([str(tmp_path / "none")]) == 2
    assert "model.safetensors: not found" in capsys.readouterr().err


def test_eval_uses_the_golden_model_for_int8_variants(tmp_path, mnist):
    """zoo.eval re-evaluates an int8 directory with compress's integer reference, matching what compress saved."""
    from compress import cli as compress_cli
    cfg = get_model("mnist_50").with_overrides(epochs=1)
    train.train_and_evaluate(cfg, tmp_path / "float", dataset=mnist, train_limit=SUBSET, progress=False)
    assert compress_cli.main([str(tmp_path / "float"), "--quantize", "int8", "--out", str(tmp_path / "int8")]) == 0
    result = zoo_eval.evaluate_dir(tmp_path / "int8")
    assert result["test_accuracy"] == result["saved_test_accuracy"]
    assert zoo_eval.main([str(tmp_path / "int8")]) == 0
