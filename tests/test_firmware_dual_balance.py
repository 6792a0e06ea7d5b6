"""Shared two-core splits (docs/FIRMWARE.md "Two cores", kernels/conv_layers.c q8_shared_part, runtime/multicore.c
pz_share_take): units of a layer taken by either core from a counter under an SIO spinlock, and a staged layer whose
copy from flash (core 0) overlaps core 1's work on the channels that have arrived; and the depthwise channel split
(each core's input channels gathered first).

In rp2040_sim, on a small int8 CNN whose 3x3-pixel conv is staged and split by channels: two cores give the same
bytes as one core and as compress.reference, the same cycles on every run, core 1 runs the kernel before core 0 has
copied the last weight, both cores take shares, and the layer is faster than copying first. The same CNN with every
split shared (rows, pixels, channels) and its depthwise layer staged in passes, on images with uneven zeros (one half
black: zero skipping makes the halves' costs differ), and that depthwise staging on one core: bit-exact."""

from __future__ import annotations

import numpy as np
import pytest

from compress import reference
from conftest import require_tool
from random_models import save_uniform_cnn
from firmware import build as fwbuild
from firmware import convgen
from rp2040_sim import eval as sim_eval
from zoo import modeldir
from zoo.nn import Conv2D, Dense, DepthwiseConv2D, GlobalAvgPool2D, Input, ReLU, ReLU6, Sequential

DEPTHWISE = 7   # the 3x3 depthwise conv at 3x3 pixels: split by channels, its input channels gathered per core
STAGED = 5   # the 3x3 conv 32 -> 64 channels at 3x3 pixels: 8 groups of 8, split by channels


def small_cnn() -> Sequential:
    """Layer 5 has 3 output rows (a 1 + 2 row split balances badly) and 8 groups of 8 channels: it splits by
    channels, and staged (18.7 kB of weights, copied in about a fifth of the layer's one-core cycles) it is shared,
    its copy overlapping core 1's work."""
    return Sequential([Input(28, 28, 1),
                       Conv2D(1, 8, 3, 2, "valid"), ReLU(),       # 1: 13x13x8, rows
                       Conv2D(8, 32, 3, 5, "same"), ReLU6(),      # 3: 3x3x32, by channels
                       Conv2D(32, 64, 3, 1, "same"), ReLU(),      # 5: 3x3x64, by channels, staged
                       DepthwiseConv2D(64, 3, 1, "same"), ReLU(), # 7: 3x3x64, by channels (input gathered)
                       Conv2D(64, 16, 1, 1, "same"), ReLU(),      # 9: pointwise 3x3x16
                       GlobalAvgPool2D(), Dense(16, 10)])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, mnist):
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy")
    root = tmp_path_factory.mktemp("balance")
    return save_uniform_cnn(root / "int8", small_cnn(), "balance_cnn", mnist.x_test[:64], seed=5, scale=0.5)


