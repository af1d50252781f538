"""Every optimizer and loss against a step computed by hand on a tiny problem, and the schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnist_accel import model, optim
from mnist_accel.config import resolve

X = np.array([[1.0, 2.0]])
W1 = np.array([[0.5, -1.0], [0.25, 0.5]])  # z1 = [1.0, 0.0] -> relu: h = [1, 0]
W2 = np.array([[1.0, -1.0], [2.0, 0.5]])  # out = h @ W2 = [1, -1]
Y = np.array([[0.0, 1.0]])


def _hand_grads(loss: str) -> list[np.ndarray]:
    h = np.array([[1.0, 0.0]])
    out = np.array([[1.0, -1.0]])
    if loss == "mse":
        d_out = 2 * (out - Y)  # [2, -4]
    else:
        p = np.exp(out) / np.exp(out).sum()
        d_out = p - Y
    d_h = d_out @ W2.T * np.array([[1.0, 0.0]])  # relu' at z1 = [1, 0] (0 is not > 0)
    return [X.T @ d_h, h.T @ d_out]


@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
def test_gradients_by_hand(loss):
    _, grads = model.loss_and_grads([W1, W2], X, Y, "relu", loss, np)
    for g, expected in zip(grads, _hand_grads(loss)):
        np.testing.assert_allclose(g, expected, rtol=1e-12)


@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_two_steps_by_hand(optimizer, loss):
    cfg = resolve(optimizer=optimizer, lr=0.1, weight_decay=0.01, schedule="constant")
    g = _hand_grads(loss)
    params = [W1.copy(), W2.copy()]
    state = optim.init_state(params, optimizer, np)
    expected = [W1.copy(), W2.copy()]
    vel = [np.zeros_like(w) for w in expected]
    m = [np.zeros_like(w) for w in expected]
    v = [np.zeros_like(w) for w in expected]
    for t in (1, 2):  # the same gradient twice, to exercise the optimizer state
        optim.update(params, g, state, cfg, optim.step_scalars(cfg, t, 0.1), np)
        for i, w in enumerate(expected):
            gi = g[i] + 0.01 * w
            if optimizer == "sgd":
                w -= 0.1 * gi
            elif optimizer == "momentum":
                vel[i] = 0.9 * vel[i] + gi
                w -= 0.1 * vel[i]
            else:
                m[i] = 0.9 * m[i] + 0.1 * gi
                v[i] = 0.999 * v[i] + 0.001 * gi ** 2
                m_hat, v_hat = m[i] / (1 - 0.9 ** t), v[i] / (1 - 0.999 ** t)
                w -= 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, rtol=1e-12, atol=1e-15)


def test_biases_are_not_decayed():
    cfg = resolve(optimizer="sgd", weight_decay=0.5)
    w, b = np.ones((2, 2)), np.ones(2)
    optim.update([w, b], [np.zeros((2, 2)), np.zeros(2)], optim.init_state([w, b], "sgd", np), cfg,
                 optim.step_scalars(cfg, 1, 0.1), np)
    assert w[0, 0] == pytest.approx(0.95) and b[0] == 1.0


def test_schedules():
    cfg = resolve(lr=1.0, schedule="cosine")
    assert optim.lr_at(cfg, 0, 100) == 1.0 and optim.lr_at(cfg, 50, 100) == pytest.approx(0.5)
    assert optim.lr_at(cfg, 100, 100) == pytest.approx(0.0, abs=1e-12)
    step = resolve(lr=1.0, schedule="step")
    assert [optim.lr_at(step, s, 100) for s in (0, 49, 50, 74, 75, 99)] == [1, 1, 0.1, 0.1, 0.01, 0.01]
    assert optim.lr_at(resolve(lr=0.3, schedule="constant"), 77, 100) == 0.3
    assert math.isfinite(optim.lr_at(cfg, 0, 0))


def test_drop_schedule_is_the_write_ups_if_i_above_75():
    cfg = resolve(lr=1.0, schedule="drop", lr_drop_at=76, lr_drop_to=0.1)
    assert [optim.lr_at(cfg, s, 150) for s in (0, 75, 76, 149)] == [1.0, 1.0, 0.1, 0.1]
    assert optim.lr_at(resolve(lr=0.5, schedule="drop", lr_drop_at=3), 3, 10) == pytest.approx(0.05)


def test_keras_adam_adds_eps_to_sqrt_v():
    """Keras's update p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), written out by hand."""
    cfg = resolve(optimizer="adam", eps=1e-3, adam_form="keras", schedule="constant")
    g = [np.array([[0.5, -1e-3]])]
    p, expected = [np.array([[1.0, 2.0]])], np.array([[1.0, 2.0]])
    state = optim.init_state(p, "adam", np)
    m = v = np.zeros((1, 2))
    for t in (1, 2):
        optim.update(p, g, state, cfg, optim.step_scalars(cfg, t, 0.01), np)
        m, v = m + (g[0] - m) * 0.1, v + (g[0] ** 2 - v) * 0.001
        expected = expected - 0.01 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(v) + 1e-3)
    np.testing.assert_allclose(p[0], expected, rtol=1e-12)
    torch_form = optim.step_scalars(cfg.replace(adam_form="pytorch"), 1, 0.01)
    assert torch_form[2] == pytest.approx(1e-3 * np.sqrt(0.001)) and optim.step_scalars(cfg, 1, 0.01)[2] == 1e-3


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("optimizer, nesterov", [("nesterov", True), ("classical-momentum", False)])
def test_nesterov_and_classical_momentum_are_scikit_learns_sgd_optimizer(optimizer, nesterov, weight_decay):
    """Five steps, the rate changed between them as 'invscaling' and 'adaptive' change it, against
    scikit-learn's own SGDOptimizer(nesterov=...) in float64, given the decayed gradients our update forms:
    the same operations in the same order, so the same numbers."""
    stochastic = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    r = np.random.default_rng(0)
    params = [r.normal(size=(4, 3)), r.normal(size=3)]
    theirs = [p.copy() for p in params]
    reference = stochastic.SGDOptimizer(theirs, learning_rate_init=0.1, momentum=0.8, nesterov=nesterov)
    cfg = resolve(optimizer=optimizer, momentum=0.8, weight_decay=weight_decay)
    state = optim.init_state(params, optimizer, np)
    for t, lr in enumerate((0.1, 0.1, 0.05, 0.01, 0.002), 1):
        grads = [r.normal(size=p.shape) for p in params]
        reference.learning_rate = lr
        reference.update_params(theirs, [g + optim.decay_for(p, weight_decay) * p for p, g in zip(theirs, grads)])
        optim.update(params, grads, state, cfg, optim.step_scalars(cfg, t, lr), np)
        for ours, want in zip(params, theirs):
            np.testing.assert_array_equal(ours, want)
        for vel, want in zip(state, reference.velocities):
            np.testing.assert_array_equal(vel[0], want)
