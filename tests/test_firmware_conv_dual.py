"""Conv, depthwise and pool layers on both cores (firmware.build --cores 2, docs/FIRMWARE.md "Two cores").

On the host: the row split itself (pz_conv_rows in firmware/kernels/conv_layers.c), any split row, both parts run
by the unchanged kernels into one output, against the NumPy golden model of the whole layer (hypothesis). In
rp2040_sim: a small int8 CNN with odd output heights, strides 1 and 2, same and valid padding, depthwise convs and
every pool, built for one and two cores: the same bytes as one core and as compress.reference; inference writes
only inside the planned arena (its top exactly arena_bytes), pz_output and the two cores' stacks."""

from __future__ import annotations

import ctypes
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_firmware_conv import KERNELS, Q8Conv, conv_case, geometry, host_conv_lib, pool_golden, ptr, q8_golden, shape

from compress import reference
from conftest import require_tool
from random_models import save_uniform_cnn
from firmware import build as fwbuild
from firmware import convgen
from rp2040_sim import eval as sim_eval
from rp2040_sim.kernel_harness import conv_packed
from zoo import modeldir
from zoo.nn import AvgPool2D, Conv2D, DepthwiseConv2D, Dense, GlobalAvgPool2D, Input, MaxPool2D, ReLU, ReLU6, \
    Sequential

RUNTIME = KERNELS.parent / "runtime"


# -- the row split on the host -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lib():
    lib = host_conv_lib("pz_conv_rows", extra=["conv_layers.c"], include_dirs=[RUNTIME])
    lib.pz_conv_rows.restype = ctypes.c_uint32
    return lib


def split_parts(lib, s, mid):
    """[(first input row, narrowed shape, first output row)] of core 0's and core 1's parts."""
    parts = []
    for r0, r1 in ((0, mid), (mid, s.out_h)):
        sub = type(s).from_buffer_copy(s)
        first = lib.pz_conv_rows(ctypes.byref(sub), r0, r1)
        parts.append((first, sub, r0))
    return parts


@settings(max_examples=80, deadline=None)
@given(g=geometry(max_hw=11), c=st.integers(1, 9), k=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       depthwise=st.booleans(), data=st.data())
def test_rows_split_conv_equals_the_whole_layer(lib, g, c, k, seed, depthwise, data):
    h, w, kernel, stride, padding = g
    t = conv_case(np.random.default_rng(seed), h, w, c, k, kernel, stride, padding, depthwise)
    s = t["shape"]
    if s.out_h < 2:
        return
    mid = data.draw(st.integers(1, s.out_h - 1), label="mid")
    packed, fb = conv_packed(t)
    w_buf = np.frombuffer(packed.tobytes() + b"\0" * 4, np.uint8).copy()
    n_scratch = lib.pz_conv_q8_scratch_bytes(ctypes.byref(s), int(depthwise)) // 4 + 1
    x = np.ascontiguousarray(t["xu"])
    n = s.out_h * s.out_w * s.out_c
    y = np.full(n + 8, 0xA5, np.uint8)
    op = "dwconv2d" if depthwise else "conv2d"
    keep = []
    for first, sub, r0 in split_parts(lib, s, mid):
        assert 0 <= sub.pad_top <= s.pad_top and first + sub.in_h <= s.in_h
        scratch = np.zeros(n_scratch, np.uint32)   # each core its own
        keep.append(scratch)
        layer = Q8Conv(sub, w_buf.ctypes.data, fb.ctypes.data, t["mult"].ctypes.data, t["shift"].ctypes.data,
                       t["zp_out"], t["act_min"], t["act_max"], 0, (t["zp_in"] + 128) & 0xFF, scratch.ctypes.data)
        for kind in ("m0", "ref"):   # the ref kernel too: the split is the layer's geometry, not the kernel's
            getattr(lib, f"pz_{op}_q8_{kind}")(ctypes.byref(layer), ctypes.c_void_p(x.ctypes.data + first * w * c),
                                               ctypes.c_void_p(y.ctypes.data + r0 * s.out_w * s.out_c))
    assert np.all(y[n:] == 0xA5), "a part wrote past the layer's output"
    np.testing.assert_array_equal(y[:n].view(np.int8).reshape(s.out_h, s.out_w, s.out_c), q8_golden(t))


