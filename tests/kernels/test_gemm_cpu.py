"""The first layer's GEMM kernel on the CPU, against a float64 matmul.

The tolerance is the standard bound on a dot product's rounding error, elementwise: k * eps/2 * (|op(a)| @ |b|)
for k terms in the dtype, doubled for the float64 reference's own rounding (which matters for float64).
An indexing or tiling mistake errs by whole products, far above it.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from mnist_accel.backends import gemm_policy
from mnist_accel.kernels.cpu import gemm_cpu

gemm_policy.parallel_ok()  # start Numba's threads as the ops do (TBB), before a kernel here picks another layer
KERNELS = [gemm_cpu.gemm, lambda a, t, b, c: gemm_cpu.gemm_parallel(a, t, b, c, numba.get_num_threads()),
           lambda a, t, b, c: gemm_cpu.gemm_parallel(a, t, b, c, 16)]  # more threads asked for than Numba has
DTYPES = [np.float32, np.float64]


def _operands(m, k, n, dtype, transpose_a, seed=0):
    r = np.random.default_rng(seed)
    a = r.normal(size=(k, m) if transpose_a else (m, k)).astype(dtype)
    a[r.random(a.shape) < 0.5] = 0  # sparse like pixels, with negative values like features
    return a, r.normal(size=(k, n)).astype(dtype)


def _check(kernel, m, k, n, dtype, transpose_a):
    a, b = _operands(m, k, n, dtype, transpose_a)
    op = a.T if transpose_a else a
    c = np.full((m, n), np.nan, dtype)
    kernel(a, transpose_a, b, c)
    expected = op.astype(np.float64) @ b.astype(np.float64)
    unit = np.finfo(dtype).eps / 2  # the dtype's unit roundoff
    bound = 2 * max(k, 1) * unit * (np.abs(op).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert np.all(np.abs(c - expected) <= bound), np.abs(c - expected).max()
    return c


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("m, k, n", [
    (128, 532, 256),  # the classifier's forward (and, transposed, its weight gradient's shape below)
    (532, 128, 256),
    (1, 5, 64), (7, 3, 40), (9, 1, 100),  # fewer rows than a tile; a width that is no whole tile
    (65, 17, 16), (130, 9, 24), (3, 4, 5),  # widths of one vector, between one and two, under one
    (300, 600, 40), (40, 600, 300),  # several blocks of rows and of the inner dimension
])
def test_matches_float64_within_rounding(kernel, dtype, transpose_a, m, k, n):
    _check(kernel, m, k, n, dtype, transpose_a)


@pytest.mark.parametrize("kernel", KERNELS)
def test_no_inner_dimension_gives_zeros(kernel):
    c = np.full((5, 16), np.nan, np.float32)
    kernel(np.empty((5, 0), np.float32), False, np.empty((0, 16), np.float32), c)
    np.testing.assert_array_equal(c, 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_and_tiles_do_not_change_a_bit(dtype):
    """Each element is one multiply-add chain in order: the same bits on one thread or two, and in a
    one-vector tile or the padded tail (width 100: 3 x 32 + 4 columns) as in a two-vector one."""
    a, b = _operands(77, 700, 128, dtype, False, seed=3)  # inner dimension over two blocks
    serial = np.empty((77, 128), dtype)
    gemm_cpu.gemm(a, False, b, serial)
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            c = np.empty_like(serial)
            gemm_cpu.gemm_parallel(a, False, b, c, threads)
            np.testing.assert_array_equal(c, serial)
    finally:
        numba.set_num_threads(before)
    narrow = np.empty((77, 100), dtype)
    gemm_cpu.gemm(a, False, np.ascontiguousarray(b[:, :100]), narrow)
    np.testing.assert_array_equal(narrow, serial[:, :100])


@pytest.mark.parametrize("kernel", KERNELS)
def test_shapes_that_do_not_chain_are_refused(kernel):
    a = np.ones((4, 6), np.float32)
    with pytest.raises(ValueError, match="do not chain"):
        kernel(a, False, np.ones((5, 16), np.float32), np.empty((4, 16), np.float32))


def test_an_array_that_is_not_c_contiguous_is_refused():
    """The work reads and writes the arrays' memory in C order: a transposed view would be read wrongly."""
    a, b = np.ones((8, 4), np.float32), np.ones((4, 16), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        gemm_cpu.gemm(a, False, b, np.zeros((16, 8), np.float32).T)
    with pytest.raises(ValueError, match="C-contiguous"):
        gemm_cpu.gemm(np.ones((4, 8), np.float32).T, False, b, np.zeros((8, 16), np.float32))
