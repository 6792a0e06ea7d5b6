"""zoo.report and zoo.demo on tiny configurations: the real commands, few epochs, few emulated images."""

import io
import json

import pytest
from rich.console import Console

from tests.conftest import require_tool
from zoo import demo, report


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    require_tool("arm-none-eabi-gcc")
    root = tmp_path_factory.mktemp("report")
    console = Console(file=io.StringIO(), width=200)
    rows = report.make_report(["mnist_50"], root / "out", root / "runs", root / "build", images=5,
                              console=console, detailed=("mnist_50",), epochs=1)
    return root, rows, console


def test_report_writes_all_four_tables_and_plots(tiny_report):
    root, rows, _ = tiny_report
    text = (root / "out" / "RESULTS.md").read_text()
    assert "## Summary" in text
    for title in report.TABLES.values():
        assert f"## {title}" in text
    assert [r["key"] for r in rows] == ["mnist_50", "mnist_50-int8", "mnist_50-float64", "mnist_50-prune90",
                                        "mnist_50-prune90-int8", "mnist_50-prune90-share7-int8"]
    for name in ("accuracy_vs_time.png", "memory.png", "cycles_per_function.png"):
        assert (root / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((root / "out" / "results.json").read_text()) == rows
    # Every figure is traceable: each command that produced one is listed.
    assert "python -m rp2040_sim eval" in text and "python -m compress" in text and "--dtype float64" in text


def test_report_rows_come_from_the_artifacts(tiny_report):
    root, rows, _ = tiny_report
    for row in rows:
        build = root / "build" / row["key"]
        emulator = json.loads((build / "emulator.json").read_text())
        assert row["chip_images"] == emulator["images"] == 5
        assert row["flash_bytes"] == json.loads((build / "size.json").read_text())["flash_bytes"]
        assert row["first_images"] == 50
    int8 = [r for r in rows if r["key"].endswith("int8")]
    assert all(r["agreement"] == 1.0 for r in int8)  # the chip is bit-exact with the golden model
    by_key = {r["key"]: r for r in rows}
    assert by_key["mnist_50-int8"]["ms"] < by_key["mnist_50"]["ms"] < by_key["mnist_50-float64"]["ms"]


def test_second_report_run_reuses_every_step(tiny_report):
    root, rows, _ = tiny_report
    console = Console(file=io.StringIO(), width=200)
    again = report.make_report(["mnist_50"], root / "out", root / "runs", root / "build", images=5,
                               console=console, detailed=("mnist_50",), epochs=1)
    output = console.file.getvalue()
    assert "  run " not in output and output.count("cached") == 6 * 5 - 2  # float variants have no compress step
    assert again == rows


def test_report_names_the_failing_command(tmp_path):
    (tmp_path / "runs" / "mnist_50").mkdir(parents=True)
    (tmp_path / "runs" / "mnist_50" / ".step-train.json").write_text("{}")  # made by a report ...
    (tmp_path / "runs" / "mnist_50" / "notes.txt").write_text("mine")  # ... and then a user put a file there
    with pytest.raises(report.ReportError, match=r"`python -m zoo.train mnist_50 .*` failed with exit code 2"):
        report.make_report(["mnist_50"], tmp_path / "out", tmp_path / "runs", tmp_path / "build", images=1,
                           console=Console(file=io.StringIO()), epochs=1)
    assert (tmp_path / "runs" / "mnist_50" / "notes.txt").read_text() == "mine"
    assert "zoo.train does not write (notes.txt)" in (tmp_path / "out" / "report.log").read_text()


def test_report_leaves_a_directory_it_did_not_make_alone(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mnist_50").write_text("a file where a model directory should be")
    with pytest.raises(report.ReportError, match=r"`python -m zoo.train mnist_50 .*` would write into .*mnist_50, "
                                                 r"which exists and was not made by this report"):
        report.make_report(["mnist_50"], tmp_path / "out", tmp_path / "runs", tmp_path / "build", images=1,
                           console=Console(file=io.StringIO()), epochs=1)
    assert (tmp_path / "runs" / "mnist_50").read_text() == "a file where a model directory should be"


def test_report_rejects_unknown_models(tmp_path, capsys):
    assert report.main(["--models", "mnist_7", "--out", str(tmp_path)]) == 2
    assert "unknown models ['mnist_7']" in capsys.readouterr().err


def test_demo_smoke(tmp_path, monkeypatch, capsys):
    """The `make demo` path with one training epoch and a few emulated images."""
    require_tool("arm-none-eabi-gcc")
    monkeypatch.chdir(tmp_path)
    assert demo.main(["--images", "20", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "validated UF2" in out and "build/mnist_300-prune90-share7-int8/firmware.uf2" in out
    assert "of 20" in out and "100.00 %" in out  # agreement with the golden model on the emulated chip


def test_conv_nets_are_in_the_default_report_with_float32_on_a_few_images():
    """Conv nets run float32 in soft float (hundreds of ms per image): their float32 variant is built and evaluated
    on FLOAT_CONV_IMAGES test images, their int8 variant on the report's --images; MLPs keep the first 50."""
    assert set(report.CONV_NETS) <= set(report.DEFAULT_MODELS)
    by_key = {v.key: v for v in report.variants_for(["mnist_50", *report.CONV_NETS], detailed=())}
    for name in report.CONV_NETS:
        assert (by_key[name].images, by_key[name].first) == (report.FLOAT_CONV_IMAGES, report.FLOAT_CONV_IMAGES)
        assert (by_key[f"{name}-int8"].images, by_key[f"{name}-int8"].first) == (None, report.FIRST_IMAGES)
        assert by_key[f"{name}-int8"].compress == ("--quantize", "int8")
    assert (by_key["mnist_50"].images, by_key["mnist_50"].first) == (None, report.FIRST_IMAGES)
    assert by_key["mnist_cnn-s55-int8"].compress == report.MNIST_CNN_SMALL and "fashion_cnn-s55-int8" not in by_key
