"""ARMv6-M exceptions for one Cortex-M0+ core: the NVIC's state, priorities, exception entry and return.

Unicorn does not model the M-profile NVIC: its core runs in thread mode throughout. The emulator takes an
exception itself, between translated blocks: the run stops (at a cycle deadline, after an MMIO access that pends
an interrupt, after a CPSIE/MSR while one is pending, at SVC), `Exceptions.enter` stacks the frame and jumps to the
vector, and the handler's `bx lr` / `pop {pc}` to EXC_RETURN (0xFFFFFFxx) arrives as a fetch from that unmapped
address, which `Exceptions.exit` turns into the unstacking (ARMv6-M ARM B1.5.6-B1.5.8).

Exception numbers (datasheet 2.3.2, ARMv6-M ARM B1.5.2): 11 SVCall, 14 PendSV, 15 SysTick, 16 + n = IRQ n.
Priorities are 2 bits (0 highest .. 3); an exception preempts when its priority is numerically lower than the
execution priority (that of the active exceptions, or 4 in thread mode; PRIMASK masks them all). Ties go to the
lower exception number.
"""

from __future__ import annotations

from unicorn import UcError
from unicorn import arm_const as arm

SVCALL, PENDSV, SYSTICK, IRQ0 = 11, 14, 15, 16
NUM_IRQS = 32
THREAD_PRIORITY = 4                    # execution priority with nothing active (lower than every exception)
# EXC_RETURN values (ARMv6-M ARM B1.5.8).
EXC_RETURN_HANDLER, EXC_RETURN_THREAD_MSP, EXC_RETURN_THREAD_PSP = 0xFFFFFFF1, 0xFFFFFFF9, 0xFFFFFFFD
EXC_RETURN_MIN = 0xFFFFFFF0
XPSR_T, XPSR_ALIGN, XPSR_FLAGS, XPSR_IPSR = 1 << 24, 1 << 9, 0xF0000000, 0x3F
CONTROL_SPSEL = 1 << 1
# Cycle costs. Entry: 15 cycles, the Cortex-M0+ TRM's interrupt latency with zero-wait-state memory (ARM DDI0484C
# 3.6.1; rp2040.md). Return: the TRM gives no figure; CHOICE: 11 = the POP {8 registers incl. PC} the unstacking
# is (3 + N with N = 8, the same rule as POP {.., pc} in the cycle table), on top of the 2 of the BX/POP itself.
ENTRY_CYCLES = 15
RETURN_CYCLES = 11
FRAME_WORDS = 8                        # r0-r3, r12, lr, return address, xPSR


class ExceptionFault(Exception):
    """An exception the chip would turn into a HardFault or lockup; the run stops with this message."""

    def __init__(self, kind: str, detail: str, address: int | None = None):
        super().__init__(detail)
        self.kind, self.detail, self.address = kind, detail, address


