"""The ``time-to-98`` group on the CPU: whole trainings from scratch, each row timed by its training seconds.

A row trains its recipe once per seed and records the means and the per-seed lists in ``extra_info``:
``test_accuracy`` (after the run), ``seconds`` (training only: the sum of the epoch seconds, without loading
the data, compiling kernels or scoring the test set), ``seeds``, and ``seconds_to_98`` (training seconds until
the first epoch whose test accuracy reached 98%, meaned over the seeds) when every seed reached it. The
benchmark fixture runs the row once (``pedantic``, one round); its own timer includes the untimed parts,
so the report reads ``extra_info["seconds"]``.

Rows: the ``speedrun``, ``default`` and ``keras-mlp`` presets through ``fit`` on the numba backend; PyTorch
running the speedrun's own recipe (``bench.workloads.torch_speedrun``); scikit-learn's MLPClassifier.
``--quick`` trains one seed for one epoch on a few images: a smoke test, not a measurement.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from bench.machine import versions
from mnist_accel.config import resolve
from mnist_accel.data.mnist import MnistData, normalize

GROUP = "time-to-98"
TARGET = 0.98
SEEDS = (0, 1, 2)
QUICK_TRAIN, QUICK_TEST = 1024, 1000
# scikit-learn's MLPClassifier: Adam at its default rate, the speedrun's width, batch 128, this many epochs
# (partial_fit, one epoch a call, so each epoch's test accuracy is scored outside the timer).
SKLEARN = dict(hidden_layer_sizes=(256,), batch_size=128, learning_rate_init=1e-3)
SKLEARN_EPOCHS = 10

# One seed's outcome: (test accuracy, training seconds, training seconds to 98% or None)
Outcome = tuple[float, float, float | None]


def _to_target(history: list[tuple[float, float]]) -> float | None:
    """Training seconds until the first epoch whose test accuracy reached the target; (seconds, accuracy) an epoch."""
    elapsed = 0.0
    for seconds, accuracy in history:
        elapsed += seconds
        if accuracy >= TARGET:
            return elapsed
    return None


def _record(benchmark, name: str, library: str, seeds: tuple[int, ...], run: Callable[[int], Outcome],
            **extra) -> dict:
    outcomes: list[Outcome] = []
    benchmark.pedantic(lambda: outcomes.extend(run(s) for s in seeds), rounds=1, iterations=1)
    accuracies, seconds, to_98 = (list(x) for x in zip(*outcomes))
    info = benchmark.extra_info
    info.update(backend=name, library=library, seeds=list(seeds), test_accuracy=float(np.mean(accuracies)),
                seconds=float(np.mean(seconds)), test_accuracy_per_seed=accuracies, seconds_per_seed=seconds,
                seconds_to_98_per_seed=to_98, device="CPU", versions=versions(), **extra)
    if all(t is not None for t in to_98):
        info["seconds_to_98"] = float(np.mean(to_98))
    return info


@pytest.fixture
def quick(request) -> bool:
    return request.config.getoption("--quick")


def _seeds(quick: bool) -> tuple[int, ...]:
    return SEEDS[:1] if quick else SEEDS


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("preset", ["speedrun", "default", "keras-mlp"])
def test_preset(benchmark, mnist, quick, preset):
    from mnist_accel.training.fit import fit

    shrink = dict(train_samples=QUICK_TRAIN, test_samples=QUICK_TEST, epochs=1) if quick else {}

    def run(seed: int) -> Outcome:
        result = fit(resolve(preset, seed=seed, backend="numba", **shrink), mnist)
        history = [(r["seconds"], r["test_accuracy"]) for r in result.history]
        return result.test_accuracy, result.train_seconds, _to_target(history)

    cfg = resolve(preset, **shrink)
    n = cfg.train_samples or len(mnist.train_images)
    info = _record(benchmark, preset, "mnist_accel", _seeds(quick), run, epochs=cfg.epochs, dtype=cfg.dtype,
                   samples=round(n * (1 - cfg.val_split)))
    assert quick or info["test_accuracy"] > 0.9


@pytest.mark.benchmark(group=GROUP)
def test_torch_speedrun(benchmark, mnist, quick):
    pytest.importorskip("torch")
    from bench.workloads import torch_speedrun

    n, epochs = (QUICK_TRAIN, 1) if quick else (None, None)

    def run(seed: int) -> Outcome:
        accuracy, seconds = torch_speedrun(mnist, seed, n, epochs)
        return accuracy, seconds, seconds if accuracy >= TARGET else None  # scored only at the recipe's end

    cfg = resolve("speedrun")
    info = _record(benchmark, "torch-speedrun", "torch", _seeds(quick), run, epochs=epochs or cfg.epochs,
                   dtype=cfg.dtype, samples=n or len(mnist.train_images))
    assert quick or info["test_accuracy"] > 0.9


def _sklearn(data: MnistData, seed: int, n: int, epochs: int) -> Outcome:
    from sklearn.neural_network import MLPClassifier

    x, labels = normalize(data.train_images[:n], np.float32), data.train_labels[:n]
    xt = normalize(data.test_images, np.float32)
    clf = MLPClassifier(random_state=seed, **SKLEARN)
    history = []
    for _ in range(epochs):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch a call always stops "before convergence"
            clf.partial_fit(x, labels, classes=np.arange(10))
        seconds = time.perf_counter() - start
        history.append((seconds, float(clf.score(xt, data.test_labels))))
    return history[-1][1], sum(s for s, _ in history), _to_target(history)


@pytest.mark.benchmark(group=GROUP)
def test_sklearn(benchmark, mnist, quick):
    pytest.importorskip("sklearn")
    n, epochs = (QUICK_TRAIN, 1) if quick else (len(mnist.train_images), SKLEARN_EPOCHS)
    info = _record(benchmark, "sklearn", "sklearn", _seeds(quick), lambda s: _sklearn(mnist, s, n, epochs),
                   epochs=epochs, dtype="float32", samples=n)
    assert quick or info["test_accuracy"] > 0.9
