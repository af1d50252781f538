"""The ``speedrun`` preset: a fixed recipe that keeps the rules stated in docs/training.md (fully connected
layers with elementwise activations, random initialisation, all of MNIST's training images and nothing else,
no test image deciding anything), and that still trains to its accuracy."""

from __future__ import annotations

import json

import pytest

from mnist_accel.cli.train import main
from mnist_accel.config import TrainConfig, resolve
from mnist_accel.model import ACTIVATIONS
from mnist_accel.presets import PRESETS

RANDOM_INITS = ("he", "xavier", "glorot-uniform", "normal-fan-out")


def test_speedrun_follows_the_rules():
    cfg = resolve("speedrun")
    # Fully connected layers with an elementwise activation: the only model this package builds, so the preset
    # can only choose widths and an activation from the elementwise ones.
    assert cfg.path == "vectorized" and cfg.activation in ACTIVATIONS and cfg.activation != "identity"
    assert cfg.hidden and all(h >= 1 for h in cfg.hidden)
    # Random initialisation from the seed, no pretrained weights (the preset cannot name a file to load).
    assert cfg.init.split(":")[0] in RANDOM_INITS + ("normal", "uniform")
    assert not set(PRESETS["speedrun"]) & {"resume", "checkpoint", "data_dir"}
    # All 60,000 training images; no validation split, so nothing is held out and no early stop happens.
    assert cfg.train_samples in (None, 60000) and cfg.val_split == 0
    assert cfg.patience == 0 and cfg.target_accuracy is None
    # The test set is only measured: all of it, never a part chosen by the recipe.
    assert cfg.test_samples is None
    # Every value the preset sets is a real option, so the command line can show and override it.
    assert set(PRESETS["speedrun"]) <= {f for f in TrainConfig.__dataclass_fields__}
    assert resolve("speedrun", epochs=1).epochs == 1


@pytest.mark.slow
def test_speedrun_reaches_its_accuracy_on_one_seed(mnist, tmp_path):
    """One seed of ``--preset speedrun``; the docs' target is a mean over ten seeds, this is the floor for one."""
    out = tmp_path / "m.json"
    assert main(["--preset", "speedrun", "--seed", "0", "--quiet", "--metrics-json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["config"]["train_samples"] is None and metrics["dataset"]
    assert len(metrics["epochs"]) == PRESETS["speedrun"]["epochs"]
    assert metrics["test_accuracy"] >= 0.978
