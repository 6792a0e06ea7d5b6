"""The W25Q16JV model (rp2040_sim/peripherals/flash_chip.py) driven through the SSI and IO_QSPI registers, the way
the ROM's flash functions and a boot2 drive the chip; expected answers from the W25Q16JV datasheet's command table."""

from __future__ import annotations

import pytest

from conftest import require_tool
from rp2040_sim import asm
from rp2040_sim.core import Rp2040, SimConfig
from rp2040_sim.peripherals import flash_chip as fc
from rp2040_sim.peripherals import xip

IO_QSPI_SS_CTRL = 0x0C
FORCE_LOW, FORCE_HIGH = 2 << 8, 3 << 8


@pytest.fixture
def sim():
    warnings = []
    s = Rp2040(SimConfig(warn_sink=warnings.append))
    s.test_warnings = warnings
    s.ssi.bus_write(xip.SSI_SSIENR, 4, 1)      # reset frame format: standard SPI, 8-bit frames, TX+RX
    return s


def io_qspi(sim):
    return next(p for p in sim.peripherals if p.NAME == "IO_QSPI")


def cmd(sim, *out, forced=True):
    """One transaction with CS forced low (ROM style): the bytes clocked back, one per byte sent."""
    ssi = sim.ssi
    if forced:
        io_qspi(sim).bus_write(IO_QSPI_SS_CTRL, 4, FORCE_LOW)
    back = []
    for b in out:
        ssi.bus_write(xip.SSI_DR0, 4, b)
        back.append(ssi.bus_read(xip.SSI_DR0, 4))   # reading does not end a forced-low transaction
    if forced:
        io_qspi(sim).bus_write(IO_QSPI_SS_CTRL, 4, FORCE_HIGH)
    return back


def wait_not_busy(sim, limit_cycles=200_000_000):
    polls = 0
    while cmd(sim, fc.CMD_READ_STATUS1, 0)[1] & fc.SR1_BUSY:
        sim.add_cycles(10_000)
        polls += 1
        assert polls * 10_000 < limit_cycles
    return polls


def test_ids_and_status_at_power_up(sim):
    assert cmd(sim, fc.CMD_JEDEC_ID, 0, 0, 0)[1:] == [0xEF, 0x40, 0x15]
    assert bytes(cmd(sim, fc.CMD_UNIQUE_ID, *[0] * 12)[5:]) == fc.UNIQUE_ID
    assert cmd(sim, fc.CMD_READ_STATUS1, 0)[1] == 0 and cmd(sim, fc.CMD_READ_STATUS2, 0)[1] == 0  # QE clear


def test_auto_chip_select_frames_on_sr_poll(sim):
    """Without the override, frames written back to back form one transaction; reading SR ends it."""
    ssi = sim.ssi
    for b in (fc.CMD_JEDEC_ID, 0, 0, 0):
        ssi.bus_write(xip.SSI_DR0, 4, b)
    assert ssi.bus_read(xip.SSI_SR, 4) & xip.SSI_SR_TFE
    assert [ssi.bus_read(xip.SSI_DR0, 4) for _ in range(4)] == [0xFF, 0xEF, 0x40, 0x15]


