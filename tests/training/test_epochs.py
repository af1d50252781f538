"""The one epoch loop (``mnist_accel.training.epochs``): an epoch's figures, and divergence with where it
began, for any trainer that offers the protocol."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

from mnist_accel.training.epochs import Diverged, run_epochs


class _Trainer:
    """Epochs whose summed losses are given; the step that first went bad is 7."""

    step_name, val, first_bad = "step", None, 6

    def __init__(self, losses):
        self.losses, self.n_seen, self.params = list(losses), 4, []

    def train_epoch(self):
        return np.float64(self.losses.pop(0)), np.float64(3)

    def scoring(self):
        return contextlib.nullcontext()


def test_each_epoch_gives_its_mean_loss_accuracy_and_seconds():
    got = list(run_epochs(_Trainer([8.0, 4.0]), 2, reference=2.3))
    assert [(e.loss, e.accuracy) for e in got] == [(2.0, 0.75), (1.0, 0.75)]
    assert all(e.seconds >= 0 for e in got)


@pytest.mark.parametrize("loss, where", [(math.nan, " at step 7"), (4 * 2.3 * 101, "")])
def test_a_diverging_epoch_stops_the_loop_and_says_where(loss, where):
    epochs = run_epochs(_Trainer([4.0, loss, 4.0]), 3, reference=2.3)
    assert next(epochs).loss == 1.0
    with pytest.raises(Diverged) as caught:
        next(epochs)
    assert caught.value.where == where and caught.value.why
