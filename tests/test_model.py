"""The model core: exact gradients (against central finite differences in float64), initialisation, the
outputs and evaluation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mnist_accel import losses, model


def _problem(bias: bool, dropout: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = model.init_params(rng, [6, 5, 4, 3], "xavier", bias, np.float64)
    if bias:
        params = [p + rng.normal(0, 0.1, p.shape) if p.ndim == 1 else p for p in params]
    x = rng.normal(size=(7, 6))
    y = np.eye(3)[rng.integers(0, 3, 7)]
    masks = [rng.integers(0, 2, (7, 5)), rng.integers(0, 2, (7, 4))] if dropout else None
    return params, x, y, masks


@pytest.mark.parametrize("activation, loss, bias, dropout", list(itertools.product(
    ("relu", "tanh", "sigmoid", "identity"), losses.LOSSES, (False, True), (False, True))))
def test_gradients_match_finite_differences(activation, loss, bias, dropout):
    params, x, y, masks = _problem(bias, dropout)
    scale = 2.0 if dropout else 1.0

    def f(ps):
        out, _ = model.forward(ps, x, activation, np, masks, scale)
        return losses.loss_sum(out, y, loss, np) / len(x)

    value, grads = model.loss_and_grads(params, x, y, activation, loss, np, masks, scale)
    assert value == pytest.approx(f(params), rel=1e-12)
    eps = 1e-6
    for p, g in zip(params, grads):
        assert g.shape == p.shape
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = f(params)
            p[i] = old - eps
            down = f(params)
            p[i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-8)


def test_tutorial_init_draws_the_tutorial_stream():
    params = model.init_params(np.random.default_rng(884736743), [784, 100, 10], "tutorial")
    rng = np.random.default_rng(884736743)
    np.testing.assert_array_equal(params[0], 0.2 * rng.random((784, 100)) - 0.1)
    np.testing.assert_array_equal(params[1], 0.2 * rng.random((100, 10)) - 0.1)


@pytest.mark.parametrize("init, expected_std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(2 / 700))])
def test_scaled_inits(init, expected_std):
    params = model.init_params(np.random.default_rng(1), [400, 300], init, bias=True, dtype=np.float32)
    assert params[0].dtype == np.float32 and params[1].tolist() == [0.0] * 300
    assert params[0].std() == pytest.approx(expected_std, rel=0.02)


def test_relu_is_the_tutorials():
    z = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(model.activate(z, "relu", np), [0.0, 0.0, 2.0])


def test_evaluate_counts_and_sums():
    params = [np.eye(2), np.eye(2)]
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    y = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    total, correct = model.evaluate(params, x, y, "relu", "mse", np, chunk=2)
    assert correct == 2 and total == pytest.approx(0 + 2 + 2)


def test_named_scale_rules():
    """normal:S is S times the generator's standard normal draws (the write-ups' ``randn(...) * S``),
    uniform:S uniform in [-S, S); glorot-uniform is xavier, draw for draw."""
    params = model.init_params(np.random.default_rng(3), [784, 16, 10], "normal:0.1", bias=True)
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(params[0], rng.standard_normal((784, 16)) * 0.1)
    np.testing.assert_array_equal(params[2], rng.standard_normal((16, 10)) * 0.1)
    assert not params[1].any() and not params[3].any()
    (w,) = model.init_params(np.random.default_rng(4), [500, 300], "uniform:0.05")
    assert -0.05 <= w.min() < -0.049 and 0.049 < w.max() < 0.05
    glorot = model.init_params(np.random.default_rng(5), [30, 20, 10], "glorot-uniform")
    xavier = model.init_params(np.random.default_rng(5), [30, 20, 10], "xavier")
    for a, b in zip(glorot, xavier):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("init", ["normal", "normal:", "normal:0", "uniform:-1", "normal:nan", "orthogonal"])
def test_bad_init_names(init):
    with pytest.raises(ValueError, match="init"):
        model.parse_init(init)


def test_outputs_are_scikit_learns_output_activations():
    params, x, _, _ = _problem(True, False)
    out, _ = model.forward(params, x, "tanh", np)
    expected = {"cross-entropy": np.exp(out) / np.exp(out).sum(1, keepdims=True), "binary-cross-entropy":
                1 / (1 + np.exp(-out)), "squared-error": out, "mse": out, "poisson": np.exp(out)}
    for loss, want in expected.items():
        np.testing.assert_allclose(model.outputs(params, x, "tanh", loss, np), want, rtol=1e-12)
    np.testing.assert_allclose(model.outputs(params, x, "tanh", "cross-entropy", np),
                               model.probabilities(params, x, "tanh", np), rtol=1e-15)


def test_a_sparse_matrix_evaluates_as_its_dense_rows():
    sparse = pytest.importorskip("scipy.sparse")
    params, x, y, _ = _problem(True, False)
    x[x < 0.3] = 0
    for loss in ("cross-entropy", "binary-cross-entropy"):
        dense = model.evaluate(params, x, y, "relu", loss, np, chunk=3)
        got = model.evaluate(params, sparse.csr_matrix(x), y, "relu", loss, np, chunk=3)
        assert got[0] == pytest.approx(dense[0], rel=1e-12) and got[1] == dense[1]
    np.testing.assert_allclose(model.outputs(params, sparse.csr_array(x), "relu", "squared-error", np),
                               model.outputs(params, x, "relu", "squared-error", np), rtol=1e-12)
