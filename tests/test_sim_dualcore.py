"""Core 1 in small firmware written here: launched through the FIFO handshake (datasheet 2.8.2), a computation split
over both cores whose result equals one core's, a shared counter under a spinlock, SEV/WFE between the cores, and
cycle counts that repeat exactly."""

import pytest

from rp2040_sim import asm
from tests.conftest import require_tool
from tests.test_sim_exceptions import run, words
from tests.test_sim_sio import LAUNCH_LOOP

N = 64
VALUES = [(i * 2654435761) % 100_003 for i in range(N)]
INCREMENTS = 200

LAUNCH = r"""
    .equ SIO, 0xD0000000
reset:
    ldr r0, =SIO
""" + LAUNCH_LOOP + r"""    .align 2
sequence:
    .word 0, 0, 1, 0x10000100, 0x20041000, core1_main
"""

# Blocking FIFO push (then SEV) and pop (sleeping in WFE) between the cores, r0 the word; use r1, r2.
FIFO_WORDS = r"""    .thumb_func
push_word:                       @ blocking FIFO push of r0, then SEV
    ldr r1, =SIO
1:  ldr r2, [r1, #0x50]
    lsls r2, r2, #30
    bpl 1b
    str r0, [r1, #0x54]
    sev
    bx lr

    .thumb_func
pop_word:                        @ r0 = blocking FIFO pop, sleeping in WFE
    ldr r1, =SIO
1:  ldr r2, [r1, #0x50]
    lsls r2, r2, #31
    bne 2f
    wfe
    b 1b
2:  ldr r0, [r1, #0x58]
    bx lr
"""

