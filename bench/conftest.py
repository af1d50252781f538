"""Fixtures for the benchmark suite: data, the sample count, and ``run_epoch`` to time one workload.

``--quick`` shrinks every workload and runs each once (benchmarking disabled): a smoke test for CI.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from bench.machine import describe, versions
from bench.report import rate

_OFFLINE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
if not os.environ.get("MNIST_ACCEL_DATA") and _OFFLINE.is_dir():
    os.environ["MNIST_ACCEL_DATA"] = str(_OFFLINE)


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true", help="tiny workloads, each run once (CI smoke test)")
    parser.addoption("--samples", type=int, default=None, help="training images per epoch (default 60000)")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped without one")
    if config.getoption("--quick"):
        config.option.benchmark_disable = True


def pytest_collection_modifyitems(config, items):
    from mnist_accel.backends.selection import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is not None:
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"no GPU: {reason}"))


@pytest.fixture(scope="session")
def samples(request) -> int:
    return request.config.getoption("--samples") or (1024 if request.config.getoption("--quick") else 60000)


@pytest.fixture(scope="session")
def mnist():
    from mnist_accel.data.mnist import load_mnist

    return load_mnist(progress=False)


def pytest_benchmark_update_machine_info(config, machine_info):
    """Every saved run names its machine: CPU, cores, vector extensions, BLAS and its threads, versions
    (``bench.machine``; ``python -m bench.report`` prints it first)."""
    machine_info["mnist_accel"] = describe()


@pytest.fixture
def run_epoch(benchmark, samples):
    """Time ``make()``'s epoch: state is rebuilt before every round, so each round trains a fresh model."""

    def go(make, rounds: int, flops: int, dtype: str, path: str, backend: str, samples: int = samples, **extra):
        start = time.perf_counter()
        warm = make()
        warm.step()  # compiles kernels and warms caches; not timed
        benchmark.extra_info["compile_and_warmup_seconds"] = time.perf_counter() - start
        runs = []

        def setup():
            runs.append(make())
            return (), {}

        benchmark.pedantic(lambda: runs[-1].step(), setup=setup, rounds=rounds, iterations=1)
        info = benchmark.extra_info
        info.update(samples=samples, dtype=dtype, path=path, backend=backend, device=runs[-1].device,
                    flops_per_epoch=flops * samples, test_accuracy=runs[-1].accuracy(), versions=versions(), **extra)
        if benchmark.stats is not None:
            info["samples_per_second"] = rate({"extra_info": info, "stats": {"mean": benchmark.stats.stats.mean}})
        return runs[-1]

    return go


def gemm_peak_gflops(dtype, n: int = 2048, tries: int = 5) -> float:
    """GEMM throughput on n^3 in ``dtype`` with the BLAS threads in force: the fastest of ``tries`` products
    (the machines are shared, so a mean would measure the neighbours too)."""
    a = np.random.default_rng(0).random((n, n)).astype(dtype)
    a @ a
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


@pytest.fixture(scope="session")
def blas_peak_gflops() -> float:
    """SGEMM's measured peak, the floor of float32 rows."""
    return gemm_peak_gflops(np.float32)


@pytest.fixture(scope="session")
def dgemm_peak_gflops() -> float:
    """DGEMM's measured peak, the floor of float64 rows."""
    return gemm_peak_gflops(np.float64)
