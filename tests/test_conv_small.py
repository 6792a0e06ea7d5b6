"""The small-K path of the int8 conv2d kernel (firmware/kernels/conv_q8_m0.c, conv2d_small_k: K <= 32 outputs per
pixel, windows inside the input in batches of pixels, pz_q8_conv_px8*_m0 and pz_q8_requant_rec_px_m0) against the
NumPy golden model of tests/test_firmware_conv.py, in rp2040_sim and on the host build (the portable C of the same
algorithm). Shapes are drawn around what the batching depends on: 1..16 input channels (runs of 1..48 bytes: the
no-test loop for runs of at most 16 and the blocked one), K around the batch sizes (8, 16, 24, 32: 8, 8, 5, 4
pixels a batch), widths 1..19 (rows of several batches, a last short one), strides 1..3, same and valid padding
(border windows between batches), saturation, zero skipping and the one-multiply records."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from firmware.convgen import q8_conv2d_scratch_bytes
from rp2040_sim.kernel_harness import conv_case, conv_records, conv_shape, timed_shifts
from test_conv_pointwise import expected_loop as pointwise_loop
from test_conv_requant import rounded
from test_firmware_conv import lib, m0, q8_golden, run_q8  # noqa: F401  (fixtures)

FUSED = ["pz_q8_conv_px8r_m0", "pz_q8_conv_px8sr_m0", "pz_q8_conv_px8zr_m0", "pz_q8_conv_px8zsr_m0"]
BATCHED = FUSED + ["pz_q8_conv_px8s_m0", "pz_q8_conv_px8zs_m0"]
REC_BATCHED = "pz_q8_requant_rec_px_m0"


def batched_loop(t) -> str | None:
    """The batched loop conv_q8_m0.c's px8_for picks for a layer with K <= 32, or None (the per-pixel path): the
    output stage fused when the layer has records and K % 8 == 0 (the short-run loop for runs of at most 32 bytes),
    else the accumulator-storing loops for runs of at most 16 bytes only."""
    s = t["shape"]
    fused = conv_records(t) is not None and s.out_c % 8 == 0
    short = s.k_w * s.in_c <= (32 if fused else 16)
    if s.k_h == s.k_w == s.stride_h == s.stride_w == 1 and pointwise_loop(t):
        return None  # pwconv_q8_m0.c takes it (tests/test_conv_pointwise.py)
    if not (fused or short):
        return None
    zero = "z" if t["zp_in"] == -128 else ""
    return f"pz_q8_conv_px8{zero}{'s' if short else ''}{'r' if fused else ''}_m0"


@st.composite
def small_layer(draw, max_w=19):
    """(seed, h, w, C, K, kernel, stride, padding, edge, zero_input, records) of a layer for the small-K path."""
    padding = draw(st.sampled_from(["same", "valid"]))
    k = draw(st.sampled_from([1, 3]))
    kernel = (k, k) if draw(st.booleans()) else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.sampled_from([(1, 1), (2, 2), (1, 2), (3, 1)]))
    h = draw(st.integers(kernel[0] if padding == "valid" else 1, 6))
    w = draw(st.integers(kernel[1] if padding == "valid" else 1, max_w))
    c = draw(st.integers(1, 16))
    out_c = draw(st.sampled_from([1, 5, 8, 12, 16, 17, 24, 32]))
    edge = draw(st.sampled_from([None, None, None, "max", "tiny"]))
    return (draw(st.integers(0, 2**32 - 1)), h, w, c, out_c, kernel, stride, padding, edge, draw(st.booleans()),
            draw(st.booleans()))


def make_case(seed, h, w, c, k, kernel, stride, padding, edge, zero_input, records):
    rng = np.random.default_rng(seed)
    t = conv_case(rng, h, w, c, k, kernel, stride, padding, False, edge)
    if zero_input:  # zero point at the byte 0 (ReLU outputs, raw pixels): the zero-skipping loops, half zeros
        t["zp_in"] = -128
        t["xu"] = np.where(rng.random(t["xu"].shape) < 0.5, 0, t["xu"]).astype(np.uint8)
    if records and edge is None:  # multipliers as compress rounds them: the one-multiply output stage
        t["shift"] = timed_shifts(t["shift"])
        t = rounded(t)
    return t


@settings(max_examples=40, deadline=None)
@given(layer=small_layer())
def test_small_k_bit_exact_in_emulator(m0, layer):  # noqa: F811
    t = make_case(*layer)
    run, entered = m0.call_entering(t, "pz_conv2d_q8_m0", BATCHED, out_xor=0x80 if layer[0] & 1 else 0)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    s = t["shape"]
    interior = (s.in_h >= s.k_h and s.in_w >= s.k_w and s.pad_top == 0 and s.pad_left == 0)
    want = batched_loop(t)
    if interior:  # the top-left window lies inside the input: a batch ran, through the loop px8_for chose
        assert entered == ({want} if want else set()), entered


@settings(max_examples=60, deadline=None)
@given(layer=small_layer(max_w=24))
def test_small_k_host_build_bit_exact(lib, layer):  # noqa: F811
    t = make_case(*layer)
    np.testing.assert_array_equal(run_q8(lib, t, "m0", 0x80 if layer[0] & 1 else 0), q8_golden(t))


@pytest.mark.parametrize("h,w,c,k,kernel,stride,zero_input", [
    (9, 9, 1, 8, (3, 3), (2, 2), True),     # pd_mobilenet's first conv, raw pixels: short runs, zero skipping
    (5, 11, 1, 12, (3, 3), (1, 1), False),  # a first conv with K % 8 = 4: 4 unused accumulators a pixel
    (4, 10, 8, 16, (1, 1), (1, 1), True),   # pd_mobilenet's 8 -> 16 pointwise
    (5, 9, 8, 16, (3, 3), (1, 1), False),   # 3x3 at 8 channels: 24-byte runs, the blocked loop
    (3, 7, 16, 32, (1, 1), (1, 1), False),  # 16 -> 32 pointwise: 4 pixels a batch
    (3, 5, 3, 7, (1, 1), (1, 1), False),    # odd K and unaligned pixels (3 bytes)
    (5, 11, 12, 24, (2, 2), (1, 2), True),  # shared column sums of 2-row windows at stride 2, 5 pixels a batch
])
def test_small_k_batches_and_records_in_emulator(m0, h, w, c, k, kernel, stride, zero_input):  # noqa: F811
    """Shapes of the registry models' layers and around them, with records: the batched loop with the output stage
    fused (K a multiple of 8), or the batched loop and the batched one-multiply stage (K = 12, 7), and the outputs
    are the golden model's, with and without out_xor."""
    t = make_case(7 * h + w, h, w, c, k, kernel, stride, "same", None, zero_input, True)
    assert conv_records(t) is not None
    want = q8_golden(t)
    loop = batched_loop(t)
    expected = set() if loop is None else {loop} if loop in FUSED else {loop, REC_BATCHED}
    for out_xor in (0, 0x80):
        run, entered = m0.call_entering(t, "pz_conv2d_q8_m0", BATCHED + [REC_BATCHED], out_xor)
        np.testing.assert_array_equal(run.y, want)
        assert entered == expected, entered


