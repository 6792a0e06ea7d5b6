"""The int8 depthwise 3x3 kernel pz_dwconv2d_q8_m0 (firmware/kernels/dwconv_q8_m0.c) against the NumPy golden model.

Its paths: four pixels side by side at stride 1 or 2, or three at stride 1 (pz_q8_dw3x3_quad_m0 / quad2_m0,
triple_m0), two (pz_q8_dw3x3_pair_m0 / pair2_m0), one (pz_q8_dw3x3_acc_m0: the last of a row, strides >= 3), each
read in place or, where a window leaves the input, from a band copied with the padding cells. On the host the same
driver runs the plain C loops (every band and every grouping of pixels); in rp2040_sim the Thumb-1 loops, with a
hook that checks which loops ran. Shapes are drawn so that rows hold 1 to 14 outputs (every mix of groups), borders
on every side, 1 to 20 channels (C not a multiple of 4 takes the bytewise band copy).

With the build's one-multiply records (every layer compress writes; multipliers rounded as compress rounds them) the
groups of six, four and three (strides 1, 2) write their output bytes from the loop (pz_q8_dw3x3_hex_out_m0 /
hex2_out_m0, quad_out_m0 / quad2_out_m0, triple_out_m0 / triple2_out_m0), and runs of such groups read in place are
one call: the "fused" tests below (groupings, strides, borders, activations, the record stage's bound case, cycle
budgets). The tests above call the kernel without records, for the accumulator loops and pz_q8_requant_rec_m0."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_conv_requant import ACTS, bound_case, rounded, set_act
from test_firmware_conv import conv_case, host_conv_lib, q8_golden, run_q8
from test_planner_overlap import last_reader, least_lead, read_lookbacks, run_kernel

from firmware import convgen, planner
from rp2040_sim.kernel_harness import ConvImage, conv_records, conv_shape, timed_shifts

LOOPS = {"quad": "pz_q8_dw3x3_quad_m0", "quad2": "pz_q8_dw3x3_quad2_m0", "triple": "pz_q8_dw3x3_triple_m0",
         "pair": "pz_q8_dw3x3_pair_m0", "pair2": "pz_q8_dw3x3_pair2_m0", "one": "pz_q8_dw3x3_acc_m0"}
LOOP_OF = {fn: name for name, fn in LOOPS.items()}
# with the build's one-multiply records, groups of three, four and six pixels write their outputs from the loop itself
# the forms of the six-pixel loop that read a window in place though it leaves the input by a padding row above (t:
# kernel row 0 not run) or below (b: row 2) and / or a padding column at its left (l) or right (r): the bodies p, l, r
# of its row functions (labels NAME_p, NAME_l, NAME_r), and the functions for one group with both columns
HEX_BODIES = {"hex": ("hex", "p"), "hex_l": ("hex", "l"), "hex_r": ("hex", "r"), "hex_t": ("hex_t", "p"),
              "hex_tl": ("hex_t", "l"), "hex_tr": ("hex_t", "r"), "hex_b": ("hex_b", "p"), "hex_bl": ("hex_b", "l"),
              "hex_br": ("hex_b", "r"), "hex2": ("hex2", "p"), "hex2_r": ("hex2", "r"), "hex2_b": ("hex2_b", "p"),
              "hex2_br": ("hex2_b", "r"), "hex8": ("hex8", "p"), "hex8_l": ("hex8", "l"), "hex8_r": ("hex8", "r")}
FUSED = {"quad": "pz_q8_dw3x3_quad_out_m0", "quad2": "pz_q8_dw3x3_quad2_out_m0",
         "triple": "pz_q8_dw3x3_triple_out_m0", "triple2": "pz_q8_dw3x3_triple2_out_m0",
         **{name: f"pz_q8_dw3x3_{fn}_out_m0_{body}" for name, (fn, body) in HEX_BODIES.items()},
         **{f"hex_{v}": f"pz_q8_dw3x3_hex_{v}_out_m0" for v in ("lr", "tlr", "blr")},
         # the same forms of the three-pixel loops (functions of their own)
         **{f"triple_{v}": f"pz_q8_dw3x3_triple_{v}_out_m0" for v in ("r", "lr", "tr", "tlr", "br", "blr")},
         **{f"triple2_{v}": f"pz_q8_dw3x3_triple2_{v}_out_m0" for v in ("r", "br")},
         # a layer whose output is one 3x3 tile: channel by channel over the whole tile, one call
         "tile": "pz_q8_dw3x3_tile_out_m0", "tile2": "pz_q8_dw3x3_tile2_out_m0"}
LOOP_OF.update({fn: name + "+out" for name, fn in FUSED.items()})


@pytest.fixture(scope="module")
def lib():
    return host_conv_lib("pz_dwconv")


@pytest.fixture(scope="module")
def m0(tmp_path_factory):
    return ConvImage.build(tmp_path_factory.mktemp("dw_m0"))


@st.composite
def dw_layer(draw, max_hw=16, max_c=20):
    padding = draw(st.sampled_from(["same", "valid"]))
    sh, sw = draw(st.integers(1, 3)), draw(st.sampled_from([1, 1, 2, 2, 3]))
    h = draw(st.integers(3 if padding == "valid" else 1, max_hw))
    w = draw(st.integers(3 if padding == "valid" else 1, max_hw))
    c = draw(st.integers(1, max_c))
    edge = draw(st.sampled_from([None, None, None, "max", "tiny", "shifts"]))
    return h, w, c, (sh, sw), padding, edge


@settings(max_examples=150, deadline=None)
@given(layer=dw_layer(), seed=st.integers(0, 2**32 - 1), out_xor=st.sampled_from([0, 0x80]))
def test_dwconv_host_equals_numpy_golden(lib, layer, seed, out_xor):
    h, w, c, stride, padding, edge = layer
    t = conv_case(np.random.default_rng(seed), h, w, c, c, (3, 3), stride, padding, True, edge)
    np.testing.assert_array_equal(run_q8(lib, t, "m0", out_xor), q8_golden(t))  # exact scratch + guard


def expected_loops(t):
    """The loops pz_dwconv2d_q8_m0 calls for layer t: each output row cut left to right into groups of 4 pixels
    (stride <= 2) and what is left, 1 to 3 (3 at stride 2 as 2 and 1) (the grouping written out here)."""
    s, loops, ox = t["shape"], set(), 0
    while ox < s.out_w:
        n = 1 if s.stride_w > 2 else min(s.out_w - ox, 4)
        if n == 3 and s.stride_w == 2:
            n = 2
        loops.add({4: "quad", 3: "triple", 2: "pair", 1: "one"}[n] + ("2" if n > 1 and s.stride_w == 2 else ""))
        ox += n
    return loops


@settings(max_examples=30, deadline=None)
@given(layer=dw_layer(max_hw=12, max_c=12), seed=st.integers(0, 2**32 - 1), out_xor=st.sampled_from([0, 0x80]))
def test_dwconv_m0_bit_exact_in_emulator(m0, layer, seed, out_xor):
    h, w, c, stride, padding, edge = layer
    t = conv_case(np.random.default_rng(seed), h, w, c, c, (3, 3), stride, padding, True, edge)
    run, entered = m0.call_entering(t, "pz_dwconv2d_q8_m0", LOOPS.values(), out_xor, records=False)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert {LOOP_OF[fn] for fn in entered} == expected_loops(t)


@st.composite
def dw_any_layer(draw):
    """(h, w, C, kernel, stride, padding) of a depthwise layer whose kernel is not 3x3 (dwconv_q8_m0.c dw_any_kernel,
    up to 64 taps; larger ones run the reference), C across a run of 32 channels."""
    kernel = draw(st.tuples(st.integers(1, 9), st.integers(1, 9)).filter(lambda k: k != (3, 3)))
    padding = draw(st.sampled_from(["same", "valid"]))
    lo = kernel if padding == "valid" else (1, 1)
    h, w = draw(st.integers(lo[0], lo[0] + 6)), draw(st.integers(lo[1], lo[1] + 6))
    return h, w, draw(st.integers(1, 40)), kernel, draw(st.tuples(st.integers(1, 3), st.integers(1, 3))), padding


@settings(max_examples=40, deadline=None)
@given(layer=dw_any_layer(), seed=st.integers(0, 2**32 - 1), records=st.booleans(), act=st.sampled_from(ACTS),
       out_xor=st.sampled_from([0, 0x80]))
def test_dwconv_any_kernel_size_bit_exact_in_emulator(m0, lib, layer, seed, records, act, out_xor):
    """Kernels other than 3x3 (5x5, 7x7, 1x4, ... and 9x9 past the 64 taps: the reference): windows inside the
    input and across its border (the Thumb-1 loop reads the padding cells from a buffer of pad bytes; the host
    build's C adds pad times the weights outside), every output stage, against the golden model."""
    h, w, c, kernel, stride, padding = layer
    rng = np.random.default_rng(seed)
    t = conv_case(rng, h, w, c, c, kernel, stride, padding, True)
    set_act(t, rng, act)
    if records:
        t["shift"] = timed_shifts(t["shift"])
        t = rounded(t)
    want = q8_golden(t)
    np.testing.assert_array_equal(m0.call(t, "pz_dwconv2d_q8_m0", out_xor, records=records).y, want)
    np.testing.assert_array_equal(run_q8(lib, t, "m0", out_xor), want)  # the host build (no records)


@pytest.mark.parametrize("h,w,c,stride,padding,loops", [
    (5, 14, 8, (1, 1), "same", {"quad", "pair"}),         # 3 quads (the first from a band), a pair (band)
    (4, 9, 12, (1, 1), "valid", {"quad", "triple"}),      # 7 outputs a row: a quad, a triple
    (6, 7, 20, (1, 1), "same", {"quad", "triple"}),       # C % 4 = 0: the word band copy
    (5, 5, 6, (1, 1), "same", {"quad", "one"}),           # 5 outputs a row
    (5, 7, 7, (2, 2), "same", {"quad2"}),                  # stride 2: 4 outputs a row from bands, bytewise (C = 7)
    (5, 13, 8, (2, 2), "valid", {"quad2", "pair2"}),       # stride 2: 6 outputs a row, in place
    (6, 6, 12, (2, 2), "same", {"pair2", "one"}),          # stride 2: 3 outputs a row, a pair and one
    (3, 3, 16, (1, 1), "same", {"triple"}),               # 3x3 input: every window leaves it
    (1, 1, 5, (1, 1), "same", {"one"}),                   # one pixel, all padding around
    (7, 8, 3, (3, 3), "same", {"one"}),                   # stride 3: one pixel at a time
])
def test_dwconv_m0_paths(m0, h, w, c, stride, padding, loops):
    t = conv_case(np.random.default_rng(h * 100 + w), h, w, c, c, (3, 3), stride, padding, True, "max")
    assert expected_loops(t) == loops
    for out_xor in (0, 0x80):
        run, entered = m0.call_entering(t, "pz_dwconv2d_q8_m0", LOOPS.values(), out_xor, records=False)
        np.testing.assert_array_equal(run.y, q8_golden(t))
        assert {LOOP_OF[fn] for fn in entered} == loops


# Cycles per MAC with the XIP cache warm and the shifts of real int8 conv layers (deterministic; the full table:
# `python benchmarks/conv_firmware.py kernels`). Fails when a change makes the depthwise kernel slower.
@pytest.mark.parametrize("h,w,c,stride,budget", [
    (12, 12, 16, (1, 1), 10.28),  # 3 quads a row (12.52 with the pair loop and gathered borders)
    (12, 12, 16, (2, 2), 11.46),  # stride 2: a quad and a pair a row (13.28)
    (6, 6, 32, (1, 1), 10.71),    # small: over half the pixels on the border, in bands (12.94)
])
def test_dwconv_m0_cycle_budgets(m0, h, w, c, stride, budget):
    t = conv_case(np.random.default_rng(7), h, w, c, c, (3, 3), stride, "same", True)
    t["shift"] = timed_shifts(t["shift"])  # 6..11
    run = m0.call(t, "pz_dwconv2d_q8_m0", warm=True)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert run.cycles / run.macs <= budget, run.cycles / run.macs


# -- the fused output stage: groups of three and four pixels with the build's one-multiply records ------------------
def expected_fused_loops(t):
    """The loops pz_dwconv2d_q8_m0 calls for layer t when it has records: each row cut left to right into groups of
    six pixels (strides 1, 2), then four, then what is left: three (stride 2 too), two, one; the groups of three,
    four and six write their outputs themselves (the grouping written out here). A group of six whose window leaves
    the input by at most one padding row above (t) or below (b) and one padding column at its left (l) and / or
    right (r) end takes the loop's form that reads it in place (stride 2: b and r only), else a band; a group of
    three likewise where it has a padding column at its right (stride 1: r, lr, tr, tlr, br, blr; 2: r, br). A
    layer whose output is one 3x3 tile, SAME, stride 1 over a 3x3 input or stride 2 over a 6x6 one, is one call of
    the tile loop instead."""
    s, loops = t["shape"], set()
    if (s.out_h, s.out_w, s.stride_h, s.stride_w, s.in_h, s.in_w, s.pad_top, s.pad_left) in (
            (3, 3, 1, 1, 3, 3, 1, 1), (3, 3, 2, 2, 6, 6, 0, 0)):
        return {"tile+out" if s.stride_w == 1 else "tile2+out"}
    for oy in range(s.out_h):
        iy0 = oy * s.stride_h - s.pad_top
        rows_in = iy0 >= 0 and iy0 + 3 <= s.in_h
        ox = 0
        while ox < s.out_w:
            left = s.out_w - ox
            n = 1 if s.stride_w > 2 else 6 if left >= 6 else 4 if left >= 4 else left
            name = {6: "hex", 4: "quad", 3: "triple", 2: "pair", 1: "one"}[n] + ("2" if n > 1 and s.stride_w == 2
                                                                                  else "")
            ix0, cols = ox * s.stride_w - s.pad_left, (n - 1) * s.stride_w + 3
            pl, pr = ix0 == -1, ix0 + cols == s.in_w + 1
            rows = "" if rows_in else "t" if iy0 == -1 and s.in_h >= 2 else "b" if iy0 >= 0 and iy0 + 2 == s.in_h \
                else None
            form = None if rows is None or ix0 + pl < 0 or ix0 + cols - pr > s.in_w else rows + "l" * pl + "r" * pr
            triples = ("", "r", "lr", "tr", "tlr", "br", "blr") if s.stride_w == 1 else ("", "r", "br")
            if n == 6 and form is not None and (s.stride_w == 1 or form in ("", "r", "b", "br")) or \
                    n == 3 and form in triples:
                if n == 6 and s.stride_w == 1 and s.in_c == 8 and form in ("", "l", "r"):
                    name = "hex8"  # C = 8 built in, all kernel rows, at most one padding column
                name += "_" + form if form else ""
            loops.add(name + "+out" if n >= 3 else name)
            ox += n
    return loops


def entering_all(m0, t, out_xor):
    return m0.call_entering(t, "pz_dwconv2d_q8_m0", [*LOOPS.values(), *FUSED.values()], out_xor)


def check_fused(m0, t, rng, act, out_xor):
    """Layer t with activation `act` and multipliers rounded as compress rounds them (so it has records: the build's
    path) in rp2040_sim: the golden model's outputs, through the loops expected_fused_loops names."""
    set_act(t, rng, act)
    t = rounded(t)
    assert conv_records(t) is not None
    run, entered = entering_all(m0, t, out_xor)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert {LOOP_OF[fn] for fn in entered} == expected_fused_loops(t)


@settings(max_examples=30, deadline=None)
@given(layer=dw_layer(max_hw=16, max_c=12), seed=st.integers(0, 2**32 - 1), act=st.sampled_from(ACTS),
       out_xor=st.sampled_from([0, 0x80]))
def test_dwconv_m0_fused_output_bit_exact_in_emulator(m0, layer, seed, act, out_xor):
    """Multipliers rounded as compress rounds them, so the layer gets records (the build's path for every depthwise
    layer compress writes): every grouping (rows of 1 to 16 outputs: runs of sixes read in place too), stride,
    border and activation against the golden model."""
    h, w, c, stride, padding, edge = layer
    rng = np.random.default_rng(seed)
    t = conv_case(rng, h, w, c, c, (3, 3), stride, padding, True, None if edge == "shifts" else edge)
    check_fused(m0, t, rng, act, out_xor)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), act=st.sampled_from(ACTS), out_xor=st.sampled_from([0, 0x80]),
       row=st.sampled_from([(1, 10, 2, {"hex_tl+out", "hex_bl+out", "quad+out"}),
                            (1, 9, 2, {"hex_tl+out", "hex_bl+out", "triple_tr+out", "triple_br+out"}),
                            (1, 3, 2, {"triple_tlr+out", "triple_blr+out"}),
                            (1, 12, 3, {"hex_tl+out", "hex_tr+out", "hex_l+out", "hex_r+out", "hex_bl+out",
                                        "hex_br+out"}),
                            (1, 6, 3, {"hex_tlr+out", "hex_lr+out", "hex_blr+out"}),
                            (2, 8, 2, {"quad2+out"}), (2, 12, 2, {"hex2_br+out"}), (2, 6, 2, {"triple2_br+out"}),
                            (1, 3, 3, {"tile+out"}), (2, 6, 6, {"tile2+out"}),
                            (2, 24, 4, {"hex2+out", "hex2_r+out", "hex2_b+out", "hex2_br+out"})]))
