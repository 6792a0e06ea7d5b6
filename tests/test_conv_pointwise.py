"""The pointwise int8 conv2d kernel (firmware/kernels/pwconv_q8_m0.c, pz_q8_pw*_m0: 1x1 stride-1 layers with the
build's one-multiply records and K a multiple of 8, dispatched from pz_conv2d_q8_m0) against the NumPy golden model
of tests/test_firmware_conv.py in rp2040_sim, and its pw16 layout (compress/conv_layout.py) against plain integers.
The layout is the build's (conv_layout.conv_weight_layout): pw16 (two MACs per MULS, C even) unless the input's zero
is the byte 0 (zero skipping, conv8) or a weight is -128 (conv8: the plain loop, C a multiple of 4 up to 1024).
Shapes are drawn around what the kernel depends on: C = 1..300 (the entry into its 32-byte unrolled block at byte
32 - C mod 32, an odd or even number of words for conv8's byte sum, C odd or C mod 4 != 0 for the other paths),
K = 1..300 (1..37 groups; other K keep conv_q8_m0.c's paths), 1..48 pixels, zero skipping or not, a -128 weight or
not, weights at +-127 with inputs at -128 / 127 (pw16's lanes at their bound), every activation, out_xor, records or
the older 31-bit multipliers (then the kernel must not run), the record stage at its bounds, saturating layers and
conv8's byte sum at its bound (C = 1024, every byte 255)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress import conv_layout
from rp2040_sim.kernel_harness import conv_case, conv_records, conv_shape, conv_weight_layout, timed_shifts
from test_conv_requant import bound_case, rounded
from test_firmware_conv import lib, m0, q8_golden  # noqa: F401  (fixtures)

PW16_BY_C = {c: f"pz_q8_pw16_c{c}_m0" for c in (8, 16)}  # pwconv_q8_m0.c's loops for one C each
LOOPS = ["pz_q8_pw_m0", "pz_q8_pwz_m0", "pz_q8_pw16_m0", *PW16_BY_C.values()]
ACTS = {None: lambda zp: (-128, 127), "relu": lambda zp: (zp, 127), "relu6": lambda zp: (zp, min(127, zp + 40))}


def expected_loop(t, x_skew: int = 0) -> str | None:
    """The loop pz_pwconv_q8_m0 runs for a pointwise layer whose input lies x_skew bytes past a word boundary, or None
    (conv_q8_m0.c's own paths)."""
    s = t["shape"]
    if conv_weight_layout(t) == "pw16":  # a C with its own loop reads the pixel by words: x aligned
        return PW16_BY_C.get(s.in_c, "pz_q8_pw16_m0") if x_skew % 4 == 0 else "pz_q8_pw16_m0"
    # K not a multiple of 8 runs in batches of whole groups through a buffer of PW_BATCH_BYTES
    too_wide = s.out_c % 8 and -(-s.out_c // 8) * 8 > conv_layout.PW_BATCH_BYTES
    if conv_records(t) is None or too_wide or s.in_c % 4 or s.in_c > 1024 or x_skew % 4:
        return None
    return "pz_q8_pwz_m0" if t["zp_in"] == -128 else "pz_q8_pw_m0"


def pointwise_case(seed, h, w, c, k, zero_input, records, act, shift_lo=3, edge=None):
    """A 1x1 layer: weights, input, zero points from conv_case; zero_input: zp_in = -128 and about half the input
    bytes 0 (ReLU outputs); records: multipliers rounded as compress rounds them (shifts shift_lo..shift_lo + 5);
    edge "minus128": one weight -128 (conv8 then), "bound": weights +-127 and input bytes 0 / 255 (x = -128 / 127),
    so pw16's lanes reach their bound |x_c w_c + x_c+1 w_c+1| = 32,512."""
    rng = np.random.default_rng(seed)
    t = conv_case(rng, h, w, c, k, (1, 1), (1, 1), "valid", False)
    t["act_min"], t["act_max"] = ACTS[act](t["zp_out"])
    if edge == "minus128":
        t["w"].flat[rng.integers(0, t["w"].size)] = -128
    elif edge == "bound":
        t["w"] = np.where(rng.random(t["w"].shape) < 0.5, 127, -127).astype(np.int8)
        t["xu"] = rng.choice(np.array([0, 255], np.uint8), t["xu"].shape)
    if zero_input:
        t["zp_in"] = -128
        t["xu"] = np.where(rng.random(t["xu"].shape) < 0.5, 0, t["xu"]).astype(np.uint8)
    if records:
        t["shift"] = timed_shifts(t["shift"], shift_lo)
        t = rounded(t)
    return t


def check(m0, t, out_xor, x_skew=0):  # noqa: F811
    run, entered = m0.call_entering(t, "pz_conv2d_q8_m0", LOOPS, out_xor, x_skew=x_skew)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    want = expected_loop(t, x_skew)
    assert entered == ({want} if want else set()), entered
    return run


@st.composite
def layer(draw):
    """(seed, h, w, C, K, zero_input, records, act, shift_lo, edge): at most ~40 k MACs, so a case runs in well under
    a second."""
    c = draw(st.one_of(st.integers(1, 75).map(lambda n: 4 * n), st.integers(1, 150).map(lambda n: 2 * n),
                       st.integers(1, 300)))
    k = draw(st.one_of(st.integers(1, 37).map(lambda g: 8 * g), st.integers(1, 300)))
    pixels = max(1, min(48, 40_000 // (c * k)))
    h = draw(st.integers(1, max(1, min(6, pixels))))
    w = draw(st.integers(1, max(1, min(8, pixels // h))))
    edge = draw(st.sampled_from([None, None, "minus128", "bound"]))
    return (draw(st.integers(0, 2**32 - 1)), h, w, c, k, draw(st.booleans()), draw(st.integers(0, 3)) > 0,
            draw(st.sampled_from(list(ACTS))), draw(st.integers(3, 16)) if edge == "bound" else 3, edge)


@settings(max_examples=100, deadline=None)
@given(case=layer(), out_xor=st.sampled_from([0, 0x80]))
def test_pointwise_bit_exact_in_emulator(m0, case, out_xor):  # noqa: F811
    check(m0, pointwise_case(*case), out_xor)


@pytest.mark.parametrize("c,k,shift_lo", [(2, 8, 12), (8, 16, 14), (16, 24, 15), (36, 24, 16), (34, 16, 16)])
def test_pw16_lanes_at_their_bound_in_emulator(m0, c, k, shift_lo):  # noqa: F811
    """Every weight +-127 and every input byte 0 or 255 (x = -128 or 127): each channel pair's low lane
    x_c w_c + x_c+1 w_c+1 reaches +-32,512 (or +-32,258) and the high lane likewise; a pixel of all x = -128 against
    a group's weights of one sign makes every pair's sum 32,512 at once. pw16, bit-exact."""
    t = pointwise_case(c + k, 2, 3, c, k, False, False, "relu6", edge="bound")
    t["w"][::2] = 127     # even output channels (the low lanes) +127, odd ones -127 on pixel 0's channels
    t["w"][1::2] = -127
    t["xu"][0, 0] = 0     # x = -128: low lanes -32,512 per pair, high lanes +32,512
    t["xu"][0, 1] = 255   # x = 127
    t["shift"] = timed_shifts(t["shift"], shift_lo)
    t = rounded(t)
    assert expected_loop(t) == PW16_BY_C.get(c, "pz_q8_pw16_m0")
    x = t["xu"].astype(np.int64) - 128
    lanes = x[0, 0, :2] @ t["w"][:, 0, 0, :2].T.astype(np.int64)   # the first pair of channels, as the loop sums it
    assert lanes.min() == -32512 and lanes.max() == 32512
    for out_xor in (0, 0x80):
        check(m0, t, out_xor)


@st.composite
def small_c_layer(draw):
    """(seed, h, w, C, K, zero_input, act, shift_lo, edge, x_skew) around the loops for one C each: C = 8 and 16 and
    the even C next to them (6, 10, 14, 18, and 24, the next multiple of 8: the block loop), K in groups of 8 or not
    (conv_q8_m0.c), "flat" = act_min = act_max (every output saturated at both bounds), the input at every offset
    from a word (unaligned: the block loop)."""
    c = draw(st.one_of(st.sampled_from(sorted(PW16_BY_C)), st.sampled_from([6, 10, 14, 18, 24])))
    k = draw(st.one_of(st.integers(1, 8).map(lambda g: 8 * g), st.integers(1, 40)))
    edge = draw(st.sampled_from([None, None, "bound"]))
    return (draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, 4)), draw(st.integers(1, 5)), c, k,
            draw(st.integers(0, 5)) == 0, draw(st.sampled_from([None, "relu", "relu6", "flat"])),
            draw(st.integers(3, 16)), edge, draw(st.sampled_from([0, 0, 0, 1, 2, 3])))


@settings(max_examples=60, deadline=None)
@given(case=small_c_layer(), out_xor=st.sampled_from([0, 0x80]))
def test_pw16_small_c_loops_bit_exact_in_emulator(m0, case, out_xor):  # noqa: F811
    """pz_q8_pw16_c8_m0 / pz_q8_pw16_c16_m0 (one C each, the pixel's x converted once into a table) against the
    golden model, and the dispatch: those loops for pw16 at C = 8, 16 with x aligned, the block loop at the C next
    to them and for an unaligned input, each in batches through a buffer where K is not a multiple of 8. Weights
    +-127 with inputs
    -128 / 127 (the lanes' bound), outputs saturated at one bound, at both (act_min = act_max) or multiplied."""
    seed, h, w, c, k, zero_input, act, shift_lo, edge, x_skew = case
    t = pointwise_case(seed, h, w, c, k, zero_input, False, "relu" if act == "flat" else act, edge=edge)
    if act == "flat":
        t["act_max"] = t["act_min"] = int(np.random.default_rng(seed).integers(-128, 128))
    t["shift"] = timed_shifts(t["shift"], shift_lo)
    t = rounded(t)
    check(m0, t, out_xor, x_skew)


def test_pw16_small_c_loops_cycle_budget_in_emulator(m0):  # noqa: F811
    """benchmarks/conv_firmware.py kernels' 1x1 layers at C = 16 and 8 (weights in SRAM, warm cache): the loop for
    that C is taken, stays within issue 11's 4.2 cycles/MAC at C = 16 (5.5 at 8; measured 4.10 and 5.48:
    docs/BENCHMARKS.md "Pointwise kernel: small channel counts") and beats the block loop that the same layer takes
    with its input off a word boundary, bit-exact both ways."""
    for (h, w, c, k), budget in (((24, 24, 16, 32), 4.2), ((48, 48, 8, 16), 5.5)):
        t = conv_case(np.random.default_rng(0), h, w, c, k, (1, 1), (1, 1), "same", False)
        t["shift"] = timed_shifts(t["shift"])
        t = rounded(t)
        runs = {}
        for x_skew in (0, 2):
            runs[x_skew], entered = m0.call_entering(t, "pz_conv2d_q8_m0", LOOPS, warm=True, x_skew=x_skew)
            np.testing.assert_array_equal(runs[x_skew].y, q8_golden(t))
            assert entered == {expected_loop(t, x_skew)}
        assert expected_loop(t) == PW16_BY_C[c] and expected_loop(t, 2) == "pz_q8_pw16_m0"
        assert runs[0].cycles <= budget * runs[0].macs, runs[0].cycles / runs[0].macs
        assert runs[0].cycles < runs[2].cycles


def test_minus_128_weight_keeps_conv8_in_emulator(m0):  # noqa: F811
    """A weight of -128 would break pw16's lane bound: the layer keeps conv8 and the plain loop, bit-exact, while
    the same layer without it runs pw16."""
    t = pointwise_case(5, 3, 4, 24, 16, False, True, "relu6")
    assert expected_loop(t) == "pz_q8_pw16_m0"
    check(m0, t, 0x80)
    t["w"][3, 0, 0, 7] = -128
    t = rounded(t)
    assert conv_weight_layout(t) == "conv8" and expected_loop(t) == "pz_q8_pw_m0"
    check(m0, t, 0x80)


@pytest.mark.parametrize("h,w,c,k", [
    (6, 8, 8, 16),     # pd_mobilenet's 8 -> 16, 48 pixels
    (3, 5, 16, 32),
    (2, 3, 32, 32),    # C a multiple of 32: entered at the block's first byte, one block
    (2, 2, 32, 64),
    (2, 2, 64, 64),    # two blocks
    (1, 2, 128, 256),
    (1, 1, 256, 256),
    (3, 3, 12, 24),    # three words: the byte sum's odd word
    (2, 3, 44, 8),     # one block and 12 bytes, one group
    (1, 33, 4, 8),     # one word: the block's last four steps only
    (2, 3, 24, 16),    # entered in the block's first half (the zero-skipping block's r1 steps 128 midway)
    (2, 2, 84, 8),     # three blocks, entered at step 12
])
@pytest.mark.parametrize("zero_input", [False, True])
def test_pointwise_shapes_in_emulator(m0, h, w, c, k, zero_input):  # noqa: F811
    """pd_mobilenet's pointwise channel counts and the block geometry around them, with ReLU6 and records, plain and
    zero skipping, out_xor 0 and 0x80."""
    t = pointwise_case(7 * c + k, h, w, c, k, zero_input, True, "relu6")
    assert expected_loop(t) is not None
    for out_xor in (0, 0x80):
        check(m0, t, out_xor)


@pytest.mark.parametrize("act", list(ACTS))
def test_pointwise_saturating_layer_in_emulator(m0, act):  # noqa: F811
    """Shifts 3..8: many outputs at act_min or act_max (the record's L and A tests and their out-of-line stores for
    every lane position), the rest multiplied."""
    t = pointwise_case(11, 4, 5, 24, 40, False, True, act, shift_lo=3)
    run = check(m0, t, 0x80)
    y = run.y.astype(np.int64)
    assert np.mean(y == t["act_min"]) > 0.2 and np.mean(y == t["act_max"]) > 0.2
    assert np.mean((y > t["act_min"]) & (y < t["act_max"])) > 0.02


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), act=st.sampled_from([None, "relu", "relu6"]),
       out_xor=st.sampled_from([0, 0x80]), c=st.integers(1, 10).map(lambda n: 4 * n))
def test_pointwise_record_stage_at_the_bound_in_emulator(m0, seed, act, out_xor, c):  # noqa: F811
    """test_conv_requant's bound case as a 1x1 layer of 24 channels: zero weights, so each accumulator is its bias,
    drawn at the records' L, L + 1, A - 1, A, ties and +-floor((2^31 - 1) / m'): products up to 255.5 * 2^23."""
    t = bound_case(seed, act, False)
    rng = np.random.default_rng(seed)
    extra = int(rng.integers(0, 23))  # a 24th channel: a copy of another, so K is a multiple of 8
    for key in ("bias", "mult", "shift"):
        t[key] = np.append(t[key], t[key][extra])
    t["w"] = np.zeros((24, 1, 1, c), np.int8)
    t["xu"] = rng.integers(0, 256, (2, 3, c)).astype(np.uint8)
    t["shape"] = conv_shape(2, 3, c, (1, 1), (1, 1), "valid", 24)
    assert expected_loop(t) is not None
    check(m0, t, out_xor)


def test_older_multipliers_keep_the_general_path(m0):  # noqa: F811
    """31-bit multipliers (model directories from before the records): no records, conv_q8_m0.c's paths, the same
    bytes."""
    t = pointwise_case(3, 3, 4, 32, 64, True, False, "relu")
    assert conv_records(t) is None
    check(m0, t, 0)


def test_harness_refuses_pw16_without_records():
    """The kernel harness packs pw16 only with the layer's records inside; without them it says so."""
    from rp2040_sim.kernel_harness import conv_packed

    t = pointwise_case(3, 3, 4, 32, 64, True, False, "relu")
    assert conv_weight_layout(t) == "conv8"
    with pytest.raises(ValueError, match="one-multiply records"):
        conv_packed(t, "pw16")


@pytest.mark.parametrize("h,w,c,k,zero_input", [
    (6, 6, 8, 16, False),   # pd_mobilenet's expanding 8 -> 16 (pw16, the loop for C = 8)
    (4, 4, 16, 32, False),  # the loop for C = 16
    (4, 5, 8, 16, True),    # zero skipping
    (3, 4, 40, 48, False),  # six groups: the window read again for each
    (5, 7, 32, 16, False),  # a shrinking output
])
def test_pointwise_keeps_the_overlap_contract(m0, h, w, c, k, zero_input):  # noqa: F811
    """tests/test_planner_overlap.py's check on this kernel (its cases have no records, so they run conv_q8_m0.c's
    paths): in rp2040_sim, once output pixel p is written, only windows of pixels p - OVERLAP_LOOKBACK + 1 on are
    read; run over its own input at the planned lead it is bit-exact."""
    from firmware import convgen, planner
    from test_planner_overlap import last_reader, read_lookbacks, run_kernel

    t = pointwise_case(5 * h + c, h, w, c, k, zero_input, True, "relu6")
    assert expected_loop(t) is not None
    rows = convgen.Rows("conv2d", (h, w, c), (h, w, k), (1, 1), (1, 1), (0, 0))
    back = convgen.OVERLAP_LOOKBACK["conv2d"]
    want = q8_golden(t)
    y, trace = run_kernel(m0, t, "pz_conv2d_q8_m0")
    np.testing.assert_array_equal(y, want)
    needs = read_lookbacks(trace, last_reader(rows), k)
    assert needs and max(needs) <= back, max(needs, default=None)
    lead = planner.aligned(rows.overlap_lead(back))
    np.testing.assert_array_equal(run_kernel(m0, t, "pz_conv2d_q8_m0", lead)[0], want)
    if k > c and not zero_input:  # the check can fail: at no lead an expanding output overwrites bytes still read
        assert not np.array_equal(run_kernel(m0, t, "pz_conv2d_q8_m0", 0)[0], want)


@pytest.mark.parametrize("c", [1024, 1028, 6])
def test_pointwise_byte_sum_at_its_bound_in_emulator(m0, c):  # noqa: F811
    """conv8 (a -128 weight), every input byte 255: at C = 1024 the byte sum's fields reach their bound
    (R = 2^32 - 256); C = 1028 (above it) and C = 6 (not a multiple of 4) keep conv_q8_m0.c's paths, with the same
    bytes."""
    t = pointwise_case(c, 1, 2, c, 8, False, True, "relu6")
    t["w"][0, 0, 0, 0] = -128  # conv8: the plain loop's byte sum (pw16 has none)
    t = rounded(t)
    t["xu"][:] = 255
    assert conv_weight_layout(t) == "conv8"
    assert (expected_loop(t) is not None) == (c == 1024)
    check(m0, t, 0)


# -- the pw16 layout and the choice, without the emulator ------------------------------------------------------------
def pw16_kernel_sums(packed, xu, c, k):
    """The pw16 loop's arithmetic in NumPy on one pixel (xu: C bytes): lanes from the header (PW16_HEADER_LANES),
    then per channel pair and lane pair S = x_c W_c + x_c+1 W_c+1 (mod 2^32), lo = SXTH(S), hi = (S - lo) >> 16
    (int32). Returns the (ceil8(K),) lanes."""
    words = np.asarray(packed, np.uint8).copy().view("<u4").astype(np.int64)
    words = words.reshape(-1, conv_layout.pw16_group_bytes(c) // 4)[:, :8 + 4 * c]  # the records after: not summed
    x = xu.astype(np.int64) - 128
    lanes = np.zeros((len(words), 8), np.int64)
    lanes[:, list(conv_layout.PW16_HEADER_LANES)] = np.where(words[:, :8] >= 2**31, words[:, :8] - 2**32,
                                                              words[:, :8])
    body = words[:, 8:].reshape(len(words), c // 2, 4, 2)
    for i in range(c // 2):
        s = (x[2 * i] * body[:, i, :, 0] + x[2 * i + 1] * body[:, i, :, 1]) % 2**32
        lo = (s + 2**15) % 2**16 - 2**15
        assert np.all(np.abs(lo) <= 32512)
        hi = (s - lo) % 2**32
        hi = np.where(hi >= 2**31, hi - 2**32, hi) >> 16
        lanes[:, 0::2] += lo
        lanes[:, 1::2] += hi
    return lanes.reshape(-1)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), c=st.integers(1, 40).map(lambda n: 2 * n), k=st.integers(1, 40),
       edge=st.sampled_from([None, "bound"]))
def test_pw16_layout_round_trip_and_arithmetic(seed, c, k, edge):
    """pack_pw16 -> unpack_pw16 gives the weights, folded bias and records back; the loop's two-MACs-per-MULS
    arithmetic on the packed words (pw16_kernel_sums) ends at exactly conv8's accumulator bias_folded + sum xu w
    (int64), at the lanes' bound too (weights +-127, inputs -128 / 127)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (k, 1, 1, c)).astype(np.int8)
    xu = rng.integers(0, 256, c).astype(np.uint8)
    if edge == "bound":
        w = np.where(rng.random(w.shape) < 0.5, 127, -127).astype(np.int8)
        xu = rng.choice(np.array([0, 255], np.uint8), c)
    fb = rng.integers(-2**24, 2**24, k).astype(np.int32)
    rec = rng.integers(-2**31, 2**31, 3 * k).astype(np.int32)
    packed = conv_layout.pack_pw16(w, fb, rec)
    assert packed.dtype == np.uint8 and len(packed) == conv_layout.pw16_bytes(k, c) == (k + 7) // 8 * (128 + 16 * c)
    w2, fb2, rec2 = conv_layout.unpack_pw16(packed, w.shape)
    np.testing.assert_array_equal(w2, w)
    np.testing.assert_array_equal(fb2, fb)
    np.testing.assert_array_equal(rec2, rec)
    groups = packed.view("<i4").reshape((k + 7) // 8, -1)   # each group's records after its weights, in channel order
    np.testing.assert_array_equal(groups[:, 8 + 4 * c:].reshape(-1)[:3 * k], rec)
    want = fb.astype(np.int64) + w.reshape(k, c).astype(np.int64) @ xu.astype(np.int64)
    np.testing.assert_array_equal(pw16_kernel_sums(packed, xu, c, k)[:k], want)


def test_pw16_packing_refuses_what_it_cannot_hold():
    w, b, rec = np.zeros((8, 1, 1, 4), np.int8), np.zeros(8, np.int32), np.zeros(24, np.int32)
    with pytest.raises(ValueError, match="-128"):
        conv_layout.pack_pw16(np.full((8, 1, 1, 4), -128, np.int8), b, rec)
    with pytest.raises(TypeError, match="C even"):
        conv_layout.pack_pw16(np.zeros((8, 1, 1, 3), np.int8), b, rec)
    with pytest.raises(TypeError, match="int8"):
        conv_layout.pack_pw16(np.zeros((8, 3, 3, 4), np.int8), b, rec)
    with pytest.raises(OverflowError, match="lane start"):
        conv_layout.pack_pw16(np.full((8, 1, 1, 4), 127, np.int8), np.full(8, 2**31 - 1, np.int32), rec)
    assert len(conv_layout.pack_pw16(w, b, rec)) == 32 + 64 + 96


def test_weight_layout_choice():
    """conv_weight_layout: pw16 for a pointwise layer the pw16 loop takes; conv8 for everything else."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (16, 1, 1, 24)).astype(np.int8)

    def choose(w=w, in_shape=(5, 5, 24), out_shape=(5, 5, 16), stride=(1, 1), pads=(0, 0), zp=3, rec=True,
               flash=False):
        return conv_layout.conv_weight_layout(w, in_shape, out_shape, stride, pads, zp, rec, flash)

    assert choose() == "pw16"
    assert choose(w[:, :, :, :22], in_shape=(5, 5, 22)) == "pw16"          # C even, not a multiple of 4
    assert choose(w[:, :, :, :21], in_shape=(5, 5, 21)) == "conv8"         # C odd
    assert choose(w[:12], out_shape=(5, 5, 12)) == "pw16"                  # K not a multiple of 8: in batches
    n = conv_layout.PW_BATCH_BYTES   # ceil8(K) must fit the batch buffer (conv.h PZ_PW_BATCH_BYTES)
    wide = rng.integers(-127, 128, (n + 8, 1, 1, 24)).astype(np.int8)
    assert choose(wide[:n - 7], out_shape=(5, 5, n - 7)) == "pw16"
    assert choose(wide[:n + 1], out_shape=(5, 5, n + 1)) == "conv8"
    assert choose(wide, out_shape=(5, 5, n + 8)) == "pw16"              # a multiple of 8: no batches
    assert choose(zp=-128) == "conv8"                                      # ReLU outputs: zero skipping
    assert choose(rec=False) == "conv8"                                    # no one-multiply records
    minus = w.copy()
    minus[5, 0, 0, 9] = -128
    assert choose(minus) == "conv8"                                        # the lanes' bound
    assert choose(stride=(2, 2), out_shape=(3, 3, 16)) == "conv8"          # not pointwise
    assert choose(pads=(1, 0), in_shape=(4, 5, 24)) == "conv8"
    w3 = rng.integers(-127, 128, (16, 3, 3, 24)).astype(np.int8)
    assert choose(w3, out_shape=(3, 3, 16)) == "conv8"
    # left in flash: pw16 only up to PW16_FLASH_MAX_BYTES
    assert choose(flash=True) == "pw16"
    c = max(c for c in range(2, 4096, 2) if conv_layout.pw16_bytes(8, c) <= conv_layout.PW16_FLASH_MAX_BYTES)
    big = rng.integers(-127, 128, (8, 1, 1, c + 2)).astype(np.int8)   # one group of 8: just within, just over
    assert choose(big[:, :, :, :c], in_shape=(2, 2, c), out_shape=(2, 2, 8), flash=True) == "pw16"
    assert choose(big, in_shape=(2, 2, c + 2), out_shape=(2, 2, 8), flash=True) == "conv8"
    assert choose(big, in_shape=(2, 2, c + 2), out_shape=(2, 2, 8)) == "pw16"  # in SRAM


def test_layout_codes_are_conv_h():
    """conv_layout.W_LAYOUT_CODES (what the kernel harness writes into pz_q8_conv_t.w_layout) are conv.h's
    PZ_Q8_W_<NAME> (the names convgen emits), name for name; PW_BATCH_BYTES is PZ_PW_BATCH_BYTES."""
    text = (Path(__file__).resolve().parents[1] / "firmware" / "kernels" / "conv.h").read_text()
    defined = {m[1].lower(): int(m[2]) for m in re.finditer(r"#define PZ_Q8_W_(\w+) (\d+)u", text)}
    assert defined == conv_layout.W_LAYOUT_CODES
    assert re.search(r"#define PZ_PW_BATCH_BYTES (\d+)u", text)[1] == str(conv_layout.PW_BATCH_BYTES)


def test_host_reference_reads_pw16(lib):  # noqa: F811
    """conv_q8_ref.c's weight and bias accessors read pw16 (pz_q8_conv_weight / pz_q8_conv_bias, lane order and the
    odd weight's borrow included): the reference, and pz_conv2d_q8_m0 of the host build (which hands a pw16 layer to
    the reference), match the golden model."""
    import ctypes

    from rp2040_sim.kernel_harness import conv_packed
    from test_firmware_conv import Q8Conv

    for seed, (h, w, c, k) in enumerate([(2, 3, 6, 8), (3, 2, 32, 24), (1, 4, 2, 16)]):
        t = pointwise_case(seed, h, w, c, k, False, True, "relu6", edge="bound" if seed == 2 else None)
        assert conv_weight_layout(t) == "pw16"
        packed, _ = conv_packed(t, "pw16")
        s, n = t["shape"], h * w * k
        x = np.ascontiguousarray(t["xu"])
        keep = [packed, t["mult"], t["shift"], x]
        for fn in ("pz_conv2d_q8_ref", "pz_conv2d_q8_m0"):
            y = np.full(n, 0xA5, np.uint8)
            layer = Q8Conv(s, packed.ctypes.data, None, t["mult"].ctypes.data, t["shift"].ctypes.data, t["zp_out"],
                           t["act_min"], t["act_max"], 0x80, (t["zp_in"] + 128) & 0xFF, None, None,
                           conv_layout.W_LAYOUT_CODES["pw16"])
            getattr(lib, fn)(ctypes.byref(layer), ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(y.ctypes.data))
            np.testing.assert_array_equal((y ^ 0x80).view(np.int8).reshape(h, w, k), q8_golden(t), err_msg=fn)
        del keep


# -- the build ---------------------------------------------------------------------------------------------------------
def assert_builds_bit_exact(model_dir, model, mnist, builds: dict[str, dict]):
    """firmware.build of model_dir with each {name: build keyword arguments} (into model_dir / .. / name), every
    firmware's pz_infer in rp2040_sim equal to the golden model on two test images and two random ones."""
    from conftest import require_tool

    from compress import reference
    from firmware import build as fwbuild
    from rp2040_sim import eval as sim_eval

    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy")
    images = np.concatenate([mnist.x_test[:2], np.random.default_rng(1).integers(0, 256, (2, 784), dtype=np.uint8)])
    want = reference.forward(model, images).astype(np.float64)
    assert len(set(map(bytes, want))) > 1  # different images give different outputs: the test can fail
    for name, kwargs in builds.items():
        result = fwbuild.build(model_dir, model_dir.parent / name, images=1, quiet=True, **kwargs)
        harness = sim_eval.Harness(result.out_dir, sim_eval.read_build(result.out_dir))
        np.testing.assert_array_equal(np.array([harness.infer_one(r)[1] for r in images]), want, err_msg=name)


def test_build_gives_pw16_its_bytes_and_keeps_conv8_in_flash(tmp_path, mnist):
    """A pointwise conv 64 -> 96 after a conv without activation (input zero point not -128): the build's entry has
    pw16's bytes (Emitted.weight_bytes, stage_bytes, group_bytes 128 + 16 C with the records inside, no separate
    record array, the struct's PZ_Q8_W_PW16); with its weights left in flash (13,824 pw16 bytes, over
    PW16_FLASH_MAX_BYTES) conv8's and its records array, and the placement report says so. Both firmwares are
    bit-exact with the golden model in rp2040_sim."""
    from random_models import save_uniform_cnn

    from firmware import build as fwbuild
    from firmware import convgen, planner
    from zoo import modeldir
    from zoo.nn import Conv2D, Dense, GlobalAvgPool2D, Input, Sequential

    spec = Sequential([Input(28, 28, 1), Conv2D(1, 64, 3, 2, "valid"), Conv2D(64, 96, 1, 1, "same"),
                       GlobalAvgPool2D(), Dense(96, 10)])
    model = modeldir.load(save_uniform_cnn(tmp_path / "int8", spec, "pw", mnist.x_test[:64], seed=0, scale=0.3))
    pw = {op.index: op for op in convgen.network_ops(model, "m")[0]}[2]
    pw_bytes = conv_layout.pw16_bytes(96, 64)
    assert pw_bytes > conv_layout.PW16_FLASH_MAX_BYTES
    assert pw.group_bytes == 128 + 16 * 64 and pw.stage_bytes == planner.aligned(pw_bytes) == 12 * (128 + 16 * 64)
    assert pw.weight_bytes == pw_bytes + 96 * (4 + 1)  # + multipliers and shifts; the records are inside
    assert "PZ_Q8_W_PW16" in pw.render("", "NULL")[0] and "pz_l2_rq" not in pw.render("", "NULL")[0]
    fl = {op.index: op for op in convgen.network_ops(model, "m", frozenset({2}))[0]}[2]
    assert fl.group_bytes == 32 + 8 * 64 and fl.stage_bytes == planner.aligned(conv_layout.conv8_bytes(96, 1, 1, 64))
    assert fl.weight_bytes == conv_layout.conv8_bytes(96, 1, 1, 64) + 96 * (4 + 1 + 12)
    assert "PZ_Q8_W_CONV8" in fl.render("const ", "NULL")[0] and "pz_l2_rq" in fl.render("const ", "NULL")[0]
    for where, want in (("ram", pw.weight_bytes), ("flash", fl.weight_bytes)):
        rows = fwbuild.choose_layer_placement(model, where, fwbuild.DEFAULT_STACK, "m")[1]
        assert {r["index"]: r["bytes"] for r in rows}[2] == want
    assert_builds_bit_exact(tmp_path / "int8", model, mnist, {w: {"weights_in": w} for w in ("ram", "flash")})


def test_build_runs_pointwise_layers_whose_k_is_not_a_multiple_of_8(tmp_path, mnist):
    """1x1 convs 20 -> 12 (input zero point not -128: pw16) and 12 -> 10 after a ReLU (conv8, zero skipping): the
    build pads conv8's records to whole groups of 8 (conv_layout.conv8_records) and pw16's inside the weights, and
    both firmwares, on one core and on two, are bit-exact with the golden model in rp2040_sim (the kernel runs such
    layers in batches through a buffer, pwconv_q8_m0.c pw_batched)."""
    from random_models import save_uniform_cnn

    from firmware import convgen
    from zoo import modeldir
    from zoo.nn import Conv2D, Dense, GlobalAvgPool2D, Input, ReLU, Sequential

    spec = Sequential([Input(28, 28, 1), Conv2D(1, 20, 3, 2, "valid"), Conv2D(20, 12, 1, 1, "same"), ReLU(),
                       Conv2D(12, 10, 1, 1, "same"), GlobalAvgPool2D(), Dense(10, 10)])
    model = modeldir.load(save_uniform_cnn(tmp_path / "int8", spec, "pwk", mnist.x_test[:64], seed=0, scale=0.3))
    ops = {op.index: op for op in convgen.network_ops(model, "m")[0]}
    assert "PZ_Q8_W_PW16" in ops[2].render("", "NULL")[0]
    source = ops[4].render("", "NULL")[0]
    assert "PZ_Q8_W_CONV8" in source
    records = [int(v) for v in re.search(r"pz_l4_rq\[\d*\] = \{([^}]*)\}", source)[1].split(",") if v.strip()]
    assert len(records) == 16 * 3 and records[10 * 3:] == [0] * (6 * 3)  # K = 10, zero records to 16 channels
    assert_builds_bit_exact(tmp_path / "int8", model, mnist, {cores: {"cores": cores} for cores in ("1", "2")})
