"""Class names: checked, carried from zoo.train into the model directory, compress's variants and the firmware's
UART lines (booted in rp2040_sim; the names printed are those of the host model's predictions)."""

import json
import re

import numpy as np
import pytest

from conftest import require_tool
from firmware import build as fwbuild
from firmware import flash
from firmware_support import make_model
from rp2040_sim import runner
from zoo import classnames, host, modeldir, train

LINE = re.compile(r"img (\d+) label (\d+) pred (\d+) us (\d+)(?: class (.+))?")


@pytest.mark.parametrize("names, message", [
    (["a"], "1 class names for 2 classes"),
    (["a", 3], "class name 1 is a int"),
    (["a", ""], "class name 1 '' must be 1 to 32 characters"),
    (["a", " b"], "without leading or trailing spaces"),
    (["a", "x" * 33], "must be 1 to 32 characters"),
    (["a", "caf\u00e9"], "outside printable ASCII"),
    (["a", "b\n"], "without leading or trailing spaces"),
    (["a", "b\tc"], "outside printable ASCII"),
    (["a", "a"], "'a' is given twice"),
])
def test_check_names_each_problem(names, message):
    with pytest.raises(classnames.ClassNamesError, match=re.escape(message)):
        classnames.check(names, 2, "here")


def test_numpy_strings_and_parse():
    assert classnames.check(np.array(["zero", "one"]), 2, "x") == ["zero", "one"]
    assert type(classnames.check(np.array(["zero", "one"]), 2, "x")[0]) is str
    assert classnames.parse("cat, dog ,bird") == ["cat", "dog", "bird"]
    assert classnames.c_string('a"b\\c') == '"a\\"b\\\\c"'


def test_train_writes_class_names_and_refuses_a_wrong_count(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["xor", "--epochs", "2", "--no-progress", "--out", str(out)]
    assert train.main([*argv, "--class-names", "same,different,third"]) == 2
    assert "3 class names for 2 classes" in capsys.readouterr().err and not out.exists()
    assert train.main([*argv, "--class-names", "same,different"]) == 0
    assert modeldir.load(out).meta["class_names"] == ["same", "different"]
    assert json.loads((out / "metrics.json").read_text())["class_names"] == ["same", "different"]


def test_compress_keeps_class_names(tmp_path, mnist):
    from compress import cli as compress_cli
    src = _with_names(make_model(tmp_path / "m", sizes=(784, 8, 10)), [f"digit {i}" for i in range(10)])
    assert compress_cli.main([str(src), "--quantize", "int8", "--quiet", "--out", str(tmp_path / "q")]) == 0
    assert modeldir.load(tmp_path / "q").meta["class_names"][3] == "digit 3"
    assert json.loads((tmp_path / "q" / "metrics.json").read_text())["class_names"][9] == "digit 9"


def _with_names(model_dir, names):
    saved = modeldir.load(model_dir)
    modeldir.save(model_dir, saved.spec, saved.params, {**saved.meta, "class_names": names}, saved.metrics)
    return model_dir


def test_firmware_prints_the_class_name_of_each_prediction(tmp_path):
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy")
    names = ['a "low" one', "back\\slash"]
    model_dir = _with_names(make_model(tmp_path / "xor", sizes=(2, 3, 2), activation="tanh", dataset="xor",
                                       scale=1.0), names)
    result = fwbuild.build(model_dir, tmp_path / "out", quiet=True)
    run, _ = runner.run_image(result.out_dir / "firmware.uf2")
    assert run.stop.ok, run.fault_report
    lines = run.uart.split("\r\n")[:4]
    model = modeldir.load(model_dir)
    raw = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.uint8)
    expected = host.predict(model, host.forward(model, raw)).tolist()
    matches = [LINE.fullmatch(line) for line in lines]
    assert [int(m[3]) for m in matches] == expected
    assert [m[5] for m in matches] == [names[p] for p in expected]
    # firmware.flash's parser reads the lines with names as it reads those without
    images, summary = flash.parse_report(run.uart.split("\r\n"))
    assert [p for _, _, p in images] == expected and summary[0] == 4


def test_firmware_without_names_prints_the_old_line(tmp_path):
    require_tool("arm-none-eabi-gcc")
    model_dir = make_model(tmp_path / "xor", sizes=(2, 3, 2), activation="tanh", dataset="xor", scale=1.0)
    result = fwbuild.build(model_dir, tmp_path / "out", quiet=True)
    run, _ = runner.run_image(result.out_dir / "firmware.uf2")
    assert all(LINE.fullmatch(line)[5] is None for line in run.uart.split("\r\n")[:4])


@pytest.mark.parametrize("names, message", [("cat", "class_names in the metadata is a str"),
                                            (["cat"], "1 class names for 2 classes")])
def test_build_refuses_bad_names_in_the_metadata(tmp_path, names, message):
    require_tool("arm-none-eabi-gcc")
    model_dir = _with_names(make_model(tmp_path / "xor", sizes=(2, 3, 2), dataset="xor", scale=1.0), names)
    with pytest.raises(fwbuild.BuildError, match=message):
        fwbuild.build(model_dir, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out" / "firmware.uf2").exists()


def test_report_rows_and_results_carry_class_names(tmp_path):
    from zoo import report
    model_dir, build = tmp_path / "m", tmp_path / "b"
    model_dir.mkdir()
    build.mkdir()
    (model_dir / "metrics.json").write_text(json.dumps({"test_accuracy": 0.9, "class_names": ["cat", "dog"]}))
    (build / "size.json").write_text(json.dumps({"flash_bytes": 1000}))
    uart = "img 0 label 1 pred 1 us 5 class dog\r\nsummary images 1 correct 1 us_total 5\r\n"
    (build / "run.json").write_text(json.dumps({"uart": uart, "peak_ram_bytes": 100}))
    row = report.collect(report.Variant("pets", "pets", "float32"), model_dir, build, evaluated=False)
    assert row["class_names"] == ["cat", "dog"] and row["first_correct"] == 1
    assert report.class_names_section([row]) == ["## Classes", "", "| model | classes (label 0 first) |", "|---|---|",
                                                 "| pets | 0: cat, 1: dog |", ""]
    assert report.class_names_section([{**row, "class_names": None}]) == []