def test_dwconv_m0_fused_output_at_the_bound(m0, seed, act, out_xor, row):
    """test_conv_requant's bound case (zero weights: each channel's accumulator is its bias, drawn at L, L + 1,
    A - 1, A, at ties and at products up to 255.5 * 2^23; 23 channels) on rows that every fused loop takes (a six
    and a four or a three at stride 1, a six, a four or a three at stride 2, every form of the six-pixel loops): the
    fused stage's clamps, rounding and carry on every pixel of each group."""
    stride, w, h, loops = row
    t = bound_case(seed, act, True)
    t["shape"] = conv_shape(h, w, 23, (3, 3), (stride, stride), "same", 23)
    t["xu"] = np.random.default_rng(seed).integers(0, 256, (h, w, 23)).astype(np.uint8)
    run, entered = entering_all(m0, t, out_xor)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert {LOOP_OF[fn] for fn in entered} == loops


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), act=st.sampled_from(ACTS), out_xor=st.sampled_from([0, 0x80]))
def test_dwconv_m0_hex8_at_the_bound(m0, seed, act, out_xor):
    """The bound case's first 8 channels (its ties at m' = 1, products up to 255.5 * 2^23 and accumulators at
    +-floor((2^31 - 1) / m')) on rows of 18 (C = 8: the loop with C built in, bodies p, l and r)."""
    t = bound_case(seed, act, True)
    for key in ("w", "bias", "mult", "shift"):
        t[key] = np.ascontiguousarray(t[key][..., :8])
    t["shape"] = conv_shape(3, 18, 8, (3, 3), (1, 1), "same", 8)
    t["xu"] = np.random.default_rng(seed).integers(0, 256, (3, 18, 8)).astype(np.uint8)
    run, entered = entering_all(m0, t, out_xor)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert {"hex8+out", "hex8_l+out", "hex8_r+out"} <= {LOOP_OF[fn] for fn in entered}


