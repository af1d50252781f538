"""What both estimators share: scikit-learn's parameter constraints (the same InvalidParameterError, word for
word), its initial weights for a seed, sparse input on the CPU backends, and the extras' own checks."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier, MLPRegressor as SkMLPRegressor
from sklearn.utils._param_validation import InvalidParameterError

from mnist_accel import MLPClassifier, MLPRegressor

BAD = {"hidden_layer_sizes": 0, "activation": "softmax", "solver": "newton", "alpha": -1.0, "batch_size": 0,
       "learning_rate": "linear", "learning_rate_init": 0.0, "power_t": -0.5, "max_iter": 0, "shuffle": "yes",
       "random_state": "seed", "tol": -1.0, "warm_start": 1.5, "momentum": 1.5, "nesterovs_momentum": None,
       "early_stopping": "no", "validation_fraction": 1.0, "beta_1": 1.0, "beta_2": -0.1, "epsilon": 0.0,
       "n_iter_no_change": 0, "max_fun": 0}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3, random_state=0)
    return X, y


def _sorted_sets(message: str) -> str:
    """The message with each {...} listed in sorted order (a set's order varies between sets)."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message)


@pytest.mark.parametrize("name", sorted(BAD))
@pytest.mark.parametrize("pair", [(MLPClassifier, SkMLPClassifier), (MLPRegressor, SkMLPRegressor)],
                         ids=["classifier", "regressor"])
def test_parameter_errors_are_sklearns(name, pair, data):
    X, y = data
    messages = []
    for cls in pair:
        with pytest.raises(InvalidParameterError) as info:
            cls(**{name: BAD[name]}).fit(X, y)
        messages.append(_sorted_sets(str(info.value)))
    expected = messages[1]
    if name == "learning_rate":  # ours also takes 'cosine' and 'step'
        assert messages[0].startswith(expected.split(" must be a str among")[0]) and "'cosine'" in messages[0]
    else:
        assert messages[0] == expected


def test_other_errors_and_inf_patience(data):
    X, y = data
    for cls in (MLPClassifier, SkMLPClassifier):
        with pytest.raises(ValueError, match=r"hidden_layer_sizes must be > 0, got \[4, 0\]\."):
            cls(hidden_layer_sizes=[4, 0]).fit(X, y)
        with pytest.raises(InvalidParameterError, match="'loss' parameter of MLPRegressor"):
            (MLPRegressor if cls is MLPClassifier else SkMLPRegressor)(loss="huber").fit(X, y)
    linear = MLPClassifier(hidden_layer_sizes=(), solver="lbfgs", random_state=0).fit(X, y)
    sk = SkMLPClassifier(hidden_layer_sizes=(), solver="lbfgs", random_state=0).fit(X, y)
    np.testing.assert_allclose(linear.predict_proba(X), sk.predict_proba(X), atol=1e-6)
    for solver in ("sgd", "adam"):  # no hidden layer on the stochastic solvers too: the same steps as sklearn's
        kw = dict(hidden_layer_sizes=(), solver=solver, max_iter=5, shuffle=False, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours, theirs = MLPClassifier(**kw).fit(X, y), SkMLPClassifier(**kw).fit(X, y)
        np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-6, atol=1e-8)
        assert ours.n_iter_ == theirs.n_iter_ == 5
    clf = MLPClassifier(n_iter_no_change=np.inf, max_iter=15, random_state=0).fit(X, y)
    assert clf.n_iter_ == 15
    for name, bad in (("backend", "tpu"), ("dtype", "float16"), ("dropout", 1.0)):
        with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of MLPClassifier must be"):
            MLPClassifier(**{name: bad}).fit(X, y)


@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_a_seed_gives_sklearns_initial_weights(activation, data):
    X, y = data
    kw = dict(hidden_layer_sizes=(5, 4), activation=activation, max_iter=1, random_state=7)
    ours, theirs = MLPClassifier(**kw).fit(X, y), SkMLPClassifier(**kw).fit(X, y)
    for a, b in zip(ours._best_coefs + ours._best_intercepts, theirs._best_coefs + theirs._best_intercepts):
        np.testing.assert_array_equal(a, b)  # before any step: scikit-learn's Glorot draw, weights and biases


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("fmt", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
def test_sparse_input_trains_as_the_dense_matrix(backend, fmt, data):
    X, y = data
    X = np.where(X > 0.5, X, 0.0)
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend=backend)
    dense, sparse = MLPClassifier(**kw).fit(X, y), MLPClassifier(**kw).fit(fmt(X), y)
    for a, b in zip(dense.coefs_, sparse.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sparse.predict_proba(fmt(X)), dense.predict_proba(X), rtol=1e-9)
    reg = MLPRegressor(**kw).fit(fmt(X), X[:, 0])
    np.testing.assert_allclose(reg.predict(fmt(X)), MLPRegressor(**kw).fit(X, X[:, 0]).predict(X), rtol=1e-9)


def test_sparse_input_on_cuda_says_what_to_do(data):
    X, y = data
    with pytest.raises(ValueError, match="sparse X trains on the CPU backends only"):
        MLPClassifier(backend="cuda").fit(sp.csr_matrix(X), y)
    assert MLPClassifier(max_iter=2)._backend(sp.csr_matrix(X), device=False).name in ("numba", "numpy")
