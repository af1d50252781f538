"""MLPClassifier: scikit-learn's conformance suite, drop-in use in pipelines and searches, any labels, binary
and multilabel outputs as scikit-learn builds them, its class checks, and the same model on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mnist_accel import MLPClassifier


@parametrize_with_checks([MLPClassifier(max_iter=50, random_state=0, backend="numpy"),
                          MLPClassifier(max_iter=50, random_state=0, backend="numba", solver="sgd",
                                        hidden_layer_sizes=(8, 4), learning_rate_init=0.05),
                          MLPClassifier(max_iter=50, random_state=0, backend="numpy", solver="lbfgs")])
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_classification(n_samples=300, n_features=12, n_informative=6, n_classes=3, class_sep=2.0,
                               random_state=0)
    return StandardScaler().fit_transform(X), np.array(["cat", "dog", "owl"])[y]


def test_drop_in_pipeline_cross_validation_and_search(blobs):
    """The same pipeline with scikit-learn's class and with ours: ours scores as well (within 0.05)."""
    X, y = blobs
    scores = {}
    for cls in (SkMLPClassifier, MLPClassifier):
        pipe = make_pipeline(StandardScaler(), cls(hidden_layer_sizes=(32,), max_iter=100, random_state=0))
        scores[cls] = cross_val_score(pipe, X, y, cv=3).mean()
    assert scores[MLPClassifier] > 0.7 and scores[MLPClassifier] >= scores[SkMLPClassifier] - 0.05
    search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.7 and set(search.predict(X[:5])) <= {"cat", "dog", "owl"}


def test_fitted_attributes_and_probabilities(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=300, random_state=1, backend="numba").fit(X, y)
    sk = SkMLPClassifier(hidden_layer_sizes=(16, 8), max_iter=300, random_state=1).fit(X, y)
    assert clf.classes_.tolist() == ["cat", "dog", "owl"] and clf.n_features_in_ == 12
    assert [c.shape for c in clf.coefs_] == [(12, 16), (16, 8), (8, 3)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (8,), (3,)]
    assert len(clf.loss_curve_) == clf.n_iter_ <= 300 and clf.best_loss_ == min(clf.loss_curve_)
    for name in ("n_layers_", "n_outputs_", "out_activation_", "t_"):
        assert getattr(clf, name) == getattr(sk, name) or name == "t_" and clf.t_ == clf.n_iter_ * 300
    assert clf.loss_ == clf.loss_curve_[-1] and clf.validation_scores_ is None and clf.best_validation_score_ is None
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-6)
    assert (clf.classes_[proba.argmax(1)] == clf.predict(X)).all()
    assert clf.score(X, y) > 0.8


def test_same_seed_same_model_and_backends_agree(blobs):
    X, y = blobs

    def make(backend):
        return MLPClassifier(max_iter=5, random_state=3, solver="sgd", backend=backend).fit(X, y)

    a, b, c = make("numpy"), make("numpy"), make("numba")
    for x, z, w in zip(a.coefs_, b.coefs_, c.coefs_):
        np.testing.assert_array_equal(x, z)
        np.testing.assert_allclose(w, x, rtol=1e-9, atol=1e-12)


def test_float32_input_trains_in_float32(blobs):
    X, y = blobs
    for solver in ("adam", "lbfgs"):
        clf = MLPClassifier(max_iter=3, random_state=0, solver=solver).fit(X.astype(np.float32), y)
        assert clf.coefs_[0].dtype == np.float32
    wide = MLPClassifier(max_iter=3, random_state=0, dtype="float64").fit(X.astype(np.float32), y)
    assert wide.coefs_[0].dtype == np.float64


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_binary_is_one_logistic_output_as_in_sklearn(solver):
    X, y = make_classification(n_samples=200, n_features=8, random_state=1)
    labels = np.array(["no", "yes"])[y]
    kw = dict(solver=solver, hidden_layer_sizes=(10,), max_iter=40, random_state=0, shuffle=False)
    ours, sk = MLPClassifier(backend="numpy", **kw).fit(X, labels), SkMLPClassifier(**kw).fit(X, labels)
    assert ours.out_activation_ == sk.out_activation_ == "logistic" and ours.n_outputs_ == 1
    assert [c.shape for c in ours.coefs_] == [c.shape for c in sk.coefs_]
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), atol=1e-6)
    assert (ours.predict(X) == sk.predict(X)).all()


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_multilabel_as_in_sklearn(solver):
    X, Y = make_multilabel_classification(n_samples=200, n_features=10, n_classes=4, random_state=0)
    kw = dict(solver=solver, hidden_layer_sizes=(12,), max_iter=30, random_state=0, shuffle=False,
              learning_rate_init=0.01)
    ours, sk = MLPClassifier(backend="numpy", **kw).fit(X, Y), SkMLPClassifier(**kw).fit(X, Y)
    assert ours.out_activation_ == sk.out_activation_ == "logistic" and ours.n_outputs_ == 4
    assert (ours.classes_ == sk.classes_).all()
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), atol=1e-6)
    assert ours.predict(X).shape == Y.shape and (ours.predict(X) == sk.predict(X)).all()
    assert ours.score(X, Y) == sk.score(X, Y)  # subset accuracy
    inc = MLPClassifier(random_state=0, backend="numpy").partial_fit(X, Y, classes=np.arange(4))
    assert inc.predict(X).shape == Y.shape


