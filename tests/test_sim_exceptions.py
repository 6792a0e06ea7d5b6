"""Exceptions and interrupts per ARMv6-M, in small firmware written here: NVIC + TIMER alarm, SysTick, SVC and
PendSV, PRIMASK, nesting by priority, stack alignment, WFI/WFE/SEV, and the entry/return cycle costs."""

import pytest

from rp2040_sim import asm, runner
from rp2040_sim.core import SimConfig
from rp2040_sim.exceptions import ENTRY_CYCLES, RETURN_CYCLES
from tests.conftest import require_tool

DATA = 0x20000000          # the tests' log words in SRAM (zero at reset)

HANDLERS = ["isr_nmi", "isr_hardfault"] + [None] * 7 + ["isr_svc", None, None, "isr_pendsv", "isr_systick"] + \
    [f"isr_irq{n}" for n in range(32)]

PRELUDE = r"""
    .equ DATA, 0x20000000
    .equ TIMER, 0x40054000
    .equ WD_TICK, 0x4005802C
    .equ NVIC_ISER, 0xE000E100
    .equ NVIC_ISPR, 0xE000E200
    .equ NVIC_IPR0, 0xE000E400
    .equ ICSR, 0xE000ED04
    .equ SHPR2, 0xE000ED1C
    .equ SHPR3, 0xE000ED20
    .equ SYST_CSR, 0xE000E010
    .thumb_func
unexpected:
    bkpt #0xfe
"""


def build(tmp_path, body: str):
    """An image whose vector table points every exception the body defines (isr_svc, isr_irq0, ...) at it
    and the rest at `unexpected` (bkpt #0xfe)."""
    defined = [h for h in HANDLERS if h and f"{h}:" in body]
    words = [h if h in defined else ("0" if h is None else "unexpected") for h in HANDLERS]
    vectors = '    .section .vectors, "a"\n' + "".join(f"    .word {w}\n" for w in words) + "    .text\n"
    source = vectors + PRELUDE + "    .thumb_func\n    .global reset\n" + body + "\n    .ltorg\n"
    for h in defined:            # handler addresses need the Thumb bit: mark each label as a Thumb function
        source = source.replace(f"\n{h}:", f"\n    .thumb_func\n{h}:")
    return asm.build_image(source, tmp_path)["uf2"]


def run(tmp_path, body: str, **config):
    result, sim = runner.run_image(build(tmp_path, body), SimConfig(**config))
    return result, sim


def words(sim, n: int) -> list[int]:
    return [sim.read_u32(DATA + 4 * i) for i in range(n)]


@pytest.fixture(autouse=True)
def _tools():
    require_tool(*asm.TOOLS)


TIMER_ALARM = r"""
reset:
    ldr r0, =WD_TICK
    ldr r1, =(1 << 9) | 12       @ watchdog tick enabled, 12 clk_ref cycles per us
    str r1, [r0]
    ldr r0, =TIMER
    movs r1, #1
    str r1, [r0, #0x38]          @ INTE: alarm 0
    ldr r2, =NVIC_ISER
    str r1, [r2]                 @ TIMER_IRQ_0
    ldr r3, [r0, #0x28]          @ TIMERAWL
    adds r3, #100
    ldr r5, =DATA
    str r3, [r5, #8]             @ the target time
    str r3, [r0, #0x10]          @ ALARM0 = now + 100 us
    cpsie i
1:  wfi
    ldr r4, [r5]
    cmp r4, #0
    beq 1b
    ldr r4, [r0, #0x20]          @ ARMED: the alarm disarmed itself
    str r4, [r5, #12]
    bkpt #0
isr_irq0:
    ldr r0, =TIMER
    movs r1, #1
    str r1, [r0, #0x34]          @ INTR: clear the alarm's interrupt
    ldr r1, [r0, #0x28]
    ldr r2, =DATA
    str r1, [r2, #4]             @ the time the handler saw
    ldr r1, [r2]
    adds r1, #1
    str r1, [r2]                 @ handler runs
    bx lr
"""


def test_timer_alarm_interrupt_wakes_wfi_and_skips_idle_time(tmp_path):
    result, sim = run(tmp_path, TIMER_ALARM)
    assert result.stop.ok, result.fault_report
    count, seen, target, armed = words(sim, 4)
    assert count == 1 and armed == 0
    # not before the alarm; the handler's first run fetches its code from flash (56-cycle line fills), ~16 us
    assert 0 <= seen - target <= 20
    # 100 us at 12 cycles per us (clk_sys = clk_ref after reset): most of it slept through, not emulated
    assert sim.sleep_cycles >= 100 * 12 - 100 and sim.exc.taken == 1
    again, _ = run(tmp_path / "again", TIMER_ALARM)
    assert again.cycles == result.cycles                 # deterministic


