"""MLPClassifier: scikit-learn's conformance suite, drop-in use in pipelines and searches, any labels,
save/load, and the same model on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mnist_accel import MLPClassifier
from mnist_accel.errors import DataError


@parametrize_with_checks([MLPClassifier(max_iter=50, random_state=0, backend="numpy"),
                          MLPClassifier(max_iter=50, random_state=0, backend="numba", solver="sgd",
                                        hidden_layer_sizes=(8, 4), learning_rate_init=0.05)])
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_classification(n_samples=300, n_features=12, n_informative=6, n_classes=3, class_sep=2.0,
                               random_state=0)
    return StandardScaler().fit_transform(X), np.array(["cat", "dog", "owl"])[y]


def test_drop_in_pipeline_cross_validation_and_search(blobs):
    """The same pipeline with scikit-learn's class and with ours: ours scores as well (within 0.05)."""
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    X, y = blobs
    scores = {}
    for cls in (SklearnMLP, MLPClassifier):
        pipe = make_pipeline(StandardScaler(), cls(hidden_layer_sizes=(32,), max_iter=100, random_state=0))
        scores[cls] = cross_val_score(pipe, X, y, cv=3).mean()
    assert scores[MLPClassifier] > 0.8 and scores[MLPClassifier] >= scores[SklearnMLP] - 0.05
    search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.8 and set(search.predict(X[:5])) <= {"cat", "dog", "owl"}


def test_fitted_attributes_and_probabilities(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=300, random_state=1, backend="numba").fit(X, y)
    assert clf.classes_.tolist() == ["cat", "dog", "owl"] and clf.n_features_in_ == 12
    assert [c.shape for c in clf.coefs_] == [(12, 16), (16, 8), (8, 3)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (8,), (3,)]
    assert len(clf.loss_curve_) == clf.n_iter_ <= 300 and clf.best_loss_ == min(clf.loss_curve_)
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


def test_early_stopping_and_partial_fit(blobs):
    X, y = blobs
    clf = MLPClassifier(max_iter=500, early_stopping=True, n_iter_no_change=3, random_state=0).fit(X, y)
    assert clf.n_iter_ < 500 and clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_
    clf.partial_fit(X, y)  # early stopping left best_loss_ None, which the next partial_fit must accept
    assert clf.n_iter_ == len(clf.loss_curve_) and clf.best_loss_ == clf.loss_curve_[-1]
    inc = MLPClassifier(random_state=0, learning_rate_init=0.01)
    with pytest.raises(ValueError, match="classes"):
        inc.partial_fit(X, y)
    inc.partial_fit(X[:100], y[:100], classes=["cat", "dog", "owl"])
    for _ in range(5):
        inc.partial_fit(X, y)
    assert inc.n_iter_ == 6 and inc.score(X, y) > 0.8


def test_float32_input_trains_in_float32(blobs):
    X, y = blobs
    clf = MLPClassifier(max_iter=3, random_state=0).fit(X.astype(np.float32), y)
    assert clf.coefs_[0].dtype == np.float32
    wide = MLPClassifier(max_iter=3, random_state=0, dtype="float64").fit(X.astype(np.float32), y)
    assert wide.coefs_[0].dtype == np.float64


def test_unsupported_options_are_clear(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="solver='lbfgs' is not supported"):
        MLPClassifier(solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="learning_rate='adaptive' is not supported"):
        MLPClassifier(learning_rate="adaptive").fit(X, y)


def test_save_load_round_trip(blobs, tmp_path):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(10,), activation="tanh", max_iter=20, random_state=0).fit(X, y)
    clf.save(tmp_path / "m.npz")
    loaded = MLPClassifier.load(tmp_path / "m.npz", backend="numba")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.classes_.tolist() == ["cat", "dog", "owl"] and loaded.activation == "tanh"
    assert loaded.get_params()["hidden_layer_sizes"] == [10] or loaded.get_params()["hidden_layer_sizes"] == (10,)
    loaded.partial_fit(X, y)  # a loaded model keeps training


def test_load_rejects_foreign_and_inconsistent_files(tmp_path):
    from mnist_accel.persist import save_model

    np.savez(tmp_path / "foreign.npz", a=np.ones(3))
    with pytest.raises(DataError, match="not an mnist-accel model"):
        MLPClassifier.load(tmp_path / "foreign.npz")
    save_model(tmp_path / "odd.npz", [np.ones((4, 3)), np.ones(2)], {"activation": "relu", "classes": [0, 1, 2]})
    with pytest.raises(DataError, match="do not fit together"):
        MLPClassifier.load(tmp_path / "odd.npz")


