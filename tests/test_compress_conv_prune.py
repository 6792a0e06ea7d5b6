"""Structured pruning of conv nets (compress/structured.py): which channels couple, the sliced network's shapes,
and that slicing the removed channels gives the same function as masking them to zero (zoo.host's float layers);
int8 quantization of a conv net: tensor layouts, fused activations, agreement with the float view, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from compress import netspec, structured

CONV_NET = [
    {"type": "input", "shape": [8, 8, 1]},
    {"type": "conv2d", "in": 1, "out": 6, "kernel": [3, 3], "stride": [1, 1], "padding": "same"},   # 1
    {"type": "relu"},
    {"type": "max_pool2d", "pool": [2, 2], "stride": [2, 2], "padding": "valid"},
    {"type": "depthwise_conv2d", "channels": 6, "kernel": [3, 3], "stride": [1, 1], "padding": "same"},  # 4
    {"type": "relu6"},
    {"type": "conv2d", "in": 6, "out": 5, "kernel": [1, 1], "stride": [1, 1], "padding": "valid"},  # 6
    {"type": "relu"},
    {"type": "avg_pool2d", "pool": [2, 2], "stride": [2, 2], "padding": "valid"},
    {"type": "flatten"},  # (2, 2, 5) -> 20
    {"type": "dense", "in": 20, "out": 7},  # 10
    {"type": "relu"},
    {"type": "dense", "in": 7, "out": 3},  # 12
]


def random_params(dicts, rng):
    params = []
    for (shape_in, shape_out), d in zip(netspec.shapes(dicts), dicts):
        t = d["type"]
        if t == "conv2d":
            w = rng.normal(size=(*d["kernel"], d["in"], d["out"]))
        elif t == "depthwise_conv2d":
            w = rng.normal(size=(*d["kernel"], d["channels"]))
        elif t == "dense":
            w = rng.normal(size=(d["in"], d["out"]))
        else:
            params.append({})
            continue
        params.append({"w": w.astype(np.float64), "b": rng.normal(size=w.shape[-1])})
    return params


def test_shapes_follow_the_same_and_valid_rules():
    got = [o for _, o in netspec.shapes(CONV_NET)]
    assert got[1] == [8, 8, 6] and got[3] == [4, 4, 6] and got[6] == [4, 4, 5] and got[8] == [2, 2, 5]
    assert got[9] == [20] and got[12] == [3]


def test_groups_couple_depthwise_and_flattened_rows():
    gs = {g.producer: g for g in structured.groups(CONV_NET)}
    assert set(gs) == {1, 6, 10}, "the output layer is never a producer"
    assert gs[1].depthwise == (4,) and gs[1].consumer == 6 and gs[1].positions == 1
    assert gs[6].depthwise == () and gs[6].consumer == 10 and gs[6].positions == 4 and gs[6].channels == 5
    assert gs[10].consumer == 12 and gs[10].positions == 1


def test_slicing_equals_masking_and_shrinks_the_spec():
    rng = np.random.default_rng(1)
    params = random_params(CONV_NET, rng)
    keep = structured.keep(CONV_NET, params, 0.4)
    assert {i: int(v.sum()) for i, v in keep.items()} == {1: 4, 6: 3, 10: 4}  # round(0.4 * 6) = 2 removed, ...
    m = structured.masks(CONV_NET, params, keep)
    masked = [{k: v * m[i][k] for k, v in p.items()} for i, p in enumerate(params)]
    dicts, sliced = structured.slice_channels(CONV_NET, params, keep)
    assert dicts[1]["out"] == 4 and dicts[4]["channels"] == 4 and dicts[6]["in"] == 4 and dicts[6]["out"] == 3
    assert dicts[10]["in"] == 4 * 3 and dicts[10]["out"] == 4 and dicts[12]["in"] == 4
    assert sliced[6]["w"].shape == (1, 1, 4, 3) and sliced[10]["w"].shape == (12, 4)
    netspec.shapes(dicts)  # the smaller spec chains
    x = rng.uniform(0, 1, (4, 64))
    _, full = netspec.float_forward(CONV_NET, masked, x)
    _, small = netspec.float_forward(dicts, sliced, x)
    np.testing.assert_allclose(small, full, rtol=1e-10, atol=1e-10)
    # the scores rank what is removed: a channel made tiny in the producer goes first
    params[6]["w"][..., 2] *= 1e-6
    assert not structured.keep(CONV_NET, params, 0.2)[6][2]


def test_mlp_scores_are_the_hidden_neuron_scores():
    rng = np.random.default_rng(2)
    dicts = [{"type": "dense", "in": 9, "out": 6}, {"type": "relu"}, {"type": "dense", "in": 6, "out": 4}]
    params = random_params(dicts, rng)
    s = structured.scores(dicts, params)[0]
    np.testing.assert_array_equal(s, np.linalg.norm(params[0]["w"], axis=0) * np.linalg.norm(params[2]["w"], axis=1))


# -- int8 quantization of a conv net (layer dicts; the CLI path through a Sequential is in test_compress_conv_cli) --
from compress import quantize, reference  # noqa: E402
from zoo.modeldir import SavedModel  # noqa: E402


def quantized_conv_net(seed=0):
    rng = np.random.default_rng(seed)
    params = random_params(CONV_NET, rng)
    for p in params:
        if p:
            p["w"] = (p["w"] * 0.3).astype(np.float32)
            p["b"] = (p["b"] * 0.1).astype(np.float32)
    calib = rng.integers(0, 256, (300, 64)).astype(np.uint8)
    qmeta, extra, fparams = quantize.quantize_layers(CONV_NET, "logits", params, 1 / 255, calib)
    model = SavedModel(None, fparams, {"model": "t", "quantization": qmeta}, extra)
    return model, calib


def test_conv_tensors_and_meta_follow_the_format():
    model, _ = quantized_conv_net()
    layers = model.meta["quantization"]["layers"]
    assert [(lm["type"], lm["index"]) for lm in layers] == [
        ("conv2d", 1), ("max_pool2d", 3), ("depthwise_conv2d", 4), ("conv2d", 6), ("avg_pool2d", 8),
        ("flatten", 9), ("dense", 10), ("dense", 12)]
    assert model.extra["q.layers.1.w"].shape == (6, 3, 3, 1) and model.extra["q.layers.1.w"].dtype == np.int8
    assert model.extra["q.layers.4.w"].shape == (3, 3, 6)
    assert model.extra["q.layers.10.w"].shape == (7, 20)
    for i, k in ((1, 6), (4, 6), (6, 5), (10, 7), (12, 3)):
        assert model.extra[f"q.layers.{i}.bias"].dtype == np.int32 and model.extra[f"q.layers.{i}.bias"].shape == (k,)
        assert model.extra[f"q.layers.{i}.multiplier"].shape == (k,)
        assert model.extra[f"q.layers.{i}.shift"].dtype == np.int8
        w = model.extra[f"q.layers.{i}.w"]
        per_channel = np.abs(np.moveaxis(w, -1, 0) if w.ndim == 3 else w).reshape(k, -1).max(axis=1)
        assert np.all(per_channel == 127), "per-output-channel symmetric scales use the full range"
    by = {lm["index"]: lm for lm in layers}
    assert by[1]["activation"] == "relu" and by[1]["act_min"] == by[1]["output_zero_point"] == -128
    assert by[4]["activation"] == "relu6"
    assert by[4]["act_max"] == min(127, by[4]["output_zero_point"] + round(6 / by[4]["output_scale"]))
    assert by[3]["in_shape"] == [8, 8, 6] and by[3]["out_shape"] == [4, 4, 6] and by[3]["pool"] == [2, 2]
    assert by[4]["input_zero_point"] == by[1]["output_zero_point"], "pools pass scale and zero point through"
    assert by[12]["activation"] == "none" and by[12]["act_min"] == -128
    assert model.meta["quantization"]["output"]["zero_point"] == by[12]["output_zero_point"]


def test_int8_conv_outputs_track_the_float_view():
    """Dequantized golden outputs stay within a few output steps of the float model built from the dequantized
    weights (activation rounding is the only difference), and the classes agree almost always."""
    model, calib = quantized_conv_net(1)
    deq = reference.dequantize_outputs(model, reference.forward(model, calib))
    _, flt = netspec.float_forward(CONV_NET, model.params, calib.astype(np.float64) / 255)
    step = model.meta["quantization"]["output"]["scale"]
    assert np.max(np.abs(deq - flt)) <= 6 * step
    assert np.mean(np.argmax(deq, 1) == np.argmax(flt, 1)) >= 0.95


@pytest.mark.parametrize("layers,match", [
    ([{"type": "input", "shape": [4, 4, 1]}, {"type": "conv2d", "in": 1, "out": 2, "kernel": [3, 3],
      "stride": [1, 1], "padding": "same"}, {"type": "sigmoid"}, {"type": "flatten"}, {"type": "dense", "in": 32,
                                                                                      "out": 2}],
     r"layer 2 is sigmoid; int8 supports dense, conv2d"),
    ([{"type": "input", "shape": [4, 4, 1]}, {"type": "max_pool2d", "pool": [2, 2], "stride": [2, 2]},
      {"type": "relu"}], r"layer 2 \(relu\) does not follow a dense or conv layer"),
    ([{"type": "dense", "in": 3, "out": 3}, {"type": "relu"}, {"type": "batch_norm", "features": 3}],
     r"layer 2 \(batch_norm\) does not follow"),
])
def test_unsupported_conv_nets_are_named(layers, match):
    with pytest.raises(quantize.QuantizationError, match=match):
        quantize.check_layers(layers, "logits", "net")


def test_keep_limited_to_conv_producers_leaves_the_dense_group_whole():
    params = random_params(CONV_NET, np.random.default_rng(2))
    keep = structured.keep(CONV_NET, params, 0.4, producers=("conv2d",))
    assert set(keep) == {1, 6}, "the hidden dense layer's group is not pruned"
    full = structured.keep(CONV_NET, params, 0.4)
    for i in (1, 6):
        np.testing.assert_array_equal(keep[i], full[i])


def test_dense_magnitude_masks_count_only_what_the_structured_masks_keep():
    from compress import finetune as ft

    spec = netspec.to_spec(CONV_NET)
    params = random_params(CONV_NET, np.random.default_rng(3))
    within = structured.masks(CONV_NET, params, structured.keep(CONV_NET, params, 0.4, ("conv2d",)))
    m = ft.magnitude_masks(spec, params, 0.7, "global", kinds=("dense",), within=within)
    for i in (1, 4, 6):  # conv and depthwise masks are the structured ones, untouched
        np.testing.assert_array_equal(m[i]["w"], within[i]["w"])
    # independent reference: rank |w| of the live dense weights together, zero the smallest 70 % of them
    live = np.concatenate([within[i]["w"].ravel() for i in (10, 12)]) != 0
    mags = np.concatenate([np.abs(params[i]["w"]).ravel() for i in (10, 12)])
    k = int(round(0.7 * live.sum()))
    threshold = np.sort(mags[live])[k - 1]
    want = live & (mags > threshold)
    got = np.concatenate([m[i]["w"].ravel() for i in (10, 12)]) != 0
    np.testing.assert_array_equal(got, want)
    assert not np.any(got & ~live), "a structurally removed row stays removed"
    per_layer = ft.magnitude_masks(spec, params, 0.5, "layer", kinds=("dense",), within=within)
    for i in (10, 12):
        n_live = int((within[i]["w"] != 0).sum())
        assert int(per_layer[i]["w"].sum()) == n_live - int(round(0.5 * n_live))


def test_pruning_masks_follow_the_schedule_per_kind():
    from compress import finetune as ft

    spec = netspec.to_spec(CONV_NET)
    params = random_params(CONV_NET, np.random.default_rng(4))
    fc = ft.FinetuneConfig(prune=0.5, structured=True, dense_prune=0.8)
    final = ft.pruning_masks(spec, params, fc)
    assert int(final[1]["b"].sum()) == 3 and int(final[6]["b"].sum()) == 2 + 1  # round(0.5 * 5) = 2 removed of 5
    assert final[10]["b"].sum() == 7, "dense neurons are not removed whole"
    dense_live = sum(int((final[i]["w"] != 0).sum()) for i in (10, 12))
    rows_kept = 4 * 3 * 7 + 7 * 3  # 3 kept channels x 4 positions into 7 outputs, and the output layer
    assert dense_live == rows_kept - int(round(0.8 * rows_kept))
    halfway = ft.pruning_masks(spec, params, fc, step=5, ramp_steps=10)  # 1 - (1/2)^3 = 7/8 of each target
    assert int(halfway[1]["b"].sum()) == 6 - int(round(0.5 * 7 / 8 * 6))
    np.testing.assert_array_equal(ft.pruning_masks(spec, params, ft.FinetuneConfig(prune=0.5, structured=True))[10]["b"],
                                  structured.masks(CONV_NET, params, structured.keep(CONV_NET, params, 0.5))[10]["b"])


def test_distillation_loss_mixes_the_recipe_and_the_teacher():
    """The distillation step's loss against NumPy: (1 - a) * cross-entropy with the labels + a * cross-entropy
    with the teacher's softmax (temperature 1), teacher and student seeing the same batch."""
    import optax

    from compress import finetune as ft
    from zoo.models import ModelConfig

    spec = netspec.to_spec(CONV_NET)
    rng = np.random.default_rng(5)
    student = [{k: v.astype(np.float32) for k, v in p.items()} for p in random_params(CONV_NET, rng)]
    teacher = [{k: v.astype(np.float32) for k, v in p.items()} for p in random_params(CONV_NET, rng)]
    x = rng.integers(0, 256, (6, 64)).astype(np.uint8)
    y = rng.integers(0, 3, 6)
    cfg = ModelConfig("t", spec, dataset="mnist", label_smoothing=0.0)
    _, s_out = netspec.float_forward(CONV_NET, student, x.astype(np.float64) / 255)
    _, t_out = netspec.float_forward(CONV_NET, teacher, x.astype(np.float64) / 255)

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    hard = -np.mean(log_softmax(s_out)[np.arange(6), y])
    soft = -np.mean(np.sum(np.exp(log_softmax(t_out)) * log_softmax(s_out), axis=1))
    for a in (1.0, 0.25):
        optimizer = optax.sgd(0.0)
        step = ft.make_distill_step(cfg, optimizer, 1 / 255, np.float32, (spec, teacher), a)
        _, _, loss, _ = step([dict(p) for p in student], optimizer.init(student), x, y)
        np.testing.assert_allclose(float(loss), (1 - a) * hard + a * soft, rtol=2e-5)
