"""``python -m mnist_accel.predict --model model.npz IMAGE...``: the predicted digit of each picture.

Images are converted the way MNIST was made (see ``mnist_accel.images``) and scaled to [0, 1], the
input the training command's models expect. Every image that can be read gets its answer; each one that
cannot (missing, not an image, damaged, too large, blank) gets one line on stderr, and an ``error`` field
instead of a label under ``--json``. Exit codes as for training: 2 bad arguments (or no model file), 1 a
runtime failure, including any image that could not be read.
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
    """One record per path, in order: its prediction, or ``{"file", "error"}`` if it could not be read."""
    from .images import load_digit

    if params[0].shape[0] != 784:
        raise DataError(f"the model takes {params[0].shape[0]} inputs, not 784 pixels: "
                        "it was not trained on 28x28 images")
    classes = meta.get("classes") or list(range(params[-1].shape[-1]))
    results: list[dict] = []
    readable, inputs = [], []
    for path in paths:
        results.append({"file": str(path)})
        try:
            inputs.append(load_digit(path).reshape(784))
        except DataError as exc:  # one bad file must not cost the others their answers
            results[-1]["error"] = str(exc)
            continue
        readable.append(results[-1])
    if inputs:
        x = np.stack(inputs).astype(params[0].dtype)
        proba = model.probabilities(params, x, meta.get("activation", "relu"), np, len(classes))
        for record, row in zip(readable, proba):
            best = int(row.argmax())
            record.update({"label": classes[best], "probability": float(row[best]),
                           "probabilities": {str(c): float(q) for c, q in zip(classes, row)}})
    return results


def _run(args: argparse.Namespace) -> int:
    if not Path(args.model).is_file():
        raise ConfigError(f"{args.model}: no such file")
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ConfigError("reading images needs Pillow: pip install 'mnist-accel[images]'") from None
    params, meta = load_model(args.model)
    results = predict_images(params, meta, args.images)
    if args.json:
        print(json.dumps(results, indent=2))
    for r in results:
        if "error" in r:
            print(f"{PROG}: error: {r['error']}", file=sys.stderr)
        elif not args.json:
            print(f"{r['file']}: {r['label']} (probability {r['probability']:.3f})")
    return 1 if any("error" in r for r in results) else 0


main = entry(PROG, build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
