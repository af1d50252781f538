"""The per-sample loop's row passes, called through their callback's address as the epoch kernels call them."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from mnist_accel.kernels import loop_layout
from mnist_accel.kernels.cpu import loop_rows
from mnist_accel.kernels.cpu.simd import LINE, host_aligned_zeros


@njit
def _run(fn, pass_, x, y, gptr, grow, esam, evals, width, g0, g1, lr):
    loop_rows.call(fn, pass_, x, y, gptr, grow, esam, evals, width, g0, g1, lr)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_passes_add_a_blocks_products_and_apply_its_updates(dtype):
    """Forward: each sample's row gains x_m @ w1; update: w1 gains lr * x.T @ delta (the block's samples)."""
    r = np.random.default_rng(3)
    n, f, hidden, block = 6, 21, 7, 8  # an odd number of pixels: one pairs with the zero row
    x = (r.normal(size=(n, f)) * (r.random((n, f)) < 0.4)).astype(dtype)
    gptr, grow, esam, evals, bgrp, gram = loop_layout.prepare(x, block)
    lanes = LINE // np.dtype(dtype).itemsize
    width = -(-hidden // lanes) * lanes
    w1 = r.normal(size=(f, hidden)).astype(dtype)
    w1p = host_aligned_zeros((f + 1) * width, dtype)
    w1p.reshape(f + 1, width)[:f, :hidden] = w1
    fwd = host_aligned_zeros(block * width, dtype)
    fn = loop_rows.address(dtype)
    _run(fn, loop_rows.FORWARD, fwd, w1p, gptr, grow, esam, evals, width, bgrp[0], bgrp[1], dtype(0.5))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fwd.reshape(block, width)[:n, :hidden], x @ w1, rtol=tol, atol=tol)
    assert not fwd.reshape(block, width)[:, hidden:].any()  # the padding stays zero
    delta = host_aligned_zeros(block * width, dtype)
    delta.reshape(block, width)[:n, :hidden] = r.normal(size=(n, hidden))
    _run(fn, loop_rows.UPDATE, w1p, delta, gptr, grow, esam, evals, width, bgrp[0], bgrp[1], dtype(0.5))
    expected = w1 + dtype(0.5) * x.T @ delta.reshape(block, width)[:n, :hidden]
    np.testing.assert_allclose(w1p.reshape(f + 1, width)[:f, :hidden], expected, rtol=tol, atol=tol)
    assert not w1p.reshape(f + 1, width)[f].any()  # the zero row gains only zero updates
