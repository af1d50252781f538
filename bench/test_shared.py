"""Fast where users run it, not only alone: the ``shared`` group, side by side in one run.

- ``grid-*``: ``GridSearchCV(MLPClassifier(hidden_layer_sizes=(256,), batch_size=128, max_iter=2),
  {"learning_rate_init": [1e-3, 3e-3]}, cv=2)`` on 30,000 images with ``n_jobs`` 1 and 2, ours and
  scikit-learn's (seconds a search, its loky workers started by a first, untimed search).
- ``default-*`` and ``torch-*``: the default training command (and PyTorch on its model) alone, and two
  started at once (seconds an epoch, the mean over both processes).
- ``busy-*``: the default command beside one CPU-bound process, with its default threads and with
  ``--threads`` 1 and 2.

The commands run as a user runs them, from the checkout in new processes; their rows carry the epoch
seconds the commands report (``extra_info["seconds"]``), which ``bench.report`` reads in place of the
timer's, since the timer also counts start-up, data loading and compilation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from bench.workloads import flops_per_sample
from mnist_accel.data.mnist import normalize

GROUP = "shared"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (784, 512, 10)


def _sizes(samples: int) -> list[str]:
    return [] if samples >= 60000 else ["--train-samples", str(samples), "--test-samples", "1000"]


def _ours(out: Path, samples: int, *extra: str) -> tuple[list[str], Path]:
    return [sys.executable, "-m", "mnist_accel.train", "--quiet", "--metrics-json", str(out), *_sizes(samples),
            *extra], out


def _torch(out: Path, samples: int) -> tuple[list[str], Path]:
    return [sys.executable, "-m", "bench.torch_epochs", "--samples", str(samples)], out


def _run_together(commands: list[tuple[list[str], Path]], beside_busy: bool = False) -> tuple[float, float]:
    """Start every command at once (beside a CPU-bound process if asked); the mean epoch seconds over all
    of them, and their mean test accuracy."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if beside_busy else None
    try:
        procs = [(subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out)
                 for argv, out in commands]
        results = []
        for proc, out in procs:
            stdout, stderr = proc.communicate(timeout=900)
            assert proc.returncode == 0, stderr
            results.append(json.loads(out.read_text() if out.exists() else stdout.strip().splitlines()[-1]))
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    seconds = [np.mean([e["seconds"] for e in r["epochs"]]) for r in results]
    return float(np.mean(seconds)), float(np.mean([r["test_accuracy"] for r in results]))


def _record(benchmark, row: str, samples: int, seconds: float, accuracy: float, **extra) -> None:
    benchmark.extra_info.update(backend=row, seconds=seconds, samples=samples, epochs=1, dtype="float32",
                                path="vectorized", device="CPU", test_accuracy=accuracy,
                                flops_per_epoch=flops_per_sample(DEFAULT_SIZES) * samples, **extra)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("peer", ["default", "torch"])
@pytest.mark.parametrize("together", [1, 2])
def test_two_at_once(benchmark, tmp_path, samples, peer, together):
    if peer == "torch":
        pytest.importorskip("torch")
    make = _ours if peer == "default" else _torch
    commands = [make(tmp_path / f"{peer}-{i}.json", samples) for i in range(together)]
    seconds, accuracy = benchmark.pedantic(lambda: _run_together(commands), rounds=1, iterations=1)
    _record(benchmark, f"{peer}-{'alone' if together == 1 else 'two-at-once'}", samples, seconds, accuracy)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("threads", ["default", "1", "2"])
def test_beside_a_busy_process(benchmark, tmp_path, samples, threads):
    extra = [] if threads == "default" else ["--threads", threads]
    command = _ours(tmp_path / "busy.json", samples, *extra)
    seconds, accuracy = benchmark.pedantic(lambda: _run_together([command], beside_busy=True), rounds=1,
                                           iterations=1)
    _record(benchmark, f"busy-{'default' if threads == 'default' else 'threads-' + threads}", samples, seconds,
            accuracy)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("library", ["mnist_accel", "sklearn"])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search(benchmark, mnist, samples, library, n_jobs):
    """As scikit-learn users parallelise: each of the search's fits in a loky worker of its own."""
    from sklearn.model_selection import GridSearchCV

    if library == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from mnist_accel import MLPClassifier
    n = min(samples, 30000)
    x, y = normalize(mnist.train_images[:n], np.float32), mnist.train_labels[:n]
    holder = {}

    def search():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter=2 always stops "before convergence"
            holder["grid"] = GridSearchCV(MLPClassifier(hidden_layer_sizes=(256,), batch_size=128, max_iter=2,
                                                        random_state=0),
                                          {"learning_rate_init": [1e-3, 3e-3]}, cv=2, n_jobs=n_jobs).fit(x, y)

    search()  # starts the workers and compiles or loads the kernels in them: a user's later searches skip it
    benchmark.pedantic(search, rounds=3, iterations=1)
    grid = holder["grid"]
    accuracy = float(grid.score(normalize(mnist.test_images, np.float32), mnist.test_labels))
    # Sample passes: two folds of half the data for each of two settings, then the refit on all of it, 2 epochs each.
    benchmark.extra_info.update(backend=f"grid-{library}-{n_jobs}job{'s' if n_jobs > 1 else ''}", samples=n,
                                epochs=6, dtype="float32", path="classifier", device="CPU", test_accuracy=accuracy,
                                flops_per_epoch=flops_per_sample((784, 256, 10)) * n * 6)
    assert accuracy > 0.5
