"""The sparse first-layer kernels against dense NumPy: every width (whole vector lines, a partial last
line, narrower than one line), both dtypes, row ranges, empty rows, and the matrix they are built from;
and ``rows``, the dense products by lines of the whole-step kernel."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel.kernels.cpu import sparse_cpu
from mnist_accel.kernels.cpu.simd import LINE


def _pixels(n: int = 37, f: int = 50, seed: int = 0) -> np.ndarray:
    r = np.random.default_rng(seed)
    x = (r.integers(0, 256, (n, f)) * (r.random((n, f)) < 0.25)).astype(np.uint8)
    x[3] = 0  # a blank image: a row with no entries
    return x


def test_csr_holds_the_scaled_nonzeros():
    x = _pixels()
    starts, columns, values = sparse_cpu.csr(x, np.float32)
    dense = np.zeros(x.shape, np.float32)
    for s in range(len(x)):
        dense[s, columns[starts[s]:starts[s + 1]]] = values[starts[s]:starts[s + 1]]
    np.testing.assert_array_equal(dense, x / np.float32(255))
    assert columns.dtype == np.uint16 and starts[3] == starts[4]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 3, 8, 16, 17, 40, 150])  # 150: eight lines at a time, then fewer
def test_products_match_dense(dtype, m):
    x = _pixels()
    dense = (x / dtype(255)).astype(dtype)
    starts, columns, values = sparse_cpu.csr(x, dtype)
    lanes = LINE // np.dtype(dtype).itemsize
    width = -(-m // lanes) * lanes
    r = np.random.default_rng(1)
    w = r.normal(size=(x.shape[1], m)).astype(dtype)
    wp = np.zeros((x.shape[1], width), dtype)
    wp[:, :m] = w
    out = np.full((len(x), m), np.nan, dtype)
    line = np.zeros(lanes, dtype)
    sparse_cpu.forward(starts, columns, values, wp.ravel(), width, out, 0, m, line, 0, 20)
    sparse_cpu.forward(starts, columns, values, wp.ravel(), width, out, 0, m, line, 20, len(x))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, dense @ w, rtol=tol, atol=tol)
    delta = r.normal(size=(len(x), m)).astype(dtype)
    gp = np.full(x.shape[1] * width, np.nan, dtype)  # the kernel zeroes it
    sparse_cpu.backward(starts, columns, values, delta, gp, width, line, 5, 30)
    np.testing.assert_allclose(gp.reshape(-1, width)[:, :m], dense[5:30].T @ delta[5:30], rtol=tol, atol=tol)
    assert not gp.reshape(-1, width)[:, m:].any()  # padding lanes stay zero


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 3, 6, 8, 15])  # each count of shared accumulators (8, 4, 2, 1), and mixes
def test_rows_products_match_numpy(dtype, n):
    """n rows of b + a @ w (rows of a 17 apart), and n rows of g + a.T @ d summed into g, over two lines."""
    r = np.random.default_rng(n)
    lanes = LINE // np.dtype(dtype).itemsize
    k, width, count = 11, 2 * lanes, 37
    a, w = r.normal(size=(count, 17)).astype(dtype), r.normal(size=(k, width)).astype(dtype)
    b, d = r.normal(size=width).astype(dtype), r.normal(size=(count, width)).astype(dtype)
    g0 = r.normal(size=(n, width)).astype(dtype)
    out, g = np.full(n * width, np.nan, dtype), g0.ravel().copy()
    for c in range(0, width, lanes):
        sparse_cpu.rows(out, c, width, b, c, 0, w.ravel(), c, width, a.ravel(), 0, 17, 1, k, n)
        sparse_cpu.rows(g, c, width, g, c, width, d.ravel(), c, width, a.ravel(), 0, 1, 17, count, n)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    a64 = a.astype(np.float64)
    np.testing.assert_allclose(out.reshape(n, width), b + a64[:n, :k] @ w, rtol=tol, atol=tol)
    np.testing.assert_allclose(g.reshape(n, width), g0 + a64[:, :n].T @ d, rtol=tol, atol=tol)
