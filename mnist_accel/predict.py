"""``python -m mnist_accel.predict --model model.npz IMAGE...``: the predicted digit of each picture.

Images are converted the way MNIST was made (see ``mnist_accel.images``) and scaled to [0, 1], the
input the training command's models expect. Exit codes as for training: 2 bad input, 1 runtime failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from . import model
from .cli import Parser, entry
from .errors import ConfigError, DataError
from .persist import load_model

PROG = "mnist_accel.predict"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Predict the digit in each image with a saved mnist-accel model.")
    p.add_argument("--model", required=True, metavar="PATH", help="a model written by --save or MLPClassifier.save")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def predict_images(params: list[np.ndarray], meta: dict, paths: Sequence[str]) -> list[dict]:
    from .images import load_digit

    if params[0].shape[0] != 784:
        raise DataError(f"the model takes {params[0].shape[0]} inputs, not 784 pixels: "
                        "it was not trained on 28x28 images")
    classes = meta.get("classes") or list(range(params[-1].shape[-1]))
    x = np.stack([load_digit(p).reshape(784) for p in paths]).astype(params[0].dtype)
    proba = model.probabilities(params, x, meta.get("activation", "relu"), np, len(classes))
    results = []
    for path, row in zip(paths, proba):
        best = int(row.argmax())
        results.append({"file": str(path), "label": classes[best], "probability": float(row[best]),
                        "probabilities": {str(c): float(q) for c, q in zip(classes, row)}})
    return results


def _run(args: argparse.Namespace) -> int:
    for path in [args.model, *args.images]:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such file")
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ConfigError("reading images needs Pillow: pip install 'mnist-accel[images]'") from None
    params, meta = load_model(args.model)
    try:
        results = predict_images(params, meta, args.images)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['file']}: {r['label']} (probability {r['probability']:.3f})")
    return 0


main = entry(PROG, build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
