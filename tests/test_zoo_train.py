import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file

from zoo import data, modeldir, train
from zoo import eval as zoo_eval
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


# -- conv nets: BatchNorm state, dropout, augmentation, chunked evaluation ------------------------------------------
def test_shift_images_moves_each_image_by_its_own_offset():
    x = np.arange(2 * 6 * 5 * 2, dtype=np.uint8).reshape(2, 60) + 1
    out = train.shift_images(x, (6, 5, 2), 2, np.random.default_rng(0))
    ref_rng = np.random.default_rng(0)
    dy, dx = ref_rng.integers(-2, 3, 2), ref_rng.integers(-2, 3, 2)
    for n in range(2):
        img, got = x[n].reshape(6, 5, 2), out[n].reshape(6, 5, 2)
        for r in range(6):
            for c in range(5):
                sr, sc = r - dy[n], c - dx[n]  # output (r, c) shows input (r - dy, c - dx), zero outside
                want = img[sr, sc] if 0 <= sr < 6 and 0 <= sc < 5 else 0
                assert np.all(got[r, c] == want)


def test_rotate_images_matches_a_pixel_by_pixel_bilinear_reference():
    h, w, c = 7, 6, 2
    x = np.random.default_rng(2).integers(0, 256, (3, h * w * c), dtype=np.uint8)
    out = train.rotate_images(x, (h, w, c), 30.0, np.random.default_rng(0))
    angles = np.deg2rad(np.random.default_rng(0).uniform(-30.0, 30.0, 3))

    def pixel(img, r, q):  # zero outside the image
        return img[r, q].astype(float) if 0 <= r < h and 0 <= q < w else np.zeros(c)
    for n in range(3):
        img, got = x[n].reshape(h, w, c), out[n].reshape(h, w, c)
        cos, sin = math.cos(angles[n]), math.sin(angles[n])
        for r in range(h):
            for q in range(w):
                dy, dx = r - (h - 1) / 2, q - (w - 1) / 2
                sy, sx = cos * dy - sin * dx + (h - 1) / 2, sin * dy + cos * dx + (w - 1) / 2
                r0, q0 = math.floor(sy), math.floor(sx)
                fy, fx = sy - r0, sx - q0
                want = ((1 - fy) * (1 - fx) * pixel(img, r0, q0) + (1 - fy) * fx * pixel(img, r0, q0 + 1)
                        + fy * (1 - fx) * pixel(img, r0 + 1, q0) + fy * fx * pixel(img, r0 + 1, q0 + 1))
                assert np.all(np.abs(got[r, q].astype(float) - want) <= 0.5 + 1e-3)  # rounded float32
    assert not np.array_equal(out, x)
    assert np.array_equal(train.rotate_images(x, (h, w, c), 0.0, np.random.default_rng(0)), x)


def test_turning_a_flat_model_is_refused(tmp_path):
    cfg = get_model("mnist_50").with_overrides(augment_rotate=10.0, epochs=1)
    with pytest.raises(train.TrainingError, match="augment_rotate turns images; the spec's input is"):
        train.train_and_evaluate(cfg, tmp_path, dataset=data.xor(), progress=False)


def test_flip_images_mirrors_about_half_of_the_rows_left_right():
    x = np.random.default_rng(1).integers(0, 256, (64, 4 * 3 * 2), dtype=np.uint8)
    out = train.flip_images(x, (4, 3, 2), np.random.default_rng(0))
    flipped = np.random.default_rng(0).random(64) < 0.5
    for n in range(64):
        img, got = x[n].reshape(4, 3, 2), out[n].reshape(4, 3, 2)
        want = np.stack([img[:, 3 - 1 - c] for c in range(3)], axis=1) if flipped[n] else img  # column c <- w-1-c
        assert np.array_equal(got, want)
    assert 16 < flipped.sum() < 48


def test_flipping_a_flat_model_is_refused(tmp_path):
    cfg = get_model("mnist_50").with_overrides(augment_flip=True, epochs=1)
    with pytest.raises(train.TrainingError, match="augment_flip mirrors images; the spec's input is"):
        train.train_and_evaluate(cfg, tmp_path, dataset=data.xor(), progress=False)


def test_augmenting_a_flat_model_is_refused(tmp_path):
    cfg = get_model("mnist_50").with_overrides(augment_shift=1, epochs=1)
    with pytest.raises(train.TrainingError, match="augment_shift 1 needs image input"):
        train.train_and_evaluate(cfg, tmp_path, dataset=data.xor(), progress=False)


