"""rp2040_sim's input artifacts as untrusted input (issue 10): images that are devices, FIFOs or too big, an ELF that
is not the image's program, corrupt ELFs (mutation fuzzing), build.json fields of the wrong type, the even reset
vector's explanation, and eval's record as firmware.flash reads it."""

import json
import os
import shutil
import struct
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware import flash
from firmware.uf2 import read_uf2, write_uf2
from rp2040_sim import __main__ as cli
from rp2040_sim import asm, boot, eval as sim_eval, runner
from rp2040_sim.elfinfo import ElfError, ElfInfo
from tests.conftest import require_tool
from tests.untrusted_files import mutate, program


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """Two different programs with the same layout, each with ELF (with DWARF lines), BIN and UF2."""
    require_tool(*asm.TOOLS)
    root = tmp_path_factory.mktemp("programs")
    return {name: asm.build_image(program(name), root / name) for name in ("alpha", "bravo")}


def test_uf2_with_its_own_elf_boots_with_symbols(programs):
    result, _ = runner.run_image(programs["alpha"]["uf2"])
    assert result.stop.ok and result.functions[0][0] in ("reset", "boot2", "work")


@pytest.mark.parametrize("kind", ["uf2", "bin"])
def test_elf_of_another_program_is_refused_by_name(programs, kind, capsys):
    image, other_elf = programs["alpha"][kind], programs["bravo"]["elf"]
    with pytest.raises(boot.BootError, match=rf"differs from {other_elf}'s segment .* \(given with --elf\)"):
        boot.load_image(image, other_elf)
    assert cli.main(["run", str(image), "--elf", str(other_elf)]) == 1
    assert "not the same program" in capsys.readouterr().err


def test_stale_elf_beside_a_rebuilt_uf2_is_refused(programs, tmp_path):
    shutil.copy(programs["bravo"]["elf"], tmp_path / "image.elf")  # left over from the previous build
    shutil.copy(programs["alpha"]["uf2"], tmp_path / "image.uf2")  # the rebuild
    with pytest.raises(boot.BootError, match=r"\(found beside the image\)"):
        boot.load_image(tmp_path / "image.uf2")


def test_truncated_image_with_its_elf_is_refused(programs, tmp_path):
    data = programs["alpha"]["bin"].read_bytes()
    (tmp_path / "image.bin").write_bytes(data[:-4])
    shutil.copy(programs["alpha"]["elf"], tmp_path / "image.elf")
    with pytest.raises(boot.BootError, match="the image is truncated"):
        boot.load_image(tmp_path / "image.bin")


def call_with_deadline(fn, seconds=10):
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed back to the test thread
            box["error"] = e
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.parametrize("make,message", [
    (lambda d: "/dev/zero", "is a character device"),
    (lambda d: (os.mkfifo(d / "pipe.uf2"), d / "pipe.uf2")[1], "is a FIFO"),
    (lambda d: (open(d / "big.bin", "wb").truncate(2 * 1024 * 1024 + 1), d / "big.bin")[1],
     "over the 2,097,152-byte limit"),
    (lambda d: (open(d / "big.uf2", "wb").truncate(4 * 1024 * 1024 + 512), d / "big.uf2")[1],
     "over the 4,194,304-byte limit"),
    (lambda d: (open(d / "big.elf", "wb").truncate(64 * 1024 * 1024 + 1), d / "big.elf")[1],
     "over the 67,108,864-byte limit"),
    (lambda d: d, "is a directory"),
])
def test_hostile_image_files_are_refused_with_the_limit(tmp_path, make, message, capsys):
    path = make(tmp_path)
    assert call_with_deadline(lambda: cli.main(["run", str(path)])) == 1
    assert message in capsys.readouterr().err


def test_fifo_as_elf_is_refused(programs, tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.elf")
    assert call_with_deadline(lambda: cli.main(["run", str(programs["alpha"]["uf2"]), "--elf",
                                                str(tmp_path / "pipe.elf")])) == 1
    assert "pipe.elf: is a FIFO" in capsys.readouterr().err


@pytest.mark.parametrize("cut", [0, 3, 20, 52, 300, -1])
def test_truncated_elf_is_a_clean_error(programs, tmp_path, cut, capsys):
    data = programs["alpha"]["elf"].read_bytes()
    path = tmp_path / "cut.elf"
    path.write_bytes(data[:cut])
    assert cli.main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}") and "Traceback" not in err


