"""The int8 C kernels (firmware/kernels/int8*.c) against the NumPy golden model, bit for bit.

Host: every kernel compiled with firmware.hostcc and called through ctypes on random layers (hypothesis), including
saturation edges. Target: the same sources cross-compiled for the Cortex-M0+ with -Wall -Werror, and the M0+ build
(whose dense kernel runs the Thumb-1 assembly inner loop) called in rp2040_sim, whose Unicorn core is a Cortex-M0
model (rp2040_sim/kernel_harness.py builds, loads and calls it; the layer generators and golden model live there).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress import layout, reference
from rp2040_sim.kernel_harness import (ARM_FLAGS, ARM_GCC, KERNELS, SOURCES, ArmLayer, KernelImage, golden,
                                       layer_fields, random_layer, shared_layer)


class Layer(ctypes.Structure):
    """pz_q8_layer_t as the host compiler lays it out (the kernels called through ctypes)."""
    _fields_ = layer_fields(ctypes.c_void_p)


@pytest.fixture(scope="module")
def lib():
    from firmware import hostcc

    lib = hostcc.build(SOURCES, include_dirs=[KERNELS], name="pz_int8")
    lib.pz_q8_requantize.restype = ctypes.c_int32
    lib.pz_q8_requantize.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_int32]
    return lib


def c_layer(t, kind, out_xor):
    """A ctypes Layer and the buffers it points to (kept alive in the returned list)."""
    n_out, n_in = t["w"].shape
    keep = []

    def buf(a):
        a = np.ascontiguousarray(a)
        keep.append(a)
        return a.ctypes.data

    book = None
    if kind == "sparse":
        entries, row_len = layout.pack_sparse(t["w"])
        w_ptr = buf(np.frombuffer(entries.tobytes() + bytes(4 + -entries.nbytes % 4), np.uint32))  # aligned copy
        rl_ptr = buf(row_len)
    elif kind == "shared":
        entries, row_len, codebook = layout.pack_shared(t["w"])
        w_ptr, rl_ptr, book = buf(entries.tobytes() + b"\0"), buf(row_len), buf(codebook)
    else:
        w_ptr, rl_ptr = buf(np.frombuffer(layout.pack_dense(t["w"]).tobytes(), np.uint32)), None  # aligned
    fb = layout.folded_bias(t["bias"], t["w"], t["zp_in"])
    lay = Layer(n_in, n_out, w_ptr, rl_ptr, buf(fb), buf(t["mult"]), buf(t["shift"]), t["zp_out"], t["act_min"],
                t["act_max"], out_xor, book)
    return lay, keep


def run_c(lib, t, kind, out_xor=0):
    fn = {"ref": lib.pz_q8_dense_ref, "m0": lib.pz_q8_dense_m0, "sparse": lib.pz_q8_sparse,
          "shared": lib.pz_q8_shared}[kind]
    lay, keep = c_layer(t, kind, out_xor)
    n_out = t["w"].shape[0]
    out = []
    for row in t["xu"]:
        x = np.ascontiguousarray(row)
        y = np.full(n_out + 8, 0xA5, np.uint8)  # guard bytes: the kernel writes only n_out
        fn(ctypes.byref(lay), ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(y.ctypes.data))
        assert np.all(y[n_out:] == 0xA5), "kernel wrote past n_out"
        out.append((y[:n_out] ^ out_xor).view(np.int8))
    return np.array(out)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_in=st.integers(1, 70), n_out=st.integers(1, 21),
       density=st.sampled_from([1.0, 0.5, 0.1, 0.0]), edge=st.sampled_from([None, None, "max", "zero", "tiny"]),
       out_xor=st.sampled_from([0, 0x80]))
def test_kernels_equal_numpy_golden(lib, seed, n_in, n_out, density, edge, out_xor):
    t = random_layer(np.random.default_rng(seed), n_in, n_out, density, edge)
    want = golden(t)
    for kind in ("ref", "m0", "sparse"):
        np.testing.assert_array_equal(run_c(lib, t, kind, out_xor), want, err_msg=kind)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_in=st.integers(1, 200), n_out=st.integers(1, 12),
       density=st.sampled_from([1.0, 0.3, 0.05, 0.0]), levels=st.integers(1, 7),
       edge=st.sampled_from([None, None, "max", "zero", "tiny"]), out_xor=st.sampled_from([0, 0x80]))
def test_shared_kernel_equals_numpy_golden(lib, seed, n_in, n_out, density, levels, edge, out_xor):
    """Gaps over 31 (fillers) at low density, every row length mod 4, one to seven codebook values."""
    t = shared_layer(np.random.default_rng(seed), n_in, n_out, density, levels, edge)
    want = golden(t)
    for kind in ("shared", "ref"):
        np.testing.assert_array_equal(run_c(lib, t, kind, out_xor), want, err_msg=kind)


def with_zero_inputs(t, rng, fraction):
    """Input bytes set to 0 (the zero point of the first layer and of ReLU outputs) with probability `fraction`."""
    t["xu"] = np.where(rng.random(t["xu"].shape) < fraction, 0, t["xu"]).astype(np.uint8)
    return t


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_in=st.integers(1, 120), n_out=st.integers(1, 21),
       density=st.sampled_from([1.0, 0.3, 0.05]), zeros=st.sampled_from([0.5, 0.83, 0.97, 1.0]),
       edge=st.sampled_from([None, None, "max", "tiny"]), out_xor=st.sampled_from([0, 0x80]))
def test_zero_skipping_kernels_equal_numpy_golden(lib, seed, n_in, n_out, density, zeros, edge, out_xor):
    """Mostly-zero inputs (MNIST pixels are 83 % zeros): the skipping kernels (dense m0, shared) still equal the
    golden model bit for bit, whatever the zero point (zp_in is random; skipping a 0 byte is exact for any)."""
    rng = np.random.default_rng(seed)
    t = with_zero_inputs(random_layer(rng, n_in, n_out, density, edge), rng, zeros)
    want = golden(t)
    for kind in ("m0", "ref", "sparse"):
        np.testing.assert_array_equal(run_c(lib, t, kind, out_xor), want, err_msg=kind)
    t = with_zero_inputs(shared_layer(rng, n_in, n_out, density, 7, edge), rng, zeros)
    np.testing.assert_array_equal(run_c(lib, t, "shared", out_xor), golden(t), err_msg="shared")


def test_saturation_edges_are_hit(lib):
    """The edge layers really reach both clamps and the tiny multiplier really rounds to the zero point."""
    rng = np.random.default_rng(1)
    t = random_layer(rng, 64, 16, edge="max")
    t["act_min"] = -128
    out = run_c(lib, t, "m0")
    np.testing.assert_array_equal(out, golden(t))
    assert out.max() == 127 and out.min() == -128
    t = random_layer(rng, 64, 16, edge="tiny")
    np.testing.assert_array_equal(run_c(lib, t, "m0"), golden(t))


def test_large_layer_gaps_and_tails(lib):
    """784 inputs (gaps over 255 need filler entries), n_in not a multiple of 4, n_out not a multiple of 8."""
    rng = np.random.default_rng(2)
    for n_in, n_out, density in ((784, 20, 0.004), (787, 13, 0.3), (301, 10, 1.0)):
        t = random_layer(rng, n_in, n_out, density)
        for kind in ("ref", "m0", "sparse"):
            np.testing.assert_array_equal(run_c(lib, t, kind), golden(t), err_msg=f"{kind} {n_in}x{n_out}")
        t = shared_layer(rng, n_in, n_out, density)
        np.testing.assert_array_equal(run_c(lib, t, "shared"), golden(t), err_msg=f"shared {n_in}x{n_out}")


@settings(max_examples=1000, deadline=None)
@given(acc=st.one_of(st.integers(-2**31, 2**31 - 1), st.sampled_from([-2**31, -1, 0, 1, 2**31 - 1])),
       mult=st.one_of(st.integers(0, 2**31 - 1), st.sampled_from([0, 1, 2**30, 2**31 - 1])),
       shift=st.integers(-30, 31))
def test_requantize_matches_big_integers(lib, acc, mult, shift):
    """Single rounding = round half up of acc * mult / 2^(31 + shift), computed with exact rationals."""
    from fractions import Fraction
    import math

    exact = math.floor(Fraction(acc * mult, 2 ** (31 + shift)) + Fraction(1, 2))
    from compress.quantize import requantize

    assert int(requantize(acc, mult, shift)) == exact
    # the C version saturates to [-2^30, 2^30], which the int8 clamp after it cannot tell from the exact value
    assert lib.pz_q8_requantize(acc, mult, shift) == min(max(exact, -2**30), 2**30)


def test_pack_round_trips():
    rng = np.random.default_rng(3)
    for n_out, n_in in ((1, 1), (10, 100), (13, 787), (300, 784)):
        w = rng.integers(-127, 128, (n_out, n_in)).astype(np.int8)
        w[rng.random(w.shape) < 0.9] = 0
        packed = layout.pack_dense(w)
        assert packed.nbytes == layout.dense_bytes(n_out, n_in)
        np.testing.assert_array_equal(layout.unpack_dense(packed, n_out, n_in), w)
        entries, col_len = layout.pack_sparse(w)
        assert col_len.size == n_in and entries.nbytes == 2 * int(col_len.sum())
        np.testing.assert_array_equal(layout.unpack_sparse(entries, col_len, n_out), w)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_out=st.integers(1, 300), n_in=st.integers(1, 6),
       density=st.sampled_from([0.9, 0.2, 0.02]), levels=st.integers(1, 7))
def test_shared_pack_round_trips(seed, n_out, n_in, density, levels):
    t = shared_layer(np.random.default_rng(seed), n_in, n_out, density, levels)
    w = t["w"]
    entries, col_len, book = layout.pack_shared(w)
    np.testing.assert_array_equal(layout.unpack_shared(entries, col_len, book, n_out), w)
    assert book[0] == 0 and book.dtype == np.int8 and book.size == 8
    assert set(np.unique(w[w != 0])) == set(book[book != 0])
    # one entry per non-zero weight plus one filler per 31 positions of a longer gap (the first gap counts from 0),
    # column by column (gaps over the output index)
    fillers = 0
    for column in w.T:
        prev = 0
        for j in np.flatnonzero(column):
            fillers += (int(j) - prev - 1) // 31 if j > prev else 0
            prev = int(j)
    assert col_len.size == n_in and int(col_len.sum()) == entries.size == int(np.count_nonzero(w)) + fillers
    parts = layout.int8_layer_bytes(w, "shared")
    assert parts["total"] == entries.size + 2 * n_in + 8 + 4 * n_out + 5 + 4


def test_shared_format_bytes_and_errors():
    w = np.zeros((80, 2), np.int8)   # (out, in): two input columns
    w[[0, 1, 40], 0] = [5, -3, 5]
    w[79, 1] = 9
    entries, col_len, book = layout.pack_shared(w)
    assert list(book) == [0, -3, 5, 9, 0, 0, 0, 0]
    code = {-3: 1, 5: 2, 9: 3}
    # gap << 3 | code; a gap over 31 takes (gap 31, code 0) fillers
    assert list(entries) == [0 << 3 | code[5], 1 << 3 | code[-3], 31 << 3, 8 << 3 | code[5],
                             31 << 3, 31 << 3, 17 << 3 | code[9]]
    assert list(col_len) == [4, 3]
    w[:8, 1] = np.arange(1, 9)
    with pytest.raises(ValueError, match="10 distinct non-zero weights"):
        layout.pack_shared(w)
    with pytest.raises(TypeError):
        layout.pack_shared(w.astype(np.int16))


def test_choose_storage_picks_shared_only_when_the_kernel_can_run_it():
    rng = np.random.default_rng(6)
    t = shared_layer(rng, 300, 20, density=0.1)
    assert layout.choose_storage(t["w"], t["mult"], t["shift"]) == "shared"
    assert layout.choose_storage(t["w"]) == "sparse"  # no requantization given: shared is not an option
    mult = t["mult"].copy()
    mult[3] += 1
    assert layout.choose_storage(t["w"], mult, t["shift"]) == "sparse"  # per-channel multipliers
    assert layout.choose_storage(random_layer(rng, 300, 20, 0.1)["w"], t["mult"], t["shift"]) == "sparse"
    full = shared_layer(rng, 20, 300, 1.0)["w"]  # bytes decide even at full density: 1 byte per weight either way,
    assert layout.choose_storage(full, t["mult"][:1].repeat(300), t["shift"][:1].repeat(300)) == "shared"  # but
    # one multiplier per layer (and 2 bytes per input column against 5 per output of requantization)
    assert layout.choose_storage(full) == "dense"
    wide = shared_layer(rng, 20, layout.SHARED_MAX_OUT + 1, density=0.1)  # its accumulators would not fit the stack
    assert layout.choose_storage(wide["w"], wide["mult"], wide["shift"]) == "sparse"


def test_folded_bias_identity():
    """bias_folded + sum xu*w == bias + sum (q - zp_in) * w for q = xu - 128, in Python integers."""
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, (5, 9)).astype(np.int8)
    bias = rng.integers(-1000, 1000, 5).astype(np.int32)
    xu = rng.integers(0, 256, 9)
    for zp in (-128, 0, 77, 127):
        fb = layout.folded_bias(bias, w, zp)
        for j in range(5):
            lhs = int(fb[j]) + sum(int(xu[k]) * int(w[j, k]) for k in range(9))
            rhs = int(bias[j]) + sum((int(xu[k]) - 128 - zp) * int(w[j, k]) for k in range(9))
            assert lhs == rhs


# -- the Cortex-M0+ build -------------------------------------------------------------------------------------------
def _need_arm_gcc():
    if shutil.which(ARM_GCC) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{ARM_GCC} is missing in CI (apt-get install gcc-arm-none-eabi)")
        pytest.skip(f"{ARM_GCC} not installed (apt-get install gcc-arm-none-eabi)")


def test_kernels_cross_compile_for_m0plus(tmp_path):
    _need_arm_gcc()
    for src in SOURCES:
        obj = tmp_path / (src.stem + ".o")
        r = subprocess.run([ARM_GCC, *ARM_FLAGS, f"-I{KERNELS}", "-c", str(src), "-o", str(obj)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(tmp_path / "int8_dense_m0.o")], capture_output=True,
                         text=True).stdout
    for loop in ("pz_q8_skip8_m0", "pz_q8_skip4_m0", "pz_q8_dot8_m0", "pz_q8_dot4_m0"):
        assert f"<{loop}>:" in dis, f"the ARMv6-M build must contain the assembly loop {loop}"
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(tmp_path / "int8_shared.o")], capture_output=True,
                         text=True).stdout
    assert "<pz_q8_shared_col_m0>:" in dis


def test_arm_flags_are_firmware_builds():
    """The kernels are tested as the firmware compiles them (less its picolibc define; no libc here)."""
    from firmware import build

    firmware_flags = [f for f in build.CPU_FLAGS + build.C_FLAGS if f != "-DPICOLIBC_INTEGER_PRINTF_SCANF"]
    assert sorted(ARM_FLAGS) == sorted(firmware_flags + ["-ffreestanding"])


def test_arm_layer_struct_matches_int8_h(tmp_path):
    """The harness's pz_q8_layer_t offsets are the M0+ compiler's (int8.h is the source of truth)."""
    _need_arm_gcc()
    checks = [f"_Static_assert(sizeof(pz_q8_layer_t) == {ctypes.sizeof(ArmLayer)}, \"size\");"]
    checks += [f"_Static_assert(offsetof(pz_q8_layer_t, {name}) == {getattr(ArmLayer, name).offset}, \"{name}\");"
               for name, _ in ArmLayer._fields_]
    src = tmp_path / "layout.c"
    src.write_text('#include <stddef.h>\n#include "int8.h"\n' + "\n".join(checks) + "\n")
    r = subprocess.run([ARM_GCC, *ARM_FLAGS, f"-I{KERNELS}", "-c", str(src), "-o", str(tmp_path / "layout.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def m0_image(tmp_path_factory):
    _need_arm_gcc()
    return KernelImage.build(tmp_path_factory.mktemp("m0"))


def run_m0(image, t, fn, out_xor=0):
    """Call a kernel of the M0+ build in rp2040_sim (Cortex-M0 model: Thumb-1 only, unaligned loads fault)."""
    return image.call(t, fn, out_xor).y


@pytest.mark.parametrize("n_in,n_out,density,edge", [(784, 24, 1.0, None), (64, 16, 1.0, "max"),
                                                    (300, 10, 0.1, None), (102, 13, 0.5, None),
                                                    (8, 8, 1.0, "zero"), (4, 8, 1.0, None),
                                                    (44, 12, 1.0, None), (1002, 8, 1.0, "max")])
def test_m0_build_equals_golden_in_unicorn(m0_image, n_in, n_out, density, edge):
    """Every entry into the 16-input unrolled loop: 4-input blocks mod 4 = 0 (784, 64), 1 (4, 102, 1002), 2 (8),
    3 (300, 44); a last group of 4 outputs (44x12, 102x13); leftover inputs (102, 1002)."""
    t = random_layer(np.random.default_rng(n_in * 100 + n_out), n_in, n_out, density, edge)
    want = golden(t)
    for fn in ("pz_q8_dense_m0", "pz_q8_dense_ref", "pz_q8_sparse"):
        np.testing.assert_array_equal(run_m0(m0_image, t, fn, out_xor=0x80), want, err_msg=fn)


@pytest.mark.parametrize("n_in,n_out,density,levels,edge", [(784, 24, 0.07, 7, None), (300, 16, 0.15, 7, None),
                                                             (100, 10, 0.5, 3, None), (64, 9, 1.0, 2, "max"),
                                                             (37, 11, 1.0, 1, "zero"), (784, 5, 0.005, 7, "tiny")])
def test_m0_shared_equals_golden_in_unicorn(m0_image, n_in, n_out, density, levels, edge):
    """The Thumb-1 column loop: columns of every length mod 4 (entered part way, Duff's device), fillers over long
    gaps, saturation, and entries at an odd address."""
    t = shared_layer(np.random.default_rng(n_in * 7 + n_out), n_in, n_out, density, levels, edge)
    _, col_len, _ = layout.pack_shared(t["w"])
    if n_out >= 16:
        assert {int(n) % 4 for n in col_len} == {0, 1, 2, 3}
    np.testing.assert_array_equal(run_m0(m0_image, t, "pz_q8_shared", out_xor=0x80), golden(t))


@pytest.mark.parametrize("n_in,n_out,zeros", [(784, 300, 0.83), (784, 13, 0.97), (1002, 12, 0.7), (300, 10, 1.0),
                                              (801, 4, 0.5)])
def test_m0_zero_skipping_equals_golden_in_unicorn(m0_image, n_in, n_out, zeros):
    """The Thumb-1 skipping loops on mostly-zero inputs: dense 8- and 4-output groups, a list length of every value
    mod 4, an all-zero input (empty list), layers over PZ_Q8_SLICE (800) inputs compacted slice by slice; sparse and
    shared columns."""
    rng = np.random.default_rng(n_in + n_out)
    t = with_zero_inputs(random_layer(rng, n_in, n_out, 1.0), rng, zeros)
    t["xu"] = np.concatenate([t["xu"], t["xu"][:1] * 0])                    # and one input that is all zeros
    np.testing.assert_array_equal(run_m0(m0_image, t, "pz_q8_dense_m0", out_xor=0x80), golden(t))
    t = with_zero_inputs(random_layer(rng, n_in, n_out, 0.1), rng, zeros)
    np.testing.assert_array_equal(run_m0(m0_image, t, "pz_q8_sparse", out_xor=0x80), golden(t))
    if n_out <= layout.SHARED_MAX_OUT:
        t = with_zero_inputs(shared_layer(rng, n_in, n_out, 0.1), rng, zeros)
        np.testing.assert_array_equal(run_m0(m0_image, t, "pz_q8_shared", out_xor=0x80), golden(t))


def test_whole_model_through_c_kernels_equals_golden(lib, tmp_path):
    """A pruned + int8 MNIST model run layer by layer through the C kernels chosen by compress.layout.kernel_layers
    (what firmware codegen emits), activations chained as offset-binary bytes, equals compress.reference.forward on
    500 test images; the same with every layer forced dense through both dense kernels."""
    import jax

    from compress import quantize
    from zoo import data
    from zoo.modeldir import SavedModel
    from zoo.nn import Dense, ReLU, Sequential

    ds = data.load("mnist")
    spec = Sequential([Dense(784, 40), ReLU(), Dense(40, 13), ReLU(), Dense(13, 10)])
    params = [{k: np.array(v) for k, v in p.items()} for p in spec.init(jax.random.key(5))]
    rng = np.random.default_rng(5)
    for i, p in enumerate(params):
        if p:
            if i < 4:  # the first two layers sparse, the last one dense
                p["w"][rng.random(p["w"].shape) < 0.85] = 0
            p["b"] = rng.normal(size=p["b"].shape).astype(np.float32) * 0.05
    qmeta, extra, fparams = quantize.quantize_model(spec, params, ds.input_scale, ds.x_train[:1000])
    for lm in qmeta["layers"]:
        lm["storage"] = layout.choose_storage(extra[f"q.layers.{lm['index']}.w"])
        for name, tensor in layout.storage_tensors(lm["storage"], extra[f"q.layers.{lm['index']}.w"]).items():
            extra[f"s.layers.{lm['index']}.{name}"] = tensor
    model = SavedModel(spec, fparams, {"dtype": "float32", "input": {"scale": ds.input_scale},
                                       "quantization": qmeta}, extra)
    raw = ds.x_test[:500]
    want = reference.forward(model, raw)
    assert len(np.unique(want)) > 50, "a model whose outputs vary, so the comparison can fail"
    assert [lm["storage"] for lm in qmeta["layers"]] == ["sparse", "sparse", "dense"]

    def run(layers, force_kernel=None):
        structs = []
        for kl in layers:
            keep = []

            def buf(a):
                a = np.ascontiguousarray(a)
                keep.append(a)
                return a.ctypes.data
            w = np.frombuffer(kl["w"].tobytes() + bytes(-len(kl["w"]) % 4), np.uint32)
            lay = Layer(kl["n_in"], kl["n_out"], buf(w), None if kl["row_len"] is None else buf(kl["row_len"]),
                        buf(kl["bias"]), buf(kl["multiplier"]), buf(kl["shift"]), kl["out_zp"], kl["act_min"],
                        kl["act_max"], kl["out_xor"], None)
            fn = getattr(lib, force_kernel or kl["kernel"])
            structs.append((lay, keep, fn))
        outs = []
        for row in raw:
            x = np.ascontiguousarray(row)  # the raw pixels are the first layer's offset-binary input
            for lay, _, fn in structs:
                y = np.zeros(lay.n_out, np.uint8)
                fn(ctypes.byref(lay), ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(y.ctypes.data))
                x = y
            outs.append(x.view(np.int8))
        return np.array(outs)

    np.testing.assert_array_equal(run(layout.kernel_layers(model)), want)
    for lm in qmeta["layers"]:
        lm["storage"] = "dense"
    for kernel in ("pz_q8_dense_m0", "pz_q8_dense_ref"):
        np.testing.assert_array_equal(run(layout.kernel_layers(model), kernel), want, err_msg=kernel)
