"""What the drawing pad's server computes: a saved model's answer for a picture or for 784 pixels.

A picture goes through ``mnist_accel.data.images.digit_from_bytes``, the decoding and framing ``python -m
mnist_accel.predict`` reads files with (``load_digit``), framed as the model's dataset was (a Fashion-MNIST
model's articles fill the field, digits sit in a 20x20 box): the 28x28 image the pad shows is exactly the
input ``predict`` would give the model for the same PNG. Pixels are already that input: 784 brightness
values in [0, 1], white on black, row by row. Labels and their names are predict's too: the metadata's
``classes`` and ``persist.class_names``; the framing is ``persist.framing``.

Every method is safe to call from many threads at once: the parameters are only read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnist_accel import model
from mnist_accel.cli.predict import answers, check_pictures_fit
from mnist_accel.errors import DataError
from mnist_accel.persist import class_names, framing, load_model

PIXELS = 784
UPLOAD = "the upload"  # how a picture's messages name it, before the name is taken off


class BadInput(ValueError):
    """A request's picture or pixels cannot give an answer; the message says why, in one line."""


class Predictor:
    """A loaded model: ``classes`` (its labels) and their ``names`` in output order, ``framing`` (how a
    picture becomes its input), and ``predict_image``/``predict_pixels``."""

    def __init__(self, params: Sequence[np.ndarray], meta: dict[str, Any], source: str = "") -> None:
        check_pictures_fit(params, source)
        self.params, self.meta, self.source = list(params), dict(meta), source
        self.activation = meta.get("activation", "relu")
        self.classes = meta.get("classes") or list(range(params[-1].shape[-1]))  # as predict reads them
        self.names = class_names(meta, self.classes)
        self.framing = framing(meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Predictor:
        """A model file written by ``--save`` or ``MLPClassifier.save`` (DataError if it is not one)."""
        params, meta = load_model(path)
        return cls(params, meta, str(path))

    def info(self) -> dict[str, Any]:
        """What the page shows about the model: its classes, layer sizes, activation and dataset."""
        sizes = [PIXELS] + [w.shape[1] for w, _ in model.layers(self.params)]
        dataset = self.meta.get("dataset")
        return {"classes": self.classes, "names": self.names, "layers": sizes, "activation": self.activation,
                "dataset": dataset if isinstance(dataset, str) else "mnist", "model": Path(self.source).name}

    def predict_image(self, data: bytes) -> dict[str, Any]:
        """The answer for a PNG, JPEG, BMP, GIF or WebP picture, prepared as ``predict`` prepares a file."""
        if not data:
            raise BadInput("the image is empty")
        from mnist_accel.data.images import digit_from_bytes

        try:
            image = digit_from_bytes(data, self.framing, name=UPLOAD)
        except DataError as exc:  # without the name, which means nothing to the page
            raise BadInput(str(exc).removeprefix(f"{UPLOAD}: ")) from None
        return self._answer(image)

    def predict_pixels(self, pixels: Any) -> dict[str, Any]:
        """The answer for 784 values in [0, 1] (a flat list or 28 rows of 28), used as the model's input."""
        try:
            x = np.asarray(pixels, dtype=np.float64)
        except (TypeError, ValueError):
            raise BadInput("pixels must be numbers: 784 values in [0, 1]") from None
        if x.size != PIXELS or x.shape not in ((PIXELS,), (28, 28)):
            raise BadInput(f"pixels must be 784 values in [0, 1] (or 28 rows of 28), got shape {list(x.shape)}")
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise BadInput("pixels must lie in [0, 1] (white digit on black); divide 0-255 values by 255")
        return self._answer(x.reshape(28, 28))

    def _answer(self, image: np.ndarray) -> dict[str, Any]:
        answer = answers(self.params, self.meta, image.reshape(1, PIXELS))[0]
        return {**answer, "index": self.classes.index(answer["label"]), "image": np.round(image, 4).tolist()}