def exercise(elf: ElfInfo):
    """Everything the emulator asks of an ELF."""
    elf.flash_image()
    elf.static_ram_bytes()
    elf.stack_region()
    for addr in (0x10000100, 0x10000108, 0x1000010c):
        elf.function_at(addr)
        elf.line_at(addr)
    elf.mismatch(b"\xff" * 64, "fuzz.uf2")
    if elf.has("work"):
        elf.addr("work")


class DrawnRandom:
    """The random.Random calls of untrusted_files.mutate, drawn by hypothesis (so a failing case shrinks)."""

    def __init__(self, data):
        self.data = data

    def random(self):
        return self.data.draw(st.floats(0, 1, exclude_max=True))

    def randrange(self, n):
        return self.data.draw(st.integers(0, n - 1))

    def randint(self, a, b):
        return self.data.draw(st.integers(a, b))

    def choice(self, seq):
        return self.data.draw(st.sampled_from(seq))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_elf_reader_property_mutations_raise_only_elf_error(programs, tmp_path, data):
    """Truncations and byte mutations (biased to the ELF/program headers) of a real ELF with DWARF: every use either
    works or raises ElfError. The previous reader let ~45% of such files escape as ELFParseError, DWARFError,
    KeyError, AssertionError... (benchmarks/hostile_inputs.py)."""
    path = tmp_path / "fuzz.elf"
    path.write_bytes(mutate(programs["alpha"]["elf"].read_bytes(), DrawnRandom(data)))
    try:
        exercise(ElfInfo(path))
    except ElfError as e:
        assert str(path) in str(e)


def test_even_reset_vector_is_explained_as_a_thumb_state_fault(programs, tmp_path, capsys):
    data = bytearray(programs["alpha"]["bin"].read_bytes())
    sp, reset = struct.unpack_from("<II", data, 0x100)
    struct.pack_into("<I", data, 0x104, reset & ~1)
    path = tmp_path / "even.uf2"
    path.write_bytes(write_uf2(bytes(data)))
    result, _ = runner.run_image(path)
    assert result.stop.kind == "invalid state"
    assert f"the reset vector at 0x10000104 is 0x{reset & ~1:08x}, an even address" in result.stop.detail
    assert "HardFault (INVSTATE)" in result.stop.detail and "undefined" not in result.fault_report


# -- build.json and emulator.json ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xor_build(tmp_path_factory):
    require_tool("arm-none-eabi-gcc")
    from firmware import build as fw_build
    from zoo import train
    from zoo.models import get_model
    root = tmp_path_factory.mktemp("xor")
    train.train_and_evaluate(get_model("xor").with_overrides(epochs=200), root / "xor", progress=False)
    assert fw_build.main([str(root / "xor"), "--images", "4", "--out", str(root / "build")]) == 0
    return root / "build"


