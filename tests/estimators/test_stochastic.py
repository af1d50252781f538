"""The stochastic solvers against scikit-learn's on the same data: with ``shuffle=False`` both take the same
batches from the same initial weights, so every solver, momentum form and learning-rate schedule must give
scikit-learn's numbers (to rounding); ``n_iter_``, ``t_``, warm starts, ``partial_fit``, early stopping and
``ConvergenceWarning`` as scikit-learn has them; divergence keeps the last sound epoch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier, MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler

from mnist_accel import MLPClassifier, MLPRegressor


@pytest.fixture(scope="module")
def blobs():
    X, y = make_classification(n_samples=300, n_features=12, n_informative=6, n_classes=3, random_state=0)
    return StandardScaler().fit_transform(X), np.array(["cat", "dog", "owl"])[y]


def _pair(kind, **kw):
    ours, theirs = (MLPClassifier, SkMLPClassifier) if kind == "classifier" else (MLPRegressor, SkMLPRegressor)
    return ours(backend="numpy", **kw), theirs(**kw)


def _fit_both(pair, X, y):
    """Fit both, recording each one's warnings (their messages)."""
    out = []
    for est in pair:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X, y)
        out.append([f"{w.category.__name__}: {w.message}" for w in caught])
    return out


SOLVERS = [dict(solver="sgd"), dict(solver="sgd", nesterovs_momentum=False), dict(solver="sgd", momentum=0.0),
           dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.2, power_t=0.3),
           dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.2, nesterovs_momentum=False),
           dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.2, tol=1e-2, n_iter_no_change=2),
           dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.2, tol=0.5, n_iter_no_change=1),
           dict(solver="adam"), dict(solver="adam", alpha=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
           dict(solver="adam", early_stopping=True, n_iter_no_change=3, validation_fraction=0.2)]


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("params", SOLVERS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_same_batches_give_sklearns_model(kind, params, blobs):
    X, y = blobs
    if kind == "regressor":
        y = X[:, :2] @ [1.0, -2.0] + np.sin(X[:, 2])
    pair = _pair(kind, hidden_layer_sizes=(16,), max_iter=40, random_state=0, shuffle=False, batch_size=60,
                 **params)
    ours_warned, theirs_warned = _fit_both(pair, X, y)
    ours, theirs = pair
    assert ours_warned == theirs_warned
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_ and len(ours.loss_curve_) == ours.n_iter_
    if params.get("tol") == 0.5:  # the rate divided by 5 until it is below 1e-6, then a stop before max_iter
        assert ours.n_iter_ < 40
    # the reported loss adds the L2 term at the epoch's first and last weights, scikit-learn at each batch's
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-3 if params.get("alpha") else 1e-4)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    if params.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)
        assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
        assert ours.best_loss_ is theirs.best_loss_ is None
    else:
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-4)
        assert ours.validation_scores_ is theirs.validation_scores_ is None


def test_warm_start_and_partial_fit_count_as_sklearn_does(blobs):
    X, y = blobs
    ours, theirs = _pair("classifier", max_iter=10, random_state=0, shuffle=False, tol=0.0)
    for est in (ours, theirs):
        est.fit(X, y)
        est.set_params(max_iter=20, warm_start=True).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 20 and ours.t_ == theirs.t_ == 9000
    assert len(ours.loss_curve_) == len(theirs.loss_curve_) == 30
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-5)
    ours, theirs = _pair("classifier", random_state=0, shuffle=False)
    for est in (ours, theirs):
        for _ in range(3):
            est.partial_fit(X, y, classes=["cat", "dog", "owl"])
    assert ours.n_iter_ == theirs.n_iter_ == 1 and ours.t_ == theirs.t_ == 900
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-5)  # one optimizer across calls


def test_convergence_warning_only_when_max_iter_is_reached(blobs):
    X, y = blobs
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(5\) reached"):
        MLPClassifier(max_iter=5, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = MLPClassifier(max_iter=500, tol=0.5, random_state=0).fit(X, y)  # stops on its own
        assert clf.n_iter_ == 12  # tol this coarse: no epoch improves enough, stop after 1 + n_iter_no_change + 1
        MLPClassifier(max_iter=1, random_state=0).partial_fit(X, y, classes=["cat", "dog", "owl"])


def test_verbose_prints_sklearns_lines(blobs, capsys):
    X, y = blobs
    printed = []
    for est in _pair("classifier", max_iter=6, random_state=0, shuffle=False, verbose=True, early_stopping=True,
                     solver="sgd", learning_rate="adaptive", n_iter_no_change=1, tol=0.5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        printed.append(capsys.readouterr().out.splitlines())
    assert printed[0] == printed[1] and any("Setting learning rate to" in line for line in printed[0])


def test_ctrl_c_keeps_the_weights_with_sklearns_warning(blobs, monkeypatch):
    from mnist_accel.trainers.vectorized import VectorizedTrainer

    X, y = blobs
    original, calls = VectorizedTrainer.train_epoch, []

    def interrupted(self):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(VectorizedTrainer, "train_epoch", interrupted)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        clf = MLPClassifier(max_iter=10, random_state=0, backend="numpy").fit(X, y)
    assert clf.n_iter_ == 2 and clf.predict(X).shape == y.shape


# --- divergence: fit's rule (mnist_accel.training.divergence), a FloatingPointError that keeps the last sound epoch

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
    from mnist_accel.estimators import stochastic

    X, y = blobs
    calls = []
    original = stochastic.reference_loss
    monkeypatch.setattr(stochastic, "reference_loss", lambda *a: calls.append(1) or original(*a))
    clf = MLPClassifier(random_state=0, backend="numpy")
    for start in range(0, 300, 50):  # a stream of partial_fit calls pays one forward pass in all
        clf.partial_fit(X[start:start + 50], y[start:start + 50], classes=["cat", "dog", "owl"])
    assert len(calls) == 1
    clf.fit(X, y)  # a new fit starts from new weights
    assert len(calls) == 2


def test_a_regression_rides_out_a_finite_spike_as_sklearn_and_stops_on_nan():
    """Regression losses swing by orders of magnitude (scikit-learn's SGD on uncentred inputs spikes 200-fold
    and recovers): only a NaN or infinite loss is divergence there."""
    rng = np.random.RandomState(0)
    X, y = rng.normal(loc=100, size=(80, 2)), rng.normal(size=80)  # one batch: the same steps as scikit-learn's
    kw = dict(solver="sgd", max_iter=100, random_state=0, hidden_layer_sizes=(8, 4), learning_rate_init=0.01)
    ours, theirs = MLPRegressor(backend="numpy", **kw).fit(X, y), SkMLPRegressor(**kw).fit(X, y)
    assert max(theirs.loss_curve_) > 100 * theirs.loss_curve_[0]
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
    with pytest.raises(FloatingPointError, match="diverged at iteration .* NaN or infinite"):
        MLPRegressor(backend="numpy", **{**kw, "learning_rate_init": 1e6}).fit(X, y * 1e6)
