"""skl2onnx's converters for our estimators: ``skl2onnx.to_onnx(clf, X)`` works as on scikit-learn's
MLPClassifier (same outputs, same options), and ONNX Runtime's probabilities and labels equal
``predict_proba`` and ``predict`` on all 10,000 MNIST test images; binary, multilabel, string labels,
double inputs, pipelines and the regressor too."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

skl2onnx = pytest.importorskip("skl2onnx")
pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mnist_accel

TOLERANCE = 1e-5


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.fixture(scope="module")
def digits(mnist):
    from mnist_accel.data.mnist import normalize

    return (normalize(mnist.train_images[:5000], np.float32), mnist.train_labels[:5000].astype(np.int64),
            normalize(mnist.test_images, np.float32))


@pytest.fixture(scope="module")
def fitted(digits):
    X, y, _ = digits
    return _fit(mnist_accel.MLPClassifier((64, 32), max_iter=3, random_state=0), X, y)


def _dense(probabilities, classes) -> np.ndarray:
    """ZipMap's list of {class: probability} as a matrix, columns in the order of ``classes``."""
    if isinstance(probabilities, np.ndarray):
        return probabilities
    return np.array([[row[c] for c in classes] for row in probabilities])


@pytest.mark.parametrize("options", [None, {"zipmap": False}], ids=["zipmap", "no-zipmap"])
def test_to_onnx_agrees_on_the_test_set(fitted, digits, options, onnx_run):
    X, _, X_test = digits
    label, proba = onnx_run(skl2onnx.to_onnx(fitted, X[:1], options=options), X_test)
    assert np.abs(_dense(proba, fitted.classes_) - fitted.predict_proba(X_test)).max() < TOLERANCE
    assert (label == fitted.predict(X_test)).all() and label.dtype == np.int64


def test_outputs_match_scikit_learns_converter(fitted, digits):
    X, y, _ = digits
    theirs = _fit(SklearnMLP((8,), max_iter=1, random_state=0), X[:500], y[:500])
    for options in (None, {"zipmap": False}, {"zipmap": False, "output_class_labels": True}, {"zipmap": "columns"}):
        ours_graph = skl2onnx.to_onnx(fitted, X[:1], options=options).graph
        their_graph = skl2onnx.to_onnx(theirs, X[:1], options=options).graph
        assert [(o.name, o.type.WhichOneof("value")) for o in ours_graph.output] == \
            [(o.name, o.type.WhichOneof("value")) for o in their_graph.output], options


def test_double_input_and_string_labels(digits, onnx_run):
    X, y, X_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = _fit(mnist_accel.MLPClassifier((32,), activation="tanh", max_iter=2, random_state=1),
               X.astype(np.float64), names[y])
    label, proba = onnx_run(skl2onnx.to_onnx(clf, X[:1].astype(np.float64), options={"zipmap": False}),
                            X_test[:2000].astype(np.float64))
    assert proba.dtype == np.float64
    assert np.abs(proba - clf.predict_proba(X_test[:2000])).max() < TOLERANCE
    assert (label == clf.predict(X_test[:2000])).all()


@pytest.mark.parametrize("activation", ["logistic", "identity", "relu"])
def test_binary_and_multilabel(activation, digits, onnx_run):
    X, y, X_test = digits
    binary = _fit(mnist_accel.MLPClassifier((16,), activation=activation, max_iter=2, random_state=2),
                  X, np.where(y == 7, "seven", "other"))
    multilabel = _fit(mnist_accel.MLPClassifier((16,), activation=activation, max_iter=2, random_state=3),
                      X, np.stack([y % 2, y > 4, y == 0], axis=1).astype(int))
    for clf in (binary, multilabel):
        label, proba = onnx_run(skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False}), X_test)
        assert np.abs(proba - clf.predict_proba(X_test)).max() < TOLERANCE
        assert (label == clf.predict(X_test)).all()


def test_in_a_pipeline(digits, onnx_run):
    X, y, X_test = digits
    pipe = _fit(make_pipeline(StandardScaler(), mnist_accel.MLPClassifier((32,), max_iter=2, random_state=4)),
                X, y)
    label, proba = onnx_run(skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False}), X_test)
    assert np.abs(proba - pipe.predict_proba(X_test)).max() < TOLERANCE
    assert (label == pipe.predict(X_test)).all()


@pytest.mark.parametrize("targets", [1, 3])
def test_the_regressor(targets, digits, onnx_run):
    if not hasattr(mnist_accel, "MLPRegressor"):
        pytest.skip("this package has no MLPRegressor")
    X, y, X_test = digits
    Y = np.stack([y, y % 3, X[:, 400] * 10], axis=1)[:, :targets].astype(np.float32)
    reg = _fit(mnist_accel.MLPRegressor(hidden_layer_sizes=(16,), max_iter=2, random_state=5),
               X, Y.ravel() if targets == 1 else Y)
    (out,) = onnx_run(skl2onnx.to_onnx(reg, X[:1]), X_test)
    assert out.shape == (10000, targets)
    assert np.abs(out - reg.predict(X_test).reshape(10000, targets)).max() < 1e-4  # scores, not probabilities
