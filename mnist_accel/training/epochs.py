"""The one epoch loop: train an epoch, read its loss and hits from the device once, and stop when the run
diverges. ``fit`` and ``MLPClassifier`` both run their epochs through ``run_epochs``; what each does between
epochs (metrics, early stopping, checkpoints, snapshots) stays with it.

A trainer (``trainers.loop.LoopTrainer``, ``trainers.vectorized.VectorizedTrainer``) offers what
``Trainer`` lists.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mnist_accel.backends.selection import to_host
from mnist_accel.training import divergence


class Trainer(Protocol):
    params: list[Any]  # the model, updated in place, on the backend's device
    n_seen: int  # training samples an epoch
    step_name: str  # what ``first_bad`` counts, for messages ("step", "sample")
    val: tuple[Any, Any] | None  # the validation split's (features, one-hot labels), or None

    def train_epoch(self) -> tuple[Any, Any]:
        """One pass; the summed loss and the correct count, still on the device."""

    @property
    def first_bad(self) -> int:
        """The first step (or sample) of the last epoch whose loss was not finite, or -1."""

    def scoring(self) -> contextlib.AbstractContextManager:
        """A context to evaluate in between epochs (the threads the epochs use)."""


@dataclass
class Epoch:
    loss: float  # mean training loss over the epoch, measured while training
    accuracy: float  # share of training samples right while training
    seconds: float  # the epoch's training time, its one device sync included


class Diverged(Exception):
    """An epoch's loss was not finite or left its plausible range (``divergence.reason``)."""

    def __init__(self, why: str, where: str) -> None:
        super().__init__(why)
        self.why, self.where = why, where  # where: "" or " at step N" / " at its end", for messages


def run_epochs(trainer: Trainer, count: int, reference: float) -> Iterator[Epoch]:
    """Train ``count`` epochs, yielding each; raises Diverged (the trainer's model is then the diverged one:
    callers restore their last sound state)."""
    for _ in range(count):
        start = time.perf_counter()
        with np.errstate(all="ignore"):  # a diverging run is reported by Diverged, not by NumPy warnings
            loss_sum, correct = trainer.train_epoch()
        loss_sum, correct = float(to_host(loss_sum)), int(to_host(correct))  # the epoch's one sync
        seconds = time.perf_counter() - start
        why = divergence.reason(loss_sum / trainer.n_seen, reference)
        if why is not None:
            where = ""
            if not math.isfinite(loss_sum):  # the trainer knows the first step that was not
                bad = int(to_host(trainer.first_bad))
                where = f" at {trainer.step_name} {bad + 1}" if bad >= 0 else " at its end"
            raise Diverged(why, where)
        yield Epoch(loss_sum / trainer.n_seen, correct / trainer.n_seen, seconds)
