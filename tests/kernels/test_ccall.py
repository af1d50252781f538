"""Kernels compiled as C callbacks and called from Python (``kernels.cpu.ccall``): arrays in for pointers,
checked by dtype and layout, results written where the kernel writes them."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from numba import types

from mnist_accel.kernels.cpu import ccall


def _scale_into(x, n, factor, out):
    for i in range(n):
        out[i] = x[i] * factor


@pytest.fixture(scope="module")
def kernel():
    p = types.CPointer
    return ccall.c_kernel(_scale_into, types.void(p(types.float32), types.int64, types.float64, p(types.float64)))


def test_a_kernel_reads_and_writes_the_arrays_it_is_given(kernel):
    x, out = np.arange(5, dtype=np.float32), np.zeros(5)
    kernel.call(x, 5, 2.5, out)
    np.testing.assert_array_equal(out, np.arange(5) * 2.5)
    assert kernel.cfunc.address  # the callback itself, for calls through its address


def test_read_only_inputs_are_taken(kernel):
    x, out = np.ones(3, np.float32), np.zeros(3)
    x.flags.writeable = False
    kernel.call(x, 3, 1.0, out)
    assert out.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("x", [np.ones(4), np.ones(8, np.float32)[::2]], ids=["wrong-dtype", "strided"])
def test_an_array_of_the_wrong_dtype_or_layout_is_refused_before_the_call(kernel, x):
    out = np.zeros(4)
    with pytest.raises(ctypes.ArgumentError):
        kernel.call(x, 4, 1.0, out)
    assert not out.any()


def test_kernels_return_nothing():
    with pytest.raises(TypeError, match="return nothing"):
        ccall.c_kernel(lambda a: a, types.int64(types.int64))
