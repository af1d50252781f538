"""The 'lbfgs' solver: SciPy's L-BFGS-B on the host over the whole training set's loss and gradient,
computed on the backend by the trainer's whole-set machinery (the GPU where the data is there).

As scikit-learn passes it: ``maxiter=max_iter``, ``maxfun=max_fun``, ``gtol=tol``; the L2 term
``alpha/2 ||W||^2 / n`` added to the loss and ``alpha W / n`` to the weights' gradients; ``n_iter_`` and
the ``ConvergenceWarning`` by scikit-learn's own rule (``_check_optimize_result``); ``loss_`` the final
value. scikit-learn averages its squared error over the outputs as well but not its gradient; the value
handed to SciPy does the same, so a multi-output regression takes scikit-learn's steps.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
from sklearn.utils.optimize import _check_optimize_result

from mnist_accel.backends.selection import Backend
from mnist_accel.config import resolve
from mnist_accel.estimators.base import ACTIVATIONS
from mnist_accel.trainers.vectorized import VectorizedTrainer

try:  # scikit-learn >= 1.6 knows which SciPy still takes iprint
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
except ImportError:  # pragma: no cover
    def _get_additional_lbfgs_options_dict(key, value):
        return {}


class Objective:
    """f(theta) and its gradient, theta the packed [W1.ravel(), ..., b1, ...] as scikit-learn packs it: the
    data loss and its gradient from the trainer's whole-set machinery (``VectorizedTrainer.loss_and_grads``:
    on numba the prepared, possibly sparse, images and fused kernels; on the GPU the device's), the L2 term
    on the host from theta itself."""

    def __init__(self, est, X, targets, be: Backend) -> None:
        self.alpha, self.n = float(est.alpha), X.shape[0]
        self.scale = est.n_outputs_ if est.out_activation_ == "identity" else 1
        self.shapes = [c.shape for c in est.coefs_] + [b.shape for b in est.intercepts_]
        layers = len(est.coefs_)
        self.n_weights = sum(int(np.prod(shape)) for shape in self.shapes[:layers])
        hidden = tuple(c.shape[1] for c in est.coefs_[:-1])  # () for no hidden layer: the vectorized path takes it
        cfg = resolve(backend=be.name, path="vectorized", epochs=1, batch_size=self.n, hidden=hidden,
                      activation=ACTIVATIONS[est.activation],
                      loss=est._loss, optimizer="sgd", bias=True, dtype=est._dtype_, schedule="constant",
                      shuffle=False, val_split=0.0)
        self.trainer = VectorizedTrainer(cfg, be, est._params(), np.random.default_rng(0), X, targets)
        self.order = [2 * i for i in range(layers)] + [2 * i + 1 for i in range(layers)]  # coefs, then intercepts

    def pack(self, coefs, intercepts) -> np.ndarray:
        return np.hstack([np.asarray(a, np.float64).ravel() for a in [*coefs, *intercepts]])

    def unpack(self, theta) -> tuple[list, list]:
        arrays, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            arrays.append(theta[start:start + size].reshape(shape))
            start += size
        half = len(arrays) // 2
        return arrays[:half], arrays[half:]

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        params, xp = self.trainer.params, self.trainer.xp
        coefs, intercepts = self.unpack(xp.asarray(theta.astype(self.trainer.dtype)))  # one copy to the device
        for i, value in zip(self.order, [*coefs, *intercepts]):
            params[i][...] = value  # in place: the trainer's kernels hold these arrays
        with np.errstate(all="ignore"):
            loss_sum, grad = self.trainer.loss_and_grads(self.order)
        weights = theta[:self.n_weights]
        value = loss_sum / self.n / self.scale + 0.5 * self.alpha * float(weights @ weights) / self.n
        grad[:self.n_weights] += self.alpha / self.n * weights
        return value, grad


def fit_lbfgs(est, X, Y, be: Backend) -> None:
    objective = Objective(est, X, est._targets(Y), be)
    iprint = 1 if est.verbose is True or est.verbose >= 1 else -1
    result = scipy.optimize.minimize(
        objective, objective.pack(est.coefs_, est.intercepts_), method="L-BFGS-B", jac=True,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol,
                 **_get_additional_lbfgs_options_dict("iprint", iprint)})
    est.n_iter_ = _check_optimize_result("lbfgs", result, est.max_iter)
    est.loss_ = float(result.fun)
    coefs, intercepts = objective.unpack(result.x)
    est.coefs_ = [c.astype(est._dtype_) for c in coefs]
    est.intercepts_ = [b.astype(est._dtype_) for b in intercepts]
