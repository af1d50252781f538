"""The divergence rule: what counts as diverged, and that sound runs of every kind stay far inside it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnist_accel.config import resolve
from mnist_accel.training import divergence
from mnist_accel.training.divergence import LIMIT, reason, reference_loss, trivial_loss
from mnist_accel.training.fit import fit


def test_reason_names_non_finite_and_out_of_range_losses():
    assert reason(float("nan"), 2.3) == reason(float("inf"), 2.3) == "the loss became NaN or infinite"
    assert reason(LIMIT * 2.3 * 0.99, 2.3) is None
    assert reason(0.0, 2.3) is None
    message = reason(4.5e15, 2.3)
    assert message is not None and "4.5e+15" in message and "100 times the untrained model's 2.3" in message


@pytest.mark.parametrize("loss, expected, above", [("cross-entropy", math.log(10), 3), ("mse", 1.0, 3),
                                                   ("softmax-mse", 0.09, 1.5)])  # bounded by 2 / 10
def test_reference_is_the_untrained_loss_floored_by_knowing_nothing(loss, expected, above, mnist):
    zero = [np.zeros((784, 16), np.float32), np.zeros(16, np.float32), np.zeros((16, 10), np.float32),
            np.zeros(10, np.float32)]  # every output 0: exactly the trivial loss
    assert reference_loss(zero, mnist.train_images, mnist.train_labels, "relu", loss) == \
        pytest.approx(expected, rel=1e-6) == trivial_loss(loss, 10)
    rng = np.random.default_rng(0)
    big = [rng.standard_normal(p.shape).astype(np.float32) for p in zero]  # confident nonsense
    assert reference_loss(big, mnist.train_images, mnist.train_labels, "relu", loss) > above * expected


HEALTHY = {
    "tutorial": ("tutorial", dict(backend="numba")),  # the per-sample loop, summed squared error, 20 epochs
    "default": ("default", dict(backend="numba", train_samples=6000, test_samples=500, epochs=2)),
    **{f"{opt}-{loss}-{dtype}": ("default", dict(
        backend="numba", train_samples=2000, test_samples=500, hidden=(32,), epochs=3, optimizer=opt, loss=loss,
        dtype=dtype, lr={"sgd": 0.1, "momentum": 0.05, "adam": 3e-3}[opt]))
       for opt in ("sgd", "momentum", "adam") for loss in ("cross-entropy", "mse") for dtype in ("float32", "float64")},
    # the write-ups' presets at small sizes: per-sample softmax-mse, Keras's Adam with a validation split, and
    # gradient descent on the whole training set at lr 1, one step an epoch
    "deep-sgd": ("deep-sgd", dict(backend="numba", train_samples=2000, test_samples=500, epochs=2)),
    "keras-mlp": ("keras-mlp", dict(backend="numba", train_samples=3000, test_samples=500, epochs=2)),
    "full-batch": ("full-batch", dict(backend="numba", train_samples=2000, test_samples=500)),
    "loop-cross-entropy-float32": ("default", dict(backend="numba", path="loop", loss="cross-entropy",
                                                   dtype="float32", train_samples=2000, test_samples=500,
                                                   hidden=(32,), epochs=2)),
}


@pytest.mark.parametrize("name", HEALTHY)
def test_sound_runs_stay_far_inside_the_limit(name, mnist, monkeypatch):
    preset, options = HEALTHY[name]
    seen: list[tuple[float, float]] = []
    original = divergence.reason

    def spy(mean_loss: float, reference: float):
        seen.append((mean_loss, reference))
        return original(mean_loss, reference)

    monkeypatch.setattr(divergence, "reason", spy)
    result = fit(resolve(preset, **options), mnist)  # raises TrainingDiverged if the rule fired
    assert len(seen) == len(result.history) == result.config.epochs
    worst = max(mean / reference for mean, reference in seen)
    assert worst < LIMIT / 20, f"{name}: an epoch reached {worst:.2f} times the reference"


def test_a_bounded_loss_can_only_diverge_by_becoming_nan():
    from mnist_accel.losses import loss_sum

    y = np.eye(10)[[3]]
    confident_and_wrong = np.full((1, 10), -1e3)
    confident_and_wrong[0, 7] = 1e3  # softmax-mse's worst: every probability on a wrong class
    worst = float(loss_sum(confident_and_wrong, y, "softmax-mse", np))
    assert worst == pytest.approx(2 / 10) and reason(worst, trivial_loss("softmax-mse", 10)) is None
    assert reason(float("nan"), trivial_loss("softmax-mse", 10)) is not None


@pytest.mark.parametrize("pixels", ["raw", "scaled"])
def test_the_classifier_on_mnist_stays_far_inside_the_limit(pixels, mnist, monkeypatch):
    """MLPClassifier applies the same rule to its features (raw 0-255 pixels, as scikit-learn would take them)."""
    from mnist_accel import MLPClassifier

    seen: list[float] = []
    original = divergence.reason
    monkeypatch.setattr(divergence, "reason", lambda m, r: seen.append(m / r) or original(m, r))
    x = mnist.train_images[:3000].reshape(3000, -1).astype(np.float64)
    clf = MLPClassifier(max_iter=3, random_state=0, backend="numba")
    with pytest.warns(Warning):  # max_iter=3 stops before the loss settles
        clf.fit(x if pixels == "raw" else x / 255, mnist.train_labels[:3000])
    assert len(seen) == clf.n_iter_ == 3 and max(seen) < LIMIT / 20
