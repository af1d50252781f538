"""The measured GEMM peaks (the CPU's SGEMM and DGEMM, and the GPU's SGEMM where there is one), saved with the
run so the report can state each row's share of the floor: float32 rows against SGEMM, float64 rows
against DGEMM."""

from __future__ import annotations

import pytest


@pytest.mark.benchmark(group="peak")
@pytest.mark.parametrize("dtype, fixture, key", [("float32", "blas_peak_gflops", "sgemm_peak_gflops"),
                                                 ("float64", "dgemm_peak_gflops", "dgemm_peak_gflops")],
                         ids=["sgemm", "dgemm"])
def test_cpu_gemm_peak(benchmark, request, dtype, fixture, key):
    import numpy as np

    peak = request.getfixturevalue(fixture)
    a = np.ones((1024, 1024), dtype)
    benchmark.pedantic(lambda: a @ a, rounds=3, iterations=1)
    benchmark.extra_info[key] = peak
    assert peak > 0


@pytest.mark.gpu
@pytest.mark.benchmark(group="peak")
def test_gpu_sgemm_peak(benchmark):
    """FP32 (no TF32) SGEMM on 8192^3, synchronised: the floor the report divides the GPU rows by."""
    import numpy as np

    from mnist_accel.backends.selection import get_backend

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
