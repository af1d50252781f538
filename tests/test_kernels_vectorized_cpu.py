"""The fused Numba ops against the plain-xp ops; tolerances from the float32 error of a float64 run."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel import optim
from mnist_accel.config import resolve
from mnist_accel.kernels.vectorized_cpu import NumbaOps
from mnist_accel.ops import XpOps

REF, FUSED = XpOps(np), NumbaOps()


def _data(dtype, seed=0):
    r = np.random.default_rng(seed)
    z = r.normal(0, 2, (33, 17)).astype(dtype)
    b = r.normal(0, 1, 17).astype(dtype)
    mask = (r.random((33, 17)) > 0.3).astype(dtype) / dtype(0.7)
    return z, b, mask


def _tolerance(fn):
    """float32 tolerance: 4x the gap between the reference op in float32 and in float64."""
    return 4 * np.abs(fn(np.float32).astype(np.float64) - fn(np.float64)).max() + 1e-7


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("with_mask", [False, True])
def test_bias_act_and_backward(activation, with_mask):
    def run(ops, dtype):
        z, b, mask = _data(dtype)
        m = mask if with_mask else None
        ops.bias_act(z, b, activation, m)
        delta = np.linspace(-1, 1, z.size, dtype=dtype).reshape(z.shape)
        ops.act_backward(delta, z, activation, m, 0.7)
        return np.concatenate([z.ravel(), delta.ravel()])

    tol = _tolerance(lambda dt: run(REF, dt))
    for dtype in (np.float32, np.float64):
        np.testing.assert_allclose(run(FUSED, dtype), run(REF, dtype), rtol=0,
                                   atol=tol if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
def test_loss_grad(loss):
    def run(ops, dtype):
        z, _, _ = _data(dtype, 1)
        labels = np.arange(33, dtype=np.int32) % 17
        grad = np.empty_like(z)
        total, correct = ops.loss_grad(z, labels, grad, loss)
        return float(total), int(correct), grad

    ref64 = run(REF, np.float64)
    fused64 = run(FUSED, np.float64)
    assert fused64[1] == ref64[1]
    assert fused64[0] == pytest.approx(ref64[0], rel=1e-12)
    np.testing.assert_allclose(fused64[2], ref64[2], atol=1e-15)
    tol = 4 * np.abs(run(REF, np.float32)[2] - ref64[2]).max() + 1e-7
    np.testing.assert_allclose(run(FUSED, np.float32)[2], ref64[2], atol=tol)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_update(optimizer):
    cfg = resolve(optimizer=optimizer, weight_decay=0.01)

    def run(ops, dtype):
        r = np.random.default_rng(2)
        params = [r.normal(size=(9, 5)).astype(dtype), r.normal(size=5).astype(dtype)]
        state = optim.init_state(params, optimizer, np)
        for t in (1, 2, 3):
            grads = [r.normal(size=p.shape).astype(dtype) for p in params]
            ops.update(params, grads, state, cfg, t, 1e-2)
        return np.concatenate([p.ravel() for p in params])

    np.testing.assert_allclose(run(FUSED, np.float64), run(REF, np.float64), rtol=1e-12)
    tol = _tolerance(lambda dt: run(REF, dt))
    np.testing.assert_allclose(run(FUSED, np.float32), run(REF, np.float64), rtol=0, atol=tol)
