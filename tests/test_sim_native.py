"""The native cycle counter's build: cached by source hash, and a clear error without a C compiler."""

import pytest

from rp2040_sim import native


def test_build_is_cached_by_source_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("PICOZOO_NATIVE_CACHE", str(tmp_path))
    path = native.build()
    assert path.parent == tmp_path / "picozoo" / "rp2040_sim" and path.is_file()
    mtime = path.stat().st_mtime_ns
    assert native.build() == path and path.stat().st_mtime_ns == mtime


def test_missing_compiler_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PICOZOO_NATIVE_CACHE", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(native.NativeBuildError, match="apt-get install -y gcc"):
        native.build()
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(native.NativeBuildError, match="no-such-cc"):
        native.build()
    assert not list(tmp_path.rglob("*.so"))


def test_compile_error_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "cycles.c"
    bad.write_text("this is not C\n")
    monkeypatch.setattr(native, "SOURCE", bad)
    monkeypatch.setenv("PICOZOO_NATIVE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(native.NativeBuildError, match="failed to compile"):
        native.build()