def _tiny_cnn_config():
    from zoo import nn
    spec = nn.Sequential([nn.Input(28, 28, 1), nn.Conv2D(1, 4, 3, 2), nn.BatchNorm(4, momentum=0.9), nn.ReLU(),
                          nn.MaxPool2D(2), nn.Flatten(), nn.Dropout(0.2), nn.Dense(196, 10)])
    return get_model("mnist_cnn").with_overrides(name="tiny_cnn", spec=spec, epochs=2, augment_shift=1, lr=1e-2,
                                                 batch_size=32, ema_decay=0.0)  # 64 steps: the last step's values


def test_conv_training_threads_batchnorm_state(tmp_path, mnist):
    cfg = _tiny_cnn_config()
    metrics, params = train.train_and_evaluate(cfg, tmp_path / "a", dataset=mnist, train_limit=1024, progress=False)
    assert metrics["test_accuracy"] > 0.5 and metrics["augment_shift"] == 1  # 64 steps; chance is 0.1
    bn = params[2]
    # The running statistics moved away from their init (mean 0, var 1) towards the data's, i.e. they came from the
    # batches and not from the optimizer (which would leave them at init: their gradient is zero).
    assert np.all(np.abs(bn["mean"]) > 1e-3) and not np.allclose(bn["var"], 1.0)
    # The host model (running statistics, no dropout) agrees with the saved JAX accuracy.
    result = zoo_eval.evaluate_dir(tmp_path / "a")
    assert abs(result["test_accuracy"] - metrics["test_accuracy"]) <= 2e-4


def test_conv_training_with_dropout_shifts_and_flips_is_reproducible(tmp_path, mnist):
    cfg = _tiny_cnn_config().with_overrides(epochs=1, augment_flip=True)
    small = data.Dataset("mnist", mnist.x_train[:256], mnist.y_train[:256], mnist.x_test[:500], mnist.y_test[:500],
                         mnist.input_scale)
    for run in ("a", "b"):
        train.train_and_evaluate(cfg, tmp_path / run, dataset=small, progress=False)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_chunked_evaluation_equals_one_call(mnist):
    cfg = _tiny_cnn_config()
    params = cfg.spec.init(jax.random.key(0))
    step = train.make_eval_step(cfg, mnist.input_scale, jnp.float32)
    x, y = mnist.x_test[:1000], mnist.y_test[:1000]
    whole = train.evaluate(step, params, x, y)
    chunked = train.evaluate(step, params, x, y, rows=300)
    assert whole[0] == chunked[0] and abs(whole[1] - chunked[1]) < 1e-5
    assert train.eval_rows(cfg, 10_000) == 10_000 and train.eval_rows(get_model("pd_mobilenet"), 7000) < 7000


# -- parameter averaging (ModelConfig.ema_decay) -------------------------------------------------------------------
def test_param_average_follows_the_exponential_moving_average_recursion():
    rng = np.random.default_rng(3)
    steps = [{"w": rng.normal(size=(3, 2)).astype(np.float32), "mean": rng.normal(size=4).astype(np.float32)}
             for _ in range(6)]
    average = train.ParamAverage(0.9, jax.tree.map(jnp.asarray, steps[0]))
    want = {k: v.astype(np.float64) for k, v in steps[0].items()}
    for p in steps[1:]:
        average.update(jax.tree.map(jnp.asarray, p))
        want = {k: 0.9 * want[k] + 0.1 * p[k] for k in want}  # the textbook form, in float64
    for k in want:
        np.testing.assert_allclose(np.asarray(average.params[k]), want[k], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("decay", [1.0, -0.5])
def test_param_average_refuses_a_decay_outside_0_1(decay):
    with pytest.raises(train.TrainingError, match=f"ema_decay {decay}: must be in"):
        train.ParamAverage(decay, {"w": jnp.zeros(2)})


def test_averaging_saves_the_average_and_leaves_the_training_unchanged(tmp_path, mnist):
    cfg = _tiny_cnn_config().with_overrides(epochs=1)
    plain, plain_params = train.train_and_evaluate(cfg, None, dataset=mnist, train_limit=512, progress=False)
    averaged, params = train.train_and_evaluate(cfg.with_overrides(ema_decay=0.9), tmp_path, dataset=mnist,
                                                train_limit=512, progress=False)
    # The steps are the same with or without the average: the last step's parameters score what the plain run did.
    assert averaged["history"][0]["last_step_test_accuracy"] == plain["test_accuracy"]
    assert averaged["history"][0]["train_loss"] == plain["history"][0]["train_loss"]
    assert averaged["ema_decay"] == 0.9
    # What is saved (and reported) is the average, BatchNorm statistics included, not the last step's values.
    assert not np.array_equal(params[1]["w"], plain_params[1]["w"])
    assert not np.array_equal(params[2]["mean"], plain_params[2]["mean"])
    result = zoo_eval.evaluate_dir(tmp_path)
    assert abs(result["test_accuracy"] - averaged["test_accuracy"]) <= 2e-4
    assert "ema_decay" not in plain and "last_step_test_accuracy" not in plain["history"][0]