@pytest.mark.parametrize("h,w,c,stride,padding,loops", [
    (4, 26, 8, (1, 1), "valid", {"hex8+out"}),               # 4 groups of six a row, in place: one call (C = 8)
    (4, 26, 9, (1, 1), "valid", {"hex+out"}),                # the same, C = 9: the general loop
    # SAME, stride 1: rows of 22 are a six with a padding column at its left, 2 sixes in place (C = 5), a quad from a
    # band; the first and last rows' sixes leave kernel row 0 / 2 out (t, b)
    (3, 22, 5, (1, 1), "same", {"hex+out", "hex_l+out", "hex_t+out", "hex_tl+out", "hex_b+out", "hex_bl+out",
                                "quad+out"}),
    (3, 11, 7, (1, 1), "valid", {"hex+out", "triple+out"}),  # rows of 9, in place
    (2, 9, 9, (1, 1), "same", {"hex_tl+out", "hex_bl+out", "triple_tr+out", "triple_br+out"}),  # 2 rows of 9
    (3, 7, 6, (1, 1), "same", {"hex_tl+out", "hex_l+out", "hex_bl+out", "one"}),  # rows of 7
    (5, 21, 4, (2, 2), "valid", {"hex2+out", "quad2+out"}),  # stride 2: rows of 10, in place
    # stride 2, SAME (pads below and right): 2 sixes in place in one call, one; the last row leaves kernel row 2 out
    (6, 26, 12, (2, 2), "same", {"hex2+out", "hex2_b+out", "one"}),
    (3, 29, 8, (2, 2), "valid", {"hex2+out", "pair2"}),      # stride 2: 2 sixes in place in one call, a pair
    (7, 19, 5, (2, 2), "valid", {"hex2+out", "triple2+out"}),  # stride 2: rows of 9, in place
    (8, 6, 16, (2, 2), "same", {"triple2_r+out", "triple2_br+out"}),  # stride 2: rows of 3, in place
    # every form of the six-pixel loops that reads a window leaving the input in place:
    (4, 12, 8, (1, 1), "same", {"hex_tl+out", "hex_tr+out", "hex8_l+out", "hex8_r+out", "hex_bl+out",
                                "hex_br+out"}),
    (4, 12, 7, (1, 1), "same", {"hex_tl+out", "hex_tr+out", "hex_l+out", "hex_r+out", "hex_bl+out", "hex_br+out"}),
    (3, 18, 8, (1, 1), "same", {"hex8+out", "hex8_l+out", "hex8_r+out", "hex_t+out", "hex_tl+out", "hex_tr+out",
                                "hex_b+out", "hex_bl+out", "hex_br+out"}),  # C = 8: a left, a middle, a right six
    (5, 6, 12, (1, 1), "same", {"hex_tlr+out", "hex_lr+out", "hex_blr+out"}),  # rows of 6 (pd_mobilenet's 6x6)
    (5, 18, 3, (1, 1), "same", {"hex+out", "hex_l+out", "hex_r+out", "hex_t+out", "hex_tl+out", "hex_tr+out",
                                "hex_b+out", "hex_bl+out", "hex_br+out"}),  # a left, a middle and a right six, C = 3
    (8, 12, 8, (2, 2), "same", {"hex2_r+out", "hex2_br+out"}),  # stride 2, even width: the right end
    (7, 24, 4, (2, 2), "same", {"hex2+out", "hex2_r+out", "hex2_b+out", "hex2_br+out"}),  # rows of 12
    (7, 13, 8, (2, 2), "same", {"hex2+out", "one"}),          # odd sizes pad above and left too: from bands
    (4, 9, 4, (1, 1), "same", {"hex_tl+out", "hex_l+out", "hex_bl+out", "triple_tr+out", "triple_r+out",
                               "triple_br+out"}),
    (5, 3, 16, (1, 1), "same", {"triple_tlr+out", "triple_lr+out", "triple_blr+out"}),  # rows of 3, in place
    (3, 3, 16, (1, 1), "same", {"tile+out"}),                # pd_mobilenet's 3x3 -> 3x3: one tile
    (6, 6, 16, (2, 2), "same", {"tile2+out"}),               # pd_mobilenet's 6x6 -> 3x3: one tile
    (5, 5, 8, (1, 1), "valid", {"triple+out"}),              # 3x3 outputs, not the tile's: rows of three
    (5, 5, 8, (2, 2), "same", {"triple2+out"}),              # odd size (padding above and left): bands
    (7, 7, 8, (2, 2), "valid", {"triple2+out"}),
    (9, 5, 8, (2, 2), "same", {"triple2+out"}),               # odd sizes: from bands
])
def test_dwconv_m0_fused_runs_of_groups(m0, h, w, c, stride, padding, loops):
    """Runs of groups of six read in place go to one fused call (pz_dw_out_t groups); every way a row starts and
    ends around them."""
    rng = np.random.default_rng(h * 100 + w)
    for act, out_xor in ((None, 0), ("relu", 0x80), ("relu6", 0)):
        t = conv_case(rng, h, w, c, c, (3, 3), stride, padding, True)
        set_act(t, rng, act)
        t = rounded(t)
        assert expected_fused_loops(t) == loops
        run, entered = entering_all(m0, t, out_xor)
        np.testing.assert_array_equal(run.y, q8_golden(t))
        assert {LOOP_OF[fn] for fn in entered} == loops


