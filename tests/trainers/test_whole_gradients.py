"""``VectorizedTrainer.loss_and_grads`` (``trainers/whole_gradients.py``): the whole set's summed loss and mean
gradients at the trainer's current parameters are model.loss_and_grads's, in float64 to rounding, on every
backend and through every whole-set path (numba's sparse first layer and fused one-pass step, BLAS on
features, the GPU's kernels via the CuPy stand-in), and nothing is updated."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel import model
from mnist_accel.backends.selection import get_backend, to_host
from mnist_accel.config import resolve
from mnist_accel.trainers.vectorized import VectorizedTrainer
from mnist_accel.trainers.whole_gradients import NOT_WHOLE


def _data(kind: str, loss: str, n: int = 120, f: int = 30, k: int = 4, seed: int = 0):
    """uint8 pixels (a fifth lit, as MNIST) or float features, and targets of ``loss``'s kind."""
    r = np.random.default_rng(seed)
    pixels = ((r.random((n, f)) < 0.2) * r.integers(1, 256, (n, f))).astype(np.uint8)
    x = pixels if kind == "pixels" else pixels / 255.0
    score = (pixels / 255.0) @ r.normal(size=(f, k))
    targets = {"cross-entropy": score.argmax(1), "binary-cross-entropy": (score > 0).astype(float),
               "squared-error": score, "poisson": r.poisson(np.exp(score / 4)).astype(float)}[loss]
    return x, targets


def _reference(params, x, targets, activation, loss, k):
    features = x / 255.0 if x.dtype == np.uint8 else x
    y = np.eye(k)[targets] if targets.ndim == 1 else targets
    mean, grads = model.loss_and_grads(params, features, y, activation, loss, np)
    return mean * len(x), grads


@pytest.mark.parametrize("hidden, kind, loss, activation", [
    ((), "pixels", "cross-entropy", "relu"),
    ((8,), "pixels", "cross-entropy", "tanh"),  # numba: the fused one-pass step's gradients
    ((70, 9), "pixels", "cross-entropy", "relu"),  # numba: the sparse first layer, composed
    ((16,), "features", "cross-entropy", "sigmoid"),
    ((), "features", "binary-cross-entropy", "relu"),
    ((12,), "features", "squared-error", "tanh"),
    ((12,), "pixels", "poisson", "relu"),
])
def test_loss_and_grads_are_the_models(any_backend, hidden, kind, loss, activation):
    x, targets = _data(kind, loss)
    k = 4
    cfg = resolve(backend=any_backend.name, hidden=hidden, batch_size=len(x), loss=loss, activation=activation,
                  dtype="float64", dropout=0.3, shuffle=False, weight_decay=0.1, optimizer="adam")
    params = model.init_params(np.random.default_rng(1), [x.shape[1], *hidden, k], "xavier", True, np.float64)
    trainer = VectorizedTrainer(cfg, any_backend, [p.copy() for p in params], np.random.default_rng(2), x, targets)
    assert trainer.whole
    for _ in range(2):  # twice, at new parameters written in place: the buffers are reused
        want_loss, want = _reference(params, x, targets, activation, loss, k)
        order = [*range(0, len(params), 2), *range(1, len(params), 2)]  # scikit-learn's: weights, then biases
        got_loss, got = trainer.loss_and_grads(order)
        assert got.dtype == np.float64 and got.shape == (sum(p.size for p in params),)
        assert got_loss == pytest.approx(want_loss, rel=1e-12)
        flat = np.concatenate([want[i].ravel() for i in order])
        np.testing.assert_allclose(got, flat, rtol=1e-10, atol=1e-13 * np.abs(flat).max())
        for a, b in zip(trainer.params, params):  # nothing updated: no step, no weight decay
            np.testing.assert_array_equal(to_host(a), b)
        params = [p - 0.5 * g for p, g in zip(params, want)]
        for dst, src in zip(trainer.params, params):
            dst[...] = trainer.xp.asarray(src)


def test_the_gradient_is_a_copy_of_its_own():
    x, targets = _data("pixels", "cross-entropy")
    cfg = resolve(backend="numpy", hidden=(8,), batch_size=len(x), dtype="float64")
    params = model.init_params(np.random.default_rng(1), [30, 8, 4], "xavier", True, np.float64)
    trainer = VectorizedTrainer(cfg, get_backend("numpy"), params, np.random.default_rng(2), x, targets)
    _, first = trainer.loss_and_grads()
    kept = first.copy()
    trainer.params[0] *= 2
    _, second = trainer.loss_and_grads()
    np.testing.assert_array_equal(first, kept)
    assert not np.array_equal(first, second)


def test_a_trainer_of_mini_batches_is_refused():
    x, targets = _data("pixels", "cross-entropy")
    cfg = resolve(backend="numpy", hidden=(8,), batch_size=32)
    params = model.init_params(np.random.default_rng(1), [30, 8, 4], "xavier", True, np.float32)
    trainer = VectorizedTrainer(cfg, get_backend("numpy"), params, np.random.default_rng(2), x, targets)
    with pytest.raises(ValueError, match="^" + NOT_WHOLE):
        trainer.loss_and_grads()
