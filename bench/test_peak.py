"""The measured GEMM peaks (the CPU's SGEMM and DGEMM, and the GPU's SGEMM where there is one), saved with the
run so the report can state each row's share of the floor: float32 rows against SGEMM, float64 rows
against DGEMM."""

from __future__ import annotations

import pytest


@pytest.mark.benchmark(group="peak")
def test_sgemm_peak(benchmark, blas_peak_gflops):
    import numpy as np

    a = np.ones((1024, 1024), np.float32)
    benchmark.pedantic(lambda: a @ a, rounds=3, iterations=1)
    benchmark.extra_info["sgemm_peak_gflops"] = blas_peak_gflops
    assert blas_peak_gflops > 0


@pytest.mark.benchmark(group="peak")
def test_dgemm_peak(benchmark, dgemm_peak_gflops):
    import numpy as np

    a = np.ones((1024, 1024), np.float64)
    benchmark.pedantic(lambda: a @ a, rounds=3, iterations=1)
    benchmark.extra_info["dgemm_peak_gflops"] = dgemm_peak_gflops
    assert dgemm_peak_gflops > 0


@pytest.mark.gpu
@pytest.mark.benchmark(group="peak")
def test_gpu_sgemm_peak(benchmark):
    """FP32 (no TF32) SGEMM on 8192^3, synchronised: the floor the report divides the GPU rows by."""
    import numpy as np

    from mnist_accel.backend import get_backend

    cp = get_backend("cuda").xp
    a = cp.ones((8192, 8192), np.float32)

    def run():
        a @ a
        cp.cuda.get_current_stream().synchronize()

    run()
    benchmark.pedantic(run, rounds=5, iterations=1)
    gflops = 2 * 8192 ** 3 / benchmark.stats.stats.min / 1e9
    benchmark.extra_info["gpu_sgemm_peak_gflops"] = gflops
    assert gflops > 0
