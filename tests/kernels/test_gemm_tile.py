"""gemm_cpu's register tile (``kernels.cpu.gemm_tile``): ``rows`` rows by one or two vectors of columns, at flat
offsets with row strides, written over or added to what c holds.

One tile against the same sums in float64, each of its shapes, in float32 and float64: an offset or stride
mistake errs by whole products, far above the rounding bound used (k * eps of the dtype, relative to the
absolute products).
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from mnist_accel.kernels.cpu import gemm_tile
from mnist_accel.kernels.cpu.simd import LINE

TILES = {(rows, vectors): gemm_tile.tile(rows, vectors) for rows in (1, 8) for vectors in (1, 2)}
CALLERS = {}


def _caller(rows, vectors):
    if (rows, vectors) not in CALLERS:
        t = TILES[rows, vectors]

        @njit
        def run(a, a0, ai, ak, b, b0, bk, c, c0, cs, k, more):
            t(a, a0, ai, ak, b, b0, bk, c, c0, cs, k, more)

        CALLERS[rows, vectors] = run
    return CALLERS[rows, vectors]


@pytest.mark.parametrize("rows, vectors", list(TILES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("more", [False, True])
def test_a_tile_sums_its_rows_and_columns(rows, vectors, dtype, more):
    r = np.random.default_rng(rows * 10 + vectors)
    lanes, k = LINE // np.dtype(dtype).itemsize, 7
    width = vectors * lanes
    a = r.normal(size=(rows + 2, k + 3)).astype(dtype)  # the tile reads rows 1.. and columns 2..
    b = r.normal(size=(k + 1, width + lanes)).astype(dtype)  # rows 1.., columns from lanes on
    c = r.normal(size=(rows + 1, width + 2 * lanes)).astype(dtype)
    before = c.copy()
    _caller(rows, vectors)(a.ravel(), a.shape[1] + 2, a.shape[1], 1, b.ravel(), b.shape[1] + lanes, b.shape[1],
                           c.ravel(), c.shape[1] + lanes, c.shape[1], k, more)
    expected = before.astype(np.float64)
    block = a[1:rows + 1, 2:2 + k].astype(np.float64) @ b[1:k + 1, lanes:lanes + width].astype(np.float64)
    window = expected[1:rows + 1, lanes:lanes + width]
    window[...] = block + window if more else block
    bound = 2 * (k + 1) * np.finfo(dtype).eps * (np.abs(a[1:rows + 1, 2:2 + k]).astype(np.float64)
                                                 @ np.abs(b[1:k + 1, lanes:lanes + width]).astype(np.float64)
                                                 + np.abs(before[1:rows + 1, lanes:lanes + width]))
    assert np.all(np.abs(c[1:rows + 1, lanes:lanes + width] - window) <= bound)
    outside = np.ones(c.shape, bool)
    outside[1:rows + 1, lanes:lanes + width] = False
    np.testing.assert_array_equal(c[outside], before[outside])  # nothing else written
