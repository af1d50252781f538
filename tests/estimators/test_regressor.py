"""MLPRegressor: scikit-learn's conformance suite, and scikit-learn's regressor's behaviour on the same data:
fit/partial_fit/predict/score, one and several outputs, the Poisson loss, every backend."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mnist_accel import MLPRegressor


@parametrize_with_checks([MLPRegressor(max_iter=100, random_state=0, backend="numpy"),
                          MLPRegressor(max_iter=100, random_state=0, backend="numba", solver="sgd",
                                       hidden_layer_sizes=(8, 4), learning_rate_init=0.01),
                          MLPRegressor(max_iter=100, random_state=0, backend="numpy", solver="lbfgs")])
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def data():
    X, y = make_regression(n_samples=300, n_features=10, n_informative=6, n_targets=3, noise=0.1, random_state=0)
    return StandardScaler().fit_transform(X), y / y.std(axis=0)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_scores_as_sklearns_on_one_and_several_outputs(data, solver):
    X, Y = data
    for y in (Y[:, 0], Y):
        kw = dict(solver=solver, hidden_layer_sizes=(32,), max_iter=200, random_state=0, learning_rate_init=0.01)
        ours, theirs = MLPRegressor(**kw).fit(X, y), SkMLPRegressor(**kw).fit(X, y)
        assert ours.predict(X).shape == theirs.predict(X).shape == y.shape
        assert ours.out_activation_ == theirs.out_activation_ == "identity" and ours.n_outputs_ == theirs.n_outputs_
        assert ours.score(X, y) > 0.9 and ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=0.02)


def test_poisson_loss_as_sklearns(data):
    X, _ = data
    y = np.random.default_rng(0).poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1]))
    for solver in ("lbfgs", "adam"):
        kw = dict(loss="poisson", solver=solver, hidden_layer_sizes=(8,), max_iter=50, random_state=0,
                  shuffle=False)
        ours, theirs = MLPRegressor(backend="numpy", **kw).fit(X, y), SkMLPRegressor(**kw).fit(X, y)
        assert ours.out_activation_ == theirs.out_activation_ == "exp" and (ours.predict(X) > 0).all()
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-5)
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-4)


def test_partial_fit_and_lbfgs_partial_fit_as_sklearn(data):
    X, Y = data
    ours, theirs = (cls(random_state=0, shuffle=False) for cls in (MLPRegressor, SkMLPRegressor))
    for est in (ours, theirs):
        for start in range(0, 300, 100):
            est.partial_fit(X[start:start + 100], Y[start:start + 100])
    assert ours.n_iter_ == theirs.n_iter_ == 1 and ours.t_ == theirs.t_ == 300
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-4)
    # scikit-learn 1.9's regressor keeps partial_fit under 'lbfgs': L-BFGS from the current weights
    ours, theirs = (cls(solver="lbfgs", max_iter=5, random_state=0) for cls in (MLPRegressor, SkMLPRegressor))
    for est in (ours, theirs):
        est.partial_fit(X, Y[:, 0]).partial_fit(X, Y[:, 0])
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", ["numba", pytest.param("cuda", marks=pytest.mark.standin)])
def test_every_backend_gives_the_numpy_model(data, backend):
    X, Y = data
    kw = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    reference = MLPRegressor(backend="numpy", **kw).fit(X, Y)
    if backend == "cuda":
        from cuda_standin import activate

        with activate() as cp:
            ours = MLPRegressor(**kw).fit(cp.asarray(X), Y)
            predicted = ours.predict(cp.asarray(X)).get()
    else:
        ours = MLPRegressor(backend=backend, **kw).fit(X, Y)
        predicted = ours.predict(X)
    np.testing.assert_allclose(predicted, reference.predict(X), rtol=1e-7, atol=1e-9)
    assert ours.loss_curve_ == pytest.approx(reference.loss_curve_, rel=1e-9)
