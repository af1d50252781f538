"""Flush-to-zero in the CPU optimizer kernels: subnormal results become zero inside the kernels, and the
caller's floating-point environment is back as it was afterwards."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from mnist_accel.kernels.cpu import fpenv, vectorized_cpu

TINY32 = np.finfo(np.float32).tiny

x86_only = pytest.mark.skipif(not fpenv.X86, reason="flush-to-zero is only switched on for x86 cores")


@njit
def _product(a, b, out):
    saved = fpenv.flush_subnormals()
    for i in range(a.size):
        out[i] = a[i] * b[i]
    fpenv.restore(saved)


@x86_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_products_flush_inside_and_not_after(dtype):
    tiny = np.finfo(dtype).tiny
    a = np.array([tiny * 1e3, 2.0], dtype)
    b = np.array([1e-6, 3.0], dtype)
    out = np.empty(2, dtype)
    _product(a, b, out)
    assert out[0] == 0 and out[1] == 6  # tiny*1e-3 is subnormal: flushed; normal results untouched
    assert 0 < (a * b)[0] < tiny  # NumPy in the same thread still sees subnormals: the register was restored


@x86_only
def test_adam_flushes_a_decayed_weight():
    """Weight decay times a weight near zero is subnormal: the fused Adam keeps its moments at zero, where
    the same arithmetic in NumPy (no flush) leaves a subnormal first moment behind."""
    f = np.float32
    p, g = np.full((1, 8), 1e-35, f), np.zeros((1, 8), f)
    m, v = np.zeros((1, 8), f), np.zeros((1, 8), f)
    wd, beta1 = f(1e-4), f(0.9)
    vectorized_cpu.adam(p, g, vectorized_cpu.ONE_ROW, m, v, f(1e-3), f(1e-8), beta1, f(0.999), wd)
    assert not m.any() and not v.any()
    assert np.all(p == f(1e-35))  # a zero step: nothing moved
    numpy_m = (f(1) - beta1) * (g + wd * p)
    assert np.all((numpy_m > 0) & (numpy_m < TINY32))


def test_normal_numbers_are_untouched():
    """Away from the subnormal range the flushed kernels compute exactly what they did before."""
    f = np.float64
    r = np.random.default_rng(0)
    p, g = r.normal(size=(1, 50)), r.normal(size=(1, 50))
    expected = p - f(0.1) * (g + f(0.01) * p)
    vectorized_cpu.sgd(p, g, vectorized_cpu.ONE_ROW, f(0.1), f(0.01))
    np.testing.assert_allclose(p, expected, rtol=1e-15)
