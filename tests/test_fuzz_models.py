"""benchmarks/fuzz_models.py's own rules: it replaces only the case directories it made, and names a bad option."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fuzz_models  # noqa: E402


def test_a_rerun_replaces_only_its_own_case_directories(tmp_path, capsys):
    own = fuzz_models.fresh_case_dir(tmp_path / "case-0-0")
    (own / "model").mkdir()
    assert fuzz_models.fresh_case_dir(own) == own and [p.name for p in own.iterdir()] == [fuzz_models.CASE_MARK]
    foreign = tmp_path / "keep" / "case-0-0"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(fuzz_models.FuzzError, match="was not made by benchmarks/fuzz_models.py"):
        fuzz_models.fresh_case_dir(foreign)
    assert fuzz_models.main(["--count", "1", "--seed", "0", "--keep", str(tmp_path / "keep")]) == 2
    assert f"error: {foreign} exists" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"] and (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("value, message", [("3,x", "give kernel sizes separated by commas"),
                                            ("3,11", "each size must be 1 to 9")])
def test_dw_kernels_names_a_bad_value(value, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        fuzz_models.main(["--count", "1", "--dw-kernels", value])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
