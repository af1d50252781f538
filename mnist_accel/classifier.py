"""``MLPClassifier``: a drop-in, accelerated replacement for scikit-learn's, on every backend.

It takes scikit-learn's constructor parameters where they make sense, plus ``backend``, ``dtype`` and
``dropout``, and trains with the vectorized trainer. Differences, all documented in the README:
``solver='sgd'`` uses heavy-ball momentum (no Nesterov), ``learning_rate`` takes 'constant', 'cosine' or
'step', and two classes get a two-unit softmax (the probabilities are the same kind).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from mnist_accel import model
from mnist_accel.backends.selection import get_backend, to_host
from mnist_accel.config import resolve
from mnist_accel.persist import load_model, save_model
from mnist_accel.trainers.vectorized import VectorizedTrainer, as_features
from mnist_accel.training import divergence
from mnist_accel.training.epochs import Diverged, run_epochs
from mnist_accel.version import __version__

_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "identity"}


def _on_device(x: Any) -> bool:
    return hasattr(x, "__cuda_array_interface__")


class MLPClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, backend="auto", dtype=None, dropout=0.0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.dtype = dtype
        self.dropout = dropout

    # --- configuration -------------------------------------------------------------------------------

    def _config(self, n_samples: int, epochs: int, early_stopping: bool):
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r} is not one of {', '.join(_ACTIVATIONS)}")
        if self.solver not in ("adam", "sgd"):
            raise ValueError(f"solver={self.solver!r} is not supported; use 'adam' or 'sgd'")
        if self.learning_rate not in ("constant", "cosine", "step"):
            raise ValueError(f"learning_rate={self.learning_rate!r} is not supported; "
                             "use 'constant', 'cosine' or 'step'")
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, numbers.Integral) else tuple(hidden)
        batch = min(200, n_samples) if self.batch_size == "auto" else int(self.batch_size)
        if batch < 1:
            raise ValueError(f"batch_size must be 'auto' or at least 1, got {self.batch_size!r}")
        if self.alpha < 0 or self.max_iter < 1 or not 0 < self.validation_fraction < 1:
            raise ValueError("alpha must be >= 0, max_iter >= 1 and validation_fraction in (0, 1)")
        optimizer = "adam" if self.solver == "adam" else ("momentum" if self.momentum > 0 else "sgd")
        return resolve(backend=self.backend if self.backend != "auto" else None, path="vectorized",
                       epochs=epochs, batch_size=min(batch, n_samples), lr=self.learning_rate_init,
                       hidden=hidden, activation=_ACTIVATIONS[self.activation], loss="cross-entropy",
                       optimizer=optimizer, dropout=self.dropout, bias=True, init="xavier", seed=self._seed(),
                       dtype=self._dtype_, weight_decay=self.alpha / batch,  # sklearn: alpha/2 ||W||^2 per batch
                       schedule=self.learning_rate, momentum=self.momentum, beta1=self.beta_1, beta2=self.beta_2,
                       eps=self.epsilon, val_split=self.validation_fraction if early_stopping else 0.0,
                       shuffle=bool(self.shuffle))

    def _seed(self) -> int:
        rs = self.random_state
        if rs is None:
            return int(np.random.randint(2 ** 31))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2 ** 31))
        return int(rs)

    # --- fitting ---------------------------------------------------------------------------------------

    def _validate(self, X, y, reset: bool):
        device = _on_device(X)
        X_host = to_host(X) if device else X
        y_host = to_host(y) if _on_device(y) else y
        X_host, y_host = validate_data(self, X_host, y_host, reset=reset, dtype=[np.float64, np.float32])
        y_host = column_or_1d(y_host, warn=True)
        check_classification_targets(y_host)
        return X_host, y_host, device

    def _fit(self, X, y, epochs: int, incremental: bool, classes=None):
        first = not (incremental or self.warm_start) or not hasattr(self, "coefs_")
        X, y, device = self._validate(X, y, reset=first)
        if first:
            self.classes_ = np.unique(y if classes is None else np.asarray(classes))
            self._dtype_ = self.dtype or ("float32" if X.dtype == np.float32 else "float64")
        if not np.isin(y, self.classes_).all():
            raise ValueError(f"y holds labels not in classes_ {self.classes_.tolist()}")
        labels = np.searchsorted(self.classes_, y).astype(np.int32)
        early = self.early_stopping and not incremental
        cfg = self._config(len(X), epochs, early)
        be = get_backend("cuda") if device else get_backend(self.backend)  # X is on the host by now
        rng = np.random.default_rng(cfg.seed)
        sizes = [X.shape[1], *cfg.hidden, max(len(self.classes_), 2)]
        params = model.init_params(rng, sizes, cfg.init, True, np.dtype(cfg.dtype)) if first else self._params()
        # fit's rule (mnist_accel.training.divergence), from the untrained weights: measured once, so that a stream of
        # partial_fit calls does not pay a forward pass each
        if first or getattr(self, "_reference", None) is None:
            self._reference = divergence.reference_loss(params, X, labels, cfg.activation, cfg.loss)
        reference = self._reference
        trainer = VectorizedTrainer(cfg, be, params, rng, X, labels)
        if not first and getattr(self, "_state", None) is not None and len(self._state[0]) == len(trainer.state[0]):
            for slots, saved in zip(trainer.state, self._state):  # in place: a fused GPU step holds these arrays
                for slot, value in zip(slots, saved):
                    slot[...] = be.xp.asarray(value)
            trainer.step = self._t
        trainer.progress = bool(self.verbose)
        if first:
            self.loss_curve_, self.n_iter_, self.best_loss_, self._no_improve = [], 0, np.inf, 0
            self.validation_scores_, self.best_validation_score_ = ([], -np.inf) if early else (None, None)
        best, stopped, sound = None, False, None
        try:
            for trained in run_epochs(trainer, epochs, reference):
                loss = trained.loss
                self.loss_curve_.append(loss)
                self.n_iter_ += 1
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
                if early:
                    x_val, y_val = trainer.val
                    _, correct = model.evaluate(trainer.params, x_val, y_val, cfg.activation, cfg.loss, be.xp)
                    score = int(to_host(correct)) / x_val.shape[0]
                    self.validation_scores_.append(score)
                    improved = score > self.best_validation_score_ + self.tol
                    if score > self.best_validation_score_:
                        self.best_validation_score_, best = score, [p.copy() for p in trainer.params]
                else:
                    best_loss = np.inf if self.best_loss_ is None else self.best_loss_  # None after early stopping
                    improved = loss < best_loss - self.tol
                    self.best_loss_ = min(best_loss, loss)
                self._no_improve = 0 if improved else self._no_improve + 1
                sound = ([p.copy() for p in trainer.params], [[s.copy() for s in slots] for slots in trainer.state],
                         trainer.step)
                if not incremental and self._no_improve > self.n_iter_no_change:
                    stopped = True
                    break
        except Diverged as exc:  # keep the last sound iteration's model (the best one under early stopping)
            if sound is not None:
                self._store(best if best is not None else sound[0], sound[1], sound[2])
            kept = f"the model kept is from iteration {self.n_iter_}" if sound is not None else \
                "no iteration of this call finished before it, so the estimator is left as it was"
            raise FloatingPointError(f"training diverged at iteration {self.n_iter_ + 1} ({exc.why}); {kept}; "
                                     f"try a smaller learning_rate_init than {self.learning_rate_init:g}") from None
        if not (incremental or stopped):
            warnings.warn(f"stopped at max_iter={self.max_iter} before the loss settled (tol={self.tol})",
                          ConvergenceWarning, stacklevel=3)
        if early:
            self.best_loss_ = None
        self._store(best if best is not None else trainer.params, trainer.state, trainer.step)
        return self

    def _store(self, params, state, step: int) -> None:
        host = [to_host(p) for p in params]
        self.coefs_, self.intercepts_ = host[0::2], host[1::2]
        self._state = [[to_host(s) for s in slots] for slots in state]
        self._t = step

    def _params(self) -> list[np.ndarray]:
        return [p for pair in zip(self.coefs_, self.intercepts_) for p in pair]

    def fit(self, X, y):
        """Train from scratch (or from the current weights with ``warm_start``); returns self."""
        return self._fit(X, y, int(self.max_iter), incremental=False)

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y); the first call needs ``classes`` (every label that will ever appear)."""
        if not hasattr(self, "coefs_") and classes is None:
            raise ValueError("the first call to partial_fit needs classes=[every label]")
        return self._fit(X, y, 1, incremental=True, classes=classes)

    # --- prediction ------------------------------------------------------------------------------------

    def _scores(self, X):
        check_is_fitted(self, "coefs_")
        device = _on_device(X)
        X = validate_data(self, to_host(X) if device else X, reset=False, dtype=[np.float64, np.float32])
        be = get_backend("cuda") if device else get_backend("numpy")
        params = [be.xp.asarray(p) for p in self._params()]
        x = as_features(be.xp.asarray(X), params[0].dtype, be.xp)
        return model.probabilities(params, x, _ACTIVATIONS[self.activation], be.xp, len(self.classes_)), device, be

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        proba, device, be = self._scores(X)
        return proba if device else to_host(proba)

    def predict_log_proba(self, X):
        proba, device, be = self._scores(X)
        log_proba = be.xp.log(proba)
        return log_proba if device else to_host(log_proba)

    def predict(self, X):
        proba, device, be = self._scores(X)
        index = proba.argmax(axis=1)
        return be.xp.asarray(self.classes_)[index] if device else self.classes_[to_host(index)]

    # --- files -----------------------------------------------------------------------------------------

    def save(self, path) -> None:
        """Weights plus JSON metadata in one .npz (no pickle), written atomically."""
        check_is_fitted(self, "coefs_")
        classes = self.classes_.tolist()
        save_model(path, self._params(), {
            "activation": _ACTIVATIONS[self.activation], "dtype": str(self.coefs_[0].dtype),
            "classes": classes, "n_features_in": int(self.n_features_in_), "normalisation": "none",
            "estimator_params": {k: v for k, v in self.get_params().items()
                                 if isinstance(v, (int, float, str, bool, type(None), tuple, list))},
            "version": __version__})

    @classmethod
    def load(cls, path, backend: str = "auto") -> MLPClassifier:
        """A fitted classifier from a file written by ``save`` or by ``mnist_accel.train --save``."""
        from mnist_accel.errors import DataError

        params, meta = load_model(path)
        activation = {v: k for k, v in _ACTIVATIONS.items()}.get(meta.get("activation"))
        if activation is None or len(params) % 2 or "classes" not in meta:
            raise DataError(f"{path}: model metadata lacks a known activation, classes, or biases")
        for w, b in zip(params[0::2], params[1::2]):
            if w.ndim != 2 or b.shape != (w.shape[1],):
                raise DataError(f"{path}: weight {w.shape} and bias {b.shape} do not fit together")
        for a, b in zip(params[0:-2:2], params[2::2]):
            if a.shape[1] != b.shape[0]:
                raise DataError(f"{path}: layer shapes {a.shape} and {b.shape} do not chain")
        kept = meta.get("estimator_params", {})
        clf = cls(**{k: v for k, v in kept.items() if k in cls().get_params()})
        clf.set_params(activation=activation, backend=backend)
        clf.coefs_, clf.intercepts_ = params[0::2], params[1::2]
        clf.classes_ = np.asarray(meta["classes"])
        if params[-1].shape[0] < len(clf.classes_):
            raise DataError(f"{path}: {params[-1].shape[0]} outputs for {len(clf.classes_)} classes")
        clf.n_features_in_ = params[0].shape[0]
        clf.normalisation_ = meta.get("normalisation", "none")
        clf._dtype_ = str(params[0].dtype)
        clf._state, clf._t = None, 0
        clf.loss_curve_, clf.n_iter_, clf.best_loss_, clf._no_improve = [], 0, np.inf, 0
        clf.validation_scores_ = clf.best_validation_score_ = None
        return clf
