"""What keeps the emulator fast, asserted on what Unicorn does rather than on wall time (speed itself is measured
in benchmarks/emulator_speed.py): translated code survives the program's stores to unrelated memory."""

from unicorn import UC_HOOK_EDGE_GENERATED

from rp2040_sim.core import Rp2040, SimConfig
from rp2040_sim.memory import SRAM_BASE, XIP_BASE

CODE_OFFSET = 0x100
ITERATIONS = 1000
# loop: str r1, [r0]; subs r2, #1; beq done; b loop; done: bkpt #0
STORE_LOOP = bytes.fromhex("0160" "013a" "00d0" "fbe7" "00be")


def test_sram_stores_keep_the_translated_flash_code():
    """A loop in flash storing to SRAM at the same offset (0x100) as its own code: Unicorn links its blocks once.
    With RAM ranges that overlapped (core.Rp2040._map_ram), every store discarded the loop's translation and each
    iteration translated and linked it again: 1,001 new edges for 1,000 iterations."""
    sim = Rp2040(SimConfig(warn_sink=lambda m: None))
    sim.load_flash(STORE_LOOP, CODE_OFFSET)
    edges = []
    sim.uc.hook_add(UC_HOOK_EDGE_GENERATED, lambda uc, cur, prev, ud: edges.append(cur.pc))
    sim.set_regs(r0=SRAM_BASE + CODE_OFFSET, r1=0x12345678, r2=ITERATIONS, sp=SRAM_BASE + 0x1000)
    stop = sim.run(XIP_BASE + CODE_OFFSET)
    assert stop.ok, stop
    assert sim.regs()["r2"] == 0 and sim.read_u32(SRAM_BASE + CODE_OFFSET) == 0x12345678
    assert sim.state.instructions == 4 * ITERATIONS     # the loop ran, each pass counted once
    assert len(edges) < 10, f"{len(edges)} block links for {ITERATIONS} iterations: code retranslated"
