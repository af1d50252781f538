"""``python -m mnist_accel.predict --model model.npz IMAGE...``: the predicted class of each picture.

Images are converted the way the model's dataset was made (MNIST's digits, or Fashion-MNIST's articles; see
``mnist_accel.data.images``) and scaled to [0, 1], the input the training command's models expect. Every
image that can be read gets its answer; each one that cannot (missing, not an image, damaged, too large,
blank) gets one line on stderr, and an ``error`` field instead of a label under ``--json``. Exit codes as
for training: 2 bad arguments (or no model file), 1 a runtime failure, including any image that could not
be read.

``--mnist-test N`` predicts the first N test images of the model's dataset (``--dataset``: MNIST, or what
the model was trained on) instead, as the Keras tutorial checks its model: a line "Pred: p, True: t" each
and, with ``--plot PATH``, those pictures (up to ten) and the first one's ten probabilities. Labels are
shown by their class names ("Pred: Sneaker, True: Sneaker"), which the training command saves in the model.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mnist_accel import model
from mnist_accel.cli.common import Parser, entry
from mnist_accel.data.datasets import NAMES as DATASETS
from mnist_accel.errors import ConfigError, DataError
from mnist_accel.persist import check_writable, class_names, framing, load_model

PROG = "mnist_accel.predict"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Predict the class of each image (the digit, for MNIST) with a saved "
               "mnist-accel model.")
    p.add_argument("--model", required=True, metavar="PATH", help="a model written by --save or MLPClassifier.save")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="PNG or JPEG files")
    p.add_argument("--mnist-test", type=int, metavar="N", help="predict the first N test images of --dataset "
                   "instead")
    p.add_argument("--dataset", choices=DATASETS, help="with --mnist-test: whose test images (default: the one the "
                   "model was trained on, else mnist)")
    p.add_argument("--plot", metavar="PATH", help="with --mnist-test: a PNG of the first ten, titled 'Pred: p, "
                   "True: t', and the first one's probabilities (needs matplotlib)")
    p.add_argument("--data-dir", metavar="DIR", help="with --mnist-test: where the dataset's files are")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def answers(params: list[np.ndarray], meta: dict, pictures: np.ndarray) -> list[dict]:
    """For each prepared picture (rows of 784 values in [0, 1]): its ``label``, the label's ``name``, its
    ``probability`` and every class's ``probabilities``."""
    classes = meta.get("classes") or list(range(params[-1].shape[-1]))
    names = class_names(meta, classes)
    x = np.asarray(pictures).reshape(len(pictures), -1).astype(params[0].dtype)
    proba = model.probabilities(params, x, meta.get("activation", "relu"), np, len(classes))
    return [{"label": classes[int(row.argmax())], "name": names[int(row.argmax())], "probability": float(row.max()),
             "probabilities": {str(c): float(q) for c, q in zip(classes, row)}} for row in proba]


def check_pictures_fit(params: list[np.ndarray], source: str | None = None) -> None:
    """DataError unless the model takes the 784 pixels of a 28x28 picture (``source``: the model's file)."""
    if params[0].ndim != 2 or params[0].shape[0] != 784:
        who = f"{source}:" if source else "the model"
        raise DataError(f"{who} takes {params[0].shape[0]} inputs, not 784 pixels: it was not trained on 28x28 "
                        "images")


def predict_images(params: list[np.ndarray], meta: dict, paths: Sequence[str]) -> list[dict]:
    """One record per path, in order: its prediction, or ``{"file", "error"}`` if it could not be read."""
    from mnist_accel.data.images import load_digit

    check_pictures_fit(params)
    results: list[dict] = []
    readable, inputs = [], []
    for path in paths:
        results.append({"file": str(path)})
        try:
            inputs.append(load_digit(path, framing(meta)))
        except DataError as exc:  # one bad file must not cost the others their answers
            results[-1]["error"] = str(exc)
            continue
        readable.append(results[-1])
    if inputs:
        for record, answer in zip(readable, answers(params, meta, np.stack(inputs))):
            record.update(answer)
    return results


def predict_mnist_test(params: list[np.ndarray], meta: dict, n: int, data_dir: str | None,
                       plot: str | None, dataset: str | None = None) -> list[dict]:
    """The first ``n`` test images of ``dataset`` (None: the model's, else mnist): each one's record, with its
    true label; names from the model's metadata."""
    from mnist_accel.data.mnist import load_mnist, normalize

    trained_on = meta.get("dataset") if isinstance(meta.get("dataset"), str) else None
    if dataset is not None and trained_on is not None and dataset != trained_on:
        raise ConfigError(f"the model was trained on {trained_on}; drop --dataset {dataset} or train a model on it")
    if params[0].shape[0] != 784:
        raise DataError(f"the model takes {params[0].shape[0]} inputs, not the 784 pixels of a 28x28 image")
    data = load_mnist(data_dir, progress=False, dataset=dataset or trained_on or "mnist")
    images, labels = data.test_images[:n], data.test_labels[:n]
    classes = meta.get("classes") or list(range(params[-1].shape[-1]))
    names = class_names({"dataset": data.dataset, **meta}, classes)
    true_names = data.classes
    proba = model.probabilities(params, normalize(images, params[0].dtype), meta.get("activation", "relu"), np,
                                len(classes))
    if plot is not None:
        from mnist_accel.plots import write_predictions

        write_predictions(plot, images, labels, proba, names)
    return [{"test_image": i, "label": classes[int(row.argmax())], "name": names[int(row.argmax())], "true": int(t),
             "true_name": true_names[int(t)], "probability": float(row.max()),
             "probabilities": {str(c): float(q) for c, q in zip(classes, row)}}
            for i, (row, t) in enumerate(zip(proba, labels))]


def _mnist_test_run(args: argparse.Namespace) -> int:
    if args.images:
        raise ConfigError("give IMAGE files or --mnist-test N, not both")
    if args.mnist_test < 1 or args.mnist_test > 10000:
        raise ConfigError(f"--mnist-test takes 1 to 10000 images, got {args.mnist_test}")
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ConfigError("--plot needs matplotlib: pip install 'mnist-accel[plot]'") from None
        try:
            check_writable(args.plot, "--plot")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    params, meta = load_model(args.model)
    results = predict_mnist_test(params, meta, args.mnist_test, args.data_dir, args.plot, args.dataset)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"test image {r['test_image']}: Pred: {r['name']}, True: {r['true_name']} "
                  f"(probability {r['probability']:.3f})")
    return 0


def _run(args: argparse.Namespace) -> int:
    if not Path(args.model).is_file():
        raise ConfigError(f"{args.model}: no such file")
    if args.mnist_test is not None:
        return _mnist_test_run(args)
    if not args.images:
        raise ConfigError("give one or more IMAGE files, or --mnist-test N")
    if args.plot is not None or args.data_dir is not None or args.dataset is not None:
        raise ConfigError("--plot, --data-dir and --dataset belong to --mnist-test")
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
            print(f"{r['file']}: {r['name']} (probability {r['probability']:.3f})")
    return 1 if any("error" in r for r in results) else 0


main = entry(PROG, build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