def test_write_status_needs_write_enable_and_sets_busy_for_tw(sim):
    cmd(sim, fc.CMD_WRITE_STATUS, 0, fc.SR2_QE)            # no WEL: ignored
    assert cmd(sim, fc.CMD_READ_STATUS2, 0)[1] == 0
    cmd(sim, fc.CMD_WRITE_ENABLE)
    cmd(sim, fc.CMD_WRITE_DISABLE)                              # 04h clears WEL: the write is ignored again
    cmd(sim, fc.CMD_WRITE_STATUS, 0, fc.SR2_QE)
    assert cmd(sim, fc.CMD_READ_STATUS1, 0)[1] == 0 and cmd(sim, fc.CMD_READ_STATUS2, 0)[1] == 0
    cmd(sim, fc.CMD_WRITE_ENABLE)
    assert cmd(sim, fc.CMD_READ_STATUS1, 0)[1] == fc.SR1_WEL
    cmd(sim, fc.CMD_WRITE_STATUS, 0, fc.SR2_QE)
    assert cmd(sim, fc.CMD_READ_STATUS1, 0)[1] == fc.SR1_BUSY     # WEL cleared, BUSY for tW
    assert cmd(sim, fc.CMD_JEDEC_ID, 0)[1] == 0xFF                  # busy: only status reads are answered
    start = sim.clock.now_ps()
    wait_not_busy(sim)
    assert sim.clock.now_ps() - start >= fc.T_WRITE_STATUS_US * 1_000_000
    assert cmd(sim, fc.CMD_READ_STATUS2, 0)[1] == fc.SR2_QE
    cmd(sim, fc.CMD_WRITE_ENABLE)
    cmd(sim, fc.CMD_WRITE_STATUS2, 0)                           # 31h: SR2 alone
    wait_not_busy(sim)
    assert cmd(sim, fc.CMD_READ_STATUS2, 0)[1] == 0


def test_erase_program_read_back_through_commands_and_xip(sim):
    sim.load_flash(bytes(range(256)) * 32, 0x3000)              # sectors 3..10 hold a pattern
    assert sim.read(0x10003000, 4) == b"\x00\x01\x02\x03"     # XIP alias sees the buffer
    cmd(sim, fc.CMD_WRITE_ENABLE)
    cmd(sim, fc.CMD_SECTOR_ERASE, 0x00, 0x30, 0x10)             # any address inside the sector
    wait_not_busy(sim)
    assert sim.read(0x10003000, 4096) == b"\xff" * 4096 and sim.read(0x10004000, 2) == b"\x00\x01"
    # page program at offset 0xFE of a page: the third byte wraps to the page start
    cmd(sim, fc.CMD_WRITE_ENABLE)
    cmd(sim, fc.CMD_PAGE_PROGRAM, 0x00, 0x30, 0xFE, 0x11, 0x22, 0x33)
    wait_not_busy(sim)
    assert sim.read(0x100030FE, 2) == b"\x11\x22" and sim.read(0x10003000, 2) == b"\x33\xff"
    # NOR programming only clears bits
    cmd(sim, fc.CMD_WRITE_ENABLE)
    cmd(sim, fc.CMD_PAGE_PROGRAM, 0x00, 0x30, 0x00, 0xF0)
    wait_not_busy(sim)
    assert sim.read(0x10003000, 1) == b"\x30"
    # 03h and 0Bh reads
    assert bytes(cmd(sim, fc.CMD_READ, 0x00, 0x30, 0xFE, 0, 0, 0)[4:]) == b"\x11\x22\xff"   # reads cross pages
    assert bytes(cmd(sim, fc.CMD_FAST_READ, 0x00, 0x40, 0x01, 0, 0, 0)[5:]) == b"\x01\x02"
    # 64 kB block erase; no WEL -> nothing
    cmd(sim, fc.CMD_BLOCK_ERASE, 0x00, 0x00, 0x00)
    assert sim.read(0x10004000, 1) == b"\x00"
    cmd(sim, fc.CMD_WRITE_ENABLE)
    cmd(sim, fc.CMD_BLOCK_ERASE, 0x00, 0x80, 0x00)              # 0x8000 is in block 0
    wait_not_busy(sim)
    assert sim.read(0x10000000, 0x10000) == b"\xff" * 0x10000


def quad_setup(sim, spi_ctrlr0):
    ssi = sim.ssi
    ssi.bus_write(xip.SSI_SSIENR, 4, 0)
    ssi.bus_write(xip.SSI_BAUDR, 4, 2)
    ssi.bus_write(xip.SSI_CTRLR0, 4, (2 << 21) | (31 << 16) | (3 << 8))
    ssi.bus_write(xip.SSI_CTRLR1, 4, 0)
    ssi.bus_write(xip.SSI_SPI_CTRLR0, 4, spi_ctrlr0)
    ssi.bus_write(xip.SSI_SSIENR, 4, 1)