XIP_WAY = 8192  # datasheet 2.6.3.1: 16 kB, 2 ways
PER_PIXEL_PATH = ["pz_q8_conv_dot8_m0", "pz_q8_conv_dot8z_m0", "pz_q8_requant_rec_m0", "sum_bytes", "gather",
                  "requant_init", "pz_conv2d_q8_m0"]


def test_code_placement_keeps_each_path_within_one_xip_way(m0):  # noqa: F811
    """conv_q8_m0.c's placement table: the per-pixel path's hot functions, and each batched loop with the small-K
    driver, lie within one 8 kB way of the XIP cache, so no cache set holds two of a path's lines (a GCC that
    renamed a function's section, e.g. a .constprop clone, would fall out of the table and fail here)."""
    from elftools.elf.elffile import ELFFile

    with open(m0.path, "rb") as f:
        symbols = {s.name: (s["st_value"] & ~1, s["st_size"]) for s in ELFFile(f).get_section_by_name(".symtab")
                   .iter_symbols() if s["st_info"]["type"] == "STT_FUNC" and s["st_size"]}

    def span(names):
        start = min(symbols[n][0] for n in names)
        return max(symbols[n][0] + symbols[n][1] for n in names) - start

    assert span(PER_PIXEL_PATH) < XIP_WAY, span(PER_PIXEL_PATH)
    for loop in BATCHED:
        assert span(["conv2d_small_k", "conv_pixels", loop]) < XIP_WAY, loop


