"""The machine's measured SGEMM peak, saved with the run so the report can state each row's share of it."""

from __future__ import annotations

import pytest


@pytest.mark.benchmark(group="peak")
def test_sgemm_peak(benchmark, blas_peak_gflops):
    import numpy as np

    a = np.ones((1024, 1024), np.float32)
    benchmark.pedantic(lambda: a @ a, rounds=3, iterations=1)
    benchmark.extra_info["sgemm_peak_gflops"] = blas_peak_gflops
    assert blas_peak_gflops > 0
