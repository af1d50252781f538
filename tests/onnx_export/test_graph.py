"""The graph builder: ONNX Runtime's probabilities on all 10,000 MNIST test images equal
``mnist_accel.model.probabilities`` (what predict_proba and predict compute) for every activation, several
depths, with and without biases; a wrong graph is caught; the graph is valid ONNX with a dynamic batch."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import numpy_helper

from mnist_accel import model
from mnist_accel.onnx_export.graph import INPUT, OPSET, OUTPUT, build_model

TOLERANCE = 1e-5


def _params(hidden: tuple[int, ...], bias: bool, dtype=np.float64, seed: int = 0, activation: str = "relu",
            pixels: np.ndarray | None = None, n_out: int = 10) -> list[np.ndarray]:
    """He-initialised weights and nonzero biases; with ``pixels``, the last layer scaled so that its outputs
    spread as a trained model's do (standard deviation 4): large logits are where float32 rounding shows."""
    rng = np.random.default_rng(seed)
    params = [p if p.ndim == 2 else rng.normal(0, 0.2, p.shape).astype(dtype)
              for p in model.init_params(rng, [784, *hidden, n_out], "he", bias, dtype)]
    if pixels is not None:
        spread = model.forward(params, pixels[:1000], activation, np)[0].std()
        params[-2 if bias else -1] *= 4 / spread
        if bias:
            params[-1] *= 4 / spread
    return params


def _reference(params, pixels, activation, n_classes=None):
    return model.probabilities(params, pixels.astype(params[0].dtype), activation, np, n_classes)


@pytest.mark.parametrize("hidden", [(), (64,), (128, 64), (64, 48, 32, 16)], ids=lambda h: f"hidden{len(h)}")
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", model.ACTIVATIONS)
def test_onnx_runtime_agrees_on_the_test_set(activation, bias, hidden, test_pixels, onnx_run):
    params = _params(hidden, bias, seed=len(hidden), activation=activation, pixels=test_pixels)
    onx = build_model(params, activation)
    got = onnx_run(onx, test_pixels.astype(np.float32))[0]
    want = _reference(params, test_pixels, activation)
    assert got.dtype == np.float32 and got.shape == (10000, 10)
    assert np.abs(got - want).max() < TOLERANCE
    assert want.max(axis=1).mean() > 0.6  # confident outputs, not a near-uniform softmax that hides errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_everything_is_float32_and_valid(dtype):
    onx = build_model(_params((32,), True, dtype), "tanh")
    onnx.checker.check_model(onx, full_check=True)
    assert {t.data_type for t in onx.graph.initializer} == {onnx.TensorProto.FLOAT}
    assert [o.version for o in onx.opset_import] == [OPSET]
    (x,), (y,) = onx.graph.input, onx.graph.output
    assert (x.name, y.name) == (INPUT, OUTPUT)
    assert x.type.tensor_type.elem_type == y.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["batch", 784]
    assert [d.dim_param or d.dim_value for d in y.type.tensor_type.shape.dim] == ["batch", 10]
    assert [n.op_type for n in onx.graph.node] == ["MatMul", "Add", "Tanh", "MatMul", "Add", "Softmax"]


def test_any_batch_size(test_pixels, onnx_run):
    params = _params((32,), False)
    onx = build_model(params, "relu")
    for n in (1, 3, 257):
        got = onnx_run(onx, test_pixels[:n].astype(np.float32))[0]
        assert got.shape == (n, 10)
        assert np.abs(got - _reference(params, test_pixels[:n], "relu")).max() < TOLERANCE


def test_extra_outputs_are_dropped_as_predict_proba_drops_them(test_pixels, onnx_run):
    """A one-class classifier trains two output units; its probabilities cover the first only."""
    params = _params((16,), True)
    for n_classes in (3, 1):
        onx = build_model(params, "sigmoid", classes=list(range(n_classes)))
        got = onnx_run(onx, test_pixels[:500].astype(np.float32))[0]
        assert np.abs(got - _reference(params, test_pixels[:500], "sigmoid", n_classes)).max() < TOLERANCE