def _error(make, *args):
    try:
        make(*args)
    except Exception as exc:  # noqa: BLE001 - the comparison is of whatever scikit-learn raises
        return type(exc), str(exc)
    return None


def test_class_checks_say_what_sklearns_say(blobs):
    X, y = blobs
    for cls in (MLPClassifier, SkMLPClassifier):
        assert _error(lambda c=cls: c().partial_fit(X, y)) == (ValueError,
                                                             "classes must be passed on the first call to partial_fit.")
    cases = [
        lambda c: c(max_iter=2).partial_fit(X, y, classes=["cat", "dog", "owl"]).partial_fit(X, y, classes=["cat"]),
        lambda c: c(max_iter=2).partial_fit(X[y != "owl"], y[y != "owl"], classes=["cat", "dog"]).partial_fit(X, y),
        lambda c: c(max_iter=2, warm_start=True).fit(X, y).fit(X[y != "owl"], y[y != "owl"]),
        lambda c: c(max_iter=2, early_stopping=True).fit(X, y).partial_fit(X, y),
    ]
    for case in cases:
        ours, theirs = _error(case, MLPClassifier), _error(case, SkMLPClassifier)
        assert ours is not None and ours == theirs


def test_lbfgs_has_no_partial_fit():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(solver="sgd"), "partial_fit")
    assert _error(lambda: MLPClassifier(solver="lbfgs").partial_fit) == \
        _error(lambda: SkMLPClassifier(solver="lbfgs").partial_fit) == \
        (AttributeError, "This 'MLPClassifier' has no attribute 'partial_fit'")


class _DeviceArray(np.ndarray):
    """Looks like a CuPy array to the estimator (it has the CUDA array interface and .get())."""

    __cuda_array_interface__: dict = {}

    def get(self):
        return np.asarray(self)


def test_device_inputs_train_on_the_gpu_backend(blobs, monkeypatch):
    import mnist_accel.estimators.base as base
    from mnist_accel.backends.selection import get_backend

    asked = []
    monkeypatch.setattr(base, "get_backend", lambda name="auto": asked.append(name) or get_backend("numpy"))
    X, y = blobs
    MLPClassifier(max_iter=2, random_state=0).fit(X.view(_DeviceArray), y)
    assert asked == ["cuda"]


@pytest.mark.standin
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_device_inputs_train_on_the_standin_gpu(blobs, solver):
    """CuPy arrays in, the cuda backend trains (here the CuPy stand-in), host arrays come out."""
    from cuda_standin import activate

    X, y = blobs
    with activate() as cp:
        clf = MLPClassifier(max_iter=3, random_state=0, solver=solver).fit(cp.asarray(X), y)
        on_device = clf.predict_proba(cp.asarray(X))
        assert not isinstance(on_device, np.ndarray)
    host = MLPClassifier(max_iter=3, random_state=0, backend="numpy", solver=solver).fit(X, y)
    assert all(isinstance(c, np.ndarray) for c in clf.coefs_)
    for a, b in zip(clf.coefs_, host.coefs_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * np.abs(b).max())
    np.testing.assert_allclose(on_device.get(), host.predict_proba(X), atol=1e-9)


@pytest.mark.standin
def test_binary_and_multilabel_predictions_stay_on_the_standin_gpu():
    from cuda_standin import activate

    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    Xm, Y = make_multilabel_classification(n_samples=120, n_features=6, n_classes=3, random_state=0)
    binary = MLPClassifier(max_iter=5, random_state=0, backend="numpy").fit(X, np.array(["a", "b"])[y] == "b")
    multi = MLPClassifier(max_iter=5, random_state=0, backend="numpy").fit(Xm, Y)
    with activate() as cp:
        got_binary, got_multi = binary.predict(cp.asarray(X)), multi.predict(cp.asarray(Xm))
        proba = binary.predict_proba(cp.asarray(X))
    assert (got_binary.get() == binary.predict(X)).all() and (got_multi.get() == multi.predict(Xm)).all()
    np.testing.assert_allclose(proba.get(), binary.predict_proba(X), rtol=1e-12)
