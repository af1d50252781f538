"""The pictures ``--plot PATH`` writes, chosen by ``--figures`` (default: the preset's): ``report``, loss
and accuracy curves, the test confusion matrix and a grid of misclassified test digits; ``curves``, the
learning curves the tutorial and the full-batch write-up draw; ``keras``, the Keras tutorial's four
(the first training images, the training history, predictions on the first test images, the first test
image's probabilities); and the predict command's ``--mnist-test N --plot PATH`` (``write_predictions``).
Labels are shown by their dataset's class names ("Pred: Sneaker, True: Sneaker"). Needs matplotlib."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np

from mnist_accel import model
from mnist_accel.data.datasets import MNIST
from mnist_accel.data.mnist import normalize
from mnist_accel.persist import atomic_write

MISSED_SHOWN = 24
FIGURES = ("report", "curves", "keras")
PRESET_FIGURES = {"tutorial": "curves", "full-batch": "curves", "keras-mlp": "keras"}  # the write-ups' own


def predictions(params: Sequence[np.ndarray], images: np.ndarray, activation: str) -> np.ndarray:
    x = normalize(images, params[0].dtype)
    out, _ = model.forward(list(params), x, activation, np)
    return out.argmax(axis=1)


def confusion(true: np.ndarray, pred: np.ndarray, k: int = 10) -> np.ndarray:
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (true, pred), 1)
    return counts


def per_class_accuracy(result, data) -> dict[str, float]:
    """Each class's test accuracy (by its name) for a finished run: ``result`` from ``fit``, ``data`` its
    MnistData; classes absent from the test images it used are left out."""
    n = result.config.test_samples or len(data.test_images)
    labels = data.test_labels[:n].astype(np.int64)
    cm = confusion(labels, predictions(result.params, data.test_images[:n], result.config.activation),
                   len(data.classes))
    return {name: float(cm[i, i] / cm[i].sum()) for i, name in enumerate(data.classes) if cm[i].sum()}


def _is_digits(names: Sequence[str]) -> bool:
    """MNIST's labels, short enough for one line; other names get a line each in the narrow cells."""
    return tuple(names) == MNIST.classes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _pyplot().close(fig)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def write_figures(path: str | os.PathLike, figures: str, result, data) -> None:
    """``figures`` (one of FIGURES) for a finished run: ``result`` from ``fit``, ``data`` its MnistData (whose
    class names label the pictures)."""
    cfg = result.config
    names = data.classes
    n = cfg.test_samples or len(data.test_images)
    test_images, test_labels = data.test_images[:n], data.test_labels[:n]
    if figures == "keras":
        write_keras_figures(path, result.history, result.params, data.train_images, data.train_labels,
                            test_images, test_labels, cfg.activation, names)
    elif figures == "curves":
        whole = cfg.path == "vectorized" and cfg.batch_size >= (cfg.train_samples or len(data.train_images))
        write_curves(path, result.history, "epoch (one step on the whole set)" if whole else "epoch",
                     f"{result.backend}/{cfg.path}, {len(result.history)} epochs")
    else:
        write_training_plot(path, result.history, result.params, test_images, test_labels, cfg.activation,
                            f"{result.backend}/{cfg.path}, {len(result.history)} epochs", names)


def _curve_axes(fig, cells, history: Sequence[dict], xlabel: str, splits: Sequence[str]) -> None:
    """Loss and accuracy against the epoch, one line per split present in ``history``."""
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] + 1 for r in history]
    names = {"train": "training (during the epoch)", "val": "validation", "test": "test"}
    for cell, key in zip(cells, ("loss", "accuracy")):
        ax = fig.add_subplot(cell)
        for split in splits:
            if f"{split}_{key}" in history[0]:
                ax.plot(epochs, [r[f"{split}_{key}"] for r in history], marker="o" if len(epochs) < 40 else None,
                        label=names[split])
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(key)
        ax.set_title(f"{key} per {xlabel.split()[0]}")
        ax.legend()


def write_curves(path: str | os.PathLike, history: Sequence[dict], xlabel: str, title: str) -> None:
    """The learning curves: loss and accuracy, training against test (and validation, if held out)."""
    fig = _pyplot().figure(figsize=(12, 4.5))
    grid = fig.add_gridspec(1, 2)
    _curve_axes(fig, [grid[0, 0], grid[0, 1]], history, xlabel, ("train", "val", "test"))
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def write_keras_figures(path: str | os.PathLike, history: Sequence[dict], params: Sequence[np.ndarray],
                        train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                        test_labels: np.ndarray, activation: str, names: Sequence[str] = MNIST.classes) -> None:
    """The Keras tutorial's figures, top to bottom: the first ten training images with their labels; the
    training history, accuracy and loss, training against validation; the first ten test images titled
    "Pred: p, True: t" (green when right, red when wrong); the first test image's ten probabilities.
    ``names``: each label's name."""
    fig = _pyplot().figure(figsize=(13, 13))
    grid = fig.add_gridspec(4, 1, height_ratios=[1, 2.2, 1.1, 2])
    shown = min(10, len(train_images), len(test_images))
    top = grid[0].subgridspec(1, 10)
    for i in range(shown):
        ax = fig.add_subplot(top[0, i])
        ax.imshow(train_images[i], cmap="gray")
        ax.set_title(f"Label: {names[train_labels[i]]}", fontsize=9)
        ax.axis("off")
    middle = grid[1].subgridspec(1, 2)
    _curve_axes(fig, [middle[0, 0], middle[0, 1]], history, "epoch", ("train", "val"))
    x = normalize(test_images[:shown], params[0].dtype)
    proba = model.probabilities(list(params), x, activation, np, 10)
    _predicted_row(fig, grid[2], test_images[:shown], test_labels[:shown], proba, names)
    _probability_bars(fig, grid[3], test_images[0], test_labels[0], proba[0], names)
    fig.tight_layout()
    _save(fig, path)


