"""Reading files a user hands us (UF2, BIN, ELF, build.json, emulator.json): regular files only, size checked
before reading and again while reading, JSON fields type-checked by name.

Why: `/dev/zero` or a FIFO as an image would be read forever (or block on open), a multi-GB file would be loaded
whole, and a JSON field holding NaN, a string or a list would surface later as a traceback or a wrong verdict.
Each caller passes its own exception class, so the message reaches the user the way that command reports errors.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

JSON_MAX_BYTES = 1024 * 1024  # build.json / emulator.json are a few kB; 1 MiB leaves room and bounds a bomb
_READ_CHUNK = 1024 * 1024


class InputError(Exception):
    """A file that cannot be used as input; `missing` is True when it does not exist."""

    def __init__(self, message: str, missing: bool = False):
        super().__init__(message)
        self.missing = missing


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path, limit: int, what: str) -> bytes:
    """All bytes of `path`, a regular file of at most `limit` bytes; InputError otherwise. Opened non-blocking so
    that a FIFO is refused instead of waiting for a writer; the size is checked before reading (fstat) and while
    reading (a file growing past the limit is refused, never read whole)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", missing=True) from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: is {_kind(st.st_mode)}; a {what} must be a regular file (a device, FIFO or "
                             f"socket can be endless or change while it is read)")
        if st.st_size > limit:
            raise InputError(f"{path}: {st.st_size:,} bytes, over the {limit:,}-byte limit for a {what}; "
                             f"this is not a {what}")
        chunks, total = [], 0
        while True:
            try:
                chunk = os.read(fd, min(_READ_CHUNK, limit + 1 - total))
            except OSError as e:
                raise InputError(f"{path}: cannot read ({e.strerror})") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise InputError(f"{path}: grew past the {limit:,}-byte limit for a {what} while it was read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json_object(path, what: str, limit: int = JSON_MAX_BYTES) -> dict:
    """A JSON object from a regular file of at most `limit` bytes. NaN and ±Infinity are refused (they are not JSON,
    and a NaN compares False against every threshold)."""
    raw = read_regular(path, limit, what)

    def no_constant(name):
        raise ValueError(f"{name} is not a JSON number")
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except ValueError as e:  # json.JSONDecodeError is a ValueError, and so is no_constant's
        raise InputError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: top level is a JSON {type(obj).__name__}, expected an object {{...}}")
    return obj


# Field kinds: a name for the message and a check. bool is excluded from numbers (JSON true is not a count).
def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


FIELD_KINDS = {
    "string": ("a non-empty string", lambda v: isinstance(v, str) and v != ""),
    "positive int": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "fraction": ("a number in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1),
    "sha256": ("64 lowercase hex digits", lambda v: isinstance(v, str) and len(v) == 64
               and all(c in "0123456789abcdef" for c in v)),
}


def field(obj: dict, key: str, kind: str, path, fix: str):
    """obj[key] when it is of `kind` (a FIELD_KINDS name); InputError naming file, field, value and the fix."""
    description, ok = FIELD_KINDS[kind]
    if key not in obj:
        raise InputError(f"{path}: field '{key}' is missing (expected {description}); {fix}")
    value = obj[key]
    if not ok(value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise InputError(f"{path}: field '{key}' is {shown} ({type(value).__name__}), expected {description}; {fix}")
    return value
