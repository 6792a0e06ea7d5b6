"""Booting like the chip: UF2 (validated by firmware/uf2.py), ELF and BIN, boot2 CRC check, boot2 -> vector table."""

import struct

import pytest

from firmware.uf2 import write_uf2
from rp2040_sim import __main__ as cli
from rp2040_sim import asm, boot, runner
from rp2040_sim.core import Rp2040
from rp2040_sim.peripherals import ppb
from tests.conftest import require_tool

HELLO = r"""
    .thumb_func
    .global reset
reset:""" + asm.UART0_ON + r"""
    adr r3, msg
1:  ldrb r2, [r3]
    cmp r2, #0
    beq 2f
    strb r2, [r0]
    adds r3, #1
    b 1b
2:  bkpt #0
    .ltorg
    .align 2
msg: .asciz "hello from flash\n"
"""


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    require_tool(*asm.TOOLS)
    return asm.build_image(HELLO, tmp_path_factory.mktemp("hello"))


@pytest.mark.parametrize("kind", ["uf2", "elf", "bin"])
def test_boots_uf2_elf_and_bin_alike(hello, kind):
    result, sim = runner.run_image(hello[kind], elf_path=hello["elf"] if kind != "elf" else None)
    assert result.stop.ok, result.fault_report
    assert result.uart == "hello from flash\n"
    assert sim.ppb.regs[ppb.SCB_VTOR] == 0x10000100                 # boot2 pointed VTOR at the app
    assert result.functions[0][0] == "reset"
    assert result.cycles > 0 and result.xip_misses > 0


def test_same_image_same_cycles(hello):
    a, _ = runner.run_image(hello["uf2"])
    b, _ = runner.run_image(hello["uf2"])
    assert (a.cycles, a.instructions, a.xip_hits, a.xip_misses) == (b.cycles, b.instructions, b.xip_hits,
                                                                     b.xip_misses)


def test_boot2_runs_from_sram_with_lr_zero(hello):
    image = boot.load_image(hello["uf2"])
    sim = Rp2040()
    start = boot.prepare(sim, image)
    assert start == 0x20041F00
    assert sim.read(0x20041F00, 256) == image.data[:256]
    assert sim.regs()["lr"] == 0


def corrupted(hello, tmp_path):
    data = bytearray(hello["bin"].read_bytes())
    data[10] ^= 0x01                                               # one bit of boot2 code
    path = tmp_path / "bad.uf2"
    path.write_bytes(write_uf2(bytes(data)))
    return path


def test_bad_boot2_crc_is_refused_before_anything_runs(hello, tmp_path):
    path = corrupted(hello, tmp_path)
    image = boot.load_image(path)
    sim = Rp2040()
    with pytest.raises(boot.BootError, match="the RP2040 would not boot this image") as e:
        boot.prepare(sim, image)
    assert "CRC" in str(e.value) and str(path) in str(e.value)
    assert sim.cycles() == 0


def test_cli_bad_crc_exit_code(hello, tmp_path, capsys):
    assert cli.main(["run", str(corrupted(hello, tmp_path))]) == 1
    assert "the RP2040 would not boot this image" in capsys.readouterr().err


def test_cli_run_prints_uart_and_summary(hello, capsys, tmp_path):
    out_json = tmp_path / "run.json"
    assert cli.main(["run", str(hello["uf2"]), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "hello from flash" in out and "cycles" in out and "at 125 MHz" in out
    assert '"cycles"' in out_json.read_text()


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d[:-3], "not a multiple of 512"),
    (lambda d: d[:28] + struct.pack("<I", 0x12345678) + d[32:], "family ID"),
])
def test_invalid_uf2_is_rejected_with_its_name(hello, tmp_path, mutate, message, capsys):
    path = tmp_path / "broken.uf2"
    path.write_bytes(mutate(hello["uf2"].read_bytes()))
    with pytest.raises(boot.BootError, match=message):
        boot.load_image(path)
    assert cli.main(["run", str(path)]) == 1
    assert str(path) in capsys.readouterr().err


def test_missing_and_unknown_files(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "nope.uf2")]) == 1
    assert "no such file" in capsys.readouterr().err
    odd = tmp_path / "image.hex"
    odd.write_text(":00000001FF\n")
    assert cli.main(["run", str(odd)]) == 1
    assert "unknown image type" in capsys.readouterr().err


def test_image_too_short_for_boot2(tmp_path):
    path = tmp_path / "tiny.bin"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(boot.BootError, match="would not boot"):
        boot.prepare(Rp2040(), boot.load_image(path))


@pytest.mark.parametrize("argv", [["run", "x.uf2", "--max-cycles", "-5"], ["run", "x.uf2", "--max-cycles", "lots"],
                                  ["eval", "d", "--images", "0"], ["frobnicate"]])
def test_cli_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2


def test_uf2_not_at_flash_start_and_non_arm_elf(hello, tmp_path, capsys):
    path = tmp_path / "offset.uf2"
    path.write_bytes(write_uf2(hello["bin"].read_bytes(), 0x10001000))
    assert cli.main(["run", str(path)]) == 1
    assert "reads boot2 from flash offset 0" in capsys.readouterr().err
    host_elf = tmp_path / "host.elf"
    host_elf.write_bytes(open("/proc/self/exe", "rb").read())
    assert cli.main(["run", str(host_elf)]) == 1
    assert "expected EM_ARM" in capsys.readouterr().err
