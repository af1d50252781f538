"""The functional training API: ``fit(config) -> FitResult``. The CLI and MLPClassifier are built on it.

It resolves the backend, loads and slices the data, runs the chosen trainer epoch by epoch, and
measures each epoch's training time apart from data loading, compilation and evaluation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import model
from .backend import Backend, get_backend, to_device, to_host
from .config import TrainConfig, validate
from .data import MnistData, load_mnist, normalize, one_hot
from .errors import ConfigError


@dataclass
class FitResult:
    config: TrainConfig
    params: list[np.ndarray]  # trained parameters, on the host
    history: list[dict[str, float]]  # one record per epoch
    backend: str  # the backend actually used
    device: str
    compile_seconds: float  # JIT compilation and warm-up, excluded from epoch times
    dataset: str  # what data was read, and whether it is the official MNIST
    test_accuracy: float = float("nan")  # of the returned parameters
    official: bool = True
    stopped_early: bool = False

    @property
    def train_seconds(self) -> float:
        return float(sum(r["seconds"] for r in self.history))


def _slice(data: MnistData, cfg: TrainConfig) -> tuple[np.ndarray, ...]:
    n_train = cfg.train_samples or len(data.train_images)
    n_test = cfg.test_samples or len(data.test_images)
    if n_train > len(data.train_images):
        raise ConfigError(f"--train-samples {n_train} exceeds the {len(data.train_images)} training images")
    if n_test > len(data.test_images):
        raise ConfigError(f"--test-samples {n_test} exceeds the {len(data.test_images)} test images")
    return (data.train_images[:n_train], data.train_labels[:n_train],
            data.test_images[:n_test], data.test_labels[:n_test])


def _make_trainer(cfg: TrainConfig, be: Backend, params: list, rng: np.random.Generator,
                  train_images: np.ndarray, train_labels: np.ndarray):
    if cfg.path == "loop":
        from .loop import LoopTrainer

        x = normalize(train_images, np.dtype(cfg.dtype))
        return LoopTrainer(params, x, train_labels, rng, cfg.lr, cfg.activation, cfg.loss, cfg.dropout, be.name,
                           be.xp)
    from .vectorized import VectorizedTrainer

    return VectorizedTrainer(cfg, be, params, rng, train_images, train_labels)


def fit(cfg: TrainConfig, data: MnistData | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None, progress: bool = False) -> FitResult:
    """Train per ``cfg`` and return the trained parameters with per-epoch metrics."""
    validate(cfg)
    be = get_backend(cfg.backend)
    data = data if data is not None else load_mnist(cfg.data_dir, progress=progress)
    train_images, train_labels, test_images, test_labels = _slice(data, cfg)
    dtype = np.dtype(cfg.dtype)
    rng = np.random.default_rng(cfg.seed)
    sizes = [train_images[0].size, *cfg.hidden, 10]
    params = model.init_params(rng, sizes, cfg.init, cfg.bias, dtype)
    trainer = _make_trainer(cfg, be, params, rng, train_images, train_labels)
    trainer.progress = progress
    x_test = normalize(to_device(test_images, be), dtype, be.xp)
    y_test = one_hot(to_device(test_labels, be), dtype, be.xp)
    history: list[dict[str, float]] = []
    best_val, best_params, waited, stopped = float("inf"), None, 0, False
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        loss_sum, correct = trainer.train_epoch()
        loss_sum, correct = float(to_host(loss_sum)), int(to_host(correct))  # the epoch's one sync
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "train_loss": loss_sum / trainer.n_seen, "train_accuracy": correct / trainer.n_seen,
                  **_scores("test", trainer.params, x_test, y_test, cfg, be), "seconds": seconds}
        if getattr(trainer, "val", None) is not None:
            record.update(_scores("val", trainer.params, *trainer.val, cfg, be))
            if record["val_loss"] < best_val:
                best_val, best_params, waited = record["val_loss"], [p.copy() for p in trainer.params], 0
            else:
                waited += 1
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if cfg.patience and waited >= cfg.patience:
            stopped = True
            break
    params = best_params if stopped else trainer.params  # early stopping restores the best epoch
    final = _scores("test", params, x_test, y_test, cfg, be)["test_accuracy"] if stopped else history[-1]["test_accuracy"]
    return FitResult(cfg, [to_host(p) for p in params], history, be.name, be.device, trainer.compile_seconds,
                     data.description, final, data.official, stopped)


def _scores(prefix: str, params: list, x, y, cfg: TrainConfig, be: Backend) -> dict[str, float]:
    loss, correct = model.evaluate(params, x, y, cfg.activation, cfg.loss, be.xp)
    n = x.shape[0]
    return {f"{prefix}_loss": float(to_host(loss)) / n, f"{prefix}_accuracy": int(to_host(correct)) / n}
