"""zoo.import: ONNX graphs built with onnx.helper (and, where torch is installed, exported PyTorch modules) become
model directories whose host model matches onnxruntime; unsupported graphs are refused by node and op."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from zoo import data, host, modeldir  # noqa: E402
from zoo.onnx_import import OnnxImportError, TOLERANCE, check, import_onnx, imported  # noqa: E402

RNG = np.random.default_rng(0)
XOR = data.xor()


def checked(path, raw, scale=1 / 255):
    """The converted model checked against onnxruntime on raw inputs, without a dataset or a directory."""
    saved, model, shape, logits = imported(path, input_scale=scale)
    return saved, check(saved, model, logits, shape, raw)


def make_model(nodes, inits, in_shape, out_name="y", opset=13):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", "K"])],
        [numpy_helper.from_array(np.asarray(v, np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v), k)
         for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def mlp_graph(softmax=True):
    w1, b1 = RNG.normal(0, 0.1, (12, 784)), RNG.normal(0, 0.1, 12)  # Gemm with transB=1, as PyTorch exports
    w2, b2 = RNG.normal(0, 0.3, (12, 10)), RNG.normal(0, 0.1, 10)   # MatMul + Add
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], name="fc1", transB=1),
             helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
             helper.make_node("Dropout", ["a1"], ["d1"], name="drop"),
             helper.make_node("Identity", ["d1"], ["i1"], name="id"),
             helper.make_node("MatMul", ["i1", "w2"], ["m2"], name="fc2"),
             helper.make_node("Add", ["m2", "b2"], ["z" if softmax else "y"], name="bias2")]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["y"], name="softmax", axis=-1))
    return make_model(nodes, {"w1": w1, "b1": b1, "w2": w2, "b2": b2}, [784])


def test_mlp_imports_and_matches_onnxruntime(tmp_path, mnist):
    graph = mlp_graph()
    out = tmp_path / "imported"
    metrics = import_onnx(save(tmp_path, graph), out, dataset=mnist)
    saved = modeldir.load(out)
    assert [layer["type"] for layer in saved.spec.to_dict()["layers"]] == ["dense", "relu", "dense"]
    assert metrics["import_check"]["passed"] and metrics["import_check"]["max_abs_output_diff"] <= TOLERANCE
    assert metrics["import_check"]["inputs"] == 10_000 and 0 <= metrics["test_accuracy"] <= 1
    assert saved.meta["source"]["sha256"] and saved.meta["input"] == {"scale": 1 / 255, "features": 784}
    # independent reference: the graph's maths in NumPy, before the softmax
    raw = RNG.integers(0, 256, (50, 784)).astype(np.uint8)
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.graph.initializer}
    x = raw / 255.0
    ref = np.maximum(x @ init["w1"].T + init["b1"], 0) @ init["w2"] + init["b2"]
    assert np.max(np.abs(host.forward(saved, raw) - ref)) < 1e-5


def test_import_is_checked_against_the_graph_it_read(tmp_path):
    model = mlp_graph(softmax=False)
    raw = RNG.integers(0, 256, (64, 784)).astype(np.uint8)
    saved, result = checked(save(tmp_path, model), raw)
    assert result["passed"] and result["same_predictions"] == 64
    # a tampered parameter is caught by the same check
    saved.params[0]["b"] = saved.params[0]["b"] + 0.5
    assert not check(saved, model, None, (784,), raw)["passed"]


@pytest.mark.parametrize("op,expected", [("Sigmoid", "sigmoid"), ("Tanh", "tanh")])
def test_activations(tmp_path, op, expected):
    w, b = RNG.normal(0, 0.5, (2, 3)), RNG.normal(0, 0.1, 3)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="fc"), helper.make_node("Add", ["b", "m"], ["a"]),
             helper.make_node(op, ["a"], ["s"]), helper.make_node("MatMul", ["s", "w2"], ["y"], name="fc2")]
    out = tmp_path / "o"
    import_onnx(save(tmp_path, make_model(nodes, {"w": w, "b": b, "w2": RNG.normal(0, 1, (3, 2))}, [2])), out,
                dataset=XOR)
    assert [d["type"] for d in modeldir.load(out).spec.to_dict()["layers"]] == ["dense", expected, "dense"]


def test_clip_0_6_is_relu6_and_other_clips_are_refused(tmp_path):
    def graph(lo, hi):
        nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="fc"),
                 helper.make_node("Clip", ["m", "lo", "hi"], ["c"], name="clip"),
                 helper.make_node("MatMul", ["c", "w2"], ["y"], name="fc2")]
        return make_model(nodes, {"w": RNG.normal(0, 3, (2, 3)), "w2": RNG.normal(0, 1, (3, 2)),
                                  "lo": np.float32(lo), "hi": np.float32(hi)}, [2])
    saved, result = checked(save(tmp_path, graph(0, 6), "relu6.onnx"), XOR.x_test, scale=1.0)
    assert result["passed"] and [d["type"] for d in saved.spec.to_dict()["layers"]] == ["dense", "relu6", "dense"]
    with pytest.raises(OnnxImportError, match=r"node 'clip' \(Clip\).*\[0.0, 1.0\]"):
        import_onnx(save(tmp_path, graph(0, 1)), tmp_path / "o", dataset=XOR)
    assert not (tmp_path / "o").exists()


def test_unsupported_op_is_named_with_the_supported_list(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="fc"),
             helper.make_node("LeakyRelu", ["m"], ["y"], name="leaky", alpha=0.1)]
    path = save(tmp_path, make_model(nodes, {"w": RNG.normal(0, 1, (2, 3))}, [2]))
    with pytest.raises(OnnxImportError) as e:
        import_onnx(path, tmp_path / "o", dataset=XOR)
    msg = str(e.value)
    assert str(path) in msg and "node 'leaky' (LeakyRelu): operator not supported" in msg and "Gemm" in msg
    assert not (tmp_path / "o").exists()


def test_branches_are_refused(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="fc"),
             helper.make_node("Relu", ["m"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "m"], ["y"], name="skip")]
    with pytest.raises(OnnxImportError, match="node 'skip' \\(Add\\)"):
        import_onnx(save(tmp_path, make_model(nodes, {"w": RNG.normal(0, 1, (2, 2))}, [2])), tmp_path / "o",
                    dataset=XOR)


def test_bad_files_and_outputs_are_refused_without_writing(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a protobuf" * 10)
    with pytest.raises(OnnxImportError, match="junk.onnx: not a valid ONNX model"):
        import_onnx(junk, tmp_path / "o", dataset=XOR)
    with pytest.raises(OnnxImportError, match="cannot read"):
        import_onnx(tmp_path / "missing.onnx", tmp_path / "o", dataset=XOR)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("user data")
    with pytest.raises(OnnxImportError, match="not an empty directory"):
        import_onnx(save(tmp_path, mlp_graph()), taken, dataset=XOR)
    assert (taken / "mine.txt").read_text() == "user data" and sorted(p.name for p in taken.iterdir()) == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.onnx", "m.onnx", "taken"]


def test_cli(tmp_path, capsys):
    import importlib
    cli = importlib.import_module("zoo.import")
    out = tmp_path / "o"
    assert cli.main([str(save(tmp_path, mlp_graph())), "--dataset", "mnist", "--out", str(out)]) == 0
    assert "predictions identical" in capsys.readouterr().out
    assert cli.main([str(tmp_path / "nope.onnx"), "--dataset", "mnist", "--out", str(tmp_path / "o2")]) == 2
    assert "error:" in capsys.readouterr().err


def test_mlp_on_nchw_images_reorders_the_first_dense_rows(tmp_path):
    """(N, C, H, W) input flattened in C, H, W order: picozoo's raw features are (h, w, c), so the importer permutes
    the first dense layer's rows; the check against onnxruntime feeds the same images in NCHW."""
    w1, b1 = RNG.normal(0, 0.1, (2 * 3 * 4, 5)), RNG.normal(0, 0.1, 5)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flatten", axis=1),
             helper.make_node("Gemm", ["f", "w1", "b1"], ["y"], name="fc")]
    model = make_model(nodes, {"w1": w1, "b1": b1}, [2, 3, 4])
    raw = RNG.integers(0, 256, (10, 3, 4, 2)).astype(np.uint8)            # (n, h, w, c)
    saved, result = checked(save(tmp_path, model), raw.reshape(10, -1))
    assert saved.meta["input"]["features"] == 24 and result["passed"]
    ref = (raw.transpose(0, 3, 1, 2).reshape(10, -1) / 255.0) @ w1 + b1   # the graph's own order
    assert np.max(np.abs(host.forward(saved, raw.reshape(10, -1)) - ref)) < 1e-5


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pytorch_mlp_export_imports(tmp_path, mnist):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU(),
                                 torch.nn.Dropout(0.2), torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1)).eval()
    path = tmp_path / "torch_mlp.onnx"
    torch.onnx.export(module, (torch.zeros(1, 1, 28, 28),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "N"}})
    metrics = import_onnx(path, tmp_path / "o", dataset=mnist)
    assert metrics["import_check"]["passed"]
    saved = modeldir.load(tmp_path / "o")
    raw = RNG.integers(0, 256, (20, 784)).astype(np.uint8)
    with torch.no_grad():
        probs = module(torch.tensor(raw.reshape(20, 1, 28, 28) / 255.0, dtype=torch.float32)).numpy()
    assert np.array_equal(np.argmax(host.forward(saved, raw), -1), np.argmax(probs, -1))


