"""compress/share.py: the k-means codebook, the shared forward pass and the int8 export, against NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress import share
from zoo.nn import Dense, ReLU, Sequential


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400), levels=st.integers(1, 15))
def test_kmeans_is_a_lloyd_fixed_point(seed, n, levels):
    """Every value sits in its nearest centroid's cluster and every used centroid is its cluster's mean."""
    rng = np.random.default_rng(seed)
    v = np.round(rng.normal(size=n) * 40, 1)
    c, a = share.kmeans_1d(v, levels)
    assert c.size == min(levels, np.unique(v).size) and a.shape == v.shape
    dist = np.abs(v[:, None] - c[None, :])
    np.testing.assert_allclose(dist[np.arange(n), a], dist.min(axis=1), atol=1e-9)
    for k in np.unique(a):
        assert c[k] == pytest.approx(v[a == k].mean())
    assert np.array_equal(share.kmeans_1d(v, levels)[1], a)  # deterministic


def _model(rng):
    spec = Sequential([Dense(30, 12), ReLU(), Dense(12, 5)])
    params = [{k: np.array(v) for k, v in p.items()} for p in spec.init(jax.random.key(1))]
    for p in params:
        if p:
            p["w"][rng.random(p["w"].shape) < 0.5] = 0
    return spec, params


@pytest.mark.parametrize("per_layer", [True, False])
def test_shared_forward_equals_numpy_with_codebook_weights(per_layer):
    rng = np.random.default_rng(2)
    spec, params = _model(rng)
    layers, shared = share.build(spec, params, 4, per_layer_scale=per_layer)
    fp = share.float_params(layers, shared)
    for sl, i in zip(layers, (0, 2)):
        w = fp[i]["w"]
        np.testing.assert_array_equal(w == 0, params[i]["w"] == 0)  # pruned weights stay zero
        units = w / sl.scales[None, :]
        assert np.unique(np.round(units[w != 0], 4)).size <= 4  # four shared values in scale units
        if per_layer:
            assert np.unique(sl.scales).size == 1
    x = rng.random((7, 30)).astype(np.float32)
    sspec = share.SharedSpec(spec, layers, None, 1.0)
    got = np.asarray(sspec.apply(jax.tree.map(jnp.asarray, shared), jnp.asarray(x)))
    np.testing.assert_allclose(got, _numpy_forward(fp, x), rtol=1e-5, atol=1e-5)


def _numpy_forward(params, x):
    h = np.maximum(x @ params[0]["w"] + params[0]["b"], 0)
    return h @ params[2]["w"] + params[2]["b"]


def test_int8_weights_round_the_centroids():
    rng = np.random.default_rng(3)
    spec, params = _model(rng)
    layers, shared = share.build(spec, params, 7, per_layer_scale=True)
    q = share.int8_weights(layers, shared)
    for sl in layers:
        wq, scales = q[sl.index]
        c = np.asarray(shared[sl.index]["c"], np.float64) * 127
        assert wq.dtype == np.int8 and wq.shape == sl.assign.T.shape
        assert set(np.unique(wq[wq != 0])) <= set(np.rint(c).astype(int))
        assert np.unique(wq[wq != 0]).size <= 7 and np.abs(wq.astype(int)).max() <= 127
        np.testing.assert_array_equal(scales, sl.scales)
