"""The ROM's flash functions end to end: connect_internal_flash, flash_exit_xip, flash_range_erase (4 kB sectors
and 64 kB blocks), flash_range_program, flash_flush_cache and flash_enter_cmd_xip drive the SSI and the QSPI chip
select like the SDK's hardware_flash does, against the flash chip model behind the SSI; the result is read back
through XIP."""

import numpy as np
import pytest

from rp2040_sim.core import Rp2040, SimConfig
from conftest import require_tool
from rp2040_sim.rom_harness import RomCaller

SECTOR, BLOCK, PAGE = 4096, 65536, 256
DATA_ADDR = 0x20030000                      # where the test puts the bytes to program


@pytest.fixture(scope="module")
def caller(tmp_path_factory):
    require_tool("arm-none-eabi-gcc")
    return RomCaller(tmp_path_factory.mktemp("romflash"))


def flash_bytes(sim, offset, n):
    return bytes(sim.flash.raw[offset:offset + n])


def test_erase_program_and_read_back_through_xip(caller):
    sim = Rp2040(SimConfig(warn_sink=lambda m: None))
    before = bytes(np.random.default_rng(13).integers(0, 256, 4 * BLOCK, dtype=np.uint8))
    sim.load_flash(before)
    for name in ("IF", "EX"):
        _, stop, _ = caller.call([()], func=name, sim=sim)
        assert stop.kind == "halt", (name, stop)
    # one 4 kB sector (count smaller than the block: sector erase), then one aligned 64 kB block with 0xD8
    _, stop, _ = caller.call([(BLOCK + SECTOR, SECTOR, BLOCK, 0xD8)], func="RE", sim=sim)
    assert stop.kind == "halt", stop
    _, stop, _ = caller.call([(2 * BLOCK, BLOCK, BLOCK, 0xD8)], func="RE", sim=sim)
    assert stop.kind == "halt", stop
    expect = bytearray(before)
    expect[BLOCK + SECTOR:BLOCK + 2 * SECTOR] = b"\xff" * SECTOR
    expect[2 * BLOCK:3 * BLOCK] = b"\xff" * BLOCK
    assert flash_bytes(sim, 0, 4 * BLOCK) == bytes(expect)
    # program 3 pages into the erased sector, from SRAM
    data = bytes(np.random.default_rng(7).integers(0, 256, 3 * PAGE, dtype=np.uint8))
    sim.write(DATA_ADDR, data)
    _, stop, _ = caller.call([(BLOCK + SECTOR, DATA_ADDR, 3 * PAGE)], func="RP", sim=sim)
    assert stop.kind == "halt", stop
    expect[BLOCK + SECTOR:BLOCK + SECTOR + 3 * PAGE] = data
    assert flash_bytes(sim, 0, 4 * BLOCK) == bytes(expect)
    # back to XIP: flush the cache, serial-read XIP; the firmware reads the new bytes
    for name in ("FC", "CX"):
        _, stop, _ = caller.call([()], func=name, sim=sim)
        assert stop.kind == "halt", (name, stop)
    _, stop, _ = caller.call([(DATA_ADDR + 0x1000, 0x10000000 + BLOCK + SECTOR, 3 * PAGE)], func="MC", sim=sim)
    assert stop.kind == "halt" and sim.read(DATA_ADDR + 0x1000, 3 * PAGE) == data


def test_programming_only_clears_bits_without_an_erase(caller):
    sim = Rp2040(SimConfig(warn_sink=lambda m: None))
    sim.load_flash(b"\x0f" * PAGE, BLOCK)
    sim.write(DATA_ADDR, b"\xf3" * PAGE)
    for name, rows in (("IF", [()]), ("EX", [()]), ("RP", [(BLOCK, DATA_ADDR, PAGE)])):
        _, stop, _ = caller.call(rows, func=name, sim=sim)
        assert stop.kind == "halt", (name, stop)
    assert flash_bytes(sim, BLOCK, PAGE) == b"\x03" * PAGE           # NOR flash: new = old AND data



def test_native_status_poll_counts_as_the_python_models(caller, monkeypatch):
    """The ROM's erase and program wait for BUSY with CS forced low and high through IO_QSPI around each 05h poll;
    cycles.c answers those polls (ssi_native, published by xip.Ssi._publish). With publishing switched off every
    access goes through the Python SSI, IO_QSPI and chip models: the same cycles, instructions and flash bytes,
    and the native run sent a small fraction of the accesses to Python."""
    from rp2040_sim.peripherals import gpio, xip

    python_accesses = []
    for cls in (xip.Ssi, gpio.IoQspi):                   # counted on the classes: ports bind them at construction
        for name in ("bus_read", "bus_write"):
            inner = getattr(cls, name)
            monkeypatch.setattr(cls, name, lambda *a, inner=inner: (python_accesses.append(a), inner(*a))[1])

    def erase_and_program():
        python_accesses.clear()
        sim = Rp2040(SimConfig(warn_sink=lambda m: None))
        sim.write(DATA_ADDR, bytes(range(256)))
        for name, rows in (("IF", [()]), ("EX", [()]), ("RE", [(BLOCK, SECTOR, BLOCK, 0xD8)]),
                           ("RP", [(BLOCK, DATA_ADDR, PAGE)]), ("FC", [()]), ("CX", [()])):
            _, stop, _ = caller.call(rows, func=name, sim=sim)
            assert stop.kind == "halt", (name, stop)
        return (sim.state.cycles, sim.state.instructions, flash_bytes(sim, BLOCK, SECTOR)), len(python_accesses)

    native, native_python = erase_and_program()
    with monkeypatch.context() as m:
        m.setattr(xip.Ssi, "_publish", lambda self: None)
        python, all_python = erase_and_program()
    assert native == python
    assert native[2] == bytes(range(256)) + b"\xff" * (SECTOR - PAGE)
    assert all_python > 10_000 and native_python < all_python // 20