def test_a_diverging_graph_is_caught(test_pixels, onnx_run):
    """The agreement checks above would fail on the mistakes an exporter can make: two classes' columns
    swapped, a bias left out, the wrong activation, one weight off by a little."""
    params = _params((64,), True)
    want = _reference(params, test_pixels, "relu")
    swapped = [p.copy() for p in params]
    swapped[2][:, [3, 5]] = swapped[2][:, [5, 3]]
    no_bias = [p.copy() for p in params]
    no_bias[1][:] = 0
    nudged = [p.copy() for p in params]
    nudged[2][7, 4] += 1e-2
    for onx in (build_model(swapped, "relu"), build_model(no_bias, "relu"), build_model(params, "tanh"),
                build_model(nudged, "relu")):
        assert np.abs(onnx_run(onx, test_pixels.astype(np.float32))[0] - want).max() > TOLERANCE
    onx = build_model(params, "relu")  # and one initializer of the built graph changed
    w2 = next(t for t in onx.graph.initializer if t.name == "W2")
    w2.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w2) * np.float32(1.001), "W2"))
    assert np.abs(onnx_run(onx, test_pixels.astype(np.float32))[0] - want).max() > TOLERANCE


@pytest.mark.parametrize("out_activation, n_out, classes", [
    ("logistic", 1, ["no", "yes"]),  # binary: predict_proba's [1 - p, p]
    ("logistic", 3, None),  # multilabel: each label's p
    ("identity", 2, None),  # regressors: the scores, or exp of them (poisson)
    ("exp", 1, None),
])
def test_the_estimators_output_activations(out_activation, n_out, classes, test_pixels, onnx_run):
    params = _params((32,), True, pixels=test_pixels, n_out=n_out)
    scores = model.forward(params, test_pixels, "relu", np)[0]
    want = {"identity": scores, "exp": np.exp(scores)}.get(out_activation)
    if want is None:
        p = 1 / (1 + np.exp(-scores))
        want = np.hstack([1 - p, p]) if n_out == 1 else p
    onx = build_model(params, "relu", classes, out_activation=out_activation)
    (output,) = onx.graph.output
    assert output.name == ("probabilities" if out_activation == "logistic" else "predictions")
    got = onnx_run(onx, test_pixels.astype(np.float32))[0]
    assert got.shape == want.shape
    assert np.abs(got - want).max() < TOLERANCE * max(1, np.abs(want).max())  # relative for unbounded scores


def test_metadata_props():
    onx = build_model(_params((8,), False), "identity", classes=list("abcdefghij"),
                      metadata={"dataset": "mnist", "training_config": {"hidden": [8]}})
    props = {p.key: p.value for p in onx.metadata_props}
    assert json.loads(props["classes"]) == list("abcdefghij")
    assert props["dataset"] == "mnist" and json.loads(props["training_config"]) == {"hidden": [8]}
    assert props["activation"] == "identity" and "784" in props["input"]
    assert [n.op_type for n in onx.graph.node] == ["MatMul", "MatMul", "Softmax"]  # identity: no node


@pytest.mark.parametrize("params, activation, classes, message", [
    ([], "relu", None, "no layer"),
    ([np.ones((784, 10))], "softplus", None, "unknown activation 'softplus'"),
    ([np.ones((784, 10)), np.ones(9)], "relu", None, "do not fit together"),
    ([np.ones((784, 10)), np.ones((11, 10))], "relu", None, "do not chain"),
    ([np.ones((784, 10)), np.ones(10), np.ones((10, 10))], "relu", None, "some layers have biases"),
    ([np.ones((784, 10))], "relu", list(range(11)), "11 classes for a model with 10 outputs"),
    ([np.full((784, 10), 1e39)], "relu", None, "not finite in float32"),
    ([np.ones((784, 2))], "relu", [0, 1, 2], "3 labels for 2 logistic outputs"),
    ([np.ones((784, 2))], "relu", [0, 1], "a regressor's output"),
])
def test_bad_parameters(params, activation, classes, message):
    out = "logistic" if "logistic" in message else "identity" if "regressor" in message else "softmax"
    with pytest.raises(ValueError, match=message):
        build_model(params, activation, classes, out_activation=out)
    with pytest.raises(ValueError, match="unknown output activation 'softplus'"):
        build_model([np.ones((784, 10))], "relu", out_activation="softplus")


def test_every_activation_of_the_model_has_its_onnx_op():
    from mnist_accel.onnx_export.graph import ONNX_OPS

    assert set(ONNX_OPS) == set(model.ACTIVATIONS)