def write_predictions(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray, proba: np.ndarray,
                      names: Sequence[str] = MNIST.classes) -> None:
    """The Keras tutorial's last two figures for any model (the predict command's ``--mnist-test``): up to
    ten test images titled "Pred: p, True: t" (green when right, red when wrong), then the first one's ten
    probabilities. ``names``: each label's name."""
    fig = _pyplot().figure(figsize=(13, 5.5))
    grid = fig.add_gridspec(2, 1, height_ratios=[1.1, 2])
    _predicted_row(fig, grid[0], images[:10], labels[:10], proba[:10], names)
    _probability_bars(fig, grid[1], images[0], labels[0], proba[0], names)
    fig.tight_layout()
    _save(fig, path)


def _predicted_row(fig, cell, images: np.ndarray, labels: np.ndarray, proba: np.ndarray,
                   names: Sequence[str]) -> None:
    row = cell.subgridspec(1, 10)
    for i in range(len(images)):
        ax = fig.add_subplot(row[0, i])
        ax.imshow(images[i], cmap="gray")
        pred = int(proba[i].argmax())
        text = f"Pred: {names[pred]}, True: {names[labels[i]]}"
        ax.set_title(text if _is_digits(names) else text.replace(", ", ",\n"), fontsize=8,
                     color="green" if pred == labels[i] else "red")
        ax.axis("off")


def _probability_bars(fig, cell, image: np.ndarray, label: int, proba: np.ndarray, names: Sequence[str]) -> None:
    bottom = cell.subgridspec(1, 3, width_ratios=[1, 3, 0.2])
    ax = fig.add_subplot(bottom[0, 0])
    ax.imshow(image, cmap="gray")
    ax.set_title(f"first test image (true {names[label]})")
    ax.axis("off")
    ax = fig.add_subplot(bottom[0, 1])
    ax.bar(range(len(proba)), proba, color=["green" if d == proba.argmax() else "tab:blue" for d in range(len(proba))])
    ax.set_xticks(range(len(proba)), [names[d] for d in range(len(proba))],
                  rotation=0 if _is_digits(names) else 30)
    ax.set_xlabel("digit" if _is_digits(names) else "class")
    ax.set_ylabel("probability")
    ax.set_title("predicted probabilities for the first test image")


def write_training_plot(path: str | os.PathLike, history: Sequence[dict], params: Sequence[np.ndarray],
                        test_images: np.ndarray, test_labels: np.ndarray, activation: str, title: str,
                        names: Sequence[str] = MNIST.classes) -> None:
    """Loss and accuracy per epoch, the test confusion matrix (axes labelled by ``names``) and the first
    misclassified test images titled "predicted (true)"."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    pred = predictions(params, test_images, activation)
    fig = plt.figure(figsize=(13, 9))
    grid = fig.add_gridspec(2, 3)
    epochs = [r["epoch"] + 1 for r in history]
    for col, (key, label) in enumerate((("loss", "loss"), ("accuracy", "accuracy"))):
        ax = fig.add_subplot(grid[0, col])
        ax.plot(epochs, [r[f"train_{key}"] for r in history], marker="o", label="train (during the epoch)")
        ax.plot(epochs, [r[f"test_{key}"] for r in history], marker="o", label="test (after the epoch)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.legend()
    ax = fig.add_subplot(grid[0, 2])
    cm = confusion(test_labels.astype(np.int64), pred, len(names))
    ax.imshow(cm, cmap="Blues")
    for (i, j), n in np.ndenumerate(cm):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=6, color="white" if n > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    small = {} if _is_digits(names) else {"fontsize": 7}
    ax.set_xticks(range(len(names)), list(names), rotation=0 if small == {} else 90, **small)
    ax.set_yticks(range(len(names)), list(names), **small)
    ax.set_title(f"confusion matrix ({(pred == test_labels).mean():.2%} correct)")
    missed = np.nonzero(pred != test_labels)[0][:MISSED_SHOWN]
    sep = " " if _is_digits(names) else "\n"
    inner = grid[1, :].subgridspec(2, MISSED_SHOWN // 2)
    for n in range(MISSED_SHOWN):
        ax = fig.add_subplot(inner[n // (MISSED_SHOWN // 2), n % (MISSED_SHOWN // 2)])
        ax.axis("off")
        if n < len(missed):
            i = missed[n]
            ax.imshow(test_images[i], cmap="gray")
            ax.set_title(f"{names[pred[i]]}{sep}(true {names[test_labels[i]]})", fontsize=8, color="crimson")
    kind = "digits" if _is_digits(names) else "images"
    fig.suptitle(f"{title} - misclassified test {kind} below: predicted (true)")
    fig.tight_layout()
    _save(fig, path)