# -- row bands: rows with border windows run from a band of k_h padded input rows in the scratch (band_pitch) --------
@settings(max_examples=200, deadline=None)
@given(layer=small_layer(max_w=40))
def test_scratch_bytes_mirrored_by_convgen(lib, layer):  # noqa: F811
    """firmware/convgen.py reserves what pz_conv_q8_scratch_bytes asks for (the window, or a row band)."""
    _, h, w, c, k, kernel, stride, padding = layer[:8]
    s = conv_shape(h, w, c, kernel, stride, padding, k)
    want = lib.pz_conv_q8_scratch_bytes(ctypes.byref(s), 0)
    got = q8_conv2d_scratch_bytes((h, w, c), (s.out_h, s.out_w, k), kernel, stride, (s.pad_top, s.pad_left))
    assert got == want


@settings(max_examples=60, deadline=None)
@given(layer=small_layer(max_w=24))
def test_band_stays_inside_the_scratch_host(lib, layer):  # noqa: F811
    """The host build with exactly pz_conv_q8_scratch_bytes of scratch and a guard after it (run_q8): the bands (and
    the gathered windows) never write past it, and the outputs are the golden model's."""
    t = make_case(*layer)
    np.testing.assert_array_equal(run_q8(lib, t, "m0"), q8_golden(t))


BAND_LOOPS = ["pz_q8_conv_px8sr_m0", "pz_q8_conv_px8zsr_m0"]
PER_PIXEL = ["pz_q8_conv_dot8_m0", "pz_q8_conv_dot8z_m0", "gather"]


@st.composite
def band_layer(draw):
    """A same-padded layer (windows crossing the border) with records and K a multiple of 8 whose runs k_w C are at
    most 32 bytes: the fused short-run loop."""
    kernel = draw(st.sampled_from([(3, 3), (3, 3), (2, 3), (3, 1), (1, 3)]))
    c = draw(st.integers(1, 32 // kernel[1]))
    stride = draw(st.sampled_from([(1, 1), (1, 1), (2, 2), (1, 2)]))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 17))
    k = draw(st.sampled_from([8, 16, 24, 32]))
    return (draw(st.integers(0, 2**32 - 1)), h, w, c, k, kernel, stride, "same", None, draw(st.booleans()), True)


@settings(max_examples=25, deadline=None)
@given(layer=band_layer())
def test_border_rows_run_batched_from_the_band_in_emulator(m0, layer):  # noqa: F811
    """Rows with border windows go through the batched fused loop from their band (no pixel through gather and the
    per-pixel dot product), bit-exact; the records' saturated outputs (act_min, act_max) included."""
    t = make_case(*layer)
    assume(conv_records(t) is not None)
    run, entered = m0.call_entering(t, "pz_conv2d_q8_m0", BAND_LOOPS + PER_PIXEL, out_xor=0x80 if layer[0] & 1 else 0)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    assert entered == {batched_loop(t)}, entered
