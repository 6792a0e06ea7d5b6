"""SIO for two cores, seen from core 0 in small firmware written here: CPUID, spinlocks, the FIFOs (VLD/RDY, WOF,
ROE, SIO_IRQ_PROC0) and the core 1 launch handshake of datasheet 2.8.2 answered by the model of core 1's bootrom."""

import pytest

from rp2040_sim import asm
from tests.conftest import require_tool
from tests.test_sim_exceptions import run, words


@pytest.fixture(autouse=True)
def _tools():
    require_tool(*asm.TOOLS)


SPINLOCKS = r"""
reset:
    ldr r0, =0xD0000000
    ldr r7, =DATA
    ldr r1, [r0]                 @ CPUID
    str r1, [r7, #0]
    ldr r2, =0x114               @ SPINLOCK5
    ldr r1, [r0, r2]             @ claim: 1 << 5
    str r1, [r7, #4]
    ldr r1, [r0, r2]             @ already claimed: 0
    str r1, [r7, #8]
    ldr r1, [r0, #0x5C]          @ SPINLOCK_ST
    str r1, [r7, #12]
    str r1, [r0, r2]             @ any write releases
    ldr r1, [r0, #0x5C]
    str r1, [r7, #16]
    ldr r1, [r0, r2]             @ claimable again
    str r1, [r7, #20]
    bkpt #0
"""


def test_cpuid_and_spinlock_claim_release(tmp_path):
    result, sim = run(tmp_path, SPINLOCKS)
    assert result.stop.ok, result.fault_report
    assert words(sim, 6) == [0, 1 << 5, 0, 1 << 5, 0, 1 << 5]


# The core 1 launch handshake of datasheet 2.8.2, with r0 = SIO: each word of `sequence` (six words, defined by the
# caller) pushed after draining our RX FIFO before a 0, the echo popped and compared (r5 restarts the sequence on a
# mismatch); branches to `launched` (the caller's) when all six were echoed.
LAUNCH_LOOP = r"""
    adr r4, sequence
    movs r5, #0
next:
    cmp r5, #6
    beq launched
    lsls r6, r5, #2
    ldr r1, [r4, r6]
    cmp r1, #0
    bne push
drain:
    ldr r2, [r0, #0x50]
    lsls r2, r2, #31             @ VLD
    beq drained
    ldr r2, [r0, #0x58]
    b drain
drained:
    sev
push:
    ldr r2, [r0, #0x50]
    lsls r2, r2, #30             @ RDY
    bpl push
    str r1, [r0, #0x54]
    sev
pop:
    ldr r2, [r0, #0x50]
    lsls r2, r2, #31
    bne got
    wfe
    b pop
got:
    ldr r3, [r0, #0x58]
    adds r5, #1
    cmp r3, r1
    beq next
    movs r5, #0
    b next
"""


LAUNCH = r"""
reset:
    ldr r0, =0xD0000000
    ldr r7, =DATA
    ldr r1, [r0, #0x50]
    str r1, [r7, #0]             @ log[0] FIFO_ST at start: VLD (core 1's ROM sent 0) | RDY
    ldr r1, [r0, #0x58]          @ pop it
    ldr r1, [r0, #0x58]          @ pop an empty FIFO: ROE
    ldr r1, [r0, #0x50]
    str r1, [r7, #4]             @ log[1] = RDY | ROE
    movs r1, #0xFF
    str r1, [r0, #0x50]          @ clear WOF/ROE
    ldr r1, [r0, #0x50]
    str r1, [r7, #8]             @ log[2] = RDY
    @ the launch sequence (datasheet 2.8.2): each word pushed, the echo popped and compared
""" + LAUNCH_LOOP + r"""launched:
    @ core 1 left the ROM: nobody reads its FIFO now. 8 words fit, the 9th is dropped (WOF).
    movs r5, #9
fill:
    str r5, [r0, #0x54]
    subs r5, #1
    bne fill
    ldr r1, [r0, #0x50]
    str r1, [r7, #12]            @ log[3] = WOF (not RDY, not VLD)
    ldr r1, =NVIC_ISER
    ldr r2, =(1 << 15)
    str r2, [r1]                 @ SIO_IRQ_PROC0: WOF holds the line high
    cpsie i
    ldr r1, [r7, #20]
    str r1, [r7, #16]            @ log[4] = handler runs (1)
    bkpt #0
isr_irq15:
    ldr r0, =0xD0000000
    movs r1, #0xFF
    str r1, [r0, #0x50]          @ clear WOF: the line drops
    ldr r0, =DATA
    ldr r1, [r0, #20]
    adds r1, #1
    str r1, [r0, #20]
    bx lr
    .thumb_func
core1_entry:
    ldr r0, =0xD0000000
    ldr r1, [r0]                 @ CPUID on core 1
    adds r1, #10
    ldr r2, =DATA
    str r1, [r2, #24]            @ log[6] = 11
1:  wfe
    b 1b
    .ltorg
    .align 2
sequence:
    .word 0, 0, 1, 0x10000100, 0x20041000, core1_entry
"""