@pytest.mark.parametrize("h,w,c,stride,padding,fn,calls", [
    (24, 24, 32, (1, 1), "same", "hex", 1),   # the 22 middle rows in one call (the first, last: hex_t, hex_b)
    (10, 18, 8, (1, 1), "same", "hex8", 1),   # C = 8: the 8 middle rows
    (9, 14, 5, (1, 1), "valid", "hex", 1),    # all 7 rows of 12
    (12, 24, 4, (2, 2), "same", "hex2", 1),   # stride 2: rows 0..4 (the last: hex2_b)
    (8, 22, 5, (1, 1), "same", "hex", 6),     # rows of 22, three sixes and a quad: a call a row
    (8, 14, 8, (1, 1), "same", "hex8", 6),    # rows of 14 (two sixes, then a pair from a band): a call a row
])
def test_dwconv_m0_fused_rows_in_one_call(m0, h, w, c, stride, padding, fn, calls):
    """Where a layer's groups of six fill its rows, the rows with all kernel rows inside the input go to one call of
    the row function (pz_dw_out_t rows); bit-exact, and the calls counted at the function's entry."""
    rng = np.random.default_rng(h * 100 + w + c)
    entry, seen = m0.elf.addr(f"pz_q8_dw3x3_{fn}_out_m0") & ~1, []
    for act, out_xor in ((None, 0), ("relu6", 0x80)):
        t = conv_case(rng, h, w, c, c, (3, 3), stride, padding, True)
        set_act(t, rng, act)
        t = rounded(t)
        seen.clear()
        run = m0.call(t, "pz_dwconv2d_q8_m0", out_xor, hook=lambda addr, size: seen.append(addr) if addr == entry
                      else None)
        np.testing.assert_array_equal(run.y, q8_golden(t))
        assert len(seen) == calls


