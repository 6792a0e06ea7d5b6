"""The two boot2s (firmware/runtime/boot2.S serial, boot2_quad.S quad) on rp2040_sim's W25Q16JV model: each boots an
image that reads its data from flash, the quad one sets the QE bit only when clear and leaves the chip in
continuous-read mode, the line-fill cost follows the SSI setup each writes, and the bootrom's CRC check treats both
alike. Then whole firmware builds with `--boot2 quad` and `--boot2 serial` give the same results."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import require_tool
from firmware import build as fwbuild
from firmware.uf2 import boot2_with_crc, write_uf2
from firmware_support import make_model
from rp2040_sim import asm, boot, runner
from rp2040_sim.core import Rp2040, SimConfig
from rp2040_sim.peripherals import flash_chip as fc

# An app that reads a 64-word table from flash (over many cache lines) and prints its bytes' sum and a string.
APP = r"""
    .thumb_func
    .global reset
reset:""" + asm.UART0_ON + r"""
    adr r3, table
    movs r4, #0
    movs r5, #0
1:  ldrb r2, [r3, r5]
    adds r4, r4, r2
    adds r5, #1
    cmp r5, #255
    bls 1b
    lsrs r2, r4, #8            @ the sum's bytes as two characters offset from 'A'
    adds r2, #65
    strb r2, [r0]
    movs r2, #255
    ands r2, r4
    lsrs r2, r2, #4
    adds r2, #65
    strb r2, [r0]
    adr r3, msg
2:  ldrb r2, [r3]
    cmp r2, #0
    beq 3f
    strb r2, [r0]
    adds r3, #1
    b 2b
3:  bkpt #0
    .ltorg
    .align 2
table: .rept 16
    .byte 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
    .endr
msg: .asciz " read from flash\n"
"""
TABLE_SUM = 16 * sum(range(1, 17))
WANT_UART = chr(65 + (TABLE_SUM >> 8)) + chr(65 + ((TABLE_SUM & 255) >> 4)) + " read from flash\n"
LINE_FILL = {"serial": (8 + 24 + 8 + 64) * 2, "quad": (8 + 4 + 16) * 2}   # SCK x BAUDR 2 (EMULATOR.md)


def boot2_blob(name: str, tmp: Path) -> bytes:
    """firmware/runtime/<boot2 source>, assembled and CRC'd as firmware.build does."""
    src = fwbuild.RUNTIME_DIR / fwbuild.BOOT2_SOURCES[name]
    obj, binary = tmp / f"{name}.o", tmp / f"{name}.bin"
    subprocess.run(["arm-none-eabi-gcc", *fwbuild.CPU_FLAGS, "-c", str(src), "-o", str(obj)], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".boot2", str(obj), str(binary)], check=True)
    return boot2_with_crc(binary.read_bytes())


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    require_tool(*asm.TOOLS)
    out = {}
    for name in fwbuild.BOOT2_SOURCES:
        d = tmp_path_factory.mktemp(name)
        out[name] = asm.build_image(APP, d, boot2=boot2_blob(name, d))
    return out


def run(path, qe=False):
    warnings = []
    image = boot.load_image(path)
    sim = Rp2040(SimConfig(warn_sink=warnings.append))
    if qe:
        sim.ssi.chip.sr2 |= fc.SR2_QE
    stop = sim.run(boot.prepare(sim, image))
    return sim, runner.collect(sim, image, stop), warnings


@pytest.mark.parametrize("name", ["quad", "serial"])
def test_boot2_boots_and_reads_flash(images, name):
    sim, result, warnings = run(images[name]["uf2"])
    assert result.stop.ok, result.fault_report
    assert result.uart == WANT_UART and warnings == []
    assert result.xip_line_fill_cycles == LINE_FILL[name]
    chip = sim.ssi.chip
    assert bool(chip.sr2 & fc.SR2_QE) == (name == "quad") and chip.continuous == (name == "quad")


@pytest.mark.parametrize("qe", [False, True])
def test_quad_boot2_writes_status_only_when_qe_is_clear(images, qe):
    """QE clear: the status write and its ~10 ms of BUSY polling; QE already set: none of that."""
    sim, result, warnings = run(images["quad"]["uf2"], qe=qe)
    assert result.stop.ok and result.uart == WANT_UART and warnings == []
    at_rosc = sim.clock.now_ps()
    if qe:
        assert at_rosc < 1_000_000_000                                # well under 1 ms of chip time
    else:
        assert at_rosc >= fc.T_WRITE_STATUS_US * 1_000_000           # waited for tW
    assert sim.ssi.chip.sr2 & fc.SR2_QE


@pytest.mark.parametrize("name", ["quad", "serial"])
def test_bootrom_crc_check_refuses_either_boot2_corrupted(images, name, tmp_path):
    data = bytearray(images[name]["bin"].read_bytes())
    data[20] ^= 0x01
    bad = tmp_path / "bad.uf2"
    bad.write_bytes(write_uf2(bytes(data)))
    with pytest.raises(boot.BootError, match="would not boot this image"):
        boot.prepare(Rp2040(), boot.load_image(bad))


def test_quad_boot2_fits_and_is_position_independent(tmp_path):
    require_tool("arm-none-eabi-gcc")
    src = fwbuild.RUNTIME_DIR / fwbuild.BOOT2_SOURCES["quad"]
    obj = tmp_path / "q.o"
    subprocess.run(["arm-none-eabi-gcc", *fwbuild.CPU_FLAGS, "-c", str(src), "-o", str(obj)], check=True)
    relocs = subprocess.run(["arm-none-eabi-readelf", "-r", str(obj)], capture_output=True, text=True).stdout
    assert "R_ARM" not in relocs
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".boot2", str(obj), str(tmp_path / "q.bin")],
                   check=True)
    assert len((tmp_path / "q.bin").read_bytes()) <= 252


def test_firmware_builds_with_either_boot2_agree(tmp_path, mnist):
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-readelf")
    model = make_model(tmp_path / "m", sizes=(784, 16, 10))
    uarts = {}
    for name in ("quad", "serial"):
        result = fwbuild.build(model, tmp_path / name, images=5, weights_in="flash", quiet=True, boot2=name)
        run_result, _ = runner.run_image(result.out_dir / "firmware.uf2")
        assert run_result.stop.ok and run_result.xip_line_fill_cycles == LINE_FILL[name]
        uarts[name] = re.sub(r" us(_total)? \d+", "", run_result.uart)    # timings differ, results must not
        assert '"boot2": "%s"' % name in (result.out_dir / "build.json").read_text()
    assert uarts["quad"] == uarts["serial"] and uarts["quad"].count("pred") == 5
    with pytest.raises(fwbuild.BuildError, match="--boot2 'octal': use quad or serial"):
        fwbuild.build(model, tmp_path / "x", images=1, boot2="octal")
