"""The vectorized trainer's forward and backward pass into reused buffers: the summed loss and the mean
gradients of ``model.loss_and_grads`` on the batch's rows, with labels or float targets, biases or none, and
the same buffers for every batch of one size."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel import losses, model, resolve
from mnist_accel.backends import make_ops
from mnist_accel.backends.selection import get_backend
from mnist_accel.trainers.batch_pass import BatchPass


@pytest.mark.parametrize("loss, bias", [("cross-entropy", True), ("cross-entropy", False),
                                        ("binary-cross-entropy", True)])
def test_the_pass_is_the_models_gradient(loss, bias):
    r = np.random.default_rng(0)
    cfg = resolve("default", backend="numpy", loss=loss, activation="tanh", dtype="float64", dropout=0.0)
    be = get_backend("numpy")
    pixels = r.integers(0, 256, (20, 12), dtype=np.uint8)
    labels = r.integers(0, 3, 20)
    params = model.init_params(r, [12, 6, 3], "xavier", bias, np.float64)
    targets = np.eye(3)[labels]
    given = labels.astype(np.int32) if loss == "cross-entropy" else targets  # the label losses take labels
    batch = np.array([3, 7, 1, 12, 19])
    for rows in (batch, None):  # a gathered batch of pixels scaled per batch; the whole set, scaled once
        ops = make_ops(be)
        inputs = ops.prepare_inputs(pixels, np.float64, whole=rows is None)
        run = BatchPass(cfg, ops, be.xp, params, inputs, given, 20, np.float64)
        total, hits, grads = run(rows, None)
        picked = slice(None) if rows is None else rows
        x = pixels[picked] / 255
        mean_loss, want = model.loss_and_grads(params, x, targets[picked], "tanh", loss, np)
        assert float(total) / len(x) == pytest.approx(mean_loss, rel=1e-12)
        out, _ = model.forward(params, x, "tanh", np)
        assert int(hits) == int(losses.correct_count(out, targets[picked], loss))
        assert len(grads) == len(params)
        for g, w in zip(grads, want):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-13)
    ops = make_ops(be)
    run = BatchPass(cfg, ops, be.xp, params, ops.prepare_inputs(pixels, np.float64), given, 20, np.float64)
    first = run(batch, None)[2]
    assert all(a is b for a, b in zip(run(batch[::-1], None)[2], first))  # one set of buffers per batch size
    assert not any(a is b for a, b in zip(run(batch[:3], None)[2], first))
