"""firmware.build end to end: cross-compile real models, check the outputs against arm-none-eabi-size, the UF2
rules and the host model (booting the image in rp2040_sim), and every error path."""

import hashlib
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import require_tool
from firmware import build as fwbuild
from firmware import uf2
from firmware_support import elf_symbols, make_model
from rp2040_sim import runner
from zoo import host, modeldir

LINE = re.compile(r"img (\d+) label (\d+) pred (\d+) us (\d+)")
SUMMARY = re.compile(r"summary images (\d+) correct (\d+) us_total (\d+)")
STACK_PAINT = 0xDEADBEEF


@pytest.fixture(scope="module")
def toolchain():
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-size")


@pytest.fixture(scope="module")
def built(toolchain, tmp_path_factory, mnist):
    root = tmp_path_factory.mktemp("fw")
    model_dir = make_model(root / "mnist_small", sizes=(784, 32, 10))
    result = fwbuild.build(model_dir, root / "out", images=20, quiet=True)
    return model_dir, result


def boot(out: Path):
    """Boot the UF2 in the emulator to its final bkpt: (the emulator, the run's result, the UART text)."""
    result, sim = runner.run_image(out / "firmware.uf2")
    assert result.stop.ok, result.fault_report
    return sim, result, result.uart


def test_outputs_and_build_json(built, mnist):
    model_dir, result = built
    out = result.out_dir
    assert sorted(p.name for p in out.iterdir()) == sorted([*fwbuild.OUTPUTS, ".picozoo-manifest.json"])
    info = json.loads((out / "build.json").read_text())
    assert info == {"model_dir": str(model_dir.resolve()), "images": 20, "first_image": 0, "dataset": "mnist",
                    "input_features": 784, "output_count": 10, "output_ctype": "float", "weights_in": "flash",
                    "boot2": "quad", "cores": 1,
                    "uf2_sha256": hashlib.sha256((out / "firmware.uf2").read_bytes()).hexdigest()}
    base, image = uf2.read_uf2((out / "firmware.uf2").read_bytes())
    binary = (out / "firmware.bin").read_bytes()
    assert base == 0x10000000 and image[:len(binary)] == binary
    proc = subprocess.run([sys.executable, "-m", "firmware.uf2", "check", str(out / "firmware.uf2")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_size_json_agrees_with_arm_none_eabi_size(built):
    model_dir, result = built
    out = result.out_dir
    size = json.loads((out / "size.json").read_text())
    berkeley = subprocess.run(["arm-none-eabi-size", str(out / "firmware.elf")], capture_output=True,
                              text=True, check=True).stdout.splitlines()[1].split()
    text, data, bss = map(int, berkeley[:3])
    assert size["flash_bytes"] == text + data == (out / "firmware.bin").stat().st_size
    assert size["ram_static_bytes"] + size["stack_reserved_bytes"] == data + bss
    assert size["stack_reserved_bytes"] == fwbuild.DEFAULT_STACK
    model = modeldir.load(model_dir)
    assert size["weights_bytes"] == sum(p["w"].nbytes + p["b"].nbytes for p in model.params if p)
    assert size["images_bytes"] == 20 * 784 + 20
    assert size["flash_other_bytes"] == size["flash_bytes"] - size["weights_bytes"] - size["images_bytes"]
    assert 0 < size["code_bytes"] < size["flash_other_bytes"]


def test_boot_prints_one_line_per_image_matching_the_host_model(built, mnist):
    model_dir, result = built
    _, run, text = boot(result.out_dir)
    symbols = elf_symbols(result.out_dir / "firmware.elf")
    assert run.stop.kind == "halt" and run.stop.pc == symbols["pz_halt"][0] & ~1  # bkpt #0 in pz_halt
    lines = text.split("\r\n")
    assert lines[-1] == "" and len(lines) == 22
    model = modeldir.load(model_dir)
    expected = host.predict(model, host.forward(model, mnist.x_test[:20]))
    for i, line in enumerate(lines[:20]):
        m = LINE.fullmatch(line)
        assert m, line
        assert (int(m[1]), int(m[2]), int(m[3])) == (i, mnist.y_test[i], expected[i])
    m = SUMMARY.fullmatch(lines[20])
    assert m and int(m[1]) == 20 and int(m[2]) == int(np.sum(expected == mnist.y_test[:20]))
    assert int(m[3]) == sum(int(LINE.fullmatch(line)[4]) for line in lines[:20])


def test_pz_infer_contract_after_boot(built):
    """The emulator's entry point: write pz_input, call pz_infer with LR = pz_halt|1, read pz_output."""
    model_dir, result = built
    sim, _, _ = boot(result.out_dir)
    sym = elf_symbols(result.out_dir / "firmware.elf")
    model = modeldir.load(model_dir)
    assert sym["pz_input"][1] == 784 and 0x20000000 <= sym["pz_input"][0] < 0x20042000
    assert sym["pz_output"][1] == 10 * 4
    assert sym["pz_test_images"][0] < 0x20000000 and sym["pz_test_labels"][1] == 20
    raw = np.random.default_rng(5).integers(0, 256, (3, 784), dtype=np.uint8)
    expected = host.forward(model, raw)
    for row, want in zip(raw, expected):
        sim.write(sym["pz_input"][0], row.tobytes())
        sim.set_regs(sp=sym["__stack_top"][0], lr=sym["pz_halt"][0] | 1)
        stop = sim.run(sym["pz_infer"][0])
        assert stop.kind == "halt" and stop.pc == sym["pz_halt"][0] & ~1
        got = np.frombuffer(sim.read(sym["pz_output"][0], 40), np.float32)
        np.testing.assert_allclose(got, want, rtol=0, atol=64 * np.finfo(np.float32).eps * np.abs(want).max())
        assert stop.regs["r0"] == int(np.argmax(got))


def test_stack_is_painted_and_peak_use_fits_the_reserve(built):
    _, result = built
    sim, _, _ = boot(result.out_dir)
    sym = elf_symbols(result.out_dir / "firmware.elf")
    limit, top = sym["__stack_limit"][0], sym["__stack_top"][0]
    assert top - limit == fwbuild.DEFAULT_STACK
    words = struct.unpack(f"<{(top - limit) // 4}I", sim.read(limit, top - limit))
    untouched = next(i for i, w in enumerate(words) if w != STACK_PAINT)
    assert all(w == STACK_PAINT for w in words[:untouched])
    peak = top - limit - 4 * untouched
    assert 64 < peak < fwbuild.DEFAULT_STACK // 2, peak


def test_image_layout(built):
    _, result = built
    image = (result.out_dir / "firmware.bin").read_bytes()
    sym = elf_symbols(result.out_dir / "firmware.elf")
    uf2.check_image(0x10000000, image)
    vectors = struct.unpack_from("<48I", image, 0x100)
    assert vectors[0] == sym["__stack_top"][0]
    assert vectors[1] == sym["pz_reset_handler"][0] | 1
    assert set(vectors[2:]) == {sym["pz_unexpected_exception"][0] | 1}
    handler = (sym["pz_unexpected_exception"][0] & ~1) - 0x10000000  # Thumb symbols have bit 0 set
    assert struct.unpack_from("<H", image, handler + 4)[0] == 0xBEFE  # mrs r0, ipsr (4 bytes); bkpt #0xFE


def test_reproducible(built, tmp_path):
    model_dir, first = built
    second = fwbuild.build(model_dir, tmp_path / "again", images=20, quiet=True)
    for name in fwbuild.OUTPUTS:
        assert (first.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes(), name


def test_mnist_300_shaped_model_meets_the_budget_and_cannot_keep_weights_in_ram(toolchain, tmp_path, mnist):
    model_dir = make_model(tmp_path / "mnist_300", sizes=(784, 300, 10))
    size = fwbuild.build(model_dir, tmp_path / "out", quiet=True).size
    assert size["weights_bytes"] == 954_040
    assert size["flash_bytes"] - size["weights_bytes"] - size["images_bytes"] <= 12 * 1024
    assert size["ram_static_bytes"] <= 8 * 1024
    with pytest.raises(fwbuild.BuildError) as e:
        fwbuild.build(model_dir, tmp_path / "ram", weights_in="ram", quiet=True)
    need = size["ram_static_bytes"] + size["weights_bytes"] + size["stack_reserved_bytes"]
    assert f"exceed the RP2040's 264 kB (270336 bytes) by {need - 270336} bytes" in str(e.value)


def test_toolchain_tests_skip_locally_and_fail_in_ci(monkeypatch):
    """The toolchain fixture's rule: a missing program skips, naming it, unless CI is set."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="arm-none-eabi-nothing is not installed"):
        require_tool("arm-none-eabi-nothing")
    with pytest.raises(pytest.skip.Exception, match="^arm-none-eabi-no, arm-none-eabi-none are not installed"):
        require_tool("arm-none-eabi-no", sys.executable, "arm-none-eabi-none")  # only the missing ones are named
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="arm-none-eabi-nothing is not installed"):
        require_tool("arm-none-eabi-nothing")


def test_float64_tanh_model_runs(toolchain, tmp_path, mnist):
    model_dir = make_model(tmp_path / "f64", sizes=(784, 12, 10), activation="tanh", dtype="float64")
    result = fwbuild.build(model_dir, tmp_path / "out", images=5, quiet=True)
    assert result.build["output_ctype"] == "double"
    _, _, text = boot(result.out_dir)
    model = modeldir.load(model_dir)
    expected = host.predict(model, host.forward(model, mnist.x_test[:5]))
    assert [int(LINE.fullmatch(l)[3]) for l in text.split("\r\n")[:5]] == expected.tolist()


def test_binary_xor_model_runs(toolchain, tmp_path):
    model_dir = make_model(tmp_path / "xor", sizes=(2, 3, 1), activation="sigmoid", output="binary",
                           dataset="xor", scale=1.0)
    result = fwbuild.build(model_dir, tmp_path / "out", quiet=True)
    assert result.build["images"] == 4 and result.build["output_count"] == 1
    _, _, text = boot(result.out_dir)
    model = modeldir.load(model_dir)
    raw = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.uint8)
    expected = host.predict(model, host.forward(model, raw))
    assert [int(LINE.fullmatch(l)[3]) for l in text.split("\r\n")[:4]] == expected.tolist()


def test_weights_in_ram_runs_when_they_fit(toolchain, tmp_path, mnist):
    model_dir = make_model(tmp_path / "m", sizes=(784, 8, 10))
    flash = fwbuild.build(model_dir, tmp_path / "flash", images=3, quiet=True)
    ram = fwbuild.build(model_dir, tmp_path / "ram", images=3, weights_in="ram", quiet=True)
    assert ram.build["weights_in"] == "ram"
    assert ram.size["ram_static_bytes"] == flash.size["ram_static_bytes"] + ram.size["weights_bytes"]
    sym = elf_symbols(ram.out_dir / "firmware.elf")
    assert 0x20000000 <= sym["pz_l0_w"][0] < 0x20042000
    # Same predictions (.data was copied to SRAM at reset), and weights in SRAM are faster than through the XIP cache.
    ram_text, flash_text = boot(ram.out_dir)[2], boot(flash.out_dir)[2]
    ram_lines, flash_lines = LINE.findall(ram_text), LINE.findall(flash_text)
    assert len(ram_lines) == 3 and [l[:3] for l in ram_lines] == [l[:3] for l in flash_lines]
    assert sum(int(l[3]) for l in ram_lines) < sum(int(l[3]) for l in flash_lines)


def test_weights_in_ram_overflow_says_by_how_much(toolchain, tmp_path, mnist):
    model_dir = make_model(tmp_path / "big", sizes=(784, 100, 10))
    flash = fwbuild.build(model_dir, tmp_path / "out", images=2, quiet=True)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    with pytest.raises(fwbuild.BuildError) as e:
        fwbuild.build(model_dir, tmp_path / "out", images=2, weights_in="ram", quiet=True, force=True)
    message = str(e.value)
    need = flash.size["ram_static_bytes"] + flash.size["weights_bytes"] + flash.size["stack_reserved_bytes"]
    over = int(re.search(r"by (\d+) bytes", message)[1])
    assert over == need - 264 * 1024
    assert "264 kB" in message and "--weights-in flash" in message and str(model_dir) in message
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before  # nothing half-written


def test_explain_link_failure_for_flash():
    stderr = "ld: region `FLASH' overflowed by 1234 bytes\ncollect2: error"
    assert "exceeds the Pico's 2 MB (2097152 bytes) by 1234 bytes" in fwbuild.explain_link_failure(stderr, "flash", 9)
    assert fwbuild.explain_link_failure("undefined reference to `x'", "flash", 9).startswith("link failed")


def test_model_too_large_for_flash(toolchain, tmp_path, mnist):
    model_dir = make_model(tmp_path / "huge", sizes=(784, 400, 10), dtype="float64")
    with pytest.raises(fwbuild.BuildError, match=r"huge: model too large for flash: weights 2544080 bytes .* by "
                                                 r"\d+ bytes"):
        fwbuild.build(model_dir, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_missing_model_dir(tmp_path, capsys):
    with pytest.raises(fwbuild.BuildError, match="nowhere/model.safetensors: not found"):
        fwbuild.build(tmp_path / "nowhere", tmp_path / "out")
    assert fwbuild.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_toolchain_names_the_debian_packages(tmp_path, monkeypatch, capsys):
    model_dir = make_model(tmp_path / "m", sizes=(784, 4, 10))
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(fwbuild.BuildError, match="arm-none-eabi-gcc not found on PATH; .*apt-get install "
                                                 "gcc-arm-none-eabi picolibc-arm-none-eabi"):
        fwbuild.build(model_dir, tmp_path / "out")
    assert fwbuild.main([str(model_dir), "--out", str(tmp_path / "out")]) == 1
    assert "gcc-arm-none-eabi" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_too_many_images(toolchain, tmp_path, mnist):
    model_dir = make_model(tmp_path / "m", sizes=(784, 4, 10))
    with pytest.raises(fwbuild.BuildError, match="--images 10001: the mnist test set has 10000 images"):
        fwbuild.build(model_dir, tmp_path / "out", images=10001)


def test_cli_default_out_dir(toolchain, tmp_path, monkeypatch, mnist, capsys):
    model_dir = make_model(tmp_path / "tiny", sizes=(784, 4, 10))
    monkeypatch.chdir(tmp_path)
    assert fwbuild.main([str(model_dir), "--images", "2"]) == 0
    assert (tmp_path / "build" / "tiny" / "firmware.uf2").is_file()
    out = capsys.readouterr().out
    assert "RAM:" in out and "Flash:" in out and "%" in out


def test_zero_images_builds_and_reports_an_empty_summary(toolchain, tmp_path):
    model_dir = make_model(tmp_path / "xor", sizes=(2, 3, 1), activation="sigmoid", output="binary",
                           dataset="xor", scale=1.0)
    result = fwbuild.build(model_dir, tmp_path / "out", images=0, quiet=True)
    assert boot(result.out_dir)[2] == "summary images 0 correct 0 us_total 0\r\n"


def test_unknown_dataset_and_feature_mismatch(toolchain, tmp_path, mnist):
    odd = make_model(tmp_path / "odd", sizes=(784, 4, 10), dataset="nosuch")
    with pytest.raises(fwbuild.BuildError, match="odd/model.safetensors: metadata field 'dataset' is 'nosuch'"):
        fwbuild.build(odd, tmp_path / "out")
    narrow = make_model(tmp_path / "narrow", sizes=(100, 4, 10))
    with pytest.raises(fwbuild.BuildError, match="narrow: model takes 100 features, dataset mnist has 784"):
        fwbuild.build(narrow, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_picolibc_names_the_package(toolchain, tmp_path, monkeypatch):
    monkeypatch.setattr(fwbuild, "PICOLIBC_SPECS", tmp_path / "picolibc.specs")
    with pytest.raises(fwbuild.BuildError, match="picolibc.specs not found; .*picolibc-arm-none-eabi"):
        fwbuild.build(make_model(tmp_path / "m", sizes=(784, 4, 10)), tmp_path / "out")


@pytest.mark.parametrize("patch,message", [
    (".space 200\n", r"boot2 code is \d+ bytes; the bootrom loads at most 252"),
    (".word main\n", "has relocations, so it is not position independent"),
])
@pytest.mark.parametrize("boot2", sorted(fwbuild.BOOT2_SOURCES))
def test_boot2_rules_are_enforced_by_the_build(toolchain, tmp_path, monkeypatch, mnist, patch, message, boot2):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for f in fwbuild.RUNTIME_DIR.iterdir():
        if f.is_file():
            (runtime / f.name).write_bytes(f.read_bytes())
    name = fwbuild.BOOT2_SOURCES[boot2]
    source = (runtime / name).read_text()
    (runtime / name).write_text(source.replace("    .ltorg\n", "    .ltorg\n" + patch, 1))
    monkeypatch.setattr(fwbuild, "RUNTIME_DIR", runtime)
    with pytest.raises(fwbuild.BuildError, match=message):
        fwbuild.build(make_model(tmp_path / "m", sizes=(784, 4, 10)), tmp_path / "out", images=1, boot2=boot2)


@pytest.mark.parametrize("stack", [512, 4100, -8])
def test_bad_stack_reserve(tmp_path, stack):
    with pytest.raises(fwbuild.BuildError, match=f"--stack {stack}: the stack reserve must be a multiple of 8"):
        fwbuild.build(make_model(tmp_path / "m", sizes=(784, 4, 10)), tmp_path / "out", stack=stack)


def test_custom_stack_reserve_is_reported(toolchain, tmp_path, mnist):
    result = fwbuild.build(make_model(tmp_path / "m", sizes=(784, 4, 10)), tmp_path / "out", images=1,
                           stack=2048, quiet=True)
    sym = elf_symbols(result.out_dir / "firmware.elf")
    assert result.size["stack_reserved_bytes"] == 2048 == sym["__stack_top"][0] - sym["__stack_limit"][0]


def test_out_dir_that_is_a_file(toolchain, tmp_path, mnist):
    blocker = tmp_path / "out"
    blocker.write_text("not a directory")
    with pytest.raises(fwbuild.BuildError, match="out: is a file, not a directory"):
        fwbuild.build(make_model(tmp_path / "m", sizes=(784, 4, 10)), blocker, images=1, quiet=True)
    assert blocker.read_text() == "not a directory"
