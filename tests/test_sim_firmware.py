"""The real picozoo firmware (python -m firmware.build) in the emulator: its UART text matches the host model,
eval agrees with the host and writes emulator.json, and the counts are deterministic across worker splits."""

import json
import re

import numpy as np
import pytest

from rp2040_sim import __main__ as cli
from rp2040_sim import eval as sim_eval
from rp2040_sim import runner
from tests.conftest import require_tool
from tests.firmware_support import make_model
from zoo import host, modeldir

IMAGES = 12
LINE = re.compile(r"img (\d+) label (\d+) pred (\d+) us (\d+)")


@pytest.fixture(scope="module")
def built(tmp_path_factory, mnist):
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-size")
    from firmware import build as fwbuild
    root = tmp_path_factory.mktemp("simfw")
    model_dir = make_model(root / "mnist_small", sizes=(784, 24, 10))
    fwbuild.build(model_dir, root / "out", images=IMAGES, quiet=True)
    return model_dir, root / "out"


def test_firmware_uart_text_matches_host_model(built, mnist):
    model_dir, out = built
    result, sim = runner.run_image(out / "firmware.uf2")
    assert result.stop.ok, result.fault_report
    assert sim.warnings == []
    lines = result.uart.splitlines()
    rows = [LINE.fullmatch(line) for line in lines[:IMAGES]]
    assert all(rows), lines
    model = modeldir.load(model_dir)
    expected = host.predict(model, host.forward(model, mnist.x_test[:IMAGES]))
    assert [int(m[1]) for m in rows] == list(range(IMAGES))
    assert [int(m[2]) for m in rows] == list(mnist.y_test[:IMAGES])
    assert [int(m[3]) for m in rows] == list(expected)
    correct = int(np.sum(expected == mnist.y_test[:IMAGES]))
    summary = re.fullmatch(r"summary images (\d+) correct (\d+) us_total (\d+)", lines[IMAGES])
    assert summary and int(summary[1]) == IMAGES and int(summary[2]) == correct
    # the firmware's own TIMER measurements agree with emulated cycles at 125 MHz (to within the UART printing)
    us_total = int(summary[3])
    assert 0 < us_total < result.cycles / 125
    assert result.static_ram_bytes > IMAGES and 0 < result.peak_stack_bytes < 4096


def test_eval_agrees_with_host_and_writes_emulator_json(built):
    model_dir, out = built
    report = sim_eval.evaluate(out, images=6, jobs=1, progress=False)
    written = json.loads((out / "emulator.json").read_text())
    assert written == report
    for key in ("images", "accuracy", "agreement_with_host", "max_abs_output_diff", "cycles_per_inference",
                "ms_per_inference_125mhz", "peak_ram_bytes", "flash_bytes", "uf2_sha256"):
        assert key in report
    assert report["images"] == 6 and report["agreement_with_host"] == 1.0
    assert report["max_abs_output_diff"] < 1e-4
    c = report["cycles_per_inference"]
    assert 0 < c["min"] <= c["mean"] <= c["max"]
    assert report["uf2_sha256"] == json.loads((out / "build.json").read_text())["uf2_sha256"]


def test_eval_counts_do_not_depend_on_the_worker_split(built, tmp_path):
    _, out = built
    one = sim_eval.evaluate(out, images=4, jobs=1, progress=False, out=tmp_path / "one.json")
    two = sim_eval.evaluate(out, images=4, jobs=2, progress=False, out=tmp_path / "two.json")
    for key in ("cycles_per_inference", "instructions_per_inference", "max_abs_output_diff", "peak_ram_bytes"):
        assert one[key] == two[key]


def test_eval_bad_inputs(built, tmp_path, capsys):
    _, out = built
    assert cli.main(["eval", str(tmp_path / "missing")]) == 1
    assert "not a directory" in capsys.readouterr().err
    assert cli.main(["eval", str(out), "--images", "20000", "--no-progress"]) == 1
    assert "give 1..10000" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "build.json").write_text("{not json")
    assert cli.main(["eval", str(broken)]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert not (broken / "emulator.json").exists()


def test_eval_refuses_a_uf2_that_is_not_the_built_one(built, tmp_path, capsys):
    import shutil
    _, out = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    build = json.loads((copy / "build.json").read_text())
    build["uf2_sha256"] = "0" * 64
    (copy / "build.json").write_text(json.dumps(build))
    assert cli.main(["eval", str(copy), "--images", "2", "--no-progress"]) == 1
    assert "differs from build.json" in capsys.readouterr().err


def test_eval_refuses_a_build_that_does_not_match_the_model_kind(built, tmp_path, capsys):
    import shutil
    _, out = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    build = json.loads((copy / "build.json").read_text())
    build["output_ctype"] = "int8_t"            # claims int8 outputs, but the model is float
    (copy / "build.json").write_text(json.dumps(build))
    (copy / "emulator.json").unlink(missing_ok=True)
    assert cli.main(["eval", str(copy), "--images", "2", "--no-progress"]) == 1
    assert "is a float model" in capsys.readouterr().err
    assert not (copy / "emulator.json").exists()


def test_int8_variant_is_bit_exact_with_the_golden_model(built, tmp_path):
    """An int8 variant (compress --quantize int8) built by firmware.build: eval compares against
    compress.reference through zoo.host.reference and must match bit for bit."""
    from compress.cli import main as compress_main
    from firmware import build as fwbuild
    model_dir, _ = built
    qdir = tmp_path / "q8"
    assert compress_main([str(model_dir), "--quantize", "int8", "--calib-images", "50", "--out", str(qdir),
                          "--quiet"]) == 0
    fwbuild.build(qdir, tmp_path / "out", images=2, quiet=True)
    report = sim_eval.evaluate(tmp_path / "out", images=8, jobs=1, progress=False)
    assert json.loads((tmp_path / "out" / "build.json").read_text())["output_ctype"] == "int8_t"
    assert report["agreement_with_host"] == 1.0 and report["max_abs_output_diff"] == 0.0
