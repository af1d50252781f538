"""The losses: scikit-learn's values, stability far from zero, and the rows each counts as right."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel import losses


def _scores_and_targets(seed: int = 0):
    r = np.random.default_rng(seed)
    z = r.normal(0, 2, (9, 3))
    return z, (r.random((9, 3)) < 0.4).astype(float), r.normal(0, 1, (9, 3)), r.poisson(2.0, (9, 3)).astype(float)


def test_scikit_learns_losses_are_its_loss_functions_times_the_samples():
    """binary-cross-entropy and poisson sum what scikit-learn averages over the samples; squared-error sums what
    it averages over the samples and outputs (its loss_ before the alpha term)."""
    base = pytest.importorskip("sklearn.neural_network._base")
    z, labels, values, counts = _scores_and_targets()
    n, k = z.shape
    assert losses.loss_sum(z, labels, "binary-cross-entropy", np) == \
        pytest.approx(n * base.binary_log_loss(labels, 1 / (1 + np.exp(-z))), rel=1e-12)
    assert losses.loss_sum(z, values, "squared-error", np) == pytest.approx(n * k * base.squared_loss(values, z),
                                                                          rel=1e-12)
    assert losses.loss_sum(z, counts, "poisson", np) == pytest.approx(n * base.poisson_loss(counts, np.exp(z)),
                                                                    rel=1e-12)


def test_binary_cross_entropy_is_stable_far_from_zero():
    """From the scores, not from clipped probabilities: finite and exact where the logistic rounds to 0 or 1."""
    z, y = np.array([[800.0, -800.0, 40.0, -40.0]]), np.array([[0.0, 1.0, 1.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # exp(-800) underflows to 0, rightly
        total = losses.loss_sum(z, y, "binary-cross-entropy", np)
        p = losses.link(z, "binary-cross-entropy", np)
    assert total == pytest.approx(1600 + 2 * np.log1p(np.exp(-40.0)), rel=1e-15)
    np.testing.assert_allclose(p, [[1.0, 0.0, 1.0, np.exp(-40.0)]], rtol=1e-15, atol=0)


def test_correct_counts_per_loss():
    out = np.array([[2.0, -1.0], [-0.5, 0.5], [1.0, 3.0]])
    y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert losses.correct_count(out, y, "cross-entropy") == 2  # rows 0 and 1 peak on the target's peak
    assert losses.correct_count(out, y, "binary-cross-entropy") == 3  # every label on its side of 0.5
    assert losses.correct_count(out, np.array([[1.0, 1.0], [0, 1], [1, 1]]), "binary-cross-entropy") == 2
    assert losses.correct_count(out, y, "squared-error") == 0 and losses.correct_count(out, y, "poisson") == 0
