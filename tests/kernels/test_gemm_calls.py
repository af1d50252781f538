"""gemm_cpu's calls through addresses (``kernels.cpu.gemm_calls``): the parallel launcher's workers each call
the work function through its address and claim work units from one shared counter.

Each call claims units until none is left, so the counter ends at the number of units plus one failed claim
per call that ran (at least one, at most the number asked for): a call that read the wrong argument, or a
launch that ran nothing, would show here, and the product must be right.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from mnist_accel.backends import gemm_policy
from mnist_accel.kernels.cpu import gemm_calls, gemm_cpu

gemm_policy.parallel_ok()  # Numba's threads as the ops start them


@njit
def _launch(work, a, b, c, bp, cp, starts, kinds, counter, ai, ak, k, m, n, pad, whole, calls):
    for _ in range(calls):
        gemm_calls.call(work, a, b, c, bp, cp, starts, kinds, counter, ai, ak, k, m, n, pad, len(starts), whole)


@pytest.mark.parametrize("calls", [1, 2, 16])
def test_each_call_claims_work_until_none_is_left(calls):
    r = np.random.default_rng(0)
    a, b = r.normal(size=(300, 40)).astype(np.float32), r.normal(size=(40, 100)).astype(np.float32)
    c = np.full((300, 100), np.nan, np.float32)
    ai, ak, bp, cp, k, m, n, pad, starts, kinds, whole, rest = gemm_cpu._plan(a, False, b, c)
    counter = np.zeros(1, np.int64)
    _launch(gemm_cpu._work_address(c.dtype), a, b, c, bp, cp, starts, kinds, counter, ai, ak, k, m, n, pad, whole,
            calls)
    c[:, n - rest:] = cp[:, :rest]
    units = len(starts) * -(-m // gemm_cpu.CHUNK)
    assert counter[0] == units + calls  # the first call did every unit; each call failed one claim at the end
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 16])
def test_the_parallel_launcher_is_right_on_any_thread_count(threads):
    r = np.random.default_rng(1)
    a, b = r.normal(size=(300, 40)).astype(np.float32), r.normal(size=(40, 100)).astype(np.float32)
    c, serial = np.empty((300, 100), np.float32), np.empty((300, 100), np.float32)
    gemm_cpu.gemm_parallel(a, False, b, c, threads)
    gemm_cpu.gemm(a, False, b, serial)
    np.testing.assert_array_equal(c, serial)  # one ordered chain per element: the same bits
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
