"""Overlapped outputs (firmware/planner.py, convgen.OVERLAP_LOOKBACK, docs/FIRMWARE.md "Overlapped outputs"): the
lead D a layer's output needs before its input, against a brute-force check of every byte; the planner's placement
rule with overlapped pairs; and the M0+ kernels in rp2040_sim: their real order of reads and writes keeps the
contract, and a layer run over its own input at the planned lead is bit-exact (at no lead it is not)."""

from __future__ import annotations

import numpy as np
import pytest

from compress import conv_layout
from conftest import require_tool
from firmware import convgen, planner
from rp2040_sim.kernel_harness import (HALT, STACK_TOP, ConvImage, conv_case, conv_packed, conv_rq,
                                       conv_weight_layout, prepared_sim, put_conv_layer)
from test_firmware_conv import q8_golden


def window_cells(rows: convgen.Rows) -> list[np.ndarray]:
    """The input byte offsets each output pixel (row-major) reads: every cell of its window inside the input, all
    channels (depthwise reads only channel c for output channel c, but each output pixel reads every channel)."""
    (h, w, c), (oh, ow, _) = rows.in_shape, rows.out_shape
    cells = []
    for oy in range(oh):
        for ox in range(ow):
            top, left = oy * rows.stride[0] - rows.pads[0], ox * rows.stride[1] - rows.pads[1]
            got = [(iy * w + ix) * c + ch for iy in range(top, top + rows.kernel[0])
                   for ix in range(left, left + rows.kernel[1]) if 0 <= iy < h and 0 <= ix < w for ch in range(c)]
            cells.append(np.array(got, np.int64))
    return cells


def last_reader(rows: convgen.Rows) -> np.ndarray:
    """For each input byte, the last output pixel whose window holds it (-1: none)."""
    last = np.full(int(np.prod(rows.in_shape)), -1)
    for q, cells in enumerate(window_cells(rows)):
        last[cells] = q
    return last