SYSTICK = r"""
reset:
    ldr r0, =SYST_CSR
    ldr r1, =999
    str r1, [r0, #4]             @ RVR: a period of 1000 cycles
    movs r1, #0
    str r1, [r0, #8]             @ CVR
    movs r1, #7
    str r1, [r0]                 @ ENABLE | TICKINT | CLKSOURCE
    cpsie i
    ldr r2, =20000
1:  subs r2, #1                  @ 4 cycles per iteration
    nop
    bne 1b
    movs r1, #0
    str r1, [r0]
    bkpt #0
isr_systick:
    ldr r2, =DATA
    ldr r3, [r2]
    adds r3, #1
    str r3, [r2]
    bx lr
"""


def test_systick_interrupt_counts_chip_cycles(tmp_path):
    result, sim = run(tmp_path, SYSTICK)
    assert result.stop.ok, result.fault_report
    ticks = words(sim, 1)[0]
    # ~80,000 cycles of loop plus the handlers' own cycles: one SysTick every 1000 cycles of all of them
    assert ticks == sim.exc.taken and abs(ticks - result.cycles // 1000) <= 1 and ticks >= 80


SVC_PENDSV = r"""
reset:
    ldr r0, =SHPR3
    ldr r1, =0xC0000000 | 0x00C00000    @ PendSV and SysTick at the lowest priority
    str r1, [r0]
    movs r0, #5
    svc #1
    ldr r5, =DATA
    str r0, [r5, #8]             @ r0 as the SVC handler changed it in the stacked frame
    bkpt #0
isr_svc:
    ldr r2, =DATA
    movs r3, #1
    str r3, [r2]                 @ log[0] = 1: SVC first
    ldr r0, [sp]                 @ the caller's r0 from the frame
    adds r0, #37
    str r0, [sp]                 @ becomes the caller's r0 after the return
    ldr r1, =ICSR
    ldr r3, =(1 << 28)
    str r3, [r1]                 @ PENDSVSET: lower priority, runs after this handler returns
    ldr r3, [r2, #4]
    str r3, [r2, #12]            @ log[3] = log[1] as seen inside SVC (0: PendSV has not run yet)
    bx lr
isr_pendsv:
    ldr r2, =DATA
    movs r3, #2
    str r3, [r2, #4]             @ log[1] = 2
    bx lr
"""


def test_svc_then_pendsv_by_priority_and_frame_return_value(tmp_path):
    result, sim = run(tmp_path, SVC_PENDSV)
    assert result.stop.ok, result.fault_report
    assert words(sim, 4) == [1, 2, 42, 0] and sim.exc.taken == 2 and not sim.exc.active


PRIMASK = r"""
reset:
    ldr r5, =DATA
    cpsid i
    ldr r0, =NVIC_ISER
    ldr r1, =(1 << 26)
    str r1, [r0]                 @ enable IRQ 26 (a spare line)
    ldr r0, =NVIC_ISPR
    str r1, [r0]                 @ and pend it: masked by PRIMASK
    ldr r2, [r5]
    str r2, [r5, #4]             @ log[1] = handler count while masked (0)
    wfi                          @ wakes (an interrupt is pending) but does not take it
    ldr r2, [r5]
    str r2, [r5, #8]             @ log[2] = still 0
    cpsie i                      @ taken right here
    ldr r2, [r5]
    str r2, [r5, #12]            @ log[3] = 1
    bkpt #0
isr_irq26:
    ldr r2, =DATA
    ldr r3, [r2]
    adds r3, #1
    str r3, [r2]
    bx lr
"""


def test_primask_masks_and_cpsie_takes_the_pending_interrupt(tmp_path):
    result, sim = run(tmp_path, PRIMASK)
    assert result.stop.ok, result.fault_report
    assert words(sim, 4) == [1, 0, 0, 1]


NESTED = r"""
reset:
    ldr r0, =NVIC_IPR0
    ldr r1, =0x000000C0          @ IRQ0 priority 3, IRQ1 priority 0
    str r1, [r0]
    ldr r0, =NVIC_ISER
    movs r1, #3
    str r1, [r0]
    mov r4, sp
    sub sp, #4                   @ SP not 8-byte aligned when the interrupt comes
    ldr r0, =NVIC_ISPR
    movs r1, #1
    str r1, [r0]                 @ pend IRQ0: taken at once (PRIMASK is 0 at reset)
    add sp, #4
    mov r0, sp
    subs r0, r4, r0
    ldr r5, =DATA
    str r0, [r5, #16]            @ log[4] = SP difference after the return (0)
    bkpt #0
isr_irq0:
    push {r4, lr}
    ldr r2, =DATA
    ldr r3, [r2]
    adds r3, #1
    str r3, [r2]                 @ log[0] = 1 on entry
    mov r3, sp
    str r3, [r2, #20]            @ log[5] = SP inside the handler
    ldr r0, =NVIC_ISPR
    movs r1, #2
    str r1, [r0]                 @ pend IRQ1: higher priority, preempts this handler
    ldr r3, [r2, #4]
    str r3, [r2, #8]             @ log[2] = log[1] seen after the preemption (1)
    pop {r4, pc}                 @ EXC_RETURN through POP
isr_irq1:
    ldr r2, =DATA
    movs r3, #1
    str r3, [r2, #4]             @ log[1] = 1
    mov r3, lr
    str r3, [r2, #12]            @ log[3] = EXC_RETURN of a nested exception (0xFFFFFFF1)
    bx lr
"""


def test_nested_preemption_by_priority_and_stack_alignment(tmp_path):
    result, sim = run(tmp_path, NESTED)
    assert result.stop.ok, result.fault_report
    log = words(sim, 6)
    assert log[:5] == [1, 1, 1, 0xFFFFFFF1, 0]
    stack_top = 0x20042000
    # frame of 8 words below SP - 4 (misaligned), padded to 8 bytes: 0x20041FFC - 32 - 4; then push {r4, lr}
    assert log[5] == stack_top - 4 - 32 - 4 - 8


SVC_COST = r"""
reset:
    svc #0
    bkpt #0
isr_svc:
    bx lr
"""


def test_entry_and_return_cycle_costs(tmp_path):
    with_svc, _ = run(tmp_path / "svc", SVC_COST)
    plain, _ = run(tmp_path / "plain", "reset:\n    nop\n    bkpt #0\nisr_svc:\n    bx lr\n")
    assert with_svc.stop.ok and plain.stop.ok
    # svc (1, like the nop it replaces) + entry + the handler's bx (2) + return
    assert with_svc.cycles - plain.cycles == ENTRY_CYCLES + 2 + RETURN_CYCLES


def test_wfi_with_nothing_to_wake_it_is_stuck(tmp_path):
    result, _ = run(tmp_path, "reset:\n    cpsie i\n    wfi\n    bkpt #0\n")
    assert result.stop.kind == "stuck" and "WFI" in result.stop.detail and result.cycles < 1000


SEV_WFE = r"""
reset:
    sev                          @ sets the event register
    wfe                          @ clears it and goes on
    ldr r5, =DATA
    movs r0, #1
    str r0, [r5]
    wfe                          @ nothing left to wake it
    bkpt #0
"""


def test_sev_then_wfe_returns_and_a_second_wfe_is_stuck(tmp_path):
    result, sim = run(tmp_path, SEV_WFE)
    assert result.stop.kind == "stuck" and "WFE" in result.stop.detail
    assert words(sim, 1) == [1]


def test_svc_with_primask_set_is_a_hardfault(tmp_path):
    result, _ = run(tmp_path, "reset:\n    cpsid i\n    svc #0\n    bkpt #0\nisr_svc:\n    bx lr\n")
    assert result.stop.kind == "exception" and "HardFault" in result.stop.detail


def test_exc_return_outside_a_handler_is_a_fault(tmp_path):
    result, _ = run(tmp_path, "reset:\n    ldr r0, =0xFFFFFFF9\n    bx r0\n")
    assert result.stop.kind == "unmapped fetch" and "outside an exception handler" in result.stop.detail


IDLE_LOOP = r"""
reset:
    ldr r0, =SYST_CSR
    ldr r1, =9999
    str r1, [r0, #4]             @ a SysTick every 10,000 cycles
    movs r1, #7
    str r1, [r0]
    cpsie i
1:  b 1b                         @ idle: skipped to each SysTick, never stuck
isr_systick:
    ldr r2, =DATA
    ldr r3, [r2]
    adds r3, #1
    str r3, [r2]
    cmp r3, #3
    bne 2f
    bkpt #0                      @ the third tick ends the run
2:  bx lr
"""


def test_branch_to_self_sleeps_until_the_next_interrupt(tmp_path):
    result, sim = run(tmp_path, IDLE_LOOP)
    assert result.stop.ok, result.fault_report
    assert words(sim, 1) == [3]
    assert 30_000 <= result.cycles < 31_000 and sim.sleep_cycles > 29_000


UART_IRQ = r"""
reset:
    ldr r0, =0x40034000          @ UART0
    ldr r1, =0x301
    str r1, [r0, #0x30]          @ UARTEN | TXE | RXE
    movs r1, #(1 << 5)
    str r1, [r0, #0x38]          @ IMSC: TX interrupt
    ldr r1, =NVIC_ISER
    ldr r2, =(1 << 20)
    str r2, [r1]                 @ UART0_IRQ
    adr r4, text
    ldr r7, =DATA
    str r4, [r7]                 @ the handler's next character
    cpsie i
    movs r1, #'>'
    str r1, [r0]                 @ the first byte by hand; TXRIS then sends the rest through the handler
1:  ldr r1, [r7, #4]
    cmp r1, #0
    beq 1b
    bkpt #0
isr_irq20:
    ldr r0, =0x40034000
    ldr r2, =DATA
    ldr r3, [r2]
    ldrb r1, [r3]
    cmp r1, #0
    beq 2f
    adds r3, #1
    str r3, [r2]
    str r1, [r0]                 @ UARTDR (TXRIS stays set: the FIFO drains at once)
    bx lr
2:  movs r1, #(1 << 5)
    str r1, [r0, #0x44]          @ ICR: done, clear TXRIS
    movs r1, #1
    str r1, [r2, #4]
    bx lr
    .align 2
text:
    .asciz "irq\n"
    .align 2
"""


def test_uart_tx_interrupt_drives_the_output(tmp_path):
    result, sim = run(tmp_path, UART_IRQ)
    assert result.stop.ok, result.fault_report
    assert result.uart == ">irq\n" and sim.exc.taken == 5


PSP_THREAD = r"""
reset:
    ldr r0, =0x20041C00
    msr psp, r0
    movs r0, #2
    msr control, r0              @ thread mode on the PSP
    isb
    svc #0
    mov r1, sp
    ldr r7, =DATA
    str r1, [r7, #8]             @ log[2] = SP after the return: the PSP again
    mrs r1, msp
    str r1, [r7, #12]            @ log[3] = MSP, back where it was
    bkpt #0
isr_svc:
    ldr r2, =DATA
    mov r3, sp
    str r3, [r2]                 @ log[0] = SP in the handler: the MSP
    mov r3, lr
    str r3, [r2, #4]             @ log[1] = EXC_RETURN to thread mode on the PSP
    bx lr
"""


def test_exception_from_thread_mode_on_psp_uses_msp_and_returns_to_psp(tmp_path):
    result, sim = run(tmp_path, PSP_THREAD)
    assert result.stop.ok, result.fault_report
    assert words(sim, 4) == [0x20042000, 0xFFFFFFFD, 0x20041C00, 0x20042000]


IPSR = r"""
reset:
    ldr r0, =NVIC_IPR0
    ldr r1, =0x00C00000          @ IRQ2 priority 3, IRQ5 priority 0
    str r1, [r0]
    ldr r0, =NVIC_ISER
    movs r1, #(1 << 2) | (1 << 5)
    str r1, [r0]
    ldr r0, =NVIC_ISPR
    movs r1, #(1 << 2)
    str r1, [r0]                 @ IRQ2 (exception 18) taken at once
    mrs r2, ipsr
    ldr r5, =DATA
    str r2, [r5, #12]            @ log[3] = IPSR back in thread mode (0)
    mrs r2, xpsr
    lsls r2, r2, #26
    str r2, [r5, #16]            @ log[4] = xPSR's exception field in thread mode (0)
    bkpt #0
isr_irq2:
    push {lr}
    ldr r2, =DATA
    mrs r3, ipsr
    str r3, [r2]                 @ log[0] = 18
    ldr r0, =NVIC_ISPR
    movs r1, #(1 << 5)
    str r1, [r0]                 @ IRQ5 (exception 21) preempts
    mrs r3, ipsr
    str r3, [r2, #8]             @ log[2] = 18 again after the nested return
    pop {pc}
isr_irq5:
    ldr r2, =DATA
    mrs r3, ipsr
    str r3, [r2, #4]             @ log[1] = 21
    bx lr
"""


def test_ipsr_reads_the_active_exception_number(tmp_path):
    # The pico-sdk's alarm pool finds which TIMER alarm fired from IPSR (__get_current_exception): a handler must
    # read its own exception number, the outer one after a nested return, and thread mode 0.
    result, sim = run(tmp_path, IPSR)
    assert result.stop.ok, result.fault_report
    assert words(sim, 5) == [16 + 2, 16 + 5, 16 + 2, 0, 0]
