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
