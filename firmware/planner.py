"""Activation memory planner: every intermediate buffer of a network placed in one SRAM arena by lifetime.

The firmware runs the layer table in order (runtime/network.c). Step i reads the output of step i - 1 and writes its
own output; the last step writes `pz_output`, outside the arena. Step 0 reads `pz_input`, which is pinned at offset
0 of the arena (the firmware defines the symbol there) and live during step 0 only: raw pixels are dead once the
first layer has read them, so later buffers reuse their bytes.
A buffer is live from the step that writes it to the step that reads it; a step's scratch only during that step, and
so is its weight staging buffer (weights copied from flash right before the step runs, docs/FIRMWARE.md "Weight
staging": the late layers of a conv net have small activations, so large weights fit beside them).
A step marked `in_place` (pools without before-padding, global average pooling, element-wise activations) writes
over its input, so its output is the same buffer with a longer life. Flatten is not a step at all: the bytes of an
NHWC tensor already are its flattened vector.

Placement is greedy by size, as TensorFlow Lite Micro's greedy planner does: largest buffer first, each at the lowest
4-byte aligned offset that overlaps no already placed buffer whose lifetime intersects its own. `arena_bytes` (the
end of the highest buffer) is the activation RAM the firmware reserves, known before compiling; the emulator test
(tests/test_firmware_conv_build.py) checks that inference touches exactly that much of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 4


class PlanError(ValueError):
    """The activations cannot be placed (the message says which step and how many bytes)."""


@dataclass(frozen=True)
class Step:
    """One entry of the layer table as the planner sees it."""
    name: str                # for messages and the report, e.g. "layer 3 conv2d"
    out_bytes: int           # bytes of its output
    scratch_bytes: int = 0   # bytes it needs only while it runs
    in_place: bool = False   # may write its output over its input
    stage_bytes: int = 0     # bytes of weights staged into SRAM while it runs (0: none)


@dataclass
class Buffer:
    name: str
    size: int
    first: int  # first step during which it is live
    last: int   # last step during which it is live
    offset: int = -1


@dataclass
class Plan:
    arena_bytes: int
    buffers: list[Buffer]
    # step i: (input offset (0 = pz_input for step 0), output offset or None for pz_output, scratch offset or None)
    io: list[tuple[int | None, int | None, int | None]] = field(default_factory=list)
    stage: list[int | None] = field(default_factory=list)  # step i's staging buffer offset, or None

    def peak_live_bytes(self) -> int:
        """The most bytes live at once (a lower bound for any placement; the greedy plan may need a little more)."""
        steps = max((b.last for b in self.buffers), default=-1) + 1
        return max((sum(b.size for b in self.buffers if b.first <= s <= b.last) for s in range(steps)), default=0)


def aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(steps: list[Step], input_bytes: int) -> Plan:
    """Place pz_input (`input_bytes`, at offset 0), the outputs of steps 0 .. n-2 (step n-1 writes pz_output) and
    every scratch in one arena."""
    if not steps:
        raise PlanError("a network needs at least one layer")
    if input_bytes <= 0:
        raise PlanError(f"input of {input_bytes} bytes")
    pinned = Buffer("pz_input", aligned(input_bytes), 0, 0, offset=0)
    buffers: list[Buffer] = [pinned]
    out_of: list[Buffer | None] = []   # the buffer holding step i's output (None: pz_output)
    scratch_of: list[Buffer | None] = []
    stage_of: list[Buffer | None] = []
    for i, st in enumerate(steps):
        if st.out_bytes <= 0 or st.scratch_bytes < 0 or st.stage_bytes < 0:
            raise PlanError(f"step {i} ({st.name}): output of {st.out_bytes} bytes, scratch {st.scratch_bytes}, "
                            f"staged weights {st.stage_bytes}")
        last = i == len(steps) - 1
        prev = out_of[i - 1] if i else None
        if last:
            out = None
        elif st.in_place and prev is not None and prev.size >= aligned(st.out_bytes):
            prev.last = i + 1  # the same bytes, now also read by step i + 1
            out = prev
        else:
            out = Buffer(f"{st.name} output", aligned(st.out_bytes), i, i + 1)
            buffers.append(out)
        out_of.append(out)
        scratch = None
        if st.scratch_bytes:
            scratch = Buffer(f"{st.name} scratch", aligned(st.scratch_bytes), i, i)
            buffers.append(scratch)
        scratch_of.append(scratch)
        stage = None
        if st.stage_bytes:
            stage = Buffer(f"{st.name} staged weights", aligned(st.stage_bytes), i, i)
            buffers.append(stage)
        stage_of.append(stage)

    placed: list[Buffer] = [pinned]
    for b in sorted(buffers[1:], key=lambda b: (-b.size, b.first)):
        busy = sorted((p.offset, p.offset + p.size) for p in placed if p.first <= b.last and b.first <= p.last)
        offset = 0
        for start, end in busy:
            if offset + b.size <= start:
                break
            offset = max(offset, end)
        b.offset = offset
        placed.append(b)
    arena = max((b.offset + b.size for b in buffers), default=0)
    io = []
    for i in range(len(steps)):
        x = out_of[i - 1].offset if i else 0
        y = out_of[i].offset if out_of[i] is not None else None
        s = scratch_of[i].offset if scratch_of[i] is not None else None
        io.append((x, y, s))
    return Plan(arena, buffers, io, [b.offset if b is not None else None for b in stage_of])


def check_fits(plan_: Plan, other_ram: int, capacity: int, what: str) -> None:
    """Refuse a plan whose arena plus the rest of the RAM (`other_ram`: output, runtime static data, stack reserve)
    exceeds `capacity`, naming the largest buffer. (Weights are placed afterwards, in what is left.)"""
    need = plan_.arena_bytes + other_ram
    if need <= capacity:
        return
    largest = max(plan_.buffers, key=lambda b: b.size)
    raise PlanError(f"{what}: activations do not fit in SRAM: the arena needs {plan_.arena_bytes} bytes (largest "
                    f"buffer: {largest.name}, {largest.size} bytes) and the rest of the firmware {other_ram}, "
                    f"{need} in all, over the RP2040's {capacity} bytes by {need - capacity}; use a smaller input "
                    f"or fewer channels, or an int8 variant (python -m compress)")