@settings(max_examples=60, deadline=None)
@given(g=geometry(max_hw=9), c=st.integers(1, 9), k=st.integers(9, 30), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_channel_groups_run_alone_equal_the_whole_layer(lib, g, c, k, seed, data):
    """The channel split and the staging passes (conv_layers.c q8_part): a sub-layer of output channels [a, b) (a a
    multiple of 8) reads the conv8 groups from a / 8 on, the multipliers and shifts from a on, and writes an
    (out_h, out_w, b - a) block; the blocks, scattered at pixel stride out_c, are the whole layer's bytes."""
    h, w, kernel, stride, padding = g
    t = conv_case(np.random.default_rng(seed), h, w, c, k, kernel, stride, padding, False)
    s = t["shape"]
    groups = (k + 7) // 8
    cut = 8 * data.draw(st.integers(1, groups - 1), label="cut group")
    packed, fb = conv_packed(t)
    group_bytes = len(packed) // groups
    w_buf = np.frombuffer(packed.tobytes() + b"\0" * 4, np.uint8).copy()
    scratch = np.zeros(lib.pz_conv_q8_scratch_bytes(ctypes.byref(s), 0) // 4 + 1, np.uint32)
    x = np.ascontiguousarray(t["xu"])
    got = np.empty((s.out_h, s.out_w, k), np.uint8)
    for a, b in ((0, cut), (cut, k)):
        sub = type(s).from_buffer_copy(s)
        sub.out_c = b - a
        block = np.full(s.out_h * s.out_w * (b - a) + 8, 0xA5, np.uint8)
        layer = Q8Conv(sub, w_buf.ctypes.data + a // 8 * group_bytes, fb.ctypes.data, t["mult"].ctypes.data + 4 * a,
                       t["shift"].ctypes.data + a, t["zp_out"], t["act_min"], t["act_max"], 0,
                       (t["zp_in"] + 128) & 0xFF, scratch.ctypes.data)
        lib.pz_conv2d_q8_m0(ctypes.byref(layer), ptr(x), ptr(block))
        assert np.all(block[-8:] == 0xA5)
        got[:, :, a:b] = block[:-8].reshape(s.out_h, s.out_w, b - a)
    np.testing.assert_array_equal(got.view(np.int8), q8_golden(t))


@settings(max_examples=60, deadline=None)
@given(g=geometry(max_hw=11, max_k=4), c=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(["max", "avg"]), data=st.data())
def test_rows_split_pools_equal_the_whole_layer(lib, g, c, seed, kind, data):
    h, w, kernel, stride, padding = g
    s = shape(h, w, c, kernel, stride, padding, c)
    if s.out_h < 2:
        return
    mid = data.draw(st.integers(1, s.out_h - 1), label="mid")
    xu = np.random.default_rng(seed).integers(0, 256, (h, w, c)).astype(np.uint8)
    n = s.out_h * s.out_w * c
    fn = "pz_maxpool2d_q8_m0" if kind == "max" else "pz_avgpool2d_q8"
    y = np.full(n + 8, 0xA5, np.uint8)
    for first, sub, r0 in split_parts(lib, s, mid):
        getattr(lib, fn)(ctypes.byref(sub), ctypes.c_void_p(xu.ctypes.data + first * w * c),
                         ctypes.c_void_p(y.ctypes.data + r0 * s.out_w * c), 0)
    assert np.all(y[n:] == 0xA5)
    np.testing.assert_array_equal(y[:n].view(np.int8).reshape(s.out_h, s.out_w, c), pool_golden(xu, s, kind))


def test_split_row_balances_the_estimated_work():
    """Interior rows cost the same: the split is the middle row. Border rows (padding) cost more: a 'same' 3x3
    conv's split moves towards the half without padded rows only if that balances better, never past it."""
    even = convgen.Rows("conv2d", (8, 8, 16), (8, 8, 16), (1, 1), (1, 1), (0, 0))
    assert even.split_row() == 4 and len(set(even.row_costs())) == 1
    odd = convgen.Rows("conv2d", (9, 9, 16), (9, 9, 16), (1, 1), (1, 1), (0, 0))
    assert odd.split_row() in (4, 5)
    # stride 2, 'same', 96 rows: pad_top 0, the last row reads the bottom padding: it costs more
    first = convgen.Rows("conv2d", (96, 96, 1), (48, 48, 8), (3, 3), (2, 2), (0, 0))
    costs = first.row_costs()
    assert costs[-1] > costs[0] == costs[1]
    mid = first.split_row()
    assert max(sum(costs[:mid]), sum(costs[mid:])) == min(max(sum(costs[:m]), sum(costs[m:])) for m in range(1, 48))


# -- a small CNN in the emulator --------------------------------------------------------------------------------------
def dual_cnn() -> Sequential:
    """Every split case on a 28x28 input (work = MACs or pooled cells; split from SPLIT_MIN_MACS = 2,000)."""
    return Sequential([Input(28, 28, 1),
                       Conv2D(1, 8, 3, 2, "valid"), ReLU(),      # 1: 13x13x8, odd, stride 2, valid, gathered
                       MaxPool2D(3, 1, "same"),                  # 3: 13x13x8, padded pool (not in place)
                       DepthwiseConv2D(8, 3, 1, "same"), ReLU6(),  # 4: depthwise, borders
                       DepthwiseConv2D(8, 3, 2, "same"),         # 6: 7x7x8, stride 2, pad_top 1
                       Conv2D(8, 16, 1, 1, "same"), ReLU(),      # 7: pointwise, split by channels
                       AvgPool2D(2, 1),                          # 9: 6x6x16, in place on one core only
                       Conv2D(16, 12, 3, 1, "valid"), ReLU6(),   # 10: 4x4x12
                       Conv2D(12, 8, 3, 2, "same"),              # 12: 2x2x8, one row per core
                       GlobalAvgPool2D(), Dense(8, 10)])         # 13, 14: on core 0


SPLIT = [1, 3, 4, 6, 7, 9, 10, 12]


@pytest.fixture(scope="module")
def builds(tmp_path_factory, mnist):
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy")
    root = tmp_path_factory.mktemp("dual")
    model_dir = save_uniform_cnn(root / "int8", dual_cnn(), "dual_cnn", mnist.x_test[:64], seed=0, scale=0.6)
    return model_dir, {cores: fwbuild.build(model_dir, root / f"fw{cores}", images=1, quiet=True, cores=str(cores))
                       for cores in (1, 2)}


def test_split_layers_and_auto_cores(builds):
    model_dir, built = builds
    model = modeldir.load(model_dir)
    assert fwbuild.split_layers(model) == SPLIT
    assert fwbuild.choose_cores(model, "auto") == 2
    assert json.loads((built[2].out_dir / "build.json").read_text())["cores"] == 2
    # core 1's first output row, or 0: the pointwise conv (7 rows, 2 groups of 8 channels) splits its channels
    ops = convgen.network_ops(model, "m")[0]
    rows = convgen.split_rows(ops, 2)
    assert sorted(rows) == SPLIT and convgen.split_rows(ops, 1) == {}
    assert [i for i in SPLIT if rows[i] == 0] == [7]
    assert all(0 < rows[op.index] < op.rows.out_shape[0] for op in ops if op.index in rows and op.index != 7)


def test_two_cores_equal_one_core_and_the_golden_model(builds, mnist):
    model_dir, built = builds
    model = modeldir.load(model_dir)
    rows = np.concatenate([mnist.x_test[:3], np.random.default_rng(1).integers(0, 256, (2, 784), dtype=np.uint8)])
    want = reference.forward(model, rows)
    results = {}
    for cores, result in built.items():
        harness = sim_eval.Harness(result.out_dir, sim_eval.read_build(result.out_dir))
        assert (harness.core1 is not None) == (cores == 2)
        results[cores] = [harness.infer_one(r) for r in rows]
        got = np.array([out for _, out, *_ in results[cores]])
        np.testing.assert_array_equal(got, want.astype(np.float64))
        assert [c for c, *_ in results[cores]] == reference.predict(model, want).tolist()
    assert len(set(map(bytes, want))) > 1   # different images give different outputs: the test can fail
    # the slower core's cycles from pz_infer's start: fewer on two cores, and the same on every run
    one, two = ([r[2] for r in results[c]] for c in (1, 2))
    assert all(b < a for a, b in zip(one, two))
    harness = sim_eval.Harness(built[2].out_dir, sim_eval.read_build(built[2].out_dir))
    assert [harness.infer_one(r)[2] for r in rows] == two


def test_inference_touches_the_planned_arena_and_both_stacks(builds, mnist):
    """During pz_infer the two cores write only inside pz_arena (its highest byte written is exactly arena_bytes, the
    planner's figure with two scratch buffers per split layer), pz_output, core 0's stack, core 1's stack and the
    shared split's counter pz_share (both cores take shares from it); core 1 stays inside its reserve. Peak RAM =
    static RAM + both cores' measured stack depths."""
    from unicorn import UC_HOOK_MEM_WRITE

    from firmware_support import elf_symbols

    _, built = builds
    result = built[2]
    size = json.loads((result.out_dir / "size.json").read_text())
    harness = sim_eval.Harness(result.out_dir, sim_eval.read_build(result.out_dir))
    sym = elf_symbols(result.out_dir / "firmware.elf")
    writes = {0: [], 1: []}
    for core, uc in ((0, harness.sim.uc), (1, harness.sim.core1.uc)):
        uc.hook_add(UC_HOOK_MEM_WRITE, lambda uc, access, addr, n, value, log: log.append((addr, n)), writes[core],
                    0x20000000, 0x20042000)
    harness.infer_one(mnist.x_test[0])
    arena, arena_size = sym["pz_arena"]
    out, out_size = sym["pz_output"]
    stack0 = (sym["__stack_limit"][0], sym["__stack_top"][0])
    stack1 = (sym["__stack1_limit"][0], sym["__stack1_top"][0])
    share, share_size = sym["pz_share"]
    assert writes[1], "core 1 did no work"
    everything = writes[0] + writes[1]
    top = max(a + n for a, n in everything if arena <= a < arena + arena_size)
    assert top - arena == size["arena_bytes"]
    for core, stack in ((0, stack0), (1, stack1)):
        stray = [(hex(a), n) for a, n in writes[core]
                 if not (arena <= a < arena + arena_size or out <= a < out + out_size or stack[0] <= a < stack[1]
                         or share <= a < share + share_size)]
        assert not stray, f"core {core} wrote outside the arena, pz_output, pz_share and its stack"
    depth1 = stack1[1] - min(a for a, _ in writes[1] if stack1[0] <= a < stack1[1])
    assert 0 < depth1 <= stack1[1] - stack1[0] == size["stack_reserved_bytes"]


# -- weight staging and --ram-budget ----------------------------------------------------------------------------------
def all_flash_need(model, cores):
    """SRAM the build needs for `model` with every weight in flash (the planner's arena + pz_output + runtime data +
    the stack reserves), as firmware/build.py counts it."""
    ops, int8 = convgen.network_ops(model, "m")
    plan = convgen.plan(model, "m", cores)
    return plan.arena_bytes + ops[-1].out_elems + fwbuild.RUNTIME_STATIC_RAM + cores * fwbuild.DEFAULT_STACK


@pytest.fixture(scope="module")
def staged_builds(builds, tmp_path_factory):
    """The CNN under a RAM budget with no room for any weight copied at boot: its conv weights (all small, so the
    thresholds are lowered to 0) are staged where the arena has room beside the layer's activations."""
    model_dir, _ = builds
    model = modeldir.load(model_dir)
    root = tmp_path_factory.mktemp("staged")
    mp = pytest.MonkeyPatch()
    mp.setattr(fwbuild, "XIP_CACHE_SHARE", 0)
    mp.setattr(fwbuild, "STAGE_MIN_BYTES", 0)
    try:
        out = {}
        for cores in (1, 2):
            budget = all_flash_need(model, cores) + 40   # less than any layer's weights
            out[cores] = (budget, fwbuild.build(model_dir, root / f"fw{cores}", images=1, quiet=True,
                                                cores=str(cores), ram_budget=budget))
        return out
    finally:
        mp.undo()


def test_staged_weights_are_bit_exact_and_inside_the_budget(staged_builds, builds, mnist):
    model_dir, _ = builds
    model = modeldir.load(model_dir)
    rows = np.concatenate([mnist.x_test[:2], np.random.default_rng(2).integers(0, 256, (1, 784), dtype=np.uint8)])
    want = reference.forward(model, rows)
    for cores, (budget, result) in staged_builds.items():
        size = result.size
        where = {r["index"]: r["placement"] for r in size["weights_placement_layers"]}
        assert "staged" in where.values() and "sram-copy" not in where.values()
        assert all(r["reason"] for r in size["weights_placement_layers"])
        assert size["ram_budget_bytes"] == budget
        assert size["ram_static_bytes"] + cores * size["stack_reserved_bytes"] <= budget
        harness = sim_eval.Harness(result.out_dir, sim_eval.read_build(result.out_dir))
        got = np.array([harness.infer_one(r)[1] for r in rows])
        np.testing.assert_array_equal(got, want.astype(np.float64))


def test_staging_buffers_are_inside_the_planned_arena(staged_builds, mnist):
    """The copies land in the arena: inference (two cores) still writes nothing above arena_bytes, and the planned
    staging buffer of a staged layer (whose weights stay in flash) is written over its whole size."""
    from unicorn import UC_HOOK_MEM_WRITE

    from firmware_support import elf_symbols

    budget, result = staged_builds[2]
    size = result.size
    sym = elf_symbols(result.out_dir / "firmware.elf")
    harness = sim_eval.Harness(result.out_dir, sim_eval.read_build(result.out_dir))
    writes = []
    for uc in (harness.sim.uc, harness.sim.core1.uc):
        uc.hook_add(UC_HOOK_MEM_WRITE, lambda uc, access, addr, n, value, log: log.append((addr, n)), writes,
                    0x20000000, 0x20042000)
    harness.infer_one(mnist.x_test[0])
    arena, arena_size = sym["pz_arena"]
    assert max(a + n for a, n in writes if arena <= a < arena + arena_size) - arena == size["arena_bytes"]
    passes = {r["index"]: r["channels_per_pass"] for r in size["weights_placement_layers"]
              if r["placement"] == "staged"}
    staged = sorted(passes)
    model = modeldir.load(sim_eval.read_build(result.out_dir)["model_dir"])
    ops = convgen.network_ops(model, "m")[0]
    plan = convgen.plan(model, "m", 2, passes)
    k = next(k for k, op in enumerate(ops) if op.index == staged[-1])
    w_addr, w_size = sym[f"pz_l{staged[-1]}_w"]
    assert w_addr < 0x20000000     # the weights themselves stay in flash
    stage = arena + plan.stage[k]
    assert sum(n for a, n in writes if stage <= a < stage + w_size) >= w_size   # the copy, into its buffer


def test_ram_budget_refusals(builds, tmp_path):
    model_dir, _ = builds
    model = modeldir.load(model_dir)
    need = all_flash_need(model, 1)
    with pytest.raises(fwbuild.BuildError, match=rf"does not fit --ram-budget {need - 1}: it needs {need} bytes of "
                                                 r"SRAM .* 1 over; raise --ram-budget"):
        fwbuild.build(model_dir, tmp_path / "a", images=1, quiet=True, cores="1", ram_budget=need - 1)
    with pytest.raises(fwbuild.BuildError, match=r"it needs \d+ bytes .*let the build choose with --weights-in auto"):
        fwbuild.build(model_dir, tmp_path / "b", images=1, quiet=True, cores="1", ram_budget=need,
                      weights_in="ram")
    for bad in (0, -5, fwbuild.RAM_BYTES + 1, "64K"):
        with pytest.raises(fwbuild.BuildError, match=r"--ram-budget .*1\.\.270336 bytes"):
            fwbuild.build(model_dir, tmp_path / "c", images=1, quiet=True, ram_budget=bad)
    assert not any((tmp_path / d).exists() for d in "abc")
    assert fwbuild.parse_bytes("64K") == 65536 == fwbuild.parse_bytes("65536")
    for bad in ("64M", "", "0", "-1", "k"):
        with pytest.raises(SystemExit) as e:
            fwbuild.main([str(model_dir), "--out", str(tmp_path / "d"), "--ram-budget", bad])
        assert e.value.code == 2
    assert fwbuild.main([str(model_dir), "--out", str(tmp_path / "e"), "--cores", "1",
                         "--ram-budget", str(need - 1)]) == 1
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()


def test_staging_in_passes_is_bit_exact(builds, mnist, tmp_path, monkeypatch):
    """Weights staged in passes of 8 output channels (what the build picks when a layer's weights do not fit at
    once): the pointwise conv (16 channels; on two cores split by channels) and the 3x3 conv 16->12 (two passes,
    the second of 4 channels; on two cores split by rows), one and two cores, equal the golden model."""
    model_dir, _ = builds
    model = modeldir.load(model_dir)
    choose = fwbuild.choose_layer_placement

    def in_passes(*args, **kwargs):
        placement, rows = choose(*args, **kwargs)
        return {**placement, 7: "staged:8", 10: "staged:8"}, rows

    monkeypatch.setattr(fwbuild, "choose_layer_placement", in_passes)
    rows = np.concatenate([mnist.x_test[:2], np.random.default_rng(3).integers(0, 256, (1, 784), dtype=np.uint8)])
    want = reference.forward(model, rows)
    for cores in (1, 2):
        result = fwbuild.build(model_dir, tmp_path / f"fw{cores}", images=1, quiet=True, cores=str(cores),
                               weights_in="flash")
        model_c = (tmp_path / f"fw{cores}" / "firmware.map").read_text()
        assert "pz_run_q8_conv2d_plan" in model_c
        harness = sim_eval.Harness(result.out_dir, sim_eval.read_build(result.out_dir))
        got = np.array([harness.infer_one(r)[1] for r in rows])
        np.testing.assert_array_equal(got, want.astype(np.float64))
    with pytest.raises(fwbuild.BuildError, match=r"layer 10 \(conv2d\) cannot be staged in passes of 4 channels"):
        monkeypatch.setattr(fwbuild, "choose_layer_placement",
                            lambda *a, **k: ({**choose(*a, **k)[0], 10: "staged:4"}, choose(*a, **k)[1]))
        fwbuild.build(model_dir, tmp_path / "bad", images=1, quiet=True, cores="1", weights_in="flash")


# -- float conv layers on two cores --------------------------------------------------------------------------------
def test_float_conv_layers_split_by_rows_equal_one_core(tmp_path, mnist):
    """The float CNN of the same spec: its conv and depthwise layers split by rows (pz_f32_conv_plan_t), pools and
    dense on core 0; two cores give one core's float bytes exactly (each output's sums in the same order) in fewer
    cycles, and `auto` picks two cores."""
    from firmware_support import elf_symbols

    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy")
    model_dir = save_uniform_cnn(tmp_path / "f32", dual_cnn(), "dual_cnn", None, seed=0, scale=0.6, int8=False)
    model = modeldir.load(model_dir)
    assert fwbuild.split_layers(model) == [1, 4, 6, 7, 10, 12] and fwbuild.choose_cores(model, "auto") == 2
    rows = np.concatenate([mnist.x_test[:2], np.random.default_rng(4).integers(0, 256, (1, 784), dtype=np.uint8)])
    got = {}
    for cores in (1, 2):
        result = fwbuild.build(model_dir, tmp_path / f"fw{cores}", images=1, quiet=True, cores=str(cores))
        assert ("pz_run_conv2d_f32_plan" in elf_symbols(result.out_dir / "firmware.elf")) == (cores == 2)
        harness = sim_eval.Harness(result.out_dir, sim_eval.read_build(result.out_dir))
        got[cores] = [harness.infer_one(r) for r in rows]
    for one, two in zip(got[1], got[2]):
        assert np.array_equal(one[1], two[1]) and one[0] == two[0]
        assert two[2] < one[2]
    assert len({tuple(r[1]) for r in got[1]}) > 1
