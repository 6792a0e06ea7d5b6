"""Conv nets through firmware.build, booted in rp2040_sim: a tiny CNN with every conv-net layer type, float32 against
zoo.host and int8 bit for bit against compress.reference; the activation planner against what inference touches;
per-layer weight placement and the planner's refusal."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from compress import reference
from compress.netspec import for_inference
from compress.quantize import quantize_model
from conftest import require_tool
from firmware import build as fwbuild
from firmware import convgen, planner
from firmware_support import elf_symbols
from rp2040_sim import runner
from zoo import host, modeldir
from zoo.nn import (AvgPool2D, BatchNorm, Conv2D, DepthwiseConv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, Input,
                    MaxPool2D, ReLU, ReLU6, Sequential)

SRAM = (0x20000000, 0x20042000)


def tiny_cnn() -> Sequential:
    """Every conv-net layer kind on a 28x28 input: same/valid, strides, BatchNorm, ReLU/ReLU6, all three pools."""
    return Sequential([Input(28, 28, 1), Conv2D(1, 8, 3, 2, "same"), BatchNorm(8), ReLU(),   # 14x14x8, gathered
                       DepthwiseConv2D(8, 3, 1, "same"), ReLU6(),                            # dw, borders
                       Conv2D(8, 8, 1, 1, "same"), ReLU(), MaxPool2D(2),                     # pointwise, 7x7x8
                       Conv2D(8, 12, 3, 1, "valid"), ReLU6(), AvgPool2D(2),                  # 5x5x12 -> 2x2x12
                       Conv2D(12, 8, 1, 1, "valid"), GlobalAvgPool2D(), Dropout(0.1),        # 8
                       Dense(8, 16), ReLU(), Dense(16, 10)])


def save_tiny_cnn(directory, mnist, seed=0):
    rng = np.random.default_rng(seed)
    spec = tiny_cnn()
    params = []
    for layer in spec.layers:
        p = {}
        for name, shape in layer.param_shapes().items():
            lo, hi = {"var": (0.5, 2.0), "gamma": (0.5, 1.5)}.get(name, (-0.6, 0.6))
            p[name] = rng.uniform(lo, hi, shape).astype(np.float32)
        params.append(p)
    meta = {"model": directory.name, "dataset": "mnist", "input": {"scale": 1 / 255, "features": 784},
            "dtype": "float32", "seed": seed, "picozoo_version": "0.1.0"}
    modeldir.save(directory, spec, params, meta, metrics={"model": directory.name})
    # the int8 variant, as python -m compress writes it (BatchNorm folded, Dropout dropped, calibrated on 64 images)
    ispec, iparams = for_inference(spec, params)
    qmeta, extra, qparams = quantize_model(ispec, iparams, 1 / 255, mnist.x_test[:64])
    modeldir.save(directory / "int8", ispec, qparams, {**meta, "quantization": qmeta}, metrics={"model": "int8"},
                  extra=extra)
    return directory


@pytest.fixture(scope="module")
def built(tmp_path_factory, mnist):
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy")
    root = tmp_path_factory.mktemp("cnn")
    model_dir = save_tiny_cnn(root / "tiny_cnn", mnist)
    # one core: infer() runs pz_infer on core 0 alone (two cores: tests/test_firmware_conv_dual.py)
    f32 = fwbuild.build(model_dir, root / "f32", images=2, quiet=True, cores="1")
    q8 = fwbuild.build(model_dir / "int8", root / "q8", images=2, quiet=True, cores="1")
    return model_dir, f32, q8


def infer(result, rows, hook_writes=False):
    """Boot the build, then call pz_infer on each raw row: (pz_output bytes per row, class per row, write ranges)."""
    res, sim = runner.run_image(result.out_dir / "firmware.uf2")
    assert res.stop.ok, res.fault_report
    sym = elf_symbols(result.out_dir / "firmware.elf")
    writes = []
    if hook_writes:
        from unicorn import UC_HOOK_MEM_WRITE
        sim.uc.hook_add(UC_HOOK_MEM_WRITE, lambda uc, access, addr, size, value, _: writes.append((addr, size)),
                        None, *SRAM)
    outs, classes = [], []
    for row in rows:
        sim.write(sym["pz_input"][0], row.tobytes())
        sim.set_regs(sp=sym["__stack_top"][0], lr=sym["pz_halt"][0] | 1)
        stop = sim.run(sym["pz_infer"][0])
        assert stop.kind == "halt", stop
        outs.append(sim.read(*sym["pz_output"]))
        classes.append(stop.regs["r0"])
    return outs, classes, writes, sym


def test_int8_cnn_is_bit_exact_with_the_golden_model(built, mnist):
    model_dir, _, q8 = built
    model = modeldir.load(model_dir / "int8")
    rows = np.concatenate([mnist.x_test[:3], np.random.default_rng(1).integers(0, 256, (2, 784), dtype=np.uint8)])
    outs, classes, _, _ = infer(q8, rows)
    want = reference.forward(model, rows)
    got = np.array([np.frombuffer(o, np.int8) for o in outs])
    np.testing.assert_array_equal(got, want)
    assert classes == reference.predict(model, want).tolist()
    assert len(set(map(bytes, got))) > 1  # different images give different outputs: the test can fail


def test_float_cnn_matches_the_host_model(built, mnist):
    model_dir, f32, _ = built
    model = modeldir.load(model_dir)
    rows = mnist.x_test[:3]
    outs, classes, _, _ = infer(f32, rows)
    want = host.forward(model, rows)
    got = np.array([np.frombuffer(o, np.float32) for o in outs])
    # different summation order than NumPy's: equal to a few float32 ulps of the largest output
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())
    assert classes == np.argmax(got, axis=1).tolist()


@pytest.mark.parametrize("which", ["f32", "q8"])
def test_inference_touches_exactly_the_planned_arena(built, mnist, which):
    """During pz_infer the CPU writes only inside pz_arena (up to exactly arena_bytes), pz_output and the stack."""
    result = built[1] if which == "f32" else built[2]
    size = json.loads((result.out_dir / "size.json").read_text())
    _, _, writes, sym = infer(result, mnist.x_test[:1], hook_writes=True)
    arena, arena_size = sym["pz_arena"]
    assert arena_size >= size["arena_bytes"] > 0
    top = max(a + n for a, n in writes if arena <= a < arena + arena_size)
    assert top - arena == size["arena_bytes"]
    out, out_size = sym["pz_output"]
    stack_limit = sym["__stack_limit"][0]
    stray = [(hex(a), n) for a, n in writes
             if not (arena <= a < arena + arena_size or out <= a < out + out_size or a >= stack_limit)]
    assert not stray


def test_int8_plan_overlaps_outputs_with_inputs(built):
    """The int8 build writes outputs over their own inputs (planner.Step.overlap), so the bit-exact and arena tests
    above run with overlapped buffers; its arena is smaller for it."""
    model = modeldir.load(built[0] / "int8")
    _, steps, _ = convgen.plan_steps(model, "m")
    plan = planner.plan(steps, convgen.input_bytes(model))
    assert plan.overlapped() and plan.arena_bytes == built[2].size["arena_bytes"]
    assert [o["layer"] for o in built[2].size["arena_overlaps"]] == [steps[i].name for i in plan.overlapped()]
    assert built[1].size["arena_overlaps"] == []   # float kernels never write over their input
    apart = planner.plan([dataclasses.replace(s, overlap=None) for s in steps], convgen.input_bytes(model))
    assert plan.arena_bytes < apart.arena_bytes


def test_size_json_reports_arena_and_placement(built):
    _, f32, q8 = built
    for result in (f32, q8):
        size = result.size
        rows = size["weights_placement_layers"]
        assert [r["op"] for r in rows] == ["conv2d", "depthwise_conv2d", "conv2d", "conv2d", "conv2d", "dense",
                                           "dense"]
        assert all(r["placement"] == "sram-copy" for r in rows)  # a tiny model fits
        assert size["weights_placement"] == "sram-copy"
        assert sum(r["bytes"] for r in rows) <= size["weights_bytes"]


def test_per_layer_placement_by_flash_traffic(built, monkeypatch):
    """With SRAM for only part of the weights, the layers that would fetch the most from flash win it: convs (read
    once per output pixel) when their weights overflow the XIP cache, else the smallest layers first."""
    model = modeldir.load(built[0] / "int8")
    _, rows = fwbuild.choose_layer_placement(model, "auto", 4096, "m")
    total = sum(r["bytes"] for r in rows)
    dense = sum(r["bytes"] for r in rows if r["op"] == "dense")
    largest = max(rows, key=lambda r: r["bytes"])
    free = fwbuild.RAM_BYTES - fwbuild.SRAM_HEADROOM - fwbuild.codegen.activation_bytes(model) \
        - fwbuild.RUNTIME_STATIC_RAM - 4096
    monkeypatch.setattr(fwbuild, "RAM_BYTES", fwbuild.RAM_BYTES - free + total - dense)  # room for all but dense
    monkeypatch.setattr(fwbuild, "XIP_CACHE_SHARE", 0)  # no layer stays cached
    _, rows = fwbuild.choose_layer_placement(model, "auto", 4096, "m")
    assert {r["op"] for r in rows if r["placement"] == "flash"} == {"dense"}
    monkeypatch.setattr(fwbuild, "XIP_CACHE_SHARE", 8192)  # every layer stays cached: one fetch per byte each
    monkeypatch.setattr(fwbuild, "RAM_BYTES", fwbuild.RAM_BYTES + dense - largest["bytes"])
    placement, rows = fwbuild.choose_layer_placement(model, "auto", 4096, "m")
    assert [r["index"] for r in rows if r["placement"] == "flash"] == [largest["index"]]
    assert fwbuild.choose_layer_placement(model, "flash", 4096, "m")[0] == {r["index"]: "flash" for r in rows}


def test_build_refuses_activations_that_do_not_fit(tmp_path):
    spec = Sequential([Input(60, 60, 4), Conv2D(4, 16, 3, 1, "same"), GlobalAvgPool2D(), Dense(16, 2)])
    params = [{}, {"w": np.zeros((3, 3, 4, 16), np.float32), "b": np.zeros(16, np.float32)}, {},
              {"w": np.zeros((16, 2), np.float32), "b": np.zeros(2, np.float32)}]
    meta = {"model": "big", "dataset": "mnist", "input": {"scale": 1 / 255, "features": 60 * 60 * 4},
            "dtype": "float32", "seed": 0, "picozoo_version": "0.1.0"}
    modeldir.save(tmp_path / "big", spec, params, meta, metrics={"model": "big"})
    # float input (57,600 bytes) and the conv's output (230,400) are live together
    with pytest.raises(fwbuild.BuildError, match=r"activations do not fit in SRAM: the arena needs 288000 bytes "
                                                 r"\(largest buffer: layer 1 conv2d output, 230400 bytes\)"):
        fwbuild.build(tmp_path / "big", tmp_path / "out", images=0, quiet=True)
    assert not (tmp_path / "out").exists()


def test_layer_table_dimension_limit(tmp_path):
    spec = Sequential([Input(64, 64, 1), Conv2D(1, 32, 3, 1, "same"), GlobalAvgPool2D(), Dense(32, 2)])
    params = [{}, {"w": np.zeros((3, 3, 1, 32), np.float32), "b": np.zeros(32, np.float32)}, {},
              {"w": np.zeros((32, 2), np.float32), "b": np.zeros(2, np.float32)}]
    meta = {"model": "wide", "dataset": "mnist", "input": {"scale": 1 / 255, "features": 64 * 64},
            "dtype": "float32", "seed": 0, "picozoo_version": "0.1.0"}
    modeldir.save(tmp_path / "wide", spec, params, meta, metrics={"model": "wide"})
    with pytest.raises(fwbuild.BuildError, match=r"layer 1 \(conv2d\) has 131072 elements; the layer table holds "
                                                 r"at most 65535"):
        fwbuild.build(tmp_path / "wide", tmp_path / "out", images=0, quiet=True)


# -- the planner alone -------------------------------------------------------------------------------------------------
def test_planner_reuses_memory_by_lifetime():
    steps = [planner.Step("a", 100), planner.Step("b", 100), planner.Step("c", 100, scratch_bytes=8),
             planner.Step("d", 60, in_place=True), planner.Step("e", 10)]
    plan = planner.plan(steps, input_bytes=14)
    # pz_input (16 aligned) at 0 beside a; b beside a; c over the input's and a's bytes; d over c; e -> pz_output
    assert plan.io[0] == (0, 16, None)
    assert plan.io[1] == (16, 116, None)
    assert plan.io[2] == (116, 0, 100)
    assert plan.io[3] == (0, 0, None) and plan.io[4] == (0, None, None)
    assert plan.arena_bytes == 216 and plan.peak_live_bytes() == 208


def test_planner_never_overlaps_live_buffers():
    rng = np.random.default_rng(0)
    for _ in range(50):
        steps = [planner.Step(f"s{i}", int(rng.integers(1, 500)), int(rng.integers(0, 3)) * 16,
                              bool(rng.integers(0, 2))) for i in range(int(rng.integers(1, 12)))]
        plan = planner.plan(steps, int(rng.integers(1, 300)))
        assert plan.buffers[0].name == "pz_input" and plan.buffers[0].offset == 0
        for a in plan.buffers:
            assert a.offset % planner.ALIGN == 0 and a.offset + a.size <= plan.arena_bytes
            for b in plan.buffers:
                if a is not b and a.first <= b.last and b.first <= a.last:
                    assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
        assert plan.arena_bytes >= plan.peak_live_bytes()


def test_planner_errors():
    with pytest.raises(planner.PlanError, match="at least one layer"):
        planner.plan([], 4)
    with pytest.raises(planner.PlanError, match="step 0 \\(x\\)"):
        planner.plan([planner.Step("x", 0)], 4)
    with pytest.raises(planner.PlanError, match="input of 0 bytes"):
        planner.plan([planner.Step("x", 4)], 0)
    plan = planner.plan([planner.Step("x", 1000), planner.Step("y", 4)], 4)  # input beside x: 1004
    planner.check_fits(plan, 100, 1104, "m")
    with pytest.raises(planner.PlanError, match="arena needs 1004 bytes .* over the RP2040's 1103 bytes by 1"):
        planner.check_fits(plan, 100, 1103, "m")