def test_eval_record_passes_the_flash_gate_only_for_the_whole_test_set(xor_build, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(xor_build, build)
    partial = sim_eval.evaluate(build, images=1, jobs=1, progress=False)
    assert (partial["images"], partial["test_set_images"]) == (1, 4)
    with pytest.raises(flash.FlashError, match="checked 1 of the 4 xor test images"):
        flash.verify_image(build / "firmware.uf2")
    full = sim_eval.evaluate(build, jobs=1, progress=False)
    assert full["images"] == full["test_set_images"] == 4
    assert flash.verify_image(build / "firmware.uf2").record["images"] == 4


def test_eval_refuses_a_uf2_rebuilt_while_it_runs(xor_build, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(xor_build, build)
    info = sim_eval.read_build(build)
    base, image = read_uf2((build / "firmware.uf2").read_bytes())
    (build / "firmware.uf2").write_bytes(write_uf2(image + bytes(256), base))  # a valid, different UF2, same ELF
    with pytest.raises(sim_eval.EvalError, match="firmware.uf2 changed while eval ran"):
        sim_eval.Harness(build, info)


@pytest.mark.parametrize("key,value,message", [
    ("input_features", "2", "field 'input_features' is '2' (str), expected an integer >= 1"),
    ("input_features", 2.5, "field 'input_features' is 2.5 (float)"),
    ("output_count", [1], "field 'output_count' is [1] (list)"),
    ("output_count", True, "field 'output_count' is True (bool)"),
    ("dataset", 7, "field 'dataset' is 7 (int), expected a non-empty string"),
    ("model_dir", None, "field 'model_dir' is None"),
    ("output_ctype", {"a": 1}, "field 'output_ctype' is {'a': 1} (dict)"),
    ("uf2_sha256", "xyz", "field 'uf2_sha256' is 'xyz' (str), expected 64 lowercase hex digits"),
    ("input_features", KeyError, "field 'input_features' is missing"),
])
def test_read_build_names_file_and_field(xor_build, tmp_path, key, value, message, capsys):
    build = tmp_path / "build"
    shutil.copytree(xor_build, build)
    info = json.loads((build / "build.json").read_text())
    if value is KeyError:
        del info[key]
    else:
        info[key] = value
    (build / "build.json").write_text(json.dumps(info))
    with pytest.raises(sim_eval.EvalError) as e:
        sim_eval.read_build(build)
    assert str(build / "build.json") in str(e.value) and message in str(e.value)
    assert cli.main(["eval", str(build), "--no-progress"]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("text,message", [
    ('{"input_features": NaN}', "NaN is not a JSON number"),
    ("[]", "top level is a JSON list"),
    ("", "not valid JSON"),
])
def test_read_build_rejects_non_objects_and_nan(xor_build, tmp_path, text, message):
    build = tmp_path / "build"
    shutil.copytree(xor_build, build)
    (build / "build.json").write_text(text)
    with pytest.raises(sim_eval.EvalError, match=message):
        sim_eval.read_build(build)


def test_read_build_refuses_a_fifo_build_json(xor_build, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(xor_build, build)
    (build / "build.json").unlink()
    os.mkfifo(build / "build.json")
    with pytest.raises(sim_eval.EvalError, match="is a FIFO"):
        call_with_deadline(lambda: sim_eval.read_build(build))


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=3), max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(sim_eval.BUILD_FIELDS) + ["uf2_sha256", "extra"]), JSON_VALUES,
                       max_size=7))
def test_read_build_property_only_eval_errors(xor_build, tmp_path_factory, fields):
    build = tmp_path_factory.mktemp("b")
    for name in ("firmware.uf2", "firmware.elf"):
        os.link(xor_build / name, build / name)
    (build / "build.json").write_text(json.dumps(fields))
    try:
        info = sim_eval.read_build(build)
    except sim_eval.EvalError:
        return
    assert all(isinstance(info[k], int) and not isinstance(info[k], bool) for k in ("input_features", "output_count"))
    assert info["output_ctype"] in sim_eval.OUTPUT_DTYPES


def test_record_write_replaces_a_planted_symlink_and_cleans_up_on_failure(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "emulator.json").symlink_to(victim)
    sim_eval.write_json_atomic(tmp_path / "emulator.json", {"images": 1})
    assert victim.read_text() == "keep" and not (tmp_path / "emulator.json").is_symlink()
    assert json.loads((tmp_path / "emulator.json").read_text()) == {"images": 1}
    (tmp_path / "out.json").mkdir()  # the rename fails after the temporary file was written
    (tmp_path / "out.json" / "mine").write_text("user data")
    with pytest.raises(OSError):
        sim_eval.write_json_atomic(tmp_path / "out.json", {"images": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emulator.json", "out.json", "victim.txt"]
    assert (tmp_path / "out.json" / "mine").read_text() == "user data"


def test_read_build_names_a_device_planted_as_the_uf2(xor_build, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(xor_build, build)
    (build / "firmware.uf2").unlink()
    (build / "firmware.uf2").symlink_to("/dev/zero")
    with pytest.raises(sim_eval.EvalError, match="firmware.uf2: is a character device"):
        call_with_deadline(lambda: sim_eval.read_build(build))
