"""The write-up presets: each holds its write-up's settings, and every one resolves into a valid configuration
that flags still override."""

from __future__ import annotations

from mnist_accel.config import resolve
from mnist_accel.presets import PRESETS


def test_keras_mlp_is_the_keras_tutorial():
    cfg = resolve("keras-mlp")
    assert (cfg.hidden, cfg.activation, cfg.loss, cfg.bias, cfg.init) == ((128, 128), "relu", "cross-entropy", True,
                                                                          "glorot-uniform")
    assert (cfg.optimizer, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.adam_form) == ("adam", 1e-3, 0.9, 0.999, 1e-7,
                                                                                   "keras")
    assert (cfg.batch_size, cfg.epochs, cfg.schedule, cfg.val_split, cfg.val_from, cfg.dtype) == (
        128, 10, "constant", 0.2, "end", "float32")


def test_full_batch_is_the_write_ups_gradient_descent():
    cfg = resolve("full-batch")
    assert (cfg.hidden, cfg.activation, cfg.loss, cfg.init, cfg.optimizer) == ((16, 16), "tanh", "cross-entropy",
                                                                            "normal:0.1", "sgd")
    assert (cfg.batch_size, cfg.epochs, cfg.lr, cfg.schedule, cfg.lr_drop_at, cfg.lr_drop_to) == (
        60000, 150, 1.0, "drop", 76, 0.1)
    assert cfg.print_every == 10 and cfg.val_split == 0


def test_every_preset_resolves_and_flags_still_win():
    for name in PRESETS:
        resolve(name)
    assert resolve("full-batch", epochs=3, dtype="float64").epochs == 3
