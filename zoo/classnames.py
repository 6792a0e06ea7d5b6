"""Class names: from a data file's `class_names` or `--class-names a,b,c`, kept in the model directory's metadata
(`class_names`) and metrics.json, and printed by the firmware after each prediction (`... class cat`).

They end up in C string literals and on a UART, so each is printable ASCII (no control characters, no leading or
trailing space), 1 to MAX_NAME_CHARS characters, and there is one per class of the model's output.
"""

from __future__ import annotations

MAX_NAME_CHARS = 32


class ClassNamesError(ValueError):
    """Class names that cannot be used; the message says which and why."""


def parse(text: str) -> list[str]:
    """`--class-names a,b,c` -> ["a", "b", "c"] (spaces around commas are dropped)."""
    return [part.strip() for part in text.split(",")]


def check(names, n_classes: int, where: str) -> list[str]:
    """`names` as a list of str if they are usable for a model with `n_classes` classes, else ClassNamesError."""
    names = [str(n) if isinstance(n, str) else n for n in list(names)]  # numpy's str_ (an .npz) -> str
    if len(names) != n_classes:
        raise ClassNamesError(f"{where}: {len(names)} class names for {n_classes} classes; give one name per class, "
                              f"in label order (label 0 first)")
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise ClassNamesError(f"{where}: class name {i} is a {type(name).__name__}, not a string")
        if not 1 <= len(name) <= MAX_NAME_CHARS or name != name.strip():
            raise ClassNamesError(f"{where}: class name {i} {name!r} must be 1 to {MAX_NAME_CHARS} characters "
                                  f"without leading or trailing spaces")
        if not all(" " <= ch <= "~" for ch in name):
            raise ClassNamesError(f"{where}: class name {i} {name!r} has a character outside printable ASCII; the "
                                  f"firmware prints names on a UART as ASCII")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ClassNamesError(f"{where}: class name {dup!r} is given twice")
    return names


def n_classes(spec) -> int:
    """Classes of a spec's output: its outputs for logits, 2 for a binary (one sigmoid unit) output."""
    return 2 if spec.output == "binary" else spec.out_features


def c_string(name: str) -> str:
    """A checked name as a C string literal."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