@pytest.mark.parametrize("h,w,c,stride,budget", [
    (12, 12, 16, (1, 1), 6.25),  # 2 fused sixes a row in place, edge forms (7.28 from bands, all kernel rows)
    (24, 24, 8, (1, 1), 5.85),   # C = 8: the loop with C built in, the middle rows in one call (5.78)
    (12, 12, 16, (2, 2), 6.75),  # a fused six a row in place, its right edge form (8.19 from a band)
    (6, 6, 32, (1, 1), 5.94),    # a fused six a row in place, both edges (7.02 from a band)
    (3, 3, 64, (1, 1), 6.03),    # one 3x3 tile (6.76 in three-pixel rows)
    (6, 6, 32, (2, 2), 6.81),    # one 3x3 tile at stride 2 (7.55 in three-pixel rows)
])
def test_dwconv_m0_fused_cycle_budgets(m0, h, w, c, stride, budget):
    """Cycles per MAC of the build's path (records), deterministic; the full table: `python
    benchmarks/conv_firmware.py kernels` ("rounded" column)."""
    t = conv_case(np.random.default_rng(7), h, w, c, c, (3, 3), stride, "same", True)
    t["shift"] = timed_shifts(t["shift"])  # 6..11
    t = rounded(t)
    run = m0.call(t, "pz_dwconv2d_q8_m0", warm=True)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert run.cycles / run.macs <= budget, run.cycles / run.macs


