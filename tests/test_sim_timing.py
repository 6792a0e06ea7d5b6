"""Instruction timings: small Thumb sequences assembled with arm-none-eabi-as, run from SRAM (no XIP effects),
exact cycle counts from the Cortex-M0+ TRM table (docs/EMULATOR.md). Every sequence ends in `bkpt #0`, which we
charge 1 cycle."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rp2040_sim.clock import Clock

from tests.conftest import require_tool

BKPT = 1


@pytest.fixture(autouse=True)
def _toolchain():
    require_tool("arm-none-eabi-as")


def cycles_of(tmp_path, body: str, regs=None):
    from rp2040_sim import asm
    sim, stop = asm.run_snippet(body + "\n    bkpt #0\n    .ltorg\n", tmp_path, regs=regs)
    assert stop.kind == "halt", stop
    return sim.state.cycles - BKPT, sim


CASES = [
    # (name, code, expected cycles)
    ("alu", "movs r0, #1\n adds r0, #2\n lsls r0, r0, #3\n eors r0, r0\n mvns r1, r0\n cmp r0, r1", 6),
    ("extend_rev", "sxtb r0, r1\n uxth r0, r1\n rev r0, r1", 3),
    ("muls_fast_multiplier", "movs r0, #3\n muls r0, r0", 2),
    ("ldr_str_sram", "ldr r0, =0x20001000\n str r1, [r0]\n ldr r2, [r0]\n ldrb r3, [r0, #1]", 2 + 2 + 2 + 2),
    ("ldr_sio_single_cycle", "ldr r0, =0xD0000000\n ldr r1, [r0]\n str r1, [r0, #0x10]", 2 + 1 + 1),
    ("ldr_str_apb", "ldr r0, =0x40054000\n ldr r1, [r0, #0x28]\n str r1, [r0, #0x30]", 2 + 3 + 4),
    ("push_pop", "push {r4, r5, r6, r7, lr}\n pop {r4, r5, r6, r7}\n pop {r0}", (1 + 5) + (1 + 4) + (1 + 1)),
    ("stm_ldm", "ldr r0, =0x20001000\n stmia r0!, {r1, r2, r3}\n subs r0, #12\n ldmia r0!, {r1, r2}",
     2 + 4 + 1 + 3),
    ("b_unconditional", "b 1f\n nop\n1: nop", 2 + 1),
    ("bcond_taken", "movs r0, #0\n cmp r0, #0\n beq 1f\n nop\n1: nop", 1 + 1 + 2 + 1),
    ("bcond_not_taken", "movs r0, #1\n cmp r0, #0\n beq 1f\n nop\n1: nop", 1 + 1 + 1 + 1 + 1),
    ("bl_bx", "bl 1f\n b 2f\n1: bx lr\n2: nop", 3 + 2 + 2 + 1),
    ("pop_pc", "bl 1f\n b 2f\n1: push {r4, lr}\n pop {r4, pc}\n2: nop", 3 + 3 + (3 + 2) + 2 + 1),
    ("mov_pc", "adr r0, 1f\n adds r0, #1\n mov pc, r0\n nop\n .align 2\n1: nop", 1 + 1 + 2 + 1),
    ("msr_mrs_barriers", "mrs r0, msp\n msr msp, r0\n dsb\n dmb\n isb", 3 * 5),
    ("loop", "movs r0, #10\n1: subs r0, #1\n bne 1b", 1 + 10 * 1 + 9 * 2 + 1),
]


@pytest.mark.parametrize("name,code,expected", CASES, ids=[c[0] for c in CASES])
def test_instruction_cycles(tmp_path, name, code, expected):
    got, _ = cycles_of(tmp_path, code)
    assert got == expected


def test_instruction_count(tmp_path):
    _, sim = cycles_of(tmp_path, "movs r0, #10\n1: subs r0, #1\n bne 1b")
    assert sim.state.instructions == 1 + 2 * 10 + 1


def test_cycle_counts_are_deterministic(tmp_path):
    code = "\n".join(["ldr r0, =0x20001000", "movs r1, #200", "1: ldr r2, [r0]", "adds r2, r1",
                      "str r2, [r0]", "subs r1, #1", "bne 1b"])
    runs = {cycles_of(tmp_path, code)[0] for _ in range(3)}
    assert runs == {2 + 1 + 200 * (2 + 1 + 2 + 1) + 199 * 2 + 1}


def test_decoder_table_directly():
    from rp2040_sim import native
    # push {r4-r7, lr} = 0xB5F0; pop {r4-r7, pc} = 0xBDF0; b<cond> ends with a conditional branch
    assert native.decode_cost(bytes.fromhex("f0b5")) == (6, 1, False)
    assert native.decode_cost(bytes.fromhex("f0bd")) == (8, 1, False)
    assert native.decode_cost(bytes.fromhex("00bf00d0")) == (2, 2, True)
    # BL is one 32-bit instruction of 3 cycles
    assert native.decode_cost(bytes.fromhex("00f000f8")) == (3, 1, False)


@given(st.integers(0, 10**9), st.sampled_from([6_500_000, 12_000_000, 48_000_000, 125_000_000, 133_333_333]),
       st.integers(0, 10**10))
def test_clock_cycle_at_ps_is_the_first_count_reaching_that_time(start, hz, wait_ps):
    """Clock.cycle_at_ps (the flash chip's BUSY deadline as cycles.c compares it) against stepping now_ps itself."""
    now = [0]
    clock = Clock(lambda: now[0])
    now[0] = start
    clock.set_sys_hz(hz)                      # integrated at the ROSC up to `start`, a remainder carried
    target = clock.now_ps() + wait_ps
    k = clock.cycle_at_ps(target)
    if wait_ps == 0:
        assert k == 0
        return
    assert k > start
    now[0] = k - 1
    assert clock.now_ps() < target
    now[0] = k
    assert clock.now_ps() >= target