def read_lookbacks(trace, last: np.ndarray, out_c: int) -> list[int]:
    """For each input read of a kernel trace after its first output write: how far back the highest output pixel
    written so far reaches for it, written - last[off] + 1 (the lookback that read needs; <= 0: none)."""
    written, needs = -1, []
    for is_write, off in trace:
        if is_write:
            written = max(written, off // out_c)
        elif written >= 0:
            needs.append(written - int(last[off]) + 1)
    return needs


def least_lead(trace, out_bytes: int) -> int:
    """The least lead (bytes) a trace's order needs in place: every output byte written after the last read of the
    input byte under it."""
    first_write, last_read = {}, {}
    for time, (is_write, off) in enumerate(trace):
        (first_write.setdefault(off, time) if is_write else last_read.__setitem__(off, time))
    return next(d for d in range(0, out_bytes + 1)
                if all(first_write[o] > last_read.get(o - d, -1) for o in first_write))


def lead_is_safe(rows: convgen.Rows, lookback: int, lead: int) -> bool:
    """Brute force: with the output `lead` bytes before the input, no byte of output pixel p is an input byte that a
    pixel the kernel may still read after writing p (p - lookback + 1 or later) needs."""
    last, oc = last_reader(rows), rows.out_shape[2]
    for p in range(rows.out_shape[0] * rows.out_shape[1]):
        hit = np.arange(p * oc, (p + 1) * oc) - lead       # input bytes under output pixel p
        hit = hit[(hit >= 0) & (hit < last.size)]
        if np.any(last[hit] >= p - lookback + 1):
            return False
    return True


def random_rows(rng) -> convgen.Rows:
    depthwise = bool(rng.integers(0, 2))
    kernel = (1, 1) if rng.random() < 0.3 else tuple(int(k) for k in rng.integers(1, 4, 2))
    stride = tuple(int(s) for s in rng.integers(1, 3, 2))
    padding = str(rng.choice(["same", "valid"]))
    h, w = (int(v) for v in rng.integers(max(kernel), 8, 2))
    c = int(rng.integers(1, 6))
    oc = c if depthwise else int(rng.integers(1, 12))
    (oh, pt), (ow, pl) = (conv_layout.window(h, kernel[0], stride[0], padding),
                          conv_layout.window(w, kernel[1], stride[1], padding))
    return convgen.Rows("depthwise_conv2d" if depthwise else "conv2d", (h, w, c), (oh, ow, oc), kernel, stride,
                        (pt, pl))


def test_overlap_lead_is_the_least_safe_lead():
    rng = np.random.default_rng(0)
    for _ in range(150):
        rows = random_rows(rng)
        lookback = int(rng.integers(1, 10))
        lead = rows.overlap_lead(lookback)
        assert lead_is_safe(rows, lookback, lead), rows
        assert not lead_is_safe(rows, lookback, lead - 1), rows
    # "row": one output row of pixels
    rows = random_rows(np.random.default_rng(1))
    assert rows.overlap_lead("row") == rows.overlap_lead(rows.out_shape[1])


def test_overlap_leads_of_pd_mobilenet_shapes():
    """The expanding 1x1 conv from 8 to 16 channels at 48x48 overlaps all but 64 bytes of its input (8 pixels of 8
    channels of slack): 36,928 bytes for both instead of 55,296; a stride-2 depthwise output starts one output row
    (24 pixels of 16 channels) before its input."""
    expand = convgen.Rows("conv2d", (48, 48, 8), (48, 48, 16), (1, 1), (1, 1), (0, 0))
    assert expand.overlap_lead(8) == 48 * 48 * 8 + 8 * 8
    shrink = convgen.Rows("depthwise_conv2d", (48, 48, 16), (24, 24, 16), (3, 3), (2, 2), (0, 0))
    assert shrink.overlap_lead("row") == 24 * 16


# -- the planner --------------------------------------------------------------------------------------------------------
def test_planner_overlaps_an_expanding_output_with_its_input():
    steps = [planner.Step("a", 100), planner.Step("expand", 200, overlap=108), planner.Step("c", 4)]
    plan = planner.plan(steps, input_bytes=100)
    # expand's output at 0, a's (its input) 108 bytes in: 208 instead of 300
    assert plan.io[1] == (108, 0, None)
    assert plan.arena_bytes == 208 == plan.peak_live_bytes()
    assert plan.overlapped() == [1]
    apart = planner.plan([planner.Step("a", 100), planner.Step("expand", 200), planner.Step("c", 4)], 100)
    assert apart.arena_bytes == 300 and apart.overlapped() == []


def test_planner_places_a_shrinking_output_below_its_input():
    """pd_mobilenet's peak: an expanding layer, then a shrinking one whose output must start below its input.
    Largest first puts the expanding output at 0 and leaves no room below it (252 bytes); the order outward from the
    peak step places the shrinking output first (220)."""
    steps = [planner.Step("s0", 100), planner.Step("expand", 200, overlap=108),
             planner.Step("shrink", 50, overlap=12), planner.Step("next", 100, overlap=60), planner.Step("end", 4)]
    plan = planner.plan(steps, input_bytes=16)
    assert [io[1] for io in plan.io] == [120, 12, 0, 52, None]
    assert plan.arena_bytes == 220 and plan.peak_live_bytes() == 212
    assert plan.overlapped() == [1, 2]


def test_planner_keeps_overlapped_pairs_apart_by_their_lead():
    rng = np.random.default_rng(0)
    for _ in range(100):
        steps = [planner.Step(f"s{i}", int(rng.integers(1, 500)), int(rng.integers(0, 3)) * 16,
                              bool(rng.integers(0, 4) == 0), int(rng.integers(0, 3)) * 100,
                              int(rng.integers(0, 600)) if rng.integers(0, 2) else None)
                 for i in range(int(rng.integers(1, 14)))]
        plan = planner.plan(steps, int(rng.integers(1, 300)))
        lead = {(id(out), id(inp)): d for _, out, inp, d in plan.overlaps}
        assert plan.buffers[0].name == "pz_input" and plan.buffers[0].offset == 0
        for a in plan.buffers:
            assert a.offset % planner.ALIGN == 0 and a.offset + a.size <= plan.arena_bytes
            for b in plan.buffers:
                if a is b or not (a.first <= b.last and b.first <= a.last):
                    continue
                if (id(a), id(b)) in lead:   # a overlaps its input b: it starts at least D before it, or is apart
                    assert a.offset + lead[id(a), id(b)] <= b.offset or b.offset + b.size <= a.offset
                elif (id(b), id(a)) not in lead:
                    assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
        assert plan.arena_bytes >= plan.peak_live_bytes()
        for step, out, inp, d in plan.overlaps:
            assert steps[step].overlap is not None and d == planner.aligned(steps[step].overlap) < out.size


def test_planner_refuses_a_negative_overlap():
    with pytest.raises(planner.PlanError, match=r"step 0 \(x\): .* overlap -4"):
        planner.plan([planner.Step("x", 8, overlap=-4), planner.Step("y", 4)], 4)


def test_only_whole_one_core_layers_overlap():
    """steps_of keeps a layer's overlap only when one core runs it in one pass."""
    rows = convgen.Rows("conv2d", (8, 8, 16), (8, 8, 32), (1, 1), (1, 1), (0, 0))
    op = convgen.Emitted(1, "conv2d", 1024, 2048, 2048, 16, False, 4096, 64, lambda *a: ("", ""), rows, 4096, 544,
                         rows.overlap_lead(8))
    last = convgen.Emitted(2, "dense", 2048, 2, 2, 0, False, 10, 1, lambda *a: ("", ""))
    assert convgen.steps_of([op, last], True, 1024)[0].overlap == op.overlap > 0
    assert convgen.steps_of([op, last], True, 1024, cores=2)[0].overlap is None        # split between the cores
    assert convgen.steps_of([op, last], True, 1024, staged={1: 32})[0].overlap == op.overlap  # one pass
    assert convgen.steps_of([op, last], True, 1024, staged={1: 16})[0].overlap is None  # two passes


# -- the M0+ kernels in rp2040_sim ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def m0(tmp_path_factory):
    require_tool("arm-none-eabi-gcc")
    return ConvImage.build(tmp_path_factory.mktemp("overlap_m0"))


def run_kernel(image: ConvImage, t: dict, fn: str, lead: int | None = None):
    """Call fn on layer t in rp2040_sim (as ConvImage.call). lead None: x and y apart, and the kernel's reads of x
    and writes of y in order, [(is_write, byte offset)]; else y starts `lead` bytes before x in one buffer. Returns
    (int8 outputs, trace)."""
    from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE

    sim, put = prepared_sim(image.flash)
    s = t["shape"]
    layout = "conv8" if t["depthwise"] else conv_weight_layout(t)  # the build's (pw16 for most pointwise layers)
    l_addr = put_conv_layer(put, t, layout, conv_packed(t, layout)[0], conv_rq(t, layout))
    x, n = t["xu"].tobytes(), s.out_h * s.out_w * s.out_c
    trace: list[tuple[bool, int]] = []
    if lead is None:
        x_addr, y_addr = put(x), put(bytes(n))
        sim.uc.hook_add(UC_HOOK_MEM_READ, lambda uc, acc, addr, size, v, _: trace.extend(
            (False, a - x_addr) for a in range(addr, addr + size)), None, x_addr, x_addr + len(x) - 1)
        sim.uc.hook_add(UC_HOOK_MEM_WRITE, lambda uc, acc, addr, size, v, _: trace.extend(
            (True, a - y_addr) for a in range(addr, addr + size)), None, y_addr, y_addr + n - 1)
    else:
        y_addr = put(bytes(lead + max(len(x), n) + 4))
        x_addr = y_addr + lead
        sim.write(x_addr, x)
    sim.set_regs(r0=l_addr, r1=x_addr, r2=y_addr, sp=STACK_TOP, lr=HALT | 1)
    stop = sim.run(image.elf.addr(fn), 1 << 30)
    assert stop.ok, stop
    y = np.frombuffer(sim.read(y_addr, n), np.int8).reshape(s.out_h, s.out_w, s.out_c)
    sim.close()
    return y, trace


KERNEL_CASES = [  # seed, h, w, c, k, kernel, stride, padding, depthwise, zero skipping
    (40, 6, 6, 8, 16, (1, 1), (1, 1), "same", False, False),   # pd_mobilenet's expanding 1x1
    (41, 4, 5, 8, 16, (1, 1), (1, 1), "same", False, True),    # the zero-skipping dot product
    (42, 3, 4, 40, 48, (1, 1), (1, 1), "same", False, False),  # > 32 outputs: the window re-read per 32
    (43, 5, 6, 8, 8, (3, 3), (1, 1), "same", False, False),    # interior runs + gathered borders
    (44, 9, 9, 1, 8, (3, 3), (2, 2), "same", False, False),    # the first layer: 1 channel, stride 2
    (45, 6, 7, 4, 12, (3, 3), (1, 1), "valid", False, False),
    (46, 6, 9, 8, 8, (3, 3), (1, 1), "same", True, False),     # depthwise: quads and a pair, border bands
    (47, 8, 8, 16, 16, (3, 3), (2, 2), "same", True, False),   # depthwise stride 2
    (48, 7, 11, 4, 4, (3, 3), (2, 2), "valid", True, False),
]


@pytest.mark.parametrize("seed,h,w,c,k,kernel,stride,padding,depthwise,zeros", KERNEL_CASES)
def test_m0_kernels_keep_the_overlap_contract(m0, seed, h, w, c, k, kernel, stride, padding, depthwise, zeros):
    """The kernel's reads and writes in rp2040_sim: once it has written output pixel p it reads only bytes of the
    windows of pixels p - OVERLAP_LOOKBACK + 1 on; run over its own input at the planned lead it is bit-exact."""
    rng = np.random.default_rng(seed)
    t = conv_case(rng, h, w, c, k, kernel, stride, padding, depthwise)
    if zeros:
        t["zp_in"] = -128
        t["xu"] = np.where(rng.random(t["xu"].shape) < 0.5, 0, t["xu"]).astype(np.uint8)
    s = t["shape"]
    rows = convgen.Rows("depthwise_conv2d" if depthwise else "conv2d", (h, w, c), (s.out_h, s.out_w, s.out_c),
                        kernel, stride, (s.pad_top, s.pad_left))
    lookback = convgen.OVERLAP_LOOKBACK[rows.kind]
    back = s.out_w if lookback == "row" else lookback
    fn = "pz_dwconv2d_q8_m0" if depthwise else "pz_conv2d_q8_m0"
    want = q8_golden(t)

    y, trace = run_kernel(m0, t, fn)
    np.testing.assert_array_equal(y, want)
    needs = read_lookbacks(trace, last_reader(rows), s.out_c)
    assert needs and max(needs) <= back, max(needs, default=None)
    least = least_lead(trace, s.out_h * s.out_w * s.out_c)
    lead = planner.aligned(rows.overlap_lead(lookback))
    assert least <= lead
    np.testing.assert_array_equal(run_kernel(m0, t, fn, lead)[0], want)
    if least > 0:   # the test can fail: over the input with no lead the outputs are wrong
        assert not np.array_equal(run_kernel(m0, t, fn, 0)[0], want)
