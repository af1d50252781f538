"""The drop-in estimators against scikit-learn's, side by side on the same data, one group per use:

- ``classifier-fit``: MLPClassifier(hidden_layer_sizes=(256,), batch_size=128, max_iter=3, random_state=0) on
  the 60,000 training images as float32;
- ``classifier-float64``: the same on float64 input (``X / 255.0``, the dtype most users pass);
- ``classifier-lbfgs``: ``solver="lbfgs", max_iter=50`` on float64 input;
- ``regressor``: MLPRegressor(hidden_layer_sizes=(256,), batch_size=128, max_iter=3) on ``make_regression``
  data of MNIST's size (60,000 x 784; the test score is R^2 on 10,000 more rows).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bench.workloads import Run, flops_per_sample
from mnist_accel.data.mnist import normalize

LIBRARIES = ["mnist_accel", "sklearn"]
FIT = dict(hidden_layer_sizes=(256,), batch_size=128, max_iter=3, random_state=0)


def _estimator(library: str, kind: str):
    if library == "sklearn":
        from sklearn import neural_network as module
    else:
        import mnist_accel as module
    return getattr(module, kind)


def _run(cls, params: dict, x, y, xt, yt) -> Run:
    holder = {}

    def step():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a few epochs always stop "before convergence"
            holder["est"] = cls(**params).fit(x, y)

    return Run(step, lambda: float(holder["est"].score(xt, yt)), "CPU")


def _images(data, n: int, dtype):
    return normalize(data.train_images[:n], dtype), normalize(data.test_images, dtype)


GROUPS = {"float32": "classifier-fit-256-b128-3-epochs", "float64": "classifier-float64-fit-256-b128-3-epochs"}


@pytest.mark.parametrize("dtype", list(GROUPS))
@pytest.mark.parametrize("library", LIBRARIES)
def test_fit(run_epoch, benchmark, mnist, samples, library, dtype):
    benchmark.group = GROUPS[dtype]
    x, xt = _images(mnist, samples, np.dtype(dtype))
    cls = _estimator(library, "MLPClassifier")
    run_epoch(lambda: _run(cls, FIT, x, mnist.train_labels[:samples], xt, mnist.test_labels), 3,
              3 * flops_per_sample((784, 256, 10)), dtype, "classifier", library, epochs=3)


@pytest.mark.benchmark(group="classifier-lbfgs-256-50-iterations")
@pytest.mark.parametrize("library", LIBRARIES)
def test_lbfgs(run_epoch, mnist, samples, library):
    x, xt = _images(mnist, samples, np.float64)
    cls = _estimator(library, "MLPClassifier")
    params = dict(hidden_layer_sizes=(256,), solver="lbfgs", max_iter=50, random_state=0)
    # each iteration evaluates the whole set's loss and gradient at least once (a forward and a backward pass)
    run_epoch(lambda: _run(cls, params, x, mnist.train_labels[:samples], xt, mnist.test_labels), 3,
              50 * flops_per_sample((784, 256, 10)), "float64", "classifier", library, epochs=50)


@pytest.mark.benchmark(group="regressor-fit-256-b128-3-epochs")
@pytest.mark.parametrize("library", LIBRARIES)
def test_regressor(run_epoch, samples, library):
    from sklearn.datasets import make_regression

    x, y = make_regression(samples + 10_000, 784, n_informative=100, noise=10.0, random_state=0)
    y = y / y.std()
    cls = _estimator(library, "MLPRegressor")
    run_epoch(lambda: _run(cls, FIT, x[:samples], y[:samples], x[samples:], y[samples:]), 3,
              3 * flops_per_sample((784, 256, 1)), "float64", "regressor", library, epochs=3)
