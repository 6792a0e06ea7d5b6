"""The float kernels, compiled for the host with firmware.hostcc, against NumPy.

Tolerances: dense is compared with NumPy in float64 under the classic summation error bound
|error| <= 2 (n_in + 1) eps (|b_j| + sum_i |x_i w_ij|) (eps of the kernel's dtype; the factor 2 covers the
reference's own rounding when the kernel is float64); element-wise kernels
agree with NumPy in the same dtype to 4 ulp (libm exp/tanh differ from NumPy's by at most a couple of ulp).
"""

import ctypes
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from firmware import hostcc

KERNELS = Path(__file__).resolve().parents[1] / "firmware" / "kernels"
SOURCES = ["input.c", "dense_f32.c", "dense_f64.c", "activations.c", "argmax.c"]
CTYPES = {np.float32: ctypes.c_float, np.float64: ctypes.c_double}
SUFFIX = {np.float32: "f32", np.float64: "f64"}


@pytest.fixture(scope="module")
def lib():
    return hostcc.build([KERNELS / s for s in SOURCES], include_dirs=[KERNELS], name="pz_float_kernels")


def ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def finite(dtype, lo=-100.0, hi=100.0):
    return st.floats(lo, hi, width=np.dtype(dtype).itemsize * 8, allow_nan=False, allow_infinity=False)


@st.composite
def dense_case(draw, dtype):
    n_in = draw(st.integers(1, 40))
    n_out = draw(st.integers(1, 40))
    elements = finite(dtype, -10, 10)
    x = draw(hnp.arrays(dtype, n_in, elements=elements | st.just(0.0)))
    w = draw(hnp.arrays(dtype, (n_in, n_out), elements=elements))
    b = draw(hnp.arrays(dtype, n_out, elements=elements))
    return x, w, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_dense_equals_numpy(lib, dtype, data):
    x, w, b = data.draw(dense_case(dtype))
    y = np.full(w.shape[1], np.nan, dtype)
    getattr(lib, f"pz_dense_{SUFFIX[dtype]}")(ptr(x), ptr(w), ptr(b), ptr(y), w.shape[0], w.shape[1])
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    reference = x64 @ w64 + b64
    eps = np.finfo(dtype).eps
    bound = 2 * (w.shape[0] + 1) * eps * (np.abs(b64) + np.abs(x64) @ np.abs(w64)) + np.finfo(dtype).tiny
    assert np.all(np.abs(y - reference) <= bound), (y, reference, bound)


def test_dense_skips_zero_inputs_exactly(lib):
    """A zero input must contribute nothing, even against huge weights (the kernel skips its row)."""
    x = np.array([0.0, 2.0], np.float32)
    w = np.array([[3e38, 3e38], [1.0, -1.0]], np.float32)
    b = np.array([0.5, 0.25], np.float32)
    y = np.zeros(2, np.float32)
    lib.pz_dense_f32(ptr(x), ptr(w), ptr(b), ptr(y), 2, 2)
    assert y.tolist() == [2.5, -1.75]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,reference", [
    ("relu", lambda x: np.maximum(x, 0)),
    ("relu6", lambda x: np.minimum(np.maximum(x, 0), 6)),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", np.tanh),
])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_activations_equal_numpy(lib, dtype, name, reference, data):
    x = data.draw(hnp.arrays(dtype, st.integers(1, 64), elements=finite(dtype)))
    y = np.full_like(x, np.nan)
    getattr(lib, f"pz_{name}_{SUFFIX[dtype]}")(ptr(x), ptr(y), len(x))
    with np.errstate(over="ignore"):
        expected = reference(x).astype(dtype)
    np.testing.assert_array_max_ulp(y, expected, maxulp=4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_work_in_place(lib, dtype):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], dtype)
    for name, reference in [("relu", lambda v: np.maximum(v, 0)), ("tanh", np.tanh)]:
        buf = x.copy()
        getattr(lib, f"pz_{name}_{SUFFIX[dtype]}")(ptr(buf), ptr(buf), len(buf))
        np.testing.assert_array_max_ulp(buf, reference(x).astype(dtype), maxulp=4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_argmax_equals_numpy_first_maximum(lib, dtype, data):
    # few distinct values so ties are common; NumPy returns the first maximum, so must the kernel
    y = data.draw(hnp.arrays(dtype, st.integers(1, 30), elements=st.sampled_from([-1.5, 0.0, 2.0, 3.25])))
    fn = getattr(lib, f"pz_argmax_{SUFFIX[dtype]}")
    fn.restype = ctypes.c_int32
    assert fn(ptr(y), len(y)) == int(np.argmax(y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_input_scaling_equals_host_model(lib, dtype, data):
    """x = raw * scale in the model dtype, exactly as zoo/host.py computes it."""
    raw = data.draw(hnp.arrays(np.uint8, st.integers(1, 100)))
    scale = data.draw(st.sampled_from([1.0, 1.0 / 255.0, 0.5, 3.0e-3]))
    y = np.full(len(raw), np.nan, dtype)
    fn = getattr(lib, f"pz_input_u8_{SUFFIX[dtype]}")
    fn.argtypes = [ctypes.c_void_p, CTYPES[dtype], ctypes.c_void_p, ctypes.c_uint32]
    fn(ptr(raw), dtype(scale), ptr(y), len(raw))
    np.testing.assert_array_equal(y, raw.astype(dtype) * dtype(scale))


def test_hostcc_caches_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("PICOZOO_HOSTCC_CACHE", str(tmp_path))
    src = tmp_path / "one.c"
    src.write_text("int pz_one(void) { return 1; }\n")
    assert hostcc.build([src], name="one").pz_one() == 1
    assert len(list(tmp_path.glob("one-*.so"))) == 1
    hostcc.build([src], name="one")
    assert len(list(tmp_path.glob("one-*.so"))) == 1  # same content: no rebuild
    src.write_text("int pz_one(void) { return 2; }\n")
    assert hostcc.build([src], name="one").pz_one() == 2
    assert len(list(tmp_path.glob("one-*.so"))) == 2


def test_hostcc_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("PICOZOO_HOSTCC_CACHE", str(tmp_path))
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { return x; }\n")
    with pytest.raises(hostcc.HostCcError, match="host compile failed"):
        hostcc.build([bad])
    assert not list(tmp_path.glob("*.so")) and not list(tmp_path.glob(".*tmp"))
    with pytest.raises(hostcc.HostCcError, match="not found"):
        hostcc.build([tmp_path / "missing.c"])
    monkeypatch.setenv("CC", "no-such-cc-picozoo")
    with pytest.raises(hostcc.HostCcError, match="no-such-cc-picozoo"):
        hostcc.build([bad])
