"""A run's state beyond its trainer's: early stopping's bookkeeping, and the snapshot that carries it with
the trainer's own state through a checkpoint and back."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel.config import resolve
from mnist_accel.errors import ConfigError
from mnist_accel.training import checkpoint as ckpt
from mnist_accel.training.run_state import RunState


class _Trainer:
    """The part of a trainer a run's state reads: its parameters and its exported state."""

    def __init__(self, value: float) -> None:
        self.params = [np.full((2, 3), value), np.full(3, value)]
        self.meta = {"step": int(value)}

    def export_state(self):
        return [p.copy() for p in self.params], dict(self.meta)

    def import_state(self, arrays, meta):
        for dst, src in zip(self.params, arrays):
            dst[...] = src
        self.meta = dict(meta)


def test_validation_keeps_the_best_parameters():
    trainer = _Trainer(1.0)
    run = RunState(resolve("default"), trainer)
    run.track_validation(0.5)
    trainer.params[0][...] = 2.0
    run.track_validation(0.7)
    run.track_validation(0.6)
    assert run.best_val == 0.5 and run.waited == 2 and run.best_params[0].tolist() == [[1.0] * 3] * 2
    run.track_validation(0.4)
    assert run.best_val == 0.4 and run.waited == 0 and run.best_params[0][0, 0] == 2.0


def test_a_snapshot_restores_the_run_and_its_trainer(tmp_path):
    cfg = resolve("default")
    trainer = _Trainer(1.0)
    run = RunState(cfg, trainer)
    run.history.append({"epoch": 0, "val_loss": 0.5})
    run.track_validation(0.5)
    snapshot = run.snapshot()
    ckpt.save(tmp_path / "state.npz", *snapshot)
    trainer.params[0][...], trainer.meta = 9.0, {"step": 9}
    run.history.append({"epoch": 1})
    run.track_validation(0.8)
    run.restore(snapshot)
    assert run.history == [{"epoch": 0, "val_loss": 0.5}] and run.waited == 0 and run.best_val == 0.5
    assert trainer.params[0][0, 0] == 1.0 and trainer.meta == {"step": 1}
    resumed = RunState(cfg, _Trainer(5.0))
    resumed.resume(tmp_path / "state.npz")
    assert resumed.history == run.history and resumed.trainer.params[1].tolist() == [1.0] * 3
    assert resumed.best_params[1].tolist() == [1.0] * 3
    with pytest.raises(ConfigError):  # a checkpoint of another model does not resume this one
        RunState(resolve("default", hidden=(7,)), _Trainer(0.0)).resume(tmp_path / "state.npz")
