"""The pointwise int8 conv2d kernel (firmware/kernels/pwconv_q8_m0.c, pz_q8_pw*_m0: 1x1 stride-1 layers with the
build's one-multiply records, K a multiple of 8 and C a multiple of 4 up to 1024, dispatched from pz_conv2d_q8_m0)
against the NumPy golden model of tests/test_firmware_conv.py in rp2040_sim. Shapes are drawn around what the kernel
depends on: C = 1..300 (the entry into its 32-byte unrolled block at byte 32 - C mod 32, an odd or even number of
words for the byte sum; C mod 4 != 0 keeps conv_q8_m0.c's paths), K = 1..300 (1..37 groups; other K keep
conv_q8_m0.c's paths), 1..48 pixels, zero skipping (the input's zero at the byte 0) or not, every activation,
out_xor, records or the older 31-bit multipliers (then the kernel must not run), the record stage at its bounds,
saturating layers and the byte sum at its bound (C = 1024, every byte 255)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rp2040_sim.kernel_harness import conv_case, conv_records, conv_shape, conv_weight_layout
from test_conv_requant import bound_case, rounded
from test_firmware_conv import m0, q8_golden  # noqa: F401  (fixture)

LOOPS = ["pz_q8_pw_m0", "pz_q8_pwz_m0", "pz_q8_pw16_m0"]
ACTS = {None: lambda zp: (-128, 127), "relu": lambda zp: (zp, 127), "relu6": lambda zp: (zp, min(127, zp + 40))}


def expected_loop(t) -> str | None:
    """The loop pz_pwconv_q8_m0 runs for a pointwise layer, or None (conv_q8_m0.c's own paths)."""
    s = t["shape"]
    if conv_records(t) is None or s.out_c % 8 or s.in_c % 4 or s.in_c > 1024:
        return None
    if conv_weight_layout(t) == "pw16":
        return "pz_q8_pw16_m0"
    return "pz_q8_pwz_m0" if t["zp_in"] == -128 else "pz_q8_pw_m0"


def pointwise_case(seed, h, w, c, k, zero_input, records, act, shift_lo=3):
    """A 1x1 layer: weights, input, zero points from conv_case; zero_input: zp_in = -128 and about half the input
    bytes 0 (ReLU outputs); records: multipliers rounded as compress rounds them (shifts shift_lo..shift_lo + 5)."""
    rng = np.random.default_rng(seed)
    t = conv_case(rng, h, w, c, k, (1, 1), (1, 1), "valid", False)
    t["act_min"], t["act_max"] = ACTS[act](t["zp_out"])
    if zero_input:
        t["zp_in"] = -128
        t["xu"] = np.where(rng.random(t["xu"].shape) < 0.5, 0, t["xu"]).astype(np.uint8)
    if records:
        t["shift"] = (shift_lo + (t["shift"].astype(np.int64) + 1) % 6).astype(np.int8)
        t = rounded(t)
    return t


def check(m0, t, out_xor):  # noqa: F811
    run, entered = m0.call_entering(t, "pz_conv2d_q8_m0", LOOPS, out_xor)
    np.testing.assert_array_equal(run.y, q8_golden(t))
    want = expected_loop(t)
    assert entered == ({want} if want else set()), entered
    return run


@st.composite
def layer(draw):
    """(seed, h, w, C, K, zero_input, records, act): at most ~40 k MACs, so a case runs in well under a second."""
    c = draw(st.one_of(st.integers(1, 75).map(lambda n: 4 * n), st.integers(1, 300)))
    k = draw(st.one_of(st.integers(1, 37).map(lambda g: 8 * g), st.integers(1, 300)))
    pixels = max(1, min(48, 40_000 // (c * k)))
    h = draw(st.integers(1, max(1, min(6, pixels))))
    w = draw(st.integers(1, max(1, min(8, pixels // h))))
    return (draw(st.integers(0, 2**32 - 1)), h, w, c, k, draw(st.booleans()), draw(st.integers(0, 3)) > 0,
            draw(st.sampled_from(list(ACTS))))


@settings(max_examples=80, deadline=None)
@given(case=layer(), out_xor=st.sampled_from([0, 0x80]))
def test_pointwise_bit_exact_in_emulator(m0, case, out_xor):  # noqa: F811
    check(m0, pointwise_case(*case), out_xor)


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


@pytest.mark.parametrize("h,w,c,k,zero_input", [
    (6, 6, 8, 16, False),   # pd_mobilenet's expanding 8 -> 16
    (4, 5, 8, 16, True),    # zero skipping
    (3, 4, 40, 48, False),  # six groups: the window read again for each
    (5, 7, 32, 16, False),  # a shrinking output
])
def test_pointwise_keeps_the_overlap_contract(m0, h, w, c, k, zero_input):  # noqa: F811
    """tests/test_planner_overlap.py's check on this kernel (its cases have no records, so they run conv_q8_m0.c's
    paths): in rp2040_sim, once output pixel p is written, only windows of pixels p - OVERLAP_LOOKBACK + 1 on are
    read; run over its own input at the planned lead it is bit-exact."""
    from firmware import convgen, planner
    from test_planner_overlap import last_reader, run_kernel

    t = pointwise_case(5 * h + c, h, w, c, k, zero_input, True, "relu6")
    assert expected_loop(t) is not None
    rows = convgen.Rows("conv2d", (h, w, c), (h, w, k), (1, 1), (1, 1), (0, 0))
    back = convgen.OVERLAP_LOOKBACK["conv2d"]
    want = q8_golden(t)
    y, trace = run_kernel(m0, t, "pz_conv2d_q8_m0")
    np.testing.assert_array_equal(y, want)
    last, written, reads_after = last_reader(rows), -1, 0
    for is_write, off in trace:
        if is_write:
            written = max(written, off // k)
        elif written >= 0:
            reads_after += 1
            assert last[off] >= written - back + 1, (off, written)
    assert reads_after > 0
    lead = planner.aligned(rows.overlap_lead(back))
    np.testing.assert_array_equal(run_kernel(m0, t, "pz_conv2d_q8_m0", lead)[0], want)
    if k > c and not zero_input:  # the check can fail: at no lead an expanding output overwrites bytes still read
        assert not np.array_equal(run_kernel(m0, t, "pz_conv2d_q8_m0", 0)[0], want)


@pytest.mark.parametrize("c", [1024, 1028, 6])
def test_pointwise_byte_sum_at_its_bound_in_emulator(m0, c):  # noqa: F811
    """Every input byte 255: at C = 1024 the byte sum's fields reach their bound (R = 2^32 - 256); C = 1028 (above
    it) and C = 6 (not a multiple of 4) keep conv_q8_m0.c's paths, with the same bytes."""
    t = pointwise_case(c, 1, 2, c, 8, False, True, "relu6")
    t["xu"][:] = 255
    assert (expected_loop(t) is not None) == (c == 1024)
    check(m0, t, 0)
