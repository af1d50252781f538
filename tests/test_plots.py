"""The --plot picture is written, atomically, and is a real PNG of the expected size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mnist_accel.plots import confusion
from mnist_accel.train import main


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
