"""The XIP cache model (datasheet 2.6.3: 16 kB, 2-way, 8-byte lines, index addr[12:3]) on crafted access patterns.
Code runs from SRAM for the data-read tests, so only the loads touch flash. The replacement policy is LRU
(the datasheet does not document it; docs/EMULATOR.md)."""

import pytest

from rp2040_sim import asm
from rp2040_sim.core import Rp2040, SimConfig
from tests.conftest import require_tool

MISS = 50          # explicit line-fill cost so the cycle totals are exact


@pytest.fixture(autouse=True)
def _toolchain():
    require_tool("arm-none-eabi-as")


def loads(tmp_path, addresses, cache_enabled=True):
    body = "\n".join(f"ldr r0, =0x{a:08x}\n ldr r1, [r0]" for a in addresses)
    sim = Rp2040(SimConfig(xip_miss_cycles=MISS))
    sim.state.xip_cache_enabled = int(cache_enabled)
    sim, stop = asm.run_snippet(body + "\n bkpt #0\n .ltorg\n", tmp_path, sim=sim)
    assert stop.kind == "halt"
    st = sim.state
    # code in SRAM: 2 (ldr literal, from SRAM) + 2 (ldr from flash) per address, + bkpt
    stall = st.cycles - (4 * len(addresses) + 1)
    return st.xip_hits, st.xip_misses, st.xip_accesses, stall


A, B, C = 0x10001000, 0x10003000, 0x10005000         # same set (addr[12:3] equal), three different tags


def test_same_line_hits_next_line_misses(tmp_path):
    assert loads(tmp_path, [A, A + 4, A + 8, A]) == (2, 2, 4, 2 * MISS)


def test_two_ways_with_lru_replacement(tmp_path):
    # A miss, B miss, A hit, C miss (evicts B, least recently used), A hit, B miss (evicts C)
    assert loads(tmp_path, [A, B, A, C, A, B]) == (2, 4, 6, 4 * MISS)


def test_a_third_tag_in_a_set_evicts(tmp_path):
    # A, B fill both ways; C evicts A (LRU); A misses again
    assert loads(tmp_path, [A, B, C, A]) == (0, 4, 4, 4 * MISS)


def test_aliases(tmp_path):
    no_alloc, no_cache = A + 0x01000000, A + 0x02000000
    # no-allocate alias: looks up but does not fill; the cached alias then still misses
    assert loads(tmp_path, [no_alloc, no_alloc, A, no_alloc]) == (1, 3, 4, 3 * MISS)
    # no-cache alias: every access goes to flash and is not a cache access (CTR_ACC)
    assert loads(tmp_path, [no_cache, no_cache]) == (0, 2, 0, 2 * MISS)


def test_cache_disabled_misses_every_time(tmp_path):
    assert loads(tmp_path, [A, A, A], cache_enabled=False) == (0, 3, 0, 3 * MISS)


def test_instruction_fetch_from_flash(tmp_path):
    """A 3-instruction loop in one 8-byte line: the first pass fills the line, the other 9 passes hit.
    Fetch is counted per 32-bit word: block [0,6) = 2 words, then 9 x block [2,6) = 2 words, bkpt = 1 word."""
    sim = Rp2040(SimConfig(xip_miss_cycles=MISS))
    sim, stop = asm.run_snippet("movs r0, #10\n1: subs r0, #1\n bne 1b\n bkpt #0\n", tmp_path, at=0x10000000,
                                sim=sim)
    st = sim.state
    assert (st.xip_misses, st.xip_hits, st.xip_accesses) == (1, 1 + 18 + 1, 21)
    assert st.cycles == 1 + 10 + 9 * 2 + 1 + 1 + MISS


def test_flush_empties_the_cache(tmp_path):
    sim = Rp2040(SimConfig(xip_miss_cycles=MISS))
    body = "ldr r0, =0x10001000\n ldr r1, [r0]\n bkpt #0\n .ltorg\n"
    asm.run_snippet(body, tmp_path, sim=sim)
    asm.run_snippet(body, tmp_path, sim=sim)
    assert sim.state.xip_misses == 1
    sim.xip_ctrl.bus_write(0x04, 4, 1)                       # XIP_CTRL.FLUSH
    asm.run_snippet(body, tmp_path, sim=sim)
    assert sim.state.xip_misses == 2


def test_snapshot_restore(tmp_path):
    sim = Rp2040(SimConfig(xip_miss_cycles=MISS))
    body = "ldr r0, =0x10001000\n ldr r1, [r0]\n bkpt #0\n .ltorg\n"
    snap = sim.xip_snapshot()
    asm.run_snippet(body, tmp_path, sim=sim)
    sim.xip_restore(snap)
    asm.run_snippet(body, tmp_path, sim=sim)
    assert sim.state.xip_misses == 2


def test_literal_pool_and_vector_reads_on_code_pages(tmp_path):
    """Data reads from the same flash pages the code runs from (literal pools, the vector table read by boot2's
    LDM) must go through the cache model too. Hand count:
    boot2 (SRAM) LDM of 0x100/0x104: miss + hit. Reset block 0x108..0x116 fetches lines 0x108 and 0x110: 2 misses
    + 2 hits. Literals at 0x118, 0x11C, 0x120: miss, hit, miss. Loads of 0x100, 0x104, 0x108: 3 hits."""
    from rp2040_sim import runner
    src = """
    .thumb_func
    .global reset
reset:
    ldr r0, =0x11111111
    ldr r1, =0x22222222
    ldr r2, =0x10000100
    ldr r3, [r2]
    ldr r3, [r2, #4]
    ldr r3, [r2, #8]
    bkpt #0
    .ltorg
"""
    paths = asm.build_image(src, tmp_path)
    result, sim = runner.run_image(paths["uf2"], SimConfig(xip_miss_cycles=MISS))
    st = sim.state
    assert (st.xip_misses, st.xip_hits, st.xip_accesses) == (5, 7, 12)
    boot2 = 2 + 2 + 2 + (1 + 2) + 3 + 2                   # ldr, ldr, str, ldmia {r0, r2}, msr, bx
    app = 6 * 2 + 1
    assert result.cycles == boot2 + app + 5 * MISS