@pytest.mark.parametrize("h,w,c,stride,loops", [
    (5, 12, 8, (1, 1), {"hex_tl", "hex_tr", "hex8_l", "hex8_r", "hex_bl", "hex_br"}),
    (5, 12, 9, (1, 1), {"hex_tl", "hex_tr", "hex_l", "hex_r", "hex_bl", "hex_br"}),
    (4, 18, 8, (1, 1), {"hex8", "hex8_l", "hex8_r"}),
    (5, 6, 8, (1, 1), {"hex_tlr", "hex_lr", "hex_blr"}),
    (8, 12, 8, (2, 2), {"hex2_r", "hex2_br"}),
    (4, 9, 8, (1, 1), {"triple_tr", "triple_r", "triple_br"}),
    (5, 3, 16, (1, 1), {"triple_tlr", "triple_lr", "triple_blr"}),
    (8, 6, 8, (2, 2), {"triple2_r", "triple2_br"}),
])
def test_dwconv_m0_fused_edges_keep_the_overlap_contract(m0, h, w, c, stride, loops):
    """The six-pixel forms that read a window leaving the input in place keep the write order the planner relies
    on (convgen.OVERLAP_LOOKBACK "depthwise_conv2d": a row): after output pixel p is written only windows of pixels
    p - out_w + 1 on are read, and run over its own input at the planned lead the layer is bit-exact (the check of
    test_planner_overlap, on a layer with records, which that one's layers do not have)."""
    t = rounded(conv_case(np.random.default_rng(h * 100 + w), h, w, c, c, (3, 3), stride, "same", True))
    assert conv_records(t) is not None and {FUSED[loop] for loop in loops} <= entering_all(m0, t, 0)[1]
    s, want = t["shape"], q8_golden(t)
    rows = convgen.Rows("depthwise_conv2d", (h, w, c), (s.out_h, s.out_w, c), (3, 3), stride, (s.pad_top, s.pad_left))
    assert convgen.OVERLAP_LOOKBACK[rows.kind] == "row"
    y, trace = run_kernel(m0, t, "pz_dwconv2d_q8_m0")
    np.testing.assert_array_equal(y, want)
    assert max(read_lookbacks(trace, last_reader(rows), c), default=0) <= s.out_w
    lead = planner.aligned(rows.overlap_lead("row"))
    np.testing.assert_array_equal(run_kernel(m0, t, "pz_dwconv2d_q8_m0", lead)[0], want)


