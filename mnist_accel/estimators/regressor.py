"""``MLPRegressor``: scikit-learn 1.9's, accelerated, on every backend: identity outputs trained on half
the squared error (or, with ``loss='poisson'``, exp outputs on half the Poisson deviance), one output per
target column (multi-output), ``score`` as R^2."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import column_or_1d, validate_data

from mnist_accel.estimators.base import BaseMLP
from mnist_accel.estimators.files import FileMixin


class MLPRegressor(RegressorMixin, FileMixin, BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's parameters, plus ``backend``, ``dtype``, ``dropout``
    and the 'cosine' and 'step' learning rates, as ``MLPClassifier``."""

    _parameter_constraints: dict = {**BaseMLP._parameter_constraints,
                                    "loss": [StrOptions({"squared_error", "poisson"})]}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, backend="auto", dtype=None,
                 dropout=0.0):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype
        self.dropout = dropout

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _out_activation(self, Y) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _targets(self, Y):
        return np.asarray(Y, dtype=self._dtype_)

    def _validation_score(self, outputs, Y) -> float:
        if not np.isfinite(outputs).all():
            return np.nan
        return r2_score(Y, outputs)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train from scratch (or from the current weights with ``warm_start``); returns self."""
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y):
        """One epoch over (X, y) with a stochastic solver. With solver='lbfgs' it runs L-BFGS from the current
        weights, as scikit-learn 1.9's regressor does (its classifier has no partial_fit for 'lbfgs')."""
        return self._fit(X, y, incremental=True)

    def predict(self, X):
        """Predicted values: shape (n_samples,) for one target, (n_samples, n_outputs) for several."""
        out, _, _ = self._outputs(X)
        return out.ravel() if out.shape[1] == 1 else out