class _DeviceArray(np.ndarray):
    """Looks like a CuPy array to the estimator (it has the CUDA array interface and .get())."""

    __cuda_array_interface__: dict = {}

    def get(self):
        return np.asarray(self)


def test_device_inputs_train_on_the_gpu_backend(blobs, monkeypatch):
    import mnist_accel.classifier as classifier
    from mnist_accel.backends.selection import get_backend

    asked = []
    monkeypatch.setattr(classifier, "get_backend", lambda name="auto": asked.append(name) or get_backend("numpy"))
    X, y = blobs
    MLPClassifier(max_iter=2, random_state=0).fit(X.view(_DeviceArray), y)
    assert asked == ["cuda"]


@pytest.mark.standin
def test_device_inputs_train_on_the_standin_gpu(blobs):
    """CuPy arrays in, the cuda backend trains (here the CuPy stand-in), host arrays come out."""
    from cuda_standin import activate

    X, y = blobs
    with activate() as cp:
        clf = MLPClassifier(max_iter=3, random_state=0).fit(cp.asarray(X), y)
    host = MLPClassifier(max_iter=3, random_state=0, backend="numpy").fit(X, y)
    assert all(isinstance(c, np.ndarray) for c in clf.coefs_)
    for a, b in zip(clf.coefs_, host.coefs_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * np.abs(b).max())


# --- divergence: fit's rule (mnist_accel.training.divergence), a FloatingPointError that keeps the last sound iteration

def test_a_finite_explosion_is_divergence_and_leaves_an_unfitted_estimator_unfitted(blobs):
    from sklearn.exceptions import NotFittedError

    X, y = blobs
    clf = MLPClassifier(learning_rate_init=1e6, max_iter=5, random_state=0, backend="numpy")
    with pytest.raises(FloatingPointError, match=r"diverged at iteration 1 \(its mean training loss .* is over 100 "
                                                 r"times .*left as it was; try a smaller learning_rate_init"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_divergence_keeps_the_last_sound_iteration(blobs, monkeypatch):
    from mnist_accel.trainers.vectorized import VectorizedTrainer

    X, y = blobs

    def make(n):
        return MLPClassifier(max_iter=n, n_iter_no_change=100, random_state=0, backend="numpy")

    clean = make(2).fit(X, y)
    original, calls = VectorizedTrainer.train_epoch, []

    def blown_up(self):
        calls.append(1)
        if len(calls) == 3:
            for p in self.params:
                p[...] *= 1e4  # huge logits: a finite loss far past the limit
        return original(self)

    monkeypatch.setattr(VectorizedTrainer, "train_epoch", blown_up)
    clf = make(5)
    with pytest.raises(FloatingPointError, match=r"diverged at iteration 3 .* kept is from iteration 2"):
        clf.fit(X, y)
    assert clf.n_iter_ == len(clf.loss_curve_) == 2 and clf.loss_curve_ == clean.loss_curve_
    for kept, reference in zip(clf.coefs_ + clf.intercepts_, clean.coefs_ + clean.intercepts_):
        np.testing.assert_array_equal(kept, reference)
    monkeypatch.setattr(VectorizedTrainer, "train_epoch", original)
    clf.partial_fit(X, y)  # the kept optimizer state continues as if the third iteration never ran
    clean.partial_fit(X, y)
    np.testing.assert_array_equal(clf.coefs_[0], clean.coefs_[0])


def test_the_reference_is_measured_once_per_model(blobs, monkeypatch):
    from mnist_accel.training import divergence

    X, y = blobs
    calls = []
    original = divergence.reference_loss
    monkeypatch.setattr(divergence, "reference_loss", lambda *a: calls.append(1) or original(*a))
    clf = MLPClassifier(random_state=0, backend="numpy")
    for start in range(0, 300, 50):  # a stream of partial_fit calls pays one forward pass in all
        clf.partial_fit(X[start:start + 50], y[start:start + 50], classes=["cat", "dog", "owl"])
    assert len(calls) == 1
    clf.fit(X, y)  # a new fit starts from new weights
    assert len(calls) == 2
