"""The examples (examples/*/run.py --quick) and docs/API.md's code, run as a user runs them: to a validated UF2
whose int8 results in rp2040_sim are bit-exact with the host's integer golden model."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toolchain():
    require_tool("arm-none-eabi-gcc")


def _require_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("scikit-learn is not installed (the dev extra installs it)")
        pytest.skip("scikit-learn is not installed (pip install -e '.[dev]')")


def _run_example(name, out):
    proc = subprocess.run([sys.executable, str(REPO / "examples" / name / "run.py"), "--quick", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "result.json").read_text()), proc.stdout


def _check_chip(result, classes):
    assert result["agreement_with_host"] == 1.0 and result["max_abs_output_diff"] == 0.0
    # the chip's accuracy over the samples it ran is the golden model's over the same samples
    assert result["chip_accuracy"] == result["chip_host_accuracy"]
    assert Path(result["uf2"]).is_file()
    assert result["class_names"] == list(classes)


def test_digits_example_reaches_the_chip(toolchain, tmp_path):
    _require_sklearn()
    result, stdout = _run_example("digits", tmp_path / "digits")
    _check_chip(result, ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    assert result["test_images"] == 360 and result["chip_images"] == 60
    assert result["int8_test_accuracy"] > 0.85  # 3 epochs (the full recipe's 30 give the figures in its README)
    assert "validated UF2" in stdout and "-m zoo.train --spec" in stdout


def test_gestures_example_reaches_the_chip(toolchain, tmp_path):
    result, _ = _run_example("gestures", tmp_path / "gestures")
    _check_chip(result, ["still", "shake", "circle", "tap", "wave"])
    assert result["test_images"] == 500 and result["chip_images"] == 50
    assert result["int8_test_accuracy"] > 0.6


def test_gesture_data_is_seeded_and_shaped():
    sys.path.insert(0, str(REPO / "examples" / "gestures"))
    try:
        import motions
    finally:
        sys.path.pop(0)
    a, b = motions.dataset(20, 10, seed=3), motions.dataset(20, 10, seed=3)
    assert all((u == v).all() for u, v in zip(a, b))
    x_train, y_train, x_test, y_test = a
    assert x_train.dtype.name == "uint8" and x_train.shape == (20, motions.T * 3) and x_test.shape == (10, 192)
    assert sorted(set(y_train.tolist())) == list(range(len(motions.GESTURES)))
    # a still window is gravity along z: z near +1 g (8-bit, +-2 g: 191), x and y near 0 g (128)
    import numpy as np
    still = motions.to_uint8(motions.window("still", np.random.default_rng(0)))
    assert abs(still[:, 2].mean() - 191) < 20 and abs(still[:, 0].mean() - 128) < 60


def api_blocks():
    text = (REPO / "docs" / "API.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_api_md_flow_runs(toolchain, tmp_path, monkeypatch, capsys):
    blocks = api_blocks()
    assert len(blocks) >= 7
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PICOZOO_API_QUICK", "1")
    namespace = {"__name__": "api_md"}
    for block in blocks:
        exec(compile(block, "docs/API.md", "exec"), namespace)
    report = namespace["report"]
    assert report["images"] == 200 and report["agreement_with_host"] == 1.0
    saved = namespace["saved"]
    assert saved.meta["class_names"] == ["idle", "running", "worn_bearing"]
    assert (tmp_path / "runs" / "api" / "build" / "firmware.uf2").is_file()
    assert (tmp_path / "runs" / "api" / "picozoo_model" / "include" / "picozoo_model.h").is_file()
