"""What tests/test_sim_inputs.py and benchmarks/hostile_inputs.py both start from (one copy): a small Thumb program
to build in two variants that differ only in their text, and the byte mutations of a file the mutation fuzzing
applies. Standard library only: hostile_inputs.py's workers import it from this checkout while they run the tools
of the tree under attack."""

from __future__ import annotations

PROGRAM = r"""
    .thumb_func
    .global reset
reset:
    ldr r0, =message
    bl work
    bkpt #0
    .thumb_func
    .global work
work:
    adds r0, #1
    bx lr
    .ltorg
    .space {pad}
    .section .rodata
message: .asciz "{text}"
"""

HEADER_BIAS = (64, 128)  # a write lands in the first 64 or 128 bytes (ELF and program headers, a UF2 block header)
MAX_WRITES = 8
TRUNCATE_FRACTION = 0.3


def program(text: str, pad: int = 0) -> str:
    """The program's assembly source: `text` as its message, `pad` bytes of code space after its literal pool (the
    layout is the same for every text of one length)."""
    return PROGRAM.replace("{text}", text).replace("{pad}", str(pad))


def mutate(original: bytes, rng) -> bytes:
    """A truncation (TRUNCATE_FRACTION of the cases) or 1..MAX_WRITES random bytes written, each in the first 64,
    the first 128 or any bytes. rng: a random.Random, or anything with its random/randrange/randint/choice (the
    hypothesis adapter in tests/test_sim_inputs.py), so the same cases come from a seed or a strategy."""
    data = bytearray(original)
    if rng.random() < TRUNCATE_FRACTION:
        return bytes(data[:rng.randrange(len(data))])
    for _ in range(rng.randint(1, MAX_WRITES)):
        hi = rng.choice([*HEADER_BIAS, len(data)])
        data[rng.randrange(min(hi, len(data)))] = rng.randrange(256)
    return bytes(data)
