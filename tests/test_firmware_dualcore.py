"""Two-core firmware (firmware.build --cores 2): core 1 launched by the runtime through the bootrom's FIFO handshake,
int8 dense, sparse and shared layers split between the cores. The outputs equal one core's and compress's golden
model bit for bit, cycle counts repeat across runs and --jobs, and --cores is validated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress import cli, reference
from conftest import require_tool
from firmware import build as fwbuild
from rp2040_sim import boot, core1
from rp2040_sim import eval as sim_eval
from rp2040_sim.core import Rp2040, SimConfig
from zoo import modeldir
from zoo.models import get_model
from zoo.train import train_and_evaluate

FAST = ["--epochs", "1", "--train-limit", "2048", "--calib-images", "500", "--quiet"]
IMAGES = 12


@pytest.fixture(scope="module")
def variants(tmp_path_factory, mnist):
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-readelf")
    src = tmp_path_factory.mktemp("zoo") / "mnist_50"
    train_and_evaluate(get_model("mnist_50").with_overrides(epochs=1), src, dataset=mnist, train_limit=4000,
                       progress=False)
    args = {"int8": ["--quantize", "int8"],                       # dense 784x50 (split), 50x10 (core 0)
            "prune80-int8": ["--prune", "0.8", "--quantize", "int8"],   # sparse
            "prune80-share7-int8": ["--prune", "0.8", "--quantize", "int8", "--share", "7", "--share-epochs", "1"]}
    for name, a in args.items():
        assert cli.main([str(src), *a, *FAST, "--out", str(src / name)]) == 0
    return {name: src / name for name in args}


@pytest.fixture(scope="module")
def builds(variants, tmp_path_factory):
    root = tmp_path_factory.mktemp("fw")
    return {(name, cores): fwbuild.build(d, root / f"{name}-{cores}", images=2, quiet=True, cores=str(cores))
            for name, d in variants.items() for cores in (1, 2)}


@pytest.mark.parametrize("name", ["int8", "prune80-int8", "prune80-share7-int8"])
def test_two_cores_equal_one_core_and_the_golden_model(builds, variants, mnist, name):
    one = sim_eval.evaluate(builds[name, 1].out_dir, images=IMAGES, jobs=1, progress=False)
    two = sim_eval.evaluate(builds[name, 2].out_dir, images=IMAGES, jobs=1, progress=False)
    assert json.loads((builds[name, 2].out_dir / "build.json").read_text())["cores"] == 2
    assert json.loads((builds[name, 1].out_dir / "build.json").read_text())["cores"] == 1
    for report in (one, two):
        assert report["agreement_with_host"] == 1.0 and report["max_abs_output_diff"] == 0.0
    model = modeldir.load(variants[name])
    want = reference.predict(model, reference.forward(model, mnist.x_test[:IMAGES]))
    assert two["accuracy"] == pytest.approx(float(np.mean(want == mnist.y_test[:IMAGES])))
    # the first layer (784x50) is split: two cores take fewer cycles (the slower core, from pz_infer's start)
    assert two["cycles_per_inference"]["mean"] < one["cycles_per_inference"]["mean"]


def test_outputs_byte_for_byte_equal_one_core(builds, mnist):
    h1 = sim_eval.Harness(builds["prune80-share7-int8", 1].out_dir,
                          sim_eval.read_build(builds["prune80-share7-int8", 1].out_dir))
    h2 = sim_eval.Harness(builds["prune80-share7-int8", 2].out_dir,
                          sim_eval.read_build(builds["prune80-share7-int8", 2].out_dir))
    assert h1.core1 is None and h2.core1 is not None
    for raw in mnist.x_test[:4]:
        r1, r2 = h1.infer_one(raw), h2.infer_one(raw)
        assert r1[0] == r2[0] and np.array_equal(r1[1], r2[1])


def test_two_core_cycles_repeat_across_runs_order_and_jobs(builds, mnist):
    out = builds["int8", 2].out_dir
    a = sim_eval.evaluate(out, images=8, jobs=1, progress=False)
    b = sim_eval.evaluate(out, images=8, jobs=2, progress=False)
    assert a["cycles_per_inference"] == b["cycles_per_inference"]
    harness = sim_eval.Harness(out, sim_eval.read_build(out))
    raws = mnist.x_test[:3]
    first = [harness.infer_one(r)[2] for r in raws]
    again = [harness.infer_one(r)[2] for r in reversed(raws)][::-1]
    assert first == again and min(first) > 0


def test_runtime_launches_core1_with_the_datasheet_sequence(builds):
    """The boot run: core 1 leaves the bootrom with the runtime's vector table, its own stack top (below core 0's
    stack) and the work loop as entry, and is still waiting (WFE) when core 0 halts."""
    out = builds["int8", 2].out_dir
    image = boot.load_image(out / "firmware.uf2", out / "firmware.elf")
    sim = Rp2040(SimConfig())
    stop = sim.run(boot.prepare(sim, image))
    assert stop.ok
    vtor, sp, entry = sim.core1_launch
    elf = image.elf
    assert vtor == elf.addr("pz_vectors") == 0x10000100
    assert sp == elf.addr("__stack1_top") <= elf.addr("__stack_limit")
    assert sp - elf.addr("__stack1_limit") == fwbuild.DEFAULT_STACK
    assert entry & 1 and entry & ~1 == elf.addr("core1_main")
    assert sim.core1.runnable
    # one core: core 1 never leaves the bootrom
    out1 = builds["int8", 1].out_dir
    image1 = boot.load_image(out1 / "firmware.uf2", out1 / "firmware.elf")
    sim1 = Rp2040(SimConfig())
    assert sim1.run(boot.prepare(sim1, image1)).ok
    assert sim1.core1 is None
    assert image1.elf.addr("__stack1_top") == image1.elf.addr("__stack1_limit")   # no core 1 stack reserved


def test_launch_restarts_after_a_wrong_echo(builds):
    """Datasheet 2.8.2: an echo that differs from the word sent restarts the sequence from its first 0. The bootrom
    model's echo of the vector table is corrupted once; the runtime starts over and core 1 still launches."""
    out = builds["int8", 2].out_dir
    image = boot.load_image(out / "firmware.uf2", out / "firmware.elf")
    sim = Rp2040(SimConfig(core1_model=True))      # the Python model of the ROM, whose echo can be corrupted
    start = boot.prepare(sim, image)
    rom, corrupted = sim.core1_bootrom, []
    send = rom._send

    def corrupt_vtor_echo_once(word):
        if rom.state == core1.STATE_VTOR and not corrupted:
            corrupted.append(word)
            word ^= 0x100
        send(word)

    rom._send = corrupt_vtor_echo_once
    received = []
    receive = rom.receive
    rom.sio.shared.readers[1] = lambda: (received.extend(rom.sio.shared.fifo[0]), receive())
    assert sim.run(start).ok
    assert corrupted == [0x10000100]
    assert sim.core1_launch == (0x10000100, image.elf.addr("__stack1_top"), image.elf.addr("core1_main") | 1)
    # 0, 0, 1, VTOR (wrong echo), then from the start: 0, 0, 1, VTOR, SP, entry
    assert received[:4] == [0, 0, 1, 0x10000100] and received[4:7] == [0, 0, 1] and len(received) == 10


@pytest.mark.parametrize("cores", ["3", "0", "two", ""])
def test_cores_validation(variants, tmp_path, cores):
    with pytest.raises(fwbuild.BuildError, match=r"--cores .*use 1, 2 or auto"):
        fwbuild.build(variants["int8"], tmp_path / "b", images=1, quiet=True, cores=cores)
    assert not (tmp_path / "b").exists()
    assert fwbuild.main([str(variants["int8"]), "--out", str(tmp_path / "c"), "--cores", cores]) == 1


def test_auto_cores_rule(variants, tmp_path):
    """auto: 2 when an int8 layer has >= SPLIT_MIN_MACS MACs (784x50 has), 1 for a float model."""
    assert fwbuild.choose_cores(modeldir.load(variants["int8"]), "auto") == 2
    assert fwbuild.choose_cores(modeldir.load(variants["int8"].parent), "auto") == 1
    assert fwbuild.split_layers(modeldir.load(variants["int8"])) == [0]
