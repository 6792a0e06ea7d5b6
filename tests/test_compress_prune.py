"""Pruning: exact sparsity, masks kept through optax fine-tuning, the cubic schedule, structured slicing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress import finetune as ft
from zoo.models import ModelConfig
from zoo.nn import Dense, ReLU, Sequential

SPEC = Sequential([Dense(784, 24), ReLU(), Dense(24, 12), ReLU(), Dense(12, 10)])


def _params(seed=0):
    return [{k: np.asarray(v) for k, v in p.items()} for p in SPEC.init(jax.random.key(seed))]


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.97])
def test_magnitude_masks_exact_sparsity_and_smallest_weights(scope, sparsity):
    params = _params()
    masks = ft.magnitude_masks(SPEC, params, sparsity, scope)
    dense = [0, 2, 4]
    ws = np.concatenate([params[i]["w"].ravel() for i in dense])
    ms = np.concatenate([masks[i]["w"].ravel() for i in dense])
    assert abs(np.mean(ms == 0) - sparsity) < 1e-3
    for i in dense:
        assert np.all(masks[i]["b"] == 1), "biases are never pruned"
        if scope == "layer":
            assert abs(np.mean(masks[i]["w"] == 0) - sparsity) < 2 / masks[i]["w"].size + 1e-9
    if 0 < sparsity:
        if scope == "global":  # every pruned weight is no larger than every kept one
            assert np.abs(ws[ms == 0]).max() <= np.abs(ws[ms == 1]).min()


def test_keep_masked_freezes_pruned_weights_through_adamw():
    params = [{k: jnp.asarray(v) for k, v in p.items()} for p in _params()]
    masks = ft.magnitude_masks(SPEC, jax.tree.map(np.asarray, params), 0.8)
    jm = jax.tree.map(jnp.asarray, masks)
    opt = optax.chain(optax.adamw(1e-2, weight_decay=0.1), ft.keep_masked())
    params = ft.apply_masks(params, jm)
    state = ft.with_masks(opt.init(params), jm)
    rng = np.random.default_rng(0)
    for _ in range(5):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    for p, m in zip(params, masks):
        for k in p:
            assert np.all(np.asarray(p[k])[m[k] == 0] == 0)
            if k == "w":
                assert np.all(np.asarray(p[k])[m[k] == 1] != 0), "kept weights still train"


def test_zhu_gupta_schedule():
    values = [ft.zhu_gupta(t, 100, 0.9) for t in range(0, 120, 10)]
    assert values[0] == 0.0 and values[-1] == 0.9 and ft.zhu_gupta(100, 100, 0.9) == 0.9
    assert all(a < b for a, b in zip(values[:10], values[1:11])), "strictly rising during the ramp"
    assert values[1] > 0.9 * 0.25, "cubic: fast at first (27 % of the target after 10 % of the ramp)"


def test_finetune_reaches_sparsity_and_keeps_masks(mnist):
    cfg = ModelConfig("tiny", SPEC, dataset="mnist", epochs=2)
    fc = ft.FinetuneConfig(epochs=2, lr=2e-3, train_limit=2048, prune=0.9, prune_every=4)
    params, masks, info = ft.finetune(cfg, _params(), mnist, fc)
    ws = np.concatenate([params[i]["w"].ravel() for i in (0, 2, 4)])
    assert abs(np.mean(ws == 0) - 0.9) < 1e-3
    assert info["mask_updates"] > 3
    for p, m in zip(params, masks):  # the final masks and the zeros coincide
        if "w" in p:
            np.testing.assert_array_equal(p["w"] == 0, m["w"] == 0)
    # fine-tuning with those masks fixed (no more pruning) moves the kept weights and leaves zeros at zero
    fc2 = ft.FinetuneConfig(epochs=1, lr=2e-3, train_limit=1024)
    params2, _, _ = ft.finetune(cfg, params, mnist, fc2, masks=masks)
    for p, q in zip(params, params2):
        if "w" in p:
            assert np.all(q["w"][p["w"] == 0] == 0)
            assert not np.allclose(q["w"][p["w"] != 0], p["w"][p["w"] != 0])


def test_structured_slice_is_the_masked_network(mnist):
    params = _params(1)
    keep = ft.neuron_keep(SPEC, params, 0.5)
    assert {i: int(v.sum()) for i, v in keep.items()} == {0: 12, 2: 6}
    masked = ft.apply_masks(params, ft.neuron_masks(SPEC, params, 0.5))
    spec2, sliced = ft.slice_neurons(SPEC, masked, keep)
    assert [(d.in_features, d.out_features) for d in spec2.dense_layers] == [(784, 12), (12, 6), (6, 10)]
    x = mnist.x_test[:64].astype(np.float32) / 255
    np.testing.assert_allclose(np.asarray(spec2.apply(sliced, x)), np.asarray(SPEC.apply(masked, x)), atol=1e-5)


def test_float64_models_fine_tune_in_float64(mnist):
    params = [{k: np.asarray(v, np.float64) for k, v in p.items()} for p in _params(2)]
    cfg = ModelConfig("tiny64", SPEC, dataset="mnist", epochs=1)
    out, _, _ = ft.finetune(cfg, params, mnist, ft.FinetuneConfig(epochs=1, train_limit=512, prune=0.5))
    assert all(p[k].dtype == np.float64 for p in out for k in p)
    assert abs(np.mean(np.concatenate([out[i]["w"].ravel() for i in (0, 2, 4)]) == 0) - 0.5) < 1e-3


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), side=st.integers(2, 9), max_shift=st.integers(0, 2))
def test_shift_images_moves_each_image_by_its_own_offset(seed, n, side, max_shift):
    """Each image equals its original moved by some (dy, dx) in range, with zeros shifted in (checked against a
    per-image loop over every allowed offset)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 256, (n, side * side)).astype(np.uint8)  # no zeros, so a moved image is recognisable
    out = ft.shift_images(x, max_shift, np.random.default_rng(seed))
    assert out.shape == x.shape and out.dtype == x.dtype
    for img, moved in zip(x.reshape(n, side, side), out.reshape(n, side, side)):
        candidates = []
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                want = np.zeros_like(img)
                for r in range(side):
                    for c in range(side):
                        if 0 <= r - dy < side and 0 <= c - dx < side:
                            want[r, c] = img[r - dy, c - dx]
                candidates.append(np.array_equal(moved, want))
        assert any(candidates)


def test_shift_images_draws_every_offset_and_is_seeded():
    x = np.arange(1, 17, dtype=np.uint8)[None, :].repeat(2000, axis=0)
    a = ft.shift_images(x, 1, np.random.default_rng(7))
    assert len({row.tobytes() for row in a}) == 9  # all nine offsets occur
    np.testing.assert_array_equal(a, ft.shift_images(x, 1, np.random.default_rng(7)))
    with pytest.raises(ValueError, match="square images"):
        ft.shift_images(np.zeros((1, 12), np.uint8), 1, np.random.default_rng(0))
