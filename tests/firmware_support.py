"""Helpers for the firmware tests: synthetic model directories and ELF symbol lookup. Firmware images are booted
in rp2040_sim, the project's emulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo import modeldir
from zoo.nn import Dense, ReLU, Sequential, Sigmoid, Tanh

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


def make_model(directory: Path, sizes=(784, 16, 10), activation="relu", dtype="float32", output="logits",
               dataset="mnist", scale=1.0 / 255.0, seed=0) -> Path:
    """A model directory with random weights; final activation 'sigmoid' for binary outputs."""
    rng = np.random.default_rng(seed)
    layers, params = [], []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(n_in, n_out))
        params.append({"w": rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_out)).astype(dtype),
                       "b": rng.normal(0, 0.1, n_out).astype(dtype)})
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
            params.append({})
    if output == "binary":
        layers.append(Sigmoid())
        params.append({})
    meta = {"model": directory.name, "dataset": dataset, "input": {"scale": scale, "features": sizes[0]},
            "dtype": dtype, "seed": seed, "picozoo_version": "0.1.0"}
    modeldir.save(directory, Sequential(layers, output), params, meta, metrics={"model": directory.name})
    return directory


def elf_symbols(elf_path: Path) -> dict[str, tuple[int, int]]:
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: (s["st_value"], s["st_size"]) for s in symtab.iter_symbols() if s.name}
