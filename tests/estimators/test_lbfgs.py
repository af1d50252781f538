"""L-BFGS against scikit-learn's: the same loss and gradient at the same point (our model on the backend,
scikit-learn's backprop), and so the same fit from the same initial weights: n_iter_, loss_, weights,
predictions and ConvergenceWarnings, for classification (binary, multiclass, multilabel) and regression
(one and several outputs), with alpha's L2 term, max_fun and tol as scikit-learn passes them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.neural_network import MLPClassifier as SkMLPClassifier, MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler

from mnist_accel import MLPClassifier, MLPRegressor
from mnist_accel.backends.selection import get_backend
from mnist_accel.estimators.lbfgs import Objective


def _data(task):
    if task == "multiclass":
        X, y = make_classification(n_samples=200, n_features=10, n_informative=5, n_classes=3, random_state=0)
    elif task == "binary":
        X, y = make_classification(n_samples=200, n_features=10, random_state=0)
    elif task == "multilabel":
        X, y = make_multilabel_classification(n_samples=200, n_features=10, n_classes=3, random_state=0)
    else:
        X, y = make_regression(n_samples=200, n_features=10, n_targets=2 if task == "2 outputs" else 1,
                               noise=0.5, random_state=0)
        y = y / y.std()
    return StandardScaler().fit_transform(X), y


def _pair(task, **kw):
    if task in ("multiclass", "binary", "multilabel"):
        return MLPClassifier(backend="numpy", **kw), SkMLPClassifier(**kw)
    return MLPRegressor(backend="numpy", **kw), SkMLPRegressor(**kw)


TASKS = ["multiclass", "binary", "multilabel", "1 output", "2 outputs"]


@pytest.mark.parametrize("task", TASKS)
def test_loss_and_gradient_equal_sklearns_at_the_same_point(task):
    X, y = _data(task)
    ours, theirs = _pair(task, solver="lbfgs", hidden_layer_sizes=(7, 5), activation="tanh", alpha=0.3, max_iter=3,
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y)
        theirs.fit(X, y)
    Y = y.reshape(len(y), -1) if task != "multiclass" else theirs._label_binarizer.transform(y)
    targets = ours._targets(ours._validate_input(X, y, False, False)[1].reshape(len(y), -1))
    objective = Objective(ours, X, targets, get_backend("numpy"))
    value, grad = objective(objective.pack(theirs.coefs_, theirs.intercepts_))
    sizes = [10, 7, 5, Y.shape[1]]
    activations = [X] + [None] * (len(sizes) - 1)
    coef_grads = [np.empty((a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    intercept_grads = [np.empty(b) for b in sizes[1:]]
    loss, coef_grads, intercept_grads = theirs._backprop(X, Y.astype(float), None, activations, [None] * 3,
                                                         coef_grads, intercept_grads)
    assert value == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(grad, np.hstack([g.ravel() for g in coef_grads + intercept_grads]), rtol=1e-10,
                               atol=1e-14)


@pytest.mark.parametrize("backend", ["numba", pytest.param("cuda", marks=pytest.mark.standin)])
def test_every_backend_computes_the_numpy_objective(backend):
    X, y = _data("multiclass")
    X = np.where(X > 0.3, X, 0.0)  # mostly zeros: numba may take the first layer sparse
    est = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(9,), max_iter=2, random_state=0, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    targets = est._targets(est._validate_input(X, y, False, False)[1])
    reference = Objective(est, X, targets, get_backend("numpy"))
    theta = reference.pack(est.coefs_, est.intercepts_)
    if backend == "cuda":
        from cuda_standin import activate

        with activate():
            value, grad = Objective(est, X, targets, get_backend("cuda"))(theta)
    else:
        value, grad = Objective(est, X, targets, get_backend(backend))(theta)
    expected_value, expected_grad = reference(theta)
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("task", TASKS)
def test_the_fit_is_sklearns(task):
    X, y = _data(task)
    ours, theirs = _pair(task, solver="lbfgs", hidden_layer_sizes=(12,), max_iter=60, random_state=0)
    caught = []
    for est in (ours, theirs):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            est.fit(X, y)
        caught.append([str(w.message) for w in record])
    assert caught[0] == caught[1]
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_ == 0
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    assert not hasattr(ours, "loss_curve_") and not hasattr(ours, "best_loss_")
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-5, atol=1e-6)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=1e-6)


def test_max_fun_tol_and_warm_start_as_sklearn():
    X, y = _data("multiclass")
    for kw in (dict(max_fun=10), dict(max_iter=5), dict(tol=1e-2), dict(max_iter=15, warm_start=True)):
        ours, theirs = _pair("multiclass", solver="lbfgs", hidden_layer_sizes=(8,), random_state=1, **kw)
        messages = []
        for est in (ours, theirs):
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                est.fit(X, y)
                est.fit(X, y)  # again: from the fitted weights under warm_start, else from new ones
            messages.append([str(w.message) for w in record])
        assert messages[0] == messages[1]
        assert ours.n_iter_ == theirs.n_iter_ and ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)


def test_float32_and_sparse_input():
    X, y = _data("multiclass")
    dense = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=30, random_state=0, backend="numpy")
    dense.fit(X, y)
    X_sparse = np.where(np.abs(X) > 1, X, 0)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        a = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(fmt(X_sparse), y)
        b = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X_sparse, y)
        np.testing.assert_allclose(a.predict_proba(fmt(X_sparse)), b.predict_proba(X_sparse), rtol=1e-8, atol=1e-10)
    single = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    single.fit(X.astype(np.float32), y)
    assert single.coefs_[0].dtype == np.float32 and single.score(X, y) > dense.score(X, y) - 0.05
