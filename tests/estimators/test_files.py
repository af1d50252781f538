"""save/load: a round trip keeps what a fitted estimator knows (weights, classes, output activation, the
training history), for both estimators and every kind of output; foreign and inconsistent files are refused."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression

from mnist_accel import MLPClassifier, MLPRegressor
from mnist_accel.errors import DataError
from mnist_accel.estimators.files import HISTORY


def _same_history(a, b):
    for name in HISTORY:
        assert hasattr(a, name) == hasattr(b, name), name
        if hasattr(a, name):
            assert getattr(a, name) == pytest.approx(getattr(b, name)) or getattr(a, name) is getattr(b, name), name


@pytest.mark.parametrize("case", ["multiclass", "binary", "multilabel", "early stopping", "lbfgs"])
def test_classifier_round_trip(case, tmp_path):
    X, y = make_classification(n_samples=200, n_features=8, n_informative=5, n_classes=2 if case == "binary" else 3,
                               random_state=0)
    y = np.array(["ant", "bee", "cat"])[y]
    if case == "multilabel":
        X, y = make_multilabel_classification(n_samples=200, n_features=8, n_classes=3, random_state=0)
    kw = dict(hidden_layer_sizes=(10,), activation="tanh", max_iter=20, random_state=0, backend="numpy")
    if case == "early stopping":
        kw.update(early_stopping=True, n_iter_no_change=2)
    if case == "lbfgs":
        kw.update(solver="lbfgs")
    clf = MLPClassifier(**kw).fit(X, y)
    clf.save(tmp_path / "m.npz")
    loaded = MLPClassifier.load(tmp_path / "m.npz", backend="numba")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert (loaded.predict(X) == clf.predict(X)).all() and loaded.score(X, y) == clf.score(X, y)
    assert loaded.classes_.tolist() == clf.classes_.tolist() and loaded.activation == "tanh"
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_features_in_"):
        assert getattr(loaded, name) == getattr(clf, name), name
    assert loaded.get_params()["hidden_layer_sizes"] in ([10], (10,)) and loaded.backend == "numba"
    _same_history(loaded, clf)
    if case not in ("lbfgs", "early stopping"):
        loaded.partial_fit(X, y)  # a loaded model keeps training
        assert loaded.n_iter_ == 1 and len(loaded.loss_curve_) == len(clf.loss_curve_) + 1


def test_regressor_round_trip_and_the_wrong_class(tmp_path):
    X, y = make_regression(n_samples=100, n_features=5, n_targets=2, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, y / 100)
    reg.save(tmp_path / "r.npz")
    loaded = MLPRegressor.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    _same_history(loaded, reg)
    with pytest.raises(DataError, match="a regression model; load it with MLPRegressor.load"):
        MLPClassifier.load(tmp_path / "r.npz")


def test_feature_names_are_kept(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = MLPClassifier(max_iter=3, random_state=0).fit(frame, y)
    clf.save(tmp_path / "m.npz")
    assert MLPClassifier.load(tmp_path / "m.npz").feature_names_in_.tolist() == ["a", "b", "c", "d"]


def test_load_rejects_foreign_and_inconsistent_files(tmp_path):
    from mnist_accel.persist import save_model

    np.savez(tmp_path / "foreign.npz", a=np.ones(3))
    with pytest.raises(DataError, match="not an mnist-accel model"):
        MLPClassifier.load(tmp_path / "foreign.npz")
    save_model(tmp_path / "odd.npz", [np.ones((4, 3)), np.ones(2)], {"activation": "relu", "classes": [0, 1, 2]})
    with pytest.raises(DataError, match="do not fit together"):
        MLPClassifier.load(tmp_path / "odd.npz")
    save_model(tmp_path / "few.npz", [np.ones((4, 2)), np.ones(2)], {"activation": "relu", "classes": [0, 1, 2]})
    with pytest.raises(DataError, match="2 outputs for 3 classes"):
        MLPClassifier.load(tmp_path / "few.npz")


def test_a_training_command_model_loads_as_a_softmax_classifier(tmp_path):
    """``mnist_accel.train --save`` writes softmax models over pixels in [0, 1], with no estimator history."""
    from mnist_accel.persist import save_model

    rng = np.random.default_rng(0)
    params = [rng.normal(size=(784, 16)), np.zeros(16), rng.normal(size=(16, 10)), np.zeros(10)]
    save_model(tmp_path / "t.npz", params, {"activation": "relu", "classes": list(range(10)), "normalisation": "0-1"})
    clf = MLPClassifier.load(tmp_path / "t.npz")
    x = rng.random((5, 784))
    assert clf.out_activation_ == "softmax" and clf.n_iter_ == 0 and clf.loss_curve_ == []
    np.testing.assert_allclose(clf.predict_proba(x).sum(axis=1), 1)
    assert set(clf.predict(x)) <= set(range(10)) and clf.normalisation_ == "0-1"