# -- tiny outputs: a layer whose output is one 3x3 tile runs channel by channel over it (pz_q8_dw3x3_tile_out_m0 /
# tile2_out_m0) ------------------------------------------------------------------------------------------------------
@st.composite
def tiny_layer(draw):
    """Outputs of 1..3 rows x 1..8 columns, strides 1 and 2, SAME and VALID, odd and even inputs (every input size
    that gives the output size), a third of them the tile loop's shapes (3x3 SAME over 3x3 at stride 1, 6x6 at 2)."""
    stride = draw(st.sampled_from([1, 2]))
    if draw(st.integers(0, 2)) == 0:
        return (3, 3) if stride == 1 else (6, 6), stride, "same"
    padding = draw(st.sampled_from(["same", "valid"]))
    oh, ow = draw(st.integers(1, 3)), draw(st.integers(1, 8))

    def size(o):  # SAME: ceil(n / s) = o; VALID: (n - 3) // s + 1 = o
        first = stride * (o - 1) + (1 if padding == "same" else 3)
        return draw(st.integers(first, first + stride - 1))
    return (size(oh), size(ow)), stride, padding


@settings(max_examples=40, deadline=None)
@given(layer=tiny_layer(), c=st.integers(1, 40), seed=st.integers(0, 2**32 - 1), act=st.sampled_from(ACTS),
       edge=st.sampled_from([None, None, "max", "tiny"]), out_xor=st.sampled_from([0, 0x80]))
def test_dwconv_m0_tiny_outputs_bit_exact_in_emulator(m0, layer, c, seed, act, edge, out_xor):
    """Layers with records (the build's path) whose outputs are at most 3 rows: the tile loop where its shape is
    (the padding rows and columns' taps left out and added to the bias as pad x their weights), the row groups
    elsewhere, against the golden model; saturation through "max" (the largest weights and inputs) and the
    activations."""
    (h, w), stride, padding = layer
    rng = np.random.default_rng(seed)
    t = conv_case(rng, h, w, c, c, (3, 3), (stride, stride), padding, True, edge)
    check_fused(m0, t, rng, act, out_xor)


def test_dwconv_m0_tile_only_with_records(m0):
    """Without records (older model directories) the tile's shapes keep the accumulator loops."""
    for h, stride, loops in ((3, 1, {"triple"}), (6, 2, {"pair2", "one"})):
        t = conv_case(np.random.default_rng(h), h, h, 8, 8, (3, 3), (stride, stride), "same", True)
        run, entered = m0.call_entering(t, "pz_dwconv2d_q8_m0", [*LOOPS.values(), *FUSED.values()], 0,
                                        records=False)
        np.testing.assert_array_equal(run.y, q8_golden(t))
        assert {LOOP_OF[fn] for fn in entered} == loops


