"""Compressed (int8) model directories through firmware.build and the rp2040_sim emulator: the firmware's int8
outputs equal compress.reference.forward bit for bit, weights go where the build says, cycle budgets hold."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import types
from pathlib import Path

import numpy as np
import pytest

from compress import cli, layout, reference
from conftest import require_tool
from firmware import build as fwbuild
from firmware import codegen
from firmware_support import elf_symbols
from rp2040_sim import eval as sim_eval
from zoo import modeldir
from zoo.models import get_model
from zoo.train import train_and_evaluate

FAST = ["--epochs", "1", "--train-limit", "2048", "--calib-images", "500", "--quiet"]
EVAL_IMAGES = 48
SRAM = (0x20000000, 0x20000000 + fwbuild.RAM_BYTES)
FLASH = (0x10000000, 0x10000000 + fwbuild.FLASH_BYTES)
# Emulator-measured budgets (deterministic cycle counts, docs/BENCHMARKS.md "Zero skipping"). All three int8 kernels
# skip zero inputs, so the budgets count the work of the non-zero ones (115 of 784 pixels on average in the 3 images):
# dense 784x50, cycles per MAC of a non-zero input: 4.34 in the loop, plus compaction and per-output requantization
# (7.48 measured); sparse and shared 784x50 at 20 % density, cycles per entry in the non-zero inputs' columns: 14
# and 13 in the loops, plus the scan of all 784 inputs and per-output work (32.9 and 30.0 measured).
DENSE_784X50_CYCLES_PER_NONZERO_MAC = 7.8
SPARSE_CYCLES_PER_ENTRY_READ = 34.5
SHARED_CYCLES_PER_ENTRY_READ = 31.5


@pytest.fixture(scope="module")
def toolchain():
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-readelf")


@pytest.fixture(scope="module")
def source(tmp_path_factory, mnist):
    """A mnist_50 trained briefly; compressed variants are written inside it, as the README does."""
    out = tmp_path_factory.mktemp("zoo") / "mnist_50"
    cfg = get_model("mnist_50").with_overrides(epochs=1)
    train_and_evaluate(cfg, out, dataset=mnist, train_limit=4000, progress=False)
    return out


@pytest.fixture(scope="module")
def variants(source):
    """{name: model dir}: pruned + int8 (sparse layers), int8 only (dense M0+ kernel), structured + int8, pruned +
    shared weights + int8 (code3 layers)."""
    args = {"prune80-int8": ["--prune", "0.8", "--quantize", "int8"],
            "int8": ["--quantize", "int8"],
            "struct50-int8": ["--prune", "0.5", "--structured", "--quantize", "int8"],
            "prune80-share7-int8": ["--prune", "0.8", "--quantize", "int8", "--share", "7", "--share-epochs", "1"]}
    dirs = {}
    for name, a in args.items():
        assert cli.main([str(source), *a, *FAST, "--out", str(source / name)]) == 0
        dirs[name] = source / name
    return dirs


@pytest.fixture(scope="module")
def builds(toolchain, variants, tmp_path_factory):
    root = tmp_path_factory.mktemp("fw")
    # one core: the budgets below are the one-core kernels' (two cores: test_firmware_dualcore.py)
    out = {name: fwbuild.build(d, root / name, images=4, quiet=True, cores="1") for name, d in variants.items()}
    out["prune80-int8-flash"] = fwbuild.build(variants["prune80-int8"], root / "flash", images=4, cores="1",
                                              weights_in="flash", quiet=True)
    return out


def layer_cycles_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "compress_layer_cycles.py"
    spec = importlib.util.spec_from_file_location("compress_layer_cycles", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_storage_of_the_variants(variants):
    storages = {name: [lm["storage"] for lm in modeldir.load(d).meta["quantization"]["layers"]]
                for name, d in variants.items()}
    assert storages["prune80-int8"][0] == "sparse"
    assert storages["int8"] == ["dense", "dense"] and storages["struct50-int8"] == ["dense", "dense"]
    assert modeldir.load(variants["struct50-int8"]).spec.layers[0].out_features == 25
    assert storages["prune80-share7-int8"] == ["shared", "shared"]


@pytest.mark.parametrize("name", ["prune80-int8", "int8", "struct50-int8", "prune80-share7-int8",
                                  "prune80-int8-flash"])
def test_emulator_equals_golden_model_bit_for_bit(builds, variants, mnist, name):
    result = builds[name]
    report = sim_eval.evaluate(result.out_dir, images=EVAL_IMAGES, jobs=1, progress=False)
    assert report["agreement_with_host"] == 1.0
    assert report["max_abs_output_diff"] == 0.0
    model = modeldir.load(variants[name.removesuffix("-flash")])
    want = reference.predict(model, reference.forward(model, mnist.x_test[:EVAL_IMAGES]))
    assert report["accuracy"] == pytest.approx(float(np.mean(want == mnist.y_test[:EVAL_IMAGES])))


def test_build_json_and_placement(builds, variants):
    for name, result in builds.items():
        info = json.loads((result.out_dir / "build.json").read_text())
        size = json.loads((result.out_dir / "size.json").read_text())
        assert info["output_ctype"] == "int8_t" and info["output_count"] == 10
        flash = name.endswith("-flash")
        assert info["weights_in"] == ("flash" if flash else "ram")
        assert size["weights_placement"] == ("flash" if flash else "sram-copy")
        model = modeldir.load(variants[name.removesuffix("-flash")])
        assert size["model_bytes"] == model.metrics["model_bytes"]
        syms = elf_symbols(result.out_dir / "firmware.elf")
        arrays = {s: v for s, v in syms.items() if re.fullmatch(r"pz_l\d+_\w+", s)}
        assert sum(v[1] for v in arrays.values()) == size["weights_bytes"]
        lo, hi = FLASH if flash else SRAM
        assert all(lo <= addr < hi for addr, _ in arrays.values()), arrays
        # every byte the model stores is in these arrays (+ the struct's pointers and counts)
        assert size["weights_bytes"] >= model.metrics["model_bytes"]
        # weight arrays 4-byte aligned (the kernels load 32-bit words)
        assert all(addr % 4 == 0 for s, (addr, _) in arrays.items() if s.endswith("_w"))
        shared = name == "prune80-share7-int8"
        assert all((v[1] == 4) == shared for s, v in arrays.items() if s.endswith("_mult")), "one per shared layer"
        assert any(s.endswith("_codebook") for s in arrays) == shared


@pytest.mark.parametrize("name", ["prune80-int8", "prune80-share7-int8"])
def test_generated_tables_hold_kernel_layers(variants, name):
    model = modeldir.load(variants[name])
    c = codegen.generate_model(model, "m")["model.c"]
    kinds = {"sparse": "PZ_K_Q8_SPARSE", "dense": "PZ_K_Q8_DENSE", "shared": "PZ_K_Q8_SHARED"}
    for kl in layout.kernel_layers(model):
        i = kl["index"]
        assert f"{kinds[kl['storage']]}, {kl['n_in']}, {kl['n_out']}, pz_l{i}_w" in c
        assert f"const uint8_t pz_l{i}_w[{len(kl['w'])}] __attribute__((aligned(8)))" in c
        book = f"pz_l{i}_codebook" if kl["storage"] == "shared" else "NULL"
        assert f"0x{int(kl['out_xor']):02x}u, {book}}};" in c
        if kl["storage"] == "shared":
            values = ", ".join(str(int(v)) for v in kl["codebook"])
            assert f"const int8_t pz_l{i}_codebook[8] = {{\n    {values},\n}};" in c
            assert f"const int32_t pz_l{i}_mult[1] = {{" in c
    assert "int8_t pz_output_t" in codegen.generate_model(model, "m")["model.h"]
    assert "uint8_t pz_l0_w[" in codegen.generate_model(model, "m", "ram")["model.c"]
    assert "const uint8_t pz_l0_w[" not in codegen.generate_model(model, "m", "ram")["model.c"]


def test_dense_and_sparse_cycle_budgets(builds, variants):
    """Per-layer cycles measured by rp2040_sim (outputs checked against the golden model by the harness)."""
    mod = layer_cycles_module()
    dense = mod.measure(builds["int8"].out_dir, 3)["layers"][0]
    assert dense["n_in"] == 784 and dense["cycles_per_nonzero_mac"] <= DENSE_784X50_CYCLES_PER_NONZERO_MAC
    assert dense["nonzero_inputs_mean"] < 0.25 * 784               # what the skipping saves: most pixels are 0
    sparse = mod.measure(builds["prune80-int8"].out_dir, 3)["layers"][0]
    assert sparse["storage"] == "sparse" and sparse["cycles_per_entry_read"] <= SPARSE_CYCLES_PER_ENTRY_READ
    assert sparse["entries_read_mean"] < 0.25 * sparse["stored_entries"]
    shared = mod.measure(builds["prune80-share7-int8"].out_dir, 3)["layers"][0]
    assert shared["storage"] == "shared" and shared["cycles_per_entry_read"] <= SHARED_CYCLES_PER_ENTRY_READ
    # 1 byte per entry + 2 per input column (784 of them for 50 outputs) against 2 per entry + 2 per column
    assert shared["bytes_per_nonzero"] < 1.25 < 2 < sparse["bytes_per_nonzero"]
    flash = mod.measure(builds["prune80-int8-flash"].out_dir, 3)["layers"][0]
    assert flash["cycles_mean"] > sparse["cycles_mean"]  # the XIP misses the SRAM copy avoids


def test_placement_decision(variants, source):
    model = modeldir.load(variants["int8"])
    assert fwbuild.choose_placement(model, "auto", fwbuild.DEFAULT_STACK)[0] == "ram"
    assert fwbuild.choose_placement(model, "flash", fwbuild.DEFAULT_STACK)[0] == "flash"
    need = codegen.model_arrays_bytes(model) + codegen.activation_bytes(model) + fwbuild.RUNTIME_STATIC_RAM
    # a stack reserve that leaves less than the headroom flips the decision to flash
    tight = (fwbuild.RAM_BYTES - fwbuild.SRAM_HEADROOM - need + 8) // 8 * 8
    assert fwbuild.choose_placement(model, "auto", tight)[0] == "flash"
    assert fwbuild.choose_placement(model, "auto", tight - 8)[0] == "ram"
    assert fwbuild.choose_placement(modeldir.load(source), "auto", fwbuild.DEFAULT_STACK)[0] == "flash"


def test_default_out_dir_of_nested_variant(variants, source):
    assert fwbuild.default_out_dir(variants["prune80-int8"]) == Path("build") / "mnist_50-prune80-int8"
    assert fwbuild.default_out_dir(source) == Path("build") / "mnist_50"


def _with_quantization(model, change):
    q = json.loads(json.dumps(model.meta["quantization"]))
    change(q)
    return dataclasses.replace(model, meta={**model.meta, "quantization": q})


@pytest.mark.parametrize("change,message", [
    (lambda q: q.update(rounding="double"), "single rounding"),
    (lambda q: q.update(scheme="int4"), "single rounding"),
    (lambda q: q["input"].update(zero_point=0), "zero point -128"),
])
def test_unsupported_int8_metadata_is_refused(variants, change, message):
    model = modeldir.load(variants["int8"])
    with pytest.raises(codegen.CodegenError, match=message):
        codegen.generate_model(_with_quantization(model, change), "m")
    assert codegen.output_ctype(model) == "int8_t"


def test_int8_model_the_table_cannot_hold_is_refused(variants):
    model = modeldir.load(variants["int8"])
    # compress only writes logits models; a hand-made binary one would get a wrong predictor
    binary = types.SimpleNamespace(meta=model.meta, spec=types.SimpleNamespace(output="binary"))
    with pytest.raises(codegen.CodegenError, match="logits output"):
        codegen.generate_model(binary, "m")
    # a layer whose input width does not match the previous layer's output (a corrupted directory)
    extra = dict(model.extra)
    extra["q.layers.2.w"] = extra["q.layers.2.w"][:, :-4]
    with pytest.raises(codegen.CodegenError, match="takes 46 inputs but the previous layer gives 50"):
        codegen.generate_model(dataclasses.replace(model, extra=extra), "m")


def test_int8_layer_wider_than_the_table_is_refused(variants, monkeypatch):
    monkeypatch.setattr(codegen, "MAX_DIM", 783)  # the uint16 limit, lowered so a 784-input layer exceeds it
    with pytest.raises(codegen.CodegenError, match="layer 0 width 784 exceeds"):
        codegen.generate_model(modeldir.load(variants["int8"]), "m")


def test_unknown_placement_is_refused_before_building(variants, tmp_path):
    with pytest.raises(fwbuild.BuildError, match="use auto, flash or ram"):
        fwbuild.build(variants["int8"], tmp_path / "out", weights_in="sram", quiet=True)
    assert not (tmp_path / "out").exists()
