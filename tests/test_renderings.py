"""Each write-up preset computes what its write-up's own algorithm computes: bench/renderings.py's NumPy
rendering of the write-up (operation for operation, in the write-up's layout) and the preset, from the
same initial weights on a few hundred images in float64, agree to relative 1e-10 in every weight and in
every figure the write-up prints. The bench's ``seeds`` group times these same renderings."""

from __future__ import annotations

import numpy as np
import pytest

from bench import renderings
from mnist_accel import model, rng as crng
from mnist_accel.backends.selection import get_backend, to_host
from mnist_accel.config import resolve
from mnist_accel.data.mnist import normalize
from mnist_accel.trainers.vectorized import SHUFFLE, VectorizedTrainer
from mnist_accel.training.fit import fit

N = 300
RTOL = 1e-10


def _close(ours, theirs) -> None:
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        assert np.abs(np.asarray(a) - b).max() <= RTOL * np.abs(b).max()


def _initial(cfg) -> list[np.ndarray]:
    """The weights fit(cfg) starts from: drawn first from the generator seeded with --seed."""
    return model.init_params(np.random.default_rng(cfg.seed), [784, *cfg.hidden, 10], cfg.init, cfg.bias, np.float64)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_full_batch_is_the_write_ups_gradient_descent(backend, mnist):
    """150 iterations with the drop after iteration 75; at every 10th the cost (the write-up's mean over 10 x m
    entries of -y log(a + 1e-8): our per-sample loss / 10, up to that 1e-8) and the training accuracy."""
    cfg = resolve("full-batch", backend=backend, train_samples=N, test_samples=100, dtype="float64")
    result = fit(cfg, mnist)
    x = normalize(mnist.train_images[:N], np.float64).T  # the write-up's samples in columns
    params, printed = renderings.full_batch(_initial(cfg), x, mnist.train_labels[:N])
    _close(result.params, params)
    assert [p["iteration"] for p in printed] == [*range(0, 150, 10), 149]
    for p in printed:
        ours = result.history[p["iteration"]]
        assert ours["train_accuracy"] == p["train_accuracy"]
        assert ours["train_loss"] / 10 == pytest.approx(p["cost"], rel=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_keras_mlp_is_keras_fit(backend, mnist):
    """Ten epochs of Keras's Adam on the first 80% (the last 20% validate), in the trainer's shuffles: each
    epoch's loss and accuracy as Keras prints them, the validation figures, and the weights."""
    cfg = resolve("keras-mlp", backend=backend, train_samples=N, dtype="float64")
    gen = np.random.default_rng(cfg.seed)
    start = model.init_params(gen, [784, 128, 128, 10], cfg.init, True, np.float64)
    trainer = VectorizedTrainer(cfg, get_backend(backend), [p.copy() for p in start], gen, mnist.train_images[:N],
                                mnist.train_labels[:N])
    ours = []
    for _ in range(cfg.epochs):
        loss, hits = trainer.train_epoch()
        val = model.evaluate(trainer.params, *trainer.val, cfg.activation, cfg.loss, np)
        ours.append([float(to_host(loss)) / 240, int(to_host(hits)) / 240, float(val[0]) / 60, int(val[1]) / 60])
    x = normalize(mnist.train_images[:N], np.float64)
    labels = mnist.train_labels[:N]
    params, history = renderings.keras_mlp(
        start, x[:240], labels[:240], lambda epoch: crng.permutation(crng.key(trainer.seed, SHUFFLE, epoch), 240, np),
        validation=(x[240:], labels[240:]))
    _close([to_host(p) for p in trainer.params], params)
    for o, h in zip(ours, history, strict=True):
        np.testing.assert_allclose(o, [h["train_loss"], h["train_accuracy"], h["val_loss"], h["val_accuracy"]],
                                   rtol=RTOL)
    _close(fit(cfg, mnist).params, params)  # and fit runs that trainer from those weights


def test_tutorial_rendering_is_the_preset(mnist):
    """The tutorial's loop (the preset's own numbers are pinned in tests/trainers/test_loop.py's published table)."""
    cfg = resolve("tutorial", backend="numpy", train_samples=N, test_samples=N, epochs=3)
    result = fit(cfg, mnist)
    gen = np.random.default_rng(cfg.seed)
    start = model.init_params(gen, [784, 100, 10], "tutorial")
    params, history = renderings.tutorial(start, normalize(mnist.train_images[:N], np.float64), mnist.train_labels[:N],
                                          normalize(mnist.test_images[:N], np.float64), mnist.test_labels[:N], gen,
                                          epochs=3)
    _close(result.params, params)
    for ours, theirs in zip(result.history, history, strict=True):
        assert ours["train_accuracy"] == theirs["train_accuracy"] and ours["test_accuracy"] == theirs["test_accuracy"]
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=RTOL)
