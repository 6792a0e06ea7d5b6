import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo import host, modeldir
from zoo.models import MODELS, UnknownModelError, get_model
from zoo.nn import Dense, ReLU, Sequential, Sigmoid, SpecError, Tanh

# Pinned: (in*out + out) summed over the Dense layers, computed by hand.
PARAM_COUNTS = {"xor": 13, "mnist_50": 39_760, "mnist_100": 79_510, "mnist_200": 159_010,
                "mnist_300": 238_510, "mnist_300_100": 266_610, "fashion_300": 238_510}


@pytest.mark.parametrize("name", sorted(PARAM_COUNTS))
def test_param_counts_are_pinned(name):
    spec = get_model(name).spec
    assert spec.param_count() == PARAM_COUNTS[name]
    params = spec.init(jax.random.key(0))
    assert sum(x.size for x in jax.tree.leaves(params)) == PARAM_COUNTS[name]


def test_registry_names():
    assert set(MODELS) == set(PARAM_COUNTS)


def test_unknown_model_lists_known_ones():
    with pytest.raises(UnknownModelError) as err:
        get_model("mnist_999")
    assert "mnist_999" in str(err.value) and "mnist_300_100" in str(err.value) and "xor" in str(err.value)


@pytest.mark.parametrize("name", sorted(PARAM_COUNTS))
def test_registry_specs_round_trip_json(name):
    spec = get_model(name).spec
    assert Sequential.from_json(spec.to_json()) == spec
    assert Sequential.from_json(spec.to_json()).to_json() == spec.to_json()


_activation = st.sampled_from([ReLU(), Sigmoid(), Tanh()])


@st.composite
def specs(draw):
    widths = draw(st.lists(st.integers(1, 50), min_size=2, max_size=5))
    layers = []
    for a, b in zip(widths, widths[1:]):
        layers.append(Dense(a, b))
        layers += draw(st.lists(_activation, max_size=2))
    return Sequential(layers, output="binary" if widths[-1] == 1 else "logits")


@given(specs())
@settings(max_examples=60, deadline=None)
def test_any_spec_round_trips_json(spec):
    assert Sequential.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("bad, message", [
    ({"format": "other/1", "layers": []}, "spec format 'other/1'"),
    ({"format": "picozoo.sequential/1", "layers": [{"type": "conv"}]}, "layer 0 has type 'conv'; known types"),
    ({"format": "picozoo.sequential/1", "layers": [{"type": "relu"}]}, "at least one Dense"),
    ({"format": "picozoo.sequential/1", "layers": [{"type": "dense", "in": 4, "out": 3},
                                                   {"type": "dense", "in": 2, "out": 1}]}, "3 != 2"),
    ({"format": "picozoo.sequential/1", "output": "softmax",
      "layers": [{"type": "dense", "in": 4, "out": 3}]}, "output 'softmax'"),
    ({"format": "picozoo.sequential/1", "output": "binary",
      "layers": [{"type": "dense", "in": 4, "out": 3}]}, "binary output needs 1 unit"),
])
def test_bad_specs_are_rejected(bad, message):
    with pytest.raises(SpecError, match=message):
        Sequential.from_dict(bad)


@pytest.mark.parametrize("name", ["xor", "mnist_300_100"])
def test_jax_apply_matches_numpy_host_model(tmp_path, name):
    """The JAX forward and the NumPy reference the firmware is judged by agree."""
    cfg = get_model(name)
    params = cfg.spec.init(jax.random.key(3))
    meta = {"model": name, "dataset": cfg.dataset, "input": {"scale": 1 / 255, "features": cfg.spec.in_features},
            "dtype": "float32", "seed": 3}
    modeldir.save(tmp_path, cfg.spec, params, meta)
    raw = np.random.default_rng(0).integers(0, 256, (16, cfg.spec.in_features), dtype=np.uint8)
    expected = cfg.spec.apply(params, jnp.asarray(raw, jnp.float32) * (1 / 255))
    np.testing.assert_allclose(host.forward(modeldir.load(tmp_path), raw), expected, rtol=1e-5, atol=1e-5)