TWO_CORES = LAUNCH + r"""
launched:
    ldr r7, =DATA
    movs r0, #{half}
    bl push_word                 @ core 0 -> core 1: how many words core 1 sums (it sleeps in WFE until then)
    ldr r0, =values
    movs r1, #{half}
    bl sum_words                 @ core 0: the first half
    mov r4, r0
    bl locked_increments
    bl pop_word                  @ core 1's half (core 1 SEVs after each push; we WFE until VLD)
    adds r4, r0
    str r4, [r7, #0]             @ log[0] = the sum
    bl pop_word                  @ core 1 finished its increments
    ldr r1, [r7, #4]
    str r1, [r7, #8]             @ log[2] = the shared counter after both cores
    bkpt #0

    .thumb_func
core1_main:
    bl pop_word
    mov r1, r0
    ldr r0, =values + 4 * {half}
    bl sum_words                 @ core 1: the second half
    bl push_word
    bl locked_increments
    movs r0, #1
    bl push_word
1:  wfe
    b 1b

    .thumb_func
sum_words:                       @ r0 = sum of r1 words at r0
    movs r2, #0
1:  ldr r3, [r0]
    adds r2, r3
    adds r0, #4
    subs r1, #1
    bne 1b
    mov r0, r2
    bx lr

{fifo_words}
    .thumb_func
locked_increments:               @ {inc} x (claim SPINLOCK0; DATA[1] += 1 slowly; release); uses r0-r3, r5
    ldr r0, =SIO + 0x100         @ SPINLOCK0
    ldr r1, ={inc}
1:  ldr r2, [r0]
    cmp r2, #0
    beq 1b
    ldr r2, =DATA + 4
    ldr r3, [r2]
    movs r5, #5                  @ a few blocks between the load and the store: the other core gets its
2:  subs r5, #1                  @ turn in the middle (without the lock, updates are lost)
    bne 2b
    adds r3, #1
    str r3, [r2]
    str r2, [r0]
    subs r1, #1
    bne 1b
    bx lr
    .ltorg
    .align 2
values:
""".format(half=N // 2, inc=INCREMENTS, fifo_words=FIFO_WORDS) + "".join(f"    .word {v}\n" for v in VALUES)


@pytest.fixture(autouse=True)
def _tools():
    require_tool(*asm.TOOLS)


def test_two_core_sum_equals_one_core_with_spinlock_and_fifo(tmp_path):
    result, sim = run(tmp_path / "a", TWO_CORES)
    assert result.stop.ok, result.fault_report
    total, _, counter = words(sim, 3)
    assert total == sum(VALUES) % 2**32                     # the independent reference: Python's sum
    assert counter == 2 * INCREMENTS                         # no update lost between the cores
    assert sim.core1 is not None and sim.core1.state.instructions > 0
    assert result.core1_cycles is not None and result.core1_cycles > 0
    again, sim2 = run(tmp_path / "b", TWO_CORES)
    assert (again.cycles, again.core1_cycles, again.instructions) == (result.cycles, result.core1_cycles,
                                                                       result.instructions)


CORE1_FAULTS = LAUNCH + r"""
launched:
1:  wfe                          @ core 0 waits; core 1 faults
    b 1b
    .thumb_func
core1_main:
    ldr r0, =0x30000000
    ldr r1, [r0]                 @ unmapped
    .ltorg
"""


def test_a_fault_on_core_1_ends_the_run_naming_core_1(tmp_path):
    result, sim = run(tmp_path, CORE1_FAULTS)
    assert result.stop.kind == "unmapped read" and result.stop.detail.startswith("on core 1:")
    assert result.stop.address == 0x30000000


def test_summary_reports_both_cores(tmp_path):
    from rp2040_sim.runner import summary
    result, _ = run(tmp_path, TWO_CORES)
    text = summary(result)
    assert f"{result.cycles:,} on core 0, {result.core1_cycles:,} on core 1" in text
    assert result.ms_at_125mhz == max(result.cycles, result.core1_cycles) / 125e3


# One XIP cache for both cores (datasheet 2.6.3: 16 kB, 2 ways, 8-byte lines, set = addr[12:3], so addresses
# 8 kB apart share a set). Core 0 reads table A (128 lines), hands over to core 1, which reads tables X and Y, and
# reads A again. The tables lie in erased flash in sets 512-767, away from the code's (below offset 0x1000).
TABLE_LINES = 128
TABLE_A = 0x10001000                      # sets 512-639
TABLES_AWAY = (0x10001400, 0x10003400)    # sets 640-767, two tags: they never touch A's lines
TABLES_OVER_A = (0x10003000, 0x10005000)  # A's sets, two other tags: with A that is three tags for two ways

SHARED_CACHE = LAUNCH + r"""
launched:
    ldr r0, table_a
    bl read_table                @ core 0: A, 128 line fills
    movs r0, #1
    bl push_word
    bl pop_word                  @ core 1 has read its tables
    ldr r0, table_a
    bl read_table                @ core 0: A again
    bkpt #0

    .thumb_func
core1_main:
    bl pop_word
    ldr r0, table_x
    bl read_table
    ldr r0, table_y
    bl read_table
    movs r0, #1
    bl push_word
1:  wfe
    b 1b

    .thumb_func
read_table:                      @ one word from each of 128 lines at r0
    movs r2, #{lines}
1:  ldr r3, [r0]
    adds r0, #8
    subs r2, #1
    bne 1b
    bx lr
{fifo_words}
    .ltorg
    .align 2                     @ the addresses as separate words (a literal pool would merge X = A into one)
table_a: .word 0x{a:08x}
table_x: .word 0x{x:08x}
table_y: .word 0x{y:08x}
"""


def xip_misses(tmp_path, x: int, y: int) -> tuple[int, int]:
    source = SHARED_CACHE.format(a=TABLE_A, x=x, y=y, lines=TABLE_LINES, fifo_words=FIFO_WORDS)
    result, sim = run(tmp_path, source)
    assert result.stop.ok, result.fault_report
    return sim.state.xip_misses, sim.core1.state.xip_misses


def test_core_1_hits_the_lines_core_0_filled(tmp_path):
    """Core 1 reading A (just filled by core 0) instead of a table nobody read: its 128 line fills are hits.
    Two caches, one per core, would fill A again on core 1."""
    base0, base1 = xip_misses(tmp_path / "away", *TABLES_AWAY)
    shared0, shared1 = xip_misses(tmp_path / "a", TABLE_A, TABLES_AWAY[1])
    assert base1 - shared1 == TABLE_LINES
    assert shared0 == base0


def test_the_cores_evict_each_others_lines(tmp_path):
    """Core 1 filling two other tags in A's sets evicts A (2 ways, LRU): core 0's second pass over A misses on
    every line, where with tables elsewhere it hits on every line."""
    base0, base1 = xip_misses(tmp_path / "away", *TABLES_AWAY)
    thrash0, thrash1 = xip_misses(tmp_path / "over", *TABLES_OVER_A)
    assert thrash0 - base0 == TABLE_LINES
    assert thrash1 == base1
