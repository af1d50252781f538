"""The --plot picture is written, atomically, and is a real PNG of the expected size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_accel.cli.train import main
from mnist_accel.plots import confusion


def test_confusion_counts():
    cm = confusion(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), k=3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_plot_is_written(tmp_path, mnist):
    out = tmp_path / "report.png"
    assert main(["--epochs", "2", "--train-samples", "3000", "--test-samples", "1000", "--plot", str(out),
                 "--quiet"]) == 0
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > 800 and img.size[1] > 600
    assert [p.name for p in tmp_path.iterdir()] == ["report.png"]


@pytest.mark.parametrize("argv, size", [
    (["--preset", "keras-mlp", "--epochs", "2"], (1170, 1170)),  # the Keras tutorial's four figures
    (["--preset", "full-batch", "--epochs", "3"], (1080, 405)),  # the learning curves
    (["--preset", "full-batch", "--epochs", "3", "--figures", "report"], (1170, 810)),
    (["--epochs", "1", "--figures", "keras"], (1170, 1170)),
])
def test_the_write_ups_figures(tmp_path, mnist, argv, size):
    """--plot draws the preset's own figures (--figures chooses others); the size tells which."""
    out = tmp_path / "f.png"
    assert main([*argv, "--train-samples", "2000", "--test-samples", "200", "--plot", str(out), "--quiet"]) == 0
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == size


def _fashion_dir() -> str:
    """Fashion-MNIST's folder: $MNIST_ACCEL_FASHION_MNIST_DATA, else Debian's dataset-fashion-mnist package."""
    import os
    from pathlib import Path

    folder = Path(os.environ.get("MNIST_ACCEL_FASHION_MNIST_DATA") or "/usr/share/datasets/fashion-mnist")
    if not (folder / "t10k-labels-idx1-ubyte.gz").is_file() and not (folder / "t10k-labels-idx1-ubyte").is_file():
        pytest.skip(f"no Fashion-MNIST in {folder}: apt-get install dataset-fashion-mnist, or set "
                    "MNIST_ACCEL_FASHION_MNIST_DATA")
    return str(folder)


def _texts_of_saved_figures(monkeypatch) -> list[list[str]]:
    """Every visible text on each figure the run saves (titles, tick labels, axis labels), figure by figure."""
    import matplotlib.text

    from mnist_accel import plots

    figures, save = [], plots._save

    def keep(fig, path):
        figures.append([t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text() and t.get_visible()])
        save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return figures


@pytest.mark.parametrize("figures", ["report", "keras"])
def test_summary_and_plots_name_the_classes(tmp_path, monkeypatch, capsys, figures):
    from mnist_accel.data.datasets import FASHION_MNIST

    drawn = _texts_of_saved_figures(monkeypatch)
    out = tmp_path / "f.png"
    assert main(["--dataset", "fashion-mnist", "--data-dir", _fashion_dir(), "--epochs", "1", "--train-samples",
                 "3000", "--test-samples", "300", "--figures", figures, "--plot", str(out), "--quiet"]) == 0
    summary = capsys.readouterr().out.strip()
    assert len(summary.splitlines()) == 1 and "official Fashion-MNIST (SHA-256 verified)" in summary
    hardest = summary.split("; hardest classes: ")[1].split(", ")
    assert len(hardest) == 3 and all(h.rsplit(" ", 1)[0] in FASHION_MNIST.classes for h in hardest)
    (texts,) = drawn
    names = set(FASHION_MNIST.classes)
    if figures == "report":  # the confusion matrix's axes, and the misclassified images "Sneaker\n(true Sandal)"
        assert sum(t in names for t in texts) == 20
        missed = [t.split("\n") for t in texts if "\n(true " in t]
        assert missed and all(p in names and t[len("(true "):-1] in names for p, t in missed)
    else:  # the Keras tutorial's "Pred: Sneaker, True: Sneaker" (a line each) and its labelled images
        titled = [t.replace(",\n", ", ") for t in texts if t.startswith("Pred: ")]
        assert len(titled) == 10 and all(t.split(", True: ")[1] in names for t in titled)
        assert all(t.split(", ")[0][len("Pred: "):] in names for t in titled)
        assert sum(t.startswith("Label: ") and t[len("Label: "):] in names for t in texts) == 10
        assert "Ankle boot" in texts and "first test image (true Ankle boot)" in texts  # the bars' axis


def test_mnist_pictures_keep_their_digits(tmp_path, monkeypatch, mnist):
    drawn = _texts_of_saved_figures(monkeypatch)
    assert main(["--epochs", "1", "--train-samples", "2000", "--test-samples", "200", "--plot",
                 str(tmp_path / "f.png"), "--quiet"]) == 0
    (texts,) = drawn
    assert [t for t in texts if t.isdigit() and len(t) == 1].count("7") >= 2  # both confusion-matrix axes
    assert any(t.endswith(")") and " (true " in t and "\n" not in t for t in texts)