def test_quad_read_needs_qe_and_enters_continuous_mode(sim):
    sim.load_flash(b"\x12\x34\x56\x78\x9a", 0x100)
    ssi = sim.ssi
    eb_with_inst = (0xEB << 24) | (4 << 11) | (2 << 8) | (8 << 2) | 1
    quad_setup(sim, eb_with_inst)
    ssi.bus_write(xip.SSI_DR0, 4, 0xEB)
    ssi.bus_write(xip.SSI_DR0, 4, 0x000100 << 8 | 0xA0)
    assert ssi.bus_read(xip.SSI_DR0, 4) == 0xFFFFFFFF and not ssi.chip.continuous   # QE clear: no answer
    assert any("quad read" in m for m in sim.test_warnings)
    ssi.chip.sr2 |= fc.SR2_QE
    ssi.bus_write(xip.SSI_DR0, 4, 0xEB)
    ssi.bus_write(xip.SSI_DR0, 4, 0x000100 << 8 | 0xA0)
    assert ssi.bus_read(xip.SSI_DR0, 4) == 0x12345678 and ssi.chip.continuous
    sim.test_warnings.clear()
    quad_setup(sim, (0xA0 << 24) | (4 << 11) | (0 << 8) | (8 << 2) | 2)   # XIP: address + mode A0 only
    assert sim.test_warnings == [] and sim.state.xip_miss_penalty == 28 * 2
    # a serial transaction (the ROM's flash_exit_xip 0xFF bytes) takes the chip out of continuous mode
    ssi.bus_write(xip.SSI_SSIENR, 4, 0)
    ssi.bus_write(xip.SSI_CTRLR0, 4, 7 << 16)
    ssi.bus_write(xip.SSI_SSIENR, 4, 1)
    cmd(sim, 0xFF, 0xFF)
    assert not ssi.chip.continuous
    assert cmd(sim, fc.CMD_JEDEC_ID, 0)[1] == 0xEF


def test_xip_configurations_the_chip_would_not_answer_warn(sim):
    quad_setup(sim, (0xA0 << 24) | (4 << 11) | (0 << 8) | (8 << 2) | 2)
    assert any("QE bit" in m for m in sim.test_warnings)
    sim.ssi.chip.sr2 |= fc.SR2_QE
    quad_setup(sim, (0xA0 << 24) | (4 << 11) | (0 << 8) | (8 << 2) | 2)
    assert any("not in continuous-read mode" in m for m in sim.test_warnings)


def test_command_style_setup_warns_only_when_no_frame_follows(sim):
    """The pico-sdk's boot2 enables the SSI in EEPROM mode with an 8-bit instruction phase and XIP_CMD 0, then
    sends EBh + address + A0h through DR0 itself: no warning. The same setup left for XIP reads warns at the end."""
    sim.ssi.chip.sr2 |= fc.SR2_QE
    command_style = (0 << 24) | (4 << 11) | (2 << 8) | (8 << 2) | 1
    quad_setup(sim, command_style)
    sim.ssi.bus_write(xip.SSI_DR0, 4, 0xEB)
    sim.ssi.bus_write(xip.SSI_DR0, 4, 0x000000A0)
    sim.ssi.bus_read(xip.SSI_DR0, 4)
    quad_setup(sim, (0xA0 << 24) | (4 << 11) | (0 << 8) | (8 << 2) | 2)
    sim.ssi.check_xip_setup()
    assert sim.test_warnings == [] and sim.ssi.chip.continuous
    quad_setup(sim, command_style)
    assert sim.test_warnings == []
    sim.ssi.check_xip_setup()
    assert any("0x00 is not EBh" in m for m in sim.test_warnings)


def test_xip_cache_not_stale_after_program_and_flush(sim):
    """A line cached before a program reads the new bytes after XIP_CTRL FLUSH (the model reads the buffer on a
    hit; the flush also makes the next access a miss, as on the chip)."""
    sim.load_flash(b"\xaa" * 8, 0x2000)
    assert sim.read(0x10002000, 1) == b"\xaa"
    cmd(sim, fc.CMD_WRITE_ENABLE)
    cmd(sim, fc.CMD_PAGE_PROGRAM, 0x00, 0x20, 0x00, 0x0F)
    wait_not_busy(sim)
    sim.xip_ctrl.bus_write(xip.XIP_FLUSH, 4, 1)
    assert sim.read(0x10002000, 2) == b"\x0a\xaa"


