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

Overlapped outputs: a step with `overlap` = D (int8 conv and 3x3 depthwise layers run on one core; the kernel
contract and D are firmware/convgen.py's `overlap_lead`) may write its output over its own input when the output
starts at least D bytes before it (out.offset + D <= in.offset): the kernel writes its output pixels in increasing
order, each below every input byte it has still to read. For the pair (output, input) of such a step the planner
then counts only the output's first min(D, size) bytes as in conflict with the input, e.g. a 1x1 conv from 8 to 16
channels needs 36,864 + 64 bytes for its 18,432-byte input and 36,864-byte output instead of 55,296.

Placement is greedy, as TensorFlow Lite Micro's greedy planner: buffers one by one, each at the lowest 4-byte aligned
offset that conflicts with no already placed buffer whose lifetime intersects its own. The order is largest first;
a chain of overlapped buffers also needs room below each input (a shrinking layer's output starts before its input),
so two other orders (ORDERS: outward from the step with the most live bytes, latest first) are tried too and the
smallest arena kept (the first order on a tie). `arena_bytes` (the end of the highest buffer) is the activation RAM the firmware reserves, known before
compiling; the emulator test (tests/test_firmware_conv_build.py) checks that inference touches exactly that much of
it.
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
    overlap: int | None = None  # D: its output may overlap its input if it starts >= D bytes before it; None: never


@dataclass
class Buffer:
    name: str
    size: int
    first: int  # first step during which it is live
    last: int   # last step during which it is live
    offset: int = -1
    activation: bool = True  # an input or output (False: a step's scratch or staged weights)


@dataclass
class Plan:
    arena_bytes: int
    buffers: list[Buffer]
    # step i: (input offset (0 = pz_input for step 0), output offset or None for pz_output, scratch offset or None)
    io: list[tuple[int | None, int | None, int | None]] = field(default_factory=list)
    stage: list[int | None] = field(default_factory=list)  # step i's staging buffer offset, or None
    # (step, output buffer, input buffer, D) of every step whose output may overlap its input (min(D, output size))
    overlaps: list[tuple[int, Buffer, Buffer, int]] = field(default_factory=list)

    def peak_live_bytes(self) -> int:
        """The most bytes live at once (a lower bound for any placement; the greedy plan may need a little more): an
        overlapped pair at its step counts max(output, input + D) bytes, the least its union can span."""
        return max(self._live(), default=0)

    def _live(self) -> list[int]:
        steps = max((b.last for b in self.buffers), default=-1) + 1
        live = [sum(b.size for b in self.buffers if b.first <= s <= b.last) for s in range(steps)]
        for step, out, inp, lead in self.overlaps:
            live[step] -= out.size + inp.size - max(out.size, inp.size + lead)
        return live

    def peak_step(self) -> int:
        """The step with the most live bytes (peak_live_bytes), the first of equals."""
        live = self._live()
        return max(range(len(live)), key=lambda s: (live[s], -s), default=0)

    def overlapped(self) -> list[int]:
        """The steps whose output buffer, as placed, shares bytes with their input buffer."""
        return [step for step, out, inp, _ in self.overlaps
                if out.offset < inp.offset + inp.size and inp.offset < out.offset + out.size]


def aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(steps: list[Step], input_bytes: int) -> Plan:
    """Place pz_input (`input_bytes`, at offset 0), the outputs of steps 0 .. n-2 (step n-1 writes pz_output) and
    every scratch in one arena."""
    if not steps:
        raise PlanError("a network needs at least one layer")
    if input_bytes <= 0:
        raise PlanError(f"input of {input_bytes} bytes")
    overlaps: list[tuple[int, Buffer, Buffer, int]] = []
    pinned = Buffer("pz_input", aligned(input_bytes), 0, 0, offset=0)
    buffers: list[Buffer] = [pinned]
    out_of: list[Buffer | None] = []   # the buffer holding step i's output (None: pz_output)
    scratch_of: list[Buffer | None] = []
    stage_of: list[Buffer | None] = []
    for i, st in enumerate(steps):
        if st.out_bytes <= 0 or st.scratch_bytes < 0 or st.stage_bytes < 0 or (st.overlap or 0) < 0:
            raise PlanError(f"step {i} ({st.name}): output of {st.out_bytes} bytes, scratch {st.scratch_bytes}, "
                            f"staged weights {st.stage_bytes}, overlap {st.overlap}")
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
            src = prev if i else pinned
            if st.overlap is not None and aligned(st.overlap) < out.size:
                overlaps.append((i, out, src, aligned(st.overlap)))
        out_of.append(out)
        scratch = None
        if st.scratch_bytes:
            scratch = Buffer(f"{st.name} scratch", aligned(st.scratch_bytes), i, i, activation=False)
            buffers.append(scratch)
        scratch_of.append(scratch)
        stage = None
        if st.stage_bytes:
            stage = Buffer(f"{st.name} staged weights", aligned(st.stage_bytes), i, i, activation=False)
            buffers.append(stage)
        stage_of.append(stage)

    lead = {(id(out), id(inp)): d for _, out, inp, d in overlaps}
    peak = Plan(0, buffers, overlaps=overlaps).peak_step()
    best = None
    for order in ORDERS:
        offsets = _place(pinned, sorted(buffers[1:], key=lambda b: order(b, peak)), lead)
        arena = max(offsets.get(id(b), 0) + b.size for b in buffers)
        if best is None or arena < best[0]:
            best = arena, offsets
    arena, offsets = best
    for b in buffers[1:]:
        b.offset = offsets[id(b)]
    io = []
    for i in range(len(steps)):
        x = out_of[i - 1].offset if i else 0
        y = out_of[i].offset if out_of[i] is not None else None
        s = scratch_of[i].offset if scratch_of[i] is not None else None
        io.append((x, y, s))
    return Plan(arena, buffers, io, [b.offset if b is not None else None for b in stage_of], overlaps)


def _from_the_peak(b: Buffer, peak: int) -> tuple:
    """Activations first: those live at the peak step, latest first, so that an overlapped output that starts
    below its input is placed before it; then the earlier ones, backwards; then the later ones, forwards; scratch and
    staged weights last, largest first, in the room left."""
    if not b.activation:
        return 3, -b.size
    if b.first <= peak <= b.last:
        return 0, -b.first, -b.size
    return (1, -b.first, -b.size) if b.last < peak else (2, b.first, -b.size)


# The greedy orders tried (sort keys of (buffer, peak step); on a tie the earlier order's plan is kept): largest first
# (TensorFlow Lite Micro's), outward from the step with the most live bytes (_from_the_peak), latest first.
ORDERS = (lambda b, peak: (-b.size, b.first), _from_the_peak, lambda b, peak: (-b.first, -b.size))


def _place(pinned: Buffer, order: list[Buffer], lead: dict[tuple[int, int], int]) -> dict[int, int]:
    """{id(buffer): offset} of the buffers placed greedily in `order` beside `pinned` (at its offset). Two buffers
    whose lifetimes intersect conflict where their extents intersect; the extent of a buffer is its size, except
    that an overlapped output (lead[(output, input)] = D) counts only its first D bytes against its input."""
    offset_of = {id(pinned): pinned.offset}
    placed = [pinned]
    for b in order:
        forbidden = []  # b.offset must not lie strictly inside any of these (lo, hi)
        for p in placed:
            if not (p.first <= b.last and b.first <= p.last):
                continue
            at = offset_of[id(p)]
            b_extent = lead.get((id(b), id(p)), b.size)
            p_extent = lead.get((id(p), id(b)), p.size)
            forbidden.append((at - b_extent, at + p_extent))
        forbidden.sort()
        offset, moved = 0, True
        while moved:  # the lowest aligned offset inside none of the intervals
            moved = False
            for lo, hi in forbidden:
                if lo < offset < hi:
                    offset, moved = aligned(hi), True
        offset_of[id(b)] = offset
        placed.append(b)
    return offset_of


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
