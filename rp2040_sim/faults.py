"""Turning a Stop into a report a firmware author can act on: kind, address, function and source line,
registers and a backtrace."""

from __future__ import annotations

from rp2040_sim.core import Stop
from rp2040_sim.memory import BOOT2_SIZE, BOOT2_SRAM_ADDR, region_name

BL_PREFIX_MASK, BL_PREFIX = 0xF800, 0xF000      # first halfword of BL (ARMv6-M ARM A6.7.13)
BLX_REG_MASK, BLX_REG = 0xFF87, 0x4780          # BLX Rm
MAX_FRAMES = 12
XPSR_T = 1 << 24                                # EPSR.T, the Thumb bit (ARMv6-M ARM B1.4.2)
RESET_VECTOR_ADDR = 0x10000104                  # word 1 of the vector table boot2 enters (datasheet 2.8.1)


def explain_state(sim, stop: Stop) -> Stop:
    """A branch to an even address clears EPSR.T; ARMv6-M has no ARM state, so the next instruction takes a
    HardFault (INVSTATE). Unicorn instead decodes the Thumb bytes there as ARM code and reports an invalid
    instruction, blaming correct code: say what really happened, and name the reset vector when it is the cause."""
    if stop.ok or stop.kind != "invalid instruction" or stop.regs.get("xpsr", XPSR_T) & XPSR_T:
        return stop
    cause = "a BX/BLX, POP {pc} or exception return to an even address"
    try:
        if sim.read_u32(RESET_VECTOR_ADDR) == stop.pc:
            cause = (f"the reset vector at 0x{RESET_VECTOR_ADDR:08x} is 0x{stop.pc:08x}, an even address, and boot2 "
                     f"branches to it with BX")
    except Exception:
        pass
    stop.kind = "invalid state"
    stop.detail = (f"the core left Thumb state at 0x{stop.pc:08x}: {cause}. The Cortex-M0+ runs Thumb code only, so "
                   f"the chip takes a HardFault (INVSTATE) here; the code at the target is not at fault. Thumb code "
                   f"addresses must be odd: set bit 0 (link with the function symbol, `.thumb_func`)")
    return stop


def where(sim, elf, addr: int) -> str:
    """'func+0xoff (file:line)' or the memory region when no symbol covers addr."""
    addr &= ~1
    if BOOT2_SRAM_ADDR <= addr < BOOT2_SRAM_ADDR + BOOT2_SIZE:
        return f"boot2 (copied to SRAM) +0x{addr - BOOT2_SRAM_ADDR:x}"
    if elf is None:
        return region_name(addr)
    name = elf.function_at(addr)
    if name is None:
        return f"{region_name(addr)} (no function symbol)"
    start = elf.symbols[name].addr
    line = elf.line_at(addr)
    return f"{name}+0x{addr - start:x}" + (f" ({line})" if line else "")


def _is_return_address(sim, elf, value: int) -> bool:
    if not value & 1 or elf is None or elf.function_at(value) is None:
        return False
    try:
        before = sim.read((value & ~1) - 4, 4)
    except Exception:
        return False
    hw1 = int.from_bytes(before[:2], "little")
    hw2 = int.from_bytes(before[2:], "little")
    return hw1 & BL_PREFIX_MASK == BL_PREFIX or hw2 & BLX_REG_MASK == BLX_REG


def backtrace(sim, elf, stop: Stop, stack_top: int | None) -> list[str]:
    """PC, then LR, then return addresses found on the stack (a heuristic scan: the M0+ code has no frame
    pointers; a word counts when it is odd, inside a function and right after a BL/BLX)."""
    frames = [where(sim, elf, stop.pc)]
    lr = stop.regs.get("lr", 0)
    if _is_return_address(sim, elf, lr):
        frames.append(where(sim, elf, lr - 1) + "  [lr]")
    sp = stop.regs.get("sp", 0)
    if stack_top and sp and sp < stack_top:
        try:
            words = sim.read(sp, stack_top - sp)
        except Exception:
            words = b""
        for i in range(0, len(words) - 3, 4):
            v = int.from_bytes(words[i:i + 4], "little")
            if v != lr and _is_return_address(sim, elf, v):
                frames.append(where(sim, elf, v - 1) + f"  [stack 0x{sp + i:08x}]")
            if len(frames) >= MAX_FRAMES:
                break
    return frames


def format_fault(sim, elf, stop: Stop, stack_top: int | None = None) -> str:
    lines = [f"FAULT: {stop.kind} at pc 0x{stop.pc:08x} in {where(sim, elf, stop.pc)}"]
    if stop.address is not None:
        lines.append(f"  address: 0x{stop.address:08x} ({region_name(stop.address)})")
    if stop.detail:
        lines.append(f"  {stop.detail}")
    r = stop.regs
    names = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "sp", "lr", "pc",
             "xpsr"]
    for k in range(0, len(names), 4):
        lines.append("  " + "  ".join(f"{n:>4}=0x{r.get(n, 0):08x}" for n in names[k:k + 4]))
    lines.append("  backtrace:")
    lines.extend(f"    #{i} {f}" for i, f in enumerate(backtrace(sim, elf, stop, stack_top)))
    return "\n".join(lines)
