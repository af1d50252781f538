"""The training report picture (``--plot PATH``): loss and accuracy curves, the test confusion matrix,
and a grid of misclassified test digits with their predicted and true labels. Needs matplotlib."""

from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np

from . import model
from .data import normalize
from .persist import atomic_write

MISSED_SHOWN = 24


def predictions(params: Sequence[np.ndarray], images: np.ndarray, activation: str) -> np.ndarray:
    x = normalize(images, params[0].dtype)
    out, _ = model.forward(list(params), x, activation, np)
    return out.argmax(axis=1)


def confusion(true: np.ndarray, pred: np.ndarray, k: int = 10) -> np.ndarray:
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (true, pred), 1)
    return counts


def write_training_plot(path: str | os.PathLike, history: Sequence[dict], params: Sequence[np.ndarray],
                        test_images: np.ndarray, test_labels: np.ndarray, activation: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
    cm = confusion(test_labels.astype(np.int64), pred)
    ax.imshow(cm, cmap="Blues")
    for (i, j), n in np.ndenumerate(cm):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=6, color="white" if n > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_title(f"confusion matrix ({(pred == test_labels).mean():.2%} correct)")
    missed = np.nonzero(pred != test_labels)[0][:MISSED_SHOWN]
    inner = grid[1, :].subgridspec(2, MISSED_SHOWN // 2)
    for n in range(MISSED_SHOWN):
        ax = fig.add_subplot(inner[n // (MISSED_SHOWN // 2), n % (MISSED_SHOWN // 2)])
        ax.axis("off")
        if n < len(missed):
            i = missed[n]
            ax.imshow(test_images[i], cmap="gray")
            ax.set_title(f"{pred[i]} (true {test_labels[i]})", fontsize=8, color="crimson")
    fig.suptitle(f"{title} - misclassified test digits below: predicted (true)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
