"""Saved models to ONNX files: the metadata of a model file (``mnist_accel.persist.save_model``: the training
command's ``--save``, ``MLPClassifier.save``) carried into the ONNX model's ``metadata_props``, and the
``.onnx`` file written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from mnist_accel.errors import DataError
from mnist_accel.onnx_export.graph import build_model
from mnist_accel.persist import atomic_write, load_model

PIXELS = "pixels / 255"  # the training command's normalisation, as its model files name it
UNKNOWN_DATASET = "unknown (the model file does not say)"


def input_doc(n_features: int, normalisation: str | None) -> str:
    if normalisation == PIXELS:
        side = int(round(n_features ** 0.5))
        picture = f"a {side}x{side} picture's pixels, row by row" if side * side == n_features else "pixels"
        return f"float32 [batch, {n_features}]: {picture}, scaled to [0, 1] (pixel / 255)"
    return f"float32 [batch, {n_features}]: the features the estimator takes (as given to predict_proba or predict)"


def metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """What the ONNX model says of its origin: the dataset, the training configuration (the training
    command's options, or the estimator's parameters), the loss, the dtype it was trained in, and the
    normalisation its input expects."""
    config = meta.get("config") or meta.get("estimator_params") or {}
    dataset = meta.get("dataset") or (config.get("dataset") if isinstance(config, dict) else None)
    out = {"dataset": dataset or UNKNOWN_DATASET, "training_config": config,
           "trained_dtype": meta.get("dtype", "unknown"), "normalisation": meta.get("normalisation", "none"),
           "mnist_accel_version_trained": meta.get("version", "unknown")}
    for key in ("loss", "class_names", "official_data", "task", "y_type", "feature_names_in"):
        if key in meta:
            out[key] = meta[key]
    return out


def from_saved(params: Sequence[np.ndarray], meta: dict[str, Any]) -> onnx.ModelProto:
    """The ONNX model of a model file's ``(params, meta)`` (as ``load_model`` returns them): the training
    command's (softmax), or an estimator's (its ``out_activation``: a regressor's predictions too)."""
    n_features = params[0].shape[0] if len(params) and params[0].ndim == 2 else 0
    regressor = meta.get("task") == "regression"
    out_activation = meta.get("out_activation", "identity" if regressor else "softmax")
    return build_model(params, meta.get("activation", "relu"), None if regressor else meta.get("classes"),
                       metadata(meta), input_doc(n_features, meta.get("normalisation")), out_activation)


def write_onnx(path: str | os.PathLike, model: onnx.ModelProto) -> None:
    """``model`` serialised to ``path``, atomically (a failure leaves no half-written file)."""
    data = model.SerializeToString()
    atomic_write(path, lambda f: f.write(data))


def save_onnx(path: str | os.PathLike, params: Sequence[np.ndarray], meta: dict[str, Any]) -> None:
    """What ``save_model(path, params, meta)`` would save, as an ONNX file instead."""
    write_onnx(path, from_saved(params, meta))


def export_file(source: str | os.PathLike, target: str | os.PathLike) -> onnx.ModelProto:
    """Convert the model file ``source`` to the ONNX file ``target``; DataError if ``source`` is not a
    model this package can export."""
    params, meta = load_model(source)
    try:
        model = from_saved(params, meta)
    except ValueError as exc:
        raise DataError(f"{Path(source)}: {exc}") from None
    write_onnx(target, model)
    return model