def test_fifo_flags_launch_handshake_overflow_and_irq(tmp_path):
    result, sim = run(tmp_path, LAUNCH)
    assert result.stop.ok, result.fault_report
    assert words(sim, 7) == [0b0011, 0b1010, 0b0010, 0b0100, 1, 1, 11]
    vtor, sp, entry = sim.core1_launch
    assert (vtor, sp) == (0x10000100, 0x20041000) and entry & 1
    assert len(sim.sio.shared.fifo[0]) == 8          # core 1 runs its own code now: nobody reads its FIFO


RESTARTED_LAUNCH = r"""
reset:
    ldr r7, =DATA
    ldr r0, =0xD0000000
    adr r4, sequence
    movs r5, #0
next:
    ldr r1, [r4, r5]
    cmp r1, #0
    bne send
drain:                           @ before a 0: empty our RX FIFO (the SDK's multicore_launch_core1 does the same)
    ldr r2, [r0, #0x50]
    lsrs r2, r2, #1
    bcc send
    ldr r2, [r0, #0x58]
    b drain
send:
    str r1, [r0, #0x54]          @ FIFO_WR
    sev
wait:
    ldr r2, [r0, #0x50]
    lsrs r2, r2, #1
    bcs got
    wfe
    b wait
got:
    ldr r2, [r0, #0x58]
    str r2, [r7, r5]             @ log[i] = core 1's answer to sequence[i]
    adds r5, #4
    cmp r5, #40
    bne next
1:  ldr r1, [r7, #64]            @ core 1 writes log[16] once it runs its own code
    cmp r1, #0
    beq 1b
    bkpt #0
    .thumb_func
core1_entry:
    ldr r0, =0xD0000000
    ldr r1, [r0]
    adds r1, #10
    ldr r2, =DATA
    str r1, [r2, #64]
1:  wfe
    b 1b
    .ltorg
    .align 2
sequence:                        @ a restart after VTOR (a 0 where SP was due), then the whole sequence
    .word 0, 0, 1, 0x10000100, 0, 0, 1, 0x10000100, 0x20041000, core1_entry
"""


@pytest.mark.parametrize("model", [False, True], ids=["rom", "python-model"])
def test_launch_through_the_rom_restarts_and_launches_like_the_model(tmp_path, model):
    """Core 1 runs our ROM's wait_for_vector (datasheet 2.8.2) on its own engine; a 0 in mid-sequence restarts it;
    every answer core 0 sees and the launch are those of the Python model (SimConfig(core1_model=True))."""
    result, sim = run(tmp_path, RESTARTED_LAUNCH, core1_model=model)
    assert result.stop.ok, result.fault_report
    log = words(sim, 17)
    entry = sim.core1_launch[2]
    assert log[:10] == [0, 0, 1, 0x10000100, 0, 0, 1, 0x10000100, 0x20041000, entry] and log[16] == 11
    assert sim.core1_launch[:2] == (0x10000100, 0x20041000) and entry & 1
    # core 1's own code is 7 instructions and a wfe loop; through the ROM the handshake adds a few hundred
    assert (result.core1_instructions > 100) == (not model), result.core1_instructions


def test_an_official_bootrom_puts_the_python_model_in_core_1s_place():
    """--bootrom loads another ROM after construction: core 1 restarts with the model (which cannot run that ROM's
    code at our timing), and core 0 still finds exactly one 0 from core 1 in its FIFO."""
    from rp2040_sim.core import Rp2040, SimConfig
    from rp2040_sim import rom

    sim = Rp2040(SimConfig())
    assert sim.core1_in_rom is not None and sim.core1_bootrom is None
    assert list(sim.sio.shared.fifo[1]) == [0]
    other = bytearray(rom.image())
    other[-4:] = b"\x00\xbf\x00\xbf"           # any image that is not ours
    sim.load_rom(bytes(other))
    assert sim.core1_in_rom is None and sim.core1_bootrom is not None
    assert list(sim.sio.shared.fifo[1]) == [0] and list(sim.sio.shared.fifo[0]) == []