@pytest.mark.parametrize("h,c,stride,loop", [(3, 12, (1, 1), "tile"), (6, 8, (2, 2), "tile2")])
def test_dwconv_m0_tile_keeps_its_overlap_contract(m0, h, c, stride, loop):
    """The tile loop writes channel by channel, so after its first output byte it still reads the other channels of
    every window of the tile: convgen gives these layers the lookback "tile" (convgen.depthwise_tile, the mirror of
    dw_tile: the output kept clear of the input). The trace shows that it needs more than one output row and at most
    the tile, and the least lead its order allows (bytes) is within the planned one; at the planned lead it is
    bit-exact, and where that least lead is not 0, in place it is not."""
    t = rounded(conv_case(np.random.default_rng(h * 10 + c), h, h, c, c, (3, 3), stride, "same", True))
    assert entering_all(m0, t, 0)[1] == {FUSED[loop]}
    s, want = t["shape"], q8_golden(t)
    rows = convgen.Rows("depthwise_conv2d", (h, h, c), (s.out_h, s.out_w, c), (3, 3), stride, (s.pad_top, s.pad_left))
    assert convgen.depthwise_tile(rows) and convgen.overlap_lookback(rows) == "tile"
    y, trace = run_kernel(m0, t, "pz_dwconv2d_q8_m0")
    np.testing.assert_array_equal(y, want)
    needed = max([0] + read_lookbacks(trace, last_reader(rows), c))
    assert s.out_w < needed <= s.out_h * s.out_w
    lead = planner.aligned(rows.overlap_lead("tile"))
    np.testing.assert_array_equal(run_kernel(m0, t, "pz_dwconv2d_q8_m0", lead)[0], want)
    least = least_lead(trace, s.out_h * s.out_w * c)
    assert least <= lead
    if least > 0:   # stride 1 (output as large as the input): in place the outputs are wrong
        assert not np.array_equal(run_kernel(m0, t, "pz_dwconv2d_q8_m0", 0)[0], want)


def test_depthwise_tile_mirrors_the_kernel():
    """convgen.depthwise_tile against the shapes the kernel's dw_tile takes (expected_fused_loops says which)."""
    for h, w, stride, padding in [(3, 3, 1, "same"), (6, 6, 2, "same"), (5, 5, 1, "valid"), (5, 5, 2, "same"),
                                  (7, 7, 2, "valid"), (3, 4, 1, "same"), (4, 3, 1, "same"), (6, 5, 2, "same"),
                                  (3, 3, 2, "same"), (1, 1, 1, "same")]:
        t = conv_case(np.random.default_rng(0), h, w, 4, 4, (3, 3), (stride, stride), padding, True)
        s = t["shape"]
        rows = convgen.Rows("depthwise_conv2d", (h, w, 4), (s.out_h, s.out_w, 4), (3, 3), (stride, stride),
                            (s.pad_top, s.pad_left))
        tile = expected_fused_loops(t) <= {"tile+out", "tile2+out"}
        assert convgen.depthwise_tile(rows) == tile, (h, w, stride, padding)
        assert (convgen.overlap_lookback(rows) == "tile") == tile


def test_build_runs_depthwise_kernels_other_than_3x3(tmp_path, mnist):
    """A 5x5 depthwise (SAME, stride 1) and a 1x7 one (VALID, stride 2) between convs, built for one and two cores
    (the two-core build splits the larger layers between the cores): bit-exact with the golden model in rp2040_sim,
    through dw_any_kernel."""
    from random_models import save_uniform_cnn
    from test_conv_pointwise import assert_builds_bit_exact

    from zoo import modeldir
    from zoo.nn import Conv2D, Dense, DepthwiseConv2D, GlobalAvgPool2D, Input, ReLU, Sequential

    spec = Sequential([Input(28, 28, 1), Conv2D(1, 12, 3, 2, "same"), ReLU(), DepthwiseConv2D(12, 5, 1, "same"),
                       ReLU(), DepthwiseConv2D(12, (1, 7), (2, 2), "valid"), Conv2D(12, 16, 1, 1, "same"), ReLU(),
                       GlobalAvgPool2D(), Dense(16, 10)])
    model = modeldir.load(save_uniform_cnn(tmp_path / "int8", spec, "dw5", mnist.x_test[:64], seed=0, scale=0.3))
    assert_builds_bit_exact(tmp_path / "int8", model, mnist, {cores: {"cores": cores} for cores in ("1", "2")})
