"""rp2040_sim's CLI checks where it will write (run --json, --gpio-log; eval --out) before any emulation."""

from __future__ import annotations

from rp2040_sim.__main__ import main


def test_run_refuses_unwritable_outputs_before_running(tmp_path, capsys):
    image = tmp_path / "missing.uf2"        # never read: the output check comes first
    for option, value, why in (("--json", tmp_path / "nodir" / "r.json", "does not exist (--json)"),
                               ("--json", tmp_path, "is a directory; --json"),
                               ("--gpio-log", tmp_path / "nodir" / "g.csv", "does not exist (--gpio-log)")):
        assert main(["run", str(image), option, str(value)]) == 1
        captured = capsys.readouterr()
        assert why in captured.err and "cycles" not in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_eval_refuses_an_unwritable_out_before_evaluating(tmp_path, capsys):
    build = tmp_path / "build"
    build.mkdir()                             # no build.json: evaluating would fail later with another message
    assert main(["eval", str(build), "--out", str(tmp_path / "nodir" / "e.json")]) == 1
    assert "does not exist (--out)" in capsys.readouterr().err
    (build / "emulator.json").mkdir()        # the default output is a directory
    assert main(["eval", str(build)]) == 1
    assert "is a directory; --out" in capsys.readouterr().err
