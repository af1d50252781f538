"""``MLPClassifier``: scikit-learn 1.9's, accelerated, on every backend.

Targets go through scikit-learn's ``LabelBinarizer`` as in scikit-learn: several classes train a softmax
over one output each, two classes one logistic output, and a 2-D indicator ``y`` (multilabel) one
logistic output per label; ``predict`` thresholds logistic outputs at 0.5. CuPy inputs train and
predict on the GPU and get CuPy results. Differences and extras: docs/sklearn.md.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from mnist_accel.estimators.base import STOCHASTIC, BaseMLP
from mnist_accel.estimators.files import FileMixin


def _stochastic(est) -> bool:
    if est.solver not in STOCHASTIC:
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. {est.solver} is not "
                             "stochastic.")
    return True


class MLPClassifier(ClassifierMixin, FileMixin, BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's parameters, plus ``backend`` ('auto', 'numpy',
    'numba', 'cuda'), ``dtype`` (None: float32 for float32 input, else float64) and ``dropout``; and
    ``learning_rate`` 'cosine' or 'step' beside scikit-learn's three."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, backend="auto", dtype=None, dropout=0.0):
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

    # --- targets ------------------------------------------------------------------------------------------

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def _out_activation(self, Y) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _targets(self, Y):
        """What the trainer takes: class indices for a softmax, else the 0/1 columns."""
        return Y.argmax(axis=1).astype(np.int32) if self.out_activation_ == "softmax" else Y.astype(self._dtype_)

    def _validation_score(self, outputs, Y) -> float:
        if not np.isfinite(outputs).all():
            return np.nan
        return accuracy_score(self._label_binarizer.inverse_transform(Y), self._decode(outputs))

    def _decode(self, outputs):
        """Labels from output activations, as scikit-learn's ``LabelBinarizer.inverse_transform`` (a softmax by
        its largest output: also a file's two-unit softmax from before logistic outputs)."""
        if self.out_activation_ == "softmax":
            return self.classes_[outputs.argmax(axis=1)]
        return self._label_binarizer.inverse_transform(outputs.ravel() if self.n_outputs_ == 1 else outputs)

    # --- fitting ------------------------------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train from scratch (or from the current weights with ``warm_start``); returns self."""
        return self._fit(X, y, incremental=False)

    @available_if(_stochastic)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y); the first call needs ``classes`` (every label that will ever appear)."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
        return self._fit(X, y, incremental=True)

    # --- prediction ---------------------------------------------------------------------------------------

    def predict(self, X):
        """Class labels (an indicator matrix for multilabel)."""
        out, xp, device = self._outputs(X)
        if not device:
            return self._decode(out)
        if self.out_activation_ == "softmax":
            return xp.asarray(self.classes_)[out.argmax(axis=1)]
        hits = out > 0.5
        if self.n_outputs_ > 1:
            return hits.astype(int)
        return xp.asarray(self.classes_)[hits.ravel().astype(int)]

    def predict_proba(self, X):
        """Probabilities, columns in the order of ``classes_`` (per label for multilabel)."""
        out, xp, _ = self._outputs(X)
        return _two_columns(out, xp) if self.n_outputs_ == 1 else out

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        out, xp, _ = self._outputs(X)
        return xp.log(_two_columns(out, xp) if self.n_outputs_ == 1 else out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _two_columns(out, xp):
    """A binary classifier's one logistic output as scikit-learn's two columns, [1 - p, p]."""
    proba = xp.empty((out.shape[0], 2), dtype=out.dtype)
    proba[:, 1] = out[:, 0]
    proba[:, 0] = 1 - out[:, 0]
    return proba
