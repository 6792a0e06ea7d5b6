"""The address map: SRAM is exactly 264 kB, flash and its aliases are one read-only 2 MB array, ROM is read-only
(our ROM, then UDF to its 16 kB end)."""

import pytest

from rp2040_sim import asm
from rp2040_sim.core import Rp2040
from tests.conftest import require_tool


@pytest.fixture(autouse=True)
def _toolchain():
    require_tool("arm-none-eabi-as")


def run(tmp_path, body):
    return asm.run_snippet(body + "\n bkpt #0\n .ltorg\n", tmp_path)


def test_sram_ends_at_264k(tmp_path):
    _, stop = run(tmp_path, "ldr r0, =0x20041FFC\n ldr r1, [r0]\n str r1, [r0]")
    assert stop.kind == "halt"
    _, stop = run(tmp_path, "ldr r0, =0x20042000\n ldr r1, [r0]")
    assert stop.kind == "unmapped read" and stop.address == 0x20042000


@pytest.mark.parametrize("alias", [0x10000000, 0x11000000, 0x12000000, 0x13000000])
def test_flash_aliases_share_contents_and_refuse_writes(tmp_path, alias):
    sim = Rp2040()
    sim.load_flash(b"\x78\x56\x34\x12", 0x100)
    _, stop = asm.run_snippet(f"ldr r0, =0x{alias + 0x100:08x}\n ldr r1, [r0]\n bkpt #0\n .ltorg\n", tmp_path,
                              sim=sim)
    assert stop.kind == "halt" and stop.regs["r1"] == 0x12345678
    _, stop = run(tmp_path, f"ldr r0, =0x{alias + 0x100:08x}\n strb r1, [r0]")
    assert stop.kind == "flash write" and stop.address == alias + 0x100


def test_flash_is_2mb(tmp_path):
    _, stop = run(tmp_path, "ldr r0, =0x101FFFFC\n ldr r1, [r0]")
    assert stop.kind == "halt"
    _, stop = run(tmp_path, "ldr r0, =0x10200000\n ldr r1, [r0]")
    assert stop.kind == "unmapped read" and stop.address == 0x10200000    # reported at the program's address


def test_unaligned_flash_read_faults(tmp_path):
    _, stop = run(tmp_path, "ldr r0, =0x10000102\n ldr r1, [r0]")
    assert stop.kind == "unaligned access" and stop.address == 0x10000102


def test_rom_is_read_only_and_ends_in_udf(tmp_path):
    _, stop = run(tmp_path, "movs r0, #0\n str r0, [r0]")
    assert stop.kind == "rom write"
    _, stop = run(tmp_path, "ldr r0, =0x3FFD\n bx r0")          # past our ROM's code: UDF filler
    assert stop.kind == "invalid instruction" and stop.pc == 0x3FFC
