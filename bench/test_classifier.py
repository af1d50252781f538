"""The drop-in estimator against scikit-learn's: the same MLPClassifier(hidden_layer_sizes=(256,),
batch_size=128, max_iter=3, random_state=0) fit on the 60,000 training images (float32)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bench.workloads import Run, flops_per_sample
from mnist_accel.data.mnist import normalize

GROUP = "classifier-fit-256-b128-3-epochs"


def _run(cls, data, n):
    x = normalize(data.train_images[:n], np.float32)
    xt = normalize(data.test_images, np.float32)
    holder = {}

    def step():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter=3 always stops "before convergence"
            holder["clf"] = cls(hidden_layer_sizes=(256,), batch_size=128, max_iter=3, random_state=0).fit(
                x, data.train_labels[:n])

    return Run(step, lambda: float(holder["clf"].score(xt, data.test_labels)), "CPU")


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("library", ["mnist_accel", "sklearn"])
def test_fit(run_epoch, mnist, samples, library):
    if library == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from mnist_accel import MLPClassifier
    run_epoch(lambda: _run(MLPClassifier, mnist, samples), 3, 3 * flops_per_sample((784, 256, 10)), "float32",
              "classifier", library, epochs=3)
