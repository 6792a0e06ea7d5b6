"""firmware.untrusted: the bounded reader and the typed JSON fields every artifact reader uses."""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import untrusted


def test_reads_a_regular_file_up_to_the_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert untrusted.read_regular(path, 100, "thing") == b"x" * 100
    with pytest.raises(untrusted.InputError, match=r"100 bytes, over the 99-byte limit for a thing"):
        untrusted.read_regular(path, 99, "thing")


def test_a_file_larger_than_its_reported_size_is_cut_off_at_the_limit():
    """/proc files report st_size 0 but have content: the count while reading catches what fstat cannot."""
    with pytest.raises(untrusted.InputError, match="grew past the 8-byte limit for a thing while it was read"):
        untrusted.read_regular("/proc/self/maps", 8, "thing")


def test_missing_directory_fifo_and_device(tmp_path):
    with pytest.raises(untrusted.InputError, match="no such file") as e:
        untrusted.read_regular(tmp_path / "nope", 10, "thing")
    assert e.value.missing
    with pytest.raises(untrusted.InputError, match="is a directory; a thing must be a regular file"):
        untrusted.read_regular(tmp_path, 10, "thing")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(untrusted.InputError, match="is a FIFO"):
        untrusted.read_regular(tmp_path / "fifo", 10, "thing")
    with pytest.raises(untrusted.InputError, match="is a character device"):
        untrusted.read_regular("/dev/zero", 10, "thing")


@pytest.mark.parametrize("text,message", [
    ("[1]", "top level is a JSON list"),
    ('{"a": Infinity}', "Infinity is not a JSON number"),
    ('{"a": -Infinity}', "-Infinity is not a JSON number"),
    ("[" * 200_000 + "]" * 200_000, "nested too deeply|not valid JSON"),
    ("{", "not valid JSON"),
])
def test_json_objects_only(tmp_path, text, message):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(untrusted.InputError, match=message):
        untrusted.read_json_object(path, "record")


@pytest.mark.parametrize("kind,good,bad", [
    ("string", "mnist", ["", 3, None, ["a"]]),
    ("positive int", 4, [0, -1, True, 4.0, "4", None]),
    ("fraction", 0.5, [1.5, -0.1, float("nan"), float("inf"), "0.5", False]),
    ("sha256", "ab" * 32, ["AB" * 32, "ab" * 31, 7, "zz" * 32]),
])
def test_field_kinds(kind, good, bad):
    assert untrusted.field({"k": good}, "k", kind, "r.json", "fix it") == good
    for value in bad:
        with pytest.raises(untrusted.InputError, match=r"r.json: field 'k' is .*; fix it"):
            untrusted.field({"k": value}, "k", kind, "r.json", "fix it")
    with pytest.raises(untrusted.InputError, match="field 'k' is missing"):
        untrusted.field({}, "k", kind, "r.json", "fix it")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_property_any_bytes_give_an_object_or_input_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("j") / "r.json"
    path.write_bytes(data)
    try:
        obj = untrusted.read_json_object(path, "record")
    except untrusted.InputError:
        return
    assert isinstance(obj, dict) and json.loads(data) == obj
