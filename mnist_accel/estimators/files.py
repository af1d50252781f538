"""``save`` and ``load`` for both estimators: the weights and JSON metadata in one .npz (no pickle; the
format of ``mnist_accel.persist``, which ``mnist_accel.train --save`` also writes), keeping what a fitted
estimator knows: its parameters, classes, output activation and training history (``loss_curve_``,
``n_iter_``, ``t_``, ``loss_``, ``best_loss_``, ``validation_scores_``, ``best_validation_score_``).
The optimizer's moments are not kept: a loaded model's ``partial_fit`` starts a fresh optimizer."""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.validation import check_is_fitted

from mnist_accel.errors import DataError
from mnist_accel.estimators.base import ACTIVATIONS
from mnist_accel.persist import load_model, save_model
from mnist_accel.version import __version__

HISTORY = ("loss_curve_", "n_iter_", "t_", "loss_", "best_loss_", "validation_scores_", "best_validation_score_")
_PLAIN = (int, float, str, bool, type(None), tuple, list)


def _plain(value):
    """A JSON-able copy: NumPy scalars and arrays become Python numbers and lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class FileMixin:
    def save(self, path) -> None:
        """Weights plus JSON metadata in one .npz (no pickle), written atomically."""
        check_is_fitted(self, "coefs_")
        meta = {"activation": ACTIVATIONS[self.activation], "dtype": str(self.coefs_[0].dtype),
                "n_features_in": int(self.n_features_in_), "normalisation": getattr(self, "normalisation_", "none"),
                "task": "classification" if is_classifier(self) else "regression",
                "out_activation": self.out_activation_, "n_outputs": int(self.n_outputs_),
                "estimator_params": {k: _plain(v) for k, v in self.get_params().items() if isinstance(v, _PLAIN)},
                "history": {k: _plain(getattr(self, k)) for k in HISTORY if hasattr(self, k)},
                "version": __version__}
        if is_classifier(self):
            meta["classes"] = _plain(self.classes_)
            meta["y_type"] = self._label_binarizer.y_type_
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in"] = _plain(self.feature_names_in_)
        save_model(path, self._params(), meta)

    @classmethod
    def load(cls, path, backend: str = "auto"):
        """A fitted estimator from a file written by ``save`` (or, for ``MLPClassifier``, by
        ``mnist_accel.train --save``: softmax outputs, inputs pixels scaled to [0, 1])."""
        params, meta = load_model(path)
        classifier = is_classifier(cls())
        task = meta.get("task", "classification")
        if task != ("classification" if classifier else "regression"):
            other = "MLPClassifier" if task == "classification" else "MLPRegressor"
            raise DataError(f"{path}: a {task} model; load it with {other}.load")
        activation = {v: k for k, v in ACTIVATIONS.items()}.get(meta.get("activation"))
        if activation is None or len(params) % 2 or (classifier and "classes" not in meta):
            raise DataError(f"{path}: model metadata lacks a known activation, classes, or biases")
        _check_shapes(path, params)
        kept = meta.get("estimator_params", {})
        est = cls(**{k: v for k, v in kept.items() if k in cls().get_params()})
        est.set_params(activation=activation, backend=backend)
        est.coefs_, est.intercepts_ = params[0::2], params[1::2]
        est.n_features_in_, est.n_layers_ = params[0].shape[0], len(params) // 2 + 1
        est.n_outputs_ = params[-1].shape[0]
        est.out_activation_ = meta.get("out_activation", "softmax" if classifier else "identity")
        if classifier:
            _classes(est, path, meta)
        if "feature_names_in" in meta:
            est.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        est.normalisation_ = meta.get("normalisation", "none")
        est._dtype_ = str(params[0].dtype)
        est._reference = None
        est.n_iter_, est.t_ = 0, 0
        for name, value in meta.get("history", {}).items():
            setattr(est, name, value)
        if est.solver != "lbfgs":
            est.__dict__.setdefault("loss_curve_", [])
            est.__dict__.setdefault("best_loss_", None if est.early_stopping else np.inf)
            est.__dict__.setdefault("validation_scores_", None)
            est.__dict__.setdefault("best_validation_score_", None)
            est._no_improvement_count = 0
        return est


def _classes(est, path, meta) -> None:
    est.classes_ = np.asarray(meta["classes"])
    binarizer = LabelBinarizer()
    if meta.get("y_type") == "multilabel-indicator":
        binarizer.fit(np.eye(len(est.classes_), dtype=int))
    else:
        binarizer.fit(est.classes_)
    est._label_binarizer = binarizer
    n_out, n_classes = est.n_outputs_, len(est.classes_)
    expected = 1 if est.out_activation_ == "logistic" and n_classes <= 2 else n_classes
    if n_out < expected:
        raise DataError(f"{path}: {n_out} outputs for {n_classes} classes")


def _check_shapes(path, params) -> None:
    for w, b in zip(params[0::2], params[1::2]):
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise DataError(f"{path}: weight {w.shape} and bias {b.shape} do not fit together")
    for a, b in zip(params[0:-2:2], params[2::2]):
        if a.shape[1] != b.shape[0]:
            raise DataError(f"{path}: layer shapes {a.shape} and {b.shape} do not chain")