def build(model_dir, out, cores, shared=("staged",), staged=None):
    """Weights in flash, layer STAGED staged (as a build under a RAM budget would place it) and the layers of
    `staged` ({spec index: placement}); `shared`: convgen.SHARED_SPLITS for this build."""
    mp = pytest.MonkeyPatch()
    choose = fwbuild.choose_layer_placement

    def placement(*args, **kwargs):
        where, rows = choose(*args, **kwargs)
        return {**where, STAGED: "staged", **(staged or {})}, rows

    mp.setattr(fwbuild, "choose_layer_placement", placement)
    mp.setattr(convgen, "SHARED_SPLITS", shared)
    try:
        return fwbuild.build(model_dir, out, images=1, quiet=True, cores=str(cores), weights_in="flash")
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def builds(model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("balance_fw")
    dw_passes = {DEPTHWISE: "staged:32"}   # the depthwise weights staged in two passes of 32 channels
    return {name: build(model_dir, root / name, cores, shared, staged)
            for name, cores, shared, staged in (("one", 1, ("staged",), None), ("shared", 2, ("staged",), None),
                                                ("static", 2, (), None),
                                                ("all", 2, ("staged", "channels", "rows"), dw_passes),
                                                ("one-dw-passes", 1, ("staged",), dw_passes))}


def images(mnist):
    """Three test digits, a random image, and two with one half black (uneven zeros after the first ReLU)."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    noise[1, :14] = 0
    noise[2, :, 10:] = 0
    return np.concatenate([mnist.x_test[:3], noise.reshape(3, 784)])


def run_all(result, rows):
    harness = sim_eval.Harness(result.out_dir, sim_eval.read_build(result.out_dir))
    return harness, [harness.infer_one(r) for r in rows]


def test_the_staged_channel_split_is_shared(model_dir, monkeypatch):
    """Layer 5 splits by channels; staged, its Run is shared (smallest share one group), not with SHARED_SPLITS
    empty, and not when it is not staged (a channel split of weights in place stays static by default)."""
    model = modeldir.load(model_dir)
    ops = convgen.network_ops(model, "m")[0]
    split = convgen.split_rows(ops, 2)
    assert split[STAGED] == split[3] == split[DEPTHWISE] == 0 and split[1] > 0   # channels, except layer 1
    op = next(op for op in ops if op.index == STAGED)
    run = convgen.run_of(op, split, {STAGED: 64})
    assert run.shared == 1 and run.by_channels and run.part_bytes == 3 * 3 * 64
    assert convgen.run_of(op, split, {}).shared == 0
    monkeypatch.setattr(convgen, "SHARED_SPLITS", ())
    assert convgen.run_of(op, split, {STAGED: 64}).shared == 0
    monkeypatch.setattr(convgen, "SHARED_SPLITS", ("rows",))
    rows = next(o for o in ops if o.index == 1)
    assert convgen.run_of(rows, split, {}).shared == max(1, 13 // convgen.SHARE_GRAIN)


def test_two_cores_equal_one_core_and_the_golden_model(model_dir, builds, mnist):
    """Every build (one core, shared staged split, static split, every split shared with the depthwise layer staged
    in passes, that on one core) gives compress.reference's bytes on every image, and a second run of the shared
    build the same cycles per image."""
    model = modeldir.load(model_dir)
    rows = images(mnist)
    want = reference.forward(model, rows)
    assert len(set(map(bytes, want))) > 1
    cycles = {}
    for name, result in builds.items():
        _, results = run_all(result, rows)
        np.testing.assert_array_equal(np.array([out for _, out, *_ in results]), want.astype(np.float64))
        cycles[name] = [r[2] for r in results]
    assert all(b < a for a, b in zip(cycles["one"], cycles["shared"]))
    assert run_all(builds["shared"], rows)[1] and [r[2] for r in run_all(builds["shared"], rows)[1]] == \
        cycles["shared"]
    # the shared staged layer does not wait for the whole copy: fewer cycles than copy first, then halves
    assert all(s < t for s, t in zip(cycles["shared"], cycles["static"]))


def test_core1_computes_while_core0_copies(builds, mnist):
    """In the order the emulator ran them: core 1 enters the conv kernel for the staged layer before core 0 has
    stored the last word of its copy, both cores run the kernel on the layer's channels, and both take shares from
    pz_share."""
    from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_WRITE
    from unicorn.arm_const import UC_ARM_REG_PC

    from firmware_support import elf_symbols

    result = builds["shared"]
    harness = sim_eval.Harness(result.out_dir, sim_eval.read_build(result.out_dir))
    sym = elf_symbols(result.out_dir / "firmware.elf")
    plan = convgen.plan(modeldir.load(sim_eval.read_build(result.out_dir)["model_dir"]), "m", 2, {STAGED: 64})
    ops = convgen.network_ops(modeldir.load(sim_eval.read_build(result.out_dir)["model_dir"]), "m")[0]
    k = next(k for k, op in enumerate(ops) if op.index == STAGED)
    stage = sym["pz_arena"][0] + plan.stage[k]
    w_size = sym[f"pz_l{STAGED}_w"][1]
    kernel = sym["pz_conv2d_q8_m0"][0] & ~1
    share = sym["pz_share"][0]
    events = []
    copy_lo, copy_size = sym["stage_copy"]
    copy_lo &= ~1

    def copied(uc, access, addr, n, value, log):   # a store of stage_copy (not of an earlier layer's output)
        if copy_lo <= uc.reg_read(UC_ARM_REG_PC) < copy_lo + copy_size:
            log.append(("copy", addr))

    harness.sim.uc.hook_add(UC_HOOK_MEM_WRITE, copied, events, stage, stage + w_size - 1)
    for core, uc in ((0, harness.sim.uc), (1, harness.sim.core1.uc)):
        uc.hook_add(UC_HOOK_CODE, lambda uc, addr, size, c: events.append(("kernel", c)), core, kernel, kernel)
        uc.hook_add(UC_HOOK_MEM_WRITE, lambda uc, acc, addr, n, v, c: events.append(("take", c)), core, share,
                    share + 3)
    harness.infer_one(mnist.x_test[0])
    copies = [i for i, e in enumerate(events) if e[0] == "copy"]
    assert sum(1 for e in events if e[0] == "copy") * 4 >= w_size   # the whole pass copied, word by word
    during = events[copies[0]:copies[-1]]
    assert ("kernel", 1) in during, "core 1 waited for the whole copy"
    after = events[copies[-1]:]
    assert ("kernel", 0) in after and ("take", 0) in after and ("take", 1) in during
