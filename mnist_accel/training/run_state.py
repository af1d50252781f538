"""A run's state beyond its trainer's, as ``fit`` keeps it: the metrics of the epochs so far and early
stopping's bookkeeping (the best validation loss, the epochs waited since, the best parameters), with the
snapshot a checkpoint saves and a resumed or diverged run restores.
"""

from __future__ import annotations

import os

import numpy as np

from mnist_accel.backends.selection import to_host
from mnist_accel.config import TrainConfig
from mnist_accel.training import checkpoint as ckpt


class RunState:
    """The run's state beyond the trainer's: metrics so far and early-stopping bookkeeping."""

    def __init__(self, cfg: TrainConfig, trainer) -> None:
        self.cfg, self.trainer = cfg, trainer
        self.history: list[dict[str, float]] = []
        self.best_val, self.waited, self.best_params = float("inf"), 0, None

    def track_validation(self, val_loss: float) -> None:
        if val_loss < self.best_val:
            self.best_val, self.waited = val_loss, 0
            self.best_params = [np.array(to_host(p)) for p in self.trainer.params]
        else:
            self.waited += 1

    def snapshot(self) -> tuple[list[np.ndarray], dict]:
        """Host copies of everything a resumed run needs (and what divergence rolls back to)."""
        arrays, meta = self.trainer.export_state()
        best = self.best_params or []
        return arrays + best, {"config": self.cfg.to_dict(), "history": [dict(r) for r in self.history],
                               "trainer": meta, "trainer_arrays": len(arrays), "best_val": self.best_val,
                               "waited": self.waited}

    def restore(self, snapshot: tuple[list[np.ndarray], dict]) -> None:
        arrays, meta = snapshot
        n = meta["trainer_arrays"]
        self.trainer.import_state(arrays[:n], meta["trainer"])
        self.history = [dict(r) for r in meta["history"]]
        self.best_val, self.waited = meta["best_val"], meta["waited"]
        self.best_params = list(arrays[n:]) or None

    def resume(self, path: str | os.PathLike) -> None:
        arrays, meta = ckpt.load(path)
        ckpt.check_compatible(meta["config"], self.cfg.to_dict(), path)
        self.restore((arrays, meta))