def conv_graph(pads=(1, 1, 1, 1), bn=True):
    """Conv(3x3, 2->4) [+ BatchNorm] + Relu + MaxPool 2 + depthwise Conv 3x3 stride 2 + Clip(0, 6) + AveragePool 2
    + Conv 1x1 + GlobalAveragePool + Flatten + Gemm, on a (2, 12, 12) input; then the same with Flatten after a conv
    map instead of the global pool (see conv_flatten_graph)."""
    inits = {"k1": RNG.normal(0, 0.4, (4, 2, 3, 3)), "c1": RNG.normal(0, 0.1, 4),
             "g": RNG.uniform(0.5, 1.5, 4), "be": RNG.normal(0, 0.1, 4), "mu": RNG.normal(0, 0.1, 4),
             "var": RNG.uniform(0.5, 2, 4),
             "kd": RNG.normal(0, 0.4, (4, 1, 3, 3)), "cd": RNG.normal(0, 0.1, 4),
             "kp": RNG.normal(0, 0.4, (6, 4, 1, 1)), "cp": RNG.normal(0, 0.1, 6),
             "wf": RNG.normal(0, 0.4, (3, 6)), "bf": RNG.normal(0, 0.1, 3),
             "lo": np.float32(0), "hi": np.float32(6)}
    nodes = [helper.make_node("Conv", ["x", "k1", "c1"], ["a"], name="conv1", pads=list(pads), kernel_shape=[3, 3])]
    last = "a"
    if bn:
        nodes.append(helper.make_node("BatchNormalization", ["a", "g", "be", "mu", "var"], ["bn"], name="bn1",
                                      epsilon=1e-3))
        last = "bn"
    nodes += [helper.make_node("Relu", [last], ["r"]),
              helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
              helper.make_node("Conv", ["p", "kd", "cd"], ["d"], name="dw", group=4, kernel_shape=[3, 3],
                               strides=[2, 2], auto_pad="SAME_UPPER"),
              helper.make_node("Clip", ["d", "lo", "hi"], ["c"]),
              helper.make_node("AveragePool", ["c"], ["ap"], kernel_shape=[2, 2], strides=[1, 1]),
              helper.make_node("Conv", ["ap", "kp", "cp"], ["pw"], name="pw", kernel_shape=[1, 1]),
              helper.make_node("GlobalAveragePool", ["pw"], ["gap"]),
              helper.make_node("Flatten", ["gap"], ["f"]),
              helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    return make_model(nodes, inits, [2, 12, 12])


def test_conv_graph_imports_nhwc_and_matches_onnxruntime(tmp_path):
    saved, check_result = checked(save(tmp_path, conv_graph()), RNG.integers(0, 256, (64, 288)).astype(np.uint8))
    types = [d["type"] for d in saved.spec.to_dict()["layers"]]
    assert types == ["input", "conv2d", "relu", "max_pool2d", "depthwise_conv2d", "relu6", "avg_pool2d", "conv2d",
                     "global_avg_pool2d", "dense"]  # BatchNorm folded, the Flatten after the global pool dropped
    assert saved.spec.to_dict()["layers"][0]["shape"] == [12, 12, 2]
    assert check_result["passed"] and check_result["max_abs_output_diff"] <= TOLERANCE


def test_flatten_after_a_feature_map_permutes_the_dense_rows(tmp_path):
    inits = {"k": RNG.normal(0, 0.4, (3, 1, 3, 3)), "w": RNG.normal(0, 0.2, (3 * 4 * 4, 5)), "b": np.zeros(5)}
    nodes = [helper.make_node("Conv", ["x", "k"], ["c"], kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    saved, result = checked(save(tmp_path, make_model(nodes, inits, [1, 9, 9])),
                            RNG.integers(0, 256, (32, 81)).astype(np.uint8))
    assert result["passed"]
    assert [d["type"] for d in saved.spec.to_dict()["layers"]] == [
        "input", "conv2d", "relu", "flatten", "dense"]


def test_padding_picozoo_cannot_express_is_refused(tmp_path):
    # PyTorch's padding=1 with stride 2 on an even input pads 1 on both sides; 'same' would pad 0 before, 1 after
    inits = {"k": RNG.normal(0, 0.4, (2, 1, 3, 3))}
    nodes = [helper.make_node("Conv", ["x", "k"], ["c"], name="down", kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]), helper.make_node("GlobalAveragePool", ["c"], ["y"])]
    with pytest.raises(OnnxImportError, match=r"node 'down' \(Conv\): pads \[1, 1, 1, 1\].*8x8.*'same'"):
        import_onnx(save(tmp_path, make_model(nodes, inits, [1, 8, 8])), tmp_path / "o", dataset=XOR)
    assert not (tmp_path / "o").exists()


def test_grouped_conv_and_dilation_are_refused(tmp_path):
    for attrs, match in (({"group": 2}, "group=2"), ({"dilations": [2, 2]}, "dilations")):
        shape = (4, 2, 3, 3) if "group" in attrs else (4, 4, 3, 3)
        nodes = [helper.make_node("Conv", ["x", "k"], ["c"], name="conv", kernel_shape=[3, 3], **attrs),
                 helper.make_node("GlobalAveragePool", ["c"], ["y"])]
        with pytest.raises(OnnxImportError, match=match):
            import_onnx(save(tmp_path, make_model(nodes, {"k": RNG.normal(0, 1, shape)}, [4, 8, 8])),
                        tmp_path / "o", dataset=XOR)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pytorch_cnn_export_imports(tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU6(), nn.MaxPool2d(2),
                           nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU(), nn.Flatten(),
                           nn.Linear(4 * 7 * 7, 10)).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        module[1].running_mean.uniform_(-0.2, 0.2)
        module[1].running_var.uniform_(0.5, 2.0)
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(module, (torch.zeros(1, 1, 14, 14),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "N"}})
    assert checked(path, RNG.integers(0, 256, (32, 196)).astype(np.uint8))[1]["passed"]
