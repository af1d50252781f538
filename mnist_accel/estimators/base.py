"""The shared core of ``MLPClassifier`` and ``MLPRegressor``: scikit-learn 1.9's parameters and their
constraints (plus our extras), input checks, scikit-learn's initialisation, the forward pass for
predictions, and ``_fit``, which hands the work to the stochastic epoch loop (``stochastic.py``) or to
L-BFGS (``lbfgs.py``) exactly where scikit-learn's ``BaseMultilayerPerceptron`` does.

Subclasses say how targets become the network's outputs (``_validate_input``) and how outputs become
predictions; everything else is here.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from mnist_accel import model
from mnist_accel.backends.selection import get_backend, numba_available, to_host
from mnist_accel.config import BACKENDS, DTYPES
from mnist_accel.trainers.training_set import as_features

# scikit-learn's names for the hidden activation -> ours
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "identity"}
# the output activation (``out_activation_``) -> the loss our model and trainers train it with
LOSSES = {"softmax": "cross-entropy", "logistic": "binary-cross-entropy", "identity": "squared-error",
          "exp": "poisson"}
STOCHASTIC = ("sgd", "adam")
EXTRA_SCHEDULES = ("cosine", "step")  # ours, beside scikit-learn's three


def on_device(x: Any) -> bool:
    """Whether ``x`` lives on a GPU (a CuPy array)."""
    return hasattr(x, "__cuda_array_interface__")


class BaseMLP(BaseEstimator):
    """scikit-learn's MLP parameters, validated by its own machinery (``_fit_context``), and the fit.

    Subclasses provide ``_validate_input(X, y, incremental, reset)`` -> validated host (X, Y);
    ``_out_activation(Y)`` -> ``out_activation_``; ``_targets(Y)`` -> what the trainers take;
    ``_validation_score(outputs, Y)`` -> early stopping's score.
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive", *EXTRA_SCHEDULES})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        # our extras
        "backend": [StrOptions(set(BACKENDS))],
        "dtype": [None, StrOptions(set(DTYPES))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    # --- fitting ------------------------------------------------------------------------------------------

    def _fit(self, X, y, incremental: bool = False):
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if np.any(np.array(hidden) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        first = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        before = dict(self.__dict__)
        device = on_device(X)
        X, Y = self._validate_input(to_host(X) if device else X, to_host(y) if on_device(y) else y,
                                    incremental, reset=first)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        self.n_outputs_ = Y.shape[1]
        sizes = [X.shape[1], *hidden, self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first:
            self._dtype_ = self.dtype or ("float32" if X.dtype == np.float32 else "float64")
            self._initialize(Y, sizes)
        be = self._backend(X, device)
        if self.solver == "lbfgs":
            from mnist_accel.estimators.lbfgs import fit_lbfgs

            fit_lbfgs(self, X, Y, be)
        else:
            from mnist_accel.estimators.stochastic import fit_stochastic

            try:
                fit_stochastic(self, X, Y, be, incremental)
            except FloatingPointError as exc:  # diverged before any epoch finished: leave it as it was
                if not getattr(exc, "kept", True):
                    self.__dict__.clear()
                    self.__dict__.update(before)
                raise
        if not all(np.isfinite(w).all() for w in [*self.coefs_, *self.intercepts_]):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed.")
        return self

    def _backend(self, X, device: bool):
        """CuPy inputs train on the GPU; sparse inputs on a CPU backend (``auto`` picks one)."""
        if device:
            return get_backend("cuda")
        if sp.issparse(X):
            if self.backend == "cuda":
                raise ValueError("sparse X trains on the CPU backends only: pass backend='numba' or 'numpy', "
                                 "or a dense X (X.toarray()) for backend='cuda'")
            if self.backend == "auto":
                return get_backend("numba" if numba_available() else "numpy")
        return get_backend(self.backend)

    def _initialize(self, Y, sizes: list[int]) -> None:
        """scikit-learn's first-fit state: its Glorot-uniform draw (weights and biases, layer by layer, from
        ``random_state``: the same seed gives scikit-learn's initial weights) and its attributes."""
        self.n_iter_, self.t_ = 0, 0
        self.n_layers_ = len(sizes)
        self.out_activation_ = self._out_activation(Y)
        factor = 2.0 if self.activation == "logistic" else 6.0
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(coef.astype(self._dtype_))
            self.intercepts_.append(intercept.astype(self._dtype_))
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        self._reference = None  # the divergence rule's untrained loss, measured on the first epoch's data
        for name in ("_optimizer", "loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
            self.__dict__.pop(name, None)
        if self.solver in STOCHASTIC:
            self.loss_curve_, self._no_improvement_count = [], 0
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
            else:
                self.best_loss_, self.validation_scores_, self.best_validation_score_ = np.inf, None, None

    # --- the model ----------------------------------------------------------------------------------------

    @property
    def _loss(self) -> str:
        return LOSSES[self.out_activation_]

    def _params(self) -> list[np.ndarray]:
        return [p for pair in zip(self.coefs_, self.intercepts_) for p in pair]

    def _store(self, params) -> None:
        host = [to_host(p) for p in params]
        self.coefs_, self.intercepts_ = host[0::2], host[1::2]

    def _outputs(self, X, check_input: bool = True):
        """The output layer's activations for X, the array module they are in, and whether X came from (and
        they stay on) the GPU."""
        check_is_fitted(self, "coefs_")
        device = on_device(X)
        if check_input:
            X = validate_data(self, to_host(X) if device else X, accept_sparse=["csr", "csc"], reset=False,
                              dtype=[np.float64, np.float32])
        be = get_backend("cuda") if device else get_backend("numpy")
        params = [be.xp.asarray(p) for p in self._params()]
        x = features(X, params[0].dtype, be.xp)
        return model.outputs(params, x, ACTIVATIONS[self.activation], self._loss, be.xp), be.xp, device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def features(X, dtype, xp):
    """Rows of features in ``dtype`` on ``xp``'s device; a sparse matrix stays sparse (CPU only)."""
    if sp.issparse(X):
        return X.astype(dtype)
    return as_features(xp.asarray(X), dtype, xp)