class Exceptions:
    """NVIC + SCB exception state of one core, and entry/return on its Unicorn engine."""

    def __init__(self, sim):
        self.sim = sim
        self.enabled = 0               # NVIC_ISER
        self.pending = 0               # latched pending IRQs (ISPR, or a line that rose)
        self.lines = 0                 # IRQ input levels from the peripherals (sim.set_irq)
        self.ipr = [0] * 8             # NVIC_IPR0..7, bits 7:6 of each byte
        self.shpr2 = 0                 # SVCall priority in 31:30
        self.shpr3 = 0                 # PendSV 23:22, SysTick 31:30
        self.pendsv = False
        self.systick = False
        self.active: list[int] = []    # active exceptions, innermost last
        self.taken = 0                 # exceptions entered (for reports and tests)

    # -- state ------------------------------------------------------------------------------------------------
    def irq_pending_bits(self) -> int:
        """ISPR as read: latched pending, plus asserted lines whose exception is not active (level-sensitive)."""
        active_irqs = 0
        for n in self.active:
            if n >= IRQ0:
                active_irqs |= 1 << (n - IRQ0)
        return (self.pending | (self.lines & ~active_irqs)) & 0xFFFFFFFF

    def priority(self, n: int) -> int:
        if n == SVCALL:
            return self.shpr2 >> 30
        if n == PENDSV:
            return (self.shpr3 >> 22) & 3
        if n == SYSTICK:
            return self.shpr3 >> 30
        irq = n - IRQ0
        return (self.ipr[irq // 4] >> (8 * (irq % 4) + 6)) & 3

    def execution_priority(self) -> int:
        return min((self.priority(n) for n in self.active), default=THREAD_PRIORITY)

    def best_pending(self) -> int | None:
        """The enabled pending exception that would be taken next, by priority then number."""
        best, best_prio = None, THREAD_PRIORITY
        for n in self._pending_numbers():
            p = self.priority(n)
            if p < best_prio:
                best, best_prio = n, p
        return best

    def _pending_numbers(self):
        if self.pendsv:
            yield PENDSV
        if self.systick:
            yield SYSTICK
        bits = self.irq_pending_bits() & self.enabled
        while bits:
            low = bits & -bits
            yield IRQ0 + low.bit_length() - 1
            bits ^= low

    def preempting(self) -> int | None:
        """The pending exception that preempts the current execution priority, PRIMASK aside (wakes WFI)."""
        n = self.best_pending()
        if n is not None and self.priority(n) < self.execution_priority():
            return n
        return None

    def primask(self) -> int:
        return self.sim.uc.reg_read(arm.UC_ARM_REG_PRIMASK) & 1

    def takeable(self) -> int | None:
        n = self.preempting()
        return n if n is not None and not self.primask() else None

    def set_pending(self, n: int, value: bool = True):
        if n == PENDSV:
            self.pendsv = value
        elif n == SYSTICK:
            self.systick = value
        elif n >= IRQ0:
            bit = 1 << (n - IRQ0)
            self.pending = self.pending | bit if value else self.pending & ~bit

    # -- entry and return -------------------------------------------------------------------------------------
    def enter(self, n: int, return_pc: int):
        """Take exception n: stack the frame on the current stack, switch to handler mode, jump to the vector.
        The caller has settled the cycle count of the interrupted code; return_pc is where it resumes."""
        uc, sim = self.sim.uc, self.sim
        in_handler = bool(self.active)
        control = uc.reg_read(arm.UC_ARM_REG_CONTROL)
        on_psp = not in_handler and control & CONTROL_SPSEL
        sp = uc.reg_read(arm.UC_ARM_REG_SP)
        xpsr = (uc.reg_read(arm.UC_ARM_REG_XPSR) & XPSR_FLAGS) | XPSR_T | (self.active[-1] if in_handler else 0)
        frame = (sp - 4 * FRAME_WORDS) & 0xFFFFFFFF
        if frame & 4:                          # the frame is 8-byte aligned; the pad is recorded in xPSR bit 9
            frame -= 4
            xpsr |= XPSR_ALIGN
        limit = sim.state.stack_limit
        if limit and frame < limit and not on_psp:
            raise ExceptionFault("stack overflow", f"stacking exception {n}'s frame moved SP to 0x{frame:08x}, "
                                 f"below the stack limit 0x{limit:08x}", frame)
        regs = [uc.reg_read(r) for r in (arm.UC_ARM_REG_R0, arm.UC_ARM_REG_R1, arm.UC_ARM_REG_R2,
                                          arm.UC_ARM_REG_R3, arm.UC_ARM_REG_R12, arm.UC_ARM_REG_LR)]
        data = b"".join(v.to_bytes(4, "little") for v in (*regs, return_pc & ~1, xpsr))
        try:
            uc.mem_write(frame, data)
            vector = int.from_bytes(uc.mem_read((sim.ppb.vtor() + 4 * n) & 0xFFFFFFFF, 4), "little")
        except UcError:
            raise ExceptionFault("exception entry", f"cannot stack exception {n}'s frame at 0x{frame:08x} or read "
                                 f"its vector (HardFault, then lockup on the chip)", frame) from None
        if on_psp:
            uc.reg_write(arm.UC_ARM_REG_SP, frame)       # PSP
            uc.reg_write(arm.UC_ARM_REG_CONTROL, control & ~CONTROL_SPSEL)   # handler mode runs on MSP
            exc_return = EXC_RETURN_THREAD_PSP
        else:
            uc.reg_write(arm.UC_ARM_REG_SP, frame)
            exc_return = EXC_RETURN_HANDLER if in_handler else EXC_RETURN_THREAD_MSP
        uc.reg_write(arm.UC_ARM_REG_LR, exc_return)
        self.set_pending(n, False)
        self.active.append(n)
        # IPSR = the exception number, as `mrs rX, ipsr` reads it (the SDK's alarm pool finds its alarm from it).
        # Unicorn keeps its own exception machinery off: an EXC_RETURN branch is still the fetch from 0xFFFFFFFx
        # the run loop catches; set after the CONTROL write, whose SP swap Unicorn only does in thread mode.
        uc.reg_write(arm.UC_ARM_REG_IPSR, n)
        self.taken += 1
        sim.add_cycles(ENTRY_CYCLES)
        if not vector & 1:
            raise ExceptionFault("exception entry", f"vector {n} at 0x{sim.ppb.vtor() + 4 * n:08x} is 0x{vector:08x}, "
                                 f"not a Thumb address (bit 0 clear: HardFault on the chip)", vector)
        return vector & ~1

    def exit(self, exc_return: int) -> int:
        """The handler branched to EXC_RETURN: unstack and return the address the interrupted code resumes at."""
        uc, sim = self.sim.uc, self.sim
        if not self.active:
            raise ExceptionFault("unmapped fetch", f"branch to 0x{exc_return:08x} (an EXC_RETURN value) outside an "
                                 f"exception handler", exc_return)
        if exc_return not in (EXC_RETURN_HANDLER, EXC_RETURN_THREAD_MSP, EXC_RETURN_THREAD_PSP) or \
                (exc_return == EXC_RETURN_HANDLER) != (len(self.active) > 1):
            raise ExceptionFault("exception return", f"EXC_RETURN 0x{exc_return:08x} does not match the exception "
                                 f"stack {self.active} (HardFault on the chip)", exc_return)
        self.active.pop()
        uc.reg_write(arm.UC_ARM_REG_IPSR, self.active[-1] if self.active else 0)   # before CONTROL: see enter
        if exc_return == EXC_RETURN_THREAD_PSP:
            control = uc.reg_read(arm.UC_ARM_REG_CONTROL)
            uc.reg_write(arm.UC_ARM_REG_CONTROL, control | CONTROL_SPSEL)
        sp = uc.reg_read(arm.UC_ARM_REG_SP)
        try:
            data = bytes(uc.mem_read(sp, 4 * FRAME_WORDS))
        except UcError:
            raise ExceptionFault("exception return", f"cannot unstack the frame at 0x{sp:08x}", sp) from None
        words = [int.from_bytes(data[4 * i:4 * i + 4], "little") for i in range(FRAME_WORDS)]
        for reg, v in zip((arm.UC_ARM_REG_R0, arm.UC_ARM_REG_R1, arm.UC_ARM_REG_R2, arm.UC_ARM_REG_R3,
                           arm.UC_ARM_REG_R12, arm.UC_ARM_REG_LR), words):
            uc.reg_write(reg, v)
        xpsr = words[7]
        uc.reg_write(arm.UC_ARM_REG_APSR, xpsr & XPSR_FLAGS)
        uc.reg_write(arm.UC_ARM_REG_SP, sp + 4 * FRAME_WORDS + (4 if xpsr & XPSR_ALIGN else 0))
        sim.state.event_reg = 1                # an exception return sets the event register (datasheet 2.4.2.8.2)
        sim.add_cycles(RETURN_CYCLES)
        return words[6]