# A boot2-style status write and BUSY poll (SR read ends each transaction, as pico-sdk's boot2 does), then a poll
# that an access to another SSI register interrupts mid-transaction, then 35h: r4 polls, r5 SR2, r6 RXFLR, r7 SR1.
STATUS_POLL = """
    ldr r3, =0x18000000
    movs r0, #0
    str r0, [r3, #8]            @ SSIENR = 0
    ldr r0, =0x00070000         @ CTRLR0: standard SPI, 8-bit frames, TX+RX
    str r0, [r3, #0]
    movs r0, #1
    str r0, [r3, #8]
    movs r0, #0x06              @ write enable
    str r0, [r3, #0x60]
    ldr r1, [r3, #0x28]
    ldr r0, [r3, #0x60]
    movs r0, #0x01              @ write status: SR1 0, SR2 QE -> BUSY for tW
    str r0, [r3, #0x60]
    movs r0, #0
    str r0, [r3, #0x60]
    movs r0, #2
    str r0, [r3, #0x60]
    ldr r1, [r3, #0x28]
    ldr r0, [r3, #0x60]
    ldr r0, [r3, #0x60]
    ldr r0, [r3, #0x60]
    movs r4, #0
1:  movs r0, #0x05
    str r0, [r3, #0x60]
    str r0, [r3, #0x60]
    ldr r1, [r3, #0x28]
    ldr r0, [r3, #0x60]
    ldr r0, [r3, #0x60]
    adds r4, #1
    movs r1, #1
    tst r0, r1
    bne 1b
    movs r0, #0x05
    str r0, [r3, #0x60]
    str r0, [r3, #0x60]
    ldr r1, [r3, #0x20]         @ TXFLR: not a status-poll register
    ldr r1, [r3, #0x28]
    ldr r0, [r3, #0x60]
    ldr r7, [r3, #0x60]
    movs r0, #0x35
    str r0, [r3, #0x60]
    str r0, [r3, #0x60]
    ldr r6, [r3, #0x24]         @ RXFLR ends the transaction
    ldr r0, [r3, #0x60]
    ldr r5, [r3, #0x60]
    bkpt #0
    .ltorg
"""


def test_native_status_poll_counts_as_the_python_models(tmp_path, monkeypatch):
    """cycles.c answers the BUSY polls (ssi_native, published by xip.Ssi._publish); with publishing switched off
    every access goes through the Python SSI and chip models. Both runs poll as many times and take the same
    cycles and instructions; the native one sent almost no access to Python."""
    require_tool(*asm.TOOLS)
    python_accesses = []
    for name in ("bus_read", "bus_write"):              # counted on the class: the ports bind them at construction
        inner = getattr(xip.Ssi, name)
        monkeypatch.setattr(xip.Ssi, name, lambda *a, inner=inner: (python_accesses.append(a), inner(*a))[1])

    def poll():
        python_accesses.clear()
        sim, stop = asm.run_snippet(STATUS_POLL, tmp_path, sim=Rp2040(SimConfig(warn_sink=lambda m: None)))
        assert stop.ok, stop
        r = stop.regs
        return (r["r4"], r["r5"], r["r6"], r["r7"], sim.state.cycles, sim.state.instructions), len(python_accesses)

    native, native_python = poll()
    with monkeypatch.context() as m:
        m.setattr(xip.Ssi, "_publish", lambda self: None)
        python, all_python = poll()
    assert native == python
    polls, sr2, rxflr, sr1 = native[:4]
    # tW = 10 ms at the ROSC's 6.5 MHz = 65,000 cycles of polls of at least 10 cycles each
    assert 1000 < polls < 6500 and sr2 == fc.SR2_QE and rxflr == 2 and sr1 == 0
    assert all_python > 5 * polls and native_python < 50
