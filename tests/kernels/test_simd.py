"""The loop kernel's explicit vector step: the same sums as NumPy's, one cache line at a time, on aligned
and unaligned offsets, and the padded, aligned buffers it works in."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from mnist_accel.kernels.cpu import simd


@njit
def _step(dst, d, a, src, s):
    simd.axpy(dst, d, a, src, s)


@njit
def _zeros(n, like):
    z = simd.aligned_zeros(n, like)
    return z, z.ctypes.data % simd.LINE


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d, s", [(0, 0), (8, 16), (3, 5), (40, 1)])  # aligned and straddling offsets
def test_axpy_adds_one_line_of_a_multiple(dtype, d, s):
    rng = np.random.default_rng(d + s)
    dst, src = rng.standard_normal(64).astype(dtype), rng.standard_normal(64).astype(dtype)
    a = dtype(rng.standard_normal())
    lanes = simd.LINE // np.dtype(dtype).itemsize
    expected = dst.copy()
    expected[d:d + lanes] += a * src[s:s + lanes]
    _step(dst, d, a, src, s)
    # multiply-add may fuse: one rounding of the product apart at most
    np.testing.assert_allclose(dst, expected, rtol=0, atol=4 * np.finfo(dtype).eps * np.abs(expected).max())
    np.testing.assert_array_equal(np.delete(dst, np.s_[d:d + lanes]), np.delete(expected, np.s_[d:d + lanes]))


@pytest.mark.parametrize("dtype, vector", [(np.float64, "<8 x double>"), (np.float32, "<16 x float>")])
def test_axpy_is_one_64_byte_vector_operation(dtype, vector):
    step = njit(_step.py_func)  # compiled for this dtype alone, so its one signature is this test's
    x = np.zeros(32, dtype)
    step(x, 0, dtype(1), x, 16)
    ir = step.inspect_llvm(step.signatures[0])
    assert f"load {vector}" in ir and f"store {vector}" in ir


def test_axpy_refuses_what_it_cannot_step():
    with pytest.raises(TypingError):
        _step(np.zeros(16, np.int64), 0, 1, np.zeros(16, np.int64), 0)
    with pytest.raises(TypingError):
        _step(np.zeros(16), 0, 1.0, np.zeros(16, np.float32), 0)
    with pytest.raises(TypingError):
        _step(np.zeros(16), 0.0, 1.0, np.zeros(16), 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 100, 104, 1000])
def test_aligned_zeros_start_on_a_cache_line(dtype, n):
    z, offset = _zeros(n, np.zeros(1, dtype))
    assert offset == 0 and z.dtype == dtype and z.shape == (n,) and not z.any()


@pytest.mark.parametrize("dtype, n, width", [(np.float64, 100, 104), (np.float64, 8, 8), (np.float64, 1, 8),
                                             (np.float32, 100, 112), (np.float32, 17, 32)])
def test_padded_rounds_up_to_whole_steps(dtype, n, width):
    assert simd.padded(n, np.zeros(1, dtype)) == width
